/*
 * Internal layout of a bpe_trained and the helpers the BPE trainer files
 * share: the token table (bpe_train_vocab.c), the corpus of distinct
 * pieces (bpe_train_corpus.c) and the merge loop (bpe_train_merge.c).
 */
#ifndef ROJ_TRAIN_BPE_TRAIN_INTERNAL_H
#define ROJ_TRAIN_BPE_TRAIN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roj/tokenizer.h"
#include "train/bpe_train.h"

/* One token: its stored text is t->text[offset, offset + len), followed by
 * a NUL byte. */
typedef struct bpe_train_token {
    uint32_t offset;
    uint32_t len;
    uint8_t type; /* roj_token_type */
} bpe_train_token;

typedef struct bpe_train_merge {
    int32_t left;
    int32_t right;
} bpe_train_merge;

struct bpe_trained {
    char *pre; /* tokenizer.ggml.pre */

    /* Tokens: (n_tokens) entries; text is the arena of their texts. */
    bpe_train_token *tokens;
    uint32_t n_tokens;
    uint32_t cap_tokens;
    char *text;
    size_t text_size;
    size_t text_cap;

    /* Stored text -> id, open addressing with linear probing; (slot_cap)
     * slots, a power of two; -1 marks an empty slot. */
    int32_t *slots;
    uint32_t slot_cap;

    /* Merges in rank order: (n_merges) entries. */
    bpe_train_merge *merges;
    uint32_t n_merges;
    uint32_t cap_merges;

    uint32_t n_special;
    uint32_t n_added;
    int32_t byte_base; /* id of the token of byte 0 */
    int32_t bos;       /* also EOS */
    int32_t pad;
    bool add_bos;
};

/* ---- token table (bpe_train_vocab.c) ------------------------------- */

/* Returns the id of the token whose stored text is [s, s + len), or -1. */
int32_t bpe_trained_find(const bpe_trained *t, const char *s, size_t len);
/* Appends a token with stored text [s, s + len) and writes its id to *id.
 * Fails with ROJ_ERR_INVALID_ARG when a token has that text already. */
roj_status bpe_trained_add_token(bpe_trained *t, const char *s, size_t len,
                                 roj_token_type type, int32_t *id);
/* Appends a merge of two existing tokens as the next rank. */
roj_status bpe_trained_add_merge(bpe_trained *t, int32_t left, int32_t right);

/* ---- corpus of distinct pieces (bpe_train_corpus.c) ---------------- */

#define BPE_SYMBOL_DEAD (-1)

/*
 * The distinct pre-tokenizer pieces of the training texts, each with its
 * frequency, as symbol sequences. All pieces share one array of slots,
 * piece after piece, with one slot per byte at first. A merge writes the
 * new id into the left slot and marks the right one dead. prev and next link
 * the live slots of a piece (-1 at its ends), so the left slot of a pair
 * names an occurrence.
 */
typedef struct bpe_corpus {
    uint32_t n_words;
    uint64_t *freq;    /* (n_words) occurrences of each piece */
    size_t n_slots;
    int32_t *sym;      /* (n_slots) token id, or BPE_SYMBOL_DEAD */
    int32_t *prev;     /* (n_slots) */
    int32_t *next;     /* (n_slots) */
    uint32_t *word_of; /* (n_slots) piece of each slot */
} bpe_corpus;

/* Splits the texts with base's special tokens and pre-tokenizer, as
 * roj_tokenize does with ROJ_TOKENIZE_PARSE_SPECIAL, counts the distinct
 * pieces on n_threads threads and fills *out with one slot per byte
 * (byte b as id byte_base + b). The caller frees *out with
 * bpe_corpus_free(). */
roj_status bpe_corpus_build(const roj_vocab *base, const char *const *texts,
                            const size_t *lens, size_t n_texts,
                            int n_threads, int32_t byte_base,
                            bpe_corpus *out);
void bpe_corpus_free(bpe_corpus *c);

/* ---- merge loop (bpe_train_merge.c) -------------------------------- */

/* Learns merges on c, adding tokens to t until it has vocab_size tokens or
 * no pair occurs min_frequency times. Updates c in place. */
roj_status bpe_merge_run(bpe_trained *t, bpe_corpus *c, uint32_t vocab_size,
                         uint32_t min_frequency);

#endif
