/* JPEG 2000 decoder processes: results come back, a decoder that crashes or is canceled is
 * replaced, and none is left a zombie. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "image/jp2pool.h"
#include "image/reader.h"
#include "testutil.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DATA TESSERA_TEST_DATA

/* Stand-in decodes, run in a decoder process like the real one. */
static int fn_pattern(int fd, const struct ts_jp2pool_job *job, struct ts_image *out,
                      struct ts_err *err)
{
    (void)fd;
    (void)err;
    for (uint32_t y = 0; y < out->height; y++)
        for (uint32_t x = 0; x < out->width * out->channels; x++)
            ts_image_row(out, y)[x] = (uint8_t)(x + y * 7 + job->ax);
    return TS_OK;
}

static int fn_fail(int fd, const struct ts_jp2pool_job *job, struct ts_image *out,
                   struct ts_err *err)
{
    (void)fd;
    (void)job;
    (void)out;
    return ts_fail(err, TS_EUNSUPPORTED, "no thanks");
}

static int fn_abort(int fd, const struct ts_jp2pool_job *job, struct ts_image *out,
                    struct ts_err *err)
{
    (void)fd;
    (void)job;
    (void)out;
    (void)err;
    abort();
}

/* Allocates as a real decode does, in the decoder, then writes the pattern. */
static int fn_alloc(int fd, const struct ts_jp2pool_job *job, struct ts_image *out,
                    struct ts_err *err)
{
    enum { N = 4096 };
    void **blocks = malloc(N * sizeof *blocks);
    int got = 0;
    while (blocks && got < N && (blocks[got] = malloc(16u << (got % 10))) != NULL)
        got++;
    for (int i = 0; i < got; i++)
        free(blocks[i]);
    free(blocks);
    if (got < N)
        return ts_fail(err, TS_ENOMEM, "out of memory");
    return fn_pattern(fd, job, out, err);
}

static int fn_sleep(int fd, const struct ts_jp2pool_job *job, struct ts_image *out,
                    struct ts_err *err)
{
    (void)fd;
    (void)job;
    (void)out;
    (void)err;
    sleep(30);
    return TS_OK;
}

static int run(ts_jp2pool_fn fn, uint32_t w, uint32_t h, struct ts_cancel *cancel,
               struct ts_image *img, struct ts_err *err)
{
    struct ts_jp2pool_job job = {0};
    int fd = tu_open_ro(DATA "/retina-untiled.jp2");
    assert_true(fd >= 0);
    job.ax = 3;
    job.threads = 1;
    assert_int_equal(ts_image_alloc(img, w, h, 3), TS_OK);
    int rc = ts_jp2pool_run(fn, fd, &job, cancel, img, err);
    close(fd);
    return rc;
}

static void check_pattern(uint32_t w, uint32_t h)
{
    struct ts_image img;
    struct ts_err err;
    memset(&err, 0, sizeof err);
    assert_int_equal(run(fn_pattern, w, h, NULL, &img, &err), TS_OK);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w * 3; x++)
            assert_int_equal(ts_image_row(&img, y)[x], (uint8_t)(x + y * 7 + 3));
    ts_image_free(&img);
}

/* This process's one child is the zygote, and the decoders are the zygote's children. */
static void count_decoders(int *zombies, int *live)
{
    int zygote = 0, n, z;
    assert_int_equal(tu_list_children(getpid(), &z, &n, &zygote, 1), 0);
    assert_int_equal(z, 0);
    assert_int_equal(n, 1);
    assert_int_equal(zygote, ts_jp2pool_zygote());
    assert_int_equal(tu_count_children(zygote, zombies, live), 0);
}

static void test_results_come_back(void **state)
{
    (void)state;
    check_pattern(5, 3);
    /* Larger than the memory a decoder keeps between decodes, then small again. */
    check_pattern(6000, 4000);
    check_pattern(7, 9);
    struct ts_image img;
    struct ts_err err;
    memset(&err, 0, sizeof err);
    assert_int_equal(run(fn_fail, 4, 4, NULL, &img, &err), TS_EUNSUPPORTED);
    assert_string_equal(err.msg, "no thanks");
    ts_image_free(&img);
}

