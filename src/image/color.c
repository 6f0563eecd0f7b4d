/* ICC -> sRGB conversion with lcms2, shared by the readers so everything above them is sRGB. */
#include "image/color.h"

#include "image/cmyk_fallback.h"

#include <lcms2.h>
#include <stdlib.h>
#include <string.h>

struct ts_color_xform {
    cmsHTRANSFORM t;
    uint32_t in_px;  /* bytes per source pixel */
    uint32_t out_ch; /* 8-bit samples per delivered pixel */
};

static cmsUInt32Number color_in_format(const struct ts_color_layout *lay)
{
    static const cmsUInt32Number pt[] = {PT_GRAY, PT_RGB, PT_CMYK};
    static const cmsUInt32Number nc[] = {1, 3, 4};
    return COLORSPACE_SH(pt[lay->space]) | CHANNELS_SH(nc[lay->space]) | BYTES_SH(lay->bytes) |
           EXTRA_SH(lay->alpha ? 1 : 0) |
           FLAVOR_SH(lay->space == TS_COLOR_CMYK && lay->inverted ? 1 : 0);
}

static cmsColorSpaceSignature color_signature(enum ts_color_space s)
{
    return s == TS_COLOR_GRAY ? cmsSigGrayData : s == TS_COLOR_RGB ? cmsSigRgbData : cmsSigCmykData;
}

/* Gray with the sRGB tone curve and D50 white, so gray sources stay one channel. */
static cmsHPROFILE color_srgb_gray(void)
{
    /* IEC 61966-2.1: y = ((x + 0.055) / 1.055)^2.4 above 0.04045, x / 12.92 below. */
    static const cmsFloat64Number p[5] = {2.4, 1.0 / 1.055, 0.055 / 1.055, 1.0 / 12.92, 0.04045};
    cmsToneCurve *c = cmsBuildParametricToneCurve(NULL, 4, p);
    cmsHPROFILE g = c ? cmsCreateGrayProfile(cmsD50_xyY(), c) : NULL;
    if (c)
        cmsFreeToneCurve(c);
    return g;
}

bool ts_color_profile_is_srgb(const uint8_t *icc, size_t len)
{
    char desc[64] = "";
    cmsHPROFILE p;
    bool srgb;

    if (!icc || len == 0 || len > UINT32_MAX ||
        !(p = cmsOpenProfileFromMem(icc, (cmsUInt32Number)len)))
        return false;
    srgb = cmsGetColorSpace(p) == cmsSigRgbData &&
           cmsGetProfileInfoASCII(p, cmsInfoDescription, "en", "US", desc, sizeof desc) > 0 &&
           strncmp(desc, "sRGB", 4) == 0;
    cmsCloseProfile(p);
    return srgb;
}

/* Opens the source profile, or the generic CMYK link; NULL when the profile is unusable. */
static cmsHPROFILE color_open_source(const uint8_t *icc, size_t len,
                                     const struct ts_color_layout *lay, bool *is_link)
{
    cmsHPROFILE p = NULL;
    *is_link = false;
    if (icc && len > 0 && len <= UINT32_MAX)
        p = cmsOpenProfileFromMem(icc, (cmsUInt32Number)len);
    if (p && (cmsGetDeviceClass(p) == cmsSigLinkClass ||
              cmsGetColorSpace(p) != color_signature(lay->space))) {
        cmsCloseProfile(p);
        p = NULL;
    }
    /* CMYK cannot be shown at all without some profile: fall back to the generic one. */
    if (!p && lay->space == TS_COLOR_CMYK) {
        p = cmsOpenProfileFromMem(ts_cmyk_fallback_icc, (cmsUInt32Number)ts_cmyk_fallback_len);
        *is_link = p != NULL;
    }
    return p;
}

