/* Internals of constrained decoding: the piece table, the JSON byte
 * grammar and the decode helpers the three modes share. */
#ifndef ROJ_SAMPLE_CONSTRAIN_INTERNAL_H
#define ROJ_SAMPLE_CONSTRAIN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roj/constrain.h"

struct roj_pieces {
    const roj_vocab *vocab;
    int32_t n_tokens;
    char *bytes;              /* every piece, back to back */
    uint32_t *offset;         /* (n_tokens + 1) piece t is bytes[offset[t]
                               * .. offset[t + 1]) */
    bool *is_eog;             /* (n_tokens) */
    roj_token *by_first;      /* tokens with a non-empty piece, grouped by
                               * first byte, ascending id in a group */
    uint32_t first_start[257]; /* group b is by_first[first_start[b] ..
                                * first_start[b + 1]) */
};

static inline const char *piece_of(const roj_pieces *p, roj_token t,
                                   size_t *len)
{
    *len = p->offset[t + 1] - p->offset[t];
    return p->bytes + p->offset[t];
}

/* ---- JSON grammar ---- */

typedef struct json_grammar json_grammar;

/* Position in the output; small enough to copy per candidate token. */
typedef struct json_state {
    int32_t field;    /* field whose prefix or value is being written */
    uint8_t phase;    /* JSON_PHASE_* */
    uint8_t sub;      /* value sub-state */
    uint8_t utf8_left; /* continuation bytes still expected */
    uint8_t utf8_lo;  /* allowed range of the next continuation byte */
    uint8_t utf8_hi;
    int32_t pos;      /* bytes of the forced text or literal matched */
    int32_t count;    /* characters (strings) or digits (numbers) so far */
    int32_t cand;     /* literals: lowest index matching the prefix */
} json_state;

enum { JSON_PHASE_FORCED = 0, JSON_PHASE_VALUE = 1, JSON_PHASE_DONE = 2 };

/* Builds the grammar for the fields (validated; keys and enum values are
 * escaped here). The caller frees it with json_grammar_free(). */
roj_status json_grammar_create(const roj_json_field *fields, size_t n,
                               json_grammar **out);
void json_grammar_free(json_grammar *g);
/* State before the first byte. */
json_state json_grammar_start(const json_grammar *g);
/* Advances by one byte; returns false (state unchanged) if the byte is
 * not allowed. */
bool json_grammar_step(const json_grammar *g, json_state *s,
                       unsigned char byte);
/* Whether the object is complete. */
static inline bool json_state_done(const json_state *s)
{
    return s->phase == JSON_PHASE_DONE;
}

/* ---- decode helpers ---- */

/* Evaluates n tokens on seq and copies the logits of the last one into
 * row (n_vocab floats). */
roj_status constrain_decode(roj_context *ctx, int32_t seq,
                            const roj_token *tokens, size_t n, float *row);

/* Chooses a token from masked logits (-inf = forbidden) with sampler, or
 * the argmax when sampler is NULL; a sampled token is accepted into the
 * sampler's history. */
roj_status constrain_pick(roj_sampler *sampler, const float *masked,
                          int32_t n_vocab, roj_token *token);

#endif
