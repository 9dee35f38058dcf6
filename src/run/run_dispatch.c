/* Scheduling: the per-skill queues, batches sent to agents, their
 * results and hedged copies of slow subtasks. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "run/run_internal.h"

/* Weight of the newest sample in an agent's moving averages. */
#define EWMA_ALPHA 0.2
/* Latency samples a skill needs before its p95 triggers hedging. */
#define HEDGE_MIN_SAMPLES 20

void run_queue_push(runner *r, sub *s, bool front)
{
    skill_queue *q = &r->queues[s->skill];
    s->queued = true;
    s->queued_at = run_now_ms();
    s->qnext = NULL;
    if (!q->head) {
        q->head = q->tail = s;
    } else if (front) {
        s->qnext = q->head;
        q->head = s;
    } else {
        q->tail->qnext = s;
        q->tail = s;
    }
    q->n++;
}

/* Unlinks s, whose predecessor in q is prev (NULL: s is the head). */
static void queue_unlink(skill_queue *q, sub *prev, sub *s)
{
    if (prev)
        prev->qnext = s->qnext;
    else
        q->head = s->qnext;
    if (q->tail == s)
        q->tail = prev;
    s->qnext = NULL;
    s->queued = false;
    q->n--;
}

/* Whether s needs no more attempts: done, failed, or its job ended. */
static bool sub_settled(const sub *s)
{
    return s->state == SUB_DONE || s->state == SUB_FAILED || !s->job ||
           s->job->finished;
}

static bool failed_on(const sub *s, uint64_t gen)
{
    for (size_t i = 0; i < s->n_bad; i++)
        if (s->bad[i] == gen)
            return true;
    return false;
}

/* Expected time until a new subtask on a would finish: the subtasks it
 * has in flight times its moving average per subtask, inflated by its recent
 * failure rate so that failing agents get less work. */
static double agent_cost(const agent_slot *a)
{
    return (double)(a->n_tasks + 1) * a->ewma_ms * (1.0 + 4.0 * a->ewma_fail);
}

/* The ready agent with a free batch slot and the lowest cost that may
 * take s (not an agent it failed on, not the one running it already),
 * or NULL. */
static agent_slot *pick_agent(runner *r, const sub *s)
{
    agent_slot *best = NULL;
    double best_cost = INFINITY;
    for (uint32_t i = 0; i < r->n_agents; i++) {
        agent_slot *a = &r->agents[i];
        if (a->state != AG_READY || a->n_batches >= RUN_AGENT_DEPTH)
            continue;
        if (failed_on(s, a->gen) || (s->running > 0 && a->gen == s->running_gen))
            continue;
        double c = agent_cost(a);
        if (c < best_cost) {
            best_cost = c;
            best = a;
        }
    }
    return best;
}

static uint32_t free_slots(const runner *r)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->n_agents; i++) {
        const agent_slot *a = &r->agents[i];
        if (a->state == AG_READY && a->n_batches < RUN_AGENT_DEPTH)
            n += RUN_AGENT_DEPTH - (uint32_t)a->n_batches;
    }
    return n;
}

/* Drops settled subtasks from the front of q. */
static void queue_prune(skill_queue *q)
{
    sub *prev = NULL;
    for (sub *s = q->head; s;) {
        sub *next = s->qnext;
        if (sub_settled(s)) {
            queue_unlink(q, prev, s);
            run_sub_release(s);
        } else {
            prev = s;
        }
        s = next;
    }
}

