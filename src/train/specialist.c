/* Reads a specialist's roj.* metadata and runs inputs through it (see
 * specialist.h). */
#include "train/specialist.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "model/model_internal.h"
#include "roj/tokenizer.h"
#include "train/trainer.h"

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static roj_status get_str(const gguf_file *f, const char *key, char **out)
{
    const char *p;
    size_t n;
    *out = NULL;
    roj_status st = gguf_get_str(f, key, &p, &n);
    if (st == ROJ_ERR_NOT_FOUND)
        return ROJ_OK;
    if (st)
        return st;
    if (!(*out = dup_n(p, n)))
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    return ROJ_OK;
}

static roj_status get_labels(const gguf_file *f, const char *key,
                             spec_info *out)
{
    const int64_t k = gguf_find_key(f, key);
    if (k < 0)
        return ROJ_OK;
    const uint64_t n = gguf_kv_array_len(f, k);
    out->labels = calloc(n + 1, sizeof *out->labels);
    if (!out->labels)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    for (uint64_t i = 0; i < n; i++) {
        const char *p;
        uint64_t len;
        roj_status st = gguf_get_arr_str(f, key, i, &p, &len);
        if (st)
            return st;
        if (!(out->labels[i] = dup_n(p, len)))
            return roj_error(ROJ_ERR_NOMEM, "out of memory");
        out->n_labels = i + 1;
    }
    return ROJ_OK;
}

roj_status spec_info_read(const roj_model *model, int task_hint,
                          spec_info *out)
{
    memset(out, 0, sizeof *out);
    const gguf_file *f = model->file;
    char *task = NULL;
    roj_status st = get_str(f, "roj.task", &task);
    if (st)
        return st;
    out->has_meta = task != NULL;
    if (task && !strcmp(task, "classify"))
        out->task = TRAIN_CLASSIFY;
    else if (task && !strcmp(task, "extract"))
        out->task = TRAIN_EXTRACT;
    else if (task && !strcmp(task, "generate"))
        out->task = TRAIN_GENERATE;
    else if (task)
        st = roj_error(ROJ_ERR_FORMAT, "%s: roj.task is \"%s\"; expected "
                       "classify, extract or generate", gguf_path(f), task);
    else
        out->task = task_hint >= 0 ? (train_task)task_hint : TRAIN_CLASSIFY;
    free(task);
    if (!st)
        st = get_str(f, "roj.prompt_template", &out->template_text);
    if (!st && !out->template_text &&
        !(out->template_text = strdup(train_default_template(out->task))))
        st = roj_error(ROJ_ERR_NOMEM, "out of memory");
    if (!st)
        st = get_labels(f, out->task == TRAIN_EXTRACT ? "roj.slots"
                                                      : "roj.labels", out);
    if (!st)
        st = get_str(f, "roj.none_word", &out->none_word);
    if (!st && !out->none_word && !(out->none_word = strdup("none")))
        st = roj_error(ROJ_ERR_NOMEM, "out of memory");
    if (!st)
        st = get_str(f, "roj.context_field", &out->context_field);
    if (!st && gguf_find_key(f, "roj.label_tokens") >= 0) {
        uint64_t n = 0;
        st = gguf_get_arr_i32(f, "roj.label_tokens", &out->label_tokens, &n);
        if (!st && n != out->n_labels)
            st = roj_error(ROJ_ERR_FORMAT, "%s: roj.label_tokens has %llu "
                           "entries for %zu labels", gguf_path(f),
                           (unsigned long long)n, out->n_labels);
        for (uint64_t i = 0; !st && i < n; i++)
            if (out->label_tokens[i] < 0 ||
                out->label_tokens[i] >= model->hp.n_vocab)
                st = roj_error(ROJ_ERR_FORMAT, "%s: roj.label_tokens[%llu] "
                               "= %d is not a token id", gguf_path(f),
                               (unsigned long long)i,
                               (int)out->label_tokens[i]);
    }
    if (st)
        spec_info_free(out);
    return st;
}

