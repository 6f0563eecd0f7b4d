/* ICC colour management for readers: every source is converted to sRGB as it is read. */
#ifndef TESSERA_COLOR_H
#define TESSERA_COLOR_H

#include "image/image.h"
#include "util/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ts_color_space { TS_COLOR_GRAY, TS_COLOR_RGB, TS_COLOR_CMYK };

/* How the reader's source samples are laid out, interleaved. */
struct ts_color_layout {
    enum ts_color_space space;
    bool inverted;  /* CMYK stored as 255 - ink (Adobe's CMYK JPEGs) */
    bool alpha;     /* one alpha sample follows the colour samples; it is copied through */
    uint32_t bytes; /* per sample: 1, or 2 for native-endian 16-bit */
};

/* A conversion to 8-bit sRGB: gray stays gray (sRGB tone curve), RGB and CMYK become RGB,
 * alpha is kept. Safe to use from several threads at once; never modified after creation. */
struct ts_color_xform;

/* Builds the conversion for a profile (icc, len). *out is NULL (and TS_OK) when none is needed:
 * no profile for gray or RGB, or an sRGB profile. CMYK without a profile uses a generic one.
 * A profile that cannot be parsed or does not match the layout fails with TS_ECODEC; readers
 * then ignore it rather than refuse the image. */
int ts_color_xform_create(const uint8_t *icc, size_t len, const struct ts_color_layout *lay,
                          struct ts_color_xform **out, struct ts_err *err);
void ts_color_xform_free(struct ts_color_xform *x);

/* Channels delivered: 1 or 3, plus 1 with alpha. */
uint32_t ts_color_xform_channels(const struct ts_color_xform *x);

/* Converts n pixels; src and dst must not overlap. */
void ts_color_xform_pixels(const struct ts_color_xform *x, const void *src, uint8_t *dst,
                           uint32_t n);

/* Converts an 8-bit image in place (its layout must be the transform's, with 1-byte samples). */
int ts_color_xform_image(const struct ts_color_xform *x, struct ts_image *img, struct ts_err *err);

/* True for an RGB profile describing itself as sRGB (IEC 61966-2.1 and its variants). */
bool ts_color_profile_is_srgb(const uint8_t *icc, size_t len);

#endif
