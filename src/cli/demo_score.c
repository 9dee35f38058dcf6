/* Scoring of the demo run: the output lines of the swarm against the
 * labeled test tickets, matched by id (see demo.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/demo.h"
#include "core/error.h"
#include "demo/tickets.h"
#include "train/trainer.h"

/* The labels of one gold ticket; NULL order or product: absent. */
typedef struct gold_ticket {
    char *id, *category, *urgency, *order, *product;
    bool seen;
} gold_ticket;

typedef struct gold_set {
    gold_ticket *t;
    size_t n, cap;
} gold_set;

static void gold_free(gold_set *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->t[i].id);
        free(g->t[i].category);
        free(g->t[i].urgency);
        free(g->t[i].order);
        free(g->t[i].product);
    }
    free(g->t);
    memset(g, 0, sizeof *g);
}

/* Returns a copy of the string member name of obj, or NULL when it is
 * missing or not a string; *bad is set when it is there but neither a
 * string nor null. */
static char *dup_string(const cJSON *obj, const char *name, bool *bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (cJSON_IsString(v))
        return strdup(v->valuestring);
    if (v && !cJSON_IsNull(v))
        *bad = true;
    return NULL;
}

static int compare_gold(const void *a, const void *b)
{
    return strcmp(((const gold_ticket *)a)->id, ((const gold_ticket *)b)->id);
}

/* Calls fn on each non-blank line of path with its 1-based number. */
static roj_status for_each_line(const char *path,
                                roj_status (*fn)(void *, const char *,
                                                 size_t, unsigned),
                                void *ctx)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned number = 0;
    roj_status st = ROJ_OK;

    if (!f)
        return roj_error(ROJ_ERR_IO, "cannot open %s: %s", path,
                         strerror(errno));
    while (!st && (len = getline(&line, &cap, f)) >= 0) {
        number++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len > 0)
            st = fn(ctx, line, (size_t)len, number);
    }
    if (!st && ferror(f))
        st = roj_error(ROJ_ERR_IO, "cannot read %s: %s", path,
                       strerror(errno));
    free(line);
    fclose(f);
    return st;
}

struct gold_reader {
    gold_set *g;
    const char *path;
};

static roj_status read_gold_line(void *ctx, const char *line, size_t len,
                                 unsigned number)
{
    struct gold_reader *r = ctx;
    gold_set *g = r->g;
    cJSON *j = cJSON_ParseWithLength(line, len);
    bool bad = !cJSON_IsObject(j);
    gold_ticket t = {0};

    if (!bad) {
        t.id = dup_string(j, "id", &bad);
        t.category = dup_string(j, TICKETS_CATEGORY_FIELD, &bad);
        t.urgency = dup_string(j, TICKETS_URGENCY_FIELD, &bad);
        t.order = dup_string(j, TICKETS_SLOT_ORDER, &bad);
        t.product = dup_string(j, TICKETS_SLOT_PRODUCT, &bad);
    }
    cJSON_Delete(j);
    if (bad || !t.id || !t.category || !t.urgency) {
        gold_set one = {&t, 1, 1};
        gold_free(&one);
        return roj_error(ROJ_ERR_FORMAT, "%s:%u: not a labeled ticket (an "
                         "object with id, category and urgency strings)",
                         r->path, number);
    }
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 256;
        gold_ticket *grown = realloc(g->t, cap * sizeof *grown);
        if (!grown) {
            gold_set one = {&t, 1, 1};
            gold_free(&one);
            return roj_error(ROJ_ERR_NOMEM, "out of memory for %s",
                             r->path);
        }
        g->t = grown;
        g->cap = cap;
    }
    g->t[g->n++] = t;
    return ROJ_OK;
}

/* True when an output value means "no span": absent, null, "" or the
 * none word of roj's extract models. */
static bool is_absent(const cJSON *v)
{
    return !v || cJSON_IsNull(v) ||
           (cJSON_IsString(v) && (!v->valuestring[0] ||
                                  !strcmp(v->valuestring, TRAIN_NONE_WORD)));
}

/* Whether output value v equals the gold string (NULL: absent). */
static bool span_matches(const cJSON *v, const char *gold)
{
    if (!gold)
        return is_absent(v);
    return cJSON_IsString(v) && !strcmp(v->valuestring, gold);
}

static bool label_matches(const cJSON *result, const char *name,
                          const char *gold)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(result, name);
    return cJSON_IsString(v) && !strcmp(v->valuestring, gold);
}

