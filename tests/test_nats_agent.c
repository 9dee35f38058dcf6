/* `roj agent` and `roj status` against a real nats-server on 127.0.0.1,
 * with a seeded random model. The test publishes task messages itself,
 * as the submitter of src/run/nats_proto.h does, and checks the results
 * bucket, the agent records and the agents' exit statuses. */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/sha256.h"
#include "model/synth.h"
#include "nats_server.h"
#include "run/exec.h"
#include "run/nats_proto.h"
#include "swarm/swarm.h"

/* AckWait of the skill consumers in this test, in ms. */
#define ACK_WAIT_MS 1500
#define ACK_WAIT_TEXT "1500"

static const char SWARM_YAML[] =
    "version: 1\n"
    "name: tiny\n"
    "models:\n"
    "  m: {path: models/base.gguf}\n"
    "skills:\n"
    "  topic:\n"
    "    model: m\n"
    "    prompt: \"Ticket: {text}\\nTopic:\"\n"
    "    output: {choice: [billing, shipping, login, other]}\n"
    "    sampling: {temperature: 0.8, seed: 3}\n"
    "  first:\n"
    "    model: m\n"
    "    prompt: \"Ticket: {text}\\nName:\"\n"
    "    output: {span: {slot: name}}\n"
    "  reply:\n"
    "    model: m\n"
    "    prompt: \"Ticket about {topic}: {text}\\nReply:\"\n"
    "    output: {text: {max_tokens: 4}}\n"
    "    sampling: {temperature: 0.9, seed: 11}\n"
    "pipelines:\n"
    "  triage:\n"
    "    input: [text]\n"
    "    steps:\n"
    "      - id: topic\n"
    "        skill: topic\n"
    "      - id: name\n"
    "        skill: first\n"
    "      - id: reply\n"
    "        skill: reply\n"
    "        input: {topic: \"{topic.label}\"}\n"
    "    output:\n"
    "      topic: \"{topic.label}\"\n"
    "      name: \"{name.text}\"\n"
    "      reply: \"{reply.text}\"\n";

static nts_server server;
static char dir[512], swarm_path[600];
static swarm_file *swarm;
static nproto_names names;
static natsx_conn *conn;
static natsx_kv *results, *agents, *meta;

/* Agents this test started, killed by the teardown of each test. */
static pid_t pids[16];
static int n_pids;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}


/* Starts roj with args (NULL-terminated), output to log_path. */
static pid_t start_roj(const char *const *args, const char *log_path)
{
    pid_t pid = test_roj_start(args, log_path, NULL, 0);
    if (n_pids < 16)
        pids[n_pids++] = pid;
    return pid;
}

static void log_path_of(const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s.log", dir, name);
}

/* Starts `roj agent` named name on a swarm file, serving skills (NULL:
 * every skill). */
static pid_t start_agent_on(const char *name, const char *swarm_file_path,
                            const char *skills)
{
    char log[700];
    log_path_of(name, log, sizeof log);
    const char *args[] = {"agent", swarm_file_path, "--nats", server.url,
                          "--name", name, "--batch", "4",
                          skills ? "--skills" : NULL, skills, NULL};
    return start_roj(args, log);
}

static pid_t start_agent(const char *name, const char *swarm_file_path)
{
    return start_agent_on(name, swarm_file_path, NULL);
}

/* Waits up to timeout_ms for pid to exit; returns its exit status, or
 * 128 + signal. Kills it and fails when it does not exit. */
static int wait_exit(pid_t pid, int timeout_ms)
{
    int status = test_roj_wait(pid, timeout_ms);
    for (int i = 0; i < n_pids; i++)
        if (pids[i] == pid)
            pids[i] = 0;
    return status;
}

static void print_log(const char *name)
{
    char log[700];
    log_path_of(name, log, sizeof log);
    char *text = test_read_file(log, NULL);
    print_message("---- log of %s ----\n%s\n", name, text);
    free(text);
}

