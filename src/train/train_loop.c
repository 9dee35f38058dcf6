/* The optimisation loop: packed batches, accumulation, clipping, AdamW,
 * periodic validation, checkpoints and progress (see train_loop.h). */
#include "train/train_loop.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/log.h"
#include "train/trng.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Order of the training examples in an epoch: a seeded shuffle. */
static void epoch_order(const tloop *L, int64_t epoch, size_t *order)
{
    const size_t n = L->train->n;
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    trng r;
    trng_seed(&r, L->o->seed * 0x9E3779B97F4A7C15ull + (uint64_t)epoch + 1);
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)trng_below(&r, i);
        size_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
}

/* A batch under construction, with its own arrays. */
typedef struct bbuf {
    int32_t *tok, *pos, *start, *row, *id;
    int32_t *remaining; /* an example's tokens after token dropout */
    float *w;
    double w_sum;
    float lm_weight;   /* weight of the prompt's own tokens as targets */
    float tok_drop;    /* probability of token dropout, 0 when off */
    int32_t keep_tail; /* prompt tokens at its end that are never dropped */
    uint64_t drop_seed;/* with the example's index, picks the drops */
    int32_t n_tok, n_seq, n_tgt, cap;
    tbatch b;
} bbuf;

static roj_status bbuf_init(bbuf *bb, int32_t cap)
{
    memset(bb, 0, sizeof *bb);
    bb->cap = cap;
    bb->tok = malloc((size_t)cap * sizeof(int32_t));
    bb->pos = malloc((size_t)cap * sizeof(int32_t));
    bb->start = malloc(((size_t)cap + 1) * sizeof(int32_t));
    bb->row = malloc((size_t)cap * sizeof(int32_t));
    bb->id = malloc((size_t)cap * sizeof(int32_t));
    bb->w = malloc((size_t)cap * sizeof(float));
    bb->remaining = malloc(((size_t)cap + 1) * sizeof(int32_t));
    if (!bb->tok || !bb->pos || !bb->start || !bb->row || !bb->id ||
        !bb->w || !bb->remaining)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for a batch");
    return ROJ_OK;
}

static void bbuf_free(bbuf *bb)
{
    free(bb->tok);
    free(bb->pos);
    free(bb->start);
    free(bb->row);
    free(bb->id);
    free(bb->w);
    free(bb->remaining);
}

static void bbuf_clear(bbuf *bb)
{
    bb->n_tok = bb->n_seq = bb->n_tgt = 0;
    bb->w_sum = 0.0;
    bb->start[0] = 0;
}

/* Inputs of example i are its tokens but the last; targets are the tokens
 * from n_prompt on, each predicted by the row before it. With a language
 * model weight, the prompt's own tokens are targets too, at that weight:
 * an auxiliary loss that teaches the model the input text itself. */
/* Copies example i into bb->remaining without the input tokens that token
 * dropout removes, each with probability bb->tok_drop. BOS, the template's
 * tail, the targets and at least one input token stay. Returns the new
 * length and sets *n_prompt to the new prompt length. */
static int32_t bbuf_drop(bbuf *bb, const int32_t *t, int32_t len,
                         int32_t *n_prompt, size_t i)
{
    trng r;
    trng_seed(&r, bb->drop_seed ^ ((uint64_t)i + 1) * 0x9E3779B97F4A7C15ull);
    const int32_t lo = 1, hi = *n_prompt - bb->keep_tail;
    int32_t n = 0, dropped = 0;
    for (int32_t k = 0; k < len; k++) {
        if (k >= lo && k < hi && dropped + 1 < hi - lo &&
            trng_uniform(&r) < (double)bb->tok_drop) {
            dropped++;
            continue;
        }
        bb->remaining[n++] = t[k];
    }
    *n_prompt -= dropped;
    return n;
}

