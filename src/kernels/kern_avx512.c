/* AVX-512 kernels (placeholder while the real ones are written). */
#include "kernels/kern_impl.h"

void kern_avx512_fill(kern_ops *ops, const kern_cpu *cpu)
{
    (void)ops;
    (void)cpu;
}
