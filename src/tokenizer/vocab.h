/*
 * Building a tokenizer from an opened GGUF file, for the model loader.
 * The public API is in roj/tokenizer.h.
 */
#ifndef ROJ_TOKENIZER_VOCAB_H
#define ROJ_TOKENIZER_VOCAB_H

#include "gguf/gguf.h"
#include "roj/tokenizer.h"

/*
 * Reads the tokenizer.ggml.* metadata of file and builds a vocab. The vocab
 * copies everything it needs, so file may be closed afterwards. On success
 * *out is new and the caller frees it with roj_vocab_free(). Errors name
 * the file, the key and the value at fault.
 */
roj_status vocab_load_gguf(const gguf_file *file, roj_vocab **out);

#endif
