/*
 * Special tokens of a vocab: BOS/EOS/EOT/UNK/PAD ids from the metadata
 * with llama.cpp's defaults per tokenizer family (commit c392e5094) where
 * keys are absent, whether BOS / EOS are added, the end-of-generation set,
 * and the list of tokens the input is split on before tokenizing.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "gguf/gguf.h"
#include "tokenizer/tok_internal.h"

/* Texts llama.cpp takes for the end-of-turn token when the metadata names
 * none, in the order roj tries them. */
static const char *const eot_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<EOT>", "_<EOT>", "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81"
    "sentence\xef\xbd\x9c>", /* DeepSeek's <｜end▁of▁sentence｜> */
    NULL};

/* Texts of tokens that end generation whatever the metadata says. */
static const char *const eog_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>",
    NULL};

/* Fill-in-the-middle tokens that also end generation. */
static const char *const fim_pad_texts[] = {
    "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", NULL};
static const char *const fim_rep_texts[] = {
    "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", NULL};
static const char *const fim_sep_texts[] = {"<|file_sep|>", NULL};

/* Reads an optional token id key into *id. A value outside the vocab is
 * reported and ignored, as llama.cpp does. */
static roj_status read_id(const roj_vocab *v, const gguf_file *file,
                          const char *key, roj_token *id, const char *name)
{
    int32_t value;
    roj_status s = gguf_get_i32(file, key, &value);

    if (s == ROJ_ERR_NOT_FOUND)
        return ROJ_OK;
    if (s == ROJ_ERR_RANGE) {
        log_warn("%s: %s does not fit a token id; ignoring it", name, key);
        return ROJ_OK;
    }
    if (s != ROJ_OK)
        return s;
    if (value < 0 || value >= v->n_tokens) {
        log_warn("%s: %s = %d is outside the vocab (%d tokens); ignoring it",
                 name, key, value, v->n_tokens);
        return ROJ_OK;
    }
    *id = value;
    return ROJ_OK;
}

static roj_status read_flag(const gguf_file *file, const char *key, bool *flag)
{
    roj_status s = gguf_get_bool(file, key, flag);
    return s == ROJ_ERR_NOT_FOUND ? ROJ_OK : s;
}

/* The first token whose text is in texts, or ROJ_TOKEN_NULL. */
static roj_token find_first(const roj_vocab *v, const char *const *texts)
{
    for (size_t i = 0; texts[i]; i++) {
        roj_token id = vocab_lookup(v, texts[i], strlen(texts[i]));
        if (id != ROJ_TOKEN_NULL)
            return id;
    }
    return ROJ_TOKEN_NULL;
}

/* llama.cpp treats tokens found by their text as control tokens. */
static void make_control(roj_vocab *v, roj_token id)
{
    if (id != ROJ_TOKEN_NULL &&
        v->tokens[id].type != ROJ_TOKEN_TYPE_CONTROL) {
        log_debug("token %d '%s' ends generation; treating it as a control "
                  "token", id, vocab_text(v, id));
        v->tokens[id].type = ROJ_TOKEN_TYPE_CONTROL;
    }
}

static void set_defaults(roj_vocab *v)
{
    v->eot = v->eom = v->pad = v->sep = ROJ_TOKEN_NULL;
    switch (v->kind) {
    case ROJ_VOCAB_SPM:
        v->bos = 1;
        v->eos = 2;
        v->unk = 0;
        v->add_bos = true;
        break;
    case ROJ_VOCAB_BPE:
        v->bos = pretok_no_bos(v) ? ROJ_TOKEN_NULL : 11;
        v->eos = 11;
        v->unk = ROJ_TOKEN_NULL;
        v->add_bos = pretok_default_add_bos(v);
        break;
    case ROJ_VOCAB_WPM:
        v->bos = 101; /* [CLS] */
        v->eos = 102; /* [SEP] */
        v->unk = 100;
        v->pad = 0;
        v->add_bos = true;
        v->add_eos = true;
        break;
    }
    roj_token *ids[] = {&v->bos, &v->eos, &v->unk, &v->pad};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (*ids[i] >= v->n_tokens)
            *ids[i] = ROJ_TOKEN_NULL;
}

static roj_status read_special_ids(roj_vocab *v, const gguf_file *file,
                                   const char *name)
{
    static const struct {
        const char *key;
        size_t field;
    } keys[] = {
        {"tokenizer.ggml.bos_token_id", offsetof(roj_vocab, bos)},
        {"tokenizer.ggml.eos_token_id", offsetof(roj_vocab, eos)},
        {"tokenizer.ggml.eot_token_id", offsetof(roj_vocab, eot)},
        {"tokenizer.ggml.eom_token_id", offsetof(roj_vocab, eom)},
        {"tokenizer.ggml.unknown_token_id", offsetof(roj_vocab, unk)},
        {"tokenizer.ggml.padding_token_id", offsetof(roj_vocab, pad)},
        /* The misspelling is the key's real name. */
        {"tokenizer.ggml.seperator_token_id", offsetof(roj_vocab, sep)},
    };
    roj_status s;

    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        roj_token *id = (roj_token *)((char *)v + keys[i].field);
        if ((s = read_id(v, file, keys[i].key, id, name)) != ROJ_OK)
            return s;
    }
    if (v->kind == ROJ_VOCAB_WPM) {
        /* BERT adds [CLS] ... [SEP]; report them as BOS and EOS. */
        if ((s = read_id(v, file, "tokenizer.ggml.cls_token_id", &v->bos,
                         name)) != ROJ_OK)
            return s;
        if (v->sep != ROJ_TOKEN_NULL)
            v->eos = v->sep;
    }
    if ((s = read_flag(file, "tokenizer.ggml.add_bos_token", &v->add_bos)) ||
        (s = read_flag(file, "tokenizer.ggml.add_eos_token", &v->add_eos)))
        return s;
    if (v->add_bos && v->bos == ROJ_TOKEN_NULL) {
        log_warn("%s: the vocab adds BOS but has no BOS token; not adding "
                 "it", name);
        v->add_bos = false;
    }
    if (v->add_eos && v->eos == ROJ_TOKEN_NULL) {
        log_warn("%s: the vocab adds EOS but has no EOS token; not adding "
                 "it", name);
        v->add_eos = false;
    }
    return ROJ_OK;
}

