/*
 * Building a roj_vocab from the tokenizer.ggml.* metadata of a GGUF file:
 * the token list, token types and scores, the BPE merges and the byte
 * tokens. Special tokens are set up in vocab_special.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "gguf/gguf.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/vocab.h"

#define KEY_MODEL "tokenizer.ggml.model"
#define KEY_PRE "tokenizer.ggml.pre"
#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_TYPES "tokenizer.ggml.token_type"
#define KEY_SCORES "tokenizer.ggml.scores"
#define KEY_MERGES "tokenizer.ggml.merges"
#define KEY_SPACE_PREFIX "tokenizer.ggml.add_space_prefix"

/* Token texts longer than this are rejected as malformed (bytes). */
#define TOKEN_TEXT_MAX (1u << 20)

static roj_status read_kind(roj_vocab *v, const gguf_file *file,
                            const char *name)
{
    const char *model = NULL;
    const char *pre = NULL;
    roj_status s = gguf_get_str(file, KEY_MODEL, &model, NULL);

    if (s == ROJ_ERR_NOT_FOUND)
        return roj_error(ROJ_ERR_NOT_FOUND,
                         "%s: no tokenizer (key %s is missing); use a GGUF "
                         "file converted with its tokenizer", name,
                         KEY_MODEL);
    if (s != ROJ_OK)
        return s;
    if (strcmp(model, "gpt2") == 0)
        v->kind = ROJ_VOCAB_BPE;
    else if (strcmp(model, "llama") == 0)
        v->kind = ROJ_VOCAB_SPM;
    else if (strcmp(model, "bert") == 0)
        v->kind = ROJ_VOCAB_WPM;
    else
        return roj_error(ROJ_ERR_UNSUPPORTED,
                         "%s: %s is '%s'; roj supports 'gpt2' (byte-level "
                         "BPE), 'llama' (SentencePiece) and 'bert' "
                         "(WordPiece)", name, KEY_MODEL, model);

    s = gguf_get_str(file, KEY_PRE, &pre, NULL);
    if (s == ROJ_ERR_NOT_FOUND) {
        if (v->kind == ROJ_VOCAB_BPE)
            log_warn("%s: %s is missing; using the 'default' "
                     "pre-tokenizer, which may split text differently from "
                     "the original tokenizer", name, KEY_PRE);
        pre = "default";
    } else if (s != ROJ_OK) {
        return s;
    }
    v->pre = strdup(pre);
    if (!v->pre)
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", name);
    return ROJ_OK;
}

/* Checks that key is an array of elem_type with at least n elements;
 * returns ROJ_ERR_NOT_FOUND (without a message) when it is absent. */
static roj_status check_array(const gguf_file *file, const char *key,
                              enum gguf_type elem_type, uint64_t n,
                              const char *name)
{
    int64_t idx = gguf_find_key(file, key);

    if (idx < 0)
        return ROJ_ERR_NOT_FOUND;
    if (gguf_kv_type(file, idx) != GGUF_TYPE_ARRAY ||
        gguf_kv_array_type(file, idx) != elem_type)
        return roj_error(ROJ_ERR_FORMAT, "%s: %s must be an array of %s",
                         name, key, gguf_type_name(elem_type));
    if (gguf_kv_array_len(file, idx) < n)
        return roj_error(ROJ_ERR_FORMAT,
                         "%s: %s has %llu entries but the vocab has %llu "
                         "tokens", name, key,
                         (unsigned long long)gguf_kv_array_len(file, idx),
                         (unsigned long long)n);
    return ROJ_OK;
}

