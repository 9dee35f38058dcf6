/* The progress line of long work and the JSONL metrics log. */
#include "train/progress.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"

#define DEFAULT_INTERVAL_S 10.0
/* Terminal redraws are throttled to this period, in seconds. */
#define TERMINAL_PERIOD_S 0.1
#define BAR_WIDTH 20
#define PROGRESS_LINE_SIZE 512

/* One recorded update. */
typedef struct progress_sample {
    double time_s;
    uint64_t step, tokens;
} progress_sample;

struct progress {
    FILE *f;
    uint64_t total_steps;
    progress_mode mode; /* never PROGRESS_AUTO after creation */
    double interval_s;
    progress_sample ring[PROGRESS_WINDOW];
    size_t n_samples;   /* total recorded; the ring keeps the last ones */
    double last_print_s;
    int printed;        /* a line was printed at least once */
    int line_len;       /* length of the line on the terminal now */
};

progress_info progress_info_empty(uint64_t step)
{
    progress_info info;
    memset(&info, 0, sizeof info);
    info.step = step;
    info.epoch = NAN;
    info.loss = NAN;
    return info;
}

roj_status progress_create(FILE *f, uint64_t total_steps, progress_mode mode,
                           double interval_s, progress **out)
{
    *out = NULL;
    if (!f || !(interval_s >= 0.0))
        return roj_error(ROJ_ERR_INVALID_ARG, "progress_create: need a "
                         "stream and an interval >= 0, got %g", interval_s);
    progress *p = calloc(1, sizeof *p);
    if (!p)
        return roj_error(ROJ_ERR_NOMEM, "progress_create: out of memory");
    p->f = f;
    p->total_steps = total_steps;
    if (mode == PROGRESS_AUTO)
        mode = isatty(fileno(f)) ? PROGRESS_TERMINAL : PROGRESS_LINES;
    p->mode = mode;
    p->interval_s = interval_s > 0.0 ? interval_s : DEFAULT_INTERVAL_S;
    *out = p;
    return ROJ_OK;
}

void progress_destroy(progress *p)
{
    free(p);
}

static double monotonic_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void record(progress *p, const progress_info *info, double now_s)
{
    progress_sample *s = &p->ring[p->n_samples % PROGRESS_WINDOW];
    s->time_s = now_s;
    s->step = info->step;
    s->tokens = info->tokens;
    p->n_samples++;
}

/* The oldest and newest samples in the window; 0 when fewer than two. */
static int window_ends(const progress *p, const progress_sample **oldest,
                       const progress_sample **newest)
{
    if (p->n_samples < 2)
        return 0;
    size_t kept = p->n_samples < PROGRESS_WINDOW ? p->n_samples
                                                 : PROGRESS_WINDOW;
    *newest = &p->ring[(p->n_samples - 1) % PROGRESS_WINDOW];
    *oldest = &p->ring[(p->n_samples - kept) % PROGRESS_WINDOW];
    return 1;
}

