/* End-to-end tests of the roj program: generate, chat, bench and demo are
 * run as child processes (the binary from $ROJ_BIN) and their exit
 * statuses, stdout and stderr are checked. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
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
 * input_path (or /dev/null) and stdout to stdout_path (NULL: a temporary
 * file whose text goes to r.out; else r.out is ""). */
static struct run run_roj_to(const char *input_path, const char *stdout_path,
                             const char *const *args)
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
        int out = stdout_path ? open(stdout_path, O_WRONLY)
                              : open(out_path, O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
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
    r.out = stdout_path ? strdup("") : test_read_file(out_path, NULL);
    r.err = test_read_file(err_path, NULL);
    return r;
}

static struct run run_roj(const char *input_path, const char *const *args)
{
    return run_roj_to(input_path, NULL, args);
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

/* roj train checks its options before reading any data: each mistake
 * is a usage error (exit 2) naming the option, and durations take units
 * in the order h, m, s. */
static void train_options_checked(void **state)
{
    (void)state;
    char data[512];
    snprintf(data, sizeof data, "%s/train-opts.csv", test_tmpdir());
    static const char csv[] = "text,label\nhello there,greet\nbye now,leave\n";
    test_write_file(data, csv, sizeof csv - 1);
    static const struct { const char *opt, *value, *words; } bad[] = {
        {"--steps", "0", "--steps must be at least 1"},
        {"--n-embd", "0", "--n-embd must be at least 1"},
        {"--time-budget", "30s10m", "--time-budget 30s10m"},
        {"--time-budget", "10q", "--time-budget 10q"},
        {"--template", "{txt}", "has no {text}"},
        {"--preset", "tinyy", "use tiny, small"},
        {"--dropout", "1", "--dropout must be 0 .. 0.9"},
        {"--token-dropout", "0.9", "--token-dropout 0.9: use 0 .. 0.5"},
        {"--label-smoothing", "-2", "--label-smoothing -2: use 0 .. 0.5"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *args[] = {"train", "--data", data, "--out", "/nope/x.gguf",
                              bad[i].opt, bad[i].value, NULL};
        struct run r = run_roj(NULL, args);
        assert_int_equal(r.status, 2);
        if (!strstr(r.err, bad[i].words))
            fail_msg("%s %s: %s", bad[i].opt, bad[i].value, r.err);
        run_free(&r);
    }
    /* Options that would have no effect on the task are errors too. */
    static const struct { const char *task, *opt, *words; } moot[] = {
        {"extract", "--token-dropout", "applies to --task classify only"},
        {"generate", "--label-smoothing", "applies to --task classify only"},
    };
    for (size_t i = 0; i < sizeof moot / sizeof moot[0]; i++) {
        const char *args[] = {"train", "--task", moot[i].task, "--data",
                              data, "--out", "/nope/x.gguf", moot[i].opt,
                              "0.1", NULL};
        struct run r = run_roj(NULL, args);
        assert_int_equal(r.status, 2);
        if (!strstr(r.err, moot[i].words))
            fail_msg("%s %s: %s", moot[i].task, moot[i].opt, r.err);
        run_free(&r);
    }
    /* Accepted forms get past option checks to the output folder check. */
    static const char *const good[] = {"90", "9m30s", "1h30m", "250ms"};
    for (size_t i = 0; i < 4; i++) {
        const char *args[] = {"train", "--data", data, "--out", "/nope/x.gguf",
                              "--time-budget", good[i], NULL};
        struct run r = run_roj(NULL, args);
        assert_int_equal(r.status, 1);
        assert_non_null(strstr(r.err, "folder /nope does not exist"));
        run_free(&r);
    }
    /* An output over an input is refused before training. */
    const char *args[] = {"train", "--data", data, "--out", data, NULL};
    struct run r = run_roj(NULL, args);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "is the --data file"));
    run_free(&r);
    size_t size;
    char *kept = test_read_file(data, &size);
    assert_int_equal(size, sizeof csv - 1);
    free(kept);
}

