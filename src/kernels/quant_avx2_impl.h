/*
 * AVX2 matrix products for the quantized types, included by
 * quant_avx2.c (QUANT_AVX2_VNNI 0) and quant_avxvnni.c (QUANT_AVX2_VNNI
 * 1, compiled with -mavxvnni). One ymm register holds one 32-element
 * block. The unsigned-by-signed byte products use AVX-VNNI vpdpbusd in
 * the second, else vpmaddubsw + vpmaddwd. The two are separate files
 * because a compiler allowed to use AVX-VNNI fuses vpmaddwd + vpaddd
 * into vpdpwssd on its own (clang 14 does), and CPUs with AVX-512 VNNI
 * but no AVX-VNNI fault on that.
 *
 * Q4_0 / Q5_0 / Q4_1 / Q5_1 decode to unsigned values with an offset that
 * the activation sums remove, as in quant32_avx512.c. Q8_0 uses the sign
 * trick |w| * sign(a, w) instead, because w + 128 would overflow the 16-bit
 * pair sums of vpmaddubsw. K-quants go chunk by chunk (32 values) with
 * 16-bit scales through vpmaddwd / vpdpwssd.
 *
 * AVX2 has 16 ymm registers, so prompt tiles are 2 rows x 4 tokens and
 * decode tiles 4 rows x 1 token.
 */
#ifndef ROJ_KERNELS_QUANT_AVX2_IMPL_H
#define ROJ_KERNELS_QUANT_AVX2_IMPL_H

#include <immintrin.h>
#include <string.h>

#include "kernels/kern_impl.h"
#include "quant/fp16.h"

#define INLINE static inline __attribute__((always_inline))

/* acc + sum over groups of 4 of u[i] * s[i] (u unsigned, s signed). The
 * non-VNNI path saturates pair sums at 16 bits: callers keep u * |s| * 2
 * below 32768. */
INLINE __m256i dot_u8s8(int vnni, __m256i acc, __m256i u, __m256i s)
{
#if QUANT_AVX2_VNNI
    if (vnni)
        return _mm256_dpbusd_avx_epi32(acc, u, s);
#endif
    (void)vnni;
    __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
    return _mm256_add_epi32(acc, p);
}

/* acc + sum over pairs of a[i] * b[i] in 16 bits. */
INLINE __m256i dot_s16(int vnni, __m256i acc, __m256i a, __m256i b)
{
#if QUANT_AVX2_VNNI
    if (vnni)
        return _mm256_dpwssd_avx_epi32(acc, a, b);
#endif
    (void)vnni;
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
}

INLINE float half(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

INLINE float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
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

INLINE __m256i nibbles32(const uint8_t *q)
{
    __m128i v = _mm_loadu_si128((const __m128i *)q);
    __m256i z = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
    return _mm256_and_si256(z, _mm256_set1_epi8(0x0F));
}

/* Adds 16 to each byte whose bit is set in the 32-bit word at h. */
INLINE __m256i fifth_bits(__m256i u, const uint8_t *h)
{
    uint32_t bits;
    memcpy(&bits, h, 4);
    const __m256i spread = _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL,
                                             0x0101010101010101LL, 0);
    const __m256i select = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), spread);
    __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(v, select), select);
    return _mm256_or_si256(u, _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
}

typedef struct {
    __m256i u;  /* unsigned values, or |w| for Q8_0 */
    __m256i w;  /* Q8_0: the signed weights, for the sign trick */
    __m256 d, m;
} q32_w;

INLINE q32_w q32_decode(int kind, const uint8_t *b)
{
    q32_w w;
    w.d = _mm256_set1_ps(half(b));
    w.m = _mm256_setzero_ps();
    w.w = _mm256_setzero_si256();
    switch (kind) {
    case Q32_Q4_0:
        w.u = nibbles32(b + 2);
        break;
    case Q32_Q4_1:
        w.u = nibbles32(b + 4);
        w.m = _mm256_set1_ps(half(b + 2));
        break;
    case Q32_Q5_0:
        w.u = fifth_bits(nibbles32(b + 6), b + 2);
        break;
    case Q32_Q5_1:
        w.u = fifth_bits(nibbles32(b + 8), b + 4);
        w.m = _mm256_set1_ps(half(b + 2));
        break;
    default:
        w.w = _mm256_loadu_si256((const __m256i *)(b + 2));
        w.u = _mm256_abs_epi8(w.w);
        break;
    }
    return w;
}

typedef struct {
    __m256i a, corr;
    __m256 d, s;
} q32_a;

INLINE q32_a q32_act(int vnni, int kind, const uint8_t *b)
{
    q32_a a;
    int q81 = q32_min(kind);
    a.a = _mm256_loadu_si256((const __m256i *)(b + (q81 ? 4 : 2)));
    a.d = _mm256_set1_ps(half(b));
    a.s = q81 ? _mm256_set1_ps(half(b + 2) * 0.125f) : _mm256_setzero_ps();
    a.corr = _mm256_setzero_si256();
    if (kind == Q32_Q4_0 || kind == Q32_Q5_0) {
        __m256i off = _mm256_set1_epi8(kind == Q32_Q4_0 ? 8 : 16);
        a.corr = _mm256_sub_epi32(_mm256_setzero_si256(),
                                  dot_u8s8(vnni, _mm256_setzero_si256(), off, a.a));
    }
    return a;
}

