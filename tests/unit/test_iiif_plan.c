/* Unit tests for IIIF plans: regions, sizes, limits, rotation, formats and canonical URIs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "protocol/iiif_plan.h"

#include <stdio.h>
#include <string.h>

static const unsigned ALL_FORMATS = (1u << TS_FORMAT_COUNT) - 1;

static struct ts_limits opts(uint32_t mw, uint32_t mh, uint64_t area)
{
    struct ts_limits o = {mw, mh, area, false, ALL_FORMATS, false, false};
    return o;
}

/* Parses "{region}/{size}/{rotation}/{quality}.{format}" for an image and plans it. */
static int plan(int version, const char *params, uint32_t w, uint32_t h,
                const struct ts_limits *opt, struct ts_plan *p)
{
    char path[512];
    struct iiif_url u;
    struct ts_err err = {0};
    snprintf(path, sizeof path, "img/%s", params);
    int rc = iiif_parse_url(version, path, &u, &err);
    if (rc != TS_OK)
        fail_msg("'%s' does not parse: %s", params, err.msg);
    memset(p, 0xcd, sizeof *p);
    return iiif_plan(&u.req, w, h, opt, p, &err);
}

static void expect_region(int version, const char *params, uint32_t W, uint32_t H, uint32_t x,
                          uint32_t y, uint32_t w, uint32_t h)
{
    struct ts_limits o = opts(0, 0, 0);
    struct ts_plan p;
    if (plan(version, params, W, H, &o, &p) != TS_OK)
        fail_msg("'%s' on %ux%u failed", params, W, H);
    if (p.rx != x || p.ry != y || p.rw != w || p.rh != h)
        fail_msg("'%s' on %ux%u: region %u,%u,%u,%u, expected %u,%u,%u,%u", params, W, H, p.rx,
                 p.ry, p.rw, p.rh, x, y, w, h);
}

static void expect_size(int version, const char *params, uint32_t W, uint32_t H,
                        const struct ts_limits *o, uint32_t w, uint32_t h)
{
    struct ts_plan p;
    int rc = plan(version, params, W, H, o, &p);
    if (rc != TS_OK)
        fail_msg("'%s' on %ux%u failed with %d", params, W, H, rc);
    if (p.out_w != w || p.out_h != h)
        fail_msg("'%s' on %ux%u: %ux%u, expected %ux%u", params, W, H, p.out_w, p.out_h, w, h);
}

static void expect_status(int version, const char *params, uint32_t W, uint32_t H,
                          const struct ts_limits *o, int status)
{
    struct ts_plan p;
    int rc = plan(version, params, W, H, o, &p);
    if (rc != status)
        fail_msg("'%s' on %ux%u: status %d, expected %d", params, W, H, rc, status);
}

static void expect_canonical(int version, const char *params, uint32_t W, uint32_t H,
                             const char *canonical)
{
    struct ts_limits o = opts(0, 0, 0);
    o.rotation_arbitrary = true;
    struct ts_plan p;
    char out[256];
    if (plan(version, params, W, H, &o, &p) != TS_OK)
        fail_msg("'%s' failed", params);
    assert_int_equal(iiif_canonical(version, &p, out, sizeof out), TS_OK);
    if (strcmp(out, canonical) != 0)
        fail_msg("%d '%s': canonical '%s', expected '%s'", version, params, out, canonical);
}

/* Limits shrink or grow max, but the canonical form still names what was asked for. */
static void test_canonical_max_under_limits(void **state)
{
    (void)state;
    struct ts_limits o = opts(200, 0, 0);
    struct ts_plan p;
    char out[256];
    assert_int_equal(plan(3, "full/max/0/default.jpg", 300, 200, &o, &p), TS_OK);
    assert_int_equal(p.out_w, 200);
    assert_int_equal(iiif_canonical(3, &p, out, sizeof out), TS_OK);
    assert_string_equal(out, "full/max/0/default.jpg");
    o = opts(360, 0, 0);
    assert_int_equal(plan(3, "full/^max/0/default.jpg", 300, 200, &o, &p), TS_OK);
    assert_int_equal(p.out_w, 360);
    assert_int_equal(iiif_canonical(3, &p, out, sizeof out), TS_OK);
    assert_string_equal(out, "full/^max/0/default.jpg");
    /* ^max that did not need to grow is plain max. */
    o = opts(0, 0, 0);
    assert_int_equal(plan(3, "full/^max/0/default.jpg", 300, 200, &o, &p), TS_OK);
    assert_int_equal(iiif_canonical(3, &p, out, sizeof out), TS_OK);
    assert_string_equal(out, "full/max/0/default.jpg");
    /* An explicit size equal to the limit is not "max". */
    o = opts(200, 0, 0);
    assert_int_equal(plan(3, "full/200,/0/default.jpg", 300, 200, &o, &p), TS_OK);
    assert_int_equal(iiif_canonical(3, &p, out, sizeof out), TS_OK);
    assert_string_equal(out, "full/200,133/0/default.jpg");
}

