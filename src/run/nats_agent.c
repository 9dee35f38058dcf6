/* The worker of a swarm on NATS JetStream: see nats_agent.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "core/log.h"
#include "gguf/gguf.h"
#include "run/exec.h"
#include "run/nats_agent.h"
#include "run/nats_proto.h"

/* Delay of a negative acknowledgement after a retryable error, in ms. */
#define NAK_DELAY_MS 1000u
/* Maximum wait of one fetch, in ms, divided among the served skills. */
#define FETCH_WAIT_MS 200u
/* How long the bucket calls of one batch are retried, in ms, while the
 * server or a bucket's stream leader is away (a failover takes
 * seconds). A negative acknowledgement instead would spend one of the
 * subtask's deliveries, which are there to count agents that died. */
#define BUCKET_RETRY_MS 60000.0
/* Room for the headers of a result record beside its value, in bytes. */
#define RECORD_OVERHEAD 1024

typedef struct agent {
    const nagent_config *cfg;
    char name[128];
    char host[128];
    int64_t started_ms;      /* Unix epoch */
    uint32_t ack_wait_ms;
    size_t *skills;          /* indices of the served skills */
    size_t n_skills;

    natsx_conn *conn;
    natsx_kv *results, *agents, *meta;
    natsx_pull **pulls;      /* one per served skill */
    exec_engine *engine;     /* the models, without cfg->executor */
    void *ex_state;          /* cfg->executor's state */
    bool ex_open;            /* cfg->executor opened ex_state */
    cJSON *models;           /* the "models" array of the record */

    pthread_mutex_t mu;      /* guards everything below */
    pthread_cond_t wake;
    nagent_stats stats;
    uint64_t busy;           /* subtasks in the running batch */
    bool quit_helpers;
    bool stopping;           /* set by the heartbeat on a version change */
    char *version_error;     /* that message (malloc'd) */
    natsMsg **held;          /* messages kept alive while a batch runs;
                                NULL entries are answered */
    int n_held;
    double retry_until;      /* mono_ms() deadline of the batch's bucket
                                retries */
} agent;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(uint32_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits on a->wake for up to ms; a->mu must be held. */
static void wait_locked(agent *a, uint32_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&a->wake, &a->mu, &ts);
}

static bool should_stop(agent *a)
{
    pthread_mutex_lock(&a->mu);
    bool stop = a->stopping;
    pthread_mutex_unlock(&a->mu);
    return stop || (a->cfg->stop && *a->cfg->stop);
}

/* Copies text keeping letters, digits, '-' and '_' (others become
 * '-'), so the name is a valid KV key. */
static void name_clean(const char *text, char *buf, size_t size)
{
    size_t n = 0;
    for (; *text && n + 1 < size; text++) {
        char ch = *text;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
        buf[n++] = ok ? ch : '-';
    }
    buf[n] = '\0';
}

/* ---- the agent record ---- */

/* Adds the roj.valid.* metrics of a roj-trained model file, if any. */
static void model_add_valid(cJSON *model, const char *path)
{
    gguf_file *f = NULL;
    if (gguf_open(path, &f) != ROJ_OK)
        return;
    uint64_t examples = 0;
    float accuracy = 0, loss = 0;
    bool has_examples =
        gguf_get_u64(f, "roj.valid.examples", &examples) == ROJ_OK;
    bool has_accuracy =
        gguf_get_f32(f, "roj.valid.accuracy", &accuracy) == ROJ_OK;
    bool has_loss = gguf_get_f32(f, "roj.valid.loss", &loss) == ROJ_OK;
    if (has_examples || has_accuracy || has_loss) {
        cJSON *valid = cJSON_AddObjectToObject(model, "valid");
        if (has_examples)
            cJSON_AddNumberToObject(valid, "examples", (double)examples);
        if (has_accuracy)
            cJSON_AddNumberToObject(valid, "accuracy", accuracy);
        if (has_loss)
            cJSON_AddNumberToObject(valid, "loss", loss);
    }
    gguf_close(f);
}

