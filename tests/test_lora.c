/*
 * LoRA adapters: writing them in llama.cpp's layout, applying them at run
 * time, merging them, and the errors for files that do not fit the base.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "gguf/gguf.h"
#include "model/lora.h"
#include "model/synth.h"
#include "quant/fp16.h"
#include "roj/context.h"
#include "roj/model.h"

#define N_PROMPT 96

static char base_path[4200];
static char tied_path[4200];

/* Random A and B for one weight; freed with tensors_free. */
static lora_tensor random_tensor(const roj_model *m, const char *name,
                                 int64_t rank, uint64_t *rng)
{
    int32_t slot;
    const weight *w = lora_find_weight(m, name, &slot);
    assert_non_null(w);
    lora_tensor t = {strdup(name), rank, w->n_in, w->n_out, NULL, NULL};
    float *a = malloc((size_t)(rank * w->n_in) * sizeof *a);
    float *b = malloc((size_t)(w->n_out * rank) * sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    for (int64_t i = 0; i < rank * w->n_in; i++)
        a[i] = test_rand_float(rng, -0.2f, 0.2f);
    for (int64_t i = 0; i < w->n_out * rank; i++)
        b[i] = test_rand_float(rng, -0.2f, 0.2f);
    t.a = a;
    t.b = b;
    return t;
}

static void tensors_free(lora_tensor *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((void *)t[i].name);
        free((void *)t[i].a);
        free((void *)t[i].b);
    }
}

/* Every adaptable weight of a 2-layer model, output when untied. */
static size_t all_weight_names(const roj_model *m, char names[][64])
{
    static const char *const kinds[] = {
        "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up",
        "ffn_down"};
    size_t n = 0;
    int32_t slot;
    for (int il = 0; il < roj_model_n_layer(m); il++)
        for (size_t k = 0; k < 7; k++)
            snprintf(names[n++], 64, "blk.%d.%s.weight", il, kinds[k]);
    snprintf(names[n++], 64, "token_embd.weight");
    if (lora_find_weight(m, "output.weight", &slot))
        snprintf(names[n++], 64, "output.weight");
    return n;
}

/* Writes an adapter on every weight of m to path, validated against
 * writer (m itself, or an untied model of the same shape when m is tied,
 * since lora_write rejects token_embd adapters on tied models). */
static void write_adapter_for(const roj_model *m, const roj_model *writer,
                              const char *path, int64_t rank, float alpha,
                              uint64_t seed)
{
    char names[32][64];
    lora_tensor t[32];
    uint64_t rng = seed;
    size_t n = all_weight_names(m, names);
    for (size_t i = 0; i < n; i++)
        t[i] = random_tensor(m, names[i], rank, &rng);
    roj_status st = lora_write(path, writer, alpha, t, n,
                               "{\"task\":\"test\"}");
    if (st != ROJ_OK)
        print_error("%s\n", roj_last_error());
    assert_int_equal(st, ROJ_OK);
    tensors_free(t, n);
}

static void write_full_adapter(const roj_model *m, const char *path,
                               int64_t rank, float alpha, uint64_t seed)
{
    write_adapter_for(m, m, path, rank, alpha, seed);
}

static void prompt_tokens(const roj_model *m, roj_token *tokens, int n)
{
    for (int i = 0; i < n; i++)
        tokens[i] = (roj_token)((i * 37 + 5) % roj_model_n_vocab(m));
}

/* Logits of every prompt token, then of one more token decoded alone:
 * (N_PROMPT + 1, n_vocab), freed by the caller. */
static float *run_logits(roj_model *m, const roj_lora *const *adapters,
                         const float *scales, size_t n)
{
    roj_context_params p = roj_context_default_params();
    roj_context *ctx = NULL;
    roj_token tokens[N_PROMPT + 1];
    bool want[N_PROMPT];
    const int n_vocab = roj_model_n_vocab(m);

    p.n_ctx = 128;
    p.n_threads = 2;
    assert_int_equal(roj_context_create(m, &p, &ctx), ROJ_OK);
    roj_status st = roj_context_set_lora(ctx, adapters, scales, n);
    if (st != ROJ_OK)
        print_error("%s\n", roj_last_error());
    assert_int_equal(st, ROJ_OK);

    prompt_tokens(m, tokens, N_PROMPT + 1);
    for (int i = 0; i < N_PROMPT; i++)
        want[i] = true;
    float *out = malloc((size_t)(N_PROMPT + 1) * n_vocab * sizeof *out);
    assert_non_null(out);
    roj_batch batch = {N_PROMPT, tokens, NULL, want};
    assert_int_equal(roj_decode(ctx, &batch), ROJ_OK);
    for (int i = 0; i < N_PROMPT; i++)
        memcpy(out + (size_t)i * n_vocab, roj_get_logits(ctx, i),
               (size_t)n_vocab * sizeof *out);
    roj_batch one = {1, tokens + N_PROMPT, NULL, NULL};
    assert_int_equal(roj_decode(ctx, &one), ROJ_OK);
    memcpy(out + (size_t)N_PROMPT * n_vocab, roj_get_logits(ctx, -1),
           (size_t)n_vocab * sizeof *out);
    roj_context_free(ctx);
    return out;
}

