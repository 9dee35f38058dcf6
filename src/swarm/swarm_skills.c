/* The skills section: model, adapter, prompt, output kind, sampling and
 * timeout, with what a specialist's metadata supplies when the file
 * only names the model. */
#include <string.h>

#include "core/error.h"
#include "swarm/swarm_internal.h"
#include "train/specialist.h"

#define SKILL_DEFAULT_TIMEOUT_MS 30000
#define SKILL_DEFAULT_MAX_TOKENS 64

/* The roj.* metadata a skill can fall back on: its model's or, when the
 * skill has an adapter made by roj train, the adapter's. */
typedef struct meta_view {
    const char *source; /* the file the metadata came from */
    const char *task;   /* NULL: none */
    const char *const *labels;
    size_t n_labels;
    const char *prompt_template;
    const char *none_word;
} meta_view;

static const char *const TRAIN_TEMPLATES[] = {
    "{text}\nlabel:", "{text}\n{slot}:", "{text}"};

static const char *task_name(train_task t)
{
    return t == TRAIN_CLASSIFY  ? "classify"
           : t == TRAIN_EXTRACT ? "extract"
                                : "generate";
}

static void adapter_meta(swarm_loader *l, const swarm_skill *s,
                         const ynode *at, const char *field, meta_view *m)
{
    spec_info info;
    if (spec_info_read_adapter(s->lora_path, &info) != ROJ_OK) {
        diag_add(&l->diag, at->mark, field, "the skill has no output and "
                 "its adapter's metadata cannot be read: %s. Add output:",
                 roj_last_error());
        return;
    }
    if (info.has_meta) {
        m->source = s->lora_path;
        m->task = task_name(info.task);
        const char **labels = arena_alloc(l->arena, (info.n_labels + 1) *
                                                        sizeof *labels);
        for (size_t i = 0; labels && i < info.n_labels; i++)
            if (!(labels[i] = arena_strdup(l->arena, info.labels[i])))
                l->diag.nomem = true;
        if (!labels)
            l->diag.nomem = true;
        m->labels = labels;
        m->n_labels = labels ? info.n_labels : 0;
        m->prompt_template = arena_strdup(l->arena, info.template_text);
        m->none_word = arena_strdup(l->arena, info.none_word);
    }
    spec_info_free(&info);
}

#define SKILL_MAX_FIELDS 64

typedef struct field_collector {
    swarm_loader *l;
    swarm_skill *skill;
    bool overflow;
} field_collector;

static void add_field(void *ctx, const char *name, size_t len, size_t offset)
{
    (void)offset;
    field_collector *c = ctx;
    swarm_skill *s = c->skill;
    for (size_t i = 0; i < s->n_fields; i++)
        if (strlen(s->fields[i]) == len && !memcmp(s->fields[i], name, len))
            return;
    if (s->n_fields == SKILL_MAX_FIELDS) {
        c->overflow = true;
        return;
    }
    const char *copy = arena_strndup(c->l->arena, name, len);
    if (!copy) {
        c->l->diag.nomem = true;
        return;
    }
    ((const char **)s->fields)[s->n_fields++] = copy;
}

/* Collects the prompt's placeholders into s->fields. */
static void prompt_fields(swarm_loader *l, swarm_skill *s, const ynode *at,
                          const char *field)
{
    s->fields = arena_alloc(l->arena, SKILL_MAX_FIELDS * sizeof *s->fields);
    if (!s->fields) {
        l->diag.nomem = true;
        return;
    }
    const char *error;
    size_t offset;
    field_collector c = {l, s, false};
    if (!tmpl_scan(s->prompt, add_field, &c, &error, &offset)) {
        diag_add(&l->diag, at->mark, field, "byte %zu of the template: %s",
                 offset, error);
        return;
    }
    if (c.overflow)
        diag_add(&l->diag, at->mark, field, "the prompt uses more than %d "
                 "different placeholders", SKILL_MAX_FIELDS);
    for (size_t i = 0; i < s->n_fields; i++) {
        if (strchr(s->fields[i], '.'))
            diag_add(&l->diag, at->mark, field, "{%s}: a skill prompt uses "
                     "plain field names such as {text}; the step's input "
                     "binds them to job fields and step results",
                     s->fields[i]);
    }
}

