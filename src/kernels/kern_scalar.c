/*
 * Scalar reference kernels: activation quantizers, per-type dot products
 * and the vector helpers. The SIMD files are tested against these. Integer
 * parts of the quantized dot products are exact; only the float combination
 * of block scales differs in rounding order from the SIMD versions.
 */
#include <math.h>
#include <string.h>

#include "kernels/kern_impl.h"
#include "quant/fp16.h"

/* ---- activation quantizers ---- */

/* Rounds to nearest even like cvtps2dq, so SIMD quantizers match. Adding
 * and subtracting 1.5 * 2^23 rounds in the FPU's default mode without a
 * libm call; it is exact for |v| < 2^22, and callers pass |v| <= 127.01. */
static inline int round_even(float v)
{
    return (int)((v + 12582912.0f) - 12582912.0f);
}

static float block_amax(const float *x, int n)
{
    float amax = 0.0f;
    for (int j = 0; j < n; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    return amax;
}

void kern_quantize_row_q8_0(const float *x, void *act, int64_t n)
{
    block_q8_0 *b = act;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        float d = block_amax(x, QK8_0) / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = fp32_to_fp16(d);
        for (int j = 0; j < QK8_0; j++)
            b[i].qs[j] = (int8_t)round_even(x[j] * id);
    }
}

void kern_quantize_row_q8_1(const float *x, void *act, int64_t n)
{
    block_q8_1 *b = act;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        float d = block_amax(x, QK8_1) / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        b[i].d = fp32_to_fp16(d);
        for (int j = 0; j < QK8_1; j++) {
            b[i].qs[j] = (int8_t)round_even(x[j] * id);
            sum += b[i].qs[j];
        }
        b[i].s = fp32_to_fp16((float)sum * d);
    }
}

void kern_quantize_row_q8_K(const float *x, void *act, int64_t n)
{
    block_q8_K *b = act;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float d = block_amax(x, QK_K) / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = d;
        for (int j = 0; j < QK_K; j++)
            b[i].qs[j] = (int8_t)round_even(x[j] * id);
        for (int g = 0; g < QK_K / 16; g++) {
            int sum = 0;
            for (int j = 0; j < 16; j++)
                sum += b[i].qs[g * 16 + j];
            b[i].bsums[g] = (int16_t)sum;
        }
    }
}

void kern_quantize_row_bf16(const float *x, void *act, int64_t n)
{
    uint16_t *out = act;
    for (int64_t i = 0; i < n; i++)
        out[i] = fp32_to_bf16(x[i]);
}

void kern_quantize_row_f16(const float *x, void *act, int64_t n)
{
    uint16_t *out = act;
    for (int64_t i = 0; i < n; i++)
        out[i] = fp32_to_fp16(x[i]);
}

void kern_quantize_row_f32(const float *x, void *act, int64_t n)
{
    memcpy(act, x, (size_t)n * sizeof *x);
}

/* ---- dequantizers ---- */

static void dequant_q4_0(const block_q4_0 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += 32) {
        float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((b[i].qs[j] & 0xF) - 8) * d;
            y[j + 16] = (float)((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void dequant_q4_1(const block_q4_1 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += 32) {
        float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(b[i].qs[j] & 0xF) * d + m;
            y[j + 16] = (float)(b[i].qs[j] >> 4) * d + m;
        }
    }
}

/* The five-bit value of element j of a Q5_0 / Q5_1 block. */
static inline int q5_value(const uint8_t qs[16], const uint8_t qh[4], int j)
{
    uint32_t h;
    memcpy(&h, qh, 4);
    int lo = j < 16 ? qs[j] & 0xF : qs[j - 16] >> 4;
    return lo | (int)(((h >> j) & 1u) << 4);
}

static void dequant_q5_0(const block_q5_0 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += 32) {
        float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < 32; j++)
            y[j] = (float)(q5_value(b[i].qs, b[i].qh, j) - 16) * d;
    }
}

static void dequant_q5_1(const block_q5_1 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += 32) {
        float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
        for (int j = 0; j < 32; j++)
            y[j] = (float)q5_value(b[i].qs, b[i].qh, j) * d + m;
    }
}

static void dequant_q8_0(const block_q8_0 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += 32) {
        float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < 32; j++)
            y[j] = (float)b[i].qs[j] * d;
    }
}

static void dequant_q8_1(const block_q8_1 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += 32) {
        float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < 32; j++)
            y[j] = (float)b[i].qs[j] * d;
    }
}

static void dequant_q8_K(const block_q8_K *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += QK_K)
        for (int j = 0; j < QK_K; j++)
            y[j] = (float)b[i].qs[j] * b[i].d;
}

