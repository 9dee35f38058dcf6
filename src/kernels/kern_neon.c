/*
 * AArch64 NEON kernels. Quantized weights are decoded to signed bytes
 * (q - offset) and multiplied with the int8 activations by SDOT when
 * HWCAP reports the dot-product extension, else by SMULL + SADALP. SDOT is
 * emitted through inline assembly after an ".arch armv8.2-a+dotprod"
 * directive, so the file builds with the default -march and runs SDOT only
 * after the HWCAP check.
 *
 * The tiles are simple (one row at a time against up to 4 tokens) and the
 * block scales are applied per block in scalar floats: this path is
 * written for correctness first.
 * NOTE: performance is not tuned; the build machine has no ARM hardware,
 * only qemu (tests/neon_check.sh).
 */
#include <arm_neon.h>
#include <stddef.h>
#include <string.h>

#include "kernels/kern_impl.h"
#include "quant/fp16.h"

#define INLINE static inline __attribute__((always_inline))

/* acc + four dot products of groups of 4 signed bytes. */
INLINE int32x4_t dot16(int dotprod, int32x4_t acc, int8x16_t a, int8x16_t b)
{
    if (dotprod) {
        __asm__(".arch armv8.2-a+dotprod\n\tsdot %0.4s, %1.16b, %2.16b"
                : "+w"(acc)
                : "w"(a), "w"(b));
        return acc;
    }
    int16x8_t lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    int16x8_t hi = vmull_s8(vget_high_s8(a), vget_high_s8(b));
    return vpadalq_s16(vpadalq_s16(acc, lo), hi);
}

INLINE float half(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return fp16_to_fp32(h);
}

/* Bytes with 0x10 where bit j (j = 0..15 from first) of bits is set. */
INLINE uint8x16_t bits16(uint32_t bits)
{
    static const uint8_t sel[16] = {1, 2, 4, 8, 16, 32, 64, 128,
                                    1, 2, 4, 8, 16, 32, 64, 128};
    uint8x16_t v = vcombine_u8(vdup_n_u8((uint8_t)bits), vdup_n_u8((uint8_t)(bits >> 8)));
    return vandq_u8(vtstq_u8(v, vld1q_u8(sel)), vdupq_n_u8(0x10));
}

/* ---- Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 ---- */

enum q32_kind { Q32_Q4_0, Q32_Q4_1, Q32_Q5_0, Q32_Q5_1, Q32_Q8_0 };

INLINE int q32_bytes(int kind)
{
    static const int bytes[] = {sizeof(block_q4_0), sizeof(block_q4_1),
                                sizeof(block_q5_0), sizeof(block_q5_1),
                                sizeof(block_q8_0)};
    return bytes[kind];
}

INLINE int q32_min(int kind)
{
    return kind == Q32_Q4_1 || kind == Q32_Q5_1;
}

/* Decodes one block into 32 signed values (elements 0-15 in v[0]). */
INLINE void q32_decode(int kind, const uint8_t *b, int8x16_t v[2])
{
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    uint32_t h = 0;
    uint8x16_t q, lo, hi;
    int qoff = offsetof(block_q5_1, qs);
    if (kind == Q32_Q4_0)
        qoff = offsetof(block_q4_0, qs);
    else if (kind == Q32_Q4_1)
        qoff = offsetof(block_q4_1, qs);
    else if (kind == Q32_Q5_0)
        qoff = offsetof(block_q5_0, qs);

    if (kind == Q32_Q8_0) {
        v[0] = vld1q_s8((const int8_t *)b + 2);
        v[1] = vld1q_s8((const int8_t *)b + 18);
        return;
    }
    q = vld1q_u8(b + qoff);
    lo = vandq_u8(q, m4);
    hi = vshrq_n_u8(q, 4);
    if (kind == Q32_Q5_0 || kind == Q32_Q5_1) {
        memcpy(&h, b + (kind == Q32_Q5_0 ? 2 : 4), 4);
        lo = vorrq_u8(lo, bits16(h));
        hi = vorrq_u8(hi, bits16(h >> 16));
    }
    int offset = 0;
    if (kind == Q32_Q4_0)
        offset = 8;
    else if (kind == Q32_Q5_0)
        offset = 16;
    v[0] = vsubq_s8(vreinterpretq_s8_u8(lo), vdupq_n_s8((int8_t)offset));
    v[1] = vsubq_s8(vreinterpretq_s8_u8(hi), vdupq_n_s8((int8_t)offset));
}

