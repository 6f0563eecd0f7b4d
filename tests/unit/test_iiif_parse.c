/* Unit tests for the IIIF URL grammar: every parameter form per version, valid and invalid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "protocol/iiif_parse.h"
#include "util/url.h"

#include <string.h>

static int parse(int version, const char *region, const char *size, const char *rotation,
                 const char *qf, struct iiif_request *req)
{
    struct ts_err err = {0};
    memset(req, 0xab, sizeof *req);
    return iiif_parse_image(version, region, size, rotation, qf, req, &err);
}

/* Parses a region with otherwise valid parameters. */
static int region(int version, const char *r, struct iiif_request *req)
{
    return parse(version, r, version == 3 ? "max" : "full", "0",
                 version == 1 ? "native.jpg" : "default.jpg", req);
}

static int size(int version, const char *s, struct iiif_request *req)
{
    return parse(version, "full", s, "0", version == 1 ? "native.jpg" : "default.jpg", req);
}

static int rotation(int version, const char *r, struct iiif_request *req)
{
    return parse(version, "full", version == 3 ? "max" : "full", r,
                 version == 1 ? "native.jpg" : "default.jpg", req);
}

static int qf(int version, const char *q, struct iiif_request *req)
{
    return parse(version, "full", version == 3 ? "max" : "full", "0", q, req);
}

static void test_region_full_and_square(void **state)
{
    (void)state;
    struct iiif_request r;
    for (int v = 1; v <= 3; v++) {
        assert_int_equal(region(v, "full", &r), TS_OK);
        assert_int_equal(r.region, IIIF_REGION_FULL);
        assert_int_equal(r.version, v);
    }
    assert_int_equal(region(3, "square", &r), TS_OK);
    assert_int_equal(r.region, IIIF_REGION_SQUARE);
    assert_int_equal(region(2, "square", &r), TS_OK);
    assert_int_equal(r.region, IIIF_REGION_SQUARE);
    assert_int_equal(region(1, "square", &r), TS_EINVAL);
    assert_int_equal(region(3, "Full", &r), TS_EINVAL);
    assert_int_equal(region(3, "", &r), TS_EINVAL);
    assert_int_equal(region(3, "fullx", &r), TS_EINVAL);
}

static void test_region_pixels_values(void **state)
{
    (void)state;
    struct iiif_request r;
    for (int v = 1; v <= 3; v++) {
        assert_int_equal(region(v, "125,15,120,140", &r), TS_OK);
        assert_int_equal(r.region, IIIF_REGION_PIXELS);
        assert_true(r.region_v[0] == 125 && r.region_v[1] == 15);
        assert_true(r.region_v[2] == 120 && r.region_v[3] == 140);
    }
    assert_int_equal(region(3, "0,0,2147483647,1", &r), TS_OK);
    assert_true(r.region_v[2] == 2147483647.0);
    assert_int_equal(region(3, "007,0,1,1", &r), TS_OK);
    assert_true(r.region_v[0] == 7);
}

static void test_region_pixels_rejects_junk(void **state)
{
    (void)state;
    struct iiif_request r;
    const char *bad[] = {
        "10a,0,10,10", "-5,0,10,10", "+5,0,10,10",         " 5,0,10,10",
        "5 ,0,10,10",  "0,0,10",     "0,0,10,10,10",       "0,0,10,",
        ",0,10,10",    "0,0,10,10,", "0,0,99999999999,10", "0,0,2147483648,1",
        "0,0,1.5,10",  "0,0,1e3,10", "0;0;10;10",          "0,,10,10",
        "nan,0,1,1",   "0x10,0,1,1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (region(3, bad[i], &r) != TS_EINVAL)
            fail_msg("region '%s' was accepted", bad[i]);
    }
}

