/*
 * AVX-512 VNNI matrix products for the 32-element block types Q4_0, Q4_1,
 * Q5_0, Q5_1 and Q8_0 against Q8_0 / Q8_1 activations.
 *
 * One zmm register holds two blocks. Weights are decoded to unsigned bytes
 * u = q + offset (Q4_0: q + 8, Q5_0: q + 16, Q8_0: q + 128; the _1 types
 * are unsigned already), so vpdpbusd (unsigned x signed) computes the block
 * sums directly. The offset is removed by starting the accumulator at
 * -offset * sum(a), computed once per activation block and shared by all
 * rows of a tile. Each 8-lane half is then scaled by d_w * d_a, so no
 * horizontal sum is needed until the end of the row.
 *
 * Activation pairs are prepared once per call into a per-thread scratch
 * buffer. Tiles are 4 rows x 4 tokens for prompts and 8 rows x 1 token
 * (16 for short rows) for decoding, which streams the weights once. A
 * decoding tile of long rows reads each row to its end before the next.
 * From DECODE_MIN_TOK tokens on, each 4-row strip is decoded once per
 * token block into the same scratch, so the prompt tiles only load it.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/kern_avx512.h"
#include "kernels/kern_impl.h"

#define INLINE static inline __attribute__((always_inline))

/* Software prefetch distance for the one-token product, in bytes ahead of
 * the block being read. With rows taken in turn block by block, it
 * doubled the cold-weight GEMV's bandwidth on a 2-core Sapphire Rapids
 * VM (bench_kernels --cold; 2 and 8 KiB measured close to 4). With rows
 * read one after the other, on an AMD EPYC VM, it still helps Q4_0 (tg128
 * of the 135M shape 171 against 160 t/s on one thread) but slows Q8_0
 * down (108 against 116), so Q8_0 goes without (q32_prefetches). */
#define PREFETCH_BYTES 4096

/* Rows of at most this many block pairs (128 values) use 16-row tiles
 * for one token, and take the rows of a tile in turn block by block. */
#define SHORT_ROW_PAIRS 2

enum q32_kind { Q32_Q4_0, Q32_Q4_1, Q32_Q5_0, Q32_Q5_1, Q32_Q8_0 };

/* Bytes of one weight block. */
INLINE int q32_block_bytes(int kind)
{
    switch (kind) {
    case Q32_Q4_0: return sizeof(block_q4_0);
    case Q32_Q4_1: return sizeof(block_q4_1);
    case Q32_Q5_0: return sizeof(block_q5_0);
    case Q32_Q5_1: return sizeof(block_q5_1);
    default: return sizeof(block_q8_0);
    }
}

/* Whether the one-token loop issues software prefetches. */
INLINE int q32_prefetches(int kind)
{
    return kind != Q32_Q8_0;
}

INLINE int q32_has_min(int kind)
{
    return kind == Q32_Q4_1 || kind == Q32_Q5_1;
}

INLINE int q32_offset(int kind)
{
    switch (kind) {
    case Q32_Q4_0: return 8;
    case Q32_Q5_0: return 16;
    case Q32_Q8_0: return 128;
    default: return 0;
    }
}

/* Two half floats at 16-bit word w0 and w1 of p, each broadcast to an 8-lane
 * half: [h(w0) x 8, h(w1) x 8]. 64 bytes from p must be readable when w1 is
 * 16 or more, 32 bytes otherwise. */
INLINE __m512 halves_pair(const uint8_t *p, int w0, int w1)
{
    __m512i idx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                   0, 0, w1, w1, w1, w1, w1, w1, w1, w1, w0,
                                   w0, w0, w0, w0, w0, w0, w0);
    __m256i h;
    if (w1 >= 16) {
        __m512i v = _mm512_loadu_si512(p);
        h = _mm512_castsi512_si256(_mm512_permutexvar_epi16(idx, v));
    } else {
        __m256i v = _mm256_loadu_si256((const __m256i *)p);
        h = _mm256_permutexvar_epi16(_mm512_castsi512_si256(idx), v);
    }
    return _mm512_cvtph_ps(h);
}

typedef struct {
    __m512i u;  /* 64 unsigned values: block b then block b + 1 */
    __m512 d;   /* weight scales, one per 8-lane half */
    __m512 m;   /* weight mins (_1 types) */
} q32_wpair;

