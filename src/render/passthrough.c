/* Native tile passthrough: stored JPEG tile bytes out, no decode or encode (edge tiles cut
 * losslessly). */
#include "render/passthrough.h"
#include "render/watermark.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

/* One stored tile, and the part of it that is image rather than padding. */
struct pt_tile {
    uint32_t level, col, row;
    uint32_t w, h;
};

int passthrough_rule_parse(const char *text, struct passthrough_rule *rule, struct ts_err *err)
{
    rule->max_bytes = 0;
    rule->out_quality = 0;
    if (!text || !*text || !strcmp(text, "quality")) {
        rule->mode = PASSTHROUGH_QUALITY;
        return TS_OK;
    }
    if (!strcmp(text, "always")) {
        rule->mode = PASSTHROUGH_ALWAYS;
        return TS_OK;
    }
    if (!strcmp(text, "ycbcr")) {
        rule->mode = PASSTHROUGH_YCBCR;
        return TS_OK;
    }
    if (!strcmp(text, "never")) {
        rule->mode = PASSTHROUGH_NEVER;
        return TS_OK;
    }
    if (text[0] >= '0' && text[0] <= '9') {
        char *end;
        errno = 0;
        unsigned long long kb = strtoull(text, &end, 10);
        size_t bytes;
        if (!errno && *end == '\0' && kb <= SIZE_MAX && ts_mul_size((size_t)kb, 1024, &bytes)) {
            rule->mode = PASSTHROUGH_MAX_BYTES;
            rule->max_bytes = bytes;
            return TS_OK;
        }
    }
    return ts_fail(err, TS_EINVAL,
                   "passthrough wants quality, always, ycbcr, never or a size in KB, got '%s'",
                   text);
}

/* The power of two a viewer uses for this level (the one info.json advertises), or 0 when the
 * level is not a plain halving of the full size, rounded either way. */
static uint32_t pt_factor(uint32_t full, uint32_t lvl)
{
    uint64_t f = 1;
    while (f < (1u << 30) && (double)f * lvl * 1.41421356 < (double)full)
        f *= 2;
    uint64_t scaled = f * lvl;
    uint64_t d = scaled > full ? scaled - full : full - scaled;
    return d < f ? (uint32_t)f : 0;
}

/* Does [start, start+len) of a full-resolution axis, shown as `out` pixels, equal exactly one
 * tile of this level's grid (the image part of it at the right or bottom edge)? */
static bool pt_axis(uint32_t full, uint32_t lvl, uint32_t tile, uint32_t start, uint32_t len,
                    uint32_t out, uint32_t *idx, uint32_t *visible)
{
    uint32_t f = pt_factor(full, lvl);
    if (f == 0 || tile == 0)
        return false;
    uint64_t step = (uint64_t)tile * f;
    if (start % step != 0)
        return false;
    uint64_t i = start / step;
    if (i * tile >= lvl)
        return false;
    uint64_t want_len = full - start < step ? full - start : step;
    uint64_t vis = lvl - i * tile < tile ? lvl - i * tile : tile;
    if (len != want_len || out != vis)
        return false;
    *idx = (uint32_t)i;
    *visible = (uint32_t)vis;
    return true;
}

static bool pt_match(const struct ts_image_info *info, const struct ts_plan *plan,
                     struct pt_tile *t)
{
    if (info->nlevels < 1 || info->nlevels > TS_MAX_LEVELS || plan->img_w != info->width ||
        plan->img_h != info->height)
        return false;
    for (uint32_t i = 0; i < info->nlevels; i++) {
        const struct ts_level *lv = &info->levels[i];
        if (lv->tile_w == 0 || lv->tile_h == 0 || lv->width == 0 || lv->height == 0)
            continue;
        if (pt_axis(info->width, lv->width, lv->tile_w, plan->rx, plan->rw, plan->out_w, &t->col,
                    &t->w) &&
            pt_axis(info->height, lv->height, lv->tile_h, plan->ry, plan->rh, plan->out_h, &t->row,
                    &t->h)) {
            t->level = i;
            return true;
        }
    }
    return false;
}

