/*
 * AVX-512 kernels for float weights (F32; F16 with F16 activations, the
 * weights widened on the fly and prompts in fgemm_avx512.c; BF16 with
 * vdpbf16ps), the F16 / Q8_0 / Q8_1 / Q8_K activation quantizers and
 * the attention vector helpers. The quantized products live in
 * quant32_avx512.c and kquant_avx512.c.
 *
 * Matrix tiles are 4 rows x 4 tokens (16 zmm accumulators) for prompts and
 * 4 rows x 1 token for decoding. Row tails shorter than a vector use masked
 * loads, which do not fault on the masked-off bytes.
 */
#include <immintrin.h>

#include "kernels/kern_avx512.h"
#include "kernels/kern_impl.h"
#include "quant/fp16.h"

#define INLINE static inline __attribute__((always_inline))


void kern_avx512_fill_q32(kern_ops *ops);
void kern_avx512_fill_kq(kern_ops *ops);

/* Weight kinds. F_F16 widens the F16 activations to F32 once, and F_F16H
 * (one token, long rows) reads them as F16 and widens them in registers. */
enum fkind { F_F32, F_F16, F_F16H, F_BF16 };

/* Rows of at most this many values use 16-row tiles for one token. */
#define SHORT_ROW_VALUES 256

/* Loads 16 weights starting at element i (F32 or F16) as floats. */
INLINE __m512 fw_load(int kind, const uint8_t *row, int64_t i, __mmask16 k)
{
    if (kind == F_F16 || kind == F_F16H) {
        __m256i h = _mm256_maskz_loadu_epi16(k, (const uint16_t *)row + i);
        return _mm512_cvtph_ps(h);
    }
    return _mm512_maskz_loadu_ps(k, (const float *)row + i);
}

/* Loads 16 weights starting at element i as floats, all in bounds. */
INLINE __m512 fw_load_full(int kind, const uint8_t *row, int64_t i)
{
    if (kind == F_F16 || kind == F_F16H)
        return _mm512_cvtph_ps(
            _mm256_loadu_si256((const __m256i *)((const uint16_t *)row + i)));
    return _mm512_loadu_ps((const float *)row + i);
}

/* Loads 16 activations starting at element i as floats. They are F16 for
 * F_F16H, else F32, and the widening is exact. */
INLINE __m512 fa_load(int kind, const uint8_t *row, int64_t i, __mmask16 k)
{
    if (kind == F_F16H)
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, (const uint16_t *)row + i));
    return _mm512_maskz_loadu_ps(k, (const float *)row + i);
}

INLINE __m512 fa_load_full(int kind, const uint8_t *row, int64_t i)
{
    if (kind == F_F16H)
        return _mm512_cvtph_ps(
            _mm256_loadu_si256((const __m256i *)((const uint16_t *)row + i)));
    return _mm512_loadu_ps((const float *)row + i);
}

/* Multiplies an nr x nt tile of F32 or F16 weights by F32 activations (F16
 * ones for F_F16H). */
