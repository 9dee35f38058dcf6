/*
 * roj demo: a helpdesk swarm built end to end from data the demo writes
 * itself, with nothing to download.
 *
 * 1. Generates support tickets with a fixed seed (demo/tickets.h): a
 *    labeled training set, a labeled test set and the test texts alone.
 * 2. Trains three specialists with the library of `roj train`: a
 *    category classifier, an urgency classifier and an extractor of
 *    order numbers and product names.
 * 3. Writes a swarm file over them and checks that it loads.
 * 4. Runs the swarm on the test texts with a pool of agent processes and
 *    a journal, killing an agent every second (--kill-every) to show
 *    that the runner recovers.
 * 5. Scores the results against the test labels and prints the
 *    `roj run` command line that repeats the run.
 *
 * Everything is cached in ${XDG_CACHE_HOME:-~/.cache}/roj/demo/, so a
 * second run skips generation and training. `roj demo --engine` is the
 * older demo of the inference engine alone (demo_engine.c).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_data.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/demo.h"
#include "core/error.h"
#include "run/run.h"

static volatile int stop_flag;
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
    stop_flag = 1;
}

/* Command-line settings beyond demo_config. */
typedef struct demo_options {
    int32_t n_agents;
    double kill_every_s;  /* 0: no fault injection */
    bool prepare_only;
} demo_options;

const char *demo_default_cache_dir(char *buf, size_t cap)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    if (xdg && *xdg)
        snprintf(buf, cap, "%s/roj/demo", xdg);
    else
        snprintf(buf, cap, "%s/.cache/roj/demo", home && *home ? home : ".");
    return buf;
}

/* Removes path if it exists; false with errno set when that fails. */
static bool remove_if_present(const char *path)
{
    return unlink(path) == 0 || errno == ENOENT;
}

/* Runs the swarm on the input tickets into p->output, with a fresh
 * journal, and fills *summary (run_summary_free). */
static roj_status demo_run(const demo_options *d, const demo_paths *p,
                           const swarm_file *swarm, run_summary *summary)
{
    const char *suffixes[] = {"", "-wal", "-shm"};
    const long pipeline = swarm_find_pipeline(swarm, DEMO_PIPELINE);
    run_options ro = {0};

    /* Each demo run starts over: a journal of an earlier run would
     * resume it instead of showing the swarm at work. */
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char path[PATH_MAX + 8];
        snprintf(path, sizeof path, "%s%s", p->journal, suffixes[i]);
        if (!remove_if_present(path))
            return roj_error(ROJ_ERR_IO, "cannot remove %s: %s", path,
                             strerror(errno));
    }
    if (!remove_if_present(p->output))
        return roj_error(ROJ_ERR_IO, "cannot remove %s: %s", p->output,
                         strerror(errno));
    if (pipeline < 0)
        return roj_error(ROJ_ERR_INTERNAL, "the swarm file %s has no "
                         "pipeline %s", p->swarm, DEMO_PIPELINE);

    ro.swarm = swarm;
    ro.pipeline = (size_t)pipeline;
    ro.swarm_path = p->swarm;
    ro.input_path = p->input;
    ro.output_path = p->output;
    ro.journal_path = p->journal;
    ro.n_agents = (uint32_t)d->n_agents;
    ro.threads = 1;
    ro.chaos.kill_ms = (uint32_t)(d->kill_every_s * 1000.0 + 0.5);
    ro.chaos.seed = 1;
    ro.progress = 1;
    ro.stop = &stop_flag;
    fprintf(stderr, "\nroj demo: running the swarm on %s with %d agents",
            p->input, (int)d->n_agents);
    if (ro.chaos.kill_ms)
        fprintf(stderr, ", killing one every %.1f s", d->kill_every_s);
    fprintf(stderr, "\n");
    return run_swarm(&ro, summary);
}

/* Prints the command that repeats the run without the demo.
 * NOTE: written before the roj run command existed; the option names
 * follow run_options and must be checked against it. */
