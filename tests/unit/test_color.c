/* Colour tests: embedded ICC profiles (Adobe RGB, CMYK, 16-bit) come out as libvips' sRGB. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "image/color.h"
#include "image/reader.h"
#include "testutil.h"

#include <lcms2.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATA TESSERA_TEST_DATA
#define WORK TESSERA_TEST_WORK
#define ADOBE DATA "/rocket-640x427-adobergb.jpg"
#define CMYK DATA "/rocket-300-cmyk-noprofile.jpg"

struct diff {
    double mean;
    int max;
};

static bool have_vips(void)
{
    static int known = -1;
    if (known < 0)
        known = system("vips --version >/dev/null 2>&1") == 0;
    return known == 1;
}

#define SKIP_WITHOUT_VIPS()                                                                        \
    do {                                                                                           \
        if (!have_vips()) {                                                                        \
            print_message("vips not installed: oracle comparison skipped\n");                      \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static void vips_run(const char *args)
{
    char cmd[2048];
    assert_int_equal(tu_mkdirs(WORK), 0);
    assert_true((size_t)snprintf(cmd, sizeof cmd, "vips %s >/dev/null 2>&1", args) < sizeof cmd);
    if (system(cmd) != 0)
        fail_msg("vips failed: %s", cmd);
}

static struct ts_image decode_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    struct ts_image img;
    uint8_t *buf;
    long n;
    if (!f)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    assert_int_equal(tu_decode(buf, (size_t)n, &img), 0);
    free(buf);
    return img;
}

static struct ts_image read_whole(const char *path, uint32_t *bits)
{
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    struct ts_image img;
    int rc = ts_reader_open(path, &r, &err);
    if (rc != TS_OK)
        fail_msg("open %s: %d %s", path, rc, err.msg);
    struct ts_read_req q = {.w = r->info.width, .h = r->info.height};
    if (bits)
        *bits = r->info.bits_per_sample;
    rc = ts_reader_read(r, &q, &img, &err);
    if (rc != TS_OK)
        fail_msg("read %s: %d %s", path, rc, err.msg);
    ts_reader_close(r);
    return img;
}

static struct diff compare(const struct ts_image *a, const struct ts_image *b)
{
    struct diff d = {0, 0};
    uint64_t sum = 0;
    assert_int_equal(a->width, b->width);
    assert_int_equal(a->height, b->height);
    assert_int_equal(a->channels, b->channels);
    for (uint32_t y = 0; y < a->height; y++)
        for (size_t x = 0; x < (size_t)a->width * a->channels; x++) {
            int v = abs(ts_image_row(a, y)[x] - ts_image_row(b, y)[x]);
            sum += (uint64_t)v;
            if (v > d.max)
                d.max = v;
        }
    d.mean = (double)sum / ((double)a->width * a->height * a->channels);
    return d;
}

static void test_adobe_rgb_jpeg_matches_vips_icc_transform(void **s)
{
    (void)s;
    SKIP_WITHOUT_VIPS();
    vips_run("icc_transform " ADOBE " " WORK "/adobe-srgb.png srgb");
    struct ts_image ref = decode_file(WORK "/adobe-srgb.png");
    struct ts_image img = read_whole(ADOBE, NULL);
    struct ts_image raw = decode_file(ADOBE); /* the stored Adobe RGB numbers, unconverted */
    struct diff ours = compare(&img, &ref), unconverted = compare(&raw, &ref);
    print_message("Adobe RGB: ours mean %.3f max %d; unconverted mean %.3f\n", ours.mean, ours.max,
                  unconverted.mean);
    assert_true(ours.mean <= 1.0);
    assert_true(ours.max <= 6);
    /* The profile matters here: without conversion the same comparison fails. */
    assert_true(unconverted.mean > 3.0);
    ts_image_free(&img), ts_image_free(&ref), ts_image_free(&raw);
}

