/* Output format dispatch and encoder defaults. */
#include "encode/encode.h"

struct encode_options encode_options_default(void)
{
    struct encode_options o = {.jpeg_quality = 85, .webp_quality = 80, .png_level = 3};
    return o;
}

static int unsupported(const char *ext, struct ts_err *err)
{
    return ts_fail(err, TS_EUNSUPPORTED, "format %s not yet supported", ext);
}

int encode_image(const struct ts_image *img, enum ts_format fmt, const struct encode_options *opt,
                 struct ts_buf *out, struct ts_err *err)
{
    struct encode_options def = encode_options_default();

    if (!img || !img->data || !out || img->channels < 1 || img->channels > 4 || img->width == 0 ||
        img->height == 0)
        return ts_fail(err, TS_EINVAL, "encode: no image");
    if (!opt)
        opt = &def;
    switch (fmt) {
    case TS_FORMAT_JPG: return encode_jpeg(img, opt->jpeg_quality, out, err);
    case TS_FORMAT_PNG: return encode_png(img, opt->png_level, out, err);
    case TS_FORMAT_WEBP: return encode_webp(img, opt->webp_quality, out, err);
    case TS_FORMAT_GIF: return encode_gif(img, out, err);
    case TS_FORMAT_TIF:
        return encode_tiff_with(img, opt->tiff_compression, opt->tiff_level, out, err);
    case TS_FORMAT_JP2: return encode_jp2(img, opt->jpeg_quality, out, err);
    case TS_FORMAT_PDF: return unsupported("pdf", err);
    default: return ts_fail(err, TS_EINVAL, "unknown output format %d", (int)fmt);
    }
}
