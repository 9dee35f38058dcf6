/*
 * Internal layout of a roj_vocab and the helpers the tokenizer files share.
 *
 * A vocab is built once by vocab_load_gguf() and never changes afterwards,
 * so every function here only reads it. Scratch memory for one call is
 * allocated by that call, which makes tokenizing thread-safe.
 */
#ifndef ROJ_TOKENIZER_TOK_INTERNAL_H
#define ROJ_TOKENIZER_TOK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roj/tokenizer.h"

/* One token: its text lives in vocab->text at [offset, offset + len) and is
 * followed by a NUL byte there. */
typedef struct vocab_token {
    uint32_t offset;
    float score;       /* SentencePiece log probability; 0 for BPE, WPM */
    uint32_t len : 24; /* bytes; the loader allows at most 1 MiB */
    uint32_t type : 8; /* roj_token_type after the load-time corrections */
} vocab_token;

/* Slot of the text -> id hash table: the id in the low text_id_bits bits,
 * the high bits of the text's hash above them, VOCAB_TEXT_EMPTY when
 * unused. text_id_bits is chosen so that no id has all its bits set,
 * which keeps VOCAB_TEXT_EMPTY apart from every used slot. */
#define VOCAB_TEXT_EMPTY UINT32_MAX

/* One BPE merge. Its rank (lower merges first) is its index in
 * roj_vocab.merges, which keeps the order of tokenizer.ggml.merges. */
typedef struct vocab_merge {
    int32_t left, right;
    int32_t merged; /* id of the token left + right */
} vocab_merge;

#define VOCAB_MERGE_EMPTY UINT32_MAX

struct pretok_config;

struct roj_vocab {
    roj_vocab_kind kind;
    char *pre; /* tokenizer.ggml.pre, or "default" */

    /* Tokens: (n_tokens) entries; text is the arena of all token texts. */
    int32_t n_tokens;
    vocab_token *tokens;
    char *text;
    size_t text_size;
    size_t max_token_len; /* bytes */

    /* Text -> id, open addressing with linear probing; (text_cap) slots,
     * text_cap a power of two. */
    uint32_t *text_slots;
    uint32_t text_cap;
    unsigned text_id_bits; /* 1 .. 31 */

    /* BPE merges in rank order, and a hash table of their indices with
     * open addressing: (merge_cap) slots, a power of two, each
     * VOCAB_MERGE_EMPTY when unused. This takes 12 bytes per merge plus 4
     * per slot, where slots holding the merges took 16 per slot. */
    vocab_merge *merges;
    uint32_t n_merges;
    uint32_t *merge_slots;
    uint32_t merge_cap;

    /* BPE: the token of each byte's byte-to-unicode character.
     * SPM: the <0xXX> byte token of each byte. ROJ_TOKEN_NULL when absent. */
    roj_token byte_token[256];

    /* Pre-tokenizer (BPE only): the regexes, applied one after the other. */
    const struct pretok_config *pretok;
    void **regex; /* (n_regex) compiled pcre2_code_8 pointers */
    size_t n_regex;
    bool ignore_merges; /* a piece that is a whole token skips the merges */

    /* Special tokens. */
    roj_token bos, eos, eot, eom, unk, pad, sep;
    bool add_bos, add_eos;
    bool add_space_prefix;    /* SPM: prepend a space to the text */
    bool wpm_phantom_space;   /* WPM: word starts are stored as U+2581 + word */

    /* Control, user-defined and unknown tokens, longest text first; the
     * input is split on them before the model's own tokenizer runs. */
    roj_token *special;
    size_t n_special;

    /* End-of-generation ids, sorted ascending. */
    roj_token *eog;
    size_t n_eog;
};

/* ---- vocabulary lookups (vocab_table.c) ---------------------------- */

uint32_t vocab_hash(const void *data, size_t len);
/* Slots (a power of two, at least 16) of a table for n entries. */
uint32_t vocab_table_capacity(size_t n);
/* Builds the text -> id table; fails with ROJ_ERR_FORMAT on a duplicate. */
roj_status vocab_index_texts(roj_vocab *v, const char *name);
/* Id of the token whose text is exactly [s, s + len), or ROJ_TOKEN_NULL. */
roj_token vocab_lookup(const roj_vocab *v, const char *s, size_t len);
/* Appends a merge of the next rank unless the pair is present (the
 * first rank wins). merges and merge_slots must have room for it. */
