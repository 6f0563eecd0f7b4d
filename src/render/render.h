/* Plan -> pixels: read the region at the best level, resample, mirror, rotate, apply quality. */
#ifndef TESSERA_RENDER_H
#define TESSERA_RENDER_H

#include "image/image.h"
#include "image/reader.h"
#include "render/plan.h"
#include "util/status.h"

/* Chooses the smallest pyramid level whose region still covers plan->out_w x out_h, and the
 * region in that level's pixels (rounded outward, clipped). Pure; exposed for tests. */
int render_choose_level(const struct ts_image_info *info, const struct ts_plan *plan,
                        struct ts_read_req *req);

/* Upper bound of the memory a render of this plan holds at once (for admission control),
 * known before anything is decoded: the reader's own figure for each read the render will make
 * (the whole region, or each band when big reads are done in bands), plus the output buffers.
 * SIZE_MAX when the reader would refuse a read for its size. */
size_t render_peak_bytes(struct ts_reader *reader, const struct ts_plan *plan);

/* Produces the final image: out_w x out_h (or the rotated bounding box), mirrored and rotated,
 * gray (1 channel) for gray, bitonal (1 channel, 0 or 255) for bitonal. Alpha is kept. Stops
 * with cancel's status (TS_ECANCELED, TS_ETIMEOUT) once it trips; cancel may be NULL. */
int render_execute(struct ts_reader *reader, const struct ts_plan *plan, struct ts_cancel *cancel,
                   struct ts_image *out, struct ts_err *err);

/* The same render kept in JPEG's planes (struct ts_ycc), for a JPEG of a source stored as 4:2:0
 * JPEG: TS_DECLINED when the plan or the source does not allow it (anything but plain colour,
 * or a level stored otherwise), and the caller renders RGB. */
int render_execute_ycc(struct ts_reader *reader, const struct ts_plan *plan,
                       struct ts_cancel *cancel, struct ts_ycc *out, struct ts_err *err);

/* Building blocks, each a fresh image into *dst. */
/* The whole-pixel box pre-shrink render_resample_rect applies before its filter when going from
 * src_len to dst_len pixels (1 = none); banded renders align their bands to it. */
uint32_t render_box_factor(double src_len, uint32_t dst_len);

int render_resize(const struct ts_image *src, uint32_t w, uint32_t h, struct ts_image *dst);
/* Resamples the source rectangle (sx, sy, sw, sh), in source pixels with sub-pixel precision,
 * to w x h. Lanczos3, alpha premultiplied; a plain copy for integral offsets at scale 1. */
int render_resample_rect(const struct ts_image *src, double sx, double sy, double sw, double sh,
                         uint32_t w, uint32_t h, struct ts_image *dst);
/* The same on up to `threads` threads (blocks of output rows each): the same bytes. */
int render_resample_rect_mt(const struct ts_image *src, double sx, double sy, double sw, double sh,
                            uint32_t w, uint32_t h, unsigned threads, struct ts_image *dst);
int render_mirror(struct ts_image *img); /* in place, horizontal flip */
int render_rotate90(const struct ts_image *src, int degrees, struct ts_image *dst); /* 90/180/270 */
int render_quality(const struct ts_image *src, enum ts_quality q, struct ts_image *dst);
/* iipsrv's adjustments (see struct ts_adjust); a colour map makes RGB (+ alpha) of any input. */
int render_adjust(const struct ts_image *src, const struct ts_adjust *a, struct ts_image *dst);
/* The histogram stretch and equalisation read (struct ts_adjust's hist): of each pixel's colour
 * channels' average, rounded. */
void render_histogram(const struct ts_image *img, uint32_t hist[TS_HIST_BINS]);
/* The render a histogram is taken from: the whole image at iipsrv's smallest resolution (halved
 * until it fits 256 x 256), no adjustment. */
void render_histogram_plan(uint32_t width, uint32_t height, struct ts_plan *out);

/* Clockwise rotation by any angle (IIIF: applied after mirroring). The canvas is the rotated
 * bounding box, round(|w cos| + |h sin|) x round(|w sin| + |h cos|); the output always has alpha
 * (gray -> 2 channels, colour -> 4), 0 outside the rotated image, with antialiased edges from
 * premultiplied bilinear sampling. Multiples of 90 are exact. TS_EINVAL for a non-finite angle. */
int render_rotate_any(const struct ts_image *src, double degrees, struct ts_image *dst);
/* The canvas size render_rotate_any produces for a w x h image, for planning and limits. */
int render_rotate_extent(uint32_t w, uint32_t h, double degrees, uint32_t *out_w, uint32_t *out_h);

#endif
