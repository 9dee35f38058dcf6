#include "core/error.h"

#include <stdio.h>
#include <string.h>

#define ERROR_MESSAGE_MAX 1024

static _Thread_local char error_message[ERROR_MESSAGE_MAX];

const char *roj_status_name(roj_status status)
{
    switch (status) {
    case ROJ_OK: return "ROJ_OK";
    case ROJ_ERR_INVALID_ARG: return "ROJ_ERR_INVALID_ARG";
    case ROJ_ERR_IO: return "ROJ_ERR_IO";
    case ROJ_ERR_FORMAT: return "ROJ_ERR_FORMAT";
    case ROJ_ERR_UNSUPPORTED: return "ROJ_ERR_UNSUPPORTED";
    case ROJ_ERR_NOMEM: return "ROJ_ERR_NOMEM";
    case ROJ_ERR_RANGE: return "ROJ_ERR_RANGE";
    case ROJ_ERR_NOT_FOUND: return "ROJ_ERR_NOT_FOUND";
    case ROJ_ERR_CONTEXT_FULL: return "ROJ_ERR_CONTEXT_FULL";
    case ROJ_ERR_NUMERIC: return "ROJ_ERR_NUMERIC";
    case ROJ_ERR_INTERNAL: return "ROJ_ERR_INTERNAL";
    case ROJ_ERR_ABORTED: return "ROJ_ERR_ABORTED";
    }
    return "ROJ_ERR_UNKNOWN";
}

const char *roj_last_error(void)
{
    return error_message;
}

roj_status roj_error(roj_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    return status;
}

roj_status roj_error_wrap(roj_status status, const char *fmt, ...)
{
    char prefix[ERROR_MESSAGE_MAX];
    char old[ERROR_MESSAGE_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, error_message, sizeof old);

    /* prefix, ": ", then the old message, cut at the buffer's end. */
    size_t used = strlen(prefix);
    memcpy(error_message, prefix, used + 1);
    if (old[0] != '\0' && used + 2 < sizeof error_message) {
        memcpy(error_message + used, ": ", 3);
        used += 2;
        size_t room = sizeof error_message - 1 - used;
        size_t n = strnlen(old, room);
        memcpy(error_message + used, old, n);
        error_message[used + n] = '\0';
    }
    return status;
}

void roj_error_clear(void)
{
    error_message[0] = '\0';
}
