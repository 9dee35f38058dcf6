/*
 * Reference quantizers for the K-quants (super-blocks of 256 values).
 *
 * Each super-block is split into sub-blocks; a search in quant_search.c
 * picks every sub-block's scale (and min), those scales are quantized to
 * 4, 6 or 8 bits against one or two FP16 super-block scales, and finally
 * every value is rounded again against the scale that will actually be
 * stored. Without importance weights the steps and float operations are
 * those of ggml's quantize_row_qN_K_ref, so the bytes are identical.
 *
 * NOTE: with importance weights the same searches run with the weights
 * multiplied in. That is not ggml's imatrix algorithm, so such files
 * differ from llama-quantize --imatrix output.
 */
#include <math.h>
#include <string.h>

#include "quant/fp16.h"
#include "quant/quant_impl.h"

static int clamp_int(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Packs 2-bit levels: byte l of each 32-byte group of qs holds elements
 * l, l + 32, l + 64 and l + 96 of its 128 values, lowest bits first. */
static void pack_2bit(const uint8_t *levels, uint8_t *qs)
{
    for (int j = 0; j < QK_K; j += 128) {
        for (int l = 0; l < 32; l++) {
            qs[j / 4 + l] = (uint8_t)(levels[j + l] |
                                      levels[j + l + 32] << 2 |
                                      levels[j + l + 64] << 4 |
                                      levels[j + l + 96] << 6);
        }
    }
}

/* Q2_K: 16 sub-blocks of 16, levels 0..3, 4-bit scales and mins. */
static void quantize_block_q2_K(const float *x, block_q2_K *y,
                                const float *importance)
{
    uint8_t levels[QK_K], scratch[16];
    float weights[16], mins[QK_K / 16], scales[QK_K / 16];
    const float q4scale = 15.0f;
    float max_scale = 0, max_min = 0;

    for (int j = 0; j < QK_K / 16; j++) {
        const float *xs = x + 16 * j;
        for (int l = 0; l < 16; l++) {
            weights[l] = fabsf(xs[l]);
            if (importance)
                weights[l] *= importance[16 * j + l];
        }
        scales[j] = quant_search_affine(16, 3, xs, weights, levels + 16 * j,
                                        &mins[j], scratch, -0.5f, 0.1f, 15,
                                        1);
        if (scales[j] > max_scale)
            max_scale = scales[j];
        if (mins[j] > max_min)
            max_min = mins[j];
    }

    /* Sub-block scales and mins as 4-bit multiples of d and dmin. */
    if (max_scale > 0) {
        float iscale = q4scale / max_scale;
        for (int j = 0; j < QK_K / 16; j++)
            y->scales[j] = (uint8_t)quant_nearest_int(iscale * scales[j]);
        y->d = fp32_to_fp16(max_scale / q4scale);
    } else {
        memset(y->scales, 0, sizeof y->scales);
        y->d = fp32_to_fp16(0.0f);
    }
    if (max_min > 0) {
        float iscale = q4scale / max_min;
        for (int j = 0; j < QK_K / 16; j++) {
            int l = quant_nearest_int(iscale * mins[j]);
            y->scales[j] = (uint8_t)(y->scales[j] | l << 4);
        }
        y->dmin = fp32_to_fp16(max_min / q4scale);
    } else {
        y->dmin = fp32_to_fp16(0.0f);
    }

    /* Round again against the stored scales. */
    for (int j = 0; j < QK_K / 16; j++) {
        const float d = fp16_to_fp32(y->d) * (float)(y->scales[j] & 0x0f);
        if (!d)
            continue;
        const float dm = fp16_to_fp32(y->dmin) * (float)(y->scales[j] >> 4);
        for (int l = 0; l < 16; l++) {
            int q = quant_nearest_int((x[16 * j + l] + dm) / d);
            levels[16 * j + l] = (uint8_t)clamp_int(q, 0, 3);
        }
    }
    pack_2bit(levels, y->qs);
}

/* Stores the 6-bit biased scale v (0..63) of sub-block j of Q3_K: low
 * nibbles in bytes 0..7, the top two bits in bytes 8..11. */
static void store_q3_K_scale(uint8_t *scales, int j, int v)
{
    if (j < 8)
        scales[j] = (uint8_t)(v & 0x0f);
    else
        scales[j - 8] = (uint8_t)(scales[j - 8] | (v & 0x0f) << 4);
    scales[j % 4 + 8] = (uint8_t)(scales[j % 4 + 8] | (v >> 4) << (2 * (j / 4)));
}

/* Q3_K: 16 sub-blocks of 16, levels -4..3 (the high bit in hmask),
 * signed 6-bit scales. */
static void quantize_block_q3_K(const float *x, block_q3_K *y,
                                const float *importance)
{
    int8_t levels[QK_K];
    float scales[QK_K / 16], weights[16];
    float max_scale = 0, amax = 0;

    for (int j = 0; j < QK_K / 16; j++) {
        const float *xs = x + 16 * j;
        if (importance) {
            for (int l = 0; l < 16; l++)
                weights[l] = importance[16 * j + l] * xs[l] * xs[l];
            scales[j] = quant_search_symmetric(16, 4, xs, levels + 16 * j, 1,
                                               weights);
        } else {
            scales[j] = quant_search_q3(16, 4, xs, levels + 16 * j);
        }
        float a = fabsf(scales[j]);
        if (a > amax) {
            amax = a;
            max_scale = scales[j];
        }
    }

    memset(y->scales, 0, sizeof y->scales);
    if (max_scale) {
        float iscale = -32.0f / max_scale;
        for (int j = 0; j < QK_K / 16; j++) {
            int l = (int8_t)quant_nearest_int(iscale * scales[j]);
            store_q3_K_scale(y->scales, j, clamp_int(l, -32, 31) + 32);
        }
        y->d = fp32_to_fp16(1 / iscale);
    } else {
        y->d = fp32_to_fp16(0.0f);
    }

    for (int j = 0; j < QK_K / 16; j++) {
        const float d =
            fp16_to_fp32(y->d) * (float)quant_q3_K_scale(y->scales, j);
        if (!d)
            continue;
        for (int l = 0; l < 16; l++) {
            int q = quant_nearest_int(x[16 * j + l] / d);
            levels[16 * j + l] = (int8_t)(clamp_int(q, -4, 3) + 4);
        }
    }

    /* Bit b of hmask[m] is the high bit of element 32 * b + m. */
    memset(y->hmask, 0, sizeof y->hmask);
    uint8_t low[QK_K];
    for (int j = 0; j < QK_K; j++) {
        int v = levels[j];
        if (v > 3) {
            y->hmask[j % 32] = (uint8_t)(y->hmask[j % 32] | 1u << (j / 32));
            v -= 4;
        }
        low[j] = (uint8_t)v;
    }
    pack_2bit(low, y->qs);
}

/* Stores 6-bit scale ls and min lm of sub-block j of Q4_K/Q5_K: for
 * j < 4 in the low six bits of bytes j and j + 4; otherwise the low
 * nibbles in byte j + 4 and the top two bits in bytes j - 4 and j. */
static void store_k4_scale_min(uint8_t *q, int j, uint8_t ls, uint8_t lm)
{
    if (j < 4) {
        q[j] = ls;
        q[j + 4] = lm;
    } else {
        q[j + 4] = (uint8_t)((ls & 0x0f) | (lm & 0x0f) << 4);
        q[j - 4] = (uint8_t)(q[j - 4] | (ls >> 4) << 6);
        q[j] = (uint8_t)(q[j] | (lm >> 4) << 6);
    }
}

/*
 * Shared part of Q4_K and Q5_K: eight sub-blocks of 32 with levels
 * 0..nmax, weighted by rms(sub-block) + |x|. Fills scales, d, dmin and
 * levels (final rounding against the stored scales).
 */
static void quantize_k_scale_min(const float *x, int nmax, float rmin,
                                 int nstep, const float *importance,
                                 uint8_t packed[K_SCALE_SIZE], uint16_t *d_out,
                                 uint16_t *dmin_out, uint8_t levels[QK_K])
{
    uint8_t scratch[32];
    float weights[32], mins[QK_K / 32], scales[QK_K / 32];
    float max_scale = 0, max_min = 0;

    for (int j = 0; j < QK_K / 32; j++) {
        const float *xs = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++)
            sum_x2 += xs[l] * xs[l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) {
            weights[l] = av_x + fabsf(xs[l]);
            if (importance)
                weights[l] *= importance[32 * j + l];
        }
        scales[j] = quant_search_affine(32, nmax, xs, weights,
                                        levels + 32 * j, &mins[j], scratch,
                                        rmin, 0.1f, nstep, 0);
        if (scales[j] > max_scale)
            max_scale = scales[j];
        if (mins[j] > max_min)
            max_min = mins[j];
    }

    float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    for (int j = 0; j < QK_K / 32; j++) {
        /* Truncation to uint8_t before the clamp is part of the format's
         * reference behaviour for out-of-range values. */
        uint8_t ls = (uint8_t)quant_nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)quant_nearest_int(inv_min * mins[j]);
        store_k4_scale_min(packed, j, ls > 63 ? 63 : ls, lm > 63 ? 63 : lm);
    }
    *d_out = fp32_to_fp16(max_scale / 63.0f);
    *dmin_out = fp32_to_fp16(max_min / 63.0f);

    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        quant_k4_scale_min(j, packed, &sc, &m);
        const float d = fp16_to_fp32(*d_out) * (float)sc;
        if (!d)
            continue;
        const float dm = fp16_to_fp32(*dmin_out) * (float)m;
        for (int l = 0; l < 32; l++) {
            int q = quant_nearest_int((x[32 * j + l] + dm) / d);
            levels[32 * j + l] = (uint8_t)clamp_int(q, 0, nmax);
        }
    }
}