static float max_abs_diff(const float *a, const float *b, size_t n)
{
    float d = 0.0f;
    for (size_t i = 0; i < n; i++)
        if (fabsf(a[i] - b[i]) > d)
            d = fabsf(a[i] - b[i]);
    return d;
}

static size_t n_logits(const roj_model *m)
{
    return (size_t)(N_PROMPT + 1) * (size_t)roj_model_n_vocab(m);
}

static roj_model *open_model(const char *path)
{
    roj_model *m = NULL;
    roj_status st = roj_model_open(path, &m);
    if (st != ROJ_OK)
        print_error("%s\n", roj_last_error());
    assert_int_equal(st, ROJ_OK);
    return m;
}

static roj_lora *open_adapter(const roj_model *m, const char *path)
{
    roj_lora *l = NULL;
    roj_status st = roj_lora_open(m, path, &l);
    if (st != ROJ_OK)
        print_error("%s\n", roj_last_error());
    assert_int_equal(st, ROJ_OK);
    return l;
}

/* Runtime application of two adapters equals the merged F32 model. */
static void check_runtime_equals_merged(const char *model_path,
                                        const char *tag)
{
    char full[4300], q_only[4300], merged[4300];
    snprintf(full, sizeof full, "%s/%s-full.gguf", test_tmpdir(), tag);
    snprintf(q_only, sizeof q_only, "%s/%s-q.gguf", test_tmpdir(), tag);
    snprintf(merged, sizeof merged, "%s/%s-merged.gguf", test_tmpdir(), tag);

    roj_model *base = open_model(model_path);
    roj_model *untied = open_model(base_path);
    write_adapter_for(base, untied, full, 16, 8.0f, 11);
    uint64_t rng = 99;
    lora_tensor q = random_tensor(base, "blk.1.attn_q.weight", 3, &rng);
    assert_int_equal(lora_write(q_only, base, 0.0f, &q, 1, NULL), ROJ_OK);
    tensors_free(&q, 1);

    const roj_lora *adapters[2] = {open_adapter(base, full),
                                   open_adapter(base, q_only)};
    const float scales[2] = {0.7f, -0.4f};
    float *plain = run_logits(base, NULL, NULL, 0);
    float *adapted = run_logits(base, adapters, scales, 2);

    const char *paths[2] = {full, q_only};
    roj_status st = lora_merge(model_path, paths, scales, 2, merged,
                               ROJ_TYPE_F32, NULL);
    if (st != ROJ_OK)
        print_error("%s\n", roj_last_error());
    assert_int_equal(st, ROJ_OK);
    roj_model *merged_model = open_model(merged);
    float *from_merged = run_logits(merged_model, NULL, NULL, 0);

    float change = max_abs_diff(plain, adapted, n_logits(base));
    float err = max_abs_diff(adapted, from_merged, n_logits(base));
    print_message("%s: adapters change logits by up to %g; runtime vs "
                  "merged differ by %g\n", tag, (double)change, (double)err);
    assert_true(change > 1e-2f);
    assert_true(err < 1e-4f);

    free(plain);
    free(adapted);
    free(from_merged);
    roj_lora_free((roj_lora *)adapters[0]);
    roj_lora_free((roj_lora *)adapters[1]);
    roj_model_free(merged_model);
    roj_model_free(untied);
    roj_model_free(base);
}

static void lora_runtime_equals_merged(void **state)
{
    (void)state;
    check_runtime_equals_merged(base_path, "untied");
}

/* token_embd adapters on a tied model change the output head too, as in
 * the merged model. */
static void lora_tied_embd_equals_merged(void **state)
{
    (void)state;
    check_runtime_equals_merged(tied_path, "tied");
}

static void lora_scale_zero_is_base(void **state)
{
    (void)state;
    char path[4300];
    snprintf(path, sizeof path, "%s/zero.gguf", test_tmpdir());
    roj_model *base = open_model(base_path);
    write_full_adapter(base, path, 4, 16.0f, 5);
    const roj_lora *adapter = open_adapter(base, path);
    const float zero = 0.0f;

    float *plain = run_logits(base, NULL, NULL, 0);
    float *scaled = run_logits(base, &adapter, &zero, 1);
    assert_memory_equal(plain, scaled, n_logits(base) * sizeof(float));

    /* Setting no adapters again restores the base as well. */
    float *cleared = run_logits(base, &adapter, NULL, 0);
    assert_memory_equal(plain, cleared, n_logits(base) * sizeof(float));
    free(plain);
    free(scaled);
    free(cleared);
    roj_lora_free((roj_lora *)adapter);
    roj_model_free(base);
}

