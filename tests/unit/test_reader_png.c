/* PNG reader tests: real PNGs against libpng, generated grids at 8 and 16 bits, and broken files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "grid.h"
#include "image/reader.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t slurp(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void spill(const char *path, const uint8_t *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);
}

static struct ts_image read_ok(struct ts_reader *r, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
    struct ts_read_req q = {.x = x, .y = y, .w = w, .h = h};
    struct ts_image img;
    struct ts_err err = {0};
    int rc = ts_reader_read(r, &q, &img, &err);
    if (rc != TS_OK)
        fail_msg("read: %d %s", rc, err.msg);
    assert_int_equal(img.width, w);
    assert_int_equal(img.height, h);
    return img;
}

/* Opens a real PNG, checks its shape, and compares a region with libpng's decode of the file. */
static void check_against_libpng(const char *name, uint32_t w, uint32_t h, uint32_t ch,
                                 uint32_t bits)
{
    static uint8_t buf[1 << 20];
    char path[512];
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    struct ts_image ref;

    snprintf(path, sizeof path, "%s/%s", TESSERA_TEST_DATA, name);
    int rc = ts_reader_open(path, &r, &err);
    if (rc != TS_OK)
        fail_msg("open %s: %d %s", name, rc, err.msg);
    assert_string_equal(r->info.format, "png");
    assert_int_equal(r->info.width, w);
    assert_int_equal(r->info.height, h);
    assert_int_equal(r->info.channels, ch);
    assert_int_equal(r->info.bits_per_sample, bits);
    assert_int_equal(tu_decode(buf, slurp(path, buf, sizeof buf), &ref), 0);
    assert_int_equal(ref.channels, ch);

    uint32_t x = w / 5, y = h / 3, rw = w / 2, rh = h / 2;
    struct ts_image img = read_ok(r, x, y, rw, rh);
    for (uint32_t j = 0; j < rh; j++)
        for (size_t i = 0; i < (size_t)rw * ch; i++) {
            int a = ts_image_row(&img, j)[i], b = ts_image_row(&ref, y + j)[(size_t)x * ch + i];
            /* libpng's 16 -> 8 scaling may round one level apart from v * 255 / 65535. */
            if (abs(a - b) > (bits == 16 ? 1 : 0))
                fail_msg("%s: pixel %zu,%u is %d, libpng says %d", name, i / ch, j, a, b);
        }
    ts_image_free(&img);
    img = read_ok(r, 0, 0, w, h);
    assert_memory_equal(img.data, ref.data, (size_t)w * h * ch);
    ts_image_free(&img);
    ts_image_free(&ref);
    ts_reader_close(r);
}

static void test_gray_png_reads_one_channel(void **s)
{
    (void)s;
    check_against_libpng("camera-512-gray.png", 512, 512, 1, 8);
}

/* Despite its name the file is 8-bit RGBA (file(1) and vipsheader agree): 4 channels. */
static void test_horse_png_keeps_alpha(void **s)
{
    (void)s;
    check_against_libpng("horse-400x328-gray-alpha.png", 400, 328, 4, 8);
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    assert_int_equal(ts_reader_open(TESSERA_TEST_DATA "/horse-400x328-gray-alpha.png", &r, &err),
                     TS_OK);
    struct ts_image img = read_ok(r, 0, 0, 1, 1);
    /* vips getpoint 0 0: 255 255 255 110 */
    assert_int_equal(img.data[0], 255);
    assert_int_equal(img.data[3], 110);
    ts_image_free(&img);
    ts_reader_close(r);
}

static void test_palette_png_expands_to_rgb(void **s)
{
    (void)s;
    check_against_libpng("green-palette-320x240.png", 320, 240, 3, 8);
}

static void test_rgb16_png_scales_to_8_bit(void **s)
{
    (void)s;
    check_against_libpng("chessboard-200-rgb16.png", 200, 200, 3, 16);
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    assert_int_equal(ts_reader_open(TESSERA_TEST_DATA "/chessboard-200-rgb16.png", &r, &err),
                     TS_OK);
    struct ts_image img = read_ok(r, 0, 0, 200, 200);
    /* vips getpoint: 65535 at (10,10), 0 at (30,10). */
    assert_int_equal(ts_image_row(&img, 10)[10 * 3], 255);
    assert_int_equal(ts_image_row(&img, 10)[30 * 3], 0);
    ts_image_free(&img);
    ts_reader_close(r);
}

