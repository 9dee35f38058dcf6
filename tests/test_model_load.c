/*
 * Model loading errors: each broken variant of the tiny model, written by
 * the GGUF writer, is rejected with a message naming what is wrong.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "quant/qtypes.h"
#include "roj/context.h"
#include "roj/model.h"

/* How to change the tiny model when copying it. */
typedef struct variant {
    const char *set_arch;       /* new general.architecture, or NULL */
    const char *drop_key;       /* metadata key to leave out */
    const char *drop_tensor;    /* tensor to leave out */
    const char *retype_tensor;  /* tensor whose type id becomes new_type */
    uint32_t new_type;
    const char *reshape_tensor; /* tensor whose ne[0] is halved */
    const char *set_u32_key;    /* metadata to overwrite */
    uint32_t set_u32_value;
    const char *nan_tensor;     /* F32 tensor whose first value becomes NaN */
} variant;

static const char *write_variant(const variant *v, const char *name)
{
    static char path[4200];
    gguf_file *src = NULL;
    gguf_writer *w = NULL;
    assert_int_equal(
        gguf_open(test_shared_path("fixtures/logits/tiny-f32.gguf"), &src),
        ROJ_OK);
    assert_int_equal(gguf_writer_create(&w), ROJ_OK);
    for (int64_t i = 0; i < gguf_n_kv(src); i++) {
        const char *key = gguf_kv_key(src, i);
        if (v->drop_key && !strcmp(key, v->drop_key))
            continue;
        assert_int_equal(gguf_writer_copy_kv(w, src, i), ROJ_OK);
    }
    if (v->set_arch)
        assert_int_equal(
            gguf_writer_set_str(w, "general.architecture", v->set_arch),
            ROJ_OK);
    if (v->set_u32_key)
        assert_int_equal(
            gguf_writer_set_u32(w, v->set_u32_key, v->set_u32_value), ROJ_OK);
    for (int64_t i = 0; i < gguf_n_tensors(src); i++) {
        const gguf_tensor *t = gguf_tensor_at(src, i);
        int64_t ne[GGUF_MAX_DIMS];
        uint32_t type = t->type;
        uint64_t bytes = t->n_bytes;
        const void *data = t->data;
        memcpy(ne, t->ne, sizeof ne);
        if (v->drop_tensor && !strcmp(t->name, v->drop_tensor))
            continue;
        if (v->retype_tensor && !strcmp(t->name, v->retype_tensor)) {
            /* Keep the byte count valid for the new type: Q2_K blocks of
             * 256 values take 84 bytes, so shrink the data to fit. */
            type = v->new_type;
            bytes = qtype_row_bytes(type, ne[0]) * (uint64_t)ne[1];
        }
        if (v->nan_tensor && !strcmp(t->name, v->nan_tensor)) {
            static float copy[64 * 32000];
            assert_true(bytes <= sizeof copy);
            memcpy(copy, t->data, bytes);
            copy[0] = NAN;
            data = copy;
        }
        if (v->reshape_tensor && !strcmp(t->name, v->reshape_tensor)) {
            ne[0] /= 2;
            bytes /= 2;
        }
        assert_int_equal(gguf_writer_add_tensor(w, t->name, type, t->n_dims,
                                                ne, data, bytes),
                         ROJ_OK);
    }
    snprintf(path, sizeof path, "%s/%s.gguf", test_tmpdir(), name);
    assert_int_equal(gguf_writer_write(w, path), ROJ_OK);
    gguf_writer_free(w);
    gguf_close(src);
    return path;
}

static void expect_error(const variant *v, const char *name,
                         roj_status status, const char *text)
{
    roj_model *model = NULL;
    const char *path = write_variant(v, name);
    roj_status st = roj_model_open(path, &model);
    printf("  %-18s -> %s\n", name, roj_last_error());
    assert_int_equal(st, status);
    assert_null(model);
    if (!strstr(roj_last_error(), text))
        fail_msg("message \"%s\" lacks \"%s\"", roj_last_error(), text);
    assert_non_null(strstr(roj_last_error(), path));
}

static void load_unknown_arch(void **state)
{
    (void)state;
    variant v = {.set_arch = "mamba"};
    expect_error(&v, "arch", ROJ_ERR_UNSUPPORTED, "\"mamba\" is not "
                 "supported (supported: llama, qwen2)");
}

