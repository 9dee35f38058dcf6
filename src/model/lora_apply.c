/* Applying LoRA adapters at run time: y = W x + scale * B (A x) for every
 * adapted weight, added after the base product of the forward pass. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/kernels.h"
#include "model/lora.h"

/* Deltas with fewer multiply-adds than this run on the calling thread
 * (the same bound as the base products in forward.c). */
#define LORA_PARALLEL_MIN_MACS (1 << 18)

void lora_state_free(lora_state *s)
{
    if (!s)
        return;
    free(s->first);
    free(s->deltas);
    free(s->projected);
    free(s);
}

/* Returns the slot whose deltas slot s applies: a tied model's output
 * uses the token_embd deltas, because it is the same matrix. */
static int32_t slot_source(const roj_model *m, int32_t s)
{
    if (s == lora_slot_output(m) && m->output.data == m->token_embd.data)
        return lora_slot_embd(m);
    return s;
}

/* Groups the pairs of all adapters by slot into a new state. */
static roj_status build_state(const roj_context *c,
                              const roj_lora *const *adapters,
                              const float *scales, size_t n,
                              lora_state **out)
{
    const roj_model *m = c->model;
    lora_state *s = calloc(1, sizeof *s);
    size_t total = 0, k = 0;

    *out = NULL;
    for (size_t i = 0; i < n; i++)
        total += adapters[i]->n_pairs;
    if (!s)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    s->n_slots = lora_n_slots(m);
    s->first = calloc((size_t)s->n_slots + 1, sizeof *s->first);
    /* Twice the pairs: a tied output repeats the token_embd deltas. */
    s->deltas = calloc(2 * total, sizeof *s->deltas);
    if (!s->first || !s->deltas)
        goto nomem;
    for (int32_t slot = 0; slot < s->n_slots; slot++) {
        s->first[slot] = (int32_t)k;
        for (size_t i = 0; i < n; i++) {
            const roj_lora *l = adapters[i];
            for (size_t j = 0; j < l->n_pairs; j++) {
                const lora_pair *p = &l->pairs[j];
                if (p->slot != slot_source(m, slot))
                    continue;
                float user = scales ? scales[i] : 1.0f;
                s->deltas[k++] = (lora_delta){
                    p->a, p->bt, p->rank, lora_pair_scale(l, p, user)};
                if (p->rank > s->max_rank)
                    s->max_rank = p->rank;
            }
        }
    }
    s->first[s->n_slots] = (int32_t)k;
    s->projected = malloc((size_t)c->n_ubatch * (size_t)(s->max_rank + 1) *
                    sizeof *s->projected);
    if (!s->projected)
        goto nomem;
    *out = s;
    return ROJ_OK;

nomem:
    lora_state_free(s);
    return roj_error(ROJ_ERR_NOMEM, "out of memory for %zu LoRA tensors",
                     total);
}

roj_status roj_context_set_lora(roj_context *c,
                                const roj_lora *const *adapters,
                                const float *scales, size_t n)
{
    lora_state *s = NULL;
    roj_status st;

    for (size_t i = 0; i < n; i++) {
        if (!adapters || !adapters[i])
            return roj_error(ROJ_ERR_INVALID_ARG, "LoRA adapter %zu is "
                             "NULL", i);
        if (adapters[i]->base != c->model)
            return roj_error(ROJ_ERR_INVALID_ARG, "LoRA adapter %s was "
                             "opened on another model than this context's "
                             "(%s); open it on the context's model",
                             adapters[i]->path, roj_model_name(c->model));
        if (scales && !isfinite(scales[i]))
            return roj_error(ROJ_ERR_INVALID_ARG, "LoRA adapter %s: scale "
                             "%g is not finite", adapters[i]->path,
                             (double)scales[i]);
    }
    if (n > 0 && (st = build_state(c, adapters, scales, n, &s)) != ROJ_OK)
        return st;
    lora_state_free(c->lora);
    c->lora = s;
    return ROJ_OK;
}

/* ------------------------------------------------------------------ */
/* Forward pass */

typedef struct delta_task {
    const lora_delta *d;
    const float *x;
    float *y;
    float *projected;
    int64_t n_in;
    int64_t n_out;
    int64_t n_tok;
    int64_t projected_stride;
} delta_task;

static void delta_worker(void *arg, int thread, int n_threads)
{
    const delta_task *t = arg;
    const lora_delta *d = t->d;
    int64_t begin, end;

    pool_split(t->n_tok, n_threads, thread, 1, &begin, &end);
    for (int64_t tok = begin; tok < end; tok++) {
        const float *x = t->x + tok * t->n_in;
        float *y = t->y + tok * t->n_out;
        float *ax = t->projected + tok * t->projected_stride;
        for (int64_t r = 0; r < d->rank; r++)
            ax[r] = d->scale * kern_dot_f32(d->a + r * t->n_in, x, t->n_in);
        for (int64_t r = 0; r < d->rank; r++)
            kern_axpy_f32(y, ax[r], d->bt + r * t->n_out, t->n_out);
    }
}

void lora_apply(roj_context *c, int32_t slot, const float *x, int64_t n_in,
                int64_t n_tok, float *y, int64_t n_out)
{
    const lora_state *s = c->lora;
    for (int32_t i = s->first[slot]; i < s->first[slot + 1]; i++) {
        delta_task task = {&s->deltas[i], x, y, s->projected, n_in, n_out,
                           n_tok, s->max_rank};
        int64_t macs = s->deltas[i].rank * (n_in + n_out) * n_tok;
        if (macs < LORA_PARALLEL_MIN_MACS)
            delta_worker(&task, 0, 1);
        else
            pool_run(c->pool, delta_worker, &task);
    }
}

void lora_apply_embd(roj_context *c, const roj_token *tokens, int64_t n_tok)
{
    const lora_state *s = c->lora;
    const int32_t slot = lora_slot_embd(c->model);
    const int64_t n_embd = c->model->hp.n_embd;
    const int64_t n_vocab = c->model->hp.n_vocab;

    /* Row t of the embedding changes by scale * sum_r B[t][r] A[r], and
     * B[t][r] is bt[r][t]. */
    for (int32_t i = s->first[slot]; i < s->first[slot + 1]; i++) {
        const lora_delta *d = &s->deltas[i];
        for (int64_t t = 0; t < n_tok; t++)
            for (int64_t r = 0; r < d->rank; r++)
                kern_axpy_f32(c->x + t * n_embd,
                              d->scale * d->bt[r * n_vocab + tokens[t]],
                              d->a + r * n_embd, n_embd);
    }
}
