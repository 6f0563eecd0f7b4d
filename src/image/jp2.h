/* JPEG 2000 reader tuning: what an app gives the reader's decoded-block store. */
#ifndef TESSERA_JP2_H
#define TESSERA_JP2_H

#include <stddef.h>

/* A sensible budget for the decoded-block store an app keeps for JPEG 2000 readers (struct
 * ts_block_store in image/reader.h). Blocks are 512 level pixels a side, or whole codestream
 * tiles of up to 1024; a block larger than the store's max_value is not offered, so such
 * reads decode just the area they need every time. */
#define TS_JP2_CACHE_DEFAULT_BYTES ((size_t)256 << 20)

#endif