/* Unpacks 16 bytes of nibbles from each of two blocks into 64 bytes in
 * element order: [lo(b0), hi(b0), lo(b1), hi(b1)]. */
INLINE __m512i nibbles_pair(const uint8_t *q0, const uint8_t *q1)
{
    __m256i q = _mm256_loadu2_m128i((const __m128i *)q1, (const __m128i *)q0);
    __m512i z = _mm512_permutexvar_epi64(_mm512_set_epi64(3, 2, 3, 2, 1, 0, 1, 0),
                                         _mm512_castsi256_si512(q));
    __m512i shifts = _mm512_set_epi64(0x0004000400040004LL, 0x0004000400040004LL, 0,
                                      0, 0x0004000400040004LL, 0x0004000400040004LL,
                                      0, 0);
    return _mm512_and_si512(_mm512_srlv_epi16(z, shifts), _mm512_set1_epi8(0x0F));
}

/* Adds 16 to each byte whose bit is set in the two 32-bit qh words. */
INLINE __m512i add_fifth_bits(__m512i u, const uint8_t *h0, const uint8_t *h1)
{
    uint32_t a, b;
    memcpy(&a, h0, 4);
    memcpy(&b, h1, 4);
    __mmask64 k = _cvtu64_mask64((uint64_t)a | ((uint64_t)b << 32));
    return _mm512_or_si512(u, _mm512_maskz_mov_epi8(k, _mm512_set1_epi8(0x10)));
}

/* Decodes weight blocks b and b + 1 starting at blk. */
INLINE q32_wpair q32_decode(int kind, const uint8_t *blk)
{
    const int bs = q32_block_bytes(kind);
    q32_wpair w;
    w.m = _mm512_setzero_ps();
    switch (kind) {
    case Q32_Q4_0:
        w.u = nibbles_pair(blk + 2, blk + bs + 2);
        w.d = halves_pair(blk, 0, bs / 2);
        break;
    case Q32_Q4_1:
        w.u = nibbles_pair(blk + 4, blk + bs + 4);
        w.d = halves_pair(blk, 0, bs / 2);
        w.m = halves_pair(blk, 1, bs / 2 + 1);
        break;
    case Q32_Q5_0:
        w.u = add_fifth_bits(nibbles_pair(blk + 6, blk + bs + 6), blk + 2,
                             blk + bs + 2);
        w.d = halves_pair(blk, 0, bs / 2);
        break;
    case Q32_Q5_1:
        w.u = add_fifth_bits(nibbles_pair(blk + 8, blk + bs + 8), blk + 4,
                             blk + bs + 4);
        w.d = halves_pair(blk, 0, bs / 2);
        w.m = halves_pair(blk, 1, bs / 2 + 1);
        break;
    default: {
        __m256i q0 = _mm256_loadu_si256((const __m256i *)(blk + 2));
        __m256i q1 = _mm256_loadu_si256((const __m256i *)(blk + bs + 2));
        __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
        w.u = _mm512_xor_si512(q, _mm512_set1_epi8((char)0x80));
        w.d = halves_pair(blk, 0, bs / 2);
        break;
    }
    }
    return w;
}

typedef struct {
    __m512i a;     /* 64 signed activation values */
    __m512i corr;  /* -offset * sum(a) spread over the lanes of each half */
    __m512 d;      /* activation scales per half */
    __m512 s;      /* Q8_1 s / 8 per half, so 8 lanes sum to d * sum(q) */
} q32_apair;

/* Loads activation blocks b and b + 1 (Q8_0 for the _0 types, else Q8_1). */
INLINE q32_apair q32_act(int kind, const uint8_t *blk)
{
    const int q81 = q32_has_min(kind);
    const int bs = q81 ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const int qoff = q81 ? 4 : 2;
    q32_apair a;
    __m256i q0 = _mm256_loadu_si256((const __m256i *)(blk + qoff));
    __m256i q1 = _mm256_loadu_si256((const __m256i *)(blk + bs + qoff));
    a.a = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
    a.d = halves_pair(blk, 0, bs / 2);
    a.s = _mm512_setzero_ps();
    a.corr = _mm512_setzero_si512();
    if (q81) {
        a.s = _mm512_mul_ps(halves_pair(blk, 1, bs / 2 + 1), _mm512_set1_ps(0.125f));
    } else {
        __m512i off = _mm512_set1_epi8((char)q32_offset(kind));
        __m512i sum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), off, a.a);
        a.corr = _mm512_sub_epi32(_mm512_setzero_si512(), sum);
    }
    return a;
}

