/*
 * Whole-file quantization: byte identity with llama-quantize output,
 * per-tensor type rules, requantization and error messages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sha256.h"
#include "gguf/gguf.h"
#include "model/synth.h"
#include "quant/quant.h"
#include "quant/quantize_file.h"
#include "testutil.h"

#define TINY_F32 "fixtures/logits/tiny-f32.gguf"

static char out_path[4200];

static const char *tmp_file(const char *name)
{
    snprintf(out_path, sizeof out_path, "%s/%s", test_tmpdir(), name);
    return out_path;
}

static void expect_ok(roj_status st)
{
    if (st != ROJ_OK)
        print_error("%s\n", roj_last_error());
    assert_int_equal(st, ROJ_OK);
}

/* Compares every tensor of a and b by name: type, shape and bytes. */
static void expect_same_tensors(const char *path_a, const char *path_b)
{
    gguf_file *a = NULL, *b = NULL;
    expect_ok(gguf_open(path_a, &a));
    expect_ok(gguf_open(path_b, &b));
    assert_int_equal(gguf_n_tensors(a), gguf_n_tensors(b));
    for (int64_t i = 0; i < gguf_n_tensors(a); i++) {
        const gguf_tensor *ta = gguf_tensor_at(a, i);
        const gguf_tensor *tb = gguf_find_tensor(b, ta->name);
        assert_non_null(tb);
        if (ta->type != tb->type)
            print_error("%s: type %s, expected %s\n", ta->name,
                        qtype_name(ta->type), qtype_name(tb->type));
        assert_int_equal(ta->type, tb->type);
        assert_int_equal(ta->n_bytes, tb->n_bytes);
        if (memcmp(ta->data, tb->data, ta->n_bytes) != 0)
            print_error("%s: data differs\n", ta->name);
        assert_memory_equal(ta->data, tb->data, ta->n_bytes);
    }
    gguf_close(a);
    gguf_close(b);
}

/* SHA-256 of llama-quantize's output for tiny-f32.gguf (llama.cpp
 * c392e5094, `llama-quantize tiny-f32.gguf out.gguf TYPE 2`). */
static const struct {
    enum quant_ftype ftype;
    const char *fixture;
    const char *sha256;
} llama_outputs[] = {
    {QUANT_FTYPE_Q8_0, "fixtures/logits/tiny-q8_0.gguf",
     "e7ffe3a4ca04e2b8c0cbd214b78b3f36a2081e8d309f3c5d3c0fcf8e0b54c84b"},
    {QUANT_FTYPE_Q4_0, "fixtures/logits/tiny-q4_0.gguf",
     "f72e6e0393a2d74e722a11834be4e79fb5765aa26764326421c088bdf35249c6"},
    {QUANT_FTYPE_Q4_K_M, "fixtures/logits/tiny-q4_k_m.gguf",
     "87bfab8c1f48ab3c7c30ea3de759e8eacac2af30d5765a0eee530b3aa203d2af"},
    {QUANT_FTYPE_F16, "fixtures/logits/tiny-f16.gguf",
     "1397f8c7c4451565d0b6cbd5990355088f8d39859457d440bd1381d44ecf32c5"},
};

static void quant_file_matches_llama_quantize(void **state)
{
    (void)state;
    const char *in = test_shared_path(TINY_F32);
    for (size_t i = 0; i < sizeof llama_outputs / sizeof llama_outputs[0];
         i++) {
        char hex[SHA256_HEX_SIZE];
        const char *fixture = test_shared_path(llama_outputs[i].fixture);
        const char *out = tmp_file("tiny-out.gguf");
        print_message("%s\n", quant_ftype_name(llama_outputs[i].ftype));
        expect_ok(quant_quantize_file(in, out, llama_outputs[i].ftype, 2));

        /* Tensor by tensor first, so a mismatch names the tensor. */
        expect_same_tensors(out, fixture);
        expect_ok(sha256_file(out, hex));
        assert_string_equal(hex, llama_outputs[i].sha256);
    }
}

static uint32_t tensor_type(const gguf_file *f, const char *name)
{
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t)
        print_error("tensor %s not found\n", name);
    assert_non_null(t);
    return t->type;
}