static roj_status json_str(const cJSON *o, const char *key, char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = NULL;
    if (!cJSON_IsString(v))
        return ROJ_OK;
    if (!(*out = strdup(v->valuestring)))
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    return ROJ_OK;
}

roj_status spec_info_read_adapter(const char *path, spec_info *out)
{
    memset(out, 0, sizeof *out);
    gguf_file *f;
    roj_status st = gguf_open(path, &f);
    if (st)
        return st;
    const char *js = NULL;
    size_t len = 0;
    cJSON *o = NULL;
    st = gguf_get_str(f, "roj.adapter.extra_json", &js, &len);
    if (st == ROJ_ERR_NOT_FOUND)
        st = roj_error(ROJ_ERR_NOT_FOUND, "%s: the adapter carries no roj "
                       "metadata (roj.adapter.extra_json); it was not made "
                       "by roj train", path);
    if (!st && !(o = cJSON_ParseWithLength(js, len)))
        st = roj_error(ROJ_ERR_FORMAT, "%s: roj.adapter.extra_json is not "
                       "valid JSON", path);
    char *task = NULL;
    if (!st)
        st = json_str(o, "roj.task", &task);
    if (!st) {
        out->has_meta = task != NULL;
        out->task = task && !strcmp(task, "extract")    ? TRAIN_EXTRACT
                    : task && !strcmp(task, "generate") ? TRAIN_GENERATE
                                                        : TRAIN_CLASSIFY;
    }
    free(task);
    if (!st)
        st = json_str(o, "roj.prompt_template", &out->template_text);
    if (!st && !out->template_text &&
        !(out->template_text = strdup(train_default_template(out->task))))
        st = roj_error(ROJ_ERR_NOMEM, "out of memory");
    if (!st)
        st = json_str(o, "roj.none_word", &out->none_word);
    if (!st && !out->none_word && !(out->none_word = strdup("none")))
        st = roj_error(ROJ_ERR_NOMEM, "out of memory");
    if (!st)
        st = json_str(o, "roj.context_field", &out->context_field);
    const cJSON *arr = o ? cJSON_GetObjectItemCaseSensitive(
                               o, out->task == TRAIN_EXTRACT ? "roj.slots"
                                                             : "roj.labels")
                         : NULL;
    if (!st && cJSON_IsArray(arr)) {
        const int n = cJSON_GetArraySize(arr);
        out->labels = calloc((size_t)n + 1, sizeof *out->labels);
        if (!out->labels)
            st = roj_error(ROJ_ERR_NOMEM, "out of memory");
        for (int i = 0; !st && i < n; i++) {
            const cJSON *e = cJSON_GetArrayItem(arr, i);
            if (!cJSON_IsString(e) ||
                !(out->labels[i] = strdup(e->valuestring)))
                st = roj_error(ROJ_ERR_FORMAT, "%s: label %d of the adapter "
                               "metadata is not a string", path, i);
            else
                out->n_labels = (size_t)i + 1;
        }
    }
    cJSON_Delete(o);
    gguf_close(f);
    if (st)
        spec_info_free(out);
    return st;
}

void spec_info_free(spec_info *info)
{
    for (size_t i = 0; info->labels && i < info->n_labels; i++)
        free(info->labels[i]);
    free(info->labels);
    free(info->label_tokens);
    free(info->template_text);
    free(info->none_word);
    free(info->context_field);
    memset(info, 0, sizeof *info);
}

roj_status spec_prompt(const roj_model *model, const spec_info *info,
                       const char *text, size_t len, const char *slot,
                       const char *context, roj_token **ids, size_t *n)
{
    char *p = train_fill_template_ctx(info->template_text, text, len, slot,
                                      context ? context : "",
                                      context ? strlen(context) : 0);
    if (!p)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    roj_status st = roj_tokenize(model->vocab, p, strlen(p),
                                 ROJ_TOKENIZE_ADD_SPECIAL, ids, n);
    free(p);
    return st;
}

