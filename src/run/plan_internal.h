/* Internals of the job plan, shared by src/run/plan*.c. */
#ifndef ROJ_RUN_PLAN_INTERNAL_H
#define ROJ_RUN_PLAN_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "run/plan.h"

/* Items of one map step; a longer split fails the job. */
#define PLAN_MAX_ITEMS 4096

typedef enum task_state {
    TASK_READY,   /* created, not yet handed out */
    TASK_OUT,     /* handed out, no result yet */
    TASK_DONE     /* answered, failed or dropped */
} task_state;

typedef struct plan_subtask {
    char *key;
    size_t step;
    size_t item;
    uint32_t slot;   /* voter number or cascade level; 0 otherwise */
    size_t skill;
    char **values;   /* the skill's prompt fields, rendered */
    size_t n_values;
    uint64_t seed;
    task_state state;
    cJSON *result;   /* the validated result until its item combines */
} plan_subtask;

typedef struct plan_item {
    char *text;        /* the item of a map step; NULL otherwise */
    uint32_t level;    /* cascade: the level that runs or answered */
    uint32_t answered; /* vote: voters with a result */
    size_t first_task; /* vote: voters are tasks first_task .. + k - 1 */
    cJSON *result;     /* the item's fields once it is done */
} plan_item;

typedef enum step_status {
    STEP_WAITING,
    STEP_RUNNING,
    STEP_DONE
} step_status;

typedef struct plan_step_state {
    step_status status;
    bool skipped;
    plan_item *items; /* n_items; one for a step without map */
    size_t n_items;
    size_t items_done;
    cJSON *result;    /* the step's fields once it is done */
} plan_step_state;

struct plan_job {
    const swarm_file *swarm;
    const swarm_pipeline *pipeline;
    uint64_t index;
    char *id;
    cJSON *fields;           /* the job's input object */
    plan_hooks hooks;
    plan_step_state *steps;  /* pipeline->n_steps */
    plan_subtask *tasks;     /* every subtask created, in creation order */
    size_t n_tasks, cap_tasks;
    size_t next_ready;       /* tasks before it have been handed out */
    size_t *table;           /* key hash table: task index + 1, 0 empty */
    size_t table_cap;        /* a power of two */
    size_t pending;
    bool done, failed;
    char *error;             /* the message of a failed job */
    char *output;            /* the output line of a job that succeeded */
};

/* ---- plan.c ---- */

/* Fails the job with a formatted message unless it is already done.
 * Returns ROJ_OK so that callers can write `return job_fail(...)`. */
roj_status job_fail(plan_job *job, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Fails the job for lack of memory and returns ROJ_ERR_NOMEM. */
roj_status job_nomem(plan_job *job);

/* Appends a ready subtask of item `item` of step `step` (slot: voter or
 * cascade level) with its key and seed. Takes values (n_values strings)
 * even on failure. Returns ROJ_ERR_NOMEM, failing the job, when memory
 * runs out. Pointers into job->tasks move. */
roj_status plan_add_task(plan_job *job, size_t step, size_t item,
                         uint32_t slot, size_t skill, char **values,
                         size_t n_values);

/* ---- plan_steps.c ---- */

/* Starts, in the pipeline's order, every waiting step whose
 * dependencies are done, and builds the output once every step is done.
 * Returns non-OK only when memory runs out. */
roj_status plan_advance(plan_job *job);

/* Combines the checked result of job->tasks[task] into its item and
 * step, creating a cascade's next level or starting the steps that
 * became ready. Returns non-OK only when memory runs out. */
roj_status plan_take_result(plan_job *job, size_t task);

/* ---- plan_split.c ---- */

/* Splits text into the items of map step `step` (trimmed, empty items
 * dropped). On success *items is a new array of *n new strings (free
 * each and the array). A split into more than PLAN_MAX_ITEMS items, a
 * list that is not a JSON array or a chunk hook that fails fails the
 * job and returns ROJ_OK with *items NULL; only memory errors return
 * non-OK. */
roj_status plan_split(plan_job *job, size_t step, const char *text,
                      char ***items, size_t *n);

/* ---- plan_combine.c ---- */

/* Checks a subtask's result against its skill's output kind and returns
 * false, failing the job with a message naming key, when a field is
 * missing or has the wrong type. need_probs: a choice must give probs. */
bool plan_check_result(plan_job *job, const plan_subtask *task,
                       const cJSON *result, bool need_probs);

/* The fields of one answer of skill `skill`: a new object, or NULL when
 * memory runs out. */
cJSON *plan_answer_fields(const swarm_skill *skill, const cJSON *result);

/* Combines the k voter results of a vote into a new object with the
 * winner's fields and agreement; NULL when memory runs out. */
cJSON *plan_vote(const swarm_file *swarm, const swarm_step *step,
                 const plan_subtask *voters, size_t k);

/* Combines the item results of a map step into the step's fields: a
 * new object, or NULL when memory runs out. */
cJSON *plan_reduce(const swarm_file *swarm, const swarm_step *step,
                   const plan_item *items, size_t n_items);

/* The fields of a skipped step (strings "", numbers 0, booleans false,
 * items []): a new object, or NULL when memory runs out. */
cJSON *plan_empty_fields(const swarm_file *swarm, const swarm_step *step);

/* ---- plan_output.c ---- */

/* Placeholder lookup over a job: {job.F}, {STEP.F} and {item}. */
typedef struct plan_lookup {
    const plan_job *job;
    const char *item;  /* the current map item, or NULL */
    char **scratch;    /* string forms made during one rendering */
    size_t n_scratch, cap_scratch;
} plan_lookup;

/* swarm_lookup_fn over a plan_lookup. */
roj_status plan_lookup_value(void *ctx, const char *name,
                             const char **value, size_t *len);

/* Frees the string forms a rendering made. */
void plan_lookup_clear(plan_lookup *lookup);

/* Renders tmpl for job (item: the current map item or NULL) into a new
 * string *out. A template error fails the job, naming where, and
 * returns ROJ_OK with *out NULL; memory errors return non-OK. */
roj_status plan_render(plan_job *job, const char *tmpl, const char *item,
                       const char *where, char **out);

/* The string form of a JSON value for a placeholder: a new string, or
 * NULL when memory runs out. Strings are as is, numbers the shortest
 * text that reads back as the same double. */
char *plan_value_text(const cJSON *value);

/* Builds job->output for a job whose steps are all done, or fails the
 * job when an output template cannot be filled. Returns non-OK only
 * when memory runs out. */
roj_status plan_build_output(plan_job *job);

/* The output line of a failed job: a new string, or NULL. */
char *plan_error_line(const plan_job *job);

#endif
