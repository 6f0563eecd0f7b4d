/* PNG reader over libspng: decodes row by row and keeps only the rows of the requested region. */
#include "image/bytes.h"
#include "image/color.h"
#include "image/reader.h"
#include "image/rowtail.h"

#include <spng.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PNG_MAX_DIM (1u << 30)
#define PNG_CHUNK_LIMIT ((size_t)64 << 20)
/* Rows between looks at the request's cancel token. */
#define PNG_CANCEL_ROWS 64u

/* One decode's position in the file: libspng reads the stream strictly forward. */
struct png_stream {
    struct ts_bytes *bytes;
    uint64_t off;
};

/* A progressive decode left where the last read stopped: the next band of a banded render
 * goes on from there instead of inflating every row above it again. */
struct png_live {
    spng_ctx *ctx; /* NULL when there is none */
    struct png_stream stream;
    uint8_t *row;           /* row_len bytes */
    uint32_t next;          /* the next row spng_decode_row gives */
    struct ts_rowtail tail; /* the last read's rows from the next band's start */
};

struct png_priv {
    struct ts_bytes *bytes;    /* owned; a read continues the live decode or decodes afresh */
    bool wide;                 /* 16-bit samples */
    bool interlaced;           /* Adam7 rows arrive in passes, so such images decode whole */
    struct ts_color_xform *xf; /* iCCP profile to sRGB, or NULL */
    size_t raw_row;            /* one filtered row as stored, filter byte included */
    struct png_live live;
};

static int png_stream_read(spng_ctx *ctx, void *user, void *dst, size_t length)
{
    struct png_stream *s = user;
    ssize_t n;
    (void)ctx;
    n = ts_bytes_read_at(s->bytes, dst, length, s->off);
    if (n < 0)
        return SPNG_IO_ERROR;
    if ((size_t)n < length)
        return SPNG_IO_EOF;
    s->off += (uint64_t)n;
    return 0;
}

