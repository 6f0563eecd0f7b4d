/* Native tile passthrough tests: stored JPEG tiles against the decode path, edge crops, declines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "encode/encode.h"
#include "grid.h"
#include "image/reader.h"
#include "render/passthrough.h"
#include "render/render.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
#include <time.h>
#include <turbojpeg.h>

/* jpeglib.h uses FILE without including stdio.h. */
#include <stdio.h>

#include <jpeglib.h>

#define GRID_W 1000
#define GRID_H 740

static char g_case[256];

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            char m_[512];                                                                          \
            int n_ = snprintf(m_, sizeof m_, __VA_ARGS__);                                         \
            fail_msg("%s: %s%s (%s)", g_case, m_, n_ >= (int)sizeof m_ ? "..." : "", #cond);       \
        }                                                                                          \
    } while (0)

/* Writes a 1000x740 grid as a pyramidal JPEG TIFF (levels 1000, 500, 250; 256 tiles) once. */
static void grid_tiff_q(char *path, size_t n, const char *name, uint32_t channels, bool ycbcr,
                        int compression, int quality)
{
    struct ts_image img;
    struct grid_tiff_opts o = {.compression = compression,
                               .tiled = true,
                               .tile = 256,
                               .bits = 8,
                               .layout = GRID_PYRAMID_IFDS,
                               .jpeg_quality = quality,
                               .ycbcr = ycbcr};
    assert_int_equal(tu_mkdirs(TESSERA_TEST_WORK), 0);
    snprintf(path, n, "%s/%s", TESSERA_TEST_WORK, name);
    assert_int_equal(grid_make(GRID_W, GRID_H, GRID_CELLS, channels, &img), 0);
    assert_int_equal(grid_write_tiff(path, &img, &o), 0);
    ts_image_free(&img);
}

static void grid_tiff(char *path, size_t n, const char *name, uint32_t channels, bool ycbcr,
                      int compression)
{
    grid_tiff_q(path, n, name, channels, ycbcr, compression, 90);
}

static struct ts_reader *open_reader(const char *path)
{
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    int rc = ts_reader_open(path, &r, &err);
    CHECK(rc == TS_OK, "open %s: %s", path, err.msg);
    return r;
}

/* What a viewer asks for tile (col, row) of the level with scale factor 2^level. */
static struct ts_plan tile_plan(const struct ts_image_info *info, uint32_t level, uint32_t col,
                                uint32_t row)
{
    const struct ts_level *lv = &info->levels[level];
    uint32_t f = 1u << level;
    struct ts_plan p = {.img_w = info->width, .img_h = info->height};
    p.rx = col * lv->tile_w * f;
    p.ry = row * lv->tile_h * f;
    p.rw = info->width - p.rx < lv->tile_w * f ? info->width - p.rx : lv->tile_w * f;
    p.rh = info->height - p.ry < lv->tile_h * f ? info->height - p.ry : lv->tile_h * f;
    p.out_w = lv->width - col * lv->tile_w < lv->tile_w ? lv->width - col * lv->tile_w : lv->tile_w;
    p.out_h =
        lv->height - row * lv->tile_h < lv->tile_h ? lv->height - row * lv->tile_h : lv->tile_h;
    p.quality = TS_QUALITY_DEFAULT;
    p.format = TS_FORMAT_JPG;
    return p;
}

struct diff {
    int max;
    double psnr;
};

static struct diff compare(const struct ts_image *a, const struct ts_image *b)
{
    struct diff d = {0, INFINITY};
    double sq = 0.0;
    size_t n = 0;
    for (uint32_t y = 0; y < a->height; y++) {
        const uint8_t *p = ts_image_row(a, y), *q = ts_image_row(b, y);
        for (size_t i = 0; i < (size_t)a->width * a->channels; i++, n++) {
            int e = abs((int)p[i] - (int)q[i]);
            d.max = e > d.max ? e : d.max;
            sq += (double)e * e;
        }
    }
    if (sq > 0.0)
        d.psnr = 10.0 * log10(255.0 * 255.0 * n / sq);
    return d;
}

