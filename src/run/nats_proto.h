/*
 * The protocol of a swarm on NATS JetStream: the names, records and
 * setup that `roj run --nats` (the submitter) and `roj agent` (the
 * workers) share.
 *
 * Names, for a swarm file whose `name` is N (sanitized to letters,
 * digits, '_' and '-'):
 *   stream       ROJ_N, work-queue retention, subjects roj.N.task.>
 *   subject      roj.N.task.SKILL: the subtasks of one skill
 *   consumer     SKILL (durable pull, AckExplicit), shared by every agent
 *                that serves the skill
 *   KV buckets   roj_N_results: one record per finished subtask
 *                roj_N_agents:  one record per live agent (expires when
 *                               its heartbeats stop)
 *                roj_N_meta:    "swarm" = the swarm file's sha256 the
 *                               cluster runs; "run.RUN" = a run's status
 *                roj_N_models:  model and adapter files in chunks, written
 *                               by `roj models push` (run/nats_models.h)
 *
 * A run's id (RUN) is 16 hex digits of the sha256 of the swarm file's,
 * the input's and the pipeline's identity, so running the same command
 * again, on any machine, continues the same run.
 *
 * Task message (JSON), published with message id RUN.JOB.KEY so that a
 * second publish of the same subtask is dropped by the stream:
 *   {"run": RUN, "job": JOB, "key": "topic#1", "skill": "topic",
 *    "seed": "1234", "swarm": SWARM_SHA256, "in": {"text": "..."}}
 * An agent whose swarm file has another sha256 returns the message to
 * the queue without running it and stops.
 *
 * Result record, key RUN.JOB.ENCODED_KEY in roj_N_results, written with
 * create-if-absent so that a redelivered or duplicated message records
 * at most one result:
 *   {"ok": true, "result": {...}, "agent": NAME, "ms": 1.25}
 *   {"ok": false, "permanent": true, "error": "...", "agent": NAME}
 * An agent that receives a redelivered message and finds a record
 * already there acknowledges it and skips the work; on a first delivery
 * it computes, and a record that exists by then is kept.
 *
 * Agent record, key = the agent's name in roj_N_agents, written every
 * heartbeat:
 *   {"name", "host", "pid", "version", "swarm_sha256", "skills": [...],
 *    "models": [{"name", "sha256", "task", "valid": {...}}],
 *    "capacity", "threads", "started_ms", "heartbeat_ms", "busy",
 *    "done", "failed", "redelivered", "skipped"}
 *
 * Run status, key run.RUN in roj_N_meta, written by the submitter:
 *   {"run", "pipeline", "jobs_total", "jobs_done", "jobs_failed",
 *    "pending": {"SKILL": n, ...}, "updated_ms"}
 *
 * Threading: the functions here keep no state.
 */
#ifndef ROJ_RUN_NATS_PROTO_H
#define ROJ_RUN_NATS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nats/natsx.h"
#include "roj/roj.h"
#include "swarm/swarm.h"

/* Maximum length of a name this module builds, with its NUL. */
#define NPROTO_NAME_MAX 256

/* Delivery settings of every skill consumer. A subtask that ran on
 * NPROTO_MAX_DELIVER - 1 agents without a result is recorded as failed,
 * unrun, by the agent that receives its last delivery: enough tries
 * that agents lost to other causes rarely fail an innocent subtask, few
 * enough that a poisonous one stops within a minute by default. */
#define NPROTO_ACK_WAIT_MS 10000u
#define NPROTO_MAX_DELIVER 6
/* Tests set this environment variable to a shorter AckWait in ms
 * (100 to NPROTO_ACK_WAIT_MS); nproto_setup and the agents read it
 * through nproto_ack_wait_ms. */
#define NPROTO_ACK_WAIT_ENV "ROJ_NATS_ACK_WAIT_MS"
/* Agent records expire this long after their last heartbeat. */
#define NPROTO_AGENT_TTL_MS 10000u
#define NPROTO_HEARTBEAT_MS 1000u

/* The names of one swarm on the cluster. */
typedef struct nproto_names {
    char swarm[64];                /* sanitized swarm name */
    char stream[NPROTO_NAME_MAX];
    char subjects[NPROTO_NAME_MAX]; /* the stream's wildcard subject */
    char results[NPROTO_NAME_MAX];  /* bucket names */
    char agents[NPROTO_NAME_MAX];
    char meta[NPROTO_NAME_MAX];
    char models[NPROTO_NAME_MAX];   /* not opened by nproto_setup */
} nproto_names;

/* Fills the names for swarm. ROJ_ERR_INVALID_ARG when the swarm's name
 * has no letter or digit to build them from. */
roj_status nproto_names_init(const swarm_file *swarm, nproto_names *names);

/* The AckWait of the skill consumers: NPROTO_ACK_WAIT_MS, or the value
 * of NPROTO_ACK_WAIT_ENV when it is a whole number in range. */
uint32_t nproto_ack_wait_ms(void);

/* The subject of a skill's subtasks. */
void nproto_task_subject(const nproto_names *names, const char *skill,
                         char *buf, size_t size);

/* Creates or checks the stream, one consumer per skill of the swarm and
 * the three buckets, with `replicas` copies each. Idempotent; never
 * deletes or recreates a consumer. The open buckets are returned in
 * results, agents and meta (any may be NULL when not needed). */
roj_status nproto_setup(natsx_conn *c, const swarm_file *swarm,
                        const nproto_names *names, int replicas,
                        natsx_kv **results, natsx_kv **agents,
                        natsx_kv **meta);

/* Whether a start-up call that failed with st should be tried again:
 * for I/O errors (time-outs, no responders while a cluster elects
 * leaders) until 60 s after start_ms, sleeping 100 ms doubling to 1 s
 * first (*delay_ms starts at 0). nproto_setup retries by itself. */
bool nproto_retry(roj_status st, double start_ms, unsigned *delay_ms);

/* Milliseconds of a monotonic clock, for start_ms. */
double nproto_now_ms(void);

/* The run id for a swarm file digest, input digest and pipeline name:
 * 16 lowercase hex digits and a NUL. */
void nproto_run_id(const char *swarm_sha256, const char *input_sha256,
                   const char *pipeline, char run[17]);

/* Encodes a subtask key for a KV key: '#' becomes "=v", '~' "=l", '['
 * "=i" and ']' "=e"; letters, digits, '_' and '-' stay. Returns false
 * when the key has another character or does not fit. */
bool nproto_key_encode(const char *key, char *buf, size_t size);

/* Decodes what nproto_key_encode made; false on a malformed input. */
bool nproto_key_decode(const char *encoded, char *buf, size_t size);

/* The KV key of a subtask's result: RUN.JOB.ENCODED_KEY. */
bool nproto_result_key(const char *run, uint64_t job, const char *key,
                       char *buf, size_t size);

/* Splits a result key into its run, job and (decoded) subtask key. */
bool nproto_result_key_parse(const char *kv_key, char run[17],
                             uint64_t *job, char *key, size_t key_size);

/* Checks the swarm digest the cluster runs (meta key "swarm") against
 * sha256. With authoritative set (the submitter), a different or
 * missing value is replaced by sha256; otherwise a missing value is
 * created and a different one is ROJ_ERR_INVALID_ARG with a message that
 * names both digests and says to restart the agent with the current
 * swarm file. */
roj_status nproto_check_swarm(natsx_kv *meta, const char *swarm_path,
                              const char *sha256, bool authoritative);

#endif
