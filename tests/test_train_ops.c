/* Finite-difference checks of every training backward pass: each
 * operation alone, then the whole model (llama, qwen2-style biases with
 * NeoX RoPE, grouped-query heads, tied and separate heads, LoRA). */
#include <fenv.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/threadpool.h"
#include "testutil.h"
#include "train/tgraph.h"
#include "train/tmodel.h"
#include "train/tops.h"

static uint64_t rng = 42;

static void fill(float *p, int64_t n, float lo, float hi)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = test_rand_float(&rng, lo, hi);
}

static double dot(const float *a, const float *b, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* Asserts that analytic and numeric derivatives agree. */
static void expect_close(double analytic, double numeric, const char *what,
                         int64_t index)
{
    const double tol = 2e-3 + 2e-2 * fabs(numeric);
    if (fabs(analytic - numeric) > tol) {
        fprintf(stderr, "%s[%lld]: analytic %.6g numeric %.6g\n", what,
                (long long)index, analytic, numeric);
        fail();
    }
}

/* ---- single operations: loss = sum(R * f(x)) ------------------------ */

#define ND 12
#define NR 3

static double norm_loss(const float *x, const float *gain, const float *r)
{
    float y[NR * ND], rs[NR];
    tops_rms_norm(y, rs, x, gain, ND, 1e-5f, 0, NR);
    return dot(y, r, NR * ND);
}

static void test_rms_norm_grad(void **state)
{
    (void)state;
    float x[NR * ND], gain[ND], r[NR * ND], y[NR * ND], rs[NR];
    float dx[NR * ND] = {0}, dg[ND] = {0};
    fill(x, NR * ND, -2, 2);
    fill(gain, ND, 0.5f, 1.5f);
    fill(r, NR * ND, -1, 1);
    tops_rms_norm(y, rs, x, gain, ND, 1e-5f, 0, NR);
    tops_rms_norm_bwd_x(dx, r, x, gain, rs, ND, 0, NR);
    tops_rms_norm_bwd_gain(dg, r, x, rs, NR, ND, 0, ND);
    const float h = 1e-2f;
    for (int i = 0; i < NR * ND; i++) {
        float s = x[i];
        x[i] = s + h;
        double lp = norm_loss(x, gain, r);
        x[i] = s - h;
        double lm = norm_loss(x, gain, r);
        x[i] = s;
        expect_close(dx[i], (lp - lm) / (2 * h), "rms dx", i);
    }
    for (int i = 0; i < ND; i++) {
        float s = gain[i];
        gain[i] = s + h;
        double lp = norm_loss(x, gain, r);
        gain[i] = s - h;
        double lm = norm_loss(x, gain, r);
        gain[i] = s;
        expect_close(dg[i], (lp - lm) / (2 * h), "rms dgain", i);
    }
}

static void test_rope_inverse(void **state)
{
    (void)state;
    for (int neox = 0; neox < 2; neox++) {
        float x[NR * 2 * 8], orig[NR * 2 * 8];
        int32_t pos[NR] = {0, 5, 113};
        fill(x, NR * 16, -1, 1);
        memcpy(orig, x, sizeof x);
        tops_rope_cfg c = {.head_dim = 8, .rope_dim = 8, .base = 10000.0f,
                           .freq_scale = 1.0f, .neox = neox};
        tops_rope(x, pos, 2, &c, 0, 0, NR);
        /* Position 0 is the identity; others rotate (norm kept). */
        for (int i = 0; i < 16; i++)
            assert_float_equal(x[i], orig[i], 1e-6);
        assert_true(fabsf(x[16] - orig[16]) > 1e-4f ||
                    fabsf(x[17] - orig[17]) > 1e-4f);
        assert_float_equal(dot(x + 16, x + 16, 8), dot(orig + 16, orig + 16, 8),
                           1e-4);
        /* A rotation's backward is its inverse (transpose). */
        tops_rope(x, pos, 2, &c, 1, 0, NR);
        for (int i = 0; i < NR * 16; i++)
            assert_float_equal(x[i], orig[i], 1e-5);
    }
}

static void test_swiglu_grad(void **state)
{
    (void)state;
    enum { N = 20 };
    float g[N], u[N], r[N], hbuf[N], dg[N] = {0}, du[N] = {0};
    fill(g, N, -4, 4);
    fill(u, N, -2, 2);
    fill(r, N, -1, 1);
    tops_swiglu_bwd(dg, du, r, g, u, N, 0, 1);
    const float h = 1e-2f;
    for (int i = 0; i < N; i++) {
        float s = g[i];
        g[i] = s + h;
        tops_swiglu(hbuf, g, u, N, 0, 1);
        double lp = dot(hbuf, r, N);
        g[i] = s - h;
        tops_swiglu(hbuf, g, u, N, 0, 1);
        double lm = dot(hbuf, r, N);
        g[i] = s;
        expect_close(dg[i], (lp - lm) / (2 * h), "swiglu dg", i);
        s = u[i];
        u[i] = s + h;
        tops_swiglu(hbuf, g, u, N, 0, 1);
        lp = dot(hbuf, r, N);
        u[i] = s - h;
        tops_swiglu(hbuf, g, u, N, 0, 1);
        lm = dot(hbuf, r, N);
        u[i] = s;
        expect_close(du[i], (lp - lm) / (2 * h), "swiglu du", i);
    }
}

/* SwiGLU and cross-entropy on ordinary values raise no underflow flag:
 * no vector lane, used or not, computes a subnormal number, which costs a
 * microcode assist per vector on Intel. */
static void test_swiglu_no_underflow(void **state)
{
    (void)state;
    enum { N = 256, V = 64 };
    static float g[N], u[N], dh[N], h[N], dg[N], du[N], z[NR * V];
    float loss[NR];
    int32_t t[NR] = {0, 7, 63};
    fill(g, N, -8, 8);
    fill(u, N, -2, 2);
    fill(dh, N, -1, 1);
    fill(z, NR * V, -6, 6);
    feclearexcept(FE_ALL_EXCEPT);
    tops_swiglu(h, g, u, N / 8, 0, 8);
    assert_int_equal(fetestexcept(FE_UNDERFLOW), 0);
    tops_swiglu_bwd(dg, du, dh, g, u, N / 8, 0, 8);
    assert_int_equal(fetestexcept(FE_UNDERFLOW), 0);
    tops_xent(z, loss, t, NULL, NULL, V, 1.0f, 0, NR);
    assert_int_equal(fetestexcept(FE_UNDERFLOW), 0);
}

static void test_xent_grad(void **state)
{
    (void)state;
    enum { V = 9 };
    float z[NR * V], work[NR * V], loss[NR];
    int32_t t[NR] = {0, 4, 8};
    fill(z, NR * V, -3, 3);
    memcpy(work, z, sizeof z);
    tops_xent(work, loss, t, NULL, NULL, V, 1.0f, 0, NR);
    /* Value: -log softmax at the target. */
    for (int r = 0; r < NR; r++) {
        double s = 0;
        for (int i = 0; i < V; i++)
            s += exp(z[r * V + i]);
        assert_float_equal(loss[r], log(s) - z[r * V + t[r]], 1e-5);
    }
    /* Softmax of large and tiny logits stays finite and exact enough. */
    float big[2 * V], lb[2];
    int32_t tb[2] = {1, 2};
    for (int i = 0; i < 2 * V; i++)
        big[i] = i < V ? 80.0f + (float)i : -90.0f - (float)i;
    tops_xent(big, lb, tb, NULL, NULL, V, 0.0f, 0, 2);
    assert_true(isfinite(lb[0]) && isfinite(lb[1]));
    double s0 = 0;
    for (int i = 0; i < V; i++)
        s0 += exp((double)i - (V - 1));
    assert_float_equal(lb[0], log(s0) - (1.0 - (V - 1)), 1e-4);
    const float h = 1e-2f;
    for (int i = 0; i < NR * V; i++) {
        float tmp[NR * V], lr[NR];
        memcpy(tmp, z, sizeof z);
        tmp[i] += h;
        tops_xent(tmp, lr, t, NULL, NULL, V, 0.0f, 0, NR);
        double lp = lr[0] + lr[1] + lr[2];
        memcpy(tmp, z, sizeof z);
        tmp[i] -= h;
        tops_xent(tmp, lr, t, NULL, NULL, V, 0.0f, 0, NR);
        double lm = lr[0] + lr[1] + lr[2];
        expect_close(work[i], (lp - lm) / (2 * h), "xent", i);
    }
}

/* Label smoothing over a set of label ids: the value matches the
 * smoothed cross-entropy written out, rows outside the set stay one-hot,
 * and the gradient (with row weights) matches finite differences. */
static void test_xent_smooth_grad(void **state)
{
    (void)state;
    enum { V = 9 };
    const int32_t set[4] = {1, 4, 6, 8};
    const tops_smooth sm = {set, 4, 0.2f};
    float z[NR * V], work[NR * V], loss[NR];
    const int32_t t[NR] = {4, 0, 8};
    const float w[NR] = {1.0f, 0.5f, 2.0f};
    fill(z, NR * V, -3, 3);
    memcpy(work, z, sizeof z);
    tops_xent(work, loss, t, w, &sm, V, 1.0f, 0, NR);
    for (int r = 0; r < NR; r++) {
        double s = 0;
        for (int i = 0; i < V; i++)
            s += exp(z[r * V + i]);
        const double lse = log(s);
        double want = lse - z[r * V + t[r]];
        if (r != 1) {
            double set_nll = 0;
            for (int k = 0; k < 4; k++)
                set_nll += lse - z[r * V + set[k]];
            want = 0.8 * want + 0.2 / 4 * set_nll;
        }
        assert_float_equal(loss[r], want, 1e-5);
    }
    const float h = 1e-2f;
    for (int i = 0; i < NR * V; i++) {
        float tmp[NR * V], lr[NR];
        double l[2];
        for (int side = 0; side < 2; side++) {
            memcpy(tmp, z, sizeof z);
            tmp[i] += side ? -h : h;
            tops_xent(tmp, lr, t, w, &sm, V, 0.0f, 0, NR);
            l[side] = w[0] * lr[0] + w[1] * lr[1] + w[2] * lr[2];
        }
        expect_close(work[i], (l[0] - l[1]) / (2 * h), "smoothed xent", i);
    }
}

static double attn_loss(const tops_attn *a, const float *q, const float *k,
                        const float *v, const float *r, int64_t nq)
{
    float out[64 * 16], p[4 * 64];
    memset(out, 0, sizeof out);
    tops_attention(a, q, k, v, out, p);
    return dot(out, r, nq);
}

static void test_attention_grad(void **state)
{
    (void)state;
    /* 5 tokens, 4 query heads sharing 2 KV heads of size 4; checks the
     * group of KV head 1 (query heads 2 and 3). */
    enum { T = 5, HD = 4, QS = 16, KS = 8 };
    float q[T * QS], k[T * KS], v[T * KS], r[T * QS];
    float out[T * QS] = {0}, p[2 * T * T], scratch[T * T];
    float dq[T * QS] = {0}, dk[T * KS] = {0}, dv[T * KS] = {0};
    fill(q, T * QS, -1, 1);
    fill(k, T * KS, -1, 1);
    fill(v, T * KS, -1, 1);
    fill(r, T * QS, -1, 1);
    for (int t = 0; t < T; t++)  /* the loss uses only the group's heads */
        for (int i = 0; i < 8; i++)
            r[t * QS + i] = 0.0f;
    tops_attn a = {.n = T, .head_dim = HD, .q_stride = QS, .kv_stride = KS,
                   .head0 = 2, .n_group = 2, .kv_head = 1, .scale = 0.5f};
    tops_attention(&a, q, k, v, out, p);
    /* Causal: probabilities above the diagonal are zero, rows sum to 1. */
    for (int i = 0; i < T; i++) {
        double s = 0;
        for (int j = 0; j < T; j++) {
            if (j > i)
                assert_float_equal(p[i * T + j], 0.0f, 0.0);
            s += p[i * T + j];
        }
        assert_float_equal(s, 1.0, 1e-5);
    }
    tops_attention_bwd(&a, q, k, v, p, r, dq, dk, dv, scratch);
    const float h = 1e-2f;
    struct { float *x, *d; int n; const char *name; } vars[] = {
        {q, dq, T * QS, "attn dq"}, {k, dk, T * KS, "attn dk"},
        {v, dv, T * KS, "attn dv"}};
    for (int w = 0; w < 3; w++)
        for (int i = 0; i < vars[w].n; i++) {
            if (w == 0 && i % QS < 8)
                continue;   /* other group's heads: not written */
            if (w > 0 && i % KS < 4)
                continue;
            float s = vars[w].x[i];
            vars[w].x[i] = s + h;
            double lp = attn_loss(&a, q, k, v, r, T * QS);
            vars[w].x[i] = s - h;
            double lm = attn_loss(&a, q, k, v, r, T * QS);
            vars[w].x[i] = s;
            expect_close(vars[w].d[i], (lp - lm) / (2 * h), vars[w].name, i);
        }
}

/* ---- the whole model ------------------------------------------------ */

static const int32_t toks[] = {1, 5, 3, 7, 2, 9, 4, 4};
static const int32_t pos[] = {0, 1, 2, 0, 1, 2, 3, 4};
static const int32_t starts[] = {0, 3, 8};
static const int32_t tgt_row[] = {1, 2, 5, 7};
static const int32_t tgt_id[] = {3, 0, 4, 10};

static tbatch test_batch(void)
{
    return (tbatch){.n_tok = 8, .tokens = toks, .pos = pos, .n_seq = 2,
                    .seq_start = starts, .n_tgt = 4, .tgt_row = tgt_row,
                    .tgt_id = tgt_id};
}

/* With dropout the loss is taken from a training run (the only kind that
 * drops), whose gradients the caller has already saved. */
static double model_loss(tgraph *g, bool dropout)
{
    tbatch b = test_batch();
    double loss;
    assert_int_equal(tgraph_run(g, &b, dropout ? 1.0f : 0.0f, &loss, NULL),
                     ROJ_OK);
    return loss;
}

/* Compares m->grads with central differences for every parameter (the
 * model is tiny), at 1 and 2 threads. */
static void check_model_drop(tmodel *m, int n_threads, float dropout)
{
    roj_pool *pool = NULL;
    assert_int_equal(pool_create(n_threads, &pool), ROJ_OK);
    tgraph *g = NULL;
    assert_int_equal(tgraph_create(m, pool, 8, 4, 5, &g), ROJ_OK);
    tgraph_set_dropout(g, dropout, 77);
    tbatch b = test_batch();
    memset(m->grads, 0, (size_t)m->n_params * sizeof(float));
    double loss;
    assert_int_equal(tgraph_run(g, &b, 1.0f, &loss, NULL), ROJ_OK);
    assert_true(loss > 0.0);
    float *grad = malloc((size_t)m->n_params * sizeof(float));
    memcpy(grad, m->grads, (size_t)m->n_params * sizeof(float));
    const float h = 1e-2f;
    int64_t nonzero = 0;
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const ttensor *t = &m->tensors[ti];
        const int64_t n = t->ne[0] * t->ne[1];
        for (int64_t i = 0; i < n; i++) {
            float *p = m->params + t->offset + i;
            const float s = *p;
            *p = s + h;
            double lp = model_loss(g, dropout > 0);
            *p = s - h;
            double lm = model_loss(g, dropout > 0);
            *p = s;
            expect_close(grad[t->offset + i], (lp - lm) / (2 * h), t->name,
                         i);
            nonzero += grad[t->offset + i] != 0.0f;
        }
    }
    assert_true(nonzero > m->n_params / 4);
    free(grad);
    tgraph_free(g);
    pool_destroy(pool);
}

