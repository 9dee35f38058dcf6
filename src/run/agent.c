/* The agent process: see agent.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "run/agent.h"
#include "run/wire.h"

typedef struct agent {
    const agent_config *cfg;
    const agent_executor *ex;
    void *state;
    pthread_mutex_t send_lock;
    pthread_t beat_thread;
    volatile int stop_beats;
    double slow_factor;
} agent;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static roj_status send_locked(agent *a, wire_type type, const char *p,
                              size_t n)
{
    pthread_mutex_lock(&a->send_lock);
    roj_status st = wire_send(a->cfg->fd, type, p, n);
    pthread_mutex_unlock(&a->send_lock);
    return st;
}

static void *beat_main(void *arg)
{
    agent *a = arg;
    struct timespec ts = {a->cfg->heartbeat_ms / 1000,
                          (long)(a->cfg->heartbeat_ms % 1000) * 1000000L};
    while (!a->stop_beats) {
        if (send_locked(a, WIRE_HEARTBEAT, NULL, 0) != ROJ_OK)
            break;
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* ---- the model executor ---- */

static roj_status model_open(void *cfg, const swarm_file *swarm,
                             int32_t threads, void **state)
{
    (void)cfg;
    exec_engine *e;
    roj_status st = exec_open(swarm, threads, &e);
    if (st)
        return st;
    if ((st = exec_preload(e)) != ROJ_OK) {
        exec_close(e);
        return st;
    }
    *state = e;
    return ROJ_OK;
}

static roj_status model_run(void *state, const exec_task *tasks, size_t n,
                            exec_result *results)
{
    return exec_run(state, tasks, n, results);
}

static void model_close(void *state)
{
    exec_close(state);
}

const agent_executor agent_model_executor = {model_open, model_run,
                                             model_close, NULL};

/* ---- batches ---- */

typedef struct batch {
    exec_task *tasks;
    uint64_t *ids;
    const char **names, **values; /* per task slices */
    exec_result *results;
    size_t n;
} batch;

static void batch_free(batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        exec_result_clear(&b->results[i]);
    free(b->tasks);
    free(b->ids);
    free(b->names);
    free(b->values);
    free(b->results);
    memset(b, 0, sizeof *b);
}

/* Reads a TASKS payload into b; names and values point into root. */
static roj_status batch_parse(const cJSON *root, batch *b)
{
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(root, "tasks");
    if (!cJSON_IsArray(tasks))
        return roj_error(ROJ_ERR_FORMAT, "TASKS without a tasks array");
    size_t n = (size_t)cJSON_GetArraySize(tasks), n_fields = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, tasks) {
        const cJSON *in = cJSON_GetObjectItemCaseSensitive(t, "in");
        n_fields += (size_t)cJSON_GetArraySize(in);
    }
    b->tasks = calloc(n ? n : 1, sizeof *b->tasks);
    b->ids = calloc(n ? n : 1, sizeof *b->ids);
    b->results = calloc(n ? n : 1, sizeof *b->results);
    b->names = calloc(n_fields ? n_fields : 1, sizeof *b->names);
    b->values = calloc(n_fields ? n_fields : 1, sizeof *b->values);
    if (!b->tasks || !b->ids || !b->results || !b->names || !b->values)
        return roj_error(ROJ_ERR_NOMEM, "batch of %zu tasks", n);
    size_t i = 0, f = 0;
    cJSON_ArrayForEach(t, tasks) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(t, "id");
        const cJSON *skill = cJSON_GetObjectItemCaseSensitive(t, "skill");
        const cJSON *seed = cJSON_GetObjectItemCaseSensitive(t, "seed");
        const cJSON *in = cJSON_GetObjectItemCaseSensitive(t, "in");
        if (!cJSON_IsNumber(id) || !cJSON_IsNumber(skill) ||
            !cJSON_IsString(seed) || !cJSON_IsObject(in))
            return roj_error(ROJ_ERR_FORMAT, "task %zu is malformed", i);
        b->ids[i] = (uint64_t)id->valuedouble;
        b->tasks[i].skill = (size_t)skill->valuedouble;
        b->tasks[i].seed = strtoull(seed->valuestring, NULL, 10);
        b->tasks[i].names = b->names + f;
        b->tasks[i].values = b->values + f;
        const cJSON *v;
        cJSON_ArrayForEach(v, in) {
            if (!cJSON_IsString(v))
                return roj_error(ROJ_ERR_FORMAT, "task %zu: field %s is "
                                 "not a string", i, v->string);
            b->names[f] = v->string;
            b->values[f] = v->valuestring;
            f++;
        }
        b->tasks[i].n_fields = (size_t)(b->names + f - b->tasks[i].names);
        i++;
    }
    b->n = n;
    return ROJ_OK;
}

