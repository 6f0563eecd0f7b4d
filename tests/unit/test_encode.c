/* Encoders checked by decoding their output with libjpeg, libpng and libwebp directly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

/* jpeglib.h uses FILE without including stdio.h. */
#include <stdio.h>

#include <jpeglib.h>
#include <png.h>
#include <webp/decode.h>

#include "encode/encode.h"

#define CELL 16

static void cell_rgb(uint32_t x, uint32_t y, uint8_t rgb[3])
{
    uint32_t col = x / CELL, row = y / CELL;
    rgb[0] = (uint8_t)(20 + 40 * col);
    rgb[1] = (uint8_t)(30 + 50 * row);
    rgb[2] = (uint8_t)(240 - 30 * (col + row));
}

static uint8_t luma601(const uint8_t rgb[3])
{
    return (uint8_t)(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] + 0.5);
}

static uint8_t cell_alpha(uint32_t x, uint32_t y)
{
    return (uint8_t)(255 - 60 * ((x / CELL + y / CELL) % 4));
}

/* 80 x 48 of flat 16 px cells; gray is the cells' luma, alpha varies by cell. A padded stride
 * checks that encoders honour it. */
static void make_cells(struct ts_image *img, uint32_t ch, size_t pad)
{
    const uint32_t w = 80, h = 48;
    img->width = w;
    img->height = h;
    img->channels = ch;
    img->stride = (size_t)w * ch + pad;
    img->data = calloc(img->stride, h);
    assert_non_null(img->data);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            uint8_t rgb[3], *p = ts_image_row(img, y) + (size_t)x * ch;
            cell_rgb(x, y, rgb);
            if (ch >= 3)
                memcpy(p, rgb, 3);
            else
                p[0] = luma601(rgb);
            if (ch == 2 || ch == 4)
                p[ch - 1] = cell_alpha(x, y);
        }
}

/* ---- independent decoders ---- */

struct jerr {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
};

static void jerr_exit(j_common_ptr cinfo)
{
    longjmp(((struct jerr *)cinfo->err)->jump, 1);
}

/* Decodes into its native component count (1 for grayscale JPEGs, 3 otherwise). */
static int decode_jpeg(const struct ts_buf *b, struct ts_image *out)
{
    struct jpeg_decompress_struct cinfo;
    struct jerr err;
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = jerr_exit;
    out->data = NULL;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        ts_image_free(out);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, b->data, (unsigned long)b->len);
    jpeg_read_header(&cinfo, TRUE);
    jpeg_start_decompress(&cinfo);
    if (ts_image_alloc(out, cinfo.output_width, cinfo.output_height,
                       (uint32_t)cinfo.output_components) != TS_OK)
        longjmp(err.jump, 1);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = ts_image_row(out, cinfo.output_scanline);
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

/* Decodes with libpng's simplified API into the file's own channel layout. */
static int decode_png(const struct ts_buf *b, struct ts_image *out)
{
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    out->data = NULL;
    if (!png_image_begin_read_from_memory(&pi, b->data, b->len))
        return -1;
    uint32_t ch = PNG_IMAGE_PIXEL_CHANNELS(pi.format);
    if ((pi.format & PNG_FORMAT_FLAG_LINEAR) || (pi.format & PNG_FORMAT_FLAG_COLORMAP) ||
        ts_image_alloc(out, pi.width, pi.height, ch) != TS_OK) {
        png_image_free(&pi);
        return -1;
    }
    if (!png_image_finish_read(&pi, NULL, out->data, (png_int_32)out->stride, NULL)) {
        ts_image_free(out);
        return -1;
    }
    return 0;
}

/* Always RGBA; *has_alpha says whether the file carries alpha. */
static int decode_webp(const struct ts_buf *b, struct ts_image *out, int *has_alpha)
{
    WebPBitstreamFeatures f;
    out->data = NULL;
    if (WebPGetFeatures(b->data, b->len, &f) != VP8_STATUS_OK)
        return -1;
    *has_alpha = f.has_alpha;
    if (ts_image_alloc(out, (uint32_t)f.width, (uint32_t)f.height, 4) != TS_OK)
        return -1;
    if (!WebPDecodeRGBAInto(b->data, b->len, out->data, out->stride * out->height,
                            (int)out->stride)) {
        ts_image_free(out);
        return -1;
    }
    return 0;
}

