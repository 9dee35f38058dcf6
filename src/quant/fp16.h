/* Conversions between float and the 16-bit float formats, rounding to
 * nearest even like the F16C instructions, so results match ggml's. */
#ifndef ROJ_QUANT_FP16_H
#define ROJ_QUANT_FP16_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float fp32_from_bits(uint32_t w)
{
    float f;
    memcpy(&f, &w, sizeof f);
    return f;
}

static inline uint32_t fp32_to_bits(float f)
{
    uint32_t w;
    memcpy(&w, &f, sizeof w);
    return w;
}

/* IEEE binary16 to float: exact. */
static inline float fp16_to_fp32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1fu;
    const uint32_t mantissa = h & 0x3ffu;

    if (exponent == 0) {
        /* Zero or subnormal: mantissa * 2^-24 is exact in float. */
        float magnitude = (float)mantissa * 5.9604644775390625e-8f;
        return fp32_from_bits(sign | fp32_to_bits(magnitude));
    }
    if (exponent == 31)
        return fp32_from_bits(sign | 0x7f800000u | (mantissa << 13));
    return fp32_from_bits(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

/* float to IEEE binary16, rounding to nearest even as F16C does; NaN
 * becomes the quiet NaN 0x7e00 and values of 65520 or more become
 * infinity. */
static inline uint16_t fp32_to_fp16(float f)
{
    const uint32_t bits = fp32_to_bits(f);
    const uint16_t sign = (uint16_t)((bits >> 16) & 0x8000u);
    const uint32_t magnitude = bits & 0x7fffffffu;

    if (magnitude > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00u);
    if (magnitude >= 0x477ff000u)
        return (uint16_t)(sign | 0x7c00u);
    if (magnitude < 0x38800000u) {
        /* Below the smallest normal half: count units of 2^-24. The
         * product is exact and lrintf rounds half to even. */
        float units = fp32_from_bits(magnitude) * 16777216.0f;
        return (uint16_t)(sign | (uint16_t)lrintf(units));
    }
    /* Normal: round the 13 dropped mantissa bits to nearest even; a carry
     * moves into the exponent, which is the correct result. */
    uint32_t rounded = magnitude + 0xfffu + ((magnitude >> 13) & 1u);
    return (uint16_t)(sign | ((rounded >> 13) - (112u << 10)));
}

static inline float bf16_to_fp32(uint16_t h)
{
    return fp32_from_bits((uint32_t)h << 16);
}

/* float to bfloat16, round to nearest even; NaN is kept quiet. */
static inline uint16_t fp32_to_bf16(float f)
{
    uint32_t u = fp32_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 64);
    return (uint16_t)((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}

#endif
