/* End-to-end tests of the roj program: generate, chat, bench and demo are
 * run as child processes (the binary from $ROJ_BIN) and their exit
 * statuses, stdout and stderr are checked. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "roj/context.h"
#include "roj/model.h"
#include "roj/sampler.h"
#include "roj/tokenizer.h"
#include "testutil.h"

#define TINY "fixtures/logits/tiny-f32.gguf"
#define PROMPT "The quick brown fox"

/* Output of one run; the strings are NUL-terminated and freed by
 * run_free(). */
struct run {
    int status; /* exit status, or 128 + signal */
    char *out;
    char *err;
};

static const char *roj_bin(void)
{
    const char *bin = getenv("ROJ_BIN");
    if (!bin || !*bin)
        fail_msg("ROJ_BIN is not set; run this test through ctest");
    return bin;
}

/* Runs roj with args (NULL-terminated, without argv[0]), stdin from
 * input_path (or /dev/null). */
static struct run run_roj(const char *input_path, const char *const *args)
{
    static int counter;
    char out_path[512], err_path[512];
    const char *argv[40];
    struct run r = {0};
    size_t n = 0;
    int status = 0;
    pid_t pid;

    snprintf(out_path, sizeof out_path, "%s/out%d", test_tmpdir(), counter);
    snprintf(err_path, sizeof err_path, "%s/err%d", test_tmpdir(), counter);
    counter++;
    argv[n++] = roj_bin();
    while (*args && n < 39)
        argv[n++] = *args++;
    argv[n] = NULL;

    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int in = open(input_path ? input_path : "/dev/null", O_RDONLY);
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (in < 0 || out < 0 || err < 0)
            _exit(126);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status)
                                 : 128 + WTERMSIG(status);
    r.out = test_read_file(out_path, NULL);
    r.err = test_read_file(err_path, NULL);
    return r;
}

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* ------------------------------------------------------------------ */

static void help_every_command(void **state)
{
    static const struct {
        const char *name;
        const char *options[6];
    } cases[] = {
        {"generate", {"-m", "-p", "--temp", "--top-k", "--stop", "--choice"}},
        {"chat", {"-m", "-s", "-n", "--temp", "--seed", "-c"}},
        {"bench", {"-m", "-p", "-n", "-t", "-r", "-o"}},
        {"demo", {"--cache-dir", "--vocab", "-n", "-t", "--fresh", "-p"}},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *args[] = {cases[i].name, "--help", NULL};
        struct run r = run_roj(NULL, args);
        char usage[64];

        snprintf(usage, sizeof usage, "usage: roj %s", cases[i].name);
        assert_int_equal(r.status, 0);
        assert_non_null(strstr(r.out, usage));
        for (size_t k = 0; k < 6; k++) {
            char space[32], comma[32];
            snprintf(space, sizeof space, "  %s ", cases[i].options[k]);
            snprintf(comma, sizeof comma, "  %s, ", cases[i].options[k]);
            if (!strstr(r.out, space) && !strstr(r.out, comma))
                fail_msg("'roj %s --help' does not mention %s",
                         cases[i].name, cases[i].options[k]);
        }
        run_free(&r);
    }
}

static void bad_options_exit_2(void **state)
{
    static const char *const cases[][6] = {
        {"generate", "--bogus", NULL},
        {"generate", "-p", "hi", NULL},
        {"generate", "-m", "x.gguf", "-p", "hi", "-n"},
        {"generate", "-m", "x.gguf", "-p", "hi", "--temp=abc"},
        {"chat", "--top-k", NULL},
        {"bench", "-m", "x.gguf", "-o", "xml", NULL},
        {"bench", "-m", "x.gguf", "-p", "1,,2", NULL},
        {"demo", "extra", NULL},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *args[7] = {0};
        struct run r;
        for (size_t k = 0; k < 6 && cases[i][k]; k++)
            args[k] = cases[i][k];
        r = run_roj(NULL, args);
        if (r.status != 2)
            fail_msg("roj %s %s: exit %d, expected 2", args[0],
                     args[1] ? args[1] : "", r.status);
        assert_int_equal(count_lines(r.err), 1);
        assert_non_null(strstr(r.err, "--help"));
        assert_string_equal(r.out, "");
        run_free(&r);
    }
}

static void missing_model_exit_1(void **state)
{
    char path[512];
    (void)state;
    snprintf(path, sizeof path, "%s/no-such-model.gguf", test_tmpdir());
    {
        const char *cases[][6] = {
            {"generate", "-m", path, "-p", "hi", NULL},
            {"chat", "-m", path, NULL},
            {"bench", "-m", path, "-p", "4", NULL},
        };
        for (size_t i = 0; i < 3; i++) {
            struct run r = run_roj(NULL, cases[i]);
            assert_int_equal(r.status, 1);
            assert_non_null(strstr(r.err, path));
            assert_string_equal(r.out, "");
            run_free(&r);
        }
    }
}

