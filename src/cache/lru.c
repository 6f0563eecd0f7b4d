/* Sharded LRU: each shard is a chained hash table threaded on a recency list under one mutex;
 * entries are reference-counted so a hit hands out the stored bytes instead of a copy. */
#include "cache/lru.h"
#include "util/hash.h"
#include "util/status.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Recency-list links; first member of an entry so a node pointer is the entry's address. */
struct node {
    struct node *prev, *next;
};

/* An entry is also the reference handed to readers. refs counts the table's own hold (while the
 * entry is linked) plus one per acquire. Increments happen only under the shard lock while the
 * table still holds the entry, so a count never rises from zero; whoever drops it to zero frees
 * the entry, outside any lock. Once unlinked, an entry touches no shard state, which is what
 * lets a release outlive the cache. */
struct ts_lru_ref {
    struct node link;         /* recency list, most recent at head */
    struct ts_lru_ref *chain; /* next in the hash bucket; after unlinking, next to drop */
    atomic_size_t refs;
    uint64_t hash;
    size_t key_len, len, charge;
    uint8_t *value;
    char key[]; /* NUL-terminated */
};

struct shard {
    pthread_mutex_t lock;
    struct ts_lru_ref **buckets;
    size_t nbuckets, entries, bytes, budget;
    struct node head; /* sentinel of the recency list */
    uint64_t hits, misses, inserts, evictions;
};

struct ts_lru {
    unsigned nshards;
    struct shard shards[];
};

static uint64_t key_hash(const char *key, size_t len)
{
    return ts_hash(TS_HASH_SEED, key, len);
}

int ts_lru_create(size_t max_bytes, unsigned shards, struct ts_lru **out)
{
    if (shards == 0)
        shards = 1;
    size_t size;
    if (!ts_mul_size(shards, sizeof(struct shard), &size) ||
        !ts_add_size(size, sizeof(struct ts_lru), &size))
        return TS_ENOMEM;
    struct ts_lru *lru = calloc(1, size);
    if (!lru)
        return TS_ENOMEM;
    lru->nshards = shards;
    for (unsigned i = 0; i < shards; i++) {
        struct shard *s = &lru->shards[i];
        pthread_mutex_init(&s->lock, NULL);
        s->budget = max_bytes / shards;
        s->head.prev = s->head.next = &s->head;
        s->nbuckets = 64;
        s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
        if (!s->buckets) {
            lru->nshards = i + 1;
            ts_lru_destroy(lru);
            return TS_ENOMEM;
        }
    }
    *out = lru;
    return TS_OK;
}

void ts_lru_release(struct ts_lru_ref *e)
{
    if (!e)
        return;
    /* acq_rel: every holder's reads of the value happen before the free by the last one. */
    if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1) {
        free(e->value);
        free(e);
    }
}

/* Takes the entry out of the table and its accounting; the table's hold is dropped later, by
 * drop_all once the shard lock is released. */
static void unlink_entry(struct shard *s, struct ts_lru_ref *e)
{
    struct ts_lru_ref **pp = &s->buckets[e->hash % s->nbuckets];
    while (*pp != e)
        pp = &(*pp)->chain;
    *pp = e->chain;
    e->link.prev->next = e->link.next;
    e->link.next->prev = e->link.prev;
    s->entries--;
    s->bytes -= e->charge;
}

/* Releases the table's hold on each unlinked entry of a list made with defer_drop. */
static void drop_all(struct ts_lru_ref *list)
{
    while (list) {
        struct ts_lru_ref *next = list->chain;
        ts_lru_release(list);
        list = next;
    }
}

static void defer_drop(struct ts_lru_ref **list, struct ts_lru_ref *e)
{
    e->chain = *list;
    *list = e;
}

void ts_lru_destroy(struct ts_lru *lru)
{
    if (!lru)
        return;
    for (unsigned i = 0; i < lru->nshards; i++) {
        struct shard *s = &lru->shards[i];
        struct ts_lru_ref *dropped = NULL;
        struct node *n = s->head.next;
        while (n && n != &s->head) {
            struct node *next = n->next;
            defer_drop(&dropped, (struct ts_lru_ref *)n);
            n = next;
        }
        drop_all(dropped);
        free(s->buckets);
        pthread_mutex_destroy(&s->lock);
    }
    free(lru);
}

