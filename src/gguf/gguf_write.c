/*
 * GGUF writer: collects metadata values (stored already encoded) and tensor
 * descriptions, then writes a version 3 file through a temporary file that
 * is synced and renamed over the target.
 */
#include "gguf/gguf_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "quant/qtypes.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf_write.c copies array elements and tensors as little-endian"
#endif

typedef unsigned long long ull;

struct writer_kv {
    char *key;
    uint32_t type;
    uint8_t *value;       /* encoded as in the file, after the type field */
    uint64_t size;        /* bytes of value */
};

struct writer_tensor {
    char *name;
    uint32_t type;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    const void *data;     /* borrowed from the caller */
    uint64_t n_bytes;
};

struct gguf_writer {
    struct writer_kv *kvs;
    int64_t n_kv;
    int64_t cap_kv;
    struct writer_tensor *tensors;
    int64_t n_tensors;
    int64_t cap_tensors;
};

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

roj_status gguf_writer_create(gguf_writer **out)
{
    if (!out)
        return roj_error(ROJ_ERR_INVALID_ARG, "gguf_writer_create: NULL out");
    *out = calloc(1, sizeof **out);
    if (!*out)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for a GGUF writer");
    return ROJ_OK;
}

void gguf_writer_free(gguf_writer *w)
{
    if (!w)
        return;
    for (int64_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].value);
    }
    for (int64_t i = 0; i < w->n_tensors; i++)
        free(w->tensors[i].name);
    free(w->kvs);
    free(w->tensors);
    free(w);
}

static int64_t writer_find_key(const gguf_writer *w, const char *key)
{
    for (int64_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kvs[i].key, key) == 0)
            return i;
    return -1;
}

static roj_status check_key(const char *key)
{
    if (!key || !*key)
        return roj_error(ROJ_ERR_INVALID_ARG, "GGUF key is NULL or empty");
    if (strlen(key) > GGUF_MAX_KEY_LEN)
        return roj_error(ROJ_ERR_INVALID_ARG, "GGUF key of %zu bytes exceeds "
                         "the maximum of %d", strlen(key), GGUF_MAX_KEY_LEN);
    return ROJ_OK;
}

/* Stores an encoded value under key, taking ownership of value (freed on
 * failure too). */
static roj_status writer_put(gguf_writer *w, const char *key, uint32_t type,
                             uint8_t *value, uint64_t size)
{
    roj_status st = check_key(key);
    if (st != ROJ_OK) {
        free(value);
        return st;
    }
    int64_t i = writer_find_key(w, key);
    if (i >= 0) {
        free(w->kvs[i].value);
        w->kvs[i].type = type;
        w->kvs[i].value = value;
        w->kvs[i].size = size;
        return ROJ_OK;
    }
    if (w->n_kv == w->cap_kv) {
        int64_t cap = w->cap_kv ? w->cap_kv * 2 : 16;
        struct writer_kv *kvs = realloc(w->kvs, (size_t)cap * sizeof *kvs);
        if (!kvs) {
            free(value);
            return roj_error(ROJ_ERR_NOMEM, "out of memory for key '%s'",
                             key);
        }
        w->kvs = kvs;
        w->cap_kv = cap;
    }
    char *copy = strdup(key);
    if (!copy) {
        free(value);
        return roj_error(ROJ_ERR_NOMEM, "out of memory for key '%s'", key);
    }
    w->kvs[w->n_kv++] = (struct writer_kv){copy, type, value, size};
    return ROJ_OK;
}

/* Copies size bytes into a new buffer (at least one byte is allocated). */
static roj_status put_copy(gguf_writer *w, const char *key, uint32_t type,
                           const void *bytes, uint64_t size)
{
    if (!w)
        return roj_error(ROJ_ERR_INVALID_ARG, "GGUF writer is NULL");
    uint8_t *value = malloc(size ? (size_t)size : 1);
    if (!value)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for key '%s'",
                         key ? key : "(null)");
    memcpy(value, bytes, (size_t)size);
    return writer_put(w, key, type, value, size);
}

roj_status gguf_writer_set_u8(gguf_writer *w, const char *key, uint8_t v)
{
    return put_copy(w, key, GGUF_TYPE_UINT8, &v, 1);
}

roj_status gguf_writer_set_i8(gguf_writer *w, const char *key, int8_t v)
{
    return put_copy(w, key, GGUF_TYPE_INT8, &v, 1);
}