void progress_format_duration(double seconds, char *buf, size_t size)
{
    if (!isfinite(seconds) || seconds < 0.0) {
        snprintf(buf, size, "?");
        return;
    }
    if (seconds > 99.0 * 86400.0) {
        snprintf(buf, size, ">99d");
        return;
    }
    long s = lround(seconds);
    if (s < 60)
        snprintf(buf, size, "%lds", s);
    else if (s < 3600)
        snprintf(buf, size, "%ldm%02lds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, size, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
    else
        snprintf(buf, size, "%ldd%02ldh", s / 86400, (s % 86400) / 3600);
}

/* Appends to buf at *len, keeping *len at the length snprintf reports so
 * a truncated line stays NUL-terminated. */
__attribute__((format(printf, 4, 5))) static void
append(char *buf, size_t size, int *len, const char *fmt, ...)
{
    va_list ap;
    size_t used = (size_t)*len < size ? (size_t)*len : size;
    va_start(ap, fmt);
    int n = vsnprintf(buf + used, size - used, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len += n;
}

static void append_bar(char *buf, size_t size, int *len, uint64_t step,
                       uint64_t total)
{
    double done = total ? (double)step / (double)total : 0.0;
    if (done > 1.0)
        done = 1.0;
    int filled = (int)(done * BAR_WIDTH);
    char bar[BAR_WIDTH + 1];
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    append(buf, size, len, "step %llu/%llu [%s] %.1f%%",
           (unsigned long long)step, (unsigned long long)total, bar,
           done * 100.0);
}

int progress_format(const progress *p, const progress_info *info, char *buf,
                    size_t size)
{
    int len = 0;
    const progress_sample *oldest, *newest;
    int have_rate = window_ends(p, &oldest, &newest);
    double dt = have_rate ? newest->time_s - oldest->time_s : 0.0;

    if (size > 0)
        buf[0] = '\0';
    if (p->total_steps)
        append_bar(buf, size, &len, info->step, p->total_steps);
    else
        append(buf, size, &len, "step %llu", (unsigned long long)info->step);
    if (isfinite(info->epoch))
        append(buf, size, &len, " epoch %.2f", info->epoch);
    if (!isnan(info->loss))
        append(buf, size, &len, " loss %.4g", info->loss);
    for (int i = 0; i < PROGRESS_MAX_METRICS; i++) {
        const progress_metric *m = &info->metrics[i];
        if (m->name && !isnan(m->value))
            append(buf, size, &len, " %s %.4g", m->name, m->value);
    }
    if (have_rate && dt > 0.0 && newest->tokens > oldest->tokens)
        append(buf, size, &len, " %.0f tok/s",
               (double)(newest->tokens - oldest->tokens) / dt);
    if (have_rate && dt > 0.0 && p->total_steps &&
        newest->step > oldest->step && info->step <= p->total_steps) {
        double step_s = dt / (double)(newest->step - oldest->step);
        char eta[32];
        progress_format_duration(step_s * (double)(p->total_steps -
                                                   info->step),
                                 eta, sizeof eta);
        append(buf, size, &len, " ETA %s", eta);
    }
    return len;
}

static void print_line(progress *p, const progress_info *info, double now_s,
                       int final)
{
    char line[PROGRESS_LINE_SIZE];
    int len = progress_format(p, info, line, sizeof line);
    if (len >= PROGRESS_LINE_SIZE)
        len = PROGRESS_LINE_SIZE - 1;

    if (p->mode == PROGRESS_TERMINAL) {
        /* Spaces clear what is left of a longer previous line. */
        int pad = p->line_len > len ? p->line_len - len : 0;
        fprintf(p->f, "\r%s%*s", line, pad, "");
        if (pad)
            fprintf(p->f, "\r%s", line);
        p->line_len = len;
        if (final) {
            fputc('\n', p->f);
            p->line_len = 0;
        }
    } else {
        fprintf(p->f, "%s\n", line);
    }
    fflush(p->f);
    p->last_print_s = now_s;
    p->printed = 1;
}

void progress_update_at(progress *p, const progress_info *info,
                        double now_s)
{
    record(p, info, now_s);
    double period = p->mode == PROGRESS_TERMINAL ? TERMINAL_PERIOD_S
                                                 : p->interval_s;
    if (!p->printed || now_s - p->last_print_s >= period)
        print_line(p, info, now_s, 0);
}

void progress_update(progress *p, const progress_info *info)
{
    progress_update_at(p, info, monotonic_s());
}

void progress_clear(progress *p)
{
    if (p->mode != PROGRESS_TERMINAL || p->line_len == 0)
        return;
    fprintf(p->f, "\r%*s\r", p->line_len, "");
    fflush(p->f);
    p->line_len = 0;
    /* Draw again at the next update. */
    p->printed = 0;
}

void progress_finish_at(progress *p, const progress_info *info,
                        double now_s)
{
    record(p, info, now_s);
    print_line(p, info, now_s, 1);
}

void progress_finish(progress *p, const progress_info *info)
{
    progress_finish_at(p, info, monotonic_s());
}

struct metrics_log {
    FILE *f;
    char *path;
};

/* Cuts the file back to just after its last newline, dropping a line a
 * killed writer left half written. Returns 0 or -1 with errno set. */
static int drop_partial_line(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -1;
    off_t end = st.st_size;
    char chunk[4096];
    while (end > 0) {
        off_t start = end > (off_t)sizeof chunk ? end - (off_t)sizeof chunk
                                                : 0;
        ssize_t n = pread(fd, chunk, (size_t)(end - start), start);
        if (n != (ssize_t)(end - start)) {
            if (n >= 0)
                errno = EIO;
            return -1;
        }
        for (ssize_t i = n - 1; i >= 0; i--) {
            if (chunk[i] == '\n') {
                off_t keep = start + i + 1;
                return keep == st.st_size ? 0 : ftruncate(fd, keep);
            }
        }
        end = start;
    }
    return st.st_size == 0 ? 0 : ftruncate(fd, 0);
}

roj_status metrics_log_open(const char *path, int append_mode,
                            metrics_log **out)
{
    metrics_log *log = NULL;
    roj_status st;
    int fd = -1;

    *out = NULL;
    if (!path)
        return roj_error(ROJ_ERR_INVALID_ARG, "metrics_log_open: NULL path");
    if (!(log = calloc(1, sizeof *log)) || !(log->path = strdup(path))) {
        st = roj_error(ROJ_ERR_NOMEM, "%s: out of memory", path);
        goto free_log;
    }
    int flags = O_RDWR | O_CREAT | O_CLOEXEC | (append_mode ? 0 : O_TRUNC);
    if ((fd = open(path, flags, 0644)) < 0) {
        st = roj_error(ROJ_ERR_IO, "%s: cannot open metrics log: %s", path,
                       strerror(errno));
        goto free_log;
    }
    if (append_mode && drop_partial_line(fd) != 0) {
        st = roj_error(ROJ_ERR_IO, "%s: cannot cut the partial last line: "
                       "%s", path, strerror(errno));
        goto close_fd;
    }
    /* O_APPEND after the repair, so every write lands at the end. */
    if (fcntl(fd, F_SETFL, O_APPEND) != 0 || !(log->f = fdopen(fd, "a"))) {
        st = roj_error(ROJ_ERR_IO, "%s: cannot open metrics log: %s", path,
                       strerror(errno));
        goto close_fd;
    }
    *out = log;
    return ROJ_OK;

close_fd:
    close(fd);
free_log:
    if (log)
        free(log->path);
    free(log);
    return st;
}

roj_status metrics_log_write(metrics_log *log, const cJSON *obj)
{
    char *text = cJSON_PrintUnformatted(obj);
    if (!text)
        return roj_error(ROJ_ERR_NOMEM, "%s: cannot format a metrics "
                         "record", log->path);
    size_t n = strlen(text);
    /* One fwrite of the whole line with its newline keeps the line in
     * one piece in the stdio buffer until the flush. */
    text[n] = '\n';
    size_t written = fwrite(text, 1, n + 1, log->f);
    free(text);
    if (written != n + 1 || fflush(log->f) != 0)
        return roj_error(ROJ_ERR_IO, "%s: metrics write failed: %s",
                         log->path, strerror(errno));
    return ROJ_OK;
}

roj_status metrics_log_close(metrics_log *log)
{
    roj_status st = ROJ_OK;
    if (!log)
        return ROJ_OK;
    if (fclose(log->f) != 0)
        st = roj_error(ROJ_ERR_IO, "%s: close failed: %s", log->path,
                       strerror(errno));
    free(log->path);
    free(log);
    return st;
}

void progress_set_total(progress *p, uint64_t total_steps)
{
    p->total_steps = total_steps;
}
