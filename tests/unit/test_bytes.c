/* Byte sources: a remote object read through the block cache (aligned blocks, one request per
 * stretch of missing blocks, shared by one version of an object, bounded), its failures, and a
 * file read the same way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "cache/lru.h"
#include "image/bytes.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK 4096u
#define MAX_CALLS 64

/* An object in memory that records every fetch made of it. */
struct fake {
    const uint8_t *data;
    uint64_t size;
    unsigned calls;
    uint64_t off[MAX_CALLS];
    size_t len[MAX_CALLS];
    int fail; /* a status to fail with, or 0 */
    unsigned released;
};

static int fake_fetch(void *obj, void *buf, size_t len, uint64_t off, struct ts_err *err)
{
    struct fake *f = obj;
    if (f->calls < MAX_CALLS) {
        f->off[f->calls] = off;
        f->len[f->calls] = len;
    }
    f->calls++;
    if (f->fail)
        return ts_fail(err, f->fail, "the fake source failed on purpose");
    assert_true(off + len <= f->size); /* never asked past the end */
    memcpy(buf, f->data + off, len);
    return TS_OK;
}

static void fake_release(void *obj)
{
    ((struct fake *)obj)->released++;
}

static bool store_get(void *ctx, const char *key, struct ts_buf *out)
{
    return ts_lru_get(ctx, key, out);
}

static void store_put(void *ctx, const char *key, const void *value, size_t len)
{
    ts_lru_put(ctx, key, value, len);
}

static uint8_t *pattern(size_t n)
{
    uint8_t *p = malloc(n);
    assert_non_null(p);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        p[i] = (uint8_t)x;
    }
    return p;
}

static struct ts_bytes *open_fake(struct fake *f, const char *identity,
                                  const struct ts_block_store *store)
{
    struct ts_bytes_remote r = {fake_fetch, fake_release, f, f->size, identity, store, BLOCK};
    struct ts_bytes *b;
    assert_int_equal(ts_bytes_from_remote(&r, &b), TS_OK);
    return b;
}

struct fixture {
    struct ts_lru *lru;
    struct ts_block_store store;
    uint8_t *data;
    struct fake f;
};

static int setup(void **state)
{
    struct fixture *x = calloc(1, sizeof *x);
    assert_int_equal(ts_lru_create(1 << 20, 1, &x->lru), 0);
    x->store = (struct ts_block_store){x->lru, store_get, store_put, 1 << 19};
    x->data = pattern(10 * BLOCK + 123); /* a short last block */
    x->f = (struct fake){.data = x->data, .size = 10 * BLOCK + 123};
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *x = *state;
    ts_lru_destroy(x->lru);
    free(x->data);
    free(x);
    return 0;
}

static void test_small_read_fetches_one_aligned_block(void **state)
{
    struct fixture *x = *state;
    struct ts_bytes *b = open_fake(&x->f, "obj\n\"v1\"", &x->store);
    uint8_t buf[100];
    assert_int_equal(ts_bytes_read_at(b, buf, sizeof buf, 2 * BLOCK + 50), sizeof buf);
    assert_memory_equal(buf, x->data + 2 * BLOCK + 50, sizeof buf);
    assert_int_equal(x->f.calls, 1);
    assert_int_equal(x->f.off[0], 2 * BLOCK);
    assert_int_equal(x->f.len[0], BLOCK);
    /* Anything else in that block costs no request. */
    assert_int_equal(ts_bytes_read_at(b, buf, 10, 2 * BLOCK + 4000), 10);
    assert_memory_equal(buf, x->data + 2 * BLOCK + 4000, 10);
    assert_int_equal(x->f.calls, 1);
    ts_bytes_unref(b);
    assert_int_equal(x->f.released, 1);
}

static void test_missing_neighbours_come_in_one_request(void **state)
{
    struct fixture *x = *state;
    struct ts_bytes *b = open_fake(&x->f, "obj\n\"v1\"", &x->store);
    size_t n = 2 * BLOCK + 10;
    uint8_t *buf = malloc(n);
    assert_int_equal(ts_bytes_read_at(b, buf, n, BLOCK + 100), (ssize_t)n);
    assert_memory_equal(buf, x->data + BLOCK + 100, n);
    assert_int_equal(x->f.calls, 1);
    assert_int_equal(x->f.off[0], BLOCK);
    assert_int_equal(x->f.len[0], 3 * BLOCK);
    free(buf);
    ts_bytes_unref(b);
}

static void test_cached_block_in_the_middle_is_not_fetched_again(void **state)
{
    struct fixture *x = *state;
    struct ts_bytes *b = open_fake(&x->f, "obj\n\"v1\"", &x->store);
    uint8_t one[8], *buf = malloc(5 * BLOCK);
    assert_int_equal(ts_bytes_read_at(b, one, sizeof one, 4 * BLOCK), sizeof one);
    assert_int_equal(x->f.calls, 1);
    /* Blocks 3 to 5: 4 is cached, so 3 and 5 are fetched, each on its own. */
    assert_int_equal(ts_bytes_read_at(b, buf, 3 * BLOCK, 3 * BLOCK), 3 * BLOCK);
    assert_memory_equal(buf, x->data + 3 * BLOCK, 3 * BLOCK);
    assert_int_equal(x->f.calls, 3);
    assert_int_equal(x->f.off[1], 3 * BLOCK);
    assert_int_equal(x->f.len[1], BLOCK);
    assert_int_equal(x->f.off[2], 5 * BLOCK);
    assert_int_equal(x->f.len[2], BLOCK);
    free(buf);
    ts_bytes_unref(b);
}

