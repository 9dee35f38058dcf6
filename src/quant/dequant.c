/*
 * Reference dequantization: block formats to float.
 *
 * Each function evaluates x = d * q (+ m) with the factors multiplied in
 * the same order as ggml's scalar code, so the floats are identical to
 * what llama.cpp computes from the same bytes.
 */
#include <assert.h>
#include <string.h>

#include "quant/fp16.h"
#include "quant/quant.h"
#include "quant/quant_impl.h"

static void dequant_q4_0(const block_q4_0 *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += QK4_0) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            const int lo = (x[i].qs[j] & 0x0f) - 8;
            const int hi = (x[i].qs[j] >> 4) - 8;
            y[j] = (float)lo * d;
            y[j + QK4_0 / 2] = (float)hi * d;
        }
    }
}

static void dequant_q4_1(const block_q4_1 *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += QK4_1) {
        const float d = fp16_to_fp32(x[i].d);
        const float m = fp16_to_fp32(x[i].m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            y[j] = (float)(x[i].qs[j] & 0x0f) * d + m;
            y[j + QK4_1 / 2] = (float)(x[i].qs[j] >> 4) * d + m;
        }
    }
}

static uint32_t load_u32_le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* Fifth bits: bit j of qh belongs to element j of the block. */
static void dequant_q5_0(const block_q5_0 *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += QK5_0) {
        const float d = fp16_to_fp32(x[i].d);
        const uint32_t qh = load_u32_le(x[i].qh);
        for (int j = 0; j < QK5_0 / 2; j++) {
            const int hi0 = (int)((qh >> j) & 1u) << 4;
            const int hi1 = (int)((qh >> (j + 16)) & 1u) << 4;
            const int q0 = ((x[i].qs[j] & 0x0f) | hi0) - 16;
            const int q1 = ((x[i].qs[j] >> 4) | hi1) - 16;
            y[j] = (float)q0 * d;
            y[j + QK5_0 / 2] = (float)q1 * d;
        }
    }
}

static void dequant_q5_1(const block_q5_1 *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += QK5_1) {
        const float d = fp16_to_fp32(x[i].d);
        const float m = fp16_to_fp32(x[i].m);
        const uint32_t qh = load_u32_le(x[i].qh);
        for (int j = 0; j < QK5_1 / 2; j++) {
            const int hi0 = (int)((qh >> j) & 1u) << 4;
            const int hi1 = (int)((qh >> (j + 16)) & 1u) << 4;
            y[j] = (float)((x[i].qs[j] & 0x0f) | hi0) * d + m;
            y[j + QK5_1 / 2] = (float)((x[i].qs[j] >> 4) | hi1) * d + m;
        }
    }
}

static void dequant_q8_0(const block_q8_0 *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += QK8_0) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < QK8_0; j++)
            y[j] = (float)x[i].qs[j] * d;
    }
}

static void dequant_q8_1(const block_q8_1 *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += QK8_1) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < QK8_1; j++)
            y[j] = (float)x[i].qs[j] * d;
    }
}

/* Q2_K: 16 sub-blocks of 16; scales[s] has the 4-bit scale in the low
 * nibble and the 4-bit min in the high one; x = d*sc*q - dmin*m. Byte l
 * of each 32-byte group of qs holds 2-bit values of four sub-blocks. */
static void dequant_q2_K(const block_q2_K *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float d = fp16_to_fp32(x[i].d);
        const float dmin = fp16_to_fp32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        int s = 0;
        for (int half = 0; half < 2; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int part = 0; part < 2; part++, s++) {
                    const float dl = d * (float)(x[i].scales[s] & 0x0f);
                    const float ml = dmin * (float)(x[i].scales[s] >> 4);
                    const uint8_t *qp = q + 16 * part;
                    for (int l = 0; l < 16; l++)
                        *y++ = dl * (float)((qp[l] >> shift) & 3) - ml;
                }
            }
        }
    }
}

int quant_q3_K_scale(const uint8_t *scales, int j)
{
    int low = j < 8 ? scales[j] & 0x0f : scales[j - 8] >> 4;
    int high = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (low | high << 4) - 32;
}

/* Q3_K: 16 sub-blocks of 16 with signed 6-bit scales; a value is the 2-bit
 * field minus 4 unless its bit in hmask is set. */
static void dequant_q3_K(const block_q3_K *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float d_all = fp16_to_fp32(x[i].d);
        const uint8_t *q = x[i].qs;
        const uint8_t *hm = x[i].hmask;
        uint8_t mask = 1;
        int s = 0;
        for (int half = 0; half < 2; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, mask <<= 1) {
                for (int part = 0; part < 2; part++, s++) {
                    const float dl =
                        d_all * (float)quant_q3_K_scale(x[i].scales, s);
                    const int off = 16 * part;
                    for (int l = 0; l < 16; l++) {
                        int v = (q[off + l] >> shift) & 3;
                        v -= (hm[off + l] & mask) ? 0 : 4;
                        *y++ = dl * (float)v;
                    }
                }
            }
        }
    }
}

