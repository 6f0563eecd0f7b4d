/* iipsrv's pixel adjustments on a rendered image: see struct ts_adjust for the order.
 *
 * Without a colour twist or shading, everything before the convolution is a function of one
 * 8-bit sample (the colour map reads a pixel's first sample, as iipsrv's does): a table of 256
 * entries per channel, built once per request. A twist or shading mixes a pixel's samples, so
 * they are worked out per pixel; a convolution needs the values in floating point between the
 * two halves. Equalisation maps the final 8-bit values, as iipsrv does after its conversion. */
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

/* An 8-bit sample of channel c as a value in [0, 1], through the range when there is one; a
 * range of no width multiplies by 1e30, as iipsrv's does, rather than divide by zero. */
static float normalized(const struct ts_adjust *a, uint32_t c, int v)
{
    float f = (float)v / 255.0f;
    if (!a->range)
        return f;
    float lo = a->range_lo[c], d = a->range_hi[c] - lo;
    return fabsf(d) > 1e-30f ? (f - lo) / d : (f - lo) * 1e30f;
}

/* iipsrv's light: unit length, from shade_h degrees clockwise of 12 o'clock in the image plane
 * and shade_v degrees below the horizontal. */
static void light_vector(const struct ts_adjust *a, float s[3])
{
    const float rad = (float)M_PI / 180.0f;
    float y = cosf((float)a->shade_h * rad);
    float x = sqrtf(fmaxf(0.0f, 1.0f - y * y));
    if (a->shade_h > 180)
        x = -x;
    float z = -sinf((float)a->shade_v * rad);
    float len = sqrtf(x * x + y * y + z * z);
    s[0] = x / len;
    s[1] = y / len;
    s[2] = z / len;
}

/* A normal-map pixel (components in [0, 1] around 0.5, all 0 for "no surface") lit by s: half
 * the cosine of the angle between them, clipped to [0, 1]. */
static float shaded(const float n[3], const float s[3])
{
    if (n[0] == 0.0f && n[1] == 0.0f && n[2] == 0.0f)
        return 0.0f;
    float dot = 0.0f;
    for (int k = 0; k < 3; k++)
        dot += s[k] * -((n[k] - 0.5f) * 2.0f);
    dot *= 0.5f;
    return dot < 0.0f ? 0.0f : dot > 1.0f ? 1.0f : dot;
}

/* Colour channels out: a colour map makes RGB of anything, a twist as many as its rows, shading
 * one; otherwise they stay. Alpha is carried through untouched. */
static uint32_t colors_out(const struct ts_adjust *a, uint32_t colors)
{
    return a->cmap != TS_CMAP_NONE ? 3 : a->twist_rows ? a->twist_rows : a->shade ? 1 : colors;
}

/* One pixel through normalisation, shading and the twist, then gamma and inversion: its first
 * value, or all of them; returns how many. */
static uint32_t mixed(const struct ts_adjust *a, const float norm[3][256], const float light[3],
                      const uint8_t *s, uint32_t colors, float *f)
{
    float in[4];
    uint32_t n = colors;
    for (uint32_t c = 0; c < colors; c++)
        in[c] = norm[c][s[c]];
    if (a->shade) {
        /* A gray image is a normal map with three equal components. */
        float v[3] = {in[0], in[colors >= 3 ? 1 : 0], in[colors >= 3 ? 2 : 0]};
        in[0] = shaded(v, light);
        n = 1;
    }
    uint32_t m = n;
    if (a->twist_rows) {
        m = a->twist_rows;
        for (uint32_t k = 0; k < m; k++) {
            float v = 0.0f;
            for (uint32_t j = 0; j < n && j < 4; j++)
                v += a->twist[k][j] * in[j];
            f[k] = v;
        }
    } else {
        memcpy(f, in, sizeof *in * n);
    }
    for (uint32_t k = 0; k < m; k++)
        f[k] = pointwise_f(a, f[k]);
    return m;
}

/* The float image after the pointwise steps and the colour map (alpha dropped: it is copied
 * straight from the source at the end). */
