/* Reading and checking the jobs of `roj run`: see run_input.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "core/sha256.h"
#include "run/run_input.h"

#define MAX_REPORTED 10

typedef struct span {
    size_t off, len;
    uint32_t line;
} span;

struct run_input {
    char *path;
    char *buf;
    size_t size;
    bool csv;
    span *recs;      /* jsonl: the line of each job; csv: the row */
    size_t n, cap;
    char **header;   /* csv columns */
    size_t n_header;
};

static roj_status push(run_input *in, size_t off, size_t len, uint32_t line)
{
    if (in->n == in->cap) {
        size_t cap = in->cap ? in->cap * 2 : 1024;
        span *r = realloc(in->recs, cap * sizeof *r);
        if (!r)
            return roj_error(ROJ_ERR_NOMEM, "%s: list of %zu jobs",
                             in->path, cap);
        in->recs = r;
        in->cap = cap;
    }
    in->recs[in->n++] = (span){off, len, line};
    return ROJ_OK;
}

/* Appends "FILE:LINE: message" to the report, or counts it past the
 * limit. */
typedef struct report {
    char text[4096];
    size_t len;
    size_t count;
} report;

static void report_add(report *r, const char *path, uint32_t line,
                       const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void report_add(report *r, const char *path, uint32_t line,
                       const char *fmt, ...)
{
    if (r->count++ >= MAX_REPORTED || r->len + 200 >= sizeof r->text)
        return;
    r->len += (size_t)snprintf(r->text + r->len, sizeof r->text - r->len,
                               "%s%s:%u: ", r->len ? "\n" : "", path, line);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->text + r->len, sizeof r->text - r->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        r->len += (size_t)n < sizeof r->text - r->len
                      ? (size_t)n : sizeof r->text - r->len - 1;
}

static void check_object(const run_input *in, const cJSON *obj,
                         uint32_t line, const char *const *fields,
                         size_t n_fields, report *rep)
{
    for (size_t f = 0; f < n_fields; f++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, fields[f]);
        if (!v)
            report_add(rep, in->path, line, "the job has no field \"%s\", "
                       "which the pipeline's input lists", fields[f]);
        else if (cJSON_IsNull(v))
            report_add(rep, in->path, line, "field \"%s\" is null",
                       fields[f]);
    }
}

static roj_status scan_jsonl(run_input *in, const char *const *fields,
                             size_t n_fields, report *rep)
{
    uint32_t line = 0;
    for (size_t off = 0; off < in->size;) {
        const char *p = in->buf + off;
        const char *nl = memchr(p, '\n', in->size - off);
        size_t len = nl ? (size_t)(nl - p) : in->size - off;
        line++;
        size_t a = 0, b = len;
        while (a < b && (p[a] == ' ' || p[a] == '\t' || p[a] == '\r'))
            a++;
        while (b > a && (p[b - 1] == ' ' || p[b - 1] == '\t' ||
                         p[b - 1] == '\r'))
            b--;
        if (b > a) {
            cJSON *obj = cJSON_ParseWithLength(p + a, b - a);
            if (!obj) {
                report_add(rep, in->path, line, "not valid JSON near byte "
                           "%zu of the line; each line must be one JSON "
                           "object", (size_t)(cJSON_GetErrorPtr()
                               ? (size_t)(cJSON_GetErrorPtr() - (p + a)) + a
                               : a));
            } else if (!cJSON_IsObject(obj)) {
                report_add(rep, in->path, line, "a JSON value that is not "
                           "an object; write {\"FIELD\": ...}");
            } else {
                check_object(in, obj, line, fields, n_fields, rep);
            }
            cJSON_Delete(obj);
            roj_status st = push(in, off + a, b - a, line);
            if (st)
                return st;
        }
        off += len + (nl ? 1 : 0);
    }
    return ROJ_OK;
}

/* ---- CSV (RFC 4180: quotes, doubled quotes, CRLF) ---- */