/* Greedy text of the library itself for the same prompt, to compare. */
static char *library_greedy(const char *model_path, int n)
{
    roj_model *model = NULL;
    roj_context *ctx = NULL;
    roj_sampler *sampler = NULL;
    roj_streamer *streamer = NULL;
    roj_sampler_params sp = roj_sampler_greedy_params();
    roj_streamer_params stp = {.max_tokens = n};
    roj_context_params cp = roj_context_default_params();
    roj_token *tokens = NULL;
    size_t n_tokens = 0;
    char *text;

    assert_int_equal(roj_model_open(model_path, &model), ROJ_OK);
    assert_int_equal(roj_context_create(model, &cp, &ctx), ROJ_OK);
    assert_int_equal(roj_tokenize(roj_model_vocab(model), PROMPT,
                                  strlen(PROMPT),
                                  ROJ_TOKENIZE_ADD_SPECIAL |
                                      ROJ_TOKENIZE_PARSE_SPECIAL,
                                  &tokens, &n_tokens), ROJ_OK);
    assert_int_equal(roj_sampler_create(&sp, roj_model_n_vocab(model),
                                        &sampler), ROJ_OK);
    assert_int_equal(roj_streamer_create(roj_model_vocab(model), &stp,
                                         &streamer), ROJ_OK);
    assert_int_equal(roj_generate(ctx, 0, tokens, n_tokens, sampler,
                                  streamer, NULL), ROJ_OK);
    text = strdup(roj_streamer_text(streamer, NULL));
    roj_streamer_free(streamer);
    roj_sampler_free(sampler);
    free(tokens);
    roj_context_free(ctx);
    roj_model_free(model);
    return text;
}

static void generate_greedy_deterministic(void **state)
{
    const char *model = test_shared_path(TINY);
    const char *args[] = {"generate", "-m", model, "-p", PROMPT, "--temp",
                          "0", "-n", "8", "-t", "1", NULL};
    struct run a, b;
    char *expected;
    (void)state;

    a = run_roj(NULL, args);
    b = run_roj(NULL, args);
    assert_int_equal(a.status, 0);
    assert_int_equal(b.status, 0);
    assert_true(strlen(a.out) > 0);
    assert_string_equal(a.out, b.out);
    /* stdout has only the text; the statistics are on stderr. */
    expected = library_greedy(model, 8);
    assert_string_equal(a.out, expected);
    assert_null(strstr(a.out, "roj generate"));
    assert_non_null(strstr(a.err, "prompt: 6 tokens"));
    assert_non_null(strstr(a.err, "generation: 8 tokens"));
    assert_non_null(strstr(a.err, "t/s"));
    free(expected);
    run_free(&a);
    run_free(&b);
}

static void generate_stop_string(void **state)
{
    const char *model = test_shared_path(TINY);
    const char *args[] = {"generate", "-m", model, "-p", PROMPT, "--temp",
                          "0", "-n", "8", NULL};
    struct run full = run_roj(NULL, args), cut;
    char stop[8];
    const char *stop_args[] = {"generate", "-m", model, "-p", PROMPT,
                               "--temp", "0", "-n", "8", "--stop", stop,
                               NULL};
    size_t at;
    (void)state;

    assert_int_equal(full.status, 0);
    assert_true(strlen(full.out) > 6);
    /* Stop at the 4 bytes that start at byte 4 of the full output. */
    at = 4;
    memcpy(stop, full.out + at, 4);
    stop[4] = '\0';
    at = (size_t)(strstr(full.out, stop) - full.out);
    cut = run_roj(NULL, stop_args);
    assert_int_equal(cut.status, 0);
    assert_int_equal(strlen(cut.out), at);
    assert_memory_equal(cut.out, full.out, at);
    assert_non_null(strstr(cut.err, "stop-string"));
    run_free(&full);
    run_free(&cut);
}

static void generate_prompt_too_long(void **state)
{
    const char *model = test_shared_path(TINY);
    const char *prompt = "one two three four five six seven eight nine ten "
                         "eleven twelve thirteen fourteen fifteen sixteen";
    const char *args[] = {"generate", "-m", model, "-p", prompt, "-c", "16",
                          NULL};
    roj_vocab *vocab = NULL;
    roj_token *tokens = NULL;
    size_t n = 0;
    char needle[64];
    struct run r;
    (void)state;

    assert_int_equal(roj_vocab_open(model, &vocab), ROJ_OK);
    assert_int_equal(roj_tokenize(vocab, prompt, strlen(prompt),
                                  ROJ_TOKENIZE_ADD_SPECIAL |
                                      ROJ_TOKENIZE_PARSE_SPECIAL,
                                  &tokens, &n), ROJ_OK);
    assert_true(n > 16);
    r = run_roj(NULL, args);
    assert_int_equal(r.status, 1);
    snprintf(needle, sizeof needle, "prompt is %zu tokens", n);
    assert_non_null(strstr(r.err, needle));
    assert_non_null(strstr(r.err, "holds 16"));
    assert_string_equal(r.out, "");
    free(tokens);
    roj_vocab_free(vocab);
    run_free(&r);
}

