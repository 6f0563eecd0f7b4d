/* The float Lanczos3 resampler Tessera used before its fixed-point one, kept verbatim in
 * behaviour as the reference the fixed-point results and speed are measured against. */
#include "resample_ref.h"

#include "util/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LANCZOS_A 3.0

/* Per output index along one axis: the first source index and weights[start .. start+count). */
struct axis {
    uint32_t n;        /* output samples */
    uint32_t maxcount; /* widest window, the stride of weights */
    uint32_t *start;
    uint32_t *count;
    float *weights; /* n x maxcount */
};

static double sinc(double x)
{
    if (x == 0.0)
        return 1.0;
    x *= M_PI;
    return sin(x) / x;
}

static double lanczos3(double x)
{
    if (x <= -LANCZOS_A || x >= LANCZOS_A)
        return 0.0;
    return sinc(x) * sinc(x / LANCZOS_A);
}

static void axis_free(struct axis *ax)
{
    free(ax->start);
    free(ax->count);
    free(ax->weights);
    memset(ax, 0, sizeof *ax);
}

/* Drops the taps beyond the kernel's reach (exact zeros) from both ends of a window. */
static void axis_trim(struct axis *ax, uint32_t i, float *w)
{
    uint32_t skip = 0, n = ax->count[i];
    while (skip + 1 < n && w[skip] == 0.0f)
        skip++;
    while (n > skip + 1 && w[n - 1] == 0.0f)
        n--;
    if (skip)
        memmove(w, w + skip, sizeof(float) * (n - skip));
    ax->start[i] += skip;
    ax->count[i] = n - skip;
}

/* Weights for mapping [s0, s0+len) of a src_n-sample axis onto n samples. Taps outside the
 * source are folded onto the edge sample (clamping), so flat images stay flat to the edge. */
static int axis_init(struct axis *ax, uint32_t src_n, double s0, double len, uint32_t n)
{
    double scale = len / n;
    double fscale = scale > 1.0 ? scale : 1.0; /* widen the kernel only when shrinking */
    double support = LANCZOS_A * fscale;
    size_t span = (size_t)ceil(support) * 2 + 3; /* floor/ceil of the ends add one each */
    size_t table;

    memset(ax, 0, sizeof *ax);
    if (span > src_n)
        span = src_n;
    if (!ts_mul_size(span, n, &table))
        return TS_ETOOLARGE;
    ax->n = n;
    ax->maxcount = (uint32_t)span;
    ax->start = malloc(sizeof *ax->start * n);
    ax->count = malloc(sizeof *ax->count * n);
    ax->weights = table <= SIZE_MAX / sizeof(float) ? calloc(table, sizeof(float)) : NULL;
    if (!ax->start || !ax->count || !ax->weights) {
        axis_free(ax);
        return TS_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        double center = s0 + (i + 0.5) * scale;
        long lo = (long)floor(center - support);
        long hi = (long)ceil(center + support);
        long first = lo < 0 ? 0 : lo;
        long last = hi > (long)src_n - 1 ? (long)src_n - 1 : hi;
        float *w = ax->weights + (size_t)i * span;
        double total = 0.0;

        if (first > last) /* centre far outside the source: take the nearest edge sample */
            first = last = lo < 0 ? 0 : (long)src_n - 1;
        for (long j = lo; j <= hi; j++) {
            double v = lanczos3((j + 0.5 - center) / fscale);
            long k = j < first ? first : j > last ? last : j;
            w[k - first] += (float)v;
            total += v;
        }
        ax->start[i] = (uint32_t)first;
        ax->count[i] = (uint32_t)(last - first + 1);
        if (fabs(total) < 1e-9) {
            memset(w, 0, sizeof(float) * span);
            long k = (long)floor(center);
            k = k < first ? first : k > last ? last : k;
            w[k - first] = 1.0f;
        } else {
            for (uint32_t k = 0; k < ax->count[i]; k++)
                w[k] = (float)(w[k] / total);
        }
        axis_trim(ax, i, w);
    }
    return TS_OK;
}

/* One source row as floats, colour premultiplied by alpha so transparent pixels carry no
 * colour into their neighbours. Only columns [x0, x1) are converted. */
