/* Classification metrics: counting, derived scores and reports. */
#include "train/metrics.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/textwidth.h"

/* Largest label set whose confusion matrix is printed in full. */
#define CLS_FULL_MATRIX_MAX 12
/* Confused pairs listed for larger label sets. */
#define CLS_TOP_PAIRS 10
/* Widest label column in the printed tables; longer names are cut. */
#define CLS_NAME_WIDTH_MAX 32

roj_status cls_metrics_init(cls_metrics *m, size_t n_labels,
                            const char *const *labels)
{
    memset(m, 0, sizeof *m);
    if (n_labels == 0 || !labels)
        return roj_error(ROJ_ERR_INVALID_ARG, "cls_metrics_init: need at "
                         "least one label, got %zu", n_labels);
    if (n_labels > (SIZE_MAX / sizeof(uint64_t)) / n_labels)
        return roj_error(ROJ_ERR_RANGE, "cls_metrics_init: %zu labels is "
                         "too many for a confusion matrix", n_labels);
    m->n_labels = n_labels;
    m->labels = labels;
    m->confusion = calloc(n_labels * n_labels, sizeof *m->confusion);
    m->precision = calloc(n_labels, sizeof *m->precision);
    m->recall = calloc(n_labels, sizeof *m->recall);
    m->f1 = calloc(n_labels, sizeof *m->f1);
    m->support = calloc(n_labels, sizeof *m->support);
    if (!m->confusion || !m->precision || !m->recall || !m->f1 ||
        !m->support)
        return roj_error(ROJ_ERR_NOMEM, "cls_metrics_init: out of memory "
                         "for %zu labels", n_labels);
    return ROJ_OK;
}

void cls_metrics_add(cls_metrics *m, int32_t truth, int32_t pred)
{
    if (truth < 0 || (size_t)truth >= m->n_labels) {
        m->n_bad_truth++;
        return;
    }
    m->n++;
    m->support[truth]++;
    if (pred < 0 || (size_t)pred >= m->n_labels) {
        m->n_no_pred++;
        return;
    }
    m->confusion[(size_t)truth * m->n_labels + (size_t)pred]++;
    if (truth == pred)
        m->n_correct++;
}

static double ratio(uint64_t num, uint64_t den)
{
    return den ? (double)num / (double)den : 0.0;
}

void cls_metrics_finish(cls_metrics *m)
{
    size_t n = m->n_labels;
    double f1_sum = 0.0;
    size_t n_scored = 0;

    for (size_t k = 0; k < n; k++) {
        uint64_t tp = m->confusion[k * n + k];
        uint64_t predicted = 0; /* column sum */
        for (size_t t = 0; t < n; t++)
            predicted += m->confusion[t * n + k];
        m->precision[k] = ratio(tp, predicted);
        m->recall[k] = ratio(tp, m->support[k]);
        double sum = m->precision[k] + m->recall[k];
        m->f1[k] = sum > 0.0 ? 2.0 * m->precision[k] * m->recall[k] / sum
                             : 0.0;
        if (m->support[k] > 0 || predicted > 0) {
            f1_sum += m->f1[k];
            n_scored++;
        }
    }
    m->accuracy = ratio(m->n_correct, m->n);
    m->macro_f1 = n_scored ? f1_sum / (double)n_scored : 0.0;
}

void cls_metrics_free(cls_metrics *m)
{
    free(m->confusion);
    free(m->precision);
    free(m->recall);
    free(m->f1);
    free(m->support);
    memset(m, 0, sizeof *m);
}

static int label_width(const cls_metrics *m)
{
    size_t width = 5; /* "label" */
    for (size_t k = 0; k < m->n_labels; k++) {
        size_t len = m->labels[k] ? text_columns(m->labels[k]) : 0;
        if (len > width)
            width = len;
    }
    return width > CLS_NAME_WIDTH_MAX ? CLS_NAME_WIDTH_MAX : (int)width;
}

static const char *label_name(const cls_metrics *m, size_t k)
{
    return m->labels[k] ? m->labels[k] : "";
}

