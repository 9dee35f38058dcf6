/*
 * AVX-512 VNNI matrix products for Q4_K, Q5_K and Q6_K against Q8_K
 * activations.
 *
 * A super-block of 256 weights is decoded once into four zmm registers of
 * unsigned bytes (Q4_K 0..15, Q5_K 0..31, Q6_K 0..63) in element order,
 * plus per-chunk vectors of the 16-bit sub-block scales. For each token,
 * vpmaddubsw multiplies bytes pairwise into 16-bit sums (at most
 * 2 * 63 * 127, so no saturation) and vpdpwssd multiplies those by the
 * scales and accumulates in 32 bits, exactly as the scalar reference does.
 * Mins (Q4_K / Q5_K) are folded in as dmin * m times the activation group
 * sums (bsums); the Q6_K offset of 32 is removed by starting the integer
 * accumulator at -32 * sum(scale * bsum).
 *
 * Tiles are one row by up to 8 tokens, so the decode work is shared by 8
 * tokens in prompts; decoding uses the same tile with one token.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/kern_avx512.h"
#include "kernels/kern_impl.h"
#include "quant/fp16.h"

#define INLINE static inline __attribute__((always_inline))

/* See PREFETCH_BYTES in quant32_avx512.c. */
#define PREFETCH_BYTES 4096

enum kq_kind { KQ_Q4_K, KQ_Q5_K, KQ_Q6_K };

typedef struct {
    __m512i u[4];    /* 256 unsigned values in element order */
    __m512i sc[4];   /* 16-bit scale of each byte pair, per chunk */
    __m512 mins;     /* Q4_K / Q5_K: dmin * m per group of 16 */
    __m256i sc32;    /* Q6_K: -32 * scale per group of 16 */
    float d;
} kq_block;

INLINE int kq_block_bytes(int kind)
{
    switch (kind) {
    case KQ_Q4_K: return sizeof(block_q4_K);
    case KQ_Q5_K: return sizeof(block_q5_K);
    default: return sizeof(block_q6_K);
    }
}

/* Unpacks the 6-bit scales and mins of a Q4_K / Q5_K block into 8 bytes
 * each (see kern_unpack_k4_scales for the layout). */
INLINE void k4_scales64(const uint8_t q[12], uint64_t *sc, uint64_t *mn)
{
    uint32_t a, b, c;
    memcpy(&a, q, 4);
    memcpy(&b, q + 4, 4);
    memcpy(&c, q + 8, 4);
    uint32_t sc_hi = (c & 0x0f0f0f0fu) | ((a >> 2) & 0x30303030u);
    uint32_t mn_hi = ((c >> 4) & 0x0f0f0f0fu) | ((b >> 2) & 0x30303030u);
    *sc = (a & 0x3f3f3f3fu) | ((uint64_t)sc_hi << 32);
    *mn = (b & 0x3f3f3f3fu) | ((uint64_t)mn_hi << 32);
}

/* Splits 32 bytes of packed nibbles into 64 values: low nibbles first. */
INLINE __m512i nibbles64(const uint8_t *q)
{
    __m256i v = _mm256_loadu_si256((const __m256i *)q);
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(v),
                                   _mm256_srli_epi16(v, 4), 1);
    return _mm512_and_si512(z, _mm512_set1_epi8(0x0F));
}

/* Q4_K / Q5_K scale vectors: chunk i covers sub-blocks 2i and 2i + 1,
 * 16 byte pairs each. */
INLINE void k4_scale_vectors(kq_block *k, const uint8_t *scales, float dmin)
{
    uint64_t sc, mn;
    k4_scales64(scales, &sc, &mn);
    __m512i sc16 = _mm512_cvtepu8_epi16(_mm256_castsi128_si256(
        _mm_cvtsi64_si128((long long)sc)));
    #pragma GCC unroll 8
    for (int i = 0; i < 4; i++) {
        __m512i idx = _mm512_mask_blend_epi16(0xFFFF0000u, _mm512_set1_epi16(2 * i),
                                              _mm512_set1_epi16(2 * i + 1));
        k->sc[i] = _mm512_permutexvar_epi16(idx, sc16);
    }
    __m512i mn32 = _mm512_cvtepu8_epi32(_mm_cvtsi64_si128((long long)mn));
    __m512i pair = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    k->mins = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_permutexvar_epi32(pair, mn32)),
                            _mm512_set1_ps(dmin));
}

INLINE void kq_decode_q4(kq_block *k, const block_q4_K *b)
{
    #pragma GCC unroll 8
    for (int i = 0; i < 4; i++)
        k->u[i] = nibbles64(b->qs + 32 * i);
    k4_scale_vectors(k, b->scales, fp16_to_fp32(b->dmin));
    k->d = fp16_to_fp32(b->d);
}