/* Copies the token texts into one arena of NUL-terminated strings. */
static roj_status read_tokens(roj_vocab *v, const gguf_file *file,
                              const char *name)
{
    int64_t idx = gguf_find_key(file, KEY_TOKENS);
    uint64_t n;
    size_t total = 0;
    roj_status s;

    if (idx < 0)
        return roj_error(ROJ_ERR_NOT_FOUND, "%s: no token list (key %s is "
                         "missing)", name, KEY_TOKENS);
    if ((s = check_array(file, KEY_TOKENS, GGUF_TYPE_STRING, 0, name)))
        return s;
    n = gguf_kv_array_len(file, idx);
    if (n == 0 || n > INT32_MAX)
        return roj_error(ROJ_ERR_FORMAT, "%s: %s has %llu tokens; expected "
                         "1 to %d", name, KEY_TOKENS, (unsigned long long)n,
                         INT32_MAX);
    v->n_tokens = (int32_t)n;
    v->tokens = calloc(n, sizeof *v->tokens);
    if (!v->tokens)
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory for %llu tokens",
                         name, (unsigned long long)n);

    /* Pass 1: sizes. An empty text becomes "[EMPTY_<id>]" as in llama.cpp,
     * so every token has a unique, non-empty text. */
    gguf_str_iter it;
    if ((s = gguf_str_iter_init(file, KEY_TOKENS, &it)))
        return s;
    for (uint64_t i = 0; i < n; i++) {
        const char *p;
        uint64_t len;
        (void)gguf_str_iter_next(&it, &p, &len);
        if (len > TOKEN_TEXT_MAX)
            return roj_error(ROJ_ERR_FORMAT, "%s: token %llu of %s is %llu "
                             "bytes long (max %u)", name,
                             (unsigned long long)i, KEY_TOKENS,
                             (unsigned long long)len, TOKEN_TEXT_MAX);
        total += (len ? len : 24) + 1;
    }
    if (total > UINT32_MAX)
        return roj_error(ROJ_ERR_FORMAT, "%s: the token texts of %s take "
                         "%zu bytes (max 4 GiB)", name, KEY_TOKENS, total);
    v->text = malloc(total);
    if (!v->text)
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory for %zu bytes of "
                         "token text", name, total);

    /* Pass 2: copy. */
    size_t off = 0;
    (void)gguf_str_iter_init(file, KEY_TOKENS, &it);
    for (uint64_t i = 0; i < n; i++) {
        const char *p;
        uint64_t len;
        (void)gguf_str_iter_next(&it, &p, &len);
        if (len == 0) {
            log_warn("%s: token %llu is empty; naming it [EMPTY_%llu]", name,
                     (unsigned long long)i, (unsigned long long)i);
            len = (uint64_t)snprintf(v->text + off, 25, "[EMPTY_%llu]",
                                     (unsigned long long)i);
        } else {
            memcpy(v->text + off, p, len);
        }
        v->text[off + len] = '\0';
        v->tokens[i].offset = (uint32_t)off;
        v->tokens[i].len = (uint32_t)len;
        v->tokens[i].type = ROJ_TOKEN_TYPE_NORMAL;
        if (len > v->max_token_len)
            v->max_token_len = len;
        off += len + 1;
    }
    v->text_size = off;
    return ROJ_OK;
}

