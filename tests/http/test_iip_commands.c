/* iipsrv 1.3's image commands over HTTP: CNT=st and CNT=eq (one whole-image mapping for every
 * tile), SHD hill shading, MINMAX on 16-bit samples, LYR quality layers and SDS views of an
 * image sequence, each against its definition on images written here; and none of them shares
 * a cached answer with a request without it. */
#include "grid.h"
#include "harness.h"
#include "testutil.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
#include <unistd.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

static struct tu_server server;
static char root[1024];
static bool have_jp2; /* multi.jp2 was made (opj_compress is installed) */

/* name below the root, written by grid_write_tiff_fn. */
static int write_tiff(const char *name, uint32_t w, uint32_t h, uint16_t spp, uint16_t bps,
                      grid_sample_fn f)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", root, name);
    return grid_write_tiff_fn(path, w, h, spp, bps, f);
}

/* low.tif: a horizontal ramp from 100 to 150, 512 x 256. */
static uint16_t low_contrast(uint32_t x, uint32_t y, uint32_t c)
{
    (void)y, (void)c;
    return (uint16_t)(100 + x * 50 / 511);
}

/* skewed.tif: three quarters of the rows at 10, the last quarter at 200. */
static uint16_t skewed(uint32_t x, uint32_t y, uint32_t c)
{
    (void)x, (void)c;
    return y < 192 ? 10 : 200;
}

/* normal.tif: a normal map, flat on the left, tilted on the right. */
static const uint8_t normal_left[3] = {128, 128, 255}, normal_right[3] = {40, 160, 200};
static uint16_t normal_map(uint32_t x, uint32_t y, uint32_t c)
{
    (void)y;
    return x < 128 ? normal_left[c] : normal_right[c];
}

/* g16.tif: 16-bit gray, 20000 on the left, 40000 on the right. */
static uint16_t two_levels16(uint32_t x, uint32_t y, uint32_t c)
{
    (void)y, (void)c;
    return x < 32 ? 20000 : 40000;
}

/* The sequence "seq" (FILENAME_PATTERN's default "_pyr_"): views (0, 90), (10, 90) and
 * (0, 80), each one flat gray level. */
static const struct {
    const char *name;
    uint16_t level;
} views[] = {
    {"seq_pyr_000_090.tif", 30}, {"seq_pyr_010_090.tif", 120}, {"seq_pyr_000_080.tif", 210}};
static uint16_t view_level;
static uint16_t flat(uint32_t x, uint32_t y, uint32_t c)
{
    (void)x, (void)y, (void)c;
    return view_level;
}

