/* Watermarks: load the mark once, then add it to renders in blocks, as iipsrv 1.3 does. */
#include "render/watermark.h"
#include "util/hash.h"

#include <math.h>
#include <string.h>

/* The mark as RGBA whatever the file held: gray repeats into r, g and b, and a missing alpha
 * is opaque. */
static int to_rgba(const struct ts_image *src, struct ts_image *dst)
{
    int rc = ts_image_alloc(dst, src->width, src->height, 4);
    if (rc)
        return rc;
    uint32_t n = src->channels;
    for (uint32_t y = 0; y < src->height; y++) {
        const uint8_t *s = ts_image_row(src, y);
        uint8_t *d = ts_image_row(dst, y);
        for (uint32_t x = 0; x < src->width; x++, s += n, d += 4) {
            bool color = n >= 3;
            d[0] = s[0];
            d[1] = color ? s[1] : s[0];
            d[2] = color ? s[2] : s[0];
            d[3] = n == 2 ? s[1] : n == 4 ? s[3] : 255;
        }
    }
    return TS_OK;
}

static uint64_t fingerprint(const struct ts_watermark *wm)
{
    uint64_t h = ts_hash(TS_HASH_SEED, "watermark", 9);
    uint32_t dims[2] = {wm->mark.width, wm->mark.height};
    h = ts_hash(h, dims, sizeof dims);
    for (uint32_t y = 0; y < wm->mark.height; y++)
        h = ts_hash(h, ts_image_row(&wm->mark, y), (size_t)wm->mark.width * 4);
    double knobs[2] = {wm->opacity, wm->probability};
    return ts_hash(h, knobs, sizeof knobs);
}

static bool fraction_ok(double v)
{
    return v >= 0.0 && v <= 1.0; /* false for NaN too */
}

int render_watermark_load(const char *path, double opacity, double probability,
                          uint32_t default_tile, struct ts_watermark *wm, struct ts_err *err)
{
    struct ts_reader *r = NULL;
    struct ts_image img = {0};
    struct ts_err why = {0};
    memset(wm, 0, sizeof *wm);
    if (!fraction_ok(opacity) || !fraction_ok(probability))
        return ts_fail(err, TS_EINVAL,
                       "watermark opacity and probability want numbers from 0 to 1, got %g and %g",
                       opacity, probability);
    int rc = ts_reader_open(path, &r, &why);
    if (rc)
        return ts_fail(err, rc, "watermark image '%s' cannot be read: %s", path,
                       why.msg[0] ? why.msg : ts_status_name(rc));
    const struct ts_image_info *info = &r->info;
    if (info->width > TS_WATERMARK_MAX_SIDE || info->height > TS_WATERMARK_MAX_SIDE) {
        ts_reader_close(r);
        return ts_fail(err, TS_ETOOLARGE,
                       "watermark image '%s' is %ux%u; the largest side accepted is %u", path,
                       info->width, info->height, TS_WATERMARK_MAX_SIDE);
    }
    struct ts_read_req req = {
        .w = info->width, .h = info->height, .min_w = info->width, .min_h = info->height};
    rc = ts_reader_read(r, &req, &img, &why);
    ts_reader_close(r); /* and info with it */
    if (rc == TS_OK &&
        (img.width != req.w || img.height != req.h || img.channels < 1 || img.channels > 4)) {
        ts_image_free(&img);
        rc = ts_fail(&why, TS_ECODEC, "the reader delivered an unexpected %ux%u image", img.width,
                     img.height);
    }
    if (rc)
        return ts_fail(err, rc, "watermark image '%s' cannot be read: %s", path,
                       why.msg[0] ? why.msg : ts_status_name(rc));
    rc = to_rgba(&img, &wm->mark);
    ts_image_free(&img);
    if (rc)
        return ts_fail(err, rc, "watermark image '%s': out of memory", path);
    wm->opacity = opacity;
    wm->probability = probability;
    wm->default_block = default_tile ? 2 * default_tile : 1024;
    wm->fingerprint = fingerprint(wm);
    return TS_OK;
}

void render_watermark_free(struct ts_watermark *wm)
{
    ts_image_free(&wm->mark);
    memset(wm, 0, sizeof *wm);
}

bool render_watermark_active(const struct ts_watermark *wm)
{
    return wm && wm->mark.data && wm->opacity > 0.0 && wm->probability > 0.0;
}

/* BT.601 luma, as gray quality computes it, so a gray image gets the mark's own gray. */
static double mark_luma(const uint8_t *p)
{
    return 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
}

static inline uint8_t add_clipped(uint8_t v, double amount)
{
    double t = v + floor(amount + 0.5);
    return t >= 255.0 ? 255 : (uint8_t)t;
}

