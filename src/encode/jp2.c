/* JP2 output: OpenJPEG compressing into memory through a custom output stream. */
#include "encode/encode.h"

#include <openjpeg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The JP2 writer seeks back to patch box lengths, so the sink tracks a position of its own. */
struct jp2_sink {
    struct ts_buf *out;
    size_t base; /* where this file starts in out */
    size_t pos;  /* relative to base */
    bool failed;
};

static OPJ_SIZE_T jp2_write(void *data, OPJ_SIZE_T n, void *user)
{
    struct jp2_sink *s = user;
    size_t at, end;
    if (!ts_add_size(s->base, s->pos, &at) || !ts_add_size(at, n, &end))
        goto fail;
    if (end > s->out->len) {
        if (ts_buf_reserve(s->out, end - s->out->len))
            goto fail;
        if (at > s->out->len)
            memset(s->out->data + s->out->len, 0, at - s->out->len);
        s->out->len = end;
    }
    if (n)
        memcpy(s->out->data + at, data, n);
    s->pos += n;
    return n;
fail:
    s->failed = true;
    return (OPJ_SIZE_T)-1;
}

static OPJ_OFF_T jp2_skip(OPJ_OFF_T n, void *user)
{
    struct jp2_sink *s = user;
    if (n < 0 ? (uint64_t)(-(n + 1)) + 1 > s->pos : (uint64_t)n > SIZE_MAX - s->pos)
        return -1;
    s->pos = n < 0 ? s->pos - ((size_t)(-(n + 1)) + 1) : s->pos + (size_t)n;
    return n;
}

static OPJ_BOOL jp2_seek(OPJ_OFF_T n, void *user)
{
    struct jp2_sink *s = user;
    if (n < 0 || (uint64_t)n > SIZE_MAX)
        return OPJ_FALSE;
    s->pos = (size_t)n;
    return OPJ_TRUE;
}

struct jp2_log {
    char reason[160];
};

static void jp2_on_error(const char *msg, void *user)
{
    struct jp2_log *log = user;
    if (log->reason[0] != '\0')
        return;
    snprintf(log->reason, sizeof log->reason, "%s", msg);
    size_t n = strlen(log->reason);
    while (n > 0 && (log->reason[n - 1] == '\n' || log->reason[n - 1] == '\r'))
        log->reason[--n] = '\0';
}

static void jp2_quiet(const char *msg, void *user)
{
    (void)msg;
    (void)user;
}

static opj_image_t *jp2_image(const struct ts_image *img)
{
    uint32_t nc = img->channels;
    opj_image_cmptparm_t parm[4];
    memset(parm, 0, sizeof parm);
    for (uint32_t k = 0; k < nc; k++) {
        parm[k].dx = parm[k].dy = 1;
        parm[k].w = img->width;
        parm[k].h = img->height;
        parm[k].prec = 8;
        parm[k].sgnd = 0;
    }
    opj_image_t *im = opj_image_create(nc, parm, nc >= 3 ? OPJ_CLRSPC_SRGB : OPJ_CLRSPC_GRAY);
    if (!im)
        return NULL;
    im->x0 = im->y0 = 0;
    im->x1 = img->width;
    im->y1 = img->height;
    /* Marking the last component as alpha makes OpenJPEG write a cdef box. */
    if (nc == 2 || nc == 4)
        im->comps[nc - 1].alpha = 1;
    for (uint32_t y = 0; y < img->height; y++) {
        const uint8_t *row = ts_image_row(img, y);
        size_t at = (size_t)y * img->width;
        for (uint32_t x = 0; x < img->width; x++)
            for (uint32_t k = 0; k < nc; k++)
                im->comps[k].data[at + x] = row[(size_t)x * nc + k];
    }
    return im;
}

/* Lossless uses the reversible 5/3 wavelet; lossy the 9/7 at a target PSNR, which tracks
 * visual quality across image content better than a fixed compression ratio: quality 50 asks
 * for about 37.5 dB, 90 for 47.5 dB. */