/* llama-quantize's Q4_K_M choices for the tiny model. Rows of 64 and 128
 * fall back from Q4_K to Q5_0 and from Q6_K to Q8_0. Layer 1 is a "more
 * bits" layer of two, and output.weight gets Q6_K, so both become Q8_0. */
static void quant_file_tiny_q4_k_m_types(void **state)
{
    (void)state;
    gguf_file *f = NULL;
    const char *out = tmp_file("tiny-q4_k_m.gguf");
    expect_ok(quant_quantize_file(test_shared_path(TINY_F32), out,
                                  QUANT_FTYPE_Q4_K_M, 1));
    expect_ok(gguf_open(out, &f));

    assert_int_equal(tensor_type(f, "output.weight"), ROJ_TYPE_Q8_0);
    assert_int_equal(tensor_type(f, "token_embd.weight"), ROJ_TYPE_Q5_0);
    assert_int_equal(tensor_type(f, "output_norm.weight"), ROJ_TYPE_F32);
    assert_int_equal(tensor_type(f, "blk.0.attn_v.weight"), ROJ_TYPE_Q5_0);
    assert_int_equal(tensor_type(f, "blk.0.ffn_down.weight"), ROJ_TYPE_Q5_0);
    assert_int_equal(tensor_type(f, "blk.1.attn_v.weight"), ROJ_TYPE_Q8_0);
    assert_int_equal(tensor_type(f, "blk.1.ffn_down.weight"), ROJ_TYPE_Q8_0);
    assert_int_equal(tensor_type(f, "blk.1.attn_q.weight"), ROJ_TYPE_Q5_0);
    assert_int_equal(tensor_type(f, "blk.1.ffn_norm.weight"), ROJ_TYPE_F32);

    /* Metadata: all input keys kept, the two rewritten keys last. */
    int64_t n = gguf_n_kv(f);
    assert_int_equal(n, 27);
    assert_string_equal(gguf_kv_key(f, 0), "general.architecture");
    assert_string_equal(gguf_kv_key(f, n - 2),
                        "general.quantization_version");
    assert_string_equal(gguf_kv_key(f, n - 1), "general.file_type");
    uint32_t ftype = 0, version = 0;
    expect_ok(gguf_get_u32(f, "general.file_type", &ftype));
    expect_ok(gguf_get_u32(f, "general.quantization_version", &version));
    assert_int_equal(ftype, 15);
    assert_int_equal(version, 2);
    assert_true(gguf_find_key(f, "tokenizer.ggml.scores") >= 0);
    /* llama-quantize's order: non-layer tensors by name first. */
    assert_string_equal(gguf_tensor_at(f, 0)->name, "output.weight");
    assert_string_equal(gguf_tensor_at(f, 3)->name, "blk.0.attn_k.weight");
    gguf_close(f);
}

/* A 30-layer model with tied embeddings, 64-wide rows and 256-wide
 * ffn_down rows, like SmolLM2-135M's 576 and 1536: most tensors fall
 * back, ffn_down keeps its K-quant. */
static const char *write_layered_model(void)
{
    static char path[4200];
    synth_shape s;
    expect_ok(synth_preset("tiny", &s));
    s.name = "layered";
    s.n_layer = 30;
    s.n_ff = 256;
    s.tied_output = true;
    s.vocab_path = test_shared_path("fixtures/tokenizer/ggml-vocab-llama-spm.gguf");
    snprintf(path, sizeof path, "%s/layered-f32.gguf", test_tmpdir());
    expect_ok(synth_write_model(path, &s));
    return path;
}

/* use_more_bits(i, 30) in llama.cpp: i < 3, i >= 26, (i - 3) % 3 == 2. */
static bool more_bits_layer(int i)
{
    return i < 3 || i >= 26 || (i - 3) % 3 == 2;
}

static uint32_t layer_type(const gguf_file *f, const uint32_t *types, int i,
                           const char *role)
{
    char name[64];
    snprintf(name, sizeof name, "blk.%d.%s.weight", i, role);
    for (int64_t k = 0; k < gguf_n_tensors(f); k++)
        if (!strcmp(gguf_tensor_at(f, k)->name, name))
            return types[k];
    fail_msg("tensor %s not found", name);
    return 0;
}

