/*
 * The forward pass of llama-style decoder models (llama, qwen2):
 *
 *   x = token_embd[tokens]
 *   per layer:  x += Wo * attention(rope(Wq * n1), rope(Wk * n1), Wv * n1)
 *               x += Wdown * (silu(Wgate * n2) * (Wup * n2))
 *   where n1, n2 are RMSNorm(x) times the layer's norm weights;
 *   logits = output * RMSNorm(x)
 *   and with LoRA adapters set, each product W x also adds scale B (A x)
 *
 * Every matrix product covers the whole batch at once (matrix-matrix for
 * prompts), with the rows of each weight matrix split between threads.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/kernels.h"
#include "model/attention.h"
#include "model/lora.h"
#include "model/model_internal.h"
#include "quant/fp16.h"

/* Row alignment of the per-thread row ranges of a matrix. */
#define ROW_ALIGN 16

/* Products with fewer multiply-adds than this run on the calling thread:
 * at roughly 50 GFLOP/s they take about 5 us, the order of what waking
 * and joining the pool costs. */
#define PARALLEL_MIN_MACS (1 << 18)
#define MAX_JOBS 3

/* One matrix product: y (n_tok, y_stride) = act (n_tok) x W^T. */
typedef struct mm_job {
    const weight *w;
    const void *act;
    float *y;
    int64_t y_stride;
} mm_job;

typedef struct mm_task {
    mm_job jobs[MAX_JOBS];
    int n_jobs;
    int64_t n_tok;
} mm_task;

static void mm_worker(void *arg, int thread, int n_threads)
{
    const mm_task *task = arg;
    for (int j = 0; j < task->n_jobs; j++) {
        const mm_job *job = &task->jobs[j];
        int64_t begin, end;
        pool_split(job->w->n_out, n_threads, thread, ROW_ALIGN, &begin,
                   &end);
        if (begin < end)
            kern_matmul(job->w->type, job->w->n_in, job->w->data, begin, end,
                        job->act, task->n_tok, job->y, job->y_stride);
    }
}

/* Conversion of activation rows into one weight type's partner format. */
typedef struct act_task {
    enum roj_type type;
    const float *x;
    int64_t x_stride;
    void *act;
    int64_t n_in;
    int64_t n_tok;
} act_task;

static void act_worker(void *arg, int thread, int n_threads)
{
    const act_task *t = arg;
    int64_t begin, end;
    size_t row_bytes = kern_act_row_bytes(t->type, t->n_in);
    pool_split(t->n_tok, n_threads, thread, 1, &begin, &end);
    if (begin < end)
        kern_quantize_act(t->type, t->x + begin * t->x_stride, t->x_stride,
                          (char *)t->act + begin * row_bytes, t->n_in,
                          end - begin);
}

static void convert_act(roj_context *c, enum roj_type type, const float *x,
                        int64_t x_stride, void *act, int64_t n_in,
                        int64_t n_tok)
{
    act_task t = {type, x, x_stride, act, n_in, n_tok};
    if (n_tok < 4)
        act_worker(&t, 0, 1);
    else
        pool_run(c->pool, act_worker, &t);
}

/*
 * Runs up to MAX_JOBS matrix products that share the same input x
 * (n_tok rows of n_in floats). Each distinct partner type is converted once.
 */
static void matmul_shared_input(roj_context *c, const float *x, int64_t n_tok,
                                const weight *const *ws, float *const *ys,
                                int n)
{
    mm_task task = {.n_jobs = n, .n_tok = n_tok};
    enum roj_type done_types[MAX_JOBS];
    int n_done = 0;
    int64_t macs = 0;

    for (int j = 0; j < n; j++) {
        enum roj_type at = kern_act_type(ws[j]->type);
        int slot = -1;
        for (int k = 0; k < n_done; k++)
            if (done_types[k] == at)
                slot = k;
        if (slot < 0) {
            slot = n_done++;
            done_types[slot] = at;
            convert_act(c, ws[j]->type, x, ws[j]->n_in, c->act[slot],
                        ws[j]->n_in, n_tok);
        }
        task.jobs[j].w = ws[j];
        task.jobs[j].act = c->act[slot];
        task.jobs[j].y = ys[j];
        task.jobs[j].y_stride = ws[j]->n_out;
        macs += ws[j]->n_in * ws[j]->n_out * n_tok;
    }
    if (macs < PARALLEL_MIN_MACS)
        mm_worker(&task, 0, 1);
    else
        pool_run(c->pool, mm_worker, &task);
}