static struct shard *shard_for(struct ts_lru *lru, uint64_t hash)
{
    /* The high bits pick the shard so the low bits stay independent for the buckets. */
    return &lru->shards[(hash >> 40) % lru->nshards];
}

static struct ts_lru_ref *find(struct shard *s, const char *key, size_t key_len, uint64_t hash)
{
    for (struct ts_lru_ref *e = s->buckets[hash % s->nbuckets]; e; e = e->chain)
        if (e->hash == hash && e->key_len == key_len && !memcmp(e->key, key, key_len))
            return e;
    return NULL;
}

static void push_front(struct shard *s, struct ts_lru_ref *e)
{
    e->link.next = s->head.next;
    e->link.prev = &s->head;
    s->head.next->prev = &e->link;
    s->head.next = &e->link;
}

static void touch(struct shard *s, struct ts_lru_ref *e)
{
    e->link.prev->next = e->link.next;
    e->link.next->prev = e->link.prev;
    push_front(s, e);
}

struct ts_lru_ref *ts_lru_acquire(struct ts_lru *lru, const char *key, const uint8_t **value,
                                  size_t *len)
{
    size_t key_len = strlen(key);
    uint64_t h = key_hash(key, key_len);
    struct shard *s = shard_for(lru, h);
    pthread_mutex_lock(&s->lock);
    struct ts_lru_ref *e = s->budget ? find(s, key, key_len, h) : NULL;
    if (e) {
        /* Relaxed is enough: the table's hold keeps the count above zero, and the lock orders
         * this against the unlink that may come next. */
        atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
        touch(s, e);
        s->hits++;
    } else {
        s->misses++;
    }
    pthread_mutex_unlock(&s->lock);
    if (e) {
        *value = e->value;
        *len = e->len;
    }
    return e;
}

bool ts_lru_get(struct ts_lru *lru, const char *key, struct ts_buf *out)
{
    const uint8_t *value;
    size_t len;
    struct ts_lru_ref *ref = ts_lru_acquire(lru, key, &value, &len);
    if (!ref)
        return false;
    bool copied = ts_buf_append(out, value, len) == TS_OK;
    ts_lru_release(ref);
    return copied;
}

