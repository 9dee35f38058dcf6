/* The swarm runner on a fake executor (no models): outputs in input
 * order, identical with any agent count and under injected faults,
 * poisonous inputs isolated, deadlines and timeouts, and a journal that
 * resumes after Ctrl-C and after kill -9 without duplicates. */
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "run/run.h"
#include "swarm/swarm.h"

static const char SWARM_YAML[] =
    "version: 1\n"
    "name: fake\n"
    "models:\n"
    "  m: {path: models/base.gguf}\n"
    "skills:\n"
    "  cat:\n"
    "    model: m\n"
    "    prompt: \"{text}\"\n"
    "    output: {choice: [alpha, beta, gamma]}\n"
    "    timeout: 400ms\n"
    "  first:\n"
    "    model: m\n"
    "    prompt: \"{text}\"\n"
    "    output: {span: {slot: word}}\n"
    "  tone:\n"
    "    model: m\n"
    "    prompt: \"{text}\"\n"
    "    output: {choice: [calm, loud]}\n"
    "  echo:\n"
    "    model: m\n"
    "    prompt: \"{text} / {label}\"\n"
    "    output: {text: {max_tokens: 8}}\n"
    "pipelines:\n"
    "  p:\n"
    "    input: [text]\n"
    "    steps:\n"
    "      - id: cat\n"
    "        skill: cat\n"
    "        vote: 3\n"
    "      - id: word\n"
    "        skill: first\n"
    "        when: {cat: [alpha, beta]}\n"
    "      - id: tone\n"
    "        skill: tone\n"
    "        map: {over: \"{job.text}\", split: sentences}\n"
    "        reduce: vote\n"
    "      - id: echo\n"
    "        skill: echo\n"
    "        input: {text: \"{word.text}\", label: \"{cat.label}\"}\n"
    "    output:\n"
    "      cat: \"{cat.label}\"\n"
    "      agreement: \"{cat.agreement}\"\n"
    "      word: \"{word.text}\"\n"
    "      tone: \"{tone.label}\"\n"
    "      echo: \"{echo.text}\"\n";

static char dir[512];
static char swarm_path[600], input_path[600];
static swarm_file *swarm;

/* ---- the fake executor ---- */

typedef struct fake {
    const swarm_file *swarm;
    unsigned sleep_us; /* per subtask */
} fake;

static unsigned fake_sleep_us;

static uint64_t hash_text(const char *s, uint64_t h)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static roj_status fake_open(void *cfg, const swarm_file *sw, int32_t threads,
                            void **state)
{
    (void)cfg;
    (void)threads;
    fake *f = calloc(1, sizeof *f);
    if (!f)
        return ROJ_ERR_NOMEM;
    f->swarm = sw;
    f->sleep_us = fake_sleep_us;
    *state = f;
    return ROJ_OK;
}

static const char *field(const exec_task *t, const char *name)
{
    for (size_t i = 0; i < t->n_fields; i++)
        if (!strcmp(t->names[i], name))
            return t->values[i];
    return "";
}

/* Results depend only on the skill, the fields and the seed. Inputs
 * with CRASH kill the agent, PERM fail for good, SLEEP take 1.5 s. */
