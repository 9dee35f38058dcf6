/*
 * Benchmarks of the swarm on NATS JetStream (run/nats_proto.h), against
 * a nats-server that the caller started (bench/run_nats_bench.sh):
 *
 *   raw         the JetStream floor in microseconds per message:
 *               publish (natsx_publish), fetch (natsx_fetch) and ack
 *               (natsx_msg_ack) one message at a time, then in batches
 *               of 16. Then the two KV calls of the agent's protocol
 *               alone: the result check (a get of an absent key) and
 *               the result record (a create).
 *   dispatch    roj's protocol cost per subtask: run_swarm with
 *               run_options.nats submits one-step jobs while the real
 *               agent loop (nagent_run) runs in a thread of this process
 *               with a no-op executor, so what is measured is the
 *               publish, fetch, result check, result record, ack and the
 *               runner's watch, not a model
 *   throughput  jobs/s of a choice skill on a seeded random model with 1
 *               and 2 `roj agent` processes, against the local mode
 *               (run_swarm with as many forked agents) on the same inputs
 *
 * Each configuration runs `runs` times; tables give medians. Usage:
 *   bench_nats --nats URL [raw|dispatch|throughput|all] [--roj PATH]
 *              [--n N] [--jobs N] [--model-jobs N] [--runs N]
 *              [--server-pid PID] [--dir DIR]
 * --roj names the roj binary for the throughput test; --server-pid lets
 * the tables show the server's CPU time. DIR (default: a new folder
 * under /tmp) receives the model, the swarm file, inputs, outputs and
 * the agents' logs.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/sha256.h"
#include "model/synth.h"
#include "nats/natsx.h"
#include "run/nats_agent.h"
#include "run/nats_proto.h"
#include "run/run.h"
#include "swarm/swarm.h"

#define MAX_RUNS 32
#define RAW_BATCH 16
#define RAW_WARMUP 200

static const char SWARM_YAML[] =
    "version: 1\n"
    "name: natsbench\n"
    "models:\n"
    "  m: {path: model.gguf}\n"
    "skills:\n"
    "  topic:\n"
    "    model: m\n"
    "    prompt: \"Ticket: {text}\\nTopic:\"\n"
    "    output: {choice: [billing, shipping, login, other]}\n"
    "pipelines:\n"
    "  one:\n"
    "    input: [text]\n"
    "    steps:\n"
    "      - id: topic\n"
    "        skill: topic\n"
    "    output: {topic: \"{topic.label}\"}\n";

static char dir[512];
static char swarm_path[700], input_path[700], output_path[700];
static char swarm_sha[SHA256_HEX_SIZE];
static swarm_file *swarm;
static FILE *null_log;
static natsx_options nopt;
static long server_pid;
/* Every NATS run needs an input of its own: the run id is a digest of
 * the input, and an input seen before continues the earlier run. */
static unsigned next_rotation = 1;

/* ---- the no-op executor ---- */

static roj_status noop_open(void *cfg, const swarm_file *sw, int32_t threads,
                            void **state)
{
    (void)cfg;
    (void)threads;
    *state = (void *)sw;
    return ROJ_OK;
}

static roj_status noop_run(void *state, const exec_task *tasks, size_t n,
                           exec_result *results)
{
    (void)state;
    (void)tasks;
    for (size_t i = 0; i < n; i++) {
        results[i].json = strdup("{\"label\":\"other\",\"confidence\":1,"
                                 "\"probs\":[0,0,0,1]}");
        if (!results[i].json)
            return ROJ_ERR_NOMEM;
    }
    return ROJ_OK;
}

static void noop_close(void *state)
{
    (void)state;
}

static const agent_executor noop = {noop_open, noop_run, noop_close, NULL};

/* ---- helpers ---- */

