/*
 * The work queue: publishing with deduplication and retries, pull
 * subscriptions bound to durable consumers, fetching, and the four
 * acknowledgement kinds.
 */
#include "nats/natsx_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"

#define NS_PER_MS 1000000LL
/* Backoff between publish attempts: starts here, doubles, stops
 * growing at the maximum (milliseconds). */
#define PUBLISH_BACKOFF_FIRST_MS 25
#define PUBLISH_BACKOFF_MAX_MS 500
/* Maximum wait for one publish acknowledgement (milliseconds). A
 * publish in flight when its stream leader dies gets no answer, so the
 * next attempt should not wait for the whole deadline. */
#define PUBLISH_ATTEMPT_MAX_MS 2000
/* Maximum pause after a transient fetch failure (milliseconds). */
#define FETCH_PAUSE_MAX_MS 100

struct natsx_pull {
    natsSubscription *sub;
    char *stream;
    char *durable;
};

roj_status natsx_publish(natsx_conn *c, const char *subject,
                         const void *data, size_t len, const char *msg_id,
                         uint32_t deadline_ms, uint64_t *seq,
                         bool *duplicate)
{
    int64_t start = natsx_now_ms();
    int64_t deadline = start + deadline_ms;
    int64_t backoff = PUBLISH_BACKOFF_FIRST_MS;
    int attempts = 0;

    if (len > INT_MAX)
        return roj_error(ROJ_ERR_RANGE, "nats: message for %s is %zu bytes, "
                         "more than nats.c takes", subject, len);
    for (;;) {
        jsPubAck *pa = NULL;
        jsErrCode jerr = 0;
        jsPubOptions po;
        int64_t left = deadline - natsx_now_ms();

        jsPubOptions_Init(&po);
        po.MsgId = msg_id;
        po.MaxWait = left < 1 ? 1
                     : left > PUBLISH_ATTEMPT_MAX_MS ? PUBLISH_ATTEMPT_MAX_MS
                                                     : left;
        attempts++;
        natsStatus s = js_Publish(&pa, c->js, subject, data, (int)len, &po,
                                  &jerr);
        if (s == NATS_OK) {
            if (seq)
                *seq = pa->Sequence;
            if (duplicate)
                *duplicate = pa->Duplicate;
            jsPubAck_Destroy(pa);
            if (attempts > 1)
                log_info("nats: published to %s (message id %s) after %d "
                         "attempts in %lld ms", subject,
                         msg_id ? msg_id : "none", attempts,
                         (long long)(natsx_now_ms() - start));
            return ROJ_OK;
        }

        /* Retry a transient failure with the same message id, so the
         * stream stores the message once even if an attempt that timed
         * out had in fact been stored. */
        int64_t now = natsx_now_ms();
        if (!natsx_is_transient(s, jerr) || now + backoff >= deadline)
            return natsx_fail(ROJ_ERR_IO, s, jerr, "nats: cannot publish to "
                              "%s (message id %s) on %s after %d attempts "
                              "in %lld ms", subject,
                              msg_id ? msg_id : "none", c->urls, attempts,
                              (long long)(now - start));
        if (attempts == 1) {
            char text[256];
            log_warn("nats: publish to %s failed (%s), retrying for up to "
                     "%u ms", subject,
                     natsx_last_text(s, text, sizeof text), deadline_ms);
        }
        natsx_sleep_ms(backoff);
        backoff = backoff * 2 > PUBLISH_BACKOFF_MAX_MS ? PUBLISH_BACKOFF_MAX_MS
                                                       : backoff * 2;
    }
}

roj_status natsx_pull_bind(natsx_conn *c, const char *stream,
                           const char *durable, natsx_pull **out)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsx_pull *p = NULL;
    roj_status st;

    *out = NULL;

    /* The subscription subject must be the consumer's filter. */
    natsStatus s = js_GetConsumerInfo(&ci, c->js, stream, durable, NULL,
                                      &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr ||
        jerr == JSStreamNotFoundErr)
        return roj_error(ROJ_ERR_NOT_FOUND, "nats: no consumer %s on stream "
                         "%s at %s: create it first (natsx_consumer_ensure)",
                         durable, stream, c->urls);
    if (s != NATS_OK)
        return natsx_fail(ROJ_ERR_IO, s, jerr, "nats: cannot read consumer "
                          "%s on stream %s", durable, stream);
    const char *filter = ci->Config->FilterSubject;
    if (!filter || !*filter) {
        st = roj_error(ROJ_ERR_INVALID_ARG, "nats: consumer %s on stream %s "
                       "has no filter subject", durable, stream);
        goto fail_info;
    }

    p = calloc(1, sizeof *p);
    if (!p || !(p->stream = strdup(stream)) ||
        !(p->durable = strdup(durable))) {
        st = roj_error(ROJ_ERR_NOMEM, "nats: out of memory");
        goto fail_alloc;
    }
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Consumer = durable;
    jerr = 0;
    s = js_PullSubscribe(&p->sub, c->js, filter, durable, NULL, &so, &jerr);
    if (s != NATS_OK) {
        st = natsx_fail(ROJ_ERR_IO, s, jerr, "nats: cannot bind to consumer "
                        "%s on stream %s", durable, stream);
        goto fail_alloc;
    }
    jsConsumerInfo_Destroy(ci);
    *out = p;
    return ROJ_OK;

