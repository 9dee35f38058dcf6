/* Items of a map step: the rendered `over` text split into sentences,
 * non-empty lines, token chunks (through the runner's hook) or the
 * elements of a JSON array. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "run/plan_internal.h"

typedef struct item_list {
    char **items;
    size_t n, cap;
    bool too_many; /* a PLAN_MAX_ITEMS + 1st item was found */
    bool nomem;
} item_list;

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

/* Adds text[0 .. len) trimmed, unless it is empty. Returns false when
 * the split must stop. */
static bool item_add(item_list *l, const char *text, size_t len)
{
    while (len && is_space(*text)) {
        text++;
        len--;
    }
    while (len && is_space(text[len - 1]))
        len--;
    if (!len)
        return true;
    if (l->n == PLAN_MAX_ITEMS) {
        l->too_many = true;
        return false;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **items = realloc(l->items, cap * sizeof *items);
        if (!items) {
            l->nomem = true;
            return false;
        }
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n] = strndup(text, len);
    if (!l->items[l->n]) {
        l->nomem = true;
        return false;
    }
    l->n++;
    return true;
}

/* Sentences end after '.', '!' or '?' that white space or the end of
 * the text follows, and at blank lines. */
static void split_sentences(item_list *l, const char *text, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if ((c == '.' || c == '!' || c == '?') &&
            (i + 1 == len || is_space(text[i + 1]))) {
            if (!item_add(l, text + start, i + 1 - start))
                return;
            start = i + 1;
        } else if (c == '\n') {
            size_t j = i + 1;
            while (j < len && text[j] != '\n' && is_space(text[j]))
                j++;
            if (j == len || text[j] != '\n')
                continue;
            if (!item_add(l, text + start, i - start))
                return;
            start = j;
            i = j;
        }
    }
    item_add(l, text + start, len - start);
}

static void split_lines(item_list *l, const char *text, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && text[i] != '\n')
            continue;
        if (!item_add(l, text + start, i - start))
            return;
        start = i + 1;
    }
}

/* Chunks end at the offsets the hook gives, which must ascend and end
 * at len. */
static roj_status split_chunks(plan_job *job, const swarm_step *s,
                               item_list *l, const char *text, size_t len)
{
    if (!job->hooks.chunk)
        return job_fail(job, "step \"%s\": split: chunks needs the "
                        "runner's chunk hook, which is not set", s->id);
    size_t *ends = NULL, n = 0;
    roj_status rc = job->hooks.chunk(job->hooks.ctx, s->skills[0], text,
                                     len, s->chunk_tokens, &ends, &n);
    if (rc == ROJ_ERR_NOMEM) {
        free(ends);
        return job_nomem(job);
    }
    if (rc) {
        free(ends);
        return job_fail(job, "step \"%s\": splitting into chunks of %u "
                        "tokens failed: %s", s->id, s->chunk_tokens,
                        roj_last_error());
    }
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (ends[i] < start || ends[i] > len ||
            (i + 1 == n && ends[i] != len)) {
            job_fail(job, "step \"%s\": the chunk hook gave end offset %zu "
                     "(entry %zu of %zu) for a text of %zu bytes; offsets "
                     "must ascend and end at the text's length", s->id,
                     ends[i], i, n, len);
            free(ends);
            return ROJ_OK;
        }
        if (!item_add(l, text + start, ends[i] - start))
            break;
        start = ends[i];
    }
    if (n == 0 && len)
        item_add(l, text, len);
    free(ends);
    return ROJ_OK;
}

/* Elements of a JSON array: strings as is, other values as JSON text. */
static roj_status split_list(plan_job *job, const swarm_step *s,
                             item_list *l, const char *text)
{
    cJSON *array = cJSON_Parse(text);
    if (!cJSON_IsArray(array)) {
        cJSON_Delete(array);
        return job_fail(job, "step \"%s\": split: list needs a JSON array, "
                        "but map.over gave: %.60s", s->id, text);
    }
    for (const cJSON *e = array->child; e; e = e->next) {
        if (cJSON_IsString(e)) {
            if (!item_add(l, e->valuestring, strlen(e->valuestring)))
                break;
            continue;
        }
        char *json = cJSON_PrintUnformatted(e);
        if (!json) {
            l->nomem = true;
            break;
        }
        bool go_on = item_add(l, json, strlen(json));
        free(json);
        if (!go_on)
            break;
    }
    cJSON_Delete(array);
    return ROJ_OK;
}

static const char *split_name(swarm_split split)
{
    switch (split) {
    case SWARM_SPLIT_SENTENCES: return "sentences";
    case SWARM_SPLIT_LINES: return "lines";
    case SWARM_SPLIT_CHUNKS: return "chunks";
    default: return "list";
    }
}

roj_status plan_split(plan_job *job, size_t step, const char *text,
                      char ***items, size_t *n)
{
    const swarm_step *s = &job->pipeline->steps[step];
    item_list l = {0};
    size_t len = strlen(text);
    roj_status rc = ROJ_OK;
    *items = NULL;
    *n = 0;
    switch (s->split) {
    case SWARM_SPLIT_SENTENCES:
        split_sentences(&l, text, len);
        break;
    case SWARM_SPLIT_LINES:
        split_lines(&l, text, len);
        break;
    case SWARM_SPLIT_CHUNKS:
        rc = split_chunks(job, s, &l, text, len);
        break;
    default:
        rc = split_list(job, s, &l, text);
        break;
    }
    if (l.nomem)
        rc = job_nomem(job);
    else if (l.too_many)
        job_fail(job, "step \"%s\": map.over splits into more than %d "
                 "items (split: %s); send the text as several smaller "
                 "jobs", s->id, PLAN_MAX_ITEMS, split_name(s->split));
    if (rc || job->done) {
        for (size_t i = 0; i < l.n; i++)
            free(l.items[i]);
        free(l.items);
        return rc;
    }
    /* An empty split still gives a (zero-length) array. */
    *items = l.items ? l.items : calloc(1, sizeof **items);
    if (!*items)
        return job_nomem(job);
    *n = l.n;
    return ROJ_OK;
}
