/* End-to-end checks of roj train. A tiny model overfits a tiny dataset,
 * and the written GGUF gives the training pass's logits in the inference
 * engine. A run killed with SIGKILL and resumed ends with the same
 * weights as one that was not. LoRA adapters load on their base, and bad
 * data is an error naming the line. */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/threadpool.h"
#include "gguf/gguf.h"
#include "model/synth.h"
#include "roj/context.h"
#include "roj/model.h"
#include "roj/tokenizer.h"
#include "testutil.h"
#include "train/data.h"
#include "train/specialist.h"
#include "train/tgraph.h"
#include "train/tmodel.h"
#include "train/trainer.h"

static char path_buf[8][4096];

static const char *tmp(int slot, const char *name)
{
    snprintf(path_buf[slot], sizeof path_buf[slot], "%s/%s", test_tmpdir(),
             name);
    return path_buf[slot];
}

static const char *const texts[] = {
    "where is my new card", "my card has not arrived yet",
    "card still not delivered", "when will the card come",
    "I want my money back", "please refund the payment",
    "refund my last purchase", "give me a refund now",
    "what is the exchange rate", "how much is one euro in dollars",
    "rate for pounds today", "currency conversion rate please",
};
static const char *const labels[] = {"card", "card", "card", "card",
                                     "refund", "refund", "refund", "refund",
                                     "rate", "rate", "rate", "rate"};

static void write_classify_csv(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "text,category\n");
    for (int i = 0; i < 12; i++)
        fprintf(f, "%s,%s\n", texts[i], labels[i]);
    fclose(f);
}

/* A small shape that trains in a second or two. */
static void tiny_opts(train_opts *o, const char *data, const char *out)
{
    train_opts_default(o);
    o->data_path = data;
    o->out_path = out;
    o->data.label_column = "category";
    o->preset = "tiny";
    o->shape = (tshape){.n_embd = 32, .n_layer = 2, .n_head = 2,
                        .n_head_kv = 1, .n_ff = 64, .n_ctx = 48};
    o->vocab_size = 320;
    o->valid_fraction = 0.0;
    o->max_steps = 120;
    o->lr = 5e-3f;
    o->warmup = 5;
    o->batch_tokens = 256;
    o->n_threads = 2;
    o->lm_weight = 0.0f;
    o->dropout = 0.0f;
    o->token_dropout = 0.0f;
    o->label_smoothing = 0.0f;
    o->augment = 0;
    o->ema = 0.0f;
    o->keep_best = 0;
    o->quiet = true;
    o->no_plot = true;
}

