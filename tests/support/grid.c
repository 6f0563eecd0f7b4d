/* The grid test image: every pixel known, written as TIFF (many layouts), PNG and JPEG for the
 * tests. */
#include "grid.h"

#include "util/status.h"

/* jpeglib.h uses FILE without including stdio.h. */
#include <stdio.h>

#include <jpeglib.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>

#define GRID_MAX_LEVELS 32

void grid_cell_color(uint32_t col, uint32_t row, uint8_t rgb[3])
{
    rgb[0] = (uint8_t)(13 + 24 * col);
    rgb[1] = (uint8_t)(13 + 24 * row);
    rgb[2] = (uint8_t)(255 - 12 * (col + row));
}

void grid_pixel_color(uint32_t w, uint32_t h, uint32_t cells, uint32_t x, uint32_t y,
                      uint8_t rgb[3])
{
    uint32_t col = (uint32_t)((uint64_t)x * cells / w);
    uint32_t row = (uint32_t)((uint64_t)y * cells / h);
    grid_cell_color(col, row, rgb);
}

uint8_t grid_luma(const uint8_t rgb[3])
{
    return (uint8_t)((299u * rgb[0] + 587u * rgb[1] + 114u * rgb[2] + 500u) / 1000u);
}

int grid_make(uint32_t w, uint32_t h, uint32_t cells, uint32_t channels, struct ts_image *out)
{
    int rc;
    if (cells == 0 || channels < 1 || channels > 4)
        return TS_EINVAL;
    if ((rc = ts_image_alloc(out, w, h, channels)) != TS_OK)
        return rc;
    for (uint32_t y = 0; y < h; y++) {
        uint8_t *row = ts_image_row(out, y);
        for (uint32_t x = 0; x < w; x++) {
            uint8_t rgb[3], *d = row + (size_t)x * channels;
            bool first_cell = (uint64_t)x * cells / w == 0 && (uint64_t)y * cells / h == 0;
            uint8_t a = first_cell ? 128 : 255;
            grid_pixel_color(w, h, cells, x, y, rgb);
            switch (channels) {
            case 1: d[0] = grid_luma(rgb); break;
            case 2: d[0] = grid_luma(rgb), d[1] = a; break;
            case 3: memcpy(d, rgb, 3); break;
            default: memcpy(d, rgb, 3), d[3] = a; break;
            }
        }
    }
    return TS_OK;
}

/* A 2x2 box-filtered half of img (edges average what exists). */
static int grid_halve(const struct ts_image *in, struct ts_image *out)
{
    uint32_t w = (in->width + 1) / 2, h = (in->height + 1) / 2, c = in->channels;
    int rc = ts_image_alloc(out, w, h, c);
    if (rc)
        return rc;
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            for (uint32_t k = 0; k < c; k++) {
                uint32_t sum = 0, n = 0;
                for (uint32_t dy = 0; dy < 2; dy++)
                    for (uint32_t dx = 0; dx < 2; dx++) {
                        uint32_t sx = 2 * x + dx, sy = 2 * y + dy;
                        if (sx < in->width && sy < in->height) {
                            sum += ts_image_row(in, sy)[(size_t)sx * c + k];
                            n++;
                        }
                    }
                ts_image_row(out, y)[(size_t)x * c + k] = (uint8_t)((sum + n / 2) / n);
            }
    return TS_OK;
}

/* Fills a w x h block at (x0,y0) in the file's sample layout, repeating edge pixels as padding. */
static void grid_fill_block(const struct ts_image *img, uint32_t x0, uint32_t y0, uint32_t w,
                            uint32_t h, uint32_t bits, uint8_t *buf)
{
    uint32_t c = img->channels;
    for (uint32_t y = 0; y < h; y++) {
        uint32_t sy = y0 + y < img->height ? y0 + y : img->height - 1;
        const uint8_t *src = ts_image_row(img, sy);
        for (uint32_t x = 0; x < w; x++) {
            uint32_t sx = x0 + x < img->width ? x0 + x : img->width - 1;
            for (uint32_t k = 0; k < c; k++) {
                uint8_t v = src[(size_t)sx * c + k];
                size_t i = ((size_t)y * w + x) * c + k;
                if (bits == 16) {
                    uint16_t v16 = (uint16_t)(v * 257u);
                    memcpy(buf + i * 2, &v16, 2);
                } else {
                    buf[i] = v;
                }
            }
        }
    }
}