static roj_status fake_run(void *state, const exec_task *tasks, size_t n,
                           exec_result *results)
{
    fake *f = state;
    for (size_t i = 0; i < n; i++) {
        const exec_task *t = &tasks[i];
        const swarm_skill *sk = &f->swarm->skills[t->skill];
        const char *text = field(t, "text");
        if (strstr(text, "CRASH"))
            raise(SIGSEGV);
        if (f->sleep_us)
            usleep(f->sleep_us);
        if (strstr(text, "SLEEP"))
            usleep(1500 * 1000);
        if (strstr(text, "PERM")) {
            results[i].error = strdup("the input is not allowed");
            results[i].permanent = true;
            continue;
        }
        uint64_t h = hash_text(text, 1469598103934665603ull ^ t->seed);
        h = hash_text(field(t, "label"), h);
        char buf[512];
        const swarm_output *o = &sk->output;
        if (o->kind == SWARM_OUTPUT_CHOICE) {
            /* Votes agree two times in three: the seed only moves the
             * answer when h says so. */
            uint64_t base = hash_text(text, 7);
            size_t best = (size_t)((h % 3 == 0 ? h : base) % o->n_labels);
            int len = snprintf(buf, sizeof buf, "{\"label\":\"%s\","
                               "\"confidence\":0.75,\"probs\":[",
                               o->labels[best]);
            for (size_t k = 0; k < o->n_labels; k++)
                len += snprintf(buf + len, sizeof buf - (size_t)len, "%s%g",
                                k ? "," : "",
                                k == best ? 0.75
                                          : 0.25 / (double)(o->n_labels - 1));
            snprintf(buf + len, sizeof buf - (size_t)len, "]}");
        } else if (o->kind == SWARM_OUTPUT_SPAN) {
            size_t w = strcspn(text, " .");
            if (w == 0)
                snprintf(buf, sizeof buf, "{\"text\":\"none\","
                         "\"found\":false}");
            else
                snprintf(buf, sizeof buf, "{\"text\":\"%.*s\","
                         "\"found\":true}", (int)(w > 64 ? 64 : w), text);
        } else {
            snprintf(buf, sizeof buf, "{\"text\":\"%016llx\"}",
                     (unsigned long long)h);
        }
        results[i].json = strdup(buf);
    }
    return ROJ_OK;
}

static void fake_close(void *state)
{
    free(state);
}

static const agent_executor fake_executor = {fake_open, fake_run, fake_close,
                                             NULL};

/* ---- fixtures ---- */

static void write_inputs(const char *path, size_t n, const char *special,
                         size_t special_at)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    static const char *const words[] = {"order", "refund", "late", "broken",
                                        "login", "invoice", "thanks",
                                        "urgent"};
    uint64_t rng = 42;
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "{\"id\": \"j%zu\", \"text\": \"", i);
        if (special && i == special_at) {
            fprintf(f, "%s", special);
        } else {
            size_t nw = 3 + test_rand_u64(&rng) % 8;
            for (size_t w = 0; w < nw; w++)
                fprintf(f, "%s%s%s", w ? " " : "",
                        words[test_rand_u64(&rng) % 8],
                        test_rand_u64(&rng) % 4 == 0 ? "." : "");
        }
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
    gguf_writer *w = NULL;
    if (gguf_writer_create(&w) ||
        gguf_writer_set_str(w, "general.architecture", "llama") ||
        gguf_writer_write(w, model))
        return -1;
    gguf_writer_free(w);
    snprintf(swarm_path, sizeof swarm_path, "%s/swarm.yaml", dir);
    test_write_file(swarm_path, SWARM_YAML, strlen(SWARM_YAML));
    char *problems = NULL;
    if (swarm_load(swarm_path, &swarm, &problems) != ROJ_OK) {
        fprintf(stderr, "%s\n", problems ? problems : roj_last_error());
        free(problems);
        return -1;
    }
    snprintf(input_path, sizeof input_path, "%s/jobs.jsonl", dir);
    write_inputs(input_path, 300, NULL, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    swarm_free(swarm);
    return 0;
}

static FILE *devnull(void)
{
    static FILE *f;
    if (!f)
        f = fopen("/dev/null", "w");
    return f;
}

static run_options base_options(const char *input, const char *output)
{
    run_options o = {0};
    o.swarm = swarm;
    o.pipeline = 0;
    o.swarm_path = swarm_path;
    o.input_path = input;
    o.output_path = output;
    o.n_agents = 2;
    o.heartbeat_ms = 20;
    o.log = devnull();
    o.executor = &fake_executor;
    return o;
}

static char *path_in_dir(const char *name)
{
    static char bufs[8][700];
    static int next;
    char *p = bufs[next++ % 8];
    snprintf(p, sizeof bufs[0], "%s/%s", dir, name);
    return p;
}

