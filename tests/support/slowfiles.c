#include "slowfiles.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
/* jpeglib.h uses FILE and size_t without including their headers. */
#include <jpeglib.h>

int slow_png(const char *path, uint32_t w, uint32_t h)
{
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    uint8_t *row = malloc((size_t)w * 3);
    int rc = -1;
    if (!f || !png || !info || !row)
        goto out;
    if (setjmp(png_jmpbuf(png)))
        goto out;
    for (size_t i = 0; i < (size_t)w * 3; i += 3)
        row[i] = 40, row[i + 1] = 120, row[i + 2] = 200;
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    /* Fast and still tiny: every row repeats the one before. */
    png_set_compression_level(png, 1);
    png_set_filter(png, 0, PNG_FILTER_UP);
    png_write_info(png, info);
    for (uint32_t y = 0; y < h; y++)
        png_write_row(png, row);
    png_write_end(png, NULL);
    rc = 0;
out:
    if (png)
        png_destroy_write_struct(&png, info ? &info : NULL);
    free(row);
    if (f && fclose(f) != 0)
        rc = -1;
    return rc;
}

int slow_jpeg(const char *path, uint32_t w, uint32_t h)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    unsigned char *mem = NULL;
    unsigned long len = 0;
    uint8_t row[16 * 3];
    int rc = -1;
    memset(row, 128, sizeof row);
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &mem, &len);
    c.image_width = 16;
    c.image_height = 16;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < 16) {
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    /* SOF0: FF C0, length (2), precision (1), height (2), width (2). */
    for (unsigned long i = 0; i + 8 < len; i++)
        if (mem[i] == 0xff && mem[i + 1] == 0xc0) {
            mem[i + 5] = (uint8_t)(h >> 8), mem[i + 6] = (uint8_t)h;
            mem[i + 7] = (uint8_t)(w >> 8), mem[i + 8] = (uint8_t)w;
            FILE *f = fopen(path, "wb");
            if (f && fwrite(mem, 1, len, f) == len)
                rc = 0;
            if (f && fclose(f) != 0)
                rc = -1;
            break;
        }
    free(mem);
    return rc;
}

int slow_tiff(const char *path, uint32_t edge)
{
    TIFF *t = TIFFOpen(path, "w");
    size_t bytes = (size_t)edge * edge * 3;
    /* calloc'd zeros cost no memory until written, and are never written. */
    uint8_t *tile = calloc(bytes, 1);
    int rc = -1;
    if (t && tile) {
        TIFFSetField(t, TIFFTAG_IMAGEWIDTH, edge);
        TIFFSetField(t, TIFFTAG_IMAGELENGTH, edge);
        TIFFSetField(t, TIFFTAG_TILEWIDTH, edge);
        TIFFSetField(t, TIFFTAG_TILELENGTH, edge);
        TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 3);
        TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
        TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
        TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
        TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE);
        TIFFSetField(t, TIFFTAG_ZIPQUALITY, 1);
        if (TIFFWriteEncodedTile(t, 0, tile, (tmsize_t)bytes) >= 0)
            rc = 0;
    }
    if (t)
        TIFFClose(t);
    free(tile);
    return rc;
}
