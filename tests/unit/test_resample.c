/* Resampler behaviour: flat colours stay exact, edges stay put, alpha does not bleed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "grid.h"
#include "image/reader.h"
#include "render/kernels.h"
#include "render/render.h"
#include "resample_ref.h"
#include "testutil.h"

#include <tiffio.h>

#include <math.h>
#include <stdio.h>
#include <time.h>

static uint32_t rng_state = 12345u;

static uint8_t rnd8(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (uint8_t)(rng_state >> 24);
}

static uint8_t *px(const struct ts_image *img, uint32_t x, uint32_t y)
{
    return ts_image_row(img, y) + (size_t)x * img->channels;
}

static void fill(struct ts_image *img, const uint8_t *color)
{
    for (uint32_t y = 0; y < img->height; y++)
        for (uint32_t x = 0; x < img->width; x++)
            memcpy(px(img, x, y), color, img->channels);
}

static void make(struct ts_image *img, uint32_t w, uint32_t h, uint32_t ch)
{
    assert_int_equal(ts_image_alloc(img, w, h, ch), TS_OK);
}

static void test_flat_color_downscale_is_exact(void **state)
{
    (void)state;
    static const uint8_t colors[4][4] = {{77}, {77, 200}, {10, 140, 250}, {200, 33, 99, 180}};
    for (uint32_t ch = 1; ch <= 4; ch++) {
        struct ts_image src, dst;
        make(&src, 97, 61, ch);
        fill(&src, colors[ch - 1]);
        assert_int_equal(render_resize(&src, 13, 7, &dst), TS_OK);
        assert_int_equal(dst.width, 13);
        assert_int_equal(dst.height, 7);
        assert_int_equal(dst.channels, ch);
        for (uint32_t y = 0; y < 7; y++)
            for (uint32_t x = 0; x < 13; x++)
                assert_memory_equal(px(&dst, x, y), colors[ch - 1], ch);
        ts_image_free(&src);
        ts_image_free(&dst);
    }
}

static void test_half_and_half_keeps_both_colors_away_from_edge(void **state)
{
    (void)state;
    const uint8_t left[3] = {220, 30, 40}, right[3] = {20, 60, 230};
    struct ts_image src, dst;
    make(&src, 200, 100, 3);
    for (uint32_t y = 0; y < 100; y++)
        for (uint32_t x = 0; x < 200; x++)
            memcpy(px(&src, x, y), x < 100 ? left : right, 3);
    assert_int_equal(render_resize(&src, 50, 25, &dst), TS_OK);
    for (uint32_t y = 0; y < 25; y++) {
        /* Lanczos3 at 4x reaches 3 output pixels either side of the edge at x = 25. */
        for (uint32_t x = 0; x < 21; x++)
            assert_memory_equal(px(&dst, x, y), left, 3);
        for (uint32_t x = 29; x < 50; x++)
            assert_memory_equal(px(&dst, x, y), right, 3);
        /* The edge itself lands between the two output pixels that straddle it. */
        assert_true(px(&dst, 24, y)[0] > 180);
        assert_true(px(&dst, 25, y)[0] < 60);
    }
    ts_image_free(&src);
    ts_image_free(&dst);
}

static void test_upscale_single_pixel_fills_output(void **state)
{
    (void)state;
    const uint8_t c[4] = {1, 128, 254, 90};
    struct ts_image src, dst;
    make(&src, 1, 1, 4);
    fill(&src, c);
    assert_int_equal(render_resize(&src, 9, 5, &dst), TS_OK);
    assert_int_equal(dst.width, 9);
    assert_int_equal(dst.height, 5);
    for (uint32_t y = 0; y < 5; y++)
        for (uint32_t x = 0; x < 9; x++)
            assert_memory_equal(px(&dst, x, y), c, 4);
    ts_image_free(&src);
    ts_image_free(&dst);
}

static void test_upscale_doubles_a_ramp_smoothly(void **state)
{
    (void)state;
    struct ts_image src, dst;
    make(&src, 40, 3, 1);
    for (uint32_t y = 0; y < 3; y++)
        for (uint32_t x = 0; x < 40; x++)
            px(&src, x, y)[0] = (uint8_t)(4 * x + 20);
    assert_int_equal(render_resize(&src, 80, 6, &dst), TS_OK);
    /* Output centre x+0.5 sits at source (x+0.5)/2, where the ramp is 4*((x+0.5)/2 - 0.5)+20. */
    for (uint32_t x = 8; x < 72; x++) {
        double want = 4.0 * ((x + 0.5) / 2.0 - 0.5) + 20.0;
        assert_true(abs((int)px(&dst, x, 2)[0] - (int)(want + 0.5)) <= 1);
    }
    ts_image_free(&src);
    ts_image_free(&dst);
}

