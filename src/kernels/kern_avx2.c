/*
 * AVX2 + FMA + F16C kernels for float weights (F32; F16 with F16
 * activations, both widened with vcvtph2ps; BF16 widened by a 16-bit
 * shift), the F16 / Q8_0 / Q8_1 / Q8_K
 * activation quantizers and the attention helpers. The quantized products
 * are in quant_avx2.c. Row tails shorter than a
 * vector are finished in scalar code.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/kern_impl.h"
#include "quant/fp16.h"

#define INLINE static inline __attribute__((always_inline))

void kern_avx2_fill_quant(kern_ops *ops, int vnni);

/* Weight kinds. F_F16 widens the F16 activations to F32 once, and F_F16H
 * (one token, long rows) reads them as F16. Both give the same sums. */
enum fkind { F_F32, F_F16, F_F16H, F_BF16 };

INLINE __m256 bf16x8(const uint16_t *p)
{
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

INLINE __m256 fw8(int kind, const uint8_t *row, int64_t i)
{
    if (kind == F_F16 || kind == F_F16H)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + i)));
    if (kind == F_BF16)
        return bf16x8((const uint16_t *)row + i);
    return _mm256_loadu_ps((const float *)row + i);
}

INLINE __m256 fa8(int kind, const uint8_t *row, int64_t i)
{
    if (kind == F_F16H)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + i)));
    if (kind == F_BF16)
        return bf16x8((const uint16_t *)row + i);
    return _mm256_loadu_ps((const float *)row + i);
}

INLINE float fw1(int kind, const uint8_t *row, int64_t i)
{
    if (kind == F_F16 || kind == F_F16H)
        return fp16_to_fp32(((const uint16_t *)row)[i]);
    if (kind == F_BF16)
        return bf16_to_fp32(((const uint16_t *)row)[i]);
    return ((const float *)row)[i];
}

INLINE float fa1(int kind, const uint8_t *row, int64_t i)
{
    if (kind == F_F16H)
        return fp16_to_fp32(((const uint16_t *)row)[i]);
    if (kind == F_BF16)
        return bf16_to_fp32(((const uint16_t *)row)[i]);
    return ((const float *)row)[i];
}

INLINE float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

INLINE void ftile(int kind, int nr, int nt, const kern_mm_args *p, int64_t r0, int64_t t0)
{
    const uint8_t *wr[4], *ar[4];
    __m256 acc[4][4];
    const int64_t n = p->n_in, n8 = n / 8 * 8;

    #pragma GCC unroll 8
    for (int r = 0; r < nr; r++) {
        wr[r] = p->w + (size_t)(r0 + r) * p->w_row_bytes;
        #pragma GCC unroll 8
        for (int t = 0; t < nt; t++)
            acc[r][t] = _mm256_setzero_ps();
    }
    #pragma GCC unroll 8
    for (int t = 0; t < nt; t++)
        ar[t] = p->act + (size_t)(t0 + t) * p->act_row_bytes;
    if (nt == 1 && n > 256) {
        /* One token, long rows: each row to its end before the next, so
         * the weights are read in address order (see quant32_avx512.c).
         * One sum per row, in the order of the other tiles, keeps the
         * same bits in every tile. Short rows (a small model's output
         * matrix) gain more from the shared activations below. */
        #pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            __m256 s = acc[r][0];
            for (int64_t i = 0; i < n8; i += 8)
                s = _mm256_fmadd_ps(fw8(kind, wr[r], i), fa8(kind, ar[0], i), s);
            acc[r][0] = s;
        }
    } else
    for (int64_t i = 0; i < n8; i += 8) {
        __m256 w[4];
        #pragma GCC unroll 8
        for (int r = 0; r < nr; r++)
            w[r] = fw8(kind, wr[r], i);
        #pragma GCC unroll 8
        for (int t = 0; t < nt; t++) {
            __m256 a = fa8(kind, ar[t], i);
            #pragma GCC unroll 8
            for (int r = 0; r < nr; r++)
                acc[r][t] = _mm256_fmadd_ps(w[r], a, acc[r][t]);
        }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < nt; t++) {
        #pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            float sum = hsum8(acc[r][t]);
            for (int64_t i = n8; i < n; i++)
                sum += fw1(kind, wr[r], i) * fa1(kind, ar[t], i);
            p->y[(t0 + t) * p->y_stride + r0 + r] = sum;
        }
    }
}