roj_status gguf_writer_set_u16(gguf_writer *w, const char *key, uint16_t v)
{
    return put_copy(w, key, GGUF_TYPE_UINT16, &v, 2);
}

roj_status gguf_writer_set_i16(gguf_writer *w, const char *key, int16_t v)
{
    return put_copy(w, key, GGUF_TYPE_INT16, &v, 2);
}

roj_status gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v)
{
    return put_copy(w, key, GGUF_TYPE_UINT32, &v, 4);
}

roj_status gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v)
{
    return put_copy(w, key, GGUF_TYPE_INT32, &v, 4);
}

roj_status gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v)
{
    return put_copy(w, key, GGUF_TYPE_UINT64, &v, 8);
}

roj_status gguf_writer_set_i64(gguf_writer *w, const char *key, int64_t v)
{
    return put_copy(w, key, GGUF_TYPE_INT64, &v, 8);
}

roj_status gguf_writer_set_f32(gguf_writer *w, const char *key, float v)
{
    return put_copy(w, key, GGUF_TYPE_FLOAT32, &v, 4);
}

roj_status gguf_writer_set_f64(gguf_writer *w, const char *key, double v)
{
    return put_copy(w, key, GGUF_TYPE_FLOAT64, &v, 8);
}

roj_status gguf_writer_set_bool(gguf_writer *w, const char *key, bool v)
{
    uint8_t b = v ? 1 : 0;
    return put_copy(w, key, GGUF_TYPE_BOOL, &b, 1);
}

roj_status gguf_writer_set_str(gguf_writer *w, const char *key,
                               const char *v)
{
    if (!w || !v)
        return roj_error(ROJ_ERR_INVALID_ARG, "gguf_writer_set_str: NULL "
                         "argument for key '%s'", key ? key : "(null)");
    uint64_t len = strlen(v);
    uint8_t *value = malloc((size_t)len + 8);
    if (!value)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for key '%s'",
                         key ? key : "(null)");
    put_u64(value, len);
    memcpy(value + 8, v, (size_t)len);
    return writer_put(w, key, GGUF_TYPE_STRING, value, len + 8);
}

roj_status gguf_writer_set_arr(gguf_writer *w, const char *key,
                               enum gguf_type elem_type, const void *data,
                               uint64_t n)
{
    uint64_t elem = gguf_type_size(elem_type), bytes, total;

    if (!w || (!data && n > 0))
        return roj_error(ROJ_ERR_INVALID_ARG, "gguf_writer_set_arr: NULL "
                         "argument for key '%s'", key ? key : "(null)");
    if (elem == 0)
        return roj_error(ROJ_ERR_INVALID_ARG, "gguf_writer_set_arr: element "
                         "type %s of key '%s' is not a fixed-size type (use "
                         "gguf_writer_set_arr_str for strings)",
                         gguf_type_name(elem_type), key ? key : "(null)");
    if (__builtin_mul_overflow(n, elem, &bytes) ||
        __builtin_add_overflow(bytes, 12, &total) || total > SIZE_MAX)
        return roj_error(ROJ_ERR_INVALID_ARG, "array of %llu elements for "
                         "key '%s' is too large", (ull)n,
                         key ? key : "(null)");
    if (elem_type == GGUF_TYPE_BOOL) {
        for (uint64_t i = 0; i < n; i++)
            if (((const uint8_t *)data)[i] > 1)
                return roj_error(ROJ_ERR_INVALID_ARG, "bool array for key "
                                 "'%s': element %llu is %u, not 0 or 1",
                                 key ? key : "(null)", (ull)i,
                                 ((const uint8_t *)data)[i]);
    }
    uint8_t *value = malloc((size_t)total);
    if (!value)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for key '%s'",
                         key ? key : "(null)");
    put_u32(value, elem_type);
    put_u64(value + 4, n);
    if (bytes)
        memcpy(value + 12, data, (size_t)bytes);
    return writer_put(w, key, GGUF_TYPE_ARRAY, value, total);
}

