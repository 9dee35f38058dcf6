/*
 * Internal layout of a parsed GGUF file, shared by the reader, the
 * accessors and the writer (which copies raw values out of a file).
 */
#ifndef ROJ_GGUF_GGUF_INTERNAL_H
#define ROJ_GGUF_GGUF_INTERNAL_H

#include "gguf/gguf.h"

/* Upper bounds the reader enforces besides the file size. */
#define GGUF_MAX_ALIGNMENT (1u << 20)   /* general.alignment, bytes */
#define GGUF_MAX_KEY_LEN 65535          /* bytes, as the format says */
#define GGUF_MAX_TENSOR_NAME_LEN 255    /* bytes; ggml itself allows 63 */
#define GGUF_MAX_ARRAY_DEPTH 8          /* nested arrays inside arrays */

/* One metadata entry. Pointers point into the file's bytes or into the
 * file's string arena. */
struct gguf_kv {
    const char *key;          /* NUL-terminated copy */
    uint64_t key_off;         /* offset of key in the arena while parsing */
    uint32_t type;            /* enum gguf_type */
    uint32_t arr_type;        /* arrays: element type */
    uint64_t arr_n;           /* arrays: element count */
    const uint8_t *raw;       /* encoded value, after the type field */
    uint64_t raw_size;        /* bytes of the encoded value */
    const uint8_t *elems;     /* arrays: first element; else == raw */
    const char *str;          /* strings: NUL-terminated copy */
    uint64_t str_off;         /* offset of str in the arena while parsing */
    uint64_t str_len;         /* strings: bytes without the NUL */
    uint64_t *str_offsets;    /* string arrays: the offset from elems of
                               * the length field of every
                               * GGUF_STR_STRIDE-th element (0, S, 2S...) */
};

/* Elements of a string array per stored offset. An offset for every
 * element would take 8 bytes per token and merge for the life of a model,
 * 800 KB for a 50k vocabulary. A lookup skips at most 15 strings, whose
 * lengths were checked when the file was opened. */
#define GGUF_STR_STRIDE 16

struct gguf_tensor_entry {
    gguf_tensor t;
    uint64_t name_off;        /* offset of the name in the arena */
};

/* Open-addressing hash table from NUL-terminated names to indexes. */
struct gguf_index {
    int64_t *slots;           /* (cap) index + 1, or 0 for an empty slot */
    uint64_t cap;             /* power of two */
};

struct gguf_file {
    char *path;               /* name used in messages */
    const uint8_t *data;      /* the whole file */
    uint64_t size;            /* bytes */
    void *map;                /* mmap base, NULL for gguf_open_memory */
    size_t map_size;
    uint32_t version;
    uint64_t alignment;       /* bytes */
    uint64_t data_offset;     /* bytes from the start of the file */
    int64_t n_kv;
    struct gguf_kv *kvs;      /* (n_kv) */
    int64_t n_tensors;
    struct gguf_tensor_entry *tensors; /* (n_tensors) */
    char *arena;              /* keys, string values and tensor names */
    struct gguf_index kv_index;
    struct gguf_index tensor_index;
};

/* Hash table lookup; returns the index or -1. names(ctx, i) gives the name
 * of entry i. */
int64_t gguf_index_find(const struct gguf_index *index, const char *name,
                        const char *(*names)(const void *ctx, int64_t i),
                        const void *ctx);

/* Parses and validates f, whose data, size and path are set. On success
 * stores f in *out; on failure closes f and prefixes the message with the
 * path. (gguf_read.c) */
roj_status gguf_parse_owned(gguf_file *f, gguf_file **out);

/* Checks general.alignment, the data offset, each tensor's byte range and
 * duplicate names once the header region (ending at header_end) is parsed,
 * and builds the name tables. (gguf_layout.c) */
roj_status gguf_check_layout(gguf_file *f, uint64_t header_end);

/* Little-endian loads from possibly unaligned bytes. */
static inline uint16_t gguf_load_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t gguf_load_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static inline uint64_t gguf_load_u64(const uint8_t *p)
{
    return (uint64_t)gguf_load_u32(p) | ((uint64_t)gguf_load_u32(p + 4) << 32);
}

#endif