INLINE void ftile(int kind, int nr, int nt, const kern_mm_args *p, int64_t r0,
                  int64_t t0)
{
    const uint8_t *wr[4], *ar[4];
    __m512 acc[4][4];
    const int64_t n = p->n_in;

    #pragma GCC unroll 8
    for (int r = 0; r < nr; r++) {
        wr[r] = p->w + (size_t)(r0 + r) * p->w_row_bytes;
        #pragma GCC unroll 8
        for (int t = 0; t < nt; t++)
            acc[r][t] = _mm512_setzero_ps();
    }
    #pragma GCC unroll 8
    for (int t = 0; t < nt; t++)
        ar[t] = p->act + (size_t)(t0 + t) * p->act_row_bytes;
    if (nt == 1) {
        /* One token: row by row, so the weights are read in address order,
         * and without software prefetch, which slowed this stream down.
         * On an AMD EPYC VM the two raised the 135M F16 model's tg128
         * from about 50 to about 75 t/s on one thread. */
        #pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            /* One sum per row, in the order of the other tiles, so a
             * row's output has the same bits in every tile and batch.
             * Unmasked loads where the row has 16 more values ran faster
             * than masked ones. */
            __m512 sum = acc[r][0];
            int64_t i = 0;
            for (; i + 16 <= n; i += 16)
                sum = _mm512_fmadd_ps(fw_load_full(kind, wr[r], i),
                                      fa_load_full(kind, ar[0], i), sum);
            if (i < n) {
                __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
                sum = _mm512_fmadd_ps(fw_load(kind, wr[r], i, k),
                                      fa_load(kind, ar[0], i, k), sum);
            }
            acc[r][0] = sum;
        }
    } else
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 w[4];
        #pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            w[r] = fw_load(kind, wr[r], i, k);
        }
        #pragma GCC unroll 8
        for (int t = 0; t < nt; t++) {
            __m512 a = fa_load(kind, ar[t], i, k);
            #pragma GCC unroll 8
            for (int r = 0; r < nr; r++)
                acc[r][t] = _mm512_fmadd_ps(w[r], a, acc[r][t]);
        }
    }
    if (nr == 4 && nt == 4) {
        kern_reduce_4x4(acc, p->y + t0 * p->y_stride + r0, p->y_stride);
        return;
    }
    #pragma GCC unroll 8
    for (int t = 0; t < nt; t++)
        #pragma GCC unroll 8
        for (int r = 0; r < nr; r++)
            p->y[(t0 + t) * p->y_stride + r0 + r] = kern_hsum_ps(acc[r][t]);
}

/* BF16 weights with BF16 activations: vdpbf16ps takes 32 pairs. */
INLINE void bftile(int nr, int nt, const kern_mm_args *p, int64_t r0, int64_t t0)
{
    const uint16_t *wr[4], *ar[4];
    __m512 acc[4][4];
    const int64_t n = p->n_in;

    #pragma GCC unroll 8
    for (int r = 0; r < nr; r++) {
        wr[r] = (const uint16_t *)(p->w + (size_t)(r0 + r) * p->w_row_bytes);
        #pragma GCC unroll 8
        for (int t = 0; t < nt; t++)
            acc[r][t] = _mm512_setzero_ps();
    }
    #pragma GCC unroll 8
    for (int t = 0; t < nt; t++)
        ar[t] = (const uint16_t *)(p->act + (size_t)(t0 + t) * p->act_row_bytes);
    if (nt == 1) {
        /* One token: row by row, in address order, without software
         * prefetch, as in ftile. */
        #pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            __m512 s = acc[r][0];
            for (int64_t i = 0; i < n; i += 32) {
                __mmask32 k = n - i >= 32 ? 0xFFFFFFFFu
                                          : (__mmask32)((1u << (n - i)) - 1);
                s = _mm512_dpbf16_ps(
                    s, (__m512bh)_mm512_maskz_loadu_epi16(k, wr[r] + i),
                    (__m512bh)_mm512_maskz_loadu_epi16(k, ar[0] + i));
            }
            acc[r][0] = s;
        }
    } else
    for (int64_t i = 0; i < n; i += 32) {
        __mmask32 k = n - i >= 32 ? 0xFFFFFFFFu : (__mmask32)((1u << (n - i)) - 1);
        __m512bh w[4];
        #pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            w[r] = (__m512bh)_mm512_maskz_loadu_epi16(k, wr[r] + i);
        }
        #pragma GCC unroll 8
        for (int t = 0; t < nt; t++) {
            __m512bh a = (__m512bh)_mm512_maskz_loadu_epi16(k, ar[t] + i);
            #pragma GCC unroll 8
            for (int r = 0; r < nr; r++)
                acc[r][t] = _mm512_dpbf16_ps(acc[r][t], w[r], a);
        }
    }
    if (nr == 4 && nt == 4) {
        kern_reduce_4x4(acc, p->y + t0 * p->y_stride + r0, p->y_stride);
        return;
    }
    #pragma GCC unroll 8
    for (int t = 0; t < nt; t++)
        #pragma GCC unroll 8
        for (int r = 0; r < nr; r++)
            p->y[(t0 + t) * p->y_stride + r0 + r] = kern_hsum_ps(acc[r][t]);
}


/* Multiplies 16 rows of F32 / F16 weights by one token. Short rows spend
 * their time in the final sums, so the 16 share the 4 x 4 shuffle tree
 * (rows 4j .. 4j + 3 as its "token" j). Each row is summed in ftile's
 * order, so the bits do not depend on the tile. */
