/* The JSON Lines writers of the ticket generator (see tickets.h). Each
 * file is written to PATH.tmp, flushed to disk and renamed over PATH. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "demo/tickets.h"

/* Writes s[0..len) as a JSON string, quotes included. */
static void put_json_string(FILE *f, const char *s, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        const unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
        } else if (c == '\n') {
            fputs("\\n", f);
        } else if (c == '\t') {
            fputs("\\t", f);
        } else if (c == '\r') {
            fputs("\\r", f);
        } else if (c < 0x20) {
            fprintf(f, "\\u%04x", c);
        } else {
            fputc(c, f);
        }
    }
    fputc('"', f);
}

/* Writes the text of a span, or null when the ticket has none. */
static void put_span_text(FILE *f, const ticket *t, int32_t start,
                          int32_t end)
{
    if (start < 0)
        fputs("null", f);
    else
        put_json_string(f, t->text + start, (size_t)(end - start));
}

static void put_span(FILE *f, const char *slot, int32_t start, int32_t end,
                     bool first)
{
    fprintf(f, "%s{\"" TICKETS_SPAN_SLOT_KEY "\": \"%s\", \""
            TICKETS_SPAN_START_KEY "\": %d, \"" TICKETS_SPAN_END_KEY
            "\": %d}", first ? "" : ", ", slot, (int)start, (int)end);
}

static void write_labeled_line(FILE *f, const ticket *t)
{
    fprintf(f, "{\"id\": \"%s\", \"" TICKETS_TEXT_FIELD "\": ", t->id);
    put_json_string(f, t->text, t->text_len);
    fprintf(f, ", \"" TICKETS_CATEGORY_FIELD "\": \"%s\", \""
            TICKETS_URGENCY_FIELD "\": \"%s\", \"" TICKETS_SLOT_ORDER
            "\": ", ticket_category_name(t->category),
            ticket_urgency_name(t->urgency));
    put_span_text(f, t, t->order_start, t->order_end);
    fputs(", \"" TICKETS_SLOT_PRODUCT "\": ", f);
    put_span_text(f, t, t->product_start, t->product_end);
    fputs(", \"" TICKETS_SPANS_FIELD "\": [", f);
    bool first = true;
    if (t->order_start >= 0) {
        put_span(f, TICKETS_SLOT_ORDER, t->order_start, t->order_end, first);
        first = false;
    }
    if (t->product_start >= 0)
        put_span(f, TICKETS_SLOT_PRODUCT, t->product_start, t->product_end,
                 first);
    fputs("]}\n", f);
}

static void write_input_line(FILE *f, const ticket *t)
{
    fprintf(f, "{\"id\": \"%s\", \"" TICKETS_TEXT_FIELD "\": ", t->id);
    put_json_string(f, t->text, t->text_len);
    fputs("}\n", f);
}

/* Writes one line per ticket through write_line into PATH.tmp, then
 * renames it to path. */
static roj_status write_atomically(const ticket_set *set, const char *path,
                                   void (*write_line)(FILE *, const ticket *))
{
    const size_t n = strlen(path) + 5;
    char *tmp = malloc(n);
    roj_status st = ROJ_OK;
    FILE *f = NULL;

    if (!tmp)
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", path);
    snprintf(tmp, n, "%s.tmp", path);

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || !(f = fdopen(fd, "w"))) {
        st = roj_error(ROJ_ERR_IO, "%s: cannot create: %s", tmp,
                       strerror(errno));
        if (fd >= 0)
            close(fd);
        goto free_tmp;
    }
    for (size_t i = 0; i < set->n; i++)
        write_line(f, &set->tickets[i]);
    if (ferror(f) || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        st = roj_error(ROJ_ERR_IO, "%s: write failed: %s", tmp,
                       strerror(errno));
        fclose(f);
        goto remove_tmp;
    }
    if (fclose(f) != 0) {
        st = roj_error(ROJ_ERR_IO, "%s: close failed: %s", tmp,
                       strerror(errno));
        goto remove_tmp;
    }
    if (rename(tmp, path) != 0) {
        st = roj_error(ROJ_ERR_IO, "cannot rename %s to %s: %s", tmp, path,
                       strerror(errno));
        goto remove_tmp;
    }
    free(tmp);
    return ROJ_OK;

remove_tmp:
    unlink(tmp);
free_tmp:
    free(tmp);
    return st;
}

roj_status tickets_write_labeled(const ticket_set *set, const char *path)
{
    return write_atomically(set, path, write_labeled_line);
}

roj_status tickets_write_inputs(const ticket_set *set, const char *path)
{
    return write_atomically(set, path, write_input_line);
}
