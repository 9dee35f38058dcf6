/*
 * Training a byte-level BPE tokenizer (GPT-2 style) on the user's texts.
 *
 * Vocabulary layout, in id order: the special (control) tokens, the added
 * (user-defined) tokens, the 256 byte tokens in byte order (each stored as
 * the character GPT-2's byte-to-unicode table gives its byte), then one
 * token per learned merge. Every byte has a token, so any input encodes.
 *
 * The texts are split exactly as roj_tokenize splits them at inference:
 * first on the special and added tokens (control tokens included, so their
 * text is never learned), then with the regexes of the pre-tokenizer
 * family. Merges never cross a piece boundary. Each distinct piece is
 * counted once with its frequency, and pair counts are kept up to date
 * per occurrence, so one merge costs time proportional to the occurrences
 * of the merged pair, not to the corpus.
 *
 * Ties: the pair with the highest count merges first. Among equal counts
 * the pair with the smaller left id wins, then the smaller right id. Ids
 * follow from the inputs alone, so the result is identical for the same
 * texts and options on any thread count. Inside a piece, occurrences of
 * the chosen pair merge left to right without overlap, which is what the
 * rank-ordered encoder does, so encoding a training piece reproduces the
 * training segmentation (tests/test_bpe_train.c checks this on its
 * corpus).
 *
 * Should two pairs form the same string ("a"+"bc", "ab"+"c"), the later
 * merge reuses the token of the first and adds no token, so token texts
 * stay unique. A pair whose string equals a special or added token's text
 * is never merged, because two tokens with one text would not load.
 *
 * Ownership: bpe_train() returns a new bpe_trained that the caller frees
 * with bpe_trained_free(). Threading: a bpe_trained is immutable, so its
 * getters may run on several threads at once.
 */
#ifndef ROJ_TRAIN_BPE_TRAIN_H
#define ROJ_TRAIN_BPE_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "gguf/gguf.h"
#include "roj/roj.h"
#include "roj/tokenizer.h"

typedef struct bpe_train_opts {
    /* Total tokens, including the 256 byte tokens, the special and the
     * added tokens. Must be at least 256 + n_special + n_added. */
    uint32_t vocab_size;
    /* tokenizer.ggml.pre value whose regexes split the text
     * (src/tokenizer/pretok_table.c lists them). NULL or "gpt2" (the
     * family name): "gpt-2", the value llama.cpp accepts. */
    const char *pre;
    /* Control tokens, e.g. "<|endoftext|>" and "<|pad|>". special[0] is
     * BOS and EOS. The padding token is the one whose text is "<|pad|>",
     * else special[0]. n_special 0: the single token "<|endoftext|>". */
    const char *const *special;
    size_t n_special;
    /* User-defined tokens the caller needs as single tokens (label names).
     * roj and llama.cpp match their text anywhere in the input, even
     * inside a longer word, so pick texts that do not occur by accident
     * ("<label:refund>" rather than "refund"). */
    const char *const *added;
    size_t n_added;
    /* A pair seen fewer times than this is not merged. 0: 2. */
    uint32_t min_frequency;
    /* Threads that split the texts into pieces; <= 0: 1. The result does
     * not depend on it. */
    int n_threads;
    /* Stored as tokenizer.ggml.add_bos_token: 0 writes true (BOS is added
     * in front of every encoded text), nonzero writes false. */
    int no_bos;
} bpe_train_opts;

typedef struct bpe_trained bpe_trained; /* opaque */

/*
 * Trains a tokenizer on n_texts texts (texts[i] has lens[i] bytes, any
 * bytes). When the texts support fewer merges than vocab_size requests
 * (every remaining pair is rarer than min_frequency), training stops there,
 * logs a warning with both sizes, and still succeeds: nothing is padded.
 * Errors: ROJ_ERR_INVALID_ARG (bad options, naming the value),
 * ROJ_ERR_UNSUPPORTED (unknown pre), ROJ_ERR_NOMEM. On success *out is
 * new; free it with bpe_trained_free().
 */
roj_status bpe_train(const char *const *texts, const size_t *lens,
                     size_t n_texts, const bpe_train_opts *opts,
                     bpe_trained **out);

/* Frees a trained tokenizer; NULL is ignored. */
void bpe_trained_free(bpe_trained *t);

/* Returns the number of tokens, at most opts->vocab_size. */
size_t bpe_trained_n_vocab(const bpe_trained *t);

/* Returns the number of merges; it can exceed the number of merge tokens
 * when two merges form the same string. */
size_t bpe_trained_n_merges(const bpe_trained *t);

/* Returns the id of the special or added token with exactly this text, or
 * -1 when there is none. */
int32_t bpe_trained_token(const bpe_trained *t, const char *text);

/* Returns the stored text of token id (byte tokens and merges in their
 * byte-to-unicode form), or NULL for an id outside the vocab. The string
 * belongs to t. */
const char *bpe_trained_token_text(const bpe_trained *t, int32_t id);

/* Writes the merge of rank `rank` as the two ids it joins; returns
 * ROJ_ERR_RANGE for a rank outside [0, n_merges). */
roj_status bpe_trained_merge(const bpe_trained *t, size_t rank,
                             int32_t *left, int32_t *right);

/*
 * Writes every tokenizer.* key into w: tokenizer.ggml.model = "gpt2",
 * pre, tokens, token_type, merges, bos/eos/padding token ids,
 * add_bos_token and add_eos_token (false). Keys already in w are replaced.
 */
roj_status bpe_trained_write_kv(const bpe_trained *t, gguf_writer *w);

/*
 * Builds a roj_vocab from the trained tokenizer through the normal GGUF
 * loading path (a GGUF image in memory, gguf_open_memory, then
 * vocab_load_gguf), so that training tokenizes exactly as inference will.
 * On success *out is new; the caller frees it with roj_vocab_free().
 */
roj_status bpe_trained_vocab(const bpe_trained *t, roj_vocab **out);

#endif