static bool pt_plan_is_plain(const struct ts_plan *plan)
{
    return plan->format == TS_FORMAT_JPG && !plan->mirror && !plan->adjust.on &&
           (plan->rotation == 0.0 || plan->rotation == 360.0) &&
           (plan->quality == TS_QUALITY_DEFAULT || plan->quality == TS_QUALITY_COLOR);
}

/* The header segments of a JPEG stream, one a call: *i starts at 2 (after SOI) and moves on;
 * false at the first scan, the end, or anything that is not a well-formed segment (*bad then
 * says which). Each segment is its marker and payload [*seg, *seg + *len). */
static bool pt_segment(const uint8_t *d, size_t n, size_t *i, uint8_t *marker, const uint8_t **seg,
                       size_t *len, bool *bad)
{
    *bad = false;
    while (*i + 4 <= n) {
        if (d[*i] != 0xFF) {
            *bad = true;
            return false;
        }
        uint8_t m = d[*i + 1];
        if (m == 0xFF) { /* fill byte */
            (*i)++;
            continue;
        }
        if (m == 0xDA || m == 0xD9)
            return false;
        size_t l = ((size_t)d[*i + 2] << 8) | d[*i + 3];
        if (l < 2 || *i + 2 + l > n) {
            *bad = true;
            return false;
        }
        *marker = m;
        *seg = d + *i + 4;
        *len = l - 2;
        *i += 2 + l;
        return true;
    }
    return false;
}

/* True when the stream carries an Adobe APP14 marker saying "no colour transform": RGB data. */
static bool pt_is_rgb(const uint8_t *d, size_t n)
{
    size_t i = 2, len;
    uint8_t m;
    const uint8_t *s;
    bool bad;
    while (pt_segment(d, n, &i, &m, &s, &len, &bad))
        if (m == 0xEE && len >= 12 && !memcmp(s, "Adobe", 5))
            return s[11] == 0;
    return false;
}

/* ITU T.81 Annex K.1, natural order: the luminance table IJG scales for every quality. */
static const uint8_t pt_std_luma[64] = {
    16, 11, 10, 16, 24,  40,  51,  61,  12, 12, 14, 19, 26,  58,  60,  55,
    14, 13, 16, 24, 40,  57,  69,  56,  14, 17, 22, 29, 51,  87,  80,  62,
    18, 22, 37, 56, 68,  109, 103, 77,  24, 35, 55, 64, 81,  104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99};

/* Where the k-th value of a DQT segment (zigzag order) sits in the 8x8 block. */
static const uint8_t pt_zigzag[64] = {
    0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,  12, 19, 26, 33, 40, 48,
    41, 34, 27, 20, 13, 6,  7,  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23,
    30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};

/* The quality whose IJG table (jpeg_set_quality's scaling, baseline-clamped) is nearest by the
 * sum of absolute differences. Exact for IJG-family encoders (libjpeg, libjpeg-turbo, vips,
 * libtiff, ImageMagick); for other tables it is the IJG quality of about the same coarseness,
 * which is what the rule compares with the output quality anyway. */
/* Sum of absolute differences between a table and quality q's IJG table, given up once it
 * passes limit (the best so far): most candidates are out after a few coefficients. */
static long pt_table_distance(const uint16_t table[64], int q, long limit)
{
    long scale = q < 50 ? 5000 / q : 200 - 2 * q, sum = 0;
    for (int i = 0; i < 64 && sum <= limit; i++) {
        long t = ((long)pt_std_luma[i] * scale + 50) / 100;
        t = t < 1 ? 1 : t > 255 ? 255 : t;
        sum += labs(t - (long)table[i]);
    }
    return sum;
}