static void load_choice(swarm_loader *l, swarm_output *o, const ynode *node,
                        const char *field)
{
    o->kind = SWARM_OUTPUT_CHOICE;
    if (read_string_list(l, node, field, &o->labels, &o->n_labels) &&
        o->n_labels == 0)
        diag_add(&l->diag, node->mark, field, "the label set is empty; "
                 "list at least one label");
}

static void load_span(swarm_loader *l, swarm_output *o, const ynode *node,
                      const char *field)
{
    static const char *const keys[] = {"slot", "none"};
    char sub[256];
    o->kind = SWARM_OUTPUT_SPAN;
    if (ynode_is_null(node))
        return;
    if (node->kind != YNODE_MAP) {
        diag_add(&l->diag, node->mark, field, "expected {slot: NAME, none: "
                 "WORD}, got %s", ynode_kind_name(node));
        return;
    }
    diag_check_keys(&l->diag, node, field, keys, 2);
    const ynode *v;
    if ((v = ymap_get(node, "slot")))
        read_string(l, v, field_key(sub, sizeof sub, field, "slot"),
                    &o->slot);
    if ((v = ymap_get(node, "none")))
        read_string(l, v, field_key(sub, sizeof sub, field, "none"),
                    &o->none_word);
}

static void load_json(swarm_loader *l, swarm_output *o, const ynode *node,
                      const char *field)
{
    static const char *const keys[] = {"fields", "max_tokens"};
    static const char *const types[] = {"string", "integer", "number",
                                        "boolean"};
    char sub[256], item[256];
    o->kind = SWARM_OUTPUT_JSON;
    o->max_tokens = SKILL_DEFAULT_MAX_TOKENS;
    if (node->kind != YNODE_MAP) {
        diag_add(&l->diag, node->mark, field, "expected {fields: {NAME: "
                 "TYPE}}, got %s", ynode_kind_name(node));
        return;
    }
    diag_check_keys(&l->diag, node, field, keys, 2);
    uint64_t v;
    const ynode *max = ymap_get(node, "max_tokens");
    if (max && read_uint(l, max, field_key(sub, sizeof sub, field,
                                           "max_tokens"), 1, 65536, &v))
        o->max_tokens = (uint32_t)v;
    const ynode *fields = ymap_get(node, "fields");
    field_key(sub, sizeof sub, field, "fields");
    if (!fields || fields->kind != YNODE_MAP || fields->n == 0) {
        diag_add(&l->diag, fields ? fields->mark : node->mark, sub,
                 "expected at least one field, such as {order: string}");
        return;
    }
    swarm_json_field *out = arena_alloc(l->arena, fields->n * sizeof *out);
    if (!out) {
        l->diag.nomem = true;
        return;
    }
    for (size_t i = 0; i < fields->n; i++) {
        const ynode *name = ymap_key(fields, i), *type = ymap_value(fields, i);
        field_key(item, sizeof item, sub, name->text);
        out[i].name = name->text;
        const char *t;
        if (!read_string(l, type, item, &t))
            continue;
        size_t k = 0;
        while (k < 4 && strcmp(t, types[k]))
            k++;
        if (k == 4) {
            char advice[200];
            diag_suggest(t, types, 4, advice, sizeof advice);
            diag_add(&l->diag, type->mark, item, "unknown type \"%s\".%s",
                     t, advice);
        }
        out[i].type = (swarm_field_type)(k < 4 ? k : 0);
    }
    o->fields = out;
    o->n_fields = fields->n;
}

static void load_text(swarm_loader *l, swarm_output *o, const ynode *node,
                      const char *field)
{
    static const char *const keys[] = {"max_tokens", "stop"};
    char sub[256];
    o->kind = SWARM_OUTPUT_TEXT;
    o->max_tokens = SKILL_DEFAULT_MAX_TOKENS;
    if (ynode_is_null(node))
        return;
    if (node->kind != YNODE_MAP) {
        diag_add(&l->diag, node->mark, field, "expected {max_tokens: N, "
                 "stop: [...]}, got %s", ynode_kind_name(node));
        return;
    }
    diag_check_keys(&l->diag, node, field, keys, 2);
    uint64_t v;
    const ynode *max = ymap_get(node, "max_tokens");
    if (max && read_uint(l, max, field_key(sub, sizeof sub, field,
                                           "max_tokens"), 1, 65536, &v))
        o->max_tokens = (uint32_t)v;
    const ynode *stop = ymap_get(node, "stop");
    if (stop)
        read_string_list(l, stop, field_key(sub, sizeof sub, field, "stop"),
                         &o->stop, &o->n_stop);
}