/* Reads a KV value; NULL when absent. */
static char *kv_read(natsx_kv *kv, const char *key, uint64_t *revision)
{
    bool found = false;
    char *value = NULL;
    uint64_t rev = 0;
    if (natsx_kv_get(kv, key, &found, &value, NULL, &rev) != ROJ_OK)
        fail_msg("read %s: %s", key, roj_last_error());
    if (revision)
        *revision = rev;
    return found ? value : NULL;
}

/* Waits up to timeout_ms for key in kv; returns its value or NULL. */
static char *kv_wait(natsx_kv *kv, const char *key, int timeout_ms)
{
    for (int waited = 0;; waited += 20) {
        char *v = kv_read(kv, key, NULL);
        if (v || waited >= timeout_ms)
            return v;
        sleep_ms(20);
    }
}

/* A number of the agent record of name; -1 when there is no record. */
static double agent_number(const char *name, const char *field)
{
    char *text = kv_read(agents, name, NULL);
    if (!text)
        return -1;
    cJSON *doc = cJSON_Parse(text);
    free(text);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, field);
    double n = cJSON_IsNumber(v) ? v->valuedouble : -2;
    cJSON_Delete(doc);
    return n;
}

/* Waits until the agent's record has field >= at_least. */
static double agent_wait_number(const char *name, const char *field,
                                double at_least, int timeout_ms)
{
    double n = -1;
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        n = agent_number(name, field);
        if (n >= at_least)
            break;
        sleep_ms(50);
    }
    return n;
}

/* Waits until the agent has registered; fails with its log if not. */
static void agent_wait_ready(const char *name)
{
    char *v = kv_wait(agents, name, 20000);
    if (!v) {
        print_log(name);
        fail_msg("agent %s did not register", name);
    }
    free(v);
}

static void agent_stop(pid_t pid)
{
    kill(pid, SIGTERM);
    assert_int_equal(wait_exit(pid, 15000), 0);
}

/* Publishes one subtask of skill with the "text" field (and "topic" for
 * the reply skill) under msg_id (NULL: RUN.JOB.KEY). */
static void publish_task(const char *run, uint64_t job, const char *key,
                         const char *skill, uint64_t seed, const char *text,
                         const char *msg_id)
{
    cJSON *t = cJSON_CreateObject();
    char seed_text[32], id[256], subject[NPROTO_NAME_MAX];
    snprintf(seed_text, sizeof seed_text, "%" PRIu64, seed);
    cJSON_AddStringToObject(t, "run", run);
    cJSON_AddNumberToObject(t, "job", (double)job);
    cJSON_AddStringToObject(t, "key", key);
    cJSON_AddStringToObject(t, "skill", skill);
    cJSON_AddStringToObject(t, "seed", seed_text);
    cJSON *in = cJSON_AddObjectToObject(t, "in");
    cJSON_AddStringToObject(in, "text", text);
    if (!strcmp(skill, "reply"))
        cJSON_AddStringToObject(in, "topic", "billing");
    char *data = cJSON_PrintUnformatted(t);
    cJSON_Delete(t);
    snprintf(id, sizeof id, "%s.%" PRIu64 ".%s", run, job, key);
    nproto_task_subject(&names, skill, subject, sizeof subject);
    roj_status st = natsx_publish(conn, subject, data, strlen(data),
                                  msg_id ? msg_id : id, 5000, NULL, NULL);
    free(data);
    if (st != ROJ_OK)
        fail_msg("publish %s: %s", subject, roj_last_error());
}

static void result_key(const char *run, uint64_t job, const char *key,
                       char *buf, size_t size)
{
    assert_true(nproto_result_key(run, job, key, buf, size));
}

/* The result JSON of one subtask computed in this process. */
static char *exec_expected(const char *skill, uint64_t seed,
                           const char *text)
{
    exec_engine *e = NULL;
    if (exec_open(swarm, 1, &e) != ROJ_OK)
        fail_msg("exec_open: %s", roj_last_error());
    const char *fields[2] = {"text", "topic"};
    const char *values[2] = {text, "billing"};
    exec_task t = {(size_t)swarm_find_skill(swarm, skill), fields, values,
                   2, seed};
    exec_result r = {0};
    assert_int_equal(exec_run(e, &t, 1, &r), ROJ_OK);
    if (!r.json)
        fail_msg("exec_run %s: %s", skill, r.error);
    char *json = strdup(r.json);
    exec_result_clear(&r);
    exec_close(e);
    return json;
}

