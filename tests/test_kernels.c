/*
 * Kernel tests. The scalar reference is checked against a double-precision
 * dequantize-then-dot, and every SIMD implementation this CPU runs is
 * checked against the scalar reference on random blocks with random
 * scales, odd sizes, several token counts and row ranges that do not start
 * at 0. An ISA the CPU lacks is skipped with a printed line.
 *
 * Tolerances. Both sides compute the same exact integer block sums, so they
 * differ only in the order of float additions of the scaled block sums:
 * the error is bounded by a few ulps times sum |w_i * a_i| (the "magnitude"
 * below), which is why errors are measured relative to it and not to |y|
 * (y can cancel to near zero).
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kern_impl.h"
#include "kernels/kernels.h"
#include "quant/fp16.h"
#include "quant/qtypes.h"
#include "quant/quant.h"

static const char *const simd_isas[] = {"avx2", "avx2-plain", "avx512",
                                        "neon", "neon-plain"};

static const enum roj_type weight_types[] = {
    ROJ_TYPE_F32,  ROJ_TYPE_F16,  ROJ_TYPE_BF16, ROJ_TYPE_Q4_0,
    ROJ_TYPE_Q4_1, ROJ_TYPE_Q5_0, ROJ_TYPE_Q5_1, ROJ_TYPE_Q8_0,
    ROJ_TYPE_Q4_K, ROJ_TYPE_Q5_K, ROJ_TYPE_Q6_K,
};
#define N_WEIGHT_TYPES (sizeof weight_types / sizeof weight_types[0])

/* A random half-float in +-[lo, hi). */
static uint16_t rand_half(uint64_t *rng, float lo, float hi)
{
    float v = test_rand_float(rng, lo, hi);
    if (test_rand_u64(rng) & 1)
        v = -v;
    return fp32_to_fp16(v);
}

/* Fills one weight row of type with random bits and realistic scales:
 * quantized fields are uniform random bytes, F16 scale fields are random
 * finite values of both signs (dmin positive as quantizers write it). */
static void fill_weight_row(enum roj_type type, uint8_t *row, int64_t n,
                            uint64_t *rng)
{
    size_t bytes = qtype_row_bytes(type, n);
    for (size_t i = 0; i < bytes; i++)
        row[i] = (uint8_t)test_rand_u64(rng);

    const roj_type_info *info = qtype_info(type);
    int64_t nb = n / info->block_size;
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *blk = row + (size_t)b * info->type_size;
        uint16_t h[2] = {rand_half(rng, 0.001f, 0.05f),
                         rand_half(rng, 0.001f, 0.05f)};
        switch (type) {
        case ROJ_TYPE_F32: {
            float v = test_rand_float(rng, -1.0f, 1.0f);
            memcpy(blk, &v, 4);
            break;
        }
        case ROJ_TYPE_F16:
            h[0] = fp32_to_fp16(test_rand_float(rng, -1.0f, 1.0f));
            memcpy(blk, h, 2);
            break;
        case ROJ_TYPE_BF16:
            h[0] = fp32_to_bf16(test_rand_float(rng, -1.0f, 1.0f));
            memcpy(blk, h, 2);
            break;
        case ROJ_TYPE_Q4_0: case ROJ_TYPE_Q5_0: case ROJ_TYPE_Q8_0:
            memcpy(blk, h, 2);
            break;
        case ROJ_TYPE_Q4_1: case ROJ_TYPE_Q5_1:
        case ROJ_TYPE_Q4_K: case ROJ_TYPE_Q5_K:
            h[1] = fp32_to_fp16(fabsf(fp16_to_fp32(h[1])));
            memcpy(blk, h, 4);
            break;
        case ROJ_TYPE_Q6_K:
            memcpy(blk + offsetof(block_q6_K, d), h, 2);
            break;
        default:
            fail_msg("no filler for type %d", (int)type);
        }
    }
}

/* Fills n floats: mostly small values plus some large ones so blocks get
 * different activation scales. */
static void fill_floats(float *x, int64_t n, uint64_t *rng)
{
    for (int64_t i = 0; i < n; i++) {
        x[i] = test_rand_float(rng, -1.0f, 1.0f);
        if ((test_rand_u64(rng) & 15) == 0)
            x[i] *= 8.0f;
    }
}

typedef struct {
    enum roj_type type;
    int64_t n_in, n_rows, n_tok;
    uint8_t *w;   /* (n_rows, row_bytes) */
    uint8_t *act; /* (n_tok, act_bytes) */
    size_t row_bytes, act_bytes;
    double *ref;  /* (n_tok, n_rows) double-precision products */
    double *mag;  /* (n_tok, n_rows) sum |w_i * a_i| */
} problem;

