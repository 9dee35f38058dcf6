/*
 * Whole-file quantization: reads a GGUF, converts each tensor to the type
 * quant_mix.c chooses, and writes a new GGUF laid out like llama-quantize
 * output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/threadpool.h"
#include "quant/quant.h"
#include "quant/quantize_file.h"
#include "quant/quantize_file_impl.h"

struct order_entry {
    int64_t index;
    int layer;
    const char *name;
};

static int compare_order(const void *a, const void *b)
{
    const struct order_entry *x = a, *y = b;
    if (x->layer != y->layer)
        return x->layer < y->layer ? -1 : 1;
    return strcmp(x->name, y->name);
}

void quant_tensor_order(const gguf_file *in, int64_t *order)
{
    const int64_t n = gguf_n_tensors(in);
    struct order_entry *entries = malloc(sizeof *entries * (size_t)(n + 1));
    if (!entries) {
        /* Without memory for sorting, keep file order. */
        for (int64_t i = 0; i < n; i++)
            order[i] = i;
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        const char *name = gguf_tensor_at(in, i)->name;
        int layer = -1;
        if (sscanf(name, "blk.%d.", &layer) != 1)
            layer = -1;
        entries[i] = (struct order_entry){i, layer, name};
    }
    qsort(entries, (size_t)n, sizeof *entries, compare_order);
    for (int64_t i = 0; i < n; i++)
        order[i] = entries[i].index;
    free(entries);
}

roj_status quant_choose_types(const gguf_file *in, enum quant_ftype ftype,
                              bool pure, uint32_t *types)
{
    struct quant_mix_state qs;
    const int64_t n = gguf_n_tensors(in);
    int64_t *order = malloc(sizeof *order * (size_t)(n + 1));
    roj_status st = ROJ_OK;
    if (!order)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");

    quant_tensor_order(in, order);
    if ((st = quant_mix_state_init(in, &qs)) != ROJ_OK)
        goto cleanup;
    for (int64_t i = 0; i < n && st == ROJ_OK; i++) {
        const gguf_tensor *t = gguf_tensor_at(in, order[i]);
        st = quant_mix_tensor_type(&qs, t, ftype, pure, &types[order[i]]);
    }

cleanup:
    free(order);
    return st;
}

/* Copies every key except the ones llama-quantize rewrites or drops, then
 * appends general.quantization_version and general.file_type. */