/* The same photograph as a lossless WebP that keeps its Adobe RGB profile in an ICCP chunk. */
static void test_adobe_rgb_webp_matches_vips_icc_transform(void **s)
{
    (void)s;
    SKIP_WITHOUT_VIPS();
    vips_run("copy " ADOBE " " WORK "/adobe.webp[lossless]");
    vips_run("icc_transform " WORK "/adobe.webp " WORK "/adobe-webp-srgb.png srgb");
    struct ts_image ref = decode_file(WORK "/adobe-webp-srgb.png");
    struct ts_image img = read_whole(WORK "/adobe.webp", NULL);
    struct diff ours = compare(&img, &ref);
    print_message("Adobe RGB WebP: ours mean %.3f max %d\n", ours.mean, ours.max);
    assert_true(ours.mean <= 1.0);
    assert_true(ours.max <= 6);
    ts_image_free(&img), ts_image_free(&ref);
}

static void test_cmyk_jpeg_without_profile_matches_vips_fallback(void **s)
{
    (void)s;
    SKIP_WITHOUT_VIPS();
    vips_run("icc_transform " CMYK " " WORK "/cmyk-srgb.png srgb --input-profile cmyk");
    struct ts_image ref = decode_file(WORK "/cmyk-srgb.png");
    struct ts_image img = read_whole(CMYK, NULL);
    struct diff d = compare(&img, &ref);
    print_message("CMYK fallback: mean %.3f max %d\n", d.mean, d.max);
    assert_int_equal(img.channels, 3);
    assert_true(d.mean <= 1.5);
    assert_true(d.max <= 12);
    ts_image_free(&img), ts_image_free(&ref);
}

static void test_cmyk_region_read_equals_same_part_of_full_read(void **s)
{
    (void)s;
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    struct ts_image part, full = read_whole(CMYK, NULL);
    assert_int_equal(ts_reader_open(CMYK, &r, &err), TS_OK);
    struct ts_read_req q = {.x = 64, .y = 40, .w = 100, .h = 80};
    assert_int_equal(ts_reader_read(r, &q, &part, &err), TS_OK);
    for (uint32_t y = 0; y < 80; y++)
        assert_memory_equal(ts_image_row(&part, y), ts_image_row(&full, 40 + y) + 64 * 3, 300);
    ts_image_free(&part), ts_image_free(&full);
    ts_reader_close(r);
}

/* A 16-bit source with an Adobe RGB profile: converted from 16-bit samples, not truncated. */
static void check_16bit_with_profile(const char *ext, const char *make_args)
{
    char args[2048], path[512], ref_path[512];
    uint32_t bits = 0;
    snprintf(path, sizeof path, WORK "/adobe16.%s", ext);
    snprintf(ref_path, sizeof ref_path, WORK "/adobe16-%s-srgb.png", ext);
    snprintf(args, sizeof args, "colourspace " ADOBE " %s rgb16 %s", path, make_args);
    vips_run(args);
    snprintf(args, sizeof args, "icc_transform %s %s srgb", path, ref_path);
    vips_run(args);
    struct ts_image ref = decode_file(ref_path);
    struct ts_image img = read_whole(path, &bits);
    struct diff d = compare(&img, &ref);
    print_message("16-bit %s with profile: mean %.3f max %d\n", ext, d.mean, d.max);
    assert_int_equal(bits, 16);
    assert_true(d.mean <= 1.0);
    assert_true(d.max <= 6);
    ts_image_free(&img), ts_image_free(&ref);
}

static void test_16bit_tiff_with_adobe_profile_matches_vips(void **s)
{
    (void)s;
    SKIP_WITHOUT_VIPS();
    check_16bit_with_profile("tif", "");
}

static void test_16bit_png_with_adobe_profile_matches_vips(void **s)
{
    (void)s;
    SKIP_WITHOUT_VIPS();
    check_16bit_with_profile("png", "");
}

/* Without a profile 16-bit samples are scaled, within a level of libvips' 8-bit conversion. */
static void check_16bit_plain(const char *ext)
{
    char args[2048], path[512], ref_path[512];
    uint32_t bits = 0;
    snprintf(path, sizeof path, WORK "/plain16.%s", ext);
    snprintf(ref_path, sizeof ref_path, WORK "/plain16-%s.png", ext);
    /* A smooth 16-bit ramp with every low byte in use, and no profile. */
    snprintf(args, sizeof args, "colourspace " ADOBE " %s[strip] rgb16", path);
    vips_run(args);
    snprintf(args, sizeof args, "colourspace %s %s srgb", path, ref_path);
    vips_run(args);
    struct ts_image ref = decode_file(ref_path);
    struct ts_image img = read_whole(path, &bits);
    struct diff d = compare(&img, &ref);
    print_message("16-bit %s without profile: mean %.3f max %d\n", ext, d.mean, d.max);
    assert_int_equal(bits, 16);
    assert_true(d.max <= 1);
    ts_image_free(&img), ts_image_free(&ref);
}

