/* Model loading: hyperparameters from metadata, weights by tensor name,
 * with every shape and type checked before the model is usable. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "kernels/kernels.h"
#include "model/model_internal.h"
#include "tokenizer/vocab.h"

#define SUPPORTED_ARCHS "llama, qwen2"

static char *copy_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy)
        memcpy(copy, s, n);
    return copy;
}

/* Reads "<arch>.<suffix>" as u32 into *out; a missing key keeps *out when
 * optional, else fails naming the key. */
static roj_status read_arch_u32(const gguf_file *f, const char *arch,
                                const char *suffix, int optional,
                                int32_t *out)
{
    char key[256];
    uint32_t value;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    roj_status st = gguf_get_u32(f, key, &value);
    if (st == ROJ_ERR_NOT_FOUND && optional)
        return ROJ_OK;
    if (st != ROJ_OK) {
        if (st == ROJ_ERR_NOT_FOUND)
            return roj_error(ROJ_ERR_FORMAT,
                             "required metadata key %s is missing", key);
        return st;
    }
    if (value > INT32_MAX)
        return roj_error(ROJ_ERR_FORMAT, "metadata %s = %u is too large",
                         key, value);
    *out = (int32_t)value;
    return ROJ_OK;
}

static roj_status read_arch_f32(const gguf_file *f, const char *arch,
                                const char *suffix, float *out)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    roj_status st = gguf_get_f32(f, key, out);
    if (st == ROJ_ERR_NOT_FOUND)
        return ROJ_OK;
    if (st == ROJ_OK && !isfinite(*out))
        return roj_error(ROJ_ERR_FORMAT, "metadata %s is not finite", key);
    return st;
}

static roj_status read_rope_scaling(const gguf_file *f, const char *arch,
                                    hparams *hp)
{
    char key[256];
    const char *type = NULL;
    float factor = 0.0f;

    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    roj_status st = gguf_get_str(f, key, &type, NULL);
    if (st != ROJ_OK && st != ROJ_ERR_NOT_FOUND)
        return st;
    if (read_arch_f32(f, arch, "rope.scaling.factor", &factor) != ROJ_OK)
        return ROJ_ERR_FORMAT;
    if (type == NULL || !strcmp(type, "none")) {
        float freq_scale = 1.0f;
        if (read_arch_f32(f, arch, "rope.freq_scale", &freq_scale) != ROJ_OK)
            return ROJ_ERR_FORMAT;
        hp->rope_freq_scale = freq_scale > 0.0f ? freq_scale : 1.0f;
        return ROJ_OK;
    }
    if (!strcmp(type, "linear")) {
        hp->rope_freq_scale = factor > 0.0f ? 1.0f / factor : 1.0f;
        return ROJ_OK;
    }
    return roj_error(ROJ_ERR_UNSUPPORTED,
                     "metadata %s = \"%s\": only none and linear RoPE "
                     "scaling are supported", key, type);
}

