/* GIF output: our own palette (exact when possible, median cut otherwise) written by giflib. */
#include "encode/encode.h"

#include <gif_lib.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define GIF_ALPHA_CUT 128  /* alpha below this becomes the transparent index */
#define GIF_HASH_SIZE 1024 /* 4x the palette, so open addressing stays short */
#define GIF_BINS 32768     /* 5 bits per channel for the median-cut histogram */

struct gif_palette {
    GifColorType colors[256];
    int count;
    int transparent; /* index, or -1 */
};

static void gif_rgb(const struct ts_image *img, const uint8_t *p, uint8_t rgb[3])
{
    if (img->channels >= 3) {
        memcpy(rgb, p, 3);
    } else {
        rgb[0] = rgb[1] = rgb[2] = p[0];
    }
}

static bool gif_is_clear(const struct ts_image *img, const uint8_t *p)
{
    return (img->channels == 2 || img->channels == 4) && p[img->channels - 1] < GIF_ALPHA_CUT;
}

static bool gif_any_clear(const struct ts_image *img)
{
    if (img->channels != 2 && img->channels != 4)
        return false;
    for (uint32_t y = 0; y < img->height; y++) {
        const uint8_t *row = ts_image_row(img, y);
        for (uint32_t x = 0; x < img->width; x++)
            if (gif_is_clear(img, row + (size_t)x * img->channels))
                return true;
    }
    return false;
}

/* One palette entry per distinct colour, if there are at most `limit`; false when there are more,
 * which the caller answers with median cut. */
static bool gif_exact(const struct ts_image *img, int limit, struct gif_palette *pal, uint8_t *idx)
{
    uint32_t keys[GIF_HASH_SIZE]; /* rgb + 1, 0 = empty */
    uint8_t vals[GIF_HASH_SIZE];
    memset(keys, 0, sizeof keys);
    pal->count = 0;
    for (uint32_t y = 0; y < img->height; y++) {
        const uint8_t *row = ts_image_row(img, y);
        for (uint32_t x = 0; x < img->width; x++) {
            const uint8_t *p = row + (size_t)x * img->channels;
            size_t at = (size_t)y * img->width + x;
            if (gif_is_clear(img, p))
                continue; /* filled in by the caller */
            uint8_t rgb[3];
            gif_rgb(img, p, rgb);
            uint32_t key = ((uint32_t)rgb[0] << 16 | (uint32_t)rgb[1] << 8 | rgb[2]) + 1;
            uint32_t h = (key * 2654435761u) >> 22; /* top 10 bits: GIF_HASH_SIZE slots */
            while (keys[h] != 0 && keys[h] != key)
                h = (h + 1) & (GIF_HASH_SIZE - 1);
            if (keys[h] == 0) {
                if (pal->count == limit)
                    return false;
                keys[h] = key;
                vals[h] = (uint8_t)pal->count;
                pal->colors[pal->count].Red = rgb[0];
                pal->colors[pal->count].Green = rgb[1];
                pal->colors[pal->count].Blue = rgb[2];
                pal->count++;
            }
            idx[at] = vals[h];
        }
    }
    return true;
}

/* Median cut over a 15-bit histogram: boxes are ranges of the list of occupied bins. */
struct gif_cut {
    uint32_t count[GIF_BINS];
    uint64_t sum[GIF_BINS][3];
    uint16_t bins[GIF_BINS];
    uint16_t tmp[GIF_BINS];
    uint8_t map[GIF_BINS];
};

struct gif_box {
    uint32_t lo, hi; /* [lo, hi) in cut->bins */
    uint64_t pixels;
};

static int gif_bin_value(uint16_t bin, int axis)
{
    return (bin >> (10 - 5 * axis)) & 31;
}

/* Stable counting sort of a box's bins along one axis (values 0..31); no shared state, so
 * concurrent requests can quantise at once. */