/* Pending acks of the consumer of skill. */
static int64_t ack_pending(const char *skill)
{
    jsConsumerInfo *ci = NULL;
    natsStatus s = js_GetConsumerInfo(&ci, natsx_jetstream(conn),
                                      names.stream, skill, NULL, NULL);
    assert_int_equal(s, NATS_OK);
    int64_t n = ci->NumAckPending;
    jsConsumerInfo_Destroy(ci);
    return n;
}

/* Waits up to timeout_ms for skill's consumer to have no unacknowledged
 * message: agents record a result before they acknowledge its message. */
static int64_t ack_pending_settled(const char *skill, int timeout_ms)
{
    int64_t n = ack_pending(skill);
    for (int waited = 0; n != 0 && waited < timeout_ms; waited += 20) {
        usleep(20 * 1000);
        n = ack_pending(skill);
    }
    return n;
}

/* ---- tests ---- */

static void agent_results_match_exec(void **state)
{
    (void)state;
    const char *run = "00000000000000a1";
    static const struct {
        const char *skill;
        uint64_t seed;
        const char *text;
    } cases[] = {
        {"topic", 1, "my invoice is wrong"},
        {"topic", 2, "parcel late again"},
        {"first", 3, "Anna cannot log in"},
        {"first", 4, "please help Piotr"},
        {"reply", 5, "refund my invoice"},
        {"reply", 6, "password please"},
    };
    size_t n = sizeof cases / sizeof cases[0];
    pid_t pid = start_agent("a1", swarm_path);
    agent_wait_ready("a1");
    for (size_t i = 0; i < n; i++) {
        char key[16];
        snprintf(key, sizeof key, "s#%zu", i);
        publish_task(run, 7, key, cases[i].skill, cases[i].seed,
                     cases[i].text, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        char key[16], rkey[NPROTO_NAME_MAX], prefix[4096];
        snprintf(key, sizeof key, "s#%zu", i);
        result_key(run, 7, key, rkey, sizeof rkey);
        char *got = kv_wait(results, rkey, 20000);
        if (!got) {
            print_log("a1");
            fail_msg("no result for %s", rkey);
        }
        char *want = exec_expected(cases[i].skill, cases[i].seed,
                                   cases[i].text);
        snprintf(prefix, sizeof prefix, "{\"ok\":true,\"result\":%s,"
                 "\"agent\":\"a1\",\"ms\":", want);
        if (strncmp(got, prefix, strlen(prefix)) != 0)
            fail_msg("record %s\n  is %s\n  expected %s...", rkey, got,
                     prefix);
        free(want);
        free(got);
    }
    assert_true(agent_wait_number("a1", "done", (double)n, 5000) >= n);
    agent_stop(pid);
}

static void agent_duplicate_one_result(void **state)
{
    (void)state;
    const char *run = "00000000000000a2";
    pid_t pid = start_agent("a2", swarm_path);
    agent_wait_ready("a2");
    publish_task(run, 1, "t#0", "topic", 9, "my invoice", "copy-1");
    publish_task(run, 1, "t#0", "topic", 9, "my invoice", "copy-2");
    char rkey[NPROTO_NAME_MAX];
    result_key(run, 1, "t#0", rkey, sizeof rkey);
    char *got = kv_wait(results, rkey, 20000);
    assert_non_null(got);
    free(got);

    assert_true(agent_wait_number("a2", "skipped", 1, 5000) >= 1);
    assert_int_equal((int)agent_number("a2", "done"), 1);
    char **keys = NULL;
    size_t n_keys = 0;
    assert_int_equal(natsx_kv_keys(results, run, &keys, &n_keys), ROJ_OK);
    assert_int_equal(n_keys, 1);
    natsx_keys_free(keys, n_keys);
    agent_stop(pid);
}

static void agent_malformed_terminated(void **state)
{
    (void)state;
    pid_t pid = start_agent("a10", swarm_path);
    agent_wait_ready("a10");
    char subject[NPROTO_NAME_MAX];
    nproto_task_subject(&names, "topic", subject, sizeof subject);
    const char *garbage = "{\"run\": 12, \"in\": [";
    assert_int_equal(natsx_publish(conn, subject, garbage, strlen(garbage),
                                   "garbage-1", 5000, NULL, NULL), ROJ_OK);
    /* A valid task after it still runs. */
    const char *run = "00000000000000aa";
    publish_task(run, 1, "ok", "topic", 1, "my invoice", NULL);
    char rkey[NPROTO_NAME_MAX];
    result_key(run, 1, "ok", rkey, sizeof rkey);
    char *got = kv_wait(results, rkey, 20000);
    assert_non_null(got);
    free(got);
    assert_int_equal(ack_pending_settled("topic", 5000), 0);
    agent_stop(pid);
    char log[700];
    log_path_of("a10", log, sizeof log);
    char *text = test_read_file(log, NULL);
    assert_non_null(strstr(text, "malformed task message"));
    free(text);
}

static void agent_status_lists_agent(void **state)
{
    (void)state;
    pid_t pid = start_agent("a3", swarm_path);
    agent_wait_ready("a3");
    const char *run_record =
        "{\"run\":\"00000000000000b3\",\"pipeline\":\"triage\","
        "\"jobs_total\":10,\"jobs_done\":3,\"jobs_failed\":1,"
        "\"pending\":{\"topic\":2,\"reply\":5},\"updated_ms\":1}";
    assert_int_equal(natsx_kv_put(meta, "run.00000000000000b3", run_record,
                                  strlen(run_record), NULL), ROJ_OK);
    char log[700];
    snprintf(log, sizeof log, "%s/status.out", dir);
    const char *json_args[] = {"status", "--nats", server.url, "--swarm",
                               swarm_path, "-o", "json", NULL};
    assert_int_equal(wait_exit(start_roj(json_args, log), 15000), 0);
    char *out = test_read_file(log, NULL);
    cJSON *doc = cJSON_Parse(out);
    if (!doc)
        fail_msg("roj status -o json printed: %s", out);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "agents");
    const cJSON *a, *mine = NULL;
    cJSON_ArrayForEach(a, list) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(a, "name");
        if (cJSON_IsString(name) && !strcmp(name->valuestring, "a3"))
            mine = a;
    }
    assert_non_null(mine);
    const cJSON *skills = cJSON_GetObjectItemCaseSensitive(mine, "skills");
    assert_int_equal(cJSON_GetArraySize(skills), 3);
    assert_string_equal(cJSON_GetArrayItem(skills, 0)->valuestring,
                        "topic");
    assert_string_equal(cJSON_GetArrayItem(skills, 2)->valuestring,
                        "reply");
    const cJSON *age = cJSON_GetObjectItemCaseSensitive(mine,
                                                        "heartbeat_age_s");
    assert_true(cJSON_IsNumber(age));
    assert_true(age->valuedouble < 5);
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(mine, "models");
    assert_int_equal(cJSON_GetArraySize(models), 1);
    const cJSON *model = cJSON_GetArrayItem(models, 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(model, "name")
                            ->valuestring, "m");
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(model,
                                                              "sha256")));
    const cJSON *runs = cJSON_GetObjectItemCaseSensitive(doc, "runs");
    assert_int_equal(cJSON_GetArraySize(runs), 1);
    const cJSON *done = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(runs, 0), "jobs_done");
    assert_int_equal((int)done->valuedouble, 3);
    /* The record above was written in 1970. */
    const cJSON *updated = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(runs, 0), "updated_age_s");
    assert_true(cJSON_IsNumber(updated));
    assert_true(updated->valuedouble > 1e9);
    cJSON_Delete(doc);
    free(out);

    const char *text_args[] = {"status", "--nats", server.url, "--swarm",
                               "tiny", NULL};
    assert_int_equal(wait_exit(start_roj(text_args, log), 15000), 0);
    out = test_read_file(log, NULL);
    assert_non_null(strstr(out, "agents of swarm tiny"));
    assert_non_null(strstr(out, "a3 "));
    assert_non_null(strstr(out, "topic,first,reply"));
    assert_non_null(strstr(out, "00000000000000b3 triage: 3/10 jobs done, "
                                "1 failed; pending: topic 2, reply 5; "
                                "no update for "));
    assert_non_null(strstr(out, "its roj run has stopped"));
    free(out);

    /* A name without buckets is reported as unknown, not shown as idle. */
    const char *unknown_args[] = {"status", "--nats", server.url, "--swarm",
                                  "nosuch", NULL};
    assert_int_equal(wait_exit(start_roj(unknown_args, log), 15000), 0);
    out = test_read_file(log, NULL);
    assert_non_null(strstr(out, "no swarm named nosuch"));
    free(out);
    agent_stop(pid);
}