static roj_status read_hparams(roj_model *m)
{
    const gguf_file *f = m->file;
    const char *arch = m->arch_name;
    hparams *hp = &m->hp;
    roj_status st;

    memset(hp, 0, sizeof *hp);
    hp->rope_base = 10000.0f;
    hp->rope_freq_scale = 1.0f;
    hp->rms_eps = 1e-5f;
    hp->n_ctx_train = 2048;
    hp->rope_kind = m->arch == ARCH_QWEN2 ? ROPE_NEOX : ROPE_NORMAL;

    if ((st = read_arch_u32(f, arch, "embedding_length", 0, &hp->n_embd)) ||
        (st = read_arch_u32(f, arch, "block_count", 0, &hp->n_layer)) ||
        (st = read_arch_u32(f, arch, "feed_forward_length", 0, &hp->n_ff)) ||
        (st = read_arch_u32(f, arch, "attention.head_count", 0,
                            &hp->n_head)) ||
        (st = read_arch_u32(f, arch, "context_length", 1,
                            &hp->n_ctx_train)))
        return st;
    hp->n_head_kv = hp->n_head;
    if ((st = read_arch_u32(f, arch, "attention.head_count_kv", 1,
                            &hp->n_head_kv)))
        return st;
    if (hp->n_embd <= 0 || hp->n_layer <= 0 || hp->n_ff <= 0 ||
        hp->n_head <= 0 || hp->n_head_kv <= 0)
        return roj_error(ROJ_ERR_FORMAT,
                         "%s hyperparameters must be positive: n_embd %d, "
                         "n_layer %d, n_ff %d, n_head %d, n_head_kv %d",
                         arch, hp->n_embd, hp->n_layer, hp->n_ff, hp->n_head,
                         hp->n_head_kv);
    if (hp->n_layer > 1024 || hp->n_head > 1024)
        return roj_error(ROJ_ERR_FORMAT,
                         "%s.block_count %d or head_count %d is implausible",
                         arch, hp->n_layer, hp->n_head);
    if (hp->n_embd % hp->n_head != 0 || hp->n_head % hp->n_head_kv != 0)
        return roj_error(ROJ_ERR_FORMAT,
                         "n_embd %d must be a multiple of head_count %d, "
                         "and head_count of head_count_kv %d",
                         hp->n_embd, hp->n_head, hp->n_head_kv);
    hp->head_dim = hp->n_embd / hp->n_head;
    if ((st = read_arch_u32(f, arch, "attention.key_length", 1,
                            &hp->head_dim)))
        return st;
    hp->rope_dim = hp->head_dim;
    if ((st = read_arch_u32(f, arch, "rope.dimension_count", 1,
                            &hp->rope_dim)))
        return st;
    if (hp->rope_dim <= 0 || hp->rope_dim > hp->head_dim ||
        hp->rope_dim % 2 != 0)
        return roj_error(ROJ_ERR_FORMAT,
                         "%s.rope.dimension_count %d must be even and at "
                         "most the head size %d", arch, hp->rope_dim,
                         hp->head_dim);
    if ((st = read_arch_f32(f, arch, "rope.freq_base", &hp->rope_base)) ||
        (st = read_arch_f32(f, arch, "attention.layer_norm_rms_epsilon",
                            &hp->rms_eps)))
        return st;
    if (hp->rope_base <= 0.0f || hp->rms_eps < 0.0f)
        return roj_error(ROJ_ERR_FORMAT,
                         "rope.freq_base %g and layer_norm_rms_epsilon %g "
                         "must be positive", hp->rope_base, hp->rms_eps);
    return read_rope_scaling(f, arch, hp);
}

/* Finds a tensor and checks it has exactly the dims given (ne1 = 0 means
 * a 1-D tensor). Missing tensors fail unless optional. */
static roj_status find_tensor(const roj_model *m, const char *name,
                              int64_t ne0, int64_t ne1, int optional,
                              const gguf_tensor **out)
{
    const gguf_tensor *t = gguf_find_tensor(m->file, name);
    *out = NULL;
    if (!t) {
        if (optional)
            return ROJ_OK;
        return roj_error(ROJ_ERR_FORMAT, "tensor %s is missing", name);
    }
    uint32_t want_dims = ne1 ? 2 : 1;
    int dims_ok = t->ne[0] == ne0 && (ne1 ? t->ne[1] == ne1 : 1);
    for (uint32_t d = want_dims; d < t->n_dims; d++)
        dims_ok = dims_ok && t->ne[d] == 1;
    if (!dims_ok)
        return roj_error(ROJ_ERR_FORMAT,
                         "tensor %s has shape [%lld, %lld], expected "
                         "[%lld, %lld]", name, (long long)t->ne[0],
                         (long long)(t->n_dims > 1 ? t->ne[1] : 1),
                         (long long)ne0, (long long)(ne1 ? ne1 : 1));
    if (!qtype_info(t->type)->supported)
        return roj_error(ROJ_ERR_UNSUPPORTED,
                         "tensor %s has type %s, which roj cannot run "
                         "(supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, "
                         "Q5_1, Q8_0, Q4_K, Q5_K, Q6_K)", name,
                         qtype_name(t->type));
    *out = t;
    return ROJ_OK;
}

static roj_status load_weight(const roj_model *m, const char *name,
                              int64_t n_in, int64_t n_out, int optional,
                              weight *w)
{
    const gguf_tensor *t;
    roj_status st = find_tensor(m, name, n_in, n_out, optional, &t);
    memset(w, 0, sizeof *w);
    if (st != ROJ_OK || !t)
        return st;
    if (kern_act_type(t->type) == ROJ_TYPE_COUNT)
        return roj_error(ROJ_ERR_UNSUPPORTED,
                         "tensor %s: no matrix kernel for type %s", name,
                         qtype_name(t->type));
    w->data = t->data;
    w->type = t->type;
    w->n_in = n_in;
    w->n_out = n_out;
    return ROJ_OK;
}

