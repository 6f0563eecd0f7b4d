/* iipsrv's WATERMARK over HTTP: the real server started with the variables or the flags adds the
 * mark to tiles and renders of every protocol, exactly where it drew it and nowhere else; a
 * probability of 0 leaves every answer as the unmarked server's; stored tiles are not sent
 * as they are while a mark applies; an unreadable mark stops the start. */
#include "grid.h"
#include "harness.h"
#include "render/passthrough.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

/* The mark: 64 x 48 of (200, 100, 40), its left half opaque and its right half at alpha 102
 * (0.4). At opacity 0.5 it adds (100, 50, 20) on the left, (40, 20, 8) on the right. */
#define MARK_W 64
#define MARK_H 48
static const uint8_t add_opaque[3] = {100, 50, 20};
static const uint8_t add_faint[3] = {40, 20, 8};

static struct tu_server marked;    /* WATERMARK env, opacity 0.5, probability 1 */
static struct tu_server never;     /* --watermark flags, probability 0 */
static struct tu_server plain;     /* no watermark */
static struct tu_server sometimes; /* --watermark-probability 0.5 */
static char root[1024];
static char mark_path[1024];

static int write_mark(void)
{
    struct ts_image m;
    if (ts_image_alloc(&m, MARK_W, MARK_H, 4) != 0)
        return -1;
    for (uint32_t y = 0; y < MARK_H; y++)
        for (uint32_t x = 0; x < MARK_W; x++) {
            uint8_t *p = ts_image_row(&m, y) + x * 4;
            p[0] = 200;
            p[1] = 100;
            p[2] = 40;
            p[3] = x < MARK_W / 2 ? 255 : 102;
        }
    snprintf(mark_path, sizeof mark_path, "%s/mark.png", TESSERA_TEST_WORK);
    int rc = grid_write_png(mark_path, &m, 8);
    ts_image_free(&m);
    return rc;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "%s/root", TESSERA_TEST_WORK);
    if (tu_mkdirs(root) != 0 || tu_make_http_root(root) != 0 || write_mark() != 0)
        return -1;
    /* The stored grid.tif tiles are JPEG Q95: "always" sends them as they are when it may. */
    const char *const pass[] = {"--passthrough", "always", NULL};
    setenv("WATERMARK", mark_path, 1);
    setenv("WATERMARK_OPACITY", "0.5", 1);
    int rc = tu_server_start(&marked, TESSERA_BIN, root, pass);
    unsetenv("WATERMARK");
    unsetenv("WATERMARK_OPACITY");
    const char *const zero[] = {
        "--passthrough",           "always", "--watermark", mark_path, "--watermark-opacity", "0.5",
        "--watermark-probability", "0",      NULL};
    const char *const half[] = {
        "--watermark", mark_path, "--watermark-opacity", "0.5", "--watermark-probability",
        "0.5",         NULL};
    rc = rc ? rc : tu_server_start(&never, TESSERA_BIN, root, zero);
    rc = rc ? rc : tu_server_start(&plain, TESSERA_BIN, root, pass);
    rc = rc ? rc : tu_server_start(&sometimes, TESSERA_BIN, root, half);
    return rc;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = tu_server_stop(&marked);
    rc |= tu_server_stop(&never);
    rc |= tu_server_stop(&plain);
    rc |= tu_server_stop(&sometimes);
    return rc == 0 ? 0 : -1;
}

static void get_ok(const struct tu_server *s, const char *path, struct tu_response *r)
{
    if (tu_get(s, path, r) != 0)
        fail_msg("GET %s: no response (curl code %d)", path, r->curl_code);
    if (r->status != 200)
        fail_msg("GET %s: status %ld: %s", path, r->status,
                 r->body.data ? (const char *)r->body.data : "");
}

static void get_image(const struct tu_server *s, const char *path, struct ts_image *img)
{
    struct tu_response r;
    get_ok(s, path, &r);
    if (tu_decode_body(&r, img) != 0)
        fail_msg("GET %s: body does not decode", path);
    tu_response_free(&r);
}

/* The grid's pixel at (x, y) of the full image. */
static void grid_at(uint32_t x, uint32_t y, uint8_t rgb[3])
{
    grid_pixel_color(GRID_SIZE, GRID_SIZE, GRID_CELLS, x, y, rgb);
}

struct box {
    uint32_t n, minx, miny, maxx, maxy;
};

/* Pixels of img (showing the grid from (gx, gy)) that differ from the grid, within the
 * rectangle (x0, y0, w, h) of img. */