static void row_to_float(const uint8_t *src, uint32_t ch, uint32_t x0, uint32_t x1, float *out)
{
    const uint8_t *p = src + (size_t)x0 * ch;
    float *q = out + (size_t)x0 * ch;
    uint32_t n = x1 - x0;

    if (ch == 2 || ch == 4) {
        uint32_t a = ch - 1;
        for (uint32_t x = 0; x < n; x++, p += ch, q += ch) {
            float f = p[a] * (1.0f / 255.0f);
            for (uint32_t c = 0; c < a; c++)
                q[c] = p[c] * f;
            q[a] = p[a];
        }
    } else {
        size_t m = (size_t)n * ch;
        for (size_t i = 0; i < m; i++)
            q[i] = p[i];
    }
}

static inline void hfilter_ch(const float *restrict in, float *restrict out, const struct axis *ax,
                              uint32_t ch)
{
    const uint32_t n = ax->n, stride = ax->maxcount;
    const uint32_t *restrict start = ax->start, *restrict count = ax->count;
    const float *restrict weights = ax->weights;

    for (uint32_t i = 0; i < n; i++, out += ch) {
        const float *restrict w = weights + (size_t)i * stride;
        const float *restrict p = in + (size_t)start[i] * ch;
        const uint32_t taps = count[i];
        float acc[4] = {0, 0, 0, 0};
        for (uint32_t k = 0; k < taps; k++, p += ch)
            for (uint32_t c = 0; c < ch; c++)
                acc[c] += w[k] * p[c];
        for (uint32_t c = 0; c < ch; c++)
            out[c] = acc[c];
    }
}

/* Constant channel counts let the compiler unroll the inner loop. */
static void hfilter(const float *in, float *out, const struct axis *ax, uint32_t ch)
{
    switch (ch) {
    case 1: hfilter_ch(in, out, ax, 1); break;
    case 2: hfilter_ch(in, out, ax, 2); break;
    case 3: hfilter_ch(in, out, ax, 3); break;
    default: hfilter_ch(in, out, ax, 4); break;
    }
}

static inline uint8_t to_u8(float v)
{
    if (!(v > 0.0f))
        return 0;
    if (v >= 255.0f)
        return 255;
    return (uint8_t)(v + 0.5f);
}

/* Accumulated row -> 8-bit, undoing the alpha premultiplication. */
static void row_from_float(const float *acc, uint32_t n, uint32_t ch, uint8_t *out)
{
    if (ch == 2 || ch == 4) {
        uint32_t a = ch - 1;
        for (uint32_t x = 0; x < n; x++, acc += ch, out += ch) {
            uint8_t alpha = to_u8(acc[a]);
            float inv = alpha ? 255.0f / acc[a] : 0.0f;
            for (uint32_t c = 0; c < a; c++)
                out[c] = alpha ? to_u8(acc[c] * inv) : 0;
            out[a] = alpha;
        }
    } else {
        size_t m = (size_t)n * ch;
        for (size_t i = 0; i < m; i++)
            out[i] = to_u8(acc[i]);
    }
}

static int copy_rect(const struct ts_image *src, uint32_t x, uint32_t y, uint32_t w, uint32_t h,
                     struct ts_image *dst)
{
    int rc = ts_image_alloc(dst, w, h, src->channels);
    if (rc)
        return rc;
    for (uint32_t r = 0; r < h; r++)
        memcpy(ts_image_row(dst, r), ts_image_row(src, y + r) + (size_t)x * src->channels,
               (size_t)w * src->channels);
    return TS_OK;
}

static bool rect_valid(double s, double len, uint32_t n)
{
    double slack = 1e-6 * (n + 1.0);
    return isfinite(s) && isfinite(len) && len > 0.0 && s >= -slack && s + len <= n + slack;
}

/* Scratch for the two passes: a ring of horizontally filtered rows, indexed by source row
 * modulo the ring size, so each source row is filtered once however many outputs use it. */
struct scratch {
    float *src_row; /* one source row as floats */
    float *ring;    /* ring_n rows of dst width */
    long *ring_row; /* which source row each slot holds, -1 if none */
    float *acc;     /* one output row being accumulated */
};

static void scratch_free(struct scratch *s)
{
    free(s->src_row);
    free(s->ring);
    free(s->ring_row);
    free(s->acc);
}

