/*
 * Idempotent JetStream setup: the work-queue stream, durable pull
 * consumers and KV buckets. Every call first looks at what exists and
 * creates only what is missing, so any number of processes may run the
 * same setup at once. Existing objects are checked, never deleted.
 */
#include "nats/natsx_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"

#define NS_PER_MS 1000000LL
#define DEFAULT_ACK_WAIT_MS 30000
#define DEFAULT_MAX_DELIVER 5

/* ---- Streams ---- */

/* Compares an existing stream's configuration with the requested one. */
static roj_status stream_check(const jsStreamConfig *have,
                               const natsx_stream_config *want,
                               int replicas)
{
    const char *name = want->name;

    if (have->Retention != js_WorkQueuePolicy)
        return roj_error(ROJ_ERR_INVALID_ARG, "nats: stream %s exists "
                         "without work-queue retention: delete it or use "
                         "another stream name", name);
    if (have->Storage != js_FileStorage)
        return roj_error(ROJ_ERR_INVALID_ARG, "nats: stream %s exists with "
                         "memory storage, expected file storage: delete it "
                         "or use another stream name", name);
    if (have->Replicas != replicas)
        return roj_error(ROJ_ERR_INVALID_ARG, "nats: stream %s exists with "
                         "%d replicas, expected %d: change the replica "
                         "count to match or use another stream name", name,
                         (int)have->Replicas, replicas);
    if ((size_t)have->SubjectsLen != want->n_subjects)
        return roj_error(ROJ_ERR_INVALID_ARG, "nats: stream %s exists with "
                         "%d subjects, expected %zu", name,
                         have->SubjectsLen, want->n_subjects);
    for (size_t i = 0; i < want->n_subjects; i++) {
        bool found = false;
        for (int j = 0; j < have->SubjectsLen && !found; j++)
            found = strcmp(have->Subjects[j], want->subjects[i]) == 0;
        if (!found)
            return roj_error(ROJ_ERR_INVALID_ARG, "nats: stream %s exists "
                             "without subject %s", name, want->subjects[i]);
    }
    return ROJ_OK;
}

roj_status natsx_stream_ensure(natsx_conn *c, const natsx_stream_config *cfg)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    int replicas = cfg->replicas > 0 ? cfg->replicas : 1;

    if (!cfg->name || !*cfg->name || cfg->n_subjects == 0)
        return roj_error(ROJ_ERR_INVALID_ARG, "nats: a stream needs a name "
                         "and at least one subject");

    /* An existing stream only gets checked. */
    natsStatus s = js_GetStreamInfo(&si, c->js, cfg->name, NULL, &jerr);
    if (s == NATS_OK) {
        roj_status st = stream_check(si->Config, cfg, replicas);
        jsStreamInfo_Destroy(si);
        return st;
    }
    if (s != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr)
        return natsx_fail(ROJ_ERR_IO, s, jerr, "nats: cannot read stream "
                          "%s on %s", cfg->name, c->urls);

    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = cfg->name;
    sc.Subjects = cfg->subjects;
    sc.SubjectsLen = (int)cfg->n_subjects;
    sc.Retention = js_WorkQueuePolicy;
    sc.Storage = js_FileStorage;
    sc.Replicas = replicas;
    if (cfg->duplicate_window_ms)
        sc.Duplicates = (int64_t)cfg->duplicate_window_ms * NS_PER_MS;
    jerr = 0;
    s = js_AddStream(&si, c->js, &sc, NULL, &jerr);
    if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        log_info("nats: created stream %s (replicas %d)", cfg->name,
                 replicas);
        return ROJ_OK;
    }

    /* Another process created it in between: check what it made. */
    if (jerr == JSStreamNameExistErr) {
        jerr = 0;
        s = js_GetStreamInfo(&si, c->js, cfg->name, NULL, &jerr);
        if (s == NATS_OK) {
            roj_status st = stream_check(si->Config, cfg, replicas);
            jsStreamInfo_Destroy(si);
            return st;
        }
    }
    return natsx_fail(ROJ_ERR_IO, s, jerr, "nats: cannot create stream %s "
                      "with %d replicas on %s", cfg->name, replicas,
                      c->urls);
}

/* ---- Consumers ---- */

static bool streq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Checks an existing consumer and updates AckWait and MaxDeliver when
 * they differ; both may change on a live consumer. */
