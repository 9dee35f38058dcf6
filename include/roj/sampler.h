/*
 * Sampling, streaming detokenization and a generation loop.
 *
 * A roj_sampler turns one row of logits into a token. Its stages run in
 * llama.cpp's default order:
 *
 *   penalties -> top-k -> top-p -> min-p -> temperature -> draw
 *
 * Penalties look at the last penalty_last_n tokens passed to
 * roj_sampler_accept(): a token seen there has its logit divided by
 * repeat_penalty when positive and multiplied by it when negative, then
 * lowered by count * frequency_penalty + presence_penalty. top_k <= 0,
 * top_p >= 1 and min_p <= 0 switch the filter off. temperature <= 0 is
 * greedy decoding: the highest logit after penalties wins, the lowest id
 * among equal logits. The draw uses the sampler's own xoshiro256** state
 * seeded through splitmix64, and the softmax uses an exponential built from
 * IEEE additions and multiplications only, so a seed gives the same tokens
 * on every platform with IEEE-754 doubles.
 *
 * Logits of -inf mark forbidden tokens (masks). NaN and +inf are errors
 * (ROJ_ERR_NUMERIC naming the token id); so is a row where every logit is
 * -inf.
 *
 * A roj_streamer turns sampled tokens into text for display: it never
 * splits a UTF-8 character, holds back text that may be the start of a
 * stop string, and stops at end-of-generation tokens, stop strings and a
 * token limit.
 *
 * Ownership: objects made by *_create() belong to the caller, who frees
 * them with the matching *_free(). Strings passed in are copied.
 * Threading: a sampler or streamer is used by one thread at a time;
 * different objects may be used on different threads at once.
 */
#ifndef ROJ_SAMPLER_H
#define ROJ_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roj/context.h"
#include "roj/roj.h"
#include "roj/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Sampler */

typedef struct roj_sampler roj_sampler;

typedef struct roj_sampler_params {
    float temperature;       /* <= 0: greedy; default 0.8 */
    int32_t top_k;           /* <= 0: off; default 40 */
    float top_p;             /* >= 1: off; default 0.95 */
    float min_p;             /* <= 0: off; default 0.05 */
    float repeat_penalty;    /* 1: off; default 1 */
    float frequency_penalty; /* 0: off; default 0 */
    float presence_penalty;  /* 0: off; default 0 */
    int32_t penalty_last_n;  /* tokens of history penalized; default 64 */
    uint64_t seed;           /* PRNG seed; default 0x5EED */
} roj_sampler_params;

/* Returns llama.cpp's default settings (the values listed above). */
roj_sampler_params roj_sampler_default_params(void);

/* Greedy settings: temperature 0, every filter and penalty off. */
roj_sampler_params roj_sampler_greedy_params(void);

/*
 * Creates a sampler for rows of n_vocab logits. Fails with
 * ROJ_ERR_INVALID_ARG for n_vocab < 1, a negative penalty_last_n, a
 * repeat_penalty <= 0 or a NaN parameter. The caller frees *out with
 * roj_sampler_free().
 */
roj_status roj_sampler_create(const roj_sampler_params *params,
                              int32_t n_vocab, roj_sampler **out);
void roj_sampler_free(roj_sampler *sampler);

/* Clears the penalty history and re-seeds the PRNG with seed. */
void roj_sampler_reset(roj_sampler *sampler, uint64_t seed);

/*
 * Chooses a token from logits (n_vocab floats, not modified). On success
 * *token is the chosen id and, when prob is not NULL, *prob its probability
 * under the final distribution the draw used (1 for greedy decoding).
 * The token is not added to the penalty history: call roj_sampler_accept().
 */
roj_status roj_sampler_sample(roj_sampler *sampler, const float *logits,
                              roj_token *token, float *prob);

/* Adds a token to the penalty history (prompt tokens too, if wanted). */
void roj_sampler_accept(roj_sampler *sampler, roj_token token);

/* Adds bias[i] to the logit of token i before every other step, as
 * llama.cpp's --logit-bias does; -INFINITY bans a token. The n = n_vocab
 * values are copied. bias == NULL removes the bias. */
roj_status roj_sampler_set_logit_bias(roj_sampler *sampler,
                                      const float *bias, int32_t n);

/*
 * Computes softmax(logits)[token] over n logits with the maximum
 * subtracted first, so large logits do not overflow. -inf entries count as
 * probability 0. Fails with ROJ_ERR_NUMERIC for a NaN or +inf logit and
 * ROJ_ERR_INVALID_ARG for a token outside [0, n).
 */
roj_status roj_logits_prob(const float *logits, int32_t n, roj_token token,
                           double *prob);

/* Same as roj_logits_prob but returns the natural log of the probability,
 * exact even where the probability underflows. */
roj_status roj_logits_logprob(const float *logits, int32_t n,
                              roj_token token, double *logprob);

/* ------------------------------------------------------------------ */
/* Streaming detokenizer */

typedef enum roj_stop_reason {
    ROJ_STOP_NONE = 0,        /* still generating */
    ROJ_STOP_EOG = 1,         /* an end-of-generation token */
    ROJ_STOP_STRING = 2,      /* a stop string appeared in the text */
    ROJ_STOP_MAX_TOKENS = 3,  /* max_tokens tokens were pushed */
    ROJ_STOP_CONTEXT_FULL = 4, /* the sequence reached n_ctx (generate) */
    ROJ_STOP_CALLBACK = 5     /* on_text returned false */
} roj_stop_reason;

