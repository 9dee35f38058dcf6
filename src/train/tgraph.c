/* Forward and backward pass over a packed batch (see tgraph.h). */
#include "train/tgraph.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "train/tblas.h"
#include "train/tops.h"
#include "train/trng.h"

/* Saved activations of one layer, all (n_tok, width) row-major. */
typedef struct tact {
    float *x;      /* layer input (residual stream) */
    float *rstd1, *n1;
    float *q, *k, *v;     /* after bias and RoPE */
    float *p;             /* attention probabilities */
    float *att;           /* attention output, input of wo */
    float *xm;            /* residual after attention */
    float *rstd2, *n2;
    float *g, *u, *h;     /* gate, up, silu(gate) * up */
    uint8_t *keep_a, *keep_f; /* dropout: kept elements of each branch */
    float *ax[7];         /* LoRA: A x of q k v o gate up down */
} tact;

struct tgraph {
    tmodel *m;
    roj_pool *pool;
    int n_threads;
    int32_t cap_tok, cap_tgt, max_len;
    tact *act;
    float *x_out;               /* (cap_tok, n_embd) last layer output */
    float *xf, *rstd_f, *nf;    /* (cap_tgt, n_embd) target rows */
    float *logits;              /* (cap_tgt, n_vocab) */
    float *loss_rows;           /* (cap_tgt) */
    /* backward scratch */
    float *dx, *dxm, *dn, *dq, *dk, *dv, *datt, *dg, *du, *dh, *dax;
    float *dxf, *dnf;
    float *branch;              /* (cap_tok, n_embd) dropout scratch */
    float *rope_table;          /* (max_len, head_dim) cos and sin */
    float dropout;              /* drop probability of this run, 0 = off */
    uint64_t drop_seed;
    bool drop_on;               /* this run drops (a training run) */
    tops_smooth smooth;         /* label smoothing of training runs */
    float *attn_scratch;        /* (n_threads, max_len^2) */
    int64_t *p_off;             /* per sequence offset into act->p */
    void *block;                /* one allocation for all of the above */
};

/* ---- parallel helpers ------------------------------------------------ */

typedef void (*range_fn)(void *ctx, int64_t b, int64_t e, int part);

typedef struct par_task {
    range_fn fn;
    void *ctx;
    int64_t n;
} par_task;

static void par_worker(void *c, int part, int n_parts)
{
    const par_task *t = c;
    int64_t b, e;
    pool_split(t->n, n_parts, part, 1, &b, &e);
    if (b < e)
        t->fn(t->ctx, b, e, part);
}

/* Calls fn over [0, n) split across the pool; small work stays on the
 * calling thread. */
static void par_for(tgraph *g, int64_t n, double work, range_fn fn,
                    void *ctx)
{
    if (n <= 0)
        return;
    if (g->n_threads == 1 || work < 65536.0 || n == 1) {
        fn(ctx, 0, n, 0);
        return;
    }
    par_task t = {fn, ctx, n};
    pool_run(g->pool, par_worker, &t);
}

/* ---- linear maps ----------------------------------------------------- */

typedef struct lin_job {
    const tmodel *m;
    const tlinear *lin;
    const float *x;   /* (n, n_in) */
    float *y;         /* (n, n_out) */
    float *ax;        /* (n, rank) LoRA A x, or NULL */
    const float *dy;
    float *dx;        /* backward: (n, n_in) */
    float *dax;       /* backward: (n, rank) */
    float beta;       /* y = beta * y + ..., dx = beta * dx + ... */
    int64_t n;
} lin_job;

static float lora_scale(const tmodel *m)
{
    return m->lora_alpha > 0.0f ? m->lora_alpha / (float)m->lora_rank
                                : 1.0f;
}

static void lin_fwd_rows(void *c, int64_t r0, int64_t r1, int part)
{
    const lin_job *j = c;
    const tlinear *l = j->lin;
    const int n = (int)(r1 - r0), in = (int)l->n_in, out = (int)l->n_out;
    (void)part;
    tblas_sgemm(false, true, n, out, in, 1.0f,
                j->x + r0 * in, in, l->w, in, j->beta, j->y + r0 * out, out);
    if (l->a) {
        const int r = j->m->lora_rank;
        tblas_sgemm(false, true, n, r, in, 1.0f,
                    j->x + r0 * in, in, l->a, in, 0.0f, j->ax + r0 * r, r);
        tblas_sgemm(false, true, n, out, r,
                    lora_scale(j->m), j->ax + r0 * r, r, l->b, r, 1.0f,
                    j->y + r0 * out, out);
    }
}

