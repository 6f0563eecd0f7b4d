/* TIFF reader tests: generated grid TIFFs in every layout we support, real files, and malformed
 * files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "grid.h"
#include "image/reader.h"
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>

static char g_case[1024];

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            char m_[1024];                                                                         \
            snprintf(m_, sizeof m_, __VA_ARGS__);                                                  \
            fail_msg("%s: %s (%s)", g_case, m_, #cond);                                            \
        }                                                                                          \
    } while (0)

static void work_path(char *buf, size_t n, const char *name)
{
    assert_int_equal(tu_mkdirs(TESSERA_TEST_WORK), 0);
    snprintf(buf, n, "%s/%s", TESSERA_TEST_WORK, name);
}

static void data_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", TESSERA_TEST_DATA, name);
}

static struct ts_image read_region(struct ts_reader *r, uint32_t level, uint32_t x, uint32_t y,
                                   uint32_t w, uint32_t h)
{
    struct ts_read_req q = {.level = level, .x = x, .y = y, .w = w, .h = h};
    struct ts_image img;
    struct ts_err err = {0};
    int rc = ts_reader_read(r, &q, &img, &err);
    CHECK(rc == TS_OK, "read level %u %u,%u,%u,%u: %d %s", level, x, y, w, h, rc, err.msg);
    CHECK(img.width == w && img.height == h, "region %ux%u, want %ux%u", img.width, img.height, w,
          h);
    return img;
}

/* Reads a region of a level and checks every cell centre inside it (and alpha where present). */
static void check_grid_region(struct ts_reader *r, uint32_t level, uint32_t x, uint32_t y,
                              uint32_t w, uint32_t h, int tol)
{
    const struct ts_level *lv = &r->info.levels[level];
    struct ts_image img = read_region(r, level, x, y, w, h);
    uint32_t checked = 0;
    CHECK(img.channels == r->info.channels, "channels %u", img.channels);
    for (uint32_t row = 0; row < GRID_CELLS; row++)
        for (uint32_t col = 0; col < GRID_CELLS; col++) {
            uint32_t cx = (uint32_t)(((uint64_t)col * 2 + 1) * lv->width / (2 * GRID_CELLS));
            uint32_t cy = (uint32_t)(((uint64_t)row * 2 + 1) * lv->height / (2 * GRID_CELLS));
            uint8_t rgb[3];
            if (cx < x || cy < y || cx >= x + w || cy >= y + h)
                continue;
            grid_cell_color(col, row, rgb);
            int d = tu_pixel_diff(&img, cx - x, cy - y, rgb);
            CHECK(d <= tol, "level %u cell %u,%u at %u,%u differs by %d", level, col, row, cx, cy,
                  d);
            if (img.channels == 2 || img.channels == 4) {
                uint8_t a =
                    ts_image_row(&img, cy - y)[(size_t)(cx - x) * img.channels + img.channels - 1];
                CHECK(a == (col == 0 && row == 0 ? 128 : 255), "alpha %u in cell %u,%u", a, col,
                      row);
            }
            checked++;
        }
    CHECK(checked > 0, "no cell centre in region");
    ts_image_free(&img);
}

static void write_grid_tiff(const char *path, uint32_t channels, const struct grid_tiff_opts *o)
{
    struct ts_image img;
    assert_int_equal(grid_make(GRID_SIZE, GRID_SIZE, GRID_CELLS, channels, &img), TS_OK);
    CHECK(grid_write_tiff(path, &img, o) == 0, "grid_write_tiff %s", path);
    ts_image_free(&img);
}

/* Writes, opens and checks one generated pyramid: info, then regions across tile edges. */
static void check_generated(uint32_t channels, const struct grid_tiff_opts *o, int tol)
{
    char path[512], name[128];
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    static const uint32_t sizes[] = {1000, 500, 250};

    snprintf(name, sizeof name, "grid-%s-c%d-%ub-%uch-l%d%s%s.tif", o->tiled ? "tiled" : "strip",
             o->compression, o->bits, channels, (int)o->layout, o->ycbcr ? "-ycbcr" : "",
             o->bigtiff ? "-big" : "");
    snprintf(g_case, sizeof g_case, "%s", name);
    work_path(path, sizeof path, name);
    write_grid_tiff(path, channels, o);

    int rc = ts_reader_open(path, &r, &err);
    CHECK(rc == TS_OK, "open: %d %s", rc, err.msg);
    CHECK(strcmp(r->info.format, "tiff") == 0, "format %s", r->info.format);
    CHECK(r->info.width == 1000 && r->info.height == 1000, "size %ux%u", r->info.width,
          r->info.height);
    CHECK(r->info.channels == channels, "channels %u", r->info.channels);
    CHECK(r->info.bits_per_sample == o->bits, "bits %u", r->info.bits_per_sample);
    uint32_t want_levels = o->layout == GRID_FLAT ? 1 : 3;
    CHECK(r->info.nlevels == want_levels, "levels %u, want %u", r->info.nlevels, want_levels);
    for (uint32_t i = 0; i < r->info.nlevels; i++) {
        CHECK(r->info.levels[i].width == sizes[i] && r->info.levels[i].height == sizes[i],
              "level %u is %ux%u", i, r->info.levels[i].width, r->info.levels[i].height);
        CHECK(r->info.levels[i].tile_w == (o->tiled ? o->tile : 0) &&
                  r->info.levels[i].tile_h == (o->tiled ? o->tile : 0),
              "level %u tile %ux%u", i, r->info.levels[i].tile_w, r->info.levels[i].tile_h);
    }
    check_grid_region(r, 0, 0, 0, 300, 300, tol);
    check_grid_region(r, 0, 200, 150, 400, 500, tol);
    check_grid_region(r, 0, 0, 0, 1000, 1000, tol);
    if (r->info.nlevels > 1) {
        check_grid_region(r, 1, 100, 200, 300, 250, tol);
        check_grid_region(r, 2, 0, 0, 250, 250, tol);
        /* Back to level 0 after others: the reader must reload the directory. */
        check_grid_region(r, 0, 700, 700, 300, 300, tol);
    }
    ts_reader_close(r);
}

