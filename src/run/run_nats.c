/* The runner's NATS transport: subtasks go to the cluster's work queues
 * (nats_proto.h) and their results come back through a watch of the
 * results bucket. Jobs, plans, output order and the optional journal are
 * the same code as with local agents (run_jobs.c). */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "core/sha256.h"
#include "run/nats_proto.h"
#include "run/run_internal.h"

/* A subtask without any result this long after it was published is
 * published again once under a new message id (its message may have
 * run out of deliveries with no record), and fails its job after a
 * second such wait. */
#define STALE_MS ((double)nproto_ack_wait_ms() * (NPROTO_MAX_DELIVER + 1) + \
                  10000.0)
/* How often the run status record and the agent count are refreshed. */
#define STATUS_EVERY_MS 1000.0

/* Subtasks published and without a result yet, by "JOB\x1fKEY". */
typedef struct out_map {
    char **keys;
    sub **subs;
    size_t cap, n;
} out_map;

typedef struct nats_run {
    runner *r;
    natsx_conn *conn;
    natsx_kv *results, *agents, *meta;
    natsx_watch *watch;
    nproto_names names;
    char run_id[17];
    char swarm_sha[SHA256_HEX_SIZE];  /* sent in every task message */
    out_map out;
    cache_map failed;  /* failure records of earlier runs, by JOB\x1fKEY */
    double last_status_ms;
    uint64_t agents_seen;
    bool agents_counted;  /* true once agents_seen is a count read from NATS */
} nats_run;

static uint64_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static size_t out_slot(const out_map *m, const char *key)
{
    size_t i = (size_t)hash_key(key) & (m->cap - 1);
    while (m->keys[i] && strcmp(m->keys[i], key))
        i = (i + 1) & (m->cap - 1);
    return i;
}

static roj_status out_put(out_map *m, const char *key, sub *s)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        out_map g = {calloc(cap, sizeof(char *)), calloc(cap, sizeof(sub *)),
                     cap, 0};
        if (!g.keys || !g.subs) {
            free(g.keys);
            free(g.subs);
            return roj_error(ROJ_ERR_NOMEM, "subtask index of %zu", cap);
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->keys[i])
                continue;
            size_t j = out_slot(&g, m->keys[i]);
            g.keys[j] = m->keys[i];
            g.subs[j] = m->subs[i];
            g.n++;
        }
        free(m->keys);
        free(m->subs);
        *m = g;
    }
    size_t i = out_slot(m, key);
    if (!m->keys[i]) {
        if (!(m->keys[i] = strdup(key)))
            return roj_error(ROJ_ERR_NOMEM, "subtask index entry");
        m->n++;
    }
    m->subs[i] = s;
    return ROJ_OK;
}

/* Removes key and returns its subtask, or NULL. The entries after it
 * in its probe sequence are inserted again so that lookups still find
 * them. */
static sub *out_take(out_map *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    size_t i = out_slot(m, key);
    if (!m->keys[i])
        return NULL;
    sub *s = m->subs[i];
    free(m->keys[i]);
    m->keys[i] = NULL;
    m->subs[i] = NULL;
    m->n--;
    for (size_t j = (i + 1) & (m->cap - 1); m->keys[j];
         j = (j + 1) & (m->cap - 1)) {
        char *k = m->keys[j];
        sub *v = m->subs[j];
        m->keys[j] = NULL;
        m->subs[j] = NULL;
        size_t t = out_slot(m, k);
        m->keys[t] = k;
        m->subs[t] = v;
    }
    return s;
}

static void out_free(out_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->subs);
    memset(m, 0, sizeof *m);
}

static void job_key(char *buf, size_t size, uint64_t job, const char *key)
{
    snprintf(buf, size, "%" PRIu64 "\x1f%s", job, key);
}

static double wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec * 1e3 + (double)tv.tv_usec / 1e3;
}

/* ---- results ---- */

/* Applies one result record to subtask s (NULL: not published by this
 * process; kept for when its job is admitted). */
