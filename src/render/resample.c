/* Separable Lanczos3 resampling of 8-bit interleaved images, from a sub-pixel source rectangle.
 *
 * Fixed point: the weights of each output sample are int16 summing exactly to 1 << WBITS, so
 * flat areas stay exact; samples between the passes are int16 with FRAC fractional bits, so the
 * only rounding that matters is the final one to 8 bits.
 *
 * Both passes are the same kernel, a window of taps down a stack of long contiguous rows (see
 * kernels.h: vector versions keep each sum in registers for the whole window); a dot product
 * per output pixel (the obvious horizontal filter) has no such long rows. The vertical pass
 * goes first, over the source width, and stores its rows transposed into a block of BLOCK
 * output rows: source column x becomes a row holding that column's samples for the whole block.
 * The horizontal pass is then a vertical one over that block, and its rows are transposed back
 * as they are rounded to 8 bits. Going vertical first also puts the full-resolution work in
 * the pass over whole rows; only out_h rows (not the source's) get the horizontal filter. */
#include "render/kernels.h"
#include "render/render.h"
#include "util/parallel.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define LANCZOS_A 3.0

/* 14 bits of weight keep the worst sum (|w| adds to ~1.3 for Lanczos3, times int16 samples)
 * inside int32, and put the weight rounding well under the 8-bit output step. */
#define WBITS 14
/* Samples are pixel << FRAC between the passes; 6 bits leave room in int16 for Lanczos
 * overshoot (255 << 6 times ~1.3 < 32767). */
#define FRAC 6
#define OUT_SHIFT (WBITS + FRAC)
/* Output rows per transposed block: long enough rows for the vector loops, short enough that
 * a block of a wide source stays in cache (see block_rows). */
#define BLOCK_MAX 64
#define BLOCK_MIN 8
#define BLOCK_BYTES (512 * 1024)

/* Per output index along one axis: the first source index and weights[start .. start+count). */
struct axis {
    uint32_t n;        /* output samples */
    uint32_t maxcount; /* widest window, the stride of weights */
    uint32_t *start;
    uint32_t *count;
    int16_t *weights; /* n x maxcount */
};

static void axis_free(struct axis *ax)
{
    free(ax->start);
    free(ax->count);
    free(ax->weights);
    memset(ax, 0, sizeof *ax);
}

/* Rounds one window to integers that sum to exactly 1 << WBITS: the rounding error goes to the
 * largest tap, where it is relatively smallest. */
static int32_t quantise(const double *w, uint32_t n, int16_t *q)
{
    int32_t sum = 0, positive = 0;
    uint32_t big = 0;
    for (uint32_t k = 0; k < n; k++) {
        double v = nearbyint(w[k] * (1 << WBITS));
        v = v > INT16_MAX ? INT16_MAX : v < INT16_MIN ? INT16_MIN : v;
        q[k] = (int16_t)v;
        sum += q[k];
        if (fabs(w[k]) > fabs(w[big]))
            big = k;
    }
    q[big] = (int16_t)(q[big] + ((1 << WBITS) - sum));
    for (uint32_t k = 0; k < n; k++)
        positive += q[k] > 0 ? q[k] : 0;
    return positive;
}

/* Drops taps that quantised to zero from both ends of a window; they cost time, not accuracy. */
static void axis_trim(struct axis *ax, uint32_t i, int16_t *q)
{
    uint32_t skip = 0, n = ax->count[i];
    while (skip + 1 < n && q[skip] == 0)
        skip++;
    while (n > skip + 1 && q[n - 1] == 0)
        n--;
    if (skip)
        memmove(q, q + skip, sizeof *q * (n - skip));
    ax->start[i] += skip;
    ax->count[i] = n - skip;
}

/* Lanczos3 sampled LANCZOS_STEPS times per unit over [0, 3], read with linear interpolation:
 * the error (under 2e-6) is a few hundredths of one step of the 14-bit weights, and the
 * weights of a thumbnail's axes were a tenth of its resampling time when each tap was a sine
 * and a division. */
#define LANCZOS_STEPS 1024
static double lanczos_tab[(int)LANCZOS_A * LANCZOS_STEPS + 2];
static pthread_once_t lanczos_once = PTHREAD_ONCE_INIT;

static void lanczos_fill(void)
{
    lanczos_tab[0] = 1.0;
    for (int i = 1; i < (int)LANCZOS_A * LANCZOS_STEPS; i++) {
        double x = (double)i / LANCZOS_STEPS;
        lanczos_tab[i] =
            LANCZOS_A * sin(M_PI * x) * sin(M_PI * x / LANCZOS_A) / (M_PI * M_PI * x * x);
    }
    /* zero at 3 and beyond: the last interval falls to it */
    lanczos_tab[(int)LANCZOS_A * LANCZOS_STEPS] = 0.0;
    lanczos_tab[(int)LANCZOS_A * LANCZOS_STEPS + 1] = 0.0;
}