/* Sends the results of b; ms is the batch's execution time. */
static roj_status batch_reply(agent *a, const batch *b, double ms)
{
    size_t cap = 64;
    for (size_t i = 0; i < b->n; i++) {
        const exec_result *r = &b->results[i];
        cap += 96 + (r->json ? strlen(r->json) : 0) +
               (r->error ? 6 * strlen(r->error) : 0);
    }
    char *buf = malloc(cap);
    if (!buf)
        return roj_error(ROJ_ERR_NOMEM, "reply of %zu bytes", cap);
    size_t len = (size_t)snprintf(buf, cap, "{\"ms\":%.3f,\"results\":[", ms);
    for (size_t i = 0; i < b->n; i++) {
        const exec_result *r = &b->results[i];
        if (i)
            buf[len++] = ',';
        if (r->json) {
            len += (size_t)snprintf(buf + len, cap - len,
                                    "{\"id\":%" PRIu64 ",\"ok\":true,"
                                    "\"result\":%s}", b->ids[i], r->json);
            continue;
        }
        cJSON *e = cJSON_CreateString(r->error ? r->error
                                               : "no result and no error");
        char *es = e ? cJSON_PrintUnformatted(e) : NULL;
        len += (size_t)snprintf(buf + len, cap - len,
                                "{\"id\":%" PRIu64 ",\"ok\":false,"
                                "\"permanent\":%s,\"error\":%s}", b->ids[i],
                                r->permanent ? "true" : "false",
                                es ? es : "\"out of memory\"");
        cJSON_free(es);
        cJSON_Delete(e);
    }
    len += (size_t)snprintf(buf + len, cap - len, "]}");
    roj_status st = send_locked(a, WIRE_RESULT, buf, len);
    free(buf);
    return st;
}

static roj_status run_tasks(agent *a, const char *payload)
{
    cJSON *root = cJSON_Parse(payload);
    if (!root)
        return roj_error(ROJ_ERR_FORMAT, "TASKS payload is not JSON");
    batch b = {0};
    roj_status st = batch_parse(root, &b);
    if (st == ROJ_OK) {
        double t0 = now_ms();
        /* Runs of consecutive tasks of one skill go in one call. */
        for (size_t i = 0; i < b.n && st == ROJ_OK;) {
            size_t j = i + 1;
            while (j < b.n && b.tasks[j].skill == b.tasks[i].skill)
                j++;
            if (b.tasks[i].skill >= a->cfg->swarm->n_skills) {
                for (size_t k = i; k < j; k++)
                    b.results[k].error = strdup("unknown skill index");
            } else {
                st = a->ex->run(a->state, b.tasks + i, j - i,
                                b.results + i);
            }
            i = j;
        }
        double ms = now_ms() - t0;
        if (st == ROJ_OK && a->slow_factor > 1.0) {
            double extra = ms * (a->slow_factor - 1.0);
            long long us = (long long)(extra * 1e3);
            struct timespec ts = {(time_t)(us / 1000000),
                                  (long)(us % 1000000) * 1000L};
            nanosleep(&ts, NULL);
            ms *= a->slow_factor;
        }
        if (st == ROJ_OK)
            st = batch_reply(a, &b, ms);
    }
    batch_free(&b);
    cJSON_Delete(root);
    return st;
}

