#include "model/synth.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "gguf/gguf.h"
#include "quant/qtypes.h"
#include "tokenizer/vocab_builtin.h"

/* Value of synthetic.algorithm. It is part of the file, so changing it
 * changes every SHA-256 listed in synth.h. */
static const char algorithm_text[] =
    "splitmix64(seed ^ fnv1a64(tensor_name)); x = f32(sum of 4 16-bit "
    "lanes - 131070) * f32(0.02*sqrt(3)/65536); norms = 1";

static const synth_shape presets[] = {
    {"tiny", 2, 64, 4, 2, 128, 512, 32000, 10000.0f, 1e-5f, false,
     SYNTH_DEFAULT_SEED, NULL},
    {"smollm2-135m-shape", 30, 576, 9, 3, 1536, 2048, 50257, 100000.0f,
     1e-5f, true, SYNTH_DEFAULT_SEED, NULL},
    {"qwen-0.5b-shape", 24, 896, 14, 2, 4864, 32768, 50257, 1000000.0f,
     1e-6f, true, SYNTH_DEFAULT_SEED, NULL},
};

roj_status synth_preset(const char *name, synth_shape *out)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        if (strcmp(presets[i].name, name) == 0) {
            *out = presets[i];
            return ROJ_OK;
        }
    }
    return roj_error(ROJ_ERR_NOT_FOUND,
                     "unknown synthetic model preset '%s' (known: tiny, "
                     "smollm2-135m-shape, qwen-0.5b-shape)", name);
}

static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void synth_fill_tensor(float *out, uint64_t n, uint64_t seed,
                       const char *name)
{
    /* 0x350de3bd is (float)(0.02 * sqrt(3) / 65536): the sum of four
     * uniform 16-bit lanes has std 65536 / sqrt(3), so this gives 0.02. */
    const float scale = 5.285799602461339e-07f;
    uint64_t state = seed ^ fnv1a64(name);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t r = splitmix64(&state);
        int32_t sum = (int32_t)((r & 0xffff) + ((r >> 16) & 0xffff) +
                                ((r >> 32) & 0xffff) + (r >> 48));
        out[i] = (float)(sum - 131070) * scale;
    }
}

/* One tensor of the model in file order. */
struct synth_tensor {
    char name[64];
    uint32_t n_dims;
    int64_t ne[2];
};