static void test_region_pixels_clipped_at_edge(void **state)
{
    (void)state;
    /* The spec's example: returned image is 175,185 px. */
    expect_region(3, "125,15,200,200/max/0/default.jpg", 300, 200, 125, 15, 175, 185);
    expect_region(2, "125,15,200,200/full/0/default.jpg", 300, 200, 125, 15, 175, 185);
    expect_region(3, "125,15,120,140/max/0/default.jpg", 300, 200, 125, 15, 120, 140);
    expect_region(3, "0,0,2147483647,2147483647/max/0/default.jpg", 300, 200, 0, 0, 300, 200);
    expect_region(3, "299,199,5,5/max/0/default.jpg", 300, 200, 299, 199, 1, 1);
    struct ts_limits o = opts(0, 0, 0);
    expect_size(3, "125,15,200,200/max/0/default.jpg", 300, 200, &o, 175, 185);
}

static void test_region_percent_matches_spec_examples(void **state)
{
    (void)state;
    /* pct:41.6,7.5,40,70 is the same picture as 125,15,120,140 in the spec. */
    expect_region(3, "pct:41.6,7.5,40,70/max/0/default.jpg", 300, 200, 125, 15, 120, 140);
    expect_region(3, "pct:41.6,7.5,66.6,100/max/0/default.jpg", 300, 200, 125, 15, 175, 185);
    expect_region(1, "pct:10,10,80,70/full/0/native.jpg", 300, 200, 30, 20, 240, 140);
    expect_region(3, "pct:0,0,100,100/max/0/default.jpg", 1001, 999, 0, 0, 1001, 999);
    /* Adjacent thirds share their edges: no gap, no overlap. */
    expect_region(3, "pct:0,0,33.3333,100/max/0/default.jpg", 100, 10, 0, 0, 33, 10);
    expect_region(3, "pct:33.3333,0,33.3333,100/max/0/default.jpg", 100, 10, 33, 0, 34, 10);
    expect_region(3, "pct:66.6666,0,33.3334,100/max/0/default.jpg", 100, 10, 67, 0, 33, 10);
}

static void test_region_square_is_centred(void **state)
{
    (void)state;
    expect_region(3, "square/max/0/default.jpg", 300, 200, 50, 0, 200, 200);
    expect_region(3, "square/max/0/default.jpg", 200, 300, 0, 50, 200, 200);
    expect_region(2, "square/full/0/default.jpg", 301, 200, 50, 0, 200, 200);
    expect_region(3, "square/max/0/default.jpg", 256, 256, 0, 0, 256, 256);
}

