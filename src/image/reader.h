/* The reader interface: every source format opens to this, and nothing above it knows the format.
 */
#ifndef TESSERA_READER_H
#define TESSERA_READER_H

#include "image/image.h"
#include "util/buf.h"
#include "util/cancel.h"
#include "util/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TS_MAX_LEVELS 32

/* One resolution of the pyramid, in its own pixel coordinates. */
struct ts_level {
    uint32_t width;
    uint32_t height;
    uint32_t tile_w; /* native tile size at this level; 0 when striped/untiled */
    uint32_t tile_h;
};

struct ts_image_info {
    uint32_t width; /* full resolution (== levels[0]) */
    uint32_t height;
    uint32_t channels;        /* 1..4 as delivered by read (see image.h) */
    uint32_t bits_per_sample; /* in the source: 8 or 16 (reads are always 8-bit) */
    uint32_t nlevels;         /* >= 1; levels[0] is full resolution, then strictly smaller */
    struct ts_level levels[TS_MAX_LEVELS];
    const char *format; /* "tiff", "jpeg", "png", ... (static string) */
    /* What iipsrv's OBJ command reports, from the source's tags where the format has them. */
    float dpi_x, dpi_y; /* physical resolution as stored; 0 = not given */
    uint32_t dpi_unit;  /* 0 = unknown, 1 = per inch, 2 = per centimetre */
    bool has_sample_range;
    double sample_min[4], sample_max[4]; /* per channel, when has_sample_range */
    /* Text tags as "name\0value\0" pairs (creator, rights, date, description, title, pagename,
     * software, make, model, xmp, scale), or NULL. Borrowed: from the reader, or from the info
     * cache's copy, for as long as the one who filled this struct says; never cached as is. */
    const char *meta;
    size_t meta_len;
    /* Opened at page 0: how many pages the file holds (a multi-page TIFF's top-level images
     * that are not reduced copies, counted as page numbers count them); 0 or 1 = one. */
    uint32_t npages;
};

/* The value of a text tag in info->meta, or NULL. */
const char *ts_image_meta(const struct ts_image_info *info, const char *name);

/* A region of one level to read. The reader may deliver a smaller image (for example through
 * JPEG DCT scaling) as long as it is at least min_w x min_h; otherwise it delivers w x h. */
struct ts_read_req {
    uint32_t level;
    uint32_t x, y, w, h; /* in that level's pixels, already clipped to it */
    uint32_t min_w, min_h;
    /* Checked in every decode loop (rows, tiles, strips): a read stops with its status when
     * the request is canceled or past its deadline. NULL = never. */
    struct ts_cancel *cancel;
    /* Set on every band of a banded render but the last: the next read has the same level,
     * columns and minimum width, and starts at row next_y (y <= next_y <= y + h). A reader
     * that decodes from the top may keep its decoder, and its rows from next_y down, for it;
     * without `more` it keeps nothing. */
    bool more;
    uint32_t next_y;
    /* Threads the read may use (0 or 1: the calling one); the pixels are the same. */
    unsigned threads;
    /* JPEG 2000: decode only the first `layers` quality layers (0 = all); others ignore it. */
    uint32_t layers;
};

struct ts_reader;

/* One page of a file of several (a multi-page TIFF), as a manifest lists it. */
struct ts_page {
    uint32_t number; /* the page as ts_reader_open_fd numbers it (0-based) */
    uint32_t width, height;
};

struct ts_reader_ops {
    const char *name;
    int (*read)(struct ts_reader *r, const struct ts_read_req *req, struct ts_image *out,
                struct ts_err *err);
    void (*close)(struct ts_reader *r);
    /* Optional (NULL when the format has no stored tiles to hand out): appends tile (col, row)
     * of a level as one complete JPEG stream, exactly as stored (tables spliced in), and sets
     * *w x *h to the stream's coded size (the full tile, padding included). TS_DECLINED when
     * the level's tiles are not plain 8-bit JPEG in RGB, YCbCr or gray. */
    int (*raw_tile)(struct ts_reader *r, uint32_t level, uint32_t col, uint32_t row,
                    struct ts_buf *out, uint32_t *w, uint32_t *h, struct ts_err *err);
    /* Sets *bytes to the peak memory a read of req (already checked against the level) will
     * hold: the codec's own buffers as well as the delivered image, worked out from the header
     * alone, before anything is decoded, saturating at SIZE_MAX. TS_ETOOLARGE for a read the
     * reader would refuse anyway for its size. */
    int (*cost)(struct ts_reader *r, const struct ts_read_req *req, size_t *bytes,
                struct ts_err *err);
    /* Optional (NULL for formats of one image): for a reader opened at page 0, the file's
     * pages in order, in one pass over the file, at most max of them into out; *n = how many. */
    int (*pages)(struct ts_reader *r, struct ts_page *out, uint32_t max, uint32_t *n,
                 struct ts_err *err);
    /* Optional: appends to out what this reader learnt while opening (see struct ts_reopen),
     * or returns TS_DECLINED when a reopen would gain nothing from it. */
    int (*reopen_state)(struct ts_reader *r, struct ts_buf *out);
    /* Optional: the region as a JPEG stores it (struct ts_ycc: req->w x req->h of luma, with
     * req->x and req->y even so that chroma samples pair the luma ones as stored), at the
     * level's own size. TS_DECLINED, having delivered nothing, when the level is not stored
     * that way or the reader would rather deliver RGB; the caller then reads RGB. */
    int (*read_ycc)(struct ts_reader *r, const struct ts_read_req *req, struct ts_ycc *out,
                    struct ts_err *err);
};

