/*
 * The optimisation loop of `roj train` and its checkpoints; internal to
 * src/train. train_run (train_setup.c) prepares a tloop and calls
 * tloop_run.
 */
#ifndef ROJ_TRAIN_TRAIN_LOOP_H
#define ROJ_TRAIN_TRAIN_LOOP_H

#include <stdio.h>

#include "core/threadpool.h"
#include "train/optim.h"
#include "train/progress.h"
#include "train/tgraph.h"
#include "train/trainer.h"

/* Position of the loop: everything a resumed run needs besides the
 * weights and moments. */
typedef struct tloop_pos {
    int64_t step;         /* optimizer steps done */
    int64_t epoch;        /* current epoch (0-based) */
    int64_t cursor;       /* next example of the epoch's order */
    int64_t total_steps;  /* planned steps (fixed once chosen) */
    double seconds;       /* training time so far, over all runs */
} tloop_pos;

typedef struct tloop {
    const train_opts *o;
    tmodel *m;
    roj_pool *pool;
    const tenc *train, *valid;
    const int32_t *label_tokens;   /* classify: per label, else NULL */
    int32_t n_labels;
    int32_t keep_tail;             /* --token-dropout spares this many
                                      prompt tokens at its end (the
                                      template after the text) */
    optim_cfg opt;
    float *mom, *vel;
    float *ema;                    /* moving average of params, or NULL */
    float *best;                   /* --keep-best: the weights validated
                                      best so far, or NULL */
    bool have_best;                /* a validation pass ran (and best, if
                                      kept, holds its best weights) */
    double best_valid_loss;        /* validation loss of best */
    tloop_pos pos;
    /* history for the loss curve: per step train loss; per evaluation
     * the step, validation loss and accuracy */
    float *hist_loss;
    int64_t hist_cap;
    float *ev_step, *ev_loss, *ev_acc;
    int64_t n_ev, ev_cap;
    double best_valid_acc, last_valid_acc, last_valid_loss;
    /* checkpoint identity: "key=value ..." of everything that must not
     * change, and its hash */
    char options[2048];
    char digest[65];
    int n_threads;
    /* set by train_setup for checkpoints: writes tokenizer keys */
    roj_status (*write_meta)(void *ctx, gguf_writer *w);
    void *meta_ctx;
    metrics_log *metrics;      /* --metrics, or NULL */
    progress *prog;            /* progress line, or NULL when quiet */
    /* validation scratch, made at the first validation pass */
    tgraph *vgraph;
    float *vlogits;
    int32_t vgraph_len;
} tloop;

/* Runs steps until total_steps, writing checkpoints and metrics; on
 * SIGINT/SIGTERM it writes a checkpoint and returns ROJ_ERR_ABORTED. */
roj_status tloop_run(tloop *L);

/* Validation loss and accuracy of the current weights (accuracy: share of
 * examples whose every target token is the arg-max; classify compares
 * label tokens only). */
roj_status tloop_validate(tloop *L, const tenc *set, double *loss,
                          double *acc);

/* Checkpoints (train_ckpt.c): the trainable array, both moments, the loop
 * position and the history, in one GGUF written atomically. */
roj_status tloop_save(tloop *L, const char *path);
roj_status tloop_load(tloop *L, const char *path);

/* Frees the validation scratch. */
void tloop_free_scratch(tloop *L);

/* Steps of one epoch for these batch settings. */
int64_t tloop_steps_per_epoch(const tloop *L);

#endif
