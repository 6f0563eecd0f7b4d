/* FNV-1a: simple, and good enough to spread keys over shards and buckets. */
#include "util/hash.h"

uint64_t ts_hash(uint64_t seed, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = seed;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