/* Passthrough bytes, decoded by plain libjpeg, against render_execute on the same plan. */
static struct diff check_tile(struct ts_reader *r, const struct ts_plan *plan)
{
    struct ts_buf out = {0};
    struct ts_err err = {0};
    struct ts_image got = {0}, want = {0};
    int rc = passthrough_try(r, plan, NULL, &out, &err);
    CHECK(rc == TS_OK, "passthrough %u,%u,%u,%u -> %ux%u: %d %s", plan->rx, plan->ry, plan->rw,
          plan->rh, plan->out_w, plan->out_h, rc, err.msg);
    CHECK(tu_decode(out.data, out.len, &got) == 0, "passthrough bytes do not decode");
    rc = render_execute(r, plan, NULL, &want, &err);
    CHECK(rc == TS_OK, "render: %s", err.msg);
    CHECK(got.width == want.width && got.height == want.height && got.channels == want.channels,
          "tile at %u,%u: passthrough %ux%ux%u, render %ux%ux%u", plan->rx, plan->ry, got.width,
          got.height, got.channels, want.width, want.height, want.channels);
    struct diff d = compare(&got, &want);
    ts_image_free(&got);
    ts_image_free(&want);
    ts_buf_free(&out);
    return d;
}

/* Every tile of every level of a grid TIFF; returns the number of cropped edge tiles seen. */
static uint32_t check_every_tile(struct ts_reader *r, int tol)
{
    uint32_t edges = 0;
    for (uint32_t l = 0; l < r->info.nlevels; l++) {
        const struct ts_level *lv = &r->info.levels[l];
        for (uint32_t row = 0; row * lv->tile_h < lv->height; row++)
            for (uint32_t col = 0; col * lv->tile_w < lv->width; col++) {
                struct ts_plan p = tile_plan(&r->info, l, col, row);
                struct diff d = check_tile(r, &p);
                CHECK(d.max <= tol, "level %u tile %u,%u differs by %d", l, col, row, d.max);
                if (p.out_w < lv->tile_w || p.out_h < lv->tile_h)
                    edges++;
            }
    }
    return edges;
}

/* The passthrough answer checked against the grid's known colours, cell centres only. */
static void check_grid_colours(struct ts_reader *r, uint32_t level, uint32_t col, uint32_t row)
{
    struct ts_plan p = tile_plan(&r->info, level, col, row);
    struct ts_buf out = {0};
    struct ts_err err = {0};
    struct ts_image img = {0};
    uint32_t f = 1u << level, checked = 0;
    assert_int_equal(passthrough_try(r, &p, NULL, &out, &err), TS_OK);
    assert_int_equal(tu_decode(out.data, out.len, &img), 0);
    uint32_t cw = GRID_W / GRID_CELLS, chh = GRID_H / GRID_CELLS;
    for (uint32_t cy = chh / 2; cy < GRID_H; cy += chh)
        for (uint32_t cx = cw / 2; cx < GRID_W; cx += cw) {
            if (cx < p.rx || cy < p.ry || (cx - p.rx) / f >= img.width ||
                (cy - p.ry) / f >= img.height)
                continue;
            uint32_t x = (cx - p.rx) / f, y = (cy - p.ry) / f;
            uint8_t rgb[3];
            grid_pixel_color(GRID_W, GRID_H, GRID_CELLS, cx, cy, rgb);
            int d = tu_pixel_diff(&img, x, y, rgb);
            CHECK(d <= 6, "level %u tile %u,%u pixel %u,%u off by %d", level, col, row, x, y, d);
            checked++;
        }
    CHECK(checked > 0, "no cell centre in the tile");
    ts_image_free(&img);
    ts_buf_free(&out);
}

/* Whether a decoder that knows only the standard markers (JFIF, Adobe APP14) sees RGB:
 * libjpeg-turbo also guesses from component ids 'R','G','B', but browsers and other decoders need
 * the marker. */