INLINE void ftile16(int kind, const kern_mm_args *p, int64_t r0, int64_t t)
{
    const uint8_t *a = p->act + (size_t)t * p->act_row_bytes;
    const int64_t n = p->n_in;
    __m512 acc[16];

    #pragma GCC unroll 16
    for (int r = 0; r < 16; r++)
        acc[r] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 av = fa_load(kind, a, i, k);
        #pragma GCC unroll 16
        for (int r = 0; r < 16; r++) {
            const uint8_t *w = p->w + (size_t)(r0 + r) * p->w_row_bytes;
            acc[r] = _mm512_fmadd_ps(fw_load(kind, w, i, k), av, acc[r]);
        }
    }
    __m512 tile[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            tile[i][j] = acc[j * 4 + i];
    _mm512_storeu_ps(p->y + t * p->y_stride + r0, kern_reduce_4x4_sums(tile));
}

/* Dispatches the tiles of one kind over the row range and token blocks:
 * rows outer so a 4-row strip stays in L1 while the tokens pass over it. */
INLINE void ftile_any(int kind, int nr, int nt, const kern_mm_args *p, int64_t r,
                      int64_t t)
{
    if (kind == F_BF16)
        bftile(nr, nt, p, r, t);
    else
        ftile(kind, nr, nt, p, r, t);
}

INLINE void fmatmul(int kind, const kern_mm_args *p)
{
    if (kind != F_BF16 && p->n_tok == 1 && p->n_in <= SHORT_ROW_VALUES) {
        int64_t r = p->row_begin;
        for (; r + 16 <= p->row_end; r += 16)
            ftile16(kind, p, r, 0);
        for (; r + 4 <= p->row_end; r += 4)
            ftile(kind, 4, 1, p, r, 0);
        for (; r < p->row_end; r++)
            ftile(kind, 1, 1, p, r, 0);
        return;
    }
    const int64_t rows_full = p->row_begin + (p->row_end - p->row_begin) / 4 * 4;
    const int64_t tok_block = kern_token_block(p->act_row_bytes, 4);

    for (int64_t tb = 0; tb < p->n_tok; tb += tok_block) {
        int64_t te = tb + tok_block < p->n_tok ? tb + tok_block : p->n_tok;
        int64_t te_full = tb + (te - tb) / 4 * 4;
        for (int64_t r = p->row_begin; r < rows_full; r += 4) {
            int64_t t = tb;
            for (; t < te_full; t += 4)
                ftile_any(kind, 4, 4, p, r, t);
            for (; t < te; t++)
                ftile_any(kind, 4, 1, p, r, t);
        }
        for (int64_t r = rows_full; r < p->row_end; r++) {
            int64_t t = tb;
            for (; t < te_full; t += 4)
                ftile_any(kind, 1, 4, p, r, t);
            for (; t < te; t++)
                ftile_any(kind, 1, 1, p, r, t);
        }
    }
}

static void mm_f32(const kern_mm_args *p) { fmatmul(F_F32, p); }
int kern_avx512_fgemm_f16(const kern_mm_args *p);

/* Token count from which F16 products use fgemm_avx512.c, which widens
 * weight strips once per token block; below it these tiles widen the
 * weights on the fly and read activations widened to F32 once. */
#define F16_GEMM_MIN_TOK 16

static void mm_f16(const kern_mm_args *p)
{
    const int64_t n = p->n_in;
    if (p->n_tok >= F16_GEMM_MIN_TOK) {
        if (kern_avx512_fgemm_f16(p) != 0)
            kern_scalar_matmul(ROJ_TYPE_F16, p);
        return;
    }
    if (p->n_tok == 1 && n > SHORT_ROW_VALUES) {
        /* One token, long rows: the F16 activations are read as they are.
         * Reading the F32 copy instead ran about 10% slower on the 0.5B
         * F16 model's decoding (an AMD EPYC VM, one thread). */
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
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 k = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
            _mm512_mask_storeu_ps(a32 + t * n + i, k,
                                  _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, h + i)));
        }
    }
    kern_mm_args q = *p;
    q.act = (const uint8_t *)a32;
    q.act_row_bytes = (size_t)n * sizeof *a32;
    fmatmul(F_F16, &q);
}
static void mm_bf16(const kern_mm_args *p) { fmatmul(F_BF16, p); }