static int pt_nearest_quality(const uint16_t table[64])
{
    /* The search starts at the quality the tables' sums suggest and works outwards, so the best
     * match is usually met first and the rest give up early: the whole search over 100
     * qualities took 10 us a tile, ten times the passthrough itself. */
    long sum_t = 0, sum_s = 0;
    for (int i = 0; i < 64; i++) {
        sum_t += table[i];
        sum_s += pt_std_luma[i];
    }
    long scale = sum_t * 100 / sum_s;
    int guess = scale <= 0 ? 100 : scale <= 100 ? (int)((200 - scale) / 2) : (int)(5000 / scale);
    guess = guess < 1 ? 1 : guess > 100 ? 100 : guess;
    int best_q = guess;
    long best = pt_table_distance(table, guess, LONG_MAX);
    for (int d = 1; d < 100 && best > 0; d++) {
        for (int q = guess + d; q >= guess - d; q -= 2 * d) {
            if (q < 1 || q > 100)
                continue;
            long sum = pt_table_distance(table, q, best);
            /* Ties go to the higher quality: at the top end several qualities share a table. */
            if (sum < best || (sum == best && q > best_q)) {
                best = sum;
                best_q = q;
            }
        }
    }
    return best_q;
}

int passthrough_jpeg_quality(const uint8_t *d, size_t n)
{
    uint16_t tables[4][64];
    bool have[4] = {false, false, false, false};
    int luma = -1; /* the table of the first frame component, once the SOF is seen */

    if (!d || n < 4 || d[0] != 0xFF || d[1] != 0xD8)
        return 0;
    size_t i = 2, len;
    uint8_t m;
    const uint8_t *s;
    bool bad;
    while (pt_segment(d, n, &i, &m, &s, &len, &bad)) {
        const uint8_t *end = s + len;
        if (m == 0xDB) {
            /* One segment may carry several tables, each Pq/Tq then 64 or 128 bytes. */
            while (s < end) {
                unsigned pq = s[0] >> 4, tq = s[0] & 15;
                size_t need = pq ? 129 : 65;
                if (tq > 3 || pq > 1 || (size_t)(end - s) < need)
                    return 0;
                for (int k = 0; k < 64; k++)
                    tables[tq][pt_zigzag[k]] =
                        pq ? (uint16_t)((s[1 + 2 * k] << 8) | s[2 + 2 * k]) : s[1 + k];
                have[tq] = true;
                s += need;
            }
        } else if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            /* SOFn: precision, height, width, component count, then id/sampling/Tq each. */
            if (len < 9)
                return 0;
            luma = s[8] & 3;
        }
    }
    if (bad)
        return 0;
    if (luma < 0)
        luma = 0;
    return have[luma] ? pt_nearest_quality(tables[luma]) : 0;
}

/* Lossless crop from the tile origin: whole MCUs are copied, and the image size written in the
 * header hides the padding, so the right and bottom edges need not fall on an MCU boundary. */
static int pt_crop(const uint8_t *jpeg, size_t len, uint32_t w, uint32_t h, struct ts_buf *out,
                   struct ts_err *err)
{
    tjhandle tj = tjInitTransform();
    tjtransform xf;
    unsigned char *dst = NULL;
    unsigned long dlen = 0;
    int jw = 0, jh = 0, sub = 0, cs = 0, rc = TS_OK;