static void test_region_percent_decimals(void **state)
{
    (void)state;
    struct iiif_request r;
    assert_int_equal(region(3, "pct:41.6,7.5,40,70", &r), TS_OK);
    assert_int_equal(r.region, IIIF_REGION_PERCENT);
    assert_true(r.region_v[0] == 41.6 && r.region_v[1] == 7.5);
    assert_true(r.region_v[2] == 40 && r.region_v[3] == 70);
    assert_int_equal(region(1, "pct:10,10,80,70", &r), TS_OK);
    assert_true(r.region_v[3] == 70);
    /* Only digits and '.': a missing leading zero is a SHOULD, so it is tolerated. */
    assert_int_equal(region(2, "pct:.5,0.25,5.,100", &r), TS_OK);
    assert_true(r.region_v[0] == 0.5 && r.region_v[1] == 0.25 && r.region_v[2] == 5.0);

    const char *bad[] = {"pct:",           "pct:1,2,3",     "pct:1,2,3,4,5", "pct:-1,0,10,10",
                         "pct:+1,0,1,1",   "pct:1e1,0,1,1", "pct:nan,0,1,1", "pct:inf,0,1,1",
                         "pct:1..2,0,1,1", "pct:.,0,1,1",   "pct:1,2,3,4 ",  "PCT:1,2,3,4",
                         "pct: 1,2,3,4"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (region(3, bad[i], &r) != TS_EINVAL)
            fail_msg("region '%s' was accepted", bad[i]);
    }
}

static void test_size_v3_forms(void **state)
{
    (void)state;
    struct iiif_request r;
    assert_int_equal(size(3, "max", &r), TS_OK);
    assert_int_equal(r.size, IIIF_SIZE_MAX);
    assert_false(r.upscale);
    assert_int_equal(size(3, "^max", &r), TS_OK);
    assert_int_equal(r.size, IIIF_SIZE_MAX);
    assert_true(r.upscale);
    assert_int_equal(size(3, "150,", &r), TS_OK);
    assert_int_equal(r.size, IIIF_SIZE_W);
    assert_int_equal(r.size_w, 150);
    assert_int_equal(size(3, "^360,", &r), TS_OK);
    assert_int_equal(r.size, IIIF_SIZE_W);
    assert_int_equal(r.size_w, 360);
    assert_true(r.upscale);
    assert_int_equal(size(3, ",150", &r), TS_OK);
    assert_int_equal(r.size, IIIF_SIZE_H);
    assert_int_equal(r.size_h, 150);
    assert_false(r.upscale);
    assert_int_equal(size(3, "^,240", &r), TS_OK);
    assert_int_equal(r.size, IIIF_SIZE_H);
    assert_int_equal(r.size_h, 240);
    assert_true(r.upscale);
    assert_int_equal(size(3, "pct:50", &r), TS_OK);
    assert_int_equal(r.size, IIIF_SIZE_PCT);
    assert_true(r.size_pct == 50.0);
    assert_int_equal(size(3, "^pct:120.5", &r), TS_OK);
    assert_true(r.size_pct == 120.5 && r.upscale);
    assert_int_equal(size(3, "225,100", &r), TS_OK);
    assert_int_equal(r.size, IIIF_SIZE_WH);
    assert_int_equal(r.size_w, 225);
    assert_int_equal(r.size_h, 100);
    assert_int_equal(size(3, "^360,360", &r), TS_OK);
    assert_int_equal(r.size, IIIF_SIZE_WH);
    assert_true(r.upscale);
    assert_int_equal(size(3, "!225,100", &r), TS_OK);
    assert_int_equal(r.size, IIIF_SIZE_BEST_FIT);
    assert_int_equal(r.size_w, 225);
    assert_int_equal(r.size_h, 100);
    assert_false(r.upscale);
    assert_int_equal(size(3, "^!360,360", &r), TS_OK);
    assert_int_equal(r.size, IIIF_SIZE_BEST_FIT);
    assert_true(r.upscale);
}

static void test_size_v3_rejects(void **state)
{
    (void)state;
    struct iiif_request r;
    const char *bad[] = {"full",    "^full",   "",      "^",     ",",     "^,",
                         "0,",      ",0",      "0,0",   "pct:",  "pct:0", "pct:-5",
                         "pct:1e2", "pct:nan", "!225,", "!,100", "!",     "!^225,100",
                         "^^max",   "10a,",    "-5,",   "+5,",   " 5,",   "99999999999,",
                         "1,2,3",   "1.5,",    "max,",  "MAX",   "!0,10", "^pct:inf"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (size(3, bad[i], &r) != TS_EINVAL)
            fail_msg("3.0 size '%s' was accepted", bad[i]);
    }
}