roj_status gguf_writer_set_arr_str(gguf_writer *w, const char *key,
                                   const char *const *strings, uint64_t n)
{
    uint64_t total = 12;

    if (!w || (!strings && n > 0))
        return roj_error(ROJ_ERR_INVALID_ARG, "gguf_writer_set_arr_str: NULL "
                         "argument for key '%s'", key ? key : "(null)");
    for (uint64_t i = 0; i < n; i++) {
        if (!strings[i])
            return roj_error(ROJ_ERR_INVALID_ARG, "string %llu for key '%s' "
                             "is NULL", (ull)i, key ? key : "(null)");
        if (__builtin_add_overflow(total, 8 + (uint64_t)strlen(strings[i]),
                                   &total) || total > SIZE_MAX)
            return roj_error(ROJ_ERR_INVALID_ARG, "string array for key "
                             "'%s' is too large", key ? key : "(null)");
    }
    uint8_t *value = malloc((size_t)total);
    if (!value)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for key '%s'",
                         key ? key : "(null)");
    put_u32(value, GGUF_TYPE_STRING);
    put_u64(value + 4, n);
    uint8_t *p = value + 12;
    for (uint64_t i = 0; i < n; i++) {
        size_t len = strlen(strings[i]);
        put_u64(p, len);
        memcpy(p + 8, strings[i], len);
        p += 8 + len;
    }
    return writer_put(w, key, GGUF_TYPE_ARRAY, value, total);
}

roj_status gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src,
                               int64_t index)
{
    if (!w || !src || index < 0 || index >= src->n_kv)
        return roj_error(ROJ_ERR_INVALID_ARG, "gguf_writer_copy_kv: invalid "
                         "source or index %lld", (long long)index);
    const struct gguf_kv *kv = &src->kvs[index];
    return put_copy(w, kv->key, kv->type, kv->raw, kv->raw_size);
}

roj_status gguf_writer_remove_key(gguf_writer *w, const char *key)
{
    int64_t i = w && key ? writer_find_key(w, key) : -1;
    if (i < 0)
        return roj_error(ROJ_ERR_NOT_FOUND, "GGUF writer: key '%s' not "
                         "found", key ? key : "(null)");
    free(w->kvs[i].key);
    free(w->kvs[i].value);
    memmove(&w->kvs[i], &w->kvs[i + 1],
            (size_t)(w->n_kv - i - 1) * sizeof *w->kvs);
    w->n_kv--;
    return ROJ_OK;
}

static roj_status check_alignment_value(uint64_t a)
{
    if (a == 0 || (a & (a - 1)) != 0 || a > GGUF_MAX_ALIGNMENT)
        return roj_error(ROJ_ERR_INVALID_ARG, "alignment %llu is not a "
                         "power of two in 1..%u", (ull)a, GGUF_MAX_ALIGNMENT);
    return ROJ_OK;
}

roj_status gguf_writer_set_alignment(gguf_writer *w, uint32_t alignment)
{
    roj_status st = check_alignment_value(alignment);
    if (st != ROJ_OK)
        return st;
    return gguf_writer_set_u32(w, "general.alignment", alignment);
}

/* Computes the byte size of a tensor of type and shape, as the reader
 * does. */
static roj_status tensor_size(const char *name, uint32_t type,
                              uint32_t n_dims, const int64_t *ne,
                              uint64_t *n_bytes)
{
    const roj_type_info *info = qtype_info(type);
    uint64_t n_rows = 1, row_bytes;

    if (info->block_size == 0)
        return roj_error(ROJ_ERR_INVALID_ARG, "tensor '%s': unknown type id "
                         "%u", name, type);
    if (n_dims == 0 || n_dims > GGUF_MAX_DIMS || !ne)
        return roj_error(ROJ_ERR_INVALID_ARG, "tensor '%s': n_dims %u is "
                         "outside 1..%d", name, n_dims, GGUF_MAX_DIMS);
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] <= 0)
            return roj_error(ROJ_ERR_INVALID_ARG, "tensor '%s': ne[%u] = "
                             "%lld is not positive", name, d,
                             (long long)ne[d]);
        if (d > 0 && __builtin_mul_overflow(n_rows, (uint64_t)ne[d],
                                            &n_rows))
            return roj_error(ROJ_ERR_INVALID_ARG, "tensor '%s': element "
                             "count overflows", name);
    }
    if (ne[0] % info->block_size != 0)
        return roj_error(ROJ_ERR_INVALID_ARG, "tensor '%s': ne[0] = %lld is "
                         "not a multiple of the block size %d of type %s",
                         name, (long long)ne[0], info->block_size,
                         info->name);
    if (__builtin_mul_overflow((uint64_t)ne[0] / (uint64_t)info->block_size,
                               (uint64_t)info->type_size, &row_bytes) ||
        __builtin_mul_overflow(row_bytes, n_rows, n_bytes))
        return roj_error(ROJ_ERR_INVALID_ARG, "tensor '%s': byte size "
                         "overflows", name);
    return ROJ_OK;
}

