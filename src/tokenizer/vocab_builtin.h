/*
 * A small byte-level BPE vocabulary that roj carries itself, for models it
 * builds without any downloaded file (the demo, benchmarks on a fresh
 * machine). It has the 256 byte tokens in GPT-2's byte-to-unicode form,
 * merges for common English letter pairs and short words, and
 * <|endoftext|> as BOS and EOS; pre-tokenizer "gpt-2".
 */
#ifndef ROJ_TOKENIZER_VOCAB_BUILTIN_H
#define ROJ_TOKENIZER_VOCAB_BUILTIN_H

#include "gguf/gguf.h"

/* Sets the tokenizer.* keys of the built-in vocabulary on w. Returns the
 * token count in *n_tokens (may be NULL). */
roj_status vocab_builtin_set(gguf_writer *w, uint32_t *n_tokens);

/* Returns the number of tokens of the built-in vocabulary. */
uint32_t vocab_builtin_n_tokens(void);

/* Writes a vocabulary-only GGUF file holding the built-in vocabulary. */
roj_status vocab_builtin_write(const char *path);

#endif
