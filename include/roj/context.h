/*
 * Contexts: a KV cache and scratch buffers for evaluating a model on one or
 * more token sequences.
 *
 * A context holds up to n_seq sequences, each with its own cache of up to
 * n_ctx positions. roj_decode() evaluates a batch whose tokens may belong
 * to different sequences; the tokens of one sequence are appended in order
 * at the end of that sequence. Prompts are evaluated as matrix-matrix
 * products (batched prefill).
 *
 * Ownership: a context belongs to its creator and must be freed before its
 * model. Logit pointers stay valid until the next roj_decode() or
 * roj_context_free() on the same context.
 * Threading: one context is used by one thread at a time; the context's own
 * worker threads (n_threads) run inside roj_decode().
 */
#ifndef ROJ_CONTEXT_H
#define ROJ_CONTEXT_H

#include <stdbool.h>
#include <stdint.h>

#include "roj/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct roj_context roj_context;

/* Parameters of a context; 0 picks the default, negative values are
 * rejected. */
typedef struct roj_context_params {
    int32_t n_ctx;     /* positions per sequence; 0: the model's, max 4096 */
    int32_t n_seq;     /* sequences the cache holds; 0: 1 */
    int32_t n_batch;   /* max tokens per roj_decode call; 0: 512 */
    int32_t n_threads; /* worker threads; 0: one per core, up to 8 */
    int32_t n_ubatch;  /* tokens computed at once inside a call, which
                        * sizes the scratch memory; 0: a power of two from
                        * 32 to n_batch whose scratch stays under 1% of
                        * the weights */
} roj_context_params;

roj_context_params roj_context_default_params(void);

roj_status roj_context_create(roj_model *model,
                              const roj_context_params *params,
                              roj_context **out);
void roj_context_free(roj_context *ctx);

const roj_model *roj_context_model(const roj_context *ctx);
int32_t roj_context_n_ctx(const roj_context *ctx);
int32_t roj_context_n_seq(const roj_context *ctx);
/* Most tokens one roj_decode call accepts. */
int32_t roj_context_n_batch(const roj_context *ctx);
/* Tokens computed at once inside roj_decode (n_ubatch as chosen). */
int32_t roj_context_n_ubatch(const roj_context *ctx);
/* Returns true to stop a running roj_decode. Called from the thread that
 * called roj_decode, between layers, so it must be cheap; reading a flag
 * set by a signal handler is the intended use. */
typedef bool (*roj_abort_fn)(void *user_data);

/* Sets (fn != NULL) or clears the abort callback. An aborted roj_decode
 * returns ROJ_ERR_ABORTED and leaves the sequences as they were before the
 * call. */
void roj_context_set_abort(roj_context *ctx, roj_abort_fn fn,
                           void *user_data);

/* Changes the number of worker threads (1 .. 256). */
roj_status roj_context_set_threads(roj_context *ctx, int32_t n_threads);

/*
 * Sets the LoRA adapters the context applies, replacing any set before:
 * every weight an adapter names computes W x + scale B (A x), with scale
 * = scales[i] * alpha / rank (scales[i] alone when alpha is 0). scales
 * may be NULL for 1.0 each; n = 0 clears the adapters. Every adapter must
 * have been opened on this context's model (ROJ_ERR_INVALID_ARG
 * otherwise) and must stay open while it is set. The KV cache is kept,
 * so clear the sequences when switching adapters mid-conversation.
 */
roj_status roj_context_set_lora(roj_context *ctx,
                                const roj_lora *const *adapters,
                                const float *scales, size_t n);

/* A batch of tokens. seq may be NULL (all in sequence 0). logits may be
 * NULL: then only the last token of the batch gets logits. */
typedef struct roj_batch {
    int32_t n_tokens;
    const roj_token *tokens;
    const int32_t *seq;   /* sequence of each token */
    const bool *logits;   /* whether to keep logits of each token */
} roj_batch;

/*
 * Evaluates a batch. Each token's position is the current length of its
 * sequence. Fails with ROJ_ERR_CONTEXT_FULL, changing nothing, when a
 * sequence would grow past n_ctx, and with ROJ_ERR_INVALID_ARG for a token
 * id or sequence out of range or more than n_batch tokens.
 */
roj_status roj_decode(roj_context *ctx, const roj_batch *batch);

/* Logits (n_vocab floats) of batch token i of the last roj_decode, which
 * must have requested them; i = -1 means the last token that did. NULL
 * otherwise. */
const float *roj_get_logits(roj_context *ctx, int32_t i);

/* Current length of a sequence's cache. */
int32_t roj_seq_len(const roj_context *ctx, int32_t seq);
/* Drops positions [len, end) of a sequence (len = 0 clears it); a len at
 * or past the end changes nothing. A negative len or a sequence out of
 * range is ROJ_ERR_INVALID_ARG. */
roj_status roj_seq_truncate(roj_context *ctx, int32_t seq, int32_t len);
/* Replaces sequence dst with the first len positions of src, so a shared
 * prompt is evaluated once. len must be in 0 .. roj_seq_len(src). */
roj_status roj_seq_copy(roj_context *ctx, int32_t src, int32_t dst,
                        int32_t len);

#ifdef __cplusplus
}
#endif

#endif