static const uint8_t *pixel(const struct ts_image *img, uint32_t x, uint32_t y)
{
    return ts_image_row(img, y) + (size_t)x * img->channels;
}

static void assert_near(int got, int want, int tol)
{
    if (abs(got - want) > tol)
        fail_msg("value %d, expected %d +/- %d", got, want, tol);
}

/* ---- PNG ---- */

static void test_png_round_trips_exactly_for_every_channel_count(void **state)
{
    (void)state;
    for (uint32_t ch = 1; ch <= 4; ch++) {
        struct ts_image src, got;
        struct ts_buf buf = {0};
        struct ts_err err = {0};
        make_cells(&src, ch, ch == 3 ? 5 : 0);
        assert_int_equal(encode_png(&src, 3, &buf, &err), TS_OK);
        assert_int_equal(decode_png(&buf, &got), 0);
        assert_int_equal(got.width, 80);
        assert_int_equal(got.height, 48);
        assert_int_equal(got.channels, ch);
        for (uint32_t y = 0; y < 48; y++)
            assert_memory_equal(ts_image_row(&got, y), ts_image_row(&src, y), 80 * ch);
        ts_image_free(&got);
        ts_image_free(&src);
        ts_buf_free(&buf);
    }
}

static void test_png_level_trades_size(void **state)
{
    (void)state;
    struct ts_image src;
    struct ts_buf fast = {0}, small = {0};
    make_cells(&src, 3, 0);
    assert_int_equal(encode_png(&src, 0, &fast, NULL), TS_OK);
    assert_int_equal(encode_png(&src, 9, &small, NULL), TS_OK);
    assert_true(small.len < fast.len);
    assert_true(fast.len > 80 * 48 * 3); /* level 0 stores the pixels uncompressed */
    ts_image_free(&src);
    ts_buf_free(&fast);
    ts_buf_free(&small);
}

/* ---- JPEG ---- */

static void test_jpeg_rgb_decodes_to_the_cell_colors(void **state)
{
    (void)state;
    struct ts_image src, got;
    struct ts_buf buf = {0};
    make_cells(&src, 3, 7);
    assert_int_equal(encode_jpeg(&src, 92, &buf, NULL), TS_OK);
    assert_true(buf.len > 2 && buf.data[0] == 0xFF && buf.data[1] == 0xD8);
    assert_int_equal(decode_jpeg(&buf, &got), 0);
    assert_int_equal(got.width, 80);
    assert_int_equal(got.height, 48);
    assert_int_equal(got.channels, 3);
    for (uint32_t y = CELL / 2; y < 48; y += CELL)
        for (uint32_t x = CELL / 2; x < 80; x += CELL) {
            uint8_t rgb[3];
            cell_rgb(x, y, rgb);
            for (int c = 0; c < 3; c++)
                assert_near(pixel(&got, x, y)[c], rgb[c], 6);
        }
    ts_image_free(&got);
    ts_image_free(&src);
    ts_buf_free(&buf);
}

/* JFIF's full-range YCbCr, as JPEG stores colour. */
static void ycc_of(const uint8_t rgb[3], uint8_t out[3])
{
    double r = rgb[0], g = rgb[1], b = rgb[2];
    double v[3] = {0.299 * r + 0.587 * g + 0.114 * b, 128 - 0.168736 * r - 0.331264 * g + 0.5 * b,
                   128 + 0.5 * r - 0.418688 * g - 0.081312 * b};
    for (int c = 0; c < 3; c++)
        out[c] = (uint8_t)(v[c] < 0 ? 0 : v[c] > 255 ? 255 : v[c] + 0.5);
}

/* Planes written as they are: an odd-sized picture of the cells decodes to the cells' colours
 * (each 2x2 chroma block lies inside one cell), at its own size. */
