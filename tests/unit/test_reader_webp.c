/* WebP reader: regions (odd offsets too) and scaled reads of cwebp lossless and lossy files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "image/reader.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DATA TESSERA_TEST_DATA
#define WORK TESSERA_TEST_WORK

#define IMG_W 256
#define IMG_H 192
#define CELL 32

/* ---- helpers ---- */

static bool have_tool(const char *name)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", name);
    return system(cmd) == 0;
}

static int run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof cmd)
        return -1;
    return system(cmd);
}

static void work_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", WORK, name);
}

/* Flat cells whose colours differ from every neighbour; alpha varies by cell too. */
static uint8_t cell_value(uint32_t x, uint32_t y, uint32_t c)
{
    uint32_t col = x / CELL, row = y / CELL;
    switch (c) {
    case 0: return (uint8_t)(20 + 29 * col);
    case 1: return (uint8_t)(30 + 37 * row);
    case 2: return (uint8_t)(240 - 13 * (col + row));
    default: return (uint8_t)(255 - 9 * (col + 2 * row));
    }
}

static int write_pam(const char *path, uint32_t ch)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    fprintf(f, "P7\nWIDTH %u\nHEIGHT %u\nDEPTH %u\nMAXVAL 255\nTUPLTYPE %s\nENDHDR\n", IMG_W, IMG_H,
            ch, ch == 4 ? "RGB_ALPHA" : "RGB");
    for (uint32_t y = 0; y < IMG_H; y++)
        for (uint32_t x = 0; x < IMG_W; x++)
            for (uint32_t c = 0; c < ch; c++)
                fputc(cell_value(x, y, c), f);
    return fclose(f) == 0 ? 0 : -1;
}

/* Makes name.webp in the work dir from the cell image; opts are cwebp flags. */
static void make_webp(const char *name, uint32_t ch, const char *opts, char *out, size_t n)
{
    char pam[512], file[128];
    if (!have_tool("cwebp"))
        skip();
    assert_int_equal(run("mkdir -p '%s'", WORK), 0);
    snprintf(file, sizeof file, "%s.pam", name);
    work_path(pam, sizeof pam, file);
    snprintf(file, sizeof file, "%s.webp", name);
    work_path(out, n, file);
    assert_int_equal(write_pam(pam, ch), 0);
    assert_int_equal(run("cwebp -quiet %s '%s' -o '%s' >/dev/null 2>&1", opts, pam, out), 0);
}

/* ts_webp_open_fd on a fresh descriptor of path (which must exist). */
static int webp_open(const char *path, struct ts_reader **r, struct ts_err *err)
{
    int fd = tu_open_ro(path);
    *r = NULL;
    if (fd < 0)
        fail_msg("open %s failed", path);
    return ts_webp_open_fd(fd, r, err);
}

static struct ts_reader *open_ok(const char *path)
{
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    int rc = webp_open(path, &r, &err);
    if (rc != TS_OK)
        fail_msg("ts_webp_open_fd(%s) = %d: %s", path, rc, err.msg);
    return r;
}

static int read_req(struct ts_reader *r, uint32_t x, uint32_t y, uint32_t w, uint32_t h,
                    uint32_t min_w, uint32_t min_h, struct ts_image *out)
{
    struct ts_read_req req = {
        .level = 0, .x = x, .y = y, .w = w, .h = h, .min_w = min_w, .min_h = min_h};
    struct ts_err err = {0};
    return r->ops->read(r, &req, out, &err);
}

/* Max difference between a full-size region read and the generated cells. */
static int region_vs_cells(const struct ts_image *img, uint32_t x0, uint32_t y0)
{
    int worst = 0;
    for (uint32_t y = 0; y < img->height; y++)
        for (uint32_t x = 0; x < img->width; x++)
            for (uint32_t c = 0; c < img->channels; c++) {
                int d = abs((int)ts_image_row(img, y)[(size_t)x * img->channels + c] -
                            (int)cell_value(x0 + x, y0 + y, c));
                if (d > worst)
                    worst = d;
            }
    return worst;
}

/* ---- lossless ---- */

