/* Plain JPEG reader over libjpeg-turbo: DCT scaling plus cropped, skipped scanlines for regions,
 * EXIF orientation and ICC colour applied so callers see an upright sRGB image. */
#include "image/bytes.h"
#include "image/color.h"
#include "image/exif.h"
#include "image/reader.h"
#include "image/rowtail.h"

/* jpeglib.h uses FILE without including stdio.h. */
#include <stdio.h>

#include <jerror.h>
#include <jpeglib.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JPEG_MAX_DIM 65535u
/* What one fill of the source manager reads: libjpeg's own stdio source reads 4 KB. */
#define JPEG_SRC_CHUNK 16384u
/* Scanlines between looks at the request's cancel token: a few milliseconds of decoding. */
#define JPEG_CANCEL_ROWS 64u

struct jpeg_job;

struct jpeg_priv {
    struct ts_bytes
        *bytes; /* owned; a read continues the live decode or decodes afresh through it */
    bool cmyk;
    uint32_t orient;           /* EXIF orientation, 1..8 */
    uint32_t sw, sh;           /* stored (not upright) dimensions */
    struct ts_color_xform *xf; /* to sRGB; NULL when the pixels already are */
    /* A baseline decode left where the last read stopped, so that the next band of a banded
     * render goes on from there instead of decoding the rows above it again; NULL if none.
     * tail holds the last read's rows from the next band's start, at the live scale. */
    struct jpeg_job *live;
    struct ts_rowtail tail;
    /* What decoding costs: progressive and multi-scan files keep every coefficient of the
     * image until the last scan, so their reads cost the whole image whatever the region. */
    bool multiscan;
    uint32_t ncomp, max_h, max_v;
    uint32_t hs[4], vs[4]; /* sampling factors per component */
    struct ts_buf meta;    /* EXIF text tags and XMP, "name\0value\0" (info.meta points here) */
};

struct jpeg_err_ctx {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    struct ts_err *err;
    bool eof_warned;
};

static void jpeg_on_error(j_common_ptr cinfo)
{
    struct jpeg_err_ctx *e = (struct jpeg_err_ctx *)cinfo->err;
    char msg[JMSG_LENGTH_MAX];
    cinfo->err->format_message(cinfo, msg);
    ts_fail(e->err, TS_ECODEC, "libjpeg: %s", msg);
    longjmp(e->jump, 1);
}

/* Warnings are silent, but a file that ends early is reported as corrupt, not painted gray. */
static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    struct jpeg_err_ctx *e = (struct jpeg_err_ctx *)cinfo->err;
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF)
        e->eof_warned = true;
}

static bool jpeg_is_jpeg(struct ts_bytes *bytes)
{
    uint8_t m[3];
    return ts_bytes_read_at(bytes, m, sizeof m, 0) == 3 && m[0] == 0xff && m[1] == 0xd8 &&
           m[2] == 0xff;
}

/* A libjpeg source manager reading the descriptor with pread from its own offset, so a read
 * never depends on (or moves) the file position another reader of the same source may share. */
struct jpeg_fd_src {
    struct jpeg_source_mgr pub;
    struct ts_bytes *bytes;
    uint64_t off; /* of the next byte to fetch */
    JOCTET buf[JPEG_SRC_CHUNK];
};

static void jpeg_src_init(j_decompress_ptr ci)
{
    (void)ci;
}

static boolean jpeg_src_fill(j_decompress_ptr ci)
{
    struct jpeg_fd_src *s = (struct jpeg_fd_src *)ci->src;
    static const JOCTET eoi[2] = {0xff, JPEG_EOI};
    ssize_t n = ts_bytes_read_at(s->bytes, s->buf, sizeof s->buf, s->off);
    if (n < 0)
        ERREXIT(ci, JERR_FILE_READ);
    if (n == 0) {
        /* As libjpeg's stdio source does: warn (jpeg_on_message turns it into an error for
         * the pixels) and end the stream with an EOI marker so the decoder can stop. */
        WARNMS(ci, JWRN_JPEG_EOF);
        s->pub.next_input_byte = eoi;
        s->pub.bytes_in_buffer = sizeof eoi;
        return TRUE;
    }
    s->off += (uint64_t)n;
    s->pub.next_input_byte = s->buf;
    s->pub.bytes_in_buffer = (size_t)n;
    return TRUE;
}