static roj_status read_types_scores(roj_vocab *v, const gguf_file *file,
                                    const char *name)
{
    uint64_t n = (uint64_t)v->n_tokens;
    int32_t *types = NULL;
    float *scores = NULL;
    uint64_t got = 0;
    roj_status s;

    s = check_array(file, KEY_TYPES, GGUF_TYPE_INT32, n, name);
    if (s == ROJ_OK) {
        if ((s = gguf_get_arr_i32(file, KEY_TYPES, &types, &got)))
            return s;
        for (uint64_t i = 0; i < n; i++) {
            int32_t t = types[i];
            v->tokens[i].type = t >= ROJ_TOKEN_TYPE_UNDEFINED &&
                                        t <= ROJ_TOKEN_TYPE_BYTE
                                    ? (uint8_t)t
                                    : ROJ_TOKEN_TYPE_UNDEFINED;
        }
        free(types);
    } else if (s != ROJ_ERR_NOT_FOUND) {
        return s;
    }

    int64_t idx = gguf_find_key(file, KEY_SCORES);
    if (idx < 0)
        return ROJ_OK;
    if (gguf_kv_type(file, idx) == GGUF_TYPE_ARRAY &&
        gguf_kv_array_type(file, idx) == GGUF_TYPE_INT32) {
        /* Integer scores exist in some old conversions. */
        if ((s = gguf_get_arr_i32(file, KEY_SCORES, &types, &got)))
            return s;
        scores = malloc((got ? got : 1) * sizeof *scores);
        for (uint64_t i = 0; scores && i < got; i++)
            scores[i] = (float)types[i];
        free(types);
        if (!scores)
            return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", name);
    } else if ((s = gguf_get_arr_f32(file, KEY_SCORES, &scores, &got))) {
        return s;
    }
    if (got < n) {
        free(scores);
        return roj_error(ROJ_ERR_FORMAT, "%s: %s has %llu entries but the "
                         "vocab has %llu tokens", name, KEY_SCORES,
                         (unsigned long long)got, (unsigned long long)n);
    }
    for (uint64_t i = 0; i < n; i++)
        v->tokens[i].score = scores[i];
    free(scores);
    return ROJ_OK;
}

/* Reads tokenizer.ggml.merges ("left right" per entry, rank = index). */
static roj_status read_merges(roj_vocab *v, const gguf_file *file,
                              const char *name)
{
    int64_t idx = gguf_find_key(file, KEY_MERGES);
    uint64_t n;
    uint64_t unusable = 0;
    char *joined = NULL;
    gguf_str_iter it;
    roj_status s;

    if (idx < 0)
        return roj_error(ROJ_ERR_NOT_FOUND, "%s: byte-level BPE vocab "
                         "without merges (key %s is missing)", name,
                         KEY_MERGES);
    if ((s = check_array(file, KEY_MERGES, GGUF_TYPE_STRING, 0, name)))
        return s;
    n = gguf_kv_array_len(file, idx);
    if (n > INT32_MAX)
        return roj_error(ROJ_ERR_FORMAT, "%s: %s has %llu entries (max %d)",
                         name, KEY_MERGES, (unsigned long long)n, INT32_MAX);
    if ((s = gguf_str_iter_init(file, KEY_MERGES, &it)))
        return s;
    uint32_t cap = vocab_table_capacity(n);
    v->merges = malloc((size_t)(n ? n : 1) * sizeof *v->merges);
    v->merge_slots = malloc((size_t)cap * sizeof *v->merge_slots);
    joined = malloc(2 * v->max_token_len + 1);
    if (!v->merges || !v->merge_slots || !joined) {
        free(joined);
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory for %llu merges",
                         name, (unsigned long long)n);
    }
    memset(v->merge_slots, 0xff, (size_t)cap * sizeof *v->merge_slots);
    v->merge_cap = cap;

    const char *p;
    uint64_t len;
    while (gguf_str_iter_next(&it, &p, &len)) {
        /* The separator is the first space after the first byte, so a
         * left part may itself be a space. */
        const char *sp = len > 1 ? memchr(p + 1, ' ', len - 1) : NULL;
        if (!sp) {
            unusable++;
            continue;
        }
        size_t nl = (size_t)(sp - p);
        size_t nr = len - nl - 1;
        roj_token left = vocab_lookup(v, p, nl);
        roj_token right = vocab_lookup(v, sp + 1, nr);
        roj_token merged = ROJ_TOKEN_NULL;
        if (left >= 0 && right >= 0) {
            /* Both are tokens, so the join fits in 2 * max_token_len. */
            memcpy(joined, p, nl);
            memcpy(joined + nl, sp + 1, nr);
            merged = vocab_lookup(v, joined, nl + nr);
        }
        if (merged < 0) {
            unusable++;
            continue;
        }
        vocab_merge_insert(v, left, right, merged);
    }
    free(joined);
    /* Unusable and repeated merges leave room at the end. */
    vocab_merge *shrunk = v->n_merges
                              ? realloc(v->merges, (size_t)v->n_merges *
                                                       sizeof *v->merges)
                              : NULL;
    if (shrunk)
        v->merges = shrunk;
    if (unusable > 0)
        log_debug("%s: %llu of %llu merges are not pairs of tokens that "
                  "form a token; they never apply", name,
                  (unsigned long long)unusable, (unsigned long long)n);
    return ROJ_OK;
}

