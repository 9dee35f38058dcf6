/* The ticket generator: templates from tickets_words.c filled, shuffled,
 * marked for urgency and roughened with typos (see tickets.h). */
#include <assert.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "demo/tickets.h"
#include "demo/tickets_words.h"

/* Bounds that the templates stay far below: the longest sentence is
 * about 120 bytes and a ticket has at most 7 pieces. */
#define UNIT_MAX 320
#define TEXT_MAX 1400
#define MAX_UNITS 6

enum { SPAN_ORDER, SPAN_PRODUCT, N_SPANS };

/* splitmix64: small, fast and the same on every platform. */
typedef struct rng {
    uint64_t state;
} rng;

static uint64_t rng_next(rng *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t rng_below(rng *r, size_t n)
{
    return n ? (size_t)(rng_next(r) % n) : 0;
}

static bool rng_chance(rng *r, double p)
{
    return (double)(rng_next(r) >> 11) * 0x1p-53 < p;
}

static const char *rng_pick(rng *r, const ticket_phrases *p)
{
    return p->items[rng_below(r, p->n)];
}

/* One sentence (or prefix) under construction, with the spans it holds
 * as offsets into s, -1 when absent. */
typedef struct unit {
    char s[UNIT_MAX];
    size_t len;
    int32_t span[N_SPANS][2];
} unit;

/* The facts of one ticket while its text is written. */
typedef struct draft {
    rng r;
    ticket_category category;
    ticket_urgency urgency;
    char order_code[16];      /* "" when the ticket has none */
    const char *order_intro;  /* "order #", ... */
    char product[64];         /* "" when the ticket has none */
    bool order_used, product_used;
    bool overflow;            /* a unit ran out of room: a template bug */
} draft;

static void unit_init(unit *u)
{
    u->len = 0;
    u->s[0] = '\0';
    for (int k = 0; k < N_SPANS; k++)
        u->span[k][0] = u->span[k][1] = -1;
}

static void unit_put(draft *d, unit *u, const char *s, size_t n)
{
    if (u->len + n >= UNIT_MAX) {
        d->overflow = true;
        return;
    }
    memcpy(u->s + u->len, s, n);
    u->len += n;
    u->s[u->len] = '\0';
}

static void unit_puts(draft *d, unit *u, const char *s)
{
    unit_put(d, u, s, strlen(s));
}

static void unit_span(draft *d, unit *u, int kind, const char *s)
{
    u->span[kind][0] = (int32_t)u->len;
    unit_puts(d, u, s);
    u->span[kind][1] = (int32_t)u->len;
}

static void put_digits(draft *d, unit *u, int n, bool nonzero_first)
{
    char buf[16];
    for (int i = 0; i < n; i++)
        buf[i] = (char)('0' + (i == 0 && nonzero_first
                                   ? 1 + rng_below(&d->r, 9)
                                   : rng_below(&d->r, 10)));
    unit_put(d, u, buf, (size_t)n);
}

/* Expands one placeholder at *p (just past '{'); returns the length of
 * the name and its closing brace, or 0 when it is not a placeholder. */
static size_t expand_one(draft *d, unit *u, const char *p)
{
    char buf[32];
    if (!strncmp(p, "P}", 2)) {
        unit_span(d, u, SPAN_PRODUCT, d->product);
        d->product_used = true;
        return 2;
    }
    if (!strncmp(p, "O}", 2)) {
        unit_puts(d, u, d->order_intro);
        unit_span(d, u, SPAN_ORDER, d->order_code);
        d->order_used = true;
        return 2;
    }
    if (!strncmp(p, "$}", 2)) {
        snprintf(buf, sizeof buf, "$%d.%02d", 5 + (int)rng_below(&d->r, 295),
                 (int)rng_below(&d->r, 100));
        unit_puts(d, u, buf);
        return 2;
    }
    if (!strncmp(p, "T}", 2)) {
        unit_puts(d, u, "1Z");
        put_digits(d, u, 8, false);
        return 2;
    }
    if (!strncmp(p, "C}", 2)) {
        unit_puts(d, u, "C");
        put_digits(d, u, 5, true);
        return 2;
    }
    if (!strncmp(p, "D}", 2)) {
        buf[0] = (char)('2' + rng_below(&d->r, 8));
        unit_put(d, u, buf, 1);
        return 2;
    }
    if (!strncmp(p, "V}", 2)) {
        snprintf(buf, sizeof buf, "%d.%d.%d", 1 + (int)rng_below(&d->r, 4),
                 (int)rng_below(&d->r, 10), (int)rng_below(&d->r, 20));
        unit_puts(d, u, buf);
        return 2;
    }
    if (!strncmp(p, "NAME}", 5)) {
        unit_puts(d, u, rng_pick(&d->r, &tickets_names));
        return 5;
    }
    if (!strncmp(p, "DAY}", 4)) {
        unit_puts(d, u, rng_pick(&d->r, &tickets_days));
        return 4;
    }
    return 0;
}

/* Appends template t to u, filling its placeholders. */
static void expand(draft *d, unit *u, const char *t)
{
    while (*t) {
        const char *brace = strchr(t, '{');
        if (!brace) {
            unit_puts(d, u, t);
            return;
        }
        unit_put(d, u, t, (size_t)(brace - t));
        size_t used = expand_one(d, u, brace + 1);
        /* Every brace in the word lists opens a placeholder. */
        assert(used > 0);
        t = brace + 1 + used;
    }
}

static bool uses(const char *t, const char *placeholder)
{
    return strstr(t, placeholder) != NULL;
}

/* Picks the core template: one that needs only the fields the ticket
 * has, and usually one that names the product or the order itself. */
static const char *pick_core(draft *d)
{
    const ticket_phrases *core =
        &tickets_category_words[d->category].core;
    const bool has_o = d->order_code[0], has_p = d->product[0];
    const bool want_p = has_p && rng_chance(&d->r, 0.85);
    const bool want_o = has_o && rng_chance(&d->r, 0.4);
    size_t fits[64], n_fits = 0, best[64], n_best = 0;
    for (size_t i = 0; i < core->n && i < 64; i++) {
        const char *t = core->items[i];
        const bool o = uses(t, "{O}"), p = uses(t, "{P}");
        if ((o && !has_o) || (p && !has_p))
            continue;
        fits[n_fits++] = i;
        if ((!want_p || p) && (!want_o || o) && (want_p || !p))
            best[n_best++] = i;
    }
    /* Templates without {O} or {P} exist in every category. */
    assert(n_fits > 0);
    if (n_best)
        return core->items[best[rng_below(&d->r, n_best)]];
    return core->items[fits[rng_below(&d->r, n_fits)]];
}

static void make_order_code(draft *d)
{
    static const char letters[] = "ABKRT";
    unit u;
    unit_init(&u);
    const size_t form = rng_below(&d->r, 20);
    if (form < 9) {          /* A-482913 */
        char head[3] = {letters[rng_below(&d->r, 5)], '-', '\0'};
        unit_puts(d, &u, head);
        put_digits(d, &u, 6, true);
    } else if (form < 12) {  /* K482913 */
        char head[2] = {letters[rng_below(&d->r, 5)], '\0'};
        unit_puts(d, &u, head);
        put_digits(d, &u, 6, true);
    } else if (form < 16) {  /* ORD-4829137 */
        unit_puts(d, &u, "ORD-");
        put_digits(d, &u, 7, true);
    } else {                 /* 48291374 */
        put_digits(d, &u, 8, true);
    }
    snprintf(d->order_code, sizeof d->order_code, "%s", u.s);
    d->order_intro = rng_pick(&d->r, &tickets_order_intros);
}

static void make_product(draft *d)
{
    snprintf(d->product, sizeof d->product, "%s",
             rng_pick(&d->r, &tickets_products));
    if (rng_chance(&d->r, 0.1))
        for (char *c = d->product; *c; c++)
            *c = (char)tolower((unsigned char)*c);
}

static ticket_urgency pick_urgency(draft *d)
{
    const double *prior =
        tickets_category_words[d->category].urgency_prior;
    double x = (double)(rng_next(&d->r) >> 11) * 0x1p-53;
    for (int k = 0; k < TICKET_N_URGENCIES - 1; k++) {
        if (x < prior[k])
            return (ticket_urgency)k;
        x -= prior[k];
    }
    return (ticket_urgency)(TICKET_N_URGENCIES - 1);
}

/* Ends the sentence in u with suffix in place of its final period;
 * returns false when u does not end in one. */
static bool replace_period(draft *d, unit *u, const char *suffix)
{
    if (u->len == 0 || u->s[u->len - 1] != '.')
        return false;
    u->len--;
    unit_puts(d, u, suffix);
    return true;
}

/* Signals the urgency: as its own sentence (pushed to units), a prefix
 * (*prefix) or a new ending of the core sentence. Medium is often left
 * unsaid. */
static void mark_urgency(draft *d, unit *core, unit *units, size_t *n,
                         const char **prefix)
{
    const ticket_urgency_words *w = &tickets_urgency_words[d->urgency];
    if (rng_chance(&d->r, w->unmarked))
        return;
    const size_t form = rng_below(&d->r, 20);
    if (form < 4 && w->prefixes.n) {
        *prefix = rng_pick(&d->r, &w->prefixes);
        return;
    }
    if (form < 7 && w->suffixes.n &&
        replace_period(d, core, rng_pick(&d->r, &w->suffixes)))
        return;
    const ticket_phrases *list =
        form < 11 && w->subtle.n ? &w->subtle : &w->sentences;
    unit_init(&units[*n]);
    expand(d, &units[(*n)++], rng_pick(&d->r, list));
}

static void shuffle_units(draft *d, unit *units, size_t n, bool keep_first)
{
    const size_t lo = keep_first ? 1 : 0;
    for (size_t i = n; i > lo + 1; i--) {
        size_t j = lo + rng_below(&d->r, i - lo);
        unit tmp = units[i - 1];
        units[i - 1] = units[j];
        units[j] = tmp;
    }
}

/* Text being assembled from units, with span offsets into it. */
typedef struct assembly {
    char s[TEXT_MAX];
    size_t len;
    int32_t span[N_SPANS][2];
} assembly;

static void assemble_put(draft *d, assembly *a, const char *s, size_t n)
{
    if (a->len + n >= TEXT_MAX) {
        d->overflow = true;
        return;
    }
    memcpy(a->s + a->len, s, n);
    a->len += n;
    a->s[a->len] = '\0';
}

static void assemble_unit(draft *d, assembly *a, unit *u, bool capitalize)
{
    if (capitalize && u->len && islower((unsigned char)u->s[0]))
        u->s[0] = (char)toupper((unsigned char)u->s[0]);
    for (int k = 0; k < N_SPANS; k++)
        if (u->span[k][0] >= 0) {
            a->span[k][0] = (int32_t)a->len + u->span[k][0];
            a->span[k][1] = (int32_t)a->len + u->span[k][1];
        }
    assemble_put(d, a, u->s, u->len);
}

/* Introduces one typo into a word of at least 4 letters outside the
 * spans: two letters swapped, one dropped or one doubled. */
static void add_typo(draft *d, assembly *a)
{
    size_t starts[256], lens[256], n = 0;
    for (size_t i = 0; i < a->len && n < 256;) {
        if (!isalpha((unsigned char)a->s[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < a->len && isalpha((unsigned char)a->s[j]))
            j++;
        bool in_span = false;
        for (int k = 0; k < N_SPANS; k++)
            if (a->span[k][0] >= 0 && (int32_t)i < a->span[k][1] &&
                (int32_t)j > a->span[k][0])
                in_span = true;
        if (j - i >= 4 && !in_span) {
            starts[n] = i;
            lens[n++] = j - i;
        }
        i = j;
    }
    if (n == 0 || a->len + 1 >= TEXT_MAX)
        return;
    const size_t w = rng_below(&d->r, n);
    /* An inner position, so the first letter stays. */
    const size_t at = starts[w] + 1 + rng_below(&d->r, lens[w] - 2);
    int delta = 0;
    switch (rng_below(&d->r, 3)) {
    case 0: {
        char c = a->s[at];
        a->s[at] = a->s[at + 1];
        a->s[at + 1] = c;
        break;
    }
    case 1:
        memmove(a->s + at, a->s + at + 1, a->len - at);
        delta = -1;
        break;
    default:
        memmove(a->s + at + 1, a->s + at, a->len - at + 1);
        delta = 1;
        break;
    }
    a->len = (size_t)((int64_t)a->len + delta);
    a->s[a->len] = '\0';
    for (int k = 0; k < N_SPANS; k++)
        if (a->span[k][0] > (int32_t)at) {
            a->span[k][0] += delta;
            a->span[k][1] += delta;
        }
}

/* The sentences of a ticket in their final order, the prefix (urgency
 * or order) and greeting decided. */
static void write_body(draft *d, assembly *a)
{
    unit units[MAX_UNITS + 1], head;
    size_t n = 0;
    const char *prefix = NULL;
    const ticket_category_words *cw = &tickets_category_words[d->category];

    unit_init(&units[0]);
    expand(d, &units[n++], pick_core(d));
    unit_init(&head);
    if (d->order_code[0] && !d->order_used) {
        if (rng_chance(&d->r, 0.25)) {
            expand(d, &head, rng_pick(&d->r, &tickets_order_prefixes));
        } else {
            unit_init(&units[n]);
            expand(d, &units[n++], rng_pick(&d->r, &tickets_order_sentences));
        }
    }
    if (d->product[0] && !d->product_used) {
        unit_init(&units[n]);
        expand(d, &units[n++], rng_pick(&d->r, &tickets_product_sentences));
    }
    if (n < 3 && rng_chance(&d->r, 0.45)) {
        unit_init(&units[n]);
        expand(d, &units[n++], rng_pick(&d->r, &cw->details));
    }
    mark_urgency(d, &units[0], units, &n, &prefix);
    shuffle_units(d, units, n, head.len > 0 || rng_chance(&d->r, 0.6));

    if (prefix) {
        assemble_put(d, a, prefix, strlen(prefix));
    } else if (head.len == 0 && rng_chance(&d->r, 0.3)) {
        const char *g = rng_pick(&d->r, &tickets_greetings);
        assemble_put(d, a, g, strlen(g));
        assemble_put(d, a, rng_chance(&d->r, 0.3) ? "\n" : " ", 1);
    }
    /* After an urgency prefix the order prefix continues the phrase
     * ("URGENT: re order A-482913: ..."); the sentence after both starts
     * with a capital. */
    if (head.len) {
        if (prefix)
            head.s[0] = (char)tolower((unsigned char)head.s[0]);
        assemble_unit(d, a, &head, !prefix);
    }
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            assemble_put(d, a, " ", 1);
        assemble_unit(d, a, &units[i], true);
    }
    if (rng_chance(&d->r, 0.3)) {
        unit s;
        unit_init(&s);
        expand(d, &s, rng_pick(&d->r, &tickets_signoffs));
        assemble_put(d, a, " ", 1);
        assemble_unit(d, a, &s, true);
    }
}

static roj_status make_ticket(uint64_t seed, size_t index, ticket *t)
{
    draft d = {.r = {seed ^ (0xd1b54a32d192ed03ull * (index + 1))}};
    rng_next(&d.r);
    d.category = (ticket_category)rng_below(&d.r, TICKET_N_CATEGORIES);
    d.urgency = pick_urgency(&d);
    const ticket_category_words *cw = &tickets_category_words[d.category];
    if (rng_chance(&d.r, cw->order_rate))
        make_order_code(&d);
    if (rng_chance(&d.r, cw->product_rate))
        make_product(&d);

    assembly a = {.len = 0};
    for (int k = 0; k < N_SPANS; k++)
        a.span[k][0] = a.span[k][1] = -1;
    write_body(&d, &a);
    if (rng_chance(&d.r, 0.05))
        for (size_t i = 0; i < a.len; i++)
            a.s[i] = (char)tolower((unsigned char)a.s[i]);
    if (rng_chance(&d.r, 0.3)) {
        add_typo(&d, &a);
        if (rng_chance(&d.r, 0.4))
            add_typo(&d, &a);
    }
    if (d.overflow)
        return roj_error(ROJ_ERR_INTERNAL, "ticket %zu of seed %llu is "
                         "longer than %d bytes", index,
                         (unsigned long long)seed, TEXT_MAX);

    snprintf(t->id, sizeof t->id, "t%05u", (unsigned)((index + 1) % 100000000u));
    t->text = malloc(a.len + 1);
    if (!t->text)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for ticket %zu",
                         index);
    memcpy(t->text, a.s, a.len + 1);
    t->text_len = a.len;
    t->category = d.category;
    t->urgency = d.urgency;
    t->order_start = a.span[SPAN_ORDER][0];
    t->order_end = a.span[SPAN_ORDER][1];
    t->product_start = a.span[SPAN_PRODUCT][0];
    t->product_end = a.span[SPAN_PRODUCT][1];
    return ROJ_OK;
}

roj_status tickets_generate(uint64_t seed, size_t n, ticket_set *out)
{
    memset(out, 0, sizeof *out);
    ticket *t = calloc(n ? n : 1, sizeof *t);
    if (!t)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for %zu tickets", n);
    out->tickets = t;
    for (size_t i = 0; i < n; i++) {
        roj_status st = make_ticket(seed, i, &t[i]);
        if (st) {
            out->n = i;
            tickets_free(out);
            return st;
        }
    }
    out->n = n;
    return ROJ_OK;
}

void tickets_free(ticket_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        free(set->tickets[i].text);
    free(set->tickets);
    memset(set, 0, sizeof *set);
}

static const char *const category_names[TICKET_N_CATEGORIES] = {
    "order_problem",  "refund_request", "shipping_delay",
    "technical_issue", "account_access", "billing_question",
};

static const char *const urgency_names[TICKET_N_URGENCIES] = {
    "low", "medium", "high",
};

const char *ticket_category_name(ticket_category category)
{
    return (unsigned)category < TICKET_N_CATEGORIES
               ? category_names[category]
               : NULL;
}

const char *ticket_urgency_name(ticket_urgency urgency)
{
    return (unsigned)urgency < TICKET_N_URGENCIES ? urgency_names[urgency]
                                                  : NULL;
}

const char *const *ticket_category_names(void)
{
    return category_names;
}

const char *const *ticket_urgency_names(void)
{
    return urgency_names;
}
