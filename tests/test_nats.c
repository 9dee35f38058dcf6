/* Tests of src/nats/ against real nats-server processes on 127.0.0.1. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "nats/natsx.h"
#include "nats_server.h"
#include "testutil.h"

/* The JetStream server most tests share, started by the group setup. */
static nts_server js_server;
/* Servers of single tests, freed by free_own_servers even when an
 * assert fails in the middle of the test. */
static nts_server own_server;
static nts_cluster own_cluster;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Connects to urls without reading ROJ_NATS_* from the environment. */
static natsx_conn *connect_to(const char *urls)
{
    natsx_options opt = {.urls = urls, .no_env = true,
                         .connect_timeout_ms = 1000};
    natsx_conn *c = NULL;
    roj_status st = natsx_connect(&opt, &c);
    if (st != ROJ_OK)
        fail_msg("connect to %s: %s", urls, roj_last_error());
    return c;
}

/* Creates a work-queue stream name.> and a consumer for name.work. */
static void make_queue(natsx_conn *c, const char *name, int replicas,
                       uint32_t ack_wait_ms, int max_deliver)
{
    char subject[64], filter[64];
    snprintf(subject, sizeof subject, "%s.>", name);
    snprintf(filter, sizeof filter, "%s.work", name);
    const char *subjects[] = {subject};
    natsx_stream_config sc = {.name = name, .subjects = subjects,
                              .n_subjects = 1, .replicas = replicas};
    natsx_consumer_config cc = {.stream = name, .durable = "workers",
                                .filter_subject = filter,
                                .ack_wait_ms = ack_wait_ms,
                                .max_deliver = max_deliver};
    if (natsx_stream_ensure(c, &sc) != ROJ_OK)
        fail_msg("stream %s: %s", name, roj_last_error());
    if (natsx_consumer_ensure(c, &cc) != ROJ_OK)
        fail_msg("consumer on %s: %s", name, roj_last_error());
}

static natsx_pull *bind(natsx_conn *c, const char *stream)
{
    natsx_pull *p = NULL;
    if (natsx_pull_bind(c, stream, "workers", &p) != ROJ_OK)
        fail_msg("bind %s: %s", stream, roj_last_error());
    return p;
}

static uint64_t stream_msgs(natsx_conn *c, const char *stream)
{
    jsStreamInfo *si = NULL;
    natsStatus s = js_GetStreamInfo(&si, natsx_jetstream(c), stream, NULL,
                                    NULL);
    assert_int_equal(s, NATS_OK);
    uint64_t n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return n;
}

static void publish(natsx_conn *c, const char *subject, const char *data,
                    const char *msg_id, bool *duplicate)
{
    roj_status st = natsx_publish(c, subject, data, strlen(data), msg_id,
                                  5000, NULL, duplicate);
    if (st != ROJ_OK)
        fail_msg("publish %s: %s", subject, roj_last_error());
}

/* ---- Connection errors ---- */

static void connect_unreachable(void **state)
{
    (void)state;
    int port = nts_free_port();
    char urls[128], shown[64];
    natsx_options opt = {.urls = urls, .no_env = true,
                         .connect_timeout_ms = 500};
    natsx_conn *c = NULL;

    snprintf(urls, sizeof urls, "nats://bob:hunter2pw@127.0.0.1:%d", port);
    snprintf(shown, sizeof shown, "nats://127.0.0.1:%d", port);
    roj_status st = natsx_connect(&opt, &c);
    assert_int_equal(st, ROJ_ERR_IO);
    assert_null(c);
    const char *msg = roj_last_error();
    assert_non_null(strstr(msg, shown));
    assert_non_null(strstr(msg, "unreachable"));
    assert_null(strstr(msg, "hunter2pw"));
    assert_null(strstr(msg, "bob"));
}

