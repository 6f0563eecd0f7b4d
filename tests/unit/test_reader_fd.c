/* Readers opened from a descriptor: they never go back to the path, own the descriptor, and
 * do not depend on its shared file offset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "image/reader.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <webp/encode.h>

#define DATA TESSERA_TEST_DATA
#define WORK TESSERA_TEST_WORK

/* A lossless WebP the test writes itself (tests/data has none). */
#define WEBP_W 300u
#define WEBP_H 200u

static char webp_path[512];

/* ---- helpers ---- */

static void work_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", WORK, name);
}

static void data_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", DATA, name);
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t n = len ? fwrite(data, 1, len, f) : 0;
    return fclose(f) == 0 && n == len ? 0 : -1;
}

static int make_webp(const char *path)
{
    uint8_t *rgb = malloc((size_t)WEBP_W * WEBP_H * 3), *out = NULL;
    size_t len;
    int rc = -1;
    if (!rgb)
        return -1;
    for (uint32_t y = 0; y < WEBP_H; y++)
        for (uint32_t x = 0; x < WEBP_W; x++)
            for (uint32_t c = 0; c < 3; c++)
                rgb[((size_t)y * WEBP_W + x) * 3 + c] =
                    (uint8_t)((x * 7u + y * 3u + c * 50u) & 0xffu);
    len = WebPEncodeLosslessRGB(rgb, (int)WEBP_W, (int)WEBP_H, (int)WEBP_W * 3, &out);
    if (len > 0)
        rc = write_file(path, out, len);
    WebPFree(out);
    free(rgb);
    return rc;
}

static int setup(void **state)
{
    (void)state;
    if (tu_mkdirs(WORK) != 0)
        return -1;
    work_path(webp_path, sizeof webp_path, "generated-lossless.webp");
    return make_webp(webp_path);
}

static void assert_fd_closed(int fd)
{
    errno = 0;
    int rc = fcntl(fd, F_GETFD);
    assert_int_equal(rc, -1);
    assert_int_equal(errno, EBADF);
}

static void assert_fd_open(int fd)
{
    assert_true(fcntl(fd, F_GETFD) != -1);
}

/* Copies src into the work folder, opens the copy, and unlinks it; then puts a decoy (a text
 * file) at the same path, so a reader that went back to the path would find no image there. */
static int open_unlinked_copy(const char *src)
{
    char dst[512], decoy[512];
    const char *base = strrchr(src, '/');
    snprintf(dst, sizeof dst, "%s/unlinked-%s", WORK, base ? base + 1 : src);
    if (tu_copy_file(src, dst) != 0)
        fail_msg("cannot copy %s to %s", src, dst);
    int fd = tu_open_ro(dst);
    if (fd < 0)
        fail_msg("cannot open %s: %s", dst, strerror(errno));
    assert_int_equal(unlink(dst), 0);
    data_path(decoy, sizeof decoy, "SOURCES.md");
    if (tu_copy_file(decoy, dst) != 0)
        fail_msg("cannot put a decoy at %s", dst);
    return fd;
}

static struct ts_reader *open_fd_ok(int fd, uint32_t page, const struct ts_block_store *blocks,
                                    const char *what)
{
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    int rc = ts_reader_open_fd(fd, page, blocks, &r, &err);
    if (rc != TS_OK)
        fail_msg("ts_reader_open_fd(%s, page %u) = %d: %s", what, page, rc, err.msg);
    assert_non_null(r);
    return r;
}

static struct ts_reader *open_path_ok(const char *path, uint32_t page)
{
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    int rc = ts_reader_open_page(path, page, &r, &err);
    if (rc != TS_OK)
        fail_msg("ts_reader_open_page(%s, %u) = %d: %s", path, page, rc, err.msg);
    return r;
}