static void test_overfit_and_reload(void **state)
{
    (void)state;
    const char *data = tmp(0, "tiny.csv"), *out = tmp(1, "tiny.gguf");
    write_classify_csv(data);
    train_opts o;
    tiny_opts(&o, data, out);
    o.metrics_path = tmp(2, "tiny.jsonl");
    assert_int_equal(train_run(&o), ROJ_OK);

    /* The last training loss in the metrics log is near zero. */
    size_t size;
    char *log = test_read_file(o.metrics_path, &size);
    const char *last = NULL;
    for (const char *p = log; (p = strstr(p, "\"kind\":\"train\"")); p++)
        last = p;
    assert_non_null(last);
    const double loss = atof(strstr(last, "\"loss\":") + 7);
    free(log);
    assert_true(loss < 0.05);

    /* The inference engine reads the file and gets every label right. */
    roj_model *model;
    assert_int_equal(roj_model_open(out, &model), ROJ_OK);
    spec_info info;
    assert_int_equal(spec_info_read(model, -1, &info), ROJ_OK);
    assert_true(info.has_meta);
    assert_int_equal(info.task, TRAIN_CLASSIFY);
    assert_int_equal(info.n_labels, 3);
    assert_string_equal(info.labels[0], "card");
    assert_non_null(info.label_tokens);
    roj_context_params cp = roj_context_default_params();
    cp.n_seq = 12;
    cp.n_threads = 2;
    roj_context *ctx;
    assert_int_equal(roj_context_create(model, &cp, &ctx), ROJ_OK);
    size_t lens[12];
    int32_t best[12];
    for (int i = 0; i < 12; i++)
        lens[i] = strlen(texts[i]);
    assert_int_equal(spec_classify(ctx, &info, texts, lens, NULL, 12, best,
                                   NULL), ROJ_OK);
    for (int i = 0; i < 12; i++)
        assert_string_equal(info.labels[best[i]], labels[i]);

    /* Training forward pass on the reloaded weights vs the engine's
     * logits for the same prompt. */
    tmodel *tm;
    assert_int_equal(tmodel_from_model(model, 0, 0, 0, 1, &tm), ROJ_OK);
    roj_token *ids;
    size_t n;
    assert_int_equal(spec_prompt(model, &info, texts[5], lens[5], NULL, NULL,
                                 &ids, &n), ROJ_OK);
    int32_t pos[64], start[2] = {0, (int32_t)n}, row = (int32_t)n - 1,
                     id = 0;
    for (size_t i = 0; i < n; i++)
        pos[i] = (int32_t)i;
    tbatch b = {.n_tok = (int32_t)n, .tokens = ids, .pos = pos, .n_seq = 1,
                .seq_start = start, .n_tgt = 1, .tgt_row = &row,
                .tgt_id = &id};
    tgraph *g;
    assert_int_equal(tgraph_create(tm, NULL, 64, 1, 64, &g), ROJ_OK);
    const int32_t nv = roj_model_n_vocab(model);
    float *want = malloc((size_t)nv * sizeof *want);
    double ls;
    assert_int_equal(tgraph_run(g, &b, 0.0f, &ls, want), ROJ_OK);
    roj_seq_truncate(ctx, 0, 0);
    roj_batch rb = {.n_tokens = (int32_t)n, .tokens = ids};
    assert_int_equal(roj_decode(ctx, &rb), ROJ_OK);
    const float *got = roj_get_logits(ctx, -1);
    double max_diff = 0;
    for (int32_t v = 0; v < nv; v++)
        max_diff = fmax(max_diff, fabs((double)got[v] - want[v]));
    /* The engine keeps K and V in F16; that is the whole difference. */
    assert_true(max_diff < 5e-3);
    /* The same run written as F16 reloads as F16 weights and gives nearly
     * the same logits. */
    train_opts h;
    tiny_opts(&h, data, tmp(3, "tiny-f16.gguf"));
    h.out_type = ROJ_TYPE_F16;
    assert_int_equal(train_run(&h), ROJ_OK);
    roj_model *hm;
    assert_int_equal(roj_model_open(tmp(3, "tiny-f16.gguf"), &hm), ROJ_OK);
    assert_true(roj_model_size(hm) < roj_model_size(model));
    roj_context *hc;
    assert_int_equal(roj_context_create(hm, &cp, &hc), ROJ_OK);
    assert_int_equal(roj_decode(hc, &rb), ROJ_OK);
    const float *hl = roj_get_logits(hc, -1);
    double hdiff = 0;
    for (int32_t v = 0; v < nv; v++)
        hdiff = fmax(hdiff, fabs((double)hl[v] - want[v]));
    assert_true(hdiff < 5e-2);
    roj_context_free(hc);
    roj_model_free(hm);
    free(want);
    free(ids);
    tgraph_free(g);
    tmodel_free(tm);
    spec_info_free(&info);
    roj_context_free(ctx);
    roj_model_free(model);
}

static void *tensor_bytes(const char *path, const char *name, size_t *n)
{
    gguf_file *f;
    assert_int_equal(gguf_open(path, &f), ROJ_OK);
    const gguf_tensor *t = gguf_find_tensor(f, name);
    assert_non_null(t);
    void *copy = malloc(t->n_bytes);
    memcpy(copy, t->data, t->n_bytes);
    *n = t->n_bytes;
    gguf_close(f);
    return copy;
}