/* Builds the "models" array: each model a served skill uses, once. */
static roj_status models_describe(agent *a)
{
    const swarm_file *sw = a->cfg->swarm;
    a->models = cJSON_CreateArray();
    if (!a->models)
        return roj_error(ROJ_ERR_NOMEM, "agent record");
    for (size_t m = 0; m < sw->n_models; m++) {
        bool used = false;
        for (size_t i = 0; i < a->n_skills && !used; i++)
            used = sw->skills[a->skills[i]].model == m;
        if (!used)
            continue;
        const swarm_model *sm = &sw->models[m];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(a->models, o);
        cJSON_AddStringToObject(o, "name", sm->name);
        if (sm->sha256)
            cJSON_AddStringToObject(o, "sha256", sm->sha256);
        else
            cJSON_AddNullToObject(o, "sha256");
        if (sm->task)
            cJSON_AddStringToObject(o, "task", sm->task);
        else
            cJSON_AddNullToObject(o, "task");
        model_add_valid(o, sm->path);
    }
    return ROJ_OK;
}

/* Writes the agent record with the current counters. */
static roj_status record_put(agent *a)
{
    const nagent_config *cfg = a->cfg;
    cJSON *r = cJSON_CreateObject();
    if (!r)
        return roj_error(ROJ_ERR_NOMEM, "agent record");
    cJSON_AddStringToObject(r, "name", a->name);
    cJSON_AddStringToObject(r, "host", a->host);
    cJSON_AddNumberToObject(r, "pid", (double)getpid());
    cJSON_AddStringToObject(r, "version", ROJ_VERSION_STRING);
    cJSON_AddStringToObject(r, "swarm_sha256", cfg->swarm_sha256);
    cJSON *skills = cJSON_AddArrayToObject(r, "skills");
    for (size_t i = 0; i < a->n_skills; i++)
        cJSON_AddItemToArray(skills, cJSON_CreateString(
            cfg->swarm->skills[a->skills[i]].name));
    cJSON_AddItemToObject(r, "models", cJSON_Duplicate(a->models, true));
    cJSON_AddNumberToObject(r, "capacity", cfg->batch);
    cJSON_AddNumberToObject(r, "threads", cfg->threads);
    cJSON_AddNumberToObject(r, "started_ms", (double)a->started_ms);
    cJSON_AddNumberToObject(r, "heartbeat_ms", (double)wall_ms());

    pthread_mutex_lock(&a->mu);
    nagent_stats s = a->stats;
    uint64_t busy = a->busy;
    pthread_mutex_unlock(&a->mu);
    cJSON_AddNumberToObject(r, "busy", (double)busy);
    cJSON_AddNumberToObject(r, "done", (double)s.done);
    cJSON_AddNumberToObject(r, "failed", (double)s.failed);
    cJSON_AddNumberToObject(r, "redelivered", (double)s.redelivered);
    cJSON_AddNumberToObject(r, "skipped", (double)s.skipped);

    char *text = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    if (!text)
        return roj_error(ROJ_ERR_NOMEM, "agent record");
    roj_status st = natsx_kv_put(a->agents, a->name, text, strlen(text),
                                 NULL);
    free(text);
    return st;
}

/* ---- helper threads ---- */

