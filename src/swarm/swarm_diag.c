/* Problem reports of the swarm file loader and the readers of scalar
 * values that report them. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "swarm/swarm_internal.h"

static void diag_append(swarm_diag *d, const char *s, size_t n)
{
    if (d->nomem)
        return;
    if (d->len + n + 1 > d->cap) {
        size_t cap = d->cap ? d->cap : 1024;
        while (cap < d->len + n + 1)
            cap *= 2;
        char *text = realloc(d->text, cap);
        if (!text) {
            d->nomem = true;
            return;
        }
        d->text = text;
        d->cap = cap;
    }
    memcpy(d->text + d->len, s, n);
    d->len += n;
    d->text[d->len] = '\0';
}

bool diag_full(const swarm_diag *d)
{
    return d->count > SWARM_MAX_PROBLEMS || d->nomem;
}

void diag_add(swarm_diag *d, swarm_mark mark, const char *field,
              const char *fmt, ...)
{
    d->count++;
    if (d->count > SWARM_MAX_PROBLEMS)
        return;
    char line[1024];
    int used = snprintf(line, sizeof line, "%s:%u:%u: ", d->file, mark.line,
                        mark.column);
    if (field && used >= 0 && (size_t)used < sizeof line)
        used += snprintf(line + used, sizeof line - (size_t)used, "%s: ",
                         field);
    if (used >= 0 && (size_t)used < sizeof line) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line + used, sizeof line - (size_t)used, fmt, ap);
        va_end(ap);
    }
    diag_append(d, line, strlen(line));
    diag_append(d, "\n", 1);
}

const char *diag_quote(const char *value, size_t len, char *buf,
                       size_t size)
{
    const size_t max = 60;
    size_t o = 0;
    if (size < 8) {
        if (size)
            buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (size_t i = 0; i < len && i < max && o + 6 < size; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else if (c < 0x20 || c == 0x7f) {
            buf[o++] = '?';
        } else {
            buf[o++] = (char)c;
        }
    }
    if (len > max && o + 5 < size) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

/* Levenshtein distance of two words. Words over 64 bytes get SIZE_MAX, so
 * no suggestion is made for them. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 64 || m > 64)
        return SIZE_MAX;
    size_t row[65];
    for (size_t j = 0; j <= m; j++)
        row[j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t up = row[j];
            size_t best = diagonal + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diagonal = up;
        }
    }
    return row[m];
}

const char *diag_nearest(const char *word, const char *const *candidates,
                         size_t n)
{
    const char *best = NULL;
    size_t best_distance = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        if (!candidates[i])
            continue;
        size_t dist = edit_distance(word, candidates[i]);
        if (dist < best_distance) {
            best_distance = dist;
            best = candidates[i];
        }
    }
    size_t len = strlen(word);
    size_t allowed = len < 6 ? 2 : len / 3;
    return best && best_distance <= allowed ? best : NULL;
}

void diag_suggest(const char *word, const char *const *candidates,
                  size_t n, char *buf, size_t size)
{
    const char *near = diag_nearest(word, candidates, n);
    if (near) {
        snprintf(buf, size, " Did you mean \"%s\"?", near);
        return;
    }
    if (n == 0) {
        snprintf(buf, size, " None is defined.");
        return;
    }
    size_t o = (size_t)snprintf(buf, size, " Known: ");
    for (size_t i = 0; i < n && o < size; i++)
        if (candidates[i])
            o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? ", " : "",
                                  candidates[i]);
    if (o < size)
        snprintf(buf + o, size - o, ".");
}

void diag_check_keys(swarm_diag *d, const ynode *map, const char *field,
                     const char *const *known, size_t n_known)
{
    for (size_t i = 0; i < map->n && !diag_full(d); i++) {
        const ynode *key = ymap_key(map, i);
        bool found = false;
        for (size_t k = 0; k < n_known && !found; k++)
            found = !strcmp(key->text, known[k]);
        if (found)
            continue;
        char quoted[80], advice[320];
        diag_suggest(key->text, known, n_known, advice, sizeof advice);
        diag_add(d, key->mark, field, "unknown key %s.%s",
                 diag_quote(key->text, key->len, quoted, sizeof quoted),
                 advice);
    }
}

const char *field_key(char *buf, size_t size, const char *parent,
                      const char *key)
{
    snprintf(buf, size, "%s.%s", parent, key);
    return buf;
}

const char *field_index(char *buf, size_t size, const char *parent,
                        size_t i)
{
    snprintf(buf, size, "%s[%zu]", parent, i);
    return buf;
}

/* ---- value readers ---- */

bool read_string(swarm_loader *l, const ynode *node, const char *field,
                 const char **out)
{
    if (!node || node->kind != YNODE_SCALAR || ynode_is_null(node)) {
        diag_add(&l->diag, node ? node->mark : (swarm_mark){0, 0}, field,
                 "expected a string, got %s", ynode_kind_name(node));
        return false;
    }
    if (strlen(node->text) != node->len) {
        diag_add(&l->diag, node->mark, field, "the string contains a NUL "
                 "byte; remove it");
        return false;
    }
    *out = node->text;
    return true;
}

