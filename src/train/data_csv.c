/*
 * CSV and TSV reader (RFC 4180 with LF or CRLF line ends).
 *
 * A quoted field may contain the delimiter, line breaks and doubled quotes
 * (""), kept as they are apart from the quote doubling. A quote inside an
 * unquoted field is taken literally, as most CSV writers and readers do.
 * After a closing quote only the delimiter or the line end may follow. A
 * CR right before LF, or at the end of the file, belongs to the line end.
 */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "train/data_internal.h"

typedef struct csv_reader {
    const char *path;
    const char *p, *end;
    char delim;
    uint32_t line;       /* line of p */
    char *buf;           /* (buf_cap) unquoted text of the current row */
    size_t buf_len, buf_cap;
    size_t *starts;      /* (cap_fields) offset in buf of each field */
    size_t *lens;        /* (cap_fields) */
    size_t n_fields, cap_fields;
} csv_reader;

static roj_status csv_append(csv_reader *r, const char *s, size_t len)
{
    if (len == 0)
        return ROJ_OK;
    if (r->buf_cap - r->buf_len < len) {
        size_t cap = r->buf_cap ? r->buf_cap : 4096;
        while (cap - r->buf_len < len)
            cap *= 2;
        char *buf = realloc(r->buf, cap);
        if (!buf)
            return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", r->path);
        r->buf = buf;
        r->buf_cap = cap;
    }
    memcpy(r->buf + r->buf_len, s, len);
    r->buf_len += len;
    return ROJ_OK;
}

static roj_status csv_end_field(csv_reader *r, size_t start)
{
    if (r->n_fields == r->cap_fields) {
        size_t cap = r->cap_fields ? r->cap_fields * 2 : 16;
        size_t *starts = realloc(r->starts, cap * sizeof *starts);
        if (starts)
            r->starts = starts;
        size_t *lens = starts ? realloc(r->lens, cap * sizeof *lens) : NULL;
        if (!lens)
            return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", r->path);
        r->lens = lens;
        r->cap_fields = cap;
    }
    r->starts[r->n_fields] = start;
    r->lens[r->n_fields] = r->buf_len - start;
    r->n_fields++;
    return ROJ_OK;
}

/* Returns whether p is at a line end: LF, CRLF, or CR as the last byte. */
static bool at_line_end(const csv_reader *r, const char *p, size_t *skip)
{
    if (*p == '\n') {
        *skip = 1;
        return true;
    }
    if (*p == '\r' && (p + 1 == r->end || p[1] == '\n')) {
        *skip = p + 1 == r->end ? 1 : 2;
        return true;
    }
    return false;
}

/* Reads a quoted field starting at the opening quote. */
static roj_status csv_quoted(csv_reader *r)
{
    uint32_t start_line = r->line;
    const char *p = r->p + 1;
    for (;;) {
        const char *q = memchr(p, '"', (size_t)(r->end - p));
        if (!q)
            return roj_error(ROJ_ERR_FORMAT,
                             "%s:%u: unterminated quoted field starting on "
                             "this line; close it with a \" (write a quote "
                             "inside a field as \"\")",
                             r->path, start_line);
        for (const char *c = p; (c = memchr(c, '\n', (size_t)(q - c))); c++)
            r->line++;
        roj_status st = csv_append(r, p, (size_t)(q - p) + 1);
        if (st != ROJ_OK)
            return st;
        if (q + 1 < r->end && q[1] == '"') {
            p = q + 2; /* a doubled quote: keep one */
            continue;
        }
        r->buf_len--; /* drop the closing quote */
        r->p = q + 1;
        return ROJ_OK;
    }
}

/* Reads one row into r->buf and the field arrays. Sets *blank for an
 * empty line, which has no fields. */