static int grid_write_dir(TIFF *t, const struct ts_image *img, const struct grid_tiff_opts *o,
                          bool reduced, uint16_t nsub)
{
    uint32_t c = img->channels, bits = o->bits == 16 ? 16 : 8, tile = o->tile ? o->tile : 256;
    bool ycbcr = o->ycbcr && o->compression == COMPRESSION_JPEG && c == 3;
    uint32_t bw = o->tiled ? tile : img->width, bh = o->tiled ? tile : 64;
    size_t bytes = (size_t)bw * bh * c * (bits / 8);
    uint8_t *buf;
    int ok = 1;

    if (nsub) {
        uint64_t zeros[GRID_MAX_LEVELS] = {0};
        ok &= TIFFSetField(t, TIFFTAG_SUBIFD, nsub, zeros);
    }
    if (reduced)
        ok &= TIFFSetField(t, TIFFTAG_SUBFILETYPE, FILETYPE_REDUCEDIMAGE);
    ok &= TIFFSetField(t, TIFFTAG_IMAGEWIDTH, img->width);
    ok &= TIFFSetField(t, TIFFTAG_IMAGELENGTH, img->height);
    ok &= TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)c);
    ok &= TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, (uint16_t)bits);
    ok &= TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    ok &= TIFFSetField(t, TIFFTAG_COMPRESSION, o->compression);
    if (c == 2 || c == 4) {
        uint16_t extra = EXTRASAMPLE_UNASSALPHA;
        ok &= TIFFSetField(t, TIFFTAG_EXTRASAMPLES, 1, &extra);
    }
    if (ycbcr) {
        ok &= TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_YCBCR);
        ok &= TIFFSetField(t, TIFFTAG_YCBCRSUBSAMPLING, 2, 2);
    } else {
        ok &=
            TIFFSetField(t, TIFFTAG_PHOTOMETRIC, c >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
    }
    if (o->compression == COMPRESSION_JPEG) {
        ok &= TIFFSetField(t, TIFFTAG_JPEGQUALITY, o->jpeg_quality ? o->jpeg_quality : 90);
        if (ycbcr)
            ok &= TIFFSetField(t, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
    }
    if (o->tiled) {
        ok &= TIFFSetField(t, TIFFTAG_TILEWIDTH, tile);
        ok &= TIFFSetField(t, TIFFTAG_TILELENGTH, tile);
    } else {
        ok &= TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 64u);
    }
    if (!ok || !(buf = malloc(bytes)))
        return -1;
    if (o->tiled) {
        for (uint32_t ty = 0; ok && ty < img->height; ty += tile)
            for (uint32_t tx = 0; ok && tx < img->width; tx += tile) {
                grid_fill_block(img, tx, ty, tile, tile, bits, buf);
                ok = TIFFWriteEncodedTile(t, TIFFComputeTile(t, tx, ty, 0, 0), buf,
                                          (tmsize_t)bytes) >= 0;
            }
    } else {
        for (uint32_t y = 0; ok && y < img->height; y += 64) {
            uint32_t rows = img->height - y < 64 ? img->height - y : 64;
            grid_fill_block(img, 0, y, img->width, rows, bits, buf);
            ok = TIFFWriteEncodedStrip(t, y / 64, buf,
                                       (tmsize_t)((size_t)img->width * rows * c * (bits / 8))) >= 0;
        }
    }
    free(buf);
    return ok && TIFFWriteDirectory(t) ? 0 : -1;
}

int grid_write_tiff(const char *path, const struct ts_image *img, const struct grid_tiff_opts *o)
{
    struct ts_image lv[GRID_MAX_LEVELS];
    uint32_t n = 1, tile = o->tile ? o->tile : 256;
    int rc = 0;
    TIFF *t;

    lv[0] = *img;
    if (o->layout != GRID_FLAT)
        while (n < GRID_MAX_LEVELS && (lv[n - 1].width > tile || lv[n - 1].height > tile)) {
            if (grid_halve(&lv[n - 1], &lv[n]) != TS_OK) {
                rc = -1;
                break;
            }
            n++;
        }
    t = rc ? NULL : TIFFOpen(path, o->bigtiff ? "w8" : "w");
    if (!t)
        rc = -1;
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        uint16_t nsub = (o->layout == GRID_PYRAMID_SUBIFDS && i == 0) ? (uint16_t)(n - 1) : 0;
        rc = grid_write_dir(t, &lv[i], o, i > 0, nsub);
    }
    if (t)
        TIFFClose(t);
    for (uint32_t i = 1; i < n; i++)
        ts_image_free(&lv[i]);
    return rc;
}

