/* The grid test image: flat-colour squares whose every pixel is known, written in many formats. */
#ifndef TESSERA_TEST_GRID_H
#define TESSERA_TEST_GRID_H

#include "image/image.h"

#include <stdbool.h>
#include <stdint.h>

/* The standard grid: 1000x1000, 10x10 cells of 100x100. */
#define GRID_SIZE 1000
#define GRID_CELLS 10

/* Colour of cell (col,row): r = 13 + 24*col, g = 13 + 24*row, b = 255 - 12*(col+row).
 * Every cell differs from its neighbours by >= 12 levels in some channel. */
void grid_cell_color(uint32_t col, uint32_t row, uint8_t rgb[3]);

/* Colour of pixel (x,y) of a w x h grid with `cells` cells across and down. */
void grid_pixel_color(uint32_t w, uint32_t h, uint32_t cells, uint32_t x, uint32_t y,
                      uint8_t rgb[3]);

/* Renders the grid with 1 (gray = luma of the colour), 2 (gray+alpha), 3 (RGB) or 4 (RGBA)
 * channels; alpha is 255 except for cell (0,0), which is 128. */
int grid_make(uint32_t w, uint32_t h, uint32_t cells, uint32_t channels, struct ts_image *out);

/* ITU-R BT.601 luma, as used for expected gray values. */
uint8_t grid_luma(const uint8_t rgb[3]);

enum grid_layout {
    GRID_FLAT,            /* one IFD */
    GRID_PYRAMID_IFDS,    /* one IFD per level, halving down to <= tile size */
    GRID_PYRAMID_SUBIFDS, /* reduced levels as SubIFDs of the first IFD */
};

struct grid_tiff_opts {
    int compression; /* libtiff COMPRESSION_* */
    bool tiled;      /* else striped */
    uint32_t tile;   /* tile edge (multiple of 16) */
    uint32_t bits;   /* 8 or 16 */
    enum grid_layout layout;
    bool bigtiff;
    int jpeg_quality; /* for COMPRESSION_JPEG */
    bool ycbcr;       /* JPEG with PHOTOMETRIC_YCBCR (RGB only) */
};

/* Writes img (any channel count) as a TIFF; levels are box-filtered halvings. */
int grid_write_tiff(const char *path, const struct ts_image *img, const struct grid_tiff_opts *o);
int grid_write_png(const char *path, const struct ts_image *img, uint32_t bits);
int grid_write_jpeg(const char *path, const struct ts_image *img, int quality);

/* Sample c of pixel (x, y), 8-bit values for 8-bit files. */
typedef uint16_t (*grid_sample_fn)(uint32_t x, uint32_t y, uint32_t c);
/* An uncompressed tiled TIFF (256 x 256 tiles) of w x h, spp samples of bps (8 or 16) bits
 * from f, RGB for three samples and gray otherwise. 0 on success. */
int grid_write_tiff_fn(const char *path, uint32_t w, uint32_t h, uint16_t spp, uint16_t bps,
                       grid_sample_fn f);

#endif
