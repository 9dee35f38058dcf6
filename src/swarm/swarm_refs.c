/* References between the steps of a pipeline (placeholders, after, when
 * and the job's output), then the dependency graph, its cycles and an
 * execution order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "swarm/swarm_internal.h"

typedef struct ref_check {
    swarm_loader *l;
    swarm_pipeline *p;
    long self;         /* the step whose template this is, or -1 */
    bool allow_item;   /* {item} is bound (a map step's input) */
    bool *deps;        /* n_steps flags, set for each step referred to */
    swarm_mark mark;
    const char *field;
    const char *const *ids;
} ref_check;

static bool has_name(const char *const *names, size_t n, const char *name,
                     size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(names[i]) == len && !memcmp(names[i], name, len))
            return true;
    return false;
}

static void check_ref(void *ctx, const char *name, size_t len, size_t offset)
{
    ref_check *r = ctx;
    swarm_diag *d = &r->l->diag;
    if (diag_full(d))
        return;
    char word[128], advice[320];
    if (len >= sizeof word) {
        diag_add(d, r->mark, r->field, "placeholder at byte %zu is longer "
                 "than %zu bytes", offset, sizeof word - 1);
        return;
    }
    memcpy(word, name, len);
    word[len] = '\0';
    const char *dot = strchr(word, '.');
    if (!dot) {
        if (!strcmp(word, "item") && r->allow_item)
            return;
        diag_add(d, r->mark, r->field, "{%s} refers to nothing; write "
                 "{job.FIELD} or {STEP.FIELD}%s", word,
                 !strcmp(word, "item") ? " ({item} exists in the input of "
                                         "map steps only)" : "");
        return;
    }
    const char *head = word;
    size_t head_len = (size_t)(dot - word);
    const char *tail = dot + 1;
    if (head_len == 3 && !memcmp(head, "job", 3)) {
        if (!has_name(r->p->inputs, r->p->n_inputs, tail, strlen(tail))) {
            diag_suggest(tail, r->p->inputs, r->p->n_inputs, advice,
                         sizeof advice);
            diag_add(d, r->mark, r->field, "{%s}: the job has no field "
                     "\"%s\".%s Add it to the pipeline's input or fix the "
                     "name", word, tail, advice);
        }
        return;
    }
    word[head_len] = '\0';
    long s = swarm_find_step(r->p, word);
    if (s < 0) {
        diag_suggest(word, r->ids, r->p->n_steps, advice, sizeof advice);
        diag_add(d, r->mark, r->field, "{%s.%s}: unknown step \"%s\".%s",
                 word, tail, word, advice);
        return;
    }
    const swarm_step *step = &r->p->steps[s];
    if (!has_name(step->fields, step->n_fields, tail, strlen(tail))) {
        diag_suggest(tail, step->fields, step->n_fields, advice,
                     sizeof advice);
        diag_add(d, r->mark, r->field, "{%s.%s}: step \"%s\" gives no "
                 "field \"%s\".%s", word, tail, word, tail, advice);
        return;
    }
    if (r->deps)
        r->deps[s] = true;
}

static void check_template(ref_check *r, const char *tmpl, swarm_mark mark,
                           const char *field)
{
    const char *error;
    size_t offset;
    r->mark = mark;
    r->field = field;
    if (!tmpl_scan(tmpl, check_ref, r, &error, &offset))
        diag_add(&r->l->diag, mark, field, "byte %zu of the template: %s",
                 offset, error);
}

static void link_after(ref_check *r, swarm_step *s, const ynode *node,
                       const char *field)
{
    char sub[256];
    field_key(sub, sizeof sub, field, "after");
    const char *const *ids;
    size_t n;
    if (!read_string_list(r->l, node, sub, &ids, &n))
        return;
    for (size_t i = 0; i < n && !diag_full(&r->l->diag); i++) {
        long k = swarm_find_step(r->p, ids[i]);
        if (k < 0) {
            char advice[320], item[256];
            diag_suggest(ids[i], r->ids, r->p->n_steps, advice,
                         sizeof advice);
            diag_add(&r->l->diag, node->items[i]->mark,
                     field_index(item, sizeof item, sub, i),
                     "unknown step \"%s\".%s", ids[i], advice);
        } else {
            r->deps[k] = true;
        }
    }
    (void)s;
}