static void test_crash_is_a_codec_error_and_replaced(void **state)
{
    (void)state;
    struct ts_image img;
    struct ts_err err;
    memset(&err, 0, sizeof err);
    pid_t before[4], after[4];
    check_pattern(8, 8);
    int n = ts_jp2pool_pids(before, 4);
    assert_true(n >= 1 && n <= 4);
    assert_int_equal(run(fn_abort, 8, 8, NULL, &img, &err), TS_ECODEC);
    assert_non_null(strstr(err.msg, "crashed"));
    ts_image_free(&img);
    /* Replaced at once, not one decoder fewer. */
    assert_int_equal(ts_jp2pool_pids(after, 4), n);
    check_pattern(8, 8);
}

struct canceller {
    struct ts_cancel *c;
    unsigned ms;
};

static void *cancel_later(void *arg)
{
    struct canceller *k = arg;
    usleep(k->ms * 1000);
    ts_cancel_stop(k->c, TS_ECANCELED);
    return NULL;
}

static void test_cancel_kills_and_replaces(void **state)
{
    (void)state;
    struct ts_cancel c;
    struct ts_image img;
    struct ts_err err;
    memset(&err, 0, sizeof err);
    struct canceller k = {&c, 200};
    pthread_t t;
    ts_cancel_init(&c, 0);
    assert_int_equal(pthread_create(&t, NULL, cancel_later, &k), 0);
    int64_t t0 = ts_monotonic_ns();
    assert_int_equal(run(fn_sleep, 8, 8, &c, &img, &err), TS_ECANCELED);
    double took = (ts_monotonic_ns() - t0) / 1e9;
    pthread_join(t, NULL);
    ts_image_free(&img);
    assert_true(took < 5.0);
    check_pattern(8, 8);
}

static void test_decoder_killed_while_idle(void **state)
{
    (void)state;
    pid_t pids[4];
    check_pattern(8, 8);
    int n = ts_jp2pool_pids(pids, 4);
    assert_true(n >= 1);
    for (int i = 0; i < n && i < 4; i++)
        kill(pids[i], SIGKILL);
    usleep(100 * 1000);
    check_pattern(8, 8);
}

static void test_real_decode_after_crashes(void **state)
{
    (void)state;
    struct ts_reader *r = NULL;
    struct ts_err err;
    memset(&err, 0, sizeof err);
    struct ts_image img;
    assert_int_equal(ts_reader_open(DATA "/retina-tiled512-rpcl.jp2", &r, &err), TS_OK);
    for (int i = 0; i < 3; i++) {
        struct ts_image junk;
        assert_int_equal(run(fn_abort, 8, 8, NULL, &junk, &err), TS_ECODEC);
        ts_image_free(&junk);
        struct ts_read_req req = {.level = 1, .x = 10, .y = 20, .w = 256, .h = 200};
        assert_int_equal(ts_reader_read(r, &req, &img, &err), TS_OK);
        assert_int_equal(img.width, 256);
        ts_image_free(&img);
    }
    ts_reader_close(r);
}

/* A decoder keeps the codec of a single-tile file between decodes: areas read one after
 * another, at different levels, match the same areas read from fresh copies of the file. */
static void test_kept_codec_matches_fresh_decodes(void **state)
{
    (void)state;
    static const struct ts_read_req reqs[] = {
        {.level = 0, .x = 100, .y = 200, .w = 256, .h = 256},
        {.level = 0, .x = 600, .y = 300, .w = 300, .h = 128},
        {.level = 2, .x = 10, .y = 20, .w = 200, .h = 150},
        {.level = 0, .x = 0, .y = 0, .w = 1411, .h = 1411},
        {.level = 2, .x = 100, .y = 5, .w = 252, .h = 200},
        {.level = 1, .x = 300, .y = 300, .w = 405, .h = 405},
        {.level = 0, .x = 1155, .y = 1155, .w = 256, .h = 256},
    };
    struct ts_reader *r = NULL;
    struct ts_err err;
    memset(&err, 0, sizeof err);
    assert_int_equal(tu_mkdirs(TESSERA_TEST_WORK), 0);
    assert_int_equal(ts_reader_open(DATA "/retina-untiled.jp2", &r, &err), TS_OK);
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        char copy[512];
        struct ts_reader *fresh = NULL;
        struct ts_image a, b;
        snprintf(copy, sizeof copy, "%s/fresh-%zu.jp2", TESSERA_TEST_WORK, i);
        assert_int_equal(tu_copy_file(DATA "/retina-untiled.jp2", copy), 0);
        assert_int_equal(ts_reader_open(copy, &fresh, &err), TS_OK);
        assert_int_equal(ts_reader_read(r, &reqs[i], &a, &err), TS_OK);
        assert_int_equal(ts_reader_read(fresh, &reqs[i], &b, &err), TS_OK);
        assert_int_equal(a.width, b.width);
        assert_int_equal(a.height, b.height);
        for (uint32_t y = 0; y < a.height; y++)
            assert_memory_equal(ts_image_row(&a, y), ts_image_row(&b, y),
                                (size_t)a.width * a.channels);
        ts_image_free(&a);
        ts_image_free(&b);
        ts_reader_close(fresh);
        unlink(copy);
    }
    ts_reader_close(r);
}