static roj_status csv_read_row(csv_reader *r, bool *blank)
{
    r->buf_len = 0;
    r->n_fields = 0;
    size_t skip = 0;
    *blank = at_line_end(r, r->p, &skip);
    if (*blank) {
        r->p += skip;
        r->line++;
        return ROJ_OK;
    }
    for (;;) {
        size_t start = r->buf_len;
        roj_status st;
        if (r->p < r->end && *r->p == '"') {
            st = csv_quoted(r);
            if (st == ROJ_OK && r->p < r->end && *r->p != r->delim &&
                !at_line_end(r, r->p, &skip))
                st = roj_error(ROJ_ERR_FORMAT,
                               "%s:%u: text after the closing quote of field "
                               "%zu; quote the whole field and double the "
                               "quotes inside it",
                               r->path, r->line, r->n_fields + 1);
        } else {
            const char *q = r->p;
            while (q < r->end && *q != r->delim && !at_line_end(r, q, &skip))
                q++;
            st = csv_append(r, r->p, (size_t)(q - r->p));
            r->p = q;
        }
        if (st == ROJ_OK)
            st = csv_end_field(r, start);
        if (st != ROJ_OK)
            return st;
        if (r->p == r->end)
            return ROJ_OK;
        if (*r->p == r->delim) {
            r->p++;
            continue;
        }
        at_line_end(r, r->p, &skip);
        r->p += skip;
        r->line++;
        return ROJ_OK;
    }
}

static data_value csv_field(const csv_reader *r, size_t i)
{
    return (data_value){r->buf + r->starts[i], r->lens[i]};
}

/* Column indexes of the fields a task reads; SIZE_MAX when unused. */
typedef struct csv_columns {
    size_t text, target, start, end, slot;
    size_t context;   /* SIZE_MAX when no context column is read */
} csv_columns;

/* Writes the header names, quoted and comma-separated, for messages. */
static void header_list(char **header, size_t n, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used + 1 < size; i++) {
        int k = snprintf(out + used, size - used, "%s\"%s\"", i ? ", " : "",
                         header[i]);
        if (k < 0)
            return;
        used += (size_t)k;
    }
}

/* The roj train / roj eval option that names the column of a role. */
static const char *option_of(const char *role)
{
    static const struct { const char *role, *option; } map[] = {
        {"text", "--text-column"}, {"label", "--label-column"},
        {"completion", "--target-column"},
        {"span start", "--span-start-column"},
        {"span end", "--span-end-column"}, {"slot", "--slot-column"},
        {"context", "--context-column"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i].role, role))
            return map[i].option;
    return "see --help";
}

static roj_status find_column(const csv_reader *r, char **header, size_t n,
                              const char *name, const char *role,
                              size_t *index)
{
    *index = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(header[i], name) != 0)
            continue;
        if (*index != SIZE_MAX)
            return roj_error(ROJ_ERR_FORMAT,
                             "%s:1: column \"%s\" (%s) appears twice in the "
                             "header; rename one of them",
                             r->path, name, role);
        *index = i;
    }
    if (*index != SIZE_MAX)
        return ROJ_OK;
    char list[640];
    header_list(header, n, list, sizeof list);
    return roj_error(ROJ_ERR_FORMAT,
                     "%s:1: missing column \"%s\" (%s); the header has: %s. "
                     "Name one of these as the %s column (%s)",
                     r->path, name, role, list, role, option_of(role));
}

/* Copies the header row into the arena and finds the task's columns. */
static roj_status csv_header(data_builder *b, csv_reader *r, csv_columns *c)
{
    size_t n = r->n_fields;
    char **header = data_arena_alloc(b->arena, n * sizeof *header);
    if (!header)
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", b->path);
    for (size_t i = 0; i < n; i++) {
        data_value v = csv_field(r, i);
        header[i] = data_arena_strndup(b->arena, v.s, v.len);
        if (!header[i])
            return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", b->path);
    }

    const data_names *nm = &b->names;
    c->target = c->start = c->end = c->slot = c->context = SIZE_MAX;
    roj_status st = find_column(r, header, n, nm->text, "text", &c->text);
    if (st == ROJ_OK && b->task == TRAIN_CLASSIFY)
        st = find_column(r, header, n, nm->label, "label", &c->target);
    if (st == ROJ_OK && b->task == TRAIN_GENERATE)
        st = find_column(r, header, n, nm->target, "completion", &c->target);
    if (st == ROJ_OK && b->task == TRAIN_EXTRACT)
        st = find_column(r, header, n, nm->start_column, "span start",
                         &c->start);
    if (st == ROJ_OK && b->task == TRAIN_EXTRACT)
        st = find_column(r, header, n, nm->end_column, "span end", &c->end);
    if (st == ROJ_OK && b->task == TRAIN_EXTRACT && nm->slot_column)
        st = find_column(r, header, n, nm->slot_column, "slot", &c->slot);
    if (st == ROJ_OK && nm->context)
        st = find_column(r, header, n, nm->context, "context", &c->context);
    return st;
}

