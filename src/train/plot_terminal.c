/* Line plots for a terminal, drawn with Unicode braille characters: each
 * character cell is a 2 x 4 grid of dots. */
#include "train/plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TERM_DEFAULT_W 60
#define TERM_DEFAULT_H 15
#define TERM_SIZE_MAX 1000
/* Markers of sparse series, by series index. */
static const char MARKERS[] = "ox+*#@%&";
#define N_MARKERS (sizeof MARKERS - 1)
/* ANSI foreground colours by series index: blue, yellow, green, red,
 * magenta, cyan. */
static const int ANSI_COLORS[] = {34, 33, 32, 31, 35, 36};
#define N_ANSI_COLORS (sizeof ANSI_COLORS / sizeof ANSI_COLORS[0])

/* Bit of the braille dot in column dx (0..1) and row dy (0..3) of a cell,
 * as Unicode numbers the dots: 1-2-3 down the left column, 4-5-6 down
 * the right, 7 and 8 along the bottom. */
static const uint8_t BRAILLE_BIT[4][2] = {
    {0x01, 0x08}, {0x02, 0x10}, {0x04, 0x20}, {0x40, 0x80}};

/* Contents of one character cell. */
typedef struct term_cell {
    uint8_t dots;   /* braille dot bits of all dense series */
    char marker;    /* marker of a sparse series, 0 when none */
    int series;     /* series that last drew here, for the colour */
} term_cell;

typedef struct term_chart {
    int width, height; /* cells */
    term_cell *cells;  /* (height, width) */
    plot_range range;
} term_chart;

/* Maps a point to dot coordinates; the top-left dot is (0, 0). */
static void to_dots(const term_chart *t, double x, double y_scaled, int *dx,
                    int *dy)
{
    const plot_range *r = &t->range;
    double fx = (x - r->xmin) / (r->xmax - r->xmin) * (2 * t->width - 1);
    double fy = (r->ymax - y_scaled) / (r->ymax - r->ymin) *
                (4 * t->height - 1);
    fx = fx < 0 ? 0 : (fx > 2 * t->width - 1 ? 2 * t->width - 1 : fx);
    fy = fy < 0 ? 0 : (fy > 4 * t->height - 1 ? 4 * t->height - 1 : fy);
    *dx = (int)lround(fx);
    *dy = (int)lround(fy);
}

static void set_dot(term_chart *t, int dx, int dy, int series)
{
    term_cell *c = &t->cells[(dy / 4) * t->width + dx / 2];
    c->dots |= BRAILLE_BIT[dy % 4][dx % 2];
    c->series = series;
}

/* Bresenham's line between two dots. */
static void draw_dot_line(term_chart *t, int x0, int y0, int x1, int y1,
                          int series)
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0);
    int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (;;) {
        set_dot(t, x0, y0, series);
        if (x0 == x1 && y0 == y1)
            break;
        int e2 = 2 * err;
        if (e2 >= dy) {
            err += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            err += dx;
            y0 += sy;
        }
    }
}

static int series_is_sparse(const term_chart *t, const plot_series *s)
{
    size_t n_ok = s->n - plot_count_skipped(s, t->range.log_y);
    return n_ok * 4 <= (size_t)t->width;
}

static void draw_series(term_chart *t, const plot_series *s, int index)
{
    int log_y = t->range.log_y;
    int sparse = series_is_sparse(t, s);
    int have_prev = 0, px = 0, py = 0;

    for (size_t i = 0; i < s->n; i++) {
        if (!plot_point_ok(s, i, log_y)) {
            have_prev = 0; /* break the line at a skipped point */
            continue;
        }
        int dx, dy;
        to_dots(t, s->x[i], plot_scale_y(s->y[i], log_y), &dx, &dy);
        if (have_prev)
            draw_dot_line(t, px, py, dx, dy, index);
        else
            set_dot(t, dx, dy, index);
        if (sparse) {
            term_cell *c = &t->cells[(dy / 4) * t->width + dx / 2];
            c->marker = MARKERS[index % N_MARKERS];
            c->series = index;
        }
        have_prev = 1;
        px = dx;
        py = dy;
    }
}

static void put_braille(FILE *f, uint8_t dots)
{
    unsigned cp = 0x2800u + dots;
    fputc(0xE0 | (int)(cp >> 12), f);
    fputc(0x80 | (int)((cp >> 6) & 0x3F), f);
    fputc(0x80 | (int)(cp & 0x3F), f);
}

static void put_cell(FILE *f, const term_cell *c, int color)
{
    if (!c->dots && !c->marker) {
        fputc(' ', f);
        return;
    }
    if (color)
        fprintf(f, "\033[%dm", ANSI_COLORS[c->series % N_ANSI_COLORS]);
    if (c->marker)
        fputc(c->marker, f);
    else
        put_braille(f, c->dots);
    if (color)
        fputs("\033[0m", f);
}

