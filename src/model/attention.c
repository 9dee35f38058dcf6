/*
 * Causal self-attention over the F16 KV cache, as matrix products.
 *
 * Cache layout, per layer and sequence:
 *   K: (n_head_kv, n_ctx, head_dim)   one row of head_dim per position
 *   V: (n_head_kv, head_dim, n_ctx)   transposed, one row per dimension
 * so that for one KV head both products are kern_matmul_rows calls on F16
 * "weights": scores = K_head x Q^T and output = V_head^T x P^T.
 *
 * Work is split into items of (sequence, KV head, up to ATTN_BLOCK
 * consecutive query tokens of that sequence). The queries of all heads
 * that share the KV head are stacked, so each key is read once per block.
 * Keys after a query's position are masked out.
 */
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"
#include "model/attention.h"
#include "quant/fp16.h"

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

size_t attn_scratch_bytes(const hparams *hp, int32_t n_ctx)
{
    const size_t rows = (size_t)ATTN_BLOCK * (hp->n_head / hp->n_head_kv);
    const size_t hd = (size_t)hp->head_dim;
    return align64(rows * hd * sizeof(float)) +                 /* q */
           align64(rows * kern_act_row_bytes(ROJ_TYPE_F16, hd)) + /* q act */
           align64(rows * (size_t)n_ctx * sizeof(float)) +      /* scores */
           align64(rows * kern_act_row_bytes(ROJ_TYPE_F16, n_ctx)) +
           align64(rows * hd * sizeof(float)) + 64;             /* out */
}

size_t attn_k_offset(const roj_context *c, int il, int32_t seq, int g)
{
    const hparams *hp = &c->model->hp;
    size_t per_seq = (size_t)hp->n_head_kv * c->n_ctx * hp->head_dim;
    return ((size_t)il * c->n_seq + seq) * per_seq +
           (size_t)g * c->n_ctx * hp->head_dim;
}

void attn_store(roj_context *c, int il, int32_t t, const float *k,
                const float *v)
{
    const hparams *hp = &c->model->hp;
    const int hd = hp->head_dim;
    const int32_t seq = c->tok_seq[t];
    const int32_t pos = c->tok_pos[t];
    for (int g = 0; g < hp->n_head_kv; g++) {
        size_t base = attn_k_offset(c, il, seq, g);
        kern_f32_to_f16(k + (size_t)g * hd, c->k_cache + base +
                        (size_t)pos * hd, hd);
        uint16_t *vt = c->v_cache + base;
        for (int d = 0; d < hd; d++)
            vt[(size_t)d * c->n_ctx + pos] = fp32_to_fp16(v[g * hd + d]);
    }
}

/* Groups the batch tokens by sequence (keeping batch order, which is
 * position order within a sequence) and lists the work items. */
static int32_t plan_items(roj_context *c, int32_t n_tok)
{
    const int n_head_kv = c->model->hp.n_head_kv;
    int32_t n_order = 0, n_items = 0;

    /* Counting sort by sequence; n_seq may be large, so walk the batch
     * once per distinct sequence instead of allocating n_seq counters. */
    for (int32_t i = 0; i < n_tok; i++) {
        int32_t seq = c->tok_seq[i];
        int seen = 0;
        for (int32_t j = 0; j < i && !seen; j++)
            seen = c->tok_seq[j] == seq;
        if (seen)
            continue;
        int32_t first = n_order;
        for (int32_t j = i; j < n_tok; j++)
            if (c->tok_seq[j] == seq)
                c->attn_order[n_order++] = j;
        for (int32_t b = first; b < n_order; b += ATTN_BLOCK) {
            int32_t count = n_order - b < ATTN_BLOCK ? n_order - b
                                                     : ATTN_BLOCK;
            for (int g = 0; g < n_head_kv; g++) {
                attn_item *item = &c->attn_items[n_items++];
                item->seq = seq;
                item->first = b;
                item->count = count;
                item->kv_head = g;
            }
        }
    }
    return n_items;
}

/* Rounds non-negative finite values to the nearest F16 value (ties to
 * even), kept as float. Below 2^-14, F16 steps are 2^-24, which adding and
 * subtracting 0.5 (whose float ulp is 2^-24) rounds to; above, the 13 low
 * mantissa bits are rounded away. The loop has no branches, so the
 * compiler vectorizes it. */
static void round_to_f16(float *v, int32_t n)
{
    for (int32_t j = 0; j < n; j++) {
        float small = (v[j] + 0.5f) - 0.5f;
        uint32_t bits = fp32_to_bits(v[j]);
        bits = (bits + 0xfffu + ((bits >> 13) & 1u)) & ~0x1fffu;
        v[j] = v[j] < 6.103515625e-05f ? small : fp32_from_bits(bits);
    }
}

/* Softmax of one score row over its first n_keys entries, with the F16
 * rounding llama.cpp applies before multiplying with V. */
