/* TIFF reader over libtiff: pyramid discovery (IFDs or SubIFDs) and region reads of only the tiles
 * needed. */
#include "image/bytes.h"
#include "image/color.h"
#include "image/reader.h"
#include "util/parallel.h"

/* jpeglib.h uses FILE without including stdio.h. */
#include <stdio.h>

#include <errno.h>
#include <jpeglib.h>
#include <math.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
#include <unistd.h>

#define TIFF_MAX_DIM (1u << 30)
#define TIFF_MAX_TILE 16384u
/* Directories walked to find a page or a pyramid: page n costs n directory reads, so the cap
 * bounds the walk while books of many thousand pages
 * stay reachable. Documented in the README. */
#define TIFF_MAX_DIRS 100000
#define TIFF_MAX_SUBIFDS 64
/* Text tags are capped: a tag is not the place for a megabyte of prose, and OBJ answers stay
 * small; XMP packets get more room. */
#define TIFF_META_MAX (4u << 20)
/* A single strip larger than this would need one huge decode for any region of it. */
#define TIFF_MAX_SCRATCH ((size_t)1 << 30)

enum tiff_alpha { ALPHA_NONE, ALPHA_UNASSOC, ALPHA_ASSOC };

struct tiff_level {
    /* Loaded by its IFD's offset: SubIFD levels have no index, and for the others it spares
     * libtiff a walk down the chain from the first IFD on every change of level. */
    bool sub;
    tdir_t dir;
    uint64_t off;
    uint32_t width, height;
    uint32_t tile_w, tile_h; /* 0 when striped */
    uint32_t rows_per_strip;
    uint16_t spp, bps, photometric, compression;
    uint16_t stored_photometric; /* as in the file: YCbCr stays YCbCr here */
    enum tiff_alpha alpha;
    bool unflagged;    /* a top-level directory not marked as a reduced image */
    uint32_t channels; /* delivered */
    size_t row_bytes;  /* one row of a tile or strip as decoded */
    uint8_t pal[256][3];
    struct ts_color_xform *xf; /* raw samples to sRGB, or NULL */
    bool xf_owned;             /* levels with the same sample layout share one */
};

/* libtiff's view of the file: our own offset over pread, so the descriptor's shared file
 * position is never used (see tiff_io_read). */
/* Small reads go through a few windows of the file: libtiff reads a directory an entry and a
 * value at a time, and for YCbCr JPEG it reads the first tile's header as well to check the
 * subsampling; both come back every time a level is loaded again. Writers put a level's
 * first tiles right after the previous directory, so one window usually holds both, and
 * eight hold the header and the directories of an eight-level pyramid: opening costs one read
 * per directory, and moving between levels later costs none. Tile data, read in larger
 * pieces, bypasses them unless a window already holds it (libtiff's look at the first tile).
 * Each window is allocated when it is first filled. */
/* The most tiles one read splits over threads; more are read the one-thread way. Reads of
 * fewer pixels than two 256-px tiles hold stay on one thread: starting another costs more
 * than half of such a decode saves. */
#define TIFF_MAX_PTILES 4096
#define TIFF_MT_MIN_PIXELS ((uint64_t)2 * 256 * 256)

#define TIFF_WIN_BYTES 16384
#define TIFF_WIN_SMALL 4096
#define TIFF_WINS 8

struct tiff_win {
    uint64_t off; /* the file bytes [off, off + len) are in buf */
    size_t len;
    uint64_t used; /* tiff_io.clock when last read from: the oldest is refilled */
    uint8_t *buf;  /* TIFF_WIN_BYTES, allocated when first filled */
};

struct tiff_io {
    struct ts_bytes *bytes; /* owned by the reader, closed after TIFFClose */
    uint64_t off;
    /* The size when the reader opened: reads stop there without asking the kernel, and the
     * reader's identity (path, mtime, size) already ties it to this size. */
    uint64_t size;
    uint64_t clock;
    struct tiff_win win[TIFF_WINS];
};

struct tiff_priv {
    TIFF *tif;
    struct tiff_io io;     /* libtiff's client data: must stay where it is while tif is open */
    int cur;               /* index into lv of the loaded directory, -1 when unknown */
    struct ts_err lib_err; /* first libtiff error since the last reset */
    uint32_t nlv;
    uint32_t page; /* 0-based page of a multi-page file; lv[0] is its full resolution */
    struct tiff_level lv[TS_MAX_LEVELS];
    uint8_t *scratch;
    size_t scratch_cap;
    /* The tile or strip of the loaded directory that scratch holds decoded, or -1: a banded
     * render asks for the same one again for every band it crosses, and a single tile may
     * be as large as 16384 x 16384. */
    int64_t held;
    struct ts_buf meta; /* text tags, "name\0value\0" pairs (info.meta points here) */
    /* The part of held that scratch holds, in tile pixels, when it is not all of it: a JPEG
     * tile decoded by tiff_jpeg_tile holds only the columns and rows some read asked for. */
    bool held_part;
    uint32_t held_x0, held_x1, held_y0, held_y1;
    /* Plain JPEG tiles are decoded straight through libjpeg (see tiff_jpeg_tile), unless the
     * environment says otherwise (tiff_jpeg_mode). */
    int jpeg_mode;
    struct tiff_jpeg *jpeg; /* made on first use */
    uint8_t *raw;           /* one tile as stored, for it */
    size_t raw_cap;
    struct tiff_part *parts; /* decoders for reads split over threads, made on first use */
    uint8_t *icc;            /* the page's profile as stored, for the reopen state */
    uint32_t icc_len;
    /* Top-level directories the level scan walked that are not flagged as reduced images
     * (the first included), or 0 when it walked none: the page count comes from them. */
    uint32_t unflagged_dirs;
};

static int tiff_on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    struct tiff_priv *p = user;
    (void)tif;
    if (p && p->lib_err.msg[0] == '\0') {
        char msg[200];
        vsnprintf(msg, sizeof msg, fmt, ap);
        ts_fail(&p->lib_err, TS_ECODEC, "libtiff %s: %s", module ? module : "", msg);
    }
    return 1; /* handled: never reach libtiff's default stderr handler */
}

static int tiff_on_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif, (void)user, (void)module, (void)fmt, (void)ap;
    return 1;
}

static int tiff_lib_fail(struct tiff_priv *p, struct ts_err *err, int status, const char *what)
{
    if (p->lib_err.msg[0])
        return ts_fail(err, status, "%s: %s", what, p->lib_err.msg);
    return ts_fail(err, status, "%s", what);
}

/* Reads [off, off + n) of the file through the windows; n <= TIFF_WIN_SMALL. Returns the
 * bytes copied (fewer at the end of the file) or -1. */
/* The window holding all of [off, off + n), or NULL; *oldest is the one to refill. */
static struct tiff_win *tiff_win_find(struct tiff_io *io, size_t n, uint64_t off,
                                      struct tiff_win **oldest)
{
    *oldest = &io->win[0];
    for (int i = 0; i < TIFF_WINS; i++) {
        struct tiff_win *c = &io->win[i];
        if (c->len > 0 && off >= c->off && off - c->off <= c->len && n <= c->len - (off - c->off))
            return c;
        if (c->used < (*oldest)->used)
            *oldest = c;
    }
    return NULL;
}

static ssize_t tiff_win_read(struct tiff_io *io, void *buf, size_t n, uint64_t off)
{
    struct tiff_win *oldest, *w;
    if (off >= io->size)
        return 0;
    w = tiff_win_find(io, n, off, &oldest);
    if (!w) {
        w = oldest;
        uint64_t left = io->size - off;
        size_t want = left < TIFF_WIN_BYTES ? (size_t)left : TIFF_WIN_BYTES;
        /* Each window on its own allocation, made when needed: a reader that reads two
         * directories costs two small allocations, not one large one (which malloc would map
         * and unmap for every reader opened). */
        if (!w->buf && !(w->buf = malloc(TIFF_WIN_BYTES))) {
            errno = ENOMEM;
            return -1;
        }
        ssize_t got = ts_bytes_read_at(io->bytes, w->buf, want, off);
        if (got < 0) {
            w->len = 0;
            return -1;
        }
        w->off = off;
        w->len = (size_t)got;
        /* A window that ends early (a file shorter than it said) may still hold part. */
        if (off - w->off >= w->len)
            return 0;
    }
    w->used = ++io->clock;
    size_t at = (size_t)(off - w->off), have = w->len - at;
    size_t take = have < n ? have : n;
    memcpy(buf, w->buf + at, take);
    return (ssize_t)take;
}

static bool tiff_is_tiff(struct tiff_io *io)
{
    uint8_t m[4];
    ssize_t n = tiff_win_read(io, m, sizeof m, 0);
    return n == 4 && ((m[0] == 'I' && m[1] == 'I' && (m[2] == 42 || m[2] == 43) && m[3] == 0) ||
                      (m[0] == 'M' && m[1] == 'M' && m[2] == 0 && (m[3] == 42 || m[3] == 43)));
}

/* ---- libtiff client procedures: reads through pread at our own offset, no mmap ---- */

static tmsize_t tiff_io_read(thandle_t h, void *buf, tmsize_t n)
{
    struct tiff_io *io = (struct tiff_io *)h;
    struct tiff_win *oldest;
    ssize_t got;
    if (n < 0)
        return -1;
    if (io->off >= io->size)
        got = 0;
    else if ((size_t)n <= TIFF_WIN_SMALL ||
             ((size_t)n <= TIFF_WIN_BYTES && tiff_win_find(io, (size_t)n, io->off, &oldest)))
        got = tiff_win_read(io, buf, (size_t)n, io->off);
    else {
        uint64_t left = io->size - io->off;
        got = ts_bytes_read_at(io->bytes, buf, left < (uint64_t)n ? (size_t)left : (size_t)n,
                               io->off);
    }
    if (got < 0)
        return -1;
    io->off += (uint64_t)got;
    return (tmsize_t)got;
}

static tmsize_t tiff_io_write(thandle_t h, void *buf, tmsize_t n)
{
    (void)h, (void)buf, (void)n;
    errno = EBADF;
    return -1; /* read-only */
}

static toff_t tiff_io_seek(thandle_t h, toff_t off, int whence)
{
    struct tiff_io *io = (struct tiff_io *)h;
    uint64_t base = 0;
    switch (whence) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = io->off; break;
    case SEEK_END: base = io->size; break;
    default: return (toff_t)-1;
    }
    /* libtiff passes signed moves as toff_t: unsigned wrap-around gives the same sum. */
    uint64_t to = base + (uint64_t)off;
    if ((whence == SEEK_SET && (int64_t)off < 0) || to > (uint64_t)INT64_MAX)
        return (toff_t)-1;
    io->off = to;
    return (toff_t)to;
}

/* The descriptor outlives TIFFClose (tiff_close closes it), and a failed open does not call
 * this at all: one owner, one close. */
static int tiff_io_close(thandle_t h)
{
    (void)h;
    return 0;
}

static toff_t tiff_io_size(thandle_t h)
{
    return (toff_t)((struct tiff_io *)h)->size;
}

/* No mapping: a file truncated while mapped raises SIGBUS, which would end the server. */
static int tiff_io_map(thandle_t h, void **base, toff_t *size)
{
    (void)h, (void)base, (void)size;
    return 0;
}

static void tiff_io_unmap(thandle_t h, void *base, toff_t size)
{
    (void)h, (void)base, (void)size;
}

static uint8_t tiff_16_to_8(uint32_t v)
{
    return (uint8_t)((v * 255u + 32767u) / 65535u);
}

