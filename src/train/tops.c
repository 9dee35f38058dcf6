/* Forward and backward passes of the training operations (see tops.h). */
#include "train/tblas.h"
#include "train/tops.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

void tops_rms_norm(float *y, float *rstd, const float *x, const float *gain,
                   int64_t d, float eps, int64_t r0, int64_t r1)
{
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = x + r * d;
        float *yr = y + r * d;
        double sum = 0.0;
        for (int64_t i = 0; i < d; i++)
            sum += (double)xr[i] * xr[i];
        const float s = 1.0f / sqrtf((float)(sum / (double)d) + eps);
        rstd[r] = s;
        for (int64_t i = 0; i < d; i++)
            yr[i] = xr[i] * s * gain[i];
    }
}

/* With n = x * s (s = rstd) and y = n * g:
 * dx_i = s * g_i * dy_i - x_i * s^3 / d * sum_j(dy_j * g_j * x_j). */
void tops_rms_norm_bwd_x(float *dx, const float *dy, const float *x,
                         const float *gain, const float *rstd, int64_t d,
                         int64_t r0, int64_t r1)
{
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = x + r * d;
        const float *dyr = dy + r * d;
        float *dxr = dx + r * d;
        const float s = rstd[r];
        double dot = 0.0;
        for (int64_t i = 0; i < d; i++)
            dot += (double)dyr[i] * gain[i] * xr[i];
        const float c = (float)(dot * s * s * s / (double)d);
        for (int64_t i = 0; i < d; i++)
            dxr[i] += s * gain[i] * dyr[i] - xr[i] * c;
    }
}

void tops_rms_norm_bwd_gain(float *dgain, const float *dy, const float *x,
                            const float *rstd, int64_t n_rows, int64_t d,
                            int64_t c0, int64_t c1)
{
    for (int64_t r = 0; r < n_rows; r++) {
        const float *xr = x + r * d;
        const float *dyr = dy + r * d;
        const float s = rstd[r];
        for (int64_t c = c0; c < c1; c++)
            dgain[c] += dyr[c] * xr[c] * s;
    }
}

/* Angle of pair i at pos: pos * freq_scale * base^(-2i/rope_dim) /
 * freqs[i], with the power built by repeated products as llama.cpp and
 * roj's inference do. */
static void rope_angles(const tops_rope_cfg *cfg, int32_t pos, float *cs)
{
    const int64_t half = cfg->rope_dim / 2;
    const float theta_scale = powf(cfg->base, -2.0f / (float)cfg->rope_dim);
    float theta = (float)pos;
    for (int64_t i = 0; i < half; i++) {
        float angle = theta * cfg->freq_scale;
        if (cfg->freqs)
            angle /= cfg->freqs[i];
        cs[2 * i] = cosf(angle);
        cs[2 * i + 1] = sinf(angle);
        theta *= theta_scale;
    }
}

void tops_rope_table(const tops_rope_cfg *cfg, int64_t n_pos, float *table)
{
    for (int64_t p = 0; p < n_pos; p++)
        rope_angles(cfg, (int32_t)p, table + p * cfg->rope_dim);
}

void tops_rope(float *x, const int32_t *pos, int64_t n_heads,
               const tops_rope_cfg *cfg, int inverse, int64_t r0, int64_t r1)
{
    const int64_t hd = cfg->head_dim, half = cfg->rope_dim / 2;
    const int64_t stride = cfg->neox ? half : 1;
    const int64_t step = cfg->neox ? 1 : 2;
    float local[512];
    for (int64_t r = r0; r < r1; r++) {
        float *row = x + r * n_heads * hd;
        const float *cs;
        if (cfg->table && pos[r] >= 0 && pos[r] < cfg->table_len) {
            cs = cfg->table + (int64_t)pos[r] * cfg->rope_dim;
        } else {
            rope_angles(cfg, pos[r], local);
            cs = local;
        }
        for (int64_t i = 0; i < half; i++) {
            const float c = cs[2 * i];
            const float s = inverse ? -cs[2 * i + 1] : cs[2 * i + 1];
            for (int64_t h = 0; h < n_heads; h++) {
                float *p = row + h * hd + i * step;
                const float a = p[0], b = p[stride];
                p[0] = a * c - b * s;
                p[stride] = a * s + b * c;
            }
        }
    }
}