static void lin_fwd(tgraph *g, const tlinear *l, const float *x, float *y,
                    float *ax, int64_t n, float beta)
{
    lin_job j = {.m = g->m, .lin = l, .x = x, .y = y, .ax = ax,
                 .beta = beta, .n = n};
    par_for(g, n, (double)n * l->n_in * l->n_out, lin_fwd_rows, &j);
}

/* Runs fn(ctx, part, n_parts) on every pool part, or once on the calling
 * thread for small work. */
static void run_parts(tgraph *g, double work, pool_task_fn fn, void *ctx)
{
    if (g->n_threads == 1 || work < 65536.0)
        fn(ctx, 0, 1);
    else
        pool_run(g->pool, fn, ctx);
}

/* Part p of n: a slice of rows of dx (and dax), and a slice of output rows
 * of dW (and dB), so no two parts write the same element. */
static void lin_bwd_worker1(void *c, int part, int n_parts)
{
    const lin_job *j = c;
    const tlinear *l = j->lin;
    const int in = (int)l->n_in, out = (int)l->n_out, nt = (int)j->n;
    const int r = j->m->lora_rank;
    const float s = lora_scale(j->m);
    int64_t b, e;
    pool_split(j->n, n_parts, part, 1, &b, &e);
    if (b < e && j->dx)
        tblas_sgemm(false, false, (int)(e - b),
                    in, out, 1.0f, j->dy + b * out, out, l->w, in, j->beta,
                    j->dx + b * in, in);
    if (b < e && l->a)
        tblas_sgemm(false, false, (int)(e - b),
                    r, out, s, j->dy + b * out, out, l->b, r, 0.0f,
                    j->dax + b * r, r);
    pool_split(out, n_parts, part, 1, &b, &e);
    if (b < e && l->gw)
        tblas_sgemm(true, false, (int)(e - b),
                    in, nt, 1.0f, j->dy + b, out, j->x, in, 1.0f,
                    l->gw + b * in, in);
    if (b < e && l->a)
        tblas_sgemm(true, false, (int)(e - b), r,
                    nt, s, j->dy + b, out, j->ax, r, 1.0f, l->gb + b * r, r);
}

/* LoRA second half: dx += dax A and dA += dax^T x. */
static void lin_bwd_worker2(void *c, int part, int n_parts)
{
    const lin_job *j = c;
    const tlinear *l = j->lin;
    const int in = (int)l->n_in, nt = (int)j->n;
    const int r = j->m->lora_rank;
    int64_t b, e;
    pool_split(j->n, n_parts, part, 1, &b, &e);
    if (b < e && j->dx)
        tblas_sgemm(false, false, (int)(e - b),
                    in, r, 1.0f, j->dax + b * r, r, l->a, in, 1.0f,
                    j->dx + b * in, in);
    pool_split(r, n_parts, part, 1, &b, &e);
    if (b < e)
        tblas_sgemm(true, false, (int)(e - b),
                    in, nt, 1.0f, j->dax + b, r, j->x, in, 1.0f,
                    l->ga + b * in, in);
}

/* Backward of y = W x (+ LoRA): dx = beta * dx + dy W (dx may be NULL),
 * weight and adapter gradients added. */
static void lin_bwd(tgraph *g, const tlinear *l, const float *x,
                    const float *ax, const float *dy, float *dx, int64_t n,
                    float beta)
{
    lin_job j = {.m = g->m, .lin = l, .x = x, .ax = (float *)ax, .dy = dy,
                 .dx = dx, .dax = g->dax, .beta = beta, .n = n};
    const double work = 2.0 * (double)n * l->n_in * l->n_out;
    run_parts(g, work, lin_bwd_worker1, &j);
    if (l->a)
        run_parts(g, work, lin_bwd_worker2, &j);
}

