/* Plan -> pixels: pick the pyramid level, read, resample, apply quality, mirror and rotate. */
#include "render/render.h"
#include "image/rowtail.h"
#include "render/watermark.h"

#include <math.h>
#include <string.h>

/* Does `len` full-resolution pixels, at a level `lvl` pixels across out of `full`, still give
 * at least `want` pixels? Exact integer maths, so 1411 -> 706 ratios are judged correctly. */
static bool level_covers(uint32_t len, uint32_t lvl, uint32_t full, uint32_t want)
{
    return (uint64_t)len * lvl >= (uint64_t)want * full;
}

/* [start, start+len) of a full-resolution axis in a level's pixels, rounded outward and
 * clipped, never empty. */
static void level_span(uint32_t start, uint32_t len, uint32_t lvl, uint32_t full, uint32_t *o,
                       uint32_t *olen)
{
    uint64_t a = (uint64_t)start * lvl / full;
    uint64_t b = ((uint64_t)start + len) * lvl;
    b = b / full + (b % full != 0);
    if (b > lvl)
        b = lvl;
    if (a >= lvl)
        a = lvl - 1;
    if (b <= a)
        b = a + 1;
    *o = (uint32_t)a;
    *olen = (uint32_t)(b - a);
}

int render_choose_level(const struct ts_image_info *info, const struct ts_plan *plan,
                        struct ts_read_req *req)
{
    uint32_t fw, fh, best = 0;
    const struct ts_level *lv;

    if (!info || !plan || !req || info->nlevels < 1 || info->nlevels > TS_MAX_LEVELS)
        return TS_EINVAL;
    fw = info->levels[0].width;
    fh = info->levels[0].height;
    if (fw == 0 || fh == 0 || plan->rw == 0 || plan->rh == 0 || plan->out_w == 0 ||
        plan->out_h == 0 || plan->rx >= fw || plan->ry >= fh || plan->rw > fw - plan->rx ||
        plan->rh > fh - plan->ry)
        return TS_EINVAL;
    for (uint32_t i = 1; i < info->nlevels; i++) {
        lv = &info->levels[i];
        if (lv->width == 0 || lv->height == 0 || lv->width > fw || lv->height > fh)
            break;
        if (!level_covers(plan->rw, lv->width, fw, plan->out_w) ||
            !level_covers(plan->rh, lv->height, fh, plan->out_h))
            break;
        best = i;
    }
    lv = &info->levels[best];
    req->level = best;
    level_span(plan->rx, plan->rw, lv->width, fw, &req->x, &req->w);
    level_span(plan->ry, plan->rh, lv->height, fh, &req->y, &req->h);
    /* A reader that can shrink while decoding (JPEG DCT scaling) may go as far as the target. */
    req->min_w = plan->out_w < req->w ? plan->out_w : req->w;
    req->min_h = plan->out_h < req->h ? plan->out_h : req->h;
    req->layers = plan->layers;
    return TS_OK;
}

/* Replaces *cur with *next, freeing the old pixels. */
static void swap_in(struct ts_image *cur, struct ts_image *next)
{
    ts_image_free(cur);
    *cur = *next;
    next->data = NULL;
}

/* The exact plan region, in the delivered image's pixels: the read was rounded outward and
 * perhaps shrunk by the reader, so the region sits at a sub-pixel offset inside it. */
static void exact_rect(uint32_t start, uint32_t len, uint32_t full, uint32_t lvl, uint32_t rd0,
                       uint32_t rdlen, uint32_t got, double *s, double *slen)
{
    double k = (double)got / rdlen;
    double a = (double)start * lvl / full;
    double b = ((double)start + len) * lvl / full;
    *s = (a - rd0) * k;
    *slen = (b - a) * k;
    if (*s < 0.0)
        *s = 0.0;
    if (*s + *slen > got)
        *slen = got - *s;
}

