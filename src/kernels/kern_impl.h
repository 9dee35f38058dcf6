/*
 * Internal interface between the kernel dispatcher and the per-ISA
 * implementations. Each implementation fills a kern_ops table; entries it
 * leaves NULL fall back to the scalar reference, so an ISA file only has to
 * provide the kernels it speeds up.
 */
#ifndef ROJ_KERNELS_KERN_IMPL_H
#define ROJ_KERNELS_KERN_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "quant/qtypes.h"

/* One matrix product: y[t * y_stride + r] = dot(W row r, act row t). */
typedef struct {
    int64_t n_in;          /* elements per row, a multiple of the block */
    const uint8_t *w;      /* row 0 of the weights */
    size_t w_row_bytes;    /* bytes between weight rows */
    int64_t row_begin;     /* first output row */
    int64_t row_end;       /* one past the last output row */
    const uint8_t *act;    /* (n_tok, act_row_bytes) converted rows */
    size_t act_row_bytes;  /* bytes between activation rows */
    int64_t n_tok;         /* activation rows */
    float *y;              /* (n_tok, y_stride) output */
    int64_t y_stride;      /* floats between output rows */
} kern_mm_args;

typedef void (*kern_matmul_fn)(const kern_mm_args *args);
/* Converts n floats into one activation row of the table's type. */
typedef void (*kern_quantize_fn)(const float *x, void *act, int64_t n);

typedef struct {
    const char *name;
    kern_matmul_fn matmul[ROJ_TYPE_COUNT];     /* indexed by weight type */
    kern_quantize_fn quantize[ROJ_TYPE_COUNT]; /* indexed by act type */
    float (*dot_f16)(const uint16_t *a, const uint16_t *b, int64_t n);
    void (*axpy_f16)(float *y, float a, const uint16_t *x, int64_t n);
    float (*dot_f32)(const float *a, const float *b, int64_t n);
    void (*axpy_f32)(float *y, float a, const float *x, int64_t n);
    void (*f32_to_f16)(const float *x, uint16_t *y, int64_t n);
    void (*round_f16)(float *x, int64_t n);
    void (*swiglu)(float *gate, const float *up, int64_t n);
    void (*attn_scores_f16)(const float *q, const uint16_t *k, int64_t k_stride,
                            int64_t n_keys, int64_t head_dim, float scale,
                            float *scores);
    void (*attn_values_f16)(float *out, const float *w, const uint16_t *v,
                            int64_t v_stride, int64_t n, int64_t head_dim);
} kern_ops;

/* CPU features the implementations care about. */
typedef struct {
    int avx2, fma, f16c, avx_vnni;
    int avx512f, avx512bw, avx512dq, avx512vl, avx512_vnni, avx512_bf16;
    int avx512_fp16;
    int neon, neon_dotprod, neon_fp16;
} kern_cpu;

/* Fill functions: each sets the entries its ISA provides. */
void kern_scalar_fill(kern_ops *ops);
void kern_avx2_fill(kern_ops *ops, const kern_cpu *cpu);
void kern_avx512_fill(kern_ops *ops, const kern_cpu *cpu);
void kern_neon_fill(kern_ops *ops, const kern_cpu *cpu);

/* Scalar activation quantizers, shared so every ISA produces the same
 * bytes (the SIMD versions must match them exactly). */
void kern_quantize_row_q8_0(const float *x, void *act, int64_t n);
void kern_quantize_row_q8_1(const float *x, void *act, int64_t n);
void kern_quantize_row_q8_K(const float *x, void *act, int64_t n);
void kern_quantize_row_f16(const float *x, void *act, int64_t n);
void kern_quantize_row_bf16(const float *x, void *act, int64_t n);
void kern_quantize_row_f32(const float *x, void *act, int64_t n);

/* Scalar dequantizer for weight and activation types (Q8_1, Q8_K too).
 * Returns 0, or -1 for a type without one. */
int kern_scalar_dequantize(enum roj_type type, const void *row, float *out,
                           int64_t n);

/* Returns a 64-byte aligned buffer of at least bytes owned by the calling
 * thread, valid until its next call on this thread (freed at thread exit),
 * or NULL when allocation fails. Kernels use it for prepared activations. */
void *kern_scratch(size_t bytes);

/* Runs the scalar reference product of a weight type (the fallback when a
 * fast kernel cannot get scratch memory). */
void kern_scalar_matmul(enum roj_type type, const kern_mm_args *args);

/* Unpacks the eight 6-bit scales and mins of a Q4_K / Q5_K block. */
static inline void kern_unpack_k4_scales(const uint8_t q[12], uint8_t sc[8],
                                         uint8_t mn[8])
{
    for (int j = 0; j < 4; j++) {
        sc[j] = q[j] & 63;
        mn[j] = q[j + 4] & 63;
    }
    for (int j = 4; j < 8; j++) {
        sc[j] = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        mn[j] = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* Token block for the GEMM loops: enough activation rows to fill about
 * 256 KiB of L2, a multiple of tile_tok. */
static inline int64_t kern_token_block(size_t act_row_bytes, int tile_tok)
{
    int64_t n = (int64_t)((256u << 10) / (act_row_bytes ? act_row_bytes : 1));
    n -= n % tile_tok;
    return n < tile_tok ? tile_tok : n;
}

#endif