static void quantize_block_q4_K(const float *x, block_q4_K *y,
                                const float *importance)
{
    uint8_t levels[QK_K];
    quantize_k_scale_min(x, 15, -1.0f, 20, importance, y->scales, &y->d,
                         &y->dmin, levels);
    /* Each 32-byte group holds two sub-blocks, the first in the low
     * nibbles. */
    uint8_t *q = y->qs;
    for (int j = 0; j < QK_K; j += 64, q += 32)
        for (int l = 0; l < 32; l++)
            q[l] = (uint8_t)(levels[j + l] | levels[j + l + 32] << 4);
}

static void quantize_block_q5_K(const float *x, block_q5_K *y,
                                const float *importance)
{
    uint8_t levels[QK_K];
    quantize_k_scale_min(x, 31, -0.5f, 15, importance, y->scales, &y->d,
                         &y->dmin, levels);
    /* Low nibbles as in Q4_K; bit s of qh[l] is the fifth bit of element
     * l of sub-block s. */
    memset(y->qh, 0, sizeof y->qh);
    uint8_t *ql = y->qs;
    for (int j = 0; j < QK_K; j += 64, ql += 32) {
        const int s = j / 32;
        for (int l = 0; l < 32; l++) {
            int l1 = levels[j + l], l2 = levels[j + l + 32];
            if (l1 > 15) {
                l1 -= 16;
                y->qh[l] = (uint8_t)(y->qh[l] | 1u << s);
            }
            if (l2 > 15) {
                l2 -= 16;
                y->qh[l] = (uint8_t)(y->qh[l] | 2u << s);
            }
            ql[l] = (uint8_t)(l1 | l2 << 4);
        }
    }
}