INLINE void q32_matmul(int dotprod, int kind, const kern_mm_args *p)
{
    const int bs = q32_bytes(kind);
    const int abs_ = q32_min(kind) ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const int aq = q32_min(kind) ? 4 : 2;
    const int64_t nb = p->n_in / 32;

    for (int64_t t0 = 0; t0 < p->n_tok; t0 += 4) {
        int nt = p->n_tok - t0 < 4 ? (int)(p->n_tok - t0) : 4;
        for (int64_t r = p->row_begin; r < p->row_end; r++) {
            const uint8_t *w = p->w + (size_t)r * p->w_row_bytes;
            float sum[4] = {0};
            for (int64_t b = 0; b < nb; b++) {
                int8x16_t v[2];
                const uint8_t *wb = w + b * bs;
                float dw = half(wb), mw = q32_min(kind) ? half(wb + 2) : 0.0f;
                q32_decode(kind, wb, v);
                for (int t = 0; t < nt; t++) {
                    const uint8_t *ab = p->act + (size_t)(t0 + t) * p->act_row_bytes + b * abs_;
                    int32x4_t acc = vdupq_n_s32(0);
                    acc = dot16(dotprod, acc, v[0], vld1q_s8((const int8_t *)ab + aq));
                    acc = dot16(dotprod, acc, v[1], vld1q_s8((const int8_t *)ab + aq + 16));
                    sum[t] += dw * half(ab) * (float)vaddvq_s32(acc);
                    if (q32_min(kind))
                        sum[t] += mw * half(ab + 2);
                }
            }
            for (int t = 0; t < nt; t++)
                p->y[(t0 + t) * p->y_stride + r] = sum[t];
        }
    }
}

/* ---- Q4_K, Q5_K, Q6_K ---- */

enum kq_kind { KQ_Q4_K, KQ_Q5_K, KQ_Q6_K };

/* Integer sum of one K-quant block times one Q8_K block, with mins (or
 * the Q6_K offset) already folded in through the group sums. */
INLINE void kq_block_dot(int dotprod, int kind, const uint8_t *blk, const block_q8_K *a,
                         int32_t *isum, int32_t *msum)
{
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    *isum = 0;
    *msum = 0;
    if (kind == KQ_Q6_K) {
        const block_q6_K *b = (const block_q6_K *)blk;
        for (int g = 0; g < 16; g++) {
            int half_ = g / 8, group = (g % 8) / 2, k0 = (g % 2) * 16;
            uint8x16_t l = vld1q_u8(b->ql + 64 * half_ + 32 * (group & 1) + k0);
            uint8x16_t h = vld1q_u8(b->qh + 32 * half_ + k0);
            l = group < 2 ? vandq_u8(l, m4) : vshrq_n_u8(l, 4);
            h = vandq_u8(vshlq_u8(h, vdupq_n_s8((int8_t)(-2 * group))), vdupq_n_u8(3));
            int8x16_t q = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(l, vshlq_n_u8(h, 4))),
                                   vdupq_n_s8(32));
            int32x4_t acc = dot16(dotprod, vdupq_n_s32(0), q, vld1q_s8(a->qs + 16 * g));
            *isum += b->scales[g] * vaddvq_s32(acc);
        }
        return;
    }
    const uint8_t *qs = kind == KQ_Q4_K ? ((const block_q4_K *)blk)->qs
                                        : ((const block_q5_K *)blk)->qs;
    const uint8_t *qh = kind == KQ_Q5_K ? ((const block_q5_K *)blk)->qh : NULL;
    uint8_t sc[8], mn[8];
    kern_unpack_k4_scales(blk + 4, sc, mn);
    for (int j = 0; j < 8; j++) {
        int32x4_t acc = vdupq_n_s32(0);
        for (int k = 0; k < 2; k++) {
            uint8x16_t v = vld1q_u8(qs + 32 * (j / 2) + 16 * k);
            v = (j & 1) ? vshrq_n_u8(v, 4) : vandq_u8(v, m4);
            if (qh) {
                uint8x16_t bit = vdupq_n_u8((uint8_t)(1u << j));
                v = vorrq_u8(v, vandq_u8(vtstq_u8(vld1q_u8(qh + 16 * k), bit),
                                         vdupq_n_u8(0x10)));
            }
            acc = dot16(dotprod, acc, vreinterpretq_s8_u8(v), vld1q_s8(a->qs + 32 * j + 16 * k));
        }
        *isum += sc[j] * vaddvq_s32(acc);
        *msum += mn[j] * (a->bsums[2 * j] + a->bsums[2 * j + 1]);
    }
}

