/* Attention over the KV cache; see attention.c for the cache layout. */
#ifndef ROJ_MODEL_ATTENTION_H
#define ROJ_MODEL_ATTENTION_H

#include "model/model_internal.h"

/* Query tokens of one sequence handled together per KV head. */
#define ATTN_BLOCK 16

/* Bytes of attention scratch one thread needs. */
size_t attn_scratch_bytes(const hparams *hp, int32_t n_ctx);

/* Element offset of KV head g of a layer and sequence in k_cache and
 * v_cache (the two share the layout size). */
size_t attn_k_offset(const roj_context *c, int il, int32_t seq, int g);

/* Writes batch token t's K and V rows (kv_dim floats each) to the cache at
 * its position. */
void attn_store(roj_context *c, int il, int32_t t, const float *k,
                const float *v);

/* Computes ctx->attn for the n_tok batch tokens of layer il from ctx->q
 * and the cache. */
void attn_run(roj_context *c, int il, int32_t n_tok);

#endif