static void grow(struct shard *s)
{
    size_t n = s->nbuckets * 2;
    struct ts_lru_ref **b = calloc(n, sizeof *b);
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct ts_lru_ref *e = s->buckets[i];
        while (e) {
            struct ts_lru_ref *next = e->chain;
            e->chain = b[e->hash % n];
            b[e->hash % n] = e;
            e = next;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
}

void ts_lru_put(struct ts_lru *lru, const char *key, const void *value, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return;
    if (len)
        memcpy(copy, value, len);
    ts_lru_put_owned(lru, key, copy, len);
}

void ts_lru_put_owned(struct ts_lru *lru, const char *key, uint8_t *value, size_t len)
{
    size_t key_len = strlen(key), charge, alloc;
    if (!ts_add_size(sizeof(struct ts_lru_ref) + 1, key_len, &alloc) ||
        !ts_add_size(alloc, len, &charge)) {
        free(value);
        return;
    }
    uint64_t h = key_hash(key, key_len);
    struct shard *s = shard_for(lru, h);
    struct ts_lru_ref *e = malloc(alloc);
    if (!e) {
        free(value);
        return;
    }
    memcpy(e->key, key, key_len + 1);
    e->key_len = key_len;
    e->hash = h;
    e->value = value;
    e->len = len;
    e->charge = charge;
    atomic_init(&e->refs, 1); /* the table's hold */

    struct ts_lru_ref *dropped = NULL;
    pthread_mutex_lock(&s->lock);
    /* Under the lock: a reload may be resizing the budget. */
    if (charge > s->budget / 2) {
        pthread_mutex_unlock(&s->lock);
        ts_lru_release(e); /* one huge value would flush everything else */
        return;
    }
    struct ts_lru_ref *old = find(s, key, key_len, h);
    if (old) {
        unlink_entry(s, old);
        defer_drop(&dropped, old);
    }
    while (s->bytes + charge > s->budget && s->head.prev != &s->head) {
        struct ts_lru_ref *victim = (struct ts_lru_ref *)s->head.prev;
        unlink_entry(s, victim);
        defer_drop(&dropped, victim);
        s->evictions++;
    }
    if (s->entries >= s->nbuckets)
        grow(s);
    struct ts_lru_ref **bucket = &s->buckets[h % s->nbuckets];
    e->chain = *bucket;
    *bucket = e;
    push_front(s, e);
    s->entries++;
    s->bytes += charge;
    s->inserts++;
    pthread_mutex_unlock(&s->lock);
    drop_all(dropped);
}

bool ts_lru_remove(struct ts_lru *lru, const char *key)
{
    size_t key_len = strlen(key);
    uint64_t h = key_hash(key, key_len);
    struct shard *s = shard_for(lru, h);
    pthread_mutex_lock(&s->lock);
    struct ts_lru_ref *e = find(s, key, key_len, h);
    if (e)
        unlink_entry(s, e);
    pthread_mutex_unlock(&s->lock);
    bool found = e != NULL;
    ts_lru_release(e); /* the table's hold; NULL when there was nothing to remove */
    return found;
}

/* Unlinks the least recent entries until the shard is within its budget (under its lock). */
static void shrink(struct shard *s, struct ts_lru_ref **dropped)
{
    while (s->bytes > s->budget && s->head.prev != &s->head) {
        struct ts_lru_ref *victim = (struct ts_lru_ref *)s->head.prev;
        unlink_entry(s, victim);
        defer_drop(dropped, victim);
        s->evictions++;
    }
}

void ts_lru_resize(struct ts_lru *lru, size_t max_bytes)
{
    for (unsigned i = 0; i < lru->nshards; i++) {
        struct shard *s = &lru->shards[i];
        struct ts_lru_ref *dropped = NULL;
        pthread_mutex_lock(&s->lock);
        s->budget = max_bytes / lru->nshards;
        shrink(s, &dropped);
        pthread_mutex_unlock(&s->lock);
        drop_all(dropped);
    }
}

size_t ts_lru_budget(struct ts_lru *lru)
{
    size_t total = 0;
    for (unsigned i = 0; i < lru->nshards; i++) {
        pthread_mutex_lock(&lru->shards[i].lock);
        total += lru->shards[i].budget;
        pthread_mutex_unlock(&lru->shards[i].lock);
    }
    return total;
}

size_t ts_lru_remove_if(struct ts_lru *lru, ts_lru_match_fn match, void *ctx)
{
    size_t removed = 0;
    for (unsigned i = 0; i < lru->nshards; i++) {
        struct shard *s = &lru->shards[i];
        struct ts_lru_ref *dropped = NULL;
        pthread_mutex_lock(&s->lock);
        struct node *n = s->head.next;
        while (n != &s->head) {
            struct node *next = n->next;
            struct ts_lru_ref *e = (struct ts_lru_ref *)n;
            if (match(ctx, e->key, e->value, e->len)) {
                unlink_entry(s, e);
                defer_drop(&dropped, e);
                removed++;
            }
            n = next;
        }
        pthread_mutex_unlock(&s->lock);
        drop_all(dropped);
    }
    return removed;
}

void ts_lru_stats(struct ts_lru *lru, struct ts_lru_stats *out)
{
    memset(out, 0, sizeof *out);
    for (unsigned i = 0; i < lru->nshards; i++) {
        struct shard *s = &lru->shards[i];
        pthread_mutex_lock(&s->lock);
        out->hits += s->hits;
        out->misses += s->misses;
        out->inserts += s->inserts;
        out->evictions += s->evictions;
        out->bytes += s->bytes;
        out->entries += s->entries;
        pthread_mutex_unlock(&s->lock);
    }
}
