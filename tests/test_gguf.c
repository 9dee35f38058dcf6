/* GGUF reader on the shared fixture files: header, metadata getters,
 * string arrays and tensor infos. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "quant/qtypes.h"

static const char *const vocab_files[] = {
    "baichuan", "bert-bge", "deepseek-coder", "deepseek-llm", "falcon",
    "gpt-2", "gpt-neox", "llama-bpe", "llama-spm", "mpt", "phi-3", "qwen2",
    "refact", "starcoder",
};

static gguf_file *open_fixture(const char *relative)
{
    gguf_file *f = NULL;
    roj_status st = gguf_open(test_shared_path(relative), &f);
    if (st != ROJ_OK)
        fail_msg("gguf_open %s: %s", relative, roj_last_error());
    return f;
}

static void gguf_tiny_f32_header(void **state)
{
    (void)state;
    gguf_file *f = open_fixture("fixtures/logits/tiny-f32.gguf");
    const char *arch = NULL;
    size_t len = 0;
    uint32_t u = 0;
    float eps = 0;

    assert_int_equal(gguf_version(f), 3);
    assert_int_equal(gguf_alignment(f), 32);
    assert_int_equal(gguf_n_tensors(f), 21);
    assert_int_equal(gguf_data_offset(f) % 32, 0);
    assert_int_equal(gguf_get_str(f, "general.architecture", &arch, &len),
                     ROJ_OK);
    assert_string_equal(arch, "llama");
    assert_int_equal(len, 5);
    assert_int_equal(gguf_get_u32(f, "llama.embedding_length", &u), ROJ_OK);
    assert_int_equal(u, 64);
    assert_int_equal(gguf_get_u32(f, "llama.block_count", &u), ROJ_OK);
    assert_int_equal(u, 2);
    assert_int_equal(gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon",
                                  &eps), ROJ_OK);
    assert_float_equal(eps, 1e-5f, 1e-12f);
    assert_int_equal(gguf_get_u32(f, "no.such.key", &u), ROJ_ERR_NOT_FOUND);
    assert_non_null(strstr(roj_last_error(), "no.such.key"));
    gguf_close(f);
}

static void gguf_tiny_f32_tensors(void **state)
{
    (void)state;
    gguf_file *f = open_fixture("fixtures/logits/tiny-f32.gguf");
    const gguf_tensor *t = gguf_find_tensor(f, "token_embd.weight");
    uint64_t total = 0;

    assert_non_null(t);
    assert_int_equal(t->type, ROJ_TYPE_F32);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->ne[0], 64);
    assert_int_equal(t->ne[1], 32000);
    assert_int_equal(t->ne[2], 1);
    assert_int_equal(t->n_elements, 64 * 32000);
    assert_int_equal(t->n_bytes, 64 * 32000 * 4);
    assert_non_null(t->data);
    assert_null(gguf_find_tensor(f, "missing.weight"));
    assert_null(gguf_tensor_at(f, 21));
    assert_null(gguf_tensor_at(f, -1));

    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *ti = gguf_tensor_at(f, i);
        assert_ptr_equal(gguf_find_tensor(f, ti->name), ti);
        assert_int_equal(ti->offset % 32, 0);
        assert_true(gguf_data_offset(f) + ti->offset + ti->n_bytes <=
                    gguf_file_size(f));
        total += ti->n_bytes;
    }
    assert_true(total <= gguf_file_size(f) - gguf_data_offset(f));

    /* The norm weights of the synthetic model are finite numbers. */
    const gguf_tensor *norm = gguf_find_tensor(f, "output_norm.weight");
    assert_non_null(norm);
    const float *w = norm->data;
    for (int i = 0; i < 64; i++)
        assert_true(isfinite(w[i]));
    gguf_close(f);
}

static void gguf_tiny_q4_k_m_types(void **state)
{
    (void)state;
    gguf_file *f = open_fixture("fixtures/logits/tiny-q4_k_m.gguf");
    const gguf_tensor *t = gguf_find_tensor(f, "output.weight");
    uint32_t file_type = 0;

    assert_non_null(t);
    assert_int_equal(t->type, ROJ_TYPE_Q8_0);
    assert_int_equal(t->n_bytes, 64 / 32 * 34 * 32000);
    t = gguf_find_tensor(f, "blk.0.attn_q.weight");
    assert_non_null(t);
    assert_int_equal(t->type, ROJ_TYPE_Q5_0);
    assert_int_equal(t->n_bytes, 64 / 32 * 22 * 64);
    assert_int_equal(gguf_get_u32(f, "general.file_type", &file_type),
                     ROJ_OK);
    assert_int_equal(file_type, 15);
    gguf_close(f);
}

