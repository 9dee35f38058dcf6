/*
 * The run journal: a SQLite database in WAL mode that records what a
 * `roj run` did, so that a run stopped by a crash, kill -9 or Ctrl-C
 * resumes without recomputing what finished and writes each job's result
 * to the output exactly once.
 *
 * Tables: meta (what the run is: digests of the swarm file and the
 * input, the pipeline, the output path), jobs (index, id, final status
 * and output line), subtasks (job, key, skill, result JSON), attempts
 * (every try of a subtask: agent, pid, milliseconds, error) and the
 * output position (jobs emitted, bytes of the output file that hold
 * them).
 *
 * Writes are queued in one open transaction and made durable by
 * journal_commit, which the runner calls a few times a second: a crash
 * loses at most the results since the last commit, which are then
 * computed again.
 *
 * Ownership: journal_open returns a handle closed by journal_close.
 * Threading: one thread uses a journal; a process that forks must not
 * use the parent's handle in the child.
 */
#ifndef ROJ_RUN_JOURNAL_H
#define ROJ_RUN_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roj/roj.h"

typedef struct journal journal;

/* What a run is. A journal made for other values is refused: resuming
 * it would mix the results of two different runs. */
typedef struct journal_meta {
    const char *swarm_sha256;  /* hex digest of the swarm file's bytes */
    const char *input_sha256;  /* hex digest of the input file's bytes */
    const char *pipeline;
    const char *output_path;
} journal_meta;

typedef enum journal_job_status {
    JOURNAL_JOB_OK = 1,
    JOURNAL_JOB_FAILED = 2
} journal_job_status;

/* Opens or creates the journal at path. A new file gets meta and
 * *resumed = false. An existing one must have the same meta, else
 * ROJ_ERR_INVALID_ARG with a message naming the first value that
 * differs, both values, and what to do (use another journal file, or
 * delete this one to start over); then *resumed = true. A file that is
 * not a roj journal is ROJ_ERR_FORMAT naming it. */
roj_status journal_open(const char *path, const journal_meta *meta,
                        bool *resumed, journal **out);

/* Queues the result of a finished subtask (key as the runner names it,
 * "intent", "urgency[2]", "intent#1"). A second result for the same job
 * and key is ignored (the first stays), so a duplicate answer cannot
 * change what was recorded. */
roj_status journal_put_result(journal *j, uint64_t job, const char *key,
                              const char *skill, const char *result_json);

/* Queues one attempt of a subtask; error NULL for a success. */
roj_status journal_put_attempt(journal *j, uint64_t job, const char *key,
                               int agent, long pid, double ms,
                               const char *error);

/* Queues a job's final state: its id (from the input) and the line the
 * output file gets for it (without the newline). */
roj_status journal_put_job(journal *j, uint64_t job, const char *id,
                           journal_job_status status, const char *line);

/* Queues the output position: jobs 0 .. next_job-1 are in the output,
 * which holds out_bytes bytes. */
roj_status journal_set_emitted(journal *j, uint64_t next_job,
                               uint64_t out_bytes);

/* Commits everything queued in one transaction and opens the next. */
roj_status journal_commit(journal *j);

/* The output position last committed (0, 0 in a new journal). */
roj_status journal_emitted(journal *j, uint64_t *next_job,
                           uint64_t *out_bytes);

/* Calls fn for every committed subtask result with job >= first_job, in
 * job order; a non-OK return from fn stops the walk and is returned. */
typedef roj_status (*journal_result_fn)(void *ctx, uint64_t job,
                                        const char *key,
                                        const char *result_json);
roj_status journal_each_result(journal *j, uint64_t first_job,
                               journal_result_fn fn, void *ctx);

/* Calls fn for every finished job with index >= first_job, in order. */
typedef roj_status (*journal_job_fn)(void *ctx, uint64_t job, const char *id,
                                     journal_job_status status,
                                     const char *line);
roj_status journal_each_job(journal *j, uint64_t first_job,
                            journal_job_fn fn, void *ctx);

/* Counts for a summary: committed results, attempts, failed attempts. */
roj_status journal_counts(journal *j, uint64_t *results, uint64_t *attempts,
                          uint64_t *failed_attempts);

/* Commits what is queued and closes; NULL is ignored. */
roj_status journal_close(journal *j);

#endif