static void problem_make(problem *p, enum roj_type type, int64_t n_in,
                         int64_t n_rows, int64_t n_tok, uint64_t seed)
{
    uint64_t rng = seed;
    float *x = malloc((size_t)(n_tok * n_in) * sizeof *x);
    float *wf = malloc((size_t)n_in * sizeof *wf);
    float *af = malloc((size_t)n_in * sizeof *af);

    p->type = type;
    p->n_in = n_in;
    p->n_rows = n_rows;
    p->n_tok = n_tok;
    p->row_bytes = qtype_row_bytes(type, n_in);
    p->act_bytes = kern_act_row_bytes(type, n_in);
    assert_true(p->row_bytes > 0);
    assert_true(p->act_bytes > 0);
    p->w = malloc(p->row_bytes * (size_t)n_rows);
    p->act = malloc(p->act_bytes * (size_t)n_tok);
    p->ref = malloc((size_t)(n_rows * n_tok) * sizeof *p->ref);
    p->mag = malloc((size_t)(n_rows * n_tok) * sizeof *p->mag);
    for (int64_t r = 0; r < n_rows; r++)
        fill_weight_row(type, p->w + (size_t)r * p->row_bytes, n_in, &rng);
    fill_floats(x, n_tok * n_in, &rng);
    assert_int_equal(kern_select("scalar"), 0);
    kern_quantize_act(type, x, n_in, p->act, n_in, n_tok);

    /* Reference: dequantize both sides and multiply in double. */
    for (int64_t t = 0; t < n_tok; t++) {
        assert_int_equal(kern_scalar_dequantize(kern_act_type(type),
                                                p->act + t * p->act_bytes,
                                                af, n_in), 0);
        for (int64_t r = 0; r < n_rows; r++) {
            double sum = 0.0, mag = 0.0;
            assert_int_equal(kern_scalar_dequantize(
                                 type, p->w + r * p->row_bytes, wf, n_in), 0);
            for (int64_t i = 0; i < n_in; i++) {
                sum += (double)wf[i] * af[i];
                mag += fabs((double)wf[i] * af[i]);
            }
            p->ref[t * n_rows + r] = sum;
            p->mag[t * n_rows + r] = mag;
        }
    }
    free(x);
    free(wf);
    free(af);
}

static void problem_free(problem *p)
{
    free(p->w);
    free(p->act);
    free(p->ref);
    free(p->mag);
}

/* Runs the selected implementation on rows [r0, r1) and returns the worst
 * error relative to the magnitude; fails if it writes outside the range. */
static double problem_run(const problem *p, int64_t r0, int64_t r1,
                          const double *want, float *got)
{
    const float sentinel = -12345.0f;
    size_t count = (size_t)(p->n_rows * p->n_tok);
    double worst = 0.0;

    for (size_t i = 0; i < count; i++)
        got[i] = sentinel;
    kern_matmul(p->type, p->n_in, p->w, r0, r1, p->act, p->n_tok, got,
                p->n_rows);
    for (int64_t t = 0; t < p->n_tok; t++) {
        for (int64_t r = 0; r < p->n_rows; r++) {
            float v = got[t * p->n_rows + r];
            if (r < r0 || r >= r1) {
                if (v != sentinel)
                    fail_msg("%s %s: row %lld token %lld written outside "
                             "[%lld, %lld)", kern_isa(), qtype_name(p->type),
                             (long long)r, (long long)t, (long long)r0,
                             (long long)r1);
                continue;
            }
            double err = fabs((double)v - want[t * p->n_rows + r]) /
                         (p->mag[t * p->n_rows + r] + 1e-30);
            if (!(err <= worst))
                worst = isnan(err) ? INFINITY : err;
        }
    }
    return worst;
}

/* Q4_1 / Q5_1 fold the mins through Q8_1's s = d * sum(q), stored as F16,
 * so they carry one extra F16 rounding (2^-11 of the min term). */
static double reference_tolerance(enum roj_type type)
{
    if (type == ROJ_TYPE_Q4_1 || type == ROJ_TYPE_Q5_1)
        return 2e-3;
    return 2e-6;
}

static void scalar_matches_double_reference(void **state)
{
    (void)state;
    static const int64_t sizes_32[] = {32, 96, 576};
    static const int64_t sizes_k[] = {256, 768};
    float *got = malloc(64 * 5 * sizeof *got);

    for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        enum roj_type type = weight_types[ti];
        int block = qtype_info(type)->block_size;
        const int64_t *sizes = block == QK_K ? sizes_k : sizes_32;
        size_t n_sizes = block == QK_K ? 2 : 3;
        for (size_t si = 0; si < n_sizes; si++) {
            int64_t n_in = sizes[si] + (block == 1 ? 3 : 0);
            problem p;
            problem_make(&p, type, n_in, 64, 5, 1000 + ti * 10 + si);
            assert_int_equal(kern_select("scalar"), 0);
            double err = problem_run(&p, 0, 64, p.ref, got);
            if (!(err <= reference_tolerance(type)))
                fail_msg("scalar %s n_in %lld: relative error %.3g",
                         qtype_name(type), (long long)n_in, err);
            problem_free(&p);
        }
    }
    free(got);
}