/* A detailed 8-bit picture (smooth waves and noise) that loses visibly at 40:1. */
static int make_multilayer_jp2(void)
{
    if (system("command -v opj_compress >/dev/null 2>&1") != 0)
        return 0;
    struct ts_image img;
    if (ts_image_alloc(&img, 192, 160, 3) != TS_OK)
        return -1;
    uint32_t seed = 12345;
    for (uint32_t y = 0; y < img.height; y++)
        for (uint32_t x = 0; x < img.width; x++)
            for (uint32_t c = 0; c < 3; c++) {
                seed = seed * 1103515245u + 12345u;
                double v = 128 + 60 * sin(x * 0.3 + c) * cos(y * 0.21) + (int)(seed >> 27) - 16;
                ts_image_row(&img, y)[x * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    char ppm[2048], cmd[5000];
    snprintf(ppm, sizeof ppm, "%s/multi.ppm", TESSERA_TEST_WORK);
    int rc = tu_write_ppm(ppm, &img);
    ts_image_free(&img);
    if (rc)
        return -1;
    /* Three quality layers: 40:1, 10:1 and lossless. */
    snprintf(cmd, sizeof cmd, "opj_compress -i '%s' -o '%s/multi.jp2' -r 40,10,1 >/dev/null 2>&1",
             ppm, root);
    if (system(cmd) != 0)
        return -1;
    have_jp2 = true;
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "%s/root", TESSERA_TEST_WORK);
    if (tu_mkdirs(root) != 0 || write_tiff("low.tif", 512, 256, 1, 8, low_contrast) != 0 ||
        write_tiff("skewed.tif", 256, 256, 1, 8, skewed) != 0 ||
        write_tiff("normal.tif", 256, 64, 3, 8, normal_map) != 0 ||
        write_tiff("g16.tif", 64, 64, 1, 16, two_levels16) != 0 || make_multilayer_jp2() != 0)
        return -1;
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) {
        view_level = views[i].level;
        if (write_tiff(views[i].name, 64, 64, 1, 8, flat) != 0)
            return -1;
    }
    return tu_server_start(&server, TESSERA_BIN, root, NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    return tu_server_stop(&server) == 0 ? 0 : -1;
}

static void get(const char *query, struct tu_response *r)
{
    char url[4096];
    snprintf(url, sizeof url, "%s/fcgi-bin/iipsrv.fcgi?%s", server.base, query);
    if (tu_request("GET", url, NULL, r) != 0)
        fail_msg("GET %s: no response (curl code %d)", query, r->curl_code);
    if (r->status != 200)
        fail_msg("%s: status %ld: %.200s", query, r->status,
                 r->body.data ? (const char *)r->body.data : "");
}

static void get_image(const char *query, struct ts_image *img)
{
    struct tu_response r;
    get(query, &r);
    assert_int_equal(tu_decode(r.body.data, r.body.len, img), 0);
    tu_response_free(&r);
}

static int px(const struct ts_image *img, uint32_t x, uint32_t y)
{
    return ts_image_row(img, y)[(size_t)x * img->channels];
}

static int to8(double v)
{
    v *= 255.0;
    return v <= 0.0 ? 0 : v >= 255.0 ? 255 : (int)(v + 0.5);
}

/* The ramp's 100..150 spread over 0..255, with the same mapping in a whole image and in each
 * tile: the right-hand tile starts mid-grey, not black, as a per-tile stretch would make it. */
static void test_stretch_spans_full_scale_with_one_mapping_for_every_tile(void **state)
{
    (void)state;
    struct ts_image whole, tile;
    get_image("FIF=low.tif&CNT=st&WID=512&CVT=png", &whole);
    assert_int_equal(whole.width, 512);
    assert_true(px(&whole, 0, 100) <= 3);
    assert_true(px(&whole, 511, 100) >= 252);
    for (uint32_t x = 0; x < 512; x += 37) {
        int want = to8((low_contrast(x, 0, 0) - 100) / 50.0);
        if (abs(px(&whole, x, 100) - want) > 4)
            fail_msg("x %u: want %d, got %d", x, want, px(&whole, x, 100));
    }
    /* Resolution 1 is the full 512 x 256: two tiles side by side. */
    get_image("FIF=low.tif&CNT=st&PTL=1,1", &tile);
    assert_int_equal(tile.width, 256);
    for (uint32_t x = 0; x < 256; x += 51)
        if (abs(px(&tile, x, 10) - px(&whole, 256 + x, 10)) > 3)
            fail_msg("tile x %u: %d, whole image %d", x, px(&tile, x, 10), px(&whole, 256 + x, 10));
    assert_true(abs(px(&tile, 0, 10) - to8((low_contrast(256, 0, 0) - 100) / 50.0)) <= 4);
    ts_image_free(&tile);
    ts_image_free(&whole);
}

/* Three quarters of the pixels at 10 and a quarter at 200: equalised, 10 lands at 3/4 of the
 * scale and 200 at the top; a tile of the image is mapped the same way. */
static void test_equalization_follows_the_cumulative_histogram(void **state)
{
    (void)state;
    struct ts_image img;
    get_image("FIF=skewed.tif&CNT=eq&CVT=png", &img);
    assert_int_equal(img.height, 256);
    assert_true(abs(px(&img, 100, 50) - 191) <= 1); /* 255 * 0.75 = 191.25 */
    assert_int_equal(px(&img, 100, 240), 255);
    ts_image_free(&img);
    get_image("FIF=skewed.tif&CNT=eq&PTL=0,0", &img);
    assert_true(abs(px(&img, 10, 10) - 191) <= 1);
    ts_image_free(&img);
}

static int shade_expect(int h, int vd, const uint8_t rgb[3])
{
    double a = h * M_PI / 180.0, sy = cos(a), sx = sqrt(1.0 - sy * sy),
           sz = -sin(vd * M_PI / 180.0);
    if (h > 180)
        sx = -sx;
    double len = sqrt(sx * sx + sy * sy + sz * sz), s[3] = {sx / len, sy / len, sz / len}, d = 0;
    for (int k = 0; k < 3; k++)
        d += s[k] * -(rgb[k] / 255.0 - 0.5) * 2.0;
    return to8(0.5 * d);
}

/* SHD lights the normal map: one gray channel, each side as iipsrv's formula gives it. */
static void test_hill_shading_lights_a_normal_map(void **state)
{
    (void)state;
    static const int lights[3][2] = {{270, 20}, {135, 60}, {0, 0}};
    for (int l = 0; l < 3; l++) {
        char q[128];
        snprintf(q, sizeof q, "FIF=normal.tif&SHD=%d,%d&WID=256&CVT=png", lights[l][0],
                 lights[l][1]);
        struct ts_image img;
        get_image(q, &img);
        assert_int_equal(img.channels, 1);
        int left = shade_expect(lights[l][0], lights[l][1], normal_left);
        int right = shade_expect(lights[l][0], lights[l][1], normal_right);
        if (abs(px(&img, 40, 30) - left) > 1 || abs(px(&img, 220, 30) - right) > 1)
            fail_msg("%s: left %d (want %d), right %d (want %d)", q, px(&img, 40, 30), left,
                     px(&img, 220, 30), right);
        ts_image_free(&img);
    }
}

/* MINMAX maps 10000..50000 of the 16-bit samples onto 0..255: 20000 to a quarter, 40000 to
 * three quarters (within the 8-bit step the reader delivers, 1/255 of the full range). */
static void test_minmax_normalises_16_bit_samples(void **state)
{
    (void)state;
    struct ts_image img;
    get_image("FIF=g16.tif&WID=64&CVT=png", &img);
    assert_true(abs(px(&img, 10, 10) - to8(20000 / 65535.0)) <= 1);
    assert_true(abs(px(&img, 50, 10) - to8(40000 / 65535.0)) <= 1);
    ts_image_free(&img);
    get_image("FIF=g16.tif&MINMAX=0:10000,50000&WID=64&CVT=png", &img);
    int lo = to8(10000.0 / 40000.0), hi = to8(30000.0 / 40000.0);
    if (abs(px(&img, 10, 10) - lo) > 2 || abs(px(&img, 50, 10) - hi) > 2)
        fail_msg("MINMAX: %d and %d, want %d and %d", px(&img, 10, 10), px(&img, 50, 10), lo, hi);
    ts_image_free(&img);
    /* A channel the image does not have is ignored, as iipsrv ignores it. */
    get_image("FIF=g16.tif&MINMAX=2:10000,50000&WID=64&CVT=png", &img);
    assert_true(abs(px(&img, 10, 10) - to8(20000 / 65535.0)) <= 1);
    ts_image_free(&img);
}

static double mean_abs_diff(const struct ts_image *a, const struct ts_image *b)
{
    assert_int_equal(a->width, b->width);
    assert_int_equal(a->height, b->height);
    assert_int_equal(a->channels, b->channels);
    double sum = 0;
    for (uint32_t y = 0; y < a->height; y++)
        for (uint32_t i = 0; i < a->width * a->channels; i++)
            sum += abs(ts_image_row(a, y)[i] - ts_image_row(b, y)[i]);
    return sum / ((double)a->width * a->height * a->channels);
}

/* LYR=1 decodes the 40:1 layer alone: visibly different from the full decode; as many layers
 * as the image has, or more, is the full decode. */
static void test_layers_limit_the_jpeg2000_decode(void **state)
{
    (void)state;
    if (!have_jp2)
        skip();
    struct ts_image full, one, three, many;
    get_image("FIF=multi.jp2&WID=192&CVT=png", &full);
    get_image("FIF=multi.jp2&LYR=1&WID=192&CVT=png", &one);
    get_image("FIF=multi.jp2&LYR=3&WID=192&CVT=png", &three);
    get_image("FIF=multi.jp2&LYR=40&WID=192&CVT=png", &many);
    assert_true(mean_abs_diff(&full, &one) > 2.0);
    assert_true(mean_abs_diff(&full, &three) == 0.0);
    assert_true(mean_abs_diff(&full, &many) == 0.0);
    /* And the full decode is the lossless source. */
    char ppm[2048];
    struct ts_image src;
    snprintf(ppm, sizeof ppm, "%s/multi.ppm", TESSERA_TEST_WORK);
    assert_int_equal(tu_load_pnm(ppm, &src), 0);
    assert_true(mean_abs_diff(&full, &src) == 0.0);
    ts_image_free(&src);
    ts_image_free(&full);
    ts_image_free(&one);
    ts_image_free(&three);
    ts_image_free(&many);
}

static void get_text(const char *query, long status, const char *want)
{
    char url[4096];
    struct tu_response r;
    snprintf(url, sizeof url, "%s/fcgi-bin/iipsrv.fcgi?%s", server.base, query);
    if (tu_request("GET", url, NULL, &r) != 0)
        fail_msg("GET %s: no response", query);
    const char *body = r.body.data ? (const char *)r.body.data : "";
    if (r.status != status || (want && strcmp(body, want)))
        fail_msg("%s: status %ld, body '%s'; want %ld '%s'", query, r.status, body, status,
                 want ? want : "");
    tu_response_free(&r);
}

/* A FIF that names no file but a sequence: SDS picks the view file (iipsrv's 0, 90 when not
 * given; "h" alone means vertical angle 0), and OBJ lists the views as iipsrv finds them. */
static void test_sds_serves_the_views_of_an_image_sequence(void **state)
{
    (void)state;
    static const struct {
        const char *query;
        int level;
    } cases[] = {{"FIF=seq&WID=32&CVT=png", 30},
                 {"FIF=seq&SDS=10,90&WID=32&CVT=png", 120},
                 {"FIF=seq&SDS=0,80&WID=32&CVT=png", 210},
                 {"FIF=seq&SDS=0,80&PTL=0,0", 210}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ts_image img;
        get_image(cases[i].query, &img);
        if (px(&img, 5, 5) != cases[i].level)
            fail_msg("%s: level %d, want %d", cases[i].query, px(&img, 5, 5), cases[i].level);
        ts_image_free(&img);
    }
    get_text("FIF=seq&SDS=10&JTL=0,0", 404, NULL); /* view (10, 0) has no file */
    get_text("FIF=nothing&JTL=0,0", 404, NULL);
    get_text("FIF=seq&OBJ=IIP,1.0&OBJ=Horizontal-views&OBJ=Vertical-views", 200,
             "IIP:1.0\r\nHorizontal-views:0 10\r\nVertical-views:80 90\r\n");
    get_text("FIF=low.tif&OBJ=IIP,1.0&OBJ=Horizontal-views&OBJ=Vertical-views", 200,
             "IIP:1.0\r\nHorizontal-views:0\r\nVertical-views:90\r\n");
}

static bool same_body(const char *a, const char *b)
{
    struct tu_response ra, rb;
    get(a, &ra);
    get(b, &rb);
    bool same = ra.body.len == rb.body.len && !memcmp(ra.body.data, rb.body.data, ra.body.len);
    tu_response_free(&ra);
    tu_response_free(&rb);
    return same;
}

/* The response cache: a request that differs only in one of these commands gets its own answer,
 * whichever was asked (and cached) first; asked again, each gets its own back. */
static void test_commands_do_not_share_cached_answers(void **state)
{
    (void)state;
    static const char *const pairs[][2] = {
        {"FIF=low.tif&PTL=1,0", "FIF=low.tif&CNT=st&PTL=1,0"},
        {"FIF=skewed.tif&WID=128&CVT=png", "FIF=skewed.tif&CNT=eq&WID=128&CVT=png"},
        {"FIF=normal.tif&WID=128&CVT=png", "FIF=normal.tif&SHD=90,10&WID=128&CVT=png"},
        {"FIF=g16.tif&WID=64&CVT=png", "FIF=g16.tif&MINMAX=0:10000,50000&WID=64&CVT=png"},
        {"FIF=multi.jp2&WID=96&CVT=png", "FIF=multi.jp2&LYR=1&WID=96&CVT=png"},
        {"FIF=seq&WID=32&CVT=png", "FIF=seq&SDS=10,90&WID=32&CVT=png"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        if (!have_jp2 && strstr(pairs[i][0], "jp2"))
            continue;
        if (same_body(pairs[i][0], pairs[i][1]) || same_body(pairs[i][1], pairs[i][0]))
            fail_msg("%s and %s got the same bytes", pairs[i][0], pairs[i][1]);
        assert_true(same_body(pairs[i][0], pairs[i][0]));
        assert_true(same_body(pairs[i][1], pairs[i][1]));
    }
}

int main(void)
{
    tu_http_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stretch_spans_full_scale_with_one_mapping_for_every_tile),
        cmocka_unit_test(test_equalization_follows_the_cumulative_histogram),
        cmocka_unit_test(test_hill_shading_lights_a_normal_map),
        cmocka_unit_test(test_minmax_normalises_16_bit_samples),
        cmocka_unit_test(test_layers_limit_the_jpeg2000_decode),
        cmocka_unit_test(test_sds_serves_the_views_of_an_image_sequence),
        cmocka_unit_test(test_commands_do_not_share_cached_answers),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
