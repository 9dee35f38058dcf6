/* The data report, and label sets compared with a model's. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/sha256.h"
#include "train/data_internal.h"

static const char *task_name(train_task task)
{
    switch (task) {
    case TRAIN_CLASSIFY: return "classify";
    case TRAIN_EXTRACT: return "extract";
    case TRAIN_GENERATE: return "generate";
    }
    return "unknown";
}

static int compare_sizes(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts n values and prints their min, median (lower middle) and max. */
static void print_spread(FILE *f, const char *unit, size_t *v, size_t n)
{
    qsort(v, n, sizeof *v, compare_sizes);
    fprintf(f, "%s min %zu, median %zu, max %zu", unit, v[0],
            v[(n - 1) / 2], v[n - 1]);
}

/* Prints the length spread of the texts (or completions) of the records,
 * in bytes and in code points. */
static void report_lengths(const train_dataset *d, FILE *f, const char *what,
                           bool targets)
{
    size_t *bytes = malloc(d->n * sizeof *bytes);
    size_t *chars = malloc(d->n * sizeof *chars);
    size_t n = 0;
    if (!bytes || !chars) {
        fprintf(f, "%s length: not computed (out of memory)\n", what);
        goto cleanup;
    }
    for (size_t i = 0; i < d->n; i++) {
        const train_example *e = &d->ex[i];
        if (i > 0 && e->record == d->ex[i - 1].record)
            continue; /* one entry per record */
        const char *s = targets ? e->target : e->text;
        size_t len = targets ? e->target_len : e->text_len;
        bytes[n] = len;
        chars[n] = data_utf8_count(s, len);
        n++;
    }
    fprintf(f, "%s length: ", what);
    print_spread(f, "bytes", bytes, n);
    fprintf(f, "; characters");
    print_spread(f, "", chars, n);
    fprintf(f, "\n");
cleanup:
    free(bytes);
    free(chars);
}

/* Prints each label with its example count (classify), or each slot with
 * the records that label it and those that do not (extract). */
static void report_labels(const train_dataset *d, FILE *f)
{
    size_t *present = calloc(d->n_labels ? d->n_labels : 1, sizeof *present);
    size_t *absent = calloc(d->n_labels ? d->n_labels : 1, sizeof *absent);
    if (!present || !absent) {
        fprintf(f, "label counts: not computed (out of memory)\n");
        goto cleanup;
    }
    for (size_t i = 0; i < d->n; i++) {
        const train_example *e = &d->ex[i];
        bool has = d->task == TRAIN_CLASSIFY || e->span_start >= 0;
        (has ? present : absent)[e->label]++;
    }
    if (d->task == TRAIN_CLASSIFY) {
        fprintf(f, "labels: %zu\n", d->n_labels);
        fprintf(f, "  %8s  %s\n", "examples", "label");
        for (size_t i = 0; i < d->n_labels; i++)
            fprintf(f, "  %8zu  %s\n", present[i], d->labels[i]);
    } else {
        fprintf(f, "slots: %zu (one example per record and slot)\n",
                d->n_labels);
        fprintf(f, "  %8s  %8s  %s\n", "present", "absent", "slot");
        for (size_t i = 0; i < d->n_labels; i++)
            fprintf(f, "  %8zu  %8zu  %s\n", present[i], absent[i],
                    d->labels[i]);
    }
cleanup:
    free(present);
    free(absent);
}

void train_data_report(const train_dataset *d, FILE *f)
{
    char hex[SHA256_HEX_SIZE];
    sha256_hex(d->digest, hex);
    fprintf(f, "data: %s (%s, sha256 %s)\n", d->path ? d->path : "?",
            d->format ? d->format : "?", hex);
    fprintf(f, "task: %s; rows: %zu; records: %zu; examples: %zu\n",
            task_name(d->task), d->n_rows, d->n_records, d->n);
    if (d->n == 0)
        return;
    if (d->task != TRAIN_GENERATE)
        report_labels(d, f);
    report_lengths(d, f, d->task == TRAIN_GENERATE ? "prompt" : "text",
                   false);
    if (d->task == TRAIN_GENERATE)
        report_lengths(d, f, "completion", true);

    if (d->n_rows > d->n_records)
        fprintf(f, "merged rows: %zu (rows that repeat an earlier text add "
                "their spans to its record)\n", d->n_rows - d->n_records);
    fprintf(f, "duplicate texts: %zu", d->n_duplicate_texts);
    if (d->n_duplicate_texts && d->task != TRAIN_EXTRACT)
        fprintf(f, " (%zu with another %s than the first)", d->n_conflicting,
                d->task == TRAIN_CLASSIFY ? "label" : "completion");
    fprintf(f, "\n");
    if (d->n_duplicate_slots)
        fprintf(f, "dropped spans: %zu (their record labeled the same slot "
                "before, and the first span is kept)\n",
                d->n_duplicate_slots);
    if (d->n_blank_lines)
        fprintf(f, "blank lines: %zu (not records)\n", d->n_blank_lines);
}

bool train_data_labels_match(const train_dataset *d, const char *const *set,
                             size_t n_set)
{
    if (d->n_labels != n_set)
        return false;
    for (size_t i = 0; i < n_set; i++)
        if (!set[i] || strcmp(d->labels[i], set[i]) != 0)
            return false;
    return true;
}

roj_status train_data_map_labels(const train_dataset *d,
                                 const char *const *set, size_t n_set,
                                 int32_t *map)
{
    strmap index = {0};
    roj_status st = ROJ_OK;
    for (size_t i = 0; i < n_set && st == ROJ_OK; i++) {
        if (!set[i])
            st = roj_error(ROJ_ERR_INVALID_ARG, "label set entry %zu is NULL",
                           i);
        else if (strmap_get(&index, set[i], strlen(set[i])) ==
                 STRMAP_MISSING &&
                 strmap_put(&index, set[i], strlen(set[i]),
                                 (uint32_t)i) != ROJ_OK)
            st = roj_error(ROJ_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < d->n_labels && st == ROJ_OK; i++) {
        uint32_t k = strmap_get(&index, d->labels[i],
                                     strlen(d->labels[i]));
        map[i] = k == STRMAP_MISSING ? -1 : (int32_t)k;
        if (k != STRMAP_MISSING)
            continue;

        /* Name the first example that carries the unknown label. */
        uint32_t line = 0;
        for (size_t j = 0; j < d->n && line == 0; j++)
            if (d->ex[j].label == (int32_t)i)
                line = d->ex[j].line;
        const char *kind = d->task == TRAIN_EXTRACT ? "slot" : "label";
        if (line == 0)
            st = roj_error(ROJ_ERR_FORMAT,
                           "%s: %s \"%s\" of the data's label set is not in "
                           "the model's set of %zu",
                           d->path, kind, d->labels[i], n_set);
        else
            st = roj_error(ROJ_ERR_FORMAT,
                           "%s:%u: %s \"%s\" is not in the model's set of "
                           "%zu; remove these records or train a model that "
                           "has it",
                           d->path, line, kind, d->labels[i], n_set);
    }
    strmap_free(&index);
    return st;
}