static struct box differing(const struct ts_image *img, uint32_t gx, uint32_t gy, uint32_t x0,
                            uint32_t y0, uint32_t w, uint32_t h)
{
    struct box b = {0, UINT32_MAX, UINT32_MAX, 0, 0};
    for (uint32_t y = y0; y < y0 + h; y++)
        for (uint32_t x = x0; x < x0 + w; x++) {
            uint8_t want[3];
            grid_at(gx + x, gy + y, want);
            if (!memcmp(ts_image_row(img, y) + (size_t)x * img->channels, want, 3))
                continue;
            b.n++;
            b.minx = x < b.minx ? x : b.minx;
            b.miny = y < b.miny ? y : b.miny;
            b.maxx = x > b.maxx ? x : b.maxx;
            b.maxy = y > b.maxy ? y : b.maxy;
        }
    return b;
}

/* Inside the box every pixel is the grid plus the mark's share (clipped at 255). */
static void expect_mark_at(const struct ts_image *img, uint32_t gx, uint32_t gy, uint32_t mx,
                           uint32_t my)
{
    for (uint32_t y = 0; y < MARK_H; y++)
        for (uint32_t x = 0; x < MARK_W; x++) {
            uint8_t g[3];
            grid_at(gx + mx + x, gy + my + y, g);
            const uint8_t *add = x < MARK_W / 2 ? add_opaque : add_faint;
            const uint8_t *p = ts_image_row(img, my + y) + (size_t)(mx + x) * img->channels;
            for (int k = 0; k < 3; k++) {
                unsigned want = g[k] + add[k] > 255 ? 255 : g[k] + add[k];
                if (p[k] != want)
                    fail_msg("mark pixel (%u,%u) channel %d: %u, expected %u + %u", x, y, k, p[k],
                             g[k], add[k]);
            }
        }
}

/* A lossless tile (PNG of a PNG source): one whole mark, pixel-exact, and nothing else
 * changed. The same request again gives the same bytes (the draw is per request). */
static void test_a_tile_carries_one_exact_mark_and_is_otherwise_untouched(void **state)
{
    (void)state;
    static const char *const paths[] = {"/iiif/3/grid.png/0,0,256,256/256,/0/default.png",
                                        "/iiif/2/grid.png/512,256,256,256/256,/0/default.png"};
    static const uint32_t origin[][2] = {{0, 0}, {512, 256}};
    for (int i = 0; i < 2; i++) {
        struct ts_image img;
        get_image(&marked, paths[i], &img);
        assert_int_equal(img.width, 256);
        assert_int_equal(img.height, 256);
        struct box b = differing(&img, origin[i][0], origin[i][1], 0, 0, 256, 256);
        if (b.n == 0 || b.maxx - b.minx + 1 != MARK_W || b.maxy - b.miny + 1 != MARK_H)
            fail_msg("%s: %u changed pixels in a %ux%u box", paths[i], b.n, b.maxx - b.minx + 1,
                     b.maxy - b.miny + 1);
        assert_int_equal(b.n, MARK_W * MARK_H);
        expect_mark_at(&img, origin[i][0], origin[i][1], b.minx, b.miny);
        ts_image_free(&img);

        struct tu_response a, again;
        get_ok(&marked, paths[i], &a);
        get_ok(&marked, paths[i], &again);
        assert_int_equal(a.body.len, again.body.len);
        assert_memory_equal(a.body.data, again.body.data, a.body.len);
        tu_response_free(&a);
        tu_response_free(&again);
    }
}

/* A render larger than twice the tile (iipsrv's CVT) is cut into 512 x 512 blocks for the
 * 256-tiled source, and each block has its own mark inside it. */
static void test_a_large_render_has_one_mark_in_each_block(void **state)
{
    (void)state;
    struct ts_image img;
    get_image(&marked, "/iiif/3/grid-subifd.tif/full/max/0/default.png", &img);
    assert_int_equal(img.width, GRID_SIZE);
    static const uint32_t at[] = {0, 512}, len[] = {512, GRID_SIZE - 512};
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < 2; i++) {
            struct box b = differing(&img, 0, 0, at[i], at[j], len[i], len[j]);
            if (b.n != MARK_W * MARK_H || b.maxx - b.minx + 1 != MARK_W ||
                b.maxy - b.miny + 1 != MARK_H)
                fail_msg("block (%d,%d): %u changed pixels in a %ux%u box", i, j, b.n,
                         b.maxx - b.minx + 1, b.maxy - b.miny + 1);
            expect_mark_at(&img, 0, 0, b.minx, b.miny);
        }
    ts_image_free(&img);
}

