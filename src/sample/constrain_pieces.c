/* Token piece table and the decode helpers shared by span and JSON
 * decoding. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "sample/constrain_internal.h"

roj_status roj_pieces_create(const roj_vocab *vocab, roj_pieces **out)
{
    roj_pieces *p = NULL;
    int32_t n = roj_vocab_n_tokens(vocab);
    size_t cap = (size_t)n * 8 + 64, used = 0;
    uint32_t counts[256] = {0};
    roj_status st = ROJ_OK;

    *out = NULL;
    p = calloc(1, sizeof *p);
    if (!p)
        return roj_error(ROJ_ERR_NOMEM, "pieces: out of memory");
    p->vocab = vocab;
    p->n_tokens = n;
    p->bytes = malloc(cap);
    p->offset = malloc(((size_t)n + 1) * sizeof *p->offset);
    p->is_eog = calloc((size_t)n + 1, sizeof *p->is_eog);
    p->by_first = malloc(((size_t)n + 1) * sizeof *p->by_first);
    if (!p->bytes || !p->offset || !p->is_eog || !p->by_first)
        goto fail_nomem;

    /* Pieces, back to back; a piece longer than the space left makes the
     * buffer grow and is fetched again. */
    for (int32_t t = 0; t < n; t++) {
        size_t len = 0;
        p->offset[t] = (uint32_t)used;
        p->is_eog[t] = roj_vocab_is_eog(vocab, t);
        st = roj_token_to_piece(vocab, t, 0, p->bytes + used, cap - used,
                                &len);
        if (st == ROJ_OK && len > cap - used) {
            while (len > cap - used)
                cap *= 2;
            char *grown = realloc(p->bytes, cap);
            if (!grown)
                goto fail_nomem;
            p->bytes = grown;
            st = roj_token_to_piece(vocab, t, 0, p->bytes + used,
                                    cap - used, &len);
        }
        if (st != ROJ_OK) {
            roj_pieces_free(p);
            return roj_error_wrap(st, "pieces: token %d", t);
        }
        if (len > 0)
            counts[(unsigned char)p->bytes[used]]++;
        used += len;
        if (used > UINT32_MAX / 2) {
            roj_pieces_free(p);
            return roj_error(ROJ_ERR_RANGE, "pieces: vocab text too large");
        }
    }
    p->offset[n] = (uint32_t)used;

    /* Group the tokens by first byte, ascending id within a group. */
    p->first_start[0] = 0;
    for (int b = 0; b < 256; b++)
        p->first_start[b + 1] = p->first_start[b] + counts[b];
    memset(counts, 0, sizeof counts);
    for (int32_t t = 0; t < n; t++) {
        size_t len = 0;
        const char *s = piece_of(p, t, &len);
        if (len == 0)
            continue;
        unsigned char b = (unsigned char)s[0];
        p->by_first[p->first_start[b] + counts[b]++] = t;
    }
    *out = p;
    return ROJ_OK;

fail_nomem:
    roj_pieces_free(p);
    return roj_error(ROJ_ERR_NOMEM, "pieces: out of memory for %d tokens",
                     n);
}

void roj_pieces_free(roj_pieces *pieces)
{
    if (!pieces)
        return;
    free(pieces->bytes);
    free(pieces->offset);
    free(pieces->is_eog);
    free(pieces->by_first);
    free(pieces);
}

roj_status constrain_decode(roj_context *ctx, int32_t seq,
                            const roj_token *tokens, size_t n, float *row)
{
    int32_t n_vocab = roj_model_n_vocab(roj_context_model(ctx));
    roj_status st = roj_decode_tokens(ctx, seq, tokens, n);
    const float *logits;

    if (st != ROJ_OK)
        return st;
    logits = roj_get_logits(ctx, -1);
    if (!logits)
        return roj_error(ROJ_ERR_INTERNAL, "constrain: decode gave no logits");
    memcpy(row, logits, (size_t)n_vocab * sizeof *row);
    return ROJ_OK;
}

roj_status constrain_pick(roj_sampler *sampler, const float *masked,
                          int32_t n_vocab, roj_token *token)
{
    roj_token best = ROJ_TOKEN_NULL;
    roj_status st;

    if (sampler) {
        st = roj_sampler_sample(sampler, masked, token, NULL);
        if (st == ROJ_OK)
            roj_sampler_accept(sampler, *token);
        return st;
    }
    for (int32_t t = 0; t < n_vocab; t++) {
        if (isnan(masked[t]) || (isinf(masked[t]) && masked[t] > 0))
            return roj_error(ROJ_ERR_NUMERIC, "logit of token %d is %s", t,
                             isnan(masked[t]) ? "NaN" : "+inf");
        if (isinf(masked[t]))
            continue;
        if (best == ROJ_TOKEN_NULL || masked[t] > masked[best])
            best = t;
    }
    if (best == ROJ_TOKEN_NULL)
        return roj_error(ROJ_ERR_INTERNAL, "constrain: every token masked");
    *token = best;
    return ROJ_OK;
}
