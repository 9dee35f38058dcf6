/*
 * Labeled training data for `roj train` and `roj eval`.
 *
 * Formats, chosen by extension (.csv, .tsv, .jsonl, .json) and sniffed
 * from the first bytes otherwise:
 *   - CSV with a header row and RFC 4180 quoting. Quoted fields may contain
 *     delimiters, doubled quotes and line breaks. Lines end in LF or CRLF,
 *     and a UTF-8 byte order mark is skipped. .tsv uses the same rules with
 *     a tab as the delimiter. Blank lines are not records, but the report
 *     counts them.
 *   - JSON Lines: one object per line, blank lines allowed.
 *   - A JSON file holding one array of objects.
 * JSON field names are dotted paths: "userInput.text" is the member "text"
 * of the object "userInput". A key that itself contains a dot cannot be
 * named. JSON strings and numbers are both accepted as field values.
 *
 * Every problem in the data is an error (ROJ_ERR_FORMAT) whose message
 * names the file, the 1-based line and what to change. No row is skipped.
 *
 * Ownership: a train_dataset owns every string it points to, and they stay
 * valid until train_data_free(). Threading: a loaded dataset is immutable
 * and may be read from several threads.
 * NOTE: loads in parallel threads are not fully safe, because cJSON keeps
 * the last parse error in global state (see cJSON_GetErrorPtr).
 */
#ifndef ROJ_TRAIN_DATA_H
#define ROJ_TRAIN_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "roj/roj.h"

typedef enum train_task {
    TRAIN_CLASSIFY,
    TRAIN_EXTRACT,
    TRAIN_GENERATE
} train_task;

/* Slot name used for CSV extract data without a slot column. */
#define TRAIN_DATA_DEFAULT_SLOT "span"

/* Options of train_data_load. Zero-initialize and set what you need: a
 * NULL name takes the default given beside it. */
typedef struct train_data_opts {
    train_task task;
    /* Input text (generate: the prompt). Default "text" (generate:
       "prompt"). */
    const char *text_column;
    const char *label_column;  /* classify: label, default "label" */
    const char *target_column; /* generate: completion, default
                                  "completion" */
    /* Extract, JSON: spans_field names a list of span objects, and the
       other three keys are dotted paths inside each of them. Defaults:
       "labels", "slot", "valueSpan.startIndex", "valueSpan.endIndex". A
       record without spans_field labels no slot. A missing start key means
       0; a missing end key is an error.
       Extract, CSV: one span per row via span_start_column /
       span_end_column / slot_column (defaults "start", "end", none). With
       no slot column every row labels one slot named
       TRAIN_DATA_DEFAULT_SLOT. Empty start and end cells mean the row
       labels no slot. Rows with the same text are one record, so their
       spans are merged.
       Offsets count Unicode code points, and the end is exclusive. An
       empty span, an offset past the text or end < start is an error. */
    const char *spans_field, *span_slot_key, *span_start_key, *span_end_key;
    const char *span_start_column, *span_end_column, *slot_column;
    /* Optional fixed label (extract: slot) set, unused for generate. A
       record with another label is an error. NULL: collect the set from
       the data. */
    const char *const *label_set;
    size_t n_label_set;
    size_t max_rows; /* maximum rows to read, 0 = all */
    /* Optional field or column of extra context for the prompt (its
       {context}), e.g. "context.requestedSlots": the slot a dialogue
       system had just asked for. A JSON array of strings is joined with
       ", "; a missing field or an empty cell gives an empty context. */
    const char *context_column;
} train_data_opts;

