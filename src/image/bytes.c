/* Byte sources: pread on a file, or aligned blocks of a remote object through a block store. */
#include "image/bytes.h"
#include "image/fdread.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The most one remote request brings: a run of missing blocks longer than this is split, so
 * a huge read never holds one huge buffer. */
#define BYTES_MAX_RUN ((size_t)8 << 20)
/* How far a sequential reader's miss fetches ahead. */
#define BYTES_SEQ_RUN ((size_t)4 << 20)

struct ts_bytes {
    atomic_uint refs;
    int fd; /* a file, or -1 */
    struct ts_bytes_remote remote;
    char *identity;
    atomic_bool sequential;
    pthread_mutex_t lock; /* the last block, the error and the counts */
    uint8_t *last;        /* the block read last (remote with a store), or NULL */
    uint64_t last_index;
    size_t last_len;
    bool failed;
    int fail_status;
    struct ts_err fail;
    struct ts_bytes_counts counts;
};

static struct ts_bytes *bytes_new(void)
{
    struct ts_bytes *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    atomic_init(&b->refs, 1);
    atomic_init(&b->sequential, false);
    b->fd = -1;
    pthread_mutex_init(&b->lock, NULL);
    return b;
}

int ts_bytes_from_fd(int fd, struct ts_bytes **out)
{
    *out = NULL;
    struct ts_bytes *b = fd >= 0 ? bytes_new() : NULL;
    if (!b) {
        if (fd >= 0)
            close(fd);
        return fd >= 0 ? TS_ENOMEM : TS_EINVAL;
    }
    b->fd = fd;
    *out = b;
    return TS_OK;
}

static bool power_of_two(size_t n)
{
    return n && !(n & (n - 1));
}

int ts_bytes_from_remote(const struct ts_bytes_remote *r, struct ts_bytes **out)
{
    *out = NULL;
    if (!r->fetch || !power_of_two(r->block) || r->block < 4096 || r->block > ((size_t)16 << 20)) {
        if (r->release)
            r->release(r->obj);
        return TS_EINVAL;
    }
    struct ts_bytes *b = bytes_new();
    char *id = strdup(r->identity ? r->identity : "");
    if (!b || !id) {
        free(b);
        free(id);
        if (r->release)
            r->release(r->obj);
        return TS_ENOMEM;
    }
    b->remote = *r;
    b->identity = id;
    b->remote.identity = id;
    if (!r->blocks || r->blocks->max_value < r->block || !r->blocks->get || !r->blocks->put)
        b->remote.blocks = NULL;
    *out = b;
    return TS_OK;
}

struct ts_bytes *ts_bytes_ref(struct ts_bytes *b)
{
    if (b)
        atomic_fetch_add(&b->refs, 1);
    return b;
}

void ts_bytes_unref(struct ts_bytes *b)
{
    if (!b || atomic_fetch_sub(&b->refs, 1) != 1)
        return;
    if (b->fd >= 0)
        close(b->fd);
    if (b->remote.release)
        b->remote.release(b->remote.obj);
    pthread_mutex_destroy(&b->lock);
    free(b->last);
    free(b->identity);
    free(b);
}

int ts_bytes_fd(const struct ts_bytes *b)
{
    return b ? b->fd : -1;
}

void ts_bytes_sequential(struct ts_bytes *b)
{
    atomic_store(&b->sequential, true);
}

int ts_bytes_size(struct ts_bytes *b, uint64_t *size)
{
    if (b->fd >= 0)
        return ts_fd_size(b->fd, size);
    *size = b->remote.size;
    return 0;
}

int ts_bytes_identity(struct ts_bytes *b, struct ts_buf *out)
{
    if (b->fd < 0)
        return ts_buf_append_str(out, b->identity);
    struct stat st;
    if (fstat(b->fd, &st) != 0)
        return TS_EIO;
    /* The file, not its name: hard links and aliases of one file share what is kept. */
    return ts_buf_appendf(
        out, "%llu:%llu:%lld:%lld.%09ld:%lld.%09ld", (unsigned long long)st.st_dev,
        (unsigned long long)st.st_ino, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
        (long)st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, (long)st.st_ctim.tv_nsec);
}

bool ts_bytes_take_error(struct ts_bytes *b, int *status, struct ts_err *err)
{
    if (!b)
        return false;
    pthread_mutex_lock(&b->lock);
    bool failed = b->failed;
    if (failed) {
        *status = b->fail_status;
        if (err)
            *err = b->fail;
        b->failed = false;
    }
    pthread_mutex_unlock(&b->lock);
    return failed;
}

void ts_bytes_counts(struct ts_bytes *b, struct ts_bytes_counts *out)
{
    pthread_mutex_lock(&b->lock);
    *out = b->counts;
    pthread_mutex_unlock(&b->lock);
}

/* ---- remote reads ---- */

static int fetch(struct ts_bytes *b, void *buf, size_t len, uint64_t off)
{
    struct ts_err err = {0};
    int rc = b->remote.fetch(b->remote.obj, buf, len, off, &err);
    pthread_mutex_lock(&b->lock);
    b->counts.fetches++;
    if (rc == TS_OK) {
        b->counts.bytes += len;
    } else {
        b->failed = true;
        b->fail_status = rc;
        b->fail = err;
    }
    pthread_mutex_unlock(&b->lock);
    if (rc != TS_OK)
        errno = EIO;
    return rc;
}