/* ---- attention helpers ---- */

INLINE __mmask16 tail_mask(int64_t left)
{
    return left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1);
}

static float v_dot_f32(const float *a, const float *b, int64_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16),
                             _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a + i),
                             _mm512_maskz_loadu_ps(k, b + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static void v_axpy_f32(float *y, float a, const float *x, int64_t n)
{
    __m512 va = _mm512_set1_ps(a);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        __m512 v = _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(k, x + i),
                                   _mm512_maskz_loadu_ps(k, y + i));
        _mm512_mask_storeu_ps(y + i, k, v);
    }
}

INLINE __m512 h16_load(const uint16_t *p, __mmask16 k)
{
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, p));
}

static float v_dot_f16(const uint16_t *a, const uint16_t *b, int64_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(h16_load(a + i, 0xFFFF), h16_load(b + i, 0xFFFF), s0);
        s1 = _mm512_fmadd_ps(h16_load(a + i + 16, 0xFFFF),
                             h16_load(b + i + 16, 0xFFFF), s1);
    }
    for (; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        s0 = _mm512_fmadd_ps(h16_load(a + i, k), h16_load(b + i, k), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static void v_axpy_f16(float *y, float a, const uint16_t *x, int64_t n)
{
    __m512 va = _mm512_set1_ps(a);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        __m512 v = _mm512_fmadd_ps(va, h16_load(x + i, k),
                                   _mm512_maskz_loadu_ps(k, y + i));
        _mm512_mask_storeu_ps(y + i, k, v);
    }
}

static void v_f32_to_f16(const float *x, uint16_t *y, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(k, x + i),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16(y + i, k, h);
    }
}

static void v_round_f16(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(k, x + i),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm512_mask_storeu_ps(x + i, k, _mm512_cvtph_ps(h));
    }
}

/* exp(x): x = k ln 2 + r with |r| <= ln 2 / 2 (ln 2 in two parts, so r
 * keeps its bits), exp(r) by its Taylor series to r^7 / 7! (truncation
 * below 5e-9 relative), then scaled by 2^k with vscalefps, which gives
 * infinity and zero past the float range. The clamp keeps r small for
 * any finite x. */
INLINE __m512 v_exp(__m512 x)
{
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)),
                      _mm512_set1_ps(104.0f));
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693145752f), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(1.42860677e-6f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, k);
}

static void v_swiglu(float *gate, const float *up, int64_t n)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        __m512 g = _mm512_maskz_loadu_ps(k, gate + i);
        __m512 e = v_exp(_mm512_sub_ps(_mm512_setzero_ps(), g));
        __m512 s = _mm512_div_ps(g, _mm512_add_ps(one, e));
        _mm512_mask_storeu_ps(gate + i, k,
                              _mm512_mul_ps(s, _mm512_maskz_loadu_ps(k, up + i)));
    }
}

/* ---- activation quantizers ----
 * Same arithmetic as the scalar ones in kern_scalar.c (amax / 127, 1 / d,
 * round to nearest even), so the bytes are identical. */

/* Scale and inverse scale of a block from its largest magnitude. */
INLINE float q8_scale(__m512 amax, float *id)
{
    float d = _mm512_reduce_max_ps(amax) / 127.0f;
    *id = d != 0.0f ? 1.0f / d : 0.0f;
    return d;
}

/* Rounds 16 floats times id to int32 and stores them as 16 bytes. */
INLINE __m512i q8_store16(int8_t *out, __m512 v, __m512 id)
{
    __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(v, id));
    _mm_storeu_si128((__m128i *)out, _mm512_cvtepi32_epi8(q));
    return q;
}

static void quantize_f16(const float *x, void *act, int64_t n)
{
    v_f32_to_f16(x, act, n);
}

static void quantize_q8_0(const float *x, void *act, int64_t n)
{
    block_q8_0 *b = act;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        float id;
        float d = q8_scale(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)), &id);
        b[i].d = fp32_to_fp16(d);
        q8_store16(b[i].qs, v0, _mm512_set1_ps(id));
        q8_store16(b[i].qs + 16, v1, _mm512_set1_ps(id));
    }
}

