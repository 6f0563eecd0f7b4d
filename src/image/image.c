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