static void load_output(swarm_loader *l, swarm_skill *s, const ynode *node,
                        const char *field)
{
    static const char *const kinds[] = {"choice", "span", "json", "text"};
    if (node->kind != YNODE_MAP || node->n != 1) {
        diag_add(&l->diag, node->mark, field, "expected exactly one of "
                 "choice, span, json or text, such as {choice: [a, b]}");
        return;
    }
    diag_check_keys(&l->diag, node, field, kinds, 4);
    const char *kind = ymap_key(node, 0)->text;
    const ynode *value = ymap_value(node, 0);
    char sub[256];
    field_key(sub, sizeof sub, field, kind);
    if (!strcmp(kind, "choice"))
        load_choice(l, &s->output, value, sub);
    else if (!strcmp(kind, "span"))
        load_span(l, &s->output, value, sub);
    else if (!strcmp(kind, "json"))
        load_json(l, &s->output, value, sub);
    else if (!strcmp(kind, "text"))
        load_text(l, &s->output, value, sub);
}

/* An output from the metadata, for a skill that only names its model. */
static void output_from_meta(swarm_loader *l, swarm_skill *s,
                             const meta_view *m, const ynode *at,
                             const char *field)
{
    swarm_output *o = &s->output;
    if (!m->task) {
        diag_add(&l->diag, at->mark, field, "the skill has no output and "
                 "\"%s\" carries no roj.task; add output: {choice: [...]}, "
                 "{span: {}}, {json: {fields: ...}} or {text: {}}",
                 m->source);
        return;
    }
    if (!strcmp(m->task, "classify")) {
        o->kind = SWARM_OUTPUT_CHOICE;
        o->labels = m->labels;
        o->n_labels = m->n_labels;
        if (o->n_labels == 0)
            diag_add(&l->diag, at->mark, field, "\"%s\" is a classifier "
                     "without roj.labels; add output: {choice: [...]}",
                     m->source);
    } else if (!strcmp(m->task, "extract")) {
        o->kind = SWARM_OUTPUT_SPAN;
    } else {
        o->kind = SWARM_OUTPUT_TEXT;
        o->max_tokens = SKILL_DEFAULT_MAX_TOKENS;
    }
}

static bool label_in(const char *label, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(label, set[i]))
            return true;
    return false;
}

/* A skill that uses its model's trained template must request the output
 * the model was trained for. */
static void check_against_meta(swarm_loader *l, swarm_skill *s,
                               const meta_view *m, const ynode *at,
                               const char *field)
{
    swarm_output *o = &s->output;
    static const char *const kind_task[] = {"classify", "extract", "",
                                            "generate"};
    if (!m->task) {
        diag_add(&l->diag, at->mark, field, "the skill has no prompt and "
                 "\"%s\" carries no roj.prompt_template or roj.task; add "
                 "prompt: \"... {text} ...\"", m->source);
        return;
    }
    char sub[256];
    if (strcmp(kind_task[o->kind], m->task)) {
        field_key(sub, sizeof sub, field, "output");
        diag_add(&l->diag, at->mark, sub, "the output does not match "
                 "\"%s\", which was trained to %s; remove the output or "
                 "add a prompt", m->source, m->task);
        return;
    }
    if (o->kind == SWARM_OUTPUT_CHOICE) {
        const ynode *list = ymap_get(at, "choice");
        field_key(sub, sizeof sub, field, "output.choice");
        for (size_t i = 0; i < o->n_labels; i++)
            if (!label_in(o->labels[i], m->labels, m->n_labels)) {
                char advice[320];
                diag_suggest(o->labels[i], m->labels, m->n_labels, advice,
                             sizeof advice);
                const ynode *item = list && list->kind == YNODE_SEQ &&
                                            i < list->n ? list->items[i] : at;
                diag_add(&l->diag, item->mark, sub, "label \"%s\" is not "
                         "one of the model's roj.labels.%s", o->labels[i],
                         advice);
            }
    }
    if (o->kind == SWARM_OUTPUT_SPAN) {
        if (!o->slot && m->n_labels == 1)
            o->slot = m->labels[0];
        if (!o->slot) {
            diag_add(&l->diag, at->mark, field, "\"%s\" extracts %zu slots; "
                     "choose one with output: {span: {slot: NAME}}",
                     m->source, m->n_labels);
        } else if (m->n_labels && !label_in(o->slot, m->labels,
                                            m->n_labels)) {
            char advice[320];
            diag_suggest(o->slot, m->labels, m->n_labels, advice,
                         sizeof advice);
            const ynode *slot = ymap_get(ymap_get(at, "span"), "slot");
            field_key(sub, sizeof sub, field, "output.span.slot");
            diag_add(&l->diag, slot ? slot->mark : at->mark, sub,
                     "slot \"%s\" is not one of the model's roj.slots.%s",
                     o->slot, advice);
        }
        if (!o->none_word)
            o->none_word = m->none_word;
    }
}