static void inject_fault(agent *a, const char *payload)
{
    cJSON *root = cJSON_Parse(payload);
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(root, "kind");
    const char *k = cJSON_IsString(kind) ? kind->valuestring : "";
    if (!strcmp(k, "hang")) {
        a->stop_beats = 1;
        raise(SIGSTOP);
    } else if (!strcmp(k, "crash")) {
        signal(SIGSEGV, SIG_DFL);
        raise(SIGSEGV);
    } else if (!strcmp(k, "abort")) {
        abort();
    } else if (!strcmp(k, "garbage")) {
        char junk[256];
        uint64_t x = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull;
        for (size_t i = 0; i < sizeof junk; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            junk[i] = (char)x;
        }
        pthread_mutex_lock(&a->send_lock);
        (void)!write(a->cfg->fd, junk, sizeof junk);
        pthread_mutex_unlock(&a->send_lock);
    } else if (!strcmp(k, "slow")) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(root, "factor");
        a->slow_factor = cJSON_IsNumber(f) ? f->valuedouble : 5.0;
    }
    cJSON_Delete(root);
}

static int serve(agent *a)
{
    wire_reader rd = {0};
    int status = 0;
    for (;;) {
        wire_type type;
        char *payload;
        size_t len;
        if (wire_recv(&rd, a->cfg->fd, -1, &type, &payload, &len)) {
            status = 3; /* the runner went away */
            break;
        }
        if (type == WIRE_STOP)
            break;
        if (type == WIRE_FAULT) {
            inject_fault(a, payload);
            continue;
        }
        if (type != WIRE_TASKS)
            continue;
        if (run_tasks(a, payload) != ROJ_OK) {
            char msg[600];
            cJSON *e = cJSON_CreateObject();
            snprintf(msg, sizeof msg, "agent %d: %s", a->cfg->index,
                     roj_last_error());
            cJSON_AddStringToObject(e, "error", msg);
            char *s = cJSON_PrintUnformatted(e);
            if (s)
                send_locked(a, WIRE_FAILED, s, strlen(s));
            cJSON_free(s);
            cJSON_Delete(e);
            status = 4;
            break;
        }
    }
    wire_reader_free(&rd);
    return status;
}

int agent_main(const agent_config *cfg)
{
    agent a = {.cfg = cfg, .slow_factor = 1.0};
    a.ex = cfg->executor ? cfg->executor : &agent_model_executor;
    pthread_mutex_init(&a.send_lock, NULL);
    /* The runner handles Ctrl-C for the whole swarm and tells agents to
     * stop; an agent outlives neither the runner nor its socket. */
    signal(SIGINT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    /* Handlers inherited from the runner's process (a stop flag for
     * SIGTERM, a test harness's crash handler) must not keep a broken
     * or stopped agent alive. */
    const int fatal_signals[] = {SIGTERM, SIGSEGV, SIGBUS, SIGFPE, SIGILL,
                                 SIGABRT, SIGHUP, SIGQUIT};
    for (size_t i = 0; i < sizeof fatal_signals / sizeof fatal_signals[0];
         i++)
        signal(fatal_signals[i], SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);

    if (pthread_create(&a.beat_thread, NULL, beat_main, &a) != 0)
        return 5;
    roj_status st = a.ex->open(a.ex->cfg, cfg->swarm, cfg->n_threads,
                               &a.state);
    int status;
    if (st) {
        char msg[700];
        snprintf(msg, sizeof msg, "agent %d could not load its models: %s",
                 cfg->index, roj_last_error());
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "error", msg);
        char *s = cJSON_PrintUnformatted(e);
        if (s)
            send_locked(&a, WIRE_FAILED, s, strlen(s));
        cJSON_free(s);
        cJSON_Delete(e);
        status = 2;
    } else {
        char ready[64];
        int n = snprintf(ready, sizeof ready, "{\"pid\":%ld}",
                         (long)getpid());
        status = send_locked(&a, WIRE_READY, ready, (size_t)n) ? 3
                                                               : serve(&a);
        a.ex->close(a.state);
    }
    a.stop_beats = 1;
    pthread_join(a.beat_thread, NULL);
    pthread_mutex_destroy(&a.send_lock);
    return status;
}
