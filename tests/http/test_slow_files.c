/* Files that take long to decode are answered within the request deadline: a picture, a
 * refusal or a 503 with a one-line reason, never a worker held for minutes. */
#include "harness.h"
#include "slowfiles.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "util/cancel.h"

#define WORK TESSERA_TEST_WORK

static char root[4096];
static struct tu_server server;

static void path_in_root(char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", root, name);
    assert_true(n > 0 && (size_t)n < cap);
}

static int setup(void **state)
{
    (void)state;
    char p[4096];
    snprintf(root, sizeof root, "%s/root", WORK);
    if (tu_mkdirs(root) != 0)
        return -1;
    int64_t t0 = ts_monotonic_ns();
    path_in_root(p, sizeof p, "wide.png");
    if (slow_png(p, 20000, 20000) != 0)
        return -1;
    path_in_root(p, sizeof p, "huge.jpg");
    if (slow_jpeg(p, 65500, 65500) != 0)
        return -1;
    path_in_root(p, sizeof p, "onetile.tif");
    if (slow_tiff(p, 16384) != 0)
        return -1;
    print_message("slow files written in %.1f s\n", (ts_monotonic_ns() - t0) / 1e9);
    tu_http_init();
    const char *args[] = {"--request-deadline", "3", NULL};
    return tu_server_start(&server, TESSERA_BIN, root, args);
}

static int teardown(void **state)
{
    (void)state;
    return tu_server_stop(&server);
}

static void check_answered_in_time(const char *name)
{
    char path[512];
    struct tu_response resp;
    snprintf(path, sizeof path, "/iiif/3/%s/full/1000,/0/default.jpg", name);
    int64_t t0 = ts_monotonic_ns();
    assert_int_equal(tu_get(&server, path, &resp), 0);
    double took = (ts_monotonic_ns() - t0) / 1e9;
    print_message("%s: %ld in %.2f s\n", name, resp.status, took);
    assert_true(resp.status == 200 || resp.status == 413 || resp.status == 503);
    if (resp.status == 503) {
        const char *body = (const char *)resp.body.data;
        const char *nl = body ? strchr(body, '\n') : NULL;
        /* One line: at most a final newline. */
        assert_true(resp.body.len > 0 && (!nl || nl[1] == '\0'));
    }
    assert_true(took < 4.0);
    tu_response_free(&resp);
    assert_true(tu_server_alive(&server));
}

static void test_wide_png(void **state)
{
    (void)state;
    check_answered_in_time("wide.png");
}

static void test_huge_jpeg(void **state)
{
    (void)state;
    check_answered_in_time("huge.jpg");
}

static void test_one_tile_tiff(void **state)
{
    (void)state;
    check_answered_in_time("onetile.tif");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wide_png),
        cmocka_unit_test(test_huge_jpeg),
        cmocka_unit_test(test_one_tile_tiff),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