/* Options of a kill-and-resume case that differ from tiny_opts. */
typedef struct resume_case {
    float ema;
    bool keep_best;
    float smoothing;
    float token_dropout;
} resume_case;

/* Fills the options of one run of a kill-and-resume case. */
static void resume_opts(train_opts *o, const char *data, const char *out,
                        const resume_case *rc)
{
    tiny_opts(o, data, out);
    o->max_steps = 300;
    o->checkpoint_every = 20;
    o->ema = rc->ema;
    o->keep_best = rc->keep_best;
    o->label_smoothing = rc->smoothing;
    o->token_dropout = rc->token_dropout;
    if (rc->keep_best) {
        o->valid_fraction = 0.25;
        o->eval_every = 20;
    }
}

/* A run killed with SIGKILL after its first checkpoints and resumed
 * writes the weights of an uninterrupted run, with or without a moving
 * average of the weights (ema > 0). */
static void kill_and_resume(const resume_case *rc)
{
    const char *data = tmp(0, "resume.csv");
    write_classify_csv(data);
    train_opts o;
    /* Uninterrupted reference run. */
    resume_opts(&o, data, tmp(1, "ref.gguf"), rc);
    assert_int_equal(train_run(&o), ROJ_OK);

    /* The same run in a child killed with SIGKILL after its first
     * checkpoints, then resumed here. */
    const char *out = tmp(2, "killed.gguf");
    const char *ckpt = tmp(3, "killed.gguf.ckpt");
    bool killed = false;
    for (int attempt = 0; attempt < 5 && !killed; attempt++) {
        unlink(ckpt);
        unlink(out);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            train_opts c;
            resume_opts(&c, data, out, rc);
            _exit(train_run(&c) == ROJ_OK ? 0 : 1);
        }
        struct stat sb;
        for (int i = 0; i < 20000 && stat(ckpt, &sb) != 0; i++)
            usleep(200);
        usleep((useconds_t)(attempt * 3000));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        killed = WIFSIGNALED(status) && stat(ckpt, &sb) == 0;
    }
    assert_true(killed);
    resume_opts(&o, data, out, rc);
    o.resume = true;
    assert_int_equal(train_run(&o), ROJ_OK);

    const char *names[] = {"token_embd.weight", "blk.0.attn_q.weight",
                           "blk.1.ffn_down.weight", "output_norm.weight"};
    for (int i = 0; i < 4; i++) {
        size_t na, nb;
        void *a = tensor_bytes(tmp(1, "ref.gguf"), names[i], &na);
        void *b = tensor_bytes(out, names[i], &nb);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na);
        free(a);
        free(b);
    }
    /* A finished run removes its checkpoint. */
    struct stat sb;
    assert_int_not_equal(stat(ckpt, &sb), 0);
}

static void test_kill_and_resume(void **state)
{
    (void)state;
    kill_and_resume(&(resume_case){0});
}

/* The moving average is what gets written: other weights than the last
 * ones, and resumable like them. */
static void test_ema_kill_and_resume(void **state)
{
    (void)state;
    const char *data = tmp(0, "resume.csv");
    write_classify_csv(data);
    train_opts o;
    tiny_opts(&o, data, tmp(4, "last.gguf"));
    o.max_steps = 300;
    assert_int_equal(train_run(&o), ROJ_OK);
    kill_and_resume(&(resume_case){.ema = 0.95f});
    size_t na, nb;
    void *a = tensor_bytes(tmp(4, "last.gguf"), "blk.0.attn_q.weight", &na);
    void *b = tensor_bytes(tmp(1, "ref.gguf"), "blk.0.attn_q.weight", &nb);
    assert_int_equal(na, nb);
    assert_true(memcmp(a, b, na) != 0);
    free(a);
    free(b);
}