static char *run_ok(run_options *o, run_summary *sum)
{
    roj_status st = run_swarm(o, sum);
    if (st != ROJ_OK)
        fail_msg("run_swarm: %s", roj_last_error());
    size_t size;
    return test_read_file(o->output_path, &size);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* The baseline output of the 300 jobs: one agent, no faults. */
static char *baseline(void)
{
    static char *text;
    if (!text) {
        run_options o = base_options(input_path, path_in_dir("base.jsonl"));
        o.n_agents = 1;
        run_summary sum;
        text = run_ok(&o, &sum);
        run_summary_free(&sum);
    }
    return text;
}

/* ---- tests ---- */

static void run_writes_lines_in_order(void **state)
{
    (void)state;
    char *out = baseline();
    assert_int_equal(count_lines(out), 300);
    const char *line = out;
    for (size_t i = 0; i < 300; i++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "{\"id\":\"j%zu\",\"ok\":true,", i);
        if (strncmp(line, prefix, strlen(prefix)) != 0)
            fail_msg("line %zu: %.120s", i, line);
        line = strchr(line, '\n') + 1;
    }
}

static void run_same_output_any_agents(void **state)
{
    (void)state;
    run_options o = base_options(input_path, path_in_dir("three.jsonl"));
    o.n_agents = 3;
    o.max_batch = 5;
    run_summary sum;
    char *out = run_ok(&o, &sum);
    assert_string_equal(out, baseline());
    assert_int_equal(sum.jobs_ok, 300);
    assert_int_equal(sum.jobs_failed, 0);
    assert_int_equal(sum.deaths, 0);
    assert_true(sum.subtasks >= 300 * 4);
    run_summary_free(&sum);
    free(out);
}

static void run_survives_kills(void **state)
{
    (void)state;
    fake_sleep_us = 1500;
    run_options o = base_options(input_path, path_in_dir("kills.jsonl"));
    o.n_agents = 3;
    o.chaos.kill_ms = 60;
    o.chaos.crash_ms = 170;
    o.chaos.seed = 5;
    run_summary sum;
    char *out = run_ok(&o, &sum);
    fake_sleep_us = 0;
    assert_string_equal(out, baseline());
    assert_true(sum.faults_injected >= 2);
    assert_true(sum.deaths >= 2);
    assert_true(sum.reassigned >= 1);
    assert_int_equal(sum.jobs_failed, 0);
    run_summary_free(&sum);
    free(out);
}

static void run_survives_hangs_and_garbage(void **state)
{
    (void)state;
    fake_sleep_us = 1500;
    run_options o = base_options(input_path, path_in_dir("hangs.jsonl"));
    o.n_agents = 3;
    o.chaos.hang_ms = 150;
    o.chaos.garbage_ms = 110;
    o.chaos.slow_ms = 200;
    o.chaos.max_events = 8;
    o.chaos.seed = 9;
    run_summary sum;
    char *out = run_ok(&o, &sum);
    fake_sleep_us = 0;
    assert_string_equal(out, baseline());
    assert_true(sum.hangs >= 1);
    assert_true(sum.garbage >= 1);
    assert_int_equal(sum.jobs_failed, 0);
    run_summary_free(&sum);
    free(out);
}

static void run_hedges_slow_agent(void **state)
{
    (void)state;
    fake_sleep_us = 1000;
    run_options o = base_options(input_path, path_in_dir("hedge.jsonl"));
    o.n_agents = 3;
    o.max_batch = 2;
    o.hedge = true;
    o.chaos.slow_ms = 100;
    o.chaos.max_events = 1;
    run_summary sum;
    char *out = run_ok(&o, &sum);
    fake_sleep_us = 0;
    assert_string_equal(out, baseline());
    assert_int_equal(sum.faults_injected, 1);
    assert_true(sum.hedged >= 1);
    assert_true(sum.hedge_wins <= sum.hedged);
    assert_int_equal(sum.jobs_failed, 0);
    run_summary_free(&sum);
    free(out);
}

