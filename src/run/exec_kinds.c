/* The runners of the skill executor, one per output kind (choice, span,
 * json, text), and the result JSON they produce (exec_internal.h). Every
 * runner but exec_run_classify takes one item and uses sequence 0 of the
 * slot's context. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "run/exec_internal.h"
#include "sample/sample_util.h"

/* ---- seeds and label picks ---- */

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

uint64_t exec_mix_seed(uint64_t a, uint64_t b)
{
    return splitmix64(a ^ splitmix64(b));
}

/* Weight of a label whose probability is ratio times the largest one,
 * at 1 / temperature = inv. */
static double label_weight(double ratio, double inv)
{
    if (!(ratio > 0))
        return 0.0;
    return inv == 1.0 ? ratio : pow(ratio, inv);
}

size_t exec_pick_label(const float *probs, size_t n, float temperature,
                       uint64_t seed)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (probs[i] > probs[best])
            best = i;
    if (!(temperature > 0) || n < 2 || !(probs[best] > 0))
        return best;

    /* Weights relative to the largest probability, so that a low
     * temperature does not underflow them all. */
    const double inv = 1.0 / temperature, top = probs[best];
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += label_weight(probs[i] / top, inv);
    sample_rng rng;
    sample_rng_seed(&rng, seed);
    const double u = sample_rng_uniform(&rng) * sum;
    double acc = 0.0;
    size_t last = best;
    for (size_t i = 0; i < n; i++) {
        const double w = label_weight(probs[i] / top, inv);
        if (w <= 0.0)
            continue;
        acc += w;
        last = i;
        if (u < acc)
            return i;
    }
    return last; /* rounding left u at the end of the sum */
}

/* ---- result JSON ---- */

/* Adds v as a %.9g number to an object (key) or an array (key NULL). */
static bool add_float(cJSON *to, const char *key, float v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.9g", isfinite(v) ? (double)v : 0.0);
    cJSON *item = cJSON_CreateRaw(buf);
    const bool ok = item && (key ? cJSON_AddItemToObject(to, key, item)
                                 : cJSON_AddItemToArray(to, item));
    if (!ok)
        cJSON_Delete(item);
    return ok;
}

/* Prints o unformatted and frees it. Returns NULL when ok is false or
 * memory runs out. */
static char *print_result(cJSON *o, bool ok)
{
    char *json = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return json;
}

char *exec_choice_json(const swarm_output *out, size_t best,
                       const float *probs)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_CreateArray();
    bool ok = o && arr && cJSON_AddStringToObject(o, "label",
                                                  out->labels[best]) &&
              add_float(o, "confidence", probs[best]);
    for (size_t i = 0; ok && i < out->n_labels; i++)
        ok = add_float(arr, NULL, probs[i]);
    if (ok && cJSON_AddItemToObject(o, "probs", arr))
        arr = NULL;
    else
        ok = false;
    cJSON_Delete(arr);
    return print_result(o, ok);
}

/* {"text": text} plus, for spans, {"found": found}. */
static char *text_json(const char *text, bool span, bool found)
{
    /* A model can emit byte tokens that do not form UTF-8 (an untrained
     * one often does); the output file must stay valid JSON. */
    char *fixed = NULL;
    if (exec_utf8_repair(text, &fixed) != ROJ_OK)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "text", fixed ? fixed : text);
    free(fixed);
    if (ok && span)
        ok = cJSON_AddBoolToObject(o, "found", found) != NULL;
    return print_result(o, ok);
}

/* Stores json as item's result; NULL means out of memory. */
static roj_status item_finish(exec_item *item, char *json)
{
    if (!json)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    exec_item_succeed(item, json);
    return ROJ_OK;
}

/* ---- shared steps ---- */

/* Evaluates item's prompt on sequence 0, emptied first, so that
 * roj_get_logits(ctx, -1) gives the logits after its last token. */
static roj_status decode_prompt(const exec_call *call, const exec_item *item)
{
    roj_context *ctx = call->slot->ctx;
    roj_status st = roj_seq_truncate(ctx, 0, 0);
    if (!st)
        st = roj_decode_tokens(ctx, 0, item->ids, item->n_ids);
    return st;
}

/* Creates the sampler of the skill's sampling settings, seeded with the
 * item's seed; temperature 0 is greedy. */
