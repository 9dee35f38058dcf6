/*
 * The token table of a trained BPE tokenizer: adding and finding tokens
 * by stored text, the getters, and the tokenizer.* GGUF keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "gguf/gguf.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/vocab.h"
#include "train/bpe_train_internal.h"

static uint32_t slot_of(const bpe_trained *t, const char *s, size_t len)
{
    uint32_t mask = t->slot_cap - 1;
    uint32_t i = vocab_hash(s, len) & mask;

    for (;;) {
        int32_t id = t->slots[i];
        if (id < 0)
            return i;
        const bpe_train_token *tok = &t->tokens[id];
        if (tok->len == len && memcmp(t->text + tok->offset, s, len) == 0)
            return i;
        i = (i + 1) & mask;
    }
}

int32_t bpe_trained_find(const bpe_trained *t, const char *s, size_t len)
{
    if (t->slot_cap == 0)
        return -1;
    return t->slots[slot_of(t, s, len)];
}

/* Doubles the hash table and reinserts every token. */
static roj_status grow_slots(bpe_trained *t)
{
    uint32_t cap = t->slot_cap ? t->slot_cap * 2 : 1024;
    int32_t *slots = malloc((size_t)cap * sizeof *slots);

    if (!slots || cap < t->slot_cap) {
        free(slots);
        return roj_error(ROJ_ERR_NOMEM, "out of memory for the token table "
                         "of %u tokens", t->n_tokens);
    }
    for (uint32_t i = 0; i < cap; i++)
        slots[i] = -1;
    free(t->slots);
    t->slots = slots;
    t->slot_cap = cap;
    for (uint32_t id = 0; id < t->n_tokens; id++) {
        const bpe_train_token *tok = &t->tokens[id];
        t->slots[slot_of(t, t->text + tok->offset, tok->len)] = (int32_t)id;
    }
    return ROJ_OK;
}

/* Makes room for one more token of len bytes of text. */
static roj_status reserve_token(bpe_trained *t, size_t len)
{
    if (t->n_tokens == t->cap_tokens) {
        uint32_t cap = t->cap_tokens ? t->cap_tokens * 2 : 512;
        bpe_train_token *tokens = realloc(t->tokens, cap * sizeof *tokens);
        if (!tokens)
            return roj_error(ROJ_ERR_NOMEM, "out of memory for %u tokens",
                             cap);
        t->tokens = tokens;
        t->cap_tokens = cap;
    }
    if (t->text_size + len + 1 > t->text_cap) {
        size_t cap = t->text_cap ? t->text_cap : 4096;
        while (cap < t->text_size + len + 1)
            cap *= 2;
        char *text = realloc(t->text, cap);
        if (!text)
            return roj_error(ROJ_ERR_NOMEM, "out of memory for %zu bytes of "
                             "token text", cap);
        t->text = text;
        t->text_cap = cap;
    }
    /* Keep the table at most half full. */
    if (2 * ((size_t)t->n_tokens + 1) > t->slot_cap)
        return grow_slots(t);
    return ROJ_OK;
}

roj_status bpe_trained_add_token(bpe_trained *t, const char *s, size_t len,
                                 roj_token_type type, int32_t *id)
{
    roj_status st;

    if (len == 0 || len > UINT32_MAX - t->text_size - 1)
        return roj_error(ROJ_ERR_INVALID_ARG, "token text of %zu bytes is "
                         "empty or takes the token texts past 4 GiB", len);
    if (bpe_trained_find(t, s, len) >= 0)
        return roj_error(ROJ_ERR_INVALID_ARG, "token '%.*s' is given twice, "
                         "or is the stored text of a byte token; each token "
                         "text must be unique", (int)len, s);
    if ((st = reserve_token(t, len)) != ROJ_OK)
        return st;

    bpe_train_token *tok = &t->tokens[t->n_tokens];
    tok->offset = (uint32_t)t->text_size;
    tok->len = (uint32_t)len;
    tok->type = (uint8_t)type;
    memcpy(t->text + t->text_size, s, len);
    t->text[t->text_size + len] = '\0';
    t->text_size += len + 1;
    t->slots[slot_of(t, s, len)] = (int32_t)t->n_tokens;
    *id = (int32_t)t->n_tokens++;
    return ROJ_OK;
}

roj_status bpe_trained_add_merge(bpe_trained *t, int32_t left, int32_t right)
{
    if (t->n_merges == t->cap_merges) {
        uint32_t cap = t->cap_merges ? t->cap_merges * 2 : 512;
        bpe_train_merge *merges = realloc(t->merges, cap * sizeof *merges);
        if (!merges)
            return roj_error(ROJ_ERR_NOMEM, "out of memory for %u merges",
                             cap);
        t->merges = merges;
        t->cap_merges = cap;
    }
    t->merges[t->n_merges].left = left;
    t->merges[t->n_merges].right = right;
    t->n_merges++;
    return ROJ_OK;
}

void bpe_trained_free(bpe_trained *t)
{
    if (!t)
        return;
    free(t->pre);
    free(t->tokens);
    free(t->text);
    free(t->slots);
    free(t->merges);
    free(t);
}

size_t bpe_trained_n_vocab(const bpe_trained *t)
{
    return t ? t->n_tokens : 0;
}

