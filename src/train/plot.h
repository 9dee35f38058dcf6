/*
 * Line plots of training curves: a PNG image (libpng, 8-bit RGB) or a
 * chart of Unicode braille characters for a terminal.
 *
 * Points whose x or y is NaN or infinite, and points with y <= 0 on a
 * logarithmic y axis, are skipped: the line breaks there and the legend
 * shows how many points of the series were skipped. No input makes these
 * functions crash, including series with no points at all.
 *
 * All functions are thread-safe; they share no state.
 */
#ifndef ROJ_TRAIN_PLOT_H
#define ROJ_TRAIN_PLOT_H

#include <stdint.h>
#include <stdio.h>

#include "roj/roj.h"

/* One curve. x and y are (n) arrays, borrowed for the call. */
typedef struct plot_series {
    const char *name;
    const double *x, *y;
    size_t n;
} plot_series;

/* Settings shared by both outputs. Zero fields take the defaults. */
typedef struct plot_options {
    const char *title;  /* NULL: no title */
    const char *xlabel; /* NULL: no axis label */
    const char *ylabel;
    int log_y;          /* nonzero: logarithmic y axis */
    int width, height;  /* PNG: pixels (800 x 480); terminal: cells (60 x 15) */
    int color;          /* terminal only: 1 ANSI colours, 0 plain, -1 when
                           the stream is a terminal */
} plot_options;

/* Writes a PNG line plot with axes, tick labels, grid, legend and title to
 * path through path.tmp and a rename, so a reader never sees half a file.
 * Returns ROJ_ERR_INVALID_ARG for a size outside 160..8192 pixels, or
 * ROJ_ERR_IO / ROJ_ERR_NOMEM with the path in the message. */
roj_status plot_write_png(const char *path, const plot_options *opts,
                          const plot_series *s, size_t n_series);

/* Same as plot_write_png at 800 x 480 with a linear y axis. */
roj_status plot_png(const char *path, const char *title, const char *xlabel,
                    const char *ylabel, const plot_series *s,
                    size_t n_series);

/* Prints a braille chart of width x height character cells (each cell is
 * 2 x 4 dots) to f, with the y range at the left edge, the x range below
 * and a legend. Every series is a braille line. Series with at most one
 * point per four columns, such as validation curves, also get a marker
 * character ("ox+*#@%&" by series index) in the cell of each point, so
 * the series stay apart without colour. */
void plot_print_terminal(FILE *f, const plot_options *opts,
                         const plot_series *s, size_t n_series);

/* Same as plot_print_terminal with only a title and a linear y axis;
 * width and height of 0 take the defaults. Colours are used when f is a
 * terminal. */
void plot_terminal(FILE *f, const char *title, const plot_series *s,
                   size_t n_series, int width, int height);

/*
 * Helpers shared by the plot files.
 */

/* Data range over all drawable points, already widened so that it is
 * never empty. With log_y, ymin and ymax are log10 of the data. */
typedef struct plot_range {
    double xmin, xmax, ymin, ymax;
    int log_y;
} plot_range;

/* Returns nonzero when point i of s is drawn under log_y. */
int plot_point_ok(const plot_series *s, size_t i, int log_y);

/* Counts the points of s that are skipped under log_y. */
size_t plot_count_skipped(const plot_series *s, int log_y);

/* Computes the range of all drawable points, [0, 1] on an axis without
 * any. A single value v is widened by max(5% of |v|, 0.5), or 0.25 under
 * log_y, each way. The y range then gets 4% headroom at both ends. */
plot_range plot_range_of(const plot_series *s, size_t n_series, int log_y);

/* Returns y on the plotted scale: log10(y) under log_y, else y. */
double plot_scale_y(double y, int log_y);

/* Picks at most max_ticks "nice" ticks inside [lo, hi] into ticks and
 * returns their count: multiples of 1, 2 or 5 times a power of ten. Under
 * log, lo, hi and the ticks are log10 values, and the ticks are decades,
 * with 2 and 5 times them added when the range spans under two decades.
 * Returns 0 for an empty or infinite range. */
size_t plot_ticks(double lo, double hi, int log, double *ticks,
                  size_t max_ticks);

/* Formats a tick value compactly ("0.5", "1200", "1e-05") into buf. */
void plot_format_tick(double v, char *buf, size_t size);

/* An 8-bit RGB image, (height, width, 3) bytes in rgb. */
typedef struct plot_canvas {
    int width, height;
    uint8_t *rgb;
} plot_canvas;

/* Colour of a pixel. */
typedef struct plot_rgb {
    uint8_t r, g, b;
} plot_rgb;

/* Fills the rectangle [x0, x1) x [y0, y1), clipped to the canvas. */
void plot_fill_rect(plot_canvas *c, int x0, int y0, int x1, int y1,
                    plot_rgb color);

/* Draws text with its top-left corner at (x, y), each font pixel scale x
 * scale pixels. vertical != 0 turns it 90 degrees counter-clockwise, so it
 * reads upward from (x, y) as its bottom-left corner. */
void plot_draw_text(plot_canvas *c, int x, int y, const char *text,
                    int scale, int vertical, plot_rgb color);

/* Returns the width in pixels of text drawn at scale. */
int plot_text_width(const char *text, int scale);

/* Raises coverage, (height, width) floats in [0, 1], to the anti-aliased
 * coverage of a segment line_width pixels wide, clipped to the rectangle
 * clip = {x0, y0, x1, y1} with x1 and y1 exclusive. */
void plot_cover_segment(float *coverage, int width, int height,
                        const int clip[4], double x0, double y0, double x1,
                        double y1, double line_width);

/* Raises coverage to that of a filled disc of radius r at (x, y). */
void plot_cover_disc(float *coverage, int width, int height,
                     const int clip[4], double x, double y, double r);

/* Blends color into the canvas with coverage as the opacity. */
void plot_blend(plot_canvas *c, const float *coverage, plot_rgb color);

/* Width and height of one glyph of the built-in font, in pixels. */
#define PLOT_GLYPH_W 5
#define PLOT_GLYPH_H 9
/* Rows above the baseline: the height of capitals and digits. */
#define PLOT_CAP_H 7

/* Returns the PLOT_GLYPH_H rows of the glyph for c, bit 4 the leftmost
 * pixel, or a box for characters outside printable ASCII. */
const uint8_t *plot_glyph(unsigned char c);

#endif