static void test_scale_one_is_an_exact_copy(void **state)
{
    (void)state;
    for (uint32_t ch = 1; ch <= 4; ch++) {
        struct ts_image src, dst;
        make(&src, 37, 23, ch);
        for (uint32_t y = 0; y < 23; y++)
            for (uint32_t i = 0; i < 37 * ch; i++)
                ts_image_row(&src, y)[i] = rnd8();
        assert_int_equal(render_resize(&src, 37, 23, &dst), TS_OK);
        for (uint32_t y = 0; y < 23; y++)
            assert_memory_equal(ts_image_row(&dst, y), ts_image_row(&src, y), 37 * ch);
        ts_image_free(&dst);
        /* A whole-pixel offset at scale 1 is a crop, also exact. */
        assert_int_equal(render_resample_rect(&src, 5, 3, 20, 11, 20, 11, &dst), TS_OK);
        for (uint32_t y = 0; y < 11; y++)
            assert_memory_equal(ts_image_row(&dst, y), px(&src, 5, y + 3), 20 * ch);
        ts_image_free(&src);
        ts_image_free(&dst);
    }
}

static void test_rect_with_fractional_origin_samples_between_pixels(void **state)
{
    (void)state;
    struct ts_image src, dst;
    make(&src, 100, 4, 1);
    for (uint32_t y = 0; y < 4; y++)
        for (uint32_t x = 0; x < 100; x++)
            px(&src, x, y)[0] = (uint8_t)(2 * x);
    /* Starting half a pixel in, each output centre falls midway between two source pixels,
     * so a symmetric filter gives exactly their average on a ramp. */
    assert_int_equal(render_resample_rect(&src, 10.5, 0, 20, 4, 20, 4, &dst), TS_OK);
    assert_int_equal(dst.width, 20);
    for (uint32_t x = 0; x < 20; x++)
        assert_true(abs((int)px(&dst, x, 1)[0] - (int)(2 * (10 + x) + 1)) <= 1);
    ts_image_free(&dst);
    /* A quarter-pixel shift moves every sample a quarter of the way to its right neighbour. */
    assert_int_equal(render_resample_rect(&src, 30.25, 0, 40, 4, 40, 4, &dst), TS_OK);
    for (uint32_t x = 0; x < 40; x++)
        assert_true(abs((int)px(&dst, x, 2)[0] - (int)(2 * (30 + x) + 0.5)) <= 1);
    ts_image_free(&dst);
    ts_image_free(&src);
}

static void test_neighbouring_rects_meet_without_a_shift(void **state)
{
    (void)state;
    /* Two halves of a 3x downscale, cut at a fractional source position, must continue the
     * ramp across the seam: the right tile's first pixel is one step after the left's last. */
    struct ts_image src, a, b;
    make(&src, 300, 6, 1);
    for (uint32_t y = 0; y < 6; y++)
        for (uint32_t x = 0; x < 300; x++)
            px(&src, x, y)[0] = (uint8_t)(x * 255 / 299);
    assert_int_equal(render_resample_rect(&src, 0, 0, 151.5, 6, 50, 2, &a), TS_OK);
    assert_int_equal(render_resample_rect(&src, 151.5, 0, 148.5, 6, 49, 2, &b), TS_OK);
    int step = (int)px(&a, 45, 0)[0] - (int)px(&a, 44, 0)[0];
    int seam = (int)px(&b, 0, 0)[0] - (int)px(&a, 49, 0)[0];
    assert_true(step >= 2 && step <= 3);
    assert_true(abs(seam - step) <= 1);
    ts_image_free(&a);
    ts_image_free(&b);
    ts_image_free(&src);
}

static void test_one_by_one_output_is_the_centre_of_a_symmetric_ramp(void **state)
{
    (void)state;
    struct ts_image src, dst;
    make(&src, 64, 64, 3);
    for (uint32_t y = 0; y < 64; y++)
        for (uint32_t x = 0; x < 64; x++) {
            uint8_t *p = px(&src, x, y);
            p[0] = (uint8_t)(4 * x);
            p[1] = (uint8_t)(4 * y);
            p[2] = 99;
        }
    assert_int_equal(render_resize(&src, 1, 1, &dst), TS_OK);
    assert_int_equal(dst.width, 1);
    assert_int_equal(dst.height, 1);
    assert_true(abs((int)px(&dst, 0, 0)[0] - 126) <= 1);
    assert_true(abs((int)px(&dst, 0, 0)[1] - 126) <= 1);
    assert_int_equal(px(&dst, 0, 0)[2], 99);
    ts_image_free(&src);
    ts_image_free(&dst);
}