static const double *lanczos_table(void)
{
    pthread_once(&lanczos_once, lanczos_fill);
    return lanczos_tab;
}

static inline double lanczos(const double *tab, double x)
{
    double f = fabs(x) * LANCZOS_STEPS;
    if (!(f < LANCZOS_A * LANCZOS_STEPS))
        return 0.0;
    int k = (int)f;
    return tab[k] + (f - k) * (tab[k + 1] - tab[k]);
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
    double *w;

    memset(ax, 0, sizeof *ax);
    if (span > src_n)
        span = src_n;
    if (!ts_mul_size(span, n, &table) || table > SIZE_MAX / sizeof *ax->weights)
        return TS_ETOOLARGE;
    ax->n = n;
    ax->maxcount = (uint32_t)span;
    ax->start = malloc(sizeof *ax->start * n);
    ax->count = malloc(sizeof *ax->count * n);
    ax->weights = calloc(table, sizeof *ax->weights);
    w = malloc(span * sizeof *w);
    if (!ax->start || !ax->count || !ax->weights || !w) {
        free(w);
        axis_free(ax);
        return TS_ENOMEM;
    }
    const double step = 1.0 / fscale;
    const double *tab = lanczos_table();
    for (uint32_t i = 0; i < n; i++) {
        double center = s0 + (i + 0.5) * scale;
        long lo = (long)floor(center - support);
        long hi = (long)ceil(center + support);
        long first = lo < 0 ? 0 : lo;
        long last = hi > (long)src_n - 1 ? (long)src_n - 1 : hi;
        int16_t *q = ax->weights + (size_t)i * span;
        double total = 0.0;

        if (first > last) /* centre far outside the source: take the nearest edge sample */
            first = last = lo < 0 ? 0 : (long)src_n - 1;
        memset(w, 0, span * sizeof *w);
        double x = (lo + 0.5 - center) / fscale;
        for (long j = lo; j <= hi; j++, x += step) {
            double v = lanczos(tab, x);
            long k = j < first ? first : j > last ? last : j;
            w[k - first] += v;
            total += v;
        }
        ax->start[i] = (uint32_t)first;
        ax->count[i] = (uint32_t)(last - first + 1);
        if (fabs(total) < 1e-9) {
            memset(w, 0, sizeof *w * span);
            long k = (long)floor(center);
            k = k < first ? first : k > last ? last : k;
            w[k - first] = 1.0;
        } else {
            for (uint32_t k = 0; k < ax->count[i]; k++)
                w[k] /= total;
        }
        /* Positive taps of a Lanczos3 window add to at most 1.274 (folding taps onto the edge
         * only lowers that), which keeps filtered samples inside int16 with no clamping; a
         * window outside that bound would be a bug, refused rather than left to overflow. */
        if (quantise(w, ax->count[i], q) > (1 << WBITS) * 19 / 10) {
            free(w);
            axis_free(ax);
            return TS_EINVAL;
        }
        axis_trim(ax, i, q);
    }
    free(w);
    return TS_OK;
}

/* One source row, columns [x0, x1), as int16 samples. Colour is premultiplied by alpha so
 * transparent pixels carry no colour into their neighbours: c * a >> 2 keeps it in int16 at
 * 255/4 per unit of premultiplied colour, against 64 per unit of alpha (see store_alpha). */
static inline void widen_ch(const uint8_t *restrict p, size_t n, int16_t *restrict out, uint32_t ch)
{
    for (size_t x = 0; x < n; x++, p += ch, out += ch) {
        uint32_t a = p[ch - 1];
        for (uint32_t c = 0; c + 1 < ch; c++)
            out[c] = (int16_t)((p[c] * a + 2) >> 2);
        out[ch - 1] = (int16_t)(a << FRAC);
    }
}

static void widen_row(const uint8_t *src, uint32_t ch, uint32_t x0, uint32_t x1, int16_t *out)
{
    const uint8_t *p = src + (size_t)x0 * ch;
    if (ch == 2)
        widen_ch(p, x1 - x0, out, 2);
    else
        widen_ch(p, x1 - x0, out, 4);
}

/* acc = w0 * r0 + w1 * r1 and friends: two rows a pass halve the accumulator traffic, and
 * int16 x int16 pairs summed into int32 are what SIMD multiply-add instructions do. */
static void vfirst(int32_t *restrict acc, const int16_t *restrict r0, const int16_t *restrict r1,
                   int16_t w0, int16_t w1, size_t n)
{
    for (size_t i = 0; i < n; i++)
        acc[i] = w0 * r0[i] + w1 * r1[i];
}

