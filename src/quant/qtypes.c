#include "quant/qtypes.h"

static const roj_type_info type_table[ROJ_TYPE_COUNT] = {
    [ROJ_TYPE_F32] = {"F32", 1, 4, 1},
    [ROJ_TYPE_F16] = {"F16", 1, 2, 1},
    [ROJ_TYPE_Q4_0] = {"Q4_0", QK4_0, sizeof(block_q4_0), 1},
    [ROJ_TYPE_Q4_1] = {"Q4_1", QK4_1, sizeof(block_q4_1), 1},
    [4] = {"Q4_2 (removed)", 0, 0, 0},
    [5] = {"Q4_3 (removed)", 0, 0, 0},
    [ROJ_TYPE_Q5_0] = {"Q5_0", QK5_0, sizeof(block_q5_0), 1},
    [ROJ_TYPE_Q5_1] = {"Q5_1", QK5_1, sizeof(block_q5_1), 1},
    [ROJ_TYPE_Q8_0] = {"Q8_0", QK8_0, sizeof(block_q8_0), 1},
    [ROJ_TYPE_Q8_1] = {"Q8_1", QK8_1, sizeof(block_q8_1), 0},
    [ROJ_TYPE_Q2_K] = {"Q2_K", QK_K, sizeof(block_q2_K), 0},
    [ROJ_TYPE_Q3_K] = {"Q3_K", QK_K, sizeof(block_q3_K), 0},
    [ROJ_TYPE_Q4_K] = {"Q4_K", QK_K, sizeof(block_q4_K), 1},
    [ROJ_TYPE_Q5_K] = {"Q5_K", QK_K, sizeof(block_q5_K), 1},
    [ROJ_TYPE_Q6_K] = {"Q6_K", QK_K, sizeof(block_q6_K), 1},
    [ROJ_TYPE_Q8_K] = {"Q8_K", QK_K, sizeof(block_q8_K), 0},
    [ROJ_TYPE_IQ2_XXS] = {"IQ2_XXS", QK_K, 66, 0},
    [ROJ_TYPE_IQ2_XS] = {"IQ2_XS", QK_K, 74, 0},
    [ROJ_TYPE_IQ3_XXS] = {"IQ3_XXS", QK_K, 98, 0},
    [ROJ_TYPE_IQ1_S] = {"IQ1_S", QK_K, 50, 0},
    [ROJ_TYPE_IQ4_NL] = {"IQ4_NL", 32, 18, 0},
    [ROJ_TYPE_IQ3_S] = {"IQ3_S", QK_K, 110, 0},
    [ROJ_TYPE_IQ2_S] = {"IQ2_S", QK_K, 82, 0},
    [ROJ_TYPE_IQ4_XS] = {"IQ4_XS", QK_K, 136, 0},
    [ROJ_TYPE_I8] = {"I8", 1, 1, 0},
    [ROJ_TYPE_I16] = {"I16", 1, 2, 0},
    [ROJ_TYPE_I32] = {"I32", 1, 4, 0},
    [ROJ_TYPE_I64] = {"I64", 1, 8, 0},
    [ROJ_TYPE_F64] = {"F64", 1, 8, 0},
    [ROJ_TYPE_IQ1_M] = {"IQ1_M", QK_K, 56, 0},
    [ROJ_TYPE_BF16] = {"BF16", 1, 2, 1},
    [31] = {"Q4_0_4_4 (removed)", 0, 0, 0},
    [32] = {"Q4_0_4_8 (removed)", 0, 0, 0},
    [33] = {"Q4_0_8_8 (removed)", 0, 0, 0},
    [ROJ_TYPE_TQ1_0] = {"TQ1_0", QK_K, 54, 0},
    [ROJ_TYPE_TQ2_0] = {"TQ2_0", QK_K, 66, 0},
    [36] = {"IQ4_NL_4_4 (removed)", 0, 0, 0},
    [37] = {"IQ4_NL_4_8 (removed)", 0, 0, 0},
    [38] = {"IQ4_NL_8_8 (removed)", 0, 0, 0},
};

static const roj_type_info unknown_type = {"unknown", 0, 0, 0};

const roj_type_info *qtype_info(uint32_t type)
{
    if (type >= ROJ_TYPE_COUNT || type_table[type].name == NULL)
        return &unknown_type;
    return &type_table[type];
}

const char *qtype_name(uint32_t type)
{
    return qtype_info(type)->name;
}

size_t qtype_row_bytes(uint32_t type, int64_t n)
{
    const roj_type_info *info = qtype_info(type);
    if (info->block_size == 0 || n < 0 || n % info->block_size != 0)
        return 0;
    return (size_t)(n / info->block_size) * info->type_size;
}
