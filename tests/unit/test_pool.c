/* The reader pool: leases lend idle readers of the very same file, and end in one place. */
/* cmocka needs these before it, in this order. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "core/pool.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DATA TESSERA_TEST_DATA

static const char *const images[] = {
    DATA "/retina-pyr-jpeg-256.tif",   DATA "/camera-512-gray.png",
    DATA "/green-palette-320x240.png", DATA "/horse-400x328-gray-alpha.png",
    DATA "/retina-1411x1411.jpg",
};

/* Opens path as the core would hand it over: descriptor, its fstat, page 0. */
static struct source_file open_source(const char *path)
{
    struct source_file src;
    memset(&src, 0, sizeof src);
    src.fd = tu_open_ro(path);
    if (src.fd < 0)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    if (fstat(src.fd, &src.st) != 0)
        fail_msg("cannot fstat %s", path);
    snprintf(src.path, sizeof src.path, "%s", path);
    return src;
}

/* The same file identity with no descriptor: only an idle reader can serve it. */
static struct source_file without_fd(struct source_file src)
{
    src.fd = -1;
    return src;
}

static void begin_ok(struct ts_pool *pool, struct source_file *src, struct ts_lease *lease)
{
    struct ts_err err = {0};
    int rc = ts_lease_begin(pool, src, NULL, NULL, lease, &err);
    if (rc != TS_OK)
        fail_msg("lease of %s gave %d (%s), expected TS_OK", src->path, rc, err.msg);
    assert_non_null(lease->reader);
    assert_int_equal(src->fd, -1); /* the reader owns the descriptor, or never needed it */
}

static int begin_rc(struct ts_pool *pool, struct source_file src)
{
    struct ts_lease lease;
    struct ts_err err = {0};
    int rc = ts_lease_begin(pool, &src, NULL, NULL, &lease, &err);
    if (rc == TS_OK)
        ts_lease_end(&lease, TS_OK);
    return rc;
}

