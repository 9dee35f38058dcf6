/* AVX-VNNI versions of the AVX2 quantized products
 * (quant_avx2_impl.h); compiled with -mavxvnni and called only on CPUs
 * that have it. */
#define QUANT_AVX2_VNNI 1
#include "kernels/quant_avx2_impl.h"

static void q4_0_v(const kern_mm_args *p) { q32_matmul(1, Q32_Q4_0, p); }
static void q4_1_v(const kern_mm_args *p) { q32_matmul(1, Q32_Q4_1, p); }
static void q5_0_v(const kern_mm_args *p) { q32_matmul(1, Q32_Q5_0, p); }
static void q5_1_v(const kern_mm_args *p) { q32_matmul(1, Q32_Q5_1, p); }
static void q8_0_v(const kern_mm_args *p) { q32_matmul(1, Q32_Q8_0, p); }
static void q4_K_v(const kern_mm_args *p) { kq_matmul(1, KQ_Q4_K, p); }
static void q5_K_v(const kern_mm_args *p) { kq_matmul(1, KQ_Q5_K, p); }
static void q6_K_v(const kern_mm_args *p) { kq_matmul(1, KQ_Q6_K, p); }

void kern_avxvnni_fill_quant(kern_ops *ops);

void kern_avxvnni_fill_quant(kern_ops *ops)
{
    ops->matmul[ROJ_TYPE_Q4_0] = q4_0_v;
    ops->matmul[ROJ_TYPE_Q4_1] = q4_1_v;
    ops->matmul[ROJ_TYPE_Q5_0] = q5_0_v;
    ops->matmul[ROJ_TYPE_Q5_1] = q5_1_v;
    ops->matmul[ROJ_TYPE_Q8_0] = q8_0_v;
    ops->matmul[ROJ_TYPE_Q4_K] = q4_K_v;
    ops->matmul[ROJ_TYPE_Q5_K] = q5_K_v;
    ops->matmul[ROJ_TYPE_Q6_K] = q6_K_v;
}