roj_status gguf_writer_add_tensor(gguf_writer *w, const char *name,
                                  uint32_t type, uint32_t n_dims,
                                  const int64_t *ne, const void *data,
                                  uint64_t n_bytes)
{
    uint64_t expected = 0;
    roj_status st;

    if (!w || !name || !data)
        return roj_error(ROJ_ERR_INVALID_ARG, "gguf_writer_add_tensor: NULL "
                         "argument for tensor '%s'", name ? name : "(null)");
    size_t len = strlen(name);
    if (len == 0 || len > GGUF_MAX_TENSOR_NAME_LEN)
        return roj_error(ROJ_ERR_INVALID_ARG, "tensor name length %zu is "
                         "outside 1..%d", len, GGUF_MAX_TENSOR_NAME_LEN);
    if ((st = tensor_size(name, type, n_dims, ne, &expected)) != ROJ_OK)
        return st;
    if (n_bytes != expected)
        return roj_error(ROJ_ERR_INVALID_ARG, "tensor '%s': n_bytes %llu "
                         "does not match the %llu bytes of type %s with this "
                         "shape", name, (ull)n_bytes, (ull)expected,
                         qtype_name(type));
    for (int64_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return roj_error(ROJ_ERR_INVALID_ARG, "duplicate tensor name "
                             "'%s'", name);

    if (w->n_tensors == w->cap_tensors) {
        int64_t cap = w->cap_tensors ? w->cap_tensors * 2 : 16;
        struct writer_tensor *t = realloc(w->tensors,
                                          (size_t)cap * sizeof *t);
        if (!t)
            return roj_error(ROJ_ERR_NOMEM, "out of memory for tensor '%s'",
                             name);
        w->tensors = t;
        w->cap_tensors = cap;
    }
    struct writer_tensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name)))
        return roj_error(ROJ_ERR_NOMEM, "out of memory for tensor '%s'",
                         name);
    t->type = type;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
        t->ne[d] = d < n_dims ? ne[d] : 1;
    t->data = data;
    t->n_bytes = n_bytes;
    w->n_tensors++;
    return ROJ_OK;
}

/* Output stream that remembers the first write error. */
struct out {
    FILE *fp;
    uint64_t pos;   /* bytes written */
    int failed;
};

static void out_bytes(struct out *o, const void *p, uint64_t n)
{
    if (o->failed || n == 0)
        return;
    if (fwrite(p, 1, (size_t)n, o->fp) != (size_t)n)
        o->failed = 1;
    o->pos += n;
}

static void out_u32(struct out *o, uint32_t v)
{
    uint8_t b[4];
    put_u32(b, v);
    out_bytes(o, b, 4);
}

static void out_u64(struct out *o, uint64_t v)
{
    uint8_t b[8];
    put_u64(b, v);
    out_bytes(o, b, 8);
}

static void out_pad(struct out *o, uint64_t alignment)
{
    static const uint8_t zeros[256];
    uint64_t n = (alignment - o->pos % alignment) % alignment;
    while (n > 0) {
        uint64_t k = n < sizeof zeros ? n : sizeof zeros;
        out_bytes(o, zeros, k);
        n -= k;
    }
}

/* Returns the alignment the file will use: general.alignment when set. */
static roj_status writer_alignment(const gguf_writer *w, uint64_t *out)
{
    int64_t i = writer_find_key(w, "general.alignment");
    *out = GGUF_DEFAULT_ALIGNMENT;
    if (i < 0)
        return ROJ_OK;
    if (w->kvs[i].type != GGUF_TYPE_UINT32)
        return roj_error(ROJ_ERR_INVALID_ARG, "general.alignment has type "
                         "%s, expected uint32",
                         gguf_type_name(w->kvs[i].type));
    *out = gguf_load_u32(w->kvs[i].value);
    return check_alignment_value(*out);
}

