/* roj demo as a child process (the binary from $ROJ_BIN), on a few
 * hundred tickets and a few training steps: the files it writes, the
 * cache that a second run reuses, its option checks and the engine demo
 * behind --engine. */
#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "swarm/swarm.h"

/* Exit status, stdout and stderr of one roj run (run_free). */
struct run {
    int status; /* exit status, or 128 + signal */
    char *out;
    char *err;
};

/* Runs roj with args (NULL-terminated, without argv[0]) and stdin from
 * /dev/null. */
static struct run run_roj(const char *const *args)
{
    static int counter;
    char out_path[512], err_path[512];
    const char *argv[48];
    const char *bin = getenv("ROJ_BIN");
    struct run r = {0};
    size_t n = 0;
    int status = 0;

    if (!bin || !*bin)
        fail_msg("ROJ_BIN is not set; run this test through ctest");
    snprintf(out_path, sizeof out_path, "%s/out%d", test_tmpdir(), counter);
    snprintf(err_path, sizeof err_path, "%s/err%d", test_tmpdir(), counter);
    counter++;
    argv[n++] = bin;
    while (*args && n < 47)
        argv[n++] = *args++;
    argv[n] = NULL;

    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
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

static size_t count_occurrences(const char *s, const char *word)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, word)); p += strlen(word))
        n++;
    return n;
}

static size_t count_lines_of_file(const char *path)
{
    size_t size, n = 0;
    char *data = test_read_file(path, &size);
    for (size_t i = 0; i < size; i++)
        n += data[i] == '\n';
    free(data);
    return n;
}

/* The small setting every run here uses: 200 training and 12 test
 * tickets, 3 optimizer steps per model, one thread. */
#define SMALL_ARGS "--train", "200", "--test", "12", "--steps", "3", \
                   "-t", "1"

static void demo_prepare_writes_files(void **state)
{
    char cache[512], path[700];
    const char *args[] = {"demo", "--cache-dir", cache, SMALL_ARGS,
                          "--prepare-only", NULL};
    (void)state;

    snprintf(cache, sizeof cache, "%s/prepare", test_tmpdir());
    struct run r = run_roj(args);
    if (r.status != 0)
        fail_msg("roj demo exited with %d:\n%s", r.status, r.err);

    /* The ticket files: the seed and the count are in their names. */
    snprintf(path, sizeof path, "%s/tickets-train-s1-n200.jsonl", cache);
    assert_int_equal(count_lines_of_file(path), 200);
    snprintf(path, sizeof path, "%s/tickets-test-s2-n12.jsonl", cache);
    assert_int_equal(count_lines_of_file(path), 12);
    snprintf(path, sizeof path, "%s/tickets-input-s2-n12.jsonl", cache);
    assert_int_equal(count_lines_of_file(path), 12);

    /* Three models trained, then a swarm file over them that loads. */
    assert_int_equal(count_occurrences(r.err, "roj demo: training the "), 3);
    snprintf(path, sizeof path, "%s/helpdesk.yaml", cache);
    swarm_file *swarm = NULL;
    char *problems = NULL;
    if (swarm_load(path, &swarm, &problems) != ROJ_OK)
        fail_msg("%s does not load:\n%s", path, problems);
    assert_int_equal(swarm->n_models, 3);
    assert_int_equal(swarm->n_skills, 4);
    assert_true(swarm_find_pipeline(swarm, "triage") >= 0);
    for (size_t i = 0; i < swarm->n_models; i++)
        assert_int_equal(access(swarm->models[i].path, R_OK), 0);
    swarm_free(swarm);

    /* The roj run command names the swarm file and the input. */
    assert_non_null(strstr(r.out, " run "));
    assert_non_null(strstr(r.out, path));
    assert_non_null(strstr(r.out, "tickets-input-s2-n12.jsonl"));
    run_free(&r);
}

static void demo_second_run_cached(void **state)
{
    char cache[512];
    const char *args[] = {"demo", "--cache-dir", cache, SMALL_ARGS,
                          "--prepare-only", NULL};
    const char *fresh[] = {"demo", "--cache-dir", cache, SMALL_ARGS,
                           "--prepare-only", "--fresh", NULL};
    (void)state;

    snprintf(cache, sizeof cache, "%s/cached", test_tmpdir());
    struct run first = run_roj(args);
    assert_int_equal(first.status, 0);
    assert_int_equal(count_occurrences(first.err, "training the "), 3);

    /* The same settings reuse the tickets and all three models. */
    struct run second = run_roj(args);
    assert_int_equal(second.status, 0);
    assert_null(strstr(second.err, "training the "));
    assert_int_equal(count_occurrences(second.err, "using cached"), 5);

    /* --fresh writes and trains everything again. */
    struct run third = run_roj(fresh);
    assert_int_equal(third.status, 0);
    assert_int_equal(count_occurrences(third.err, "training the "), 3);
    assert_null(strstr(third.err, "using cached"));
    run_free(&first);
    run_free(&second);
    run_free(&third);
}

/* Checks that results.jsonl in cache has one successful line per test
 * ticket, each with the pipeline's output fields. */
