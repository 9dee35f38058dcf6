/*
 * AdamW with linear warm-up and cosine decay, and global gradient-norm
 * clipping. The moments m and v have the layout of the model's trainable
 * array; decay applies to tensors marked for it (matrices and embeddings,
 * not gains or biases).
 */
#ifndef ROJ_TRAIN_OPTIM_H
#define ROJ_TRAIN_OPTIM_H

#include <stdint.h>

#include "core/threadpool.h"
#include "train/tmodel.h"

typedef struct optim_cfg {
    float lr;            /* peak learning rate */
    float min_lr_frac;   /* cosine ends at lr * min_lr_frac */
    float beta1, beta2, eps;
    float weight_decay;
    float clip;          /* max global gradient norm; 0 = no clipping */
    int64_t warmup;      /* steps of linear warm-up */
    int64_t total;       /* steps of the whole run */
} optim_cfg;

/* Learning rate of step (0-based). */
float optim_lr(const optim_cfg *c, int64_t step);

/* L2 norm of all gradients, split over pool (may be NULL) in a fixed
 * order, so the result depends only on the thread count. */
double optim_grad_norm(const tmodel *m, roj_pool *pool);

/* One AdamW update of every trainable value with the current gradients
 * (scaled by grad_scale, the clipping factor); t is the 1-based update
 * count for bias correction. Splits the array over pool (may be NULL);
 * the result does not depend on the thread count. */
void optim_step(const optim_cfg *c, tmodel *m, float *mom, float *vel,
                int64_t t, float lr, float grad_scale, roj_pool *pool);

#endif
