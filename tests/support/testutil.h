/* Small helpers shared by unit and HTTP tests. */
#ifndef TESSERA_TESTUTIL_H
#define TESSERA_TESTUTIL_H

#include "image/image.h"
#include "util/buf.h"

#include <stddef.h>
#include <stdint.h>

/* mkdir -p; returns 0 on success. */
int tu_mkdirs(const char *path);

/* Decodes JPEG, PNG or WebP bytes (sniffed) into 8-bit pixels with an independent decoder
 * (libjpeg, libpng, libwebp: never Tessera's readers). Returns 0 on success. */
int tu_decode(const uint8_t *data, size_t len, struct ts_image *out);

/* Max absolute channel difference between a pixel of img and rgb (gray images compare with
 * the luma of rgb). */
int tu_pixel_diff(const struct ts_image *img, uint32_t x, uint32_t y, const uint8_t rgb[3]);

/* Loads a binary PGM (P5) or PPM (P6), 8- or 16-bit (16-bit rounded to 8): the format the
 * reference decoders (opj_decompress, dwebp) write fastest. Returns 0 on success. */
int tu_load_pnm(const char *path, struct ts_image *out);

/* Writes a 3-channel image as a binary PPM, the input the reference encoders take. */
int tu_write_ppm(const char *path, const struct ts_image *img);

#endif