static bool declares_rgb(struct ts_reader *r, uint32_t level, uint32_t col, uint32_t row)
{
    struct ts_plan p = tile_plan(&r->info, level, col, row);
    struct ts_buf out = {0};
    struct ts_err err = {0};
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr jerr;
    assert_int_equal(passthrough_try(r, &p, NULL, &out, &err), TS_OK);
    cinfo.err = jpeg_std_error(&jerr);
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, out.data, (unsigned long)out.len);
    assert_int_equal(jpeg_read_header(&cinfo, TRUE), JPEG_HEADER_OK);
    bool rgb =
        cinfo.saw_Adobe_marker && cinfo.Adobe_transform == 0 && cinfo.jpeg_color_space == JCS_RGB;
    jpeg_destroy_decompress(&cinfo);
    ts_buf_free(&out);
    return rgb;
}

static void test_ycbcr_tiles_match_decode_path_at_every_level(void **state)
{
    (void)state;
    char path[1024];
    snprintf(g_case, sizeof g_case, "ycbcr grid");
    grid_tiff(path, sizeof path, "grid-ycbcr.tif", 3, true, COMPRESSION_JPEG);
    struct ts_reader *r = open_reader(path);
    assert_int_equal(r->info.nlevels, 3);
    uint32_t edges = check_every_tile(r, 2);
    assert_true(edges >= 10); /* 1000x740: right and bottom tiles at levels 0 and 1, level 2 */
    check_grid_colours(r, 0, 1, 1);
    check_grid_colours(r, 1, 1, 1);
    assert_false(declares_rgb(r, 0, 1, 1));
    ts_reader_close(r);
}

static void test_rgb_tiles_decode_with_right_colours(void **state)
{
    (void)state;
    char path[1024];
    snprintf(g_case, sizeof g_case, "rgb grid");
    grid_tiff(path, sizeof path, "grid-rgb.tif", 3, false, COMPRESSION_JPEG);
    struct ts_reader *r = open_reader(path);
    check_every_tile(r, 2);
    /* An RGB stream read as YCbCr would be far off here: the colours are independent truth. */
    check_grid_colours(r, 0, 0, 0);
    check_grid_colours(r, 0, 3, 2); /* cropped corner */
    check_grid_colours(r, 2, 0, 0);
    assert_true(declares_rgb(r, 0, 1, 1));
    assert_true(declares_rgb(r, 0, 3, 2)); /* the marker survives the lossless crop */
    ts_reader_close(r);
}

static void test_gray_tiles_pass_through_as_gray(void **state)
{
    (void)state;
    char path[1024];
    snprintf(g_case, sizeof g_case, "gray grid");
    grid_tiff(path, sizeof path, "grid-gray.tif", 1, false, COMPRESSION_JPEG);
    struct ts_reader *r = open_reader(path);
    assert_int_equal(r->info.channels, 1);
    check_every_tile(r, 2);
    ts_reader_close(r);
}

static void test_real_pyramid_tiles_match_decode_path(void **state)
{
    (void)state;
    snprintf(g_case, sizeof g_case, "retina");
    struct ts_reader *r = open_reader(TESSERA_TEST_DATA "/retina-pyr-jpeg-256.tif");
    uint32_t tiles = 0;
    for (uint32_t l = 0; l < r->info.nlevels; l++) {
        const struct ts_level *lv = &r->info.levels[l];
        for (uint32_t row = 0; row * lv->tile_h < lv->height; row++)
            for (uint32_t col = 0; col * lv->tile_w < lv->width; col++) {
                struct ts_plan p = tile_plan(&r->info, l, col, row);
                struct diff d = check_tile(r, &p);
                /* Level 0 is a plain copy on the decode path. The levels are floor(1411 / 2^l)
                 * wide, so there the decode path maps the region with the exact level ratio and
                 * resamples by a fraction of a pixel: close, not identical. */
                if (l == 0)
                    CHECK(d.max <= 2, "level 0 tile %u,%u differs by %d", col, row, d.max);
                else
                    CHECK(d.psnr >= 30.0, "level %u tile %u,%u PSNR %.1f", l, col, row, d.psnr);
                tiles++;
            }
    }
    assert_int_equal(tiles, 36 + 9 + 4 + 1);
    ts_reader_close(r);
}

