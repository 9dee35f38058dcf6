/* Prompts of the skill executor: a task's field values, repaired to valid
 * UTF-8, turned into the prompt tokens of its skill and checked against
 * the context (exec_internal.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "run/exec_internal.h"
#include "sample/sample_util.h"

/* Returns the value task gives for field name, or NULL. */
static const char *task_value(const exec_task *task, const char *name)
{
    for (size_t i = 0; i < task->n_fields; i++)
        if (task->names[i] && task->values[i] &&
            strcmp(task->names[i], name) == 0)
            return task->values[i];
    return NULL;
}

roj_status exec_utf8_repair(const char *s, char **out)
{
    static const char replacement[] = "\xEF\xBF\xBD";
    const size_t len = strlen(s);
    *out = NULL;

    /* Measure: each bad sequence (its maximal valid prefix, or an
     * unfinished character at the end) becomes 3 bytes. */
    size_t need = 0, used = 0;
    bool valid = true;
    for (size_t i = 0; i < len; i += used) {
        const enum utf8_step_result r =
            utf8_step((const unsigned char *)s + i, len - i, &used);
        valid = valid && r == UTF8_CHAR;
        need += r == UTF8_CHAR ? used : 3;
    }
    if (valid)
        return ROJ_OK;

    char *copy = malloc(need + 1);
    if (!copy)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < len; i += used) {
        if (utf8_step((const unsigned char *)s + i, len - i, &used) ==
            UTF8_CHAR) {
            memcpy(copy + n, s + i, used);
            n += used;
        } else {
            memcpy(copy + n, replacement, 3);
            n += 3;
        }
    }
    copy[n] = '\0';
    *out = copy;
    return ROJ_OK;
}

const char *exec_span_slot(const exec_call *call)
{
    const swarm_output *o = &call->skill->output;
    if (o->slot)
        return o->slot;
    return call->info->n_labels ? call->info->labels[0] : NULL;
}

/* The skill's field values for swarm_render, in skill->fields order. */
typedef struct field_values {
    const swarm_skill *skill;
    const char *const *values;
} field_values;

static roj_status lookup_field(void *ctx, const char *name,
                               const char **value, size_t *len)
{
    const field_values *fv = ctx;
    for (size_t i = 0; i < fv->skill->n_fields; i++) {
        if (strcmp(fv->skill->fields[i], name) == 0) {
            *value = fv->values[i];
            *len = strlen(fv->values[i]);
            return ROJ_OK;
        }
    }
    return ROJ_ERR_NOT_FOUND;
}

/* Tokenizes the prompt of item: the specialist's template filled the
 * way roj train did, or the skill's own template rendered with values
 * (in skill->fields order). */
static roj_status prompt_tokens(const exec_call *call, exec_item *item,
                                const char *const *values)
{
    const roj_model *model = call->model->model;
    if (exec_uses_specialist(call)) {
        const bool span = call->skill->output.kind == SWARM_OUTPUT_SPAN;
        return spec_prompt(model, call->info, item->text, item->text_len,
                           span ? exec_span_slot(call) : NULL,
                           item->context, &item->ids, &item->n_ids);
    }
    field_values fv = {call->skill, values};
    char *prompt = NULL;
    roj_status st = swarm_render(call->skill->prompt, lookup_field, &fv, 0,
                                 &prompt);
    if (st)
        return st;
    st = roj_tokenize(roj_model_vocab(model), prompt, strlen(prompt),
                      ROJ_TOKENIZE_ADD_SPECIAL, &item->ids, &item->n_ids);
    free(prompt);
    return st;
}

/* Fails item when its prompt leaves no room for the output. */
static roj_status check_length(const exec_call *call, exec_item *item)
{
    char msg[320];
    if (item->n_ids == 0)
        return exec_item_fail(call, item, ROJ_ERR_INVALID_ARG,
                              "the prompt is empty (0 tokens)");
    if (item->n_ids + (size_t)call->reserve <= (size_t)call->n_ctx)
        return ROJ_OK;
    const swarm_model *m = &call->engine->swarm->models[call->slot->model];
    snprintf(msg, sizeof msg, "the prompt has %zu tokens and the output "
             "needs %d more, but the context of model \"%s\" holds %d "
             "tokens; shorten the input", item->n_ids, (int)call->reserve,
             m->name, (int)call->n_ctx);
    return exec_item_fail(call, item, ROJ_ERR_CONTEXT_FULL, msg);
}

roj_status exec_item_prepare(const exec_call *call, const exec_task *task,
                             exec_result *result, exec_item *item)
{
    const swarm_skill *skill = call->skill;
    memset(item, 0, sizeof *item);
    item->task = task;
    item->result = result;
    item->seed = exec_mix_seed(skill->sampling.seed, task->seed);

    const char **values = calloc(skill->n_fields + 1, sizeof *values);
    item->owned = calloc(skill->n_fields + 1, sizeof *item->owned);
    if (!values || !item->owned) {
        free(values);
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    }

    /* Values: every field of the skill, with invalid UTF-8 repaired. */
    roj_status st = ROJ_OK;
    for (size_t i = 0; i < skill->n_fields; i++) {
        const char *v = task_value(task, skill->fields[i]);
        if (!v) {
            char msg[200];
            snprintf(msg, sizeof msg, "the task gives no value for the "
                     "prompt field \"%.60s\"", skill->fields[i]);
            st = exec_item_fail(call, item, ROJ_ERR_INVALID_ARG, msg);
            goto done;
        }
        char *fixed = NULL;
        if ((st = exec_utf8_repair(v, &fixed)))
            goto done;
        if (fixed)
            item->owned[item->n_owned++] = fixed;
        values[i] = fixed ? fixed : v;
    }

    /* The input of spans and specialists: the text field, else the
     * first; the context field of specialist templates. */
    item->text = skill->n_fields ? values[0] : "";
    for (size_t i = 0; i < skill->n_fields; i++) {
        if (strcmp(skill->fields[i], "text") == 0)
            item->text = values[i];
        else if (strcmp(skill->fields[i], "context") == 0 &&
                 exec_uses_specialist(call))
            item->context = values[i];
    }
    item->text_len = strlen(item->text);

    /* Tokens, then the length check. Only running out of memory stops
     * the engine; any other failure belongs to this task. */
    st = prompt_tokens(call, item, values);
    if (st == ROJ_ERR_NOMEM)
        goto done;
    if (st) {
        st = exec_item_fail(call, item, st, NULL);
        goto done;
    }
    st = check_length(call, item);

done:
    free(values);
    return st;
}

void exec_item_free(exec_item *item)
{
    for (size_t i = 0; item->owned && i < item->n_owned; i++)
        free(item->owned[i]);
    free(item->owned);
    free(item->ids);
    memset(item, 0, sizeof *item);
}
