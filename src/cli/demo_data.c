/* The ticket files of the demo (see demo.h): their names carry the seed
 * and the count, so other settings never reuse the wrong file. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/demo.h"
#include "core/error.h"
#include "demo/tickets.h"

static bool regular_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static roj_status format_path(char *out, const char *dir, const char *name)
{
    int len = snprintf(out, PATH_MAX, "%s/%s", dir, name);
    if (len < 0 || len >= PATH_MAX)
        return roj_error(ROJ_ERR_INVALID_ARG, "the path %s/%s is too long",
                         dir, name);
    return ROJ_OK;
}

/* Generates n tickets from seed and writes the labeled file, and the
 * input file too when input_path is not NULL. */
static roj_status write_set(uint64_t seed, size_t n, const char *labeled_path,
                            const char *input_path)
{
    ticket_set set;
    roj_status st = tickets_generate(seed, n, &set);
    if (st)
        return st;
    st = tickets_write_labeled(&set, labeled_path);
    if (!st && input_path)
        st = tickets_write_inputs(&set, input_path);
    tickets_free(&set);
    return st;
}

roj_status demo_data_prepare(const demo_config *cfg, demo_paths *p)
{
    const unsigned long long seed = (unsigned long long)cfg->seed;
    char name[128];
    roj_status st;

    /* File names. */
    snprintf(name, sizeof name, "tickets-train-s%llu-n%d.jsonl", seed,
             (int)cfg->n_train);
    if ((st = format_path(p->train, cfg->cache_dir, name)))
        return st;
    snprintf(name, sizeof name, "tickets-test-s%llu-n%d.jsonl", seed + 1,
             (int)cfg->n_test);
    if ((st = format_path(p->test, cfg->cache_dir, name)))
        return st;
    snprintf(name, sizeof name, "tickets-input-s%llu-n%d.jsonl", seed + 1,
             (int)cfg->n_test);
    if ((st = format_path(p->input, cfg->cache_dir, name)))
        return st;
    if ((st = format_path(p->models, cfg->cache_dir, "models")))
        return st;

    if (!demo_make_dirs(p->models))
        return roj_error(ROJ_ERR_IO, "cannot create the folder %s: %s",
                         p->models, strerror(errno));

    /* The training set, then the test set and its input file. */
    if (cfg->fresh || !regular_file_exists(p->train)) {
        fprintf(stderr, "roj demo: writing %d training tickets to %s\n",
                (int)cfg->n_train, p->train);
        if ((st = write_set(cfg->seed, (size_t)cfg->n_train, p->train,
                            NULL)))
            return st;
    } else {
        fprintf(stderr, "roj demo: using cached %s\n", p->train);
    }
    if (cfg->fresh || !regular_file_exists(p->test) ||
        !regular_file_exists(p->input)) {
        fprintf(stderr, "roj demo: writing %d test tickets to %s\n",
                (int)cfg->n_test, p->test);
        if ((st = write_set(cfg->seed + 1, (size_t)cfg->n_test, p->test,
                            p->input)))
            return st;
    } else {
        fprintf(stderr, "roj demo: using cached %s\n", p->test);
    }
    return ROJ_OK;
}