/* The TASKS payload of a batch. */
static char *batch_payload(const runner *r, const run_batch *b)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *tasks = root ? cJSON_AddArrayToObject(root, "tasks") : NULL;
    bool ok = tasks != NULL;
    for (size_t i = 0; ok && i < b->n; i++) {
        const sub *s = b->at[i].s;
        cJSON *t = cJSON_CreateObject();
        ok = t && cJSON_AddItemToArray(tasks, t);
        if (!ok)
            break;
        char seed[24];
        snprintf(seed, sizeof seed, "%" PRIu64, s->seed);
        cJSON *in = cJSON_AddObjectToObject(t, "in");
        ok = cJSON_AddNumberToObject(t, "id", (double)b->at[i].id) &&
             cJSON_AddNumberToObject(t, "skill", (double)s->skill) &&
             cJSON_AddStringToObject(t, "seed", seed) && in;
        for (size_t f = 0; ok && f < s->n_fields; f++)
            ok = cJSON_AddStringToObject(in, s->names[f], s->values[f]) !=
                 NULL;
    }
    (void)r;
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return text;
}

/* Takes up to max subtasks that agent a may run from q into a new batch
 * and sends it. Returns false when nothing was sent. */
static bool send_batch(runner *r, agent_slot *a, size_t skill, size_t max)
{
    skill_queue *q = &r->queues[skill];
    run_batch *b = &a->batches[a->n_batches];
    memset(b, 0, sizeof *b);
    b->at = calloc(max, sizeof *b->at);
    if (!b->at)
        return false;
    b->skill = skill;
    double t0 = run_now_ms();
    sub *prev = NULL;
    for (sub *s = q->head; s && b->n < max;) {
        sub *next = s->qnext;
        bool eligible = !failed_on(s, a->gen) &&
                        !(s->running > 0 && a->gen == s->running_gen);
        /* A subtask whose batch died with its agent runs alone next, so
         * that a poisonous input is found out without taking others. */
        if (eligible && s->solo && b->n > 0)
            eligible = false;
        if (eligible) {
            queue_unlink(q, prev, s);
            b->at[b->n].id = ++r->next_attempt;
            b->at[b->n].s = s;
            b->at[b->n].hedge = s->running > 0;
            b->n++;
            if (s->solo)
                break;
        } else {
            prev = s;
        }
        s = next;
    }
    if (b->n == 0) {
        free(b->at);
        b->at = NULL;
        return false;
    }
    char *payload = batch_payload(r, b);
    roj_status st = payload ? wire_send(a->fd, WIRE_TASKS, payload,
                                        strlen(payload))
                            : roj_error(ROJ_ERR_NOMEM, "batch payload");
    free(payload);
    double sent = run_now_ms();
    for (size_t i = 0; i < b->n; i++) {
        sub *s = b->at[i].s;
        /* Recovery time: from the loss of its agent to running again. */
        if (s->failed_at > 0) {
            run_samples_add(&r->recover, sent - s->failed_at);
            s->failed_at = 0;
        }
        if (s->running == 0)
            s->running_gen = a->gen;
        s->running++;
        s->state = SUB_RUNNING;
        s->solo = false;
    }
    uint32_t timeout = r->swarm->skills[skill].timeout_ms;
    b->sent_ms = t0;
    b->n_left = b->n;
    /* The batch waits behind the subtasks the agent has in flight. */
    b->deadline_ms = t0 + (double)timeout * (double)(a->n_tasks + b->n);
    a->n_batches++;
    a->n_tasks += b->n;
    r->sum->batches++;
    double us = (run_now_ms() - t0) * 1e3 / (double)b->n;
    for (size_t i = 0; i < b->n; i++)
        run_samples_add(&r->sched_us, us);
    if (st != ROJ_OK)
        run_agent_lost(r, a, "closed its socket", false);
    return true;
}

void run_dispatch(runner *r)
{
    for (;;) {
        uint32_t slots = free_slots(r);
        if (slots == 0)
            return;
        bool sent = false;
        size_t n_skills = r->swarm->n_skills;
        for (size_t k = 0; k < n_skills; k++) {
            size_t skill = (r->rr + k) % n_skills;
            skill_queue *q = &r->queues[skill];
            queue_prune(q);
            if (!q->head)
                continue;
            agent_slot *a = pick_agent(r, q->head);
            if (!a)
                continue;
            /* Spread a short queue over the free slots instead of giving
             * it all to one agent. */
            size_t share = (q->n + slots - 1) / slots;
            size_t max = share < r->max_batch ? share : r->max_batch;
            if (max == 0)
                max = 1;
            if (send_batch(r, a, skill, max)) {
                sent = true;
                r->rr = (skill + 1) % n_skills;
                break;
            }
        }
        if (!sent)
            return;
    }
}

