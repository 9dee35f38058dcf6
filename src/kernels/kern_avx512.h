/*
 * Helpers shared by the AVX-512 kernel files (*_avx512.c only: they need
 * the AVX-512 compiler flags).
 */
#ifndef ROJ_KERNELS_KERN_AVX512_H
#define ROJ_KERNELS_KERN_AVX512_H

#include <immintrin.h>
#include <stdint.h>

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