static int digits_of(uint64_t v)
{
    int d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

static void print_full_matrix(const cls_metrics *m, FILE *f, int name_w)
{
    size_t n = m->n_labels;
    uint64_t max = 0;
    for (size_t i = 0; i < n * n; i++)
        if (m->confusion[i] > max)
            max = m->confusion[i];
    int cell_w = digits_of(max) > digits_of(n - 1) ? digits_of(max)
                                                     : digits_of(n - 1);

    fprintf(f, "\nconfusion matrix (rows: truth, columns: predicted label "
               "number)\n");
    fprintf(f, "%*s", name_w + 4, "");
    for (size_t p = 0; p < n; p++)
        fprintf(f, " %*zu", cell_w, p);
    fputc('\n', f);
    for (size_t t = 0; t < n; t++) {
        fprintf(f, "%2zu ", t);
        text_put_cell(f, label_name(m, t), name_w);
        fputc(' ', f);
        for (size_t p = 0; p < n; p++)
            fprintf(f, " %*llu", cell_w,
                    (unsigned long long)m->confusion[t * n + p]);
        fputc('\n', f);
    }
}

typedef struct confused_pair {
    uint64_t count;
    size_t truth, pred;
} confused_pair;

/* Orders by count, descending, then by truth and pred so ties print in
 * label-set order. */
static int pair_compare(const void *a, const void *b)
{
    const confused_pair *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    if (x->truth != y->truth)
        return x->truth < y->truth ? -1 : 1;
    return x->pred < y->pred ? -1 : (x->pred > y->pred);
}

/* Keeps the CLS_TOP_PAIRS largest off-diagonal cells in top (sorted) with
 * one insertion pass, so no copy of the n*n matrix is needed. */
static size_t collect_top_pairs(const cls_metrics *m, confused_pair *top)
{
    size_t n = m->n_labels, count = 0;
    for (size_t t = 0; t < n; t++) {
        for (size_t p = 0; p < n; p++) {
            confused_pair c = {m->confusion[t * n + p], t, p};
            if (t == p || c.count == 0)
                continue;
            if (count == CLS_TOP_PAIRS &&
                pair_compare(&c, &top[count - 1]) >= 0)
                continue;
            size_t at = count < CLS_TOP_PAIRS ? count++ : count - 1;
            while (at > 0 && pair_compare(&c, &top[at - 1]) < 0) {
                top[at] = top[at - 1];
                at--;
            }
            top[at] = c;
        }
    }
    return count;
}

static void print_top_pairs(const cls_metrics *m, FILE *f, int name_w)
{
    confused_pair top[CLS_TOP_PAIRS];
    size_t count = collect_top_pairs(m, top);

    fprintf(f, "\nmost frequent confusions (%zu labels, matrix in the JSON "
               "output)\n", m->n_labels);
    if (count == 0) {
        fprintf(f, "  none\n");
        return;
    }
    fprintf(f, "  %6s  %-*s  %s\n", "count", name_w, "truth", "predicted");
    for (size_t i = 0; i < count; i++) {
        fprintf(f, "  %6llu  ", (unsigned long long)top[i].count);
        text_put_cell(f, label_name(m, top[i].truth), name_w);
        fprintf(f, "  %s\n", label_name(m, top[i].pred));
    }
}

void cls_metrics_print(const cls_metrics *m, FILE *f)
{
    int name_w = label_width(m);

    fprintf(f, "rows      %llu\n", (unsigned long long)m->n);
    fprintf(f, "accuracy  %.4f\n", m->accuracy);
    fprintf(f, "macro-F1  %.4f\n", m->macro_f1);
    if (m->n_no_pred)
        fprintf(f, "rows with no valid prediction: %llu\n",
                (unsigned long long)m->n_no_pred);
    if (m->n_bad_truth)
        fprintf(f, "rows dropped, truth label out of range: %llu\n",
                (unsigned long long)m->n_bad_truth);

    fprintf(f, "\n%-*s  %9s  %6s  %6s  %7s\n", name_w, "label", "precision",
            "recall", "F1", "support");
    for (size_t k = 0; k < m->n_labels; k++) {
        text_put_cell(f, label_name(m, k), name_w);
        fprintf(f, "  %9.4f  %6.4f  %6.4f  %7llu\n", m->precision[k],
                m->recall[k], m->f1[k], (unsigned long long)m->support[k]);
    }

    if (m->n_labels <= CLS_FULL_MATRIX_MAX)
        print_full_matrix(m, f, name_w);
    else
        print_top_pairs(m, f, name_w);
}

static cJSON *label_json(const cls_metrics *m, size_t k)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    if (!cJSON_AddNumberToObject(o, "precision", m->precision[k]) ||
        !cJSON_AddNumberToObject(o, "recall", m->recall[k]) ||
        !cJSON_AddNumberToObject(o, "f1", m->f1[k]) ||
        !cJSON_AddNumberToObject(o, "support", (double)m->support[k])) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *confusion_json(const cls_metrics *m)
{
    size_t n = m->n_labels;
    cJSON *rows = cJSON_CreateArray();
    if (!rows)
        return NULL;
    for (size_t t = 0; t < n; t++) {
        cJSON *row = cJSON_CreateArray();
        if (!row || !cJSON_AddItemToArray(rows, row)) {
            cJSON_Delete(row);
            goto fail;
        }
        for (size_t p = 0; p < n; p++) {
            cJSON *cell = cJSON_CreateNumber((double)m->confusion[t * n + p]);
            if (!cell || !cJSON_AddItemToArray(row, cell)) {
                cJSON_Delete(cell);
                goto fail;
            }
        }
    }
    return rows;

fail:
    cJSON_Delete(rows);
    return NULL;
}

cJSON *cls_metrics_json(const cls_metrics *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *labels = NULL, *per_label = NULL, *confusion = NULL;
    if (!o)
        return NULL;
    if (!cJSON_AddStringToObject(o, "task", "classify") ||
        !cJSON_AddNumberToObject(o, "n", (double)m->n) ||
        !cJSON_AddNumberToObject(o, "accuracy", m->accuracy) ||
        !cJSON_AddNumberToObject(o, "macro_f1", m->macro_f1) ||
        !cJSON_AddNumberToObject(o, "n_no_pred", (double)m->n_no_pred) ||
        !cJSON_AddNumberToObject(o, "n_bad_truth", (double)m->n_bad_truth))
        goto fail;
    if (!(labels = cJSON_AddArrayToObject(o, "labels")) ||
        !(per_label = cJSON_AddObjectToObject(o, "per_label")))
        goto fail;
    for (size_t k = 0; k < m->n_labels; k++) {
        cJSON *name = cJSON_CreateString(label_name(m, k));
        if (!name || !cJSON_AddItemToArray(labels, name)) {
            cJSON_Delete(name);
            goto fail;
        }
        cJSON *entry = label_json(m, k);
        if (!entry || !cJSON_AddItemToObject(per_label, label_name(m, k),
                                             entry)) {
            cJSON_Delete(entry);
            goto fail;
        }
    }
    if (!(confusion = confusion_json(m)) ||
        !cJSON_AddItemToObject(o, "confusion", confusion)) {
        cJSON_Delete(confusion);
        goto fail;
    }
    return o;

fail:
    cJSON_Delete(o);
    return NULL;
}