static bool bbuf_add(bbuf *bb, const tenc *e, size_t i)
{
    const int32_t *t = e->tok + e->off[i];
    int32_t len = e->len[i], n_prompt = e->n_prompt[i];
    if (bb->tok_drop > 0.0f && len <= bb->cap) {
        len = bbuf_drop(bb, t, len, &n_prompt, i);
        t = bb->remaining;
    }
    const int32_t n_in = len - 1;
    if (bb->n_tok + n_in > bb->cap)
        return false;
    for (int32_t k = 0; k < n_in; k++) {
        bb->tok[bb->n_tok + k] = t[k];
        bb->pos[bb->n_tok + k] = k;
    }
    if (bb->lm_weight > 0.0f)
        for (int32_t k = 1; k < n_prompt; k++) {
            bb->row[bb->n_tgt] = bb->n_tok + k - 1;
            bb->w[bb->n_tgt] = bb->lm_weight;
            bb->id[bb->n_tgt++] = t[k];
            bb->w_sum += bb->lm_weight;
        }
    for (int32_t k = n_prompt; k < len; k++) {
        bb->row[bb->n_tgt] = bb->n_tok + k - 1;
        bb->w[bb->n_tgt] = 1.0f;
        bb->id[bb->n_tgt++] = t[k];
        bb->w_sum += 1.0;
    }
    bb->n_tok += n_in;
    bb->start[++bb->n_seq] = bb->n_tok;
    return true;
}

static const tbatch *bbuf_batch(bbuf *bb)
{
    bb->b = (tbatch){.n_tok = bb->n_tok, .tokens = bb->tok, .pos = bb->pos,
                     .n_seq = bb->n_seq, .seq_start = bb->start,
                     .n_tgt = bb->n_tgt, .tgt_row = bb->row,
                     .tgt_id = bb->id, .tgt_w = bb->w};
    return &bb->b;
}

/* Micro-batches in an epoch, packing in order (the count does not depend
 * on the order's content beyond lengths, so it is computed on identity). */
int64_t tloop_steps_per_epoch(const tloop *L)
{
    const tenc *e = L->train;
    int64_t batches = 0, fill = 0;
    for (size_t i = 0; i < e->n; i++) {
        const int64_t n = e->len[i] - 1;
        if (fill + n > L->o->batch_tokens) {
            batches++;
            fill = 0;
        }
        fill += n;
    }
    if (fill)
        batches++;
    const int64_t steps = (batches + L->o->accum - 1) / L->o->accum;
    return steps > 0 ? steps : 1;
}

/* ---- validation ------------------------------------------------------ */

static bool example_correct(const tloop *L, const tenc *set, size_t i,
                            const float *logits, int32_t first,
                            const int32_t *ids)
{
    const int32_t nv = L->m->hp.n_vocab;
    const int32_t n_t = set->len[i] - set->n_prompt[i];
    if (L->label_tokens) {
        const float *z = logits + (int64_t)first * nv;
        int32_t best = 0;
        for (int32_t k = 1; k < L->n_labels; k++)
            if (z[L->label_tokens[k]] > z[L->label_tokens[best]])
                best = k;
        return L->label_tokens[best] == ids[first];
    }
    for (int32_t k = 0; k < n_t; k++) {
        const float *z = logits + (int64_t)(first + k) * nv;
        int32_t arg = 0;
        for (int32_t v = 1; v < nv; v++)
            if (z[v] > z[arg])
                arg = v;
        if (arg != ids[first + k])
            return false;
    }
    return true;
}

roj_status tloop_validate(tloop *L, const tenc *set, double *loss,
                          double *acc)
{
    *loss = *acc = 0.0;
    if (!set || set->n == 0)
        return ROJ_OK;
    const int32_t cap = L->o->batch_tokens;
    bbuf bb;
    roj_status st = bbuf_init(&bb, cap);
    if (!st && (!L->vgraph || L->vgraph_len < set->max_len)) {
        tloop_free_scratch(L);
        st = tgraph_create(L->m, L->pool, cap, cap, set->max_len,
                           &L->vgraph);
        L->vgraph_len = set->max_len;
        if (!st && !(L->vlogits = malloc((size_t)cap * L->m->hp.n_vocab * 4)))
            st = roj_error(ROJ_ERR_NOMEM, "out of memory for validation");
    }
    tgraph *g = L->vgraph;
    float *logits = L->vlogits;
    double sum = 0.0;
    int64_t n_tgt = 0, n_ok = 0;
    size_t i = 0;
    while (!st && i < set->n) {
        bbuf_clear(&bb);
        const size_t first = i;
        while (i < set->n && bbuf_add(&bb, set, i))
            i++;
        double ls;
        if ((st = tgraph_run(g, bbuf_batch(&bb), 0.0f, &ls, logits)))
            break;
        sum += ls;
        n_tgt += bb.n_tgt;
        int32_t t0 = 0;
        for (size_t k = first; k < i; k++) {
            n_ok += example_correct(L, set, k, logits, t0, bb.id);
            t0 += set->len[k] - set->n_prompt[k];
        }
    }
    if (!st) {
        *loss = n_tgt ? sum / (double)n_tgt : 0.0;
        *acc = (double)n_ok / (double)set->n;
    }
    bbuf_free(&bb);
    return st;
}

