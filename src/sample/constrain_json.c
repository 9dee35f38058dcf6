/* JSON generation: forced text decoded in batches, values sampled under
 * the byte grammar of constrain_json_grammar.c. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "sample/constrain_internal.h"

/* Safety net only: the grammar bounds the output long before this. */
#define JSON_MAX_STEPS 100000

typedef struct json_run {
    roj_context *ctx;
    int32_t seq;
    const roj_pieces *pieces;
    const json_grammar *grammar;
    roj_sampler *sampler;
    int32_t n_vocab;
    float *row;        /* (n_vocab) logits after the output so far */
    float *masked;     /* (n_vocab) row with forbidden tokens at -inf */
    roj_token *forced; /* tokens of the current forced text */
    size_t forced_cap;
    char *out;         /* the object so far */
    size_t len, cap;
    json_state state;
} json_run;

static roj_status out_append(json_run *r, const char *bytes, size_t n)
{
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *p = realloc(r->out, cap);
        if (!p)
            return roj_error(ROJ_ERR_NOMEM, "json: out of memory");
        r->out = p;
        r->cap = cap;
    }
    memcpy(r->out + r->len, bytes, n);
    r->len += n;
    r->out[r->len] = '\0';
    return ROJ_OK;
}

/* Whether every byte of a piece is allowed from state s; on success s is
 * the state after the piece. */
static bool piece_fits(const json_grammar *g, json_state *s,
                       const char *piece, size_t len)
{
    json_state t = *s;
    for (size_t i = 0; i < len; i++)
        if (!json_grammar_step(g, &t, (unsigned char)piece[i]))
            return false;
    *s = t;
    return true;
}

/* Appends to the output the bytes the grammar allows exactly one way
 * from the current state; returns how many. */
static roj_status take_forced_bytes(json_run *r, size_t *n_forced)
{
    *n_forced = 0;
    while (!json_state_done(&r->state)) {
        int only = -1, n_ok = 0;
        for (int b = 0; b < 256 && n_ok < 2; b++) {
            json_state t = r->state;
            if (json_grammar_step(r->grammar, &t, (unsigned char)b)) {
                only = b;
                n_ok++;
            }
        }
        if (n_ok != 1)
            break;
        char c = (char)only;
        json_grammar_step(r->grammar, &r->state, (unsigned char)only);
        roj_status st = out_append(r, &c, 1);
        if (st != ROJ_OK)
            return st;
        (*n_forced)++;
    }
    return ROJ_OK;
}

/* Splits text into tokens by longest matching piece at each position. */
static roj_status tokenize_forced(json_run *r, const char *text, size_t n,
                                  size_t *n_tokens)
{
    const roj_pieces *p = r->pieces;
    size_t pos = 0, count = 0;

    while (pos < n) {
        unsigned char b = (unsigned char)text[pos];
        roj_token best = ROJ_TOKEN_NULL;
        size_t best_len = 0;
        for (uint32_t i = p->first_start[b]; i < p->first_start[b + 1];
             i++) {
            size_t len = 0;
            const char *s = piece_of(p, p->by_first[i], &len);
            if (len > best_len && len <= n - pos &&
                memcmp(s, text + pos, len) == 0) {
                best = p->by_first[i];
                best_len = len;
            }
        }
        if (best == ROJ_TOKEN_NULL)
            return roj_error(ROJ_ERR_UNSUPPORTED,
                             "json: no token of the vocab starts with byte "
                             "0x%02x", b);
        if (count == r->forced_cap) {
            size_t cap = r->forced_cap ? r->forced_cap * 2 : 32;
            roj_token *grown = realloc(r->forced, cap * sizeof *grown);
            if (!grown)
                return roj_error(ROJ_ERR_NOMEM, "json: out of memory");
            r->forced = grown;
            r->forced_cap = cap;
        }
        r->forced[count++] = best;
        pos += best_len;
    }
    *n_tokens = count;
    return ROJ_OK;
}

/* Masks every token whose piece the grammar rejects; returns how many
 * tokens stay allowed. */
