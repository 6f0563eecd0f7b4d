/* EXIF and IPTC for JPEG sources: bounds-checked IFD0 lookups (orientation, text tags), IPTC
 * text records, and the eight flips/turns. */
#include "image/exif.h"

#include <string.h>

#define EXIF_TAG_ORIENTATION 0x0112u
#define EXIF_TYPE_ASCII 2u
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

/* IFD0 of an APP1 payload starting "Exif\0\0": the TIFF data (offsets count from its header),
 * its byte order and where IFD0's entries start, with their count. False for anything
 * malformed. */
struct exif_ifd {
    const uint8_t *t;
    size_t tlen, first, n;
    bool le;
};

static bool exif_ifd0(const uint8_t *app1, size_t len, struct exif_ifd *d)
{
    if (!app1 || len < 6 + 8 || memcmp(app1, "Exif\0\0", 6) != 0)
        return false;
    d->t = app1 + 6;
    d->tlen = len - 6;
    if (d->t[0] == 'I' && d->t[1] == 'I')
        d->le = true;
    else if (d->t[0] == 'M' && d->t[1] == 'M')
        d->le = false;
    else
        return false;
    if (exif_u16(d->t + 2, d->le) != 42)
        return false;
    size_t ifd = exif_u32(d->t + 4, d->le);
    if (ifd < 8 || ifd > d->tlen - 2)
        return false;
    d->n = exif_u16(d->t + ifd, d->le);
    d->first = ifd + 2;
    return true;
}

/* Entry i of IFD0, or NULL when it lies past the data. */
static const uint8_t *exif_entry(const struct exif_ifd *d, size_t i)
{
    size_t e = d->first + i * 12;
    return d->tlen >= 12 && e <= d->tlen - 12 ? d->t + e : NULL;
}

uint32_t ts_exif_orientation(const uint8_t *app1, size_t len)
{
    struct exif_ifd d;
    if (!exif_ifd0(app1, len, &d))
        return 1;
    for (size_t i = 0; i < d.n; i++) {
        const uint8_t *e = exif_entry(&d, i);
        if (!e)
            return 1;
        if (exif_u16(e, d.le) != EXIF_TAG_ORIENTATION)
            continue;
        if (exif_u16(e + 2, d.le) != EXIF_TYPE_SHORT || exif_u32(e + 4, d.le) < 1)
            return 1;
        /* A single SHORT sits left-justified in the 4-byte value field. */
        uint32_t v = exif_u16(e + 8, d.le);
        return v >= 1 && v <= 8 ? v : 1;
    }
    return 1;
}

int ts_exif_texts(const uint8_t *app1, size_t len, ts_exif_text_fn add, void *ctx)
{
    /* IFD0's text tags, named as the TIFF reader names the same tags (iipsrv's names). */
    static const struct {
        uint32_t tag;
        const char *name;
    } texts[] = {
        {0x013B, "creator"}, {0x8298, "rights"},   {0x0132, "date"}, {0x010E, "description"},
        {0x010D, "title"},   {0x0131, "software"}, {0x010F, "make"}, {0x0110, "model"},
    };
    struct exif_ifd d;
    if (!exif_ifd0(app1, len, &d))
        return 0;
    for (size_t i = 0; i < d.n; i++) {
        const uint8_t *e = exif_entry(&d, i);
        if (!e)
            return 0;
        uint32_t tag = exif_u16(e, d.le), count = exif_u32(e + 4, d.le);
        if (exif_u16(e + 2, d.le) != EXIF_TYPE_ASCII || count == 0)
            continue;
        for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
            if (texts[k].tag != tag)
                continue;
            /* Up to four bytes sit in the entry itself, longer values at an offset. */
            size_t off = count <= 4 ? (size_t)(e + 8 - d.t) : exif_u32(e + 8, d.le);
            if (off > d.tlen || count > d.tlen - off)
                break;
            int rc = add(ctx, texts[k].name, (const char *)d.t + off, count);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int ts_iptc_texts(const uint8_t *app13, size_t len, ts_exif_text_fn add, void *ctx)
{
    static const char sig[] = "Photoshop 3.0";
    static const struct {
        uint8_t dataset;
        const char *name;
    } texts[] = {{5, "title"}, {80, "creator"}, {116, "rights"}, {120, "description"}};
    if (!app13 || len < sizeof sig || memcmp(app13, sig, sizeof sig) != 0)
        return 0;
    /* Image resource blocks: "8BIM", a 2-byte id, a Pascal name padded to even length, a
     * 4-byte size and the data padded to even length; id 0x0404 holds IPTC-IIM records. */
    size_t p = sizeof sig;
    while (p + 12 <= len && memcmp(app13 + p, "8BIM", 4) == 0) {
        uint32_t id = exif_u16(app13 + p + 4, false);
        size_t name = 1 + (size_t)app13[p + 6];
        name += name & 1;
        size_t at = p + 6 + name;
        if (at + 4 > len)
            return 0;
        size_t size = exif_u32(app13 + at, false);
        at += 4;
        if (size > len - at)
            return 0;
        if (id == 0x0404) {
            /* Records: 0x1C, record, dataset, a 2-byte length (the high bit marks an extended
             * length, which text fields never need: the walk stops there), the bytes. */
            for (size_t q = at; q + 5 <= at + size && app13[q] == 0x1C;) {
                uint32_t n = exif_u16(app13 + q + 3, false);
                if (n & 0x8000u || q + 5 + n > at + size)
                    break;
                for (size_t k = 0; app13[q + 1] == 2 && k < sizeof texts / sizeof texts[0]; k++) {
                    if (texts[k].dataset != app13[q + 2])
                        continue;
                    int rc = add(ctx, texts[k].name, (const char *)app13 + q + 5, n);
                    if (rc)
                        return rc;
                }
                q += 5 + n;
            }
        }
        p = at + size + (size & 1);
    }
    return 0;
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
