/* JPEG reader tests: full, DCT-scaled and region reads against an independent decode, and corrupt
 * input. */
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

#define RETINA TESSERA_TEST_DATA "/retina-1411x1411.jpg"

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

static struct ts_reader *open_ok(const char *path)
{
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    int rc = ts_reader_open(path, &r, &err);
    if (rc != TS_OK)
        fail_msg("open %s: %d %s", path, rc, err.msg);
    return r;
}

static struct ts_image read_ok(struct ts_reader *r, const struct ts_read_req *q)
{
    struct ts_image img;
    struct ts_err err = {0};
    int rc = ts_reader_read(r, q, &img, &err);
    if (rc != TS_OK)
        fail_msg("read: %d %s", rc, err.msg);
    return img;
}

static double mean_abs_diff(const struct ts_image *a, const struct ts_image *b, uint32_t bx,
                            uint32_t by)
{
    uint64_t sum = 0, n = 0;
    for (uint32_t y = 0; y < a->height; y++)
        for (size_t x = 0; x < (size_t)a->width * a->channels; x++) {
            int va = ts_image_row(a, y)[x];
            int vb = ts_image_row(b, by + y)[(size_t)bx * b->channels + x];
            sum += (uint64_t)abs(va - vb);
            n++;
        }
    return (double)sum / (double)n;
}

static void test_retina_full_read_matches_libjpeg(void **s)
{
    (void)s;
    struct ts_reader *r = open_ok(RETINA);
    assert_string_equal(r->info.format, "jpeg");
    assert_int_equal(r->info.width, 1411);
    assert_int_equal(r->info.height, 1411);
    assert_int_equal(r->info.channels, 3);
    assert_int_equal(r->info.nlevels, 1);
    struct ts_read_req q = {.w = 1411, .h = 1411, .min_w = 1411, .min_h = 1411};
    struct ts_image img = read_ok(r, &q);
    struct ts_image ref = decode_file(RETINA);
    assert_int_equal(img.width, 1411);
    assert_int_equal(img.height, 1411);
    /* Same library, same settings: identical pixels. */
    assert_memory_equal(img.data, ref.data, (size_t)1411 * 1411 * 3);
    ts_image_free(&img), ts_image_free(&ref);
    ts_reader_close(r);
}

static void test_scaled_read_uses_smallest_dct_scale_at_least_min(void **s)
{
    (void)s;
    struct ts_reader *r = open_ok(RETINA);
    struct ts_read_req q = {.w = 1411, .h = 1411, .min_w = 200, .min_h = 200};
    struct ts_image img = read_ok(r, &q);
    /* 1/8 gives 177 < 200, so 2/8: ceil(1411 / 4) = 353. */
    assert_int_equal(img.width, 353);
    assert_int_equal(img.height, 353);
    struct ts_image ref = decode_file(RETINA);
    /* Compare with a 4x4 box average of the full decode. */
    uint64_t sum = 0;
    for (uint32_t y = 0; y < 352; y++)
        for (uint32_t x = 0; x < 352; x++)
            for (uint32_t c = 0; c < 3; c++) {
                uint32_t acc = 0;
                for (uint32_t dy = 0; dy < 4; dy++)
                    for (uint32_t dx = 0; dx < 4; dx++)
                        acc += ts_image_row(&ref, 4 * y + dy)[(4 * x + dx) * 3 + c];
                sum += (uint64_t)abs((int)((acc + 8) / 16) - ts_image_row(&img, y)[x * 3 + c]);
            }
    double mad = (double)sum / (352.0 * 352 * 3);
    assert_true(mad < 3.0);
    ts_image_free(&img), ts_image_free(&ref);
    ts_reader_close(r);
}

static void test_region_read_matches_cut_of_full_read(void **s)
{
    (void)s;
    struct ts_reader *r = open_ok(RETINA);
    struct ts_image ref = decode_file(RETINA);
    struct ts_read_req q = {.x = 333, .y = 517, .w = 401, .h = 299, .min_w = 401, .min_h = 299};
    struct ts_image img = read_ok(r, &q);
    assert_int_equal(img.width, 401);
    assert_int_equal(img.height, 299);
    double d = mean_abs_diff(&img, &ref, 333, 517);
    assert_true(d < 1.0);
    ts_image_free(&img);

    /* A scaled region: 1/2 of 400x300 at (600,600) is 200x150 from (300,300) of the half image. */
    struct ts_read_req h = {.x = 600, .y = 600, .w = 400, .h = 300, .min_w = 200, .min_h = 150};
    img = read_ok(r, &h);
    assert_int_equal(img.width, 200);
    assert_int_equal(img.height, 150);
    uint64_t sum = 0;
    for (uint32_t y = 0; y < 150; y++)
        for (uint32_t x = 0; x < 200; x++) {
            uint32_t acc = 0;
            for (uint32_t dy = 0; dy < 2; dy++)
                for (uint32_t dx = 0; dx < 2; dx++)
                    acc += ts_image_row(&ref, 600 + 2 * y + dy)[(600 + 2 * x + dx) * 3 + 1];
            sum += (uint64_t)abs((int)((acc + 2) / 4) - ts_image_row(&img, y)[x * 3 + 1]);
        }
    assert_true((double)sum / (200.0 * 150) < 3.0);
    ts_image_free(&img), ts_image_free(&ref);
    ts_reader_close(r);
}

