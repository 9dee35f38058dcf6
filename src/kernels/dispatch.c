/*
 * Kernel dispatch: detects the CPU's features once, builds one function
 * table per instruction set (scalar entries fill whatever an ISA leaves
 * out) and routes the public kern_* calls through the selected table.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "kernels/kern_impl.h"
#include "kernels/kernels.h"

#if defined(ROJ_HAVE_X86)
#include <cpuid.h>
#elif defined(ROJ_HAVE_NEON)
#include <sys/auxv.h>
#endif

/* avx2-plain and neon-plain leave out AVX-VNNI and the dot-product
 * extension even where the CPU has them, so tests and benchmarks can run
 * the fallback paths. They are never selected automatically. */
enum {
    ISA_SCALAR,
    ISA_AVX2,
    ISA_AVX2_PLAIN,
    ISA_AVX512,
    ISA_NEON,
    ISA_NEON_PLAIN,
    ISA_COUNT
};

static const char *const isa_names[ISA_COUNT] = {
    "scalar", "avx2", "avx2-plain", "avx512", "neon", "neon-plain"};

static kern_cpu cpu;
static kern_ops tables[ISA_COUNT];
static int table_ok[ISA_COUNT];
static char feature_text[256];
/* The selected table; NULL until kern_init has run. An atomic pointer so
 * the per-call check is one acquire load instead of pthread_once. */
static _Atomic(const kern_ops *) active;
static pthread_once_t detect_once = PTHREAD_ONCE_INIT;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

#if defined(ROJ_HAVE_X86)
static uint64_t read_xcr0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void detect_x86(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    uint64_t xcr0 = osxsave ? read_xcr0() : 0;
    /* The OS must save the YMM (bits 1-2) and ZMM (bits 5-7) state. */
    int ymm_os = avx && (xcr0 & 0x6) == 0x6;
    int zmm_os = ymm_os && (xcr0 & 0xe0) == 0xe0;
    int fma = (c >> 12) & 1, f16c = (c >> 29) & 1;

    if (!ymm_os || __get_cpuid_max(0, NULL) < 7)
        return;
    __cpuid_count(7, 0, a, b, c, d);
    cpu.avx2 = (b >> 5) & 1;
    cpu.fma = fma;
    cpu.f16c = f16c;
    if (zmm_os) {
        cpu.avx512f = (b >> 16) & 1;
        cpu.avx512dq = (b >> 17) & 1;
        cpu.avx512bw = (b >> 30) & 1;
        cpu.avx512vl = (b >> 31) & 1;
        cpu.avx512_vnni = (c >> 11) & 1;
        cpu.avx512_fp16 = (d >> 23) & 1;
    }
    __cpuid_count(7, 1, a, b, c, d);
    cpu.avx_vnni = (a >> 4) & 1;
    if (zmm_os)
        cpu.avx512_bf16 = (a >> 5) & 1;
}
#endif

#if defined(ROJ_HAVE_NEON)
static void detect_arm(void)
{
    unsigned long hw = getauxval(AT_HWCAP);
    cpu.neon = 1; /* Advanced SIMD is mandatory on AArch64. */
    cpu.neon_dotprod = (hw >> 20) & 1; /* HWCAP_ASIMDDP */
    cpu.neon_fp16 = (hw >> 10) & 1;    /* HWCAP_ASIMDHP */
}
#endif

/* Per-thread scratch buffer; the key's destructor frees it at thread exit. */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static _Thread_local void *scratch_ptr;
static _Thread_local size_t scratch_cap;

static void scratch_key_create(void)
{
    (void)pthread_key_create(&scratch_key, free);
}

void *kern_scratch(size_t bytes)
{
    if (bytes <= scratch_cap)
        return scratch_ptr;
    pthread_once(&scratch_once, scratch_key_create);
    size_t cap = (bytes + 63) / 64 * 64;
    void *ptr = aligned_alloc(64, cap);
    if (ptr == NULL)
        return NULL;
    free(scratch_ptr);
    scratch_ptr = ptr;
    scratch_cap = cap;
    (void)pthread_setspecific(scratch_key, ptr);
    return ptr;
}

void kern_scalar_matmul(enum roj_type type, const kern_mm_args *args)
{
    tables[ISA_SCALAR].matmul[type](args);
}

static void append_feature(int present, const char *name)
{
    size_t len = strlen(feature_text);
    if (present && len + strlen(name) + 2 < sizeof feature_text)
        snprintf(feature_text + len, sizeof feature_text - len, "%s%s",
                 len ? " " : "", name);
}