/* Loads a 1-D tensor of n elements as a new float array. */
static roj_status load_vector(const roj_model *m, const char *name, int64_t n,
                              int optional, float **out)
{
    const gguf_tensor *t;
    roj_status st = find_tensor(m, name, n, 0, optional, &t);
    *out = NULL;
    if (st != ROJ_OK || !t)
        return st;
    if (t->type != ROJ_TYPE_F32 && t->type != ROJ_TYPE_F16 &&
        t->type != ROJ_TYPE_BF16)
        return roj_error(ROJ_ERR_UNSUPPORTED,
                         "tensor %s has type %s; vectors must be F32, F16 "
                         "or BF16", name, qtype_name(t->type));
    float *v = malloc((size_t)n * sizeof *v);
    if (!v)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for tensor %s", name);
    kern_dequantize_row(t->type, t->data, v, n);
    *out = v;
    return ROJ_OK;
}

static roj_status load_layer(roj_model *m, int il)
{
    const hparams *hp = &m->hp;
    layer *l = &m->layers[il];
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim;
    const int64_t kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    const int bias = m->arch == ARCH_QWEN2;
    char name[128];
    roj_status st;

#define LAYER_NAME(suffix) (snprintf(name, sizeof name, "blk.%d.%s", il, \
                                     suffix), name)
    if ((st = load_vector(m, LAYER_NAME("attn_norm.weight"), hp->n_embd, 0,
                          &l->attn_norm)) ||
        (st = load_weight(m, LAYER_NAME("attn_q.weight"), hp->n_embd, q_dim,
                          0, &l->wq)) ||
        (st = load_weight(m, LAYER_NAME("attn_k.weight"), hp->n_embd,
                          kv_dim, 0, &l->wk)) ||
        (st = load_weight(m, LAYER_NAME("attn_v.weight"), hp->n_embd,
                          kv_dim, 0, &l->wv)) ||
        (st = load_weight(m, LAYER_NAME("attn_output.weight"), q_dim,
                          hp->n_embd, 0, &l->wo)) ||
        (st = load_vector(m, LAYER_NAME("attn_q.bias"), q_dim, !bias,
                          &l->bq)) ||
        (st = load_vector(m, LAYER_NAME("attn_k.bias"), kv_dim, !bias,
                          &l->bk)) ||
        (st = load_vector(m, LAYER_NAME("attn_v.bias"), kv_dim, !bias,
                          &l->bv)) ||
        (st = load_vector(m, LAYER_NAME("ffn_norm.weight"), hp->n_embd, 0,
                          &l->ffn_norm)) ||
        (st = load_weight(m, LAYER_NAME("ffn_gate.weight"), hp->n_embd,
                          hp->n_ff, 0, &l->w_gate)) ||
        (st = load_weight(m, LAYER_NAME("ffn_up.weight"), hp->n_embd,
                          hp->n_ff, 0, &l->w_up)) ||
        (st = load_weight(m, LAYER_NAME("ffn_down.weight"), hp->n_ff,
                          hp->n_embd, 0, &l->w_down)))
        return st;
#undef LAYER_NAME
    return ROJ_OK;
}

static roj_status load_tensors(roj_model *m)
{
    const hparams *hp = &m->hp;
    const gguf_tensor *embd = gguf_find_tensor(m->file, "token_embd.weight");
    roj_status st;

    if (!embd)
        return roj_error(ROJ_ERR_FORMAT, "tensor token_embd.weight is "
                         "missing");
    if (embd->n_dims < 2 || embd->ne[1] <= 0 || embd->ne[1] > INT32_MAX)
        return roj_error(ROJ_ERR_FORMAT, "tensor token_embd.weight must be "
                         "[n_embd, n_vocab]");
    m->hp.n_vocab = (int32_t)embd->ne[1];
    if ((st = load_weight(m, "token_embd.weight", hp->n_embd, hp->n_vocab, 0,
                          &m->token_embd)) ||
        (st = load_weight(m, "output.weight", hp->n_embd, hp->n_vocab, 1,
                          &m->output)) ||
        (st = load_vector(m, "output_norm.weight", hp->n_embd, 0,
                          &m->output_norm)) ||
        (st = load_vector(m, "rope_freqs.weight", hp->rope_dim / 2, 1,
                          &m->rope_freqs)))
        return st;
    if (!m->output.data)
        m->output = m->token_embd;

    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for %d layers",
                         hp->n_layer);
    for (int il = 0; il < hp->n_layer; il++)
        if ((st = load_layer(m, il)) != ROJ_OK)
            return st;

    for (int64_t i = 0; i < gguf_n_tensors(m->file); i++) {
        const gguf_tensor *t = gguf_tensor_at(m->file, i);
        m->n_params += t->n_elements;
        m->n_bytes += t->n_bytes;
    }
    return ROJ_OK;
}

