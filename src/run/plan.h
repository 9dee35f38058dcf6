/*
 * The plan of one job: which subtasks a pipeline needs for a job's
 * fields, in what order, and how their results combine into the job's
 * output line. Pure logic, no processes and no models: the runner asks
 * for ready subtasks, sends them to agents and hands back the results.
 *
 * Subtask keys name a subtask within its job and are stable across runs
 * (the journal stores results under them):
 *   STEP            a plain step
 *   STEP#V          vote number V (0-based) of a vote step
 *   STEP~L          level L of a cascade (0 = the first skill)
 *   STEP[I]         item I (0-based) of a map step; combined with the
 *                   above as STEP[I]#V or STEP[I]~L
 *
 * Semantics (docs/SWARM.md describes the swarm file itself):
 *   - A step is ready when every step it depends on is done. A step whose
 *     `when` does not hold is skipped: its string fields are "", found
 *     and json booleans are false, numbers (confidence, agreement,
 *     count, n_items, json numbers) are 0, items is [], and its
 *     dependents still run. A step routed through a skipped step is
 *     skipped too, because the skipped step's label is "".
 *   - Placeholders take the job's field ({job.F}: a string as is, any
 *     other JSON value as its JSON text), an earlier step's result field
 *     ({STEP.F}; numbers as the shortest text that round-trips) or, in a
 *     map step's input, the current item ({item}).
 *   - vote: k subtasks (STEP#0 .. STEP#k-1; one per listed skill for a
 *     vote over skills). Majority: the most frequent answer (label for
 *     choice, text for span), ties to the answer with the higher summed
 *     confidence, then to the earlier voter. Confidence: the label with
 *     the highest summed probability. The result is the winner's fields
 *     plus agreement = the share of voters that gave the winner; for
 *     choice, confidence = the winner's mean probability over voters.
 *   - cascade: level 0 runs first; level L+1 only when level L gave a
 *     confidence below the threshold; the last level always answers. The
 *     result is the answering level's plus skill = its skill name.
 *   - map: the rendered `over` text is split into items (sentences:
 *     after . ! or ? followed by white space or the end, and at blank
 *     lines; lines: non-empty lines; chunks: by the hook's tokens; list:
 *     the elements of a JSON array, strings as is). Items are trimmed of
 *     surrounding white space and empty items dropped. reduce collect:
 *     items = JSON array of the item result objects; concat: text = the
 *     items' text (label for choice) joined by "\n"; count: count = the
 *     items with a found span, a non-empty text or a label; vote: label =
 *     the most frequent item label (ties to the first seen), agreement =
 *     its share. n_items = number of items; no item gives "", 0 or [].
 *   - Seeds: each subtask's seed mixes the skill's sampling seed, the
 *     job index and the key, so it is the same in every run and on every
 *     agent.
 *   - Output line: {"id": ID, "ok": true, "result": {...}} where result
 *     has the pipeline's output fields in the file's order. A template
 *     that is exactly one placeholder of a non-string value (confidence,
 *     count, items) keeps its JSON type, anything else is a string. A
 *     failed job gives {"id": ID, "ok": false, "error": MESSAGE}. ID is
 *     always a JSON string. The line is compact JSON with no white space
 *     between tokens ({"id":"7","ok":true,...}), which the runner relies
 *     on when it reads "ok" back, and numbers in it are the shortest
 *     text that round-trips (whole numbers below 1e17 without an
 *     exponent).
 *
 * Ownership: a plan_job owns its strings; pointers in plan_task stay
 * valid until plan_job_free. Threading: one thread per plan_job; the
 * swarm_file is shared read-only.
 */
#ifndef ROJ_RUN_PLAN_H
#define ROJ_RUN_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roj/roj.h"
#include "swarm/swarm.h"

/* Splits text into chunks of at most `tokens` tokens of the skill's
 * model: writes the byte offsets where chunks end (ascending, the last
 * is len) to a new array *ends (caller frees) of *n entries. */
typedef roj_status (*plan_chunk_fn)(void *ctx, size_t skill,
                                    const char *text, size_t len,
                                    uint32_t tokens, size_t **ends,
                                    size_t *n);

typedef struct plan_hooks {
    plan_chunk_fn chunk; /* needed by split: chunks only */
    void *ctx;
} plan_hooks;

typedef struct plan_task {
    const char *key;
    size_t step;
    size_t skill;
    const char *const *names;  /* the skill's prompt fields */
    const char *const *values; /* rendered, same order */
    size_t n_fields;
    uint64_t seed;
} plan_task;

typedef struct plan_job plan_job;

/* Starts the plan of job `index` (0-based, its position in the input)
 * with the id written to its output line and fields, a JSON object
 * text. Input that does not fit the pipeline (not an object, a missing
 * field) still gives a job, which is already done and failed, with a
 * message naming the field; other errors (memory) return non-OK. */
roj_status plan_job_new(const swarm_file *swarm, size_t pipeline,
                        uint64_t index, const char *id, const char *fields,
                        const plan_hooks *hooks, plan_job **out);

/* Writes up to max subtasks that became ready since the last call to
 * out and returns their number (0 when none is ready now). Each subtask
 * is handed out once. */
size_t plan_job_ready(plan_job *job, plan_task *out, size_t max);

/* Records the result (a JSON object, exec.h) of the subtask key. A
 * result for a key that was not handed out, or a second result for one,
 * is ignored and returns ROJ_OK (a late duplicate must not change the
 * job). A result that lacks a field the skill gives, or that is not
 * JSON, fails the job with a message naming the key. */
roj_status plan_job_result(plan_job *job, const char *key,
                           const char *result_json);

/* Marks the subtask key failed: the job fails with message as its error.
 * The message is used as is, so it should name the key; NULL gives
 * "subtask \"KEY\" failed". A key that was not handed out, or that
 * already has a result, is ignored. */
void plan_job_fail(plan_job *job, const char *key, const char *message);

/* Fails the whole job (deadline, cancellation) with message. */
void plan_job_abort(plan_job *job, const char *message);

bool plan_job_done(const plan_job *job);
bool plan_job_failed(const plan_job *job);

/* Subtasks handed out and not yet answered. */
size_t plan_job_pending(const plan_job *job);

/* The output line of a done job (no newline): a new string (caller
 * frees). ROJ_ERR_INVALID_ARG when the job is not done. */
roj_status plan_job_output(const plan_job *job, char **line);

void plan_job_free(plan_job *job);

/* The seed of a subtask, as plan_task.seed gives it. */
uint64_t plan_seed(uint64_t skill_seed, uint64_t index, const char *key);

#endif
