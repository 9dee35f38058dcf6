/*
 * Typed metadata getters with the conversion rules of gguf.h: integers
 * convert between integer types when the value fits, floats between
 * float32 and float64, and nothing converts between the two families.
 */
#include "gguf/gguf_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "quant/fp16.h"

typedef unsigned long long ull;

/* An integer value of any width, kept signed or unsigned as stored. */
struct int_value {
    int is_signed;
    int64_t s;
    uint64_t u;
};

static int type_is_int(uint32_t type)
{
    switch (type) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8:
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16:
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32:
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64:
        return 1;
    default:
        return 0;
    }
}

static struct int_value load_int(uint32_t type, const uint8_t *p)
{
    struct int_value v = {0, 0, 0};
    switch (type) {
    case GGUF_TYPE_UINT8: v.u = p[0]; break;
    case GGUF_TYPE_INT8: v.is_signed = 1; v.s = (int8_t)p[0]; break;
    case GGUF_TYPE_UINT16: v.u = gguf_load_u16(p); break;
    case GGUF_TYPE_INT16:
        v.is_signed = 1;
        v.s = (int16_t)gguf_load_u16(p);
        break;
    case GGUF_TYPE_UINT32: v.u = gguf_load_u32(p); break;
    case GGUF_TYPE_INT32:
        v.is_signed = 1;
        v.s = (int32_t)gguf_load_u32(p);
        break;
    case GGUF_TYPE_UINT64: v.u = gguf_load_u64(p); break;
    case GGUF_TYPE_INT64:
        v.is_signed = 1;
        v.s = (int64_t)gguf_load_u64(p);
        break;
    default: break;
    }
    return v;
}

/* Whether v is within [lo, hi]. */
static int int_in_range(struct int_value v, int64_t lo, uint64_t hi)
{
    if (v.is_signed)
        return v.s >= lo && (v.s < 0 || (uint64_t)v.s <= hi);
    return v.u <= hi;
}

static double load_float(uint32_t type, const uint8_t *p)
{
    if (type == GGUF_TYPE_FLOAT32)
        return fp32_from_bits(gguf_load_u32(p));
    uint64_t bits = gguf_load_u64(p);
    double d = 0;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static roj_status kv_by_key(const gguf_file *f, const char *key,
                            const struct gguf_kv **out)
{
    int64_t i = gguf_find_key(f, key);
    if (i < 0)
        return roj_error(ROJ_ERR_NOT_FOUND, "%s: key '%s' not found",
                         f->path, key ? key : "(null)");
    *out = &f->kvs[i];
    return ROJ_OK;
}

static roj_status kv_by_index(const gguf_file *f, int64_t i,
                              const struct gguf_kv **out)
{
    if (i < 0 || i >= f->n_kv)
        return roj_error(ROJ_ERR_NOT_FOUND, "%s: kv index %lld is outside "
                         "0..%lld", f->path, (long long)i,
                         (long long)f->n_kv - 1);
    *out = &f->kvs[i];
    return ROJ_OK;
}

static roj_status wrong_type(const gguf_file *f, const struct gguf_kv *kv,
                             const char *expected)
{
    if (kv->type == GGUF_TYPE_ARRAY)
        return roj_error(ROJ_ERR_FORMAT, "%s: key '%s' has type array of "
                         "%s, expected %s", f->path, kv->key,
                         gguf_type_name(kv->arr_type), expected);
    return roj_error(ROJ_ERR_FORMAT, "%s: key '%s' has type %s, expected %s",
                     f->path, kv->key, gguf_type_name(kv->type), expected);
}

/* Loads an integer scalar that must lie in [lo, hi]. */
static roj_status kv_int(const gguf_file *f, const struct gguf_kv *kv,
                         int64_t lo, uint64_t hi, const char *target,
                         struct int_value *out)
{
    if (!type_is_int(kv->type))
        return wrong_type(f, kv, "an integer type");
    *out = load_int(kv->type, kv->raw);
    if (!int_in_range(*out, lo, hi)) {
        if (out->is_signed)
            return roj_error(ROJ_ERR_RANGE, "%s: key '%s' value %lld (%s) "
                             "does not fit in %s", f->path, kv->key,
                             (long long)out->s, gguf_type_name(kv->type),
                             target);
        return roj_error(ROJ_ERR_RANGE, "%s: key '%s' value %llu (%s) does "
                         "not fit in %s", f->path, kv->key, (ull)out->u,
                         gguf_type_name(kv->type), target);
    }
    return ROJ_OK;
}

static roj_status kv_float(const gguf_file *f, const struct gguf_kv *kv,
                           double *out)
{
    if (kv->type != GGUF_TYPE_FLOAT32 && kv->type != GGUF_TYPE_FLOAT64)
        return wrong_type(f, kv, "float32 or float64");
    *out = load_float(kv->type, kv->raw);
    return ROJ_OK;
}

static roj_status kv_string(const gguf_file *f, const struct gguf_kv *kv,
                            const char **out, size_t *len)
{
    if (kv->type != GGUF_TYPE_STRING)
        return wrong_type(f, kv, "string");
    *out = kv->str;
    if (len)
        *len = (size_t)kv->str_len;
    return ROJ_OK;
}

roj_status gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out)
{
    const struct gguf_kv *kv = NULL;
    struct int_value v = {0, 0, 0};
    roj_status st = kv_by_key(f, key, &kv);
    if (st == ROJ_OK)
        st = kv_int(f, kv, 0, UINT32_MAX, "uint32", &v);
    if (st == ROJ_OK)
        *out = v.is_signed ? (uint32_t)v.s : (uint32_t)v.u;
    return st;
}

