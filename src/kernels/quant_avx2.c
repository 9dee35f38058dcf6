/* AVX2 matrix products for the quantized types without AVX-VNNI
 * (quant_avx2_impl.h), and the table that picks them or the AVX-VNNI
 * versions of quant_avxvnni.c. */
#define QUANT_AVX2_VNNI 0
#include "kernels/quant_avx2_impl.h"

static void q4_0_p(const kern_mm_args *p) { q32_matmul(0, Q32_Q4_0, p); }
static void q4_1_p(const kern_mm_args *p) { q32_matmul(0, Q32_Q4_1, p); }
static void q5_0_p(const kern_mm_args *p) { q32_matmul(0, Q32_Q5_0, p); }
static void q5_1_p(const kern_mm_args *p) { q32_matmul(0, Q32_Q5_1, p); }
static void q8_0_p(const kern_mm_args *p) { q32_matmul(0, Q32_Q8_0, p); }
static void q4_K_p(const kern_mm_args *p) { kq_matmul(0, KQ_Q4_K, p); }
static void q5_K_p(const kern_mm_args *p) { kq_matmul(0, KQ_Q5_K, p); }
static void q6_K_p(const kern_mm_args *p) { kq_matmul(0, KQ_Q6_K, p); }

/* Sets the AVX2 quantized products; vnni selects the AVX-VNNI versions. */
void kern_avx2_fill_quant(kern_ops *ops, int vnni);
/* Sets the AVX-VNNI versions (quant_avxvnni.c). */
void kern_avxvnni_fill_quant(kern_ops *ops);

void kern_avx2_fill_quant(kern_ops *ops, int vnni)
{
    if (vnni) {
        kern_avxvnni_fill_quant(ops);
        return;
    }
    ops->matmul[ROJ_TYPE_Q4_0] = q4_0_p;
    ops->matmul[ROJ_TYPE_Q4_1] = q4_1_p;
    ops->matmul[ROJ_TYPE_Q5_0] = q5_0_p;
    ops->matmul[ROJ_TYPE_Q5_1] = q5_1_p;
    ops->matmul[ROJ_TYPE_Q8_0] = q8_0_p;
    ops->matmul[ROJ_TYPE_Q4_K] = q4_K_p;
    ops->matmul[ROJ_TYPE_Q5_K] = q5_K_p;
    ops->matmul[ROJ_TYPE_Q6_K] = q6_K_p;
}