INLINE void kq_decode_q5(kq_block *k, const block_q5_K *b)
{
    __m512i h = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)b->qh));
    #pragma GCC unroll 8
    for (int i = 0; i < 4; i++) {
        __m512i bits = _mm512_mask_blend_epi8(0xFFFFFFFF00000000ull,
                                              _mm512_set1_epi8((char)(1 << (2 * i))),
                                              _mm512_set1_epi8((char)(2 << (2 * i))));
        __mmask64 set = _mm512_test_epi8_mask(h, bits);
        __m512i u = nibbles64(b->qs + 32 * i);
        k->u[i] = _mm512_mask_add_epi8(u, set, u, _mm512_set1_epi8(16));
    }
    k4_scale_vectors(k, b->scales, fp16_to_fp32(b->dmin));
    k->d = fp16_to_fp32(b->d);
}

/* Q6_K: half n (128 values) takes 64 ql bytes and 32 qh bytes; chunk 2n
 * is the low nibbles with qh bits 0-1 / 2-3, chunk 2n + 1 the high nibbles
 * with qh bits 4-5 / 6-7. The 16-bit shifts move bits across the byte
 * boundary only below bit 4, which the 0x30 mask removes. */
INLINE void kq_decode_q6(kq_block *k, const block_q6_K *b)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    const __m512i shl = _mm512_mask_blend_epi16(0xFFFF0000u, _mm512_set1_epi16(4),
                                                _mm512_set1_epi16(2));
    const __m512i shr = _mm512_mask_blend_epi16(0xFFFF0000u, _mm512_setzero_si512(),
                                                _mm512_set1_epi16(2));
    #pragma GCC unroll 8
    for (int n = 0; n < 2; n++) {
        __m512i l = _mm512_loadu_si512(b->ql + 64 * n);
        __m512i h = _mm512_broadcast_i64x4(
            _mm256_loadu_si256((const __m256i *)(b->qh + 32 * n)));
        __m512i h0 = _mm512_and_si512(_mm512_sllv_epi16(h, shl), m30);
        __m512i h1 = _mm512_and_si512(_mm512_srlv_epi16(h, shr), m30);
        k->u[2 * n] = _mm512_or_si512(_mm512_and_si512(l, m4), h0);
        k->u[2 * n + 1] = _mm512_or_si512(
            _mm512_and_si512(_mm512_srli_epi16(l, 4), m4), h1);
    }
    __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b->scales));
    __m512i sc512 = _mm512_castsi256_si512(sc16);
    #pragma GCC unroll 8
    for (int c = 0; c < 4; c++) {
        __m512i idx = _mm512_set_epi16(
            4 * c + 3, 4 * c + 3, 4 * c + 3, 4 * c + 3, 4 * c + 3, 4 * c + 3, 4 * c + 3,
            4 * c + 3, 4 * c + 2, 4 * c + 2, 4 * c + 2, 4 * c + 2, 4 * c + 2, 4 * c + 2,
            4 * c + 2, 4 * c + 2, 4 * c + 1, 4 * c + 1, 4 * c + 1, 4 * c + 1, 4 * c + 1,
            4 * c + 1, 4 * c + 1, 4 * c + 1, 4 * c, 4 * c, 4 * c, 4 * c, 4 * c, 4 * c,
            4 * c, 4 * c);
        k->sc[c] = _mm512_permutexvar_epi16(idx, sc512);
    }
    k->sc32 = _mm256_mullo_epi16(sc16, _mm256_set1_epi16(-32));
    k->mins = _mm512_setzero_ps();
    k->d = fp16_to_fp32(b->d);
}

INLINE void kq_decode(int kind, kq_block *k, const uint8_t *blk)
{
    if (kind == KQ_Q4_K)
        kq_decode_q4(k, (const block_q4_K *)blk);
    else if (kind == KQ_Q5_K)
        kq_decode_q5(k, (const block_q5_K *)blk);
    else
        kq_decode_q6(k, (const block_q6_K *)blk);
}

/* Adds the product of one decoded block and one Q8_K block to acc; bsf is
 * the block's group sums times its scale (kq_prepare), used by the mins. */
INLINE __m512 kq_step(int kind, __m512 acc, const kq_block *k, const block_q8_K *a,
                      const __m512 *bsf)
{
    __m256i bsums = _mm256_loadu_si256((const __m256i *)a->bsums);
    __m512i isum = _mm512_setzero_si512();
    if (kind == KQ_Q6_K)
        isum = _mm512_zextsi256_si512(
            _mm256_dpwssd_epi32(_mm256_setzero_si256(), k->sc32, bsums));
    #pragma GCC unroll 8
    for (int i = 0; i < 4; i++) {
        __m512i q = _mm512_loadu_si512(a->qs + 64 * i);
        isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(k->u[i], q), k->sc[i]);
    }
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(k->d * a->d), acc);
    if (kind != KQ_Q6_K)
        acc = _mm512_fnmadd_ps(k->mins, *bsf, acc);
    return acc;
}

