/*
 * The builder: checks each record's values, stores classify and generate
 * examples, collects the label set and finishes the dataset.
 */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "train/data_internal.h"

static const char *name_or(const char *name, const char *fallback)
{
    return name ? name : fallback;
}

static void names_resolve(data_names *n, const train_data_opts *o)
{
    n->text = name_or(o->text_column,
                      o->task == TRAIN_GENERATE ? "prompt" : "text");
    n->label = name_or(o->label_column, "label");
    n->target = name_or(o->target_column, "completion");
    n->spans = name_or(o->spans_field, "labels");
    n->span_slot = name_or(o->span_slot_key, "slot");
    n->span_start = name_or(o->span_start_key, "valueSpan.startIndex");
    n->span_end = name_or(o->span_end_key, "valueSpan.endIndex");
    n->start_column = name_or(o->span_start_column, "start");
    n->end_column = name_or(o->span_end_column, "end");
    n->slot_column = o->slot_column;
    n->context = o->context_column;
}

/* Appends a name to the label list and the map, with its position as id. */
static roj_status labels_append(data_builder *b, const char *s, size_t len)
{
    if (b->n_labels == b->cap_labels) {
        size_t cap = b->cap_labels ? b->cap_labels * 2 : 16;
        char **names = realloc(b->label_names, cap * sizeof *names);
        if (!names)
            return roj_error(ROJ_ERR_NOMEM, "%s: out of memory for labels",
                             b->path);
        b->label_names = names;
        b->cap_labels = cap;
    }
    char *copy = data_arena_strndup(b->arena, s, len);
    if (!copy || strmap_put(&b->label_ids, copy, len,
                                 (uint32_t)b->n_labels) != ROJ_OK)
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory for labels",
                         b->path);
    b->label_names[b->n_labels++] = copy;
    return ROJ_OK;
}

/* Takes opts->label_set as the fixed label ids 0..n-1. */
static roj_status labels_fix(data_builder *b)
{
    const train_data_opts *o = b->opts;
    if (o->n_label_set == 0 || o->n_label_set >= INT32_MAX)
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "label set of %zu names for %s; give at least one",
                         o->n_label_set, b->path);
    for (size_t i = 0; i < o->n_label_set; i++) {
        const char *s = o->label_set[i];
        if (!s || !*s)
            return roj_error(ROJ_ERR_INVALID_ARG,
                             "label set entry %zu is empty", i);
        size_t len = strlen(s);
        if (strmap_get(&b->label_ids, s, len) != STRMAP_MISSING)
            return roj_error(ROJ_ERR_INVALID_ARG,
                             "label set lists \"%s\" twice", s);
        roj_status st = labels_append(b, s, len);
        if (st != ROJ_OK)
            return st;
    }
    b->fixed_labels = true;
    return ROJ_OK;
}

roj_status builder_init(data_builder *b, const char *path,
                        const train_data_opts *opts, data_arena *arena)
{
    memset(b, 0, sizeof *b);
    b->path = path;
    b->task = opts->task;
    b->opts = opts;
    b->arena = arena;
    b->field_word = "column";
    names_resolve(&b->names, opts);
    if (opts->task != TRAIN_CLASSIFY && opts->task != TRAIN_EXTRACT &&
        opts->task != TRAIN_GENERATE)
        return roj_error(ROJ_ERR_INVALID_ARG, "unknown task %d for %s",
                         (int)opts->task, path);
    if (opts->label_set && opts->task != TRAIN_GENERATE)
        return labels_fix(b);
    return ROJ_OK;
}

void builder_free(data_builder *b)
{
    free(b->ex);
    free(b->records);
    free(b->spans);
    free(b->label_names);
    strmap_free(&b->label_ids);
    strmap_free(&b->texts);
    memset(b, 0, sizeof *b);
}

bool builder_full(const data_builder *b)
{
    return b->opts->max_rows && b->n_rows >= b->opts->max_rows;
}

/* Returns whether v consists of ASCII whitespace only. */
static bool value_is_blank(data_value v)
{
    for (size_t i = 0; i < v.len; i++) {
        switch (v.s[i]) {
        case ' ': case '\t': case '\r': case '\n': case '\v': case '\f':
            break;
        default:
            return false;
        }
    }
    return true;
}

