/*
 * roj run: runs a swarm file's pipeline over every job of an input file
 * on a pool of agent processes and writes one JSON line per job, in
 * input order (src/run/run.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli_data.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "nats/natsx.h"
#include "run/run.h"
#include "swarm/swarm.h"

static volatile int stop_flag;
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
    stop_flag = 1;
}

/* Parses a duration option into milliseconds; false when invalid. */
static bool duration_ms(const char *name, const char *text, uint32_t *ms)
{
    if (!text)
        return true;
    double s = cli_parse_duration(text);
    if (s < 0 || s * 1e3 > (double)UINT32_MAX) {
        cli_usage_error("run", "%s %s: expected a duration such as 500ms, "
                        "2s or 1m30s", name, text);
        return false;
    }
    *ms = (uint32_t)(s * 1e3 + 0.5);
    return true;
}

static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 &&
           sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Rejects an output or journal path that is one of the inputs. */
static bool check_paths(const char *swarm_path, const char *input,
                        const char *output, const char *journal)
{
    const char *ins[2] = {swarm_path, input};
    const char *in_names[2] = {"the swarm file", "--input"};
    const char *outs[2] = {output, journal};
    const char *out_names[2] = {"--output", "--journal"};
    for (int o = 0; o < 2; o++) {
        if (!outs[o] || !strcmp(outs[o], "-"))
            continue;
        for (int i = 0; i < 2; i++)
            if (same_file(outs[o], ins[i])) {
                cli_usage_error("run", "%s %s is %s; it would be "
                                "overwritten. Choose another file",
                                out_names[o], outs[o], in_names[i]);
                return false;
            }
    }
    if (journal && output && (same_file(journal, output) ||
                              !strcmp(journal, output))) {
        cli_usage_error("run", "--journal and --output are the same file "
                        "%s; give each its own", output);
        return false;
    }
    return true;
}

static long pick_pipeline(const swarm_file *swarm, const char *name)
{
    if (name) {
        long p = swarm_find_pipeline(swarm, name);
        if (p < 0) {
            fprintf(stderr, "roj run: --pipeline %s: %s has no such "
                    "pipeline; it has:", name, swarm->path);
            for (size_t i = 0; i < swarm->n_pipelines; i++)
                fprintf(stderr, " %s", swarm->pipelines[i].name);
            fputc('\n', stderr);
        }
        return p;
    }
    if (swarm->n_pipelines == 1)
        return 0;
    fprintf(stderr, "roj run: %s has %zu pipelines; choose one with "
            "--pipeline:", swarm->path, swarm->n_pipelines);
    for (size_t i = 0; i < swarm->n_pipelines; i++)
        fprintf(stderr, " %s", swarm->pipelines[i].name);
    fputc('\n', stderr);
    return -1;
}

