/* iipsrv's pixel adjustments (GAM, INV, CMP, CNV, CTW, CNT, SHD, MINMAX): each checked against its
 * definition on values in [0, 1], v = sample / 255. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "render/render.h"

#include <math.h>

static struct ts_adjust none(void)
{
    struct ts_adjust a;
    memset(&a, 0, sizeof a);
    a.on = true;
    a.gamma = 1.0f;
    a.contrast = 1.0f;
    return a;
}

/* A one-row gray image holding the given samples. */
static void gray_row(struct ts_image *img, const uint8_t *v, uint32_t n)
{
    assert_int_equal(ts_image_alloc(img, n, 1, 1), TS_OK);
    memcpy(ts_image_row(img, 0), v, n);
}

static uint8_t expect(double v)
{
    v *= 255.0;
    return v <= 0.0 ? 0 : v >= 255.0 ? 255 : (uint8_t)(v + 0.5);
}

static void check_pointwise(const struct ts_adjust *a, double (*f)(double))
{
    uint8_t v[256];
    struct ts_image src, dst;
    for (int i = 0; i < 256; i++)
        v[i] = (uint8_t)i;
    gray_row(&src, v, 256);
    assert_int_equal(render_adjust(&src, a, &dst), TS_OK);
    assert_int_equal(dst.channels, 1);
    for (int i = 0; i < 256; i++) {
        int want = expect(f(i / 255.0)), got = ts_image_row(&dst, 0)[i];
        if (abs(want - got) > 1)
            fail_msg("sample %d: want %d, got %d", i, want, got);
    }
    ts_image_free(&src);
    ts_image_free(&dst);
}

static double gamma2(double v)
{
    return v * v;
}
static double gamma_half(double v)
{
    return sqrt(v);
}
static double log_tf(double v)
{
    return log(1.0 + 255.0 * v) / log(256.0);
}
static double inverted(double v)
{
    return 1.0 - v;
}
static double contrast3(double v)
{
    return 3.0 * v;
}
static double inverted_gamma2_contrast_half(double v)
{
    return 0.5 * (1.0 - v * v);
}

static void test_gamma_log_invert_contrast_follow_their_definitions(void **state)
{
    (void)state;
    struct ts_adjust a = none();
    a.gamma = 2.0f;
    check_pointwise(&a, gamma2);
    a.gamma = 0.5f;
    check_pointwise(&a, gamma_half);
    a = none();
    a.log = true;
    check_pointwise(&a, log_tf);
    a = none();
    a.invert = true;
    check_pointwise(&a, inverted);
    a = none();
    a.contrast = 3.0f;
    check_pointwise(&a, contrast3);
    /* The order: gamma, then inversion, then contrast. */
    a = none();
    a.gamma = 2.0f;
    a.invert = true;
    a.contrast = 0.5f;
    check_pointwise(&a, inverted_gamma2_contrast_half);
}

static void test_exact_values(void **state)
{
    (void)state;
    struct ts_adjust a = none();
    struct ts_image src, dst;
    gray_row(&src, (const uint8_t[]){0, 15, 100, 200, 255}, 5);
    a.log = true; /* log(16) / log(256) = 1/2 */
    assert_int_equal(render_adjust(&src, &a, &dst), TS_OK);
    assert_int_equal(ts_image_row(&dst, 0)[0], 0);
    assert_int_equal(ts_image_row(&dst, 0)[1], 128);
    assert_int_equal(ts_image_row(&dst, 0)[4], 255);
    ts_image_free(&dst);
    a = none();
    a.contrast = 2.0f;
    assert_int_equal(render_adjust(&src, &a, &dst), TS_OK);
    assert_int_equal(ts_image_row(&dst, 0)[2], 200);
    assert_int_equal(ts_image_row(&dst, 0)[3], 255); /* clipped */
    ts_image_free(&dst);
    a = none();
    a.invert = true;
    assert_int_equal(render_adjust(&src, &a, &dst), TS_OK);
    assert_int_equal(ts_image_row(&dst, 0)[3], 55);
    ts_image_free(&dst);
    ts_image_free(&src);
}

