/*
 * GGUF reader: parses and validates the header, the metadata and the
 * tensor infos of a file in memory.
 *
 * Every count, length and offset is checked against the bytes that are
 * left before it is used, with overflow-checked arithmetic, so a hostile
 * file fails with ROJ_ERR_FORMAT and a message instead of a crash or a
 * huge allocation. Allocations are bounded by a small multiple of the file
 * size: each array or table is allocated only after its count has been
 * checked against the minimum encoded size of its elements.
 */
#include "gguf/gguf_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "quant/qtypes.h"

#define GGUF_HEADER_SIZE 24
/* Smallest encodings: a key of one byte with a one-byte value, and a tensor
 * info with a one-byte name and one dimension. */
#define GGUF_MIN_KV_SIZE (8 + 1 + 4 + 1)
#define GGUF_MIN_TENSOR_INFO_SIZE (8 + 1 + 4 + 8 + 4 + 8)

typedef unsigned long long ull;

struct cursor {
    const uint8_t *base;
    uint64_t size;
    uint64_t pos;
};

/* Growable buffer of NUL-terminated strings, addressed by offset because
 * it moves while it grows. */
struct arena {
    char *p;
    uint64_t len;
    uint64_t cap;
};

static uint64_t cursor_left(const struct cursor *c)
{
    return c->size - c->pos;
}

static roj_status cursor_need(const struct cursor *c, uint64_t n)
{
    if (n > cursor_left(c))
        return roj_error(ROJ_ERR_FORMAT,
                         "needs %llu bytes at offset %llu but the file ends "
                         "after %llu (truncated file?)",
                         (ull)n, (ull)c->pos, (ull)c->size);
    return ROJ_OK;
}

static roj_status cursor_u32(struct cursor *c, uint32_t *out)
{
    roj_status st = cursor_need(c, 4);
    if (st != ROJ_OK)
        return st;
    *out = gguf_load_u32(c->base + c->pos);
    c->pos += 4;
    return ROJ_OK;
}

static roj_status cursor_u64(struct cursor *c, uint64_t *out)
{
    roj_status st = cursor_need(c, 8);
    if (st != ROJ_OK)
        return st;
    *out = gguf_load_u64(c->base + c->pos);
    c->pos += 8;
    return ROJ_OK;
}

/* Reads a string's length field and skips its bytes. *start receives the
 * offset of the first byte. */
static roj_status cursor_string(struct cursor *c, uint64_t *start,
                                uint64_t *len)
{
    roj_status st = cursor_u64(c, len);
    if (st != ROJ_OK)
        return st;
    if (*len > cursor_left(c))
        return roj_error(ROJ_ERR_FORMAT,
                         "string length %llu at offset %llu exceeds the %llu "
                         "bytes left in the file",
                         (ull)*len, (ull)(c->pos - 8), (ull)cursor_left(c));
    *start = c->pos;
    c->pos += *len;
    return ROJ_OK;
}

static roj_status arena_add(struct arena *a, const uint8_t *s, uint64_t n,
                            uint64_t *off)
{
    uint64_t need;
    if (__builtin_add_overflow(a->len, n, &need) ||
        __builtin_add_overflow(need, 1, &need) || need > SIZE_MAX)
        return roj_error(ROJ_ERR_NOMEM, "string table overflow");
    if (need > a->cap) {
        uint64_t cap = a->cap ? a->cap : 4096;
        while (cap < need)
            cap *= 2;
        char *p = realloc(a->p, (size_t)cap);
        if (!p)
            return roj_error(ROJ_ERR_NOMEM, "out of memory for %llu bytes "
                             "of names", (ull)cap);
        a->p = p;
        a->cap = cap;
    }
    memcpy(a->p + a->len, s, (size_t)n);
    a->p[a->len + n] = '\0';
    *off = a->len;
    a->len = need;
    return ROJ_OK;
}

uint64_t gguf_type_size(uint32_t type)
{
    switch (type) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_INT8:
    case GGUF_TYPE_BOOL:
        return 1;
    case GGUF_TYPE_UINT16:
    case GGUF_TYPE_INT16:
        return 2;
    case GGUF_TYPE_UINT32:
    case GGUF_TYPE_INT32:
    case GGUF_TYPE_FLOAT32:
        return 4;
    case GGUF_TYPE_UINT64:
    case GGUF_TYPE_INT64:
    case GGUF_TYPE_FLOAT64:
        return 8;
    default:
        return 0;
    }
}