/* ---- element-wise steps ---------------------------------------------- */

typedef struct row_job {
    tgraph *g;
    const tbatch *b;
    tact *a;
    const tlayer *ly;
    int step;
    int64_t n;
} row_job;

enum { ROW_NORM1, ROW_QKV_POST, ROW_NORM2, ROW_SWIGLU, ROW_SWIGLU_BWD,
       ROW_QK_ROPE_BWD, ROW_ADD_RESID };

static tops_rope_cfg rope_cfg(const tgraph *g)
{
    const tshape *hp = &g->m->hp;
    return (tops_rope_cfg){.head_dim = hp->head_dim,
                           .rope_dim = hp->head_dim,
                           .base = hp->rope_base,
                           .freq_scale = hp->rope_freq_scale,
                           .neox = hp->neox,
                           .table = g->rope_table,
                           .table_len = g->rope_table ? g->max_len : 0};
}

static void add_bias(float *y, const float *bias, int64_t w, int64_t r0,
                     int64_t r1)
{
    if (!bias)
        return;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t i = 0; i < w; i++)
            y[r * w + i] += bias[i];
}

static void row_worker(void *c, int64_t r0, int64_t r1, int part)
{
    const row_job *j = c;
    tgraph *g = j->g;
    const tshape *hp = &g->m->hp;
    const int64_t d = hp->n_embd, ff = hp->n_ff;
    const int64_t dq = (int64_t)hp->n_head * hp->head_dim;
    const int64_t dkv = (int64_t)hp->n_head_kv * hp->head_dim;
    const tops_rope_cfg rc = rope_cfg(g);
    tact *a = j->a;
    (void)part;
    switch (j->step) {
    case ROW_NORM1:
        tops_rms_norm(a->n1, a->rstd1, a->x, j->ly->attn_norm, d,
                      hp->rms_eps, r0, r1);
        break;
    case ROW_QKV_POST:
        add_bias(a->q, j->ly->bq, dq, r0, r1);
        add_bias(a->k, j->ly->bk, dkv, r0, r1);
        add_bias(a->v, j->ly->bv, dkv, r0, r1);
        tops_rope(a->q, j->b->pos, hp->n_head, &rc, 0, r0, r1);
        tops_rope(a->k, j->b->pos, hp->n_head_kv, &rc, 0, r0, r1);
        break;
    case ROW_NORM2:
        tops_rms_norm(a->n2, a->rstd2, a->xm, j->ly->ffn_norm, d,
                      hp->rms_eps, r0, r1);
        break;
    case ROW_SWIGLU:
        tops_swiglu(a->h, a->g, a->u, ff, r0, r1);
        break;
    case ROW_SWIGLU_BWD:
        tops_swiglu_bwd(g->dg, g->du, g->dh, a->g, a->u, ff, r0, r1);
        break;
    case ROW_QK_ROPE_BWD:
        tops_rope(g->dq, j->b->pos, hp->n_head, &rc, 1, r0, r1);
        tops_rope(g->dk, j->b->pos, hp->n_head_kv, &rc, 1, r0, r1);
        break;
    }
}

static void rows(tgraph *g, const tbatch *b, tact *a, const tlayer *ly,
                 int step)
{
    row_job j = {.g = g, .b = b, .a = a, .ly = ly, .step = step,
                 .n = b->n_tok};
    const tshape *hp = &g->m->hp;
    par_for(g, b->n_tok, (double)b->n_tok * (hp->n_embd + hp->n_ff) * 8,
            row_worker, &j);
}

/* Column-split reductions into parameter gradients. */
typedef struct col_job {
    const float *dy, *x, *rstd;
    float *dst;
    int64_t n_rows, width;
    const int32_t *tokens;   /* embedding scatter */
} col_job;

static void norm_gain_cols(void *c, int64_t c0, int64_t c1, int part)
{
    const col_job *j = c;
    (void)part;
    tops_rms_norm_bwd_gain(j->dst, j->dy, j->x, j->rstd, j->n_rows,
                           j->width, c0, c1);
}