/* SIMD and scalar share the integer block sums, so they agree to float
 * rounding of the block-scale sums: a few ulps of the magnitude. */
#define SIMD_TOLERANCE 1e-5

static void check_isa_type(const char *isa, enum roj_type type)
{
    /* 16 and more reach the token-vector F16 kernel (16-token groups). */
    static const int64_t toks[] = {1, 2, 3, 4, 5, 7, 8, 13, 16, 37, 50};
    const int64_t max_tok = 50;
    int block = qtype_info(type)->block_size;
    int64_t n_ins[3];
    if (block == 1) {
        n_ins[0] = 1; n_ins[1] = 77; n_ins[2] = 576 + 13;
    } else if (block == 32) {
        n_ins[0] = 32; n_ins[1] = 5 * 32; n_ins[2] = 18 * 32;
    } else {
        n_ins[0] = 256; n_ins[1] = 3 * 256; n_ins[2] = 6 * 256;
    }
    for (int ni = 0; ni < 3; ni++) {
        problem p;
        int64_t n_rows = 53;
        problem_make(&p, type, n_ins[ni], n_rows, max_tok, 77 + ni);
        float *want = malloc((size_t)(n_rows * max_tok) * sizeof *want);
        float *got = malloc((size_t)(n_rows * max_tok) * sizeof *got);
        double *want_d = malloc((size_t)(n_rows * max_tok) * sizeof *want_d);
        for (size_t k = 0; k < sizeof toks / sizeof toks[0]; k++) {
            problem q = p;
            q.n_tok = toks[k];
            /* Row ranges: whole, starting at 16, and a short tail. */
            static const int64_t ranges[][2] = {{0, 53}, {16, 51}, {48, 53}};
            for (int ri = 0; ri < 3; ri++) {
                int64_t r0 = ranges[ri][0], r1 = ranges[ri][1];
                assert_int_equal(kern_select("scalar"), 0);
                kern_matmul(type, q.n_in, q.w, 0, n_rows, q.act, q.n_tok,
                            want, n_rows);
                for (int64_t i = 0; i < n_rows * q.n_tok; i++)
                    want_d[i] = want[i];
                assert_int_equal(kern_select(isa), 0);
                double err = problem_run(&q, r0, r1, want_d, got);
                if (!(err <= SIMD_TOLERANCE))
                    fail_msg("%s %s n_in %lld n_tok %lld rows [%lld,%lld): "
                             "relative error %.3g", isa, qtype_name(type),
                             (long long)q.n_in, (long long)q.n_tok,
                             (long long)r0, (long long)r1, err);
            }
        }
        free(want);
        free(got);
        free(want_d);
        problem_free(&p);
    }
}

static int isa_available(const char *isa)
{
    if (kern_select(isa) == 0)
        return 1;
    printf("SKIPPED %s: this CPU or build does not have it\n", isa);
    return 0;
}

static void simd_matmul_matches_scalar(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof simd_isas / sizeof simd_isas[0]; i++) {
        if (!isa_available(simd_isas[i]))
            continue;
        for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++)
            check_isa_type(simd_isas[i], weight_types[ti]);
    }
}

/*
 * Batch invariance: an output must have the same bits whether its token
 * is multiplied alone, at any place in a batch of other tokens, or in
 * any row range. The swarm relies on it: a subtask gives the same answer
 * whatever else its agent batched with it.
 */