/* alpha 0 applies the user scale alone; alpha = rank gives factor 1. */
static void lora_alpha_zero_rule(void **state)
{
    (void)state;
    char zero[4300], equal[4300];
    snprintf(zero, sizeof zero, "%s/alpha0.gguf", test_tmpdir());
    snprintf(equal, sizeof equal, "%s/alpha4.gguf", test_tmpdir());
    roj_model *base = open_model(base_path);
    write_full_adapter(base, zero, 4, 0.0f, 21);
    write_full_adapter(base, equal, 4, 4.0f, 21);
    const roj_lora *a0 = open_adapter(base, zero);
    const roj_lora *a4 = open_adapter(base, equal);
    assert_true(roj_lora_alpha(a0) == 0.0f);
    assert_true(roj_lora_alpha(a4) == 4.0f);
    assert_int_equal(roj_lora_n_tensors(a0), 16);

    const float scale = 0.5f;
    float *x = run_logits(base, &a0, &scale, 1);
    float *y = run_logits(base, &a4, &scale, 1);
    assert_memory_equal(x, y, n_logits(base) * sizeof(float));
    const lora_pair *p = lora_find_pair(a4, "blk.0.attn_q.weight");
    assert_non_null(p);
    assert_true(lora_pair_scale(a4, p, 0.5f) == 0.5f);
    assert_true(lora_pair_scale(a0, p, 0.5f) == 0.5f);
    free(x);
    free(y);
    roj_lora_free((roj_lora *)a0);
    roj_lora_free((roj_lora *)a4);
    roj_model_free(base);
}

/* ------------------------------------------------------------------ */
/* Errors */

/* Writes an adapter by hand: n pairs of F32 tensors with the given
 * shapes, filled with 0.01. arch NULL leaves general.architecture out;
 * type NULL leaves general.type out. */
typedef struct raw_pair {
    const char *name; /* full tensor name, with .lora_a / .lora_b */
    int64_t ne0, ne1;
} raw_pair;

static void write_raw(const char *path, const char *arch, const char *type,
                      const raw_pair *t, size_t n)
{
    gguf_writer *w = NULL;
    float *data[8] = {0};
    assert_true(n <= 8);
    assert_int_equal(gguf_writer_create(&w), ROJ_OK);
    if (arch)
        assert_int_equal(gguf_writer_set_str(w, "general.architecture",
                                             arch), ROJ_OK);
    if (type)
        assert_int_equal(gguf_writer_set_str(w, "general.type", type),
                         ROJ_OK);
    assert_int_equal(gguf_writer_set_str(w, "adapter.type", "lora"), ROJ_OK);
    assert_int_equal(gguf_writer_set_f32(w, "adapter.lora.alpha", 8.0f),
                     ROJ_OK);
    for (size_t i = 0; i < n; i++) {
        size_t count = (size_t)(t[i].ne0 * t[i].ne1);
        int64_t ne[2] = {t[i].ne0, t[i].ne1};
        data[i] = malloc(count * sizeof(float));
        for (size_t k = 0; k < count; k++)
            data[i][k] = 0.01f;
        assert_int_equal(gguf_writer_add_tensor(w, t[i].name, ROJ_TYPE_F32,
                                                2, ne, data[i],
                                                count * sizeof(float)),
                         ROJ_OK);
    }
    assert_int_equal(gguf_writer_write(w, path), ROJ_OK);
    gguf_writer_free(w);
    for (size_t i = 0; i < n; i++)
        free(data[i]);
}

/* Opens path on base, expects status and every needle in the message. */
static void expect_open_error(const roj_model *base, const char *path,
                              roj_status status, const char *const *needles)
{
    roj_lora *l = NULL;
    roj_status st = roj_lora_open(base, path, &l);
    print_message("expected error: %s\n", roj_last_error());
    assert_null(l);
    assert_int_equal(st, status);
    for (; *needles; needles++)
        assert_non_null(strstr(roj_last_error(), *needles));
}