/* out = x / rms(x) * weight over n elements; the sum is kept in double. */
static void rms_norm(float *out, const float *x, const float *gain,
                     int64_t n, float eps)
{
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)x[i] * x[i];
    const float scale = 1.0f / sqrtf((float)(sum / (double)n) + eps);
    for (int64_t i = 0; i < n; i++)
        out[i] = x[i] * scale * gain[i];
}

/* Fills the cos/sin table of every batch token for its position. */
static void rope_tables(roj_context *c, int32_t n_tok)
{
    const hparams *hp = &c->model->hp;
    const int half = hp->rope_dim / 2;
    const float theta_scale = powf(hp->rope_base, -2.0f / hp->rope_dim);
    for (int32_t t = 0; t < n_tok; t++) {
        float theta = (float)c->tok_pos[t];
        for (int i = 0; i < half; i++) {
            float angle = theta * hp->rope_freq_scale;
            if (c->model->rope_freqs)
                angle /= c->model->rope_freqs[i];
            c->rope_cos[(size_t)t * half + i] = cosf(angle);
            c->rope_sin[(size_t)t * half + i] = sinf(angle);
            theta *= theta_scale;
        }
    }
}

/* Rotates n_heads heads of one token in place. */
static void rope_apply(const roj_context *c, float *v, int n_heads, int32_t t)
{
    const hparams *hp = &c->model->hp;
    const int half = hp->rope_dim / 2;
    const float *cs = c->rope_cos + (size_t)t * half;
    const float *sn = c->rope_sin + (size_t)t * half;
    for (int h = 0; h < n_heads; h++) {
        float *head = v + (size_t)h * hp->head_dim;
        for (int i = 0; i < half; i++) {
            int a = hp->rope_kind == ROPE_NORMAL ? 2 * i : i;
            int b = hp->rope_kind == ROPE_NORMAL ? 2 * i + 1 : i + half;
            float x0 = head[a], x1 = head[b];
            head[a] = x0 * cs[i] - x1 * sn[i];
            head[b] = x0 * sn[i] + x1 * cs[i];
        }
    }
}

static void add_bias(float *y, const float *bias, int64_t n)
{
    if (bias)
        for (int64_t i = 0; i < n; i++)
            y[i] += bias[i];
}

/* Per-token work between the matrix products. The products write their
 * output (the attention or FFN contribution) to xn; the steps that start
 * a block first add it to the residual stream x, then normalize x into
 * xn for the next product. */
enum token_step {
    STEP_ATTN_IN,        /* x += xn unless layer 0; xn = norm(x) */
    STEP_QKV_OUT,        /* biases, RoPE, F16 query, K and V to the cache */
    STEP_FFN_IN,         /* x += xn; xn = norm(x) */
    STEP_SWIGLU          /* gate = silu(gate) * up */
};

static void token_step_run(roj_context *c, int il, int32_t t,
                           enum token_step step)
{
    const hparams *hp = &c->model->hp;
    const layer *l = &c->model->layers[il];
    const int64_t n_embd = hp->n_embd;
    float *x = c->x + t * n_embd;
    float *xn = c->xn + t * n_embd;