static void connect_bad_password(void **state)
{
    (void)state;
    nts_server *auth = &own_server;
    assert_int_equal(nts_start(auth, NTS_AUTH, "roj", "right-pw-71"), 0);
    natsx_options opt = {.urls = auth->url, .no_env = true,
                         .connect_timeout_ms = 1000, .user = "roj",
                         .password = "wrong-pw-93"};
    natsx_conn *c = NULL;

    roj_status st = natsx_connect(&opt, &c);
    assert_int_equal(st, ROJ_ERR_INVALID_ARG);
    assert_null(c);
    const char *msg = roj_last_error();
    assert_non_null(strstr(msg, auth->url));
    assert_non_null(strstr(msg, "credentials"));
    assert_null(strstr(msg, "wrong-pw-93"));
    assert_null(strstr(msg, "right-pw-71"));

    /* The same server takes the right password from the environment. */
    setenv("ROJ_NATS_USER", "roj", 1);
    setenv("ROJ_NATS_PASSWORD", "right-pw-71", 1);
    natsx_options env_opt = {.urls = auth->url, .connect_timeout_ms = 1000};
    st = natsx_connect(&env_opt, &c);
    unsetenv("ROJ_NATS_USER");
    unsetenv("ROJ_NATS_PASSWORD");
    assert_int_equal(st, ROJ_OK);
    assert_non_null(c);
    natsx_close(c);
}

static void connect_no_jetstream(void **state)
{
    (void)state;
    nts_server *plain = &own_server;
    assert_int_equal(nts_start(plain, NTS_PLAIN, NULL, NULL), 0);
    natsx_options opt = {.urls = plain->url, .no_env = true,
                         .connect_timeout_ms = 500};
    natsx_conn *c = NULL;

    roj_status st = natsx_connect(&opt, &c);
    assert_int_equal(st, ROJ_ERR_UNSUPPORTED);
    assert_null(c);
    const char *msg = roj_last_error();
    assert_non_null(strstr(msg, plain->url));
    assert_non_null(strstr(msg, "JetStream is not enabled"));
}

static void url_redact_userinfo(void **state)
{
    (void)state;
    char buf[128];
    assert_string_equal(natsx_url_redact("nats://u:p@h:4222", buf,
                                         sizeof buf), "nats://h:4222");
    assert_string_equal(natsx_url_redact("nats://h:4222", buf, sizeof buf),
                        "nats://h:4222");
    assert_string_equal(natsx_url_redact("tls://tok@h:1/x", buf, sizeof buf),
                        "tls://h:1/x");
}

/* ---- Setup ---- */

static void setup_idempotent(void **state)
{
    (void)state;
    natsx_conn *c = connect_to(js_server.url);
    const char *subjects[] = {"idem.>"};
    natsx_stream_config sc = {.name = "IDEM", .subjects = subjects,
                              .n_subjects = 1};
    natsx_consumer_config cc = {.stream = "IDEM", .durable = "summarize",
                                .filter_subject = "idem.summarize",
                                .ack_wait_ms = 1000, .max_deliver = 3};
    natsx_kv_config kc = {.bucket = "IDEM_STATE", .history = 5};
    natsx_kv *kv1 = NULL, *kv2 = NULL;

    for (int round = 0; round < 2; round++) {
        assert_int_equal(natsx_stream_ensure(c, &sc), ROJ_OK);
        assert_int_equal(natsx_consumer_ensure(c, &cc), ROJ_OK);
    }
    assert_int_equal(natsx_kv_open(c, &kc, &kv1), ROJ_OK);
    assert_int_equal(natsx_kv_open(c, &kc, &kv2), ROJ_OK);

    /* A value written through one handle is seen through the other. */
    bool found = false;
    uint64_t rev = 0;
    assert_int_equal(natsx_kv_put(kv1, "k", "v", 1, NULL), ROJ_OK);
    assert_int_equal(natsx_kv_get(kv2, "k", &found, NULL, NULL, &rev),
                     ROJ_OK);
    assert_true(found);
    assert_int_equal(rev, 1);

    /* A different AckWait is updated in place, not by recreating. */
    cc.ack_wait_ms = 2000;
    assert_int_equal(natsx_consumer_ensure(c, &cc), ROJ_OK);
    jsConsumerInfo *ci = NULL;
    assert_int_equal(js_GetConsumerInfo(&ci, natsx_jetstream(c), "IDEM",
                                        "summarize", NULL, NULL), NATS_OK);
    assert_int_equal(ci->Config->AckWait, 2000LL * 1000000);
    assert_int_equal(ci->Config->MaxDeliver, 3);
    jsConsumerInfo_Destroy(ci);

    /* Mismatches are errors that name the field. */
    cc.filter_subject = "idem.other";
    assert_int_equal(natsx_consumer_ensure(c, &cc), ROJ_ERR_INVALID_ARG);
    assert_non_null(strstr(roj_last_error(), "filter subject"));
    const char *other[] = {"elsewhere.>"};
    sc.subjects = other;
    assert_int_equal(natsx_stream_ensure(c, &sc), ROJ_ERR_INVALID_ARG);
    assert_non_null(strstr(roj_last_error(), "without subject"));
    kc.history = 2;
    natsx_kv *kv3 = NULL;
    assert_int_equal(natsx_kv_open(c, &kc, &kv3), ROJ_ERR_INVALID_ARG);
    assert_null(kv3);
    assert_non_null(strstr(roj_last_error(), "history 5"));

    natsx_kv_close(kv1);
    natsx_kv_close(kv2);
    natsx_close(c);
}

