/* iipsrv's pixel adjustments on a rendered image: see struct ts_adjust for the order.
 *
 * Without a colour twist, everything before the convolution is a function of one 8-bit sample
 * (the colour map reads a pixel's first sample, as iipsrv's does): a table of 256 entries, built
 * once per request. A twist mixes a pixel's samples, so it is worked out per pixel; a
 * convolution needs the values in floating point between the two halves. */
#include "render/render.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Value v in [0, 1] (the first sample's, after gamma and inversion) as RGB in [0, 1]. */
static void cmap_rgb(enum ts_cmap cmap, float v, float rgb[3])
{
    const float third = 1.0f / 3.0f, eighth = 1.0f / 8.0f;
    rgb[0] = rgb[1] = rgb[2] = 0.0f;
    switch (cmap) {
    case TS_CMAP_HOT:  /* black, red, yellow, white */
    case TS_CMAP_COLD: /* the same through blue and cyan: hot with red and blue swapped */
        if (v >= 1.0f) {
            rgb[0] = rgb[1] = rgb[2] = 1.0f;
        } else if (v > 0.0f) {
            int first = cmap == TS_CMAP_HOT ? 0 : 2;
            rgb[first] = fminf(3.0f * v, 1.0f);
            rgb[1] = v < third ? 0.0f : fminf(3.0f * v - 1.0f, 1.0f);
            rgb[2 - first] = v < 2.0f * third ? 0.0f : 3.0f * v - 2.0f;
        }
        break;
    case TS_CMAP_JET: /* dark blue, blue, cyan, yellow, red, dark red */
        if (v < 0.0f)
            break;
        if (v < eighth) {
            rgb[2] = 4.0f * v + 0.5f;
        } else if (v < 3.0f * eighth) {
            rgb[1] = 4.0f * v - 0.5f;
            rgb[2] = 1.0f;
        } else if (v < 5.0f * eighth) {
            rgb[0] = 4.0f * v - 1.5f;
            rgb[1] = 1.0f;
            rgb[2] = 2.5f - 4.0f * v;
        } else if (v < 7.0f * eighth) {
            rgb[0] = 1.0f;
            rgb[1] = 3.5f - 4.0f * v;
        } else {
            rgb[0] = v < 1.0f ? 4.5f - 4.0f * v : 0.5f;
        }
        break;
    case TS_CMAP_RED: rgb[0] = v; break;
    case TS_CMAP_GREEN: rgb[1] = v; break;
    case TS_CMAP_BLUE: rgb[2] = v; break;
    case TS_CMAP_NONE: break;
    }
}

static uint8_t to_8bit(float v, float contrast)
{
    v = v * contrast * 255.0f;
    if (!(v > 0.0f)) /* NaN too */
        return 0;
    return v >= 255.0f ? 255 : (uint8_t)(v + 0.5f);
}

/* Gamma or log, then inversion, of a value in [0, 1] (a twisted one need not be). */
static float pointwise_f(const struct ts_adjust *a, float v)
{
    if (a->log)
        v = logf(1.0f + 255.0f * (v > 0.0f ? v : 0.0f)) / logf(256.0f);
    else if (a->gamma != 1.0f)
        v = powf(v > 0.0f ? v : 0.0f, a->gamma);
    return a->invert ? 1.0f - v : v;
}

/* Colour channels out: a colour map makes RGB of anything, a twist as many as its rows;
 * otherwise they stay. Alpha is carried through untouched. */
static uint32_t colors_out(const struct ts_adjust *a, uint32_t colors)
{
    return a->cmap != TS_CMAP_NONE ? 3 : a->twist_rows ? a->twist_rows : colors;
}

/* One pixel through the twist, then gamma and inversion: its first value, or all of them. */
static void twisted(const struct ts_adjust *a, const uint8_t *s, uint32_t colors, float *f)
{
    for (uint32_t k = 0; k < a->twist_rows; k++) {
        float v = 0.0f;
        for (uint32_t j = 0; j < colors && j < 4; j++)
            v += a->twist[k][j] * (s[j] / 255.0f);
        f[k] = pointwise_f(a, v);
    }
}

/* The float image after the pointwise steps and the colour map (alpha dropped: it is copied
 * straight from the source at the end). */
