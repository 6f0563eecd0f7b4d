/* Where a reader's bytes come from: a local file (pread) or a remote object (ranges through a
 * block cache). Readers read only through this, so one reader path serves both. */
#ifndef TESSERA_BYTES_H
#define TESSERA_BYTES_H

#include "image/reader.h"
#include "util/buf.h"
#include "util/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ts_bytes;

/* Fetches exactly len bytes of a remote object at off into buf (the caller never asks past
 * the object's size). A status and a reason on failure, including a short answer. Called
 * from any thread, several at once. */
typedef int (*ts_bytes_fetch_fn)(void *obj, void *buf, size_t len, uint64_t off,
                                 struct ts_err *err);

struct ts_bytes_remote {
    ts_bytes_fetch_fn fetch;
    void (*release)(void *obj); /* called once, when the last reference goes */
    void *obj;
    uint64_t size;
    /* Names this version of the object (its address and validator): blocks cached under it
     * are shared by every request for that version, and never meet another version's. */
    const char *identity;
    /* Where aligned blocks are kept between requests (copied; NULL or max_value < block:
     * every read fetches what it asks for). */
    const struct ts_block_store *blocks;
    size_t block; /* block size: a power of two, 4 KB to 16 MB */
};

/* A byte source over an open file; takes fd (closed on failure too). TS_ENOMEM. */
int ts_bytes_from_fd(int fd, struct ts_bytes **out);
/* A byte source over a remote object; r->release(r->obj) is called on failure too. */
int ts_bytes_from_remote(const struct ts_bytes_remote *r, struct ts_bytes **out);

struct ts_bytes *ts_bytes_ref(struct ts_bytes *b);
void ts_bytes_unref(struct ts_bytes *b); /* NULL is fine */

/* Up to len bytes at off (fewer only at the end); -1 with errno set on failure (EIO for a
 * remote failure, whose status ts_bytes_take_error hands over). */
ssize_t ts_bytes_read_at(struct ts_bytes *b, void *buf, size_t len, uint64_t off);

/* The current size (a file's may change; an object's is the one it was opened with). -1 with
 * errno set on failure. */
int ts_bytes_size(struct ts_bytes *b, uint64_t *size);

/* The file descriptor of a local source, -1 for a remote one. */
int ts_bytes_fd(const struct ts_bytes *b);

/* Appends what names this version of the bytes: device, inode, size, mtime and ctime of a file,
 * the identity of an object. */
int ts_bytes_identity(struct ts_bytes *b, struct ts_buf *out);

/* The reader reads from the top down to the end (a plain JPEG, PNG, WebP): a remote miss then
 * fetches ahead in one request instead of a block at a time, which stages the object whole in
 * the block cache. Nothing for a file. */
void ts_bytes_sequential(struct ts_bytes *b);

/* The last remote failure since the previous call (true), with its status and reason, which
 * readers can only report as an I/O error: the caller turns it back into 502/504/404. */
bool ts_bytes_take_error(struct ts_bytes *b, int *status, struct ts_err *err);

/* Counters of one byte source since it was made (remote ones; zero for a file). */
struct ts_bytes_counts {
    uint64_t fetches;      /* requests to the remote */
    uint64_t bytes;        /* bytes they brought */
    uint64_t block_hits;   /* blocks found in the block cache */
    uint64_t block_misses; /* blocks that had to be fetched */
};
void ts_bytes_counts(struct ts_bytes *b, struct ts_bytes_counts *out);

/* Opens page `page` of b, choosing the reader from its first bytes (see ts_reader_open_fd);
 * takes the reference b (dropped on failure too). again: this file's reopen state from an
 * earlier open (see struct ts_reopen), or NULL. */
int ts_reader_open_bytes(struct ts_bytes *b, uint32_t page, const struct ts_block_store *blocks,
                         const struct ts_reopen *again, struct ts_reader **out, struct ts_err *err);

/* The byte source a reader was opened on (the reader's reference: valid while it is open). */
struct ts_bytes *ts_reader_bytes(const struct ts_reader *r);

/* Per-format openers over a byte source, with ts_reader_open_bytes's ownership of b. */
int ts_tiff_open(struct ts_bytes *b, uint32_t page, const struct ts_reopen *again,
                 struct ts_reader **out, struct ts_err *err);
int ts_jpeg_open(struct ts_bytes *b, struct ts_reader **out, struct ts_err *err);
int ts_png_open(struct ts_bytes *b, struct ts_reader **out, struct ts_err *err);
int ts_jp2_open(struct ts_bytes *b, const struct ts_block_store *blocks, struct ts_reader **out,
                struct ts_err *err);
int ts_webp_open(struct ts_bytes *b, struct ts_reader **out, struct ts_err *err);

#endif