static const char *const *step_labels(const swarm_file *f,
                                      const swarm_step *s, size_t *n)
{
    const swarm_output *o = &f->skills[s->skills[0]].output;
    bool gives_label = has_name(s->fields, s->n_fields, "label", 5);
    *n = gives_label ? o->n_labels : 0;
    return gives_label ? o->labels : NULL;
}

static void link_when(ref_check *r, swarm_step *s, const ynode *node,
                      const char *field)
{
    swarm_loader *l = r->l;
    char sub[256], item[256], advice[320];
    field_key(sub, sizeof sub, field, "when");
    if (node->kind != YNODE_MAP || node->n == 0) {
        diag_add(&l->diag, node->mark, sub, "expected {STEP: [LABEL, ...]}, "
                 "got %s", ynode_kind_name(node));
        return;
    }
    swarm_when *when = arena_alloc(l->arena, node->n * sizeof *when);
    if (!when) {
        l->diag.nomem = true;
        return;
    }
    for (size_t i = 0; i < node->n; i++) {
        const ynode *key = ymap_key(node, i);
        field_key(item, sizeof item, sub, key->text);
        long k = swarm_find_step(r->p, key->text);
        if (k < 0) {
            diag_suggest(key->text, r->ids, r->p->n_steps, advice,
                         sizeof advice);
            diag_add(&l->diag, key->mark, item, "unknown step \"%s\".%s",
                     key->text, advice);
            continue;
        }
        size_t n_set;
        const char *const *set = step_labels(l->file, &r->p->steps[k],
                                             &n_set);
        if (!set) {
            diag_add(&l->diag, key->mark, item, "step \"%s\" chooses no "
                     "label (its skill \"%s\" does not output a choice); "
                     "route on a choice step", key->text,
                     l->file->skills[r->p->steps[k].skills[0]].name);
            continue;
        }
        when[i].step = (size_t)k;
        r->deps[k] = true;
        const ynode *labels = ymap_value(node, i);
        if (!read_string_list(l, labels, item, &when[i].labels,
                              &when[i].n_labels))
            continue;
        if (when[i].n_labels == 0)
            diag_add(&l->diag, labels->mark, item, "the label set is empty; "
                     "list the labels that run this step");
        for (size_t j = 0; j < when[i].n_labels && !diag_full(&l->diag);
             j++) {
            if (has_name(set, n_set, when[i].labels[j],
                         strlen(when[i].labels[j])))
                continue;
            diag_suggest(when[i].labels[j], set, n_set, advice,
                         sizeof advice);
            diag_add(&l->diag, labels->items[j]->mark, item, "step \"%s\" "
                     "never chooses \"%s\".%s", key->text,
                     when[i].labels[j], advice);
        }
    }
    s->when = when;
    s->n_when = node->n;
}

/* Binds every prompt field of the step's skills to a template. The
 * entries of the step's input come first, then the defaults. */