/* Rows outer, 2 x 4 tiles for prompts and 4 x 1 for one token. */
INLINE void fmatmul(int kind, const kern_mm_args *p)
{
    const int64_t tok_block = kern_token_block(p->act_row_bytes, 4);

    if (p->n_tok == 1) {
        int64_t r = p->row_begin;
        for (; r + 4 <= p->row_end; r += 4)
            ftile(kind, 4, 1, p, r, 0);
        for (; r < p->row_end; r++)
            ftile(kind, 1, 1, p, r, 0);
        return;
    }
    for (int64_t tb = 0; tb < p->n_tok; tb += tok_block) {
        int64_t te = tb + tok_block < p->n_tok ? tb + tok_block : p->n_tok;
        for (int64_t r = p->row_begin; r < p->row_end; r += 2) {
            int two = r + 2 <= p->row_end;
            int64_t t = tb;
            for (; t + 4 <= te; t += 4) {
                if (two)
                    ftile(kind, 2, 4, p, r, t);
                else
                    ftile(kind, 1, 4, p, r, t);
            }
            for (; t < te; t++) {
                if (two)
                    ftile(kind, 2, 1, p, r, t);
                else
                    ftile(kind, 1, 1, p, r, t);
            }
        }
    }
}

static void mm_f32(const kern_mm_args *p) { fmatmul(F_F32, p); }
/* F16 activations are widened once into F32 scratch rows (exactly), so the
 * tiles convert only the weights. */
static void mm_f16(const kern_mm_args *p)
{
    const int64_t n = p->n_in;
    if (p->n_tok == 1 && n > 256) {
        /* One token, long rows (ftile's row-to-end path): the F16
         * activations are read as they are, which saves the copy and
         * half the activation loads. */
        fmatmul(F_F16H, p);
        return;
    }
    float *a32 = kern_scratch((size_t)(p->n_tok * n) * sizeof *a32);
    if (a32 == NULL) {
        kern_scalar_matmul(ROJ_TYPE_F16, p);
        return;
    }
    for (int64_t t = 0; t < p->n_tok; t++) {
        const uint16_t *h = (const uint16_t *)(p->act + (size_t)t * p->act_row_bytes);
        float *out = a32 + t * n;
        int64_t i = 0;
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
        for (; i < n; i++)
            out[i] = fp16_to_fp32(h[i]);
    }
    kern_mm_args q = *p;
    q.act = (const uint8_t *)a32;
    q.act_row_bytes = (size_t)n * sizeof *a32;
    fmatmul(F_F16, &q);
}
static void mm_bf16(const kern_mm_args *p) { fmatmul(F_BF16, p); }

/* ---- attention helpers ---- */

static float v_dot_f32(const float *a, const float *b, int64_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float sum = hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        sum += a[i] * b[i];
    return sum;
}

static void v_axpy_f32(float *y, float a, const float *x, int64_t n)
{
    __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i),
                                                _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}

