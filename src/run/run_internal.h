/* Internals of the runner (run.h), shared by src/run/run_*.c. */
#ifndef ROJ_RUN_RUN_INTERNAL_H
#define ROJ_RUN_RUN_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "run/journal.h"
#include "run/plan.h"
#include "run/run.h"
#include "run/run_input.h"
#include "run/wire.h"

/* Batches an agent holds at once: one computing, one waiting, so it
 * never idles for a round trip. */
#define RUN_AGENT_DEPTH 2
#define RUN_MAX_AGENTS 256

typedef enum sub_state {
    SUB_QUEUED,
    SUB_RUNNING,
    SUB_DONE,
    SUB_FAILED
} sub_state;

struct job_slot;

/* A subtask: one call of a skill. */
typedef struct sub {
    struct job_slot *job;  /* NULL once the job is gone (orphan) */
    char *key;
    size_t skill;
    char **names, **values;
    size_t n_fields;
    uint64_t seed;
    sub_state state;
    bool queued;           /* in its skill's queue */
    bool solo;             /* send alone: its last batch's agent died */
    bool hedged;
    uint64_t running_gen;  /* the agent generation of its first attempt */
    uint32_t attempts;     /* failed attempts that count */
    uint32_t running;      /* attempts in flight */
    uint64_t *bad;         /* agent generations it failed on */
    size_t n_bad;
    char *errors;          /* every failed attempt, "; "-separated */
    double failed_at;      /* when its agent failed (recovery time), or 0 */
    double queued_at;
    struct sub *qnext;
} sub;

/* One subtask in one batch sent to an agent. */
typedef struct run_attempt {
    uint64_t id;
    sub *s;
    bool answered;
    bool hedge;            /* a second copy sent because the first is slow */
} run_attempt;

typedef struct run_batch {
    run_attempt *at;
    size_t n, n_left;
    size_t skill;
    double sent_ms;
    double deadline_ms;
} run_batch;

typedef enum agent_state {
    AG_OFF,      /* waiting for its restart time */
    AG_STARTING, /* forked, loading models */
    AG_READY,
    AG_STOPPING
} agent_state;

typedef struct agent_slot {
    int index;
    pid_t pid;
    int fd;
    wire_reader rd;
    agent_state state;
    uint64_t gen;          /* incarnation, unique over the run */
    double spawned_ms, ready_ms, last_beat_ms, restart_ms;
    uint32_t quick_deaths; /* deaths soon after start, for the backoff */
    uint32_t start_failures; /* deaths before READY in a row */
    char last_error[256];  /* why it was lost last */
    run_batch batches[RUN_AGENT_DEPTH + 1];
    size_t n_batches, n_tasks;
    double ewma_ms;        /* per subtask */
    double ewma_fail;
    bool faulted;          /* a fault was injected: not the input's fault */
    bool slow;
} agent_slot;

typedef struct job_slot {
    uint64_t index;
    char *id;
    plan_job *plan;
    double started_ms;
    bool finished;         /* output line known */
    char *line;
    bool ok;
    sub **subs;
    size_t n_subs, cap_subs;
} job_slot;

typedef struct skill_queue {
    sub *head, *tail;
    size_t n;
} skill_queue;

typedef struct sample_list {
    double *v;
    size_t n, cap;
} sample_list;

/* Journal results of earlier runs, by "JOB\x1fKEY". */
typedef struct cache_map {
    char **keys;
    char **values;
    size_t cap, n;
} cache_map;

typedef struct runner {
    const run_options *o;
    const swarm_file *swarm;
    const swarm_pipeline *pipe;
    run_summary *sum;
    FILE *log;

    run_input *input;
    uint64_t n_jobs;
    uint64_t next_admit, next_emit;
    job_slot **ring;       /* window entries, job i at i % window */
    uint32_t window;
    uint64_t active;

    FILE *out;
    bool out_stdout;
    uint64_t out_bytes;
    journal *jr;
    double last_commit_ms;
    cache_map cache;
    cache_map done_lines;  /* finished jobs not yet emitted, by index */

    agent_slot *agents;
    uint32_t n_agents;
    uint64_t next_gen;
    uint64_t next_attempt;
    uint32_t max_batch, heartbeat_ms, dead_after_ms, max_attempts;

    skill_queue *queues;   /* one per skill */
    size_t rr;             /* round-robin start over skills */
    sample_list *lat;      /* per skill: latency per subtask */
    double *exec_ms;       /* per skill */
    sample_list sched_us;
    sample_list recover;

    uint64_t chaos_rng;
    double chaos_next[5];
    uint64_t chaos_events;

    double t0_ms;
    double last_progress_ms;
    bool tty;
    bool line_drawn;       /* a progress line waits to be erased */
    int progress;
    bool fatal;
    char fatal_msg[512];
    struct nats_run *nats; /* NATS transport state, or NULL */
} runner;

double run_now_ms(void);

/* run_jobs.c */
roj_status run_jobs_open(runner *r);
roj_status run_jobs_admit(runner *r);
roj_status run_job_pump(runner *r, job_slot *j);
roj_status run_sub_done(runner *r, sub *s, const char *result_json);
void run_sub_failed(runner *r, sub *s, const char *why);
roj_status run_jobs_emit(runner *r);
roj_status run_jobs_commit(runner *r, bool force);
void run_jobs_deadlines(runner *r, double now);
void run_jobs_close(runner *r);
void run_sub_release(sub *s);
bool run_jobs_all_done(const runner *r);

/* run_agents.c */
roj_status run_agent_spawn(runner *r, agent_slot *a);
void run_agent_lost(runner *r, agent_slot *a, const char *why,
                    bool input_blamed);
roj_status run_agent_read(runner *r, agent_slot *a);
void run_agents_check(runner *r, double now);
void run_agents_stop(runner *r);
uint32_t run_agents_alive(const runner *r);
void run_chaos_tick(runner *r, double now);

/* run_dispatch.c */
/* Records a failed attempt of s on agent generation gen that counts
 * against its input: appends msg to its errors and fails its job once
 * max_attempts agents failed it (then returns true). */
bool run_sub_count_failure(runner *r, sub *s, uint64_t gen, const char *msg);
void run_queue_push(runner *r, sub *s, bool front);
void run_dispatch(runner *r);
roj_status run_handle_result(runner *r, agent_slot *a, const char *payload);
void run_hedge(runner *r, double now);

/* run_nats.c: the loop of the NATS transport, and the agents it saw
 * registered at the last status refresh. */
roj_status run_nats(runner *r);
uint32_t run_nats_agents(const runner *r);

/* run_report.c */
void run_progress(runner *r, bool final);
void run_samples_add(sample_list *l, double v);
double run_samples_quantile(sample_list *l, double q);
void run_log(runner *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* cache_map (run_jobs.c) */
roj_status cache_put(cache_map *m, const char *key, const char *value);
const char *cache_get(const cache_map *m, const char *key);
void cache_free(cache_map *m);

#endif