static void setup_bad_replicas(void **state)
{
    (void)state;
    natsx_conn *c = connect_to(js_server.url);
    const char *subjects[] = {"wide.>"};
    natsx_stream_config sc = {.name = "WIDE", .subjects = subjects,
                              .n_subjects = 1, .replicas = 3};
    natsx_kv_config kc = {.bucket = "WIDE_STATE", .replicas = 3};
    natsx_kv *kv = NULL;

    /* A single server cannot hold 3 replicas; the server's reason is in
     * the message. */
    assert_int_equal(natsx_stream_ensure(c, &sc), ROJ_ERR_IO);
    assert_non_null(strstr(roj_last_error(), "stream WIDE"));
    assert_non_null(strstr(roj_last_error(), "replicas"));
    assert_int_equal(natsx_kv_open(c, &kc, &kv), ROJ_ERR_IO);
    assert_null(kv);
    assert_non_null(strstr(roj_last_error(), "bucket WIDE_STATE"));
    assert_null(strstr(roj_last_error(), "not found"));
    natsx_close(c);
}

/* ---- Key-value ---- */

static void kv_create_update(void **state)
{
    (void)state;
    natsx_conn *c = connect_to(js_server.url);
    natsx_kv_config kc = {.bucket = "CAS"};
    natsx_kv *kv = NULL;
    natsx_kv_outcome out = 0;
    uint64_t rev1 = 0, rev2 = 0, rev = 0;
    char *value = NULL;
    size_t len = 0;
    bool found = false;

    assert_int_equal(natsx_kv_open(c, &kc, &kv), ROJ_OK);
    assert_int_equal(natsx_kv_create(kv, "task.1", "queued", 6, &out, &rev1),
                     ROJ_OK);
    assert_int_equal(out, NATSX_KV_CREATED);
    assert_true(rev1 > 0);
    assert_int_equal(natsx_kv_create(kv, "task.1", "again", 5, &out, &rev),
                     ROJ_OK);
    assert_int_equal(out, NATSX_KV_EXISTS);
    assert_int_equal(rev, 0);

    assert_int_equal(natsx_kv_get(kv, "task.1", &found, &value, &len, &rev),
                     ROJ_OK);
    assert_true(found);
    assert_string_equal(value, "queued");
    assert_int_equal(len, 6);
    assert_int_equal(rev, rev1);
    free(value);

    /* Update at the current revision wins; a stale one conflicts. */
    assert_int_equal(natsx_kv_update(kv, "task.1", "running", 7, rev1, &out,
                                     &rev2), ROJ_OK);
    assert_int_equal(out, NATSX_KV_UPDATED);
    assert_true(rev2 > rev1);
    assert_int_equal(natsx_kv_update(kv, "task.1", "stolen", 6, rev1, &out,
                                     &rev), ROJ_OK);
    assert_int_equal(out, NATSX_KV_CONFLICT);
    assert_int_equal(rev, 0);

    /* Deleted keys read as absent and can be created again. */
    assert_int_equal(natsx_kv_delete(kv, "task.1"), ROJ_OK);
    assert_int_equal(natsx_kv_get(kv, "task.1", &found, &value, &len, &rev),
                     ROJ_OK);
    assert_false(found);
    assert_null(value);
    assert_int_equal(natsx_kv_create(kv, "task.1", "queued", 6, &out, &rev),
                     ROJ_OK);
    assert_int_equal(out, NATSX_KV_CREATED);
    assert_true(rev > rev2);

    natsx_kv_close(kv);
    natsx_close(c);
}