static void test_jpeg_from_planes_decodes_to_the_cell_colors(void **state)
{
    (void)state;
    const uint32_t w = 77, h = 45;
    struct ts_ycc p;
    struct ts_image got;
    struct ts_buf buf = {0};
    assert_int_equal(ts_ycc_alloc(&p, w, h), TS_OK);
    assert_int_equal(p.cb.width, 39);
    assert_int_equal(p.cr.height, 23);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            uint8_t rgb[3], ycc[3];
            cell_rgb(x, y, rgb);
            ycc_of(rgb, ycc);
            ts_image_row(&p.y, y)[x] = ycc[0];
            if (x % 2 == 0 && y % 2 == 0) {
                ts_image_row(&p.cb, y / 2)[x / 2] = ycc[1];
                ts_image_row(&p.cr, y / 2)[x / 2] = ycc[2];
            }
        }
    assert_int_equal(encode_jpeg_ycc(&p, 92, &buf, NULL), TS_OK);
    assert_true(buf.len > 2 && buf.data[0] == 0xFF && buf.data[1] == 0xD8);
    assert_int_equal(decode_jpeg(&buf, &got), 0);
    assert_int_equal(got.width, w);
    assert_int_equal(got.height, h);
    assert_int_equal(got.channels, 3);
    for (uint32_t y = CELL / 2; y < h; y += CELL)
        for (uint32_t x = CELL / 2; x < w; x += CELL) {
            uint8_t rgb[3];
            cell_rgb(x, y, rgb);
            for (int c = 0; c < 3; c++)
                assert_near(pixel(&got, x, y)[c], rgb[c], 6);
        }
    /* The last column and row, whose blocks the encoder pads. */
    uint8_t rgb[3];
    cell_rgb(w - 1, h - 1, rgb);
    for (int c = 0; c < 3; c++)
        assert_near(pixel(&got, w - 1, h - 1)[c], rgb[c], 8);
    ts_image_free(&got);
    ts_buf_free(&buf);
    /* Chroma planes of the wrong size are refused, and nothing is appended. */
    ts_image_free(&p.cr);
    assert_int_equal(ts_image_alloc(&p.cr, 38, 23, 1), TS_OK);
    struct ts_err err = {0};
    assert_int_equal(encode_jpeg_ycc(&p, 92, &buf, &err), TS_EINVAL);
    assert_int_equal(buf.len, 0);
    ts_ycc_free(&p);
    ts_buf_free(&buf);
}

static void test_jpeg_gray_stays_one_channel(void **state)
{
    (void)state;
    struct ts_image src, got;
    struct ts_buf buf = {0};
    make_cells(&src, 1, 0);
    assert_int_equal(encode_jpeg(&src, 90, &buf, NULL), TS_OK);
    assert_int_equal(decode_jpeg(&buf, &got), 0);
    assert_int_equal(got.channels, 1);
    for (uint32_t y = CELL / 2; y < 48; y += CELL)
        for (uint32_t x = CELL / 2; x < 80; x += CELL)
            assert_near(pixel(&got, x, y)[0], pixel(&src, x, y)[0], 4);
    ts_image_free(&got);
    ts_image_free(&src);
    ts_buf_free(&buf);
}

/* What a pixel of colour v with alpha a looks like over white. */
static int over_white(int v, int a)
{
    return (v * a + 255 * (255 - a) + 127) / 255;
}

static void test_jpeg_composites_alpha_over_white(void **state)
{
    (void)state;
    for (uint32_t ch = 2; ch <= 4; ch += 2) {
        struct ts_image src, got;
        struct ts_buf buf = {0};
        make_cells(&src, ch, 0);
        /* A fully transparent cell hides a saturated colour that must not show. */
        for (uint32_t y = 0; y < CELL; y++)
            for (uint32_t x = 0; x < CELL; x++) {
                uint8_t *p = ts_image_row(&src, y) + (size_t)x * ch;
                p[0] = 0;
                p[ch - 1] = 0;
            }
        assert_int_equal(encode_jpeg(&src, 92, &buf, NULL), TS_OK);
        assert_int_equal(decode_jpeg(&buf, &got), 0);
        assert_int_equal(got.channels, ch - 1);
        for (int c = 0; c < (int)ch - 1; c++)
            assert_near(pixel(&got, CELL / 2, CELL / 2)[c], 255, 4);
        for (uint32_t y = CELL / 2; y < 48; y += CELL)
            for (uint32_t x = CELL + CELL / 2; x < 80; x += CELL) {
                const uint8_t *s = pixel(&src, x, y);
                for (uint32_t c = 0; c < ch - 1; c++)
                    assert_near(pixel(&got, x, y)[c], over_white(s[c], s[ch - 1]), 6);
            }
        ts_image_free(&got);
        ts_image_free(&src);
        ts_buf_free(&buf);
    }
}

