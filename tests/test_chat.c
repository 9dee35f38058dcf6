/* Chat template detection and rendering. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "roj/chat.h"
#include "roj/tokenizer.h"

static const roj_chat_message CONVERSATION[4] = {
    {"system", "You are terse."},
    {"user", "Hi there"},
    {"assistant", "Hello!"},
    {"user", "Name a color."},
};

static char *render(roj_chat_family family, const roj_vocab *vocab,
                    bool gen)
{
    roj_chat_params p = {.family = family, .add_generation_prompt = gen,
                         .vocab = vocab};
    char *text = NULL;
    size_t len = 0;
    roj_status st = roj_chat_render(&p, CONVERSATION, 4, &text, &len);
    if (st != ROJ_OK)
        printf("render failed: %s\n", roj_last_error());
    assert_int_equal(st, ROJ_OK);
    assert_int_equal(len, strlen(text));
    return text;
}

static void check_render(roj_chat_family family, const char *expected)
{
    char *text = render(family, NULL, true);
    if (strcmp(text, expected) != 0)
        printf("%s rendered:\n%s\n", roj_chat_family_name(family), text);
    assert_string_equal(text, expected);
    free(text);
}

static void chat_render_chatml(void **state)
{
    (void)state;
    check_render(ROJ_CHAT_CHATML,
                 "<|im_start|>system\nYou are terse.<|im_end|>\n"
                 "<|im_start|>user\nHi there<|im_end|>\n"
                 "<|im_start|>assistant\nHello!<|im_end|>\n"
                 "<|im_start|>user\nName a color.<|im_end|>\n"
                 "<|im_start|>assistant\n");
}

static void chat_render_llama3(void **state)
{
    (void)state;
    check_render(ROJ_CHAT_LLAMA3,
                 "<|start_header_id|>system<|end_header_id|>\n\n"
                 "You are terse.<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\n"
                 "Hi there<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n"
                 "Hello!<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\n"
                 "Name a color.<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static void chat_render_llama2(void **state)
{
    (void)state;
    check_render(ROJ_CHAT_LLAMA2,
                 "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\n"
                 "Hi there [/INST] Hello! </s>"
                 "<s>[INST] Name a color. [/INST]");
}

static void chat_render_zephyr(void **state)
{
    (void)state;
    check_render(ROJ_CHAT_ZEPHYR,
                 "<|system|>\nYou are terse.</s>\n"
                 "<|user|>\nHi there</s>\n"
                 "<|assistant|>\nHello!</s>\n"
                 "<|user|>\nName a color.</s>\n"
                 "<|assistant|>\n");
}

static void chat_render_phi3(void **state)
{
    (void)state;
    check_render(ROJ_CHAT_PHI3,
                 "<|system|>\nYou are terse.<|end|>\n"
                 "<|user|>\nHi there<|end|>\n"
                 "<|assistant|>\nHello!<|end|>\n"
                 "<|user|>\nName a color.<|end|>\n"
                 "<|assistant|>\n");
}

static void chat_render_gemma(void **state)
{
    (void)state;
    check_render(ROJ_CHAT_GEMMA,
                 "<start_of_turn>user\nYou are terse.\n\nHi there"
                 "<end_of_turn>\n"
                 "<start_of_turn>model\nHello!<end_of_turn>\n"
                 "<start_of_turn>user\nName a color.<end_of_turn>\n"
                 "<start_of_turn>model\n");
}

static void chat_render_plain(void **state)
{
    (void)state;
    check_render(ROJ_CHAT_NONE,
                 "You are terse.\nHi there\nHello!\nName a color.\n");
}

static void chat_render_without_generation_prompt(void **state)
{
    (void)state;
    char *text = render(ROJ_CHAT_CHATML, NULL, false);
    const char *tail = "<|im_start|>user\nName a color.<|im_end|>\n";
    size_t n = strlen(text), m = strlen(tail);
    assert_true(n > m);
    assert_string_equal(text + n - m, tail);
    free(text);
}

static void chat_render_trims_llama3_content(void **state)
{
    (void)state;
    roj_chat_message m[1] = {{"user", "  padded \n"}};
    roj_chat_params p = {.family = ROJ_CHAT_LLAMA3};
    char *text = NULL;
    assert_int_equal(roj_chat_render(&p, m, 1, &text, NULL), ROJ_OK);
    assert_string_equal(text, "<|start_header_id|>user<|end_header_id|>\n\n"
                              "padded<|eot_id|>");
    free(text);
}

static void chat_render_rejects_bad_input(void **state)
{
    (void)state;
    roj_chat_message m[1] = {{"user", NULL}};
    roj_chat_params p = {.family = ROJ_CHAT_CHATML};
    char *text = NULL;
    assert_int_equal(roj_chat_render(&p, m, 1, &text, NULL),
                     ROJ_ERR_INVALID_ARG);
    assert_null(text);
    m[0].content = "x";
    p.family = ROJ_CHAT_UNKNOWN;
    assert_int_equal(roj_chat_render(&p, m, 1, &text, NULL),
                     ROJ_ERR_INVALID_ARG);
}

static void chat_family_names(void **state)
{
    (void)state;
    roj_chat_family f = ROJ_CHAT_UNKNOWN;
    const char *names[] = {"none", "chatml", "llama3", "llama2",
                           "zephyr", "phi3", "gemma"};
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(roj_chat_family_from_name(names[i], &f), ROJ_OK);
        assert_string_equal(roj_chat_family_name(f), names[i]);
        assert_int_equal(roj_chat_detect(names[i]), f);
    }
    assert_int_equal(roj_chat_family_from_name("vicuna", &f),
                     ROJ_ERR_NOT_FOUND);
    assert_non_null(strstr(roj_last_error(), "vicuna"));
}

static void chat_detect_snippets(void **state)
{
    (void)state;
    assert_int_equal(roj_chat_detect(NULL), ROJ_CHAT_NONE);
    assert_int_equal(roj_chat_detect(""), ROJ_CHAT_NONE);
    assert_int_equal(roj_chat_detect(
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + "
        "'\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"),
        ROJ_CHAT_CHATML);
    assert_int_equal(roj_chat_detect(
        "{{ bos_token }}{% for message in messages %}{% if message['role'] "
        "== 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
        "{% endif %}{% endfor %}"),
        ROJ_CHAT_LLAMA2);
    assert_int_equal(roj_chat_detect(
        "{% for message in messages %}{% if message['role'] == 'user' %}"
        "{{ '<|user|>\\n' + message['content'] + eos_token }}{% endif %}"
        "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
        "{% endfor %}"),
        ROJ_CHAT_ZEPHYR);
    assert_int_equal(roj_chat_detect(
        "{{'<|user|>' + '\\n' + message['content'] + '<|end|>' + '\\n' + "
        "'<|assistant|>' + '\\n'}}"),
        ROJ_CHAT_PHI3);
    assert_int_equal(roj_chat_detect(
        "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + "
        "'<end_of_turn>\\n' }}"),
        ROJ_CHAT_GEMMA);
    assert_int_equal(roj_chat_detect(
        "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>"
        "\\n\\n' }}"),
        ROJ_CHAT_LLAMA3);
    assert_int_equal(roj_chat_detect(
        "{{'<|im_start|>' + message['role'] + '<|im_sep|>'}}"),
        ROJ_CHAT_UNKNOWN);
    assert_int_equal(roj_chat_detect("{{ messages | join('\\n') }}"),
                     ROJ_CHAT_UNKNOWN);
}

/* tokenizer.chat_template of a fixture vocab, read with the GGUF reader;
 * NULL when absent. The caller frees the copy. */