static void load_sampling(swarm_loader *l, swarm_skill *s, const ynode *node,
                          const char *field)
{
    static const char *const keys[] = {"temperature", "top_k", "top_p",
                                       "seed"};
    char sub[256];
    if (node->kind != YNODE_MAP) {
        diag_add(&l->diag, node->mark, field, "expected {temperature: T, "
                 "top_k: K, top_p: P, seed: S}, got %s",
                 ynode_kind_name(node));
        return;
    }
    diag_check_keys(&l->diag, node, field, keys, 4);
    const ynode *v;
    double d;
    uint64_t u;
    if ((v = ymap_get(node, "temperature")) &&
        read_float(l, v, field_key(sub, sizeof sub, field, "temperature"),
                   &d)) {
        if (d < 0 || d > 100)
            diag_add(&l->diag, v->mark, sub, "%g is out of range; use 0 "
                     "(greedy) to 100", d);
        s->sampling.temperature = (float)d;
    }
    if ((v = ymap_get(node, "top_k")) &&
        read_uint(l, v, field_key(sub, sizeof sub, field, "top_k"), 0,
                  1000000, &u))
        s->sampling.top_k = (int32_t)u;
    if ((v = ymap_get(node, "top_p")) &&
        read_float(l, v, field_key(sub, sizeof sub, field, "top_p"), &d)) {
        if (!(d > 0 && d <= 1))
            diag_add(&l->diag, v->mark, sub, "%g is out of range; use a "
                     "value in (0, 1]", d);
        s->sampling.top_p = (float)d;
    }
    if ((v = ymap_get(node, "seed")) &&
        read_uint(l, v, field_key(sub, sizeof sub, field, "seed"), 0,
                  UINT64_MAX, &u))
        s->sampling.seed = u;
}