static void agent_sigterm_deregisters(void **state)
{
    (void)state;
    pid_t pid = start_agent("a4", swarm_path);
    agent_wait_ready("a4");
    kill(pid, SIGTERM);
    assert_int_equal(wait_exit(pid, 15000), 0);
    char *v = kv_read(agents, "a4", NULL);
    assert_null(v);
}

static void agent_stops_on_new_version(void **state)
{
    (void)state;
    pid_t pid = start_agent("a9", swarm_path);
    agent_wait_ready("a9");
    char *sha = kv_read(meta, "swarm", NULL);
    assert_non_null(sha);
    const char *other = "00000000000000000000000000000000"
                        "00000000000000000000000000000000";
    assert_int_equal(natsx_kv_put(meta, "swarm", other, strlen(other),
                                  NULL), ROJ_OK);
    int rc = wait_exit(pid, 10000);
    assert_int_equal(natsx_kv_put(meta, "swarm", sha, strlen(sha), NULL),
                     ROJ_OK);
    free(sha);
    assert_int_equal(rc, 1);
    char log[700];
    log_path_of("a9", log, sizeof log);
    char *err = test_read_file(log, NULL);
    assert_non_null(strstr(err, "is not the version the cluster runs"));
    assert_non_null(strstr(err, "0000000000000000..."));
    free(err);
    assert_null(kv_read(agents, "a9", NULL));
}