static void test_jpeg_quality_changes_size(void **state)
{
    (void)state;
    struct ts_image src;
    struct ts_buf lo = {0}, hi = {0};
    make_cells(&src, 3, 0);
    /* Noise makes the quantisation visible in the size. */
    uint32_t s = 7;
    for (uint32_t y = 0; y < 48; y++)
        for (uint32_t i = 0; i < 240; i++) {
            s = s * 1103515245u + 12345u;
            ts_image_row(&src, y)[i] = (uint8_t)(s >> 24);
        }
    assert_int_equal(encode_jpeg(&src, 20, &lo, NULL), TS_OK);
    assert_int_equal(encode_jpeg(&src, 95, &hi, NULL), TS_OK);
    assert_true(lo.len * 2 < hi.len);
    ts_image_free(&src);
    ts_buf_free(&lo);
    ts_buf_free(&hi);
}

static void test_jpeg_large_output_grows_the_buffer(void **state)
{
    (void)state;
    struct ts_image src, got;
    struct ts_buf buf = {0};
    assert_int_equal(ts_image_alloc(&src, 700, 500, 3), TS_OK);
    uint32_t s = 99;
    for (uint32_t y = 0; y < 500; y++)
        for (uint32_t i = 0; i < 2100; i++) {
            s = s * 1103515245u + 12345u;
            ts_image_row(&src, y)[i] = (uint8_t)(s >> 24);
        }
    assert_int_equal(encode_jpeg(&src, 100, &buf, NULL), TS_OK);
    assert_true(buf.len > 16384 * 4); /* several destination windows */
    assert_int_equal(decode_jpeg(&buf, &got), 0);
    assert_int_equal(got.width, 700);
    assert_int_equal(got.height, 500);
    ts_image_free(&got);
    ts_image_free(&src);
    ts_buf_free(&buf);
}

/* ---- WebP ---- */

static void test_webp_round_trips_every_channel_count(void **state)
{
    (void)state;
    for (uint32_t ch = 1; ch <= 4; ch++) {
        struct ts_image src, got;
        struct ts_buf buf = {0};
        int has_alpha = -1;
        make_cells(&src, ch, ch == 4 ? 3 : 0);
        assert_int_equal(encode_webp(&src, 95, &buf, NULL), TS_OK);
        assert_true(buf.len > 12 && memcmp(buf.data + 8, "WEBP", 4) == 0);
        assert_int_equal(decode_webp(&buf, &got, &has_alpha), 0);
        assert_int_equal(got.width, 80);
        assert_int_equal(got.height, 48);
        assert_int_equal(has_alpha, ch == 2 || ch == 4);
        for (uint32_t y = CELL / 2; y < 48; y += CELL)
            for (uint32_t x = CELL / 2; x < 80; x += CELL) {
                const uint8_t *g = pixel(&got, x, y), *s = pixel(&src, x, y);
                if (ch >= 3) {
                    for (int c = 0; c < 3; c++)
                        assert_near(g[c], s[c], 8);
                } else {
                    for (int c = 0; c < 3; c++)
                        assert_near(g[c], s[0], 6);
                }
                assert_near(g[3], (ch == 2 || ch == 4) ? s[ch - 1] : 255, 2);
            }
        ts_image_free(&got);
        ts_image_free(&src);
        ts_buf_free(&buf);
    }
}

/* ---- dispatch ---- */