/* Skips n fixed-size values of type, checking that bools are 0 or 1. */
static roj_status skip_fixed(struct cursor *c, uint32_t type, uint64_t n)
{
    uint64_t bytes;
    if (__builtin_mul_overflow(n, gguf_type_size(type), &bytes) ||
        bytes > cursor_left(c))
        return roj_error(ROJ_ERR_FORMAT,
                         "%llu elements of type %s at offset %llu exceed the "
                         "%llu bytes left in the file",
                         (ull)n, gguf_type_name(type), (ull)c->pos,
                         (ull)cursor_left(c));
    if (type == GGUF_TYPE_BOOL) {
        for (uint64_t i = 0; i < n; i++) {
            uint8_t b = c->base[c->pos + i];
            if (b > 1)
                return roj_error(ROJ_ERR_FORMAT,
                                 "bool at offset %llu has value %u (expected "
                                 "0 or 1)", (ull)(c->pos + i), b);
        }
    }
    c->pos += bytes;
    return ROJ_OK;
}

static roj_status parse_array(struct cursor *c, int depth,
                              struct gguf_kv *kv);

/* Skips the elements of an array of arrays. */
static roj_status skip_nested(struct cursor *c, int depth, uint64_t n)
{
    if (depth >= GGUF_MAX_ARRAY_DEPTH)
        return roj_error(ROJ_ERR_FORMAT, "arrays nested deeper than %d "
                         "levels at offset %llu", GGUF_MAX_ARRAY_DEPTH,
                         (ull)c->pos);
    if (n > cursor_left(c) / 12)
        return roj_error(ROJ_ERR_FORMAT,
                         "array of %llu arrays at offset %llu cannot fit in "
                         "the %llu bytes left in the file",
                         (ull)n, (ull)c->pos, (ull)cursor_left(c));
    for (uint64_t i = 0; i < n; i++) {
        roj_status st = parse_array(c, depth + 1, NULL);
        if (st != ROJ_OK)
            return roj_error_wrap(st, "element %llu", (ull)i);
    }
    return ROJ_OK;
}

/* Skips the elements of a string array; when offsets is not NULL, stores
 * the offset (from the first element) of the length field of every
 * GGUF_STR_STRIDE-th element. */
static roj_status skip_strings(struct cursor *c, uint64_t n,
                               uint64_t *offsets)
{
    uint64_t first = c->pos;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t start = 0, len = 0;
        if (offsets && i % GGUF_STR_STRIDE == 0)
            offsets[i / GGUF_STR_STRIDE] = c->pos - first;
        roj_status st = cursor_string(c, &start, &len);
        if (st != ROJ_OK)
            return roj_error_wrap(st, "element %llu", (ull)i);
    }
    return ROJ_OK;
}

/*
 * Parses an array value (element type, count, elements) at the cursor.
 * With kv (top-level arrays) it records the element type, count, element
 * start and, for string arrays, a new offset index in kv->str_offsets.
 */
static roj_status parse_array(struct cursor *c, int depth, struct gguf_kv *kv)
{
    uint32_t elem_type;
    uint64_t n;
    uint64_t *offsets = NULL;
    roj_status st;

    if ((st = cursor_u32(c, &elem_type)) != ROJ_OK ||
        (st = cursor_u64(c, &n)) != ROJ_OK)
        return roj_error_wrap(st, "array header");
    if (kv) {
        kv->arr_type = elem_type;
        kv->arr_n = n;
        kv->elems = c->base + c->pos;
    }

    if (gguf_type_size(elem_type) != 0)
        return skip_fixed(c, elem_type, n);
    if (elem_type == GGUF_TYPE_ARRAY)
        return skip_nested(c, depth, n);
    if (elem_type != GGUF_TYPE_STRING)
        return roj_error(ROJ_ERR_FORMAT, "unknown array element type %u at "
                         "offset %llu", elem_type, (ull)(c->pos - 12));

    /* Every string takes at least its 8-byte length field, so the count is
     * checked before the offset index is allocated. */
    if (n > cursor_left(c) / 8)
        return roj_error(ROJ_ERR_FORMAT,
                         "array of %llu strings at offset %llu cannot fit in "
                         "the %llu bytes left in the file",
                         (ull)n, (ull)c->pos, (ull)cursor_left(c));
    if (kv && n > 0) {
        offsets = malloc((size_t)((n - 1) / GGUF_STR_STRIDE + 1) *
                         sizeof *offsets);
        if (!offsets)
            return roj_error(ROJ_ERR_NOMEM, "out of memory for the index "
                             "of %llu strings", (ull)n);
    }
    st = skip_strings(c, n, offsets);
    if (st != ROJ_OK) {
        free(offsets);
        return st;
    }
    if (kv)
        kv->str_offsets = offsets;
    return ROJ_OK;
}

