/*
 * JSON Lines and JSON array readers, parsed with cJSON.
 *
 * cJSON keeps no positions, so the line of each record is found here. For
 * JSON Lines it is the line being parsed. For an array file, a scan over
 * the bytes (tracking strings and nesting) notes the line where each
 * top-level element starts, and element i of the parsed array gets the
 * i-th line.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "train/data_internal.h"

/* Largest integer a double stores exactly: 2^53. */
#define JSON_MAX_EXACT_INT 9007199254740992.0

/* Writes the member names of obj, quoted, for messages. */
static void member_list(const cJSON *obj, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (const cJSON *c = obj ? obj->child : NULL; c && used + 1 < size;
         c = c->next) {
        int k = snprintf(out + used, size - used, "%s\"%s\"", used ? ", " : "",
                         c->string ? c->string : "");
        if (k < 0)
            return;
        used += (size_t)k;
    }
    if (used == 0)
        snprintf(out, size, "no fields");
}

/* Follows a dotted path from obj and returns the item, or NULL. On NULL,
 * *parent is the object where the next name was not found and
 * *found_len the length of the path prefix that was found. */
static const cJSON *json_path(const cJSON *obj, const char *path,
                              const cJSON **parent, size_t *found_len)
{
    const cJSON *cur = obj;
    const char *seg = path;
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t len = dot ? (size_t)(dot - seg) : strlen(seg);
        const cJSON *next = NULL;
        if (cJSON_IsObject(cur)) {
            for (const cJSON *c = cur->child; c; c = c->next) {
                if (c->string && strlen(c->string) == len &&
                    memcmp(c->string, seg, len) == 0) {
                    next = c;
                    break;
                }
            }
        }
        if (!next) {
            *parent = cur;
            *found_len = seg == path ? 0 : (size_t)(seg - path - 1);
            return NULL;
        }
        if (!dot)
            return next;
        cur = next;
        seg = dot + 1;
    }
}

static roj_status missing_field(const data_builder *b, uint32_t line,
                                const char *path, const char *role,
                                const cJSON *parent, size_t found_len)
{
    char list[640];
    member_list(cJSON_IsObject(parent) ? parent : NULL, list, sizeof list);
    if (found_len == 0)
        return roj_error(ROJ_ERR_FORMAT,
                         "%s:%u: missing field \"%s\" (%s); the record has: "
                         "%s. Name one of these as the %s field",
                         b->path, line, path, role, list, role);
    return roj_error(ROJ_ERR_FORMAT,
                     "%s:%u: missing field \"%s\" (%s); \"%.*s\" has: %s",
                     b->path, line, path, role, (int)found_len, path, list);
}

/* Reads a string or number field that must be present as text into *v.
 * A number is formatted into num (32 bytes). */
static roj_status json_required(const data_builder *b, uint32_t line,
                                const cJSON *obj, const char *path,
                                const char *role, char *num, data_value *v)
{
    const cJSON *parent;
    size_t found_len;
    const cJSON *item = json_path(obj, path, &parent, &found_len);
    if (!item)
        return missing_field(b, line, path, role, parent, found_len);
    if (cJSON_IsString(item)) {
        v->s = item->valuestring;
        v->len = strlen(item->valuestring);
        return ROJ_OK;
    }
    if (cJSON_IsNumber(item)) {
        double d = item->valuedouble;
        if (d == floor(d) && fabs(d) < JSON_MAX_EXACT_INT)
            snprintf(num, 32, "%lld", (long long)d);
        else
            snprintf(num, 32, "%.17g", d);
        v->s = num;
        v->len = strlen(num);
        return ROJ_OK;
    }
    return roj_error(ROJ_ERR_FORMAT,
                     "%s:%u: field \"%s\" (%s) is not a string or a number; "
                     "write it as a JSON string",
                     b->path, line, path, role);
}

/* Reads a character offset, a whole number >= 0. A missing field gives
 * fallback when that is >= 0, else an error. */
static roj_status json_offset(const data_builder *b, uint32_t line,
                              const cJSON *span, const char *path,
                              int64_t fallback, int64_t *out)
{
    const cJSON *parent;
    size_t found_len;
    const cJSON *item = json_path(span, path, &parent, &found_len);
    if (!item && fallback >= 0) {
        *out = fallback;
        return ROJ_OK;
    }
    if (!item)
        return missing_field(b, line, path, "span offset", parent, found_len);
    double d = cJSON_IsNumber(item) ? item->valuedouble : -1.0;
    if (d < 0 || d != floor(d) || d >= JSON_MAX_EXACT_INT)
        return roj_error(ROJ_ERR_FORMAT,
                         "%s:%u: span offset \"%s\" is not a whole number "
                         ">= 0; offsets count Unicode code points",
                         b->path, line, path);
    *out = (int64_t)d;
    return ROJ_OK;
}

