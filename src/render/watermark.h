/* Watermarks: an image added onto rendered pixels, with iipsrv's placement and blend. */
#ifndef TESSERA_WATERMARK_H
#define TESSERA_WATERMARK_H

#include "image/image.h"
#include "image/reader.h"
#include "render/plan.h"
#include "util/status.h"

#include <stdbool.h>
#include <stdint.h>

/* The largest watermark side accepted: a mark is never scaled, only cut to the block it lands
 * in, and blocks are twice a tile, so anything bigger could never be seen whole. */
#define TS_WATERMARK_MAX_SIDE 16384

/* A loaded watermark, shared read-only by every request. */
struct ts_watermark {
    struct ts_image mark;   /* RGBA, straight (unassociated) alpha; data NULL = none */
    double opacity;         /* 0..1 */
    double probability;     /* 0..1: the chance each block gets the mark */
    uint32_t default_block; /* block side for sources without native tiles (2 x tile) */
    uint64_t fingerprint;   /* of the pixels and both numbers, for validators */
};

/* Reads the image at path with Tessera's own readers (any format they open; full resolution,
 * first page) into wm. default_tile is the tile size advertised for untiled sources. A file
 * that cannot be read, or a side above TS_WATERMARK_MAX_SIDE, fails with a reason naming the
 * path. opacity and probability must lie in [0, 1] (TS_EINVAL otherwise). */
int render_watermark_load(const char *path, double opacity, double probability,
                          uint32_t default_tile, struct ts_watermark *wm, struct ts_err *err);
void render_watermark_free(struct ts_watermark *wm);

/* True when wm can change a pixel: loaded, with opacity and probability above 0. */
bool render_watermark_active(const struct ts_watermark *wm);

/* The blend, one reusable step: adds mark (4 channels, RGBA with straight alpha) onto img with
 * its top-left corner at (x, y), clipped to img. Every colour sample v under a mark pixel
 * (r, g, b, a) becomes min(255, v + round(c * a / 255 * opacity)), c being r, g or b for RGB
 * images and the BT.601 luma of (r, g, b) for gray ones; img's own alpha is left as it is.
 * This is iipsrv's additive watermark (it lightens, never darkens). TS_EINVAL for a mark that
 * is not RGBA or an opacity outside [0, 1]. */
int render_watermark_blend(struct ts_image *img, const struct ts_image *mark, double opacity,
                           int64_t x, int64_t y);

/* The seed of a render's choices (which blocks get a mark, and where): the same image, page,
 * region, size, rotation and mirror give the same watermark, whatever the protocol or format,
 * so a response and its cached copy, ETag and passthrough decision always agree. */
uint64_t render_watermark_seed(const void *identifier, size_t len, uint32_t page,
                               const struct ts_plan *plan);

/* iipsrv's block side: twice the larger side of the source's native tile (levels[0]), or
 * wm->default_block (twice the advertised tile) for untiled sources. A render up to that size,
 * such as any tile, is one block. */
uint32_t render_watermark_block(const struct ts_watermark *wm, const struct ts_image_info *info);

/* Whether any block of a w x h render with this seed gets a mark. */
bool render_watermark_marks(const struct ts_watermark *wm, uint64_t seed, uint32_t w, uint32_t h,
                            uint32_t block);

/* iipsrv's placement: img is cut into block x block squares from its top-left corner (the
 * last row and column narrower); each square, with the chance wm->probability, gets the mark
 * blended at a position drawn uniformly among those where it fits inside the square (at the
 * square's corner, cut to it, when it does not fit). The draws come from seed alone. */
int render_watermark_apply(struct ts_image *img, const struct ts_watermark *wm, uint64_t seed,
                           uint32_t block);

#endif
