/*
 * GGUF layout checks that need the whole header region: the alignment, the
 * start of the data section, the byte range of every tensor, and the hash
 * tables that find keys and tensor names (and reject duplicates).
 */
#include "gguf/gguf_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "quant/qtypes.h"

typedef unsigned long long ull;

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 1099511628211ull;
    }
    return h;
}

int64_t gguf_index_find(const struct gguf_index *index, const char *name,
                        const char *(*names)(const void *ctx, int64_t i),
                        const void *ctx)
{
    if (index->cap == 0 || !name)
        return -1;
    uint64_t mask = index->cap - 1;
    for (uint64_t slot = hash_name(name) & mask;; slot = (slot + 1) & mask) {
        int64_t v = index->slots[slot];
        if (v == 0)
            return -1;
        if (strcmp(names(ctx, v - 1), name) == 0)
            return v - 1;
    }
}

/* Builds a table of n names; on a duplicate stores the index of the first
 * and second occurrence in *dup_first and *dup_second and returns
 * ROJ_ERR_FORMAT without a message. */
static roj_status index_build(struct gguf_index *index, int64_t n,
                              const char *(*names)(const void *ctx, int64_t i),
                              const void *ctx, int64_t *dup_first,
                              int64_t *dup_second)
{
    uint64_t cap = 16;
    while (cap < (uint64_t)n * 2)
        cap *= 2;
    index->slots = calloc((size_t)cap, sizeof *index->slots);
    if (!index->slots)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for a table of %lld "
                         "names", (long long)n);
    index->cap = cap;
    for (int64_t i = 0; i < n; i++) {
        const char *name = names(ctx, i);
        uint64_t slot = hash_name(name) & (cap - 1);
        while (index->slots[slot] != 0) {
            int64_t other = index->slots[slot] - 1;
            if (strcmp(names(ctx, other), name) == 0) {
                *dup_first = other;
                *dup_second = i;
                return ROJ_ERR_FORMAT;
            }
            slot = (slot + 1) & (cap - 1);
        }
        index->slots[slot] = i + 1;
    }
    return ROJ_OK;
}

static const char *kv_name(const void *ctx, int64_t i)
{
    return ((const gguf_file *)ctx)->kvs[i].key;
}

static const char *tensor_name(const void *ctx, int64_t i)
{
    return ((const gguf_file *)ctx)->tensors[i].t.name;
}

/* Reads general.alignment, which must be a uint32 power of two. */
static roj_status check_alignment(gguf_file *f)
{
    int64_t i = gguf_find_key(f, "general.alignment");
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    if (i < 0)
        return ROJ_OK;
    const struct gguf_kv *kv = &f->kvs[i];
    if (kv->type != GGUF_TYPE_UINT32)
        return roj_error(ROJ_ERR_FORMAT, "general.alignment has type %s, "
                         "expected uint32", gguf_type_name(kv->type));
    uint32_t a = gguf_load_u32(kv->raw);
    if (a == 0 || (a & (a - 1)) != 0 || a > GGUF_MAX_ALIGNMENT)
        return roj_error(ROJ_ERR_FORMAT, "general.alignment %u is not a "
                         "power of two in 1..%u", a, GGUF_MAX_ALIGNMENT);
    f->alignment = a;
    return ROJ_OK;
}

struct range {
    uint64_t begin;
    uint64_t end;
    int64_t tensor;
};

static int range_compare(const void *a, const void *b)
{
    const struct range *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Checks each tensor's offset against the alignment and the data section,
 * sets its data pointer, and rejects tensors whose bytes overlap. */
static roj_status check_tensor_ranges(gguf_file *f)
{
    uint64_t data_size = f->size - f->data_offset;
    struct range *ranges = NULL;
    roj_status st = ROJ_OK;

    if (f->n_tensors == 0)
        return ROJ_OK;
    ranges = malloc((size_t)f->n_tensors * sizeof *ranges);
    if (!ranges)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for %lld tensor "
                         "ranges", (long long)f->n_tensors);
    for (int64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i].t;
        uint64_t end;
        if (t->offset % f->alignment != 0) {
            st = roj_error(ROJ_ERR_FORMAT, "tensor '%s': offset %llu is not "
                           "a multiple of the alignment %llu", t->name,
                           (ull)t->offset, (ull)f->alignment);
            goto done;
        }
        if (__builtin_add_overflow(t->offset, t->n_bytes, &end) ||
            end > data_size) {
            st = roj_error(ROJ_ERR_FORMAT, "tensor '%s': offset %llu + size "
                           "%llu bytes is outside the data section of %llu "
                           "bytes (truncated file?)", t->name,
                           (ull)t->offset, (ull)t->n_bytes, (ull)data_size);
            goto done;
        }
        t->data = f->data + f->data_offset + t->offset;
        ranges[i] = (struct range){t->offset, end, i};
    }

    qsort(ranges, (size_t)f->n_tensors, sizeof *ranges, range_compare);
    for (int64_t i = 1; i < f->n_tensors; i++) {
        if (ranges[i].begin < ranges[i - 1].end) {
            st = roj_error(ROJ_ERR_FORMAT, "tensors '%s' (bytes %llu..%llu) "
                           "and '%s' (bytes %llu..%llu) overlap",
                           f->tensors[ranges[i - 1].tensor].t.name,
                           (ull)ranges[i - 1].begin, (ull)ranges[i - 1].end,
                           f->tensors[ranges[i].tensor].t.name,
                           (ull)ranges[i].begin, (ull)ranges[i].end);
            goto done;
        }
    }
done:
    free(ranges);
    return st;
}

roj_status gguf_check_layout(gguf_file *f, uint64_t header_end)
{
    int64_t first = 0, second = 0;
    roj_status st;

    st = index_build(&f->kv_index, f->n_kv, kv_name, f, &first, &second);
    if (st == ROJ_ERR_FORMAT)
        return roj_error(st, "duplicate key '%s' (kv %lld and kv %lld)",
                         f->kvs[first].key, (long long)first,
                         (long long)second);
    if (st != ROJ_OK)
        return st;
    st = index_build(&f->tensor_index, f->n_tensors, tensor_name, f, &first,
                     &second);
    if (st == ROJ_ERR_FORMAT)
        return roj_error(st, "duplicate tensor name '%s' (tensor %lld and "
                         "tensor %lld)", f->tensors[first].t.name,
                         (long long)first, (long long)second);
    if (st != ROJ_OK)
        return st;
    if ((st = check_alignment(f)) != ROJ_OK)
        return st;

    /* The data section starts at the next multiple of the alignment. */
    uint64_t padded;
    if (__builtin_add_overflow(header_end, f->alignment - 1, &padded))
        return roj_error(ROJ_ERR_FORMAT, "padding after the header region "
                         "(%llu bytes) overflows", (ull)header_end);
    f->data_offset = padded - padded % f->alignment;
    if (f->data_offset > f->size) {
        if (f->n_tensors > 0)
            return roj_error(ROJ_ERR_FORMAT, "data section offset %llu is "
                             "past the end of the file (%llu bytes)",
                             (ull)f->data_offset, (ull)f->size);
        /* NOTE: a file without tensors may omit the final padding. */
        f->data_offset = f->size;
    }
    return check_tensor_ranges(f);
}
