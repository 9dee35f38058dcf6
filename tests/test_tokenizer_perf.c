/*
 * Tokenizer speed: vocab load time and tokens per second on about 300 KB
 * of English prose with Markdown and code (the fixture READMEs, repeated).
 * The numbers are printed. The asserts only catch gross regressions (an
 * O(n^2) step or a slow load), so their bounds are loose enough for
 * sanitizer builds on a loaded machine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "roj/tokenizer.h"
#include "testutil.h"

#define TEXT_TARGET (300 * 1024) /* bytes */
#define LOAD_MAX_MS 3000.0
#define MIN_TOKENS_PER_S 20000.0

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* About TEXT_TARGET bytes of prose; *len gets the size. */
static char *make_text(size_t *len)
{
    static const char *const parts[] = {"fixtures/tokenizer/README.md",
                                        "fixtures/logits/README.md",
                                        "fixtures/README.md"};
    char *text = malloc(TEXT_TARGET + 65536);
    size_t n = 0;

    assert_non_null(text);
    while (n < TEXT_TARGET) {
        for (size_t i = 0; i < 3 && n < TEXT_TARGET; i++) {
            size_t size = 0;
            char *part = test_read_file(test_shared_path(parts[i]), &size);
            if (size > TEXT_TARGET + 65536 - n)
                size = TEXT_TARGET + 65536 - n;
            memcpy(text + n, part, size);
            n += size;
            free(part);
        }
    }
    *len = n;
    return text;
}

static void measure(const char *name, const char *text, size_t len)
{
    char rel[256];
    roj_vocab *v = NULL;
    roj_token *ids = NULL;
    size_t n = 0;

    snprintf(rel, sizeof rel, "fixtures/tokenizer/ggml-vocab-%s.gguf", name);
    const char *path = test_shared_path(rel);
    double t0 = now_ms();
    assert_int_equal(roj_vocab_open(path, &v), ROJ_OK);
    double load_ms = now_ms() - t0;

    /* Best of three, so a busy neighbour does not decide the number. */
    double best_ms = 1e30;
    for (int round = 0; round < 3; round++) {
        free(ids);
        double t1 = now_ms();
        assert_int_equal(roj_tokenize(v, text, len, 0, &ids, &n), ROJ_OK);
        double ms = now_ms() - t1;
        if (ms < best_ms)
            best_ms = ms;
    }
    double tps = n / (best_ms / 1e3);
    printf("%-10s load %7.1f ms (%d tokens) | %zu bytes -> %zu tokens in "
           "%.1f ms: %.0f tokens/s, %.1f MB/s\n",
           name, load_ms, roj_vocab_n_tokens(v), len, n, best_ms, tps,
           len / (best_ms / 1e3) / 1e6);
    assert_true(load_ms < LOAD_MAX_MS);
    assert_true(tps > MIN_TOKENS_PER_S);
    free(ids);
    roj_vocab_free(v);
}

static void tokenizer_speed(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = make_text(&len);
    static const char *const names[] = {"gpt-2", "llama-bpe", "qwen2",
                                        "llama-spm", "bert-bge"};

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        measure(names[i], text, len);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tokenizer_speed),
    };
    return test_run_group(tests, NULL, NULL);
}