roj_status builder_check_value(const data_builder *b, uint32_t line,
                               data_value v, const char *what,
                               const char *column, bool allow_blank)
{
    if (v.len == 0)
        return roj_error(ROJ_ERR_FORMAT,
                         "%s:%u: empty %s in %s \"%s\"; fill it in or "
                         "remove the record",
                         b->path, line, what, b->field_word, column);
    if (!allow_blank && value_is_blank(v))
        return roj_error(ROJ_ERR_FORMAT,
                         "%s:%u: %s in %s \"%s\" is only whitespace; fill "
                         "it in or remove the record",
                         b->path, line, what, b->field_word, column);
    size_t bad = data_utf8_check(v.s, v.len);
    if (bad != DATA_UTF8_VALID)
        return roj_error(ROJ_ERR_FORMAT,
                         "%s:%u: invalid UTF-8 in %s \"%s\" at byte %zu of "
                         "the value; save the file as UTF-8",
                         b->path, line, b->field_word, column, bad);
    return ROJ_OK;
}

/* Writes up to a few names of the label set into buf for messages. */
static void labels_preview(const data_builder *b, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < b->n_labels && used + 1 < size; i++) {
        if (i == 8) {
            snprintf(buf + used, size - used, ", ...");
            return;
        }
        int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
                         b->label_names[i]);
        if (n < 0)
            return;
        used += (size_t)n;
    }
}

roj_status builder_label_id(data_builder *b, uint32_t line, data_value name,
                            uint32_t *id)
{
    uint32_t found = strmap_get(&b->label_ids, name.s, name.len);
    if (found != STRMAP_MISSING) {
        *id = found;
        return ROJ_OK;
    }
    if (b->fixed_labels) {
        char preview[256];
        labels_preview(b, preview, sizeof preview);
        return roj_error(ROJ_ERR_FORMAT,
                         "%s:%u: %s \"%.*s\" is not in the given set of %zu "
                         "(%s); fix the data or use a label set that has it",
                         b->path, line,
                         b->task == TRAIN_EXTRACT ? "slot" : "label",
                         (int)name.len, name.s, b->n_labels, preview);
    }
    if (b->n_labels >= INT32_MAX)
        return roj_error(ROJ_ERR_RANGE, "%s:%u: more than %d labels",
                         b->path, line, INT32_MAX);
    *id = (uint32_t)b->n_labels;
    return labels_append(b, name.s, name.len);
}

static roj_status examples_reserve(data_builder *b)
{
    if (b->n_ex < b->cap_ex)
        return ROJ_OK;
    size_t cap = b->cap_ex ? b->cap_ex * 2 : 1024;
    train_example *ex = realloc(b->ex, cap * sizeof *ex);
    if (!ex)
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory for %zu examples",
                         b->path, cap);
    b->ex = ex;
    b->cap_ex = cap;
    return ROJ_OK;
}

/* Counts a text seen before, and whether its label or completion differs
 * from the first record's, or remembers it as new. */
static roj_status note_duplicate(data_builder *b, const train_example *e)
{
    uint32_t first = strmap_get(&b->texts, e->text, e->text_len);
    if (first == STRMAP_MISSING) {
        if (strmap_put(&b->texts, e->text, e->text_len,
                            (uint32_t)b->n_ex) != ROJ_OK)
            return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", b->path);
        return ROJ_OK;
    }
    const train_example *f = &b->ex[first];
    b->n_duplicate_texts++;
    if (b->task == TRAIN_CLASSIFY) {
        b->n_conflicting += f->label != e->label;
    } else if (f->target_len != e->target_len ||
               memcmp(f->target, e->target, e->target_len) != 0) {
        b->n_conflicting++;
    }
    return ROJ_OK;
}

