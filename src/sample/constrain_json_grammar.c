/*
 * Byte-level grammar of the JSON objects roj_generate_json() writes:
 *
 *   {"k0": v0, "k1": v1}
 *
 * The text between values ("{\"k0\": ", ", \"k1\": ", "}") is forced. A
 * string or enum value's opening quote belongs to the forced text before
 * it; a value ends when the first byte of the next forced text arrives
 * (',' or '}'), which numbers need to know where they end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "sample/constrain_internal.h"

#define DEFAULT_STRING_CHARS 64
#define DEFAULT_DIGITS 12

typedef struct json_literal {
    char *text;   /* JSON bytes of the value, closing quote included */
    int32_t len;
} json_literal;

typedef struct json_field_rule {
    roj_json_type type;
    int32_t max;            /* characters or digits */
    json_literal *literals; /* enum and boolean */
    size_t n_literals;
} json_field_rule;

struct json_grammar {
    size_t n_fields;
    json_field_rule *rules;   /* (n_fields) */
    char **forced;            /* (n_fields + 1) text before value i; the
                               * last one is the closing brace */
    int32_t *forced_len;      /* (n_fields + 1) */
};

/* Value sub-states. */
enum {
    STR_CHAR,      /* inside a string, at a character boundary */
    STR_ESCAPE,    /* after a backslash */
    STR_UTF8,      /* inside a multi-byte character */
    STR_CLOSED,    /* after the closing quote */
    NUM_START,     /* nothing written yet */
    NUM_SIGN,      /* after '-' */
    NUM_ZERO,      /* integer part is "0" */
    NUM_DIGITS,    /* integer part 1-9 followed by digits */
    NUM_DOT,       /* after '.', a digit must follow */
    NUM_FRACTION,  /* fraction digits */
    LIT_MATCH      /* matching one of the literals */
};

/* Appends s as the inside of a JSON string (no quotes) to a malloc'd
 * buffer at *buf of *len bytes. */
static roj_status append_escaped(char **buf, int32_t *len, const char *s)
{
    size_t n = strlen(s);
    char *p = realloc(*buf, (size_t)*len + n * 6 + 8);
    if (!p)
        return roj_error(ROJ_ERR_NOMEM, "json: out of memory");
    *buf = p;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char *at = p + *len;
        if (c == '"' || c == '\\') {
            at[0] = '\\';
            at[1] = (char)c;
            *len += 2;
        } else if (c < 0x20) {
            *len += snprintf(at, 7, "\\u%04x", c);
        } else {
            at[0] = (char)c;
            *len += 1;
        }
    }
    p[*len] = '\0';
    return ROJ_OK;
}

static roj_status append_raw(char **buf, int32_t *len, const char *s)
{
    size_t n = strlen(s);
    char *p = realloc(*buf, (size_t)*len + n + 1);
    if (!p)
        return roj_error(ROJ_ERR_NOMEM, "json: out of memory");
    memcpy(p + *len, s, n + 1);
    *buf = p;
    *len += (int32_t)n;
    return ROJ_OK;
}

static roj_status build_literals(json_field_rule *r, const roj_json_field *f,
                                 size_t index)
{
    static const char *const BOOLS[2] = {"true", "false"};
    const char *const *values = f->type == ROJ_JSON_BOOLEAN ? BOOLS
                                                            : f->values;
    size_t n = f->type == ROJ_JSON_BOOLEAN ? 2 : f->n_values;
    bool quoted = f->type == ROJ_JSON_ENUM;
    roj_status st = ROJ_OK;

    if (n == 0 || !values)
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "json: field %zu ('%s') is an enum without values",
                         index, f->key);
    r->literals = calloc(n, sizeof *r->literals);
    if (!r->literals)
        return roj_error(ROJ_ERR_NOMEM, "json: out of memory");
    r->n_literals = n;
    for (size_t i = 0; i < n && st == ROJ_OK; i++) {
        json_literal *lit = &r->literals[i];
        if (!values[i])
            return roj_error(ROJ_ERR_INVALID_ARG,
                             "json: field %zu value %zu is NULL", index, i);
        st = quoted ? append_escaped(&lit->text, &lit->len, values[i])
                    : append_raw(&lit->text, &lit->len, values[i]);
        if (st == ROJ_OK && quoted)
            st = append_raw(&lit->text, &lit->len, "\"");
    }
    return st;
}

void json_grammar_free(json_grammar *g)
{
    if (!g)
        return;
    for (size_t i = 0; g->rules && i < g->n_fields; i++) {
        for (size_t j = 0; j < g->rules[i].n_literals; j++)
            free(g->rules[i].literals[j].text);
        free(g->rules[i].literals);
    }
    for (size_t i = 0; g->forced && i <= g->n_fields; i++)
        free(g->forced[i]);
    free(g->rules);
    free(g->forced);
    free(g->forced_len);
    free(g);
}