/* Label smoothing and token dropout change what is learned, and a
 * killed run resumes to the same weights with them (the dropped tokens
 * depend on the seed, the epoch and the example only). */
static void test_regularized_kill_and_resume(void **state)
{
    (void)state;
    kill_and_resume(&(resume_case){.smoothing = 0.1f,
                                   .token_dropout = 0.2f});
    train_opts o;
    tiny_opts(&o, tmp(0, "resume.csv"), tmp(4, "plain.gguf"));
    o.max_steps = 300;
    assert_int_equal(train_run(&o), ROJ_OK);
    tiny_opts(&o, tmp(0, "resume.csv"), tmp(5, "dropped.gguf"));
    o.max_steps = 300;
    o.token_dropout = 0.2f;
    assert_int_equal(train_run(&o), ROJ_OK);

    /* Both options together, then token dropout alone. */
    const char *changed[] = {tmp(1, "ref.gguf"), tmp(5, "dropped.gguf")};
    for (int i = 0; i < 2; i++) {
        size_t na, nb;
        void *a = tensor_bytes(tmp(4, "plain.gguf"), "token_embd.weight",
                               &na);
        void *b = tensor_bytes(changed[i], "token_embd.weight", &nb);
        assert_int_equal(na, nb);
        assert_memory_not_equal(a, b, na);
        free(a);
        free(b);
    }
}

/* The values of field ("accuracy", "loss") of the validation lines. */
static int valid_numbers(const char *path, const char *field, double *out,
                         int cap)
{
    char *text = test_read_file(path, NULL);
    char key[32];
    snprintf(key, sizeof key, "\"%s\":", field);
    int n = 0;
    for (char *p = text; (p = strstr(p, "\"kind\":\"valid\"")) != NULL;
         p++) {
        char *a = strstr(p, key);
        assert_non_null(a);
        assert_true(n < cap);
        out[n++] = strtod(a + strlen(key), NULL);
    }
    free(text);
    return n;
}

/* Accuracy of each validation pass in a metrics file, in order. */
static int valid_accuracies(const char *path, double *acc, int cap)
{
    return valid_numbers(path, "accuracy", acc, cap);
}

/* Fills the options of a run with 20 validation passes. */
static void passes_opts(train_opts *o, const char *data, const char *out)
{
    tiny_opts(o, data, out);
    o->max_steps = 200;
    o->valid_fraction = 0.25;
    o->eval_every = 10;
}

/* --keep-best writes the weights of the best validation pass (the first
 * of equals) and its score, and resumes like any run. */
