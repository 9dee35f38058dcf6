/* Line plots as PNG files: layout, axes, curves, legend and the atomic
 * file write through libpng. */
#include "train/plot.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"

#define IMAGE_DEFAULT_W 800
#define IMAGE_DEFAULT_H 480
#define IMAGE_SIZE_MIN 160
#define IMAGE_SIZE_MAX 8192
#define MAX_TICKS 8
/* A series with at most one point per this many pixels of plot width gets
 * a disc at each point, so sparse validation points stay visible. */
#define MARKER_SPACING 8

static const plot_rgb COLOR_BACKGROUND = {255, 255, 255};
static const plot_rgb COLOR_GRID = {228, 228, 228};
static const plot_rgb COLOR_FRAME = {70, 70, 70};
static const plot_rgb COLOR_TEXT = {30, 30, 30};

/* Series colours, chosen to stay apart from each other on white. */
static const plot_rgb PALETTE[] = {
    {30, 100, 200}, {230, 110, 20}, {40, 150, 60},  {200, 40, 40},
    {120, 80, 180}, {130, 90, 60},  {210, 90, 170}, {100, 100, 100},
};
#define PALETTE_SIZE (sizeof PALETTE / sizeof PALETTE[0])

/* Plot area in canvas pixels; x1 and y1 are exclusive. */
typedef struct plot_area {
    int x0, y0, x1, y1;
} plot_area;

typedef struct png_layout {
    plot_canvas canvas;
    plot_area area;
    plot_range range;
    int scale; /* font pixel size */
} png_layout;

static double map_x(const png_layout *l, double x)
{
    const plot_range *r = &l->range;
    double w = (double)(l->area.x1 - l->area.x0 - 1);
    return l->area.x0 + 0.5 + (x - r->xmin) / (r->xmax - r->xmin) * w;
}

static double map_y(const png_layout *l, double y_scaled)
{
    const plot_range *r = &l->range;
    double h = (double)(l->area.y1 - l->area.y0 - 1);
    return l->area.y1 - 0.5 - (y_scaled - r->ymin) / (r->ymax - r->ymin) * h;
}

/* Widest y tick label, to size the left margin. */
static int y_label_width(const png_layout *l, const double *ticks,
                         size_t n_ticks)
{
    int widest = 0;
    for (size_t i = 0; i < n_ticks; i++) {
        char text[32];
        double v = l->range.log_y ? pow(10.0, ticks[i]) : ticks[i];
        plot_format_tick(v, text, sizeof text);
        int w = plot_text_width(text, l->scale);
        if (w > widest)
            widest = w;
    }
    return widest;
}

static void draw_axes(png_layout *l, const plot_options *o,
                      const double *xt, size_t n_xt, const double *yt,
                      size_t n_yt)
{
    plot_canvas *c = &l->canvas;
    plot_area a = l->area;
    int s = l->scale;
    int text_h = PLOT_GLYPH_H * s;
    char text[32];

    /* Grid lines, then the frame on top of them. */
    for (size_t i = 0; i < n_xt; i++) {
        int x = (int)map_x(l, xt[i]);
        plot_fill_rect(c, x, a.y0, x + 1, a.y1, COLOR_GRID);
    }
    for (size_t i = 0; i < n_yt; i++) {
        int y = (int)map_y(l, yt[i]);
        plot_fill_rect(c, a.x0, y, a.x1, y + 1, COLOR_GRID);
    }
    plot_fill_rect(c, a.x0 - 1, a.y0 - 1, a.x1 + 1, a.y0, COLOR_FRAME);
    plot_fill_rect(c, a.x0 - 1, a.y1, a.x1 + 1, a.y1 + 1, COLOR_FRAME);
    plot_fill_rect(c, a.x0 - 1, a.y0, a.x0, a.y1, COLOR_FRAME);
    plot_fill_rect(c, a.x1, a.y0, a.x1 + 1, a.y1, COLOR_FRAME);

    /* Tick marks and labels. */
    for (size_t i = 0; i < n_xt; i++) {
        int x = (int)map_x(l, xt[i]);
        plot_fill_rect(c, x, a.y1 + 1, x + 1, a.y1 + 1 + 2 * s, COLOR_FRAME);
        plot_format_tick(xt[i], text, sizeof text);
        int w = plot_text_width(text, s);
        plot_draw_text(c, x - w / 2, a.y1 + 4 * s, text, s, 0, COLOR_TEXT);
    }
    for (size_t i = 0; i < n_yt; i++) {
        int y = (int)map_y(l, yt[i]);
        plot_fill_rect(c, a.x0 - 1 - 2 * s, y, a.x0 - 1, y + 1, COLOR_FRAME);
        double v = l->range.log_y ? pow(10.0, yt[i]) : yt[i];
        plot_format_tick(v, text, sizeof text);
        int w = plot_text_width(text, s);
        plot_draw_text(c, a.x0 - 4 * s - w, y - PLOT_CAP_H * s / 2, text, s,
                       0, COLOR_TEXT);
    }

    /* Title above the area, axis labels outside the tick labels. */
    if (o->title) {
        int w = plot_text_width(o->title, s + 1);
        plot_draw_text(c, (c->width - w) / 2, 4 * s, o->title, s + 1, 0,
                       COLOR_TEXT);
    }
    if (o->xlabel) {
        int w = plot_text_width(o->xlabel, s);
        plot_draw_text(c, (a.x0 + a.x1 - w) / 2, a.y1 + 6 * s + text_h,
                       o->xlabel, s, 0, COLOR_TEXT);
    }
    if (o->ylabel) {
        int w = plot_text_width(o->ylabel, s);
        plot_draw_text(c, 3 * s, (a.y0 + a.y1 + w) / 2, o->ylabel, s, 1,
                       COLOR_TEXT);
    }
}