static void read_ok(struct ts_reader *r, const struct ts_read_req *q, struct ts_image *img,
                    const char *what)
{
    struct ts_err err = {0};
    int rc = ts_reader_read(r, q, img, &err);
    if (rc != TS_OK)
        fail_msg("%s: read L%u %u,%u %ux%u = %d: %s", what, q->level, q->x, q->y, q->w, q->h, rc,
                 err.msg);
    assert_int_equal(img->width, q->w);
    assert_int_equal(img->height, q->h);
}

/* Same size and channels, the centre pixel compared value by value (so a failure prints both),
 * then every byte. */
static void assert_same_image(const struct ts_image *got, const struct ts_image *want,
                              const char *what)
{
    assert_int_equal(got->width, want->width);
    assert_int_equal(got->height, want->height);
    assert_int_equal(got->channels, want->channels);
    const uint8_t *g =
        ts_image_row(got, got->height / 2) + (size_t)(got->width / 2) * got->channels;
    const uint8_t *w =
        ts_image_row(want, want->height / 2) + (size_t)(want->width / 2) * want->channels;
    for (uint32_t c = 0; c < got->channels; c++)
        assert_int_equal(g[c], w[c]);
    for (uint32_t y = 0; y < got->height; y++)
        if (memcmp(ts_image_row(got, y), ts_image_row(want, y),
                   (size_t)got->width * got->channels) != 0)
            fail_msg("%s: row %u differs from the read by path", what, y);
}

/* A region inside level 0 crossing the middle, and the whole smallest level. */
static void pick_regions(const struct ts_image_info *in, struct ts_read_req q[2])
{
    const struct ts_level *l0 = &in->levels[0], *ln = &in->levels[in->nlevels - 1];
    uint32_t x = l0->width / 3, y = l0->height / 3;
    uint32_t w = l0->width - x < 100 ? l0->width - x : 100;
    uint32_t h = l0->height - y < 80 ? l0->height - y : 80;
    q[0] = (struct ts_read_req){0, x, y, w, h, w, h, NULL, false, 0, 1, 0};
    q[1] = (struct ts_read_req){in->nlevels - 1, 0,    0,     ln->width, ln->height, ln->width,
                                ln->height,      NULL, false, 0,         1,          0};
}

/* Opens an unlinked copy of src twice (the descriptor and a dup of it: two readers sharing one
 * file offset), moves that offset between reads, and checks every read against the same file
 * read by path. Closing each reader closes its descriptor. */
static void check_fd_matches_path(const char *src, uint32_t page,
                                  const struct ts_block_store *blocks)
{
    struct ts_reader *by_path = open_path_ok(src, page);
    struct ts_read_req q[2];
    struct ts_image want[2], got;
    pick_regions(&by_path->info, q);
    for (int i = 0; i < 2; i++)
        read_ok(by_path, &q[i], &want[i], src);

    int fd = open_unlinked_copy(src);
    int fd2 = dup(fd), mover = dup(fd);
    assert_true(fd2 >= 0 && mover >= 0);
    /* Wherever the shared offset is, the readers read from where they mean to. */
    assert_true(lseek(mover, 12345, SEEK_SET) == 12345);
    struct ts_reader *a = open_fd_ok(fd, page, blocks, src);
    assert_true(lseek(mover, 0, SEEK_END) >= 0);
    struct ts_reader *b = open_fd_ok(fd2, page, blocks, src);
    assert_int_equal(a->info.width, by_path->info.width);
    assert_int_equal(a->info.height, by_path->info.height);
    assert_int_equal(a->info.nlevels, by_path->info.nlevels);
    assert_int_equal(a->info.channels, by_path->info.channels);
    assert_string_equal(a->info.format, by_path->info.format);
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 2; i++) {
            struct ts_reader *r = (round + i) % 2 ? b : a;
            assert_true(lseek(mover, (off_t)(round * 7 + i * 1000), SEEK_SET) >= 0);
            read_ok(r, &q[i], &got, src);
            assert_same_image(&got, &want[i], src);
            ts_image_free(&got);
        }
    ts_reader_close(a);
    ts_reader_close(b);
    assert_fd_closed(fd);
    assert_fd_closed(fd2);
    assert_fd_open(mover);
    close(mover);
    for (int i = 0; i < 2; i++)
        ts_image_free(&want[i]);
    ts_reader_close(by_path);
}

