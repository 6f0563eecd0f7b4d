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

/* max_bytes bounds keys + values + bookkeeping of the entries the cache itself holds, across
 * all shards; 0 disables the cache (every lookup misses, every put is dropped). Entries that
 * were evicted, replaced or removed while a reference was held no longer count against it:
 * their memory belongs to the holders until the last release. */
int ts_lru_create(size_t max_bytes, unsigned shards, struct ts_lru **out);
/* Drops the cache's hold on every entry and frees the cache. Entries still referenced are not
 * freed: each stays valid until its last ts_lru_release, which is safe after destroy. */
void ts_lru_destroy(struct ts_lru *lru);

/* A held cache value: stays valid (and unchanged) after it is evicted or replaced, until
 * released. */
struct ts_lru_ref;
/* On a hit returns a reference and points *value and *len at the stored bytes, without copying;
 * NULL on a miss (or when the cache is off). Counts as a hit or a miss in the stats. */
struct ts_lru_ref *ts_lru_acquire(struct ts_lru *lru, const char *key, const uint8_t **value,
                                  size_t *len);
/* Drops a reference (any thread, any order); the value is freed when the cache and every
 * holder have let go. NULL is ignored. */
void ts_lru_release(struct ts_lru_ref *ref);

/* On a hit appends a copy of the value to out and returns true; small values (image info)
 * use this. The copy is made outside the shard lock. False on a miss, and also when out
 * cannot take the value (over its cap, or out of memory), though the lookup counts as a hit. */
bool ts_lru_get(struct ts_lru *lru, const char *key, struct ts_buf *out);
/* Stores a copy (replacing any older value; references to it stay valid); values larger than
 * half a shard's budget are skipped. */
void ts_lru_put(struct ts_lru *lru, const char *key, const void *value, size_t len);
/* The same, taking ownership of value (malloc'd): no copy; freed if it is not stored. */
void ts_lru_put_owned(struct ts_lru *lru, const char *key, uint8_t *value, size_t len);
/* Forgets key (true when it was there); references already handed out stay valid. */
bool ts_lru_remove(struct ts_lru *lru, const char *key);
void ts_lru_stats(struct ts_lru *lru, struct ts_lru_stats *out);

/* Says whether an entry goes; called under a shard lock, so it must be quick and must not
 * call back into the cache. */
typedef bool (*ts_lru_match_fn)(void *ctx, const char *key, const uint8_t *value, size_t len);
/* Forgets every entry match() picks and returns how many (a purge: it visits every entry,
 * one shard locked at a time). References already handed out stay valid. */
size_t ts_lru_remove_if(struct ts_lru *lru, ts_lru_match_fn match, void *ctx);
/* Changes max_bytes (as given to ts_lru_create) while the cache is in use, evicting the least
 * recent entries down to the new bound at once; 0 turns the cache off. */
void ts_lru_resize(struct ts_lru *lru, size_t max_bytes);
/* The bound in force (max_bytes rounded down to a multiple of the shard count). */
size_t ts_lru_budget(struct ts_lru *lru);

#endif