static void tiff_load_palette(TIFF *tif, struct tiff_level *lv)
{
    uint16_t *r, *g, *b;
    uint32_t n = 1u << lv->bps, i;
    bool wide = false;
    memset(lv->pal, 0, sizeof lv->pal);
    if (!TIFFGetField(tif, TIFFTAG_COLORMAP, &r, &g, &b))
        return;
    /* Some old writers store 8-bit values in the 16-bit colour map. */
    for (i = 0; i < n; i++)
        if (r[i] > 255 || g[i] > 255 || b[i] > 255)
            wide = true;
    for (i = 0; i < n; i++) {
        lv->pal[i][0] = wide ? tiff_16_to_8(r[i]) : (uint8_t)r[i];
        lv->pal[i][1] = wide ? tiff_16_to_8(g[i]) : (uint8_t)g[i];
        lv->pal[i][2] = wide ? tiff_16_to_8(b[i]) : (uint8_t)b[i];
    }
}

static enum tiff_alpha tiff_alpha_kind(TIFF *tif, uint16_t spp, uint16_t base)
{
    uint16_t nextra = 0, *extra = NULL;
    if (spp <= base || !TIFFGetField(tif, TIFFTAG_EXTRASAMPLES, &nextra, &extra) || nextra == 0)
        return ALPHA_NONE;
    if (extra[0] == EXTRASAMPLE_ASSOCALPHA)
        return ALPHA_ASSOC;
    if (extra[0] == EXTRASAMPLE_UNASSALPHA)
        return ALPHA_UNASSOC;
    return ALPHA_NONE;
}

/* Reads the current directory's layout into lv, refusing what we cannot or will not decode. */
static int tiff_describe(TIFF *tif, struct tiff_level *lv, struct ts_err *err)
{
    uint32_t w = 0, h = 0;
    uint16_t planar = PLANARCONFIG_CONTIG, fmt = SAMPLEFORMAT_UINT, inkset = INKSET_CMYK;
    uint16_t base;
    size_t bits;

    if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h))
        return ts_fail(err, TS_ECODEC, "TIFF directory without image dimensions");
    if (w == 0 || h == 0 || w > TIFF_MAX_DIM || h > TIFF_MAX_DIM)
        return ts_fail(err, TS_ECODEC, "TIFF dimensions %ux%u out of range", w, h);
    lv->width = w;
    lv->height = h;
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &lv->spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &lv->bps);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &fmt);
    TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &lv->compression);
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &lv->photometric))
        lv->photometric = lv->spp >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;
    lv->stored_photometric = lv->photometric;
    if (lv->spp == 0 || lv->spp > 16)
        return ts_fail(err, TS_ECODEC, "TIFF samples per pixel %u out of range", lv->spp);
    if (lv->bps != 1 && lv->bps != 2 && lv->bps != 4 && lv->bps != 8 && lv->bps != 16)
        return ts_fail(err, TS_EUNSUPPORTED, "TIFF with %u bits per sample", lv->bps);
    if (fmt != SAMPLEFORMAT_UINT)
        return ts_fail(err, TS_EUNSUPPORTED, "TIFF sample format %u (only unsigned integers)", fmt);
    if (planar != PLANARCONFIG_CONTIG && lv->spp > 1)
        return ts_fail(err, TS_EUNSUPPORTED, "TIFF with separate colour planes");
    if (!TIFFIsCODECConfigured(lv->compression))
        return ts_fail(err, TS_EUNSUPPORTED, "TIFF compression %u not available", lv->compression);

    switch (lv->photometric) {
    case PHOTOMETRIC_MINISBLACK:
    case PHOTOMETRIC_MINISWHITE: base = 1; break;
    case PHOTOMETRIC_YCBCR:
        if (lv->compression != COMPRESSION_JPEG)
            return ts_fail(err, TS_EUNSUPPORTED, "YCbCr TIFF without JPEG compression");
        /* libjpeg converts to RGB, so the decoded data is plain RGB from here on. */
        if (!TIFFSetField(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB))
            return ts_fail(err, TS_ECODEC, "cannot set JPEG colour mode");
        lv->photometric = PHOTOMETRIC_RGB;
        base = 3;
        break;
    case PHOTOMETRIC_RGB: base = 3; break;
    case PHOTOMETRIC_PALETTE:
        if (lv->bps > 8)
            return ts_fail(err, TS_EUNSUPPORTED, "TIFF palette with %u bits", lv->bps);
        base = 1;
        tiff_load_palette(tif, lv);
        break;
    case PHOTOMETRIC_SEPARATED:
        TIFFGetFieldDefaulted(tif, TIFFTAG_INKSET, &inkset);
        if (inkset != INKSET_CMYK)
            return ts_fail(err, TS_EUNSUPPORTED, "TIFF with a non-CMYK ink set");
        base = 4;
        break;
    default:
        return ts_fail(err, TS_EUNSUPPORTED, "TIFF photometric interpretation %u", lv->photometric);
    }
    if (lv->spp < base)
        return ts_fail(err, TS_ECODEC, "TIFF has %u samples, photometric needs %u", lv->spp, base);
    /* A palette image's extra samples are rare enough to drop rather than carry. */
    lv->alpha =
        lv->photometric == PHOTOMETRIC_PALETTE ? ALPHA_NONE : tiff_alpha_kind(tif, lv->spp, base);
    if (lv->photometric == PHOTOMETRIC_PALETTE || lv->photometric == PHOTOMETRIC_SEPARATED)
        lv->channels = 3;
    else
        lv->channels = base;
    if (lv->alpha != ALPHA_NONE)
        lv->channels++;

    lv->tile_w = lv->tile_h = 0;
    if (TIFFIsTiled(tif)) {
        uint32_t tw = 0, th = 0;
        TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
        TIFFGetField(tif, TIFFTAG_TILELENGTH, &th);
        if (tw == 0 || th == 0 || tw > TIFF_MAX_TILE || th > TIFF_MAX_TILE)
            return ts_fail(err, TS_ECODEC, "TIFF tile size %ux%u out of range", tw, th);
        lv->tile_w = tw;
        lv->tile_h = th;
    } else {
        uint32_t rps = 0;
        TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rps);
        lv->rows_per_strip = (rps == 0 || rps > h) ? h : rps;
    }
    /* Decoded row size, rounded up to whole bytes as libtiff packs sub-byte samples. */
    if (!ts_mul3_size(lv->tile_w ? lv->tile_w : w, lv->spp, lv->bps, &bits))
        return ts_fail(err, TS_ECODEC, "TIFF row size overflows");
    lv->row_bytes = (bits + 7) / 8;
    return TS_OK;
}

static bool tiff_same_aspect(uint32_t w, uint32_t h, uint32_t fw, uint32_t fh)
{
    /* |h - fh*w/fw| within a pixel, in the direction where rounding error is largest. */
    int64_t d = (int64_t)h * fw - (int64_t)fh * w;
    int64_t tol = fw > fh ? fw : fh;
    return (d < 0 ? -d : d) <= tol;
}

static bool tiff_is_level(const struct tiff_level *full, const struct tiff_level *c)
{
    return c->channels == full->channels && c->width <= full->width && c->height <= full->height &&
           (c->width < full->width || c->height < full->height) &&
           tiff_same_aspect(c->width, c->height, full->width, full->height);
}

static int tiff_load_dir(struct tiff_priv *p, const struct tiff_level *lv)
{
    int ok = lv->sub ? TIFFSetSubDirectory(p->tif, lv->off) : TIFFSetDirectory(p->tif, lv->dir);
    if (!ok)
        return TS_ECODEC;
    if (lv->compression == COMPRESSION_JPEG && lv->photometric == PHOTOMETRIC_RGB) {
        uint16_t photo = 0;
        TIFFGetField(p->tif, TIFFTAG_PHOTOMETRIC, &photo);
        if (photo == PHOTOMETRIC_YCBCR &&
            !TIFFSetField(p->tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB))
            return TS_ECODEC;
    }
    return TS_OK;
}

static void tiff_add_candidate(struct tiff_priv *p, struct tiff_level *c)
{
    struct ts_err ignored;
    if (p->nlv >= TS_MAX_LEVELS || tiff_describe(p->tif, c, &ignored) != TS_OK ||
        !tiff_is_level(&p->lv[0], c))
        return;
    p->lv[p->nlv++] = *c;
}

static void tiff_find_levels(struct tiff_priv *p)
{
    uint16_t nsub = 0;
    uint64_t *subs = NULL, offs[TIFF_MAX_SUBIFDS];
    struct tiff_level c;
    uint32_t i;

    if (TIFFGetField(p->tif, TIFFTAG_SUBIFD, &nsub, &subs) && nsub > 0 && subs) {
        if (nsub > TIFF_MAX_SUBIFDS)
            nsub = TIFF_MAX_SUBIFDS;
        /* The array belongs to the current directory, which the loop below replaces. */
        memcpy(offs, subs, nsub * sizeof offs[0]);
        for (i = 0; i < nsub; i++) {
            memset(&c, 0, sizeof c);
            c.sub = true;
            c.off = offs[i];
            if (TIFFSetSubDirectory(p->tif, offs[i]))
                tiff_add_candidate(p, &c);
        }
        return;
    }
    uint32_t type = 0;
    TIFFGetField(p->tif, TIFFTAG_SUBFILETYPE, &type);
    uint32_t unflagged = p->page == 0 && !(type & FILETYPE_REDUCEDIMAGE);
    for (tdir_t d = p->lv[0].dir + 1; d < TIFF_MAX_DIRS && TIFFReadDirectory(p->tif); d++) {
        type = 0;
        TIFFGetField(p->tif, TIFFTAG_SUBFILETYPE, &type);
        /* Past the first page, only directories flagged as reduced images belong to this
         * page's pyramid; the next full-size directory is the next page. */
        if (p->page > 0 && !(type & FILETYPE_REDUCEDIMAGE))
            break;
        memset(&c, 0, sizeof c);
        c.dir = d;
        c.sub = true;
        c.off = TIFFCurrentDirOffset(p->tif);
        c.unflagged = !(type & FILETYPE_REDUCEDIMAGE);
        unflagged += c.unflagged;
        tiff_add_candidate(p, &c);
    }
    if (p->page == 0)
        p->unflagged_dirs = unflagged;
    p->lib_err.msg[0] = '\0'; /* a broken chain past the last level is not a read's error */
}

/* Moves to the directory of page `page` (0-based): pages are the top-level directories that
 * are not reduced-resolution copies of another. */
static int tiff_goto_page(struct tiff_priv *p, uint32_t page, struct ts_err *err)
{
    uint32_t seen = 0;
    for (tdir_t d = 0; d < TIFF_MAX_DIRS; d++) {
        if (d > 0 && !TIFFReadDirectory(p->tif))
            break;
        uint32_t type = 0;
        TIFFGetField(p->tif, TIFFTAG_SUBFILETYPE, &type);
        if (type & FILETYPE_REDUCEDIMAGE)
            continue;
        if (seen++ == page) {
            p->lv[0].dir = d;
            return TS_OK;
        }
    }
    return ts_fail(err, TS_ENOTFOUND, "the TIFF has no page %u", page + 1);
}

/* Whether top-level directory d was taken as one of page 0's levels: some writers leave a
 * pyramid's smaller copies unflagged, and those are not pages a manifest should list. */
static bool tiff_is_own_level(const struct tiff_priv *p, tdir_t d)
{
    for (uint32_t i = 1; i < p->nlv; i++)
        if (d > 0 && p->lv[i].dir == d)
            return true;
    return false;
}

/* How many pages the file holds, numbered as tiff_goto_page numbers them (a manifest lists
 * one canvas for each), less the unflagged directories page 0 took as its own levels (which
 * tiff_goto_page would still count). Walks the top-level directories from the first; leaves none
 * loaded that a read relies on (p->cur stays -1 until the first read selects its level). */