static void agent_rejects_changed_swarm(void **state)
{
    (void)state;
    char other[700];
    snprintf(other, sizeof other, "%s/changed.yaml", dir);
    char *yaml = strdup(SWARM_YAML);
    char *at = strstr(yaml, "Topic:\"");
    memcpy(at, "Theme:", 6);
    test_write_file(other, yaml, strlen(yaml));
    free(yaml);
    pid_t pid = start_agent("a5", other);
    assert_int_equal(wait_exit(pid, 20000), 1);
    char log[700];
    log_path_of("a5", log, sizeof log);
    char *err = test_read_file(log, NULL);
    assert_non_null(strstr(err, "is not the version the cluster runs"));
    assert_non_null(strstr(err, "changed.yaml"));
    free(err);
}

/* Publishes tasks of skill "first" until the stopped agent pid has one
 * fetched and unacknowledged. Returns that task's job number, or 0 when
 * every try missed (the agent runs each missed task after SIGCONT). */
static uint64_t hold_in_stopped(pid_t pid, const char *run)
{
    for (uint64_t job = 1; job <= 6; job++) {
        kill(pid, SIGSTOP);
        publish_task(run, job, "k", "first", job, "Anna cannot log in",
                     NULL);
        sleep_ms(300);
        if (ack_pending("first") == 1)
            return job;
        kill(pid, SIGCONT);
        char rkey[NPROTO_NAME_MAX];
        result_key(run, job, "k", rkey, sizeof rkey);
        free(kv_wait(results, rkey, 10000));
    }
    return 0;
}

