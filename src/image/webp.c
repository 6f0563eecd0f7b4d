/* WebP reader over libwebp: decodes only the requested region, scaled by libwebp when allowed. */
#include "image/bytes.h"
#include "image/color.h"
#include "image/reader.h"

#include <webp/decode.h>
#include <webp/demux.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A WebP canvas is at most 16383 x 16383; a file far larger than its pixels is not one. */
#define WEBP_MAX_FILE ((uint64_t)1 << 30)
#define WEBP_MARGIN 2
/* The least the incremental decoder is fed between looks at the request's cancel token. */
#define WEBP_MIN_FEED ((size_t)4096)

struct webp_priv {
    uint8_t *data; /* the whole file, read at open: libwebp decodes from memory */
    size_t len;
    struct ts_color_xform *xf; /* ICCP profile to sRGB, or NULL */
    bool lossy;                /* VP8 rather than VP8L (or a mix, taken as VP8L) */
    bool alpha;
};

static bool webp_magic(const uint8_t *m, size_t n)
{
    return n >= 12 && memcmp(m, "RIFF", 4) == 0 && memcmp(m + 8, "WEBP", 4) == 0;
}

/* Reads the whole file: it is all the reader needs from bytes from then on. */
static int webp_load(struct ts_bytes *bytes, struct webp_priv *p, struct ts_err *err)
{
    uint8_t m[12];
    uint64_t size;
    ssize_t got;

    got = ts_bytes_read_at(bytes, m, sizeof m, 0);
    if (got < 0)
        return ts_fail(err, TS_EIO, "webp: cannot read: %s", strerror(errno));
    if (!webp_magic(m, (size_t)got))
        return ts_fail(err, TS_EUNSUPPORTED, "webp: not WebP");
    if (ts_bytes_size(bytes, &size) != 0)
        return ts_fail(err, TS_EIO, "webp: cannot size the file: %s", strerror(errno));
    if (size > WEBP_MAX_FILE)
        return ts_fail(err, TS_ETOOLARGE, "webp: file of %llu bytes", (unsigned long long)size);
    p->len = (size_t)size;
    p->data = malloc(p->len ? p->len : 1);
    if (!p->data)
        return ts_fail(err, TS_ENOMEM, "webp: out of memory");
    got = ts_bytes_read_at(bytes, p->data, p->len, 0);
    if (got < 0)
        return ts_fail(err, TS_EIO, "webp: cannot read: %s", strerror(errno));
    /* A file cut short since fstat is decoded as what it now is: libwebp checks sizes. */
    p->len = (size_t)got;
    return TS_OK;
}

/* Halvings of (w, h) that still cover (min_w, min_h): our resampler finishes the job, so
 * libwebp only does the cheap coarse part. */
static uint32_t webp_shrink(uint32_t w, uint32_t h, uint32_t min_w, uint32_t min_h)
{
    uint32_t k = 0;
    if (min_w == 0 || min_h == 0)
        return 0;
    while (k < 8) {
        uint32_t nw = (w + (2u << k) - 1) >> (k + 1), nh = (h + (2u << k) - 1) >> (k + 1);
        if (nw < min_w || nh < min_h || nw == 0 || nh == 0)
            break;
        k++;
    }
    return k;
}

/* Applies the embedded profile, if any, so that everything above the reader sees sRGB. */
static int webp_to_srgb(const struct webp_priv *p, struct ts_image *img, struct ts_err *err)
{
    if (!p->xf)
        return TS_OK;
    int rc = ts_color_xform_image(p->xf, img, err);
    if (rc)
        ts_image_free(img);
    return rc;
}

/* Looks for an ICCP chunk; a profile that does not parse is ignored, as the other readers do. */
static void webp_attach_profile(struct webp_priv *p, bool alpha)
{
    WebPData data = {p->data, p->len};
    WebPDemuxer *demux = WebPDemux(&data);
    if (!demux)
        return;
    WebPChunkIterator it;
    if (WebPDemuxGetChunk(demux, "ICCP", 1, &it)) {
        struct ts_color_layout lay = {.space = TS_COLOR_RGB, .alpha = alpha, .bytes = 1};
        struct ts_err ignored;
        if (ts_color_xform_create(it.chunk.bytes, it.chunk.size, &lay, &p->xf, &ignored) != TS_OK)
            p->xf = NULL;
        WebPDemuxReleaseChunkIterator(&it);
    }
    WebPDemuxDelete(demux);
}

/* Decodes p's data with cfg through libwebp's incremental decoder, handing it a longer prefix
 * of the file each time and looking at the cancel token in between: about one look per 256
 * rows where the bytes spread evenly over the rows. Pixels that take few bytes (a flat
 * lossless area) come out of one feed with no look inside it. Feeds much smaller than that
 * would cost lossless decodes their redone work: a suspended VP8L decode restarts from its
 * last checkpoint. */
