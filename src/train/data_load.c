/*
 * train_data_load: reads the file, hashes it, checks its encoding, picks
 * the reader by extension or by the first bytes, and frees the result.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/sha256.h"
#include "train/data_internal.h"

typedef enum data_format {
    FORMAT_CSV,
    FORMAT_TSV,
    FORMAT_JSONL,
    FORMAT_JSON_ARRAY,
} data_format;

static const char *const format_names[] = {"csv", "tsv", "jsonl", "json"};

/* Reads the whole file into a malloc'd buffer with a NUL after it. */
static roj_status read_file(const char *path, char **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return roj_error(ROJ_ERR_IO, "%s: cannot open: %s", path,
                         strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    roj_status st = ROJ_OK;
    while (buf) {
        len += fread(buf + len, 1, cap - len - 1, f);
        if (len < cap - 1)
            break;
        char *grown = cap <= SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
        if (!grown) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = grown;
        cap *= 2;
    }
    if (!buf)
        st = roj_error(ROJ_ERR_NOMEM, "%s: out of memory reading the file",
                       path);
    else if (ferror(f))
        st = roj_error(ROJ_ERR_IO, "%s: read failed: %s", path,
                       strerror(errno));
    fclose(f);
    if (st != ROJ_OK) {
        free(buf);
        return st;
    }
    buf[len] = '\0';
    *data = buf;
    *size = len;
    return ROJ_OK;
}

static bool has_extension(const char *path, const char *ext)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    if (!dot)
        return false;
    for (dot++; *dot && *ext; dot++, ext++)
        if (tolower((unsigned char)*dot) != *ext)
            return false;
    return *dot == '\0' && *ext == '\0';
}

/* Picks the format from the extension. Without one, and for .json, the
 * first character that is not white space decides. */
static data_format detect_format(const char *path, const char *buf,
                                 size_t size)
{
    if (has_extension(path, "csv"))
        return FORMAT_CSV;
    if (has_extension(path, "tsv"))
        return FORMAT_TSV;
    if (has_extension(path, "jsonl") || has_extension(path, "ndjson"))
        return FORMAT_JSONL;
    size_t i = 0;
    while (i < size && isspace((unsigned char)buf[i]))
        i++;
    if (i < size && buf[i] == '[')
        return FORMAT_JSON_ARRAY;
    if ((i < size && buf[i] == '{') || has_extension(path, "json"))
        return FORMAT_JSONL;

    /* No extension to go by: a tab and no comma in the first line is TSV. */
    const char *nl = memchr(buf, '\n', size);
    size_t first = nl ? (size_t)(nl - buf) : size;
    if (memchr(buf, '\t', first) && !memchr(buf, ',', first))
        return FORMAT_TSV;
    return FORMAT_CSV;
}

/* Rejects NUL bytes and invalid UTF-8 anywhere in the file. */
static roj_status check_encoding(const char *path, const char *buf,
                                 size_t size)
{
    const char *nul = memchr(buf, '\0', size);
    size_t bad = data_utf8_check(buf, nul ? (size_t)(nul - buf) : size);
    if (bad != DATA_UTF8_VALID)
        return roj_error(ROJ_ERR_FORMAT,
                         "%s:%u: invalid UTF-8 at byte offset %zu; save the "
                         "file as UTF-8",
                         path, data_line_of(buf, bad), bad);
    if (nul)
        return roj_error(ROJ_ERR_FORMAT,
                         "%s:%u: NUL byte at byte offset %zu; a text data "
                         "file cannot contain one",
                         path, data_line_of(buf, (size_t)(nul - buf)),
                         (size_t)(nul - buf));
    return ROJ_OK;
}

/* Runs the reader for the format and finishes the dataset. */
static roj_status load_records(data_builder *b, data_format format,
                               const char *buf, size_t size,
                               train_dataset *out)
{
    roj_status st;
    b->format = format_names[format];
    switch (format) {
    case FORMAT_CSV: st = data_read_csv(b, buf, size, ','); break;
    case FORMAT_TSV: st = data_read_csv(b, buf, size, '\t'); break;
    case FORMAT_JSONL: st = data_read_jsonl(b, buf, size); break;
    default: st = data_read_json_array(b, buf, size); break;
    }
    return st == ROJ_OK ? builder_finish(b, out) : st;
}

roj_status train_data_load(const char *path, const train_data_opts *opts,
                           train_dataset *out)
{
    if (!out)
        return roj_error(ROJ_ERR_INVALID_ARG, "train_data_load: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path || !opts)
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "train_data_load: path and opts are required");

    char *buf = NULL;
    size_t size = 0;
    data_builder b;
    memset(&b, 0, sizeof b);
    roj_status st = read_file(path, &buf, &size);
    if (st != ROJ_OK)
        return st;
    sha256(buf, size, out->digest);
    st = check_encoding(path, buf, size);
    if (st != ROJ_OK)
        goto cleanup;

    out->arena = data_arena_create();
    out->path = out->arena ? data_arena_strndup(out->arena, path,
                                                strlen(path)) : NULL;
    if (!out->path) {
        st = roj_error(ROJ_ERR_NOMEM, "%s: out of memory", path);
        goto cleanup;
    }
    st = builder_init(&b, out->path, opts, out->arena);
    if (st != ROJ_OK)
        goto cleanup;

    /* A byte order mark is not part of the first field or record. */
    size_t skip = size >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    data_format format = detect_format(path, buf + skip, size - skip);
    st = load_records(&b, format, buf + skip, size - skip, out);

cleanup:
    builder_free(&b);
    free(buf);
    if (st != ROJ_OK)
        train_data_free(out);
    return st;
}

void train_data_free(train_dataset *d)
{
    if (!d)
        return;
    free(d->ex);
    data_arena_destroy(d->arena);
    memset(d, 0, sizeof *d);
}
