/* Leveled logging for library code. The level is checked before the
 * message is formatted. */
#ifndef ROJ_CORE_LOG_H
#define ROJ_CORE_LOG_H

#include "roj/roj.h"

int roj_log_enabled(roj_log_level level);
void roj_log(roj_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define ROJ_LOG_AT(level, ...)                                                \
    do {                                                                      \
        if (roj_log_enabled(level))                                           \
            roj_log(level, __VA_ARGS__);                                      \
    } while (0)
#define log_error(...) ROJ_LOG_AT(ROJ_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) ROJ_LOG_AT(ROJ_LOG_WARN, __VA_ARGS__)
#define log_info(...) ROJ_LOG_AT(ROJ_LOG_INFO, __VA_ARGS__)
#define log_debug(...) ROJ_LOG_AT(ROJ_LOG_DEBUG, __VA_ARGS__)

#endif