static void check_batch_invariant(const char *isa, enum roj_type type,
                                  bool long_rows)
{
    static const int64_t toks[] = {1, 3, 4, 6, 17, 50};
    int block = qtype_info(type)->block_size;
    /* Short and long rows take different one-token tiles. */
    int64_t n_in = block == 1    ? (long_rows ? 301 : 77)
                   : block == 32 ? (long_rows ? 11 * 32 : 5 * 32)
                                 : (long_rows ? 5 * 256 : 3 * 256);
    const int64_t n_rows = 53, max_tok = 50;
    problem p;
    problem_make(&p, type, n_in, n_rows, max_tok, 4242);
    float *all = malloc((size_t)(n_rows * max_tok) * sizeof *all);
    float *got = malloc((size_t)(n_rows * max_tok) * sizeof *got);
    assert_int_equal(kern_select(isa), 0);
    kern_matmul(type, n_in, p.w, 0, n_rows, p.act, max_tok, all, n_rows);
    for (size_t k = 0; k < sizeof toks / sizeof toks[0]; k++) {
        for (int64_t t0 = 0; t0 + toks[k] <= max_tok; t0 += toks[k] + 5) {
            static const int64_t ranges[][2] = {{0, 53}, {5, 50}, {49, 53}};
            for (int ri = 0; ri < 3; ri++) {
                int64_t r0 = ranges[ri][0], r1 = ranges[ri][1];
                kern_matmul(type, n_in, p.w, r0, r1,
                            p.act + (size_t)t0 * p.act_bytes, toks[k], got,
                            n_rows);
                for (int64_t t = 0; t < toks[k]; t++)
                    for (int64_t r = r0; r < r1; r++)
                        if (memcmp(&got[t * n_rows + r],
                                   &all[(t0 + t) * n_rows + r],
                                   sizeof(float)) != 0)
                            fail_msg("%s %s: token %lld row %lld gives "
                                     "%.9g in a batch of %lld at %lld, "
                                     "%.9g in the batch of %lld", isa,
                                     qtype_name(type), (long long)(t0 + t),
                                     (long long)r,
                                     (double)got[t * n_rows + r],
                                     (long long)toks[k], (long long)t0,
                                     (double)all[(t0 + t) * n_rows + r],
                                     (long long)max_tok);
            }
        }
    }
    free(all);
    free(got);
    problem_free(&p);
}

static void matmul_batch_invariant(void **state)
{
    (void)state;
    for (int long_rows = 0; long_rows < 2; long_rows++) {
        for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++)
            check_batch_invariant("scalar", weight_types[ti], long_rows);
        for (size_t i = 0; i < sizeof simd_isas / sizeof simd_isas[0];
             i++) {
            if (!isa_available(simd_isas[i]))
                continue;
            for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++)
                check_batch_invariant(simd_isas[i], weight_types[ti],
                                      long_rows);
        }
    }
}

/* The activation bytes must not depend on the ISA: a model may quantize
 * activations once and multiply with any implementation. */
static void quantize_act_same_bytes(void **state)
{
    (void)state;
    uint64_t rng = 5;
    float x[3 * 768];
    fill_floats(x, 3 * 768, &rng);
    x[5] = 0.0f;
    for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        enum roj_type type = weight_types[ti];
        int64_t n = qtype_info(type)->block_size == 1 ? 767 : 768;
        size_t bytes = kern_act_row_bytes(type, n);
        uint8_t *want = calloc(3, bytes), *got = calloc(3, bytes);
        assert_int_equal(kern_select("scalar"), 0);
        kern_quantize_act(type, x, 768, want, n, 3);
        for (size_t i = 0; i < sizeof simd_isas / sizeof simd_isas[0]; i++) {
            if (kern_select(simd_isas[i]) != 0)
                continue;
            memset(got, 0xAA, 3 * bytes);
            kern_quantize_act(type, x, 768, got, n, 3);
            if (memcmp(want, got, 3 * bytes) != 0)
                fail_msg("%s: %s activations differ from scalar",
                         simd_isas[i], qtype_name(type));
        }
        free(want);
        free(got);
    }
}

/* All-zero activation blocks must give zeros, not NaN (1/d with d = 0). */
static void quantize_act_zero_block(void **state)
{
    (void)state;
    float x[256] = {0};
    block_q8_K qk;
    block_q8_0 q0[8];
    assert_int_equal(kern_select("scalar"), 0);
    kern_quantize_act(ROJ_TYPE_Q4_K, x, 256, &qk, 256, 1);
    assert_true(qk.d == 0.0f);
    assert_int_equal(qk.qs[17], 0);
    assert_int_equal(qk.bsums[3], 0);
    kern_quantize_act(ROJ_TYPE_Q8_0, x, 256, q0, 256, 1);
    assert_int_equal(q0[2].d, 0);
    assert_int_equal(q0[2].qs[9], 0);
}

static void q8_0_act_values(void **state)
{
    (void)state;
    float x[32];
    block_q8_0 b;
    for (int i = 0; i < 32; i++)
        x[i] = (float)(i - 16) * 0.25f;
    assert_int_equal(kern_select("scalar"), 0);
    kern_quantize_act(ROJ_TYPE_Q8_0, x, 32, &b, 32, 1);
    /* amax = 4, so d = 4 / 127 and x = -4 maps to -127. */
    assert_float_equal(fp16_to_fp32(b.d), 4.0f / 127.0f, 1e-5);
    assert_int_equal(b.qs[0], -127);
    assert_int_equal(b.qs[16], 0);
    assert_int_equal(b.qs[20], 32); /* 1.0 * 127 / 4 = 31.75 */
}

