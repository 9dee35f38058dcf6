/*
 * Forward and backward pass of a training model over a packed batch.
 *
 * A batch is several sequences laid end to end (no padding): token t
 * belongs to the sequence whose range [seq_start[s], seq_start[s+1])
 * contains it and attends causally within that sequence only. Loss is taken
 * at target rows only: row tgt_row[i] predicts token tgt_id[i]; the output
 * head runs on those rows alone, so a classifier pays for one row per
 * example, not for every token.
 *
 * A tgraph owns the activations and gradient scratch for batches up to its
 * capacities and runs on a thread pool; matrix products go to OpenBLAS
 * (single-threaded inside, the pool splits rows), so results depend only
 * on the inputs and the thread count.
 */
#ifndef ROJ_TRAIN_TGRAPH_H
#define ROJ_TRAIN_TGRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/threadpool.h"
#include "train/tmodel.h"

typedef struct tbatch {
    int32_t n_tok;
    const int32_t *tokens;    /* n_tok input ids */
    const int32_t *pos;       /* n_tok positions within their sequence */
    int32_t n_seq;
    const int32_t *seq_start; /* n_seq + 1 offsets, seq_start[0] = 0 */
    int32_t n_tgt;
    const int32_t *tgt_row;   /* n_tgt rows (strictly increasing) */
    const int32_t *tgt_id;    /* n_tgt target ids */
    const float *tgt_w;       /* n_tgt loss weights, or NULL for all 1 */
} tbatch;

typedef struct tgraph tgraph;

/* Creates the scratch for batches of at most cap_tok tokens, cap_tgt
 * targets and sequences of at most max_len tokens. */
roj_status tgraph_create(tmodel *m, roj_pool *pool, int32_t cap_tok,
                         int32_t cap_tgt, int32_t max_len, tgraph **out);
void tgraph_free(tgraph *g);

/* Runs the batch forward. With loss_scale > 0 it also runs backward and
 * ADDS d(loss * loss_scale)/d(params) into m->grads (loss summed over
 * targets, each times its weight). Writes that weighted sum (nats) to
 * *loss_sum, and when logits
 * is not NULL copies the n_tgt x n_vocab logits there (before softmax).
 * Checks the batch against the capacities and the vocabulary. */
roj_status tgraph_run(tgraph *g, const tbatch *b, float loss_scale,
                      double *loss_sum, float *logits);

/* Residual dropout for the following training runs (those with a
 * backward pass): each attention and feed-forward branch output is zeroed
 * with probability p and the rest scaled by 1 / (1 - p). The elements
 * dropped depend only on seed, so set a new seed for every batch. */
void tgraph_set_dropout(tgraph *g, float p, uint64_t seed);

/* Label smoothing of the following training runs (tops_smooth): targets
 * among ids[0..n) learn 1 - eps on themselves and eps / n on each of
 * ids. Runs without a backward pass (validation) keep one-hot targets.
 * ids must outlive g's use of them, and eps 0 turns smoothing off. */
void tgraph_set_smoothing(tgraph *g, const int32_t *ids, int32_t n,
                          float eps);

#endif
