/* JPEG 2000 reader over OpenJPEG (JP2, raw J2K, HTJ2K): resolution levels are the pyramid. */
#define _GNU_SOURCE /* memfd_create */
#include "image/jp2.h"
#include "image/bytes.h"
#include "image/jp2pool.h"
#include "image/reader.h"
#include "util/buf.h"
#include "util/cpus.h"

#include <openjpeg.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* OpenJPEG holds every decoded component as int32 plus its own tile buffers, so a decode area
 * of 2^28 pixels already costs several GiB: refuse anything bigger before asking for it. */
#define JP2_MAX_DECODE_PIXELS ((uint64_t)1 << 28)
#define JP2_MAX_THREADS 2
#define JP2_CBLKSTY_HT 0x40 /* code-block style bit for HTJ2K (ISO/IEC 15444-15) */
/* Side of a cached block in level pixels: four of a viewer's 256 px tiles. 512 measured best
 * for cold tiles (a 1024 block made a lone first tile pay for sixteen: 42 vs 592 req/s at
 * 2 connections in bench/, jp2 workload). */
#define JP2_BLOCK 512u
/* A remote decode's bytes are staged this much at a time (see jp2_stage). */
#define JP2_STAGE_CHUNK ((size_t)1 << 20)
/* The largest remote codestream a decode may stage whole (one that cannot be cut). */
#define JP2_STAGE_MAX ((uint64_t)1 << 30)
/* Below this many level pixels a decode runs on one thread (see bench/jp2_tiles.c). */
#define JP2_THREADS_MIN_PIXELS ((uint64_t)512 * 512)

static const uint8_t jp2_box_sig[12] = {0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50,
                                        0x20, 0x20, 0x0d, 0x0a, 0x87, 0x0a};
static const uint8_t j2k_soc_siz[4] = {0xff, 0x4f, 0xff, 0x51};

/* Read-only once open (OpenJPEG state lives in per-decode sessions, each with its own offset
 * into the bytes), so threads may share it. */
struct jp2_priv {
    /* Owned; read at offsets only, so threads share it safely. Decoder processes get a
     * descriptor: the file's own, or a sparse copy of what a remote decode reads (jp2_stage). */
    struct ts_bytes *bytes;
    OPJ_CODEC_FORMAT fmt;
    uint32_t x0, y0, x1, y1;     /* image area on the reference grid */
    uint32_t ncomps;             /* components in the codestream */
    uint32_t channels;           /* delivered by read */
    uint32_t tx0, ty0, tdx, tdy; /* codestream tile grid */
    bool whole_tiles;            /* decode whole codestream tiles, then cut (see jp2_levels) */
    uint32_t sub_x, sub_y;       /* largest component subsampling (1 or 2) */
    int threads;
    char *key; /* file identity (device, inode, size, mtime): the cache key suffix */
    struct ts_block_store blocks; /* all zero when there is no store */
    struct jp2_shape *shapes;     /* ncomps of them: what the cost model needs */
    uint32_t tw, th;              /* tiles across and down */
    uint64_t file_size;
    /* Where each tile's bytes are, found on the first decode (see jp2_parts_get). */
    pthread_mutex_t parts_lock;
    bool parts_done;
    struct jp2_parts *parts; /* NULL when the codestream cannot be cut (or before the first) */
};

/* The tile-parts of a multi-tile codestream in file order, so a decode can be handed the
 * main header and the parts of the tiles under its area instead of the whole file: without
 * TLM markers (which OpenJPEG 2.5.0 does not use anyway) it reads every tile-part header to
 * the end of the codestream, a whole-file read for every tile a viewer asks for. */
struct jp2_part {
    uint32_t tile;
    uint64_t off, len;
};

struct jp2_parts {
    uint64_t head;  /* file bytes before the first tile-part: boxes and main header */
    uint64_t bytes; /* of all tile-parts */
    size_t n;
    struct jp2_part part[];
};

/* One component's coding as the main header declares it: OpenJPEG sizes its structures from
 * this, so the cost of a decode is known before it starts. */
struct jp2_shape {
    uint32_t dx, dy;                                         /* subsampling */
    uint32_t nres;                                           /* resolutions */
    uint32_t cbw, cbh;                                       /* code-block size exponents */
    uint32_t prcw[OPJ_J2K_MAXRLVLS], prch[OPJ_J2K_MAXRLVLS]; /* precinct exponents */
};

/* Where one session's stream is in the file. With a job's parts, the stream is the file's
 * first head bytes, then those parts, then an end-of-codestream marker (see ts_jp2pool_job). */
struct jp2_src {
    struct ts_bytes *bytes;
    uint64_t off, size;
    const struct ts_jp2pool_job *cut; /* NULL: the stream is the file */
};

/* One codec and stream on the file, with the main header read. */
struct jp2_session {
    struct jp2_src src; /* the stream's user data: lives as long as the stream */
    opj_stream_t *stream;
    opj_codec_t *codec;
    opj_image_t *image;
    char msg[160]; /* the last error OpenJPEG reported, for the one-line reason */
};

static void jp2_on_error(const char *msg, void *data)
{
    struct jp2_session *s = data;
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        n--;
    if (n >= sizeof s->msg)
        n = sizeof s->msg - 1;
    memcpy(s->msg, msg, n);
    s->msg[n] = '\0';
}

/* OpenJPEG prints warnings and progress to stdout unless given somewhere else to put them. */
static void jp2_on_quiet(const char *msg, void *data)
{
    (void)msg;
    (void)data;
}

static uint32_t jp2_ceil_shift(uint32_t v, uint32_t s)
{
    return (uint32_t)(((uint64_t)v + ((uint64_t)1 << s) - 1) >> s);
}

/* ---- an OpenJPEG stream over the descriptor (pread at the session's own offset) ---- */

static const uint8_t jp2_eoc[2] = {0xff, 0xd9};

/* Reads from a cut stream: each piece maps to the file or to the closing marker. */
static ssize_t jp2_cut_read(struct jp2_src *src, uint8_t *buf, size_t n)
{
    const struct ts_jp2pool_job *c = src->cut;
    size_t got = 0;
    while (got < n && src->off + got < src->size) {
        uint64_t at = src->off + got, base = c->head, file_at = at, left;
        if (at < c->head) {
            left = c->head - at;
        } else {
            uint32_t i = 0;
            for (; i < c->nparts && at >= base + c->parts[i].len; i++)
                base += c->parts[i].len;
            if (i == c->nparts) {
                size_t k = (size_t)(at - base), take = sizeof jp2_eoc - k;
                take = take < n - got ? take : n - got;
                memcpy(buf + got, jp2_eoc + k, take);
                got += take;
                continue;
            }
            file_at = c->parts[i].off + (at - base);
            left = base + c->parts[i].len - at;
        }
        size_t want = left < n - got ? (size_t)left : n - got;
        ssize_t r = ts_bytes_read_at(src->bytes, buf + got, want, file_at);
        if (r < 0)
            return -1;
        got += (size_t)r;
        if ((size_t)r < want)
            break; /* the file is shorter than when it was cut */
    }
    return (ssize_t)got;
}

static OPJ_SIZE_T jp2_src_read(void *buf, OPJ_SIZE_T n, void *user)
{
    struct jp2_src *src = user;
    ssize_t got =
        src->cut ? jp2_cut_read(src, buf, n) : ts_bytes_read_at(src->bytes, buf, n, src->off);
    /* OpenJPEG takes (OPJ_SIZE_T)-1 for the end of the stream as well as for an error. */
    if (got <= 0)
        return (OPJ_SIZE_T)-1;
    src->off += (uint64_t)got;
    return (OPJ_SIZE_T)got;
}

static OPJ_OFF_T jp2_src_skip(OPJ_OFF_T n, void *user)
{
    struct jp2_src *src = user;
    /* Like fseek, skipping past the end is allowed: the next read finds nothing. */
    if (n > INT64_MAX - (int64_t)src->off || (n < 0 && -(n + 1) >= (int64_t)src->off))
        return -1;
    src->off = (uint64_t)((int64_t)src->off + n);
    return n;
}

static OPJ_BOOL jp2_src_seek(OPJ_OFF_T to, void *user)
{
    struct jp2_src *src = user;
    if (to < 0)
        return OPJ_FALSE;
    src->off = (uint64_t)to;
    return OPJ_TRUE;
}

/* A read stream over bytes from its start, or over the cut the job describes (NULL: none); NULL on
 * failure (errno set when the size is unknown). */
static opj_stream_t *jp2_stream(struct jp2_src *src, struct ts_bytes *bytes,
                                const struct ts_jp2pool_job *cut, size_t chunk)
{
    opj_stream_t *st;
    src->bytes = bytes;
    src->off = 0;
    src->cut = cut && cut->nparts > 0 ? cut : NULL;
    if (src->cut) {
        src->size = cut->head + sizeof jp2_eoc;
        for (uint32_t i = 0; i < cut->nparts; i++)
            src->size += cut->parts[i].len;
    } else if (ts_bytes_size(bytes, &src->size) != 0) {
        return NULL;
    }
    if (!(st = opj_stream_create(chunk, OPJ_TRUE)))
        return NULL;
    opj_stream_set_read_function(st, jp2_src_read);
    opj_stream_set_skip_function(st, jp2_src_skip);
    opj_stream_set_seek_function(st, jp2_src_seek);
    opj_stream_set_user_data(st, src, NULL);
    opj_stream_set_user_data_length(st, src->size);
    return st;
}

static void jp2_session_end(struct jp2_session *s)
{
    if (s->image)
        opj_image_destroy(s->image);
    if (s->codec)
        opj_destroy_codec(s->codec);
    if (s->stream)
        opj_stream_destroy(s->stream);
    memset(s, 0, sizeof *s);
}

/* The stream's buffer when only the main header will be read: OpenJPEG fills its whole
 * buffer (1 MB by default) before parsing a header of a few hundred bytes. */
#define JP2_HEADER_CHUNK ((size_t)64 << 10)

/* Starts a stream at the file's beginning (or the job's cut of it) and reads the main header;
 * reduce and layers (0 = all) apply to the next decode, which runs on `threads` threads;
 * threads 0: no decode follows. */
static int jp2_session_begin(const struct jp2_priv *p, uint32_t reduce, uint32_t layers,
                             int threads, const struct ts_jp2pool_job *cut, struct jp2_session *s,
                             struct ts_err *err)
{
    opj_dparameters_t params;
    int rc;
    memset(s, 0, sizeof *s);
    s->stream = jp2_stream(&s->src, p->bytes, cut,
                           threads > 0 ? OPJ_J2K_STREAM_CHUNK_SIZE : JP2_HEADER_CHUNK);
    if (!s->stream)
        return ts_fail(err, TS_EIO, "jp2: cannot make a stream of the file");
    s->codec = opj_create_decompress(p->fmt);
    if (!s->codec) {
        jp2_session_end(s);
        return ts_fail(err, TS_ENOMEM, "jp2: cannot create a decoder");
    }
    opj_set_error_handler(s->codec, jp2_on_error, s);
    opj_set_warning_handler(s->codec, jp2_on_quiet, s);
    opj_set_info_handler(s->codec, jp2_on_quiet, s);
    opj_set_default_decoder_parameters(&params);
    params.cp_reduce = reduce;
    params.cp_layer = layers; /* OpenJPEG decodes every layer for 0, and for more than exist */
    /* Truncated codestreams must fail rather than come back as silently blurred pixels. */
    if (!opj_setup_decoder(s->codec, &params) || !opj_decoder_set_strict_mode(s->codec, OPJ_TRUE) ||
        !opj_read_header(s->stream, s->codec, &s->image) || !s->image) {
        rc = ts_fail(err, TS_ECODEC, "jp2: bad header%s%s", s->msg[0] ? ": " : "", s->msg);
        jp2_session_end(s);
        return rc;
    }
    if (threads > 1 && opj_has_thread_support())
        opj_codec_set_threads(s->codec, threads);
    return TS_OK;
}

