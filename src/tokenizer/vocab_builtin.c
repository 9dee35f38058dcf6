#include "tokenizer/vocab_builtin.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/tok_internal.h"

/* Merges as "left right" pairs of byte-level token texts; "Ġ" is the
 * byte-level form of a space. Each merge adds the concatenation as a new
 * token, so the list must only join tokens that exist before it. */
static const char *const builtin_merges[] = {
    "Ġ t", "h e", "Ġ a", "n d", "i n", "e r", "a n", "o n", "r e", "e n",
    "Ġ s",
    "Ġ w", "o u", "a t", "Ġ c", "Ġ b", "Ġ o", "i s", "o r", "e s", "Ġ f",
    "Ġ p", "Ġ m", "a r", "l e", "e d", "i t", "a l", "i ng",
    "Ġt he", "Ġa nd", "Ġt o", "Ġo f", "Ġ in", "Ġ is", "Ġ i", "o m", "Ġ d",
    "Ġ h", "Ġ l", "Ġ n", "Ġ e", "Ġ r", "Ġ g", "Ġ y", "Ġ u", "s t", "c h",
    "o w", "l l", "Ġ th", "Ġth at", "Ġf or", "Ġw ith", "Ġo n", "Ġb e",
    "Ġy ou", "Ġ it", "Ġa re", "Ġw as",
};

#define N_MERGES (sizeof builtin_merges / sizeof builtin_merges[0])
#define N_BYTES 256
#define EOT_TEXT "<|endoftext|>"

/* Writes the UTF-8 form of byte b's byte-level code point to out and
 * returns its length. */
static size_t byte_token_text(uint8_t b, char *out)
{
    return utf8_encode(bpe_byte_to_cp(b), out);
}

static char *merge_result(const char *merge)
{
    const char *space = strchr(merge, ' ');
    size_t left = (size_t)(space - merge);
    size_t right = strlen(space + 1);
    char *text = malloc(left + right + 1);
    if (!text)
        return NULL;
    memcpy(text, merge, left);
    memcpy(text + left, space + 1, right + 1);
    return text;
}

uint32_t vocab_builtin_n_tokens(void)
{
    return N_BYTES + N_MERGES + 1;
}

roj_status vocab_builtin_set(gguf_writer *w, uint32_t *n_tokens)
{
    const uint32_t n = N_BYTES + N_MERGES + 1;
    char byte_texts[N_BYTES][8];
    const char *tokens[N_BYTES + N_MERGES + 1];
    char *owned[N_MERGES] = {NULL};
    int32_t types[N_BYTES + N_MERGES + 1];
    roj_status st = ROJ_OK;

    for (int b = 0; b < N_BYTES; b++) {
        size_t len = byte_token_text((uint8_t)b, byte_texts[b]);
        byte_texts[b][len] = '\0';
        tokens[b] = byte_texts[b];
        types[b] = ROJ_TOKEN_TYPE_NORMAL;
    }
    for (size_t i = 0; i < N_MERGES; i++) {
        owned[i] = merge_result(builtin_merges[i]);
        if (!owned[i]) {
            st = roj_error(ROJ_ERR_NOMEM, "out of memory");
            goto done;
        }
        tokens[N_BYTES + i] = owned[i];
        types[N_BYTES + i] = ROJ_TOKEN_TYPE_NORMAL;
    }
    tokens[n - 1] = EOT_TEXT;
    types[n - 1] = ROJ_TOKEN_TYPE_CONTROL;

    if ((st = gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2")) ||
        (st = gguf_writer_set_str(w, "tokenizer.ggml.pre", "gpt-2")) ||
        (st = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tokens,
                                      n)) ||
        (st = gguf_writer_set_arr(w, "tokenizer.ggml.token_type",
                                  GGUF_TYPE_INT32, types, n)) ||
        (st = gguf_writer_set_arr_str(w, "tokenizer.ggml.merges",
                                      builtin_merges, N_MERGES)) ||
        (st = gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id",
                                  n - 1)) ||
        (st = gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", n - 1)))
        goto done;
    if (n_tokens)
        *n_tokens = n;
done:
    for (size_t i = 0; i < N_MERGES; i++)
        free(owned[i]);
    return st;
}

roj_status vocab_builtin_write(const char *path)
{
    gguf_writer *w = NULL;
    roj_status st = gguf_writer_create(&w);
    if (st != ROJ_OK)
        return st;
    if ((st = gguf_writer_set_str(w, "general.architecture", "llama")) ||
        (st = gguf_writer_set_str(w, "general.name", "roj-builtin-vocab")) ||
        (st = vocab_builtin_set(w, NULL)) ||
        (st = gguf_writer_write(w, path)))
        roj_error_wrap(st, "%s", path);
    gguf_writer_free(w);
    return st;
}
