/* Internal layout of roj_model and roj_context, shared by the loader, the
 * forward pass and the context code. */
#ifndef ROJ_MODEL_INTERNAL_H
#define ROJ_MODEL_INTERNAL_H

#include <stdint.h>

#include "core/threadpool.h"
#include "gguf/gguf.h"
#include "quant/qtypes.h"
#include "roj/context.h"
#include "roj/model.h"

enum model_arch { ARCH_LLAMA, ARCH_QWEN2 };

/* How RoPE pairs the dimensions of a head: "normal" rotates (x[2i],
 * x[2i+1]); "neox" rotates (x[i], x[i + rope_dim / 2]). */
enum rope_kind { ROPE_NORMAL, ROPE_NEOX };

/* A weight matrix of n_out rows of n_in elements, in the file's type. */
typedef struct weight {
    const void *data;
    enum roj_type type;
    int64_t n_in;
    int64_t n_out;
} weight;

typedef struct layer {
    float *attn_norm; /* (n_embd) */
    weight wq;        /* (n_head * head_dim, n_embd) */
    weight wk;        /* (n_head_kv * head_dim, n_embd) */
    weight wv;        /* (n_head_kv * head_dim, n_embd) */
    weight wo;        /* (n_embd, n_head * head_dim) */
    float *bq;        /* (n_head * head_dim) or NULL */
    float *bk;        /* (n_head_kv * head_dim) or NULL */
    float *bv;        /* (n_head_kv * head_dim) or NULL */
    float *ffn_norm;  /* (n_embd) */
    weight w_gate;    /* (n_ff, n_embd) */
    weight w_up;      /* (n_ff, n_embd) */
    weight w_down;    /* (n_embd, n_ff) */
} layer;

typedef struct hparams {
    int32_t n_vocab;
    int32_t n_embd;
    int32_t n_layer;
    int32_t n_head;
    int32_t n_head_kv;
    int32_t head_dim;
    int32_t n_ff;
    int32_t n_ctx_train;
    int32_t rope_dim;      /* dimensions of a head that RoPE rotates */
    float rope_base;       /* frequency base (theta) */
    float rope_freq_scale; /* 1 / linear scaling factor */
    float rms_eps;
    enum rope_kind rope_kind;
} hparams;

struct roj_model {
    gguf_file *file;
    roj_vocab *vocab;
    enum model_arch arch;
    char *arch_name;
    char *name;
    hparams hp;
    weight token_embd; /* (n_vocab, n_embd) */
    weight output;     /* (n_vocab, n_embd); token_embd when tied */
    float *output_norm;
    float *rope_freqs; /* (rope_dim / 2) divisors, or NULL */
    layer *layers;
    uint64_t n_params;
    uint64_t n_bytes;
};

/* One unit of attention work: count query tokens of one sequence,
 * attn_order[first ...], against one KV head. */
typedef struct attn_item {
    int32_t seq;
    int32_t first;
    int32_t count;
    int32_t kv_head;
} attn_item;

/* Tokens whose FFN hidden activations (n_ff wide) are held at once. 32
 * instead of 64 halves their memory (384 KiB on the SmolLM2-135M shape)
 * at no measurable cost in pp512 speed. */
#define FFN_CHUNK 32

/* Per-sequence KV cache: positions [0, len) are filled. */
typedef struct kv_seq {
    int32_t len;
} kv_seq;

struct roj_context {
    roj_model *model;
    int32_t n_ctx;
    int32_t n_seq;
    int32_t n_batch;
    int32_t n_ubatch; /* rows of the scratch buffers below */
    roj_pool *pool;
    kv_seq *seqs;
    /* K and V in F16, per layer and sequence: K (n_head_kv, n_ctx,
     * head_dim) and V transposed (n_head_kv, head_dim, n_ctx). */
    uint16_t *k_cache;
    uint16_t *v_cache;

    /* Scratch for one micro-batch of up to n_ubatch tokens. */
    float *x;      /* (n_ubatch, n_embd) residual stream */
    float *xn;     /* (n_ubatch, n_embd) norm output and product output */
    float *q;      /* (n_ubatch, n_head * head_dim) */
    float *k;      /* (n_ubatch, kv_dim) */
    float *v;      /* (n_ubatch, kv_dim) */
    float *attn;   /* attention output, the same memory as q: each head's
                      output replaces the query it was computed from */
    float *gate;   /* (FFN_CHUNK, n_ff) */
    float *up;     /* (FFN_CHUNK, n_ff) */
    int32_t ffn_first; /* batch index of gate and up's first row */
    /* Up to 3 buffers of act_bytes for converted activations: n_ubatch
     * rows, or FFN_CHUNK rows of the down product's wider input. Only as
     * many as the model's shared-input products need are allocated. */
    void *act[3];
    size_t act_bytes;
    void *attn_scratch;         /* (n_threads, attn_scratch_stride) */
    size_t attn_scratch_stride; /* bytes per thread */
    int32_t *attn_order;        /* (n_ubatch) batch tokens by sequence */
    struct attn_item *attn_items; /* (2 * n_ubatch * n_head_kv) */
    float *rope_cos; /* (n_ubatch, rope_dim / 2) */
    float *rope_sin; /* (n_ubatch, rope_dim / 2) */
    /* Position and sequence of each token of the whole batch, n_batch
     * long; during model_forward they point at the micro-batch's part. */
    int32_t *tok_pos;
    int32_t *tok_seq;

    roj_abort_fn abort_fn;
    void *abort_data;

    /* Adapters set by roj_context_set_lora (model/lora.h), or NULL. */
    struct lora_state *lora;

    float *logits;       /* (n_logits_cap, n_vocab) */
    int32_t n_logits_cap;
    int32_t *logit_index; /* (n_batch) row in logits, or -1 */
    int32_t n_logits;
    int32_t last_logit;
};

/* Runs the batch through the network; ctx->tok_pos and tok_seq are set
 * and the cache has room. Fills ctx->logits for the requested tokens. */
roj_status model_forward(roj_context *ctx, const roj_token *tokens,
                         int32_t n_tokens, const int32_t *out_rows,
                         int32_t n_out);

#endif