static int compare_ids(const void *a, const void *b)
{
    roj_token x = *(const roj_token *)a;
    roj_token y = *(const roj_token *)b;
    return (x > y) - (x < y);
}

static roj_status build_eog(roj_vocab *v, const gguf_file *file,
                            const char *name)
{
    roj_token fim[3] = {ROJ_TOKEN_NULL, ROJ_TOKEN_NULL, ROJ_TOKEN_NULL};
    const char *fim_keys[3] = {"tokenizer.ggml.fim_pad_token_id",
                               "tokenizer.ggml.fim_rep_token_id",
                               "tokenizer.ggml.fim_sep_token_id"};
    const char *const *fim_texts[3] = {fim_pad_texts, fim_rep_texts,
                                       fim_sep_texts};
    size_t cap = 8 + sizeof eog_texts / sizeof eog_texts[0];
    roj_status s;

    v->eog = malloc(cap * sizeof *v->eog);
    if (!v->eog)
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", name);

    for (int i = 0; i < 3; i++) {
        if ((s = read_id(v, file, fim_keys[i], &fim[i], name)) != ROJ_OK)
            return s;
        if (fim[i] == ROJ_TOKEN_NULL)
            fim[i] = find_first(v, fim_texts[i]);
        if (fim[i] != ROJ_TOKEN_NULL) {
            make_control(v, fim[i]);
            v->eog[v->n_eog++] = fim[i];
        }
    }
    for (size_t i = 0; eog_texts[i]; i++) {
        roj_token id = vocab_lookup(v, eog_texts[i], strlen(eog_texts[i]));
        if (id != ROJ_TOKEN_NULL) {
            make_control(v, id);
            v->eog[v->n_eog++] = id;
        }
    }
    roj_token named[3] = {v->eos, v->eot, v->eom};
    for (int i = 0; i < 3; i++)
        if (named[i] != ROJ_TOKEN_NULL)
            v->eog[v->n_eog++] = named[i];

    /* Sort and drop duplicates, for bsearch. */
    qsort(v->eog, v->n_eog, sizeof *v->eog, compare_ids);
    size_t n = 0;
    for (size_t i = 0; i < v->n_eog; i++)
        if (n == 0 || v->eog[n - 1] != v->eog[i])
            v->eog[n++] = v->eog[i];
    v->n_eog = n;
    return ROJ_OK;
}

typedef struct special_key {
    uint32_t len;
    roj_token id;
} special_key;

/* Longest text first; equal lengths by id, so the order is fixed. */
static int compare_special(const void *a, const void *b)
{
    const special_key *x = a;
    const special_key *y = b;

    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static bool is_special_type(uint8_t t)
{
    return t == ROJ_TOKEN_TYPE_CONTROL || t == ROJ_TOKEN_TYPE_USER_DEFINED ||
           t == ROJ_TOKEN_TYPE_UNKNOWN;
}

static roj_status build_special_list(roj_vocab *v, const char *name)
{
    special_key *keys = NULL;
    size_t n = 0;

    for (roj_token id = 0; id < v->n_tokens; id++)
        n += is_special_type(v->tokens[id].type);
    if (n == 0)
        return ROJ_OK;
    keys = malloc(n * sizeof *keys);
    v->special = malloc(n * sizeof *v->special);
    if (!keys || !v->special) {
        free(keys);
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", name);
    }
    n = 0;
    for (roj_token id = 0; id < v->n_tokens; id++) {
        if (is_special_type(v->tokens[id].type)) {
            keys[n].len = v->tokens[id].len;
            keys[n].id = id;
            n++;
        }
    }
    qsort(keys, n, sizeof *keys, compare_special);
    for (size_t i = 0; i < n; i++)
        v->special[i] = keys[i].id;
    v->n_special = n;
    free(keys);
    return ROJ_OK;
}

roj_status vocab_setup_special(roj_vocab *v, const gguf_file *file,
                               const char *name)
{
    roj_status s;

    set_defaults(v);
    if ((s = read_special_ids(v, file, name)) != ROJ_OK)
        return s;
    if (v->eot == ROJ_TOKEN_NULL) {
        v->eot = find_first(v, eot_texts);
        make_control(v, v->eot);
    }
    if (v->eom == ROJ_TOKEN_NULL) {
        v->eom = vocab_lookup(v, "<|eom_id|>", 10);
        make_control(v, v->eom);
    }
    if ((s = build_eog(v, file, name)) != ROJ_OK)
        return s;
    return build_special_list(v, name);
}