static void run_matrix(bool tiled, int compression, bool ycbcr)
{
    static const uint32_t bits[] = {8, 16};
    bool jpeg = compression == COMPRESSION_JPEG;
    for (size_t b = 0; b < 2; b++)
        for (uint32_t ch = 1; ch <= 4; ch++) {
            /* JPEG carries only 8-bit gray or RGB; the YCbCr variant only RGB. */
            if (jpeg && (bits[b] != 8 || (ch != 1 && ch != 3) || (ycbcr && ch != 3)))
                continue;
            struct grid_tiff_opts o = {.compression = compression,
                                       .tiled = tiled,
                                       .tile = 256,
                                       .bits = bits[b],
                                       .layout = GRID_PYRAMID_IFDS,
                                       .jpeg_quality = 90,
                                       .ycbcr = ycbcr};
            check_generated(ch, &o, jpeg ? 8 : 0);
        }
}

static void test_tiled_uncompressed_matrix_reads_exact_cells(void **s)
{
    (void)s;
    run_matrix(true, COMPRESSION_NONE, false);
}

static void test_tiled_deflate_matrix_reads_exact_cells(void **s)
{
    (void)s;
    run_matrix(true, COMPRESSION_ADOBE_DEFLATE, false);
}

static void test_tiled_lzw_matrix_reads_exact_cells(void **s)
{
    (void)s;
    run_matrix(true, COMPRESSION_LZW, false);
}

static void test_tiled_jpeg_reads_cells_within_tolerance(void **s)
{
    (void)s;
    run_matrix(true, COMPRESSION_JPEG, false);
    run_matrix(true, COMPRESSION_JPEG, true);
}

static void test_striped_matrix_reads_cells(void **s)
{
    (void)s;
    run_matrix(false, COMPRESSION_NONE, false);
    run_matrix(false, COMPRESSION_ADOBE_DEFLATE, false);
    run_matrix(false, COMPRESSION_LZW, false);
    run_matrix(false, COMPRESSION_JPEG, false);
    run_matrix(false, COMPRESSION_JPEG, true);
}

static void test_subifd_pyramid_finds_all_levels(void **s)
{
    (void)s;
    struct grid_tiff_opts o = {.compression = COMPRESSION_ADOBE_DEFLATE,
                               .tiled = true,
                               .tile = 256,
                               .bits = 8,
                               .layout = GRID_PYRAMID_SUBIFDS};
    check_generated(3, &o, 0);
    o.compression = COMPRESSION_JPEG, o.ycbcr = true, o.jpeg_quality = 90;
    check_generated(3, &o, 8);
    o.compression = COMPRESSION_LZW, o.ycbcr = false, o.bits = 16;
    check_generated(4, &o, 0);
}

static void test_bigtiff_pyramid_reads_like_classic(void **s)
{
    (void)s;
    struct grid_tiff_opts o = {.compression = COMPRESSION_LZW,
                               .tiled = true,
                               .tile = 256,
                               .bits = 8,
                               .layout = GRID_PYRAMID_IFDS,
                               .bigtiff = true};
    check_generated(3, &o, 0);
    o.layout = GRID_PYRAMID_SUBIFDS, o.bits = 16;
    check_generated(2, &o, 0);
    o.layout = GRID_FLAT, o.tiled = false, o.bits = 8;
    check_generated(1, &o, 0);
}

static void test_flat_tiff_has_one_level(void **s)
{
    (void)s;
    struct grid_tiff_opts o = {.compression = COMPRESSION_PACKBITS,
                               .tiled = true,
                               .tile = 128,
                               .bits = 8,
                               .layout = GRID_FLAT};
    check_generated(3, &o, 0);
}

static double mean_abs_diff(const struct ts_image *a, const struct ts_image *b, uint32_t bx,
                            uint32_t by)
{
    uint64_t sum = 0, n = 0;
    for (uint32_t y = 0; y < a->height; y++)
        for (uint32_t x = 0; x < a->width * a->channels; x++) {
            int va = ts_image_row(a, y)[x];
            int vb = ts_image_row(b, by + y)[(size_t)bx * b->channels + x];
            sum += (uint64_t)abs(va - vb);
            n++;
        }
    return (double)sum / (double)n;
}

static struct ts_image decode_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    static uint8_t buf[1 << 20];
    struct ts_image img;
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_int_equal(tu_decode(buf, n, &img), 0);
    return img;
}

static void test_retina_pyramid_levels_and_pixels(void **s)
{
    (void)s;
    char path[512], jpg[512];
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    static const uint32_t sizes[] = {1411, 705, 352, 176};

    snprintf(g_case, sizeof g_case, "retina-pyr-jpeg-256.tif");
    data_path(path, sizeof path, "retina-pyr-jpeg-256.tif");
    assert_int_equal(ts_reader_open(path, &r, &err), TS_OK);
    assert_int_equal(r->info.nlevels, 4);
    assert_int_equal(r->info.channels, 3);
    for (uint32_t i = 0; i < 4; i++) {
        assert_int_equal(r->info.levels[i].width, sizes[i]);
        assert_int_equal(r->info.levels[i].height, sizes[i]);
        assert_int_equal(r->info.levels[i].tile_w, 256);
    }
    /* The pyramid was made from retina-1411x1411.jpg: decoded independently it must agree. */
    data_path(jpg, sizeof jpg, "retina-1411x1411.jpg");
    struct ts_image ref = decode_file(jpg);
    struct ts_image a = read_region(r, 0, 400, 500, 600, 300);
    double d = mean_abs_diff(&a, &ref, 400, 500);
    CHECK(d < 4.0, "mean abs diff vs JPEG %.2f", d);
    /* Level 1 at (300,300) covers level 0 around (600,600). */
    struct ts_image b = read_region(r, 1, 250, 250, 100, 100);
    struct ts_image c = read_region(r, 3, 0, 0, 176, 176);
    uint8_t *pb = ts_image_row(&b, 50) + 50 * 3, *pa = ts_image_row(&ref, 601) + 601 * 3;
    CHECK(abs(pb[1] - pa[1]) < 24, "level 1 green %u vs %u", pb[1], pa[1]);
    CHECK(ts_image_row(&c, 0)[0] < 40, "corner of the fundus photo is dark: %u",
          ts_image_row(&c, 0)[0]);
    ts_image_free(&a), ts_image_free(&b), ts_image_free(&c), ts_image_free(&ref);
    ts_reader_close(r);
}

