/*
 * Token ids back to text: byte-level decoding for BPE, U+2581 -> space and
 * <0xXX> -> byte for SentencePiece, word starts and "##" continuations for
 * WordPiece. roj_detokenize also removes the space roj_tokenize put in
 * front of SentencePiece text, so that tokenizing and detokenizing valid
 * UTF-8 gives the input back (the exceptions are listed at the function).
 *
 * NOTE: llama.cpp's "clean_spaces" pass (dropping the space before
 * punctuation for some BPE families) is not applied: it would break that
 * round trip.
 */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/tok_internal.h"

static const char escaped_space[] = "\xe2\x96\x81"; /* U+2581 */

/* A bounded writer: counts every byte, stores those that fit. */
typedef struct piece_out {
    char *buf;
    size_t cap;
    size_t len;
} piece_out;

static void put_bytes(piece_out *o, const char *s, size_t n)
{
    if (o->len < o->cap) {
        size_t room = o->cap - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Copies s with every U+2581 replaced by a space. */
static void put_unescaped(piece_out *o, const char *s, size_t n)
{
    size_t start = 0;

    for (size_t i = 0; i + 3 <= n;) {
        if (memcmp(s + i, escaped_space, 3) == 0) {
            put_bytes(o, s + start, i - start);
            put_bytes(o, " ", 1);
            i += 3;
            start = i;
        } else {
            i++;
        }
    }
    put_bytes(o, s + start, n - start);
}

/* Byte-level BPE: each character of the text stands for one byte. A
 * character outside the byte-to-unicode table is copied as it is. */
static void put_byte_decoded(piece_out *o, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;

    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = utf8_decode(p + i, n - i, &cp);
        int b = len ? bpe_cp_to_byte(cp) : -1;
        if (b >= 0) {
            char c = (char)b;
            put_bytes(o, &c, 1);
        } else {
            len = len ? len : 1;
            put_bytes(o, s + i, len);
        }
        i += len;
    }
}

static void put_normal(const roj_vocab *v, piece_out *o, const char *s,
                       size_t n)
{
    switch (v->kind) {
    case ROJ_VOCAB_BPE:
        put_byte_decoded(o, s, n);
        break;
    case ROJ_VOCAB_SPM:
        put_unescaped(o, s, n);
        break;
    case ROJ_VOCAB_WPM:
        if (v->wpm_phantom_space) {
            put_unescaped(o, s, n);
        } else if (n >= 2 && s[0] == '#' && s[1] == '#') {
            put_bytes(o, s + 2, n - 2);
        } else {
            put_bytes(o, " ", 1);
            put_bytes(o, s, n);
        }
        break;
    }
}

/* Writes the piece of id; returns its full length. */
static size_t write_piece(const roj_vocab *v, roj_token id, unsigned flags,
                          char *buf, size_t cap)
{
    const vocab_token *t = &v->tokens[id];
    const char *s = vocab_text(v, id);
    piece_out o = {buf, cap, 0};

    switch (t->type) {
    case ROJ_TOKEN_TYPE_CONTROL:
    case ROJ_TOKEN_TYPE_UNKNOWN:
        if (flags & ROJ_DETOK_RENDER_SPECIAL)
            put_bytes(&o, s, t->len);
        break;
    case ROJ_TOKEN_TYPE_USER_DEFINED:
        put_bytes(&o, s, t->len);
        break;
    case ROJ_TOKEN_TYPE_NORMAL:
        put_normal(v, &o, s, t->len);
        break;
    case ROJ_TOKEN_TYPE_BYTE:
        /* <0xXX> */
        if (t->len == 6 && hex_value(s[3]) >= 0 && hex_value(s[4]) >= 0) {
            char c = (char)(hex_value(s[3]) * 16 + hex_value(s[4]));
            put_bytes(&o, &c, 1);
        }
        break;
    default:
        /* Unused and undefined tokens stand for no text, as in llama.cpp. */
        break;
    }
    return o.len;
}

roj_status roj_token_to_piece(const roj_vocab *v, roj_token token,
                              unsigned flags, char *buf, size_t cap,
                              size_t *len)
{
    if (!v || !len || (!buf && cap > 0))
        return roj_error(ROJ_ERR_INVALID_ARG, "roj_token_to_piece: vocab "
                         "and len must not be NULL, nor buf when cap > 0");
    if (token < 0 || token >= v->n_tokens)
        return roj_error(ROJ_ERR_RANGE, "token id %d is outside the vocab "
                         "(0 to %d)", token, v->n_tokens - 1);
    *len = write_piece(v, token, flags, buf, cap);
    return ROJ_OK;
}

static bool is_special_type(uint8_t t)
{
    return t == ROJ_TOKEN_TYPE_CONTROL || t == ROJ_TOKEN_TYPE_USER_DEFINED ||
           t == ROJ_TOKEN_TYPE_UNKNOWN;
}

/* Appends the piece of id to *text (*len bytes used of *cap), growing it. */
static roj_status append_piece(const roj_vocab *v, roj_token id,
                               unsigned flags, char **text, size_t *len,
                               size_t *cap)
{
    size_t n = write_piece(v, id, flags, *text + *len, *cap - *len - 1);

    if (*len + n + 1 > *cap) {
        size_t cap2 = *cap * 2;
        while (cap2 < *len + n + 1)
            cap2 *= 2;
        char *p = realloc(*text, cap2);
        if (!p)
            return roj_error(ROJ_ERR_NOMEM, "out of memory for %zu bytes of "
                             "text", cap2);
        *text = p;
        *cap = cap2;
        write_piece(v, id, flags, *text + *len, n);
    }
    *len += n;
    return ROJ_OK;
}

/*
 * Removes the SentencePiece space that roj_tokenize adds (at the start and
 * after each special token) and the space WordPiece puts before its first
 * word; roj/tokenizer.h lists when the round trip is exact.
 */
roj_status roj_detokenize(const roj_vocab *v, const roj_token *tokens,
                          size_t n_tokens, unsigned flags, char **text,
                          size_t *len)
{
    size_t cap = 64;
    size_t n = 0;
    bool strip = v && ((v->kind == ROJ_VOCAB_SPM && v->add_space_prefix) ||
                       v->kind == ROJ_VOCAB_WPM);
    char *out;
    roj_status s;

    if (!v || !text || (!tokens && n_tokens > 0))
        return roj_error(ROJ_ERR_INVALID_ARG, "roj_detokenize: vocab, text "
                         "and tokens (when n_tokens > 0) must not be NULL");
    *text = NULL;
    if (flags & ROJ_DETOK_REMOVE_SPECIAL) {
        if (v->add_bos && n_tokens > 0 && tokens[0] == v->bos) {
            tokens++;
            n_tokens--;
        }
        if (v->add_eos && n_tokens > 0 && tokens[n_tokens - 1] == v->eos)
            n_tokens--;
    }
    if (!(out = malloc(cap)))
        return roj_error(ROJ_ERR_NOMEM, "out of memory");

    for (size_t i = 0; i < n_tokens; i++) {
        roj_token id = tokens[i];
        if (id < 0 || id >= v->n_tokens) {
            free(out);
            return roj_error(ROJ_ERR_RANGE, "token %zu is %d, outside the "
                             "vocab (0 to %d)", i, id, v->n_tokens - 1);
        }
        size_t start = n;
        if ((s = append_piece(v, id, flags, &out, &n, &cap)) != ROJ_OK) {
            free(out);
            return s;
        }
        if (is_special_type(v->tokens[id].type)) {
            /* SentencePiece text after a special token got a space. */
            if (v->kind == ROJ_VOCAB_SPM)
                strip = v->add_space_prefix;
            continue;
        }
        if (v->kind == ROJ_VOCAB_WPM && start > 0)
            strip = false; /* only the text's first word */
        if (strip && n > start) {
            if (out[start] == ' ') {
                memmove(out + start, out + start + 1, n - start - 1);
                n--;
            }
            strip = false;
        }
    }
    out[n] = '\0';
    *text = out;
    if (len)
        *len = n;
    return ROJ_OK;
}