static roj_status take_record(nats_run *n, const char *jk, sub *s,
                              const char *value, bool live)
{
    runner *r = n->r;
    cJSON *rec = cJSON_Parse(value);
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(rec, "ok");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(rec, "result");
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(rec, "error");
    roj_status st = ROJ_OK;
    if (cJSON_IsTrue(ok) && cJSON_IsObject(res)) {
        char *json = cJSON_PrintUnformatted(res);
        if (!json) {
            cJSON_Delete(rec);
            return roj_error(ROJ_ERR_NOMEM, "result text");
        }
        if (s) {
            double now = run_now_ms();
            run_samples_add(&r->lat[s->skill], now - s->queued_at);
            const cJSON *ms = cJSON_GetObjectItemCaseSensitive(rec, "ms");
            if (cJSON_IsNumber(ms))
                r->exec_ms[s->skill] += ms->valuedouble;
            if (live)
                r->sum->subtasks++;
            else
                r->sum->subtasks_cached++;
            s->running = 0;
            st = run_sub_done(r, s, json);
            run_sub_release(s);
        } else {
            st = cache_put(&r->cache, jk, json);
        }
        free(json);
    } else {
        const char *why = cJSON_IsString(err) ? err->valuestring
                                              : "a malformed result record";
        if (s) {
            s->running = 0;
            run_sub_failed(r, s, why);
            run_sub_release(s);
        } else {
            st = cache_put(&n->failed, jk, why);
        }
    }
    cJSON_Delete(rec);
    return st;
}

static roj_status take_change(nats_run *n, const natsx_change *c, bool live)
{
    if (c->kind != NATSX_CHANGE_PUT)
        return ROJ_OK;
    char run[17], key[NPROTO_NAME_MAX];
    uint64_t job;
    if (!nproto_result_key_parse(c->key, run, &job, key, sizeof key) ||
        strcmp(run, n->run_id) != 0)
        return ROJ_OK;
    char jk[NPROTO_NAME_MAX + 32];
    job_key(jk, sizeof jk, job, key);
    sub *s = out_take(&n->out, jk);
    return take_record(n, jk, s, c->value, live);
}

/* Reads the results already recorded for this run, so that finished
 * subtasks are not published again. */
static roj_status load_initial(nats_run *n)
{
    for (;;) {
        natsx_change c;
        roj_status st = natsx_watch_next(n->watch, 30000, &c);
        if (st)
            return st;
        if (c.kind == NATSX_CHANGE_END_OF_INITIAL)
            return ROJ_OK;
        if (c.kind == NATSX_CHANGE_NONE)
            return roj_error(ROJ_ERR_IO, "nats: the results bucket %s "
                             "sent no initial values in 30 s",
                             n->names.results);
        st = take_change(n, &c, false);
        natsx_change_clear(&c);
        if (st)
            return st;
    }
}

/* ---- publishing ---- */

static char *task_payload(const nats_run *n, const sub *s)
{
    cJSON *t = cJSON_CreateObject();
    cJSON *in = t ? cJSON_AddObjectToObject(t, "in") : NULL;
    char seed[24];
    snprintf(seed, sizeof seed, "%" PRIu64, s->seed);
    bool ok = in && cJSON_AddStringToObject(t, "run", n->run_id) &&
              cJSON_AddNumberToObject(t, "job", (double)s->job->index) &&
              cJSON_AddStringToObject(t, "key", s->key) &&
              cJSON_AddStringToObject(
                  t, "skill", n->r->swarm->skills[s->skill].name) &&
              cJSON_AddStringToObject(t, "seed", seed) &&
              cJSON_AddStringToObject(t, "swarm", n->swarm_sha);
    for (size_t f = 0; ok && f < s->n_fields; f++)
        ok = cJSON_AddStringToObject(in, s->names[f], s->values[f]) != NULL;
    char *text = ok ? cJSON_PrintUnformatted(t) : NULL;
    cJSON_Delete(t);
    return text;
}