static roj_status consumer_reconcile(natsx_conn *c, const jsConsumerInfo *ci,
                                     const jsConsumerConfig *want)
{
    const jsConsumerConfig *have = ci->Config;
    jsConsumerInfo *updated = NULL;
    jsErrCode jerr = 0;

    if (!streq(have->FilterSubject, want->FilterSubject))
        return roj_error(ROJ_ERR_INVALID_ARG, "nats: consumer %s on stream "
                         "%s exists with filter subject \"%s\", expected "
                         "\"%s\": use another consumer name (it is not "
                         "deleted, because recreating a work-queue consumer "
                         "can deliver acked messages again)",
                         want->Durable, ci->Stream,
                         have->FilterSubject ? have->FilterSubject : "",
                         want->FilterSubject);
    if (have->AckPolicy != js_AckExplicit)
        return roj_error(ROJ_ERR_INVALID_ARG, "nats: consumer %s on stream "
                         "%s exists without explicit acks: use another "
                         "consumer name", want->Durable, ci->Stream);
    if (have->DeliverSubject && *have->DeliverSubject)
        return roj_error(ROJ_ERR_INVALID_ARG, "nats: consumer %s on stream "
                         "%s is a push consumer, expected a pull consumer: "
                         "use another consumer name", want->Durable,
                         ci->Stream);
    if (have->AckWait == want->AckWait && have->MaxDeliver == want->MaxDeliver)
        return ROJ_OK;

    jsConsumerConfig cc = *have;
    cc.AckWait = want->AckWait;
    cc.MaxDeliver = want->MaxDeliver;
    natsStatus s = js_UpdateConsumer(&updated, c->js, ci->Stream, &cc, NULL,
                                     &jerr);
    if (s != NATS_OK)
        return natsx_fail(ROJ_ERR_IO, s, jerr, "nats: cannot update AckWait "
                          "and MaxDeliver of consumer %s on stream %s",
                          want->Durable, ci->Stream);
    jsConsumerInfo_Destroy(updated);
    log_info("nats: updated consumer %s on stream %s: ack wait %lld ms, max "
             "deliver %lld", want->Durable, ci->Stream,
             (long long)(want->AckWait / NS_PER_MS),
             (long long)want->MaxDeliver);
    return ROJ_OK;
}

roj_status natsx_consumer_ensure(natsx_conn *c,
                                 const natsx_consumer_config *cfg)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    uint32_t ack_wait = cfg->ack_wait_ms ? cfg->ack_wait_ms
                                         : DEFAULT_ACK_WAIT_MS;

    if (!cfg->stream || !cfg->durable || !*cfg->durable ||
        strpbrk(cfg->durable, ".*> \t") || !cfg->filter_subject ||
        !*cfg->filter_subject)
        return roj_error(ROJ_ERR_INVALID_ARG, "nats: a consumer needs a "
                         "stream, a durable name without '.', '*', '>' or "
                         "spaces (got \"%s\") and a filter subject",
                         cfg->durable ? cfg->durable : "");

    jsConsumerConfig want;
    jsConsumerConfig_Init(&want);
    want.Durable = cfg->durable;
    want.AckPolicy = js_AckExplicit;
    want.AckWait = (int64_t)ack_wait * NS_PER_MS;
    want.MaxDeliver = cfg->max_deliver ? cfg->max_deliver
                                       : DEFAULT_MAX_DELIVER;
    want.FilterSubject = cfg->filter_subject;
    want.DeliverPolicy = js_DeliverAll;

    natsStatus s = js_GetConsumerInfo(&ci, c->js, cfg->stream, cfg->durable,
                                      NULL, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr) {
        jerr = 0;
        s = js_AddConsumer(&ci, c->js, cfg->stream, &want, NULL, &jerr);
        if (s == NATS_OK) {
            log_info("nats: created consumer %s on stream %s for %s",
                     cfg->durable, cfg->stream, cfg->filter_subject);
            jsConsumerInfo_Destroy(ci);
            return ROJ_OK;
        }
        if (jerr != JSConsumerNameExistErr)
            return natsx_fail(ROJ_ERR_IO, s, jerr, "nats: cannot create "
                              "consumer %s on stream %s for %s",
                              cfg->durable, cfg->stream,
                              cfg->filter_subject);
        /* Another process created it in between: check what it made. */
        jerr = 0;
        s = js_GetConsumerInfo(&ci, c->js, cfg->stream, cfg->durable, NULL,
                               &jerr);
    }
    if (s != NATS_OK)
        return natsx_fail(ROJ_ERR_IO, s, jerr, "nats: cannot read consumer "
                          "%s on stream %s", cfg->durable, cfg->stream);
    roj_status st = consumer_reconcile(c, ci, &want);
    jsConsumerInfo_Destroy(ci);
    return st;
}