static uint32_t tiff_count_pages(struct tiff_priv *p)
{
    uint32_t n = 0;
    if (p->unflagged_dirs) {
        /* The level scan walked every top-level directory already: its unflagged ones, less
         * those it took as levels. */
        n = p->unflagged_dirs;
        for (uint32_t i = 1; i < p->nlv; i++)
            n -= p->lv[i].dir > 0 && p->lv[i].unflagged;
        return n ? n : 1;
    }
    if (!TIFFSetDirectory(p->tif, 0))
        return 1;
    for (tdir_t d = 0; d < TIFF_MAX_DIRS; d++) {
        if (d > 0 && !TIFFReadDirectory(p->tif))
            break;
        uint32_t type = 0;
        TIFFGetField(p->tif, TIFFTAG_SUBFILETYPE, &type);
        if (!(type & FILETYPE_REDUCEDIMAGE) && !tiff_is_own_level(p, d))
            n++;
    }
    p->lib_err.msg[0] = '\0'; /* a broken chain past the last page is not this page's error */
    return n ? n : 1;
}

/* The pages op: one walk over the top-level directories, each page numbered as
 * tiff_goto_page numbers it, the directories page 0 took as its own levels left out. */
static int tiff_pages(struct ts_reader *r, struct ts_page *out, uint32_t max, uint32_t *n,
                      struct ts_err *err)
{
    struct tiff_priv *p = r->priv;
    *n = 0;
    if (p->page != 0)
        return ts_fail(err, TS_EINVAL, "pages are listed from the first page only");
    /* The walk moves libtiff's current directory: the next read selects its level again. */
    p->cur = -1;
    p->held = -1;
    if (!TIFFSetDirectory(p->tif, 0))
        return tiff_lib_fail(p, err, TS_ECODEC, "cannot read the first TIFF directory");
    uint32_t number = 0;
    for (tdir_t d = 0; d < TIFF_MAX_DIRS && *n < max; d++) {
        if (d > 0 && !TIFFReadDirectory(p->tif))
            break;
        uint32_t type = 0, w = 0, h = 0;
        TIFFGetField(p->tif, TIFFTAG_SUBFILETYPE, &type);
        if (type & FILETYPE_REDUCEDIMAGE)
            continue;
        if (!tiff_is_own_level(p, d) && TIFFGetField(p->tif, TIFFTAG_IMAGEWIDTH, &w) &&
            TIFFGetField(p->tif, TIFFTAG_IMAGELENGTH, &h) && w && h)
            out[(*n)++] = (struct ts_page){number, w, h};
        number++;
    }
    p->lib_err.msg[0] = '\0'; /* a broken chain past the last page is not a page's error */
    return TS_OK;
}

/* Largest first, and each level strictly smaller than the one before it. */
static void tiff_sort_levels(struct tiff_priv *p)
{
    uint32_t i, j, n = 1;
    for (i = 2; i < p->nlv; i++) {
        struct tiff_level t = p->lv[i];
        for (j = i; j > 1 && (uint64_t)p->lv[j - 1].width * p->lv[j - 1].height <
                                 (uint64_t)t.width * t.height;
             j--)
            p->lv[j] = p->lv[j - 1];
        p->lv[j] = t;
    }
    for (i = 1; i < p->nlv; i++) {
        const struct tiff_level *prev = &p->lv[n - 1], *c = &p->lv[i];
        if (c->width <= prev->width && c->height <= prev->height &&
            (c->width < prev->width || c->height < prev->height))
            p->lv[n++] = *c;
    }
    p->nlv = n;
}

static void tiff_jpeg_free(struct tiff_jpeg *j);

static void tiff_parts_free(struct tiff_part *parts);

static void tiff_close(struct ts_reader *r)
{
    struct tiff_priv *p;
    if (!r)
        return;
    p = r->priv;
    if (p) {
        if (p->tif)
            TIFFClose(p->tif);
        if (p->io.bytes)
            ts_bytes_unref(p->io.bytes);
        for (int i = 0; i < TIFF_WINS; i++)
            free(p->io.win[i].buf);
        for (uint32_t i = 0; i < p->nlv; i++)
            if (p->lv[i].xf_owned)
                ts_color_xform_free(p->lv[i].xf);
        tiff_jpeg_free(p->jpeg);
        tiff_parts_free(p->parts);
        free(p->icc);
        free(p->raw);
        free(p->scratch);
        ts_buf_free(&p->meta);
        free(p);
    }
    ts_bytes_unref(r->bytes); /* the reference ts_reader_open_bytes added */
    free(r);
}

static int tiff_scratch(struct tiff_priv *p, size_t need, struct ts_err *err)
{
    uint8_t *s;
    if (need > TIFF_MAX_SCRATCH)
        return ts_fail(err, TS_ETOOLARGE, "TIFF tile or strip of %zu bytes is too large", need);
    if (need <= p->scratch_cap)
        return TS_OK;
    s = realloc(p->scratch, need);
    if (!s)
        return ts_fail(err, TS_ENOMEM, "out of memory for a TIFF tile");
    p->scratch = s;
    p->scratch_cap = need;
    return TS_OK;
}

static uint32_t tiff_raw(const uint8_t *row, uint16_t bps, size_t idx)
{
    if (bps == 8)
        return row[idx];
    if (bps == 16) {
        uint16_t v;
        memcpy(&v, row + idx * 2, 2);
        return v;
    }
    size_t bit = idx * bps;
    unsigned shift = 8u - bps - (unsigned)(bit & 7);
    return (row[bit >> 3] >> shift) & ((1u << bps) - 1u);
}

static uint8_t tiff_scale(uint32_t v, uint16_t bps)
{
    if (bps == 8)
        return (uint8_t)v;
    if (bps == 16)
        return tiff_16_to_8(v);
    return (uint8_t)(v * 255u / ((1u << bps) - 1u));
}

static uint8_t tiff_unpremultiply(uint8_t v, uint8_t a)
{
    uint32_t u;
    if (a == 0)
        return 0;
    u = ((uint32_t)v * 255u + a / 2u) / a;
    return (uint8_t)(u > 255 ? 255 : u);
}

/* Converts n pixels starting at pixel sx of one decoded row into delivered 8-bit pixels. */
static void tiff_convert(const struct tiff_level *lv, const uint8_t *src, uint32_t sx, uint32_t n,
                         uint8_t *dst)
{
    const uint32_t spp = lv->spp, ch = lv->channels;
    uint32_t i, c;

    if (lv->xf) {
        ts_color_xform_pixels(lv->xf, src + (size_t)sx * spp * (lv->bps / 8u), dst, n);
        return;
    }
    if (lv->bps == 8 && spp == ch && lv->alpha != ALPHA_ASSOC &&
        (lv->photometric == PHOTOMETRIC_MINISBLACK || lv->photometric == PHOTOMETRIC_RGB)) {
        memcpy(dst, src + (size_t)sx * spp, (size_t)n * spp);
        return;
    }
    for (i = 0; i < n; i++) {
        size_t base = ((size_t)sx + i) * spp;
        uint8_t *d = dst + (size_t)i * ch;
        uint32_t ncolor = ch - (lv->alpha != ALPHA_NONE ? 1u : 0u);
        switch (lv->photometric) {
        case PHOTOMETRIC_PALETTE: {
            uint32_t idx = tiff_raw(src, lv->bps, base);
            d[0] = lv->pal[idx][0], d[1] = lv->pal[idx][1], d[2] = lv->pal[idx][2];
            break;
        }
        case PHOTOMETRIC_SEPARATED: {
            /* Naive CMYK without a profile: enough to see the picture, not to proof it. */
            uint32_t k = 255u - tiff_scale(tiff_raw(src, lv->bps, base + 3), lv->bps);
            for (c = 0; c < 3; c++) {
                uint32_t ink = 255u - tiff_scale(tiff_raw(src, lv->bps, base + c), lv->bps);
                d[c] = (uint8_t)((ink * k + 127u) / 255u);
            }
            break;
        }
        case PHOTOMETRIC_MINISWHITE:
            d[0] = (uint8_t)(255u - tiff_scale(tiff_raw(src, lv->bps, base), lv->bps));
            break;
        default:
            for (c = 0; c < ncolor; c++)
                d[c] = tiff_scale(tiff_raw(src, lv->bps, base + c), lv->bps);
        }
        if (lv->alpha != ALPHA_NONE) {
            uint32_t a_idx = lv->photometric == PHOTOMETRIC_SEPARATED ? 4 : ncolor;
            uint8_t a = tiff_scale(tiff_raw(src, lv->bps, base + a_idx), lv->bps);
            d[ncolor] = a;
            if (lv->alpha == ALPHA_ASSOC)
                for (c = 0; c < ncolor; c++)
                    d[c] = tiff_unpremultiply(d[c], a);
        }
    }
}

/* Puts tile or strip `which` of the loaded directory, decoded, in scratch (want bytes, zero
 * filled past what the file gives), unless it already is there. */
static int tiff_hold(struct tiff_priv *p, uint32_t which, size_t want, const struct ts_read_req *q,
                     struct ts_err *err)
{
    tmsize_t got;
    int rc;
    if (p->held == (int64_t)which && !p->held_part)
        return TS_OK;
    if ((rc = ts_cancel_check(q->cancel, err)) != TS_OK)
        return rc;
    p->held = -1;
    p->lib_err.msg[0] = '\0';
    if (TIFFIsTiled(p->tif))
        got = TIFFReadEncodedTile(p->tif, which, p->scratch, (tmsize_t)want);
    else
        got = TIFFReadEncodedStrip(p->tif, which, p->scratch, (tmsize_t)want);
    if (got < 0)
        return tiff_lib_fail(p, err, TS_ECODEC,
                             TIFFIsTiled(p->tif) ? "cannot decode TIFF tile"
                                                 : "cannot decode TIFF strip");
    if ((size_t)got < want)
        memset(p->scratch + got, 0, want - (size_t)got);
    if (!TIFFIsTiled(p->tif))
        ts_reader_count_rows((uint64_t)(want / p->lv[p->cur].row_bytes) * p->lv[0].height /
                             p->lv[p->cur].height);
    p->held = which;
    p->held_part = false;
    return TS_OK;
}

/* Stored JPEG tiles a standalone decoder reads the way libtiff does: 8-bit, no alpha, and a
 * colour model the JPEG stream itself can say (YCbCr, RGB with an Adobe marker, or gray). */
static bool tiff_tile_is_plain_jpeg(const struct tiff_level *lv)
{
    if (!lv->tile_w || lv->compression != COMPRESSION_JPEG || lv->bps != 8 ||
        lv->alpha != ALPHA_NONE)
        return false;
    switch (lv->stored_photometric) {
    case PHOTOMETRIC_YCBCR:
    case PHOTOMETRIC_RGB: return lv->spp == 3;
    case PHOTOMETRIC_MINISBLACK: return lv->spp == 1;
    default: return false;
    }
}

/* ---- Plain JPEG tiles through libjpeg: only the rows and columns a read needs ----
 *
 * libtiff decodes a tile whole, and for the edge tiles of a read (and a level's padded last
 * column and row) most of that is thrown away. libjpeg can crop scanlines to whole iMCU
 * columns, skip rows without their IDCT and stop after the last row wanted, skipping the
 * entropy decoding below it too.
 *
 * The pixels must be the ones libtiff delivers, so the decoder is set up as tif_jpeg.c sets
 * up its own (JPEGPreDecode, JPEGCOLORMODE_RGB): the tables stream first, then the tile's own
 * abbreviated stream; YCbCr in and RGB out for YCbCr tiles and no colour conversion at all
 * for RGB and gray ones; libjpeg's defaults for everything else (JDCT_ISLOW, fancy
 * upsampling), which libtiff leaves alone on this path. Streams libtiff would take another
 * way, warn about or refuse (sampling factors other than the tags', a size other than the
 * tile's, progressive or 12-bit data) are declined, and libtiff decodes them as before.
 *
 * Cropping alone would change pixels: fancy upsampling takes each chroma sample's
 * neighbours, and libjpeg treats the edges of a cropped scanline as the image's, so the
 * first and last column of the crop are upsampled from one side only. The crop is widened
 * by a column each way and its outermost columns are never used, unless they are the tile's
 * own edges, where libtiff's full decode does the same. Rows need nothing of the kind:
 * jpeg_skip_scanlines reads the context rows fancy upsampling needs. */

