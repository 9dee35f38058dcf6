/*
 * Kernel benchmark: GEMV (one token) and GEMM (a prompt of n_tok tokens)
 * per weight type on the matrix shapes of SmolLM2-135M and Qwen2.5-0.5B,
 * one thread. Prints the median of several runs.
 *
 *   bench_kernels [--isa NAME] [--tok N] [--runs N] [--type NAME] [--cold]
 *
 * GEMV reports GB/s of weight bytes read. With --cold each call reads a
 * different copy of the matrix (256 MiB in total), so the weights come
 * from L3 or DRAM as in a real decode step instead of from L2. GEMM
 * reports GFLOP/s counting a multiply-add as 2 operations. Times are
 * thread CPU time.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"
#include "quant/fp16.h"
#include "quant/qtypes.h"

typedef struct {
    const char *model;
    int64_t n_in, n_out;
} shape;

static const shape shapes[] = {
    {"135M q/o", 576, 576},     {"135M gate/up", 576, 1536},
    {"135M down", 1536, 576},   {"135M output", 576, 49152},
    {"0.5B q/o", 896, 896},     {"0.5B gate/up", 896, 4864},
    {"0.5B down", 4864, 896},   {"tiny output", 64, 50257},
};

static const enum roj_type types[] = {
    ROJ_TYPE_F32,  ROJ_TYPE_F16,  ROJ_TYPE_BF16, ROJ_TYPE_Q4_0,
    ROJ_TYPE_Q4_1, ROJ_TYPE_Q5_0, ROJ_TYPE_Q5_1, ROJ_TYPE_Q8_0,
    ROJ_TYPE_Q4_K, ROJ_TYPE_Q5_K, ROJ_TYPE_Q6_K,
};

/* Thread CPU time, so time slices lost to other processes on a shared
 * machine do not count (cache and memory contention still do). */
static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Random weight bytes with sane F16 scale fields at every block start. */
static void fill_weights(enum roj_type type, uint8_t *w, int64_t n_in,
                         int64_t n_rows)
{
    const roj_type_info *info = qtype_info(type);
    size_t total = qtype_row_bytes(type, n_in) * (size_t)n_rows;
    for (size_t i = 0; i < total; i++)
        w[i] = (uint8_t)rng_next();
    if (type == ROJ_TYPE_F32) {
        float *f = (float *)w;
        for (size_t i = 0; i < total / 4; i++)
            f[i] = (float)(rng_next() % 2001) * 1e-3f - 1.0f;
        return;
    }
    if (info->block_size == 1) {
        uint16_t *h = (uint16_t *)w;
        for (size_t i = 0; i < total / 2; i++)
            h[i] = type == ROJ_TYPE_F16 ? fp32_to_fp16(0.01f * (float)(i % 7))
                                        : fp32_to_bf16(0.01f * (float)(i % 7));
        return;
    }
    size_t offset = type == ROJ_TYPE_Q6_K ? offsetof(block_q6_K, d) : 0;
    for (size_t b = 0; b < total / info->type_size; b++) {
        uint16_t d = fp32_to_fp16(0.01f);
        memcpy(w + b * info->type_size + offset, &d, 2);
        if (type != ROJ_TYPE_Q6_K)
            memcpy(w + b * info->type_size + 2, &d, 2);
    }
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, compare_doubles);
    return v[n / 2];
}

