/* IIIF request + image size -> render plan (region, output size, rotation), and canonical URIs. */
#include "protocol/iiif_plan.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define PIXEL_MAX 2147483647u

/* Limits as clients read them: a maxWidth without maxHeight means maxHeight = maxWidth
 * (3.0 section 5.2, 2.1 section 5.3); 0 stays "no limit". */
struct limits {
    uint64_t w, h, area;
};

static struct limits effective_limits(const struct ts_limits *opt)
{
    struct limits l = {opt->max_width, opt->max_height, opt->max_area};
    if (l.h == 0)
        l.h = l.w;
    /* Nothing can exceed 2^31-1 pixels anyway; the cap keeps products below 2^64. */
    if (l.w > PIXEL_MAX)
        l.w = PIXEL_MAX;
    if (l.h > PIXEL_MAX)
        l.h = PIXEL_MAX;
    return l;
}

/* round(a * num / den), half up, exact in integers; a, num < 2^32 so a*num*2 fits. */
static uint64_t mul_div_round(uint64_t a, uint64_t num, uint64_t den)
{
    return (a * num * 2 + den) / (2 * den);
}

/* The dimension that follows from the other through the region's aspect ratio. At least one
 * pixel: a thin region scaled down keeps a one-pixel edge rather than failing (a 2.1 viewer
 * asking "256," for a 2048x1 edge strip must get an image). */
static uint64_t derived_dim(uint64_t given, uint64_t given_region, uint64_t other_region)
{
    uint64_t v = mul_div_round(other_region, given, given_region);
    return v ? v : 1;
}

/* Half-up rounding of a percentage edge, with a little slack for the binary representation
 * of decimals (41.6 % of 300 = 124.8 must not flip on the last bit). */
static double round_edge(double v)
{
    return floor(v + 0.5 + 1e-7);
}

static int plan_region(const struct iiif_request *req, uint32_t W, uint32_t H, struct ts_plan *p,
                       struct ts_err *err)
{
    double x, y, x1, y1;
    switch (req->region) {
    case IIIF_REGION_FULL:
        p->rx = p->ry = 0;
        p->rw = W;
        p->rh = H;
        return TS_OK;
    case IIIF_REGION_SQUARE: {
        uint32_t s = W < H ? W : H;
        /* Centred in the longer dimension, as the spec suggests. */
        p->rx = (W - s) / 2;
        p->ry = (H - s) / 2;
        p->rw = p->rh = s;
        return TS_OK;
    }
    case IIIF_REGION_PIXELS:
        x = req->region_v[0];
        y = req->region_v[1];
        x1 = x + req->region_v[2];
        y1 = y + req->region_v[3];
        break;
    case IIIF_REGION_PERCENT:
        /* Each edge is rounded on its own, so that adjacent pct regions share their edges
         * (no gap, no overlap); pct:41.6,7.5,40,70 of 300x200 gives 125,15,120,140, the same
         * picture as the spec's pixel example. */
        x = round_edge(req->region_v[0] * W / 100.0);
        y = round_edge(req->region_v[1] * H / 100.0);
        x1 = round_edge((req->region_v[0] + req->region_v[2]) * W / 100.0);
        y1 = round_edge((req->region_v[1] + req->region_v[3]) * H / 100.0);
        break;
    default: return ts_fail(err, TS_EINVAL, "unknown region kind");
    }
    if (!(x1 > x) || !(y1 > y))
        return ts_fail(err, TS_EINVAL, "region has zero width or height");
    if (x >= W || y >= H)
        return ts_fail(err, TS_EINVAL, "region lies outside the %ux%u image", W, H);
    /* Cropped at the image edge rather than padded (spec: SHOULD). */
    if (x1 > W)
        x1 = W;
    if (y1 > H)
        y1 = H;
    p->rx = (uint32_t)x;
    p->ry = (uint32_t)y;
    p->rw = (uint32_t)(x1 - x);
    p->rh = (uint32_t)(y1 - y);
    return TS_OK;
}

static bool within_limits(uint64_t w, uint64_t h, const struct limits *l)
{
    return (!l->w || w <= l->w) && (!l->h || h <= l->h) && (!l->area || w * h <= l->area);
}

/* The largest size with the aspect ratio of w x h that fits the limits; never above w x h
 * unless grow (^max). Follows the implementation notes' "maximum size calculation", with the
 * rounded-off dimension recomputed from the binding limit so it does not drift. */
