/* GIF, TIFF and JP2 output, each decoded back by the format's own library and compared. */
#include "encode/encode.h"

#include <errno.h>
#include <gif_lib.h>
#include <math.h>
#include <openjpeg.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tiffio.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

/* ---- test pictures ---- */

/* 300x200 in 10x10 cells of 30x20: 100 colours. Alpha: cell (0,0) 0, cell (1,0) 200, else 255. */
#define PW 300
#define PH 200

static void cell_rgb(uint32_t col, uint32_t row, uint8_t rgb[3])
{
    rgb[0] = (uint8_t)(10 + 25 * col);
    rgb[1] = (uint8_t)(245 - 23 * row);
    rgb[2] = (uint8_t)((37 * col + 61 * row) % 256);
}

static uint8_t luma(const uint8_t rgb[3])
{
    return (uint8_t)((299 * rgb[0] + 587 * rgb[1] + 114 * rgb[2] + 500) / 1000);
}

static uint8_t cell_alpha(uint32_t col, uint32_t row)
{
    if (row == 0 && col == 0)
        return 0;
    if (row == 0 && col == 1)
        return 200;
    return 255;
}

/* The expected sample k of pixel (x, y) of make_cells(channels). */
static uint8_t cell_sample(uint32_t channels, uint32_t x, uint32_t y, uint32_t k)
{
    uint8_t rgb[3];
    uint32_t col = x / 30, row = y / 20;
    cell_rgb(col, row, rgb);
    bool alpha = channels == 2 || channels == 4;
    if (alpha && k == channels - 1)
        return cell_alpha(col, row);
    return channels <= 2 ? luma(rgb) : rgb[k];
}

static void make_cells(uint32_t channels, struct ts_image *img)
{
    assert_int_equal(ts_image_alloc(img, PW, PH, channels), 0);
    for (uint32_t y = 0; y < PH; y++)
        for (uint32_t x = 0; x < PW; x++)
            for (uint32_t k = 0; k < channels; k++)
                ts_image_row(img, y)[(size_t)x * channels + k] = cell_sample(channels, x, y, k);
}

/* 128x128 smooth colour field: 16384 distinct colours. */
static void make_gradient(struct ts_image *img)
{
    assert_int_equal(ts_image_alloc(img, 128, 128, 3), 0);
    for (uint32_t y = 0; y < 128; y++) {
        for (uint32_t x = 0; x < 128; x++) {
            uint8_t *p = ts_image_row(img, y) + (size_t)x * 3;
            p[0] = (uint8_t)(2 * x);
            p[1] = (uint8_t)(2 * y);
            p[2] = (uint8_t)(x + y);
        }
    }
}

/* ---- GIF: giflib's DGifSlurp from memory ---- */

struct mem_reader {
    const uint8_t *data;
    size_t len, pos;
};

static int gif_read_mem(GifFileType *gif, GifByteType *buf, int n)
{
    struct mem_reader *r = gif->UserData;
    size_t k = r->len - r->pos < (size_t)n ? r->len - r->pos : (size_t)n;
    memcpy(buf, r->data + r->pos, k);
    r->pos += k;
    return (int)k;
}

struct gif_decoded {
    struct ts_image rgba; /* alpha 0 where the transparent index is, else 255 */
    int colors;           /* colour table size */
};

