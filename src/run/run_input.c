/*
 * Reading and checking the jobs of `roj run`: see run_input.h.
 *
 * The whole file is read into memory and checked once when it opens,
 * which records where each job starts. run_input_get parses a job again
 * from those bytes, so memory stays at the file's size plus one span per
 * job.
 */
#include "run/run_input.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <utf8proc.h>

#include "core/error.h"
#include "core/sha256.h"
#include "core/strmap.h"

/* Problems listed in the error message; the others are only counted. */
#define MAX_LISTED 10

/* The error message keeps at most 1023 bytes (ERROR_MESSAGE_MAX in
 * core/error.c), so the list stops early enough for the count after it
 * to fit. */
#define REPORT_TEXT_MAX 1024
#define REPORT_SUMMARY_MAX 128

/* The bytes of one job: its line (JSON Lines) or row (CSV). */
typedef struct span {
    size_t off, len;
    uint32_t line; /* 1-based line where the job starts */
} span;

struct run_input {
    char *path;
    char *buf;       /* the whole file, size bytes */
    size_t size;
    size_t start;    /* offset after a UTF-8 byte order mark, else 0 */
    bool csv;
    span *recs;      /* one per job, in file order */
    size_t n, cap;
    char **header;   /* CSV column names */
    size_t n_header;
    struct id_set *ids; /* while the file is checked */
};

static char *id_of(const run_input *in, const span *r, const cJSON *obj);

static roj_status push(run_input *in, size_t off, size_t len, uint32_t line)
{
    if (in->n == in->cap) {
        size_t cap = in->cap ? in->cap * 2 : 1024;
        span *r = realloc(in->recs, cap * sizeof *r);
        if (!r)
            return roj_error(ROJ_ERR_NOMEM, "%s: out of memory for a list "
                             "of %zu jobs", in->path, cap);
        in->recs = r;
        in->cap = cap;
    }
    in->recs[in->n++] = (span){off, len, line};
    return ROJ_OK;
}

/* ---- the list of problems ---- */

/* "FILE:LINE: problem" lines: the first MAX_LISTED that fit are kept
 * and every one is counted. */
typedef struct report {
    char text[REPORT_TEXT_MAX - REPORT_SUMMARY_MAX];
    size_t len;
    size_t listed;
    size_t count;
    bool full; /* a line did not fit, so no later line is listed */
} report;

static void report_add(report *r, const char *path, uint32_t line,
                       const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void report_add(report *r, const char *path, uint32_t line,
                       const char *fmt, ...)
{
    r->count++;
    if (r->full || r->listed >= MAX_LISTED ||
        r->len + 2 >= sizeof r->text)
        return;

    char item[sizeof r->text];
    int head = snprintf(item, sizeof item, "%s:%u: ", path, line);
    if (head < 0) {
        item[0] = '\0';
        head = 0;
    }
    if ((size_t)head < sizeof item) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(item + head, sizeof item - (size_t)head, fmt, ap);
        va_end(ap);
    }

    /* The first line is cut to fit (a very long path); a later line
     * that does not fit ends the list. */
    size_t n = strlen(item);
    size_t room = sizeof r->text - r->len - 2;
    if (n > room && r->listed > 0) {
        r->full = true;
        return;
    }
    if (n > room)
        n = room;
    memcpy(r->text + r->len, item, n);
    r->text[r->len + n] = '\n';
    r->len += n + 1;
    r->text[r->len] = '\0';
    r->listed++;
}

/* Turns a report with problems into the error returned by the open. */
static roj_status report_error(const report *r)
{
    if (r->listed < r->count)
        return roj_error(ROJ_ERR_FORMAT, "%s... and %zu more (%zu problems "
                         "in all); fix them and run again", r->text,
                         r->count - r->listed, r->count);
    return roj_error(ROJ_ERR_FORMAT, "%s%zu problem%s in the input; fix "
                     "them and run again", r->text, r->count,
                     r->count == 1 ? "" : "s");
}

/* ---- unique job ids ---- */

/* The ids seen so far, for the check that no two jobs share one: output
 * lines carry the id, so a shared id would make two results
 * indistinguishable. Exists only while the file is checked. */
