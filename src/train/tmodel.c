/* Layout, initialisation and loading of the float32 training model. */
#include "train/tmodel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "train/trng.h"

roj_status tshape_check(const tshape *hp)
{
    const struct { const char *name; int32_t v; } f[] = {
        {"n_vocab", hp->n_vocab}, {"n_embd", hp->n_embd},
        {"n_layer", hp->n_layer}, {"n_head", hp->n_head},
        {"n_head_kv", hp->n_head_kv}, {"head_dim", hp->head_dim},
        {"n_ff", hp->n_ff}, {"n_ctx", hp->n_ctx},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].v <= 0 || f[i].v > (1 << 24))
            return roj_error(ROJ_ERR_RANGE,
                             "model shape: %s = %d, must be 1 .. 16777216",
                             f[i].name, (int)f[i].v);
    if (hp->n_head % hp->n_head_kv)
        return roj_error(ROJ_ERR_RANGE,
                         "model shape: n_head %d is not a multiple of "
                         "n_head_kv %d", (int)hp->n_head, (int)hp->n_head_kv);
    if (hp->head_dim % 2 || hp->head_dim > 512)
        return roj_error(ROJ_ERR_RANGE,
                         "model shape: head_dim %d must be even and at "
                         "most 512", (int)hp->head_dim);
    if (!(hp->rms_eps > 0.0f) || !(hp->rope_base > 1.0f))
        return roj_error(ROJ_ERR_RANGE,
                         "model shape: rms_eps %g and rope_base %g must be "
                         "positive (rope_base above 1)",
                         (double)hp->rms_eps, (double)hp->rope_base);
    return ROJ_OK;
}

int64_t tshape_n_params(const tshape *hp)
{
    const int64_t d = hp->n_embd, hd = hp->head_dim;
    const int64_t dq = (int64_t)hp->n_head * hd;
    const int64_t dkv = (int64_t)hp->n_head_kv * hd;
    int64_t per_layer = 2 * d + d * dq * 2 + d * dkv * 2 +
                        3 * d * (int64_t)hp->n_ff;
    if (hp->qkv_bias)
        per_layer += dq + 2 * dkv;
    int64_t n = (int64_t)hp->n_vocab * d * (hp->tied ? 1 : 2) + d;
    return n + per_layer * hp->n_layer;
}

/* Builds the tensor tables in two passes: pass 0 counts, pass 1 (after the
 * arrays exist) fills names, offsets and pointers. */
typedef struct layout {
    tmodel *m;
    int pass;
    int64_t n_train, n_frozen;
    int i_train, i_frozen;
} layout;

static float *lay_add(layout *l, bool trainable, const char *name,
                      int64_t ne0, int64_t ne1, int n_dims, bool decay,
                      float **grad)
{
    int64_t *n = trainable ? &l->n_train : &l->n_frozen;
    int *idx = trainable ? &l->i_train : &l->i_frozen;
    float *p = NULL;
    if (l->pass == 1) {
        ttensor *t = trainable ? &l->m->tensors[*idx]
                               : &l->m->frozen_tensors[*idx];
        /* The names built here have at most about 40 bytes, so the bound
         * never cuts one. memcpy avoids snprintf's truncation warning. */
        size_t len = strlen(name);
        if (len >= sizeof t->name)
            len = sizeof t->name - 1;
        memcpy(t->name, name, len);
        t->name[len] = '\0';
        t->offset = *n;
        t->ne[0] = ne0;
        t->ne[1] = ne1;
        t->n_dims = n_dims;
        t->decay = decay;
        p = (trainable ? l->m->params : l->m->frozen) + *n;
        if (grad)
            *grad = trainable ? l->m->grads + *n : NULL;
    }
    *n += ne0 * ne1;
    (*idx)++;
    return p;
}

static void lay_linear(layout *l, tlinear *lin, const char *name,
                       int64_t n_in, int64_t n_out, bool lora)
{
    tmodel *m = l->m;
    const bool base_trainable = m->lora_rank == 0;
    lin->n_in = n_in;
    lin->n_out = n_out;
    lin->w = lay_add(l, base_trainable, name, n_in, n_out, 2, true,
                     &lin->gw);
    if (l->pass == 1)
        lin->name = (base_trainable ? m->tensors[l->i_train - 1].name
                                    : m->frozen_tensors[l->i_frozen - 1]
                                          .name);
    if (!lora) {
        lin->a = lin->b = lin->ga = lin->gb = NULL;
        return;
    }
    char buf[80];
    const int64_t r = m->lora_rank;
    snprintf(buf, sizeof buf, "%s.lora_a", name);
    lin->a = lay_add(l, true, buf, n_in, r, 2, false, &lin->ga);
    snprintf(buf, sizeof buf, "%s.lora_b", name);
    lin->b = lay_add(l, true, buf, r, n_out, 2, false, &lin->gb);
}

