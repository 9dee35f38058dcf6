/* Merging LoRA adapters into a standalone model: W' = W + scale * B A. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "model/lora.h"
#include "quant/quant.h"

typedef struct merge_job {
    const roj_model *base;
    roj_lora **adapters;
    const float *scales;
    size_t n;
    enum roj_type out_type;
    roj_pool *pool;
    void **buffers; /* (n_tensors) converted tensors, kept until written */
} merge_job;

/* Returns the merged tensor t, in type, as a new buffer in *out (NULL
 * when no adapter changes t) and its size in *size. */
static roj_status merge_tensor(const merge_job *job, const gguf_tensor *t,
                               void **out, uint64_t *size)
{
    const int64_t n_in = t->ne[0];
    const int64_t n_out = (int64_t)(t->n_elements / (uint64_t)n_in);
    enum roj_type type = job->out_type == ROJ_TYPE_COUNT
                             ? (enum roj_type)t->type
                             : job->out_type;
    float *w = NULL;
    double *delta = NULL; /* (n_in) B A for one row of W */
    roj_status st;

    *out = NULL;
    bool changed = false;
    for (size_t i = 0; i < job->n; i++)
        changed = changed || lora_find_pair(job->adapters[i], t->name);
    if (!changed)
        return ROJ_OK;
    if (!quant_can_dequantize(t->type))
        return roj_error(ROJ_ERR_UNSUPPORTED, "tensor %s has type %s, which "
                         "roj cannot dequantize", t->name,
                         qtype_name(t->type));
    if (!quant_can_quantize(type) || quant_row_size(type, n_in) == 0)
        return roj_error(ROJ_ERR_UNSUPPORTED, "tensor %s: cannot store "
                         "rows of %lld elements as %s", t->name,
                         (long long)n_in, qtype_name(type));
    w = malloc((size_t)(n_in * n_out) * sizeof *w);
    delta = malloc((size_t)n_in * sizeof *delta);
    if (!w || !delta) {
        st = roj_error(ROJ_ERR_NOMEM, "out of memory for tensor %s",
                       t->name);
        goto cleanup;
    }
    if ((st = quant_dequantize_tensor(t->type, t->data, w, n_out, n_in,
                                      job->pool)) != ROJ_OK)
        goto cleanup;

    /* W (n_out, n_in) += scale * B (n_out, rank) * A (rank, n_in). Each
     * element's sum over the rank is kept in double and added to W once,
     * so each adapter rounds the merged weight once. B[o][r] is bt[r][o]. */
    for (size_t i = 0; i < job->n; i++) {
        const lora_pair *p = lora_find_pair(job->adapters[i], t->name);
        if (!p)
            continue;
        double scale = lora_pair_scale(job->adapters[i], p, job->scales[i]);
        for (int64_t o = 0; o < n_out; o++) {
            for (int64_t k = 0; k < n_in; k++)
                delta[k] = 0.0;
            for (int64_t r = 0; r < p->rank; r++) {
                const double b = p->bt[r * n_out + o];
                const float *a = p->a + r * n_in;
                for (int64_t k = 0; k < n_in; k++)
                    delta[k] += b * a[k];
            }
            float *row = w + o * n_in;
            for (int64_t k = 0; k < n_in; k++)
                row[k] = (float)(row[k] + scale * delta[k]);
        }
    }

    *size = quant_row_size(type, n_in) * (uint64_t)n_out;
    if (type == ROJ_TYPE_F32) {
        *out = w;
        free(delta);
        return ROJ_OK;
    }
    if (!(*out = malloc(*size))) {
        st = roj_error(ROJ_ERR_NOMEM, "out of memory for tensor %s",
                       t->name);
        goto cleanup;
    }
    st = quant_quantize_tensor(type, w, *out, n_out, n_in, NULL, job->pool);
    if (st != ROJ_OK) {
        free(*out);
        *out = NULL;
        roj_error_wrap(st, "tensor %s", t->name);
    }

cleanup:
    free(delta);
    free(w);
    return st;
}

/* Copies every metadata key of the base (general.alignment included, so
 * the layout stays the base's) and records the adapters. */