static void test_one_version_shares_blocks_another_does_not(void **state)
{
    struct fixture *x = *state;
    struct ts_bytes *a = open_fake(&x->f, "obj\n\"v1\"", &x->store);
    uint8_t buf[64];
    assert_int_equal(ts_bytes_read_at(a, buf, sizeof buf, 7 * BLOCK), sizeof buf);
    ts_bytes_unref(a);
    assert_int_equal(x->f.calls, 1);
    /* Another request for the same version finds the block. */
    struct ts_bytes *again = open_fake(&x->f, "obj\n\"v1\"", &x->store);
    assert_int_equal(ts_bytes_read_at(again, buf, sizeof buf, 7 * BLOCK + 8), sizeof buf);
    assert_memory_equal(buf, x->data + 7 * BLOCK + 8, sizeof buf);
    assert_int_equal(x->f.calls, 1);
    struct ts_bytes_counts c;
    ts_bytes_counts(again, &c);
    assert_int_equal(c.block_hits, 1);
    assert_int_equal(c.fetches, 0);
    ts_bytes_unref(again);
    /* A new ETag is another object as far as the cache goes. */
    struct ts_bytes *v2 = open_fake(&x->f, "obj\n\"v2\"", &x->store);
    assert_int_equal(ts_bytes_read_at(v2, buf, sizeof buf, 7 * BLOCK), sizeof buf);
    assert_int_equal(x->f.calls, 2);
    ts_bytes_unref(v2);
}

static void test_end_of_object(void **state)
{
    struct fixture *x = *state;
    struct ts_bytes *b = open_fake(&x->f, "obj\n\"v1\"", &x->store);
    uint8_t buf[500];
    /* 123 bytes remain in the last, short block: they come back, and nothing more is asked. */
    assert_int_equal(ts_bytes_read_at(b, buf, sizeof buf, 10 * BLOCK), 123);
    assert_memory_equal(buf, x->data + 10 * BLOCK, 123);
    assert_int_equal(x->f.len[0], 123);
    assert_int_equal(ts_bytes_read_at(b, buf, sizeof buf, 10 * BLOCK + 123), 0);
    assert_int_equal(ts_bytes_read_at(b, buf, sizeof buf, 1u << 30), 0);
    uint64_t size;
    assert_int_equal(ts_bytes_size(b, &size), 0);
    assert_int_equal(size, 10 * BLOCK + 123);
    assert_int_equal(ts_bytes_fd(b), -1);
    ts_bytes_unref(b);
}

static void test_every_read_returns_the_object_bytes(void **state)
{
    struct fixture *x = *state;
    struct ts_bytes *b = open_fake(&x->f, "obj\n\"v1\"", &x->store);
    uint8_t *buf = malloc(3 * BLOCK);
    uint32_t r = 12345;
    for (int i = 0; i < 300; i++) {
        r = r * 1103515245u + 12345u;
        uint64_t off = (r >> 8) % x->f.size;
        r = r * 1103515245u + 12345u;
        size_t len = 1 + (r >> 8) % (3 * BLOCK);
        size_t want = off + len > x->f.size ? (size_t)(x->f.size - off) : len;
        assert_int_equal(ts_bytes_read_at(b, buf, len, off), (ssize_t)want);
        assert_memory_equal(buf, x->data + off, want);
    }
    /* Once every block was seen, reads cost nothing at the source: each block came once. */
    assert_true(x->f.calls <= 11);
    free(buf);
    ts_bytes_unref(b);
}

static void test_bounded_cache_evicts_and_reads_stay_right(void **state)
{
    struct fixture *x = *state;
    struct ts_lru *tiny;
    /* Room for two blocks: reading all eleven twice fetches them twice. */
    assert_int_equal(ts_lru_create(2 * BLOCK + 2048, 1, &tiny), 0);
    struct ts_block_store store = {tiny, store_get, store_put, BLOCK};
    struct ts_bytes *b = open_fake(&x->f, "obj\n\"v1\"", &store);
    uint8_t buf[16];
    for (int pass = 0; pass < 2; pass++)
        for (uint64_t i = 0; i <= 10; i++) {
            assert_int_equal(ts_bytes_read_at(b, buf, sizeof buf, i * BLOCK + 7), sizeof buf);
            assert_memory_equal(buf, x->data + i * BLOCK + 7, sizeof buf);
        }
    assert_int_equal(x->f.calls, 22);
    struct ts_lru_stats st;
    ts_lru_stats(tiny, &st);
    assert_true(st.bytes <= 2 * BLOCK + 2048);
    ts_bytes_unref(b);
    ts_lru_destroy(tiny);
}

