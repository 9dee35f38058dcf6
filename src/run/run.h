/*
 * The swarm runner behind `roj run`: reads jobs from a JSONL or CSV file,
 * plans each with its pipeline (plan.h), runs the subtasks on a pool of
 * agent processes (agent.h) and writes one output line per job, in input
 * order, exactly once.
 *
 * One thread, one poll loop. The runner forks the agents, watches their
 * heartbeats and exit statuses, restarts dead ones with backoff and hands
 * their subtasks to others. Subtasks wait in one queue per skill and go
 * out in batches of one skill to the agent with the lowest expected wait
 * (tasks in flight x moving average of its latency, weighted by its
 * failure rate). A subtask that failed on max_attempts different agents
 * fails its job with every error; subtasks of a batch whose agent died
 * are retried one at a time, so one poisonous input cannot take
 * innocent neighbours with it. With a journal (journal.h) a stopped run
 * resumes where it stopped.
 */
#ifndef ROJ_RUN_RUN_H
#define ROJ_RUN_RUN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "run/agent.h"
#include "swarm/swarm.h"

/* Fault injection: each kind fires every interval (0: never) on a random
 * live agent, from a generator seeded with seed. */
typedef struct run_chaos {
    uint32_t kill_ms;    /* SIGKILL from the runner */
    uint32_t crash_ms;   /* the agent raises SIGSEGV */
    uint32_t hang_ms;    /* the agent stops (no heartbeats, no results) */
    uint32_t garbage_ms; /* the agent writes random bytes */
    uint32_t slow_ms;    /* the agent becomes 5 times slower */
    uint32_t max_events; /* stop after this many faults (0: no limit) */
    uint64_t seed;
} run_chaos;

struct natsx_options;

typedef struct run_options {
    const swarm_file *swarm;
    size_t pipeline;
    const char *swarm_path;   /* for the journal's digest */
    const char *input_path;
    const char *output_path;  /* "-": standard output */
    const char *journal_path; /* NULL: no journal */
    uint32_t n_agents;        /* 0: one per core */
    int32_t threads;          /* inference threads per agent; 0: 1 */
    uint32_t max_batch;       /* subtasks per batch; 0: 16 */
    uint32_t heartbeat_ms;    /* 0: 100 */
    uint32_t dead_after_ms;   /* no heartbeat for this long: dead; 0: 3
                                 heartbeat intervals */
    uint32_t max_attempts;    /* different agents per subtask; 0: 3 */
    uint32_t job_timeout_ms;  /* 0: none */
    uint32_t window;          /* jobs in flight; 0: 64 per agent */
    bool hedge;               /* resend subtasks slower than the skill's p95 */
    run_chaos chaos;
    int progress;             /* 0: none, 1: auto (tty redraws), 2: lines */
    FILE *log;                /* progress and events; NULL: stderr */
    const agent_executor *executor; /* NULL: the models */
    volatile int *stop;       /* set by a signal handler: stop soon */
    /* NATS JetStream instead of local agents (nats_proto.h): subtasks
     * go to the cluster's work queues and `roj agent` processes anywhere
     * run them. NULL: local agent processes. */
    const struct natsx_options *nats;
    int nats_replicas;        /* copies of the stream and buckets; 0: 1 */
} run_options;

/* Latency of one skill's subtasks, in milliseconds, measured by the
 * runner from sending a batch to receiving its results. */
typedef struct run_skill_stats {
    uint64_t n;
    double p50, p95, p99;
    double exec_ms; /* total time the agents spent computing */
} run_skill_stats;

typedef struct run_summary {
    uint64_t jobs_total;      /* in the input */
    uint64_t jobs_ok, jobs_failed;
    uint64_t jobs_resumed;    /* already in the output from an earlier run */
    uint64_t subtasks;        /* computed in this run */
    uint64_t subtasks_cached; /* taken from the journal */
    uint64_t batches;
    double wall_s;
    double cpu_s;             /* runner + agents, user + system */
    double energy_j;
    bool energy_measured;     /* RAPL; false: cpu_s x watts per core */
    double watts_per_core;    /* used for the estimate */
    uint64_t agents_started;
    uint64_t deaths;          /* agents that exited or were killed */
    uint64_t hangs;           /* missed heartbeats */
    uint64_t garbage;         /* protocol errors */
    uint64_t timeouts;        /* subtasks past their skill's timeout */
    uint64_t faults_injected;
    uint64_t reassigned;      /* subtasks sent again after a failure */
    uint64_t retries;         /* failed attempts that counted */
    uint64_t hedged, hedge_wins;
    double recover_ms_p50, recover_ms_max; /* agent lost to its subtasks
                                               sent to another agent */
    double sched_us_p50;      /* runner time per subtask */
    run_skill_stats *skills;  /* swarm->n_skills entries (run_summary_free) */
    size_t n_skills;
    bool interrupted;
    bool remote;              /* NATS mode: cpu_s is this process only */
    char run_id[17];          /* NATS mode: the run's id */
    uint64_t agents_seen;     /* NATS mode: agents registered */
} run_summary;

/* Runs the whole input. ROJ_OK when every job has its output line, even
 * if some jobs failed (their lines say why); ROJ_ERR_ABORTED when *stop
 * was set (the journal, if any, holds what finished); another status for
 * errors that stop the run (bad input file, output not writable, no
 * agent could start: the message says which). */
roj_status run_swarm(const run_options *opt, run_summary *summary);

void run_summary_free(run_summary *s);

/* Prints the summary as a table on f. */
void run_summary_print(const run_summary *s, const swarm_file *swarm,
                       FILE *f);

#endif
