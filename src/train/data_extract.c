/*
 * Extract records: labeled character spans, checked against the text and
 * converted from code points to byte offsets, then expanded into one
 * example per slot so that a model also sees the slots a text lacks.
 */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "train/data_internal.h"

static roj_status grow(const data_builder *b, void **array, size_t *cap,
                       size_t n, size_t item)
{
    if (n < *cap)
        return ROJ_OK;
    size_t new_cap = *cap ? *cap * 2 : 1024;
    void *p = realloc(*array, new_cap * item);
    if (!p)
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", b->path);
    *array = p;
    *cap = new_cap;
    return ROJ_OK;
}

roj_status builder_begin_record(data_builder *b, uint32_t line,
                                data_value text, bool merge, size_t *record)
{
    roj_status st = builder_check_value(b, line, text, "text", b->names.text,
                                        false);
    if (st != ROJ_OK)
        return st;
    if (b->n_rows >= UINT32_MAX)
        return roj_error(ROJ_ERR_RANGE, "%s:%u: more than %u records",
                         b->path, line, UINT32_MAX);

    uint32_t seen = strmap_get(&b->texts, text.s, text.len);
    if (seen != STRMAP_MISSING && merge) {
        *record = seen;
        b->n_rows++;
        return ROJ_OK;
    }
    if (seen != STRMAP_MISSING)
        b->n_duplicate_texts++;

    st = grow(b, (void **)&b->records, &b->cap_records, b->n_records,
              sizeof *b->records);
    if (st != ROJ_OK)
        return st;
    data_record *r = &b->records[b->n_records];
    r->text = data_arena_strndup(b->arena, text.s, text.len);
    if (!r->text)
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", b->path);
    r->text_len = text.len;
    r->context = "";
    r->context_len = 0;
    r->n_chars = data_utf8_count(text.s, text.len);
    r->line = line;
    r->first_span = SIZE_MAX;
    r->last_span = SIZE_MAX;
    if (seen == STRMAP_MISSING &&
        strmap_put(&b->texts, r->text, r->text_len,
                        (uint32_t)b->n_records) != ROJ_OK)
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", b->path);
    *record = b->n_records++;
    b->n_rows++;
    return ROJ_OK;
}

/* Checks start and end (code points) against a text of n_chars. */
static roj_status check_offsets(const data_builder *b, uint32_t line,
                                data_value slot, int64_t start, int64_t end,
                                size_t n_chars)
{
    const char *unit = "offsets count Unicode code points, end exclusive";
    if (start < 0 || end < 0)
        return roj_error(ROJ_ERR_FORMAT,
                         "%s:%u: span of slot \"%.*s\" has a negative offset "
                         "(%lld, %lld); %s",
                         b->path, line, (int)slot.len, slot.s,
                         (long long)start, (long long)end, unit);
    if (end < start)
        return roj_error(ROJ_ERR_FORMAT,
                         "%s:%u: span of slot \"%.*s\" ends at %lld, before "
                         "its start %lld; swap or fix the offsets",
                         b->path, line, (int)slot.len, slot.s,
                         (long long)end, (long long)start);
    if ((uint64_t)end > n_chars)
        return roj_error(ROJ_ERR_FORMAT,
                         "%s:%u: span of slot \"%.*s\" ends at %lld, past the "
                         "end of the text (%zu characters); %s",
                         b->path, line, (int)slot.len, slot.s,
                         (long long)end, n_chars, unit);
    if (end == start)
        return roj_error(ROJ_ERR_FORMAT,
                         "%s:%u: span of slot \"%.*s\" is empty (start = end "
                         "= %lld); remove it or fix the offsets",
                         b->path, line, (int)slot.len, slot.s,
                         (long long)start);
    return ROJ_OK;
}

