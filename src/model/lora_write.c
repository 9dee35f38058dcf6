/* Writing LoRA adapter GGUF files in llama.cpp's layout (see lora.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "model/lora.h"

/* Checks one tensor against the base and the tensors before it. */
static roj_status check_tensor(const roj_model *base, const lora_tensor *t,
                               size_t index, const lora_tensor *all)
{
    int32_t slot;

    if (!t->name || !t->a || !t->b)
        return roj_error(ROJ_ERR_INVALID_ARG, "LoRA tensor %zu: the name, "
                         "A or B is NULL", index);
    const weight *w = lora_find_weight(base, t->name, &slot);
    if (!w)
        return roj_error(ROJ_ERR_INVALID_ARG, "LoRA tensor %s: the base "
                         "model %s has no such weight matrix that adapters "
                         "can change (attention q, k, v, output; ffn gate, "
                         "up, down; output; token_embd)", t->name,
                         roj_model_name(base));
    if (slot == lora_slot_embd(base) &&
        base->output.data == base->token_embd.data)
        /* llama.cpp looks adapters up by tensor name, so it also applies
         * this pair to the tied output head in the non-embedding layout,
         * where the shape assertion of ggml_mul_mat aborts. */
        return roj_error(ROJ_ERR_INVALID_ARG, "LoRA tensor %s: the base "
                         "model %s ties its output head to the token "
                         "embedding, and llama.cpp cannot run an adapter "
                         "on a tied token_embd.weight", t->name,
                         roj_model_name(base));
    if (t->n_in != w->n_in || t->n_out != w->n_out)
        return roj_error(ROJ_ERR_INVALID_ARG, "LoRA tensor %s: n_in %lld "
                         "and n_out %lld, but the base weight has n_in "
                         "%lld and n_out %lld", t->name,
                         (long long)t->n_in, (long long)t->n_out,
                         (long long)w->n_in, (long long)w->n_out);
    if (t->rank < 1 || t->rank > (1 << 20))
        return roj_error(ROJ_ERR_INVALID_ARG, "LoRA tensor %s: rank %lld "
                         "must be in 1 to %d", t->name, (long long)t->rank,
                         1 << 20);
    for (size_t j = 0; j < index; j++)
        if (!strcmp(all[j].name, t->name))
            return roj_error(ROJ_ERR_INVALID_ARG, "LoRA tensor %s is given "
                             "twice (entries %zu and %zu)", t->name, j,
                             index);
    for (int64_t i = 0; i < t->rank * t->n_in; i++)
        if (!isfinite(t->a[i]))
            return roj_error(ROJ_ERR_NUMERIC, "LoRA tensor %s: A element "
                             "%lld is %g", t->name, (long long)i,
                             (double)t->a[i]);
    for (int64_t i = 0; i < t->n_out * t->rank; i++)
        if (!isfinite(t->b[i]))
            return roj_error(ROJ_ERR_NUMERIC, "LoRA tensor %s: B element "
                             "%lld is %g", t->name, (long long)i,
                             (double)t->b[i]);
    return ROJ_OK;
}

static roj_status set_header(gguf_writer *w, const roj_model *base,
                             float alpha, const char *extra_json)
{
    roj_status st;
    char name[256];

    if (!isfinite(alpha))
        return roj_error(ROJ_ERR_INVALID_ARG, "LoRA alpha %g is not "
                         "finite", (double)alpha);
    if (extra_json) {
        cJSON *json = cJSON_Parse(extra_json);
        bool is_object = cJSON_IsObject(json);
        cJSON_Delete(json);
        if (!is_object)
            return roj_error(ROJ_ERR_INVALID_ARG, "the extra metadata of a "
                             "LoRA adapter must be a JSON object");
    }
    snprintf(name, sizeof name, "%s LoRA", roj_model_name(base));
    if ((st = gguf_writer_set_str(w, "general.architecture",
                                  roj_model_arch(base))) ||
        (st = gguf_writer_set_str(w, "general.type", "adapter")) ||
        (st = gguf_writer_set_str(w, "general.name", name)) ||
        (st = gguf_writer_set_str(w, "adapter.type", "lora")) ||
        (st = gguf_writer_set_f32(w, "adapter.lora.alpha", alpha)))
        return st;
    if (extra_json)
        return gguf_writer_set_str(w, LORA_KEY_EXTRA_JSON, extra_json);
    return ROJ_OK;
}

