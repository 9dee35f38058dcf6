/* Templates: "{name}" placeholders, "{{" and "}}" for literal braces. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "swarm/swarm_internal.h"

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

bool tmpl_scan(const char *tmpl, tmpl_visit_fn fn, void *ctx,
               const char **error, size_t *offset)
{
    for (size_t i = 0; tmpl[i]; i++) {
        if (tmpl[i] == '}') {
            if (tmpl[i + 1] == '}') {
                i++;
                continue;
            }
            *error = "a lone '}'; write }} for a literal brace";
            *offset = i;
            return false;
        }
        if (tmpl[i] != '{')
            continue;
        if (tmpl[i + 1] == '{') {
            i++;
            continue;
        }
        size_t start = i + 1, end = start;
        while (is_name_char(tmpl[end]))
            end++;
        if (tmpl[end] != '}' || end == start) {
            *error = "'{' does not start a {name} placeholder; write {{ "
                     "for a literal brace";
            *offset = i;
            return false;
        }
        if (fn)
            fn(ctx, tmpl + start, end - start, i);
        i = end;
    }
    return true;
}

typedef struct out_buffer {
    char *data;
    size_t len, cap;
} out_buffer;

static bool out_put(out_buffer *b, const char *s, size_t n)
{
    if (n > SIZE_MAX / 2 - b->len)
        return false;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *data = realloc(b->data, cap);
        if (!data)
            return false;
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

/* Appends value as the inside of a JSON string (RFC 8259 escapes). */
static bool out_put_json(out_buffer *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7] = {'\\', 0};
        size_t len = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            if (c >= 0x20) {
                if (!out_put(b, (const char *)&s[i], 1))
                    return false;
                continue;
            }
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            len = 6;
        }
        if (!out_put(b, esc, len))
            return false;
    }
    return true;
}

roj_status swarm_render(const char *tmpl, swarm_lookup_fn fn, void *ctx,
                        unsigned flags, char **out)
{
    *out = NULL;
    const char *error;
    size_t offset;
    if (!tmpl_scan(tmpl, NULL, NULL, &error, &offset))
        return roj_error(ROJ_ERR_FORMAT, "template at byte %zu: %s", offset,
                         error);

    out_buffer b = {0};
    roj_status st = ROJ_OK;
    size_t i = 0;
    while (tmpl[i] && !st) {
        size_t run = i;
        while (tmpl[run] && tmpl[run] != '{' && tmpl[run] != '}')
            run++;
        if (run > i && !out_put(&b, tmpl + i, run - i))
            goto nomem;
        i = run;
        if (!tmpl[i])
            break;
        if (tmpl[i + 1] == tmpl[i]) {
            /* "{{" or "}}": tmpl_scan has rejected lone braces. */
            if (!out_put(&b, tmpl + i, 1))
                goto nomem;
            i += 2;
            continue;
        }
        size_t end = i + 1;
        while (tmpl[end] != '}')
            end++;
        char name[256];
        size_t n = end - i - 1;
        if (n >= sizeof name) {
            st = roj_error(ROJ_ERR_FORMAT, "template at byte %zu: the "
                           "placeholder name is longer than %zu bytes", i,
                           sizeof name - 1);
            break;
        }
        memcpy(name, tmpl + i + 1, n);
        name[n] = '\0';
        const char *value = NULL;
        size_t len = 0;
        st = fn(ctx, name, &value, &len);
        if (st == ROJ_ERR_NOT_FOUND) {
            st = roj_error(ROJ_ERR_NOT_FOUND, "template at byte %zu: {%s} "
                           "has no value", i, name);
            break;
        }
        if (st)
            break;
        bool ok = flags & SWARM_RENDER_JSON ? out_put_json(&b, value, len)
                                            : out_put(&b, value, len);
        if (!ok)
            goto nomem;
        i = end + 1;
    }
    if (st) {
        free(b.data);
        return st;
    }
    if (!b.data && !out_put(&b, "", 0))
        goto nomem;
    *out = b.data;
    return ROJ_OK;

nomem:
    free(b.data);
    return roj_error(ROJ_ERR_NOMEM, "template: out of memory");
}
