/*
 * bpe_train: option checks, the base vocabulary (special, added and byte
 * tokens), then the corpus and the merge loop.
 */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "tokenizer/pretok.h"
#include "tokenizer/tok_internal.h"
#include "train/bpe_train_internal.h"

#define DEFAULT_PRE "gpt-2"
#define DEFAULT_SPECIAL "<|endoftext|>"
#define PAD_TEXT "<|pad|>"
#define DEFAULT_MIN_FREQUENCY 2
#define MAX_THREADS 64

/* The tokenizer.ggml.pre value to store: "gpt2" is the family name in
 * pretok_table.c, which llama.cpp does not accept as a value. */
static const char *canonical_pre(const char *pre)
{
    return !pre || strcmp(pre, "gpt2") == 0 ? DEFAULT_PRE : pre;
}

/* Checks the options that do not depend on the texts. */
static roj_status check_opts(const bpe_train_opts *o, size_t n_special)
{
    uint64_t fixed = 256 + (uint64_t)n_special + o->n_added;

    if (o->n_special > 0 && !o->special)
        return roj_error(ROJ_ERR_INVALID_ARG, "bpe_train: n_special is %zu "
                         "but special is NULL", o->n_special);
    if (o->n_added > 0 && !o->added)
        return roj_error(ROJ_ERR_INVALID_ARG, "bpe_train: n_added is %zu "
                         "but added is NULL", o->n_added);
    if (o->vocab_size < fixed || o->vocab_size > INT32_MAX)
        return roj_error(ROJ_ERR_INVALID_ARG, "bpe_train: vocab_size is %u; "
                         "it must be at least %llu (256 byte tokens, %zu "
                         "special and %zu added tokens) and at most %d",
                         o->vocab_size, (unsigned long long)fixed, n_special,
                         o->n_added, INT32_MAX);
    if (!pretok_find(canonical_pre(o->pre)))
        return roj_error(ROJ_ERR_UNSUPPORTED, "bpe_train: pre-tokenizer "
                         "'%s' is unknown; use a tokenizer.ggml.pre value "
                         "from src/tokenizer/pretok_table.c such as 'gpt-2' "
                         "or 'llama-bpe'", o->pre);
    for (size_t i = 0; i < o->n_special; i++)
        if (!o->special[i] || !o->special[i][0])
            return roj_error(ROJ_ERR_INVALID_ARG, "bpe_train: special token "
                             "%zu is NULL or empty", i);
    for (size_t i = 0; i < o->n_added; i++)
        if (!o->added[i] || !o->added[i][0])
            return roj_error(ROJ_ERR_INVALID_ARG, "bpe_train: added token "
                             "%zu is NULL or empty", i);
    return ROJ_OK;
}

/* Adds the special, added and byte tokens, in that id order. */
static roj_status add_base_tokens(bpe_trained *t, const char *const *special,
                                  size_t n_special, const bpe_train_opts *o)
{
    roj_status st;
    int32_t id;

    for (size_t i = 0; i < n_special; i++) {
        st = bpe_trained_add_token(t, special[i], strlen(special[i]),
                                   ROJ_TOKEN_TYPE_CONTROL, &id);
        if (st != ROJ_OK)
            return roj_error_wrap(st, "bpe_train: special token %zu", i);
        if (strcmp(special[i], PAD_TEXT) == 0)
            t->pad = id;
    }
    for (size_t i = 0; i < o->n_added; i++) {
        st = bpe_trained_add_token(t, o->added[i], strlen(o->added[i]),
                                   ROJ_TOKEN_TYPE_USER_DEFINED, &id);
        if (st != ROJ_OK)
            return roj_error_wrap(st, "bpe_train: added token %zu", i);
    }
    t->byte_base = (int32_t)t->n_tokens;
    for (int b = 0; b < 256; b++) {
        char buf[4];
        size_t n = utf8_encode(bpe_byte_to_cp((uint8_t)b), buf);
        st = bpe_trained_add_token(t, buf, n, ROJ_TOKEN_TYPE_NORMAL, &id);
        if (st != ROJ_OK)
            return roj_error_wrap(st, "bpe_train: byte token %d", b);
    }
    return ROJ_OK;
}

/* Creates the untrained tokenizer: base tokens, no merges. */
static roj_status trained_create(const bpe_train_opts *o, bpe_trained **out)
{
    static const char *const default_special[] = {DEFAULT_SPECIAL};
    const char *const *special = o->n_special ? o->special : default_special;
    size_t n_special = o->n_special ? o->n_special : 1;
    bpe_trained *t = calloc(1, sizeof *t);
    roj_status st;

    *out = NULL;
    if (!t || !(t->pre = strdup(canonical_pre(o->pre)))) {
        free(t);
        return roj_error(ROJ_ERR_NOMEM, "bpe_train: out of memory");
    }
    t->n_special = (uint32_t)n_special;
    t->n_added = (uint32_t)o->n_added;
    t->bos = 0;
    t->pad = 0;
    t->add_bos = !o->no_bos;
    if ((st = add_base_tokens(t, special, n_special, o)) != ROJ_OK) {
        bpe_trained_free(t);
        return st;
    }
    *out = t;
    return ROJ_OK;
}

roj_status bpe_train(const char *const *texts, const size_t *lens,
                     size_t n_texts, const bpe_train_opts *opts,
                     bpe_trained **out)
{
    bpe_trained *t = NULL;
    roj_vocab *base = NULL;
    bpe_corpus corpus = {0};
    roj_status st;

    if (!opts || !out || (n_texts > 0 && (!texts || !lens)))
        return roj_error(ROJ_ERR_INVALID_ARG, "bpe_train: opts, out, texts "
                         "and lens must not be NULL");
    *out = NULL;
    for (size_t i = 0; i < n_texts; i++)
        if (!texts[i] && lens[i] > 0)
            return roj_error(ROJ_ERR_INVALID_ARG, "bpe_train: text %zu is "
                             "NULL but has %zu bytes", i, lens[i]);
    if ((st = check_opts(opts, opts->n_special ? opts->n_special : 1)) ||
        (st = trained_create(opts, &t)))
        return st;

    /* The tokenizer without merges, loaded the normal way, splits the
     * texts with exactly the rules inference uses. */
    int n_threads = opts->n_threads < 1 ? 1 : opts->n_threads;
    if (n_threads > MAX_THREADS)
        n_threads = MAX_THREADS;
    uint32_t min_frequency = opts->min_frequency ? opts->min_frequency
                                                 : DEFAULT_MIN_FREQUENCY;
    if ((st = bpe_trained_vocab(t, &base)) != ROJ_OK ||
        (st = bpe_corpus_build(base, texts, lens, n_texts, n_threads,
                               t->byte_base, &corpus)) != ROJ_OK)
        goto cleanup;
    log_debug("bpe_train: %zu texts, %u distinct pieces, %zu bytes of "
              "distinct pieces", n_texts, corpus.n_words, corpus.n_slots);
    st = bpe_merge_run(t, &corpus, opts->vocab_size, min_frequency);

cleanup:
    bpe_corpus_free(&corpus);
    roj_vocab_free(base);
    if (st != ROJ_OK) {
        bpe_trained_free(t);
        return st;
    }
    *out = t;
    return ROJ_OK;
}
