/* JPEG 2000 reader tuning: what an app gives the reader's decoded-block store. */
#ifndef TESSERA_JP2_H
#define TESSERA_JP2_H

#include <stddef.h>

/* A budget for the decoded-block store that an app keeps for JPEG 2000 readers (see struct
 * ts_block_store in image/reader.h): decoded blocks are at most 512 x 512 level pixels, so a
 * store should offer at least about 1 MB per value (max_value) for them to be kept. */
#define TS_JP2_CACHE_DEFAULT_BYTES ((size_t)256 << 20)

#endif
