/* The pipelines section: job inputs, steps (skill, cascade, vote, map and
 * reduce) and the job's output. References between steps are checked in
 * swarm_refs.c. */
#include <stdio.h>
#include <string.h>

#include "swarm/swarm_internal.h"

static const char *const STEP_KEYS[] = {
    "id", "skill", "cascade", "threshold", "vote", "after", "when", "input",
    "map", "reduce"};
#define N_STEP_KEYS (sizeof STEP_KEYS / sizeof STEP_KEYS[0])

static long find_skill(swarm_loader *l, const ynode *node, const char *field,
                       const char *const *names)
{
    const char *name;
    if (!read_string(l, node, field, &name))
        return -1;
    long i = swarm_find_skill(l->file, name);
    if (i < 0) {
        char advice[320];
        diag_suggest(name, names, l->file->n_skills, advice, sizeof advice);
        diag_add(&l->diag, node->mark, field, "unknown skill \"%s\".%s "
                 "Define it under skills: or fix the name", name, advice);
    }
    return i;
}

static bool same_labels(const swarm_output *a, const swarm_output *b)
{
    if (a->n_labels != b->n_labels)
        return false;
    for (size_t i = 0; i < a->n_labels; i++)
        if (strcmp(a->labels[i], b->labels[i]))
            return false;
    return true;
}

/* Skills of a cascade or a multi-skill vote must give the same kind of
 * output and the same labels. */
static void check_alike(swarm_loader *l, const swarm_step *s,
                        const ynode *at, const char *field, const char *what)
{
    const swarm_skill *first = &l->file->skills[s->skills[0]];
    for (size_t i = 1; i < s->n_skills; i++) {
        const swarm_skill *k = &l->file->skills[s->skills[i]];
        if (k->output.kind != first->output.kind ||
            (k->output.kind == SWARM_OUTPUT_CHOICE &&
             !same_labels(&k->output, &first->output)))
            diag_add(&l->diag, at->mark, field, "the skills of a %s must "
                     "answer alike, but \"%s\" and \"%s\" have different "
                     "outputs or label sets", what, first->name, k->name);
    }
}

static void load_cascade(swarm_loader *l, swarm_step *s, const ynode *node,
                         const ynode *step, const char *field,
                         const char *const *names)
{
    char sub[256], item[256];
    field_key(sub, sizeof sub, field, "cascade");
    if (node->kind != YNODE_SEQ || node->n < 2) {
        diag_add(&l->diag, node->mark, sub, "a cascade needs at least 2 "
                 "skills, smallest first, such as [intent_small, "
                 "intent_big]");
        return;
    }
    size_t *skills = arena_alloc(l->arena, node->n * sizeof *skills);
    if (!skills) {
        l->diag.nomem = true;
        return;
    }
    for (size_t i = 0; i < node->n; i++) {
        long k = find_skill(l, node->items[i],
                            field_index(item, sizeof item, sub, i), names);
        if (k < 0)
            return;
        skills[i] = (size_t)k;
    }
    s->cascade = true;
    s->skills = skills;
    s->n_skills = node->n;
    check_alike(l, s, node, sub, "cascade");
    if (l->file->skills[skills[0]].output.kind != SWARM_OUTPUT_CHOICE)
        diag_add(&l->diag, node->mark, sub, "a cascade escalates on the "
                 "confidence of a choice; \"%s\" does not output a choice",
                 l->file->skills[skills[0]].name);

    const ynode *t = ymap_get(step, "threshold");
    field_key(sub, sizeof sub, field, "threshold");
    double d;
    if (!t)
        diag_add(&l->diag, node->mark, sub, "missing; a cascade needs the "
                 "confidence below which it escalates, such as 0.8");
    else if (read_float(l, t, sub, &d)) {
        if (!(d > 0 && d < 1))
            diag_add(&l->diag, t->mark, sub, "%g is outside (0, 1); use a "
                     "confidence such as 0.8", d);
        s->threshold = (float)d;
    }
}