static void bias_cols(void *c, int64_t c0, int64_t c1, int part)
{
    const col_job *j = c;
    (void)part;
    for (int64_t r = 0; r < j->n_rows; r++)
        for (int64_t i = c0; i < c1; i++)
            j->dst[i] += j->dy[r * j->width + i];
}

static void embd_cols(void *c, int64_t c0, int64_t c1, int part)
{
    const col_job *j = c;
    (void)part;
    for (int64_t r = 0; r < j->n_rows; r++) {
        float *dst = j->dst + (int64_t)j->tokens[r] * j->width;
        const float *src = j->dy + r * j->width;
        for (int64_t i = c0; i < c1; i++)
            dst[i] += src[i];
    }
}

static void cols(tgraph *g, range_fn fn, col_job *j)
{
    par_for(g, j->width, (double)j->n_rows * j->width, fn, j);
}

/* dx rows += rms_norm backward, for rows [r0, r1). */
typedef struct normb_job {
    float *dx;
    const float *dy, *x, *gain, *rstd;
    int64_t d;
} normb_job;

static void normb_rows(void *c, int64_t r0, int64_t r1, int part)
{
    const normb_job *j = c;
    (void)part;
    tops_rms_norm_bwd_x(j->dx, j->dy, j->x, j->gain, j->rstd, j->d, r0, r1);
}

static void norm_bwd(tgraph *g, float *dx, const float *dy, const float *x,
                     const float *gain, float *dgain, const float *rstd,
                     int64_t n_rows)
{
    const int64_t d = g->m->hp.n_embd;
    normb_job j = {dx, dy, x, gain, rstd, d};
    par_for(g, n_rows, (double)n_rows * d * 4, normb_rows, &j);
    if (dgain) {
        col_job c = {.dy = dy, .x = x, .rstd = rstd, .dst = dgain,
                     .n_rows = n_rows, .width = d};
        cols(g, norm_gain_cols, &c);
    }
}

/* ---- attention ------------------------------------------------------- */

typedef struct attn_job {
    tgraph *g;
    const tbatch *b;
    tact *a;
    bool backward;
} attn_job;

static void attn_items(void *c, int64_t i0, int64_t i1, int part)
{
    const attn_job *j = c;
    tgraph *g = j->g;
    const tshape *hp = &g->m->hp;
    const int64_t hd = hp->head_dim;
    const int64_t group = hp->n_head / hp->n_head_kv;
    const int64_t dq = hp->n_head * hd, dkv = hp->n_head_kv * hd;
    float *scratch = g->attn_scratch +
                     (int64_t)part * g->max_len * g->max_len;
    for (int64_t it = i0; it < i1; it++) {
        const int64_t s = it / hp->n_head_kv, kvh = it % hp->n_head_kv;
        const int64_t t0 = j->b->seq_start[s];
        const int64_t n = j->b->seq_start[s + 1] - t0;
        tops_attn at = {.n = n, .head_dim = hd, .q_stride = dq,
                        .kv_stride = dkv, .head0 = kvh * group,
                        .n_group = group, .kv_head = kvh,
                        .scale = 1.0f / sqrtf((float)hd)};
        float *p = j->a->p + g->p_off[s] + kvh * group * n * n;
        if (!j->backward)
            tops_attention(&at, j->a->q + t0 * dq, j->a->k + t0 * dkv,
                           j->a->v + t0 * dkv, j->a->att + t0 * dq, p);
        else
            tops_attention_bwd(&at, j->a->q + t0 * dq, j->a->k + t0 * dkv,
                               j->a->v + t0 * dkv, p, g->datt + t0 * dq,
                               g->dq + t0 * dq, g->dk + t0 * dkv,
                               g->dv + t0 * dkv, scratch);
    }
}

static void attention(tgraph *g, const tbatch *b, tact *a, bool backward)
{
    const tshape *hp = &g->m->hp;
    attn_job j = {g, b, a, backward};
    const int64_t n_items = (int64_t)b->n_seq * hp->n_head_kv;
    par_for(g, n_items, 1e9, attn_items, &j);
}

/* ---- dropout ------------------------------------------------------- */

/* out = base + branch * keep / (1 - p), with keep drawn per element from
 * a generator seeded by (run seed, stream), so the same step drops the
 * same elements on every machine and thread count. */