static void add_tensor(struct synth_tensor *list, int *n, uint32_t n_dims,
                       int64_t ne0, int64_t ne1, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void add_tensor(struct synth_tensor *list, int *n, uint32_t n_dims,
                       int64_t ne0, int64_t ne1, const char *fmt, ...)
{
    struct synth_tensor *t = &list[(*n)++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    t->n_dims = n_dims;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
}

/* Lists the tensors in file order into list (room for 3 + 9 * n_layer)
 * and returns how many there are. */
static int synth_tensor_list(const synth_shape *s, uint32_t n_vocab,
                             struct synth_tensor *list)
{
    const int64_t head_dim = s->n_embd / s->n_head;
    const int64_t q_dim = head_dim * s->n_head;
    const int64_t kv_dim = head_dim * s->n_head_kv;
    const int64_t embd = s->n_embd, ff = s->n_ff;
    int n = 0;

    add_tensor(list, &n, 2, embd, n_vocab, "token_embd.weight");
    add_tensor(list, &n, 1, embd, 1, "output_norm.weight");
    if (!s->tied_output)
        add_tensor(list, &n, 2, embd, n_vocab, "output.weight");
    for (uint32_t i = 0; i < s->n_layer; i++) {
        add_tensor(list, &n, 1, embd, 1, "blk.%u.attn_norm.weight", i);
        add_tensor(list, &n, 2, embd, q_dim, "blk.%u.attn_q.weight", i);
        add_tensor(list, &n, 2, embd, kv_dim, "blk.%u.attn_k.weight", i);
        add_tensor(list, &n, 2, embd, kv_dim, "blk.%u.attn_v.weight", i);
        add_tensor(list, &n, 2, q_dim, embd, "blk.%u.attn_output.weight", i);
        add_tensor(list, &n, 1, embd, 1, "blk.%u.ffn_norm.weight", i);
        add_tensor(list, &n, 2, embd, ff, "blk.%u.ffn_gate.weight", i);
        add_tensor(list, &n, 2, ff, embd, "blk.%u.ffn_down.weight", i);
        add_tensor(list, &n, 2, embd, ff, "blk.%u.ffn_up.weight", i);
    }
    return n;
}

uint64_t synth_param_count(const synth_shape *shape, uint32_t n_vocab)
{
    struct synth_tensor *list =
        malloc(sizeof *list * (3 + 9 * (size_t)shape->n_layer));
    if (!list)
        return 0;
    uint64_t total = 0;
    int n = synth_tensor_list(shape, n_vocab, list);
    for (int i = 0; i < n; i++)
        total += (uint64_t)(list[i].ne[0] * list[i].ne[1]);
    free(list);
    return total;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static roj_status check_shape(const synth_shape *s)
{
    if (!s->name)
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "synthetic model: name must be set");
    if (s->n_layer == 0 || s->n_layer > 1000 || s->n_embd == 0 ||
        s->n_head == 0 || s->n_head_kv == 0 || s->n_ff == 0 ||
        s->n_embd % s->n_head != 0 || s->n_head % s->n_head_kv != 0)
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "synthetic model %s: invalid shape (n_layer %u, "
                         "n_embd %u, n_head %u, n_head_kv %u, n_ff %u)",
                         s->name, s->n_layer, s->n_embd, s->n_head,
                         s->n_head_kv, s->n_ff);
    return ROJ_OK;
}

/* Sets the metadata in file order, then copies tokenizer.* from vocab, or
 * sets the built-in vocabulary when vocab is NULL. */
static roj_status synth_set_metadata(gguf_writer *w, const synth_shape *s,
                                     const gguf_file *vocab, uint32_t n_vocab)
{
    char name[128];
    roj_status st = ROJ_OK;
    snprintf(name, sizeof name, "synthetic-%s", s->name);

    if ((st = gguf_writer_set_str(w, "general.architecture", "llama")) ||
        (st = gguf_writer_set_str(w, "general.name", name)) ||
        (st = gguf_writer_set_u32(w, "general.file_type", 0)) ||
        (st = gguf_writer_set_u32(w, "llama.vocab_size", n_vocab)) ||
        (st = gguf_writer_set_u32(w, "llama.context_length", s->n_ctx)) ||
        (st = gguf_writer_set_u32(w, "llama.embedding_length", s->n_embd)) ||
        (st = gguf_writer_set_u32(w, "llama.block_count", s->n_layer)) ||
        (st = gguf_writer_set_u32(w, "llama.feed_forward_length", s->n_ff)) ||
        (st = gguf_writer_set_u32(w, "llama.rope.dimension_count",
                                  s->n_embd / s->n_head)) ||
        (st = gguf_writer_set_u32(w, "llama.attention.head_count",
                                  s->n_head)) ||
        (st = gguf_writer_set_u32(w, "llama.attention.head_count_kv",
                                  s->n_head_kv)) ||
        (st = gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon",
                                  s->rms_eps)) ||
        (st = gguf_writer_set_f32(w, "llama.rope.freq_base",
                                  s->rope_freq_base)) ||
        (st = gguf_writer_set_u64(w, "synthetic.seed", s->seed)) ||
        (st = gguf_writer_set_f32(w, "synthetic.weight_std", 0.02f)) ||
        (st = gguf_writer_set_str(w, "synthetic.algorithm", algorithm_text)))
        return st;

    if (!vocab)
        return vocab_builtin_set(w, NULL);
    for (int64_t i = 0; i < gguf_n_kv(vocab); i++) {
        if (strncmp(gguf_kv_key(vocab, i), "tokenizer.", 10) != 0)
            continue;
        if ((st = gguf_writer_copy_kv(w, vocab, i)) != ROJ_OK)
            return st;
    }
    return ROJ_OK;
}