typedef struct csv_row {
    char **cells;
    size_t n, cap;
} csv_row;

static void row_clear(csv_row *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->cells[i]);
    r->n = 0;
}

static bool row_push(csv_row *r, const char *s, size_t len)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        char **c = realloc(r->cells, cap * sizeof *c);
        if (!c)
            return false;
        r->cells = c;
        r->cap = cap;
    }
    char *cell = malloc(len + 1);
    if (!cell)
        return false;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        cell[o++] = s[i];
        if (s[i] == '"' && i + 1 < len && s[i + 1] == '"')
            i++;
    }
    cell[o] = '\0';
    r->cells[r->n++] = cell;
    return true;
}

/* Parses the row at *off; advances *off and *line past it. */
static roj_status csv_parse_row(const run_input *in, size_t *off,
                                uint32_t *line, csv_row *row)
{
    const char *s = in->buf;
    size_t i = *off, n = in->size;
    uint32_t first = *line;
    row_clear(row);
    for (;;) {
        size_t start = i, len;
        if (i < n && s[i] == '"') {
            start = ++i;
            for (;;) {
                if (i >= n)
                    return roj_error(ROJ_ERR_FORMAT, "%s:%u: a quoted value "
                                     "is never closed; end it with \"",
                                     in->path, first);
                if (s[i] == '"') {
                    if (i + 1 < n && s[i + 1] == '"') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                if (s[i] == '\n')
                    (*line)++;
                i++;
            }
            len = i - start;
            i++; /* closing quote */
            if (i < n && s[i] != ',' && s[i] != '\n' && s[i] != '\r')
                return roj_error(ROJ_ERR_FORMAT, "%s:%u: text after a "
                                 "closing quote; double the quote (\"\") "
                                 "inside quoted values", in->path, *line);
        } else {
            while (i < n && s[i] != ',' && s[i] != '\n' && s[i] != '\r')
                i++;
            len = i - start;
        }
        if (!row_push(row, s + start, len))
            return roj_error(ROJ_ERR_NOMEM, "%s:%u: row", in->path, *line);
        if (i < n && s[i] == ',') {
            i++;
            continue;
        }
        if (i < n && s[i] == '\r')
            i++;
        if (i < n && s[i] == '\n')
            i++;
        (*line)++;
        break;
    }
    *off = i;
    return ROJ_OK;
}

static bool row_blank(const csv_row *r)
{
    return r->n == 1 && r->cells[0][0] == '\0';
}

static roj_status scan_csv(run_input *in, const char *const *fields,
                           size_t n_fields, report *rep)
{
    size_t off = 0;
    uint32_t line = 1;
    csv_row row = {0};
    roj_status st = csv_parse_row(in, &off, &line, &row);
    if (st)
        goto done;
    in->header = row.cells;
    in->n_header = row.n;
    row = (csv_row){0};
    for (size_t f = 0; f < n_fields; f++) {
        bool found = false;
        for (size_t c = 0; c < in->n_header; c++)
            found |= !strcmp(in->header[c], fields[f]);
        if (!found)
            report_add(rep, in->path, 1, "the header has no column \"%s\", "
                       "which the pipeline's input lists", fields[f]);
    }
    while (off < in->size) {
        size_t start = off;
        uint32_t first = line;
        if ((st = csv_parse_row(in, &off, &line, &row)) != ROJ_OK)
            goto done;
        if (row_blank(&row))
            continue;
        if (row.n != in->n_header)
            report_add(rep, in->path, first, "%zu values, the header has "
                       "%zu columns", row.n, in->n_header);
        if ((st = push(in, start, off - start, first)) != ROJ_OK)
            goto done;
    }
done:
    row_clear(&row);
    free(row.cells);
    return st;
}

static roj_status read_all(const char *path, char **buf, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return roj_error(ROJ_ERR_IO, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    while (b) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (n < cap)
            break;
        char *nb = realloc(b, cap * 2);
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    bool err = ferror(f);
    fclose(f);
    if (!b)
        return roj_error(ROJ_ERR_NOMEM, "%s: reading", path);
    if (err) {
        free(b);
        return roj_error(ROJ_ERR_IO, "%s: read error", path);
    }
    *buf = b;
    *size = n;
    return ROJ_OK;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

roj_status run_input_open(const char *path, const char *const *fields,
                          size_t n_fields, run_input **out, char digest_hex[65])
{
    run_input *in = calloc(1, sizeof *in);
    if (!in || !(in->path = strdup(path))) {
        free(in);
        return roj_error(ROJ_ERR_NOMEM, "input");
    }
    roj_status st = read_all(path, &in->buf, &in->size);
    if (st)
        goto fail;
    in->csv = ends_with(path, ".csv") || ends_with(path, ".CSV");
    report rep = {0};
    st = in->csv ? scan_csv(in, fields, n_fields, &rep)
                 : scan_jsonl(in, fields, n_fields, &rep);
    if (st)
        goto fail;
    if (rep.count > 0) {
        st = roj_error(ROJ_ERR_FORMAT, "%s%s%zu problem%s in the input; "
                       "fix them and run again", rep.text,
                       rep.count > MAX_REPORTED ? "\n... " : "\n",
                       rep.count, rep.count == 1 ? "" : "s");
        goto fail;
    }
    if (in->n == 0) {
        st = roj_error(ROJ_ERR_FORMAT, "%s: no jobs in the file (%s)", path,
                       in->csv ? "a header and no rows"
                               : "no non-empty line");
        goto fail;
    }
    uint8_t digest[SHA256_DIGEST_SIZE];
    sha256(in->buf, in->size, digest);
    sha256_hex(digest, digest_hex);
    *out = in;
    return ROJ_OK;
fail:
    run_input_close(in);
    return st;
}

uint64_t run_input_count(const run_input *in)
{
    return in->n;
}

static char *id_of(const cJSON *obj, uint32_t line)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id");
    char buf[32];
    if (cJSON_IsString(id))
        return strdup(id->valuestring);
    if (cJSON_IsNumber(id)) {
        char *s = cJSON_PrintUnformatted(id);
        char *copy = s ? strdup(s) : NULL;
        cJSON_free(s);
        return copy;
    }
    snprintf(buf, sizeof buf, "%u", line);
    return strdup(buf);
}

roj_status run_input_get(const run_input *in, uint64_t i, char **id,
                         char **fields)
{
    if (i >= in->n)
        return roj_error(ROJ_ERR_RANGE, "job %llu of %zu",
                         (unsigned long long)i, in->n);
    const span *r = &in->recs[i];
    cJSON *obj = NULL;
    roj_status st = ROJ_OK;
    if (in->csv) {
        csv_row row = {0};
        size_t off = r->off;
        uint32_t line = r->line;
        st = csv_parse_row(in, &off, &line, &row);
        if (st == ROJ_OK) {
            obj = cJSON_CreateObject();
            for (size_t c = 0; obj && c < row.n && c < in->n_header; c++)
                cJSON_AddStringToObject(obj, in->header[c], row.cells[c]);
        }
        row_clear(&row);
        free(row.cells);
    } else {
        obj = cJSON_ParseWithLength(in->buf + r->off, r->len);
    }
    if (st)
        return st;
    if (!obj)
        return roj_error(ROJ_ERR_NOMEM, "%s:%u: job", in->path, r->line);
    *id = id_of(obj, r->line);
    *fields = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (!*id || !*fields) {
        free(*id);
        cJSON_free(*fields);
        return roj_error(ROJ_ERR_NOMEM, "%s:%u: job", in->path, r->line);
    }
    return ROJ_OK;
}

void run_input_close(run_input *in)
{
    if (!in)
        return;
    for (size_t i = 0; i < in->n_header; i++)
        free(in->header[i]);
    free(in->header);
    free(in->recs);
    free(in->buf);
    free(in->path);
    free(in);
}