static int open_descriptors(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        fail_msg("cannot list /proc/self/fd");
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static bool descriptor_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

static void test_returned_reader_is_lent_again_for_the_same_file(void **state)
{
    (void)state;
    struct ts_pool *pool;
    assert_int_equal(ts_pool_create(2, &pool), TS_OK);
    assert_non_null(pool);
    struct source_file src = open_source(images[0]);
    struct source_file again = without_fd(src);
    /* Nothing idle yet and no descriptor: the caller must open the file. */
    assert_int_equal(begin_rc(pool, again), TS_DECLINED);

    struct ts_lease lease;
    begin_ok(pool, &src, &lease);
    struct ts_reader *first = lease.reader;
    assert_int_equal(first->info.width, 1411);
    ts_lease_end(&lease, TS_OK);
    assert_null(lease.reader);

    begin_ok(pool, &again, &lease);
    assert_ptr_equal(lease.reader, first);
    ts_lease_end(&lease, TS_OK);
    ts_pool_destroy(pool);
}

static void test_lease_ended_by_a_codec_error_closes_the_reader_and_frees_its_slot(void **state)
{
    (void)state;
    struct ts_pool *pool;
    assert_int_equal(ts_pool_create(2, &pool), TS_OK);
    struct source_file a = open_source(images[0]);
    struct source_file a_again = without_fd(a);
    struct ts_lease lease;
    begin_ok(pool, &a, &lease);
    ts_lease_end(&lease, TS_OK);
    /* The pooled reader fails this time: it must not be lent again. */
    begin_ok(pool, &a_again, &lease);
    assert_true(lease.slot >= 0);
    ts_lease_end(&lease, TS_ECODEC);
    assert_int_equal(begin_rc(pool, a_again), TS_DECLINED);

    /* Both slots are usable: of three readers returned in turn, the last two stay pooled.
     * A slot left busy would leave room for the last one only. */
    struct source_file files[3];
    for (int i = 0; i < 3; i++) {
        files[i] = open_source(images[i + 1]);
        begin_ok(pool, &files[i], &lease);
        ts_lease_end(&lease, TS_OK);
    }
    assert_int_equal(begin_rc(pool, without_fd(files[1])), TS_OK);
    assert_int_equal(begin_rc(pool, without_fd(files[2])), TS_OK);
    /* the least recently returned one made room */
    assert_int_equal(begin_rc(pool, without_fd(files[0])), TS_DECLINED);
    ts_pool_destroy(pool);
}

static void test_lease_ended_by_an_io_error_is_not_pooled(void **state)
{
    (void)state;
    struct ts_pool *pool;
    assert_int_equal(ts_pool_create(2, &pool), TS_OK);
    struct source_file a = open_source(images[0]);
    int fd = a.fd;
    struct ts_lease lease;
    begin_ok(pool, &a, &lease);
    assert_int_equal(lease.slot, -1);
    ts_lease_end(&lease, TS_EIO);
    assert_false(descriptor_is_open(fd));
    assert_int_equal(begin_rc(pool, without_fd(a)), TS_DECLINED);
    ts_pool_destroy(pool);
}

static void test_changed_file_identity_does_not_get_the_old_reader(void **state)
{
    (void)state;
    struct ts_pool *pool;
    assert_int_equal(ts_pool_create(2, &pool), TS_OK);
    struct source_file a = open_source(images[0]);
    struct source_file same = without_fd(a);
    struct ts_lease lease;
    begin_ok(pool, &a, &lease);
    ts_lease_end(&lease, TS_OK);

    struct source_file rewritten = same;
    rewritten.st.st_mtim.tv_sec += 1;
    assert_int_equal(begin_rc(pool, rewritten), TS_DECLINED);
    struct source_file touched = same;
    touched.st.st_mtim.tv_nsec = (touched.st.st_mtim.tv_nsec + 1) % 1000000000L;
    assert_int_equal(begin_rc(pool, touched), TS_DECLINED);
    struct source_file grown = same;
    grown.st.st_size += 1;
    assert_int_equal(begin_rc(pool, grown), TS_DECLINED);
    struct source_file other_inode = same;
    other_inode.st.st_ino += 1;
    assert_int_equal(begin_rc(pool, other_inode), TS_DECLINED);
    struct source_file page_two = same;
    page_two.page = 1;
    assert_int_equal(begin_rc(pool, page_two), TS_DECLINED);
    /* The unchanged identity still finds it. */
    assert_int_equal(begin_rc(pool, same), TS_OK);
    ts_pool_destroy(pool);
}

static void test_without_a_pool_every_lease_opens_and_closes_its_reader(void **state)
{
    (void)state;
    static char marker;
    struct ts_pool *pool = (struct ts_pool *)(void *)&marker; /* anything but NULL */
    assert_int_equal(ts_pool_create(0, &pool), TS_OK);
    assert_null(pool);
    struct source_file a = open_source(images[0]);
    struct source_file again = without_fd(a);
    int fd = a.fd;
    struct ts_lease lease;
    begin_ok(NULL, &a, &lease);
    assert_true(descriptor_is_open(fd));
    ts_lease_end(&lease, TS_OK);
    assert_false(descriptor_is_open(fd));
    assert_int_equal(begin_rc(NULL, again), TS_DECLINED);
    ts_pool_destroy(NULL);
}

static void test_two_leases_of_one_file_at_once_get_two_readers(void **state)
{
    (void)state;
    struct ts_pool *pool;
    assert_int_equal(ts_pool_create(2, &pool), TS_OK);
    struct source_file first = open_source(images[0]);
    struct source_file second = without_fd(first);
    struct ts_lease one, two;
    begin_ok(pool, &first, &one);
    /* The only reader is busy: the second request must open its own. */
    assert_int_equal(begin_rc(pool, second), TS_DECLINED);
    second = open_source(images[0]);
    begin_ok(pool, &second, &two);
    assert_ptr_not_equal(one.reader, two.reader);
    ts_lease_end(&one, TS_OK);
    ts_lease_end(&two, TS_OK);

    /* Both went back to the pool: two leases at once again, each its own reader. */
    struct source_file x = without_fd(first), y = without_fd(first);
    begin_ok(pool, &x, &one);
    begin_ok(pool, &y, &two);
    assert_ptr_not_equal(one.reader, two.reader);
    ts_lease_end(&two, TS_OK);
    ts_lease_end(&one, TS_OK);
    ts_pool_destroy(pool);
}

static void test_more_leases_than_slots_all_work_and_destroy_is_clean(void **state)
{
    (void)state;
    int before = open_descriptors();
    struct ts_pool *pool;
    assert_int_equal(ts_pool_create(2, &pool), TS_OK);
    enum { N = 5 };
    struct ts_lease leases[N];
    struct source_file files[N];
    for (int i = 0; i < N; i++) {
        files[i] = open_source(images[i]);
        begin_ok(pool, &files[i], &leases[i]);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(leases[i].reader->info.width > 0, true);
    for (int i = 0; i < N; i++)
        ts_lease_end(&leases[i], TS_OK);

    /* Two are pooled; lend both out, and return a new reader while every slot is busy. */
    struct ts_lease busy[2];
    struct source_file p = without_fd(files[3]), q = without_fd(files[4]);
    begin_ok(pool, &p, &busy[0]);
    begin_ok(pool, &q, &busy[1]);
    struct source_file extra = open_source(images[0]);
    struct ts_lease spare;
    begin_ok(pool, &extra, &spare);
    ts_lease_end(&spare, TS_OK); /* nowhere to keep it: closed */
    ts_lease_end(&busy[0], TS_OK);
    ts_lease_end(&busy[1], TS_OK);
    assert_int_equal(begin_rc(pool, without_fd(files[3])), TS_OK);
    assert_int_equal(begin_rc(pool, without_fd(files[4])), TS_OK);
    assert_int_equal(begin_rc(pool, without_fd(extra)), TS_DECLINED);

    ts_pool_destroy(pool);
    /* Every reader, pooled or not, closed its descriptor exactly once. */
    assert_int_equal(open_descriptors(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_returned_reader_is_lent_again_for_the_same_file),
        cmocka_unit_test(test_lease_ended_by_a_codec_error_closes_the_reader_and_frees_its_slot),
        cmocka_unit_test(test_lease_ended_by_an_io_error_is_not_pooled),
        cmocka_unit_test(test_changed_file_identity_does_not_get_the_old_reader),
        cmocka_unit_test(test_without_a_pool_every_lease_opens_and_closes_its_reader),
        cmocka_unit_test(test_two_leases_of_one_file_at_once_get_two_readers),
        cmocka_unit_test(test_more_leases_than_slots_all_work_and_destroy_is_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