static roj_status copy_metadata(gguf_writer *w, const merge_job *job,
                                const char *const *paths)
{
    const gguf_file *in = job->base->file;
    char **items = NULL;
    roj_status st = ROJ_OK;

    /* NOTE: general.file_type is copied as is, so after --type it may
     * name the base's type rather than the merged tensors' type. */
    for (int64_t i = 0; i < gguf_n_kv(in) && st == ROJ_OK; i++)
        st = gguf_writer_copy_kv(w, in, i);
    if (st != ROJ_OK)
        return st;

    items = calloc(job->n, sizeof *items);
    if (!items)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < job->n && st == ROJ_OK; i++) {
        const char *slash = strrchr(paths[i], '/');
        size_t cap = strlen(paths[i]) + 32;
        if (!(items[i] = malloc(cap)))
            st = roj_error(ROJ_ERR_NOMEM, "out of memory");
        else
            snprintf(items[i], cap, "%s:%g", slash ? slash + 1 : paths[i],
                     (double)job->scales[i]);
    }
    if (st == ROJ_OK)
        st = gguf_writer_set_arr_str(w, "roj.merge.adapters",
                                     (const char *const *)items, job->n);
    for (size_t i = 0; i < job->n; i++)
        free(items[i]);
    free(items);
    return st;
}

static roj_status write_merged(merge_job *job, const char *const *paths,
                               const char *out_path)
{
    const gguf_file *in = job->base->file;
    const int64_t n_tensors = gguf_n_tensors(in);
    gguf_writer *w = NULL;
    roj_status st;

    job->buffers = calloc((size_t)n_tensors, sizeof *job->buffers);
    if (!job->buffers)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    if ((st = gguf_writer_create(&w)) != ROJ_OK ||
        (st = copy_metadata(w, job, paths)) != ROJ_OK)
        goto cleanup;
    for (int64_t i = 0; i < n_tensors; i++) {
        const gguf_tensor *t = gguf_tensor_at(in, i);
        uint64_t size = 0;
        if ((st = merge_tensor(job, t, &job->buffers[i], &size)) != ROJ_OK) {
            roj_error_wrap(st, "%s", gguf_path(in));
            goto cleanup;
        }
        if (job->buffers[i]) {
            enum roj_type type = job->out_type == ROJ_TYPE_COUNT
                                     ? (enum roj_type)t->type
                                     : job->out_type;
            log_info("merged %s as %s", t->name, qtype_name(type));
            st = gguf_writer_add_tensor(w, t->name, type, t->n_dims, t->ne,
                                        job->buffers[i], size);
        } else {
            st = gguf_writer_add_tensor(w, t->name, t->type, t->n_dims,
                                        t->ne, t->data, t->n_bytes);
        }
        if (st != ROJ_OK)
            goto cleanup;
    }
    st = gguf_writer_write(w, out_path);

cleanup:
    gguf_writer_free(w);
    for (int64_t i = 0; i < n_tensors; i++)
        free(job->buffers[i]);
    free(job->buffers);
    return st;
}

roj_status lora_merge(const char *base_path, const char *const *paths,
                      const float *scales, size_t n, const char *out_path,
                      enum roj_type out_type, roj_pool *pool)
{
    roj_model *base = NULL;
    merge_job job = {0};
    roj_status st;

    if (n == 0)
        return roj_error(ROJ_ERR_INVALID_ARG, "no adapter to merge into %s",
                         base_path);
    if (out_type != ROJ_TYPE_COUNT && out_type != ROJ_TYPE_F32 &&
        out_type != ROJ_TYPE_F16 && out_type != ROJ_TYPE_Q8_0)
        return roj_error(ROJ_ERR_INVALID_ARG, "merged tensors can be F32, "
                         "F16 or Q8_0, not %s", qtype_name(out_type));
    if ((st = roj_model_open(base_path, &base)) != ROJ_OK)
        return st;
    job.base = base;
    job.scales = scales;
    job.n = n;
    job.out_type = out_type;
    job.pool = pool;
    job.adapters = calloc(n, sizeof *job.adapters);
    if (!job.adapters) {
        st = roj_error(ROJ_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++)
        if ((st = roj_lora_open(base, paths[i], &job.adapters[i])) != ROJ_OK)
            goto cleanup;
    st = write_merged(&job, paths, out_path);

cleanup:
    for (size_t i = 0; job.adapters && i < n; i++)
        roj_lora_free(job.adapters[i]);
    free(job.adapters);
    roj_model_free(base);
    return st;
}