/* The 4-bit value of element e (0..255) of a Q4_K / Q5_K block. */
static inline int k4_low(const uint8_t qs[128], int e)
{
    int chunk = e / 64, l = e % 64;
    uint8_t byte = qs[chunk * 32 + (l % 32)];
    return l < 32 ? byte & 0xF : byte >> 4;
}

static void dequant_q4_K(const block_q4_K *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += QK_K) {
        uint8_t sc[8], mn[8];
        float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
        kern_unpack_k4_scales(b[i].scales, sc, mn);
        for (int e = 0; e < QK_K; e++)
            y[e] = d * (float)sc[e / 32] * (float)k4_low(b[i].qs, e) -
                   dmin * (float)mn[e / 32];
    }
}

static inline int q5k_value(const block_q5_K *b, int e)
{
    int high = (b->qh[e % 32] >> (e / 32)) & 1;
    return k4_low(b->qs, e) | (high << 4);
}

static void dequant_q5_K(const block_q5_K *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += QK_K) {
        uint8_t sc[8], mn[8];
        float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
        kern_unpack_k4_scales(b[i].scales, sc, mn);
        for (int e = 0; e < QK_K; e++)
            y[e] = d * (float)sc[e / 32] * (float)q5k_value(&b[i], e) -
                   dmin * (float)mn[e / 32];
    }
}

/* The unsigned 6-bit value (0..63) of element e of a Q6_K block. Each half
 * of 128 uses 64 ql bytes (low nibbles for elements 0..63, high nibbles for
 * 64..127) and 32 qh bytes holding two bits for each of four groups. */
static inline int q6k_value(const block_q6_K *b, int e)
{
    int half = e / 128, l = e % 128, group = l / 32, k = l % 32;
    const uint8_t *ql = b->ql + half * 64;
    const uint8_t *qh = b->qh + half * 32;
    int lo = (group & 1) ? ql[32 + k] : ql[k];
    lo = group < 2 ? lo & 0xF : lo >> 4;
    return lo | (((qh[k] >> (2 * group)) & 3) << 4);
}

static void dequant_q6_K(const block_q6_K *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += QK_K) {
        float d = fp16_to_fp32(b[i].d);
        for (int e = 0; e < QK_K; e++)
            y[e] = d * (float)b[i].scales[e / 16] *
                   (float)(q6k_value(&b[i], e) - 32);
    }
}

int kern_scalar_dequantize(enum roj_type type, const void *row, float *out,
                           int64_t n)
{
    const uint16_t *h = row;
    switch (type) {
    case ROJ_TYPE_F32:
        memcpy(out, row, (size_t)n * sizeof *out);
        return 0;
    case ROJ_TYPE_F16:
        for (int64_t i = 0; i < n; i++)
            out[i] = fp16_to_fp32(h[i]);
        return 0;
    case ROJ_TYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            out[i] = bf16_to_fp32(h[i]);
        return 0;
    case ROJ_TYPE_Q4_0: dequant_q4_0(row, out, n / 32); return 0;
    case ROJ_TYPE_Q4_1: dequant_q4_1(row, out, n / 32); return 0;
    case ROJ_TYPE_Q5_0: dequant_q5_0(row, out, n / 32); return 0;
    case ROJ_TYPE_Q5_1: dequant_q5_1(row, out, n / 32); return 0;
    case ROJ_TYPE_Q8_0: dequant_q8_0(row, out, n / 32); return 0;
    case ROJ_TYPE_Q8_1: dequant_q8_1(row, out, n / 32); return 0;
    case ROJ_TYPE_Q4_K: dequant_q4_K(row, out, n / QK_K); return 0;
    case ROJ_TYPE_Q5_K: dequant_q5_K(row, out, n / QK_K); return 0;
    case ROJ_TYPE_Q6_K: dequant_q6_K(row, out, n / QK_K); return 0;
    case ROJ_TYPE_Q8_K: dequant_q8_K(row, out, n / QK_K); return 0;
    default:
        return -1;
    }
}

/* ---- dot products of one weight row with one activation row ---- */

static float dot_f32_f32(const void *w, const void *a, int64_t n)
{
    const float *x = w, *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++)
        sum += x[i] * y[i];
    return sum;
}

/* F16 weights take F16 activations; both widen exactly, the sum is F32. */
static float dot_f16_f16(const void *w, const void *a, int64_t n)
{
    const uint16_t *x = w, *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++)
        sum += fp16_to_fp32(x[i]) * fp16_to_fp32(y[i]);
    return sum;
}

static float dot_bf16_bf16(const void *w, const void *a, int64_t n)
{
    const uint16_t *x = w, *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++)
        sum += bf16_to_fp32(x[i]) * bf16_to_fp32(y[i]);
    return sum;
}