enum { TIFF_JPEG_DIRECT, TIFF_JPEG_LIBTIFF, TIFF_JPEG_STRICT };

/* TESSERA_TIFF_JPEG=libtiff decodes every tile through libtiff as before, to compare or to
 * rule the direct path out; =strict fails a read whose tile the direct path declines, so the
 * tests know that what they compared did go through it. */
static int tiff_jpeg_mode(void)
{
    const char *v = getenv("TESSERA_TIFF_JPEG");
    if (v && strcmp(v, "libtiff") == 0)
        return TIFF_JPEG_LIBTIFF;
    if (v && strcmp(v, "strict") == 0)
        return TIFF_JPEG_STRICT;
    return TIFF_JPEG_DIRECT;
}

/* One per reader, on the heap: nothing libjpeg touches lives in a frame setjmp returns to. */
struct tiff_jpeg {
    struct jpeg_decompress_struct ci;
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    bool made;         /* ci was created (and must be destroyed) */
    int level;         /* whose tables ci holds, -1 for none */
    bool tables;       /* ci holds them: read once a level, as libtiff reads them once */
    uint32_t hx0, hx1; /* the columns the last decode got exact */
};

/* One tile to decode into dst, laid out as the whole tile. */
struct tiff_jpeg_job {
    const uint8_t *tables, *data;
    size_t ntables, ndata;
    bool ycbcr;
    uint16_t sub_h, sub_v; /* YCbCrSubsampling, for YCbCr */
    uint32_t tile_w, tile_h, spp;
    uint32_t x0, x1, y0, y1; /* wanted, in tile pixels */
    uint8_t *dst;            /* tile row row0 goes here, the next stride bytes on */
    size_t stride;
    uint32_t row0;
    struct ts_cancel *cancel;
    /* Instead of dst: the wanted area as stored (4:2:0), with tile pixel (x0, y0) at luma
     * (to_x, to_y) of these planes, through one iMCU row of the tile at dst. */
    struct ts_ycc *ycc;
    uint32_t to_x, to_y;
};

static void tiff_jpeg_on_error(j_common_ptr ci)
{
    struct tiff_jpeg *j = ci->client_data;
    ci->err->format_message(ci, j->msg);
    longjmp(j->jump, 1);
}

/* libtiff's decode goes on past libjpeg's warnings (a tile that ends early is padded by
 * libjpeg's source manager in both), so this one does too, and silently. */
static void tiff_jpeg_on_message(j_common_ptr ci, int level)
{
    (void)ci, (void)level;
}

/* Whether the stream is one tif_jpeg.c would decode the plain way, through the same settings. */
static bool tiff_jpeg_plain(const struct jpeg_decompress_struct *ci, const struct tiff_jpeg_job *b)
{
    if (ci->image_width != b->tile_w || ci->image_height != b->tile_h ||
        ci->num_components != (int)b->spp || ci->data_precision != 8 || ci->progressive_mode)
        return false;
    for (int c = 0; c < ci->num_components; c++) {
        int h = ci->comp_info[c].h_samp_factor, v = ci->comp_info[c].v_samp_factor;
        bool chroma0 = c == 0 && b->ycbcr;
        if (h != (chroma0 ? b->sub_h : 1) || v != (chroma0 ? b->sub_v : 1))
            return false;
    }
    return true;
}

/* Runs inside setjmp, for a 4:2:0 tile: iMCU rows down to b->y1 as stored (no upsampling, no
 * colour conversion) into b->ycc. libjpeg can neither crop nor skip rows in this mode, so the
 * tile's whole width is transformed; what the render saves is after the decode, resampling and
 * encoding half the samples it would in RGB. Rows of a tile the read takes whole across are
 * written where they belong; the others (rows above the read, and rows of a tile cut across)
 * go through b->dst, and what the read wants of them is copied. */
static int tiff_jpeg_raw(struct tiff_jpeg *j, const struct tiff_jpeg_job *b, struct ts_err *err)
{
    struct jpeg_decompress_struct *ci = &j->ci;
    ci->raw_data_out = TRUE;
    ci->out_color_space = JCS_YCbCr;
    jpeg_start_decompress(ci);
    const uint32_t tw = b->tile_w, cw = tw / 2;
    const uint32_t cx0 = b->x0 / 2, cx1 = (b->x1 + 1) / 2, cy0 = b->y0 / 2, cy1 = (b->y1 + 1) / 2;
    const bool across = b->x0 == 0 && b->x1 == tw;
    uint8_t *spare_c = b->dst + (size_t)2 * DCTSIZE * tw;
    JSAMPROW yrows[2 * DCTSIZE], cbrows[DCTSIZE], crrows[DCTSIZE];
    JSAMPARRAY planes[3] = {yrows, cbrows, crrows};
    uint32_t since = 0;
    for (uint32_t top = 0, ctop = 0; top < b->y1; top += 2 * DCTSIZE, ctop += DCTSIZE) {
        int rc;
        if (since >= 256) {
            if ((rc = ts_cancel_check(b->cancel, err)) != TS_OK)
                return rc;
            since = 0;
        }
        for (uint32_t k = 0, y = top; k < 2 * DCTSIZE; k++, y++)
            yrows[k] = across && y >= b->y0 && y < b->y1
                           ? ts_image_row(&b->ycc->y, b->to_y + y - b->y0) + b->to_x
                           : b->dst + (size_t)k * tw;
        for (uint32_t k = 0, y = ctop; k < DCTSIZE; k++, y++) {
            bool in = across && y >= cy0 && y < cy1;
            uint32_t row = b->to_y / 2 + y - cy0;
            cbrows[k] =
                in ? ts_image_row(&b->ycc->cb, row) + b->to_x / 2 : spare_c + (size_t)k * cw;
            crrows[k] = in ? ts_image_row(&b->ycc->cr, row) + b->to_x / 2
                           : spare_c + (size_t)(DCTSIZE + k) * cw;
        }
        if (jpeg_read_raw_data(ci, planes, 2 * DCTSIZE) != 2 * DCTSIZE)
            return ts_fail(err, TS_ECODEC, "cannot decode TIFF tile: JPEG ends at row %u", top);
        since += 2 * DCTSIZE;
        if (across)
            continue;
        for (uint32_t y = top > b->y0 ? top : b->y0; y < top + 2 * DCTSIZE && y < b->y1; y++)
            memcpy(ts_image_row(&b->ycc->y, b->to_y + y - b->y0) + b->to_x, yrows[y - top] + b->x0,
                   b->x1 - b->x0);
        for (uint32_t y = ctop > cy0 ? ctop : cy0; y < ctop + DCTSIZE && y < cy1; y++) {
            uint32_t row = b->to_y / 2 + y - cy0;
            memcpy(ts_image_row(&b->ycc->cb, row) + b->to_x / 2, cbrows[y - ctop] + cx0, cx1 - cx0);
            memcpy(ts_image_row(&b->ycc->cr, row) + b->to_x / 2, crrows[y - ctop] + cx0, cx1 - cx0);
        }
    }
    return TS_OK;
}

/* Runs inside setjmp (tiff_jpeg_run). TS_DECLINED, before anything is decoded, for a stream
 * to leave to libtiff. */
static int tiff_jpeg_decode(struct tiff_jpeg *j, const struct tiff_jpeg_job *b, struct ts_err *err)
{
    struct jpeg_decompress_struct *ci = &j->ci;
    JDIMENSION xoff, cw;
    uint32_t y, imcu, end;
    int rc;

    if (!j->made) {
        j->made = true;
        jpeg_create_decompress(ci);
    }
    if (b->ntables && !j->tables) {
        jpeg_mem_src(ci, b->tables, (unsigned long)b->ntables);
        if (jpeg_read_header(ci, FALSE) != JPEG_HEADER_TABLES_ONLY)
            return TS_DECLINED;
        j->tables = true;
    }
    jpeg_mem_src(ci, b->data, (unsigned long)b->ndata);
    if (jpeg_read_header(ci, TRUE) != JPEG_HEADER_OK || !tiff_jpeg_plain(ci, b))
        return TS_DECLINED;
    ci->jpeg_color_space = b->ycbcr ? JCS_YCbCr : JCS_UNKNOWN;
    ci->out_color_space = b->ycbcr ? JCS_RGB : JCS_UNKNOWN;
    if (b->ycc)
        return tiff_jpeg_raw(j, b, err);
    jpeg_start_decompress(ci);
    /* A crop of under two chroma samples gets another upsampler (jpeg_crop_scanline), so
     * it spans two iMCUs at least. */
    imcu = (uint32_t)ci->max_h_samp_factor * DCTSIZE;
    xoff = b->x0 > 0 ? b->x0 - 1 : 0;
    end = b->x1 < b->tile_w ? b->x1 + 1 : b->tile_w;
    if (end < xoff / imcu * imcu + 2 * imcu)
        end = xoff / imcu * imcu + 2 * imcu;
    cw = (end < b->tile_w ? end : b->tile_w) - xoff;
    if (xoff > 0 || cw < ci->output_width)
        jpeg_crop_scanline(ci, &xoff, &cw);
    j->hx0 = xoff == 0 ? 0 : xoff + 1;
    j->hx1 = xoff + cw >= b->tile_w ? b->tile_w : xoff + cw - 1;
    if (b->y0 > 0 && jpeg_skip_scanlines(ci, b->y0) != b->y0)
        return ts_fail(err, TS_ECODEC, "cannot decode TIFF tile: JPEG ends before row %u", b->y0);
    /* Rows are asked for an iMCU row at a time: one call per row costs libjpeg a pass
     * through its controllers for every row. The caller checked the token before the tile;
     * a tall one is checked again every 256 rows. */
    JSAMPROW rows[4 * DCTSIZE];
    uint32_t group = (uint32_t)ci->max_v_samp_factor * DCTSIZE, since = 0;
    group = group > 4 * DCTSIZE ? 4 * DCTSIZE : group;
    for (y = b->y0; y < b->y1;) {
        uint32_t n = b->y1 - y < group ? b->y1 - y : group;
        for (uint32_t k = 0; k < n; k++)
            rows[k] = b->dst + (size_t)(y + k - b->row0) * b->stride + (size_t)xoff * b->spp;
        if (since >= 256) {
            if ((rc = ts_cancel_check(b->cancel, err)) != TS_OK)
                return rc;
            since = 0;
        }
        JDIMENSION got = jpeg_read_scanlines(ci, rows, n);
        since += got;
        if (got == 0)
            return ts_fail(err, TS_ECODEC, "cannot decode TIFF tile: JPEG ends at row %u", y);
        y += got;
    }
    return TS_OK;
}

/* The setjmp in a frame of its own, so no local of the caller's is live across longjmp. */
static int tiff_jpeg_run(struct tiff_jpeg *j, const struct tiff_jpeg_job *b, struct ts_err *err)
{
    if (setjmp(j->jump))
        return TS_ECODEC;
    return tiff_jpeg_decode(j, b, err);
}

static void tiff_jpeg_drop(struct tiff_jpeg *j)
{
    if (j->made)
        jpeg_destroy_decompress(&j->ci);
    j->made = j->tables = false;
}

static void tiff_jpeg_free(struct tiff_jpeg *j)
{
    if (j)
        tiff_jpeg_drop(j);
    free(j);
}

