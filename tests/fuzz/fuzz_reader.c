/* libFuzzer target: every reader opening a fuzzed file and decoding regions of it, as RGB and,
 * where the reader can, as stored planes. */
#include "image/reader.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

static void read_some(struct ts_reader *r)
{
    struct ts_err err;
    for (uint32_t l = 0; l < r->info.nlevels;
         l += (r->info.nlevels > 1 ? r->info.nlevels - 1 : 1)) {
        const struct ts_level *lv = &r->info.levels[l];
        /* Cap the area so the fuzzer explores parsing, not the allocator. */
        uint32_t w = lv->width < 300 ? lv->width : 300, h = lv->height < 300 ? lv->height : 300;
        struct ts_read_req req = {.level = l,
                                  .x = lv->width - w,
                                  .y = lv->height - h,
                                  .w = w,
                                  .h = h,
                                  .min_w = 1,
                                  .min_h = 1};
        struct ts_image img = {0};
        if (ts_reader_read(r, &req, &img, &err) == TS_OK)
            ts_image_free(&img);
        /* The same region as stored, where the reader can: JPEG tiles decoded raw. */
        struct ts_ycc planes;
        req.x &= ~1u, req.y &= ~1u;
        if (ts_reader_read_ycc(r, &req, &planes, &err) == TS_OK)
            ts_ycc_free(&planes);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Every input reuses one path; ts_reader_open gives JPEG 2000 readers no block store, so
     * no decoded block of the last input can answer for this one. */
    if (!path[0])
        snprintf(path, sizeof path, "/tmp/tessera-fuzz-%d.img", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    struct ts_reader *r = NULL;
    struct ts_err err;
    if (ts_reader_open(path, &r, &err) == TS_OK) {
        const struct ts_image_info *in = &r->info;
        /* Refuse to decode what would be huge: the server's admission control does the same. */
        if ((uint64_t)in->width * in->height <= 64ull * 1024 * 1024)
            read_some(r);
        ts_reader_close(r);
    }
    return 0;
}
