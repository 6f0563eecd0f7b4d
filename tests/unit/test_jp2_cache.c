/* JPEG 2000 decoded-block store: same pixels as uncached reads, bounded, invalidated, shared.
 * The store is the test's own LRU (tests/support), as the app keeps one: no process global. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "cache/lru.h"
#include "image/reader.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DATA TESSERA_TEST_DATA
#define WORK TESSERA_TEST_WORK

/* Generated images: wider than two 512 px blocks so level 0 has a virtual block grid. */
#define GEN_W 2200u
#define GEN_H 1100u

/* ---- helpers ---- */

static int run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof cmd)
        return -1;
    return system(cmd);
}

static bool have_tool(const char *name)
{
    return run("command -v %s >/dev/null 2>&1", name) == 0;
}

static void work_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", WORK, name);
}

static void data_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", DATA, name);
}

static uint8_t pattern(uint32_t seed, uint32_t x, uint32_t y, uint32_t c)
{
    if (seed == 0)
        return (uint8_t)((x * 7u + y * 3u + c * 50u) & 0xffu);
    return (uint8_t)((x * 5u + y * 11u + c * 30u + 17u) & 0xffu);
}

static int write_ppm(const char *path, uint32_t seed)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    fprintf(f, "P6\n%u %u\n255\n", GEN_W, GEN_H);
    for (uint32_t y = 0; y < GEN_H; y++)
        for (uint32_t x = 0; x < GEN_W; x++)
            for (uint32_t c = 0; c < 3; c++)
                fputc(pattern(seed, x, y, c), f);
    return fclose(f) == 0 ? 0 : -1;
}

/* Lossless encodings of the pattern: untiled JP2, 512 px tiles, untiled HTJ2K. */
enum gen_kind { GEN_UNTILED, GEN_TILED, GEN_HTJ2K };

static void gen_name(char *out, size_t n, enum gen_kind kind, uint32_t seed)
{
    static const char *names[] = {"untiled", "tiled", "htj2k"};
    char name[64];
    snprintf(name, sizeof name, "gen%u-%ux%u-%s.%s", seed, GEN_W, GEN_H, names[kind],
             kind == GEN_HTJ2K ? "j2c" : "jp2");
    work_path(out, n, name);
}

static int make_gen(enum gen_kind kind, uint32_t seed)
{
    char ppm[512], out[512], name[64];
    struct stat st;
    gen_name(out, sizeof out, kind, seed);
    if (stat(out, &st) == 0)
        return 0;
    snprintf(name, sizeof name, "gen%u-%ux%u.ppm", seed, GEN_W, GEN_H);
    work_path(ppm, sizeof ppm, name);
    if (stat(ppm, &st) != 0 && write_ppm(ppm, seed) != 0)
        return -1;
    if (kind == GEN_UNTILED)
        return run("opj_compress -i '%s' -o '%s' -n 6 >/dev/null 2>&1", ppm, out);
    if (kind == GEN_TILED)
        return run("opj_compress -i '%s' -o '%s' -n 5 -t 512,512 >/dev/null 2>&1", ppm, out);
    return run("ojph_compress -i '%s' -o '%s' -num_decomps 5 -reversible true >/dev/null 2>&1", ppm,
               out);
}

static int setup(void **state)
{
    (void)state;
    if (run("mkdir -p '%s'", WORK) != 0)
        return -1;
    if (!have_tool("opj_compress") || !have_tool("ojph_compress"))
        return 0; /* the tests that need them skip */
    for (uint32_t seed = 0; seed < 2; seed++)
        for (int k = GEN_UNTILED; k <= GEN_HTJ2K; k++)
            if (make_gen((enum gen_kind)k, seed) != 0)
                return -1;
    return 0;
}

