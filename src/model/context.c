/* Contexts: KV cache, scratch buffers, batch validation. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "kernels/kernels.h"
#include "model/attention.h"
#include "model/lora.h"
#include "model/model_internal.h"

#define DEFAULT_MAX_CTX 4096
#define DEFAULT_MAX_THREADS 8
/* Share of the weights' size that the default micro-batch's scratch
 * buffers stay under. A swarm runs many small models: on a 135M Q4_0
 * model a 512-token micro-batch took 4 MiB (4%) more peak memory than a
 * 128-token one, with the same pp512 speed. 1% gives such files 64-token
 * micro-batches, within noise of 128 in pp512 speed (docs/BENCHMARKS.md,
 * "Memory"). */
#define UBATCH_SCRATCH_SHARE 0.01
#define UBATCH_MIN 32

roj_context_params roj_context_default_params(void)
{
    roj_context_params p;
    p.n_ctx = 0;
    p.n_seq = 1;
    p.n_batch = 512;
    p.n_threads = 0;
    p.n_ubatch = 0;
    return p;
}

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if (n > DEFAULT_MAX_THREADS)
        n = DEFAULT_MAX_THREADS;
    return (int)n;
}

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* Distinct activation types among matrices that share one input (Q/K/V,
 * gate/up), the most over all layers: how many conversions of one input
 * matmul_shared_input keeps at once. */
static int max_act_buffers(const roj_model *m)
{
    int most = 1;
    for (int il = 0; il < m->hp.n_layer; il++) {
        const layer *l = &m->layers[il];
        enum roj_type qkv[3] = {kern_act_type(l->wq.type),
                                kern_act_type(l->wk.type),
                                kern_act_type(l->wv.type)};
        int distinct = 1 + (qkv[1] != qkv[0]) +
                       (qkv[2] != qkv[0] && qkv[2] != qkv[1]);
        if (distinct > most)
            most = distinct;
        if (kern_act_type(l->w_gate.type) != kern_act_type(l->w_up.type) &&
            most < 2)
            most = 2;
    }
    return most;
}

/* Largest converted activation row of the products whose input is one
 * token's n_embd or q_dim values (all but the down product), and of the
 * down product, whose input is n_ff wide. */
static void max_act_rows(const roj_model *m, size_t *narrow, size_t *down)
{
    *narrow = kern_act_row_bytes(m->output.type, m->hp.n_embd);
    *down = 0;
    for (int il = 0; il < m->hp.n_layer; il++) {
        const layer *l = &m->layers[il];
        const weight *all[] = {&l->wq, &l->wk, &l->wv, &l->wo,
                               &l->w_gate, &l->w_up};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            *narrow = max_size(*narrow, kern_act_row_bytes(all[i]->type,
                                                           all[i]->n_in));
        *down = max_size(*down, kern_act_row_bytes(l->w_down.type,
                                                   l->w_down.n_in));
    }
}

/* Bytes of one converted-activation buffer for micro-batches of nb
 * tokens. The down product's wide input exists for FFN_CHUNK tokens at a
 * time only. */
static size_t act_buffer_bytes(const roj_model *m, size_t nb)
{
    size_t narrow, down;
    max_act_rows(m, &narrow, &down);
    return max_size(nb * narrow, (nb < FFN_CHUNK ? nb : FFN_CHUNK) * down);
}

/* Scratch bytes per micro-batch token: the float rows of alloc_scratch
 * and the converted activations of the products whose input is n_embd
 * wide (the down product's wide input is bounded by FFN_CHUNK). */
static size_t scratch_per_token(const roj_model *m)
{
    const hparams *hp = &m->hp;
    size_t q_dim = (size_t)hp->n_head * hp->head_dim;
    size_t kv_dim = (size_t)hp->n_head_kv * hp->head_dim;
    size_t floats = 2 * (size_t)hp->n_embd + q_dim + 2 * kv_dim +
                    (size_t)hp->rope_dim;
    size_t narrow, down;
    max_act_rows(m, &narrow, &down);
    return floats * sizeof(float) + (size_t)max_act_buffers(m) * narrow;
}

/* The largest power of two up to n_batch (and at least UBATCH_MIN, or
 * n_batch when smaller) whose scratch stays under UBATCH_SCRATCH_SHARE of
 * the weights. */
static int32_t default_ubatch(const roj_model *m, int32_t n_batch)
{
    double budget = UBATCH_SCRATCH_SHARE * (double)roj_model_size(m);
    size_t per_token = scratch_per_token(m);
    int32_t ub = UBATCH_MIN;
    while (ub < n_batch && (double)(2 * ub) * per_token <= budget)
        ub *= 2;
    return ub < n_batch ? ub : n_batch;
}