/* What every tile of the loaded level shares: its size, samples, colour space and the tables
 * its abbreviated streams refer to. */
static struct tiff_jpeg_job tiff_jpeg_level_job(struct tiff_priv *p, const struct tiff_level *lv)
{
    struct tiff_jpeg_job b = {.tile_w = lv->tile_w, .tile_h = lv->tile_h, .spp = lv->spp};
    uint32_t ntables = 0;
    void *tables = NULL;
    if (TIFFGetField(p->tif, TIFFTAG_JPEGTABLES, &ntables, &tables) && tables) {
        b.tables = tables;
        b.ntables = ntables;
    }
    b.ycbcr = lv->stored_photometric == PHOTOMETRIC_YCBCR;
    if (b.ycbcr)
        TIFFGetFieldDefaulted(p->tif, TIFFTAG_YCBCRSUBSAMPLING, &b.sub_h, &b.sub_v);
    return b;
}

/* Decodes b with j, which keeps the tables of `level` between tiles: tables left from another
 * level's stream must not stand in for ones this level lacks, as they could not in libtiff,
 * which sets up its decoder afresh for every directory. */
static int tiff_jpeg_with(struct tiff_jpeg *j, int level, const struct tiff_jpeg_job *b,
                          struct ts_err *err)
{
    if (j->level != level)
        tiff_jpeg_drop(j);
    j->level = level;
    j->msg[0] = '\0';
    int rc = tiff_jpeg_run(j, b, err);
    if (j->made)
        jpeg_abort_decompress(&j->ci);
    if (rc == TS_ECODEC && j->msg[0]) {
        /* Made afresh after an error, which may have come from inside its creation. */
        tiff_jpeg_drop(j);
        return ts_fail(err, TS_ECODEC, "cannot decode TIFF tile: libjpeg: %s", j->msg);
    }
    return rc;
}

static struct tiff_jpeg *tiff_jpeg_new(void)
{
    struct tiff_jpeg *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->ci.err = jpeg_std_error(&j->mgr);
    j->mgr.error_exit = tiff_jpeg_on_error;
    j->mgr.emit_message = tiff_jpeg_on_message;
    j->ci.client_data = j;
    j->level = -1;
    return j;
}

/* Decodes columns [x0, x1) and rows [y0, y1) (tile pixels) of tile `which` of the selected
 * level into scratch, laid out as the whole tile, and records them as held; or, with `to`,
 * rows y0.. at to (to_stride apart, tile column 0 first), holding nothing. TS_DECLINED for
 * a tile to leave to libtiff (see above). */
static int tiff_jpeg_tile(struct tiff_priv *p, const struct tiff_level *lv, uint32_t which,
                          uint32_t x0, uint32_t x1, uint32_t y0, uint32_t y1,
                          const struct ts_read_req *q, uint8_t *to, size_t to_stride,
                          struct ts_err *err)
{
    struct tiff_jpeg *j = p->jpeg;
    uint64_t size;
    tmsize_t got;
    int rc;

    if ((rc = ts_cancel_check(q->cancel, err)) != TS_OK)
        return rc;
    size = TIFFGetStrileByteCount(p->tif, which);
    if (size < 4 || size > TIFF_MAX_SCRATCH)
        return TS_DECLINED;
    if (size > p->raw_cap) {
        uint8_t *raw = realloc(p->raw, (size_t)size);
        if (!raw)
            return ts_fail(err, TS_ENOMEM, "out of memory for a TIFF tile");
        p->raw = raw;
        p->raw_cap = (size_t)size;
    }
    if (!j && !(j = p->jpeg = tiff_jpeg_new()))
        return ts_fail(err, TS_ENOMEM, "out of memory for a JPEG decoder");
    p->lib_err.msg[0] = '\0';
    got = TIFFReadRawTile(p->tif, which, p->raw, (tmsize_t)size);
    if (got < 4)
        return TS_DECLINED;
    struct tiff_jpeg_job b = tiff_jpeg_level_job(p, lv);
    b.data = p->raw;
    b.ndata = (size_t)got;
    b.x0 = x0, b.x1 = x1, b.y0 = y0, b.y1 = y1;
    b.dst = to ? to : p->scratch;
    b.stride = to ? to_stride : lv->row_bytes;
    b.row0 = to ? y0 : 0;
    b.cancel = q->cancel;
    p->held = -1;
    rc = tiff_jpeg_with(j, p->cur, &b, err);
    if (rc != TS_OK || to)
        return rc; /* decoded straight into the read's image: the scratch holds nothing */
    p->held = which;
    p->held_x0 = j->hx0, p->held_x1 = j->hx1, p->held_y0 = y0, p->held_y1 = y1;
    p->held_part = !(j->hx0 == 0 && j->hx1 == lv->tile_w && y0 == 0 && y1 == lv->tile_h);
    return TS_OK;
}

/* Whether libjpeg can write a tile's rows straight into the read's image: all of the tile's
 * columns are wanted (libjpeg writes whole iMCU columns, past a partial tile's edge), and the
 * delivered samples are the stored ones (tiff_convert would only copy them). */
static bool tiff_tile_straight(const struct tiff_level *lv, const struct ts_read_req *q,
                               uint32_t ox, uint32_t x0, uint32_t x1)
{
    return !q->more && x0 == ox && x1 == ox + lv->tile_w && !lv->xf && lv->bps == 8 &&
           lv->spp == lv->channels && lv->alpha != ALPHA_ASSOC &&
           (lv->photometric == PHOTOMETRIC_MINISBLACK || lv->photometric == PHOTOMETRIC_RGB);
}

/* ---- tiles decoded on several threads ---- */

/* One thread's decoder and buffers, kept by the reader between reads. */
struct tiff_part {
    struct tiff_jpeg *j;
    uint8_t *raw, *tile;
    size_t raw_cap, tile_cap;
};

/* One tile of a read: where its bytes are and which of its pixels the read wants. */
struct tiff_ptile {
    uint64_t off, size;
    uint32_t ox, oy, x0, x1, y0, y1; /* tile origin; wanted area, in level pixels */
};

struct tiff_pread {
    const struct tiff_priv *p;
    const struct tiff_level *lv;
    const struct ts_read_req *q;
    struct ts_image *out;
    struct ts_ycc *ycc; /* instead of out: the tiles as stored (tiff_jpeg_raw) */
    const struct tiff_ptile *tiles;
    uint32_t ntiles;
    struct tiff_jpeg_job level; /* what the level's tiles share (tiff_jpeg_level_job) */
    struct tiff_part *parts;
    int rc[TS_PARALLEL_MAX];
    struct ts_err err[TS_PARALLEL_MAX];
};

/* Tiles k, k + parts, ... of the read, each decoded whole-tile-shaped into the part's own
 * buffer and converted into out, where no two tiles share a pixel. */
static void tiff_pread_part(void *ctx, unsigned k, unsigned parts)
{
    struct tiff_pread *r = ctx;
    struct tiff_part *pt = &r->parts[k];
    const struct tiff_level *lv = r->lv;
    for (uint32_t i = k; i < r->ntiles && r->rc[k] == TS_OK; i += parts) {
        const struct tiff_ptile *t = &r->tiles[i];
        struct tiff_jpeg_job b = r->level;
        if ((r->rc[k] = ts_cancel_check(r->q->cancel, &r->err[k])) != TS_OK)
            return;
        if (t->size > pt->raw_cap) {
            uint8_t *raw = realloc(pt->raw, (size_t)t->size);
            if (!raw) {
                r->rc[k] = ts_fail(&r->err[k], TS_ENOMEM, "out of memory for a TIFF tile");
                return;
            }
            pt->raw = raw;
            pt->raw_cap = (size_t)t->size;
        }
        ssize_t got = ts_bytes_read_at(r->p->io.bytes, pt->raw, (size_t)t->size, t->off);
        if (got < 4) {
            r->rc[k] = got < 0 ? ts_fail(&r->err[k], TS_EIO, "cannot read a TIFF tile: %s",
                                         strerror(errno))
                               : TS_DECLINED;
            return;
        }
        b.data = pt->raw, b.ndata = (size_t)got;
        b.x0 = t->x0 - t->ox, b.x1 = t->x1 - t->ox, b.y0 = t->y0 - t->oy, b.y1 = t->y1 - t->oy;
        b.cancel = r->q->cancel;
        if (r->ycc) {
            b.dst = pt->tile, b.ycc = r->ycc;
            b.to_x = t->x0 - r->q->x, b.to_y = t->y0 - r->q->y;
            if ((r->rc[k] = tiff_jpeg_with(pt->j, r->p->cur, &b, &r->err[k])) != TS_OK)
                return;
            continue;
        }
        bool straight = tiff_tile_straight(lv, r->q, t->ox, t->x0, t->x1);
        b.dst = straight ? ts_image_row(r->out, t->y0 - r->q->y) +
                               (size_t)(t->ox - r->q->x) * r->out->channels
                         : pt->tile;
        b.stride = straight ? (size_t)r->out->width * r->out->channels : lv->row_bytes;
        b.row0 = straight ? b.y0 : 0;
        int rc = tiff_jpeg_with(pt->j, r->p->cur, &b, &r->err[k]);
        if (rc != TS_OK) {
            r->rc[k] = rc;
            return;
        }
        for (uint32_t y = t->y0; y < t->y1 && !straight; y++)
            tiff_convert(
                lv, pt->tile + (size_t)(y - t->oy) * lv->row_bytes, t->x0 - t->ox, t->x1 - t->x0,
                ts_image_row(r->out, y - r->q->y) + (size_t)(t->x0 - r->q->x) * lv->channels);
    }
}

/* The parts' buffers for `parts` threads: made on first use, kept with the reader. */
static int tiff_parts_ready(struct tiff_priv *p, unsigned parts, size_t tile_bytes,
                            struct ts_err *err)
{
    if (!p->parts && !(p->parts = calloc(TS_PARALLEL_MAX, sizeof *p->parts)))
        return ts_fail(err, TS_ENOMEM, "out of memory for TIFF decoders");
    for (unsigned k = 0; k < parts; k++) {
        struct tiff_part *pt = &p->parts[k];
        if (!pt->j && !(pt->j = tiff_jpeg_new()))
            return ts_fail(err, TS_ENOMEM, "out of memory for a JPEG decoder");
        if (pt->tile_cap < tile_bytes) {
            uint8_t *t = realloc(pt->tile, tile_bytes);
            if (!t)
                return ts_fail(err, TS_ENOMEM, "out of memory for a TIFF tile");
            pt->tile = t;
            pt->tile_cap = tile_bytes;
        }
    }
    return TS_OK;
}

static void tiff_parts_free(struct tiff_part *parts)
{
    if (!parts)
        return;
    for (unsigned k = 0; k < TS_PARALLEL_MAX; k++) {
        tiff_jpeg_free(parts[k].j);
        free(parts[k].raw);
        free(parts[k].tile);
    }
    free(parts);
}

/* How many threads a read of plain JPEG tiles is split over: q->threads, at most one a tile,
 * or 1 when the read is not worth splitting (starting a thread costs more than half of a small
 * decode saves) or is a band (whose last tile the one-thread way keeps for the next). */
static unsigned tiff_read_parts(const struct tiff_level *lv, const struct ts_read_req *q)
{
    uint64_t n = (uint64_t)((q->x + q->w - 1) / lv->tile_w - q->x / lv->tile_w + 1) *
                 ((q->y + q->h - 1) / lv->tile_h - q->y / lv->tile_h + 1);
    unsigned parts = q->threads > TS_PARALLEL_MAX ? TS_PARALLEL_MAX : q->threads;
    if (parts < 2 || n < 2 || q->more || (uint64_t)q->w * q->h < TIFF_MT_MIN_PIXELS)
        return 1;
    return n < parts ? (unsigned)n : parts;
}