static void gif_sort_box(struct gif_cut *cut, uint32_t lo, uint32_t hi, int axis)
{
    uint32_t start[33] = {0};
    for (uint32_t i = lo; i < hi; i++)
        start[gif_bin_value(cut->bins[i], axis) + 1]++;
    for (int v = 1; v <= 32; v++)
        start[v] += start[v - 1];
    for (uint32_t i = lo; i < hi; i++)
        cut->tmp[start[gif_bin_value(cut->bins[i], axis)]++] = cut->bins[i];
    memcpy(cut->bins + lo, cut->tmp, (size_t)(hi - lo) * sizeof cut->bins[0]);
}

static int gif_longest_axis(const struct gif_cut *cut, const struct gif_box *b)
{
    int lo[3] = {31, 31, 31}, hi[3] = {0, 0, 0};
    for (uint32_t i = b->lo; i < b->hi; i++) {
        for (int k = 0; k < 3; k++) {
            int v = gif_bin_value(cut->bins[i], k);
            lo[k] = v < lo[k] ? v : lo[k];
            hi[k] = v > hi[k] ? v : hi[k];
        }
    }
    int axis = 0;
    for (int k = 1; k < 3; k++)
        if (hi[k] - lo[k] > hi[axis] - lo[axis])
            axis = k;
    return axis;
}

static bool gif_split(struct gif_cut *cut, struct gif_box *boxes, int *nbox)
{
    int best = -1;
    for (int i = 0; i < *nbox; i++)
        if (boxes[i].hi - boxes[i].lo > 1 && (best < 0 || boxes[i].pixels > boxes[best].pixels))
            best = i;
    if (best < 0)
        return false;
    struct gif_box *b = &boxes[best];
    int axis = gif_longest_axis(cut, b);
    gif_sort_box(cut, b->lo, b->hi, axis);
    uint64_t half = b->pixels / 2, acc = 0;
    uint32_t at = b->lo;
    while (at < b->hi - 1 && acc + cut->count[cut->bins[at]] <= half)
        acc += cut->count[cut->bins[at++]];
    if (at == b->lo) {
        acc += cut->count[cut->bins[at]];
        at++;
    }
    struct gif_box *nb = &boxes[(*nbox)++];
    nb->lo = at;
    nb->hi = b->hi;
    nb->pixels = b->pixels - acc;
    b->hi = at;
    b->pixels = acc;
    return true;
}

static uint16_t gif_bin_of(const uint8_t rgb[3])
{
    return (uint16_t)((rgb[0] >> 3) << 10 | (rgb[1] >> 3) << 5 | (rgb[2] >> 3));
}

static int gif_median_cut(const struct ts_image *img, int limit, struct gif_palette *pal,
                          uint8_t *idx)
{
    struct gif_cut *cut = calloc(1, sizeof *cut);
    struct gif_box *boxes = calloc(256, sizeof *boxes);
    if (!cut || !boxes) {
        free(cut);
        free(boxes);
        return TS_ENOMEM;
    }
    for (uint32_t y = 0; y < img->height; y++) {
        const uint8_t *row = ts_image_row(img, y);
        for (uint32_t x = 0; x < img->width; x++) {
            const uint8_t *p = row + (size_t)x * img->channels;
            if (gif_is_clear(img, p))
                continue;
            uint8_t rgb[3];
            gif_rgb(img, p, rgb);
            uint16_t bin = gif_bin_of(rgb);
            cut->count[bin]++;
            for (int k = 0; k < 3; k++)
                cut->sum[bin][k] += rgb[k];
        }
    }
    uint32_t nbins = 0;
    uint64_t total = 0;
    for (uint32_t i = 0; i < GIF_BINS; i++) {
        if (cut->count[i]) {
            cut->bins[nbins++] = (uint16_t)i;
            total += cut->count[i];
        }
    }
    int nbox = 1;
    boxes[0] = (struct gif_box){0, nbins, total};
    while (nbox < limit && gif_split(cut, boxes, &nbox))
        ;
    /* Each entry is its box's pixel-weighted mean of the true colours, not the bin centre. */
    for (int i = 0; i < nbox; i++) {
        uint64_t s[3] = {0, 0, 0}, n = 0;
        for (uint32_t j = boxes[i].lo; j < boxes[i].hi; j++) {
            uint16_t bin = cut->bins[j];
            n += cut->count[bin];
            for (int k = 0; k < 3; k++)
                s[k] += cut->sum[bin][k];
            cut->map[bin] = (uint8_t)i;
        }
        pal->colors[i].Red = (GifByteType)((s[0] + n / 2) / n);
        pal->colors[i].Green = (GifByteType)((s[1] + n / 2) / n);
        pal->colors[i].Blue = (GifByteType)((s[2] + n / 2) / n);
    }
    pal->count = nbox;
    for (uint32_t y = 0; y < img->height; y++) {
        const uint8_t *row = ts_image_row(img, y);
        for (uint32_t x = 0; x < img->width; x++) {
            const uint8_t *p = row + (size_t)x * img->channels;
            if (gif_is_clear(img, p))
                continue;
            uint8_t rgb[3];
            gif_rgb(img, p, rgb);
            idx[(size_t)y * img->width + x] = cut->map[gif_bin_of(rgb)];
        }
    }
    free(cut);
    free(boxes);
    return TS_OK;
}