static roj_status sampler_open(const exec_call *call, const exec_item *item,
                               roj_sampler **out)
{
    const swarm_sampling *s = &call->skill->sampling;
    roj_sampler_params p = roj_sampler_greedy_params();
    p.temperature = s->temperature;
    p.top_k = s->top_k;
    p.top_p = s->top_p;
    p.seed = item->seed;
    return roj_sampler_create(&p, roj_model_n_vocab(call->model->model), out);
}

/* ---- choice ---- */

/* Sets map[j] to the index in info->labels of the skill's label j.
 * Returns false naming the first label the specialist lacks. */
static bool label_map(const exec_call *call, size_t *map, char *msg,
                      size_t msg_size)
{
    const swarm_output *o = &call->skill->output;
    const spec_info *info = call->info;
    for (size_t j = 0; j < o->n_labels; j++) {
        size_t k = 0;
        while (k < info->n_labels && strcmp(info->labels[k], o->labels[j]))
            k++;
        if (k == info->n_labels) {
            snprintf(msg, msg_size, "label \"%.60s\" is not one of the %zu "
                     "labels of the model", o->labels[j], info->n_labels);
            return false;
        }
        map[j] = k;
    }
    return true;
}

/* Finishes item from the specialist's probabilities (info->labels
 * order): the skill's labels, renormalized when they are a subset or in
 * another order, a pick and the JSON. probs has room for the labels. */
static roj_status classify_finish(const exec_call *call, exec_item *item,
                                  const size_t *map, const float *info_probs,
                                  float *probs)
{
    const swarm_output *o = &call->skill->output;
    bool same = o->n_labels == call->info->n_labels;
    double sum = 0.0;
    for (size_t j = 0; j < o->n_labels; j++) {
        same = same && map[j] == j;
        sum += info_probs[map[j]];
    }
    for (size_t j = 0; j < o->n_labels; j++) {
        if (same)
            probs[j] = info_probs[j];
        else if (sum > 0.0)
            probs[j] = (float)(info_probs[map[j]] / sum);
        else
            probs[j] = 1.0f / (float)o->n_labels;
    }
    const size_t best = exec_pick_label(probs, o->n_labels,
                                        call->skill->sampling.temperature,
                                        item->seed);
    return item_finish(item, exec_choice_json(o, best, probs));
}

/* Buffers of one spec_classify call of up to EXEC_N_SEQ items. */
typedef struct classify_batch {
    const char *texts[EXEC_N_SEQ];
    size_t lens[EXEC_N_SEQ];
    const char *contexts[EXEC_N_SEQ];
    int32_t best[EXEC_N_SEQ];
    float *info_probs;  /* (EXEC_N_SEQ, info->n_labels) */
    float *probs;       /* (n_labels of the skill) */
    const size_t *map;
} classify_batch;

/* Classifies k <= EXEC_N_SEQ items in one call. When the call fails for
 * a reason other than memory or I/O, each item runs again on its own so
 * that the error goes to the task that caused it. */
static roj_status classify_chunk(const exec_call *call, exec_item **chunk,
                                 size_t k, classify_batch *b)
{
    for (size_t i = 0; i < k; i++) {
        b->texts[i] = chunk[i]->text;
        b->lens[i] = chunk[i]->text_len;
        b->contexts[i] = chunk[i]->context;
    }
    roj_status st = spec_classify(call->slot->ctx, call->info, b->texts,
                                  b->lens, b->contexts, k, b->best,
                                  b->info_probs);
    if (st == ROJ_ERR_NOMEM || st == ROJ_ERR_IO)
        return st;
    if (st && k > 1) {
        for (size_t i = 0; i < k; i++)
            if ((st = classify_chunk(call, chunk + i, 1, b)))
                return st;
        return ROJ_OK;
    }
    if (st)
        return exec_item_fail(call, chunk[0], st, NULL);
    const size_t n_info = call->info->n_labels;
    for (size_t i = 0; i < k && !st; i++)
        st = classify_finish(call, chunk[i], b->map,
                             b->info_probs + i * n_info, b->probs);
    return st;
}