static void help_every_command(void **state)
{
    static const struct {
        const char *name;
        const char *options[6];
    } cases[] = {
        {"generate", {"-m", "-p", "--temp", "--top-k", "--stop", "--choice"}},
        {"chat", {"-m", "-s", "-n", "--temp", "--seed", "-c"}},
        {"bench", {"-m", "-p", "-n", "-t", "-r", "-o"}},
        {"demo", {"--cache-dir", "--agents", "--train", "-t", "--fresh",
                  "--engine"}},
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
        {"eval", "m.gguf", "--data", "d.csv", "-o", "xml"},
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

/* A classify data file with one label is an error naming the file and
 * the label, because the model could only ever output that label. */
static void train_one_label_rejected(void **state)
{
    (void)state;
    char data[512], out[512];
    snprintf(data, sizeof data, "%s/one-label.csv", test_tmpdir());
    snprintf(out, sizeof out, "%s/one-label.gguf", test_tmpdir());
    static const char csv[] = "text,label\nhello there,greet\nhi,greet\n";
    test_write_file(data, csv, sizeof csv - 1);
    const char *args[] = {"train", "--data", data, "--out", out, "-q", NULL};
    struct run r = run_roj(NULL, args);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "one-label.csv: classify needs at least "
                                  "2 labels"));
    assert_non_null(strstr(r.err, "the label \"greet\""));
    assert_int_equal(access(out, F_OK), -1);
    run_free(&r);
}

/* roj train's -o is the output file, roj eval's the format: a file name
 * after eval's -o gets the redirection to use instead. */
static void eval_o_file_name(void **state)
{
    const char *args[] = {"eval", "m.gguf", "--data", "d.csv", "-o",
                          "report.json", NULL};
    (void)state;
    struct run r = run_roj(NULL, args);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "-o report.json: -o takes the format, "
                                  "text or json"));
    assert_non_null(strstr(r.err, "-o json > report.json"));
    assert_string_equal(r.out, "");
    run_free(&r);
}

/* Without nats.c, commands that need NATS fail with the library's name
 * and the package to install; the embedded default does not load it. */
static void nats_library_missing(void **state)
{
    (void)state;
    const char *args[] = {"status", "--nats", "nats://127.0.0.1:1",
                          "--swarm", "s", NULL};
    setenv("ROJ_NATS_LIB", "/nonexistent/libnats.so.3.4", 1);
    struct run r = run_roj(NULL, args);
    unsetenv("ROJ_NATS_LIB");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "cannot load the NATS client library "
                                  "/nonexistent/libnats.so.3.4"));
    assert_non_null(strstr(r.err, "apt-get install libnats"));
    run_free(&r);
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
    const char *args[] = {"demo", "--engine", "--cache-dir", cache,
                          "--vocab", "builtin", "--shape", "tiny", "-n",
                          "4", "-t", "1", NULL};
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


static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Ctrl-C while a 4002-token prompt is evaluated: the abort callback
 * stops the decode between layers, the statistics follow and the exit
 * status is 130. The signal is sent once -v has reported the prompt
 * tokens, so it arrives during (or just after) the evaluation. */
static void generate_sigint_exits_130(void **state)
{
    const char *model = test_shared_path(TINY);
    size_t reps = 2000, len = reps * 12;
    char *prompt = malloc(len + 1), err_path[512], *err = NULL;
    const char *argv[] = {roj_bin(), "generate", "-m", model, "-p", prompt,
                          "-c", "4096", "-t", "1", "-n", "-1", "--temp",
                          "0", "-v", NULL};
    double start, sent = 0;
    int status = 0;
    pid_t pid;
    (void)state;

    assert_non_null(prompt);
    for (size_t i = 0; i < reps; i++)
        memcpy(prompt + i * 12, "hello world ", 12);
    prompt[len] = '\0';
    snprintf(err_path, sizeof err_path, "%s/sigint-err", test_tmpdir());
    test_write_file(err_path, "", 0);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int out = open("/dev/null", O_WRONLY);
        int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (out < 0 || fd < 0)
            _exit(126);
        dup2(out, 1);
        dup2(fd, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    /* Wait until the prompt is tokenized, then interrupt. */
    start = now_seconds();
    while (now_seconds() - start < 20) {
        free(err);
        err = test_read_file(err_path, NULL);
        if (err && strstr(err, "prompt tokens")) {
            kill(pid, SIGINT);
            sent = now_seconds();
            break;
        }
        usleep(2000);
    }
    if (!sent) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("generate did not report its prompt tokens: %s",
                 err ? err : "");
    }
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (now_seconds() - sent > 5) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("generate still ran 5 s after SIGINT");
        }
        usleep(2000);
    }
    free(err);
    err = test_read_file(err_path, NULL);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 130);
    assert_non_null(strstr(err, "4002 prompt tokens"));
    assert_non_null(strstr(err, "roj generate: interrupted"));
    assert_non_null(strstr(err, "roj generate: prompt:"));
    assert_non_null(strstr(err, "loaded in"));
    assert_null(strstr(err, "stopped by callback"));
    free(err);
    free(prompt);
}