/* ---- Plain JPEG tiles decoded through libjpeg (cropped, skipped, stopped early) ---- */

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(uint32_t n)
{
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return n ? (uint32_t)((g_rng >> 16) % n) : 0;
}

/* TESSERA_TIFF_JPEG is read when a reader opens: "strict" fails any tile the libjpeg path
 * would leave to libtiff, "libtiff" decodes every tile whole through libtiff as before. */
static struct ts_reader *open_jpeg_mode(const char *path, const char *mode)
{
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    assert_int_equal(setenv("TESSERA_TIFF_JPEG", mode, 1), 0);
    int rc = ts_reader_open(path, &r, &err);
    unsetenv("TESSERA_TIFF_JPEG");
    CHECK(rc == TS_OK, "open %s as %s: %s", path, mode, err.msg);
    return r;
}

/* Threads the libjpeg path's reads may use (tiles split over them; the pixels must not change). */
static unsigned g_threads = 1;

static void same_region(struct ts_reader *fast, struct ts_reader *ref, uint32_t level, uint32_t x,
                        uint32_t y, uint32_t w, uint32_t h, bool more, uint32_t next_y)
{
    struct ts_read_req q = {.level = level, .x = x, .y = y, .w = w, .h = h, .threads = g_threads};
    struct ts_image a, b;
    struct ts_err err = {0};
    q.more = more;
    q.next_y = next_y;
    int rc = ts_reader_read(fast, &q, &a, &err);
    CHECK(rc == TS_OK, "libjpeg read level %u %u,%u,%u,%u: %s", level, x, y, w, h, err.msg);
    b = read_region(ref, level, x, y, w, h);
    CHECK(a.width == w && a.height == h && a.channels == b.channels, "shape");
    for (uint32_t r = 0; r < h; r++) {
        const uint8_t *pa = ts_image_row(&a, r), *pb = ts_image_row(&b, r);
        for (uint32_t i = 0; i < w * a.channels; i++)
            CHECK(pa[i] == pb[i],
                  "level %u region %u,%u,%ux%u: pixel %u,%u channel %u is %u, libtiff %u", level, x,
                  y, w, h, x + i / a.channels, y + r, i % a.channels, pa[i], pb[i]);
    }
    ts_image_free(&a), ts_image_free(&b);
}

/* Many odd rectangles of every level, read through both paths (the libjpeg reader reads them
 * in a row, so its held partial tiles are reused and replaced along the way). */
static void check_jpeg_tiles_match_libtiff(const char *path)
{
    struct ts_reader *fast = open_jpeg_mode(path, "strict"), *ref = open_jpeg_mode(path, "libtiff");
    static const uint32_t cols[] = {0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 127, 128, 129};

    for (uint32_t l = 0; l < fast->info.nlevels; l++) {
        const struct ts_level *lv = &fast->info.levels[l];
        uint32_t lw = lv->width, lh = lv->height, tw = lv->tile_w, th = lv->tile_h;
        uint32_t ex = (lw - 1) / tw * tw, ey = (lh - 1) / th * th;
        assert_true(tw > 0);
        same_region(fast, ref, l, 0, 0, lw, lh, false, 0);
        same_region(fast, ref, l, 0, 0, 1, 1, false, 0);
        same_region(fast, ref, l, lw - 1, lh - 1, 1, 1, false, 0);
        same_region(fast, ref, l, ex, ey, lw - ex, lh - ey, false, 0); /* the padded corner tile */
        same_region(fast, ref, l, ex > 0 ? ex - 3 : 0, 0, lw - (ex > 0 ? ex - 3 : 0), lh, false, 0);
        same_region(fast, ref, l, 0, ey + (lh - ey) / 2, lw, lh - ey - (lh - ey) / 2, false, 0);
        /* Crop edges on, next to and between iMCU columns, each way. */
        for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
            for (size_t k = 0; k < sizeof cols / sizeof cols[0]; k++) {
                uint32_t x = cols[i] < lw ? cols[i] : lw - 1, w = cols[k] + 1;
                uint32_t y = rnd(lh);
                if (x + w > lw)
                    w = lw - x;
                same_region(fast, ref, l, x, y, w, 1 + rnd(lh - y < 40 ? lh - y : 40), false, 0);
            }
        for (int n = 0; n < 150; n++) {
            uint32_t x = rnd(lw), y = rnd(lh);
            uint32_t w = 1 + rnd(n % 3 == 0 ? lw - x : (lw - x < 64 ? lw - x : 64));
            uint32_t h = 1 + rnd(n % 4 == 0 ? lh - y : (lh - y < 64 ? lh - y : 64));
            same_region(fast, ref, l, x, y, w, h, false, 0);
        }
        /* A banded render of one tile column: each band says where the next starts, and the
         * held tile, decoded on to its bottom for it, serves the next one. */
        uint32_t bx = tw / 2 - 5, bw = lw - bx < tw / 2 ? lw - bx : tw / 2, y = 3;
        while (bx < lw && y < lh) {
            uint32_t h = 1 + rnd(lh - y < 50 ? lh - y : 50), next = y + h - (h > 4 ? 4 : 0);
            bool more = y + h < lh;
            same_region(fast, ref, l, bx, y, bw, h, more, more ? next : 0);
            y = more ? next : lh;
        }
    }
    ts_reader_close(fast), ts_reader_close(ref);
}