/* Reads plain JPEG tiles on `parts` threads (1: the calling one), each with a decoder and
 * buffers of its own (part_bytes each), into out or, as stored, into ycc: TS_DECLINED, with
 * out or ycc untouched or partly written, when a tile is not plain (the caller then reads the
 * one-thread way or RGB, which writes every pixel again). The pixels are those of that way. */
static int tiff_read_tiles_on(struct tiff_priv *p, const struct tiff_level *lv,
                              const struct ts_read_req *q, unsigned parts, size_t part_bytes,
                              struct ts_image *out, struct ts_ycc *ycc, struct ts_err *err)
{
    uint32_t tx0 = q->x / lv->tile_w, tx1 = (q->x + q->w - 1) / lv->tile_w;
    uint32_t ty0 = q->y / lv->tile_h, ty1 = (q->y + q->h - 1) / lv->tile_h;
    uint64_t n = (uint64_t)(tx1 - tx0 + 1) * (ty1 - ty0 + 1);
    if (n > TIFF_MAX_PTILES)
        return TS_DECLINED;
    struct tiff_ptile *tiles = malloc(n * sizeof *tiles);
    if (!tiles)
        return TS_DECLINED;
    struct tiff_pread r = {.p = p,
                           .lv = lv,
                           .q = q,
                           .out = out,
                           .ycc = ycc,
                           .tiles = tiles,
                           .level = tiff_jpeg_level_job(p, lv)};
    int rc = TS_OK;
    for (uint32_t ty = ty0; ty <= ty1 && rc == TS_OK; ty++)
        for (uint32_t tx = tx0; tx <= tx1 && rc == TS_OK; tx++) {
            struct tiff_ptile *t = &tiles[r.ntiles++];
            ttile_t which = TIFFComputeTile(p->tif, tx * lv->tile_w, ty * lv->tile_h, 0, 0);
            t->off = TIFFGetStrileOffset(p->tif, which);
            t->size = TIFFGetStrileByteCount(p->tif, which);
            if (t->size < 4 || t->size > TIFF_MAX_SCRATCH || t->off > p->io.size ||
                t->size > p->io.size - t->off)
                rc = TS_DECLINED;
            t->ox = tx * lv->tile_w, t->oy = ty * lv->tile_h;
            t->x0 = q->x > t->ox ? q->x : t->ox, t->y0 = q->y > t->oy ? q->y : t->oy;
            t->x1 = q->x + q->w < t->ox + lv->tile_w ? q->x + q->w : t->ox + lv->tile_w;
            t->y1 = q->y + q->h < t->oy + lv->tile_h ? q->y + q->h : t->oy + lv->tile_h;
        }
    if (rc == TS_OK)
        rc = tiff_parts_ready(p, parts, part_bytes, err);
    if (rc == TS_OK) {
        r.parts = p->parts;
        ts_parallel(parts, tiff_pread_part, &r);
        for (unsigned k = 0; k < parts && rc == TS_OK; k++)
            if ((rc = r.rc[k]) != TS_OK && rc != TS_DECLINED)
                *err = r.err[k];
    }
    free(tiles);
    return rc;
}

static int tiff_read_tiles(struct tiff_priv *p, const struct tiff_level *lv,
                           const struct ts_read_req *q, struct ts_image *out, struct ts_err *err)
{
    const uint32_t tx_last = (q->x + q->w - 1) / lv->tile_w,
                   ty_last = (q->y + q->h - 1) / lv->tile_h;
    const bool direct = p->jpeg_mode != TIFF_JPEG_LIBTIFF && tiff_tile_is_plain_jpeg(lv) && !lv->xf;
    size_t tile_bytes;
    uint32_t tx, ty, r;
    int rc;

    if (!ts_mul_size(lv->row_bytes, lv->tile_h, &tile_bytes))
        return ts_fail(err, TS_ECODEC, "TIFF tile size overflows");
    unsigned parts = tiff_read_parts(lv, q);
    if (direct && parts > 1 &&
        (rc = tiff_read_tiles_on(p, lv, q, parts, tile_bytes, out, NULL, err)) != TS_DECLINED)
        return rc;
    if ((rc = tiff_scratch(p, tile_bytes, err)) != TS_OK)
        return rc;
    for (ty = q->y / lv->tile_h; ty <= ty_last; ty++) {
        for (tx = q->x / lv->tile_w; tx <= tx_last; tx++) {
            uint32_t ox = tx * lv->tile_w, oy = ty * lv->tile_h;
            uint32_t x0 = q->x > ox ? q->x : ox, y0 = q->y > oy ? q->y : oy;
            uint32_t x1 = q->x + q->w, y1 = q->y + q->h, dy1;
            ttile_t tile = TIFFComputeTile(p->tif, ox, oy, 0, 0);
            if (x1 - ox > lv->tile_w)
                x1 = ox + lv->tile_w;
            if (y1 - oy > lv->tile_h)
                y1 = oy + lv->tile_h;
            bool straight = false;
            rc = TS_DECLINED;
            if (p->held == (int64_t)tile &&
                (!p->held_part || (x0 - ox >= p->held_x0 && x1 - ox <= p->held_x1 &&
                                   y0 - oy >= p->held_y0 && y1 - oy <= p->held_y1)))
                rc = TS_OK;
            else if (direct) {
                /* The next band reads this tile's rows from next_y down, and the last tile
                 * is the one still held when it starts: decode on to its bottom, or every
                 * band of a tall single-column read would decode it from the top again. */
                dy1 = y1 - oy;
                if (q->more && tx == tx_last && ty == ty_last && q->next_y < oy + lv->tile_h)
                    dy1 = lv->tile_h;
                straight = tiff_tile_straight(lv, q, ox, x0, x1);
                rc = tiff_jpeg_tile(p, lv, tile, x0 - ox, x1 - ox, y0 - oy, dy1, q,
                                    straight ? ts_image_row(out, y0 - q->y) +
                                                   (size_t)(ox - q->x) * out->channels
                                             : NULL,
                                    (size_t)out->width * out->channels, err);
                if (rc == TS_OK && straight)
                    continue;
                if (rc == TS_DECLINED && p->jpeg_mode == TIFF_JPEG_STRICT)
                    return ts_fail(err, TS_ECODEC, "TIFF tile %u declined by libjpeg", tile);
            }
            if (rc == TS_DECLINED)
                rc = tiff_hold(p, tile, tile_bytes, q, err);
            if (rc != TS_OK)
                return rc;
            for (r = y0; r < y1; r++)
                tiff_convert(lv, p->scratch + (size_t)(r - oy) * lv->row_bytes, x0 - ox, x1 - x0,
                             ts_image_row(out, r - q->y) + (size_t)(x0 - q->x) * out->channels);
        }
    }
    return TS_OK;
}

static int tiff_read_strips(struct tiff_priv *p, const struct tiff_level *lv,
                            const struct ts_read_req *q, struct ts_image *out, struct ts_err *err)
{
    uint32_t rps = lv->rows_per_strip, s, r;
    size_t strip_bytes;
    int rc;

    if (!ts_mul_size(lv->row_bytes, rps, &strip_bytes))
        return ts_fail(err, TS_ECODEC, "TIFF strip size overflows");
    if ((rc = tiff_scratch(p, strip_bytes, err)) != TS_OK)
        return rc;
    for (s = q->y / rps; s <= (q->y + q->h - 1) / rps; s++) {
        uint32_t oy = s * rps;
        uint32_t y0 = q->y > oy ? q->y : oy, y1 = q->y + q->h;
        uint32_t rows = lv->height - oy < rps ? lv->height - oy : rps;
        size_t want = (size_t)rows * lv->row_bytes;
        if (y1 - oy > rows)
            y1 = oy + rows;
        if ((rc = tiff_hold(p, TIFFComputeStrip(p->tif, oy, 0), want, q, err)) != TS_OK)
            return rc;
        for (r = y0; r < y1; r++)
            tiff_convert(lv, p->scratch + (size_t)(r - oy) * lv->row_bytes, q->x, q->w,
                         ts_image_row(out, r - q->y));
    }
    return TS_OK;
}

/* Makes level the current directory (libtiff keeps one loaded at a time). */
static int tiff_select(struct tiff_priv *p, uint32_t level, struct ts_err *err)
{
    if (p->cur == (int)level)
        return TS_OK;
    p->lib_err.msg[0] = '\0';
    p->cur = -1;
    p->held = -1;
    if (tiff_load_dir(p, &p->lv[level]) != TS_OK)
        return tiff_lib_fail(p, err, TS_ECODEC, "cannot load TIFF directory");
    p->cur = (int)level;
    return TS_OK;
}

static int tiff_read(struct ts_reader *r, const struct ts_read_req *q, struct ts_image *out,
                     struct ts_err *err)
{
    struct tiff_priv *p = r->priv;
    const struct tiff_level *lv = &p->lv[q->level];
    int rc;

    out->data = NULL;
    if ((rc = tiff_select(p, q->level, err)) != TS_OK)
        return rc;
    rc = ts_image_alloc(out, q->w, q->h, lv->channels);
    if (rc != TS_OK)
        return ts_fail(err, rc, "cannot allocate %ux%u region", q->w, q->h);
    rc = lv->tile_w ? tiff_read_tiles(p, lv, q, out, err) : tiff_read_strips(p, lv, q, out, err);
    if (rc != TS_OK)
        ts_image_free(out);
    return rc;
}

/* The region as stored, for 4:2:0 JPEG tiles decoded the direct way (see tiff_jpeg_raw), split
 * over threads as an RGB read would be (tiles never share a sample of a plane: their edges are
 * multiples of 16 in luma, 8 in chroma). */
static int tiff_read_ycc(struct ts_reader *r, const struct ts_read_req *q, struct ts_ycc *out,
                         struct ts_err *err)
{
    struct tiff_priv *p = r->priv;
    const struct tiff_level *lv = &p->lv[q->level];
    if (p->jpeg_mode == TIFF_JPEG_LIBTIFF || !tiff_tile_is_plain_jpeg(lv) || lv->xf || q->more ||
        lv->stored_photometric != PHOTOMETRIC_YCBCR || lv->tile_w % 16 || lv->tile_h % 16)
        return TS_DECLINED;
    int rc = tiff_select(p, q->level, err);
    if (rc != TS_OK)
        return rc;
    struct tiff_jpeg_job level = tiff_jpeg_level_job(p, lv);
    if (!level.ycbcr || level.sub_h != 2 || level.sub_v != 2)
        return TS_DECLINED;
    if ((rc = ts_ycc_alloc(out, q->w, q->h)) != TS_OK)
        return ts_fail(err, rc, "cannot allocate %ux%u region", q->w, q->h);
    /* A part's buffer holds one iMCU row of a tile: 16 rows of luma and 8 of each chroma plane. */
    rc = tiff_read_tiles_on(p, lv, q, tiff_read_parts(lv, q), (size_t)lv->tile_w * 32, NULL, out,
                            err);
    if (rc != TS_OK)
        ts_ycc_free(out);
    return rc;
}

/* A JPEG stream without an APP14 "Adobe" marker is taken for YCbCr by every decoder, so RGB
 * tiles carry one that says "no colour transform" (transform = 0). */
static const uint8_t tiff_adobe_rgb[16] = {0xFF, 0xEE, 0x00, 0x0E, 'A',  'd',  'o',  'b',
                                           'e',  0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00};

/* Tables-only stream (SOI tables EOI) + tile stream (SOI ... EOI) -> one complete stream:
 * the tile's SOI, the tables without their SOI and EOI, then the rest of the tile. */
