/* GGUF writer: round trips of every value type, arrays and tensors through
 * a file, and the writer's own input checks. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gguf/gguf.h"
#include "quant/qtypes.h"

static const char *tmp_path(const char *name)
{
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
    return path;
}

static gguf_file *write_and_open(gguf_writer *w, const char *name)
{
    gguf_file *f = NULL;
    const char *path = tmp_path(name);
    if (gguf_writer_write(w, path) != ROJ_OK)
        fail_msg("gguf_writer_write: %s", roj_last_error());
    if (gguf_open(path, &f) != ROJ_OK)
        fail_msg("gguf_open: %s", roj_last_error());
    return f;
}

static void gguf_write_scalars(void **state)
{
    (void)state;
    gguf_writer *w = NULL;
    assert_int_equal(gguf_writer_create(&w), ROJ_OK);
    assert_int_equal(gguf_writer_set_u8(w, "t.u8", 200), ROJ_OK);
    assert_int_equal(gguf_writer_set_i8(w, "t.i8", -100), ROJ_OK);
    assert_int_equal(gguf_writer_set_u16(w, "t.u16", 60000), ROJ_OK);
    assert_int_equal(gguf_writer_set_i16(w, "t.i16", -30000), ROJ_OK);
    assert_int_equal(gguf_writer_set_u32(w, "t.u32", 4000000000u), ROJ_OK);
    assert_int_equal(gguf_writer_set_i32(w, "t.i32", -2000000000), ROJ_OK);
    assert_int_equal(gguf_writer_set_u64(w, "t.u64", UINT64_MAX), ROJ_OK);
    assert_int_equal(gguf_writer_set_i64(w, "t.i64", INT64_MIN), ROJ_OK);
    assert_int_equal(gguf_writer_set_f32(w, "t.f32", 1.5f), ROJ_OK);
    assert_int_equal(gguf_writer_set_f64(w, "t.f64", 1e300), ROJ_OK);
    assert_int_equal(gguf_writer_set_bool(w, "t.bool", true), ROJ_OK);
    assert_int_equal(gguf_writer_set_str(w, "t.str", "héllo"), ROJ_OK);
    assert_int_equal(gguf_writer_set_str(w, "t.empty", ""), ROJ_OK);

    gguf_file *f = write_and_open(w, "scalars.gguf");
    uint32_t u32 = 0;
    int32_t i32 = 0;
    uint64_t u64 = 0;
    int64_t i64 = 0;
    float f32 = 0;
    double f64 = 0;
    bool b = false;
    const char *s = NULL;
    size_t len = 99;

    assert_int_equal(gguf_version(f), 3);
    assert_int_equal(gguf_n_kv(f), 13);
    assert_int_equal(gguf_n_tensors(f), 0);
    assert_string_equal(gguf_kv_key(f, 0), "t.u8");
    assert_int_equal(gguf_kv_type(f, 0), GGUF_TYPE_UINT8);
    assert_int_equal(gguf_kv_type(f, 12), GGUF_TYPE_STRING);
    assert_int_equal(gguf_get_u32(f, "t.u8", &u32), ROJ_OK);
    assert_int_equal(u32, 200);
    assert_int_equal(gguf_get_i32(f, "t.i8", &i32), ROJ_OK);
    assert_int_equal(i32, -100);
    assert_int_equal(gguf_get_u32(f, "t.u16", &u32), ROJ_OK);
    assert_int_equal(u32, 60000);
    assert_int_equal(gguf_get_i32(f, "t.i16", &i32), ROJ_OK);
    assert_int_equal(i32, -30000);
    assert_int_equal(gguf_get_u32(f, "t.u32", &u32), ROJ_OK);
    assert_int_equal(u32, 4000000000u);
    assert_int_equal(gguf_get_i32(f, "t.i32", &i32), ROJ_OK);
    assert_int_equal(i32, -2000000000);
    assert_int_equal(gguf_get_u64(f, "t.u64", &u64), ROJ_OK);
    assert_true(u64 == UINT64_MAX);
    assert_int_equal(gguf_kv_i64(f, gguf_find_key(f, "t.i64"), &i64),
                     ROJ_OK);
    assert_true(i64 == INT64_MIN);
    assert_int_equal(gguf_get_f32(f, "t.f32", &f32), ROJ_OK);
    assert_true(f32 == 1.5f);
    assert_int_equal(gguf_kv_f64(f, gguf_find_key(f, "t.f64"), &f64),
                     ROJ_OK);
    assert_true(f64 == 1e300);
    assert_int_equal(gguf_get_bool(f, "t.bool", &b), ROJ_OK);
    assert_true(b);
    assert_int_equal(gguf_get_str(f, "t.str", &s, &len), ROJ_OK);
    assert_string_equal(s, "héllo");
    assert_int_equal(len, strlen("héllo"));
    assert_int_equal(gguf_get_str(f, "t.empty", &s, &len), ROJ_OK);
    assert_int_equal(len, 0);
    assert_string_equal(s, "");

    /* Conversions that lose the value are rejected. */
    assert_int_equal(gguf_get_u32(f, "t.i8", &u32), ROJ_ERR_RANGE);
    assert_non_null(strstr(roj_last_error(), "does not fit in uint32"));
    assert_int_equal(gguf_get_i32(f, "t.u32", &i32), ROJ_ERR_RANGE);
    assert_int_equal(gguf_get_u64(f, "t.i64", &u64), ROJ_ERR_RANGE);
    assert_int_equal(gguf_get_u32(f, "t.f32", &u32), ROJ_ERR_FORMAT);
    assert_non_null(strstr(roj_last_error(), "'t.f32' has type float32"));
    assert_int_equal(gguf_get_f32(f, "t.u32", &f32), ROJ_ERR_FORMAT);
    assert_int_equal(gguf_get_bool(f, "t.u8", &b), ROJ_ERR_FORMAT);
    assert_int_equal(gguf_get_str(f, "t.u8", &s, &len), ROJ_ERR_FORMAT);
    assert_non_null(strstr(roj_last_error(), "has type uint8, expected "
                                             "string"));
    gguf_close(f);
    gguf_writer_free(w);
}

