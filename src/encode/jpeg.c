/* JPEG output through libjpeg-turbo, written straight into a ts_buf; codec errors never exit. */
#include "encode/encode.h"

#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

/* jpeglib.h uses FILE without including stdio.h. */
#include <stdio.h>

#include <jerror.h>
#include <jpeglib.h>

#define JPEG_CHUNK 16384

struct jpeg_fail {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
};

/* Destination that grows the caller's buffer in place instead of a separate malloc'd copy. */
struct jpeg_buf_dest {
    struct jpeg_destination_mgr pub;
    struct ts_buf *buf;
};

static void fail_exit(j_common_ptr cinfo)
{
    struct jpeg_fail *f = (struct jpeg_fail *)cinfo->err;
    f->pub.format_message(cinfo, f->msg);
    longjmp(f->jump, 1);
}

static void fail_quiet(j_common_ptr cinfo, int level)
{
    (void)cinfo;
    (void)level;
}

/* Makes the unused capacity of the buffer the encoder's output window. */
static void dest_window(j_compress_ptr cinfo)
{
    struct jpeg_buf_dest *d = (struct jpeg_buf_dest *)cinfo->dest;
    if (ts_buf_reserve(d->buf, JPEG_CHUNK) != TS_OK)
        ERREXIT(cinfo, JERR_OUT_OF_MEMORY);
    d->pub.next_output_byte = d->buf->data + d->buf->len;
    d->pub.free_in_buffer = d->buf->cap - d->buf->len;
}

static void dest_init(j_compress_ptr cinfo)
{
    dest_window(cinfo);
}

static boolean dest_empty(j_compress_ptr cinfo)
{
    struct jpeg_buf_dest *d = (struct jpeg_buf_dest *)cinfo->dest;
    /* libjpeg only calls this with the whole window full. */
    d->buf->len = d->buf->cap;
    dest_window(cinfo);
    return TRUE;
}

static void dest_term(j_compress_ptr cinfo)
{
    struct jpeg_buf_dest *d = (struct jpeg_buf_dest *)cinfo->dest;
    d->buf->len = d->buf->cap - d->pub.free_in_buffer;
}

/* Row in the encoder's layout: 1 and 3 channels as they are, alpha composited over white. */
static JSAMPROW jpeg_row(const struct ts_image *img, uint32_t y, uint8_t *scratch)
{
    const uint8_t *s = ts_image_row(img, y);
    uint32_t ch = img->channels;
    if (ch == 1 || ch == 3)
        return (JSAMPROW)s;
    uint32_t colors = ch - 1;
    uint8_t *d = scratch;
    for (uint32_t x = 0; x < img->width; x++, s += ch) {
        uint32_t a = s[colors];
        for (uint32_t c = 0; c < colors; c++)
            *d++ = (uint8_t)((s[c] * a + 255u * (255u - a) + 127u) / 255u);
    }
    return scratch;
}

/* Everything the encode touches lives behind one pointer, so nothing a longjmp skips over can
 * be left in a clobbered register. */
struct jpeg_job {
    const struct ts_image *img;
    const struct ts_ycc *ycc; /* instead of img: planes written as they are (jpeg_run_raw) */
    uint8_t *pad;             /* for ycc: one iMCU row of each plane, edges repeated */
    int quality;
    uint8_t *scratch;
    struct jpeg_compress_struct cinfo;
    struct jpeg_fail fail;
    struct jpeg_buf_dest dest;
};

static void jpeg_setup(struct jpeg_job *job)
{
    j_compress_ptr cinfo = &job->cinfo;

    cinfo->image_width = job->img->width;
    cinfo->image_height = job->img->height;
    cinfo->input_components = job->img->channels >= 3 ? 3 : 1;
    cinfo->in_color_space = job->img->channels >= 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(cinfo);
    jpeg_set_quality(cinfo, job->quality, TRUE);
    cinfo->optimize_coding = FALSE; /* a second pass over the data costs more than it saves */
    if (cinfo->input_components == 3) {
        cinfo->comp_info[0].h_samp_factor = 2; /* 4:2:0 */
        cinfo->comp_info[0].v_samp_factor = 2;
        cinfo->comp_info[1].h_samp_factor = cinfo->comp_info[1].v_samp_factor = 1;
        cinfo->comp_info[2].h_samp_factor = cinfo->comp_info[2].v_samp_factor = 1;
    }
}