/* Gray that uses all 256 levels but needs a slot for transparency: fold the rarest level into a
 * neighbour, so no pixel moves by more than one level (median cut's 5-bit bins would move 4). */
static void gif_gray_merge(const struct ts_image *img, struct gif_palette *pal, uint8_t *idx)
{
    uint64_t hist[256] = {0};
    for (uint32_t y = 0; y < img->height; y++) {
        const uint8_t *row = ts_image_row(img, y);
        for (uint32_t x = 0; x < img->width; x++)
            if (!gif_is_clear(img, row + (size_t)x * img->channels))
                hist[row[(size_t)x * img->channels]]++;
    }
    int rare = 0;
    for (int v = 1; v < 256; v++)
        if (hist[v] < hist[rare])
            rare = v;
    uint8_t slot[256];
    int n = 0;
    for (int v = 0; v < 256; v++) {
        if (v == rare)
            continue;
        pal->colors[n] = (GifColorType){(GifByteType)v, (GifByteType)v, (GifByteType)v};
        slot[v] = (uint8_t)n++;
    }
    slot[rare] = rare == 255 ? slot[254] : slot[rare + 1];
    pal->count = n;
    for (uint32_t y = 0; y < img->height; y++) {
        const uint8_t *row = ts_image_row(img, y);
        for (uint32_t x = 0; x < img->width; x++)
            idx[(size_t)y * img->width + x] = slot[row[(size_t)x * img->channels]];
    }
}

static int gif_quantise(const struct ts_image *img, struct gif_palette *pal, uint8_t *idx)
{
    bool clear = gif_any_clear(img);
    int limit = clear ? 255 : 256;
    pal->transparent = -1;
    if (!gif_exact(img, limit, pal, idx)) {
        if (img->channels <= 2) {
            gif_gray_merge(img, pal, idx);
        } else {
            int rc = gif_median_cut(img, limit, pal, idx);
            if (rc)
                return rc;
        }
    }
    if (clear) {
        pal->transparent = pal->count;
        pal->colors[pal->count] = (GifColorType){0, 0, 0};
        pal->count++;
        for (uint32_t y = 0; y < img->height; y++) {
            const uint8_t *row = ts_image_row(img, y);
            for (uint32_t x = 0; x < img->width; x++)
                if (gif_is_clear(img, row + (size_t)x * img->channels))
                    idx[(size_t)y * img->width + x] = (uint8_t)pal->transparent;
        }
    }
    return TS_OK;
}

struct gif_sink {
    struct ts_buf *out;
    bool failed;
};