static void gguf_write_arrays(void **state)
{
    (void)state;
    const uint8_t u8[] = {0, 1, 255};
    const int16_t i16[] = {-32768, 0, 32767};
    const int32_t i32[] = {-7, 0, 7, 1 << 30};
    const uint64_t u64[] = {1, (uint64_t)1 << 40};
    const float f32[] = {0.25f, -1e-8f, 3e38f};
    const double f64[] = {0.5, 1e300};
    const uint8_t bools[] = {1, 0, 1};
    const char *const strs[] = {"a", "", "ccc", "\xe2\x9c\x93"};
    gguf_writer *w = NULL;

    assert_int_equal(gguf_writer_create(&w), ROJ_OK);
    assert_int_equal(gguf_writer_set_arr(w, "a.u8", GGUF_TYPE_UINT8, u8, 3),
                     ROJ_OK);
    assert_int_equal(gguf_writer_set_arr(w, "a.i16", GGUF_TYPE_INT16, i16,
                                         3), ROJ_OK);
    assert_int_equal(gguf_writer_set_arr(w, "a.i32", GGUF_TYPE_INT32, i32,
                                         4), ROJ_OK);
    assert_int_equal(gguf_writer_set_arr(w, "a.u64", GGUF_TYPE_UINT64, u64,
                                         2), ROJ_OK);
    assert_int_equal(gguf_writer_set_arr(w, "a.f32", GGUF_TYPE_FLOAT32, f32,
                                         3), ROJ_OK);
    assert_int_equal(gguf_writer_set_arr(w, "a.f64", GGUF_TYPE_FLOAT64, f64,
                                         2), ROJ_OK);
    assert_int_equal(gguf_writer_set_arr(w, "a.bool", GGUF_TYPE_BOOL, bools,
                                         3), ROJ_OK);
    assert_int_equal(gguf_writer_set_arr(w, "a.empty", GGUF_TYPE_INT32, NULL,
                                         0), ROJ_OK);
    assert_int_equal(gguf_writer_set_arr_str(w, "a.str", strs, 4), ROJ_OK);

    gguf_file *f = write_and_open(w, "arrays.gguf");
    int32_t *iv = NULL;
    float *fv = NULL;
    uint64_t n = 0, len = 0;
    const char *p = NULL;
    const void *raw = NULL;

    assert_int_equal(gguf_get_arr_i32(f, "a.u8", &iv, &n), ROJ_OK);
    assert_int_equal(n, 3);
    assert_int_equal(iv[2], 255);
    free(iv);
    assert_int_equal(gguf_get_arr_i32(f, "a.i16", &iv, &n), ROJ_OK);
    assert_int_equal(iv[0], -32768);
    assert_int_equal(iv[2], 32767);
    free(iv);
    assert_int_equal(gguf_get_arr_i32(f, "a.i32", &iv, &n), ROJ_OK);
    assert_int_equal(n, 4);
    assert_memory_equal(iv, i32, sizeof i32);
    free(iv);
    assert_int_equal(gguf_get_arr_i32(f, "a.u64", &iv, &n), ROJ_ERR_RANGE);
    assert_non_null(strstr(roj_last_error(), "element 1 value 1099511627776"));
    assert_int_equal(gguf_get_arr_f32(f, "a.f32", &fv, &n), ROJ_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(fv, f32, sizeof f32);
    free(fv);
    /* 0.5 converts exactly, 1e300 does not. */
    assert_int_equal(gguf_get_arr_f32(f, "a.f64", &fv, &n), ROJ_ERR_RANGE);
    assert_non_null(strstr(roj_last_error(), "element 1"));
    assert_int_equal(gguf_get_arr_f32(f, "a.i32", &fv, &n), ROJ_ERR_FORMAT);
    assert_non_null(strstr(roj_last_error(), "'a.i32' has type array of "
                                             "int32"));
    assert_int_equal(gguf_get_arr_i32(f, "a.empty", &iv, &n), ROJ_OK);
    assert_int_equal(n, 0);
    free(iv);

    int64_t bi = gguf_find_key(f, "a.bool");
    assert_int_equal(gguf_kv_array_type(f, bi), GGUF_TYPE_BOOL);
    assert_int_equal(gguf_kv_array_data(f, bi, &raw, &n), ROJ_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(raw, bools, 3);

    int64_t si = gguf_find_key(f, "a.str");
    assert_int_equal(gguf_kv_array_type(f, si), GGUF_TYPE_STRING);
    assert_int_equal(gguf_kv_array_len(f, si), 4);
    for (uint64_t i = 0; i < 4; i++) {
        assert_int_equal(gguf_get_arr_str(f, "a.str", i, &p, &len), ROJ_OK);
        assert_int_equal(len, strlen(strs[i]));
        assert_memory_equal(p, strs[i], len);
    }
    assert_int_equal(gguf_get_arr_str(f, "a.i32", 0, &p, &len),
                     ROJ_ERR_FORMAT);
    assert_int_equal(gguf_get_arr_str(f, "a.str", 4, &p, &len),
                     ROJ_ERR_RANGE);
    gguf_close(f);
    gguf_writer_free(w);
}

static void gguf_write_tensors(void **state)
{
    (void)state;
    uint64_t seed = 42;
    float f32[3 * 5];
    uint16_t f16[64];
    uint8_t q4_0[2 * 3 * 18];
    uint8_t q4_k[144 * 2];
    uint8_t q8_0[34];
    for (size_t i = 0; i < sizeof f32 / sizeof f32[0]; i++)
        f32[i] = test_rand_float(&seed, -1, 1);
    for (size_t i = 0; i < 64; i++)
        f16[i] = (uint16_t)test_rand_u64(&seed);
    for (size_t i = 0; i < sizeof q4_0; i++)
        q4_0[i] = (uint8_t)test_rand_u64(&seed);
    for (size_t i = 0; i < sizeof q4_k; i++)
        q4_k[i] = (uint8_t)test_rand_u64(&seed);
    for (size_t i = 0; i < sizeof q8_0; i++)
        q8_0[i] = (uint8_t)test_rand_u64(&seed);

    gguf_writer *w = NULL;
    assert_int_equal(gguf_writer_create(&w), ROJ_OK);
    assert_int_equal(gguf_writer_set_str(w, "general.architecture", "llama"),
                     ROJ_OK);
    assert_int_equal(gguf_writer_add_tensor(w, "a.f32", ROJ_TYPE_F32, 2,
                                            (int64_t[]){3, 5}, f32,
                                            sizeof f32), ROJ_OK);
    assert_int_equal(gguf_writer_add_tensor(w, "b.f16", ROJ_TYPE_F16, 1,
                                            (int64_t[]){64}, f16,
                                            sizeof f16), ROJ_OK);
    assert_int_equal(gguf_writer_add_tensor(w, "c.q4_0", ROJ_TYPE_Q4_0, 3,
                                            (int64_t[]){64, 1, 3}, q4_0,
                                            sizeof q4_0), ROJ_OK);
    assert_int_equal(gguf_writer_add_tensor(w, "d.q4_k", ROJ_TYPE_Q4_K, 4,
                                            (int64_t[]){256, 1, 2, 1}, q4_k,
                                            sizeof q4_k), ROJ_OK);
    assert_int_equal(gguf_writer_add_tensor(w, "e.q8_0", ROJ_TYPE_Q8_0, 1,
                                            (int64_t[]){32}, q8_0,
                                            sizeof q8_0), ROJ_OK);

    /* Alignment 32 (the default), then 64 set explicitly. */
    for (int pass = 0; pass < 2; pass++) {
        uint64_t alignment = pass == 0 ? 32 : 64;
        if (pass == 1)
            assert_int_equal(gguf_writer_set_alignment(w, 64), ROJ_OK);
        gguf_file *f = write_and_open(w, "tensors.gguf");
        assert_int_equal(gguf_alignment(f), alignment);
        assert_int_equal(gguf_data_offset(f) % alignment, 0);
        assert_int_equal(gguf_n_tensors(f), 5);

        const gguf_tensor *t = gguf_tensor_at(f, 0);
        assert_string_equal(t->name, "a.f32");
        assert_int_equal(t->n_dims, 2);
        assert_int_equal(t->ne[0], 3);
        assert_int_equal(t->ne[1], 5);
        assert_int_equal(t->ne[2], 1);
        assert_int_equal(t->n_elements, 15);
        assert_memory_equal(t->data, f32, sizeof f32);

        t = gguf_find_tensor(f, "b.f16");
        assert_int_equal(t->type, ROJ_TYPE_F16);
        assert_memory_equal(t->data, f16, sizeof f16);
        t = gguf_find_tensor(f, "c.q4_0");
        assert_int_equal(t->n_dims, 3);
        assert_int_equal(t->ne[2], 3);
        assert_int_equal(t->n_bytes, sizeof q4_0);
        assert_memory_equal(t->data, q4_0, sizeof q4_0);
        t = gguf_find_tensor(f, "d.q4_k");
        assert_int_equal(t->n_dims, 4);
        assert_int_equal(t->n_elements, 512);
        assert_memory_equal(t->data, q4_k, sizeof q4_k);
        t = gguf_find_tensor(f, "e.q8_0");
        assert_memory_equal(t->data, q8_0, sizeof q8_0);
        for (int64_t i = 0; i < 5; i++)
            assert_int_equal(gguf_tensor_at(f, i)->offset % alignment, 0);
        gguf_close(f);
    }

    struct stat st;
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", tmp_path("tensors.gguf"));
    assert_int_not_equal(stat(tmp, &st), 0);
    gguf_writer_free(w);
}

static void gguf_write_replace_remove(void **state)
{
    (void)state;
    gguf_writer *w = NULL;
    uint32_t u = 0;
    const char *s = NULL;

    assert_int_equal(gguf_writer_create(&w), ROJ_OK);
    assert_int_equal(gguf_writer_set_u32(w, "k.first", 1), ROJ_OK);
    assert_int_equal(gguf_writer_set_u32(w, "k.second", 2), ROJ_OK);
    assert_int_equal(gguf_writer_set_u32(w, "k.third", 3), ROJ_OK);
    /* Replacing keeps the position even when the type changes. */
    assert_int_equal(gguf_writer_set_str(w, "k.first", "one"), ROJ_OK);
    assert_int_equal(gguf_writer_remove_key(w, "k.second"), ROJ_OK);
    assert_int_equal(gguf_writer_remove_key(w, "k.second"),
                     ROJ_ERR_NOT_FOUND);

    gguf_file *f = write_and_open(w, "replace.gguf");
    assert_int_equal(gguf_n_kv(f), 2);
    assert_string_equal(gguf_kv_key(f, 0), "k.first");
    assert_string_equal(gguf_kv_key(f, 1), "k.third");
    assert_int_equal(gguf_get_str(f, "k.first", &s, NULL), ROJ_OK);
    assert_string_equal(s, "one");
    assert_int_equal(gguf_get_u32(f, "k.third", &u), ROJ_OK);
    assert_int_equal(u, 3);
    gguf_close(f);
    gguf_writer_free(w);
}

/* Copying every key of a tokenizer fixture gives identical metadata. */
static void gguf_write_copy_vocab(void **state)
{
    (void)state;
    gguf_file *src = NULL;
    gguf_writer *w = NULL;
    assert_int_equal(gguf_open(test_shared_path(
        "fixtures/tokenizer/ggml-vocab-llama-spm.gguf"), &src), ROJ_OK);
    assert_int_equal(gguf_writer_create(&w), ROJ_OK);
    for (int64_t i = 0; i < gguf_n_kv(src); i++)
        assert_int_equal(gguf_writer_copy_kv(w, src, i), ROJ_OK);

    gguf_file *f = write_and_open(w, "copy.gguf");
    assert_int_equal(gguf_n_kv(f), gguf_n_kv(src));
    for (int64_t i = 0; i < gguf_n_kv(src); i++) {
        const void *a = NULL, *b = NULL;
        uint64_t na = 0, nb = 0;
        assert_string_equal(gguf_kv_key(f, i), gguf_kv_key(src, i));
        assert_int_equal(gguf_kv_type(f, i), gguf_kv_type(src, i));
        if (gguf_kv_type(src, i) != GGUF_TYPE_ARRAY)
            continue;
        assert_int_equal(gguf_kv_array_data(src, i, &a, &na), ROJ_OK);
        assert_int_equal(gguf_kv_array_data(f, i, &b, &nb), ROJ_OK);
        assert_int_equal(na, nb);
    }
    const char *p = NULL;
    uint64_t len = 0;
    assert_int_equal(gguf_get_arr_str(f, "tokenizer.ggml.tokens", 31999, &p,
                                      &len), ROJ_OK);
    const char *q = NULL;
    uint64_t qlen = 0;
    assert_int_equal(gguf_get_arr_str(src, "tokenizer.ggml.tokens", 31999, &q,
                                      &qlen), ROJ_OK);
    assert_int_equal(len, qlen);
    assert_memory_equal(p, q, len);
    gguf_close(f);
    gguf_close(src);
    gguf_writer_free(w);
}

static void gguf_write_rejects_bad_input(void **state)
{
    (void)state;
    gguf_writer *w = NULL;
    float data[64] = {0};
    uint8_t bad_bools[] = {0, 2};

    assert_int_equal(gguf_writer_create(&w), ROJ_OK);
    assert_int_equal(gguf_writer_add_tensor(w, "w", ROJ_TYPE_F32, 1,
                                            (int64_t[]){64}, data, 255),
                     ROJ_ERR_INVALID_ARG);
    assert_non_null(strstr(roj_last_error(), "n_bytes 255 does not match "
                                             "the 256 bytes"));
    assert_int_equal(gguf_writer_add_tensor(w, "w", ROJ_TYPE_F32, 1,
                                            (int64_t[]){64}, data, 256),
                     ROJ_OK);
    assert_int_equal(gguf_writer_add_tensor(w, "w", ROJ_TYPE_F32, 1,
                                            (int64_t[]){64}, data, 256),
                     ROJ_ERR_INVALID_ARG);
    assert_non_null(strstr(roj_last_error(), "duplicate tensor name 'w'"));
    assert_int_equal(gguf_writer_add_tensor(w, "q", ROJ_TYPE_Q4_0, 1,
                                            (int64_t[]){48}, data, 27),
                     ROJ_ERR_INVALID_ARG);
    assert_non_null(strstr(roj_last_error(), "not a multiple of the block "
                                             "size 32"));
    assert_int_equal(gguf_writer_add_tensor(w, "x", 99, 1, (int64_t[]){4},
                                            data, 16), ROJ_ERR_INVALID_ARG);
    assert_non_null(strstr(roj_last_error(), "unknown type id 99"));
    assert_int_equal(gguf_writer_add_tensor(w, "y", ROJ_TYPE_F32, 5,
                                            (int64_t[]){1, 1, 1, 1, 1}, data,
                                            4), ROJ_ERR_INVALID_ARG);
    assert_int_equal(gguf_writer_add_tensor(w, "z", ROJ_TYPE_F32, 2,
                                            (int64_t[]){4, 0}, data, 0),
                     ROJ_ERR_INVALID_ARG);
    assert_int_equal(gguf_writer_set_alignment(w, 48), ROJ_ERR_INVALID_ARG);
    assert_int_equal(gguf_writer_set_alignment(w, 0), ROJ_ERR_INVALID_ARG);
    assert_int_equal(gguf_writer_set_u32(w, "", 1), ROJ_ERR_INVALID_ARG);
    assert_int_equal(gguf_writer_set_arr(w, "a", GGUF_TYPE_STRING, data, 1),
                     ROJ_ERR_INVALID_ARG);
    assert_int_equal(gguf_writer_set_arr(w, "a", GGUF_TYPE_BOOL, bad_bools,
                                         2), ROJ_ERR_INVALID_ARG);
    /* A general.alignment of the wrong type is caught at write time. */
    assert_int_equal(gguf_writer_set_u64(w, "general.alignment", 64),
                     ROJ_OK);
    assert_int_equal(gguf_writer_write(w, tmp_path("bad.gguf")),
                     ROJ_ERR_INVALID_ARG);
    assert_non_null(strstr(roj_last_error(), "general.alignment has type "
                                             "uint64"));
    gguf_writer_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gguf_write_scalars),
        cmocka_unit_test(gguf_write_arrays),
        cmocka_unit_test(gguf_write_tensors),
        cmocka_unit_test(gguf_write_replace_remove),
        cmocka_unit_test(gguf_write_copy_vocab),
        cmocka_unit_test(gguf_write_rejects_bad_input),
    };
    return test_run_group(tests, NULL, NULL);
}