/* Opens path with its blocks going to cache (NULL: none, every read decodes). */
static struct ts_reader *open_ok(const char *path, struct tu_block_cache *cache)
{
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    int fd = tu_open_ro(path);
    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    int rc = ts_jp2_open_fd(fd, cache ? &cache->store : NULL, &r, &err);
    if (rc != TS_OK)
        fail_msg("open %s: %d %s", path, rc, err.msg);
    return r;
}

static void cache_init_ok(struct tu_block_cache *c, size_t budget)
{
    if (tu_block_cache_init(c, budget) != 0)
        fail_msg("cannot create a %zu byte block cache", budget);
}

static void read_ok(struct ts_reader *r, uint32_t level, uint32_t x, uint32_t y, uint32_t w,
                    uint32_t h, struct ts_image *img)
{
    struct ts_read_req q = {.level = level, .x = x, .y = y, .w = w, .h = h, .min_w = w, .min_h = h};
    struct ts_err err = {0};
    int rc = ts_reader_read(r, &q, img, &err);
    if (rc != TS_OK)
        fail_msg("read L%u %u,%u %ux%u: %d %s", level, x, y, w, h, rc, err.msg);
    assert_int_equal(img->width, w);
    assert_int_equal(img->height, h);
}

/* First differing byte, or -1 when the images are identical. */
static long first_difference(const struct ts_image *a, const struct ts_image *b)
{
    if (a->width != b->width || a->height != b->height || a->channels != b->channels)
        return 0;
    for (uint32_t y = 0; y < a->height; y++) {
        const uint8_t *p = ts_image_row(a, y), *q = ts_image_row(b, y);
        for (size_t i = 0; i < (size_t)a->width * a->channels; i++)
            if (p[i] != q[i])
                return (long)((size_t)y * a->width * a->channels + i);
    }
    return -1;
}

/* Checks every ystep-th row of img against the pattern at (x0, y0). */
static void assert_pattern_rows(const struct ts_image *img, uint32_t seed, uint32_t x0, uint32_t y0,
                                uint32_t ystep)
{
    for (uint32_t y = 0; y < img->height; y += ystep)
        for (uint32_t x = 0; x < img->width; x++)
            for (uint32_t c = 0; c < img->channels; c++) {
                uint8_t got = ts_image_row(img, y)[(size_t)x * img->channels + c];
                uint8_t want = pattern(seed, x0 + x, y0 + y, c);
                if (got != want)
                    fail_msg("(%u,%u) c%u: got %u want %u", x0 + x, y0 + y, c, got, want);
            }
}

static void assert_pattern(const struct ts_image *img, uint32_t seed, uint32_t x0, uint32_t y0)
{
    assert_pattern_rows(img, seed, x0, y0, 1);
}

struct region {
    uint32_t level, x, y, w, h;
};

/* Regions crossing 512 px tiles, 512 px blocks (x and y) and level edges. */
static const struct region edge_regions[] = {
    {0, 500, 500, 40, 40},    {0, 1000, 900, 100, 200}, {0, 2000, 1000, 200, 100},
    {0, 2040, 1020, 160, 80}, {1, 500, 250, 200, 200},  {1, 900, 450, 200, 100},
    {2, 100, 100, 200, 150},  {2, 0, 0, 550, 275},      {3, 70, 40, 205, 98},
};

#define MAX_REGIONS 16

/* Reads every region uncached, then through an empty cache (decoding blocks, some shared
 * between regions), then again (all from the cache): the three must be identical. */
