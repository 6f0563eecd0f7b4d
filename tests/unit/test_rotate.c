/* Arbitrary rotation: canvas size, transparent background, and where each colour lands. */
#include "render/render.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

/* A 150x100 picture of 5x5 flat cells (30x20 each): the centre (75,50) sits mid-cell. */
#define RW 150
#define RH 100
#define RCELLS 5

static void cell_rgb(uint32_t col, uint32_t row, uint8_t rgb[3])
{
    rgb[0] = (uint8_t)(20 + 50 * col);
    rgb[1] = (uint8_t)(230 - 45 * row);
    rgb[2] = (uint8_t)(40 + 20 * ((col + 2 * row) % 9));
}

static uint8_t luma(const uint8_t rgb[3])
{
    return (uint8_t)((299 * rgb[0] + 587 * rgb[1] + 114 * rgb[2] + 500) / 1000);
}

static void make_cells(uint32_t channels, struct ts_image *img)
{
    assert_int_equal(ts_image_alloc(img, RW, RH, channels), 0);
    for (uint32_t y = 0; y < RH; y++) {
        for (uint32_t x = 0; x < RW; x++) {
            uint8_t rgb[3];
            uint32_t col = x / (RW / RCELLS), row = y / (RH / RCELLS);
            cell_rgb(col, row, rgb);
            uint8_t *p = ts_image_row(img, y) + (size_t)x * channels;
            if (channels <= 2) {
                p[0] = luma(rgb);
            } else {
                memcpy(p, rgb, 3);
            }
            if (channels == 2 || channels == 4)
                p[channels - 1] = (col == 0 && row == 0) ? 128 : 255;
        }
    }
}

static double deg2rad(double d)
{
    return d * 3.14159265358979323846 / 180.0;
}

/* The bounding-box rule from IIIF 3.0 section 4.3, rounded to nearest. */
static void expected_dims(double deg, uint32_t *w, uint32_t *h)
{
    double r = deg2rad(deg);
    *w = (uint32_t)floor(fabs(RW * cos(r)) + fabs(RH * sin(r)) + 0.5);
    *h = (uint32_t)floor(fabs(RW * sin(r)) + fabs(RH * cos(r)) + 0.5);
}

static const uint8_t *px(const struct ts_image *img, uint32_t x, uint32_t y)
{
    return ts_image_row(img, y) + (size_t)x * img->channels;
}

static void check_angle(double deg)
{
    struct ts_image src, dst;
    make_cells(3, &src);
    assert_int_equal(render_rotate_any(&src, deg, &dst), 0);
    uint32_t ew, eh;
    expected_dims(deg, &ew, &eh);
    assert_int_equal(dst.width, ew);
    assert_int_equal(dst.height, eh);
    assert_int_equal(dst.channels, 4);

    /* Every cell centre lands where the clockwise rotation formula sends it, in its own colour. */
    double r = deg2rad(deg), c = cos(r), s = sin(r);
    for (uint32_t row = 0; row < RCELLS; row++) {
        for (uint32_t col = 0; col < RCELLS; col++) {
            double u = (col + 0.5) * (RW / RCELLS) - RW / 2.0;
            double v = (row + 0.5) * (RH / RCELLS) - RH / 2.0;
            double ox = u * c - v * s + dst.width / 2.0;
            double oy = u * s + v * c + dst.height / 2.0;
            uint8_t rgb[3];
            cell_rgb(col, row, rgb);
            const uint8_t *p = px(&dst, (uint32_t)floor(ox), (uint32_t)floor(oy));
            for (int k = 0; k < 3; k++)
                assert_int_equal(p[k], rgb[k]);
            assert_int_equal(p[3], 255);
        }
    }

    /* The canvas centre shows the source centre (cell 2,2). */
    uint8_t mid[3];
    cell_rgb(2, 2, mid);
    const uint8_t *p = px(&dst, dst.width / 2, dst.height / 2);
    assert_memory_equal(p, mid, 3);
    assert_int_equal(p[3], 255);

    /* The four corners of the canvas are outside the rotated picture. */
    assert_int_equal(px(&dst, 0, 0)[3], 0);
    assert_int_equal(px(&dst, dst.width - 1, 0)[3], 0);
    assert_int_equal(px(&dst, 0, dst.height - 1)[3], 0);
    assert_int_equal(px(&dst, dst.width - 1, dst.height - 1)[3], 0);

    /* No blank margin: each canvas edge row/column touches the picture (alpha > 0 somewhere). */
    uint32_t top = 0, bottom = 0, left = 0, right = 0;
    for (uint32_t x = 0; x < dst.width; x++) {
        top = top > px(&dst, x, 0)[3] ? top : px(&dst, x, 0)[3];
        bottom = bottom > px(&dst, x, dst.height - 1)[3] ? bottom : px(&dst, x, dst.height - 1)[3];
    }
    for (uint32_t y = 0; y < dst.height; y++) {
        left = left > px(&dst, 0, y)[3] ? left : px(&dst, 0, y)[3];
        right = right > px(&dst, dst.width - 1, y)[3] ? right : px(&dst, dst.width - 1, y)[3];
    }
    assert_true(top > 0 && bottom > 0 && left > 0 && right > 0);
    ts_image_free(&src);
    ts_image_free(&dst);
}