static char *fixture_template(const char *vocab_name)
{
    char rel[256];
    gguf_file *f = NULL;
    const char *t = NULL;
    size_t len = 0;
    char *copy = NULL;

    snprintf(rel, sizeof rel, "fixtures/tokenizer/ggml-vocab-%s.gguf",
             vocab_name);
    assert_int_equal(gguf_open(test_shared_path(rel), &f), ROJ_OK);
    if (gguf_get_str(f, "tokenizer.chat_template", &t, &len) == ROJ_OK) {
        copy = malloc(len + 1);
        assert_non_null(copy);
        memcpy(copy, t, len + 1);
    }
    gguf_close(f);
    return copy;
}

static void chat_detect_fixture_templates(void **state)
{
    (void)state;
    char *t = fixture_template("llama-bpe");
    assert_non_null(t);
    assert_int_equal(roj_chat_detect(t), ROJ_CHAT_LLAMA3);
    free(t);
    t = fixture_template("qwen2");
    assert_non_null(t);
    assert_int_equal(roj_chat_detect(t), ROJ_CHAT_CHATML);
    free(t);
    t = fixture_template("phi-3");
    assert_non_null(t);
    assert_int_equal(roj_chat_detect(t), ROJ_CHAT_PHI3);
    free(t);
    t = fixture_template("llama-spm");
    assert_null(t);
    assert_int_equal(roj_chat_detect(t), ROJ_CHAT_NONE);
}

