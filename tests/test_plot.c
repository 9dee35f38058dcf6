/* Loss-curve plots: PNG files read back with libpng, the terminal chart
 * against golden output, NaN handling, ticks and the font. */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train/plot.h"
#include "testutil.h"

/* A decoded PNG, 8-bit RGB. */
typedef struct image {
    int width, height;
    uint8_t *rgb;
} image;

static image read_png(const char *path)
{
    png_image png;
    memset(&png, 0, sizeof png);
    png.version = PNG_IMAGE_VERSION;
    assert_true(png_image_begin_read_from_file(&png, path));
    /* The file itself must be 8-bit RGB without alpha. */
    assert_int_equal(png.format, PNG_FORMAT_RGB);
    png.format = PNG_FORMAT_RGB;

    image img = {(int)png.width, (int)png.height, NULL};
    img.rgb = malloc(PNG_IMAGE_SIZE(png));
    assert_non_null(img.rgb);
    assert_true(png_image_finish_read(&png, NULL, img.rgb, 0, NULL));
    return img;
}

/* Pixels of the first series colour: clearly more blue than red. */
static int is_curve_pixel(const image *img, int x, int y)
{
    const uint8_t *p = img->rgb + ((size_t)y * (size_t)img->width + x) * 3;
    return p[2] > 150 && p[2] > p[0] + 80;
}

static int column_has_curve(const image *img, int x)
{
    for (int y = 0; y < img->height; y++)
        if (is_curve_pixel(img, x, y))
            return 1;
    return 0;
}

/* Mean row of the curve pixels in columns [x0, x1), -1 when none. */
static double curve_mean_row(const image *img, int x0, int x1)
{
    double sum = 0.0;
    size_t count = 0;
    for (int x = x0; x < x1; x++) {
        for (int y = 0; y < img->height; y++) {
            if (is_curve_pixel(img, x, y)) {
                sum += y;
                count++;
            }
        }
    }
    return count ? sum / (double)count : -1.0;
}

static const char *tmp_path(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
    return path;
}

/* A rising line y = x: the PNG has the default size, the curve crosses
 * every middle column and climbs from left to right. */
static void png_diagonal_line(void **state)
{
    (void)state;
    double x[101], y[101];
    for (int i = 0; i <= 100; i++) {
        x[i] = i;
        y[i] = i;
    }
    plot_series s = {"rising", x, y, 101};
    const char *path = tmp_path("diagonal.png");
    assert_int_equal(plot_png(path, "Diagonal", "step", "value", &s, 1),
                     ROJ_OK);

    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_not_equal(access(tmp, F_OK), 0);

    image img = read_png(path);
    assert_int_equal(img.width, 800);
    assert_int_equal(img.height, 480);
    /* The corner outside the plot area is background. */
    assert_int_equal(img.rgb[0], 255);
    assert_int_equal(img.rgb[1], 255);
    assert_int_equal(img.rgb[2], 255);
    /* The legend sits in a corner, so the middle columns show only the
     * curve. */
    for (int col = 240; col < 560; col++)
        assert_true(column_has_curve(&img, col));
    double left = curve_mean_row(&img, 240, 300);
    double right = curve_mean_row(&img, 500, 560);
    assert_true(left > 0.0);
    assert_true(right > 0.0);
    /* Rows grow downward, so a rising curve has smaller rows on the
     * right. The windows are about 37 units of x apart, about 130 rows
     * at this size. */
    assert_true(left - right > 80.0);
    free(img.rgb);
}

/* NaN and infinite points break the line: no curve pixel in the middle of
 * the gap, curve pixels on both sides, and the file is still written. */
static void png_nan_gap(void **state)
{
    (void)state;
    double x[101], y[101];
    for (int i = 0; i <= 100; i++) {
        x[i] = i;
        y[i] = 0.5 + 0.001 * i;
    }
    for (int i = 40; i <= 60; i++)
        y[i] = i % 2 ? NAN : INFINITY;
    x[70] = NAN;
    plot_series s = {"loss", x, y, 101};
    assert_int_equal(plot_count_skipped(&s, 0), 22);

    const char *path = tmp_path("gap.png");
    assert_int_equal(plot_png(path, NULL, NULL, NULL, &s, 1), ROJ_OK);
    image img = read_png(path);
    assert_int_equal(img.width, 800);
    for (int col = 390; col < 430; col++)
        assert_false(column_has_curve(&img, col));
    for (int col = 200; col < 260; col++)
        assert_true(column_has_curve(&img, col));
    for (int col = 600; col < 640; col++)
        assert_true(column_has_curve(&img, col));
    free(img.rgb);
}

/* Log scale, size options, a second series and series without drawable
 * points. */