/* RGB of the colour map for a gray sample, against the map's piecewise definition. */
static void check_cmap(enum ts_cmap cmap, uint8_t s, double r, double g, double b)
{
    struct ts_adjust a = none();
    struct ts_image src, dst;
    a.cmap = cmap;
    gray_row(&src, &s, 1);
    assert_int_equal(render_adjust(&src, &a, &dst), TS_OK);
    assert_int_equal(dst.channels, 3);
    const uint8_t *p = ts_image_row(&dst, 0);
    double want[3] = {r, g, b};
    for (int c = 0; c < 3; c++)
        if (abs((int)expect(want[c]) - (int)p[c]) > 1)
            fail_msg("cmap %d, sample %u, channel %d: want %u, got %u", (int)cmap, s, c,
                     expect(want[c]), p[c]);
    ts_image_free(&src);
    ts_image_free(&dst);
}

static void test_colour_maps(void **state)
{
    (void)state;
    double v;
    /* hot: black -> red (first third) -> yellow -> white */
    check_cmap(TS_CMAP_HOT, 0, 0, 0, 0);
    v = 40 / 255.0;
    check_cmap(TS_CMAP_HOT, 40, 3 * v, 0, 0);
    v = 128 / 255.0;
    check_cmap(TS_CMAP_HOT, 128, 1, 3 * v - 1, 0);
    v = 230 / 255.0;
    check_cmap(TS_CMAP_HOT, 230, 1, 1, 3 * v - 2);
    check_cmap(TS_CMAP_HOT, 255, 1, 1, 1);
    /* cold: the same through blue and cyan */
    v = 40 / 255.0;
    check_cmap(TS_CMAP_COLD, 40, 0, 0, 3 * v);
    v = 230 / 255.0;
    check_cmap(TS_CMAP_COLD, 230, 3 * v - 2, 1, 1);
    /* jet: eighths */
    check_cmap(TS_CMAP_JET, 0, 0, 0, 0.5);
    v = 60 / 255.0;
    check_cmap(TS_CMAP_JET, 60, 0, 4 * v - 0.5, 1);
    v = 128 / 255.0;
    check_cmap(TS_CMAP_JET, 128, 4 * v - 1.5, 1, 2.5 - 4 * v);
    v = 200 / 255.0;
    check_cmap(TS_CMAP_JET, 200, 1, 3.5 - 4 * v, 0);
    v = 240 / 255.0;
    check_cmap(TS_CMAP_JET, 240, 4.5 - 4 * v, 0, 0);
    /* single channels */
    v = 77 / 255.0;
    check_cmap(TS_CMAP_RED, 77, v, 0, 0);
    check_cmap(TS_CMAP_GREEN, 77, 0, v, 0);
    check_cmap(TS_CMAP_BLUE, 77, 0, 0, v);
}

/* The map reads the first sample of a colour pixel; alpha passes through. */
static void test_cmap_of_rgba_keeps_alpha(void **state)
{
    (void)state;
    struct ts_adjust a = none();
    struct ts_image src, dst;
    a.cmap = TS_CMAP_RED;
    assert_int_equal(ts_image_alloc(&src, 1, 1, 4), TS_OK);
    memcpy(ts_image_row(&src, 0), (const uint8_t[]){90, 10, 250, 33}, 4);
    assert_int_equal(render_adjust(&src, &a, &dst), TS_OK);
    assert_int_equal(dst.channels, 4);
    assert_memory_equal(ts_image_row(&dst, 0), ((const uint8_t[]){90, 0, 0, 33}), 4);
    ts_image_free(&src);
    ts_image_free(&dst);
}

static void set_kernel(struct ts_adjust *a, uint32_t side, const float *k)
{
    a->ksize = side;
    memcpy(a->kernel, k, sizeof *k * side * side);
}