static roj_status publish_sub(nats_run *n, sub *s, unsigned attempt)
{
    runner *r = n->r;
    char msg_id[NPROTO_NAME_MAX + 16], subject[NPROTO_NAME_MAX];
    if (!nproto_result_key(n->run_id, s->job->index, s->key, msg_id,
                           sizeof msg_id - 8))
        return roj_error(ROJ_ERR_INTERNAL, "subtask key %s does not fit a "
                         "NATS key", s->key);
    if (attempt > 0)
        snprintf(msg_id + strlen(msg_id), 8, ".r%u", attempt);
    nproto_task_subject(&n->names, r->swarm->skills[s->skill].name, subject,
                        sizeof subject);
    char *payload = task_payload(n, s);
    if (!payload)
        return roj_error(ROJ_ERR_NOMEM, "task message");
    double t0 = run_now_ms();
    roj_status st = natsx_publish(n->conn, subject, payload, strlen(payload),
                                  msg_id, 30000, NULL, NULL);
    free(payload);
    if (st)
        return st;
    run_samples_add(&r->sched_us, (run_now_ms() - t0) * 1e3);
    r->sum->batches++;
    return ROJ_OK;
}

/* Publishes every queued subtask, or settles it from a failure record
 * that an earlier run left. */
static roj_status publish_queued(nats_run *n)
{
    runner *r = n->r;
    for (size_t k = 0; k < r->swarm->n_skills; k++) {
        skill_queue *q = &r->queues[k];
        while (q->head) {
            sub *s = q->head;
            q->head = s->qnext;
            if (!q->head)
                q->tail = NULL;
            q->n--;
            s->qnext = NULL;
            s->queued = false;
            if (!s->job || s->job->finished) {
                run_sub_release(s);
                continue;
            }
            char jk[NPROTO_NAME_MAX + 32];
            job_key(jk, sizeof jk, s->job->index, s->key);
            const char *why = cache_get(&n->failed, jk);
            if (why) {
                run_sub_failed(r, s, why);
                run_sub_release(s);
                continue;
            }
            roj_status st = publish_sub(n, s, 0);
            if (st == ROJ_OK)
                st = out_put(&n->out, jk, s);
            if (st)
                return st;
            s->state = SUB_RUNNING;
            s->running = 1;
            s->queued_at = run_now_ms();
        }
    }
    return ROJ_OK;
}

/* Subtasks with no result for too long: published again once, then
 * failed. */
static roj_status check_stale(nats_run *n, double now)
{
    /* One log line per pass, because a run without agents republishes
     * every subtask at once. */
    size_t republished = 0;
    char first[NPROTO_NAME_MAX + 48] = "";
    roj_status st = ROJ_OK;
    for (size_t i = 0; i < n->out.cap; i++) {
        sub *s = n->out.subs[i];
        if (!s || now - s->queued_at < STALE_MS)
            continue;
        if (!s->job || s->job->finished) {
            char *k = strdup(n->out.keys[i]);
            if (!k)
                return roj_error(ROJ_ERR_NOMEM, "subtask index");
            out_take(&n->out, k);
            free(k);
            s->running = 0;
            run_sub_release(s);
            i = (size_t)-1; /* the table moved: scan again */
            continue;
        }
        if (s->attempts == 0) {
            s->attempts = 1;
            s->queued_at = now;
            n->r->sum->reassigned++;
            if (republished++ == 0)
                snprintf(first, sizeof first, "subtask %s of job %" PRIu64,
                         s->key, s->job->index);
            if ((st = publish_sub(n, s, 1)) != ROJ_OK)
                break;
            continue;
        }
        char *k = strdup(n->out.keys[i]);
        if (!k)
            return roj_error(ROJ_ERR_NOMEM, "subtask index");
        out_take(&n->out, k);
        free(k);
        s->running = 0;
        run_sub_failed(n->r, s, "no agent recorded a result, twice after "
                       "its deliveries ran out; check that roj agent "
                       "processes serve this skill (roj status)");
        run_sub_release(s);
        i = (size_t)-1;
    }
    if (republished > 0)
        run_log(n->r, "%zu subtasks (the first: %s) have no result after "
                "%.0f s; publishing them again", republished, first,
                STALE_MS / 1e3);
    return st;
}