static void drop_add(tgraph *g, float *out, const float *base,
                     const float *branch, uint8_t *keep, int64_t n,
                     uint64_t stream)
{
    trng r;
    trng_seed(&r, g->drop_seed ^ (stream * 0xD1B54A32D192ED03ull));
    const uint32_t limit = (uint32_t)(g->dropout * 65536.0f);
    const float scale = 1.0f / (1.0f - g->dropout);
    uint64_t bits = 0;
    for (int64_t i = 0; i < n; i++) {
        if ((i & 3) == 0)
            bits = trng_next(&r);
        const bool k = (uint32_t)(bits & 0xFFFF) >= limit;
        bits >>= 16;
        keep[i] = k;
        out[i] = base[i] + (k ? branch[i] * scale : 0.0f);
    }
}

/* The gradient reaching a dropped branch: dy * keep / (1 - p), in the
 * scratch buffer; without dropout dy itself. */
static const float *drop_grad(tgraph *g, const float *dy,
                              const uint8_t *keep, int64_t n)
{
    if (!g->drop_on)
        return dy;
    const float scale = 1.0f / (1.0f - g->dropout);
    for (int64_t i = 0; i < n; i++)
        g->branch[i] = keep[i] ? dy[i] * scale : 0.0f;
    return g->branch;
}

void tgraph_set_smoothing(tgraph *g, const int32_t *ids, int32_t n,
                          float eps)
{
    g->smooth = (tops_smooth){ids, n, ids && n > 0 && eps > 0.0f ? eps
                                                                 : 0.0f};
}

void tgraph_set_dropout(tgraph *g, float p, uint64_t seed)
{
    g->dropout = p > 0.0f && p < 1.0f ? p : 0.0f;
    g->drop_seed = seed;
}

/* ---- whole passes ---------------------------------------------------- */

static roj_status check_batch(const tgraph *g, const tbatch *b)
{
    const int32_t nv = g->m->hp.n_vocab;
    if (b->n_tok <= 0 || b->n_tok > g->cap_tok || b->n_tgt <= 0 ||
        b->n_tgt > g->cap_tgt || b->n_seq <= 0 ||
        b->seq_start[0] != 0 || b->seq_start[b->n_seq] != b->n_tok)
        return roj_error(ROJ_ERR_INTERNAL,
                         "training batch of %d tokens, %d targets, %d "
                         "sequences does not fit capacity %d/%d",
                         (int)b->n_tok, (int)b->n_tgt, (int)b->n_seq,
                         (int)g->cap_tok, (int)g->cap_tgt);
    for (int32_t s = 0; s < b->n_seq; s++) {
        const int32_t n = b->seq_start[s + 1] - b->seq_start[s];
        if (n <= 0 || n > g->max_len)
            return roj_error(ROJ_ERR_INTERNAL,
                             "training sequence of %d tokens (limit %d)",
                             (int)n, (int)g->max_len);
    }
    for (int32_t t = 0; t < b->n_tok; t++)
        if (b->tokens[t] < 0 || b->tokens[t] >= nv)
            return roj_error(ROJ_ERR_INTERNAL, "token id %d out of range",
                             (int)b->tokens[t]);
    for (int32_t i = 0; i < b->n_tgt; i++)
        if (b->tgt_id[i] < 0 || b->tgt_id[i] >= nv ||
            b->tgt_row[i] < 0 || b->tgt_row[i] >= b->n_tok ||
            (i && b->tgt_row[i] <= b->tgt_row[i - 1]))
            return roj_error(ROJ_ERR_INTERNAL, "bad training target %d",
                             (int)i);
    return ROJ_OK;
}

