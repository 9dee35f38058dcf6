/* GGUF reader on hostile input: each malformed file is built in memory and
 * must fail with ROJ_ERR_FORMAT and a message naming the field and value.
 * Truncations and random byte flips must fail or succeed cleanly. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "quant/qtypes.h"

#define NAME "hostile.gguf"

/* A growable byte buffer for building files. */
struct buf {
    uint8_t *p;
    size_t n;
    size_t cap;
};

static void put(struct buf *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_u32(struct buf *b, uint32_t v)
{
    uint8_t x[4];
    for (int i = 0; i < 4; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    put(b, x, 4);
}

static void put_u64(struct buf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    put(b, x, 8);
}

static void put_str(struct buf *b, const char *s)
{
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}

static void put_header(struct buf *b, uint32_t version, uint64_t n_tensors,
                       uint64_t n_kv)
{
    put(b, "GGUF", 4);
    put_u32(b, version);
    put_u64(b, n_tensors);
    put_u64(b, n_kv);
}

static void put_kv_u32(struct buf *b, const char *key, uint32_t v)
{
    put_str(b, key);
    put_u32(b, GGUF_TYPE_UINT32);
    put_u32(b, v);
}

/* A tensor info with n_dims dimensions from ne. */
static void put_tensor(struct buf *b, const char *name, uint32_t n_dims,
                       const uint64_t *ne, uint32_t type, uint64_t offset)
{
    put_str(b, name);
    put_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++)
        put_u64(b, ne[d]);
    put_u32(b, type);
    put_u64(b, offset);
}

static void pad_to(struct buf *b, size_t alignment)
{
    static const uint8_t zero[64];
    while (b->n % alignment)
        put(b, zero, 1);
}

static void put_zeros(struct buf *b, size_t n)
{
    static const uint8_t zero[256];
    while (n > 0) {
        size_t k = n < sizeof zero ? n : sizeof zero;
        put(b, zero, k);
        n -= k;
    }
}

/* Opens b and checks that it fails with status and a message that starts
 * with the file name and contains expected. */
static void expect_error(struct buf *b, roj_status status,
                         const char *expected)
{
    gguf_file *f = NULL;
    roj_status st = gguf_open_memory(b->p, b->n, NAME, &f);
    const char *msg = roj_last_error();
    if (st != status || strncmp(msg, NAME ": ", strlen(NAME) + 2) != 0 ||
        !strstr(msg, expected))
        fail_msg("status %s message \"%s\"; expected %s with \"%s\"",
                 roj_status_name(st), msg, roj_status_name(status),
                 expected);
    assert_null(f);
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

static void expect_format(struct buf *b, const char *expected)
{
    expect_error(b, ROJ_ERR_FORMAT, expected);
}

static gguf_file *expect_ok(const struct buf *b)
{
    gguf_file *f = NULL;
    if (gguf_open_memory(b->p, b->n, NAME, &f) != ROJ_OK)
        fail_msg("unexpected failure: %s", roj_last_error());
    return f;
}

static void gguf_bad_magic_version(void **state)
{
    (void)state;
    struct buf b = {0};
    put(&b, "GGUG", 4);
    put_u32(&b, 3);
    put_u64(&b, 0);
    put_u64(&b, 0);
    expect_format(&b, "invalid magic 0x47554747");

    put_header(&b, 1, 0, 0);
    expect_format(&b, "unsupported GGUF version 1 ");
    put_header(&b, 4, 0, 0);
    expect_format(&b, "unsupported GGUF version 4 ");
    put_header(&b, 3u << 24, 0, 0);
    expect_format(&b, "big-endian");
    put(&b, "GGUF", 4);
    put_u32(&b, 3);
    expect_format(&b, "file is 8 bytes, shorter than the 24-byte");

    /* Version 2 has the same layout and is accepted. */
    put_header(&b, 2, 0, 0);
    gguf_file *f = expect_ok(&b);
    assert_int_equal(gguf_version(f), 2);
    gguf_close(f);
    free(b.p);
}

static void gguf_huge_counts(void **state)
{
    (void)state;
    struct buf b = {0};
    /* 2^62 entries times 14 bytes wraps 64 bits. */
    put_header(&b, 3, 0, (uint64_t)1 << 62);
    expect_format(&b, "n_kv 4611686018427387904 is too large");
    put_header(&b, 3, UINT64_MAX, 0);
    expect_format(&b, "n_tensors 18446744073709551615 is too large");
    put_header(&b, 3, 1, 1);
    put_zeros(&b, 40);
    expect_format(&b, "n_kv 1 and n_tensors 1 need at least 47 bytes");
}

static void gguf_huge_strings(void **state)
{
    (void)state;
    struct buf b = {0};
    put_header(&b, 3, 0, 1);
    put_u64(&b, UINT64_MAX);
    put_zeros(&b, 16);
    expect_format(&b, "kv 0: key: string length 18446744073709551615 at "
                      "offset 24 exceeds the 16 bytes left");

    /* A 70-byte file declaring a gigabyte string value. */
    put_header(&b, 3, 0, 1);
    put_str(&b, "general.name");
    put_u32(&b, GGUF_TYPE_STRING);
    put_u64(&b, (uint64_t)1 << 30);
    put(&b, "abcd", 4);
    expect_format(&b, "kv 0 'general.name': string length 1073741824");

    /* 2^61 strings: count times 8 bytes wraps. */
    put_header(&b, 3, 0, 1);
    put_str(&b, "tokenizer.ggml.tokens");
    put_u32(&b, GGUF_TYPE_ARRAY);
    put_u32(&b, GGUF_TYPE_STRING);
    put_u64(&b, (uint64_t)1 << 61);
    put_str(&b, "a");
    expect_format(&b, "array of 2305843009213693952 strings");

    /* A plausible count whose strings run out. */
    put_header(&b, 3, 0, 1);
    put_str(&b, "tokenizer.ggml.tokens");
    put_u32(&b, GGUF_TYPE_ARRAY);
    put_u32(&b, GGUF_TYPE_STRING);
    put_u64(&b, 3);
    put_str(&b, "a");
    put_str(&b, "b");
    put_u64(&b, 100);
    put(&b, "cc", 2);
    expect_format(&b, "'tokenizer.ggml.tokens': element 2: string length 100");

    /* 2^62 uint32 elements: count times 4 wraps. */
    put_header(&b, 3, 0, 1);
    put_str(&b, "x.arr");
    put_u32(&b, GGUF_TYPE_ARRAY);
    put_u32(&b, GGUF_TYPE_UINT32);
    put_u64(&b, (uint64_t)1 << 62);
    put_u32(&b, 1);
    expect_format(&b, "4611686018427387904 elements of type uint32");
}

static void gguf_bad_keys_and_types(void **state)
{
    (void)state;
    struct buf b = {0};
    static const uint32_t bad_types[] = {13, 255};

    for (int i = 0; i < 2; i++) {
        char want[64];
        put_header(&b, 3, 0, 1);
        put_str(&b, "x.k");
        put_u32(&b, bad_types[i]);
        put_u32(&b, 0);
        snprintf(want, sizeof want, "'x.k': unknown value type %u",
                 bad_types[i]);
        expect_format(&b, want);

        put_header(&b, 3, 0, 1);
        put_str(&b, "x.a");
        put_u32(&b, GGUF_TYPE_ARRAY);
        put_u32(&b, bad_types[i]);
        put_u64(&b, 1);
        put_u32(&b, 0);
        snprintf(want, sizeof want, "'x.a': unknown array element type %u",
                 bad_types[i]);
        expect_format(&b, want);
    }

    put_header(&b, 3, 0, 2);
    put_kv_u32(&b, "a.b", 1);
    put_kv_u32(&b, "a.b", 2);
    expect_format(&b, "duplicate key 'a.b' (kv 0 and kv 1)");

    put_header(&b, 3, 0, 1);
    put_str(&b, "");
    put_u32(&b, GGUF_TYPE_UINT8);
    put_u32(&b, 0);
    expect_format(&b, "empty key at offset 24");

    put_header(&b, 3, 0, 1);
    put_u64(&b, 3);
    put(&b, "a\0b", 3);
    put_u32(&b, GGUF_TYPE_UINT8);
    put_u32(&b, 0);
    expect_format(&b, "contains a NUL byte");

    put_header(&b, 3, 0, 1);
    put_str(&b, "x.flag");
    put_u32(&b, GGUF_TYPE_BOOL);
    put(&b, "\x02", 1);
    put_zeros(&b, 3);
    expect_format(&b, "'x.flag': bool at offset");
}

static void gguf_nested_arrays(void **state)
{
    (void)state;
    struct buf b = {0};

    /* [[1, 2], ["s"]] opens, but the typed getters reject it. */
    put_header(&b, 3, 0, 1);
    put_str(&b, "x.nested");
    put_u32(&b, GGUF_TYPE_ARRAY);
    put_u32(&b, GGUF_TYPE_ARRAY);
    put_u64(&b, 2);
    put_u32(&b, GGUF_TYPE_INT32);
    put_u64(&b, 2);
    put_u32(&b, 1);
    put_u32(&b, 2);
    put_u32(&b, GGUF_TYPE_STRING);
    put_u64(&b, 1);
    put_str(&b, "s");
    gguf_file *f = expect_ok(&b);
    int32_t *v = NULL;
    uint64_t n = 0;
    const void *raw = NULL;
    assert_int_equal(gguf_kv_array_type(f, 0), GGUF_TYPE_ARRAY);
    assert_int_equal(gguf_kv_array_len(f, 0), 2);
    assert_int_equal(gguf_get_arr_i32(f, "x.nested", &v, &n),
                     ROJ_ERR_FORMAT);
    assert_non_null(strstr(roj_last_error(), "has type array of array"));
    assert_int_equal(gguf_kv_array_data(f, 0, &raw, &n), ROJ_OK);
    assert_int_equal(n, 2);
    gguf_close(f);
    free(b.p);
    b = (struct buf){0};

    /* Nine levels of arrays exceed the depth limit. */
    put_header(&b, 3, 0, 1);
    put_str(&b, "x.deep");
    put_u32(&b, GGUF_TYPE_ARRAY);
    for (int i = 0; i < 9; i++) {
        put_u32(&b, GGUF_TYPE_ARRAY);
        put_u64(&b, 1);
    }
    put_u32(&b, GGUF_TYPE_UINT8);
    put_u64(&b, 0);
    put_zeros(&b, 16);
    expect_format(&b, "nested deeper than 8 levels");
}

static void gguf_getter_wrong_types(void **state)
{
    (void)state;
    struct buf b = {0};
    put_header(&b, 3, 0, 3);
    put_str(&b, "tokenizer.ggml.scores");
    put_u32(&b, GGUF_TYPE_ARRAY);
    put_u32(&b, GGUF_TYPE_INT8);
    put_u64(&b, 2);
    put(&b, "\x01\xff", 2);
    put_str(&b, "x.neg");
    put_u32(&b, GGUF_TYPE_INT32);
    put_u32(&b, (uint32_t)-1);
    put_str(&b, "x.name");
    put_u32(&b, GGUF_TYPE_STRING);
    put_str(&b, "n");
    gguf_file *f = expect_ok(&b);
    float *scores = NULL;
    int32_t *ids = NULL;
    uint64_t n = 0;
    uint32_t u = 0;
    float x = 0;

    assert_int_equal(gguf_get_arr_f32(f, "tokenizer.ggml.scores", &scores,
                                      &n), ROJ_ERR_FORMAT);
    assert_string_equal(roj_last_error(),
                        NAME ": key 'tokenizer.ggml.scores' has type array "
                             "of int8, expected array of float32 or float64");
    assert_int_equal(gguf_get_arr_i32(f, "tokenizer.ggml.scores", &ids, &n),
                     ROJ_OK);
    assert_int_equal(ids[1], -1);
    free(ids);
    assert_int_equal(gguf_get_u32(f, "x.neg", &u), ROJ_ERR_RANGE);
    assert_non_null(strstr(roj_last_error(), "'x.neg' value -1 (int32) does "
                                             "not fit in uint32"));
    assert_int_equal(gguf_get_f32(f, "x.name", &x), ROJ_ERR_FORMAT);
    assert_non_null(strstr(roj_last_error(), "'x.name' has type string, "
                                             "expected float32 or float64"));
    assert_int_equal(gguf_get_u32(f, "tokenizer.ggml.scores", &u),
                     ROJ_ERR_FORMAT);
    assert_int_equal(gguf_kv_u64(f, 3, (uint64_t *)&n), ROJ_ERR_NOT_FOUND);
    assert_int_equal(gguf_kv_type(f, 3), GGUF_TYPE_COUNT);
    assert_null(gguf_kv_key(f, -1));
    gguf_close(f);
    free(b.p);
}

static void gguf_bad_alignment(void **state)
{
    (void)state;
    struct buf b = {0};
    static const uint32_t bad[] = {0, 48, 1u << 31};
    static const char *const want[] = {
        "general.alignment 0 is not a power of two",
        "general.alignment 48 is not a power of two",
        "general.alignment 2147483648 is not a power of two in 1..1048576",
    };
    for (int i = 0; i < 3; i++) {
        put_header(&b, 3, 0, 1);
        put_kv_u32(&b, "general.alignment", bad[i]);
        expect_format(&b, want[i]);
    }
    put_header(&b, 3, 0, 1);
    put_str(&b, "general.alignment");
    put_u32(&b, GGUF_TYPE_UINT64);
    put_u64(&b, 64);
    expect_format(&b, "general.alignment has type uint64, expected uint32");
}

/* One F32 tensor of 8 elements named w with shape and type given. */
static void build_tensor_file(struct buf *b, uint32_t n_dims,
                              const uint64_t *ne, uint32_t type,
                              uint64_t offset, size_t data_bytes)
{
    put_header(b, 3, 1, 0);
    put_tensor(b, "w", n_dims, ne, type, offset);
    pad_to(b, 32);
    put_zeros(b, data_bytes);
}

static void gguf_bad_tensor_shapes(void **state)
{
    (void)state;
    struct buf b = {0};

    build_tensor_file(&b, 5, (uint64_t[]){1, 1, 1, 1, 1}, ROJ_TYPE_F32, 0,
                      32);
    expect_format(&b, "tensor 0: 'w': n_dims 5 is outside 1..4");
    build_tensor_file(&b, 0, NULL, ROJ_TYPE_F32, 0, 32);
    expect_format(&b, "'w': n_dims 0 is outside 1..4");
    build_tensor_file(&b, 2, (uint64_t[]){8, 0}, ROJ_TYPE_F32, 0, 32);
    expect_format(&b, "'w': ne[1] = 0 is not positive");
    build_tensor_file(&b, 1, (uint64_t[]){(uint64_t)-5}, ROJ_TYPE_F32, 0,
                      32);
    expect_format(&b, "'w': ne[0] = -5 is not positive");
    build_tensor_file(&b, 3,
                      (uint64_t[]){(uint64_t)1 << 32, (uint64_t)1 << 30, 4},
                      ROJ_TYPE_F32, 0, 32);
    expect_format(&b, "'w': element count overflows at ne[2] = 4");
    /* 2^62 F32 elements are countable but their bytes wrap. */
    build_tensor_file(&b, 1, (uint64_t[]){(uint64_t)1 << 62}, ROJ_TYPE_F32,
                      0, 32);
    expect_format(&b, "'w': byte size of a row overflows (ne[0] = "
                      "4611686018427387904)");
    /* Rows of 2^40 bytes times 2^24 rows wrap. */
    build_tensor_file(&b, 2,
                      (uint64_t[]){(uint64_t)1 << 38, (uint64_t)1 << 24},
                      ROJ_TYPE_F32, 0, 32);
    expect_format(&b, "'w': byte size overflows (1099511627776 bytes per "
                      "row, 16777216 rows)");
    build_tensor_file(&b, 1, (uint64_t[]){32}, 99, 0, 32);
    expect_format(&b, "tensor 0: 'w': unknown tensor type id 99");
    build_tensor_file(&b, 1, (uint64_t[]){32}, 4, 0, 32);
    expect_format(&b, "'w': unknown tensor type id 4");
    build_tensor_file(&b, 2, (uint64_t[]){33, 2}, ROJ_TYPE_Q4_0, 0, 64);
    expect_format(&b, "'w': ne[0] = 33 is not a multiple of the block size "
                      "32 of type Q4_0");
    build_tensor_file(&b, 1, (uint64_t[]){128}, ROJ_TYPE_Q4_K, 0, 256);
    expect_format(&b, "'w': ne[0] = 128 is not a multiple of the block size "
                      "256 of type Q4_K");

    put_header(&b, 3, 1, 0);
    put_u64(&b, 300);
    put_zeros(&b, 300);
    expect_format(&b, "name length 300");
}

static void gguf_bad_tensor_offsets(void **state)
{
    (void)state;
    struct buf b = {0};

    build_tensor_file(&b, 1, (uint64_t[]){8}, ROJ_TYPE_F32, 0, 16);
    expect_format(&b, "tensor 'w': offset 0 + size 32 bytes is outside the "
                      "data section of 16 bytes");
    build_tensor_file(&b, 1, (uint64_t[]){8}, ROJ_TYPE_F32, 4, 64);
    expect_format(&b, "tensor 'w': offset 4 is not a multiple of the "
                      "alignment 32");
    build_tensor_file(&b, 1, (uint64_t[]){8}, ROJ_TYPE_F32, 64, 64);
    expect_format(&b, "offset 64 + size 32 bytes is outside");
    /* An aligned offset near 2^64 whose end wraps. */
    build_tensor_file(&b, 1, (uint64_t[]){16}, ROJ_TYPE_F32,
                      UINT64_MAX - 31, 64);
    expect_format(&b, "offset 18446744073709551584 + size 64 bytes is "
                      "outside");

    /* A tensor whose header claims data but the file ends in padding. */
    put_header(&b, 3, 1, 0);
    put_tensor(&b, "w", 1, (uint64_t[]){8}, ROJ_TYPE_F32, 0);
    expect_format(&b, "data section offset 64 is past the end of the file "
                      "(57 bytes)");

    put_header(&b, 3, 2, 0);
    put_tensor(&b, "a", 1, (uint64_t[]){16}, ROJ_TYPE_F32, 0);
    put_tensor(&b, "b", 1, (uint64_t[]){8}, ROJ_TYPE_F32, 32);
    pad_to(&b, 32);
    put_zeros(&b, 96);
    expect_format(&b, "tensors 'a' (bytes 0..64) and 'b' (bytes 32..64) "
                      "overlap");

    put_header(&b, 3, 2, 0);
    put_tensor(&b, "a", 1, (uint64_t[]){8}, ROJ_TYPE_F32, 0);
    put_tensor(&b, "a", 1, (uint64_t[]){8}, ROJ_TYPE_F32, 32);
    pad_to(&b, 32);
    put_zeros(&b, 64);
    expect_format(&b, "duplicate tensor name 'a' (tensor 0 and tensor 1)");
}

/* A valid file with metadata of every kind and three tensors. */
static void build_valid_file(struct buf *b)
{
    put_header(b, 3, 3, 5);
    put_kv_u32(b, "general.alignment", 64);
    put_str(b, "general.architecture");
    put_u32(b, GGUF_TYPE_STRING);
    put_str(b, "llama");
    put_str(b, "tokenizer.ggml.tokens");
    put_u32(b, GGUF_TYPE_ARRAY);
    put_u32(b, GGUF_TYPE_STRING);
    put_u64(b, 3);
    put_str(b, "<s>");
    put_str(b, "");
    put_str(b, "abc");
    put_str(b, "x.scores");
    put_u32(b, GGUF_TYPE_ARRAY);
    put_u32(b, GGUF_TYPE_FLOAT32);
    put_u64(b, 2);
    put_u32(b, 0x3f800000);
    put_u32(b, 0x40000000);
    put_str(b, "x.flag");
    put_u32(b, GGUF_TYPE_BOOL);
    put(b, "\x01", 1);
    put_tensor(b, "a", 2, (uint64_t[]){4, 2}, ROJ_TYPE_F32, 0);
    put_tensor(b, "b", 1, (uint64_t[]){32}, ROJ_TYPE_Q8_0, 64);
    put_tensor(b, "c", 1, (uint64_t[]){3}, ROJ_TYPE_F16, 128);
    pad_to(b, 64);
    for (int i = 0; i < 128 + 6; i++)
        put(b, &(uint8_t){(uint8_t)i}, 1);
}

static void gguf_valid_built_file(void **state)
{
    (void)state;
    struct buf b = {0};
    build_valid_file(&b);
    gguf_file *f = expect_ok(&b);
    bool flag = false;
    assert_int_equal(gguf_alignment(f), 64);
    assert_int_equal(gguf_data_offset(f) % 64, 0);
    assert_int_equal(gguf_n_tensors(f), 3);
    assert_int_equal(gguf_find_tensor(f, "c")->n_bytes, 6);
    assert_int_equal(((const uint8_t *)gguf_find_tensor(f, "c")->data)[0],
                     128);
    assert_int_equal(gguf_get_bool(f, "x.flag", &flag), ROJ_OK);
    assert_true(flag);
    gguf_close(f);
    free(b.p);
}

/* Every prefix of a valid file fails to open; none crashes. */
static void gguf_truncated_everywhere(void **state)
{
    (void)state;
    struct buf b = {0};
    build_valid_file(&b);
    for (size_t n = 0; n < b.n; n++) {
        gguf_file *f = NULL;
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, b.p, n);
        roj_status st = gguf_open_memory(copy, n, NAME, &f);
        if (st != ROJ_ERR_FORMAT)
            fail_msg("prefix of %zu bytes: status %s", n,
                     roj_status_name(st));
        assert_null(f);
        free(copy);
    }
    free(b.p);
}

/* Truncates a fixture with tensors in the header region and in the data. */
static void gguf_truncated_fixture(void **state)
{
    (void)state;
    size_t size = 0;
    char *data = test_read_file(
        test_shared_path("fixtures/logits/tiny-q8_0.gguf"), &size);
    gguf_file *f = NULL;

    assert_int_equal(gguf_open_memory(data, size, NAME, &f), ROJ_OK);
    uint64_t data_offset = gguf_data_offset(f);
    gguf_close(f);

    /* Step through the 700 KB header region, densely near both ends. */
    for (uint64_t n = 0; n < data_offset; n += n < 4096 ? 1 : 997) {
        assert_int_equal(gguf_open_memory(data, n, NAME, &f), ROJ_ERR_FORMAT);
        assert_null(f);
    }
    for (uint64_t n = data_offset - 64; n < data_offset; n++)
        assert_int_equal(gguf_open_memory(data, n, NAME, &f), ROJ_ERR_FORMAT);
    static const uint64_t into_data[] = {0, 1, 4096, 1000001};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(gguf_open_memory(data, data_offset + into_data[i],
                                          NAME, &f), ROJ_ERR_FORMAT);
        assert_non_null(strstr(roj_last_error(), "outside the data section"));
    }
    assert_int_equal(gguf_open_memory(data, size - 1, NAME, &f),
                     ROJ_ERR_FORMAT);
    free(data);
}