/* The plan's region in a delivered got_w x got_h read of req, as exact_rect gives each axis. */
static void plan_rect(const struct ts_image_info *info, const struct ts_plan *plan,
                      const struct ts_read_req *req, uint32_t got_w, uint32_t got_h, double *sx,
                      double *sy, double *sw, double *sh)
{
    const struct ts_level *lv = &info->levels[req->level];
    exact_rect(plan->rx, plan->rw, info->levels[0].width, lv->width, req->x, req->w, got_w, sx, sw);
    exact_rect(plan->ry, plan->rh, info->levels[0].height, lv->height, req->y, req->h, got_h, sy,
               sh);
}

/* Output pixels read beyond the region on each side when the result is filtered: Lanczos3
 * reaches three output pixels out (three source pixels when enlarging), so with them the filter
 * sees the neighbours a larger request would see, and neighbouring tiles meet without a seam. */
#define READ_MARGIN 3u

/* True when [start, start+len) lands on whole level pixels and is shown at the level's size:
 * the read is then copied, not filtered, and needs no margin. */
static bool axis_is_copy(uint32_t start, uint32_t len, uint32_t lvl, uint32_t full, uint32_t out)
{
    uint64_t a = (uint64_t)start * lvl, b = ((uint64_t)start + len) * lvl;
    return a % full == 0 && b % full == 0 && b / full - a / full == out;
}

/* Widens one axis of the read by the margin, in level pixels (clipped to the level), and the
 * least size the reader may shrink to by the same proportion, so the region inside keeps its
 * resolution. */
static void widen_axis(uint32_t lvl, uint32_t out, uint32_t *o, uint32_t *len, uint32_t *min_len)
{
    uint64_t m64 = (uint64_t)READ_MARGIN * (*len > out ? *len : out);
    uint32_t m = (uint32_t)(m64 / out + (m64 % out != 0));
    uint32_t a = *o > m ? *o - m : 0;
    uint32_t b = lvl - (*o + *len) > m ? *o + *len + m : lvl;
    uint64_t least = ((uint64_t)*min_len * (b - a) + *len - 1) / *len;
    *min_len = least > b - a ? b - a : (uint32_t)least;
    *o = a;
    *len = b - a;
}

static void add_margin(const struct ts_image_info *info, const struct ts_plan *plan,
                       struct ts_read_req *req)
{
    const struct ts_level *lv = &info->levels[req->level];
    if (axis_is_copy(plan->rx, plan->rw, lv->width, info->levels[0].width, plan->out_w) &&
        axis_is_copy(plan->ry, plan->rh, lv->height, info->levels[0].height, plan->out_h))
        return;
    widen_axis(lv->width, plan->out_w, &req->x, &req->w, &req->min_w);
    widen_axis(lv->height, plan->out_h, &req->y, &req->h, &req->min_h);
}

/* Reads of more than this many bytes are done in horizontal bands, each scaled on its own into
 * its rows of the output, so a thumbnail of a huge unpyramided image never holds the whole
 * region in memory. */
#define RENDER_BAND_BYTES ((size_t)32 << 20)

static size_t read_bytes(const struct ts_read_req *req)
{
    size_t n;
    return ts_mul3_size(req->w, req->h, 4, &n) ? n : SIZE_MAX;
}

/* Rows of the output per band, so that each band's read stays near RENDER_BAND_BYTES; 0 when
 * the read is small enough to do at once (or banding cannot help: enlarging). */
static uint32_t band_rows(const struct ts_read_req *req, const struct ts_plan *plan)
{
    if (read_bytes(req) <= RENDER_BAND_BYTES || plan->out_h < 2 || req->h <= plan->out_h)
        return 0;
    double level_rows = (double)RENDER_BAND_BYTES / ((double)req->w * 4.0);
    double per_out = (double)req->h / plan->out_h; /* level rows per output row */
    double rows = level_rows / per_out - 8.0;      /* room for the filter's reach */
    if (rows < 1.0)
        rows = 1.0;
    return rows >= plan->out_h ? 0 : (uint32_t)rows;
}

/* What a read will cost, as the reader works it out from the header: SIZE_MAX for a read it
 * would refuse, so that admission refuses the request first. */
static size_t read_cost(struct ts_reader *reader, const struct ts_read_req *req)
{
    size_t bytes;
    return ts_reader_cost(reader, req, &bytes, NULL) == TS_OK ? bytes : SIZE_MAX;
}