static roj_vocab *open_vocab(const char *name)
{
    char rel[256];
    roj_vocab *v = NULL;
    snprintf(rel, sizeof rel, "fixtures/tokenizer/ggml-vocab-%s.gguf", name);
    assert_int_equal(roj_vocab_open(test_shared_path(rel), &v), ROJ_OK);
    return v;
}

static size_t count_token(const roj_token *ids, size_t n, roj_token t)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += ids[i] == t;
    return count;
}

static void chat_llama3_single_bos(void **state)
{
    (void)state;
    roj_vocab *v = open_vocab("llama-bpe");
    char *text = render(ROJ_CHAT_LLAMA3, v, true);
    roj_token *ids = NULL;
    size_t n = 0;

    assert_true(roj_vocab_add_bos(v));
    assert_int_equal(strncmp(text, "<|begin_of_text|>", 17) != 0, 1);
    assert_int_equal(roj_tokenize(v, text, strlen(text),
                                  ROJ_TOKENIZE_ADD_SPECIAL |
                                      ROJ_TOKENIZE_PARSE_SPECIAL,
                                  &ids, &n), ROJ_OK);
    assert_true(n > 10);
    assert_int_equal(ids[0], 128000);     /* <|begin_of_text|> */
    assert_int_equal(ids[1], 128006);     /* <|start_header_id|> */
    assert_int_equal(count_token(ids, n, 128000), 1);
    assert_int_equal(count_token(ids, n, 128009), 4); /* <|eot_id|> */
    free(ids);
    free(text);
    roj_vocab_free(v);
}

static void chat_bos_written_when_not_added(void **state)
{
    (void)state;
    roj_vocab *v = open_vocab("gpt-2"); /* BOS <|endoftext|>, not added */
    char *text = render(ROJ_CHAT_LLAMA3, v, true);

    assert_false(roj_vocab_add_bos(v));
    assert_int_equal(strncmp(text, "<|endoftext|><|start_header_id|>", 32),
                     0);
    free(text);
    text = render(ROJ_CHAT_CHATML, v, true);
    assert_int_equal(strncmp(text, "<|im_start|>system", 18), 0);
    free(text);
    roj_vocab_free(v);
}