static void check_model(tmodel *m, int n_threads)
{
    check_model_drop(m, n_threads, 0.0f);
}

static tshape tiny_shape(void)
{
    return (tshape){.n_vocab = 11, .n_embd = 8, .n_layer = 2, .n_head = 4,
                    .n_head_kv = 2, .head_dim = 2, .n_ff = 12, .n_ctx = 16,
                    .rope_base = 10000.0f, .rope_freq_scale = 1.0f,
                    .rms_eps = 1e-5f};
}

/* Larger random weights than training starts with, so every path matters. */
static void scramble(tmodel *m)
{
    for (int i = 0; i < m->n_tensors; i++) {
        const ttensor *t = &m->tensors[i];
        fill(m->params + t->offset, t->ne[0] * t->ne[1], -0.6f, 0.6f);
    }
}

static void test_model_grad_llama(void **state)
{
    (void)state;
    tshape hp = tiny_shape();
    tmodel *m;
    assert_int_equal(tmodel_init(&hp, 7, &m), ROJ_OK);
    assert_int_equal(m->n_params, tshape_n_params(&hp));
    scramble(m);
    check_model(m, 1);
    check_model(m, 2);
    tmodel_free(m);
}

static void test_model_grad_tied_qwen2(void **state)
{
    (void)state;
    tshape hp = tiny_shape();
    hp.tied = true;
    hp.qkv_bias = true;
    hp.neox = true;
    hp.head_dim = 4;
    hp.n_head_kv = 1;
    tmodel *m;
    assert_int_equal(tmodel_init(&hp, 9, &m), ROJ_OK);
    assert_int_equal(m->n_params, tshape_n_params(&hp));
    scramble(m);
    check_model(m, 2);
    tmodel_free(m);
}

