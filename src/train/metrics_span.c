/* Span extraction metrics: exact-match F1 per slot and token F1. */
#include "train/metrics.h"

#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "core/error.h"
#include "core/textwidth.h"

/* Widest slot column in the printed table; longer names are cut. */
#define SPAN_NAME_WIDTH_MAX 24

roj_status span_metrics_init(span_metrics *m, size_t n_slots,
                             const char *const *slots)
{
    memset(m, 0, sizeof *m);
    if (n_slots == 0 || !slots)
        return roj_error(ROJ_ERR_INVALID_ARG, "span_metrics_init: need at "
                         "least one slot, got %zu", n_slots);
    m->per_slot = calloc(n_slots, sizeof *m->per_slot);
    if (!m->per_slot)
        return roj_error(ROJ_ERR_NOMEM, "span_metrics_init: out of memory "
                         "for %zu slots", n_slots);
    m->n_slots = n_slots;
    m->slots = slots;
    return ROJ_OK;
}

/* Normalized tokens of a string: case-folded UTF-8 in text, token i at
 * text + start[i] with length len[i]. */
typedef struct token_list {
    char *text;
    size_t *start, *len;
    size_t n;
} token_list;

static void token_list_free(token_list *t)
{
    free(t->text);
    free(t->start);
    free(t->len);
}

