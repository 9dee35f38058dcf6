/*
 * Training throughput: full steps (forward, backward, gradient norm and
 * AdamW update) of a randomly initialized llama-architecture model on
 * random tokens, as `roj train` runs them.
 *
 *   bench_train [-t N] [--batch B] [--seq T] [--steps N] [--warmup N] ...
 *
 * The batch is B sequences of T tokens with a target on every position,
 * which is how llm.c's train_gpt2.c trains, so the two can be compared on
 * the same shape. Times are wall-clock (CLOCK_MONOTONIC) because the
 * steps run on several threads: other processes on the machine slow the
 * result down. The last line starts with "median:" and gives tokens/s
 * and an estimate of GFLOP/s.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/threadpool.h"
#include "roj/roj.h"
#include "train/optim.h"
#include "train/tblas.h"
#include "train/tgraph.h"
#include "train/tmodel.h"

typedef struct bench_opts {
    int threads, batch, seq, steps, warmup;
    int n_layer, n_embd, n_head, n_ff, n_vocab;
    int untied;
} bench_opts;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int compare_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n values; sorts v in place. */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, compare_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Estimated floating-point operations of one training step, counting a
 * multiply-add as 2. The forward pass costs 2 per matrix weight per token,
 * plus QK^T and AV over the T(T+1)/2 causal position pairs per sequence.
 * Backward costs twice the forward. Element-wise work (norms, softmax,
 * RoPE, AdamW) is left out. */
static double step_flops(const tshape *hp, int batch, int seq)
{
    const double C = hp->n_embd;
    const double q_dim = (double)hp->n_head * hp->head_dim;
    const double kv_dim = (double)hp->n_head_kv * hp->head_dim;
    const double layer_weights =
        C * q_dim + 2.0 * C * kv_dim + q_dim * C + 3.0 * C * hp->n_ff;
    const double per_token =
        2.0 * (hp->n_layer * layer_weights + (double)hp->n_vocab * C);
    const double pairs = (double)seq * (seq + 1) / 2.0;
    const double attention = 2.0 * 2.0 * pairs * q_dim * hp->n_layer;
    const double forward = per_token * batch * seq + attention * batch;
    return 3.0 * forward;
}

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: bench_train [options]\n"
            "Times training steps of a random llama-architecture model.\n"
            "  -t N          threads (default 1)\n"
            "  --batch B     sequences per step (default 4)\n"
            "  --seq T       tokens per sequence (default 256)\n"
            "  --steps N     timed steps (default 5)\n"
            "  --warmup N    untimed steps first (default 1)\n"
            "  --layers N    transformer blocks (default 6)\n"
            "  --embd N      embedding width (default 384)\n"
            "  --heads N     attention heads, as many key-value heads "
            "(default 6)\n"
            "  --ff N        feed-forward width (default 1536)\n"
            "  --vocab N     vocabulary size (default 50257)\n"
            "  --untied      separate output head (default: tied to the "
            "token embedding)\n");
}

/* Parses the value of a numeric option; returns 0 or -1 after printing
 * the error. */
static int parse_int(const char *name, const char *text, int min, int *out)
{
    char *end = NULL;
    errno = 0;
    const long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min ||
        v > 1000000000L) {
        fprintf(stderr,
                "bench_train: invalid value '%s' for %s: expected an "
                "integer of at least %d\n",
                text, name, min);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* Parses argv into o; returns 0, 1 after --help, or 2 on an error. */
static int parse_args(int argc, char **argv, bench_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            print_usage(stdout);
            return 1;
        }
        if (!strcmp(a, "--untied")) {
            o->untied = 1;
            continue;
        }
        int *dst = !strcmp(a, "-t")         ? &o->threads
                   : !strcmp(a, "--batch")  ? &o->batch
                   : !strcmp(a, "--seq")    ? &o->seq
                   : !strcmp(a, "--steps")  ? &o->steps
                   : !strcmp(a, "--warmup") ? &o->warmup
                   : !strcmp(a, "--layers") ? &o->n_layer
                   : !strcmp(a, "--embd")   ? &o->n_embd
                   : !strcmp(a, "--heads")  ? &o->n_head
                   : !strcmp(a, "--ff")     ? &o->n_ff
                   : !strcmp(a, "--vocab")  ? &o->n_vocab
                                            : NULL;
        if (!dst) {
            fprintf(stderr, "bench_train: unknown option '%s' (see "
                            "--help)\n", a);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_train: missing value for %s\n", a);
            return 2;
        }
        if (parse_int(a, argv[++i], dst == &o->warmup ? 0 : 1, dst) != 0)
            return 2;
    }
    if (o->n_embd % o->n_head != 0) {
        fprintf(stderr, "bench_train: --embd %d is not a multiple of "
                        "--heads %d\n", o->n_embd, o->n_head);
        return 2;
    }
    return 0;
}