/* Every out-of-range value is a usage error that names its option. */
static void sampling_ranges_exit_2(void **state)
{
    static const char *const cases[][3] = {
        {"generate", "--top-p", "0"},
        {"generate", "--top-p", "1.5"},
        {"generate", "--min-p", "-0.1"},
        {"generate", "--min-p", "2"},
        {"generate", "--temp", "-1"},
        {"generate", "--top-k", "-1"},
        {"generate", "--repeat-penalty", "0"},
        {"generate", "--repeat-last-n", "-1"},
        {"generate", "-n", "-2"},
        {"generate", "-c", "-1"},
        {"generate", "-t", "300"},
        {"chat", "--top-p", "0"},
        {"chat", "--repeat-penalty", "-1"},
        {"chat", "-n", "-5"},
        {"chat", "-t", "-1"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *args[] = {cases[i][0], "-m", "x.gguf", "-p", "hi",
                              cases[i][1], cases[i][2], NULL};
        const char *chat_args[] = {cases[i][0], "-m", "x.gguf",
                                   cases[i][1], cases[i][2], NULL};
        char needle[64];
        struct run r = run_roj(NULL, strcmp(cases[i][0], "chat")
                                         ? args : chat_args);
        if (r.status != 2)
            fail_msg("roj %s %s %s: exit %d, expected 2", cases[i][0],
                     cases[i][1], cases[i][2], r.status);
        snprintf(needle, sizeof needle, "%s must", cases[i][1]);
        if (!strstr(r.err, needle))
            fail_msg("roj %s %s %s: '%s' not in: %s", cases[i][0],
                     cases[i][1], cases[i][2], needle, r.err);
        assert_int_equal(count_lines(r.err), 1);
        run_free(&r);
    }
}

static void generate_chat_options(void **state)
{
    const char *model = test_shared_path(TINY);
    const char *system[] = {"generate", "-m", model, "-p", "hi", "-s",
                            "be brief", NULL};
    const char *tmpl[] = {"generate", "-m", model, "-p", "hi",
                          "--chat-template", "chatml", NULL};
    const char *plain[] = {"generate", "-m", model, "-p", "hi", "--chat",
                           "-n", "2", "--temp", "0", NULL};
    struct run r;
    (void)state;

    r = run_roj(NULL, system);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "-s/--system needs --chat"));
    run_free(&r);
    r = run_roj(NULL, tmpl);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--chat-template needs --chat"));
    run_free(&r);
    /* The tiny model has no tokenizer.chat_template. */
    r = run_roj(NULL, plain);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "warning"));
    assert_non_null(strstr(r.err, "no tokenizer.chat_template"));
    run_free(&r);
}

/* Output to /dev/full fails with ENOSPC: every command reports it and
 * exits 1. */
static void stdout_write_error_exit_1(void **state)
{
    const char *model = test_shared_path(TINY);
    const char *const cases[][14] = {
        {"tokenize", "-m", model, "-p", "hi", NULL},
        {"generate", "-m", model, "-p", "hi", "-n", "4", "--temp", "0",
         NULL},
        {"generate", "-m", model, "-p", "hi", "--choice", "yes,no", NULL},
        {"inspect", model, NULL},
        {"bench", "-m", model, "-p", "4", "-n", "0", "-r", "1", "-t", "1",
         NULL},
    };
    (void)state;
    if (access("/dev/full", W_OK) != 0)
        skip();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct run r = run_roj_to(NULL, "/dev/full", cases[i]);
        if (r.status != 1)
            fail_msg("roj %s > /dev/full: exit %d, expected 1", cases[i][0],
                     r.status);
        if (!strstr(r.err, "write error on standard output: No space "
                           "left on device"))
            fail_msg("roj %s > /dev/full: %s", cases[i][0], r.err);
        run_free(&r);
    }
    {
        char input[512];
        const char *args[] = {"chat", "-m", model, "-n", "2", "--temp", "0",
                              NULL};
        struct run r;
        snprintf(input, sizeof input, "%s/chat-full", test_tmpdir());
        test_write_file(input, "hi\n", 3);
        r = run_roj_to(input, "/dev/full", args);
        assert_int_equal(r.status, 1);
        assert_non_null(strstr(r.err, "write error on standard output"));
        run_free(&r);
    }
}