    switch (step) {
    case STEP_ATTN_IN:
    case STEP_FFN_IN:
        if (step == STEP_FFN_IN || il > 0)
            for (int64_t i = 0; i < n_embd; i++)
                x[i] += xn[i];
        rms_norm(xn, x, step == STEP_FFN_IN ? l->ffn_norm : l->attn_norm,
                 n_embd, hp->rms_eps);
        break;
    case STEP_QKV_OUT: {
        const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim;
        const int64_t kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
        float *q = c->q + t * q_dim;
        float *k = c->k + t * kv_dim;
        float *v = c->v + t * kv_dim;
        add_bias(q, l->bq, q_dim);
        add_bias(k, l->bk, kv_dim);
        add_bias(v, l->bv, kv_dim);
        rope_apply(c, q, hp->n_head, t);
        rope_apply(c, k, hp->n_head_kv, t);
        /* llama.cpp multiplies the query with the F16 keys in F16. */
        kern_round_f16(q, q_dim);
        attn_store(c, il, t, k, v);
        break;
    }
    case STEP_SWIGLU: {
        /* gate and up hold the rows of the current FFN chunk only. */
        float *gate = c->gate + (t - c->ffn_first) * hp->n_ff;
        const float *up = c->up + (t - c->ffn_first) * hp->n_ff;
        kern_swiglu(gate, up, hp->n_ff);
        break;
    }
    }
}

typedef struct step_task {
    roj_context *c;
    int il;
    int32_t first;
    int32_t n_tok;
    enum token_step step;
} step_task;

static void step_worker(void *arg, int thread, int n_threads)
{
    const step_task *task = arg;
    int64_t begin, end;
    pool_split(task->n_tok, n_threads, thread, 1, &begin, &end);
    for (int64_t t = begin; t < end; t++)
        token_step_run(task->c, task->il, task->first + (int32_t)t,
                       task->step);
}

/* Runs a step for batch tokens [first, first + n_tok), on the pool when
 * there is enough work. */
static void run_step_range(roj_context *c, int il, int32_t first,
                           int32_t n_tok, enum token_step step)
{
    step_task task = {c, il, first, n_tok, step};
    if ((int64_t)n_tok * c->model->hp.n_embd < 4096)
        step_worker(&task, 0, 1);
    else
        pool_run(c->pool, step_worker, &task);
}

static void run_step(roj_context *c, int il, int32_t n_tok,
                     enum token_step step)
{
    run_step_range(c, il, 0, n_tok, step);
}

static void attention_block(roj_context *c, int il, int32_t n_tok)
{
    const layer *l = &c->model->layers[il];

    run_step(c, il, n_tok, STEP_ATTN_IN);
    const weight *ws[3] = {&l->wq, &l->wk, &l->wv};
    float *ys[3] = {c->q, c->k, c->v};
    matmul_shared_input(c, c->xn, n_tok, ws, ys, 3);
    if (c->lora)
        for (int j = 0; j < 3; j++)
            lora_apply(c, il * LORA_LAYER_KINDS + LORA_Q + j, c->xn,
                       ws[j]->n_in, n_tok, ys[j], ws[j]->n_out);
    run_step(c, il, n_tok, STEP_QKV_OUT);
    attn_run(c, il, n_tok);

    const weight *wo[1] = {&l->wo};
    float *out[1] = {c->xn};
    matmul_shared_input(c, c->attn, n_tok, wo, out, 1);
    if (c->lora)
        lora_apply(c, il * LORA_LAYER_KINDS + LORA_O, c->attn, l->wo.n_in,
                   n_tok, c->xn, l->wo.n_out);
}