/* A batch of random tokens and the arrays it points into. */
typedef struct bench_batch {
    int32_t *tokens, *pos, *seq_start, *tgt_row, *tgt_id;
    tbatch b;
} bench_batch;

static void batch_free(bench_batch *bb)
{
    free(bb->tokens);
    free(bb->pos);
    free(bb->seq_start);
    free(bb->tgt_row);
    free(bb->tgt_id);
}

/* Fills bb with o->batch sequences of o->seq random tokens, every row a
 * target. Returns 0, or -1 when out of memory; free with batch_free
 * either way. */
static int batch_init(bench_batch *bb, const bench_opts *o)
{
    const size_t n = (size_t)o->batch * (size_t)o->seq;
    memset(bb, 0, sizeof *bb);
    bb->tokens = malloc(n * sizeof(int32_t));
    bb->pos = malloc(n * sizeof(int32_t));
    bb->seq_start = malloc(((size_t)o->batch + 1) * sizeof(int32_t));
    bb->tgt_row = malloc(n * sizeof(int32_t));
    bb->tgt_id = malloc(n * sizeof(int32_t));
    if (!bb->tokens || !bb->pos || !bb->seq_start || !bb->tgt_row ||
        !bb->tgt_id)
        return -1;

    uint64_t r = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < n; i++) {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        bb->tokens[i] = (int32_t)(r % (uint64_t)o->n_vocab);
        bb->pos[i] = (int32_t)(i % (size_t)o->seq);
        bb->tgt_row[i] = (int32_t)i;
    }
    /* Row i predicts the next token of its sequence; the last row of a
     * sequence gets the first token, as any id serves for timing. */
    for (size_t i = 0; i < n; i++)
        bb->tgt_id[i] = bb->tokens[(i + 1) % n];
    for (int s = 0; s <= o->batch; s++)
        bb->seq_start[s] = s * o->seq;
    bb->b = (tbatch){.n_tok = (int32_t)n, .tokens = bb->tokens,
                     .pos = bb->pos, .n_seq = o->batch,
                     .seq_start = bb->seq_start, .n_tgt = (int32_t)n,
                     .tgt_row = bb->tgt_row, .tgt_id = bb->tgt_id,
                     .tgt_w = NULL};
    return 0;
}

/* Phase times of the timed steps, in seconds. */
typedef struct step_times {
    double *total, *graph, *optim;
} step_times;

/* Runs warm-up and timed steps; returns ROJ_OK or the failing status. */
static roj_status run_steps(const bench_opts *o, tmodel *m, tgraph *g,
                            roj_pool *pool, const tbatch *b, step_times *t)
{
    const optim_cfg cfg = {.lr = 1e-4f, .min_lr_frac = 1.0f,
                           .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                           .weight_decay = 0.0f, .clip = 0.0f,
                           .warmup = 0, .total = o->warmup + o->steps};
    float *mom = calloc((size_t)m->n_params, sizeof(float));
    float *vel = calloc((size_t)m->n_params, sizeof(float));
    roj_status st = ROJ_OK;
    if (!mom || !vel) {
        fprintf(stderr, "bench_train: out of memory for AdamW moments\n");
        st = ROJ_ERR_NOMEM;
        goto cleanup;
    }
    for (int step = 0; step < o->warmup + o->steps; step++) {
        const double t0 = now_seconds();
        memset(m->grads, 0, (size_t)m->n_params * sizeof(float));
        double loss_sum = 0.0;
        st = tgraph_run(g, b, 1.0f, &loss_sum, NULL);
        if (st)
            goto cleanup;
        const double t1 = now_seconds();

        /* The gradients are sums over the targets: scale to the mean. */
        const float scale = 1.0f / (float)b->n_tgt;
        volatile double norm = optim_grad_norm(m, pool) * scale;
        (void)norm;
        optim_step(&cfg, m, mom, vel, step + 1, optim_lr(&cfg, step), scale,
                   pool);
        const double t2 = now_seconds();

        fprintf(stderr, "step %d: loss %.4f, %.1f ms (graph %.1f ms)%s\n",
                step, loss_sum / b->n_tgt, (t2 - t0) * 1e3, (t1 - t0) * 1e3,
                step < o->warmup ? ", warm-up" : "");
        if (step >= o->warmup) {
            const int k = step - o->warmup;
            t->total[k] = t2 - t0;
            t->graph[k] = t1 - t0;
            t->optim[k] = t2 - t1;
        }
    }

cleanup:
    free(mom);
    free(vel);
    return st;
}