static int gif_write(GifFileType *gif, const GifByteType *data, int len)
{
    struct gif_sink *sink = gif->UserData;
    if (len < 0 || ts_buf_append(sink->out, data, (size_t)len)) {
        sink->failed = true;
        return 0;
    }
    return len;
}

static int gif_emit(GifFileType *gif, const struct ts_image *img, const struct gif_palette *pal,
                    uint8_t *idx)
{
    /* The colour table must have a power-of-two size; at least 2 entries. */
    int bits = GifBitSize(pal->count > 1 ? pal->count : 2);
    GifColorType colors[256];
    memset(colors, 0, sizeof colors);
    memcpy(colors, pal->colors, (size_t)pal->count * sizeof colors[0]);
    ColorMapObject *map = GifMakeMapObject(1 << bits, colors);
    if (!map)
        return E_GIF_ERR_NOT_ENOUGH_MEM;
    EGifSetGifVersion(gif, pal->transparent >= 0);
    int ok = EGifPutScreenDesc(gif, (int)img->width, (int)img->height, bits, 0, map);
    GifFreeMapObject(map);
    if (ok == GIF_OK && pal->transparent >= 0) {
        GraphicsControlBlock gcb = {.DisposalMode = DISPOSAL_UNSPECIFIED,
                                    .UserInputFlag = false,
                                    .DelayTime = 0,
                                    .TransparentColor = pal->transparent};
        GifByteType ext[4];
        EGifGCBToExtension(&gcb, ext);
        ok = EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, sizeof ext, ext);
    }
    if (ok == GIF_OK)
        ok = EGifPutImageDesc(gif, 0, 0, (int)img->width, (int)img->height, false, NULL);
    for (uint32_t y = 0; ok == GIF_OK && y < img->height; y++)
        ok = EGifPutLine(gif, idx + (size_t)y * img->width, (int)img->width);
    return ok == GIF_OK ? 0 : (gif->Error ? gif->Error : E_GIF_ERR_WRITE_FAILED);
}

int encode_gif(const struct ts_image *img, struct ts_buf *out, struct ts_err *err)
{
    if (!img || !img->data || img->channels < 1 || img->channels > 4 || img->width == 0 ||
        img->height == 0)
        return ts_fail(err, TS_EINVAL, "gif: bad image (%u channels)", img ? img->channels : 0);
    if (img->width > 65535 || img->height > 65535)
        return ts_fail(err, TS_ETOOLARGE, "gif: %ux%u exceeds the format's 65535 limit", img->width,
                       img->height);
    size_t npix;
    if (!ts_mul_size(img->width, img->height, &npix))
        return ts_fail(err, TS_ETOOLARGE, "gif: %ux%u image is too large", img->width, img->height);
    uint8_t *idx = malloc(npix);
    if (!idx)
        return ts_fail(err, TS_ENOMEM, "gif: no memory for %zu palette indices", npix);
    struct gif_palette pal;
    int rc = gif_quantise(img, &pal, idx);
    if (rc) {
        free(idx);
        return ts_fail(err, rc, "gif: no memory for quantisation");
    }
    size_t start = out->len;
    struct gif_sink sink = {out, false};
    int gerr = 0;
    GifFileType *gif = EGifOpen(&sink, gif_write, &gerr);
    if (!gif) {
        free(idx);
        return ts_fail(err, TS_ECODEC, "gif: cannot start output: %s", GifErrorString(gerr));
    }
    int code = gif_emit(gif, img, &pal, idx);
    int close_err = 0;
    if (EGifCloseFile(gif, &close_err) != GIF_OK && code == 0)
        code = close_err ? close_err : E_GIF_ERR_CLOSE_FAILED;
    free(idx);
    if (code || sink.failed) {
        out->len = start;
        if (sink.failed)
            return ts_fail(err, TS_ENOMEM, "gif: no memory for output bytes");
        const char *why = GifErrorString(code);
        return ts_fail(err, TS_ECODEC, "gif: encoding failed: %s", why ? why : "unknown error");
    }
    return TS_OK;
}