static roj_status copy_metadata(gguf_writer *w, const gguf_file *in,
                                enum quant_ftype ftype)
{
    static const char *const rewritten[] = {
        "general.quantization_version", "general.file_type", "split.no",
        "split.count", "split.tensors.count",
    };
    roj_status st;
    for (int64_t i = 0; i < gguf_n_kv(in); i++) {
        const char *key = gguf_kv_key(in, i);
        bool skip = false;
        for (size_t k = 0; k < sizeof rewritten / sizeof rewritten[0]; k++)
            skip = skip || !strcmp(key, rewritten[k]);
        if (!skip && (st = gguf_writer_copy_kv(w, in, i)) != ROJ_OK)
            return st;
    }
    if ((st = gguf_writer_set_u32(w, "general.quantization_version", 2)) !=
        ROJ_OK)
        return st;
    return gguf_writer_set_u32(w, "general.file_type", (uint32_t)ftype);
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * Converts tensor t to type into a new buffer (*out, freed by the caller).
 * The input is dequantized to float first unless it is F32.
 */
static roj_status convert_tensor(const gguf_tensor *t, uint32_t type,
                                 roj_pool *pool, void **out, uint64_t *size)
{
    const int64_t n_per_row = t->ne[0];
    const int64_t n_rows = n_per_row ? (int64_t)t->n_elements / n_per_row : 0;
    float *scratch = NULL;
    const float *values = t->data;
    roj_status st;

    if (!quant_can_dequantize(t->type))
        return roj_error(ROJ_ERR_UNSUPPORTED,
                         "tensor %s has type %s, which roj cannot convert",
                         t->name, qtype_name(t->type));
    *size = quant_row_size(type, n_per_row) * (uint64_t)n_rows;
    if (!(*out = malloc(*size ? *size : 1)))
        return roj_error(ROJ_ERR_NOMEM, "tensor %s: out of memory for "
                         "%llu bytes", t->name, (unsigned long long)*size);

    if (t->type != ROJ_TYPE_F32) {
        scratch = malloc(sizeof(float) * (t->n_elements ? t->n_elements : 1));
        if (!scratch) {
            st = roj_error(ROJ_ERR_NOMEM, "tensor %s: out of memory for "
                           "%llu floats", t->name,
                           (unsigned long long)t->n_elements);
            goto fail;
        }
        st = quant_dequantize_tensor(t->type, t->data, scratch, n_rows,
                                     n_per_row, pool);
        if (st != ROJ_OK)
            goto fail;
        values = scratch;
    }
    st = quant_quantize_tensor(type, values, *out, n_rows, n_per_row, NULL,
                               pool);
    if (st != ROJ_OK)
        goto fail;
    free(scratch);
    return ROJ_OK;

fail:
    free(scratch);
    free(*out);
    *out = NULL;
    return roj_error_wrap(st, "tensor %s", t->name);
}

/* Buffers and order of one quantization run. */
struct file_job {
    gguf_file *in;
    gguf_writer *writer;
    roj_pool *pool;
    uint32_t *types;    /* (n_tensors) output type by input index */
    int64_t *order;     /* (n_tensors) input indexes in output order */
    void **buffers;     /* (n_tensors) converted data, NULL when copied */
    int64_t n_tensors;
};

static void file_job_free(struct file_job *job)
{
    for (int64_t i = 0; job->buffers && i < job->n_tensors; i++)
        free(job->buffers[i]);
    free(job->buffers);
    free(job->order);
    free(job->types);
    pool_destroy(job->pool);
    gguf_writer_free(job->writer);
    gguf_close(job->in);
}

/* Converts or copies each tensor in output order and adds it. */
static roj_status add_tensors(struct file_job *job,
                              const quant_file_options *opts)
{
    for (int64_t k = 0; k < job->n_tensors; k++) {
        const int64_t i = job->order[k];
        const gguf_tensor *t = gguf_tensor_at(job->in, i);
        const void *data = t->data;
        uint64_t size = t->n_bytes;
        double start = seconds_now();
        roj_status st;

        if (job->types[i] != t->type) {
            st = convert_tensor(t, job->types[i], job->pool, &job->buffers[k],
                                &size);
            if (st != ROJ_OK)
                return st;
            data = job->buffers[k];
        }
        st = gguf_writer_add_tensor(job->writer, t->name, job->types[i],
                                    t->n_dims, t->ne, data, size);
        if (st != ROJ_OK)
            return st;
        if (opts->progress) {
            quant_progress p = {k + 1, job->n_tensors, t->name, t->type,
                                job->types[i], t->n_bytes, size,
                                seconds_now() - start};
            opts->progress(&p, opts->user);
        }
    }
    return ROJ_OK;
}

roj_status quant_quantize_file_ex(const char *in_path, const char *out_path,
                                  enum quant_ftype ftype,
                                  const quant_file_options *opts)
{
    static const quant_file_options defaults = {1, false, NULL, NULL};
    struct file_job job = {0};
    roj_status st;

    if (!opts)
        opts = &defaults;
    if (quant_ftype_default_type(ftype) == ROJ_TYPE_COUNT)
        return roj_error(ROJ_ERR_INVALID_ARG, "unknown file type %d",
                         (int)ftype);
    if ((st = gguf_open(in_path, &job.in)) != ROJ_OK)
        return st;
    if ((st = pool_create(opts->n_threads, &job.pool)) != ROJ_OK)
        goto cleanup;

    job.n_tensors = gguf_n_tensors(job.in);
    job.types = calloc((size_t)job.n_tensors + 1, sizeof *job.types);
    job.order = calloc((size_t)job.n_tensors + 1, sizeof *job.order);
    job.buffers = calloc((size_t)job.n_tensors + 1, sizeof *job.buffers);
    if (!job.types || !job.order || !job.buffers) {
        st = roj_error(ROJ_ERR_NOMEM, "%s: out of memory", in_path);
        goto cleanup;
    }
    st = quant_choose_types(job.in, ftype, opts->pure, job.types);
    if (st != ROJ_OK)
        goto wrap;
    quant_tensor_order(job.in, job.order);

    if ((st = gguf_writer_create(&job.writer)) != ROJ_OK)
        goto cleanup;
    if ((st = copy_metadata(job.writer, job.in, ftype)) != ROJ_OK)
        goto wrap;
    if ((st = add_tensors(&job, opts)) != ROJ_OK)
        goto wrap;
    st = gguf_writer_write(job.writer, out_path);
    goto cleanup;

wrap:
    st = roj_error_wrap(st, "%s", in_path);
cleanup:
    file_job_free(&job);
    return st;
}

roj_status quant_quantize_file(const char *in_path, const char *out_path,
                               enum quant_ftype ftype, int n_threads)
{
    quant_file_options opts = {n_threads, false, NULL, NULL};
    return quant_quantize_file_ex(in_path, out_path, ftype, &opts);
}