static roj_status pick_arch(roj_model *m)
{
    const char *arch = NULL;
    roj_status st = gguf_get_str(m->file, "general.architecture", &arch,
                                 NULL);
    if (st == ROJ_ERR_NOT_FOUND)
        return roj_error(ROJ_ERR_FORMAT, "metadata general.architecture is "
                         "missing (supported: " SUPPORTED_ARCHS ")");
    if (st != ROJ_OK)
        return st;
    if (!strcmp(arch, "llama"))
        m->arch = ARCH_LLAMA;
    else if (!strcmp(arch, "qwen2"))
        m->arch = ARCH_QWEN2;
    else
        return roj_error(ROJ_ERR_UNSUPPORTED,
                         "architecture \"%s\" is not supported (supported: "
                         SUPPORTED_ARCHS ")", arch);
    m->arch_name = copy_string(arch);
    if (!m->arch_name)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    return ROJ_OK;
}

roj_status roj_model_open(const char *path, roj_model **out)
{
    roj_model *m = NULL;
    roj_status st;

    *out = NULL;
    kern_init();
    m = calloc(1, sizeof *m);
    if (!m)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    if ((st = gguf_open(path, &m->file)) != ROJ_OK)
        goto fail;
    if (gguf_n_tensors(m->file) == 0) {
        st = roj_error(ROJ_ERR_FORMAT, "the file has no tensors (a "
                       "vocabulary-only file?); token_embd.weight and the "
                       "layer weights are needed to run it");
        goto fail_wrap;
    }
    if ((st = pick_arch(m)) != ROJ_OK || (st = read_hparams(m)) != ROJ_OK ||
        (st = load_tensors(m)) != ROJ_OK)
        goto fail_wrap;
    if ((st = vocab_load_gguf(m->file, &m->vocab)) != ROJ_OK)
        goto fail_wrap;
    if (roj_vocab_n_tokens(m->vocab) > m->hp.n_vocab) {
        st = roj_error(ROJ_ERR_FORMAT,
                       "the tokenizer has %d tokens but token_embd.weight "
                       "only %d rows", roj_vocab_n_tokens(m->vocab),
                       m->hp.n_vocab);
        goto fail_wrap;
    }

    const char *name = NULL;
    if (gguf_get_str(m->file, "general.name", &name, NULL) != ROJ_OK) {
        const char *slash = strrchr(path, '/');
        name = slash ? slash + 1 : path;
    }
    m->name = copy_string(name);
    if (!m->name) {
        st = roj_error(ROJ_ERR_NOMEM, "out of memory");
        goto fail;
    }
    log_info("loaded %s: %s, %d layers, %d embd, %llu params, kernels %s",
             path, m->arch_name, m->hp.n_layer, m->hp.n_embd,
             (unsigned long long)m->n_params, kern_isa());
    *out = m;
    return ROJ_OK;

fail_wrap:
    roj_error_wrap(st, "%s", path);
fail:
    roj_model_free(m);
    return st;
}

void roj_model_free(roj_model *m)
{
    if (!m)
        return;
    if (m->layers) {
        for (int il = 0; il < m->hp.n_layer; il++) {
            layer *l = &m->layers[il];
            free(l->attn_norm);
            free(l->ffn_norm);
            free(l->bq);
            free(l->bk);
            free(l->bv);
        }
        free(m->layers);
    }
    free(m->output_norm);
    free(m->rope_freqs);
    roj_vocab_free(m->vocab);
    gguf_close(m->file);
    free(m->arch_name);
    free(m->name);
    free(m);
}

const roj_vocab *roj_model_vocab(const roj_model *m) { return m->vocab; }
const char *roj_model_arch(const roj_model *m) { return m->arch_name; }
const char *roj_model_name(const roj_model *m) { return m->name; }
int32_t roj_model_n_vocab(const roj_model *m) { return m->hp.n_vocab; }
int32_t roj_model_n_embd(const roj_model *m) { return m->hp.n_embd; }
int32_t roj_model_n_layer(const roj_model *m) { return m->hp.n_layer; }
int32_t roj_model_n_head(const roj_model *m) { return m->hp.n_head; }
int32_t roj_model_n_head_kv(const roj_model *m) { return m->hp.n_head_kv; }
int32_t roj_model_n_ctx_train(const roj_model *m) { return m->hp.n_ctx_train; }
uint64_t roj_model_n_params(const roj_model *m) { return m->n_params; }
uint64_t roj_model_size(const roj_model *m) { return m->n_bytes; }

const char *roj_model_meta_str(const roj_model *m, const char *key)
{
    const char *value = NULL;
    if (gguf_get_str(m->file, key, &value, NULL) != ROJ_OK)
        return NULL;
    return value;
}
