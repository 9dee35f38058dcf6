/*
 * Tensor type choice for each file type, following llama.cpp's
 * llama_tensor_get_type (commit c392e5094) for dense models.
 *
 * The counters i_attn_v and i_ffn_down advance in llama-quantize's
 * processing order (see quant_tensor_order), which visits the layers in
 * numeric order, so they equal the layer index for ordinary models.
 *
 * NOTE: llama.cpp's rules for 8-expert MoE models and for the IQ file
 * types are not implemented, so an MoE model gets the dense choices.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "quant/qtypes.h"
#include "quant/quantize_file.h"
#include "quant/quantize_file_impl.h"

static const struct {
    const char *name;
    enum quant_ftype ftype;
    enum roj_type default_type;
} ftype_table[] = {
    {"F32", QUANT_FTYPE_ALL_F32, ROJ_TYPE_F32},
    {"F16", QUANT_FTYPE_F16, ROJ_TYPE_F16},
    {"BF16", QUANT_FTYPE_BF16, ROJ_TYPE_BF16},
    {"Q8_0", QUANT_FTYPE_Q8_0, ROJ_TYPE_Q8_0},
    {"Q4_0", QUANT_FTYPE_Q4_0, ROJ_TYPE_Q4_0},
    {"Q4_1", QUANT_FTYPE_Q4_1, ROJ_TYPE_Q4_1},
    {"Q5_0", QUANT_FTYPE_Q5_0, ROJ_TYPE_Q5_0},
    {"Q5_1", QUANT_FTYPE_Q5_1, ROJ_TYPE_Q5_1},
    {"Q2_K", QUANT_FTYPE_Q2_K, ROJ_TYPE_Q2_K},
    {"Q3_K_S", QUANT_FTYPE_Q3_K_S, ROJ_TYPE_Q3_K},
    {"Q3_K_M", QUANT_FTYPE_Q3_K_M, ROJ_TYPE_Q3_K},
    {"Q3_K_L", QUANT_FTYPE_Q3_K_L, ROJ_TYPE_Q3_K},
    {"Q4_K_S", QUANT_FTYPE_Q4_K_S, ROJ_TYPE_Q4_K},
    {"Q4_K_M", QUANT_FTYPE_Q4_K_M, ROJ_TYPE_Q4_K},
    {"Q5_K_S", QUANT_FTYPE_Q5_K_S, ROJ_TYPE_Q5_K},
    {"Q5_K_M", QUANT_FTYPE_Q5_K_M, ROJ_TYPE_Q5_K},
    {"Q6_K", QUANT_FTYPE_Q6_K, ROJ_TYPE_Q6_K},
};

#define N_FTYPES (sizeof ftype_table / sizeof ftype_table[0])

/* Short names llama-quantize accepts for the medium mixes. */
static const struct {
    const char *alias;
    enum quant_ftype ftype;
} ftype_aliases[] = {
    {"Q3_K", QUANT_FTYPE_Q3_K_M},
    {"Q4_K", QUANT_FTYPE_Q4_K_M},
    {"Q5_K", QUANT_FTYPE_Q5_K_M},
};