/* ---- KV buckets ---- */

/* Checks the stream behind an existing bucket. */
static roj_status kv_check(natsx_conn *c, const natsx_kv_config *cfg,
                           int history, int replicas)
{
    char stream[300];
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;

    snprintf(stream, sizeof stream, "KV_%s", cfg->bucket);
    natsStatus s = js_GetStreamInfo(&si, c->js, stream, NULL, &jerr);
    if (s != NATS_OK)
        return natsx_fail(ROJ_ERR_IO, s, jerr, "nats: cannot read bucket "
                          "%s", cfg->bucket);
    int have_history = (int)si->Config->MaxMsgsPerSubject;
    int have_replicas = (int)si->Config->Replicas;
    jsStreamInfo_Destroy(si);
    if (have_history != history)
        return roj_error(ROJ_ERR_INVALID_ARG, "nats: bucket %s exists with "
                         "history %d, expected %d: use another bucket name",
                         cfg->bucket, have_history, history);
    if (have_replicas != replicas)
        return roj_error(ROJ_ERR_INVALID_ARG, "nats: bucket %s exists with "
                         "%d replicas, expected %d: use another bucket name",
                         cfg->bucket, have_replicas, replicas);
    return ROJ_OK;
}

roj_status natsx_kv_open(natsx_conn *c, const natsx_kv_config *cfg,
                         natsx_kv **out)
{
    int history = cfg->history > 0 ? cfg->history : 1;
    int replicas = cfg->replicas > 0 ? cfg->replicas : 1;
    kvStore *store = NULL;
    roj_status st;

    *out = NULL;
    if (!cfg->bucket || !*cfg->bucket || history > 64)
        return roj_error(ROJ_ERR_INVALID_ARG, "nats: a bucket needs a name "
                         "and a history of 1 to 64 (got %d)", history);

    /* Bind to an existing bucket, else create it. */
    natsStatus s = js_KeyValue(&store, c->js, cfg->bucket);
    if (s == NATS_OK) {
        st = kv_check(c, cfg, history, replicas);
        if (st != ROJ_OK)
            goto fail_store;
    } else if (s == NATS_NOT_FOUND) {
        kvConfig kc;
        kvConfig_Init(&kc);
        kc.Bucket = cfg->bucket;
        kc.History = (uint8_t)history;
        kc.Replicas = replicas;
        kc.StorageType = js_FileStorage;
        kc.TTL = (int64_t)cfg->ttl_ms * NS_PER_MS;
        s = js_CreateKeyValue(&store, c->js, &kc);
        if (s != NATS_OK) {
            /* Lost a race with another creator, or a real failure: the
             * message keeps the create error. */
            st = natsx_fail(ROJ_ERR_IO, s, 0, "nats: cannot create bucket "
                            "%s with %d replicas on %s", cfg->bucket,
                            replicas, c->urls);
            if (js_KeyValue(&store, c->js, cfg->bucket) != NATS_OK)
                return st;
            st = kv_check(c, cfg, history, replicas);
            if (st != ROJ_OK)
                goto fail_store;
        } else {
            log_info("nats: created bucket %s (history %d, replicas %d)",
                     cfg->bucket, history, replicas);
        }
    } else {
        return natsx_fail(ROJ_ERR_IO, s, 0, "nats: cannot open bucket %s on "
                          "%s", cfg->bucket, c->urls);
    }

    natsx_kv *kv = calloc(1, sizeof *kv);
    if (!kv || !(kv->bucket = strdup(cfg->bucket))) {
        free(kv);
        st = roj_error(ROJ_ERR_NOMEM, "nats: out of memory");
        goto fail_store;
    }
    kv->kv = store;
    *out = kv;
    return ROJ_OK;

fail_store:
    kvStore_Destroy(store);
    return st;
}

void natsx_kv_close(natsx_kv *kv)
{
    if (!kv)
        return;
    kvStore_Destroy(kv->kv);
    free(kv->bucket);
    free(kv);
}
