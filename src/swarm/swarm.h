/*
 * Swarm files: the YAML that names a swarm's models, its skills (a model,
 * a prompt and an output kind) and its pipelines (a DAG of steps that run
 * skills on a job's fields and on earlier steps' results). docs/SWARM.md
 * is the reference of the format.
 *
 * swarm_load parses the file with libyaml, keeps the line and column of
 * every value and checks everything that can be checked before a model
 * runs: names, references, placeholders, routing labels, the DAG, model
 * files, digests and the roj.* metadata of the GGUF files. A file that
 * loads has no dangling name, no cycle and no placeholder that refers to
 * nothing, so a runner never has to improvise.
 *
 * Ownership: a swarm_file owns every string and array it points to, and
 * swarm_free releases them all at once. Threading: a loaded swarm_file is
 * read-only and may be shared between threads; swarm_render is reentrant.
 */
#ifndef ROJ_SWARM_SWARM_H
#define ROJ_SWARM_SWARM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roj/roj.h"

/* Position of a value in the swarm file, 1-based. */
typedef struct swarm_mark {
    uint32_t line;
    uint32_t column;
} swarm_mark;

typedef enum swarm_output_kind {
    SWARM_OUTPUT_CHOICE, /* one label of a fixed set */
    SWARM_OUTPUT_SPAN,   /* a substring of the input, or the none word */
    SWARM_OUTPUT_JSON,   /* a JSON object with typed fields */
    SWARM_OUTPUT_TEXT    /* free text */
} swarm_output_kind;

typedef enum swarm_field_type {
    SWARM_FIELD_STRING,
    SWARM_FIELD_INTEGER,
    SWARM_FIELD_NUMBER,
    SWARM_FIELD_BOOLEAN
} swarm_field_type;

/* One field of a JSON output schema. */
typedef struct swarm_json_field {
    const char *name;
    swarm_field_type type;
} swarm_json_field;

/* A skill's output. Only the members of its kind are set. */
typedef struct swarm_output {
    swarm_output_kind kind;
    const char *const *labels;       /* choice: n_labels >= 1, unique */
    size_t n_labels;
    const char *slot;                /* span: slot name filled into {slot} */
    const char *none_word;           /* span: the output for "no span" */
    const swarm_json_field *fields;  /* json: n_fields >= 1 */
    size_t n_fields;
    uint32_t max_tokens;             /* text and json: generation limit */
    const char *const *stop;         /* text: stop strings */
    size_t n_stop;
} swarm_output;

/* A model file and the roj.* metadata it contains. */
typedef struct swarm_model {
    const char *name;
    const char *path;            /* resolved against the swarm file's folder */
    const char *sha256;          /* 64 lowercase hex digits, or NULL */
    const char *task;            /* roj.task ("classify", ...) or NULL */
    const char *const *labels;   /* roj.labels, or roj.slots (extract) */
    size_t n_labels;
    const char *prompt_template; /* roj.prompt_template, or NULL */
    const char *none_word;       /* roj.none_word, or NULL */
    swarm_mark mark;
} swarm_model;

typedef struct swarm_sampling {
    float temperature; /* 0: greedy (the default) */
    int32_t top_k;     /* 0: off */
    float top_p;       /* in (0, 1]; 1: off */
    uint64_t seed;
} swarm_sampling;

typedef struct swarm_skill {
    const char *name;
    size_t model;              /* index into swarm_file.models */
    const char *lora_path;     /* adapter file (resolved), or NULL */
    const char *lora_sha256;   /* NULL when no digest is given */
    /* The prompt template. When the skill gives none, this is the model's
     * roj.prompt_template (or the training default for its task) and
     * prompt_from_model is set: the runner fills it the way roj train did,
     * with {text}, {slot} and {context}. */
    const char *prompt;
    bool prompt_from_model;
    const char *const *fields; /* placeholders a step must bind */
    size_t n_fields;
    swarm_output output;
    swarm_sampling sampling;
    uint32_t timeout_ms;       /* per call; 30000 when the file sets none */
    swarm_mark mark;
} swarm_skill;

typedef enum swarm_split {
    SWARM_SPLIT_SENTENCES,
    SWARM_SPLIT_LINES,
    SWARM_SPLIT_CHUNKS, /* chunk_tokens tokens each */
    SWARM_SPLIT_LIST    /* the items of a JSON array field */
} swarm_split;

typedef enum swarm_reduce {
    SWARM_REDUCE_NONE,    /* not a map step */
    SWARM_REDUCE_COLLECT, /* JSON array of the results: field items */
    SWARM_REDUCE_CONCAT,  /* results joined by newlines: field text */
    SWARM_REDUCE_COUNT,   /* non-empty results: field count */
    SWARM_REDUCE_VOTE     /* most frequent label: label, agreement */
} swarm_reduce;

typedef enum swarm_vote_rule {
    SWARM_VOTE_MAJORITY,   /* the label most agents chose */
    SWARM_VOTE_CONFIDENCE  /* the highest sum of label probabilities */
} swarm_vote_rule;

/* A named template: a step input field or a job output field. */
typedef struct swarm_binding {
    const char *name;
    const char *tmpl;
    swarm_mark mark;
} swarm_binding;

/* Routing: the step runs only when step `step` chose one of labels. */
typedef struct swarm_when {
    size_t step;               /* index into the pipeline's steps */
    const char *const *labels;
    size_t n_labels;
} swarm_when;