static int webp_decode(const struct webp_priv *p, uint32_t height, WebPDecoderConfig *cfg,
                       struct ts_cancel *cancel, struct ts_err *err)
{
    size_t feed = height > 256 ? p->len / (height / 256) : p->len, fed = 0;
    VP8StatusCode st = VP8_STATUS_SUSPENDED;
    WebPIDecoder *idec;
    int rc = TS_OK;

    if (feed < WEBP_MIN_FEED)
        feed = WEBP_MIN_FEED;
    /* With one feed the token is looked at only before decoding, so the plain decoder does
     * as well, and faster (a 38-byte 16383 x 16383 lossless file, full/1000,: 16.8 s through
     * WebPDecode, 20.2 s through one incremental feed). */
    if (feed >= p->len) {
        if ((rc = ts_cancel_check(cancel, err)) != TS_OK)
            return rc;
        return WebPDecode(p->data, p->len, cfg) == VP8_STATUS_OK
                   ? TS_OK
                   : ts_fail(err, TS_ECODEC, "webp: decode failed");
    }
    if (!(idec = WebPIDecode(p->data, p->len, cfg)))
        return ts_fail(err, TS_ECODEC, "webp: cannot start the decoder");
    while (st == VP8_STATUS_SUSPENDED && fed < p->len) {
        if ((rc = ts_cancel_check(cancel, err)) != TS_OK)
            break;
        fed = p->len - fed > feed ? fed + feed : p->len;
        st = WebPIUpdate(idec, p->data, fed);
    }
    WebPIDelete(idec);
    if (rc == TS_OK && st != VP8_STATUS_OK)
        rc = ts_fail(err, TS_ECODEC, "webp: decode failed (status %d)",
                     (int)(st == VP8_STATUS_SUSPENDED ? VP8_STATUS_NOT_ENOUGH_DATA : st));
    return rc;
}

static int webp_read(struct ts_reader *r, const struct ts_read_req *req, struct ts_image *out,
                     struct ts_err *err)
{
    struct webp_priv *p = r->priv;
    WebPDecoderConfig cfg;
    struct ts_image tmp;
    uint32_t ch = r->info.channels, cx, cy, cw, crop_h, k, ow, oh;
    int rc;

    out->data = NULL;
    if (req->level != 0 || req->w == 0 || req->h == 0 || req->x >= r->info.width ||
        req->y >= r->info.height || req->w > r->info.width - req->x ||
        req->h > r->info.height - req->y)
        return ts_fail(err, TS_EINVAL, "webp: region outside the image");
    /* Some libwebp versions snap a crop origin down to even coordinates for 4:2:0 data, and
     * the chroma upsampler sees no neighbours past the crop edge: so full-size reads crop from
     * an even origin with a 2-pixel margin and cut it off, giving the pixels of a full decode.
     * Scaled reads need an exact even crop, so odd origins are read at full size. */
    k = (req->x % 2 == 0 && req->y % 2 == 0) ? webp_shrink(req->w, req->h, req->min_w, req->min_h)
                                             : 0;
    if (k) {
        cx = req->x;
        cy = req->y;
        cw = req->w;
        crop_h = req->h;
    } else {
        uint32_t ex = req->x + req->w + WEBP_MARGIN, ey = req->y + req->h + WEBP_MARGIN;
        cx = (req->x >= WEBP_MARGIN ? req->x - WEBP_MARGIN : 0) & ~1u;
        cy = (req->y >= WEBP_MARGIN ? req->y - WEBP_MARGIN : 0) & ~1u;
        cw = (ex > r->info.width ? r->info.width : ex) - cx;
        crop_h = (ey > r->info.height ? r->info.height : ey) - cy;
    }
    ow = k ? (cw + (1u << k) - 1) >> k : cw;
    oh = k ? (crop_h + (1u << k) - 1) >> k : crop_h;

    if (!WebPInitDecoderConfig(&cfg))
        return ts_fail(err, TS_ECODEC, "webp: libwebp version mismatch");
    rc = ts_image_alloc(&tmp, ow, oh, ch);
    if (rc != TS_OK)
        return ts_fail(err, rc, "webp: cannot allocate %ux%u", ow, oh);
    cfg.options.use_cropping = 1;
    cfg.options.crop_left = (int)cx;
    cfg.options.crop_top = (int)cy;
    cfg.options.crop_width = (int)cw;
    cfg.options.crop_height = (int)crop_h;
    if (k) {
        cfg.options.use_scaling = 1;
        cfg.options.scaled_width = (int)ow;
        cfg.options.scaled_height = (int)oh;
    }
    cfg.output.colorspace = ch == 4 ? MODE_RGBA : MODE_RGB;
    cfg.output.is_external_memory = 1;
    cfg.output.u.RGBA.rgba = tmp.data;
    cfg.output.u.RGBA.stride = (int)tmp.stride;
    cfg.output.u.RGBA.size = tmp.stride * tmp.height;
    rc = webp_decode(p, r->info.height, &cfg, req->cancel, err);
    WebPFreeDecBuffer(&cfg.output);
    if (rc != TS_OK) {
        ts_image_free(&tmp);
        return rc;
    }
    if (k || (cw == req->w && crop_h == req->h)) {
        *out = tmp;
        return webp_to_srgb(p, out, err);
    }
    rc = ts_image_alloc(out, req->w, req->h, ch);
    if (rc != TS_OK) {
        ts_image_free(&tmp);
        return ts_fail(err, rc, "webp: cannot allocate %ux%u", req->w, req->h);
    }
    for (uint32_t y = 0; y < req->h; y++)
        memcpy(ts_image_row(out, y),
               ts_image_row(&tmp, y + (req->y - cy)) + (size_t)(req->x - cx) * ch,
               (size_t)req->w * ch);
    ts_image_free(&tmp);
    return webp_to_srgb(p, out, err);
}

