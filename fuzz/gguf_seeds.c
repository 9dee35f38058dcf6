/*
 * Writes small GGUF seed files for the fuzz targets: usage
 *   gguf_seeds OUT_DIR [FILE.gguf ...]
 * Each input is copied with its arrays cut to their first 16 elements and
 * only its tensors of at most 4 KiB, so the seeds stay a few KiB while
 * keeping real keys and layouts. One synthetic file with every value type
 * and several tensor types is always written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf_internal.h"
#include "quant/qtypes.h"

#define SEED_ARRAY_MAX 16
#define SEED_TENSOR_MAX_BYTES 4096

static roj_status copy_short_array(gguf_writer *w, const gguf_file *f,
                                   int64_t i)
{
    const char *key = gguf_kv_key(f, i);
    uint64_t n = gguf_kv_array_len(f, i);
    enum gguf_type type = gguf_kv_array_type(f, i);
    const void *raw = NULL;
    uint64_t count = 0;

    if (n > SEED_ARRAY_MAX)
        n = SEED_ARRAY_MAX;
    if (type == GGUF_TYPE_STRING) {
        char *strs[SEED_ARRAY_MAX] = {0};
        roj_status st = ROJ_OK;
        for (uint64_t k = 0; k < n && st == ROJ_OK; k++) {
            const char *p = NULL;
            uint64_t len = 0;
            st = gguf_get_arr_str(f, key, k, &p, &len);
            if (st == ROJ_OK && !(strs[k] = strndup(p, (size_t)len)))
                st = ROJ_ERR_NOMEM;
        }
        if (st == ROJ_OK)
            st = gguf_writer_set_arr_str(w, key, (const char *const *)strs,
                                         n);
        for (uint64_t k = 0; k < n; k++)
            free(strs[k]);
        return st;
    }
    if (gguf_type_size(type) == 0)
        return ROJ_OK; /* nested arrays are not copied */
    roj_status st = gguf_kv_array_data(f, i, &raw, &count);
    if (st != ROJ_OK)
        return st;
    return gguf_writer_set_arr(w, key, type, raw, n);
}

static roj_status shrink(const char *in, const char *out)
{
    gguf_file *f = NULL;
    gguf_writer *w = NULL;
    roj_status st = gguf_open(in, &f);
    if (st != ROJ_OK)
        return st;
    if ((st = gguf_writer_create(&w)) != ROJ_OK)
        goto close_file;
    for (int64_t i = 0; i < gguf_n_kv(f) && st == ROJ_OK; i++) {
        if (gguf_kv_type(f, i) == GGUF_TYPE_ARRAY)
            st = copy_short_array(w, f, i);
        else
            st = gguf_writer_copy_kv(w, f, i);
    }
    for (int64_t i = 0; i < gguf_n_tensors(f) && st == ROJ_OK; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (t->n_bytes <= SEED_TENSOR_MAX_BYTES)
            st = gguf_writer_add_tensor(w, t->name, t->type, t->n_dims,
                                        t->ne, t->data, t->n_bytes);
    }
    if (st == ROJ_OK)
        st = gguf_writer_write(w, out);
    gguf_writer_free(w);
close_file:
    gguf_close(f);
    return st;
}

static roj_status write_synthetic(const char *out)
{
    static uint8_t data[1024];
    const int32_t ints[] = {1, -2, 3};
    const float floats[] = {0.5f, -0.25f};
    const char *const strs[] = {"<s>", "</s>", "a b"};
    gguf_writer *w = NULL;
    roj_status st = gguf_writer_create(&w);
    if (st != ROJ_OK)
        return st;
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7);
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_u8(w, "s.u8", 1);
    gguf_writer_set_i8(w, "s.i8", -1);
    gguf_writer_set_u16(w, "s.u16", 2);
    gguf_writer_set_i16(w, "s.i16", -2);
    gguf_writer_set_u32(w, "s.u32", 3);
    gguf_writer_set_i32(w, "s.i32", -3);
    gguf_writer_set_u64(w, "s.u64", 4);
    gguf_writer_set_i64(w, "s.i64", -4);
    gguf_writer_set_f32(w, "s.f32", 1.5f);
    gguf_writer_set_f64(w, "s.f64", 2.5);
    gguf_writer_set_bool(w, "s.bool", true);
    gguf_writer_set_arr(w, "s.ints", GGUF_TYPE_INT32, ints, 3);
    gguf_writer_set_arr(w, "s.floats", GGUF_TYPE_FLOAT32, floats, 2);
    gguf_writer_set_arr_str(w, "s.strs", strs, 3);
    gguf_writer_set_alignment(w, 64);
    gguf_writer_add_tensor(w, "t.f32", ROJ_TYPE_F32, 2, (int64_t[]){4, 2},
                           data, 32);
    gguf_writer_add_tensor(w, "t.q8_0", ROJ_TYPE_Q8_0, 1, (int64_t[]){64},
                           data, 68);
    gguf_writer_add_tensor(w, "t.q4_k", ROJ_TYPE_Q4_K, 1, (int64_t[]){256},
                           data, 144);
    st = gguf_writer_write(w, out);
    gguf_writer_free(w);
    return st;
}

int main(int argc, char **argv)
{
    char out[4096];
    int failed = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: gguf_seeds OUT_DIR [FILE.gguf ...]\n");
        return 2;
    }
    snprintf(out, sizeof out, "%s/synthetic.gguf", argv[1]);
    if (write_synthetic(out) != ROJ_OK) {
        fprintf(stderr, "gguf_seeds: %s\n", roj_last_error());
        failed = 1;
    }
    for (int i = 2; i < argc; i++) {
        const char *base = strrchr(argv[i], '/');
        snprintf(out, sizeof out, "%s/%s", argv[1], base ? base + 1 : argv[i]);
        if (shrink(argv[i], out) != ROJ_OK) {
            fprintf(stderr, "gguf_seeds: %s\n", roj_last_error());
            failed = 1;
        }
    }
    return failed;
}