static roj_status alloc_scratch(roj_context *c)
{
    const hparams *hp = &c->model->hp;
    const size_t nb = (size_t)c->n_ubatch;
    const size_t q_dim = (size_t)hp->n_head * hp->head_dim;
    const size_t kv_dim = (size_t)hp->n_head_kv * hp->head_dim;
    const size_t ffn_rows = nb < FFN_CHUNK ? nb : FFN_CHUNK;
    const size_t n_threads = (size_t)pool_size(c->pool);
    const size_t cache_elems =
        (size_t)hp->n_layer * c->n_seq * c->n_ctx * kv_dim;

    c->act_bytes = act_buffer_bytes(c->model, nb);
    c->k_cache = calloc(cache_elems, sizeof(uint16_t));
    c->v_cache = calloc(cache_elems, sizeof(uint16_t));
    c->seqs = calloc((size_t)c->n_seq, sizeof *c->seqs);
    c->x = malloc(nb * hp->n_embd * sizeof(float));
    c->xn = malloc(nb * hp->n_embd * sizeof(float));
    c->q = malloc(nb * q_dim * sizeof(float));
    c->k = malloc(nb * kv_dim * sizeof(float));
    c->v = malloc(nb * kv_dim * sizeof(float));
    /* Attention writes each head's output over the query it read (see
     * attention.c), so the output shares the query rows. */
    c->attn = c->q;
    c->gate = malloc(ffn_rows * hp->n_ff * sizeof(float));
    c->up = malloc(ffn_rows * hp->n_ff * sizeof(float));
    const int n_act = max_act_buffers(c->model);
    for (int i = 0; i < n_act; i++)
        c->act[i] = malloc(c->act_bytes + 64);
    c->rope_cos = malloc(nb * (hp->rope_dim / 2) * sizeof(float));
    c->rope_sin = malloc(nb * (hp->rope_dim / 2) * sizeof(float));
    c->attn_scratch_stride = attn_scratch_bytes(hp, c->n_ctx);
    c->attn_scratch = malloc(n_threads * c->attn_scratch_stride);
    c->attn_order = malloc(nb * sizeof(int32_t));
    c->attn_items = malloc(2 * nb * hp->n_head_kv * sizeof(attn_item));
    c->tok_pos = malloc((size_t)c->n_batch * sizeof(int32_t));
    c->tok_seq = malloc((size_t)c->n_batch * sizeof(int32_t));
    c->logit_index = malloc((size_t)c->n_batch * sizeof(int32_t));
    if (!c->k_cache || !c->v_cache || !c->seqs || !c->x || !c->xn ||
        !c->q || !c->k || !c->v || !c->attn || !c->gate || !c->up ||
        !c->act[0] || (n_act > 1 && !c->act[1]) ||
        (n_act > 2 && !c->act[2]) || !c->rope_cos ||
        !c->rope_sin || !c->attn_scratch || !c->attn_order || !c->attn_items || !c->tok_pos || !c->tok_seq ||
        !c->logit_index)
        return roj_error(ROJ_ERR_NOMEM,
                         "out of memory for a context of %d positions x %d "
                         "sequences (KV cache %zu MiB)", c->n_ctx, c->n_seq,
                         cache_elems * 4 >> 20);
    return ROJ_OK;
}

roj_status roj_context_create(roj_model *model,
                              const roj_context_params *params,
                              roj_context **out)
{
    roj_context_params p = params ? *params : roj_context_default_params();
    roj_context *c;
    roj_status st;

    *out = NULL;
    if (p.n_ctx < 0 || p.n_seq < 0 || p.n_batch < 0 || p.n_threads < 0 ||
        p.n_ubatch < 0)
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "context parameters must not be negative: n_ctx "
                         "%d, n_seq %d, n_batch %d, n_threads %d, n_ubatch "
                         "%d (0 picks the default)", p.n_ctx, p.n_seq,
                         p.n_batch, p.n_threads, p.n_ubatch);
    if (p.n_ctx == 0) {
        p.n_ctx = model->hp.n_ctx_train;
        if (p.n_ctx > DEFAULT_MAX_CTX)
            p.n_ctx = DEFAULT_MAX_CTX;
    }
    if (p.n_seq == 0)
        p.n_seq = 1;
    if (p.n_batch == 0)
        p.n_batch = 512;
    if (p.n_threads == 0)
        p.n_threads = default_threads();
    if (p.n_ubatch == 0)
        p.n_ubatch = default_ubatch(model, p.n_batch);
    if (p.n_ubatch > p.n_batch)
        p.n_ubatch = p.n_batch;
    if (p.n_ctx > (1 << 20) || p.n_seq > 4096 || p.n_batch > (1 << 16))
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "context size %d, sequences %d or batch %d is too "
                         "large", p.n_ctx, p.n_seq, p.n_batch);

    c = calloc(1, sizeof *c);
    if (!c)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    c->model = model;
    c->n_ctx = p.n_ctx;
    c->n_seq = p.n_seq;
    c->n_batch = p.n_batch;
    c->n_ubatch = p.n_ubatch;
    c->last_logit = -1;
    if ((st = pool_create(p.n_threads, &c->pool)) != ROJ_OK ||
        (st = alloc_scratch(c)) != ROJ_OK) {
        roj_context_free(c);
        return st;
    }
    *out = c;
    return ROJ_OK;
}