/* Skipping past what is buffered costs no read: the offset just moves on. */
static void jpeg_src_skip(j_decompress_ptr ci, long num_bytes)
{
    struct jpeg_fd_src *s = (struct jpeg_fd_src *)ci->src;
    if (num_bytes <= 0)
        return;
    if ((size_t)num_bytes <= s->pub.bytes_in_buffer) {
        s->pub.next_input_byte += num_bytes;
        s->pub.bytes_in_buffer -= (size_t)num_bytes;
        return;
    }
    s->off += (uint64_t)num_bytes - s->pub.bytes_in_buffer;
    s->pub.next_input_byte = s->buf;
    s->pub.bytes_in_buffer = 0;
}

static void jpeg_src_term(j_decompress_ptr ci)
{
    (void)ci;
}

static void jpeg_src_attach(j_decompress_ptr ci, struct jpeg_fd_src *s, struct ts_bytes *bytes)
{
    s->pub.init_source = jpeg_src_init;
    s->pub.fill_input_buffer = jpeg_src_fill;
    s->pub.skip_input_data = jpeg_src_skip;
    s->pub.resync_to_restart = jpeg_resync_to_restart;
    s->pub.term_source = jpeg_src_term;
    s->pub.next_input_byte = NULL;
    s->pub.bytes_in_buffer = 0;
    s->bytes = bytes;
    s->off = 0;
    ci->src = &s->pub;
}

/* Smallest n in 1..8 whose n/8-scaled region is still at least min_w x min_h. */
static unsigned jpeg_pick_scale(const struct ts_read_req *q)
{
    uint32_t mw = q->min_w == 0 || q->min_w > q->w ? q->w : q->min_w;
    uint32_t mh = q->min_h == 0 || q->min_h > q->h ? q->h : q->min_h;
    for (unsigned n = 1; n < 8; n++) {
        /* floor of the scaled region: conservative against the ceil libjpeg applies. */
        if ((uint64_t)q->w * n / 8 >= mw && (uint64_t)q->h * n / 8 >= mh)
            return n;
    }
    return 8;
}

static void jpeg_cmyk_to_rgb(uint8_t *row, uint32_t n, bool inverted)
{
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *s = row + (size_t)i * 4;
        uint32_t c = s[0], m = s[1], y = s[2], k = s[3];
        if (!inverted)
            c = 255 - c, m = 255 - m, y = 255 - y, k = 255 - k;
        /* Adobe stores inverted ink, so the stored values are already "255 - ink". */
        row[i * 3 + 0] = (uint8_t)((c * k + 127) / 255);
        row[i * 3 + 1] = (uint8_t)((m * k + 127) / 255);
        row[i * 3 + 2] = (uint8_t)((y * k + 127) / 255);
    }
}

static void jpeg_set_out_space(struct jpeg_decompress_struct *ci)
{
    if (ci->num_components == 1)
        ci->out_color_space = JCS_GRAYSCALE;
    else if (ci->jpeg_color_space == JCS_CMYK || ci->jpeg_color_space == JCS_YCCK)
        ci->out_color_space = JCS_CMYK;
    else
        ci->out_color_space = JCS_RGB;
}

struct jpeg_job {
    struct jpeg_decompress_struct ci;
    struct jpeg_err_ctx e;
    struct jpeg_fd_src src;
    uint8_t *line;
    JOCTET *icc; /* from jpeg_read_icc_profile, malloc'd by libjpeg */
    unsigned int icc_len;
    /* Once decompressing: the scale (n/8), the scaled width (output_width is the crop's once
     * cropped) and the columns each scanline holds. */
    unsigned n;
    JDIMENSION full_w, xoff, cw;
};

/* A decompressor with our error handling, reading bytes from its start. */
static void jpeg_job_start(struct jpeg_job *j, struct ts_bytes *bytes, struct ts_err *err)
{
    j->ci.err = jpeg_std_error(&j->e.mgr);
    j->e.mgr.error_exit = jpeg_on_error;
    j->e.mgr.emit_message = jpeg_on_message;
    j->e.err = err;
    jpeg_create_decompress(&j->ci);
    jpeg_src_attach(&j->ci, &j->src, bytes);
}