/* Activation pair b / b + 1 of one token, prepared once per call so the
 * tiles spend no instructions on it: the values, the offset correction
 * (or, for the _1 types, the s / 8 vector) and the scales. */
typedef struct {
    __m512i a;
    __m512i c;
    __m512 d;
} q32_rec;

/* Prepares the records of tokens t0 .. t0 + nt - 1: (nt, n_pairs). An odd
 * last block is paired with a zero block. */
INLINE void q32_prepare(int kind, const kern_mm_args *p, int64_t t0, int64_t nt,
                        q32_rec *rec)
{
    const int abs_ = q32_has_min(kind) ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const int64_t nb = p->n_in / 32, n_pairs = (nb + 1) / 2;

    for (int64_t t = 0; t < nt; t++) {
        const uint8_t *row = p->act + (size_t)(t0 + t) * p->act_row_bytes;
        for (int64_t bp = 0; bp < n_pairs; bp++) {
            uint8_t pad[2 * sizeof(block_q8_1)] = {0};
            const uint8_t *blk = row + 2 * bp * abs_;
            if (2 * bp + 1 == nb) {
                memcpy(pad, blk, abs_);
                blk = pad;
            }
            q32_apair a = q32_act(kind, blk);
            q32_rec *r = &rec[t * n_pairs + bp];
            r->a = a.a;
            r->c = q32_has_min(kind) ? _mm512_castps_si512(a.s) : a.corr;
            r->d = a.d;
        }
    }
}

INLINE __m512 q32_step(int kind, __m512 acc, const q32_wpair *w, const q32_rec *a)
{
    __m512i init = q32_has_min(kind) ? _mm512_setzero_si512() : a->c;
    __m512i s = _mm512_dpbusd_epi32(init, w->u, a->a);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(w->d, a->d), acc);
    if (q32_has_min(kind))
        acc = _mm512_fmadd_ps(w->m, _mm512_castsi512_ps(a->c), acc);
    return acc;
}

/* Computes an nr x nt tile: rows r0.., tokens whose records start at rec
 * (n_pairs apart); writes y for tokens t0... */