static void test_lossless_rgb_info_and_odd_region_are_exact(void **state)
{
    (void)state;
    char path[512];
    struct ts_image img;
    make_webp("lossless-rgb", 3, "-lossless", path, sizeof path);
    struct ts_reader *r = open_ok(path);
    assert_int_equal(r->info.width, IMG_W);
    assert_int_equal(r->info.height, IMG_H);
    assert_int_equal(r->info.channels, 3);
    assert_int_equal(r->info.bits_per_sample, 8);
    assert_int_equal(r->info.nlevels, 1);
    assert_int_equal(r->info.levels[0].width, IMG_W);
    assert_string_equal(r->info.format, "webp");
    /* Odd offsets cross cell borders both ways. */
    assert_int_equal(read_req(r, 33, 17, 101, 61, 101, 61, &img), TS_OK);
    assert_int_equal(img.width, 101);
    assert_int_equal(img.height, 61);
    assert_int_equal(img.channels, 3);
    assert_int_equal(region_vs_cells(&img, 33, 17), 0);
    ts_image_free(&img);
    /* The bottom-right corner pixel alone. */
    assert_int_equal(read_req(r, IMG_W - 1, IMG_H - 1, 1, 1, 1, 1, &img), TS_OK);
    assert_int_equal(region_vs_cells(&img, IMG_W - 1, IMG_H - 1), 0);
    ts_image_free(&img);
    r->ops->close(r);
}

static void test_lossless_rgba_keeps_alpha(void **state)
{
    (void)state;
    char path[512];
    struct ts_image img;
    make_webp("lossless-rgba", 4, "-lossless -exact", path, sizeof path);
    struct ts_reader *r = open_ok(path);
    assert_int_equal(r->info.channels, 4);
    assert_int_equal(read_req(r, 0, 0, IMG_W, IMG_H, IMG_W, IMG_H, &img), TS_OK);
    assert_int_equal(img.channels, 4);
    assert_int_equal(region_vs_cells(&img, 0, 0), 0);
    ts_image_free(&img);
    assert_int_equal(read_req(r, 95, 63, 70, 3, 70, 3, &img), TS_OK);
    assert_int_equal(region_vs_cells(&img, 95, 63), 0);
    ts_image_free(&img);
    r->ops->close(r);
}

/* A read that may come back smaller is scaled by halvings that still cover the minimum, and
 * each flat cell keeps its colour at its centre. */
static void test_scaled_read_halves_down_to_the_minimum(void **state)
{
    (void)state;
    char path[512];
    struct ts_image img;
    make_webp("lossless-scale", 3, "-lossless", path, sizeof path);
    struct ts_reader *r = open_ok(path);
    assert_int_equal(read_req(r, 64, 32, 128, 96, 30, 20, &img), TS_OK);
    /* 128x96 halves to 64x48 then 32x24; 16x12 would be below 30x20. */
    assert_int_equal(img.width, 32);
    assert_int_equal(img.height, 24);
    for (uint32_t cy = 0; cy < 3; cy++)
        for (uint32_t cx = 0; cx < 4; cx++) {
            uint32_t sx = cx * 8 + 4, sy = cy * 8 + 4; /* cell centre at 1/4 scale */
            for (uint32_t c = 0; c < 3; c++) {
                int got = ts_image_row(&img, sy)[(size_t)sx * 3 + c];
                int want = cell_value(64 + cx * CELL + 16, 32 + cy * CELL + 16, c);
                if (abs(got - want) > 2)
                    fail_msg("cell (%u,%u) c%u: got %d want %d", cx, cy, c, got, want);
            }
        }
    ts_image_free(&img);
    /* min equal to the region: no scaling. */
    assert_int_equal(read_req(r, 64, 32, 128, 96, 128, 96, &img), TS_OK);
    assert_int_equal(img.width, 128);
    assert_int_equal(img.height, 96);
    ts_image_free(&img);
    /* Odd offsets are read at full size (still >= the minimum) and stay exact. */
    assert_int_equal(read_req(r, 65, 33, 120, 90, 30, 20, &img), TS_OK);
    assert_true(img.width >= 30 && img.width <= 120);
    assert_true(img.height >= 20 && img.height <= 90);
    if (img.width == 120)
        assert_int_equal(region_vs_cells(&img, 65, 33), 0);
    ts_image_free(&img);
    r->ops->close(r);
}

/* ---- lossy, against dwebp ---- */