/* Decoded JPEG tiles of the marked and the plain server: pixels whose red differs by more than
 * JPEG's noise. The mark adds 100 or 40 (at least 26 where 229 clips) to red. */
static uint32_t red_changes(const char *path, struct box *where)
{
    struct ts_image a, b;
    get_image(&marked, path, &a);
    get_image(&plain, path, &b);
    assert_int_equal(a.width, b.width);
    assert_int_equal(a.height, b.height);
    struct box w = {0, UINT32_MAX, UINT32_MAX, 0, 0};
    for (uint32_t y = 0; y < a.height; y++)
        for (uint32_t x = 0; x < a.width; x++) {
            int d = ts_image_row(&a, y)[x * a.channels] - ts_image_row(&b, y)[x * b.channels];
            if (d <= 18)
                continue;
            w.n++;
            w.minx = x < w.minx ? x : w.minx;
            w.miny = y < w.miny ? y : w.miny;
            w.maxx = x > w.maxx ? x : w.maxx;
            w.maxy = y > w.maxy ? y : w.maxy;
        }
    ts_image_free(&a);
    ts_image_free(&b);
    *where = w;
    return w.n;
}

/* The same full-resolution corner tile through each protocol: the mark is there (about its
 * 64 x 48 pixels brighter, JPEG blurring its edge by a pixel or two), and stored tiles are not
 * passed through: the marked answer is the encoder's Q85, not the stored Q95. */
static void test_every_protocol_marks_its_tiles_and_skips_the_passthrough(void **state)
{
    (void)state;
    static const char *const paths[] = {
        "/iiif/3/grid.tif/0,0,256,256/256,/0/default.jpg",
        "/fcgi-bin/iipsrv.fcgi?FIF=grid.tif&JTL=2,0",
        "/fcgi-bin/iipsrv.fcgi?DeepZoom=grid.tif_files/10/0_0.jpg",
        "/fcgi-bin/iipsrv.fcgi?Zoomify=grid.tif/TileGroup0/2-0-0.jpg",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct box w;
        uint32_t n = red_changes(paths[i], &w);
        uint32_t bw = n ? w.maxx - w.minx + 1 : 0, bh = n ? w.maxy - w.miny + 1 : 0;
        if (n < MARK_W * MARK_H * 9 / 10 || n > MARK_W * MARK_H * 11 / 10 || bw < MARK_W - 2 ||
            bw > MARK_W + 2 || bh < MARK_H - 2 || bh > MARK_H + 2)
            fail_msg("%s: %u brighter pixels in a %ux%u box, expected about %dx%d", paths[i], n, bw,
                     bh, MARK_W, MARK_H);
        struct tu_response m, p;
        get_ok(&marked, paths[i], &m);
        get_ok(&plain, paths[i], &p);
        int mq = passthrough_jpeg_quality(m.body.data, m.body.len);
        int pq = passthrough_jpeg_quality(p.body.data, p.body.len);
        if (mq != 85 || pq != 95)
            fail_msg("%s: marked tile at Q%d (expected the encoder's 85), plain at Q%d (stored "
                     "95)",
                     paths[i], mq, pq);
        tu_response_free(&m);
        tu_response_free(&p);
    }
}

/* Probability 0: every answer is the unmarked server's, byte for byte, stored tiles passed
 * through as before. */
static void test_probability_zero_leaves_every_answer_unmarked(void **state)
{
    (void)state;
    static const char *const paths[] = {
        "/iiif/3/grid.png/0,0,256,256/256,/0/default.png",
        "/iiif/3/grid-subifd.tif/full/max/0/default.png",
        "/iiif/3/grid.tif/0,0,256,256/256,/0/default.jpg",
        "/fcgi-bin/iipsrv.fcgi?FIF=grid.tif&JTL=2,0",
        "/iiif/3/grid.jpg/100,100,300,300/150,/0/default.png",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct tu_response a, b;
        get_ok(&never, paths[i], &a);
        get_ok(&plain, paths[i], &b);
        if (a.body.len != b.body.len || memcmp(a.body.data, b.body.data, a.body.len) != 0)
            fail_msg("%s: probability 0 answered %zu bytes unlike the unmarked %zu", paths[i],
                     a.body.len, b.body.len);
        tu_response_free(&a);
        tu_response_free(&b);
    }
    struct ts_image img;
    get_image(&never, "/iiif/3/grid.png/0,0,256,256/256,/0/default.png", &img);
    assert_int_equal(differing(&img, 0, 0, 0, 0, 256, 256).n, 0);
    ts_image_free(&img);
}

