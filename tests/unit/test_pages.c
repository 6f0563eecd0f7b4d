/* Multi-page TIFF: "{id};{n}" picks page n, each page with its own pyramid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "image/reader.h"
#include "image/source.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>
#include <tiffio.h>

#define WORK TESSERA_TEST_WORK

/* One flat-colour directory; reduced marks it as a pyramid level of the page before it. */
static void write_dir(TIFF *t, uint32_t w, uint32_t h, const uint8_t rgb[3], bool reduced)
{
    TIFFSetField(t, TIFFTAG_SUBFILETYPE, reduced ? FILETYPE_REDUCEDIMAGE : FILETYPE_PAGE);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, w);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, h);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 3);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, h);
    uint8_t row[3 * 512];
    for (uint32_t x = 0; x < w; x++)
        memcpy(row + 3 * x, rgb, 3);
    for (uint32_t y = 0; y < h; y++)
        assert_true(TIFFWriteScanline(t, row, y, 0) == 1);
    assert_true(TIFFWriteDirectory(t));
}

/* Page 1: red 400x200 with a 200x100 level; page 2: blue 128x128 with a 64x64 level. */
static const char *make_two_page_pyramid(void)
{
    static char path[512];
    assert_int_equal(tu_mkdirs(WORK), 0);
    snprintf(path, sizeof path, "%s/two-pages.tif", WORK);
    TIFF *t = TIFFOpen(path, "w");
    assert_non_null(t);
    static const uint8_t red[3] = {200, 20, 20}, blue[3] = {20, 20, 200};
    write_dir(t, 400, 200, red, false);
    write_dir(t, 200, 100, red, true);
    write_dir(t, 128, 128, blue, false);
    write_dir(t, 64, 64, blue, true);
    TIFFClose(t);
    return path;
}

static void center_color(struct ts_reader *r, uint32_t level, uint8_t out[3])
{
    const struct ts_level *lv = &r->info.levels[level];
    struct ts_read_req q = {.level = level,
                            .x = lv->width / 2,
                            .y = lv->height / 2,
                            .w = 1,
                            .h = 1,
                            .min_w = 1,
                            .min_h = 1};
    struct ts_image img;
    struct ts_err err;
    assert_int_equal(ts_reader_read(r, &q, &img, &err), TS_OK);
    memcpy(out, img.data, 3);
    ts_image_free(&img);
}

static void test_each_page_has_its_own_size_levels_and_pixels(void **state)
{
    (void)state;
    const char *path = make_two_page_pyramid();
    struct ts_reader *r;
    struct ts_err err;
    uint8_t c[3];

    assert_int_equal(ts_reader_open_page(path, 0, &r, &err), TS_OK);
    assert_int_equal(r->info.width, 400);
    assert_int_equal(r->info.nlevels, 2);
    assert_int_equal(r->info.levels[1].width, 200);
    center_color(r, 1, c);
    assert_true(c[0] == 200 && c[2] == 20);
    ts_reader_close(r);

    assert_int_equal(ts_reader_open_page(path, 1, &r, &err), TS_OK);
    assert_int_equal(r->info.width, 128);
    assert_int_equal(r->info.height, 128);
    assert_int_equal(r->info.nlevels, 2); /* its own reduced level, not the next page */
    assert_int_equal(r->info.levels[1].width, 64);
    center_color(r, 0, c);
    assert_true(c[0] == 20 && c[2] == 200);
    center_color(r, 1, c);
    assert_true(c[0] == 20 && c[2] == 200);
    ts_reader_close(r);

    assert_int_equal(ts_reader_open_page(path, 2, &r, &err), TS_ENOTFOUND);
    assert_non_null(strstr(err.msg, "page 3"));
}