static void write_retina_tiff(const char *name, uint32_t channels, uint32_t tile, bool ycbcr,
                              char *path, size_t n)
{
    char jpg[512];
    struct ts_image src, img;
    struct grid_tiff_opts o = {.compression = COMPRESSION_JPEG,
                               .tiled = true,
                               .tile = tile,
                               .bits = 8,
                               .layout = GRID_PYRAMID_IFDS,
                               .jpeg_quality = 85,
                               .ycbcr = ycbcr};
    data_path(jpg, sizeof jpg, "retina-1411x1411.jpg");
    src = decode_file(jpg);
    assert_int_equal(src.channels, 3);
    assert_int_equal(ts_image_alloc(&img, src.width, src.height, channels), TS_OK);
    for (uint32_t y = 0; y < src.height; y++)
        for (uint32_t x = 0; x < src.width; x++) {
            const uint8_t *s = ts_image_row(&src, y) + (size_t)x * 3;
            uint8_t *d = ts_image_row(&img, y) + (size_t)x * channels;
            if (channels == 1)
                d[0] = grid_luma(s);
            else
                memcpy(d, s, 3);
        }
    work_path(path, n, name);
    assert_int_equal(grid_write_tiff(path, &img, &o), 0);
    ts_image_free(&src), ts_image_free(&img);
}

static void test_jpeg_tiles_ycbcr420_match_libtiff(void **s)
{
    (void)s;
    char path[512];
    snprintf(g_case, sizeof g_case, "retina YCbCr 4:2:0, 256 tiles");
    write_retina_tiff("retina-ycbcr-256.tif", 3, 256, true, path, sizeof path);
    check_jpeg_tiles_match_libtiff(path);
    snprintf(g_case, sizeof g_case, "retina YCbCr 4:2:0, 512 tiles");
    write_retina_tiff("retina-ycbcr-512.tif", 3, 512, true, path, sizeof path);
    check_jpeg_tiles_match_libtiff(path);
    /* Made by vips, with its own tables and markers. */
    snprintf(g_case, sizeof g_case, "retina-pyr-jpeg-256.tif");
    data_path(path, sizeof path, "retina-pyr-jpeg-256.tif");
    check_jpeg_tiles_match_libtiff(path);
}

/* ---- 4:2:0 tiles as stored (read_ycc) ---- */

/* One level's planes as libtiff hands them out in its raw colour mode, which neither upsamples
 * nor converts: each 2x2 block of luma, row by row, then the block's Cb and Cr. */
struct planes {
    uint32_t w, h, cw, ch;
    uint8_t *y, *cb, *cr;
};

static struct planes stored_planes(const char *path, uint32_t dir)
{
    struct planes pl = {0};
    TIFF *tif = TIFFOpen(path, "r");
    assert_non_null(tif);
    assert_int_equal(TIFFSetDirectory(tif, (tdir_t)dir), 1);
    uint32_t tw = 0, th = 0;
    uint16_t sh = 0, sv = 0;
    TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &pl.w);
    TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &pl.h);
    TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(tif, TIFFTAG_TILELENGTH, &th);
    TIFFGetFieldDefaulted(tif, TIFFTAG_YCBCRSUBSAMPLING, &sh, &sv);
    assert_true(sh == 2 && sv == 2 && tw % 16 == 0 && th % 16 == 0);
    assert_int_equal(TIFFSetField(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RAW), 1);
    pl.cw = (pl.w + 1) / 2, pl.ch = (pl.h + 1) / 2;
    pl.y = malloc((size_t)pl.w * pl.h);
    pl.cb = malloc((size_t)pl.cw * pl.ch);
    pl.cr = malloc((size_t)pl.cw * pl.ch);
    uint8_t *buf = malloc((size_t)TIFFTileSize(tif));
    assert_true(pl.y && pl.cb && pl.cr && buf);
    for (uint32_t oy = 0; oy < pl.h; oy += th)
        for (uint32_t ox = 0; ox < pl.w; ox += tw) {
            assert_true(TIFFReadTile(tif, buf, ox, oy, 0, 0) > 0);
            for (uint32_t by = 0; by < th / 2; by++)
                for (uint32_t bx = 0; bx < tw / 2; bx++) {
                    const uint8_t *u = buf + ((size_t)by * (tw / 2) + bx) * 6;
                    for (uint32_t j = 0; j < 2; j++)
                        for (uint32_t i = 0; i < 2; i++) {
                            uint32_t x = ox + 2 * bx + i, y = oy + 2 * by + j;
                            if (x < pl.w && y < pl.h)
                                pl.y[(size_t)y * pl.w + x] = u[j * 2 + i];
                        }
                    uint32_t cx = ox / 2 + bx, cy = oy / 2 + by;
                    if (cx < pl.cw && cy < pl.ch) {
                        pl.cb[(size_t)cy * pl.cw + cx] = u[4];
                        pl.cr[(size_t)cy * pl.cw + cx] = u[5];
                    }
                }
        }
    free(buf);
    TIFFClose(tif);
    return pl;
}

