/* Opens an image from its descriptor by sniffing its first bytes, and checks every read request
 * before a codec sees it. */
#include "image/reader.h"
#include "image/bytes.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum sniffed { SNIFF_UNKNOWN, SNIFF_TIFF, SNIFF_JPEG, SNIFF_PNG, SNIFF_JP2, SNIFF_WEBP };

static enum sniffed reader_sniff(const uint8_t *m, size_t n)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    if (n >= 4 && ((m[0] == 'I' && m[1] == 'I' && (m[2] == 42 || m[2] == 43) && m[3] == 0) ||
                   (m[0] == 'M' && m[1] == 'M' && m[2] == 0 && (m[3] == 42 || m[3] == 43))))
        return SNIFF_TIFF;
    if (n >= 3 && m[0] == 0xff && m[1] == 0xd8 && m[2] == 0xff)
        return SNIFF_JPEG;
    if (n >= 8 && memcmp(m, png_sig, 8) == 0)
        return SNIFF_PNG;
    /* JP2 signature box, or a raw JPEG 2000 / HTJ2K codestream (SOC then SIZ). */
    static const uint8_t jp2_sig[12] = {0, 0, 0, 0x0c, 'j', 'P', ' ', ' ', 0x0d, 0x0a, 0x87, 0x0a};
    if ((n >= 12 && memcmp(m, jp2_sig, 12) == 0) ||
        (n >= 4 && m[0] == 0xff && m[1] == 0x4f && m[2] == 0xff && m[3] == 0x51))
        return SNIFF_JP2;
    if (n >= 12 && memcmp(m, "RIFF", 4) == 0 && memcmp(m + 8, "WEBP", 4) == 0)
        return SNIFF_WEBP;
    return SNIFF_UNKNOWN;
}

/* Every opener ends here: the reader keeps a reference of its own to its source (taken before
 * the format's opener ran, which may drop its own once it has read what it needs), for whoever
 * must ask it what went wrong. */
static int opened(struct ts_bytes *keep, int rc, struct ts_reader **out)
{
    if (rc == TS_OK)
        (*out)->bytes = keep;
    else
        ts_bytes_unref(keep);
    return rc;
}

int ts_reader_open_bytes(struct ts_bytes *b, uint32_t page, const struct ts_block_store *blocks,
                         const struct ts_reopen *again, struct ts_reader **out, struct ts_err *err)
{
    uint8_t magic[12];
    ssize_t n;
    enum sniffed kind;

    *out = NULL;
    n = ts_bytes_read_at(b, magic, sizeof magic, 0);
    if (n < 0) {
        int e = errno;
        ts_bytes_unref(b);
        return ts_fail(err, TS_EIO, "cannot read image: %s", strerror(e));
    }
    kind = reader_sniff(magic, (size_t)n);
    if (page > 0 && kind != SNIFF_TIFF) {
        ts_bytes_unref(b);
        return ts_fail(err, TS_ENOTFOUND, "only TIFF images have pages");
    }
    /* These decode from the top down: a remote one is fetched ahead, in long runs. */
    if (kind == SNIFF_JPEG || kind == SNIFF_PNG || kind == SNIFF_WEBP)
        ts_bytes_sequential(b);
    struct ts_bytes *keep = kind != SNIFF_UNKNOWN ? ts_bytes_ref(b) : NULL;
    switch (kind) {
    case SNIFF_TIFF: return opened(keep, ts_tiff_open(b, page, again, out, err), out);
    case SNIFF_JPEG: return opened(keep, ts_jpeg_open(b, out, err), out);
    case SNIFF_PNG: return opened(keep, ts_png_open(b, out, err), out);
    case SNIFF_JP2: return opened(keep, ts_jp2_open(b, blocks, out, err), out);
    case SNIFF_WEBP: return opened(keep, ts_webp_open(b, out, err), out);
    default: break;
    }
    ts_bytes_unref(b);
    if (n == 0)
        return ts_fail(err, TS_EUNSUPPORTED, "empty file");
    return ts_fail(err, TS_EUNSUPPORTED, "unsupported image format");
}

struct ts_bytes *ts_reader_bytes(const struct ts_reader *r)
{
    return r ? r->bytes : NULL;
}

int ts_reader_open_fd(int fd, uint32_t page, const struct ts_block_store *blocks,
                      struct ts_reader **out, struct ts_err *err)
{
    struct stat st;
    struct ts_bytes *b;

    *out = NULL;
    if (fd < 0)
        return ts_fail(err, TS_EINVAL, "reader open: no file descriptor");
    /* A directory opens fine read-only on Linux; it is still not an image. */
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ts_fail(err, TS_ENOTFOUND, "not a regular file");
    }
    if (ts_bytes_from_fd(fd, &b) != TS_OK)
        return ts_fail(err, TS_ENOMEM, "out of memory");
    return ts_reader_open_bytes(b, page, blocks, NULL, out, err);
}

/* The per-format openers on a descriptor (tests, tools): the same readers over a file. */
#define FD_OPENER(open_call)                                                                       \
    struct ts_bytes *b;                                                                            \
    *out = NULL;                                                                                   \
    if (ts_bytes_from_fd(fd, &b) != TS_OK)                                                         \
        return ts_fail(err, TS_ENOMEM, "out of memory");                                           \
    struct ts_bytes *keep = ts_bytes_ref(b);                                                       \
    return opened(keep, open_call, out)

int ts_tiff_open_fd(int fd, uint32_t page, struct ts_reader **out, struct ts_err *err)
{
    FD_OPENER(ts_tiff_open(b, page, NULL, out, err));
}

