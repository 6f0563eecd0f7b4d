/* Times a viewer's burst of neighbouring 256x256 tile reads from JPEG 2000 files, per level. */
/* Build: cc -O2 -Isrc bench/jp2_tiles.c build-rel/libtessera_core.a \
 *           $(pkg-config --libs libopenjp2 libtiff-4 libpng spng libwebp libturbojpeg) -lpthread
 * -lm Run:   ./jp2_tiles [--cache MB] [--fresh] file level [file level ...] Each burst reads up to
 * 4x4 tiles of 256x256 starting at the level's centre (clipped to the level), on a freshly opened
 * reader; --fresh also empties the decoded-tile cache first. The cache is an LRU of this
 * program's own, given to the readers as their block store the way the server does. */
#include "cache/lru.h"
#include "image/reader.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TILE 256u
#define CACHE_SHARDS 4u

static struct ts_lru *cache; /* NULL when --cache 0 */

static bool cache_get(void *ctx, const char *key, struct ts_buf *out)
{
    (void)ctx;
    return ts_lru_get(cache, key, out);
}

static void cache_put(void *ctx, const char *key, const void *value, size_t len)
{
    (void)ctx;
    ts_lru_put(cache, key, value, len);
}

/* Replaces the cache with an empty one of mb megabytes (none for 0). */
static int cache_reset(size_t mb, struct ts_block_store *store)
{
    ts_lru_destroy(cache);
    cache = NULL;
    if (mb > 0 && ts_lru_create(mb << 20, CACHE_SHARDS, &cache) != TS_OK)
        return -1;
    *store = (struct ts_block_store){NULL, cache_get, cache_put, (mb << 20) / CACHE_SHARDS / 2};
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* One burst; returns its duration in ms, or a negative value on failure. */
static double burst(const char *path, uint32_t level, const struct ts_block_store *store,
                    unsigned *ntiles)
{
    struct ts_reader *r;
    struct ts_err err;
    double t0 = now_ms();
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        perror(path);
        return -1.0;
    }
    if (ts_reader_open_fd(fd, 0, cache ? store : NULL, &r, &err) != TS_OK) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        return -1.0;
    }
    if (level >= r->info.nlevels) {
        ts_reader_close(r);
        return -1.0;
    }
    const struct ts_level *lv = &r->info.levels[level];
    uint32_t cx = lv->width / 2 / TILE * TILE, cy = lv->height / 2 / TILE * TILE;
    /* Start left/up of the centre so small levels still get a 2x2 or larger walk. */
    uint32_t sx = cx >= 2 * TILE ? cx - 2 * TILE : 0, sy = cy >= 2 * TILE ? cy - 2 * TILE : 0;
    *ntiles = 0;
    for (uint32_t j = 0; j < 4; j++)
        for (uint32_t i = 0; i < 4; i++) {
            struct ts_read_req q = {0};
            struct ts_image img;
            q.level = level;
            q.x = sx + i * TILE;
            q.y = sy + j * TILE;
            if (q.x >= lv->width || q.y >= lv->height)
                continue;
            q.w = lv->width - q.x < TILE ? lv->width - q.x : TILE;
            q.h = lv->height - q.y < TILE ? lv->height - q.y : TILE;
            q.min_w = q.w;
            q.min_h = q.h;
            if (ts_reader_read(r, &q, &img, &err) != TS_OK) {
                fprintf(stderr, "%s: %s\n", path, err.msg);
                ts_reader_close(r);
                return -1.0;
            }
            ts_image_free(&img);
            (*ntiles)++;
        }
    ts_reader_close(r);
    return now_ms() - t0;
}

int main(int argc, char **argv)
{
    int a = 1;
    size_t cache_mb = 256;
    int fresh = 0;
    while (a < argc && argv[a][0] == '-') {
        if (!strcmp(argv[a], "--cache") && a + 1 < argc) {
            cache_mb = (size_t)strtoul(argv[a + 1], NULL, 10);
            a += 2;
        } else if (!strcmp(argv[a], "--fresh")) {
            fresh = 1;
            a++;
        } else {
            fprintf(stderr, "unknown option %s\n", argv[a]);
            return 2;
        }
    }
    struct ts_block_store store;
    if (cache_reset(cache_mb, &store) != 0) {
        fprintf(stderr, "cannot create a %zu MB cache\n", cache_mb);
        return 1;
    }
    for (; a + 1 < argc; a += 2) {
        uint32_t level = (uint32_t)strtoul(argv[a + 1], NULL, 10);
        unsigned n = 0;
        double first, best = 1e30;
        if (fresh && cache_reset(cache_mb, &store) != 0)
            return 1;
        first = burst(argv[a], level, &store, &n);
        if (first < 0)
            return 1;
        /* Repeats show the warm-cache cost (the same tiles asked again, as by a second user). */
        for (int k = 0; k < 3; k++) {
            double t = burst(argv[a], level, &store, &n);
            if (t >= 0 && t < best)
                best = t;
        }
        printf("%-40s level %u: %2u tiles, first burst %8.2f ms, warm burst %8.2f ms\n", argv[a],
               level, n, first, best);
    }
    ts_lru_destroy(cache);
    return 0;
}
