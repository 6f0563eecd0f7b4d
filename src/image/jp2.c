/* JPEG 2000 reader over OpenJPEG (JP2, raw J2K, HTJ2K): resolution levels are the pyramid. */
#include "image/reader.h"

#include <openjpeg.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* OpenJPEG holds every decoded component as int32 plus its own tile buffers, so a decode area
 * of 2^28 pixels already costs several GiB: refuse anything bigger before asking for it. */
#define JP2_MAX_DECODE_PIXELS ((uint64_t)1 << 28)
#define JP2_MAX_THREADS 2
#define JP2_CBLKSTY_HT 0x40 /* code-block style bit for HTJ2K (ISO/IEC 15444-15) */

static const uint8_t jp2_box_sig[12] = {0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50,
                                        0x20, 0x20, 0x0d, 0x0a, 0x87, 0x0a};
static const uint8_t j2k_soc_siz[4] = {0xff, 0x4f, 0xff, 0x51};

struct jp2_priv {
    char *path;
    OPJ_CODEC_FORMAT fmt;
    uint32_t x0, y0, x1, y1;     /* image area on the reference grid */
    uint32_t ncomps;             /* components in the codestream */
    uint32_t tx0, ty0, tdx, tdy; /* codestream tile grid */
    bool whole_tiles;            /* decode whole codestream tiles, then cut (see jp2_levels) */
    uint32_t sub_x, sub_y;       /* largest component subsampling (1 or 2) */
    int threads;
    char msg[160]; /* the last error OpenJPEG reported, for the one-line reason */
};

/* One codec and stream on the file, with the main header read. */
struct jp2_session {
    opj_stream_t *stream;
    opj_codec_t *codec;
    opj_image_t *image;
};

static void jp2_on_error(const char *msg, void *data)
{
    struct jp2_priv *p = data;
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        n--;
    if (n >= sizeof p->msg)
        n = sizeof p->msg - 1;
    memcpy(p->msg, msg, n);
    p->msg[n] = '\0';
}

/* OpenJPEG prints warnings and progress to stdout unless given somewhere else to put them. */
static void jp2_on_quiet(const char *msg, void *data)
{
    (void)msg;
    (void)data;
}

static uint32_t jp2_ceil_shift(uint32_t v, uint32_t s)
{
    return (uint32_t)(((uint64_t)v + ((uint64_t)1 << s) - 1) >> s);
}

static void jp2_session_end(struct jp2_session *s)
{
    if (s->image)
        opj_image_destroy(s->image);
    if (s->codec)
        opj_destroy_codec(s->codec);
    if (s->stream)
        opj_stream_destroy(s->stream);
    memset(s, 0, sizeof *s);
}

/* Opens the file and reads the main header; reduce applies to the next decode. */
static int jp2_session_begin(struct jp2_priv *p, uint32_t reduce, struct jp2_session *s,
                             struct ts_err *err)
{
    opj_dparameters_t params;
    memset(s, 0, sizeof *s);
    p->msg[0] = '\0';
    s->stream = opj_stream_create_default_file_stream(p->path, OPJ_TRUE);
    if (!s->stream)
        return ts_fail(err, TS_EIO, "jp2: cannot open %s", p->path);
    s->codec = opj_create_decompress(p->fmt);
    if (!s->codec) {
        jp2_session_end(s);
        return ts_fail(err, TS_ENOMEM, "jp2: cannot create a decoder");
    }
    opj_set_error_handler(s->codec, jp2_on_error, p);
    opj_set_warning_handler(s->codec, jp2_on_quiet, p);
    opj_set_info_handler(s->codec, jp2_on_quiet, p);
    opj_set_default_decoder_parameters(&params);
    params.cp_reduce = reduce;
    /* Truncated codestreams must fail rather than come back as silently blurred pixels. */
    if (!opj_setup_decoder(s->codec, &params) || !opj_decoder_set_strict_mode(s->codec, OPJ_TRUE) ||
        !opj_read_header(s->stream, s->codec, &s->image) || !s->image) {
        jp2_session_end(s);
        return ts_fail(err, TS_ECODEC, "jp2: %s: bad header%s%s", p->path, p->msg[0] ? ": " : "",
                       p->msg);
    }
    if (p->threads > 1 && opj_has_thread_support())
        opj_codec_set_threads(s->codec, p->threads);
    return TS_OK;
}