static int fit_limits(uint64_t w, uint64_t h, const struct limits *l, bool grow, uint64_t *ow,
                      uint64_t *oh, struct ts_err *err)
{
    double s = grow ? INFINITY : 1.0;
    int bind = 0; /* 0 none, 1 width, 2 height, 3 area */
    if (l->w && (double)l->w / (double)w < s) {
        s = (double)l->w / (double)w;
        bind = 1;
    }
    if (l->h && (double)l->h / (double)h < s) {
        s = (double)l->h / (double)h;
        bind = 2;
    }
    if (l->area && sqrt((double)l->area / ((double)w * (double)h)) < s) {
        s = sqrt((double)l->area / ((double)w * (double)h));
        bind = 3;
    }
    switch (bind) {
    case 0: /* no limits at all, or none tighter than the region */
        *ow = w;
        *oh = h;
        break;
    case 1:
        *ow = l->w;
        *oh = derived_dim(l->w, w, h);
        break;
    case 2:
        *oh = l->h;
        *ow = derived_dim(l->h, h, w);
        break;
    default:
        *ow = (uint64_t)floor((double)w * s);
        *oh = (uint64_t)floor((double)h * s);
        if (*ow == 0)
            *ow = 1;
        if (*oh == 0)
            *oh = 1;
        break;
    }
    /* Rounding may overshoot a second limit by a pixel; shave it off. */
    if (l->w && *ow > l->w)
        *ow = l->w;
    if (l->h && *oh > l->h)
        *oh = l->h;
    if (l->area && *ow * *oh > l->area) {
        if (*ow >= *oh)
            *ow = l->area / *oh;
        else
            *oh = l->area / *ow;
    }
    if (*ow == 0 || *oh == 0)
        return ts_fail(err, TS_EINVAL, "no size of the region fits the server's limits");
    if (!within_limits(*ow, *oh, l))
        return ts_fail(err, TS_EINVAL, "no size of the region fits the server's limits");
    return TS_OK;
}

/* "!w,h": as large as possible within w x h keeping the region's aspect ratio. */
static void best_fit(uint64_t bw, uint64_t bh, uint64_t rw, uint64_t rh, uint64_t *ow, uint64_t *oh)
{
    if (bw * rh <= bh * rw) { /* the width binds */
        *ow = bw;
        *oh = derived_dim(bw, rw, rh);
        if (*oh > bh)
            *oh = bh;
    } else {
        *oh = bh;
        *ow = derived_dim(bh, rh, rw);
        if (*ow > bw)
            *ow = bw;
    }
}

static int plan_size(const struct iiif_request *req, const struct ts_limits *opt, struct ts_plan *p,
                     struct ts_err *err)
{
    const uint64_t rw = p->rw, rh = p->rh;
    const struct limits lim = effective_limits(opt);
    /* 3.0 refuses growth without '^'; 2.1 and 1.1 allow scaling above the region. A server
     * that does not upscale (no_upscaling) answers every growth as not implemented. */
    const bool may_grow = req->version < 3 || req->upscale;
    const bool grow_max = req->upscale && !opt->no_upscaling;
    uint64_t w = 0, h = 0;

    switch (req->size) {
    case IIIF_SIZE_FULL:
        /* 2.1 and 1.1: "full" is the region's own size, never another; beyond the limits
         * info.json states, 2.1 section 5.3 has clients expect a refusal ("max" is the size
         * that fits). */
        if (!within_limits(rw, rh, &lim))
            return ts_fail(err, TS_EINVAL,
                           "full size %llux%llu is above the server's limits; ask for max or a "
                           "smaller size",
                           (unsigned long long)rw, (unsigned long long)rh);
        p->out_w = (uint32_t)rw;
        p->out_h = (uint32_t)rh;
        return TS_OK;
    case IIIF_SIZE_MAX: {
        /* The server's limits shrink max instead of failing it (and ^max grows to them;
         * without limits ^max is max). */
        int rc = fit_limits(rw, rh, &lim, grow_max, &w, &h, err);
        if (rc != TS_OK)
            return rc;
        p->out_w = (uint32_t)w;
        p->out_h = (uint32_t)h;
        p->size_max = true;
        p->size_upscale = grow_max;
        return TS_OK;
    }
    case IIIF_SIZE_W:
        w = req->size_w;
        h = derived_dim(w, rw, rh);
        break;
    case IIIF_SIZE_H:
        h = req->size_h;
        w = derived_dim(h, rh, rw);
        break;
    case IIIF_SIZE_WH:
        w = req->size_w;
        h = req->size_h;
        break;
    case IIIF_SIZE_PCT: {
        if (req->version >= 3 && !req->upscale && req->size_pct > 100.0)
            return ts_fail(err, TS_EINVAL, "pct:%g is above 100 without '^'", req->size_pct);
        double fw = floor(rw * req->size_pct / 100.0 + 0.5);
        double fh = floor(rh * req->size_pct / 100.0 + 0.5);
        if (fw > PIXEL_MAX || fh > PIXEL_MAX)
            return ts_fail(err, TS_EINVAL, "pct:%g makes an image too large", req->size_pct);
        w = (uint64_t)fw;
        h = (uint64_t)fh;
        break;
    }
    case IIIF_SIZE_BEST_FIT: {
        uint64_t bw = req->size_w, bh = req->size_h;
        best_fit(bw, bh, rw, rh, &w, &h);
        /* "as large as possible but not larger than the region (without '^'), w, h, or
         * server-imposed limits": both caps shrink, neither fails. */
        bool capped = opt->no_upscaling || (!req->upscale && req->version >= 3);
        if (capped && (w > rw || h > rh)) {
            w = rw;
            h = rh;
        }
        if (!within_limits(w, h, &lim)) {
            int rc = fit_limits(w, h, &lim, false, &w, &h, err);
            if (rc != TS_OK)
                return rc;
        }
        break;
    }
    default: return ts_fail(err, TS_EINVAL, "unknown size kind");
    }

