/*
 * The worker of a swarm on NATS JetStream (`roj agent`). It pulls the
 * subtasks of the skills it serves from their durable consumers and runs
 * them through the executor (run/exec.h). It records each outcome in the
 * results bucket, following the protocol of run/nats_proto.h.
 *
 * Per message: a malformed task is terminated; a subtask whose result
 * record exists is acknowledged and skipped; the delivery number
 * NPROTO_MAX_DELIVER of a subtask without a record (earlier holders
 * died or hung on it) gets a failure record and is terminated without
 * running, so one poisonous input cannot kill every agent in turn.
 * Otherwise the subtask runs. Until a message gets its ack, nak or term,
 * a helper thread sends "in progress" for it at a third of AckWait. A bucket call
 * that fails (the server or the bucket's stream leader is away during a
 * failover) is retried for up to a minute per batch before the message
 * goes back, so that outages do not use up deliveries. A success is
 * recorded with create-if-absent and then acknowledged (a result too
 * large for the server's max_payload is a permanent error); a
 * permanent error gets a failure record and is terminated; a retryable
 * error is negatively acknowledged with a 1 s delay, except on the last
 * delivery that runs (NPROTO_MAX_DELIVER - 1), where it gets a failure
 * record with that error and is terminated.
 *
 * The agent record (key = the agent's name in the agents bucket) is
 * written at start and every NPROTO_HEARTBEAT_MS by a heartbeat thread,
 * which also checks that the cluster still runs this swarm file.
 *
 * Threading: nagent_run blocks the calling thread until *cfg->stop is
 * set, the swarm version changes or the engine fails; it starts and
 * joins its own helper threads.
 */
#ifndef ROJ_RUN_NATS_AGENT_H
#define ROJ_RUN_NATS_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nats/natsx.h"
#include "roj/roj.h"
#include "run/agent.h"
#include "swarm/swarm.h"

typedef struct nagent_config {
    const swarm_file *swarm;
    const char *swarm_path;
    const char *swarm_sha256;   /* 64 hex digits of the swarm file */
    natsx_options nats;         /* servers and credentials */
    const char *const *skills;  /* served skills; NULL: every skill */
    size_t n_skills;
    const char *name;           /* NULL: HOST-PID; only letters, digits,
                                   '-' and '_' are kept */
    int32_t threads;            /* inference threads [1] */
    uint32_t batch;             /* maximum messages fetched at once [16] */
    int replicas;               /* copies of the stream and buckets [1] */
    volatile int *stop;         /* set (by a signal handler) to stop;
                                   may be NULL */
    const agent_executor *executor; /* the work on each batch; NULL: the
                                       models (exec.h). The benchmark of
                                       the NATS protocol plugs in a
                                       no-op here. */
} nagent_config;

/* Counters of one agent, as its record shows them. */
typedef struct nagent_stats {
    uint64_t done;        /* success records this agent wrote */
    uint64_t failed;      /* failure records this agent wrote */
    uint64_t redelivered; /* messages received with delivery > 1 */
    uint64_t skipped;     /* subtasks another agent had recorded */
    uint64_t malformed;   /* task messages terminated as unreadable */
} nagent_stats;

/* Connects, sets up the swarm's stream, consumers and buckets, checks
 * the swarm version, registers and serves until *cfg->stop is set. On
 * a stop it finishes the batch it fetched, deletes its agent record
 * and returns ROJ_OK. Errors: ROJ_ERR_INVALID_ARG when the cluster runs
 * another version of the swarm file (at start or later), a skill name
 * that the swarm lacks, or bad options; the natsx_connect errors; the
 * executor's errors. stats (may be NULL) receives the final counters. */
roj_status nagent_run(const nagent_config *cfg, nagent_stats *stats);

#endif
