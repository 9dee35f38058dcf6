#include "core/log.h"

#include <pthread.h>
#include <stdio.h>
#include <time.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static roj_log_fn log_fn;
static void *log_user_data;
static roj_log_level log_max_level = ROJ_LOG_WARN;

void roj_log_set(roj_log_fn fn, void *user_data, roj_log_level max_level)
{
    pthread_mutex_lock(&log_lock);
    log_fn = fn;
    log_user_data = user_data;
    log_max_level = max_level;
    pthread_mutex_unlock(&log_lock);
}

int roj_log_enabled(roj_log_level level)
{
    return level <= log_max_level;
}

static const char *level_name(roj_log_level level)
{
    switch (level) {
    case ROJ_LOG_ERROR: return "error";
    case ROJ_LOG_WARN: return "warn";
    case ROJ_LOG_INFO: return "info";
    case ROJ_LOG_DEBUG: return "debug";
    }
    return "?";
}

void roj_log(roj_log_level level, const char *fmt, ...)
{
    char line[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);

    pthread_mutex_lock(&log_lock);
    if (log_fn) {
        log_fn(level, line, log_user_data);
    } else {
        struct timespec now;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        fprintf(stderr, "%02d:%02d:%02d.%03ld %s %s\n", tm.tm_hour,
                tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000L,
                level_name(level), line);
    }
    pthread_mutex_unlock(&log_lock);
}
