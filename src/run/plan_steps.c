/* Steps of a job plan: a step starts when its dependencies are done
 * (or is skipped by its `when`), creates one subtask per item, voter or
 * cascade level, and is done once every item has combined its answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "run/plan_internal.h"

static bool deps_done(const plan_job *job, const swarm_step *s)
{
    for (size_t i = 0; i < s->n_deps; i++)
        if (job->steps[s->deps[i]].status != STEP_DONE)
            return false;
    return true;
}

/* True when every `when` of the step holds: the step it names chose one
 * of the listed labels. A skipped step's label is "", so steps routed
 * through a skipped step are skipped too. */
static bool when_holds(const plan_job *job, const swarm_step *s)
{
    for (size_t i = 0; i < s->n_when; i++) {
        const swarm_when *w = &s->when[i];
        const cJSON *label = cJSON_GetObjectItemCaseSensitive(
            job->steps[w->step].result, "label");
        if (!cJSON_IsString(label))
            return false;
        bool listed = false;
        for (size_t j = 0; j < w->n_labels && !listed; j++)
            listed = !strcmp(label->valuestring, w->labels[j]);
        if (!listed)
            return false;
    }
    return true;
}

static const swarm_binding *find_binding(const swarm_step *s,
                                         const char *name)
{
    for (size_t i = 0; i < s->n_input; i++)
        if (!strcmp(s->input[i].name, name))
            return &s->input[i];
    return NULL;
}

/* Renders the prompt fields of skill for one item and adds the
 * subtask. */
static roj_status task_create(plan_job *job, size_t step, size_t item,
                              uint32_t slot, size_t skill)
{
    const swarm_step *s = &job->pipeline->steps[step];
    const swarm_skill *sk = &job->swarm->skills[skill];
    const char *text = job->steps[step].items[item].text;
    char **values = calloc(sk->n_fields + 1, sizeof *values);
    if (!values)
        return job_nomem(job);
    for (size_t i = 0; i < sk->n_fields; i++) {
        const swarm_binding *b = find_binding(s, sk->fields[i]);
        char where[256];
        snprintf(where, sizeof where, "step \"%s\" input \"%s\"", s->id,
                 sk->fields[i]);
        if (!b) {
            job_fail(job, "%s: the step binds no template to it", where);
            break;
        }
        roj_status st = plan_render(job, b->tmpl, text, where, &values[i]);
        if (st || !values[i]) {
            for (size_t j = 0; j < i; j++)
                free(values[j]);
            free(values);
            return st;
        }
    }
    if (job->done) {
        for (size_t i = 0; i < sk->n_fields; i++)
            free(values[i]);
        free(values);
        return ROJ_OK;
    }
    return plan_add_task(job, step, item, slot, skill, values, sk->n_fields);
}

/* The skill of voter v: one per listed skill, or the only skill k
 * times. */
static size_t voter_skill(const swarm_step *s, uint32_t v)
{
    return s->n_skills > 1 ? s->skills[v % s->n_skills] : s->skills[0];
}

static roj_status item_start(plan_job *job, size_t step, size_t item)
{
    const swarm_step *s = &job->pipeline->steps[step];
    plan_item *it = &job->steps[step].items[item];
    if (s->cascade || s->vote <= 1)
        return task_create(job, step, item, 0, s->skills[0]);
    it->first_task = job->n_tasks;
    for (uint32_t v = 0; v < s->vote && !job->done; v++) {
        roj_status st = task_create(job, step, item, v, voter_skill(s, v));
        if (st)
            return st;
    }
    return ROJ_OK;
}

/* Splits the step's `over` text into its items. Sets *ok false when the
 * job failed. */
static roj_status map_items(plan_job *job, size_t step, bool *ok)
{
    const swarm_step *s = &job->pipeline->steps[step];
    plan_step_state *st = &job->steps[step];
    char where[256];
    snprintf(where, sizeof where, "step \"%s\" map.over", s->id);
    char *over = NULL, **texts = NULL;
    size_t n = 0;
    *ok = false;
    roj_status rc = plan_render(job, s->map_over, NULL, where, &over);
    if (rc || !over)
        return rc;
    rc = plan_split(job, step, over, &texts, &n);
    free(over);
    if (rc || !texts)
        return rc;
    st->items = calloc(n + 1, sizeof *st->items);
    if (!st->items) {
        for (size_t i = 0; i < n; i++)
            free(texts[i]);
        free(texts);
        return job_nomem(job);
    }
    for (size_t i = 0; i < n; i++)
        st->items[i].text = texts[i];
    free(texts);
    st->n_items = n;
    *ok = true;
    return ROJ_OK;
}