/* Parses the value of kv (its type is already read). */
static roj_status parse_value(struct cursor *c, struct arena *a,
                              struct gguf_kv *kv)
{
    uint64_t start = 0, len = 0;
    roj_status st;

    kv->raw = c->base + c->pos;
    kv->elems = kv->raw;
    if (gguf_type_size(kv->type) != 0) {
        st = skip_fixed(c, kv->type, 1);
    } else if (kv->type == GGUF_TYPE_STRING) {
        st = cursor_string(c, &start, &len);
        if (st == ROJ_OK) {
            kv->str_len = len;
            st = arena_add(a, c->base + start, len, &kv->str_off);
        }
    } else if (kv->type == GGUF_TYPE_ARRAY) {
        st = parse_array(c, 0, kv);
    } else {
        st = roj_error(ROJ_ERR_FORMAT, "unknown value type %u at offset "
                       "%llu", kv->type, (ull)(c->pos - 4));
    }
    kv->raw_size = (uint64_t)(c->base + c->pos - kv->raw);
    return st;
}

static roj_status parse_key(struct cursor *c, struct arena *a,
                            struct gguf_kv *kv)
{
    uint64_t start = 0, len = 0;
    roj_status st = cursor_string(c, &start, &len);
    if (st != ROJ_OK)
        return roj_error_wrap(st, "key");
    if (len == 0)
        return roj_error(ROJ_ERR_FORMAT, "empty key at offset %llu",
                         (ull)(start - 8));
    if (len > GGUF_MAX_KEY_LEN)
        return roj_error(ROJ_ERR_FORMAT, "key length %llu at offset %llu "
                         "exceeds the maximum of %d", (ull)len,
                         (ull)(start - 8), GGUF_MAX_KEY_LEN);
    if (memchr(c->base + start, 0, (size_t)len))
        return roj_error(ROJ_ERR_FORMAT, "key at offset %llu contains a NUL "
                         "byte", (ull)(start - 8));
    return arena_add(a, c->base + start, len, &kv->key_off);
}

static roj_status parse_kvs(struct cursor *c, struct arena *a, gguf_file *f)
{
    for (int64_t i = 0; i < f->n_kv; i++) {
        struct gguf_kv *kv = &f->kvs[i];
        roj_status st = parse_key(c, a, kv);
        if (st != ROJ_OK)
            return roj_error_wrap(st, "kv %lld", (long long)i);
        st = cursor_u32(c, &kv->type);
        if (st == ROJ_OK)
            st = parse_value(c, a, kv);
        if (st != ROJ_OK)
            return roj_error_wrap(st, "kv %lld '%s'", (long long)i,
                                  a->p + kv->key_off);
    }
    return ROJ_OK;
}

/* Checks the shape and type of a tensor and computes its sizes. */
static roj_status check_tensor_shape(gguf_tensor *t)
{
    const roj_type_info *info = qtype_info(t->type);
    uint64_t n_elements = 1, n_rows = 1, row_bytes, n_bytes;

    if (info->block_size == 0)
        return roj_error(ROJ_ERR_FORMAT, "unknown tensor type id %u",
                         t->type);
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (t->ne[d] <= 0)
            return roj_error(ROJ_ERR_FORMAT, "ne[%u] = %lld is not positive",
                             d, (long long)t->ne[d]);
        if (__builtin_mul_overflow(n_elements, (uint64_t)t->ne[d],
                                   &n_elements) ||
            n_elements > INT64_MAX)
            return roj_error(ROJ_ERR_FORMAT, "element count overflows at "
                             "ne[%u] = %lld", d, (long long)t->ne[d]);
        if (d > 0)
            n_rows *= (uint64_t)t->ne[d];
    }
    if (t->ne[0] % info->block_size != 0)
        return roj_error(ROJ_ERR_FORMAT, "ne[0] = %lld is not a multiple of "
                         "the block size %d of type %s",
                         (long long)t->ne[0], info->block_size, info->name);
    if (__builtin_mul_overflow((uint64_t)t->ne[0] /
                                   (uint64_t)info->block_size,
                               (uint64_t)info->type_size, &row_bytes))
        return roj_error(ROJ_ERR_FORMAT, "byte size of a row overflows "
                         "(ne[0] = %lld)", (long long)t->ne[0]);
    if (__builtin_mul_overflow(row_bytes, n_rows, &n_bytes))
        return roj_error(ROJ_ERR_FORMAT, "byte size overflows (%llu bytes "
                         "per row, %llu rows)", (ull)row_bytes, (ull)n_rows);
    for (uint32_t d = t->n_dims; d < GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    t->n_elements = n_elements;
    t->n_bytes = n_bytes;
    return ROJ_OK;
}