typedef struct train_example {
    const char *text;   /* input text or prompt, UTF-8 */
    size_t text_len;    /* bytes */
    /* Label text (classify), span text or NULL when the slot is absent
       (extract), or the completion (generate). */
    const char *target;
    size_t target_len;  /* bytes */
    int32_t label;      /* index in labels[] of the label (classify) or
                           slot (extract); -1 for generate */
    /* Extract: BYTE offsets into text, [start, end), or -1 when the slot
       is absent. */
    int64_t span_start, span_end;
    const char *context; /* see context_column; "" when unset */
    size_t context_len;
    uint32_t line;      /* 1-based line in the file where the record starts */
    uint32_t record;    /* 0-based index of the input record. The examples
                           of one extract record are adjacent and share it */
} train_example;

typedef struct data_arena data_arena;

typedef struct train_dataset {
    train_task task;
    char *path;
    train_example *ex;        /* (n) */
    size_t n;
    /* Label set (classify) or slot names (extract), sorted in byte order
       when collected from the data, or in the order of opts.label_set. */
    char **labels;            /* (n_labels) */
    size_t n_labels;
    uint8_t digest[32];       /* SHA-256 of the file bytes (core/sha256.h) */
    const char *format;       /* "csv", "tsv", "jsonl" or "json" */
    size_t n_rows;            /* CSV rows or JSON objects read */
    size_t n_records;         /* input records: n_rows, except that extract
                                 CSV rows with the same text are one */
    size_t n_blank_lines;     /* blank lines between records */
    size_t n_duplicate_texts; /* records whose text equals an earlier one */
    size_t n_conflicting;     /* of those, the ones with another label or
                                 completion than the first (classify,
                                 generate) */
    size_t n_duplicate_slots; /* extract: spans dropped because their record
                                 labeled the slot before */
    data_arena *arena;        /* owns path, texts, labels and the header */
} train_dataset;

/* Reads the labeled data file at path for opts->task and fills *out.
 * On success the caller frees *out with train_data_free(). On failure *out
 * is left empty (safe to free), and roj_last_error() names the file, the
 * line and the fix. Returns ROJ_ERR_IO when the file cannot be read,
 * ROJ_ERR_FORMAT for malformed or inconsistent data and
 * ROJ_ERR_INVALID_ARG for bad opts. */
roj_status train_data_load(const char *path, const train_data_opts *opts,
                           train_dataset *out);

/* Frees everything a dataset owns and zeroes it. NULL and an empty
 * dataset are accepted. */
void train_data_free(train_dataset *d);

/* Splits d into training and validation example indexes. The same data,
 * fraction and seed give the same split on every machine.
 * About valid_fraction of the records go to validation, chosen with a
 * seeded PRNG (splitmix64). Classify is stratified: each label gives its
 * share, and a label keeps at least one example in training. Extract splits
 * whole records, so all slots of one text land on the same side.
 * valid_fraction must be in [0, 1). Both arrays are sorted, malloc'd even
 * when empty, and freed by the caller. Returns ROJ_ERR_INVALID_ARG for a
 * bad fraction or when training would get no example. */
roj_status train_data_split(const train_dataset *d, double valid_fraction,
                            uint64_t seed, size_t **train_idx,
                            size_t *n_train, size_t **valid_idx,
                            size_t *n_valid);

/* Writes a human-readable report of d to f. It lists records and
 * examples, labels with their counts (extract: slots with present and
 * absent counts), and text length min, median (the lower middle value)
 * and max in bytes and in code points. It also counts duplicate texts,
 * doubly labeled slots and blank lines. */
void train_data_report(const train_dataset *d, FILE *f);

/* Returns true when d->labels equals set[0..n_set) in the same order, so
 * d's label indexes can be used against the set as they are. */
bool train_data_labels_match(const train_dataset *d, const char *const *set,
                             size_t n_set);

/* Maps each of d's labels to its index in set[0..n_set), so map needs
 * d->n_labels entries. Used when eval data is read against a model's label
 * set. A label of d that the set lacks is ROJ_ERR_FORMAT naming the file,
 * the line of its first example and the label. */
roj_status train_data_map_labels(const train_dataset *d,
                                 const char *const *set, size_t n_set,
                                 int32_t *map);

#endif