int ts_color_xform_create(const uint8_t *icc, size_t len, const struct ts_color_layout *lay,
                          struct ts_color_xform **out, struct ts_err *err)
{
    struct ts_color_xform *x;
    cmsHPROFILE src, dst = NULL;
    cmsUInt32Number out_fmt, flags = cmsFLAGS_NOCACHE;
    bool is_link, gray = lay->space == TS_COLOR_GRAY;

    *out = NULL;
    if (lay->bytes != 1 && lay->bytes != 2)
        return ts_fail(err, TS_EINVAL, "colour conversion of %u-byte samples", lay->bytes);
    if (lay->space != TS_COLOR_CMYK && (!icc || len == 0))
        return TS_OK;
    if (lay->space == TS_COLOR_RGB && ts_color_profile_is_srgb(icc, len))
        return TS_OK;
    if (!(src = color_open_source(icc, len, lay, &is_link)))
        return ts_fail(err, TS_ECODEC, "unusable ICC profile (%zu bytes)", len);
    if (!is_link && !(dst = gray ? color_srgb_gray() : cmsCreate_sRGBProfile())) {
        cmsCloseProfile(src);
        return ts_fail(err, TS_ENOMEM, "cannot create the sRGB profile");
    }
    if (!(x = calloc(1, sizeof *x))) {
        cmsCloseProfile(src);
        if (dst)
            cmsCloseProfile(dst);
        return ts_fail(err, TS_ENOMEM, "out of memory for a colour transform");
    }
    x->out_ch = (gray ? 1u : 3u) + (lay->alpha ? 1u : 0u);
    x->in_px = ((uint32_t)T_CHANNELS(color_in_format(lay)) + (lay->alpha ? 1u : 0u)) * lay->bytes;
    out_fmt = COLORSPACE_SH(gray ? PT_GRAY : PT_RGB) | CHANNELS_SH(gray ? 1 : 3) | BYTES_SH(1) |
              EXTRA_SH(lay->alpha ? 1 : 0);
    if (lay->alpha)
        flags |= cmsFLAGS_COPY_ALPHA;
    /* Relative colorimetric, no black point compensation: what libvips' icc_transform does. */
    x->t = cmsCreateTransform(src, color_in_format(lay), dst, out_fmt, INTENT_RELATIVE_COLORIMETRIC,
                              flags);
    cmsCloseProfile(src);
    if (dst)
        cmsCloseProfile(dst);
    if (!x->t) {
        free(x);
        return ts_fail(err, TS_ECODEC, "lcms2 cannot convert this ICC profile to sRGB");
    }
    *out = x;
    return TS_OK;
}

void ts_color_xform_free(struct ts_color_xform *x)
{
    if (!x)
        return;
    cmsDeleteTransform(x->t);
    free(x);
}

uint32_t ts_color_xform_channels(const struct ts_color_xform *x)
{
    return x->out_ch;
}

void ts_color_xform_pixels(const struct ts_color_xform *x, const void *src, uint8_t *dst,
                           uint32_t n)
{
    if (n > 0)
        cmsDoTransform(x->t, src, dst, n);
}

int ts_color_xform_image(const struct ts_color_xform *x, struct ts_image *img, struct ts_err *err)
{
    size_t row;
    uint8_t *tmp;

    if (img->channels != x->out_ch || x->in_px != x->out_ch)
        return ts_fail(err, TS_EINVAL, "colour transform does not fit a %u-channel image",
                       img->channels);
    if (!ts_mul_size(img->width, img->channels, &row))
        return ts_fail(err, TS_ETOOLARGE, "image row size overflows");
    if (row == 0)
        return TS_OK;
    /* lcms2 does not promise in-place conversion, so each row goes through a copy. */
    if (!(tmp = malloc(row)))
        return ts_fail(err, TS_ENOMEM, "out of memory for a colour row");
    for (uint32_t y = 0; y < img->height; y++) {
        memcpy(tmp, ts_image_row(img, y), row);
        cmsDoTransform(x->t, tmp, ts_image_row(img, y), img->width);
    }
    free(tmp);
    return TS_OK;
}
