/*
 * Helpers shared by the AVX-512 kernel files (*_avx512.c only: they need
 * the AVX-512 compiler flags).
 */
#ifndef ROJ_KERNELS_KERN_AVX512_H
#define ROJ_KERNELS_KERN_AVX512_H

#include <immintrin.h>
#include <stdint.h>

/*
 * Sums the 16 lanes of v in the order kern_reduce_4x4_sums uses for each
 * accumulator: lanes l and l + 8, then l and l + 4, then (0 + 1) + (2 + 3).
 * Every matrix-product tile ends with this order, so an output does not
 * depend on the tile it fell in, and a row gives the same bits whatever
 * the batch around it (the compilers' _mm512_reduce_add_ps orders differ).
 */
static inline __attribute__((always_inline)) float
kern_hsum_ps(__m512 v)
{
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v),
                             _mm512_extractf32x8_ps(v, 1));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h),
                          _mm256_extractf128_ps(h, 1));
    __m128 pairs = _mm_add_ps(q, _mm_shuffle_ps(q, q, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtss_f32(pairs) + _mm_cvtss_f32(_mm_movehl_ps(pairs, pairs));
}

/*
 * Sums each of the 16 accumulators of a 4 x 4 tile acc[i][j] and returns
 * them in one register: lane 4 * j + i holds the sum of acc[i][j]. Four
 * rounds of shuffle + add halve the lanes per accumulator while doubling
 * the accumulators per register (about 45 instructions instead of 16
 * separate reductions of 8).
 */
static inline __attribute__((always_inline)) __m512
kern_reduce_4x4_sums(__m512 acc[][4])
{
    __m512 v[16], w1[8], w2[4], w3[2];

    for (int k = 0; k < 16; k++)
        v[k] = acc[k / 4][k % 4];
    for (int i = 0; i < 8; i++)
        w1[i] = _mm512_add_ps(
            _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
            _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    for (int j = 0; j < 4; j++)
        w2[j] = _mm512_add_ps(
            _mm512_shuffle_f32x4(w1[2 * j], w1[2 * j + 1], _MM_SHUFFLE(2, 0, 2, 0)),
            _mm512_shuffle_f32x4(w1[2 * j], w1[2 * j + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    for (int m = 0; m < 2; m++)
        w3[m] = _mm512_add_ps(
            _mm512_shuffle_ps(w2[2 * m], w2[2 * m + 1], _MM_SHUFFLE(2, 0, 2, 0)),
            _mm512_shuffle_ps(w2[2 * m], w2[2 * m + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_ps(_mm512_shuffle_ps(w3[0], w3[1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_ps(w3[0], w3[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

/* Sums a 4 rows x 4 tokens tile and stores row r, token t at
 * y[t * y_stride + r]. */
static inline __attribute__((always_inline)) void
kern_reduce_4x4(__m512 acc[][4], float *y, int64_t y_stride)
{
    __m512 sums = kern_reduce_4x4_sums(acc);
    _mm_storeu_ps(y, _mm512_extractf32x4_ps(sums, 0));
    _mm_storeu_ps(y + y_stride, _mm512_extractf32x4_ps(sums, 1));
    _mm_storeu_ps(y + 2 * y_stride, _mm512_extractf32x4_ps(sums, 2));
    _mm_storeu_ps(y + 3 * y_stride, _mm512_extractf32x4_ps(sums, 3));
}

#endif
