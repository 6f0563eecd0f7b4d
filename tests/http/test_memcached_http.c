/* The shared response cache, seen from clients: two servers and one real memcached, a
 * memcached that dies or was never there, and a file replaced under the cache. */
#include "harness.h"
#include "memcached.h"
#include "testutil.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#define TILE "/iiif/3/grid.tif/0,0,256,256/256,/0/default.jpg"
/* One public name for the fleet, as behind a load balancer: ids and Link headers agree. */
#define BASE "http://images.example.org"

static struct tu_memcached mem;
static struct tu_server servers[2];
static int nservers;

static void need_memcached(void)
{
    if (!tu_memcached_binary()) {
        fprintf(stderr, "skipped: no memcached binary (install the memcached package, "
                        "scripts/deps.sh --test)\n");
        skip();
    }
}

static int stop_all(void **state)
{
    (void)state;
    int rc = 0;
    for (int i = 0; i < nservers; i++)
        if (tu_server_stop(&servers[i]) != 0)
            rc = -1;
    nservers = 0;
    tu_memcached_stop(&mem);
    return rc;
}

static void make_root(const char *name, char *root, size_t cap)
{
    snprintf(root, cap, "%s/%s", TESSERA_TEST_WORK, name);
    assert_int_equal(tu_mkdirs(root), 0);
    assert_int_equal(tu_make_http_root(root), 0);
}

/* Starts a server on root with --memcached servers (and extra flags); when log is set, its
 * stderr goes to that file. */
static struct tu_server *start(const char *root, const char *mc_servers, const char *log)
{
    const char *extra[] = {"--base-url", BASE, "--memcached", mc_servers, NULL};
    if (!mc_servers)
        extra[2] = NULL;
    struct tu_server *s = &servers[nservers];
    assert_int_equal(tu_server_start_logged(s, TESSERA_BIN, root, extra, log), 0);
    nservers++;
    return s;
}

static void get_ok(const struct tu_server *s, const char *path, struct tu_response *r)
{
    assert_int_equal(tu_get(s, path, r), 0);
    if (r->status != 200)
        fail_msg("%s: status %ld: %s", path, r->status, r->body.data ? (char *)r->body.data : "");
}

/* Lines of the log that warn about memcached. */
static int memcached_warnings(const char *log)
{
    struct ts_buf text = {0};
    assert_int_equal(tu_read_file(log, &text), 0);
    int n = 0;
    const char *p = ts_buf_str(&text);
    while (p && (p = strstr(p, "memcached ")) != NULL) {
        const char *eol = strchr(p, '\n');
        if (strstr(p, "failed") && (!eol || strstr(p, "failed") < eol))
            n++;
        p = eol ? eol + 1 : NULL;
    }
    ts_buf_free(&text);
    return n;
}

static void test_a_tile_rendered_on_one_server_is_served_by_another(void **state)
{
    (void)state;
    need_memcached();
    char root[1024];
    make_root("shared", root, sizeof root);
    assert_int_equal(tu_memcached_start(&mem), 0);
    struct tu_server *a = start(root, mem.servers, NULL);
    struct tu_server *b = start(root, mem.servers, NULL);

    struct tu_response ra, rb, rb2, missing;
    get_ok(a, TILE, &ra);
    /* A looked up the image's generation (the purge's, see README), found none and added one;
     * then looked for the tile, missed, rendered and stored it. */
    assert_int_equal(tu_memcached_stat(&mem, "get_misses"), 2);
    assert_int_equal(tu_memcached_stat(&mem, "cmd_set"), 2);

    get_ok(b, TILE, &rb);
    /* B found the generation and the tile, and stored nothing: B stores only what it rendered
     * itself. */
    assert_int_equal(tu_memcached_stat(&mem, "get_hits"), 2);
    assert_int_equal(tu_memcached_stat(&mem, "cmd_set"), 2);
    assert_int_equal(rb.body.len, ra.body.len);
    assert_memory_equal(rb.body.data, ra.body.data, ra.body.len);
    struct ts_image img;
    assert_int_equal(tu_decode_body(&rb, &img), 0);
    assert_int_equal(img.width, 256);
    assert_int_equal(img.height, 256);
    ts_image_free(&img);
    char ta[128], tb[128], la[512], lb[512], etag[64];
    assert_true(tu_header(&ra, "Content-Type", 0, ta, sizeof ta));
    assert_true(tu_header(&rb, "Content-Type", 0, tb, sizeof tb));
    assert_string_equal(ta, tb);
    assert_true(tu_header(&ra, "Link", 0, la, sizeof la));
    assert_true(tu_header(&rb, "Link", 0, lb, sizeof lb));
    assert_string_equal(la, lb);
    assert_true(tu_header(&rb, "ETag", 0, etag, sizeof etag));
    assert_true(tu_header(&rb, "Last-Modified", 0, etag, sizeof etag));

    /* The hit was kept in B's own cache: the next one does not ask memcached. */
    get_ok(b, TILE, &rb2);
    assert_int_equal(tu_memcached_stat(&mem, "get_hits"), 2);
    assert_int_equal(tu_memcached_stat(&mem, "get_misses"), 2);
    assert_memory_equal(rb2.body.data, ra.body.data, ra.body.len);

    /* Errors are not shared. */
    assert_int_equal(tu_get(a, "/iiif/3/nothing-here.tif/full/max/0/default.jpg", &missing), 0);
    assert_int_equal(missing.status, 404);
    assert_int_equal(tu_memcached_stat(&mem, "cmd_set"), 2);

    tu_response_free(&ra);
    tu_response_free(&rb);
    tu_response_free(&rb2);
    tu_response_free(&missing);
}