/* Writes the bytes of src to dst and returns them (caller frees). */
static char *copy_file(const char *src, const char *dst, size_t *size)
{
    char *data = test_read_file(src, size);
    assert_non_null(data);
    test_write_file(dst, data, *size);
    return data;
}

static void quantize_same_file_rejected(void **state)
{
    const char *model = test_shared_path(TINY);
    char in[512], sym[512], hard[512], tmp[600], missing[600];
    size_t size = 0, after_size = 0;
    char *before, *after;
    (void)state;

    snprintf(in, sizeof in, "%s/same.gguf", test_tmpdir());
    snprintf(sym, sizeof sym, "%s/same-link.gguf", test_tmpdir());
    snprintf(hard, sizeof hard, "%s/same-hard.gguf", test_tmpdir());
    snprintf(tmp, sizeof tmp, "%s.tmp", in);
    snprintf(missing, sizeof missing, "%s/no-folder/out.gguf",
             test_tmpdir());
    before = copy_file(model, in, &size);
    unlink(sym);
    unlink(hard);
    assert_int_equal(symlink(in, sym), 0);
    assert_int_equal(link(in, hard), 0);
    {
        const char *outs[] = {in, sym, hard};
        for (size_t i = 0; i < 3; i++) {
            const char *args[] = {"quantize", "-q", in, outs[i], "Q8_0",
                                  NULL};
            struct run r = run_roj(NULL, args);
            if (r.status != 1)
                fail_msg("quantize to %s: exit %d", outs[i], r.status);
            assert_non_null(strstr(r.err, "same file"));
            run_free(&r);
        }
    }
    after = test_read_file(in, &after_size);
    assert_int_equal(after_size, size);
    assert_memory_equal(after, before, size);
    assert_int_equal(access(tmp, F_OK), -1);
    {
        const char *args[] = {"quantize", "-q", in, missing, "Q8_0", NULL};
        struct run r = run_roj(NULL, args);
        assert_int_equal(r.status, 1);
        assert_non_null(strstr(r.err, "does not exist"));
        assert_non_null(strstr(r.err, "no-folder"));
        run_free(&r);
    }
    free(after);
    free(before);
}

static void quantize_vocab_only_rejected(void **state)
{
    const char *vocab =
        test_shared_path("fixtures/tokenizer/ggml-vocab-baichuan.gguf");
    char out[512];
    const char *args[] = {"quantize", "-q", vocab, out, "Q8_0", NULL};
    struct run r;
    (void)state;

    snprintf(out, sizeof out, "%s/vocab-q8.gguf", test_tmpdir());
    unlink(out);
    r = run_roj(NULL, args);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "no tensors"));
    assert_int_equal(access(out, F_OK), -1);
    run_free(&r);
}

/* The tiny model was trained on 512 positions. */
static void ctx_above_training_warns(void **state)
{
    const char *model = test_shared_path(TINY);
    const char *big[] = {"generate", "-m", model, "-p", "hi", "-n", "1",
                         "-c", "1024", NULL};
    const char *fits[] = {"generate", "-m", model, "-p", "hi", "-n", "1",
                          "-c", "512", NULL};
    struct run r;
    (void)state;

    r = run_roj(NULL, big);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "warning: the context of 1024 tokens is "
                                  "larger than the 512"));
    run_free(&r);
    r = run_roj(NULL, fits);
    assert_int_equal(r.status, 0);
    assert_null(strstr(r.err, "warning"));
    run_free(&r);
}

static void error_names_path_once(void **state)
{
    char path[512];
    const char *cases[][6] = {
        {"generate", "-m", path, "-p", "hi", NULL},
        {"bench", "-m", path, "-p", "4", NULL},
        {"tokenize", "-m", path, "-p", "hi", NULL},
    };
    (void)state;

    snprintf(path, sizeof path, "%s/not-a-model.gguf", test_tmpdir());
    test_write_file(path, "not a GGUF file", 15);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct run r = run_roj(NULL, cases[i]);
        const char *first = strstr(r.err, path);
        assert_int_equal(r.status, 1);
        assert_non_null(first);
        if (strstr(first + strlen(path), path))
            fail_msg("roj %s prints the path twice: %s", cases[i][0], r.err);
        assert_null(strstr(r.err, "exists"));
        run_free(&r);
    }
}

static void bench_without_tests_exit_2(void **state)
{
    const char *args[] = {"bench", "-m", "x.gguf", "-p", "0", "-n", "0",
                          NULL};
    struct run r = run_roj(NULL, args);
    (void)state;

    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "no test to run"));
    assert_string_equal(r.out, "");
    run_free(&r);
}