static void check_cached_equals_uncached(const char *path, const struct region *rg, size_t n,
                                         int exact_seed)
{
    struct tu_block_cache cache;
    struct ts_reader *uncached = open_ok(path, NULL), *r;
    struct ts_image plain[MAX_REGIONS], cold[MAX_REGIONS], warm;
    struct ts_lru_stats st0, st;
    assert_true(n <= MAX_REGIONS);
    for (size_t i = 0; i < n; i++) {
        const struct region *g = &rg[i];
        if (g->level >= uncached->info.nlevels ||
            g->x + g->w > uncached->info.levels[g->level].width ||
            g->y + g->h > uncached->info.levels[g->level].height)
            fail_msg("region %zu does not fit %s", i, path);
        read_ok(uncached, g->level, g->x, g->y, g->w, g->h, &plain[i]);
    }
    ts_reader_close(uncached);
    cache_init_ok(&cache, (size_t)256 << 20);
    r = open_ok(path, &cache);
    for (size_t i = 0; i < n; i++)
        read_ok(r, rg[i].level, rg[i].x, rg[i].y, rg[i].w, rg[i].h, &cold[i]);
    tu_block_cache_stats(&cache, &st0);
    assert_true(st0.inserts > 0);
    for (size_t i = 0; i < n; i++) {
        const struct region *g = &rg[i];
        read_ok(r, g->level, g->x, g->y, g->w, g->h, &warm);
        if (first_difference(&plain[i], &cold[i]) >= 0 || first_difference(&plain[i], &warm) >= 0)
            fail_msg("%s region %zu: cached pixels differ from uncached", path, i);
        if (exact_seed >= 0 && g->level == 0)
            assert_pattern(&warm, (uint32_t)exact_seed, g->x, g->y);
        ts_image_free(&plain[i]);
        ts_image_free(&cold[i]);
        ts_image_free(&warm);
    }
    /* The second pass decoded nothing. */
    tu_block_cache_stats(&cache, &st);
    assert_int_equal(st.inserts, st0.inserts);
    assert_true(st.hits >= st0.hits + n);
    r->ops->close(r);
    tu_block_cache_free(&cache);
}

/* ---- tests ---- */

static void test_cached_reads_match_uncached_generated(void **state)
{
    (void)state;
    char path[512];
    if (!have_tool("opj_compress") || !have_tool("ojph_compress"))
        skip();
    for (int k = GEN_UNTILED; k <= GEN_HTJ2K; k++) {
        gen_name(path, sizeof path, (enum gen_kind)k, 0);
        check_cached_equals_uncached(path, edge_regions,
                                     sizeof edge_regions / sizeof edge_regions[0], 0);
    }
}

static void test_cached_reads_match_uncached_lossy_files(void **state)
{
    (void)state;
    static const char *files[] = {"retina-tiled512-rpcl.jp2", "retina-untiled.jp2",
                                  "retina-htj2k.j2c"};
    /* 1411 x 1411: 512 px tiles and blocks at level 0, tile groups below. */
    static const struct region rg[] = {
        {0, 480, 480, 64, 64},   {0, 1000, 1000, 60, 300}, {0, 1100, 200, 311, 256},
        {1, 200, 200, 300, 300}, {2, 128, 0, 225, 256},    {4, 0, 0, 89, 89},
    };
    char path[512];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        data_path(path, sizeof path, files[i]);
        check_cached_equals_uncached(path, rg, sizeof rg / sizeof rg[0], -1);
    }
}

/* HTJ2K decodes whole codestream tiles, so one read of an untiled file stores every block of the
 * level and the far corner is then served without decoding. */
static void test_htj2k_whole_tile_decode_fills_all_blocks(void **state)
{
    (void)state;
    char path[512];
    struct tu_block_cache cache;
    struct ts_lru_stats st;
    struct ts_image img;
    if (!have_tool("ojph_compress"))
        skip();
    gen_name(path, sizeof path, GEN_HTJ2K, 0);
    cache_init_ok(&cache, (size_t)256 << 20);
    struct ts_reader *r = open_ok(path, &cache);
    read_ok(r, 0, 10, 10, 100, 100, &img);
    assert_pattern(&img, 0, 10, 10);
    ts_image_free(&img);
    tu_block_cache_stats(&cache, &st);
    /* 2200 x 1100 in 512 px blocks: 5 x 3. */
    assert_int_equal(st.inserts, 15);
    read_ok(r, 0, GEN_W - 150, GEN_H - 70, 150, 70, &img);
    assert_pattern(&img, 0, GEN_W - 150, GEN_H - 70);
    ts_image_free(&img);
    tu_block_cache_stats(&cache, &st);
    assert_int_equal(st.inserts, 15);
    assert_int_equal(st.hits, 1); /* the corner lies in one block */
    r->ops->close(r);
    tu_block_cache_free(&cache);
}