    if (!tj)
        return ts_fail(err, TS_ENOMEM, "passthrough: cannot start the JPEG transformer");
    if (tjDecompressHeader3(tj, jpeg, (unsigned long)len, &jw, &jh, &sub, &cs) != 0) {
        rc = ts_fail(err, TS_ECODEC, "passthrough: stored tile header: %s", tjGetErrorStr2(tj));
        goto done;
    }
    if ((uint32_t)jw < w || (uint32_t)jh < h) {
        rc = ts_fail(err, TS_ECODEC, "passthrough: stored tile is %dx%d, need %ux%u", jw, jh, w, h);
        goto done;
    }
    memset(&xf, 0, sizeof xf);
    xf.r.w = (int)w;
    xf.r.h = (int)h;
    xf.op = TJXOP_NONE;
    xf.options = TJXOPT_CROP;
    if (tjTransform(tj, jpeg, (unsigned long)len, 1, &dst, &dlen, &xf, 0) != 0) {
        rc = ts_fail(err, TS_ECODEC, "passthrough: cannot crop tile: %s", tjGetErrorStr2(tj));
        goto done;
    }
    if (ts_buf_append(out, dst, dlen) != TS_OK)
        rc = ts_fail(err, TS_ENOMEM, "passthrough: out of memory for a cropped tile");
done:
    tjFree(dst);
    tjDestroy(tj);
    return rc;
}

int passthrough_try(struct ts_reader *reader, const struct ts_plan *plan,
                    const struct passthrough_rule *rule, struct ts_buf *out, struct ts_err *err)
{
    static const struct passthrough_rule always = {PASSTHROUGH_ALWAYS, 0, 0};
    struct pt_tile t;
    uint32_t cw = 0, ch = 0;
    int rc;

    if (!rule)
        rule = &always;
    if (!reader || !plan || !out || rule->mode == PASSTHROUGH_NEVER || !reader->ops ||
        !reader->ops->raw_tile || !pt_plan_is_plain(plan) || !pt_match(&reader->info, plan, &t))
        return TS_DECLINED;
    /* Stored bytes carry no watermark: a tile whose draw gives it one must be rendered. */
    if (plan->watermark &&
        render_watermark_marks(plan->watermark, plan->watermark_seed, plan->out_w, plan->out_h,
                               render_watermark_block(plan->watermark, &reader->info)))
        return TS_DECLINED;
    size_t mark = out->len;
    rc = reader->ops->raw_tile(reader, t.level, t.col, t.row, out, &cw, &ch, err);
    if (rc != TS_OK) {
        out->len = mark;
        return rc;
    }
    /* RGB-coded tiles (libvips writes them at Q90 and above) measured 2.5 times the bytes of
     * YCbCr 4:2:0 at the same quality: the quality rule re-encodes them too, whatever
     * their tables say (bench/jpeg_tile_sizes.c, README). */
    if ((rule->mode == PASSTHROUGH_YCBCR || rule->mode == PASSTHROUGH_QUALITY) &&
        pt_is_rgb(out->data + mark, out->len - mark)) {
        out->len = mark;
        return TS_DECLINED;
    }
    if (rule->mode == PASSTHROUGH_QUALITY) {
        /* A stored tile finer than what we encode costs more bytes than it buys: a re-encode at
         * the output quality is the answer the client asked the server's settings for. A tile
         * whose quality cannot be told goes out as stored, as before this rule. */
        int outq = rule->out_quality > 0 ? rule->out_quality : 85;
        int q = passthrough_jpeg_quality(out->data + mark, out->len - mark);
        if (q > outq + PASSTHROUGH_QUALITY_MARGIN) {
            out->len = mark;
            return TS_DECLINED;
        }
    }
    if (cw != t.w || ch != t.h) {
        struct ts_buf cut = {0};
        rc = pt_crop(out->data + mark, out->len - mark, t.w, t.h, &cut, err);
        out->len = mark;
        if (rc == TS_OK && ts_buf_append(out, cut.data, cut.len) != TS_OK)
            rc = ts_fail(err, TS_ENOMEM, "passthrough: out of memory for a cropped tile");
        ts_buf_free(&cut);
        if (rc != TS_OK) {
            out->len = mark;
            return rc;
        }
    }
    if (rule->mode == PASSTHROUGH_MAX_BYTES && out->len - mark > rule->max_bytes) {
        out->len = mark;
        return TS_DECLINED;
    }
    return TS_OK;
}
