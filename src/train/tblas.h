/*
 * The matrix product behind training: OpenBLAS's sgemm, loaded at run
 * time, with a plain C product as the fallback.
 *
 * Why loaded at run time: OpenBLAS 0.3.21 (Debian 12) picks its kernels
 * from the CPU model when the library loads and falls back to its SSE3
 * ("Prescott") kernels on processors its table lacks, several times
 * slower (43 against 270 GFLOP/s measured here). roj therefore loads it
 * itself; when OPENBLAS_CORETYPE is unset and the CPU has the AVX-512
 * subsets of Skylake-X, it asks for those kernels first. A value the
 * user or the machine set is never changed. After loading, a product of
 * odd sizes is compared against the plain C one; on any mismatch or when
 * the library is missing, training uses the plain product and says so.
 */
#ifndef ROJ_TRAIN_TBLAS_H
#define ROJ_TRAIN_TBLAS_H

#include <stdbool.h>

/* Row-major C = alpha * op(A) op(B) + beta * C, with the arguments of
 * cblas_sgemm (transpose flags as booleans). Call tblas_init first. */
void tblas_sgemm(bool trans_a, bool trans_b, int m, int n, int k,
                 float alpha, const float *a, int lda, const float *b,
                 int ldb, float beta, float *c, int ldc);

/* Loads the library once (thread-safe); later calls return at once. */
void tblas_init(void);

/* "openblas (SkylakeX)", "openblas (Prescott)" or "built-in", for
 * reports. */
const char *tblas_name(void);

#endif