static void check_data_file(const char *name, uint32_t page)
{
    char path[512];
    data_path(path, sizeof path, name);
    check_fd_matches_path(path, page, NULL);
}

/* ---- every format, from an unlinked file ---- */

static void test_pyramid_tiff_reads_from_unlinked_fd(void **state)
{
    (void)state;
    check_data_file("retina-pyr-jpeg-256.tif", 0);
}

static void test_striped_tiff_reads_from_unlinked_fd(void **state)
{
    (void)state;
    check_data_file("retina-striped-jpeg.tif", 0);
}

static void test_tiff_page_1_reads_from_unlinked_fd(void **state)
{
    (void)state;
    check_data_file("multipage-2p-gray.tif", 1);
}

static void test_jpeg_reads_from_unlinked_fd(void **state)
{
    (void)state;
    check_data_file("retina-1411x1411.jpg", 0);
}

static void test_png_reads_from_unlinked_fd(void **state)
{
    (void)state;
    check_data_file("camera-512-gray.png", 0);
}

static void test_webp_reads_from_unlinked_fd(void **state)
{
    (void)state;
    check_fd_matches_path(webp_path, 0, NULL);
}

/* JPEG 2000 without a block store, then with one: the second pass of check_fd_matches_path
 * comes from the store, keyed by the unlinked file's identity. */
static void check_jp2(const char *name)
{
    struct tu_block_cache cache;
    struct ts_lru_stats st;
    check_data_file(name, 0);
    assert_int_equal(tu_block_cache_init(&cache, (size_t)64 << 20), 0);
    char path[512];
    data_path(path, sizeof path, name);
    check_fd_matches_path(path, 0, &cache.store);
    tu_block_cache_stats(&cache, &st);
    assert_true(st.inserts > 0);
    assert_true(st.hits > 0);
    tu_block_cache_free(&cache);
}

static void test_jp2_reads_from_unlinked_fd(void **state)
{
    (void)state;
    check_jp2("retina-tiled512-rpcl.jp2");
}

static void test_htj2k_reads_from_unlinked_fd(void **state)
{
    (void)state;
    check_jp2("retina-htj2k.j2c");
}

/* ---- two threads, two readers, one shared file offset ---- */

#define RACE_READS 40u
#define RACE_TILES 64u
#define RACE_EDGE 64u

/* Tile t of 64 scattered over level 0 (an 8 x 8 grid of 64 px tiles). */
static struct ts_read_req race_tile(const struct ts_image_info *in, uint32_t t)
{
    return (struct ts_read_req){0,
                                (t % 8u) * (in->width / 8u),
                                (t / 8u) * (in->height / 8u),
                                RACE_EDGE,
                                RACE_EDGE,
                                RACE_EDGE,
                                RACE_EDGE,
                                NULL,
                                false,
                                0,
                                1,
                                0};
}

struct race {
    struct ts_reader *reader;
    const struct ts_image *want; /* RACE_TILES tiles, read by path */
    uint32_t first;              /* this thread's first tile */
    int failures;
    char why[300]; /* the last failure */
};

static bool same_pixels(const struct ts_image *a, const struct ts_image *b)
{
    if (a->width != b->width || a->height != b->height || a->channels != b->channels)
        return false;
    for (uint32_t y = 0; y < a->height; y++)
        if (memcmp(ts_image_row(a, y), ts_image_row(b, y), (size_t)a->width * a->channels))
            return false;
    return true;
}

