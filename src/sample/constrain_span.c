/* Span extraction: greedy (or sampled) decoding restricted to substrings of
 * an input text or a prefix of a "none" word. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "sample/constrain_internal.h"
#include "sample/sample_util.h"

#define SPAN_DEFAULT_TOKENS 64

typedef struct span_run {
    const roj_pieces *pieces;
    const char *input;
    size_t input_len;
    const char *none;
    size_t none_len;
    char *out;          /* output so far; at most max(input, none) bytes */
    size_t len;
    size_t *occ;        /* start offsets of out in input */
    size_t n_occ;
    size_t *by_byte;    /* (input_len) offsets of input grouped by byte */
    size_t byte_start[257]; /* group b is by_byte[byte_start[b] ..
                             * byte_start[b + 1]) */
} span_run;

/* Groups the input offsets by their byte (a counting sort), so the first
 * step only compares a piece where the input has its first byte. */
static void index_input(span_run *r)
{
    size_t counts[256] = {0};

    for (size_t i = 0; i < r->input_len; i++)
        counts[(unsigned char)r->input[i]]++;
    r->byte_start[0] = 0;
    for (int b = 0; b < 256; b++)
        r->byte_start[b + 1] = r->byte_start[b] + counts[b];
    memset(counts, 0, sizeof counts);
    for (size_t i = 0; i < r->input_len; i++) {
        unsigned char b = (unsigned char)r->input[i];
        r->by_byte[r->byte_start[b] + counts[b]++] = i;
    }
}

/* Whether out is a complete answer: a non-empty substring of the input or
 * the whole none word. */
static bool span_final(const span_run *r)
{
    if (r->len == 0)
        return false;
    return r->n_occ > 0 ||
           (r->none && r->len == r->none_len &&
            memcmp(r->out, r->none, r->len) == 0);
}

/* Skips the spaces a first piece may start with. */
static const char *skip_lead(const span_run *r, const char *s, size_t *len)
{
    if (r->len > 0)
        return s;
    while (*len > 0 && *s == ' ') {
        s++;
        (*len)--;
    }
    return s;
}

/* Whether out + piece is a prefix of the none word. */
static bool extends_none(const span_run *r, const char *s, size_t len)
{
    return r->none && r->len + len <= r->none_len &&
           memcmp(r->none, r->out, r->len) == 0 &&
           memcmp(r->none + r->len, s, len) == 0;
}

static bool extends_input(const span_run *r, const char *s, size_t len)
{
    if (r->len == 0) {
        unsigned char b = (unsigned char)s[0];
        for (size_t i = r->byte_start[b]; i < r->byte_start[b + 1]; i++) {
            size_t at = r->by_byte[i];
            if (at + len <= r->input_len &&
                memcmp(r->input + at, s, len) == 0)
                return true;
        }
        return false;
    }
    for (size_t i = 0; i < r->n_occ; i++) {
        size_t at = r->occ[i] + r->len;
        if (at + len <= r->input_len && memcmp(r->input + at, s, len) == 0)
            return true;
    }
    return false;
}

/* Classifies a token: 1 extends the output, 2 ends it, 3 is a leading
 * run of spaces that adds nothing, 0 is forbidden. */
static int span_token_kind(const span_run *r, roj_token t)
{
    size_t len = 0;
    const char *s = piece_of(r->pieces, t, &len);

    if (r->pieces->is_eog[t] || (len > 0 && s[0] == '\n'))
        return span_final(r) ? 2 : 0;
    const size_t raw = len;
    s = skip_lead(r, s, &len);
    /* A first piece of spaces only ("Carl" tokenized as " " + "Carl")
     * adds nothing and is allowed, so the span can start after it. */
    if (len == 0)
        return raw > 0 && r->len == 0 ? 3 : 0;
    if (memchr(s, '\n', len))
        return 0;
    return extends_input(r, s, len) || extends_none(r, s, len) ? 1 : 0;
}

/* Appends a piece and recomputes where the output occurs in the input. */
static void span_append(span_run *r, roj_token t)
{
    size_t len = 0, kept = 0;
    const char *s = skip_lead(r, piece_of(r->pieces, t, &len), &len);

    if (len == 0)
        return;
    memcpy(r->out + r->len, s, len);
    if (r->len == 0) {
        /* Offsets in a byte group ascend, so occ[0] stays leftmost. */
        unsigned char b = (unsigned char)s[0];
        for (size_t i = r->byte_start[b]; i < r->byte_start[b + 1]; i++) {
            size_t at = r->by_byte[i];
            if (at + len <= r->input_len &&
                memcmp(r->input + at, s, len) == 0)
                r->occ[kept++] = at;
        }
    } else {
        for (size_t i = 0; i < r->n_occ; i++) {
            size_t at = r->occ[i] + r->len;
            if (at + len <= r->input_len &&
                memcmp(r->input + at, s, len) == 0)
                r->occ[kept++] = r->occ[i];
        }
    }
    r->n_occ = kept;
    r->len += len;
}