struct output_reader {
    gold_set *g;
    demo_score *s;
    const char *path;
};

static roj_status read_output_line(void *ctx, const char *line, size_t len,
                                   unsigned number)
{
    struct output_reader *r = ctx;
    demo_score *s = r->s;
    cJSON *j = cJSON_ParseWithLength(line, len);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(j, "ok");
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(j, "result");

    if (!cJSON_IsString(id) || !cJSON_IsBool(ok)) {
        cJSON_Delete(j);
        return roj_error(ROJ_ERR_FORMAT, "%s:%u: not an output line (an "
                         "object with a string id and a boolean ok)",
                         r->path, number);
    }
    gold_ticket key = {.id = id->valuestring};
    gold_ticket *t = bsearch(&key, r->g->t, r->g->n, sizeof *r->g->t,
                             compare_gold);
    s->n_output++;
    if (!t || t->seen) {
        cJSON_Delete(j);
        return roj_error(ROJ_ERR_FORMAT, "%s:%u: id \"%s\" is %s", r->path,
                         number, id->valuestring,
                         t ? "there twice" : "not in the test tickets");
    }
    t->seen = true;
    if (!cJSON_IsTrue(ok) || !cJSON_IsObject(result)) {
        s->n_failed++;
        cJSON_Delete(j);
        return ROJ_OK;
    }

    const cJSON *order =
        cJSON_GetObjectItemCaseSensitive(result, TICKETS_SLOT_ORDER);
    const cJSON *product =
        cJSON_GetObjectItemCaseSensitive(result, TICKETS_SLOT_PRODUCT);
    s->category += label_matches(result, TICKETS_CATEGORY_FIELD,
                                 t->category);
    s->urgency += label_matches(result, TICKETS_URGENCY_FIELD, t->urgency);
    s->order += span_matches(order, t->order);
    s->product += span_matches(product, t->product);
    s->order_found += t->order && span_matches(order, t->order);
    s->product_found += t->product && span_matches(product, t->product);
    cJSON_Delete(j);
    return ROJ_OK;
}

roj_status demo_score_run(const char *output_path, const char *gold_path,
                          demo_score *score)
{
    gold_set g = {0};
    struct gold_reader gr = {&g, gold_path};
    struct output_reader orr = {&g, score, output_path};
    roj_status st;

    memset(score, 0, sizeof *score);
    if ((st = for_each_line(gold_path, read_gold_line, &gr)))
        goto free_gold;
    qsort(g.t, g.n, sizeof *g.t, compare_gold);
    for (size_t i = 1; i < g.n; i++)
        if (!strcmp(g.t[i - 1].id, g.t[i].id)) {
            st = roj_error(ROJ_ERR_FORMAT, "%s: id \"%s\" is there twice",
                           gold_path, g.t[i].id);
            goto free_gold;
        }
    score->n_gold = g.n;
    for (size_t i = 0; i < g.n; i++) {
        score->n_with_order += g.t[i].order != NULL;
        score->n_with_product += g.t[i].product != NULL;
    }
    if ((st = for_each_line(output_path, read_output_line, &orr)))
        goto free_gold;
    for (size_t i = 0; i < g.n; i++)
        score->n_missing += !g.t[i].seen;

free_gold:
    gold_free(&g);
    return st;
}

static void print_row(const char *field, size_t correct, size_t total)
{
    printf("| %-22s | %7zu | %5zu | %7.1f%% |\n", field, correct, total,
           total ? 100.0 * (double)correct / (double)total : 0.0);
}

void demo_score_print(const demo_score *s)
{
    printf("\nThe swarm's results against the labels of the test "
           "tickets:\n\n");
    printf("| %-22s | %7s | %5s | %8s |\n", "field", "correct", "of",
           "accuracy");
    printf("|------------------------|--------:|------:|---------:|\n");
    print_row("category", s->category, s->n_gold);
    print_row("urgency", s->urgency, s->n_gold);
    print_row("order number", s->order, s->n_gold);
    print_row("  tickets with one", s->order_found, s->n_with_order);
    print_row("product", s->product, s->n_gold);
    print_row("  tickets with one", s->product_found, s->n_with_product);
    printf("\nOrder numbers and products must match the labeled text "
           "exactly; for a ticket\nwithout one, \"none\" or a skipped "
           "step is right.\n");
    if (s->n_failed || s->n_missing)
        printf("%zu ticket(s) failed and %zu have no output line; they "
               "count as wrong.\n", s->n_failed, s->n_missing);
}
