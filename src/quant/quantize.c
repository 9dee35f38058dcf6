/*
 * Reference quantizers for the 32-element block formats, the dispatch by
 * type, and the multi-threaded tensor helpers.
 *
 * Without importance weights the block quantizers follow ggml's
 * quantize_row_*_ref: the scale comes from the element of largest
 * magnitude (or from min and max), each value is rounded once, and the
 * float operations happen in the same order, so the bytes match.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "quant/fp16.h"
#include "quant/quant.h"
#include "quant/quant_impl.h"

/* Element of largest magnitude, keeping its sign; the first one wins a
 * tie. */
static float signed_absmax(const float *x, int n)
{
    float amax = 0, max = 0;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static void store_u32_le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Q4_0: d = max / -8, so the largest magnitude lands on level 0. */
static void quantize_q4_0(const float *x, block_q4_0 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += QK4_0) {
        const float d = signed_absmax(x, QK4_0) / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            const float x0 = x[j] * id;
            const float x1 = x[j + QK4_0 / 2] * id;
            int q0 = (int)(x0 + 8.5f), q1 = (int)(x1 + 8.5f);
            q0 = q0 > 15 ? 15 : q0;
            q1 = q1 > 15 ? 15 : q1;
            y[i].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

/* Q4_1: x = d * q + min with d = (max - min) / 15. */
static void quantize_q4_1(const float *x, block_q4_1 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += QK4_1) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK4_1; j++) {
            if (x[j] < min)
                min = x[j];
            if (x[j] > max)
                max = x[j];
        }
        const float d = (max - min) / 15;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        y[i].m = fp32_to_fp16(min);
        for (int j = 0; j < QK4_1 / 2; j++) {
            const float x0 = (x[j] - min) * id;
            const float x1 = (x[j + QK4_1 / 2] - min) * id;
            int q0 = (int)(x0 + 0.5f), q1 = (int)(x1 + 0.5f);
            q0 = q0 > 15 ? 15 : q0;
            q1 = q1 > 15 ? 15 : q1;
            y[i].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

/* Splits 32 five-bit levels into low nibbles and the qh bit mask. */
static void pack_5bit(const int *levels, uint8_t *qs, uint8_t *qh)
{
    uint32_t high = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((levels[j] & 0x0f) | (levels[j + 16] & 0x0f) << 4);
        high |= (uint32_t)((levels[j] >> 4) & 1) << j;
        high |= (uint32_t)((levels[j + 16] >> 4) & 1) << (j + 16);
    }
    store_u32_le(qh, high);
}

/* Q5_0: d = max / -16, levels 0..31 around 16. */
static void quantize_q5_0(const float *x, block_q5_0 *y, int64_t nb)
{
    int levels[QK5_0];
    for (int64_t i = 0; i < nb; i++, x += QK5_0) {
        const float d = signed_absmax(x, QK5_0) / -16;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        for (int j = 0; j < QK5_0; j++) {
            int q = (int)(x[j] * id + 16.5f);
            levels[j] = q > 31 ? 31 : q;
        }
        pack_5bit(levels, y[i].qs, y[i].qh);
    }
}

/* Q5_1: x = d * q + min with d = (max - min) / 31. */
static void quantize_q5_1(const float *x, block_q5_1 *y, int64_t nb)
{
    int levels[QK5_1];
    for (int64_t i = 0; i < nb; i++, x += QK5_1) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK5_1; j++) {
            if (x[j] < min)
                min = x[j];
            if (x[j] > max)
                max = x[j];
        }
        const float d = (max - min) / 31;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        y[i].m = fp32_to_fp16(min);
        for (int j = 0; j < QK5_1; j++) {
            /* (x - min) * id stays below 31.5, so the clamp never bites
             * for finite input; it keeps the level in five bits. */
            int q = (int)((x[j] - min) * id + 0.5f);
            levels[j] = q > 31 ? 31 : q;
        }
        pack_5bit(levels, y[i].qs, y[i].qh);
    }
}