/* Returns "none", "eog", "stop-string", "max-tokens", "context-full" or
 * "callback". */
const char *roj_stop_reason_name(roj_stop_reason reason);

/* Receives len bytes of valid UTF-8 (not NUL-terminated). Returning false
 * stops the streamer with ROJ_STOP_CALLBACK. */
typedef bool (*roj_text_fn)(const char *text, size_t len, void *user_data);

typedef struct roj_streamer_params {
    const char *const *stop; /* n_stop stop strings, each non-empty */
    size_t n_stop;
    int32_t max_tokens;      /* <= 0: no limit */
    unsigned detok_flags;    /* ROJ_DETOK_* passed to roj_token_to_piece */
    roj_text_fn on_text;     /* may be NULL: text is only collected */
    void *user_data;
} roj_streamer_params;

typedef struct roj_streamer roj_streamer;

/*
 * Creates a streamer. vocab may be NULL when only roj_streamer_push_bytes()
 * is used. The stop strings are copied. The caller frees *out with
 * roj_streamer_free().
 */
roj_status roj_streamer_create(const roj_vocab *vocab,
                               const roj_streamer_params *params,
                               roj_streamer **out);
void roj_streamer_free(roj_streamer *streamer);

/*
 * Pushes one generated token. An end-of-generation token stops without
 * adding text. Otherwise its piece is appended and every byte that can no
 * longer be part of a stop string or of an unfinished UTF-8 character is
 * passed to on_text. When a stop string appears, the text before it is
 * emitted, the stop string and everything after it are dropped, and the
 * streamer stops. After the max_tokens-th token the streamer stops with
 * ROJ_STOP_MAX_TOKENS. Pushing to a stopped streamer changes nothing.
 * Returns the stop reason through *reason (ROJ_STOP_NONE: continue).
 */
roj_status roj_streamer_push(roj_streamer *streamer, roj_token token,
                             roj_stop_reason *reason);

/* Same as roj_streamer_push for raw bytes (one token's piece) without a
 * vocab: counts as one token for max_tokens. */
roj_status roj_streamer_push_bytes(roj_streamer *streamer, const char *bytes,
                                   size_t len, roj_stop_reason *reason);

/*
 * Emits the text still held back, unless a stop string or the callback
 * ended the stream. An unfinished UTF-8 sequence at the end becomes U+FFFD
 * (EF BF BD), as does every invalid byte sequence inside the stream, so
 * on_text only ever receives valid UTF-8. Call it once, after the last
 * push.
 */
roj_status roj_streamer_finish(roj_streamer *streamer);

/* Stop reason so far (ROJ_STOP_NONE while running). */
roj_stop_reason roj_streamer_reason(const roj_streamer *streamer);

/* All text emitted so far, NUL-terminated, owned by the streamer and valid
 * until its next call. *len (may be NULL) excludes the NUL. */
const char *roj_streamer_text(const roj_streamer *streamer, size_t *len);

/* Tokens pushed so far, EOG included. */
int32_t roj_streamer_n_tokens(const roj_streamer *streamer);

/* Forgets text, counts and the stop state, keeping the parameters. */
void roj_streamer_reset(roj_streamer *streamer);

/* ------------------------------------------------------------------ */
/* Generation loop */

typedef struct roj_generate_result {
    roj_stop_reason reason;
    int32_t n_prompt;      /* prompt tokens evaluated */
    int32_t n_generated;   /* tokens sampled, the last one included */
    roj_token last_token;  /* the token that ended generation, or NULL */
    bool last_evaluated;   /* whether last_token is in the KV cache */
    double prompt_ms;      /* wall time of prompt evaluation */
    double generate_ms;    /* wall time of sampling and token decodes */
} roj_generate_result;

/*
 * Appends n_prompt tokens to sequence seq of ctx with roj_decode_tokens(),
 * then samples tokens one at a time with sampler and pushes each to
 * streamer. Generation ends when the streamer stops (on_text returning
 * false included) or the sequence is full (ROJ_STOP_CONTEXT_FULL).
 * Prompt and sampled tokens are added to the sampler's penalty history, as
 * llama.cpp's command-line program does. Each sampled token is evaluated
 * except the one that ended generation (see result->last_evaluated), so a
 * chat loop can continue the same sequence. The streamer is finished
 * before returning. n_prompt may be 0 when the sequence already contains
 * the prompt and roj_get_logits(ctx, -1) returns its logits. result may be
 * NULL.
 */
roj_status roj_generate(roj_context *ctx, int32_t seq,
                        const roj_token *prompt, size_t n_prompt,
                        roj_sampler *sampler, roj_streamer *streamer,
                        roj_generate_result *result);

/* Evaluates n tokens on sequence seq in chunks of at most 512 tokens
 * (halved while roj_decode rejects the chunk as larger than n_batch),
 * keeping the logits of the last token only. A token id outside the
 * vocab, a bad sequence (ROJ_ERR_INVALID_ARG) or too little room
 * (ROJ_ERR_CONTEXT_FULL) fails before anything is evaluated. */
roj_status roj_decode_tokens(roj_context *ctx, int32_t seq,
                             const roj_token *tokens, size_t n);

#ifdef __cplusplus
}
#endif

#endif