static void kv_keys_prefix(void **state)
{
    (void)state;
    natsx_conn *c = connect_to(js_server.url);
    natsx_kv_config kc = {.bucket = "KEYS"};
    natsx_kv *kv = NULL;
    char **keys = NULL;
    size_t n = 0;

    assert_int_equal(natsx_kv_open(c, &kc, &kv), ROJ_OK);
    assert_int_equal(natsx_kv_keys(kv, "", &keys, &n), ROJ_OK);
    assert_int_equal(n, 0);
    natsx_keys_free(keys, n);

    const char *names[] = {"job.2.b", "job.1.a", "jobx", "other.1",
                           "job.3"};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(natsx_kv_put(kv, names[i], "1", 1, NULL), ROJ_OK);
    assert_int_equal(natsx_kv_delete(kv, "job.3"), ROJ_OK);

    assert_int_equal(natsx_kv_keys(kv, "job.", &keys, &n), ROJ_OK);
    assert_int_equal(n, 2);
    assert_string_equal(keys[0], "job.1.a");
    assert_string_equal(keys[1], "job.2.b");
    natsx_keys_free(keys, n);

    assert_int_equal(natsx_kv_keys(kv, "job", &keys, &n), ROJ_OK);
    assert_int_equal(n, 3);
    assert_string_equal(keys[2], "jobx");
    natsx_keys_free(keys, n);

    assert_int_equal(natsx_kv_keys(kv, NULL, &keys, &n), ROJ_OK);
    assert_int_equal(n, 4);
    natsx_keys_free(keys, n);

    /* One-token keys only; the deleted job.3 is not listed. */
    assert_int_equal(natsx_kv_keys_matching(kv, "*", &keys, &n), ROJ_OK);
    assert_int_equal(n, 1);
    assert_string_equal(keys[0], "jobx");
    natsx_keys_free(keys, n);
    assert_int_equal(natsx_kv_keys_matching(kv, "job.*.*", &keys, &n),
                     ROJ_OK);
    assert_int_equal(n, 2);
    assert_string_equal(keys[0], "job.1.a");
    natsx_keys_free(keys, n);

    natsx_kv_close(kv);
    natsx_close(c);
}

/* ---- Publishing and consuming ---- */