static double vec_rel_err(const float *a, const float *b, int64_t n)
{
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / (fabs((double)b[i]) + 1e-3);
        if (!(e <= worst))
            worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

static void check_vector_helpers(const char *isa, int64_t n)
{
    uint64_t rng = (uint64_t)n * 31 + 7;
    float *a = malloc((size_t)(n + 1) * sizeof *a);
    float *b = malloc((size_t)(n + 1) * sizeof *b);
    float *y1 = malloc((size_t)(n + 1) * sizeof *y1);
    float *y2 = malloc((size_t)(n + 1) * sizeof *y2);
    uint16_t *ha = malloc((size_t)(n + 1) * sizeof *ha);
    uint16_t *hb = malloc((size_t)(n + 1) * sizeof *hb);
    uint16_t *h2 = malloc((size_t)(n + 1) * sizeof *h2);
    double mag = 0.0, mag_h = 0.0;

    fill_floats(a, n, &rng);
    fill_floats(b, n, &rng);
    fill_floats(y1, n, &rng);
    memcpy(y2, y1, (size_t)n * sizeof *y1);
    for (int64_t i = 0; i < n; i++) {
        ha[i] = fp32_to_fp16(a[i]);
        hb[i] = fp32_to_fp16(b[i]);
        mag += fabs((double)a[i] * b[i]);
        mag_h += fabs((double)fp16_to_fp32(ha[i]) * fp16_to_fp32(hb[i]));
    }
    mag += 1e-30;
    mag_h += 1e-30;

    assert_int_equal(kern_select("scalar"), 0);
    float dot32 = kern_dot_f32(a, b, n), dot16 = kern_dot_f16(ha, hb, n);
    kern_axpy_f32(y1, 0.75f, a, n);
    kern_axpy_f16(y1, -1.5f, ha, n);
    assert_int_equal(kern_select(isa), 0);
    float got32 = kern_dot_f32(a, b, n), got16 = kern_dot_f16(ha, hb, n);
    kern_axpy_f32(y2, 0.75f, a, n);
    kern_axpy_f16(y2, -1.5f, ha, n);
    kern_f32_to_f16(a, h2, n);

    if (!(fabs((double)dot32 - got32) / mag <= 1e-6))
        fail_msg("%s dot_f32 n %lld: %g vs %g", isa, (long long)n, got32,
                 dot32);
    if (!(fabs((double)dot16 - got16) / mag_h <= 1e-6))
        fail_msg("%s dot_f16 n %lld: %g vs %g", isa, (long long)n, got16,
                 dot16);
    /* axpy is element-wise: only FMA-versus-separate rounding differs. */
    if (!(vec_rel_err(y2, y1, n) <= 1e-5))
        fail_msg("%s axpy n %lld differs", isa, (long long)n);
    /* Conversion is exact with round-to-nearest-even on both sides. */
    if (n > 0 && memcmp(ha, h2, (size_t)n * sizeof *ha) != 0)
        fail_msg("%s f32_to_f16 n %lld differs", isa, (long long)n);
    free(a);
    free(b);
    free(y1);
    free(y2);
    free(ha);
    free(hb);
    free(h2);
}

static void vector_helpers_match_scalar(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof simd_isas / sizeof simd_isas[0]; i++) {
        if (!isa_available(simd_isas[i]))
            continue;
        for (int64_t n = 0; n <= 70; n++)
            check_vector_helpers(simd_isas[i], n);
        check_vector_helpers(simd_isas[i], 1000);
        check_vector_helpers(simd_isas[i], 4099);
    }
}

