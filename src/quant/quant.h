/*
 * Reference quantization and dequantization of tensor rows.
 *
 * These are the plain scalar versions that define what each block format
 * means; fast kernels are tested against them. The block layouts are
 * ggml's (see qtypes.h). Without importance weights, F16, BF16, Q4_0,
 * Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q8_K and the K-quants produce the same
 * bytes as ggml's reference quantizers (the path llama-quantize takes
 * without an imatrix), because every float operation is done in the same
 * order.
 *
 * A row is n consecutive elements; n must be a multiple of the block size
 * of the type (qtype_info()->block_size). The functions keep no state, so
 * they may be called from any number of threads at once.
 */
#ifndef ROJ_QUANT_QUANT_H
#define ROJ_QUANT_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/threadpool.h"
#include "quant/qtypes.h"
#include "roj/roj.h"

/* Returns whether quant_dequantize_row() handles type. */
bool quant_can_dequantize(enum roj_type type);

/* Returns whether quant_quantize_row() can produce type. */
bool quant_can_quantize(enum roj_type type);

/* Converts a row of n elements of type to float. The caller guarantees
 * that quant_can_dequantize(type) holds and that n is a multiple of the
 * block size; src holds qtype_row_bytes(type, n) bytes, dst n floats. */
void quant_dequantize_row(enum roj_type type, const void *src, float *dst,
                          int64_t n);

/*
 * Quantizes a row of n floats into type, writing qtype_row_bytes(type, n)
 * bytes to dst. importance (n values, may be NULL) weights the error of
 * each element, as an imatrix does; with NULL every quantizer matches
 * ggml's reference bit for bit. Returns ROJ_ERR_UNSUPPORTED for a type
 * that cannot be produced, ROJ_ERR_INVALID_ARG when n is not a multiple of
 * the block size, and ROJ_ERR_NUMERIC when a block type would receive a
 * NaN or infinity.
 */
roj_status quant_quantize_row(enum roj_type type, const float *src,
                              void *dst, int64_t n, const float *importance);

/* Returns the bytes of one row of n elements of type, or 0 when n does not
 * fit the block size or the type is unknown. */
size_t quant_row_size(enum roj_type type, int64_t n);

/*
 * Quantizes n_rows rows of n_per_row floats (src is (n_rows, n_per_row),
 * dst receives n_rows * quant_row_size(type, n_per_row) bytes), splitting
 * the rows over the threads of pool; pool may be NULL to run on the
 * calling thread. importance, when not NULL, holds n_per_row weights
 * shared by every row. The result does not depend on the thread count.
 * Errors are those of quant_quantize_row(); the message names the row.
 */
roj_status quant_quantize_tensor(enum roj_type type, const float *src,
                                 void *dst, int64_t n_rows, int64_t n_per_row,
                                 const float *importance, roj_pool *pool);

/* Dequantizes n_rows rows of n_per_row elements of type into dst
 * (n_rows, n_per_row) floats on the threads of pool (may be NULL). */
roj_status quant_dequantize_tensor(enum roj_type type, const void *src,
                                   float *dst, int64_t n_rows,
                                   int64_t n_per_row, roj_pool *pool);

#endif