void quant_k4_scale_min(int j, const uint8_t *q, uint8_t *scale, uint8_t *min)
{
    if (j < 4) {
        *scale = q[j] & 63;
        *min = q[j + 4] & 63;
    } else {
        *scale = (uint8_t)((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
        *min = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* Q4_K: eight sub-blocks of 32; each 32-byte group of qs holds two
 * sub-blocks, the first in the low nibbles. x = d*sc*q - dmin*m. */
static void dequant_q4_K(const block_q4_K *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float d = fp16_to_fp32(x[i].d);
        const float dmin = fp16_to_fp32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        for (int s = 0; s < QK_K / 32; s += 2, q += 32) {
            uint8_t sc, m;
            quant_k4_scale_min(s, x[i].scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            quant_k4_scale_min(s + 1, x[i].scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (float)(q[l] & 0x0f) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

/* Q5_K: Q4_K plus a fifth bit per value; sub-block s takes bit s of
 * qh[l] for its element l. */
static void dequant_q5_K(const block_q5_K *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float d = fp16_to_fp32(x[i].d);
        const float dmin = fp16_to_fp32(x[i].dmin);
        const uint8_t *ql = x[i].qs;
        const uint8_t *qh = x[i].qh;
        for (int s = 0; s < QK_K / 32; s += 2, ql += 32) {
            uint8_t sc, m;
            const uint8_t bit1 = (uint8_t)(1u << s);
            const uint8_t bit2 = (uint8_t)(2u << s);
            quant_k4_scale_min(s, x[i].scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            quant_k4_scale_min(s + 1, x[i].scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++) {
                int v = (ql[l] & 0x0f) + ((qh[l] & bit1) ? 16 : 0);
                *y++ = d1 * (float)v - m1;
            }
            for (int l = 0; l < 32; l++) {
                int v = (ql[l] >> 4) + ((qh[l] & bit2) ? 16 : 0);
                *y++ = d2 * (float)v - m2;
            }
        }
    }
}

/* Q6_K: sixteen sub-blocks of 16 with int8 scales; the low four bits of
 * each value are in ql, the high two in qh. x = d * sc * (q - 32). */
static void dequant_q6_K(const block_q6_K *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float d = fp16_to_fp32(x[i].d);
        const uint8_t *ql = x[i].ql;
        const uint8_t *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int half = 0; half < 2; half++) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) - 32;
                const int q2 =
                    ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 =
                    ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * (float)sc[is] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

static void dequant_q8_K(const block_q8_K *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++)
        for (int j = 0; j < QK_K; j++)
            *y++ = x[i].d * (float)x[i].qs[j];
}

bool quant_can_dequantize(enum roj_type type)
{
    switch (type) {
    case ROJ_TYPE_F32:
    case ROJ_TYPE_F16:
    case ROJ_TYPE_BF16:
    case ROJ_TYPE_Q4_0:
    case ROJ_TYPE_Q4_1:
    case ROJ_TYPE_Q5_0:
    case ROJ_TYPE_Q5_1:
    case ROJ_TYPE_Q8_0:
    case ROJ_TYPE_Q8_1:
    case ROJ_TYPE_Q2_K:
    case ROJ_TYPE_Q3_K:
    case ROJ_TYPE_Q4_K:
    case ROJ_TYPE_Q5_K:
    case ROJ_TYPE_Q6_K:
    case ROJ_TYPE_Q8_K:
        return true;
    default:
        return false;
    }
}

void quant_dequantize_row(enum roj_type type, const void *src, float *dst,
                          int64_t n)
{
    const roj_type_info *info = qtype_info(type);
    assert(quant_can_dequantize(type));
    assert(n % info->block_size == 0);
    const int64_t nb = n / info->block_size;

    switch (type) {
    case ROJ_TYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        break;
    case ROJ_TYPE_F16: {
        const uint16_t *h = src;
        for (int64_t i = 0; i < n; i++)
            dst[i] = fp16_to_fp32(h[i]);
        break;
    }
    case ROJ_TYPE_BF16: {
        const uint16_t *h = src;
        for (int64_t i = 0; i < n; i++)
            dst[i] = bf16_to_fp32(h[i]);
        break;
    }
    case ROJ_TYPE_Q4_0: dequant_q4_0(src, dst, nb); break;
    case ROJ_TYPE_Q4_1: dequant_q4_1(src, dst, nb); break;
    case ROJ_TYPE_Q5_0: dequant_q5_0(src, dst, nb); break;
    case ROJ_TYPE_Q5_1: dequant_q5_1(src, dst, nb); break;
    case ROJ_TYPE_Q8_0: dequant_q8_0(src, dst, nb); break;
    case ROJ_TYPE_Q8_1: dequant_q8_1(src, dst, nb); break;
    case ROJ_TYPE_Q2_K: dequant_q2_K(src, dst, nb); break;
    case ROJ_TYPE_Q3_K: dequant_q3_K(src, dst, nb); break;
    case ROJ_TYPE_Q4_K: dequant_q4_K(src, dst, nb); break;
    case ROJ_TYPE_Q5_K: dequant_q5_K(src, dst, nb); break;
    case ROJ_TYPE_Q6_K: dequant_q6_K(src, dst, nb); break;
    case ROJ_TYPE_Q8_K: dequant_q8_K(src, dst, nb); break;
    default:
        break;
    }
}
