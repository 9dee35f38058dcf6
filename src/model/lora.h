/*
 * LoRA adapters in llama.cpp's GGUF layout: writing, loading on a base
 * model, applying them in the forward pass and merging them into a model.
 *
 * File layout (as llama.cpp's src/llama-adapter.cpp and
 * convert_lora_to_gguf.py read and write it, at llama.cpp commit
 * d32676d77): general.type = "adapter", adapter.type = "lora",
 * adapter.lora.alpha (float32) and general.architecture of the base. Every
 * adapted base matrix W, GGUF shape ne = [n_in, n_out], has two tensors:
 *   "<name>.lora_a"  ne = [n_in, rank]   (rank rows of n_in)
 *   "<name>.lora_b"  ne = [rank, n_out]  (n_out rows of rank)
 * and y = W x + scale * B (A x). token_embd.weight is the exception:
 * there lora_a is ne = [rank, n_vocab] (B of the rule above) and lora_b is
 * ne = [rank, n_embd] (A transposed), because llama.cpp gathers rows of
 * lora_a by token id.
 *
 * Scale: the applied factor is user_scale * alpha / rank, or user_scale
 * alone when alpha is 0 (llama.cpp's llama_adapter_lora_weight::get_scale).
 *
 * Threading: an open roj_lora is immutable and may be shared by several
 * contexts on several threads.
 */
#ifndef ROJ_MODEL_LORA_H
#define ROJ_MODEL_LORA_H

#include <stddef.h>
#include <stdint.h>

#include "model/model_internal.h"
#include "roj/context.h"
#include "roj/model.h"

/* Adapter matrices of one base weight, in roj's convention for every
 * weight, token_embd.weight included (lora_write converts that one to
 * llama.cpp's layout). */
typedef struct lora_tensor {
    const char *name; /* base weight name, e.g. "blk.0.attn_q.weight" */
    int64_t rank, n_in, n_out;
    const float *a;   /* (rank, n_in): x -> A x */
    const float *b;   /* (n_out, rank): A x -> B A x */
} lora_tensor;

/* Key of the optional JSON object that lora_write stores as a string. */
#define LORA_KEY_EXTRA_JSON "roj.adapter.extra_json"

/*
 * Writes an adapter GGUF with F32 tensors to path (through path.tmp,
 * renamed when complete). Every tensor must name a weight matrix of base
 * that adapters can change (attention q/k/v/output, ffn gate/up/down,
 * output, token_embd) with its n_in and n_out, a rank >= 1 and finite
 * values; names must be unique. token_embd.weight is rejected when the
 * base ties its output head to it, because llama.cpp aborts on such an
 * adapter (roj_lora_open accepts it and changes both uses, as a merge
 * would). extra_json_or_NULL, when given, must be
 * a JSON object; it is stored under LORA_KEY_EXTRA_JSON. Returns
 * ROJ_ERR_INVALID_ARG naming the tensor for bad input, or the write error.
 */
roj_status lora_write(const char *path, const roj_model *base, float alpha,
                      const lora_tensor *t, size_t n,
                      const char *extra_json_or_NULL);

/* Adaptable weight kinds of one layer. Layer il's weight of a kind has
 * slot il * LORA_LAYER_KINDS + kind, and the two slots after all layers
 * are token_embd and output. */
enum lora_kind {
    LORA_Q,
    LORA_K,
    LORA_V,
    LORA_O,
    LORA_GATE,
    LORA_UP,
    LORA_DOWN,
    LORA_LAYER_KINDS
};

/* Slot numbers of the model-wide matrices and the slot count. */
int32_t lora_slot_embd(const roj_model *m);
int32_t lora_slot_output(const roj_model *m);
int32_t lora_n_slots(const roj_model *m);

/* Returns the base weight matrix that GGUF tensor name refers to and sets
 * *slot, or returns NULL when name is not a matrix adapters can change. */
const weight *lora_find_weight(const roj_model *m, const char *name,
                               int32_t *slot);

/* One loaded adapter matrix pair. */
typedef struct lora_pair {
    char *name;    /* base weight name */
    int32_t slot;
    int64_t rank, n_in, n_out;
    float *a;      /* (rank, n_in) */
    float *bt;     /* (rank, n_out): B transposed, for row-wise updates */
} lora_pair;

struct roj_lora {
    const roj_model *base;
    char *path;
    float alpha;
    lora_pair *pairs; /* (n_pairs) in file order of their lora_a */
    size_t n_pairs;
};

/* Returns the factor applied to pair p: user_scale * alpha / rank, or
 * user_scale when alpha is 0. */
float lora_pair_scale(const roj_lora *l, const lora_pair *p,
                      float user_scale);

/* Returns the pair of l for base weight name, or NULL. */
const lora_pair *lora_find_pair(const roj_lora *l, const char *name);

/* A pair as a context applies it. */
typedef struct lora_delta {
    const float *a;  /* (rank, n_in) */
    const float *bt; /* (rank, n_out) */
    int64_t rank;
    float scale;
} lora_delta;

/* The adapters set on a context, grouped by weight slot. */
typedef struct lora_state {
    int32_t n_slots;
    int32_t *first;      /* (n_slots + 1): slot s has deltas
                          * [first[s], first[s + 1]) */
    lora_delta *deltas;
    int64_t max_rank;
    float *projected;    /* (n_batch, max_rank) scale * A x per batch
                          * token */
} lora_state;

void lora_state_free(lora_state *s);

/* y (n_tok, n_out) += scale * B (A x) for every delta of slot, where x is
 * (n_tok, n_in). Does nothing when the slot has no delta. */
void lora_apply(roj_context *c, int32_t slot, const float *x, int64_t n_in,
                int64_t n_tok, float *y, int64_t n_out);

/* Adds the token_embd deltas to the embedded rows c->x of tokens. */
void lora_apply_embd(roj_context *c, const roj_token *tokens,
                     int64_t n_tok);

/*
 * Writes base_path with every adapter merged in, W' = W + scale * B A, to
 * out_path (through out_path.tmp). Changed matrices are dequantized,
 * changed and quantized to out_type, or to their own type when out_type
 * is ROJ_TYPE_COUNT. All other tensors and every metadata key are copied,
 * and roj.merge.adapters lists the adapter files and scales. pool may be
 * NULL. Errors name the file and the tensor.
 */
roj_status lora_merge(const char *base_path, const char *const *paths,
                      const float *scales, size_t n, const char *out_path,
                      enum roj_type out_type, roj_pool *pool);

#endif