static void expect_declined(struct ts_reader *r, const struct ts_plan *p,
                            const struct passthrough_rule *rule, const char *what)
{
    struct ts_buf out = {0};
    struct ts_err err = {0};
    int rc = passthrough_try(r, p, rule, &out, &err);
    CHECK(rc == TS_DECLINED, "%s: got %d (%s)", what, rc, err.msg);
    CHECK(out.len == 0, "%s: %zu bytes written on decline", what, out.len);
    ts_buf_free(&out);
}

static void test_requests_off_the_stored_grid_decline(void **state)
{
    (void)state;
    char path[1024];
    snprintf(g_case, sizeof g_case, "declines");
    grid_tiff(path, sizeof path, "grid-decline.tif", 3, true, COMPRESSION_JPEG);
    struct ts_reader *r = open_reader(path);
    const struct ts_plan base = tile_plan(&r->info, 0, 1, 1);
    struct ts_plan p;

    p = base, p.rx += 8;
    expect_declined(r, &p, NULL, "region shifted off the grid");
    p = base, p.out_w = 128, p.out_h = 128;
    expect_declined(r, &p, NULL, "scaled to half");
    p = tile_plan(&r->info, 1, 0, 0), p.out_w = 255;
    expect_declined(r, &p, NULL, "level 1 tile one pixel narrower");
    p = base, p.rw = 512, p.rh = 512;
    expect_declined(r, &p, NULL, "two by two tiles at full size");
    p = base, p.quality = TS_QUALITY_GRAY;
    expect_declined(r, &p, NULL, "gray");
    p = base, p.quality = TS_QUALITY_BITONAL;
    expect_declined(r, &p, NULL, "bitonal");
    p = base, p.format = TS_FORMAT_PNG;
    expect_declined(r, &p, NULL, "png");
    p = base, p.format = TS_FORMAT_WEBP;
    expect_declined(r, &p, NULL, "webp");
    p = base, p.rotation = 90.0;
    expect_declined(r, &p, NULL, "rotated");
    p = base, p.mirror = true;
    expect_declined(r, &p, NULL, "mirrored");
    struct passthrough_rule never = {.mode = PASSTHROUGH_NEVER};
    expect_declined(r, &base, &never, "rule never");

    /* The same plan is served when nothing is off, and colour quality is the same image. */
    struct ts_buf out = {0};
    struct ts_err err = {0};
    p = base, p.quality = TS_QUALITY_COLOR;
    assert_int_equal(passthrough_try(r, &p, NULL, &out, &err), TS_OK);
    assert_true(out.len > 100);
    ts_buf_free(&out);
    ts_reader_close(r);
}

static void test_sources_without_stored_jpeg_tiles_decline(void **state)
{
    (void)state;
    char path[1024];
    snprintf(g_case, sizeof g_case, "non-jpeg");
    grid_tiff(path, sizeof path, "grid-deflate.tif", 3, false, COMPRESSION_ADOBE_DEFLATE);
    struct ts_reader *r = open_reader(path);
    struct ts_plan p = tile_plan(&r->info, 0, 0, 0);
    expect_declined(r, &p, NULL, "deflate tiles");
    ts_reader_close(r);

    r = open_reader(TESSERA_TEST_DATA "/retina-1411x1411.jpg");
    struct ts_plan q = {.img_w = 1411,
                        .img_h = 1411,
                        .rw = 256,
                        .rh = 256,
                        .out_w = 256,
                        .out_h = 256,
                        .format = TS_FORMAT_JPG};
    expect_declined(r, &q, NULL, "plain JPEG source");
    ts_reader_close(r);
}

static size_t passthrough_len(struct ts_reader *r, const struct ts_plan *p,
                              const struct passthrough_rule *rule, int want)
{
    struct ts_buf out = {0};
    struct ts_err err = {0};
    int rc = passthrough_try(r, p, rule, &out, &err);
    CHECK(rc == want, "rule %d/%zu: got %d, want %d (%s)", rule->mode, rule->max_bytes, rc, want,
          err.msg);
    size_t n = out.len;
    ts_buf_free(&out);
    return n;
}