roj_status exec_run_classify(const exec_call *call, exec_item *items,
                             size_t n)
{
    const swarm_output *o = &call->skill->output;
    const size_t n_info = call->info->n_labels;
    classify_batch b = {0};
    size_t *map = calloc(o->n_labels + 1, sizeof *map);
    b.info_probs = calloc(EXEC_N_SEQ * n_info + 1, sizeof *b.info_probs);
    b.probs = calloc(o->n_labels + 1, sizeof *b.probs);
    roj_status st = ROJ_OK;
    if (!map || !b.info_probs || !b.probs) {
        st = roj_error(ROJ_ERR_NOMEM, "out of memory");
        goto done;
    }
    b.map = map;

    /* A label the model lacks fails every task; swarm_load rejects such
     * a skill, so this guards files checked by an older loader. */
    char msg[200];
    if (!label_map(call, map, msg, sizeof msg)) {
        for (size_t i = 0; i < n && !st; i++)
            if (!items[i].done)
                st = exec_item_fail(call, &items[i], ROJ_ERR_FORMAT, msg);
        goto done;
    }

    /* Chunks of up to EXEC_N_SEQ pending items, one sequence each. */
    exec_item *chunk[EXEC_N_SEQ];
    size_t k = 0;
    for (size_t i = 0; i < n && !st; i++) {
        if (!items[i].done)
            chunk[k++] = &items[i];
        if (k == EXEC_N_SEQ || (k > 0 && i + 1 == n)) {
            st = classify_chunk(call, chunk, k, &b);
            k = 0;
        }
    }

done:
    free(map);
    free(b.info_probs);
    free(b.probs);
    return st;
}

roj_status exec_run_choice(const exec_call *call, exec_item *item)
{
    const swarm_output *o = &call->skill->output;
    double *dprobs = calloc(o->n_labels, sizeof *dprobs);
    float *probs = calloc(o->n_labels, sizeof *probs);
    if (!dprobs || !probs) {
        free(dprobs);
        free(probs);
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    }

    /* Each label's whole token sequence, ranked by its mean
     * log-probability per token so that long labels are not at a
     * disadvantage. */
    roj_status st = decode_prompt(call, item);
    roj_choice_params cp = {.normalize = true};
    roj_choice_result r = {.probs = dprobs};
    if (!st)
        st = roj_choose(call->slot->ctx, 0, roj_get_logits(call->slot->ctx,
                                                           -1),
                        o->labels, o->n_labels, &cp, &r);
    if (!st) {
        for (size_t j = 0; j < o->n_labels; j++)
            probs[j] = (float)dprobs[j];
        const size_t best =
            exec_pick_label(probs, o->n_labels,
                            call->skill->sampling.temperature, item->seed);
        st = item_finish(item, exec_choice_json(o, best, probs));
    } else {
        st = exec_item_fail(call, item, st, NULL);
    }
    free(dprobs);
    free(probs);
    return st;
}

/* ---- span ---- */

roj_status exec_run_span(const exec_call *call, exec_item *item)
{
    const swarm_output *o = &call->skill->output;
    const char *none_word = o->none_word ? o->none_word
                                         : call->info->none_word;
    roj_context *ctx = call->slot->ctx;
    roj_span_result r = {0};
    roj_sampler *sampler = NULL;
    roj_status st;

    /* A roj extractor runs as it was trained and keeps the start of its
     * prompt cached between tasks. Any other model gets roj's span
     * constraint over the text field. */
    if (exec_uses_specialist(call)) {
        st = spec_extract(ctx, call->info, call->model->pieces, item->text,
                          item->text_len, exec_span_slot(call),
                          item->context, &call->slot->cache, &r);
    } else {
        st = sampler_open(call, item, &sampler);
        if (!st)
            st = decode_prompt(call, item);
        /* At most 64 tokens (roj_extract_span's default), and no more
         * than the context has room for. */
        const int32_t room = call->n_ctx - (int32_t)item->n_ids;
        roj_span_params sp = {.none_word = none_word,
                              .max_tokens = room < 64 ? room : 64,
                              .sampler = sampler};
        if (!st)
            st = roj_extract_span(ctx, 0, roj_get_logits(ctx, -1),
                                  call->model->pieces, item->text,
                                  item->text_len, &sp, &r);
    }
    roj_sampler_free(sampler);
    if (st) {
        free(r.text);
        return exec_item_fail(call, item, st, NULL);
    }

    /* A span cut by the token limit may end inside a character. */
    char *fixed = NULL;
    const bool found = !r.is_none && r.text;
    if (found && (st = exec_utf8_repair(r.text, &fixed))) {
        free(r.text);
        return st;
    }
    const char *text = none_word;
    if (found)
        text = fixed ? fixed : r.text;
    char *json = text_json(text, true, found);
    free(fixed);
    free(r.text);
    return item_finish(item, json);
}

/* ---- json ---- */