static void die(const char *what)
{
    fprintf(stderr, "bench_nats: %s: %s\n", what, roj_last_error());
    exit(1);
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double self_cpu_s(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 +
           (double)u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

/* CPU seconds (user + system) of the server process; 0 without
 * --server-pid. */
static double server_cpu_s(void)
{
    if (server_pid <= 0)
        return 0;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", server_pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields 14 and 15 (utime, stime) follow the ")" that ends the
     * command name. */
    const char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                     "%llu %llu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of v; sorts v. */
static double quantile(double *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)(q * (n - 1) + 0.5);
    return v[i];
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Writes n tickets from a fixed generator, the line of ticket i at
 * position (i + rotation) % n. Every rotation contains the same work
 * in a file with another digest. */
static void write_jobs(size_t n, unsigned rotation)
{
    static const char *const words[] = {
        "my", "invoice", "is", "wrong", "cannot", "log", "in", "parcel",
        "late", "again", "please", "help", "refund", "password", "card",
        "blocked"};
    char (*lines)[160] = calloc(n, sizeof *lines);
    FILE *f = fopen(input_path, "w");
    if (!lines || !f) {
        perror(input_path);
        exit(1);
    }
    uint64_t x = 99;
    for (size_t i = 0; i < n; i++) {
        size_t at = (i + rotation) % n, len = 0;
        len += (size_t)snprintf(lines[at], sizeof lines[at], "{\"text\": \"");
        for (int w = 0; w < 12; w++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            len += (size_t)snprintf(lines[at] + len, sizeof lines[at] - len,
                                    "%s%s", w ? " " : "",
                                    words[(x >> 33) % 16]);
        }
        snprintf(lines[at] + len, sizeof lines[at] - len, "\"}\n");
    }
    for (size_t i = 0; i < n; i++)
        fputs(lines[i], f);
    fclose(f);
    free(lines);
}

static void setup(const char *given)
{
    if (given) {
        snprintf(dir, sizeof dir, "%s", given);
        mkdir(dir, 0755);
    } else {
        snprintf(dir, sizeof dir, "/tmp/roj-bench-nats-XXXXXX");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            exit(1);
        }
    }
    char model[700];
    snprintf(model, sizeof model, "%s/model.gguf", dir);
    /* The model of bench_run: 4 layers of width 256, about 3 M
     * parameters with the built-in byte-level vocabulary. */
    synth_shape s = {
        .name = "bench-run", .n_layer = 4, .n_embd = 256, .n_head = 4,
        .n_head_kv = 2, .n_ff = 768, .n_ctx = 512, .n_vocab = 0,
        .rope_freq_base = 10000.0f, .rms_eps = 1e-5f, .tied_output = true,
        .seed = SYNTH_DEFAULT_SEED, .vocab_path = NULL,
    };
    if (synth_write_model(model, &s) != ROJ_OK)
        die("model");
    snprintf(swarm_path, sizeof swarm_path, "%s/swarm.yaml", dir);
    FILE *f = fopen(swarm_path, "w");
    if (!f || fputs(SWARM_YAML, f) < 0 || fclose(f) != 0) {
        perror(swarm_path);
        exit(1);
    }
    char *problems = NULL;
    if (swarm_load(swarm_path, &swarm, &problems) != ROJ_OK) {
        fprintf(stderr, "%s\n", problems ? problems : roj_last_error());
        exit(1);
    }
    free(problems);
    if (sha256_file(swarm_path, swarm_sha) != ROJ_OK)
        die("swarm digest");
    snprintf(input_path, sizeof input_path, "%s/jobs.jsonl", dir);
    snprintf(output_path, sizeof output_path, "%s/out.jsonl", dir);
    null_log = fopen("/dev/null", "w");
}

static run_options base(uint32_t agents, bool nats)
{
    run_options o = {0};
    o.swarm = swarm;
    o.swarm_path = swarm_path;
    o.input_path = input_path;
    o.output_path = output_path;
    o.n_agents = agents;
    o.threads = 1;
    o.log = null_log;
    o.nats = nats ? &nopt : NULL;
    return o;
}

static void run_or_die(const run_options *o, run_summary *sum)
{
    if (run_swarm(o, sum) != ROJ_OK)
        die("run_swarm");
    if (sum->jobs_failed > 0) {
        fprintf(stderr, "bench_nats: %" PRIu64 " jobs failed\n",
                sum->jobs_failed);
        exit(1);
    }
}

/* ---- raw JetStream cycle ---- */

/* One sample per message of n: publish, fetch and ack one at a time
 * (batch 1), or RAW_BATCH published, then fetched and acked (each
 * message's sample is the batch's time / RAW_BATCH). */
static void raw_cycle(natsx_conn *c, natsx_pull *p, int n, int batch,
                      double *us)
{
    char payload[160];
    memset(payload, 'x', sizeof payload);
    for (int done = 0; done < n; done += batch) {
        double t0 = now_us();
        for (int i = 0; i < batch; i++)
            if (natsx_publish(c, "natsbench.raw.x", payload, sizeof payload,
                              NULL, 5000, NULL, NULL) != ROJ_OK)
                die("publish");
        int got = 0;
        while (got < batch) {
            natsx_batch b = {0};
            if (natsx_fetch(p, batch - got, 5000, &b) != ROJ_OK)
                die("fetch");
            if (b.n == 0) {
                fprintf(stderr, "bench_nats: fetch timed out\n");
                exit(1);
            }
            for (int i = 0; i < b.n; i++)
                if (natsx_msg_ack(b.msgs[i]) != ROJ_OK)
                    die("ack");
            got += b.n;
            natsx_batch_free(&b);
        }
        double per = (now_us() - t0) / batch;
        for (int i = 0; i < batch && done + i < n; i++)
            us[done + i] = per;
    }
}

static void bench_raw(int n, int runs)
{
    natsx_conn *c = NULL;
    natsx_pull *p = NULL;
    const char *subjects[] = {"natsbench.raw.>"};
    natsx_stream_config sc = {"NATSBENCH_RAW", subjects, 1, 1, 0};
    natsx_consumer_config cc = {"NATSBENCH_RAW", "raw", "natsbench.raw.x",
                                30000, -1};
    if (natsx_connect(&nopt, &c) != ROJ_OK ||
        natsx_stream_ensure(c, &sc) != ROJ_OK ||
        natsx_consumer_ensure(c, &cc) != ROJ_OK ||
        natsx_pull_bind(c, "NATSBENCH_RAW", "raw", &p) != ROJ_OK)
        die("raw setup");
    double *us = calloc((size_t)n + RAW_BATCH, sizeof *us);
    if (!us)
        exit(1);
    raw_cycle(c, p, RAW_WARMUP, 1, us);

    printf("\n### Raw JetStream cycle, %d messages of 160 bytes per run\n\n",
           n);
    printf("| operation | us/message p50 | us/message p99 | server CPU "
           "us/message |\n|---|---|---|---|\n");
    const int batches[] = {1, RAW_BATCH};
    for (int k = 0; k < 2; k++) {
        double p50[MAX_RUNS], p99[MAX_RUNS], srv[MAX_RUNS];
        for (int r = 0; r < runs; r++) {
            double s0 = server_cpu_s();
            raw_cycle(c, p, n, batches[k], us);
            srv[r] = (server_cpu_s() - s0) * 1e6 / n;
            p50[r] = quantile(us, n, 0.5);
            p99[r] = quantile(us, n, 0.99);
        }
        printf("| %s | %.0f | %.0f | %.0f |\n",
               k == 0 ? "one at a time (batch 1)"
                      : "publish 16, fetch 16, ack 16",
               median(p50, runs), median(p99, runs), median(srv, runs));
    }

    /* The result check and the result record of the agent's protocol,
     * one call at a time, on fresh keys. */
    natsx_kv *kv = NULL;
    natsx_kv_config kc = {"natsbench_raw", 1, 1, 0};
    if (natsx_kv_open(c, &kc, &kv) != ROJ_OK)
        die("raw bucket");
    static unsigned key_round;
    for (int k = 0; k < 2; k++) {
        double p50[MAX_RUNS], p99[MAX_RUNS], srv[MAX_RUNS];
        for (int r = 0; r < runs; r++) {
            key_round++;
            double s0 = server_cpu_s();
            for (int i = 0; i < n; i++) {
                char key[64];
                snprintf(key, sizeof key, "k%u.%d", key_round, i);
                bool found = true;
                natsx_kv_outcome out = NATSX_KV_EXISTS;
                double t0 = now_us();
                roj_status st = k == 0
                    ? natsx_kv_get(kv, key, &found, NULL, NULL, NULL)
                    : natsx_kv_create(kv, key, "{\"ok\":true}", 11, &out,
                                      NULL);
                us[i] = now_us() - t0;
                if (st != ROJ_OK || (k == 0 && found) ||
                    (k == 1 && out != NATSX_KV_CREATED))
                    die("raw KV call");
            }
            srv[r] = (server_cpu_s() - s0) * 1e6 / n;
            p50[r] = quantile(us, n, 0.5);
            p99[r] = quantile(us, n, 0.99);
        }
        printf("| %s | %.0f | %.0f | %.0f |\n",
               k == 0 ? "KV get of an absent key (alone)"
                      : "KV create of a new key (alone)",
               median(p50, runs), median(p99, runs), median(srv, runs));
    }
    natsx_kv_close(kv);
    free(us);
    natsx_pull_close(p);
    natsx_close(c);
}

/* ---- roj's dispatch with a no-op skill ---- */

typedef struct noop_agent {
    pthread_t thread;
    volatile int stop;
    nagent_config cfg;
    roj_status st;
} noop_agent;

static void *noop_agent_main(void *arg)
{
    noop_agent *a = arg;
    a->st = nagent_run(&a->cfg, NULL);
    return NULL;
}

/* Waits until the agents bucket contains at least n records. */
static void agents_wait(size_t n)
{
    nproto_names names;
    natsx_conn *c = NULL;
    natsx_kv *agents = NULL;
    if (nproto_names_init(swarm, &names) != ROJ_OK ||
        natsx_connect(&nopt, &c) != ROJ_OK ||
        nproto_setup(c, swarm, &names, 1, NULL, &agents, NULL) != ROJ_OK)
        die("agents bucket");
    for (int i = 0;; i++) {
        char **keys = NULL;
        size_t nk = 0;
        if (natsx_kv_keys(agents, NULL, &keys, &nk) == ROJ_OK) {
            natsx_keys_free(keys, nk);
            if (nk >= n)
                break;
        }
        if (i > 600) {
            fprintf(stderr, "bench_nats: %zu agents did not register in "
                    "60 s\n", n);
            exit(1);
        }
        sleep_ms(100);
    }
    natsx_kv_close(agents);
    natsx_close(c);
}

static void bench_dispatch(size_t jobs, int runs)
{
    /* The local mode first, as a reference: one forked agent. */
    double local[MAX_RUNS];
    write_jobs(jobs, 0);
    for (int r = 0; r < runs; r++) {
        run_options o = base(1, false);
        o.executor = &noop;
        run_summary sum;
        run_or_die(&o, &sum);
        local[r] = sum.wall_s * 1e6 / (double)sum.subtasks;
        run_summary_free(&sum);
    }

    noop_agent a = {0};
    a.cfg = (nagent_config){
        .swarm = swarm, .swarm_path = swarm_path, .swarm_sha256 = swarm_sha,
        .nats = nopt, .name = "bench-noop", .threads = 1, .batch = 16,
        .replicas = 1, .stop = &a.stop, .executor = &noop};
    if (pthread_create(&a.thread, NULL, noop_agent_main, &a) != 0) {
        fprintf(stderr, "bench_nats: cannot start the agent thread\n");
        exit(1);
    }
    agents_wait(1);

    /* A one-job run shows the fixed cost of a run (connect, setup,
     * watch). */
    double start[MAX_RUNS];
    for (int r = 0; r < runs; r++) {
        write_jobs(1, next_rotation++);
        run_options o = base(0, true);
        run_summary sum;
        run_or_die(&o, &sum);
        start[r] = sum.wall_s * 1e3;
        run_summary_free(&sum);
    }
    double wall[MAX_RUNS], marginal[MAX_RUNS], cpu[MAX_RUNS],
        srv[MAX_RUNS], send[MAX_RUNS];
    double fixed_ms = median(start, runs);
    for (int r = 0; r < runs; r++) {
        write_jobs(jobs, next_rotation++);
        run_options o = base(0, true);
        run_summary sum;
        double c0 = self_cpu_s(), s0 = server_cpu_s();
        run_or_die(&o, &sum);
        double n = (double)sum.subtasks;
        cpu[r] = (self_cpu_s() - c0) * 1e6 / n;
        srv[r] = (server_cpu_s() - s0) * 1e6 / n;
        wall[r] = sum.wall_s * 1e6 / n;
        marginal[r] = (sum.wall_s * 1e3 - fixed_ms) * 1e3 / n;
        send[r] = sum.sched_us_p50;
        run_summary_free(&sum);
    }
    a.stop = 1;
    pthread_join(a.thread, NULL);
    if (a.st != ROJ_OK)
        die("no-op agent");

    printf("\n### Dispatch per subtask, no-op skill, %zu one-step jobs per "
           "run\n\n", jobs);
    printf("| mode | wall us/subtask | without the run's start-up | "
           "runner + agent CPU us/subtask | server CPU us/subtask | "
           "publish us (p50) |\n|---|---|---|---|---|---|\n");
    printf("| NATS, 1 in-process agent (batch 16) | %.0f | %.0f | %.0f | "
           "%.0f | %.0f |\n", median(wall, runs), median(marginal, runs),
           median(cpu, runs), median(srv, runs), median(send, runs));
    printf("| local, 1 forked agent (batch 16) | %.1f | - | - | - | - |\n",
           median(local, runs));
    printf("\nStart-up of a NATS run (1 job): %.1f ms (median)\n", fixed_ms);
}

/* ---- throughput with roj agent processes ---- */

static pid_t agent_spawn(const char *roj, int k)
{
    char name[32], log_path[800];
    snprintf(name, sizeof name, "natsbench-%d", k);
    snprintf(log_path, sizeof log_path, "%s/agent-%d.log", dir, k);
    /* The child must not write this process's buffered tables again
     * when it reopens stdout. */
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        FILE *f = freopen(log_path, "a", stderr);
        if (!f || !freopen("/dev/null", "w", stdout))
            _exit(127);
        execl(roj, roj, "agent", swarm_path, "--nats", nopt.urls, "--name",
              name, "-t", "1", (char *)NULL);
        perror(roj);
        _exit(127);
    }
    return pid;
}