static void generate_choice_prints_label(void **state)
{
    const char *model = test_shared_path(TINY);
    const char *args[] = {"generate", "-m", model, "-p", "Answer:",
                          "--choice", "yes,no,maybe", NULL};
    struct run r = run_roj(NULL, args);
    (void)state;

    assert_int_equal(r.status, 0);
    assert_true(!strcmp(r.out, "yes") || !strcmp(r.out, "no") ||
                !strcmp(r.out, "maybe"));
    run_free(&r);
}

static void generate_json_schema_parses(void **state)
{
    const char *model = test_shared_path(TINY);
    const char *schema = "{\"type\":\"object\",\"properties\":{"
                         "\"name\":{\"type\":\"string\",\"maxLength\":8},"
                         "\"age\":{\"type\":\"integer\"},"
                         "\"color\":{\"enum\":[\"red\",\"green\"]}}}";
    const char *args[] = {"generate", "-m", model, "-p", "Person:", "-j",
                          schema, "--seed", "7", NULL};
    struct run r = run_roj(NULL, args);
    cJSON *j, *color;
    (void)state;

    assert_int_equal(r.status, 0);
    j = cJSON_Parse(r.out);
    assert_non_null(j);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "name")));
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, "age")));
    color = cJSON_GetObjectItem(j, "color");
    assert_true(cJSON_IsString(color));
    assert_true(!strcmp(color->valuestring, "red") ||
                !strcmp(color->valuestring, "green"));
    cJSON_Delete(j);
    run_free(&r);
}

static void generate_prompt_file_same(void **state)
{
    const char *model = test_shared_path(TINY);
    char path[512];
    const char *with_p[] = {"generate", "-m", model, "-p", PROMPT, "--temp",
                            "0", "-n", "6", NULL};
    const char *with_f[] = {"generate", "-m", model, "-f", path, "--temp",
                            "0", "-n", "6", NULL};
    struct run a, b;
    (void)state;

    snprintf(path, sizeof path, "%s/prompt.txt", test_tmpdir());
    test_write_file(path, PROMPT, strlen(PROMPT));
    a = run_roj(NULL, with_p);
    b = run_roj(NULL, with_f);
    assert_int_equal(a.status, 0);
    assert_int_equal(b.status, 0);
    assert_true(strlen(a.out) > 0);
    assert_string_equal(a.out, b.out);
    run_free(&a);
    run_free(&b);
}

static void demo_writes_and_caches(void **state)
{
    char cache[512], file[600];
    const char *args[] = {"demo", "--cache-dir", cache, "--vocab",
                          "builtin", "--shape", "tiny", "-n", "4", "-t",
                          "1", NULL};
    static const char *const types[] = {"f32", "q8_0", "q4_k_m"};
    struct run first, second;
    (void)state;

    snprintf(cache, sizeof cache, "%s/demo-cache", test_tmpdir());
    first = run_roj(NULL, args);
    assert_int_equal(first.status, 0);
    assert_non_null(strstr(first.out, "| F32 "));
    assert_non_null(strstr(first.out, "| Q8_0 "));
    assert_non_null(strstr(first.out, "| Q4_K_M "));
    assert_non_null(strstr(first.err, "quantizing Q4_K_M"));
    for (size_t i = 0; i < 3; i++) {
        snprintf(file, sizeof file, "%s/tiny-builtin-%s.gguf", cache,
                 types[i]);
        if (access(file, R_OK) != 0)
            fail_msg("demo did not write %s", file);
    }
    /* A second run reuses the three files. */
    second = run_roj(NULL, args);
    assert_int_equal(second.status, 0);
    assert_non_null(strstr(second.err, "using cached"));
    assert_null(strstr(second.err, "quantizing"));
    run_free(&first);
    run_free(&second);
}