static int is_separator(utf8proc_int32_t cp)
{
    if (cp < 0x80)
        return !((cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') ||
                 (cp >= 'A' && cp <= 'Z'));
    utf8proc_category_t cat = utf8proc_category(cp);
    return (cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_ZP) ||
           cat == UTF8PROC_CATEGORY_CC;
}

/* Splits s into case-folded tokens. ASCII characters other than letters
 * and digits separate tokens, as do Unicode punctuation, symbols, spaces
 * and controls. Invalid UTF-8 bytes become U+FFFD inside a token. Returns
 * 0 on success and -1 when out of memory. */
static int tokenize(const char *s, size_t len, token_list *out)
{
    memset(out, 0, sizeof *out);
    /* Case folding expands a code point to at most 3 code points of at
     * most 4 bytes each. */
    size_t cap = len * 12 + 1;
    out->text = malloc(cap);
    out->start = malloc((len / 2 + 1) * sizeof *out->start);
    out->len = malloc((len / 2 + 1) * sizeof *out->len);
    if (!out->text || !out->start || !out->len)
        return -1;

    size_t pos = 0, used = 0;
    int in_token = 0;
    while (pos < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t step = utf8proc_iterate(
            (const utf8proc_uint8_t *)s + pos, (utf8proc_ssize_t)(len - pos),
            &cp);
        int valid = step > 0;
        if (!valid) {
            cp = 0xFFFD;
            step = 1;
        }
        pos += (size_t)step;
        if (valid && is_separator(cp)) {
            in_token = 0;
            continue;
        }
        if (!in_token) {
            out->start[out->n] = used;
            out->len[out->n] = 0;
            out->n++;
            in_token = 1;
        }
        utf8proc_int32_t folded[3];
        utf8proc_ssize_t n_folded = utf8proc_decompose_char(
            cp, folded, 3, UTF8PROC_CASEFOLD, NULL);
        if (n_folded <= 0 || n_folded > 3) {
            folded[0] = cp;
            n_folded = 1;
        }
        for (utf8proc_ssize_t i = 0; i < n_folded; i++) {
            utf8proc_ssize_t bytes = utf8proc_encode_char(
                folded[i], (utf8proc_uint8_t *)out->text + used);
            used += (size_t)bytes;
            out->len[out->n - 1] += (size_t)bytes;
        }
    }
    return 0;
}

/* Counts tokens of a that match a token of b, each token of b used once:
 * the size of the multiset intersection. */
static size_t common_tokens(const token_list *a, const token_list *b)
{
    size_t common = 0;
    char *used = calloc(b->n ? b->n : 1, 1);
    if (!used)
        return 0;
    for (size_t i = 0; i < a->n; i++) {
        for (size_t j = 0; j < b->n; j++) {
            if (used[j] || a->len[i] != b->len[j] ||
                memcmp(a->text + a->start[i], b->text + b->start[j],
                       a->len[i]) != 0)
                continue;
            used[j] = 1;
            common++;
            break;
        }
    }
    free(used);
    return common;
}

double span_token_f1(const char *gold, size_t gold_len, const char *pred,
                     size_t pred_len)
{
    token_list g = {0}, p = {0};
    double f1 = 0.0;
    if (!gold)
        gold_len = 0;
    if (!pred)
        pred_len = 0;
    /* NOTE: when out of memory the example scores 0. */
    if (tokenize(gold, gold_len, &g) != 0 ||
        tokenize(pred, pred_len, &p) != 0)
        goto cleanup;
    if (g.n == 0 || p.n == 0) {
        f1 = g.n == p.n ? 1.0 : 0.0;
        goto cleanup;
    }
    size_t common = common_tokens(&g, &p);
    if (common > 0) {
        double precision = (double)common / (double)p.n;
        double recall = (double)common / (double)g.n;
        f1 = 2.0 * precision * recall / (precision + recall);
    }

cleanup:
    token_list_free(&g);
    token_list_free(&p);
    return f1;
}

void span_metrics_add(span_metrics *m, int32_t slot, const char *gold,
                      size_t gold_len, const char *pred, size_t pred_len)
{
    if (slot < 0 || (size_t)slot >= m->n_slots) {
        m->n_bad_slot++;
        return;
    }
    span_slot_metrics *s = &m->per_slot[slot];
    int has_gold = gold && gold_len > 0;
    int has_pred = pred && pred_len > 0;
    int equal = has_gold == has_pred &&
                (!has_gold || (gold_len == pred_len &&
                               memcmp(gold, pred, gold_len) == 0));

    m->n++;
    s->n++;
    s->n_gold += (uint64_t)has_gold;
    s->n_pred += (uint64_t)has_pred;
    s->n_exact += (uint64_t)equal;
    if (has_gold && equal)
        s->tp++;
    if (has_pred && !equal)
        s->fp++;
    if (has_gold && !equal)
        s->fn++;
    s->token_f1_sum += span_token_f1(gold, has_gold ? gold_len : 0, pred,
                                     has_pred ? pred_len : 0);
}

static double ratio(uint64_t num, uint64_t den)
{
    return den ? (double)num / (double)den : 0.0;
}

void span_metrics_finish(span_metrics *m)
{
    uint64_t n_exact = 0;
    double f1_sum = 0.0, token_f1_sum = 0.0;

    m->n_slots_scored = 0;
    for (size_t k = 0; k < m->n_slots; k++) {
        span_slot_metrics *s = &m->per_slot[k];
        s->precision = ratio(s->tp, s->tp + s->fp);
        s->recall = ratio(s->tp, s->tp + s->fn);
        double sum = s->precision + s->recall;
        s->f1 = sum > 0.0 ? 2.0 * s->precision * s->recall / sum : 0.0;
        s->exact_match = ratio(s->n_exact, s->n);
        s->token_f1 = s->n ? s->token_f1_sum / (double)s->n : 0.0;
        n_exact += s->n_exact;
        if (s->n_gold > 0 || s->n_pred > 0) {
            f1_sum += s->f1;
            token_f1_sum += s->token_f1;
            m->n_slots_scored++;
        }
    }
    m->exact_match = ratio(n_exact, m->n);
    m->f1 = m->n_slots_scored ? f1_sum / (double)m->n_slots_scored : 0.0;
    m->token_f1 = m->n_slots_scored
                      ? token_f1_sum / (double)m->n_slots_scored
                      : 0.0;
}

void span_metrics_free(span_metrics *m)
{
    free(m->per_slot);
    memset(m, 0, sizeof *m);
}

static const char *slot_name(const span_metrics *m, size_t k)
{
    return m->slots[k] ? m->slots[k] : "";
}

void span_metrics_print(const span_metrics *m, FILE *f)
{
    size_t width = 4; /* "slot" */
    for (size_t k = 0; k < m->n_slots; k++) {
        size_t len = text_columns(slot_name(m, k));
        if (len > width)
            width = len;
    }
    int name_w = width > SPAN_NAME_WIDTH_MAX ? SPAN_NAME_WIDTH_MAX
                                              : (int)width;

    fprintf(f, "examples     %llu\n", (unsigned long long)m->n);
    fprintf(f, "exact match  %.4f\n", m->exact_match);
    fprintf(f, "F1           %.4f  (mean over %zu slots)\n", m->f1,
            m->n_slots_scored);
    fprintf(f, "token F1     %.4f\n", m->token_f1);
    if (m->n_bad_slot)
        fprintf(f, "examples dropped, slot out of range: %llu\n",
                (unsigned long long)m->n_bad_slot);

    fprintf(f, "\n%-*s  %9s  %6s  %6s  %5s  %8s  %6s  %6s\n", name_w, "slot",
            "precision", "recall", "F1", "exact", "token F1", "gold",
            "pred");
    for (size_t k = 0; k < m->n_slots; k++) {
        const span_slot_metrics *s = &m->per_slot[k];
        text_put_cell(f, slot_name(m, k), name_w);
        fprintf(f, "  %9.4f  %6.4f  %6.4f  %5.3f  %8.4f  %6llu  %6llu\n",
                s->precision, s->recall,
                s->f1, s->exact_match, s->token_f1,
                (unsigned long long)s->n_gold, (unsigned long long)s->n_pred);
    }
}

static cJSON *slot_json(const span_slot_metrics *s)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    if (!cJSON_AddNumberToObject(o, "precision", s->precision) ||
        !cJSON_AddNumberToObject(o, "recall", s->recall) ||
        !cJSON_AddNumberToObject(o, "f1", s->f1) ||
        !cJSON_AddNumberToObject(o, "exact_match", s->exact_match) ||
        !cJSON_AddNumberToObject(o, "token_f1", s->token_f1) ||
        !cJSON_AddNumberToObject(o, "tp", (double)s->tp) ||
        !cJSON_AddNumberToObject(o, "fp", (double)s->fp) ||
        !cJSON_AddNumberToObject(o, "fn", (double)s->fn) ||
        !cJSON_AddNumberToObject(o, "n", (double)s->n) ||
        !cJSON_AddNumberToObject(o, "n_gold", (double)s->n_gold) ||
        !cJSON_AddNumberToObject(o, "n_pred", (double)s->n_pred)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

cJSON *span_metrics_json(const span_metrics *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *per_slot = NULL;
    if (!o)
        return NULL;
    if (!cJSON_AddStringToObject(o, "task", "extract") ||
        !cJSON_AddNumberToObject(o, "n", (double)m->n) ||
        !cJSON_AddNumberToObject(o, "exact_match", m->exact_match) ||
        !cJSON_AddNumberToObject(o, "f1", m->f1) ||
        !cJSON_AddNumberToObject(o, "token_f1", m->token_f1) ||
        !cJSON_AddNumberToObject(o, "n_bad_slot", (double)m->n_bad_slot) ||
        !(per_slot = cJSON_AddObjectToObject(o, "per_slot")))
        goto fail;
    for (size_t k = 0; k < m->n_slots; k++) {
        cJSON *entry = slot_json(&m->per_slot[k]);
        if (!entry ||
            !cJSON_AddItemToObject(per_slot, slot_name(m, k), entry)) {
            cJSON_Delete(entry);
            goto fail;
        }
    }
    return o;

fail:
    cJSON_Delete(o);
    return NULL;
}