void vocab_merge_insert(roj_vocab *v, roj_token left, roj_token right,
                        roj_token merged);
/* Finds the merge of (left, right); returns false when there is none. */
bool vocab_merge_find(const roj_vocab *v, roj_token left, roj_token right,
                      int32_t *rank, roj_token *merged);

static inline const char *vocab_text(const roj_vocab *v, roj_token id)
{
    return v->text + v->tokens[id].offset;
}

/* ---- growable output array (tokenize.c) ---------------------------- */

typedef struct tok_list {
    roj_token *ids;
    size_t n;
    size_t cap;
} tok_list;

/* Appends one id; returns ROJ_ERR_NOMEM when the array cannot grow. */
roj_status tok_list_push(tok_list *list, roj_token id);

/* ---- UTF-8 (utf8.c) ------------------------------------------------ */

/* Length of the valid UTF-8 sequence starting at s (at most n bytes), or 0
 * when the bytes there are not valid UTF-8 (overlong forms, surrogates and
 * values above U+10FFFF are invalid). *cp receives the code point. */
size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);
/* Writes cp as UTF-8 into out (4 bytes of room); returns the length. */
size_t utf8_encode(uint32_t cp, char *out);

/* ---- byte-to-unicode mapping of byte-level BPE (bpe.c) ------------- */

/* The code point GPT-2's byte-to-unicode table assigns to byte b. */
uint32_t bpe_byte_to_cp(uint8_t b);
/* The byte mapped to cp, or -1 when cp is not in the table. */
int bpe_cp_to_byte(uint32_t cp);

/* ---- pre-tokenizer (pretok.c) -------------------------------------- */

/* A piece of text: [off, off + len) of the string being split. */
typedef struct tok_span {
    size_t off;
    size_t len;
} tok_span;

typedef struct tok_span_list {
    tok_span *spans;
    size_t n;
    size_t cap;
} tok_span_list;

/* Chooses the pre-tokenizer for v->pre and compiles its regexes. */
roj_status pretok_init(roj_vocab *v, const char *name);
void pretok_free(roj_vocab *v);
/* Whether the named pre-tokenizer adds BOS by default, and whether it
 * defines no BOS at all (chatglm). Call after pretok_init. */
bool pretok_default_add_bos(const roj_vocab *v);
bool pretok_no_bos(const roj_vocab *v);
/* Splits text into pieces with v's regexes. On success out->spans covers
 * the whole text in order; the caller frees out->spans. */
roj_status pretok_split(const roj_vocab *v, const char *text, size_t len,
                        tok_span_list *out);

/* ---- model tokenizers ---------------------------------------------- */

/* Each appends the ids of one fragment of raw text (no special tokens in
 * it) to out. */
roj_status bpe_tokenize(const roj_vocab *v, const char *text, size_t len,
                        tok_list *out);
roj_status spm_tokenize(const roj_vocab *v, const char *text, size_t len,
                        bool add_space, tok_list *out);
roj_status wpm_tokenize(const roj_vocab *v, const char *text, size_t len,
                        tok_list *out);

/* ---- special-token splitting (special_split.c) --------------------- */

/* A fragment of the input: either a special token or raw text. */
typedef struct tok_fragment {
    roj_token token; /* ROJ_TOKEN_NULL for raw text */
    size_t off;
    size_t len;
} tok_fragment;

typedef struct tok_fragment_list {
    tok_fragment *items;
    size_t n;
    size_t cap;
} tok_fragment_list;

/* Splits text on the vocab's special tokens, longest token first, as
 * llama.cpp does. Control and unknown tokens take part only when
 * parse_special is set; user-defined tokens always do. The caller frees
 * out->items. */
roj_status special_split(const roj_vocab *v, const char *text, size_t len,
                         bool parse_special, tok_fragment_list *out);

/* ---- special tokens at load time (vocab_special.c) ----------------- */

/* Sets the special ids, the add_bos / add_eos defaults, the EOG set and
 * the list of special tokens from the metadata and the family defaults. */
struct gguf_file;
roj_status vocab_setup_special(roj_vocab *v, const struct gguf_file *file,
                               const char *name);

#endif