static void check_attention(const char *isa, int64_t head_dim, int64_t n_keys)
{
    uint64_t rng = (uint64_t)(head_dim * 1000 + n_keys);
    const int64_t stride = head_dim + 3;
    float *q = malloc((size_t)head_dim * sizeof *q);
    float *w = malloc((size_t)n_keys * sizeof *w);
    float *kv = malloc((size_t)(n_keys * stride) * sizeof *kv);
    uint16_t *cache = malloc((size_t)(n_keys * stride) * sizeof *cache);
    float *want = malloc((size_t)(n_keys + head_dim) * sizeof *want);
    float *got = malloc((size_t)(n_keys + head_dim) * sizeof *got);

    fill_floats(q, head_dim, &rng);
    fill_floats(w, n_keys, &rng);
    fill_floats(kv, n_keys * stride, &rng);
    for (int64_t i = 0; i < n_keys * stride; i++)
        cache[i] = fp32_to_fp16(kv[i]);
    fill_floats(want + n_keys, head_dim, &rng);
    memcpy(got + n_keys, want + n_keys, (size_t)head_dim * sizeof *got);

    assert_int_equal(kern_select("scalar"), 0);
    kern_attn_scores_f16(q, cache, stride, n_keys, head_dim, 0.125f, want);
    kern_attn_values_f16(want + n_keys, w, cache, stride, n_keys, head_dim);
    assert_int_equal(kern_select(isa), 0);
    kern_attn_scores_f16(q, cache, stride, n_keys, head_dim, 0.125f, got);
    kern_attn_values_f16(got + n_keys, w, cache, stride, n_keys, head_dim);

    /* Scores: float sums in another order, so a few ulps of the magnitude
     * 0.125 * sum |q_i k_i|. Values: same, per output element. */
    for (int64_t j = 0; j < n_keys; j++) {
        double mag = 1e-30;
        for (int64_t i = 0; i < head_dim; i++)
            mag += 0.125 * fabs((double)q[i] * fp16_to_fp32(cache[j * stride + i]));
        if (!(fabs((double)got[j] - want[j]) <= 1e-6 * mag))
            fail_msg("%s attn_scores head_dim %lld key %lld: %g vs %g", isa,
                     (long long)head_dim, (long long)j, got[j], want[j]);
    }
    for (int64_t i = 0; i < head_dim; i++) {
        double mag = fabs((double)want[n_keys + i]) + 1e-30;
        for (int64_t j = 0; j < n_keys; j++)
            mag += fabs((double)w[j] * fp16_to_fp32(cache[j * stride + i]));
        if (!(fabs((double)got[n_keys + i] - want[n_keys + i]) <= 1e-6 * mag))
            fail_msg("%s attn_values head_dim %lld element %lld: %g vs %g", isa,
                     (long long)head_dim, (long long)i, got[n_keys + i],
                     want[n_keys + i]);
    }
    free(q);
    free(w);
    free(kv);
    free(cache);
    free(want);
    free(got);
}

static void attention_helpers_match_scalar(void **state)
{
    (void)state;
    static const int64_t dims[] = {1, 7, 16, 64, 80, 128, 130};
    static const int64_t keys[] = {1, 3, 4, 9, 37};
    for (size_t i = 0; i < sizeof simd_isas / sizeof simd_isas[0]; i++) {
        if (!isa_available(simd_isas[i]))
            continue;
        for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
            for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
                check_attention(simd_isas[i], dims[d], keys[k]);
    }
}

/* The scalar batched helpers against a direct double computation. */
static void attention_scalar_values(void **state)
{
    (void)state;
    const uint16_t k[6] = {fp32_to_fp16(1.0f), fp32_to_fp16(2.0f), fp32_to_fp16(-1.0f),
                           fp32_to_fp16(0.5f), fp32_to_fp16(4.0f), fp32_to_fp16(3.0f)};
    const float q[2] = {2.0f, -1.0f}, w[2] = {0.5f, 2.0f};
    float scores[2], out[2] = {1.0f, 1.0f};
    assert_int_equal(kern_select("scalar"), 0);
    /* Rows of 2 values, 3 apart: (1, 2) and (0.5, 4). */
    kern_attn_scores_f16(q, k, 3, 2, 2, 0.5f, scores);
    assert_float_equal(scores[0], 0.5f * (2.0f - 2.0f), 0.0f);
    assert_float_equal(scores[1], 0.5f * (1.0f - 4.0f), 0.0f);
    kern_attn_values_f16(out, w, k, 3, 2, 2);
    assert_float_equal(out[0], 1.0f + 0.5f * 1.0f + 2.0f * 0.5f, 0.0f);
    assert_float_equal(out[1], 1.0f + 0.5f * 2.0f + 2.0f * 4.0f, 0.0f);
}

static void f32_to_f16_special_values(void **state)
{
    (void)state;
    const float x[6] = {65520.0f, 1e-8f, -0.0f, 1.0f + 1.0f / 2048.0f,
                        INFINITY, 3.0e-5f};
    uint16_t want[6], got[6];
    for (int i = 0; i < 6; i++)
        want[i] = fp32_to_fp16(x[i]);
    assert_int_equal(want[0], 0x7c00);
    for (size_t i = 0; i < sizeof simd_isas / sizeof simd_isas[0]; i++) {
        if (kern_select(simd_isas[i]) != 0)
            continue;
        kern_f32_to_f16(x, got, 6);
        assert_memory_equal(want, got, sizeof want);
    }
}

/* silu(g) * u in double, the reference for kern_swiglu. */
static double swiglu_ref(double g, double u)
{
    return g / (1.0 + exp(-g)) * u;
}

/* Every ISA's swiglu stays within 6 units in the last place of the
 * exact value over the whole float range, gives 0 (not NaN) where exp
 * overflows, and treats an element alike wherever it sits in the row. */
