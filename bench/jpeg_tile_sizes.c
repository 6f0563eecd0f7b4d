/* Mean bytes of the 256x256 tiles of an image encoded by libjpeg at each quality given, as
 * YCbCr 4:2:0 (what Tessera writes) and as RGB with no colour transform (what libvips 8.14
 * writes into TIFF at Q90 and above): the figures behind --passthrough quality's margin.
 * Build: cc -O2 bench/jpeg_tile_sizes.c -o jpeg_tile_sizes -ljpeg
 * Run:   vips crop master.v crop.ppm 4000 2000 2048 2048 && ./jpeg_tile_sizes crop.ppm 75 85 95
 * (a binary PPM; a comment line after the magic, as vips writes, is skipped). */
#include <stdio.h>
#include <stdlib.h>

#include <jpeglib.h>

static unsigned long encode_tile(const unsigned char *px, int width, int x0, int y0, int q, int rgb)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    unsigned char *out = NULL;
    unsigned long n = 0;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &out, &n);
    c.image_width = 256;
    c.image_height = 256;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, q, TRUE);
    if (rgb)
        jpeg_set_colorspace(&c, JCS_RGB);
    else
        c.comp_info[0].h_samp_factor = c.comp_info[0].v_samp_factor = 2;
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < 256) {
        JSAMPROW row = (JSAMPROW)px + ((size_t)(y0 + c.next_scanline) * width + x0) * 3;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(out);
    return n;
}

static int read_ppm(const char *path, unsigned char **px, int *w, int *h)
{
    FILE *f = fopen(path, "rb");
    char line[256];
    int max;
    if (!f || !fgets(line, sizeof line, f) || line[0] != 'P' || line[1] != '6')
        return -1;
    do {
        if (!fgets(line, sizeof line, f))
            return -1;
    } while (line[0] == '#');
    if (sscanf(line, "%d %d", w, h) != 2 || fscanf(f, "%d", &max) != 1 || fgetc(f) == EOF)
        return -1;
    size_t n = (size_t)*w * *h * 3;
    *px = malloc(n);
    int ok = *px && fread(*px, 1, n, f) == n;
    fclose(f);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    unsigned char *px;
    int w, h;
    if (argc < 3 || read_ppm(argv[1], &px, &w, &h) != 0) {
        fprintf(stderr, "usage: jpeg_tile_sizes IMAGE.ppm QUALITY...\n");
        return 2;
    }
    for (int a = 2; a < argc; a++) {
        int q = atoi(argv[a]), n = 0;
        double ycc = 0, rgb = 0;
        for (int y = 0; y + 256 <= h; y += 256)
            for (int x = 0; x + 256 <= w; x += 256, n++) {
                ycc += encode_tile(px, w, x, y, q, 0);
                rgb += encode_tile(px, w, x, y, q, 1);
            }
        printf("Q%d: YCbCr 4:2:0 %.0f B/tile, RGB %.0f B/tile (%d tiles)\n", q, ycc / n, rgb / n,
               n);
    }
    free(px);
    return 0;
}