static void test_transparent_pixels_do_not_bleed_color(void **state)
{
    (void)state;
    const uint8_t hidden[4] = {255, 0, 0, 0}, green[4] = {0, 200, 0, 255};
    for (uint32_t ch = 2; ch <= 4; ch += 2) {
        struct ts_image src, dst;
        make(&src, 64, 32, ch);
        for (uint32_t y = 0; y < 32; y++)
            for (uint32_t x = 0; x < 64; x++) {
                uint8_t *p = px(&src, x, y);
                if (ch == 4) {
                    memcpy(p, x < 30 ? hidden : green, 4);
                } else {
                    p[0] = x < 30 ? 255 : 40;
                    p[1] = x < 30 ? 0 : 255;
                }
            }
        assert_int_equal(render_resize(&src, 21, 10, &dst), TS_OK);
        int partial = 0;
        for (uint32_t y = 0; y < 10; y++)
            for (uint32_t x = 0; x < 21; x++) {
                const uint8_t *p = px(&dst, x, y);
                uint8_t a = p[ch - 1];
                if (a == 0)
                    continue;
                partial += a < 250;
                if (ch == 4) {
                    assert_true(p[0] <= 1);
                    assert_true(abs((int)p[1] - 200) <= 1);
                    assert_true(p[2] <= 1);
                } else {
                    assert_true(abs((int)p[0] - 40) <= 1);
                }
            }
        assert_true(partial > 0); /* the edge really was blended */
        assert_int_equal(px(&dst, 0, 0)[ch - 1], 0);
        assert_int_equal(px(&dst, 20, 9)[ch - 1], 255);
        ts_image_free(&src);
        ts_image_free(&dst);
    }
}

static void test_large_ratio_downscale_averages(void **state)
{
    (void)state;
    struct ts_image src, dst;
    const uint8_t flat[3] = {12, 130, 241};
    make(&src, 1000, 1000, 3);
    fill(&src, flat);
    assert_int_equal(render_resize(&src, 3, 3, &dst), TS_OK);
    for (uint32_t y = 0; y < 3; y++)
        for (uint32_t x = 0; x < 3; x++)
            assert_memory_equal(px(&dst, x, y), flat, 3);
    ts_image_free(&dst);
    /* Uniform noise averages to its mean, (0+255)/2, over a third of the image per pixel. */
    for (uint32_t y = 0; y < 1000; y++)
        for (uint32_t i = 0; i < 3000; i++)
            ts_image_row(&src, y)[i] = rnd8();
    assert_int_equal(render_resize(&src, 3, 2, &dst), TS_OK);
    assert_int_equal(dst.width, 3);
    assert_int_equal(dst.height, 2);
    for (uint32_t y = 0; y < 2; y++)
        for (uint32_t i = 0; i < 9; i++)
            assert_true(abs((int)ts_image_row(&dst, y)[i] - 128) <= 4);
    ts_image_free(&src);
    ts_image_free(&dst);
}

/* Smooth random content: random values on a coarse lattice, bilinearly interpolated. */
static void make_smooth(struct ts_image *img, uint32_t w, uint32_t h, uint32_t ch)
{
    enum { LAT = 9 };
    uint8_t lattice[LAT][LAT][4];
    for (int j = 0; j < LAT; j++)
        for (int i = 0; i < LAT; i++)
            for (int c = 0; c < 4; c++)
                lattice[j][i][c] = rnd8();
    make(img, w, h, ch);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            double fx = (double)x * (LAT - 1) / (w - 1), fy = (double)y * (LAT - 1) / (h - 1);
            int i = fx >= LAT - 1 ? LAT - 2 : (int)fx, j = fy >= LAT - 1 ? LAT - 2 : (int)fy;
            double tx = fx - i, ty = fy - j;
            for (uint32_t c = 0; c < ch; c++) {
                double v = (1 - ty) * ((1 - tx) * lattice[j][i][c] + tx * lattice[j][i + 1][c]) +
                           ty * ((1 - tx) * lattice[j + 1][i][c] + tx * lattice[j + 1][i + 1][c]);
                px(img, x, y)[c] = (uint8_t)(v + 0.5);
            }
        }
}

static void test_half_size_matches_box_average(void **state)
{
    (void)state;
    struct ts_image src, dst;
    make_smooth(&src, 256, 192, 3);
    assert_int_equal(render_resize(&src, 128, 96, &dst), TS_OK);
    long total = 0;
    int worst = 0;
    for (uint32_t y = 0; y < 96; y++)
        for (uint32_t x = 0; x < 128; x++)
            for (uint32_t c = 0; c < 3; c++) {
                int box = (px(&src, 2 * x, 2 * y)[c] + px(&src, 2 * x + 1, 2 * y)[c] +
                           px(&src, 2 * x, 2 * y + 1)[c] + px(&src, 2 * x + 1, 2 * y + 1)[c] + 2) /
                          4;
                int d = abs(box - (int)px(&dst, x, y)[c]);
                total += d;
                worst = d > worst ? d : worst;
            }
    double mean = (double)total / (128.0 * 96.0 * 3.0);
    assert_true(mean < 1.0);
    assert_true(worst <= 4);
    ts_image_free(&src);
    ts_image_free(&dst);
}

