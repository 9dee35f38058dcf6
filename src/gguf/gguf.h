/*
 * GGUF reader and writer (format versions 2 and 3).
 *
 * The reader maps the file read-only and validates every count, length,
 * offset and size against the file size, with overflow-checked arithmetic,
 * before it allocates or reads anything. A malformed file gives a status
 * and a message naming the field and its value.
 *
 * Ownership: a gguf_file owns its mapping; pointers returned by accessors
 * (tensor data, strings inside arrays) stay valid until gguf_close().
 * Threading: a gguf_file is immutable after gguf_open() and may be read
 * from several threads; a gguf_writer is used by one thread at a time.
 */
#ifndef ROJ_GGUF_GGUF_H
#define ROJ_GGUF_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roj/roj.h"

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4

/* Metadata value types; the ids are fixed by the format. */
enum gguf_type {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
};

/* Returns "uint32", "string", "array" and so on; "unknown" otherwise. */
const char *gguf_type_name(uint32_t type);

/* Returns the encoded size in bytes of one value of a fixed-size type, or 0
 * for strings, arrays and unknown ids. */
uint64_t gguf_type_size(uint32_t type);

typedef struct gguf_file gguf_file;

/* A tensor described by the file. data points into the mapping. */
typedef struct gguf_tensor {
    const char *name;           /* NUL-terminated copy */
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];  /* ne[0] is the fastest-moving dimension */
    uint32_t type;              /* enum roj_type */
    uint64_t offset;            /* from the start of the data section */
    uint64_t n_elements;
    uint64_t n_bytes;
    const void *data;
} gguf_tensor;

/* Opens and validates a GGUF file. On success *out owns the mapping. */
roj_status gguf_open(const char *path, gguf_file **out);

/* Same as gguf_open on bytes in memory, which the caller keeps alive and
 * unchanged until gguf_close(). name is used in messages. Tensor data is
 * aligned in memory only as far as data itself is (gguf_open's mapping
 * is page-aligned). */
roj_status gguf_open_memory(const void *data, size_t size, const char *name,
                            gguf_file **out);

void gguf_close(gguf_file *file);

uint32_t gguf_version(const gguf_file *file);
const char *gguf_path(const gguf_file *file);
uint64_t gguf_file_size(const gguf_file *file);
uint64_t gguf_alignment(const gguf_file *file);
uint64_t gguf_data_offset(const gguf_file *file);

/* Metadata, by index in file order or by key. */
int64_t gguf_n_kv(const gguf_file *file);
int64_t gguf_find_key(const gguf_file *file, const char *key); /* -1: none */
const char *gguf_kv_key(const gguf_file *file, int64_t index);
enum gguf_type gguf_kv_type(const gguf_file *file, int64_t index);
/* For arrays: element type and count. */
enum gguf_type gguf_kv_array_type(const gguf_file *file, int64_t index);
uint64_t gguf_kv_array_len(const gguf_file *file, int64_t index);

/*
 * Typed getters by key. Each returns ROJ_ERR_NOT_FOUND when the key is
 * missing and ROJ_ERR_FORMAT when it has another type (the message names
 * the key and both types). Integer getters accept any integer type whose
 * value fits, and return ROJ_ERR_RANGE for a value that does not fit; float
 * getters accept float32 and float64. Bool is not an integer type here.
 */
roj_status gguf_get_u32(const gguf_file *file, const char *key, uint32_t *out);
roj_status gguf_get_i32(const gguf_file *file, const char *key, int32_t *out);
roj_status gguf_get_u64(const gguf_file *file, const char *key, uint64_t *out);
roj_status gguf_get_f32(const gguf_file *file, const char *key, float *out);
roj_status gguf_get_bool(const gguf_file *file, const char *key, bool *out);
/* *out is a NUL-terminated string owned by the file; *len excludes the NUL
 * (a string may contain NUL bytes, so use len). len may be NULL. */
roj_status gguf_get_str(const gguf_file *file, const char *key,
                        const char **out, size_t *len);

/* Scalar getters by index, with the same conversion rules. */
roj_status gguf_kv_u64(const gguf_file *file, int64_t index, uint64_t *out);
roj_status gguf_kv_i64(const gguf_file *file, int64_t index, int64_t *out);
roj_status gguf_kv_f64(const gguf_file *file, int64_t index, double *out);
roj_status gguf_kv_str(const gguf_file *file, int64_t index,
                       const char **out, size_t *len);

/* Element i of a string array: pointer into the mapping (not
 * NUL-terminated) and length. */
roj_status gguf_get_arr_str(const gguf_file *file, const char *key,
                            uint64_t i, const char **ptr, uint64_t *len);