static int scratch_alloc(struct scratch *s, size_t src_w, size_t dst_w, size_t ch, size_t ring_n)
{
    size_t srow, drow, ring;
    memset(s, 0, sizeof *s);
    if (!ts_mul3_size(src_w, ch, sizeof(float), &srow) ||
        !ts_mul3_size(dst_w, ch, sizeof(float), &drow) || !ts_mul_size(drow, ring_n, &ring))
        return TS_ETOOLARGE;
    s->src_row = malloc(srow);
    s->ring = malloc(ring);
    s->ring_row = malloc(sizeof *s->ring_row * ring_n);
    s->acc = malloc(drow);
    if (!s->src_row || !s->ring || !s->ring_row || !s->acc) {
        scratch_free(s);
        return TS_ENOMEM;
    }
    for (size_t i = 0; i < ring_n; i++)
        s->ring_row[i] = -1;
    return TS_OK;
}

static void vaccumulate(float *restrict acc, const float *restrict row, float w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        acc[i] += w * row[i];
}

static void resample(const struct ts_image *src, const struct axis *ax, const struct axis *ay,
                     struct scratch *s, struct ts_image *dst)
{
    uint32_t ch = src->channels;
    size_t drow = (size_t)dst->width * ch;
    uint32_t x0 = ax->start[0], x1 = ax->start[0];

    for (uint32_t i = 0; i < ax->n; i++) {
        x0 = ax->start[i] < x0 ? ax->start[i] : x0;
        x1 = ax->start[i] + ax->count[i] > x1 ? ax->start[i] + ax->count[i] : x1;
    }
    for (uint32_t y = 0; y < ay->n; y++) {
        const float *w = ay->weights + (size_t)y * ay->maxcount;
        memset(s->acc, 0, sizeof(float) * drow);
        for (uint32_t k = 0; k < ay->count[y]; k++) {
            long sy = (long)ay->start[y] + k;
            size_t slot = (size_t)sy % ay->maxcount;
            float *hrow = s->ring + slot * drow;
            if (s->ring_row[slot] != sy) {
                row_to_float(ts_image_row(src, (uint32_t)sy), ch, x0, x1, s->src_row);
                hfilter(s->src_row, hrow, ax, ch);
                s->ring_row[slot] = sy;
            }
            vaccumulate(s->acc, hrow, w[k], drow);
        }
        row_from_float(s->acc, dst->width, ch, ts_image_row(dst, y));
    }
}

/* Integer box factor for one axis: as libvips does, shrink by whole pixels while leaving
 * Lanczos at least a 2x reduction, so the filter still shapes the result. The cap keeps the
 * box sums within 32 bits (65536 pixels x 255 x 255 for premultiplied colour). */
static uint32_t box_factor(double len, uint32_t n)
{
    double k = floor(len / n / 2.0);
    return k < 1.0 ? 1 : k > 256.0 ? 256 : (uint32_t)k;
}

/* Adds one source row into per-output sums, kx pixels per box; the last box repeats the edge
 * pixel when the width is not a multiple, as the filter's clamping does. */
static inline void box_row_ch(const uint8_t *restrict row, uint32_t width, uint32_t kx,
                              uint32_t *restrict acc, uint32_t n, uint32_t ch, bool alpha)
{
    for (uint32_t o = 0; o < n; o++, acc += ch) {
        uint32_t x = o * kx;
        for (uint32_t j = 0; j < kx; j++, x++) {
            const uint8_t *p = row + (size_t)(x < width ? x : width - 1) * ch;
            if (alpha) {
                uint32_t a = p[ch - 1];
                for (uint32_t c = 0; c + 1 < ch; c++)
                    acc[c] += p[c] * a;
                acc[ch - 1] += a;
            } else {
                for (uint32_t c = 0; c < ch; c++)
                    acc[c] += p[c];
            }
        }
    }
}

static void box_row(const uint8_t *row, uint32_t width, uint32_t kx, uint32_t *acc, uint32_t n,
                    uint32_t ch)
{
    switch (ch) {
    case 1: box_row_ch(row, width, kx, acc, n, 1, false); break;
    case 2: box_row_ch(row, width, kx, acc, n, 2, true); break;
    case 3: box_row_ch(row, width, kx, acc, n, 3, false); break;
    default: box_row_ch(row, width, kx, acc, n, 4, true); break;
    }
}

