/*
 * roj agent: serves a swarm's skills on NATS JetStream until SIGTERM or
 * SIGINT (src/run/nats_agent.h).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "core/sha256.h"
#include "run/nats_agent.h"
#include "run/nats_models.h"
#include "swarm/swarm.h"

static volatile int stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* Splits every --skills value at commas into *out (pointers into a new
 * buffer *buf). Returns the count, or -1 when out of memory. */
static long skills_split(const cli_strings *in, char **buf,
                         const char ***out)
{
    size_t total = 0, max = 0;
    for (size_t i = 0; i < in->n; i++) {
        total += strlen(in->items[i]) + 1;
        max += strlen(in->items[i]) / 2 + 1;
    }
    *buf = malloc(total ? total : 1);
    *out = calloc(max ? max : 1, sizeof **out);
    if (!*buf || !*out)
        return -1;
    char *p = *buf;
    long n = 0;
    for (size_t i = 0; i < in->n; i++) {
        strcpy(p, in->items[i]);
        for (char *tok = strtok(p, ","); tok; tok = strtok(NULL, ","))
            (*out)[n++] = tok;
        p += strlen(in->items[i]) + 1;
    }
    return n;
}

/* Fetches the model files that the swarm file names and that are
 * missing here, before the full load, which needs every file. Returns
 * false after printing the error. */
static bool models_fetch(const char *path, const natsx_options *nats)
{
    cli_progress progress = {0};
    size_t fetched = 0;
    if (nmodels_fetch_missing(path, nats, cli_models_progress, &progress,
                              &fetched) != ROJ_OK) {
        fprintf(stderr, "roj agent: %s\n", roj_last_error());
        return false;
    }
    if (fetched > 0)
        fprintf(stderr, "roj agent: fetched %zu missing file%s from the "
                "cluster, each with the sha256 that the swarm file gives\n",
                fetched, fetched == 1 ? "" : "s");
    return true;
}

int cmd_agent(int argc, char **argv)
{
    const char *urls = NULL, *name = NULL;
    int32_t threads = 1, batch = 16, replicas = 1;
    bool verbose = false;
    cli_strings skills = {0}, positional = {0};
    natsx_options nats = {0};
    cli_option options[7 + CLI_NATS_AUTH_OPTIONS] = {
        {NULL, "--nats", CLI_STRING, &urls, "URL[,URL...]",
         "NATS servers to connect to (required)"},
        {NULL, "--skills", CLI_STRINGS, &skills, "A,B",
         "skills to serve, comma-separated (default: every skill)"},
        {NULL, "--name", CLI_STRING, &name, "NAME",
         "the agent's name in the agents bucket (default: HOST-PID)"},
        {"-t", "--threads", CLI_INT, &threads, "N",
         "inference threads (default: 1)"},
        {NULL, "--batch", CLI_INT, &batch, "N",
         "most subtasks fetched and run at once (default: 16)"},
        {NULL, "--replicas", CLI_INT, &replicas, "N",
         "copies of the stream and buckets when this agent creates them "
         "(default: 1)"},
        {"-v", "--verbose", CLI_FLAG, &verbose, NULL,
         "log every subtask outcome"},
    };
    cli_nats_auth_options(&nats, options + 7);
    const cli_command cmd = {
        "agent", "SWARM.yaml --nats URL[,URL...] [options]",
        "Serves the swarm's skills on NATS JetStream: pulls subtasks that\n"
        "`roj run --nats` publishes, runs them and records the results.",
        options, sizeof options / sizeof options[0],
        "The agent stops on SIGTERM or SIGINT after answering the subtasks\n"
        "it holds. Exit status: 0 after a stop, 1 when it cannot start,\n"
        "when the cluster runs another version of the swarm file, or on\n"
        "errors; 2 on bad usage.",
        &positional};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc >= 0)
        return rc;
    rc = -1;
    if (positional.n != 1)
        rc = cli_usage_error("agent", "expected one swarm file, got %zu "
                             "arguments", positional.n);
    else if (!urls)
        rc = cli_usage_error("agent", "--nats URL is required");
    else if (threads < 1 || threads > 256)
        rc = cli_usage_error("agent", "--threads %d: use 1 to 256",
                             threads);
    else if (batch < 1 || batch > 1024)
        rc = cli_usage_error("agent", "--batch %d: use 1 to 1024", batch);
    else if (replicas < 1 || replicas > 5)
        rc = cli_usage_error("agent", "--replicas %d: use 1 to 5",
                             replicas);
    char *skill_buf = NULL;
    const char **skill_list = NULL;
    long n_skills = 0;
    if (rc < 0 && skills.n &&
        (n_skills = skills_split(&skills, &skill_buf, &skill_list)) <= 0)
        rc = n_skills < 0 ? cli_runtime_error("agent", "--skills")
                          : cli_usage_error("agent", "--skills names no "
                                            "skill");
    if (rc >= 0) {
        free(skill_buf);
        free(skill_list);
        cli_free_lists(&cmd);
        return rc;
    }
    roj_log_set(NULL, NULL, verbose ? ROJ_LOG_DEBUG : ROJ_LOG_INFO);

    const char *path = positional.items[0];
    swarm_file *swarm = NULL;
    char *problems = NULL;
    char sha[SHA256_HEX_SIZE];

    nats.urls = urls;
    roj_status st = ROJ_OK;
    if (!models_fetch(path, &nats)) {
        rc = CLI_EXIT_RUNTIME;
    } else if ((st = swarm_load(path, &swarm, &problems)) != ROJ_OK) {
        fprintf(stderr, "%s", problems ? problems : roj_last_error());
        if (problems && problems[0] && problems[strlen(problems) - 1] != '\n')
            fputc('\n', stderr);
        fprintf(stderr, "roj agent: %s has problems; fix them and start "
                "again\n", path);
        rc = CLI_EXIT_RUNTIME;
    } else if ((st = sha256_file(path, sha)) != ROJ_OK) {
        rc = cli_runtime_error("agent", "cannot hash the swarm file");
    }
    free(problems);

    if (rc < 0) {
        struct sigaction sa = {.sa_handler = on_signal};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);

        nagent_config cfg = {
            .swarm = swarm, .swarm_path = path, .swarm_sha256 = sha,
            .nats = nats, .skills = skill_list, .n_skills = (size_t)n_skills,
            .name = name, .threads = threads, .batch = (uint32_t)batch,
            .replicas = replicas, .stop = &stop_flag};
        nagent_stats stats;
        st = nagent_run(&cfg, &stats);
        if (st == ROJ_OK) {
            fprintf(stderr, "roj agent: stopped after %llu results, %llu "
                    "failures, %llu skipped\n",
                    (unsigned long long)stats.done,
                    (unsigned long long)stats.failed,
                    (unsigned long long)stats.skipped);
            rc = CLI_EXIT_OK;
        } else {
            rc = cli_runtime_error("agent", "stopped");
        }
        natsx_library_close(2000);
    }
    swarm_free(swarm);
    free(skill_buf);
    free(skill_list);
    cli_free_lists(&cmd);
    return rc;
}
