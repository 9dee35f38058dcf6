/* Jobs of a run: admission from the input, subtasks from their plans,
 * results, output lines in input order, and the journal. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "core/sha256.h"
#include "run/run_internal.h"

/* ---- string map (open addressing, FNV-1a) ---- */

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static size_t slot_of(const cache_map *m, const char *key)
{
    size_t i = (size_t)fnv(key) & (m->cap - 1);
    while (m->keys[i] && strcmp(m->keys[i], key))
        i = (i + 1) & (m->cap - 1);
    return i;
}

roj_status cache_put(cache_map *m, const char *key, const char *value)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        cache_map g = {calloc(cap, sizeof(char *)), calloc(cap, sizeof(char *)),
                       cap, 0};
        if (!g.keys || !g.values) {
            free(g.keys);
            free(g.values);
            return roj_error(ROJ_ERR_NOMEM, "result cache of %zu", cap);
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->keys[i])
                continue;
            size_t j = slot_of(&g, m->keys[i]);
            g.keys[j] = m->keys[i];
            g.values[j] = m->values[i];
            g.n++;
        }
        free(m->keys);
        free(m->values);
        *m = g;
    }
    size_t i = slot_of(m, key);
    if (m->keys[i])
        return ROJ_OK; /* the first value stays */
    m->keys[i] = strdup(key);
    m->values[i] = strdup(value);
    if (!m->keys[i] || !m->values[i])
        return roj_error(ROJ_ERR_NOMEM, "result cache entry");
    m->n++;
    return ROJ_OK;
}

const char *cache_get(const cache_map *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    size_t i = slot_of(m, key);
    return m->keys[i] ? m->values[i] : NULL;
}

void cache_free(cache_map *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->keys[i]);
        free(m->values[i]);
    }
    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof *m);
}

static void cache_key(char *buf, size_t size, uint64_t job, const char *key)
{
    snprintf(buf, size, "%" PRIu64 "\x1f%s", job, key);
}

/* ---- opening: input, journal, output ---- */

static roj_status load_result(void *ctx, uint64_t job, const char *key,
                              const char *result_json)
{
    runner *r = ctx;
    char k[512];
    cache_key(k, sizeof k, job, key);
    return cache_put(&r->cache, k, result_json);
}

static roj_status load_job(void *ctx, uint64_t job, const char *id,
                           journal_job_status status, const char *line)
{
    runner *r = ctx;
    (void)id;
    (void)status;
    char k[32];
    snprintf(k, sizeof k, "%" PRIu64, job);
    return cache_put(&r->done_lines, k, line);
}

static roj_status open_output(runner *r, bool resumed, uint64_t out_bytes)
{
    const char *path = r->o->output_path;
    if (!strcmp(path, "-")) {
        if (resumed && out_bytes > 0)
            return roj_error(ROJ_ERR_INVALID_ARG, "the journal has output "
                             "written to a file; --output - cannot resume "
                             "it. Give the same --output file as before");
        r->out = stdout;
        r->out_stdout = true;
        return ROJ_OK;
    }
    if (!resumed) {
        r->out = fopen(path, "wb");
        if (!r->out)
            return roj_error(ROJ_ERR_IO, "output %s: %s", path,
                             strerror(errno));
        return ROJ_OK;
    }
    r->out = fopen(path, "r+b");
    if (!r->out && errno == ENOENT && out_bytes == 0)
        r->out = fopen(path, "wb");
    if (!r->out)
        return roj_error(ROJ_ERR_IO, "output %s: %s (the journal says %"
                         PRIu64 " bytes were written to it)", path,
                         strerror(errno), out_bytes);
    struct stat st;
    if (fstat(fileno(r->out), &st) != 0 || (uint64_t)st.st_size < out_bytes)
        return roj_error(ROJ_ERR_FORMAT, "output %s has %lld bytes, but the "
                         "journal says %" PRIu64 " were written: the file "
                         "was changed. Restore it, or delete the journal to "
                         "start over", path, (long long)st.st_size,
                         out_bytes);
    if (ftruncate(fileno(r->out), (off_t)out_bytes) != 0 ||
        fseeko(r->out, (off_t)out_bytes, SEEK_SET) != 0)
        return roj_error(ROJ_ERR_IO, "output %s: %s", path, strerror(errno));
    r->out_bytes = out_bytes;
    return ROJ_OK;
}