static void swiglu_accurate(void **state)
{
    (void)state;
    enum { N = 4001 };
    float *g = malloc(N * sizeof *g), *u = malloc(N * sizeof *u);
    float *got = malloc(N * sizeof *got), *tail = malloc(N * sizeof *tail);
    assert_non_null(g);
    assert_non_null(u);
    assert_non_null(got);
    assert_non_null(tail);
    for (int i = 0; i < N; i++) {
        g[i] = -200.0f + 0.1f * (float)i; /* -200 .. 200 */
        u[i] = 1.0f + 0.001f * (float)(i % 7);
    }
    for (size_t k = 0; k <= sizeof simd_isas / sizeof simd_isas[0]; k++) {
        const char *isa = k == 0 ? "scalar" : simd_isas[k - 1];
        if (kern_select(isa) != 0)
            continue;
        memcpy(got, g, N * sizeof *got);
        kern_swiglu(got, u, N);
        double worst = 0.0;
        for (int i = 0; i < N; i++) {
            double want = swiglu_ref(g[i], u[i]);
            double err = fabs(got[i] - want);
            double ulp = fmax(fabs(want), 1e-30) * 0x1p-23;
            assert_false(isnan(got[i]));
            if (err / ulp > worst)
                worst = err / ulp;
        }
        printf("  %-10s swiglu worst error %.2f ulp\n", isa, worst);
        assert_true(worst <= 6.0);
        /* Row lengths 1 .. 33 starting anywhere give the same values. */
        for (int n = 1; n <= 33; n++) {
            memcpy(tail, g + 100, (size_t)n * sizeof *tail);
            kern_swiglu(tail, u + 100, n);
            assert_memory_equal(tail, got + 100, (size_t)n * sizeof *tail);
        }
        /* exp(-g) overflows for g below about -88. */
        float big[2] = {-1000.0f, 1000.0f}, one[2] = {1.0f, 1.0f};
        kern_swiglu(big, one, 2);
        assert_true(big[0] <= 0.0f && big[0] > -1e-30f);
        assert_float_equal(big[1], 1000.0f, 0.0f);
    }
    free(g);
    free(u);
    free(got);
    free(tail);
}

static void round_f16_matches_conversion(void **state)
{
    (void)state;
    const float x[7] = {65520.0f, 1e-8f, -0.0f, 1.0f + 1.0f / 2048.0f,
                        INFINITY, 3.0e-5f, -2.71828f};
    float want[7], got[7];
    for (int i = 0; i < 7; i++)
        want[i] = fp16_to_fp32(fp32_to_fp16(x[i]));
    for (size_t k = 0; k <= sizeof simd_isas / sizeof simd_isas[0]; k++) {
        const char *isa = k == 0 ? "scalar" : simd_isas[k - 1];
        if (kern_select(isa) != 0)
            continue;
        memcpy(got, x, sizeof got);
        kern_round_f16(got, 7);
        assert_memory_equal(want, got, sizeof want);
    }
}

/* Known values: a Q4_0 block with d = 0.5 and all nibbles 9 is 0.5 each. */
static void dequantize_q4_0_values(void **state)
{
    (void)state;
    block_q4_0 b;
    float out[32];
    b.d = fp32_to_fp16(0.5f);
    memset(b.qs, 0x19, sizeof b.qs); /* low nibble 9, high nibble 1 */
    kern_dequantize_row(ROJ_TYPE_Q4_0, &b, out, 32);
    assert_float_equal(out[0], 0.5f, 0.0f);
    assert_float_equal(out[15], 0.5f, 0.0f);
    assert_float_equal(out[16], -3.5f, 0.0f);
    assert_float_equal(out[31], -3.5f, 0.0f);
}

/* kern_dequantize_row is written independently of the quantization
 * module's dequantizer; both follow the GGUF block layouts, so they must
 * agree on random blocks. */
static void dequantize_matches_quant_module(void **state)
{
    (void)state;
    uint64_t rng = 99;
    for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        enum roj_type type = weight_types[ti];
        int64_t n = qtype_info(type)->block_size == QK_K ? 512 : 96;
        uint8_t *row = malloc(qtype_row_bytes(type, n));
        float want[512], got[512];
        if (!quant_can_dequantize(type)) {
            printf("SKIPPED %s: quant module cannot dequantize it\n",
                   qtype_name(type));
            free(row);
            continue;
        }
        fill_weight_row(type, row, n, &rng);
        quant_dequantize_row(type, row, want, n);
        kern_dequantize_row(type, row, got, n);
        for (int64_t i = 0; i < n; i++)
            if (!(fabsf(want[i] - got[i]) <= 1e-6f * fabsf(want[i])))
                fail_msg("%s element %lld: kernels %g, quant module %g",
                         qtype_name(type), (long long)i, got[i], want[i]);
        free(row);
    }
}