static void band_span(const struct ts_image_info *info, const struct ts_plan *plan,
                      const struct ts_read_req *whole, uint32_t o0, uint32_t o1, double *top,
                      double *bottom, uint32_t *ra, uint32_t *rb);
static bool near_copy_req(const struct ts_image_info *info, const struct ts_plan *plan,
                          const struct ts_read_req *chosen, struct ts_read_req *req);

size_t render_peak_bytes(struct ts_reader *reader, const struct ts_plan *plan)
{
    const struct ts_image_info *info = &reader->info;
    struct ts_read_req req, near;
    size_t out_bytes;
    if (render_choose_level(info, plan, &req) != TS_OK)
        return 0;
    /* Up to three output-sized buffers besides the read (scaled, rotated, converted), and the
     * adjustments' two float images of up to three channels. */
    if (!ts_mul3_size(plan->out_w, plan->out_h, plan->adjust.on ? 12 + 24 : 12, &out_bytes))
        return SIZE_MAX;
    if (near_copy_req(info, plan, &req, &near))
        return ts_sat_add(read_cost(reader, &near), out_bytes);
    add_margin(info, plan, &req);
    uint32_t rows = band_rows(&req, plan);
    if (!rows)
        return ts_sat_add(read_cost(reader, &req), out_bytes);
    /* Bands are read one at a time: the costliest one, and its filter margin. A progressive
     * JPEG costs its whole image for every band, and that is what this finds. */
    size_t worst = 0;
    for (uint32_t o0 = 0; o0 < plan->out_h; o0 += rows) {
        uint32_t o1 = o0 + rows < plan->out_h ? o0 + rows : plan->out_h;
        double top, bottom;
        uint32_t a, b;
        band_span(info, plan, &req, o0, o1, &top, &bottom, &a, &b);
        struct ts_read_req band = req;
        band.y = a;
        band.h = b - a;
        size_t c = read_cost(reader, &band);
        worst = c > worst ? c : worst;
        if (worst == SIZE_MAX)
            break;
    }
    /* And the rows a reader keeps for the next band (the overlap: the filter's reach each
     * way and a box step). */
    double per_out = (double)req.h / plan->out_h;
    double keep = (7.0 * (per_out > 1.0 ? per_out : 1.0) + 6.0) * req.w * 4;
    size_t kept = keep < TS_ROWTAIL_MAX_BYTES ? (size_t)keep : TS_ROWTAIL_MAX_BYTES;
    return ts_sat_add(ts_sat_add(ts_sat_add(worst, (size_t)16 * req.w * 4), kept), out_bytes);
}

/* The level rows [*a, *b) the band of output rows [o0, o1) reads: the rows those output rows
 * need plus the filter's reach; *top and *bottom are the exact span of the output rows. */
static void band_span(const struct ts_image_info *info, const struct ts_plan *plan,
                      const struct ts_read_req *whole, uint32_t o0, uint32_t o1, double *top,
                      double *bottom, uint32_t *ra, uint32_t *rb)
{
    const struct ts_level *lv = &info->levels[whole->level];
    double fy = (double)lv->height / info->levels[0].height;
    double y0 = plan->ry * fy, h = plan->rh * fy, per_out = h / plan->out_h;
    double reach = 3.0 * (per_out > 1.0 ? per_out : 1.0) + 2.0;
    *top = y0 + o0 * per_out;
    *bottom = y0 + o1 * per_out;
    double a = floor(*top - reach), b = ceil(*bottom + reach);
    if (a < whole->y)
        a = whole->y;
    /* Start on the whole read's box grid, so the pre-shrink sums the same pixels together. */
    uint32_t k = render_box_factor(h, plan->out_h);
    a = whole->y + floor((a - whole->y) / k) * k;
    if (b > (double)whole->y + whole->h)
        b = (double)whole->y + whole->h;
    *ra = (uint32_t)a;
    *rb = (uint32_t)b;
}

/* Output rows [o0, o1) from their own read of the level, so every row comes out as a
 * whole-region render would; `rows` is the band height, for where the next band starts. */