static void check_bench_record(const cJSON *j, const char *model,
                               int n_prompt, int n_gen)
{
    static const char *const fields[] = {
        "n_prompt", "n_gen", "n_threads", "avg_ts", "stddev_ts",
        "samples_ts", "samples_ns", "avg_ns", "model_filename",
        "model_type", "model_size", "model_n_params", "test_time"};
    const cJSON *samples = cJSON_GetObjectItem(j, "samples_ts");
    const cJSON *item;
    double sum = 0;

    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (!cJSON_GetObjectItem(j, fields[i]))
            fail_msg("bench record has no field %s", fields[i]);
    assert_int_equal(cJSON_GetObjectItem(j, "n_prompt")->valueint, n_prompt);
    assert_int_equal(cJSON_GetObjectItem(j, "n_gen")->valueint, n_gen);
    assert_int_equal(cJSON_GetObjectItem(j, "n_threads")->valueint, 1);
    assert_string_equal(cJSON_GetObjectItem(j, "model_filename")->valuestring,
                        model);
    assert_true(cJSON_GetObjectItem(j, "model_n_params")->valuedouble ==
                4170048.0);
    assert_true(cJSON_GetObjectItem(j, "model_size")->valuedouble > 1e6);
    assert_int_equal(strlen(cJSON_GetObjectItem(j, "test_time")->valuestring),
                     20);
    assert_int_equal(cJSON_GetArraySize(samples), 2);
    cJSON_ArrayForEach(item, samples) {
        assert_true(item->valuedouble > 0);
        sum += item->valuedouble;
    }
    /* avg_ts is the mean of the per-run speeds. */
    assert_float_equal(cJSON_GetObjectItem(j, "avg_ts")->valuedouble,
                       sum / 2, 1e-6 * sum);
}

static void bench_json_lines(void **state)
{
    const char *model = test_shared_path(TINY);
    const char *args[] = {"bench", "-m", model, "-o", "json", "-p", "16",
                          "-n", "4", "-r", "2", "-t", "1", NULL};
    struct run r = run_roj(NULL, args);
    char *line, *save = NULL;
    int n = 0;
    (void)state;

    assert_int_equal(r.status, 0);
    assert_int_equal(count_lines(r.out), 2);
    for (line = strtok_r(r.out, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save), n++) {
        cJSON *j = cJSON_Parse(line);
        if (!j)
            fail_msg("bench line %d is not JSON: %s", n + 1, line);
        check_bench_record(j, model, n == 0 ? 16 : 0, n == 0 ? 0 : 4);
        cJSON_Delete(j);
    }
    assert_int_equal(n, 2);
    run_free(&r);
}

static void bench_markdown_table(void **state)
{
    const char *model = test_shared_path(TINY);
    const char *args[] = {"bench", "-m", model, "-p", "8", "-n", "0",
                          "-pg", "8,2", "-r", "1", "-t", "1", NULL};
    struct run r = run_roj(NULL, args);
    (void)state;

    assert_int_equal(r.status, 0);
    assert_int_equal(count_lines(r.out), 4);
    assert_non_null(strstr(r.out, "| model"));
    assert_non_null(strstr(r.out, "llama 4M all F32"));
    assert_non_null(strstr(r.out, " pp8 |"));
    assert_non_null(strstr(r.out, " pp8+tg2 |"));
    assert_null(strstr(r.out, " tg0 |"));
    run_free(&r);
}

static void chat_pipe_reuses_cache(void **state)
{
    const char *model = test_shared_path(TINY);
    char input[512];
    const char *args[] = {"chat", "-m", model, "--temp", "0", "-n", "4",
                          "-v", "--chat-template", "chatml", NULL};
    struct run r;
    const char *second;
    int reused = -1, evaluated = -1;
    (void)state;

    snprintf(input, sizeof input, "%s/chat-input", test_tmpdir());
    test_write_file(input, "Hello\nHow are you?\n", 19);
    r = run_roj(input, args);
    assert_int_equal(r.status, 0);
    /* One answer line per user line and nothing else on stdout. */
    assert_int_equal(count_lines(r.out), 2);
    second = strstr(r.err, "evaluated]");
    assert_non_null(second);
    second = strstr(second + 1, "[");
    while (second && sscanf(second, "[%d tokens reused from the cache, "
                            "%d evaluated]", &reused, &evaluated) != 2)
        second = strstr(second + 1, "[");
    assert_non_null(second);
    /* The second turn keeps at least the first turn's prompt. */
    assert_true(reused > 10);
    assert_true(evaluated > 0);
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(help_every_command),
        cmocka_unit_test(bad_options_exit_2),
        cmocka_unit_test(missing_model_exit_1),
        cmocka_unit_test(generate_greedy_deterministic),
        cmocka_unit_test(generate_stop_string),
        cmocka_unit_test(generate_prompt_too_long),
        cmocka_unit_test(generate_choice_prints_label),
        cmocka_unit_test(generate_json_schema_parses),
        cmocka_unit_test(generate_prompt_file_same),
        cmocka_unit_test(demo_writes_and_caches),
        cmocka_unit_test(bench_json_lines),
        cmocka_unit_test(bench_markdown_table),
        cmocka_unit_test(chat_pipe_reuses_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
