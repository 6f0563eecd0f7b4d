/* Reference resampler for tests and benchmarks: the float implementation render_resample_rect
 * had before it went fixed-point. Same contract as render_resample_rect / render_resize. */
#ifndef TESSERA_RESAMPLE_REF_H
#define TESSERA_RESAMPLE_REF_H

#include "image/image.h"

#include <stdint.h>

int ref_resample_rect(const struct ts_image *src, double sx, double sy, double sw, double sh,
                      uint32_t w, uint32_t h, struct ts_image *dst);
int ref_resize(const struct ts_image *src, uint32_t w, uint32_t h, struct ts_image *dst);

#endif