/* What a reader learnt opening a file that lets it open the very same file again with less
 * work: for TIFF, every level's directory offset and layout, the tags, the profile and the
 * page count, so that a reopen reads the header and then only the directory a read needs,
 * where discovery walks every directory. Opaque bytes from ts_reader_reopen_state, which the
 * app keeps beside the image information under the file's identity (device, inode, size,
 * times, page): handed back for that file only. A reader checks what it can (format, version,
 * page, file size, offsets inside the file) and discovers as usual when they do not match. */
struct ts_reopen {
    const void *data;
    size_t len;
};

/* Appends r's reopen state to out; TS_DECLINED when its format keeps none. */
int ts_reader_reopen_state(struct ts_reader *r, struct ts_buf *out);

struct ts_bytes;

struct ts_reader {
    const struct ts_reader_ops *ops;
    struct ts_image_info info;
    void *priv;
    struct ts_bytes *bytes; /* what it was opened on (a reference ts_reader_close drops) */
};

/* Where a reader may keep decoded data between requests (the JPEG 2000 block cache). The app
 * owns it; readers only get and put through it. NULL means no store. */
struct ts_block_store {
    void *ctx;
    /* On a hit appends the value to out and returns true. */
    bool (*get)(void *ctx, const char *key, struct ts_buf *out);
    void (*put)(void *ctx, const char *key, const void *value, size_t len);
    size_t max_value; /* the largest value worth offering (0 = store nothing) */
};

/* Opens page `page` (0-based; only TIFF has pages beyond 0, others give TS_ENOTFOUND for
 * page > 0) of the open regular file fd, choosing the reader from its first bytes read with
 * pread (never by name). Takes ownership of fd: the reader closes it, and so does a failed
 * open. blocks may be NULL. TS_ENOTFOUND when fd is not a regular file, TS_EUNSUPPORTED for
 * unknown formats (an empty file included), TS_ECODEC for corrupt ones, TS_EIO when reading
 * fails. Readers read only through fd (pread, never the file offset, never mmap), so the file
 * may be renamed or unlinked once open. */
int ts_reader_open_fd(int fd, uint32_t page, const struct ts_block_store *blocks,
                      struct ts_reader **out, struct ts_err *err);

/* Conveniences for tests, fuzzing, tools and benchmarks: open path (O_RDONLY | O_CLOEXEC) and
 * ts_reader_open_fd it without a block store. TS_ENOTFOUND if the file is absent. */
int ts_reader_open(const char *path, struct ts_reader **out, struct ts_err *err);
int ts_reader_open_page(const char *path, uint32_t page, struct ts_reader **out,
                        struct ts_err *err);

/* The reader's read_ycc (see struct ts_reader_ops), or TS_DECLINED when it has none. */
int ts_reader_read_ycc(struct ts_reader *r, const struct ts_read_req *req, struct ts_ycc *out,
                       struct ts_err *err);
int ts_reader_read(struct ts_reader *r, const struct ts_read_req *req, struct ts_image *out,
                   struct ts_err *err);

/* The pages of the file r was opened on (at page 0), at most max into out, *n of them: the
 * reader's pages op, or the one image r reads (max >= 1). */
int ts_reader_pages(struct ts_reader *r, struct ts_page *out, uint32_t max, uint32_t *n,
                    struct ts_err *err);

/* Rows decoded by the readers that decode from the top down (JPEG, PNG, striped TIFF), in the
 * source's full-resolution rows, summed over every reader in the process since it started:
 * tests read it to see that a banded render decodes each row about once. Readers add to it
 * with ts_reader_count_rows, once per read. */
uint64_t ts_reader_rows_decoded(void);
void ts_reader_count_rows(uint64_t rows);
void ts_reader_close(struct ts_reader *r);

/* The peak memory ts_reader_read of req would need (see the cost op), so that a request can be
 * refused before a tiny file makes a codec spend gigabytes. Readers without the op are taken
 * to need the delivered image at four bytes a pixel. Argument errors as ts_reader_read. */
int ts_reader_cost(struct ts_reader *r, const struct ts_read_req *req, size_t *bytes,
                   struct ts_err *err);

/* Per-format openers, with ts_reader_open_fd's ownership of fd (closed on failure too); each
 * returns TS_EUNSUPPORTED quickly if the first bytes are not its format. */
int ts_tiff_open_fd(int fd, uint32_t page, struct ts_reader **out, struct ts_err *err);
int ts_jpeg_open_fd(int fd, struct ts_reader **out, struct ts_err *err);
int ts_png_open_fd(int fd, struct ts_reader **out, struct ts_err *err);
/* JP2 (00 00 00 0C 6A 50 20 20 0D 0A 87 0A) or raw J2K/HTJ2K codestream (FF 4F FF 51). Decoded
 * blocks go to and come from blocks (copied; its ctx must outlive the reader), or nowhere. */
int ts_jp2_open_fd(int fd, const struct ts_block_store *blocks, struct ts_reader **out,
                   struct ts_err *err);
/* RIFF container with form type WEBP ("RIFF" 4 bytes "WEBP"). */
int ts_webp_open_fd(int fd, struct ts_reader **out, struct ts_err *err);

#endif
