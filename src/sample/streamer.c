/*
 * Streaming detokenizer: turns generated tokens into UTF-8 text chunks,
 * holding back bytes that may still become part of a character or of a
 * stop string.
 */
#include "roj/sampler.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "sample/sample_util.h"

/* A growable byte buffer, always NUL-terminated when data != NULL. */
typedef struct byte_buf {
    char *data;
    size_t len;
    size_t cap;
} byte_buf;

struct roj_streamer {
    const roj_vocab *vocab;
    char **stop;          /* (n_stop) copies of the stop strings */
    size_t *stop_len;     /* (n_stop) */
    size_t n_stop;
    int32_t max_tokens;
    unsigned detok_flags;
    roj_text_fn on_text;
    void *user_data;

    byte_buf pending;     /* bytes received but not emitted */
    byte_buf out;         /* every byte emitted */
    byte_buf piece;       /* scratch for roj_token_to_piece */
    int32_t n_tokens;
    roj_stop_reason reason;
};

static const char REPLACEMENT[] = "\xEF\xBF\xBD"; /* U+FFFD */

static roj_status buf_reserve(byte_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return ROJ_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return roj_error(ROJ_ERR_NOMEM, "streamer: out of memory");
    b->data = p;
    b->cap = cap;
    return ROJ_OK;
}

static roj_status buf_append(byte_buf *b, const char *bytes, size_t len)
{
    roj_status st = buf_reserve(b, len);
    if (st != ROJ_OK)
        return st;
    if (len)
        memcpy(b->data + b->len, bytes, len);
    b->len += len;
    b->data[b->len] = '\0';
    return ROJ_OK;
}

const char *roj_stop_reason_name(roj_stop_reason reason)
{
    switch (reason) {
    case ROJ_STOP_NONE: return "none";
    case ROJ_STOP_EOG: return "eog";
    case ROJ_STOP_STRING: return "stop-string";
    case ROJ_STOP_MAX_TOKENS: return "max-tokens";
    case ROJ_STOP_CONTEXT_FULL: return "context-full";
    case ROJ_STOP_CALLBACK: return "callback";
    }
    return "unknown";
}

roj_status roj_streamer_create(const roj_vocab *vocab,
                               const roj_streamer_params *params,
                               roj_streamer **out)
{
    roj_streamer *s = NULL;

    *out = NULL;
    s = calloc(1, sizeof *s);
    if (!s)
        return roj_error(ROJ_ERR_NOMEM, "streamer: out of memory");
    s->vocab = vocab;
    s->max_tokens = params->max_tokens;
    s->detok_flags = params->detok_flags;
    s->on_text = params->on_text;
    s->user_data = params->user_data;
    if (params->n_stop > 0) {
        s->stop = calloc(params->n_stop, sizeof *s->stop);
        s->stop_len = calloc(params->n_stop, sizeof *s->stop_len);
        if (!s->stop || !s->stop_len)
            goto fail_nomem;
    }
    for (size_t i = 0; i < params->n_stop; i++) {
        const char *text = params->stop[i];
        if (!text || !text[0]) {
            roj_streamer_free(s);
            return roj_error(ROJ_ERR_INVALID_ARG,
                             "streamer: stop string %zu is empty", i);
        }
        s->stop_len[i] = strlen(text);
        s->stop[i] = malloc(s->stop_len[i] + 1);
        if (!s->stop[i])
            goto fail_nomem;
        memcpy(s->stop[i], text, s->stop_len[i] + 1);
        s->n_stop = i + 1;
    }
    if (buf_reserve(&s->out, 0) != ROJ_OK)
        goto fail_nomem;
    s->out.data[0] = '\0';
    *out = s;
    return ROJ_OK;

fail_nomem:
    roj_streamer_free(s);
    return roj_error(ROJ_ERR_NOMEM, "streamer: out of memory");
}

void roj_streamer_free(roj_streamer *streamer)
{
    if (!streamer)
        return;
    for (size_t i = 0; i < streamer->n_stop; i++)
        free(streamer->stop[i]);
    free(streamer->stop);
    free(streamer->stop_len);
    free(streamer->pending.data);
    free(streamer->out.data);
    free(streamer->piece.data);
    free(streamer);
}

void roj_streamer_reset(roj_streamer *streamer)
{
    streamer->pending.len = 0;
    streamer->out.len = 0;
    if (streamer->out.data)
        streamer->out.data[0] = '\0';
    streamer->n_tokens = 0;
    streamer->reason = ROJ_STOP_NONE;
}

roj_stop_reason roj_streamer_reason(const roj_streamer *streamer)
{
    return streamer->reason;
}

const char *roj_streamer_text(const roj_streamer *streamer, size_t *len)
{
    if (len)
        *len = streamer->out.len;
    return streamer->out.data ? streamer->out.data : "";
}

int32_t roj_streamer_n_tokens(const roj_streamer *streamer)
{
    return streamer->n_tokens;
}

/* Earliest start of a complete stop string in pending, or -1. */
static long find_stop(const roj_streamer *s)
{
    long best = -1;
    const char *p = s->pending.data;
    size_t n = s->pending.len;

    for (size_t i = 0; i < s->n_stop; i++) {
        size_t m = s->stop_len[i];
        for (size_t at = 0; m <= n && at + m <= n; at++) {
            if (best >= 0 && (long)at >= best)
                break;
            if (memcmp(p + at, s->stop[i], m) == 0) {
                best = (long)at;
                break;
            }
        }
    }
    return best;
}