static void agent_hung_redelivered(void **state)
{
    (void)state;
    const char *run = "00000000000000a6";
    pid_t slow = start_agent_on("a6-hung", swarm_path, "first");
    agent_wait_ready("a6-hung");
    uint64_t job = hold_in_stopped(slow, run);
    if (job == 0)
        fail_msg("the stopped agent never held a message");
    char rkey[NPROTO_NAME_MAX];
    result_key(run, job, "k", rkey, sizeof rkey);

    /* Another agent gets it after AckWait. */
    pid_t other = start_agent("a6-live", swarm_path);
    char *got = kv_wait(results, rkey, ACK_WAIT_MS + 20000);
    if (!got) {
        print_log("a6-live");
        fail_msg("no result for %s", rkey);
    }
    assert_non_null(strstr(got, "\"agent\":\"a6-live\""));
    free(got);
    uint64_t rev_before = 0, rev_after = 0;
    free(kv_read(results, rkey, &rev_before));
    assert_true(agent_wait_number("a6-live", "redelivered", 1, 5000) >= 1);

    /* The hung agent wakes up, finds the record and records nothing. */
    kill(slow, SIGCONT);
    assert_true(agent_wait_number("a6-hung", "skipped", 1, 8000) >= 1);
    got = kv_read(results, rkey, &rev_after);
    assert_non_null(strstr(got, "\"agent\":\"a6-live\""));
    free(got);
    assert_int_equal(rev_after, rev_before);
    agent_stop(slow);
    agent_stop(other);
}

static void agent_permanent_error_recorded(void **state)
{
    (void)state;
    const char *run = "00000000000000a7";
    pid_t pid = start_agent("a7", swarm_path);
    agent_wait_ready("a7");
    /* A prompt longer than the model's 256-token context. */
    char text[8192];
    size_t n = 0;
    while (n + 8 < sizeof text)
        n += (size_t)snprintf(text + n, sizeof text - n, "invoice ");
    publish_task(run, 1, "big", "reply", 1, text, NULL);
    char rkey[NPROTO_NAME_MAX];
    result_key(run, 1, "big", rkey, sizeof rkey);
    char *got = kv_wait(results, rkey, 20000);
    assert_non_null(got);
    assert_non_null(strstr(got, "\"ok\":false,\"permanent\":true"));
    assert_non_null(strstr(got, "\"agent\":\"a7\""));
    free(got);
    assert_true(agent_wait_number("a7", "failed", 1, 5000) >= 1);
    assert_int_equal(ack_pending_settled("reply", 5000), 0);
    agent_stop(pid);
}

/* The results bucket disappears while a subtask runs (as when its
 * stream has no leader during a failover): the agent keeps the message
 * and retries the write, spending no delivery, until the bucket is
 * back. */
static void agent_outage_spends_no_delivery(void **state)
{
    (void)state;
    const char *run = "00000000000000ac";
    pid_t pid = start_agent("a12", swarm_path);
    agent_wait_ready("a12");
    char stream[NPROTO_NAME_MAX + 8];
    snprintf(stream, sizeof stream, "KV_%s", names.results);
    assert_int_equal(js_DeleteStream(natsx_jetstream(conn), stream, NULL,
                                     NULL), NATS_OK);
    publish_task(run, 1, "k", "topic", 5, "refund my invoice", NULL);
    /* Twice AckWait: a nak or a lapsed message would be redelivered. */
    sleep_ms(2 * ACK_WAIT_MS);
    natsx_kv_close(results);
    natsx_kv_close(agents);
    natsx_kv_close(meta);
    results = agents = meta = NULL;
    assert_int_equal(nproto_setup(conn, swarm, &names, 1, &results,
                                  &agents, &meta), ROJ_OK);
    char rkey[NPROTO_NAME_MAX];
    result_key(run, 1, "k", rkey, sizeof rkey);
    char *got = kv_wait(results, rkey, 15000);
    if (!got) {
        print_log("a12");
        fail_msg("no result for %s after the bucket came back", rkey);
    }
    char *want = exec_expected("topic", 5, "refund my invoice");
    assert_non_null(strstr(got, want));
    assert_non_null(strstr(got, "\"agent\":\"a12\""));
    free(want);
    free(got);
    assert_true(agent_wait_number("a12", "done", 1, 5000) >= 1);
    assert_int_equal(agent_number("a12", "redelivered"), 0);
    assert_int_equal(ack_pending_settled("topic", 5000), 0);
    agent_stop(pid);
}