static void test_model_grad_lora(void **state)
{
    (void)state;
    tshape hp = tiny_shape();
    tmodel *m;
    assert_int_equal(tmodel_alloc(&hp, 3, 6.0f, TLORA_Q | TLORA_V |
                                  TLORA_DOWN | TLORA_UP, &m), ROJ_OK);
    fill(m->frozen, m->n_frozen, -0.6f, 0.6f);
    scramble(m);   /* A and B both non-zero so both gradients show */
    assert_int_equal(m->n_tensors, 2 * 4 * hp.n_layer);
    check_model(m, 2);
    tmodel_free(m);
}

static void test_model_grad_dropout(void **state)
{
    (void)state;
    tshape hp = tiny_shape();
    tmodel *m;
    assert_int_equal(tmodel_init(&hp, 5, &m), ROJ_OK);
    scramble(m);
    check_model_drop(m, 2, 0.3f);
    /* Forward-only runs never drop: two of them agree, and differ from a
     * training run's loss. */
    tgraph *g;
    assert_int_equal(tgraph_create(m, NULL, 8, 4, 5, &g), ROJ_OK);
    tgraph_set_dropout(g, 0.5f, 3);
    const double a = model_loss(g, false), b = model_loss(g, false);
    assert_true(a == b);
    assert_true(model_loss(g, true) != a);
    tgraph_free(g);
    tmodel_free(m);
}