roj_status json_grammar_create(const roj_json_field *fields, size_t n,
                               json_grammar **out)
{
    json_grammar *g = NULL;
    roj_status st = ROJ_OK;

    *out = NULL;
    if (n == 0)
        return roj_error(ROJ_ERR_INVALID_ARG, "json: no fields given");
    g = calloc(1, sizeof *g);
    if (!g)
        return roj_error(ROJ_ERR_NOMEM, "json: out of memory");
    g->n_fields = n;
    g->rules = calloc(n, sizeof *g->rules);
    g->forced = calloc(n + 1, sizeof *g->forced);
    g->forced_len = calloc(n + 1, sizeof *g->forced_len);
    if (!g->rules || !g->forced || !g->forced_len) {
        json_grammar_free(g);
        return roj_error(ROJ_ERR_NOMEM, "json: out of memory");
    }

    for (size_t i = 0; i < n && st == ROJ_OK; i++) {
        const roj_json_field *f = &fields[i];
        json_field_rule *r = &g->rules[i];
        bool text_value = f->type == ROJ_JSON_STRING ||
                          f->type == ROJ_JSON_ENUM;
        if (!f->key) {
            st = roj_error(ROJ_ERR_INVALID_ARG, "json: field %zu has no key",
                           i);
            break;
        }
        if ((unsigned)f->type > ROJ_JSON_ENUM) {
            st = roj_error(ROJ_ERR_INVALID_ARG,
                           "json: field %zu ('%s') has invalid type %d", i,
                           f->key, (int)f->type);
            break;
        }
        r->type = f->type;
        r->max = f->max_length > 0 ? f->max_length
                 : f->type == ROJ_JSON_STRING ? DEFAULT_STRING_CHARS
                                              : DEFAULT_DIGITS;
        if (f->type == ROJ_JSON_ENUM || f->type == ROJ_JSON_BOOLEAN)
            st = build_literals(r, f, i);
        if (st == ROJ_OK)
            st = append_raw(&g->forced[i], &g->forced_len[i],
                            i == 0 ? "{\"" : ", \"");
        if (st == ROJ_OK)
            st = append_escaped(&g->forced[i], &g->forced_len[i], f->key);
        if (st == ROJ_OK)
            st = append_raw(&g->forced[i], &g->forced_len[i],
                            text_value ? "\": \"" : "\": ");
    }
    if (st == ROJ_OK)
        st = append_raw(&g->forced[n], &g->forced_len[n], "}");
    if (st != ROJ_OK) {
        json_grammar_free(g);
        return st;
    }
    *out = g;
    return ROJ_OK;
}

json_state json_grammar_start(const json_grammar *g)
{
    (void)g;
    json_state s = {.field = 0, .phase = JSON_PHASE_FORCED};
    return s;
}

/* Starts the value of field s->field. */
static void begin_value(const json_grammar *g, json_state *s)
{
    const json_field_rule *r = &g->rules[s->field];

    s->phase = JSON_PHASE_VALUE;
    s->pos = 0;
    s->count = 0;
    s->cand = 0;
    switch (r->type) {
    case ROJ_JSON_STRING: s->sub = STR_CHAR; break;
    case ROJ_JSON_INTEGER:
    case ROJ_JSON_NUMBER: s->sub = NUM_START; break;
    default: s->sub = LIT_MATCH; break;
    }
}

/* Moves to the forced text before field `field`, pos bytes of it already
 * written. */
static void enter_forced(const json_grammar *g, json_state *s, int32_t field,
                         int32_t pos)
{
    s->field = field;
    s->phase = JSON_PHASE_FORCED;
    s->pos = pos;
    if (pos < g->forced_len[field])
        return;
    if ((size_t)field == g->n_fields)
        s->phase = JSON_PHASE_DONE;
    else
        begin_value(g, s);
}

/* Whether the literals of a rule include one equal to the first pos bytes
 * of literal cand. */
static bool literal_complete(const json_field_rule *r, const json_state *s)
{
    const json_literal *c = &r->literals[s->cand];
    for (size_t i = (size_t)s->cand; i < r->n_literals; i++)
        if (r->literals[i].len == s->pos &&
            memcmp(r->literals[i].text, c->text, (size_t)s->pos) == 0)
            return true;
    return false;
}