INLINE __m256 q32_step(int vnni, int kind, __m256 acc, const q32_w *w, const q32_a *a)
{
    __m256i s = kind == Q32_Q8_0 ? _mm256_sign_epi8(a->a, w->w) : a->a;
    __m256i sum = dot_u8s8(vnni, a->corr, w->u, s);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_mul_ps(w->d, a->d), acc);
    if (q32_min(kind))
        acc = _mm256_fmadd_ps(w->m, a->s, acc);
    return acc;
}

INLINE void q32_tile(int vnni, int kind, int nr, int nt, const kern_mm_args *p,
                     int64_t r0, int64_t t0)
{
    const int bs = q32_bytes(kind);
    const int abs_ = q32_min(kind) ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const uint8_t *wr[4], *ar[4];
    __m256 acc[4][4];

    #pragma GCC unroll 8
    for (int r = 0; r < nr; r++) {
        wr[r] = p->w + (size_t)(r0 + r) * p->w_row_bytes;
        #pragma GCC unroll 8
        for (int t = 0; t < nt; t++)
            acc[r][t] = _mm256_setzero_ps();
    }
    #pragma GCC unroll 8
    for (int t = 0; t < nt; t++)
        ar[t] = p->act + (size_t)(t0 + t) * p->act_row_bytes;
    if (nt == 1 && p->n_in > 128) {
        /* One token, long rows: each row to its end before the next, so
         * the weights are read in address order (see quant32_avx512.c).
         * Short rows keep the rows in turn, which shares each activation
         * block. */
        #pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            __m256 s = acc[r][0];
            for (int64_t b = 0; b < p->n_in / 32; b++) {
                q32_w w = q32_decode(kind, wr[r] + b * bs);
                q32_a a = q32_act(vnni, kind, ar[0] + b * abs_);
                s = q32_step(vnni, kind, s, &w, &a);
            }
            acc[r][0] = s;
        }
    } else
    for (int64_t b = 0; b < p->n_in / 32; b++) {
        q32_w w[4];
        #pragma GCC unroll 8
        for (int r = 0; r < nr; r++)
            w[r] = q32_decode(kind, wr[r] + b * bs);
        #pragma GCC unroll 8
        for (int t = 0; t < nt; t++) {
            q32_a a = q32_act(vnni, kind, ar[t] + b * abs_);
            #pragma GCC unroll 8
            for (int r = 0; r < nr; r++)
                acc[r][t] = q32_step(vnni, kind, acc[r][t], &w[r], &a);
        }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < nt; t++)
        #pragma GCC unroll 8
        for (int r = 0; r < nr; r++)
            p->y[(t0 + t) * p->y_stride + r0 + r] = hsum8(acc[r][t]);
}

INLINE void q32_matmul(int vnni, int kind, const kern_mm_args *p)
{
    const int64_t tok_block = kern_token_block(p->act_row_bytes, 4);

    if (p->n_tok == 1) {
        int64_t r = p->row_begin;
        for (; r + 4 <= p->row_end; r += 4)
            q32_tile(vnni, kind, 4, 1, p, r, 0);
        for (; r < p->row_end; r++)
            q32_tile(vnni, kind, 1, 1, p, r, 0);
        return;
    }
    for (int64_t tb = 0; tb < p->n_tok; tb += tok_block) {
        int64_t te = tb + tok_block < p->n_tok ? tb + tok_block : p->n_tok;
        int64_t r = p->row_begin;
        for (; r < p->row_end; r += 2) {
            int two = r + 2 <= p->row_end;
            int64_t t = tb;
            for (; t + 4 <= te; t += 4) {
                if (two)
                    q32_tile(vnni, kind, 2, 4, p, r, t);
                else
                    q32_tile(vnni, kind, 1, 4, p, r, t);
            }
            for (; t < te; t++) {
                if (two)
                    q32_tile(vnni, kind, 2, 1, p, r, t);
                else
                    q32_tile(vnni, kind, 1, 1, p, r, t);
            }
        }
    }
}

/* ---- Q4_K, Q5_K, Q6_K ---- */

enum kq_kind { KQ_Q4_K, KQ_Q5_K, KQ_Q6_K };

INLINE int kq_bytes(int kind)
{
    return kind == KQ_Q4_K ? sizeof(block_q4_K)
           : kind == KQ_Q5_K ? sizeof(block_q5_K) : sizeof(block_q6_K);
}