static void test_corrupt_jpeg_is_codec_error(void **s)
{
    (void)s;
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    int rc = ts_reader_open(TESSERA_TEST_DATA "/truncated-bogus-huffman.jpg", &r, &err);
    if (rc == TS_OK) {
        struct ts_read_req q = {.w = r->info.width, .h = r->info.height};
        struct ts_image img;
        rc = ts_reader_read(r, &q, &img, &err);
        assert_null(img.data);
        ts_reader_close(r);
    }
    assert_int_equal(rc, TS_ECODEC);
    assert_non_null(strstr(err.msg, "Huffman"));
}

static void test_truncated_jpeg_is_codec_error(void **s)
{
    (void)s;
    char path[512];
    FILE *in = fopen(RETINA, "rb"), *out;
    static uint8_t buf[1 << 20];
    assert_non_null(in);
    size_t n = fread(buf, 1, sizeof buf, in);
    fclose(in);
    assert_int_equal(tu_mkdirs(TESSERA_TEST_WORK), 0);
    snprintf(path, sizeof path, "%s/retina-half.jpg", TESSERA_TEST_WORK);
    out = fopen(path, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(buf, 1, n / 2, out), n / 2);
    fclose(out);
    struct ts_reader *r = open_ok(path);
    struct ts_read_req q = {.w = 1411, .h = 1411};
    struct ts_image img;
    struct ts_err err = {0};
    assert_int_equal(ts_reader_read(r, &q, &img, &err), TS_ECODEC);
    assert_null(img.data);
    ts_reader_close(r);
}

static void check_grid_jpeg(uint32_t channels)
{
    char path[512];
    struct ts_image g;
    assert_int_equal(tu_mkdirs(TESSERA_TEST_WORK), 0);
    snprintf(path, sizeof path, "%s/grid-%uch.jpg", TESSERA_TEST_WORK, channels);
    assert_int_equal(grid_make(GRID_SIZE, GRID_SIZE, GRID_CELLS, channels, &g), TS_OK);
    assert_int_equal(grid_write_jpeg(path, &g, 90), 0);
    ts_image_free(&g);
    struct ts_reader *r = open_ok(path);
    assert_int_equal(r->info.channels, channels);
    struct ts_read_req q = {.x = 150, .y = 250, .w = 700, .h = 600, .min_w = 700, .min_h = 600};
    struct ts_image img = read_ok(r, &q);
    assert_int_equal(img.channels, channels);
    for (uint32_t row = 3; row < 8; row++)
        for (uint32_t col = 2; col < 8; col++) {
            uint8_t rgb[3];
            grid_cell_color(col, row, rgb);
            int d = tu_pixel_diff(&img, col * 100 + 50 - 150, row * 100 + 50 - 250, rgb);
            if (d > 8)
                fail_msg("%u ch: cell %u,%u differs by %d", channels, col, row, d);
        }
    ts_image_free(&img);
    /* At 1/4 scale cell centres land at 25 + 25 * n. */
    struct ts_read_req sq = {.w = 1000, .h = 1000, .min_w = 250, .min_h = 250};
    img = read_ok(r, &sq);
    assert_int_equal(img.width, 250);
    for (uint32_t k = 0; k < 10; k++) {
        uint8_t rgb[3];
        grid_cell_color(k, 9 - k, rgb);
        int d = tu_pixel_diff(&img, 25 * k + 12, 25 * (9 - k) + 12, rgb);
        if (d > 8)
            fail_msg("%u ch scaled: cell %u,%u differs by %d", channels, k, 9 - k, d);
    }
    ts_image_free(&img);
    ts_reader_close(r);
}

static void test_grid_rgb_jpeg_cells_within_tolerance(void **s)
{
    (void)s;
    check_grid_jpeg(3);
}

static void test_grid_gray_jpeg_reads_one_channel(void **s)
{
    (void)s;
    check_grid_jpeg(1);
}

static void test_cmyk_adobe_jpeg_reads_as_rgb(void **s)
{
    (void)s;
    struct ts_reader *r = open_ok(TESSERA_TEST_DATA "/rocket-300-cmyk-noprofile.jpg");
    assert_int_equal(r->info.channels, 3);
    struct ts_read_req q = {.w = r->info.width, .h = r->info.height};
    struct ts_image img = read_ok(r, &q);
    assert_int_equal(img.channels, 3);
    /* A daylight photo: not all black (which a wrong inversion would give), not all white. */
    uint64_t sum = 0;
    for (uint32_t y = 0; y < img.height; y++)
        for (uint32_t x = 0; x < img.width * 3; x++)
            sum += ts_image_row(&img, y)[x];
    double mean = (double)sum / ((double)img.width * img.height * 3);
    assert_true(mean > 40 && mean < 230);
    ts_image_free(&img);
    ts_reader_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retina_full_read_matches_libjpeg),
        cmocka_unit_test(test_scaled_read_uses_smallest_dct_scale_at_least_min),
        cmocka_unit_test(test_region_read_matches_cut_of_full_read),
        cmocka_unit_test(test_corrupt_jpeg_is_codec_error),
        cmocka_unit_test(test_truncated_jpeg_is_codec_error),
        cmocka_unit_test(test_grid_rgb_jpeg_cells_within_tolerance),
        cmocka_unit_test(test_grid_gray_jpeg_reads_one_channel),
        cmocka_unit_test(test_cmyk_adobe_jpeg_reads_as_rgb),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
