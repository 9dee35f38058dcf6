/*
 * A thin layer over nats.c (the NATS C client, 3.4.1 in Debian 12) for
 * running a swarm across machines on NATS JetStream. It connects with
 * roj's options and credentials and creates or checks the work-queue
 * stream, its durable pull consumers and KV buckets. It offers
 * key-value calls with explicit compare-and-set outcomes, publishing
 * with deduplication and retries, and fetching and acknowledging.
 *
 * Units: every time in this API is in milliseconds. nats.c mixes
 * nanoseconds (AckWait, stream MaxAge, KV TTL) and milliseconds (fetch
 * and request timeouts), so this layer converts where needed.
 *
 * Errors: fallible calls return a roj_status with a message from
 * roj_last_error() that names the server URL (without any user or
 * password in it), the stream, consumer, bucket or key, and what to do.
 * Passwords, tokens and key files' contents never appear in messages or
 * logs.
 *
 * Server facts this layer is built around (nats-server 2.9.10):
 * - While a cluster elects a stream leader (4 to 8 s after a node
 *   crashes), JetStream calls fail fast with NATS_NO_RESPONDERS and
 *   JetStream error 10076 "JetStream not enabled", or with
 *   "Leadership Change". natsx_publish retries these with the same
 *   message id, so a retry never stores a second copy.
 * - In a replicated work-queue stream the replicas can diverge after a
 *   node restart: acked messages stay on some replicas, message counts
 *   are wrong, and a recreated consumer delivers acked work again. So
 *   natsx_consumer_ensure never deletes or recreates a consumer, the
 *   stream's message count is no measure of queue depth, and the state
 *   of each task belongs in a KV bucket guarded by revisions.
 * - A message that reached its consumer's MaxDeliver stays in a
 *   work-queue stream until it is terminated (natsx_msg_term) or
 *   deleted.
 * - An ack that succeeds does not prove that no one else processed
 *   the message: after AckWait it is redelivered, and a late ack from
 *   the first receiver still succeeds.
 *
 * Ownership: natsx_connect, natsx_kv_open and natsx_pull_bind return
 * handles freed by natsx_close, natsx_kv_close and natsx_pull_close;
 * close a connection last. Messages from natsx_fetch belong to the
 * caller (natsx_batch_free).
 *
 * Threading: a connection and a KV handle may be used from several
 * threads at once (nats.c locks inside). A pull subscription and its
 * messages belong to one thread at a time.
 */
#ifndef ROJ_NATS_NATSX_H
#define ROJ_NATS_NATSX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nats/natsdl.h"

#include "roj/roj.h"

typedef struct natsx_conn natsx_conn;
typedef struct natsx_kv natsx_kv;
typedef struct natsx_pull natsx_pull;

/* How to reach and log in to the servers. Zero fields take the default
 * in brackets. A NULL credential field is read from the environment
 * variable named beside it, unless no_env is set. */
typedef struct natsx_options {
    const char *urls;          /* "nats://127.0.0.1:4222,nats://h2:4222" */
    const char *name;          /* connection name the server shows [roj] */
    const char *user;          /* ROJ_NATS_USER */
    const char *password;      /* ROJ_NATS_PASSWORD */
    const char *token;         /* ROJ_NATS_TOKEN */
    const char *creds_file;    /* ROJ_NATS_CREDS: user JWT and seed */
    const char *nkey_file;     /* ROJ_NATS_NKEY: NKey seed file that also
                                  holds the public key, as written by
                                  `nk -gen user -pubout` */
    const char *tls_ca_file;   /* ROJ_NATS_TLS_CA */
    const char *tls_cert_file; /* ROJ_NATS_TLS_CERT */
    const char *tls_key_file;  /* ROJ_NATS_TLS_KEY */
    uint32_t connect_timeout_ms; /* per server, and for the JetStream
                                    check [2000] */
    uint32_t ping_interval_ms;   /* [1000] */
    int max_pings_out;           /* unanswered pings before the link
                                    counts as dead [2] */
    uint32_t reconnect_wait_ms;  /* between reconnect rounds [250] */
    bool no_env;                 /* ignore the ROJ_NATS_* variables */
} natsx_options;

/* Connects to the first reachable server of opt->urls and checks that
 * JetStream responds there. The connection reconnects forever (to any
 * listed or discovered server) and sends each protocol message at once
 * instead of waiting for nats.c's 1 ms flush timer. Errors, each naming
 * the URLs and the fix:
 * - ROJ_ERR_IO: no server reachable (connection refused, timed out);
 * - ROJ_ERR_INVALID_ARG: bad URL or option, or the server rejected the
 *   credentials (authorization violation);
 * - ROJ_ERR_UNSUPPORTED: the server has no JetStream, or a cluster has
 *   no JetStream leader within connect_timeout_ms. */
roj_status natsx_connect(const natsx_options *opt, natsx_conn **out);

/* Closes the connection and frees it. NULL is allowed. */
void natsx_close(natsx_conn *c);