static void test_keep_best(void **state)
{
    (void)state;
    const char *data = tmp(0, "best.csv");
    write_classify_csv(data);
    train_opts o;
    passes_opts(&o, data, tmp(1, "best.gguf"));
    o.lr = 2e-2f;
    o.keep_best = true;
    o.metrics_path = tmp(2, "best.jsonl");
    assert_int_equal(train_run(&o), ROJ_OK);
    passes_opts(&o, data, tmp(3, "last.gguf"));
    o.lr = 2e-2f;
    assert_int_equal(train_run(&o), ROJ_OK);

    double acc[64];
    int n = valid_accuracies(tmp(2, "best.jsonl"), acc, 64);
    assert_int_equal(n, 20);
    int first_best = 0;
    for (int i = 1; i < n; i++)
        if ((float)acc[i] > (float)acc[first_best])
            first_best = i;
    gguf_file *f;
    float written = -1.0f;
    assert_int_equal(gguf_open(tmp(1, "best.gguf"), &f), ROJ_OK);
    assert_int_equal(gguf_get_f32(f, "roj.valid.accuracy", &written), ROJ_OK);
    gguf_close(f);
    assert_float_equal(written, (float)acc[first_best], 0.0f);

    size_t na, nb;
    void *a = tensor_bytes(tmp(1, "best.gguf"), "blk.0.attn_q.weight", &na);
    void *b = tensor_bytes(tmp(3, "last.gguf"), "blk.0.attn_q.weight", &nb);
    assert_int_equal(na, nb);
    printf("  validation passes %d, best first at %d\n", n, first_best + 1);
    if (first_best == n - 1)
        assert_memory_equal(a, b, na);
    else
        assert_true(memcmp(a, b, na) != 0);
    free(a);
    free(b);

    kill_and_resume(&(resume_case){.keep_best = true});

    /* --best-by-loss keeps the pass with the lowest validation loss. */
    passes_opts(&o, data, tmp(1, "byloss.gguf"));
    o.keep_best = true;
    o.best_by_loss = true;
    o.metrics_path = tmp(2, "byloss.jsonl");
    unlink(o.metrics_path);
    assert_int_equal(train_run(&o), ROJ_OK);
    double loss[64];
    assert_int_equal(valid_numbers(tmp(2, "byloss.jsonl"), "loss", loss, 64),
                     20);
    int lowest_loss = 0, highest_accuracy = 0;
    assert_int_equal(valid_accuracies(tmp(2, "byloss.jsonl"), acc, 64), 20);
    for (int i = 1; i < 20; i++) {
        if ((float)loss[i] < (float)loss[lowest_loss])
            lowest_loss = i;
        if ((float)acc[i] > (float)acc[highest_accuracy])
            highest_accuracy = i;
    }
    /* Otherwise this run could not tell the two choices apart. */
    assert_int_not_equal(lowest_loss, highest_accuracy);
    assert_int_equal(gguf_open(tmp(1, "byloss.gguf"), &f), ROJ_OK);
    assert_int_equal(gguf_get_f32(f, "roj.valid.loss", &written), ROJ_OK);
    gguf_close(f);
    printf("  lowest validation loss at pass %d\n", lowest_loss + 1);
    assert_float_equal(written, (float)loss[lowest_loss], 0.0f);
}

/* Classify keeps the best validated moving average by default; the other
 * tasks write their last weights; given values stay. */
static void test_task_defaults(void **state)
{
    (void)state;
    train_opts o;
    train_opts_default(&o);
    o.task = TRAIN_CLASSIFY;
    train_task_defaults(&o);
    assert_float_equal(o.ema, 0.998f, 0.0f);
    assert_int_equal(o.keep_best, 1);
    assert_int_equal(o.epochs, 30);
    assert_float_equal(o.token_dropout, 0.2f, 0.0f);
    assert_float_equal(o.label_smoothing, 0.0f, 0.0f);
    /* Validation takes 10% of the records, at most 500. A given share
     * stays as it is. */
    assert_float_equal(train_valid_fraction(&o, 1000), 0.1, 0.0);
    assert_float_equal(train_valid_fraction(&o, 10003), 500.0 / 10003, 1e-12);
    o.valid_fraction = 0.25;
    assert_float_equal(train_valid_fraction(&o, 10003), 0.25, 0.0);
    train_opts_default(&o);
    o.task = TRAIN_EXTRACT;
    assert_float_equal(train_valid_fraction(&o, 10003), 0.1, 0.0);
    train_opts_default(&o);
    o.task = TRAIN_EXTRACT;
    train_task_defaults(&o);
    assert_float_equal(o.ema, 0.0f, 0.0f);
    assert_int_equal(o.keep_best, 0);
    assert_float_equal(o.token_dropout, 0.0f, 0.0f);
    train_opts_default(&o);
    o.task = TRAIN_CLASSIFY;
    o.ema = 0.0f;
    o.keep_best = 0;
    o.token_dropout = 0.0f;
    train_task_defaults(&o);
    assert_float_equal(o.ema, 0.0f, 0.0f);
    assert_int_equal(o.keep_best, 0);
    assert_float_equal(o.token_dropout, 0.0f, 0.0f);
}