int main(int argc, char **argv)
{
    bench_opts o = {.threads = 1, .batch = 4, .seq = 256, .steps = 5,
                    .warmup = 1, .n_layer = 6, .n_embd = 384, .n_head = 6,
                    .n_ff = 1536, .n_vocab = 50257};
    const int parsed = parse_args(argc, argv, &o);
    if (parsed != 0)
        return parsed == 1 ? 0 : 2;

    const tshape hp = {.n_vocab = o.n_vocab, .n_embd = o.n_embd,
                       .n_layer = o.n_layer, .n_head = o.n_head,
                       .n_head_kv = o.n_head,
                       .head_dim = o.n_embd / o.n_head, .n_ff = o.n_ff,
                       .n_ctx = o.seq > 256 ? o.seq : 256,
                       .rope_base = 10000.0f, .rope_freq_scale = 1.0f,
                       .rms_eps = 1e-5f, .tied = !o.untied};
    tmodel *m = NULL;
    roj_pool *pool = NULL;
    tgraph *g = NULL;
    bench_batch bb = {0};
    step_times t = {0};
    int rc = 1;

    /* Model, pool, graph scratch and the batch. */
    roj_status st = tshape_check(&hp);
    if (!st)
        st = tmodel_init(&hp, 1, &m);
    if (!st)
        st = pool_create(o.threads, &pool);
    const int32_t n_tok = o.batch * o.seq;
    if (!st)
        st = tgraph_create(m, pool, n_tok, n_tok, o.seq, &g);
    if (st) {
        fprintf(stderr, "bench_train: setup failed: %s\n", roj_last_error());
        goto cleanup;
    }
    t.total = malloc((size_t)o.steps * sizeof(double));
    t.graph = malloc((size_t)o.steps * sizeof(double));
    t.optim = malloc((size_t)o.steps * sizeof(double));
    if (batch_init(&bb, &o) != 0 || !t.total || !t.graph || !t.optim) {
        fprintf(stderr, "bench_train: out of memory for the batch\n");
        goto cleanup;
    }

    printf("model: llama, %d layers, embd %d, %d heads, ff %d, vocab %d, "
           "%s, %.2f M parameters\n",
           hp.n_layer, hp.n_embd, hp.n_head, hp.n_ff, hp.n_vocab,
           hp.tied ? "tied output" : "untied output", m->n_params / 1e6);
    printf("batch: %d x %d tokens, %d threads, blas: %s\n", o.batch, o.seq,
           o.threads, tblas_name());
    fflush(stdout);

    if ((st = run_steps(&o, m, g, pool, &bb.b, &t))) {
        fprintf(stderr, "bench_train: training step failed: %s\n",
                roj_last_error());
        goto cleanup;
    }

    /* Summary from the median step. */
    const double step_s = median(t.total, o.steps);
    const double graph_s = median(t.graph, o.steps);
    const double optim_s = median(t.optim, o.steps);
    const double flops = step_flops(&hp, o.batch, o.seq);
    printf("median: %.1f tokens/s, %.1f GFLOP/s (estimate), step %.1f ms "
           "(forward+backward %.1f ms, norm+AdamW %.1f ms) over %d steps\n",
           n_tok / step_s, flops / step_s * 1e-9, step_s * 1e3,
           graph_s * 1e3, optim_s * 1e3, o.steps);
    rc = 0;

cleanup:
    free(t.total);
    free(t.graph);
    free(t.optim);
    batch_free(&bb);
    tgraph_free(g);
    pool_destroy(pool);
    tmodel_free(m);
    return rc;
}