/* Q8_0: d = absmax / 127, values rounded half away from zero. */
static void quantize_q8_0(const float *x, block_q8_0 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += QK8_0) {
        float amax = 0;
        for (int j = 0; j < QK8_0; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        for (int j = 0; j < QK8_0; j++)
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

/* Q8_1: Q8_0 plus s = d * sum(q). */
static void quantize_q8_1(const float *x, block_q8_1 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += QK8_1) {
        float amax = 0;
        for (int j = 0; j < QK8_1; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        int sum = 0;
        y[i].d = fp32_to_fp16(d);
        for (int j = 0; j < QK8_1; j++) {
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].s = fp32_to_fp16((float)sum * d);
    }
}

/*
 * Importance-weighted Q4_0/Q5_0/Q4_1/Q5_1: each element's error counts
 * importance * sqrt(sigma2 + x^2), sigma2 being the row's mean square, and
 * the scale comes from the least-squares searches of the K-quants.
 */
static void quantize_weighted_32(enum roj_type type, const float *x,
                                 void *dst, int64_t n, const float *importance)
{
    float sum_x2 = 0;
    for (int64_t j = 0; j < n; j++)
        sum_x2 += x[j] * x[j];
    const float sigma2 = sum_x2 / (float)n;

    for (int64_t ib = 0; ib < n / 32; ib++) {
        const float *xb = x + 32 * ib;
        float weights[32];
        int8_t sym[32];
        uint8_t aff[32], scratch[32];
        int levels[32];
        float d = 0, neg_min = 0;

        for (int j = 0; j < 32; j++)
            weights[j] = importance[32 * ib + j] * sqrtf(sigma2 + xb[j] * xb[j]);
        if (type == ROJ_TYPE_Q4_0 || type == ROJ_TYPE_Q5_0) {
            int nmax = type == ROJ_TYPE_Q4_0 ? 8 : 16;
            d = quant_search_symmetric(32, nmax, xb, sym, 1, weights);
            for (int j = 0; j < 32; j++)
                levels[j] = sym[j];
        } else {
            int nmax = type == ROJ_TYPE_Q4_1 ? 15 : 31;
            d = quant_search_affine(32, nmax, xb, weights, aff, &neg_min,
                                    scratch, -0.9f, 0.05f, 36, 0);
            for (int j = 0; j < 32; j++)
                levels[j] = aff[j];
        }

        if (type == ROJ_TYPE_Q4_0 || type == ROJ_TYPE_Q4_1) {
            uint8_t *qs;
            if (type == ROJ_TYPE_Q4_0) {
                block_q4_0 *y = (block_q4_0 *)dst + ib;
                y->d = fp32_to_fp16(d);
                qs = y->qs;
            } else {
                block_q4_1 *y = (block_q4_1 *)dst + ib;
                y->d = fp32_to_fp16(d);
                y->m = fp32_to_fp16(-neg_min);
                qs = y->qs;
            }
            for (int j = 0; j < 16; j++)
                qs[j] = (uint8_t)(levels[j] | levels[j + 16] << 4);
        } else if (type == ROJ_TYPE_Q5_0) {
            block_q5_0 *y = (block_q5_0 *)dst + ib;
            y->d = fp32_to_fp16(d);
            pack_5bit(levels, y->qs, y->qh);
        } else {
            block_q5_1 *y = (block_q5_1 *)dst + ib;
            y->d = fp32_to_fp16(d);
            y->m = fp32_to_fp16(-neg_min);
            pack_5bit(levels, y->qs, y->qh);
        }
    }
}

bool quant_can_quantize(enum roj_type type)
{
    return quant_can_dequantize(type);
}

size_t quant_row_size(enum roj_type type, int64_t n)
{
    return qtype_row_bytes(type, n);
}

static int64_t first_non_finite(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return i;
    return -1;
}

roj_status quant_quantize_row(enum roj_type type, const float *src,
                              void *dst, int64_t n, const float *importance)
{
    const roj_type_info *info = qtype_info(type);
    if (!quant_can_quantize(type))
        return roj_error(ROJ_ERR_UNSUPPORTED,
                         "quantizing to type %s (%d) is not supported",
                         info->name, (int)type);
    if (n < 0 || n % info->block_size != 0)
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "row of %lld elements is not a multiple of the %s "
                         "block size %d", (long long)n, info->name,
                         info->block_size);
    if (info->block_size > 1) {
        int64_t bad = first_non_finite(src, n);
        if (bad >= 0)
            return roj_error(ROJ_ERR_NUMERIC,
                             "element %lld is %g; %s needs finite values",
                             (long long)bad, (double)src[bad], info->name);
    }

    const int64_t nb = n / info->block_size;
    const bool weighted = importance != NULL;
    switch (type) {
    case ROJ_TYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        break;
    case ROJ_TYPE_F16: {
        uint16_t *h = dst;
        for (int64_t i = 0; i < n; i++)
            h[i] = fp32_to_fp16(src[i]);
        break;
    }
    case ROJ_TYPE_BF16: {
        uint16_t *h = dst;
        for (int64_t i = 0; i < n; i++)
            h[i] = fp32_to_bf16(src[i]);
        break;
    }
    case ROJ_TYPE_Q4_0:
    case ROJ_TYPE_Q4_1:
    case ROJ_TYPE_Q5_0:
    case ROJ_TYPE_Q5_1:
        if (weighted)
            quantize_weighted_32(type, src, dst, n, importance);
        else if (type == ROJ_TYPE_Q4_0)
            quantize_q4_0(src, dst, nb);
        else if (type == ROJ_TYPE_Q4_1)
            quantize_q4_1(src, dst, nb);
        else if (type == ROJ_TYPE_Q5_0)
            quantize_q5_0(src, dst, nb);
        else
            quantize_q5_1(src, dst, nb);
        break;
    case ROJ_TYPE_Q8_0: quantize_q8_0(src, dst, nb); break;
    case ROJ_TYPE_Q8_1: quantize_q8_1(src, dst, nb); break;
    case ROJ_TYPE_Q2_K: quant_row_q2_K(src, dst, n, importance); break;
    case ROJ_TYPE_Q3_K: quant_row_q3_K(src, dst, n, importance); break;
    case ROJ_TYPE_Q4_K: quant_row_q4_K(src, dst, n, importance); break;
    case ROJ_TYPE_Q5_K: quant_row_q5_K(src, dst, n, importance); break;
    case ROJ_TYPE_Q6_K: quant_row_q6_K(src, dst, n, importance); break;
    case ROJ_TYPE_Q8_K: quant_row_q8_K(src, dst, n); break;
    default:
        return roj_error(ROJ_ERR_INTERNAL, "no quantizer for %s", info->name);
    }
    return ROJ_OK;
}

/* Work shared by the threads of one quant_quantize_tensor() call. Every
 * thread takes a contiguous range of rows and records its own status. */
struct tensor_job {
    enum roj_type type;
    const void *src;
    void *dst;
    int64_t n_rows;
    int64_t n_per_row;
    size_t row_bytes;
    const float *importance;
    int quantize; /* 1: float to type, 0: type to float */
    roj_status status[256];
    char message[256][256];
};

static void tensor_job_run(void *ctx, int thread_index, int n_threads)
{
    struct tensor_job *job = ctx;
    int64_t begin, end;
    pool_split(job->n_rows, n_threads, thread_index, 1, &begin, &end);

    job->status[thread_index] = ROJ_OK;
    for (int64_t r = begin; r < end; r++) {
        if (!job->quantize) {
            const uint8_t *in = (const uint8_t *)job->src + r * job->row_bytes;
            float *out = (float *)job->dst + r * job->n_per_row;
            quant_dequantize_row(job->type, in, out, job->n_per_row);
            continue;
        }
        const float *in = (const float *)job->src + r * job->n_per_row;
        uint8_t *out = (uint8_t *)job->dst + r * job->row_bytes;
        roj_status st = quant_quantize_row(job->type, in, out, job->n_per_row,
                                           job->importance);
        if (st != ROJ_OK) {
            job->status[thread_index] =
                roj_error_wrap(st, "row %lld", (long long)r);
            snprintf(job->message[thread_index], sizeof job->message[0],
                     "%s", roj_last_error());
            return;
        }
    }
}

static roj_status tensor_job_start(struct tensor_job *job, roj_pool *pool)
{
    int n_threads = pool ? pool_size(pool) : 1;
    if (n_threads > 1 && job->n_rows > 1) {
        pool_run(pool, tensor_job_run, job);
    } else {
        n_threads = 1;
        tensor_job_run(job, 0, 1);
    }

    for (int t = 0; t < n_threads; t++)
        if (job->status[t] != ROJ_OK)
            return roj_error(job->status[t], "%s", job->message[t]);
    return ROJ_OK;
}

roj_status quant_quantize_tensor(enum roj_type type, const float *src,
                                 void *dst, int64_t n_rows, int64_t n_per_row,
                                 const float *importance, roj_pool *pool)
{
    size_t row_bytes = quant_row_size(type, n_per_row);
    if (!quant_can_quantize(type))
        return roj_error(ROJ_ERR_UNSUPPORTED,
                         "quantizing to type %s is not supported",
                         qtype_name(type));
    if (row_bytes == 0 || n_rows < 0)
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "%lld x %lld is not a valid %s tensor shape",
                         (long long)n_rows, (long long)n_per_row,
                         qtype_name(type));

    struct tensor_job *job = calloc(1, sizeof *job);
    if (!job)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    *job = (struct tensor_job){type, src, dst, n_rows, n_per_row, row_bytes,
                               importance, 1, {0}, {{0}}};
    roj_status st = tensor_job_start(job, pool);
    free(job);
    return st;
}

roj_status quant_dequantize_tensor(enum roj_type type, const void *src,
                                   float *dst, int64_t n_rows,
                                   int64_t n_per_row, roj_pool *pool)
{
    size_t row_bytes = quant_row_size(type, n_per_row);
    if (!quant_can_dequantize(type))
        return roj_error(ROJ_ERR_UNSUPPORTED,
                         "dequantizing type %s is not supported",
                         qtype_name(type));
    if (row_bytes == 0 || n_rows < 0)
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "%lld x %lld is not a valid %s tensor shape",
                         (long long)n_rows, (long long)n_per_row,
                         qtype_name(type));

    struct tensor_job *job = calloc(1, sizeof *job);
    if (!job)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    *job = (struct tensor_job){type, src, dst, n_rows, n_per_row, row_bytes,
                               NULL, 0, {0}, {{0}}};
    roj_status st = tensor_job_start(job, pool);
    free(job);
    return st;
}
