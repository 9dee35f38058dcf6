/*
 * Constrained output: answers in machine-readable form.
 *
 *   roj_choose()        scores every label of a fixed list and picks one;
 *   roj_extract_span()  copies a span of an input text (or a "none" word);
 *   roj_generate_json() writes a JSON object with fixed keys and typed
 *                       values that always terminates and always parses.
 *
 * Each call starts from a prompt that is already in sequence seq of the
 * context, with prompt_logits the logits after its last token (for example
 * roj_get_logits(ctx, -1) right after the prompt was decoded; they are
 * copied first). The call evaluates its own tokens on seq and truncates
 * seq back to its length at entry before returning, success or not, so
 * several questions can share one evaluated prompt.
 *
 * Span extraction and JSON work on the bytes of token pieces, not on a
 * tokenization of the target text: any token whose piece keeps the output
 * valid may be chosen, so a text that tokenizes differently in context is
 * still reachable. The pieces of a vocab are computed once into a
 * roj_pieces table, which every call for that vocab can share.
 *
 * Ownership: roj_pieces_create() returns a table the caller frees with
 * roj_pieces_free() before the vocab goes away. Strings returned through
 * pointer arguments are new and freed by the caller with free().
 * Threading: a roj_pieces table is immutable and may be shared by several
 * threads; each call uses its context (and sampler) exclusively, like
 * roj_decode().
 */
#ifndef ROJ_CONSTRAIN_H
#define ROJ_CONSTRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roj/context.h"
#include "roj/sampler.h"
#include "roj/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Token piece table */

typedef struct roj_pieces roj_pieces;

/* Computes the piece (roj_token_to_piece without flags) of every token and
 * indexes the tokens by first byte. Control tokens have empty pieces and
 * are never chosen by span or JSON decoding. */
roj_status roj_pieces_create(const roj_vocab *vocab, roj_pieces **out);
void roj_pieces_free(roj_pieces *pieces);

/* ------------------------------------------------------------------ */
/* Choice among labels */

typedef struct roj_choice_params {
    /* Text scored right after each label (tokenized together with it),
     * e.g. "\n" when the answer line ends there; NULL for none. */
    const char *suffix;
    /* Also score the end-of-turn token (EOT, else EOS) after the label:
     * the model must consider the answer finished. */
    bool score_eog;
    /* Rank by mean log-probability per token instead of the sum; the sum
     * favours short labels, the mean removes most of that bias. */
    bool normalize;
} roj_choice_params;

typedef struct roj_choice_result {
    size_t best;       /* index of the chosen label */
    double prob;       /* probs[best] */
    /* Caller arrays of n_labels entries, each may be NULL: */
    double *logprob;   /* total log-probability of each label's tokens */
    double *probs;     /* softmax over labels of the ranking score */
    int32_t *n_tokens; /* tokens scored per label (suffix, EOG included) */
} roj_choice_result;

/*
 * Scores each label as the sum of the log-probabilities of its tokens
 * given the prompt and the label's previous tokens. Labels are tokenized
 * with roj_tokenize() without special tokens, so a SentencePiece vocab
 * scores "yes" with the leading space its tokenizer adds (" yes"), which
 * is what follows a prompt ending in ":". Labels sharing leading tokens
 * share their evaluation: labels are visited in token order and only the
 * tokens after the common prefix are decoded. Needs one sequence only.
 * Fails with ROJ_ERR_INVALID_ARG for n_labels == 0 or a label that gives no
 * token. params may be NULL (defaults: no suffix, no EOG, sum).
 */
roj_status roj_choose(roj_context *ctx, int32_t seq,
                      const float *prompt_logits,
                      const char *const *labels, size_t n_labels,
                      const roj_choice_params *params,
                      roj_choice_result *result);

/* ------------------------------------------------------------------ */
/* Span of an input text */

typedef struct roj_span_params {
    const char *none_word;  /* alternative answer, e.g. "none"; may be NULL */
    int32_t max_tokens;     /* <= 0: 64 */
    roj_sampler *sampler;   /* NULL: greedy */
} roj_span_params;

typedef struct roj_span_result {
    bool is_none;        /* output was the none word, or nothing matched */
    size_t start, end;   /* byte offsets of the span in input: [start, end) */
    size_t char_start;   /* the same in code points */
    size_t char_end;
    char *text;          /* the span (or none word), new; caller frees */
    int32_t n_tokens;    /* tokens generated */
} roj_span_result;

/*
 * Decodes an answer that must be a substring of input (input_len bytes) or
 * the none word. At each step only tokens whose piece keeps the output a
 * substring of input or a prefix of the none word are allowed. Spaces at
 * the start of the first piece are dropped, so " Paris" may start the
 * span "Paris". The answer ends at an end-of-generation token or a token
 * starting with "\n" (allowed once the output is a valid answer), when no
 * token can extend it, or after max_tokens. The span reported is the
 * leftmost occurrence of the output in input.
 */
roj_status roj_extract_span(roj_context *ctx, int32_t seq,
                            const float *prompt_logits,
                            const roj_pieces *pieces, const char *input,
                            size_t input_len, const roj_span_params *params,
                            roj_span_result *result);

/* ------------------------------------------------------------------ */
/* JSON object */

typedef enum roj_json_type {
    ROJ_JSON_STRING = 0,  /* "..." with at most max_length characters */
    ROJ_JSON_INTEGER = 1, /* -?(0|[1-9][0-9]*), at most max_length digits */
    ROJ_JSON_NUMBER = 2,  /* integer with optional .digits, no exponent */
    ROJ_JSON_BOOLEAN = 3, /* true or false */
    ROJ_JSON_ENUM = 4     /* one of values, as a JSON string */
} roj_json_type;

typedef struct roj_json_field {
    const char *key;
    roj_json_type type;
    /* Strings: maximum characters (escapes count as one), <= 0: 64.
     * Integers and numbers: maximum digits in total, <= 0: 12. */
    int32_t max_length;
    const char *const *values; /* enum: n_values strings (escaped as JSON) */
    size_t n_values;
} roj_json_field;

/*
 * Generates the object {"k1": v1, "k2": v2, ...} with the fields in order:
 * braces, keys, colons, commas and the single space after ':' and ',' are
 * forced (decoded as one batch without sampling), values are sampled with
 * a byte-level grammar mask. Strings allow the escapes \" \\ \/ \b \f \n
 * \r \t (not \u) and reject raw control characters and invalid UTF-8. No
 * other white space is allowed, so the output always ends within a
 * bounded number of tokens and always parses as JSON. *json is the new
 * NUL-terminated object, *len (may be NULL) its length. sampler may be
 * NULL (greedy). Fails with ROJ_ERR_INVALID_ARG for an empty key list,
 * a NULL key or an enum without values.
 */
roj_status roj_generate_json(roj_context *ctx, int32_t seq,
                             const float *prompt_logits,
                             const roj_pieces *pieces,
                             const roj_json_field *fields, size_t n_fields,
                             roj_sampler *sampler, char **json, size_t *len);

#ifdef __cplusplus
}
#endif

#endif
