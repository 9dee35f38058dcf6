/* AdamW, learning-rate schedule and gradient clipping (see optim.h). */
#include "train/optim.h"

#include <math.h>

float optim_lr(const optim_cfg *c, int64_t step)
{
    if (c->warmup > 0 && step < c->warmup)
        return c->lr * (float)(step + 1) / (float)c->warmup;
    const int64_t span = c->total - c->warmup;
    if (span <= 0)
        return c->lr;
    double f = (double)(step - c->warmup) / (double)span;
    if (f > 1.0)
        f = 1.0;
    const double cosv = 0.5 * (1.0 + cos(3.14159265358979323846 * f));
    const double lo = c->min_lr_frac;
    return (float)(c->lr * (lo + (1.0 - lo) * cosv));
}

typedef struct norm_job {
    const float *g;
    int64_t n;
    double part[256];
} norm_job;

static void norm_worker(void *ctx, int part, int n_parts)
{
    norm_job *j = ctx;
    int64_t b, e;
    pool_split(j->n, n_parts, part, 16, &b, &e);
    /* Blocks of float sums, added in double: fast and still accurate. */
    double s = 0.0;
    for (int64_t i = b; i < e; i += 1024) {
        const int64_t end = i + 1024 < e ? i + 1024 : e;
        float f = 0.0f;
        for (int64_t k = i; k < end; k++)
            f += j->g[k] * j->g[k];
        s += f;
    }
    j->part[part] = s;
}

double optim_grad_norm(const tmodel *m, roj_pool *pool)
{
    norm_job j = {.g = m->grads, .n = m->n_params};
    const int n = pool ? pool_size(pool) : 1;
    if (pool && n <= 256)
        pool_run(pool, norm_worker, &j);
    else
        norm_worker(&j, 0, 1);
    double s = 0.0;
    for (int i = 0; i < (pool && n <= 256 ? n : 1); i++)
        s += j.part[i];
    return sqrt(s);
}

typedef struct step_job {
    const optim_cfg *c;
    tmodel *m;
    float *mom, *vel;
    float lr, grad_scale, bc1, bc2;
} step_job;

static void update_range(const step_job *j, const ttensor *t, int64_t b,
                         int64_t e)
{
    const optim_cfg *c = j->c;
    float *restrict p = j->m->params;
    const float *restrict g = j->m->grads;
    float *restrict mom = j->mom, *restrict vel = j->vel;
    const float decay = t->decay ? j->lr * c->weight_decay : 0.0f;
    const float b1 = c->beta1, b2 = c->beta2, gs = j->grad_scale;
    const float inv_bc1 = 1.0f / j->bc1, inv_bc2 = 1.0f / j->bc2;
    const float lr = j->lr, eps = c->eps;
    /* Plain element-wise arithmetic on locals, so the compiler vectorizes
     * it. */
    for (int64_t i = b; i < e; i++) {
        const float gi = g[i] * gs;
        const float m = b1 * mom[i] + (1.0f - b1) * gi;
        const float v = b2 * vel[i] + (1.0f - b2) * gi * gi;
        mom[i] = m;
        vel[i] = v;
        p[i] -= lr * (m * inv_bc1) / (sqrtf(v * inv_bc2) + eps) +
                decay * p[i];
    }
}

static void step_worker(void *ctx, int part, int n_parts)
{
    const step_job *j = ctx;
    int64_t b, e;
    pool_split(j->m->n_params, n_parts, part, 16, &b, &e);
    for (int ti = 0; ti < j->m->n_tensors; ti++) {
        const ttensor *t = &j->m->tensors[ti];
        int64_t t0 = t->offset, t1 = t->offset + t->ne[0] * t->ne[1];
        t0 = t0 > b ? t0 : b;
        t1 = t1 < e ? t1 : e;
        if (t0 < t1)
            update_range(j, t, t0, t1);
    }
}

void optim_step(const optim_cfg *c, tmodel *m, float *mom, float *vel,
                int64_t t, float lr, float grad_scale, roj_pool *pool)
{
    step_job j = {.c = c, .m = m, .mom = mom, .vel = vel, .lr = lr,
                  .grad_scale = grad_scale,
                  .bc1 = 1.0f - powf(c->beta1, (float)t),
                  .bc2 = 1.0f - powf(c->beta2, (float)t)};
    if (pool)
        pool_run(pool, step_worker, &j);
    else
        step_worker(&j, 0, 1);
}