static void test_without_store_each_read_asks_what_it_needs(void **state)
{
    struct fixture *x = *state;
    struct ts_bytes *b = open_fake(&x->f, "obj", NULL);
    uint8_t buf[10];
    assert_int_equal(ts_bytes_read_at(b, buf, sizeof buf, 5000), sizeof buf);
    assert_memory_equal(buf, x->data + 5000, sizeof buf);
    assert_int_equal(x->f.off[0], 5000);
    assert_int_equal(x->f.len[0], sizeof buf);
    ts_bytes_unref(b);
}

static void test_sequential_reader_fetches_ahead(void **state)
{
    struct fixture *x = *state;
    struct ts_bytes *b = open_fake(&x->f, "obj\n\"v1\"", &x->store);
    ts_bytes_sequential(b);
    uint8_t buf[1000];
    for (uint64_t off = 0; off < x->f.size; off += sizeof buf) {
        ssize_t want =
            off + sizeof buf > x->f.size ? (ssize_t)(x->f.size - off) : (ssize_t)sizeof buf;
        assert_int_equal(ts_bytes_read_at(b, buf, sizeof buf, off), want);
        assert_memory_equal(buf, x->data + off, (size_t)want);
    }
    /* The whole (small) object in one request, not one a block. */
    assert_int_equal(x->f.calls, 1);
    assert_int_equal(x->f.len[0], x->f.size);
    ts_bytes_unref(b);
}

static void test_failure_is_reported_once_with_its_status(void **state)
{
    struct fixture *x = *state;
    x->f.fail = TS_EUPTIMEOUT;
    struct ts_bytes *b = open_fake(&x->f, "obj\n\"v1\"", &x->store);
    uint8_t buf[10];
    errno = 0;
    assert_int_equal(ts_bytes_read_at(b, buf, sizeof buf, 0), -1);
    assert_int_equal(errno, EIO);
    int status = 0;
    struct ts_err why = {0};
    assert_true(ts_bytes_take_error(b, &status, &why));
    assert_int_equal(status, TS_EUPTIMEOUT);
    assert_non_null(strstr(why.msg, "failed on purpose"));
    assert_false(ts_bytes_take_error(b, &status, &why));
    /* Nothing was kept from the failed read: once the source answers, the bytes are right. */
    x->f.fail = 0;
    assert_int_equal(ts_bytes_read_at(b, buf, sizeof buf, 0), sizeof buf);
    assert_memory_equal(buf, x->data, sizeof buf);
    ts_bytes_unref(b);
}

static void test_references_keep_the_object(void **state)
{
    struct fixture *x = *state;
    struct ts_bytes *b = open_fake(&x->f, "obj", &x->store);
    struct ts_bytes *also = ts_bytes_ref(b);
    ts_bytes_unref(b);
    assert_int_equal(x->f.released, 0);
    struct ts_buf id = {0};
    assert_int_equal(ts_bytes_identity(also, &id), TS_OK);
    assert_string_equal(ts_buf_str(&id), "obj");
    ts_buf_free(&id);
    ts_bytes_unref(also);
    assert_int_equal(x->f.released, 1);
}

static void test_bad_block_size_is_refused(void **state)
{
    struct fixture *x = *state;
    struct ts_bytes_remote r = {fake_fetch, fake_release, &x->f, x->f.size, "obj", NULL, 5000};
    struct ts_bytes *b;
    assert_int_equal(ts_bytes_from_remote(&r, &b), TS_EINVAL);
    assert_int_equal(x->f.released, 1);
}

static void test_file_source_reads_with_pread(void **state)
{
    struct fixture *x = *state;
    char path[] = "/tmp/tessera-bytes-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, x->data, 3 * BLOCK), 3 * BLOCK);
    unlink(path);
    struct ts_bytes *b;
    assert_int_equal(ts_bytes_from_fd(fd, &b), TS_OK);
    uint8_t buf[100];
    assert_int_equal(ts_bytes_read_at(b, buf, sizeof buf, BLOCK), sizeof buf);
    assert_memory_equal(buf, x->data + BLOCK, sizeof buf);
    uint64_t size;
    assert_int_equal(ts_bytes_size(b, &size), 0);
    assert_int_equal(size, 3 * BLOCK);
    assert_int_equal(ts_bytes_fd(b), fd);
    int status;
    assert_false(ts_bytes_take_error(b, &status, NULL));
    ts_bytes_unref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_small_read_fetches_one_aligned_block),
        T(test_missing_neighbours_come_in_one_request),
        T(test_cached_block_in_the_middle_is_not_fetched_again),
        T(test_one_version_shares_blocks_another_does_not),
        T(test_end_of_object),
        T(test_every_read_returns_the_object_bytes),
        T(test_bounded_cache_evicts_and_reads_stay_right),
        T(test_without_store_each_read_asks_what_it_needs),
        T(test_sequential_reader_fetches_ahead),
        T(test_failure_is_reported_once_with_its_status),
        T(test_references_keep_the_object),
        T(test_bad_block_size_is_refused),
        T(test_file_source_reads_with_pread),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