/* Adds the spans listed in an extract record. */
static roj_status json_spans(data_builder *b, uint32_t line, const cJSON *obj,
                             size_t record)
{
    const data_names *nm = &b->names;
    const cJSON *parent;
    size_t found_len;
    const cJSON *list = json_path(obj, nm->spans, &parent, &found_len);
    if (!list || cJSON_IsNull(list))
        return ROJ_OK; /* the record labels no slot */
    if (!cJSON_IsArray(list))
        return roj_error(ROJ_ERR_FORMAT,
                         "%s:%u: field \"%s\" is not a list of spans; write "
                         "it as [{\"%s\": ..., ...}, ...]",
                         b->path, line, nm->spans, nm->span_slot);
    for (const cJSON *span = list->child; span; span = span->next) {
        if (!cJSON_IsObject(span))
            return roj_error(ROJ_ERR_FORMAT,
                             "%s:%u: an entry of \"%s\" is not an object",
                             b->path, line, nm->spans);
        char num[32];
        data_value slot;
        int64_t start, end;
        roj_status st = json_required(b, line, span, nm->span_slot, "slot",
                                      num, &slot);
        if (st == ROJ_OK)
            st = json_offset(b, line, span, nm->span_start, 0, &start);
        if (st == ROJ_OK)
            st = json_offset(b, line, span, nm->span_end, -1, &end);
        if (st == ROJ_OK)
            st = builder_add_span(b, record, line, slot, start, end);
        if (st != ROJ_OK)
            return st;
    }
    return ROJ_OK;
}

/* Reads the optional context field: a string, a number, or an array of
 * strings joined with ", " into buf (cap bytes); missing gives "". */
static roj_status json_context(const data_builder *b, uint32_t line,
                               const cJSON *obj, char *buf, size_t cap,
                               data_value *v)
{
    const cJSON *parent;
    size_t found_len;
    v->s = "";
    v->len = 0;
    const cJSON *item = json_path(obj, b->names.context, &parent, &found_len);
    if (!item || cJSON_IsNull(item))
        return ROJ_OK;
    if (cJSON_IsString(item)) {
        v->s = item->valuestring;
        v->len = strlen(item->valuestring);
        return ROJ_OK;
    }
    if (cJSON_IsNumber(item)) {
        snprintf(buf, cap, "%.17g", item->valuedouble);
        v->s = buf;
        v->len = strlen(buf);
        return ROJ_OK;
    }
    if (!cJSON_IsArray(item))
        return roj_error(ROJ_ERR_FORMAT,
                         "%s:%u: context field \"%s\" is not a string, a "
                         "number or an array of strings", b->path, line,
                         b->names.context);
    size_t n = 0;
    const cJSON *el;
    cJSON_ArrayForEach(el, item) {
        if (!cJSON_IsString(el))
            return roj_error(ROJ_ERR_FORMAT,
                             "%s:%u: context field \"%s\" holds an array "
                             "element that is not a string", b->path, line,
                             b->names.context);
        const size_t len = strlen(el->valuestring);
        if (n + len + 3 > cap)
            return roj_error(ROJ_ERR_FORMAT,
                             "%s:%u: context field \"%s\" is longer than "
                             "%zu bytes", b->path, line, b->names.context,
                             cap - 3);
        if (n) {
            memcpy(buf + n, ", ", 2);
            n += 2;
        }
        memcpy(buf + n, el->valuestring, len);
        n += len;
    }
    buf[n] = '\0';
    v->s = buf;
    v->len = n;
    return ROJ_OK;
}

static roj_status json_record(data_builder *b, const cJSON *obj, uint32_t line)
{
    if (!cJSON_IsObject(obj))
        return roj_error(ROJ_ERR_FORMAT,
                         "%s:%u: the record is not a JSON object; write "
                         "each record as {\"%s\": ..., ...}",
                         b->path, line, b->names.text);
    char text_num[32], target_num[32];
    data_value text, target;
    roj_status st = json_required(b, line, obj, b->names.text, "text",
                                  text_num, &text);
    if (st != ROJ_OK)
        return st;
    char ctx_buf[1024];
    data_value ctx = {"", 0};
    if (b->names.context &&
        (st = json_context(b, line, obj, ctx_buf, sizeof ctx_buf, &ctx)))
        return st;
    if (b->task == TRAIN_EXTRACT) {
        size_t record;
        st = builder_begin_record(b, line, text, false, &record);
        if (st == ROJ_OK && ctx.len)
            st = builder_set_context(b, true, record, ctx);
        return st == ROJ_OK ? json_spans(b, line, obj, record) : st;
    }
    if (b->task == TRAIN_CLASSIFY)
        st = json_required(b, line, obj, b->names.label, "label", target_num,
                           &target);
    else
        st = json_required(b, line, obj, b->names.target, "completion",
                           target_num, &target);
    if (st == ROJ_OK)
        st = builder_add_row(b, line, text, target);
    if (st == ROJ_OK && ctx.len)
        st = builder_set_context(b, false, b->n_ex - 1, ctx);
    return st;
}

