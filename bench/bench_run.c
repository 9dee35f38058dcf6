/*
 * Benchmarks of the swarm runner (roj run):
 *
 *   overhead  a no-op skill: wall time and runner CPU time per subtask,
 *             so what is measured is the runner, the agents' framing and
 *             the socket round trips, not a model
 *   scaling   jobs/s of a choice skill on a seeded random model with 1..N
 *             agents (one inference thread each) on independent jobs
 *   recovery  agents killed (SIGKILL) or hung (SIGSTOP) every interval:
 *             time from the loss of an agent to its subtasks being sent
 *             to another one, next to the heartbeat interval
 *
 * Each configuration runs `runs` times; the table gives medians. Usage:
 *   bench_run [overhead|scaling|recovery|all] [--jobs N] [--runs N]
 *             [--agents N] [--dir DIR]
 * DIR (default: a new folder under /tmp) receives the model, the swarm
 * file, the inputs and the outputs.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/synth.h"
#include "run/run.h"
#include "swarm/swarm.h"

static const char SWARM_YAML[] =
    "version: 1\n"
    "name: bench\n"
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
static swarm_file *swarm;
static FILE *null_log;

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

static double self_cpu_s(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 +
           (double)u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void write_jobs(size_t n)
{
    static const char *const words[] = {
        "my", "invoice", "is", "wrong", "cannot", "log", "in", "parcel",
        "late", "again", "please", "help", "refund", "password", "card",
        "blocked"};
    FILE *f = fopen(input_path, "w");
    if (!f) {
        perror(input_path);
        exit(1);
    }
    uint64_t x = 99;
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "{\"text\": \"");
        for (int w = 0; w < 12; w++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            fprintf(f, "%s%s", w ? " " : "", words[(x >> 33) % 16]);
        }
        fprintf(f, "\"}\n");
    }
    fclose(f);
}

static void setup(const char *given)
{
    if (given) {
        snprintf(dir, sizeof dir, "%s", given);
        mkdir(dir, 0755);
    } else {
        snprintf(dir, sizeof dir, "/tmp/roj-bench-run-XXXXXX");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            exit(1);
        }
    }
    char model[700];
    snprintf(model, sizeof model, "%s/model.gguf", dir);
    /* 4 layers of width 256: about 3 M parameters with the built-in
     * byte-level vocabulary, a few ms per prompt on one core. */
    synth_shape s = {
        .name = "bench-run", .n_layer = 4, .n_embd = 256, .n_head = 4,
        .n_head_kv = 2, .n_ff = 768, .n_ctx = 512, .n_vocab = 0,
        .rope_freq_base = 10000.0f, .rms_eps = 1e-5f, .tied_output = true,
        .seed = SYNTH_DEFAULT_SEED, .vocab_path = NULL,
    };
    if (synth_write_model(model, &s) != ROJ_OK) {
        fprintf(stderr, "bench_run: %s\n", roj_last_error());
        exit(1);
    }
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
    snprintf(input_path, sizeof input_path, "%s/jobs.jsonl", dir);
    snprintf(output_path, sizeof output_path, "%s/out.jsonl", dir);
    null_log = fopen("/dev/null", "w");
}

static run_options base(uint32_t agents)
{
    run_options o = {0};
    o.swarm = swarm;
    o.swarm_path = swarm_path;
    o.input_path = input_path;
    o.output_path = output_path;
    o.n_agents = agents;
    o.threads = 1;
    o.log = null_log;
    return o;
}

static void run_or_die(const run_options *o, run_summary *sum)
{
    if (run_swarm(o, sum) != ROJ_OK) {
        fprintf(stderr, "bench_run: %s\n", roj_last_error());
        exit(1);
    }
}

/* ---- the benchmarks ---- */

static void bench_overhead(size_t jobs, int runs)
{
    write_jobs(jobs);
    printf("\n### Overhead per subtask, no-op skill, %zu jobs\n\n", jobs);
    printf("| agents | batch | wall us/subtask | runner CPU us/subtask | "
           "runner + agents CPU us/subtask | runner send us/subtask (p50) "
           "|\n|---|---|---|---|---|---|\n");
    const uint32_t configs[][2] = {{1, 1}, {1, 16}, {2, 16}};
    for (size_t c = 0; c < 3; c++) {
        double wall[32], cpu[32], total[32], send[32];
        for (int r = 0; r < runs; r++) {
            run_options o = base(configs[c][0]);
            o.max_batch = configs[c][1];
            o.executor = &noop;
            run_summary sum;
            double c0 = self_cpu_s();
            run_or_die(&o, &sum);
            double n = (double)sum.subtasks;
            wall[r] = sum.wall_s * 1e6 / n;
            cpu[r] = (self_cpu_s() - c0) * 1e6 / n;
            total[r] = sum.cpu_s * 1e6 / n;
            send[r] = sum.sched_us_p50;
            run_summary_free(&sum);
        }
        printf("| %u | %u | %.1f | %.1f | %.1f | %.2f |\n", configs[c][0],
               configs[c][1], median(wall, runs), median(cpu, runs),
               median(total, runs), median(send, runs));
    }
}

