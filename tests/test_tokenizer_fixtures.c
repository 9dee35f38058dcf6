/*
 * Tokenizer against llama.cpp's test vectors: for every vocab with .inp /
 * .out files, each of the 46 strings tokenized with add_special and
 * parse_special off must give exactly the ids of the .out line. Also the
 * prompts of the logits fixtures, tokenized as llama-tokenize does by
 * default (add_special and parse_special on).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "roj/tokenizer.h"
#include "testutil.h"

#define SEPARATOR "\n__ggml_vocab_test__\n"

static const char *const vector_vocabs[] = {
    "bert-bge", "deepseek-coder", "deepseek-llm", "falcon",
    "gpt-2",    "llama-bpe",      "llama-spm",    "mpt",
    "phi-3",    "qwen2",          "refact",       "starcoder",
};

static char *fixture_path(const char *vocab, const char *suffix)
{
    char rel[256];
    snprintf(rel, sizeof rel, "fixtures/tokenizer/ggml-vocab-%s.gguf%s",
             vocab, suffix);
    return strdup(test_shared_path(rel));
}

static roj_vocab *open_vocab(const char *path)
{
    roj_vocab *v = NULL;
    roj_status s = roj_vocab_open(path, &v);
    if (s != ROJ_OK)
        fail_msg("roj_vocab_open(%s): %s: %s", path, roj_status_name(s),
                 roj_last_error());
    return v;
}

/* Parses one .out line (" 1 2 3") into ids; returns the count. */
static size_t parse_ids(const char *line, size_t len, roj_token *ids,
                        size_t cap)
{
    size_t n = 0;
    const char *p = line;
    const char *end = line + len;

    while (p < end) {
        while (p < end && *p == ' ')
            p++;
        if (p >= end)
            break;
        char *next = NULL;
        long id = strtol(p, &next, 10);
        assert_true(next > p);
        assert_true(n < cap);
        ids[n++] = (roj_token)id;
        p = next;
    }
    return n;
}

static void print_ids(const char *label, const roj_token *ids, size_t n)
{
    printf("  %s (%zu):", label, n);
    for (size_t i = 0; i < n; i++)
        printf(" %d", ids[i]);
    printf("\n");
}

static void vectors_match(void **state)
{
    const char *vocab_name = *state;
    char *vocab_path = fixture_path(vocab_name, "");
    char *inp_path = fixture_path(vocab_name, ".inp");
    char *out_path = fixture_path(vocab_name, ".out");
    size_t inp_size = 0, out_size = 0;
    char *inp = test_read_file(inp_path, &inp_size);
    char *out = test_read_file(out_path, &out_size);
    roj_vocab *v = open_vocab(vocab_path);
    roj_token expected[1024];
    size_t n_strings = 0, n_failed = 0;
    const char *ip = inp, *op = out;
    const char *inp_end = inp + inp_size, *out_end = out + out_size;

    while (ip < inp_end) {
        const char *sep = strstr(ip, SEPARATOR);
        assert_non_null(sep);
        size_t text_len = (size_t)(sep - ip);
        const char *eol = memchr(op, '\n', (size_t)(out_end - op));
        assert_non_null(eol);
        size_t n_expected = parse_ids(op, (size_t)(eol - op), expected,
                                      sizeof expected / sizeof expected[0]);

        roj_token *ids = NULL;
        size_t n_ids = 0;
        roj_status s = roj_tokenize(v, ip, text_len, 0, &ids, &n_ids);
        assert_int_equal(s, ROJ_OK);
        if (n_ids != n_expected ||
            memcmp(ids, expected, n_ids * sizeof *ids) != 0) {
            printf("MISMATCH vocab %s, string %zu: \"%.*s\"\n", vocab_name,
                   n_strings, (int)text_len, ip);
            print_ids("expected", expected, n_expected);
            print_ids("actual  ", ids, n_ids);
            n_failed++;
        }
        free(ids);
        n_strings++;
        ip = sep + strlen(SEPARATOR);
        op = eol + 1;
    }
    printf("%s: %zu of %zu strings match\n", vocab_name,
           n_strings - n_failed, n_strings);
    assert_int_equal(n_strings, 46);
    assert_int_equal(n_failed, 0);

    roj_vocab_free(v);
    free(inp);
    free(out);
    free(vocab_path);
    free(inp_path);
    free(out_path);
}

/* The logits fixtures store the prompt and the ids llama.cpp gave it. */
static void check_logits_prompt(const char *json_rel, const char *vocab_path)
{
    size_t size = 0;
    char *json_text = test_read_file(test_shared_path(json_rel), &size);
    cJSON *root = cJSON_Parse(json_text);
    assert_non_null(root);
    const cJSON *prompt = cJSON_GetObjectItem(root, "prompt");
    const cJSON *ids = cJSON_GetObjectItem(root, "token_ids");
    assert_true(cJSON_IsString(prompt));
    assert_true(cJSON_IsArray(ids));

    roj_vocab *v = open_vocab(vocab_path);
    roj_token *got = NULL;
    size_t n_got = 0;
    unsigned flags = ROJ_TOKENIZE_ADD_SPECIAL | ROJ_TOKENIZE_PARSE_SPECIAL;
    assert_int_equal(roj_tokenize(v, prompt->valuestring,
                                  strlen(prompt->valuestring), flags, &got,
                                  &n_got),
                     ROJ_OK);
    size_t n_expected = (size_t)cJSON_GetArraySize(ids);
    bool same = n_got == n_expected;
    for (size_t i = 0; same && i < n_got; i++)
        same = got[i] == cJSON_GetArrayItem(ids, (int)i)->valueint;
    if (!same) {
        printf("MISMATCH %s: \"%s\"\n", json_rel, prompt->valuestring);
        printf("  expected (%zu):", n_expected);
        for (size_t i = 0; i < n_expected; i++)
            printf(" %d", cJSON_GetArrayItem(ids, (int)i)->valueint);
        printf("\n");
        print_ids("actual  ", got, n_got);
    }
    assert_true(same);
    free(got);
    roj_vocab_free(v);
    cJSON_Delete(root);
    free(json_text);
}

static void logits_prompts_spm(void **state)
{
    (void)state;
    char *model = strdup(test_shared_path("fixtures/logits/tiny-f32.gguf"));
    for (int n = 1; n <= 3; n++) {
        char rel[128];
        snprintf(rel, sizeof rel, "fixtures/logits/tiny-f32.%d.json", n);
        check_logits_prompt(rel, model);
    }
    free(model);
}

static void logits_prompts_gpt2(void **state)
{
    (void)state;
    char *vocab = fixture_path("gpt-2", "");
    for (int n = 1; n <= 3; n++) {
        char rel[128];
        snprintf(rel, sizeof rel,
                 "fixtures/logits/smollm2-135m-shape-f32.%d.json", n);
        check_logits_prompt(rel, vocab);
    }
    free(vocab);
}

int main(void)
{
    struct CMUnitTest tests[sizeof vector_vocabs / sizeof vector_vocabs[0] +
                            2];
    size_t n = 0;

    for (size_t i = 0; i < sizeof vector_vocabs / sizeof vector_vocabs[0];
         i++) {
        struct CMUnitTest t = {vector_vocabs[i], vectors_match, NULL, NULL,
                               (void *)vector_vocabs[i]};
        tests[n++] = t;
    }
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(logits_prompts_spm);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(logits_prompts_gpt2);
    return _cmocka_run_group_tests("tokenizer_fixtures", tests, n, NULL,
                                   NULL);
}