/* Cuts a prompt that does not leave `reserve` positions free in the
 * context, keeping its first token (BOS) and its end, where the question
 * is, as training does. Warns once per process. */
static void fit_prompt(const roj_context *ctx, roj_token *ids, size_t *n,
                       size_t reserve)
{
    static int warned;
    const size_t cap = (size_t)roj_context_n_ctx(ctx);
    if (*n + reserve <= cap || cap <= reserve + 2)
        return;
    const size_t keep = cap - reserve;
    memmove(ids + 1, ids + (*n - keep + 1), (keep - 1) * sizeof *ids);
    *n = keep;
    if (!warned++)
        roj_log(ROJ_LOG_WARN, "a prompt longer than the context of %zu "
                "tokens was cut at the front (others may follow); a larger "
                "context (-c) keeps them whole", cap);
}

/* Softmax over the label tokens' logits. */
static int32_t pick_label(const spec_info *info, const float *z, float *probs)
{
    int32_t best = 0;
    float mx = -INFINITY;
    for (size_t k = 0; k < info->n_labels; k++) {
        const float v = z[info->label_tokens[k]];
        if (v > mx) {
            mx = v;
            best = (int32_t)k;
        }
    }
    if (probs) {
        double sum = 0.0;
        for (size_t k = 0; k < info->n_labels; k++)
            sum += exp((double)z[info->label_tokens[k]] - mx);
        for (size_t k = 0; k < info->n_labels; k++)
            probs[k] = (float)(exp((double)z[info->label_tokens[k]] - mx) /
                               sum);
    }
    return best;
}

/* Without label tokens: roj_choose on each text in turn. */
static roj_status classify_by_choice(roj_context *ctx, const spec_info *info,
                                     const char *const *texts,
                                     const size_t *lens,
                                     const char *const *contexts, size_t n,
                                     int32_t *best, float *probs)
{
    const roj_model *model = roj_context_model(ctx);
    double *pr = malloc(info->n_labels * sizeof *pr);
    if (!pr)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    roj_status st = ROJ_OK;
    for (size_t i = 0; i < n && !st; i++) {
        roj_token *ids = NULL;
        size_t nt = 0;
        if ((st = spec_prompt(model, info, texts[i], lens[i], NULL,
                              contexts ? contexts[i] : NULL, &ids, &nt)))
            break;
        fit_prompt(ctx, ids, &nt, 16);
        roj_seq_truncate(ctx, 0, 0);
        roj_batch b = {.n_tokens = (int32_t)nt, .tokens = ids};
        st = roj_decode(ctx, &b);
        free(ids);
        if (st)
            break;
        roj_choice_params cp = {.score_eog = true, .normalize = true};
        roj_choice_result r = {.probs = pr};
        st = roj_choose(ctx, 0, roj_get_logits(ctx, -1),
                        (const char *const *)info->labels, info->n_labels,
                        &cp, &r);
        if (st)
            break;
        best[i] = (int32_t)r.best;
        for (size_t k = 0; probs && k < info->n_labels; k++)
            probs[i * info->n_labels + k] = (float)pr[k];
    }
    free(pr);
    return st;
}

