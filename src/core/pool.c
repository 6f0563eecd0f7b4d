/* The reader pool: idle readers by file identity; a lease ends in ts_lease_end only. */
#include "core/pool.h"
#include "image/bytes.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct slot {
    struct ts_pool_identity id;
    struct ts_reader *reader; /* NULL: free */
    bool busy;
    bool purged;   /* lent out when its file was purged: closed when it comes back */
    uint64_t used; /* tick of last return, for LRU eviction */
};

struct ts_pool {
    pthread_mutex_t lock;
    unsigned n;
    uint64_t tick;
    _Atomic unsigned open; /* readers opened through the pool and not yet closed */
    struct slot slots[];
};

static struct ts_pool_identity identity_of(const struct source_file *src)
{
    struct ts_pool_identity id;
    memset(&id, 0, sizeof id); /* padding too: identities are compared with memcmp */
    id.dev = src->st.st_dev;
    id.ino = src->st.st_ino;
    id.size = src->st.st_size;
    id.mtime = src->st.st_mtim;
    id.ctime = src->st.st_ctim;
    id.page = src->page;
    return id;
}

int ts_pool_create(unsigned size, struct ts_pool **out)
{
    *out = NULL;
    if (!size)
        return TS_OK;
    size_t bytes;
    if (!ts_mul_size(size, sizeof(struct slot), &bytes) ||
        !ts_add_size(bytes, sizeof(struct ts_pool), &bytes))
        return TS_ENOMEM;
    struct ts_pool *p = calloc(1, bytes);
    if (!p)
        return TS_ENOMEM;
    pthread_mutex_init(&p->lock, NULL);
    p->n = size;
    *out = p;
    return TS_OK;
}

void ts_pool_destroy(struct ts_pool *pool)
{
    if (!pool)
        return;
    for (unsigned i = 0; i < pool->n; i++)
        ts_reader_close(pool->slots[i].reader);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

static int find_idle(struct ts_pool *pool, const struct ts_pool_identity *id)
{
    for (unsigned i = 0; i < pool->n; i++) {
        struct slot *s = &pool->slots[i];
        if (s->reader && !s->busy && !memcmp(&s->id, id, sizeof *id))
            return (int)i;
    }
    return -1;
}

int ts_lease_begin(struct ts_pool *pool, struct source_file *src,
                   const struct ts_block_store *blocks, const struct ts_reopen *again,
                   struct ts_lease *lease, struct ts_err *err)
{
    *lease = (struct ts_lease){.pool = pool, .slot = -1, .id = identity_of(src)};
    if (pool) {
        pthread_mutex_lock(&pool->lock);
        int i = find_idle(pool, &lease->id);
        if (i >= 0) {
            pool->slots[i].busy = true;
            lease->reader = pool->slots[i].reader;
            lease->slot = i;
        }
        pthread_mutex_unlock(&pool->lock);
        if (lease->reader)
            return TS_OK;
    }
    if (src->fd < 0 && !src->bytes)
        return TS_DECLINED; /* the caller opens the file and asks again */
    int rc;
    if (src->bytes) {
        struct ts_bytes *b = src->bytes;
        src->bytes = NULL; /* the reader owns this reference now, even if opening fails */
        rc = ts_reader_open_bytes(b, src->page, blocks, again, &lease->reader, err);
    } else {
        int fd = src->fd;
        struct ts_bytes *b;
        src->fd = -1; /* the reader owns it now, even if opening fails */
        /* Not ts_reader_open_fd: the source checked that this is a regular file (src->st). */
        rc = ts_bytes_from_fd(fd, &b);
        rc = rc ? ts_fail(err, rc, "out of memory")
                : ts_reader_open_bytes(b, src->page, blocks, again, &lease->reader, err);
    }
    if (rc == TS_OK && pool)
        atomic_fetch_add_explicit(&pool->open, 1, memory_order_relaxed);
    if (rc == TS_EUNSUPPORTED || rc == TS_ECODEC) {
        /* The client asked for nothing unusual: the file behind the identifier is what we
         * cannot read, which is the server's failure (500), whatever the codec's reason. */
        char why[sizeof err->msg];
        memcpy(why, err->msg, sizeof why);
        return ts_fail(err, TS_ECODEC, "cannot read image: %s", why[0] ? why : "unknown format");
    }
    return rc;
}

/* A slot for a reader new to the pool: a free one, else the least recently used idle one. */
static struct slot *victim_slot(struct ts_pool *pool)
{
    struct slot *victim = NULL;
    for (unsigned i = 0; i < pool->n; i++) {
        struct slot *s = &pool->slots[i];
        if (!s->reader)
            return s;
        if (!s->busy && (!victim || s->used < victim->used))
            victim = s;
    }
    return victim;
}

void ts_lease_end(struct ts_lease *lease, int rc)
{
    struct ts_reader *reader = lease->reader, *closing = NULL;
    struct ts_pool *pool = lease->pool;
    lease->reader = NULL;
    if (!reader)
        return;
    /* A remote source that failed may have changed or gone: its reader is not kept either. */
    bool failed = rc == TS_ECODEC || rc == TS_EIO || rc == TS_EUPSTREAM || rc == TS_EUPTIMEOUT;
    if (!pool) {
        ts_reader_close(reader);
        return;
    }
    pthread_mutex_lock(&pool->lock);
    pool->tick++;
    struct slot *s = lease->slot >= 0 ? &pool->slots[lease->slot] : NULL;
    if (failed || (s && s->purged)) {
        closing = reader;
        if (s) /* the slot is free again, never left busy or naming a closed reader */
            *s = (struct slot){0};
    } else {
        if (!s) {
            s = victim_slot(pool);
            if (s) {
                closing = s->reader;
                s->reader = reader;
                s->id = lease->id;
            } else {
                closing = reader; /* every slot is busy: nowhere to keep it */
            }
        }
        if (s) {
            s->busy = false;
            s->used = pool->tick;
        }
    }
    pthread_mutex_unlock(&pool->lock);
    if (closing)
        atomic_fetch_sub_explicit(&pool->open, 1, memory_order_relaxed);
    ts_reader_close(closing);
}

void ts_pool_stats(struct ts_pool *pool, struct ts_pool_stats *out)
{
    *out = (struct ts_pool_stats){0};
    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    for (unsigned i = 0; i < pool->n; i++) {
        out->kept += pool->slots[i].reader != NULL;
        out->lent += pool->slots[i].reader && pool->slots[i].busy;
    }
    pthread_mutex_unlock(&pool->lock);
    out->slots = pool->n;
    out->open = atomic_load_explicit(&pool->open, memory_order_relaxed);
}

unsigned ts_pool_purge(struct ts_pool *pool, dev_t dev, ino_t ino)
{
    if (!pool)
        return 0;
    unsigned n = 0, nclosing = 0;
    struct ts_reader **closing = calloc(pool->n, sizeof *closing);
    pthread_mutex_lock(&pool->lock);
    for (unsigned i = 0; i < pool->n; i++) {
        struct slot *s = &pool->slots[i];
        if (!s->reader || s->id.dev != dev || s->id.ino != ino)
            continue;
        n++;
        if (s->busy) {
            s->purged = true;
        } else {
            if (closing)
                closing[nclosing++] = s->reader;
            else
                ts_reader_close(s->reader); /* out of memory: close it here, lock held */
            *s = (struct slot){0};
        }
    }
    pthread_mutex_unlock(&pool->lock);
    /* Closed outside the lock: a reader's close may take a while (and other leases wait). */
    for (unsigned i = 0; i < nclosing; i++)
        ts_reader_close(closing[i]);
    free(closing);
    return n;
}