void roj_context_free(roj_context *c)
{
    if (!c)
        return;
    pool_destroy(c->pool);
    free(c->k_cache);
    free(c->v_cache);
    free(c->seqs);
    free(c->x);
    free(c->xn);
    free(c->q); /* c->attn is the same memory */
    free(c->k);
    free(c->v);
    free(c->gate);
    free(c->up);
    for (int i = 0; i < 3; i++)
        free(c->act[i]);
    free(c->rope_cos);
    free(c->rope_sin);
    free(c->attn_scratch);
    free(c->attn_order);
    free(c->attn_items);
    free(c->tok_pos);
    free(c->tok_seq);
    free(c->logit_index);
    free(c->logits);
    lora_state_free(c->lora);
    free(c);
}

const roj_model *roj_context_model(const roj_context *c) { return c->model; }
int32_t roj_context_n_ctx(const roj_context *c) { return c->n_ctx; }
int32_t roj_context_n_seq(const roj_context *c) { return c->n_seq; }
int32_t roj_context_n_batch(const roj_context *c) { return c->n_batch; }
int32_t roj_context_n_ubatch(const roj_context *c) { return c->n_ubatch; }

void roj_context_set_abort(roj_context *c, roj_abort_fn fn, void *user_data)
{
    c->abort_fn = fn;
    c->abort_data = user_data;
}

roj_status roj_context_set_threads(roj_context *c, int32_t n_threads)
{
    roj_pool *pool;
    if (n_threads == pool_size(c->pool))
        return ROJ_OK;
    roj_status st = pool_create(n_threads, &pool);
    if (st != ROJ_OK)
        return st;
    void *scratch = malloc((size_t)n_threads * c->attn_scratch_stride);
    if (!scratch) {
        pool_destroy(pool);
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    }
    pool_destroy(c->pool);
    free(c->attn_scratch);
    c->pool = pool;
    c->attn_scratch = scratch;
    return ROJ_OK;
}

static roj_status ensure_logits(roj_context *c, int32_t n)
{
    if (n <= c->n_logits_cap)
        return ROJ_OK;
    size_t bytes = (size_t)n * c->model->hp.n_vocab * sizeof(float);
    float *logits = realloc(c->logits, bytes);
    if (!logits)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for %d logit rows",
                         n);
    c->logits = logits;
    c->n_logits_cap = n;
    return ROJ_OK;
}

/* Checks the whole batch before anything changes, so a rejected batch
 * leaves the cache as it was. */
static roj_status check_batch(roj_context *c, const roj_batch *b)
{
    const int32_t n_vocab = c->model->hp.n_vocab;
    if (!b || b->n_tokens <= 0 || !b->tokens)
        return roj_error(ROJ_ERR_INVALID_ARG, "empty batch");
    if (b->n_tokens > c->n_batch)
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "batch of %d tokens exceeds the context's batch "
                         "size %d", b->n_tokens, c->n_batch);
    int32_t *grow = calloc((size_t)c->n_seq, sizeof *grow);
    if (!grow)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    roj_status st = ROJ_OK;
    for (int32_t i = 0; i < b->n_tokens && st == ROJ_OK; i++) {
        int32_t seq = b->seq ? b->seq[i] : 0;
        if (b->tokens[i] < 0 || b->tokens[i] >= n_vocab)
            st = roj_error(ROJ_ERR_INVALID_ARG,
                           "token id %d at batch index %d is outside the "
                           "vocabulary (0 to %d)", b->tokens[i], i,
                           n_vocab - 1);
        else if (seq < 0 || seq >= c->n_seq)
            st = roj_error(ROJ_ERR_INVALID_ARG,
                           "sequence %d at batch index %d is outside 0 to "
                           "%d", seq, i, c->n_seq - 1);
        else {
            c->tok_seq[i] = seq;
            c->tok_pos[i] = c->seqs[seq].len + grow[seq]++;
        }
    }
    for (int32_t s = 0; s < c->n_seq && st == ROJ_OK; s++)
        if (c->seqs[s].len + grow[s] > c->n_ctx)
            st = roj_error(ROJ_ERR_CONTEXT_FULL,
                           "sequence %d would need %d positions (%d cached "
                           "+ %d new) but the context holds %d; shorten the "
                           "prompt or use a larger context size", s,
                           c->seqs[s].len + grow[s], c->seqs[s].len, grow[s],
                           c->n_ctx);
    free(grow);
    return st;
}

