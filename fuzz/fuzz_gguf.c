/* libFuzzer target for the GGUF reader: opens the input as a GGUF file and,
 * when it opens, reads every key, array element and tensor through the
 * public accessors so the sanitizers see any read outside the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink;

static void touch(const void *p, uint64_t n)
{
    const uint8_t *b = p;
    if (n > 0)
        sink += (uint64_t)b[0] + b[n - 1];
}

static void read_kv(const gguf_file *f, int64_t i)
{
    const char *key = gguf_kv_key(f, i);
    const char *s = NULL;
    size_t len = 0;
    uint64_t u = 0, n = 0, slen = 0;
    int64_t v = 0;
    double d = 0;
    float x = 0;
    uint32_t u32 = 0;
    int32_t i32 = 0;
    bool b = false;
    const void *raw = NULL;
    float *fv = NULL;
    int32_t *iv = NULL;

    sink += strlen(key) + gguf_kv_type(f, i) + gguf_kv_array_type(f, i);
    if (gguf_find_key(f, key) != i)
        abort(); /* keys are unique, so the lookup must find this entry */
    if (gguf_kv_u64(f, i, &u) == ROJ_OK)
        sink += u;
    if (gguf_kv_i64(f, i, &v) == ROJ_OK)
        sink += (uint64_t)v;
    if (gguf_kv_f64(f, i, &d) == ROJ_OK)
        sink += (uint64_t)(d == d);
    if (gguf_kv_str(f, i, &s, &len) == ROJ_OK)
        touch(s, len + 1);
    gguf_get_u32(f, key, &u32);
    gguf_get_i32(f, key, &i32);
    gguf_get_u64(f, key, &u);
    gguf_get_f32(f, key, &x);
    gguf_get_bool(f, key, &b);
    gguf_get_str(f, key, &s, &len);
    if (gguf_get_arr_f32(f, key, &fv, &n) == ROJ_OK) {
        touch(fv, n * sizeof *fv);
        free(fv);
    }
    if (gguf_get_arr_i32(f, key, &iv, &n) == ROJ_OK) {
        touch(iv, n * sizeof *iv);
        free(iv);
    }
    if (gguf_kv_array_data(f, i, &raw, &n) == ROJ_OK)
        sink += n + (raw != NULL);
    n = gguf_kv_array_len(f, i);
    for (uint64_t k = 0; k < n; k++) {
        if (gguf_get_arr_str(f, key, k, &s, &slen) != ROJ_OK)
            break;
        touch(s, slen);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gguf_file *f = NULL;
    if (gguf_open_memory(data, size, "fuzz.gguf", &f) != ROJ_OK)
        return 0;
    sink += gguf_version(f) + gguf_alignment(f) + gguf_data_offset(f) +
            gguf_file_size(f);
    for (int64_t i = 0; i < gguf_n_kv(f); i++)
        read_kv(f, i);
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (gguf_find_tensor(f, t->name) != t)
            abort(); /* tensor names are unique */
        touch(t->data, t->n_bytes);
        sink += t->n_elements + (uint64_t)t->ne[0];
    }
    gguf_close(f);
    return 0;
}