static int scale_band(struct ts_reader *reader, const struct ts_plan *plan,
                      const struct ts_read_req *whole, uint32_t o0, uint32_t o1, uint32_t rows,
                      struct ts_image *out, struct ts_err *err)
{
    const struct ts_image_info *info = &reader->info;
    const struct ts_level *lv = &info->levels[whole->level];
    double top, bottom, ntop, nbottom;
    uint32_t a, b, na, nb;
    band_span(info, plan, whole, o0, o1, &top, &bottom, &a, &b);
    struct ts_read_req band = *whole;
    band.y = a;
    band.h = b - a;
    /* Bands overlap by the filter's reach: a reader that decodes from the top keeps the
     * overlap for the next band rather than decode those rows again. */
    if (o1 < plan->out_h) {
        band_span(info, plan, whole, o1, o1 + rows < plan->out_h ? o1 + rows : plan->out_h, &ntop,
                  &nbottom, &na, &nb);
        band.more = na >= a && na <= b;
        band.next_y = na;
    }
    band.min_h = (uint32_t)ceil((double)whole->min_h * band.h / whole->h);
    if (band.min_h > band.h)
        band.min_h = band.h;
    struct ts_image img = {0}, part = {0};
    int rc = ts_reader_read(reader, &band, &img, err);
    if (rc)
        return rc;
    if (!img.data || img.width == 0 || img.height == 0 || img.width > band.w ||
        img.height > band.h || img.channels != out->channels) {
        ts_image_free(&img);
        return ts_fail(err, TS_ECODEC, "reader %s delivered an unexpected band", reader->ops->name);
    }
    double kx = (double)img.width / band.w, ky = (double)img.height / band.h;
    double fx = (double)lv->width / info->levels[0].width;
    double sx = (plan->rx * fx - band.x) * kx, sw = plan->rw * fx * kx;
    double sy = (top - band.y) * ky, sh = (bottom - top) * ky;
    if (sx < 0.0)
        sx = 0.0;
    if (sx + sw > img.width)
        sw = img.width - sx;
    if (sy < 0.0)
        sy = 0.0;
    if (sy + sh > img.height)
        sh = img.height - sy;
    rc = render_resample_rect_mt(&img, sx, sy, sw, sh, plan->out_w, o1 - o0, plan->threads, &part);
    ts_image_free(&img);
    if (rc)
        return ts_fail(err, rc, "cannot resample a band to %ux%u", plan->out_w, o1 - o0);
    for (uint32_t y = 0; y < part.height; y++)
        memcpy(ts_image_row(out, o0 + y), ts_image_row(&part, y),
               (size_t)part.width * part.channels);
    ts_image_free(&part);
    return TS_OK;
}

static int read_in_bands(struct ts_reader *reader, const struct ts_plan *plan,
                         const struct ts_read_req *req, uint32_t rows, struct ts_image *out,
                         struct ts_err *err)
{
    int rc = ts_image_alloc(out, plan->out_w, plan->out_h, reader->info.channels);
    if (rc)
        return ts_fail(err, rc, "cannot allocate %ux%u", plan->out_w, plan->out_h);
    for (uint32_t o0 = 0; o0 < plan->out_h; o0 += rows) {
        uint32_t o1 = o0 + rows < plan->out_h ? o0 + rows : plan->out_h;
        rc = ts_cancel_check(req->cancel, err);
        if (rc == TS_OK)
            rc = scale_band(reader, plan, req, o0, o1, rows, out, err);
        if (rc) {
            ts_image_free(out);
            return rc;
        }
    }
    return TS_OK;
}

/* A tile of a power-of-two level whose size was rounded differently from the request (vips
 * and most tools floor level sizes, IIIF tile requests use ceilings): start/len at scale k
 * lands on whole level pixels [*o, *o + *n), at most one pixel short of out at the image's
 * edge. Serving those pixels as they are costs a half-pixel of registration at the far
 * edge, which no viewer can show, and saves a filter pass over several tiles. */