static void same_plane(const struct ts_image *got, const uint8_t *want, uint32_t want_w, uint32_t x,
                       uint32_t y, uint32_t w, uint32_t h, const char *name)
{
    CHECK(got->width == w && got->height == h && got->channels == 1, "%s is %ux%ux%u, want %ux%u",
          name, got->width, got->height, got->channels, w, h);
    for (uint32_t r = 0; r < h; r++)
        for (uint32_t i = 0; i < w; i++) {
            uint8_t a = ts_image_row(got, r)[i], b = want[(size_t)(y + r) * want_w + x + i];
            CHECK(a == b, "%s sample %u,%u is %u, stored %u", name, x + i, y + r, a, b);
        }
}

static void same_ycc(struct ts_reader *r, const struct planes *pl, uint32_t level, uint32_t x,
                     uint32_t y, uint32_t w, uint32_t h)
{
    struct ts_read_req q = {.level = level, .x = x, .y = y, .w = w, .h = h, .threads = g_threads};
    struct ts_ycc got;
    struct ts_err err = {0};
    int rc = ts_reader_read_ycc(r, &q, &got, &err);
    CHECK(rc == TS_OK, "read_ycc level %u %u,%u,%u,%u: %d %s", level, x, y, w, h, rc, err.msg);
    same_plane(&got.y, pl->y, pl->w, x, y, w, h, "Y");
    same_plane(&got.cb, pl->cb, pl->cw, x / 2, y / 2, (w + 1) / 2, (h + 1) / 2, "Cb");
    same_plane(&got.cr, pl->cr, pl->cw, x / 2, y / 2, (w + 1) / 2, (h + 1) / 2, "Cr");
    ts_ycc_free(&got);
}

/* Every level, whole and in odd rectangles from even corners: the planes as stored, sample for
 * sample, including the last chroma column and row of odd sizes and padded edge tiles. */
static void check_ycc_reads(const char *path)
{
    struct ts_reader *r = open_jpeg_mode(path, "strict");
    for (uint32_t l = 0; l < r->info.nlevels; l++) {
        struct planes pl = stored_planes(path, l);
        const struct ts_level *lv = &r->info.levels[l];
        assert_true(pl.w == lv->width && pl.h == lv->height);
        same_ycc(r, &pl, l, 0, 0, lv->width, lv->height);
        same_ycc(r, &pl, l, 0, 0, 1, 1);
        same_ycc(r, &pl, l, (lv->width - 1) & ~1u, (lv->height - 1) & ~1u,
                 lv->width - ((lv->width - 1) & ~1u), lv->height - ((lv->height - 1) & ~1u));
        for (int n = 0; n < 60; n++) {
            uint32_t x = rnd(lv->width) & ~1u, y = rnd(lv->height) & ~1u;
            uint32_t w =
                1 + rnd(n % 3 == 0 ? lv->width - x : (lv->width - x < 300 ? lv->width - x : 300));
            uint32_t h =
                1 + rnd(n % 4 == 0 ? lv->height - y : (lv->height - y < 90 ? lv->height - y : 90));
            same_ycc(r, &pl, l, x, y, w, h);
        }
        free(pl.y), free(pl.cb), free(pl.cr);
    }
    ts_reader_close(r);
}

static void test_jpeg_tiles_ycbcr420_read_as_stored(void **s)
{
    (void)s;
    char path[512];
    snprintf(g_case, sizeof g_case, "retina YCbCr 4:2:0, 256 tiles, planes");
    write_retina_tiff("retina-ycbcr-256-planes.tif", 3, 256, true, path, sizeof path);
    check_ycc_reads(path);
    snprintf(g_case, sizeof g_case, "retina-pyr-jpeg-256.tif, planes");
    data_path(path, sizeof path, "retina-pyr-jpeg-256.tif");
    check_ycc_reads(path);
    /* Tiles split over threads, each with its own decoder, into the same planes. */
    g_threads = 3;
    snprintf(g_case, sizeof g_case, "retina-pyr-jpeg-256.tif, planes, 3 threads");
    check_ycc_reads(path);
    g_threads = 1;
}

/* Levels stored otherwise and odd corners go the RGB way. */
static void test_ycc_reads_decline_what_they_cannot_do(void **s)
{
    (void)s;
    char path[512];
    struct ts_ycc got;
    struct ts_err err = {0};
    struct ts_read_req q = {.level = 0, .x = 0, .y = 0, .w = 64, .h = 64};
    write_retina_tiff("retina-rgb-512-planes.tif", 3, 512, false, path, sizeof path);
    struct ts_reader *r = open_jpeg_mode(path, "strict");
    assert_int_equal(ts_reader_read_ycc(r, &q, &got, &err), TS_DECLINED);
    assert_null(got.y.data);
    ts_reader_close(r);
    write_retina_tiff("retina-gray-256-planes.tif", 1, 256, false, path, sizeof path);
    r = open_jpeg_mode(path, "strict");
    assert_int_equal(ts_reader_read_ycc(r, &q, &got, &err), TS_DECLINED);
    ts_reader_close(r);
    write_retina_tiff("retina-ycbcr-256-declines.tif", 3, 256, true, path, sizeof path);
    r = open_jpeg_mode(path, "libtiff");
    assert_int_equal(ts_reader_read_ycc(r, &q, &got, &err), TS_DECLINED);
    ts_reader_close(r);
    r = open_jpeg_mode(path, "strict");
    q.x = 1;
    assert_int_equal(ts_reader_read_ycc(r, &q, &got, &err), TS_DECLINED);
    /* The same file from an even corner: what declined above was the corner, not the file. */
    q.x = 0, q.w = 600, q.h = 600;
    assert_int_equal(ts_reader_read_ycc(r, &q, &got, &err), TS_OK);
    assert_int_equal(got.cb.width, 300);
    ts_ycc_free(&got);
    ts_reader_close(r);
}

static void test_jpeg_tiles_rgb_unsubsampled_match_libtiff(void **s)
{
    (void)s;
    char path[512];
    snprintf(g_case, sizeof g_case, "retina RGB JPEG, 512 tiles");
    write_retina_tiff("retina-rgb-512.tif", 3, 512, false, path, sizeof path);
    check_jpeg_tiles_match_libtiff(path);
}