static void load_skill(swarm_loader *l, swarm_skill *s, const ynode *node,
                       const char *field, const char *const *models)
{
    static const char *const keys[] = {"model", "lora", "prompt", "output",
                                       "sampling", "timeout"};
    char sub[256];
    s->timeout_ms = SKILL_DEFAULT_TIMEOUT_MS;
    s->sampling.top_p = 1;
    if (node->kind != YNODE_MAP) {
        diag_add(&l->diag, node->mark, field, "expected a mapping such as "
                 "{model: NAME}, got %s", ynode_kind_name(node));
        return;
    }
    diag_check_keys(&l->diag, node, field, keys, 6);

    const ynode *v = ymap_get(node, "model");
    const char *model_name = NULL;
    long model = -1;
    field_key(sub, sizeof sub, field, "model");
    if (!v)
        diag_add(&l->diag, node->mark, sub, "missing; name one of the "
                 "models");
    else if (read_string(l, v, sub, &model_name)) {
        for (size_t i = 0; i < l->file->n_models && model < 0; i++)
            if (!strcmp(l->file->models[i].name, model_name))
                model = (long)i;
        if (model < 0) {
            char advice[320];
            diag_suggest(model_name, models, l->file->n_models, advice,
                         sizeof advice);
            diag_add(&l->diag, v->mark, sub, "unknown model \"%s\".%s "
                     "Define it under models: or fix the name", model_name,
                     advice);
        }
    }
    s->model = model < 0 ? 0 : (size_t)model;

    bool lora_ok = true;
    if ((v = ymap_get(node, "lora")))
        lora_ok = load_file_ref(l, v, field_key(sub, sizeof sub, field,
                                                "lora"),
                                &s->lora_path, &s->lora_sha256);
    if ((v = ymap_get(node, "prompt")))
        read_string(l, v, field_key(sub, sizeof sub, field, "prompt"),
                    &s->prompt);
    if ((v = ymap_get(node, "sampling")))
        load_sampling(l, s, v, field_key(sub, sizeof sub, field,
                                         "sampling"));
    if ((v = ymap_get(node, "timeout")))
        read_duration(l, v, field_key(sub, sizeof sub, field, "timeout"),
                      &s->timeout_ms);

    /* The rest needs a model (and an adapter) that loaded. */
    if (model < 0 || !lora_ok || !l->file->models[model].path)
        return;
    const swarm_model *m = &l->file->models[model];
    meta_view meta = {m->path, m->task, m->labels, m->n_labels,
                      m->prompt_template, m->none_word};
    const ynode *output = ymap_get(node, "output");
    if (s->lora_path && (!output || !s->prompt)) {
        meta = (meta_view){s->lora_path, NULL, NULL, 0, NULL, NULL};
        adapter_meta(l, s, node, field, &meta);
    }
    if (output)
        load_output(l, s, output, field_key(sub, sizeof sub, field,
                                            "output"));
    else
        output_from_meta(l, s, &meta, node, field);

    field_key(sub, sizeof sub, field, "prompt");
    if (!s->prompt) {
        check_against_meta(l, s, &meta, output ? output : node, field);
        s->prompt_from_model = true;
        s->prompt = meta.prompt_template;
        if (!s->prompt && meta.task)
            s->prompt = TRAIN_TEMPLATES[!strcmp(meta.task, "classify") ? 0
                                        : !strcmp(meta.task, "extract") ? 1
                                                                        : 2];
        if (!s->prompt)
            return;
        /* The runner fills {slot} from the output; a step supplies the
         * rest. */
        s->fields = arena_alloc(l->arena, 3 * sizeof *s->fields);
        if (!s->fields) {
            l->diag.nomem = true;
            return;
        }
        ((const char **)s->fields)[s->n_fields++] = "text";
        if (strstr(s->prompt, "{context}"))
            ((const char **)s->fields)[s->n_fields++] = "context";
    } else {
        prompt_fields(l, s, ymap_get(node, "prompt"), sub);
    }
    if (s->output.kind == SWARM_OUTPUT_SPAN && !s->output.none_word)
        s->output.none_word = "none";
}

void load_skills(swarm_loader *l, const ynode *skills)
{
    if (skills->kind != YNODE_MAP || skills->n == 0) {
        diag_add(&l->diag, skills->mark, "skills", "expected a mapping of "
                 "skill names to skills, got %s", ynode_kind_name(skills));
        return;
    }
    swarm_file *f = l->file;
    f->skills = arena_alloc(l->arena, skills->n * sizeof *f->skills);
    const char *const *models = model_names(l);
    if (!f->skills || !models) {
        l->diag.nomem = true;
        return;
    }
    for (size_t i = 0; i < skills->n && !diag_full(&l->diag); i++) {
        const ynode *key = ymap_key(skills, i);
        char field[256];
        field_key(field, sizeof field, "skills", key->text);
        swarm_skill *s = &f->skills[f->n_skills++];
        s->name = key->text;
        s->mark = key->mark;
        load_skill(l, s, ymap_value(skills, i), field, models);
    }
}

const char *const *skill_names(swarm_loader *l)
{
    swarm_file *f = l->file;
    const char **names = arena_alloc(l->arena, (f->n_skills + 1) *
                                                   sizeof *names);
    for (size_t i = 0; names && i < f->n_skills; i++)
        names[i] = f->skills[i].name;
    return names;
}