static void gif_decode(const struct ts_buf *b, struct gif_decoded *d)
{
    struct mem_reader r = {b->data, b->len, 0};
    int e = 0;
    GifFileType *gif = DGifOpen(&r, gif_read_mem, &e);
    assert_non_null(gif);
    assert_int_equal(DGifSlurp(gif), GIF_OK);
    assert_int_equal(gif->ImageCount, 1);
    SavedImage *si = &gif->SavedImages[0];
    ColorMapObject *map = si->ImageDesc.ColorMap ? si->ImageDesc.ColorMap : gif->SColorMap;
    assert_non_null(map);
    GraphicsControlBlock gcb = {.TransparentColor = NO_TRANSPARENT_COLOR};
    if (DGifSavedExtensionToGCB(gif, 0, &gcb) != GIF_OK)
        gcb.TransparentColor = NO_TRANSPARENT_COLOR;
    uint32_t w = (uint32_t)si->ImageDesc.Width, h = (uint32_t)si->ImageDesc.Height;
    assert_int_equal(ts_image_alloc(&d->rgba, w, h, 4), 0);
    for (uint32_t y = 0; y < h; y++) {
        for (uint32_t x = 0; x < w; x++) {
            int i = si->RasterBits[(size_t)y * w + x];
            assert_true(i < map->ColorCount);
            uint8_t *p = ts_image_row(&d->rgba, y) + (size_t)x * 4;
            p[0] = map->Colors[i].Red;
            p[1] = map->Colors[i].Green;
            p[2] = map->Colors[i].Blue;
            p[3] = i == gcb.TransparentColor ? 0 : 255;
        }
    }
    d->colors = map->ColorCount;
    int ce = 0;
    DGifCloseFile(gif, &ce);
}

static void gif_roundtrip(const struct ts_image *img, struct gif_decoded *d)
{
    struct ts_buf out = {0};
    struct ts_err err = {0};
    assert_int_equal(encode_gif(img, &out, &err), 0);
    assert_memory_equal(out.data, "GIF8", 4);
    gif_decode(&out, d);
    ts_buf_free(&out);
    assert_int_equal(d->rgba.width, img->width);
    assert_int_equal(d->rgba.height, img->height);
}

static void test_gif_few_colours_are_exact_in_every_channel_count(void **state)
{
    (void)state;
    for (uint32_t ch = 1; ch <= 4; ch++) {
        struct ts_image img;
        struct gif_decoded d;
        make_cells(ch, &img);
        gif_roundtrip(&img, &d);
        for (uint32_t y = 0; y < PH; y++) {
            for (uint32_t x = 0; x < PW; x++) {
                const uint8_t *p = ts_image_row(&d.rgba, y) + (size_t)x * 4;
                bool alpha = ch == 2 || ch == 4;
                uint8_t a = alpha ? cell_sample(ch, x, y, ch - 1) : 255;
                /* alpha < 128 becomes transparent; anything else is opaque. */
                assert_int_equal(p[3], a < 128 ? 0 : 255);
                if (a < 128)
                    continue;
                for (uint32_t k = 0; k < 3; k++)
                    assert_int_equal(p[k], cell_sample(ch, x, y, ch <= 2 ? 0 : k));
            }
        }
        ts_image_free(&d.rgba);
        ts_image_free(&img);
    }
}

static void test_gif_gray_keeps_all_256_levels(void **state)
{
    (void)state;
    struct ts_image img;
    struct gif_decoded d;
    assert_int_equal(ts_image_alloc(&img, 256, 3, 1), 0);
    for (uint32_t y = 0; y < 3; y++)
        for (uint32_t x = 0; x < 256; x++)
            ts_image_row(&img, y)[x] = (uint8_t)(y == 1 ? 255 - x : x);
    gif_roundtrip(&img, &d);
    assert_int_equal(d.colors, 256);
    for (uint32_t y = 0; y < 3; y++) {
        for (uint32_t x = 0; x < 256; x++) {
            const uint8_t *p = ts_image_row(&d.rgba, y) + (size_t)x * 4;
            uint8_t v = ts_image_row(&img, y)[x];
            assert_int_equal(p[0], v);
            assert_int_equal(p[1], v);
            assert_int_equal(p[2], v);
            assert_int_equal(p[3], 255);
        }
    }
    ts_image_free(&d.rgba);
    ts_image_free(&img);
}

