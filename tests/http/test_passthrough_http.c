/* The passthrough rule over HTTP, on a pyramid libvips wrote at Q95 (as many masters are):
 * "quality" re-encodes its tiles at the output quality, "always" sends the stored bytes.
 * libvips 8.14 codes tiles as RGB at Q90 and above, so a Q88 pyramid (YCbCr) shows the
 * quantisation test on its own. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "image/reader.h"
#include "render/passthrough.h"
#include "testutil.h"

#define TILE_URL "/iiif/3/q95.tif/256,256,256,256/256,/0/default.jpg"
#define EDGE_URL "/iiif/3/q95.tif/1280,1280,131,131/131,/0/default.jpg"

static char g_root[1024], g_tif[1100], g_tif88[1100];

static int group_setup(void **state)
{
    (void)state;
    char cmd[4096];
    if (system("vips --version >/dev/null 2>&1") != 0)
        return 0; /* each test skips */
    snprintf(g_root, sizeof g_root, "%s/root", TESSERA_TEST_WORK);
    snprintf(g_tif, sizeof g_tif, "%s/q95.tif", g_root);
    if (tu_mkdirs(g_root) != 0)
        return -1;
    snprintf(cmd, sizeof cmd,
             "vips tiffsave '%s/retina-1411x1411.jpg' '%s' --tile --pyramid --compression jpeg "
             "--Q 95 --tile-width 256 --tile-height 256 >/dev/null 2>&1",
             TESSERA_TEST_DATA, g_tif);
    if (system(cmd) != 0)
        return -1;
    snprintf(g_tif88, sizeof g_tif88, "%s/q88.tif", g_root);
    snprintf(cmd, sizeof cmd,
             "vips tiffsave '%s/retina-1411x1411.jpg' '%s' --tile --pyramid --compression jpeg "
             "--Q 88 --tile-width 256 --tile-height 256 >/dev/null 2>&1",
             TESSERA_TEST_DATA, g_tif88);
    return system(cmd) == 0 ? 0 : -1;
}

static void get_tile_q(const char *rule, const char *outq, const char *path, struct tu_response *r,
                       char *etag, size_t etag_cap)
{
    struct tu_server s;
    const char *args[] = {"--passthrough", rule, "--jpeg-quality", outq, NULL};
    char url[2048];
    assert_int_equal(tu_server_start(&s, TESSERA_BIN, g_root, args), 0);
    snprintf(url, sizeof url, "%s%s", s.base, path);
    assert_int_equal(tu_request("GET", url, NULL, r), 0);
    assert_int_equal(r->status, 200);
    assert_true(tu_header(r, "ETag", 0, etag, etag_cap));
    assert_int_equal(tu_server_stop(&s), 0);
}

static void get_tile(const char *rule, const char *path, struct tu_response *r, char *etag,
                     size_t etag_cap)
{
    get_tile_q(rule, "85", path, r, etag, etag_cap);
}

/* The stored tile as passthrough would send it, straight from the reader. */
static void stored_tile(uint32_t col, uint32_t row, struct ts_buf *out)
{
    struct ts_reader *rd = NULL;
    struct ts_err err = {0};
    uint32_t w = 0, h = 0;
    assert_int_equal(ts_reader_open(g_tif, &rd, &err), TS_OK);
    assert_int_equal(rd->ops->raw_tile(rd, 0, col, row, out, &w, &h, &err), TS_OK);
    ts_reader_close(rd);
}

static void test_quality_rule_reencodes_a_q95_tile_that_always_sends_as_stored(void **state)
{
    (void)state;
    if (!g_tif[0]) {
        print_message("vips not installed: Q95 pyramid not made\n");
        skip();
    }
    struct tu_response q = {0}, a = {0};
    struct ts_buf stored = {0};
    struct ts_image img = {0};
    char etag_q[64], etag_a[64];
    get_tile("quality", TILE_URL, &q, etag_q, sizeof etag_q);
    get_tile("always", TILE_URL, &a, etag_a, sizeof etag_a);
    stored_tile(1, 1, &stored);

    assert_int_equal(passthrough_jpeg_quality(stored.data, stored.len), 95);
    assert_int_equal(a.body.len, stored.len);
    assert_memory_equal(a.body.data, stored.data, stored.len);
    int got = passthrough_jpeg_quality(q.body.data, q.body.len);
    if (got != 85)
        fail_msg("quality rule answered a stream of Q%d, want the output Q85", got);
    if (q.body.len >= a.body.len)
        fail_msg("re-encoded tile %zu bytes, stored %zu", q.body.len, a.body.len);
    print_message("Q95 tile: stored %zu bytes, re-encoded at Q85 %zu bytes\n", a.body.len,
                  q.body.len);
    assert_int_equal(tu_decode_body(&q, &img), 0);
    assert_int_equal(img.width, 256);
    assert_int_equal(img.height, 256);
    assert_int_equal(img.channels, 3);
    /* The rule is part of the validator: a client's copy from one rule is not the other's. */
    assert_string_not_equal(etag_q, etag_a);
    ts_image_free(&img);
    ts_buf_free(&stored);
    tu_response_free(&q);
    tu_response_free(&a);
}

static void test_quality_rule_reencodes_a_cropped_edge_tile_at_its_size(void **state)
{
    (void)state;
    if (!g_tif[0])
        skip();
    struct tu_response q = {0}, a = {0};
    struct ts_image iq = {0}, ia = {0};
    char etag[64];
    get_tile("quality", EDGE_URL, &q, etag, sizeof etag);
    get_tile("always", EDGE_URL, &a, etag, sizeof etag);
    assert_int_equal(passthrough_jpeg_quality(q.body.data, q.body.len), 85);
    assert_int_equal(passthrough_jpeg_quality(a.body.data, a.body.len), 95);
    assert_int_equal(tu_decode_body(&q, &iq), 0);
    assert_int_equal(tu_decode_body(&a, &ia), 0);
    assert_int_equal(iq.width, 131);
    assert_int_equal(iq.height, 131);
    assert_int_equal(ia.width, 131);
    assert_int_equal(ia.height, 131);
    ts_image_free(&iq);
    ts_image_free(&ia);
    tu_response_free(&q);
    tu_response_free(&a);
}

static void test_quality_rule_follows_the_output_quality_on_a_ycbcr_pyramid(void **state)
{
    (void)state;
    if (!g_tif88[0])
        skip();
    struct tu_response at85 = {0}, at80 = {0};
    char etag85[64], etag80[64];
    get_tile_q("quality", "85", "/iiif/3/q88.tif/256,256,256,256/256,/0/default.jpg", &at85, etag85,
               sizeof etag85);
    get_tile_q("quality", "80", "/iiif/3/q88.tif/256,256,256,256/256,/0/default.jpg", &at80, etag80,
               sizeof etag80);
    /* 88 is within 5 of 85: the stored tile; not of 80: a re-encode at 80. */
    assert_int_equal(passthrough_jpeg_quality(at85.body.data, at85.body.len), 88);
    assert_int_equal(passthrough_jpeg_quality(at80.body.data, at80.body.len), 80);
    assert_string_not_equal(etag85, etag80);
    tu_response_free(&at85);
    tu_response_free(&at80);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quality_rule_reencodes_a_q95_tile_that_always_sends_as_stored),
        cmocka_unit_test(test_quality_rule_reencodes_a_cropped_edge_tile_at_its_size),
        cmocka_unit_test(test_quality_rule_follows_the_output_quality_on_a_ycbcr_pyramid),
    };
    tu_http_init();
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
