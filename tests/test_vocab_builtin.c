/* The built-in byte-level vocabulary loads, merges and round-trips. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roj/tokenizer.h"
#include "tokenizer/vocab_builtin.h"

static roj_vocab *open_builtin(void)
{
    char path[4200];
    roj_vocab *v = NULL;
    snprintf(path, sizeof path, "%s/builtin.gguf", test_tmpdir());
    assert_int_equal(vocab_builtin_write(path), ROJ_OK);
    if (roj_vocab_open(path, &v) != ROJ_OK)
        fail_msg("roj_vocab_open: %s", roj_last_error());
    return v;
}

static void builtin_round_trips(void **state)
{
    (void)state;
    roj_vocab *v = open_builtin();
    const char *texts[] = {
        "The cat is on the mat, and that is it!",
        "  runs of   spaces\tand\ttabs\n\nnewlines",
        "ünïcödé 你好 🌍🚀",
        "",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        roj_token *ids = NULL;
        size_t n = 0;
        char *back = NULL;
        assert_int_equal(roj_tokenize(v, texts[i], strlen(texts[i]), 0, &ids,
                                      &n), ROJ_OK);
        assert_int_equal(roj_detokenize(v, ids, n, 0, &back, NULL), ROJ_OK);
        assert_string_equal(back, texts[i]);
        free(ids);
        free(back);
    }
    roj_vocab_free(v);
}

/* Merges apply: " the" is one token, fewer tokens than bytes. */
static void builtin_merges_apply(void **state)
{
    (void)state;
    roj_vocab *v = open_builtin();
    roj_token *ids = NULL;
    size_t n = 0;
    assert_int_equal(roj_tokenize(v, " the", 4, 0, &ids, &n), ROJ_OK);
    assert_int_equal(n, 1);
    assert_string_equal(roj_vocab_token_text(v, ids[0]), "\xc4\xa0the");
    free(ids);
    assert_int_equal(roj_vocab_eos(v), roj_vocab_n_tokens(v) - 1);
    assert_true(roj_vocab_is_eog(v, roj_vocab_eos(v)));
    roj_vocab_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(builtin_round_trips),
        cmocka_unit_test(builtin_merges_apply),
    };
    return test_run_group(tests, NULL, NULL);
}