static int32_t mask_tokens(json_run *r)
{
    const roj_pieces *p = r->pieces;
    int32_t allowed = 0;

    for (int32_t t = 0; t < r->n_vocab; t++)
        r->masked[t] = -INFINITY;
    for (int b = 0; b < 256; b++) {
        json_state first = r->state;
        if (p->first_start[b] == p->first_start[b + 1] ||
            !json_grammar_step(r->grammar, &first, (unsigned char)b))
            continue;
        for (uint32_t i = p->first_start[b]; i < p->first_start[b + 1];
             i++) {
            roj_token t = p->by_first[i];
            size_t len = 0;
            const char *s = piece_of(p, t, &len);
            json_state after = first;
            if (t >= r->n_vocab ||
                !piece_fits(r->grammar, &after, s + 1, len - 1))
                continue;
            r->masked[t] = r->row[t];
            allowed++;
        }
    }
    return allowed;
}

/* One round: forced bytes as a batch, then one sampled token. */
static roj_status json_round(json_run *r)
{
    size_t n_forced = 0, n_tokens = 0, len = 0;
    roj_token token = ROJ_TOKEN_NULL;
    roj_status st;

    st = take_forced_bytes(r, &n_forced);
    if (st == ROJ_OK && n_forced > 0)
        st = tokenize_forced(r, r->out + r->len - n_forced, n_forced,
                             &n_tokens);
    if (st != ROJ_OK || json_state_done(&r->state))
        return st;
    if (n_tokens > 0) {
        st = constrain_decode(r->ctx, r->seq, r->forced, n_tokens, r->row);
        if (st != ROJ_OK)
            return st;
    }

    if (mask_tokens(r) == 0)
        return roj_error(ROJ_ERR_UNSUPPORTED,
                         "json: no token continues the output at byte %zu",
                         r->len);
    st = constrain_pick(r->sampler, r->masked, r->n_vocab, &token);
    if (st != ROJ_OK)
        return st;
    const char *piece = piece_of(r->pieces, token, &len);
    if (!piece_fits(r->grammar, &r->state, piece, len))
        return roj_error(ROJ_ERR_INTERNAL,
                         "json: sampled token %d breaks the grammar", token);
    st = out_append(r, piece, len);
    if (st == ROJ_OK && !json_state_done(&r->state))
        st = constrain_decode(r->ctx, r->seq, &token, 1, r->row);
    return st;
}

roj_status roj_generate_json(roj_context *ctx, int32_t seq,
                             const float *prompt_logits,
                             const roj_pieces *pieces,
                             const roj_json_field *fields, size_t n_fields,
                             roj_sampler *sampler, char **json, size_t *len)
{
    json_grammar *grammar = NULL;
    json_run r = {.ctx = ctx, .seq = seq, .pieces = pieces,
                  .sampler = sampler};
    int32_t start_len = roj_seq_len(ctx, seq);
    roj_status st;

    *json = NULL;
    if (!prompt_logits || !pieces)
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "json: prompt logits and a piece table are needed");
    r.n_vocab = roj_model_n_vocab(roj_context_model(ctx));
    st = json_grammar_create(fields, n_fields, &grammar);
    if (st != ROJ_OK)
        return st;
    r.grammar = grammar;
    r.state = json_grammar_start(grammar);
    r.row = malloc((size_t)r.n_vocab * sizeof *r.row);
    r.masked = malloc((size_t)r.n_vocab * sizeof *r.masked);
    if (!r.row || !r.masked) {
        st = roj_error(ROJ_ERR_NOMEM, "json: out of memory");
        goto cleanup;
    }
    memcpy(r.row, prompt_logits, (size_t)r.n_vocab * sizeof *r.row);

    for (int step = 0; !json_state_done(&r.state); step++) {
        if (step == JSON_MAX_STEPS) {
            st = roj_error(ROJ_ERR_INTERNAL, "json: no end after %d steps",
                           step);
            goto cleanup;
        }
        st = json_round(&r);
        if (st != ROJ_OK)
            goto cleanup;
    }

    /* The grammar guarantees this; checking costs microseconds. */
    cJSON *parsed = cJSON_ParseWithLength(r.out, r.len);
    if (!parsed) {
        st = roj_error(ROJ_ERR_INTERNAL, "json: output does not parse: %s",
                       r.out);
        goto cleanup;
    }
    cJSON_Delete(parsed);
    *json = r.out;
    r.out = NULL;
    if (len)
        *len = r.len;

cleanup:
    roj_seq_truncate(ctx, seq, start_len);
    free(r.out);
    free(r.row);
    free(r.masked);
    free(r.forced);
    json_grammar_free(grammar);
    return st;
}