static void lora_open_shape_mismatch(void **state)
{
    (void)state;
    char path[4300];
    snprintf(path, sizeof path, "%s/bad-shape.gguf", test_tmpdir());
    roj_model *base = open_model(base_path);
    /* attn_k is [64, 32]; B claims 64 outputs. */
    const raw_pair t[] = {{"blk.0.attn_k.weight.lora_a", 64, 4},
                          {"blk.0.attn_k.weight.lora_b", 4, 64}};
    write_raw(path, "llama", "adapter", t, 2);
    const char *needles[] = {"blk.0.attn_k.weight.lora_b", "[4, 64]",
                             "[64, 32]", "[4, 32]", path, NULL};
    expect_open_error(base, path, ROJ_ERR_INVALID_ARG, needles);

    /* A with the wrong input width. */
    const raw_pair u[] = {{"blk.0.attn_q.weight.lora_a", 32, 4},
                          {"blk.0.attn_q.weight.lora_b", 4, 64}};
    write_raw(path, "llama", "adapter", u, 2);
    const char *needles_a[] = {"blk.0.attn_q.weight.lora_a", "[32, 4]",
                               "[64, 64]", "[64, rank]", NULL};
    expect_open_error(base, path, ROJ_ERR_INVALID_ARG, needles_a);
    roj_model_free(base);
}

static void lora_open_unknown_tensor(void **state)
{
    (void)state;
    char path[4300];
    snprintf(path, sizeof path, "%s/unknown.gguf", test_tmpdir());
    roj_model *base = open_model(base_path);
    const raw_pair t[] = {{"blk.7.attn_q.weight.lora_a", 64, 4},
                          {"blk.7.attn_q.weight.lora_b", 4, 64}};
    write_raw(path, "llama", "adapter", t, 2);
    const char *needles[] = {"blk.7.attn_q.weight", "no tensor", NULL};
    expect_open_error(base, path, ROJ_ERR_INVALID_ARG, needles);

    /* A base tensor that is not an adaptable matrix. */
    const raw_pair n[] = {{"blk.0.attn_norm.weight.lora_a", 64, 4},
                          {"blk.0.attn_norm.weight.lora_b", 4, 1}};
    write_raw(path, "llama", "adapter", n, 2);
    const char *needles_n[] = {"blk.0.attn_norm.weight", "not a weight",
                               NULL};
    expect_open_error(base, path, ROJ_ERR_UNSUPPORTED, needles_n);

    /* lora_a without lora_b, and a name with another suffix. */
    const raw_pair half[] = {{"blk.0.attn_q.weight.lora_a", 64, 4}};
    write_raw(path, "llama", "adapter", half, 1);
    const char *needles_h[] = {"blk.0.attn_q.weight.lora_b", NULL};
    expect_open_error(base, path, ROJ_ERR_FORMAT, needles_h);
    const raw_pair odd[] = {{"blk.0.attn_q.weight.lora_c", 64, 4}};
    write_raw(path, "llama", "adapter", odd, 1);
    const char *needles_o[] = {"blk.0.attn_q.weight.lora_c", ".lora_a",
                               NULL};
    expect_open_error(base, path, ROJ_ERR_FORMAT, needles_o);
    roj_model_free(base);
}

static void lora_open_other_arch(void **state)
{
    (void)state;
    char path[4300];
    snprintf(path, sizeof path, "%s/qwen.gguf", test_tmpdir());
    roj_model *base = open_model(base_path);
    const raw_pair t[] = {{"blk.0.attn_q.weight.lora_a", 64, 4},
                          {"blk.0.attn_q.weight.lora_b", 4, 64}};
    write_raw(path, "qwen2", "adapter", t, 2);
    const char *needles[] = {"\"qwen2\"", "\"llama\"", path, NULL};
    expect_open_error(base, path, ROJ_ERR_INVALID_ARG, needles);
    roj_model_free(base);
}

static void lora_open_not_adapter(void **state)
{
    (void)state;
    char path[4300];
    snprintf(path, sizeof path, "%s/model-type.gguf", test_tmpdir());
    roj_model *base = open_model(base_path);
    const char *needles[] = {"not a LoRA adapter", "general.type", NULL};
    /* The base model itself has no general.type. */
    expect_open_error(base, base_path, ROJ_ERR_FORMAT, needles);

    const raw_pair t[] = {{"blk.0.attn_q.weight.lora_a", 64, 4},
                          {"blk.0.attn_q.weight.lora_b", 4, 64}};
    write_raw(path, "llama", "model", t, 2);
    const char *needles_m[] = {"not a LoRA adapter", "\"model\"", NULL};
    expect_open_error(base, path, ROJ_ERR_FORMAT, needles_m);
    roj_model_free(base);
}