static void jpeg_job_end(struct jpeg_job *j)
{
    jpeg_destroy_decompress(&j->ci);
    free(j->line);
    free(j->icc);
}

/* Starts decompressing at scale n/8 with scanlines cropped to cover [sx0, sx1) (clipped to the
 * scaled image). Runs inside setjmp, like jpeg_decode_rows. */
static int jpeg_decode_start(struct jpeg_job *j, unsigned n, uint32_t sx0, uint32_t sx1,
                             struct ts_err *err)
{
    struct jpeg_decompress_struct *ci = &j->ci;
    jpeg_read_header(ci, TRUE);
    jpeg_set_out_space(ci);
    ci->scale_num = n;
    ci->scale_denom = 8;
    jpeg_start_decompress(ci);
    j->n = n;
    j->full_w = ci->output_width;
    if (sx1 > ci->output_width)
        sx1 = ci->output_width;
    if (sx0 >= sx1)
        return ts_fail(err, TS_ECODEC, "JPEG region empty after scaling");
    j->xoff = sx0;
    j->cw = sx1 - sx0;
    if (j->xoff > 0 || j->cw < ci->output_width)
        jpeg_crop_scanline(ci, &j->xoff, &j->cw);
    if (!(j->line = malloc((size_t)j->cw * (size_t)ci->output_components)))
        return ts_fail(err, TS_ENOMEM, "out of memory for a JPEG row");
    return TS_OK;
}

/* The region of q at the job's scale: columns [sx0, sx1), rows [sy0, sy1). */
static void jpeg_scaled_region(const struct jpeg_job *j, const struct ts_read_req *q, uint32_t *sx0,
                               uint32_t *sy0, uint32_t *sx1, uint32_t *sy1)
{
    unsigned n = j->n;
    *sx0 = (uint32_t)((uint64_t)q->x * n / 8);
    *sy0 = (uint32_t)((uint64_t)q->y * n / 8);
    *sx1 = (uint32_t)(((uint64_t)(q->x + q->w) * n + 7) / 8);
    *sy1 = (uint32_t)(((uint64_t)(q->y + q->h) * n + 7) / 8);
    if (*sx1 > j->full_w)
        *sx1 = j->full_w;
    if (*sy1 > j->ci.output_height)
        *sy1 = j->ci.output_height;
}

/* Whether the live job can deliver q by reading on: its scale gives at least q's minimum, its
 * scanlines hold q's columns, and the rows above its position are in the tail. */
static bool jpeg_job_continues(const struct jpeg_job *j, const struct ts_rowtail *tail,
                               const struct ts_read_req *q)
{
    uint32_t sx0, sy0, sx1, sy1, at = j->ci.output_scanline;
    if (j->e.eof_warned || j->n < jpeg_pick_scale(q))
        return false;
    jpeg_scaled_region(j, q, &sx0, &sy0, &sx1, &sy1);
    return sx0 < sx1 && sy0 < sy1 && sx0 >= j->xoff && sx1 <= j->xoff + j->cw &&
           (sy0 >= at || (sy1 >= at && ts_rowtail_has(tail, sy0, at, sx0, sx1 - sx0)));
}

/* Reads q's rows from where the decode stands. Runs inside setjmp: any libjpeg error longjmps
 * back to the caller, which owns cleanup. */
