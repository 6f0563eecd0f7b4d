/* JPEG output through libjpeg-turbo, written straight into a ts_buf; codec errors never exit. */
#include "encode/encode.h"

#include <setjmp.h>
#include <stdbool.h>
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
    const struct ts_ycc *ycc; /* instead of img: planes written as they are (write_planes) */
    int quality;
    uint8_t *scratch; /* a row of img composited, or one iMCU row of the planes padded */
    struct jpeg_compress_struct cinfo;
    struct jpeg_fail fail;
    struct jpeg_buf_dest dest;
};

static void jpeg_setup(struct jpeg_job *job)
{
    j_compress_ptr cinfo = &job->cinfo;
    bool color = job->ycc || job->img->channels >= 3;

    cinfo->image_width = job->ycc ? job->ycc->y.width : job->img->width;
    cinfo->image_height = job->ycc ? job->ycc->y.height : job->img->height;
    cinfo->input_components = color ? 3 : 1;
    cinfo->in_color_space = job->ycc ? JCS_YCbCr : color ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(cinfo);
    jpeg_set_quality(cinfo, job->quality, TRUE);
    cinfo->optimize_coding = FALSE; /* a second pass over the data costs more than it saves */
    if (color) {
        cinfo->comp_info[0].h_samp_factor = 2; /* 4:2:0 */
        cinfo->comp_info[0].v_samp_factor = 2;
        cinfo->comp_info[1].h_samp_factor = cinfo->comp_info[1].v_samp_factor = 1;
        cinfo->comp_info[2].h_samp_factor = cinfo->comp_info[2].v_samp_factor = 1;
    }
    cinfo->raw_data_in = job->ycc != NULL;
}

/* Rows [y0, y0 + n) of a plane as n rows of `width` samples (whole blocks: libjpeg reads them all
 * in raw mode), the last column and row repeated where the plane is short, as libjpeg pads what
 * it downsamples itself. Rows that need no padding are the plane's own. */
static void plane_rows(const struct ts_image *p, uint32_t y0, uint32_t n, uint32_t width,
                       uint8_t *pad, JSAMPROW *rows)
{
    for (uint32_t k = 0; k < n; k++, pad += width) {
        uint32_t y = y0 + k < p->height ? y0 + k : p->height - 1;
        uint8_t *s = ts_image_row(p, y);
        if (y == y0 + k && width == p->width) {
            rows[k] = s;
            continue;
        }
        memcpy(pad, s, p->width);
        memset(pad + p->width, s[p->width - 1], width - p->width);
        rows[k] = pad;
    }
}

/* The planes through jpeg_write_raw_data: neither colour conversion nor downsampling, only the
 * DCT and the entropy coding. */