static void test_rule_limits_rgb_tiles_and_size(void **state)
{
    (void)state;
    char ypath[1024], rpath[1024];
    snprintf(g_case, sizeof g_case, "rules");
    grid_tiff(ypath, sizeof ypath, "grid-rule-ycbcr.tif", 3, true, COMPRESSION_JPEG);
    grid_tiff(rpath, sizeof rpath, "grid-rule-rgb.tif", 3, false, COMPRESSION_JPEG);
    struct ts_reader *y = open_reader(ypath), *r = open_reader(rpath);
    struct ts_plan p = tile_plan(&y->info, 0, 1, 1);
    struct passthrough_rule ycbcr = {.mode = PASSTHROUGH_YCBCR},
                            always = {.mode = PASSTHROUGH_ALWAYS};

    assert_true(passthrough_len(y, &p, &ycbcr, TS_OK) > 0);
    passthrough_len(r, &p, &ycbcr, TS_DECLINED);
    size_t n = passthrough_len(r, &p, &always, TS_OK);
    struct passthrough_rule fits = {.mode = PASSTHROUGH_MAX_BYTES, .max_bytes = n};
    struct passthrough_rule small = {.mode = PASSTHROUGH_MAX_BYTES, .max_bytes = n - 1};
    assert_int_equal(passthrough_len(r, &p, &fits, TS_OK), n);
    passthrough_len(r, &p, &small, TS_DECLINED);
    ts_reader_close(y);
    ts_reader_close(r);
}

/* A photo-like test picture: smooth gradients plus a little texture, so the tables matter. */
static uint8_t *test_picture(int w, int h, int channels)
{
    uint8_t *px = malloc((size_t)w * h * channels);
    assert_non_null(px);
    uint32_t seed = 12345;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < channels; c++) {
                seed = seed * 1103515245u + 12345u;
                int v = (x * (3 + c) + y * (5 - c)) % 256 + (int)((seed >> 16) % 17) - 8;
                px[((size_t)y * w + x) * channels + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    return px;
}

static void test_quality_estimate_matches_the_encoder(void **state)
{
    (void)state;
    static const int qs[] = {50, 75, 85, 90, 95, 100};
    static const struct {
        int subsamp, channels, pf;
        const char *name;
    } kinds[] = {{TJSAMP_420, 3, TJPF_RGB, "4:2:0"},
                 {TJSAMP_444, 3, TJPF_RGB, "4:4:4"},
                 {TJSAMP_GRAY, 1, TJPF_GRAY, "grey"}};
    tjhandle tj = tjInitCompress();
    assert_non_null(tj);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        uint8_t *px = test_picture(96, 64, kinds[k].channels);
        for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
            unsigned char *jpeg = NULL;
            unsigned long len = 0;
            assert_int_equal(tjCompress2(tj, px, 96, 0, 64, kinds[k].pf, &jpeg, &len,
                                         kinds[k].subsamp, qs[i], 0),
                             0);
            int got = passthrough_jpeg_quality(jpeg, len);
            snprintf(g_case, sizeof g_case, "%s Q%d", kinds[k].name, qs[i]);
            CHECK(abs(got - qs[i]) <= 1, "estimated Q%d", got);
            tjFree(jpeg);
        }
        free(px);
    }
    /* Every quality, so the search that starts from a guess is seen to find the same answer. */
    uint8_t *px = test_picture(64, 64, 3);
    for (int q = 1; q <= 100; q++) {
        unsigned char *jpeg = NULL;
        unsigned long len = 0;
        assert_int_equal(tjCompress2(tj, px, 64, 0, 64, TJPF_RGB, &jpeg, &len, TJSAMP_420, q, 0),
                         0);
        int got = passthrough_jpeg_quality(jpeg, len);
        snprintf(g_case, sizeof g_case, "sweep Q%d", q);
        CHECK(got == q, "estimated Q%d", got);
        tjFree(jpeg);
    }
    free(px);
    tjDestroy(tj);
}