/* Stops the agents pids[first] to pids[last] and waits for them. */
static void agents_stop(const pid_t *pids, int first, int last)
{
    for (int i = first; i <= last; i++)
        kill(pids[i], SIGTERM);
    for (int i = first; i <= last; i++) {
        int status = 0;
        waitpid(pids[i], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fprintf(stderr, "bench_nats: agent %d exited with status %d "
                    "(see %s/agent-%d.log)\n", i, status, dir, i);
    }
}

/* Each run measures the four configurations one after the other, so a
 * change in the machine's other work between runs affects all of them.
 * Agent 0 serves every NATS run. Agent 1 starts for the 2-agent run and
 * stops after it. */
static void bench_throughput(const char *roj, size_t jobs, int runs)
{
    double local[2][MAX_RUNS], remote[2][MAX_RUNS];
    pid_t pids[2];
    pids[0] = agent_spawn(roj, 0);
    agents_wait(1);
    for (int r = 0; r < runs; r++) {
        for (int k = 1; k <= 2; k++) {
            write_jobs(jobs, (unsigned)r);
            run_options o = base((uint32_t)k, false);
            run_summary sum;
            run_or_die(&o, &sum);
            local[k - 1][r] = (double)sum.jobs_ok / sum.wall_s;
            run_summary_free(&sum);
        }
        for (int k = 1; k <= 2; k++) {
            if (k == 2) {
                pids[1] = agent_spawn(roj, 1);
                agents_wait(2);
            }
            write_jobs(jobs, next_rotation++);
            run_options o = base(0, true);
            run_summary sum;
            run_or_die(&o, &sum);
            remote[k - 1][r] = (double)sum.jobs_ok / sum.wall_s;
            run_summary_free(&sum);
        }
        /* A stopped agent deletes its record before it exits, so the
         * next count of records starts from agent 0 alone. */
        agents_stop(pids, 1, 1);
    }
    agents_stop(pids, 0, 0);

    printf("\n### Throughput, seeded random model, %zu jobs per run\n\n",
           jobs);
    printf("| agents | local jobs/s | NATS jobs/s | NATS / local | "
           "local vs 1 agent | NATS vs 1 agent |\n"
           "|---|---|---|---|---|---|\n");
    double l1 = median(local[0], runs), n1 = median(remote[0], runs);
    for (int k = 1; k <= 2; k++) {
        double l = median(local[k - 1], runs), n = median(remote[k - 1], runs);
        printf("| %d | %.1f | %.1f | %.2f | %.2fx | %.2fx |\n", k, l, n,
               n / l, l / l1, n / n1);
    }
}

int main(int argc, char **argv)
{
    const char *what = "all", *given = NULL, *roj = NULL;
    int n = 2000, runs = 5;
    size_t jobs = 2000, model_jobs = 400;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--nats") && i + 1 < argc)
            nopt.urls = argv[++i];
        else if (!strcmp(argv[i], "--roj") && i + 1 < argc)
            roj = argv[++i];
        else if (!strcmp(argv[i], "--n") && i + 1 < argc)
            n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--jobs") && i + 1 < argc)
            jobs = (size_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--model-jobs") && i + 1 < argc)
            model_jobs = (size_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--server-pid") && i + 1 < argc)
            server_pid = atol(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            given = argv[++i];
        else if (argv[i][0] != '-')
            what = argv[i];
        else
            goto usage;
    }
    if (!nopt.urls)
        goto usage;
    if (runs < 1 || runs > MAX_RUNS || n < RAW_BATCH || jobs < 2 ||
        model_jobs < 2) {
        fprintf(stderr, "bench_nats: --runs takes 1 to %d, --n at least "
                "%d, --jobs and --model-jobs at least 2\n", MAX_RUNS,
                RAW_BATCH);
        return 2;
    }
    bool all = !strcmp(what, "all");
    if ((all || !strcmp(what, "throughput")) && !roj) {
        fprintf(stderr, "bench_nats: the throughput test needs --roj "
                "PATH\n");
        return 2;
    }
    nopt.name = "bench_nats";
    nopt.no_env = true;
    roj_log_set(NULL, NULL, ROJ_LOG_WARN);
    setup(given);
    printf("bench_nats: %ld cores, %d runs per row, server %s, files in "
           "%s\n", sysconf(_SC_NPROCESSORS_ONLN), runs, nopt.urls, dir);
    if (all || !strcmp(what, "raw"))
        bench_raw(n, runs);
    if (all || !strcmp(what, "dispatch"))
        bench_dispatch(jobs, runs);
    if (all || !strcmp(what, "throughput"))
        bench_throughput(roj, model_jobs, runs);
    swarm_free(swarm);
    fclose(null_log);
    natsx_library_close(2000);
    return 0;

usage:
    fprintf(stderr, "usage: bench_nats --nats URL [raw|dispatch|throughput|"
            "all] [--roj PATH] [--n N] [--jobs N] [--model-jobs N] "
            "[--runs N] [--server-pid PID] [--dir DIR]\n");
    return 2;
}