    if (w == 0 || h == 0)
        return ts_fail(err, TS_EINVAL, "size makes an image of zero pixels");
    if (!may_grow && (w > rw || h > rh))
        return ts_fail(err, TS_EINVAL,
                       "size %llux%llu is larger than the %llux%llu region; use '^' to upscale",
                       (unsigned long long)w, (unsigned long long)h, (unsigned long long)rw,
                       (unsigned long long)rh);
    if (opt->no_upscaling && (w > rw || h > rh))
        return ts_fail(err, TS_EUNSUPPORTED,
                       "size %llux%llu is larger than the %llux%llu region, and this server "
                       "does not upscale",
                       (unsigned long long)w, (unsigned long long)h, (unsigned long long)rw,
                       (unsigned long long)rh);
    if (w > PIXEL_MAX || h > PIXEL_MAX || !within_limits(w, h, &lim))
        return ts_fail(err, TS_EINVAL, "size %llux%llu is above the server's limits",
                       (unsigned long long)w, (unsigned long long)h);
    p->out_w = (uint32_t)w;
    p->out_h = (uint32_t)h;
    return TS_OK;
}

int iiif_plan(const struct iiif_request *req, uint32_t img_w, uint32_t img_h,
              const struct ts_limits *opt, struct ts_plan *out, struct ts_err *err)
{
    struct ts_plan p;
    memset(&p, 0, sizeof p);
    if (img_w == 0 || img_h == 0 || img_w > PIXEL_MAX || img_h > PIXEL_MAX)
        return ts_fail(err, TS_EINVAL, "image of %ux%u pixels cannot be served", img_w, img_h);
    p.img_w = img_w;
    p.img_h = img_h;

    int rc = plan_region(req, img_w, img_h, &p, err);
    if (rc == TS_OK)
        rc = plan_size(req, opt, &p, err);
    if (rc != TS_OK)
        return rc;

    if (!(req->rotation >= 0.0 && req->rotation <= 360.0))
        return ts_fail(err, TS_EINVAL, "rotation %g is outside 0..360", req->rotation);
    p.rotation = req->rotation == 360.0 ? 0.0 : req->rotation;
    if (fmod(p.rotation, 90.0) != 0.0 && !opt->rotation_arbitrary)
        return ts_fail(err, TS_EUNSUPPORTED,
                       "rotation by %g degrees is not supported; use a "
                       "multiple of 90",
                       p.rotation);
    p.mirror = req->mirror;
    p.quality = req->quality;
    if (req->ext_quality != IIIF_EXT_NONE) {
        /* Off, they are qualities like any other this server does not know. */
        if (!opt->iiif_extensions)
            return ts_fail(err, TS_EINVAL, "unknown quality '%s'",
                           iiif_ext_quality_name(req->ext_quality));
        p.adjust.on = true;
        p.adjust.gamma = 1.0f;
        p.adjust.contrast = 1.0f;
        p.adjust.invert = req->ext_quality == IIIF_EXT_NEGATIVE;
        p.adjust.stretch = req->ext_quality == IIIF_EXT_STRETCH;
        p.adjust.equalize = req->ext_quality == IIIF_EXT_EQUALIZATION;
        p.adjust.log = req->ext_quality == IIIF_EXT_LOG;
    }

    if ((unsigned)req->format >= TS_FORMAT_COUNT)
        return ts_fail(err, TS_EINVAL, "unknown format");
    /* The spec: "A format value that is unsupported SHOULD result in a 400". */
    if (!(opt->formats & (1u << req->format)))
        return ts_fail(err, req->version == 1 ? TS_EMEDIA : TS_EINVAL,
                       "format '%s' is not supported by this server", ts_format_ext(req->format));
    p.format = req->format;
    *out = p;
    return TS_OK;
}

