/*
 * Shared by the data_*.c files that implement train/data.h.
 *
 * A load runs in three stages. data_load.c reads the file and picks the
 * format. data_csv.c or data_json.c turns each record into strings and
 * hands them to the builder (data_rows.c, data_extract.c), which checks
 * them and stores examples. Last, builder_finish() settles the label order
 * and, for extract, expands every record into one example per slot.
 */
#ifndef ROJ_TRAIN_DATA_INTERNAL_H
#define ROJ_TRAIN_DATA_INTERNAL_H

#include "core/strmap.h"
#include "train/data.h"

/* Arena (data_store.c): bump allocation in chunks, freed all at once. */
data_arena *data_arena_create(void);
void data_arena_destroy(data_arena *a);
/* Returns size bytes aligned to 8, or NULL when out of memory. */
void *data_arena_alloc(data_arena *a, size_t size);
/* Returns a NUL-terminated copy of s[0..len), or NULL when out of memory. */
char *data_arena_strndup(data_arena *a, const char *s, size_t len);


/* UTF-8 (data_text.c). The counting functions assume input that passed
 * data_utf8_check. */
#define DATA_UTF8_VALID SIZE_MAX
/* Returns the offset of the first byte that is not valid UTF-8 (overlong
 * forms, surrogates and code points past U+10FFFF are invalid), or
 * DATA_UTF8_VALID. */
size_t data_utf8_check(const char *s, size_t len);
/* Returns the number of code points in valid UTF-8. */
size_t data_utf8_count(const char *s, size_t len);
/* Returns the byte offset where code point index cp starts; cp may equal
 * the code point count, giving len. */
size_t data_utf8_offset(const char *s, size_t len, size_t cp);
/* Returns the 1-based line of byte offset off in buf. */
uint32_t data_line_of(const char *buf, size_t off);
/* Parses a decimal integer >= 0 with optional surrounding spaces into
 * *out. Returns false when s is not one. */
bool data_parse_index(const char *s, size_t len, int64_t *out);

/* Field names with the defaults of train_data_opts filled in. */
typedef struct data_names {
    const char *text, *label, *target;
    const char *spans, *span_slot, *span_start, *span_end;
    const char *start_column, *end_column;
    const char *slot_column; /* NULL when the CSV has no slot column */
    const char *context;     /* NULL when no context field is read */
} data_names;

/* One string taken from a record; s need not be NUL-terminated. */
typedef struct data_value {
    const char *s;
    size_t len;
} data_value;

/* One labeled span. The spans of a record form a list through next. */
typedef struct data_span {
    uint32_t slot;              /* builder slot id */
    int64_t start, end;         /* byte offsets into the record's text */
    size_t next;                /* next span of the record, or SIZE_MAX */
} data_span;

/* An extract record: its text and the spans it labels, first per slot. */
typedef struct data_record {
    const char *text;
    size_t text_len;
    const char *context;        /* "" when none */
    size_t context_len;
    size_t n_chars;             /* code points in text */
    uint32_t line;
    size_t first_span, last_span; /* SIZE_MAX when the record has none */
} data_record;

typedef struct data_builder {
    const char *path;
    train_task task;
    const train_data_opts *opts;
    data_names names;
    data_arena *arena;
    const char *format;
    const char *field_word;     /* "column" (CSV) or "field" (JSON) */

    train_example *ex;          /* (cap_ex) classify and generate examples */
    size_t n_ex, cap_ex;
    data_record *records;       /* (cap_records) extract records */
    size_t n_records, cap_records;
    data_span *spans;           /* (cap_spans) spans of all records */
    size_t n_spans, cap_spans;

    strmap label_ids;      /* label or slot name -> builder id */
    char **label_names;         /* (cap_labels) indexed by builder id */
    size_t n_labels, cap_labels;
    bool fixed_labels;          /* ids are opts->label_set indexes */
    strmap texts;          /* text -> first example or record index */

    size_t n_rows, n_blank_lines, n_duplicate_texts, n_conflicting;
    size_t n_duplicate_slots;
} data_builder;

/* data_rows.c */
roj_status builder_init(data_builder *b, const char *path,
                        const train_data_opts *opts, data_arena *arena);
void builder_free(data_builder *b);
/* Checks and stores one classify or generate row: text and target are
 * the label or completion. */
roj_status builder_add_row(data_builder *b, uint32_t line, data_value text,
                           data_value target);
/* Checks a text or label value: not empty, not whitespace alone unless
 * allow_blank, valid UTF-8. what names the value in messages ("text",
 * "label"), column names its field. */
roj_status builder_check_value(const data_builder *b, uint32_t line,
                               data_value v, const char *what,
                               const char *column, bool allow_blank);
/* Returns the builder id of a label or slot name, adding it when labels
 * are collected. A name outside a fixed set is an error at line. */
roj_status builder_label_id(data_builder *b, uint32_t line, data_value name,
                            uint32_t *id);
/* Moves the examples into out: orders labels and, for extract, expands
 * the records. The builder keeps nothing that out needs. */
roj_status builder_finish(data_builder *b, train_dataset *out);
/* Returns whether the reader should stop before the next row. */
bool builder_full(const data_builder *b);

/* data_extract.c */
/* Starts the extract record for text, or returns the existing one with
 * the same text when merge is set (CSV rows). */
roj_status builder_begin_record(data_builder *b, uint32_t line,
                                data_value text, bool merge, size_t *record);
/* Adds the span [start, end) in code points for slot to record, checked
 * against its text. A second span for the same slot is dropped and
 * counted. */
roj_status builder_add_span(data_builder *b, size_t record, uint32_t line,
                            data_value slot, int64_t start, int64_t end);
/* Sets the context of example index (classify, generate) or of record
 * index (extract), copied into the arena. */
roj_status builder_set_context(data_builder *b, bool record, size_t index,
                               data_value context);
/* Builds one example per record and slot into out->ex. */
roj_status builder_expand_records(data_builder *b, train_dataset *out);

/* Readers: each calls the builder for every record in buf[0..size). */
roj_status data_read_csv(data_builder *b, const char *buf, size_t size,
                         char delim);
roj_status data_read_jsonl(data_builder *b, const char *buf, size_t size);
roj_status data_read_json_array(data_builder *b, const char *buf,
                                size_t size);

#endif