INLINE void kq_matmul(int dotprod, int kind, const kern_mm_args *p)
{
    const int bs = kind == KQ_Q4_K ? sizeof(block_q4_K)
                   : kind == KQ_Q5_K ? sizeof(block_q5_K) : sizeof(block_q6_K);
    for (int64_t t = 0; t < p->n_tok; t++) {
        const block_q8_K *a = (const block_q8_K *)(p->act + (size_t)t * p->act_row_bytes);
        for (int64_t r = p->row_begin; r < p->row_end; r++) {
            const uint8_t *w = p->w + (size_t)r * p->w_row_bytes;
            float sum = 0.0f;
            for (int64_t b = 0; b < p->n_in / QK_K; b++) {
                const uint8_t *blk = w + b * bs;
                int32_t isum, msum;
                kq_block_dot(dotprod, kind, blk, a + b, &isum, &msum);
                if (kind == KQ_Q6_K)
                    sum += a[b].d * half(blk + offsetof(block_q6_K, d)) * (float)isum;
                else
                    sum += a[b].d * (half(blk) * (float)isum - half(blk + 2) * (float)msum);
            }
            p->y[t * p->y_stride + r] = sum;
        }
    }
}

static void q4_0_d(const kern_mm_args *p) { q32_matmul(1, Q32_Q4_0, p); }
static void q4_1_d(const kern_mm_args *p) { q32_matmul(1, Q32_Q4_1, p); }
static void q5_0_d(const kern_mm_args *p) { q32_matmul(1, Q32_Q5_0, p); }
static void q5_1_d(const kern_mm_args *p) { q32_matmul(1, Q32_Q5_1, p); }
static void q8_0_d(const kern_mm_args *p) { q32_matmul(1, Q32_Q8_0, p); }
static void q4_K_d(const kern_mm_args *p) { kq_matmul(1, KQ_Q4_K, p); }
static void q5_K_d(const kern_mm_args *p) { kq_matmul(1, KQ_Q5_K, p); }
static void q6_K_d(const kern_mm_args *p) { kq_matmul(1, KQ_Q6_K, p); }
static void q4_0_p(const kern_mm_args *p) { q32_matmul(0, Q32_Q4_0, p); }
static void q4_1_p(const kern_mm_args *p) { q32_matmul(0, Q32_Q4_1, p); }
static void q5_0_p(const kern_mm_args *p) { q32_matmul(0, Q32_Q5_0, p); }
static void q5_1_p(const kern_mm_args *p) { q32_matmul(0, Q32_Q5_1, p); }
static void q8_0_p(const kern_mm_args *p) { q32_matmul(0, Q32_Q8_0, p); }
static void q4_K_p(const kern_mm_args *p) { kq_matmul(0, KQ_Q4_K, p); }
static void q5_K_p(const kern_mm_args *p) { kq_matmul(0, KQ_Q5_K, p); }
static void q6_K_p(const kern_mm_args *p) { kq_matmul(0, KQ_Q6_K, p); }

/* ---- float weights and attention helpers ---- */

INLINE float32x4_t h4(const uint16_t *p)
{
    uint16x4_t v = vld1_u16(p);
    return vcvt_f32_f16(vreinterpret_f16_u16(v));
}

INLINE float32x4_t bf4(const uint16_t *p)
{
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
}

enum fkind { F_F32, F_F16, F_BF16 };

/* Loads 4 values of a row (F32, F16 or BF16) as floats. */
INLINE float32x4_t f4(int kind, const uint8_t *row, int64_t i)
{
    if (kind == F_F32)
        return vld1q_f32((const float *)row + i);
    if (kind == F_F16)
        return h4((const uint16_t *)row + i);
    return bf4((const uint16_t *)row + i);
}

/* Multiplies one row at a time for every token count, so an output has the
 * same bits whatever the batch. Four accumulators keep four multiply-adds
 * in flight. NOTE: checked under qemu-aarch64 only, never timed on ARM. */