static void test_rotate_22_5_maps_cells_on_bounding_box(void **state)
{
    (void)state;
    check_angle(22.5);
}

static void test_rotate_45_maps_cells_on_bounding_box(void **state)
{
    (void)state;
    check_angle(45.0);
}

static void test_rotate_137_maps_cells_on_bounding_box(void **state)
{
    (void)state;
    check_angle(137.0);
}

static void test_rotate_359_maps_cells_on_bounding_box(void **state)
{
    (void)state;
    check_angle(359.0);
}

/* Reference quarter turns, written the obvious way. */
static void naive_quarter(const struct ts_image *src, int deg, uint32_t ox, uint32_t oy,
                          uint32_t *sx, uint32_t *sy)
{
    uint32_t w = src->width, h = src->height;
    switch (deg) {
    case 90:
        *sx = oy;
        *sy = h - 1 - ox;
        break;
    case 180:
        *sx = w - 1 - ox;
        *sy = h - 1 - oy;
        break;
    case 270:
        *sx = w - 1 - oy;
        *sy = ox;
        break;
    default:
        *sx = ox;
        *sy = oy;
        break;
    }
}

static void check_quarter_turns(uint32_t channels)
{
    static const int degs[] = {0, 90, 180, 270};
    struct ts_image src;
    make_cells(channels, &src);
    /* Make every pixel distinct so any off-by-one shows. */
    for (uint32_t y = 0; y < RH; y++)
        for (uint32_t x = 0; x < RW; x++)
            ts_image_row(&src, y)[(size_t)x * channels + 2] = (uint8_t)(x * 7 + y * 13);
    for (size_t i = 0; i < sizeof degs / sizeof degs[0]; i++) {
        struct ts_image dst;
        assert_int_equal(render_rotate_any(&src, degs[i], &dst), 0);
        bool swap = degs[i] == 90 || degs[i] == 270;
        assert_int_equal(dst.width, swap ? RH : RW);
        assert_int_equal(dst.height, swap ? RW : RH);
        assert_int_equal(dst.channels, 4);
        for (uint32_t oy = 0; oy < dst.height; oy++) {
            for (uint32_t ox = 0; ox < dst.width; ox++) {
                uint32_t sx, sy;
                naive_quarter(&src, degs[i], ox, oy, &sx, &sy);
                const uint8_t *want = px(&src, sx, sy);
                assert_memory_equal(px(&dst, ox, oy), want, 3);
                assert_int_equal(px(&dst, ox, oy)[3], channels == 4 ? want[3] : 255);
            }
        }
        ts_image_free(&dst);
    }
    ts_image_free(&src);
}

static void test_rotate_quarter_turns_are_exact(void **state)
{
    (void)state;
    check_quarter_turns(3);
    check_quarter_turns(4);
}

static void test_rotate_large_angles_wrap_to_same_result(void **state)
{
    (void)state;
    struct ts_image src, a, b;
    make_cells(3, &src);
    assert_int_equal(render_rotate_any(&src, 30.0, &a), 0);
    assert_int_equal(render_rotate_any(&src, 390.0, &b), 0);
    assert_int_equal(a.width, b.width);
    assert_int_equal(a.height, b.height);
    assert_memory_equal(a.data, b.data, a.stride * a.height);
    ts_image_free(&a);
    ts_image_free(&b);
    ts_image_free(&src);
}