void tloop_free_scratch(tloop *L)
{
    tgraph_free(L->vgraph);
    free(L->vlogits);
    L->vgraph = NULL;
    L->vlogits = NULL;
    L->vgraph_len = 0;
}

/* ---- progress ------------------------------------------------------- */

static void show_progress(const tloop *L, double loss, uint64_t tokens,
                          bool final)
{
    if (!L->prog)
        return;
    progress_info info = progress_info_empty((uint64_t)L->pos.step);
    info.epoch = (double)L->pos.epoch +
                 (double)L->pos.cursor / (double)L->train->n;
    info.loss = loss;
    info.tokens = tokens;
    if (L->n_ev)
        info.metrics[0] = (progress_metric){"val_acc", L->last_valid_acc};
    if (final)
        progress_finish(L->prog, &info);
    else
        progress_update(L->prog, &info);
}

/* ---- the loop -------------------------------------------------------- */

static roj_status hist_push(tloop *L, float loss)
{
    if (L->pos.step >= L->hist_cap) {
        int64_t nc = L->hist_cap * 2 + 1024;
        float *h = realloc(L->hist_loss, (size_t)nc * sizeof *h);
        if (!h)
            return roj_error(ROJ_ERR_NOMEM, "out of memory");
        L->hist_loss = h;
        L->hist_cap = nc;
    }
    L->hist_loss[L->pos.step] = loss;
    return ROJ_OK;
}

static roj_status ev_push(tloop *L, double loss, double acc)
{
    if (L->n_ev >= L->ev_cap) {
        int64_t nc = L->ev_cap * 2 + 64;
        float *a = realloc(L->ev_step, (size_t)nc * 4);
        if (a)
            L->ev_step = a;
        float *b = realloc(L->ev_loss, (size_t)nc * 4);
        if (b)
            L->ev_loss = b;
        float *c = realloc(L->ev_acc, (size_t)nc * 4);
        if (c)
            L->ev_acc = c;
        if (!a || !b || !c)
            return roj_error(ROJ_ERR_NOMEM, "out of memory");
        L->ev_cap = nc;
    }
    L->ev_step[L->n_ev] = (float)L->pos.step;
    L->ev_loss[L->n_ev] = (float)loss;
    L->ev_acc[L->n_ev++] = (float)acc;
    return ROJ_OK;
}

/* One JSON line: {"kind":"train","step","epoch","loss","lr",
 * "tokens_per_s"} or {"kind":"valid","step","loss","accuracy"}; epochs
 * count from 1, as the progress line does. */
static roj_status metrics_line(tloop *L, const char *kind, double loss,
                               double extra, double lr)
{
    if (!L->metrics)
        return ROJ_OK;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(o, "kind", kind);
    cJSON_AddNumberToObject(o, "step", (double)L->pos.step);
    if (!strcmp(kind, "train")) {
        cJSON_AddNumberToObject(o, "epoch", (double)L->pos.epoch + 1);
        cJSON_AddNumberToObject(o, "loss", loss);
        cJSON_AddNumberToObject(o, "lr", lr);
        cJSON_AddNumberToObject(o, "tokens_per_s", extra);
    } else {
        cJSON_AddNumberToObject(o, "loss", loss);
        cJSON_AddNumberToObject(o, "accuracy", extra);
    }
    roj_status st = metrics_log_write(L->metrics, o);
    cJSON_Delete(o);
    return st;
}