/* Adds the curve of s to coverage: segments between consecutive drawable
 * points, so a skipped point leaves a gap, plus discs for sparse series
 * and for points with no drawable neighbour. */
static void cover_series(const png_layout *l, const plot_series *s,
                         float *coverage)
{
    const int clip[4] = {l->area.x0, l->area.y0, l->area.x1, l->area.y1};
    int w = l->canvas.width, h = l->canvas.height;
    size_t n_ok = s->n - plot_count_skipped(s, l->range.log_y);
    int plot_w = l->area.x1 - l->area.x0;
    int sparse = n_ok * MARKER_SPACING <= (size_t)plot_w;
    double line_w = n_ok > (size_t)plot_w ? 1.2 : 2.0;
    double disc_r = 2.0 + l->scale;

    for (size_t i = 0; i < s->n; i++) {
        if (!plot_point_ok(s, i, l->range.log_y))
            continue;
        double x = map_x(l, s->x[i]);
        double y = map_y(l, plot_scale_y(s->y[i], l->range.log_y));
        int prev_ok = i > 0 && plot_point_ok(s, i - 1, l->range.log_y);
        int next_ok = i + 1 < s->n && plot_point_ok(s, i + 1,
                                                      l->range.log_y);
        if (next_ok) {
            double x1 = map_x(l, s->x[i + 1]);
            double y1 = map_y(l, plot_scale_y(s->y[i + 1], l->range.log_y));
            plot_cover_segment(coverage, w, h, clip, x, y, x1, y1, line_w);
        }
        if (sparse || (!prev_ok && !next_ok))
            plot_cover_disc(coverage, w, h, clip, x, y, disc_r);
    }
}

static void legend_text(const plot_series *s, int log_y, char *buf,
                        size_t size)
{
    size_t skipped = plot_count_skipped(s, log_y);
    const char *name = s->name ? s->name : "";
    if (skipped)
        snprintf(buf, size, "%s (%zu skipped)", name, skipped);
    else
        snprintf(buf, size, "%s", name);
}

/* Sums coverage inside a rectangle, to find where the legend hides the
 * least of the curves. */
static double coverage_in(const float *coverage, int width, plot_area r)
{
    double sum = 0.0;
    for (int y = r.y0; y < r.y1; y++)
        for (int x = r.x0; x < r.x1; x++)
            sum += coverage[(size_t)y * (size_t)width + (size_t)x];
    return sum;
}

/* Draws the legend in the corner of the plot area where the curves
 * (their summed coverage) are thinnest. */
