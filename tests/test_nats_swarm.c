/* The same swarm on NATS JetStream: `roj run --nats` with `roj agent`
 * processes gives the output file of the one-machine run, also when the
 * submitter is killed and run again, and on a 3-node cluster while
 * agents are killed with SIGKILL and one server is killed and
 * restarted. Real nats-server processes on 127.0.0.1. */
#include "testutil.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "model/synth.h"
#include "nats_server.h"
#include "run/run.h"
#include "swarm/swarm.h"

#define N_JOBS 500
#define N_AGENTS 4

static const char SWARM_YAML[] =
    "version: 1\n"
    "name: natstest\n"
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
    "  reply:\n"
    "    model: m\n"
    "    prompt: \"Ticket about {topic}: {text}\\nReply:\"\n"
    "    output: {text: {max_tokens: 3}}\n"
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
    "      - id: reply\n"
    "        skill: reply\n"
    "        input: {topic: \"{topic.label}\"}\n"
    "    output:\n"
    "      topic: \"{topic.label}\"\n"
    "      agreement: \"{topic.agreement}\"\n"
    "      name: \"{name.text}\"\n"
    "      reply: \"{reply.text}\"\n";

static char dir[512];
static char swarm_path[600], input_path[600];
static char *baseline;

static void kill_started(void);

static void write_jobs(const char *path, size_t n)
{
    static const char *const words[] = {
        "my", "invoice", "is", "wrong", "Anna", "cannot", "log", "in",
        "parcel", "late", "again", "please", "help", "Piotr", "refund",
        "password"};
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    uint64_t rng = 4321;
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "{\"id\": %zu, \"text\": \"", i + 1);
        size_t nw = 3 + test_rand_u64(&rng) % 8;
        for (size_t w = 0; w < nw; w++)
            fprintf(f, "%s%s", w ? " " : "",
                    words[test_rand_u64(&rng) % 16]);
        fprintf(f, "\"}\n");
    }
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    nts_require();
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    char models[600], model[700];
    snprintf(models, sizeof models, "%s/models", dir);
    if (mkdir(models, 0755) != 0)
        return -1;
    snprintf(model, sizeof model, "%s/base.gguf", models);
    synth_shape s = {
        .name = "nats", .n_layer = 2, .n_embd = 64, .n_head = 4,
        .n_head_kv = 2, .n_ff = 128, .n_ctx = 256, .n_vocab = 0,
        .rope_freq_base = 10000.0f, .rms_eps = 1e-5f,
        .tied_output = true, .seed = SYNTH_DEFAULT_SEED, .vocab_path = NULL,
    };
    if (synth_write_model(model, &s) != ROJ_OK)
        return -1;
    snprintf(swarm_path, sizeof swarm_path, "%s/swarm.yaml", dir);
    test_write_file(swarm_path, SWARM_YAML, strlen(SWARM_YAML));
    snprintf(input_path, sizeof input_path, "%s/jobs.jsonl", dir);
    write_jobs(input_path, N_JOBS);
    /* Short delivery deadlines, so that the work of a killed agent
     * comes back in seconds; every process of the test uses them. */
    setenv("ROJ_NATS_ACK_WAIT_MS", "2000", 1);

    /* The one-machine run that every NATS run must equal. */
    swarm_file *swarm = NULL;
    char *problems = NULL;
    if (swarm_load(swarm_path, &swarm, &problems) != ROJ_OK) {
        fprintf(stderr, "%s\n", problems ? problems : roj_last_error());
        free(problems);
        return -1;
    }
    char out[700];
    snprintf(out, sizeof out, "%s/local.jsonl", dir);
    FILE *null_log = fopen("/dev/null", "w");
    run_options o = {0};
    o.swarm = swarm;
    o.swarm_path = swarm_path;
    o.input_path = input_path;
    o.output_path = out;
    o.n_agents = 2;
    o.log = null_log;
    run_summary sum;
    roj_status st = run_swarm(&o, &sum);
    run_summary_free(&sum);
    swarm_free(swarm);
    fclose(null_log);
    if (st != ROJ_OK) {
        fprintf(stderr, "local run: %s\n", roj_last_error());
        return -1;
    }
    baseline = test_read_file(out, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kill_started();
    free(baseline);
    return 0;
}