static void box_store(const uint32_t *acc, uint32_t n, uint32_t ch, uint32_t count, uint8_t *out)
{
    if (ch == 2 || ch == 4) {
        for (uint32_t o = 0; o < n; o++, acc += ch, out += ch) {
            uint32_t sa = acc[ch - 1];
            for (uint32_t c = 0; c + 1 < ch; c++)
                out[c] = sa ? (uint8_t)((acc[c] + sa / 2) / sa) : 0;
            out[ch - 1] = (uint8_t)((sa + count / 2) / count);
        }
    } else {
        for (size_t i = 0; i < (size_t)n * ch; i++)
            out[i] = (uint8_t)((acc[i] + count / 2) / count);
    }
}

/* Averages kx x ky boxes (alpha-weighted colour), an exact shrink that reads each source pixel
 * once: far cheaper than a Lanczos window of 6x the ratio on each axis. */
static int box_shrink(const struct ts_image *src, uint32_t kx, uint32_t ky, struct ts_image *dst)
{
    uint32_t w = src->width / kx + (src->width % kx != 0);
    uint32_t h = src->height / ky + (src->height % ky != 0);
    uint32_t ch = src->channels;
    size_t n;
    int rc;

    if (!ts_mul3_size(w, ch, sizeof(uint32_t), &n))
        return TS_ETOOLARGE;
    uint32_t *acc = malloc(n);
    if (!acc)
        return TS_ENOMEM;
    rc = ts_image_alloc(dst, w, h, ch);
    if (rc) {
        free(acc);
        return rc;
    }
    for (uint32_t oy = 0; oy < h; oy++) {
        memset(acc, 0, n);
        for (uint32_t j = 0; j < ky; j++) {
            uint32_t y = oy * ky + j;
            box_row(ts_image_row(src, y < src->height ? y : src->height - 1), src->width, kx, acc,
                    w, ch);
        }
        box_store(acc, w, ch, kx * ky, ts_image_row(dst, oy));
    }
    free(acc);
    return TS_OK;
}

static int lanczos_rect(const struct ts_image *src, double sx, double sy, double sw, double sh,
                        uint32_t w, uint32_t h, struct ts_image *dst);

int ref_resample_rect(const struct ts_image *src, double sx, double sy, double sw, double sh,
                      uint32_t w, uint32_t h, struct ts_image *dst)
{
    dst->data = NULL;
    if (!src || !src->data || src->channels < 1 || src->channels > 4 || w == 0 || h == 0)
        return TS_EINVAL;
    if (!rect_valid(sx, sw, src->width) || !rect_valid(sy, sh, src->height))
        return TS_EINVAL;
    /* Same size at a whole-pixel offset: a crop, bit-exact. */
    if (sw == w && sh == h && sx == floor(sx) && sy == floor(sy) && sx >= 0 && sy >= 0 &&
        sx + w <= src->width && sy + h <= src->height)
        return copy_rect(src, (uint32_t)sx, (uint32_t)sy, w, h, dst);

    uint32_t kx = box_factor(sw, w), ky = box_factor(sh, h);
    if (kx == 1 && ky == 1)
        return lanczos_rect(src, sx, sy, sw, sh, w, h, dst);
    struct ts_image small = {0};
    int rc = box_shrink(src, kx, ky, &small);
    if (rc == TS_OK)
        rc = lanczos_rect(&small, sx / kx, sy / ky, sw / kx, sh / ky, w, h, dst);
    ts_image_free(&small);
    return rc;
}

static int lanczos_rect(const struct ts_image *src, double sx, double sy, double sw, double sh,
                        uint32_t w, uint32_t h, struct ts_image *dst)
{
    struct axis ax, ay;
    struct scratch s;
    int rc;

    rc = axis_init(&ax, src->width, sx, sw, w);
    if (rc)
        return rc;
    rc = axis_init(&ay, src->height, sy, sh, h);
    if (rc) {
        axis_free(&ax);
        return rc;
    }
    rc = scratch_alloc(&s, src->width, w, src->channels, ay.maxcount);
    if (rc == TS_OK) {
        rc = ts_image_alloc(dst, w, h, src->channels);
        if (rc == TS_OK)
            resample(src, &ax, &ay, &s, dst);
        scratch_free(&s);
    }
    axis_free(&ax);
    axis_free(&ay);
    return rc;
}

int ref_resize(const struct ts_image *src, uint32_t w, uint32_t h, struct ts_image *dst)
{
    if (!src)
        return TS_EINVAL;
    return ref_resample_rect(src, 0.0, 0.0, src->width, src->height, w, h, dst);
}