int render_watermark_blend(struct ts_image *img, const struct ts_image *mark, double opacity,
                           int64_t x, int64_t y)
{
    if (!img || !img->data || !mark || !mark->data || mark->channels != 4 ||
        !fraction_ok(opacity) || img->channels < 1 || img->channels > 4)
        return TS_EINVAL;
    /* The part of the mark that lands on the image. */
    int64_t x0 = x < 0 ? -x : 0, y0 = y < 0 ? -y : 0;
    int64_t x1 = (int64_t)img->width - x, y1 = (int64_t)img->height - y;
    x1 = x1 < (int64_t)mark->width ? x1 : (int64_t)mark->width;
    y1 = y1 < (int64_t)mark->height ? y1 : (int64_t)mark->height;
    if (opacity == 0.0 || x0 >= x1 || y0 >= y1)
        return TS_OK;
    uint32_t n = img->channels;
    bool gray = n < 3;
    uint32_t colors = gray ? 1 : 3;
    for (int64_t my = y0; my < y1; my++) {
        const uint8_t *m = ts_image_row(mark, (uint32_t)my) + x0 * 4;
        uint8_t *d = ts_image_row(img, (uint32_t)(y + my)) + (x + x0) * n;
        for (int64_t mx = x0; mx < x1; mx++, m += 4, d += n) {
            if (!m[3])
                continue;
            double weight = m[3] / 255.0 * opacity;
            if (gray) {
                d[0] = add_clipped(d[0], mark_luma(m) * weight);
                continue;
            }
            for (uint32_t k = 0; k < colors; k++)
                d[k] = add_clipped(d[k], m[k] * weight);
        }
    }
    return TS_OK;
}

uint64_t render_watermark_seed(const void *identifier, size_t len, uint32_t page,
                               const struct ts_plan *plan)
{
    uint64_t h = ts_hash(TS_HASH_SEED, identifier, len);
    int64_t geometry[9] = {page,        plan->rx,     plan->ry,
                           plan->rw,    plan->rh,     plan->out_w,
                           plan->out_h, plan->mirror, (int64_t)llround(plan->rotation * 1000.0)};
    return ts_hash(h, geometry, sizeof geometry);
}

uint32_t render_watermark_block(const struct ts_watermark *wm, const struct ts_image_info *info)
{
    uint32_t tw = info && info->nlevels ? info->levels[0].tile_w : 0;
    uint32_t th = info && info->nlevels ? info->levels[0].tile_h : 0;
    uint32_t side = tw > th ? tw : th;
    if (!side || side > UINT32_MAX / 2)
        return wm->default_block ? wm->default_block : 1024;
    return 2 * side;
}

/* SplitMix64: each block draws from its own stream (seed and block number), so whether one
 * block is marked never depends on another, and the passthrough check need not place marks. */
static uint64_t next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double draw(uint64_t *state)
{
    return (double)(next(state) >> 11) * 0x1.0p-53;
}

static uint64_t block_stream(uint64_t seed, uint32_t bx, uint32_t by)
{
    uint64_t s = seed ^ ((uint64_t)by << 32 | bx) * 0xd6e8feb86659fd93ull;
    next(&s); /* stir, so neighbouring blocks start far apart */
    return s;
}

/* Does the block get a mark? The first draw of its stream decides. */
static bool block_marked(const struct ts_watermark *wm, uint64_t *stream)
{
    return draw(stream) < wm->probability;
}

/* Where in [0, room] the mark starts along one side of a block (room = block - mark side). */
static uint32_t place(uint64_t *stream, uint32_t block_len, uint32_t mark_len)
{
    if (block_len <= mark_len)
        return 0;
    uint32_t room = block_len - mark_len;
    uint32_t at = (uint32_t)(draw(stream) * ((double)room + 1.0));
    return at > room ? room : at;
}

bool render_watermark_marks(const struct ts_watermark *wm, uint64_t seed, uint32_t w, uint32_t h,
                            uint32_t block)
{
    if (!render_watermark_active(wm) || !w || !h || !block)
        return false;
    for (uint32_t by = 0; (uint64_t)by * block < h; by++)
        for (uint32_t bx = 0; (uint64_t)bx * block < w; bx++) {
            uint64_t s = block_stream(seed, bx, by);
            if (block_marked(wm, &s))
                return true;
        }
    return false;
}

int render_watermark_apply(struct ts_image *img, const struct ts_watermark *wm, uint64_t seed,
                           uint32_t block)
{
    if (!img || !img->data || !block)
        return TS_EINVAL;
    if (!render_watermark_active(wm))
        return TS_OK;
    for (uint32_t by = 0; (uint64_t)by * block < img->height; by++) {
        for (uint32_t bx = 0; (uint64_t)bx * block < img->width; bx++) {
            uint64_t s = block_stream(seed, bx, by);
            if (!block_marked(wm, &s))
                continue;
            uint64_t ox = (uint64_t)bx * block, oy = (uint64_t)by * block;
            uint32_t bw = img->width - ox < block ? (uint32_t)(img->width - ox) : block;
            uint32_t bh = img->height - oy < block ? (uint32_t)(img->height - oy) : block;
            uint32_t px = place(&s, bw, wm->mark.width);
            uint32_t py = place(&s, bh, wm->mark.height);
            /* A mark wider than its block is cut at the block's edge, not the image's. */
            struct ts_image view = *img;
            view.data = ts_image_row(img, (uint32_t)oy) + ox * img->channels;
            view.width = bw;
            view.height = bh;
            int rc = render_watermark_blend(&view, &wm->mark, wm->opacity, px, py);
            if (rc)
                return rc;
        }
    }
    return TS_OK;
}