static void fill_table(int isa)
{
    kern_ops *ops = &tables[isa];
    kern_scalar_fill(ops);
    ops->name = isa_names[isa];
    table_ok[isa] = isa == ISA_SCALAR;
#if defined(ROJ_HAVE_X86)
    if ((isa == ISA_AVX2 || isa == ISA_AVX2_PLAIN) && cpu.avx2 && cpu.fma &&
        cpu.f16c) {
        kern_cpu plain = cpu;
        plain.avx_vnni = 0;
        kern_avx2_fill(ops, isa == ISA_AVX2 ? &cpu : &plain);
        table_ok[isa] = 1;
    }
    if (isa == ISA_AVX512 && cpu.avx512f && cpu.avx512bw && cpu.avx512vl &&
        cpu.avx512dq && cpu.avx512_vnni && cpu.avx2 && cpu.fma && cpu.f16c) {
        kern_avx512_fill(ops, &cpu);
        table_ok[isa] = 1;
    }
#elif defined(ROJ_HAVE_NEON)
    if (isa == ISA_NEON || isa == ISA_NEON_PLAIN) {
        kern_cpu plain = cpu;
        plain.neon_dotprod = 0;
        kern_neon_fill(ops, isa == ISA_NEON ? &cpu : &plain);
        table_ok[isa] = 1;
    }
#endif
}

static void detect(void)
{
#if defined(ROJ_HAVE_X86)
    detect_x86();
#elif defined(ROJ_HAVE_NEON)
    detect_arm();
#endif
    append_feature(cpu.avx2, "avx2");
    append_feature(cpu.fma, "fma");
    append_feature(cpu.f16c, "f16c");
    append_feature(cpu.avx_vnni, "avx_vnni");
    append_feature(cpu.avx512f, "avx512f");
    append_feature(cpu.avx512bw, "avx512bw");
    append_feature(cpu.avx512dq, "avx512dq");
    append_feature(cpu.avx512vl, "avx512vl");
    append_feature(cpu.avx512_vnni, "avx512_vnni");
    append_feature(cpu.avx512_bf16, "avx512_bf16");
    append_feature(cpu.avx512_fp16, "avx512_fp16");
    append_feature(cpu.neon, "neon");
    append_feature(cpu.neon_dotprod, "dotprod");
    append_feature(cpu.neon_fp16, "fp16");
    for (int isa = 0; isa < ISA_COUNT; isa++)
        fill_table(isa);
}

static int select_isa(const char *isa);

static void init_default(void)
{
    static const int preference[] = {ISA_AVX512, ISA_AVX2, ISA_NEON};
    const char *env = getenv("ROJ_ISA");

    const kern_ops *choice = &tables[ISA_SCALAR];

    pthread_once(&detect_once, detect);
    for (size_t i = 0; i < sizeof preference / sizeof preference[0]; i++) {
        if (table_ok[preference[i]]) {
            choice = &tables[preference[i]];
            break;
        }
    }
    atomic_store_explicit(&active, choice, memory_order_release);
    if (env && *env && select_isa(env) != 0)
        log_warn("kernels: ROJ_ISA=%s is not available on this CPU or "
                 "build; using %s", env, choice->name);
    log_debug("kernels: cpu features [%s], using %s", feature_text,
              atomic_load_explicit(&active, memory_order_relaxed)->name);
}

void kern_init(void)
{
    pthread_once(&init_once, init_default);
}

static inline const kern_ops *ops_get(void)
{
    const kern_ops *ops = atomic_load_explicit(&active, memory_order_acquire);
    if (ops != NULL)
        return ops;
    kern_init();
    return atomic_load_explicit(&active, memory_order_acquire);
}

static int select_isa(const char *isa)
{
    for (int i = 0; i < ISA_COUNT; i++) {
        if (strcmp(isa, isa_names[i]) == 0 && table_ok[i]) {
            atomic_store_explicit(&active, &tables[i], memory_order_release);
            return 0;
        }
    }
    return -1;
}

int kern_select(const char *isa)
{
    kern_init();
    return select_isa(isa);
}

const char *kern_isa(void)
{
    return ops_get()->name;
}

const char *kern_cpu_features(void)
{
    pthread_once(&detect_once, detect);
    return feature_text;
}