INLINE __m256 h8(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static float v_dot_f16(const uint16_t *a, const uint16_t *b, int64_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(h8(a + i), h8(b + i), s0);
        s1 = _mm256_fmadd_ps(h8(a + i + 8), h8(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(h8(a + i), h8(b + i), s0);
    float sum = hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        sum += fp16_to_fp32(a[i]) * fp16_to_fp32(b[i]);
    return sum;
}

static void v_axpy_f16(float *y, float a, const uint16_t *x, int64_t n)
{
    __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, h8(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * fp16_to_fp32(x[i]);
}

static void v_f32_to_f16(const float *x, uint16_t *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++)
        y[i] = fp32_to_fp16(x[i]);
}

static void quantize_f16(const float *x, void *act, int64_t n)
{
    v_f32_to_f16(x, act, n);
}

static void v_round_f16(float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; i++)
        x[i] = fp16_to_fp32(fp32_to_fp16(x[i]));
}

/* exp(x) as in kern_avx512.c, with 2^k built in the exponent bits: the
 * clamp to [-87, 88] keeps k within the normal range, where exp(-87) is
 * still a normal float and exp(88) is below the largest one. Past the
 * clamp the result is infinity or 0, as for the exact value. */
INLINE __m256 v_exp(__m256 x0)
{
    __m256 x = _mm256_min_ps(_mm256_max_ps(x0, _mm256_set1_ps(-87.0f)),
                             _mm256_set1_ps(88.0f));
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693145752f), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(1.42860677e-6f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i bits = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    __m256 e = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
    e = _mm256_blendv_ps(e, _mm256_set1_ps(INFINITY),
                         _mm256_cmp_ps(x0, _mm256_set1_ps(88.0f), _CMP_GT_OQ));
    return _mm256_blendv_ps(e, _mm256_setzero_ps(),
                            _mm256_cmp_ps(x0, _mm256_set1_ps(-87.0f), _CMP_LT_OQ));
}

INLINE __m256 v_swiglu8(__m256 g, __m256 u)
{
    __m256 e = v_exp(_mm256_sub_ps(_mm256_setzero_ps(), g));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

static void v_swiglu(float *gate, const float *up, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(gate + i, v_swiglu8(_mm256_loadu_ps(gate + i),
                                             _mm256_loadu_ps(up + i)));
    if (i < n) {
        float g[8] = {0}, u[8] = {0};
        memcpy(g, gate + i, (size_t)(n - i) * sizeof *g);
        memcpy(u, up + i, (size_t)(n - i) * sizeof *u);
        _mm256_storeu_ps(g, v_swiglu8(_mm256_loadu_ps(g), _mm256_loadu_ps(u)));
        memcpy(gate + i, g, (size_t)(n - i) * sizeof *g);
    }
}

static void v_attn_scores_f16(const float *q, const uint16_t *k, int64_t k_stride,
                              int64_t n_keys, int64_t head_dim, float scale,
                              float *scores)
{
    const int64_t n8 = head_dim / 8 * 8;
    for (int64_t j = 0; j < n_keys; j++) {
        const uint16_t *row = k + j * k_stride;
        __m256 acc = _mm256_setzero_ps();
        for (int64_t i = 0; i < n8; i += 8)
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), h8(row + i), acc);
        float sum = hsum8(acc);
        for (int64_t i = n8; i < head_dim; i++)
            sum += q[i] * fp16_to_fp32(row[i]);
        scores[j] = scale * sum;
    }
}

/* Keeps 32 output floats in registers while all n value rows pass. */
static void v_attn_values_f16(float *out, const float *w, const uint16_t *v,
                              int64_t v_stride, int64_t n, int64_t head_dim)
{
    const int64_t n32 = head_dim / 32 * 32;
    for (int64_t c = 0; c < n32; c += 32) {
        __m256 acc[4];
        #pragma GCC unroll 4
        for (int s = 0; s < 4; s++)
            acc[s] = _mm256_loadu_ps(out + c + 8 * s);
        for (int64_t j = 0; j < n; j++) {
            __m256 wj = _mm256_set1_ps(w[j]);
            #pragma GCC unroll 4
            for (int s = 0; s < 4; s++)
                acc[s] = _mm256_fmadd_ps(wj, h8(v + j * v_stride + c + 8 * s), acc[s]);
        }
        #pragma GCC unroll 4
        for (int s = 0; s < 4; s++)
            _mm256_storeu_ps(out + c + 8 * s, acc[s]);
    }
    if (n32 < head_dim)
        for (int64_t j = 0; j < n; j++)
            v_axpy_f16(out + n32, w[j], v + j * v_stride + n32, head_dim - n32);
}

/* ---- activation quantizers ----
 * Same arithmetic as kern_scalar.c (amax / 127, 1 / d, round to nearest
 * even), so the bytes are identical. */

INLINE __m256 abs8(__m256 v)
{
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
}

INLINE float hmax8(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* Quantizes 32 floats with inverse scale id into out; returns their sum. */
INLINE int q8_store32(int8_t *out, const float *x, float id)
{
    __m256 s = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; k++)
        q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), s));
    /* The packs interleave 128-bit lanes; the permute restores the order. */
    __m256i q16a = _mm256_packs_epi32(q[0], q[1]), q16b = _mm256_packs_epi32(q[2], q[3]);
    __m256i q8 = _mm256_packs_epi16(q16a, q16b);
    q8 = _mm256_permutevar8x32_epi32(q8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)out, q8);
    __m256i sum = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
    return _mm_cvtsi128_si32(s4);
}