static void test_resume_other_options(void **state)
{
    (void)state;
    const char *data = tmp(0, "other.csv");
    write_classify_csv(data);
    train_opts o;
    tiny_opts(&o, data, tmp(1, "other.gguf"));
    o.max_steps = 40;
    o.checkpoint_every = 10;
    volatile int stop = 0;
    o.stop = &stop;
    stop = 1;   /* stops at once, writing a checkpoint */
    assert_int_equal(train_run(&o), ROJ_ERR_ABORTED);
    o.stop = NULL;
    o.resume = true;
    o.lr = 1e-3f;   /* different options: refused */
    assert_int_not_equal(train_run(&o), ROJ_OK);
    assert_non_null(strstr(roj_last_error(), "another run"));
}

static void test_bad_data(void **state)
{
    (void)state;
    const char *data = tmp(0, "bad.csv");
    FILE *f = fopen(data, "w");
    fprintf(f, "text,category\nfine row,a\n\"unterminated,b\n");
    fclose(f);
    train_opts o;
    tiny_opts(&o, data, tmp(1, "bad.gguf"));
    assert_int_equal(train_run(&o), ROJ_ERR_FORMAT);
    assert_non_null(strstr(roj_last_error(), "bad.csv:3"));
    tiny_opts(&o, tmp(0, "missing.csv"), tmp(1, "bad.gguf"));
    assert_int_not_equal(train_run(&o), ROJ_OK);
    assert_non_null(strstr(roj_last_error(), "missing.csv"));
    write_classify_csv(data);
    tiny_opts(&o, data, tmp(1, "bad.gguf"));
    o.data.label_column = "label";   /* not in the header */
    assert_int_equal(train_run(&o), ROJ_ERR_FORMAT);
    assert_non_null(strstr(roj_last_error(), "label"));
}

