#include "image/rowtail.h"

#include "util/status.h"

#include <string.h>

void ts_rowtail_clear(struct ts_rowtail *t)
{
    ts_image_free(&t->img);
    t->img.data = NULL;
    t->y0 = t->x = 0;
}

void ts_rowtail_keep(struct ts_rowtail *t, const struct ts_image *img, uint32_t y0, uint32_t x,
                     uint32_t from)
{
    ts_rowtail_clear(t);
    if (!img->data || from < y0 || from >= y0 + img->height)
        return;
    uint32_t n = y0 + img->height - from;
    if ((uint64_t)n * img->width * img->channels > TS_ROWTAIL_MAX_BYTES)
        return;
    if (ts_image_alloc(&t->img, img->width, n, img->channels) != TS_OK) {
        t->img.data = NULL;
        return;
    }
    for (uint32_t r = 0; r < n; r++)
        memcpy(ts_image_row(&t->img, r), ts_image_row(img, from - y0 + r),
               (size_t)img->width * img->channels);
    t->y0 = from;
    t->x = x;
}

bool ts_rowtail_has(const struct ts_rowtail *t, uint32_t y, uint32_t end, uint32_t x, uint32_t w)
{
    return t->img.data && y >= t->y0 && end <= t->y0 + t->img.height && y <= end && x >= t->x &&
           (uint64_t)x + w <= (uint64_t)t->x + t->img.width;
}

void ts_rowtail_copy(const struct ts_rowtail *t, uint32_t y, uint32_t end, uint32_t x,
                     struct ts_image *out)
{
    size_t ch = t->img.channels;
    for (uint32_t r = y; r < end; r++)
        memcpy(ts_image_row(out, r - y), ts_image_row(&t->img, r - t->y0) + (x - t->x) * ch,
               (size_t)out->width * ch);
}