static roj_status parse_offset(const data_builder *b, uint32_t line,
                               data_value v, const char *column, int64_t *out)
{
    if (data_parse_index(v.s, v.len, out))
        return ROJ_OK;
    return roj_error(ROJ_ERR_FORMAT,
                     "%s:%u: column \"%s\" holds \"%.*s\", not a character "
                     "offset; write a whole number >= 0, or leave start and "
                     "end empty when the row labels no span",
                     b->path, line, column, (int)(v.len > 40 ? 40 : v.len),
                     v.s);
}

/* One extract row: the text, and a span unless start and end are empty. */
static roj_status csv_extract_row(data_builder *b, const csv_reader *r,
                                  const csv_columns *c, uint32_t line)
{
    size_t record;
    roj_status st = builder_begin_record(b, line, csv_field(r, c->text), true,
                                         &record);
    if (st != ROJ_OK)
        return st;
    if (c->context != SIZE_MAX && csv_field(r, c->context).len)
        st = builder_set_context(b, true, record, csv_field(r, c->context));
    if (st != ROJ_OK)
        return st;
    data_value start = csv_field(r, c->start);
    data_value end = csv_field(r, c->end);
    if (start.len == 0 && end.len == 0)
        return ROJ_OK;
    int64_t s, e;
    st = parse_offset(b, line, start, b->names.start_column, &s);
    if (st == ROJ_OK)
        st = parse_offset(b, line, end, b->names.end_column, &e);
    if (st != ROJ_OK)
        return st;
    data_value slot = {TRAIN_DATA_DEFAULT_SLOT,
                       sizeof TRAIN_DATA_DEFAULT_SLOT - 1};
    if (c->slot != SIZE_MAX)
        slot = csv_field(r, c->slot);
    return builder_add_span(b, record, line, slot, s, e);
}

static roj_status csv_rows(data_builder *b, csv_reader *r)
{
    bool blank = true;
    roj_status st = ROJ_OK;
    while (blank && r->p < r->end) {
        st = csv_read_row(r, &blank);
        if (st != ROJ_OK)
            return st;
    }
    if (blank)
        return roj_error(ROJ_ERR_FORMAT,
                         "%s: the file is empty; a CSV file needs a header "
                         "row and data rows", b->path);
    csv_columns c = {SIZE_MAX, SIZE_MAX, SIZE_MAX, SIZE_MAX, SIZE_MAX,
                     SIZE_MAX};
    st = csv_header(b, r, &c);
    size_t n_header = r->n_fields;

    while (st == ROJ_OK && r->p < r->end && !builder_full(b)) {
        uint32_t line = r->line;
        st = csv_read_row(r, &blank);
        if (st != ROJ_OK)
            break;
        if (blank) {
            b->n_blank_lines++;
            continue;
        }
        if (r->n_fields != n_header) {
            st = roj_error(ROJ_ERR_FORMAT,
                           "%s:%u: row has %zu fields but the header has "
                           "%zu; quote fields that contain the delimiter "
                           "(%s)",
                           b->path, line, r->n_fields, n_header,
                           r->delim == '\t' ? "tab" : "\",\"");
        } else if (b->task == TRAIN_EXTRACT) {
            st = csv_extract_row(b, r, &c, line);
        } else {
            st = builder_add_row(b, line, csv_field(r, c.text),
                                 csv_field(r, c.target));
            if (st == ROJ_OK && c.context != SIZE_MAX &&
                csv_field(r, c.context).len)
                st = builder_set_context(b, false, b->n_ex - 1,
                                         csv_field(r, c.context));
        }
    }
    if (st == ROJ_OK && b->n_rows == 0)
        st = roj_error(ROJ_ERR_FORMAT,
                       "%s: the file has a header but no data rows; add "
                       "rows below the header", b->path);
    return st;
}

roj_status data_read_csv(data_builder *b, const char *buf, size_t size,
                         char delim)
{
    csv_reader r = {
        .path = b->path, .p = buf, .end = buf + size, .delim = delim,
        .line = 1,
    };
    b->field_word = "column";
    roj_status st = csv_append(&r, "", 1); /* so that r.buf is not NULL */
    r.buf_len = 0;
    if (st == ROJ_OK)
        st = csv_rows(b, &r);
    free(r.buf);
    free(r.starts);
    free(r.lens);
    return st;
}