static void bench_scaling(size_t jobs, int runs, uint32_t max_agents)
{
    write_jobs(jobs);
    printf("\n### Throughput on independent jobs, %zu jobs\n\n", jobs);
    printf("| agents | jobs/s (median) | vs 1 agent | CPU s/job |\n"
           "|---|---|---|---|\n");
    double one = 0;
    for (uint32_t a = 1; a <= max_agents; a++) {
        double rate[32], cpu[32];
        for (int r = 0; r < runs; r++) {
            run_options o = base(a);
            run_summary sum;
            run_or_die(&o, &sum);
            rate[r] = (double)sum.jobs_ok / sum.wall_s;
            cpu[r] = sum.cpu_s / (double)sum.jobs_ok;
            run_summary_free(&sum);
        }
        double m = median(rate, runs);
        if (a == 1)
            one = m;
        printf("| %u | %.1f | %.2fx | %.4f |\n", a, m, m / one,
               median(cpu, runs));
    }
}

static void bench_recovery(size_t jobs, int runs, uint32_t agents)
{
    write_jobs(jobs);
    printf("\n### Recovery, %u agents, heartbeat 100 ms, %zu jobs\n\n",
           agents, jobs);
    printf("| fault | faults | agents lost | loss to resend p50 ms | "
           "max ms | identical output |\n|---|---|---|---|---|---|\n");
    char ref_path[800];
    snprintf(ref_path, sizeof ref_path, "%s/ref.jsonl", dir);
    run_options ro = base(1);
    ro.output_path = ref_path;
    run_summary rs;
    run_or_die(&ro, &rs);
    run_summary_free(&rs);
    for (int kind = 0; kind < 2; kind++) {
        double p50[32], mx[32], faults[32], lost[32];
        bool same = true;
        for (int r = 0; r < runs; r++) {
            run_options o = base(agents);
            o.heartbeat_ms = 100;
            if (kind == 0)
                o.chaos.kill_ms = 300;
            else
                o.chaos.hang_ms = 500;
            o.chaos.seed = (uint64_t)r + 1;
            run_summary sum;
            run_or_die(&o, &sum);
            p50[r] = sum.recover_ms_p50;
            mx[r] = sum.recover_ms_max;
            faults[r] = (double)sum.faults_injected;
            lost[r] = (double)sum.deaths;
            run_summary_free(&sum);
            char cmd[2000];
            snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", ref_path,
                     output_path);
            same = same && system(cmd) == 0;
        }
        printf("| %s | %.0f | %.0f | %.1f | %.1f | %s |\n",
               kind == 0 ? "SIGKILL every 300 ms" : "hang every 500 ms",
               median(faults, runs), median(lost, runs), median(p50, runs),
               median(mx, runs), same ? "yes" : "NO");
    }
}

int main(int argc, char **argv)
{
    const char *what = "all", *given = NULL;
    size_t jobs = 0;
    int runs = 3;
    uint32_t agents = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--jobs") && i + 1 < argc)
            jobs = (size_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--agents") && i + 1 < argc)
            agents = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            given = argv[++i];
        else if (argv[i][0] != '-')
            what = argv[i];
        else {
            fprintf(stderr, "usage: bench_run [overhead|scaling|recovery|"
                    "all] [--jobs N] [--runs N] [--agents N] [--dir DIR]\n");
            return 2;
        }
    }
    if (runs < 1 || runs > 32) {
        fprintf(stderr, "bench_run: --runs takes 1 to 32\n");
        return 2;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (agents == 0)
        agents = cores > 0 ? (uint32_t)cores : 1;
    setup(given);
    printf("bench_run: %ld cores, %d runs per row, files in %s\n", cores,
           runs, dir);
    bool all = !strcmp(what, "all");
    if (all || !strcmp(what, "overhead"))
        bench_overhead(jobs ? jobs : 20000, runs);
    if (all || !strcmp(what, "scaling"))
        bench_scaling(jobs ? jobs : 1500, runs, agents);
    if (all || !strcmp(what, "recovery"))
        bench_recovery(jobs ? jobs : 3000, runs, agents);
    swarm_free(swarm);
    return 0;
}