static void lora_write_rejects_bad_input(void **state)
{
    (void)state;
    char path[4300];
    snprintf(path, sizeof path, "%s/rejected.gguf", test_tmpdir());
    roj_model *base = open_model(base_path);
    uint64_t rng = 3;
    lora_tensor t[2] = {random_tensor(base, "blk.0.ffn_up.weight", 2, &rng),
                        random_tensor(base, "blk.0.ffn_up.weight", 2, &rng)};

    assert_int_equal(lora_write(path, base, 1.0f, t, 2, NULL),
                     ROJ_ERR_INVALID_ARG);
    assert_non_null(strstr(roj_last_error(), "given twice"));

    t[1].n_in = 65;
    assert_int_equal(lora_write(path, base, 1.0f, t + 1, 1, NULL),
                     ROJ_ERR_INVALID_ARG);
    assert_non_null(strstr(roj_last_error(), "n_in 65"));
    t[1].n_in = 64;

    const char *saved = t[1].name;
    t[1].name = "blk.0.ffn_norm.weight";
    assert_int_equal(lora_write(path, base, 1.0f, t + 1, 1, NULL),
                     ROJ_ERR_INVALID_ARG);
    assert_non_null(strstr(roj_last_error(), "blk.0.ffn_norm.weight"));
    t[1].name = saved;

    assert_int_equal(lora_write(path, base, 1.0f, t, 1, "[1, 2]"),
                     ROJ_ERR_INVALID_ARG);
    assert_non_null(strstr(roj_last_error(), "JSON object"));

    ((float *)t[0].b)[5] = NAN;
    assert_int_equal(lora_write(path, base, 1.0f, t, 1, NULL),
                     ROJ_ERR_NUMERIC);
    assert_non_null(strstr(roj_last_error(), "B element 5"));
    tensors_free(t, 2);
    roj_model_free(base);

    roj_model *tied = open_model(tied_path);
    lora_tensor e = random_tensor(tied, "token_embd.weight", 2, &rng);
    assert_int_equal(lora_write(path, tied, 1.0f, &e, 1, NULL),
                     ROJ_ERR_INVALID_ARG);
    assert_non_null(strstr(roj_last_error(), "ties its output head"));
    tensors_free(&e, 1);
    roj_model_free(tied);
}

/* An adapter opened on another model cannot be set on this context. */
static void lora_context_other_model(void **state)
{
    (void)state;
    char path[4300];
    snprintf(path, sizeof path, "%s/other.gguf", test_tmpdir());
    roj_model *base = open_model(base_path);
    roj_model *again = open_model(base_path);
    write_full_adapter(base, path, 2, 2.0f, 8);
    roj_lora *l = open_adapter(again, path);
    roj_context *ctx = NULL;
    assert_int_equal(roj_context_create(base, NULL, &ctx), ROJ_OK);
    const roj_lora *list[1] = {l};
    assert_int_equal(roj_context_set_lora(ctx, list, NULL, 1),
                     ROJ_ERR_INVALID_ARG);
    assert_non_null(strstr(roj_last_error(), path));
    const float inf = INFINITY;
    roj_lora *own = open_adapter(base, path);
    list[0] = own;
    assert_int_equal(roj_context_set_lora(ctx, list, &inf, 1),
                     ROJ_ERR_INVALID_ARG);
    assert_non_null(strstr(roj_last_error(), "not finite"));
    roj_context_free(ctx);
    roj_lora_free(l);
    roj_lora_free(own);
    roj_model_free(again);
    roj_model_free(base);
}

/* ------------------------------------------------------------------ */
/* Files */

/* The written file has llama.cpp's keys and tensor shapes. */
static void lora_write_layout(void **state)
{
    (void)state;
    char path[4300];
    snprintf(path, sizeof path, "%s/layout.gguf", test_tmpdir());
    roj_model *base = open_model(base_path);
    write_full_adapter(base, path, 4, 8.0f, 1);
    gguf_file *f = NULL;
    assert_int_equal(gguf_open(path, &f), ROJ_OK);
    const char *s = NULL;
    float alpha = 0.0f;
    assert_int_equal(gguf_get_str(f, "general.type", &s, NULL), ROJ_OK);
    assert_string_equal(s, "adapter");
    assert_int_equal(gguf_get_str(f, "adapter.type", &s, NULL), ROJ_OK);
    assert_string_equal(s, "lora");
    assert_int_equal(gguf_get_str(f, "general.architecture", &s, NULL),
                     ROJ_OK);
    assert_string_equal(s, "llama");
    assert_int_equal(gguf_get_f32(f, "adapter.lora.alpha", &alpha), ROJ_OK);
    assert_true(alpha == 8.0f);
    assert_int_equal(gguf_get_str(f, LORA_KEY_EXTRA_JSON, &s, NULL), ROJ_OK);
    assert_string_equal(s, "{\"task\":\"test\"}");

    const gguf_tensor *a = gguf_find_tensor(f, "blk.0.attn_k.weight.lora_a");
    const gguf_tensor *b = gguf_find_tensor(f, "blk.0.attn_k.weight.lora_b");
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->ne[0], 64);
    assert_int_equal(a->ne[1], 4);
    assert_int_equal(b->ne[0], 4);
    assert_int_equal(b->ne[1], 32);
    const int64_t n_vocab = roj_model_n_vocab(base);
    a = gguf_find_tensor(f, "token_embd.weight.lora_a");
    b = gguf_find_tensor(f, "token_embd.weight.lora_b");
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->ne[0], 4);
    assert_int_equal(a->ne[1], n_vocab);
    assert_int_equal(b->ne[0], 4);
    assert_int_equal(b->ne[1], 64);
    gguf_close(f);
    roj_model_free(base);
}