static void link_input(ref_check *r, swarm_step *s, const ynode *node,
                       const ynode *input, const char *field)
{
    swarm_loader *l = r->l;
    const swarm_file *f = l->file;
    char sub[256], item[256], advice[320];
    field_key(sub, sizeof sub, field, "input");
    size_t max = input && input->kind == YNODE_MAP ? input->n : 0;
    for (size_t k = 0; k < s->n_skills; k++)
        max += f->skills[s->skills[k]].n_fields;
    swarm_binding *b = arena_alloc(l->arena, (max + 1) * sizeof *b);
    if (!b) {
        l->diag.nomem = true;
        return;
    }
    size_t n = 0;
    r->allow_item = s->map;
    if (input && input->kind != YNODE_MAP)
        diag_add(&l->diag, input->mark, sub, "expected {FIELD: TEMPLATE}, "
                 "got %s", ynode_kind_name(input));
    for (size_t i = 0; i < max && input && input->kind == YNODE_MAP &&
                       i < input->n; i++) {
        const ynode *key = ymap_key(input, i);
        field_key(item, sizeof item, sub, key->text);
        bool used = false;
        for (size_t k = 0; k < s->n_skills && !used; k++) {
            const swarm_skill *sk = &f->skills[s->skills[k]];
            used = has_name(sk->fields, sk->n_fields, key->text, key->len);
        }
        if (!used) {
            const swarm_skill *sk = &f->skills[s->skills[0]];
            diag_suggest(key->text, sk->fields, sk->n_fields, advice,
                         sizeof advice);
            diag_add(&l->diag, key->mark, item, "the prompt of skill \"%s\" "
                     "has no {%s}.%s", sk->name, key->text, advice);
            continue;
        }
        const ynode *value = ymap_value(input, i);
        if (!read_string(l, value, item, &b[n].tmpl))
            continue;
        b[n].name = key->text;
        b[n].mark = value->mark;
        check_template(r, b[n].tmpl, value->mark, item);
        n++;
    }
    for (size_t k = 0; k < s->n_skills; k++) {
        const swarm_skill *sk = &f->skills[s->skills[k]];
        for (size_t i = 0; i < sk->n_fields; i++) {
            const char *name = sk->fields[i];
            bool bound = false;
            for (size_t j = 0; j < n && !bound; j++)
                bound = !strcmp(b[j].name, name);
            if (bound)
                continue;
            bool from_item = s->map && !strcmp(name, "text");
            if (!from_item && !has_name(r->p->inputs, r->p->n_inputs, name,
                                        strlen(name))) {
                diag_add(&l->diag, node->mark, field, "the prompt of skill "
                         "\"%s\" uses {%s}, which neither the step's input "
                         "nor the job's fields supply; add input: {%s: "
                         "\"{job.FIELD}\"}", sk->name, name, name);
                continue;
            }
            size_t len = strlen(name) + 7;
            char *tmpl = arena_alloc(l->arena, len);
            if (!tmpl) {
                l->diag.nomem = true;
                return;
            }
            snprintf(tmpl, len, from_item ? "{item}" : "{job.%s}", name);
            b[n].name = name;
            b[n].tmpl = tmpl;
            b[n].mark = node->mark;
            n++;
        }
    }
    r->allow_item = false;
    s->input = b;
    s->n_input = n;
}

static void link_step(ref_check *r, size_t i, const ynode *node,
                      const char *field)
{
    swarm_step *s = &r->p->steps[i];
    char sub[256];
    r->self = (long)i;
    memset(r->deps, 0, r->p->n_steps * sizeof *r->deps);
    const ynode *v;
    if ((v = ymap_get(node, "after")))
        link_after(r, s, v, field);
    if ((v = ymap_get(node, "when")))
        link_when(r, s, v, field);
    link_input(r, s, node, ymap_get(node, "input"), field);
    if (s->map && s->map_over) {
        field_key(sub, sizeof sub, field, "map.over");
        check_template(r, s->map_over, ymap_get(ymap_get(node, "map"),
                                                "over")->mark, sub);
        if (s->split == SWARM_SPLIT_LIST &&
            (s->map_over[0] != '{' ||
             strchr(s->map_over + 1, '{') ||
             s->map_over[strlen(s->map_over) - 1] != '}'))
            diag_add(&r->l->diag, node->mark, sub, "split: list needs one "
                     "placeholder that holds a JSON array, such as "
                     "\"{job.items}\"");
    }
    size_t n = 0;
    for (size_t k = 0; k < r->p->n_steps; k++)
        n += r->deps[k];
    size_t *deps = arena_alloc(r->l->arena, (n + 1) * sizeof *deps);
    if (!deps) {
        r->l->diag.nomem = true;
        return;
    }
    n = 0;
    for (size_t k = 0; k < r->p->n_steps; k++)
        if (r->deps[k])
            deps[n++] = k;
    s->deps = deps;
    s->n_deps = n;
}