static void bench_one(enum roj_type type, const shape *s, int n_tok,
                      int runs, int cold)
{
    size_t mat_bytes = qtype_row_bytes(type, s->n_in) * (size_t)s->n_out;
    size_t copies = cold ? ((256u << 20) / mat_bytes) + 1 : 1;
    size_t act_bytes = kern_act_row_bytes(type, s->n_in);
    uint8_t *w = malloc(mat_bytes * copies);
    float *x = malloc((size_t)(s->n_in * n_tok) * sizeof *x);
    uint8_t *act = malloc(act_bytes * (size_t)n_tok);
    float *y = malloc((size_t)(s->n_out * n_tok) * sizeof *y);
    double gemv[16], gemm[16];

    if (!w || !x || !act || !y) {
        fprintf(stderr, "bench_kernels: out of memory for %s %s\n",
                qtype_name(type), s->model);
        exit(1);
    }
    fill_weights(type, w, s->n_in, s->n_out);
    for (size_t c = 1; c < copies; c++)
        memcpy(w + c * mat_bytes, w, mat_bytes);
    for (int64_t i = 0; i < s->n_in * n_tok; i++)
        x[i] = (float)(rng_next() % 2001) * 1e-3f - 1.0f;
    kern_quantize_act(type, x, s->n_in, act, s->n_in, n_tok);

    /* GEMV: repeat until a run lasts at least 20 ms. */
    int reps = 1;
    for (;;) {
        double t0 = now_seconds();
        for (int i = 0; i < reps; i++)
            kern_matmul(type, s->n_in, w + (i % copies) * mat_bytes, 0,
                        s->n_out, act, 1, y, s->n_out);
        if (now_seconds() - t0 > 0.02 || reps > (1 << 20))
            break;
        reps *= 2;
    }
    for (int run = 0; run < runs; run++) {
        double t0 = now_seconds();
        for (int i = 0; i < reps; i++)
            kern_matmul(type, s->n_in, w + (i % copies) * mat_bytes, 0,
                        s->n_out, act, 1, y, s->n_out);
        gemv[run] = (now_seconds() - t0) / reps;
    }
    for (int run = 0; run < runs; run++) {
        double t0 = now_seconds();
        kern_matmul(type, s->n_in, w, 0, s->n_out, act, n_tok, y, s->n_out);
        gemm[run] = now_seconds() - t0;
    }
    double tv = median(gemv, runs), tm = median(gemm, runs);
    printf("%-5s %-13s %5lldx%-6lld gemv %8.1f us %6.1f GB/s   gemm(%d) "
           "%8.2f ms %6.1f GFLOP/s\n",
           qtype_name(type), s->model, (long long)s->n_in,
           (long long)s->n_out, tv * 1e6, (double)mat_bytes / tv * 1e-9,
           n_tok, tm * 1e3,
           2.0 * (double)s->n_in * (double)s->n_out * n_tok / tm * 1e-9);
    fflush(stdout);
    free(w);
    free(x);
    free(act);
    free(y);
}

int main(int argc, char **argv)
{
    const char *isa = NULL, *only = NULL;
    int n_tok = 256, runs = 5, cold = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--isa") == 0 && i + 1 < argc)
            isa = argv[++i];
        else if (strcmp(argv[i], "--tok") == 0 && i + 1 < argc)
            n_tok = atoi(argv[++i]);
        else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--type") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (strcmp(argv[i], "--cold") == 0)
            cold = 1;
        else {
            fprintf(stderr, "usage: %s [--isa NAME] [--tok N] [--runs N] "
                    "[--type NAME] [--cold]\n", argv[0]);
            return 2;
        }
    }
    if (runs < 1 || runs > 16 || n_tok < 1) {
        fprintf(stderr, "bench_kernels: --runs must be 1..16 and --tok "
                "positive\n");
        return 2;
    }
    kern_init();
    if (isa && kern_select(isa) != 0) {
        fprintf(stderr, "bench_kernels: ISA %s is not available here\n", isa);
        return 1;
    }
    printf("isa %s, cpu: %s, median of %d runs, 1 thread, CPU time%s\n",
           kern_isa(),
           kern_cpu_features(), runs, cold ? ", cold weights" : "");
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        if (only && strcmp(only, qtype_name(types[t])) != 0)
            continue;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            if (qtype_row_bytes(types[t], shapes[s].n_in) != 0)
                bench_one(types[t], &shapes[s], n_tok, runs, cold);
    }
    return 0;
}