/* Converts every tensor of an F32 adapter to F16 into out. */
static void convert_to_f16(const char *in, const char *out)
{
    gguf_file *f = NULL;
    gguf_writer *w = NULL;
    uint16_t *data[32] = {0};
    assert_int_equal(gguf_open(in, &f), ROJ_OK);
    assert_int_equal(gguf_writer_create(&w), ROJ_OK);
    for (int64_t i = 0; i < gguf_n_kv(f); i++)
        assert_int_equal(gguf_writer_copy_kv(w, f, i), ROJ_OK);
    assert_true(gguf_n_tensors(f) <= 32);
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        const float *src = t->data;
        data[i] = malloc(t->n_elements * sizeof(uint16_t));
        for (uint64_t k = 0; k < t->n_elements; k++)
            data[i][k] = fp32_to_fp16(src[k]);
        assert_int_equal(gguf_writer_add_tensor(w, t->name, ROJ_TYPE_F16,
                                                t->n_dims, t->ne, data[i],
                                                t->n_elements * 2),
                         ROJ_OK);
    }
    assert_int_equal(gguf_writer_write(w, out), ROJ_OK);
    gguf_writer_free(w);
    for (int i = 0; i < 32; i++)
        free(data[i]);
    gguf_close(f);
}

static void lora_f16_adapter_loads(void **state)
{
    (void)state;
    char path[4300], half[4300];
    snprintf(path, sizeof path, "%s/f32-adapter.gguf", test_tmpdir());
    snprintf(half, sizeof half, "%s/f16-adapter.gguf", test_tmpdir());
    roj_model *base = open_model(base_path);
    write_full_adapter(base, path, 8, 16.0f, 77);
    convert_to_f16(path, half);
    const roj_lora *full = open_adapter(base, path);
    const roj_lora *f16 = open_adapter(base, half);
    float *x = run_logits(base, &full, NULL, 1);
    float *y = run_logits(base, &f16, NULL, 1);
    float err = max_abs_diff(x, y, n_logits(base));
    print_message("F16 adapter vs F32 adapter: max logit difference %g\n",
                  (double)err);
    assert_true(err < 2e-2f);
    assert_true(err > 0.0f);
    free(x);
    free(y);
    roj_lora_free((roj_lora *)full);
    roj_lora_free((roj_lora *)f16);
    roj_model_free(base);
}

/* Compares metadata key i of a with the same key in b. */
static void assert_same_kv(const gguf_file *a, int64_t i, const gguf_file *b)
{
    const char *key = gguf_kv_key(a, i);
    int64_t j = gguf_find_key(b, key);
    assert_true(j >= 0);
    assert_int_equal(gguf_kv_type(a, i), gguf_kv_type(b, j));
    if (gguf_kv_type(a, i) == GGUF_TYPE_ARRAY) {
        const void *da, *db;
        uint64_t na, nb;
        assert_int_equal(gguf_kv_array_type(a, i), gguf_kv_array_type(b, j));
        assert_int_equal(gguf_kv_array_data(a, i, &da, &na), ROJ_OK);
        assert_int_equal(gguf_kv_array_data(b, j, &db, &nb), ROJ_OK);
        assert_int_equal(na, nb);
        uint64_t size = gguf_type_size(gguf_kv_array_type(a, i));
        if (size)
            assert_memory_equal(da, db, na * size);
        else
            for (uint64_t k = 0; k < na && k < 64; k++) {
                const char *sa, *sb;
                uint64_t la, lb;
                assert_int_equal(gguf_get_arr_str(a, key, k, &sa, &la),
                                 ROJ_OK);
                assert_int_equal(gguf_get_arr_str(b, key, k, &sb, &lb),
                                 ROJ_OK);
                assert_int_equal(la, lb);
                assert_memory_equal(sa, sb, la);
            }
    } else if (gguf_kv_type(a, i) == GGUF_TYPE_STRING) {
        const char *sa, *sb;
        assert_int_equal(gguf_kv_str(a, i, &sa, NULL), ROJ_OK);
        assert_int_equal(gguf_kv_str(b, j, &sb, NULL), ROJ_OK);
        assert_string_equal(sa, sb);
    } else if (gguf_kv_type(a, i) == GGUF_TYPE_FLOAT32 ||
               gguf_kv_type(a, i) == GGUF_TYPE_FLOAT64) {
        double va, vb;
        assert_int_equal(gguf_kv_f64(a, i, &va), ROJ_OK);
        assert_int_equal(gguf_kv_f64(b, j, &vb), ROJ_OK);
        assert_true(va == vb);
    } else if (gguf_kv_type(a, i) != GGUF_TYPE_BOOL) {
        int64_t va, vb;
        assert_int_equal(gguf_kv_i64(a, i, &va), ROJ_OK);
        assert_int_equal(gguf_kv_i64(b, j, &vb), ROJ_OK);
        assert_int_equal(va, vb);
    }
}

