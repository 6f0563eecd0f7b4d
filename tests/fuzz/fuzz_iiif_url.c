/* libFuzzer target: the IIIF URL grammar of every version, then planning against a fixed image. */
#include "protocol/iiif_parse.h"
#include "protocol/iiif_plan.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192)
        return 0;
    char *path = malloc(size);
    if (!path)
        return 0;
    /* First byte picks the version; the rest is the path after the version prefix. */
    int version = 1 + data[0] % 3;
    memcpy(path, data + 1, size - 1);
    path[size - 1] = '\0';
    struct iiif_url *url = calloc(1, sizeof *url);
    struct ts_err err;
    if (url && iiif_parse_url(version, path, url, &err) == TS_OK &&
        url->target == IIIF_TARGET_IMAGE) {
        struct ts_limits opt = {
            5000,  5000, 20000000ull, false, (1u << TS_FORMAT_JPG) | (1u << TS_FORMAT_PNG),
            false, true};
        struct ts_plan plan;
        static const uint32_t dims[][2] = {{1, 1}, {1000, 1000}, {40000, 30000}, {7, 99999}};
        for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
            if (iiif_plan(&url->req, dims[i][0], dims[i][1], &opt, &plan, &err) == TS_OK) {
                char canonical[512];
                iiif_canonical(version, &plan, canonical, sizeof canonical);
                /* A plan must stay inside the image and the limits it was given. */
                if (plan.rx + (uint64_t)plan.rw > dims[i][0] ||
                    plan.ry + (uint64_t)plan.rh > dims[i][1] || plan.rw == 0 || plan.rh == 0 ||
                    plan.out_w == 0 || plan.out_h == 0 || plan.out_w > opt.max_width ||
                    plan.out_h > opt.max_height || (uint64_t)plan.out_w * plan.out_h > opt.max_area)
                    abort();
            }
        }
    }
    free(url);
    free(path);
    return 0;
}