static void forward(tgraph *g, const tbatch *b)
{
    tmodel *m = g->m;
    const tshape *hp = &m->hp;
    const int64_t n = b->n_tok, d = hp->n_embd;
    int64_t off = 0;
    for (int32_t s = 0; s < b->n_seq; s++) {
        const int64_t len = b->seq_start[s + 1] - b->seq_start[s];
        g->p_off[s] = off;
        off += (int64_t)hp->n_head * len * len;
    }
    for (int64_t t = 0; t < n; t++)
        memcpy(g->act[0].x + t * d, m->tok_embd + (int64_t)b->tokens[t] * d,
               (size_t)d * sizeof(float));
    for (int l = 0; l < hp->n_layer; l++) {
        tact *a = &g->act[l];
        const tlayer *y = &m->layers[l];
        rows(g, b, a, y, ROW_NORM1);
        lin_fwd(g, &y->wq, a->n1, a->q, a->ax[0], n, 0.0f);
        lin_fwd(g, &y->wk, a->n1, a->k, a->ax[1], n, 0.0f);
        lin_fwd(g, &y->wv, a->n1, a->v, a->ax[2], n, 0.0f);
        rows(g, b, a, y, ROW_QKV_POST);
        attention(g, b, a, false);
        if (g->drop_on) {
            lin_fwd(g, &y->wo, a->att, g->branch, a->ax[3], n, 0.0f);
            drop_add(g, a->xm, a->x, g->branch, a->keep_a, n * d,
                     (uint64_t)l * 2);
        } else {
            memcpy(a->xm, a->x, (size_t)(n * d) * sizeof(float));
            lin_fwd(g, &y->wo, a->att, a->xm, a->ax[3], n, 1.0f);
        }
        rows(g, b, a, y, ROW_NORM2);
        lin_fwd(g, &y->gate, a->n2, a->g, a->ax[4], n, 0.0f);
        lin_fwd(g, &y->up, a->n2, a->u, a->ax[5], n, 0.0f);
        rows(g, b, a, y, ROW_SWIGLU);
        float *next = l + 1 < hp->n_layer ? g->act[l + 1].x : g->x_out;
        if (g->drop_on) {
            lin_fwd(g, &y->down, a->h, g->branch, a->ax[6], n, 0.0f);
            drop_add(g, next, a->xm, g->branch, a->keep_f, n * d,
                     (uint64_t)l * 2 + 1);
        } else {
            memcpy(next, a->xm, (size_t)(n * d) * sizeof(float));
            lin_fwd(g, &y->down, a->h, next, a->ax[6], n, 1.0f);
        }
    }
    for (int32_t i = 0; i < b->n_tgt; i++)
        memcpy(g->xf + (int64_t)i * d, g->x_out + (int64_t)b->tgt_row[i] * d,
               (size_t)d * sizeof(float));
    tops_rms_norm(g->nf, g->rstd_f, g->xf, m->out_norm, d, hp->rms_eps, 0,
                  b->n_tgt);
    lin_fwd(g, &m->output, g->nf, g->logits, NULL, b->n_tgt, 0.0f);
}

static void zero(float *p, int64_t n)
{
    memset(p, 0, (size_t)n * sizeof *p);
}