static void test_no_zombies(void **state)
{
    (void)state;
    int zombies, live;
    for (int i = 0; i < 20; i++) {
        struct ts_image img;
        struct ts_err err;
        memset(&err, 0, sizeof err);
        assert_int_equal(run(i % 3 == 0 ? fn_abort : fn_pattern, 8, 8, NULL, &img, &err),
                         i % 3 == 0 ? TS_ECODEC : TS_OK);
        ts_image_free(&img);
    }
    count_decoders(&zombies, &live);
    print_message("decoders: %d live, %d zombies\n", live, zombies);
    assert_int_equal(zombies, 0);
    assert_true(live >= 1 && live <= 4);
    assert_int_equal(live, ts_jp2pool_pids(NULL, 0));
}

/* Threads that keep the allocator's shared lists busy: blocks allocated in batches and freed
 * together, so that thread caches drain and refill. */
static atomic_bool hammering;

static void *hammer(void *arg)
{
    (void)arg;
    enum { N = 1024 };
    static _Thread_local void *blocks[N];
    while (atomic_load(&hammering)) {
        for (int i = 0; i < N; i++)
            blocks[i] = malloc(16u << (i % 10));
        for (int i = 0; i < N; i++)
            free(blocks[i]);
    }
    return NULL;
}

/* A decoder forked by a process whose other threads were allocating inherited their allocator
 * locks held and waited on them until the clock ended it (seen under AddressSanitizer): every
 * decoder is now forked by the zygote, which runs no other thread. */
static void test_decoders_forked_while_threads_allocate_work(void **state)
{
    (void)state;
    pthread_t t[2];
    check_pattern(8, 8);
    atomic_store(&hammering, true);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, NULL), 0);
    int crashed = 0, decoded = 0;
    int64_t t0 = ts_monotonic_ns();
    for (int i = 0; i < 40; i++) {
        struct ts_image img;
        struct ts_err err;
        memset(&err, 0, sizeof err);
        /* The crash has its decoder replaced at once, forked while the threads allocate. */
        crashed += run(fn_abort, 8, 8, NULL, &img, &err) == TS_ECODEC;
        ts_image_free(&img);
        decoded += run(fn_alloc, 8, 8, NULL, &img, &err) == TS_OK;
        ts_image_free(&img);
    }
    atomic_store(&hammering, false);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    double took = (ts_monotonic_ns() - t0) / 1e9;
    print_message("40 crashes and replacements in %.2f s\n", took);
    assert_int_equal(crashed, 40);
    assert_int_equal(decoded, 40);
    /* Every decoder is the zygote's child, none this process's. */
    pid_t pids[4];
    int n = ts_jp2pool_pids(pids, 4);
    assert_true(n >= 1);
    for (int i = 0; i < n && i < 4; i++)
        assert_int_equal(tu_parent_of(pids[i]), ts_jp2pool_zygote());
    assert_true(ts_jp2pool_zygote() != getpid());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_results_come_back),
        cmocka_unit_test(test_crash_is_a_codec_error_and_replaced),
        cmocka_unit_test(test_cancel_kills_and_replaces),
        cmocka_unit_test(test_decoder_killed_while_idle),
        cmocka_unit_test(test_real_decode_after_crashes),
        cmocka_unit_test(test_kept_codec_matches_fresh_decodes),
        cmocka_unit_test(test_decoders_forked_while_threads_allocate_work),
        cmocka_unit_test(test_no_zombies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