static int jpeg_decode_rows(struct jpeg_job *j, const struct ts_read_req *q,
                            const struct jpeg_priv *p, struct ts_image *out, struct ts_err *err)
{
    const struct ts_rowtail *tail = &p->tail;
    bool cmyk = p->cmyk;
    struct jpeg_decompress_struct *ci = &j->ci;
    uint32_t sx0, sy0, sx1, sy1, rows, out_ch, in_ch;
    int rc;

    jpeg_scaled_region(j, q, &sx0, &sy0, &sx1, &sy1);
    if (sx0 >= sx1 || sy0 >= sy1)
        return ts_fail(err, TS_ECODEC, "JPEG region empty after scaling");
    in_ch = (uint32_t)ci->output_components;
    out_ch = cmyk ? 3 : in_ch;
    if ((rc = ts_image_alloc(out, sx1 - sx0, sy1 - sy0, out_ch)) != TS_OK)
        return ts_fail(err, rc, "cannot allocate JPEG region");
    rows = 0;
    if (sy0 < ci->output_scanline) {
        ts_rowtail_copy(tail, sy0, ci->output_scanline, sx0, out);
        rows = ci->output_scanline - sy0;
    }
    /* Skipping still entropy-decodes, so a long skip is cut into pieces to look in between. */
    while (ci->output_scanline < sy0) {
        JDIMENSION step = sy0 - ci->output_scanline;
        if (step > 16 * JPEG_CANCEL_ROWS)
            step = 16 * JPEG_CANCEL_ROWS;
        if ((rc = ts_cancel_check(q->cancel, err)) != TS_OK)
            return rc;
        if (jpeg_skip_scanlines(ci, step) != step)
            return ts_fail(err, TS_ECODEC, "JPEG ends before row %u", sy0);
    }
    for (; rows < sy1 - sy0; rows++) {
        JSAMPROW row = j->line;
        if (rows % JPEG_CANCEL_ROWS == 0 && (rc = ts_cancel_check(q->cancel, err)) != TS_OK)
            return rc;
        if (jpeg_read_scanlines(ci, &row, 1) != 1 || j->e.eof_warned)
            return ts_fail(err, TS_ECODEC, "JPEG data ends early");
        if (p->xf) {
            ts_color_xform_pixels(p->xf, j->line + (size_t)(sx0 - j->xoff) * in_ch,
                                  ts_image_row(out, rows), sx1 - sx0);
            continue;
        }
        /* Only if lcms2 could not build even the generic CMYK transform. */
        if (cmyk)
            jpeg_cmyk_to_rgb(j->line, j->cw, ci->saw_Adobe_marker);
        memcpy(ts_image_row(out, rows), j->line + (size_t)(sx0 - j->xoff) * out_ch,
               (size_t)(sx1 - sx0) * out_ch);
    }
    return TS_OK;
}

/* Runs inside setjmp, like jpeg_decode_rows. */
static int jpeg_decode_region(struct jpeg_job *j, bool fresh, const struct ts_read_req *q,
                              const struct jpeg_priv *p, struct ts_image *out, struct ts_err *err)
{
    if (fresh) {
        unsigned n = jpeg_pick_scale(q);
        int rc = jpeg_decode_start(j, n, (uint32_t)((uint64_t)q->x * n / 8),
                                   (uint32_t)(((uint64_t)(q->x + q->w) * n + 7) / 8), err);
        if (rc != TS_OK)
            return rc;
    }
    return jpeg_decode_rows(j, q, p, out, err);
}

/* The decode under setjmp, in a frame of its own so that no local of the caller's is live
 * across longjmp; the job lives on the heap, so nothing the decoder touched is clobbered. */
static int jpeg_run(struct jpeg_job *j, bool fresh, const struct ts_read_req *q,
                    const struct jpeg_priv *p, struct ts_image *out, struct ts_err *err)
{
    if (setjmp(j->e.jump))
        return TS_ECODEC;
    return jpeg_decode_region(j, fresh, q, p, out, err);
}

static int jpeg_read(struct ts_reader *r, const struct ts_read_req *q, struct ts_image *out,
                     struct ts_err *err)
{
    struct jpeg_priv *p = r->priv;
    struct jpeg_job *j = p->live;
    struct ts_image stored = {0};
    struct ts_read_req sq;
    JDIMENSION first = 0;
    bool fresh;
    int rc;