static void run_isolates_poisonous_input(void **state)
{
    (void)state;
    const char *in = path_in_dir("poison.jsonl");
    write_inputs(in, 40, "CRASH here", 17);
    run_options o = base_options(in, path_in_dir("poison-out.jsonl"));
    o.n_agents = 2;
    o.max_attempts = 3;
    run_summary sum;
    char *out = run_ok(&o, &sum);
    assert_int_equal(count_lines(out), 40);
    assert_int_equal(sum.jobs_ok, 39);
    assert_int_equal(sum.jobs_failed, 1);
    const char *bad = strstr(out, "{\"id\":\"j17\",\"ok\":false,");
    assert_non_null(bad);
    /* Every attempt's error is in the message. */
    const char *end = strchr(bad, '\n');
    size_t agents = 0;
    for (const char *p = bad; (p = strstr(p, "agent ")) && p < end; p++)
        agents++;
    assert_true(agents >= 3);
    assert_true(strstr(bad, "signal") != NULL);
    run_summary_free(&sum);
    free(out);
}

static void run_permanent_error_fails_once(void **state)
{
    (void)state;
    const char *in = path_in_dir("perm.jsonl");
    write_inputs(in, 10, "PERM input", 3);
    run_options o = base_options(in, path_in_dir("perm-out.jsonl"));
    run_summary sum;
    char *out = run_ok(&o, &sum);
    assert_int_equal(sum.jobs_failed, 1);
    assert_int_equal(sum.retries, 0);
    assert_non_null(strstr(out, "{\"id\":\"j3\",\"ok\":false,"));
    assert_non_null(strstr(out, "the input is not allowed"));
    run_summary_free(&sum);
    free(out);
}

static void run_skill_timeout_kills_agent(void **state)
{
    (void)state;
    const char *in = path_in_dir("slow.jsonl");
    write_inputs(in, 6, "SLEEP now", 2);
    run_options o = base_options(in, path_in_dir("slow-out.jsonl"));
    o.max_attempts = 2;
    run_summary sum;
    char *out = run_ok(&o, &sum);
    assert_int_equal(sum.jobs_ok, 5);
    assert_int_equal(sum.jobs_failed, 1);
    assert_true(sum.timeouts >= 2);
    assert_non_null(strstr(out, "{\"id\":\"j2\",\"ok\":false,"));
    assert_non_null(strstr(out, "took over"));
    run_summary_free(&sum);
    free(out);
}

static void run_job_deadline_fails_job(void **state)
{
    (void)state;
    const char *in = path_in_dir("deadline.jsonl");
    write_inputs(in, 6, "SLEEP now", 4);
    run_options o = base_options(in, path_in_dir("deadline-out.jsonl"));
    o.job_timeout_ms = 1000;
    o.n_agents = 3;
    o.max_batch = 1;
    run_summary sum;
    char *out = run_ok(&o, &sum);
    /* Subtasks queued behind the sleeping one on its agent may miss the
     * deadline too (and on a loaded machine slow agent start-up can make
     * any job miss it); every failure must be a deadline. */
    assert_true(sum.jobs_failed >= 1);
    assert_non_null(strstr(out, "{\"id\":\"j4\",\"ok\":false,"));
    size_t deadlines = 0;
    for (const char *p = out; (p = strstr(p, "deadline")); p++)
        deadlines++;
    assert_int_equal(deadlines, sum.jobs_failed);
    run_summary_free(&sum);
    free(out);
}

typedef struct stopper {
    volatile int *flag;
    const char *output; /* stop once this file has output in it */
    unsigned after_ms;  /* and this long after that */
} stopper;

static void *stop_later(void *arg)
{
    stopper *s = arg;
    struct stat st;
    for (int i = 0; i < 10000; i++) {
        if (stat(s->output, &st) == 0 && st.st_size > 0)
            break;
        usleep(1000);
    }
    usleep(s->after_ms * 1000u);
    *s->flag = 1;
    return NULL;
}