/* Byte tokens: for BPE the token of each byte's byte-to-unicode character,
 * for SPM the <0xXX> tokens. */
static void find_byte_tokens(roj_vocab *v)
{
    for (int b = 0; b < 256; b++) {
        char buf[8];
        size_t n;
        if (v->kind == ROJ_VOCAB_BPE) {
            n = utf8_encode(bpe_byte_to_cp((uint8_t)b), buf);
        } else {
            snprintf(buf, sizeof buf, "<0x%02X>", b);
            n = 6;
        }
        v->byte_token[b] = v->kind == ROJ_VOCAB_WPM
                               ? ROJ_TOKEN_NULL
                               : vocab_lookup(v, buf, n);
    }
}

static roj_status read_flags(roj_vocab *v, const gguf_file *file)
{
    roj_status s;

    v->add_space_prefix = v->kind == ROJ_VOCAB_SPM;
    s = gguf_get_bool(file, KEY_SPACE_PREFIX, &v->add_space_prefix);
    if (s != ROJ_OK && s != ROJ_ERR_NOT_FOUND)
        return s;
    if (v->kind == ROJ_VOCAB_WPM) {
        /* Word starts carry U+2581 in llama.cpp's converted vocabs. */
        for (roj_token id = 0; id < v->n_tokens; id++) {
            if (v->tokens[id].len > 3 &&
                memcmp(vocab_text(v, id), "\xe2\x96\x81", 3) == 0) {
                v->wpm_phantom_space = true;
                break;
            }
        }
    }
    return ROJ_OK;
}

roj_status vocab_load_gguf(const gguf_file *file, roj_vocab **out)
{
    const char *name = gguf_path(file);
    roj_vocab *v = calloc(1, sizeof *v);
    roj_status s;

    *out = NULL;
    if (!v)
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", name);
    if ((s = read_kind(v, file, name)) ||
        (s = read_tokens(v, file, name)) ||
        (s = read_types_scores(v, file, name)) ||
        (s = vocab_index_texts(v, name)))
        goto fail;
    if (v->kind == ROJ_VOCAB_BPE &&
        ((s = pretok_init(v, name)) || (s = read_merges(v, file, name))))
        goto fail;
    find_byte_tokens(v);
    if ((s = read_flags(v, file)) ||
        (s = vocab_setup_special(v, file, name)))
        goto fail;
    *out = v;
    return ROJ_OK;

fail:
    roj_vocab_free(v);
    return s;
}

roj_status roj_vocab_open(const char *path, roj_vocab **out)
{
    gguf_file *file = NULL;
    roj_status s;

    if (!path || !out)
        return roj_error(ROJ_ERR_INVALID_ARG, "roj_vocab_open: path and out "
                         "must not be NULL");
    *out = NULL;
    if ((s = gguf_open(path, &file)) != ROJ_OK)
        return s;
    s = vocab_load_gguf(file, out);
    gguf_close(file);
    return s;
}

void roj_vocab_free(roj_vocab *v)
{
    if (!v)
        return;
    pretok_free(v);
    free(v->pre);
    free(v->tokens);
    free(v->text);
    free(v->text_slots);
    free(v->merges);
    free(v->merge_slots);
    free(v->special);
    free(v->eog);
    free(v);
}
