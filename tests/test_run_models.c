/* The swarm runner on real models: a seeded random model answers choice,
 * span and text skills; 500 jobs survive at least 50 kill -9 of agents
 * with output identical to a run without faults, and `roj run` itself
 * killed with SIGKILL or stopped with Ctrl-C resumes from its journal to
 * the same output file. Also the command's option and file errors. */
#include "testutil.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/synth.h"
#include "run/run.h"
#include "swarm/swarm.h"

#define N_JOBS 500

static const char SWARM_YAML[] =
    "version: 1\n"
    "name: tiny\n"
    "models:\n"
    "  m: {path: models/base.gguf}\n"
    "skills:\n"
    "  topic:\n"
    "    model: m\n"
    "    prompt: \"Ticket: {text}\\nTopic:\"\n"
    "    output: {choice: [billing, shipping, login, other]}\n"
    "    sampling: {temperature: 0.8, seed: 3}\n"
    "  first:\n"
    "    model: m\n"
    "    prompt: \"Ticket: {text}\\nName:\"\n"
    "    output: {span: {slot: name}}\n"
    "  tone:\n"
    "    model: m\n"
    "    prompt: \"Sentence: {text}\\nTone:\"\n"
    "    output: {choice: [calm, angry]}\n"
    "  reply:\n"
    "    model: m\n"
    "    prompt: \"Ticket about {topic}: {text}\\nReply:\"\n"
    "    output: {text: {max_tokens: 4}}\n"
    "    sampling: {temperature: 0.9, seed: 11}\n"
    "pipelines:\n"
    "  triage:\n"
    "    input: [text]\n"
    "    steps:\n"
    "      - id: topic\n"
    "        skill: topic\n"
    "        vote: 3\n"
    "      - id: name\n"
    "        skill: first\n"
    "        when: {topic: [billing, login]}\n"
    "      - id: tone\n"
    "        skill: tone\n"
    "        map: {over: \"{job.text}\", split: sentences}\n"
    "        reduce: vote\n"
    "      - id: reply\n"
    "        skill: reply\n"
    "        input: {topic: \"{topic.label}\"}\n"
    "    output:\n"
    "      topic: \"{topic.label}\"\n"
    "      agreement: \"{topic.agreement}\"\n"
    "      name: \"{name.text}\"\n"
    "      tone: \"{tone.label}\"\n"
    "      reply: \"{reply.text}\"\n";

static char dir[512];
static char swarm_path[600], input_path[600], base_out[600];
static swarm_file *swarm;

static void write_jobs(const char *path, size_t n)
{
    static const char *const words[] = {
        "my", "invoice", "is", "wrong", "Anna", "cannot", "log", "in",
        "parcel", "late", "again", "please", "help", "Piotr", "refund",
        "password"};
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    uint64_t rng = 1234;
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "{\"id\": %zu, \"text\": \"", i + 1);
        size_t nw = 4 + test_rand_u64(&rng) % 10;
        for (size_t w = 0; w < nw; w++)
            fprintf(f, "%s%s%s", w ? " " : "",
                    words[test_rand_u64(&rng) % 16],
                    test_rand_u64(&rng) % 5 == 0 ? "." : "");
        fprintf(f, "\"}\n");
    }
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    char models[600], model[700];
    snprintf(models, sizeof models, "%s/models", dir);
    if (mkdir(models, 0755) != 0)
        return -1;
    snprintf(model, sizeof model, "%s/base.gguf", models);
    synth_shape s = {
        .name = "run", .n_layer = 2, .n_embd = 64, .n_head = 4,
        .n_head_kv = 2, .n_ff = 128, .n_ctx = 256, .n_vocab = 0,
        .rope_freq_base = 10000.0f, .rms_eps = 1e-5f,
        .tied_output = true, .seed = SYNTH_DEFAULT_SEED, .vocab_path = NULL,
    };
    if (synth_write_model(model, &s) != ROJ_OK)
        return -1;
    snprintf(swarm_path, sizeof swarm_path, "%s/swarm.yaml", dir);
    test_write_file(swarm_path, SWARM_YAML, strlen(SWARM_YAML));
    char *problems = NULL;
    if (swarm_load(swarm_path, &swarm, &problems) != ROJ_OK) {
        fprintf(stderr, "%s\n", problems ? problems : roj_last_error());
        free(problems);
        return -1;
    }
    snprintf(input_path, sizeof input_path, "%s/jobs.jsonl", dir);
    write_jobs(input_path, N_JOBS);
    snprintf(base_out, sizeof base_out, "%s/base.jsonl", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    swarm_free(swarm);
    return 0;
}