/* Q6_K: 16 sub-blocks of 16, levels -32..31, int8 scales. */
static void quantize_block_q6_K(const float *x, block_q6_K *y,
                                const float *importance)
{
    int8_t levels[QK_K];
    float scales[QK_K / 16], weights[16];
    float max_scale = 0, max_abs_scale = 0;

    for (int j = 0; j < QK_K / 16; j++) {
        const float *xs = x + 16 * j;
        const float *w = NULL;
        if (importance) {
            for (int l = 0; l < 16; l++)
                weights[l] = importance[16 * j + l] * xs[l] * xs[l];
            w = weights;
        }
        scales[j] = quant_search_symmetric(16, 32, xs, levels + 16 * j, 1, w);
        float a = fabsf(scales[j]);
        if (a > max_abs_scale) {
            max_abs_scale = a;
            max_scale = scales[j];
        }
    }

    if (max_abs_scale < 1e-15f) {
        memset(y, 0, sizeof *y);
        return;
    }

    float iscale = -128.0f / max_scale;
    y->d = fp32_to_fp16(1 / iscale);
    for (int j = 0; j < QK_K / 16; j++) {
        int s = quant_nearest_int(iscale * scales[j]);
        y->scales[j] = (int8_t)(s > 127 ? 127 : s);
    }
    for (int j = 0; j < QK_K / 16; j++) {
        const float d = fp16_to_fp32(y->d) * (float)y->scales[j];
        if (!d)
            continue;
        for (int l = 0; l < 16; l++) {
            int q = quant_nearest_int(x[16 * j + l] / d);
            levels[16 * j + l] = (int8_t)(clamp_int(q, -32, 31) + 32);
        }
    }

    /* Per 128 values: ql[l] holds elements l and l + 64 (low nibbles),
     * ql[l + 32] elements l + 32 and l + 96; qh[l] their top two bits. */
    uint8_t *ql = y->ql, *qh = y->qh;
    for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
        for (int l = 0; l < 32; l++) {
            const int a = levels[j + l], b = levels[j + l + 32];
            const int c = levels[j + l + 64], e = levels[j + l + 96];
            ql[l] = (uint8_t)((a & 0x0f) | (c & 0x0f) << 4);
            ql[l + 32] = (uint8_t)((b & 0x0f) | (e & 0x0f) << 4);
            qh[l] = (uint8_t)(a >> 4 | (b >> 4) << 2 | (c >> 4) << 4 |
                              (e >> 4) << 6);
        }
    }
}

