/* Helpers shared by the files of src/nats/; natsx.h is the API. */
#ifndef ROJ_NATS_NATSX_INTERNAL_H
#define ROJ_NATS_NATSX_INTERNAL_H

#include "nats/natsx.h"

/* nats.c's own wait for a JetStream API reply, in milliseconds. */
#define NATSX_API_WAIT_MS 5000

struct natsx_conn {
    natsConnection *nc;
    jsCtx *js;
    char *urls; /* the configured URLs without user information */
};

struct natsx_kv {
    kvStore *kv;
    char *bucket;
};

/* Records a failed nats.c call as the thread's roj error: the message
 * formatted from fmt, then ": ", nats.c's last error text (with any
 * user information in URLs removed) and the JetStream error code when
 * there is one. Returns status. */
roj_status natsx_fail(roj_status status, natsStatus s, jsErrCode jerr,
                      const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Copies nats.c's last error text for this thread, redacted, into buf;
 * falls back to the status name when nats.c kept no text. */
const char *natsx_last_text(natsStatus s, char *buf, size_t size);

/* Whether nats.c's last error text on this thread contains needle,
 * ignoring case. */
bool natsx_last_text_has(const char *needle);

/* Monotonic clock in milliseconds. */
int64_t natsx_now_ms(void);

void natsx_sleep_ms(int64_t ms);

#endif
