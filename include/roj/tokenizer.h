/*
 * Tokenizers read from GGUF metadata: byte-level BPE (tokenizer.ggml.model
 * "gpt2") with the pre-tokenizer of each model family, SentencePiece
 * ("llama") with scores and byte fallback, and WordPiece ("bert").
 *
 * Ownership: a roj_vocab is created by roj_vocab_open() (freed with
 * roj_vocab_free()) or owned by a roj_model (roj_model_vocab(); freed with
 * the model). Buffers returned through pointer arguments belong to the
 * caller, who frees them with free().
 * Threading: a roj_vocab is immutable once created; every function here may
 * be called from several threads at once on the same vocab.
 */
#ifndef ROJ_TOKENIZER_H
#define ROJ_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roj/roj.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t roj_token;
#define ROJ_TOKEN_NULL (-1)

typedef struct roj_vocab roj_vocab;

typedef enum roj_vocab_kind {
    ROJ_VOCAB_BPE = 1, /* byte-level BPE, "gpt2" */
    ROJ_VOCAB_SPM = 2, /* SentencePiece, "llama" */
    ROJ_VOCAB_WPM = 3  /* WordPiece, "bert" */
} roj_vocab_kind;

/* Token attributes from tokenizer.ggml.token_type (format values). */
typedef enum roj_token_type {
    ROJ_TOKEN_TYPE_UNDEFINED = 0,
    ROJ_TOKEN_TYPE_NORMAL = 1,
    ROJ_TOKEN_TYPE_UNKNOWN = 2,
    ROJ_TOKEN_TYPE_CONTROL = 3,
    ROJ_TOKEN_TYPE_USER_DEFINED = 4,
    ROJ_TOKEN_TYPE_UNUSED = 5,
    ROJ_TOKEN_TYPE_BYTE = 6
} roj_token_type;

/*
 * Loads only the tokenizer of a GGUF file (a vocab-only file works). On
 * success *out is new; free it with roj_vocab_free(). Errors are
 * ROJ_ERR_IO, ROJ_ERR_FORMAT (not GGUF, malformed or duplicate tokens),
 * ROJ_ERR_NOT_FOUND (no tokenizer.ggml.* keys) and ROJ_ERR_UNSUPPORTED (a
 * tokenizer model or pre-tokenizer roj does not support). The message names
 * the file and the key.
 */
roj_status roj_vocab_open(const char *path, roj_vocab **out);
/* Frees a vocab from roj_vocab_open(); NULL is ignored. */
void roj_vocab_free(roj_vocab *vocab);

roj_vocab_kind roj_vocab_kind_of(const roj_vocab *vocab);
/* tokenizer.ggml.pre, or "default" when absent. */
const char *roj_vocab_pre(const roj_vocab *vocab);
int32_t roj_vocab_n_tokens(const roj_vocab *vocab);

/* Special tokens; ROJ_TOKEN_NULL where the vocab has none. Ids come from
 * tokenizer.ggml.*_token_id, else llama.cpp's defaults for the family.
 * For WordPiece vocabs BOS is [CLS] and EOS is [SEP]. */
roj_token roj_vocab_bos(const roj_vocab *vocab);
roj_token roj_vocab_eos(const roj_vocab *vocab);
roj_token roj_vocab_eot(const roj_vocab *vocab);
roj_token roj_vocab_pad(const roj_vocab *vocab);
roj_token roj_vocab_unk(const roj_vocab *vocab);
/* Whether ROJ_TOKENIZE_ADD_SPECIAL adds BOS / EOS: tokenizer.ggml.add_*_token,
 * else the family default (SentencePiece and WordPiece add BOS; BPE
 * depends on the pre-tokenizer, e.g. llama-bpe does and gpt-2 does not). */
bool roj_vocab_add_bos(const roj_vocab *vocab);
bool roj_vocab_add_eos(const roj_vocab *vocab);
/* End of generation: EOS, EOT and tokens found by text that end a turn
 * or a fill-in-the-middle document (<|im_end|>, <|eot_id|>, <|fim_pad|>...),
 * as in llama.cpp. Tokens found that way also count as control tokens. */