static void test_rotate_gray_gains_alpha_channel(void **state)
{
    (void)state;
    struct ts_image src, dst;
    make_cells(1, &src);
    assert_int_equal(render_rotate_any(&src, 45.0, &dst), 0);
    assert_int_equal(dst.channels, 2);
    uint8_t mid[3];
    cell_rgb(2, 2, mid);
    const uint8_t *p = px(&dst, dst.width / 2, dst.height / 2);
    assert_int_equal(p[0], luma(mid));
    assert_int_equal(p[1], 255);
    assert_int_equal(px(&dst, 0, 0)[1], 0);
    ts_image_free(&src);
    ts_image_free(&dst);
}

static void test_rotate_edges_are_antialiased(void **state)
{
    (void)state;
    struct ts_image src, dst;
    make_cells(3, &src);
    assert_int_equal(render_rotate_any(&src, 30.0, &dst), 0);
    /* Along the middle row, alpha climbs from 0 to 255 through intermediate values, and those
     * partly covered pixels keep the picture's colour rather than fading to black. */
    uint32_t y = dst.height / 2, partial = 0;
    for (uint32_t x = 0; x < dst.width / 2; x++) {
        const uint8_t *p = px(&dst, x, y);
        if (p[3] > 0 && p[3] < 255) {
            partial++;
            assert_true(p[0] >= 20 - 1); /* the darkest red in the picture */
        }
    }
    assert_true(partial >= 1 && partial <= 3);
    ts_image_free(&src);
    ts_image_free(&dst);
}

static void test_rotate_keeps_source_alpha(void **state)
{
    (void)state;
    struct ts_image src, dst;
    make_cells(4, &src);
    assert_int_equal(render_rotate_any(&src, 180.0, &dst), 0);
    /* Cell (0,0) has alpha 128 and ends up bottom-right, colour unchanged. */
    uint8_t rgb[3];
    cell_rgb(0, 0, rgb);
    const uint8_t *p = px(&dst, RW - 5, RH - 5);
    assert_memory_equal(p, rgb, 3);
    assert_int_equal(p[3], 128);
    ts_image_free(&dst);
    assert_int_equal(render_rotate_any(&src, 10.0, &dst), 0);
    /* Inside the half-transparent cell, away from its borders, after a 10 degree turn. */
    double r = deg2rad(10.0);
    double u = 15.0 - RW / 2.0, v = 10.0 - RH / 2.0;
    double ox = u * cos(r) - v * sin(r) + dst.width / 2.0;
    double oy = u * sin(r) + v * cos(r) + dst.height / 2.0;
    p = px(&dst, (uint32_t)ox, (uint32_t)oy);
    assert_memory_equal(p, rgb, 3);
    assert_int_equal(p[3], 128);
    ts_image_free(&dst);
    ts_image_free(&src);
}

static void test_rotate_rejects_non_finite_angle(void **state)
{
    (void)state;
    struct ts_image src, dst;
    make_cells(3, &src);
    assert_int_equal(render_rotate_any(&src, NAN, &dst), TS_EINVAL);
    assert_int_equal(render_rotate_any(&src, INFINITY, &dst), TS_EINVAL);
    ts_image_free(&src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotate_22_5_maps_cells_on_bounding_box),
        cmocka_unit_test(test_rotate_45_maps_cells_on_bounding_box),
        cmocka_unit_test(test_rotate_137_maps_cells_on_bounding_box),
        cmocka_unit_test(test_rotate_359_maps_cells_on_bounding_box),
        cmocka_unit_test(test_rotate_quarter_turns_are_exact),
        cmocka_unit_test(test_rotate_large_angles_wrap_to_same_result),
        cmocka_unit_test(test_rotate_gray_gains_alpha_channel),
        cmocka_unit_test(test_rotate_edges_are_antialiased),
        cmocka_unit_test(test_rotate_keeps_source_alpha),
        cmocka_unit_test(test_rotate_rejects_non_finite_angle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
