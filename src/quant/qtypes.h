/*
 * Tensor element types and quantization block layouts.
 *
 * The numeric type ids and the byte layout of every block are fixed by the
 * GGUF format (they are ggml's), so files written by llama.cpp and by roj
 * are interchangeable. Blocks are packed little-endian structs; F16 fields
 * are IEEE half floats stored as uint16_t.
 */
#ifndef ROJ_QUANT_QTYPES_H
#define ROJ_QUANT_QTYPES_H

#include <stddef.h>
#include <stdint.h>

#include "roj/roj.h"

enum roj_type {
    ROJ_TYPE_F32 = 0,
    ROJ_TYPE_F16 = 1,
    ROJ_TYPE_Q4_0 = 2,
    ROJ_TYPE_Q4_1 = 3,
    ROJ_TYPE_Q5_0 = 6,
    ROJ_TYPE_Q5_1 = 7,
    ROJ_TYPE_Q8_0 = 8,
    ROJ_TYPE_Q8_1 = 9,
    ROJ_TYPE_Q2_K = 10,
    ROJ_TYPE_Q3_K = 11,
    ROJ_TYPE_Q4_K = 12,
    ROJ_TYPE_Q5_K = 13,
    ROJ_TYPE_Q6_K = 14,
    ROJ_TYPE_Q8_K = 15,
    ROJ_TYPE_IQ2_XXS = 16,
    ROJ_TYPE_IQ2_XS = 17,
    ROJ_TYPE_IQ3_XXS = 18,
    ROJ_TYPE_IQ1_S = 19,
    ROJ_TYPE_IQ4_NL = 20,
    ROJ_TYPE_IQ3_S = 21,
    ROJ_TYPE_IQ2_S = 22,
    ROJ_TYPE_IQ4_XS = 23,
    ROJ_TYPE_I8 = 24,
    ROJ_TYPE_I16 = 25,
    ROJ_TYPE_I32 = 26,
    ROJ_TYPE_I64 = 27,
    ROJ_TYPE_F64 = 28,
    ROJ_TYPE_IQ1_M = 29,
    ROJ_TYPE_BF16 = 30,
    ROJ_TYPE_TQ1_0 = 34,
    ROJ_TYPE_TQ2_0 = 35,
    ROJ_TYPE_COUNT = 39
};

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32
#define QK_K 256
#define K_SCALE_SIZE 12

/* x = d * (q - 8); qs[j] holds element j in the low nibble and element
 * j + 16 in the high nibble. */
typedef struct {
    uint16_t d;
    uint8_t qs[QK4_0 / 2];
} block_q4_0;

/* x = d * q + m */
typedef struct {
    uint16_t d;
    uint16_t m;
    uint8_t qs[QK4_1 / 2];
} block_q4_1;

/* x = d * (q - 16); bit j of qh is the fifth bit of element j. */
typedef struct {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[QK5_0 / 2];
} block_q5_0;

typedef struct {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[QK5_1 / 2];
} block_q5_1;

/* x = d * q */
typedef struct {
    uint16_t d;
    int8_t qs[QK8_0];
} block_q8_0;

/* s = d * sum(qs), kept for the Q4_1/Q5_1 dot products. */
typedef struct {
    uint16_t d;
    uint16_t s;
    int8_t qs[QK8_1];
} block_q8_1;

typedef struct {
    uint8_t scales[QK_K / 16]; /* 4-bit scale and 4-bit min per 16 */
    uint8_t qs[QK_K / 4];
    uint16_t d;
    uint16_t dmin;
} block_q2_K;

typedef struct {
    uint8_t hmask[QK_K / 8];
    uint8_t qs[QK_K / 4];
    uint8_t scales[12]; /* sixteen 6-bit scales */
    uint16_t d;
} block_q3_K;

/* Eight sub-blocks of 32 with 6-bit scales and mins packed in scales[]. */
typedef struct {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qs[QK_K / 2];
} block_q4_K;

typedef struct {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} block_q5_K;

/* Sixteen sub-blocks of 16 with int8 scales; x = d * scale * (q - 32). */
typedef struct {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    uint16_t d;
} block_q6_K;

/* Activation format for the K-quant dot products: float scale, int8
 * values and the sums of each group of 16. */
typedef struct {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
} block_q8_K;

_Static_assert(sizeof(block_q4_0) == 18, "block_q4_0 size");
_Static_assert(sizeof(block_q4_1) == 20, "block_q4_1 size");
_Static_assert(sizeof(block_q5_0) == 22, "block_q5_0 size");
_Static_assert(sizeof(block_q5_1) == 24, "block_q5_1 size");
_Static_assert(sizeof(block_q8_0) == 34, "block_q8_0 size");
_Static_assert(sizeof(block_q8_1) == 36, "block_q8_1 size");
_Static_assert(sizeof(block_q2_K) == 84, "block_q2_K size");
_Static_assert(sizeof(block_q3_K) == 110, "block_q3_K size");
_Static_assert(sizeof(block_q4_K) == 144, "block_q4_K size");
_Static_assert(sizeof(block_q5_K) == 176, "block_q5_K size");
_Static_assert(sizeof(block_q6_K) == 210, "block_q6_K size");
_Static_assert(sizeof(block_q8_K) == 292, "block_q8_K size");

/* Size facts of one type. A type roj cannot compute with still has a name
 * and a size when the format defines them, so files can be inspected. */
typedef struct {
    const char *name;     /* "Q4_K", as llama.cpp prints it */
    int block_size;       /* elements per block; 0 for an unknown id */
    size_t type_size;     /* bytes per block */
    int supported;        /* roj can dequantize and multiply it */
} roj_type_info;

/* Returns the facts of a type id; an id outside the format gives a record
 * with block_size 0 and name "unknown". */
const roj_type_info *qtype_info(uint32_t type);
const char *qtype_name(uint32_t type);

/* Returns the bytes of a row of n elements, or 0 when n is not a multiple
 * of the block size or the type is unknown. */
size_t qtype_row_bytes(uint32_t type, int64_t n);

#endif