static void run_resumes_after_stop(void **state)
{
    (void)state;
    const char *out_path = path_in_dir("resume.jsonl");
    const char *jr = path_in_dir("resume.journal");
    fake_sleep_us = 2000;
    volatile int stop = 0;
    run_options o = base_options(input_path, out_path);
    o.journal_path = jr;
    o.stop = &stop;
    stopper s = {&stop, out_path, 150};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stop_later, &s), 0);
    run_summary sum;
    roj_status st = run_swarm(&o, &sum);
    pthread_join(t, NULL);
    assert_int_equal(st, ROJ_ERR_ABORTED);
    assert_true(sum.interrupted);
    uint64_t first = sum.jobs_ok;
    assert_true(first < 300);
    run_summary_free(&sum);

    stop = 0;
    fake_sleep_us = 0;
    char *out = run_ok(&o, &sum);
    assert_string_equal(out, baseline());
    assert_true(sum.jobs_resumed + sum.subtasks_cached > 0);
    run_summary_free(&sum);
    free(out);
}

static void run_resumes_after_kill9(void **state)
{
    (void)state;
    const char *out_path = path_in_dir("kill9.jsonl");
    const char *jr = path_in_dir("kill9.journal");
    fake_sleep_us = 2000;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        run_options o = base_options(input_path, out_path);
        o.journal_path = jr;
        run_summary sum;
        run_swarm(&o, &sum);
        _exit(0);
    }
    /* Kill it after some output and at least one more journal commit
     * (every 100 ms). */
    struct stat st;
    for (int i = 0; i < 5000; i++) {
        if (stat(out_path, &st) == 0 && st.st_size > 0)
            break;
        usleep(1000);
    }
    usleep(300 * 1000);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    fake_sleep_us = 0;
    /* The killed runner's agents die with it (PR_SET_PDEATHSIG). */
    run_options o = base_options(input_path, out_path);
    o.journal_path = jr;
    run_summary sum;
    char *out = run_ok(&o, &sum);
    assert_string_equal(out, baseline());
    assert_true(sum.jobs_resumed > 0);
    run_summary_free(&sum);
    free(out);
}

static void run_rejects_other_journal(void **state)
{
    (void)state;
    const char *jr = path_in_dir("other.journal");
    const char *in = path_in_dir("other.jsonl");
    write_inputs(in, 5, NULL, 0);
    run_options o = base_options(in, path_in_dir("other-out.jsonl"));
    o.journal_path = jr;
    run_summary sum;
    char *out = run_ok(&o, &sum);
    free(out);
    run_summary_free(&sum);
    write_inputs(in, 6, NULL, 0);
    roj_status st = run_swarm(&o, &sum);
    run_summary_free(&sum);
    assert_int_equal(st, ROJ_ERR_INVALID_ARG);
    assert_non_null(strstr(roj_last_error(), "input"));
}

static void run_rejects_bad_input(void **state)
{
    (void)state;
    const char *in = path_in_dir("broken.jsonl");
    const char text[] = "{\"text\": \"fine\"}\n{\"text\": 5\n{\"other\": 1}\n";
    test_write_file(in, text, strlen(text));
    run_options o = base_options(in, path_in_dir("broken-out.jsonl"));
    run_summary sum;
    roj_status st = run_swarm(&o, &sum);
    run_summary_free(&sum);
    assert_int_equal(st, ROJ_ERR_FORMAT);
    assert_non_null(strstr(roj_last_error(), "broken.jsonl:2"));
    assert_non_null(strstr(roj_last_error(), "broken.jsonl:3"));
    assert_int_equal(sum.agents_started, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(run_writes_lines_in_order),
        cmocka_unit_test(run_same_output_any_agents),
        cmocka_unit_test(run_survives_kills),
        cmocka_unit_test(run_survives_hangs_and_garbage),
        cmocka_unit_test(run_hedges_slow_agent),
        cmocka_unit_test(run_isolates_poisonous_input),
        cmocka_unit_test(run_permanent_error_fails_once),
        cmocka_unit_test(run_skill_timeout_kills_agent),
        cmocka_unit_test(run_job_deadline_fails_job),
        cmocka_unit_test(run_resumes_after_stop),
        cmocka_unit_test(run_resumes_after_kill9),
        cmocka_unit_test(run_rejects_other_journal),
        cmocka_unit_test(run_rejects_bad_input),
    };
    return test_run_group(tests, setup, teardown);
}
