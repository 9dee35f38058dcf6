/*
 * Training operations of the llama architecture with their backward
 * passes, in float32 on row-major arrays of token rows.
 *
 * Each forward function computes rows [r0, r1) so a caller can split the
 * rows over threads. Backward functions ADD their gradients into the
 * given arrays (callers zero them first), so gradients of a value used
 * twice (a tied embedding, a residual) sum. tops_swiglu_bwd is the one
 * exception: it overwrites, as its comment states. Functions that reduce over
 * rows into one parameter gradient (rms_norm_bwd's gain, the embedding
 * scatter) take a column range instead, so threads never write the same
 * element and results do not depend on timing.
 *
 * tests/test_train_ops.c checks every backward against finite differences.
 */
#ifndef ROJ_TRAIN_TOPS_H
#define ROJ_TRAIN_TOPS_H

#include <stddef.h>
#include <stdint.h>

/* y = x * rstd * gain per row of d elements; rstd[r] = 1/sqrt(mean(x^2)+eps)
 * is saved for the backward pass. */
void tops_rms_norm(float *y, float *rstd, const float *x, const float *gain,
                   int64_t d, float eps, int64_t r0, int64_t r1);

/* dx += d(loss)/dx for rows [r0, r1), from dy, x, gain and the saved rstd. */
void tops_rms_norm_bwd_x(float *dx, const float *dy, const float *x,
                         const float *gain, const float *rstd, int64_t d,
                         int64_t r0, int64_t r1);

/* dgain[c] += sum over rows of dy * x * rstd, for columns [c0, c1). */
void tops_rms_norm_bwd_gain(float *dgain, const float *dy, const float *x,
                            const float *rstd, int64_t n_rows, int64_t d,
                            int64_t c0, int64_t c1);

/* RoPE settings of a model: rope_dim of head_dim values are rotated,
 * angle_i = pos * freq_scale * base^(-2i/rope_dim) / freqs[i] (freqs may
 * be NULL); neox pairs i with i + rope_dim/2, else 2i with 2i+1. */
typedef struct tops_rope_cfg {
    int64_t head_dim, rope_dim;
    float base, freq_scale;
    const float *freqs;
    int neox;
    /* Optional table from tops_rope_table: (cos, sin) of every pair for
     * positions [0, table_len); other positions are computed. */
    const float *table;
    int64_t table_len;
} tops_rope_cfg;

/* Fills table with (cos, sin) for positions [0, n_pos) and the
 * rope_dim / 2 pairs: n_pos * rope_dim floats, the same values tops_rope
 * computes. */
void tops_rope_table(const tops_rope_cfg *cfg, int64_t n_pos, float *table);

/* Rotates, in place, n_heads heads in each row r by the angles of
 * position pos[r]. inverse = 1 rotates back, which is the backward pass
 * of the rotation. */
void tops_rope(float *x, const int32_t *pos, int64_t n_heads,
               const tops_rope_cfg *cfg, int inverse, int64_t r0, int64_t r1);

/* h = silu(g) * u over rows [r0, r1) of n elements. */
void tops_swiglu(float *h, const float *g, const float *u, int64_t n,
                 int64_t r0, int64_t r1);

/* dg = dh * u * silu'(g), du = dh * silu(g): these two overwrite, since
 * gate and up feed nothing else. */
void tops_swiglu_bwd(float *dg, float *du, const float *dh, const float *g,
                     const float *u, int64_t n, int64_t r0, int64_t r1);

/* Label smoothing: a row whose target is one of ids[0..n) learns the
 * distribution (1 - eps) on its target plus eps / n on each of ids. */
typedef struct tops_smooth {
    const int32_t *ids;
    int64_t n;
    float eps;
} tops_smooth;

/* Softmax cross-entropy of rows [r0, r1) of logits (n_vocab wide) against
 * target ids. Writes loss_rows[r] (nats) and overwrites logits with
 * d(loss)/d(logits) * scale * weights[r] (weights may be NULL for 1).
 * smooth may be NULL (one-hot targets). */
void tops_xent(float *logits, float *loss_rows, const int32_t *targets,
               const float *weights, const tops_smooth *smooth,
               int64_t n_vocab, float scale, int64_t r0, int64_t r1);

/* Causal attention of one sequence of n tokens for one KV head and the
 * group of query heads that share it.
 *   q, out: rows of q_stride floats, head h at column h * head_dim;
 *   k, v:   rows of kv_stride floats, KV head kvh at kvh * head_dim;
 *   p:      n_group * n * n saved probabilities (zero above the diagonal).
 * Uses scratch of n * n floats. */
typedef struct tops_attn {
    int64_t n, head_dim, q_stride, kv_stride;
    int64_t head0, n_group, kv_head;
    float scale;
} tops_attn;

void tops_attention(const tops_attn *a, const float *q, const float *k,
                    const float *v, float *out, float *p);

/* Backward of tops_attention. dq (same layout as q) is overwritten for the
 * group's heads, while dk and dv of the KV head are ADDED to. scratch has
 * room for n * n floats. */
void tops_attention_bwd(const tops_attn *a, const float *q, const float *k,
                        const float *v, const float *p, const float *dout,
                        float *dq, float *dk, float *dv, float *scratch);

#endif