static void load_vote(swarm_loader *l, swarm_step *s, const ynode *node,
                      const char *field, const char *const *names)
{
    static const char *const keys[] = {"k", "skills", "by"};
    char sub[256], item[256];
    field_key(sub, sizeof sub, field, "vote");
    uint64_t k = 1;
    if (node->kind == YNODE_SCALAR) {
        if (read_uint(l, node, sub, 0, UINT32_MAX, &k) && k < 1)
            diag_add(&l->diag, node->mark, sub, "vote is %llu; use 1 or "
                     "more agents", (unsigned long long)k);
        s->vote = (uint32_t)(k > SWARM_MAX_VOTE ? SWARM_MAX_VOTE : k);
    } else if (node->kind == YNODE_MAP) {
        diag_check_keys(&l->diag, node, sub, keys, 3);
        const ynode *v;
        if ((v = ymap_get(node, "k")) &&
            read_uint(l, v, field_key(item, sizeof item, sub, "k"), 0,
                      UINT32_MAX, &k) && k < 1)
            diag_add(&l->diag, v->mark, item, "vote is %llu; use 1 or "
                     "more agents", (unsigned long long)k);
        s->vote = (uint32_t)(k > SWARM_MAX_VOTE ? SWARM_MAX_VOTE : k);
        if ((v = ymap_get(node, "by"))) {
            const char *by;
            field_key(item, sizeof item, sub, "by");
            if (read_string(l, v, item, &by)) {
                if (!strcmp(by, "confidence"))
                    s->vote_rule = SWARM_VOTE_CONFIDENCE;
                else if (strcmp(by, "majority"))
                    diag_add(&l->diag, v->mark, item, "unknown rule \"%s\"; "
                             "use majority or confidence", by);
            }
        }
        if ((v = ymap_get(node, "skills"))) {
            field_key(item, sizeof item, sub, "skills");
            if (ymap_get(node, "k") || s->n_skills) {
                diag_add(&l->diag, v->mark, item, "give either skill and "
                         "k, or skills (one agent each), not both");
                return;
            }
            if (v->kind != YNODE_SEQ || v->n < 2 || v->n > SWARM_MAX_VOTE) {
                diag_add(&l->diag, v->mark, item, "expected a list of 2 to "
                         "%d skills", SWARM_MAX_VOTE);
                return;
            }
            size_t *skills = arena_alloc(l->arena, v->n * sizeof *skills);
            if (!skills) {
                l->diag.nomem = true;
                return;
            }
            for (size_t i = 0; i < v->n; i++) {
                char elem[256];
                long idx = find_skill(l, v->items[i],
                                      field_index(elem, sizeof elem, item, i),
                                      names);
                if (idx < 0)
                    return;
                skills[i] = (size_t)idx;
            }
            s->skills = skills;
            s->n_skills = v->n;
            s->vote = (uint32_t)v->n;
            check_alike(l, s, v, item, "vote");
        }
    } else {
        diag_add(&l->diag, node->mark, sub, "expected a number of agents "
                 "or {k: N, skills: [...], by: majority}");
        return;
    }
    if (k > SWARM_MAX_VOTE)
        diag_add(&l->diag, node->mark, sub, "%llu agents; at most %d can "
                 "vote", (unsigned long long)k, SWARM_MAX_VOTE);
}