/* Five copies of a 7 MB image overflow a 32 MB cache: it evicts and stays within budget, and a
 * block bigger than the cache keeps is decoded directly, never stored. */
static void test_cache_stays_within_budget(void **state)
{
    (void)state;
    const size_t budget = (size_t)32 << 20;
    char src[512], dst[512], name[64];
    struct tu_block_cache cache, tiny;
    struct ts_lru_stats st;
    struct ts_image img;
    if (!have_tool("opj_compress"))
        skip();
    gen_name(src, sizeof src, GEN_UNTILED, 0);
    cache_init_ok(&cache, budget);
    for (int copy = 0; copy < 5; copy++) {
        snprintf(name, sizeof name, "budget-%d.jp2", copy);
        work_path(dst, sizeof dst, name);
        assert_int_equal(run("cp '%s' '%s'", src, dst), 0);
        struct ts_reader *r = open_ok(dst, &cache);
        /* A full-width strip touches every level-0 block of the file. */
        read_ok(r, 0, 0, 0, GEN_W, GEN_H, &img);
        assert_pattern_rows(&img, 0, 0, 0, 31);
        ts_image_free(&img);
        tu_block_cache_stats(&cache, &st);
        assert_true(st.bytes <= budget);
        r->ops->close(r);
    }
    tu_block_cache_stats(&cache, &st);
    assert_true(st.inserts >= 5 * 6);
    assert_true(st.evictions > 0);
    assert_true(st.bytes > 0 && st.bytes <= budget);
    assert_true(st.entries < st.inserts);
    tu_block_cache_free(&cache);

    /* 1 MB: a 512 x 512 RGB block (768 KB, over an eighth of the budget) cannot be kept, so nothing
     * is inserted. */
    cache_init_ok(&tiny, (size_t)1 << 20);
    struct ts_reader *r = open_ok(src, &tiny);
    read_ok(r, 0, 1000, 1000, 100, 100, &img);
    assert_pattern(&img, 0, 1000, 1000);
    ts_image_free(&img);
    tu_block_cache_stats(&tiny, &st);
    assert_int_equal(st.inserts, 0);
    assert_int_equal(st.bytes, 0);
    r->ops->close(r);
    tu_block_cache_free(&tiny);
}

/* Overwrites dst with src's bytes in place (same inode), padded with zeros after the codestream
 * to size bytes, with the given mtime. */
static void rewrite_in_place(const char *src, const char *dst, off_t size, time_t mtime)
{
    struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
    assert_int_equal(run("cat '%s' > '%s'", src, dst), 0);
    assert_int_equal(truncate(dst, size), 0);
    assert_int_equal(utimensat(AT_FDCWD, dst, ts, 0), 0);
}

