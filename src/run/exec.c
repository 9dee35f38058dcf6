/* The skill executor's engine: models and adapters opened once, one
 * context per (model, adapter) pair, and exec_run, which prepares each
 * task and hands the batch to the runner of the skill's output kind
 * (exec.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "run/exec_internal.h"

roj_status exec_open(const swarm_file *swarm, int32_t n_threads,
                     exec_engine **out)
{
    *out = NULL;
    if (!swarm || n_threads < 0)
        return roj_error(ROJ_ERR_INVALID_ARG, "exec_open: a swarm file and "
                         "a thread count >= 0 are needed (got %d)",
                         (int)n_threads);
    exec_engine *e = calloc(1, sizeof *e);
    if (!e)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    e->swarm = swarm;
    e->n_threads = n_threads ? n_threads : 1;
    e->models = calloc(swarm->n_models + 1, sizeof *e->models);
    e->slots = calloc(swarm->n_skills + 1, sizeof *e->slots);
    e->skill_slot = calloc(swarm->n_skills + 1, sizeof *e->skill_slot);
    if (!e->models || !e->slots || !e->skill_slot) {
        exec_close(e);
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    }

    /* Skills on the same model and adapter file share a slot. */
    for (size_t i = 0; i < swarm->n_skills; i++) {
        const swarm_skill *s = &swarm->skills[i];
        size_t k = 0;
        for (; k < e->n_slots; k++) {
            const exec_slot *slot = &e->slots[k];
            const bool same_lora =
                slot->lora_path && s->lora_path
                    ? strcmp(slot->lora_path, s->lora_path) == 0
                    : slot->lora_path == s->lora_path;
            if (slot->model == s->model && same_lora)
                break;
        }
        if (k == e->n_slots) {
            e->slots[k].model = s->model;
            e->slots[k].lora_path = s->lora_path;
            e->n_slots++;
        }
        e->skill_slot[i] = k;
    }
    *out = e;
    return ROJ_OK;
}

static roj_status model_open(exec_engine *e, size_t index)
{
    exec_model *m = &e->models[index];
    if (m->model)
        return ROJ_OK;
    const swarm_model *sm = &e->swarm->models[index];
    roj_status st = roj_model_open(sm->path, &m->model);
    if (!st)
        st = spec_info_read(m->model, -1, &m->info);
    if (!st)
        st = roj_pieces_create(roj_model_vocab(m->model), &m->pieces);
    if (st) {
        spec_info_free(&m->info);
        roj_model_free(m->model);
        m->model = NULL;
        return roj_error_wrap(st, "model \"%s\" (%s)", sm->name, sm->path);
    }
    log_info("exec: opened model \"%s\" (%s)", sm->name, sm->path);
    return ROJ_OK;
}

/* Opens the slot's model, adapter and context when they are not yet. */
static roj_status slot_open(exec_engine *e, exec_slot *slot)
{
    if (slot->ctx)
        return ROJ_OK;
    roj_status st = model_open(e, slot->model);
    if (st)
        return st;
    roj_model *model = e->models[slot->model].model;
    const swarm_model *sm = &e->swarm->models[slot->model];
    if (slot->lora_path && !slot->lora) {
        st = roj_lora_open(model, slot->lora_path, &slot->lora);
        if (st)
            return roj_error_wrap(st, "adapter %s on model \"%s\"",
                                  slot->lora_path, sm->name);
        /* An adapter not made by roj train has no metadata, which only
         * skills with a prompt of their own accept. */
        slot->has_lora_info =
            spec_info_read_adapter(slot->lora_path, &slot->lora_info) ==
            ROJ_OK;
        roj_error_clear();
    }

    int32_t n_ctx = roj_model_n_ctx_train(model);
    if (n_ctx <= 0 || n_ctx > 4096)
        n_ctx = 4096;
    roj_context_params cp = roj_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_seq = EXEC_N_SEQ;
    cp.n_batch = n_ctx > EXEC_MIN_BATCH ? n_ctx : EXEC_MIN_BATCH;
    cp.n_threads = e->n_threads;
    st = roj_context_create(model, &cp, &slot->ctx);
    if (!st && slot->lora) {
        const roj_lora *const set[1] = {slot->lora};
        st = roj_context_set_lora(slot->ctx, set, NULL, 1);
    }
    if (st) {
        roj_context_free(slot->ctx);
        slot->ctx = NULL;
        return roj_error_wrap(st, "context for model \"%s\"", sm->name);
    }
    return ROJ_OK;
}