/* ---- processes ---- */

/* Every roj process a test starts, so that a failed test (which
 * leaves its function early) still stops them in teardown. */
static pid_t started[256];
static size_t n_started;

static void kill_started(void)
{
    for (size_t i = 0; i < n_started; i++)
        if (started[i] > 0 && kill(started[i], SIGKILL) == 0)
            waitpid(started[i], NULL, 0);
    n_started = 0;
}

static pid_t start_roj(const char *const *args, const char *log_path)
{
    pid_t pid = test_roj_start(args, log_path, NULL, 1);
    if (n_started == sizeof started / sizeof started[0])
        n_started = 0; /* the oldest have been waited for long ago */
    started[n_started++] = pid;
    return pid;
}

static int wait_exit(pid_t pid)
{
    return test_roj_wait(pid, -1);
}

/* Starts agent i on urls; replicas as the submitter gives them. */
static pid_t start_agent(int i, const char *urls, const char *replicas)
{
    char name[32], log[700];
    snprintf(name, sizeof name, "agent%d", i);
    snprintf(log, sizeof log, "%s/%s.log", dir, name);
    const char *args[] = {"agent", swarm_path, "--nats", urls, "--name",
                          name, "--replicas", replicas, NULL};
    return start_roj(args, log);
}

static void stop_agents(pid_t *pids, int n)
{
    for (int i = 0; i < n; i++)
        if (pids[i] > 0)
            kill(pids[i], SIGTERM);
    for (int i = 0; i < n; i++)
        if (pids[i] > 0) {
            waitpid(pids[i], NULL, 0);
            pids[i] = 0;
        }
}

static pid_t start_run(const char *urls, const char *out, const char *name,
                       const char *replicas)
{
    char log[700];
    snprintf(log, sizeof log, "%s/%s.log", dir, name);
    const char *args[] = {"run", swarm_path, "--input", input_path,
                          "--output", out, "--nats", urls, "--replicas",
                          replicas, "--progress-lines", NULL};
    return start_roj(args, log);
}

static size_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

static void expect_baseline(const char *out, const char *name)
{
    char *text = test_read_file(out, NULL);
    bool same = strcmp(text, baseline) == 0;
    if (!same) {
        char log[700];
        snprintf(log, sizeof log, "%s/%s.log", dir, name);
        char *l = test_read_file(log, NULL);
        fprintf(stderr, "%s\n", l);
        free(l);
        /* The first line that differs, from both files. */
        const char *a = text, *b = baseline;
        while (*a && *a == *b) {
            a++;
            b++;
        }
        while (a > text && a[-1] != '\n') {
            a--;
            b--;
        }
        fprintf(stderr, "first difference:\n  got:  %.*s\n  want: %.*s\n",
                (int)strcspn(a, "\n"), a, (int)strcspn(b, "\n"), b);
    }
    free(text);
    assert_true(same);
}

/* ---- tests ---- */

static void nats_run_equals_local_run(void **state)
{
    (void)state;
    nts_server s = {0};
    assert_int_equal(nts_start(&s, NTS_JETSTREAM, NULL, NULL), 0);
    pid_t agents[2];
    for (int i = 0; i < 2; i++)
        agents[i] = start_agent(i, s.url, "1");
    char out[700];
    snprintf(out, sizeof out, "%s/nats1.jsonl", dir);
    int rc = wait_exit(start_run(s.url, out, "run1", "1"));
    stop_agents(agents, 2);
    nts_stop(&s, 5000);
    nts_free(&s);
    assert_int_equal(rc, 0);
    expect_baseline(out, "run1");
}