/* Finds the attempt id among a's batches. */
static run_attempt *find_attempt(agent_slot *a, uint64_t id, size_t *batch)
{
    for (size_t b = 0; b < a->n_batches; b++)
        for (size_t i = 0; i < a->batches[b].n; i++)
            if (a->batches[b].at[i].id == id) {
                *batch = b;
                return &a->batches[b].at[i];
            }
    return NULL;
}

static void batch_remove(agent_slot *a, size_t b)
{
    a->n_tasks -= a->batches[b].n;
    free(a->batches[b].at);
    for (size_t k = b; k + 1 < a->n_batches; k++)
        a->batches[k] = a->batches[k + 1];
    a->n_batches--;
    memset(&a->batches[a->n_batches], 0, sizeof a->batches[0]);
}

bool run_sub_count_failure(runner *r, sub *s, uint64_t gen, const char *msg)
{
    char *e = NULL;
    if (asprintf(&e, "%s%s%s", s->errors ? s->errors : "",
                 s->errors ? "; " : "", msg) >= 0) {
        free(s->errors);
        s->errors = e;
    }
    s->attempts++;
    r->sum->retries++;
    uint64_t *nb = realloc(s->bad, (s->n_bad + 1) * sizeof *nb);
    if (nb) {
        s->bad = nb;
        s->bad[s->n_bad++] = gen;
    }
    if (s->attempts < r->max_attempts)
        return false;
    run_sub_failed(r, s, s->errors ? s->errors : msg);
    return true;
}

/* Records a failed attempt of s on agent a that ran it. */
static void attempt_failed(runner *r, agent_slot *a, sub *s, bool permanent,
                           const char *error)
{
    char msg[700];
    snprintf(msg, sizeof msg, "agent %d: %.600s", a->index, error);
    if (permanent) {
        run_sub_failed(r, s, msg);
        return;
    }
    if (run_sub_count_failure(r, s, a->gen, msg))
        return;
    if (s->running == 0 && !s->queued) {
        s->state = SUB_QUEUED;
        r->sum->reassigned++;
        run_queue_push(r, s, true);
    }
}

/* Handles one element of a RESULT frame. */
static roj_status take_one(runner *r, agent_slot *a, const cJSON *item,
                           double batch_ms)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "id");
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(item, "ok");
    if (!cJSON_IsNumber(id) || !cJSON_IsBool(ok))
        return roj_error(ROJ_ERR_FORMAT, "a result without id or ok");
    size_t b;
    run_attempt *at = find_attempt(a, (uint64_t)id->valuedouble, &b);
    if (!at || at->answered)
        return roj_error(ROJ_ERR_FORMAT, "a result for attempt %.0f, which "
                         "the agent does not hold", id->valuedouble);
    run_batch *bt = &a->batches[b];
    at->answered = true;
    bt->n_left--;
    sub *s = at->s;
    s->running--;
    double now = run_now_ms();
    double per_task = batch_ms / (double)bt->n;
    roj_status st = ROJ_OK;
    if (cJSON_IsTrue(ok)) {
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(item, "result");
        if (!cJSON_IsObject(res))
            return roj_error(ROJ_ERR_FORMAT, "a successful result that is "
                             "not a JSON object");
        a->ewma_fail *= 1.0 - EWMA_ALPHA;
        if (!sub_settled(s)) {
            char *json = cJSON_PrintUnformatted(res);
            if (!json)
                return roj_error(ROJ_ERR_NOMEM, "result text");
            run_samples_add(&r->lat[bt->skill], now - bt->sent_ms);
            r->exec_ms[bt->skill] += per_task;
            r->sum->subtasks++;
            if (at->hedge)
                r->sum->hedge_wins++;
            if (r->jr)
                st = journal_put_attempt(r->jr, s->job->index, s->key,
                                         a->index, (long)a->pid, per_task,
                                         NULL);
            if (st == ROJ_OK)
                st = run_sub_done(r, s, json);
            free(json);
        }
    } else {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(item, "error");
        const cJSON *perm = cJSON_GetObjectItemCaseSensitive(item,
                                                             "permanent");
        const char *why = cJSON_IsString(err) ? err->valuestring
                                              : "failed without a message";
        a->ewma_fail = a->ewma_fail * (1.0 - EWMA_ALPHA) + EWMA_ALPHA;
        if (!sub_settled(s)) {
            if (r->jr)
                st = journal_put_attempt(r->jr, s->job->index, s->key,
                                         a->index, (long)a->pid, per_task,
                                         why);
            attempt_failed(r, a, s, cJSON_IsTrue(perm), why);
        }
    }
    run_sub_release(s);
    return st;
}

