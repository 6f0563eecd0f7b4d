/* TIFF output: libtiff writing a striped, deflate- (or LZW-, or un-) compressed file into memory
 * via client procs. */
#include "encode/encode.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <tiffio.h>

/* A seekable in-memory file: libtiff rewrites the header's directory offset after the strips. */
struct tiff_mem {
    struct ts_buf buf;
    size_t pos;
    char reason[160];
};

static tmsize_t tiff_mem_read(thandle_t h, void *data, tmsize_t n)
{
    struct tiff_mem *m = h;
    if (n < 0)
        return -1;
    size_t avail = m->pos < m->buf.len ? m->buf.len - m->pos : 0;
    size_t k = (size_t)n < avail ? (size_t)n : avail;
    if (k)
        memcpy(data, m->buf.data + m->pos, k);
    m->pos += k;
    return (tmsize_t)k;
}

static tmsize_t tiff_mem_write(thandle_t h, void *data, tmsize_t n)
{
    struct tiff_mem *m = h;
    size_t end;
    if (n < 0 || !ts_add_size(m->pos, (size_t)n, &end))
        return -1;
    if (end > m->buf.len) {
        if (ts_buf_reserve(&m->buf, end - m->buf.len))
            return -1;
        /* A seek past the end leaves a hole that must read back as zeros. */
        if (m->pos > m->buf.len)
            memset(m->buf.data + m->buf.len, 0, m->pos - m->buf.len);
        m->buf.len = end;
    }
    if (n)
        memcpy(m->buf.data + m->pos, data, (size_t)n);
    m->pos = end;
    return n;
}

static toff_t tiff_mem_seek(thandle_t h, toff_t off, int whence)
{
    struct tiff_mem *m = h;
    uint64_t base;
    switch (whence) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = m->pos; break;
    case SEEK_END: base = m->buf.len; break;
    default: return (toff_t)-1;
    }
    /* Relative seeks arrive as two's-complement offsets in an unsigned type. */
    uint64_t target;
    if (whence != SEEK_SET && (int64_t)off < 0) {
        uint64_t back = (uint64_t)0 - off;
        if (back > base)
            return (toff_t)-1;
        target = base - back;
    } else {
        if (off > UINT64_MAX - base)
            return (toff_t)-1;
        target = base + off;
    }
    if (target > SIZE_MAX)
        return (toff_t)-1;
    m->pos = (size_t)target;
    return target;
}

static int tiff_mem_close(thandle_t h)
{
    (void)h;
    return 0;
}

static toff_t tiff_mem_size(thandle_t h)
{
    struct tiff_mem *m = h;
    return m->buf.len;
}

static int tiff_mem_map(thandle_t h, void **base, toff_t *size)
{
    (void)h;
    (void)base;
    (void)size;
    return 0;
}

static void tiff_mem_unmap(thandle_t h, void *base, toff_t size)
{
    (void)h;
    (void)base;
    (void)size;
}

/* Keeps the first error as the reason; libtiff must never print on a server. */
static int tiff_on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif;
    struct tiff_mem *m = user;
    if (m->reason[0] == '\0') {
        char msg[128];
        vsnprintf(msg, sizeof msg, fmt, ap);
        snprintf(m->reason, sizeof m->reason, "%s: %s", module ? module : "libtiff", msg);
    }
    return 1;
}

static int tiff_on_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif;
    (void)user;
    (void)module;
    (void)fmt;
    (void)ap;
    return 1;
}

static bool tiff_set_compression(TIFF *tif, enum encode_tiff_compression compression, int level)
{
    switch (compression) {
    case ENCODE_TIFF_NONE: return TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_NONE) != 0;
    case ENCODE_TIFF_LZW:
        return TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_LZW) &&
               TIFFSetField(tif, TIFFTAG_PREDICTOR, PREDICTOR_HORIZONTAL);
    default:
        if (!TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE) ||
            !TIFFSetField(tif, TIFFTAG_PREDICTOR, PREDICTOR_HORIZONTAL))
            return false;
        /* The zlib level must follow the compression tag: the codec owns the pseudo-tag. */
        return level < 1 || level > 9 || TIFFSetField(tif, TIFFTAG_ZIPQUALITY, level);
    }
}