/* End to end with the quantization module's quantizers: real weight
 * blocks times float activations. Only the int8 activation rounding
 * separates the result from the double product with the dequantized
 * weights: at most half a step (amax / 254) per element, far below 1% of
 * sum |w_i * x_i| for these inputs. */
static void matmul_quantized_weights_end_to_end(void **state)
{
    (void)state;
    const int64_t n_in = 512, n_rows = 24, n_tok = 5;
    uint64_t rng = 4242;
    float *wf = malloc((size_t)(n_in * n_rows) * sizeof *wf);
    float *x = malloc((size_t)(n_in * n_tok) * sizeof *x);
    float *deq = malloc((size_t)n_in * sizeof *deq);
    float y[24 * 5];
    fill_floats(wf, n_in * n_rows, &rng);
    fill_floats(x, n_in * n_tok, &rng);
    kern_init();
    for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        enum roj_type type = weight_types[ti];
        size_t rb = qtype_row_bytes(type, n_in);
        uint8_t *w = malloc(rb * (size_t)n_rows);
        uint8_t *act = malloc(kern_act_row_bytes(type, n_in) * (size_t)n_tok);
        if (!quant_can_quantize(type)) {
            free(w);
            free(act);
            continue;
        }
        for (int64_t r = 0; r < n_rows; r++)
            assert_int_equal(quant_quantize_row(type, wf + r * n_in, w + r * rb,
                                                n_in, NULL), ROJ_OK);
        kern_quantize_act(type, x, n_in, act, n_in, n_tok);
        kern_matmul(type, n_in, w, 0, n_rows, act, n_tok, y, n_rows);
        for (int64_t r = 0; r < n_rows; r++) {
            quant_dequantize_row(type, w + r * rb, deq, n_in);
            for (int64_t t = 0; t < n_tok; t++) {
                double sum = 0.0, mag = 0.0;
                for (int64_t i = 0; i < n_in; i++) {
                    sum += (double)deq[i] * x[t * n_in + i];
                    mag += fabs((double)deq[i] * x[t * n_in + i]);
                }
                double err = fabs(y[t * n_rows + r] - sum) / (mag + 1e-30);
                if (!(err <= 1e-2))
                    fail_msg("%s %s row %lld token %lld: %g, want %g", kern_isa(),
                             qtype_name(type), (long long)r, (long long)t,
                             y[t * n_rows + r], sum);
            }
        }
        free(w);
        free(act);
    }
    free(wf);
    free(x);
    free(deq);
}

static void dispatch_names(void **state)
{
    (void)state;
    kern_init();
    assert_int_equal(kern_select("scalar"), 0);
    assert_string_equal(kern_isa(), "scalar");
    assert_int_equal(kern_select("no-such-isa"), -1);
    assert_string_equal(kern_isa(), "scalar");
    assert_non_null(kern_cpu_features());
    printf("cpu features: %s\n", kern_cpu_features());
    assert_int_equal(kern_act_type(ROJ_TYPE_Q4_K), ROJ_TYPE_Q8_K);
    assert_int_equal(kern_act_type(ROJ_TYPE_Q5_1), ROJ_TYPE_Q8_1);
    assert_int_equal(kern_act_type(ROJ_TYPE_F16), ROJ_TYPE_F16);
    assert_int_equal(kern_act_type(ROJ_TYPE_F32), ROJ_TYPE_F32);
    assert_int_equal(kern_act_type(ROJ_TYPE_IQ2_XS), ROJ_TYPE_COUNT);
    assert_int_equal(kern_act_row_bytes(ROJ_TYPE_Q8_0, 64), 68);
    assert_int_equal(kern_act_row_bytes(ROJ_TYPE_Q4_K, 100), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dispatch_names),
        cmocka_unit_test(q8_0_act_values),
        cmocka_unit_test(quantize_act_zero_block),
        cmocka_unit_test(dequantize_q4_0_values),
        cmocka_unit_test(scalar_matches_double_reference),
        cmocka_unit_test(dequantize_matches_quant_module),
        cmocka_unit_test(matmul_quantized_weights_end_to_end),
        cmocka_unit_test(quantize_act_same_bytes),
        cmocka_unit_test(simd_matmul_matches_scalar),
        cmocka_unit_test(matmul_batch_invariant),
        cmocka_unit_test(vector_helpers_match_scalar),
        cmocka_unit_test(f32_to_f16_special_values),
        cmocka_unit_test(swiglu_accurate),
        cmocka_unit_test(round_f16_matches_conversion),
        cmocka_unit_test(attention_scalar_values),
        cmocka_unit_test(attention_helpers_match_scalar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