static void test_region_zero_or_outside_is_400(void **state)
{
    (void)state;
    struct ts_limits o = opts(0, 0, 0);
    const char *bad[] = {
        "300,0,10,10/max/0/default.jpg",     "0,200,10,10/max/0/default.jpg",
        "0,0,0,10/max/0/default.jpg",        "0,0,10,0/max/0/default.jpg",
        "400,400,10,10/max/0/default.jpg",   "pct:100,0,10,10/max/0/default.jpg",
        "pct:0,0,0,10/max/0/default.jpg",    "pct:0,0,0.1,10/max/0/default.jpg",
        "pct:0,100,100,1/max/0/default.jpg",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_status(3, bad[i], 300, 200, &o, TS_EINVAL);
}

static void test_size_v3_forms_on_spec_image(void **state)
{
    (void)state;
    struct ts_limits o = opts(0, 0, 0);
    expect_size(3, "full/max/0/default.jpg", 300, 200, &o, 300, 200);
    expect_size(3, "full/150,/0/default.jpg", 300, 200, &o, 150, 100);
    expect_size(3, "full/,150/0/default.jpg", 300, 200, &o, 225, 150);
    expect_size(3, "full/pct:50/0/default.jpg", 300, 200, &o, 150, 100);
    expect_size(3, "full/225,100/0/default.jpg", 300, 200, &o, 225, 100);
    expect_size(3, "full/!225,100/0/default.jpg", 300, 200, &o, 150, 100);  /* spec: 150,100 */
    expect_size(3, "full/^!360,360/0/default.jpg", 300, 200, &o, 360, 240); /* spec: 360,240 */
    expect_size(3, "full/^360,/0/default.jpg", 300, 200, &o, 360, 240);
    expect_size(3, "full/^,240/0/default.jpg", 300, 200, &o, 360, 240);
    expect_size(3, "full/^360,360/0/default.jpg", 300, 200, &o, 360, 360);
    expect_size(3, "full/^pct:120/0/default.jpg", 300, 200, &o, 360, 240);
    expect_size(3, "full/^max/0/default.jpg", 300, 200, &o, 300, 200);  /* no limits: = max */
    expect_size(3, "full/^150,/0/default.jpg", 300, 200, &o, 150, 100); /* '^' may also shrink */
    expect_size(3, "full/pct:100/0/default.jpg", 300, 200, &o, 300, 200);
    expect_size(3, "full/pct:33.3/0/default.jpg", 300, 200, &o, 100, 67);
    /* "!w,h" without '^' stops at the region's size rather than failing. */
    expect_size(3, "full/!400,400/0/default.jpg", 300, 200, &o, 300, 200);
    /* The computed side rounds to nearest: 200 * 100 / 300 = 66.7. */
    expect_size(3, "full/100,/0/default.jpg", 300, 200, &o, 100, 67);
}

static void test_size_v3_no_upscaling_without_caret(void **state)
{
    (void)state;
    struct ts_limits o = opts(0, 0, 0);
    const char *bad[] = {"full/301,/0/default.jpg",       "full/,201/0/default.jpg",
                         "full/301,10/0/default.jpg",     "full/10,201/0/default.jpg",
                         "full/pct:101/0/default.jpg",    "full/pct:100.5/0/default.jpg",
                         "0,0,100,100/101,/0/default.jpg"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_status(3, bad[i], 300, 200, &o, TS_EINVAL);
    /* pct so small that nothing is left */
    expect_status(3, "full/pct:0.1/0/default.jpg", 300, 200, &o, TS_EINVAL);
}

static void test_size_v2_and_v1_allow_upscaling(void **state)
{
    (void)state;
    struct ts_limits o = opts(0, 0, 0);
    expect_size(2, "full/full/0/default.jpg", 300, 200, &o, 300, 200);
    expect_size(2, "full/max/0/default.jpg", 300, 200, &o, 300, 200);
    expect_size(2, "full/360,/0/default.jpg", 300, 200, &o, 360, 240);
    expect_size(2, "full/,400/0/default.jpg", 300, 200, &o, 600, 400);
    expect_size(2, "full/pct:200/0/default.jpg", 300, 200, &o, 600, 400);
    expect_size(2, "full/!900,300/0/default.jpg", 300, 200, &o, 450, 300);
    expect_size(2, "full/150,75/0/default.jpg", 300, 200, &o, 150, 75);
    expect_size(1, "full/full/0/native.jpg", 300, 200, &o, 300, 200);
    expect_size(1, "full/600,/0/native.jpg", 300, 200, &o, 600, 400);
    expect_size(1, "full/!150,75/0/native.jpg", 300, 200, &o, 113, 75);
}

static void test_size_thin_region_keeps_one_pixel(void **state)
{
    (void)state;
    struct ts_limits o = opts(0, 0, 0);
    expect_size(2, "0,0,2048,1/256,/0/default.jpg", 4096, 4096, &o, 256, 1);
    expect_size(3, "0,0,1,2048/,256/0/default.jpg", 4096, 4096, &o, 1, 256);
}

static void test_size_huge_requests_are_refused(void **state)
{
    (void)state;
    struct ts_limits o = opts(0, 0, 0);
    expect_status(2, "full/pct:1000000000000/0/default.jpg", 300, 200, &o, TS_EINVAL);
    expect_status(2, "0,0,1,1000/2147483647,/0/default.jpg", 300, 2000, &o, TS_EINVAL);
    struct ts_limits lim = opts(5000, 5000, 0);
    expect_status(2, "full/2147483647,2147483647/0/default.jpg", 300, 200, &lim, TS_EINVAL);
    expect_status(3, "full/^2147483647,/0/default.jpg", 300, 200, &lim, TS_EINVAL);
}

static void test_limits_constrain_max(void **state)
{
    (void)state;
    /* Spec example: maxWidth 200 shrinks max; the height keeps the aspect ratio. */
    struct ts_limits w200 = opts(200, 0, 0);
    expect_size(3, "full/max/0/default.jpg", 300, 200, &w200, 200, 133);
    expect_size(2, "full/max/0/default.jpg", 300, 200, &w200, 200, 133);
    /* 2.1 "full" is never another size: beyond maxWidth it is refused (section 5.3). */
    struct ts_plan refused;
    assert_int_equal(plan(2, "full/full/0/default.jpg", 300, 200, &w200, &refused), TS_EINVAL);
    assert_int_equal(plan(1, "full/full/0/native.jpg", 300, 200, &w200, &refused), TS_EINVAL);
    expect_size(2, "full/full/0/default.jpg", 200, 200, &w200, 200, 200);
    expect_size(2, "0,0,200,100/full/0/default.jpg", 300, 200, &w200, 200, 100);
    /* maxHeight defaults to maxWidth. */
    expect_size(3, "full/max/0/default.jpg", 200, 300, &w200, 133, 200);
    struct ts_limits h100 = opts(0, 100, 0);
    expect_size(3, "full/max/0/default.jpg", 300, 200, &h100, 150, 100);
    struct ts_limits area = opts(0, 0, 10000);
    struct ts_plan p;
    assert_int_equal(plan(3, "full/max/0/default.jpg", 300, 200, &area, &p), TS_OK);
    assert_true((uint64_t)p.out_w * p.out_h <= 10000);
    assert_int_equal(p.out_w, 122); /* 300 * sqrt(1/6) = 122.47 */
    assert_int_equal(p.out_h, 81);
    /* A region already within the limits is not touched. */
    expect_size(3, "0,0,100,100/max/0/default.jpg", 300, 200, &w200, 100, 100);
}

static void test_limits_caret_max_grows_to_limits(void **state)
{
    (void)state;
    struct ts_limits w360 = opts(360, 0, 0);
    /* Spec example: maxWidth 360 makes ^max 360 wide. */
    expect_size(3, "full/^max/0/default.jpg", 300, 200, &w360, 360, 240);
    struct ts_limits area = opts(0, 0, 240000);
    expect_size(3, "full/^max/0/default.jpg", 300, 200, &area, 600, 400);
    struct ts_limits both = opts(1000, 300, 0);
    expect_size(3, "full/^max/0/default.jpg", 300, 200, &both, 450, 300);
}

static void test_limits_reject_explicit_sizes(void **state)
{
    (void)state;
    struct ts_limits w200 = opts(200, 0, 0);
    expect_status(3, "full/250,/0/default.jpg", 300, 200, &w200, TS_EINVAL);
    expect_status(3, "full/,201/0/default.jpg", 300, 200, &w200, TS_EINVAL);
    expect_status(2, "full/pct:80/0/default.jpg", 300, 200, &w200, TS_EINVAL);
    expect_status(3, "full/^360,/0/default.jpg", 300, 200, &w200, TS_EINVAL);
    expect_size(3, "full/200,/0/default.jpg", 300, 200, &w200, 200, 133);
    struct ts_limits area = opts(0, 0, 10000);
    expect_status(3, "full/101,100/0/default.jpg", 300, 200, &area, TS_EINVAL);
    expect_size(3, "full/100,100/0/default.jpg", 300, 200, &area, 100, 100);
    /* Confined sizes shrink to the limits instead of failing ("as large as possible"). */
    expect_size(3, "full/!300,300/0/default.jpg", 300, 200, &w200, 200, 133);
    expect_size(2, "full/!1000,1000/0/default.jpg", 300, 200, &w200, 200, 133);
}

static void test_rotation_rules(void **state)
{
    (void)state;
    struct ts_limits o = opts(0, 0, 0);
    struct ts_plan p;
    assert_int_equal(plan(3, "full/max/90/default.jpg", 300, 200, &o, &p), TS_OK);
    assert_true(p.rotation == 90.0 && !p.mirror);
    assert_int_equal(plan(3, "full/max/!270/default.jpg", 300, 200, &o, &p), TS_OK);
    assert_true(p.rotation == 270.0 && p.mirror);
    assert_int_equal(plan(3, "full/max/360/default.jpg", 300, 200, &o, &p), TS_OK);
    assert_true(p.rotation == 0.0);
    assert_int_equal(plan(3, "full/max/!360/default.jpg", 300, 200, &o, &p), TS_OK);
    assert_true(p.rotation == 0.0 && p.mirror);
    /* Size is planned before rotation: dimensions are those of the scaled region. */
    assert_int_equal(plan(3, "full/150,/90/default.jpg", 300, 200, &o, &p), TS_OK);
    assert_int_equal(p.out_w, 150);
    assert_int_equal(p.out_h, 100);
    expect_status(3, "full/max/22.5/default.png", 300, 200, &o, TS_EUNSUPPORTED);
    expect_status(3, "full/max/90.5/default.png", 300, 200, &o, TS_EUNSUPPORTED);
    o.rotation_arbitrary = true;
    assert_int_equal(plan(3, "full/max/22.5/default.png", 300, 200, &o, &p), TS_OK);
    assert_true(p.rotation == 22.5);
}

static void test_formats_not_offered_are_400(void **state)
{
    (void)state;
    struct ts_limits o = opts(0, 0, 0);
    o.formats = (1u << TS_FORMAT_JPG) | (1u << TS_FORMAT_PNG);
    struct ts_plan p;
    assert_int_equal(plan(3, "full/max/0/gray.png", 300, 200, &o, &p), TS_OK);
    assert_int_equal(p.format, TS_FORMAT_PNG);
    assert_int_equal(p.quality, TS_QUALITY_GRAY);
    expect_status(3, "full/max/0/default.webp", 300, 200, &o, TS_EINVAL);
    expect_status(3, "full/max/0/default.pdf", 300, 200, &o, TS_EINVAL);
    expect_status(2, "full/full/0/default.webp", 300, 200, &o, TS_EINVAL);
    /* 1.1 section 6.2: a format not available is 415. */
    expect_status(1, "full/full/0/native.webp", 300, 200, &o, TS_EMEDIA);
    /* A bad size is reported before an unsupported format. */
    expect_status(3, "full/301,/0/default.webp", 300, 200, &o, TS_EINVAL);
}

static void test_plan_fills_every_field(void **state)
{
    (void)state;
    struct ts_limits o = opts(0, 0, 0);
    struct ts_plan p;
    assert_int_equal(plan(3, "10,20,30,40/15,/!180/bitonal.gif", 300, 200, &o, &p), TS_OK);
    assert_int_equal(p.img_w, 300);
    assert_int_equal(p.img_h, 200);
    assert_int_equal(p.rx, 10);
    assert_int_equal(p.ry, 20);
    assert_int_equal(p.rw, 30);
    assert_int_equal(p.rh, 40);
    assert_int_equal(p.out_w, 15);
    assert_int_equal(p.out_h, 20);
    assert_true(p.rotation == 180.0);
    assert_true(p.mirror);
    assert_int_equal(p.quality, TS_QUALITY_BITONAL);
    assert_int_equal(p.format, TS_FORMAT_GIF);
}

static void test_canonical_v3(void **state)
{
    (void)state;
    expect_canonical(3, "full/max/0/default.jpg", 300, 200, "full/max/0/default.jpg");
    expect_canonical(3, "0,0,300,200/max/0/default.jpg", 300, 200, "full/max/0/default.jpg");
    expect_canonical(3, "pct:41.6,7.5,40,70/max/0/default.jpg", 300, 200,
                     "125,15,120,140/max/0/default.jpg");
    expect_canonical(3, "125,15,200,200/max/0/default.jpg", 300, 200,
                     "125,15,175,185/max/0/default.jpg");
    expect_canonical(3, "full/150,/0/default.jpg", 300, 200, "full/150,100/0/default.jpg");
    expect_canonical(3, "full/pct:50/0/color.png", 300, 200, "full/150,100/0/color.png");
    expect_canonical(3, "full/!225,100/0/default.jpg", 300, 200, "full/150,100/0/default.jpg");
    expect_canonical(3, "full/300,200/0/default.jpg", 300, 200, "full/max/0/default.jpg");
    expect_canonical(3, "full/^360,/!90/gray.webp", 300, 200, "full/^360,240/!90/gray.webp");
    expect_canonical(3, "full/^10,300/0/default.jpg", 300, 200, "full/^10,300/0/default.jpg");
    expect_canonical(3, "square/max/0/default.jpg", 200, 200, "full/max/0/default.jpg");
    expect_canonical(3, "square/max/0/default.jpg", 300, 200, "50,0,200,200/max/0/default.jpg");
    expect_canonical(3, "125,15,120,140/90,/!345/gray.jpg", 300, 200,
                     "125,15,120,140/90,105/!345/gray.jpg");
}

static void test_canonical_rotation_numbers(void **state)
{
    (void)state;
    expect_canonical(3, "full/max/22.50/default.png", 300, 200, "full/max/22.5/default.png");
    expect_canonical(3, "full/max/.5/default.png", 300, 200, "full/max/0.5/default.png");
    expect_canonical(3, "full/max/090/default.png", 300, 200, "full/max/90/default.png");
    expect_canonical(3, "full/max/90.000/default.png", 300, 200, "full/max/90/default.png");
    expect_canonical(3, "full/max/360/default.png", 300, 200, "full/max/0/default.png");
    expect_canonical(3, "full/max/!0/default.png", 300, 200, "full/max/!0/default.png");
    expect_canonical(3, "full/max/0.1/default.png", 300, 200, "full/max/0.1/default.png");
    expect_canonical(3, "full/max/359.999/default.png", 300, 200, "full/max/359.999/default.png");
    expect_canonical(2, "full/full/!12.25/default.png", 300, 200, "full/full/!12.25/default.png");
}

static void test_canonical_v2_and_v1(void **state)
{
    (void)state;
    expect_canonical(2, "full/full/0/default.jpg", 300, 200, "full/full/0/default.jpg");
    expect_canonical(2, "full/max/0/default.jpg", 300, 200, "full/full/0/default.jpg");
    expect_canonical(2, "full/150,100/0/default.jpg", 300, 200, "full/150,/0/default.jpg");
    expect_canonical(2, "full/,100/0/default.jpg", 300, 200, "full/150,/0/default.jpg");
    expect_canonical(2, "full/!225,100/0/default.jpg", 300, 200, "full/150,/0/default.jpg");
    expect_canonical(2, "full/150,50/0/default.jpg", 300, 200, "full/150,50/0/default.jpg");
    expect_canonical(2, "full/pct:200/0/gray.png", 300, 200, "full/600,/0/gray.png");
    expect_canonical(2, "square/full/0/default.jpg", 200, 200, "full/full/0/default.jpg");
    expect_canonical(1, "full/full/0/native.jpg", 300, 200, "full/full/0/native.jpg");
    expect_canonical(1, "full/100,/0/grey", 300, 200, "full/100,/0/grey.jpg");
    expect_canonical(1, "pct:10,10,80,70/full/0/color.png", 300, 200,
                     "30,20,240,140/full/0/color.png");
    expect_canonical(1, "full/full/0/bitonal.tif", 300, 200, "full/full/0/bitonal.tif");

    /* 2.1 max shrunk by limits: "w," is its canonical form (2.1 deprecation note). */
    struct ts_limits w200 = opts(200, 0, 0);
    struct ts_plan p;
    char out[128];
    assert_int_equal(plan(2, "full/max/0/default.jpg", 300, 200, &w200, &p), TS_OK);
    assert_int_equal(iiif_canonical(2, &p, out, sizeof out), TS_OK);
    assert_string_equal(out, "full/200,/0/default.jpg");
}

static void test_canonical_reparses_to_same_plan(void **state)
{
    (void)state;
    const struct {
        int version;
        const char *params;
    } cases[] = {
        {3, "pct:10.5,3.3,50.1,60.7/pct:33.3/!22.5/gray.png"},
        {3, "square/^!1000,700/45/default.jpg"},
        {3, "7,9,101,53/,17/0/bitonal.webp"},
        {2, "7,9,101,53/,17/0/bitonal.webp"},
        {2, "pct:1,1,98,98/!77,91/270/color.jpg"},
        {1, "pct:1,1,98,98/!77,91/270/grey.png"},
        {2, "13,0,1000,1000/999,3/0/default.jpg"},
    };
    struct ts_limits o = opts(0, 0, 0);
    o.rotation_arbitrary = true;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ts_plan a, b;
        char canon[256];
        assert_int_equal(plan(cases[i].version, cases[i].params, 1000, 700, &o, &a), TS_OK);
        assert_int_equal(iiif_canonical(cases[i].version, &a, canon, sizeof canon), TS_OK);
        assert_int_equal(plan(cases[i].version, canon, 1000, 700, &o, &b), TS_OK);
        /* The same pixels: everything but how the size was spelled. */
        a.size_max = b.size_max = false;
        a.size_upscale = b.size_upscale = false;
        if (memcmp(&a, &b, sizeof a) != 0)
            fail_msg("'%s' -> '%s' plans differently", cases[i].params, canon);
        char again[256];
        assert_int_equal(iiif_canonical(cases[i].version, &b, again, sizeof again), TS_OK);
        assert_string_equal(canon, again);
    }
}

static void test_canonical_reports_short_buffer(void **state)
{
    (void)state;
    struct ts_limits o = opts(0, 0, 0);
    struct ts_plan p;
    char out[64];
    assert_int_equal(plan(3, "full/max/0/default.jpg", 300, 200, &o, &p), TS_OK);
    assert_int_equal(iiif_canonical(3, &p, out, 10), TS_EINVAL);
    assert_int_equal(iiif_canonical(3, &p, out, 23), TS_OK); /* 22 characters + NUL */
    assert_string_equal(out, "full/max/0/default.jpg");
}

/* The tile a viewer asks for (implementation notes section 3), for tile (n, m) at scale s. */
static void tile_request(uint32_t W, uint32_t H, uint32_t t, uint32_t s, uint32_t n, uint32_t m,
                         uint32_t r[4], uint32_t *ws, uint32_t *hs)
{
    r[0] = n * t * s;
    r[1] = m * t * s;
    r[2] = t * s < W - r[0] ? t * s : W - r[0];
    r[3] = t * s < H - r[1] ? t * s : H - r[1];
    *ws = (r[2] + s - 1) / s;
    *hs = (r[3] + s - 1) / s;
}

static void region_text(const uint32_t r[4], uint32_t W, uint32_t H, char *out, size_t size)
{
    if (r[0] == 0 && r[1] == 0 && r[2] == W && r[3] == H)
        snprintf(out, size, "full");
    else
        snprintf(out, size, "%u,%u,%u,%u", r[0], r[1], r[2], r[3]);
}

static void check_edge_tiles(uint32_t W, uint32_t H, uint32_t t)
{
    struct ts_limits o = opts(0, 0, 0);
    for (uint32_t s = 1;; s *= 2) {
        uint32_t nx = (W + t * s - 1) / (t * s), ny = (H + t * s - 1) / (t * s);
        /* Every tile of the last column and of the last row, the corner included. */
        for (uint32_t k = 0; k < nx + ny - 1; k++) {
            uint32_t n = k < ny ? nx - 1 : k - ny, m = k < ny ? k : ny - 1;
            uint32_t r[4], ws, hs;
            char reg[64], req[160], want[160], got[160];
            struct ts_plan p;
            tile_request(W, H, t, s, n, m, r, &ws, &hs);
            region_text(r, W, H, reg, sizeof reg);

            /* 3.0: region + "w,h" (canonical "max" when nothing is scaled). */
            snprintf(req, sizeof req, "%s/%u,%u/0/default.jpg", reg, ws, hs);
            assert_int_equal(plan(3, req, W, H, &o, &p), TS_OK);
            if (p.out_w != ws || p.out_h != hs)
                fail_msg("%ux%u s=%u '%s': %ux%u", W, H, s, req, p.out_w, p.out_h);
            if (ws == r[2] && hs == r[3])
                snprintf(want, sizeof want, "%s/max/0/default.jpg", reg);
            else
                snprintf(want, sizeof want, "%s", req);
            assert_int_equal(iiif_canonical(3, &p, got, sizeof got), TS_OK);
            assert_string_equal(got, want);

            /* 2.1: region + "w," ("full" when nothing is scaled). */
            snprintf(req, sizeof req, "%s/%u,/0/default.jpg", reg, ws);
            assert_int_equal(plan(2, req, W, H, &o, &p), TS_OK);
            assert_int_equal(p.out_w, ws);
            if (r[2] == r[3]) { /* the height follows exactly only for square tiles */
                assert_int_equal(p.out_h, hs);
                if (ws == r[2])
                    snprintf(want, sizeof want, "%s/full/0/default.jpg", reg);
                else
                    snprintf(want, sizeof want, "%s", req);
                assert_int_equal(iiif_canonical(2, &p, got, sizeof got), TS_OK);
                assert_string_equal(got, want);
            }
        }
        if (nx == 1 && ny == 1)
            break;
    }
}

static void test_edge_tiles_have_exact_dimensions(void **state)
{
    (void)state;
    check_edge_tiles(1000, 1000, 256);
    check_edge_tiles(1411, 1411, 256);
    check_edge_tiles(1411, 999, 256);
    check_edge_tiles(5000, 3001, 512);

    /* Spot values: the corner tile of 1411x1411 at scale 2 is 1024,1024,387,387 -> 194. */
    uint32_t r[4], ws, hs;
    tile_request(1411, 1411, 256, 2, 2, 2, r, &ws, &hs);
    assert_int_equal(r[0], 1024);
    assert_int_equal(r[2], 387);
    assert_int_equal(ws, 194);
    assert_int_equal(hs, 194);
}

/* iipsrv's ALLOW_UPSCALING=0: nothing grows above the region, in any version. Best fits and
 * ^max shrink to the region as they would to a limit; explicit larger sizes are a feature the
 * server does not offer (501). */
static void test_no_upscaling_refuses_growth_in_every_version(void **state)
{
    (void)state;
    struct ts_limits o = opts(2000, 0, 0);
    o.no_upscaling = true;
    expect_status(3, "full/^pct:200/0/default.jpg", 300, 200, &o, TS_EUNSUPPORTED);
    expect_status(3, "full/^600,/0/default.jpg", 300, 200, &o, TS_EUNSUPPORTED);
    expect_status(3, "0,0,100,100/^101,101/0/default.jpg", 300, 200, &o, TS_EUNSUPPORTED);
    expect_status(3, "full/600,/0/default.jpg", 300, 200, &o, TS_EINVAL); /* no '^': as ever */
    expect_status(2, "full/pct:200/0/default.jpg", 300, 200, &o, TS_EUNSUPPORTED);
    expect_status(2, "full/301,/0/default.jpg", 300, 200, &o, TS_EUNSUPPORTED);
    expect_status(2, "0,0,100,100/,150/0/default.jpg", 300, 200, &o, TS_EUNSUPPORTED);
    expect_status(1, "full/600,400/0/native.jpg", 300, 200, &o, TS_EUNSUPPORTED);
    expect_size(3, "full/^max/0/default.jpg", 300, 200, &o, 300, 200);
    expect_size(3, "full/^!600,600/0/default.jpg", 300, 200, &o, 300, 200);
    expect_size(2, "full/!600,600/0/default.jpg", 300, 200, &o, 300, 200);
    /* At or below the region nothing changes. */
    expect_size(3, "full/^300,200/0/default.jpg", 300, 200, &o, 300, 200);
    expect_size(2, "full/pct:50/0/default.jpg", 300, 200, &o, 150, 100);
    expect_size(2, "0,0,100,100/100,/0/default.jpg", 300, 200, &o, 100, 100);
    struct ts_plan p;
    char out[256];
    assert_int_equal(plan(3, "full/^max/0/default.jpg", 300, 200, &o, &p), TS_OK);
    assert_int_equal(iiif_canonical(3, &p, out, sizeof out), TS_OK);
    assert_string_equal(out, "full/max/0/default.jpg");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_region_pixels_clipped_at_edge),
        cmocka_unit_test(test_region_percent_matches_spec_examples),
        cmocka_unit_test(test_region_square_is_centred),
        cmocka_unit_test(test_region_zero_or_outside_is_400),
        cmocka_unit_test(test_size_v3_forms_on_spec_image),
        cmocka_unit_test(test_size_v3_no_upscaling_without_caret),
        cmocka_unit_test(test_size_v2_and_v1_allow_upscaling),
        cmocka_unit_test(test_no_upscaling_refuses_growth_in_every_version),
        cmocka_unit_test(test_size_thin_region_keeps_one_pixel),
        cmocka_unit_test(test_size_huge_requests_are_refused),
        cmocka_unit_test(test_limits_constrain_max),
        cmocka_unit_test(test_limits_caret_max_grows_to_limits),
        cmocka_unit_test(test_limits_reject_explicit_sizes),
        cmocka_unit_test(test_rotation_rules),
        cmocka_unit_test(test_formats_not_offered_are_400),
        cmocka_unit_test(test_plan_fills_every_field),
        cmocka_unit_test(test_canonical_v3),
        cmocka_unit_test(test_canonical_max_under_limits),
        cmocka_unit_test(test_canonical_rotation_numbers),
        cmocka_unit_test(test_canonical_v2_and_v1),
        cmocka_unit_test(test_canonical_reparses_to_same_plan),
        cmocka_unit_test(test_canonical_reports_short_buffer),
        cmocka_unit_test(test_edge_tiles_have_exact_dimensions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
