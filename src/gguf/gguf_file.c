/*
 * GGUF file handle: opening by path (read-only private mapping), closing,
 * and the accessors for the header, keys and tensors.
 */
#include "gguf/gguf_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

static const char *const type_names[GGUF_TYPE_COUNT] = {
    [GGUF_TYPE_UINT8] = "uint8",     [GGUF_TYPE_INT8] = "int8",
    [GGUF_TYPE_UINT16] = "uint16",   [GGUF_TYPE_INT16] = "int16",
    [GGUF_TYPE_UINT32] = "uint32",   [GGUF_TYPE_INT32] = "int32",
    [GGUF_TYPE_FLOAT32] = "float32", [GGUF_TYPE_BOOL] = "bool",
    [GGUF_TYPE_STRING] = "string",   [GGUF_TYPE_ARRAY] = "array",
    [GGUF_TYPE_UINT64] = "uint64",   [GGUF_TYPE_INT64] = "int64",
    [GGUF_TYPE_FLOAT64] = "float64",
};

const char *gguf_type_name(uint32_t type)
{
    return type < GGUF_TYPE_COUNT ? type_names[type] : "unknown";
}

/* Maps path read-only; *size 0 leaves *map NULL. */
static roj_status map_file(const char *path, void **map, uint64_t *size)
{
    struct stat st;
    roj_status status = ROJ_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return roj_error(ROJ_ERR_IO, "%s: cannot open: %s", path,
                         strerror(errno));
    if (fstat(fd, &st) != 0) {
        status = roj_error(ROJ_ERR_IO, "%s: cannot stat: %s", path,
                           strerror(errno));
        goto close_fd;
    }
    if (!S_ISREG(st.st_mode)) {
        status = roj_error(ROJ_ERR_IO, "%s: not a regular file", path);
        goto close_fd;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        status = roj_error(ROJ_ERR_IO, "%s: file of %lld bytes does not fit "
                           "in the address space", path,
                           (long long)st.st_size);
        goto close_fd;
    }
    *size = (uint64_t)st.st_size;
    *map = NULL;
    if (*size > 0) {
        void *p = mmap(NULL, (size_t)*size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            status = roj_error(ROJ_ERR_IO, "%s: mmap of %llu bytes failed: "
                               "%s", path, (unsigned long long)*size,
                               strerror(errno));
            goto close_fd;
        }
        *map = p;
    }
close_fd:
    close(fd);
    return status;
}

roj_status gguf_open(const char *path, gguf_file **out)
{
    gguf_file *f = NULL;
    void *map = NULL;
    uint64_t size = 0;
    roj_status st;

    if (!path || !out)
        return roj_error(ROJ_ERR_INVALID_ARG, "gguf_open: NULL argument");
    *out = NULL;
    if ((st = map_file(path, &map, &size)) != ROJ_OK)
        return st;
    f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        if (map)
            munmap(map, (size_t)size);
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", path);
    }
    f->map = map;
    f->map_size = (size_t)size;
    f->data = map;
    f->size = size;
    return gguf_parse_owned(f, out);
}

void gguf_close(gguf_file *f)
{
    if (!f)
        return;
    if (f->kvs) {
        for (int64_t i = 0; i < f->n_kv; i++)
            free(f->kvs[i].str_offsets);
    }
    free(f->kvs);
    free(f->tensors);
    free(f->arena);
    free(f->kv_index.slots);
    free(f->tensor_index.slots);
    if (f->map)
        munmap(f->map, f->map_size);
    free(f->path);
    free(f);
}

uint32_t gguf_version(const gguf_file *f)
{
    return f->version;
}

const char *gguf_path(const gguf_file *f)
{
    return f->path;
}

uint64_t gguf_file_size(const gguf_file *f)
{
    return f->size;
}

uint64_t gguf_alignment(const gguf_file *f)
{
    return f->alignment;
}

uint64_t gguf_data_offset(const gguf_file *f)
{
    return f->data_offset;
}

int64_t gguf_n_kv(const gguf_file *f)
{
    return f->n_kv;
}

static const char *kv_name(const void *ctx, int64_t i)
{
    return ((const gguf_file *)ctx)->kvs[i].key;
}

static const char *tensor_name(const void *ctx, int64_t i)
{
    return ((const gguf_file *)ctx)->tensors[i].t.name;
}

int64_t gguf_find_key(const gguf_file *f, const char *key)
{
    return gguf_index_find(&f->kv_index, key, kv_name, f);
}

const char *gguf_kv_key(const gguf_file *f, int64_t i)
{
    return i >= 0 && i < f->n_kv ? f->kvs[i].key : NULL;
}

enum gguf_type gguf_kv_type(const gguf_file *f, int64_t i)
{
    return i >= 0 && i < f->n_kv ? (enum gguf_type)f->kvs[i].type
                                 : GGUF_TYPE_COUNT;
}

enum gguf_type gguf_kv_array_type(const gguf_file *f, int64_t i)
{
    if (i < 0 || i >= f->n_kv || f->kvs[i].type != GGUF_TYPE_ARRAY)
        return GGUF_TYPE_COUNT;
    return (enum gguf_type)f->kvs[i].arr_type;
}

uint64_t gguf_kv_array_len(const gguf_file *f, int64_t i)
{
    if (i < 0 || i >= f->n_kv || f->kvs[i].type != GGUF_TYPE_ARRAY)
        return 0;
    return f->kvs[i].arr_n;
}

int64_t gguf_n_tensors(const gguf_file *f)
{
    return f->n_tensors;
}

const gguf_tensor *gguf_tensor_at(const gguf_file *f, int64_t i)
{
    return i >= 0 && i < f->n_tensors ? &f->tensors[i].t : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name)
{
    int64_t i = gguf_index_find(&f->tensor_index, name, tensor_name, f);
    return i < 0 ? NULL : &f->tensors[i].t;
}