static bool axis_near_copy(uint32_t start, uint32_t len, uint32_t lvl, uint32_t full, uint32_t out,
                           uint32_t *o, uint32_t *n)
{
    uint32_t k = (full + lvl / 2) / lvl;
    if (k < 2 || (k & (k - 1)) != 0 || (lvl != full / k && lvl != (full + k - 1) / k))
        return false;
    if (start % k != 0 || (uint64_t)out * k < len || (uint64_t)out * k >= (uint64_t)len + k)
        return false; /* not on the grid, or not scaled by k with IIIF's ceiling */
    *o = start / k;
    if (*o >= lvl)
        return false;
    *n = out;
    if (*o + *n > lvl)
        *n = lvl - *o;
    return *n + 1 >= out;
}

/* Copies img into a fresh w x h image, repeating the last row and column where it is short. */
static int pad_to(const struct ts_image *img, uint32_t w, uint32_t h, struct ts_image *out)
{
    int rc = ts_image_alloc(out, w, h, img->channels);
    if (rc)
        return rc;
    size_t px = img->channels;
    for (uint32_t y = 0; y < h; y++) {
        const uint8_t *src = ts_image_row(img, y < img->height ? y : img->height - 1);
        uint8_t *dst = ts_image_row(out, y);
        uint32_t cw = img->width < w ? img->width : w;
        memcpy(dst, src, cw * px);
        for (uint32_t x = cw; x < w; x++)
            memcpy(dst + x * px, src + (cw - 1) * px, px);
    }
    return TS_OK;
}

/* The read of the near-copy path, false when the plan is not such a tile. */
static bool near_copy_req(const struct ts_image_info *info, const struct ts_plan *plan,
                          const struct ts_read_req *chosen, struct ts_read_req *req)
{
    *req = *chosen;
    /* The level choice may have passed over this level for being a pixel short. */
    uint32_t l;
    for (l = 1; l < info->nlevels; l++) {
        const struct ts_level *lv = &info->levels[l];
        if (axis_near_copy(plan->rx, plan->rw, lv->width, info->levels[0].width, plan->out_w,
                           &req->x, &req->w) &&
            axis_near_copy(plan->ry, plan->rh, lv->height, info->levels[0].height, plan->out_h,
                           &req->y, &req->h))
            break;
    }
    if (l >= info->nlevels)
        return false;
    req->level = l;
    req->min_w = req->w; /* these pixels, not fewer */
    req->min_h = req->h;
    return true;
}

/* The near-copy path: TS_DECLINED when the plan is not such a tile. */
static int read_near_copy(struct ts_reader *reader, const struct ts_plan *plan,
                          const struct ts_read_req *chosen, struct ts_image *out,
                          struct ts_err *err)
{
    const struct ts_image_info *info = &reader->info;
    struct ts_read_req req;
    if (!near_copy_req(info, plan, chosen, &req))
        return TS_DECLINED;
    struct ts_image img = {0};
    int rc = ts_reader_read(reader, &req, &img, err);
    if (rc)
        return rc;
    if (img.width != req.w || img.height != req.h) {
        ts_image_free(&img);
        return ts_fail(err, TS_ECODEC, "reader %s delivered an unexpected %ux%u image",
                       reader->ops->name, img.width, img.height);
    }
    if (img.width == plan->out_w && img.height == plan->out_h) {
        *out = img;
        return TS_OK;
    }
    rc = pad_to(&img, plan->out_w, plan->out_h, out);
    ts_image_free(&img);
    return rc ? ts_fail(err, rc, "cannot allocate %ux%u", plan->out_w, plan->out_h) : TS_OK;
}

static int read_and_scale(struct ts_reader *reader, const struct ts_plan *plan,
                          struct ts_cancel *cancel, struct ts_image *out, struct ts_err *err)
{
    struct ts_read_req req = {0};
    struct ts_image img = {0}, tmp = {0};
    const struct ts_image_info *info = &reader->info;
    double sx, sy, sw, sh;
    int rc;