roj_status builder_add_row(data_builder *b, uint32_t line, data_value text,
                           data_value target)
{
    bool classify = b->task == TRAIN_CLASSIFY;
    const char *what = classify ? "label" : "completion";
    const char *column = classify ? b->names.label : b->names.target;
    /* A completion may be whitespace alone, such as indentation. */
    roj_status st = builder_check_value(b, line, text, "text", b->names.text,
                                        false);
    if (st == ROJ_OK)
        st = builder_check_value(b, line, target, what, column, !classify);
    if (st == ROJ_OK)
        st = examples_reserve(b);
    if (st != ROJ_OK)
        return st;
    if (b->n_rows >= UINT32_MAX)
        return roj_error(ROJ_ERR_RANGE, "%s:%u: more than %u records",
                         b->path, line, UINT32_MAX);

    train_example e = {
        .text_len = text.len, .line = line, .record = (uint32_t)b->n_rows,
        .label = -1, .span_start = -1, .span_end = -1, .context = "",
    };
    e.text = data_arena_strndup(b->arena, text.s, text.len);
    if (!e.text)
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", b->path);
    if (classify) {
        uint32_t id;
        st = builder_label_id(b, line, target, &id);
        if (st != ROJ_OK)
            return st;
        e.label = (int32_t)id;
        e.target = b->label_names[id];
        e.target_len = target.len;
    } else {
        e.target = data_arena_strndup(b->arena, target.s, target.len);
        e.target_len = target.len;
        if (!e.target)
            return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", b->path);
    }
    st = note_duplicate(b, &e);
    if (st != ROJ_OK)
        return st;
    b->ex[b->n_ex++] = e;
    b->n_rows++;
    return ROJ_OK;
}

typedef struct named_id {
    const char *name;
    uint32_t id;
} named_id;

static int compare_names(const void *a, const void *b)
{
    return strcmp(((const named_id *)a)->name, ((const named_id *)b)->name);
}

/* Sorts collected labels in byte order: fills labels (new order) and
 * remap (builder id -> new index). A fixed set keeps its order. */
static roj_status labels_order(data_builder *b, char **labels,
                               uint32_t *remap)
{
    named_id *order = malloc((b->n_labels ? b->n_labels : 1) * sizeof *order);
    if (!order)
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", b->path);
    for (size_t i = 0; i < b->n_labels; i++)
        order[i] = (named_id){b->label_names[i], (uint32_t)i};
    if (!b->fixed_labels)
        qsort(order, b->n_labels, sizeof *order, compare_names);
    for (size_t i = 0; i < b->n_labels; i++) {
        labels[i] = b->label_names[order[i].id];
        remap[order[i].id] = (uint32_t)i;
    }
    free(order);
    return ROJ_OK;
}

roj_status builder_finish(data_builder *b, train_dataset *out)
{
    if (b->n_rows == 0)
        return roj_error(ROJ_ERR_FORMAT,
                         "%s: no records; add at least one labeled record",
                         b->path);

    /* Labels: the final order, and every stored id moved to it. */
    size_t n_labels = b->n_labels;
    size_t n_alloc = n_labels ? n_labels : 1;
    char **labels = data_arena_alloc(b->arena, n_alloc * sizeof *labels);
    uint32_t *remap = malloc(n_alloc * sizeof *remap);
    roj_status st = ROJ_OK;
    if (!labels || !remap) {
        st = roj_error(ROJ_ERR_NOMEM, "%s: out of memory", b->path);
        goto cleanup;
    }
    st = labels_order(b, labels, remap);
    if (st != ROJ_OK)
        goto cleanup;
    for (size_t i = 0; i < b->n_ex; i++)
        if (b->ex[i].label >= 0)
            b->ex[i].label = (int32_t)remap[b->ex[i].label];
    for (size_t i = 0; i < b->n_spans; i++)
        b->spans[i].slot = remap[b->spans[i].slot];
    out->labels = labels;
    out->n_labels = n_labels;

    /* Examples: extract expands records, the others move as they are. */
    if (b->task == TRAIN_EXTRACT) {
        st = builder_expand_records(b, out);
        if (st != ROJ_OK)
            goto cleanup;
    } else {
        out->ex = b->ex;
        out->n = b->n_ex;
        b->ex = NULL;
        b->n_ex = 0;
    }
    out->task = b->task;
    out->format = b->format;
    out->n_rows = b->n_rows;
    out->n_records = b->task == TRAIN_EXTRACT ? b->n_records : b->n_rows;
    out->n_blank_lines = b->n_blank_lines;
    out->n_duplicate_texts = b->n_duplicate_texts;
    out->n_conflicting = b->n_conflicting;
    out->n_duplicate_slots = b->n_duplicate_slots;

cleanup:
    free(remap);
    return st;
}