static void publish_dedup(void **state)
{
    (void)state;
    natsx_conn *c = connect_to(js_server.url);
    uint64_t seq1 = 0, seq2 = 0;
    bool dup1 = true, dup2 = false;

    make_queue(c, "DEDUP", 1, 1000, 5);
    assert_int_equal(natsx_publish(c, "DEDUP.work", "a", 1, "job-7", 5000,
                                   &seq1, &dup1), ROJ_OK);
    assert_int_equal(natsx_publish(c, "DEDUP.work", "a", 1, "job-7", 5000,
                                   &seq2, &dup2), ROJ_OK);
    assert_false(dup1);
    assert_true(dup2);
    assert_int_equal(seq1, seq2);
    assert_int_equal(stream_msgs(c, "DEDUP"), 1);

    /* Fetch and ack remove it from the work queue. */
    natsx_pull *p = bind(c, "DEDUP");
    natsx_batch b;
    natsx_msg_info info;
    assert_int_equal(natsx_fetch(p, 10, 1000, &b), ROJ_OK);
    assert_int_equal(b.n, 1);
    assert_int_equal(natsMsg_GetDataLength(b.msgs[0]), 1);
    assert_int_equal(natsx_msg_info_get(b.msgs[0], &info), ROJ_OK);
    assert_int_equal(info.stream_seq, seq1);
    assert_int_equal(info.delivered, 1);
    assert_int_equal(natsx_msg_ack(b.msgs[0]), ROJ_OK);
    natsx_batch_free(&b);
    assert_int_equal(natsx_fetch(p, 10, 200, &b), ROJ_OK);
    assert_int_equal(b.n, 0);
    assert_int_equal(stream_msgs(c, "DEDUP"), 0);

    natsx_pull_close(p);
    natsx_close(c);
}

static void nak_delay_redelivers(void **state)
{
    (void)state;
    natsx_conn *c = connect_to(js_server.url);
    natsx_batch b;
    natsx_msg_info info;

    make_queue(c, "NAK", 1, 5000, 5);
    natsx_pull *p = bind(c, "NAK");
    publish(c, "NAK.work", "x", "nak-1", NULL);
    assert_int_equal(natsx_fetch(p, 1, 1000, &b), ROJ_OK);
    assert_int_equal(b.n, 1);
    int64_t nak_at = now_ms();
    assert_int_equal(natsx_msg_nak(b.msgs[0], 1000), ROJ_OK);
    natsx_batch_free(&b);

    /* Not before the delay... */
    assert_int_equal(natsx_fetch(p, 1, 500, &b), ROJ_OK);
    assert_int_equal(b.n, 0);
    /* ...but soon after it. */
    assert_int_equal(natsx_fetch(p, 1, 2000, &b), ROJ_OK);
    assert_int_equal(b.n, 1);
    int64_t waited = now_ms() - nak_at;
    assert_true(waited >= 900);
    assert_true(waited < 2500);
    assert_int_equal(natsx_msg_info_get(b.msgs[0], &info), ROJ_OK);
    assert_int_equal(info.delivered, 2);
    assert_int_equal(natsx_msg_ack(b.msgs[0]), ROJ_OK);
    natsx_batch_free(&b);

    natsx_pull_close(p);
    natsx_close(c);
}

static void ack_wait_redelivers(void **state)
{
    (void)state;
    natsx_conn *c = connect_to(js_server.url);
    natsx_batch b;
    natsx_msg_info info;

    make_queue(c, "REDELIVER", 1, 1000, 5);
    natsx_pull *p = bind(c, "REDELIVER");
    publish(c, "REDELIVER.work", "x", "r-1", NULL);
    assert_int_equal(natsx_fetch(p, 1, 1000, &b), ROJ_OK);
    assert_int_equal(b.n, 1);
    int64_t got_at = now_ms();
    natsx_batch_free(&b); /* dropped without an ack */

    assert_int_equal(natsx_fetch(p, 1, 3000, &b), ROJ_OK);
    assert_int_equal(b.n, 1);
    assert_true(now_ms() - got_at >= 900);
    assert_int_equal(natsx_msg_info_get(b.msgs[0], &info), ROJ_OK);
    assert_int_equal(info.delivered, 2);
    assert_int_equal(natsx_msg_ack(b.msgs[0]), ROJ_OK);
    natsx_batch_free(&b);

    natsx_pull_close(p);
    natsx_close(c);
}

