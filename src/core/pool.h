/* Open readers kept between requests, lent out as leases that end in exactly one place. */
#ifndef TESSERA_POOL_H
#define TESSERA_POOL_H

#include "image/reader.h"
#include "image/source.h"
#include "util/status.h"

struct ts_pool;

/* A borrowed reader: ended by ts_lease_end, whatever happened to the request. */
struct ts_lease {
    struct ts_reader *reader;
    struct ts_pool *pool;
    int slot; /* -1 when the reader is not (yet) in the pool */
    struct ts_pool_identity {
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtime;
        struct timespec ctime;
        uint32_t page;
    } id;
};

struct ts_pool_stats {
    unsigned open;  /* readers open through the pool now: kept idle, lent out, or passing through */
    unsigned kept;  /* of them, held in the pool's slots */
    unsigned lent;  /* of those, lent to a request now */
    unsigned slots; /* the pool's size */
};

/* size 0: no pool, every lease opens and closes its own reader. */
int ts_pool_create(unsigned size, struct ts_pool **out);
void ts_pool_destroy(struct ts_pool *pool);

/* Lends the idle reader open on this very file (device, inode, size, mtime, page), or opens
 * one from src->bytes or else src->fd (which the reader then owns; it becomes NULL or -1).
 * TS_DECLINED when neither is possible (no idle reader, nothing open): open the file and ask
 * again. blocks: where JPEG 2000 readers keep decoded blocks (may be NULL). again: the reopen
 * state an earlier reader of this very file left (see struct ts_reopen), or NULL. */
int ts_lease_begin(struct ts_pool *pool, struct source_file *src,
                   const struct ts_block_store *blocks, const struct ts_reopen *again,
                   struct ts_lease *lease, struct ts_err *err);

/* Counts under the pool's lock; all zero when there is no pool. */
void ts_pool_stats(struct ts_pool *pool, struct ts_pool_stats *out);

/* Ends a lease: the reader goes back to the pool, or is closed when rc says it failed half-way
 * (TS_ECODEC, TS_EIO: a codec that failed is not trusted again) or there is no room. */
void ts_lease_end(struct ts_lease *lease, int rc);

/* Closes every idle reader open on the file (device, inode; any size, mtime or page) and marks
 * those lent out to be closed when they come back; returns how many it found. */
unsigned ts_pool_purge(struct ts_pool *pool, dev_t dev, ino_t ino);

#endif