fail_alloc:
    if (p) {
        free(p->stream);
        free(p->durable);
    }
    free(p);
fail_info:
    jsConsumerInfo_Destroy(ci);
    return st;
}

void natsx_pull_close(natsx_pull *p)
{
    if (!p)
        return;
    /* Destroy without unsubscribing: the durable consumer stays. */
    natsSubscription_Destroy(p->sub);
    free(p->stream);
    free(p->durable);
    free(p);
}

roj_status natsx_fetch(natsx_pull *p, int max, uint32_t timeout_ms,
                       natsx_batch *b)
{
    natsMsgList list = {0};
    jsErrCode jerr = 0;
    int64_t start = natsx_now_ms();

    b->msgs = NULL;
    b->n = 0;
    if (max < 1 || timeout_ms < 1)
        return roj_error(ROJ_ERR_INVALID_ARG, "nats: fetch needs a batch of "
                         "at least 1 and a timeout of at least 1 ms (got "
                         "%d and %u)", max, timeout_ms);
    natsStatus s = natsSubscription_Fetch(&list, p->sub, max, timeout_ms,
                                          &jerr);
    if (s == NATS_OK) {
        b->msgs = list.Msgs;
        b->n = list.Count;
        return ROJ_OK;
    }
    natsMsgList_Destroy(&list);
    if (s == NATS_TIMEOUT)
        return ROJ_OK;
    if (natsx_is_transient(s, jerr)) {
        char text[256];
        int64_t left = (int64_t)timeout_ms - (natsx_now_ms() - start);
        log_debug("nats: fetch from %s on %s: %s", p->durable, p->stream,
                  natsx_last_text(s, text, sizeof text));
        natsx_sleep_ms(left < FETCH_PAUSE_MAX_MS ? left : FETCH_PAUSE_MAX_MS);
        return ROJ_OK;
    }
    return natsx_fail(ROJ_ERR_IO, s, jerr, "nats: cannot fetch from consumer "
                      "%s on stream %s", p->durable, p->stream);
}

void natsx_batch_free(natsx_batch *b)
{
    natsMsgList list = {b->msgs, b->n};
    if (b->msgs)
        natsMsgList_Destroy(&list);
    b->msgs = NULL;
    b->n = 0;
}

roj_status natsx_msg_info_get(natsMsg *m, natsx_msg_info *info)
{
    jsMsgMetaData *meta = NULL;

    memset(info, 0, sizeof *info);
    natsStatus s = natsMsg_GetMetaData(&meta, m);
    if (s != NATS_OK)
        return natsx_fail(ROJ_ERR_FORMAT, s, 0, "nats: message on %s has no "
                          "JetStream metadata", natsMsg_GetSubject(m));
    info->stream_seq = meta->Sequence.Stream;
    info->consumer_seq = meta->Sequence.Consumer;
    info->delivered = meta->NumDelivered;
    info->pending = meta->NumPending;
    info->timestamp_ms = meta->Timestamp / NS_PER_MS;
    jsMsgMetaData_Destroy(meta);
    return ROJ_OK;
}

roj_status natsx_msg_ack(natsMsg *m)
{
    jsErrCode jerr = 0;
    natsStatus s = natsMsg_AckSync(m, NULL, &jerr);
    if (s != NATS_OK)
        return natsx_fail(ROJ_ERR_IO, s, jerr, "nats: cannot ack the message "
                          "on %s", natsMsg_GetSubject(m));
    return ROJ_OK;
}

roj_status natsx_msg_nak(natsMsg *m, uint32_t delay_ms)
{
    natsStatus s = delay_ms ? natsMsg_NakWithDelay(m, delay_ms, NULL)
                            : natsMsg_Nak(m, NULL);
    if (s != NATS_OK)
        return natsx_fail(ROJ_ERR_IO, s, 0, "nats: cannot nak the message on "
                          "%s", natsMsg_GetSubject(m));
    return ROJ_OK;
}

roj_status natsx_msg_in_progress(natsMsg *m)
{
    natsStatus s = natsMsg_InProgress(m, NULL);
    if (s != NATS_OK)
        return natsx_fail(ROJ_ERR_IO, s, 0, "nats: cannot mark the message "
                          "on %s in progress", natsMsg_GetSubject(m));
    return ROJ_OK;
}

roj_status natsx_msg_term(natsMsg *m)
{
    natsStatus s = natsMsg_Term(m, NULL);
    if (s != NATS_OK)
        return natsx_fail(ROJ_ERR_IO, s, 0, "nats: cannot terminate the "
                          "message on %s", natsMsg_GetSubject(m));
    return ROJ_OK;
}