/* 0 on success; -1 after a libjpeg error, with job->fail.msg set. */
static int jpeg_run(struct jpeg_job *job, struct ts_buf *out)
{
    job->cinfo.err = jpeg_std_error(&job->fail.pub);
    job->fail.pub.error_exit = fail_exit;
    job->fail.pub.emit_message = fail_quiet;
    if (setjmp(job->fail.jump)) {
        jpeg_destroy_compress(&job->cinfo);
        return -1;
    }
    jpeg_create_compress(&job->cinfo);
    job->dest.pub.init_destination = dest_init;
    job->dest.pub.empty_output_buffer = dest_empty;
    job->dest.pub.term_destination = dest_term;
    job->dest.buf = out;
    job->cinfo.dest = &job->dest.pub;
    jpeg_setup(job);
    jpeg_start_compress(&job->cinfo, TRUE);
    while (job->cinfo.next_scanline < job->cinfo.image_height) {
        JSAMPROW r = jpeg_row(job->img, job->cinfo.next_scanline, job->scratch);
        jpeg_write_scanlines(&job->cinfo, &r, 1);
    }
    jpeg_finish_compress(&job->cinfo);
    jpeg_destroy_compress(&job->cinfo);
    return 0;
}

/* Rows [y0, y0 + n) of a plane into n rows of `width` samples at dst, the last column and row
 * repeated to fill them, as libjpeg pads the edges of what it downsamples itself. */
static void pad_rows(const struct ts_image *p, uint32_t y0, uint32_t n, uint32_t width,
                     uint8_t *dst, JSAMPROW *rows)
{
    for (uint32_t k = 0; k < n; k++, dst += width) {
        uint32_t y = y0 + k < p->height ? y0 + k : p->height - 1;
        const uint8_t *s = ts_image_row(p, y);
        memcpy(dst, s, p->width);
        memset(dst + p->width, s[p->width - 1], width - p->width);
        rows[k] = dst;
    }
}

/* The planes through jpeg_write_raw_data: 4:2:0 as jpeg_setup chooses for colour, so the only
 * work left to libjpeg is the DCT and the entropy coding. */
static int jpeg_run_raw(struct jpeg_job *job, struct ts_buf *out)
{
    j_compress_ptr cinfo = &job->cinfo;
    job->cinfo.err = jpeg_std_error(&job->fail.pub);
    job->fail.pub.error_exit = fail_exit;
    job->fail.pub.emit_message = fail_quiet;
    if (setjmp(job->fail.jump)) {
        jpeg_destroy_compress(cinfo);
        return -1;
    }
    jpeg_create_compress(cinfo);
    job->dest.pub.init_destination = dest_init;
    job->dest.pub.empty_output_buffer = dest_empty;
    job->dest.pub.term_destination = dest_term;
    job->dest.buf = out;
    cinfo->dest = &job->dest.pub;
    cinfo->image_width = job->ycc->y.width;
    cinfo->image_height = job->ycc->y.height;
    cinfo->input_components = 3;
    cinfo->in_color_space = JCS_YCbCr;
    jpeg_set_defaults(cinfo);
    jpeg_set_quality(cinfo, job->quality, TRUE);
    cinfo->optimize_coding = FALSE;
    cinfo->comp_info[0].h_samp_factor = cinfo->comp_info[0].v_samp_factor = 2;
    cinfo->comp_info[1].h_samp_factor = cinfo->comp_info[1].v_samp_factor = 1;
    cinfo->comp_info[2].h_samp_factor = cinfo->comp_info[2].v_samp_factor = 1;
    cinfo->raw_data_in = TRUE;
    jpeg_start_compress(cinfo, TRUE);
    /* Whole blocks of each plane: libjpeg reads them all in raw mode. */
    uint32_t yw = cinfo->comp_info[0].width_in_blocks * DCTSIZE;
    uint32_t cw = cinfo->comp_info[1].width_in_blocks * DCTSIZE;
    uint8_t *ybuf = job->pad, *cbbuf = ybuf + (size_t)yw * 2 * DCTSIZE,
            *crbuf = cbbuf + (size_t)cw * DCTSIZE;
    JSAMPROW yrows[2 * DCTSIZE], cbrows[DCTSIZE], crrows[DCTSIZE];
    JSAMPARRAY planes[3] = {yrows, cbrows, crrows};
    while (cinfo->next_scanline < cinfo->image_height) {
        uint32_t y = cinfo->next_scanline;
        pad_rows(&job->ycc->y, y, 2 * DCTSIZE, yw, ybuf, yrows);
        pad_rows(&job->ycc->cb, y / 2, DCTSIZE, cw, cbbuf, cbrows);
        pad_rows(&job->ycc->cr, y / 2, DCTSIZE, cw, crbuf, crrows);
        jpeg_write_raw_data(cinfo, planes, 2 * DCTSIZE);
    }
    jpeg_finish_compress(cinfo);
    jpeg_destroy_compress(cinfo);
    return 0;
}