typedef struct swarm_step {
    const char *id;
    /* Skills in use: one for a plain step, the escalation order for a
     * cascade, one per agent for a vote over several skills. */
    const size_t *skills;
    size_t n_skills;
    bool cascade;
    float threshold;           /* cascade: escalate below this confidence */
    uint32_t vote;             /* agents; 1: no vote */
    swarm_vote_rule vote_rule;
    /* Every field the skills' prompts use, bound to a template over
     * {job.F}, {STEP.F} and, in map steps, {item}. Fields the file does
     * not bind are bound to {job.F} ({item} for text in map steps). */
    const swarm_binding *input;
    size_t n_input;
    bool map;
    const char *map_over;      /* template that gives the text or list */
    swarm_split split;
    uint32_t chunk_tokens;     /* SWARM_SPLIT_CHUNKS only */
    swarm_reduce reduce;       /* SWARM_REDUCE_NONE unless map */
    const swarm_when *when;    /* all must hold; n_when 0: always runs */
    size_t n_when;
    const char *const *fields; /* of its result: label, text, ... */
    size_t n_fields;
    const size_t *deps;        /* steps this one waits for, ascending */
    size_t n_deps;
    swarm_mark mark;
} swarm_step;

typedef struct swarm_pipeline {
    const char *name;
    const char *const *inputs; /* job field names */
    size_t n_inputs;
    swarm_step *steps;
    size_t n_steps;
    /* n_steps step indices in an execution order: every step after its
     * deps, ties broken by position in the file. */
    const size_t *order;
    const swarm_binding *output; /* the job's result, a JSON object */
    size_t n_output;
    swarm_mark mark;
} swarm_pipeline;

struct swarm_arena;

typedef struct swarm_file {
    const char *path;
    const char *name;
    swarm_model *models;
    size_t n_models;
    swarm_skill *skills;
    size_t n_skills;
    swarm_pipeline *pipelines;
    size_t n_pipelines;
    struct swarm_arena *arena; /* owns everything above */
} swarm_file;

/* Reads, parses and validates the swarm file at path. Model files are
 * checked to exist and their roj.* metadata is read; a file is hashed
 * only when the swarm file gives its sha256. On success *out is a new
 * swarm_file (swarm_free). On failure the status is ROJ_ERR_FORMAT for
 * problems in the file (ROJ_ERR_IO when it cannot be read), the thread's
 * roj error message is the first problem, and when problems is not NULL
 * *problems is a new string with every problem, one per line, as
 * "FILE:LINE:COLUMN: FIELD: message" (the caller frees it). */
roj_status swarm_load(const char *path, swarm_file **out, char **problems);

/* Same as swarm_load on len bytes of YAML in memory. path is used in
 * messages and relative model paths are resolved against its folder. */
roj_status swarm_parse(const char *text, size_t len, const char *path,
                       swarm_file **out, char **problems);

/* Frees a swarm file and everything it owns; NULL is ignored. */
void swarm_free(swarm_file *file);

/* A file that a swarm file names: a model or a skill's LoRA adapter. */
typedef struct swarm_named_file {
    const char *field;  /* "models.NAME" or "skills.NAME.lora" */
    const char *path;   /* resolved against the swarm file's folder */
    const char *sha256; /* 64 lowercase hex digits, or NULL */
    swarm_mark mark;    /* of the path */
} swarm_named_file;

/* The name and the files of a swarm file, read without validation. */
typedef struct swarm_file_list {
    const char *name;         /* the top-level name:, or NULL */
    swarm_named_file *files;  /* each path once: models, then adapters */
    size_t n_files;
    struct swarm_arena *arena; /* owns everything above */
} swarm_file_list;

/* Reads the name, model files and adapter files of the swarm file at
 * path without checking that the files exist or anything else, for
 * tools that run before the files are there (roj agent fetches missing
 * ones, then calls swarm_load). An entry that is neither a path nor
 * {path, sha256} is left out, for swarm_load to report. Errors:
 * ROJ_ERR_IO when the file cannot be read; ROJ_ERR_FORMAT for a YAML
 * syntax error or a sha256 that is not 64 hex digits, with
 * "FILE:LINE:COLUMN:" in the message. On success *out is a new list
 * (swarm_file_list_free). */
roj_status swarm_files_read(const char *path, swarm_file_list **out);

/* Frees a list of swarm_files_read; NULL is ignored. */
void swarm_file_list_free(swarm_file_list *list);

/* Indices by name, or -1 when there is none. */
long swarm_find_skill(const swarm_file *file, const char *name);
long swarm_find_pipeline(const swarm_file *file, const char *name);
long swarm_find_step(const swarm_pipeline *pipeline, const char *id);

/* Looks up placeholder `name` ("job.text", "intent.label", "item"). On
 * success sets *value (not necessarily NUL-terminated) and *len, which
 * must stay valid until swarm_render returns. Returns ROJ_ERR_NOT_FOUND
 * when the name has no value; any other error stops the rendering. */
typedef roj_status (*swarm_lookup_fn)(void *ctx, const char *name,
                                      const char **value, size_t *len);

/* swarm_render flag: escape each value as the inside of a JSON string. */
#define SWARM_RENDER_JSON 1u

/* Fills the {name} placeholders of tmpl through fn. "{{" and "}}" are
 * literal braces. On success *out is a new NUL-terminated string (the
 * caller frees it). A malformed template gives ROJ_ERR_FORMAT and a
 * placeholder with no value ROJ_ERR_NOT_FOUND, each naming the
 * placeholder and its byte offset. */
roj_status swarm_render(const char *tmpl, swarm_lookup_fn fn, void *ctx,
                        unsigned flags, char **out);

#endif