static void backward(tgraph *g, const tbatch *b)
{
    tmodel *m = g->m;
    const tshape *hp = &m->hp;
    const int64_t n = b->n_tok, d = hp->n_embd;
    const int64_t dq = (int64_t)hp->n_head * hp->head_dim;
    const int64_t dkv = (int64_t)hp->n_head_kv * hp->head_dim;
    const bool frozen = m->lora_rank > 0;

    /* Output head and final norm, on target rows only. */
    lin_bwd(g, &m->output, g->nf, NULL, g->logits, g->dnf, b->n_tgt, 0.0f);
    zero(g->dxf, (int64_t)b->n_tgt * d);
    norm_bwd(g, g->dxf, g->dnf, g->xf, m->out_norm,
             frozen ? NULL : m->g_out_norm, g->rstd_f, b->n_tgt);
    zero(g->dx, n * d);
    for (int32_t i = 0; i < b->n_tgt; i++) {
        float *dst = g->dx + (int64_t)b->tgt_row[i] * d;
        const float *src = g->dxf + (int64_t)i * d;
        for (int64_t c = 0; c < d; c++)
            dst[c] += src[c];
    }
    for (int l = hp->n_layer - 1; l >= 0; l--) {
        tact *a = &g->act[l];
        const tlayer *y = &m->layers[l];
        /* FFN: x_next = xm + down(silu(gate n2) * up n2). */
        lin_bwd(g, &y->down, a->h, a->ax[6],
                drop_grad(g, g->dx, a->keep_f, n * d), g->dh, n, 0.0f);
        rows(g, b, a, y, ROW_SWIGLU_BWD);
        lin_bwd(g, &y->gate, a->n2, a->ax[4], g->dg, g->dn, n, 0.0f);
        lin_bwd(g, &y->up, a->n2, a->ax[5], g->du, g->dn, n, 1.0f);
        memcpy(g->dxm, g->dx, (size_t)(n * d) * sizeof(float));
        norm_bwd(g, g->dxm, g->dn, a->xm, y->ffn_norm,
                 frozen ? NULL : y->g_ffn_norm, a->rstd2, n);
        /* Attention: xm = x + wo(attention(rope(q), rope(k), v)). */
        lin_bwd(g, &y->wo, a->att, a->ax[3],
                drop_grad(g, g->dxm, a->keep_a, n * d), g->datt, n, 0.0f);
        zero(g->dk, n * dkv);
        zero(g->dv, n * dkv);
        attention(g, b, a, true);
        rows(g, b, a, y, ROW_QK_ROPE_BWD);
        if (y->bq && !frozen) {
            col_job c = {.dy = g->dq, .dst = y->g_bq, .n_rows = n,
                         .width = dq};
            cols(g, bias_cols, &c);
            c.dy = g->dk, c.dst = y->g_bk, c.width = dkv;
            cols(g, bias_cols, &c);
            c.dy = g->dv, c.dst = y->g_bv;
            cols(g, bias_cols, &c);
        }
        lin_bwd(g, &y->wq, a->n1, a->ax[0], g->dq, g->dn, n, 0.0f);
        lin_bwd(g, &y->wk, a->n1, a->ax[1], g->dk, g->dn, n, 1.0f);
        lin_bwd(g, &y->wv, a->n1, a->ax[2], g->dv, g->dn, n, 1.0f);
        memcpy(g->dx, g->dxm, (size_t)(n * d) * sizeof(float));
        norm_bwd(g, g->dx, g->dn, a->x, y->attn_norm,
                 frozen ? NULL : y->g_attn_norm, a->rstd1, n);
    }
    if (!frozen) {
        col_job c = {.dy = g->dx, .dst = m->g_tok_embd, .n_rows = n,
                     .width = d, .tokens = b->tokens};
        cols(g, embd_cols, &c);
    }
}

roj_status tgraph_run(tgraph *g, const tbatch *b, float loss_scale,
                      double *loss_sum, float *logits)
{
    roj_status st = check_batch(g, b);
    if (st)
        return st;
    g->drop_on = loss_scale > 0.0f && g->dropout > 0.0f;
    forward(g, b);
    const int64_t nv = g->m->hp.n_vocab;
    if (logits)
        memcpy(logits, g->logits, (size_t)(b->n_tgt * nv) * sizeof(float));
    tops_xent(g->logits, g->loss_rows, b->tgt_id, b->tgt_w,
              loss_scale > 0.0f ? &g->smooth : NULL, nv, loss_scale, 0,
              b->n_tgt);
    double sum = 0.0;
    for (int32_t i = 0; i < b->n_tgt; i++)
        sum += (double)g->loss_rows[i] * (b->tgt_w ? b->tgt_w[i] : 1.0f);
    *loss_sum = sum;
    if (!isfinite(sum))
        return roj_error(ROJ_ERR_NUMERIC,
                         "training loss is %g: lower the learning rate "
                         "or check the data", sum);
    if (loss_scale > 0.0f)
        backward(g, b);
    return ROJ_OK;
}

/* Hands out consecutive pieces of one float block (pass 0 only counts). */
typedef struct carver {
    float *base;
    int64_t used;
} carver;

static float *carve(carver *c, int64_t n)
{
    float *p = c->base ? c->base + c->used : NULL;
    c->used += (n + 15) & ~(int64_t)15;   /* 64-byte aligned pieces */
    return p;
}