static void test_convolution(void **state)
{
    (void)state;
    static const float sobel[9] = {-1, 0, 1, -2, 0, 2, -1, 0, 1};
    static const float gauss[9] = {1, 2, 1, 2, 4, 2, 1, 2, 1};
    struct ts_adjust a = none();
    struct ts_image src, dst;
    /* A vertical edge: columns 0-3 at 0, 4-7 at 255, on 5 rows. */
    assert_int_equal(ts_image_alloc(&src, 8, 5, 1), TS_OK);
    for (uint32_t y = 0; y < 5; y++)
        for (uint32_t x = 0; x < 8; x++)
            ts_image_row(&src, y)[x] = x < 4 ? 0 : 255;
    /* Sobel (sum 0, not normalised): 4 x 1.0 either side of the edge, clipped; 0 on the flats. */
    set_kernel(&a, 3, sobel);
    assert_int_equal(render_adjust(&src, &a, &dst), TS_OK);
    for (uint32_t y = 0; y < 5; y++)
        for (uint32_t x = 0; x < 8; x++)
            assert_int_equal(ts_image_row(&dst, y)[x], x == 3 || x == 4 ? 255 : 0);
    ts_image_free(&dst);
    /* Gaussian (normalised by its sum 16): (1 + 2 + 1) / 16 of the far side leaks each way. */
    set_kernel(&a, 3, gauss);
    assert_int_equal(render_adjust(&src, &a, &dst), TS_OK);
    for (uint32_t y = 0; y < 5; y++) {
        const uint8_t *r = ts_image_row(&dst, y);
        assert_int_equal(r[0], 0);
        assert_int_equal(r[2], 0);
        assert_int_equal(r[3], expect(4.0 / 16.0));
        assert_int_equal(r[4], expect(12.0 / 16.0));
        assert_int_equal(r[7], 255);
    }
    ts_image_free(&dst);
    ts_image_free(&src);
}

static void test_rejects_bad_kernel_size(void **state)
{
    (void)state;
    struct ts_adjust a = none();
    struct ts_image src, dst;
    gray_row(&src, (const uint8_t[]){1, 2, 3}, 3);
    a.ksize = 4;
    assert_int_equal(render_adjust(&src, &a, &dst), TS_EINVAL);
    assert_null(dst.data);
    ts_image_free(&src);
}

/* A colour twist: output channel k = sum_j m[k][j] * input j, before gamma; one row makes a
 * gray image, and alpha passes through. */
static void test_colour_twist(void **state)
{
    (void)state;
    struct ts_adjust a = none();
    struct ts_image src, dst;
    assert_int_equal(ts_image_alloc(&src, 2, 1, 4), TS_OK);
    memcpy(ts_image_row(&src, 0), (const uint8_t[]){200, 100, 50, 7, 0, 255, 30, 99}, 8);
    /* Swap red and blue, halve green. */
    a.twist_rows = 3;
    a.twist[0][2] = 1.0f;
    a.twist[1][1] = 0.5f;
    a.twist[2][0] = 1.0f;
    assert_int_equal(render_adjust(&src, &a, &dst), TS_OK);
    assert_int_equal(dst.channels, 4);
    assert_memory_equal(ts_image_row(&dst, 0), ((const uint8_t[]){50, 50, 200, 7, 30, 128, 0, 99}),
                        8);
    ts_image_free(&dst);
    /* One row: a weighted gray, then gamma 2 on the twisted value. */
    a = none();
    a.twist_rows = 1;
    a.twist[0][0] = 0.25f;
    a.twist[0][1] = 0.5f;
    a.twist[0][2] = 0.25f;
    a.gamma = 2.0f;
    assert_int_equal(render_adjust(&src, &a, &dst), TS_OK);
    assert_int_equal(dst.channels, 2);
    double v = (0.25 * 200 + 0.5 * 100 + 0.25 * 50) / 255.0;
    assert_int_equal(ts_image_row(&dst, 0)[0], expect(v * v));
    assert_int_equal(ts_image_row(&dst, 0)[1], 7);
    ts_image_free(&dst);
    a.twist_rows = 2; /* neither gray nor RGB */
    assert_int_equal(render_adjust(&src, &a, &dst), TS_EINVAL);
    ts_image_free(&src);
}

/* A low-contrast ramp (100 to 150) stretched: its darkest sample goes to 0, its brightest to 255,
 * and one in between to its share of the range. */