    out->data = NULL;
    p->live = NULL;
    /* Decode the stored pixels under the upright request, then turn them upright. */
    ts_exif_stored_req(p->orient, p->sw, p->sh, q, &sq);
    fresh = !j || !jpeg_job_continues(j, &p->tail, &sq);
    if (fresh) {
        if (j) {
            jpeg_job_end(j);
            free(j);
        }
        if (!(j = calloc(1, sizeof *j)))
            return ts_fail(err, TS_ENOMEM, "out of memory for JPEG decoder");
        jpeg_job_start(j, p->bytes, err);
    } else {
        j->e.err = err;
        first = j->ci.output_scanline;
    }
    rc = jpeg_run(j, fresh, &sq, p, p->orient > 1 ? &stored : out, err);
    if (rc == TS_OK && j->n > 0)
        ts_reader_count_rows((uint64_t)(j->ci.output_scanline - first) * 8 / j->n);
    /* Kept only for the next band of this render (the hint is in upright rows, so only for
     * upright files), and not for progressive files, which hold the whole image's
     * coefficients while decompressing. */
    if (rc == TS_OK && q->more && p->orient == 1 && !j->ci.progressive_mode &&
        j->ci.output_scanline < j->ci.output_height) {
        uint32_t sx0, sy0, sx1, sy1;
        jpeg_scaled_region(j, &sq, &sx0, &sy0, &sx1, &sy1);
        ts_rowtail_keep(&p->tail, out, sy0, sx0, (uint32_t)((uint64_t)q->next_y * j->n / 8));
        p->live = j;
    } else {
        ts_rowtail_clear(&p->tail);
        jpeg_job_end(j);
        free(j);
    }
    if (rc == TS_OK && p->orient > 1)
        rc = ts_exif_apply(p->orient, &stored, out, err);
    ts_image_free(&stored);
    if (rc != TS_OK)
        ts_image_free(out);
    return rc;
}

static void jpeg_close(struct ts_reader *r)
{
    if (!r)
        return;
    if (r->priv) {
        struct jpeg_priv *p = r->priv;
        if (p->live) {
            jpeg_job_end(p->live);
            free(p->live);
        }
        ts_rowtail_clear(&p->tail);
        if (p->bytes)
            ts_bytes_unref(p->bytes);
        ts_color_xform_free(p->xf);
        ts_buf_free(&p->meta);
    }
    free(r->priv);
    ts_bytes_unref(r->bytes); /* the reference ts_reader_open_bytes added */
    free(r);
}

/* Measured with tools/mem_probe.c against libjpeg-turbo 2.1: the decompressor's pools,
 * tables and the source buffer. */
#define JPEG_COST_FIXED ((size_t)512 << 10)

static size_t jpeg_blocks(uint32_t len, uint32_t samp, uint32_t max_samp)
{
    /* Blocks of one component along an axis, padded to whole MCUs as libjpeg stores them. */
    uint64_t b = ((uint64_t)len * samp + (uint64_t)8 * max_samp - 1) / ((uint64_t)8 * max_samp);
    return (size_t)((b + samp - 1) / samp * samp);
}

static int jpeg_cost(struct ts_reader *r, const struct ts_read_req *q, size_t *bytes,
                     struct ts_err *err)
{
    const struct jpeg_priv *p = r->priv;
    struct ts_read_req sq;
    (void)err;
    ts_exif_stored_req(p->orient, p->sw, p->sh, q, &sq);
    unsigned n = jpeg_pick_scale(&sq);
    size_t total = JPEG_COST_FIXED;
    if (p->multiscan)
        for (uint32_t c = 0; c < p->ncomp; c++)
            total = ts_sat_add(total, ts_sat_mul(ts_sat_mul(jpeg_blocks(p->sw, p->hs[c], p->max_h),
                                                            jpeg_blocks(p->sh, p->vs[c], p->max_v)),
                                                 64 * sizeof(JCOEF)));
    /* Row buffers span the whole scaled width even for a cropped read: the context rows of
     * each component, upsampling and colour conversion. */
    size_t width = ((size_t)p->sw * n + 7) / 8 + 16;
    total = ts_sat_add(total, ts_sat_mul(ts_sat_mul(width, p->ncomp), (size_t)p->max_v * n * 3));
    /* The scanline, the delivered region, and its stored copy when it is turned upright. */
    size_t region = ts_sat_mul(ts_sat_mul(((size_t)sq.w * n + 15) / 8, ((size_t)sq.h * n + 15) / 8),
                               r->info.channels);
    total = ts_sat_add(total, ts_sat_mul(width, 4));
    *bytes = ts_sat_add(total, ts_sat_mul(region, p->orient > 1 ? 2 : 1));
    return TS_OK;
}