INLINE float q8_amax(const float *x, int n)
{
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < n; j += 8)
        m = _mm256_max_ps(m, abs8(_mm256_loadu_ps(x + j)));
    return hmax8(m);
}

static void quantize_q8_0(const float *x, void *act, int64_t n)
{
    block_q8_0 *b = act;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        float d = q8_amax(x, QK8_0) / 127.0f;
        b[i].d = fp32_to_fp16(d);
        q8_store32(b[i].qs, x, d != 0.0f ? 1.0f / d : 0.0f);
    }
}

static void quantize_q8_1(const float *x, void *act, int64_t n)
{
    block_q8_1 *b = act;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        float d = q8_amax(x, QK8_1) / 127.0f;
        int sum = q8_store32(b[i].qs, x, d != 0.0f ? 1.0f / d : 0.0f);
        b[i].d = fp32_to_fp16(d);
        b[i].s = fp32_to_fp16((float)sum * d);
    }
}

static void quantize_q8_K(const float *x, void *act, int64_t n)
{
    block_q8_K *b = act;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float d = q8_amax(x, QK_K) / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = d;
        for (int j = 0; j < QK_K; j += 32)
            q8_store32(b[i].qs + j, x + j, id);
        for (int g = 0; g < QK_K / 16; g++) {
            __m128i v = _mm_loadu_si128((const __m128i *)(b[i].qs + 16 * g));
            __m256i w = _mm256_cvtepi8_epi16(v);
            __m256i p = _mm256_madd_epi16(w, _mm256_set1_epi16(1));
            __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(p),
                                       _mm256_extracti128_si256(p, 1));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
            b[i].bsums[g] = (int16_t)_mm_cvtsi128_si32(s4);
        }
    }
}

void kern_avx2_fill(kern_ops *ops, const kern_cpu *cpu)
{
    ops->matmul[ROJ_TYPE_F32] = mm_f32;
    ops->matmul[ROJ_TYPE_F16] = mm_f16;
    ops->matmul[ROJ_TYPE_BF16] = mm_bf16;
    ops->quantize[ROJ_TYPE_F16] = quantize_f16;
    kern_avx2_fill_quant(ops, cpu->avx_vnni);
    ops->quantize[ROJ_TYPE_Q8_0] = quantize_q8_0;
    ops->quantize[ROJ_TYPE_Q8_1] = quantize_q8_1;
    ops->quantize[ROJ_TYPE_Q8_K] = quantize_q8_K;
    ops->dot_f16 = v_dot_f16;
    ops->axpy_f16 = v_axpy_f16;
    ops->dot_f32 = v_dot_f32;
    ops->axpy_f32 = v_axpy_f32;
    ops->f32_to_f16 = v_f32_to_f16;
    ops->round_f16 = v_round_f16;
    ops->swiglu = v_swiglu;
    ops->attn_scores_f16 = v_attn_scores_f16;
    ops->attn_values_f16 = v_attn_values_f16;
}