static void softmax_row(float *row, int32_t n_keys, int32_t n_valid,
                        float scale)
{
    float max = -INFINITY;
    for (int32_t j = 0; j < n_valid; j++) {
        row[j] *= scale;
        if (row[j] > max)
            max = row[j];
    }
    double sum = 0.0;
    for (int32_t j = 0; j < n_valid; j++) {
        row[j] = expf(row[j] - max);
        sum += row[j];
    }
    const float inv = (float)(1.0 / sum);
    for (int32_t j = 0; j < n_valid; j++)
        row[j] *= inv;
    round_to_f16(row, n_valid);
    for (int32_t j = n_valid; j < n_keys; j++)
        row[j] = 0.0f;
}

static void run_item(roj_context *c, int il, const attn_item *item,
                     char *scratch)
{
    const hparams *hp = &c->model->hp;
    const int hd = hp->head_dim;
    const int group = hp->n_head / hp->n_head_kv;
    const size_t q_dim = (size_t)hp->n_head * hd;
    const int32_t rows = item->count * group;
    const int32_t last = c->attn_order[item->first + item->count - 1];
    const int32_t n_keys = c->tok_pos[last] + 1;
    const size_t base = attn_k_offset(c, il, item->seq, item->kv_head);
    const float scale = 1.0f / sqrtf((float)hd);

    /* Carve the scratch: q rows, their F16 form, scores, P, output. */
    const size_t max_rows = (size_t)ATTN_BLOCK * group;
    float *q = (float *)scratch;
    char *q_act = scratch + align64(max_rows * hd * sizeof(float));
    float *scores = (float *)(q_act +
        align64(max_rows * kern_act_row_bytes(ROJ_TYPE_F16, hd)));
    char *p_act = (char *)scores +
        align64(max_rows * (size_t)c->n_ctx * sizeof(float));
    float *out = (float *)(p_act +
        align64(max_rows * kern_act_row_bytes(ROJ_TYPE_F16, c->n_ctx)));

    /* Stack the queries: row r = token r / group, head r % group. */
    for (int32_t r = 0; r < rows; r++) {
        int32_t t = c->attn_order[item->first + r / group];
        int h = item->kv_head * group + r % group;
        memcpy(q + (size_t)r * hd, c->q + t * q_dim + (size_t)h * hd,
               (size_t)hd * sizeof(float));
    }
    kern_quantize_act(ROJ_TYPE_F16, q, hd, q_act, hd, rows);
    kern_matmul_rows(ROJ_TYPE_F16, hd, c->k_cache + base,
                     (size_t)hd * sizeof(uint16_t), 0, n_keys, q_act, rows,
                     scores, n_keys);

    for (int32_t r = 0; r < rows; r++) {
        int32_t t = c->attn_order[item->first + r / group];
        softmax_row(scores + (size_t)r * n_keys, n_keys, c->tok_pos[t] + 1,
                    scale);
    }
    kern_quantize_act(ROJ_TYPE_F16, scores, n_keys, p_act, n_keys, rows);
    kern_matmul_rows(ROJ_TYPE_F16, n_keys, c->v_cache + base,
                     (size_t)c->n_ctx * sizeof(uint16_t), 0, hd, p_act, rows,
                     out, hd);

    /* c->attn is c->q: each (token, head) pair belongs to exactly one
     * item, which read its query above, so the output can replace it. */
    for (int32_t r = 0; r < rows; r++) {
        int32_t t = c->attn_order[item->first + r / group];
        int h = item->kv_head * group + r % group;
        memcpy(c->attn + t * q_dim + (size_t)h * hd, out + (size_t)r * hd,
               (size_t)hd * sizeof(float));
    }
}

typedef struct attn_task {
    roj_context *c;
    int il;
    int32_t n_items;
} attn_task;

static void attn_worker(void *arg, int thread, int n_threads)
{
    const attn_task *task = arg;
    int64_t begin, end;
    pool_split(task->n_items, n_threads, thread, 1, &begin, &end);
    char *scratch = (char *)task->c->attn_scratch +
                    (size_t)thread * task->c->attn_scratch_stride;
    for (int64_t i = begin; i < end; i++)
        run_item(task->c, task->il, &task->c->attn_items[i], scratch);
}

/* Attention with fewer multiply-adds than this runs on the calling
 * thread, where it costs less than waking the pool. */
#define ATTN_PARALLEL_MIN_MACS (1 << 18)

void attn_run(roj_context *c, int il, int32_t n_tok)
{
    const hparams *hp = &c->model->hp;
    attn_task task = {c, il, plan_items(c, n_tok)};
    int64_t macs = 0;
    for (int32_t i = 0; i < task.n_items; i++) {
        const attn_item *item = &c->attn_items[i];
        int32_t last = c->attn_order[item->first + item->count - 1];
        macs += (int64_t)item->count * (hp->n_head / hp->n_head_kv) *
                (c->tok_pos[last] + 1) * hp->head_dim * 2;
    }
    if (macs < ATTN_PARALLEL_MIN_MACS)
        attn_worker(&task, 0, 1);
    else
        pool_run(c->pool, attn_worker, &task);
}