static void to_float(const struct ts_image *src, const struct ts_adjust *a, uint32_t colors,
                     uint32_t oc, float *f)
{
    float table[256];
    for (int i = 0; i < 256; i++)
        table[i] = pointwise_f(a, i / 255.0f);
    for (uint32_t y = 0; y < src->height; y++) {
        const uint8_t *s = ts_image_row(src, y);
        for (uint32_t x = 0; x < src->width; x++, s += src->channels, f += oc) {
            if (a->twist_rows) {
                float t[3];
                twisted(a, s, colors, t);
                if (a->cmap != TS_CMAP_NONE)
                    cmap_rgb(a->cmap, t[0], f);
                else
                    memcpy(f, t, sizeof *t * a->twist_rows);
            } else if (a->cmap != TS_CMAP_NONE) {
                cmap_rgb(a->cmap, table[s[0]], f);
            } else {
                for (uint32_t c = 0; c < colors; c++)
                    f[c] = table[s[c]];
            }
        }
    }
}

/* Convolution of a float image of oc channels, edges extended; a kernel with a positive sum
 * is normalised by it, as iipsrv does (so blurs keep brightness, edge finders do not). */
static void convolve(const float *in, uint32_t w, uint32_t h, uint32_t oc,
                     const struct ts_adjust *a, float *out)
{
    int half = (int)a->ksize / 2;
    float total = 0.0f;
    for (uint32_t k = 0; k < a->ksize * a->ksize; k++)
        total += a->kernel[k];
    float norm = total > 0.0f ? 1.0f / total : 1.0f;
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            for (uint32_t c = 0; c < oc; c++) {
                float v = 0.0f;
                for (int ky = 0; ky < (int)a->ksize; ky++) {
                    long sy = (long)y + ky - half;
                    sy = sy < 0 ? 0 : sy >= (long)h ? (long)h - 1 : sy;
                    for (int kx = 0; kx < (int)a->ksize; kx++) {
                        long sx = (long)x + kx - half;
                        sx = sx < 0 ? 0 : sx >= (long)w ? (long)w - 1 : sx;
                        v += in[((size_t)sy * w + (size_t)sx) * oc + c] *
                             a->kernel[ky * (int)a->ksize + kx];
                    }
                }
                out[((size_t)y * w + x) * oc + c] = v * norm;
            }
}

int render_adjust(const struct ts_image *src, const struct ts_adjust *a, struct ts_image *dst)
{
    dst->data = NULL;
    if (!src || !src->data || !a || src->channels < 1 || src->channels > 4)
        return TS_EINVAL;
    if ((a->ksize != 0 && a->ksize != 1 && a->ksize != 3 && a->ksize != 5) ||
        (a->twist_rows != 0 && a->twist_rows != 1 && a->twist_rows != 3))
        return TS_EINVAL;
    bool alpha = src->channels == 2 || src->channels == 4;
    uint32_t colors = src->channels - (alpha ? 1 : 0), oc = colors_out(a, colors);
    int rc = ts_image_alloc(dst, src->width, src->height, oc + (alpha ? 1 : 0));
    if (rc)
        return rc;
    size_t n;
    if (!ts_mul3_size(src->width, src->height, oc, &n) || n > SIZE_MAX / (2 * sizeof(float))) {
        ts_image_free(dst);
        return TS_ETOOLARGE;
    }
    float *f = malloc(n * sizeof *f * (a->ksize > 1 ? 2 : 1));
    if (!f) {
        ts_image_free(dst);
        return TS_ENOMEM;
    }
    to_float(src, a, colors, oc, f);
    const float *v = f;
    if (a->ksize > 1) {
        convolve(f, src->width, src->height, oc, a, f + n);
        v = f + n;
    } else if (a->ksize == 1) {
        for (size_t i = 0; i < n; i++)
            f[i] *= a->kernel[0] > 0.0f ? 1.0f : a->kernel[0];
    }
    for (uint32_t y = 0; y < src->height; y++) {
        const uint8_t *s = ts_image_row(src, y);
        uint8_t *d = ts_image_row(dst, y);
        for (uint32_t x = 0; x < src->width; x++, s += src->channels, d += dst->channels) {
            for (uint32_t c = 0; c < oc; c++)
                d[c] = to_8bit(*v++, a->contrast);
            if (alpha)
                d[oc] = s[src->channels - 1];
        }
    }
    free(f);
    return TS_OK;
}