/* The merged file keeps every key and every unchanged tensor, and a
 * quantized merge stays close to the F32 one. */
static void lora_merge_roundtrip(void **state)
{
    (void)state;
    char adapter[4300], merged[4300], q8[4300];
    snprintf(adapter, sizeof adapter, "%s/m-adapter.gguf", test_tmpdir());
    snprintf(merged, sizeof merged, "%s/m-merged.gguf", test_tmpdir());
    snprintf(q8, sizeof q8, "%s/m-q8.gguf", test_tmpdir());
    roj_model *base = open_model(base_path);
    uint64_t rng = 41;
    lora_tensor t = random_tensor(base, "blk.1.ffn_down.weight", 4, &rng);
    assert_int_equal(lora_write(adapter, base, 4.0f, &t, 1, NULL), ROJ_OK);
    tensors_free(&t, 1);
    roj_model_free(base);

    const char *paths[1] = {adapter};
    const float scale = 1.5f;
    assert_int_equal(lora_merge(base_path, paths, &scale, 1, merged,
                                ROJ_TYPE_COUNT, NULL), ROJ_OK);
    assert_int_equal(lora_merge(base_path, paths, &scale, 1, q8,
                                ROJ_TYPE_Q8_0, NULL), ROJ_OK);

    gguf_file *in = NULL, *out = NULL;
    assert_int_equal(gguf_open(base_path, &in), ROJ_OK);
    assert_int_equal(gguf_open(merged, &out), ROJ_OK);
    for (int64_t i = 0; i < gguf_n_kv(in); i++)
        assert_same_kv(in, i, out);
    assert_int_equal(gguf_n_kv(out), gguf_n_kv(in) + 1);
    const char *item;
    uint64_t len;
    assert_int_equal(gguf_get_arr_str(out, "roj.merge.adapters", 0, &item,
                                      &len), ROJ_OK);
    assert_true(len == strlen("m-adapter.gguf:1.5"));
    assert_memory_equal(item, "m-adapter.gguf:1.5", len);

    assert_int_equal(gguf_n_tensors(out), gguf_n_tensors(in));
    for (int64_t i = 0; i < gguf_n_tensors(in); i++) {
        const gguf_tensor *a = gguf_tensor_at(in, i);
        const gguf_tensor *b = gguf_find_tensor(out, a->name);
        assert_non_null(b);
        assert_int_equal(a->type, b->type);
        assert_int_equal(a->n_bytes, b->n_bytes);
        bool same = !memcmp(a->data, b->data, a->n_bytes);
        bool changed = !strcmp(a->name, "blk.1.ffn_down.weight");
        assert_true(same != changed);
    }
    gguf_close(out);

    assert_int_equal(gguf_open(q8, &out), ROJ_OK);
    const gguf_tensor *down = gguf_find_tensor(out, "blk.1.ffn_down.weight");
    assert_non_null(down);
    assert_int_equal(down->type, ROJ_TYPE_Q8_0);
    assert_int_equal(gguf_find_tensor(out, "blk.1.ffn_up.weight")->type,
                     ROJ_TYPE_F32);
    gguf_close(out);
    gguf_close(in);

    roj_model *m32 = open_model(merged);
    roj_model *m8 = open_model(q8);
    float *x = run_logits(m32, NULL, NULL, 0);
    float *y = run_logits(m8, NULL, NULL, 0);
    float err = max_abs_diff(x, y, n_logits(m32));
    print_message("Q8_0 merge vs F32 merge: max logit difference %g\n",
                  (double)err);
    assert_true(err < 1e-2f);
    free(x);
    free(y);
    roj_model_free(m32);
    roj_model_free(m8);
}