static void agent_poison_fails_at_max(void **state)
{
    (void)state;
    const char *run = "00000000000000a8";
    char rkey[NPROTO_NAME_MAX];

    /* Delivery 1 goes to an agent that is killed before it answers. */
    pid_t first = start_agent_on("a8-killed", swarm_path, "first");
    agent_wait_ready("a8-killed");
    uint64_t job = hold_in_stopped(first, run);
    if (job == 0)
        fail_msg("the stopped agent never held a message");
    kill(first, SIGKILL);
    assert_int_equal(wait_exit(first, 5000), 128 + SIGKILL);
    result_key(run, job, "k", rkey, sizeof rkey);

    /* Deliveries 2 to NPROTO_MAX_DELIVER - 1 die too: this process
     * takes them and drops them, as an agent crashing on them would. */
    natsx_pull *pull = NULL;
    assert_int_equal(natsx_pull_bind(conn, names.stream, "first", &pull),
                     ROJ_OK);
    for (uint64_t want = 2; want < NPROTO_MAX_DELIVER; want++) {
        natsx_batch b = {0};
        assert_int_equal(natsx_fetch(pull, 1, ACK_WAIT_MS + 5000, &b),
                         ROJ_OK);
        assert_int_equal(b.n, 1);
        natsx_msg_info info;
        assert_int_equal(natsx_msg_info_get(b.msgs[0], &info), ROJ_OK);
        assert_int_equal(info.delivered, want);
        natsx_batch_free(&b);
    }
    natsx_pull_close(pull);

    /* The last delivery is recorded as failed unrun. */
    pid_t last = start_agent("a8-last", swarm_path);
    char *got = kv_wait(results, rkey, ACK_WAIT_MS + 20000);
    if (!got) {
        print_log("a8-last");
        fail_msg("no record for %s", rkey);
    }
    assert_non_null(strstr(got, "\"ok\":false,\"permanent\":true"));
    char expected[64];
    snprintf(expected, sizeof expected, "no agent finished it in %d "
             "deliveries", NPROTO_MAX_DELIVER - 1);
    assert_non_null(strstr(got, expected));
    assert_non_null(strstr(got, "\"agent\":\"a8-last\""));
    free(got);
    assert_true(agent_wait_number("a8-last", "failed", 1, 5000) >= 1);
    assert_int_equal((int)agent_number("a8-last", "done"), 0);
    assert_int_equal(ack_pending_settled("first", 5000), 0);
    agent_stop(last);
}

/* ---- setup ---- */

/* A task from a submitter with another swarm file goes back to the
 * queue unrun, and the agent stops at once. Runs last: the returned
 * message would stop every later agent too. */
static void agent_skips_other_swarm_task(void **state)
{
    (void)state;
    pid_t pid = start_agent("a11", swarm_path);
    agent_wait_ready("a11");
    char subject[NPROTO_NAME_MAX];
    nproto_task_subject(&names, "topic", subject, sizeof subject);
    const char *run = "00000000000000ab";
    const char *task = "{\"run\": \"00000000000000ab\", \"job\": 1, "
                       "\"key\": \"v\", \"skill\": \"topic\", "
                       "\"seed\": \"1\", \"swarm\": \"0000000000000000"
                       "000000000000000000000000000000000000000000000000\", "
                       "\"in\": {\"text\": \"my invoice\"}}";
    assert_int_equal(natsx_publish(conn, subject, task, strlen(task),
                                   "other-swarm-1", 5000, NULL, NULL),
                     ROJ_OK);
    assert_int_equal(wait_exit(pid, 10000), 1);

    char rkey[NPROTO_NAME_MAX];
    result_key(run, 1, "v", rkey, sizeof rkey);
    char *got = kv_read(results, rkey, NULL);
    assert_null(got);
    char log[700];
    log_path_of("a11", log, sizeof log);
    char *text = test_read_file(log, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "is not the version of the tasks"));
    assert_non_null(strstr(text, "0000000000000000..."));
    free(text);
}