static void png_options_and_empty(void **state)
{
    (void)state;
    double x[4] = {1, 2, 3, 4};
    double loss[4] = {3.0, 0.3, -1.0, 0.03};
    double none[4] = {NAN, NAN, NAN, NAN};
    plot_series s[3] = {{"loss", x, loss, 4},
                        {"nothing", x, none, 4},
                        {"empty", NULL, NULL, 0}};
    assert_int_equal(plot_count_skipped(&s[0], 1), 1);
    assert_int_equal(plot_count_skipped(&s[0], 0), 0);

    plot_options o = {0};
    o.title = "Log loss";
    o.log_y = 1;
    o.width = 320;
    o.height = 200;
    const char *path = tmp_path("log.png");
    assert_int_equal(plot_write_png(path, &o, s, 3), ROJ_OK);
    image img = read_png(path);
    assert_int_equal(img.width, 320);
    assert_int_equal(img.height, 200);
    free(img.rgb);

    /* Nothing drawable at all still gives a valid image with axes. */
    assert_int_equal(plot_write_png(path, NULL, &s[1], 2), ROJ_OK);
    img = read_png(path);
    assert_int_equal(img.width, 800);
    free(img.rgb);
    assert_int_equal(plot_write_png(path, NULL, NULL, 0), ROJ_OK);
}

static void png_errors(void **state)
{
    (void)state;
    double x[2] = {0, 1};
    plot_series s = {"a", x, x, 2};
    assert_int_equal(plot_png("/nonexistent-dir/roj/plot.png", NULL, NULL,
                              NULL, &s, 1),
                     ROJ_ERR_IO);
    assert_non_null(strstr(roj_last_error(), "/nonexistent-dir/roj/plot.png"));

    plot_options o = {0};
    o.width = 20;
    assert_int_equal(plot_write_png(tmp_path("small.png"), &o, &s, 1),
                     ROJ_ERR_INVALID_ARG);
    assert_non_null(strstr(roj_last_error(), "20 x 480"));
    assert_int_not_equal(access(tmp_path("small.png"), F_OK), 0);
}

/* Prints into a string; the caller frees it. */
static char *terminal_output(const plot_options *o, const plot_series *s,
                             size_t n_series)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    assert_non_null(f);
    plot_print_terminal(f, o, s, n_series);
    assert_int_equal(fclose(f), 0);
    return text;
}

/* y = x at x = 0..3 on 4 x 2 cells (8 x 8 dots). The y range gets 4%
 * headroom, [-0.12, 3.12], so the points land on dot rows 7, 5, 2, 0 and
 * dot columns 0, 2, 5, 7, joined by Bresenham lines. */
static void terminal_golden_diagonal(void **state)
{
    (void)state;
    double x[4] = {0, 1, 2, 3};
    plot_series s = {"diag", x, x, 4};
    plot_options o = {0};
    o.title = "rise";
    o.width = 4;
    o.height = 2;
    o.color = 0;
    char *text = terminal_output(&o, &s, 1);
    const char *expected =
        "      rise\n"
        " 3.12 \u2524  \u2860\u280a\n"
        "-0.12 \u2524\u2860\u280a  \n"
        "      \u2514\u2500\u2500\u2500\u2500\n"
        "      0   3\n"
        "       \u2812 diag\n";
    assert_string_equal(text, expected);
    free(text);
}

/* A sparse series gets markers. The NaN point is counted and breaks the
 * line, so the middle row shows only the two markers. A constant 1 gets
 * the range [0.5, 1.5] plus 4% headroom. Colour codes appear only when
 * asked for. */
static void terminal_markers_and_nan(void **state)
{
    (void)state;
    double x[3] = {0, 1, 2};
    double y[3] = {1, NAN, 1};
    plot_series s = {"val", x, y, 3};
    plot_options o = {0};
    o.width = 20;
    o.height = 3;
    o.color = 0;
    char *text = terminal_output(&o, &s, 1);
    const char *expected =
        "1.54 \u2524                    \n"
        "     \u2502o                  o\n"
        "0.46 \u2524                    \n"
        "     \u2514\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500"
        "\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\n"
        "     0                   2\n"
        "      o val (1 skipped)\n";
    assert_string_equal(text, expected);
    free(text);

    o.color = 1;
    text = terminal_output(&o, &s, 1);
    assert_non_null(strstr(text, "\033[34mo\033[0m"));
    free(text);
}

/* Degenerate input: no series, NULL arrays, a negative width. */
static void terminal_degenerate(void **state)
{
    (void)state;
    char *text = terminal_output(NULL, NULL, 0);
    assert_non_null(strstr(text, "\u2514"));
    free(text);

    plot_series s = {"none", NULL, NULL, 5};
    plot_options o = {0};
    o.width = -3;
    o.color = 0;
    text = terminal_output(&o, &s, 1);
    assert_non_null(strstr(text, "none (5 skipped)"));
    free(text);
}