/* Values 32 * j .. 32 * j + 31 of a K-quant block as unsigned bytes. */
INLINE __m256i kq_chunk(int kind, const uint8_t *blk, int j)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    if (kind == KQ_Q6_K) {
        const block_q6_K *b = (const block_q6_K *)blk;
        int half = j / 4, group = j % 4;
        __m256i l = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * half +
                                                         32 * (group & 1)));
        __m256i h = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * half));
        l = group < 2 ? _mm256_and_si256(l, m4)
                      : _mm256_and_si256(_mm256_srli_epi16(l, 4), m4);
        h = _mm256_and_si256(_mm256_srli_epi16(h, 2 * group), _mm256_set1_epi8(3));
        return _mm256_or_si256(l, _mm256_slli_epi16(h, 4));
    }
    const uint8_t *qs = kind == KQ_Q4_K ? ((const block_q4_K *)blk)->qs
                                        : ((const block_q5_K *)blk)->qs;
    __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * (j / 2)));
    v = (j & 1) ? _mm256_and_si256(_mm256_srli_epi16(v, 4), m4) : _mm256_and_si256(v, m4);
    if (kind == KQ_Q5_K) {
        const block_q5_K *b = (const block_q5_K *)blk;
        __m256i h = _mm256_loadu_si256((const __m256i *)b->qh);
        __m256i bit = _mm256_set1_epi8((char)(1 << j));
        __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(h, bit), bit);
        v = _mm256_or_si256(v, _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
    }
    return v;
}

/* One row times nt tokens (at most 4). */
INLINE void kq_tile(int vnni, int kind, int nt, const kern_mm_args *p, int64_t r,
                    int64_t t0)
{
    const int bs = kq_bytes(kind);
    const uint8_t *w = p->w + (size_t)r * p->w_row_bytes;
    const block_q8_K *ar[4];
    __m256 acc[4];

    #pragma GCC unroll 8
    for (int t = 0; t < nt; t++) {
        ar[t] = (const block_q8_K *)(p->act + (size_t)(t0 + t) * p->act_row_bytes);
        acc[t] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < p->n_in / QK_K; b++) {
        const uint8_t *blk = w + b * bs;
        int16_t sc[16], mn[16];
        float d, dmin = 0.0f;
        if (kind == KQ_Q6_K) {
            const block_q6_K *q6 = (const block_q6_K *)blk;
            for (int g = 0; g < 16; g++)
                sc[g] = q6->scales[g];
            d = half((const uint8_t *)&q6->d);
        } else {
            uint8_t s8[8], m8[8];
            kern_unpack_k4_scales(blk + 4, s8, m8);
            for (int g = 0; g < 16; g++) {
                sc[g] = s8[g / 2];
                mn[g] = m8[g / 2];
            }
            d = half(blk);
            dmin = half(blk + 2);
        }
        __m256i sc16 = _mm256_loadu_si256((const __m256i *)sc);
        __m256i isum[4];
        #pragma GCC unroll 8
        for (int t = 0; t < nt; t++) {
            __m256i bsums = _mm256_loadu_si256((const __m256i *)ar[t][b].bsums);
            if (kind == KQ_Q6_K)
                isum[t] = dot_s16(vnni, _mm256_setzero_si256(),
                                  _mm256_mullo_epi16(sc16, _mm256_set1_epi16(-32)), bsums);
            else
                isum[t] = _mm256_setzero_si256();
        }
        #pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            __m256i u = kq_chunk(kind, blk, j);
            /* Sixteen 16-bit pair sums per chunk: two groups of 16 values. */
            __m256i s = _mm256_set_m128i(_mm_set1_epi16(sc[2 * j + 1]),
                                         _mm_set1_epi16(sc[2 * j]));
            #pragma GCC unroll 8
            for (int t = 0; t < nt; t++) {
                __m256i q = _mm256_loadu_si256((const __m256i *)(ar[t][b].qs + 32 * j));
                isum[t] = dot_s16(vnni, isum[t], _mm256_maddubs_epi16(u, q), s);
            }
        }
        __m256i mn16 = kind == KQ_Q6_K ? _mm256_setzero_si256()
                                       : _mm256_loadu_si256((const __m256i *)mn);
        #pragma GCC unroll 8
        for (int t = 0; t < nt; t++) {
            float da = ar[t][b].d;
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_set1_ps(d * da),
                                     acc[t]);
            if (kind != KQ_Q6_K) {
                __m256i bsums = _mm256_loadu_si256((const __m256i *)ar[t][b].bsums);
                __m256i m = _mm256_madd_epi16(mn16, bsums);
                acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(m), _mm256_set1_ps(dmin * da),
                                          acc[t]);
            }
        }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < nt; t++)
        p->y[(t0 + t) * p->y_stride + r] = hsum8(acc[t]);
}

INLINE void kq_matmul(int vnni, int kind, const kern_mm_args *p)
{
    const int64_t tok_block = kern_token_block(p->act_row_bytes, 4);

    for (int64_t tb = 0; tb < p->n_tok; tb += tok_block) {
        int64_t te = tb + tok_block < p->n_tok ? tb + tok_block : p->n_tok;
        for (int64_t r = p->row_begin; r < p->row_end; r++) {
            int64_t t = tb;
            for (; t + 4 <= te; t += 4)
                kq_tile(vnni, kind, 4, p, r, t);
            for (; t < te; t++)
                kq_tile(vnni, kind, 1, p, r, t);
        }
    }
}

#endif