roj_status run_handle_result(runner *r, agent_slot *a, const char *payload)
{
    cJSON *root = cJSON_Parse(payload);
    if (!root)
        return roj_error(ROJ_ERR_FORMAT, "RESULT payload is not JSON");
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(root, "ms");
    const cJSON *results = cJSON_GetObjectItemCaseSensitive(root, "results");
    if (!cJSON_IsNumber(ms) || !cJSON_IsArray(results) ||
        cJSON_GetArraySize(results) == 0) {
        cJSON_Delete(root);
        return roj_error(ROJ_ERR_FORMAT, "RESULT payload without ms or "
                         "results");
    }
    /* Moving average of this agent's time per subtask, from the batch
     * these results belong to (the agent returns whole batches). */
    const cJSON *first = cJSON_GetArrayItem(results, 0);
    const cJSON *fid = cJSON_GetObjectItemCaseSensitive(first, "id");
    size_t b;
    run_attempt *fa = cJSON_IsNumber(fid)
                          ? find_attempt(a, (uint64_t)fid->valuedouble, &b)
                          : NULL;
    if (fa) {
        double per = (run_now_ms() - a->batches[b].sent_ms) /
                     (double)a->batches[b].n;
        a->ewma_ms = a->ewma_ms * (1.0 - EWMA_ALPHA) + per * EWMA_ALPHA;
    }
    roj_status st = ROJ_OK;
    const cJSON *item;
    cJSON_ArrayForEach(item, results) {
        if ((st = take_one(r, a, item, ms->valuedouble)) != ROJ_OK)
            break;
        if (a->fd < 0)
            break;
    }
    cJSON_Delete(root);
    for (size_t k = 0; k < a->n_batches;) {
        if (a->batches[k].n_left == 0)
            batch_remove(a, k);
        else
            k++;
    }
    return st;
}

void run_hedge(runner *r, double now)
{
    if (!r->o->hedge)
        return;
    for (uint32_t i = 0; i < r->n_agents; i++) {
        agent_slot *a = &r->agents[i];
        for (size_t b = 0; b < a->n_batches; b++) {
            run_batch *bt = &a->batches[b];
            sample_list *lat = &r->lat[bt->skill];
            if (lat->n < HEDGE_MIN_SAMPLES)
                continue;
            double p95 = run_samples_quantile(lat, 0.95);
            if (now - bt->sent_ms <= p95)
                continue;
            for (size_t k = 0; k < bt->n; k++) {
                run_attempt *at = &bt->at[k];
                sub *s = at->s;
                if (at->answered || s->hedged || s->queued ||
                    sub_settled(s))
                    continue;
                s->hedged = true;
                r->sum->hedged++;
                run_queue_push(r, s, true);
            }
        }
    }
}