static void print_rerun(const demo_options *d, const demo_paths *p)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);

    if (n > 0)
        exe[n] = '\0';
    else
        snprintf(exe, sizeof exe, "roj");
    printf("\nThe same run with roj run (add --journal FILE to resume "
           "after a stop):\n\n  %s run %s --pipeline %s \\\n      --input "
           "%s \\\n      --output results.jsonl --agents %d\n", exe,
           p->swarm, DEMO_PIPELINE, p->input, (int)d->n_agents);
}

/* Steps 1 to 5 (see the top of this file). */
static int demo_main(const demo_config *cfg, const demo_options *d)
{
    demo_paths p;
    swarm_file *swarm = NULL;
    run_summary summary = {0};
    demo_score score;
    roj_status st;
    int rc = CLI_EXIT_RUNTIME;

    memset(&p, 0, sizeof p);
    if ((st = demo_data_prepare(cfg, &p)))
        return cli_runtime_error("demo", "cannot write the tickets");
    if ((st = demo_train_all(cfg, &p)))
        goto check_stop;
    if ((st = demo_swarm_write(cfg, &p, &swarm)))
        return cli_runtime_error("demo", "swarm file");
    snprintf(p.output, sizeof p.output, "%s/results.jsonl", cfg->cache_dir);
    snprintf(p.journal, sizeof p.journal, "%s/run.journal", cfg->cache_dir);
    if (d->prepare_only) {
        print_rerun(d, &p);
        rc = CLI_EXIT_OK;
        goto free_swarm;
    }

    st = demo_run(d, &p, swarm, &summary);
    if (st)
        goto check_stop;
    printf("\n");
    run_summary_print(&summary, swarm, stdout);
    if ((st = demo_score_run(p.output, p.test, &score))) {
        rc = cli_runtime_error("demo", "cannot score the run");
        goto free_summary;
    }
    demo_score_print(&score);
    print_rerun(d, &p);
    rc = cli_finish_stdout("demo", CLI_EXIT_OK);
    goto free_summary;

check_stop:
    /* Training resumes from its checkpoint, but the next demo starts the
     * swarm run over (demo_run). */
    if (st == ROJ_ERR_ABORTED) {
        fprintf(stderr, "\nroj demo: stopped: %s\n%s\n", roj_last_error(),
                swarm ? "The next roj demo runs the swarm again from the "
                        "start."
                      : "The next roj demo continues the training.");
        rc = 128 + (stop_signal ? stop_signal : SIGINT);
    } else {
        rc = cli_runtime_error("demo", swarm ? "the swarm run failed"
                                             : "training failed");
    }
free_summary:
    run_summary_free(&summary);
free_swarm:
    swarm_free(swarm);
    return rc;
}

/* Returns whether argv contains --engine, and removes it from argv. */
static bool take_engine_flag(int *argc, char **argv)
{
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--engine") != 0)
            continue;
        memmove(&argv[i], &argv[i + 1],
                (size_t)(*argc - i) * sizeof argv[0]);
        (*argc)--;
        return true;
    }
    return false;
}

