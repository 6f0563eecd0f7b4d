/* The last rows a top-down reader delivered, kept for the next band of a banded render: bands
 * overlap by the resampling filter's reach, and rows above the decoder's position could
 * otherwise only come from decoding the image from its top again. */
#ifndef TESSERA_ROWTAIL_H
#define TESSERA_ROWTAIL_H

#include "image/image.h"

#include <stdbool.h>
#include <stdint.h>

/* The most a tail holds: more would be another band's worth of memory per render. Where the
 * overlap is larger (a very wide source shrunk a hundredfold, whose bands are mostly filter
 * reach), bands decode from the top again instead. */
#define TS_ROWTAIL_MAX_BYTES ((size_t)16 << 20)

struct ts_rowtail {
    struct ts_image img; /* data NULL when empty */
    uint32_t y0;         /* the reader's row of img's first row */
    uint32_t x;          /* the reader's column of img's first column */
};

/* Keeps rows [from, y0 + img->height) of img, whose first row is row y0 and first column x
 * (from >= y0). Keeps nothing when from is past the end, the rows are more than
 * TS_ROWTAIL_MAX_BYTES or memory is short: the tail only saves work. */
void ts_rowtail_keep(struct ts_rowtail *t, const struct ts_image *img, uint32_t y0, uint32_t x,
                     uint32_t from);

/* Whether the tail holds rows [y, end) of columns [x, x + w). */
bool ts_rowtail_has(const struct ts_rowtail *t, uint32_t y, uint32_t end, uint32_t x, uint32_t w);

/* Copies rows [y, end) (ts_rowtail_has must hold) into out's rows from 0, columns from x. */
void ts_rowtail_copy(const struct ts_rowtail *t, uint32_t y, uint32_t end, uint32_t x,
                     struct ts_image *out);

void ts_rowtail_clear(struct ts_rowtail *t);

#endif
