/* swarm_files_read: the name and the model and adapter files of a swarm
 * file, read before the files exist (see swarm.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "swarm/swarm_internal.h"

/* Collects entries into a growing array of the arena. */
typedef struct file_collect {
    swarm_loader *l;
    swarm_file_list *list;
    size_t cap;
    roj_status status;
} file_collect;

static bool list_grow(file_collect *c)
{
    if (c->list->n_files < c->cap)
        return true;
    size_t cap = c->cap ? c->cap * 2 : 8;
    swarm_named_file *files = arena_alloc(c->l->arena, cap * sizeof *files);
    if (!files)
        return false;
    if (c->list->n_files)
        memcpy(files, c->list->files, c->list->n_files * sizeof *files);
    c->list->files = files;
    c->cap = cap;
    return true;
}

/* Adds the file of node (a path or {path, sha256}) under field. */
static void collect_ref(file_collect *c, const ynode *node, const char *field)
{
    const ynode *path_node = node, *digest_node = NULL;
    if (node->kind == YNODE_MAP) {
        path_node = ymap_get(node, "path");
        digest_node = ymap_get(node, "sha256");
    }
    if (!path_node || path_node->kind != YNODE_SCALAR ||
        ynode_is_null(path_node) || strlen(path_node->text) != path_node->len)
        return;
    const char *digest = NULL;
    if (digest_node) {
        if (digest_node->kind != YNODE_SCALAR || !is_hex64(digest_node->text)) {
            c->status = roj_error(ROJ_ERR_FORMAT, "%s:%u:%u: %s.sha256: not "
                                  "a SHA-256 digest; write 64 hex digits "
                                  "(roj models push prints them)",
                                  c->l->diag.file, digest_node->mark.line,
                                  digest_node->mark.column, field);
            return;
        }
        char *lower = arena_strdup(c->l->arena, digest_node->text);
        if (!lower) {
            c->status = ROJ_ERR_NOMEM;
            return;
        }
        for (char *p = lower; *p; p++)
            if (*p >= 'A' && *p <= 'F')
                *p = (char)(*p - 'A' + 'a');
        digest = lower;
    }
    const char *resolved = resolve_path(c->l, path_node->text);
    const char *field_copy = arena_strdup(c->l->arena, field);
    if (!resolved || !field_copy) {
        c->status = ROJ_ERR_NOMEM;
        return;
    }
    /* An adapter shared by several skills is listed once; the first
     * digest given for it wins and swarm_load checks the others. */
    for (size_t i = 0; i < c->list->n_files; i++) {
        swarm_named_file *f = &c->list->files[i];
        if (strcmp(f->path, resolved) == 0) {
            if (!f->sha256)
                f->sha256 = digest;
            return;
        }
    }
    if (!list_grow(c)) {
        c->status = ROJ_ERR_NOMEM;
        return;
    }
    c->list->files[c->list->n_files++] = (swarm_named_file){
        field_copy, resolved, digest, path_node->mark};
}

static void collect_all(file_collect *c, const ynode *root)
{
    const ynode *name = ymap_get(root, "name");
    if (name && name->kind == YNODE_SCALAR && !ynode_is_null(name))
        c->list->name = name->text;

    char field[256];
    const ynode *models = ymap_get(root, "models");
    for (size_t i = 0; models && models->kind == YNODE_MAP &&
                       i < models->n && c->status == ROJ_OK; i++) {
        field_key(field, sizeof field, "models", ymap_key(models, i)->text);
        collect_ref(c, ymap_value(models, i), field);
    }
    const ynode *skills = ymap_get(root, "skills");
    for (size_t i = 0; skills && skills->kind == YNODE_MAP &&
                       i < skills->n && c->status == ROJ_OK; i++) {
        const ynode *skill = ymap_value(skills, i);
        const ynode *lora = skill->kind == YNODE_MAP
                                ? ymap_get(skill, "lora") : NULL;
        if (!lora)
            continue;
        char parent[256];
        field_key(parent, sizeof parent, "skills", ymap_key(skills, i)->text);
        field_key(field, sizeof field, parent, "lora");
        collect_ref(c, lora, field);
    }
}

roj_status swarm_files_read(const char *path, swarm_file_list **out)
{
    *out = NULL;
    char *text = NULL, *dir = NULL;
    size_t len = 0;
    ynode *root = NULL;
    swarm_loader l = {.diag.file = path};
    roj_status st = swarm_text_read(path, &text, &len);
    if (st)
        return st;
    if (len > SWARM_MAX_FILE_BYTES) {
        st = roj_error(ROJ_ERR_FORMAT, "%s: more than %u bytes; a swarm "
                       "file may have at most that", path,
                       SWARM_MAX_FILE_BYTES);
        goto fail_text;
    }
    st = yaml_tree_parse(text, len, path, &root);
    if (st)
        goto fail_text;

    st = ROJ_ERR_NOMEM;
    const char *slash = strrchr(path, '/');
    dir = slash ? strndup(path, (size_t)(slash - path + (slash == path)))
                : strdup("");
    l.arena = arena_create();
    swarm_file_list *list = l.arena ? arena_alloc(l.arena, sizeof *list)
                                    : NULL;
    if (!dir || !list) {
        yaml_tree_free(root);
        goto fail_arena;
    }
    arena_keep_tree(l.arena, root);
    list->arena = l.arena;
    l.dir = dir;
    file_collect c = {&l, list, 0, ROJ_OK};
    if (root->kind == YNODE_MAP)
        collect_all(&c, root);
    st = c.status;
    if (st == ROJ_ERR_NOMEM)
        roj_error(ROJ_ERR_NOMEM, "%s: out of memory", path);
    if (st)
        goto fail_arena;
    free(dir);
    free(text);
    *out = list;
    return ROJ_OK;

fail_arena:
    arena_destroy(l.arena);
    free(dir);
fail_text:
    free(text);
    return st;
}

void swarm_file_list_free(swarm_file_list *list)
{
    if (list)
        arena_destroy(list->arena);
}