/* Samples of one component scaled to 8 bits: signed ones shifted to unsigned, then rounded. */
static uint8_t jp2_sample8(int32_t v, uint32_t prec, bool sgnd)
{
    int64_t x = v;
    int64_t max = ((int64_t)1 << prec) - 1;
    if (sgnd)
        x += (int64_t)1 << (prec - 1);
    if (x < 0)
        x = 0;
    if (x > max)
        x = max;
    if (prec == 8)
        return (uint8_t)x;
    return (uint8_t)((x * 255 + max / 2) / max);
}

static uint8_t jp2_clamp8(double v)
{
    if (v <= 0.0)
        return 0;
    if (v >= 255.0)
        return 255;
    return (uint8_t)(v + 0.5);
}

/* sYCC (ITU-R BT.601 full range, as JP2's colr box means it) to RGB, in place. */
static void jp2_sycc_to_rgb(uint8_t *px)
{
    double y = px[0], cb = px[1] - 128.0, cr = px[2] - 128.0;
    px[0] = jp2_clamp8(y + 1.402 * cr);
    px[1] = jp2_clamp8(y - 0.344136 * cb - 0.714136 * cr);
    px[2] = jp2_clamp8(y + 1.772 * cb);
}

/* Where a decoded component starts, in its own reduced coordinates: OpenJPEG 2.5 reports
 * x0/y0 at full component resolution, the same grid the image origin is on. */
static void jp2_comp_origin(const opj_image_comp_t *c, uint32_t *ox, uint32_t *oy)
{
    *ox = jp2_ceil_shift(c->x0, c->factor);
    *oy = jp2_ceil_shift(c->y0, c->factor);
}

/* Copies the decoded components into out; (ax, ay) is the level-grid position of out's first
 * pixel in absolute reduced reference coordinates. */
static int jp2_copy(struct jp2_priv *p, const opj_image_t *img, uint32_t reduce, uint32_t ax,
                    uint32_t ay, struct ts_image *out, struct ts_err *err)
{
    uint32_t ch = out->channels;
    uint32_t ox[4], oy[4];
    bool sycc = img->color_space == OPJ_CLRSPC_SYCC && ch >= 3;
    /* JP2's colour box is applied only when decoding, so the colour space is known only now. */
    if (img->color_space == OPJ_CLRSPC_CMYK || img->color_space == OPJ_CLRSPC_EYCC)
        return ts_fail(err, TS_EUNSUPPORTED, "jp2: %s: CMYK/e-YCC colour not supported", p->path);
    if (img->numcomps < (ch == 2 ? 2 : ch) || img->numcomps != p->ncomps)
        return ts_fail(err, TS_EUNSUPPORTED, "jp2: %s: decoded %u components, expected %u", p->path,
                       img->numcomps, p->ncomps);
    for (uint32_t c = 0; c < ch; c++) {
        const opj_image_comp_t *k = &img->comps[c];
        if (!k->data || k->w == 0 || k->h == 0 || k->prec == 0 || k->prec > 16 ||
            k->factor != reduce)
            return ts_fail(err, TS_ECODEC, "jp2: %s: component %u decoded empty", p->path, c);
        jp2_comp_origin(k, &ox[c], &oy[c]);
    }
    for (uint32_t y = 0; y < out->height; y++) {
        uint8_t *row = ts_image_row(out, y);
        for (uint32_t x = 0; x < out->width; x++) {
            uint8_t *px = row + (size_t)x * ch;
            for (uint32_t c = 0; c < ch; c++) {
                const opj_image_comp_t *k = &img->comps[c];
                /* Subsampled components hold one sample per dx x dy block: replicate it. */
                int64_t cx = (int64_t)((ax + x) / k->dx) - ox[c];
                int64_t cy = (int64_t)((ay + y) / k->dy) - oy[c];
                if (cx < 0)
                    cx = 0;
                if (cy < 0)
                    cy = 0;
                if (cx >= (int64_t)k->w)
                    cx = k->w - 1;
                if (cy >= (int64_t)k->h)
                    cy = k->h - 1;
                px[c] = jp2_sample8(k->data[(size_t)cy * k->w + (size_t)cx], k->prec, k->sgnd != 0);
            }
            if (sycc)
                jp2_sycc_to_rgb(px);
        }
    }
    return TS_OK;
}