static void in_progress_extends(void **state)
{
    (void)state;
    natsx_conn *c = connect_to(js_server.url);
    natsx_conn *c2 = connect_to(js_server.url);
    natsx_batch held, other;

    make_queue(c, "PROGRESS", 1, 1000, 5);
    natsx_pull *p = bind(c, "PROGRESS");
    natsx_pull *p2 = bind(c2, "PROGRESS");
    publish(c, "PROGRESS.work", "x", "p-1", NULL);
    assert_int_equal(natsx_fetch(p, 1, 1000, &held), ROJ_OK);
    assert_int_equal(held.n, 1);

    /* Hold it for 2.4 s, twice AckWait, sending InProgress every
     * 400 ms; another consumer polling meanwhile gets nothing. */
    for (int i = 0; i < 6; i++) {
        assert_int_equal(natsx_fetch(p2, 1, 400, &other), ROJ_OK);
        assert_int_equal(other.n, 0);
        assert_int_equal(natsx_msg_in_progress(held.msgs[0]), ROJ_OK);
    }
    assert_int_equal(natsx_msg_ack(held.msgs[0]), ROJ_OK);
    natsx_batch_free(&held);
    assert_int_equal(natsx_fetch(p2, 1, 1500, &other), ROJ_OK);
    assert_int_equal(other.n, 0);

    natsx_pull_close(p2);
    natsx_pull_close(p);
    natsx_close(c2);
    natsx_close(c);
}

static void term_removes(void **state)
{
    (void)state;
    natsx_conn *c = connect_to(js_server.url);
    natsx_batch b;

    make_queue(c, "TERM", 1, 1000, 5);
    natsx_pull *p = bind(c, "TERM");
    publish(c, "TERM.work", "x", "t-1", NULL);
    assert_int_equal(natsx_fetch(p, 1, 1000, &b), ROJ_OK);
    assert_int_equal(b.n, 1);
    assert_int_equal(natsx_msg_term(b.msgs[0]), ROJ_OK);
    natsx_batch_free(&b);
    assert_int_equal(natsx_fetch(p, 1, 1500, &b), ROJ_OK);
    assert_int_equal(b.n, 0);
    assert_int_equal(stream_msgs(c, "TERM"), 0);

    natsx_pull_close(p);
    natsx_close(c);
}

static void pull_bind_missing(void **state)
{
    (void)state;
    natsx_conn *c = connect_to(js_server.url);
    natsx_pull *p = NULL;
    assert_int_equal(natsx_pull_bind(c, "NOSUCH", "workers", &p),
                     ROJ_ERR_NOT_FOUND);
    assert_null(p);
    assert_non_null(strstr(roj_last_error(), "NOSUCH"));
    natsx_close(c);
}

/* ---- Cluster ---- */

/* Returns the node whose server name leads the stream, or NULL. */
static nts_server *stream_leader(natsx_conn *c, nts_cluster *cl,
                                 const char *stream)
{
    jsStreamInfo *si = NULL;
    nts_server *leader = NULL;
    if (js_GetStreamInfo(&si, natsx_jetstream(c), stream, NULL, NULL) !=
        NATS_OK)
        return NULL;
    if (si->Cluster && si->Cluster->Leader) {
        int index = atoi(si->Cluster->Leader + 1); /* "n2" -> 2 */
        if (index >= 1 && index <= NTS_CLUSTER_SIZE)
            leader = &cl->nodes[index - 1];
    }
    jsStreamInfo_Destroy(si);
    return leader;
}

/* Whether every replica of the stream is current and online. */
static bool replicas_current(natsx_conn *c, const char *stream)
{
    jsStreamInfo *si = NULL;
    bool ok;
    if (js_GetStreamInfo(&si, natsx_jetstream(c), stream, NULL, NULL) !=
        NATS_OK)
        return false;
    ok = si->Cluster && si->Cluster->ReplicasLen == NTS_CLUSTER_SIZE - 1;
    for (int i = 0; ok && i < si->Cluster->ReplicasLen; i++)
        ok = si->Cluster->Replicas[i]->Current &&
             !si->Cluster->Replicas[i]->Offline;
    jsStreamInfo_Destroy(si);
    return ok;
}