roj_status gguf_get_i32(const gguf_file *f, const char *key, int32_t *out)
{
    const struct gguf_kv *kv = NULL;
    struct int_value v = {0, 0, 0};
    roj_status st = kv_by_key(f, key, &kv);
    if (st == ROJ_OK)
        st = kv_int(f, kv, INT32_MIN, INT32_MAX, "int32", &v);
    if (st == ROJ_OK)
        *out = v.is_signed ? (int32_t)v.s : (int32_t)v.u;
    return st;
}

roj_status gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out)
{
    const struct gguf_kv *kv = NULL;
    roj_status st = kv_by_key(f, key, &kv);
    if (st == ROJ_OK)
        st = gguf_kv_u64(f, kv - f->kvs, out);
    return st;
}

roj_status gguf_get_f32(const gguf_file *f, const char *key, float *out)
{
    const struct gguf_kv *kv = NULL;
    double d = 0;
    roj_status st = kv_by_key(f, key, &kv);
    if (st == ROJ_OK)
        st = kv_float(f, kv, &d);
    if (st == ROJ_OK)
        *out = (float)d;
    return st;
}

roj_status gguf_get_bool(const gguf_file *f, const char *key, bool *out)
{
    const struct gguf_kv *kv = NULL;
    roj_status st = kv_by_key(f, key, &kv);
    if (st != ROJ_OK)
        return st;
    if (kv->type != GGUF_TYPE_BOOL)
        return wrong_type(f, kv, "bool");
    *out = kv->raw[0] != 0;
    return ROJ_OK;
}

roj_status gguf_get_str(const gguf_file *f, const char *key,
                        const char **out, size_t *len)
{
    const struct gguf_kv *kv = NULL;
    roj_status st = kv_by_key(f, key, &kv);
    if (st == ROJ_OK)
        st = kv_string(f, kv, out, len);
    return st;
}

roj_status gguf_kv_u64(const gguf_file *f, int64_t index, uint64_t *out)
{
    const struct gguf_kv *kv = NULL;
    struct int_value v = {0, 0, 0};
    roj_status st = kv_by_index(f, index, &kv);
    if (st == ROJ_OK)
        st = kv_int(f, kv, 0, UINT64_MAX, "uint64", &v);
    if (st == ROJ_OK)
        *out = v.is_signed ? (uint64_t)v.s : v.u;
    return st;
}

roj_status gguf_kv_i64(const gguf_file *f, int64_t index, int64_t *out)
{
    const struct gguf_kv *kv = NULL;
    struct int_value v = {0, 0, 0};
    roj_status st = kv_by_index(f, index, &kv);
    if (st == ROJ_OK)
        st = kv_int(f, kv, INT64_MIN, INT64_MAX, "int64", &v);
    if (st == ROJ_OK)
        *out = v.is_signed ? v.s : (int64_t)v.u;
    return st;
}

roj_status gguf_kv_f64(const gguf_file *f, int64_t index, double *out)
{
    const struct gguf_kv *kv = NULL;
    roj_status st = kv_by_index(f, index, &kv);
    if (st == ROJ_OK)
        st = kv_float(f, kv, out);
    return st;
}

roj_status gguf_kv_str(const gguf_file *f, int64_t index, const char **out,
                       size_t *len)
{
    const struct gguf_kv *kv = NULL;
    roj_status st = kv_by_index(f, index, &kv);
    if (st == ROJ_OK)
        st = kv_string(f, kv, out, len);
    return st;
}

/* Finds key and checks that it is an array. */
static roj_status array_by_key(const gguf_file *f, const char *key,
                               const struct gguf_kv **out)
{
    roj_status st = kv_by_key(f, key, out);
    if (st == ROJ_OK && (*out)->type != GGUF_TYPE_ARRAY)
        st = wrong_type(f, *out, "an array");
    return st;
}