static roj_status step_finish(plan_job *job, size_t step, cJSON *result)
{
    if (!result)
        return job_nomem(job);
    job->steps[step].result = result;
    job->steps[step].status = STEP_DONE;
    return ROJ_OK;
}

static roj_status step_start(plan_job *job, size_t step)
{
    const swarm_step *s = &job->pipeline->steps[step];
    plan_step_state *st = &job->steps[step];
    st->status = STEP_RUNNING;

    /* Routing: a skipped step is done at once with empty fields. */
    if (!when_holds(job, s)) {
        st->skipped = true;
        return step_finish(job, step, plan_empty_fields(job->swarm, s));
    }

    /* Items: the split of `over`, or one item without text. */
    if (s->map) {
        bool ok;
        roj_status rc = map_items(job, step, &ok);
        if (rc || !ok)
            return rc;
        if (st->n_items == 0)
            return step_finish(job, step,
                               plan_reduce(job->swarm, s, NULL, 0));
    } else {
        st->items = calloc(1, sizeof *st->items);
        if (!st->items)
            return job_nomem(job);
        st->n_items = 1;
    }

    /* Subtasks: the first level of a cascade, every voter otherwise. */
    for (size_t i = 0; i < st->n_items && !job->done; i++) {
        roj_status rc = item_start(job, step, i);
        if (rc)
            return rc;
    }
    return ROJ_OK;
}

roj_status plan_advance(plan_job *job)
{
    const swarm_pipeline *p = job->pipeline;
    for (size_t i = 0; i < p->n_steps && !job->done; i++) {
        size_t step = p->order[i];
        if (job->steps[step].status != STEP_WAITING ||
            !deps_done(job, &p->steps[step]))
            continue;
        roj_status rc = step_start(job, step);
        if (rc)
            return rc;
    }
    if (job->done)
        return ROJ_OK;
    for (size_t i = 0; i < p->n_steps; i++)
        if (job->steps[i].status != STEP_DONE)
            return ROJ_OK;
    return plan_build_output(job);
}

/* Adds the cascade's skill name to fields; false when memory runs out. */
static bool add_skill_name(cJSON *fields, const swarm_skill *skill)
{
    return cJSON_AddStringToObject(fields, "skill", skill->name) != NULL;
}

/* Works out the fields of the item that task answered, or NULL in
 * *fields when the item waits for more answers (other voters, the next
 * cascade level). */
static roj_status item_answer(plan_job *job, size_t task, cJSON **fields)
{
    plan_subtask *t = &job->tasks[task];
    const swarm_step *s = &job->pipeline->steps[t->step];
    plan_item *it = &job->steps[t->step].items[t->item];
    const swarm_skill *sk = &job->swarm->skills[t->skill];
    *fields = NULL;

    if (s->cascade) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(t->result,
                                                          "confidence");
        if ((float)c->valuedouble < s->threshold &&
            t->slot + 1 < s->n_skills) {
            size_t step = t->step, item = t->item;
            uint32_t level = t->slot + 1;
            cJSON_Delete(t->result);
            t->result = NULL;
            it->level = level;
            return task_create(job, step, item, level, s->skills[level]);
        }
        *fields = plan_answer_fields(sk, t->result);
        if (*fields && !add_skill_name(*fields, sk)) {
            cJSON_Delete(*fields);
            *fields = NULL;
        }
    } else if (s->vote > 1) {
        if (++it->answered < s->vote)
            return ROJ_OK;
        *fields = plan_vote(job->swarm, s, &job->tasks[it->first_task],
                            s->vote);
        for (uint32_t v = 0; v < s->vote; v++) {
            cJSON_Delete(job->tasks[it->first_task + v].result);
            job->tasks[it->first_task + v].result = NULL;
        }
    } else {
        *fields = plan_answer_fields(sk, t->result);
    }
    cJSON_Delete(t->result);
    t->result = NULL;
    return *fields ? ROJ_OK : job_nomem(job);
}

roj_status plan_take_result(plan_job *job, size_t task)
{
    size_t step = job->tasks[task].step, item = job->tasks[task].item;
    cJSON *fields = NULL;
    roj_status rc = item_answer(job, task, &fields);
    if (rc || !fields)
        return rc;

    plan_step_state *st = &job->steps[step];
    st->items[item].result = fields;
    if (++st->items_done < st->n_items)
        return ROJ_OK;
    const swarm_step *s = &job->pipeline->steps[step];
    if (s->map) {
        rc = step_finish(job, step, plan_reduce(job->swarm, s, st->items,
                                                st->n_items));
    } else {
        rc = step_finish(job, step, fields);
        st->items[0].result = NULL;
    }
    if (rc)
        return rc;
    return plan_advance(job);
}