typedef struct id_set {
    strmap lines; /* id -> line of the first job with it */
    char **ids;   /* the map's keys, owned here */
    size_t n, cap;
} id_set;

static void id_set_free(id_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        free(set->ids[i]);
    free(set->ids);
    strmap_free(&set->lines);
    free(set);
}

/* Records the id of the job on `line`, or reports the earlier job that
 * has it. */
static roj_status id_set_add(run_input *in, const char *id, uint32_t line,
                             report *rep)
{
    id_set *set = in->ids;
    size_t len = strlen(id);
    uint32_t first = strmap_get(&set->lines, id, len);
    if (first != STRMAP_MISSING) {
        report_add(rep, in->path, line, "job id \"%.60s%s\" is also the "
                   "id of line %u; give every job its own \"id\" (or none, "
                   "to use line numbers)", id, len > 60 ? "..." : "", first);
        return ROJ_OK;
    }

    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 1024;
        char **ids = realloc(set->ids, cap * sizeof *ids);
        if (!ids)
            goto nomem;
        set->ids = ids;
        set->cap = cap;
    }
    char *copy = strdup(id);
    if (!copy)
        goto nomem;
    set->ids[set->n++] = copy;
    if (strmap_put(&set->lines, copy, len, line) != ROJ_OK)
        goto nomem;
    return ROJ_OK;

nomem:
    return roj_error(ROJ_ERR_NOMEM, "input %s: out of memory for the ids "
                     "of %zu jobs", in->path, set->n);
}

/* Returns the offset of the first byte of s[0 .. n) that is NUL or not
 * valid UTF-8 (utf8proc rejects overlong forms and surrogates), or n. */
static size_t find_bad_byte(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0)
            return i;
        if (c < 0x80) {
            i++;
            continue;
        }
        utf8proc_int32_t codepoint;
        utf8proc_ssize_t step = utf8proc_iterate(
            (const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i),
            &codepoint);
        if (step <= 0)
            return i;
        i += (size_t)step;
    }
    return n;
}

/* Reports the bad byte of line s[0 .. n), if any; returns true when the
 * line is valid UTF-8 without NUL bytes. */
static bool check_encoding(const run_input *in, const char *s, size_t n,
                           uint32_t line, report *rep)
{
    size_t bad = find_bad_byte(s, n);
    if (bad == n)
        return true;
    if (s[bad] == '\0')
        report_add(rep, in->path, line, "a NUL byte at column %zu; the "
                   "input must be text", bad + 1);
    else
        report_add(rep, in->path, line, "invalid UTF-8 (byte 0x%02x) at "
                   "column %zu; save the file as UTF-8", (unsigned)
                   (unsigned char)s[bad], bad + 1);
    return false;
}

/* ---- JSON Lines ---- */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static const char *json_type_name(const cJSON *v)
{
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsBool(v))
        return "a boolean";
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsArray(v))
        return "an array";
    return "an object";
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
    /* NOTE: cJSON ends a string at an escaped NUL (\u0000), so such a
     * value reaches the job cut short, with no problem reported. */
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id");
    if (id && !cJSON_IsString(id) && !cJSON_IsNumber(id))
        report_add(rep, in->path, line, "field \"id\" is %s, expected a "
                   "string or a number (or no \"id\", to use the line "
                   "number)", json_type_name(id));
}