/* Adds the two tensors of t. For token_embd the file stores B as lora_a
 * and A transposed as lora_b. *scratch receives that transposed copy,
 * which must live until the file is written. */
static roj_status add_pair(gguf_writer *w, const roj_model *base,
                           const lora_tensor *t, float **scratch)
{
    char name_a[256], name_b[256];
    int32_t slot;
    roj_status st;

    lora_find_weight(base, t->name, &slot);
    snprintf(name_a, sizeof name_a, "%s.lora_a", t->name);
    snprintf(name_b, sizeof name_b, "%s.lora_b", t->name);
    *scratch = NULL;
    if (slot == lora_slot_embd(base)) {
        float *at = malloc((size_t)(t->rank * t->n_in) * sizeof *at);
        if (!at)
            return roj_error(ROJ_ERR_NOMEM, "out of memory for tensor %s",
                             t->name);
        for (int64_t r = 0; r < t->rank; r++)
            for (int64_t i = 0; i < t->n_in; i++)
                at[i * t->rank + r] = t->a[r * t->n_in + i];
        *scratch = at;
        const int64_t ne_a[2] = {t->rank, t->n_out};
        const int64_t ne_b[2] = {t->rank, t->n_in};
        if ((st = gguf_writer_add_tensor(
                 w, name_a, ROJ_TYPE_F32, 2, ne_a, t->b,
                 (uint64_t)(t->rank * t->n_out) * sizeof(float))))
            return st;
        return gguf_writer_add_tensor(
            w, name_b, ROJ_TYPE_F32, 2, ne_b, at,
            (uint64_t)(t->rank * t->n_in) * sizeof(float));
    }
    const int64_t ne_a[2] = {t->n_in, t->rank};
    const int64_t ne_b[2] = {t->rank, t->n_out};
    if ((st = gguf_writer_add_tensor(
             w, name_a, ROJ_TYPE_F32, 2, ne_a, t->a,
             (uint64_t)(t->rank * t->n_in) * sizeof(float))))
        return st;
    return gguf_writer_add_tensor(
        w, name_b, ROJ_TYPE_F32, 2, ne_b, t->b,
        (uint64_t)(t->n_out * t->rank) * sizeof(float));
}

roj_status lora_write(const char *path, const roj_model *base, float alpha,
                      const lora_tensor *t, size_t n,
                      const char *extra_json_or_NULL)
{
    gguf_writer *w = NULL;
    float **scratch = NULL;
    roj_status st;

    if (n == 0)
        return roj_error(ROJ_ERR_INVALID_ARG, "%s: a LoRA adapter needs at "
                         "least one tensor", path);
    for (size_t i = 0; i < n; i++)
        if ((st = check_tensor(base, &t[i], i, t)) != ROJ_OK)
            return roj_error_wrap(st, "%s", path);

    scratch = calloc(n, sizeof *scratch);
    if (!scratch)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    if ((st = gguf_writer_create(&w)) != ROJ_OK)
        goto cleanup;
    if ((st = set_header(w, base, alpha, extra_json_or_NULL)) != ROJ_OK) {
        roj_error_wrap(st, "%s", path);
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++)
        if ((st = add_pair(w, base, &t[i], &scratch[i])) != ROJ_OK)
            goto cleanup;
    st = gguf_writer_write(w, path);

cleanup:
    gguf_writer_free(w);
    for (size_t i = 0; i < n; i++)
        free(scratch[i]);
    free(scratch);
    return st;
}