static void write_planes(struct jpeg_job *job)
{
    j_compress_ptr cinfo = &job->cinfo;
    uint32_t yw = cinfo->comp_info[0].width_in_blocks * DCTSIZE;
    uint32_t cw = cinfo->comp_info[1].width_in_blocks * DCTSIZE;
    uint8_t *ypad = job->scratch, *cbpad = ypad + (size_t)yw * 2 * DCTSIZE,
            *crpad = cbpad + (size_t)cw * DCTSIZE;
    JSAMPROW yrows[2 * DCTSIZE], cbrows[DCTSIZE], crrows[DCTSIZE];
    JSAMPARRAY planes[3] = {yrows, cbrows, crrows};
    while (cinfo->next_scanline < cinfo->image_height) {
        uint32_t y = cinfo->next_scanline;
        plane_rows(&job->ycc->y, y, 2 * DCTSIZE, yw, ypad, yrows);
        plane_rows(&job->ycc->cb, y / 2, DCTSIZE, cw, cbpad, cbrows);
        plane_rows(&job->ycc->cr, y / 2, DCTSIZE, cw, crpad, crrows);
        jpeg_write_raw_data(cinfo, planes, 2 * DCTSIZE);
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
    if (job->ycc)
        write_planes(job);
    else
        while (job->cinfo.next_scanline < job->cinfo.image_height) {
            JSAMPROW r = jpeg_row(job->img, job->cinfo.next_scanline, job->scratch);
            jpeg_write_scanlines(&job->cinfo, &r, 1);
        }
    jpeg_finish_compress(&job->cinfo);
    jpeg_destroy_compress(&job->cinfo);
    return 0;
}

/* Runs the job (scratch_bytes of scratch when not 0) and frees it; nothing is appended to out
 * when the encode fails. */
static int jpeg_encode(struct jpeg_job *job, size_t scratch_bytes, struct ts_buf *out,
                       struct ts_err *err)
{
    int rc = TS_OK;
    size_t start = out->len;
    if (scratch_bytes && !(job->scratch = malloc(scratch_bytes)))
        rc = ts_fail(err, TS_ENOMEM, "jpeg: out of memory");
    else if (jpeg_run(job, out) != 0) {
        out->len = start;
        rc = ts_fail(err, TS_ECODEC, "jpeg encode: %s", job->fail.msg);
    }
    free(job->scratch);
    free(job);
    return rc;
}

static int too_large(uint32_t w, uint32_t h, struct ts_err *err)
{
    if (w <= JPEG_MAX_DIMENSION && h <= JPEG_MAX_DIMENSION)
        return TS_OK;
    return ts_fail(err, TS_ETOOLARGE, "jpeg: %ux%u exceeds the format's limit of %ld", w, h,
                   (long)JPEG_MAX_DIMENSION);
}

static struct jpeg_job *jpeg_job_new(int quality)
{
    struct jpeg_job *job = calloc(1, sizeof *job);
    if (job)
        job->quality = quality < 1 ? 1 : quality > 100 ? 100 : quality;
    return job;
}

int encode_jpeg_ycc(const struct ts_ycc *ycc, int quality, struct ts_buf *out, struct ts_err *err)
{
    if (!ycc || !ycc->y.data || !ycc->cb.data || !ycc->cr.data || !out || ycc->y.width == 0 ||
        ycc->y.height == 0 || ycc->cb.width != (ycc->y.width + 1) / 2 ||
        ycc->cb.height != (ycc->y.height + 1) / 2 || ycc->cr.width != ycc->cb.width ||
        ycc->cr.height != ycc->cb.height)
        return ts_fail(err, TS_EINVAL, "jpeg: no image");
    int rc = too_large(ycc->y.width, ycc->y.height, err);
    if (rc)
        return rc;
    struct jpeg_job *job = jpeg_job_new(quality);
    if (!job)
        return ts_fail(err, TS_ENOMEM, "jpeg: out of memory");
    job->ycc = ycc;
    /* One iMCU row: 16 rows of luma and 8 of each chroma plane, each padded to whole blocks. */
    size_t yw = ((size_t)ycc->y.width + 15) / 16 * 16, cw = ((size_t)ycc->cb.width + 7) / 8 * 8;
    return jpeg_encode(job, yw * 16 + cw * 16, out, err);
}

int encode_jpeg(const struct ts_image *img, int quality, struct ts_buf *out, struct ts_err *err)
{
    size_t row;
    if (!img || !img->data || !out || img->channels < 1 || img->channels > 4)
        return ts_fail(err, TS_EINVAL, "jpeg: no image");
    int rc = too_large(img->width, img->height, err);
    if (rc)
        return rc;
    if (!ts_mul_size(img->width, img->channels, &row))
        return ts_fail(err, TS_ETOOLARGE, "jpeg: row too large");
    struct jpeg_job *job = jpeg_job_new(quality);
    if (!job)
        return ts_fail(err, TS_ENOMEM, "jpeg: out of memory");
    job->img = img;
    /* Alpha is composited into a row of its own. */
    return jpeg_encode(job, img->channels == 2 || img->channels == 4 ? row : 0, out, err);
}