/* Prints the chart rows with the y range: top beside the first row and
 * bottom beside the last. */
static void print_rows(FILE *f, const term_chart *t, const char *top,
                       const char *bottom, int label_w, int color)
{
    for (int row = 0; row < t->height; row++) {
        const char *label = row == 0 ? top
                            : row == t->height - 1 ? bottom
                                                   : "";
        /* "┤" marks a labelled row, "│" the others. */
        fprintf(f, "%*s %s", label_w, label,
                *label ? "\u2524" : "\u2502");
        for (int col = 0; col < t->width; col++)
            put_cell(f, &t->cells[row * t->width + col], color);
        fputc('\n', f);
    }
}

static void print_x_axis(FILE *f, const term_chart *t, int label_w,
                         const char *xlabel)
{
    char left[32], right[32];
    plot_format_tick(t->range.xmin, left, sizeof left);
    plot_format_tick(t->range.xmax, right, sizeof right);

    fprintf(f, "%*s \u2514", label_w, "");
    for (int col = 0; col < t->width; col++)
        fputs("\u2500", f);
    fputc('\n', f);

    int gap = t->width + 1 - (int)strlen(left) - (int)strlen(right);
    fprintf(f, "%*s %s%*s%s\n", label_w, "", left, gap > 1 ? gap : 1, "",
            right);
    if (xlabel) {
        int pad = (t->width + 1 - (int)strlen(xlabel)) / 2;
        fprintf(f, "%*s %*s%s\n", label_w, "", pad > 0 ? pad : 0, "", xlabel);
    }
}

static void print_legend(FILE *f, const term_chart *t, const plot_series *s,
                         size_t n_series, int label_w, int color)
{
    for (size_t k = 0; k < n_series; k++) {
        term_cell sample = {0x12, 0, (int)k}; /* a short dash of dots */
        if (s[k].x && s[k].y && series_is_sparse(t, &s[k])) {
            sample.dots = 0;
            sample.marker = MARKERS[k % N_MARKERS];
        }
        fprintf(f, "%*s  ", label_w, "");
        put_cell(f, &sample, color);
        fprintf(f, " %s", s[k].name ? s[k].name : "");
        size_t skipped = plot_count_skipped(&s[k], t->range.log_y);
        if (skipped)
            fprintf(f, " (%zu skipped)", skipped);
        fputc('\n', f);
    }
}

void plot_print_terminal(FILE *f, const plot_options *opts,
                         const plot_series *s, size_t n_series)
{
    plot_options o = opts ? *opts : (plot_options){0};
    term_chart t;

    if (!f)
        return;
    if (n_series > 0 && !s)
        n_series = 0;
    t.width = o.width > 0 ? o.width : TERM_DEFAULT_W;
    t.height = o.height > 0 ? o.height : TERM_DEFAULT_H;
    if (t.width < 2)
        t.width = 2;
    if (t.height < 2)
        t.height = 2;
    if (t.width > TERM_SIZE_MAX)
        t.width = TERM_SIZE_MAX;
    if (t.height > TERM_SIZE_MAX)
        t.height = TERM_SIZE_MAX;
    int color = o.color < 0 ? isatty(fileno(f)) : o.color != 0;

    t.cells = calloc((size_t)t.width * (size_t)t.height, sizeof *t.cells);
    if (!t.cells) {
        fprintf(f, "(chart not drawn: out of memory)\n");
        return;
    }
    t.range = plot_range_of(s, n_series, o.log_y);
    for (size_t k = 0; k < n_series; k++)
        if (s[k].x && s[k].y)
            draw_series(&t, &s[k], (int)k);

    char top[32], bottom[32];
    double ymax = o.log_y ? pow(10.0, t.range.ymax) : t.range.ymax;
    double ymin = o.log_y ? pow(10.0, t.range.ymin) : t.range.ymin;
    /* The y range is not a tick value, so 4 significant digits do. */
    snprintf(top, sizeof top, "%.4g", ymax);
    snprintf(bottom, sizeof bottom, "%.4g", ymin);
    int label_w = (int)(strlen(top) > strlen(bottom) ? strlen(top)
                                                      : strlen(bottom));

    if (o.title)
        fprintf(f, "%*s %s%s\n", label_w, "", o.title,
                o.log_y ? " (log y)" : "");
    if (o.ylabel)
        fprintf(f, "%*s\n", label_w + 1 + (int)strlen(o.ylabel), o.ylabel);
    print_rows(f, &t, top, bottom, label_w, color);
    print_x_axis(f, &t, label_w, o.xlabel);
    print_legend(f, &t, s, n_series, label_w, color);
    free(t.cells);
}

void plot_terminal(FILE *f, const char *title, const plot_series *s,
                   size_t n_series, int width, int height)
{
    plot_options o = {0};
    o.title = title;
    o.width = width;
    o.height = height;
    o.color = -1;
    plot_print_terminal(f, &o, s, n_series);
}