static int tiff_splice(const uint8_t *tables, uint32_t ntables, const uint8_t *tile, size_t ntile,
                       bool rgb, struct ts_buf *out, struct ts_err *err)
{
    size_t mark = out->len;
    int rc;
    if (ntile < 4 || tile[0] != 0xFF || tile[1] != 0xD8)
        return ts_fail(err, TS_ECODEC, "stored TIFF tile is not a JPEG stream");
    rc = ts_buf_append(out, tile, 2);
    if (!rc && rgb)
        rc = ts_buf_append(out, tiff_adobe_rgb, sizeof tiff_adobe_rgb);
    if (!rc && tables && ntables >= 4) {
        if (tables[0] != 0xFF || tables[1] != 0xD8 || tables[ntables - 2] != 0xFF ||
            tables[ntables - 1] != 0xD9) {
            out->len = mark;
            return ts_fail(err, TS_ECODEC, "TIFF JPEGTables is not a tables-only JPEG stream");
        }
        rc = ts_buf_append(out, tables + 2, ntables - 4);
    }
    if (!rc)
        rc = ts_buf_append(out, tile + 2, ntile - 2);
    if (rc) {
        out->len = mark;
        return ts_fail(err, rc, "out of memory splicing a JPEG tile");
    }
    return TS_OK;
}

static int tiff_raw_tile(struct ts_reader *r, uint32_t level, uint32_t col, uint32_t row,
                         struct ts_buf *out, uint32_t *w, uint32_t *h, struct ts_err *err)
{
    struct tiff_priv *p = r->priv;
    const struct tiff_level *lv;
    uint32_t ntables = 0;
    void *tables = NULL;
    uint64_t size;
    ttile_t tile;
    tmsize_t got;
    int rc;

    if (level >= p->nlv)
        return ts_fail(err, TS_EINVAL, "TIFF level %u of %u", level, p->nlv);
    lv = &p->lv[level];
    /* A tile whose colours need converting (an embedded non-sRGB profile) cannot go out as
     * stored: the client would see the unconverted numbers. */
    if (!tiff_tile_is_plain_jpeg(lv) || lv->xf)
        return TS_DECLINED;
    if (col >= (lv->width + lv->tile_w - 1) / lv->tile_w ||
        row >= (lv->height + lv->tile_h - 1) / lv->tile_h)
        return ts_fail(err, TS_EINVAL, "TIFF tile %u,%u outside level %u", col, row, level);
    if ((rc = tiff_select(p, level, err)) != TS_OK)
        return rc;
    tile = TIFFComputeTile(p->tif, col * lv->tile_w, row * lv->tile_h, 0, 0);
    size = TIFFGetStrileByteCount(p->tif, (uint32_t)tile);
    if (size < 4 || size > TIFF_MAX_SCRATCH)
        return ts_fail(err, TS_ECODEC, "TIFF tile %u,%u has %llu bytes", col, row,
                       (unsigned long long)size);
    if ((rc = tiff_scratch(p, (size_t)size, err)) != TS_OK)
        return rc;
    p->held = -1; /* scratch is about to hold raw bytes */
    p->lib_err.msg[0] = '\0';
    got = TIFFReadRawTile(p->tif, tile, p->scratch, (tmsize_t)size);
    if (got < 4)
        return tiff_lib_fail(p, err, TS_ECODEC, "cannot read raw TIFF tile");
    if (!TIFFGetField(p->tif, TIFFTAG_JPEGTABLES, &ntables, &tables))
        ntables = 0;
    rc = tiff_splice(tables, ntables, p->scratch, (size_t)got,
                     lv->stored_photometric == PHOTOMETRIC_RGB, out, err);
    if (rc)
        return rc;
    *w = lv->tile_w;
    *h = lv->tile_h;
    return TS_OK;
}

/* Measured with tools/mem_probe.c against libtiff 4.5: the codec states (zlib, libjpeg's
 * pools) and the directory. */
#define TIFF_COST_FIXED ((size_t)768 << 10)
/* A libjpeg decompressor's own state and tables, without its row buffers. */
#define TIFF_COST_JPEG ((size_t)64 << 10)

static int tiff_cost(struct ts_reader *r, const struct ts_read_req *q, size_t *bytes,
                     struct ts_err *err)
{
    struct tiff_priv *p = r->priv;
    const struct tiff_level *lv = &p->lv[q->level];
    uint32_t rows = lv->tile_w ? lv->tile_h : lv->rows_per_strip;
    uint64_t file = p->io.size;
    /* Tiles and strips decode whole into the scratch, which the reader keeps between reads. */
    size_t unit = ts_sat_mul(lv->row_bytes, rows);
    if (unit > TIFF_MAX_SCRATCH)
        return ts_fail(err, TS_ETOOLARGE, "TIFF tile or strip of %zu bytes is too large", unit);
    size_t total = ts_sat_add(TIFF_COST_FIXED, unit > p->scratch_cap ? unit : p->scratch_cap);
    /* libtiff reads a compressed tile or strip in whole first: no more than the file holds. */
    if (lv->compression != COMPRESSION_NONE) {
        size_t raw = ts_sat_add(ts_sat_add(unit, unit / 8), (size_t)64 << 10);
        total = ts_sat_add(total, file < raw ? (size_t)file : raw);
    }
    /* libjpeg's row buffers for a JPEG tile or strip. */
    if (lv->compression == COMPRESSION_JPEG || lv->compression == COMPRESSION_OJPEG)
        total = ts_sat_add(total, ts_sat_mul(lv->row_bytes, 16 * 3));
    /* Plain JPEG tiles have a decoder of their own as well (tiff_jpeg_tile), and their stored
     * bytes read in whole; libtiff's may still be there from a tile it was left. */
    if (p->jpeg_mode != TIFF_JPEG_LIBTIFF && tiff_tile_is_plain_jpeg(lv) && !lv->xf) {
        size_t raw = ts_sat_add(ts_sat_add(unit, unit / 8), (size_t)64 << 10);
        if (file < raw)
            raw = (size_t)file;
        total = ts_sat_add(total, ts_sat_add(TIFF_COST_JPEG, raw));
        total = ts_sat_add(total, ts_sat_mul(lv->row_bytes, 16 * 3));
    }
    *bytes = ts_sat_add(total, ts_sat_mul(ts_sat_mul(q->w, q->h), lv->channels));
    return TS_OK;
}

static int tiff_pages(struct ts_reader *r, struct ts_page *out, uint32_t max, uint32_t *n,
                      struct ts_err *err);

/* ---- the reopen state (see struct ts_reopen) ----
 * This header; each level as described up to its palette, followed by the palette for palette
 * levels only (768 bytes each level would cost every image in the info cache); the image
 * information (its meta pointer cleared); the text tags; the profile. Bytes that never leave
 * the process, so raw structs will do: the sizes in the header reject a state another build
 * made. Colour transforms are not kept; a reopen makes them again from the profile. */
struct tiff_again {
    char magic[4]; /* "TIFR" */
    uint32_t level_bytes, info_bytes, page, nlv, icc_len;
    uint64_t file_size, meta_len;
};
#define TIFF_AGAIN_LEVEL offsetof(struct tiff_level, pal)
/* A larger profile is not kept: the state lives in the info cache beside every image, and a
 * reopen without it only costs the discovery walk. */
#define TIFF_AGAIN_MAX_ICC (256u << 10)

static bool tiff_is_palette(const struct tiff_level *lv)
{
    return lv->stored_photometric == PHOTOMETRIC_PALETTE;
}

static int tiff_reopen_state(struct ts_reader *r, struct ts_buf *out)
{
    struct tiff_priv *p = r->priv;
    if (p->icc_len > TIFF_AGAIN_MAX_ICC)
        return TS_DECLINED;
    struct tiff_again h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, "TIFR", 4);
    h.level_bytes = (uint32_t)TIFF_AGAIN_LEVEL;
    h.info_bytes = (uint32_t)sizeof r->info;
    h.page = p->page;
    h.nlv = p->nlv;
    h.icc_len = p->icc_len;
    h.file_size = p->io.size;
    h.meta_len = p->meta.len;
    int rc = ts_buf_append(out, &h, sizeof h);
    for (uint32_t i = 0; i < p->nlv && rc == TS_OK; i++) {
        rc = ts_buf_append(out, &p->lv[i], TIFF_AGAIN_LEVEL);
        if (rc == TS_OK && tiff_is_palette(&p->lv[i]))
            rc = ts_buf_append(out, p->lv[i].pal, sizeof p->lv[i].pal);
    }
    struct ts_image_info info = r->info;
    info.meta = NULL;
    info.format = NULL;
    rc = rc ? rc : ts_buf_append(out, &info, sizeof info);
    if (rc == TS_OK && p->meta.len)
        rc = ts_buf_append(out, p->meta.data, p->meta.len);
    if (rc == TS_OK && p->icc_len)
        rc = ts_buf_append(out, p->icc, p->icc_len);
    return rc;
}

/* Bytes [*at, *at + n) of the state, or NULL past its end. */
static const uint8_t *tiff_again_take(const struct ts_reopen *a, size_t *at, size_t n)
{
    if (n > a->len - *at)
        return NULL;
    const uint8_t *q = (const uint8_t *)a->data + *at;
    *at += n;
    return q;
}

/* Takes levels, information, tags and profile from a reopen state that fits this file: its
 * sizes, page and file size match, and every level is a sane layout inside the file. False,
 * with p's levels and r's information untouched, when it does not. */
static bool tiff_again_load(const struct ts_reopen *a, struct ts_reader *r, struct tiff_priv *p,
                            uint32_t page)
{
    struct tiff_again h;
    struct tiff_level lv[TS_MAX_LEVELS];
    struct ts_image_info info;
    size_t at = 0;
    const uint8_t *q;

    if (!a || !a->data || a->len < sizeof h)
        return false;
    memcpy(&h, tiff_again_take(a, &at, sizeof h), sizeof h);
    if (memcmp(h.magic, "TIFR", 4) != 0 || h.level_bytes != TIFF_AGAIN_LEVEL ||
        h.info_bytes != sizeof info || h.page != page || h.file_size != p->io.size || h.nlv < 1 ||
        h.nlv > TS_MAX_LEVELS || h.icc_len > TIFF_AGAIN_MAX_ICC || h.meta_len > TIFF_META_MAX)
        return false;
    memset(lv, 0, sizeof lv);
    for (uint32_t i = 0; i < h.nlv; i++) {
        if (!(q = tiff_again_take(a, &at, TIFF_AGAIN_LEVEL)))
            return false;
        memcpy(&lv[i], q, TIFF_AGAIN_LEVEL);
        if (tiff_is_palette(&lv[i])) {
            if (!(q = tiff_again_take(a, &at, sizeof lv[i].pal)))
                return false;
            memcpy(lv[i].pal, q, sizeof lv[i].pal);
        }
        if (!lv[i].sub || lv[i].off < 8 || lv[i].off >= p->io.size || lv[i].width == 0 ||
            lv[i].height == 0 || lv[i].channels < 1 || lv[i].channels > 4 ||
            lv[i].width > lv[0].width || lv[i].height > lv[0].height)
            return false;
    }
    if (!(q = tiff_again_take(a, &at, sizeof info)))
        return false;
    memcpy(&info, q, sizeof info);
    const uint8_t *meta = tiff_again_take(a, &at, (size_t)h.meta_len);
    const uint8_t *icc = tiff_again_take(a, &at, h.icc_len);
    if (!meta || !icc || at != a->len || info.nlevels != h.nlv || info.width != lv[0].width ||
        info.height != lv[0].height || info.meta_len != h.meta_len)
        return false;
    ts_buf_init_capped(&p->meta, TIFF_META_MAX);
    if ((h.meta_len && ts_buf_append(&p->meta, meta, (size_t)h.meta_len) != TS_OK) ||
        (h.icc_len && !(p->icc = malloc(h.icc_len)))) {
        ts_buf_free(&p->meta);
        return false;
    }
    if (h.icc_len)
        memcpy(p->icc, icc, h.icc_len);
    p->icc_len = h.icc_len;
    memcpy(p->lv, lv, sizeof lv);
    p->nlv = h.nlv;
    p->page = page;
    r->info = info;
    r->info.format = "tiff";
    r->info.meta = p->meta.len ? (const char *)p->meta.data : NULL;
    return true;
}