static float dot_q4_0(const void *w, const void *a, int64_t n)
{
    const block_q4_0 *x = w;
    const block_q8_0 *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 32; i++) {
        int isum = 0;
        for (int j = 0; j < 16; j++)
            isum += ((x[i].qs[j] & 0xF) - 8) * y[i].qs[j] +
                    ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
        sum += fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d) * (float)isum;
    }
    return sum;
}

static float dot_q4_1(const void *w, const void *a, int64_t n)
{
    const block_q4_1 *x = w;
    const block_q8_1 *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 32; i++) {
        int isum = 0;
        for (int j = 0; j < 16; j++)
            isum += (x[i].qs[j] & 0xF) * y[i].qs[j] +
                    (x[i].qs[j] >> 4) * y[i].qs[j + 16];
        sum += fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d) * (float)isum +
               fp16_to_fp32(x[i].m) * fp16_to_fp32(y[i].s);
    }
    return sum;
}

static float dot_q5_0(const void *w, const void *a, int64_t n)
{
    const block_q5_0 *x = w;
    const block_q8_0 *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 32; i++) {
        int isum = 0;
        for (int j = 0; j < 32; j++)
            isum += (q5_value(x[i].qs, x[i].qh, j) - 16) * y[i].qs[j];
        sum += fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d) * (float)isum;
    }
    return sum;
}

static float dot_q5_1(const void *w, const void *a, int64_t n)
{
    const block_q5_1 *x = w;
    const block_q8_1 *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 32; i++) {
        int isum = 0;
        for (int j = 0; j < 32; j++)
            isum += q5_value(x[i].qs, x[i].qh, j) * y[i].qs[j];
        sum += fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d) * (float)isum +
               fp16_to_fp32(x[i].m) * fp16_to_fp32(y[i].s);
    }
    return sum;
}

static float dot_q8_0(const void *w, const void *a, int64_t n)
{
    const block_q8_0 *x = w;
    const block_q8_0 *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 32; i++) {
        int isum = 0;
        for (int j = 0; j < 32; j++)
            isum += x[i].qs[j] * y[i].qs[j];
        sum += fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d) * (float)isum;
    }
    return sum;
}

/* K-quants: sum_j scale_j * dot_j is an exact integer; the mins fold in
 * through the activation's group sums (bsums). */
static float dot_q4_K(const void *w, const void *a, int64_t n)
{
    const block_q4_K *x = w;
    const block_q8_K *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        uint8_t sc[8], mn[8];
        int isum = 0, msum = 0;
        kern_unpack_k4_scales(x[i].scales, sc, mn);
        for (int j = 0; j < 8; j++) {
            int s = 0;
            for (int l = 0; l < 32; l++)
                s += k4_low(x[i].qs, j * 32 + l) * y[i].qs[j * 32 + l];
            isum += sc[j] * s;
            msum += mn[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        }
        sum += y[i].d * (fp16_to_fp32(x[i].d) * (float)isum -
                         fp16_to_fp32(x[i].dmin) * (float)msum);
    }
    return sum;
}

static float dot_q5_K(const void *w, const void *a, int64_t n)
{
    const block_q5_K *x = w;
    const block_q8_K *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        uint8_t sc[8], mn[8];
        int isum = 0, msum = 0;
        kern_unpack_k4_scales(x[i].scales, sc, mn);
        for (int j = 0; j < 8; j++) {
            int s = 0;
            for (int l = 0; l < 32; l++)
                s += q5k_value(&x[i], j * 32 + l) * y[i].qs[j * 32 + l];
            isum += sc[j] * s;
            msum += mn[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        }
        sum += y[i].d * (fp16_to_fp32(x[i].d) * (float)isum -
                         fp16_to_fp32(x[i].dmin) * (float)msum);
    }
    return sum;
}

static float dot_q6_K(const void *w, const void *a, int64_t n)
{
    const block_q6_K *x = w;
    const block_q8_K *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int isum = 0;
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int l = 0; l < 16; l++)
                s += q6k_value(&x[i], g * 16 + l) * y[i].qs[g * 16 + l];
            isum += x[i].scales[g] * (s - 32 * y[i].bsums[g]);
        }
        sum += y[i].d * fp16_to_fp32(x[i].d) * (float)isum;
    }
    return sum;
}

typedef float (*row_dot_fn)(const void *w, const void *a, int64_t n);

static void matmul_rows(const kern_mm_args *p, row_dot_fn dot)
{
    for (int64_t t = 0; t < p->n_tok; t++) {
        const uint8_t *a = p->act + (size_t)t * p->act_row_bytes;
        for (int64_t r = p->row_begin; r < p->row_end; r++)
            p->y[t * p->y_stride + r] =
                dot(p->w + (size_t)r * p->w_row_bytes, a, p->n_in);
    }
}

