/* A JPEG 2000 file that makes OpenJPEG assert costs a decoder process, not the server: with the
 * block cache on (the default) the request gets a 500 and other JPEG 2000 tiles keep coming. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "harness.h"
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DATA TESSERA_TEST_DATA
#define WORK TESSERA_TEST_WORK
#define CORPUS DATA "/../fuzz/corpus/reader"

static char root[4096];
static struct tu_server server;

static int copy_in(const char *src, const char *name)
{
    char dst[4200];
    snprintf(dst, sizeof dst, "%s/%s", root, name);
    return tu_copy_file(src, dst);
}

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "%s/root", WORK);
    if (tu_mkdirs(root) != 0 ||
        copy_in(CORPUS "/regression-htj2k-mel-assert.j2c", "bad.j2c") != 0 ||
        copy_in(DATA "/retina-htj2k.j2c", "ht.j2c") != 0 ||
        copy_in(DATA "/retina-tiled512-rpcl.jp2", "tiled.jp2") != 0)
        return -1;
    tu_http_init();
    /* The block cache decodes whole blocks, where the direct path decodes just the request. */
    const char *args[] = {"--jp2-cache", "256", NULL};
    return tu_server_start(&server, TESSERA_BIN, root, args);
}

static int teardown(void **state)
{
    (void)state;
    return tu_server_stop(&server);
}

static long get_status(const char *path)
{
    struct tu_response resp;
    assert_int_equal(tu_get(&server, path, &resp), 0);
    long status = resp.status;
    tu_response_free(&resp);
    return status;
}

/* The server's one child is the zygote; the decoders are the zygote's children. */
static void count_decoders(int *zombies, int *live)
{
    int zygote, n, z;
    assert_int_equal(tu_list_children(server.pid, &z, &n, &zygote, 1), 0);
    assert_int_equal(z, 0);
    assert_int_equal(n, 1);
    assert_int_equal(tu_count_children(zygote, zombies, live), 0);
}

static void test_corrupt_htj2k_is_500_and_server_stays(void **state)
{
    (void)state;
    static const char *good[] = {
        "/iiif/3/tiled.jp2/0,0,512,512/256,/0/default.jpg",
        "/iiif/3/tiled.jp2/512,512,512,512/256,/0/default.jpg",
        "/iiif/3/ht.j2c/full/200,/0/default.jpg",
        "/iiif/3/tiled.jp2/full/max/0/default.png",
    };
    for (int round = 0; round < 3; round++) {
        /* At reduce 2 the HTJ2K decoder meets the corrupt MEL segment and asserts; at full
         * size it fails with an ordinary error. */
        assert_int_equal(get_status("/iiif/3/bad.j2c/full/8,/0/default.png"), 500);
        assert_true(tu_server_alive(&server));
        assert_int_equal(get_status("/iiif/3/bad.j2c/full/max/0/default.png"), 500);
        assert_true(tu_server_alive(&server));
        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
            assert_int_equal(get_status(good[i]), 200);
    }
    int zombies, live;
    count_decoders(&zombies, &live);
    print_message("decoders: %d live, %d zombies\n", live, zombies);
    assert_int_equal(zombies, 0);
    assert_true(live >= 1 && live <= 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corrupt_htj2k_is_500_and_server_stays),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
