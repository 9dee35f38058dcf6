/* Internals of the swarm file loader, shared by src/swarm/swarm_*.c. */
#ifndef ROJ_SWARM_SWARM_INTERNAL_H
#define ROJ_SWARM_SWARM_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "swarm/swarm.h"

/* Limits against hostile input. Aliases are rejected outright, so no
 * expansion limit is needed. */
#define SWARM_MAX_FILE_BYTES (16u << 20)
#define SWARM_MAX_DEPTH 64
#define SWARM_MAX_NODES 200000
#define SWARM_MAX_PROBLEMS 50
#define SWARM_MAX_VOTE 64
#define SWARM_MAX_LIST 4096 /* labels, stop strings, after, ... */
#define SWARM_MAX_STEPS 256 /* per pipeline */

/* ---- arena: every allocation of a swarm_file, freed at once ---- */

struct swarm_arena;
struct swarm_arena *arena_create(void);
void arena_destroy(struct swarm_arena *a);
/* Zeroed memory aligned for any type; NULL when out of memory. */
void *arena_alloc(struct swarm_arena *a, size_t size);
char *arena_strndup(struct swarm_arena *a, const char *s, size_t n);
char *arena_strdup(struct swarm_arena *a, const char *s);

/* Makes the arena own tree, so that strings of the tree can be used by
 * the swarm_file without copies. */
struct ynode;
void arena_keep_tree(struct swarm_arena *a, struct ynode *tree);

/* ---- YAML document tree with marks ---- */

typedef enum ynode_kind { YNODE_SCALAR, YNODE_MAP, YNODE_SEQ } ynode_kind;

typedef struct ynode {
    ynode_kind kind;
    swarm_mark mark;
    char *text;           /* scalar: NUL-terminated (may contain NUL) */
    size_t len;
    bool plain;           /* scalar written without quotes */
    struct ynode **items; /* seq: items; map: key, value, key, value ... */
    size_t n;             /* seq: items; map: pairs */
    size_t n_items;       /* entries used in items */
    size_t cap;           /* entries allocated in items */
} ynode;

/* Parses YAML into a tree. A syntax error, an alias, a non-scalar key, a
 * duplicate key or a limit gives ROJ_ERR_FORMAT with "PATH:LINE:COL:"
 * in the thread's message. */
roj_status yaml_tree_parse(const char *text, size_t len, const char *path,
                           ynode **out);
void yaml_tree_free(ynode *node);

/* qsort comparator of two ynode pointers: by text, then by position. */
int ynode_compare(const void *a, const void *b);

const ynode *ymap_key(const ynode *map, size_t i);
const ynode *ymap_value(const ynode *map, size_t i);
/* Returns the value of key in map, or NULL. */
const ynode *ymap_get(const ynode *map, const char *key);
/* True for a missing node and plain "", "~" and "null" scalars. */
bool ynode_is_null(const ynode *node);
const char *ynode_kind_name(const ynode *node);

/* ---- problems ---- */

typedef struct swarm_diag {
    const char *file; /* the swarm file's path, for messages */
    char *text;       /* every problem, one per line */
    size_t len, cap;
    size_t count;
    bool nomem;
} swarm_diag;

/* Adds "FILE:LINE:COL: FIELD: message" (field may be NULL). */
void diag_add(swarm_diag *d, swarm_mark mark, const char *field,
              const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* True once more problems were found than are reported. Loops over
 * hostile input stop then, so that a file of a million typos costs no
 * million suggestions. */
bool diag_full(const swarm_diag *d);

/* Writes value quoted and shortened to 60 bytes into buf, for messages. */
const char *diag_quote(const char *value, size_t len, char *buf,
                       size_t size);

/* The candidate nearest to word by edit distance when it is close enough
 * to be a likely typo, else NULL. */
const char *diag_nearest(const char *word, const char *const *candidates,
                         size_t n);

/* Writes advice for an unknown name into buf: " Did you mean \"X\"?" when a
 * candidate is near, else " Known: a, b, c." (cut to size). */
void diag_suggest(const char *word, const char *const *candidates,
                  size_t n, char *buf, size_t size);

/* Reports keys of map not in known[], suggesting the nearest. */
void diag_check_keys(swarm_diag *d, const ynode *map, const char *field,
                     const char *const *known, size_t n_known);

/* Field path helpers: "parent.key" and "parent[i]". */
const char *field_key(char *buf, size_t size, const char *parent,
                      const char *key);
const char *field_index(char *buf, size_t size, const char *parent,
                        size_t i);

/* ---- value readers: report the problem and return false ---- */

typedef struct swarm_loader {
    swarm_file *file;
    struct swarm_arena *arena;
    swarm_diag diag;
    const char *dir; /* the swarm file's folder, for relative paths */
} swarm_loader;

bool read_string(swarm_loader *l, const ynode *node, const char *field,
                 const char **out);
bool read_uint(swarm_loader *l, const ynode *node, const char *field,
               uint64_t min, uint64_t max, uint64_t *out);
bool read_float(swarm_loader *l, const ynode *node, const char *field,
                double *out);
/* "250ms", "5s", "1.5s", "2m", "1h" into milliseconds (> 0, <= 24 h). */
bool read_duration(swarm_loader *l, const ynode *node, const char *field,
                   uint32_t *ms);
/* A sequence of unique non-empty strings (a lone scalar is rejected). */
bool read_string_list(swarm_loader *l, const ynode *node, const char *field,
                      const char *const **out, size_t *n);
/* Parses "250ms" style text; false when malformed or out of range. */
bool parse_duration(const char *text, uint32_t *ms);

/* ---- templates ---- */

/* Calls fn(ctx, name, len, offset) for each placeholder of tmpl. Returns
 * false and sets *error (a static message) and *offset on a malformed
 * template. */
typedef void (*tmpl_visit_fn)(void *ctx, const char *name, size_t len,
                              size_t offset);
bool tmpl_scan(const char *tmpl, tmpl_visit_fn fn, void *ctx,
               const char **error, size_t *offset);

/* ---- loader stages ---- */

/* Returns path resolved against the swarm file's folder (arena), or NULL
 * when out of memory. */
const char *resolve_path(swarm_loader *l, const char *path);
/* Whether s is 64 hex digits (either case). */
bool is_hex64(const char *s);
/* Reads the swarm file at path into a new buffer *text (the caller frees
 * it) of *len bytes, at most SWARM_MAX_FILE_BYTES + 1. */
roj_status swarm_text_read(const char *path, char **text, size_t *len);

/* A path or {path, sha256}: resolves the path, checks that the file
 * exists and, when a digest is given, that the file has it. */
bool load_file_ref(swarm_loader *l, const ynode *node, const char *field,
                   const char **path, const char **sha256);
void load_models(swarm_loader *l, const ynode *models);
void load_skills(swarm_loader *l, const ynode *skills);
void load_pipelines(swarm_loader *l, const ynode *pipelines);
/* Checks the references of a pipeline's steps and its output, fills
 * each step's input and deps, then orders the steps. */
void link_steps(swarm_loader *l, swarm_pipeline *p, const ynode *steps,
                const ynode *pipeline, const char *field);
/* Computes the execution order of a pipeline's steps, or reports a
 * cycle. */
void order_pipeline(swarm_loader *l, swarm_pipeline *p, const char *field);

/* Names of the models, skills or steps, for suggestions (arena). */
const char *const *model_names(swarm_loader *l);
const char *const *skill_names(swarm_loader *l);

#endif