/* ---- status ---- */

static void write_status(nats_run *n, bool force)
{
    runner *r = n->r;
    double now = run_now_ms();
    if (!force && now - n->last_status_ms < STATUS_EVERY_MS)
        return;
    n->last_status_ms = now;
    char **keys = NULL;
    size_t nk = 0;
    if (natsx_kv_keys(n->agents, NULL, &keys, &nk) == ROJ_OK) {
        /* Without this line a run whose agents all stopped (a changed
         * swarm file, kill -9) waits and logs nothing about why. */
        if (n->agents_seen > 0 && nk == 0 && !run_jobs_all_done(r))
            run_log(r, "no roj agent is registered for swarm %s any more; "
                    "jobs wait until agents start (roj agent %s --nats "
                    "URL, roj status)", n->names.swarm, r->o->swarm_path);
        else if (n->agents_seen == 0 && nk > 0 && n->agents_counted)
            run_log(r, "roj agents registered for swarm %s again: %zu",
                    n->names.swarm, nk);
        n->agents_seen = nk;
        n->agents_counted = true;
        natsx_keys_free(keys, nk);
    }
    cJSON *st = cJSON_CreateObject();
    cJSON *pending = st ? cJSON_AddObjectToObject(st, "pending") : NULL;
    if (!pending) {
        cJSON_Delete(st);
        return;
    }
    size_t *count = calloc(r->swarm->n_skills + 1, sizeof *count);
    for (size_t i = 0; count && i < n->out.cap; i++)
        if (n->out.subs[i])
            count[n->out.subs[i]->skill]++;
    for (size_t k = 0; count && k < r->swarm->n_skills; k++)
        cJSON_AddNumberToObject(pending, r->swarm->skills[k].name,
                                (double)count[k]);
    free(count);
    cJSON_AddStringToObject(st, "run", n->run_id);
    cJSON_AddStringToObject(st, "pipeline", r->pipe->name);
    cJSON_AddNumberToObject(st, "jobs_total", (double)r->n_jobs);
    cJSON_AddNumberToObject(st, "jobs_done", (double)r->next_emit);
    cJSON_AddNumberToObject(st, "jobs_failed", (double)r->sum->jobs_failed);
    cJSON_AddNumberToObject(st, "updated_ms", wall_ms());
    char *text = cJSON_PrintUnformatted(st);
    cJSON_Delete(st);
    if (!text)
        return;
    char key[64];
    snprintf(key, sizeof key, "run.%s", n->run_id);
    if (natsx_kv_put(n->meta, key, text, strlen(text), NULL) != ROJ_OK)
        run_log(r, "could not write the run status: %s", roj_last_error());
    free(text);
}

/* ---- the loop ---- */

/* Loop condition for calls that time out on a loaded cluster or one
 * that is electing leaders: true for the first try (i == 0) and, after an I/O
 * error, for up to 60 s of retries a second apart. */
static bool retry_io(runner *r, int i, roj_status *st)
{
    if (i == 0)
        return true;
    if (*st != ROJ_ERR_IO || i > 60 || (r->o->stop && *r->o->stop))
        return false;
    run_log(r, "%s; retrying", roj_last_error());
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
    return true;
}