enum roj_type kern_act_type(enum roj_type weight_type)
{
    switch (weight_type) {
    case ROJ_TYPE_F32:
        return ROJ_TYPE_F32;
    case ROJ_TYPE_F16:
        return ROJ_TYPE_F16;
    case ROJ_TYPE_BF16:
        return ROJ_TYPE_BF16;
    case ROJ_TYPE_Q4_0:
    case ROJ_TYPE_Q5_0:
    case ROJ_TYPE_Q8_0:
        return ROJ_TYPE_Q8_0;
    case ROJ_TYPE_Q4_1:
    case ROJ_TYPE_Q5_1:
        return ROJ_TYPE_Q8_1;
    case ROJ_TYPE_Q4_K:
    case ROJ_TYPE_Q5_K:
    case ROJ_TYPE_Q6_K:
        return ROJ_TYPE_Q8_K;
    default:
        return ROJ_TYPE_COUNT;
    }
}

size_t kern_act_row_bytes(enum roj_type weight_type, int64_t n_in)
{
    enum roj_type act = kern_act_type(weight_type);
    if (act == ROJ_TYPE_COUNT || qtype_row_bytes(weight_type, n_in) == 0)
        return 0;
    return qtype_row_bytes(act, n_in);
}

void kern_quantize_act(enum roj_type weight_type, const float *x,
                       int64_t x_stride, void *act, int64_t n_in,
                       int64_t n_rows)
{
    const kern_ops *ops = ops_get();
    enum roj_type type = kern_act_type(weight_type);
    size_t row_bytes = kern_act_row_bytes(weight_type, n_in);
    kern_quantize_fn quantize = type < ROJ_TYPE_COUNT ? ops->quantize[type]
                                                      : NULL;

    if (quantize == NULL || row_bytes == 0)
        return;
    for (int64_t i = 0; i < n_rows; i++)
        quantize(x + i * x_stride, (uint8_t *)act + (size_t)i * row_bytes,
                 n_in);
}

void kern_matmul(enum roj_type weight_type, int64_t n_in, const void *w,
                 int64_t row_begin, int64_t row_end, const void *act,
                 int64_t n_tok, float *y, int64_t y_stride)
{
    kern_matmul_rows(weight_type, n_in, w, qtype_row_bytes(weight_type, n_in),
                     row_begin, row_end, act, n_tok, y, y_stride);
}

void kern_matmul_rows(enum roj_type weight_type, int64_t n_in, const void *w,
                      size_t w_row_bytes, int64_t row_begin, int64_t row_end,
                      const void *act, int64_t n_tok, float *y,
                      int64_t y_stride)
{
    const kern_ops *ops = ops_get();
    kern_mm_args args = {
        .n_in = n_in,
        .w = w,
        .w_row_bytes = w_row_bytes,
        .row_begin = row_begin,
        .row_end = row_end,
        .act = act,
        .act_row_bytes = kern_act_row_bytes(weight_type, n_in),
        .n_tok = n_tok,
        .y = y,
        .y_stride = y_stride,
    };

    if ((unsigned)weight_type >= ROJ_TYPE_COUNT ||
        ops->matmul[weight_type] == NULL || args.act_row_bytes == 0 ||
        row_end <= row_begin || n_tok <= 0)
        return;
    ops->matmul[weight_type](&args);
}

void kern_dequantize_row(enum roj_type type, const void *row, float *out,
                         int64_t n)
{
    (void)kern_scalar_dequantize(type, row, out, n);
}

float kern_dot_f16(const uint16_t *a, const uint16_t *b, int64_t n)
{
    return ops_get()->dot_f16(a, b, n);
}

void kern_axpy_f16(float *y, float a, const uint16_t *x, int64_t n)
{
    ops_get()->axpy_f16(y, a, x, n);
}

float kern_dot_f32(const float *a, const float *b, int64_t n)
{
    return ops_get()->dot_f32(a, b, n);
}

void kern_axpy_f32(float *y, float a, const float *x, int64_t n)
{
    ops_get()->axpy_f32(y, a, x, n);
}

void kern_f32_to_f16(const float *x, uint16_t *y, int64_t n)
{
    ops_get()->f32_to_f16(x, y, n);
}

void kern_round_f16(float *x, int64_t n)
{
    ops_get()->round_f16(x, n);
}

void kern_swiglu(float *gate, const float *up, int64_t n)
{
    ops_get()->swiglu(gate, up, n);
}

void kern_attn_scores_f16(const float *q, const uint16_t *k, int64_t k_stride,
                          int64_t n_keys, int64_t head_dim, float scale,
                          float *scores)
{
    ops_get()->attn_scores_f16(q, k, k_stride, n_keys, head_dim, scale,
                               scores);
}

void kern_attn_values_f16(float *out, const float *w, const uint16_t *v,
                          int64_t v_stride, int64_t n, int64_t head_dim)
{
    ops_get()->attn_values_f16(out, w, v, v_stride, n, head_dim);
}