static void test_size_v2_forms(void **state)
{
    (void)state;
    struct iiif_request r;
    assert_int_equal(size(2, "full", &r), TS_OK);
    assert_int_equal(r.size, IIIF_SIZE_FULL);
    assert_int_equal(size(2, "max", &r), TS_OK);
    assert_int_equal(r.size, IIIF_SIZE_MAX);
    assert_int_equal(size(2, "150,", &r), TS_OK);
    assert_int_equal(r.size, IIIF_SIZE_W);
    assert_int_equal(size(2, ",150", &r), TS_OK);
    assert_int_equal(r.size, IIIF_SIZE_H);
    assert_int_equal(size(2, "pct:150", &r), TS_OK);
    assert_true(r.size_pct == 150.0);
    assert_int_equal(size(2, "225,100", &r), TS_OK);
    assert_int_equal(r.size, IIIF_SIZE_WH);
    assert_int_equal(size(2, "!225,100", &r), TS_OK);
    assert_int_equal(r.size, IIIF_SIZE_BEST_FIT);
    assert_false(r.upscale);
    const char *bad[] = {"^max", "^150,", "^,150", "^pct:50", "^150,100", "^!150,100", "", "0,"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (size(2, bad[i], &r) != TS_EINVAL)
            fail_msg("2.1 size '%s' was accepted", bad[i]);
    }
}

static void test_size_v1_forms(void **state)
{
    (void)state;
    struct iiif_request r;
    assert_int_equal(size(1, "full", &r), TS_OK);
    assert_int_equal(r.size, IIIF_SIZE_FULL);
    assert_int_equal(size(1, "100,", &r), TS_OK);
    assert_int_equal(r.size_w, 100);
    assert_int_equal(size(1, ",100", &r), TS_OK);
    assert_int_equal(r.size_h, 100);
    assert_int_equal(size(1, "pct:50", &r), TS_OK);
    assert_int_equal(size(1, "150,75", &r), TS_OK);
    assert_int_equal(size(1, "!150,75", &r), TS_OK);
    assert_int_equal(r.size, IIIF_SIZE_BEST_FIT);
    assert_int_equal(size(1, "max", &r), TS_EINVAL);
    assert_int_equal(size(1, "^100,", &r), TS_EINVAL);
}

static void test_rotation_values(void **state)
{
    (void)state;
    struct iiif_request r;
    const struct {
        const char *text;
        double value;
        bool mirror;
    } ok[] = {{"0", 0, false},     {"90", 90, false},           {"180", 180, false},
              {"270", 270, false}, {"360", 360, false},         {"22.5", 22.5, false},
              {"!0", 0, true},     {"!180", 180, true},         {"!345", 345, true},
              {"0.5", 0.5, false}, {"359.999", 359.999, false}, {"360.0", 360, false},
              {"090", 90, false}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (rotation(3, ok[i].text, &r) != TS_OK)
            fail_msg("rotation '%s' was refused", ok[i].text);
        assert_true(r.rotation == ok[i].value);
        assert_int_equal(r.mirror, ok[i].mirror);
    }
    const char *bad[] = {"",    "!",   "360.1", "361", "-90", "+90", "nan",   "inf", "1e2",
                         "90a", " 90", "!!90",  "90!", "9 0", "..",  "1.2.3", "-0",  "!-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (rotation(3, bad[i], &r) != TS_EINVAL)
            fail_msg("rotation '%s' was accepted", bad[i]);
    }
}

static void test_rotation_mirror_by_version(void **state)
{
    (void)state;
    struct iiif_request r;
    assert_int_equal(rotation(2, "!90", &r), TS_OK);
    assert_true(r.mirror);
    assert_true(r.rotation == 90);
    assert_int_equal(rotation(1, "!90", &r), TS_EINVAL);
    assert_int_equal(rotation(1, "22.5", &r), TS_OK);
    assert_true(r.rotation == 22.5);
}