void quant_row_q2_K(const float *x, block_q2_K *y, int64_t n,
                    const float *importance)
{
    for (int64_t i = 0; i < n / QK_K; i++)
        quantize_block_q2_K(x + i * QK_K, y + i,
                            importance ? importance + i * QK_K : NULL);
}

void quant_row_q3_K(const float *x, block_q3_K *y, int64_t n,
                    const float *importance)
{
    for (int64_t i = 0; i < n / QK_K; i++)
        quantize_block_q3_K(x + i * QK_K, y + i,
                            importance ? importance + i * QK_K : NULL);
}

void quant_row_q4_K(const float *x, block_q4_K *y, int64_t n,
                    const float *importance)
{
    for (int64_t i = 0; i < n / QK_K; i++)
        quantize_block_q4_K(x + i * QK_K, y + i,
                            importance ? importance + i * QK_K : NULL);
}

void quant_row_q5_K(const float *x, block_q5_K *y, int64_t n,
                    const float *importance)
{
    for (int64_t i = 0; i < n / QK_K; i++)
        quantize_block_q5_K(x + i * QK_K, y + i,
                            importance ? importance + i * QK_K : NULL);
}

void quant_row_q6_K(const float *x, block_q6_K *y, int64_t n,
                    const float *importance)
{
    for (int64_t i = 0; i < n / QK_K; i++)
        quantize_block_q6_K(x + i * QK_K, y + i,
                            importance ? importance + i * QK_K : NULL);
}

/* Q8_K: one float scale per 256 values, max magnitude mapped to -127 or
 * 127, plus the sums of each group of 16 for the dot products. */
void quant_row_q8_K(const float *x, block_q8_K *y, int64_t n)
{
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float max = 0, amax = 0;
        for (int j = 0; j < QK_K; j++) {
            float a = fabsf(x[j]);
            if (a > amax) {
                amax = a;
                max = x[j];
            }
        }
        memset(&y[i], 0, sizeof y[i]);
        if (!amax)
            continue;
        const float iscale = -127.0f / max;
        for (int j = 0; j < QK_K; j++) {
            int v = quant_nearest_int(iscale * x[j]);
            y[i].qs[j] = (int8_t)(v > 127 ? 127 : v);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int l = 0; l < 16; l++)
                sum += y[i].qs[16 * j + l];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}