static void test_a_replaced_file_is_not_served_stale_by_another_server(void **state)
{
    (void)state;
    need_memcached();
    char root[1024], path[1200], fresh[1200], wide[1200];
    make_root("replaced", root, sizeof root);
    snprintf(path, sizeof path, "%s/img.png", root);
    snprintf(fresh, sizeof fresh, "%s/img.png.new", root);
    snprintf(wide, sizeof wide, "%s/wide.png", root);
    char grid[1200];
    snprintf(grid, sizeof grid, "%s/grid.png", root);
    assert_int_equal(tu_copy_file(grid, path), 0);
    assert_int_equal(tu_memcached_start(&mem), 0);
    struct tu_server *a = start(root, mem.servers, NULL);
    struct tu_server *b = start(root, mem.servers, NULL);

    const char *thumb = "/iiif/3/img.png/full/100,/0/default.png";
    struct tu_response before, after;
    get_ok(a, thumb, &before);
    struct ts_image img;
    assert_int_equal(tu_decode_body(&before, &img), 0);
    assert_int_equal(img.height, 100); /* the 1000x1000 grid */
    ts_image_free(&img);
    assert_int_equal(tu_memcached_stat(&mem, "cmd_set"), 2); /* the generation, the answer */

    /* Replaced as deployments do it: a new file renamed over the old one. */
    assert_int_equal(tu_copy_file(wide, fresh), 0);
    assert_int_equal(rename(fresh, path), 0);
    get_ok(b, thumb, &after);
    assert_int_equal(tu_decode_body(&after, &img), 0);
    assert_int_equal(img.width, 100);
    assert_int_equal(img.height, 50); /* the 800x400 image, not the cached grid */
    ts_image_free(&img);
    /* The one hit is the image's generation (its path did not change); the answer missed. */
    assert_int_equal(tu_memcached_stat(&mem, "get_hits"), 1);
    tu_response_free(&before);
    tu_response_free(&after);
}

static void test_memcached_stopping_mid_run_costs_one_warning(void **state)
{
    (void)state;
    need_memcached();
    char root[1024], log[1200];
    make_root("stopping", root, sizeof root);
    snprintf(log, sizeof log, "%s/stopping.log", TESSERA_TEST_WORK);
    assert_int_equal(tu_memcached_start(&mem), 0);
    struct tu_server *s = start(root, mem.servers, log);
    struct tu_response r;
    get_ok(s, TILE, &r);
    tu_response_free(&r);
    assert_int_equal(tu_memcached_stat(&mem, "cmd_set"), 2); /* the generation, the tile */

    tu_memcached_stop(&mem);
    double t0 = tu_now_ms();
    for (int i = 0; i < 12; i++) {
        char path[256];
        snprintf(path, sizeof path, "/iiif/3/grid.tif/full/%d,/0/default.jpg", 100 + i);
        get_ok(s, path, &r);
        struct ts_image img;
        assert_int_equal(tu_decode_body(&r, &img), 0);
        assert_int_equal(img.width, (uint32_t)(100 + i));
        ts_image_free(&img);
        tu_response_free(&r);
    }
    double took = tu_now_ms() - t0;
    if (took > 5000)
        fail_msg("12 renders with memcached gone took %.0f ms", took);
    assert_int_equal(stop_all(NULL), 0);
    assert_int_equal(memcached_warnings(log), 1);
}

static void test_a_server_without_its_memcached_starts_and_serves(void **state)
{
    (void)state;
    char root[1024], log[1200], servers_env[64];
    make_root("absent", root, sizeof root);
    snprintf(log, sizeof log, "%s/absent.log", TESSERA_TEST_WORK);
    /* iipsrv's variable, as Debian's stock configuration sets it (there: localhost), on a port
     * where nothing listens. */
    snprintf(servers_env, sizeof servers_env, "127.0.0.1:%d", tu_free_port());
    setenv("MEMCACHED_SERVERS", servers_env, 1);
    setenv("MEMCACHED_TIMEOUT", "600", 1);
    struct tu_server *s = start(root, NULL, log);
    unsetenv("MEMCACHED_SERVERS");
    unsetenv("MEMCACHED_TIMEOUT");
    for (int i = 0; i < 3; i++) {
        struct tu_response r;
        get_ok(s, TILE, &r);
        tu_response_free(&r);
        get_ok(s, "/iiif/3/grid.tif/info.json", &r);
        tu_response_free(&r);
    }
    assert_int_equal(stop_all(NULL), 0);
    /* The one warning also proves the variable was taken up. */
    assert_int_equal(memcached_warnings(log), 1);
}

int main(void)
{
    tu_http_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_a_tile_rendered_on_one_server_is_served_by_another,
                                  stop_all),
        cmocka_unit_test_teardown(test_a_replaced_file_is_not_served_stale_by_another_server,
                                  stop_all),
        cmocka_unit_test_teardown(test_memcached_stopping_mid_run_costs_one_warning, stop_all),
        cmocka_unit_test_teardown(test_a_server_without_its_memcached_starts_and_serves, stop_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
