/* The job plan's lifecycle: creation, handing out subtasks, taking
 * results and failures, and the key table that finds a subtask by key.
 * Steps start and combine in plan_steps.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "run/plan_internal.h"

/* ---- failing ---- */

roj_status job_fail(plan_job *job, const char *fmt, ...)
{
    if (job->done)
        return ROJ_OK;
    va_list ap;
    va_start(ap, fmt);
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    job->error = strdup(buf); /* NULL: the output says out of memory */
    job->done = true;
    job->failed = true;
    return ROJ_OK;
}

roj_status job_nomem(plan_job *job)
{
    job_fail(job, "out of memory");
    return roj_error(ROJ_ERR_NOMEM, "job plan: out of memory");
}

/* ---- the key table ---- */

static uint64_t key_hash(const char *key)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, 64-bit */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    return h;
}

static void table_insert(size_t *table, size_t cap, const char *key,
                         size_t index)
{
    size_t mask = cap - 1;
    size_t at = (size_t)key_hash(key) & mask;
    while (table[at])
        at = (at + 1) & mask;
    table[at] = index + 1;
}

static bool table_grow(plan_job *job)
{
    size_t cap = job->table_cap ? job->table_cap * 2 : 64;
    size_t *table = calloc(cap, sizeof *table);
    if (!table)
        return false;
    for (size_t i = 0; i < job->n_tasks; i++)
        table_insert(table, cap, job->tasks[i].key, i);
    free(job->table);
    job->table = table;
    job->table_cap = cap;
    return true;
}

static plan_subtask *task_find(plan_job *job, const char *key)
{
    if (!job->table_cap || !key)
        return NULL;
    size_t mask = job->table_cap - 1;
    size_t at = (size_t)key_hash(key) & mask;
    while (job->table[at]) {
        plan_subtask *t = &job->tasks[job->table[at] - 1];
        if (!strcmp(t->key, key))
            return t;
        at = (at + 1) & mask;
    }
    return NULL;
}

/* ---- subtasks ---- */

static char *task_key(const swarm_step *s, size_t item, uint32_t slot)
{
    char buf[64] = "", tail[32] = "";
    if (s->map)
        snprintf(buf, sizeof buf, "[%zu]", item);
    if (s->cascade)
        snprintf(tail, sizeof tail, "~%u", slot);
    else if (s->vote > 1)
        snprintf(tail, sizeof tail, "#%u", slot);
    size_t len = strlen(s->id) + strlen(buf) + strlen(tail) + 1;
    char *key = malloc(len);
    if (key)
        snprintf(key, len, "%s%s%s", s->id, buf, tail);
    return key;
}

static void values_free(char **values, size_t n)
{
    for (size_t i = 0; values && i < n; i++)
        free(values[i]);
    free(values);
}

roj_status plan_add_task(plan_job *job, size_t step, size_t item,
                         uint32_t slot, size_t skill, char **values,
                         size_t n_values)
{
    const swarm_step *s = &job->pipeline->steps[step];
    char *key = task_key(s, item, slot);
    if (!key)
        goto nomem;
    if (job->n_tasks == job->cap_tasks) {
        size_t cap = job->cap_tasks ? job->cap_tasks * 2 : 16;
        plan_subtask *tasks = realloc(job->tasks, cap * sizeof *tasks);
        if (!tasks)
            goto nomem;
        job->tasks = tasks;
        job->cap_tasks = cap;
    }
    if ((job->n_tasks + 1) * 2 > job->table_cap && !table_grow(job))
        goto nomem;

    plan_subtask *t = &job->tasks[job->n_tasks];
    memset(t, 0, sizeof *t);
    t->key = key;
    t->step = step;
    t->item = item;
    t->slot = slot;
    t->skill = skill;
    t->values = values;
    t->n_values = n_values;
    t->seed = plan_seed(job->swarm->skills[skill].sampling.seed, job->index,
                        key);
    t->state = TASK_READY;
    table_insert(job->table, job->table_cap, key, job->n_tasks);
    job->n_tasks++;
    return ROJ_OK;

nomem:
    free(key);
    values_free(values, n_values);
    return job_nomem(job);
}

/* ---- the public calls ---- */

/* Checks that fields is an object with every input of the pipeline, or
 * fails the job naming what is wrong. */
static void check_fields(plan_job *job, const char *fields)
{
    const swarm_pipeline *p = job->pipeline;
    if (!fields) {
        job_fail(job, "the job has no fields; pipeline \"%s\" needs a "
                 "JSON object with its input fields", p->name);
        return;
    }
    job->fields = cJSON_Parse(fields);
    if (!cJSON_IsObject(job->fields)) {
        job_fail(job, "the job's fields are not a JSON object; pipeline "
                 "\"%s\" needs an object such as {\"%s\": \"...\"}",
                 p->name, p->n_inputs ? p->inputs[0] : "text");
        return;
    }
    for (size_t i = 0; i < p->n_inputs; i++) {
        if (!cJSON_GetObjectItemCaseSensitive(job->fields, p->inputs[i])) {
            job_fail(job, "job field \"%s\" is missing; pipeline \"%s\" "
                     "needs it as input", p->inputs[i], p->name);
            return;
        }
    }
}