static void draw_legend(png_layout *l, const plot_series *s,
                        size_t n_series, const float *all_coverage)
{
    int sc = l->scale;
    int row_h = (PLOT_GLYPH_H + 3) * sc;
    int swatch_w = 12 * sc;
    int text_w = 0;
    char text[160];

    if (n_series == 0)
        return;
    for (size_t k = 0; k < n_series; k++) {
        legend_text(&s[k], l->range.log_y, text, sizeof text);
        int w = plot_text_width(text, sc);
        if (w > text_w)
            text_w = w;
    }
    int box_w = 4 * sc + swatch_w + 3 * sc + text_w + 4 * sc;
    int box_h = (int)n_series * row_h + 3 * sc;
    plot_area a = l->area;
    int margin = 6 * sc;
    if (box_w > a.x1 - a.x0 - 2 * margin || box_h > a.y1 - a.y0 - 2 * margin)
        return; /* NOTE: no legend when it does not fit inside the area. */

    plot_area corners[4] = {
        {a.x1 - margin - box_w, a.y0 + margin, a.x1 - margin,
         a.y0 + margin + box_h},
        {a.x0 + margin, a.y0 + margin, a.x0 + margin + box_w,
         a.y0 + margin + box_h},
        {a.x1 - margin - box_w, a.y1 - margin - box_h, a.x1 - margin,
         a.y1 - margin},
        {a.x0 + margin, a.y1 - margin - box_h, a.x0 + margin + box_w,
         a.y1 - margin},
    };
    plot_area box = corners[0];
    double best = coverage_in(all_coverage, l->canvas.width, corners[0]);
    for (int i = 1; i < 4; i++) {
        double v = coverage_in(all_coverage, l->canvas.width, corners[i]);
        if (v < best) {
            best = v;
            box = corners[i];
        }
    }

    plot_canvas *c = &l->canvas;
    plot_fill_rect(c, box.x0, box.y0, box.x1, box.y1, COLOR_FRAME);
    plot_fill_rect(c, box.x0 + 1, box.y0 + 1, box.x1 - 1, box.y1 - 1,
                   COLOR_BACKGROUND);
    for (size_t k = 0; k < n_series; k++) {
        int y = box.y0 + 3 * sc + (int)k * row_h;
        int x = box.x0 + 4 * sc;
        plot_rgb color = PALETTE[k % PALETTE_SIZE];
        int mid = y + PLOT_CAP_H * sc / 2;
        plot_fill_rect(c, x, mid - sc, x + swatch_w, mid + sc, color);
        legend_text(&s[k], l->range.log_y, text, sizeof text);
        plot_draw_text(c, x + swatch_w + 3 * sc, y, text, sc, 0, COLOR_TEXT);
    }
}

/* Lays out the margins from the tick labels and the text that is set. */
static void layout_area(png_layout *l, const plot_options *o,
                        const double *yt, size_t n_yt)
{
    int s = l->scale;
    int text_h = PLOT_GLYPH_H * s;
    int left = 6 * s + y_label_width(l, yt, n_yt) + 2 * s;
    if (o->ylabel)
        left += text_h + 4 * s;
    int top = o->title ? 8 * s + (s + 1) * PLOT_GLYPH_H : 6 * s;
    int bottom = 6 * s + text_h + 4 * s;
    if (o->xlabel)
        bottom += text_h + 3 * s;
    /* Room for half of the last x tick label. */
    int right = 12 * s + 3 * plot_text_width("0", s);

    l->area.x0 = left;
    l->area.y0 = top;
    l->area.x1 = l->canvas.width - right;
    l->area.y1 = l->canvas.height - bottom;
    if (l->area.x1 - l->area.x0 < 16)
        l->area.x1 = l->area.x0 + 16;
    if (l->area.y1 - l->area.y0 < 16)
        l->area.y1 = l->area.y0 + 16;
}

/* Renders the whole plot into l->canvas. Returns ROJ_ERR_NOMEM when the
 * coverage buffers cannot be allocated. */
static roj_status render(png_layout *l, const plot_options *o,
                         const plot_series *s, size_t n_series)
{
    size_t n_pixels = (size_t)l->canvas.width * (size_t)l->canvas.height;
    double xt[MAX_TICKS], yt[MAX_TICKS];
    float *coverage = NULL, *all = NULL;

    l->range = plot_range_of(s, n_series, o->log_y);
    size_t n_yt = plot_ticks(l->range.ymin, l->range.ymax, o->log_y, yt,
                             MAX_TICKS);
    layout_area(l, o, yt, n_yt);
    int max_x_ticks = (l->area.x1 - l->area.x0) / (80 * l->scale) + 2;
    size_t n_xt = plot_ticks(l->range.xmin, l->range.xmax, 0, xt,
                             max_x_ticks < MAX_TICKS ? (size_t)max_x_ticks
                                                     : MAX_TICKS);

    memset(l->canvas.rgb, 255, n_pixels * 3);
    draw_axes(l, o, xt, n_xt, yt, n_yt);

    coverage = malloc(n_pixels * sizeof *coverage);
    all = calloc(n_pixels, sizeof *all);
    if (!coverage || !all) {
        free(coverage);
        free(all);
        return roj_error(ROJ_ERR_NOMEM, "plot: out of memory for a %d x %d "
                         "image", l->canvas.width, l->canvas.height);
    }
    for (size_t k = 0; k < n_series; k++) {
        if (!s[k].x || !s[k].y)
            continue;
        memset(coverage, 0, n_pixels * sizeof *coverage);
        cover_series(l, &s[k], coverage);
        plot_blend(&l->canvas, coverage, PALETTE[k % PALETTE_SIZE]);
        for (size_t i = 0; i < n_pixels; i++)
            all[i] += coverage[i];
    }
    draw_legend(l, s, n_series, all);
    free(coverage);
    free(all);
    return ROJ_OK;
}