roj_status run_jobs_open(runner *r)
{
    char input_sha[65];
    roj_status st = run_input_open(r->o->input_path, r->pipe->inputs,
                                   r->pipe->n_inputs, &r->input, input_sha);
    if (st)
        return st;
    r->n_jobs = run_input_count(r->input);
    r->sum->jobs_total = r->n_jobs;
    bool resumed = false;
    uint64_t next_job = 0, out_bytes = 0;
    if (r->o->journal_path) {
        char swarm_sha[SHA256_HEX_SIZE];
        if ((st = sha256_file(r->o->swarm_path, swarm_sha)) != ROJ_OK)
            return st;
        journal_meta meta = {swarm_sha, input_sha, r->pipe->name,
                             r->o->output_path};
        if ((st = journal_open(r->o->journal_path, &meta, &resumed,
                               &r->jr)) != ROJ_OK)
            return st;
        if (resumed) {
            if ((st = journal_emitted(r->jr, &next_job, &out_bytes)) ||
                (st = journal_each_result(r->jr, next_job, load_result, r)) ||
                (st = journal_each_job(r->jr, next_job, load_job, r)))
                return st;
        }
    }
    if ((st = open_output(r, resumed, out_bytes)) != ROJ_OK)
        return st;
    r->next_admit = r->next_emit = next_job;
    r->sum->jobs_resumed = next_job;
    if (resumed)
        run_log(r, "resuming from journal %s: %" PRIu64 " of %" PRIu64
                " jobs already written, %zu results kept",
                r->o->journal_path, next_job, r->n_jobs, r->cache.n);
    r->ring = calloc(r->window, sizeof *r->ring);
    if (!r->ring)
        return roj_error(ROJ_ERR_NOMEM, "job window of %u", r->window);
    return ROJ_OK;
}

/* ---- jobs and their subtasks ---- */

static roj_status chunk_hook(void *ctx, size_t skill, const char *text,
                             size_t len, uint32_t tokens, size_t **ends,
                             size_t *n)
{
    (void)ctx;
    (void)skill;
    /* Approximate chunks at about 4 bytes per token, cut at spaces. */
    size_t step = (size_t)tokens * 4, cap = len / (step ? step : 1) + 2;
    size_t *e = malloc(cap * sizeof *e), k = 0, at = 0;
    if (!e)
        return roj_error(ROJ_ERR_NOMEM, "chunks");
    while (at < len && k + 1 < cap) {
        size_t cut = at + step >= len ? len : at + step;
        while (cut < len && cut > at + step / 2 && text[cut] != ' ')
            cut--;
        e[k++] = cut;
        at = cut;
    }
    if (k == 0 || e[k - 1] != len)
        e[k++] = len;
    *ends = e;
    *n = k;
    return ROJ_OK;
}

static roj_status job_add_sub(job_slot *j, sub *s)
{
    if (j->n_subs == j->cap_subs) {
        size_t cap = j->cap_subs ? j->cap_subs * 2 : 8;
        sub **ns = realloc(j->subs, cap * sizeof *ns);
        if (!ns)
            return roj_error(ROJ_ERR_NOMEM, "subtasks");
        j->subs = ns;
        j->cap_subs = cap;
    }
    j->subs[j->n_subs++] = s;
    return ROJ_OK;
}

static sub *sub_new(job_slot *j, const plan_task *t)
{
    sub *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->job = j;
    s->key = strdup(t->key);
    s->skill = t->skill;
    s->seed = t->seed;
    s->n_fields = t->n_fields;
    s->names = calloc(t->n_fields + 1, sizeof *s->names);
    s->values = calloc(t->n_fields + 1, sizeof *s->values);
    bool ok = s->key && s->names && s->values;
    for (size_t i = 0; ok && i < t->n_fields; i++) {
        s->names[i] = strdup(t->names[i]);
        s->values[i] = strdup(t->values[i]);
        ok = s->names[i] && s->values[i];
    }
    if (!ok) {
        s->job = NULL;
        run_sub_release(s);
        return NULL;
    }
    return s;
}