static void test_16bit_tiff_scales_like_vips_within_one_level(void **s)
{
    (void)s;
    SKIP_WITHOUT_VIPS();
    check_16bit_plain("tif");
}

static void test_16bit_png_scales_like_vips_within_one_level(void **s)
{
    (void)s;
    SKIP_WITHOUT_VIPS();
    check_16bit_plain("png");
}

static uint8_t *save_profile(cmsHPROFILE p, size_t *len)
{
    cmsUInt32Number n = 0;
    uint8_t *mem;
    assert_non_null(p);
    assert_true(cmsSaveProfileToMem(p, NULL, &n));
    mem = malloc(n);
    assert_non_null(mem);
    assert_true(cmsSaveProfileToMem(p, mem, &n));
    cmsCloseProfile(p);
    *len = n;
    return mem;
}

/* Adobe RGB (1998) built from its published primaries and gamma, independent of the readers. */
static uint8_t *adobe_rgb_profile(size_t *len)
{
    cmsCIExyY white = {0.3127, 0.3290, 1.0};
    cmsCIExyYTRIPLE prim = {{0.64, 0.33, 1.0}, {0.21, 0.71, 1.0}, {0.15, 0.06, 1.0}};
    cmsToneCurve *g = cmsBuildGamma(NULL, 563.0 / 256.0);
    cmsToneCurve *curves[3] = {g, g, g};
    cmsHPROFILE p = cmsCreateRGBProfile(&white, &prim, curves);
    cmsFreeToneCurve(g);
    return save_profile(p, len);
}

static void test_srgb_profile_needs_no_transform(void **s)
{
    (void)s;
    size_t len, alen;
    uint8_t *srgb = save_profile(cmsCreate_sRGBProfile(), &len);
    uint8_t *adobe = adobe_rgb_profile(&alen);
    struct ts_color_layout lay = {.space = TS_COLOR_RGB, .bytes = 1};
    struct ts_color_xform *x = (struct ts_color_xform *)1;
    struct ts_err err = {0};
    assert_true(ts_color_profile_is_srgb(srgb, len));
    assert_false(ts_color_profile_is_srgb(adobe, alen));
    assert_int_equal(ts_color_xform_create(srgb, len, &lay, &x, &err), TS_OK);
    assert_null(x);
    /* No profile at all on RGB: taken as sRGB. */
    x = (struct ts_color_xform *)1;
    assert_int_equal(ts_color_xform_create(NULL, 0, &lay, &x, &err), TS_OK);
    assert_null(x);
    free(srgb), free(adobe);
}

static void test_rgba_transform_converts_colour_and_copies_alpha(void **s)
{
    (void)s;
    size_t len;
    uint8_t *adobe = adobe_rgb_profile(&len);
    struct ts_color_layout lay = {.space = TS_COLOR_RGB, .alpha = true, .bytes = 1};
    struct ts_color_xform *x = NULL;
    struct ts_err err = {0};
    /* Adobe RGB pure green lies outside sRGB; mid gray stays neutral; white stays white. */
    const uint8_t src[3][4] = {{0, 255, 0, 17}, {128, 128, 128, 200}, {255, 255, 255, 0}};
    uint8_t dst[3][4];
    assert_int_equal(ts_color_xform_create(adobe, len, &lay, &x, &err), TS_OK);
    assert_non_null(x);
    assert_int_equal(ts_color_xform_channels(x), 4);
    ts_color_xform_pixels(x, src, &dst[0][0], 3);
    assert_int_equal(dst[0][3], 17);
    assert_int_equal(dst[1][3], 200);
    assert_int_equal(dst[2][3], 0);
    /* Clipped green: red and blue at 0, green at full. */
    assert_true(dst[0][0] <= 2 && dst[0][1] >= 250 && dst[0][2] <= 2);
    /* Same gamma-2.2-ish neutral: gray stays gray, close to where it was. */
    assert_true(abs(dst[1][0] - dst[1][1]) <= 1 && abs(dst[1][1] - dst[1][2]) <= 1);
    assert_true(abs(dst[1][1] - 128) <= 6);
    assert_true(dst[2][0] >= 254 && dst[2][1] >= 254 && dst[2][2] >= 254);
    ts_color_xform_free(x);
    free(adobe);
}