/* Formats a syntax error at err (a position inside buf). */
static roj_status syntax_error(const data_builder *b, const char *buf,
                               size_t size, const char *err)
{
    if (!err || err < buf || err > buf + size)
        err = buf + size;
    size_t off = (size_t)(err - buf);
    size_t n = 0;
    while (off + n < size && n < 24 && err[n] != '\n' && err[n] != '\r')
        n++;
    return roj_error(ROJ_ERR_FORMAT,
                     "%s:%u: JSON syntax error %s\"%.*s\"; fix the JSON on "
                     "this line",
                     b->path, data_line_of(buf, off), n ? "at " : "at the end",
                     (int)n, err);
}

static bool only_space(const char *p, const char *end)
{
    for (; p < end; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
            return false;
    return true;
}

roj_status data_read_jsonl(data_builder *b, const char *buf, size_t size)
{
    b->field_word = "field";
    const char *p = buf, *end = buf + size;
    uint32_t line = 1;
    roj_status st = ROJ_OK;
    for (; p < end && st == ROJ_OK && !builder_full(b); line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        if (only_space(p, line_end)) {
            b->n_blank_lines += nl != NULL || p < line_end;
        } else {
            const char *parse_end = NULL;
            cJSON *obj = cJSON_ParseWithLengthOpts(
                p, (size_t)(line_end - p), &parse_end, 0);
            if (!obj)
                st = syntax_error(b, buf, size, parse_end);
            else if (!only_space(parse_end, line_end))
                st = roj_error(ROJ_ERR_FORMAT,
                               "%s:%u: text after the JSON object; JSON Lines "
                               "needs exactly one object per line",
                               b->path, line);
            else
                st = json_record(b, obj, line);
            cJSON_Delete(obj);
        }
        p = nl ? nl + 1 : end;
    }
    return st;
}

/* Notes the line where each top-level element of the array in buf
 * starts. The scan trusts the syntax; cJSON checks it afterwards. */
static roj_status element_lines(const data_builder *b, const char *buf,
                                size_t size, uint32_t **lines, size_t *n)
{
    size_t cap = 1024, count = 0;
    uint32_t *out = malloc(cap * sizeof *out);
    if (!out)
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", b->path);
    uint32_t line = 1;
    int depth = 0;
    bool in_string = false, escaped = false, expect_element = false;
    for (size_t i = 0; i < size; i++) {
        char c = buf[i];
        if (c == '\n')
            line++;
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (depth == 1 && expect_element && c != ']') {
            if (count == cap) {
                cap *= 2;
                uint32_t *grown = realloc(out, cap * sizeof *out);
                if (!grown) {
                    free(out);
                    return roj_error(ROJ_ERR_NOMEM, "%s: out of memory",
                                     b->path);
                }
                out = grown;
            }
            out[count++] = line;
            expect_element = false;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            depth++;
            expect_element = depth == 1 && c == '[';
        } else if (c == ']' || c == '}') {
            depth--;
        } else if (c == ',' && depth == 1) {
            expect_element = true;
        }
    }
    *lines = out;
    *n = count;
    return ROJ_OK;
}

roj_status data_read_json_array(data_builder *b, const char *buf,
                                size_t size)
{
    b->field_word = "field";
    uint32_t *lines = NULL;
    size_t n_lines = 0;
    const char *parse_end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, size, &parse_end, 0);
    roj_status st = ROJ_OK;
    if (!root) {
        st = syntax_error(b, buf, size, parse_end);
        goto cleanup;
    }
    if (!only_space(parse_end, buf + size)) {
        st = roj_error(ROJ_ERR_FORMAT,
                       "%s:%u: text after the end of the JSON array; a JSON "
                       "data file holds one array of records",
                       b->path, data_line_of(buf, (size_t)(parse_end - buf)));
        goto cleanup;
    }
    if (!cJSON_IsArray(root)) {
        st = roj_error(ROJ_ERR_FORMAT,
                       "%s:1: the file is not a JSON array of records; use "
                       "[{...}, ...], or JSON Lines (.jsonl) with one object "
                       "per line", b->path);
        goto cleanup;
    }
    st = element_lines(b, buf, size, &lines, &n_lines);
    if (st != ROJ_OK)
        goto cleanup;

    size_t i = 0;
    for (const cJSON *e = root->child; e && !builder_full(b); e = e->next) {
        if (i >= n_lines) {
            st = roj_error(ROJ_ERR_INTERNAL,
                           "%s: found %zu array elements by scanning but "
                           "cJSON has more", b->path, n_lines);
            goto cleanup;
        }
        st = json_record(b, e, lines[i++]);
        if (st != ROJ_OK)
            goto cleanup;
    }

cleanup:
    free(lines);
    cJSON_Delete(root);
    return st;
}
