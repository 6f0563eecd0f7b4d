/* Small helpers shared by unit and HTTP tests. */
#ifndef TESSERA_TESTUTIL_H
#define TESSERA_TESTUTIL_H

#include "cache/lru.h"
#include "image/image.h"
#include "image/reader.h"
#include "util/buf.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* mkdir -p; returns 0 on success. */
int tu_mkdirs(const char *path);

/* Decodes JPEG, PNG or WebP bytes (sniffed) into 8-bit pixels with an independent decoder
 * (libjpeg, libpng, libwebp: never Tessera's readers). Returns 0 on success. */
int tu_decode(const uint8_t *data, size_t len, struct ts_image *out);

/* Writes text to path, replacing the file. 0 on success. */
int tu_write_text(const char *path, const char *text);

/* Whether a and b have the same size, channels and bytes; when not, *why says how, for the
 * failure message (may be NULL). */
bool tu_same_image(const struct ts_image *a, const struct ts_image *b, char *why, size_t cap);

/* Max absolute channel difference between a pixel of img and rgb (gray images compare with
 * the luma of rgb). */
int tu_pixel_diff(const struct ts_image *img, uint32_t x, uint32_t y, const uint8_t rgb[3]);

/* Loads a binary PGM (P5) or PPM (P6), 8- or 16-bit (16-bit rounded to 8): the format the
 * reference decoders (opj_decompress, dwebp) write fastest. Returns 0 on success. */
int tu_load_pnm(const char *path, struct ts_image *out);

/* Writes a 3-channel image as a binary PPM, the input the reference encoders take. */
int tu_write_ppm(const char *path, const struct ts_image *img);

/* A block store for JPEG 2000 readers over a ts_lru of its own, as an app keeps one: 4 shards,
 * offering values up to half a shard. empty swaps in a fresh LRU (safe while readers use the
 * store), so tests can drop every block mid-run. */
struct tu_block_cache {
    pthread_rwlock_t lock;
    struct ts_lru *lru;
    size_t budget;
    struct ts_block_store store; /* hand &store to ts_jp2_open_fd / ts_reader_open_fd */
};

int tu_block_cache_init(struct tu_block_cache *c, size_t budget);
void tu_block_cache_empty(struct tu_block_cache *c);
void tu_block_cache_stats(struct tu_block_cache *c, struct ts_lru_stats *out);
void tu_block_cache_free(struct tu_block_cache *c);

/* open(path, O_RDONLY | O_CLOEXEC): the descriptor, or -1 with errno set. */
int tu_open_ro(const char *path);

/* Copies src to a new file at dst (replacing it). Returns 0 on success. */
int tu_copy_file(const char *src, const char *dst);

/* Milliseconds on the monotonic clock, and a sleep that survives signals. */
double tu_now_ms(void);
void tu_sleep_ms(long ms);

/* Appends the whole file to out; 0 on success. */
int tu_read_file(const char *path, struct ts_buf *out);

/* Counts the children of `parent` in /proc: zombies (exited, not reaped) and live ones.
 * Returns 0, or -1 when /proc cannot be read. */
int tu_count_children(int parent, int *zombies, int *live);
/* The parent pid of pid, from /proc; -1 when it cannot be read. */
int tu_parent_of(int pid);
/* The same, also listing up to max live children's pids. */
int tu_list_children(int parent, int *zombies, int *live, int *pids, int max);

struct ts_app;
/* A server app with default settings on root (created if missing); NULL with a message on
 * stderr when it cannot start. tu_app_free undoes it. */
struct ts_app *tu_app_new(const char *root);
void tu_app_free(struct ts_app *app);

#endif