bool roj_vocab_is_eog(const roj_vocab *vocab, roj_token token);
bool roj_vocab_is_control(const roj_vocab *vocab, roj_token token);
roj_token_type roj_vocab_token_type(const roj_vocab *vocab, roj_token token);
/* Stored token text (byte-level BPE tokens in their byte-to-unicode form,
 * SentencePiece tokens with U+2581 for spaces); NULL for a bad id. */
const char *roj_vocab_token_text(const roj_vocab *vocab, roj_token token);
/* Exact lookup of a token by its stored text; ROJ_TOKEN_NULL when none. */
roj_token roj_vocab_find(const roj_vocab *vocab, const char *text,
                         size_t len);

/* Flags for roj_tokenize. */
#define ROJ_TOKENIZE_ADD_SPECIAL 1u   /* BOS/EOS (CLS/SEP) as the vocab says */
#define ROJ_TOKENIZE_PARSE_SPECIAL 2u /* text of control tokens becomes them */

/*
 * Tokenizes len bytes of text. The text is first split on special tokens,
 * longest first. Without ROJ_TOKENIZE_PARSE_SPECIAL, text that spells a
 * control token ("<|im_end|>") is tokenized as plain text. User-defined
 * added tokens ("<think>") are matched in either case, as in llama.cpp and
 * Hugging Face.
 *
 * Invalid UTF-8 is never an error. Byte-level BPE gives every byte the
 * token of its byte character; a byte whose character the vocab lacks
 * (Falcon, MPT and others have none for 0xFF) becomes the vocab's unknown
 * token if it has a real one and is dropped otherwise. llama.cpp turns
 * invalid bytes into U+FFFD instead. SentencePiece writes invalid
 * bytes as <0xXX> byte tokens, or the unknown token without them.
 * WordPiece drops them.
 *
 * On success *tokens is a new array of *n_tokens ids (the caller frees it;
 * it is allocated even when *n_tokens is 0).
 */
roj_status roj_tokenize(const roj_vocab *vocab, const char *text, size_t len,
                        unsigned flags, roj_token **tokens, size_t *n_tokens);

/* Flags for roj_token_to_piece and roj_detokenize. */
#define ROJ_DETOK_RENDER_SPECIAL 1u /* print the text of control tokens */
#define ROJ_DETOK_REMOVE_SPECIAL 2u /* drop a leading BOS / trailing EOS */

/*
 * Writes the bytes token stands for into buf (at most cap bytes) and sets
 * *len to the full length, which may exceed cap (then retry with a larger
 * buffer). A piece can be part of a UTF-8 character. Control and unknown
 * tokens give no bytes unless ROJ_DETOK_RENDER_SPECIAL is set; user-defined
 * tokens give their text. An id outside the vocab gives ROJ_ERR_RANGE.
 */
roj_status roj_token_to_piece(const roj_vocab *vocab, roj_token token,
                              unsigned flags, char *buf, size_t cap,
                              size_t *len);

/*
 * Converts tokens back to text, undoing what roj_tokenize adds (the
 * SentencePiece space at the start and after each special token), so that
 * detokenize(tokenize(x)) == x (special parsing off) for valid UTF-8 x
 * with byte-level BPE and SentencePiece vocabs, and for any bytes where
 * every byte has a token (gpt-2, llama-bpe, qwen2, llama-spm; DeepSeek's
 * byte characters are user-defined tokens that read back as their text).
 * Exceptions: U+2581 reads back as a space in SentencePiece, and WordPiece
 * output is normalized (lower case, spaces around punctuation). *text is
 * NUL-terminated and new; the caller frees it. *len (may be NULL) excludes
 * the NUL. An id outside the vocab gives ROJ_ERR_RANGE.
 */
roj_status roj_detokenize(const roj_vocab *vocab, const roj_token *tokens,
                          size_t n_tokens, unsigned flags, char **text,
                          size_t *len);

#ifdef __cplusplus
}
#endif

#endif