/* Moves the moving average toward the weights just updated. Its decay
 * starts low, (1 + t) / (10 + t) at step t, so the first weights, which
 * are random, are soon forgotten. */
static void ema_update(tloop *L)
{
    const double t = (double)L->pos.step;
    float d = (float)((1.0 + t) / (10.0 + t));
    if (d > L->o->ema)
        d = L->o->ema;
    const float *w = L->m->params;
    float *e = L->ema;
    for (int64_t i = 0; i < L->m->n_params; i++)
        e[i] += (1.0f - d) * (w[i] - e[i]);
}

/* Exchanges the weights and their moving average, in place. */
static void ema_swap(tloop *L)
{
    float *w = L->m->params, *e = L->ema;
    for (int64_t i = 0; i < L->m->n_params; i++) {
        float t = w[i];
        w[i] = e[i];
        e[i] = t;
    }
}

static roj_status evaluate(tloop *L)
{
    double loss, acc;
    /* With a moving average, it is what gets validated and written. */
    if (L->ema)
        ema_swap(L);
    roj_status st = tloop_validate(L, L->valid, &loss, &acc);
    /* Compared as the checkpoint stores them (float), so a resumed run
     * keeps the same weights as one that was never stopped. */
    const bool better = !st && L->valid && L->valid->n &&
                        (!L->have_best ||
                         (L->o->best_by_loss
                              ? (float)loss < (float)L->best_valid_loss
                              : (float)acc > (float)L->best_valid_acc));
    if (better) {
        if (L->best)
            memcpy(L->best, L->m->params,
                   (size_t)L->m->n_params * sizeof(float));
        L->have_best = true;
        L->best_valid_loss = loss;
    }
    if (L->ema)
        ema_swap(L);
    if (st || !L->valid || !L->valid->n)
        return st;
    L->last_valid_acc = acc;
    L->last_valid_loss = loss;
    if (better)
        L->best_valid_acc = acc;
    if ((st = metrics_line(L, "valid", loss, acc, 0)))
        return st;
    return ev_push(L, loss, acc);
}

/* With --time-budget, the first steps measure the pace and the plan is
 * cut to fit, so the cosine schedule ends on time; later checks (at each
 * validation pass) cut it again if the machine got slower, never extend
 * it. The chosen total is saved in checkpoints, so a resumed run keeps
 * it. */
static void fit_budget(tloop *L)
{
    const double per_step = L->pos.seconds / (double)L->pos.step;
    /* Keep 5% for the last validation pass and writing the output. */
    const double left = L->o->time_budget * 0.95 - L->pos.seconds;
    int64_t fit = L->pos.step + (int64_t)(left / per_step);
    if (fit < L->pos.step + 1)
        fit = L->pos.step + 1;
    if (fit < L->pos.total_steps) {
        if (L->prog)
            progress_clear(L->prog);
        roj_log(ROJ_LOG_INFO, "time budget %.0f s: %lld of %lld planned "
                "steps fit", L->o->time_budget, (long long)fit,
                (long long)L->pos.total_steps);
        L->pos.total_steps = fit;
        L->opt.total = fit;
        if (L->prog)
            progress_set_total(L->prog, (uint64_t)fit);
    }
}

