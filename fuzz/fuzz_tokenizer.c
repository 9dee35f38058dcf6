/*
 * libFuzzer target for the tokenizers. The first input byte picks the vocab
 * and the flags, the rest is the text. Each input is tokenized, every id is
 * checked to be in the vocab, every piece is rendered into a buffer that is
 * too small and one that fits, and the ids are detokenized. Where roj
 * promises an exact round trip it is checked: byte-level BPE (gpt-2) on any
 * bytes without special parsing, and SentencePiece on input without U+2581.
 *
 * Vocabs: $ROJ_FUZZ_VOCAB, a colon-separated list of GGUF files, or else
 * gpt-2, llama-spm, qwen2 and bert-bge from
 * $ROJ_SHARED_DIR/fixtures/tokenizer (default: the shared folder next to
 * the source tree). They are loaded once, on the first input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roj/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_VOCABS 8

static roj_vocab *vocabs[MAX_VOCABS];
/* Vocabs known to round-trip exactly: gpt-2 (byte-level BPE with a token
 * for every byte and no user-defined tokens) and llama-spm (SentencePiece
 * with all 256 byte tokens). */
static bool exact[MAX_VOCABS];
static size_t n_vocabs;

static void load_one(const char *path)
{
    roj_vocab *v = NULL;

    if (n_vocabs == MAX_VOCABS)
        return;
    if (roj_vocab_open(path, &v) != ROJ_OK) {
        fprintf(stderr, "fuzz_tokenizer: cannot load %s: %s\n", path,
                roj_last_error());
        abort();
    }
    exact[n_vocabs] = strstr(path, "ggml-vocab-gpt-2.gguf") ||
                      strstr(path, "ggml-vocab-llama-spm.gguf");
    vocabs[n_vocabs++] = v;
}

static void load_vocabs(void)
{
    static const char *const defaults[] = {"gpt-2", "llama-spm", "qwen2",
                                           "bert-bge"};
    const char *list = getenv("ROJ_FUZZ_VOCAB");
    char path[4096];

    if (list && *list) {
        char *copy = strdup(list);
        for (char *p = strtok(copy, ":"); p; p = strtok(NULL, ":"))
            load_one(p);
        free(copy);
        return;
    }
    const char *shared = getenv("ROJ_SHARED_DIR");
    char dir[4096];
    if (shared && *shared) {
        snprintf(dir, sizeof dir, "%s", shared);
    } else {
        /* __FILE__ is <root>/fuzz/fuzz_tokenizer.c in CMake builds. */
        snprintf(dir, sizeof dir, "%s", __FILE__);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        strncat(dir, "/../../shared", sizeof dir - strlen(dir) - 1);
    }
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        snprintf(path, sizeof path, "%s/fixtures/tokenizer/ggml-vocab-%s.gguf",
                 dir, defaults[i]);
        load_one(path);
    }
}

static void check_pieces(const roj_vocab *v, const roj_token *ids, size_t n,
                         unsigned detok_flags)
{
    char small[2];
    char big[4096];

    for (size_t i = 0; i < n; i++) {
        size_t len_small = 0, len_big = 0;
        if (ids[i] < 0 || ids[i] >= roj_vocab_n_tokens(v))
            abort();
        if (roj_token_to_piece(v, ids[i], detok_flags, small, sizeof small,
                               &len_small) != ROJ_OK ||
            roj_token_to_piece(v, ids[i], detok_flags, big, sizeof big,
                               &len_big) != ROJ_OK)
            abort();
        if (len_small != len_big)
            abort(); /* the full length does not depend on the buffer */
        if (len_big <= sizeof big && len_big >= sizeof small &&
            memcmp(small, big, sizeof small) != 0)
            abort();
    }
}

static bool has_escaped_space(const char *s, size_t n)
{
    for (size_t i = 0; i + 3 <= n; i++)
        if (memcmp(s + i, "\xe2\x96\x81", 3) == 0)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (n_vocabs == 0)
        load_vocabs();
    if (size == 0)
        return 0;

    uint8_t control = data[0];
    size_t vocab_index = (control >> 2) % n_vocabs;
    unsigned flags = control & 3u;
    unsigned detok_flags = (control >> 5) & 3u;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    const roj_vocab *v = vocabs[vocab_index];
    roj_token *ids = NULL;
    size_t n = 0;
    char *back = NULL;
    size_t back_len = 0;

    if (roj_tokenize(v, text, len, flags, &ids, &n) != ROJ_OK)
        abort(); /* roj_tokenize must accept any bytes */
    check_pieces(v, ids, n, detok_flags);
    if (roj_detokenize(v, ids, n, detok_flags, &back, &back_len) != ROJ_OK)
        abort();

    /* U+2581 is SentencePiece's space and reads back as one. */
    bool check = exact[vocab_index] && flags == 0 && detok_flags == 0 &&
                 !(roj_vocab_kind_of(v) == ROJ_VOCAB_SPM &&
                   has_escaped_space(text, len));
    if (check && (back_len != len || memcmp(back, text, len) != 0)) {
        fprintf(stderr, "round trip failed for vocab %zu\n", vocab_index);
        abort();
    }
    free(back);
    free(ids);
    return 0;
}