static int read_file(const char *path, struct ts_image *img)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0, got;
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            uint8_t *nb = realloc(buf, cap);
            if (!nb)
                break;
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    int rc = tu_decode(buf, n, img);
    free(buf);
    return rc;
}

static double psnr(const struct ts_image *a, const struct ts_image *b)
{
    double sq = 0.0;
    size_t n = (size_t)a->width * a->channels;
    for (uint32_t y = 0; y < a->height; y++)
        for (size_t i = 0; i < n; i++) {
            double d = (double)ts_image_row(a, y)[i] - ts_image_row(b, y)[i];
            sq += d * d;
        }
    sq /= (double)n * a->height;
    return sq == 0.0 ? INFINITY : 10.0 * log10(255.0 * 255.0 / sq);
}

/* libvips' default resize (box shrink, then Lanczos3) is the quality bar on a real photo. */
static void test_downscale_matches_vips_lanczos3_on_a_photo(void **state)
{
    (void)state;
    const char *photo = TESSERA_TEST_DATA "/retina-1411x1411.jpg";
    const double scales[] = {0.5, 0.37, 0.2, 0.1, 0.043};
    struct ts_image src, ref, dst;
    char cmd[2048], out[1024];

    assert_int_equal(tu_mkdirs(TESSERA_TEST_WORK), 0);
    assert_int_equal(read_file(photo, &src), 0);
    for (size_t i = 0; i < sizeof scales / sizeof scales[0]; i++) {
        snprintf(out, sizeof out, "%s/vips-%zu.png", TESSERA_TEST_WORK, i);
        snprintf(cmd, sizeof cmd, "vips resize '%s' '%s' %.6f", photo, out, scales[i]);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(read_file(out, &ref), 0);
        assert_int_equal(ref.channels, 3);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(render_resize(&src, ref.width, ref.height, &dst), TS_OK);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        struct ts_image old;
        assert_int_equal(ref_resize(&src, ref.width, ref.height, &old), TS_OK);
        double p = psnr(&dst, &ref), po = psnr(&old, &ref);
        printf("# %ux%u -> %ux%u: PSNR %.2f dB against vips (float reference %.2f), %.2f ms\n",
               src.width, src.height, dst.width, dst.height, p, po,
               (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
        assert_true(p >= 35.0);
        assert_true(p >= po - 0.1);
        ts_image_free(&ref);
        ts_image_free(&dst);
        ts_image_free(&old);
    }
    ts_image_free(&src);
}

/* Photo-like content for quality checks: smooth colour, hard edges and grain, with alpha (when
 * present) varying smoothly over 32..255 so unpremultiplied colour stays well conditioned. */
static void make_photo(struct ts_image *img, uint32_t w, uint32_t h, uint32_t ch)
{
    make_smooth(img, w, h, ch);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            uint8_t *p = px(img, x, y);
            int edge = ((x / 37 + y / 23) & 1) ? 40 : -40;
            for (uint32_t c = 0; c < ch; c++) {
                if ((ch == 2 || ch == 4) && c == ch - 1) {
                    p[c] = (uint8_t)(32 + p[c] * 223 / 255);
                    continue;
                }
                int v = p[c] + edge + (rnd8() >> 4) - 8;
                p[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
}

/* Lanczos3 in double with no pre-shrink and no rounding until the end: the ideal both the
 * float reference and the fixed-point resampler approximate. Same geometry (pixel centres,
 * taps folded onto the edge) and premultiplied alpha. */
static void lanczos_windows(uint32_t src_n, double s0, double len, uint32_t n, long *first,
                            long *last, double **weights)
{
    double scale = len / n, fs = scale > 1.0 ? scale : 1.0, support = 3.0 * fs;
    for (uint32_t i = 0; i < n; i++) {
        double center = s0 + (i + 0.5) * scale, total = 0.0;
        long lo = (long)floor(center - support), hi = (long)ceil(center + support);
        first[i] = lo < 0 ? 0 : lo;
        last[i] = hi > (long)src_n - 1 ? (long)src_n - 1 : hi;
        weights[i] = calloc((size_t)(last[i] - first[i] + 1), sizeof(double));
        assert_non_null(weights[i]);
        for (long j = lo; j <= hi; j++) {
            double x = (j + 0.5 - center) / fs, v = 1.0;
            if (x <= -3.0 || x >= 3.0)
                v = 0.0;
            else if (x != 0.0)
                v = 3.0 * sin(M_PI * x) * sin(M_PI * x / 3.0) / (M_PI * M_PI * x * x);
            long k = j < first[i] ? first[i] : j > last[i] ? last[i] : j;
            weights[i][k - first[i]] += v;
            total += v;
        }
        for (long k = 0; k <= last[i] - first[i]; k++)
            weights[i][k] /= total;
    }
}

/* Writes w x h x channels doubles, clamped to [0, 255] but not rounded: the 8-bit rounding
 * every implementation must do is then part of the error measured against it, so PSNR against
 * this shows what an implementation adds on top (about 58.9 dB is rounding alone). */
static double *exact_resample(const struct ts_image *src, double sx, double sy, double sw,
                              double sh, uint32_t w, uint32_t h)
{
    uint32_t ch = src->channels, sW = src->width, sH = src->height;
    bool alpha = ch == 2 || ch == 4;
    long *fx = calloc(w, sizeof *fx), *lx = calloc(w, sizeof *lx);
    long *fy = calloc(h, sizeof *fy), *ly = calloc(h, sizeof *ly);
    double **wx = calloc(w, sizeof *wx), **wy = calloc(h, sizeof *wy);
    double *mid = calloc((size_t)sH * w * ch, sizeof *mid);
    assert_true(fx && lx && fy && ly && wx && wy && mid);
    lanczos_windows(sW, sx, sw, w, fx, lx, wx);
    lanczos_windows(sH, sy, sh, h, fy, ly, wy);
    for (uint32_t y = 0; y < sH; y++)
        for (uint32_t i = 0; i < w; i++)
            for (long k = fx[i]; k <= lx[i]; k++) {
                const uint8_t *p = px(src, (uint32_t)k, y);
                double a = alpha ? p[ch - 1] / 255.0 : 1.0;
                for (uint32_t c = 0; c < ch; c++) {
                    double v = alpha && c == ch - 1 ? p[c] : p[c] * a;
                    mid[((size_t)y * w + i) * ch + c] += wx[i][k - fx[i]] * v;
                }
            }
    double *dst = calloc((size_t)w * h * ch, sizeof *dst);
    assert_non_null(dst);
    for (uint32_t j = 0; j < h; j++)
        for (uint32_t i = 0; i < w; i++) {
            double acc[4] = {0, 0, 0, 0};
            for (long k = fy[j]; k <= ly[j]; k++)
                for (uint32_t c = 0; c < ch; c++)
                    acc[c] += wy[j][k - fy[j]] * mid[((size_t)k * w + i) * ch + c];
            double *o = dst + ((size_t)j * w + i) * ch;
            for (uint32_t c = 0; c < ch; c++) {
                double v = acc[c];
                if (alpha && c != ch - 1)
                    v = acc[ch - 1] > 0.5 ? v * 255.0 / acc[ch - 1] : 0.0;
                o[c] = v <= 0 ? 0 : v >= 255 ? 255 : v;
            }
        }
    for (uint32_t i = 0; i < w; i++)
        free(wx[i]);
    for (uint32_t j = 0; j < h; j++)
        free(wy[j]);
    free(fx);
    free(lx);
    free(fy);
    free(ly);
    free(wx);
    free(wy);
    free(mid);
    return dst;
}

static double psnr_exact(const struct ts_image *a, const double *exact)
{
    double sq = 0.0;
    size_t n = (size_t)a->width * a->channels;
    for (uint32_t y = 0; y < a->height; y++)
        for (size_t i = 0; i < n; i++) {
            double d = ts_image_row(a, y)[i] - exact[y * n + i];
            sq += d * d;
        }
    sq /= (double)n * a->height;
    return 10.0 * log10(255.0 * 255.0 / sq);
}

/* The fixed-point resampler against the float one it replaced: at every factor (through the
 * box pre-shrink's range) and channel count, its PSNR against unrounded double Lanczos3 may
 * not be lower than the float one's by more than 0.1 dB, and the two stay near-identical. */
static void test_fixed_point_quality_matches_float_reference(void **state)
{
    (void)state;
    const double factors[] = {2.0, 3.7, 8.0, 25.0, 100.0, 0.55};
    const uint32_t sw = 800, sh = 600;
    for (uint32_t ch = 1; ch <= 4; ch++) {
        struct ts_image src;
        make_photo(&src, sw, sh, ch);
        for (size_t f = 0; f < sizeof factors / sizeof factors[0]; f++) {
            /* An odd sub-pixel rectangle, as region requests produce, and the whole image. */
            for (int rect = 0; rect < 2; rect++) {
                double rx = rect ? 13.37 : 0.0, ry = rect ? 7.61 : 0.0;
                double rw = rect ? sw - 41.9 : sw, rh = rect ? sh - 20.3 : sh;
                uint32_t w = (uint32_t)lround(rw / factors[f]);
                uint32_t h = (uint32_t)lround(rh / factors[f]);
                if (factors[f] < 1.0) { /* upscales only on a crop, to keep the test quick */
                    rw /= 4;
                    rh /= 4;
                    w = (uint32_t)lround(rw / factors[f]);
                    h = (uint32_t)lround(rh / factors[f]);
                }
                struct ts_image old, now;
                double *exact = exact_resample(&src, rx, ry, rw, rh, w, h);
                assert_int_equal(ref_resample_rect(&src, rx, ry, rw, rh, w, h, &old), TS_OK);
                assert_int_equal(render_resample_rect(&src, rx, ry, rw, rh, w, h, &now), TS_OK);
                double po = psnr_exact(&old, exact), pn = psnr_exact(&now, exact);
                double d = psnr(&now, &old);
                printf("# %u ch, %6.2fx%s -> %ux%u: PSNR vs exact: float %.2f, fixed %.2f dB; "
                       "fixed vs float %.2f dB\n",
                       ch, factors[f], rect ? " (sub-pixel rect)" : "", w, h, po, pn, d);
                assert_true(pn >= po - 0.1);
                assert_true(d >= 65.0);
                free(exact);
                ts_image_free(&old);
                ts_image_free(&now);
            }
        }
        ts_image_free(&src);
    }
}

static struct ts_image render_region(struct ts_reader *r, uint32_t x, uint32_t y, uint32_t w,
                                     uint32_t h, uint32_t ow, uint32_t oh)
{
    struct ts_plan p = {.img_w = r->info.width,
                        .img_h = r->info.height,
                        .rx = x,
                        .ry = y,
                        .rw = w,
                        .rh = h,
                        .out_w = ow,
                        .out_h = oh};
    struct ts_image img;
    struct ts_err err = {0};
    assert_int_equal(render_execute(r, &p, NULL, &img, &err), TS_OK);
    assert_int_equal(img.width, ow);
    assert_int_equal(img.height, oh);
    return img;
}

static int max_diff_cols(const struct ts_image *a, uint32_t ax, const struct ts_image *b,
                         uint32_t bx, uint32_t cols)
{
    int m = 0;
    for (uint32_t y = 0; y < a->height; y++)
        for (size_t i = 0; i < (size_t)cols * a->channels; i++) {
            int d = abs((int)ts_image_row(a, y)[ax * a->channels + i] -
                        (int)ts_image_row(b, y)[bx * b->channels + i]);
            m = d > m ? d : m;
        }
    return m;
}

/* A viewer's neighbouring tiles at a scale that needs filtering must meet without a visible
 * seam: each equals the same part of one render that spans both. */
static void test_neighbouring_tiles_match_one_larger_render_at_the_seam(void **state)
{
    (void)state;
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    struct ts_image noise;
    struct grid_tiff_opts o = {.compression = COMPRESSION_ADOBE_DEFLATE,
                               .tiled = true,
                               .tile = 256,
                               .bits = 8,
                               .layout = GRID_FLAT};
    char path[1024];
    /* Noise: every pixel differs from its neighbours, so a filter clamped at the edge of the
     * read shows at once. */
    make(&noise, 1400, 1000, 3);
    for (uint32_t y = 0; y < noise.height; y++)
        for (uint32_t i = 0; i < (size_t)noise.width * 3; i++)
            ts_image_row(&noise, y)[i] = rnd8();
    assert_int_equal(tu_mkdirs(TESSERA_TEST_WORK), 0);
    snprintf(path, sizeof path, "%s/noise.tif", TESSERA_TEST_WORK);
    assert_int_equal(grid_write_tiff(path, &noise, &o), 0);
    ts_image_free(&noise);
    assert_int_equal(ts_reader_open(path, &r, &err), TS_OK);
    /* 2.5x: 500 full-resolution pixels per 200-pixel tile. */
    struct ts_image left = render_region(r, 200, 300, 500, 500, 200, 200);
    struct ts_image right = render_region(r, 700, 300, 500, 500, 200, 200);
    struct ts_image both = render_region(r, 200, 300, 1000, 500, 400, 200);
    int dl = max_diff_cols(&left, 192, &both, 192, 8);
    int dr = max_diff_cols(&right, 0, &both, 200, 8);
    printf("# seam: left tile differs by %d, right tile by %d\n", dl, dr);
    assert_true(dl <= 2);
    assert_true(dr <= 2);
    ts_image_free(&left);
    ts_image_free(&right);
    ts_image_free(&both);
    ts_reader_close(r);
}

static void test_rejects_bad_rectangles(void **state)
{
    (void)state;
    struct ts_image src, dst;
    make(&src, 10, 10, 1);
    fill(&src, (const uint8_t[]){5});
    assert_int_equal(render_resample_rect(&src, -2, 0, 5, 5, 5, 5, &dst), TS_EINVAL);
    assert_int_equal(render_resample_rect(&src, 6, 0, 5, 5, 5, 5, &dst), TS_EINVAL);
    assert_int_equal(render_resample_rect(&src, 0, 0, 0, 5, 5, 5, &dst), TS_EINVAL);
    assert_int_equal(render_resample_rect(&src, 0, 0, 5, 5, 0, 5, &dst), TS_EINVAL);
    assert_null(dst.data);
    ts_image_free(&src);
}

/* The vector kernels are a speed-up, never a different answer: every level this CPU has gives
 * the same bytes as the plain C loop, on windows of every length (odd ones use a zero partner
 * tap), lengths that leave a scalar tail, and extreme samples and weights. */
/* Split over threads (blocks of output rows each), a resample gives the bytes of one thread:
 * plain and alpha, down (with and without the box pre-shrink) and up, sizes that leave a
 * short last block. */
static void test_threads_give_identical_bytes(void **state)
{
    (void)state;
    static const uint32_t sizes[][4] = {/* source w, h, output w, h */
                                        {1500, 1100, 700, 513},
                                        {900, 700, 851, 611},
                                        {4000, 3000, 400, 300},
                                        {300, 200, 900, 601}};
    for (uint32_t ch = 1; ch <= 4; ch++)
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            const uint32_t *z = sizes[i];
            struct ts_image src, one, many;
            make_photo(&src, z[0], z[1], ch);
            assert_int_equal(render_resample_rect_mt(&src, 1.5, 2.25, z[0] - 3.0, z[1] - 4.5, z[2],
                                                     z[3], 1, &one),
                             TS_OK);
            for (unsigned t = 2; t <= 5; t++) {
                assert_int_equal(render_resample_rect_mt(&src, 1.5, 2.25, z[0] - 3.0, z[1] - 4.5,
                                                         z[2], z[3], t, &many),
                                 TS_OK);
                if (memcmp(one.data, many.data, (size_t)z[2] * z[3] * ch) != 0)
                    fail_msg("%u threads differ from one: %ux%u ch %u -> %ux%u", t, z[0], z[1], ch,
                             z[2], z[3]);
                ts_image_free(&many);
            }
            ts_image_free(&one);
            ts_image_free(&src);
        }
}

/* The vector moves between layouts: every pixel where it belongs, nothing written past what
 * kernels.h allows (the guard values stay), and the count done honest. */
static void test_layout_moves_put_every_pixel_in_place(void **state)
{
    (void)state;
    enum { W = 37, STRIDE = 64 * 3 + 4, GUARD = 0x5a5a };
    static int16_t rows[8 * W * 3 + 4], block[W * STRIDE];
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++)
        rows[k] = (int16_t)(rnd8() * 97 - 9000);
    for (size_t width = 1; width <= W; width++) {
        for (size_t k = 0; k < sizeof block / sizeof block[0]; k++)
            block[k] = (int16_t)GUARD;
        size_t done = rk_rows_to_cols3(rows, width * 3, width, block, STRIDE);
        assert_true(done <= width);
        if (rk_level() == RK_AVX2)
            assert_int_equal(done, width / 4 * 4);
        for (size_t x = 0; x < done; x++) {
            for (uint32_t j = 0; j < 8; j++)
                for (uint32_t c = 0; c < 3; c++)
                    assert_int_equal(block[x * STRIDE + j * 3 + c],
                                     rows[j * width * 3 + x * 3 + c]);
            for (size_t k = 28; k < STRIDE; k++)
                assert_int_equal(block[x * STRIDE + k], (int16_t)GUARD);
        }
        for (size_t x = done; x < W; x++)
            for (size_t k = 0; k < STRIDE; k++)
                assert_int_equal(block[x * STRIDE + k], (int16_t)GUARD);
    }
    enum { ROWS = 64, CSTRIDE = 64 * 4, OSTRIDE = 40 };
    static uint8_t cols[8 * CSTRIDE], out[ROWS * OSTRIDE];
    for (size_t k = 0; k < sizeof cols; k++)
        cols[k] = rnd8();
    for (uint32_t rows_n = 1; rows_n <= ROWS; rows_n++) {
        memset(out, 0xa5, sizeof out);
        uint32_t done = rk_cols_to_rows3(cols, CSTRIDE, rows_n, out, OSTRIDE);
        assert_true(done <= rows_n);
        if (rk_level() == RK_AVX2)
            assert_int_equal(done, rows_n / 4 * 4);
        for (uint32_t r = 0; r < ROWS; r++)
            for (uint32_t k = 0; k < OSTRIDE; k++) {
                uint8_t want = r < done && k < 24 ? cols[(k / 3) * CSTRIDE + r * 3 + k % 3] : 0xa5;
                assert_int_equal(out[r * OSTRIDE + k], want);
            }
    }
}

static void test_kernel_levels_give_identical_bytes(void **state)
{
    (void)state;
    enum rk_level best = rk_level();
    enum { N = 203, ROWS = 27 };
    static uint8_t src8[ROWS][N];
    static int16_t src16[ROWS * N];
    for (uint32_t k = 0; k < ROWS; k++)
        for (uint32_t i = 0; i < N; i++) {
            src8[k][i] = (k + i) % 7 == 0 ? 255 : rnd8();
            /* Samples as the resampler keeps them: pixel << 6 plus Lanczos overshoot. */
            src16[k * N + i] = (int16_t)(((int)rnd8() - 40) * 80);
        }
    const uint8_t *rows[ROWS];
    for (uint32_t k = 0; k < ROWS; k++)
        rows[k] = src8[k];
    for (uint32_t count = 1; count <= ROWS; count++) {
        int16_t w[ROWS];
        int32_t sum = 0;
        for (uint32_t k = 0; k < count; k++) {
            /* Lanczos-like: a big positive centre, small signed sides, summing to 1 << 14. */
            w[k] = (int16_t)(((int)rnd8() - 100) * 8);
            sum += w[k];
        }
        w[count / 2] = (int16_t)(w[count / 2] + (16384 - sum));
        for (size_t n = 1; n <= N; n += n < 40 ? 1 : 23) {
            int16_t ref16[N], got16[N];
            uint8_t ref8[N], got8[N];
            rk_use(RK_C);
            rk_rows_u8_to_i16(rows, w, count, n, 8, ref16);
            rk_rows_i16_to_u8(src16, N, w, count, n, 20, ref8);
            for (int level = RK_SSE2; level <= (int)best; level++) {
                rk_use((enum rk_level)level);
                rk_rows_u8_to_i16(rows, w, count, n, 8, got16);
                rk_rows_i16_to_u8(src16, N, w, count, n, 20, got8);
                if (memcmp(ref16, got16, n * sizeof *ref16) != 0 || memcmp(ref8, got8, n) != 0)
                    fail_msg("%s differs from c: count %u, n %zu", rk_level_name(level), count, n);
            }
        }
    }
    /* Whole resizes too, plain and with alpha, down and up. */
    for (uint32_t ch = 1; ch <= 4; ch++) {
        struct ts_image src, ref, got;
        make(&src, 157, 93, ch);
        for (uint32_t y = 0; y < src.height; y++)
            for (uint32_t x = 0; x < src.width * ch; x++)
                ts_image_row(&src, y)[x] = rnd8();
        static const uint32_t sizes[][2] = {{61, 40}, {150, 90}, {301, 177}, {9, 5}};
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            rk_use(RK_C);
            assert_int_equal(render_resize(&src, sizes[s][0], sizes[s][1], &ref), TS_OK);
            for (int level = RK_SSE2; level <= (int)best; level++) {
                rk_use((enum rk_level)level);
                assert_int_equal(render_resize(&src, sizes[s][0], sizes[s][1], &got), TS_OK);
                assert_memory_equal(ref.data, got.data, (size_t)ref.width * ref.height * ch);
                ts_image_free(&got);
            }
            ts_image_free(&ref);
        }
        ts_image_free(&src);
    }
    print_message("kernel levels compared: c up to %s\n", rk_level_name(best));
    rk_use(best);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flat_color_downscale_is_exact),
        cmocka_unit_test(test_half_and_half_keeps_both_colors_away_from_edge),
        cmocka_unit_test(test_upscale_single_pixel_fills_output),
        cmocka_unit_test(test_upscale_doubles_a_ramp_smoothly),
        cmocka_unit_test(test_scale_one_is_an_exact_copy),
        cmocka_unit_test(test_rect_with_fractional_origin_samples_between_pixels),
        cmocka_unit_test(test_neighbouring_rects_meet_without_a_shift),
        cmocka_unit_test(test_one_by_one_output_is_the_centre_of_a_symmetric_ramp),
        cmocka_unit_test(test_transparent_pixels_do_not_bleed_color),
        cmocka_unit_test(test_large_ratio_downscale_averages),
        cmocka_unit_test(test_half_size_matches_box_average),
        cmocka_unit_test(test_downscale_matches_vips_lanczos3_on_a_photo),
        cmocka_unit_test(test_fixed_point_quality_matches_float_reference),
        cmocka_unit_test(test_neighbouring_tiles_match_one_larger_render_at_the_seam),
        cmocka_unit_test(test_rejects_bad_rectangles),
        cmocka_unit_test(test_kernel_levels_give_identical_bytes),
        cmocka_unit_test(test_layout_moves_put_every_pixel_in_place),
        cmocka_unit_test(test_threads_give_identical_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