/* Replaces every run of white space in s by one space, in place, so help
 * text can be searched across its line breaks. */
static void squeeze_spaces(char *s)
{
    char *out = s;
    for (char *p = s; *p; p++) {
        if (*p == ' ' || *p == '\n') {
            if (out > s && out[-1] == ' ')
                continue;
            *out++ = ' ';
        } else {
            *out++ = *p;
        }
    }
    *out = '\0';
}

static void help_texts_document_limits(void **state)
{
    static const struct {
        const char *name;
        const char *text;
    } cases[] = {
        {"generate", "ignored with --choice and -j"},
        {"generate", "divide positive logits and multiply negative"},
        {"generate", "exits with status 130"},
        {"bench", "one JSON object per line"},
        {"chat", "--no-parse-special"},
        {"chat", "--parse-special"},
        {"tokenize", " --no-parse-special treat"},
        {"tokenize", " -h, --help print this help"},
        {"tokenize", "(default: parse it)"},
        {"inspect", " --no-tensors leave out"},
        {"inspect", " -h, --help print this help"},
        {"quantize", " -q, --quiet print no progress"},
        {"quantize", "may leave it behind"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *args[] = {cases[i].name, "--help", NULL};
        struct run r = run_roj(NULL, args);
        assert_int_equal(r.status, 0);
        squeeze_spaces(r.out);
        if (!strstr(r.out, cases[i].text))
            fail_msg("'roj %s --help' lacks '%s'", cases[i].name,
                     cases[i].text);
        run_free(&r);
    }
}

static void chat_system_too_long_exit_1(void **state)
{
    const char *model = test_shared_path(TINY);
    const char *args[] = {"chat", "-m", model, "-c", "8", "-s",
                          "a system message that is far too long for "
                          "eight positions", NULL};
    struct run r = run_roj(NULL, args);
    (void)state;

    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "the system message is"));
    assert_null(strstr(r.err, "send a shorter message"));
    run_free(&r);
}

/* A message that cannot fit even alone is rejected while the earlier
 * turns stay; the next short message still gets an answer. */
static void chat_long_message_keeps_history(void **state)
{
    const char *model = test_shared_path(TINY);
    const char *args[] = {"chat", "-m", model, "-c", "64", "-n", "4",
                          "--temp", "0", "-v", NULL};
    char input[512], text[2048];
    size_t len = 0;
    struct run r;
    const char *last;
    int reused = -1, evaluated = -1;
    (void)state;

    len += (size_t)snprintf(text, sizeof text, "hi\n");
    for (int i = 0; i < 80; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "word ");
    len += (size_t)snprintf(text + len, sizeof text - len, "\nyes\n");
    snprintf(input, sizeof input, "%s/chat-long", test_tmpdir());
    test_write_file(input, text, len);
    r = run_roj(input, args);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "the message is"));
    assert_null(strstr(r.err, "dropped the oldest turn"));
    /* Two answers: for "hi" and for "yes". */
    assert_int_equal(count_lines(r.out), 2);
    /* The third turn reuses the first turn from the cache. */
    last = strstr(r.err, "the message is");
    last = strstr(last, "tokens reused");
    assert_non_null(last);
    while (last[-1] != '[')
        last--;
    assert_int_equal(sscanf(last - 1, "[%d tokens reused from the cache, "
                            "%d evaluated]", &reused, &evaluated), 2);
    assert_true(reused > 2);
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(help_every_command),
        cmocka_unit_test(bad_options_exit_2),
        cmocka_unit_test(eval_o_file_name),
        cmocka_unit_test(train_one_label_rejected),
        cmocka_unit_test(nats_library_missing),
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
        cmocka_unit_test(generate_sigint_exits_130),
        cmocka_unit_test(sampling_ranges_exit_2),
        cmocka_unit_test(generate_chat_options),
        cmocka_unit_test(stdout_write_error_exit_1),
        cmocka_unit_test(quantize_same_file_rejected),
        cmocka_unit_test(quantize_vocab_only_rejected),
        cmocka_unit_test(ctx_above_training_warns),
        cmocka_unit_test(error_names_path_once),
        cmocka_unit_test(bench_without_tests_exit_2),
        cmocka_unit_test(help_texts_document_limits),
        cmocka_unit_test(chat_system_too_long_exit_1),
        cmocka_unit_test(chat_long_message_keeps_history),
        cmocka_unit_test(train_options_checked),
    };
    return test_run_group(tests, NULL, NULL);
}
