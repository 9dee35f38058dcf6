/*
 * Compute kernels: matrix products on quantized weights and the vector
 * helpers of attention. One implementation per instruction set (scalar,
 * AVX2, AVX-512, NEON) is chosen at run time from the CPU's features; the
 * scalar one is the reference that tests compare the others against.
 *
 * Weights are row-major: row r of an (n_out, n_in) matrix starts at
 * qtype_row_bytes(type, n_in) * r. Activations are first converted to the
 * weight type's partner format (kern_act_type) with kern_quantize_act, as
 * llama.cpp does: F32 stays F32, F16 and BF16 rows use F16 and BF16,
 * Q4_0/Q5_0/Q8_0 use Q8_0, Q4_1/Q5_1 use Q8_1, K-quants use Q8_K.
 *
 * Threading: the functions are reentrant; callers split rows between
 * threads. kern_init() must run before the first call (roj does it when a
 * model is opened) and kern_select() must not race with other calls.
 */
#ifndef ROJ_KERNELS_KERNELS_H
#define ROJ_KERNELS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "quant/qtypes.h"

/* Detects CPU features and picks the fastest implementation. The
 * environment variable ROJ_ISA (scalar, avx2, avx512, neon) overrides. */
void kern_init(void);
/* Selects an implementation by name; returns 0 when this CPU or build has
 * it, -1 otherwise. */
int kern_select(const char *isa);
/* Name of the selected implementation. */
const char *kern_isa(void);
/* Feature list of this CPU as text, for logs: "avx2 fma f16c avx512f ...". */
const char *kern_cpu_features(void);

/* Partner activation type of a weight type, and the bytes of one converted
 * activation row of n_in elements. Returns ROJ_TYPE_COUNT / 0 for a weight
 * type without a kernel. */
enum roj_type kern_act_type(enum roj_type weight_type);
size_t kern_act_row_bytes(enum roj_type weight_type, int64_t n_in);

/* Converts n_rows activation rows of n_in floats (x_stride floats apart)
 * into the partner format of weight_type, act_row_bytes apart. */
void kern_quantize_act(enum roj_type weight_type, const float *x,
                       int64_t x_stride, void *act, int64_t n_in,
                       int64_t n_rows);

/*
 * y[t * y_stride + r] = dot(W row r, activation row t)
 * for r in [row_begin, row_end) and t in [0, n_tok).
 * w is the whole matrix (row 0); act holds n_tok converted rows.
 * n_in must be a multiple of the weight type's block size.
 */
void kern_matmul(enum roj_type weight_type, int64_t n_in, const void *w,
                 int64_t row_begin, int64_t row_end, const void *act,
                 int64_t n_tok, float *y, int64_t y_stride);

/* Converts one row of any supported type to float. */
void kern_dequantize_row(enum roj_type type, const void *row, float *out,
                         int64_t n);

/* Attention helpers on the F16 KV cache. */
float kern_dot_f16(const uint16_t *a, const uint16_t *b, int64_t n);
/* y[i] += a * x[i] */
void kern_axpy_f16(float *y, float a, const uint16_t *x, int64_t n);
float kern_dot_f32(const float *a, const float *b, int64_t n);
void kern_axpy_f32(float *y, float a, const float *x, int64_t n);
void kern_f32_to_f16(const float *x, uint16_t *y, int64_t n);

#endif