static void vadd2(int32_t *restrict acc, const int16_t *restrict r0, const int16_t *restrict r1,
                  int16_t w0, int16_t w1, size_t n)
{
    for (size_t i = 0; i < n; i++)
        acc[i] += w0 * r0[i] + w1 * r1[i];
}

static void vadd1(int32_t *restrict acc, const int16_t *restrict r0, int16_t w0, size_t n)
{
    for (size_t i = 0; i < n; i++)
        acc[i] += w0 * r0[i];
}

/* Four rows a pass: a quarter of the accumulator traffic of one, for the longer windows. The
 * four products' sum stays inside int32 (|w| adds to under 1.3 << WBITS per window). */
static void vadd4(int32_t *restrict acc, const int16_t *restrict r, size_t stride, const int16_t *w,
                  size_t n)
{
    const int16_t *restrict r0 = r, *restrict r1 = r + stride, *restrict r2 = r + 2 * stride,
                            *restrict r3 = r + 3 * stride;
    const int16_t w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3];
    for (size_t i = 0; i < n; i++)
        acc[i] += w0 * r0[i] + w1 * r1[i] + w2 * r2[i] + w3 * r3[i];
}

/* One vertically filtered row (pixels interleaved) into column r of the transposed block:
 * pixel x's channels land at block[x * stride + r * ch], rounded to FRAC fractional bits. */
static inline void transpose_in_ch(const int32_t *restrict acc, size_t n, int shift,
                                   int16_t *restrict block, size_t stride, uint32_t ch)
{
    const int32_t half = 1 << (shift - 1);
    /* >> of a negative sum: arithmetic on every compiler Tessera targets (floor). */
    for (size_t x = 0; x < n; x++, acc += ch, block += stride)
        for (uint32_t c = 0; c < ch; c++)
            block[c] = (int16_t)((acc[c] + half) >> shift);
}

static void transpose_in(const int32_t *acc, size_t n, int shift, int16_t *block, size_t stride,
                         uint32_t ch)
{
    if (ch == 2)
        transpose_in_ch(acc, n, shift, block, stride, 2);
    else
        transpose_in_ch(acc, n, shift, block, stride, 4);
}

static inline uint8_t to_u8(float v)
{
    if (!(v > 0.0f))
        return 0;
    if (v >= 255.0f)
        return 255;
    return (uint8_t)(v + 0.5f);
}

/* Undoes the premultiplication. Colour is 255/4 and alpha 64 per unit, so colour / alpha in
 * 8-bit terms is (C / 63.75) / (A / 64) * 255 = 256 * C / A. */
static inline void store_alpha(const int32_t *acc, uint32_t ch, uint8_t *out)
{
    uint32_t a = ch - 1;
    uint8_t alpha = to_u8((float)acc[a] * (1.0f / (1 << OUT_SHIFT)));
    float inv = alpha ? 256.0f / (float)acc[a] : 0.0f;
    for (uint32_t c = 0; c < a; c++)
        out[c] = alpha ? to_u8((float)acc[c] * inv) : 0;
    out[a] = alpha;
}

/* One horizontally filtered column of the block (rows interleaved, premultiplied) back into
 * output column i of rows y0 .. y0 + rows. */