static void test_lossy_regions_match_dwebp(void **state)
{
    (void)state;
    static const uint32_t regions[][4] = {
        {0, 0, IMG_W, IMG_H}, {40, 24, 100, 80}, {31, 63, 97, 65}, {255, 191, 1, 1}};
    char path[512], ppm[512];
    struct ts_image ref;
    if (!have_tool("dwebp"))
        skip();
    make_webp("lossy-rgb", 3, "-q 90", path, sizeof path);
    work_path(ppm, sizeof ppm, "lossy-rgb-dwebp.ppm");
    assert_int_equal(run("dwebp -quiet '%s' -ppm -o '%s' >/dev/null 2>&1", path, ppm), 0);
    assert_int_equal(tu_load_pnm(ppm, &ref), 0);
    assert_int_equal(ref.width, IMG_W);
    struct ts_reader *r = open_ok(path);
    assert_int_equal(r->info.channels, 3);
    for (size_t i = 0; i < sizeof regions / sizeof regions[0]; i++) {
        const uint32_t *g = regions[i];
        struct ts_image img;
        uint64_t sum = 0;
        int max = 0;
        assert_int_equal(read_req(r, g[0], g[1], g[2], g[3], g[2], g[3], &img), TS_OK);
        assert_int_equal(img.width, g[2]);
        assert_int_equal(img.height, g[3]);
        for (uint32_t y = 0; y < img.height; y++)
            for (uint32_t x = 0; x < (size_t)img.width * 3; x++) {
                int d = abs((int)ts_image_row(&img, y)[x] -
                            (int)ts_image_row(&ref, g[1] + y)[(size_t)g[0] * 3 + x]);
                sum += (uint64_t)d;
                max = d > max ? d : max;
            }
        double mean = (double)sum / ((double)img.width * img.height * 3);
        /* The same decoder on the same bytes: a crop must not change any pixel. */
        if (mean > 0.0 || max > 0)
            fail_msg("region %zu: mean %.3f max %d", i, mean, max);
        /* And the picture is the cell image: centre of the first whole cell in the region. */
        uint32_t cx = (g[0] + CELL - 1) / CELL * CELL + CELL / 2;
        uint32_t cy = (g[1] + CELL - 1) / CELL * CELL + CELL / 2;
        if (cx < g[0] + g[2] && cy < g[1] + g[3])
            for (uint32_t c = 0; c < 3; c++) {
                int got = ts_image_row(&img, cy - g[1])[(size_t)(cx - g[0]) * 3 + c];
                assert_true(abs(got - (int)cell_value(cx, cy, c)) <= 8);
            }
        ts_image_free(&img);
    }
    ts_image_free(&ref);
    r->ops->close(r);
}

/* ---- damaged, foreign and out-of-range ---- */

static void test_truncated_webp_fails_cleanly(void **state)
{
    (void)state;
    char path[512], half[512];
    make_webp("lossy-trunc", 3, "-q 80", path, sizeof path);
    work_path(half, sizeof half, "lossy-trunc-half.webp");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(run("head -c %ld '%s' > '%s'", (long)st.st_size / 2, path, half), 0);
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    int rc = webp_open(half, &r, &err);
    if (rc == TS_OK) {
        struct ts_image img = {0};
        rc = read_req(r, 0, 0, IMG_W, IMG_H, IMG_W, IMG_H, &img);
        assert_null(img.data);
        r->ops->close(r);
    } else {
        assert_null(r);
    }
    assert_int_equal(rc, TS_ECODEC);
}

static void test_foreign_missing_and_outside_requests_are_refused(void **state)
{
    (void)state;
    char path[512];
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    struct ts_image img = {0};
    snprintf(path, sizeof path, "%s/retina-pyr-jpeg-256.tif", DATA);
    assert_int_equal(webp_open(path, &r, &err), TS_EUNSUPPORTED);
    assert_null(r);
    work_path(path, sizeof path, "absent.webp");
    assert_int_equal(ts_reader_open(path, &r, &err), TS_ENOTFOUND);
    make_webp("lossless-bounds", 3, "-lossless", path, sizeof path);
    r = open_ok(path);
    assert_int_equal(read_req(r, 200, 0, 57, 10, 57, 10, &img), TS_EINVAL);
    assert_int_equal(read_req(r, 0, 0, 0, 10, 0, 10, &img), TS_EINVAL);
    struct ts_read_req lvl1 = {.level = 1, .w = 8, .h = 8};
    assert_int_equal(r->ops->read(r, &lvl1, &img, &err), TS_EINVAL);
    assert_null(img.data);
    r->ops->close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lossless_rgb_info_and_odd_region_are_exact),
        cmocka_unit_test(test_lossless_rgba_keeps_alpha),
        cmocka_unit_test(test_scaled_read_halves_down_to_the_minimum),
        cmocka_unit_test(test_lossy_regions_match_dwebp),
        cmocka_unit_test(test_truncated_webp_fails_cleanly),
        cmocka_unit_test(test_foreign_missing_and_outside_requests_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