int encode_jpeg_ycc(const struct ts_ycc *ycc, int quality, struct ts_buf *out, struct ts_err *err)
{
    if (!ycc || !ycc->y.data || !ycc->cb.data || !ycc->cr.data || !out || ycc->y.width == 0 ||
        ycc->y.height == 0 || ycc->cb.width != (ycc->y.width + 1) / 2 ||
        ycc->cb.height != (ycc->y.height + 1) / 2 || ycc->cr.width != ycc->cb.width ||
        ycc->cr.height != ycc->cb.height)
        return ts_fail(err, TS_EINVAL, "jpeg: no image");
    if (ycc->y.width > JPEG_MAX_DIMENSION || ycc->y.height > JPEG_MAX_DIMENSION)
        return ts_fail(err, TS_ETOOLARGE, "jpeg: %ux%u exceeds the format's limit of %ld",
                       ycc->y.width, ycc->y.height, (long)JPEG_MAX_DIMENSION);
    struct jpeg_job *job = calloc(1, sizeof *job);
    /* One iMCU row: 16 rows of luma and 8 of each chroma plane, each padded to whole blocks. */
    size_t yw = ((size_t)ycc->y.width + 15) / 16 * 16, cw = ((size_t)ycc->cb.width + 7) / 8 * 8;
    if (job)
        job->pad = malloc(yw * 16 + cw * 16);
    if (!job || !job->pad) {
        free(job);
        return ts_fail(err, TS_ENOMEM, "jpeg: out of memory");
    }
    job->ycc = ycc;
    job->quality = quality < 1 ? 1 : quality > 100 ? 100 : quality;
    size_t start = out->len;
    int rc = TS_OK;
    if (jpeg_run_raw(job, out) != 0) {
        out->len = start;
        rc = ts_fail(err, TS_ECODEC, "jpeg encode: %s", job->fail.msg);
    }
    free(job->pad);
    free(job);
    return rc;
}

int encode_jpeg(const struct ts_image *img, int quality, struct ts_buf *out, struct ts_err *err)
{
    struct jpeg_job *job;
    size_t start, row;
    int rc = TS_OK;

    if (!img || !img->data || !out || img->channels < 1 || img->channels > 4)
        return ts_fail(err, TS_EINVAL, "jpeg: no image");
    if (img->width > JPEG_MAX_DIMENSION || img->height > JPEG_MAX_DIMENSION)
        return ts_fail(err, TS_ETOOLARGE, "jpeg: %ux%u exceeds the format's limit of %ld",
                       img->width, img->height, (long)JPEG_MAX_DIMENSION);
    if (!ts_mul_size(img->width, img->channels, &row))
        return ts_fail(err, TS_ETOOLARGE, "jpeg: row too large");
    job = calloc(1, sizeof *job);
    if (!job)
        return ts_fail(err, TS_ENOMEM, "jpeg: out of memory");
    job->img = img;
    job->quality = quality < 1 ? 1 : quality > 100 ? 100 : quality;
    if (img->channels == 2 || img->channels == 4) {
        job->scratch = malloc(row);
        if (!job->scratch) {
            free(job);
            return ts_fail(err, TS_ENOMEM, "jpeg: out of memory");
        }
    }
    start = out->len;
    if (jpeg_run(job, out) != 0) {
        out->len = start;
        rc = ts_fail(err, TS_ECODEC, "jpeg encode: %s", job->fail.msg);
    }
    free(job->scratch);
    free(job);
    return rc;
}