static void check_results(const char *cache, size_t n_tickets)
{
    char path[600];
    size_t size, n = 0;
    static const char *const fields[] = {"category", "confidence",
                                         "urgency", "order_number",
                                         "product"};

    snprintf(path, sizeof path, "%s/results.jsonl", cache);
    char *data = test_read_file(path, &size);
    for (char *save = NULL, *line = strtok_r(data, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save), n++) {
        cJSON *j = cJSON_Parse(line);
        if (!j)
            fail_msg("%s: line %zu is not JSON: %s", path, n + 1, line);
        if (!cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")))
            fail_msg("%s: line %zu failed: %s", path, n + 1, line);
        const cJSON *result = cJSON_GetObjectItem(j, "result");
        for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++)
            if (!cJSON_GetObjectItem(result, fields[k]))
                fail_msg("%s: line %zu has no %s: %s", path, n + 1,
                         fields[k], line);
        cJSON_Delete(j);
    }
    assert_int_equal(n, n_tickets);
    free(data);
}

static void demo_run_scores_results(void **state)
{
    char cache[512];
    const char *args[] = {"demo", "--cache-dir", cache, SMALL_ARGS,
                          "--agents", "2", "--no-faults", NULL};
    (void)state;

    snprintf(cache, sizeof cache, "%s/run", test_tmpdir());
    struct run r = run_roj(args);
    if (r.status != 0)
        fail_msg("roj demo exited with %d:\n%s", r.status, r.err);
    check_results(cache, 12);
    /* The score table has a row per field, over the 12 test tickets. */
    assert_non_null(strstr(r.out, "| category "));
    assert_non_null(strstr(r.out, "| urgency "));
    assert_non_null(strstr(r.out, "| order number "));
    assert_non_null(strstr(r.out, "| product "));
    assert_non_null(strstr(r.out, "|    12 |"));
    assert_null(strstr(r.out, "count as wrong"));
    assert_non_null(strstr(r.out, " run "));
    assert_null(strstr(r.err, "killing one every"));
    run_free(&r);
}

static void demo_run_survives_kills(void **state)
{
    char cache[512];
    const char *args[] = {"demo", "--cache-dir", cache, SMALL_ARGS,
                          "--test", "60", "--agents", "2",
                          "--kill-every", "100ms", NULL};
    (void)state;

    snprintf(cache, sizeof cache, "%s/kills", test_tmpdir());
    struct run r = run_roj(args);
    if (r.status != 0)
        fail_msg("roj demo exited with %d:\n%s", r.status, r.err);
    assert_non_null(strstr(r.err, "killing one every 0.1 s"));
    /* Every ticket still gets its output line. */
    check_results(cache, 60);
    assert_null(strstr(r.out, "count as wrong"));
    run_free(&r);
}

static void demo_options_checked(void **state)
{
    static const struct {
        const char *option, *value, *message;
    } bad[] = {
        {"--agents", "0", "--agents must be 1 .. 64"},
        {"--train", "10", "--train must be 50 .. 1000000"},
        {"--test", "0", "--test must be 1 .. 1000000"},
        {"--kill-every", "2 s", "--kill-every 2 s"},
        {"--steps", "-1", "--steps must be >= 1"},
        {"--seed", "-5", "--seed must be >= 0"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *args[] = {"demo", "--cache-dir", "/nonexistent/demo",
                              bad[i].option, bad[i].value, NULL};
        struct run r = run_roj(args);
        if (r.status != 2)
            fail_msg("roj demo %s %s: exit %d, expected 2", bad[i].option,
                     bad[i].value, r.status);
        if (!strstr(r.err, bad[i].message))
            fail_msg("roj demo %s %s: stderr lacks \"%s\":\n%s",
                     bad[i].option, bad[i].value, bad[i].message, r.err);
        run_free(&r);
    }
}

static void demo_help_lists_options(void **state)
{
    static const char *const options[] = {
        "--cache-dir", "--agents", "--kill-every", "--no-faults", "--train",
        "--test", "--steps", "--fresh", "--prepare-only", "--engine"};
    const char *args[] = {"demo", "--help", NULL};
    (void)state;

    struct run r = run_roj(args);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "usage: roj demo"));
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
        if (!strstr(r.out, options[i]))
            fail_msg("roj demo --help does not mention %s", options[i]);
    run_free(&r);
}

static void demo_engine_keeps_options(void **state)
{
    const char *args[] = {"demo", "--engine", "--help", NULL};
    (void)state;

    struct run r = run_roj(args);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "usage: roj demo --engine"));
    assert_non_null(strstr(r.out, "--vocab"));
    assert_non_null(strstr(r.out, "--shape"));
    assert_non_null(strstr(r.out, "--n-predict"));
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(demo_prepare_writes_files),
        cmocka_unit_test(demo_second_run_cached),
        cmocka_unit_test(demo_run_scores_results),
        cmocka_unit_test(demo_run_survives_kills),
        cmocka_unit_test(demo_options_checked),
        cmocka_unit_test(demo_help_lists_options),
        cmocka_unit_test(demo_engine_keeps_options),
    };
    return test_run_group(tests, NULL, NULL);
}
