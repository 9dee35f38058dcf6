/*
 * Skill execution inside an agent: the swarm file's models loaded once
 * (mmap, so agents share the page cache), one inference context per
 * model, and a call that runs a batch of subtasks of one skill and gives
 * each result as a JSON object.
 *
 * Result objects, by the skill's output kind (docs/SWARM.md):
 *   choice  {"label": "refund", "confidence": 0.93, "probs": [...]}
 *           probs in the order of swarm_output.labels, summing to 1
 *           (a specialist's probabilities renormalized over the labels
 *           the skill lists), and confidence the prob of the label. The
 *           label is the most probable one at temperature 0, else a draw
 *           from probs^(1 / temperature) seeded like the sampler;
 *   span    {"text": "A-1234", "found": true}  (text is the none word and
 *           found false when there is no span);
 *   json    {"text": "{...}", FIELD: value, ...}  every schema field
 *           (except one named "text": the object holds it);
 *   text    {"text": "..."}.
 * Probabilities are printed with enough digits (%.9g) to round-trip a
 * float, so a result read back from the journal equals the one computed.
 *
 * Failures of one task: some tasks lack a field of their skill's prompt,
 * name a skill the swarm does not have, or have a prompt that leaves less
 * room in the model's context than the output needs. Such a task gets an
 * error with permanent set, and the other tasks of the batch still run.
 * Field values that are not valid UTF-8 have each bad sequence replaced
 * by U+FFFD.
 *
 * Determinism: a result depends only on the skill, the input fields and
 * the seed, never on the other subtasks of the batch, the agent or the
 * thread count (the matrix products are batch invariant, see
 * tests/test_kernels.c matmul_batch_invariant).
 *
 * Ownership: exec_engine borrows the swarm_file, which must outlive it.
 * Threading: one engine is used by one thread at a time.
 */
#ifndef ROJ_RUN_EXEC_H
#define ROJ_RUN_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roj/roj.h"
#include "swarm/swarm.h"

typedef struct exec_engine exec_engine;

/* One subtask: the skill's prompt fields by name (swarm_skill.fields;
 * a field the skill does not use is ignored) and the seed of its
 * sampler. */
typedef struct exec_task {
    size_t skill;
    const char *const *names;
    const char *const *values;
    size_t n_fields;
    uint64_t seed;
} exec_task;

/* The outcome of one subtask. */
typedef struct exec_result {
    char *json;      /* the result object, or NULL on error (malloc'd) */
    char *error;     /* what went wrong, or NULL on success (malloc'd) */
    bool permanent;  /* the input itself is bad: retrying cannot help */
} exec_result;

/* Prepares an engine for the swarm. Models are opened on first use;
 * n_threads is the inference thread count of each context (0: 1).
 * On success *out is a new engine (exec_close). */
roj_status exec_open(const swarm_file *swarm, int32_t n_threads,
                     exec_engine **out);

/* Opens every model of the swarm now, so that the first subtask does
 * not pay for it. Fails naming the model that did not open. */
roj_status exec_preload(exec_engine *engine);

/* Runs n subtasks that all use the same skill, batching the forward
 * passes where the output kind allows it (choice skills on a roj
 * classifier: one pass for the batch). Fills results[0 .. n-1]; the
 * caller frees their strings (exec_result_clear). Returns ROJ_OK when
 * every task has a result or an error of its own; another status means
 * the engine cannot go on (out of memory, a model file gone). */
roj_status exec_run(exec_engine *engine, const exec_task *tasks, size_t n,
                    exec_result *results);

void exec_result_clear(exec_result *r);
void exec_close(exec_engine *engine);

#endif