/* Reads the token count of the vocabulary and checks it against the
 * shape. */
static roj_status synth_vocab_size(const synth_shape *s, const gguf_file *vocab,
                                   uint32_t *n_vocab)
{
    int64_t key = gguf_find_key(vocab, "tokenizer.ggml.tokens");
    if (key < 0 || gguf_kv_type(vocab, key) != GGUF_TYPE_ARRAY)
        return roj_error(ROJ_ERR_FORMAT,
                         "%s: tokenizer.ggml.tokens is missing or not an "
                         "array", s->vocab_path);
    uint64_t n = gguf_kv_array_len(vocab, key);
    if (n == 0 || n > UINT32_MAX)
        return roj_error(ROJ_ERR_FORMAT, "%s: %llu tokens is not a valid "
                         "vocabulary size", s->vocab_path,
                         (unsigned long long)n);
    if (s->n_vocab != 0 && s->n_vocab != n)
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "%s has %llu tokens but shape %s expects %u",
                         s->vocab_path, (unsigned long long)n, s->name,
                         s->n_vocab);
    *n_vocab = (uint32_t)n;
    return ROJ_OK;
}

roj_status synth_write_model(const char *path, const synth_shape *shape)
{
    gguf_file *vocab = NULL;
    gguf_writer *writer = NULL;
    struct synth_tensor *list = NULL;
    float **data = NULL;
    uint32_t n_vocab = 0;
    int n_tensors = 0;
    roj_status st;

    if ((st = check_shape(shape)) != ROJ_OK)
        return st;
    if (shape->vocab_path == NULL) {
        n_vocab = vocab_builtin_n_tokens();
        if (shape->n_vocab != 0 && shape->n_vocab != n_vocab)
            return roj_error(ROJ_ERR_INVALID_ARG,
                             "the built-in vocabulary has %u tokens but "
                             "shape %s expects %u", n_vocab, shape->name,
                             shape->n_vocab);
    } else {
        if ((st = gguf_open(shape->vocab_path, &vocab)) != ROJ_OK)
            return st;
        if ((st = synth_vocab_size(shape, vocab, &n_vocab)) != ROJ_OK)
            goto close_vocab;
    }
    if ((st = gguf_writer_create(&writer)) != ROJ_OK)
        goto close_vocab;
    if ((st = synth_set_metadata(writer, shape, vocab, n_vocab)) != ROJ_OK)
        goto free_writer;

    /* Generate every tensor; the writer keeps pointers until it writes. */
    list = malloc(sizeof *list * (3 + 9 * (size_t)shape->n_layer));
    data = calloc(3 + 9 * (size_t)shape->n_layer, sizeof *data);
    if (!list || !data) {
        st = roj_error(ROJ_ERR_NOMEM, "%s: out of memory", path);
        goto free_data;
    }
    n_tensors = synth_tensor_list(shape, n_vocab, list);
    for (int i = 0; i < n_tensors; i++) {
        const struct synth_tensor *t = &list[i];
        uint64_t n = (uint64_t)(t->ne[0] * t->ne[1]);
        if (!(data[i] = malloc(n * sizeof(float)))) {
            st = roj_error(ROJ_ERR_NOMEM, "%s: out of memory for %s "
                           "(%llu floats)", path, t->name,
                           (unsigned long long)n);
            goto free_data;
        }
        if (ends_with(t->name, "norm.weight")) {
            for (uint64_t j = 0; j < n; j++)
                data[i][j] = 1.0f;
        } else {
            synth_fill_tensor(data[i], n, shape->seed, t->name);
        }
        st = gguf_writer_add_tensor(writer, t->name, ROJ_TYPE_F32, t->n_dims,
                                    t->ne, data[i], n * sizeof(float));
        if (st != ROJ_OK)
            goto free_data;
    }
    st = gguf_writer_write(writer, path);

free_data:
    for (int i = 0; data && i < n_tensors; i++)
        free(data[i]);
    free(data);
    free(list);
free_writer:
    gguf_writer_free(writer);
close_vocab:
    gguf_close(vocab);
    return st;
}