static void load_map(swarm_loader *l, swarm_step *s, const ynode *node,
                     const char *field)
{
    static const char *const keys[] = {"over", "split", "tokens"};
    static const char *const splits[] = {"sentences", "lines", "chunks",
                                         "list"};
    char sub[256], item[256];
    field_key(sub, sizeof sub, field, "map");
    if (node->kind != YNODE_MAP) {
        diag_add(&l->diag, node->mark, sub, "expected {over: \"{job.F}\", "
                 "split: sentences}, got %s", ynode_kind_name(node));
        return;
    }
    diag_check_keys(&l->diag, node, sub, keys, 3);
    s->map = true;
    const ynode *v = ymap_get(node, "over");
    field_key(item, sizeof item, sub, "over");
    if (!v)
        diag_add(&l->diag, node->mark, item, "missing; name the text or "
                 "list to split, such as \"{job.text}\"");
    else
        read_string(l, v, item, &s->map_over);

    v = ymap_get(node, "split");
    field_key(item, sizeof item, sub, "split");
    const char *split;
    if (!v) {
        diag_add(&l->diag, node->mark, item, "missing; use sentences, "
                 "lines, chunks or list");
    } else if (read_string(l, v, item, &split)) {
        size_t k = 0;
        while (k < 4 && strcmp(split, splits[k]))
            k++;
        if (k == 4) {
            char advice[200];
            diag_suggest(split, splits, 4, advice, sizeof advice);
            diag_add(&l->diag, v->mark, item, "unknown split \"%s\".%s",
                     split, advice);
        }
        s->split = (swarm_split)(k < 4 ? k : 0);
    }
    v = ymap_get(node, "tokens");
    field_key(item, sizeof item, sub, "tokens");
    uint64_t tokens;
    if (s->split == SWARM_SPLIT_CHUNKS && !v)
        diag_add(&l->diag, node->mark, item, "missing; chunks need a size "
                 "in tokens, such as tokens: 128");
    else if (v && s->split != SWARM_SPLIT_CHUNKS)
        diag_add(&l->diag, v->mark, item, "tokens applies to split: "
                 "chunks only; remove it");
    else if (v && read_uint(l, v, item, 1, 1u << 20, &tokens))
        s->chunk_tokens = (uint32_t)tokens;
}

static void load_reduce(swarm_loader *l, swarm_step *s, const ynode *node,
                        const char *field)
{
    static const char *const reduces[] = {"collect", "concat", "count",
                                          "vote"};
    char sub[256];
    field_key(sub, sizeof sub, field, "reduce");
    const char *name;
    if (!read_string(l, node, sub, &name))
        return;
    size_t k = 0;
    while (k < 4 && strcmp(name, reduces[k]))
        k++;
    if (k == 4) {
        char advice[200];
        diag_suggest(name, reduces, 4, advice, sizeof advice);
        diag_add(&l->diag, node->mark, sub, "unknown reduce \"%s\".%s", name,
                 advice);
        return;
    }
    s->reduce = (swarm_reduce)(k + 1);
}

/* Structure of one step: what runs and how many times. References are
 * resolved once every step's fields are known. */
static void load_step(swarm_loader *l, swarm_step *s, const ynode *node,
                      const char *field, const char *const *names)
{
    s->vote = 1;
    const ynode *skill = ymap_get(node, "skill");
    const ynode *cascade = ymap_get(node, "cascade");
    char sub[256];
    if (skill && cascade)
        diag_add(&l->diag, cascade->mark, field, "give skill or cascade, "
                 "not both");
    if (skill) {
        long k = find_skill(l, skill, field_key(sub, sizeof sub, field,
                                                "skill"), names);
        size_t *single = arena_alloc(l->arena, sizeof *single);
        if (k >= 0 && single) {
            *single = (size_t)k;
            s->skills = single;
            s->n_skills = 1;
        }
    } else if (cascade) {
        load_cascade(l, s, cascade, node, field, names);
    }
    const ynode *v;
    if ((v = ymap_get(node, "threshold")) && !cascade)
        diag_add(&l->diag, v->mark, field_key(sub, sizeof sub, field,
                                              "threshold"),
                 "threshold applies to cascade steps only; remove it");
    if ((v = ymap_get(node, "vote"))) {
        if (cascade)
            diag_add(&l->diag, v->mark, field, "a step cannot both vote "
                     "and cascade; split it into two steps");
        else
            load_vote(l, s, v, field, names);
    }
    if (!skill && !cascade && !s->n_skills)
        diag_add(&l->diag, node->mark, field, "the step runs nothing; add "
                 "skill: NAME, cascade: [...] or vote: {skills: [...]}");

    const ynode *map = ymap_get(node, "map");
    const ynode *reduce = ymap_get(node, "reduce");
    if (map)
        load_map(l, s, map, field);
    if (reduce)
        load_reduce(l, s, reduce, field);
    if (map && !reduce)
        diag_add(&l->diag, map->mark, field, "a map step needs reduce: "
                 "collect, concat, count or vote");
    if (reduce && !map)
        diag_add(&l->diag, reduce->mark, field, "reduce applies to map "
                 "steps only; add map: or remove reduce");
}

