/*
 * A llama-architecture model held in float32 for training.
 *
 * Every trainable value lives in one array (params), described by a table
 * of named tensors in GGUF order; gradients and the optimizer's moments
 * use the same layout, so a checkpoint is a few flat arrays. A model comes
 * from tmodel_init (random weights from a seed) or from an existing GGUF
 * (tmodel_from_gguf: quantized weights are dequantized).
 *
 * LoRA: when lora_rank > 0, the base weights are frozen and every target
 * matrix gets A (rank x n_in) and B (n_out x rank) in the trainable array;
 * the base weights then live in a separate frozen array.
 */
#ifndef ROJ_TRAIN_TMODEL_H
#define ROJ_TRAIN_TMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf/gguf.h"
#include "quant/qtypes.h"
#include "roj/model.h"

typedef struct tshape {
    int32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
    int32_t n_ctx;
    float rope_base, rope_freq_scale, rms_eps;
    bool neox;       /* qwen2 rotates NeoX-style */
    bool tied;       /* output head shares token_embd */
    bool qkv_bias;   /* qwen2 */
} tshape;

/* Matrices that LoRA may target (bit flags). */
enum {
    TLORA_Q = 1 << 0, TLORA_K = 1 << 1, TLORA_V = 1 << 2, TLORA_O = 1 << 3,
    TLORA_GATE = 1 << 4, TLORA_UP = 1 << 5, TLORA_DOWN = 1 << 6
};

/* A linear map y = W x (+ scale * B A x with LoRA). W is n_out rows of
 * n_in; gw is NULL when W is frozen. */
typedef struct tlinear {
    float *w, *gw;
    int64_t n_in, n_out;
    float *a, *ga;   /* LoRA A: rank x n_in, or NULL */
    float *b, *gb;   /* LoRA B: n_out x rank */
    const char *name;
} tlinear;

typedef struct tlayer {
    float *attn_norm, *g_attn_norm;
    tlinear wq, wk, wv, wo;
    float *bq, *bk, *bv, *g_bq, *g_bk, *g_bv;
    float *ffn_norm, *g_ffn_norm;
    tlinear gate, up, down;
} tlayer;

/* One named tensor of the trainable array. */
typedef struct ttensor {
    char name[64];
    int64_t offset;      /* in floats, into params */
    int64_t ne[2];       /* GGUF order: ne[0] = n_in (row length) */
    int n_dims;
    bool decay;          /* AdamW weight decay applies */
} ttensor;

typedef struct tmodel {
    tshape hp;
    char arch[16];           /* "llama" or "qwen2" */
    float *params, *grads;   /* trainable values and their gradients */
    int64_t n_params;
    ttensor *tensors;        /* trainable tensors, in file order */
    int n_tensors;
    float *frozen;           /* LoRA: base weights; NULL otherwise */
    int64_t n_frozen;
    ttensor *frozen_tensors;
    int n_frozen_tensors;
    int lora_rank;
    float lora_alpha;
    unsigned lora_targets;

    float *tok_embd, *g_tok_embd;   /* n_vocab rows of n_embd */
    float *out_norm, *g_out_norm;
    tlinear output;                 /* aliases tok_embd when tied */
    tlayer *layers;
} tmodel;

/* Checks a shape: positive sizes, n_head a multiple of n_head_kv, even
 * head_dim; errors name the field. */
roj_status tshape_check(const tshape *hp);

/* Number of parameters of a shape (tied output counted once). */
int64_t tshape_n_params(const tshape *hp);

/* Allocates a model of zeros with the layout of hp (LoRA when
 * lora_rank > 0); tmodel_init and tmodel_from_model fill it. */
roj_status tmodel_alloc(const tshape *hp, int lora_rank, float lora_alpha,
                        unsigned targets, tmodel **out);

/* Allocates a model with weights drawn from N(0, 0.02) by a seeded
 * generator (residual projections scaled by 1/sqrt(2 n_layer)), gains 1.
 * Free with tmodel_free. */
roj_status tmodel_init(const tshape *hp, uint64_t seed, tmodel **out);

/* Loads every weight of an opened model into float32 (dequantizing).
 * lora_rank > 0 freezes the base and adds adapters on lora_targets, with
 * A drawn from a seeded generator and B zero, as LoRA prescribes. */
roj_status tmodel_from_model(const roj_model *model, int lora_rank,
                             float lora_alpha, unsigned lora_targets,
                             uint64_t seed, tmodel **out);

void tmodel_free(tmodel *m);

/* Writes the model's tensors and llama.* hyper-parameters into w (F32 or
 * F16 for matrices; norms stay F32). The caller adds the tokenizer and
 * other metadata and writes the file. Tensor data is copied by the
 * writer only when gguf_writer_write runs: m must outlive that call. */
roj_status tmodel_write_tensors(const tmodel *m, gguf_writer *w,
                                enum roj_type matrix_type, void **scratch);

#endif