static void test_jpeg_tiles_gray_match_libtiff(void **s)
{
    (void)s;
    char path[512];
    snprintf(g_case, sizeof g_case, "retina gray JPEG, 256 tiles");
    write_retina_tiff("retina-gray-256.tif", 1, 256, false, path, sizeof path);
    check_jpeg_tiles_match_libtiff(path);
}

/* The same reads with their tiles split over three threads, each with a decoder of its own. */
static void test_jpeg_tiles_on_threads_match_libtiff(void **s)
{
    (void)s;
    char path[512];
    g_threads = 3;
    snprintf(g_case, sizeof g_case, "retina YCbCr 4:2:0, 256 tiles, 3 threads");
    write_retina_tiff("retina-ycbcr-256-mt.tif", 3, 256, true, path, sizeof path);
    check_jpeg_tiles_match_libtiff(path);
    snprintf(g_case, sizeof g_case, "retina gray JPEG, 256 tiles, 3 threads");
    write_retina_tiff("retina-gray-256-mt.tif", 1, 256, false, path, sizeof path);
    check_jpeg_tiles_match_libtiff(path);
    snprintf(g_case, sizeof g_case, "retina-pyr-jpeg-256.tif, 3 threads");
    data_path(path, sizeof path, "retina-pyr-jpeg-256.tif");
    check_jpeg_tiles_match_libtiff(path);
    g_threads = 1;
}

static void test_striped_retina_matches_source_jpeg(void **s)
{
    (void)s;
    char path[512], jpg[512];
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    snprintf(g_case, sizeof g_case, "retina-striped-jpeg.tif");
    data_path(path, sizeof path, "retina-striped-jpeg.tif");
    data_path(jpg, sizeof jpg, "retina-1411x1411.jpg");
    assert_int_equal(ts_reader_open(path, &r, &err), TS_OK);
    assert_int_equal(r->info.nlevels, 1);
    assert_int_equal(r->info.levels[0].tile_w, 0);
    struct ts_image ref = decode_file(jpg);
    /* Rows 100..400 span three 128-row strips. */
    struct ts_image a = read_region(r, 0, 300, 100, 700, 300);
    double d = mean_abs_diff(&a, &ref, 300, 100);
    CHECK(d < 4.0, "mean abs diff vs JPEG %.2f", d);
    ts_image_free(&a), ts_image_free(&ref);
    ts_reader_close(r);
}

static void test_gray16_chessboard_both_byte_orders_agree(void **s)
{
    (void)s;
    char le[512], be[512];
    struct ts_reader *a = NULL, *b = NULL;
    struct ts_err err = {0};
    snprintf(g_case, sizeof g_case, "chessboard gray16");
    data_path(le, sizeof le, "chessboard-200-gray16-le.tif");
    data_path(be, sizeof be, "chessboard-200-gray16-be.tif");
    assert_int_equal(ts_reader_open(le, &a, &err), TS_OK);
    assert_int_equal(ts_reader_open(be, &b, &err), TS_OK);
    assert_int_equal(a->info.bits_per_sample, 16);
    assert_int_equal(a->info.channels, 1);
    assert_int_equal(a->info.width, 200);
    struct ts_image ia = read_region(a, 0, 0, 0, 200, 200);
    struct ts_image ib = read_region(b, 0, 0, 0, 200, 200);
    assert_memory_equal(ia.data, ib.data, 200 * 200);
    /* The file stores 0..255 in 16-bit samples (vips getpoint gives 255 for white), so white
     * reads as round(255 * 255 / 65535) = 1 and black as 0, in alternating 25 px squares. */
    assert_int_equal(ts_image_row(&ia, 10)[10], (255 * 255 + 32767) / 65535);
    assert_int_equal(ts_image_row(&ia, 10)[37], 0);
    assert_int_equal(ts_image_row(&ia, 37)[37], (255 * 255 + 32767) / 65535);
    ts_image_free(&ia), ts_image_free(&ib);
    ts_reader_close(a), ts_reader_close(b);
}

static void test_multipage_second_page_is_not_a_level(void **s)
{
    (void)s;
    char path[512];
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    data_path(path, sizeof path, "multipage-2p-gray.tif");
    assert_int_equal(ts_reader_open(path, &r, &err), TS_OK);
    assert_int_equal(r->info.nlevels, 1);
    assert_int_equal(r->info.width, 10);
    assert_int_equal(r->info.height, 15);
    ts_reader_close(r);
}

static void test_checkit_pass_files_read(void **s)
{
    (void)s;
    static const char *names[] = {"pass_minimal_bigtiff.tiff64",
                                  "pass_minimal_valid.tiff",
                                  "pass_minimal_valid_16bit.tiff",
                                  "pass_minimal_valid_baseline_BigEndian.tiff",
                                  "pass_minimal_valid_multiple_stripoffsets.tif",
                                  "pass_minimal_valid_tiled.tiff",
                                  "pass_minimal_valid_with_icc.tiff"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[512], name[256];
        struct ts_reader *r = NULL;
        struct ts_err err = {0};
        snprintf(name, sizeof name, "checkit-tiff/%s", names[i]);
        snprintf(g_case, sizeof g_case, "%s", name);
        data_path(path, sizeof path, name);
        int rc = ts_reader_open(path, &r, &err);
        CHECK(rc == TS_OK, "open %d %s", rc, err.msg);
        CHECK(r->info.width == 20 && r->info.height == 10, "size %ux%u", r->info.width,
              r->info.height);
        CHECK(r->info.channels == 1, "channels %u", r->info.channels);
        struct ts_image img = read_region(r, 0, 0, 0, 20, 10);
        if (strstr(names[i], "16bit") == NULL)
            for (uint32_t k = 0; k < 200; k++)
                CHECK(img.data[k] == 0 || img.data[k] == 255, "bilevel pixel %u = %u", k,
                      img.data[k]);
        ts_image_free(&img);
        ts_reader_close(r);
    }
    /* 12-bit samples are refused cleanly rather than misread. */
    char path[512];
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    data_path(path, sizeof path, "checkit-tiff/pass_minimal_valid_12bit.tiff");
    assert_int_equal(ts_reader_open(path, &r, &err), TS_EUNSUPPORTED);
    assert_null(r);
}