/* e^x for float, written so that loops over arrays vectorize (libm's
 * expf is a call per element). x is clamped to [-87, 64]; the result is
 * 2^n * p(r) with r = x - n ln 2 in [-0.35, 0.35] and p the degree-6
 * Taylor polynomial, within about 4e-7 relative error (an estimate from
 * the truncation term r^7 / 5040).
 *
 * The upper bound is 64, not 88, because GCC 12 at -O3 evaluates both
 * sides of the clamp's select for every element. In sigmoidf the
 * constant side was 1 / (1 + e^88) = 6e-39, a subnormal number, and each
 * multiply by it cost a microcode assist (SwiGLU ran about 15 times
 * slower). The constant 1 / (1 + e^64) = 1.6e-28 is a normal number. */
static inline float vexpf(float x)
{
    x = x < -87.0f ? -87.0f : x;
    x = x > 64.0f ? 64.0f : x;
    /* Round x / ln 2 to the nearest integer with the 1.5 * 2^23 trick. */
    const float n = (x * 1.44269504089f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693145751953125f;
    r = r - n * 1.42860676533018e-06f;
    const float p =
        1.0f +
        r * (1.0f +
             r * (0.5f +
                  r * (0.166666667f +
                       r * (0.0416666667f +
                            r * (0.00833333333f + r * 0.00138888889f)))));
    const uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static float sigmoidf(float v)
{
    return 1.0f / (1.0f + vexpf(-v));
}

void tops_swiglu(float *h, const float *g, const float *u, int64_t n,
                 int64_t r0, int64_t r1)
{
    for (int64_t i = r0 * n; i < r1 * n; i++)
        h[i] = g[i] * sigmoidf(g[i]) * u[i];
}

void tops_swiglu_bwd(float *dg, float *du, const float *dh, const float *g,
                     const float *u, int64_t n, int64_t r0, int64_t r1)
{
    for (int64_t i = r0 * n; i < r1 * n; i++) {
        const float s = sigmoidf(g[i]);
        const float silu = g[i] * s;
        du[i] = dh[i] * silu;
        dg[i] = dh[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
    }
}

/* Whether row target t is smoothed. */
static bool smoothed(const tops_smooth *s, int32_t t)
{
    if (!s || s->eps <= 0.0f)
        return false;
    for (int64_t k = 0; k < s->n; k++)
        if (s->ids[k] == t)
            return true;
    return false;
}

/* Lanes of the partial maxima and sums below: eight independent chains
 * instead of one, so the loops vectorize and do not wait on the latency
 * of each add. */
#define ROW_LANES 8

/* Returns the largest of row[0 .. n), n >= 1. Equal to a left-to-right
 * scan for finite values, whatever the order. */
static float row_max(const float *row, int64_t n)
{
    float m[ROW_LANES];
    for (int j = 0; j < ROW_LANES; j++)
        m[j] = row[0];
    int64_t i = 0;
    for (; i + ROW_LANES <= n; i += ROW_LANES)
        for (int j = 0; j < ROW_LANES; j++)
            m[j] = row[i + j] > m[j] ? row[i + j] : m[j];
    for (; i < n; i++)
        m[0] = row[i] > m[0] ? row[i] : m[0];
    float mx = m[0];
    for (int j = 1; j < ROW_LANES; j++)
        mx = m[j] > mx ? m[j] : mx;
    return mx;
}

/* Returns the sum of row[0 .. n) in double, from ROW_LANES partial sums
 * in a fixed order, so the result depends only on the values. */
static double row_sum(const float *row, int64_t n)
{
    double acc[ROW_LANES] = {0};
    int64_t i = 0;
    for (; i + ROW_LANES <= n; i += ROW_LANES)
        for (int j = 0; j < ROW_LANES; j++)
            acc[j] += row[i + j];
    for (; i < n; i++)
        acc[0] += row[i];
    for (int w = ROW_LANES / 2; w > 0; w /= 2)
        for (int j = 0; j < w; j++)
            acc[j] += acc[j + w];
    return acc[0];
}

void tops_xent(float *logits, float *loss_rows, const int32_t *targets,
               const float *weights, const tops_smooth *smooth,
               int64_t n_vocab, float scale, int64_t r0, int64_t r1)
{
    for (int64_t r = r0; r < r1; r++) {
        float *row = logits + r * n_vocab;
        const int32_t t = targets[r];
        const bool sm = smoothed(smooth, t);
        /* The smoothing term needs the logits of the set before they
         * turn into probabilities (a tiny one underflows to 0). */
        double set_sum = 0.0, x_t = row[t];
        if (sm)
            for (int64_t k = 0; k < smooth->n; k++)
                set_sum += row[smooth->ids[k]];
        const float mx = row_max(row, n_vocab);
        for (int64_t i = 0; i < n_vocab; i++)
            row[i] = vexpf(row[i] - mx);
        const double sum = row_sum(row, n_vocab);
        const float sc = weights ? scale * weights[r] : scale;
        const float inv = (float)(1.0 / sum) * sc;
        if (!sm) {
            loss_rows[r] = (float)(log(sum) - log((double)row[t]));
            for (int64_t i = 0; i < n_vocab; i++)
                row[i] *= inv;
            row[t] -= sc;
            continue;
        }
        /* -(1 - eps) log p_t - eps / n * sum over the set of log p_s,
         * with log p_i = x_i - lse. */
        const double eps = smooth->eps, lse = (double)mx + log(sum);
        const double share = eps / (double)smooth->n;
        loss_rows[r] = (float)(lse - (1.0 - eps) * x_t - share * set_sum);
        for (int64_t i = 0; i < n_vocab; i++)
            row[i] *= inv;
        row[t] -= (float)(1.0 - eps) * sc;
        for (int64_t k = 0; k < smooth->n; k++)
            row[smooth->ids[k]] -= (float)share * sc;
    }
}

/* Softmax of each row i over columns [0, i], zero after; rows of n. */
static void causal_softmax(float *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float *row = p + i * n;
        float mx = row[0];
        for (int64_t j = 1; j <= i; j++)
            mx = row[j] > mx ? row[j] : mx;
        for (int64_t j = 0; j <= i; j++)
            row[j] = vexpf(row[j] - mx);
        float sum = 0.0f;
        for (int64_t j = 0; j <= i; j++)
            sum += row[j];
        const float inv = 1.0f / sum;
        for (int64_t j = 0; j <= i; j++)
            row[j] *= inv;
        for (int64_t j = i + 1; j < n; j++)
            row[j] = 0.0f;
    }
}

void tops_attention(const tops_attn *a, const float *q, const float *k,
                    const float *v, float *out, float *p)
{
    const int64_t n = a->n, hd = a->head_dim;
    const float *kh = k + a->kv_head * hd;
    const float *vh = v + a->kv_head * hd;
    for (int64_t g = 0; g < a->n_group; g++) {
        const int64_t h = a->head0 + g;
        float *ph = p + g * n * n;
        tblas_sgemm(false, true, (int)n, (int)n,
                    (int)hd, a->scale, q + h * hd, (int)a->q_stride, kh,
                    (int)a->kv_stride, 0.0f, ph, (int)n);
        causal_softmax(ph, n);
        tblas_sgemm(false, false, (int)n,
                    (int)hd, (int)n, 1.0f, ph, (int)n, vh, (int)a->kv_stride,
                    0.0f, out + h * hd, (int)a->q_stride);
    }
}

void tops_attention_bwd(const tops_attn *a, const float *q, const float *k,
                        const float *v, const float *p, const float *dout,
                        float *dq, float *dk, float *dv, float *scratch)
{
    const int64_t n = a->n, hd = a->head_dim;
    const int ldq = (int)a->q_stride, ldk = (int)a->kv_stride;
    const float *kh = k + a->kv_head * hd;
    const float *vh = v + a->kv_head * hd;
    float *dkh = dk + a->kv_head * hd;
    float *dvh = dv + a->kv_head * hd;
    float *ds = scratch;
    for (int64_t g = 0; g < a->n_group; g++) {
        const int64_t h = a->head0 + g;
        const float *ph = p + g * n * n;
        const float *doh = dout + h * hd;
        /* dP = dO V^T and dV += P^T dO. */
        tblas_sgemm(false, true, (int)n, (int)n,
                    (int)hd, 1.0f, doh, ldq, vh, ldk, 0.0f, ds, (int)n);
        tblas_sgemm(true, false, (int)n, (int)hd,
                    (int)n, 1.0f, ph, (int)n, doh, ldq, 1.0f, dvh, ldk);
        /* dS = P * (dP - rowsum(P * dP)); masked entries have P = 0. */
        for (int64_t i = 0; i < n; i++) {
            const float *pr = ph + i * n;
            float *dr = ds + i * n;
            float dot = 0.0f;
            for (int64_t j = 0; j <= i; j++)
                dot += pr[j] * dr[j];
            for (int64_t j = 0; j <= i; j++)
                dr[j] = pr[j] * (dr[j] - dot);
            for (int64_t j = i + 1; j < n; j++)
                dr[j] = 0.0f;
        }
        tblas_sgemm(false, false, (int)n,
                    (int)hd, (int)n, a->scale, ds, (int)n, kh, ldk, 0.0f,
                    dq + h * hd, ldq);
        tblas_sgemm(true, false, (int)n, (int)hd,
                    (int)n, a->scale, ds, (int)n, q + h * hd, ldq, 1.0f, dkh,
                    ldk);
    }
}