static void jp2_params(const struct ts_image *img, int quality, opj_cparameters_t *p)
{
    opj_set_default_encoder_parameters(p);
    p->tcp_numlayers = 1;
    p->tcp_mct = img->channels >= 3 ? 1 : 0;
    if (quality <= 0 || quality >= 100) {
        p->irreversible = 0;
        p->cp_disto_alloc = 1;
        p->tcp_rates[0] = 0; /* 0 = keep everything */
    } else {
        p->irreversible = 1;
        p->cp_fixed_quality = 1;
        p->tcp_distoratio[0] = 25.0f + 0.25f * (float)quality;
    }
    uint32_t edge = img->width < img->height ? img->width : img->height;
    /* Big pictures in 1024-pixel tiles keep the encoder's working memory bounded. */
    if (img->width > 4096 || img->height > 4096) {
        p->tile_size_on = OPJ_TRUE;
        p->cp_tx0 = p->cp_ty0 = 0;
        p->cp_tdx = p->cp_tdy = 1024;
        if (edge > 1024)
            edge = 1024;
    }
    /* Each resolution level halves the picture; the smallest must keep at least one pixel. */
    while (p->numresolution > 1 && (1u << (p->numresolution - 1)) > edge)
        p->numresolution--;
}

int encode_jp2(const struct ts_image *img, int quality, struct ts_buf *out, struct ts_err *err)
{
    if (!img || !img->data || img->channels < 1 || img->channels > 4 || img->width == 0 ||
        img->height == 0)
        return ts_fail(err, TS_EINVAL, "jp2: bad image (%u channels)", img ? img->channels : 0);
    size_t samples, bytes;
    if (!ts_mul3_size(img->width, img->height, img->channels, &samples) ||
        !ts_mul_size(samples, sizeof(OPJ_INT32), &bytes))
        return ts_fail(err, TS_ETOOLARGE, "jp2: %ux%u image is too large", img->width, img->height);
    opj_cparameters_t params;
    jp2_params(img, quality, &params);
    opj_image_t *im = jp2_image(img);
    if (!im)
        return ts_fail(err, TS_ENOMEM, "jp2: no memory for %zu component bytes", bytes);

    struct jp2_log log = {{0}};
    struct jp2_sink sink = {out, out->len, 0, false};
    opj_codec_t *codec = opj_create_compress(OPJ_CODEC_JP2);
    opj_stream_t *stream = opj_stream_create(OPJ_J2K_STREAM_CHUNK_SIZE, OPJ_FALSE);
    int rc = TS_OK;
    if (!codec || !stream) {
        rc = ts_fail(err, TS_ENOMEM, "jp2: no memory for the codec");
        goto done;
    }
    opj_set_error_handler(codec, jp2_on_error, &log);
    opj_set_warning_handler(codec, jp2_quiet, NULL);
    opj_set_info_handler(codec, jp2_quiet, NULL);
    opj_stream_set_user_data(stream, &sink, NULL);
    opj_stream_set_write_function(stream, jp2_write);
    opj_stream_set_skip_function(stream, jp2_skip);
    opj_stream_set_seek_function(stream, jp2_seek);

    bool ok = opj_setup_encoder(codec, &params, im) && opj_start_compress(codec, im, stream) &&
              opj_encode(codec, stream) && opj_end_compress(codec, stream);
    if (!ok || sink.failed) {
        out->len = sink.base;
        if (sink.failed)
            rc = ts_fail(err, TS_ENOMEM, "jp2: no memory for output bytes");
        else
            rc = ts_fail(err, TS_ECODEC, "jp2: encoding %ux%u failed: %s", img->width, img->height,
                         log.reason[0] ? log.reason : "unknown error");
    }
done:
    if (stream)
        opj_stream_destroy(stream);
    if (codec)
        opj_destroy_codec(codec);
    opj_image_destroy(im);
    return rc;
}
