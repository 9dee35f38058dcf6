/* Data ranges, axis scales and tick positions shared by the PNG and the
 * terminal plots. */
#include "train/plot.h"

#include <float.h>
#include <math.h>

int plot_point_ok(const plot_series *s, size_t i, int log_y)
{
    double x = s->x[i], y = s->y[i];
    if (!isfinite(x) || !isfinite(y))
        return 0;
    return !log_y || y > 0.0;
}

size_t plot_count_skipped(const plot_series *s, int log_y)
{
    size_t skipped = 0;
    if (!s->x || !s->y)
        return s->n;
    for (size_t i = 0; i < s->n; i++)
        skipped += !plot_point_ok(s, i, log_y);
    return skipped;
}

double plot_scale_y(double y, int log_y)
{
    return log_y ? log10(y) : y;
}

/* Widens [*lo, *hi] when it is empty or not finite, so that every later
 * division by hi - lo is safe. */
static void widen_axis(double *lo, double *hi, double empty_half_width)
{
    if (!(*lo <= *hi)) {
        *lo = 0.0;
        *hi = 1.0;
    }
    if (!isfinite(*hi - *lo)) {
        *lo = -DBL_MAX / 4;
        *hi = DBL_MAX / 4;
    }
    if (*hi - *lo <= 1e-9 * fmax(fabs(*lo), fabs(*hi))) {
        double half = fabs(*lo) * 0.05;
        if (half < empty_half_width)
            half = empty_half_width;
        *lo -= half;
        *hi += half;
    }
}

plot_range plot_range_of(const plot_series *s, size_t n_series, int log_y)
{
    plot_range r = {INFINITY, -INFINITY, INFINITY, -INFINITY, log_y};

    for (size_t k = 0; k < n_series; k++) {
        if (!s[k].x || !s[k].y)
            continue;
        for (size_t i = 0; i < s[k].n; i++) {
            if (!plot_point_ok(&s[k], i, log_y))
                continue;
            double y = plot_scale_y(s[k].y[i], log_y);
            r.xmin = fmin(r.xmin, s[k].x[i]);
            r.xmax = fmax(r.xmax, s[k].x[i]);
            r.ymin = fmin(r.ymin, y);
            r.ymax = fmax(r.ymax, y);
        }
    }
    widen_axis(&r.xmin, &r.xmax, 0.5);
    widen_axis(&r.ymin, &r.ymax, log_y ? 0.25 : 0.5);

    /* 4% headroom above and below, so no curve runs along the frame. */
    double pad = (r.ymax - r.ymin) * 0.04;
    if (isfinite(r.ymin - pad) && isfinite(r.ymax + pad)) {
        r.ymin -= pad;
        r.ymax += pad;
    }
    return r;
}

/* Linear ticks: the smallest step of 1, 2 or 5 times a power of ten that
 * fits at most max_ticks multiples of itself into [lo, hi]. */
static size_t linear_ticks(double lo, double hi, double *ticks,
                           size_t max_ticks)
{
    double base = pow(10.0, floor(log10((hi - lo) / (double)max_ticks)));
    static const double mult[] = {1, 2, 5, 10, 20, 50, 100};
    double step = 0.0;
    for (size_t m = 0; m < sizeof mult / sizeof mult[0]; m++) {
        step = mult[m] * base;
        double count = floor(hi / step) - ceil(lo / step) + 1.0;
        if (count <= (double)max_ticks)
            break;
    }
    if (!(step > 0.0) || !isfinite(step))
        return 0;

    size_t n = 0;
    for (double i = ceil(lo / step); i * step <= hi && n < max_ticks; i++) {
        double v = i * step;
        /* i * step is off by rounding; keep 0 exact so it prints "0". */
        ticks[n++] = fabs(v) < step * 1e-9 ? 0.0 : v;
    }
    return n;
}

/* Log ticks over [lo, hi] in log10 units: whole decades, thinned to fit,
 * with 2 and 5 in between when the range spans under two decades. A
 * range inside one decade uses linear ticks of the values instead. */
static size_t log_ticks(double lo, double hi, double *ticks,
                        size_t max_ticks)
{
    size_t n = 0;
    if (hi - lo < 1.0) {
        double values[16];
        size_t cap = max_ticks < 16 ? max_ticks : 16;
        size_t count = linear_ticks(pow(10.0, lo), pow(10.0, hi), values,
                                    cap);
        for (size_t i = 0; i < count; i++)
            if (values[i] > 0.0)
                ticks[n++] = log10(values[i]);
        return n;
    }
    if (hi - lo < 2.0) {
        static const double mult[] = {1, 2, 5};
        for (double d = floor(lo); d <= ceil(hi); d++) {
            for (size_t m = 0; m < 3; m++) {
                double v = d + log10(mult[m]);
                if (v >= lo - 1e-12 && v <= hi + 1e-12 && n < max_ticks)
                    ticks[n++] = v;
            }
        }
        return n;
    }
    double first = ceil(lo - 1e-12), last = floor(hi + 1e-12);
    double stride = ceil((last - first + 1.0) / (double)max_ticks);
    if (stride < 1.0)
        stride = 1.0;
    for (double d = first; d <= last && n < max_ticks; d += stride)
        ticks[n++] = d;
    return n;
}

size_t plot_ticks(double lo, double hi, int log, double *ticks,
                  size_t max_ticks)
{
    if (max_ticks == 0 || !(hi > lo) || !isfinite(hi - lo))
        return 0;
    return log ? log_ticks(lo, hi, ticks, max_ticks)
               : linear_ticks(lo, hi, ticks, max_ticks);
}

void plot_format_tick(double v, char *buf, size_t size)
{
    if (v == 0.0) {
        snprintf(buf, size, "0");
        return;
    }
    double a = fabs(v);
    if (a >= 1e-3 && a < 1e6)
        snprintf(buf, size, "%.6g", v);
    else
        snprintf(buf, size, "%.2g", v);
}