    rc = render_choose_level(info, plan, &req);
    if (rc)
        return ts_fail(err, rc, "region %u,%u,%u,%u does not fit the image %ux%u", plan->rx,
                       plan->ry, plan->rw, plan->rh, info->levels[0].width, info->levels[0].height);
    req.cancel = cancel;
    req.threads = plan->threads;
    rc = read_near_copy(reader, plan, &req, out, err);
    if (rc != TS_DECLINED)
        return rc;
    add_margin(info, plan, &req);
    uint32_t rows = band_rows(&req, plan);
    if (rows)
        return read_in_bands(reader, plan, &req, rows, out, err);
    rc = ts_reader_read(reader, &req, &img, err);
    if (rc)
        return rc;
    if (!img.data || img.width == 0 || img.height == 0 || img.width > req.w || img.height > req.h ||
        img.channels < 1 || img.channels > 4) {
        ts_image_free(&img);
        return ts_fail(err, TS_ECODEC, "reader %s delivered an unexpected %ux%u image for %ux%u",
                       reader->ops->name, img.width, img.height, req.w, req.h);
    }
    plan_rect(info, plan, &req, img.width, img.height, &sx, &sy, &sw, &sh);
    if (sx != 0.0 || sy != 0.0 || sw != plan->out_w || sh != plan->out_h ||
        img.width != plan->out_w || img.height != plan->out_h) {
        rc = render_resample_rect_mt(&img, sx, sy, sw, sh, plan->out_w, plan->out_h, plan->threads,
                                     &tmp);
        if (rc) {
            ts_image_free(&img);
            return ts_fail(err, rc, "cannot resample %ux%u to %ux%u", img.width, img.height,
                           plan->out_w, plan->out_h);
        }
        swap_in(&img, &tmp);
    }
    *out = img;
    return TS_OK;
}

/* The plan as it would go through render_execute, kept in the planes a JPEG stores: luma and
 * each chroma plane resampled on their own, chroma over the same region at half the density,
 * for an output whose 4:2:0 chroma grid pairs its pixels as the encoder's would. */
static int scale_ycc(const struct ts_image_info *info, const struct ts_plan *plan,
                     const struct ts_read_req *req, struct ts_ycc *img, struct ts_ycc *out)
{
    double sx, sy, sw, sh;
    plan_rect(info, plan, req, img->y.width, img->y.height, &sx, &sy, &sw, &sh);
    uint32_t cw = plan->out_w / 2 + plan->out_w % 2, ch = plan->out_h / 2 + plan->out_h % 2;
    /* Output chroma sample i covers output pixels 2i and 2i + 1: with an odd size the last one
     * reaches half a pixel past the region, as far as the read holds. */
    double csx = sx / 2.0, csy = sy / 2.0;
    double csw = sw * cw / plan->out_w, csh = sh * ch / plan->out_h;
    if (csx + csw > img->cb.width)
        csw = img->cb.width - csx;
    if (csy + csh > img->cb.height)
        csh = img->cb.height - csy;
    out->y.data = out->cb.data = out->cr.data = NULL;
    int rc = render_resample_rect_mt(&img->y, sx, sy, sw, sh, plan->out_w, plan->out_h,
                                     plan->threads, &out->y);
    rc =
        rc ? rc
           : render_resample_rect_mt(&img->cb, csx, csy, csw, csh, cw, ch, plan->threads, &out->cb);
    rc =
        rc ? rc
           : render_resample_rect_mt(&img->cr, csx, csy, csw, csh, cw, ch, plan->threads, &out->cr);
    if (rc)
        ts_ycc_free(out);
    return rc;
}

