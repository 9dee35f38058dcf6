/*
 * Progress of long work on a stream (normally stderr), and a JSONL log of
 * metrics.
 *
 * The progress line looks like
 *   step 120/3000 [....................] 4.0% epoch 1.20 loss 2.314
 *   val_acc 0.812 1234 tok/s ETA 4m00s
 * (one line). On a terminal it is redrawn in place with '\r'; otherwise
 * one line is printed every interval, so log files stay readable. Speed
 * and ETA come from a moving average over the last PROGRESS_WINDOW
 * updates.
 *
 * Neither object is thread-safe: update each from one thread.
 */
#ifndef ROJ_TRAIN_PROGRESS_H
#define ROJ_TRAIN_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "roj/roj.h"

/* Number of recent updates that the moving averages of step time and
 * token rate cover. */
#define PROGRESS_WINDOW 32
/* Named values shown after the loss, such as val_acc. */
#define PROGRESS_MAX_METRICS 4

/* How the line is written. */
typedef enum progress_mode {
    PROGRESS_AUTO = 0, /* PROGRESS_TERMINAL when the stream is a tty */
    PROGRESS_TERMINAL, /* redraw in place with '\r' */
    PROGRESS_LINES     /* a new line every interval */
} progress_mode;

/* One named value on the progress line. */
typedef struct progress_metric {
    const char *name; /* NULL: not shown */
    double value;
} progress_metric;

/* The numbers the caller reports at each update. NaN hides a field. */
typedef struct progress_info {
    uint64_t step;   /* steps done so far */
    double epoch;    /* fractional epochs done */
    double loss;
    progress_metric metrics[PROGRESS_MAX_METRICS];
    uint64_t tokens; /* tokens processed so far, for tok/s; 0 hides it */
} progress_info;

/* Returns an info with NaN epoch and loss and no metrics, to fill in. */
progress_info progress_info_empty(uint64_t step);

typedef struct progress progress;

/* Creates a progress line on f for total_steps steps (0 when unknown:
 * then no bar, percentage or ETA). interval_s is the time between lines
 * in PROGRESS_LINES mode; 0 takes 10 seconds. Returns ROJ_ERR_INVALID_ARG
 * or ROJ_ERR_NOMEM; free with progress_destroy. */
roj_status progress_create(FILE *f, uint64_t total_steps, progress_mode mode,
                           double interval_s, progress **out);

/* Changes the step count the bar and ETA are measured against (a time
 * budget can shorten a run after it started). */
void progress_set_total(progress *p, uint64_t total_steps);

/* Records an update and prints the line when it is due: at most every
 * 0.1 s on a terminal, every interval otherwise, and always on the first
 * update. */
void progress_update(progress *p, const progress_info *info);

/* Same as progress_update with the monotonic time now_s in seconds given
 * by the caller, for tests and replays. */
void progress_update_at(progress *p, const progress_info *info,
                        double now_s);

/* Erases the line on a terminal so that a log message can be printed; the
 * next update draws it again. Does nothing in PROGRESS_LINES mode. */
void progress_clear(progress *p);

/* Prints the final line and ends it with a newline. */
void progress_finish(progress *p, const progress_info *info);

/* Same as progress_finish at the caller's time now_s. */
void progress_finish_at(progress *p, const progress_info *info,
                        double now_s);

/* Frees p; NULL is allowed. Does not close the stream. */
void progress_destroy(progress *p);

/* Formats the line for info from the samples recorded so far into buf
 * and returns its length, as snprintf does. */
int progress_format(const progress *p, const progress_info *info, char *buf,
                    size_t size);

/* Formats a duration such as "45s", "4m10s", "1h02m" or "2d07h" into
 * buf; "?" for a negative or non-finite one. */
void progress_format_duration(double seconds, char *buf, size_t size);

/* JSONL metrics file: one JSON object per line. */
typedef struct metrics_log metrics_log;

/* Opens path for metrics. With append != 0 (a resumed run) existing lines
 * are kept, but a last line without its newline, left by a killed
 * process, is cut off first. Otherwise the file is emptied. Returns
 * ROJ_ERR_IO with the path, or ROJ_ERR_NOMEM. */
roj_status metrics_log_open(const char *path, int append, metrics_log **out);

/* Writes obj as one line and flushes it to the kernel, so killing the
 * process loses at most the line being written. A power loss can still
 * lose lines: there is no fsync. Returns ROJ_ERR_IO with the path. */
roj_status metrics_log_write(metrics_log *log, const cJSON *obj);

/* Closes the file and frees log; NULL is allowed. Returns ROJ_ERR_IO when
 * the close fails. */
roj_status metrics_log_close(metrics_log *log);

#endif