/* A decoder context reading s from the start of its file, with our limits; NULL on failure. */
static spng_ctx *png_ctx(struct png_stream *s, struct ts_bytes *bytes)
{
    spng_ctx *ctx = spng_ctx_new(0);
    if (!ctx)
        return NULL;
    s->bytes = bytes;
    s->off = 0;
    if (spng_set_image_limits(ctx, PNG_MAX_DIM, PNG_MAX_DIM) ||
        spng_set_chunk_limits(ctx, PNG_CHUNK_LIMIT, PNG_CHUNK_LIMIT) ||
        spng_set_png_stream(ctx, png_stream_read, s)) {
        spng_ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

static bool png_is_png(struct ts_bytes *bytes)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    uint8_t m[8];
    return ts_bytes_read_at(bytes, m, sizeof m, 0) == 8 && memcmp(m, sig, 8) == 0;
}

/* Copies pixels [x, x+w) of an RGBA8/RGBA16 row into out's channel layout. */
static void png_convert(const uint8_t *src, bool wide, uint32_t x, uint32_t w, uint32_t ch,
                        uint8_t *dst)
{
    static const uint8_t pick[4][4] = {{0}, {0, 3}, {0, 1, 2}, {0, 1, 2, 3}};
    for (uint32_t i = 0; i < w; i++) {
        size_t s = ((size_t)x + i) * 4;
        for (uint32_t c = 0; c < ch; c++) {
            if (wide) {
                uint16_t v;
                memcpy(&v, src + (s + pick[ch - 1][c]) * 2, 2);
                dst[(size_t)i * ch + c] = (uint8_t)((v * 255u + 32767u) / 65535u);
            } else {
                dst[(size_t)i * ch + c] = src[s + pick[ch - 1][c]];
            }
        }
    }
}

/* Like png_convert but keeping the sample width, for the colour transform to read. */
static void png_pick(const uint8_t *src, bool wide, uint32_t x, uint32_t w, uint32_t ch,
                     uint8_t *dst)
{
    static const uint8_t pick[4][4] = {{0}, {0, 3}, {0, 1, 2}, {0, 1, 2, 3}};
    size_t bytes = wide ? 2 : 1;
    for (uint32_t i = 0; i < w; i++) {
        size_t s = ((size_t)x + i) * 4;
        for (uint32_t c = 0; c < ch; c++)
            memcpy(dst + ((size_t)i * ch + c) * bytes, src + (s + pick[ch - 1][c]) * bytes, bytes);
    }
}

/* One decoded row into out: converted to sRGB from the full sample depth when profiled. */
static void png_emit(const struct png_priv *p, const uint8_t *src, uint32_t x, uint32_t w,
                     uint32_t ch, uint8_t *scratch, uint8_t *dst)
{
    if (!p->xf) {
        png_convert(src, p->wide, x, w, ch, dst);
        return;
    }
    png_pick(src, p->wide, x, w, ch, scratch);
    ts_color_xform_pixels(p->xf, scratch, dst, w);
}

static void png_live_end(struct png_live *l)
{
    spng_ctx_free(l->ctx);
    free(l->row);
    ts_rowtail_clear(&l->tail);
    memset(l, 0, sizeof *l);
}

/* Adam7 images: their rows come in passes, so the whole image is decoded at once. */
static int png_decode_interlaced(struct png_priv *p, spng_ctx *ctx, const struct ts_read_req *q,
                                 uint32_t ch, int fmt, size_t row_len, uint8_t *scratch,
                                 struct ts_image *out, struct ts_err *err)
{
    size_t img_len;
    uint8_t *buf;
    int e;

    if ((e = spng_decoded_image_size(ctx, fmt, &img_len)) != 0)
        return ts_fail(err, TS_ECODEC, "libspng: %s", spng_strerror(e));
    if (!(buf = malloc(img_len)))
        return ts_fail(err, TS_ENOMEM, "out of memory for an interlaced PNG");
    if ((e = spng_decode_image(ctx, buf, img_len, fmt, SPNG_DECODE_TRNS)) != 0) {
        free(buf);
        return ts_fail(err, TS_ECODEC, "libspng: %s", spng_strerror(e));
    }
    for (uint32_t y = 0; y < q->h; y++)
        png_emit(p, buf + (size_t)(q->y + y) * row_len, q->x, q->w, ch, scratch,
                 ts_image_row(out, y));
    free(buf);
    return TS_OK;
}

/* Decodes rows from p->live's position down to the end of q. */
static int png_decode_rows(struct png_priv *p, const struct ts_read_req *q, uint32_t ch,
                           uint32_t height, size_t row_len, uint8_t *scratch, struct ts_image *out,
                           struct ts_err *err)
{
    struct png_live *l = &p->live;
    uint32_t first = l->next;
    int e, rc;

    if (q->y < l->next)
        ts_rowtail_copy(&l->tail, q->y, l->next, q->x, out);
    for (; l->next < q->y + q->h; l->next++) {
        if ((l->next - first) % PNG_CANCEL_ROWS == 0 &&
            (rc = ts_cancel_check(q->cancel, err)) != TS_OK)
            return rc;
        e = spng_decode_row(l->ctx, l->row, row_len);
        /* SPNG_EOI comes with the last row, which is still valid. */
        if (e != 0 && !(e == SPNG_EOI && l->next == height - 1))
            return ts_fail(err, TS_ECODEC, "libspng: %s", spng_strerror(e));
        if (l->next >= q->y)
            png_emit(p, l->row, q->x, q->w, ch, scratch, ts_image_row(out, l->next - q->y));
    }
    ts_reader_count_rows(l->next - first);
    return TS_OK;
}

/* Makes p->live a progressive decode at row 0 of a fresh context. */
static int png_live_begin(struct png_priv *p, size_t row_len, struct ts_err *err)
{
    int fmt = p->wide ? SPNG_FMT_RGBA16 : SPNG_FMT_RGBA8, e;
    struct png_live *l = &p->live;
    if (!(l->ctx = png_ctx(&l->stream, p->bytes)))
        return ts_fail(err, TS_ENOMEM, "cannot create PNG decoder");
    if ((e = spng_decode_image(l->ctx, NULL, 0, fmt, SPNG_DECODE_TRNS | SPNG_DECODE_PROGRESSIVE)) !=
        0)
        return ts_fail(err, TS_ECODEC, "libspng: %s", spng_strerror(e));
    if (!(l->row = malloc(row_len)))
        return ts_fail(err, TS_ENOMEM, "out of memory for a PNG row");
    return TS_OK;
}

static int png_decode(struct png_priv *p, const struct ts_read_req *q, uint32_t ch,
                      const struct ts_image_info *info, struct ts_image *out, struct ts_err *err)
{
    int fmt = p->wide ? SPNG_FMT_RGBA16 : SPNG_FMT_RGBA8;
    struct png_stream stream;
    spng_ctx *ctx;
    size_t row_len;
    uint8_t *scratch = NULL;
    int rc;

    if (!ts_mul3_size(info->width, 4, p->wide ? 2 : 1, &row_len))
        return ts_fail(err, TS_ECODEC, "PNG row size overflows");
    /* A region row never exceeds a full decoded row, so row_len bytes hold it. */
    if (p->xf && !(scratch = malloc(row_len)))
        return ts_fail(err, TS_ENOMEM, "out of memory for a PNG colour row");
    if (p->interlaced) {
        if (!(ctx = png_ctx(&stream, p->bytes)))
            rc = ts_fail(err, TS_ENOMEM, "cannot create PNG decoder");
        else
            rc = png_decode_interlaced(p, ctx, q, ch, fmt, row_len, scratch, out, err);
        spng_ctx_free(ctx);
        free(scratch);
        return rc;
    }
    /* Rows decode whole whatever the columns asked for, so any read starting at or below
     * the live decode's row goes on from it, and one starting above it if the tail has the
     * rows in between. */
    rc = TS_OK;
    if (p->live.ctx && p->live.next > q->y &&
        !(q->y + q->h >= p->live.next &&
          ts_rowtail_has(&p->live.tail, q->y, p->live.next, q->x, q->w)))
        png_live_end(&p->live);
    if (!p->live.ctx)
        rc = png_live_begin(p, row_len, err);
    if (rc == TS_OK)
        rc = png_decode_rows(p, q, ch, info->height, row_len, scratch, out, err);
    /* Kept only for the next band of this render. */
    if (rc != TS_OK || !q->more || p->live.next >= info->height)
        png_live_end(&p->live);
    else
        ts_rowtail_keep(&p->live.tail, out, q->y, q->x, q->next_y);
    free(scratch);
    return rc;
}

static int png_read(struct ts_reader *r, const struct ts_read_req *q, struct ts_image *out,
                    struct ts_err *err)
{
    struct png_priv *p = r->priv;
    int rc;

    out->data = NULL;
    rc = ts_image_alloc(out, q->w, q->h, r->info.channels);
    if (rc != TS_OK)
        rc = ts_fail(err, rc, "cannot allocate %ux%u region", q->w, q->h);
    else
        rc = png_decode(p, q, r->info.channels, &r->info, out, err);
    if (rc != TS_OK)
        ts_image_free(out);
    return rc;
}

static void png_close(struct ts_reader *r)
{
    if (!r)
        return;
    if (r->priv) {
        struct png_priv *p = r->priv;
        png_live_end(&p->live);
        if (p->bytes)
            ts_bytes_unref(p->bytes);
        ts_color_xform_free(p->xf);
    }
    free(r->priv);
    ts_bytes_unref(r->bytes); /* the reference ts_reader_open_bytes added */
    free(r);
}

/* Measured with tools/mem_probe.c: the decoder context, zlib's window and chunk buffers. */
#define PNG_COST_FIXED ((size_t)512 << 10)

static int png_cost(struct ts_reader *r, const struct ts_read_req *q, size_t *bytes,
                    struct ts_err *err)
{
    const struct png_priv *p = r->priv;
    size_t row = ts_sat_mul(ts_sat_mul(r->info.width, 4), p->wide ? 2 : 1);
    (void)err;
    /* libspng's current, previous and working rows; ours and the colour scratch. */
    size_t total = ts_sat_add(PNG_COST_FIXED, ts_sat_mul(p->raw_row, 3));
    total = ts_sat_add(total, ts_sat_mul(row, 2));
    if (p->interlaced) /* the whole image, decoded before any row of it is complete */
        total = ts_sat_add(total, ts_sat_mul(row, r->info.height));
    *bytes = ts_sat_add(total, ts_sat_mul(ts_sat_mul(q->w, q->h), r->info.channels));
    return TS_OK;
}

static const struct ts_reader_ops png_ops = {"png",    png_read, png_close, NULL,
                                             png_cost, NULL,     NULL,      NULL};

/* The iCCP profile, applied to the delivered 8-bit pixels; a broken one is ignored. */
static int png_attach_color(struct png_priv *p, spng_ctx *ctx, uint32_t channels,
                            struct ts_err *err)
{
    struct spng_iccp iccp;
    struct ts_color_layout lay = {.bytes = p->wide ? 2 : 1};
    struct ts_err ignored;

    if (spng_get_iccp(ctx, &iccp) != 0 || !iccp.profile || iccp.profile_len == 0)
        return TS_OK;
    lay.space = channels <= 2 ? TS_COLOR_GRAY : TS_COLOR_RGB;
    lay.alpha = channels == 2 || channels == 4;
    if (ts_color_xform_create((const uint8_t *)iccp.profile, iccp.profile_len, &lay, &p->xf,
                              &ignored) == TS_ENOMEM)
        return ts_fail(err, TS_ENOMEM, "%s", ignored.msg);
    return TS_OK;
}

static int png_probe(struct ts_reader *r, struct ts_err *err)
{
    struct png_priv *p = r->priv;
    struct png_stream stream;
    struct spng_ihdr ih;
    struct spng_trns trns;
    spng_ctx *ctx;
    bool has_trns = false;
    int e, rc;

    if (!(ctx = png_ctx(&stream, p->bytes)))
        return ts_fail(err, TS_ENOMEM, "cannot create PNG decoder");
    e = spng_get_ihdr(ctx, &ih);
    if (e == 0) {
        /* Reading tRNS walks the chunks up to the image data, which also checks them. */
        int te = spng_get_trns(ctx, &trns);
        has_trns = te == 0;
        if (te != 0 && te != SPNG_ECHUNKAVAIL)
            e = te;
    }
    if (e != 0) {
        spng_ctx_free(ctx);
        return ts_fail(err, TS_ECODEC, "libspng: %s", spng_strerror(e));
    }

    switch (ih.color_type) {
    case SPNG_COLOR_TYPE_GRAYSCALE: r->info.channels = has_trns ? 2 : 1; break;
    case SPNG_COLOR_TYPE_GRAYSCALE_ALPHA: r->info.channels = 2; break;
    case SPNG_COLOR_TYPE_TRUECOLOR:
    case SPNG_COLOR_TYPE_INDEXED: r->info.channels = has_trns ? 4 : 3; break;
    case SPNG_COLOR_TYPE_TRUECOLOR_ALPHA: r->info.channels = 4; break;
    default:
        spng_ctx_free(ctx);
        return ts_fail(err, TS_ECODEC, "PNG colour type %u", ih.color_type);
    }
    p->wide = ih.bit_depth == 16;
    p->interlaced = ih.interlace_method != SPNG_INTERLACE_NONE;
    static const uint8_t samples[7] = {1, 0, 3, 1, 2, 0, 4}; /* by colour type */
    p->raw_row =
        ts_sat_add(ts_sat_mul(ih.width, (size_t)samples[ih.color_type] * ih.bit_depth), 7) / 8 + 1;
    rc = png_attach_color(p, ctx, r->info.channels, err);
    spng_ctx_free(ctx);
    if (rc != TS_OK)
        return rc;
    r->info.width = ih.width;
    r->info.height = ih.height;
    r->info.bits_per_sample = p->wide ? 16 : 8;
    return TS_OK;
}

int ts_png_open(struct ts_bytes *bytes, struct ts_reader **out, struct ts_err *err)
{
    struct ts_reader *r;
    struct png_priv *p;
    int rc;

    *out = NULL;
    if (!png_is_png(bytes)) {
        ts_bytes_unref(bytes);
        return ts_fail(err, TS_EUNSUPPORTED, "not a PNG file");
    }
    r = calloc(1, sizeof *r);
    p = calloc(1, sizeof *p);
    if (!r || !p) {
        free(p), free(r);
        ts_bytes_unref(bytes);
        return ts_fail(err, TS_ENOMEM, "out of memory opening PNG");
    }
    p->bytes = bytes;
    r->ops = &png_ops;
    r->priv = p;
    if ((rc = png_probe(r, err)) != TS_OK) {
        png_close(r);
        return rc;
    }
    r->info.nlevels = 1;
    r->info.levels[0].width = r->info.width;
    r->info.levels[0].height = r->info.height;
    r->info.format = "png";
    *out = r;
    return TS_OK;
}