roj_status exec_preload(exec_engine *engine)
{
    for (size_t i = 0; i < engine->n_slots; i++) {
        roj_status st = slot_open(engine, &engine->slots[i]);
        if (st)
            return st;
    }
    return ROJ_OK;
}

bool exec_uses_specialist(const exec_call *call)
{
    return call->skill->prompt_from_model;
}

/* Positions the output of the skill needs after its prompt: what the
 * specialist calls keep free before they cut a prompt, the longest label
 * for roj_choose, a token or two for the rest. */
static int32_t output_reserve(const exec_call *call)
{
    const swarm_output *o = &call->skill->output;
    const bool spec = exec_uses_specialist(call);
    if (o->kind == SWARM_OUTPUT_CHOICE && spec)
        return call->info->label_tokens ? 1 : 16;
    if (o->kind == SWARM_OUTPUT_SPAN && spec)
        return call->n_ctx > 51 ? 49 : 1;
    if (o->kind == SWARM_OUTPUT_CHOICE) {
        const roj_vocab *vocab = roj_model_vocab(call->model->model);
        int32_t longest = 1;
        for (size_t i = 0; i < o->n_labels; i++) {
            roj_token *ids = NULL;
            size_t n = 0;
            if (roj_tokenize(vocab, o->labels[i], strlen(o->labels[i]), 0,
                             &ids, &n) == ROJ_OK && (int32_t)n > longest)
                longest = (int32_t)n;
            free(ids);
        }
        roj_error_clear();
        return longest;
    }
    return o->kind == SWARM_OUTPUT_TEXT ? 1 : 2;
}

static roj_status call_setup(exec_engine *e, size_t skill, exec_call *call)
{
    memset(call, 0, sizeof *call);
    call->engine = e;
    call->skill = &e->swarm->skills[skill];
    call->slot = &e->slots[e->skill_slot[skill]];
    roj_status st = slot_open(e, call->slot);
    if (st)
        return st;
    call->model = &e->models[call->slot->model];
    call->info = call->skill->prompt_from_model && call->slot->has_lora_info
                     ? &call->slot->lora_info
                     : &call->model->info;
    call->n_ctx = roj_context_n_ctx(call->slot->ctx);
    call->reserve = output_reserve(call);
    return ROJ_OK;
}

roj_status exec_item_fail(const exec_call *call, exec_item *item,
                          roj_status st, const char *message)
{
    const char *text = message ? message : roj_last_error();
    const char *skill = call && call->skill ? call->skill->name : "?";
    const int len = snprintf(NULL, 0, "skill \"%s\": %s", skill, text);
    exec_result *r = item->result;
    free(r->error);
    free(r->json);
    r->json = NULL;
    r->error = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (r->error)
        snprintf(r->error, (size_t)len + 1, "skill \"%s\": %s", skill, text);
    item->done = true;
    switch (st) {
    case ROJ_ERR_NOMEM:
    case ROJ_ERR_IO:
        r->permanent = false;
        return st;
    case ROJ_ERR_INVALID_ARG:
    case ROJ_ERR_FORMAT:
    case ROJ_ERR_UNSUPPORTED:
    case ROJ_ERR_RANGE:
    case ROJ_ERR_NOT_FOUND:
    case ROJ_ERR_CONTEXT_FULL:
        r->permanent = true;
        break;
    default:
        r->permanent = false;
        break;
    }
    return r->error ? ROJ_OK : ROJ_ERR_NOMEM;
}

void exec_item_succeed(exec_item *item, char *json)
{
    item->result->json = json;
    item->result->error = NULL;
    item->result->permanent = false;
    item->done = true;
}

