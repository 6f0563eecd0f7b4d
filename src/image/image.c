/* Allocation of pixel buffers with overflow-checked sizes. */
#include "image/image.h"
#include "util/status.h"

#include <stdlib.h>

int ts_image_alloc(struct ts_image *img, uint32_t width, uint32_t height, uint32_t channels)
{
    size_t stride, total;
    img->data = NULL;
    if (width == 0 || height == 0 || channels == 0 || channels > 4)
        return TS_EINVAL;
    if (!ts_mul_size(width, channels, &stride) || !ts_mul_size(stride, height, &total))
        return TS_ETOOLARGE;
    img->data = malloc(total);
    if (!img->data)
        return TS_ENOMEM;
    img->width = width;
    img->height = height;
    img->channels = channels;
    img->stride = stride;
    return TS_OK;
}

void ts_image_free(struct ts_image *img)
{
    free(img->data);
    img->data = NULL;
}

int ts_ycc_alloc(struct ts_ycc *p, uint32_t width, uint32_t height)
{
    uint32_t cw = width / 2 + width % 2, ch = height / 2 + height % 2;
    p->y.data = p->cb.data = p->cr.data = NULL;
    int rc = ts_image_alloc(&p->y, width, height, 1);
    rc = rc ? rc : ts_image_alloc(&p->cb, cw, ch, 1);
    rc = rc ? rc : ts_image_alloc(&p->cr, cw, ch, 1);
    if (rc)
        ts_ycc_free(p);
    return rc;
}

void ts_ycc_free(struct ts_ycc *p)
{
    ts_image_free(&p->y);
    ts_image_free(&p->cb);
    ts_image_free(&p->cr);
}