/* Same path, inode and size, other pixels: only the new mtime tells the versions apart. */
static void test_rewritten_file_is_not_served_from_cache(void **state)
{
    (void)state;
    char a[512], b[512], dst[512];
    struct tu_block_cache cache;
    struct ts_image img;
    struct stat sa, sb, st;
    if (!have_tool("ojph_compress"))
        skip();
    cache_init_ok(&cache, (size_t)256 << 20);
    gen_name(a, sizeof a, GEN_HTJ2K, 0);
    gen_name(b, sizeof b, GEN_HTJ2K, 1);
    assert_int_equal(stat(a, &sa), 0);
    assert_int_equal(stat(b, &sb), 0);
    off_t size = (sa.st_size > sb.st_size ? sa.st_size : sb.st_size) + 100;
    work_path(dst, sizeof dst, "rewritten.j2c");
    rewrite_in_place(a, dst, size, 1000000000);
    struct ts_reader *r = open_ok(dst, &cache);
    read_ok(r, 0, 900, 400, 300, 300, &img);
    assert_pattern(&img, 0, 900, 400);
    ts_image_free(&img);
    r->ops->close(r);

    rewrite_in_place(b, dst, size, 1000003600);
    assert_int_equal(stat(dst, &st), 0);
    assert_int_equal(st.st_size, size);
    assert_int_equal(st.st_mtim.tv_sec, 1000003600);
    r = open_ok(dst, &cache);
    read_ok(r, 0, 900, 400, 300, 300, &img);
    assert_pattern(&img, 1, 900, 400);
    ts_image_free(&img);
    r->ops->close(r);
    tu_block_cache_free(&cache);
}

/* ---- concurrency ---- */

#define NTHREADS 4
#define NREADS 8

struct shared_case {
    struct ts_reader *reader;
    struct tu_block_cache *cache;
    const struct region *regions;
    size_t nregions;
    struct ts_image *expected; /* one per region */
    unsigned start;            /* where in the region list this thread begins */
    int failures;
    char first[300]; /* what the first failure was, for the report */
};

static void *reader_thread(void *arg)
{
    struct shared_case *c = arg;
    for (unsigned k = 0; k < NREADS; k++) {
        size_t i = (c->start + k * 7u) % c->nregions;
        const struct region *g = &c->regions[i];
        struct ts_read_req q = {.level = g->level,
                                .x = g->x,
                                .y = g->y,
                                .w = g->w,
                                .h = g->h,
                                .min_w = g->w,
                                .min_h = g->h};
        struct ts_image img;
        struct ts_err err;
        if (ts_reader_read(c->reader, &q, &img, &err) != TS_OK) {
            if (!c->failures++)
                snprintf(c->first, sizeof c->first, "region %zu failed: %s", i, err.msg);
            continue;
        }
        long d = first_difference(&img, &c->expected[i]);
        if (d >= 0 && !c->failures++)
            snprintf(c->first, sizeof c->first, "region %zu differs at byte %ld", i, d);
        ts_image_free(&img);
        /* Mid-run emptying races the other threads' gets and puts. */
        if (c->start == 0 && k == NREADS / 2)
            tu_block_cache_empty(c->cache);
    }
    return NULL;
}

static void check_concurrent(const char *path)
{
    const size_t n = sizeof edge_regions / sizeof edge_regions[0];
    struct ts_image expected[sizeof edge_regions / sizeof edge_regions[0]];
    struct ts_reader *readers[2], *uncached = open_ok(path, NULL);
    struct tu_block_cache cache;
    struct shared_case cases[NTHREADS];
    pthread_t tid[NTHREADS];
    struct ts_lru_stats st;
    for (size_t i = 0; i < n; i++) {
        const struct region *g = &edge_regions[i];
        read_ok(uncached, g->level, g->x, g->y, g->w, g->h, &expected[i]);
    }
    ts_reader_close(uncached);
    /* Small enough (8 MB shards, 3 MB blocks) that the threads evict each other's blocks. */
    cache_init_ok(&cache, (size_t)32 << 20);
    readers[0] = open_ok(path, &cache);
    readers[1] = open_ok(path, &cache);
    for (unsigned t = 0; t < NTHREADS; t++) {
        cases[t] =
            (struct shared_case){readers[t % 2], &cache, edge_regions, n, expected, t * 3u, 0, ""};
        assert_int_equal(pthread_create(&tid[t], NULL, reader_thread, &cases[t]), 0);
    }
    for (unsigned t = 0; t < NTHREADS; t++) {
        assert_int_equal(pthread_join(tid[t], NULL), 0);
        if (cases[t].failures)
            fail_msg("%s: thread %u saw %d wrong or failed reads, first: %s", path, t,
                     cases[t].failures, cases[t].first);
    }
    tu_block_cache_stats(&cache, &st);
    assert_true(st.inserts > 0);
    for (size_t i = 0; i < n; i++)
        ts_image_free(&expected[i]);
    readers[0]->ops->close(readers[0]);
    readers[1]->ops->close(readers[1]);
    tu_block_cache_free(&cache);
}

