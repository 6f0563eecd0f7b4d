/* iipsrv's pixel adjustments (GAM, INV, CMP, CNV, CNT): each checked against its definition on
 * values in [0, 1], v = sample / 255. */
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
