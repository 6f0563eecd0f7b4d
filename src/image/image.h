/* An 8-bit interleaved pixel buffer: what readers produce, render transforms and encoders consume.
 */
#ifndef TESSERA_IMAGE_H
#define TESSERA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* channels: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA. Samples are always 8-bit here:
 * readers scale 16-bit sources down (v * 255 / 65535, rounded) as they read. */
struct ts_image {
    uint32_t width;
    uint32_t height;
    uint32_t channels;
    size_t stride; /* bytes per row, >= width * channels */
    uint8_t *data;
};

/* Allocates width x height x channels (overflow-checked); data is uninitialised. */
int ts_image_alloc(struct ts_image *img, uint32_t width, uint32_t height, uint32_t channels);
void ts_image_free(struct ts_image *img);
static inline uint8_t *ts_image_row(const struct ts_image *img, uint32_t y)
{
    return img->data + (size_t)y * img->stride;
}

/* A picture as a JPEG stores it: luma at full size, the two chroma planes at half size each way
 * (rounded up), chroma sample i covering luma samples 2i and 2i + 1 in both directions. Each
 * plane is a 1-channel image. Renders that begin and end in JPEG pass these through, sparing
 * the colour conversions and chroma resampling of a trip through RGB. */
struct ts_ycc {
    struct ts_image y, cb, cr;
};

/* Allocates the planes for a width x height picture; on failure none is left allocated. */
int ts_ycc_alloc(struct ts_ycc *p, uint32_t width, uint32_t height);
void ts_ycc_free(struct ts_ycc *p);

#endif