/* Frees nats.c's global state and waits up to timeout_ms for its
 * threads. Call once at process exit, after every natsx_close, so leak
 * checkers see a clean exit. Does nothing when nats.c was never loaded. */
void natsx_library_close(uint32_t timeout_ms);

/* The underlying nats.c objects, for calls this layer does not wrap.
 * They belong to c. */
natsConnection *natsx_connection(natsx_conn *c);
jsCtx *natsx_jetstream(natsx_conn *c);

/* Writes the URL of the server c is connected to, without user
 * information, into buf. Returns buf ("" while disconnected). */
const char *natsx_connected_url(natsx_conn *c, char *buf, size_t size);

/* Copies url into buf with any "user:password@" removed. */
const char *natsx_url_redact(const char *url, char *buf, size_t size);

/* Whether a nats.c failure is worth retrying: NATS_TIMEOUT,
 * NATS_NO_RESPONDERS, JetStream errors 10076 and 10008 (no leader yet)
 * and "Leadership Change". */
bool natsx_is_transient(natsStatus s, jsErrCode jerr);

/* ---- Streams, consumers and buckets (idempotent setup) ---- */

/* A work-queue stream of subtasks in file storage. */
typedef struct natsx_stream_config {
    const char *name;
    const char **subjects;
    size_t n_subjects;
    int replicas;                  /* [1] */
    uint32_t duplicate_window_ms;  /* message id memory [120000] */
} natsx_stream_config;

/* Creates the stream, or checks that an existing one has work-queue
 * retention, file storage, the same replica count and the same subjects.
 * A mismatch is ROJ_ERR_INVALID_ARG naming the field and both values;
 * the stream is never changed or deleted. */
roj_status natsx_stream_ensure(natsx_conn *c, const natsx_stream_config *cfg);

/* A durable pull consumer with explicit acks. */
typedef struct natsx_consumer_config {
    const char *stream;
    const char *durable;        /* no '.', '*', '>' or spaces */
    const char *filter_subject; /* e.g. "task.summarize" */
    uint32_t ack_wait_ms;       /* redelivery after this without an ack
                                   [30000] */
    int max_deliver;            /* deliveries per message; -1 no limit
                                   [5] */
} natsx_consumer_config;

/* Creates the consumer, or checks an existing one: its filter subject
 * and ack policy must match (ROJ_ERR_INVALID_ARG otherwise), while a
 * different AckWait or MaxDeliver is updated in place. An existing
 * consumer is never deleted or recreated, because in nats-server 2.9.10
 * a recreated work-queue consumer can deliver acked messages again. */
roj_status natsx_consumer_ensure(natsx_conn *c,
                                 const natsx_consumer_config *cfg);

typedef struct natsx_kv_config {
    const char *bucket;
    int history;    /* revisions kept per key, 1..64 [1] */
    int replicas;   /* [1] */
    uint32_t ttl_ms; /* age after which every revision expires; 0 none.
                        One value for the whole bucket. */
} natsx_kv_config;

/* Binds to the bucket, creating it first when it does not exist. An
 * existing bucket with another history or replica count is
 * ROJ_ERR_INVALID_ARG. The handle belongs to the caller
 * (natsx_kv_close) and must be closed before its connection. */
roj_status natsx_kv_open(natsx_conn *c, const natsx_kv_config *cfg,
                         natsx_kv **out);

void natsx_kv_close(natsx_kv *kv);

/* ---- Key-value calls ---- */

/* Outcome of a conditional write. */
typedef enum natsx_kv_outcome {
    NATSX_KV_CREATED = 1,  /* create: the key was absent and now exists */
    NATSX_KV_EXISTS,       /* create: the key already had a value */
    NATSX_KV_UPDATED,      /* update: the revision matched */
    NATSX_KV_CONFLICT      /* update: the key has another revision */
} natsx_kv_outcome;

/* Reads a key. Found: *value (malloc'd, NUL-terminated, *len without
 * the NUL; the caller frees it) and *revision, and *found = true.
 * Absent or deleted: *found = false, *value = NULL, *revision = 0.
 * value and len may be NULL when only the revision is needed. */
roj_status natsx_kv_get(natsx_kv *kv, const char *key, bool *found,
                        char **value, size_t *len, uint64_t *revision);

/* Writes the key only when it is absent or deleted: *outcome is
 * NATSX_KV_CREATED with *revision set, or NATSX_KV_EXISTS with
 * *revision = 0. revision may be NULL. */
roj_status natsx_kv_create(natsx_kv *kv, const char *key, const void *value,
                           size_t len, natsx_kv_outcome *outcome,
                           uint64_t *revision);

/* Writes the key only when its latest revision is last_revision:
 * *outcome is NATSX_KV_UPDATED with *revision set to the new one, or
 * NATSX_KV_CONFLICT when another writer got there first (or the key is
 * gone). revision may be NULL. */
roj_status natsx_kv_update(natsx_kv *kv, const char *key, const void *value,
                           size_t len, uint64_t last_revision,
                           natsx_kv_outcome *outcome, uint64_t *revision);

