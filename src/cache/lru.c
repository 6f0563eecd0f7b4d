/* Sharded LRU: each shard is a chained hash table threaded on a recency list under one mutex. */
#include "cache/lru.h"
#include "util/hash.h"
#include "util/status.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Recency-list links; first member of an entry so a node pointer is the entry's address. */
struct node {
    struct node *prev, *next;
};

struct entry {
    struct node link;    /* recency list, most recent at head */
    struct entry *chain; /* next in the hash bucket */
    uint64_t hash;
    size_t key_len, len, charge;
    uint8_t *value;
    char key[]; /* NUL-terminated */
};

struct shard {
    pthread_mutex_t lock;
    struct entry **buckets;
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

static void unlink_entry(struct shard *s, struct entry *e)
{
    struct entry **pp = &s->buckets[e->hash % s->nbuckets];
    while (*pp != e)
        pp = &(*pp)->chain;
    *pp = e->chain;
    e->link.prev->next = e->link.next;
    e->link.next->prev = e->link.prev;
    s->entries--;
    s->bytes -= e->charge;
}

static void free_entry(struct entry *e)
{
    free(e->value);
    free(e);
}

void ts_lru_destroy(struct ts_lru *lru)
{
    if (!lru)
        return;
    for (unsigned i = 0; i < lru->nshards; i++) {
        struct shard *s = &lru->shards[i];
        struct node *n = s->head.next;
        while (n && n != &s->head) {
            struct node *next = n->next;
            free_entry((struct entry *)n);
            n = next;
        }
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

static struct entry *find(struct shard *s, const char *key, size_t key_len, uint64_t hash)
{
    for (struct entry *e = s->buckets[hash % s->nbuckets]; e; e = e->chain)
        if (e->hash == hash && e->key_len == key_len && !memcmp(e->key, key, key_len))
            return e;
    return NULL;
}

static void push_front(struct shard *s, struct entry *e)
{
    e->link.next = s->head.next;
    e->link.prev = &s->head;
    s->head.next->prev = &e->link;
    s->head.next = &e->link;
}

static void touch(struct shard *s, struct entry *e)
{
    e->link.prev->next = e->link.next;
    e->link.next->prev = e->link.prev;
    push_front(s, e);
}

bool ts_lru_get(struct ts_lru *lru, const char *key, struct ts_buf *out)
{
    size_t key_len = strlen(key);
    uint64_t h = key_hash(key, key_len);
    struct shard *s = shard_for(lru, h);
    bool hit = false;
    pthread_mutex_lock(&s->lock);
    struct entry *e = s->budget ? find(s, key, key_len, h) : NULL;
    if (e && ts_buf_append(out, e->value, e->len) == TS_OK) {
        touch(s, e);
        hit = true;
        s->hits++;
    } else {
        s->misses++;
    }
    pthread_mutex_unlock(&s->lock);
    return hit;
}

static void grow(struct shard *s)
{
    size_t n = s->nbuckets * 2;
    struct entry **b = calloc(n, sizeof *b);
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct entry *e = s->buckets[i];
        while (e) {
            struct entry *next = e->chain;
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
    memcpy(copy, value, len);
    ts_lru_put_owned(lru, key, copy, len);
}

void ts_lru_put_owned(struct ts_lru *lru, const char *key, uint8_t *value, size_t len)
{
    size_t key_len = strlen(key), charge, alloc;
    if (!ts_add_size(sizeof(struct entry) + 1, key_len, &alloc) ||
        !ts_add_size(alloc, len, &charge)) {
        free(value);
        return;
    }
    uint64_t h = key_hash(key, key_len);
    struct shard *s = shard_for(lru, h);
    if (charge > s->budget / 2) {
        free(value); /* one huge value would flush everything else */
        return;
    }
    struct entry *e = malloc(alloc);
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

    pthread_mutex_lock(&s->lock);
    struct entry *old = find(s, key, key_len, h);
    if (old) {
        unlink_entry(s, old);
        free_entry(old);
    }
    while (s->bytes + charge > s->budget && s->head.prev != &s->head) {
        struct entry *victim = (struct entry *)s->head.prev;
        unlink_entry(s, victim);
        free_entry(victim);
        s->evictions++;
    }
    if (s->entries >= s->nbuckets)
        grow(s);
    struct entry **bucket = &s->buckets[h % s->nbuckets];
    e->chain = *bucket;
    *bucket = e;
    push_front(s, e);
    s->entries++;
    s->bytes += charge;
    s->inserts++;
    pthread_mutex_unlock(&s->lock);
}

void ts_lru_remove(struct ts_lru *lru, const char *key)
{
    size_t key_len = strlen(key);
    uint64_t h = key_hash(key, key_len);
    struct shard *s = shard_for(lru, h);
    pthread_mutex_lock(&s->lock);
    struct entry *e = find(s, key, key_len, h);
    if (e) {
        unlink_entry(s, e);
        free_entry(e);
    }
    pthread_mutex_unlock(&s->lock);
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

/* TEMPORARY until refcounted entries land: no references are handed out. */
struct ts_lru_ref *ts_lru_acquire(struct ts_lru *lru, const char *key, const uint8_t **value,
                                  size_t *len)
{
    (void)lru;
    (void)key;
    *value = NULL;
    *len = 0;
    return NULL;
}

void ts_lru_release(struct ts_lru_ref *ref)
{
    (void)ref;
}