bool read_uint(swarm_loader *l, const ynode *node, const char *field,
               uint64_t min, uint64_t max, uint64_t *out)
{
    const char *s;
    if (!read_string(l, node, field, &s))
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    char quoted[80];
    if (s[0] < '0' || s[0] > '9' || *end || errno == ERANGE) {
        diag_add(&l->diag, node->mark, field, "%s is not a whole number",
                 diag_quote(node->text, node->len, quoted, sizeof quoted));
        return false;
    }
    if (v < min || v > max) {
        diag_add(&l->diag, node->mark, field, "%llu is out of range; use "
                 "%llu to %llu", v, (unsigned long long)min,
                 (unsigned long long)max);
        return false;
    }
    *out = v;
    return true;
}

bool read_float(swarm_loader *l, const ynode *node, const char *field,
                double *out)
{
    const char *s;
    if (!read_string(l, node, field, &s))
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno == ERANGE || !isfinite(v)) {
        char quoted[80];
        diag_add(&l->diag, node->mark, field, "%s is not a number",
                 diag_quote(node->text, node->len, quoted, sizeof quoted));
        return false;
    }
    *out = v;
    return true;
}

bool parse_duration(const char *text, uint32_t *ms)
{
    const char *p = text;
    double value = 0;
    bool digits = false;
    while (*p >= '0' && *p <= '9') {
        value = value * 10 + (*p++ - '0');
        digits = true;
        if (value > 1e9)
            return false;
    }
    if (*p == '.') {
        double scale = 0.1;
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10) {
            value += (*p - '0') * scale;
            digits = true;
        }
    }
    if (!digits)
        return false;
    double unit;
    if (!strcmp(p, "ms"))
        unit = 1;
    else if (!strcmp(p, "s"))
        unit = 1000;
    else if (!strcmp(p, "m"))
        unit = 60000;
    else if (!strcmp(p, "h"))
        unit = 3600000;
    else
        return false;
    double total = value * unit;
    if (total < 1 || total > 86400000.0)
        return false;
    *ms = (uint32_t)llround(total);
    return true;
}

bool read_duration(swarm_loader *l, const ynode *node, const char *field,
                   uint32_t *ms)
{
    const char *s;
    if (!read_string(l, node, field, &s))
        return false;
    if (parse_duration(s, ms))
        return true;
    char quoted[80];
    diag_add(&l->diag, node->mark, field, "%s is not a valid duration; "
             "write a number and a unit (ms, s, m or h), such as 250ms or "
             "5s, from 1ms to 24h",
             diag_quote(node->text, node->len, quoted, sizeof quoted));
    return false;
}

bool read_string_list(swarm_loader *l, const ynode *node, const char *field,
                      const char *const **out, size_t *n)
{
    if (!node || node->kind != YNODE_SEQ) {
        diag_add(&l->diag, node ? node->mark : (swarm_mark){0, 0}, field,
                 "expected a list such as [a, b], got %s",
                 ynode_kind_name(node));
        return false;
    }
    if (node->n > SWARM_MAX_LIST) {
        diag_add(&l->diag, node->mark, field, "the list has %zu items; at "
                 "most %d are allowed", node->n, SWARM_MAX_LIST);
        return false;
    }
    const char **items = arena_alloc(l->arena, (node->n + 1) * sizeof *items);
    if (!items) {
        l->diag.nomem = true;
        return false;
    }
    bool ok = true;
    char sub[256];
    for (size_t i = 0; i < node->n; i++) {
        const ynode *item = node->items[i];
        field_index(sub, sizeof sub, field, i);
        if (!read_string(l, item, sub, &items[i])) {
            ok = false;
            continue;
        }
        if (items[i][0] == '\0') {
            diag_add(&l->diag, item->mark, sub, "empty string; remove it");
            ok = false;
        }
    }
    *out = items;
    *n = node->n;
    if (!ok || node->n < 2)
        return ok;

    /* Sorted, so that the check costs n log n on long lists. */
    ynode **sorted = malloc(node->n * sizeof *sorted);
    if (!sorted) {
        l->diag.nomem = true;
        return false;
    }
    memcpy(sorted, node->items, node->n * sizeof *sorted);
    qsort(sorted, node->n, sizeof *sorted, ynode_compare);
    for (size_t i = 1; i < node->n; i++) {
        const ynode *a = sorted[i - 1], *b = sorted[i];
        if (a->len != b->len || memcmp(a->text, b->text, a->len))
            continue;
        char quoted[80];
        diag_add(&l->diag, b->mark, field, "%s is listed twice (first at "
                 "line %u, column %u); remove one",
                 diag_quote(b->text, b->len, quoted, sizeof quoted),
                 a->mark.line, a->mark.column);
        ok = false;
    }
    free(sorted);
    return ok;
}