/* Writes the key whatever its revision. revision may be NULL. */
roj_status natsx_kv_put(natsx_kv *kv, const char *key, const void *value,
                        size_t len, uint64_t *revision);

/* Marks the key deleted (a later create succeeds). Deleting an absent
 * key is not an error. */
roj_status natsx_kv_delete(natsx_kv *kv, const char *key);

/* Lists the keys that match a NATS subject filter of key tokens ("*"
 * matches one dot-separated token, ">" the rest), sorted, as
 * natsx_kv_keys does. Only the matching keys cross the network. */
roj_status natsx_kv_keys_matching(natsx_kv *kv, const char *filter,
                                  char ***keys, size_t *n);

/* Lists the keys that start with prefix ("" or NULL: all), sorted.
 * *keys is a malloc'd array of malloc'd strings (natsx_keys_free). */
roj_status natsx_kv_keys(natsx_kv *kv, const char *prefix, char ***keys,
                         size_t *n);

void natsx_keys_free(char **keys, size_t n);

/* ---- Watching a bucket ---- */

typedef struct natsx_watch natsx_watch;

typedef enum natsx_change_kind {
    NATSX_CHANGE_NONE = 0,         /* the wait timed out */
    NATSX_CHANGE_END_OF_INITIAL,   /* every value present at the start
                                      has been delivered */
    NATSX_CHANGE_PUT,
    NATSX_CHANGE_DELETE            /* a delete or purge of key */
} natsx_change_kind;

/* One change of a watched key. key and value are malloc'd
 * (natsx_change_clear); value is NUL-terminated. */
typedef struct natsx_change {
    natsx_change_kind kind;
    char *key;
    char *value;
    size_t len;
    uint64_t revision;
} natsx_change;

/* Watches the keys matching keys ("RUN.>", a NATS subject pattern): the
 * current value of each first, then NATSX_CHANGE_END_OF_INITIAL, then
 * every change. TTL expiries produce no change (nats-server 2.9). */
roj_status natsx_kv_watch(natsx_kv *kv, const char *keys, natsx_watch **out);

/* Waits up to timeout_ms for the next change; change->kind is
 * NATSX_CHANGE_NONE when none came. */
roj_status natsx_watch_next(natsx_watch *w, uint32_t timeout_ms,
                            natsx_change *change);
void natsx_change_clear(natsx_change *change);
void natsx_watch_close(natsx_watch *w);

/* ---- Publishing and consuming ---- */

/* Publishes data to subject on its stream and waits for the stream's
 * acknowledgement. msg_id (may be NULL) makes the stream drop a copy
 * published again within its duplicate window, so a retry is safe.
 * Transient failures (natsx_is_transient) are retried with a backoff
 * of 25 ms doubling to 500 ms, and each attempt waits at most 2 s. After
 * deadline_ms since the call, the last failure is ROJ_ERR_IO.
 * seq (may be NULL) receives the stream sequence and duplicate (may be
 * NULL) whether the stream already had msg_id. */
roj_status natsx_publish(natsx_conn *c, const char *subject,
                         const void *data, size_t len, const char *msg_id,
                         uint32_t deadline_ms, uint64_t *seq,
                         bool *duplicate);

/* Binds a pull subscription to an existing durable consumer (see
 * natsx_consumer_ensure); it never creates one. */
roj_status natsx_pull_bind(natsx_conn *c, const char *stream,
                           const char *durable, natsx_pull **out);

void natsx_pull_close(natsx_pull *p);

/* Messages of one fetch. The caller owns them (natsx_batch_free). */
typedef struct natsx_batch {
    natsMsg **msgs;
    int n;
} natsx_batch;

/* Waits up to timeout_ms for 1..max messages. No message in time is
 * ROJ_OK with b->n == 0, and so is a transient failure (leader
 * election), after which the call waits out the rest of timeout_ms, at
 * most 100 ms, so a polling loop does not spin. */
roj_status natsx_fetch(natsx_pull *p, int max, uint32_t timeout_ms,
                       natsx_batch *b);

/* Destroys every message of the batch and empties it. */
void natsx_batch_free(natsx_batch *b);

/* Delivery facts of a message fetched from a consumer. */
typedef struct natsx_msg_info {
    uint64_t stream_seq;
    uint64_t consumer_seq;
    uint64_t delivered;     /* 1 on the first delivery */
    uint64_t pending;       /* messages left for the consumer */
    int64_t timestamp_ms;   /* publish time, Unix epoch */
} natsx_msg_info;

roj_status natsx_msg_info_get(natsMsg *m, natsx_msg_info *info);

/* Acknowledges the message and waits for the server to confirm it.
 * Success does not mean no one else processed it (see above). */
roj_status natsx_msg_ack(natsMsg *m);

/* Asks for redelivery after delay_ms (0: at once). */
roj_status natsx_msg_nak(natsMsg *m, uint32_t delay_ms);

/* Restarts the message's AckWait; send it more often than AckWait. */
roj_status natsx_msg_in_progress(natsMsg *m);

/* Stops redelivery for good and removes it from a work-queue stream. */
roj_status natsx_msg_term(natsMsg *m);

#endif
