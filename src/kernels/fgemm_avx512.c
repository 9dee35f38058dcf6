/*
 * AVX-512 prompt product for F16 weights with F16 activations.
 *
 * The general tiles of kern_avx512.c widen every weight vector with
 * vcvtph2ps next to the FMAs that use it; with F16 activations they would
 * widen those too. Here both sides are widened once:
 *
 *   - the activations of a token block to F32 rows in scratch (exact);
 *   - the weights of 4 rows, once per token block, into an F32 strip that
 *     stays in L1 / L2;
 *
 * so a 4 rows x 6 tokens tile does, per 16 elements, 10 plain loads and
 * 24 FMAs into 24 accumulators. The reduction dimension stays in the
 * vector lanes (lane l sums elements l, l + 16, ...), as in llama.cpp's
 * tiles: a sequential sum per output would round differently enough to
 * show in the logits.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/kern_avx512.h"
#include "kernels/kern_impl.h"

#define INLINE static inline __attribute__((always_inline))

/* Rows per strip and tokens per tile. */
#define STRIP_ROWS 4
#define TILE_TOK 6

/* Bytes of widened activations per token block: about half of a 2 MiB L2,
 * next to the weight strip. */
#define PACK_BYTES (1u << 20)

INLINE __mmask16 tail16(int64_t left)
{
    return left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1);
}

/* Widens n F16 values to F32 and zero-fills out up to n_pad. */
static void widen(const uint16_t *h, int64_t n, int64_t n_pad, float *out)
{
    for (int64_t k = 0; k < n_pad; k += 16) {
        __mmask16 m = k < n ? tail16(n - k) : 0;
        _mm512_store_ps(out + k, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, h + k)));
    }
}

/* Sums the 16 lanes of each of a[0..3] and returns the 4 sums in order. */
INLINE __m128 reduce4(__m512 a0, __m512 a1, __m512 a2, __m512 a3)
{
    __m512 x = _mm512_add_ps(_mm512_shuffle_f32x4(a0, a1, 0x44),
                             _mm512_shuffle_f32x4(a0, a1, 0xEE));
    __m512 y = _mm512_add_ps(_mm512_shuffle_f32x4(a2, a3, 0x44),
                             _mm512_shuffle_f32x4(a2, a3, 0xEE));
    /* 128-bit lane r now holds 4 partial sums of row r. */
    __m512 z = _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x88),
                             _mm512_shuffle_f32x4(x, y, 0xDD));
    z = _mm512_add_ps(z, _mm512_shuffle_ps(z, z, 0xB1));
    z = _mm512_add_ps(z, _mm512_shuffle_ps(z, z, 0x4E));
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(
        _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0), z));
}

/* nr rows of the strip x nt tokens of the widened block; n_pad is a
 * multiple of 16 and both sides are zero past n_in. */
INLINE void tile(int nr, int nt, int64_t n_pad, const float *strip, const float *a,
                 float *y, int64_t y_stride)
{
    __m512 acc[STRIP_ROWS][TILE_TOK];
    #pragma GCC unroll 8
    for (int r = 0; r < STRIP_ROWS; r++)
        #pragma GCC unroll 8
        for (int t = 0; t < nt; t++)
            acc[r][t] = _mm512_setzero_ps();
    for (int64_t k = 0; k < n_pad; k += 16) {
        __m512 w[STRIP_ROWS];
        #pragma GCC unroll 8
        for (int r = 0; r < nr; r++)
            w[r] = _mm512_load_ps(strip + r * n_pad + k);
        #pragma GCC unroll 8
        for (int t = 0; t < nt; t++) {
            __m512 v = _mm512_load_ps(a + t * n_pad + k);
            #pragma GCC unroll 8
            for (int r = 0; r < nr; r++)
                acc[r][t] = _mm512_fmadd_ps(w[r], v, acc[r][t]);
        }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < nt; t++) {
        if (nr == STRIP_ROWS) {
            _mm_storeu_ps(y + t * y_stride,
                          reduce4(acc[0][t], acc[1][t], acc[2][t], acc[3][t]));
        } else {
            #pragma GCC unroll 8
            for (int r = 0; r < nr; r++)
                y[t * y_stride + r] = kern_hsum_ps(acc[r][t]);
        }
    }
}

/* All tokens of one strip: tiles of TILE_TOK, then one tile of the rest. */
INLINE void strip_pass(int nr, int64_t n_pad, const float *strip, const float *a,
                       int64_t nt, float *y, int64_t y_stride)
{
    int64_t t = 0;
    for (; t + TILE_TOK <= nt; t += TILE_TOK)
        tile(nr, TILE_TOK, n_pad, strip, a + t * n_pad, y + t * y_stride, y_stride);
    const float *at = a + t * n_pad;
    float *yt = y + t * y_stride;
    switch (nt - t) {
    case 5: tile(nr, 5, n_pad, strip, at, yt, y_stride); break;
    case 4: tile(nr, 4, n_pad, strip, at, yt, y_stride); break;
    case 3: tile(nr, 3, n_pad, strip, at, yt, y_stride); break;
    case 2: tile(nr, 2, n_pad, strip, at, yt, y_stride); break;
    case 1: tile(nr, 1, n_pad, strip, at, yt, y_stride); break;
    default: break;
    }
}

/* Runs the product; returns 0, or -1 when scratch memory is missing. */
int kern_avx512_fgemm_f16(const kern_mm_args *p);

int kern_avx512_fgemm_f16(const kern_mm_args *p)
{
    const int64_t n = p->n_in, n_pad = (n + 15) / 16 * 16;
    int64_t tok_block = (int64_t)(PACK_BYTES / ((size_t)n_pad * 4));
    tok_block = tok_block < TILE_TOK ? TILE_TOK : tok_block / TILE_TOK * TILE_TOK;
    if (tok_block > p->n_tok)
        tok_block = p->n_tok;
    size_t act_floats = (size_t)(tok_block * n_pad);
    float *a = kern_scratch((act_floats + (size_t)(STRIP_ROWS * n_pad)) * sizeof(float));
    if (a == NULL)
        return -1;
    float *strip = a + act_floats;

    for (int64_t tb = 0; tb < p->n_tok; tb += tok_block) {
        int64_t nt = p->n_tok - tb < tok_block ? p->n_tok - tb : tok_block;
        for (int64_t t = 0; t < nt; t++)
            widen((const uint16_t *)(p->act + (size_t)(tb + t) * p->act_row_bytes), n,
                  n_pad, a + t * n_pad);
        float *yb = p->y + tb * p->y_stride;
        for (int64_t r = p->row_begin; r < p->row_end; r += STRIP_ROWS) {
            int nr = p->row_end - r < STRIP_ROWS ? (int)(p->row_end - r) : STRIP_ROWS;
            for (int i = 0; i < nr; i++)
                widen((const uint16_t *)(p->w + (size_t)(r + i) * p->w_row_bytes), n,
                      n_pad, strip + i * n_pad);
            switch (nr) {
            case 4: strip_pass(4, n_pad, strip, a, nt, yb + r, p->y_stride); break;
            case 3: strip_pass(3, n_pad, strip, a, nt, yb + r, p->y_stride); break;
            case 2: strip_pass(2, n_pad, strip, a, nt, yb + r, p->y_stride); break;
            default: strip_pass(1, n_pad, strip, a, nt, yb + r, p->y_stride); break;
            }
        }
    }
    return 0;
}