/* Checks one non-blank line s[0 .. n) and records it as a job. */
static roj_status scan_json_line(run_input *in, size_t off, size_t n,
                                 uint32_t line, const char *const *fields,
                                 size_t n_fields, report *rep)
{
    const char *s = in->buf + off;
    if (!check_encoding(in, s, n, line, rep))
        return ROJ_OK;

    const char *end = NULL;
    cJSON *obj = cJSON_ParseWithLengthOpts(s, n, &end, false);
    if (!obj) {
        size_t column = end && end >= s && end <= s + n
                            ? (size_t)(end - s) + 1 : 1;
        report_add(rep, in->path, line, "invalid JSON at column %zu; each "
                   "line must be one JSON object", column);
        return ROJ_OK;
    }
    size_t rest = (size_t)(end - s);
    while (rest < n && is_space(s[rest]))
        rest++;
    if (rest < n)
        report_add(rep, in->path, line, "text after the JSON value at "
                   "column %zu; each line must be one JSON object",
                   rest + 1);
    else if (!cJSON_IsObject(obj))
        report_add(rep, in->path, line, "the line is %s, not a JSON "
                   "object; write {\"FIELD\": ...}", json_type_name(obj));
    else {
        check_object(in, obj, line, fields, n_fields, rep);
        span r = {off, n, line};
        char *id = id_of(in, &r, obj);
        roj_status st = id ? id_set_add(in, id, line, rep)
                           : roj_error(ROJ_ERR_NOMEM, "input %s: out of "
                                       "memory", in->path);
        free(id);
        if (st != ROJ_OK) {
            cJSON_Delete(obj);
            return st;
        }
    }
    cJSON_Delete(obj);
    return push(in, off, n, line);
}

static roj_status scan_jsonl(run_input *in, const char *const *fields,
                             size_t n_fields, report *rep)
{
    uint32_t line = 0;
    for (size_t off = in->start; off < in->size;) {
        const char *p = in->buf + off;
        const char *nl = memchr(p, '\n', in->size - off);
        size_t len = nl ? (size_t)(nl - p) : in->size - off;
        line++;

        /* Trim spaces, tabs and the CR of a CRLF line end. */
        size_t a = 0, b = len;
        while (a < b && is_space(p[a]))
            a++;
        while (b > a && is_space(p[b - 1]))
            b--;
        if (b > a) {
            roj_status st = scan_json_line(in, off + a, b - a, line, fields,
                                           n_fields, rep);
            if (st != ROJ_OK)
                return st;
        }
        off += len + (nl ? 1 : 0);
    }
    return ROJ_OK;
}

static size_t skip_json_string(const char *s, size_t i, size_t n)
{
    for (i++; i < n && s[i] != '"'; i++)
        if (s[i] == '\\')
            i++;
    return i + 1;
}

static size_t skip_json_value(const char *s, size_t i, size_t n)
{
    if (i < n && s[i] == '"')
        return skip_json_string(s, i, n);
    int depth = 0;
    while (i < n) {
        char c = s[i];
        if (c == '"') {
            i = skip_json_string(s, i, n);
            continue;
        }
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return i;
            if (--depth == 0)
                return i + 1;
        } else if (depth == 0 && (c == ',' || is_space(c))) {
            return i;
        }
        i++;
    }
    return i;
}

static bool json_key_is_id(const char *key, size_t len)
{
    if (len == 4 && !memcmp(key, "\"id\"", 4))
        return true;
    if (!memchr(key, '\\', len))
        return false;
    cJSON *decoded = cJSON_ParseWithLength(key, len);
    bool is_id = cJSON_IsString(decoded) &&
                 !strcmp(decoded->valuestring, "id");
    cJSON_Delete(decoded);
    return is_id;
}

/* Returns the text of the top-level member "id" of the JSON object
 * s[0 .. n), exactly as written, in *value and *value_len; false when it
 * is not found. The caller has parsed s already, so it is valid JSON. A
 * number id keeps its digits this way: a double would round ids past
 * 2^53. */
static bool find_raw_id(const char *s, size_t n, const char **value,
                        size_t *value_len)
{
    size_t i = 0;
    while (i < n && is_space(s[i]))
        i++;
    if (i >= n || s[i] != '{')
        return false;
    i++;
    while (i < n) {
        while (i < n && (is_space(s[i]) || s[i] == ','))
            i++;
        if (i >= n || s[i] != '"')
            return false;
        size_t key = i;
        i = skip_json_string(s, i, n);
        if (i > n)
            return false;
        size_t key_len = i - key;
        while (i < n && (is_space(s[i]) || s[i] == ':'))
            i++;
        size_t start = i;
        i = skip_json_value(s, i, n);
        if (i > n)
            return false;
        if (json_key_is_id(s + key, key_len)) {
            *value = s + start;
            *value_len = i - start;
            return true;
        }
    }
    return false;
}