static void lay_model(layout *l)
{
    tmodel *m = l->m;
    const tshape *hp = &m->hp;
    const bool bt = m->lora_rank == 0;
    const int64_t d = hp->n_embd, hd = hp->head_dim;
    const int64_t dq = (int64_t)hp->n_head * hd;
    const int64_t dkv = (int64_t)hp->n_head_kv * hd;
    const unsigned lt = m->lora_rank ? m->lora_targets : 0;
    char b[64];

    m->tok_embd = lay_add(l, bt, "token_embd.weight", d, hp->n_vocab, 2,
                          true, &m->g_tok_embd);
    for (int i = 0; i < hp->n_layer; i++) {
        tlayer *y = &m->layers[i];
#define NAME(s) (snprintf(b, sizeof b, "blk.%d." s, i), b)
        y->attn_norm = lay_add(l, bt, NAME("attn_norm.weight"), d, 1, 1,
                               false, &y->g_attn_norm);
        lay_linear(l, &y->wq, NAME("attn_q.weight"), d, dq, lt & TLORA_Q);
        lay_linear(l, &y->wk, NAME("attn_k.weight"), d, dkv, lt & TLORA_K);
        lay_linear(l, &y->wv, NAME("attn_v.weight"), d, dkv, lt & TLORA_V);
        if (hp->qkv_bias) {
            y->bq = lay_add(l, bt, NAME("attn_q.bias"), dq, 1, 1, false,
                            &y->g_bq);
            y->bk = lay_add(l, bt, NAME("attn_k.bias"), dkv, 1, 1, false,
                            &y->g_bk);
            y->bv = lay_add(l, bt, NAME("attn_v.bias"), dkv, 1, 1, false,
                            &y->g_bv);
        }
        lay_linear(l, &y->wo, NAME("attn_output.weight"), dq, d,
                   lt & TLORA_O);
        y->ffn_norm = lay_add(l, bt, NAME("ffn_norm.weight"), d, 1, 1,
                              false, &y->g_ffn_norm);
        lay_linear(l, &y->gate, NAME("ffn_gate.weight"), d, hp->n_ff,
                   lt & TLORA_GATE);
        lay_linear(l, &y->up, NAME("ffn_up.weight"), d, hp->n_ff,
                   lt & TLORA_UP);
        lay_linear(l, &y->down, NAME("ffn_down.weight"), hp->n_ff, d,
                   lt & TLORA_DOWN);
#undef NAME
    }
    m->out_norm = lay_add(l, bt, "output_norm.weight", d, 1, 1, false,
                          &m->g_out_norm);
    if (hp->tied) {
        m->output.w = m->tok_embd;
        m->output.gw = m->g_tok_embd;
        m->output.n_in = d;
        m->output.n_out = hp->n_vocab;
        m->output.a = m->output.b = m->output.ga = m->output.gb = NULL;
        m->output.name = "token_embd.weight";
    } else {
        lay_linear(l, &m->output, "output.weight", d, hp->n_vocab, false);
    }
}

roj_status tmodel_alloc(const tshape *hp, int lora_rank,
                               float lora_alpha, unsigned targets,
                               tmodel **out)
{
    roj_status st = tshape_check(hp);
    if (st)
        return st;
    tmodel *m = calloc(1, sizeof *m);
    if (!m)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for the model");
    m->hp = *hp;
    snprintf(m->arch, sizeof m->arch, "%s", hp->qkv_bias ? "qwen2" : "llama");
    m->lora_rank = lora_rank;
    m->lora_alpha = lora_alpha;
    m->lora_targets = targets;
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    layout l = {.m = m};
    if (!m->layers)
        goto nomem;
    lay_model(&l);
    m->n_params = l.n_train;
    m->n_frozen = l.n_frozen;
    m->n_tensors = l.i_train;
    m->n_frozen_tensors = l.i_frozen;
    m->params = calloc((size_t)m->n_params, sizeof(float));
    m->grads = calloc((size_t)m->n_params, sizeof(float));
    m->tensors = calloc((size_t)m->n_tensors, sizeof *m->tensors);
    if (!m->params || !m->grads || !m->tensors)
        goto nomem;
    if (m->n_frozen) {
        m->frozen = calloc((size_t)m->n_frozen, sizeof(float));
        m->frozen_tensors = calloc((size_t)m->n_frozen_tensors,
                                   sizeof *m->frozen_tensors);
        if (!m->frozen || !m->frozen_tensors)
            goto nomem;
    }
    l = (layout){.m = m, .pass = 1};
    lay_model(&l);
    *out = m;
    return ROJ_OK;
nomem:
    tmodel_free(m);
    return roj_error(ROJ_ERR_NOMEM,
                     "out of memory for a model of %lld parameters",
                     (long long)tshape_n_params(hp));
}

void tmodel_free(tmodel *m)
{
    if (!m)
        return;
    free(m->params);
    free(m->grads);
    free(m->tensors);
    free(m->frozen);
    free(m->frozen_tensors);
    free(m->layers);
    free(m);
}

static void fill_normal(float *p, int64_t n, float std, trng *r)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = std * trng_normal(r);
}

static void fill_ones(float *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = 1.0f;
}

roj_status tmodel_init(const tshape *hp, uint64_t seed, tmodel **out)
{
    tmodel *m;
    roj_status st = tmodel_alloc(hp, 0, 0.0f, 0, &m);
    if (st)
        return st;
    trng r;
    trng_seed(&r, seed);
    const float std = 0.02f;
    const float proj = std / sqrtf(2.0f * (float)hp->n_layer);
    for (int i = 0; i < m->n_tensors; i++) {
        const ttensor *t = &m->tensors[i];
        float *p = m->params + t->offset;
        const int64_t n = t->ne[0] * t->ne[1];
        if (t->n_dims == 1) {
            if (strstr(t->name, "norm"))
                fill_ones(p, n);
            continue;   /* biases start at zero */
        }
        const bool is_proj = strstr(t->name, "attn_output") ||
                             strstr(t->name, "ffn_down");
        fill_normal(p, n, is_proj ? proj : std, &r);
    }
    *out = m;
    return ROJ_OK;
}
