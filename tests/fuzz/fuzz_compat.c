/* libFuzzer target: iipsrv's IIP, DeepZoom and Zoomify request parsers and their tile planning. */
#include "protocol/deepzoom.h"
#include "protocol/iip.h"
#include "protocol/zoomify.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A plan handed to the renderer must lie inside the image and ask for pixels. */
static void check_plan(const struct ts_plan *p, const struct ts_image_info *info)
{
    if (p->rw == 0 || p->rh == 0 || p->out_w == 0 || p->out_h == 0 ||
        (uint64_t)p->rx + p->rw > info->width || (uint64_t)p->ry + p->rh > info->height)
        abort();
}

static void fake_info(struct ts_image_info *info, uint32_t w, uint32_t h)
{
    memset(info, 0, sizeof *info);
    info->width = w;
    info->height = h;
    info->channels = 3;
    info->bits_per_sample = 8;
    info->format = "tiff";
    for (uint32_t i = 0; i < 6 && (w >> i) && (h >> i); i++) {
        info->levels[i] = (struct ts_level){w >> i, h >> i, 256, 256};
        info->nlevels = i + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    char *text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    struct ts_image_info info;
    struct iip_pyramid pyr;
    struct ts_err err;
    struct ts_plan plan;
    fake_info(&info, 30001, 7777);
    if (iip_pyramid_build(&info, 256, &pyr, &err) != TS_OK)
        abort();
    switch (data[0] % 3) {
    case 0: {
        struct iip_request *r = calloc(1, sizeof *r);
        if (r && iip_parse(text, r, &err) == TS_OK) {
            struct ts_buf obj = {0};
            iip_obj_text(r, &pyr, &info, &obj, &err);
            ts_buf_free(&obj);
            if (r->action == IIP_ACTION_JTL &&
                iip_tile_plan(&pyr, r->jtl_res, r->jtl_tile, r->rot, &plan, &err) == TS_OK)
                check_plan(&plan, &info);
            if (r->action == IIP_ACTION_CVT && iip_cvt_plan(&pyr, r, 5000, &plan, &err) == TS_OK)
                check_plan(&plan, &info);
        }
        free(r);
        break;
    }
    case 1: {
        struct dz_request *r = calloc(1, sizeof *r);
        if (r && dz_parse(text, r, &err) == TS_OK && !r->dzi &&
            dz_tile_plan(&pyr, r, &plan, &err) == TS_OK)
            check_plan(&plan, &info);
        free(r);
        break;
    }
    default: {
        struct zoomify_request *r = calloc(1, sizeof *r);
        if (r && zoomify_parse(text, r, &err) == TS_OK && !r->properties &&
            zoomify_tile_plan(&pyr, r, &plan, &err) == TS_OK)
            check_plan(&plan, &info);
        free(r);
        break;
    }
    }
    free(text);
    return 0;
}