static void transpose_out(const int32_t *acc, uint32_t rows, struct ts_image *dst, uint32_t y0,
                          uint32_t i)
{
    uint32_t ch = dst->channels;
    for (uint32_t r = 0; r < rows; r++, acc += ch)
        store_alpha(acc, ch, ts_image_row(dst, y0 + r) + (size_t)i * ch);
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

/* Scratch: for images with alpha, a ring of premultiplied source rows, indexed by source row
 * modulo the ring size, so each is converted once however many outputs use it; the transposed
 * block; and one accumulator row, long enough for either pass. */
struct scratch {
    size_t width;    /* source columns any window reaches, x1 - x0 */
    uint32_t block;  /* output rows per block */
    int16_t *ring;   /* ring_n rows of width x ch */
    long *ring_row;  /* which source row each slot holds, -1 if none */
    int16_t *tblock; /* width rows of stride samples: block x ch, then PAD */
    size_t stride;
    int32_t *acc;
    const uint8_t **rows; /* one window's source rows, for the vector kernels */
};

static void scratch_free(struct scratch *s)
{
    free(s->ring);
    free(s->ring_row);
    free(s->tblock);
    free(s->acc);
    free(s->rows);
}

static uint32_t block_rows(size_t width, uint32_t ch, uint32_t out_h)
{
    size_t per_row = width * ch * sizeof(int16_t);
    size_t b = per_row ? BLOCK_BYTES / per_row : BLOCK_MAX;
    b = b < BLOCK_MIN ? BLOCK_MIN : b > BLOCK_MAX ? BLOCK_MAX : b;
    return (uint32_t)(b < out_h ? b : out_h);
}

/* Samples past each block column and past the ring: the grouped moves below copy whole 8-byte
 * words, and a pixel's last word runs into the next slot (written over next) or into these. */
#define PAD 4

static int scratch_alloc(struct scratch *s, size_t width, size_t ch, size_t ring_n, uint32_t out_h,
                         uint32_t taps)
{
    size_t row, ring, tblock, accn;
    memset(s, 0, sizeof *s);
    s->width = width;
    s->block = block_rows(width, (uint32_t)ch, out_h);
    s->stride = (size_t)s->block * ch + PAD;
    accn = width > s->block ? width : s->block;
    if (!ts_mul3_size(width, ch, sizeof(int16_t), &row) || !ts_mul_size(row, ring_n, &ring) ||
        !ts_mul3_size(width, s->stride, sizeof(int16_t), &tblock) ||
        !ts_mul3_size(accn, ch, sizeof(int32_t), &accn) || ring > SIZE_MAX - PAD * 2)
        return TS_ETOOLARGE;
    ring += PAD * sizeof(int16_t);
    s->ring = malloc(ring);
    s->ring_row = malloc(sizeof *s->ring_row * ring_n);
    s->tblock = malloc(tblock);
    s->acc = malloc(accn);
    s->rows = malloc(sizeof *s->rows * taps);
    if (!s->ring || !s->ring_row || !s->tblock || !s->acc || !s->rows) {
        scratch_free(s);
        return TS_ENOMEM;
    }
    for (size_t i = 0; i < ring_n; i++)
        s->ring_row[i] = -1;
    return TS_OK;
}

static const int16_t *ring_get(const struct ts_image *src, const struct axis *ay, struct scratch *s,
                               uint32_t x0, long sy)
{
    uint32_t ch = src->channels;
    size_t slot = (size_t)sy % ay->maxcount;
    int16_t *row = s->ring + slot * s->width * ch;
    if (s->ring_row[slot] != sy) {
        widen_row(ts_image_row(src, (uint32_t)sy), ch, x0, x0 + (uint32_t)s->width, row);
        s->ring_row[slot] = sy;
    }
    return row;
}

/* Output row y of the vertical pass over premultiplied rows from the ring. The window's rows
 * are fetched two at a time: both stay valid, since the ring holds the widest window. */
static void vfilter16(const struct ts_image *src, const struct axis *ay, struct scratch *s,
                      uint32_t x0, uint32_t y, size_t n)
{
    const int16_t *w = ay->weights + (size_t)y * ay->maxcount;
    uint32_t count = ay->count[y], k = 2;
    long sy = ay->start[y];
    const int16_t *r0 = ring_get(src, ay, s, x0, sy);
    if (count == 1) {
        vfirst(s->acc, r0, r0, w[0], 0, n);
        return;
    }
    vfirst(s->acc, r0, ring_get(src, ay, s, x0, sy + 1), w[0], w[1], n);
    for (; k + 1 < count; k += 2) {
        r0 = ring_get(src, ay, s, x0, sy + k);
        vadd2(s->acc, r0, ring_get(src, ay, s, x0, sy + k + 1), w[k], w[k + 1], n);
    }
    if (k < count)
        vadd1(s->acc, ring_get(src, ay, s, x0, sy + k), w[k], n);
}

/* Plain (no alpha) rows are filtered GROUP at a time in each pass and then moved between the
 * row-major and transposed layouts together: each pixel's GROUP rows (or columns) are then one
 * contiguous run, where moving them one row at a time would touch a cache line per pixel. */
#define GROUP 8
_Static_assert(GROUP == 8, "rk_rows_to_cols3 and rk_cols_to_rows3 move groups of 8");

static inline void move_px(int16_t *restrict d, const int16_t *restrict s, uint32_t ch)
{
    for (uint32_t c = 0; c < ch; c++)
        d[c] = s[c];
}

/* Rows [r, r + g) of the block from g filtered rows in the ring (row j at ring + j * rowlen).
 * Three-channel pixels of a whole group go through a vector transpose where the CPU has one;
 * otherwise each moves as one 8-byte word. Either writes up to 4 samples past a pixel's slot,
 * onto the next group's (written next) or PAD. */
static inline void group_in_ch(const int16_t *ring, size_t rowlen, uint32_t g, size_t width,
                               int16_t *block, size_t stride, uint32_t ch)
{
    size_t x = ch == 3 && g == GROUP ? rk_rows_to_cols3(ring, rowlen, width, block, stride) : 0;
    for (block += x * stride; x < width; x++, block += stride) {
        if (ch == 3) {
            for (uint32_t j = 0; j < g; j++)
                memcpy(block + (size_t)j * 3, ring + j * rowlen + x * 3, 4 * sizeof *ring);
            continue;
        }
        for (uint32_t j = 0; j < g; j++)
            move_px(block + (size_t)j * ch, ring + j * rowlen + x * ch, ch);
    }
}

/* Vertical pass for output rows y0 + r .. y0 + r + g into block rows r .. r + g, pixel << FRAC. */
static void vgroup_plain(const struct ts_image *src, const struct axis *ay, struct scratch *s,
                         uint32_t x0, uint32_t y, uint32_t r, uint32_t g)
{
    uint32_t ch = src->channels;
    size_t off = (size_t)x0 * ch, rowlen = s->width * ch, stride = s->stride;
    int16_t *block = s->tblock + (size_t)r * ch;
    for (uint32_t j = 0; j < g; j++) {
        uint32_t yy = y + j, count = ay->count[yy];
        for (uint32_t k = 0; k < count; k++)
            s->rows[k] = ts_image_row(src, ay->start[yy] + k) + off;
        rk_rows_u8_to_i16(s->rows, ay->weights + (size_t)yy * ay->maxcount, count, rowlen,
                          WBITS - FRAC, s->ring + j * rowlen);
    }
    switch (ch) {
    case 1: group_in_ch(s->ring, rowlen, g, s->width, block, stride, 1); break;
    case 3: group_in_ch(s->ring, rowlen, g, s->width, block, stride, 3); break;
    default: group_in_ch(s->ring, rowlen, g, s->width, block, stride, ch); break;
    }
}

/* Output columns [i, i + g) of rows y0 .. y0 + rows from g rounded block columns (column j at
 * px + j * BLOCK_MAX * 4, which leaves room for the transpose's reads past a column's last
 * pixel). Three-channel pixels of a whole group go through a vector transpose where the CPU
 * has one; otherwise they move as 4-byte words, the spare byte landing on the next pixel,
 * written next; except in the row's last group, whose spare byte would be the start of the
 * next row. */
static inline void group_out_ch(const uint8_t *px, uint32_t g, uint32_t rows, struct ts_image *dst,
                                uint32_t y0, uint32_t i, uint32_t ch)
{
    bool words = ch == 3 && i + g < dst->width;
    uint32_t r = ch == 3 && g == GROUP
                     ? rk_cols_to_rows3(px, BLOCK_MAX * 4, rows,
                                        ts_image_row(dst, y0) + (size_t)i * 3, dst->stride)
                     : 0;
    for (; r < rows; r++) {
        uint8_t *out = ts_image_row(dst, y0 + r) + (size_t)i * ch;
        const uint8_t *in = px + (size_t)r * ch;
        if (words) {
            for (uint32_t j = 0; j < g; j++)
                memcpy(out + (size_t)j * 3, in + (size_t)j * BLOCK_MAX * 4, 4);
            continue;
        }
        for (uint32_t j = 0; j < g; j++)
            for (uint32_t c = 0; c < ch; c++)
                out[(size_t)j * ch + c] = in[(size_t)j * BLOCK_MAX * 4 + c];
    }
}

static void hgroup_plain(const struct axis *ax, const struct scratch *s, uint32_t x0, uint32_t i,
                         uint32_t g, uint32_t rows, struct ts_image *dst, uint32_t y0)
{
    uint8_t px[GROUP * BLOCK_MAX * 4];
    uint32_t ch = dst->channels;
    size_t stride = s->stride;
    for (uint32_t j = 0; j < g; j++) {
        uint32_t ii = i + j;
        rk_rows_i16_to_u8(s->tblock + (size_t)(ax->start[ii] - x0) * stride, stride,
                          ax->weights + (size_t)ii * ax->maxcount, ax->count[ii], (size_t)rows * ch,
                          OUT_SHIFT, px + (size_t)j * BLOCK_MAX * 4);
    }
    switch (ch) {
    case 1: group_out_ch(px, g, rows, dst, y0, i, 1); break;
    case 3: group_out_ch(px, g, rows, dst, y0, i, 3); break;
    default: group_out_ch(px, g, rows, dst, y0, i, ch); break;
    }
}

/* Output rows [y_from, y_to) (y_from a multiple of the block height): each block of rows is
 * computed alone, so any split of the rows gives the same bytes. */
static void resample(const struct ts_image *src, const struct axis *ax, const struct axis *ay,
                     struct scratch *s, struct ts_image *dst, uint32_t y_from, uint32_t y_to)
{
    uint32_t ch = src->channels;
    uint32_t x0 = ax->start[0];
    size_t n = s->width * ch, stride = s->stride;
    bool alpha = ch == 2 || ch == 4;

    for (uint32_t i = 0; i < ax->n; i++)
        x0 = ax->start[i] < x0 ? ax->start[i] : x0;
    for (uint32_t y0 = y_from; y0 < y_to; y0 += s->block) {
        uint32_t nrows = y_to - y0 < s->block ? y_to - y0 : s->block;
        if (!alpha) {
            for (uint32_t r = 0; r < nrows; r += GROUP)
                vgroup_plain(src, ay, s, x0, y0 + r, r, nrows - r < GROUP ? nrows - r : GROUP);
            for (uint32_t i = 0; i < ax->n; i += GROUP)
                hgroup_plain(ax, s, x0, i, ax->n - i < GROUP ? ax->n - i : GROUP, nrows, dst, y0);
            continue;
        }
        for (uint32_t r = 0; r < nrows; r++) {
            vfilter16(src, ay, s, x0, y0 + r, n);
            transpose_in(s->acc, s->width, WBITS, s->tblock + (size_t)r * ch, stride, ch);
        }
        size_t m = (size_t)nrows * ch;
        for (uint32_t i = 0; i < ax->n; i++) {
            const int16_t *w = ax->weights + (size_t)i * ax->maxcount;
            const int16_t *col = s->tblock + (size_t)(ax->start[i] - x0) * stride;
            uint32_t count = ax->count[i], k = 2;
            if (count == 1) {
                vfirst(s->acc, col, col, w[0], 0, m);
            } else {
                vfirst(s->acc, col, col + stride, w[0], w[1], m);
                for (; k + 3 < count; k += 4)
                    vadd4(s->acc, col + k * stride, stride, w + k, m);
                for (; k + 1 < count; k += 2)
                    vadd2(s->acc, col + k * stride, col + (k + 1) * stride, w[k], w[k + 1], m);
                if (k < count)
                    vadd1(s->acc, col + k * stride, w[k], m);
            }
            transpose_out(s->acc, nrows, dst, y0, i);
        }
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

uint32_t render_box_factor(double src_len, uint32_t dst_len)
{
    return dst_len ? box_factor(src_len, dst_len) : 1;
}

/* Column sums of one source row into sums; plain rows are one contiguous widening add. */
static void box_add_row(const uint8_t *restrict row, size_t n, uint16_t *restrict sums)
{
    for (size_t i = 0; i < n; i++)
        sums[i] = (uint16_t)(sums[i] + row[i]);
}

static inline void box_add_alpha_ch(const uint8_t *restrict row, uint32_t width,
                                    uint32_t *restrict sums, uint32_t ch)
{
    /* One multiplier per channel (alpha for colour, 1 for alpha itself) keeps the channels
     * uniform, which lets the compiler do a pixel per vector operation. */
    for (uint32_t x = 0; x < width; x++, row += ch, sums += ch) {
        uint32_t a = row[ch - 1];
        for (uint32_t c = 0; c < ch; c++)
            sums[c] += (uint16_t)(row[c] * (c + 1 < ch ? a : 1u)); /* 255 x 255 fits 16 bits */
    }
}

/* Sums kx columns per output into hs; the last box repeats the edge column when the width is
 * not a multiple, as the filter's clamping does. */
static inline void box_hsum_ch(const void *sums, bool wide, uint32_t width, uint32_t kx, uint32_t n,
                               uint32_t *restrict hs, uint32_t ch)
{
    const uint16_t *s16 = sums;
    const uint32_t *s32 = sums;
    uint32_t full = width / kx;
    for (uint32_t o = 0; o < full; o++, hs += ch) {
        size_t at = (size_t)o * kx * ch;
        for (uint32_t c = 0; c < ch; c++) {
            uint32_t acc = 0;
            for (uint32_t j = 0; j < kx; j++)
                acc += wide ? s32[at + j * ch + c] : s16[at + j * ch + c];
            hs[c] = acc;
        }
    }
    for (uint32_t o = full; o < n; o++, hs += ch) {
        for (uint32_t c = 0; c < ch; c++) {
            uint32_t acc = 0;
            for (uint32_t j = 0, x = o * kx; j < kx; j++, x++)
                acc += wide ? s32[(size_t)(x < width ? x : width - 1) * ch + c]
                            : s16[(size_t)(x < width ? x : width - 1) * ch + c];
            hs[c] = acc;
        }
    }
}

/* Small factors (the common ones: the shrink leaves Lanczos 2-4x) as constants, so the sums
 * unroll. */
static void box_hsum(const void *sums, bool wide, uint32_t width, uint32_t kx, uint32_t n,
                     uint32_t *hs, uint32_t ch)
{
#define BOX_HSUM_CH(CH)                                                                            \
    switch (kx) {                                                                                  \
    case 2: box_hsum_ch(sums, wide, width, 2, n, hs, CH); break;                                   \
    case 3: box_hsum_ch(sums, wide, width, 3, n, hs, CH); break;                                   \
    case 4: box_hsum_ch(sums, wide, width, 4, n, hs, CH); break;                                   \
    default: box_hsum_ch(sums, wide, width, kx, n, hs, CH); break;                                 \
    }
    switch (ch) {
    case 1: BOX_HSUM_CH(1); break;
    case 2: BOX_HSUM_CH(2); break;
    case 3: BOX_HSUM_CH(3); break;
    default: BOX_HSUM_CH(4); break;
    }
#undef BOX_HSUM_CH
}

/* Rounded averages. Integer division was the costliest step of the shrink; the quotients are
 * exact in double instead. A numerator t + count / 2 < 2^25 (so int32 converts, which is
 * cheaper) times the reciprocal of count errs by under 2^-40, which the 2^-20 nudge covers
 * while staying below the 1/count >= 2^-16 gap a true non-integer quotient keeps from the next
 * integer. Colour over summed alpha likewise: numerators below 2^33, quotients at most 255.5,
 * so the error stays under 2^-40 and the gap is at least 1/sa >= 2^-24, with a 2^-30 nudge. */
static void box_average(const uint32_t *restrict hs, size_t n, uint32_t count,
                        uint8_t *restrict out)
{
    const double inv = 1.0 / count, nudge = 1.0 / (1 << 20);
    const uint32_t half = count / 2;
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)((double)(int32_t)(hs[i] + half) * inv + nudge);
}

static void box_average_alpha(const uint32_t *hs, uint32_t n, uint32_t ch, uint32_t count,
                              uint8_t *out)
{
    const double inv = 1.0 / count, nudge = 1.0 / (1 << 20), nudge_a = 1.0 / (1 << 30);
    for (uint32_t o = 0; o < n; o++, hs += ch, out += ch) {
        uint32_t sa = hs[ch - 1];
        double inv_a = sa ? 1.0 / sa : 0.0;
        for (uint32_t c = 0; c + 1 < ch; c++)
            out[c] = (uint8_t)(((double)hs[c] + sa / 2) * inv_a + (sa ? nudge_a : 0.0));
        out[ch - 1] = (uint8_t)((double)(int32_t)(sa + count / 2) * inv + nudge);
    }
}

/* Averages kx x ky boxes (alpha-weighted colour), an exact shrink that reads each source pixel
 * once: far cheaper than a Lanczos window of 6x the ratio on each axis. Rows are summed first,
 * down whole columns (vectorisable); the horizontal sums then run once per ky rows. Column sums
 * of plain pixels fit 16 bits (ky <= 256); premultiplied ones need 32. */
static int box_shrink(const struct ts_image *src, uint32_t kx, uint32_t ky, struct ts_image *dst)
{
    uint32_t w = src->width / kx + (src->width % kx != 0);
    uint32_t h = src->height / ky + (src->height % ky != 0);
    uint32_t ch = src->channels, count = kx * ky;
    bool alpha = ch == 2 || ch == 4;
    size_t n = (size_t)src->width * ch, bytes, hbytes;
    int rc;

    if (!ts_mul_size(n, alpha ? sizeof(uint32_t) : sizeof(uint16_t), &bytes) ||
        !ts_mul3_size(w, ch, sizeof(uint32_t), &hbytes))
        return TS_ETOOLARGE;
    void *sums = malloc(bytes);
    uint32_t *hs = malloc(hbytes);
    if (!sums || !hs) {
        free(sums);
        free(hs);
        return TS_ENOMEM;
    }
    rc = ts_image_alloc(dst, w, h, ch);
    if (rc) {
        free(sums);
        free(hs);
        return rc;
    }
    for (uint32_t oy = 0; oy < h; oy++) {
        uint8_t *out = ts_image_row(dst, oy);
        memset(sums, 0, bytes);
        for (uint32_t j = 0; j < ky; j++) {
            uint32_t y = oy * ky + j;
            const uint8_t *row = ts_image_row(src, y < src->height ? y : src->height - 1);
            if (ch == 2)
                box_add_alpha_ch(row, src->width, sums, 2);
            else if (ch == 4)
                box_add_alpha_ch(row, src->width, sums, 4);
            else
                box_add_row(row, n, sums);
        }
        box_hsum(sums, alpha, src->width, kx, w, hs, ch);
        if (alpha)
            box_average_alpha(hs, w, ch, count, out);
        else
            box_average(hs, (size_t)w * ch, count, out);
    }
    free(sums);
    free(hs);
    return TS_OK;
}

static int lanczos_rect(const struct ts_image *src, double sx, double sy, double sw, double sh,
                        uint32_t w, uint32_t h, unsigned threads, struct ts_image *dst);

int render_resample_rect(const struct ts_image *src, double sx, double sy, double sw, double sh,
                         uint32_t w, uint32_t h, struct ts_image *dst)
{
    return render_resample_rect_mt(src, sx, sy, sw, sh, w, h, 1, dst);
}

int render_resample_rect_mt(const struct ts_image *src, double sx, double sy, double sw, double sh,
                            uint32_t w, uint32_t h, unsigned threads, struct ts_image *dst)
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
        return lanczos_rect(src, sx, sy, sw, sh, w, h, threads, dst);
    struct ts_image small = {0};
    int rc = box_shrink(src, kx, ky, &small);
    if (rc == TS_OK)
        rc = lanczos_rect(&small, sx / kx, sy / ky, sw / kx, sh / ky, w, h, threads, dst);
    ts_image_free(&small);
    return rc;
}

/* Source columns [min start, max end) of an axis's windows. */
static size_t x_span(const struct axis *ax)
{
    uint32_t x0 = ax->start[0], x1 = ax->start[0];
    for (uint32_t i = 0; i < ax->n; i++) {
        x0 = ax->start[i] < x0 ? ax->start[i] : x0;
        x1 = ax->start[i] + ax->count[i] > x1 ? ax->start[i] + ax->count[i] : x1;
    }
    return x1 - x0;
}

/* Output pixels below which a resample stays on one thread: starting one costs more. */
#define MT_MIN_PIXELS ((uint64_t)256 * 256)

/* One thread's share of a resample: whole blocks of output rows, with scratch of its own. */
struct mt_job {
    const struct ts_image *src;
    const struct axis *ax, *ay;
    struct ts_image *dst;
    size_t width;
    uint32_t block; /* output rows per block, the same for every part */
    int rc[TS_PARALLEL_MAX];
};

static void mt_part(void *ctx, unsigned k, unsigned parts)
{
    struct mt_job *j = ctx;
    uint32_t n = j->ay->n, blocks = (n + j->block - 1) / j->block;
    uint32_t b0 = (uint32_t)((uint64_t)blocks * k / parts);
    uint32_t b1 = (uint32_t)((uint64_t)blocks * (k + 1) / parts);
    bool alpha = j->src->channels == 2 || j->src->channels == 4;
    struct scratch s;
    if (b0 == b1)
        return;
    j->rc[k] = scratch_alloc(&s, j->width, j->src->channels, alpha ? j->ay->maxcount : GROUP, n,
                             j->ay->maxcount);
    if (j->rc[k] != TS_OK)
        return;
    uint32_t y1 = b1 * j->block < n ? b1 * j->block : n;
    resample(j->src, j->ax, j->ay, &s, j->dst, b0 * j->block, y1);
    scratch_free(&s);
}

static int lanczos_rect(const struct ts_image *src, double sx, double sy, double sw, double sh,
                        uint32_t w, uint32_t h, unsigned threads, struct ts_image *dst)
{
    struct axis ax, ay;
    int rc;

    rc = axis_init(&ax, src->width, sx, sw, w);
    if (rc)
        return rc;
    rc = axis_init(&ay, src->height, sy, sh, h);
    if (rc) {
        axis_free(&ax);
        return rc;
    }
    rc = ts_image_alloc(dst, w, h, src->channels);
    if (rc == TS_OK) {
        /* Premultiplied rows are converted once into the ring; plain ones are read in place,
         * and the ring holds a group of their filtered rows instead. */
        struct mt_job j = {src, &ax, &ay, dst, x_span(&ax), 0, {0}};
        j.block = block_rows(j.width, src->channels, h);
        uint32_t blocks = (h + j.block - 1) / j.block;
        unsigned parts = (uint64_t)w * h < MT_MIN_PIXELS ? 1 : threads;
        parts = parts > blocks ? blocks : parts;
        ts_parallel(parts ? parts : 1, mt_part, &j);
        for (unsigned k = 0; k < TS_PARALLEL_MAX; k++)
            rc = rc ? rc : j.rc[k];
        if (rc != TS_OK)
            ts_image_free(dst);
    }
    axis_free(&ax);
    axis_free(&ay);
    return rc;
}

int render_resize(const struct ts_image *src, uint32_t w, uint32_t h, struct ts_image *dst)
{
    if (!src)
        return TS_EINVAL;
    return render_resample_rect(src, 0.0, 0.0, src->width, src->height, w, h, dst);
}