static const struct ts_reader_ops jpeg_ops = {"jpeg",    jpeg_read, jpeg_close, NULL,
                                              jpeg_cost, NULL,      NULL,       NULL};

/* The first EXIF APP1 segment's orientation; 1 when there is none. */
static uint32_t jpeg_orientation(j_decompress_ptr ci)
{
    for (jpeg_saved_marker_ptr m = ci->marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 &&
            memcmp(m->data, "Exif\0\0", 6) == 0)
            return ts_exif_orientation(m->data, m->data_length);
    return 1;
}

/* One text tag into p->meta; a value that does not fit the cap is left out. */
static int jpeg_meta_add(void *ctx, const char *name, const char *value, size_t len)
{
    struct jpeg_priv *p = ctx;
    const char *nul = memchr(value, '\0', len);
    if (nul)
        len = (size_t)(nul - value);
    if (!len)
        return 0;
    size_t mark = p->meta.len;
    int rc = ts_buf_append(&p->meta, name, strlen(name) + 1);
    rc = rc ? rc : ts_buf_append(&p->meta, value, len);
    rc = rc ? rc : ts_buf_append(&p->meta, "", 1);
    if (rc)
        p->meta.len = mark;
    return 0;
}

/* What the file says about itself, for IIP's metadata objects and manifests: EXIF's text tags,
 * the XMP packet and IPTC's text records, as the TIFF reader gives tags for TIFFs. A name given
 * twice keeps its first value (ts_image_meta), so EXIF wins over IPTC as markers come. */
static void jpeg_read_texts(struct jpeg_priv *p, j_decompress_ptr ci, struct ts_reader *r)
{
    static const char xmp[] = "http://ns.adobe.com/xap/1.0/";
    bool exif = false, packet = false, iptc = false;
    for (jpeg_saved_marker_ptr m = ci->marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 13 && !iptc) {
            iptc = true;
            ts_iptc_texts(m->data, m->data_length, jpeg_meta_add, p);
        }
        if (m->marker != JPEG_APP0 + 1)
            continue;
        if (!exif && m->data_length >= 6 && memcmp(m->data, "Exif\0\0", 6) == 0) {
            exif = true;
            ts_exif_texts(m->data, m->data_length, jpeg_meta_add, p);
        } else if (!packet && m->data_length > sizeof xmp &&
                   memcmp(m->data, xmp, sizeof xmp) == 0) {
            packet = true;
            jpeg_meta_add(p, "xmp", (const char *)m->data + sizeof xmp,
                          m->data_length - sizeof xmp);
        }
    }
    r->info.meta = p->meta.len ? (const char *)p->meta.data : NULL;
    r->info.meta_len = p->meta.len;
}

/* A broken profile is ignored (the pixels are shown as they are), but not a lack of memory. */
static int jpeg_attach_color(struct jpeg_priv *p, const struct jpeg_job *j, struct ts_err *err)
{
    struct ts_color_layout lay = {.bytes = 1};
    struct ts_err ignored;
    int rc;

    lay.space = j->ci.num_components == 1   ? TS_COLOR_GRAY
                : j->ci.num_components == 3 ? TS_COLOR_RGB
                                            : TS_COLOR_CMYK;
    /* Adobe's CMYK JPEGs (APP14 present) store 255 - ink; libvips reads them the same way. */
    lay.inverted = lay.space == TS_COLOR_CMYK && j->ci.saw_Adobe_marker;
    rc = ts_color_xform_create(j->icc, j->icc_len, &lay, &p->xf, &ignored);
    if (rc == TS_ENOMEM)
        return ts_fail(err, rc, "%s", ignored.msg);
    return TS_OK;
}