static const struct ts_reader_ops tiff_ops = {
    "tiff",    tiff_read,  tiff_close,        tiff_raw_tile,
    tiff_cost, tiff_pages, tiff_reopen_state, tiff_read_ycc};

/* The full-resolution directory's profile, copied: the directory is left behind by the level scan.
 */
static int tiff_color_read_icc(struct tiff_priv *p, uint8_t **icc, uint32_t *len,
                               struct ts_err *err)
{
    void *data = NULL;
    uint32_t n = 0;
    *icc = NULL;
    *len = 0;
    if (!TIFFGetField(p->tif, TIFFTAG_ICCPROFILE, &n, &data) || !data || n == 0)
        return TS_OK;
    if (!(*icc = malloc(n)))
        return ts_fail(err, TS_ENOMEM, "out of memory for a TIFF ICC profile");
    memcpy(*icc, data, n);
    *len = n;
    return TS_OK;
}

/* Whether lcms2 can take this level's decoded rows as they are. */
static bool tiff_color_layout(const struct tiff_level *lv, struct ts_color_layout *lay)
{
    uint32_t base;
    memset(lay, 0, sizeof *lay);
    switch (lv->photometric) {
    case PHOTOMETRIC_MINISBLACK: lay->space = TS_COLOR_GRAY, base = 1; break;
    case PHOTOMETRIC_RGB: lay->space = TS_COLOR_RGB, base = 3; break;
    case PHOTOMETRIC_SEPARATED: lay->space = TS_COLOR_CMYK, base = 4; break;
    default: return false;
    }
    lay->alpha = lv->alpha == ALPHA_UNASSOC;
    lay->bytes = lv->bps / 8u;
    return (lv->bps == 8 || lv->bps == 16) && lv->alpha != ALPHA_ASSOC &&
           lv->spp == base + (lay->alpha ? 1u : 0u);
}

/* One profile for the whole pyramid (levels are the same picture); a broken one is ignored. */
static int tiff_color_attach(struct tiff_priv *p, const uint8_t *icc, uint32_t len,
                             struct ts_err *err)
{
    for (uint32_t i = 0; i < p->nlv; i++) {
        struct tiff_level *lv = &p->lv[i];
        struct ts_color_layout lay;
        struct ts_err ignored;
        uint32_t k;
        if (!tiff_color_layout(lv, &lay))
            continue;
        for (k = 0; k < i; k++)
            if (p->lv[k].xf && p->lv[k].photometric == lv->photometric && p->lv[k].bps == lv->bps &&
                p->lv[k].spp == lv->spp && p->lv[k].alpha == lv->alpha)
                break;
        if (k < i) {
            lv->xf = p->lv[k].xf;
            continue;
        }
        if (ts_color_xform_create(icc, len, &lay, &lv->xf, &ignored) == TS_ENOMEM)
            return ts_fail(err, TS_ENOMEM, "%s", ignored.msg);
        lv->xf_owned = lv->xf != NULL;
    }
    return TS_OK;
}

static int tiff_meta_add(struct tiff_priv *p, const char *name, const char *value, size_t len)
{
    if (!value || !len)
        return TS_OK;
    if (memchr(value, '\0', len))
        len = strlen(value);
    if (!len)
        return TS_OK;
    int rc = ts_buf_append(&p->meta, name, strlen(name) + 1);
    rc = rc ? rc : ts_buf_append(&p->meta, value, len);
    return rc ? rc : ts_buf_append(&p->meta, "", 1);
}

/* What iipsrv reads from the page's main directory for its OBJ answers: resolution, sample
 * range and text tags, named as iipsrv names them. A tag that does not fit is left out. */
static void tiff_read_tags(struct tiff_priv *p, struct ts_image_info *info)
{
    static const struct {
        uint32_t tag;
        const char *name;
    } texts[] = {
        {TIFFTAG_ARTIST, "creator"},     {TIFFTAG_COPYRIGHT, "rights"},
        {TIFFTAG_DATETIME, "date"},      {TIFFTAG_IMAGEDESCRIPTION, "description"},
        {TIFFTAG_DOCUMENTNAME, "title"}, {TIFFTAG_PAGENAME, "pagename"},
        {TIFFTAG_SOFTWARE, "software"},  {TIFFTAG_MAKE, "make"},
        {TIFFTAG_MODEL, "model"},
    };
    TIFF *tif = p->tif;
    ts_buf_init_capped(&p->meta, TIFF_META_MAX);
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        const char *v = NULL;
        if (TIFFGetField(tif, texts[i].tag, &v) && v)
            tiff_meta_add(p, texts[i].name, v, strlen(v));
    }
    uint32_t n = 0;
    const char *xmp = NULL;
    if (TIFFGetField(tif, TIFFTAG_XMLPACKET, &n, &xmp) && xmp)
        tiff_meta_add(p, "xmp", xmp, n);
    double stonits = 0;
    if (TIFFGetField(tif, TIFFTAG_STONITS, &stonits)) {
        char scale[32];
        snprintf(scale, sizeof scale, "%g", stonits);
        tiff_meta_add(p, "scale", scale, strlen(scale));
    }
    info->meta = p->meta.len ? (const char *)p->meta.data : NULL;
    info->meta_len = p->meta.len;

    float x = 0, y = 0;
    uint16_t unit = RESUNIT_INCH;
    if (TIFFGetField(tif, TIFFTAG_XRESOLUTION, &x) && TIFFGetField(tif, TIFFTAG_YRESOLUTION, &y) &&
        x > 0 && y > 0 && x < 1e9f && y < 1e9f) {
        TIFFGetFieldDefaulted(tif, TIFFTAG_RESOLUTIONUNIT, &unit);
        info->dpi_x = x;
        info->dpi_y = y;
        info->dpi_unit = unit == RESUNIT_INCH ? 1 : unit == RESUNIT_CENTIMETER ? 2 : 0;
    }

    /* Per channel where the file says so (libtiff's PERSAMPLE mode), else one value for all. */
    uint16_t spp = 1;
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    double *mins = NULL, *maxs = NULL;
    TIFFSetField(tif, TIFFTAG_PERSAMPLE, PERSAMPLE_MULTI);
    bool has_min = TIFFGetField(tif, TIFFTAG_SMINSAMPLEVALUE, &mins) && mins;
    bool has_max = TIFFGetField(tif, TIFFTAG_SMAXSAMPLEVALUE, &maxs) && maxs;
    for (uint32_t c = 0; c < 4 && c < spp && (has_min || has_max); c++) {
        info->sample_min[c] = has_min && isfinite(mins[c]) ? mins[c] : 0.0;
        info->sample_max[c] = has_max && isfinite(maxs[c]) ? maxs[c] : 0.0;
    }
    TIFFSetField(tif, TIFFTAG_PERSAMPLE, PERSAMPLE_MERGED);
    info->has_sample_range = has_min || has_max;
}

int ts_tiff_open(struct ts_bytes *bytes, uint32_t page, const struct ts_reopen *again,
                 struct ts_reader **out, struct ts_err *err)
{
    struct ts_reader *r;
    struct tiff_priv *p;
    TIFFOpenOptions *opts;
    int rc;
    uint32_t i, icc_len = 0;
    uint8_t *icc = NULL;

    *out = NULL;
    r = calloc(1, sizeof *r);
    p = calloc(1, sizeof *p);
    opts = TIFFOpenOptionsAlloc();
    if (!r || !p || !opts) {
        free(r), free(p);
        TIFFOpenOptionsFree(opts);
        ts_bytes_unref(bytes);
        return ts_fail(err, TS_ENOMEM, "out of memory opening TIFF");
    }
    r->priv = p;
    r->ops = &tiff_ops;
    p->cur = -1;
    p->held = -1;
    p->jpeg_mode = tiff_jpeg_mode();
    p->io.bytes = bytes;
    p->io.off = 0;
    if (ts_bytes_size(bytes, &p->io.size) != 0) {
        rc = ts_fail(err, TS_EIO, "cannot stat TIFF file: %s", strerror(errno));
        TIFFOpenOptionsFree(opts);
        tiff_close(r);
        return rc;
    }
    if (!tiff_is_tiff(&p->io)) {
        TIFFOpenOptionsFree(opts);
        tiff_close(r);
        return ts_fail(err, TS_EUNSUPPORTED, "not a TIFF file");
    }
    TIFFOpenOptionsSetErrorHandlerExtR(opts, tiff_on_error, p);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, tiff_on_warning, p);
    /* Known levels: 'h' reads the header alone, and the first read loads its level's directory
     * by offset; the walk over every directory is what a reopen saves. */
    bool known = tiff_again_load(again, r, p, page);
    /* 'm' as well as a map procedure that declines: never mmap (see tiff_io_map). */
    p->tif = TIFFClientOpenExt("tiff", known ? "rmh" : "rm", (thandle_t)&p->io, tiff_io_read,
                               tiff_io_write, tiff_io_seek, tiff_io_close, tiff_io_size,
                               tiff_io_map, tiff_io_unmap, opts);
    TIFFOpenOptionsFree(opts);
    if (!p->tif) {
        rc = tiff_lib_fail(p, err, TS_ECODEC, "cannot open TIFF");
        tiff_close(r);
        return rc;
    }
    if (known) {
        if ((rc = tiff_color_attach(p, p->icc, p->icc_len, err)) != TS_OK) {
            tiff_close(r);
            return rc;
        }
        *out = r;
        return TS_OK;
    }
    p->page = page;
    if (page > 0 && (rc = tiff_goto_page(p, page, err)) != TS_OK) {
        tiff_close(r);
        return rc;
    }
    if ((rc = tiff_describe(p->tif, &p->lv[0], err)) != TS_OK) {
        tiff_close(r);
        return rc;
    }
    p->lv[0].sub = true;
    p->lv[0].off = TIFFCurrentDirOffset(p->tif);
    p->nlv = 1;
    /* Only a first page followed by more directories may have pages to count: a single
     * image costs nothing more to open. */
    bool more_dirs = page == 0 && !TIFFLastDirectory(p->tif);
    tiff_read_tags(p, &r->info);
    if ((rc = tiff_color_read_icc(p, &icc, &icc_len, err)) != TS_OK) {
        tiff_close(r);
        return rc;
    }
    tiff_find_levels(p);
    tiff_sort_levels(p);
    rc = tiff_color_attach(p, icc, icc_len, err);
    p->icc = icc; /* kept for the reopen state */
    p->icc_len = icc_len;
    if (rc != TS_OK) {
        tiff_close(r);
        return rc;
    }

    r->info.width = p->lv[0].width;
    r->info.height = p->lv[0].height;
    r->info.channels = p->lv[0].channels;
    r->info.bits_per_sample = p->lv[0].bps > 8 ? 16 : 8;
    r->info.nlevels = p->nlv;
    r->info.format = "tiff";
    r->info.npages = more_dirs ? tiff_count_pages(p) : 1;
    for (i = 0; i < p->nlv; i++) {
        r->info.levels[i].width = p->lv[i].width;
        r->info.levels[i].height = p->lv[i].height;
        r->info.levels[i].tile_w = p->lv[i].tile_w;
        r->info.levels[i].tile_h = p->lv[i].tile_h;
    }
    *out = r;
    return TS_OK;
}