static void quant_file_mix_rules_by_layer(void **state)
{
    (void)state;
    gguf_file *f = NULL;
    expect_ok(gguf_open(write_layered_model(), &f));
    uint32_t *types = calloc((size_t)gguf_n_tensors(f), sizeof *types);
    assert_non_null(types);
    assert_true(more_bits_layer(5));
    assert_false(more_bits_layer(6));

    expect_ok(quant_choose_types(f, QUANT_FTYPE_Q4_K_M, false, types));
    assert_int_equal(types[0], ROJ_TYPE_Q8_0); /* tied token_embd */
    for (int i = 0; i < 30; i++) {
        bool more = more_bits_layer(i);
        assert_int_equal(layer_type(f, types, i, "attn_v"),
                         more ? ROJ_TYPE_Q8_0 : ROJ_TYPE_Q5_0);
        assert_int_equal(layer_type(f, types, i, "ffn_down"),
                         more ? ROJ_TYPE_Q6_K : ROJ_TYPE_Q4_K);
        assert_int_equal(layer_type(f, types, i, "attn_q"), ROJ_TYPE_Q5_0);
        assert_int_equal(layer_type(f, types, i, "ffn_up"), ROJ_TYPE_Q5_0);
        assert_int_equal(layer_type(f, types, i, "attn_norm"), ROJ_TYPE_F32);
    }

    expect_ok(quant_choose_types(f, QUANT_FTYPE_Q4_K_S, false, types));
    for (int i = 0; i < 30; i++) {
        assert_int_equal(layer_type(f, types, i, "attn_v"),
                         i < 4 ? ROJ_TYPE_Q5_1 : ROJ_TYPE_Q5_0);
        assert_int_equal(layer_type(f, types, i, "ffn_down"),
                         i < 3 ? ROJ_TYPE_Q5_K : ROJ_TYPE_Q4_K);
    }

    expect_ok(quant_choose_types(f, QUANT_FTYPE_Q5_K_M, false, types));
    for (int i = 0; i < 30; i++) {
        bool more = more_bits_layer(i);
        assert_int_equal(layer_type(f, types, i, "attn_v"),
                         more ? ROJ_TYPE_Q8_0 : ROJ_TYPE_Q5_1);
        assert_int_equal(layer_type(f, types, i, "ffn_down"),
                         more ? ROJ_TYPE_Q6_K : ROJ_TYPE_Q5_K);
        assert_int_equal(layer_type(f, types, i, "attn_k"), ROJ_TYPE_Q5_1);
    }

    expect_ok(quant_choose_types(f, QUANT_FTYPE_Q5_K_S, false, types));
    assert_int_equal(layer_type(f, types, 0, "attn_v"), ROJ_TYPE_Q5_1);
    assert_int_equal(layer_type(f, types, 0, "ffn_down"), ROJ_TYPE_Q5_K);

    expect_ok(quant_choose_types(f, QUANT_FTYPE_Q6_K, false, types));
    assert_int_equal(types[0], ROJ_TYPE_Q8_0);
    assert_int_equal(layer_type(f, types, 7, "attn_output"), ROJ_TYPE_Q8_0);
    assert_int_equal(layer_type(f, types, 7, "ffn_down"), ROJ_TYPE_Q6_K);

    expect_ok(quant_choose_types(f, QUANT_FTYPE_Q4_0, false, types));
    assert_int_equal(types[0], ROJ_TYPE_Q8_0); /* tied lm_head: Q6_K rule */
    assert_int_equal(layer_type(f, types, 7, "attn_v"), ROJ_TYPE_Q4_0);

    /* Q3_K rows of 64 would need IQ4_NL. */
    assert_int_equal(quant_choose_types(f, QUANT_FTYPE_Q3_K_M, false, types),
                     ROJ_ERR_UNSUPPORTED);
    assert_non_null(strstr(roj_last_error(), "IQ4_NL"));
    assert_non_null(strstr(roj_last_error(), "blk.0.attn_k.weight"));

    /* --pure: no rules, and no fallback either. */
    expect_ok(quant_choose_types(f, QUANT_FTYPE_Q8_0, true, types));
    assert_int_equal(layer_type(f, types, 0, "attn_v"), ROJ_TYPE_Q8_0);
    assert_int_equal(quant_choose_types(f, QUANT_FTYPE_Q4_K_M, true, types),
                     ROJ_ERR_UNSUPPORTED);
    assert_non_null(strstr(roj_last_error(), "--pure"));
    free(types);
    gguf_close(f);
}