INLINE void q32_tile(int kind, int nr, int nt, const kern_mm_args *p, int64_t r0,
                     int64_t t0, const q32_rec *rec)
{
    const int bs = q32_block_bytes(kind);
    const int64_t nb = p->n_in / 32, n_pairs = (nb + 1) / 2;
    const uint8_t *wr[16];
    __m512 acc[16][4];

    #pragma GCC unroll 16
    for (int r = 0; r < nr; r++) {
        wr[r] = p->w + (size_t)(r0 + r) * p->w_row_bytes;
        #pragma GCC unroll 8
        for (int t = 0; t < nt; t++)
            acc[r][t] = _mm512_setzero_ps();
    }
    int64_t bp = 0;
    if (nt == 1 && n_pairs > SHORT_ROW_PAIRS) {
        /* One token: each row from start to end, then the next, so the
         * tile is read in address order. Taking the rows in turn block by
         * block ran at 9 GB/s from memory on an AMD EPYC VM, this order
         * at 15 (bench_kernels --cold, 135M Q8_0 output matrix). */
        #pragma GCC unroll 16
        for (int r = 0; r < nr; r++) {
            __m512 a = acc[r][0];
            for (bp = 0; bp < nb / 2; bp++) {
                const uint8_t *blk = wr[r] + 2 * bp * bs;
                if (q32_prefetches(kind))
                    _mm_prefetch((const char *)blk + PREFETCH_BYTES,
                                 _MM_HINT_T0);
                q32_wpair w = q32_decode(kind, blk);
                a = q32_step(kind, a, &w, &rec[bp]);
            }
            acc[r][0] = a;
        }
    }
    for (; bp < nb / 2; bp++) {
        /* Decode one row and use it at once, so only one decoded pair is
         * live next to the nr x nt accumulators. */
        #pragma GCC unroll 16
        for (int r = 0; r < nr; r++) {
            const uint8_t *blk = wr[r] + 2 * bp * bs;
            if (nt == 1)
                _mm_prefetch((const char *)blk + PREFETCH_BYTES, _MM_HINT_T0);
            q32_wpair w = q32_decode(kind, blk);
            #pragma GCC unroll 8
            for (int t = 0; t < nt; t++)
                acc[r][t] = q32_step(kind, acc[r][t], &w, &rec[t * n_pairs + bp]);
        }
    }
    if (bp < n_pairs) {
        /* Odd block count: pair the last block with a zero block. */
        q32_wpair w[16];
        #pragma GCC unroll 16
        for (int r = 0; r < nr; r++) {
            uint8_t pad[2 * sizeof(block_q8_0)] = {0};
            memcpy(pad, wr[r] + 2 * bp * bs, bs);
            w[r] = q32_decode(kind, pad);
        }
        #pragma GCC unroll 8
        for (int t = 0; t < nt; t++)
            #pragma GCC unroll 16
            for (int r = 0; r < nr; r++)
                acc[r][t] = q32_step(kind, acc[r][t], &w[r], &rec[t * n_pairs + bp]);
    }
    if (nr == 4 && nt == 4) {
        kern_reduce_4x4(acc, p->y + t0 * p->y_stride + r0, p->y_stride);
        return;
    }
    if (nr == 16 && nt == 1) {
        /* One token, 16 rows: the 4 x 4 shuffle tree with rows 4j .. 4j + 3
         * as "token" j sums all 16 at about 3 instructions a row. */
        __m512 tile[4][4];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                tile[i][j] = acc[j * 4 + i][0];
        _mm512_storeu_ps(p->y + t0 * p->y_stride + r0,
                         kern_reduce_4x4_sums(tile));
        return;
    }
    if (nr == 8 && nt == 1) {
        /* One token, 8 rows: the 4 x 4 shuffle tree with rows 0-3 and 4-7
         * as its first two "tokens" and zeros for the rest costs fewer
         * instructions than 8 separate reductions, which matters for the
         * short rows of small models' output matrices. */
        __m512 tile[4][4];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                tile[i][j] = j < 2 ? acc[j * 4 + i][0] : _mm512_setzero_ps();
        __m512 sums = kern_reduce_4x4_sums(tile);
        _mm256_storeu_ps(p->y + t0 * p->y_stride + r0,
                         _mm512_castps512_ps256(sums));
        return;
    }
    #pragma GCC unroll 8
    for (int t = 0; t < nt; t++)
        #pragma GCC unroll 8
        for (int r = 0; r < nr; r++)
            p->y[(t0 + t) * p->y_stride + r0 + r] = kern_hsum_ps(acc[r][t]);
}

/* Rows of a decoded weight strip. */
#define STRIP_ROWS 4

/* Vectors per decoded weight pair in a strip: values and scales, plus the
 * mins for the _1 types. */
INLINE int q32_strip_vecs(int kind)
{
    return q32_has_min(kind) ? 3 : 2;
}

/* Decodes rows r0 .. r0 + nr - 1 into strip, pair-major: entry
 * bp * STRIP_ROWS + r, q32_strip_vecs vectors each. An odd last block is
 * paired with a zero block. */
INLINE void q32_decode_strip(int kind, const kern_mm_args *p, int64_t r0, int nr,
                             __m512i *strip)
{
    const int bs = q32_block_bytes(kind), nv = q32_strip_vecs(kind);
    const int64_t nb = p->n_in / 32, n_pairs = (nb + 1) / 2;
    for (int r = 0; r < nr; r++) {
        const uint8_t *w = p->w + (size_t)(r0 + r) * p->w_row_bytes;
        for (int64_t bp = 0; bp < n_pairs; bp++) {
            q32_wpair d;
            if (2 * bp + 1 < nb) {
                d = q32_decode(kind, w + 2 * bp * bs);
            } else {
                uint8_t pad[2 * sizeof(block_q8_0)] = {0};
                memcpy(pad, w + 2 * bp * bs, bs);
                d = q32_decode(kind, pad);
            }
            __m512i *e = strip + (bp * STRIP_ROWS + r) * nv;
            e[0] = d.u;
            e[1] = _mm512_castps_si512(d.d);
            if (nv == 3)
                e[2] = _mm512_castps_si512(d.m);
        }
    }
}