static void nats_submitter_killed_resumes(void **state)
{
    (void)state;
    nts_server s = {0};
    assert_int_equal(nts_start(&s, NTS_JETSTREAM, NULL, NULL), 0);
    pid_t agents[2];
    for (int i = 0; i < 2; i++)
        agents[i] = start_agent(10 + i, s.url, "1");
    char out[700];
    snprintf(out, sizeof out, "%s/nats2.jsonl", dir);
    pid_t run = start_run(s.url, out, "run2", "1");
    for (int i = 0; i < 10000 && file_size(out) < 3000; i++)
        usleep(2000);
    kill(run, SIGKILL);
    assert_int_equal(wait_exit(run), 128 + SIGKILL);
    /* Another submitter (here: the same command) continues the run from
     * the results on the server, into a new file. */
    char out2[700];
    snprintf(out2, sizeof out2, "%s/nats2b.jsonl", dir);
    int rc = wait_exit(start_run(s.url, out2, "run2b", "1"));
    stop_agents(agents, 2);
    nts_stop(&s, 5000);
    nts_free(&s);
    assert_int_equal(rc, 0);
    expect_baseline(out2, "run2b");
    char log[700];
    snprintf(log, sizeof log, "%s/run2b.log", dir);
    char *text = test_read_file(log, NULL);
    assert_null(strstr(text, ": 0 results already recorded"));
    free(text);
}

static void nats_cluster_survives_kills(void **state)
{
    (void)state;
    nts_cluster c;
    memset(&c, 0, sizeof c);
    assert_int_equal(nts_cluster_start(&c), 0);
    pid_t agents[N_AGENTS];
    for (int i = 0; i < N_AGENTS; i++)
        agents[i] = start_agent(20 + i, c.urls, "3");
    char out[700];
    snprintf(out, sizeof out, "%s/cluster.jsonl", dir);
    pid_t run = start_run(c.urls, out, "cluster", "3");

    uint64_t rng = 99;
    int kills = 0, next = 20 + N_AGENTS;
    bool server_killed = false, server_back = false;
    double t0 = (double)time(NULL);
    for (;;) {
        int status;
        pid_t w = waitpid(run, &status, WNOHANG);
        if (w == run) {
            run = 0;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                char log[700];
                snprintf(log, sizeof log, "%s/cluster.log", dir);
                char *text = test_read_file(log, NULL);
                fprintf(stderr, "%s\n", text);
                free(text);
            }
            assert_true(WIFEXITED(status));
            assert_int_equal(WEXITSTATUS(status), 0);
            break;
        }
        assert_true((double)time(NULL) - t0 < 240);
        usleep(700 * 1000);
        /* Twenty kills, then the run finishes in peace: on a loaded
         * machine endless kills could use up a subtask's deliveries on
         * agents that die before answering, which fails its job by
         * design. */
        if (kills >= 20)
            continue;
        /* SIGKILL a random agent and start a new one in its place. */
        int k = (int)(test_rand_u64(&rng) % N_AGENTS);
        kill(agents[k], SIGKILL);
        waitpid(agents[k], NULL, 0);
        agents[k] = start_agent(next++, c.urls, "3");
        kills++;
        if (!server_killed && kills == 3) {
            nts_kill(&c.nodes[1]);
            server_killed = true;
        } else if (server_killed && !server_back && kills == 8) {
            assert_int_equal(nts_restart(&c.nodes[1]), 0);
            server_back = true;
        }
    }
    stop_agents(agents, N_AGENTS);
    nts_cluster_free(&c);
    print_message("%d agents killed, one server killed%s\n", kills,
                  server_back ? " and restarted" : "");
    assert_true(kills >= 3);
    expect_baseline(out, "cluster");
}

static void nats_unreachable_is_clear(void **state)
{
    (void)state;
    char url[64], out[700], log[700];
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", nts_free_port());
    snprintf(out, sizeof out, "%s/none.jsonl", dir);
    snprintf(log, sizeof log, "%s/none.log", dir);
    const char *args[] = {"run", swarm_path, "--input", input_path,
                          "--output", out, "--nats", url, NULL};
    int rc = wait_exit(start_roj(args, log));
    assert_int_equal(rc, 1);
    char *text = test_read_file(log, NULL);
    assert_non_null(strstr(text, url));
    assert_non_null(strstr(text, "unreachable"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nats_unreachable_is_clear),
        cmocka_unit_test(nats_run_equals_local_run),
        cmocka_unit_test(nats_submitter_killed_resumes),
        cmocka_unit_test(nats_cluster_survives_kills),
    };
    return test_run_group(tests, setup, teardown);
}