/* ---- CSV (RFC 4180: quotes, doubled quotes, CRLF) ---- */

typedef struct csv_row {
    char **cells;
    size_t n, cap;
} csv_row;

/* Where and why a row could not be parsed. */
typedef struct csv_problem {
    uint32_t line;
    bool unclosed; /* a quoted value runs to the end of the file */
} csv_problem;

static void row_clear(csv_row *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->cells[i]);
    r->n = 0;
}

static void row_free(csv_row *r)
{
    row_clear(r);
    free(r->cells);
    *r = (csv_row){0};
}

/* Appends a cell; a quoted cell's doubled quotes become one. */
static bool row_push(csv_row *r, const char *s, size_t len, bool quoted)
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
        if (quoted && s[i] == '"' && i + 1 < len && s[i + 1] == '"')
            i++;
    }
    cell[o] = '\0';
    r->cells[r->n++] = cell;
    return true;
}

/* Parses the row at *off into row and advances *off and *line past it.
 * A syntax error returns ROJ_ERR_FORMAT with *problem filled and *off
 * at the byte where parsing stopped. */
static roj_status csv_parse_row(const run_input *in, size_t *off,
                                uint32_t *line, csv_row *row,
                                csv_problem *problem)
{
    const char *s = in->buf;
    size_t i = *off, n = in->size;
    uint32_t first = *line;
    row_clear(row);
    for (;;) {
        size_t start = i, len;
        bool quoted = i < n && s[i] == '"';
        if (quoted) {
            start = ++i;
            for (;;) {
                if (i >= n) {
                    *problem = (csv_problem){first, true};
                    *off = i;
                    return ROJ_ERR_FORMAT;
                }
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
            if (i < n && s[i] != ',' && s[i] != '\n' && s[i] != '\r') {
                *problem = (csv_problem){*line, false};
                *off = i;
                return ROJ_ERR_FORMAT;
            }
        } else {
            while (i < n && s[i] != ',' && s[i] != '\n' && s[i] != '\r')
                i++;
            len = i - start;
        }
        if (!row_push(row, s + start, len, quoted))
            return roj_error(ROJ_ERR_NOMEM, "%s:%u: out of memory for a "
                             "CSV row", in->path, *line);
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

/* Reports a CSV syntax error. Returns true when scanning can go on
 * after it, at the next line for text after a closing quote. Returns
 * false for a quote never closed, because it takes the rest of the
 * file. */
static bool report_csv_problem(run_input *in, const csv_problem *p,
                               size_t *off, uint32_t *line, report *rep)
{
    if (p->unclosed) {
        report_add(rep, in->path, p->line, "a quoted value is never "
                   "closed; end it with \"");
        return false;
    }
    report_add(rep, in->path, p->line, "text after a closing quote; "
               "inside a quoted value, write a quote as \"\"");
    const char *nl = memchr(in->buf + *off, '\n', in->size - *off);
    *off = nl ? (size_t)(nl - in->buf) + 1 : in->size;
    *line = p->line + 1;
    return true;
}

/* Reports empty, duplicate and missing header columns. */
static void check_header(const run_input *in, const char *const *fields,
                         size_t n_fields, report *rep)
{
    if (in->n_header == 1 && !in->header[0][0]) {
        report_add(rep, in->path, 1, "the first line is blank; it must be "
                   "the header row that names the columns");
        return;
    }
    for (size_t c = 0; c < in->n_header; c++) {
        if (!in->header[c][0]) {
            report_add(rep, in->path, 1, "header column %zu has no name",
                       c + 1);
            continue;
        }
        for (size_t d = 0; d < c; d++)
            if (!strcmp(in->header[c], in->header[d])) {
                report_add(rep, in->path, 1, "the header has column \"%s\" "
                           "twice (columns %zu and %zu)", in->header[c],
                           d + 1, c + 1);
                break;
            }
    }
    for (size_t f = 0; f < n_fields; f++) {
        bool found = false;
        for (size_t c = 0; c < in->n_header && !found; c++)
            found = !strcmp(in->header[c], fields[f]);
        if (!found)
            report_add(rep, in->path, 1, "the header has no column \"%s\", "
                       "which the pipeline's input lists", fields[f]);
    }
}

static roj_status scan_csv(run_input *in, const char *const *fields,
                           size_t n_fields, report *rep)
{
    /* Encoding, line by line, before the CSV syntax. */
    uint32_t line = 1;
    for (size_t off = in->start; off < in->size; line++) {
        const char *p = in->buf + off;
        const char *nl = memchr(p, '\n', in->size - off);
        size_t len = nl ? (size_t)(nl - p) : in->size - off;
        check_encoding(in, p, len, line, rep);
        off += len + (nl ? 1 : 0);
    }

    /* The header row. */
    size_t off = in->start;
    line = 1;
    csv_row row = {0};
    csv_problem problem;
    roj_status st = csv_parse_row(in, &off, &line, &row, &problem);
    if (st == ROJ_ERR_FORMAT) {
        report_csv_problem(in, &problem, &off, &line, rep);
        row_free(&row);
        return ROJ_OK;
    }
    if (st != ROJ_OK) {
        row_free(&row);
        return st;
    }
    in->header = row.cells;
    in->n_header = row.n;
    row = (csv_row){0};
    check_header(in, fields, n_fields, rep);
    size_t id_col = SIZE_MAX;
    for (size_t i = 0; i < in->n_header; i++)
        if (!strcmp(in->header[i], "id"))
            id_col = i;

    /* One job per row; blank lines are skipped. */
    while (off < in->size) {
        size_t start = off;
        uint32_t first = line;
        st = csv_parse_row(in, &off, &line, &row, &problem);
        if (st == ROJ_ERR_FORMAT) {
            st = ROJ_OK;
            if (report_csv_problem(in, &problem, &off, &line, rep))
                continue;
            break;
        }
        if (st != ROJ_OK)
            break;
        bool blank = row.n == 1 && !row.cells[0][0] &&
                     in->buf[start] != '"';
        if (blank)
            continue;
        if (row.n != in->n_header)
            report_add(rep, in->path, first, "the row has %zu values, "
                       "expected %zu (one per header column)", row.n,
                       in->n_header);
        if ((st = push(in, start, off - start, first)) != ROJ_OK)
            break;
        /* As id_of: the "id" column's value, else the line number. */
        char number[16];
        snprintf(number, sizeof number, "%u", first);
        const char *id = id_col < row.n ? row.cells[id_col] : number;
        if ((st = id_set_add(in, id, first, rep)) != ROJ_OK)
            break;
    }
    row_free(&row);
    return st;
}

/* ---- opening ---- */

static roj_status read_all(const char *path, char **buf, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return roj_error(ROJ_ERR_IO, "input %s: %s", path, strerror(errno));
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
    int read_errno = ferror(f) ? errno : 0;
    fclose(f);
    if (!b)
        return roj_error(ROJ_ERR_NOMEM, "input %s: out of memory after "
                         "%zu bytes", path, n);
    if (read_errno) {
        free(b);
        return roj_error(ROJ_ERR_IO, "input %s: read failed: %s", path,
                         strerror(read_errno));
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

/* Checks that the file has content and jobs; reports at line 1. */
static void check_not_empty(const run_input *in, report *rep)
{
    if (in->size == in->start) {
        report_add(rep, in->path, 1, "the file is empty, so there are no "
                   "jobs");
        return;
    }
    if (in->n > 0 || rep->count > 0)
        return;
    if (in->csv)
        report_add(rep, in->path, 1, "a header and no rows, so there are "
                   "no jobs");
    else
        report_add(rep, in->path, 1, "every line is blank, so there are "
                   "no jobs");
}

roj_status run_input_open(const char *path, const char *const *fields,
                          size_t n_fields, run_input **out,
                          char digest_hex[65])
{
    if (out)
        *out = NULL;
    if (!path || !out || !digest_hex || (n_fields && !fields))
        return roj_error(ROJ_ERR_INVALID_ARG, "run_input_open: path, out, "
                         "digest_hex and fields must not be NULL");
    run_input *in = calloc(1, sizeof *in);
    if (!in || !(in->path = strdup(path))) {
        free(in);
        return roj_error(ROJ_ERR_NOMEM, "input %s: out of memory", path);
    }
    roj_status st = read_all(path, &in->buf, &in->size);
    if (st != ROJ_OK)
        goto fail;

    /* Check every line, collecting the problems. */
    if (in->size >= 3 && !memcmp(in->buf, "\xef\xbb\xbf", 3))
        in->start = 3;
    in->csv = ends_with(path, ".csv") || ends_with(path, ".CSV");
    report rep = {0};
    in->ids = calloc(1, sizeof *in->ids);
    if (!in->ids) {
        st = roj_error(ROJ_ERR_NOMEM, "input %s: out of memory", path);
        goto fail;
    }
    if (in->size > in->start)
        st = in->csv ? scan_csv(in, fields, n_fields, &rep)
                     : scan_jsonl(in, fields, n_fields, &rep);
    id_set_free(in->ids);
    in->ids = NULL;
    if (st != ROJ_OK)
        goto fail;
    check_not_empty(in, &rep);
    if (rep.count > 0) {
        st = report_error(&rep);
        goto fail;
    }

    /* The digest covers every byte, the byte order mark too. */
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
    return in ? in->n : 0;
}

/* ---- jobs ---- */

/* Builds the object of a CSV row: every header column, as strings. */
static cJSON *csv_object(const run_input *in, const span *r)
{
    csv_row row = {0};
    csv_problem problem;
    size_t off = r->off;
    uint32_t line = r->line;
    cJSON *obj = NULL;
    if (csv_parse_row(in, &off, &line, &row, &problem) == ROJ_OK)
        obj = cJSON_CreateObject();
    for (size_t c = 0; obj && c < row.n && c < in->n_header; c++) {
        if (!cJSON_AddStringToObject(obj, in->header[c], row.cells[c])) {
            cJSON_Delete(obj);
            obj = NULL;
        }
    }
    row_free(&row);
    return obj;
}

/* Returns the job's id as a new string: "id" as written, else the line
 * number. */
static char *id_of(const run_input *in, const span *r, const cJSON *obj)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id");
    if (cJSON_IsString(id))
        return strdup(id->valuestring);
    const char *raw;
    size_t raw_len;
    if (cJSON_IsNumber(id) &&
        find_raw_id(in->buf + r->off, r->len, &raw, &raw_len))
        return strndup(raw, raw_len);
    char buf[16];
    snprintf(buf, sizeof buf, "%u", r->line);
    return strdup(buf);
}

roj_status run_input_get(const run_input *in, uint64_t i, char **id,
                         char **fields)
{
    if (!in || !id || !fields)
        return roj_error(ROJ_ERR_INVALID_ARG, "run_input_get: input, id "
                         "and fields must not be NULL");
    *id = NULL;
    *fields = NULL;
    if (i >= in->n)
        return roj_error(ROJ_ERR_RANGE, "input %s: job index %llu is out "
                         "of range, the file has %zu jobs", in->path,
                         (unsigned long long)i, in->n);
    const span *r = &in->recs[i];
    cJSON *obj = in->csv ? csv_object(in, r)
                         : cJSON_ParseWithLength(in->buf + r->off, r->len);
    if (!obj)
        return roj_error(ROJ_ERR_NOMEM, "%s:%u: out of memory for the job",
                         in->path, r->line);
    char *id_text = id_of(in, r, obj);
    char *json = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (!id_text || !json) {
        free(id_text);
        cJSON_free(json);
        return roj_error(ROJ_ERR_NOMEM, "%s:%u: out of memory for the job",
                         in->path, r->line);
    }
    *id = id_text;
    *fields = json;
    return ROJ_OK;
}

void run_input_close(run_input *in)
{
    if (!in)
        return;
    for (size_t i = 0; i < in->n_header; i++)
        free(in->header[i]);
    free(in->header);
    id_set_free(in->ids);
    free(in->recs);
    free(in->buf);
    free(in->path);
    free(in);
}