static run_options options(const char *output)
{
    static FILE *null_log;
    if (!null_log)
        null_log = fopen("/dev/null", "w");
    run_options o = {0};
    o.swarm = swarm;
    o.swarm_path = swarm_path;
    o.input_path = input_path;
    o.output_path = output;
    o.n_agents = 1;
    o.heartbeat_ms = 50;
    o.log = null_log;
    return o;
}

/* The output of a run with one agent and no faults. */
static const char *baseline(void)
{
    static char *text;
    if (!text) {
        run_options o = options(base_out);
        run_summary sum;
        roj_status st = run_swarm(&o, &sum);
        if (st)
            fail_msg("baseline run: %s", roj_last_error());
        assert_int_equal(sum.jobs_ok, N_JOBS);
        run_summary_free(&sum);
        text = test_read_file(base_out, NULL);
    }
    return text;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void models_baseline_is_complete(void **state)
{
    (void)state;
    const char *out = baseline();
    assert_int_equal(count_lines(out), N_JOBS);
    assert_non_null(strstr(out, "{\"id\":\"1\",\"ok\":true,\"result\":"
                                "{\"topic\":\""));
    assert_null(strstr(out, "\"ok\":false"));
}

static void models_survive_50_kills(void **state)
{
    (void)state;
    char out_path[700];
    snprintf(out_path, sizeof out_path, "%s/kills.jsonl", dir);
    run_options o = options(out_path);
    o.n_agents = 3;
    o.max_batch = 4;
    o.chaos.kill_ms = 12;
    o.chaos.max_events = 60;
    o.chaos.seed = 77;
    run_summary sum;
    roj_status st = run_swarm(&o, &sum);
    if (st)
        fail_msg("run: %s", roj_last_error());
    char *out = test_read_file(out_path, NULL);
    /* 0 lost, 0 duplicated, identical values. */
    assert_string_equal(out, baseline());
    assert_int_equal(sum.jobs_ok, N_JOBS);
    assert_true(sum.faults_injected >= 50);
    /* Each kill ends one agent; the last may land after the final job. */
    assert_true(sum.deaths + 1 >= sum.faults_injected);
    assert_true(sum.reassigned >= 1);
    print_message("%llu kills, %llu subtasks reassigned, %.2f s\n",
                  (unsigned long long)sum.faults_injected,
                  (unsigned long long)sum.reassigned, sum.wall_s);
    run_summary_free(&sum);
    free(out);
}

static void models_agent_count_invariant(void **state)
{
    (void)state;
    char out_path[700];
    snprintf(out_path, sizeof out_path, "%s/two.jsonl", dir);
    run_options o = options(out_path);
    o.n_agents = 2;
    o.max_batch = 7;
    run_summary sum;
    assert_int_equal(run_swarm(&o, &sum), ROJ_OK);
    run_summary_free(&sum);
    char *out = test_read_file(out_path, NULL);
    assert_string_equal(out, baseline());
    free(out);
}

/* ---- the roj run command ---- */


/* Starts roj with args (NULL-terminated), stderr to err_path. */
static pid_t start_roj(const char *const *args, const char *err_path)
{
    return test_roj_start(args, err_path, NULL, 0);
}

static int wait_status(pid_t pid)
{
    return test_roj_wait(pid, -1);
}

static int run_roj(const char *const *args, char **err)
{
    char err_path[700];
    snprintf(err_path, sizeof err_path, "%s/cli.err", dir);
    int status = wait_status(start_roj(args, err_path));
    *err = test_read_file(err_path, NULL);
    return status;
}

static size_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

/* Starts `roj run` slowed by injected faults, sends sig once its output
 * has some lines, and resumes it with the same journal. */
static void interrupt_and_resume(int sig, const char *name)
{
    char out_path[700], journal[700], err_path[700];
    snprintf(out_path, sizeof out_path, "%s/%s.jsonl", dir, name);
    snprintf(journal, sizeof journal, "%s/%s.journal", dir, name);
    snprintf(err_path, sizeof err_path, "%s/%s.err", dir, name);
    const char *args[] = {"run", swarm_path, "--input", input_path,
                          "--output", out_path, "--journal", journal,
                          "--agents", "2", "--batch", "2",
                          "--slow-every", "50ms", "--max-faults", "2",
                          "--progress-lines", NULL};
    pid_t pid = start_roj(args, err_path);
    for (int i = 0; i < 3000 && file_size(out_path) < 2000; i++)
        usleep(2000);
    kill(pid, sig);
    int status = wait_status(pid);
    assert_int_equal(status, 128 + sig);
    char *before = test_read_file(out_path, NULL);
    size_t partial = count_lines(before);
    free(before);
    assert_true(partial < N_JOBS);

    const char *again[] = {"run", swarm_path, "--input", input_path,
                           "--output", out_path, "--journal", journal,
                           "--agents", "2", NULL};
    char *err = NULL;
    int rc = run_roj(again, &err);
    if (rc != 0)
        fail_msg("resume exited %d: %s", rc, err);
    assert_non_null(strstr(err, "resuming from journal"));
    char *out = test_read_file(out_path, NULL);
    assert_string_equal(out, baseline());
    free(out);
    free(err);
}

static void cli_resumes_after_sigkill(void **state)
{
    (void)state;
    interrupt_and_resume(SIGKILL, "sigkill");
}

static void cli_resumes_after_ctrl_c(void **state)
{
    (void)state;
    interrupt_and_resume(SIGINT, "sigint");
}

static void cli_rejects_bad_usage(void **state)
{
    (void)state;
    char *err = NULL;
    const char *no_input[] = {"run", swarm_path, "--output", "-", NULL};
    assert_int_equal(run_roj(no_input, &err), 2);
    assert_non_null(strstr(err, "--input"));
    free(err);

    const char *onto_input[] = {"run", swarm_path, "--input", input_path,
                                "--output", input_path, NULL};
    assert_int_equal(run_roj(onto_input, &err), 2);
    assert_non_null(strstr(err, "would be overwritten"));
    free(err);

    const char *no_pipe[] = {"run", swarm_path, "--input", input_path,
                             "--output", "-", "--pipeline", "nope", NULL};
    assert_int_equal(run_roj(no_pipe, &err), 2);
    assert_non_null(strstr(err, "nope"));
    assert_non_null(strstr(err, "triage"));
    free(err);

    const char *bad_time[] = {"run", swarm_path, "--input", input_path,
                              "--output", "-", "--kill-every", "soon", NULL};
    assert_int_equal(run_roj(bad_time, &err), 2);
    assert_non_null(strstr(err, "--kill-every soon"));
    free(err);
}

static void cli_names_swarm_file_typo(void **state)
{
    (void)state;
    char bad[700];
    snprintf(bad, sizeof bad, "%s/typo.yaml", dir);
    char *yaml = strdup(SWARM_YAML);
    char *at = strstr(yaml, "skill: first");
    memcpy(at, "skill: frist", 12);
    test_write_file(bad, yaml, strlen(yaml));
    free(yaml);
    const char *args[] = {"run", bad, "--input", input_path, "--output",
                          "-", NULL};
    char *err = NULL;
    assert_int_equal(run_roj(args, &err), 1);
    assert_non_null(strstr(err, "typo.yaml:"));
    assert_non_null(strstr(err, "frist"));
    assert_non_null(strstr(err, "first"));
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(models_baseline_is_complete),
        cmocka_unit_test(models_survive_50_kills),
        cmocka_unit_test(models_agent_count_invariant),
        cmocka_unit_test(cli_resumes_after_sigkill),
        cmocka_unit_test(cli_resumes_after_ctrl_c),
        cmocka_unit_test(cli_rejects_bad_usage),
        cmocka_unit_test(cli_names_swarm_file_typo),
    };
    return test_run_group(tests, setup, teardown);
}
