/* Moves training models in and out of GGUF: loading an opened roj_model
 * into float32 and writing the tensors and hyper-parameters back. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/model_internal.h"
#include "quant/fp16.h"
#include "quant/quant.h"
#include "train/tmodel.h"
#include "train/trng.h"

static roj_status load_weight(const weight *src, float *dst,
                              const char *name)
{
    if (!quant_can_dequantize(src->type))
        return roj_error(ROJ_ERR_UNSUPPORTED,
                         "tensor %s: type %s cannot be dequantized for "
                         "training", name, qtype_name(src->type));
    return quant_dequantize_tensor(src->type, src->data, dst, src->n_out,
                                   src->n_in, NULL);
}

static void copy_vec(float *dst, const float *src, int64_t n)
{
    if (src)
        memcpy(dst, src, (size_t)n * sizeof *dst);
}

static roj_status load_linear(tlinear *lin, const weight *src, trng *r,
                              int rank)
{
    roj_status st = load_weight(src, lin->w, lin->name);
    if (st || !lin->a)
        return st;
    /* LoRA: A ~ N(0, 1/rank) scaled like a Kaiming draw, B = 0, so the
     * adapted model starts equal to the base. */
    const float std = 1.0f / sqrtf((float)lin->n_in);
    for (int64_t i = 0; i < (int64_t)rank * lin->n_in; i++)
        lin->a[i] = std * trng_normal(r);
    memset(lin->b, 0, (size_t)(lin->n_out * rank) * sizeof(float));
    return ROJ_OK;
}

roj_status tmodel_from_model(const roj_model *model, int lora_rank,
                             float lora_alpha, unsigned lora_targets,
                             uint64_t seed, tmodel **out)
{
    const hparams *h = &model->hp;
    if (h->rope_dim != h->head_dim)
        return roj_error(ROJ_ERR_UNSUPPORTED,
                         "%s: partial RoPE (rope dimension %d of head "
                         "size %d) is not supported for training",
                         model->name, (int)h->rope_dim, (int)h->head_dim);
    tshape hp = {
        .n_vocab = h->n_vocab, .n_embd = h->n_embd, .n_layer = h->n_layer,
        .n_head = h->n_head, .n_head_kv = h->n_head_kv,
        .head_dim = h->head_dim, .n_ff = h->n_ff, .n_ctx = h->n_ctx_train,
        .rope_base = h->rope_base, .rope_freq_scale = h->rope_freq_scale,
        .rms_eps = h->rms_eps, .neox = h->rope_kind == ROPE_NEOX,
        .tied = model->output.data == model->token_embd.data,
        .qkv_bias = model->layers[0].bq != NULL,
    };
    if (model->rope_freqs)
        return roj_error(ROJ_ERR_UNSUPPORTED,
                         "%s: rope_freqs (Llama 3 RoPE scaling) is not "
                         "supported for training yet", model->name);
    tmodel *m;
    roj_status st = tmodel_alloc(&hp, lora_rank, lora_alpha, lora_targets,
                                 &m);
    if (st)
        return st;
    snprintf(m->arch, sizeof m->arch, "%s", model->arch_name);
    trng r;
    trng_seed(&r, seed);
    if ((st = load_weight(&model->token_embd, m->tok_embd,
                          "token_embd.weight")))
        goto fail;
    for (int i = 0; i < hp.n_layer; i++) {
        const layer *s = &model->layers[i];
        tlayer *d = &m->layers[i];
        copy_vec(d->attn_norm, s->attn_norm, hp.n_embd);
        copy_vec(d->ffn_norm, s->ffn_norm, hp.n_embd);
        if (hp.qkv_bias) {
            copy_vec(d->bq, s->bq, d->wq.n_out);
            copy_vec(d->bk, s->bk, d->wk.n_out);
            copy_vec(d->bv, s->bv, d->wv.n_out);
        }
        if ((st = load_linear(&d->wq, &s->wq, &r, lora_rank)) ||
            (st = load_linear(&d->wk, &s->wk, &r, lora_rank)) ||
            (st = load_linear(&d->wv, &s->wv, &r, lora_rank)) ||
            (st = load_linear(&d->wo, &s->wo, &r, lora_rank)) ||
            (st = load_linear(&d->gate, &s->w_gate, &r, lora_rank)) ||
            (st = load_linear(&d->up, &s->w_up, &r, lora_rank)) ||
            (st = load_linear(&d->down, &s->w_down, &r, lora_rank)))
            goto fail;
    }
    copy_vec(m->out_norm, model->output_norm, hp.n_embd);
    if (!hp.tied && (st = load_weight(&model->output, m->output.w,
                                      "output.weight")))
        goto fail;
    *out = m;
    return ROJ_OK;
fail:
    tmodel_free(m);
    return st;
}

