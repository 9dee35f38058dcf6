/*
 * Splitting the input on special tokens before the model's tokenizer runs,
 * with llama.cpp's semantics (tokenizer_st_partition at commit c392e5094):
 * the special tokens are taken longest text first, and each one splits
 * every raw-text fragment left by the longer ones at all its non-
 * overlapping occurrences, left to right. Hugging Face does the same for
 * added tokens, so "<|im_end|>" inside "<|im_end|>x" wins over any shorter
 * token that overlaps it.
 *
 * NOTE: the lstrip / rstrip flags of added tokens are not applied: the GGUF
 * files roj reads carry no per-token flags (llama.cpp sets them from the
 * model name for a few families).
 */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/tok_internal.h"

/* First occurrence of needle (n > 0 bytes) in hay[0, len), or NULL. */
static const char *find_bytes(const char *hay, size_t len, const char *needle,
                              size_t n)
{
    const char *end = hay + len;

    while ((size_t)(end - hay) >= n) {
        const char *p = memchr(hay, needle[0], (size_t)(end - hay) - n + 1);
        if (!p)
            return NULL;
        if (memcmp(p, needle, n) == 0)
            return p;
        hay = p + 1;
    }
    return NULL;
}

static roj_status fragment_push(tok_fragment_list *list, roj_token token,
                                size_t off, size_t len)
{
    if (list->n == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 16;
        tok_fragment *items = realloc(list->items, cap * sizeof *items);
        if (!items)
            return roj_error(ROJ_ERR_NOMEM, "out of memory splitting on "
                             "special tokens (%zu fragments)", list->n);
        list->items = items;
        list->cap = cap;
    }
    list->items[list->n].token = token;
    list->items[list->n].off = off;
    list->items[list->n].len = len;
    list->n++;
    return ROJ_OK;
}

/* Copies the fragments of in to out, splitting raw text on token id. */
static roj_status split_on(const roj_vocab *v, roj_token id, const char *text,
                           const tok_fragment_list *in, tok_fragment_list *out)
{
    const char *needle = vocab_text(v, id);
    size_t n = v->tokens[id].len;
    roj_status s;

    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        const tok_fragment *f = &in->items[i];
        size_t off = f->off;
        size_t end = f->off + f->len;

        if (f->token != ROJ_TOKEN_NULL) {
            if ((s = fragment_push(out, f->token, 0, 0)) != ROJ_OK)
                return s;
            continue;
        }
        for (;;) {
            const char *hit = find_bytes(text + off, end - off, needle, n);
            if (!hit)
                break;
            size_t at = (size_t)(hit - text);
            if (at > off && (s = fragment_push(out, ROJ_TOKEN_NULL, off,
                                               at - off)) != ROJ_OK)
                return s;
            if ((s = fragment_push(out, id, 0, 0)) != ROJ_OK)
                return s;
            off = at + n;
        }
        if (off < end &&
            (s = fragment_push(out, ROJ_TOKEN_NULL, off, end - off)) != ROJ_OK)
            return s;
    }
    return ROJ_OK;
}

roj_status special_split(const roj_vocab *v, const char *text, size_t len,
                         bool parse_special, tok_fragment_list *out)
{
    tok_fragment_list cur = {0};
    tok_fragment_list next = {0};
    roj_status s;

    memset(out, 0, sizeof *out);
    if (len == 0)
        return ROJ_OK;
    if ((s = fragment_push(&cur, ROJ_TOKEN_NULL, 0, len)) != ROJ_OK)
        goto cleanup;

    for (size_t k = 0; k < v->n_special; k++) {
        roj_token id = v->special[k];
        const vocab_token *t = &v->tokens[id];
        if (!parse_special && t->type != ROJ_TOKEN_TYPE_USER_DEFINED)
            continue;
        /* Most special tokens do not occur at all: skip them cheaply. */
        if (t->len > len || !find_bytes(text, len, vocab_text(v, id), t->len))
            continue;
        if ((s = split_on(v, id, text, &cur, &next)) != ROJ_OK)
            goto cleanup;
        tok_fragment_list tmp = cur;
        cur = next;
        next = tmp;
    }
    *out = cur;
    cur.items = NULL;

cleanup:
    free(cur.items);
    free(next.items);
    return s;
}
