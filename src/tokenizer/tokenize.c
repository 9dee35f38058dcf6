/*
 * roj_tokenize: special-token splitting, then the model's tokenizer on each
 * raw-text fragment, with BOS / EOS around the result when asked.
 */
#include <stdlib.h>

#include "core/error.h"
#include "tokenizer/tok_internal.h"

roj_status tok_list_push(tok_list *list, roj_token id)
{
    if (list->n == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 64;
        roj_token *ids = realloc(list->ids, cap * sizeof *ids);
        if (!ids)
            return roj_error(ROJ_ERR_NOMEM, "out of memory for %zu tokens",
                             cap);
        list->ids = ids;
        list->cap = cap;
    }
    list->ids[list->n++] = id;
    return ROJ_OK;
}

/* Tokenizes one raw-text fragment. prev_special says whether a special
 * token (or the start of the text) comes right before it. */
static roj_status tokenize_fragment(const roj_vocab *v, const char *text,
                                    size_t len, bool prev_special,
                                    tok_list *out)
{
    switch (v->kind) {
    case ROJ_VOCAB_BPE:
        return bpe_tokenize(v, text, len, out);
    case ROJ_VOCAB_SPM:
        /* SentencePiece marks a word start with a space; like llama.cpp,
         * add one at the start and after each special token. */
        return spm_tokenize(v, text, len, v->add_space_prefix && prev_special,
                            out);
    case ROJ_VOCAB_WPM:
        return wpm_tokenize(v, text, len, out);
    }
    return roj_error(ROJ_ERR_INTERNAL, "vocab of unknown kind %d", v->kind);
}

roj_status roj_tokenize(const roj_vocab *v, const char *text, size_t len,
                        unsigned flags, roj_token **tokens, size_t *n_tokens)
{
    tok_fragment_list frags = {0};
    tok_list out = {0};
    bool add_special = flags & ROJ_TOKENIZE_ADD_SPECIAL;
    bool prev_special = true;
    roj_status s;

    if (!v || !tokens || !n_tokens || (!text && len > 0))
        return roj_error(ROJ_ERR_INVALID_ARG, "roj_tokenize: vocab, tokens, "
                         "n_tokens and text (when len > 0) must not be NULL");
    if (flags & ~(ROJ_TOKENIZE_ADD_SPECIAL | ROJ_TOKENIZE_PARSE_SPECIAL))
        return roj_error(ROJ_ERR_INVALID_ARG, "roj_tokenize: unknown flag "
                         "bits 0x%x", flags & ~(ROJ_TOKENIZE_ADD_SPECIAL |
                                               ROJ_TOKENIZE_PARSE_SPECIAL));
    *tokens = NULL;
    *n_tokens = 0;

    s = special_split(v, text, len, flags & ROJ_TOKENIZE_PARSE_SPECIAL,
                      &frags);
    if (s != ROJ_OK)
        goto cleanup;
    if (add_special && v->add_bos && (s = tok_list_push(&out, v->bos)))
        goto cleanup;
    for (size_t i = 0; i < frags.n; i++) {
        const tok_fragment *f = &frags.items[i];
        if (f->token != ROJ_TOKEN_NULL) {
            s = tok_list_push(&out, f->token);
            prev_special = true;
        } else {
            s = tokenize_fragment(v, text + f->off, f->len, prev_special,
                                  &out);
            prev_special = false;
        }
        if (s != ROJ_OK)
            goto cleanup;
    }
    if (add_special && v->add_eos && (s = tok_list_push(&out, v->eos)))
        goto cleanup;

    /* Always hand back an array the caller can free, even when empty. */
    if (!out.ids && (s = tok_list_push(&out, 0)) == ROJ_OK)
        out.n = 0;
    if (s != ROJ_OK)
        goto cleanup;
    *tokens = out.ids;
    *n_tokens = out.n;
    out.ids = NULL;

cleanup:
    free(out.ids);
    free(frags.items);
    return s;
}