/* The full-resolution reference-grid area to decode for a level rectangle whose first pixel
 * is (ax, ay) in absolute level coordinates: a[] = x0, y0, x1, y1. */
static int jp2_area(const struct jp2_priv *p, uint32_t lvl, uint32_t ax, uint32_t ay,
                    const struct ts_read_req *req, uint64_t a[4], struct ts_err *err)
{
    uint64_t bx = (uint64_t)p->sub_x << lvl, by = (uint64_t)p->sub_y << lvl;
    /* Scaled outwards, the area reduces again to exactly the requested pixels. */
    a[0] = (uint64_t)ax << lvl;
    a[1] = (uint64_t)ay << lvl;
    a[2] = (uint64_t)(ax + req->w) << lvl;
    a[3] = (uint64_t)(ay + req->h) << lvl;
    /* OpenJPEG starts a subsampled component at the first sample whose origin is inside the
     * area, so an area starting mid-block would lose the chroma sample it needs. */
    a[0] = a[0] / bx * bx;
    a[1] = a[1] / by * by;
    if (p->whole_tiles) {
        a[0] = p->tx0 + (a[0] - p->tx0) / p->tdx * p->tdx;
        a[1] = p->ty0 + (a[1] - p->ty0) / p->tdy * p->tdy;
        a[2] = p->tx0 + (a[2] - p->tx0 + p->tdx - 1) / p->tdx * p->tdx;
        a[3] = p->ty0 + (a[3] - p->ty0 + p->tdy - 1) / p->tdy * p->tdy;
    }
    a[0] = a[0] < p->x0 ? p->x0 : a[0];
    a[1] = a[1] < p->y0 ? p->y0 : a[1];
    a[2] = a[2] > p->x1 ? p->x1 : a[2];
    a[3] = a[3] > p->y1 ? p->y1 : a[3];
    if ((uint64_t)(jp2_ceil_shift((uint32_t)a[2], lvl) - jp2_ceil_shift((uint32_t)a[0], lvl)) *
            (jp2_ceil_shift((uint32_t)a[3], lvl) - jp2_ceil_shift((uint32_t)a[1], lvl)) >
        JP2_MAX_DECODE_PIXELS)
        return ts_fail(err, TS_ETOOLARGE, "jp2: %s: area under %ux%u too large to decode", p->path,
                       req->w, req->h);
    return TS_OK;
}

static int jp2_read(struct ts_reader *r, const struct ts_read_req *req, struct ts_image *out,
                    struct ts_err *err)
{
    struct jp2_priv *p = r->priv;
    struct jp2_session s;
    const struct ts_level *lv;
    uint32_t lvl = req->level, ax, ay;
    uint64_t a[4];
    int rc;

    out->data = NULL;
    if (lvl >= r->info.nlevels)
        return ts_fail(err, TS_EINVAL, "jp2: level %u out of range", lvl);
    lv = &r->info.levels[lvl];
    if (req->w == 0 || req->h == 0 || req->x >= lv->width || req->y >= lv->height ||
        req->w > lv->width - req->x || req->h > lv->height - req->y)
        return ts_fail(err, TS_EINVAL, "jp2: region outside level %u", lvl);
    ax = jp2_ceil_shift(p->x0, lvl) + req->x;
    ay = jp2_ceil_shift(p->y0, lvl) + req->y;
    rc = jp2_area(p, lvl, ax, ay, req, a, err);
    if (rc != TS_OK)
        return rc;
    rc = ts_image_alloc(out, req->w, req->h, r->info.channels);
    if (rc != TS_OK)
        return ts_fail(err, rc, "jp2: cannot allocate %ux%u", req->w, req->h);
    rc = jp2_session_begin(p, lvl, &s, err);
    if (rc != TS_OK) {
        ts_image_free(out);
        return rc;
    }
    if (!opj_set_decode_area(s.codec, s.image, (OPJ_INT32)a[0], (OPJ_INT32)a[1], (OPJ_INT32)a[2],
                             (OPJ_INT32)a[3]) ||
        !opj_decode(s.codec, s.stream, s.image) || !opj_end_decompress(s.codec, s.stream))
        rc = ts_fail(err, TS_ECODEC, "jp2: %s: decode failed%s%s", p->path, p->msg[0] ? ": " : "",
                     p->msg);
    else
        rc = jp2_copy(p, s.image, lvl, ax, ay, out, err);
    jp2_session_end(&s);
    if (rc != TS_OK)
        ts_image_free(out);
    return rc;
}