static void ticks_linear_and_log(void **state)
{
    (void)state;
    double t[8];
    size_t n = plot_ticks(0.0, 1.0, 0, t, 8);
    assert_int_equal(n, 6);
    for (size_t i = 0; i < n; i++)
        assert_float_equal(t[i], 0.2 * (double)i, 1e-12);

    n = plot_ticks(-0.13, 2.4, 0, t, 8);
    assert_int_equal(n, 5);
    assert_float_equal(t[0], 0.0, 0.0);
    assert_float_equal(t[4], 2.0, 1e-12);

    /* Five decades, 1e-3 to 10. */
    n = plot_ticks(-3.2, 1.1, 1, t, 8);
    assert_int_equal(n, 5);
    assert_float_equal(t[0], -3.0, 1e-12);
    assert_float_equal(t[4], 1.0, 1e-12);

    /* Under two decades: 1, 2 and 5 times powers of ten. */
    n = plot_ticks(log10(0.15), log10(6.0), 1, t, 8);
    assert_int_equal(n, 5);
    assert_float_equal(t[0], log10(0.2), 1e-12);
    assert_float_equal(t[1], log10(0.5), 1e-12);
    assert_float_equal(t[4], log10(5.0), 1e-12);

    assert_int_equal(plot_ticks(1.0, 1.0, 0, t, 8), 0);
    assert_int_equal(plot_ticks(0.0, INFINITY, 0, t, 8), 0);
    assert_int_equal(plot_ticks(NAN, 1.0, 1, t, 8), 0);
}

static void ticks_format(void **state)
{
    (void)state;
    char buf[32];
    plot_format_tick(0.0, buf, sizeof buf);
    assert_string_equal(buf, "0");
    plot_format_tick(0.5, buf, sizeof buf);
    assert_string_equal(buf, "0.5");
    plot_format_tick(1200.0, buf, sizeof buf);
    assert_string_equal(buf, "1200");
    plot_format_tick(20000.0, buf, sizeof buf);
    assert_string_equal(buf, "20000");
    plot_format_tick(0.1 * 3.0, buf, sizeof buf);
    assert_string_equal(buf, "0.3");
    plot_format_tick(1e-5, buf, sizeof buf);
    assert_string_equal(buf, "1e-05");
    plot_format_tick(-2.5e7, buf, sizeof buf);
    assert_string_equal(buf, "-2.5e+07");
}

static void range_widens_constant(void **state)
{
    (void)state;
    double x[1] = {5}, y[1] = {2};
    plot_series s = {"one", x, y, 1};
    plot_range r = plot_range_of(&s, 1, 0);
    assert_true(r.xmin < 5.0);
    assert_true(r.xmax > 5.0);
    assert_true(r.ymin < 2.0);
    assert_true(r.ymax > 2.0);

    r = plot_range_of(NULL, 0, 1);
    assert_float_equal(r.xmin, 0.0, 0.0);
    assert_float_equal(r.xmax, 1.0, 0.0);
    assert_true(r.ymax > r.ymin);
}

static void font_covers_ascii(void **state)
{
    (void)state;
    for (int c = 33; c < 127; c++) {
        const uint8_t *rows = plot_glyph((unsigned char)c);
        int lit = 0;
        for (int r = 0; r < PLOT_GLYPH_H; r++) {
            assert_int_equal(rows[r] & ~0x1f, 0);
            lit += rows[r] != 0;
        }
        assert_true(lit > 0);
    }
    const uint8_t *space = plot_glyph(' ');
    for (int r = 0; r < PLOT_GLYPH_H; r++)
        assert_int_equal(space[r], 0);
    /* Distinct glyphs for characters that are easy to mix up. */
    assert_memory_not_equal(plot_glyph('0'), plot_glyph('O'), PLOT_GLYPH_H);
    assert_memory_not_equal(plot_glyph('1'), plot_glyph('l'), PLOT_GLYPH_H);
    assert_memory_not_equal(plot_glyph('g'), plot_glyph('9'), PLOT_GLYPH_H);
    assert_memory_equal(plot_glyph(0x01), plot_glyph(0xff), PLOT_GLYPH_H);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(png_diagonal_line),
        cmocka_unit_test(png_nan_gap),
        cmocka_unit_test(png_options_and_empty),
        cmocka_unit_test(png_errors),
        cmocka_unit_test(terminal_golden_diagonal),
        cmocka_unit_test(terminal_markers_and_nan),
        cmocka_unit_test(terminal_degenerate),
        cmocka_unit_test(ticks_linear_and_log),
        cmocka_unit_test(ticks_format),
        cmocka_unit_test(range_widens_constant),
        cmocka_unit_test(font_covers_ascii),
    };
    return test_run_group(tests, NULL, NULL);
}