/* Scaled group sums d * bsums of nt activation rows from t0, token-major,
 * so the tiles of every row share them. */
static void kq_prepare(const kern_mm_args *p, int64_t t0, int64_t nt, __m512 *bsf)
{
    const int64_t nb = p->n_in / QK_K;
    for (int64_t t = 0; t < nt; t++) {
        const block_q8_K *a = (const block_q8_K *)(p->act + (size_t)(t0 + t) *
                                                             p->act_row_bytes);
        for (int64_t b = 0; b < nb; b++) {
            __m256i bsums = _mm256_loadu_si256((const __m256i *)a[b].bsums);
            bsf[t * nb + b] = _mm512_mul_ps(
                _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(bsums)), _mm512_set1_ps(a[b].d));
        }
    }
}

/* One row r times tokens t0 .. t0 + nt - 1; bsf contains their kq_prepare
 * sums. */
INLINE void kq_tile(int kind, int nt, const kern_mm_args *p, int64_t r, int64_t t0,
                    const __m512 *bsf)
{
    const int bs = kq_block_bytes(kind);
    const int64_t nb = p->n_in / QK_K;
    const uint8_t *w = p->w + (size_t)r * p->w_row_bytes;
    const block_q8_K *ar[8];
    __m512 acc[8];

    #pragma GCC unroll 8
    for (int t = 0; t < nt; t++) {
        ar[t] = (const block_q8_K *)(p->act + (size_t)(t0 + t) * p->act_row_bytes);
        acc[t] = _mm512_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b++) {
        kq_block k;
        if (nt == 1)
            for (int line = 0; line < bs; line += 64)
                _mm_prefetch((const char *)w + b * bs + line + PREFETCH_BYTES,
                             _MM_HINT_T0);
        kq_decode(kind, &k, w + b * bs);
        #pragma GCC unroll 8
        for (int t = 0; t < nt; t++)
            acc[t] = kq_step(kind, acc[t], &k, ar[t] + b,
                             bsf ? bsf + t * nb + b : NULL);
    }
    #pragma GCC unroll 8
    for (int t = 0; t < nt; t++)
        p->y[(t0 + t) * p->y_stride + r] = kern_hsum_ps(acc[t]);
}

/* Returns 0, or -1 when no scratch memory could be allocated. */
INLINE int kq_matmul(int kind, const kern_mm_args *p)
{
    const int64_t nb = p->n_in / QK_K;
    int64_t tok_block = kern_token_block(p->act_row_bytes, 8);
    if (tok_block > p->n_tok)
        tok_block = p->n_tok;
    __m512 *bsf = NULL;
    if (kind != KQ_Q6_K) {
        bsf = kern_scratch((size_t)(tok_block * nb) * sizeof *bsf);
        if (bsf == NULL)
            return -1;
    }

    for (int64_t tb = 0; tb < p->n_tok; tb += tok_block) {
        int64_t te = tb + tok_block < p->n_tok ? tb + tok_block : p->n_tok;
        if (bsf != NULL)
            kq_prepare(p, tb, te - tb, bsf);
        for (int64_t r = p->row_begin; r < p->row_end; r++) {
            int64_t t = tb;
            for (; t + 8 <= te; t += 8)
                kq_tile(kind, 8, p, r, t, bsf ? bsf + (t - tb) * nb : NULL);
            for (; t + 4 <= te; t += 4)
                kq_tile(kind, 4, p, r, t, bsf ? bsf + (t - tb) * nb : NULL);
            for (; t < te; t++)
                kq_tile(kind, 1, p, r, t, bsf ? bsf + (t - tb) * nb : NULL);
        }
    }
    return 0;
}

/* Each falls back to the scalar reference if scratch allocation fails. */
static void mm_q4_K(const kern_mm_args *p)
{
    if (kq_matmul(KQ_Q4_K, p) != 0)
        kern_scalar_matmul(ROJ_TYPE_Q4_K, p);
}

static void mm_q5_K(const kern_mm_args *p)
{
    if (kq_matmul(KQ_Q5_K, p) != 0)
        kern_scalar_matmul(ROJ_TYPE_Q5_K, p);
}

static void mm_q6_K(const kern_mm_args *p)
{
    if (kq_matmul(KQ_Q6_K, p) != 0)
        kern_scalar_matmul(ROJ_TYPE_Q6_K, p);
}

/* Sets the AVX-512 K-quant products. */
void kern_avx512_fill_kq(kern_ops *ops);

void kern_avx512_fill_kq(kern_ops *ops)
{
    ops->matmul[ROJ_TYPE_Q4_K] = mm_q4_K;
    ops->matmul[ROJ_TYPE_Q5_K] = mm_q5_K;
    ops->matmul[ROJ_TYPE_Q6_K] = mm_q6_K;
}
