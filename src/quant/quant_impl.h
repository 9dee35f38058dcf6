/* Helpers shared by the quantization source files of src/quant/. */
#ifndef ROJ_QUANT_QUANT_IMPL_H
#define ROJ_QUANT_QUANT_IMPL_H

#include <stdint.h>
#include <string.h>

#include "quant/qtypes.h"

/* Rounds to the nearest integer, ties to even, for |v| < 2^22, which
 * covers every call in the quantizers; larger magnitudes are clamped
 * first, so a huge ratio saturates instead of wrapping. Adding 1.5 * 2^23
 * leaves the rounded integer in the low mantissa bits. */
static inline int quant_nearest_int(float v)
{
    if (v > 4194303.0f)
        v = 4194303.0f;
    else if (v < -4194303.0f)
        v = -4194303.0f;
    float shifted = v + 12582912.0f;
    int32_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    return (bits & 0x007fffff) - 0x00400000;
}

/* Signed 6-bit scale j (0..15) of a Q3_K block's packed scales. */
int quant_q3_K_scale(const uint8_t *scales, int j);

/* 6-bit scale and min of sub-block j (0..7) of Q4_K and Q5_K. */
void quant_k4_scale_min(int j, const uint8_t *q, uint8_t *scale,
                        uint8_t *min);

/* K-quant row quantizers (quantize_k.c). n is a multiple of QK_K;
 * importance is NULL or holds n weights. */
void quant_row_q2_K(const float *x, block_q2_K *y, int64_t n,
                    const float *importance);
void quant_row_q3_K(const float *x, block_q3_K *y, int64_t n,
                    const float *importance);
void quant_row_q4_K(const float *x, block_q4_K *y, int64_t n,
                    const float *importance);
void quant_row_q5_K(const float *x, block_q5_K *y, int64_t n,
                    const float *importance);
void quant_row_q6_K(const float *x, block_q6_K *y, int64_t n,
                    const float *importance);
void quant_row_q8_K(const float *x, block_q8_K *y, int64_t n);

/* Least-squares search helpers (quant_search.c), described there. */
float quant_search_symmetric(int n, int nmax, const float *x, int8_t *levels,
                             int rmse_type, const float *weights);
float quant_search_q3(int n, int nmax, const float *x, int8_t *levels);
float quant_search_affine(int n, int nmax, const float *x,
                          const float *weights, uint8_t *levels,
                          float *neg_min, uint8_t *scratch, float rmin,
                          float rdelta, int nstep, int use_mad);

#endif