/* roj merge writes the same bytes as lora_merge. */
static void lora_merge_command(void **state)
{
    (void)state;
    const char *bin = getenv("ROJ_BIN");
    char adapter[4300], by_api[4300], by_cli[4300], cmd[20000];
    if (!bin) {
        print_message("ROJ_BIN is not set; run through ctest\n");
        skip();
    }
    snprintf(adapter, sizeof adapter, "%s/c-adapter.gguf", test_tmpdir());
    snprintf(by_api, sizeof by_api, "%s/c-api.gguf", test_tmpdir());
    snprintf(by_cli, sizeof by_cli, "%s/c-cli.gguf", test_tmpdir());
    roj_model *base = open_model(base_path);
    write_full_adapter(base, adapter, 2, 4.0f, 13);
    roj_model_free(base);

    const char *paths[1] = {adapter};
    const float scale = 0.25f;
    assert_int_equal(lora_merge(base_path, paths, &scale, 1, by_api,
                                ROJ_TYPE_F16, NULL), ROJ_OK);
    snprintf(cmd, sizeof cmd, "'%s' merge '%s' '%s:0.25' --out '%s' "
             "--type f16 2>/dev/null", bin, base_path, adapter, by_cli);
    assert_int_equal(system(cmd), 0);
    size_t na, nb;
    char *a = test_read_file(by_api, &na);
    char *b = test_read_file(by_cli, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    free(a);
    free(b);

    snprintf(cmd, sizeof cmd, "'%s' merge '%s' '%s' --out '%s' --type q4 "
             "2>/dev/null", bin, base_path, adapter, by_cli);
    assert_int_equal(WEXITSTATUS(system(cmd)), 2);
    snprintf(cmd, sizeof cmd, "'%s' merge '%s' '%s' --out '%s' 2>/dev/null",
             bin, base_path, base_path, by_cli);
    assert_int_equal(WEXITSTATUS(system(cmd)), 1);
}

/* Runs cmd and returns its standard output (at most 4095 bytes) in out. */
static int run_output(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* roj generate --lora: scale 0 gives the base's text, scales 2 and -0.5
 * change it, and a model file given as adapter is rejected. */
static void lora_generate_option(void **state)
{
    (void)state;
    const char *bin = getenv("ROJ_BIN");
    char adapter[4300], cmd[20000];
    char plain[4096], zero[4096], scaled[4096];
    if (!bin) {
        print_message("ROJ_BIN is not set; run through ctest\n");
        skip();
    }
    snprintf(adapter, sizeof adapter, "%s/g-adapter.gguf", test_tmpdir());
    roj_model *base = open_model(base_path);
    write_full_adapter(base, adapter, 8, 8.0f, 17);
    roj_model_free(base);

    const char *common = "-p 'the cat' -n 12 --temp 0 -t 1 2>/dev/null";
    snprintf(cmd, sizeof cmd, "'%s' generate -m '%s' %s", bin, base_path,
             common);
    assert_int_equal(run_output(cmd, plain, sizeof plain), 0);
    snprintf(cmd, sizeof cmd, "'%s' generate -m '%s' --lora '%s:0' %s", bin,
             base_path, adapter, common);
    assert_int_equal(run_output(cmd, zero, sizeof zero), 0);
    snprintf(cmd, sizeof cmd,
             "'%s' generate -m '%s' --lora '%s:2' --lora '%s:-0.5' %s", bin,
             base_path, adapter, adapter, common);
    assert_int_equal(run_output(cmd, scaled, sizeof scaled), 0);
    assert_true(strlen(plain) > 0);
    assert_string_equal(plain, zero);
    assert_string_not_equal(plain, scaled);

    char message[4096];
    snprintf(cmd, sizeof cmd, "'%s' generate -m '%s' --lora '%s' %s 2>&1",
             bin, base_path, base_path, "-p x -n 1");
    assert_int_equal(run_output(cmd, message, sizeof message), 1);
    assert_non_null(strstr(message, "cannot load LoRA adapter"));
    assert_non_null(strstr(message, "not a LoRA adapter"));
}

static int write_models(void **state)
{
    (void)state;
    synth_shape s;
    if (synth_preset("tiny", &s) != ROJ_OK)
        return -1;
    s.vocab_path = NULL;
    s.n_vocab = 0;
    snprintf(base_path, sizeof base_path, "%s/base.gguf", test_tmpdir());
    if (synth_write_model(base_path, &s) != ROJ_OK)
        return -1;
    s.tied_output = true;
    snprintf(tied_path, sizeof tied_path, "%s/tied.gguf", test_tmpdir());
    return synth_write_model(tied_path, &s) == ROJ_OK ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lora_runtime_equals_merged),
        cmocka_unit_test(lora_tied_embd_equals_merged),
        cmocka_unit_test(lora_scale_zero_is_base),
        cmocka_unit_test(lora_alpha_zero_rule),
        cmocka_unit_test(lora_open_shape_mismatch),
        cmocka_unit_test(lora_open_unknown_tensor),
        cmocka_unit_test(lora_open_other_arch),
        cmocka_unit_test(lora_open_not_adapter),
        cmocka_unit_test(lora_write_rejects_bad_input),
        cmocka_unit_test(lora_context_other_model),
        cmocka_unit_test(lora_write_layout),
        cmocka_unit_test(lora_f16_adapter_loads),
        cmocka_unit_test(lora_merge_roundtrip),
        cmocka_unit_test(lora_merge_command),
        cmocka_unit_test(lora_generate_option),
    };
    return test_run_group(tests, write_models, NULL);
}