static void test_checkit_fail_files_never_crash(void **s)
{
    (void)s;
    char dirpath[512];
    struct dirent *e;
    int seen = 0, refused = 0;
    data_path(dirpath, sizeof dirpath, "checkit-tiff");
    DIR *d = opendir(dirpath);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char path[1024];
        struct ts_reader *r = NULL;
        struct ts_err err = {0};
        if (strncmp(e->d_name, "fail_", 5) != 0)
            continue;
        snprintf(g_case, sizeof g_case, "%s", e->d_name);
        snprintf(path, sizeof path, "%s/%s", dirpath, e->d_name);
        seen++;
        int rc = ts_reader_open(path, &r, &err);
        CHECK(rc == TS_OK || rc == TS_ECODEC || rc == TS_EUNSUPPORTED, "open status %d", rc);
        if (rc != TS_OK) {
            CHECK(r == NULL && err.msg[0] != '\0', "failed open leaves no reader, says why");
            refused++;
            continue;
        }
        for (uint32_t l = 0; l < r->info.nlevels; l++) {
            struct ts_read_req q = {
                .level = l, .w = r->info.levels[l].width, .h = r->info.levels[l].height};
            struct ts_image img;
            rc = ts_reader_read(r, &q, &img, &err);
            CHECK(rc == TS_OK || rc == TS_ECODEC || rc == TS_EUNSUPPORTED, "read status %d", rc);
            if (rc == TS_OK)
                ts_image_free(&img);
            else
                CHECK(img.data == NULL, "failed read leaves no pixels");
            struct ts_ycc planes;
            rc = ts_reader_read_ycc(r, &q, &planes, &err);
            CHECK(rc == TS_OK || rc == TS_DECLINED || rc == TS_ECODEC || rc == TS_EUNSUPPORTED,
                  "planar read status %d", rc);
            if (rc == TS_OK)
                ts_ycc_free(&planes);
            else
                CHECK(planes.y.data == NULL && planes.cb.data == NULL && planes.cr.data == NULL,
                      "failed planar read leaves no planes");
        }
        ts_reader_close(r);
    }
    closedir(d);
    assert_int_equal(seen, 24);
    assert_true(refused >= 3);
}

static void test_truncated_pyramid_fails_cleanly(void **s)
{
    (void)s;
    static uint8_t buf[1 << 20];
    char src[512], path[512];
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    FILE *f;
    data_path(src, sizeof src, "retina-pyr-jpeg-256.tif");
    f = fopen(src, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    work_path(path, sizeof path, "retina-cut.tif");
    f = fopen(path, "wb");
    assert_non_null(f);
    /* Keep the first IFD and most tiles of level 0: the last tiles point past the end. */
    assert_int_equal(fwrite(buf, 1, n / 3, f), n / 3);
    fclose(f);
    int rc = ts_reader_open(path, &r, &err);
    assert_true(rc == TS_OK || rc == TS_ECODEC);
    if (rc == TS_OK) {
        struct ts_read_req q = {.level = 0, .w = r->info.width, .h = r->info.height};
        struct ts_image img;
        assert_int_equal(ts_reader_read(r, &q, &img, &err), TS_ECODEC);
        assert_null(img.data);
        assert_true(err.msg[0] != '\0');
        /* As stored: refused too, or left to the RGB read that refuses it. */
        struct ts_ycc planes;
        rc = ts_reader_read_ycc(r, &q, &planes, &err);
        assert_true(rc == TS_ECODEC || rc == TS_DECLINED);
        assert_null(planes.y.data);
        ts_reader_close(r);
    }
}

static void test_open_missing_file_is_not_found(void **s)
{
    (void)s;
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    assert_int_equal(ts_reader_open(TESSERA_TEST_DATA "/no-such.tif", &r, &err), TS_ENOTFOUND);
    assert_null(r);
}

static void test_open_unknown_bytes_is_unsupported(void **s)
{
    (void)s;
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    assert_int_equal(ts_reader_open(TESSERA_TEST_DATA "/SOURCES.md", &r, &err), TS_EUNSUPPORTED);
    assert_string_equal(err.msg, "unsupported image format");
    assert_null(r);
}

static void test_read_outside_level_is_rejected(void **s)
{
    (void)s;
    char path[512];
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    struct ts_image img;
    data_path(path, sizeof path, "retina-pyr-jpeg-256.tif");
    assert_int_equal(ts_reader_open(path, &r, &err), TS_OK);
    struct ts_read_req past_edge = {.level = 1, .x = 600, .y = 0, .w = 106, .h = 10};
    struct ts_read_req wraps = {.level = 0, .x = 10, .y = 0, .w = UINT32_MAX - 5, .h = 10};
    struct ts_read_req no_level = {.level = 4, .w = 1, .h = 1};
    struct ts_read_req empty = {.level = 0, .w = 0, .h = 10};
    struct ts_read_req edge = {.level = 1, .x = 600, .y = 700, .w = 105, .h = 5};
    assert_int_equal(ts_reader_read(r, &past_edge, &img, &err), TS_EINVAL);
    assert_int_equal(ts_reader_read(r, &wraps, &img, &err), TS_EINVAL);
    assert_int_equal(ts_reader_read(r, &no_level, &img, &err), TS_EINVAL);
    assert_int_equal(ts_reader_read(r, &empty, &img, &err), TS_EINVAL);
    assert_int_equal(ts_reader_read(r, &edge, &img, &err), TS_OK);
    assert_int_equal(img.width, 105);
    assert_int_equal(img.height, 5);
    ts_image_free(&img);
    ts_reader_close(r);
}

/* A small gray TIFF carrying the tags iipsrv's OBJ answers from, or none of them. */
static void write_tagged_tiff(const char *path, bool tags)
{
    TIFF *t = TIFFOpen(path, "w");
    assert_non_null(t);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, 8);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, 8);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 8);
    if (tags) {
        static const char xmp[] = "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"/>";
        TIFFSetField(t, TIFFTAG_ARTIST, "Ada Lovelace");
        TIFFSetField(t, TIFFTAG_COPYRIGHT, "CC-BY 4.0");
        TIFFSetField(t, TIFFTAG_DATETIME, "2024:01:02 03:04:05");
        TIFFSetField(t, TIFFTAG_IMAGEDESCRIPTION, "A test card");
        TIFFSetField(t, TIFFTAG_DOCUMENTNAME, "Card");
        TIFFSetField(t, TIFFTAG_SOFTWARE, "tessera tests");
        TIFFSetField(t, TIFFTAG_MAKE, "Phase One");
        TIFFSetField(t, TIFFTAG_XMLPACKET, (uint32_t)(sizeof xmp - 1), xmp);
        TIFFSetField(t, TIFFTAG_XRESOLUTION, 118.0f);
        TIFFSetField(t, TIFFTAG_YRESOLUTION, 59.0f);
        TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT, RESUNIT_CENTIMETER);
        TIFFSetField(t, TIFFTAG_SMINSAMPLEVALUE, 3.0);
        TIFFSetField(t, TIFFTAG_SMAXSAMPLEVALUE, 200.0);
    }
    uint8_t row[8] = {0};
    for (uint32_t y = 0; y < 8; y++)
        assert_int_equal(TIFFWriteScanline(t, row, y, 0), 1);
    TIFFClose(t);
}