roj_status plan_job_new(const swarm_file *swarm, size_t pipeline,
                        uint64_t index, const char *id, const char *fields,
                        const plan_hooks *hooks, plan_job **out)
{
    *out = NULL;
    if (!swarm || pipeline >= swarm->n_pipelines)
        return roj_error(ROJ_ERR_INVALID_ARG, "job plan: pipeline %zu "
                         "does not exist", pipeline);
    plan_job *job = calloc(1, sizeof *job);
    if (!job)
        return roj_error(ROJ_ERR_NOMEM, "job plan: out of memory");
    job->swarm = swarm;
    job->pipeline = &swarm->pipelines[pipeline];
    job->index = index;
    if (hooks)
        job->hooks = *hooks;
    job->id = strdup(id ? id : "");
    job->steps = calloc(job->pipeline->n_steps + 1, sizeof *job->steps);
    if (!job->id || !job->steps) {
        plan_job_free(job);
        return roj_error(ROJ_ERR_NOMEM, "job plan: out of memory");
    }

    check_fields(job, fields);
    roj_status st = job->done ? ROJ_OK : plan_advance(job);
    if (st) {
        plan_job_free(job);
        return st;
    }
    *out = job;
    return ROJ_OK;
}

size_t plan_job_ready(plan_job *job, plan_task *out, size_t max)
{
    size_t n = 0;
    while (!job->done && n < max && job->next_ready < job->n_tasks) {
        plan_subtask *t = &job->tasks[job->next_ready++];
        const swarm_skill *sk = &job->swarm->skills[t->skill];
        out[n].key = t->key;
        out[n].step = t->step;
        out[n].skill = t->skill;
        out[n].names = sk->fields;
        out[n].values = (const char *const *)t->values;
        out[n].n_fields = t->n_values;
        out[n].seed = t->seed;
        t->state = TASK_OUT;
        job->pending++;
        n++;
    }
    return n;
}

/* Takes a handed-out subtask off the pending count; false when key was
 * not handed out or already has its answer. */
static plan_subtask *task_answer(plan_job *job, const char *key)
{
    plan_subtask *t = task_find(job, key);
    if (!t || t->state != TASK_OUT)
        return NULL;
    t->state = TASK_DONE;
    job->pending--;
    return t;
}

roj_status plan_job_result(plan_job *job, const char *key,
                           const char *result_json)
{
    plan_subtask *t = task_answer(job, key);
    if (!t || job->done)
        return ROJ_OK;
    cJSON *result = result_json ? cJSON_Parse(result_json) : NULL;
    if (!cJSON_IsObject(result)) {
        cJSON_Delete(result);
        return job_fail(job, "subtask \"%s\": the result is not a JSON "
                        "object: %.60s", key,
                        result_json ? result_json : "(none)");
    }
    const swarm_step *s = &job->pipeline->steps[t->step];
    bool need_probs = s->vote > 1;
    if (!plan_check_result(job, t, result, need_probs)) {
        cJSON_Delete(result);
        return ROJ_OK;
    }
    t->result = result;
    return plan_take_result(job, (size_t)(t - job->tasks));
}

void plan_job_fail(plan_job *job, const char *key, const char *message)
{
    if (!task_answer(job, key))
        return;
    if (message)
        job_fail(job, "%s", message);
    else
        job_fail(job, "subtask \"%s\" failed", key);
}

void plan_job_abort(plan_job *job, const char *message)
{
    job_fail(job, "%s", message ? message : "the job was aborted");
}

bool plan_job_done(const plan_job *job)
{
    return job->done;
}

bool plan_job_failed(const plan_job *job)
{
    return job->failed;
}

size_t plan_job_pending(const plan_job *job)
{
    return job->pending;
}

roj_status plan_job_output(const plan_job *job, char **line)
{
    *line = NULL;
    if (!job->done)
        return roj_error(ROJ_ERR_INVALID_ARG, "job \"%s\" is not done: "
                         "%zu subtasks pending", job->id, job->pending);
    *line = job->failed ? plan_error_line(job) : strdup(job->output);
    if (!*line)
        return roj_error(ROJ_ERR_NOMEM, "job \"%s\": out of memory",
                         job->id);
    return ROJ_OK;
}

void plan_job_free(plan_job *job)
{
    if (!job)
        return;
    for (size_t i = 0; i < job->n_tasks; i++) {
        free(job->tasks[i].key);
        values_free(job->tasks[i].values, job->tasks[i].n_values);
        cJSON_Delete(job->tasks[i].result);
    }
    for (size_t i = 0; job->steps && i < job->pipeline->n_steps; i++) {
        plan_step_state *st = &job->steps[i];
        for (size_t j = 0; j < st->n_items; j++) {
            free(st->items[j].text);
            cJSON_Delete(st->items[j].result);
        }
        free(st->items);
        cJSON_Delete(st->result);
    }
    free(job->steps);
    free(job->tasks);
    free(job->table);
    cJSON_Delete(job->fields);
    free(job->id);
    free(job->error);
    free(job->output);
    free(job);
}

/* splitmix64's finalizer: a bijective 64-bit mix. */
static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t plan_seed(uint64_t skill_seed, uint64_t index, const char *key)
{
    uint64_t h = mix64(skill_seed);
    h = mix64(h ^ index);
    return mix64(h ^ key_hash(key ? key : ""));
}