static void test_quality_estimate_refuses_streams_without_tables(void **state)
{
    (void)state;
    static const uint8_t soi_eoi[] = {0xFF, 0xD8, 0xFF, 0xD9};
    static const uint8_t junk[] = {0x89, 'P', 'N', 'G', 0, 0};
    /* A DQT whose length runs past the end of the data. */
    static const uint8_t cut[] = {0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x43, 0x00, 1, 2, 3};
    assert_int_equal(passthrough_jpeg_quality(soi_eoi, sizeof soi_eoi), 0);
    assert_int_equal(passthrough_jpeg_quality(junk, sizeof junk), 0);
    assert_int_equal(passthrough_jpeg_quality(cut, sizeof cut), 0);
    assert_int_equal(passthrough_jpeg_quality(NULL, 0), 0);
}

/* The estimate read from a stored tile as passthrough sends it (JPEGTables spliced in). */
static int stored_quality(struct ts_reader *r, const struct ts_plan *p)
{
    struct ts_buf out = {0};
    struct ts_err err = {0};
    assert_int_equal(passthrough_try(r, p, NULL, &out, &err), TS_OK);
    int q = passthrough_jpeg_quality(out.data, out.len);
    ts_buf_free(&out);
    return q;
}

static void test_quality_rule_passes_coarse_tiles_and_declines_fine_ones(void **state)
{
    (void)state;
    char p80[1024], p90[1024], p95[1024];
    snprintf(g_case, sizeof g_case, "quality rule");
    grid_tiff_q(p80, sizeof p80, "grid-q80.tif", 3, true, COMPRESSION_JPEG, 80);
    grid_tiff_q(p90, sizeof p90, "grid-q90.tif", 3, true, COMPRESSION_JPEG, 90);
    grid_tiff_q(p95, sizeof p95, "grid-q95.tif", 3, true, COMPRESSION_JPEG, 95);
    struct ts_reader *r80 = open_reader(p80), *r90 = open_reader(p90), *r95 = open_reader(p95);
    struct ts_plan p = tile_plan(&r80->info, 0, 1, 1), edge = tile_plan(&r80->info, 0, 3, 2);
    struct passthrough_rule rule = {.mode = PASSTHROUGH_QUALITY, .out_quality = 85};

    assert_int_equal(stored_quality(r80, &p), 80);
    assert_int_equal(stored_quality(r95, &p), 95);
    assert_true(passthrough_len(r80, &p, &rule, TS_OK) > 0);
    assert_true(passthrough_len(r80, &edge, &rule, TS_OK) > 0);
    /* 90 is within the margin of 85; 95 is not. */
    assert_true(passthrough_len(r90, &p, &rule, TS_OK) > 0);
    expect_declined(r95, &p, &rule, "Q95 tile for output Q85");
    expect_declined(r95, &edge, &rule, "Q95 edge tile for output Q85");
    /* The rule follows the output quality: a Q95 server sends Q95 tiles. */
    rule.out_quality = 95;
    assert_true(passthrough_len(r95, &p, &rule, TS_OK) > 0);
    rule.out_quality = 70;
    expect_declined(r80, &p, &rule, "Q80 tile for output Q70");
    ts_reader_close(r80);
    /* RGB-coded tiles cost over twice the bytes at any quality: re-encoded even when coarse. */
    grid_tiff_q(p80, sizeof p80, "grid-q80-rgb.tif", 3, false, COMPRESSION_JPEG, 80);
    r80 = open_reader(p80);
    rule.out_quality = 85;
    assert_int_equal(stored_quality(r80, &p), 80);
    expect_declined(r80, &p, &rule, "RGB-coded Q80 tile for output Q85");
    ts_reader_close(r80);
    ts_reader_close(r90);
    ts_reader_close(r95);
}