roj_status tloop_run(tloop *L)
{
    const train_opts *o = L->o;
    const char *ckpt = o->checkpoint_path;
    size_t *order = malloc((L->train->n + 1) * sizeof *order);
    tgraph *g = NULL;
    bbuf bb;
    roj_status st = bbuf_init(&bb, o->batch_tokens);
    bb.lm_weight = o->lm_weight;
    bb.tok_drop = o->task == TRAIN_CLASSIFY ? o->token_dropout : 0.0f;
    bb.keep_tail = L->keep_tail;
    if (!order && !st)
        st = roj_error(ROJ_ERR_NOMEM, "out of memory");
    if (!st)
        st = tgraph_create(L->m, L->pool, o->batch_tokens, o->batch_tokens,
                           L->train->max_len, &g);
    if (!st && L->label_tokens)
        tgraph_set_smoothing(g, L->label_tokens, L->n_labels,
                             o->label_smoothing);
    const int64_t eval_every = o->eval_every > 0
                                   ? o->eval_every
                                   : (L->pos.total_steps + 9) / 10;
    const int64_t ckpt_every = o->checkpoint_every;
    double last_ckpt = now_s();
    uint64_t tokens_done = 0;
    int64_t order_epoch = -1;
    while (!st && L->pos.step < L->pos.total_steps) {
        if (o->stop && *o->stop) {
            st = roj_error(ROJ_ERR_ABORTED, "training stopped at step %lld",
                           (long long)L->pos.step);
            break;
        }
        const double t0 = now_s();
        memset(L->m->grads, 0, (size_t)L->m->n_params * sizeof(float));
        /* Gradients are sums over the step's targets; the update divides
         * by their count, so the loss is a mean over the whole step. */
        int64_t n_tok = 0;
        double loss_sum = 0.0, w_sum = 0.0;
        for (int a = 0; a < o->accum && !st; a++) {
            if ((size_t)L->pos.cursor >= L->train->n) {
                L->pos.cursor = 0;
                L->pos.epoch++;
            }
            if (order_epoch != L->pos.epoch) {
                epoch_order(L, L->pos.epoch, order);
                order_epoch = L->pos.epoch;
            }
            bbuf_clear(&bb);
            /* Each epoch drops other tokens of the same example. */
            bb.drop_seed = (o->seed + 1) * 0xA0761D6478BD642Full ^
                           ((uint64_t)L->pos.epoch + 1) * 0xE7037ED1A0B428DBull;
            while ((size_t)L->pos.cursor < L->train->n &&
                   bbuf_add(&bb, L->train, order[L->pos.cursor]))
                L->pos.cursor++;
            tgraph_set_dropout(g, o->dropout,
                               o->seed * 0x2545F4914F6CDD1Dull +
                                   (uint64_t)L->pos.step * 64 + (uint64_t)a);
            double ls;
            st = tgraph_run(g, bbuf_batch(&bb), 1.0f, &ls, NULL);
            loss_sum += ls;
            n_tok += bb.n_tok;
            w_sum += bb.w_sum;
        }
        if (st)
            break;
        const float inv = (float)(1.0 / w_sum);
        const double norm = optim_grad_norm(L->m, L->pool) * inv;
        float scale = inv;
        if (o->clip > 0 && norm > o->clip)
            scale *= (float)(o->clip / norm);
        const float lr = optim_lr(&L->opt, L->pos.step);
        optim_step(&L->opt, L->m, L->mom, L->vel, L->pos.step + 1, lr,
                   scale, L->pool);
        if (L->ema)
            ema_update(L);
        const double loss = loss_sum / w_sum;
        if ((st = hist_push(L, (float)loss)))
            break;
        L->pos.step++;
        const double dt = now_s() - t0;
        tokens_done += (uint64_t)n_tok;
        st = metrics_line(L, "train", loss, n_tok / dt, lr);
        if (!st && (L->pos.step % eval_every == 0 ||
                    L->pos.step == L->pos.total_steps))
            st = evaluate(L);
        show_progress(L, loss, tokens_done,
                      L->pos.step == L->pos.total_steps);
        const bool due = ckpt_every > 0 ? L->pos.step % ckpt_every == 0
                                        : now_s() - last_ckpt > 60.0;
        if (!st && due && L->pos.step < L->pos.total_steps) {
            st = tloop_save(L, ckpt);
            last_ckpt = now_s();
        }
        /* Wall time of the whole iteration, validation included, so a
         * time budget covers everything the run does. */
        L->pos.seconds += now_s() - t0;
        if (o->time_budget > 0 &&
            (L->pos.step == 5 || L->pos.step % eval_every == 0))
            fit_budget(L);
    }
    if (L->prog)
        progress_clear(L->prog);
    if (st == ROJ_ERR_ABORTED) {
        char keep[512];
        snprintf(keep, sizeof keep, "%s", roj_last_error());
        if (!tloop_save(L, ckpt))
            roj_log(ROJ_LOG_WARN, "checkpoint written to %s; continue with "
                    "--resume", ckpt);
        st = roj_error(ROJ_ERR_ABORTED, "%s", keep);
    }
    free(order);
    tgraph_free(g);
    bbuf_free(&bb);
    return st;
}