static void test_gif_full_gray_with_transparency_is_within_one_level(void **state)
{
    (void)state;
    struct ts_image img;
    struct gif_decoded d;
    assert_int_equal(ts_image_alloc(&img, 256, 4, 2), 0);
    for (uint32_t y = 0; y < 4; y++) {
        for (uint32_t x = 0; x < 256; x++) {
            uint8_t *p = ts_image_row(&img, y) + (size_t)x * 2;
            p[0] = (uint8_t)x;
            p[1] = (y == 3 && x % 2) ? 10 : 255;
        }
    }
    gif_roundtrip(&img, &d);
    for (uint32_t y = 0; y < 4; y++) {
        for (uint32_t x = 0; x < 256; x++) {
            const uint8_t *p = ts_image_row(&d.rgba, y) + (size_t)x * 4;
            bool clear = y == 3 && x % 2;
            assert_int_equal(p[3], clear ? 0 : 255);
            if (!clear)
                assert_true(abs((int)p[0] - (int)x) <= 1);
        }
    }
    ts_image_free(&d.rgba);
    ts_image_free(&img);
}

static void test_gif_bitonal_uses_a_two_colour_table(void **state)
{
    (void)state;
    struct ts_image img;
    struct gif_decoded d;
    assert_int_equal(ts_image_alloc(&img, 40, 30, 1), 0);
    for (uint32_t y = 0; y < 30; y++)
        for (uint32_t x = 0; x < 40; x++)
            ts_image_row(&img, y)[x] = ((x / 5 + y / 5) % 2) ? 255 : 0;
    gif_roundtrip(&img, &d);
    assert_int_equal(d.colors, 2);
    for (uint32_t y = 0; y < 30; y++)
        for (uint32_t x = 0; x < 40; x++)
            assert_int_equal(ts_image_row(&d.rgba, y)[(size_t)x * 4], ts_image_row(&img, y)[x]);
    ts_image_free(&d.rgba);
    ts_image_free(&img);
}

static void test_gif_many_colours_are_quantised_closely(void **state)
{
    (void)state;
    struct ts_image img;
    struct gif_decoded d;
    make_gradient(&img);
    gif_roundtrip(&img, &d);
    assert_true(d.colors <= 256);
    int worst = 0;
    double total = 0;
    for (uint32_t y = 0; y < 128; y++) {
        for (uint32_t x = 0; x < 128; x++) {
            const uint8_t *a = ts_image_row(&img, y) + (size_t)x * 3;
            const uint8_t *b = ts_image_row(&d.rgba, y) + (size_t)x * 4;
            for (int k = 0; k < 3; k++) {
                int diff = abs((int)a[k] - (int)b[k]);
                worst = diff > worst ? diff : worst;
                total += diff;
            }
        }
    }
    /* 16384 colours in 256 entries: boxes of about 8x8 levels in r and g. */
    assert_true(worst <= 16);
    assert_true(total / (128.0 * 128.0 * 3.0) <= 4.0);
    ts_image_free(&d.rgba);
    ts_image_free(&img);
}

static void test_gif_rejects_width_over_65535(void **state)
{
    (void)state;
    struct ts_image img;
    struct ts_buf out = {0};
    struct ts_err err = {0};
    assert_int_equal(ts_image_alloc(&img, 70000, 1, 1), 0);
    memset(img.data, 7, img.stride);
    assert_int_equal(encode_gif(&img, &out, &err), TS_ETOOLARGE);
    assert_true(strstr(err.msg, "70000") != NULL);
    assert_int_equal(out.len, 0);
    ts_image_free(&img);
}

/* ---- TIFF: libtiff reading a file ---- */

static void mkdirs(const char *path)
{
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0755);
            *p = '/';
        }
    }
    assert_true(mkdir(tmp, 0755) == 0 || errno == EEXIST);
}

static void write_file(const char *path, const struct ts_buf *b, size_t skip)
{
    mkdirs(TESSERA_TEST_WORK);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b->data + skip, 1, b->len - skip, f), b->len - skip);
    assert_int_equal(fclose(f), 0);
}