/* Fields of a step's result, from its first skill's output kind and the
 * way the step combines results. */
static void step_fields(swarm_loader *l, swarm_step *s, const ynode *node,
                        const char *field)
{
    const char **f = arena_alloc(l->arena, 72 * sizeof *f);
    if (!f) {
        l->diag.nomem = true;
        return;
    }
    size_t n = 0;
    const swarm_output *o = &l->file->skills[s->skills[0]].output;
    if (s->map) {
        f[n++] = "n_items";
        if (s->reduce == SWARM_REDUCE_COLLECT)
            f[n++] = "items";
        else if (s->reduce == SWARM_REDUCE_CONCAT)
            f[n++] = "text";
        else if (s->reduce == SWARM_REDUCE_COUNT)
            f[n++] = "count";
        else if (s->reduce == SWARM_REDUCE_VOTE) {
            f[n++] = "label";
            f[n++] = "agreement";
            if (o->kind != SWARM_OUTPUT_CHOICE)
                diag_add(&l->diag, node->mark, field, "reduce: vote counts "
                         "labels, but skill \"%s\" does not output a "
                         "choice; use collect, concat or count",
                         l->file->skills[s->skills[0]].name);
        }
    } else if (o->kind == SWARM_OUTPUT_CHOICE) {
        f[n++] = "label";
        f[n++] = "confidence";
    } else if (o->kind == SWARM_OUTPUT_SPAN) {
        f[n++] = "text";
        f[n++] = "found";
    } else {
        f[n++] = "text";
        for (size_t i = 0; o->kind == SWARM_OUTPUT_JSON &&
                           i < o->n_fields && n < 64; i++)
            f[n++] = o->fields[i].name;
    }
    if (s->vote > 1 && (o->kind == SWARM_OUTPUT_JSON ||
                        o->kind == SWARM_OUTPUT_TEXT))
        diag_add(&l->diag, node->mark, field, "vote compares exact "
                 "answers, which only choice and span skills give; "
                 "\"%s\" outputs free text or JSON",
                 l->file->skills[s->skills[0]].name);
    if (s->vote_rule == SWARM_VOTE_CONFIDENCE &&
        o->kind != SWARM_OUTPUT_CHOICE)
        diag_add(&l->diag, node->mark, field, "by: confidence weighs label "
                 "probabilities, which only choice skills give; use by: "
                 "majority");
    if (s->vote > 1)
        f[n++] = "agreement";
    if (s->cascade)
        f[n++] = "skill";
    s->fields = f;
    s->n_fields = n;
}