static roj_status parse_tensor_info(struct cursor *c, struct arena *a,
                                    struct gguf_tensor_entry *e)
{
    gguf_tensor *t = &e->t;
    uint64_t start = 0, len = 0;
    roj_status st = cursor_string(c, &start, &len);
    if (st != ROJ_OK)
        return roj_error_wrap(st, "name");
    if (len == 0 || len > GGUF_MAX_TENSOR_NAME_LEN)
        return roj_error(ROJ_ERR_FORMAT, "name length %llu at offset %llu is "
                         "outside 1..%d", (ull)len, (ull)(start - 8),
                         GGUF_MAX_TENSOR_NAME_LEN);
    if (memchr(c->base + start, 0, (size_t)len))
        return roj_error(ROJ_ERR_FORMAT, "name at offset %llu contains a NUL "
                         "byte", (ull)(start - 8));
    if ((st = arena_add(a, c->base + start, len, &e->name_off)) != ROJ_OK)
        return st;

    const char *name = a->p + e->name_off;
    if ((st = cursor_u32(c, &t->n_dims)) != ROJ_OK)
        return roj_error_wrap(st, "'%s' n_dims", name);
    if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS)
        return roj_error(ROJ_ERR_FORMAT, "'%s': n_dims %u is outside 1..%d",
                         name, t->n_dims, GGUF_MAX_DIMS);
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t ne;
        if ((st = cursor_u64(c, &ne)) != ROJ_OK)
            return roj_error_wrap(st, "'%s' ne[%u]", name, d);
        t->ne[d] = (int64_t)ne;
    }
    if ((st = cursor_u32(c, &t->type)) != ROJ_OK ||
        (st = cursor_u64(c, &t->offset)) != ROJ_OK)
        return roj_error_wrap(st, "'%s'", name);
    if ((st = check_tensor_shape(t)) != ROJ_OK)
        return roj_error_wrap(st, "'%s'", name);
    return ROJ_OK;
}

static roj_status parse_tensor_infos(struct cursor *c, struct arena *a,
                                     gguf_file *f)
{
    for (int64_t i = 0; i < f->n_tensors; i++) {
        roj_status st = parse_tensor_info(c, a, &f->tensors[i]);
        if (st != ROJ_OK)
            return roj_error_wrap(st, "tensor %lld", (long long)i);
    }
    return ROJ_OK;
}