static void quantize_q8_1(const float *x, void *act, int64_t n)
{
    block_q8_1 *b = act;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        float id;
        float d = q8_scale(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)), &id);
        __m512i q0 = q8_store16(b[i].qs, v0, _mm512_set1_ps(id));
        __m512i q1 = q8_store16(b[i].qs + 16, v1, _mm512_set1_ps(id));
        int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
        b[i].d = fp32_to_fp16(d);
        b[i].s = fp32_to_fp16((float)sum * d);
    }
}

static void quantize_q8_K(const float *x, void *act, int64_t n)
{
    block_q8_K *b = act;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        __m512 amax = _mm512_setzero_ps();
        for (int j = 0; j < QK_K; j += 16)
            amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_loadu_ps(x + j)));
        float id;
        b[i].d = q8_scale(amax, &id);
        for (int g = 0; g < QK_K / 16; g++) {
            __m512i q = q8_store16(b[i].qs + 16 * g, _mm512_loadu_ps(x + 16 * g),
                                   _mm512_set1_ps(id));
            b[i].bsums[g] = (int16_t)_mm512_reduce_add_epi32(q);
        }
    }
}

/* Four keys at a time share each q vector load; one reduction per key. */
static void v_attn_scores_f16(const float *q, const uint16_t *k, int64_t k_stride,
                              int64_t n_keys, int64_t head_dim, float scale,
                              float *scores)
{
    int64_t j = 0;
    for (; j + 4 <= n_keys; j += 4) {
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                         _mm512_setzero_ps()};
        for (int64_t i = 0; i < head_dim; i += 16) {
            __mmask16 m = tail_mask(head_dim - i);
            __m512 qv = _mm512_maskz_loadu_ps(m, q + i);
            #pragma GCC unroll 4
            for (int r = 0; r < 4; r++)
                acc[r] = _mm512_fmadd_ps(qv, h16_load(k + (j + r) * k_stride + i, m),
                                         acc[r]);
        }
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++)
            scores[j + r] = scale * _mm512_reduce_add_ps(acc[r]);
    }
    for (; j < n_keys; j++) {
        __m512 acc = _mm512_setzero_ps();
        for (int64_t i = 0; i < head_dim; i += 16) {
            __mmask16 m = tail_mask(head_dim - i);
            acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i),
                                  h16_load(k + j * k_stride + i, m), acc);
        }
        scores[j] = scale * _mm512_reduce_add_ps(acc);
    }
}

/* Keeps 64 output floats in registers while all n value rows pass. */
static void v_attn_values_f16(float *out, const float *w, const uint16_t *v,
                              int64_t v_stride, int64_t n, int64_t head_dim)
{
    for (int64_t c = 0; c < head_dim; c += 64) {
        __mmask16 m[4];
        __m512 acc[4];
        #pragma GCC unroll 4
        for (int s = 0; s < 4; s++) {
            int64_t left = head_dim - c - 16 * s;
            m[s] = left > 0 ? tail_mask(left) : 0;
            acc[s] = _mm512_maskz_loadu_ps(m[s], out + c + 16 * s);
        }
        for (int64_t j = 0; j < n; j++) {
            __m512 wj = _mm512_set1_ps(w[j]);
            const uint16_t *row = v + j * v_stride + c;
            #pragma GCC unroll 4
            for (int s = 0; s < 4; s++)
                acc[s] = _mm512_fmadd_ps(wj, h16_load(row + 16 * s, m[s]), acc[s]);
        }
        #pragma GCC unroll 4
        for (int s = 0; s < 4; s++)
            _mm512_mask_storeu_ps(out + c + 16 * s, m[s], acc[s]);
    }
}

void kern_avx512_fill(kern_ops *ops, const kern_cpu *cpu)
{
    ops->matmul[ROJ_TYPE_F32] = mm_f32;
    ops->matmul[ROJ_TYPE_F16] = mm_f16;
    if (cpu->avx512_bf16)
        ops->matmul[ROJ_TYPE_BF16] = mm_bf16;
    kern_avx512_fill_q32(ops);
    kern_avx512_fill_kq(ops);
    ops->quantize[ROJ_TYPE_F16] = quantize_f16;
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