/* Shortest decimal that reads back (with the URL parser) to the same value; no trailing
 * zeros, a leading 0 below 1 (3.0 section 4.7, 2.1 canonical rotation). */
static int format_decimal(double v, char *out, size_t out_size)
{
    for (int prec = 0; prec <= 17; prec++) {
        int n = snprintf(out, out_size, "%.*f", prec, v);
        if (n < 0 || (size_t)n >= out_size)
            return TS_EINVAL;
        double back;
        if (iiif_parse_decimal(out, (size_t)n, &back) && back == v) {
            if (prec > 0) {
                while (n > 1 && out[n - 1] == '0')
                    out[--n] = '\0';
                if (out[n - 1] == '.')
                    out[--n] = '\0';
            }
            return TS_OK;
        }
    }
    return TS_EINVAL;
}

static const char *quality_name(int version, const struct ts_plan *plan)
{
    /* The extension qualities are the only way a IIIF plan gets these adjustments. */
    if (plan->adjust.on)
        return plan->adjust.invert     ? "negative"
               : plan->adjust.stretch  ? "stretch"
               : plan->adjust.equalize ? "equalization"
                                       : "log";
    switch (plan->quality) {
    case TS_QUALITY_COLOR: return "color";
    case TS_QUALITY_GRAY: return version == 1 ? "grey" : "gray";
    case TS_QUALITY_BITONAL: return "bitonal";
    default: return version == 1 ? "native" : "default";
    }
}

/* Canonical forms: 3.0 section 4.8, 2.1 section 4.7 (1.1 has none; it gets the 2.1 rules with
 * its own quality names). The size is chosen so that the canonical URI, parsed and planned
 * again, yields the same output size:
 *   3.0: "max" when the output is the region's size, "w,h" below it, "^w,h" above it. A max
 *        shrunk by server limits comes out as "w,h" since the plan does not carry the limits.
 *   2.1/1.1: "full" when the output is the region's size, "w," when the height follows from
 *        the width through the aspect ratio, "w,h" for a distorted size. */
int iiif_canonical(int version, const struct ts_plan *plan, char *out, size_t out_size)
{
    char region[64], size[64], rot[48];
    int n;
    if (plan->rx == 0 && plan->ry == 0 && plan->rw == plan->img_w && plan->rh == plan->img_h)
        n = snprintf(region, sizeof region, "full");
    else
        n = snprintf(region, sizeof region, "%u,%u,%u,%u", plan->rx, plan->ry, plan->rw, plan->rh);
    if (n < 0 || (size_t)n >= sizeof region)
        return TS_EINVAL;

    bool same = plan->out_w == plan->rw && plan->out_h == plan->rh;
    if (version >= 3) {
        bool grows = plan->out_w > plan->rw || plan->out_h > plan->rh;
        /* "max if the maximum size without upscaling is requested, ^max if the maximum
         * upscaled size is requested" (3.0 section 4.8), whatever limits made of it. */
        if (plan->size_upscale && grows)
            n = snprintf(size, sizeof size, "^max");
        else if (same || plan->size_max)
            n = snprintf(size, sizeof size, "max");
        else
            n = snprintf(size, sizeof size, "%s%u,%u", grows ? "^" : "", plan->out_w, plan->out_h);
    } else if (same) {
        n = snprintf(size, sizeof size, "full");
    } else if (derived_dim(plan->out_w, plan->rw, plan->rh) == plan->out_h) {
        n = snprintf(size, sizeof size, "%u,", plan->out_w);
    } else {
        n = snprintf(size, sizeof size, "%u,%u", plan->out_w, plan->out_h);
    }
    if (n < 0 || (size_t)n >= sizeof size)
        return TS_EINVAL;

    rot[0] = '!';
    size_t off = plan->mirror && version >= 2 ? 1 : 0;
    if (format_decimal(plan->rotation, rot + off, sizeof rot - off) != TS_OK)
        return TS_EINVAL;

    n = snprintf(out, out_size, "%s/%s/%s/%s.%s", region, size, rot, quality_name(version, plan),
                 ts_format_ext(plan->format));
    if (n < 0 || (size_t)n >= out_size)
        return TS_EINVAL;
    return TS_OK;
}