static void link_output(ref_check *r, const ynode *node, const char *field)
{
    swarm_loader *l = r->l;
    swarm_pipeline *p = r->p;
    char sub[256], item[256];
    field_key(sub, sizeof sub, field, "output");
    if (!node || node->kind != YNODE_MAP || node->n == 0) {
        diag_add(&l->diag, node ? node->mark : p->mark, sub, "expected the "
                 "job's result as {NAME: TEMPLATE, ...}, such as {intent: "
                 "\"{intent.label}\"}");
        return;
    }
    swarm_binding *b = arena_alloc(l->arena, node->n * sizeof *b);
    if (!b) {
        l->diag.nomem = true;
        return;
    }
    r->self = -1;
    r->deps = NULL;
    for (size_t i = 0; i < node->n; i++) {
        const ynode *key = ymap_key(node, i), *value = ymap_value(node, i);
        field_key(item, sizeof item, sub, key->text);
        b[i].name = key->text;
        b[i].mark = value->mark;
        if (read_string(l, value, item, &b[i].tmpl))
            check_template(r, b[i].tmpl, value->mark, item);
    }
    p->output = b;
    p->n_output = node->n;
}

void link_steps(swarm_loader *l, swarm_pipeline *p, const ynode *steps,
                const ynode *pipeline, const char *field)
{
    const char **ids = arena_alloc(l->arena, (p->n_steps + 1) * sizeof *ids);
    bool *deps = calloc(p->n_steps, sizeof *deps);
    if (!ids || !deps) {
        free(deps);
        l->diag.nomem = true;
        return;
    }
    for (size_t i = 0; i < p->n_steps; i++)
        ids[i] = p->steps[i].id;
    ref_check r = {.l = l, .p = p, .deps = deps, .ids = ids};
    char sub[256], item[256];
    field_key(sub, sizeof sub, field, "steps");
    for (size_t i = 0; i < p->n_steps; i++)
        link_step(&r, i, steps->items[i],
                  field_index(item, sizeof item, sub, i));
    free(deps);
    order_pipeline(l, p, sub);
    link_output(&r, ymap_get(pipeline, "output"), field);
}

void order_pipeline(swarm_loader *l, swarm_pipeline *p, const char *field)
{
    size_t n = p->n_steps;
    size_t *order = arena_alloc(l->arena, (n + 1) * sizeof *order);
    size_t *waiting = calloc(n + 1, sizeof *waiting);
    bool *done = calloc(n + 1, sizeof *done);
    if (!order || !waiting || !done) {
        l->diag.nomem = true;
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++)
        waiting[i] = p->steps[i].n_deps;

    /* Kahn's algorithm, always taking the first ready step in file order,
     * so the order is stable. It costs O(n * edges), which stays small
     * because a pipeline has at most SWARM_MAX_STEPS steps. */
    size_t placed = 0;
    while (placed < n) {
        size_t next = n;
        for (size_t i = 0; i < n && next == n; i++)
            if (!done[i] && waiting[i] == 0)
                next = i;
        if (next == n)
            break;
        done[next] = true;
        order[placed++] = next;
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < p->steps[i].n_deps; k++)
                if (p->steps[i].deps[k] == next)
                    waiting[i]--;
    }
    if (placed < n) {
        /* Every step left waits for another step left, so following
         * waits from any of them must come back to a step seen before. */
        size_t *seen_at = waiting;
        for (size_t i = 0; i < n; i++)
            seen_at[i] = SIZE_MAX;
        size_t cur = 0;
        while (done[cur])
            cur++;
        size_t *path = order;
        size_t len = 0;
        while (seen_at[cur] == SIZE_MAX) {
            seen_at[cur] = len;
            path[len++] = cur;
            const swarm_step *s = &p->steps[cur];
            size_t k = 0;
            while (done[s->deps[k]])
                k++;
            cur = s->deps[k];
        }
        char cycle[512];
        size_t o = 0;
        for (size_t i = seen_at[cur]; i < len && o < sizeof cycle; i++)
            o += (size_t)snprintf(cycle + o, sizeof cycle - o, "%s -> ",
                                  p->steps[path[i]].id);
        if (o < sizeof cycle)
            snprintf(cycle + o, sizeof cycle - o, "%s", p->steps[cur].id);
        diag_add(&l->diag, p->steps[cur].mark, field, "dependency cycle: "
                 "%s (each step waits for the next). Remove one of these "
                 "placeholders, after or when entries", cycle);
        goto cleanup;
    }
    p->order = order;

cleanup:
    free(waiting);
    free(done);
}