static void check_grid_png(uint32_t channels, uint32_t bits)
{
    char path[512];
    struct ts_image g;
    struct ts_reader *r = NULL;
    struct ts_err err = {0};

    assert_int_equal(tu_mkdirs(TESSERA_TEST_WORK), 0);
    snprintf(path, sizeof path, "%s/grid-%uch-%ub.png", TESSERA_TEST_WORK, channels, bits);
    assert_int_equal(grid_make(GRID_SIZE, GRID_SIZE, GRID_CELLS, channels, &g), TS_OK);
    assert_int_equal(grid_write_png(path, &g, bits), 0);
    assert_int_equal(ts_reader_open(path, &r, &err), TS_OK);
    assert_int_equal(r->info.channels, channels);
    assert_int_equal(r->info.bits_per_sample, bits);
    /* Every pixel of the region, exactly: both 8-bit and v * 257 16-bit round-trip. */
    struct ts_image img = read_ok(r, 30, 70, 550, 430);
    for (uint32_t y = 0; y < 430; y++)
        if (memcmp(ts_image_row(&img, y), ts_image_row(&g, 70 + y) + 30 * channels,
                   (size_t)550 * channels) != 0)
            fail_msg("%u ch %u bit: row %u differs", channels, bits, 70 + y);
    for (uint32_t row = 1; row < 5; row++)
        for (uint32_t col = 1; col < 5; col++) {
            uint8_t rgb[3];
            grid_cell_color(col, row, rgb);
            assert_int_equal(tu_pixel_diff(&img, col * 100 + 50 - 30, row * 100 + 50 - 70, rgb), 0);
        }
    ts_image_free(&img);
    /* The first cell carries alpha 128. */
    img = read_ok(r, 0, 0, 10, 10);
    if (channels == 2 || channels == 4)
        assert_int_equal(img.data[5 * img.stride + 5 * channels + channels - 1], 128);
    ts_image_free(&img);
    ts_image_free(&g);
    ts_reader_close(r);
}

static void test_grid_png_8_bit_all_channel_counts_exact(void **s)
{
    (void)s;
    for (uint32_t ch = 1; ch <= 4; ch++)
        check_grid_png(ch, 8);
}

static void test_grid_png_16_bit_all_channel_counts_exact(void **s)
{
    (void)s;
    for (uint32_t ch = 1; ch <= 4; ch++)
        check_grid_png(ch, 16);
}

static void test_empty_file_is_unsupported(void **s)
{
    (void)s;
    char path[512];
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    assert_int_equal(tu_mkdirs(TESSERA_TEST_WORK), 0);
    snprintf(path, sizeof path, "%s/empty.png", TESSERA_TEST_WORK);
    spill(path, (const uint8_t *)"", 0);
    assert_int_equal(ts_reader_open(path, &r, &err), TS_EUNSUPPORTED);
    assert_null(r);
    int fd = tu_open_ro(path);
    assert_true(fd >= 0);
    assert_int_equal(ts_png_open_fd(fd, &r, &err), TS_EUNSUPPORTED);
    assert_null(r);
}

static void test_truncated_png_is_codec_error(void **s)
{
    (void)s;
    static uint8_t buf[1 << 20];
    char path[512];
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    size_t n = slurp(TESSERA_TEST_DATA "/camera-512-gray.png", buf, sizeof buf);

    assert_int_equal(tu_mkdirs(TESSERA_TEST_WORK), 0);
    /* Header only: the signature promises a PNG, the IHDR is cut. */
    snprintf(path, sizeof path, "%s/cut-header.png", TESSERA_TEST_WORK);
    spill(path, buf, 20);
    assert_int_equal(ts_reader_open(path, &r, &err), TS_ECODEC);
    assert_null(r);
    /* Half the image data: opens, but the rows past the cut cannot be read. */
    snprintf(path, sizeof path, "%s/cut-half.png", TESSERA_TEST_WORK);
    spill(path, buf, n / 2);
    assert_int_equal(ts_reader_open(path, &r, &err), TS_OK);
    struct ts_read_req top = {.w = 512, .h = 10};
    struct ts_read_req all = {.w = 512, .h = 512};
    struct ts_image img;
    assert_int_equal(ts_reader_read(r, &top, &img, &err), TS_OK);
    ts_image_free(&img);
    assert_int_equal(ts_reader_read(r, &all, &img, &err), TS_ECODEC);
    assert_null(img.data);
    ts_reader_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gray_png_reads_one_channel),
        cmocka_unit_test(test_horse_png_keeps_alpha),
        cmocka_unit_test(test_palette_png_expands_to_rgb),
        cmocka_unit_test(test_rgb16_png_scales_to_8_bit),
        cmocka_unit_test(test_grid_png_8_bit_all_channel_counts_exact),
        cmocka_unit_test(test_grid_png_16_bit_all_channel_counts_exact),
        cmocka_unit_test(test_empty_file_is_unsupported),
        cmocka_unit_test(test_truncated_png_is_codec_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