/* A marked answer has its own validator (another server's cached copy must not match it); at
 * probability 0.5 each tile is marked or not, and stays so from one request to the next. */
static void test_validators_and_the_per_request_draw(void **state)
{
    (void)state;
    const char *path = "/iiif/3/grid.png/0,0,256,256/256,/0/default.png";
    struct tu_response a, b;
    char ea[64], eb[64];
    get_ok(&marked, path, &a);
    get_ok(&plain, path, &b);
    assert_true(tu_header(&a, "ETag", 0, ea, sizeof ea));
    assert_true(tu_header(&b, "ETag", 0, eb, sizeof eb));
    assert_string_not_equal(ea, eb);
    tu_response_free(&a);
    tu_response_free(&b);

    unsigned with = 0, tiles = 0;
    for (uint32_t ty = 0; ty < 4; ty++)
        for (uint32_t tx = 0; tx < 4; tx++, tiles++) {
            char p[256];
            snprintf(p, sizeof p, "/iiif/3/grid.png/%u,%u,200,200/200,/0/default.png", tx * 200,
                     ty * 200);
            struct tu_response first, second;
            char e1[64], e2[64];
            get_ok(&sometimes, p, &first);
            get_ok(&sometimes, p, &second);
            assert_int_equal(first.body.len, second.body.len);
            assert_memory_equal(first.body.data, second.body.data, first.body.len);
            assert_true(tu_header(&first, "ETag", 0, e1, sizeof e1));
            assert_true(tu_header(&second, "ETag", 0, e2, sizeof e2));
            assert_string_equal(e1, e2);
            struct ts_image img;
            assert_int_equal(tu_decode_body(&first, &img), 0);
            struct box d = differing(&img, tx * 200, ty * 200, 0, 0, 200, 200);
            assert_true(d.n == 0 || d.n == MARK_W * MARK_H);
            with += d.n != 0;
            ts_image_free(&img);
            tu_response_free(&first);
            tu_response_free(&second);
        }
    if (with == 0 || with == tiles)
        fail_msg("probability 0.5 marked %u of %u tiles", with, tiles);
}

/* Runs the server with `env` in front of it (may be "") and extra flags; it must exit at once
 * with status 2 and one line naming the setting (WATERMARK or --watermark...). */
static void expect_refusal(const char *env, const char *flags)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s '%s' --root '%s' --listen 127.0.0.1:0 %s 2>&1 </dev/null", env,
             TESSERA_BIN, root, flags);
    char out[2048];
    int st = tu_run_capture(cmd, out, sizeof out);
    size_t n = strlen(out);
    if (st != 2)
        fail_msg("%s %s: exit status %d, expected 2: %s", env, flags, st, out);
    char lower[sizeof out];
    for (size_t i = 0; i <= n; i++)
        lower[i] = (char)(out[i] >= 'A' && out[i] <= 'Z' ? out[i] - 'A' + 'a' : out[i]);
    if (!strstr(lower, "watermark") || n == 0 || strchr(out, '\n') != out + n - 1)
        fail_msg("%s %s: expected one line naming WATERMARK, got: %s", env, flags, out);
}

static void test_an_unreadable_mark_stops_the_start_with_one_line(void **state)
{
    (void)state;
    char env[2048], flags[2048];
    snprintf(env, sizeof env, "WATERMARK='%s/no-such-mark.png'", TESSERA_TEST_WORK);
    expect_refusal(env, "");
    snprintf(flags, sizeof flags, "--watermark '%s/fake.tif'", root); /* text, not a TIFF */
    expect_refusal("", flags);
    snprintf(flags, sizeof flags, "--watermark '%s' --watermark-opacity 2", mark_path);
    expect_refusal("", flags);
    snprintf(env, sizeof env, "WATERMARK='%s' WATERMARK_PROBABILITY=often", mark_path);
    expect_refusal(env, "");
}

int main(void)
{
    tu_http_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_tile_carries_one_exact_mark_and_is_otherwise_untouched),
        cmocka_unit_test(test_a_large_render_has_one_mark_in_each_block),
        cmocka_unit_test(test_every_protocol_marks_its_tiles_and_skips_the_passthrough),
        cmocka_unit_test(test_probability_zero_leaves_every_answer_unmarked),
        cmocka_unit_test(test_validators_and_the_per_request_draw),
        cmocka_unit_test(test_an_unreadable_mark_stops_the_start_with_one_line),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