int ts_jpeg_open_fd(int fd, struct ts_reader **out, struct ts_err *err)
{
    FD_OPENER(ts_jpeg_open(b, out, err));
}

int ts_png_open_fd(int fd, struct ts_reader **out, struct ts_err *err)
{
    FD_OPENER(ts_png_open(b, out, err));
}

int ts_jp2_open_fd(int fd, const struct ts_block_store *blocks, struct ts_reader **out,
                   struct ts_err *err)
{
    FD_OPENER(ts_jp2_open(b, blocks, out, err));
}

int ts_webp_open_fd(int fd, struct ts_reader **out, struct ts_err *err)
{
    FD_OPENER(ts_webp_open(b, out, err));
}

int ts_reader_open_page(const char *path, uint32_t page, struct ts_reader **out, struct ts_err *err)
{
    int fd;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return ts_fail(err, TS_ENOTFOUND, "no such image");
        return ts_fail(err, TS_EIO, "cannot open image: %s", strerror(errno));
    }
    return ts_reader_open_fd(fd, page, NULL, out, err);
}

int ts_reader_open(const char *path, struct ts_reader **out, struct ts_err *err)
{
    return ts_reader_open_page(path, 0, out, err);
}

/* The checks every read request passes before a codec sees it. */
static int reader_check_req(const struct ts_reader *r, const struct ts_read_req *req,
                            struct ts_err *err)
{
    const struct ts_level *lv;

    if (req->level >= r->info.nlevels)
        return ts_fail(err, TS_EINVAL, "level %u out of range (%u levels)", req->level,
                       r->info.nlevels);
    lv = &r->info.levels[req->level];
    /* Subtraction form so that x + w cannot wrap. */
    if (req->w == 0 || req->h == 0 || req->x >= lv->width || req->y >= lv->height ||
        req->w > lv->width - req->x || req->h > lv->height - req->y)
        return ts_fail(err, TS_EINVAL, "region %u,%u,%u,%u outside level %u (%ux%u)", req->x,
                       req->y, req->w, req->h, req->level, lv->width, lv->height);
    return TS_OK;
}

int ts_reader_read(struct ts_reader *r, const struct ts_read_req *req, struct ts_image *out,
                   struct ts_err *err)
{
    if (!r || !req || !out)
        return ts_fail(err, TS_EINVAL, "reader read: missing argument");
    out->data = NULL;
    int rc = reader_check_req(r, req, err);
    rc = rc ? rc : ts_cancel_check(req->cancel, err);
    return rc ? rc : r->ops->read(r, req, out, err);
}

int ts_reader_read_ycc(struct ts_reader *r, const struct ts_read_req *req, struct ts_ycc *out,
                       struct ts_err *err)
{
    if (!r || !req || !out)
        return ts_fail(err, TS_EINVAL, "reader read: missing argument");
    out->y.data = out->cb.data = out->cr.data = NULL;
    if (!r->ops->read_ycc || req->x % 2 || req->y % 2)
        return TS_DECLINED;
    int rc = reader_check_req(r, req, err);
    rc = rc ? rc : ts_cancel_check(req->cancel, err);
    return rc ? rc : r->ops->read_ycc(r, req, out, err);
}

int ts_reader_pages(struct ts_reader *r, struct ts_page *out, uint32_t max, uint32_t *n,
                    struct ts_err *err)
{
    *n = 0;
    if (!r || !out || max == 0)
        return ts_fail(err, TS_EINVAL, "reader pages: missing argument");
    if (r->ops && r->ops->pages)
        return r->ops->pages(r, out, max, n, err);
    out[0] = (struct ts_page){0, r->info.width, r->info.height};
    *n = 1;
    return TS_OK;
}

int ts_reader_reopen_state(struct ts_reader *r, struct ts_buf *out)
{
    if (!r || !out || !r->ops || !r->ops->reopen_state)
        return TS_DECLINED;
    return r->ops->reopen_state(r, out);
}

int ts_reader_cost(struct ts_reader *r, const struct ts_read_req *req, size_t *bytes,
                   struct ts_err *err)
{
    if (!r || !req || !bytes)
        return ts_fail(err, TS_EINVAL, "reader cost: missing argument");
    *bytes = SIZE_MAX;
    int rc = reader_check_req(r, req, err);
    if (rc)
        return rc;
    if (r->ops && r->ops->cost)
        return r->ops->cost(r, req, bytes, err);
    if (!ts_mul3_size(req->w, req->h, 4, bytes))
        *bytes = SIZE_MAX;
    return TS_OK;
}

static _Atomic uint64_t rows_decoded;

uint64_t ts_reader_rows_decoded(void)
{
    return atomic_load_explicit(&rows_decoded, memory_order_relaxed);
}

void ts_reader_count_rows(uint64_t rows)
{
    atomic_fetch_add_explicit(&rows_decoded, rows, memory_order_relaxed);
}

void ts_reader_close(struct ts_reader *r)
{
    if (r && r->ops && r->ops->close)
        r->ops->close(r);
}

const char *ts_image_meta(const struct ts_image_info *info, const char *name)
{
    const char *p = info->meta, *end = info->meta ? info->meta + info->meta_len : NULL;
    while (p && p < end) {
        const char *value = memchr(p, '\0', (size_t)(end - p));
        if (!value++ || value >= end)
            return NULL;
        const char *next = memchr(value, '\0', (size_t)(end - value));
        if (!next)
            return NULL;
        if (!strcmp(p, name))
            return value;
        p = next + 1;
    }
    return NULL;
}