/* Runs the items of one skill through its kind's runner. */
static roj_status run_items(const exec_call *call, exec_item *items,
                            size_t n)
{
    const swarm_output_kind kind = call->skill->output.kind;
    const bool spec = exec_uses_specialist(call);

    /* Only spec_extract keeps sequence 0 between tasks; everything else
     * overwrites it. */
    if (!(kind == SWARM_OUTPUT_SPAN && spec))
        call->slot->cache.n = 0;
    if (kind == SWARM_OUTPUT_CHOICE && spec)
        return exec_run_classify(call, items, n);

    for (size_t i = 0; i < n; i++) {
        if (items[i].done)
            continue;
        roj_status st;
        switch (kind) {
        case SWARM_OUTPUT_CHOICE:
            st = exec_run_choice(call, &items[i]);
            break;
        case SWARM_OUTPUT_SPAN:
            st = exec_run_span(call, &items[i]);
            break;
        case SWARM_OUTPUT_JSON:
            st = exec_run_json(call, &items[i]);
            break;
        default:
            st = exec_run_text(call, &items[i]);
            break;
        }
        if (st)
            return st;
    }
    return ROJ_OK;
}

/* Runs n tasks of one skill. */
static roj_status run_skill(exec_engine *e, const exec_task *tasks,
                            size_t n, exec_result *results)
{
    const size_t skill = tasks[0].skill;
    if (skill >= e->swarm->n_skills) {
        for (size_t i = 0; i < n; i++) {
            exec_item item = {.task = &tasks[i], .result = &results[i]};
            char msg[160];
            snprintf(msg, sizeof msg, "skill index %zu is out of range: the "
                     "swarm file has %zu skills", skill, e->swarm->n_skills);
            if (exec_item_fail(NULL, &item, ROJ_ERR_INVALID_ARG, msg))
                return ROJ_ERR_NOMEM;
        }
        return ROJ_OK;
    }
    exec_call call;
    roj_status st = call_setup(e, skill, &call);
    if (st)
        return st;
    exec_item *items = calloc(n, sizeof *items);
    if (!items)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && !st; i++)
        st = exec_item_prepare(&call, &tasks[i], &results[i], &items[i]);
    if (!st)
        st = run_items(&call, items, n);
    for (size_t i = 0; i < n; i++)
        exec_item_free(&items[i]);
    free(items);
    return st;
}

roj_status exec_run(exec_engine *engine, const exec_task *tasks, size_t n,
                    exec_result *results)
{
    for (size_t i = 0; i < n; i++)
        results[i] = (exec_result){0};
    roj_status st = ROJ_OK;
    size_t i = 0;
    while (i < n && !st) {
        /* Consecutive tasks of one skill share the batch. */
        size_t j = i + 1;
        while (j < n && tasks[j].skill == tasks[i].skill)
            j++;
        st = run_skill(engine, tasks + i, j - i, results + i);
        i = j;
    }
    if (!st)
        return ROJ_OK;

    /* The engine cannot go on: every task without an outcome gets the
     * reason, so the caller can retry them elsewhere. */
    const char *why = roj_last_error();
    for (size_t k = 0; k < n; k++) {
        if (results[k].json || results[k].error)
            continue;
        results[k].error = strdup(why);
        results[k].permanent = false;
    }
    log_error("exec: %s", why);
    return st;
}

void exec_result_clear(exec_result *r)
{
    if (!r)
        return;
    free(r->json);
    free(r->error);
    *r = (exec_result){0};
}

void exec_close(exec_engine *engine)
{
    if (!engine)
        return;
    for (size_t i = 0; engine->slots && i < engine->n_slots; i++) {
        exec_slot *slot = &engine->slots[i];
        roj_context_free(slot->ctx);
        roj_lora_free(slot->lora);
        if (slot->has_lora_info)
            spec_info_free(&slot->lora_info);
        spec_cache_free(&slot->cache);
    }
    for (size_t i = 0; engine->models && i < engine->swarm->n_models; i++) {
        exec_model *m = &engine->models[i];
        roj_pieces_free(m->pieces);
        if (m->model)
            spec_info_free(&m->info);
        roj_model_free(m->model);
    }
    free(engine->models);
    free(engine->slots);
    free(engine->skill_slot);
    free(engine);
}