roj_status builder_add_span(data_builder *b, size_t record, uint32_t line,
                            data_value slot, int64_t start, int64_t end)
{
    const char *slot_name = b->names.slot_column ? b->names.slot_column
                                                 : b->names.span_slot;
    roj_status st = builder_check_value(b, line, slot, "slot", slot_name,
                                        false);
    if (st != ROJ_OK)
        return st;
    uint32_t id;
    st = builder_label_id(b, line, slot, &id);
    if (st != ROJ_OK)
        return st;
    data_record *r = &b->records[record];
    st = check_offsets(b, line, slot, start, end, r->n_chars);
    if (st != ROJ_OK)
        return st;

    /* The first span of a slot wins; later ones are counted, not kept. */
    for (size_t i = r->first_span; i != SIZE_MAX; i = b->spans[i].next) {
        if (b->spans[i].slot == id) {
            b->n_duplicate_slots++;
            return ROJ_OK;
        }
    }

    st = grow(b, (void **)&b->spans, &b->cap_spans, b->n_spans,
              sizeof *b->spans);
    if (st != ROJ_OK)
        return st;
    size_t index = b->n_spans++;
    data_span *sp = &b->spans[index];
    sp->slot = id;
    sp->start = (int64_t)data_utf8_offset(r->text, r->text_len,
                                          (size_t)start);
    sp->end = (int64_t)data_utf8_offset(r->text, r->text_len, (size_t)end);
    sp->next = SIZE_MAX;
    if (r->last_span == SIZE_MAX)
        r->first_span = index;
    else
        b->spans[r->last_span].next = index;
    r->last_span = index;
    return ROJ_OK;
}

/* Returns the span of slot in record r, or NULL. */
static const data_span *record_span(const data_builder *b,
                                    const data_record *r, uint32_t slot)
{
    for (size_t i = r->first_span; i != SIZE_MAX; i = b->spans[i].next)
        if (b->spans[i].slot == slot)
            return &b->spans[i];
    return NULL;
}

roj_status builder_expand_records(data_builder *b, train_dataset *out)
{
    size_t n_slots = b->n_labels;
    if (n_slots == 0)
        return roj_error(ROJ_ERR_FORMAT,
                         "%s: no record labels a slot, so there is nothing "
                         "to learn; check the spans field \"%s\" or the span "
                         "columns, or give the slot set",
                         b->path, b->names.spans);
    if (b->n_records > SIZE_MAX / sizeof(train_example) / n_slots)
        return roj_error(ROJ_ERR_NOMEM, "%s: too many examples", b->path);
    size_t n = b->n_records * n_slots;
    train_example *ex = malloc(n * sizeof *ex);
    if (!ex)
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory for %zu examples",
                         b->path, n);

    size_t k = 0;
    for (size_t r = 0; r < b->n_records; r++) {
        const data_record *rec = &b->records[r];
        for (uint32_t s = 0; s < n_slots; s++) {
            const data_span *sp = record_span(b, rec, s);
            train_example *e = &ex[k++];
            e->text = rec->text;
            e->text_len = rec->text_len;
            e->context = rec->context;
            e->context_len = rec->context_len;
            e->label = (int32_t)s;
            e->line = rec->line;
            e->record = (uint32_t)r;
            if (sp) {
                e->target = rec->text + sp->start;
                e->target_len = (size_t)(sp->end - sp->start);
                e->span_start = sp->start;
                e->span_end = sp->end;
            } else {
                e->target = NULL;
                e->target_len = 0;
                e->span_start = -1;
                e->span_end = -1;
            }
        }
    }
    out->ex = ex;
    out->n = n;
    return ROJ_OK;
}

roj_status builder_set_context(data_builder *b, bool record, size_t index,
                               data_value context)
{
    if (data_utf8_check(context.s, context.len) != DATA_UTF8_VALID)
        return roj_error(ROJ_ERR_FORMAT, "%s: the context field \"%s\" is "
                         "not valid UTF-8", b->path, b->names.context);
    char *copy = data_arena_strndup(b->arena, context.s, context.len);
    if (!copy)
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", b->path);
    if (record) {
        b->records[index].context = copy;
        b->records[index].context_len = context.len;
    } else {
        b->ex[index].context = copy;
        b->ex[index].context_len = context.len;
    }
    return ROJ_OK;
}