/* A quantized input: a tensor of the target type is copied, others are
 * dequantized first. */
static void quant_file_requantizes(void **state)
{
    (void)state;
    const char *q8 = test_shared_path("fixtures/logits/tiny-q8_0.gguf");
    char copy[4200], as_f32[4200];
    snprintf(copy, sizeof copy, "%s", tmp_file("copy-q8_0.gguf"));
    snprintf(as_f32, sizeof as_f32, "%s", tmp_file("back-f32.gguf"));

    expect_ok(quant_quantize_file(q8, copy, QUANT_FTYPE_Q8_0, 2));
    expect_same_tensors(copy, q8);

    gguf_file *q = NULL, *f = NULL;
    expect_ok(quant_quantize_file(q8, as_f32, QUANT_FTYPE_ALL_F32, 2));
    expect_ok(gguf_open(q8, &q));
    expect_ok(gguf_open(as_f32, &f));
    const gguf_tensor *tq = gguf_find_tensor(q, "blk.1.ffn_down.weight");
    const gguf_tensor *tf = gguf_find_tensor(f, "blk.1.ffn_down.weight");
    assert_non_null(tq);
    assert_non_null(tf);
    assert_int_equal(tf->type, ROJ_TYPE_F32);
    float *expected = malloc(sizeof(float) * tq->n_elements);
    assert_non_null(expected);
    quant_dequantize_row(ROJ_TYPE_Q8_0, tq->data, expected,
                         (int64_t)tq->n_elements);
    assert_memory_equal(tf->data, expected, sizeof(float) * tq->n_elements);
    free(expected);
    gguf_close(q);
    gguf_close(f);
}

static void quant_file_errors(void **state)
{
    (void)state;
    enum quant_ftype ftype;
    assert_int_equal(quant_ftype_parse("Q4_K_XL", &ftype), ROJ_ERR_INVALID_ARG);
    assert_non_null(strstr(roj_last_error(), "'Q4_K_XL'"));
    assert_non_null(strstr(roj_last_error(), "Q4_K_M"));
    expect_ok(quant_ftype_parse("q4_k", &ftype));
    assert_int_equal(ftype, QUANT_FTYPE_Q4_K_M);
    expect_ok(quant_ftype_parse("bf16", &ftype));
    assert_int_equal(ftype, 32);
    assert_string_equal(quant_ftype_name(QUANT_FTYPE_Q5_K_S), "Q5_K_S");

    assert_int_equal(quant_quantize_file("/nonexistent/in.gguf",
                                         tmp_file("x.gguf"),
                                         QUANT_FTYPE_Q8_0, 1), ROJ_ERR_IO);
    assert_non_null(strstr(roj_last_error(), "/nonexistent/in.gguf"));

    const char *in = test_shared_path(TINY_F32);
    assert_int_equal(quant_quantize_file(in, "/nonexistent/dir/out.gguf",
                                         QUANT_FTYPE_Q8_0, 1), ROJ_ERR_IO);
    assert_non_null(strstr(roj_last_error(), "/nonexistent/dir/out.gguf"));

    assert_int_equal(quant_quantize_file(in, tmp_file("x.gguf"),
                                         QUANT_FTYPE_Q2_K, 1),
                     ROJ_ERR_UNSUPPORTED);
    assert_non_null(strstr(roj_last_error(), "tiny-f32.gguf"));

    assert_int_equal(quant_quantize_file(in, tmp_file("x.gguf"),
                                         QUANT_FTYPE_Q8_0, 0),
                     ROJ_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quant_file_matches_llama_quantize),
        cmocka_unit_test(quant_file_tiny_q4_k_m_types),
        cmocka_unit_test(quant_file_mix_rules_by_layer),
        cmocka_unit_test(quant_file_requantizes),
        cmocka_unit_test(quant_file_errors),
    };
    return test_run_group(tests, NULL, NULL);
}