static void test_in_place_image_transform_matches_pixel_transform(void **s)
{
    (void)s;
    size_t len;
    uint8_t *adobe = adobe_rgb_profile(&len);
    struct ts_color_layout lay = {.space = TS_COLOR_RGB, .bytes = 1};
    struct ts_color_xform *x = NULL;
    struct ts_err err = {0};
    struct ts_image img;
    uint8_t orig[16 * 8 * 3], want[16 * 8 * 3];
    assert_int_equal(ts_color_xform_create(adobe, len, &lay, &x, &err), TS_OK);
    assert_int_equal(ts_image_alloc(&img, 16, 8, 3), TS_OK);
    for (size_t i = 0; i < sizeof orig; i++)
        orig[i] = (uint8_t)(i * 37 + i / 7);
    memcpy(img.data, orig, sizeof orig);
    ts_color_xform_pixels(x, orig, want, 16 * 8);
    assert_int_equal(ts_color_xform_image(x, &img, &err), TS_OK);
    assert_memory_equal(img.data, want, sizeof want);
    assert_memory_not_equal(img.data, orig, sizeof orig);
    /* A layout that does not fit the transform is refused, not overrun. */
    struct ts_image gray;
    assert_int_equal(ts_image_alloc(&gray, 4, 4, 1), TS_OK);
    assert_int_equal(ts_color_xform_image(x, &gray, &err), TS_EINVAL);
    ts_image_free(&gray), ts_image_free(&img);
    ts_color_xform_free(x);
    free(adobe);
}

static void test_cmyk_without_profile_maps_paper_and_ink(void **s)
{
    (void)s;
    struct ts_color_layout plain = {.space = TS_COLOR_CMYK, .bytes = 1};
    struct ts_color_layout adobe = {.space = TS_COLOR_CMYK, .inverted = true, .bytes = 1};
    struct ts_color_xform *x = NULL, *xi = NULL;
    struct ts_err err = {0};
    const uint8_t ink[3][4] = {{0, 0, 0, 0}, {0, 0, 0, 255}, {255, 0, 0, 0}};
    const uint8_t inv[3][4] = {{255, 255, 255, 255}, {255, 255, 255, 0}, {0, 255, 255, 255}};
    uint8_t a[3][3], b[3][3];
    assert_int_equal(ts_color_xform_create(NULL, 0, &plain, &x, &err), TS_OK);
    assert_int_equal(ts_color_xform_create(NULL, 0, &adobe, &xi, &err), TS_OK);
    assert_non_null(x);
    assert_non_null(xi);
    assert_int_equal(ts_color_xform_channels(x), 3);
    ts_color_xform_pixels(x, ink, &a[0][0], 3);
    ts_color_xform_pixels(xi, inv, &b[0][0], 3);
    assert_memory_equal(a, b, sizeof a);
    assert_true(a[0][0] >= 245 && a[0][1] >= 245 && a[0][2] >= 245); /* bare paper */
    assert_true(a[1][0] < 70 && a[1][1] < 70 && a[1][2] < 70);       /* full black ink */
    assert_true(a[2][0] < 100 && a[2][2] > 150);                     /* cyan: no red, blue */
    ts_color_xform_free(x), ts_color_xform_free(xi);
}

