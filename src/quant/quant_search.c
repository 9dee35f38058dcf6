/*
 * Scale searches used by the K-quants: for a group of n values, find the
 * integer levels and the scale (and for the affine formats the offset)
 * that minimise a weighted squared (or absolute) error.
 *
 * They try a small grid of candidate scales around max / nmax, fit the
 * scale by least squares for each candidate's rounding, and keep the best.
 * The grid and the float operations follow ggml's make_qx_quants,
 * make_q3_quants and make_qkx2_quants step for step, because the K-quant
 * files roj writes must match llama-quantize's bytes; changing the order
 * of any sum or product changes the rounding of some groups.
 */
#include <math.h>

#include "quant/quant_impl.h"

/* Groups whose largest magnitude is below this are stored as zeros. */
#define GROUP_MAX_EPS 1e-15f

static int clamp_int(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Weight of element x under rmse_type 1..4 when no weights are given. */
static float implicit_weight(int rmse_type, float x)
{
    switch (rmse_type) {
    case 1: return x * x;
    case 2: return 1.0f;
    case 3: return fabsf(x);
    default: return sqrtf(fabsf(x));
    }
}

/*
 * Symmetric levels l in [-nmax, nmax - 1] with x ~ scale * l; levels[]
 * receives l + nmax. The scale's sign follows the element of largest
 * magnitude, so that element maps to -nmax, the level with the larger
 * range. rmse_type 0 rounds once with scale max / -nmax; other types
 * weight the error by the given weights or by implicit_weight() and try
 * 18 scales around it. Returns the scale (0 for an all-zero group).
 */
float quant_search_symmetric(int n, int nmax, const float *x, int8_t *levels,
                             int rmse_type, const float *weights)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++)
            levels[i] = 0;
        return 0.0f;
    }

    float iscale = (float)-nmax / max;
    if (rmse_type == 0) {
        for (int i = 0; i < n; i++) {
            int l = quant_nearest_int(iscale * x[i]);
            levels[i] = (int8_t)(nmax + clamp_int(l, -nmax, nmax - 1));
        }
        return 1 / iscale;
    }

    /* First rounding: least-squares scale for the levels of max/-nmax. */
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clamp_int(quant_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        levels[i] = (int8_t)(l + nmax);
        float w = weights ? weights[i] : implicit_weight(rmse_type, x[i]);
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;

    /* Grid: nmax + 0.1 * is for is = -9 .. 9. The fitted error is
     * sum(w x^2) - sumlx^2 / suml2, so a larger sumlx^2 / suml2 wins. */
    for (int is = -9; is <= 9; is++) {
        if (is == 0)
            continue;
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = quant_nearest_int(iscale * x[i]);
            l = clamp_int(l, -nmax, nmax - 1);
            float w = weights ? weights[i] : implicit_weight(rmse_type, x[i]);
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = quant_nearest_int(iscale * x[i]);
                levels[i] = (int8_t)(nmax + clamp_int(l, -nmax, nmax - 1));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/*
 * Q3_K groups: symmetric levels in [-nmax, nmax - 1] weighted by x^2, then
 * up to five passes of coordinate descent that move one element to the
 * level its residual fit prefers while that raises sumlx^2 / suml2.
 * levels[] receives l + nmax; returns the least-squares scale.
 */
float quant_search_q3(int n, int nmax, const float *x, int8_t *levels)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++)
            levels[i] = 0;
        return 0.0f;
    }

    float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clamp_int(quant_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        levels[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }

    for (int pass = 0; pass < 5; pass++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)levels[i];
            if (slx <= 0)
                continue;
            float sl2 = suml2 - w * (float)levels[i] * (float)levels[i];
            int new_l = quant_nearest_int(x[i] * sl2 / slx);
            new_l = clamp_int(new_l, -nmax, nmax - 1);
            if (new_l == levels[i])
                continue;
            slx += w * x[i] * (float)new_l;
            sl2 += w * (float)new_l * (float)new_l;
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                levels[i] = (int8_t)new_l;
                sumlx = slx;
                suml2 = sl2;
                n_changed++;
            }
        }
        if (!n_changed)
            break;
    }
    for (int i = 0; i < n; i++)
        levels[i] = (int8_t)(levels[i] + nmax);
    return sumlx / suml2;
}

/*
 * Affine levels l in [0, nmax] with x ~ scale * l - neg_min, for the
 * formats that store a scale and a min. The offset is at most 0 (the
 * formats store -min as an unsigned scale). Tries nstep + 1 scales
 * (rmin + rdelta * is + nmax) / (max - min), fits scale and offset by
 * weighted least squares for each, and keeps the fit with the smallest
 * weighted squared error, or absolute error when use_mad is set.
 * scratch holds n bytes. Returns the scale; *neg_min receives -offset.
 */
float quant_search_affine(int n, int nmax, const float *x,
                          const float *weights, uint8_t *levels,
                          float *neg_min, uint8_t *scratch, float rmin,
                          float rdelta, int nstep, int use_mad)
{
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min)
            min = x[i];
        if (x[i] > max)
            max = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0)
        min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++)
            levels[i] = 0;
        *neg_min = -min;
        return 0.0f;
    }

    /* Starting point: the full range split into nmax steps. */
    float iscale = (float)nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        int l = quant_nearest_int(iscale * (x[i] - min));
        levels[i] = (uint8_t)clamp_int(l, 0, nmax);
        float diff = scale * (float)levels[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    if (nstep < 1) {
        *neg_min = -min;
        return scale;
    }

    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = quant_nearest_int(iscale * (x[i] - min));
            l = clamp_int(l, 0, nmax);
            scratch[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * (float)l;
            sum_l2 += w * (float)l * (float)l;
            sum_xl += w * (float)l * x[i];
        }
        float det = sum_w * sum_l2 - sum_l * sum_l;
        if (!(det > 0))
            continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
        float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
        if (this_min > 0) {
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float error = 0;
        for (int i = 0; i < n; i++) {
            float diff = this_scale * (float)scratch[i] + this_min - x[i];
            diff = use_mad ? fabsf(diff) : diff * diff;
            error += weights[i] * diff;
        }
        if (error < best_error) {
            for (int i = 0; i < n; i++)
                levels[i] = scratch[i];
            best_error = error;
            scale = this_scale;
            min = this_min;
        }
    }
    *neg_min = -min;
    return scale;
}
