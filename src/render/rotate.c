/* Clockwise rotation by any angle onto a transparent canvas sized to the rotated bounding box. */
#include "render/render.h"

#include <math.h>
#include <string.h>

#define ROTATE_PI 3.14159265358979323846

/* Multiples of 90 get exact sines so that output pixel centres land exactly on source pixel
 * centres and the result equals a lossless quarter turn. */
static int rotate_sincos(double degrees, double *s, double *c)
{
    if (!isfinite(degrees))
        return TS_EINVAL;
    double d = fmod(degrees, 360.0);
    if (d < 0)
        d += 360.0;
    if (d == 0.0) {
        *s = 0.0;
        *c = 1.0;
    } else if (d == 90.0) {
        *s = 1.0;
        *c = 0.0;
    } else if (d == 180.0) {
        *s = 0.0;
        *c = -1.0;
    } else if (d == 270.0) {
        *s = -1.0;
        *c = 0.0;
    } else {
        double r = d * ROTATE_PI / 180.0;
        *s = sin(r);
        *c = cos(r);
    }
    return TS_OK;
}

/* IIIF 3.0 section 4.3: the returned image holds all of the rotated content with no extra
 * space around it, and the rounding method is left to the implementation. Rounding to nearest
 * (rather than ceil) keeps the "no additional space" rule: the antialiased edge already covers
 * the sub-pixel remainder, and ceil would add a blank row whenever the sum is a hair above an
 * integer. */
static uint32_t rotate_extent(double a, double b)
{
    double v = floor(fabs(a) + fabs(b) + 0.5);
    if (v < 1.0)
        return 1;
    if (v > (double)UINT32_MAX)
        return UINT32_MAX;
    return (uint32_t)v;
}

int render_rotate_extent(uint32_t w, uint32_t h, double degrees, uint32_t *out_w, uint32_t *out_h)
{
    double s, c;
    int rc = rotate_sincos(degrees, &s, &c);
    if (rc)
        return rc;
    *out_w = rotate_extent((double)w * c, (double)h * s);
    *out_h = rotate_extent((double)w * s, (double)h * c);
    return TS_OK;
}

struct rotate_acc {
    double alpha;  /* sum of weight * alpha, alpha in 0..1 */
    double col[3]; /* sum of weight * alpha * sample: premultiplied, so edges do not darken */
};

static void rotate_add(struct rotate_acc *acc, const struct ts_image *src, uint32_t colors,
                       bool has_alpha, long x, long y, double wt)
{
    if (wt <= 0.0 || x < 0 || y < 0 || x >= (long)src->width || y >= (long)src->height)
        return;
    const uint8_t *p = ts_image_row(src, (uint32_t)y) + (size_t)x * src->channels;
    double a = has_alpha ? p[colors] / 255.0 : 1.0;
    double wa = wt * a;
    acc->alpha += wa;
    for (uint32_t k = 0; k < colors; k++)
        acc->col[k] += wa * p[k];
}

static uint8_t rotate_clamp(double v)
{
    if (v <= 0.0)
        return 0;
    if (v >= 255.0)
        return 255;
    return (uint8_t)floor(v + 0.5);
}

/* Bilinear sample at (sx, sy) in source index space (pixel i's centre at i). Outside the source
 * counts as fully transparent, which gives a one-pixel antialiased ramp along the edges. */
static void rotate_sample(const struct ts_image *src, double sx, double sy, uint8_t *out)
{
    uint32_t colors = (src->channels >= 3) ? 3 : 1;
    bool has_alpha = (src->channels == 2 || src->channels == 4);
    memset(out, 0, colors + 1);
    if (sx <= -1.0 || sy <= -1.0 || sx >= (double)src->width || sy >= (double)src->height)
        return;
    double fx0 = floor(sx), fy0 = floor(sy);
    double fx = sx - fx0, fy = sy - fy0;
    long x0 = (long)fx0, y0 = (long)fy0;
    if (!has_alpha && x0 >= 0 && y0 >= 0 && x0 + 1 < (long)src->width &&
        y0 + 1 < (long)src->height) {
        /* The common case, well inside an opaque source: plain bilinear, no premultiplying. */
        uint32_t ch = src->channels;
        const uint8_t *p = ts_image_row(src, (uint32_t)y0) + (size_t)x0 * ch;
        const uint8_t *q = p + src->stride;
        for (uint32_t k = 0; k < colors; k++) {
            double top = p[k] + fx * (p[ch + k] - p[k]);
            double bot = q[k] + fx * (q[ch + k] - q[k]);
            out[k] = rotate_clamp(top + fy * (bot - top));
        }
        out[colors] = 255;
        return;
    }
    struct rotate_acc acc = {0};
    rotate_add(&acc, src, colors, has_alpha, x0, y0, (1.0 - fx) * (1.0 - fy));
    rotate_add(&acc, src, colors, has_alpha, x0 + 1, y0, fx * (1.0 - fy));
    rotate_add(&acc, src, colors, has_alpha, x0, y0 + 1, (1.0 - fx) * fy);
    rotate_add(&acc, src, colors, has_alpha, x0 + 1, y0 + 1, fx * fy);
    uint8_t a = rotate_clamp(acc.alpha * 255.0);
    if (a == 0)
        return;
    for (uint32_t k = 0; k < colors; k++)
        out[k] = rotate_clamp(acc.col[k] / acc.alpha);
    out[colors] = a;
}

int render_rotate_any(const struct ts_image *src, double degrees, struct ts_image *dst)
{
    double s, c;
    uint32_t ow, oh;
    dst->data = NULL;
    if (!src || !src->data || src->channels < 1 || src->channels > 4 || src->width == 0 ||
        src->height == 0)
        return TS_EINVAL;
    int rc = rotate_sincos(degrees, &s, &c);
    if (rc)
        return rc;
    rc = render_rotate_extent(src->width, src->height, degrees, &ow, &oh);
    if (rc)
        return rc;
    uint32_t out_ch = (src->channels >= 3) ? 4 : 2;
    rc = ts_image_alloc(dst, ow, oh, out_ch);
    if (rc)
        return rc;

    /* Inverse mapping: each output pixel centre, taken relative to the canvas centre, is turned
     * back (counter-clockwise in y-down space) onto the source around the source centre. */
    double ocx = ow / 2.0, ocy = oh / 2.0;
    double icx = src->width / 2.0 - 0.5, icy = src->height / 2.0 - 0.5;
    for (uint32_t oy = 0; oy < oh; oy++) {
        uint8_t *row = ts_image_row(dst, oy);
        double dy = oy + 0.5 - ocy;
        for (uint32_t ox = 0; ox < ow; ox++) {
            double dx = ox + 0.5 - ocx;
            double sx = dx * c + dy * s + icx;
            double sy = dy * c - dx * s + icy;
            rotate_sample(src, sx, sy, row + (size_t)ox * out_ch);
        }
    }
    return TS_OK;
}
