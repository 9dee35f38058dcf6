/*
 * Span augmentation for extract training: copies of each labeled text
 * with every span's words replaced by made-up words of the same shape
 * (a capitalised word by a random capitalised word, digits by random
 * digits of the same length). A small model trained only on the real
 * texts tends to memorise the names it saw and output one of them. On
 * these copies only copying from the input is right, which is what unseen
 * names need.
 */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "train/trainer.h"
#include "train/trng.h"

/* A growing list of owned strings. */
typedef struct strlist {
    char **items;
    size_t n, cap;
} strlist;

static roj_status keep(strlist *l, char *s)
{
    if (!s)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for augmentation");
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        char **items = realloc(l->items, cap * sizeof *items);
        if (!items) {
            free(s);
            return roj_error(ROJ_ERR_NOMEM, "out of memory");
        }
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = s;
    return ROJ_OK;
}

static bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
static bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Writes a replacement for the word w[0..n) into out (at most n + 8
 * bytes); returns its length. Words of other shapes are kept. */
static size_t replace_word(const char *w, size_t n, trng *r, char *out)
{
    bool alpha = true, digits = true;
    for (size_t i = 0; i < n; i++) {
        alpha &= is_upper(w[i]) || is_lower(w[i]);
        digits &= is_digit(w[i]);
    }
    if (digits) {
        for (size_t i = 0; i < n; i++)
            out[i] = (char)('0' + (i == 0 && n > 1 ? 1 + trng_below(r, 9)
                                                   : trng_below(r, 10)));
        return n;
    }
    if (!alpha || n < 2) {
        memcpy(out, w, n);
        return n;
    }
    static const char cons[] = "bcdfghjklmnprstvwxyz";
    static const char vow[] = "aeiouy";
    const size_t len = 3 + (size_t)trng_below(r, 7);
    bool vowel = trng_below(r, 3) == 0;
    for (size_t i = 0; i < len; i++) {
        out[i] = vowel ? vow[trng_below(r, sizeof vow - 1)]
                       : cons[trng_below(r, sizeof cons - 1)];
        vowel = !vowel || trng_below(r, 5) == 0;
    }
    if (is_upper(w[0]))
        out[0] = (char)(out[0] - 'a' + 'A');
    return len;
}

typedef struct span_ref {
    int32_t slot;
    int64_t start, end;
} span_ref;

static int by_start(const void *a, const void *b)
{
    const span_ref *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Builds one augmented copy of a record: its text with spans replaced,
 * and one example per slot into out[]. */
static roj_status copy_record(const train_example *ex, size_t k,
                              size_t n_slots, trng *r, strlist *owned,
                              train_example *out)
{
    span_ref spans[64];
    size_t ns = 0;
    for (size_t i = 0; i < k && ns < 64; i++)
        if (ex[i].target)
            spans[ns++] = (span_ref){ex[i].label, ex[i].span_start,
                                     ex[i].span_end};
    qsort(spans, ns, sizeof *spans, by_start);
    const char *t = ex[0].text;
    const size_t tl = ex[0].text_len;
    /* A replacement word is at most 9 bytes, so text grows at most
     * 10 / 3 times (a 2-letter word and its space). */
    char *text = malloc(tl * 4 + 64);
    if (!text)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    int64_t new_start[64], new_end[64];
    size_t at = 0, from = 0;
    for (size_t s = 0; s < ns; s++) {
        if (spans[s].start < (int64_t)from) {   /* overlapping: keep as is */
            new_start[s] = new_end[s] = -1;
            continue;
        }
        memcpy(text + at, t + from, (size_t)spans[s].start - from);
        at += (size_t)spans[s].start - from;
        new_start[s] = (int64_t)at;
        const char *p = t + spans[s].start, *e = t + spans[s].end;
        while (p < e) {
            const char *w = p;
            while (w < e && *w != ' ')
                w++;
            at += replace_word(p, (size_t)(w - p), r, text + at);
            if (w < e)
                text[at++] = *w++;
            p = w;
        }
        new_end[s] = (int64_t)at;
        from = (size_t)spans[s].end;
    }
    memcpy(text + at, t + from, tl - from);
    at += tl - from;
    text[at] = '\0';
    roj_status st = keep(owned, text);
    if (st)
        return st;
    for (size_t i = 0; i < k && i < n_slots; i++) {
        out[i] = ex[i];
        out[i].text = text;
        out[i].text_len = at;
        out[i].target = NULL;
        out[i].target_len = 0;
        out[i].span_start = out[i].span_end = -1;
        for (size_t s = 0; s < ns; s++)
            if (spans[s].slot == ex[i].label && new_start[s] >= 0) {
                out[i].span_start = new_start[s];
                out[i].span_end = new_end[s];
                out[i].target = text + new_start[s];
                out[i].target_len = (size_t)(new_end[s] - new_start[s]);
            }
    }
    return ROJ_OK;
}

roj_status train_augment_spans(const train_dataset *d, const size_t *idx,
                               size_t n, int copies, uint64_t seed,
                               train_example **out, size_t *n_out,
                               char ***owned, size_t *n_owned)
{
    strlist l = {0};
    size_t cap = n * (size_t)(copies + 1) + 1, m = 0;
    train_example *ex = malloc(cap * sizeof *ex);
    if (!ex)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for augmentation");
    trng r;
    trng_seed(&r, seed ^ 0xA5A5A5A5DEADBEEFull);
    roj_status st = ROJ_OK;
    size_t i = 0;
    while (!st && i < n) {
        /* The examples of one record are adjacent in idx (the split keeps
         * records whole). */
        size_t k = 1;
        while (i + k < n && d->ex[idx[i + k]].record == d->ex[idx[i]].record)
            k++;
        train_example group[64];
        const size_t kk = k < 64 ? k : 64;
        bool any = false;
        for (size_t j = 0; j < k; j++) {
            ex[m++] = d->ex[idx[i + j]];
            if (j < kk) {
                group[j] = d->ex[idx[i + j]];
                any |= group[j].target != NULL;
            }
        }
        for (int c = 0; any && c < copies && !st; c++) {
            st = copy_record(group, kk, kk, &r, &l, ex + m);
            m += kk;
        }
        i += k;
    }
    if (st) {
        for (size_t j = 0; j < l.n; j++)
            free(l.items[j]);
        free(l.items);
        free(ex);
        return st;
    }
    *out = ex;
    *n_out = m;
    *owned = l.items;
    *n_owned = l.n;
    return ROJ_OK;
}