size_t bpe_trained_n_merges(const bpe_trained *t)
{
    return t ? t->n_merges : 0;
}

int32_t bpe_trained_token(const bpe_trained *t, const char *text)
{
    if (!t || !text)
        return -1;
    int32_t id = bpe_trained_find(t, text, strlen(text));
    return id >= 0 && (uint32_t)id < t->n_special + t->n_added ? id : -1;
}

const char *bpe_trained_token_text(const bpe_trained *t, int32_t id)
{
    if (!t || id < 0 || (uint32_t)id >= t->n_tokens)
        return NULL;
    return t->text + t->tokens[id].offset;
}

roj_status bpe_trained_merge(const bpe_trained *t, size_t rank,
                             int32_t *left, int32_t *right)
{
    if (!t || rank >= t->n_merges)
        return roj_error(ROJ_ERR_RANGE, "merge rank %zu is outside [0, %u)",
                         rank, t ? t->n_merges : 0);
    *left = t->merges[rank].left;
    *right = t->merges[rank].right;
    return ROJ_OK;
}

/* Writes tokenizer.ggml.merges: "left right" per merge, in rank order. */
static roj_status write_merges(const bpe_trained *t, gguf_writer *w)
{
    const char **strings = NULL;
    char *arena = NULL;
    size_t size = 0;
    roj_status st;

    for (uint32_t i = 0; i < t->n_merges; i++)
        size += t->tokens[t->merges[i].left].len +
                t->tokens[t->merges[i].right].len + 2;
    strings = malloc((t->n_merges ? t->n_merges : 1) * sizeof *strings);
    arena = malloc(size ? size : 1);
    if (!strings || !arena) {
        st = roj_error(ROJ_ERR_NOMEM, "out of memory for %u merges",
                       t->n_merges);
        goto cleanup;
    }
    char *p = arena;
    for (uint32_t i = 0; i < t->n_merges; i++) {
        const bpe_train_token *l = &t->tokens[t->merges[i].left];
        const bpe_train_token *r = &t->tokens[t->merges[i].right];
        strings[i] = p;
        memcpy(p, t->text + l->offset, l->len);
        p += l->len;
        *p++ = ' ';
        memcpy(p, t->text + r->offset, r->len);
        p += r->len;
        *p++ = '\0';
    }
    st = gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", strings,
                                 t->n_merges);

cleanup:
    free(strings);
    free(arena);
    return st;
}

/* Writes tokenizer.ggml.tokens and tokenizer.ggml.token_type. */
static roj_status write_tokens(const bpe_trained *t, gguf_writer *w)
{
    const char **strings = malloc(t->n_tokens * sizeof *strings);
    int32_t *types = malloc(t->n_tokens * sizeof *types);
    roj_status st;

    if (!strings || !types) {
        st = roj_error(ROJ_ERR_NOMEM, "out of memory for %u tokens",
                       t->n_tokens);
        goto cleanup;
    }
    for (uint32_t i = 0; i < t->n_tokens; i++) {
        strings[i] = t->text + t->tokens[i].offset;
        types[i] = t->tokens[i].type;
    }
    st = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", strings,
                                 t->n_tokens);
    if (st == ROJ_OK)
        st = gguf_writer_set_arr(w, "tokenizer.ggml.token_type",
                                 GGUF_TYPE_INT32, types, t->n_tokens);

cleanup:
    free(strings);
    free(types);
    return st;
}

roj_status bpe_trained_write_kv(const bpe_trained *t, gguf_writer *w)
{
    roj_status st;

    if (!t || !w)
        return roj_error(ROJ_ERR_INVALID_ARG, "bpe_trained_write_kv: NULL "
                         "argument");
    if ((st = gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2")) ||
        (st = gguf_writer_set_str(w, "tokenizer.ggml.pre", t->pre)) ||
        (st = write_tokens(t, w)) || (st = write_merges(t, w)) ||
        (st = gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id",
                                  (uint32_t)t->bos)) ||
        (st = gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id",
                                  (uint32_t)t->bos)) ||
        (st = gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id",
                                  (uint32_t)t->pad)) ||
        (st = gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token",
                                   t->add_bos)) ||
        (st = gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false)))
        return roj_error_wrap(st, "writing the trained tokenizer");
    return ROJ_OK;
}

roj_status bpe_trained_vocab(const bpe_trained *t, roj_vocab **out)
{
    gguf_writer *w = NULL;
    gguf_file *file = NULL;
    void *image = NULL;
    size_t size = 0;
    roj_status st;

    if (!t || !out)
        return roj_error(ROJ_ERR_INVALID_ARG, "bpe_trained_vocab: NULL "
                         "argument");
    *out = NULL;
    if ((st = gguf_writer_create(&w)) != ROJ_OK)
        return st;
    if ((st = bpe_trained_write_kv(t, w)) != ROJ_OK ||
        (st = gguf_writer_write_memory(w, &image, &size)) != ROJ_OK)
        goto cleanup;
    st = gguf_open_memory(image, size, "trained tokenizer", &file);
    if (st != ROJ_OK)
        goto cleanup;
    st = vocab_load_gguf(file, out);

cleanup:
    gguf_close(file);
    free(image);
    gguf_writer_free(w);
    return st;
}
