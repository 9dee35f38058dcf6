/*
 * detokenize(tokenize(x)) == x for every byte-level BPE and SentencePiece
 * vocab, on hand-written UTF-8 texts (emoji, CJK, runs of spaces, tabs and
 * newlines), on the 46 strings of llama.cpp's test input and on a few KB of
 * prose; with and without BOS/EOS. The two vocabs without test vectors
 * (baichuan, gpt-neox) are covered here too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roj/tokenizer.h"
#include "testutil.h"

static const char *const vocabs[] = {
    "baichuan", "deepseek-coder", "deepseek-llm", "falcon", "gpt-2",
    "gpt-neox", "llama-bpe",      "llama-spm",    "mpt",    "phi-3",
    "qwen2",    "refact",         "starcoder",
};

static const char *const texts[] = {
    "Hello world",
    " leading space",
    "trailing spaces   ",
    "   ",
    "a  b   c    d\t\te\n\nf\r\ng",
    "\t\ttabs\tand\nnew\n\n\nlines\n",
    "emoji \xf0\x9f\x98\x80\xf0\x9f\x9a\x80 and \xf0\x9f\x91\xa9\xe2\x80\x8d"
    "\xf0\x9f\x92\xbb ZWJ \xe2\x9c\x85",
    "\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c\xef\xbc\x81"
    " \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xa7\xe3\x81\x99 "
    "\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4",
    "H\xc3\xa9llo w\xc3\xb6rld! \xc3\x9cn\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9 "
    "na\xc3\xafve caf\xc3\xa9 \xe2\x9c\x93",
    "int main(void) {\n    return 0; // done\n}\n",
    "x = [1, 22, 333, 4444, 55555]; y = 3.14159e-10;",
    "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82, \xd0\xbc\xd0\xb8\xd1"
    "\x80! \xce\x93\xce\xb5\xce\xb9\xce\xac \xcf\x83\xce\xbf\xcf\x85",
    "'s 't 're 've 'm 'll 'd I'M YOU'RE",
    "<|im_end|> </s> <s> [CLS] <|endoftext|>",
    "",
};

static roj_vocab *open_fixture(const char *name)
{
    char rel[256];
    roj_vocab *v = NULL;

    snprintf(rel, sizeof rel, "fixtures/tokenizer/ggml-vocab-%s.gguf", name);
    roj_status s = roj_vocab_open(test_shared_path(rel), &v);
    if (s != ROJ_OK)
        fail_msg("open %s: %s", name, roj_last_error());
    return v;
}

static void print_escaped(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '\\')
            printf("\\x%02x", c);
        else
            putchar(c);
    }
}

/* Returns true when text survives tokenize + detokenize with flags. */
static bool round_trips(const roj_vocab *v, const char *vocab_name,
                        const char *text, size_t len, unsigned flags)
{
    roj_token *ids = NULL;
    size_t n = 0;
    char *back = NULL;
    size_t back_len = 0;
    bool ok;

    assert_int_equal(roj_tokenize(v, text, len, flags, &ids, &n), ROJ_OK);
    assert_int_equal(roj_detokenize(v, ids, n, 0, &back, &back_len), ROJ_OK);
    ok = back_len == len && memcmp(back, text, len) == 0;
    if (!ok) {
        printf("MISMATCH %s (flags %u): \"", vocab_name, flags);
        print_escaped(text, len);
        printf("\"\n  back:  \"");
        print_escaped(back, back_len);
        printf("\"\n");
    }
    free(ids);
    free(back);
    return ok;
}

/* Splits llama.cpp's test input into its strings, calling fn on each. */
static size_t check_inp_strings(const roj_vocab *v, const char *name)
{
    size_t size = 0;
    char *inp = test_read_file(test_shared_path("fixtures/tokenizer/"
                                                "ggml-vocab-gpt-2.gguf.inp"),
                               &size);
    const char *sep_text = "\n__ggml_vocab_test__\n";
    size_t failed = 0;

    for (const char *p = inp; p < inp + size;) {
        const char *sep = strstr(p, sep_text);
        assert_non_null(sep);
        failed += !round_trips(v, name, p, (size_t)(sep - p), 0);
        p = sep + strlen(sep_text);
    }
    free(inp);
    return test_exit_status(failed);
}

static void every_vocab_round_trips(void **state)
{
    (void)state;
    size_t prose_size = 0;
    char *prose = test_read_file(test_shared_path("fixtures/tokenizer/"
                                                  "README.md"), &prose_size);
    size_t failed = 0;

    for (size_t i = 0; i < sizeof vocabs / sizeof vocabs[0]; i++) {
        roj_vocab *v = open_fixture(vocabs[i]);
        size_t before = failed;
        for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
            size_t len = strlen(texts[t]);
            failed += !round_trips(v, vocabs[i], texts[t], len, 0);
            failed += !round_trips(v, vocabs[i], texts[t], len,
                                   ROJ_TOKENIZE_ADD_SPECIAL);
        }
        failed += check_inp_strings(v, vocabs[i]);
        failed += !round_trips(v, vocabs[i], prose, prose_size,
                               ROJ_TOKENIZE_ADD_SPECIAL);
        printf("%s: %s\n", vocabs[i], failed == before ? "ok" : "FAILED");
        roj_vocab_free(v);
    }
    free(prose);
    assert_int_equal(failed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_vocab_round_trips),
    };
    return test_run_group(tests, NULL, NULL);
}