void quant_ftype_list(char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_FTYPES && used < size; i++) {
        int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
                         ftype_table[i].name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

roj_status quant_ftype_parse(const char *name, enum quant_ftype *out)
{
    for (size_t i = 0; i < N_FTYPES; i++) {
        if (strcasecmp(name, ftype_table[i].name) == 0) {
            *out = ftype_table[i].ftype;
            return ROJ_OK;
        }
    }
    for (size_t i = 0; i < sizeof ftype_aliases / sizeof ftype_aliases[0];
         i++) {
        if (strcasecmp(name, ftype_aliases[i].alias) == 0) {
            *out = ftype_aliases[i].ftype;
            return ROJ_OK;
        }
    }
    char valid[256];
    quant_ftype_list(valid, sizeof valid);
    return roj_error(ROJ_ERR_INVALID_ARG,
                     "unknown quantization type '%s' (valid: %s; Q3_K, Q4_K "
                     "and Q5_K mean the _M mixes)", name, valid);
}

const char *quant_ftype_name(enum quant_ftype ftype)
{
    for (size_t i = 0; i < N_FTYPES; i++)
        if (ftype_table[i].ftype == ftype)
            return ftype_table[i].name;
    return "unknown";
}

enum roj_type quant_ftype_default_type(enum quant_ftype ftype)
{
    for (size_t i = 0; i < N_FTYPES; i++)
        if (ftype_table[i].ftype == ftype)
            return ftype_table[i].default_type;
    return ROJ_TYPE_COUNT;
}

static bool is_block_type(enum roj_type type)
{
    return qtype_info(type)->block_size > 1;
}

static bool contains(const char *s, const char *part)
{
    return strstr(s, part) != NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Returns whether llama-quantize converts the tensor at all: weights of
 * two or more dimensions, except norms, MoE routers and the small
 * special-purpose tensors of a few architectures. */
bool quant_tensor_is_quantizable(const gguf_tensor *t)
{
    static const char *const kept[] = {
        "_norm.weight", "ffn_gate_inp.weight", "ssm_conv1d",
        "time_mix_first.weight", "time_mix_w1.weight", "time_mix_w2.weight",
        "time_mix_decay_w1.weight", "time_mix_decay_w2.weight",
        "time_mix_lerp_fused.weight", "attn_rel_b.weight",
    };
    int n_dims = 0;
    for (uint32_t d = 0; d < t->n_dims; d++)
        if (t->ne[d] > 1)
            n_dims = (int)d + 1;
    if (n_dims < 2 || !ends_with(t->name, "weight"))
        return false;
    if (!strcmp(t->name, "position_embd.weight") ||
        !strcmp(t->name, "token_types.weight"))
        return false;
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        if (contains(t->name, kept[i]))
            return false;
    return true;
}

static bool use_more_bits(int i_layer, int n_layers)
{
    return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 ||
           (i_layer - n_layers / 8) % 3 == 2;
}

/* Type of the output projection (or the tied token embedding). */
static enum roj_type output_type(const struct quant_mix_state *qs,
                                 const gguf_tensor *t, enum roj_type type)
{
    if (qs->is_falcon || t->ne[0] % QK_K != 0)
        return ROJ_TYPE_Q8_0;
    return type == ROJ_TYPE_Q8_0 ? type : ROJ_TYPE_Q6_K;
}

static enum roj_type attn_v_type(struct quant_mix_state *qs,
                                 enum quant_ftype ftype, enum roj_type type)
{
    const int i = qs->i_attn_v++;
    if (ftype == QUANT_FTYPE_Q2_K)
        type = qs->n_gqa >= 4 ? ROJ_TYPE_Q4_K : ROJ_TYPE_Q3_K;
    else if (ftype == QUANT_FTYPE_Q3_K_M)
        type = i < 2 ? ROJ_TYPE_Q5_K : ROJ_TYPE_Q4_K;
    else if (ftype == QUANT_FTYPE_Q3_K_L)
        type = ROJ_TYPE_Q5_K;
    else if ((ftype == QUANT_FTYPE_Q4_K_M || ftype == QUANT_FTYPE_Q5_K_M) &&
             use_more_bits(i, qs->n_attn_v))
        type = ROJ_TYPE_Q6_K;
    else if (ftype == QUANT_FTYPE_Q4_K_S && i < 4)
        type = ROJ_TYPE_Q5_K;
    /* llama.cpp's 70B type: 80 llama layers with grouped-query attention,
     * whose attn_v is 8 times smaller than attn_q. */
    if (qs->is_70b && (type == ROJ_TYPE_Q3_K || type == ROJ_TYPE_Q4_K))
        type = ROJ_TYPE_Q5_K;
    return type;
}

static enum roj_type ffn_down_type(struct quant_mix_state *qs,
                                   enum quant_ftype ftype, enum roj_type type)
{
    const int i = qs->i_ffn_down++, n = qs->n_layer;
    switch (ftype) {
    case QUANT_FTYPE_Q2_K:
        return ROJ_TYPE_Q3_K;
    case QUANT_FTYPE_Q3_K_M:
        if (i < n / 16)
            return ROJ_TYPE_Q5_K;
        return !qs->is_falcon || use_more_bits(i, n) ? ROJ_TYPE_Q4_K
                                                     : ROJ_TYPE_Q3_K;
    case QUANT_FTYPE_Q3_K_L:
        return qs->is_falcon ? ROJ_TYPE_Q4_K : ROJ_TYPE_Q5_K;
    case QUANT_FTYPE_Q4_K_M:
        if (qs->is_falcon)
            return i < n / 16 ? ROJ_TYPE_Q6_K
                   : use_more_bits(i, n) ? ROJ_TYPE_Q5_K : ROJ_TYPE_Q4_K;
        return use_more_bits(i, n) ? ROJ_TYPE_Q6_K : type;
    case QUANT_FTYPE_Q5_K_M:
        return use_more_bits(i, n) ? ROJ_TYPE_Q6_K : type;
    case QUANT_FTYPE_Q4_K_S:
        return !qs->is_falcon && i < n / 8 ? ROJ_TYPE_Q5_K : type;
    default:
        return type;
    }
}

static enum roj_type attn_output_type(const struct quant_mix_state *qs,
                                      enum quant_ftype ftype,
                                      enum roj_type type)
{
    if (qs->is_falcon)
        return ftype == QUANT_FTYPE_Q3_K_L ? ROJ_TYPE_Q4_K : type;
    if (ftype == QUANT_FTYPE_Q2_K)
        return ROJ_TYPE_Q3_K;
    if (ftype == QUANT_FTYPE_Q3_K_M)
        return ROJ_TYPE_Q4_K;
    if (ftype == QUANT_FTYPE_Q3_K_L)
        return ROJ_TYPE_Q5_K;
    return type;
}

static enum roj_type attn_qkv_type(enum quant_ftype ftype, enum roj_type type)
{
    if (ftype == QUANT_FTYPE_Q3_K_M || ftype == QUANT_FTYPE_Q3_K_L)
        return ROJ_TYPE_Q4_K;
    if (ftype == QUANT_FTYPE_Q4_K_M)
        return ROJ_TYPE_Q5_K;
    if (ftype == QUANT_FTYPE_Q5_K_M)
        return ROJ_TYPE_Q6_K;
    return type;
}

/* The rules by tensor role; type is the ftype's default. */
static enum roj_type mix_rule_type(struct quant_mix_state *qs,
                                   const gguf_tensor *t,
                                   enum quant_ftype ftype, enum roj_type type)
{
    const char *name = t->name;
    if (!strcmp(name, "output.weight") ||
        (!qs->has_output && !strcmp(name, "token_embd.weight")))
        return output_type(qs, t, type);
    if (!strcmp(name, "token_embd.weight"))
        return type;
    if (contains(name, "attn_v.weight"))
        return attn_v_type(qs, ftype, type);
    if (contains(name, "attn_k.weight") || contains(name, "attn_q.weight"))
        return type;
    if (contains(name, "ffn_down"))
        return ffn_down_type(qs, ftype, type);
    if (contains(name, "attn_output.weight"))
        return attn_output_type(qs, ftype, type);
    if (contains(name, "attn_qkv.weight"))
        return attn_qkv_type(ftype, type);
    return type;
}

/* Replaces a type whose block does not divide the row size. */
static roj_status fallback_type(const gguf_tensor *t, enum roj_type *type)
{
    const int64_t ncols = t->ne[0];
    if (ncols % qtype_info(*type)->block_size == 0)
        return ROJ_OK;
    switch (*type) {
    case ROJ_TYPE_Q4_K: *type = ROJ_TYPE_Q5_0; break;
    case ROJ_TYPE_Q5_K: *type = ROJ_TYPE_Q5_1; break;
    case ROJ_TYPE_Q6_K: *type = ROJ_TYPE_Q8_0; break;
    case ROJ_TYPE_Q2_K:
    case ROJ_TYPE_Q3_K:
        return roj_error(ROJ_ERR_UNSUPPORTED,
                         "tensor %s: row size %lld is not a multiple of 256, "
                         "and llama.cpp's fallback for %s is IQ4_NL, which "
                         "roj cannot write", t->name, (long long)ncols,
                         qtype_name(*type));
    default:
        return roj_error(ROJ_ERR_UNSUPPORTED,
                         "tensor %s: row size %lld does not fit %s blocks of "
                         "%d and no fallback type is defined", t->name,
                         (long long)ncols, qtype_name(*type),
                         qtype_info(*type)->block_size);
    }
    if (ncols % qtype_info(*type)->block_size != 0)
        *type = ROJ_TYPE_F16;
    return ROJ_OK;
}

roj_status quant_mix_state_init(const gguf_file *in,
                                struct quant_mix_state *qs)
{
    char key[160];
    const char *arch = "llama";
    uint32_t n_layer = 0, n_head = 1, n_head_kv = 1;

    memset(qs, 0, sizeof *qs);
    if (gguf_get_str(in, "general.architecture", &arch, NULL) != ROJ_OK)
        arch = "llama";
    snprintf(key, sizeof key, "%s.block_count", arch);
    if (gguf_get_u32(in, key, &n_layer) != ROJ_OK)
        n_layer = 0;
    snprintf(key, sizeof key, "%s.attention.head_count", arch);
    if (gguf_get_u32(in, key, &n_head) != ROJ_OK || n_head == 0)
        n_head = 1;
    snprintf(key, sizeof key, "%s.attention.head_count_kv", arch);
    if (gguf_get_u32(in, key, &n_head_kv) != ROJ_OK || n_head_kv == 0)
        n_head_kv = n_head;
    roj_error_clear();

    qs->n_layer = (int)n_layer;
    qs->n_gqa = (int)(n_head / n_head_kv);
    qs->is_falcon = !strcmp(arch, "falcon");
    qs->is_70b = !strcmp(arch, "llama") && n_layer == 80 &&
                 n_head != n_head_kv;
    for (int64_t i = 0; i < gguf_n_tensors(in); i++) {
        const char *name = gguf_tensor_at(in, i)->name;
        if (!strcmp(name, "output.weight"))
            qs->has_output = true;
        if (contains(name, "attn_v.weight") ||
            contains(name, "attn_qkv.weight") ||
            contains(name, "attn_kv_b.weight"))
            qs->n_attn_v++;
    }
    return ROJ_OK;
}

roj_status quant_mix_tensor_type(struct quant_mix_state *qs,
                                 const gguf_tensor *t, enum quant_ftype ftype,
                                 bool pure, uint32_t *type_out)
{
    enum roj_type type = quant_ftype_default_type(ftype);
    if (type == ROJ_TYPE_COUNT)
        return roj_error(ROJ_ERR_INVALID_ARG, "unknown file type %d",
                         (int)ftype);
    if (!quant_tensor_is_quantizable(t)) {
        *type_out = t->type;
        return ROJ_OK;
    }
    if (is_block_type(type)) {
        if (pure) {
            if (t->ne[0] % qtype_info(type)->block_size != 0)
                return roj_error(ROJ_ERR_UNSUPPORTED,
                                 "tensor %s: row size %lld is not a multiple "
                                 "of the %s block size %d (run without "
                                 "--pure to fall back)", t->name,
                                 (long long)t->ne[0], qtype_name(type),
                                 qtype_info(type)->block_size);
        } else {
            type = mix_rule_type(qs, t, ftype, type);
            roj_status st = fallback_type(t, &type);
            if (st != ROJ_OK)
                return st;
        }
    }
    *type_out = type;
    return ROJ_OK;
}