static void *race_thread(void *arg)
{
    struct race *c = arg;
    for (uint32_t k = 0; k < RACE_READS; k++) {
        uint32_t t = (c->first + k * 7u) % RACE_TILES;
        struct ts_read_req q = race_tile(&c->reader->info, t);
        struct ts_image got;
        struct ts_err err;
        int rc = ts_reader_read(c->reader, &q, &got, &err);
        if (rc != TS_OK) {
            c->failures++;
            snprintf(c->why, sizeof c->why, "tile %u: status %d: %s", t, rc, err.msg);
            continue;
        }
        if (!same_pixels(&got, &c->want[t])) {
            c->failures++;
            snprintf(c->why, sizeof c->why, "tile %u: pixels differ", t);
        }
        ts_image_free(&got);
    }
    return NULL;
}

/* A reader that reads with lseek + read on a dup'd descriptor would now and then read the
 * other reader's bytes; pread at each reader's own offset never does. */
static void check_race(const char *name, const struct ts_block_store *blocks)
{
    char path[512];
    struct ts_image want[RACE_TILES];
    struct race cases[2];
    pthread_t tid[2];
    data_path(path, sizeof path, name);
    struct ts_reader *by_path = open_path_ok(path, 0);
    for (uint32_t t = 0; t < RACE_TILES; t++) {
        struct ts_read_req q = race_tile(&by_path->info, t);
        read_ok(by_path, &q, &want[t], path);
    }
    ts_reader_close(by_path);
    int fd = open_unlinked_copy(path);
    int fd2 = dup(fd);
    assert_true(fd2 >= 0);
    for (int t = 0; t < 2; t++) {
        cases[t] = (struct race){open_fd_ok(t ? fd2 : fd, 0, blocks, path), want, t * 32u, 0, ""};
        assert_int_equal(pthread_create(&tid[t], NULL, race_thread, &cases[t]), 0);
    }
    for (int t = 0; t < 2; t++) {
        assert_int_equal(pthread_join(tid[t], NULL), 0);
        ts_reader_close(cases[t].reader);
    }
    for (int t = 0; t < 2; t++)
        if (cases[t].failures)
            fail_msg("%s: thread %d saw %d failed or wrong reads of %u (last: %s)", name, t,
                     cases[t].failures, RACE_READS, cases[t].why);
    for (uint32_t t = 0; t < RACE_TILES; t++)
        ts_image_free(&want[t]);
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static void test_readers_on_dup_fds_do_not_race_on_the_offset(void **state)
{
    (void)state;
    struct tu_block_cache cache;
    check_race("retina-pyr-jpeg-256.tif", NULL);
    check_race("retina-striped-jpeg.tif", NULL);
    check_race("retina-1411x1411.jpg", NULL);
    check_race("camera-512-gray.png", NULL);
    /* Through a block store, JPEG 2000 blocks decode in this process. */
    assert_int_equal(tu_block_cache_init(&cache, (size_t)64 << 20), 0);
    check_race("retina-tiled512-rpcl.jp2", &cache.store);
    tu_block_cache_free(&cache);
#ifndef UNDER_ASAN
    /* Without one, each read forks a decoder. Not under ASan: its allocator (GCC 12) is not
     * fork-safe, so a child forked while the other thread is inside malloc can hang on the
     * allocator's lock until its alarm ends it. */
    check_race("retina-tiled512-rpcl.jp2", NULL);
#endif
}

/* ---- refusals: the descriptor is closed whatever the outcome ---- */

static int open_work_file(const char *name, const void *data, size_t len)
{
    char path[512];
    work_path(path, sizeof path, name);
    assert_int_equal(write_file(path, data, len), 0);
    int fd = tu_open_ro(path);
    assert_true(fd >= 0);
    return fd;
}

static void test_non_image_is_unsupported_and_fd_closed(void **state)
{
    (void)state;
    char path[512];
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    data_path(path, sizeof path, "SOURCES.md");
    int fd = tu_open_ro(path);
    assert_true(fd >= 0);
    assert_int_equal(ts_reader_open_fd(fd, 0, NULL, &r, &err), TS_EUNSUPPORTED);
    assert_null(r);
    assert_fd_closed(fd);
}

static void test_empty_file_is_an_error_and_fd_closed(void **state)
{
    (void)state;
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    int fd = open_work_file("empty.img", "", 0);
    assert_int_equal(ts_reader_open_fd(fd, 0, NULL, &r, &err), TS_EUNSUPPORTED);
    assert_null(r);
    assert_fd_closed(fd);
}

/* Three bytes that promise a JPEG, then nothing. */
static void test_bare_signature_is_a_codec_error_and_fd_closed(void **state)
{
    (void)state;
    static const uint8_t soi[3] = {0xff, 0xd8, 0xff};
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    int fd = open_work_file("soi-only.jpg", soi, sizeof soi);
    assert_int_equal(ts_reader_open_fd(fd, 0, NULL, &r, &err), TS_ECODEC);
    assert_null(r);
    assert_fd_closed(fd);
}

static void test_directory_is_not_found_and_fd_closed(void **state)
{
    (void)state;
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    int fd = open(WORK, O_RDONLY | O_CLOEXEC | O_DIRECTORY);
    assert_true(fd >= 0);
    assert_int_equal(ts_reader_open_fd(fd, 0, NULL, &r, &err), TS_ENOTFOUND);
    assert_null(r);
    assert_fd_closed(fd);
}

static void test_page_1_of_a_single_page_format_is_not_found(void **state)
{
    (void)state;
    static const char *files[] = {"retina-1411x1411.jpg", "camera-512-gray.png",
                                  "retina-tiled512-rpcl.jp2", "retina-htj2k.j2c"};
    char path[512];
    for (size_t i = 0; i < sizeof files / sizeof files[0] + 1; i++) {
        struct ts_reader *r = NULL;
        struct ts_err err = {0};
        if (i < sizeof files / sizeof files[0])
            data_path(path, sizeof path, files[i]);
        else
            snprintf(path, sizeof path, "%s", webp_path);
        int fd = tu_open_ro(path);
        assert_true(fd >= 0);
        int rc = ts_reader_open_fd(fd, 1, NULL, &r, &err);
        if (rc != TS_ENOTFOUND)
            fail_msg("%s page 1: status %d (%s), expected %d", path, rc, err.msg, TS_ENOTFOUND);
        assert_null(r);
        assert_fd_closed(fd);
    }
}

static void test_missing_tiff_page_is_not_found_and_fd_closed(void **state)
{
    (void)state;
    char path[512];
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    data_path(path, sizeof path, "multipage-2p-gray.tif");
    int fd = tu_open_ro(path);
    assert_true(fd >= 0);
    assert_int_equal(ts_reader_open_fd(fd, 2, NULL, &r, &err), TS_ENOTFOUND);
    assert_null(r);
    assert_fd_closed(fd);
}

/* Each format's own opener, handed bytes of another format (or none), says so and closes. */
static void test_each_opener_refuses_foreign_bytes_and_closes_fd(void **state)
{
    (void)state;
    char tif[512], png[512];
    data_path(tif, sizeof tif, "retina-pyr-jpeg-256.tif");
    data_path(png, sizeof png, "camera-512-gray.png");
    for (int opener = 0; opener < 5; opener++)
        for (int input = 0; input < 2; input++) {
            struct ts_reader *r = NULL;
            struct ts_err err = {0};
            /* TIFF bytes for every opener but TIFF's, which gets a PNG; then an empty file. */
            int fd = input == 1 ? open_work_file("empty-for-opener.img", "", 0)
                                : tu_open_ro(opener == 0 ? png : tif);
            int rc;
            assert_true(fd >= 0);
            switch (opener) {
            case 0: rc = ts_tiff_open_fd(fd, 0, &r, &err); break;
            case 1: rc = ts_jpeg_open_fd(fd, &r, &err); break;
            case 2: rc = ts_png_open_fd(fd, &r, &err); break;
            case 3: rc = ts_jp2_open_fd(fd, NULL, &r, &err); break;
            default: rc = ts_webp_open_fd(fd, &r, &err); break;
            }
            if (rc != TS_EUNSUPPORTED)
                fail_msg("opener %d, input %d: status %d (%s), expected %d", opener, input, rc,
                         err.msg, TS_EUNSUPPORTED);
            assert_null(r);
            assert_fd_closed(fd);
        }
}

/* A file cut short after the reader opened it: the read fails (no SIGBUS: nothing is mapped),
 * except for WebP, which has the whole file in memory from the open. */
static void test_file_truncated_after_open_fails_cleanly(void **state)
{
    (void)state;
    static const char *files[] = {"retina-pyr-jpeg-256.tif",  "retina-striped-jpeg.tif",
                                  "retina-1411x1411.jpg",     "camera-512-gray.png",
                                  "retina-tiled512-rpcl.jp2", "retina-htj2k.j2c"};
    for (size_t i = 0; i < sizeof files / sizeof files[0] + 1; i++) {
        char src[512], dst[512];
        bool webp = i == sizeof files / sizeof files[0];
        if (webp)
            snprintf(src, sizeof src, "%s", webp_path);
        else
            data_path(src, sizeof src, files[i]);
        work_path(dst, sizeof dst, "truncated-after-open.img");
        assert_int_equal(tu_copy_file(src, dst), 0);
        int fd = open(dst, O_RDWR | O_CLOEXEC);
        assert_true(fd >= 0);
        int cutter = dup(fd);
        assert_true(cutter >= 0);
        struct ts_reader *r = open_fd_ok(fd, 0, NULL, src);
        struct ts_read_req q[2];
        struct ts_image img = {0};
        struct ts_err err = {0};
        pick_regions(&r->info, q);
        assert_int_equal(ftruncate(cutter, 64), 0);
        int rc = ts_reader_read(r, &q[0], &img, &err);
        if (webp) {
            assert_int_equal(rc, TS_OK);
            ts_image_free(&img);
        } else {
            if (rc == TS_OK)
                fail_msg("%s: read after truncation succeeded", src);
            assert_null(img.data);
        }
        ts_reader_close(r);
        close(cutter);
    }
}

int main(int argc, char **argv)
{
    /* An optional argument runs only the tests whose names match it (cmocka wildcards). */
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pyramid_tiff_reads_from_unlinked_fd),
        cmocka_unit_test(test_striped_tiff_reads_from_unlinked_fd),
        cmocka_unit_test(test_tiff_page_1_reads_from_unlinked_fd),
        cmocka_unit_test(test_jpeg_reads_from_unlinked_fd),
        cmocka_unit_test(test_png_reads_from_unlinked_fd),
        cmocka_unit_test(test_webp_reads_from_unlinked_fd),
        cmocka_unit_test(test_jp2_reads_from_unlinked_fd),
        cmocka_unit_test(test_htj2k_reads_from_unlinked_fd),
        cmocka_unit_test(test_readers_on_dup_fds_do_not_race_on_the_offset),
        cmocka_unit_test(test_non_image_is_unsupported_and_fd_closed),
        cmocka_unit_test(test_empty_file_is_an_error_and_fd_closed),
        cmocka_unit_test(test_bare_signature_is_a_codec_error_and_fd_closed),
        cmocka_unit_test(test_directory_is_not_found_and_fd_closed),
        cmocka_unit_test(test_page_1_of_a_single_page_format_is_not_found),
        cmocka_unit_test(test_missing_tiff_page_is_not_found_and_fd_closed),
        cmocka_unit_test(test_each_opener_refuses_foreign_bytes_and_closes_fd),
        cmocka_unit_test(test_file_truncated_after_open_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