/* Refreshes the record and checks the swarm version every heartbeat. */
static void *heartbeat_main(void *arg)
{
    agent *a = arg;
    bool put_failing = false;
    pthread_mutex_lock(&a->mu);
    while (!a->quit_helpers) {
        wait_locked(a, NPROTO_HEARTBEAT_MS);
        if (a->quit_helpers)
            break;
        pthread_mutex_unlock(&a->mu);

        roj_status st = record_put(a);
        if (st != ROJ_OK && !put_failing)
            log_warn("agent %s: cannot refresh its record: %s", a->name,
                     roj_last_error());
        else if (st == ROJ_OK && put_failing)
            log_info("agent %s: record refreshed again", a->name);
        put_failing = st != ROJ_OK;

        st = nproto_check_swarm(a->meta, a->cfg->swarm_path,
                                a->cfg->swarm_sha256, false);
        pthread_mutex_lock(&a->mu);
        if (st == ROJ_ERR_INVALID_ARG && !a->stopping) {
            a->stopping = true;
            a->version_error = strdup(roj_last_error());
            log_error("agent %s: the swarm file changed on the cluster; "
                      "stopping: %s", a->name, roj_last_error());
        }
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* Sends "in progress" for the held messages at a third of AckWait. */
static void *keeper_main(void *arg)
{
    agent *a = arg;
    uint32_t period = a->ack_wait_ms / 3;
    pthread_mutex_lock(&a->mu);
    while (!a->quit_helpers) {
        wait_locked(a, period);
        for (int i = 0; i < a->n_held && !a->quit_helpers; i++)
            if (a->held[i] && natsx_msg_in_progress(a->held[i]) != ROJ_OK)
                log_warn("agent %s: in-progress signal failed: %s",
                         a->name, roj_last_error());
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

static void held_set(agent *a, natsMsg **msgs, int n)
{
    pthread_mutex_lock(&a->mu);
    a->held = msgs;
    a->n_held = n;
    a->busy = (uint64_t)n;
    pthread_mutex_unlock(&a->mu);
}

/* Stops sending "in progress" for a message that got its ack, nak or
 * term. */
static void held_drop(agent *a, natsMsg *msg)
{
    pthread_mutex_lock(&a->mu);
    for (int i = 0; i < a->n_held; i++)
        if (a->held[i] == msg)
            a->held[i] = NULL;
    pthread_mutex_unlock(&a->mu);
}

/* Returns whether a failed bucket call for a held message gets another
 * try, which it does until the batch's deadline or a stop request. Before
 * returning true it waits 50 ms, doubling up to 1 s. *tries counts the
 * retries so far, and the first one is logged. */
static bool bucket_retry(agent *a, const char *label, const char *what,
                         unsigned *tries)
{
    if (should_stop(a) || mono_ms() >= a->retry_until)
        return false;
    if (*tries == 0)
        log_warn("agent %s: subtask %s: failed to %s, retrying for up to "
                 "%.0f s: %s", a->name, label, what,
                 (a->retry_until - mono_ms()) / 1e3, roj_last_error());
    sleep_ms(*tries < 5 ? 50u << *tries : 1000u);
    (*tries)++;
    return true;
}

/* ---- one subtask ---- */

typedef struct item {
    natsMsg *msg;
    natsx_msg_info info;
    cJSON *doc;
    char key[NPROTO_NAME_MAX];   /* its result key */
    char label[NPROTO_NAME_MAX]; /* RUN.JOB.KEY for logs */
    const char **fields;         /* names then values of "in" (malloc'd),
                                    pointing into doc */
    exec_task task;
} item;

static void count(agent *a, uint64_t *counter)
{
    pthread_mutex_lock(&a->mu);
    (*counter)++;
    pthread_mutex_unlock(&a->mu);
}

/* Reads a task message into it; false (with a roj error) when it is
 * malformed. */
static bool item_parse(agent *a, size_t skill, item *it)
{
    const char *data = natsMsg_GetData(it->msg);
    int len = natsMsg_GetDataLength(it->msg);
    it->doc = cJSON_ParseWithLength(data ? data : "", (size_t)len);
    if (!cJSON_IsObject(it->doc)) {
        roj_error(ROJ_ERR_FORMAT, "not a JSON object");
        return false;
    }
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(it->doc, "run");
    const cJSON *job = cJSON_GetObjectItemCaseSensitive(it->doc, "job");
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(it->doc, "key");
    const cJSON *sk = cJSON_GetObjectItemCaseSensitive(it->doc, "skill");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(it->doc, "seed");
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(it->doc, "in");
    if (!cJSON_IsString(run) || strlen(run->valuestring) != 16 ||
        !cJSON_IsNumber(job) || job->valuedouble < 0 ||
        !cJSON_IsString(key) || !cJSON_IsString(sk) || !cJSON_IsObject(in)) {
        roj_error(ROJ_ERR_FORMAT, "run, job, key, skill or in is missing "
                  "or has the wrong type");
        return false;
    }
    const char *skill_name = a->cfg->swarm->skills[skill].name;
    if (strcmp(sk->valuestring, skill_name) != 0) {
        roj_error(ROJ_ERR_FORMAT, "skill \"%s\" arrived on the subject of "
                  "skill %s", sk->valuestring, skill_name);
        return false;
    }
    uint64_t job_id = (uint64_t)job->valuedouble;
    snprintf(it->label, sizeof it->label, "%s.%" PRIu64 ".%s",
             run->valuestring, job_id, key->valuestring);
    if (!nproto_result_key(run->valuestring, job_id, key->valuestring,
                           it->key, sizeof it->key)) {
        roj_error(ROJ_ERR_FORMAT, "key \"%s\" has a character a result "
                  "key cannot carry", key->valuestring);
        return false;
    }

    /* The seed is a decimal string (a JSON number loses 64-bit values);
     * a number is accepted too. */
    uint64_t seed_value = 0;
    if (cJSON_IsString(seed)) {
        char *end = NULL;
        errno = 0;
        seed_value = strtoull(seed->valuestring, &end, 10);
        if (errno || end == seed->valuestring || *end) {
            roj_error(ROJ_ERR_FORMAT, "seed \"%s\" is not a whole number",
                      seed->valuestring);
            return false;
        }
    } else if (cJSON_IsNumber(seed) && seed->valuedouble >= 0) {
        seed_value = (uint64_t)seed->valuedouble;
    } else {
        roj_error(ROJ_ERR_FORMAT, "seed is missing");
        return false;
    }

    size_t max = (size_t)cJSON_GetArraySize(in), n = 0;
    it->fields = calloc(2 * max + 1, sizeof *it->fields);
    if (!it->fields) {
        roj_error(ROJ_ERR_NOMEM, "%zu input fields", max);
        return false;
    }
    const char **names = it->fields, **values = it->fields + max;
    const cJSON *f;
    cJSON_ArrayForEach(f, in) {
        if (!cJSON_IsString(f)) {
            roj_error(ROJ_ERR_FORMAT, "input field %s is not a string",
                      f->string);
            return false;
        }
        names[n] = f->string;
        values[n] = f->valuestring;
        n++;
    }
    it->task = (exec_task){skill, names, values, n, seed_value};
    return true;
}

/* Writes a failure record. Returns false when it could not be written
 * (the caller then leaves the message for a redelivery). */
static bool record_failure(agent *a, item *it, const char *error)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddFalseToObject(r, "ok");
    cJSON_AddTrueToObject(r, "permanent");
    cJSON_AddStringToObject(r, "error", error);
    cJSON_AddStringToObject(r, "agent", a->name);
    char *text = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    natsx_kv_outcome out = NATSX_KV_EXISTS;
    roj_status st;
    unsigned tries = 0;
    do
        st = text ? natsx_kv_create(a->results, it->key, text, strlen(text),
                                    &out, NULL)
                  : roj_error(ROJ_ERR_NOMEM, "failure record");
    while (st != ROJ_OK && text &&
           bucket_retry(a, it->label, "write its failure record", &tries));
    free(text);
    if (st != ROJ_OK) {
        log_warn("agent %s: subtask %s: cannot write its failure record: "
                 "%s", a->name, it->label, roj_last_error());
        return false;
    }
    if (out == NATSX_KV_CREATED) {
        count(a, &a->stats.failed);
        log_warn("agent %s: subtask %s failed: %s", a->name, it->label,
                 error);
    } else {
        count(a, &a->stats.skipped);
    }
    return true;
}

static void answer_term(agent *a, item *it)
{
    held_drop(a, it->msg);
    if (natsx_msg_term(it->msg) != ROJ_OK)
        log_warn("agent %s: subtask %s: term failed: %s", a->name,
                 it->label, roj_last_error());
}

static void answer_nak(agent *a, item *it)
{
    held_drop(a, it->msg);
    if (natsx_msg_nak(it->msg, NAK_DELAY_MS) != ROJ_OK)
        log_warn("agent %s: subtask %s: nak failed: %s", a->name,
                 it->label, roj_last_error());
}

/* Records a success and acknowledges the message. */
static void answer_success(agent *a, item *it, const char *json, double ms)
{
    size_t size = strlen(json) + strlen(a->name) + 96;
    char *text = malloc(size);
    if (!text) {
        answer_nak(a, it);
        return;
    }
    int len = snprintf(text, size, "{\"ok\":true,\"result\":%s,"
                       "\"agent\":\"%s\",\"ms\":%.3f}", json, a->name, ms);
    /* A record over the server's limit fails the same way on every
     * agent, so it is a permanent failure, not a redelivery. */
    int64_t max = natsConnection_GetMaxPayload(natsx_connection(a->conn));
    if (max > 0 && (int64_t)len + RECORD_OVERHEAD > max) {
        free(text);
        char error[256];
        snprintf(error, sizeof error, "its result has %d bytes, more than "
                 "the server's max_payload of %" PRId64 " bytes allows; "
                 "raise max_payload in the nats-server configuration or "
                 "lower the skill's max_tokens", len, max);
        if (record_failure(a, it, error))
            answer_term(a, it);
        else
            answer_nak(a, it);
        return;
    }
    natsx_kv_outcome out = NATSX_KV_EXISTS;
    roj_status st;
    unsigned tries = 0;
    do
        st = natsx_kv_create(a->results, it->key, text, (size_t)len, &out,
                             NULL);
    while (st != ROJ_OK &&
           bucket_retry(a, it->label, "write its result", &tries));
    free(text);
    if (st != ROJ_OK) {
        log_warn("agent %s: subtask %s: cannot write its result: %s",
                 a->name, it->label, roj_last_error());
        answer_nak(a, it);
        return;
    }
    if (tries > 0)
        log_info("agent %s: subtask %s: result written after %u retries",
                 a->name, it->label, tries);
    count(a, out == NATSX_KV_CREATED ? &a->stats.done : &a->stats.skipped);
    held_drop(a, it->msg);
    if (natsx_msg_ack(it->msg) != ROJ_OK)
        log_warn("agent %s: subtask %s: ack failed: %s", a->name,
                 it->label, roj_last_error());
}

/* Records one computed subtask and acknowledges, terminates or
 * redelivers its message, by the result. */
static void answer_result(agent *a, item *it, const exec_result *r,
                          double ms)
{
    if (r->json) {
        answer_success(a, it, r->json, ms);
    } else if (r->permanent ||
               it->info.delivered + 1 >= NPROTO_MAX_DELIVER) {
        if (record_failure(a, it, r->error ? r->error : "failed"))
            answer_term(a, it);
        else
            answer_nak(a, it);
    } else {
        log_info("agent %s: subtask %s: retryable error, asking for a "
                 "redelivery: %s", a->name, it->label,
                 r->error ? r->error : "?");
        answer_nak(a, it);
    }
}

/* ---- one batch ---- */

/* Sorts out the messages that need no run (malformed, recorded, or at
 * their last delivery). Returns false for an item that must not run. */
static bool item_triage(agent *a, size_t skill, item *it)
{
    if (natsx_msg_info_get(it->msg, &it->info) != ROJ_OK) {
        log_warn("agent %s: a message without delivery facts: %s",
                 a->name, roj_last_error());
        it->info.delivered = 1;
    }
    if (it->info.delivered > 1)
        count(a, &a->stats.redelivered);
    if (!item_parse(a, skill, it)) {
        log_error("agent %s: malformed task message (stream sequence %"
                  PRIu64 ") terminated: %s", a->name, it->info.stream_seq,
                  roj_last_error());
        count(a, &a->stats.malformed);
        answer_term(a, it);
        return false;
    }
    /* A task of another swarm file version goes back to the queue
     * before it runs: the heartbeat finds a changed file only up to a
     * second later, and results of the old file would be recorded for
     * the new run. Older submitters send no "swarm" field. */
    const cJSON *swarm = cJSON_GetObjectItemCaseSensitive(it->doc, "swarm");
    if (cJSON_IsString(swarm) &&
        strcmp(swarm->valuestring, a->cfg->swarm_sha256) != 0) {
        answer_nak(a, it);
        pthread_mutex_lock(&a->mu);
        if (!a->stopping) {
            a->stopping = true;
            roj_error(ROJ_ERR_INVALID_ARG, "swarm file %s (sha256 %.16s...) "
                      "is not the version of the tasks it receives (sha256 "
                      "%.16s...): start the agent with the swarm file that "
                      "roj run uses", a->cfg->swarm_path,
                      a->cfg->swarm_sha256, swarm->valuestring);
            a->version_error = strdup(roj_last_error());
            log_error("agent %s: the swarm file changed on the cluster; "
                      "stopping: %s", a->name, roj_last_error());
        }
        pthread_mutex_unlock(&a->mu);
        return false;
    }
    /* Only a redelivery looks for a recorded result first. On a first
     * delivery the record's create-if-absent still keeps one result, so
     * the rare duplicate copy costs a recomputation, while every other
     * subtask saves a round trip to the server. */
    bool found = false;
    roj_status st = ROJ_OK;
    unsigned tries = 0;
    if (it->info.delivered > 1)
        do
            st = natsx_kv_get(a->results, it->key, &found, NULL, NULL,
                              NULL);
        while (st != ROJ_OK &&
               bucket_retry(a, it->label, "read the results bucket",
                            &tries));
    if (st != ROJ_OK) {
        log_warn("agent %s: subtask %s: cannot read the results bucket: "
                 "%s", a->name, it->label, roj_last_error());
        answer_nak(a, it);
        return false;
    }
    if (found) {
        count(a, &a->stats.skipped);
        held_drop(a, it->msg);
        if (natsx_msg_ack(it->msg) != ROJ_OK)
            log_warn("agent %s: subtask %s: ack failed: %s", a->name,
                     it->label, roj_last_error());
        return false;
    }
    if (it->info.delivered >= NPROTO_MAX_DELIVER) {
        char error[160];
        snprintf(error, sizeof error, "no agent finished it in %d "
                 "deliveries (the agents holding it died or hung)",
                 (int)it->info.delivered - 1);
        if (record_failure(a, it, error))
            answer_term(a, it);
        else
            answer_nak(a, it);
        return false;
    }
    return true;
}

/* Handles the messages of one fetch from the consumer of skill. */
static roj_status batch_process(agent *a, size_t skill, natsx_batch *b)
{
    const swarm_skill *sk = &a->cfg->swarm->skills[skill];
    size_t n = (size_t)b->n;
    item *items = calloc(n, sizeof *items);
    exec_task *tasks = calloc(n, sizeof *tasks);
    exec_result *results = calloc(n, sizeof *results);
    item **run = calloc(n, sizeof *run);
    natsMsg **held = calloc(n, sizeof *held);
    roj_status st = ROJ_OK;
    if (!items || !tasks || !results || !run || !held) {
        st = roj_error(ROJ_ERR_NOMEM, "batch of %zu messages", n);
        for (size_t i = 0; i < n; i++)
            natsx_msg_nak(b->msgs[i], NAK_DELAY_MS);
        goto done;
    }

    /* Every message is kept alive until its ack, nak or term, also
     * while a bucket call waits out a failover. */
    for (size_t i = 0; i < n; i++)
        held[i] = b->msgs[i];
    held_set(a, held, (int)n);
    a->retry_until = mono_ms() + BUCKET_RETRY_MS;

    /* Triage: only subtasks without a record run. */
    size_t n_run = 0;
    for (size_t i = 0; i < n; i++) {
        items[i].msg = b->msgs[i];
        if (!item_triage(a, skill, &items[i]))
            continue;
        run[n_run] = &items[i];
        tasks[n_run] = items[i].task;
        n_run++;
    }
    if (n_run == 0)
        goto done;

    double t0 = mono_ms();
    st = a->cfg->executor
             ? a->cfg->executor->run(a->ex_state, tasks, n_run, results)
             : exec_run(a->engine, tasks, n_run, results);
    double ms = (mono_ms() - t0) / (double)n_run;
    if (st != ROJ_OK) {
        log_error("agent %s: the executor failed on a batch of skill %s: "
                  "%s", a->name, sk->name, roj_last_error());
        for (size_t i = 0; i < n_run; i++)
            answer_nak(a, run[i]);
        goto done;
    }

    /* Answer each subtask. */
    for (size_t i = 0; i < n_run; i++)
        answer_result(a, run[i], &results[i], ms);

done:
    held_set(a, NULL, 0);
    for (size_t i = 0; results && i < n; i++)
        exec_result_clear(&results[i]);
    for (size_t i = 0; items && i < n; i++) {
        cJSON_Delete(items[i].doc);
        free(items[i].fields);
    }
    free(items);
    free(tasks);
    free(results);
    free(run);
    free(held);
    return st;
}

/* ---- setup and the loop ---- */

static roj_status skills_pick(agent *a)
{
    const nagent_config *cfg = a->cfg;
    const swarm_file *sw = cfg->swarm;
    size_t n = cfg->skills ? cfg->n_skills : sw->n_skills;
    a->skills = calloc(n ? n : 1, sizeof *a->skills);
    if (!a->skills)
        return roj_error(ROJ_ERR_NOMEM, "skills");
    for (size_t i = 0; i < n; i++) {
        if (!cfg->skills) {
            a->skills[a->n_skills++] = i;
            continue;
        }
        long s = swarm_find_skill(sw, cfg->skills[i]);
        if (s < 0)
            return roj_error(ROJ_ERR_INVALID_ARG, "skill %s: %s has no "
                             "such skill", cfg->skills[i], cfg->swarm_path);
        bool seen = false;
        for (size_t j = 0; j < a->n_skills; j++)
            seen = seen || a->skills[j] == (size_t)s;
        if (!seen)
            a->skills[a->n_skills++] = (size_t)s;
    }
    if (a->n_skills == 0)
        return roj_error(ROJ_ERR_INVALID_ARG, "%s has no skill to serve",
                         cfg->swarm_path);
    return ROJ_OK;
}

/* Connects, sets up, checks the version and opens what the loop needs. */
static roj_status agent_open(agent *a)
{
    const nagent_config *cfg = a->cfg;
    nproto_names names;
    roj_status st;
    if ((st = skills_pick(a)) || (st = nproto_names_init(cfg->swarm,
                                                        &names)))
        return st;
    natsx_options opt = cfg->nats;
    if (!opt.name)
        opt.name = a->name;
    if ((st = natsx_connect(&opt, &a->conn)) ||
        (st = nproto_setup(a->conn, cfg->swarm, &names,
                           cfg->replicas > 0 ? cfg->replicas : 1,
                           &a->results, &a->agents, &a->meta)))
        return st;
    const double start = nproto_now_ms();
    unsigned delay = 0;
    do
        st = nproto_check_swarm(a->meta, cfg->swarm_path, cfg->swarm_sha256,
                                false);
    while (nproto_retry(st, start, &delay));
    if (st)
        return st;
    a->pulls = calloc(a->n_skills, sizeof *a->pulls);
    if (!a->pulls)
        return roj_error(ROJ_ERR_NOMEM, "pull subscriptions");
    for (size_t i = 0; i < a->n_skills; i++) {
        do
            st = natsx_pull_bind(a->conn, names.stream,
                                 cfg->swarm->skills[a->skills[i]].name,
                                 &a->pulls[i]);
        while (nproto_retry(st, start, &delay));
        if (st)
            return st;
    }
    int32_t threads = cfg->threads > 0 ? cfg->threads : 1;
    if (cfg->executor) {
        const agent_executor *ex = cfg->executor;
        if ((st = ex->open(ex->cfg, cfg->swarm, threads, &a->ex_state)))
            return st;
        a->ex_open = true;
    } else if ((st = exec_open(cfg->swarm, threads, &a->engine)) ||
               (st = exec_preload(a->engine))) {
        return st;
    }
    if ((st = models_describe(a)))
        return st;

    bool found = false;
    if (natsx_kv_get(a->agents, a->name, &found, NULL, NULL, NULL) ==
            ROJ_OK && found)
        log_warn("agent %s: a record with this name exists (an earlier "
                 "run, or another live agent); overwriting it", a->name);
    return record_put(a);
}

static void agent_close(agent *a)
{
    for (size_t i = 0; a->pulls && i < a->n_skills; i++)
        natsx_pull_close(a->pulls[i]);
    free(a->pulls);
    natsx_kv_close(a->results);
    natsx_kv_close(a->agents);
    natsx_kv_close(a->meta);
    natsx_close(a->conn);
    exec_close(a->engine);
    if (a->ex_open)
        a->cfg->executor->close(a->ex_state);
    cJSON_Delete(a->models);
    free(a->skills);
    free(a->version_error);
}

/* Pulls and processes subtasks until a stop; ROJ_OK unless the
 * executor failed. */
static roj_status agent_loop(agent *a)
{
    uint32_t wait = FETCH_WAIT_MS / (uint32_t)a->n_skills;
    if (wait < 20)
        wait = 20;
    uint32_t batch = a->cfg->batch ? a->cfg->batch : 16;
    bool fetch_failing = false;
    while (!should_stop(a)) {
        for (size_t i = 0; i < a->n_skills && !should_stop(a); i++) {
            natsx_batch b = {0};
            roj_status st = natsx_fetch(a->pulls[i], (int)batch, wait, &b);
            if (st != ROJ_OK) {
                if (!fetch_failing)
                    log_warn("agent %s: fetch failed, retrying: %s",
                             a->name, roj_last_error());
                fetch_failing = true;
                sleep_ms(wait);
                continue;
            }
            fetch_failing = false;
            if (b.n > 0)
                st = batch_process(a, a->skills[i], &b);
            natsx_batch_free(&b);
            if (st != ROJ_OK)
                return st;
        }
    }
    return ROJ_OK;
}

roj_status nagent_run(const nagent_config *cfg, nagent_stats *stats)
{
    agent a = {0};
    a.cfg = cfg;
    a.started_ms = wall_ms();
    a.ack_wait_ms = nproto_ack_wait_ms();
    if (gethostname(a.host, sizeof a.host) != 0)
        snprintf(a.host, sizeof a.host, "unknown");
    a.host[sizeof a.host - 1] = '\0';
    if (cfg->name) {
        name_clean(cfg->name, a.name, sizeof a.name);
    } else {
        char raw[200];
        snprintf(raw, sizeof raw, "%.100s-%ld", a.host, (long)getpid());
        name_clean(raw, a.name, sizeof a.name);
    }
    if (!a.name[0])
        return roj_error(ROJ_ERR_INVALID_ARG, "agent name \"%s\" has no "
                         "letter or digit", cfg->name ? cfg->name : "");
    pthread_mutex_init(&a.mu, NULL);
    pthread_cond_init(&a.wake, NULL);

    pthread_t beat, keeper;
    bool threads = false;
    roj_status st = agent_open(&a);
    if (st == ROJ_OK) {
        threads = pthread_create(&beat, NULL, heartbeat_main, &a) == 0;
        if (threads && pthread_create(&keeper, NULL, keeper_main, &a)) {
            pthread_mutex_lock(&a.mu);
            a.quit_helpers = true;
            pthread_mutex_unlock(&a.mu);
            pthread_join(beat, NULL);
            threads = false;
        }
        if (!threads)
            st = roj_error(ROJ_ERR_NOMEM, "cannot start the agent's "
                           "threads");
    }
    if (st == ROJ_OK) {
        log_info("agent %s: serving %zu skills of %s", a.name, a.n_skills,
                 cfg->swarm_path);
        st = agent_loop(&a);
    }

    /* Stop the helpers before the record goes, so none rewrites it. */
    if (threads) {
        pthread_mutex_lock(&a.mu);
        a.quit_helpers = true;
        pthread_cond_broadcast(&a.wake);
        pthread_mutex_unlock(&a.mu);
        pthread_join(beat, NULL);
        pthread_join(keeper, NULL);
    }
    if (a.agents && natsx_kv_delete(a.agents, a.name) != ROJ_OK)
        log_warn("agent %s: cannot delete its record (it expires in %u "
                 "s): %s", a.name, NPROTO_AGENT_TTL_MS / 1000,
                 roj_last_error());
    if (st == ROJ_OK && a.version_error)
        st = roj_error(ROJ_ERR_INVALID_ARG, "%s", a.version_error);
    if (stats)
        *stats = a.stats;
    agent_close(&a);
    pthread_cond_destroy(&a.wake);
    pthread_mutex_destroy(&a.mu);
    return st;
}