static void test_concurrent_reads_on_two_readers_are_correct(void **state)
{
    (void)state;
    char path[512];
    if (!have_tool("opj_compress") || !have_tool("ojph_compress"))
        skip();
    gen_name(path, sizeof path, GEN_TILED, 0);
    check_concurrent(path);
    gen_name(path, sizeof path, GEN_HTJ2K, 0);
    check_concurrent(path);
}

/* Four viewer tiles of one block asked for at the same moment: the block is decoded once. */
struct burst_case {
    struct ts_reader *reader;
    pthread_barrier_t *start;
    uint32_t x, y;
    struct ts_image img;
    int rc;
};

static void *burst_thread(void *arg)
{
    struct burst_case *c = arg;
    struct ts_read_req q = {
        .level = 1, .x = c->x, .y = c->y, .w = 256, .h = 256, .min_w = 256, .min_h = 256};
    struct ts_err err;
    pthread_barrier_wait(c->start);
    c->rc = ts_reader_read(c->reader, &q, &c->img, &err);
    return NULL;
}

static void test_simultaneous_reads_decode_a_block_once(void **state)
{
    (void)state;
    char path[512];
    struct tu_block_cache cache;
    struct ts_lru_stats st;
    struct burst_case cases[4];
    pthread_t tid[4];
    pthread_barrier_t start;
    data_path(path, sizeof path, "retina-untiled.jp2");
    cache_init_ok(&cache, (size_t)64 << 20);
    struct ts_reader *r = open_ok(path, &cache), *uncached = open_ok(path, NULL);
    /* Level 1 is 706 x 706 in one untiled codestream: a single block. */
    assert_int_equal(r->info.levels[1].width, 706);
    assert_int_equal(pthread_barrier_init(&start, NULL, 4), 0);
    for (unsigned t = 0; t < 4; t++) {
        cases[t] = (struct burst_case){r, &start, (t % 2) * 256u, (t / 2) * 256u, {0}, -1};
        assert_int_equal(pthread_create(&tid[t], NULL, burst_thread, &cases[t]), 0);
    }
    for (unsigned t = 0; t < 4; t++)
        assert_int_equal(pthread_join(tid[t], NULL), 0);
    pthread_barrier_destroy(&start);
    tu_block_cache_stats(&cache, &st);
    assert_int_equal(st.inserts, 1);
    for (unsigned t = 0; t < 4; t++) {
        struct ts_image plain;
        assert_int_equal(cases[t].rc, TS_OK);
        read_ok(uncached, 1, cases[t].x, cases[t].y, 256, 256, &plain);
        assert_true(first_difference(&plain, &cases[t].img) < 0);
        ts_image_free(&plain);
        ts_image_free(&cases[t].img);
    }
    r->ops->close(r);
    uncached->ops->close(uncached);
    tu_block_cache_free(&cache);
}

int main(int argc, char **argv)
{
    /* An optional argument runs only the tests whose names match it (cmocka wildcards). */
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cached_reads_match_uncached_generated),
        cmocka_unit_test(test_cached_reads_match_uncached_lossy_files),
        cmocka_unit_test(test_htj2k_whole_tile_decode_fills_all_blocks),
        cmocka_unit_test(test_cache_stays_within_budget),
        cmocka_unit_test(test_rewritten_file_is_not_served_from_cache),
        cmocka_unit_test(test_concurrent_reads_on_two_readers_are_correct),
        cmocka_unit_test(test_simultaneous_reads_decode_a_block_once),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