static void ffn_block(roj_context *c, int il, int32_t n_tok)
{
    const layer *l = &c->model->layers[il];

    const int64_t n_embd = c->model->hp.n_embd;

    run_step(c, il, n_tok, STEP_FFN_IN);
    /* The wide gate and up activations exist for FFN_CHUNK tokens at a
     * time, which bounds the scratch memory of large batches. Each chunk
     * reads its rows of xn before the down product overwrites them. */
    for (int32_t first = 0; first < n_tok; first += FFN_CHUNK) {
        int32_t count = n_tok - first < FFN_CHUNK ? n_tok - first
                                                  : FFN_CHUNK;
        const weight *ws[2] = {&l->w_gate, &l->w_up};
        float *ys[2] = {c->gate, c->up};
        matmul_shared_input(c, c->xn + first * n_embd, count, ws, ys, 2);
        if (c->lora)
            for (int j = 0; j < 2; j++)
                lora_apply(c, il * LORA_LAYER_KINDS + LORA_GATE + j,
                           c->xn + first * n_embd, n_embd, count, ys[j],
                           ws[j]->n_out);
        c->ffn_first = first;
        run_step_range(c, il, first, count, STEP_SWIGLU);
        const weight *wd[1] = {&l->w_down};
        float *out[1] = {c->xn + first * n_embd};
        matmul_shared_input(c, c->gate, count, wd, out, 1);
        if (c->lora)
            lora_apply(c, il * LORA_LAYER_KINDS + LORA_DOWN, c->gate,
                       l->w_down.n_in, count, out[0], n_embd);
    }
}

static roj_status check_logits(const roj_context *c, int32_t n_out)
{
    const int64_t n = (int64_t)n_out * c->model->hp.n_vocab;

    /* A float is NaN or infinite when its exponent bits are all ones; the
     * OR over integers vectorizes, unlike a loop of isfinite calls. */
    uint32_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &c->logits[i], sizeof bits);
        bad |= (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
    }
    if (!bad)
        return ROJ_OK;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(c->logits[i]))
            return roj_error(ROJ_ERR_NUMERIC,
                             "the model produced a non-finite logit (%g) "
                             "for token %lld; the weights may be corrupt",
                             (double)c->logits[i],
                             (long long)(i % c->model->hp.n_vocab));
    return ROJ_OK;
}

roj_status model_forward(roj_context *c, const roj_token *tokens,
                         int32_t n_tok, const int32_t *out_rows,
                         int32_t n_out)
{
    const roj_model *m = c->model;
    const hparams *hp = &m->hp;
    const int64_t n_embd = hp->n_embd;
    const size_t embd_row = qtype_row_bytes(m->token_embd.type, n_embd);

    /* Embedding lookup. */
    for (int32_t t = 0; t < n_tok; t++)
        kern_dequantize_row(m->token_embd.type,
                            (const char *)m->token_embd.data +
                                (size_t)tokens[t] * embd_row,
                            c->x + t * n_embd, n_embd);
    if (c->lora)
        lora_apply_embd(c, tokens, n_tok);
    rope_tables(c, n_tok);

    for (int il = 0; il < hp->n_layer; il++) {
        if (c->abort_fn && c->abort_fn(c->abort_data))
            return roj_error(ROJ_ERR_ABORTED, "evaluation aborted by the "
                             "caller at layer %d of %d", il, hp->n_layer);
        attention_block(c, il, n_tok);
        ffn_block(c, il, n_tok);
    }
    if (n_out == 0)
        return ROJ_OK;

    /* Last residual, final norm and output head, on the rows that want
     * logits only. Rows are packed in order, and out_rows[j] >= j, so
     * row j of xn is free once row out_rows[j] has been read. */
    for (int32_t j = 0; j < n_out; j++) {
        float *x = c->x + (int64_t)out_rows[j] * n_embd;
        const float *delta = c->xn + (int64_t)out_rows[j] * n_embd;
        for (int64_t i = 0; i < n_embd; i++)
            x[i] += delta[i];
        rms_norm(c->xn + j * n_embd, x, m->output_norm, n_embd,
                 hp->rms_eps);
    }
    const weight *wout[1] = {&m->output};
    float *ys[1] = {c->logits};
    matmul_shared_input(c, c->xn, n_out, wout, ys, 1);
    if (c->lora)
        lora_apply(c, lora_slot_output(m), c->xn, n_embd, n_out, c->logits,
                   hp->n_vocab);
    return check_logits(c, n_out);
}
