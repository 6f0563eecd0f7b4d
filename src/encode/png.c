/* PNG output through libspng, streamed row by row into a ts_buf. */
#include "encode/encode.h"

#include <spng.h>

static int png_write(spng_ctx *ctx, void *user, void *src, size_t length)
{
    (void)ctx;
    return ts_buf_append(user, src, length) == TS_OK ? 0 : SPNG_IO_ERROR;
}

static const uint8_t png_color_type[5] = {
    0,
    SPNG_COLOR_TYPE_GRAYSCALE,
    SPNG_COLOR_TYPE_GRAYSCALE_ALPHA,
    SPNG_COLOR_TYPE_TRUECOLOR,
    SPNG_COLOR_TYPE_TRUECOLOR_ALPHA,
};

static int png_rows(spng_ctx *ctx, const struct ts_image *img)
{
    size_t row = (size_t)img->width * img->channels;
    int rc = spng_encode_image(ctx, NULL, 0, SPNG_FMT_PNG,
                               SPNG_ENCODE_PROGRESSIVE | SPNG_ENCODE_FINALIZE);
    for (uint32_t y = 0; rc == 0 && y < img->height; y++)
        rc = spng_encode_row(ctx, ts_image_row(img, y), row);
    return rc == SPNG_EOI ? 0 : rc;
}

int encode_png(const struct ts_image *img, int level, struct ts_buf *out, struct ts_err *err)
{
    struct spng_ihdr ihdr = {0};
    size_t start;
    spng_ctx *ctx;
    int rc;

    if (!img || !img->data || !out || img->channels < 1 || img->channels > 4)
        return ts_fail(err, TS_EINVAL, "png: no image");
    level = level < 0 ? 0 : level > 9 ? 9 : level;
    ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    if (!ctx)
        return ts_fail(err, TS_ENOMEM, "png: out of memory");
    start = out->len;
    ihdr.width = img->width;
    ihdr.height = img->height;
    ihdr.bit_depth = 8;
    ihdr.color_type = png_color_type[img->channels];
    rc = spng_set_png_stream(ctx, png_write, out);
    if (!rc)
        rc = spng_set_ihdr(ctx, &ihdr);
    if (!rc)
        rc = spng_set_option(ctx, SPNG_IMG_COMPRESSION_LEVEL, level);
    /* At fast zlib levels an adaptive filter search buys little and costs a pass per filter:
     * one predictor (Paeth for photos) keeps encode time flat. Slower levels try them all. */
    if (!rc)
        rc = spng_set_option(ctx, SPNG_FILTER_CHOICE,
                             level <= 3 ? SPNG_FILTER_CHOICE_PAETH : SPNG_FILTER_CHOICE_ALL);
    if (!rc)
        rc = png_rows(ctx, img);
    spng_ctx_free(ctx);
    if (rc) {
        out->len = start;
        return ts_fail(err, rc == SPNG_IO_ERROR ? TS_ENOMEM : TS_ECODEC, "png encode: %s",
                       spng_strerror(rc));
    }
    return TS_OK;
}
