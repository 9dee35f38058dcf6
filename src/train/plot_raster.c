/* Drawing on an RGB canvas: rectangles, bitmap text and anti-aliased
 * lines and discs through a coverage buffer. */
#include "train/plot.h"

#include <math.h>
#include <string.h>

/* Advance from one glyph to the next, in font pixels. */
#define GLYPH_ADVANCE (PLOT_GLYPH_W + 1)

static void put_pixel(plot_canvas *c, int x, int y, plot_rgb color)
{
    if (x < 0 || y < 0 || x >= c->width || y >= c->height)
        return;
    uint8_t *p = c->rgb + ((size_t)y * (size_t)c->width + (size_t)x) * 3;
    p[0] = color.r;
    p[1] = color.g;
    p[2] = color.b;
}

void plot_fill_rect(plot_canvas *c, int x0, int y0, int x1, int y1,
                    plot_rgb color)
{
    if (x0 < 0)
        x0 = 0;
    if (y0 < 0)
        y0 = 0;
    if (x1 > c->width)
        x1 = c->width;
    if (y1 > c->height)
        y1 = c->height;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            put_pixel(c, x, y, color);
}

int plot_text_width(const char *text, int scale)
{
    size_t n = text ? strlen(text) : 0;
    if (n == 0)
        return 0;
    return (int)(n * GLYPH_ADVANCE - 1) * scale;
}

void plot_draw_text(plot_canvas *c, int x, int y, const char *text,
                    int scale, int vertical, plot_rgb color)
{
    if (!text)
        return;
    for (size_t i = 0; text[i]; i++) {
        const uint8_t *rows = plot_glyph((unsigned char)text[i]);
        int offset = (int)i * GLYPH_ADVANCE * scale;
        for (int gy = 0; gy < PLOT_GLYPH_H; gy++) {
            for (int gx = 0; gx < PLOT_GLYPH_W; gx++) {
                if (!(rows[gy] & (0x10 >> gx)))
                    continue;
                /* Upright: x grows along the text. Vertical: the text
                 * runs up from (x, y) and the glyph tops face left. */
                int px = vertical ? x + gy * scale : x + offset + gx * scale;
                int py = vertical ? y - offset - (gx + 1) * scale
                                  : y + gy * scale;
                plot_fill_rect(c, px, py, px + scale, py + scale, color);
            }
        }
    }
}

/* Clips the box [x0, x1] x [y0, y1] (inclusive, in pixels) to clip. */
static int clip_box(const int clip[4], double bx0, double by0, double bx1,
                    double by1, int box[4])
{
    if (!(bx1 >= clip[0] && bx0 < clip[2] && by1 >= clip[1] &&
          by0 < clip[3]))
        return 0;
    box[0] = bx0 < clip[0] ? clip[0] : (int)bx0;
    box[1] = by0 < clip[1] ? clip[1] : (int)by0;
    box[2] = bx1 >= clip[2] ? clip[2] - 1 : (int)bx1;
    box[3] = by1 >= clip[3] ? clip[3] - 1 : (int)by1;
    return 1;
}

static void raise_coverage(float *coverage, int width, int x, int y,
                           double value)
{
    float *p = &coverage[(size_t)y * (size_t)width + (size_t)x];
    if (value > 1.0)
        value = 1.0;
    if (value > *p)
        *p = (float)value;
}

void plot_cover_segment(float *coverage, int width, int height,
                        const int clip[4], double x0, double y0, double x1,
                        double y1, double line_width)
{
    int box[4];
    int local_clip[4] = {clip[0] > 0 ? clip[0] : 0,
                         clip[1] > 0 ? clip[1] : 0,
                         clip[2] < width ? clip[2] : width,
                         clip[3] < height ? clip[3] : height};
    double half = line_width / 2.0;
    double reach = half + 1.0;

    if (!isfinite(x0) || !isfinite(y0) || !isfinite(x1) || !isfinite(y1))
        return;
    if (!clip_box(local_clip, fmin(x0, x1) - reach, fmin(y0, y1) - reach,
                  fmax(x0, x1) + reach, fmax(y0, y1) + reach, box))
        return;

    /* Coverage of a pixel falls off linearly over the pixel at the edge of
     * the stroke: distance d from the pixel centre to the segment gives
     * half + 0.5 - d, clamped to [0, 1]. */
    double dx = x1 - x0, dy = y1 - y0;
    double len2 = dx * dx + dy * dy;
    for (int y = box[1]; y <= box[3]; y++) {
        for (int x = box[0]; x <= box[2]; x++) {
            double px = x + 0.5 - x0, py = y + 0.5 - y0;
            double t = len2 > 0.0 ? (px * dx + py * dy) / len2 : 0.0;
            t = t < 0.0 ? 0.0 : (t > 1.0 ? 1.0 : t);
            double ex = px - t * dx, ey = py - t * dy;
            double value = half + 0.5 - sqrt(ex * ex + ey * ey);
            if (value > 0.0)
                raise_coverage(coverage, width, x, y, value);
        }
    }
}

void plot_cover_disc(float *coverage, int width, int height,
                     const int clip[4], double x, double y, double r)
{
    plot_cover_segment(coverage, width, height, clip, x, y, x, y, 2.0 * r);
}

void plot_blend(plot_canvas *c, const float *coverage, plot_rgb color)
{
    size_t n = (size_t)c->width * (size_t)c->height;
    for (size_t i = 0; i < n; i++) {
        float a = coverage[i];
        if (a <= 0.0f)
            continue;
        uint8_t *p = c->rgb + i * 3;
        p[0] = (uint8_t)lrintf((float)p[0] * (1.0f - a) + (float)color.r * a);
        p[1] = (uint8_t)lrintf((float)p[1] * (1.0f - a) + (float)color.g * a);
        p[2] = (uint8_t)lrintf((float)p[2] * (1.0f - a) + (float)color.b * a);
    }
}