void run_sub_release(sub *s)
{
    if (s->job || s->queued || s->running)
        return;
    for (size_t i = 0; i < s->n_fields; i++) {
        free(s->names ? s->names[i] : NULL);
        free(s->values ? s->values[i] : NULL);
    }
    free(s->names);
    free(s->values);
    free(s->key);
    free(s->bad);
    free(s->errors);
    free(s);
}

static roj_status job_finish(runner *r, job_slot *j)
{
    char *line = NULL;
    roj_status st = plan_job_output(j->plan, &line);
    if (st)
        return st;
    j->finished = true;
    j->ok = !plan_job_failed(j->plan);
    j->line = line;
    if (j->ok)
        r->sum->jobs_ok++;
    else
        r->sum->jobs_failed++;
    if (r->jr)
        st = journal_put_job(r->jr, j->index, j->id,
                             j->ok ? JOURNAL_JOB_OK : JOURNAL_JOB_FAILED,
                             line);
    return st;
}

roj_status run_job_pump(runner *r, job_slot *j)
{
    plan_task tasks[32];
    for (;;) {
        if (plan_job_done(j->plan))
            break;
        size_t n = plan_job_ready(j->plan, tasks, 32);
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            char k[512];
            cache_key(k, sizeof k, j->index, tasks[i].key);
            const char *cached = cache_get(&r->cache, k);
            if (cached) {
                r->sum->subtasks_cached++;
                roj_status st = plan_job_result(j->plan, tasks[i].key,
                                                cached);
                if (st)
                    return st;
                continue;
            }
            sub *s = sub_new(j, &tasks[i]);
            if (!s)
                return roj_error(ROJ_ERR_NOMEM, "subtask");
            roj_status st = job_add_sub(j, s);
            if (st) {
                s->job = NULL;
                run_sub_release(s);
                return st;
            }
            run_queue_push(r, s, false);
        }
    }
    if (plan_job_done(j->plan) && !j->finished)
        return job_finish(r, j);
    return ROJ_OK;
}

static roj_status admit_one(runner *r, uint64_t index)
{
    char k[32];
    snprintf(k, sizeof k, "%" PRIu64, index);
    job_slot *j = calloc(1, sizeof *j);
    if (!j)
        return roj_error(ROJ_ERR_NOMEM, "job");
    j->index = index;
    j->started_ms = run_now_ms();
    r->ring[index % r->window] = j;
    r->active++;
    const char *line = cache_get(&r->done_lines, k);
    if (line) {
        /* Finished in an earlier run but not yet written out. */
        j->finished = true;
        j->line = strdup(line);
        j->ok = strstr(line, "\"ok\":true") != NULL;
        if (j->ok)
            r->sum->jobs_ok++;
        else
            r->sum->jobs_failed++;
        return j->line ? ROJ_OK : roj_error(ROJ_ERR_NOMEM, "job line");
    }
    char *fields = NULL;
    roj_status st = run_input_get(r->input, index, &j->id, &fields);
    if (st)
        return st;
    plan_hooks hooks = {chunk_hook, r};
    st = plan_job_new(r->swarm, (size_t)(r->pipe - r->swarm->pipelines),
                      index, j->id, fields, &hooks, &j->plan);
    free(fields);
    if (st)
        return st;
    return run_job_pump(r, j);
}

roj_status run_jobs_admit(runner *r)
{
    while (r->next_admit < r->n_jobs &&
           r->next_admit - r->next_emit < r->window) {
        roj_status st = admit_one(r, r->next_admit);
        if (st)
            return st;
        r->next_admit++;
    }
    return ROJ_OK;
}

roj_status run_sub_done(runner *r, sub *s, const char *result_json)
{
    s->state = SUB_DONE;
    job_slot *j = s->job;
    if (!j || j->finished)
        return ROJ_OK;
    roj_status st = ROJ_OK;
    if (r->jr)
        st = journal_put_result(r->jr, j->index, s->key,
                                r->swarm->skills[s->skill].name,
                                result_json);
    if (st == ROJ_OK)
        st = plan_job_result(j->plan, s->key, result_json);
    if (st == ROJ_OK)
        st = run_job_pump(r, j);
    return st;
}