static void test_tiff_round_trips_every_channel_count(void **state)
{
    (void)state;
    for (uint32_t ch = 1; ch <= 4; ch++) {
        struct ts_image img;
        make_cells(ch, &img);
        /* Something already in the buffer must be kept: encoders append. */
        struct ts_buf out = {0};
        struct ts_err err = {0};
        assert_int_equal(ts_buf_append(&out, "abc", 3), 0);
        assert_int_equal(encode_tiff(&img, &out, &err), 0);
        assert_memory_equal(out.data, "abc", 3);
        char path[512];
        snprintf(path, sizeof path, "%s/out-%u.tif", TESSERA_TEST_WORK, ch);
        write_file(path, &out, 3);
        ts_buf_free(&out);

        TIFF *tif = TIFFOpen(path, "r");
        assert_non_null(tif);
        uint32_t w = 0, h = 0;
        uint16_t spp = 0, bps = 0, comp = 0, photo = 0, nextra = 0, *extra = NULL;
        TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
        TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
        TIFFGetField(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
        TIFFGetField(tif, TIFFTAG_BITSPERSAMPLE, &bps);
        TIFFGetField(tif, TIFFTAG_COMPRESSION, &comp);
        TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photo);
        TIFFGetFieldDefaulted(tif, TIFFTAG_EXTRASAMPLES, &nextra, &extra);
        assert_int_equal(w, PW);
        assert_int_equal(h, PH);
        assert_int_equal(spp, ch);
        assert_int_equal(bps, 8);
        assert_int_equal(comp, COMPRESSION_ADOBE_DEFLATE);
        assert_int_equal(photo, ch >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
        assert_false(TIFFIsTiled(tif));
        uint32_t rps = 0;
        TIFFGetField(tif, TIFFTAG_ROWSPERSTRIP, &rps);
        assert_true(rps >= 1 && rps <= PH);
        assert_int_equal(TIFFNumberOfStrips(tif), (PH + rps - 1) / rps);
        if (ch >= 3)
            assert_true(TIFFNumberOfStrips(tif) > 1);
        if (ch == 2 || ch == 4) {
            assert_int_equal(nextra, 1);
            assert_int_equal(extra[0], EXTRASAMPLE_UNASSALPHA);
        } else {
            assert_int_equal(nextra, 0);
        }

        /* Raw samples are exact. */
        uint8_t *line = malloc((size_t)TIFFScanlineSize(tif));
        assert_non_null(line);
        for (uint32_t y = 0; y < PH; y++) {
            assert_int_equal(TIFFReadScanline(tif, line, y, 0), 1);
            for (uint32_t x = 0; x < PW; x++)
                for (uint32_t k = 0; k < ch; k++)
                    assert_int_equal(line[(size_t)x * ch + k], cell_sample(ch, x, y, k));
        }
        free(line);

        /* libtiff's RGBA interface agrees. */
        uint32_t *rgba = malloc((size_t)PW * PH * sizeof *rgba);
        assert_non_null(rgba);
        assert_int_equal(TIFFReadRGBAImageOriented(tif, PW, PH, rgba, ORIENTATION_TOPLEFT, 0), 1);
        for (uint32_t y = 0; y < PH; y += 7) {
            for (uint32_t x = 0; x < PW; x += 3) {
                uint32_t v = rgba[(size_t)y * PW + x];
                bool alpha = ch == 2 || ch == 4;
                int a = alpha ? cell_sample(ch, x, y, ch - 1) : 255;
                int r = cell_sample(ch, x, y, 0);
                int g = ch >= 3 ? cell_sample(ch, x, y, 1) : r;
                int b = ch >= 3 ? cell_sample(ch, x, y, 2) : r;
                /* libtiff premultiplies unassociated alpha for RGBA but not for gray+alpha. */
                int m = ch == 4 ? a : 255;
                assert_int_equal((int)TIFFGetA(v), a);
                assert_true(abs((int)TIFFGetR(v) - (r * m + 127) / 255) <= 1);
                assert_true(abs((int)TIFFGetG(v) - (g * m + 127) / 255) <= 1);
                assert_true(abs((int)TIFFGetB(v) - (b * m + 127) / 255) <= 1);
            }
        }
        free(rgba);
        TIFFClose(tif);
        ts_image_free(&img);
    }
}

static void test_tiff_deflate_shrinks_flat_cells(void **state)
{
    (void)state;
    struct ts_image img;
    make_cells(3, &img);
    struct ts_buf out = {0};
    struct ts_err err = {0};
    assert_int_equal(encode_tiff(&img, &out, &err), 0);
    assert_true(out.len < (size_t)PW * PH * 3 / 10);
    ts_buf_free(&out);
    ts_image_free(&img);
}

/* ---- JP2: OpenJPEG decompressing from memory ---- */

static OPJ_SIZE_T jp2_read_mem(void *buf, OPJ_SIZE_T n, void *user)
{
    struct mem_reader *r = user;
    if (r->pos >= r->len)
        return (OPJ_SIZE_T)-1;
    size_t k = r->len - r->pos < n ? r->len - r->pos : n;
    memcpy(buf, r->data + r->pos, k);
    r->pos += k;
    return k;
}

static OPJ_OFF_T jp2_skip_mem(OPJ_OFF_T n, void *user)
{
    struct mem_reader *r = user;
    r->pos += (size_t)n;
    return n;
}

static OPJ_BOOL jp2_seek_mem(OPJ_OFF_T n, void *user)
{
    struct mem_reader *r = user;
    r->pos = (size_t)n;
    return r->pos <= r->len;
}

static opj_image_t *jp2_decode(const struct ts_buf *b)
{
    /* JP2 signature box, then the file-type box. */
    assert_memory_equal(b->data + 4, "jP  ", 4);
    struct mem_reader r = {b->data, b->len, 0};
    opj_stream_t *s = opj_stream_create(OPJ_J2K_STREAM_CHUNK_SIZE, OPJ_TRUE);
    opj_stream_set_user_data(s, &r, NULL);
    opj_stream_set_user_data_length(s, b->len);
    opj_stream_set_read_function(s, jp2_read_mem);
    opj_stream_set_skip_function(s, jp2_skip_mem);
    opj_stream_set_seek_function(s, jp2_seek_mem);
    opj_codec_t *c = opj_create_decompress(OPJ_CODEC_JP2);
    opj_dparameters_t p;
    opj_set_default_decoder_parameters(&p);
    assert_true(opj_setup_decoder(c, &p));
    opj_image_t *im = NULL;
    assert_true(opj_read_header(s, c, &im));
    assert_true(opj_decode(c, s, im));
    assert_true(opj_end_decompress(c, s));
    opj_destroy_codec(c);
    opj_stream_destroy(s);
    return im;
}

static void jp2_check_lossless(const struct ts_image *img)
{
    struct ts_buf out = {0};
    struct ts_err err = {0};
    assert_int_equal(encode_jp2(img, 100, &out, &err), 0);
    opj_image_t *im = jp2_decode(&out);
    uint32_t ch = img->channels;
    assert_int_equal(im->numcomps, ch);
    assert_int_equal(im->x1 - im->x0, img->width);
    assert_int_equal(im->y1 - im->y0, img->height);
    assert_int_equal(im->color_space, ch >= 3 ? OPJ_CLRSPC_SRGB : OPJ_CLRSPC_GRAY);
    for (uint32_t k = 0; k < ch; k++) {
        assert_int_equal(im->comps[k].w, img->width);
        assert_int_equal(im->comps[k].prec, 8);
        assert_int_equal(im->comps[k].alpha, (k == ch - 1 && (ch == 2 || ch == 4)) ? 1 : 0);
    }
    for (uint32_t y = 0; y < img->height; y++) {
        const uint8_t *row = ts_image_row(img, y);
        for (uint32_t x = 0; x < img->width; x++)
            for (uint32_t k = 0; k < ch; k++)
                assert_int_equal(im->comps[k].data[(size_t)y * img->width + x],
                                 row[(size_t)x * ch + k]);
    }
    opj_image_destroy(im);
    ts_buf_free(&out);
}

static void test_jp2_lossless_round_trips_every_channel_count(void **state)
{
    (void)state;
    for (uint32_t ch = 1; ch <= 4; ch++) {
        struct ts_image img;
        make_cells(ch, &img);
        jp2_check_lossless(&img);
        ts_image_free(&img);
    }
}

static void test_jp2_lossless_handles_tiny_and_tiled_images(void **state)
{
    (void)state;
    struct ts_image img;
    /* 3x2: fewer pixels than the default resolution levels allow. */
    assert_int_equal(ts_image_alloc(&img, 3, 2, 3), 0);
    for (size_t i = 0; i < 18; i++)
        img.data[i] = (uint8_t)(i * 14);
    jp2_check_lossless(&img);
    ts_image_free(&img);
    /* Wider than 4096: written in 1024-pixel tiles. */
    assert_int_equal(ts_image_alloc(&img, 5000, 24, 1), 0);
    for (uint32_t y = 0; y < 24; y++)
        for (uint32_t x = 0; x < 5000; x++)
            ts_image_row(&img, y)[x] = (uint8_t)((x / 100) * 5 + y);
    jp2_check_lossless(&img);
    ts_image_free(&img);
}

static double jp2_psnr(const struct ts_image *img, const opj_image_t *im)
{
    double se = 0;
    size_t n = 0;
    for (uint32_t y = 0; y < img->height; y++) {
        for (uint32_t x = 0; x < img->width; x++) {
            for (uint32_t k = 0; k < img->channels; k++) {
                double d = (double)im->comps[k].data[(size_t)y * img->width + x] -
                           ts_image_row(img, y)[(size_t)x * img->channels + k];
                se += d * d;
                n++;
            }
        }
    }
    return se == 0 ? 99.0 : 10.0 * log10(255.0 * 255.0 / (se / (double)n));
}

static void test_jp2_lossy_quality_trades_size_for_fidelity(void **state)
{
    (void)state;
    struct ts_image img;
    make_gradient(&img);
    struct ts_buf lo = {0}, hi = {0}, lossless = {0};
    struct ts_err err = {0};
    assert_int_equal(encode_jp2(&img, 30, &lo, &err), 0);
    assert_int_equal(encode_jp2(&img, 90, &hi, &err), 0);
    assert_int_equal(encode_jp2(&img, 100, &lossless, &err), 0);
    assert_true(lo.len < hi.len);
    assert_true(hi.len < lossless.len);
    opj_image_t *a = jp2_decode(&lo);
    opj_image_t *b = jp2_decode(&hi);
    assert_int_equal(a->numcomps, 3);
    double pa = jp2_psnr(&img, a), pb = jp2_psnr(&img, b);
    /* OpenJPEG meets its PSNR target in the decorrelated (MCT) space: RGB lands ~3 dB under. */
    assert_true(pa >= 27.0);
    assert_true(pb >= 40.0);
    assert_true(pb > pa + 5.0);
    opj_image_destroy(a);
    opj_image_destroy(b);
    ts_buf_free(&lo);
    ts_buf_free(&hi);
    ts_buf_free(&lossless);
    ts_image_free(&img);
}

/* An independent reader of a different lineage: the vips CLI, when installed. */
static void test_jp2_and_tiff_open_in_vips(void **state)
{
    (void)state;
    if (system("vips --version >/dev/null 2>&1") != 0)
        skip();
    struct ts_image img;
    make_cells(4, &img);
    struct ts_buf out = {0};
    struct ts_err err = {0};
    char path[512], cmd[2048];
    assert_int_equal(encode_jp2(&img, 100, &out, &err), 0);
    snprintf(path, sizeof path, "%s/vips.jp2", TESSERA_TEST_WORK);
    write_file(path, &out, 0);
    snprintf(cmd, sizeof cmd,
             "test \"$(vipsheader -f width %s)x$(vipsheader -f height %s)x$(vipsheader -f bands "
             "%s)\" = 300x200x4",
             path, path, path);
    assert_int_equal(system(cmd), 0);
    out.len = 0;
    assert_int_equal(encode_tiff(&img, &out, &err), 0);
    snprintf(path, sizeof path, "%s/vips.tif", TESSERA_TEST_WORK);
    write_file(path, &out, 0);
    /* Cell (3,4) is opaque (85, 153, 99): vips getpoint must read it back. */
    snprintf(cmd, sizeof cmd, "test \"$(vips getpoint %s 100 90)\" = \"85 153 99 255 \"", path);
    assert_int_equal(system(cmd), 0);
    ts_buf_free(&out);
    ts_image_free(&img);
}

static void test_encoders_reject_bad_channel_counts(void **state)
{
    (void)state;
    uint8_t px[5 * 2 * 5] = {0};
    struct ts_image img = {5, 2, 5, 25, px};
    struct ts_buf out = {0};
    struct ts_err err = {0};
    assert_int_equal(encode_gif(&img, &out, &err), TS_EINVAL);
    assert_int_equal(encode_tiff(&img, &out, &err), TS_EINVAL);
    assert_int_equal(encode_jp2(&img, 100, &out, &err), TS_EINVAL);
    assert_int_equal(out.len, 0);
}

/* TIFF_COMPRESSION 0, 1 and 2 (iipsrv's none, LZW, deflate) come out as asked, pixels intact,
 * and the deflate level changes the bytes (level 1 is iipsrv's default TIFF_QUALITY). */
static void test_tiff_compressions_and_levels(void **state)
{
    (void)state;
    struct ts_image img;
    make_cells(3, &img);
    static const struct {
        enum encode_tiff_compression c;
        int level;
        uint16_t tag;
    } cases[] = {{ENCODE_TIFF_NONE, 0, COMPRESSION_NONE},
                 {ENCODE_TIFF_LZW, 0, COMPRESSION_LZW},
                 {ENCODE_TIFF_DEFLATE, 1, COMPRESSION_ADOBE_DEFLATE},
                 {ENCODE_TIFF_DEFLATE, 9, COMPRESSION_ADOBE_DEFLATE}};
    size_t sizes[4];
    for (size_t i = 0; i < 4; i++) {
        struct ts_buf out = {0};
        struct ts_err err = {0};
        struct encode_options opt = encode_options_default();
        opt.tiff_compression = cases[i].c;
        opt.tiff_level = cases[i].level;
        assert_int_equal(encode_image(&img, TS_FORMAT_TIF, &opt, &out, &err), 0);
        sizes[i] = out.len;
        char path[512];
        snprintf(path, sizeof path, "%s/comp-%zu.tif", TESSERA_TEST_WORK, i);
        write_file(path, &out, 0);
        ts_buf_free(&out);
        TIFF *tif = TIFFOpen(path, "r");
        assert_non_null(tif);
        uint16_t comp = 0;
        TIFFGetField(tif, TIFFTAG_COMPRESSION, &comp);
        assert_int_equal(comp, cases[i].tag);
        uint8_t *line = malloc((size_t)TIFFScanlineSize(tif));
        assert_non_null(line);
        for (uint32_t y = 0; y < img.height; y++) {
            assert_int_equal(TIFFReadScanline(tif, line, y, 0), 1);
            assert_memory_equal(line, ts_image_row(&img, y), (size_t)img.width * 3);
        }
        free(line);
        TIFFClose(tif);
    }
    assert_true(sizes[0] > sizes[1] && sizes[0] > sizes[2]); /* compression compresses */
    ts_image_free(&img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gif_few_colours_are_exact_in_every_channel_count),
        cmocka_unit_test(test_tiff_compressions_and_levels),
        cmocka_unit_test(test_gif_gray_keeps_all_256_levels),
        cmocka_unit_test(test_gif_full_gray_with_transparency_is_within_one_level),
        cmocka_unit_test(test_gif_bitonal_uses_a_two_colour_table),
        cmocka_unit_test(test_gif_many_colours_are_quantised_closely),
        cmocka_unit_test(test_gif_rejects_width_over_65535),
        cmocka_unit_test(test_tiff_round_trips_every_channel_count),
        cmocka_unit_test(test_tiff_deflate_shrinks_flat_cells),
        cmocka_unit_test(test_jp2_lossless_round_trips_every_channel_count),
        cmocka_unit_test(test_jp2_lossless_handles_tiny_and_tiled_images),
        cmocka_unit_test(test_jp2_lossy_quality_trades_size_for_fidelity),
        cmocka_unit_test(test_jp2_and_tiff_open_in_vips),
        cmocka_unit_test(test_encoders_reject_bad_channel_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
