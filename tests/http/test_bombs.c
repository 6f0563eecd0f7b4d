/* Decompression bombs under the real server: each tiny file declaring a huge image is refused
 * with 413 at header time, and the server's memory hardly moves. */
#include "harness.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#define MB ((long)1 << 10) /* in the kB /proc reports */

static const char *const bombs[] = {
    "j2k-2g-32lvl.j2k",    "j2k-65k-tiles.j2k",        "progressive-30000.jpg",
    "tiff-16384-tile.tif", "png-60000-interlaced.png",
};
/* Not a bomb: its rows decode one at a time, so it is admitted and fails on its short data. */
#define CONTROL "png-60000-rows.png"

static long proc_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    long v = -1;
    size_t n = strlen(field);
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    assert_true(v >= 0);
    return v;
}

static void make_root(char *root, size_t cap)
{
    int n = snprintf(root, cap, "%s/root", TESSERA_TEST_WORK);
    assert_true(n > 0 && (size_t)n < cap);
    assert_int_equal(tu_mkdirs(root), 0);
    for (size_t i = 0; i <= sizeof bombs / sizeof bombs[0]; i++) {
        const char *name = i < sizeof bombs / sizeof bombs[0] ? bombs[i] : CONTROL;
        char src[4096], dst[4096];
        int a = snprintf(src, sizeof src, "%s/bombs/%s", TESSERA_TEST_DATA, name);
        int b = snprintf(dst, sizeof dst, "%s/%s", root, name);
        assert_true(a > 0 && (size_t)a < sizeof src && b > 0 && (size_t)b < sizeof dst);
        assert_int_equal(tu_copy_file(src, dst), 0);
    }
}

/* GET path; returns the status, checking that an error came with a one-line reason. */
static long get_status(const struct tu_server *s, const char *path)
{
    struct tu_response r;
    assert_int_equal(tu_get(s, path, &r), 0);
    const char *body = (const char *)r.body.data;
    print_message("%s -> %ld %s", path, r.status, body ? body : "(no body)\n");
    if (r.status >= 400) {
        assert_non_null(body);
        assert_true(r.body.len > 1);
        const char *nl = strchr(body, '\n');
        /* One line: no newline, or only a final one. */
        assert_true(nl == NULL || nl == body + r.body.len - 1);
    }
    long status = r.status;
    tu_response_free(&r);
    return status;
}

static void test_bombs_are_refused_before_decoding(void **state)
{
    (void)state;
    char root[4096], path[512];
    struct tu_server s;
    make_root(root, sizeof root);
    assert_int_equal(tu_server_start(&s, TESSERA_BIN, root, NULL), 0);
    /* One harmless request first, so the server's own start-up allocations are behind us. */
    snprintf(path, sizeof path, "/iiif/3/%s/info.json", CONTROL);
    assert_int_equal(get_status(&s, path), 200);
    long hwm0 = proc_kb(s.pid, "VmHWM"), rss0 = proc_kb(s.pid, "VmRSS");

    for (size_t i = 0; i < sizeof bombs / sizeof bombs[0]; i++) {
        snprintf(path, sizeof path, "/iiif/3/%s/0,0,256,256/256,/0/default.jpg", bombs[i]);
        assert_int_equal(get_status(&s, path), 413);
        snprintf(path, sizeof path, "/iiif/3/%s/full/max/0/default.jpg", bombs[i]);
        assert_int_equal(get_status(&s, path), 413);
    }
    /* The control costs little to read, so it is admitted, and fails on its data. */
    snprintf(path, sizeof path, "/iiif/3/%s/0,0,256,256/256,/0/default.jpg", CONTROL);
    long st = get_status(&s, path);
    assert_true(st >= 500 && st < 600);

    long hwm1 = proc_kb(s.pid, "VmHWM"), rss1 = proc_kb(s.pid, "VmRSS");
    print_message("server VmHWM %ld -> %ld kB, VmRSS %ld -> %ld kB\n", hwm0, hwm1, rss0, rss1);
    /* Growth, not absolute figures: sanitizer builds start far higher. */
    assert_true(hwm1 - hwm0 < 100 * MB);
    assert_true(rss1 - rss0 < 100 * MB);
    assert_true(tu_server_alive(&s));
    assert_int_equal(tu_server_stop(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bombs_are_refused_before_decoding),
    };
    tu_http_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