static void test_quality_names_per_version(void **state)
{
    (void)state;
    struct iiif_request r;
    const struct {
        int version;
        const char *text;
        int rc;
        enum ts_quality q;
    } cases[] = {
        {3, "default.jpg", TS_OK, TS_QUALITY_DEFAULT},
        {3, "color.jpg", TS_OK, TS_QUALITY_COLOR},
        {3, "gray.jpg", TS_OK, TS_QUALITY_GRAY},
        {3, "bitonal.jpg", TS_OK, TS_QUALITY_BITONAL},
        {2, "default.jpg", TS_OK, TS_QUALITY_DEFAULT},
        {2, "gray.png", TS_OK, TS_QUALITY_GRAY},
        {1, "native.jpg", TS_OK, TS_QUALITY_DEFAULT},
        {1, "grey.jpg", TS_OK, TS_QUALITY_GRAY},
        {1, "color.jpg", TS_OK, TS_QUALITY_COLOR},
        {1, "bitonal.jpg", TS_OK, TS_QUALITY_BITONAL},
        {3, "native.jpg", TS_EINVAL, 0},
        {3, "grey.jpg", TS_EINVAL, 0},
        {2, "native.jpg", TS_EINVAL, 0},
        {1, "default.jpg", TS_EINVAL, 0},
        {1, "gray.jpg", TS_EINVAL, 0},
        {3, "Default.jpg", TS_EINVAL, 0},
        {3, ".jpg", TS_EINVAL, 0},
        {3, "colour.jpg", TS_EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = qf(cases[i].version, cases[i].text, &r);
        if (rc != cases[i].rc)
            fail_msg("%d '%s': got %d, expected %d", cases[i].version, cases[i].text, rc,
                     cases[i].rc);
        if (rc == TS_OK)
            assert_int_equal(r.quality, cases[i].q);
    }
}

static void test_format_extensions(void **state)
{
    (void)state;
    struct iiif_request r;
    const struct {
        const char *text;
        enum ts_format f;
        const char *mime;
    } ok[] = {{"default.jpg", TS_FORMAT_JPG, "image/jpeg"},
              {"default.png", TS_FORMAT_PNG, "image/png"},
              {"default.webp", TS_FORMAT_WEBP, "image/webp"},
              {"default.gif", TS_FORMAT_GIF, "image/gif"},
              {"default.tif", TS_FORMAT_TIF, "image/tiff"},
              {"default.jp2", TS_FORMAT_JP2, "image/jp2"},
              {"default.pdf", TS_FORMAT_PDF, "application/pdf"}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(qf(3, ok[i].text, &r), TS_OK);
        assert_int_equal(r.format, ok[i].f);
        assert_string_equal(ts_format_mime(r.format), ok[i].mime);
        assert_string_equal(ts_format_ext(r.format), strchr(ok[i].text, '.') + 1);
    }
    const char *bad[] = {"default",     "default.",        "default.jpeg", "default.JPG",
                         "default.bmp", "default.jpg.png", "default.jpg ", "default..jpg"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (qf(3, bad[i], &r) != TS_EINVAL)
            fail_msg("3.0 quality.format '%s' was accepted", bad[i]);
        if (qf(2, bad[i], &r) != TS_EINVAL)
            fail_msg("2.1 quality.format '%s' was accepted", bad[i]);
    }
}

static void test_format_optional_in_v1(void **state)
{
    (void)state;
    struct iiif_request r;
    assert_int_equal(qf(1, "native", &r), TS_OK);
    assert_int_equal(r.quality, TS_QUALITY_DEFAULT);
    assert_int_equal(r.format, TS_FORMAT_JPG);
    assert_true(r.format_implied);
    assert_int_equal(qf(1, "grey", &r), TS_OK);
    assert_int_equal(r.quality, TS_QUALITY_GRAY);
    assert_int_equal(qf(1, "native.png", &r), TS_OK);
    assert_int_equal(r.format, TS_FORMAT_PNG);
    assert_false(r.format_implied);
    /* 1.1 section 6.2: a format that is not available is 415 Invalid Media; 2.1 says 400. */
    assert_int_equal(qf(1, "native.", &r), TS_EMEDIA);
    assert_int_equal(qf(1, "native.bmp", &r), TS_EMEDIA);
    assert_int_equal(qf(2, "default.bmp", &r), TS_EINVAL);
}

static void test_unknown_version_refused(void **state)
{
    (void)state;
    struct iiif_request r;
    assert_int_equal(parse(4, "full", "max", "0", "default.jpg", &r), TS_EINVAL);
    assert_int_equal(parse(0, "full", "full", "0", "default.jpg", &r), TS_EINVAL);
}

static void test_decimal_parser_values(void **state)
{
    (void)state;
    double v;
    assert_true(iiif_parse_decimal("22.5", 4, &v) && v == 22.5);
    assert_true(iiif_parse_decimal("41.6", 4, &v) && v == 41.6);
    assert_true(iiif_parse_decimal("0.1", 3, &v) && v == 0.1);
    assert_true(iiif_parse_decimal("0.0000001", 9, &v) && v == 1e-7);
    assert_true(iiif_parse_decimal("12345678901234567890123", 23, &v));
    assert_true(v > 1.2345678901e22 && v < 1.2345678902e22);
    assert_false(iiif_parse_decimal("", 0, &v));
    assert_false(iiif_parse_decimal(".", 1, &v));
    assert_false(iiif_parse_decimal("1,5", 3, &v));
}

static void test_percent_decode(void **state)
{
    (void)state;
    struct ts_err err;
    char out[32];
    assert_int_equal(url_decode("a%2Fb", 5, out, sizeof out, URL_NO_CONTROLS, &err), TS_OK);
    assert_string_equal(out, "a/b");
    assert_int_equal(url_decode("a%2fb%20c", 9, out, sizeof out, URL_NO_CONTROLS, &err), TS_OK);
    assert_string_equal(out, "a/b c");
    /* Decoded once only: %252F is the text "%2F". */
    assert_int_equal(url_decode("%252F", 5, out, sizeof out, URL_NO_CONTROLS, &err), TS_OK);
    assert_string_equal(out, "%2F");
    assert_int_equal(url_decode("%C3%A9", 6, out, sizeof out, URL_NO_CONTROLS, &err), TS_OK);
    assert_string_equal(out, "\xc3\xa9");
    /* in_len bounds the input even without a NUL there. */
    assert_int_equal(url_decode("abcdef", 3, out, sizeof out, URL_NO_CONTROLS, &err), TS_OK);
    assert_string_equal(out, "abc");

    const char *bad[] = {"%zz", "%4", "%", "a%", "%00", "%0A", "%1f", "%7F", "a\tb", "%g1", "%%41"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (url_decode(bad[i], strlen(bad[i]), out, sizeof out, URL_NO_CONTROLS, &err) != TS_EINVAL)
            fail_msg("'%s' decoded", bad[i]);
    }
    assert_int_equal(url_decode("abcd", 4, out, 4, URL_NO_CONTROLS, &err), TS_EINVAL);
    assert_int_equal(url_decode("abc", 3, out, 4, URL_NO_CONTROLS, &err), TS_OK);
    assert_string_equal(out, "abc");
}

static void test_url_base_info_image(void **state)
{
    (void)state;
    struct iiif_url u;
    struct ts_err err;
    assert_int_equal(iiif_parse_url(3, "abc.tif", &u, &err), TS_OK);
    assert_int_equal(u.target, IIIF_TARGET_BASE);
    assert_string_equal(u.identifier, "abc.tif");

    assert_int_equal(iiif_parse_url(3, "a%2Fb.tif/info.json", &u, &err), TS_OK);
    assert_int_equal(u.target, IIIF_TARGET_INFO);
    assert_string_equal(u.identifier, "a/b.tif");

    assert_int_equal(iiif_parse_url(3, "a%2Fb.tif/125,15,120,140/90,/!345/gray.jpg", &u, &err),
                     TS_OK);
    assert_int_equal(u.target, IIIF_TARGET_IMAGE);
    assert_string_equal(u.identifier, "a/b.tif");
    assert_int_equal(u.req.region, IIIF_REGION_PIXELS);
    assert_true(u.req.region_v[0] == 125 && u.req.region_v[3] == 140);
    assert_int_equal(u.req.size, IIIF_SIZE_W);
    assert_int_equal(u.req.size_w, 90);
    assert_true(u.req.mirror && u.req.rotation == 345);
    assert_int_equal(u.req.quality, TS_QUALITY_GRAY);
    assert_int_equal(u.req.format, TS_FORMAT_JPG);

    /* Parameters may arrive percent-encoded too (browsers encode '^' and sometimes '!'). */
    assert_int_equal(iiif_parse_url(3, "x/full/%5Emax/%210/default.png", &u, &err), TS_OK);
    assert_true(u.req.upscale && u.req.mirror);
    assert_int_equal(u.req.format, TS_FORMAT_PNG);

    assert_int_equal(iiif_parse_url(1, "x/full/full/0/native", &u, &err), TS_OK);
    assert_int_equal(u.req.format, TS_FORMAT_JPG);
}

static void test_url_lenient_multi_segment_identifier(void **state)
{
    (void)state;
    struct iiif_url u;
    struct ts_err err;
    assert_int_equal(iiif_parse_url(3, "dir/sub/a.tif/full/max/0/default.jpg", &u, &err), TS_OK);
    assert_int_equal(u.target, IIIF_TARGET_IMAGE);
    assert_string_equal(u.identifier, "dir/sub/a.tif");

    assert_int_equal(iiif_parse_url(3, "dir/sub/a.tif/info.json", &u, &err), TS_OK);
    assert_int_equal(u.target, IIIF_TARGET_INFO);
    assert_string_equal(u.identifier, "dir/sub/a.tif");

    assert_int_equal(iiif_parse_url(2, "dir/a%20b.tif", &u, &err), TS_OK);
    assert_int_equal(u.target, IIIF_TARGET_BASE);
    assert_string_equal(u.identifier, "dir/a b.tif");

    /* Each segment is decoded on its own, and ".." is the source layer's business. */
    assert_int_equal(iiif_parse_url(3, "..%2F..%2Fetc/passwd/info.json", &u, &err), TS_OK);
    assert_string_equal(u.identifier, "../../etc/passwd");
}

static void test_url_rejects_bad_paths(void **state)
{
    (void)state;
    struct iiif_url u;
    struct ts_err err;
    const char *bad[] = {
        "",
        "/",
        "a//full/max/0/default.jpg",
        "a/full/max/0/default.jpg/",
        "/a/info.json",
        "a/",
        "info.json%00",
        "a%00b/info.json",
        "a%zz/info.json",
        "a/full/max/0/default.bmp",
        "a/full/full/0/default.jpg",
        "a/full/max/0/default",
        "a/full/max/360.5/default.jpg",
        "a/full/max%00/0/default.jpg",
        "/info.json",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (iiif_parse_url(3, bad[i], &u, &err) != TS_EINVAL)
            fail_msg("path '%s' was accepted", bad[i]);
    }
}

static void test_url_identifier_length_limit(void **state)
{
    (void)state;
    struct iiif_url u;
    struct ts_err err;
    char path[IIIF_MAX_IDENTIFIER + 32];
    memset(path, 'a', IIIF_MAX_IDENTIFIER - 1);
    path[IIIF_MAX_IDENTIFIER - 1] = '\0';
    assert_int_equal(iiif_parse_url(3, path, &u, &err), TS_OK);
    assert_int_equal(strlen(u.identifier), IIIF_MAX_IDENTIFIER - 1);
    path[IIIF_MAX_IDENTIFIER - 1] = 'a';
    path[IIIF_MAX_IDENTIFIER] = '\0';
    assert_int_equal(iiif_parse_url(3, path, &u, &err), TS_EINVAL);
    /* Escapes count once decoded: 1023 x "%41" is exactly the limit. */
    char enc[3 * IIIF_MAX_IDENTIFIER + 16];
    size_t o = 0;
    for (int i = 0; i < IIIF_MAX_IDENTIFIER - 1; i++) {
        memcpy(enc + o, "%41", 3);
        o += 3;
    }
    memcpy(enc + o, "/info.json", 11);
    assert_int_equal(iiif_parse_url(3, enc, &u, &err), TS_OK);
    assert_int_equal(u.target, IIIF_TARGET_INFO);
    assert_int_equal(strlen(u.identifier), IIIF_MAX_IDENTIFIER - 1);
    assert_int_equal(u.identifier[0], 'A');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_region_full_and_square),
        cmocka_unit_test(test_region_pixels_values),
        cmocka_unit_test(test_region_pixels_rejects_junk),
        cmocka_unit_test(test_region_percent_decimals),
        cmocka_unit_test(test_size_v3_forms),
        cmocka_unit_test(test_size_v3_rejects),
        cmocka_unit_test(test_size_v2_forms),
        cmocka_unit_test(test_size_v1_forms),
        cmocka_unit_test(test_rotation_values),
        cmocka_unit_test(test_rotation_mirror_by_version),
        cmocka_unit_test(test_quality_names_per_version),
        cmocka_unit_test(test_format_extensions),
        cmocka_unit_test(test_format_optional_in_v1),
        cmocka_unit_test(test_unknown_version_refused),
        cmocka_unit_test(test_decimal_parser_values),
        cmocka_unit_test(test_percent_decode),
        cmocka_unit_test(test_url_base_info_image),
        cmocka_unit_test(test_url_lenient_multi_segment_identifier),
        cmocka_unit_test(test_url_rejects_bad_paths),
        cmocka_unit_test(test_url_identifier_length_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