static void chat_chatml_qwen_tokens(void **state)
{
    (void)state;
    roj_vocab *v = open_vocab("qwen2");
    char *text = render(ROJ_CHAT_CHATML, v, true);
    roj_token *ids = NULL;
    size_t n = 0;

    assert_int_equal(roj_tokenize(v, text, strlen(text),
                                  ROJ_TOKENIZE_ADD_SPECIAL |
                                      ROJ_TOKENIZE_PARSE_SPECIAL,
                                  &ids, &n), ROJ_OK);
    assert_int_equal(ids[0], 151644); /* <|im_start|>, no BOS first */
    assert_int_equal(count_token(ids, n, 151644), 5);
    assert_int_equal(count_token(ids, n, 151645), 4); /* <|im_end|> */
    free(ids);
    free(text);
    roj_vocab_free(v);
}

static void chat_llama2_with_spm_vocab(void **state)
{
    (void)state;
    roj_vocab *v = open_vocab("llama-spm");
    char *text = render(ROJ_CHAT_LLAMA2, v, true);
    roj_token *ids = NULL;
    size_t n = 0;

    assert_int_equal(strncmp(text, "[INST] ", 7), 0);
    assert_int_equal(roj_tokenize(v, text, strlen(text),
                                  ROJ_TOKENIZE_ADD_SPECIAL |
                                      ROJ_TOKENIZE_PARSE_SPECIAL,
                                  &ids, &n), ROJ_OK);
    assert_int_equal(ids[0], 1);
    assert_int_equal(count_token(ids, n, 1), 2); /* start and 2nd turn */
    assert_int_equal(count_token(ids, n, 2), 1); /* after the answer */
    free(ids);
    free(text);
    /* A BOS text leading the first message is removed. */
    roj_chat_message plain[1] = {{"user", "<s>hello"}};
    roj_chat_params pp = {.family = ROJ_CHAT_NONE, .vocab = v};
    assert_int_equal(roj_chat_render(&pp, plain, 1, &text, NULL), ROJ_OK);
    assert_string_equal(text, "hello\n");
    free(text);
    text = render(ROJ_CHAT_ZEPHYR, v, false);
    assert_non_null(strstr(text, "<|user|>\nHi there</s>\n"));
    free(text);
    roj_vocab_free(v);
}

static void chat_family_for_model(void **state)
{
    (void)state;
    roj_model *m = NULL;
    roj_chat_family f = ROJ_CHAT_UNKNOWN;

    /* The tiny model carries the Llama-2 SPM vocab without a template. */
    assert_int_equal(roj_model_open(
        test_shared_path("fixtures/logits/tiny-f32.gguf"), &m), ROJ_OK);
    assert_int_equal(roj_chat_family_for_model(m, NULL, &f), ROJ_OK);
    assert_int_equal(f, ROJ_CHAT_NONE);
    assert_int_equal(roj_chat_family_for_model(m, "llama2", &f), ROJ_OK);
    assert_int_equal(f, ROJ_CHAT_LLAMA2);
    assert_int_equal(roj_chat_family_for_model(m, "jinja", &f),
                     ROJ_ERR_NOT_FOUND);
    roj_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chat_render_chatml),
        cmocka_unit_test(chat_render_llama3),
        cmocka_unit_test(chat_render_llama2),
        cmocka_unit_test(chat_render_zephyr),
        cmocka_unit_test(chat_render_phi3),
        cmocka_unit_test(chat_render_gemma),
        cmocka_unit_test(chat_render_plain),
        cmocka_unit_test(chat_render_without_generation_prompt),
        cmocka_unit_test(chat_render_trims_llama3_content),
        cmocka_unit_test(chat_render_rejects_bad_input),
        cmocka_unit_test(chat_family_names),
        cmocka_unit_test(chat_detect_snippets),
        cmocka_unit_test(chat_detect_fixture_templates),
        cmocka_unit_test(chat_llama3_single_bos),
        cmocka_unit_test(chat_bos_written_when_not_added),
        cmocka_unit_test(chat_chatml_qwen_tokens),
        cmocka_unit_test(chat_llama2_with_spm_vocab),
        cmocka_unit_test(chat_family_for_model),
    };
    return test_run_group(tests, NULL, NULL);
}