static roj_status parse_header(struct cursor *c, gguf_file *f)
{
    uint64_t n_tensors, n_kv, left, kv_bytes, tensor_bytes, total;

    if (c->size < GGUF_HEADER_SIZE)
        return roj_error(ROJ_ERR_FORMAT, "file is %llu bytes, shorter than "
                         "the %d-byte GGUF header", (ull)c->size,
                         GGUF_HEADER_SIZE);
    if (memcmp(c->base, GGUF_MAGIC, 4) != 0)
        return roj_error(ROJ_ERR_FORMAT, "invalid magic 0x%08x (expected "
                         "\"GGUF\"): not a GGUF file",
                         gguf_load_u32(c->base));
    c->pos = 4;
    cursor_u32(c, &f->version);
    if (f->version == (2u << 24) || f->version == (3u << 24))
        return roj_error(ROJ_ERR_FORMAT, "version field 0x%08x: big-endian "
                         "GGUF files are not supported", f->version);
    if (f->version != 2 && f->version != 3)
        return roj_error(ROJ_ERR_FORMAT, "unsupported GGUF version %u (roj "
                         "reads versions 2 and 3)", f->version);
    cursor_u64(c, &n_tensors);
    cursor_u64(c, &n_kv);

    /* Bound both counts by the smallest encoding of their entries. */
    left = cursor_left(c);
    if (n_kv > left / GGUF_MIN_KV_SIZE)
        return roj_error(ROJ_ERR_FORMAT, "n_kv %llu is too large: the %llu "
                         "bytes after the header hold at most %llu entries",
                         (ull)n_kv, (ull)left,
                         (ull)(left / GGUF_MIN_KV_SIZE));
    if (n_tensors > left / GGUF_MIN_TENSOR_INFO_SIZE)
        return roj_error(ROJ_ERR_FORMAT, "n_tensors %llu is too large: the "
                         "%llu bytes after the header hold at most %llu "
                         "tensor infos", (ull)n_tensors, (ull)left,
                         (ull)(left / GGUF_MIN_TENSOR_INFO_SIZE));
    kv_bytes = n_kv * GGUF_MIN_KV_SIZE;
    tensor_bytes = n_tensors * GGUF_MIN_TENSOR_INFO_SIZE;
    if (__builtin_add_overflow(kv_bytes, tensor_bytes, &total) ||
        total > left)
        return roj_error(ROJ_ERR_FORMAT, "n_kv %llu and n_tensors %llu "
                         "need at least %llu bytes but only %llu follow the "
                         "header", (ull)n_kv, (ull)n_tensors,
                         (ull)(kv_bytes + tensor_bytes), (ull)left);
    f->n_kv = (int64_t)n_kv;
    f->n_tensors = (int64_t)n_tensors;
    return ROJ_OK;
}

static void finish_pointers(gguf_file *f)
{
    for (int64_t i = 0; i < f->n_kv; i++) {
        struct gguf_kv *kv = &f->kvs[i];
        kv->key = f->arena + kv->key_off;
        if (kv->type == GGUF_TYPE_STRING)
            kv->str = f->arena + kv->str_off;
    }
    for (int64_t i = 0; i < f->n_tensors; i++)
        f->tensors[i].t.name = f->arena + f->tensors[i].name_off;
}

static roj_status parse_file(gguf_file *f)
{
    struct cursor c = {f->data, f->size, 0};
    struct arena a = {NULL, 0, 0};
    roj_status st;

    if ((st = parse_header(&c, f)) != ROJ_OK)
        return st;
    /* Both counts are bounded by the file size, so these fit in size_t. */
    f->kvs = calloc((size_t)f->n_kv + 1, sizeof *f->kvs);
    f->tensors = calloc((size_t)f->n_tensors + 1, sizeof *f->tensors);
    if (!f->kvs || !f->tensors)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for %lld keys and "
                         "%lld tensors", (long long)f->n_kv,
                         (long long)f->n_tensors);

    st = parse_kvs(&c, &a, f);
    if (st == ROJ_OK)
        st = parse_tensor_infos(&c, &a, f);
    f->arena = a.p;
    if (st != ROJ_OK)
        return st;
    if (!f->arena && !(f->arena = calloc(1, 1)))
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    finish_pointers(f);
    return gguf_check_layout(f, c.pos);
}

static roj_status file_create(const char *name, gguf_file **out)
{
    gguf_file *f = calloc(1, sizeof *f);
    if (!f)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    f->path = strdup(name ? name : "(memory)");
    if (!f->path) {
        free(f);
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    }
    *out = f;
    return ROJ_OK;
}

/* Parses f (data, size and path set); on failure frees f and prefixes the
 * message with the path. */
roj_status gguf_parse_owned(gguf_file *f, gguf_file **out)
{
    roj_status st = parse_file(f);
    if (st != ROJ_OK) {
        roj_error_wrap(st, "%s", f->path);
        gguf_close(f);
        return st;
    }
    *out = f;
    return ROJ_OK;
}

roj_status gguf_open_memory(const void *data, size_t size, const char *name,
                            gguf_file **out)
{
    gguf_file *f = NULL;
    roj_status st;

    if (!out || (!data && size > 0))
        return roj_error(ROJ_ERR_INVALID_ARG, "gguf_open_memory: NULL "
                         "argument");
    *out = NULL;
    if ((st = file_create(name, &f)) != ROJ_OK)
        return st;
    f->data = data;
    f->size = size;
    return gguf_parse_owned(f, out);
}