static void gguf_tiny_vocab_arrays(void **state)
{
    (void)state;
    gguf_file *f = open_fixture("fixtures/logits/tiny-f32.gguf");
    const char *p = NULL;
    uint64_t len = 0, n = 0;
    float *scores = NULL;
    int32_t *types = NULL;
    int64_t i = gguf_find_key(f, "tokenizer.ggml.tokens");

    assert_true(i >= 0);
    assert_int_equal(gguf_kv_type(f, i), GGUF_TYPE_ARRAY);
    assert_int_equal(gguf_kv_array_type(f, i), GGUF_TYPE_STRING);
    assert_int_equal(gguf_kv_array_len(f, i), 32000);
    assert_int_equal(gguf_get_arr_str(f, "tokenizer.ggml.tokens", 0, &p,
                                      &len), ROJ_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(p, "<unk>", 5);
    assert_int_equal(gguf_get_arr_str(f, "tokenizer.ggml.tokens", 32000, &p,
                                      &len), ROJ_ERR_RANGE);
    assert_int_equal(gguf_get_arr_f32(f, "tokenizer.ggml.scores", &scores,
                                      &n), ROJ_OK);
    assert_int_equal(n, 32000);
    assert_true(isfinite(scores[100]));
    free(scores);
    assert_int_equal(gguf_get_arr_i32(f, "tokenizer.ggml.token_type", &types,
                                      &n), ROJ_OK);
    assert_int_equal(n, 32000);
    assert_int_equal(types[0], 2); /* <unk> is the unknown-token type */
    free(types);
    gguf_close(f);
}

static void gguf_vocab_files_open(void **state)
{
    (void)state;
    char rel[256];
    for (size_t k = 0; k < sizeof vocab_files / sizeof vocab_files[0]; k++) {
        snprintf(rel, sizeof rel, "fixtures/tokenizer/ggml-vocab-%s.gguf",
                 vocab_files[k]);
        gguf_file *f = open_fixture(rel);
        int64_t i = gguf_find_key(f, "tokenizer.ggml.tokens");
        assert_int_equal(gguf_n_tensors(f), 0);
        assert_true(i >= 0);
        uint64_t n = gguf_kv_array_len(f, i);
        assert_true(n >= 30000);
        /* Every string of the array is reachable and inside the file. */
        const char *p = NULL;
        uint64_t len = 0;
        assert_int_equal(gguf_get_arr_str(f, "tokenizer.ggml.tokens", n - 1,
                                          &p, &len), ROJ_OK);
        assert_true(len > 0);
        gguf_close(f);
    }
}

static void gguf_vocab_token_counts(void **state)
{
    (void)state;
    gguf_file *f =
        open_fixture("fixtures/tokenizer/ggml-vocab-llama-bpe.gguf");
    const char *p = NULL;
    uint64_t len = 0;
    int64_t i = gguf_find_key(f, "tokenizer.ggml.tokens");
    assert_int_equal(gguf_kv_array_len(f, i), 128256);
    i = gguf_find_key(f, "tokenizer.ggml.merges");
    assert_int_equal(gguf_kv_array_len(f, i), 280147);
    assert_int_equal(gguf_get_arr_str(f, "tokenizer.ggml.tokens", 128000, &p,
                                      &len), ROJ_OK);
    assert_int_equal(len, strlen("<|begin_of_text|>"));
    assert_memory_equal(p, "<|begin_of_text|>", len);
    gguf_close(f);

    f = open_fixture("fixtures/tokenizer/ggml-vocab-qwen2.gguf");
    i = gguf_find_key(f, "tokenizer.ggml.tokens");
    assert_int_equal(gguf_kv_array_len(f, i), 151669);
    gguf_close(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gguf_tiny_f32_header),
        cmocka_unit_test(gguf_tiny_f32_tensors),
        cmocka_unit_test(gguf_tiny_q4_k_m_types),
        cmocka_unit_test(gguf_tiny_vocab_arrays),
        cmocka_unit_test(gguf_vocab_files_open),
        cmocka_unit_test(gguf_vocab_token_counts),
    };
    return test_run_group(tests, NULL, NULL);
}