/* Decodes the reference-grid area a[] = x0, y0, x1, y1 at the session's reduce factor. */
static int jp2_session_decode(struct jp2_session *s, const uint64_t a[4], struct ts_err *err)
{
    if (!opj_set_decode_area(s->codec, s->image, (OPJ_INT32)a[0], (OPJ_INT32)a[1], (OPJ_INT32)a[2],
                             (OPJ_INT32)a[3]) ||
        !opj_decode(s->codec, s->stream, s->image) || !opj_end_decompress(s->codec, s->stream))
        return ts_fail(err, TS_ECODEC, "jp2: decode failed%s%s", s->msg[0] ? ": " : "", s->msg);
    return TS_OK;
}

/* Samples of one component scaled to 8 bits: signed ones shifted to unsigned, then rounded. */
static uint8_t jp2_sample8(int32_t v, uint32_t prec, bool sgnd)
{
    int64_t x = v;
    int64_t max = ((int64_t)1 << prec) - 1;
    if (sgnd)
        x += (int64_t)1 << (prec - 1);
    if (x < 0)
        x = 0;
    if (x > max)
        x = max;
    if (prec == 8)
        return (uint8_t)x;
    return (uint8_t)((x * 255 + max / 2) / max);
}

static uint8_t jp2_clamp8(double v)
{
    if (v <= 0.0)
        return 0;
    if (v >= 255.0)
        return 255;
    return (uint8_t)(v + 0.5);
}

/* sYCC (ITU-R BT.601 full range, as JP2's colr box means it) to RGB, in place. */
static void jp2_sycc_to_rgb(uint8_t *px)
{
    double y = px[0], cb = px[1] - 128.0, cr = px[2] - 128.0;
    px[0] = jp2_clamp8(y + 1.402 * cr);
    px[1] = jp2_clamp8(y - 0.344136 * cb - 0.714136 * cr);
    px[2] = jp2_clamp8(y + 1.772 * cb);
}

/* Where a decoded component starts, in its own reduced coordinates: OpenJPEG 2.5 reports
 * x0/y0 at full component resolution, the same grid the image origin is on. */
static void jp2_comp_origin(const opj_image_comp_t *c, uint32_t *ox, uint32_t *oy)
{
    *ox = jp2_ceil_shift(c->x0, c->factor);
    *oy = jp2_ceil_shift(c->y0, c->factor);
}

/* Column indices into one decoded component for out's pixels, clamped to what was decoded:
 * subsampled components hold one sample per dx x dy block, which is thereby replicated. */
static void jp2_columns(const opj_image_comp_t *k, uint32_t ax, uint32_t w, uint32_t *cols)
{
    uint32_t ox, oy;
    jp2_comp_origin(k, &ox, &oy);
    for (uint32_t x = 0; x < w; x++) {
        int64_t cx = (int64_t)((ax + x) / k->dx) - ox;
        cols[x] = cx < 0 ? 0 : cx >= (int64_t)k->w ? k->w - 1 : (uint32_t)cx;
    }
}