roj_status roj_decode(roj_context *c, const roj_batch *b)
{
    roj_status st = check_batch(c, b);
    if (st != ROJ_OK)
        return st;

    int32_t n_out = 0;
    for (int32_t i = 0; i < b->n_tokens; i++) {
        int want = b->logits ? b->logits[i] : i == b->n_tokens - 1;
        c->logit_index[i] = want ? n_out++ : -1;
    }
    if ((st = ensure_logits(c, n_out)) != ROJ_OK)
        return st;
    int32_t *rows = malloc((size_t)(n_out ? n_out : 1) * sizeof *rows);
    if (!rows)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    for (int32_t i = 0, j = 0; i < b->n_tokens; i++)
        if (c->logit_index[i] >= 0)
            rows[j++] = i;

    /* Micro-batches run one after another. Each reads the K and V of the
     * earlier ones from the cache, at the positions check_batch set, so
     * the split changes no value. The sequence lengths grow only after
     * the last micro-batch succeeds. */
    int32_t *all_pos = c->tok_pos, *all_seq = c->tok_seq;
    float *all_logits = c->logits;
    const size_t n_vocab = (size_t)c->model->hp.n_vocab;
    int32_t done = 0;
    for (int32_t first = 0; first < b->n_tokens && st == ROJ_OK;
         first += c->n_ubatch) {
        int32_t n = b->n_tokens - first;
        if (n > c->n_ubatch)
            n = c->n_ubatch;
        int32_t k = 0;
        while (done + k < n_out && rows[done + k] < first + n) {
            rows[done + k] -= first;
            k++;
        }
        c->tok_pos = all_pos + first;
        c->tok_seq = all_seq + first;
        c->logits = all_logits + (size_t)done * n_vocab;
        st = model_forward(c, b->tokens + first, n, rows + done, k);
        done += k;
    }
    c->tok_pos = all_pos;
    c->tok_seq = all_seq;
    c->logits = all_logits;
    free(rows);
    if (st != ROJ_OK) {
        c->n_logits = 0;
        return st;
    }
    for (int32_t i = 0; i < b->n_tokens; i++)
        c->seqs[c->tok_seq[i]].len++;
    c->n_logits = b->n_tokens;
    c->last_logit = n_out > 0 ? n_out - 1 : -1;
    return ROJ_OK;
}

const float *roj_get_logits(roj_context *c, int32_t i)
{
    int32_t row;
    if (i == -1) {
        row = c->last_logit;
    } else {
        if (i < 0 || i >= c->n_logits)
            return NULL;
        row = c->logit_index[i];
    }
    if (row < 0)
        return NULL;
    return c->logits + (size_t)row * c->model->hp.n_vocab;
}

int32_t roj_seq_len(const roj_context *c, int32_t seq)
{
    if (seq < 0 || seq >= c->n_seq)
        return -1;
    return c->seqs[seq].len;
}

roj_status roj_seq_truncate(roj_context *c, int32_t seq, int32_t len)
{
    if (seq < 0 || seq >= c->n_seq)
        return roj_error(ROJ_ERR_INVALID_ARG, "sequence %d is outside 0 to "
                         "%d", seq, c->n_seq - 1);
    if (len < 0)
        return roj_error(ROJ_ERR_INVALID_ARG, "sequence %d: length %d is "
                         "negative", seq, len);
    if (len < c->seqs[seq].len)
        c->seqs[seq].len = len;
    return ROJ_OK;
}

roj_status roj_seq_copy(roj_context *c, int32_t src, int32_t dst,
                        int32_t len)
{
    const hparams *hp = &c->model->hp;
    if (src < 0 || src >= c->n_seq || dst < 0 || dst >= c->n_seq)
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "sequences %d and %d must be in 0 to %d", src, dst,
                         c->n_seq - 1);
    if (len < 0 || len > c->seqs[src].len)
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "cannot copy %d positions of sequence %d, which "
                         "holds %d", len, src, c->seqs[src].len);
    if (src == dst) {
        c->seqs[dst].len = len;
        return ROJ_OK;
    }
    const size_t hd = (size_t)hp->head_dim;
    for (int il = 0; il < hp->n_layer; il++)
        for (int g = 0; g < hp->n_head_kv; g++) {
            size_t from = attn_k_offset(c, il, src, g);
            size_t to = attn_k_offset(c, il, dst, g);
            memcpy(c->k_cache + to, c->k_cache + from,
                   (size_t)len * hd * sizeof(uint16_t));
            for (size_t d = 0; d < hd; d++)
                memcpy(c->v_cache + to + d * c->n_ctx,
                       c->v_cache + from + d * c->n_ctx,
                       (size_t)len * sizeof(uint16_t));
        }
    c->seqs[dst].len = len;
    return ROJ_OK;
}