int render_execute_ycc(struct ts_reader *reader, const struct ts_plan *plan,
                       struct ts_cancel *cancel, struct ts_ycc *out, struct ts_err *err)
{
    struct ts_read_req req = {0}, copy;
    const struct ts_image_info *info = &reader->info;
    out->y.data = out->cb.data = out->cr.data = NULL;
    /* Only what the planes carry unchanged to a JPEG: colour, no adjustment, no turn or flip,
     * no mark; and reads done at once, not in bands or as a near copy. */
    if (plan->format != TS_FORMAT_JPG ||
        (plan->quality != TS_QUALITY_DEFAULT && plan->quality != TS_QUALITY_COLOR) ||
        plan->adjust.on || plan->mirror || plan->rotation != 0.0 || plan->watermark ||
        info->channels != 3 || render_choose_level(info, plan, &req) != TS_OK ||
        near_copy_req(info, plan, &req, &copy))
        return TS_DECLINED;
    add_margin(info, plan, &req);
    if (band_rows(&req, plan))
        return TS_DECLINED;
    /* Chroma pairs luma from even rows and columns. */
    req.w += req.x % 2, req.x -= req.x % 2;
    req.h += req.y % 2, req.y -= req.y % 2;
    req.cancel = cancel;
    req.threads = plan->threads;
    struct ts_ycc img;
    int rc = ts_reader_read_ycc(reader, &req, &img, err);
    if (rc)
        return rc;
    if (img.y.width != req.w || img.y.height != req.h) {
        ts_ycc_free(&img);
        return ts_fail(err, TS_ECODEC, "reader %s delivered an unexpected %ux%u image for %ux%u",
                       reader->ops->name, img.y.width, img.y.height, req.w, req.h);
    }
    rc = ts_cancel_check(cancel, err);
    if (rc == TS_OK && (rc = scale_ycc(info, plan, &req, &img, out)) != TS_OK)
        rc = ts_fail(err, rc, "cannot resample %ux%u to %ux%u", req.w, req.h, plan->out_w,
                     plan->out_h);
    ts_ycc_free(&img);
    return rc;
}

/* 0, 90, 180 or 270 for quarter turns (360 counts as 0); -1 for anything else. */
static int quarter_turn(double rotation)
{
    if (!isfinite(rotation))
        return -1;
    double r = fmod(rotation, 360.0);
    if (r < 0.0)
        r += 360.0;
    if (r == 0.0 || r == 90.0 || r == 180.0 || r == 270.0)
        return (int)r;
    return -1;
}

int render_execute(struct ts_reader *reader, const struct ts_plan *plan, struct ts_cancel *cancel,
                   struct ts_image *out, struct ts_err *err)
{
    struct ts_image img = {0}, tmp = {0};
    int turn, rc;

    out->data = NULL;
    if (!reader || !plan)
        return ts_fail(err, TS_EINVAL, "render: missing reader or plan");
    turn = quarter_turn(plan->rotation);
    rc = read_and_scale(reader, plan, cancel, &img, err);
    if (rc)
        return rc;
    /* The steps below take a fraction of the read's time: one look before them is enough. */
    if ((rc = ts_cancel_check(cancel, err)) != TS_OK) {
        ts_image_free(&img);
        return rc;
    }
    /* Adjustments are per pixel too, except a convolution, which iipsrv applies to the tile
     * as stored, before any flip or turn: here likewise, before mirror and rotation. */
    if (plan->adjust.on) {
        rc = render_adjust(&img, &plan->adjust, &tmp);
        if (rc)
            goto fail;
        swap_in(&img, &tmp);
    }
    /* Quality is per pixel, so it commutes with mirror and rotation; doing it first means the
     * geometric steps move fewer channels. */
    bool changes_channels = plan->quality == TS_QUALITY_BITONAL ||
                            (plan->quality == TS_QUALITY_GRAY && img.channels >= 3);
    if (changes_channels) {
        rc = render_quality(&img, plan->quality, &tmp);
        if (rc)
            goto fail;
        swap_in(&img, &tmp);
    }
    if (plan->mirror) {
        rc = render_mirror(&img);
        if (rc)
            goto fail;
    }
    if (turn < 0) {
        /* Any other angle: the canvas grows to the bounding box, transparent outside the
         * picture (the JPEG encoder flattens that onto white). */
        rc = render_rotate_any(&img, plan->rotation, &tmp);
        if (rc)
            goto fail;
        swap_in(&img, &tmp);
    } else if (turn != 0) {
        rc = render_rotate90(&img, turn, &tmp);
        if (rc)
            goto fail;
        swap_in(&img, &tmp);
    }
    /* Last, as in iipsrv: the mark sits upright on what the client sees, unfiltered. */
    if (plan->watermark) {
        rc = render_watermark_apply(&img, plan->watermark, plan->watermark_seed,
                                    render_watermark_block(plan->watermark, &reader->info));
        if (rc)
            goto fail;
    }
    *out = img;
    return TS_OK;

fail:
    ts_image_free(&img);
    return ts_fail(err, rc, "render: transform failed (%s)", ts_status_name(rc));
}