static void jp2_close(struct ts_reader *r)
{
    struct jp2_priv *p = r->priv;
    if (p) {
        free(p->path);
        free(p);
    }
    free(r);
}

static const struct ts_reader_ops jp2_ops = {"jp2", jp2_read, jp2_close, NULL};

/* TS_OK with *fmt set when the first bytes are a JP2 signature box or a J2K codestream. */
static int jp2_sniff(const char *path, OPJ_CODEC_FORMAT *fmt, struct ts_err *err)
{
    uint8_t m[12];
    size_t n;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT || errno == ENOTDIR)
            return ts_fail(err, TS_ENOTFOUND, "jp2: %s: no such file", path);
        return ts_fail(err, TS_EIO, "jp2: %s: %s", path, strerror(errno));
    }
    n = fread(m, 1, sizeof m, f);
    fclose(f);
    if (n == sizeof m && memcmp(m, jp2_box_sig, sizeof m) == 0) {
        *fmt = OPJ_CODEC_JP2;
        return TS_OK;
    }
    if (n >= sizeof j2k_soc_siz && memcmp(m, j2k_soc_siz, sizeof j2k_soc_siz) == 0) {
        *fmt = OPJ_CODEC_J2K;
        return TS_OK;
    }
    return ts_fail(err, TS_EUNSUPPORTED, "jp2: %s: not JPEG 2000", path);
}

/* Channel layout of the codestream's components, or an error for what we cannot render. */
static int jp2_channels(struct jp2_priv *p, const opj_image_t *img, uint32_t *ch, uint32_t *bits,
                        struct ts_err *err)
{
    uint32_t n = img->numcomps, use;
    if (n == 0)
        return ts_fail(err, TS_ECODEC, "jp2: %s: no components", p->path);
    if (img->color_space == OPJ_CLRSPC_CMYK || img->color_space == OPJ_CLRSPC_EYCC)
        return ts_fail(err, TS_EUNSUPPORTED, "jp2: %s: CMYK/e-YCC colour not supported", p->path);
    /* Alpha flags come from JP2's cdef box, which OpenJPEG applies only when decoding: take a
     * fourth component as alpha (CMYK is refused once the colour box is known). */
    use = n > 4 ? 3 : n;
    *bits = 8;
    p->sub_x = p->sub_y = 1;
    for (uint32_t c = 0; c < use; c++) {
        const opj_image_comp_t *k = &img->comps[c];
        if (k->prec == 0 || k->prec > 16)
            return ts_fail(err, TS_EUNSUPPORTED, "jp2: %s: %u-bit samples", p->path, k->prec);
        if (k->prec > 8)
            *bits = 16;
        /* The first component carries full resolution; others may be halved (4:2:x). */
        if ((c == 0 && (k->dx != 1 || k->dy != 1)) || k->dx < 1 || k->dx > 2 || k->dy < 1 ||
            k->dy > 2)
            return ts_fail(err, TS_EUNSUPPORTED, "jp2: %s: component %u subsampled %ux%u", p->path,
                           c, k->dx, k->dy);
        p->sub_x = k->dx > p->sub_x ? k->dx : p->sub_x;
        p->sub_y = k->dy > p->sub_y ? k->dy : p->sub_y;
    }
    *ch = use;
    return TS_OK;
}