static void test_text_tags_resolution_and_sample_range_reach_the_info(void **s)
{
    (void)s;
    char path[1024];
    work_path(path, sizeof path, "tagged.tif");
    write_tagged_tiff(path, true);
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    assert_int_equal(ts_reader_open_page(path, 0, &r, &err), TS_OK);
    const struct ts_image_info *info = &r->info;
    assert_string_equal(ts_image_meta(info, "creator"), "Ada Lovelace");
    assert_string_equal(ts_image_meta(info, "rights"), "CC-BY 4.0");
    assert_string_equal(ts_image_meta(info, "date"), "2024:01:02 03:04:05");
    assert_string_equal(ts_image_meta(info, "description"), "A test card");
    assert_string_equal(ts_image_meta(info, "title"), "Card");
    assert_string_equal(ts_image_meta(info, "software"), "tessera tests");
    assert_string_equal(ts_image_meta(info, "make"), "Phase One");
    assert_string_equal(ts_image_meta(info, "xmp"), "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"/>");
    assert_null(ts_image_meta(info, "model"));
    assert_true(info->dpi_x == 118.0f && info->dpi_y == 59.0f);
    assert_int_equal(info->dpi_unit, 2);
    assert_true(info->has_sample_range);
    assert_true(info->sample_min[0] == 3.0 && info->sample_max[0] == 200.0);
    ts_reader_close(r);

    write_tagged_tiff(path, false);
    assert_int_equal(ts_reader_open_page(path, 0, &r, &err), TS_OK);
    assert_null(r->info.meta);
    assert_null(ts_image_meta(&r->info, "creator"));
    assert_true(r->info.dpi_x == 0.0f);
    assert_false(r->info.has_sample_range);
    ts_reader_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiled_uncompressed_matrix_reads_exact_cells),
        cmocka_unit_test(test_tiled_deflate_matrix_reads_exact_cells),
        cmocka_unit_test(test_tiled_lzw_matrix_reads_exact_cells),
        cmocka_unit_test(test_tiled_jpeg_reads_cells_within_tolerance),
        cmocka_unit_test(test_striped_matrix_reads_cells),
        cmocka_unit_test(test_subifd_pyramid_finds_all_levels),
        cmocka_unit_test(test_bigtiff_pyramid_reads_like_classic),
        cmocka_unit_test(test_flat_tiff_has_one_level),
        cmocka_unit_test(test_retina_pyramid_levels_and_pixels),
        cmocka_unit_test(test_jpeg_tiles_ycbcr420_match_libtiff),
        cmocka_unit_test(test_jpeg_tiles_ycbcr420_read_as_stored),
        cmocka_unit_test(test_ycc_reads_decline_what_they_cannot_do),
        cmocka_unit_test(test_jpeg_tiles_rgb_unsubsampled_match_libtiff),
        cmocka_unit_test(test_jpeg_tiles_gray_match_libtiff),
        cmocka_unit_test(test_jpeg_tiles_on_threads_match_libtiff),
        cmocka_unit_test(test_striped_retina_matches_source_jpeg),
        cmocka_unit_test(test_gray16_chessboard_both_byte_orders_agree),
        cmocka_unit_test(test_multipage_second_page_is_not_a_level),
        cmocka_unit_test(test_checkit_pass_files_read),
        cmocka_unit_test(test_checkit_fail_files_never_crash),
        cmocka_unit_test(test_truncated_pyramid_fails_cleanly),
        cmocka_unit_test(test_open_missing_file_is_not_found),
        cmocka_unit_test(test_open_unknown_bytes_is_unsupported),
        cmocka_unit_test(test_read_outside_level_is_rejected),
        cmocka_unit_test(test_text_tags_resolution_and_sample_range_reach_the_info),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
