/* Internal parts of the whole-file quantizer (quant_mix.c and
 * quantize_file.c). */
#ifndef ROJ_QUANT_QUANTIZE_FILE_IMPL_H
#define ROJ_QUANT_QUANTIZE_FILE_IMPL_H

#include <stdbool.h>

#include "gguf/gguf.h"
#include "quant/qtypes.h"
#include "quant/quantize_file.h"

/* Model facts and running counters used by the mix rules. */
struct quant_mix_state {
    int n_layer;       /* <arch>.block_count */
    int n_gqa;         /* head_count / head_count_kv */
    int n_attn_v;      /* tensors named like attn_v, attn_qkv, attn_kv_b */
    int i_attn_v;      /* attn_v tensors typed so far */
    int i_ffn_down;    /* ffn_down tensors typed so far */
    bool has_output;   /* output.weight exists (embeddings not tied) */
    bool is_falcon;
    bool is_70b;
};

/* Reads the facts from in's metadata and tensor names. */
roj_status quant_mix_state_init(const gguf_file *in,
                                struct quant_mix_state *qs);

/* Chooses the type of t, advancing the counters; tensors must be visited
 * in quant_tensor_order(). */
roj_status quant_mix_tensor_type(struct quant_mix_state *qs,
                                 const gguf_tensor *t, enum quant_ftype ftype,
                                 bool pure, uint32_t *type_out);

/* Returns whether t is converted at all (2-D or more, not a norm ...). */
bool quant_tensor_is_quantizable(const gguf_tensor *t);

/* Default tensor type of ftype, ROJ_TYPE_COUNT when unknown. */
enum roj_type quant_ftype_default_type(enum quant_ftype ftype);

/* Fills order[0 .. n_tensors) with tensor indexes of in sorted as
 * llama-quantize processes and writes them: by the layer number N of a
 * "blk.N." prefix (-1 without one), then by name. */
void quant_tensor_order(const gguf_file *in, int64_t *order);

#endif