/* Random byte changes in a valid file open or fail, never crash. */
static void gguf_random_mutations(void **state)
{
    (void)state;
    struct buf b = {0};
    uint64_t seed = 7;
    int opened = 0;
    build_valid_file(&b);
    uint8_t *copy = malloc(b.n);
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(copy, b.p, b.n);
        int flips = 1 + (int)(test_rand_u64(&seed) % 4);
        for (int k = 0; k < flips; k++) {
            size_t pos = test_rand_u64(&seed) % b.n;
            copy[pos] = (uint8_t)test_rand_u64(&seed);
        }
        gguf_file *f = NULL;
        roj_status st = gguf_open_memory(copy, b.n, NAME, &f);
        if (st == ROJ_OK) {
            opened++;
            for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
                const gguf_tensor *t = gguf_tensor_at(f, i);
                assert_true((const uint8_t *)t->data + t->n_bytes <=
                            copy + b.n);
            }
            gguf_close(f);
        } else {
            assert_true(st == ROJ_ERR_FORMAT);
            assert_null(f);
        }
    }
    /* Flips inside tensor data and string bytes keep the file valid. */
    assert_true(opened > 0);
    free(copy);
    free(b.p);
}

static void gguf_open_path_errors(void **state)
{
    (void)state;
    char path[4200];
    gguf_file *f = NULL;

    snprintf(path, sizeof path, "%s/empty.gguf", test_tmpdir());
    test_write_file(path, "", 0);
    assert_int_equal(gguf_open(path, &f), ROJ_ERR_FORMAT);
    assert_non_null(strstr(roj_last_error(), path));
    assert_non_null(strstr(roj_last_error(), "file is 0 bytes"));

    snprintf(path, sizeof path, "%s/missing.gguf", test_tmpdir());
    assert_int_equal(gguf_open(path, &f), ROJ_ERR_IO);
    assert_non_null(strstr(roj_last_error(), "missing.gguf: cannot open"));
    assert_int_equal(gguf_open(test_tmpdir(), &f), ROJ_ERR_IO);
    assert_non_null(strstr(roj_last_error(), "not a regular file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gguf_bad_magic_version),
        cmocka_unit_test(gguf_huge_counts),
        cmocka_unit_test(gguf_huge_strings),
        cmocka_unit_test(gguf_bad_keys_and_types),
        cmocka_unit_test(gguf_nested_arrays),
        cmocka_unit_test(gguf_getter_wrong_types),
        cmocka_unit_test(gguf_bad_alignment),
        cmocka_unit_test(gguf_bad_tensor_shapes),
        cmocka_unit_test(gguf_bad_tensor_offsets),
        cmocka_unit_test(gguf_valid_built_file),
        cmocka_unit_test(gguf_truncated_everywhere),
        cmocka_unit_test(gguf_truncated_fixture),
        cmocka_unit_test(gguf_random_mutations),
        cmocka_unit_test(gguf_open_path_errors),
    };
    return test_run_group(tests, NULL, NULL);
}