roj_status gguf_get_arr_str(const gguf_file *f, const char *key, uint64_t i,
                            const char **ptr, uint64_t *len)
{
    const struct gguf_kv *kv = NULL;
    roj_status st = array_by_key(f, key, &kv);
    if (st != ROJ_OK)
        return st;
    if (kv->arr_type != GGUF_TYPE_STRING)
        return wrong_type(f, kv, "array of string");
    if (i >= kv->arr_n)
        return roj_error(ROJ_ERR_RANGE, "%s: index %llu is outside the %llu "
                         "strings of key '%s'", f->path, (ull)i,
                         (ull)kv->arr_n, kv->key);
    const uint8_t *p = kv->elems + kv->str_offsets[i / GGUF_STR_STRIDE];
    for (uint64_t k = 0; k < i % GGUF_STR_STRIDE; k++)
        p += 8 + gguf_load_u64(p);
    *len = gguf_load_u64(p);
    *ptr = (const char *)p + 8;
    return ROJ_OK;
}

roj_status gguf_str_iter_init(const gguf_file *f, const char *key,
                              gguf_str_iter *it)
{
    const struct gguf_kv *kv = NULL;
    it->next = NULL;
    it->left = 0;
    roj_status st = array_by_key(f, key, &kv);
    if (st != ROJ_OK)
        return st;
    if (kv->arr_type != GGUF_TYPE_STRING)
        return wrong_type(f, kv, "array of string");
    it->next = kv->elems;
    it->left = kv->arr_n;
    return ROJ_OK;
}

bool gguf_str_iter_next(gguf_str_iter *it, const char **ptr, uint64_t *len)
{
    if (it->left == 0)
        return false;
    /* The lengths were checked against the file when it was opened. */
    *len = gguf_load_u64(it->next);
    *ptr = (const char *)it->next + 8;
    it->next += 8 + *len;
    it->left--;
    return true;
}

roj_status gguf_get_arr_f32(const gguf_file *f, const char *key, float **out,
                            uint64_t *n)
{
    const struct gguf_kv *kv = NULL;
    roj_status st = array_by_key(f, key, &kv);
    if (st != ROJ_OK)
        return st;
    if (kv->arr_type != GGUF_TYPE_FLOAT32 &&
        kv->arr_type != GGUF_TYPE_FLOAT64)
        return wrong_type(f, kv, "array of float32 or float64");

    uint64_t size = gguf_type_size(kv->arr_type);
    float *v = malloc((size_t)(kv->arr_n ? kv->arr_n : 1) * sizeof *v);
    if (!v)
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory for %llu floats "
                         "of key '%s'", f->path, (ull)kv->arr_n, kv->key);
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        double d = load_float(kv->arr_type, kv->elems + i * size);
        v[i] = (float)d;
        if (!isnan(d) && (double)v[i] != d) {
            free(v);
            return roj_error(ROJ_ERR_RANGE, "%s: key '%s' element %llu "
                             "value %.17g (float64) is not exact in float32",
                             f->path, kv->key, (ull)i, d);
        }
    }
    *out = v;
    *n = kv->arr_n;
    return ROJ_OK;
}

roj_status gguf_get_arr_i32(const gguf_file *f, const char *key,
                            int32_t **out, uint64_t *n)
{
    const struct gguf_kv *kv = NULL;
    roj_status st = array_by_key(f, key, &kv);
    if (st != ROJ_OK)
        return st;
    if (!type_is_int(kv->arr_type))
        return wrong_type(f, kv, "array of an integer type");

    uint64_t size = gguf_type_size(kv->arr_type);
    int32_t *v = malloc((size_t)(kv->arr_n ? kv->arr_n : 1) * sizeof *v);
    if (!v)
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory for %llu integers "
                         "of key '%s'", f->path, (ull)kv->arr_n, kv->key);
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        struct int_value x = load_int(kv->arr_type, kv->elems + i * size);
        if (!int_in_range(x, INT32_MIN, INT32_MAX)) {
            free(v);
            return roj_error(ROJ_ERR_RANGE, "%s: key '%s' element %llu "
                             "value %s%llu (%s) does not fit in int32",
                             f->path, kv->key, (ull)i,
                             x.is_signed && x.s < 0 ? "-" : "",
                             x.is_signed ? (ull)(x.s < 0 ? -(uint64_t)x.s
                                                         : (uint64_t)x.s)
                                         : (ull)x.u,
                             gguf_type_name(kv->arr_type));
        }
        v[i] = x.is_signed ? (int32_t)x.s : (int32_t)x.u;
    }
    *out = v;
    *n = kv->arr_n;
    return ROJ_OK;
}

roj_status gguf_kv_array_data(const gguf_file *f, int64_t index,
                              const void **data, uint64_t *n)
{
    const struct gguf_kv *kv = NULL;
    roj_status st = kv_by_index(f, index, &kv);
    if (st != ROJ_OK)
        return st;
    if (kv->type != GGUF_TYPE_ARRAY)
        return wrong_type(f, kv, "an array");
    *data = kv->elems;
    *n = kv->arr_n;
    return ROJ_OK;
}