static void webp_close(struct ts_reader *r)
{
    struct webp_priv *p = r->priv;
    if (p) {
        ts_color_xform_free(p->xf);
        free(p->data);
        free(p);
    }
    ts_bytes_unref(r->bytes); /* the reference ts_reader_open_bytes added */
    free(r);
}

/* Measured with tools/mem_probe.c against libwebp 1.2: the decoder and its tables. */
#define WEBP_COST_FIXED ((size_t)512 << 10)

static int webp_cost(struct ts_reader *r, const struct ts_read_req *req, size_t *bytes,
                     struct ts_err *err)
{
    const struct webp_priv *p = r->priv;
    size_t w = r->info.width, total = WEBP_COST_FIXED;
    /* Decoding stops after the last row of the crop (webp_read adds a 2 px margin). */
    size_t rows = (size_t)req->y + req->h + WEBP_MARGIN;
    (void)err;
    rows = rows < r->info.height ? rows : r->info.height;
    if (p->lossy) {
        /* Macroblock rows of YUV and filter state across the full width. Alpha comes as a
         * lossless stream of its own, decoded through ARGB into a plane, up to the crop's end. */
        total = ts_sat_add(total, ts_sat_mul(w, 160));
        if (p->alpha)
            total = ts_sat_add(total, ts_sat_mul(ts_sat_mul(w, rows + 32), 5));
    } else {
        /* VP8L keeps ARGB for every row decoded so far, plus its cache rows. */
        total = ts_sat_add(total, ts_sat_mul(ts_sat_mul(w, rows + 32), 4));
    }
    /* The crop as decoded (margin included), and the region copied out of it. */
    size_t out = ts_sat_mul(ts_sat_mul(req->w, req->h), r->info.channels);
    size_t crop = ts_sat_mul(
        ts_sat_mul((size_t)req->w + 2 * WEBP_MARGIN + 1, (size_t)req->h + 2 * WEBP_MARGIN + 1),
        r->info.channels);
    *bytes = ts_sat_add(total, ts_sat_add(out, crop));
    return TS_OK;
}

static const struct ts_reader_ops webp_ops = {"webp",    webp_read, webp_close, NULL,
                                              webp_cost, NULL,      NULL,       NULL};

int ts_webp_open(struct ts_bytes *bytes, struct ts_reader **out, struct ts_err *err)
{
    struct ts_reader *r;
    struct webp_priv *p;
    WebPBitstreamFeatures ft;
    VP8StatusCode st;
    int rc;

    *out = NULL;
    r = calloc(1, sizeof *r);
    p = calloc(1, sizeof *p);
    if (!r || !p) {
        free(p);
        free(r);
        ts_bytes_unref(bytes);
        return ts_fail(err, TS_ENOMEM, "webp: out of memory");
    }
    r->ops = &webp_ops;
    r->priv = p;
    rc = webp_load(bytes, p, err);
    /* Everything is in memory now: the descriptor is done with, whatever happened. */
    ts_bytes_unref(bytes);
    if (rc != TS_OK) {
        webp_close(r);
        return rc;
    }
    st = WebPGetFeatures(p->data, p->len, &ft);
    if (st != VP8_STATUS_OK || ft.width <= 0 || ft.height <= 0) {
        webp_close(r);
        return ts_fail(err, TS_ECODEC, "webp: bad header (status %d)", (int)st);
    }
    if (ft.has_animation) {
        webp_close(r);
        return ts_fail(err, TS_EUNSUPPORTED, "webp: animated WebP");
    }
    r->info.width = (uint32_t)ft.width;
    webp_attach_profile(p, ft.has_alpha);
    r->info.height = (uint32_t)ft.height;
    r->info.channels = ft.has_alpha ? 4 : 3;
    p->lossy = ft.format == 1;
    p->alpha = ft.has_alpha != 0;
    r->info.bits_per_sample = 8;
    r->info.nlevels = 1;
    r->info.levels[0].width = r->info.width;
    r->info.levels[0].height = r->info.height;
    r->info.format = "webp";
    *out = r;
    return TS_OK;
}