static roj_status span_result_fill(const span_run *r, roj_span_result *res)
{
    bool none = r->n_occ == 0 ||
                (r->none && r->len == r->none_len &&
                 memcmp(r->out, r->none, r->len) == 0);
    const char *text = r->out;
    size_t len = r->len;

    if (none) {
        text = r->none ? r->none : "";
        len = r->none_len;
    }

    res->is_none = none;
    res->text = malloc(len + 1);
    if (!res->text)
        return roj_error(ROJ_ERR_NOMEM, "span: out of memory");
    memcpy(res->text, text, len);
    res->text[len] = '\0';
    if (!none) {
        res->start = r->occ[0];
        res->end = r->occ[0] + r->len;
        res->char_start = utf8_count(r->input, res->start);
        res->char_end = res->char_start + utf8_count(r->out, r->len);
    }
    return ROJ_OK;
}

/* Decoding loop: mask, pick, append, evaluate, until the answer ends. */
static roj_status span_loop(roj_context *ctx, int32_t seq, span_run *r,
                            const roj_span_params *params, float *row,
                            float *masked, int32_t n_vocab,
                            int32_t *n_tokens)
{
    int32_t max_tokens = params && params->max_tokens > 0
                             ? params->max_tokens : SPAN_DEFAULT_TOKENS;
    int32_t n_pieces = r->pieces->n_tokens;

    for (*n_tokens = 0; *n_tokens < max_tokens;) {
        int32_t allowed = 0;
        roj_token token = ROJ_TOKEN_NULL;
        roj_status st;

        for (int32_t t = 0; t < n_vocab; t++) {
            masked[t] = -INFINITY;
            if (t < n_pieces && span_token_kind(r, t) != 0) {
                masked[t] = row[t];
                allowed++;
            }
        }
        if (allowed == 0)
            return ROJ_OK;
        st = constrain_pick(params ? params->sampler : NULL, masked, n_vocab,
                            &token);
        if (st != ROJ_OK)
            return st;
        (*n_tokens)++;
        if (span_token_kind(r, token) == 2)
            return ROJ_OK;
        span_append(r, token);
        if (*n_tokens < max_tokens) {
            st = constrain_decode(ctx, seq, &token, 1, row);
            if (st != ROJ_OK)
                return st;
        }
    }
    return ROJ_OK;
}

roj_status roj_extract_span(roj_context *ctx, int32_t seq,
                            const float *prompt_logits,
                            const roj_pieces *pieces, const char *input,
                            size_t input_len, const roj_span_params *params,
                            roj_span_result *result)
{
    span_run r = {.pieces = pieces, .input = input, .input_len = input_len};
    int32_t n_vocab = roj_model_n_vocab(roj_context_model(ctx));
    int32_t start_len = roj_seq_len(ctx, seq);
    float *row = NULL, *masked = NULL;
    roj_status st;

    memset(result, 0, sizeof *result);
    if (!prompt_logits || !pieces || (!input && input_len > 0))
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "span: prompt logits, pieces and input are needed");
    r.none = params ? params->none_word : NULL;
    r.none_len = r.none ? strlen(r.none) : 0;
    r.out = malloc(input_len + r.none_len + 1);
    r.occ = malloc((input_len + 1) * sizeof *r.occ);
    r.by_byte = malloc((input_len + 1) * sizeof *r.by_byte);
    row = malloc((size_t)n_vocab * sizeof *row);
    masked = malloc((size_t)n_vocab * sizeof *masked);
    if (!r.out || !r.occ || !r.by_byte || !row || !masked) {
        st = roj_error(ROJ_ERR_NOMEM, "span: out of memory");
        goto cleanup;
    }
    memcpy(row, prompt_logits, (size_t)n_vocab * sizeof *row);
    index_input(&r);

    st = span_loop(ctx, seq, &r, params, row, masked, n_vocab,
                   &result->n_tokens);
    if (st == ROJ_OK)
        st = span_result_fill(&r, result);

cleanup:
    roj_seq_truncate(ctx, seq, start_len);
    free(r.out);
    free(r.occ);
    free(r.by_byte);
    free(row);
    free(masked);
    return st;
}
