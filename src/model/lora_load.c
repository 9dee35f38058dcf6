/* LoRA adapters: which base weights they may change, and loading an
 * adapter GGUF onto a base model with every name and shape checked. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "model/lora.h"
#include "quant/quant.h"

static const char *const layer_suffixes[LORA_LAYER_KINDS] = {
    [LORA_Q] = "attn_q.weight",         [LORA_K] = "attn_k.weight",
    [LORA_V] = "attn_v.weight",         [LORA_O] = "attn_output.weight",
    [LORA_GATE] = "ffn_gate.weight",    [LORA_UP] = "ffn_up.weight",
    [LORA_DOWN] = "ffn_down.weight",
};

int32_t lora_slot_embd(const roj_model *m)
{
    return m->hp.n_layer * LORA_LAYER_KINDS;
}

int32_t lora_slot_output(const roj_model *m) { return lora_slot_embd(m) + 1; }

int32_t lora_n_slots(const roj_model *m) { return lora_slot_embd(m) + 2; }

static const weight *layer_weight(const layer *l, int kind)
{
    switch (kind) {
    case LORA_Q: return &l->wq;
    case LORA_K: return &l->wk;
    case LORA_V: return &l->wv;
    case LORA_O: return &l->wo;
    case LORA_GATE: return &l->w_gate;
    case LORA_UP: return &l->w_up;
    default: return &l->w_down;
    }
}

const weight *lora_find_weight(const roj_model *m, const char *name,
                               int32_t *slot)
{
    if (!strcmp(name, "token_embd.weight")) {
        *slot = lora_slot_embd(m);
        return &m->token_embd;
    }
    if (!strcmp(name, "output.weight")) {
        /* A tied model has no output.weight tensor to adapt. */
        if (m->output.data == m->token_embd.data)
            return NULL;
        *slot = lora_slot_output(m);
        return &m->output;
    }
    if (strncmp(name, "blk.", 4) != 0)
        return NULL;
    char *end;
    long il = strtol(name + 4, &end, 10);
    if (end == name + 4 || *end != '.' || il < 0 || il >= m->hp.n_layer)
        return NULL;
    for (int kind = 0; kind < LORA_LAYER_KINDS; kind++) {
        if (!strcmp(end + 1, layer_suffixes[kind])) {
            char canonical[64];
            snprintf(canonical, sizeof canonical, "blk.%ld.%s", il,
                     layer_suffixes[kind]);
            if (strcmp(canonical, name) != 0)
                return NULL; /* "blk.01...": not the base's spelling */
            *slot = (int32_t)il * LORA_LAYER_KINDS + kind;
            return layer_weight(&m->layers[il], kind);
        }
    }
    return NULL;
}

float lora_pair_scale(const roj_lora *l, const lora_pair *p, float user_scale)
{
    if (l->alpha == 0.0f)
        return user_scale;
    return user_scale * l->alpha / (float)p->rank;
}

const lora_pair *lora_find_pair(const roj_lora *l, const char *name)
{
    for (size_t i = 0; i < l->n_pairs; i++)
        if (!strcmp(l->pairs[i].name, name))
            return &l->pairs[i];
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Reading */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !memcmp(s + n - k, suffix, k);
}

/* Checks general.type, adapter.type and general.architecture. */
static roj_status check_header(const gguf_file *f, const roj_model *base,
                               float *alpha)
{
    const char *value = NULL;
    roj_status st = gguf_get_str(f, "general.type", &value, NULL);
    if (st == ROJ_ERR_NOT_FOUND)
        return roj_error(ROJ_ERR_FORMAT, "not a LoRA adapter: metadata "
                         "general.type is missing (expected \"adapter\"; "
                         "is this a model file?)");
    if (st != ROJ_OK)
        return st;
    if (strcmp(value, "adapter") != 0)
        return roj_error(ROJ_ERR_FORMAT, "not a LoRA adapter: general.type "
                         "is \"%s\", expected \"adapter\"", value);
    st = gguf_get_str(f, "adapter.type", &value, NULL);
    if (st == ROJ_ERR_NOT_FOUND)
        return roj_error(ROJ_ERR_FORMAT, "not a LoRA adapter: metadata "
                         "adapter.type is missing (expected \"lora\")");
    if (st != ROJ_OK)
        return st;
    if (strcmp(value, "lora") != 0)
        return roj_error(ROJ_ERR_UNSUPPORTED, "adapter.type is \"%s\"; "
                         "only \"lora\" adapters are supported", value);
    st = gguf_get_str(f, "general.architecture", &value, NULL);
    if (st == ROJ_ERR_NOT_FOUND)
        return roj_error(ROJ_ERR_FORMAT, "metadata general.architecture "
                         "is missing");
    if (st != ROJ_OK)
        return st;
    if (strcmp(value, roj_model_arch(base)) != 0)
        return roj_error(ROJ_ERR_INVALID_ARG, "the adapter is for "
                         "architecture \"%s\" but the base model %s is "
                         "\"%s\"", value, roj_model_name(base),
                         roj_model_arch(base));

    /* A missing alpha means 0, which llama.cpp treats as "no alpha / rank
     * factor". */
    *alpha = 0.0f;
    st = gguf_get_f32(f, "adapter.lora.alpha", alpha);
    if (st != ROJ_OK && st != ROJ_ERR_NOT_FOUND)
        return st;
    if (!isfinite(*alpha))
        return roj_error(ROJ_ERR_FORMAT, "adapter.lora.alpha is not "
                         "finite");
    return ROJ_OK;
}