static void test_unusable_profile_is_rejected_but_cmyk_falls_back(void **s)
{
    (void)s;
    uint8_t junk[200];
    size_t len;
    uint8_t *adobe = adobe_rgb_profile(&len);
    struct ts_color_layout rgb = {.space = TS_COLOR_RGB, .bytes = 1};
    struct ts_color_layout gray = {.space = TS_COLOR_GRAY, .bytes = 1};
    struct ts_color_layout cmyk = {.space = TS_COLOR_CMYK, .bytes = 1};
    struct ts_color_xform *x = (struct ts_color_xform *)1;
    struct ts_err err = {0};
    memset(junk, 0x5a, sizeof junk);
    assert_int_equal(ts_color_xform_create(junk, sizeof junk, &rgb, &x, &err), TS_ECODEC);
    assert_null(x);
    /* An RGB profile on gray pixels does not fit. */
    assert_int_equal(ts_color_xform_create(adobe, len, &gray, &x, &err), TS_ECODEC);
    assert_null(x);
    assert_int_equal(ts_color_xform_create(adobe, len, &cmyk, &x, &err), TS_OK);
    assert_non_null(x);
    ts_color_xform_free(x);
    free(adobe);
}

static void test_16bit_samples_convert_from_full_precision(void **s)
{
    (void)s;
    size_t len;
    uint8_t *adobe = adobe_rgb_profile(&len);
    struct ts_color_layout l16 = {.space = TS_COLOR_RGB, .bytes = 2};
    struct ts_color_xform *x16 = NULL;
    struct ts_err err = {0};
    uint16_t src[64][3];
    uint8_t out[64][3];
    double ref[64][3];
    assert_int_equal(ts_color_xform_create(adobe, len, &l16, &x16, &err), TS_OK);
    /* Values between 8-bit codes, so only the low bytes tell them apart. */
    for (int i = 0; i < 64; i++)
        for (int c = 0; c < 3; c++)
            src[i][c] = (uint16_t)(i * 1021 + c * 4099 + 77);
    ts_color_xform_pixels(x16, src, &out[0][0], 64);
    /* Reference: lcms2 in floating point straight to sRGB. */
    cmsHPROFILE in = cmsOpenProfileFromMem(adobe, (cmsUInt32Number)len);
    cmsHPROFILE srgb = cmsCreate_sRGBProfile();
    cmsHTRANSFORM t =
        cmsCreateTransform(in, TYPE_RGB_16, srgb, TYPE_RGB_DBL, INTENT_RELATIVE_COLORIMETRIC, 0);
    assert_non_null(t);
    cmsDoTransform(t, src, ref, 64);
    /* lcms2's optimised 16-bit pipeline interpolates its curves: a level or two off near
     * black, where the tone curves are steepest; swapped bytes would be far worse. */
    double sum = 0;
    for (int i = 0; i < 64; i++)
        for (int c = 0; c < 3; c++) {
            double want = ref[i][c] * 255.0;
            want = want < 0 ? 0 : want > 255 ? 255 : want;
            sum += fabs(out[i][c] - want);
            if (fabs(out[i][c] - want) > 2.5)
                fail_msg("pixel %d channel %d: got %u, want %.2f", i, c, out[i][c], want);
        }
    print_message("16-bit samples: mean error %.3f levels\n", sum / (64 * 3));
    assert_true(sum / (64 * 3) < 0.6);
    cmsDeleteTransform(t);
    cmsCloseProfile(in), cmsCloseProfile(srgb);
    ts_color_xform_free(x16);
    free(adobe);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adobe_rgb_jpeg_matches_vips_icc_transform),
        cmocka_unit_test(test_adobe_rgb_webp_matches_vips_icc_transform),
        cmocka_unit_test(test_cmyk_jpeg_without_profile_matches_vips_fallback),
        cmocka_unit_test(test_cmyk_region_read_equals_same_part_of_full_read),
        cmocka_unit_test(test_16bit_tiff_with_adobe_profile_matches_vips),
        cmocka_unit_test(test_16bit_png_with_adobe_profile_matches_vips),
        cmocka_unit_test(test_16bit_tiff_scales_like_vips_within_one_level),
        cmocka_unit_test(test_16bit_png_scales_like_vips_within_one_level),
        cmocka_unit_test(test_srgb_profile_needs_no_transform),
        cmocka_unit_test(test_rgba_transform_converts_colour_and_copies_alpha),
        cmocka_unit_test(test_in_place_image_transform_matches_pixel_transform),
        cmocka_unit_test(test_cmyk_without_profile_maps_paper_and_ink),
        cmocka_unit_test(test_unusable_profile_is_rejected_but_cmyk_falls_back),
        cmocka_unit_test(test_16bit_samples_convert_from_full_precision),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