static bool tiff_set_tags(TIFF *tif, const struct ts_image *img,
                          enum encode_tiff_compression compression, int level)
{
    uint32_t ch = img->channels;
    bool alpha = (ch == 2 || ch == 4);
    /* About 64 KiB of raw pixels per strip: small enough to stream, big enough to compress. */
    uint32_t rows = (uint32_t)(65536 / ((size_t)img->width * ch));
    if (rows < 1)
        rows = 1;
    if (rows > img->height)
        rows = img->height;
    int ok = TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, img->width) &&
             TIFFSetField(tif, TIFFTAG_IMAGELENGTH, img->height) &&
             TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 8) &&
             TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, ch) &&
             TIFFSetField(tif, TIFFTAG_PHOTOMETRIC,
                          ch >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK) &&
             TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG) &&
             TIFFSetField(tif, TIFFTAG_ORIENTATION, ORIENTATION_TOPLEFT) &&
             tiff_set_compression(tif, compression, level) &&
             TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, rows);
    if (ok && alpha) {
        uint16_t extra = EXTRASAMPLE_UNASSALPHA;
        ok = TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, 1, &extra);
    }
    return ok != 0;
}

static int tiff_write_pixels(TIFF *tif, const struct ts_image *img, struct ts_err *err,
                             struct tiff_mem *m)
{
    size_t row_bytes = (size_t)img->width * img->channels;
    /* libtiff's predictor may difference the caller's row in place, so hand it a copy. */
    struct ts_buf row = {0};
    if (ts_buf_reserve(&row, row_bytes))
        return ts_fail(err, TS_ENOMEM, "tiff: no memory for a %zu-byte row", row_bytes);
    int rc = TS_OK;
    for (uint32_t y = 0; y < img->height; y++) {
        memcpy(row.data, ts_image_row(img, y), row_bytes);
        if (TIFFWriteScanline(tif, row.data, y, 0) != 1) {
            rc = ts_fail(err, TS_ECODEC, "tiff: writing row %u failed: %s", y,
                         m->reason[0] ? m->reason : "unknown error");
            break;
        }
    }
    ts_buf_free(&row);
    return rc;
}

int encode_tiff(const struct ts_image *img, struct ts_buf *out, struct ts_err *err)
{
    return encode_tiff_with(img, ENCODE_TIFF_DEFLATE, 0, out, err);
}

int encode_tiff_with(const struct ts_image *img, enum encode_tiff_compression compression,
                     int level, struct ts_buf *out, struct ts_err *err)
{
    if (!img || !img->data || img->channels < 1 || img->channels > 4 || img->width == 0 ||
        img->height == 0)
        return ts_fail(err, TS_EINVAL, "tiff: bad image (%u channels)", img ? img->channels : 0);
    size_t raw;
    if (!ts_mul3_size(img->width, img->height, img->channels, &raw))
        return ts_fail(err, TS_ETOOLARGE, "tiff: %ux%u image is too large", img->width,
                       img->height);
    struct tiff_mem m = {0};
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (!opts)
        return ts_fail(err, TS_ENOMEM, "tiff: no memory for open options");
    TIFFOpenOptionsSetErrorHandlerExtR(opts, tiff_on_error, &m);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, tiff_on_warning, &m);
    /* Classic TIFF offsets are 32-bit; even incompressible data must fit, else go BigTIFF. */
    const char *mode = raw > 0xF0000000u ? "w8m" : "wm";
    TIFF *tif =
        TIFFClientOpenExt("tessera-out.tif", mode, &m, tiff_mem_read, tiff_mem_write, tiff_mem_seek,
                          tiff_mem_close, tiff_mem_size, tiff_mem_map, tiff_mem_unmap, opts);
    TIFFOpenOptionsFree(opts);
    if (!tif) {
        ts_buf_free(&m.buf);
        return ts_fail(err, TS_ECODEC, "tiff: cannot start output: %s",
                       m.reason[0] ? m.reason : "unknown error");
    }
    int rc = TS_OK;
    if (!tiff_set_tags(tif, img, compression, level))
        rc = ts_fail(err, TS_ECODEC, "tiff: setting tags failed: %s",
                     m.reason[0] ? m.reason : "unknown error");
    if (rc == TS_OK)
        rc = tiff_write_pixels(tif, img, err, &m);
    if (rc == TS_OK && TIFFFlush(tif) != 1)
        rc = ts_fail(err, TS_ECODEC, "tiff: finishing the file failed: %s",
                     m.reason[0] ? m.reason : "unknown error");
    TIFFClose(tif);
    if (rc == TS_OK && ts_buf_append(out, m.buf.data, m.buf.len))
        rc = ts_fail(err, TS_ENOMEM, "tiff: no memory for %zu output bytes", m.buf.len);
    ts_buf_free(&m.buf);
    return rc;
}