static void jp2_copy_comp(const opj_image_comp_t *k, uint32_t c, uint32_t ay, const uint32_t *cols,
                          struct ts_image *out)
{
    uint32_t ox, oy, ch = out->channels;
    bool plain8 = k->prec == 8 && !k->sgnd;
    jp2_comp_origin(k, &ox, &oy);
    for (uint32_t y = 0; y < out->height; y++) {
        int64_t cy = (int64_t)((ay + y) / k->dy) - oy;
        const int32_t *src;
        uint8_t *dst = ts_image_row(out, y) + c;
        cy = cy < 0 ? 0 : cy >= (int64_t)k->h ? k->h - 1 : cy;
        src = k->data + (size_t)cy * k->w;
        if (plain8) {
            for (uint32_t x = 0; x < out->width; x++) {
                int32_t v = src[cols[x]];
                dst[(size_t)x * ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        } else {
            for (uint32_t x = 0; x < out->width; x++)
                dst[(size_t)x * ch] = jp2_sample8(src[cols[x]], k->prec, k->sgnd != 0);
        }
    }
}

/* Copies the decoded components into out; (ax, ay) is the level-grid position of out's first
 * pixel in absolute reduced reference coordinates. */
static int jp2_copy(const struct jp2_priv *p, const opj_image_t *img, uint32_t reduce, uint32_t ax,
                    uint32_t ay, struct ts_image *out, struct ts_err *err)
{
    uint32_t ch = out->channels;
    uint32_t *cols;
    size_t n;
    bool sycc = img->color_space == OPJ_CLRSPC_SYCC && ch >= 3;
    /* JP2's colour box is applied only when decoding, so the colour space is known only now. */
    if (img->color_space == OPJ_CLRSPC_CMYK || img->color_space == OPJ_CLRSPC_EYCC)
        return ts_fail(err, TS_EUNSUPPORTED, "jp2: CMYK/e-YCC colour not supported");
    if (img->numcomps < (ch == 2 ? 2 : ch) || img->numcomps != p->ncomps)
        return ts_fail(err, TS_EUNSUPPORTED, "jp2: decoded %u components, expected %u",
                       img->numcomps, p->ncomps);
    for (uint32_t c = 0; c < ch; c++) {
        const opj_image_comp_t *k = &img->comps[c];
        if (!k->data || k->w == 0 || k->h == 0 || k->prec == 0 || k->prec > 16 ||
            k->factor != reduce || k->dx == 0 || k->dy == 0)
            return ts_fail(err, TS_ECODEC, "jp2: component %u decoded empty", c);
    }
    if (!ts_mul_size(out->width, sizeof *cols, &n) || !(cols = malloc(n ? n : 1)))
        return ts_fail(err, TS_ENOMEM, "jp2: out of memory");
    for (uint32_t c = 0; c < ch; c++) {
        jp2_columns(&img->comps[c], ax, out->width, cols);
        jp2_copy_comp(&img->comps[c], c, ay, cols, out);
    }
    free(cols);
    if (sycc)
        for (uint32_t y = 0; y < out->height; y++)
            for (uint32_t x = 0; x < out->width; x++)
                jp2_sycc_to_rgb(ts_image_row(out, y) + (size_t)x * ch);
    return TS_OK;
}

/* Widens a reference-grid area for subsampling and, for HTJ2K, to whole tiles, clamps it to the
 * image, and refuses what would be too large to decode at level lvl. */
static int jp2_fit_area(const struct jp2_priv *p, uint32_t lvl, uint64_t a[4], struct ts_err *err)
{
    uint64_t bx = (uint64_t)p->sub_x << lvl, by = (uint64_t)p->sub_y << lvl;
    /* OpenJPEG starts a subsampled component at the first sample whose origin is inside the
     * area, so an area starting mid-block would lose the chroma sample it needs. */
    a[0] = a[0] / bx * bx;
    a[1] = a[1] / by * by;
    if (p->whole_tiles) {
        a[0] = p->tx0 + (a[0] - p->tx0) / p->tdx * p->tdx;
        a[1] = p->ty0 + (a[1] - p->ty0) / p->tdy * p->tdy;
        a[2] = p->tx0 + (a[2] - p->tx0 + p->tdx - 1) / p->tdx * p->tdx;
        a[3] = p->ty0 + (a[3] - p->ty0 + p->tdy - 1) / p->tdy * p->tdy;
    }
    a[0] = a[0] < p->x0 ? p->x0 : a[0];
    a[1] = a[1] < p->y0 ? p->y0 : a[1];
    a[2] = a[2] > p->x1 ? p->x1 : a[2];
    a[3] = a[3] > p->y1 ? p->y1 : a[3];
    if ((uint64_t)(jp2_ceil_shift((uint32_t)a[2], lvl) - jp2_ceil_shift((uint32_t)a[0], lvl)) *
            (jp2_ceil_shift((uint32_t)a[3], lvl) - jp2_ceil_shift((uint32_t)a[1], lvl)) >
        JP2_MAX_DECODE_PIXELS)
        return ts_fail(err, TS_ETOOLARGE, "jp2: decode area at level %u too large", lvl);
    return TS_OK;
}

/* Threads for decoding area a[] at level lvl: small decodes are faster on one thread than
 * paying to start OpenJPEG's thread pool. */
static int jp2_threads_for(const struct jp2_priv *p, uint32_t lvl, const uint64_t a[4])
{
    uint64_t w = jp2_ceil_shift((uint32_t)a[2], lvl) - jp2_ceil_shift((uint32_t)a[0], lvl);
    uint64_t h = jp2_ceil_shift((uint32_t)a[3], lvl) - jp2_ceil_shift((uint32_t)a[1], lvl);
    return w * h >= JP2_THREADS_MIN_PIXELS ? p->threads : 1;
}

/* Decodes area a[] at level lvl and copies it into out, whose first pixel is (ax, ay). */
static int jp2_decode_here(const struct jp2_priv *p, uint32_t lvl, uint32_t layers,
                           const uint64_t a[4], uint32_t ax, uint32_t ay, int threads,
                           const struct ts_jp2pool_job *cut, struct ts_image *out,
                           struct ts_err *err)
{
    struct jp2_session s;
    int rc = jp2_session_begin(p, lvl, layers, threads, cut, &s, err);
    if (rc != TS_OK)
        return rc;
    rc = jp2_session_decode(&s, a, err);
    if (rc == TS_OK)
        rc = jp2_copy(p, s.image, lvl, ax, ay, out, err);
    jp2_session_end(&s);
    return rc;
}

/* ---- in a decoder process: codecs kept for single-tile files ---- */

/* OpenJPEG 2.5.0 decodes another area on a codec that has decoded one (keeping the tile's
 * packets read and parsed, which makes a viewer's next tile several times cheaper) only for
 * single-tile images and an unchanged reduce factor: on multi-tile ones the second decode
 * fails, and changing the factor gives wrong pixels (tried, not assumed). So such codecs are
 * kept, a few per decoder, keyed by file identity and factor. */
#define JP2_KEPT 2
#define JP2_KEEP_MAX_FILE ((uint64_t)32 << 20) /* a kept codec holds the tile's packets */

struct jp2_kept {
    bool used;
    struct stat st; /* identity: dev, ino, size, mtime, ctime */
    int fmt;
    uint32_t reduce;
    struct ts_bytes *bytes; /* the session's own reference */
    uint64_t last;
    struct jp2_session s;
};

static struct jp2_kept jp2_kept[JP2_KEPT];
static uint64_t jp2_kept_clock;

static bool jp2_same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void jp2_kept_drop(struct jp2_kept *k)
{
    if (!k->used)
        return;
    jp2_session_end(&k->s);
    ts_bytes_unref(k->bytes);
    k->used = false;
}

/* The kept codec for this file and factor, opened (header read) when there is none. */
static int jp2_kept_get(const struct jp2_priv *p, const struct stat *st, uint32_t reduce,
                        int threads, struct jp2_kept **out, struct ts_err *err)
{
    struct jp2_kept *k = &jp2_kept[0];
    for (int i = 0; i < JP2_KEPT; i++) {
        struct jp2_kept *c = &jp2_kept[i];
        if (c->used && c->fmt == (int)p->fmt && c->reduce == reduce && jp2_same_file(&c->st, st)) {
            c->last = ++jp2_kept_clock;
            *out = c;
            return TS_OK;
        }
        if (!c->used || (k->used && c->last < k->last))
            k = c;
    }
    jp2_kept_drop(k);
    struct jp2_priv own = *p;
    own.bytes = ts_bytes_ref(p->bytes);
    int rc = jp2_session_begin(&own, reduce, 0, threads, NULL, &k->s, err);
    if (rc != TS_OK) {
        ts_bytes_unref(own.bytes);
        return rc;
    }
    k->used = true;
    k->st = *st;
    k->fmt = (int)p->fmt;
    k->reduce = reduce;
    k->bytes = own.bytes;
    k->last = ++jp2_kept_clock;
    *out = k;
    return TS_OK;
}

/* The decode itself, over bytes (whose descriptor is fd). */
static int jp2_pool_decode_bytes(struct ts_bytes *bytes, int fd, const struct ts_jp2pool_job *job,
                                 struct ts_image *out, struct ts_err *err)
{
    struct jp2_priv p;
    struct jp2_kept *k = NULL;
    struct stat st;
    memset(&p, 0, sizeof p);
    p.bytes = bytes;
    p.fmt = (OPJ_CODEC_FORMAT)job->fmt;
    p.ncomps = job->ncomps;
    p.channels = out->channels;
    if (!job->keep || job->layers || fstat(fd, &st) != 0 ||
        (uint64_t)st.st_size > JP2_KEEP_MAX_FILE)
        return jp2_decode_here(&p, job->reduce, job->layers, job->a, job->ax, job->ay, job->threads,
                               job, out, err);
    int rc = jp2_kept_get(&p, &st, job->reduce, job->threads, &k, err);
    if (rc == TS_OK)
        rc = jp2_session_decode(&k->s, job->a, err);
    if (rc == TS_OK)
        rc = jp2_copy(&p, k->s.image, job->reduce, job->ax, job->ay, out, err);
    /* A codec that failed once is not trusted with the next area. */
    if (rc != TS_OK && rc != TS_EBUSY)
        for (int i = 0; i < JP2_KEPT; i++)
            if (jp2_kept[i].used && jp2_same_file(&jp2_kept[i].st, &st))
                jp2_kept_drop(&jp2_kept[i]);
    return rc;
}

/* Runs in a decoder process (see jp2pool.h): what the job carries is all a decode needs. */
static int jp2_pool_decode(int fd, const struct ts_jp2pool_job *job, struct ts_image *out,
                           struct ts_err *err)
{
    struct ts_bytes *bytes;
    int own = dup(fd);
    if (own < 0)
        return ts_fail(err, TS_EBUSY, "jp2: cannot keep the file open: %s", strerror(errno));
    if (ts_bytes_from_fd(own, &bytes) != TS_OK)
        return ts_fail(err, TS_ENOMEM, "jp2: out of memory");
    int rc = jp2_pool_decode_bytes(bytes, fd, job, out, err);
    ts_bytes_unref(bytes);
    return rc;
}

static bool jp2_codestream_at(const struct jp2_priv *p, uint64_t *at);
static uint32_t jp2_be(const uint8_t *b, int n);

/* More tile-parts than this and the codestream is read whole (the index would cost more to
 * keep than reading saves). */
#define JP2_MAX_INDEX_PARTS ((size_t)1 << 20)

/* Walks the codestream's tile-part headers (SOT: Isot, Psot) once, one small read each.
 * NULL when the codestream cannot be cut safely: packed packet headers in the main header
 * (PPM) number tile-parts across the whole codestream, a tile-part whose length is unknown
 * (Psot 0) or runs past the file, or anything else unexpected. */
static struct jp2_parts *jp2_parts_scan(const struct jp2_priv *p)
{
    uint64_t cs, off;
    uint8_t m[12];
    struct jp2_parts *x = NULL;
    size_t cap = 0;
    if (!jp2_codestream_at(p, &cs))
        return NULL;
    off = cs + 2; /* SOC */
    for (int markers = 0;; markers++) {
        if (markers >= 4096 || ts_bytes_read_at(p->bytes, m, 4, off) != 4 || m[0] != 0xff ||
            m[1] == 0x60 /* PPM */)
            return NULL;
        if (m[1] == 0x90)
            break;
        uint32_t len = jp2_be(m + 2, 2);
        if (len < 2)
            return NULL;
        off += 2 + (uint64_t)len;
    }
    uint64_t ntiles = (uint64_t)p->tw * p->th;
    for (;;) {
        ssize_t got = ts_bytes_read_at(p->bytes, m, sizeof m, off);
        if (got >= 2 && m[0] == 0xff && m[1] == 0xd9)
            break; /* EOC */
        if (got != (ssize_t)sizeof m || m[0] != 0xff || m[1] != 0x90 || jp2_be(m + 2, 2) != 10)
            goto fail;
        uint32_t tile = jp2_be(m + 4, 2);
        uint64_t len = jp2_be(m + 6, 4);
        if (tile >= ntiles || len < 14 || len > p->file_size - off)
            goto fail;
        if (!x || x->n == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            if (ncap > JP2_MAX_INDEX_PARTS)
                goto fail;
            struct jp2_parts *nx = realloc(x, sizeof *x + ncap * sizeof x->part[0]);
            if (!nx)
                goto fail;
            if (!x)
                nx->n = 0, nx->bytes = 0;
            x = nx;
            cap = ncap;
        }
        x->part[x->n++] = (struct jp2_part){tile, off, len};
        x->bytes += len;
        off += len;
    }
    if (!x)
        return NULL;
    x->head = x->part[0].off;
    return x;
fail:
    free(x);
    return NULL;
}

/* The tile-part index, made by the first decode that wants it (readers are shared). */
static const struct jp2_parts *jp2_parts_get(const struct jp2_priv *cp)
{
    struct jp2_priv *p = (struct jp2_priv *)cp; /* only the index, under its lock */
    pthread_mutex_lock(&p->parts_lock);
    if (!p->parts_done) {
        p->parts = jp2_parts_scan(p);
        p->parts_done = true;
    }
    pthread_mutex_unlock(&p->parts_lock);
    return p->parts;
}

/* Hands the job the tile-parts under area a[] when that is well under the whole codestream. */
static void jp2_cut_for(const struct jp2_priv *p, const uint64_t a[4], struct ts_jp2pool_job *job)
{
    if ((uint64_t)p->tw * p->th <= 1)
        return;
    const struct jp2_parts *x = jp2_parts_get(p);
    if (!x)
        return;
    uint64_t c0 = (a[0] - p->tx0) / p->tdx, c1 = (a[2] - 1 - p->tx0) / p->tdx;
    uint64_t r0 = (a[1] - p->ty0) / p->tdy, r1 = (a[3] - 1 - p->ty0) / p->tdy;
    uint64_t bytes = 0;
    uint32_t n = 0;
    for (size_t i = 0; i < x->n; i++) {
        uint64_t c = x->part[i].tile % p->tw, r = x->part[i].tile / p->tw;
        if (c < c0 || c > c1 || r < r0 || r > r1)
            continue;
        if (n == TS_JP2POOL_MAX_PARTS)
            return;
        job->parts[n++] = (struct ts_jp2pool_part){x->part[i].off, x->part[i].len};
        bytes += x->part[i].len;
    }
    /* Half the codestream or more: reading it whole costs about the same. */
    if (n == 0 || bytes > x->bytes / 2)
        return;
    job->nparts = n;
    job->head = x->head;
}

/* Copies n bytes at off of p's source to the same offset of fd. */
static int jp2_stage_copy(const struct jp2_priv *p, int fd, uint64_t off, uint64_t n,
                          struct ts_err *err)
{
    uint8_t *buf = malloc(JP2_STAGE_CHUNK);
    if (!buf)
        return ts_fail(err, TS_ENOMEM, "jp2: out of memory");
    int rc = TS_OK;
    while (n > 0 && rc == TS_OK) {
        size_t want = n < JP2_STAGE_CHUNK ? (size_t)n : JP2_STAGE_CHUNK;
        ssize_t got = ts_bytes_read_at(p->bytes, buf, want, off);
        if (got != (ssize_t)want)
            rc = ts_fail(err, TS_EIO, "jp2: cannot read the source");
        else if (pwrite(fd, buf, want, (off_t)off) != (ssize_t)want)
            rc = ts_fail(err, TS_EIO, "jp2: cannot stage the source: %s", strerror(errno));
        off += want;
        n -= want;
    }
    free(buf);
    return rc;
}

/* A decoder process reads a descriptor, and a remote source has none: the bytes the job reads
 * (the head and its tile-parts, or the whole codestream) are copied, at their own offsets, into
 * a sparse in-memory file as long as the source, which the decoder then reads as the file. */
static int jp2_stage(const struct jp2_priv *p, const struct ts_jp2pool_job *job, int *out,
                     struct ts_err *err)
{
    if (!job->nparts && p->file_size > JP2_STAGE_MAX)
        return ts_fail(err, TS_ETOOLARGE,
                       "jp2: a remote codestream that cannot be cut is read whole, and %llu MB "
                       "is over %llu MB",
                       (unsigned long long)(p->file_size >> 20),
                       (unsigned long long)(JP2_STAGE_MAX >> 20));
    int fd = memfd_create("tessera-jp2", MFD_CLOEXEC);
    if (fd < 0)
        return ts_fail(err, TS_EBUSY, "jp2: cannot stage a remote source: %s", strerror(errno));
    int rc = ftruncate(fd, (off_t)p->file_size) == 0
                 ? TS_OK
                 : ts_fail(err, TS_EIO, "jp2: cannot stage a remote source: %s", strerror(errno));
    if (rc == TS_OK && !job->nparts)
        rc = jp2_stage_copy(p, fd, 0, p->file_size, err);
    if (rc == TS_OK && job->nparts)
        rc = jp2_stage_copy(p, fd, 0, job->head, err);
    for (uint32_t i = 0; rc == TS_OK && i < job->nparts; i++)
        rc = jp2_stage_copy(p, fd, job->parts[i].off, job->parts[i].len, err);
    if (rc != TS_OK) {
        close(fd);
        return rc;
    }
    *out = fd;
    return TS_OK;
}

/* Decodes area a[] at level lvl into out (first pixel at ax, ay) in a decoder process: this
 * process never runs an OpenJPEG decode, whose asserts would end it. */
static int jp2_decode_into(const struct jp2_priv *p, uint32_t lvl, uint32_t layers,
                           const uint64_t a[4], uint32_t ax, uint32_t ay, struct ts_cancel *cancel,
                           struct ts_image *out, struct ts_err *err)
{
    struct ts_jp2pool_job job;
    memset(&job, 0, sizeof job);
    job.fmt = (int)p->fmt;
    job.ncomps = p->ncomps;
    job.reduce = lvl;
    memcpy(job.a, a, sizeof job.a);
    job.ax = ax;
    job.ay = ay;
    job.threads = jp2_threads_for(p, lvl, a);
    job.keep = (uint64_t)p->tw * p->th == 1 && !p->whole_tiles;
    job.layers = layers;
    if (!job.keep)
        jp2_cut_for(p, a, &job);
    int fd = ts_bytes_fd(p->bytes);
    if (fd >= 0)
        return ts_jp2pool_run(jp2_pool_decode, fd, &job, cancel, out, err);
    job.keep = 0; /* each staged copy is a new file: nothing to keep it by */
    int rc = jp2_stage(p, &job, &fd, err);
    if (rc == TS_OK) {
        rc = ts_jp2pool_run(jp2_pool_decode, fd, &job, cancel, out, err);
        close(fd);
    }
    return rc;
}

/* Without the cache: decode just the area under the request (whole tiles for HTJ2K). */
static int jp2_read_direct(const struct jp2_priv *p, const struct ts_read_req *req, uint32_t ax,
                           uint32_t ay, struct ts_image *out, struct ts_err *err)
{
    uint32_t lvl = req->level;
    /* Scaled outwards, the area reduces again to exactly the requested pixels. */
    uint64_t a[4] = {(uint64_t)ax << lvl, (uint64_t)ay << lvl, (uint64_t)(ax + req->w) << lvl,
                     (uint64_t)(ay + req->h) << lvl};
    int rc = jp2_fit_area(p, lvl, a, err);
    if (rc != TS_OK)
        return rc;
    rc = ts_image_alloc(out, req->w, req->h, p->channels);
    if (rc != TS_OK)
        return ts_fail(err, rc, "jp2: cannot allocate %ux%u", req->w, req->h);
    rc = jp2_decode_into(p, lvl, req->layers, a, ax, ay, req->cancel, out, err);
    if (rc != TS_OK)
        ts_image_free(out);
    return rc;
}

/* ---- the decoded-block store (the app's; see struct ts_block_store) ---- */

/* The largest value the store keeps, 0 when there is none. */
static size_t jp2_store_max_value(const struct jp2_priv *p)
{
    return p->blocks.get && p->blocks.put ? p->blocks.max_value : 0;
}

static bool jp2_store_get(const struct jp2_priv *p, const char *key, struct ts_buf *out)
{
    return p->blocks.get && p->blocks.get(p->blocks.ctx, key, out);
}

static void jp2_store_put(const struct jp2_priv *p, const char *key, const void *value, size_t len)
{
    if (p->blocks.put)
        p->blocks.put(p->blocks.ctx, key, value, len);
}

/* ---- reads through blocks ---- */

/* Blocks of one level: cells of a grid on the reference grid. Where codestream tiles are not much
 * larger than a block at this level, cells are tiles or groups of them; otherwise a virtual grid
 * of JP2_BLOCK level pixels (HTJ2K still decodes whole tiles, see jp2_fill). */
struct jp2_grid {
    uint64_t ox, oy, cw, ch; /* origin and cell size on the reference grid */
    char kind;               /* 't' tile groups, 'v' virtual blocks (part of the cache key) */
};

/* A cell clipped to the image: a[] on the reference grid, l[] in absolute level pixels. */
struct jp2_block {
    uint64_t a[4];
    uint32_t l[4];
};

/* Cached value: this header, then w * h * ch pixels. */
struct jp2_block_hdr {
    uint32_t magic, w, h, ch;
};
#define JP2_BLOCK_MAGIC 0x4a50324bu

static void jp2_grid_for(const struct jp2_priv *p, uint32_t lvl, struct jp2_grid *g)
{
    uint64_t tw = jp2_ceil_shift(p->tdx, lvl), th = jp2_ceil_shift(p->tdy, lvl);
    /* Cell arithmetic needs the tile origin at or before the image's (as SIZ requires). */
    if (tw <= 2 * JP2_BLOCK && th <= 2 * JP2_BLOCK && p->tx0 <= p->x0 && p->ty0 <= p->y0) {
        uint64_t kx = tw >= JP2_BLOCK ? 1 : JP2_BLOCK / tw,
                 ky = th >= JP2_BLOCK ? 1 : JP2_BLOCK / th;
        g->ox = p->tx0;
        g->oy = p->ty0;
        g->cw = kx * p->tdx;
        g->ch = ky * p->tdy;
        g->kind = 't';
    } else {
        g->ox = g->oy = 0;
        g->cw = (uint64_t)JP2_BLOCK << lvl;
        g->ch = (uint64_t)JP2_BLOCK << lvl;
        g->kind = 'v';
    }
}

static void jp2_block_at(const struct jp2_priv *p, const struct jp2_grid *g, uint32_t lvl,
                         uint64_t i, uint64_t j, struct jp2_block *b)
{
    uint64_t x0 = g->ox + i * g->cw, y0 = g->oy + j * g->ch;
    b->a[0] = x0 < p->x0 ? p->x0 : x0;
    b->a[1] = y0 < p->y0 ? p->y0 : y0;
    b->a[2] = x0 + g->cw > p->x1 ? p->x1 : x0 + g->cw;
    b->a[3] = y0 + g->ch > p->y1 ? p->y1 : y0 + g->ch;
    for (int k = 0; k < 4; k++)
        b->l[k] = jp2_ceil_shift((uint32_t)b->a[k], lvl);
}

/* Copies the part of a block's pixels (origin bx, by) that falls inside out (origin ax, ay). */
static void jp2_blit(const struct ts_image *blk, uint32_t bx, uint32_t by, struct ts_image *out,
                     uint32_t ax, uint32_t ay)
{
    uint32_t x0 = bx > ax ? bx : ax, y0 = by > ay ? by : ay;
    uint32_t x1 = bx + blk->width < ax + out->width ? bx + blk->width : ax + out->width;
    uint32_t y1 = by + blk->height < ay + out->height ? by + blk->height : ay + out->height;
    size_t ch = out->channels;
    if (x1 <= x0 || y1 <= y0)
        return;
    for (uint32_t y = y0; y < y1; y++)
        memcpy(ts_image_row(out, y - ay) + (x0 - ax) * ch,
               ts_image_row(blk, y - by) + (x0 - bx) * ch, (x1 - x0) * ch);
}

/* Views a cached value as an image, false when it is not the block expected. */
static bool jp2_block_view(const struct ts_buf *v, const struct jp2_block *b, uint32_t ch,
                           struct ts_image *img)
{
    struct jp2_block_hdr h;
    uint32_t w = b->l[2] - b->l[0], hh = b->l[3] - b->l[1];
    if (v->len < sizeof h)
        return false;
    memcpy(&h, v->data, sizeof h);
    if (h.magic != JP2_BLOCK_MAGIC || h.w != w || h.h != hh || h.ch != ch ||
        v->len - sizeof h != (size_t)w * hh * ch)
        return false;
    img->width = w;
    img->height = hh;
    img->channels = ch;
    img->stride = (size_t)w * ch;
    img->data = v->data + sizeof h;
    return true;
}

static int jp2_block_key(const struct jp2_priv *p, const struct jp2_grid *g, uint32_t lvl,
                         uint64_t i, uint64_t j, struct ts_buf *key)
{
    key->len = 0;
    /* The file identity goes last, after fields of fixed shape. */
    if (ts_buf_appendf(key, "jp2:L%u:%c%llu,%llu:%s", lvl, g->kind, (unsigned long long)i,
                       (unsigned long long)j, p->key) != TS_OK ||
        ts_buf_append(key, "", 1) != TS_OK)
        return TS_ENOMEM;
    return TS_OK;
}

/* The cells under a request: i[0..1] and j[0..1] inclusive. A level pixel belongs to the cell
 * holding its reference-grid position (pixel << lvl), since cells start at ceil(start >> lvl). */
static void jp2_cells_under(const struct jp2_grid *g, uint32_t lvl, uint32_t ax, uint32_t ay,
                            const struct ts_read_req *req, uint64_t i[2], uint64_t j[2])
{
    i[0] = (((uint64_t)ax << lvl) - g->ox) / g->cw;
    j[0] = (((uint64_t)ay << lvl) - g->oy) / g->ch;
    i[1] = (((uint64_t)(ax + req->w - 1) << lvl) - g->ox) / g->cw;
    j[1] = (((uint64_t)(ay + req->h - 1) << lvl) - g->oy) / g->ch;
}

/* Whether a full cell of this grid fits in the cache as one value. */
static bool jp2_cells_fit(const struct jp2_priv *p, const struct jp2_grid *g, uint32_t lvl,
                          size_t max_value)
{
    uint64_t w = jp2_ceil_shift((uint32_t)(g->cw > p->x1 ? p->x1 : g->cw), lvl) + 1;
    uint64_t h = jp2_ceil_shift((uint32_t)(g->ch > p->y1 ? p->y1 : g->ch), lvl) + 1;
    /* Room for the header, the key and the LRU's own entry. */
    return w * h * p->channels + 4096 + strlen(p->key) <= max_value;
}

/* Cuts a block out of a fresh decode (whole, first pixel at wx, wy), stores it, and copies its
 * part of out. */
static int jp2_store_block(const struct jp2_priv *p, const struct ts_image *whole, uint32_t wx,
                           uint32_t wy, const struct jp2_block *b, const char *key,
                           struct ts_image *out, uint32_t ax, uint32_t ay, struct ts_err *err)
{
    struct jp2_block_hdr h = {JP2_BLOCK_MAGIC, b->l[2] - b->l[0], b->l[3] - b->l[1], p->channels};
    struct ts_image view;
    size_t px, total;
    uint8_t *v;
    if (!ts_mul3_size(h.w, h.h, h.ch, &px) || !ts_add_size(px, sizeof h, &total) ||
        !(v = malloc(total)))
        return ts_fail(err, TS_ENOMEM, "jp2: cannot allocate a %ux%u block", h.w, h.h);
    memcpy(v, &h, sizeof h);
    view.width = h.w;
    view.height = h.h;
    view.channels = h.ch;
    view.stride = (size_t)h.w * h.ch;
    view.data = v + sizeof h;
    jp2_blit(whole, wx, wy, &view, b->l[0], b->l[1]);
    jp2_store_put(p, key, v, total);
    jp2_blit(&view, b->l[0], b->l[1], out, ax, ay);
    free(v);
    return TS_OK;
}

/* ---- decodes in flight: one thread decodes a block while the others asking for it wait ---- */

/* A viewer asks for a block's tiles all at once, so without this every request would decode
 * the same block. A thread waits only after releasing its own claims, so waits cannot cycle. */
struct jp2_flight {
    struct jp2_flight *next;
    char key[];
};

static pthread_mutex_t jp2_flight_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jp2_flight_done = PTHREAD_COND_INITIALIZER;
static struct jp2_flight *jp2_flights;

/* Under jp2_flight_lock. */
static struct jp2_flight **jp2_flight_find(const char *key)
{
    struct jp2_flight **f = &jp2_flights;
    while (*f && strcmp((*f)->key, key) != 0)
        f = &(*f)->next;
    return f;
}

/* TS_OK with *mine set when this thread is to decode the block, clear when another already is. */
static int jp2_flight_claim(const char *key, bool *mine)
{
    size_t n = strlen(key) + 1;
    struct jp2_flight *f = NULL, **at;
    pthread_mutex_lock(&jp2_flight_lock);
    at = jp2_flight_find(key);
    *mine = *at == NULL;
    if (*mine && (f = malloc(sizeof *f + n)) != NULL) {
        memcpy(f->key, key, n);
        f->next = jp2_flights;
        jp2_flights = f;
    }
    pthread_mutex_unlock(&jp2_flight_lock);
    return *mine && !f ? TS_ENOMEM : TS_OK;
}

static void jp2_flight_release(const char *key)
{
    struct jp2_flight **at, *f;
    pthread_mutex_lock(&jp2_flight_lock);
    at = jp2_flight_find(key);
    if ((f = *at) != NULL) {
        *at = f->next;
        free(f);
    }
    pthread_cond_broadcast(&jp2_flight_done);
    pthread_mutex_unlock(&jp2_flight_lock);
}

static void jp2_flight_wait(const char *key)
{
    pthread_mutex_lock(&jp2_flight_lock);
    while (*jp2_flight_find(key))
        pthread_cond_wait(&jp2_flight_done, &jp2_flight_lock);
    pthread_mutex_unlock(&jp2_flight_lock);
}

/* What a read knows of each cell under it. */
enum jp2_cell { JP2_CELL_MISSING, JP2_CELL_HAVE, JP2_CELL_CLAIMED, JP2_CELL_AWAITED };

/* The cells under a read: i[] and j[] inclusive ranges, state[] row by row. */
struct jp2_cells {
    uint64_t i[2], j[2];
    uint8_t *state;
};

static uint8_t *jp2_cell(const struct jp2_cells *c, uint64_t x, uint64_t y)
{
    if (x < c->i[0] || x > c->i[1] || y < c->j[0] || y > c->j[1])
        return NULL;
    return &c->state[(y - c->j[0]) * (c->i[1] - c->i[0] + 1) + (x - c->i[0])];
}

/* Whether a cell lies wholly inside a decoded reference-grid area. */
static bool jp2_block_inside(const struct jp2_block *b, const uint64_t a[4])
{
    return b->l[2] > b->l[0] && b->l[3] > b->l[1] && b->a[0] >= a[0] && b->a[1] >= a[1] &&
           b->a[2] <= a[2] && b->a[3] <= a[3];
}

/* Decodes the bounding area of the cells in state `want` (one decode, one header parse) and
 * stores every cell it holds whole that this read lacks: for HTJ2K, whose decodes widen to
 * whole codestream tiles, that includes neighbours outside the request. */
static int jp2_fill(const struct jp2_priv *p, const struct jp2_grid *g, uint32_t lvl,
                    struct jp2_cells *c, uint8_t want, struct ts_cancel *cancel,
                    struct ts_image *out, uint32_t ax, uint32_t ay, struct ts_err *err)
{
    struct jp2_block lo, hi, b;
    struct ts_image whole;
    uint32_t wx, wy;
    struct ts_buf key = {0};
    uint64_t a[4], mi[2] = {UINT64_MAX, 0}, mj[2] = {UINT64_MAX, 0}, di[2], dj[2];
    size_t extra = jp2_store_max_value(p) * 2;
    int rc;
    for (uint64_t y = c->j[0]; y <= c->j[1]; y++)
        for (uint64_t x = c->i[0]; x <= c->i[1]; x++)
            if (*jp2_cell(c, x, y) == want) {
                mi[0] = x < mi[0] ? x : mi[0];
                mi[1] = x > mi[1] ? x : mi[1];
                mj[0] = y < mj[0] ? y : mj[0];
                mj[1] = y > mj[1] ? y : mj[1];
            }
    if (mi[0] == UINT64_MAX)
        return TS_OK;
    jp2_block_at(p, g, lvl, mi[0], mj[0], &lo);
    jp2_block_at(p, g, lvl, mi[1], mj[1], &hi);
    a[0] = lo.a[0];
    a[1] = lo.a[1];
    a[2] = hi.a[2];
    a[3] = hi.a[3];
    rc = jp2_fit_area(p, lvl, a, err);
    if (rc != TS_OK)
        return rc;
    di[0] = (a[0] - g->ox) / g->cw;
    dj[0] = (a[1] - g->oy) / g->ch;
    di[1] = (a[2] - 1 - g->ox) / g->cw;
    dj[1] = (a[3] - 1 - g->oy) / g->ch;
    wx = jp2_ceil_shift((uint32_t)a[0], lvl);
    wy = jp2_ceil_shift((uint32_t)a[1], lvl);
    rc = ts_image_alloc(&whole, jp2_ceil_shift((uint32_t)a[2], lvl) - wx,
                        jp2_ceil_shift((uint32_t)a[3], lvl) - wy, p->channels);
    if (rc != TS_OK)
        return ts_fail(err, rc, "jp2: cannot allocate a decode of %llux%llu",
                       (unsigned long long)(a[2] - a[0]), (unsigned long long)(a[3] - a[1]));
    rc = jp2_decode_into(p, lvl, 0, a, wx, wy, cancel, &whole, err);
    for (uint64_t y = dj[0]; rc == TS_OK && y <= dj[1]; y++)
        for (uint64_t x = di[0]; rc == TS_OK && x <= di[1]; x++) {
            uint8_t *st = jp2_cell(c, x, y);
            if (st && *st == JP2_CELL_HAVE)
                continue;
            jp2_block_at(p, g, lvl, x, y, &b);
            if (!jp2_block_inside(&b, a))
                continue;
            /* Neighbours outside the request may fill a quarter of the cache, not flush it. */
            if (!st) {
                size_t bytes = (size_t)(b.l[2] - b.l[0]) * (b.l[3] - b.l[1]) * p->channels;
                if (bytes > extra)
                    continue;
                extra -= bytes;
            }
            rc = jp2_block_key(p, g, lvl, x, y, &key);
            if (rc != TS_OK)
                rc = ts_fail(err, rc, "jp2: out of memory");
            else
                rc = jp2_store_block(p, &whole, wx, wy, &b, (const char *)key.data, out, ax, ay,
                                     err);
            if (rc == TS_OK && st)
                *st = JP2_CELL_HAVE;
        }
    ts_image_free(&whole);
    ts_buf_free(&key);
    return rc;
}

/* Looks up every cell in state `from` (all, for JP2_CELL_MISSING), copying hits into out; misses
 * become `miss`, or when claim is set, claimed or awaited as jp2_flight_claim decides. */
static int jp2_gather(const struct jp2_priv *p, const struct jp2_grid *g, uint32_t lvl,
                      struct jp2_cells *c, uint8_t from, bool claim, struct ts_image *out,
                      uint32_t ax, uint32_t ay, struct ts_err *err)
{
    struct ts_buf key = {0}, val = {0};
    struct jp2_block b;
    struct ts_image view;
    int rc = TS_OK;
    for (uint64_t y = c->j[0]; rc == TS_OK && y <= c->j[1]; y++)
        for (uint64_t x = c->i[0]; rc == TS_OK && x <= c->i[1]; x++) {
            uint8_t *st = jp2_cell(c, x, y);
            bool mine = true;
            if (*st != from)
                continue;
            jp2_block_at(p, g, lvl, x, y, &b);
            if (b.l[2] <= b.l[0] || b.l[3] <= b.l[1]) {
                *st = JP2_CELL_HAVE; /* no pixels at this level */
                continue;
            }
            if (jp2_block_key(p, g, lvl, x, y, &key) != TS_OK) {
                rc = ts_fail(err, TS_ENOMEM, "jp2: out of memory");
                break;
            }
            if (from == JP2_CELL_AWAITED)
                jp2_flight_wait((const char *)key.data);
            val.len = 0;
            if (jp2_store_get(p, (const char *)key.data, &val) &&
                jp2_block_view(&val, &b, p->channels, &view)) {
                jp2_blit(&view, b.l[0], b.l[1], out, ax, ay);
                *st = JP2_CELL_HAVE;
                continue;
            }
            if (claim && jp2_flight_claim((const char *)key.data, &mine) != TS_OK)
                rc = ts_fail(err, TS_ENOMEM, "jp2: out of memory");
            /* The block may have been stored, and its claim released, since the lookup. */
            val.len = 0;
            if (claim && mine && rc == TS_OK && jp2_store_get(p, (const char *)key.data, &val) &&
                jp2_block_view(&val, &b, p->channels, &view)) {
                jp2_flight_release((const char *)key.data);
                jp2_blit(&view, b.l[0], b.l[1], out, ax, ay);
                *st = JP2_CELL_HAVE;
                continue;
            }
            *st = !claim ? JP2_CELL_MISSING : mine ? JP2_CELL_CLAIMED : JP2_CELL_AWAITED;
        }
    ts_buf_free(&key);
    ts_buf_free(&val);
    return rc;
}

/* Releases every claim this read still holds (decoded or not). */
static void jp2_release_claims(const struct jp2_priv *p, const struct jp2_grid *g, uint32_t lvl,
                               struct jp2_cells *c, const uint8_t *claimed)
{
    struct ts_buf key = {0};
    for (uint64_t y = c->j[0]; y <= c->j[1]; y++)
        for (uint64_t x = c->i[0]; x <= c->i[1]; x++)
            if (claimed[(y - c->j[0]) * (c->i[1] - c->i[0] + 1) + (x - c->i[0])] &&
                jp2_block_key(p, g, lvl, x, y, &key) == TS_OK)
                jp2_flight_release((const char *)key.data);
    ts_buf_free(&key);
}

/* Gathers the cells under the request from the cache, decoding those nobody is decoding yet,
 * then waiting for the rest (and decoding any that still did not arrive). */
static int jp2_read_blocks(const struct jp2_priv *p, const struct jp2_grid *g,
                           const struct ts_read_req *req, uint32_t ax, uint32_t ay,
                           struct ts_image *out, struct ts_err *err)
{
    uint32_t lvl = req->level;
    struct jp2_cells c;
    uint8_t *claimed;
    uint64_t n;
    int rc;
    jp2_cells_under(g, lvl, ax, ay, req, c.i, c.j);
    n = (c.i[1] - c.i[0] + 1) * (c.j[1] - c.j[0] + 1);
    if (n > SIZE_MAX / 2 || !(c.state = calloc((size_t)n * 2, 1)))
        return ts_fail(err, TS_ENOMEM, "jp2: out of memory");
    claimed = c.state + n;
    rc = jp2_gather(p, g, lvl, &c, JP2_CELL_MISSING, true, out, ax, ay, err);
    for (uint64_t k = 0; k < n; k++)
        claimed[k] = c.state[k] == JP2_CELL_CLAIMED;
    if (rc == TS_OK)
        rc = ts_cancel_check(req->cancel, err);
    if (rc == TS_OK)
        rc = jp2_fill(p, g, lvl, &c, JP2_CELL_CLAIMED, req->cancel, out, ax, ay, err);
    jp2_release_claims(p, g, lvl, &c, claimed);
    if (rc == TS_OK)
        rc = jp2_gather(p, g, lvl, &c, JP2_CELL_AWAITED, false, out, ax, ay, err);
    if (rc == TS_OK)
        rc = ts_cancel_check(req->cancel, err);
    if (rc == TS_OK)
        rc = jp2_fill(p, g, lvl, &c, JP2_CELL_MISSING, req->cancel, out, ax, ay, err);
    free(c.state);
    return rc;
}

static int jp2_read(struct ts_reader *r, const struct ts_read_req *req, struct ts_image *out,
                    struct ts_err *err)
{
    const struct jp2_priv *p = r->priv;
    const struct ts_level *lv;
    struct jp2_grid g;
    uint32_t lvl = req->level, ax, ay;
    size_t max_value;
    int rc;

    out->data = NULL;
    if (lvl >= r->info.nlevels)
        return ts_fail(err, TS_EINVAL, "jp2: level %u out of range", lvl);
    lv = &r->info.levels[lvl];
    if (req->w == 0 || req->h == 0 || req->x >= lv->width || req->y >= lv->height ||
        req->w > lv->width - req->x || req->h > lv->height - req->y)
        return ts_fail(err, TS_EINVAL, "jp2: region outside level %u", lvl);
    ax = jp2_ceil_shift(p->x0, lvl) + req->x;
    ay = jp2_ceil_shift(p->y0, lvl) + req->y;
    max_value = jp2_store_max_value(p);
    jp2_grid_for(p, lvl, &g);
    /* The block cache and the kept codecs hold every layer's pixels: fewer layers (IIP's LYR,
     * rare) are decoded for the request alone. */
    if (max_value == 0 || req->layers || !jp2_cells_fit(p, &g, lvl, max_value))
        return jp2_read_direct(p, req, ax, ay, out, err);
    rc = ts_image_alloc(out, req->w, req->h, p->channels);
    if (rc != TS_OK)
        return ts_fail(err, rc, "jp2: cannot allocate %ux%u", req->w, req->h);
    rc = jp2_read_blocks(p, &g, req, ax, ay, out, err);
    if (rc == TS_ETOOLARGE) {
        /* The cells' bounding area was too big to decode at once: try just the request. */
        ts_image_free(out);
        return jp2_read_direct(p, req, ax, ay, out, err);
    }
    if (rc != TS_OK)
        ts_image_free(out);
    return rc;
}

/* ---- what a read will cost, worked out from the main header ---- */

/* OpenJPEG 2.5.0's allocations, measured with tools/mem_probe.c on opj_compress output and on
 * tests/data/bombs, and read off its tcd.c: before decoding a tile it sets up every precinct
 * and code-block of every resolution of that tile (whatever the reduce factor and the decode
 * area), then holds the decoded resolution of the whole tile, or, when the area cuts the tile,
 * the window with its sparse arrays and decoded code-blocks. Tiles are decoded one after
 * another on reused buffers, so the largest tile counts, not their sum. */
#define JP2_COST_CBLK 400u       /* opj_tcd_cblk_dec_t, its ten segments, tag-tree nodes */
#define JP2_COST_PRECINCT 256u   /* per precinct and band: the precinct and its tag trees */
#define JP2_COST_PARTIAL 6u      /* per window sample and resolution when the area cuts a tile */
#define JP2_COST_WHOLE 6u        /* per sample of a tile decoded whole (int32, and heap slack) */
#define JP2_COST_IMAGE 5u        /* per sample of the output image (int32, and heap slack) */
#define JP2_COST_TILE 5120u      /* per tile of the grid: every decode parses the header again */
#define JP2_COST_TILE_COMP 2360u /* per tile and component */
#define JP2_COST_FIXED ((size_t)2 << 20) /* the decoder process: stacks, thread pool, codec */

static int64_t jp2_floor_shift(int64_t v, uint32_t k)
{
    return v >= 0 ? v >> k : -((-v + ((int64_t)1 << k) - 1) >> k);
}

static int64_t jp2_ceil_shift64(int64_t v, uint32_t k)
{
    return -jp2_floor_shift(-v, k);
}

/* Code-blocks of 2^e across the band [b0, b1): precinct edges fall on the code-block grid, so
 * the precincts' counts add up to the grid cells the band covers. */
static uint64_t jp2_blocks_across(int64_t b0, int64_t b1, uint32_t e)
{
    return b1 > b0 ? (uint64_t)(jp2_ceil_shift64(b1, e) - jp2_floor_shift(b0, e)) : 0;
}

/* The largest figures along one axis over the tiles a decode touches: OpenJPEG's counts are a
 * product of an x figure and a y figure, so the largest tile is bounded by the product of the
 * largest of each. */
struct jp2_axis {
    uint64_t lo[OPJ_J2K_MAXRLVLS], hi[OPJ_J2K_MAXRLVLS]; /* code-blocks: low- and high-pass bands */
    uint64_t prc[OPJ_J2K_MAXRLVLS];                      /* precincts */
    uint64_t whole; /* decoded resolution of a tile the window covers */
    /* The window at each resolution up to the decoded one, with two code-blocks of margin
     * each side: a partial decode holds code-blocks and sparse arrays for all of them. */
    uint64_t part[OPJ_J2K_MAXRLVLS]; /* in any tile */
    uint64_t cut[OPJ_J2K_MAXRLVLS];  /* in the tiles the window cuts */
    uint64_t win;                    /* the whole window at the decoded resolution */
    bool covers;                     /* the window covers every tile it touches */
};

/* One axis: the tile grid (origin org, size td) clipped to [lo, hi), the window [w0, w1) on the
 * reference grid, a component subsampled by sub with resolutions of precinct exponents prc[]
 * and code-blocks of 2^cb, decoded at reduce factor red. */
static void jp2_axis_scan(uint64_t org, uint64_t td, uint64_t lo, uint64_t hi, uint64_t w0,
                          uint64_t w1, uint32_t sub, uint32_t nres, const uint32_t *prc,
                          uint32_t cb, uint32_t red, struct jp2_axis *ax)
{
    uint32_t keep = red < nres ? red : nres - 1;
    int64_t wc0 = (int64_t)((w0 + sub - 1) / sub), wc1 = (int64_t)((w1 + sub - 1) / sub);
    memset(ax, 0, sizeof *ax);
    ax->covers = true;
    ax->win = (uint64_t)(jp2_ceil_shift64(wc1, keep) - jp2_ceil_shift64(wc0, keep));
    if (w0 < org || w1 <= w0)
        return;
    for (uint64_t i = (w0 - org) / td; i <= (w1 - 1 - org) / td; i++) {
        uint64_t a = org + i * td, b = a + td;
        a = a < lo ? lo : a;
        b = b > hi ? hi : b;
        if (b <= a)
            continue;
        int64_t t0 = (int64_t)((a + sub - 1) / sub), t1 = (int64_t)((b + sub - 1) / sub);
        for (uint32_t r = 0; r < nres && r < OPJ_J2K_MAXRLVLS; r++) {
            uint32_t l = nres - 1 - r, pd = prc[r] > 31 ? 31 : prc[r];
            int64_t r0 = jp2_ceil_shift64(t0, l), r1 = jp2_ceil_shift64(t1, l);
            uint64_t np = r0 == r1 ? 0 : jp2_blocks_across(r0, r1, pd);
            uint64_t nl, nh = 0;
            ax->prc[r] = np > ax->prc[r] ? np : ax->prc[r];
            if (r == 0) {
                nl = jp2_blocks_across(r0, r1, cb < pd ? cb : pd);
            } else {
                uint32_t e = pd == 0 ? 0 : cb < pd - 1 ? cb : pd - 1;
                int64_t half = (int64_t)1 << l;
                nl = jp2_blocks_across(jp2_ceil_shift64(t0, l + 1), jp2_ceil_shift64(t1, l + 1), e);
                nh = jp2_blocks_across(jp2_ceil_shift64(t0 - half, l + 1),
                                       jp2_ceil_shift64(t1 - half, l + 1), e);
            }
            ax->lo[r] = nl > ax->lo[r] ? nl : ax->lo[r];
            ax->hi[r] = nh > ax->hi[r] ? nh : ax->hi[r];
        }
        int64_t c0 = wc0 > t0 ? wc0 : t0, c1 = wc1 < t1 ? wc1 : t1;
        uint64_t tl = (uint64_t)(jp2_ceil_shift64(t1, keep) - jp2_ceil_shift64(t0, keep));
        /* OpenJPEG's own test: the window reaches each edge of the tile within 2^reduce. */
        bool whole = ((c0 - t0) >> keep) == 0 && ((t1 - c1) >> keep) == 0;
        if (whole)
            ax->whole = tl > ax->whole ? tl : ax->whole;
        ax->covers = ax->covers && whole;
        for (uint32_t r = 0; r < nres - keep && r < OPJ_J2K_MAXRLVLS; r++) {
            uint32_t l = nres - 1 - r;
            uint64_t rl = (uint64_t)(jp2_ceil_shift64(t1, l) - jp2_ceil_shift64(t0, l));
            uint64_t wl =
                (uint64_t)(jp2_ceil_shift64(c1, l) - jp2_ceil_shift64(c0, l)) + ((uint64_t)4 << cb);
            wl = wl < rl ? wl : rl;
            if (!whole)
                ax->cut[r] = wl > ax->cut[r] ? wl : ax->cut[r];
            ax->part[r] = wl > ax->part[r] ? wl : ax->part[r];
        }
    }
}

/* The peak of one OpenJPEG decode of reference-grid area a[] at reduce factor lvl, in the
 * decoder process that runs it. */
static size_t jp2_decode_cost(const struct jp2_priv *p, uint32_t lvl, const uint64_t a[4])
{
    size_t total = JP2_COST_FIXED, structs = 0, data = 0, image = 0;
    size_t c_structs = 0, c_data = 0, c_image = 0;
    uint64_t ntiles = (uint64_t)p->tw * p->th;
    bool single = true, c_covers = true;
    for (uint32_t c = 0; c < p->ncomps; c++) {
        const struct jp2_shape *sh = &p->shapes[c];
        /* Components coded alike cost alike: a codestream may declare thousands of them. */
        if (c == 0 || memcmp(sh, sh - 1, sizeof *sh) != 0) {
            struct jp2_axis x, y;
            jp2_axis_scan(p->tx0, p->tdx, p->x0, p->x1, a[0], a[2], sh->dx, sh->nres, sh->prcw,
                          sh->cbw, lvl, &x);
            jp2_axis_scan(p->ty0, p->tdy, p->y0, p->y1, a[1], a[3], sh->dy, sh->nres, sh->prch,
                          sh->cbh, lvl, &y);
            c_structs = 0;
            for (uint32_t r = 0; r < sh->nres && r < OPJ_J2K_MAXRLVLS; r++) {
                size_t blocks = r == 0 ? ts_sat_mul(x.lo[0], y.lo[0])
                                       : ts_sat_add(ts_sat_mul(x.hi[r], y.lo[r]),
                                                    ts_sat_add(ts_sat_mul(x.lo[r], y.hi[r]),
                                                               ts_sat_mul(x.hi[r], y.hi[r])));
                c_structs = ts_sat_add(c_structs, ts_sat_mul(blocks, JP2_COST_CBLK));
                c_structs = ts_sat_add(c_structs, ts_sat_mul(ts_sat_mul(x.prc[r], y.prc[r]),
                                                             (r == 0 ? 1 : 3) * JP2_COST_PRECINCT));
            }
            /* A tile is decoded whole only when the window covers it along both axes. */
            size_t whole = ts_sat_mul(ts_sat_mul(x.whole, y.whole), JP2_COST_WHOLE);
            size_t part = 0;
            for (uint32_t r = 0; r < OPJ_J2K_MAXRLVLS; r++) {
                size_t cx = ts_sat_mul(x.cut[r], y.part[r]), cy = ts_sat_mul(x.part[r], y.cut[r]);
                part = ts_sat_add(part, ts_sat_mul(cx > cy ? cx : cy, JP2_COST_PARTIAL));
            }
            c_data = whole > part ? whole : part;
            c_image = ts_sat_mul(ts_sat_mul(x.win, y.win), JP2_COST_IMAGE);
            c_covers = x.covers && y.covers;
        }
        structs = ts_sat_add(structs, c_structs);
        data = ts_sat_add(data, c_data);
        image = ts_sat_add(image, c_image);
        single = single && c_covers;
    }
    /* A lone tile decoded whole is handed over as the image rather than copied into one. */
    if (!(single && ntiles == 1))
        total = ts_sat_add(total, image);
    total = ts_sat_add(total, ts_sat_add(structs, data));
    /* The tile's compressed bytes are read in whole: all of a single-tile file. */
    uint64_t packed = ntiles <= 1 ? p->file_size : p->file_size / ntiles * 4 + ((uint64_t)1 << 20);
    packed = packed < p->file_size ? packed : p->file_size;
    total = ts_sat_add(total, (size_t)packed);
    return ts_sat_add(total,
                      ts_sat_mul(ntiles, JP2_COST_TILE + (size_t)JP2_COST_TILE_COMP * p->ncomps));
}

static int jp2_cost(struct ts_reader *r, const struct ts_read_req *req, size_t *bytes,
                    struct ts_err *err)
{
    const struct jp2_priv *p = r->priv;
    uint32_t lvl = req->level;
    uint32_t ax = jp2_ceil_shift(p->x0, lvl) + req->x, ay = jp2_ceil_shift(p->y0, lvl) + req->y;
    size_t out, extra = 0;
    uint64_t a[4];
    struct jp2_grid g;
    int rc = TS_ETOOLARGE;

    if (!ts_mul3_size(req->w, req->h, p->channels, &out))
        return ts_fail(err, TS_ETOOLARGE, "jp2: %ux%u read too large", req->w, req->h);
    /* As jp2_read: through the block cache the decode covers the whole cells under the read
     * (taken as all missing), falling back to the bare area when those are too many. */
    jp2_grid_for(p, lvl, &g);
    size_t max_value = jp2_store_max_value(p);
    if (max_value != 0 && jp2_cells_fit(p, &g, lvl, max_value)) {
        uint64_t i[2], j[2];
        struct jp2_block lo, hi;
        jp2_cells_under(&g, lvl, ax, ay, req, i, j);
        jp2_block_at(p, &g, lvl, i[0], j[0], &lo);
        jp2_block_at(p, &g, lvl, i[1], j[1], &hi);
        a[0] = lo.a[0];
        a[1] = lo.a[1];
        a[2] = hi.a[2];
        a[3] = hi.a[3];
        rc = jp2_fit_area(p, lvl, a, NULL);
        /* The copy of a cell being stored: no bigger than the decoded area (nor than the
         * store takes). Counting the store's largest value here instead (32 MB by default)
         * made every JPEG 2000 tile a heavy render, all of them queued for the slow lane. */
        uint64_t cw = jp2_ceil_shift((uint32_t)a[2], lvl) - jp2_ceil_shift((uint32_t)a[0], lvl);
        uint64_t ch = jp2_ceil_shift((uint32_t)a[3], lvl) - jp2_ceil_shift((uint32_t)a[1], lvl);
        extra = ts_sat_add(ts_sat_mul(ts_sat_mul((size_t)cw, (size_t)ch), p->channels), 64);
        extra = extra < max_value ? extra : max_value;
    }
    if (rc != TS_OK) {
        a[0] = (uint64_t)ax << lvl;
        a[1] = (uint64_t)ay << lvl;
        a[2] = (uint64_t)(ax + req->w) << lvl;
        a[3] = (uint64_t)(ay + req->h) << lvl;
        rc = jp2_fit_area(p, lvl, a, err);
        if (rc != TS_OK)
            return rc;
        extra = 0;
    }
    /* The delivered image, and the shared memory the decoder process fills. */
    *bytes = ts_sat_add(ts_sat_add(ts_sat_mul(out, 2), extra), jp2_decode_cost(p, lvl, a));
    return TS_OK;
}

static void jp2_close(struct ts_reader *r)
{
    struct jp2_priv *p = r->priv;
    if (p) {
        pthread_mutex_destroy(&p->parts_lock);
        free(p->parts);
        free(p->shapes);
        free(p->key);
        if (p->bytes)
            ts_bytes_unref(p->bytes);
        free(p);
    }
    ts_bytes_unref(r->bytes); /* the reference ts_reader_open_bytes added */
    free(r);
}

static const struct ts_reader_ops jp2_ops = {"jp2",    jp2_read, jp2_close, NULL,
                                             jp2_cost, NULL,     NULL,      NULL};

/* TS_OK with *fmt set when the first bytes are a JP2 signature box or a J2K codestream. */
static int jp2_sniff(struct ts_bytes *bytes, OPJ_CODEC_FORMAT *fmt, struct ts_err *err)
{
    uint8_t m[12];
    ssize_t n = ts_bytes_read_at(bytes, m, sizeof m, 0);
    if (n < 0)
        return ts_fail(err, TS_EIO, "jp2: cannot read: %s", strerror(errno));
    if ((size_t)n == sizeof m && memcmp(m, jp2_box_sig, sizeof m) == 0) {
        *fmt = OPJ_CODEC_JP2;
        return TS_OK;
    }
    if ((size_t)n >= sizeof j2k_soc_siz && memcmp(m, j2k_soc_siz, sizeof j2k_soc_siz) == 0) {
        *fmt = OPJ_CODEC_J2K;
        return TS_OK;
    }
    return ts_fail(err, TS_EUNSUPPORTED, "jp2: not JPEG 2000");
}

/* Channel layout of the codestream's components, or an error for what we cannot render. */
static int jp2_channels(struct jp2_priv *p, const opj_image_t *img, uint32_t *ch, uint32_t *bits,
                        struct ts_err *err)
{
    uint32_t n = img->numcomps, use;
    if (n == 0)
        return ts_fail(err, TS_ECODEC, "jp2: no components");
    if (img->color_space == OPJ_CLRSPC_CMYK || img->color_space == OPJ_CLRSPC_EYCC)
        return ts_fail(err, TS_EUNSUPPORTED, "jp2: CMYK/e-YCC colour not supported");
    /* Alpha flags come from JP2's cdef box, which OpenJPEG applies only when decoding: take a
     * fourth component as alpha (CMYK is refused once the colour box is known). */
    use = n > 4 ? 3 : n;
    *bits = 8;
    p->sub_x = p->sub_y = 1;
    for (uint32_t c = 0; c < use; c++) {
        const opj_image_comp_t *k = &img->comps[c];
        if (k->prec == 0 || k->prec > 16)
            return ts_fail(err, TS_EUNSUPPORTED, "jp2: %u-bit samples", k->prec);
        if (k->prec > 8)
            *bits = 16;
        /* The first component carries full resolution; others may be halved (4:2:x). */
        if ((c == 0 && (k->dx != 1 || k->dy != 1)) || k->dx < 1 || k->dx > 2 || k->dy < 1 ||
            k->dy > 2)
            return ts_fail(err, TS_EUNSUPPORTED, "jp2: component %u subsampled %ux%u", c, k->dx,
                           k->dy);
        p->sub_x = k->dx > p->sub_x ? k->dx : p->sub_x;
        p->sub_y = k->dy > p->sub_y ? k->dy : p->sub_y;
    }
    *ch = use;
    return TS_OK;
}

/* Fills the pyramid from the main header: one level per resolution every component has. */
static int jp2_levels(struct jp2_priv *p, const opj_codestream_info_v2_t *ci,
                      struct ts_image_info *info, struct ts_err *err)
{
    uint32_t nres = UINT32_MAX;
    bool tiled = ci->tw * ci->th > 1;
    for (uint32_t c = 0; c < ci->nbcomps; c++) {
        const opj_tccp_info_t *t = &ci->m_default_tile_info.tccp_info[c];
        if (t->numresolutions < nres)
            nres = t->numresolutions;
    }
    if (nres == 0 || nres == UINT32_MAX)
        return ts_fail(err, TS_ECODEC, "jp2: no resolution levels");
    if (nres > TS_MAX_LEVELS)
        nres = TS_MAX_LEVELS;
    /* OpenJPEG 2.5.0 decodes HTJ2K (Part 15) code-blocks wrongly when the decode area cuts a
     * tile (its own opj_decompress -d shows the same damage): such files decode whole tiles. */
    p->whole_tiles = false;
    for (uint32_t c = 0; c < ci->nbcomps; c++)
        if (ci->m_default_tile_info.tccp_info[c].cblksty & JP2_CBLKSTY_HT)
            p->whole_tiles = true;
    p->tx0 = ci->tx0;
    p->ty0 = ci->ty0;
    p->tdx = ci->tdx ? ci->tdx : 1;
    p->tdy = ci->tdy ? ci->tdy : 1;
    info->nlevels = 0;
    for (uint32_t i = 0; i < nres; i++) {
        struct ts_level *lv = &info->levels[i];
        lv->width = jp2_ceil_shift(p->x1, i) - jp2_ceil_shift(p->x0, i);
        lv->height = jp2_ceil_shift(p->y1, i) - jp2_ceil_shift(p->y0, i);
        if (lv->width == 0 || lv->height == 0)
            break;
        /* A level must be strictly smaller than the one above it. */
        if (i > 0 && lv->width == info->levels[i - 1].width &&
            lv->height == info->levels[i - 1].height)
            break;
        lv->tile_w = tiled ? jp2_ceil_shift(ci->tdx, i) : 0;
        lv->tile_h = tiled ? jp2_ceil_shift(ci->tdy, i) : 0;
        info->nlevels = i + 1;
    }
    if (info->nlevels == 0)
        return ts_fail(err, TS_ECODEC, "jp2: empty image");
    return TS_OK;
}

static uint32_t jp2_be(const uint8_t *b, int n)
{
    uint32_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | b[i];
    return v;
}

/* Where the codestream starts: 0 for a raw one, the data of the jp2c box in a JP2 file. */
static bool jp2_codestream_at(const struct jp2_priv *p, uint64_t *at)
{
    uint64_t off = 0;
    uint8_t b[16];
    if (p->fmt != OPJ_CODEC_JP2) {
        *at = 0;
        return true;
    }
    for (int boxes = 0; boxes < 64 && off + 8 <= p->file_size; boxes++) {
        if (ts_bytes_read_at(p->bytes, b, 16, off) < 8)
            return false;
        uint64_t len = jp2_be(b, 4), head = 8;
        if (len == 1) {
            len = (uint64_t)jp2_be(b + 8, 4) << 32 | jp2_be(b + 12, 4);
            head = 16;
        } else if (len == 0) {
            len = p->file_size - off;
        }
        if (memcmp(b + 4, "jp2c", 4) == 0) {
            *at = off + head;
            return true;
        }
        if (len < head)
            return false;
        off += len;
    }
    return false;
}

/* Precinct sizes from the COD and COC markers of the main header. OpenJPEG 2.5.0 does not
 * hand them over whole (opj_get_cstr_info copies numresolutions bytes of a uint32 array), and
 * they decide how many precincts it sets up. Left at 2^15 when the header cannot be walked:
 * that is what OpenJPEG would find missing too. */
static void jp2_read_precincts(struct jp2_priv *p)
{
    uint64_t off;
    uint8_t m[4], body[48];
    if (!jp2_codestream_at(p, &off))
        return;
    off += 2; /* SOC */
    for (int markers = 0; markers < 4096; markers++) {
        if (ts_bytes_read_at(p->bytes, m, 4, off) != 4 || m[0] != 0xff || m[1] == 0x90 ||
            m[1] == 0x93)
            return; /* the first tile-part ends the main header */
        uint32_t len = jp2_be(m + 2, 2);
        if (len < 2)
            return;
        if (m[1] == 0x52 || m[1] == 0x53) {
            memset(body, 0, sizeof body);
            ssize_t got = ts_bytes_read_at(p->bytes, body,
                                           len - 2 < sizeof body ? len - 2 : sizeof body, off + 4);
            if (got < 0)
                return;
            /* COD: Scod, SGcod (4), SPcod. COC: Ccoc (1 or 2), Scoc, SPcoc. */
            uint32_t cidx = p->ncomps < 257 ? 1 : 2, first = 0, last = p->ncomps;
            const uint8_t *sp = body + 5;
            uint8_t style = body[0];
            if (m[1] == 0x53) {
                first = jp2_be(body, (int)cidx);
                last = first + 1;
                style = body[cidx];
                sp = body + cidx + 1;
            }
            uint32_t nres = (uint32_t)sp[0] + 1;
            for (uint32_t c = first; c < last && c < p->ncomps; c++)
                for (uint32_t k = 0; k < OPJ_J2K_MAXRLVLS; k++) {
                    /* SPcod/SPcoc: levels, xcb, ycb, style, transform, then one byte a level. */
                    size_t at = (size_t)(sp - body) + 5 + k;
                    bool given = (style & 1) && k < nres && at < sizeof body && at < len - 2;
                    p->shapes[c].prcw[k] = given ? body[at] & 0x0f : 15;
                    p->shapes[c].prch[k] = given ? body[at] >> 4 : 15;
                }
        }
        off += 2 + (uint64_t)len;
    }
}

/* Keeps what jp2_cost needs: the tile grid and each component's coding. */
static int jp2_keep_shapes(struct jp2_priv *p, const opj_image_t *img,
                           const opj_codestream_info_v2_t *ci, struct ts_err *err)
{
    if (ci->nbcomps != img->numcomps || !ci->m_default_tile_info.tccp_info)
        return ts_fail(err, TS_ECODEC, "jp2: component count differs in the header");
    p->shapes = calloc(img->numcomps, sizeof *p->shapes);
    if (!p->shapes)
        return ts_fail(err, TS_ENOMEM, "jp2: out of memory");
    for (uint32_t c = 0; c < img->numcomps; c++) {
        const opj_tccp_info_t *t = &ci->m_default_tile_info.tccp_info[c];
        struct jp2_shape *sh = &p->shapes[c];
        sh->dx = img->comps[c].dx ? img->comps[c].dx : 1;
        sh->dy = img->comps[c].dy ? img->comps[c].dy : 1;
        sh->nres = t->numresolutions < OPJ_J2K_MAXRLVLS ? t->numresolutions : OPJ_J2K_MAXRLVLS;
        sh->cbw = t->cblkw;
        sh->cbh = t->cblkh;
        for (uint32_t k = 0; k < OPJ_J2K_MAXRLVLS; k++)
            sh->prcw[k] = sh->prch[k] = 15; /* no precincts declared: 2^15 */
    }
    p->tw = ci->tw;
    p->th = ci->th;
    jp2_read_precincts(p);
    return TS_OK;
}

/* OpenJPEG sets up every tile's coding parameters while it reads the main header, some 12 KB
 * a tile for three components: a few hundred bytes declaring 65535 tiles cost 770 MB to open,
 * and as much again for each decode. The SIZ marker is read here first so that such a header
 * is refused before OpenJPEG spends that (it is beyond any sensible per-request budget, and
 * every request, even for image information, would pay it). */
#define JP2_MAX_HEADER_BYTES ((size_t)512 << 20)

static int jp2_header_guard(struct jp2_priv *p, struct ts_err *err)
{
    uint64_t at;
    uint8_t siz[42];
    if (ts_bytes_size(p->bytes, &p->file_size) != 0)
        return ts_fail(err, TS_EIO, "jp2: cannot size the file: %s", strerror(errno));
    /* Anything unexpected is left for OpenJPEG to report as it sees fit. */
    if (!jp2_codestream_at(p, &at) ||
        ts_bytes_read_at(p->bytes, siz, sizeof siz, at) != sizeof siz ||
        jp2_be(siz, 4) != 0xff4fff51u)
        return TS_OK;
    uint64_t w = jp2_be(siz + 8, 4), h = jp2_be(siz + 12, 4);
    uint64_t tdx = jp2_be(siz + 24, 4), tdy = jp2_be(siz + 28, 4);
    uint64_t tx0 = jp2_be(siz + 32, 4), ty0 = jp2_be(siz + 36, 4), ncomps = jp2_be(siz + 40, 2);
    if (tdx == 0 || tdy == 0 || w <= tx0 || h <= ty0)
        return TS_OK;
    uint64_t tiles = ((w - tx0 + tdx - 1) / tdx) * ((h - ty0 + tdy - 1) / tdy);
    size_t need = ts_sat_mul(tiles, JP2_COST_TILE + JP2_COST_TILE_COMP * ncomps);
    if (need > JP2_MAX_HEADER_BYTES)
        return ts_fail(err, TS_ETOOLARGE,
                       "jp2: %llu tiles of %llu components: the header alone needs %zu MB",
                       (unsigned long long)tiles, (unsigned long long)ncomps, need >> 20);
    return TS_OK;
}

static int jp2_inspect(struct ts_reader *r, struct ts_err *err)
{
    struct jp2_priv *p = r->priv;
    struct jp2_session s;
    opj_codestream_info_v2_t *ci;
    int rc = jp2_session_begin(p, 0, 0, 0, NULL, &s, err);
    if (rc != TS_OK)
        return rc;
    if (s.image->x1 <= s.image->x0 || s.image->y1 <= s.image->y0 || s.image->x1 > INT32_MAX ||
        s.image->y1 > INT32_MAX) {
        jp2_session_end(&s);
        return ts_fail(err, TS_ECODEC, "jp2: bad image area");
    }
    p->x0 = s.image->x0;
    p->y0 = s.image->y0;
    p->x1 = s.image->x1;
    p->y1 = s.image->y1;
    p->ncomps = s.image->numcomps;
    rc = jp2_channels(p, s.image, &r->info.channels, &r->info.bits_per_sample, err);
    p->channels = r->info.channels;
    if (rc == TS_OK) {
        ci = opj_get_cstr_info(s.codec);
        if (!ci)
            rc = ts_fail(err, TS_ECODEC, "jp2: no codestream info");
        else
            rc = jp2_levels(p, ci, &r->info, err);
        if (rc == TS_OK)
            rc = jp2_keep_shapes(p, s.image, ci, err);
        opj_destroy_cstr_info(&ci);
    }
    jp2_session_end(&s);
    if (rc == TS_OK) {
        r->info.width = r->info.levels[0].width;
        r->info.height = r->info.levels[0].height;
        r->info.format = p->fmt == OPJ_CODEC_JP2 ? "jp2" : "j2k";
    }
    return rc;
}

/* The file's identity for cache keys: a rewritten file (new size or mtime) or another file
 * moved into its place (new inode) never meets the blocks decoded from the old one. */
static int jp2_identity(struct jp2_priv *p, struct ts_err *err)
{
    struct ts_buf b = {0};
    int rc = ts_bytes_identity(p->bytes, &b);
    if (rc == TS_EIO)
        return ts_fail(err, TS_EIO, "jp2: cannot stat the file: %s", strerror(errno));
    if (rc != TS_OK || ts_buf_append(&b, ":", 2) != TS_OK) {
        ts_buf_free(&b);
        return ts_fail(err, TS_ENOMEM, "jp2: out of memory");
    }
    p->key = (char *)b.data;
    return TS_OK;
}

int ts_jp2_open(struct ts_bytes *bytes, const struct ts_block_store *blocks, struct ts_reader **out,
                struct ts_err *err)
{
    struct ts_reader *r;
    struct jp2_priv *p;
    OPJ_CODEC_FORMAT fmt = OPJ_CODEC_UNKNOWN;
    long cores;
    int rc;

    *out = NULL;
    rc = jp2_sniff(bytes, &fmt, err);
    if (rc != TS_OK) {
        ts_bytes_unref(bytes);
        return rc;
    }
    r = calloc(1, sizeof *r);
    p = calloc(1, sizeof *p);
    if (!r || !p) {
        free(p);
        free(r);
        ts_bytes_unref(bytes);
        return ts_fail(err, TS_ENOMEM, "jp2: out of memory");
    }
    p->bytes = bytes;
    p->fmt = fmt;
    pthread_mutex_init(&p->parts_lock, NULL);
    /* TESSERA_JP2_WHOLE=1, read when a reader opens, hands its decodes the whole file as before
     * (no tile-part index): to compare, and for the tests that check both give the same pixels. */
    p->parts_done = getenv("TESSERA_JP2_WHOLE") != NULL;
    if (blocks)
        p->blocks = *blocks;
    cores = (long)ts_cpu_count();
    p->threads = cores > JP2_MAX_THREADS ? JP2_MAX_THREADS : (int)cores;
    r->ops = &jp2_ops;
    r->priv = p;
    rc = jp2_identity(p, err);
    if (rc == TS_OK)
        rc = jp2_header_guard(p, err);
    if (rc == TS_OK)
        rc = jp2_inspect(r, err);
    if (rc != TS_OK) {
        jp2_close(r);
        return rc;
    }
    *out = r;
    return TS_OK;
}