int grid_write_png(const char *path, const struct ts_image *img, uint32_t bits)
{
    static const int types[] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                PNG_COLOR_TYPE_RGB_ALPHA};
    uint32_t c = img->channels, bps = bits == 16 ? 2 : 1;
    png_structp png = NULL;
    png_infop info = NULL;
    uint8_t *row = malloc((size_t)img->width * c * bps);
    FILE *f = fopen(path, "wb");
    int rc = -1;

    if (!row || !f || c < 1 || c > 4)
        goto done;
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    info = png ? png_create_info_struct(png) : NULL;
    if (!info)
        goto done;
    if (setjmp(png_jmpbuf(png)))
        goto done;
    png_init_io(png, f);
    png_set_IHDR(png, info, img->width, img->height, (int)bits == 16 ? 16 : 8, types[c - 1],
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (uint32_t y = 0; y < img->height; y++) {
        const uint8_t *src = ts_image_row(img, y);
        size_t n = (size_t)img->width * c;
        /* v * 257 big-endian is simply v in both bytes. */
        for (size_t i = 0; i < n; i++) {
            if (bps == 2)
                row[2 * i] = row[2 * i + 1] = src[i];
            else
                row[i] = src[i];
        }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    rc = 0;
done:
    if (png)
        png_destroy_write_struct(&png, info ? &info : NULL);
    if (f && fclose(f) != 0)
        rc = -1;
    free(row);
    return rc;
}

struct grid_jerr {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
};

static void grid_jpeg_error_exit(j_common_ptr cinfo)
{
    longjmp(((struct grid_jerr *)cinfo->err)->jump, 1);
}

int grid_write_jpeg(const char *path, const struct ts_image *img, int quality)
{
    struct jpeg_compress_struct cinfo;
    struct grid_jerr jerr;
    uint32_t c = img->channels, oc = c >= 3 ? 3 : 1;
    uint8_t *row = malloc((size_t)img->width * oc);
    FILE *f = fopen(path, "wb");
    int rc = -1;

    if (!row || !f)
        goto out;
    cinfo.err = jpeg_std_error(&jerr.mgr);
    jerr.mgr.error_exit = grid_jpeg_error_exit;
    if (setjmp(jerr.jump)) {
        jpeg_destroy_compress(&cinfo);
        goto out;
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = img->width;
    cinfo.image_height = img->height;
    cinfo.input_components = (int)oc;
    cinfo.in_color_space = oc == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        const uint8_t *src = ts_image_row(img, cinfo.next_scanline);
        JSAMPROW rows[1] = {row};
        /* Alpha has no place in a JPEG: drop it. */
        for (uint32_t x = 0; x < img->width; x++)
            memcpy(row + (size_t)x * oc, src + (size_t)x * c, oc);
        jpeg_write_scanlines(&cinfo, rows, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    rc = 0;
out:
    if (f && fclose(f) != 0)
        rc = -1;
    free(row);
    return rc;
}

int grid_write_tiff_fn(const char *path, uint32_t w, uint32_t h, uint16_t spp, uint16_t bps,
                       grid_sample_fn f)
{
    TIFF *t = TIFFOpen(path, "w");
    if (!t)
        return -1;
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, w);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, h);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, spp);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, bps);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, spp == 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_TILEWIDTH, 256);
    TIFFSetField(t, TIFFTAG_TILELENGTH, 256);
    size_t bytes = (size_t)256 * 256 * spp * (bps / 8);
    uint8_t *tile = malloc(bytes);
    int rc = tile ? 0 : -1;
    for (uint32_t ty = 0; !rc && ty < h; ty += 256)
        for (uint32_t tx = 0; !rc && tx < w; tx += 256) {
            memset(tile, 0, bytes);
            for (uint32_t y = 0; y < 256 && ty + y < h; y++)
                for (uint32_t x = 0; x < 256 && tx + x < w; x++)
                    for (uint32_t c = 0; c < spp; c++) {
                        size_t i = ((size_t)y * 256 + x) * spp + c;
                        uint16_t v = f(tx + x, ty + y, c);
                        if (bps == 16)
                            ((uint16_t *)tile)[i] = v;
                        else
                            tile[i] = (uint8_t)v;
                    }
            if (TIFFWriteTile(t, tile, tx, ty, 0, 0) < 0)
                rc = -1;
        }
    free(tile);
    TIFFClose(t);
    return rc;
}
