/* Error context: the message that goes with a roj_status, kept per thread. */
#ifndef ROJ_CORE_ERROR_H
#define ROJ_CORE_ERROR_H

#include "roj/roj.h"

/* Formats the message for the current thread and returns status, so a
 * failing function can write `return roj_error(ROJ_ERR_FORMAT, "...")`. */
roj_status roj_error(roj_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prepends "prefix: " to the current thread's message and returns status.
 * Use it to add the file name or field while an error travels up. */
roj_status roj_error_wrap(roj_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Clears the current thread's message. */
void roj_error_clear(void);

#endif