static void test_rule_parse_accepts_modes_and_kilobytes(void **state)
{
    (void)state;
    struct passthrough_rule rule;
    struct ts_err err = {0};
    assert_int_equal(passthrough_rule_parse("always", &rule, &err), TS_OK);
    assert_int_equal(rule.mode, PASSTHROUGH_ALWAYS);
    assert_int_equal(passthrough_rule_parse("quality", &rule, &err), TS_OK);
    assert_int_equal(rule.mode, PASSTHROUGH_QUALITY);
    assert_int_equal(passthrough_rule_parse("", &rule, &err), TS_OK);
    assert_int_equal(rule.mode, PASSTHROUGH_QUALITY);
    assert_int_equal(passthrough_rule_parse("ycbcr", &rule, &err), TS_OK);
    assert_int_equal(rule.mode, PASSTHROUGH_YCBCR);
    assert_int_equal(passthrough_rule_parse("never", &rule, &err), TS_OK);
    assert_int_equal(rule.mode, PASSTHROUGH_NEVER);
    assert_int_equal(passthrough_rule_parse("64", &rule, &err), TS_OK);
    assert_int_equal(rule.mode, PASSTHROUGH_MAX_BYTES);
    assert_int_equal(rule.max_bytes, 64 * 1024);
    assert_int_equal(passthrough_rule_parse("sometimes", &rule, &err), TS_EINVAL);
    assert_non_null(strstr(err.msg, "sometimes"));
    assert_int_equal(passthrough_rule_parse("-1", &rule, &err), TS_EINVAL);
    assert_int_equal(passthrough_rule_parse("12kb", &rule, &err), TS_EINVAL);
    assert_int_equal(passthrough_rule_parse("99999999999999999999", &rule, &err), TS_EINVAL);
}

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

/* Not a timed assertion: prints what one tile costs each way, for the record. */
static void test_report_time_per_tile(void **state)
{
    (void)state;
    snprintf(g_case, sizeof g_case, "timing");
    struct ts_reader *r = open_reader(TESSERA_TEST_DATA "/retina-pyr-jpeg-256.tif");
    struct ts_plan inner = tile_plan(&r->info, 0, 1, 1), edge = tile_plan(&r->info, 0, 5, 5);
    const struct ts_plan *plans[2] = {&inner, &edge};
    const char *names[2] = {"interior", "edge"};
    struct ts_err err = {0};
    for (int k = 0; k < 2; k++) {
        const int n = 50;
        double t0 = now_us();
        for (int i = 0; i < n; i++) {
            struct ts_buf out = {0};
            assert_int_equal(passthrough_try(r, plans[k], NULL, &out, &err), TS_OK);
            ts_buf_free(&out);
        }
        double t1 = now_us();
        for (int i = 0; i < n; i++) {
            struct ts_buf out = {0};
            struct ts_image img;
            assert_int_equal(render_execute(r, plans[k], NULL, &img, &err), TS_OK);
            assert_int_equal(encode_image(&img, TS_FORMAT_JPG, NULL, &out, &err), TS_OK);
            ts_image_free(&img);
            ts_buf_free(&out);
        }
        double t2 = now_us();
        struct passthrough_rule quality = {.mode = PASSTHROUGH_QUALITY, .out_quality = 85};
        for (int i = 0; i < n; i++) {
            struct ts_buf out = {0};
            assert_int_equal(passthrough_try(r, plans[k], &quality, &out, &err), TS_OK);
            ts_buf_free(&out);
        }
        double t3 = now_us();
        printf("# %s tile: passthrough %.1f us (quality rule %.1f us), decode+encode %.1f us\n",
               names[k], (t1 - t0) / n, (t3 - t2) / n, (t2 - t1) / n);
    }
    ts_reader_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ycbcr_tiles_match_decode_path_at_every_level),
        cmocka_unit_test(test_rgb_tiles_decode_with_right_colours),
        cmocka_unit_test(test_gray_tiles_pass_through_as_gray),
        cmocka_unit_test(test_real_pyramid_tiles_match_decode_path),
        cmocka_unit_test(test_requests_off_the_stored_grid_decline),
        cmocka_unit_test(test_sources_without_stored_jpeg_tiles_decline),
        cmocka_unit_test(test_rule_limits_rgb_tiles_and_size),
        cmocka_unit_test(test_rule_parse_accepts_modes_and_kilobytes),
        cmocka_unit_test(test_quality_estimate_matches_the_encoder),
        cmocka_unit_test(test_quality_estimate_refuses_streams_without_tables),
        cmocka_unit_test(test_quality_rule_passes_coarse_tiles_and_declines_fine_ones),
        cmocka_unit_test(test_report_time_per_tile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