void run_sub_failed(runner *r, sub *s, const char *why)
{
    s->state = SUB_FAILED;
    job_slot *j = s->job;
    if (!j || j->finished)
        return;
    char *msg = NULL;
    if (asprintf(&msg, "subtask %s (skill %s) failed: %s", s->key,
                 r->swarm->skills[s->skill].name, why) < 0)
        msg = NULL;
    plan_job_fail(j->plan, s->key, msg ? msg : why);
    free(msg);
    if (run_job_pump(r, j) != ROJ_OK) {
        r->fatal = true;
        snprintf(r->fatal_msg, sizeof r->fatal_msg, "%s", roj_last_error());
    }
}

static void job_free(job_slot *j)
{
    for (size_t i = 0; i < j->n_subs; i++) {
        j->subs[i]->job = NULL;
        run_sub_release(j->subs[i]);
    }
    free(j->subs);
    plan_job_free(j->plan);
    free(j->line);
    free(j->id);
    free(j);
}

roj_status run_jobs_emit(runner *r)
{
    while (r->next_emit < r->next_admit) {
        job_slot *j = r->ring[r->next_emit % r->window];
        if (!j || !j->finished)
            break;
        size_t len = strlen(j->line);
        if (fwrite(j->line, 1, len, r->out) != len ||
            fputc('\n', r->out) == EOF)
            return roj_error(ROJ_ERR_IO, "output %s: %s", r->o->output_path,
                             strerror(errno));
        r->out_bytes += len + 1;
        r->ring[r->next_emit % r->window] = NULL;
        r->next_emit++;
        r->active--;
        job_free(j);
        if (r->jr) {
            roj_status st = journal_set_emitted(r->jr, r->next_emit,
                                                r->out_bytes);
            if (st)
                return st;
        }
    }
    return ROJ_OK;
}

roj_status run_jobs_commit(runner *r, bool force)
{
    double now = run_now_ms();
    if (!force && now - r->last_commit_ms < 100.0)
        return ROJ_OK;
    r->last_commit_ms = now;
    /* The output bytes first, then the journal that counts them. */
    if (fflush(r->out) != 0)
        return roj_error(ROJ_ERR_IO, "output %s: %s", r->o->output_path,
                         strerror(errno));
    if (!r->jr)
        return ROJ_OK;
    if (!r->out_stdout)
        (void)fdatasync(fileno(r->out));
    return journal_commit(r->jr);
}

void run_jobs_deadlines(runner *r, double now)
{
    if (!r->o->job_timeout_ms)
        return;
    for (uint64_t i = r->next_emit; i < r->next_admit; i++) {
        job_slot *j = r->ring[i % r->window];
        if (!j || j->finished || !j->plan ||
            now - j->started_ms < r->o->job_timeout_ms)
            continue;
        char msg[160];
        snprintf(msg, sizeof msg, "the job's deadline of %u ms passed with "
                 "%zu subtasks unanswered", r->o->job_timeout_ms,
                 plan_job_pending(j->plan));
        plan_job_abort(j->plan, msg);
        if (job_finish(r, j) != ROJ_OK) {
            r->fatal = true;
            snprintf(r->fatal_msg, sizeof r->fatal_msg, "%s",
                     roj_last_error());
        }
    }
}

bool run_jobs_all_done(const runner *r)
{
    return r->next_emit >= r->n_jobs;
}

void run_jobs_close(runner *r)
{
    if (r->ring) {
        for (uint64_t i = r->next_emit; i < r->next_admit; i++) {
            job_slot *j = r->ring[i % r->window];
            if (j)
                job_free(j);
        }
        free(r->ring);
    }
    if (r->out && !r->out_stdout)
        fclose(r->out);
    else if (r->out)
        fflush(r->out);
    journal_close(r->jr);
    run_input_close(r->input);
    cache_free(&r->cache);
    cache_free(&r->done_lines);
}