static void test_stretch_maps_the_histogram_range_to_full_scale(void **state)
{
    (void)state;
    uint8_t v[51];
    for (int i = 0; i <= 50; i++)
        v[i] = (uint8_t)(100 + i);
    struct ts_image src, dst;
    gray_row(&src, v, 51);
    struct ts_adjust a = none();
    a.stretch = true;
    assert_int_equal(render_adjust(&src, &a, &dst), TS_EINVAL); /* no histogram given */
    render_histogram(&src, a.hist);
    a.have_hist = true;
    assert_int_equal(a.hist[99], 0);
    assert_int_equal(a.hist[100], 1);
    assert_int_equal(a.hist[150], 1);
    assert_int_equal(render_adjust(&src, &a, &dst), TS_OK);
    const uint8_t *d = ts_image_row(&dst, 0);
    assert_int_equal(d[0], 0);
    assert_int_equal(d[50], 255);
    for (int i = 0; i <= 50; i++)
        if (abs(d[i] - (int)expect((v[i] - 100) / 50.0)) > 1)
            fail_msg("sample %u: want %u, got %u", v[i], expect((v[i] - 100) / 50.0), d[i]);
    ts_image_free(&dst);
    /* The mapping is the whole image's: a piece of it (here one sample) is mapped the same. */
    struct ts_image piece;
    gray_row(&piece, &v[25], 1);
    assert_int_equal(render_adjust(&piece, &a, &dst), TS_OK);
    assert_true(abs(ts_image_row(&dst, 0)[0] - expect(25 / 50.0)) <= 1);
    ts_image_free(&dst);
    ts_image_free(&piece);
    ts_image_free(&src);
}

/* Equalisation sends each value to 255 times the share of pixels at or below it: four values
 * in equal numbers land on the quarters; a skewed ramp comes out with a near-flat histogram. */
static void test_equalize_flattens_the_histogram(void **state)
{
    (void)state;
    uint8_t v[400];
    for (int i = 0; i < 400; i++)
        v[i] = (uint8_t)(10 + 10 * (i / 100));
    struct ts_image src, dst;
    gray_row(&src, v, 400);
    struct ts_adjust a = none();
    a.equalize = true;
    render_histogram(&src, a.hist);
    a.have_hist = true;
    assert_int_equal(render_adjust(&src, &a, &dst), TS_OK);
    const uint8_t *d = ts_image_row(&dst, 0);
    assert_int_equal(d[0], 64); /* 255 / 4 = 63.75 */
    assert_int_equal(d[100], 128);
    assert_int_equal(d[200], 191);
    assert_int_equal(d[399], 255);
    ts_image_free(&dst);
    ts_image_free(&src);

    /* Most pixels dark: sample = 255 (i / n)^3. */
    uint8_t ramp[1024];
    for (int i = 0; i < 1024; i++)
        ramp[i] = (uint8_t)(255.0 * pow(i / 1023.0, 3.0) + 0.5);
    gray_row(&src, ramp, 1024);
    render_histogram(&src, a.hist);
    assert_int_equal(render_adjust(&src, &a, &dst), TS_OK);
    uint32_t quarter[4] = {0};
    for (int i = 0; i < 1024; i++)
        quarter[ts_image_row(&dst, 0)[i] * 4 / 256]++;
    for (int q = 0; q < 4; q++)
        if (quarter[q] < 200 || quarter[q] > 312)
            fail_msg("quarter %d of the output holds %u of 1024 pixels", q, quarter[q]);
    ts_image_free(&dst);
    ts_image_free(&src);
}

/* An RGB histogram bins each pixel's average; alpha is not counted. */
static void test_histogram_averages_colour_channels(void **state)
{
    (void)state;
    struct ts_image img;
    assert_int_equal(ts_image_alloc(&img, 2, 1, 4), TS_OK);
    uint8_t px[8] = {10, 20, 31, 255, 0, 0, 1, 0};
    memcpy(ts_image_row(&img, 0), px, 8);
    uint32_t hist[TS_HIST_BINS];
    render_histogram(&img, hist);
    assert_int_equal(hist[20], 1); /* 61 / 3 = 20.3 */
    assert_int_equal(hist[0], 1);  /* 1 / 3 */
    ts_image_free(&img);
}

/* The definition of iipsrv's hill shading, written out here: the light vector from the two
 * angles, the normal n from the pixel (-(2c - 1) per component), half their dot product. */
static uint8_t shade_expect(int h, int vd, const uint8_t rgb[3])
{
    double a = h * M_PI / 180.0, sy = cos(a), sx = sqrt(1.0 - sy * sy),
           sz = -sin(vd * M_PI / 180.0);
    if (h > 180)
        sx = -sx;
    double len = sqrt(sx * sx + sy * sy + sz * sz), dot = 0.0,
           s[3] = {sx / len, sy / len, sz / len};
    if (rgb[0] == 0 && rgb[1] == 0 && rgb[2] == 0)
        return 0;
    for (int k = 0; k < 3; k++)
        dot += s[k] * -(rgb[k] / 255.0 - 0.5) * 2.0;
    return expect(0.5 * dot);
}