roj_status spec_classify(roj_context *ctx, const spec_info *info,
                         const char *const *texts, const size_t *lens,
                         const char *const *contexts, size_t n,
                         int32_t *best, float *probs)
{
    if (info->n_labels == 0)
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "the model names no labels (roj.labels)");
    if (!info->label_tokens)
        return classify_by_choice(ctx, info, texts, lens, contexts, n, best,
                                  probs);
    const roj_model *model = roj_context_model(ctx);
    const int32_t cap = roj_context_n_batch(ctx);
    roj_token *tok = malloc((size_t)cap * sizeof *tok);
    int32_t *seq = malloc((size_t)cap * sizeof *seq);
    bool *want = malloc((size_t)cap * sizeof *want);
    int32_t *row = malloc((n + 1) * sizeof *row);
    roj_status st = ROJ_OK;
    if (!tok || !seq || !want || !row)
        st = roj_error(ROJ_ERR_NOMEM, "out of memory");
    size_t i = 0;
    while (!st && i < n) {
        /* Pack as many whole prompts as fit in one decode call. */
        int32_t nb = 0;
        size_t first = i;
        while (!st && i < n) {
            roj_token *ids = NULL;
            size_t nt = 0;
            if ((st = spec_prompt(model, info, texts[i], lens[i], NULL,
                                  contexts ? contexts[i] : NULL, &ids, &nt)))
                break;
            fit_prompt(ctx, ids, &nt, 1);
            if (nb + (int64_t)nt > cap) {
                free(ids);
                if (nb == 0)
                    st = roj_error(ROJ_ERR_CONTEXT_FULL, "a prompt of %zu "
                                   "tokens exceeds the batch of %d", nt,
                                   (int)cap);
                break;
            }
            const int32_t s = (int32_t)(i - first);
            roj_seq_truncate(ctx, s, 0);
            for (size_t k = 0; k < nt; k++) {
                tok[nb] = ids[k];
                seq[nb] = s;
                want[nb++] = k + 1 == nt;
            }
            row[i] = nb - 1;
            free(ids);
            i++;
        }
        if (st || i == first)
            break;
        roj_batch b = {.n_tokens = nb, .tokens = tok, .seq = seq,
                       .logits = want};
        if ((st = roj_decode(ctx, &b)))
            break;
        for (size_t k = first; k < i; k++)
            best[k] = pick_label(info, roj_get_logits(ctx, row[k]),
                                 probs ? probs + k * info->n_labels : NULL);
    }
    free(tok);
    free(seq);
    free(want);
    free(row);
    return st;
}

void spec_cache_free(spec_cache *c)
{
    free(c->ids);
    memset(c, 0, sizeof *c);
}

roj_status spec_extract(roj_context *ctx, const spec_info *info,
                        const roj_pieces *pieces, const char *text,
                        size_t len, const char *slot, const char *context,
                        spec_cache *cache, roj_span_result *result)
{
    const roj_model *model = roj_context_model(ctx);
    roj_token *ids = NULL;
    size_t nt = 0;
    roj_status st = spec_prompt(model, info, text, len, slot, context, &ids,
                                &nt);
    if (st)
        return st;
    fit_prompt(ctx, ids, &nt, 49);
    /* Keep the cached tokens this prompt starts with (never all of them:
     * the last prompt token must be decoded for its logits). */
    size_t keep = 0;
    if (cache && (size_t)roj_seq_len(ctx, 0) == cache->n)
        while (keep < cache->n && keep + 1 < nt &&
               cache->ids[keep] == ids[keep])
            keep++;
    roj_seq_truncate(ctx, 0, (int32_t)keep);
    roj_batch b = {.n_tokens = (int32_t)(nt - keep), .tokens = ids + keep};
    st = roj_decode(ctx, &b);
    if (!st && cache) {
        if (nt > cache->cap) {
            roj_token *grown = realloc(cache->ids, nt * sizeof *grown);
            if (!grown) {
                free(ids);
                return roj_error(ROJ_ERR_NOMEM, "out of memory");
            }
            cache->ids = grown;
            cache->cap = nt;
        }
        memcpy(cache->ids, ids, nt * sizeof *ids);
        cache->n = nt;
    } else if (cache) {
        cache->n = 0;
    }
    free(ids);
    if (st)
        return st;
    roj_span_params sp = {.none_word = info->none_word, .max_tokens = 48};
    return roj_extract_span(ctx, 0, roj_get_logits(ctx, -1), pieces, text,
                            len, &sp, result);
}