static void cluster_survives_kill(void **state)
{
    (void)state;
    enum { BEFORE = 10, AFTER = 10, TOTAL = BEFORE + AFTER };
    nts_cluster *cl = &own_cluster;
    bool seen[TOTAL] = {false};
    char id[32], data[32];

    if (nts_cluster_start(cl) != 0)
        fail_msg("the 3-node cluster did not start");
    natsx_conn *c = connect_to(cl->urls);
    make_queue(c, "R3", 3, 5000, 5);
    for (int i = 0; i < BEFORE; i++) {
        snprintf(id, sizeof id, "m%d", i);
        snprintf(data, sizeof data, "%d", i);
        publish(c, "R3.work", data, id, NULL);
    }

    /* Crash the stream leader; publishes must resume once another node
     * is elected, within the retry deadline. */
    nts_server *leader = stream_leader(c, cl, "R3");
    assert_non_null(leader);
    nts_kill(leader);
    int64_t killed_at = now_ms();
    for (int i = BEFORE; i < TOTAL; i++) {
        snprintf(id, sizeof id, "m%d", i);
        snprintf(data, sizeof data, "%d", i);
        roj_status st = natsx_publish(c, "R3.work", data, strlen(data), id,
                                      20000, NULL, NULL);
        if (st != ROJ_OK)
            fail_msg("publish %d after the kill: %s", i, roj_last_error());
    }
    printf("publishes resumed %lld ms after kill -9 of the leader\n",
           (long long)(now_ms() - killed_at));

    /* The restarted node rejoins and catches up. */
    assert_int_equal(nts_restart(leader), 0);
    int64_t deadline = now_ms() + 15000;
    while (!replicas_current(c, "R3") && now_ms() < deadline)
        sleep_ms(100);
    assert_true(replicas_current(c, "R3"));

    /* Every published message is delivered to the durable consumer. */
    natsx_pull *p = bind(c, "R3");
    deadline = now_ms() + 20000;
    int unique = 0;
    while (unique < TOTAL && now_ms() < deadline) {
        natsx_batch b;
        assert_int_equal(natsx_fetch(p, TOTAL, 1000, &b), ROJ_OK);
        for (int i = 0; i < b.n; i++) {
            int k = atoi(natsMsg_GetData(b.msgs[i]));
            assert_in_range(k, 0, TOTAL - 1);
            if (!seen[k]) {
                seen[k] = true;
                unique++;
            }
            assert_int_equal(natsx_msg_ack(b.msgs[i]), ROJ_OK);
        }
        natsx_batch_free(&b);
    }
    assert_int_equal(unique, TOTAL);

    natsx_pull_close(p);
    natsx_close(c);
}

static int free_own_servers(void **state)
{
    (void)state;
    nts_free(&own_server);
    nts_cluster_free(&own_cluster);
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    if (nts_start(&js_server, NTS_JETSTREAM, NULL, NULL) != 0) {
        nts_free(&js_server);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    nts_free(&js_server);
    return 0;
}

int main(void)
{
    nts_require();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(url_redact_userinfo),
        cmocka_unit_test(connect_unreachable),
        cmocka_unit_test_teardown(connect_bad_password, free_own_servers),
        cmocka_unit_test_teardown(connect_no_jetstream, free_own_servers),
        cmocka_unit_test(setup_idempotent),
        cmocka_unit_test(setup_bad_replicas),
        cmocka_unit_test(kv_create_update),
        cmocka_unit_test(kv_keys_prefix),
        cmocka_unit_test(publish_dedup),
        cmocka_unit_test(nak_delay_redelivers),
        cmocka_unit_test(ack_wait_redelivers),
        cmocka_unit_test(in_progress_extends),
        cmocka_unit_test(term_removes),
        cmocka_unit_test(pull_bind_missing),
        cmocka_unit_test_teardown(cluster_survives_kill, free_own_servers),
    };
    int rc = test_run_group(tests, group_setup, group_teardown);
    natsx_library_close(2000);
    return rc;
}
