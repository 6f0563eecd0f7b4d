/* JPEG 2000 reader tuning: the process-wide cache of decoded codestream tiles and blocks. */
#ifndef TESSERA_JP2_H
#define TESSERA_JP2_H

#include "cache/lru.h"

#include <stddef.h>

#define TS_JP2_CACHE_DEFAULT_BYTES ((size_t)256 << 20)

/* Sets the byte budget of the decoded-tile cache (default TS_JP2_CACHE_DEFAULT_BYTES) and
 * empties it; 0 turns caching off, so every read decodes just the area it needs. Safe to call
 * while other threads read, though meant for start-up. */
void ts_jp2_set_cache_bytes(size_t bytes);
/* Counters and current size of the decoded-tile cache (all zero before first use). */
void ts_jp2_cache_stats(struct ts_lru_stats *out);

#endif
