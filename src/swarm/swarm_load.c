/* swarm_load: read the file, build the tree, run the loader stages and
 * report every problem found. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "swarm/swarm_internal.h"

static void load_top(swarm_loader *l, const ynode *root)
{
    static const char *const keys[] = {"version", "name", "models", "skills",
                                       "pipelines"};
    swarm_mark start = {1, 1};
    if (root->kind != YNODE_MAP) {
        diag_add(&l->diag, root->mark, NULL, "expected a mapping with "
                 "version, models, skills and pipelines, got %s",
                 ynode_kind_name(root));
        return;
    }
    diag_check_keys(&l->diag, root, NULL, keys, 5);
    const ynode *v = ymap_get(root, "version");
    uint64_t version;
    if (!v)
        diag_add(&l->diag, start, "version", "missing; start the file with "
                 "version: 1");
    else if (read_uint(l, v, "version", 0, UINT32_MAX, &version) &&
             version != 1)
        diag_add(&l->diag, v->mark, "version", "version %llu is not "
                 "supported; this roj reads version 1",
                 (unsigned long long)version);
    if ((v = ymap_get(root, "name")))
        read_string(l, v, "name", &l->file->name);

    static const char *const sections[] = {"models", "skills", "pipelines"};
    const ynode *part[3];
    for (int i = 0; i < 3; i++) {
        part[i] = ymap_get(root, sections[i]);
        if (!part[i])
            diag_add(&l->diag, root->mark, sections[i], "missing; a swarm "
                     "file needs models, skills and pipelines");
    }
    if (!part[0])
        return;
    /* Steps need their skills' outputs, which may come from the model
     * files, so pipelines are checked only when every model and skill
     * loaded: a missing model file gives one problem, not one per step
     * that uses it. */
    size_t before = l->diag.count;
    load_models(l, part[0]);
    if (!part[1])
        return;
    load_skills(l, part[1]);
    if (part[2] && l->diag.count == before)
        load_pipelines(l, part[2]);
}

roj_status swarm_parse(const char *text, size_t len, const char *path,
                       swarm_file **out, char **problems)
{
    *out = NULL;
    if (problems)
        *problems = NULL;
    if (len > SWARM_MAX_FILE_BYTES)
        return roj_error(ROJ_ERR_FORMAT, "%s: %zu bytes; a swarm file may "
                         "have at most %u", path, len, SWARM_MAX_FILE_BYTES);

    swarm_loader l = {.diag.file = path};
    roj_status st = ROJ_ERR_NOMEM;
    char *dir = NULL;
    ynode *root = NULL;
    l.arena = arena_create();
    if (!l.arena || !(l.file = arena_alloc(l.arena, sizeof *l.file)))
        goto fail;
    l.file->arena = l.arena;
    if (!(l.file->path = arena_strdup(l.arena, path)))
        goto fail;
    const char *slash = strrchr(path, '/');
    dir = slash ? strndup(path, (size_t)(slash - path + (slash == path)))
                : strdup("");
    if (!dir)
        goto fail;
    l.dir = dir;

    st = yaml_tree_parse(text, len, path, &root);
    if (st) {
        if (problems && !(*problems = strdup(roj_last_error())))
            st = ROJ_ERR_NOMEM;
        goto fail;
    }
    arena_keep_tree(l.arena, root);
    load_top(&l, root);

    if (l.diag.nomem) {
        st = roj_error(ROJ_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    if (l.diag.count) {
        if (l.diag.count > SWARM_MAX_PROBLEMS) {
            char more[96];
            snprintf(more, sizeof more, "%s: and %zu more problems\n", path,
                     l.diag.count - SWARM_MAX_PROBLEMS);
            size_t n = strlen(more);
            char *grown = realloc(l.diag.text, l.diag.len + n + 1);
            if (grown) {
                memcpy(grown + l.diag.len, more, n + 1);
                l.diag.text = grown;
                l.diag.len += n;
            }
        }
        size_t first = strcspn(l.diag.text, "\n");
        if (l.diag.count > 1)
            st = roj_error(ROJ_ERR_FORMAT, "%.*s (and %zu more problems)",
                           (int)first, l.diag.text, l.diag.count - 1);
        else
            st = roj_error(ROJ_ERR_FORMAT, "%.*s", (int)first, l.diag.text);
        if (problems) {
            *problems = l.diag.text;
            l.diag.text = NULL;
        }
        goto fail;
    }
    free(l.diag.text);
    free(dir);
    *out = l.file;
    return ROJ_OK;

fail:
    if (st == ROJ_ERR_NOMEM && !l.diag.nomem)
        roj_error(ROJ_ERR_NOMEM, "%s: out of memory", path);
    free(l.diag.text);
    free(dir);
    arena_destroy(l.arena);
    return st;
}

roj_status swarm_text_read(const char *path, char **text, size_t *len)
{
    *text = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return roj_error(ROJ_ERR_IO, "%s: cannot open: %s", path,
                         strerror(errno));
    char *buf = malloc(SWARM_MAX_FILE_BYTES + 1);
    if (!buf) {
        fclose(f);
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, SWARM_MAX_FILE_BYTES + 1, f);
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return roj_error(ROJ_ERR_IO, "%s: read failed", path);
    }
    *text = buf;
    *len = n;
    return ROJ_OK;
}

roj_status swarm_load(const char *path, swarm_file **out, char **problems)
{
    *out = NULL;
    if (problems)
        *problems = NULL;
    char *text = NULL;
    size_t len = 0;
    roj_status st = swarm_text_read(path, &text, &len);
    if (st == ROJ_OK)
        st = swarm_parse(text, len, path, out, problems);
    free(text);
    return st;
}

void swarm_free(swarm_file *file)
{
    if (file)
        arena_destroy(file->arena);
}

long swarm_find_skill(const swarm_file *file, const char *name)
{
    for (size_t i = 0; i < file->n_skills; i++)
        if (!strcmp(file->skills[i].name, name))
            return (long)i;
    return -1;
}

long swarm_find_pipeline(const swarm_file *file, const char *name)
{
    for (size_t i = 0; i < file->n_pipelines; i++)
        if (!strcmp(file->pipelines[i].name, name))
            return (long)i;
    return -1;
}

long swarm_find_step(const swarm_pipeline *pipeline, const char *id)
{
    for (size_t i = 0; i < pipeline->n_steps; i++)
        if (pipeline->steps[i].id && !strcmp(pipeline->steps[i].id, id))
            return (long)i;
    return -1;
}