/* Runs inside setjmp, like jpeg_decode_region. */
static int jpeg_probe_header(struct jpeg_job *j, struct ts_reader *r, struct ts_err *err)
{
    struct jpeg_priv *p = r->priv;
    int rc = TS_OK;

    jpeg_save_markers(&j->ci, JPEG_APP0 + 1, 0xffff);
    jpeg_save_markers(&j->ci, JPEG_APP0 + 2, 0xffff);
    jpeg_save_markers(&j->ci, JPEG_APP0 + 13, 0xffff);
    jpeg_read_header(&j->ci, TRUE);
    if (j->ci.image_width == 0 || j->ci.image_height == 0 || j->ci.image_width > JPEG_MAX_DIM ||
        j->ci.image_height > JPEG_MAX_DIM)
        rc = ts_fail(err, TS_ECODEC, "JPEG dimensions out of range");
    else if (j->ci.num_components != 1 && j->ci.num_components != 3 && j->ci.num_components != 4)
        rc = ts_fail(err, TS_EUNSUPPORTED, "JPEG with %d components", j->ci.num_components);
    else if (j->ci.num_components == 4 && j->ci.jpeg_color_space != JCS_CMYK &&
             j->ci.jpeg_color_space != JCS_YCCK)
        rc = ts_fail(err, TS_EUNSUPPORTED, "4-component JPEG that is not CMYK");
    if (rc != TS_OK)
        return rc;
    p->sw = j->ci.image_width;
    p->sh = j->ci.image_height;
    /* jpeg_read_header stops at the first scan: a scan without every component, or any
     * progressive file, means libjpeg will buffer the whole image's coefficients. */
    p->multiscan = j->ci.progressive_mode || j->ci.comps_in_scan < j->ci.num_components;
    p->ncomp = (uint32_t)j->ci.num_components;
    p->max_h = p->max_v = 1;
    for (uint32_t c = 0; c < p->ncomp; c++) {
        p->hs[c] = (uint32_t)j->ci.comp_info[c].h_samp_factor;
        p->vs[c] = (uint32_t)j->ci.comp_info[c].v_samp_factor;
        p->max_h = p->hs[c] > p->max_h ? p->hs[c] : p->max_h;
        p->max_v = p->vs[c] > p->max_v ? p->vs[c] : p->max_v;
    }
    p->orient = jpeg_orientation(&j->ci);
    jpeg_read_texts(p, &j->ci, r);
    r->info.width = ts_exif_swaps_axes(p->orient) ? p->sh : p->sw;
    r->info.height = ts_exif_swaps_axes(p->orient) ? p->sw : p->sh;
    r->info.channels = j->ci.num_components == 1 ? 1 : 3;
    p->cmyk = j->ci.num_components == 4;
    if (!jpeg_read_icc_profile(&j->ci, &j->icc, &j->icc_len))
        j->icc = NULL, j->icc_len = 0;
    return jpeg_attach_color(p, j, err);
}

/* Header only: the pixels are decoded per request. */
static int jpeg_probe(struct ts_reader *r, struct ts_err *err)
{
    struct jpeg_job *j = calloc(1, sizeof *j);
    int rc;

    if (!j)
        return ts_fail(err, TS_ENOMEM, "out of memory for JPEG decoder");
    jpeg_job_start(j, ((struct jpeg_priv *)r->priv)->bytes, err);
    if (setjmp(j->e.jump))
        rc = TS_ECODEC;
    else
        rc = jpeg_probe_header(j, r, err);
    jpeg_job_end(j);
    free(j);
    return rc;
}

int ts_jpeg_open(struct ts_bytes *bytes, struct ts_reader **out, struct ts_err *err)
{
    struct ts_reader *r;
    struct jpeg_priv *p;
    int rc;

    *out = NULL;
    if (!jpeg_is_jpeg(bytes)) {
        ts_bytes_unref(bytes);
        return ts_fail(err, TS_EUNSUPPORTED, "not a JPEG file");
    }
    r = calloc(1, sizeof *r);
    p = calloc(1, sizeof *p);
    if (!r || !p) {
        free(p), free(r);
        ts_bytes_unref(bytes);
        return ts_fail(err, TS_ENOMEM, "out of memory opening JPEG");
    }
    p->bytes = bytes;
    ts_buf_init_capped(&p->meta, 1u << 20); /* an APP1 segment holds 64 KB at most */
    r->ops = &jpeg_ops;
    r->priv = p;
    if ((rc = jpeg_probe(r, err)) != TS_OK) {
        jpeg_close(r);
        return rc;
    }
    r->info.bits_per_sample = 8;
    r->info.nlevels = 1;
    r->info.levels[0].width = r->info.width;
    r->info.levels[0].height = r->info.height;
    r->info.format = "jpeg";
    *out = r;
    return TS_OK;
}
