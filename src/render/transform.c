/* Pixel-exact transforms after resampling: mirror, quarter-turn rotation, gray and bitonal. */
#include "render/render.h"

#include <string.h>

int render_mirror(struct ts_image *img)
{
    uint32_t ch;

    if (!img || !img->data || img->channels < 1 || img->channels > 4)
        return TS_EINVAL;
    ch = img->channels;
    for (uint32_t y = 0; y < img->height; y++) {
        uint8_t *l = ts_image_row(img, y);
        uint8_t *r = l + (size_t)(img->width - 1) * ch;
        for (; l < r; l += ch, r -= ch) {
            for (uint32_t c = 0; c < ch; c++) {
                uint8_t t = l[c];
                l[c] = r[c];
                r[c] = t;
            }
        }
    }
    return TS_OK;
}

/* Walk the destination in square blocks so reads from the source stay in cache. */
#define ROT_BLOCK 64

static void rotate_quarter(const struct ts_image *src, int degrees, struct ts_image *dst)
{
    uint32_t ch = src->channels;
    uint32_t sw = src->width, sh = src->height;

    for (uint32_t by = 0; by < dst->height; by += ROT_BLOCK) {
        uint32_t ey = by + ROT_BLOCK < dst->height ? by + ROT_BLOCK : dst->height;
        for (uint32_t bx = 0; bx < dst->width; bx += ROT_BLOCK) {
            uint32_t ex = bx + ROT_BLOCK < dst->width ? bx + ROT_BLOCK : dst->width;
            for (uint32_t y = by; y < ey; y++) {
                uint8_t *d = ts_image_row(dst, y) + (size_t)bx * ch;
                for (uint32_t x = bx; x < ex; x++, d += ch) {
                    /* Source of destination (x, y) for a clockwise turn. */
                    uint32_t sx = degrees == 90 ? y : sw - 1 - y;
                    uint32_t sy = degrees == 90 ? sh - 1 - x : x;
                    memcpy(d, ts_image_row(src, sy) + (size_t)sx * ch, ch);
                }
            }
        }
    }
}

static void rotate_half(const struct ts_image *src, struct ts_image *dst)
{
    uint32_t ch = src->channels;
    for (uint32_t y = 0; y < dst->height; y++) {
        const uint8_t *s = ts_image_row(src, src->height - 1 - y) + (size_t)(src->width - 1) * ch;
        uint8_t *d = ts_image_row(dst, y);
        for (uint32_t x = 0; x < dst->width; x++, d += ch, s -= ch)
            memcpy(d, s, ch);
    }
}

int render_rotate90(const struct ts_image *src, int degrees, struct ts_image *dst)
{
    int rc;

    dst->data = NULL;
    if (!src || !src->data || src->channels < 1 || src->channels > 4)
        return TS_EINVAL;
    degrees %= 360;
    if (degrees < 0)
        degrees += 360;
    if (degrees % 90 != 0)
        return TS_EINVAL;
    if (degrees == 90 || degrees == 270)
        rc = ts_image_alloc(dst, src->height, src->width, src->channels);
    else
        rc = ts_image_alloc(dst, src->width, src->height, src->channels);
    if (rc)
        return rc;
    if (degrees == 0) {
        for (uint32_t y = 0; y < src->height; y++)
            memcpy(ts_image_row(dst, y), ts_image_row(src, y), (size_t)src->width * src->channels);
    } else if (degrees == 180) {
        rotate_half(src, dst);
    } else {
        rotate_quarter(src, degrees, dst);
    }
    return TS_OK;
}

/* ITU-R BT.601 luma, rounded to nearest. */
static inline uint8_t luma(const uint8_t *p)
{
    return (uint8_t)((299u * p[0] + 587u * p[1] + 114u * p[2] + 500u) / 1000u);
}

/* Blend v over white by alpha a, rounded: what a viewer on a white page would see. */
static inline uint8_t over_white(uint8_t v, uint8_t a)
{
    return (uint8_t)((v * a + 255u * (255u - a) + 127u) / 255u);
}

static void to_gray(const struct ts_image *src, struct ts_image *dst)
{
    uint32_t sc = src->channels, dc = dst->channels;
    for (uint32_t y = 0; y < src->height; y++) {
        const uint8_t *s = ts_image_row(src, y);
        uint8_t *d = ts_image_row(dst, y);
        for (uint32_t x = 0; x < src->width; x++, s += sc, d += dc) {
            d[0] = luma(s);
            if (dc == 2)
                d[1] = s[3];
        }
    }
}

/* Bitonal has no alpha: transparent areas are composited onto white first, then luma is
 * thresholded at 128, so a fully transparent pixel becomes white rather than its hidden colour. */
static void to_bitonal(const struct ts_image *src, struct ts_image *dst)
{
    uint32_t sc = src->channels;
    for (uint32_t y = 0; y < src->height; y++) {
        const uint8_t *s = ts_image_row(src, y);
        uint8_t *d = ts_image_row(dst, y);
        for (uint32_t x = 0; x < src->width; x++, s += sc) {
            uint8_t v;
            if (sc >= 3) {
                uint8_t rgb[3] = {s[0], s[1], s[2]};
                if (sc == 4)
                    for (int c = 0; c < 3; c++)
                        rgb[c] = over_white(rgb[c], s[3]);
                v = luma(rgb);
            } else {
                v = sc == 2 ? over_white(s[0], s[1]) : s[0];
            }
            d[x] = v >= 128 ? 255 : 0;
        }
    }
}

int render_quality(const struct ts_image *src, enum ts_quality q, struct ts_image *dst)
{
    uint32_t ch;
    int rc;

    dst->data = NULL;
    if (!src || !src->data || src->channels < 1 || src->channels > 4)
        return TS_EINVAL;
    switch (q) {
    case TS_QUALITY_DEFAULT:
    case TS_QUALITY_COLOR: ch = src->channels; break;
    case TS_QUALITY_GRAY: ch = src->channels >= 3 ? src->channels - 2 : src->channels; break;
    case TS_QUALITY_BITONAL: ch = 1; break;
    default: return TS_EINVAL;
    }
    rc = ts_image_alloc(dst, src->width, src->height, ch);
    if (rc)
        return rc;
    if (q == TS_QUALITY_BITONAL)
        to_bitonal(src, dst);
    else if (ch != src->channels)
        to_gray(src, dst);
    else
        for (uint32_t y = 0; y < src->height; y++)
            memcpy(ts_image_row(dst, y), ts_image_row(src, y), (size_t)src->width * ch);
    return TS_OK;
}
