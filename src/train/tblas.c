/* Run-time loading of OpenBLAS's sgemm with a checked fallback (see
 * tblas.h). */
#include "train/tblas.h"

#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

/* The CBLAS enum values (row-major 101, no-transpose 111, transpose 112)
 * are fixed by the CBLAS standard. */
typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k,
                         float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c,
                         int ldc);
typedef void (*set_threads_fn)(int n);
typedef char *(*corename_fn)(void);

static sgemm_fn blas_sgemm;
static char blas_label[64] = "built-in";
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Plain product, blocked over k for locality; the reference of the
 * self-check and the fallback. */
static void plain_sgemm(bool ta, bool tb, int m, int n, int k, float alpha,
                        const float *a, int lda, const float *b, int ldb,
                        float beta, float *c, int ldc)
{
    for (int i = 0; i < m; i++) {
        float *ci = c + (size_t)i * ldc;
        for (int j = 0; j < n; j++)
            ci[j] = beta == 0.0f ? 0.0f : ci[j] * beta;
        for (int p = 0; p < k; p++) {
            const float av = alpha * (ta ? a[(size_t)p * lda + i]
                                         : a[(size_t)i * lda + p]);
            if (av == 0.0f)
                continue;
            if (tb)
                for (int j = 0; j < n; j++)
                    ci[j] += av * b[(size_t)j * ldb + p];
            else
                for (int j = 0; j < n; j++)
                    ci[j] += av * b[(size_t)p * ldb + j];
        }
    }
}

static bool cpu_has_skylakex(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512cd") &&
           __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl");
#else
    return false;
#endif
}

/* Compares the library against the plain product on odd shapes with
 * every transpose combination. */
static bool self_check(sgemm_fn f)
{
    enum { M = 37, N = 29, K = 53 };
    static float a[M * K], b[K * N], c1[M * N], c2[M * N];
    uint32_t s = 12345;
    for (int i = 0; i < M * K; i++)
        a[i] = (float)((s = s * 1664525u + 1013904223u) >> 8) / 16777216.0f -
               0.5f;
    for (int i = 0; i < K * N; i++)
        b[i] = (float)((s = s * 1664525u + 1013904223u) >> 8) / 16777216.0f -
               0.5f;
    for (int t = 0; t < 4; t++) {
        const bool ta = t & 1, tb = t & 2;
        const int lda = ta ? M : K, ldb = tb ? K : N;
        for (int i = 0; i < M * N; i++)
            c1[i] = c2[i] = (float)(i % 7) * 0.25f;
        f(101, ta ? 112 : 111, tb ? 112 : 111, M, N, K, 0.75f, a, lda, b,
          ldb, 0.5f, c1, N);
        plain_sgemm(ta, tb, M, N, K, 0.75f, a, lda, b, ldb, 0.5f, c2, N);
        for (int i = 0; i < M * N; i++)
            if (!(fabsf(c1[i] - c2[i]) <= 1e-4f * (1.0f + fabsf(c2[i]))))
                return false;
    }
    return true;
}

static void load(void)
{
    const bool set_core = !getenv("OPENBLAS_CORETYPE") && cpu_has_skylakex();
    if (set_core)
        setenv("OPENBLAS_CORETYPE", "SkylakeX", 0);
    void *h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (set_core)
        unsetenv("OPENBLAS_CORETYPE");
    if (!h) {
        roj_log(ROJ_LOG_WARN, "OpenBLAS not found (%s): training uses the "
                "slower built-in product; install libopenblas0", dlerror());
        return;
    }
    sgemm_fn f = (sgemm_fn)dlsym(h, "cblas_sgemm");
    set_threads_fn nt = (set_threads_fn)dlsym(h, "openblas_set_num_threads");
    corename_fn cn = (corename_fn)dlsym(h, "openblas_get_corename");
    if (!f) {
        roj_log(ROJ_LOG_WARN, "OpenBLAS has no cblas_sgemm: training uses "
                "the built-in product");
        return;
    }
    /* roj's pool splits the work; OpenBLAS must not add threads. */
    if (nt)
        nt(1);
    if (!self_check(f)) {
        roj_log(ROJ_LOG_WARN, "OpenBLAS (%s) failed roj's check of "
                "sgemm: training uses the built-in product",
                cn ? cn() : "?");
        return;
    }
    snprintf(blas_label, sizeof blas_label, "openblas (%s)",
             cn ? cn() : "?");
    blas_sgemm = f;
}

void tblas_init(void)
{
    pthread_once(&once, load);
}

const char *tblas_name(void)
{
    tblas_init();
    return blas_label;
}

void tblas_sgemm(bool trans_a, bool trans_b, int m, int n, int k,
                 float alpha, const float *a, int lda, const float *b,
                 int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                c[(size_t)i * ldc + j] =
                    beta == 0.0f ? 0.0f : c[(size_t)i * ldc + j] * beta;
        return;
    }
    if (blas_sgemm)
        blas_sgemm(101, trans_a ? 112 : 111, trans_b ? 112 : 111, m, n, k,
                   alpha, a, lda, b, ldb, beta, c, ldc);
    else
        plain_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta,
                    c, ldc);
}