static roj_json_type json_type(swarm_field_type type)
{
    switch (type) {
    case SWARM_FIELD_INTEGER:
        return ROJ_JSON_INTEGER;
    case SWARM_FIELD_NUMBER:
        return ROJ_JSON_NUMBER;
    case SWARM_FIELD_BOOLEAN:
        return ROJ_JSON_BOOLEAN;
    default:
        return ROJ_JSON_STRING;
    }
}

/* Builds {"text": object, FIELD: value, ...} from the generated object
 * (len bytes). */
static roj_status json_result(const swarm_output *o, const char *object,
                              size_t len, char **out)
{
    *out = NULL;
    cJSON *parsed = cJSON_ParseWithLength(object, len);
    if (!parsed)
        return roj_error(ROJ_ERR_INTERNAL, "the generated object does not "
                         "parse as JSON: %.80s", object);
    cJSON *r = cJSON_CreateObject();
    bool ok = r && cJSON_AddStringToObject(r, "text", object);
    roj_status st = ROJ_OK;
    for (size_t i = 0; ok && i < o->n_fields; i++) {
        const char *name = o->fields[i].name;
        /* NOTE: a schema field named "text" is only in the object, since
         * the result's "text" is the object itself. */
        if (strcmp(name, "text") == 0)
            continue;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(parsed, name);
        if (!v) {
            st = roj_error(ROJ_ERR_INTERNAL, "the generated object lacks "
                           "the field \"%.60s\"", name);
            break;
        }
        cJSON *copy = cJSON_Duplicate(v, true);
        ok = copy && cJSON_AddItemToObject(r, name, copy);
        if (!ok)
            cJSON_Delete(copy);
    }
    cJSON_Delete(parsed);
    if (st) {
        cJSON_Delete(r);
        return st;
    }
    *out = print_result(r, ok);
    return *out ? ROJ_OK : roj_error(ROJ_ERR_NOMEM, "out of memory");
}

roj_status exec_run_json(const exec_call *call, exec_item *item)
{
    const swarm_output *o = &call->skill->output;
    roj_json_field *fields = calloc(o->n_fields + 1, sizeof *fields);
    if (!fields)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < o->n_fields; i++) {
        fields[i].key = o->fields[i].name;
        fields[i].type = json_type(o->fields[i].type);
    }

    /* NOTE: output.max_tokens is not applied, because roj_generate_json
     * bounds each value by its field's max_length instead (64 characters,
     * 12 digits). */
    roj_sampler *sampler = NULL;
    char *object = NULL, *json = NULL;
    size_t len = 0;
    roj_status st = sampler_open(call, item, &sampler);
    if (!st)
        st = decode_prompt(call, item);
    if (!st)
        st = roj_generate_json(call->slot->ctx, 0,
                               roj_get_logits(call->slot->ctx, -1),
                               call->model->pieces, fields, o->n_fields,
                               sampler, &object, &len);
    if (!st)
        st = json_result(o, object, len, &json);
    roj_sampler_free(sampler);
    free(object);
    free(fields);
    if (st == ROJ_ERR_NOMEM)
        return st;
    if (st)
        return exec_item_fail(call, item, st, NULL);
    exec_item_succeed(item, json);
    return ROJ_OK;
}

/* ---- text ---- */

roj_status exec_run_text(const exec_call *call, exec_item *item)
{
    const swarm_output *o = &call->skill->output;
    roj_streamer_params sp = {
        .stop = o->stop,
        .n_stop = o->n_stop,
        .max_tokens = (int32_t)o->max_tokens,
    };
    roj_sampler *sampler = NULL;
    roj_streamer *streamer = NULL;
    char *json = NULL;
    roj_status st = sampler_open(call, item, &sampler);
    if (!st)
        st = roj_streamer_create(roj_model_vocab(call->model->model), &sp,
                                 &streamer);
    if (!st)
        st = roj_seq_truncate(call->slot->ctx, 0, 0);
    if (!st)
        st = roj_generate(call->slot->ctx, 0, item->ids, item->n_ids,
                          sampler, streamer, NULL);
    if (!st && !(json = text_json(roj_streamer_text(streamer, NULL), false,
                                  false)))
        st = roj_error(ROJ_ERR_NOMEM, "out of memory");
    roj_sampler_free(sampler);
    roj_streamer_free(streamer);
    if (st == ROJ_ERR_NOMEM)
        return st;
    if (st)
        return exec_item_fail(call, item, st, NULL);
    exec_item_succeed(item, json);
    return ROJ_OK;
}
