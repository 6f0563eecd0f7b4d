/* EXIF orientation for JPEG sources: a bounds-checked IFD0 lookup and the eight flips/turns. */
#include "image/exif.h"

#include <string.h>

#define EXIF_TAG_ORIENTATION 0x0112u
#define EXIF_TYPE_SHORT 3u

static uint32_t exif_u16(const uint8_t *p, bool le)
{
    return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 : (uint32_t)p[0] << 8 | (uint32_t)p[1];
}

static uint32_t exif_u32(const uint8_t *p, bool le)
{
    return le ? exif_u16(p, true) | exif_u16(p + 2, true) << 16
              : exif_u16(p, false) << 16 | exif_u16(p + 2, false);
}

uint32_t ts_exif_orientation(const uint8_t *app1, size_t len)
{
    const uint8_t *t;
    size_t tlen, ifd, n, i;
    bool le;

    if (!app1 || len < 6 + 8 || memcmp(app1, "Exif\0\0", 6) != 0)
        return 1;
    t = app1 + 6; /* offsets inside EXIF count from the TIFF header */
    tlen = len - 6;
    if (t[0] == 'I' && t[1] == 'I')
        le = true;
    else if (t[0] == 'M' && t[1] == 'M')
        le = false;
    else
        return 1;
    if (exif_u16(t + 2, le) != 42)
        return 1;
    ifd = exif_u32(t + 4, le);
    if (ifd < 8 || ifd > tlen - 2)
        return 1;
    n = exif_u16(t + ifd, le);
    for (i = 0; i < n; i++) {
        size_t e = ifd + 2 + i * 12;
        uint32_t v;
        if (tlen < 12 || e > tlen - 12)
            return 1;
        if (exif_u16(t + e, le) != EXIF_TAG_ORIENTATION)
            continue;
        if (exif_u16(t + e + 2, le) != EXIF_TYPE_SHORT || exif_u32(t + e + 4, le) < 1)
            return 1;
        /* A single SHORT sits left-justified in the 4-byte value field. */
        v = exif_u16(t + e + 8, le);
        return v >= 1 && v <= 8 ? v : 1;
    }
    return 1;
}

bool ts_exif_swaps_axes(uint32_t orientation)
{
    return orientation >= 5 && orientation <= 8;
}

/* Stored range [*lo, *lo + *len) along one axis of size n for upright range [a, a + alen),
 * mirrored or not. */
static void exif_axis(bool mirror, uint32_t n, uint32_t a, uint32_t alen, uint32_t *lo,
                      uint32_t *len)
{
    /* Requests arrive clipped to the level; clamp anyway so a bad one cannot wrap around. */
    if (alen > n)
        alen = n;
    if (a > n - alen)
        a = n - alen;
    *lo = mirror ? n - a - alen : a;
    *len = alen;
}

void ts_exif_stored_req(uint32_t o, uint32_t sw, uint32_t sh, const struct ts_read_req *up,
                        struct ts_read_req *st)
{
    bool swap = ts_exif_swaps_axes(o);
    /* Which upright axis feeds each stored axis, and whether it runs backwards. */
    bool mirror_x = o == 2 || o == 3 || o == 7 || o == 8;
    bool mirror_y = o == 3 || o == 4 || o == 6 || o == 7;

    *st = *up;
    if (o < 2 || o > 8)
        return;
    if (swap) {
        exif_axis(mirror_x, sw, up->y, up->h, &st->x, &st->w);
        exif_axis(mirror_y, sh, up->x, up->w, &st->y, &st->h);
        st->min_w = up->min_h;
        st->min_h = up->min_w;
    } else {
        exif_axis(mirror_x, sw, up->x, up->w, &st->x, &st->w);
        exif_axis(mirror_y, sh, up->y, up->h, &st->y, &st->h);
    }
}

int ts_exif_apply(uint32_t o, const struct ts_image *s, struct ts_image *out, struct ts_err *err)
{
    bool swap = ts_exif_swaps_axes(o);
    bool mirror_x = o == 2 || o == 3 || o == 7 || o == 8;
    bool mirror_y = o == 3 || o == 4 || o == 6 || o == 7;
    const uint32_t ch = s->channels;
    ptrdiff_t px = (ptrdiff_t)ch, row = (ptrdiff_t)s->stride;
    ptrdiff_t step_x = mirror_x ? -px : px, step_y = mirror_y ? -row : row;
    /* Moving right in the output walks stored x (or y when transposed), moving down the other. */
    ptrdiff_t du = swap ? step_y : step_x, dv = swap ? step_x : step_y;
    const uint8_t *origin;
    int rc;

    rc = ts_image_alloc(out, swap ? s->height : s->width, swap ? s->width : s->height, ch);
    if (rc != TS_OK)
        return ts_fail(err, rc, "cannot allocate the oriented image");
    if (out->width == 0 || out->height == 0)
        return TS_OK;
    origin = s->data + (mirror_x ? (size_t)(s->width - 1) * ch : 0) +
             (mirror_y ? (size_t)(s->height - 1) * s->stride : 0);
    for (uint32_t v = 0; v < out->height; v++) {
        const uint8_t *p = origin + (ptrdiff_t)v * dv;
        uint8_t *d = ts_image_row(out, v);
        for (uint32_t u = 0; u < out->width; u++, p += du, d += ch)
            memcpy(d, p, ch);
    }
    return TS_OK;
}