/* The nr x nt tile of q32_tile on a decoded strip: the inner loop is
 * loads, vpdpbusd and the scale FMAs only. */
INLINE void q32_tile_dec(int kind, int nr, int nt, const kern_mm_args *p, int64_t r0,
                         int64_t t0, const __m512i *strip, const q32_rec *rec)
{
    const int64_t n_pairs = (p->n_in / 32 + 1) / 2;
    const int nv = q32_strip_vecs(kind);
    __m512 acc[STRIP_ROWS][4];

    #pragma GCC unroll 8
    for (int r = 0; r < nr; r++)
        #pragma GCC unroll 8
        for (int t = 0; t < nt; t++)
            acc[r][t] = _mm512_setzero_ps();
    for (int64_t bp = 0; bp < n_pairs; bp++) {
        #pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            const __m512i *e = strip + (bp * STRIP_ROWS + r) * nv;
            q32_wpair w;
            w.u = e[0];
            w.d = _mm512_castsi512_ps(e[1]);
            w.m = nv == 3 ? _mm512_castsi512_ps(e[2]) : _mm512_setzero_ps();
            #pragma GCC unroll 8
            for (int t = 0; t < nt; t++)
                acc[r][t] = q32_step(kind, acc[r][t], &w, &rec[t * n_pairs + bp]);
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

/* Bytes of prepared activations per token block (192 bytes per token and
 * block pair): small enough to stay in a 1-2 MiB L2 next to the weight
 * rows being streamed. */
#define SCRATCH_BYTES (384u << 10)

/* Token count from which a prompt product decodes each 4-row strip once
 * per token block instead of once per 4-token tile. */
#define DECODE_MIN_TOK 8


/* Prompt product on decoded strips; rec has room for tok_block tokens and
 * a strip after them. */
INLINE int q32_matmul_dec(int kind, const kern_mm_args *p, q32_rec *rec,
                          int64_t tok_block)
{
    const int64_t n_pairs = (p->n_in / 32 + 1) / 2;
    const int nv = q32_strip_vecs(kind);
    __m512i *strip = (__m512i *)(rec + tok_block * n_pairs);

    for (int64_t tb = 0; tb < p->n_tok; tb += tok_block) {
        int64_t te = tb + tok_block < p->n_tok ? tb + tok_block : p->n_tok;
        int64_t te_full = tb + (te - tb) / 4 * 4;
        q32_prepare(kind, p, tb, te - tb, rec);
        for (int64_t r = p->row_begin; r < p->row_end; r += STRIP_ROWS) {
            int nr = p->row_end - r < STRIP_ROWS ? (int)(p->row_end - r) : STRIP_ROWS;
            q32_decode_strip(kind, p, r, nr, strip);
            for (int64_t t = tb; t < te;) {
                const q32_rec *tr = rec + (t - tb) * n_pairs;
                int four = t < te_full;
                if (nr == 4 && four)
                    q32_tile_dec(kind, 4, 4, p, r, t, strip, tr);
                else if (nr == 4)
                    q32_tile_dec(kind, 4, 1, p, r, t, strip, tr);
                else if (four)
                    for (int i = 0; i < nr; i++)
                        q32_tile_dec(kind, 1, 4, p, r + i, t, strip + i * nv, tr);
                else
                    for (int i = 0; i < nr; i++)
                        q32_tile_dec(kind, 1, 1, p, r + i, t, strip + i * nv, tr);
                t += four ? 4 : 1;
            }
        }
    }
    return 0;
}

/* Returns 0, or -1 when no scratch memory could be allocated. */
INLINE int q32_matmul(int kind, const kern_mm_args *p)
{
    const int64_t n_pairs = (p->n_in / 32 + 1) / 2;
    const size_t tok_bytes = (size_t)n_pairs * sizeof(q32_rec);
    int64_t tok_block = (int64_t)(SCRATCH_BYTES / tok_bytes);
    tok_block = tok_block >= 4 ? tok_block / 4 * 4 : 1;
    if (tok_block > p->n_tok)
        tok_block = p->n_tok;
    size_t strip_bytes = (size_t)(n_pairs * STRIP_ROWS) * sizeof(q32_wpair);
    q32_rec *rec = kern_scratch(tok_bytes * (size_t)tok_block + strip_bytes);
    if (rec == NULL)
        return -1;

    if (p->n_tok == 1) {
        /* One token: 8 rows per tile share each activation record, 16 on
         * short rows, whose time goes to the sums at the end rather than
         * to the weights. Long rows keep 8, read one after the other. */
        int64_t r = p->row_begin;
        q32_prepare(kind, p, 0, 1, rec);
        if (n_pairs <= SHORT_ROW_PAIRS)
            for (; r + 16 <= p->row_end; r += 16)
                q32_tile(kind, 16, 1, p, r, 0, rec);
        for (; r + 8 <= p->row_end; r += 8)
            q32_tile(kind, 8, 1, p, r, 0, rec);
        for (; r < p->row_end; r++)
            q32_tile(kind, 1, 1, p, r, 0, rec);
        return 0;
    }
    if (p->n_tok >= DECODE_MIN_TOK)
        return q32_matmul_dec(kind, p, rec, tok_block);
    const int64_t rows_full = p->row_begin + (p->row_end - p->row_begin) / 4 * 4;
    for (int64_t tb = 0; tb < p->n_tok; tb += tok_block) {
        int64_t te = tb + tok_block < p->n_tok ? tb + tok_block : p->n_tok;
        int64_t te_full = tb + (te - tb) / 4 * 4;
        q32_prepare(kind, p, tb, te - tb, rec);
        for (int64_t r = p->row_begin; r < p->row_end; r += 4) {
            int full = r < rows_full;
            for (int64_t t = tb; t < te;) {
                const q32_rec *tr = rec + (t - tb) * n_pairs;
                int four = t < te_full;
                if (full && four)
                    q32_tile(kind, 4, 4, p, r, t, tr);
                else if (full)
                    q32_tile(kind, 4, 1, p, r, t, tr);
                else
                    for (int64_t rr = r; rr < p->row_end; rr++) {
                        if (four)
                            q32_tile(kind, 1, 4, p, rr, t, tr);
                        else
                            q32_tile(kind, 1, 1, p, rr, t, tr);
                    }
                t += four ? 4 : 1;
            }
        }
    }
    return 0;
}

/* Each falls back to the scalar reference if scratch allocation fails. */
static void mm_q4_0(const kern_mm_args *p)
{
    if (q32_matmul(Q32_Q4_0, p) != 0)
        kern_scalar_matmul(ROJ_TYPE_Q4_0, p);
}

static void mm_q4_1(const kern_mm_args *p)
{
    if (q32_matmul(Q32_Q4_1, p) != 0)
        kern_scalar_matmul(ROJ_TYPE_Q4_1, p);
}

static void mm_q5_0(const kern_mm_args *p)
{
    if (q32_matmul(Q32_Q5_0, p) != 0)
        kern_scalar_matmul(ROJ_TYPE_Q5_0, p);
}

static void mm_q5_1(const kern_mm_args *p)
{
    if (q32_matmul(Q32_Q5_1, p) != 0)
        kern_scalar_matmul(ROJ_TYPE_Q5_1, p);
}

static void mm_q8_0(const kern_mm_args *p)
{
    if (q32_matmul(Q32_Q8_0, p) != 0)
        kern_scalar_matmul(ROJ_TYPE_Q8_0, p);
}

/* Sets the AVX-512 products of the 32-element block types. */
void kern_avx512_fill_q32(kern_ops *ops);

void kern_avx512_fill_q32(kern_ops *ops)
{
    ops->matmul[ROJ_TYPE_Q4_0] = mm_q4_0;
    ops->matmul[ROJ_TYPE_Q4_1] = mm_q4_1;
    ops->matmul[ROJ_TYPE_Q5_0] = mm_q5_0;
    ops->matmul[ROJ_TYPE_Q5_1] = mm_q5_1;
    ops->matmul[ROJ_TYPE_Q8_0] = mm_q8_0;
}