static bool valid_id(const char *id)
{
    if (!id[0] || !strcmp(id, "job") || !strcmp(id, "item"))
        return false;
    for (const char *p = id; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Ids of every step, each unique, before anything refers to them. */
static void load_ids(swarm_loader *l, swarm_pipeline *p, const ynode *steps,
                     const char *field)
{
    for (size_t i = 0; i < steps->n && !diag_full(&l->diag); i++) {
        const ynode *node = steps->items[i];
        swarm_step *s = &p->steps[i];
        char sub[256], item[256];
        field_index(sub, sizeof sub, field, i);
        s->mark = node->mark;
        if (node->kind != YNODE_MAP) {
            diag_add(&l->diag, node->mark, sub, "expected a step such as "
                     "{id: NAME, skill: NAME}, got %s",
                     ynode_kind_name(node));
            continue;
        }
        diag_check_keys(&l->diag, node, sub, STEP_KEYS, N_STEP_KEYS);
        const ynode *id = ymap_get(node, "id");
        field_key(item, sizeof item, sub, "id");
        if (!id) {
            diag_add(&l->diag, node->mark, item, "missing; every step "
                     "needs an id");
            continue;
        }
        if (!read_string(l, id, item, &s->id))
            continue;
        if (!valid_id(s->id)) {
            diag_add(&l->diag, id->mark, item, "\"%s\" is not a valid step "
                     "id; use letters, digits, _ and -, and not job or item",
                     s->id);
            s->id = NULL;
            continue;
        }
        for (size_t j = 0; j < i; j++)
            if (p->steps[j].id && !strcmp(p->steps[j].id, s->id)) {
                diag_add(&l->diag, id->mark, item, "duplicate step id "
                         "\"%s\" (first at line %u); rename one of them",
                         s->id, p->steps[j].mark.line);
                s->id = NULL;
                break;
            }
    }
}

static void load_pipeline(swarm_loader *l, swarm_pipeline *p,
                          const ynode *node, const char *field,
                          const char *const *names)
{
    static const char *const keys[] = {"input", "steps", "output"};
    char sub[256], item[256];
    if (node->kind != YNODE_MAP) {
        diag_add(&l->diag, node->mark, field, "expected {input: [...], "
                 "steps: [...], output: {...}}, got %s",
                 ynode_kind_name(node));
        return;
    }
    size_t problems = l->diag.count;
    diag_check_keys(&l->diag, node, field, keys, 3);
    const ynode *v = ymap_get(node, "input");
    field_key(sub, sizeof sub, field, "input");
    if (!v)
        diag_add(&l->diag, node->mark, sub, "missing; list the job's "
                 "fields, such as [text]");
    else
        read_string_list(l, v, sub, &p->inputs, &p->n_inputs);

    const ynode *steps = ymap_get(node, "steps");
    field_key(sub, sizeof sub, field, "steps");
    if (!steps || steps->kind != YNODE_SEQ || steps->n == 0 ||
        steps->n > SWARM_MAX_STEPS) {
        diag_add(&l->diag, steps ? steps->mark : node->mark, sub,
                 "expected a list of 1 to %d steps", SWARM_MAX_STEPS);
        return;
    }
    p->steps = arena_alloc(l->arena, steps->n * sizeof *p->steps);
    if (!p->steps) {
        l->diag.nomem = true;
        return;
    }
    p->n_steps = steps->n;
    load_ids(l, p, steps, sub);
    for (size_t i = 0; i < steps->n && !diag_full(&l->diag); i++) {
        if (!p->steps[i].id)
            continue;
        field_index(item, sizeof item, sub, i);
        load_step(l, &p->steps[i], steps->items[i], item, names);
        if (p->steps[i].n_skills)
            step_fields(l, &p->steps[i], steps->items[i], item);
    }
    /* References need every step's id, skills and fields. */
    if (l->diag.count == problems)
        link_steps(l, p, steps, node, field);
}

void load_pipelines(swarm_loader *l, const ynode *pipelines)
{
    if (pipelines->kind != YNODE_MAP || pipelines->n == 0) {
        diag_add(&l->diag, pipelines->mark, "pipelines", "expected a "
                 "mapping of pipeline names to pipelines, got %s",
                 ynode_kind_name(pipelines));
        return;
    }
    swarm_file *f = l->file;
    f->pipelines = arena_alloc(l->arena, pipelines->n * sizeof *f->pipelines);
    const char *const *names = skill_names(l);
    if (!f->pipelines || !names) {
        l->diag.nomem = true;
        return;
    }
    for (size_t i = 0; i < pipelines->n && !diag_full(&l->diag); i++) {
        const ynode *key = ymap_key(pipelines, i);
        char field[256];
        field_key(field, sizeof field, "pipelines", key->text);
        swarm_pipeline *p = &f->pipelines[f->n_pipelines++];
        p->name = key->text;
        p->mark = key->mark;
        load_pipeline(l, p, ymap_value(pipelines, i), field, names);
    }
}
