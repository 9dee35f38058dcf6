/*
 * The forward pass of llama-style decoder models (llama, qwen2):
 *
 *   x = token_embd[tokens]
 *   per layer:  x += Wo * attention(rope(Wq * n1), rope(Wk * n1), Wv * n1)
 *               x += Wdown * (silu(Wgate * n2) * (Wup * n2))
 *   where n1, n2 are RMSNorm(x) times the layer's norm weights;
 *   logits = output * RMSNorm(x)
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
#include "model/model_internal.h"
#include "quant/fp16.h"

/* Row alignment of the per-thread row ranges of a matrix. */
#define ROW_ALIGN 16
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
    }
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

static void add_bias(float *y, const float *bias, int64_t n_tok, int64_t n)
{
    if (!bias)
        return;
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t i = 0; i < n; i++)
            y[t * n + i] += bias[i];
}

static void attention_block(roj_context *c, int il, int32_t n_tok)
{
    const hparams *hp = &c->model->hp;
    const layer *l = &c->model->layers[il];
    const int64_t n_embd = hp->n_embd;
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim;
    const int64_t kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;

    for (int32_t t = 0; t < n_tok; t++)
        rms_norm(c->xn + t * n_embd, c->x + t * n_embd, l->attn_norm, n_embd,
                 hp->rms_eps);
    const weight *ws[3] = {&l->wq, &l->wk, &l->wv};
    float *ys[3] = {c->q, c->k, c->v};
    matmul_shared_input(c, c->xn, n_tok, ws, ys, 3);
    add_bias(c->q, l->bq, n_tok, q_dim);
    add_bias(c->k, l->bk, n_tok, kv_dim);
    add_bias(c->v, l->bv, n_tok, kv_dim);

    for (int32_t t = 0; t < n_tok; t++) {
        float *q = c->q + t * q_dim;
        rope_apply(c, q, hp->n_head, t);
        for (int64_t i = 0; i < q_dim; i++)
            q[i] = fp16_to_fp32(fp32_to_fp16(q[i]));
        rope_apply(c, c->k + t * kv_dim, hp->n_head_kv, t);
        attn_store(c, il, t, c->k + t * kv_dim, c->v + t * kv_dim);
    }
    attn_run(c, il, n_tok);

    const weight *wo[1] = {&l->wo};
    float *out[1] = {c->xn};
    matmul_shared_input(c, c->attn, n_tok, wo, out, 1);
    for (int64_t i = 0; i < n_tok * n_embd; i++)
        c->x[i] += c->xn[i];
}

static void ffn_block(roj_context *c, int il, int32_t n_tok)
{
    const hparams *hp = &c->model->hp;
    const layer *l = &c->model->layers[il];
    const int64_t n_embd = hp->n_embd;
    const int64_t n_ff = hp->n_ff;

    for (int32_t t = 0; t < n_tok; t++)
        rms_norm(c->xn + t * n_embd, c->x + t * n_embd, l->ffn_norm, n_embd,
                 hp->rms_eps);
    const weight *ws[2] = {&l->w_gate, &l->w_up};
    float *ys[2] = {c->gate, c->up};
    matmul_shared_input(c, c->xn, n_tok, ws, ys, 2);
    for (int64_t i = 0; i < n_tok * n_ff; i++) {
        float g = c->gate[i];
        c->gate[i] = g / (1.0f + expf(-g)) * c->up[i];
    }
    const weight *wd[1] = {&l->w_down};
    float *out[1] = {c->xn};
    matmul_shared_input(c, c->gate, n_tok, wd, out, 1);
    for (int64_t i = 0; i < n_tok * n_embd; i++)
        c->x[i] += c->xn[i];
}

static roj_status check_logits(const roj_context *c, int32_t n_out)
{
    const int64_t n = (int64_t)n_out * c->model->hp.n_vocab;
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
    rope_tables(c, n_tok);

    for (int il = 0; il < hp->n_layer; il++) {
        attention_block(c, il, n_tok);
        ffn_block(c, il, n_tok);
    }
    if (n_out == 0)
        return ROJ_OK;

    /* Final norm and output head on the rows that want logits only. */
    for (int32_t j = 0; j < n_out; j++)
        rms_norm(c->xn + j * n_embd, c->x + (int64_t)out_rows[j] * n_embd,
                 m->output_norm, n_embd, hp->rms_eps);
    const weight *wout[1] = {&m->output};
    float *ys[1] = {c->logits};
    matmul_shared_input(c, c->xn, n_out, wout, ys, 1);
    return check_logits(c, n_out);
}