INLINE void fmatmul(int kind, const kern_mm_args *p)
{
    const int64_t n = p->n_in, n16 = n / 16 * 16, n4 = n / 4 * 4;
    for (int64_t t = 0; t < p->n_tok; t++) {
        const uint8_t *a = p->act + (size_t)t * p->act_row_bytes;
        for (int64_t r = p->row_begin; r < p->row_end; r++) {
            const uint8_t *w = p->w + (size_t)r * p->w_row_bytes;
            float32x4_t acc[4];
            for (int j = 0; j < 4; j++)
                acc[j] = vdupq_n_f32(0.0f);
            int64_t i = 0;
            for (; i < n16; i += 16)
                for (int j = 0; j < 4; j++)
                    acc[j] = vfmaq_f32(acc[j], f4(kind, w, i + 4 * j),
                                       f4(kind, a, i + 4 * j));
            for (; i < n4; i += 4)
                acc[0] = vfmaq_f32(acc[0], f4(kind, w, i), f4(kind, a, i));
            float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]),
                                             vaddq_f32(acc[2], acc[3])));
            for (; i < n; i++) {
                const uint16_t *wh = (const uint16_t *)w, *ah = (const uint16_t *)a;
                if (kind == F_F32)
                    sum += ((const float *)w)[i] * ((const float *)a)[i];
                else if (kind == F_F16)
                    sum += fp16_to_fp32(wh[i]) * fp16_to_fp32(ah[i]);
                else
                    sum += bf16_to_fp32(wh[i]) * bf16_to_fp32(ah[i]);
            }
            p->y[t * p->y_stride + r] = sum;
        }
    }
}

static void mm_f32(const kern_mm_args *p) { fmatmul(F_F32, p); }
static void mm_f16(const kern_mm_args *p) { fmatmul(F_F16, p); }
static void mm_bf16(const kern_mm_args *p) { fmatmul(F_BF16, p); }

static float v_dot_f32(const float *a, const float *b, int64_t n)
{
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    }
    float sum = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++)
        sum += a[i] * b[i];
    return sum;
}

static void v_axpy_f32(float *y, float a, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
    for (; i < n; i++)
        y[i] += a * x[i];
}

static float v_dot_f16(const uint16_t *a, const uint16_t *b, int64_t n)
{
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = vfmaq_f32(s0, h4(a + i), h4(b + i));
        s1 = vfmaq_f32(s1, h4(a + i + 4), h4(b + i + 4));
    }
    float sum = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++)
        sum += fp16_to_fp32(a[i]) * fp16_to_fp32(b[i]);
    return sum;
}

static void v_axpy_f16(float *y, float a, const uint16_t *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), h4(x + i), a));
    for (; i < n; i++)
        y[i] += a * fp16_to_fp32(x[i]);
}

/* FCVTN rounds to nearest even under the default FPCR, like F16C. */
static void v_f32_to_f16(const float *x, uint16_t *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    for (; i < n; i++)
        y[i] = fp32_to_fp16(x[i]);
}

static void quantize_f16(const float *x, void *act, int64_t n)
{
    v_f32_to_f16(x, act, n);
}

void kern_neon_fill(kern_ops *ops, const kern_cpu *cpu)
{
    int d = cpu->neon_dotprod;
    ops->matmul[ROJ_TYPE_F32] = mm_f32;
    ops->matmul[ROJ_TYPE_F16] = mm_f16;
    ops->matmul[ROJ_TYPE_BF16] = mm_bf16;
    ops->quantize[ROJ_TYPE_F16] = quantize_f16;
    ops->matmul[ROJ_TYPE_Q4_0] = d ? q4_0_d : q4_0_p;
    ops->matmul[ROJ_TYPE_Q4_1] = d ? q4_1_d : q4_1_p;
    ops->matmul[ROJ_TYPE_Q5_0] = d ? q5_0_d : q5_0_p;
    ops->matmul[ROJ_TYPE_Q5_1] = d ? q5_1_d : q5_1_p;
    ops->matmul[ROJ_TYPE_Q8_0] = d ? q8_0_d : q8_0_p;
    ops->matmul[ROJ_TYPE_Q4_K] = d ? q4_K_d : q4_K_p;
    ops->matmul[ROJ_TYPE_Q5_K] = d ? q5_K_d : q5_K_p;
    ops->matmul[ROJ_TYPE_Q6_K] = d ? q6_K_d : q6_K_p;
    ops->dot_f16 = v_dot_f16;
    ops->axpy_f16 = v_axpy_f16;
    ops->dot_f32 = v_dot_f32;
    ops->axpy_f32 = v_axpy_f32;
    ops->f32_to_f16 = v_f32_to_f16;
}