static void load_missing_tensor(void **state)
{
    (void)state;
    variant v = {.drop_tensor = "blk.1.ffn_down.weight"};
    expect_error(&v, "missing", ROJ_ERR_FORMAT,
                 "tensor blk.1.ffn_down.weight is missing");
}

static void load_wrong_shape(void **state)
{
    (void)state;
    variant v = {.reshape_tensor = "blk.0.attn_k.weight"};
    expect_error(&v, "shape", ROJ_ERR_FORMAT,
                 "tensor blk.0.attn_k.weight has shape [32, 32], expected "
                 "[64, 32]");
}

static void load_unsupported_type(void **state)
{
    (void)state;
    variant v = {.retype_tensor = "blk.0.attn_q.weight",
                 .new_type = ROJ_TYPE_IQ4_NL};
    expect_error(&v, "type", ROJ_ERR_UNSUPPORTED,
                 "tensor blk.0.attn_q.weight has type IQ4_NL");
}

static void load_missing_hparam(void **state)
{
    (void)state;
    variant v = {.drop_key = "llama.block_count"};
    expect_error(&v, "hparam", ROJ_ERR_FORMAT,
                 "llama.block_count is missing");
}

static void load_bad_head_count(void **state)
{
    (void)state;
    variant v = {.set_u32_key = "llama.attention.head_count_kv",
                 .set_u32_value = 3};
    expect_error(&v, "heads", ROJ_ERR_FORMAT, "head_count_kv 3");
}

/* NaN weights surface as ROJ_ERR_NUMERIC from roj_decode, not as a
 * sampled token. */
static void decode_nan_weights_fail(void **state)
{
    (void)state;
    variant v = {.nan_tensor = "output.weight"};
    roj_model *model = NULL;
    roj_context *ctx = NULL;
    assert_int_equal(roj_model_open(write_variant(&v, "nan"), &model),
                     ROJ_OK);
    assert_int_equal(roj_context_create(model, NULL, &ctx), ROJ_OK);
    roj_token tokens[2] = {1, 450};
    roj_batch batch = {2, tokens, NULL, NULL};
    assert_int_equal(roj_decode(ctx, &batch), ROJ_ERR_NUMERIC);
    assert_non_null(strstr(roj_last_error(), "non-finite logit"));
    assert_non_null(strstr(roj_last_error(), "token 0"));
    roj_context_free(ctx);
    roj_model_free(model);
}

static void load_vocab_only_file(void **state)
{
    (void)state;
    roj_model *model = NULL;
    roj_status st = roj_model_open(
        test_shared_path("fixtures/tokenizer/ggml-vocab-gpt-2.gguf"), &model);
    assert_int_not_equal(st, ROJ_OK);
    assert_non_null(strstr(roj_last_error(), "token_embd.weight"));
}

static void load_reports_hparams(void **state)
{
    (void)state;
    roj_model *model = NULL;
    assert_int_equal(roj_model_open(
                         test_shared_path("fixtures/logits/tiny-q8_0.gguf"),
                         &model),
                     ROJ_OK);
    assert_string_equal(roj_model_arch(model), "llama");
    assert_int_equal(roj_model_n_vocab(model), 32000);
    assert_int_equal(roj_model_n_embd(model), 64);
    assert_int_equal(roj_model_n_layer(model), 2);
    assert_int_equal(roj_model_n_head(model), 4);
    assert_int_equal(roj_model_n_head_kv(model), 2);
    assert_int_equal(roj_model_n_ctx_train(model), 512);
    assert_int_equal(roj_model_n_params(model), 4170048);
    assert_string_equal(roj_model_meta_str(model, "general.name"),
                        "synthetic-tiny");
    assert_null(roj_model_meta_str(model, "no.such.key"));
    roj_model_free(model);
}

int main(void)
{
    test_require_shared("fixtures/logits/tiny-f32.gguf");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(load_unknown_arch),
        cmocka_unit_test(load_missing_tensor),
        cmocka_unit_test(load_wrong_shape),
        cmocka_unit_test(load_unsupported_type),
        cmocka_unit_test(load_missing_hparam),
        cmocka_unit_test(load_bad_head_count),
        cmocka_unit_test(load_vocab_only_file),
        cmocka_unit_test(decode_nan_weights_fail),
        cmocka_unit_test(load_reports_hparams),
    };
    return test_run_group(tests, NULL, NULL);
}