static void test_encode_image_dispatches_and_appends(void **state)
{
    (void)state;
    struct ts_image src, got;
    struct ts_buf buf = {0};
    struct ts_err err = {0};
    make_cells(&src, 3, 0);
    assert_int_equal(ts_buf_append(&buf, "HDR", 3), TS_OK);
    assert_int_equal(encode_image(&src, TS_FORMAT_PNG, NULL, &buf, &err), TS_OK);
    assert_memory_equal(buf.data, "HDR", 3);
    assert_memory_equal(buf.data + 3, "\x89PNG", 4);
    struct ts_buf png = {.data = buf.data + 3, .len = buf.len - 3, .cap = buf.cap - 3};
    assert_int_equal(decode_png(&png, &got), 0);
    assert_int_equal(got.width, 80);
    ts_image_free(&got);
    ts_buf_free(&buf);

    struct encode_options opt = encode_options_default();
    assert_int_equal(opt.jpeg_quality, 85);
    assert_int_equal(opt.webp_quality, 80);
    assert_int_equal(opt.png_level, 3);
    assert_int_equal(encode_image(&src, TS_FORMAT_JPG, &opt, &buf, &err), TS_OK);
    assert_memory_equal(buf.data, "\xFF\xD8\xFF", 3);
    ts_buf_free(&buf);
    assert_int_equal(encode_image(&src, TS_FORMAT_WEBP, &opt, &buf, &err), TS_OK);
    assert_memory_equal(buf.data, "RIFF", 4);
    ts_buf_free(&buf);
    ts_image_free(&src);
}

static void test_unwritable_formats_are_not_implemented(void **state)
{
    (void)state;
    static const enum ts_format later[] = {TS_FORMAT_PDF};
    struct ts_image src;
    struct ts_buf buf = {0};
    make_cells(&src, 3, 0);
    for (size_t i = 0; i < sizeof later / sizeof later[0]; i++) {
        struct ts_err err = {0};
        int rc = encode_image(&src, later[i], NULL, &buf, &err);
        assert_int_equal(rc, TS_EUNSUPPORTED);
        assert_int_equal(ts_status_http(rc), 501);
        assert_non_null(strstr(err.msg, "not yet supported"));
        assert_int_equal(buf.len, 0);
    }
    ts_image_free(&src);
}

/* The dispatcher reaches every encoder this build has, each writing its own signature. */
static void test_dispatch_reaches_every_encoder(void **state)
{
    (void)state;
    static const struct {
        enum ts_format f;
        const char *magic;
        size_t off, len;
    } cases[] = {{TS_FORMAT_GIF, "GIF8", 0, 4},
                 {TS_FORMAT_TIF, "II*", 0, 3},
                 {TS_FORMAT_JP2, "jP  ", 4, 4},
                 {TS_FORMAT_JPG, "\xff\xd8\xff", 0, 3},
                 {TS_FORMAT_PNG, "\x89PNG", 0, 4}};
    struct ts_image src;
    make_cells(&src, 3, 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ts_buf buf = {0};
        struct ts_err err = {0};
        assert_int_equal(encode_image(&src, cases[i].f, NULL, &buf, &err), TS_OK);
        assert_true(buf.len > cases[i].off + cases[i].len);
        assert_memory_equal(buf.data + cases[i].off, cases[i].magic, cases[i].len);
        ts_buf_free(&buf);
    }
    ts_image_free(&src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_round_trips_exactly_for_every_channel_count),
        cmocka_unit_test(test_png_level_trades_size),
        cmocka_unit_test(test_jpeg_rgb_decodes_to_the_cell_colors),
        cmocka_unit_test(test_jpeg_from_planes_decodes_to_the_cell_colors),
        cmocka_unit_test(test_jpeg_gray_stays_one_channel),
        cmocka_unit_test(test_jpeg_composites_alpha_over_white),
        cmocka_unit_test(test_jpeg_quality_changes_size),
        cmocka_unit_test(test_jpeg_large_output_grows_the_buffer),
        cmocka_unit_test(test_webp_round_trips_every_channel_count),
        cmocka_unit_test(test_encode_image_dispatches_and_appends),
        cmocka_unit_test(test_unwritable_formats_are_not_implemented),
        cmocka_unit_test(test_dispatch_reaches_every_encoder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
