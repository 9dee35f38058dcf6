/*
 * roj: a swarm of small language models.
 *
 * This header declares what every part of the public API shares: the status
 * codes returned by fallible calls, the per-thread error message that goes
 * with them, and the log callback.
 *
 * Threading: every function here is thread-safe. The error message is kept
 * per thread, so it describes the last failed call made on that thread.
 */
#ifndef ROJ_ROJ_H
#define ROJ_ROJ_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ROJ_VERSION_STRING "0.1.0"

/* Status of a fallible call. ROJ_OK is zero; every other value is an error
 * and comes with a message from roj_last_error(). */
typedef enum roj_status {
    ROJ_OK = 0,
    ROJ_ERR_INVALID_ARG,  /* the caller passed a bad value */
    ROJ_ERR_IO,           /* open, read, write or mmap failed */
    ROJ_ERR_FORMAT,       /* a file or message is malformed */
    ROJ_ERR_UNSUPPORTED,  /* valid input that roj cannot handle */
    ROJ_ERR_NOMEM,        /* an allocation failed */
    ROJ_ERR_RANGE,        /* a value is outside its allowed range */
    ROJ_ERR_NOT_FOUND,    /* a named key, tensor or token is missing */
    ROJ_ERR_CONTEXT_FULL, /* the request needs more KV cache than exists */
    ROJ_ERR_NUMERIC,      /* NaN or infinity where a number was needed */
    ROJ_ERR_INTERNAL,     /* a bug in roj */
    ROJ_ERR_ABORTED       /* the caller's abort callback stopped the call */
} roj_status;

/* Returns the constant name of a status, for example "ROJ_ERR_FORMAT". */
const char *roj_status_name(roj_status status);

/* Returns the message of the last failed call on this thread, or "" when
 * none failed. The string stays valid until the next failing call on the
 * same thread. */
const char *roj_last_error(void);

/* Log levels, most severe first. */
typedef enum roj_log_level {
    ROJ_LOG_ERROR = 0,
    ROJ_LOG_WARN = 1,
    ROJ_LOG_INFO = 2,
    ROJ_LOG_DEBUG = 3
} roj_log_level;

/* Receives one log line without a trailing newline. */
typedef void (*roj_log_fn)(roj_log_level level, const char *message,
                           void *user_data);

/* Sets the process-wide log callback and the most verbose level passed to
 * it. With fn == NULL, lines go to stderr with time and level. Messages
 * more verbose than max_level are not formatted at all. */
void roj_log_set(roj_log_fn fn, void *user_data, roj_log_level max_level);

#ifdef __cplusplus
}
#endif

#endif
