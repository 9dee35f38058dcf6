/*
 * The three specialists of the demo, trained through train_run exactly as
 * `roj train` trains them. Each model file is named after a digest of
 * the training data and the options, so a second `roj demo` finds it and
 * skips training, and any change of data or options trains anew.
 *
 * The settings were chosen on the default data (3000 training and 500
 * test tickets, seed 1) with 2 threads, and the README quotes their
 * results. The extractor gets a vocabulary of 512 tokens. With the
 * preset's 2048, the BPE merges digit pairs and triples into hundreds of
 * rare tokens, and a tiny model trained this briefly does not learn to
 * copy order numbers made of them (order number F1 on the test tickets:
 * 0.38 against 0.76, each with --time-budget 60s). Steps of 1024 tokens
 * did better than half as many steps of 2048.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/demo.h"
#include "core/error.h"
#include "core/sha256.h"
#include "demo/tickets.h"
#include "train/trainer.h"

/* One specialist: what it learns and how long. */
typedef struct demo_specialist {
    const char *name;         /* file name stem and progress label */
    train_task task;
    const char *label_column; /* classify */
    const char *const *labels;
    size_t n_labels;
    int64_t steps;            /* optimizer steps */
    int32_t batch_tokens;     /* tokens per step */
    uint32_t vocab_size;      /* 0: the preset's */
    int augment;              /* extract: copies; -1: the task's default */
} demo_specialist;

static const char *const slot_names[] = {TICKETS_SLOT_ORDER,
                                         TICKETS_SLOT_PRODUCT};

static bool regular_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Fills o for specialist s on the training file. */
static void specialist_options(const demo_specialist *s,
                               const demo_config *cfg, const char *data_path,
                               train_opts *o)
{
    train_opts_default(o);
    o->task = s->task;
    o->data_path = data_path;
    o->data.text_column = TICKETS_TEXT_FIELD;
    o->data.label_set = s->labels;
    o->data.n_label_set = s->n_labels;
    if (s->task == TRAIN_CLASSIFY) {
        o->data.label_column = s->label_column;
    } else {
        o->data.spans_field = TICKETS_SPANS_FIELD;
        o->data.span_slot_key = TICKETS_SPAN_SLOT_KEY;
        o->data.span_start_key = TICKETS_SPAN_START_KEY;
        o->data.span_end_key = TICKETS_SPAN_END_KEY;
    }
    o->max_steps = cfg->steps > 0 ? cfg->steps : s->steps;
    o->batch_tokens = s->batch_tokens;
    o->vocab_size = s->vocab_size;
    o->augment = s->augment;
    o->n_threads = cfg->n_threads;
    o->no_plot = true;
    o->stop = cfg->stop;
    /* Resolved here, so that the cache key follows a change of the
     * task defaults. */
    train_task_defaults(o);
}

/* Writes the cache key of a model: 16 hex digits of a SHA-256 over the
 * data digest and every option that changes the weights. The thread
 * count is left out, since it changes only the last bits. */
static void cache_key(const train_opts *o, const char *data_hex,
                      char key[17])
{
    char text[1024], hex[SHA256_HEX_SIZE];
    uint8_t digest[SHA256_DIGEST_SIZE];
    int len = snprintf(text, sizeof text,
                       "data=%s task=%d preset=%s vocab=%u steps=%lld "
                       "batch=%d augment=%d lr=%g seed=%llu valid=%g "
                       "label=%s labels=%zu ema=%g best=%d td=%g ls=%g "
                       "defaults=3",
                       data_hex, (int)o->task, o->preset, o->vocab_size,
                       (long long)o->max_steps, (int)o->batch_tokens,
                       o->augment, (double)o->lr,
                       (unsigned long long)o->seed, o->valid_fraction,
                       o->data.label_column ? o->data.label_column : "-",
                       o->data.n_label_set, (double)o->ema, o->keep_best,
                       (double)o->token_dropout,
                       (double)o->label_smoothing);
    sha256(text, (size_t)len, digest);
    sha256_hex(digest, hex);
    memcpy(key, hex, 16);
    key[16] = '\0';
}

/* Trains one specialist into out (PATH_MAX bytes) unless it is cached. */
static roj_status train_one(const demo_specialist *s, const demo_config *cfg,
                            const demo_paths *p, const char *data_hex,
                            char *out)
{
    char key[17], ckpt[PATH_MAX + 8];
    train_opts o;
    roj_status st;

    specialist_options(s, cfg, p->train, &o);
    cache_key(&o, data_hex, key);
    int len = snprintf(out, PATH_MAX, "%s/%s-%s.gguf", p->models, s->name,
                       key);
    if (len < 0 || len >= PATH_MAX)
        return roj_error(ROJ_ERR_INVALID_ARG, "the path of the %s model "
                         "in %s is too long", s->name, p->models);
    snprintf(ckpt, sizeof ckpt, "%s.ckpt", out);

    if (!cfg->fresh && regular_file_exists(out)) {
        fprintf(stderr, "roj demo: using cached %s\n", out);
        return ROJ_OK;
    }
    /* A checkpoint left by an interrupted demo continues, unless the
     * user asked for everything anew. */
    if (cfg->fresh)
        unlink(ckpt);
    o.resume = regular_file_exists(ckpt);
    o.out_path = out;
    fprintf(stderr, "\nroj demo: training the %s %s (%lld steps)%s\n",
            s->name, s->task == TRAIN_CLASSIFY ? "classifier" : "extractor",
            (long long)o.max_steps,
            o.resume ? ", resuming from its checkpoint" : "");
    st = train_run(&o);
    if (st && st != ROJ_ERR_ABORTED)
        return roj_error_wrap(st, "training the %s model", s->name);
    return st;
}

roj_status demo_train_all(const demo_config *cfg, demo_paths *p)
{
    const demo_specialist specialists[] = {
        {"category", TRAIN_CLASSIFY, TICKETS_CATEGORY_FIELD,
         ticket_category_names(), TICKET_N_CATEGORIES, 300, 1024, 0, -1},
        {"urgency", TRAIN_CLASSIFY, TICKETS_URGENCY_FIELD,
         ticket_urgency_names(), TICKET_N_URGENCIES, 400, 1024, 0, -1},
        {"fields", TRAIN_EXTRACT, NULL, slot_names,
         sizeof slot_names / sizeof slot_names[0], 1200, 1024, 512, 1},
    };
    char *outs[] = {p->category, p->urgency, p->fields};
    char data_hex[SHA256_HEX_SIZE];
    roj_status st = sha256_file(p->train, data_hex);

    for (size_t i = 0; !st && i < sizeof outs / sizeof outs[0]; i++)
        st = train_one(&specialists[i], cfg, p, data_hex, outs[i]);
    return st;
}