/* Reads a string array in order, each element in constant time (random
 * access through gguf_get_arr_str skips up to 15 elements). */
typedef struct gguf_str_iter {
    const uint8_t *next; /* the length field of the next element */
    uint64_t left;       /* elements not read yet */
} gguf_str_iter;

/* Starts at element 0 of the string array key, with the errors of
 * gguf_get_arr_str. */
roj_status gguf_str_iter_init(const gguf_file *file, const char *key,
                              gguf_str_iter *it);
/* Reads the next element as gguf_get_arr_str does. Returns false after
 * the last one. */
bool gguf_str_iter_next(gguf_str_iter *it, const char **ptr, uint64_t *len);
/* Copies a numeric array into a new buffer converted to the requested
 * element type, checking that the stored element type converts without loss
 * (float32 stays float; integers must fit). The caller frees *out, which is
 * not NULL on success even for an empty array. The f32 getter accepts
 * float32 and float64 arrays (ROJ_ERR_RANGE when a float64 element is not
 * exact in float32); the i32 getter accepts every integer element type
 * (ROJ_ERR_RANGE when an element does not fit). Other element types give
 * ROJ_ERR_FORMAT naming the key and both types. */
roj_status gguf_get_arr_f32(const gguf_file *file, const char *key,
                            float **out, uint64_t *n);
roj_status gguf_get_arr_i32(const gguf_file *file, const char *key,
                            int32_t **out, uint64_t *n);
/* Raw element bytes of any array by index; for string arrays *data is the
 * first string's length field. Elements may be unaligned. */
roj_status gguf_kv_array_data(const gguf_file *file, int64_t index,
                              const void **data, uint64_t *n);

/* Tensors. */
int64_t gguf_n_tensors(const gguf_file *file);
const gguf_tensor *gguf_tensor_at(const gguf_file *file, int64_t index);
const gguf_tensor *gguf_find_tensor(const gguf_file *file, const char *name);

/* ------------------------------------------------------------------ */
/* Writer */

typedef struct gguf_writer gguf_writer;

roj_status gguf_writer_create(gguf_writer **out);
void gguf_writer_free(gguf_writer *writer);

/* Setting a key that exists replaces its value in place, keeping its
 * position; a new key goes to the end. Values are copied. */
roj_status gguf_writer_set_u8(gguf_writer *w, const char *key, uint8_t v);
roj_status gguf_writer_set_i8(gguf_writer *w, const char *key, int8_t v);
roj_status gguf_writer_set_u16(gguf_writer *w, const char *key, uint16_t v);
roj_status gguf_writer_set_i16(gguf_writer *w, const char *key, int16_t v);
roj_status gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
roj_status gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
roj_status gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
roj_status gguf_writer_set_i64(gguf_writer *w, const char *key, int64_t v);
roj_status gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
roj_status gguf_writer_set_f64(gguf_writer *w, const char *key, double v);
roj_status gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
roj_status gguf_writer_set_str(gguf_writer *w, const char *key,
                               const char *v);
/* Numeric array of n elements of elem_type, packed. */
roj_status gguf_writer_set_arr(gguf_writer *w, const char *key,
                               enum gguf_type elem_type, const void *data,
                               uint64_t n);
roj_status gguf_writer_set_arr_str(gguf_writer *w, const char *key,
                                   const char *const *strings, uint64_t n);
/* Copies key index of src, whatever its type. */
roj_status gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src,
                               int64_t index);
roj_status gguf_writer_remove_key(gguf_writer *w, const char *key);
roj_status gguf_writer_set_alignment(gguf_writer *w, uint32_t alignment);

/* Adds a tensor. data is not copied: it must stay valid until
 * gguf_writer_write() returns. n_bytes must equal the size implied by type
 * and ne. */
roj_status gguf_writer_add_tensor(gguf_writer *w, const char *name,
                                  uint32_t type, uint32_t n_dims,
                                  const int64_t *ne, const void *data,
                                  uint64_t n_bytes);

/* Writes a GGUF v3 file: to path.tmp, then fsync and rename, so a reader
 * never sees a half-written file. */
roj_status gguf_writer_write(gguf_writer *w, const char *path);

/* Serialises the same bytes gguf_writer_write() would put in a file into a
 * new buffer: on success *data is malloc'd (the caller frees it) and *size
 * is its length in bytes. Fails with ROJ_ERR_NOMEM when memory runs out
 * and ROJ_ERR_INVALID_ARG for an invalid general.alignment. */
roj_status gguf_writer_write_memory(gguf_writer *w, void **data,
                                    size_t *size);

#endif