/* Formats a tensor's shape as "[ne0, ne1, ...]" into buf. */
static const char *shape_text(const gguf_tensor *t, char *buf, size_t cap)
{
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (uint32_t d = 0; d < t->n_dims && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%lld",
                                 d ? ", " : "", (long long)t->ne[d]);
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
    return buf;
}

/* Returns whether t is 2-D with ne = [ne0, ne1] (ne1 < 0: any). */
static bool shape_is(const gguf_tensor *t, int64_t ne0, int64_t ne1)
{
    for (uint32_t d = 2; d < t->n_dims; d++)
        if (t->ne[d] != 1)
            return false;
    return t->n_dims >= 2 && t->ne[0] == ne0 && (ne1 < 0 || t->ne[1] == ne1);
}

/* Dequantizes all of t into a new (rows, ne[0]) float array. */
static roj_status read_floats(const gguf_tensor *t, float **out)
{
    *out = NULL;
    if (!quant_can_dequantize(t->type) ||
        t->ne[0] % qtype_info(t->type)->block_size != 0)
        return roj_error(ROJ_ERR_UNSUPPORTED, "tensor %s has type %s, "
                         "which roj cannot read (use F32 or F16)", t->name,
                         qtype_name(t->type));
    float *v = malloc(t->n_elements * sizeof *v);
    if (!v)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for tensor %s",
                         t->name);
    roj_status st = quant_dequantize_tensor(
        t->type, t->data, v, (int64_t)(t->n_elements / t->ne[0]), t->ne[0],
        NULL);
    if (st != ROJ_OK) {
        free(v);
        return st;
    }
    *out = v;
    return ROJ_OK;
}

/* Returns a new (cols, rows) array with the transpose of m (rows, cols). */
static float *transpose(const float *m, int64_t rows, int64_t cols)
{
    float *t = malloc((size_t)(rows * cols) * sizeof *t);
    if (!t)
        return NULL;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            t[c * rows + r] = m[r * cols + c];
    return t;
}

/* Checks the shapes of one pair against base weight w. */
static roj_status check_pair_shapes(const gguf_tensor *base_t, bool embd,
                                    const gguf_tensor *ta,
                                    const gguf_tensor *tb)
{
    char sa[64], sb[64], sw[64];
    const int64_t n_in = base_t->ne[0], n_out = base_t->ne[1];
    const gguf_tensor *bad = NULL;
    char want[96];

    if (embd) {
        /* lora_a [rank, n_vocab], lora_b [rank, n_embd]. */
        if (!shape_is(ta, ta->ne[0], n_out) || ta->ne[0] < 1) {
            bad = ta;
            snprintf(want, sizeof want, "[rank, %lld]", (long long)n_out);
        } else if (!shape_is(tb, ta->ne[0], n_in)) {
            bad = tb;
            snprintf(want, sizeof want, "[%lld, %lld]",
                     (long long)ta->ne[0], (long long)n_in);
        }
    } else if (!shape_is(ta, n_in, -1) || ta->ne[1] < 1) {
        bad = ta;
        snprintf(want, sizeof want, "[%lld, rank]", (long long)n_in);
    } else if (!shape_is(tb, ta->ne[1], n_out)) {
        bad = tb;
        snprintf(want, sizeof want, "[%lld, %lld]", (long long)ta->ne[1],
                 (long long)n_out);
    }
    if (!bad)
        return ROJ_OK;
    return roj_error(ROJ_ERR_INVALID_ARG,
                     "tensor %s has shape %s but the base tensor %s has "
                     "shape %s, so it must be %s (%s has shape %s)",
                     bad->name, shape_text(bad, sb, sizeof sb), base_t->name,
                     shape_text(base_t, sw, sizeof sw), want,
                     bad == ta ? tb->name : ta->name,
                     shape_text(bad == ta ? tb : ta, sa, sizeof sa));
}

