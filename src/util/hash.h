/* A fast non-cryptographic hash for cache keys, shards and validators. */
#ifndef TESSERA_HASH_H
#define TESSERA_HASH_H

#include <stddef.h>
#include <stdint.h>

/* 64-bit FNV-1a, chained by passing the previous hash as seed. */
uint64_t ts_hash(uint64_t seed, const void *data, size_t len);
#define TS_HASH_SEED 0xcbf29ce484222325ull

#endif