/* Whether the value written so far is complete. */
static bool value_complete(const json_grammar *g, const json_state *s)
{
    switch (s->sub) {
    case STR_CLOSED:
    case NUM_ZERO:
    case NUM_DIGITS:
    case NUM_FRACTION: return true;
    case LIT_MATCH: return literal_complete(&g->rules[s->field], s);
    default: return false;
    }
}

static bool step_literal(const json_field_rule *r, json_state *s,
                         unsigned char b)
{
    const json_literal *c = &r->literals[s->cand];
    for (size_t i = (size_t)s->cand; i < r->n_literals; i++) {
        const json_literal *l = &r->literals[i];
        if (l->len > s->pos && (unsigned char)l->text[s->pos] == b &&
            memcmp(l->text, c->text, (size_t)s->pos) == 0) {
            s->cand = (int32_t)i;
            s->pos++;
            return true;
        }
    }
    return false;
}

/* Sets up the continuation bytes of a UTF-8 lead byte; false if b is not
 * a valid lead byte. */
static bool begin_utf8(json_state *s, unsigned char b)
{
    s->utf8_lo = 0x80;
    s->utf8_hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
        s->utf8_left = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
        s->utf8_left = 2;
        if (b == 0xE0)
            s->utf8_lo = 0xA0;
        else if (b == 0xED)
            s->utf8_hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        s->utf8_left = 3;
        if (b == 0xF0)
            s->utf8_lo = 0x90;
        else if (b == 0xF4)
            s->utf8_hi = 0x8F;
    } else {
        return false;
    }
    return true;
}

static bool step_string(const json_field_rule *r, json_state *s,
                        unsigned char b)
{
    switch (s->sub) {
    case STR_CHAR:
        if (b == '"') {
            s->sub = STR_CLOSED;
            return true;
        }
        if (s->count >= r->max || b < 0x20)
            return false;
        if (b == '\\') {
            s->sub = STR_ESCAPE;
            return true;
        }
        if (b < 0x80) {
            s->count++;
            return true;
        }
        if (!begin_utf8(s, b))
            return false;
        s->sub = STR_UTF8;
        return true;
    case STR_ESCAPE:
        if (!strchr("\"\\/bfnrt", b) || b == 0)
            return false;
        s->count++;
        s->sub = STR_CHAR;
        return true;
    case STR_UTF8:
        if (b < s->utf8_lo || b > s->utf8_hi)
            return false;
        s->utf8_lo = 0x80;
        s->utf8_hi = 0xBF;
        if (--s->utf8_left == 0) {
            s->count++;
            s->sub = STR_CHAR;
        }
        return true;
    default:
        return false;
    }
}

static bool step_number(const json_field_rule *r, json_state *s,
                        unsigned char b)
{
    bool digit = b >= '0' && b <= '9';
    bool room = s->count < r->max;

    switch (s->sub) {
    case NUM_START:
        if (b == '-') {
            s->sub = NUM_SIGN;
            return true;
        }
        /* fall through */
    case NUM_SIGN:
        if (!digit)
            return false;
        s->sub = b == '0' ? NUM_ZERO : NUM_DIGITS;
        s->count = 1;
        return true;
    case NUM_ZERO:
    case NUM_DIGITS:
        if (digit && s->sub == NUM_DIGITS && room) {
            s->count++;
            return true;
        }
        if (b == '.' && r->type == ROJ_JSON_NUMBER && room) {
            s->sub = NUM_DOT;
            return true;
        }
        return false;
    case NUM_DOT:
    case NUM_FRACTION:
        if (!digit || !room)
            return false;
        s->count++;
        s->sub = NUM_FRACTION;
        return true;
    default:
        return false;
    }
}

bool json_grammar_step(const json_grammar *g, json_state *s,
                       unsigned char b)
{
    json_state next = *s;
    bool ok = false;

    switch (s->phase) {
    case JSON_PHASE_FORCED:
        if ((unsigned char)g->forced[s->field][s->pos] != b)
            return false;
        enter_forced(g, &next, s->field, s->pos + 1);
        *s = next;
        return true;
    case JSON_PHASE_VALUE: {
        const json_field_rule *r = &g->rules[s->field];
        if (s->sub <= STR_CLOSED)
            ok = step_string(r, &next, b);
        else if (s->sub == LIT_MATCH)
            ok = step_literal(r, &next, b);
        else
            ok = step_number(r, &next, b);
        /* The value may end with the first byte of the next forced text. */
        if (!ok && value_complete(g, s) &&
            (unsigned char)g->forced[s->field + 1][0] == b) {
            next = *s;
            enter_forced(g, &next, s->field + 1, 1);
            ok = true;
        }
        if (ok)
            *s = next;
        return ok;
    }
    default:
        return false;
    }
}