static void test_bad_batch(void **state)
{
    (void)state;
    tshape hp = tiny_shape();
    tmodel *m;
    assert_int_equal(tmodel_init(&hp, 1, &m), ROJ_OK);
    tgraph *g;
    assert_int_equal(tgraph_create(m, NULL, 8, 4, 5, &g), ROJ_OK);
    tbatch b = test_batch();
    int32_t bad[8];
    memcpy(bad, toks, sizeof bad);
    bad[3] = 11;
    b.tokens = bad;
    double loss;
    assert_int_not_equal(tgraph_run(g, &b, 1.0f, &loss, NULL), ROJ_OK);
    tgraph_free(g);
    tmodel_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rms_norm_grad),
        cmocka_unit_test(test_rope_inverse),
        cmocka_unit_test(test_swiglu_grad),
        cmocka_unit_test(test_swiglu_no_underflow),
        cmocka_unit_test(test_xent_grad),
        cmocka_unit_test(test_xent_smooth_grad),
        cmocka_unit_test(test_attention_grad),
        cmocka_unit_test(test_model_grad_llama),
        cmocka_unit_test(test_model_grad_tied_qwen2),
        cmocka_unit_test(test_model_grad_lora),
        cmocka_unit_test(test_model_grad_dropout),
        cmocka_unit_test(test_bad_batch),
    };
    return test_run_group(tests, NULL, NULL);
}
