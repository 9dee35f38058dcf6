/*
 * WordPiece ("bert" vocabs), as llama.cpp's llm_tokenizer_wpm does it.
 *
 * Normalization follows BERT's BasicTokenizer: NFD (utf8proc), lower case,
 * combining marks removed (accent stripping), control characters, NUL and
 * U+FFFD dropped; words end at whitespace, and every punctuation character,
 * ASCII symbol and CJK ideograph is a word of its own. Each word is then
 * covered greedily by the longest tokens from its start. llama.cpp's GGUF
 * converter stores word-initial tokens as U+2581 + text and continuations
 * without "##"; vocabs that keep the "##" form are handled too. A word that
 * cannot be covered completely becomes the unknown token. Invalid UTF-8
 * bytes are dropped, as U+FFFD is.
 */
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "core/error.h"
#include "tokenizer/tok_internal.h"

static const char phantom_space[] = "\xe2\x96\x81"; /* U+2581 */

/* White_Space code points, the set llama.cpp's WPM splits words on. */
static bool cp_is_whitespace(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 ||
           c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

/* The CJK ideograph blocks BERT isolates (the ranges of Hugging Face's
 * BertPreTokenizer, including its 0x2B920 start of extension E). */
static bool cp_is_cjk(uint32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

typedef struct wpm_state {
    const roj_vocab *v;
    char *word; /* current normalized word, (cap) bytes */
    size_t len;
    size_t cap;
    char *probe; /* "##" + piece, for vocabs in the "##" form */
    size_t probe_cap;
    tok_list *out;
} wpm_state;

static roj_status grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return ROJ_OK;
    size_t cap2 = *cap ? *cap : 64;
    while (cap2 < need)
        cap2 *= 2;
    char *p = realloc(*buf, cap2);
    if (!p)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for a word of %zu "
                         "bytes", need);
    *buf = p;
    *cap = cap2;
    return ROJ_OK;
}

static roj_status word_append(wpm_state *st, uint32_t cp)
{
    roj_status s;

    if (st->len == 0 && st->v->wpm_phantom_space) {
        if ((s = grow(&st->word, &st->cap, 3)) != ROJ_OK)
            return s;
        memcpy(st->word, phantom_space, 3);
        st->len = 3;
    }
    if ((s = grow(&st->word, &st->cap, st->len + 4)) != ROJ_OK)
        return s;
    st->len += utf8_encode(cp, st->word + st->len);
    return ROJ_OK;
}

/* Token of word[i, j): with the "##" form a piece after the first gets the
 * prefix. */
static roj_token lookup_piece(wpm_state *st, size_t i, size_t j)
{
    const roj_vocab *v = st->v;

    if (v->wpm_phantom_space || i == 0)
        return vocab_lookup(v, st->word + i, j - i);
    if (grow(&st->probe, &st->probe_cap, j - i + 2) != ROJ_OK)
        return ROJ_TOKEN_NULL;
    st->probe[0] = '#';
    st->probe[1] = '#';
    memcpy(st->probe + 2, st->word + i, j - i);
    return vocab_lookup(v, st->probe, j - i + 2);
}

/* Covers the current word with the longest tokens from the left and
 * appends them, or the unknown token when some part has no token. */
static roj_status word_flush(wpm_state *st)
{
    const roj_vocab *v = st->v;
    size_t n = st->len;
    size_t start = st->out->n;
    roj_status s;

    if (n == 0)
        return ROJ_OK;
    st->len = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + v->max_token_len < n ? i + v->max_token_len : n;
        roj_token id = ROJ_TOKEN_NULL;
        for (; j > i; j--)
            if ((id = lookup_piece(st, i, j)) != ROJ_TOKEN_NULL)
                break;
        if (id == ROJ_TOKEN_NULL) {
            st->out->n = start; /* drop the partial cover */
            break;
        }
        if ((s = tok_list_push(st->out, id)) != ROJ_OK)
            return s;
        i = j;
    }
    if (st->out->n == start && v->unk != ROJ_TOKEN_NULL)
        return tok_list_push(st->out, v->unk);
    return ROJ_OK;
}

/* Feeds one code point of the NFD form. */
static roj_status feed(wpm_state *st, uint32_t c)
{
    utf8proc_category_t cat;
    roj_status s;

    if (cp_is_whitespace(c))
        return word_flush(st);
    cat = utf8proc_category((utf8proc_int32_t)c);
    if (c == 0 || c == 0xFFFD || cat == UTF8PROC_CATEGORY_CN ||
        (cat >= UTF8PROC_CATEGORY_CC && cat <= UTF8PROC_CATEGORY_CO))
        return ROJ_OK;
    if (cat >= UTF8PROC_CATEGORY_MN && cat <= UTF8PROC_CATEGORY_ME)
        return ROJ_OK; /* accent stripping */

    uint32_t lower = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
    bool punct = cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
    bool symbol = cat >= UTF8PROC_CATEGORY_SM && cat <= UTF8PROC_CATEGORY_SO;
    if (punct || (c < 0x7F && symbol) || cp_is_cjk(c)) {
        if ((s = word_flush(st)) != ROJ_OK)
            return s;
        if ((s = word_append(st, lower)) != ROJ_OK)
            return s;
        return word_flush(st);
    }
    return word_append(st, lower);
}

roj_status wpm_tokenize(const roj_vocab *v, const char *text, size_t len,
                        tok_list *out)
{
    wpm_state st = {.v = v, .out = out};
    const unsigned char *p = (const unsigned char *)text;
    roj_status s = ROJ_OK;

    for (size_t off = 0; off < len && s == ROJ_OK;) {
        uint32_t cp;
        size_t n = utf8_decode(p + off, len - off, &cp);
        if (n == 0) {
            off++; /* invalid byte: dropped like U+FFFD */
            continue;
        }
        off += n;

        utf8proc_int32_t dec[8];
        utf8proc_ssize_t n_dec = utf8proc_decompose_char(
            (utf8proc_int32_t)cp, dec, 8, UTF8PROC_DECOMPOSE, NULL);
        if (n_dec < 0 || n_dec > 8) {
            dec[0] = (utf8proc_int32_t)cp;
            n_dec = 1;
        }
        for (utf8proc_ssize_t i = 0; i < n_dec && s == ROJ_OK; i++)
            s = feed(&st, (uint32_t)dec[i]);
    }
    if (s == ROJ_OK)
        s = word_flush(&st);
    free(st.word);
    free(st.probe);
    return s;
}