/* Fills the pyramid from the main header: one level per resolution every component has. */
static int jp2_levels(struct jp2_priv *p, const opj_codestream_info_v2_t *ci,
                      struct ts_image_info *info, struct ts_err *err)
{
    uint32_t nres = UINT32_MAX;
    bool tiled = ci->tw * ci->th > 1;
    for (uint32_t c = 0; c < ci->nbcomps; c++) {
        const opj_tccp_info_t *t = &ci->m_default_tile_info.tccp_info[c];
        if (t->numresolutions < nres)
            nres = t->numresolutions;
    }
    if (nres == 0 || nres == UINT32_MAX)
        return ts_fail(err, TS_ECODEC, "jp2: %s: no resolution levels", p->path);
    if (nres > TS_MAX_LEVELS)
        nres = TS_MAX_LEVELS;
    /* OpenJPEG 2.5.0 decodes HTJ2K (Part 15) code-blocks wrongly when the decode area cuts a
     * tile (its own opj_decompress -d shows the same damage): such files decode whole tiles. */
    p->whole_tiles = false;
    for (uint32_t c = 0; c < ci->nbcomps; c++)
        if (ci->m_default_tile_info.tccp_info[c].cblksty & JP2_CBLKSTY_HT)
            p->whole_tiles = true;
    p->tx0 = ci->tx0;
    p->ty0 = ci->ty0;
    p->tdx = ci->tdx ? ci->tdx : 1;
    p->tdy = ci->tdy ? ci->tdy : 1;
    info->nlevels = 0;
    for (uint32_t i = 0; i < nres; i++) {
        struct ts_level *lv = &info->levels[i];
        lv->width = jp2_ceil_shift(p->x1, i) - jp2_ceil_shift(p->x0, i);
        lv->height = jp2_ceil_shift(p->y1, i) - jp2_ceil_shift(p->y0, i);
        if (lv->width == 0 || lv->height == 0)
            break;
        /* A level must be strictly smaller than the one above it. */
        if (i > 0 && lv->width == info->levels[i - 1].width &&
            lv->height == info->levels[i - 1].height)
            break;
        lv->tile_w = tiled ? jp2_ceil_shift(ci->tdx, i) : 0;
        lv->tile_h = tiled ? jp2_ceil_shift(ci->tdy, i) : 0;
        info->nlevels = i + 1;
    }
    if (info->nlevels == 0)
        return ts_fail(err, TS_ECODEC, "jp2: %s: empty image", p->path);
    return TS_OK;
}

static int jp2_inspect(struct ts_reader *r, struct ts_err *err)
{
    struct jp2_priv *p = r->priv;
    struct jp2_session s;
    opj_codestream_info_v2_t *ci;
    int rc = jp2_session_begin(p, 0, &s, err);
    if (rc != TS_OK)
        return rc;
    if (s.image->x1 <= s.image->x0 || s.image->y1 <= s.image->y0 || s.image->x1 > INT32_MAX ||
        s.image->y1 > INT32_MAX) {
        jp2_session_end(&s);
        return ts_fail(err, TS_ECODEC, "jp2: %s: bad image area", p->path);
    }
    p->x0 = s.image->x0;
    p->y0 = s.image->y0;
    p->x1 = s.image->x1;
    p->y1 = s.image->y1;
    p->ncomps = s.image->numcomps;
    rc = jp2_channels(p, s.image, &r->info.channels, &r->info.bits_per_sample, err);
    if (rc == TS_OK) {
        ci = opj_get_cstr_info(s.codec);
        if (!ci)
            rc = ts_fail(err, TS_ECODEC, "jp2: %s: no codestream info", p->path);
        else
            rc = jp2_levels(p, ci, &r->info, err);
        opj_destroy_cstr_info(&ci);
    }
    jp2_session_end(&s);
    if (rc == TS_OK) {
        r->info.width = r->info.levels[0].width;
        r->info.height = r->info.levels[0].height;
        r->info.format = p->fmt == OPJ_CODEC_JP2 ? "jp2" : "j2k";
    }
    return rc;
}

int ts_jp2_open(const char *path, struct ts_reader **out, struct ts_err *err)
{
    struct ts_reader *r;
    struct jp2_priv *p;
    OPJ_CODEC_FORMAT fmt = OPJ_CODEC_UNKNOWN;
    long cores;
    int rc;

    *out = NULL;
    rc = jp2_sniff(path, &fmt, err);
    if (rc != TS_OK)
        return rc;
    r = calloc(1, sizeof *r);
    p = calloc(1, sizeof *p);
    if (!r || !p || !(p->path = strdup(path))) {
        free(p);
        free(r);
        return ts_fail(err, TS_ENOMEM, "jp2: out of memory");
    }
    p->fmt = fmt;
    cores = sysconf(_SC_NPROCESSORS_ONLN);
    p->threads = cores < 1 ? 1 : cores > JP2_MAX_THREADS ? JP2_MAX_THREADS : (int)cores;
    r->ops = &jp2_ops;
    r->priv = p;
    rc = jp2_inspect(r, err);
    if (rc != TS_OK) {
        jp2_close(r);
        return rc;
    }
    *out = r;
    return TS_OK;
}
