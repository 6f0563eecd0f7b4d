/* A byte-bounded, sharded LRU of byte strings, safe to share between worker threads. */
#ifndef TESSERA_LRU_H
#define TESSERA_LRU_H

#include "util/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ts_lru;

struct ts_lru_stats {
    uint64_t hits, misses, inserts, evictions;
    size_t bytes, entries;
};

/* max_bytes bounds keys + values + bookkeeping across all shards; 0 disables the cache (every
 * get misses, every put is dropped). */
int ts_lru_create(size_t max_bytes, unsigned shards, struct ts_lru **out);
void ts_lru_destroy(struct ts_lru *lru);

/* On a hit appends the value to out and returns true. */
bool ts_lru_get(struct ts_lru *lru, const char *key, struct ts_buf *out);
/* Stores a copy (replacing any older value); values larger than a shard's budget are skipped. */
void ts_lru_put(struct ts_lru *lru, const char *key, const void *value, size_t len);
/* The same, taking ownership of value (malloc'd): no copy; freed if it is not stored. */
void ts_lru_put_owned(struct ts_lru *lru, const char *key, uint8_t *value, size_t len);
/* A held cache value: stays valid (and unchanged) after it is evicted or replaced, until released. */
struct ts_lru_ref;
/* On a hit returns a reference and points value and len at the stored bytes, without copying;
 * NULL on a miss (or when the cache is off). */
struct ts_lru_ref *ts_lru_acquire(struct ts_lru *lru, const char *key, const uint8_t **value,
                                  size_t *len);
/* Drops a reference (any thread, any order). NULL is ignored. */
void ts_lru_release(struct ts_lru_ref *ref);
void ts_lru_remove(struct ts_lru *lru, const char *key);
void ts_lru_stats(struct ts_lru *lru, struct ts_lru_stats *out);

#endif