/* Length of the longest suffix of pending that is a proper prefix of a
 * stop string: bytes that must wait for the next token. */
static size_t stop_holdback(const roj_streamer *s)
{
    const char *p = s->pending.data;
    size_t n = s->pending.len, hold = 0;

    for (size_t i = 0; i < s->n_stop; i++) {
        size_t k = s->stop_len[i] - 1;
        if (k > n)
            k = n;
        for (; k > hold; k--) {
            if (memcmp(p + n - k, s->stop[i], k) == 0) {
                hold = k;
                break;
            }
        }
    }
    return hold;
}

/*
 * Moves the first bytes of pending, up to limit, to the output, replacing
 * invalid sequences by U+FFFD. A character that crosses limit, or an
 * unfinished one at the end, stays pending unless final is set (then an
 * unfinished one becomes U+FFFD).
 */
static roj_status emit_prefix(roj_streamer *s, size_t limit, bool final)
{
    const unsigned char *p = (const unsigned char *)s->pending.data;
    size_t n = s->pending.len, pos = 0, start = s->out.len;
    roj_status st = ROJ_OK;

    while (pos < limit) {
        size_t used = 0;
        enum utf8_step_result r = utf8_step(p + pos, n - pos, &used);
        if (r == UTF8_INCOMPLETE && !final)
            break;
        if (pos + used > limit) {
            if (!final)
                break;
            /* Only a stop string can cut a character: drop its start. */
            st = buf_append(&s->out, REPLACEMENT, 3);
            pos = limit;
            break;
        }
        if (r == UTF8_CHAR)
            st = buf_append(&s->out, (const char *)p + pos, used);
        else
            st = buf_append(&s->out, REPLACEMENT, 3);
        if (st != ROJ_OK)
            return st;
        pos += used;
    }
    if (st != ROJ_OK)
        return st;
    memmove(s->pending.data, s->pending.data + pos, n - pos);
    s->pending.len = n - pos;
    s->pending.data[s->pending.len] = '\0';

    if (s->out.len > start && s->on_text &&
        !s->on_text(s->out.data + start, s->out.len - start, s->user_data) &&
        s->reason == ROJ_STOP_NONE)
        s->reason = ROJ_STOP_CALLBACK;
    return ROJ_OK;
}

/* Emits what can be emitted after new bytes arrived, or everything when
 * final is set. */
static roj_status streamer_process(roj_streamer *s, bool final)
{
    long at = find_stop(s);
    roj_status st;

    if (at >= 0) {
        st = emit_prefix(s, (size_t)at, true);
        s->pending.len = 0;
        s->pending.data[0] = '\0';
        s->reason = ROJ_STOP_STRING;
        return st;
    }
    if (final)
        return emit_prefix(s, s->pending.len, true);
    return emit_prefix(s, s->pending.len - stop_holdback(s), false);
}

static void count_token(roj_streamer *s)
{
    s->n_tokens++;
    if (s->max_tokens > 0 && s->n_tokens >= s->max_tokens &&
        s->reason == ROJ_STOP_NONE)
        s->reason = ROJ_STOP_MAX_TOKENS;
}

roj_status roj_streamer_push_bytes(roj_streamer *streamer, const char *bytes,
                                   size_t len, roj_stop_reason *reason)
{
    roj_streamer *s = streamer;
    roj_status st = ROJ_OK;

    if (s->reason == ROJ_STOP_NONE) {
        st = buf_append(&s->pending, bytes, len);
        if (st == ROJ_OK)
            st = streamer_process(s, false);
        if (st == ROJ_OK)
            count_token(s);
    }
    if (reason)
        *reason = s->reason;
    return st;
}

roj_status roj_streamer_push(roj_streamer *streamer, roj_token token,
                             roj_stop_reason *reason)
{
    roj_streamer *s = streamer;
    size_t len = 0;
    roj_status st;

    if (reason)
        *reason = s->reason;
    if (s->reason != ROJ_STOP_NONE)
        return ROJ_OK;
    if (!s->vocab)
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "streamer: token %d pushed but no vocab was given",
                         token);
    if (roj_vocab_is_eog(s->vocab, token)) {
        s->reason = ROJ_STOP_EOG;
        s->n_tokens++;
        if (reason)
            *reason = s->reason;
        return ROJ_OK;
    }

    st = buf_reserve(&s->piece, 32);
    if (st != ROJ_OK)
        return st;
    st = roj_token_to_piece(s->vocab, token, s->detok_flags, s->piece.data,
                            s->piece.cap, &len);
    if (st == ROJ_OK && len > s->piece.cap) {
        st = buf_reserve(&s->piece, len);
        if (st == ROJ_OK)
            st = roj_token_to_piece(s->vocab, token, s->detok_flags,
                                    s->piece.data, s->piece.cap, &len);
    }
    if (st != ROJ_OK)
        return roj_error_wrap(st, "streamer: token %d", token);
    return roj_streamer_push_bytes(s, s->piece.data, len, reason);
}

roj_status roj_streamer_finish(roj_streamer *streamer)
{
    if (streamer->reason == ROJ_STOP_STRING ||
        streamer->reason == ROJ_STOP_CALLBACK || streamer->pending.len == 0)
        return ROJ_OK;
    return streamer_process(streamer, true);
}