static int block_key(const struct ts_bytes *b, uint64_t index, struct ts_buf *key)
{
    ts_buf_init_capped(key, strlen(b->identity) + 64);
    int rc = ts_buf_appendf(key, "%s\nblock %llu/%zu", b->identity, (unsigned long long)index,
                            b->remote.block);
    return rc ? rc : (ts_buf_str(key) ? TS_OK : TS_ENOMEM);
}

/* Copies block `index` into dst (its whole length, `len`) from the last block or the store. */
static bool block_cached(struct ts_bytes *b, uint64_t index, uint8_t *dst, size_t len)
{
    bool hit = false;
    pthread_mutex_lock(&b->lock);
    if (b->last && b->last_index == index && b->last_len == len) {
        memcpy(dst, b->last, len);
        hit = true;
    }
    pthread_mutex_unlock(&b->lock);
    if (!hit) {
        struct ts_buf key, got = {0};
        if (block_key(b, index, &key) == TS_OK &&
            b->remote.blocks->get(b->remote.blocks->ctx, (const char *)key.data, &got) &&
            got.len == len) {
            memcpy(dst, got.data, len);
            hit = true;
        }
        ts_buf_free(&got);
        ts_buf_free(&key);
    }
    pthread_mutex_lock(&b->lock);
    if (hit)
        b->counts.block_hits++;
    else
        b->counts.block_misses++;
    pthread_mutex_unlock(&b->lock);
    return hit;
}

static void block_keep(struct ts_bytes *b, uint64_t index, const uint8_t *data, size_t len)
{
    struct ts_buf key;
    if (block_key(b, index, &key) == TS_OK)
        b->remote.blocks->put(b->remote.blocks->ctx, (const char *)key.data, data, len);
    ts_buf_free(&key);
    pthread_mutex_lock(&b->lock);
    if (!b->last)
        b->last = malloc(b->remote.block);
    if (b->last) {
        memcpy(b->last, data, len);
        b->last_index = index;
        b->last_len = len;
    }
    pthread_mutex_unlock(&b->lock);
}

/* Blocks [first, last] into run (their bytes in order): the cached ones copied, the missing
 * ones fetched, a stretch of missing neighbours in one request. A miss on the last block also
 * fetches (and keeps) the blocks after it up to reach, unlooked-at: a sequential reader wants
 * them next, and one request is cheaper than many. */
static int blocks_fill(struct ts_bytes *b, uint64_t first, uint64_t last, uint64_t reach,
                       uint8_t *run)
{
    const uint64_t bs = b->remote.block, size = b->remote.size;
    uint64_t i = first;
    while (i <= last) {
        uint64_t at = i * bs;
        size_t len = (size_t)(size - at < bs ? size - at : bs);
        uint8_t *dst = run + (size_t)((i - first) * bs);
        if (block_cached(b, i, dst, len)) {
            i++;
            continue;
        }
        /* Every block from here to the first cached one (or the run's end) in one request. */
        uint64_t j = i;
        while (j < last) {
            uint64_t nat = (j + 1) * bs;
            size_t nlen = (size_t)(size - nat < bs ? size - nat : bs);
            if (block_cached(b, j + 1, run + (size_t)((j + 1 - first) * bs), nlen))
                break;
            j++;
        }
        if (j == last)
            j = reach;
        uint64_t end = (j + 1) * bs < size ? (j + 1) * bs : size;
        if (fetch(b, dst, (size_t)(end - at), at) != TS_OK)
            return -1;
        for (uint64_t k = i; k <= j; k++) {
            uint64_t kat = k * bs;
            block_keep(b, k, run + (size_t)((k - first) * bs),
                       (size_t)(size - kat < bs ? size - kat : bs));
        }
        i = j + 1;
        /* j + 1 (when below last) was found cached and is already in place. */
        if (i <= last && j < last)
            i++;
    }
    return 0;
}

static ssize_t remote_read(struct ts_bytes *b, void *buf, size_t len, uint64_t off)
{
    const uint64_t size = b->remote.size;
    if (off >= size || !len)
        return 0;
    if (len > size - off)
        len = (size_t)(size - off);
    if (!b->remote.blocks)
        return fetch(b, buf, len, off) == TS_OK ? (ssize_t)len : -1;
    const uint64_t bs = b->remote.block, nblocks = (size + bs - 1) / bs;
    size_t done = 0;
    while (done < len) {
        uint64_t at = off + done, first = at / bs;
        uint64_t last = (at + (len - done) - 1) / bs, reach;
        uint64_t most = BYTES_MAX_RUN / bs, ahead = BYTES_SEQ_RUN / bs;
        if (last > first + most - 1)
            last = first + most - 1;
        reach = atomic_load(&b->sequential) && last < first + ahead - 1 ? first + ahead - 1 : last;
        if (reach > nblocks - 1)
            reach = nblocks - 1;
        uint8_t *run = malloc((size_t)((reach - first + 1) * bs));
        if (!run) {
            errno = ENOMEM;
            return -1;
        }
        if (blocks_fill(b, first, last, reach, run) != 0) {
            free(run);
            return -1;
        }
        uint64_t run_end = (last + 1) * bs < size ? (last + 1) * bs : size;
        size_t take = (size_t)(run_end - at) < len - done ? (size_t)(run_end - at) : len - done;
        memcpy((uint8_t *)buf + done, run + (size_t)(at - first * bs), take);
        free(run);
        done += take;
    }
    return (ssize_t)len;
}

ssize_t ts_bytes_read_at(struct ts_bytes *b, void *buf, size_t len, uint64_t off)
{
    if (b->fd >= 0)
        return ts_fd_read_at(b->fd, buf, len, off);
    return remote_read(b, buf, len, off);
}