static void carve_all(tgraph *g, carver *c)
{
    const tshape *hp = &g->m->hp;
    const int64_t t = g->cap_tok, r = g->cap_tgt, d = hp->n_embd;
    const int64_t dq = (int64_t)hp->n_head * hp->head_dim;
    const int64_t dkv = (int64_t)hp->n_head_kv * hp->head_dim;
    const int64_t ff = hp->n_ff, rank = g->m->lora_rank;
    for (int l = 0; l < hp->n_layer; l++) {
        tact *a = &g->act[l];
        a->x = carve(c, t * d);
        a->rstd1 = carve(c, t);
        a->n1 = carve(c, t * d);
        a->q = carve(c, t * dq);
        a->k = carve(c, t * dkv);
        a->v = carve(c, t * dkv);
        a->p = carve(c, (int64_t)hp->n_head * g->max_len * t);
        a->att = carve(c, t * dq);
        a->xm = carve(c, t * d);
        a->rstd2 = carve(c, t);
        a->n2 = carve(c, t * d);
        a->g = carve(c, t * ff);
        a->u = carve(c, t * ff);
        a->h = carve(c, t * ff);
        a->keep_a = (uint8_t *)carve(c, (t * d + 3) / 4);
        a->keep_f = (uint8_t *)carve(c, (t * d + 3) / 4);
        for (int i = 0; i < 7; i++)
            a->ax[i] = rank ? carve(c, t * rank) : NULL;
    }
    g->x_out = carve(c, t * d);
    g->xf = carve(c, r * d);
    g->rstd_f = carve(c, r);
    g->nf = carve(c, r * d);
    g->logits = carve(c, r * hp->n_vocab);
    g->loss_rows = carve(c, r);
    g->dx = carve(c, t * d);
    g->dxm = carve(c, t * d);
    g->dn = carve(c, t * d);
    g->dq = carve(c, t * dq);
    g->datt = carve(c, t * dq);
    g->dk = carve(c, t * dkv);
    g->dv = carve(c, t * dkv);
    g->dg = carve(c, t * ff);
    g->du = carve(c, t * ff);
    g->dh = carve(c, t * ff);
    g->dax = carve(c, t * (rank ? rank : 1));
    g->dxf = carve(c, r * d);
    g->dnf = carve(c, r * d);
    g->branch = carve(c, t * d);
    g->rope_table = carve(c, (int64_t)g->max_len * hp->head_dim);
    g->attn_scratch = carve(c, (int64_t)g->n_threads * g->max_len *
                                   g->max_len);
}

roj_status tgraph_create(tmodel *m, roj_pool *pool, int32_t cap_tok,
                         int32_t cap_tgt, int32_t max_len, tgraph **out)
{
    if (cap_tok <= 0 || cap_tgt <= 0 || max_len <= 0 || max_len > cap_tok)
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "training batch capacity %d tokens, %d targets, "
                         "sequences of %d", (int)cap_tok, (int)cap_tgt,
                         (int)max_len);
    tgraph *g = calloc(1, sizeof *g);
    if (!g)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    g->m = m;
    g->pool = pool;
    g->n_threads = pool ? pool_size(pool) : 1;
    g->cap_tok = cap_tok;
    g->cap_tgt = cap_tgt;
    g->max_len = max_len;
    g->act = calloc((size_t)m->hp.n_layer, sizeof *g->act);
    g->p_off = calloc((size_t)cap_tok + 1, sizeof *g->p_off);
    carver c = {0};
    if (g->act && g->p_off) {
        carve_all(g, &c);
        g->block = aligned_alloc(64, (size_t)c.used * sizeof(float));
    }
    if (!g->block) {
        double mib = (double)c.used * 4.0 / 1048576.0;
        tgraph_free(g);
        return roj_error(ROJ_ERR_NOMEM,
                         "out of memory for %.0f MiB of training "
                         "activations: lower --batch-tokens", mib);
    }
    memset(g->block, 0, (size_t)c.used * sizeof(float));
    c = (carver){.base = g->block};
    carve_all(g, &c);
    const tops_rope_cfg rc = rope_cfg(g);
    tops_rope_table(&rc, max_len, g->rope_table);
    tblas_init();
    *out = g;
    return ROJ_OK;
}

void tgraph_free(tgraph *g)
{
    if (!g)
        return;
    free(g->block);
    free(g->act);
    free(g->p_off);
    free(g);
}