int cmd_demo(int argc, char **argv)
{
    demo_config cfg = {.seed = 1, .n_train = 3000, .n_test = 500};
    demo_options d = {.n_agents = 2};
    /* NOTE: an estimate. The 500 default tickets took 5 s on one thread
     * in a sequential stand-in for the runner, so two agents should see
     * a few kills at 1 s. */
    const char *kill_every = "1s";
    int64_t seed = 1;
    bool no_faults = false, engine = false, verbose = false;
    const cli_option opts[] = {
        {NULL, "--cache-dir", CLI_STRING, &cfg.cache_dir, "DIR",
         "folder of the tickets, models, swarm file and results (default "
         "${XDG_CACHE_HOME:-~/.cache}/roj/demo)"},
        {NULL, "--agents", CLI_INT, &d.n_agents, "N",
         "agent processes that run the swarm, 1 .. 64 (default 2)"},
        {NULL, "--kill-every", CLI_STRING, &kill_every, "TIME",
         "fault injection: kill an agent at this interval, e.g. 2s or "
         "500ms (default 1s)"},
        {NULL, "--no-faults", CLI_FLAG, &no_faults, NULL,
         "inject no faults"},
        {NULL, "--train", CLI_INT, &cfg.n_train, "N",
         "training tickets, 50 .. 1000000 (default 3000)"},
        {NULL, "--test", CLI_INT, &cfg.n_test, "N",
         "test tickets, the swarm's input, 1 .. 1000000 (default 500)"},
        {"-s", "--seed", CLI_I64, &seed, "N",
         "seed of the ticket generator (default 1)"},
        {NULL, "--steps", CLI_I64, &cfg.steps, "N",
         "optimizer steps of every specialist (default: 300 for the "
         "category, 400 for urgency, 1200 for the extractor)"},
        {"-t", "--threads", CLI_INT, &cfg.n_threads, "N",
         "training threads; 0 = one per core, up to 8 (default 0)"},
        {NULL, "--fresh", CLI_FLAG, &cfg.fresh, NULL,
         "generate and train again even if cached"},
        {NULL, "--prepare-only", CLI_FLAG, &d.prepare_only, NULL,
         "stop after writing the swarm file and print the roj run "
         "command"},
        {NULL, "--engine", CLI_FLAG, &engine, NULL,
         "run the inference engine demo instead (synthetic model, "
         "quantize, generate); see roj demo --engine --help"},
        {"-v", "--verbose", CLI_FLAG, &verbose, NULL,
         "print library logs on stderr"},
    };
    const cli_command cmd = {
        .name = "demo",
        .usage = "[options]",
        .summary = "Builds a helpdesk swarm from scratch and runs it: "
                   "generates support tickets,\ntrains three specialists "
                   "on them, writes a swarm file, runs it on the test\n"
                   "tickets with agents that are killed on purpose, and "
                   "scores the results.",
        .options = opts,
        .n_options = sizeof opts / sizeof opts[0],
        .epilog = "Progress goes to stderr, the summary and the scores to "
                  "stdout. Nothing is\ndownloaded. A second run reuses "
                  "the cached tickets and models.",
    };
    char cache[PATH_MAX];

    if (take_engine_flag(&argc, argv))
        return demo_engine_main(argc, argv);
    int rc = cli_parse(&cmd, argc, argv);
    if (rc >= 0)
        return rc;
    (void)engine; /* taken out of argv above; listed for --help */

    /* Checks, each naming its option. */
    if (d.n_agents < 1 || d.n_agents > 64)
        return cli_usage_error("demo", "--agents must be 1 .. 64, not %d",
                               d.n_agents);
    if (cfg.n_train < 50 || cfg.n_train > 1000000)
        return cli_usage_error("demo", "--train must be 50 .. 1000000, not "
                               "%d", cfg.n_train);
    if (cfg.n_test < 1 || cfg.n_test > 1000000)
        return cli_usage_error("demo", "--test must be 1 .. 1000000, not %d",
                               cfg.n_test);
    if (seed < 0)
        return cli_usage_error("demo", "--seed must be >= 0");
    if (cfg.steps < 0)
        return cli_usage_error("demo", "--steps must be >= 1 (0: the "
                               "defaults)");
    if (cfg.n_threads < 0 || cfg.n_threads > 256)
        return cli_usage_error("demo", "--threads must be 0 .. 256");
    d.kill_every_s = cli_parse_duration(kill_every);
    if (!(d.kill_every_s >= 0.001 && d.kill_every_s <= 3600))
        return cli_usage_error("demo", "--kill-every %s: use a time from "
                               "1ms to 1h, such as 2s", kill_every);
    if (no_faults)
        d.kill_every_s = 0;
    cfg.seed = (uint64_t)seed;

    cli_log_setup(verbose);
    if (!cfg.cache_dir)
        cfg.cache_dir = demo_default_cache_dir(cache, sizeof cache);
    if (!demo_make_dirs(cfg.cache_dir)) {
        fprintf(stderr, "roj demo: cannot create the cache folder %s: %s\n",
                cfg.cache_dir, strerror(errno));
        return CLI_EXIT_RUNTIME;
    }
    cfg.stop = &stop_flag;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return demo_main(&cfg, &d);
}