static void write_contents(const gguf_writer *w, uint64_t alignment,
                           struct out *o)
{
    uint64_t offset = 0;

    out_bytes(o, GGUF_MAGIC, 4);
    out_u32(o, 3);
    out_u64(o, (uint64_t)w->n_tensors);
    out_u64(o, (uint64_t)w->n_kv);
    for (int64_t i = 0; i < w->n_kv; i++) {
        const struct writer_kv *kv = &w->kvs[i];
        out_u64(o, strlen(kv->key));
        out_bytes(o, kv->key, strlen(kv->key));
        out_u32(o, kv->type);
        out_bytes(o, kv->value, kv->size);
    }
    for (int64_t i = 0; i < w->n_tensors; i++) {
        const struct writer_tensor *t = &w->tensors[i];
        out_u64(o, strlen(t->name));
        out_bytes(o, t->name, strlen(t->name));
        out_u32(o, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++)
            out_u64(o, (uint64_t)t->ne[d]);
        out_u32(o, t->type);
        out_u64(o, offset);
        offset += (t->n_bytes + alignment - 1) / alignment * alignment;
    }
    out_pad(o, alignment);
    for (int64_t i = 0; i < w->n_tensors; i++) {
        out_bytes(o, w->tensors[i].data, w->tensors[i].n_bytes);
        out_pad(o, alignment);
    }
}

/* Syncs the folder that contains path so the rename is durable. */
static void sync_parent(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(copy);
}

roj_status gguf_writer_write(gguf_writer *w, const char *path)
{
    struct out o = {NULL, 0, 0};
    uint64_t alignment = 0;
    char *tmp = NULL;
    roj_status st;

    if (!w || !path)
        return roj_error(ROJ_ERR_INVALID_ARG, "gguf_writer_write: NULL "
                         "argument");
    if ((st = writer_alignment(w, &alignment)) != ROJ_OK)
        return roj_error_wrap(st, "%s", path);
    size_t n = strlen(path) + 5;
    if (!(tmp = malloc(n)))
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", path);
    snprintf(tmp, n, "%s.tmp", path);

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || !(o.fp = fdopen(fd, "wb"))) {
        st = roj_error(ROJ_ERR_IO, "%s: cannot create: %s", tmp,
                       strerror(errno));
        if (fd >= 0)
            close(fd);
        goto free_tmp;
    }
    write_contents(w, alignment, &o);
    if (o.failed || fflush(o.fp) != 0 || fsync(fileno(o.fp)) != 0) {
        st = roj_error(ROJ_ERR_IO, "%s: write failed: %s", tmp,
                       strerror(errno));
        fclose(o.fp);
        goto remove_tmp;
    }
    if (fclose(o.fp) != 0) {
        st = roj_error(ROJ_ERR_IO, "%s: close failed: %s", tmp,
                       strerror(errno));
        goto remove_tmp;
    }
    if (rename(tmp, path) != 0) {
        st = roj_error(ROJ_ERR_IO, "cannot rename %s to %s: %s", tmp, path,
                       strerror(errno));
        goto remove_tmp;
    }
    sync_parent(path);
    free(tmp);
    return ROJ_OK;

remove_tmp:
    unlink(tmp);
free_tmp:
    free(tmp);
    return st;
}

roj_status gguf_writer_write_memory(gguf_writer *w, void **data, size_t *size)
{
    struct out o = {NULL, 0, 0};
    uint64_t alignment = 0;
    char *buf = NULL;
    size_t len = 0;
    roj_status st;

    if (!w || !data || !size)
        return roj_error(ROJ_ERR_INVALID_ARG, "gguf_writer_write_memory: "
                         "NULL argument");
    *data = NULL;
    *size = 0;
    if ((st = writer_alignment(w, &alignment)) != ROJ_OK)
        return st;
    if (!(o.fp = open_memstream(&buf, &len)))
        return roj_error(ROJ_ERR_NOMEM, "cannot open a memory stream for a "
                         "GGUF image: %s", strerror(errno));
    write_contents(w, alignment, &o);
    if (fclose(o.fp) != 0 || o.failed) {
        free(buf);
        return roj_error(ROJ_ERR_NOMEM, "out of memory writing a GGUF image "
                         "of %llu bytes", (ull)o.pos);
    }
    *data = buf;
    *size = len;
    return ROJ_OK;
}
