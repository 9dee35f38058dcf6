/*
 * Compute kernels: matrix products on quantized weights and the vector
 * helpers of attention. One implementation per instruction set (scalar,
 * AVX2, AVX-512, NEON) is chosen at run time from the CPU's features; the
 * scalar one is the reference that tests compare the others against.
 *
 * Weights are row-major: row r of an (n_out, n_in) matrix starts at
 * qtype_row_bytes(type, n_in) * r. Activations are first converted to the
 * weight type's partner format (kern_act_type) with kern_quantize_act, as
 * llama.cpp does: Q4_0/Q5_0/Q8_0 use Q8_0, Q4_1/Q5_1 use Q8_1, K-quants
 * use Q8_K (all with the block structs of quant/qtypes.h), F16 uses F16
 * (rounded to nearest even), BF16 uses BF16 and F32 stays F32. Products
 * of float types widen both sides exactly and sum in F32. Activation bytes
 * do not depend on the selected implementation.
 *
 * Implementations: "scalar" (portable reference), "avx2" (AVX2 + FMA +
 * F16C, AVX-VNNI when present), "avx512" (F, BW, DQ, VL and VNNI; BF16
 * weights use AVX512-BF16 when present), "neon" (AArch64, SDOT when HWCAP
 * reports it). "avx2-plain" and "neon-plain" force the paths without
 * VNNI / SDOT, for tests; they are never chosen automatically.
 *
 * Threading: the functions are reentrant; callers split rows between
 * threads, and any row range works (no alignment needed). Every function
 * runs kern_init() on first use, so calling it first is optional; roj does
 * it when a model is opened. kern_select() must not race with other calls.
 */
#ifndef ROJ_KERNELS_KERNELS_H
#define ROJ_KERNELS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "quant/qtypes.h"

/* Detects CPU features and picks the fastest implementation, once. The
 * environment variable ROJ_ISA (any name kern_select accepts) overrides;
 * an unavailable name logs a warning and keeps the automatic choice. */
void kern_init(void);
/* Selects an implementation by name; returns 0 when this CPU or build has
 * it, -1 (keeping the current one) otherwise. */
int kern_select(const char *isa);
/* Name of the selected implementation. */
const char *kern_isa(void);
/* Feature list of this CPU as text, for logs: "avx2 fma f16c avx512f ...". */
const char *kern_cpu_features(void);

/* Partner activation type of a weight type, and the bytes of one converted
 * activation row of n_in elements. Returns ROJ_TYPE_COUNT / 0 for a weight
 * type without a kernel (Q2_K, Q3_K and the IQ types have none yet) or an
 * n_in that is not a multiple of the block size. */
enum roj_type kern_act_type(enum roj_type weight_type);
size_t kern_act_row_bytes(enum roj_type weight_type, int64_t n_in);

/* Converts n_rows activation rows of n_in floats (x_stride floats apart)
 * into the partner format of weight_type, kern_act_row_bytes() apart.
 * Does nothing for a type without a kernel. */
void kern_quantize_act(enum roj_type weight_type, const float *x,
                       int64_t x_stride, void *act, int64_t n_in,
                       int64_t n_rows);

/*
 * y[t * y_stride + r] = dot(W row r, activation row t)
 * for r in [row_begin, row_end) and t in [0, n_tok).
 * w is the whole matrix (row 0); act contains n_tok converted rows.
 * n_in must be a multiple of the weight type's block size; y entries
 * outside the row range are not touched. One token streams the weights
 * once (GEMV); more tokens use register tiles that reuse each weight block
 * for several tokens (GEMM). Does nothing for a type without a kernel.
 */
void kern_matmul(enum roj_type weight_type, int64_t n_in, const void *w,
                 int64_t row_begin, int64_t row_end, const void *act,
                 int64_t n_tok, float *y, int64_t y_stride);

/* kern_matmul with weight rows w_row_bytes apart instead of packed, for
 * matrices that are a strided view (an attention head inside the KV
 * cache). w_row_bytes must be at least the packed row size. */
void kern_matmul_rows(enum roj_type weight_type, int64_t n_in, const void *w,
                      size_t w_row_bytes, int64_t row_begin, int64_t row_end,
                      const void *act, int64_t n_tok, float *y,
                      int64_t y_stride);

/* Converts one row of n elements of any type with a kernel, or of the
 * activation types Q8_0, Q8_1 and Q8_K, to float. Writes nothing for other
 * types. */
void kern_dequantize_row(enum roj_type type, const void *row, float *out,
                         int64_t n);

/* Attention helpers on the F16 KV cache; any n >= 0. Dot products sum in
 * float with several accumulators, so results differ from a sequential sum
 * by rounding only. */
float kern_dot_f16(const uint16_t *a, const uint16_t *b, int64_t n);
/* y[i] += a * x[i] */
void kern_axpy_f16(float *y, float a, const uint16_t *x, int64_t n);
float kern_dot_f32(const float *a, const float *b, int64_t n);
void kern_axpy_f32(float *y, float a, const float *x, int64_t n);
/* Rounds to nearest even, like fp32_to_fp16 in quant/fp16.h. */
void kern_f32_to_f16(const float *x, uint16_t *y, int64_t n);
/* x[i] = the F16 value nearest x[i] (ties to even), as a float. */
void kern_round_f16(float *x, int64_t n);
/* gate[i] = silu(gate[i]) * up[i], with silu(g) = g / (1 + exp(-g)).
 * The vector versions use their own exp, and each result is within 6
 * units in the last place of the exact value (tests/test_kernels.c). A
 * result depends on its two inputs only, not on n or its index. */
void kern_swiglu(float *gate, const float *up, int64_t n);

/* Batched attention over an F16 KV cache, one head: much cheaper than one
 * kern_dot_f16 / kern_axpy_f16 call per key for small head_dim.
 * scores[j] = scale * dot(q, K row j) for j in [0, n_keys), where K row j
 * is head_dim F16 values at k + j * k_stride and q is head_dim floats. */
void kern_attn_scores_f16(const float *q, const uint16_t *k, int64_t k_stride,
                          int64_t n_keys, int64_t head_dim, float scale,
                          float *scores);
/* out[i] += sum over j in [0, n) of w[j] * V row j [i], for i in
 * [0, head_dim), where V row j is head_dim F16 values at v + j * v_stride. */
void kern_attn_values_f16(float *out, const float *w, const uint16_t *v,
                          int64_t v_stride, int64_t n, int64_t head_dim);

#endif