static void test_shade_lights_a_normal_map(void **state)
{
    (void)state;
    /* Flat, tilted each way, and "no surface" (black). */
    static const uint8_t normals[5][3] = {
        {128, 128, 255}, {255, 128, 128}, {0, 128, 128}, {128, 0, 128}, {0, 0, 0}};
    static const int lights[4][2] = {{0, 90}, {90, 30}, {270, 45}, {180, 0}};
    struct ts_image src, dst;
    assert_int_equal(ts_image_alloc(&src, 5, 1, 3), TS_OK);
    memcpy(ts_image_row(&src, 0), normals, sizeof normals);
    for (int l = 0; l < 4; l++) {
        struct ts_adjust a = none();
        a.shade = true;
        a.shade_h = lights[l][0];
        a.shade_v = lights[l][1];
        assert_int_equal(render_adjust(&src, &a, &dst), TS_OK);
        assert_int_equal(dst.channels, 1);
        for (int i = 0; i < 5; i++) {
            int want = shade_expect(lights[l][0], lights[l][1], normals[i]);
            int got = ts_image_row(&dst, 0)[i];
            if (abs(want - got) > 1)
                fail_msg("light %d,%d on normal %d: want %d, got %d", lights[l][0], lights[l][1], i,
                         want, got);
        }
        ts_image_free(&dst);
    }
    /* A level light from 90 degrees lights one of the two opposite tilts and not the other
     * (iipsrv's normals point away from the encoded direction: n = -(2c - 1)). */
    struct ts_adjust a = none();
    a.shade = true;
    a.shade_h = 90;
    assert_int_equal(render_adjust(&src, &a, &dst), TS_OK);
    const uint8_t *d = ts_image_row(&dst, 0);
    assert_true(d[2] > 100 && d[1] == 0);
    ts_image_free(&dst);
    ts_image_free(&src);
}

/* MINMAX's range: (v - lo) / (hi - lo) per channel, clipped at the ends. */
static void test_range_normalises_each_channel(void **state)
{
    (void)state;
    struct ts_image src, dst;
    assert_int_equal(ts_image_alloc(&src, 2, 1, 3), TS_OK);
    uint8_t px[6] = {100, 100, 100, 40, 200, 250};
    memcpy(ts_image_row(&src, 0), px, 6);
    struct ts_adjust a = none();
    a.range = true;
    float lo[3] = {50, 0, 100}, hi[3] = {150, 255, 200};
    for (int c = 0; c < 3; c++) {
        a.range_lo[c] = lo[c] / 255.0f;
        a.range_hi[c] = hi[c] / 255.0f;
    }
    assert_int_equal(render_adjust(&src, &a, &dst), TS_OK);
    const uint8_t *d = ts_image_row(&dst, 0);
    for (int i = 0; i < 6; i++) {
        int c = i % 3;
        assert_true(abs(d[i] - expect((px[i] - lo[c]) / (hi[c] - lo[c]))) <= 1);
    }
    assert_int_equal(d[3], 0);   /* 40 below 50 */
    assert_int_equal(d[5], 255); /* 250 above 200 */
    ts_image_free(&dst);
    ts_image_free(&src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gamma_log_invert_contrast_follow_their_definitions),
        cmocka_unit_test(test_exact_values),
        cmocka_unit_test(test_colour_maps),
        cmocka_unit_test(test_cmap_of_rgba_keeps_alpha),
        cmocka_unit_test(test_convolution),
        cmocka_unit_test(test_rejects_bad_kernel_size),
        cmocka_unit_test(test_colour_twist),
        cmocka_unit_test(test_stretch_maps_the_histogram_range_to_full_scale),
        cmocka_unit_test(test_equalize_flattens_the_histogram),
        cmocka_unit_test(test_histogram_averages_colour_channels),
        cmocka_unit_test(test_shade_lights_a_normal_map),
        cmocka_unit_test(test_range_normalises_each_channel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