int cmd_run(int argc, char **argv)
{
    const char *input = NULL, *output = NULL, *journal = NULL;
    const char *pipeline = NULL, *job_timeout = NULL, *heartbeat = NULL;
    const char *dead_after = NULL;
    const char *chaos_text[5] = {NULL, NULL, NULL, NULL, NULL};
    int32_t agents = 0, threads = 1, batch = 16, attempts = 3, window = 0;
    int32_t chaos_max = 0;
    int64_t chaos_seed = 1;
    bool hedge = false, quiet = false, lines = false, resume = false;
    const char *nats_urls = NULL;
    int32_t replicas = 1;
    natsx_options nopt = {0};
    cli_strings positional = {0};
    const cli_option options[] = {
        {"-i", "--input", CLI_STRING, &input, "FILE",
         "jobs to run: JSON Lines (one object per line) or CSV with a "
         "header (required)"},
        {"-o", "--output", CLI_STRING, &output, "FILE",
         "where the results go, one JSON line per job in input order; - "
         "for standard output (required)"},
        {NULL, "--journal", CLI_STRING, &journal, "FILE",
         "SQLite journal of the run; running again with the same journal "
         "resumes after a crash, kill or Ctrl-C (default: none)"},
        {"-p", "--pipeline", CLI_STRING, &pipeline, "NAME",
         "the pipeline to run (default: the only one in the file)"},
        {"-a", "--agents", CLI_INT, &agents, "N",
         "agent processes (default: one per core)"},
        {"-t", "--threads", CLI_INT, &threads, "N",
         "inference threads per agent (default: 1)"},
        {NULL, "--batch", CLI_INT, &batch, "N",
         "most subtasks of one skill sent to an agent at once "
         "(default: 16)"},
        {NULL, "--max-attempts", CLI_INT, &attempts, "N",
         "different agents a subtask may fail on before its job fails "
         "(default: 3)"},
        {NULL, "--job-timeout", CLI_STRING, &job_timeout, "DURATION",
         "a job not finished this long after it started fails, e.g. 30s "
         "(default: none)"},
        {NULL, "--heartbeat", CLI_STRING, &heartbeat, "DURATION",
         "interval of the agents' heartbeats (default: 100ms)"},
        {NULL, "--dead-after", CLI_STRING, &dead_after, "DURATION",
         "an agent silent this long is declared dead and replaced "
         "(default: 3 heartbeats)"},
        {NULL, "--window", CLI_INT, &window, "N",
         "jobs in flight at once (default: 64 per agent)"},
        {NULL, "--hedge", CLI_FLAG, &hedge, NULL,
         "also send a subtask to a second agent when it runs longer than "
         "its skill's 95th percentile; the first answer wins"},
        {NULL, "--kill-every", CLI_STRING, &chaos_text[0], "DURATION",
         "fault injection: SIGKILL a random agent this often"},
        {NULL, "--crash-every", CLI_STRING, &chaos_text[1], "DURATION",
         "fault injection: make a random agent segfault this often"},
        {NULL, "--hang-every", CLI_STRING, &chaos_text[2], "DURATION",
         "fault injection: make a random agent hang (SIGSTOP) this often"},
        {NULL, "--garbage-every", CLI_STRING, &chaos_text[3], "DURATION",
         "fault injection: make a random agent write random bytes this "
         "often"},
        {NULL, "--slow-every", CLI_STRING, &chaos_text[4], "DURATION",
         "fault injection: make a random agent 5 times slower this often"},
        {NULL, "--max-faults", CLI_INT, &chaos_max, "N",
         "stop injecting faults after N (default: no limit)"},
        {NULL, "--fault-seed", CLI_I64, &chaos_seed, "N",
         "seed of the fault injection's choices (default: 1)"},
        {NULL, "--nats", CLI_STRING, &nats_urls, "URL[,URL...]",
         "run on a NATS JetStream cluster: subtasks go to its work "
         "queues and roj agent processes on any machine answer them "
         "(default: local agent processes)"},
        {NULL, "--replicas", CLI_INT, &replicas, "N",
         "with --nats: copies of the stream and buckets, 1 or 3 "
         "(default: 1)"},
        {NULL, "--resume", CLI_FLAG, &resume, NULL,
         "continue an earlier run: with --nats from the cluster's "
         "results (any machine), else from --journal"},
        {NULL, "--user", CLI_STRING, &nopt.user, "NAME",
         "with --nats: user name (or ROJ_NATS_USER)"},
        {NULL, "--password", CLI_STRING, &nopt.password, "TEXT",
         "with --nats: password (or ROJ_NATS_PASSWORD, which keeps it out "
         "of the process list)"},
        {NULL, "--token", CLI_STRING, &nopt.token, "TEXT",
         "with --nats: authentication token (or ROJ_NATS_TOKEN)"},
        {NULL, "--creds", CLI_STRING, &nopt.creds_file, "FILE",
         "with --nats: credentials file with a user JWT and seed (or "
         "ROJ_NATS_CREDS)"},
        {NULL, "--nkey", CLI_STRING, &nopt.nkey_file, "FILE",
         "with --nats: NKey seed file (or ROJ_NATS_NKEY)"},
        {NULL, "--tls-ca", CLI_STRING, &nopt.tls_ca_file, "FILE",
         "with --nats: CA certificates for TLS (or ROJ_NATS_TLS_CA)"},
        {NULL, "--tls-cert", CLI_STRING, &nopt.tls_cert_file, "FILE",
         "with --nats: client certificate for TLS (or ROJ_NATS_TLS_CERT)"},
        {NULL, "--tls-key", CLI_STRING, &nopt.tls_key_file, "FILE",
         "with --nats: client key for TLS (or ROJ_NATS_TLS_KEY)"},
        {"-q", "--quiet", CLI_FLAG, &quiet, NULL,
         "no progress bar and no summary on stderr"},
        {NULL, "--progress-lines", CLI_FLAG, &lines, NULL,
         "print a progress line every 10 s instead of redrawing a bar"},
    };
    const cli_command cmd = {
        "run", "SWARM.yaml --input FILE --output FILE [options]",
        "Runs a pipeline of the swarm file on every job of the input.\n"
        "Each job is a JSON object (or CSV row) with the pipeline's input\n"
        "fields; each output line is {\"id\", \"ok\", \"result\" or "
        "\"error\"}.",
        options, sizeof options / sizeof options[0],
        "Agents are worker processes: one that crashes, hangs or writes\n"
        "garbage is replaced and its subtasks go to the others. With fixed\n"
        "seeds the output is the same whatever fails and however many\n"
        "agents run. Exit status: 0 when every job has its line (failed\n"
        "jobs included), 1 on errors, 130 when interrupted.",
        &positional};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc >= 0)
        return rc;
    rc = -1;
    run_options o = {0};
    if (positional.n != 1)
        rc = cli_usage_error("run", "expected one swarm file, got %zu "
                             "arguments", positional.n);
    else if (!input)
        rc = cli_usage_error("run", "--input FILE is required");
    else if (!output)
        rc = cli_usage_error("run", "--output FILE is required (- for "
                             "standard output)");
    else if (agents < 0 || agents > 256)
        rc = cli_usage_error("run", "--agents %d: use 1 to 256", agents);
    else if (threads < 1 || threads > 256)
        rc = cli_usage_error("run", "--threads %d: use 1 to 256", threads);
    else if (batch < 1 || batch > 1024)
        rc = cli_usage_error("run", "--batch %d: use 1 to 1024", batch);
    else if (attempts < 1 || attempts > 100)
        rc = cli_usage_error("run", "--max-attempts %d: use 1 to 100",
                             attempts);
    else if (window < 0 || chaos_max < 0)
        rc = cli_usage_error("run", "--window and --max-faults take a "
                             "count of 0 or more");
    else if (!duration_ms("--job-timeout", job_timeout, &o.job_timeout_ms) ||
             !duration_ms("--heartbeat", heartbeat, &o.heartbeat_ms) ||
             !duration_ms("--dead-after", dead_after, &o.dead_after_ms) ||
             !duration_ms("--kill-every", chaos_text[0], &o.chaos.kill_ms) ||
             !duration_ms("--crash-every", chaos_text[1],
                          &o.chaos.crash_ms) ||
             !duration_ms("--hang-every", chaos_text[2], &o.chaos.hang_ms) ||
             !duration_ms("--garbage-every", chaos_text[3],
                          &o.chaos.garbage_ms) ||
             !duration_ms("--slow-every", chaos_text[4], &o.chaos.slow_ms))
        rc = CLI_EXIT_USAGE;
    else if (heartbeat && o.heartbeat_ms < 10)
        rc = cli_usage_error("run", "--heartbeat %s: use 10ms or more",
                             heartbeat);
    else if (!check_paths(positional.items[0], input, output, journal))
        rc = CLI_EXIT_USAGE;
    else if (replicas < 1 || replicas > 5)
        rc = cli_usage_error("run", "--replicas %d: use 1 to 5", replicas);
    else if (nats_urls && (o.chaos.kill_ms || o.chaos.crash_ms ||
                           o.chaos.hang_ms || o.chaos.garbage_ms ||
                           o.chaos.slow_ms || hedge || agents))
        rc = cli_usage_error("run", "--nats runs no local agents: fault "
                             "injection, --hedge and --agents apply to "
                             "local agents only");
    else if (resume && !nats_urls && !journal)
        rc = cli_usage_error("run", "--resume needs the --journal of the "
                             "run to continue (or --nats)");
    else if (resume && !nats_urls && access(journal, F_OK) != 0)
        rc = cli_usage_error("run", "--resume: journal %s does not exist; "
                             "run without --resume to start", journal);
    if (rc >= 0) {
        cli_free_lists(&cmd);
        return rc;
    }

    swarm_file *swarm = NULL;
    char *problems = NULL;
    roj_status st = swarm_load(positional.items[0], &swarm, &problems);
    if (st != ROJ_OK) {
        fprintf(stderr, "%s", problems ? problems : roj_last_error());
        if (problems && problems[0] && problems[strlen(problems) - 1] != '\n')
            fputc('\n', stderr);
        fprintf(stderr, "roj run: %s has problems; fix them and run "
                "again\n", positional.items[0]);
        free(problems);
        cli_free_lists(&cmd);
        return CLI_EXIT_RUNTIME;
    }
    free(problems);
    long pipe_index = pick_pipeline(swarm, pipeline);
    if (pipe_index < 0) {
        swarm_free(swarm);
        cli_free_lists(&cmd);
        return CLI_EXIT_USAGE;
    }

    o.swarm = swarm;
    o.pipeline = (size_t)pipe_index;
    o.swarm_path = positional.items[0];
    o.input_path = input;
    o.output_path = output;
    o.journal_path = journal;
    o.n_agents = (uint32_t)agents;
    o.threads = threads;
    o.max_batch = (uint32_t)batch;
    o.max_attempts = (uint32_t)attempts;
    o.window = (uint32_t)window;
    o.hedge = hedge;
    o.chaos.max_events = (uint32_t)chaos_max;
    o.chaos.seed = (uint64_t)chaos_seed;
    o.progress = quiet ? 0 : lines ? 2 : 1;
    o.stop = &stop_flag;
    if (nats_urls) {
        nopt.urls = nats_urls;
        nopt.name = "roj run";
        o.nats = &nopt;
        o.nats_replicas = replicas;
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    run_summary sum;
    st = run_swarm(&o, &sum);
    if (!quiet && (st == ROJ_OK || st == ROJ_ERR_ABORTED)) {
        fputc('\n', stderr);
        run_summary_print(&sum, swarm, stderr);
    }
    run_summary_free(&sum);
    swarm_free(swarm);
    cli_free_lists(&cmd);
    if (nats_urls)
        natsx_library_close(2000);
    if (st == ROJ_ERR_ABORTED)
        return 128 + (stop_signal ? stop_signal : SIGINT);
    if (st != ROJ_OK)
        return cli_runtime_error("run", "the run failed");
    return cli_finish_stdout("run", CLI_EXIT_OK);
}