static roj_status nats_start(nats_run *n)
{
    runner *r = n->r;
    const run_options *o = r->o;
    roj_status st = nproto_names_init(r->swarm, &n->names);
    if (st == ROJ_OK)
        st = natsx_connect(o->nats, &n->conn);
    if (st == ROJ_OK)
        st = nproto_setup(n->conn, r->swarm, &n->names,
                          o->nats_replicas > 0 ? o->nats_replicas : 1,
                          &n->results, &n->agents, &n->meta);
    if (st == ROJ_OK)
        st = sha256_file(o->swarm_path, n->swarm_sha);
    if (st == ROJ_OK)
        for (int i = 0; retry_io(r, i, &st); i++)
            st = nproto_check_swarm(n->meta, o->swarm_path, n->swarm_sha,
                                    true);
    if (st)
        return st;
    char input_sha[SHA256_HEX_SIZE];
    if ((st = sha256_file(o->input_path, input_sha)) != ROJ_OK)
        return st;
    nproto_run_id(n->swarm_sha, input_sha, r->pipe->name, n->run_id);
    memcpy(r->sum->run_id, n->run_id, sizeof n->run_id);
    char pattern[64];
    snprintf(pattern, sizeof pattern, "%s.>", n->run_id);
    for (int i = 0; retry_io(r, i, &st); i++) {
        natsx_watch_close(n->watch);
        n->watch = NULL;
        st = natsx_kv_watch(n->results, pattern, &n->watch);
        if (st == ROJ_OK)
            st = load_initial(n);
    }
    if (st)
        return st;
    char url[256];
    run_log(r, "run %s on %s: %zu results already recorded", n->run_id,
            natsx_connected_url(n->conn, url, sizeof url),
            r->cache.n + n->failed.n);
    write_status(n, true);
    if (n->agents_seen == 0)
        run_log(r, "no roj agent is registered for swarm %s yet; jobs wait "
                "until agents start (roj agent %s --nats URL)",
                n->names.swarm, o->swarm_path);
    return ROJ_OK;
}

static roj_status nats_loop(nats_run *n)
{
    runner *r = n->r;
    roj_status st = ROJ_OK;
    while (!run_jobs_all_done(r)) {
        if (r->o->stop && *r->o->stop) {
            r->sum->interrupted = true;
            return ROJ_ERR_ABORTED;
        }
        if (r->fatal)
            return roj_error(ROJ_ERR_IO, "%s", r->fatal_msg);
        if ((st = run_jobs_admit(r)) != ROJ_OK ||
            (st = publish_queued(n)) != ROJ_OK ||
            (st = run_jobs_emit(r)) != ROJ_OK)
            return st;
        if (run_jobs_all_done(r))
            break;
        /* Wait for one change, then take whatever else is there. */
        for (uint32_t wait = 50;; wait = 0) {
            natsx_change c;
            if ((st = natsx_watch_next(n->watch, wait ? wait : 1, &c)))
                return st;
            if (c.kind == NATSX_CHANGE_NONE)
                break;
            st = take_change(n, &c, true);
            natsx_change_clear(&c);
            if (st)
                return st;
        }
        double now = run_now_ms();
        run_jobs_deadlines(r, now);
        if ((st = check_stale(n, now)) != ROJ_OK ||
            (st = run_jobs_emit(r)) != ROJ_OK ||
            (st = run_jobs_commit(r, false)) != ROJ_OK)
            return st;
        write_status(n, false);
        run_progress(r, false);
    }
    return ROJ_OK;
}

uint32_t run_nats_agents(const runner *r)
{
    return r->nats ? (uint32_t)r->nats->agents_seen : 0;
}

roj_status run_nats(runner *r)
{
    nats_run n = {0};
    n.r = r;
    r->nats = &n;
    r->sum->remote = true;
    roj_status st = nats_start(&n);
    if (st == ROJ_OK)
        st = nats_loop(&n);
    if (n.meta && n.run_id[0]) {
        /* The status write must not replace the message of a failure. */
        char *why = st != ROJ_OK ? strdup(roj_last_error()) : NULL;
        write_status(&n, true);
        if (why)
            roj_error(st, "%s", why);
        free(why);
    }
    r->sum->agents_seen = n.agents_seen;
    /* Subtasks still out belong to the jobs run_jobs_close frees. */
    for (size_t i = 0; i < n.out.cap; i++) {
        if (n.out.subs[i]) {
            n.out.subs[i]->running = 0;
            run_sub_release(n.out.subs[i]);
        }
    }
    out_free(&n.out);
    cache_free(&n.failed);
    natsx_watch_close(n.watch);
    natsx_kv_close(n.results);
    natsx_kv_close(n.agents);
    natsx_kv_close(n.meta);
    natsx_close(n.conn);
    r->nats = NULL;
    return st;
}
