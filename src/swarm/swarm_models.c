/* The models section: files, digests and roj.* metadata. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/sha256.h"
#include "gguf/gguf.h"
#include "swarm/swarm_internal.h"

const char *resolve_path(swarm_loader *l, const char *path)
{
    if (path[0] == '/' || !l->dir[0])
        return arena_strdup(l->arena, path);
    size_t n = strlen(l->dir) + strlen(path) + 2;
    char *out = arena_alloc(l->arena, n);
    if (out)
        snprintf(out, n, "%s/%s", l->dir, path);
    return out;
}

bool is_hex64(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                   (c >= 'A' && c <= 'F');
        if (!hex)
            return false;
    }
    return n == 64;
}

/* Reads a file reference (a path, or {path, sha256}), checks that the
 * file exists and, when a digest is given, hashes it. */
bool load_file_ref(swarm_loader *l, const ynode *node, const char *field,
                   const char **path, const char **sha256)
{
    static const char *const keys[] = {"path", "sha256"};
    const ynode *path_node = node, *digest_node = NULL;
    char sub[256];
    *path = NULL;
    *sha256 = NULL;
    if (node->kind == YNODE_MAP) {
        diag_check_keys(&l->diag, node, field, keys, 2);
        path_node = ymap_get(node, "path");
        digest_node = ymap_get(node, "sha256");
        if (!path_node) {
            diag_add(&l->diag, node->mark, field, "path is missing; write "
                     "{path: FILE.gguf}");
            return false;
        }
    }
    const char *raw;
    const char *path_field = node->kind == YNODE_MAP
                                 ? field_key(sub, sizeof sub, field, "path")
                                 : field;
    if (!read_string(l, path_node, path_field, &raw))
        return false;
    const char *resolved = resolve_path(l, raw);
    if (!resolved) {
        l->diag.nomem = true;
        return false;
    }
    struct stat st;
    errno = 0;
    if (stat(resolved, &st) != 0 || !S_ISREG(st.st_mode)) {
        diag_add(&l->diag, path_node->mark, path_field, "file \"%s\" not "
                 "found (%s). Train or copy it there, or fix the path; "
                 "relative paths start at the swarm file's folder",
                 resolved, errno ? strerror(errno) : "not a regular file");
        return false;
    }
    *path = resolved;
    if (!digest_node)
        return true;

    const char *digest;
    field_key(sub, sizeof sub, field, "sha256");
    if (!read_string(l, digest_node, sub, &digest))
        return false;
    if (!is_hex64(digest)) {
        char quoted[80];
        diag_add(&l->diag, digest_node->mark, sub, "%s is not a SHA-256 "
                 "digest; write 64 hex digits (sha256sum FILE prints them)",
                 diag_quote(digest_node->text, digest_node->len, quoted,
                            sizeof quoted));
        return false;
    }
    char lower[SHA256_HEX_SIZE], actual[SHA256_HEX_SIZE];
    for (size_t i = 0; i < 64; i++)
        lower[i] = (char)(digest[i] >= 'A' && digest[i] <= 'F'
                              ? digest[i] - 'A' + 'a' : digest[i]);
    lower[64] = '\0';
    if (sha256_file(resolved, actual)) {
        diag_add(&l->diag, digest_node->mark, sub, "%s", roj_last_error());
        return false;
    }
    if (strcmp(lower, actual)) {
        diag_add(&l->diag, digest_node->mark, sub, "digest mismatch: "
                 "\"%s\" has sha256 %s, the swarm file expects %s. Restore "
                 "the right file or update the digest", resolved, actual,
                 lower);
        return false;
    }
    if (!(*sha256 = arena_strdup(l->arena, lower)))
        l->diag.nomem = true;
    return true;
}

static const char *gguf_copy_str(swarm_loader *l, const gguf_file *g,
                                 const char *key)
{
    const char *s;
    size_t n;
    if (gguf_get_str(g, key, &s, &n) != ROJ_OK)
        return NULL;
    return arena_strndup(l->arena, s, n);
}

/* Reads roj.task and the keys that go with it. A file that is not a GGUF
 * is a problem, and a GGUF without roj.task is a plain model. */
static void read_metadata(swarm_loader *l, swarm_model *m, const ynode *at,
                          const char *field)
{
    gguf_file *g = NULL;
    if (gguf_open(m->path, &g) != ROJ_OK) {
        diag_add(&l->diag, at->mark, field, "cannot read the model: %s",
                 roj_last_error());
        return;
    }
    m->task = gguf_copy_str(l, g, "roj.task");
    m->prompt_template = gguf_copy_str(l, g, "roj.prompt_template");
    m->none_word = gguf_copy_str(l, g, "roj.none_word");
    const char *key = m->task && !strcmp(m->task, "extract") ? "roj.slots"
                                                             : "roj.labels";
    int64_t k = gguf_find_key(g, key);
    if (k >= 0 && gguf_kv_type(g, k) == GGUF_TYPE_ARRAY &&
        gguf_kv_array_type(g, k) == GGUF_TYPE_STRING) {
        uint64_t n = gguf_kv_array_len(g, k);
        const char **labels = NULL;
        if (n > SWARM_MAX_LIST)
            diag_add(&l->diag, at->mark, field, "%s of \"%s\" has %llu "
                     "entries; at most %d are supported", key, m->path,
                     (unsigned long long)n, SWARM_MAX_LIST);
        else if (!(labels = arena_alloc(l->arena, (n + 1) * sizeof *labels)))
            l->diag.nomem = true;
        for (uint64_t i = 0; labels && i < n; i++) {
            const char *p;
            uint64_t len;
            if (gguf_get_arr_str(g, key, i, &p, &len) != ROJ_OK)
                continue;
            if (!(labels[m->n_labels++] = arena_strndup(l->arena, p, len)))
                l->diag.nomem = true;
        }
        m->labels = labels;
    }
    if (m->task && strcmp(m->task, "classify") && strcmp(m->task, "extract") &&
        strcmp(m->task, "generate"))
        diag_add(&l->diag, at->mark, field, "roj.task of \"%s\" is \"%s\"; "
                 "expected classify, extract or generate", m->path, m->task);
    gguf_close(g);
}

void load_models(swarm_loader *l, const ynode *models)
{
    if (models->kind != YNODE_MAP || models->n == 0) {
        diag_add(&l->diag, models->mark, "models", "expected a mapping of "
                 "model names to files, got %s", ynode_kind_name(models));
        return;
    }
    swarm_file *f = l->file;
    f->models = arena_alloc(l->arena, models->n * sizeof *f->models);
    if (!f->models) {
        l->diag.nomem = true;
        return;
    }
    for (size_t i = 0; i < models->n && !diag_full(&l->diag); i++) {
        const ynode *key = ymap_key(models, i), *value = ymap_value(models, i);
        char field[256];
        field_key(field, sizeof field, "models", key->text);
        swarm_model *m = &f->models[f->n_models++];
        m->name = key->text;
        m->mark = key->mark;
        const char *sha = NULL;
        if (load_file_ref(l, value, field, &m->path, &sha))
            read_metadata(l, m, value, field);
        m->sha256 = sha;
    }
}

const char *const *model_names(swarm_loader *l)
{
    swarm_file *f = l->file;
    const char **names = arena_alloc(l->arena, (f->n_models + 1) *
                                                   sizeof *names);
    for (size_t i = 0; names && i < f->n_models; i++)
        names[i] = f->models[i].name;
    return names;
}