/* A book of 1,000 small pages, each its own colour: page 700 is far past any small cap. */
static void test_page_700_of_a_thousand_page_book(void **state)
{
    (void)state;
    char path[512];
    assert_int_equal(tu_mkdirs(WORK), 0);
    snprintf(path, sizeof path, "%s/book.tif", WORK);
    TIFF *t = TIFFOpen(path, "w");
    assert_non_null(t);
    for (unsigned i = 0; i < 1000; i++) {
        const uint8_t rgb[3] = {(uint8_t)(i % 250), (uint8_t)(i / 250 * 50), 7};
        write_dir(t, 4, 4, rgb, false);
    }
    TIFFClose(t);

    struct ts_reader *r;
    struct ts_err err;
    assert_int_equal(ts_reader_open_page(path, 699, &r, &err), TS_OK);
    uint8_t c[3];
    center_color(r, 0, c);
    assert_int_equal(c[0], 699 % 250);
    assert_int_equal(c[1], 699 / 250 * 50);
    ts_reader_close(r);
    assert_int_equal(ts_reader_open_page(path, 1000, &r, &err), TS_ENOTFOUND);
}

static void test_real_multipage_file_has_two_pages(void **state)
{
    (void)state;
    const char *path = TESSERA_TEST_DATA "/multipage-2p-gray.tif";
    struct ts_reader *a, *b, *none;
    struct ts_err err;
    assert_int_equal(ts_reader_open_page(path, 0, &a, &err), TS_OK);
    assert_int_equal(ts_reader_open_page(path, 1, &b, &err), TS_OK);
    assert_int_equal(a->info.width, 10);
    assert_int_equal(b->info.height, 15);
    assert_int_equal(a->info.nlevels, 1);
    assert_int_equal(ts_reader_open_page(path, 2, &none, &err), TS_ENOTFOUND);
    ts_reader_close(a);
    ts_reader_close(b);
}

static void test_pages_of_formats_without_pages_are_not_found(void **state)
{
    (void)state;
    struct ts_reader *r;
    struct ts_err err;
    assert_int_equal(ts_reader_open_page(TESSERA_TEST_DATA "/camera-512-gray.png", 1, &r, &err),
                     TS_ENOTFOUND);
    assert_int_equal(ts_reader_open_page(TESSERA_TEST_DATA "/camera-512-gray.png", 0, &r, &err),
                     TS_OK);
    ts_reader_close(r);
}

static void test_identifier_suffix_names_the_page(void **state)
{
    (void)state;
    make_two_page_pyramid();
    struct source_file f;
    struct ts_err err;
    struct source_root root;
    assert_int_equal(source_root_open(WORK, "", &root, &err), TS_OK);
    assert_int_equal(source_resolve(&root, "two-pages.tif;2", &f, &err), TS_OK);
    source_close(&f);
    assert_int_equal(f.page, 1);
    assert_non_null(strstr(f.path, "two-pages.tif"));
    assert_int_equal(source_resolve(&root, "two-pages;1", &f, &err), TS_OK);
    source_close(&f); /* no extension */
    assert_int_equal(f.page, 0);
    assert_int_equal(source_resolve(&root, "two-pages.tif", &f, &err), TS_OK);
    source_close(&f);
    assert_int_equal(f.page, 0);
    assert_int_equal(source_resolve(&root, "two-pages.tif;0", &f, &err), TS_ENOTFOUND);
    assert_int_equal(source_resolve(&root, "two-pages.tif;x", &f, &err), TS_ENOTFOUND);
    assert_int_equal(source_resolve(&root, "two-pages.tif;", &f, &err), TS_ENOTFOUND);
    assert_int_equal(source_resolve(&root, "missing.tif;2", &f, &err), TS_ENOTFOUND);
    /* A file whose own name has the suffix is that file, page 1. */
    char odd[512];
    snprintf(odd, sizeof odd, "%s/odd;2.png", WORK);
    FILE *o = fopen(odd, "w");
    assert_non_null(o);
    fclose(o);
    assert_int_equal(source_resolve(&root, "odd;2.png", &f, &err), TS_OK);
    source_close(&f);
    assert_int_equal(f.page, 0);
    /* The suffix never opens a way out of the root. */
    assert_int_equal(source_resolve(&root, "../two-pages.tif;2", &f, &err), TS_EFORBIDDEN);
    source_root_close(&root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_page_has_its_own_size_levels_and_pixels),
        cmocka_unit_test(test_real_multipage_file_has_two_pages),
        cmocka_unit_test(test_page_700_of_a_thousand_page_book),
        cmocka_unit_test(test_pages_of_formats_without_pages_are_not_found),
        cmocka_unit_test(test_identifier_suffix_names_the_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