static void to_float(const struct ts_image *src, const struct ts_adjust *a, uint32_t colors,
                     uint32_t oc, float *f)
{
    float norm[3][256], table[3][256];
    float light[3] = {0};
    for (uint32_t c = 0; c < colors; c++)
        for (int i = 0; i < 256; i++) {
            norm[c][i] = normalized(a, c, i);
            table[c][i] = pointwise_f(a, norm[c][i]);
        }
    if (a->shade)
        light_vector(a, light);
    bool per_pixel = a->twist_rows || a->shade;
    for (uint32_t y = 0; y < src->height; y++) {
        const uint8_t *s = ts_image_row(src, y);
        for (uint32_t x = 0; x < src->width; x++, s += src->channels, f += oc) {
            if (per_pixel) {
                float t[4];
                uint32_t m = mixed(a, norm, light, s, colors, t);
                if (a->cmap != TS_CMAP_NONE)
                    cmap_rgb(a->cmap, t[0], f);
                else
                    memcpy(f, t, sizeof *t * m);
            } else if (a->cmap != TS_CMAP_NONE) {
                cmap_rgb(a->cmap, table[0][s[0]], f);
            } else {
                for (uint32_t c = 0; c < colors; c++)
                    f[c] = table[c][s[c]];
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

/* CNT=st: the histogram's occupied bins become every channel's range, as iipsrv replaces the
 * image's minimum and maximum with them. False for an empty histogram. */
static bool stretch_range(const uint32_t *hist, struct ts_adjust *a)
{
    int n0 = 0, n1 = TS_HIST_BINS - 1;
    while (n0 < TS_HIST_BINS && hist[n0] == 0)
        n0++;
    if (n0 == TS_HIST_BINS)
        return false;
    while (hist[n1] == 0)
        n1--;
    a->range = true;
    for (int c = 0; c < 4; c++) {
        a->range_lo[c] = (float)n0 / 255.0f;
        a->range_hi[c] = (float)n1 / 255.0f;
    }
    return true;
}

/* CNT=eq: each 8-bit value to 255 times the share of the histogram at or below it, rounded.
 * iipsrv also subtracts the first occupied bin's count divided by the pixels of the tile being
 * drawn: under one level for any image, and it would make a tile's mapping depend on its size,
 * so it is left out. Identity for an empty histogram. */
static void equalize_table(const uint32_t *hist, uint8_t map[TS_HIST_BINS])
{
    double total = 0.0, cdf = 0.0;
    for (int i = 0; i < TS_HIST_BINS; i++)
        total += hist[i];
    for (int i = 0; i < TS_HIST_BINS; i++) {
        cdf += hist[i];
        double v = total > 0.0 ? round(255.0 * cdf / total) : i;
        map[i] = (uint8_t)(v > 255.0 ? 255.0 : v);
    }
}

void render_histogram(const struct ts_image *img, uint32_t hist[TS_HIST_BINS])
{
    memset(hist, 0, sizeof *hist * TS_HIST_BINS);
    if (!img || !img->data || img->channels < 1 || img->channels > 4)
        return;
    uint32_t colors = img->channels - (img->channels == 2 || img->channels == 4 ? 1 : 0);
    for (uint32_t y = 0; y < img->height; y++) {
        const uint8_t *s = ts_image_row(img, y);
        for (uint32_t x = 0; x < img->width; x++, s += img->channels) {
            uint32_t sum = 0;
            for (uint32_t c = 0; c < colors; c++)
                sum += s[c];
            hist[(sum * 2 + colors) / (2 * colors)]++; /* the average, rounded half up */
        }
    }
}

void render_histogram_plan(uint32_t width, uint32_t height, struct ts_plan *out)
{
    memset(out, 0, sizeof *out);
    out->img_w = out->rw = width;
    out->img_h = out->rh = height;
    /* iipsrv's smallest resolution: halved until it fits one 256-pixel tile. */
    uint32_t w = width, h = height;
    while (w > 256 || h > 256) {
        w = w / 2 ? w / 2 : 1;
        h = h / 2 ? h / 2 : 1;
    }
    out->out_w = w;
    out->out_h = h;
    out->quality = TS_QUALITY_DEFAULT;
    out->format = TS_FORMAT_PNG;
}

int render_adjust(const struct ts_image *src, const struct ts_adjust *adjust, struct ts_image *dst)
{
    dst->data = NULL;
    if (!src || !src->data || !adjust || src->channels < 1 || src->channels > 4)
        return TS_EINVAL;
    struct ts_adjust eff = *adjust;
    const struct ts_adjust *a = &eff;
    if ((a->ksize != 0 && a->ksize != 1 && a->ksize != 3 && a->ksize != 5) ||
        (a->twist_rows != 0 && a->twist_rows != 1 && a->twist_rows != 3) ||
        ((a->stretch || a->equalize) && !a->have_hist))
        return TS_EINVAL;
    if (a->stretch)
        stretch_range(a->hist, &eff);
    uint8_t eq[TS_HIST_BINS];
    for (int i = 0; i < TS_HIST_BINS; i++)
        eq[i] = (uint8_t)i;
    if (a->equalize)
        equalize_table(a->hist, eq);
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
                d[c] = eq[to_8bit(*v++, a->contrast)];
            if (alpha)
                d[oc] = s[src->channels - 1];
        }
    }
    free(f);
    return TS_OK;
}