static int kill_agents(void **state)
{
    (void)state;
    for (int i = 0; i < n_pids; i++)
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
        }
    n_pids = 0;
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    setenv(NPROTO_ACK_WAIT_ENV, ACK_WAIT_TEXT, 1);
    if (nts_start(&server, NTS_JETSTREAM, NULL, NULL) != 0)
        return -1;
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    char models[600], model[700];
    snprintf(models, sizeof models, "%s/models", dir);
    if (mkdir(models, 0755) != 0)
        return -1;
    snprintf(model, sizeof model, "%s/base.gguf", models);
    synth_shape s = {
        .name = "agent", .n_layer = 2, .n_embd = 64, .n_head = 4,
        .n_head_kv = 2, .n_ff = 128, .n_ctx = 256, .n_vocab = 0,
        .rope_freq_base = 10000.0f, .rms_eps = 1e-5f,
        .tied_output = true, .seed = SYNTH_DEFAULT_SEED, .vocab_path = NULL,
    };
    if (synth_write_model(model, &s) != ROJ_OK)
        return -1;
    snprintf(swarm_path, sizeof swarm_path, "%s/swarm.yaml", dir);
    test_write_file(swarm_path, SWARM_YAML, strlen(SWARM_YAML));
    char *problems = NULL;
    if (swarm_load(swarm_path, &swarm, &problems) != ROJ_OK) {
        fprintf(stderr, "%s\n", problems ? problems : roj_last_error());
        free(problems);
        return -1;
    }

    /* This process is the submitter: it sets up and owns the version. */
    char sha[SHA256_HEX_SIZE];
    natsx_options opt = {.urls = server.url, .no_env = true};
    if (sha256_file(swarm_path, sha) != ROJ_OK ||
        nproto_names_init(swarm, &names) != ROJ_OK ||
        natsx_connect(&opt, &conn) != ROJ_OK ||
        nproto_setup(conn, swarm, &names, 1, &results, &agents, &meta) !=
            ROJ_OK ||
        nproto_check_swarm(meta, swarm_path, sha, true) != ROJ_OK) {
        fprintf(stderr, "setup: %s\n", roj_last_error());
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    kill_agents(state);
    natsx_kv_close(results);
    natsx_kv_close(agents);
    natsx_kv_close(meta);
    natsx_close(conn);
    swarm_free(swarm);
    nts_free(&server);
    return 0;
}

int main(void)
{
    nts_require();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(agent_results_match_exec, kill_agents),
        cmocka_unit_test_teardown(agent_duplicate_one_result, kill_agents),
        cmocka_unit_test_teardown(agent_malformed_terminated, kill_agents),
        cmocka_unit_test_teardown(agent_status_lists_agent, kill_agents),
        cmocka_unit_test_teardown(agent_sigterm_deregisters, kill_agents),
        cmocka_unit_test_teardown(agent_rejects_changed_swarm, kill_agents),
        cmocka_unit_test_teardown(agent_stops_on_new_version, kill_agents),
        cmocka_unit_test_teardown(agent_permanent_error_recorded,
                                  kill_agents),
        cmocka_unit_test_teardown(agent_hung_redelivered, kill_agents),
        cmocka_unit_test_teardown(agent_poison_fails_at_max, kill_agents),
        cmocka_unit_test_teardown(agent_outage_spends_no_delivery,
                                  kill_agents),
        cmocka_unit_test_teardown(agent_skips_other_swarm_task,
                                  kill_agents),
    };
    int rc = test_run_group(tests, group_setup, group_teardown);
    natsx_library_close(2000);
    return rc;
}