static void test_extract_and_lora(void **state)
{
    (void)state;
    /* Extract on a from-scratch model: spans of a fixed pattern. */
    const char *data = tmp(0, "spans.jsonl");
    FILE *f = fopen(data, "w");
    const char *names[] = {"Anna", "Boris", "Carl", "Dana", "Emil", "Fay"};
    for (int i = 0; i < 6; i++) {
        const int start = 9;
        fprintf(f, "{\"text\": \"table for %s at 7\", \"labels\": [{\"slot\": "
                "\"name\", \"valueSpan\": {\"startIndex\": %d, "
                "\"endIndex\": %d}}]}\n", names[i], start + 1,
                start + 1 + (int)strlen(names[i]));
    }
    fprintf(f, "{\"text\": \"no name here\"}\n");
    fclose(f);
    train_opts o;
    tiny_opts(&o, data, tmp(1, "spans.gguf"));
    o.task = TRAIN_EXTRACT;
    o.max_steps = 150;
    assert_int_equal(train_run(&o), ROJ_OK);
    roj_model *model;
    assert_int_equal(roj_model_open(tmp(1, "spans.gguf"), &model), ROJ_OK);
    spec_info info;
    assert_int_equal(spec_info_read(model, -1, &info), ROJ_OK);
    assert_int_equal(info.task, TRAIN_EXTRACT);
    assert_string_equal(info.labels[0], "name");
    roj_context *ctx;
    roj_context_params cp = roj_context_default_params();
    assert_int_equal(roj_context_create(model, &cp, &ctx), ROJ_OK);
    roj_pieces *pieces;
    assert_int_equal(roj_pieces_create(roj_model_vocab(model), &pieces),
                     ROJ_OK);
    roj_span_result r = {0};
    const char *in = "table for Carl at 7";
    assert_int_equal(spec_extract(ctx, &info, pieces, in, strlen(in), "name",
                                  NULL, NULL, &r), ROJ_OK);
    assert_false(r.is_none);
    assert_string_equal(r.text, "Carl");
    free(r.text);
    /* With a cache of the prompt, the same answers, twice over. */
    spec_cache cache = {0};
    for (int rep = 0; rep < 2; rep++)
        for (int i = 0; i < 6; i++) {
            char q[64];
            snprintf(q, sizeof q, "table for %s at 7", names[i]);
            assert_int_equal(spec_extract(ctx, &info, pieces, q, strlen(q),
                                          "name", NULL, &cache, &r), ROJ_OK);
            assert_string_equal(r.text, names[i]);
            free(r.text);
        }
    spec_cache_free(&cache);
    roj_pieces_free(pieces);
    roj_context_free(ctx);
    spec_info_free(&info);

    /* LoRA on that model as a base: the adapter loads and changes the
     * output; rank and alpha are stored. */
    train_opts l;
    tiny_opts(&l, data, tmp(2, "spans.lora.gguf"));
    l.task = TRAIN_EXTRACT;
    l.base_path = tmp(1, "spans.gguf");
    l.lora_rank = 4;
    l.lora_alpha = 8.0f;
    l.lora_targets = TLORA_Q | TLORA_V | TLORA_DOWN;
    l.max_steps = 20;
    l.lr = 1e-2f;
    assert_int_equal(train_run(&l), ROJ_OK);
    roj_lora *lora;
    assert_int_equal(roj_lora_open(model, tmp(2, "spans.lora.gguf"), &lora),
                     ROJ_OK);
    /* The adapter carries the task and slots and extracts on its base. */
    spec_info ai;
    assert_int_equal(spec_info_read_adapter(tmp(2, "spans.lora.gguf"), &ai),
                     ROJ_OK);
    assert_int_equal(ai.task, TRAIN_EXTRACT);
    assert_int_equal(ai.n_labels, 1);
    assert_string_equal(ai.labels[0], "name");
    roj_context *lctx;
    assert_int_equal(roj_context_create(model, &cp, &lctx), ROJ_OK);
    const roj_lora *const set[1] = {lora};
    assert_int_equal(roj_context_set_lora(lctx, set, NULL, 1), ROJ_OK);
    assert_int_equal(roj_pieces_create(roj_model_vocab(model), &pieces),
                     ROJ_OK);
    assert_int_equal(spec_extract(lctx, &ai, pieces, in, strlen(in), "name",
                                  NULL, NULL, &r), ROJ_OK);
    assert_string_equal(r.text, "Carl");
    free(r.text);
    roj_pieces_free(pieces);
    roj_context_free(lctx);
    spec_info_free(&ai);
    roj_lora_free(lora);
    gguf_file *gf;
    assert_int_equal(gguf_open(tmp(2, "spans.lora.gguf"), &gf), ROJ_OK);
    float alpha;
    assert_int_equal(gguf_get_f32(gf, "adapter.lora.alpha", &alpha), ROJ_OK);
    assert_float_equal(alpha, 8.0f, 0);
    assert_non_null(gguf_find_tensor(gf, "blk.1.ffn_down.weight.lora_b"));
    assert_null(gguf_find_tensor(gf, "blk.0.attn_k.weight.lora_a"));
    gguf_close(gf);
    roj_model_free(model);
}

static void test_context_field(void **state)
{
    (void)state;
    const char *json = tmp(0, "ctx.jsonl");
    FILE *f = fopen(json, "w");
    fprintf(f, "{\"t\": \"at 7\", \"c\": {\"asked\": [\"time\", \"date\"]}, "
            "\"labels\": [{\"slot\": \"time\", \"valueSpan\": "
            "{\"startIndex\": 3, \"endIndex\": 4}}]}\n"
            "{\"t\": \"two of us\"}\n");
    fclose(f);
    train_data_opts o = {.task = TRAIN_EXTRACT, .text_column = "t",
                         .context_column = "c.asked"};
    train_dataset d;
    assert_int_equal(train_data_load(json, &o, &d), ROJ_OK);
    assert_int_equal(d.n, 2);   /* 2 records x 1 slot */
    assert_string_equal(d.ex[0].context, "time, date");
    assert_int_equal(d.ex[0].context_len, 10);
    assert_string_equal(d.ex[1].context, "");
    train_data_free(&d);

    const char *csv = tmp(1, "ctx.csv");
    f = fopen(csv, "w");
    fprintf(f, "text,label,asked\nhi there,greet,name\nbye,leave,\n");
    fclose(f);
    train_data_opts c = {.task = TRAIN_CLASSIFY, .context_column = "asked"};
    assert_int_equal(train_data_load(csv, &c, &d), ROJ_OK);
    assert_string_equal(d.ex[0].context, "name");
    assert_string_equal(d.ex[1].context, "");
    train_data_free(&d);
    c.context_column = "missing";
    assert_int_equal(train_data_load(csv, &c, &d), ROJ_ERR_FORMAT);
    train_data_free(&d);

    char *filled = train_fill_template_ctx(
        train_context_template(TRAIN_EXTRACT), "at 7", 4, "time", "time", 4);
    assert_string_equal(filled, "time\nat 7\ntime:");
    free(filled);
}