/* Encodes the canvas as PNG into fp. libpng reports errors by longjmp, so
 * nothing that changes after setjmp is kept in a local. Returns 0 on
 * success. */
static int encode_png(FILE *fp, const plot_canvas *c, png_bytep *rows)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL,
                                              NULL, NULL);
    if (!png)
        return -1;
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)c->width, (png_uint_32)c->height, 8,
                 PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

/* Writes the canvas to tmp, then renames it to path. */
static roj_status save_png(const char *path, const plot_canvas *c)
{
    size_t tmp_size = strlen(path) + 5;
    char *tmp = malloc(tmp_size);
    png_bytep *rows = malloc((size_t)c->height * sizeof *rows);
    roj_status st = ROJ_OK;
    FILE *fp = NULL;

    if (!tmp || !rows) {
        st = roj_error(ROJ_ERR_NOMEM, "%s: out of memory", path);
        goto free_buffers;
    }
    snprintf(tmp, tmp_size, "%s.tmp", path);
    for (int y = 0; y < c->height; y++)
        rows[y] = c->rgb + (size_t)y * (size_t)c->width * 3;

    if (!(fp = fopen(tmp, "wb"))) {
        st = roj_error(ROJ_ERR_IO, "%s: cannot create: %s", tmp,
                       strerror(errno));
        goto free_buffers;
    }
    errno = 0;
    int failed = encode_png(fp, c, rows);
    if (fflush(fp) != 0)
        failed = 1;
    if (fclose(fp) != 0 || failed) {
        st = roj_error(ROJ_ERR_IO, "%s: PNG write failed: %s", tmp,
                       errno ? strerror(errno) : "libpng error");
        goto remove_tmp;
    }
    if (rename(tmp, path) != 0) {
        st = roj_error(ROJ_ERR_IO, "cannot rename %s to %s: %s", tmp, path,
                       strerror(errno));
        goto remove_tmp;
    }
    goto free_buffers;

remove_tmp:
    unlink(tmp);
free_buffers:
    free(tmp);
    free(rows);
    return st;
}

roj_status plot_write_png(const char *path, const plot_options *opts,
                          const plot_series *s, size_t n_series)
{
    plot_options o = opts ? *opts : (plot_options){0};
    png_layout l;
    roj_status st;

    if (!path || (n_series > 0 && !s))
        return roj_error(ROJ_ERR_INVALID_ARG, "plot_write_png: NULL path or "
                         "series");
    if (o.width == 0)
        o.width = IMAGE_DEFAULT_W;
    if (o.height == 0)
        o.height = IMAGE_DEFAULT_H;
    if (o.width < IMAGE_SIZE_MIN || o.width > IMAGE_SIZE_MAX ||
        o.height < IMAGE_SIZE_MIN || o.height > IMAGE_SIZE_MAX)
        return roj_error(ROJ_ERR_INVALID_ARG, "%s: image size %d x %d is "
                         "invalid; use %d to %d pixels per side", path,
                         o.width, o.height, IMAGE_SIZE_MIN, IMAGE_SIZE_MAX);

    memset(&l, 0, sizeof l);
    l.canvas.width = o.width;
    l.canvas.height = o.height;
    /* Font pixels grow with the image so text stays readable: 2 at the
     * default 800 x 480. */
    l.scale = (o.width < o.height ? o.width : o.height) / 240;
    if (l.scale < 1)
        l.scale = 1;
    l.canvas.rgb = malloc((size_t)o.width * (size_t)o.height * 3);
    if (!l.canvas.rgb)
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory for a %d x %d "
                         "image", path, o.width, o.height);
    if ((st = render(&l, &o, s, n_series)) == ROJ_OK)
        st = save_png(path, &l.canvas);
    else
        roj_error_wrap(st, "%s", path);
    free(l.canvas.rgb);
    return st;
}

roj_status plot_png(const char *path, const char *title, const char *xlabel,
                    const char *ylabel, const plot_series *s,
                    size_t n_series)
{
    plot_options o = {0};
    o.title = title;
    o.xlabel = xlabel;
    o.ylabel = ylabel;
    return plot_write_png(path, &o, s, n_series);
}