static void mm_f32(const kern_mm_args *p) { matmul_rows(p, dot_f32_f32); }
static void mm_f16(const kern_mm_args *p) { matmul_rows(p, dot_f16_f16); }
static void mm_bf16(const kern_mm_args *p) { matmul_rows(p, dot_bf16_bf16); }
static void mm_q4_0(const kern_mm_args *p) { matmul_rows(p, dot_q4_0); }
static void mm_q4_1(const kern_mm_args *p) { matmul_rows(p, dot_q4_1); }
static void mm_q5_0(const kern_mm_args *p) { matmul_rows(p, dot_q5_0); }
static void mm_q5_1(const kern_mm_args *p) { matmul_rows(p, dot_q5_1); }
static void mm_q8_0(const kern_mm_args *p) { matmul_rows(p, dot_q8_0); }
static void mm_q4_K(const kern_mm_args *p) { matmul_rows(p, dot_q4_K); }
static void mm_q5_K(const kern_mm_args *p) { matmul_rows(p, dot_q5_K); }
static void mm_q6_K(const kern_mm_args *p) { matmul_rows(p, dot_q6_K); }

/* ---- attention helpers ---- */

static float scalar_dot_f16(const uint16_t *a, const uint16_t *b, int64_t n)
{
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++)
        sum += fp16_to_fp32(a[i]) * fp16_to_fp32(b[i]);
    return sum;
}

static void scalar_axpy_f16(float *y, float a, const uint16_t *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += a * fp16_to_fp32(x[i]);
}

static float scalar_dot_f32(const float *a, const float *b, int64_t n)
{
    return dot_f32_f32(a, b, n);
}

static void scalar_axpy_f32(float *y, float a, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

static void scalar_f32_to_f16(const float *x, uint16_t *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = fp32_to_fp16(x[i]);
}

static void scalar_round_f16(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = fp16_to_fp32(fp32_to_fp16(x[i]));
}

static void scalar_swiglu(float *gate, const float *up, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

static void scalar_attn_scores_f16(const float *q, const uint16_t *k,
                                   int64_t k_stride, int64_t n_keys,
                                   int64_t head_dim, float scale, float *scores)
{
    for (int64_t j = 0; j < n_keys; j++) {
        const uint16_t *row = k + j * k_stride;
        float sum = 0.0f;
        for (int64_t i = 0; i < head_dim; i++)
            sum += q[i] * fp16_to_fp32(row[i]);
        scores[j] = scale * sum;
    }
}

static void scalar_attn_values_f16(float *out, const float *w,
                                   const uint16_t *v, int64_t v_stride,
                                   int64_t n, int64_t head_dim)
{
    for (int64_t j = 0; j < n; j++)
        scalar_axpy_f16(out, w[j], v + j * v_stride, head_dim);
}

void kern_scalar_fill(kern_ops *ops)
{
    ops->matmul[ROJ_TYPE_F32] = mm_f32;
    ops->matmul[ROJ_TYPE_F16] = mm_f16;
    ops->matmul[ROJ_TYPE_BF16] = mm_bf16;
    ops->matmul[ROJ_TYPE_Q4_0] = mm_q4_0;
    ops->matmul[ROJ_TYPE_Q4_1] = mm_q4_1;
    ops->matmul[ROJ_TYPE_Q5_0] = mm_q5_0;
    ops->matmul[ROJ_TYPE_Q5_1] = mm_q5_1;
    ops->matmul[ROJ_TYPE_Q8_0] = mm_q8_0;
    ops->matmul[ROJ_TYPE_Q4_K] = mm_q4_K;
    ops->matmul[ROJ_TYPE_Q5_K] = mm_q5_K;
    ops->matmul[ROJ_TYPE_Q6_K] = mm_q6_K;
    ops->quantize[ROJ_TYPE_F32] = kern_quantize_row_f32;
    ops->quantize[ROJ_TYPE_F16] = kern_quantize_row_f16;
    ops->quantize[ROJ_TYPE_BF16] = kern_quantize_row_bf16;
    ops->quantize[ROJ_TYPE_Q8_0] = kern_quantize_row_q8_0;
    ops->quantize[ROJ_TYPE_Q8_1] = kern_quantize_row_q8_1;
    ops->quantize[ROJ_TYPE_Q8_K] = kern_quantize_row_q8_K;
    ops->dot_f16 = scalar_dot_f16;
    ops->axpy_f16 = scalar_axpy_f16;
    ops->dot_f32 = scalar_dot_f32;
    ops->axpy_f32 = scalar_axpy_f32;
    ops->f32_to_f16 = scalar_f32_to_f16;
    ops->round_f16 = scalar_round_f16;
    ops->swiglu = scalar_swiglu;
    ops->attn_scores_f16 = scalar_attn_scores_f16;
    ops->attn_values_f16 = scalar_attn_values_f16;
}