static void test_augment_spans(void **state)
{
    (void)state;
    const char *json = tmp(0, "aug.jsonl");
    FILE *f = fopen(json, "w");
    fprintf(f, "{\"text\": \"book for Anna Smith at 7:30\", \"labels\": ["
            "{\"slot\": \"first\", \"valueSpan\": {\"startIndex\": 9, "
            "\"endIndex\": 13}}, {\"slot\": \"time\", \"valueSpan\": "
            "{\"startIndex\": 23, \"endIndex\": 27}}]}\n"
            "{\"text\": \"no spans\"}\n");
    fclose(f);
    train_data_opts o = {.task = TRAIN_EXTRACT};
    train_dataset d;
    assert_int_equal(train_data_load(json, &o, &d), ROJ_OK);
    assert_int_equal(d.n, 4);   /* 2 records x 2 slots */
    size_t idx[4] = {0, 1, 2, 3};
    train_example *ex;
    char **owned;
    size_t n, n_owned;
    assert_int_equal(train_augment_spans(&d, idx, 4, 3, 9, &ex, &n, &owned,
                                         &n_owned), ROJ_OK);
    /* The labeled record gets 3 copies of its 2 examples; the other none. */
    assert_int_equal(n, 4 + 3 * 2);
    assert_int_equal(n_owned, 3);
    for (size_t i = 0; i < n; i++) {
        if (!ex[i].target)
            continue;
        assert_int_equal(ex[i].target_len,
                         (size_t)(ex[i].span_end - ex[i].span_start));
        assert_memory_equal(ex[i].text + ex[i].span_start, ex[i].target,
                            ex[i].target_len);
    }
    /* Copies keep the words around the spans and change the span words. */
    for (size_t i = 2; i < n; i++) {
        if (ex[i].text == d.ex[0].text || ex[i].text == d.ex[2].text)
            continue;
        assert_non_null(strstr(ex[i].text, "book for "));
        assert_non_null(strstr(ex[i].text, " Smith at "));
        assert_null(strstr(ex[i].text, "Anna"));
        if (ex[i].target && strcmp(d.labels[ex[i].label], "time") == 0) {
            assert_int_equal(ex[i].target_len, 4);   /* "7:30" shape */
            assert_int_equal(ex[i].target[1], ':');
        }
    }
    for (size_t i = 0; i < n_owned; i++)
        free(owned[i]);
    free(owned);
    free(ex);
    train_data_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overfit_and_reload),
        cmocka_unit_test(test_kill_and_resume),
        cmocka_unit_test(test_ema_kill_and_resume),
        cmocka_unit_test(test_regularized_kill_and_resume),
        cmocka_unit_test(test_keep_best),
        cmocka_unit_test(test_task_defaults),
        cmocka_unit_test(test_resume_other_options),
        cmocka_unit_test(test_bad_data),
        cmocka_unit_test(test_extract_and_lora),
        cmocka_unit_test(test_context_field),
        cmocka_unit_test(test_augment_spans),
    };
    return test_run_group(tests, NULL, NULL);
}