/* Loads the pair of base weight name from lora_a tensor ta. */
static roj_status load_pair(roj_lora *l, const gguf_file *f,
                            const gguf_tensor *ta, const char *name,
                            lora_pair *p)
{
    const roj_model *m = l->base;
    char b_name[256];
    int32_t slot;
    float *raw_a = NULL, *raw_b = NULL;
    roj_status st;

    if (snprintf(b_name, sizeof b_name, "%s.lora_b", name) >=
        (int)sizeof b_name)
        return roj_error(ROJ_ERR_FORMAT, "tensor name %s is too long",
                         ta->name);
    const gguf_tensor *tb = gguf_find_tensor(f, b_name);
    if (!tb)
        return roj_error(ROJ_ERR_FORMAT, "tensor %s has no matching %s",
                         ta->name, b_name);
    const gguf_tensor *base_t = gguf_find_tensor(m->file, name);
    if (!base_t)
        return roj_error(ROJ_ERR_INVALID_ARG, "tensor %s: the base model %s "
                         "has no tensor %s (wrong base model?)", ta->name,
                         roj_model_name(m), name);
    const weight *w = lora_find_weight(m, name, &slot);
    if (!w)
        return roj_error(ROJ_ERR_UNSUPPORTED, "tensor %s: %s is not a "
                         "weight matrix that roj applies adapters to "
                         "(attention q, k, v, output; ffn gate, up, down; "
                         "output; token_embd)", ta->name, name);
    const bool embd = slot == lora_slot_embd(m);
    if ((st = check_pair_shapes(base_t, embd, ta, tb)) != ROJ_OK)
        return st;

    p->slot = slot;
    p->n_in = w->n_in;
    p->n_out = w->n_out;
    p->rank = embd ? ta->ne[0] : ta->ne[1];
    if (!(p->name = strdup(name)))
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    if ((st = read_floats(ta, &raw_a)) != ROJ_OK ||
        (st = read_floats(tb, &raw_b)) != ROJ_OK)
        goto cleanup;
    if (embd) {
        /* raw_a is B (n_vocab, rank), raw_b is A^T (n_embd, rank). */
        p->a = transpose(raw_b, p->n_in, p->rank);
        p->bt = transpose(raw_a, p->n_out, p->rank);
    } else {
        /* raw_a is A (rank, n_in), raw_b is B (n_out, rank). */
        p->a = raw_a;
        raw_a = NULL;
        p->bt = transpose(raw_b, p->n_out, p->rank);
    }
    if (!p->a || !p->bt)
        st = roj_error(ROJ_ERR_NOMEM, "out of memory for tensor %s",
                       ta->name);

cleanup:
    free(raw_a);
    free(raw_b);
    return st;
}

/* Pairs every .lora_a with its .lora_b and rejects unpaired and unknown
 * tensors. */
static roj_status load_pairs(roj_lora *l, const gguf_file *f)
{
    const int64_t n = gguf_n_tensors(f);
    roj_status st;

    l->pairs = calloc((size_t)(n > 0 ? n : 1), sizeof *l->pairs);
    if (!l->pairs)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[256];
        size_t len = strlen(t->name);

        if (ends_with(t->name, ".lora_b")) {
            snprintf(name, sizeof name, "%.*s.lora_a", (int)(len - 7),
                     t->name);
            if (!gguf_find_tensor(f, name))
                return roj_error(ROJ_ERR_FORMAT, "tensor %s has no "
                                 "matching %s", t->name, name);
            continue;
        }
        if (ends_with(t->name, "_norm.weight")) {
            /* llama.cpp ignores norm vectors in adapters as well. */
            log_warn("LoRA adapter %s: ignoring tensor %s (norm vectors "
                     "are not adapted)", l->path, t->name);
            continue;
        }
        if (!ends_with(t->name, ".lora_a"))
            return roj_error(ROJ_ERR_FORMAT, "tensor %s: the name must end "
                             "in .lora_a or .lora_b", t->name);
        if (len - 7 >= sizeof name)
            return roj_error(ROJ_ERR_FORMAT, "tensor name %s is too long",
                             t->name);
        snprintf(name, sizeof name, "%.*s", (int)(len - 7), t->name);
        if ((st = load_pair(l, f, t, name, &l->pairs[l->n_pairs++])) !=
            ROJ_OK)
            return st;
    }
    if (l->n_pairs == 0)
        return roj_error(ROJ_ERR_FORMAT, "the adapter has no .lora_a / "
                         ".lora_b tensor pairs");
    return ROJ_OK;
}

roj_status roj_lora_open(const roj_model *base, const char *path,
                         roj_lora **out)
{
    gguf_file *f = NULL;
    roj_lora *l = NULL;
    roj_status st;

    *out = NULL;
    l = calloc(1, sizeof *l);
    if (!l || !(l->path = strdup(path))) {
        free(l);
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    }
    l->base = base;
    if ((st = gguf_open(path, &f)) != ROJ_OK)
        goto fail;
    if ((st = check_header(f, base, &l->alpha)) != ROJ_OK ||
        (st = load_pairs(l, f)) != ROJ_OK) {
        roj_error_wrap(st, "%s", path);
        goto fail;
    }
    gguf_close(f);
    log_info("loaded LoRA adapter %s: %zu tensors, alpha %g", path,
             l->n_pairs, (double)l->alpha);
    *out = l;
    return ROJ_OK;

fail:
    gguf_close(f);
    roj_lora_free(l);
    return st;
}

void roj_lora_free(roj_lora *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n_pairs; i++) {
        free(l->pairs[i].name);
        free(l->pairs[i].a);
        free(l->pairs[i].bt);
    }
    free(l->pairs);
    free(l->path);
    free(l);
}

float roj_lora_alpha(const roj_lora *l) { return l->alpha; }

size_t roj_lora_n_tensors(const roj_lora *l) { return l->n_pairs; }