static roj_status set_hparams(const tmodel *m, gguf_writer *w)
{
    const tshape *hp = &m->hp;
    char key[96];
    roj_status st = gguf_writer_set_str(w, "general.architecture", m->arch);
#define U32(k, v)                                                          \
    if (!st) {                                                             \
        snprintf(key, sizeof key, "%s." k, m->arch);                       \
        st = gguf_writer_set_u32(w, key, (uint32_t)(v));                   \
    }
#define F32(k, v)                                                          \
    if (!st) {                                                             \
        snprintf(key, sizeof key, "%s." k, m->arch);                       \
        st = gguf_writer_set_f32(w, key, (v));                             \
    }
    U32("vocab_size", hp->n_vocab);
    U32("context_length", hp->n_ctx);
    U32("embedding_length", hp->n_embd);
    U32("block_count", hp->n_layer);
    U32("feed_forward_length", hp->n_ff);
    U32("rope.dimension_count", hp->head_dim);
    U32("attention.head_count", hp->n_head);
    U32("attention.head_count_kv", hp->n_head_kv);
    U32("attention.key_length", hp->head_dim);
    U32("attention.value_length", hp->head_dim);
    F32("attention.layer_norm_rms_epsilon", hp->rms_eps);
    F32("rope.freq_base", hp->rope_base);
#undef U32
#undef F32
    if (!st && hp->rope_freq_scale != 1.0f) {
        snprintf(key, sizeof key, "%s.rope.scaling.type", m->arch);
        st = gguf_writer_set_str(w, key, "linear");
        snprintf(key, sizeof key, "%s.rope.scaling.factor", m->arch);
        if (!st)
            st = gguf_writer_set_f32(w, key, 1.0f / hp->rope_freq_scale);
    }
    return st;
}

roj_status tmodel_write_tensors(const tmodel *m, gguf_writer *w,
                                enum roj_type matrix_type, void **scratch)
{
    *scratch = NULL;
    if (m->lora_rank)
        return roj_error(ROJ_ERR_INTERNAL,
                         "a LoRA model is written as an adapter");
    if (matrix_type != ROJ_TYPE_F32 && matrix_type != ROJ_TYPE_F16)
        return roj_error(ROJ_ERR_UNSUPPORTED,
                         "training writes F32 or F16; quantize afterwards "
                         "with roj quantize");
    roj_status st = set_hparams(m, w);
    if (!st)
        st = gguf_writer_set_u32(w, "general.file_type",
                                 matrix_type == ROJ_TYPE_F16 ? 1 : 0);
    if (st)
        return st;
    uint16_t *half = NULL;
    if (matrix_type == ROJ_TYPE_F16) {
        half = malloc((size_t)m->n_params * sizeof *half);
        if (!half)
            return roj_error(ROJ_ERR_NOMEM, "out of memory for F16 output");
        *scratch = half;
    }
    for (int i = 0; i < m->n_tensors && !st; i++) {
        const ttensor *t = &m->tensors[i];
        const float *src = m->params + t->offset;
        const int64_t n = t->ne[0] * t->ne[1];
        if (t->n_dims == 2 && half) {
            uint16_t *dst = half + t->offset;
            for (int64_t j = 0; j < n; j++)
                dst[j] = fp32_to_fp16(src[j]);
            st = gguf_writer_add_tensor(w, t->name, ROJ_TYPE_F16, 2, t->ne,
                                        dst, (uint64_t)n * 2);
        } else {
            st = gguf_writer_add_tensor(w, t->name, ROJ_TYPE_F32,
                                        (uint32_t)t->n_dims, t->ne, src,
                                        (uint64_t)n * 4);
        }
    }
    return st;
}
