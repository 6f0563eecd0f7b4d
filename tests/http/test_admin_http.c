/* The admin purge, seen from clients: the token, the local caches it empties, and memcached
 * entries it makes unreachable for every server of a fleet. */
#include "grid.h"
#include "harness.h"
#include "memcached.h"
#include "testutil.h"

#include <fcntl.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#define WORK TESSERA_TEST_WORK
#define TOKEN "purge-token-for-the-tests-0123"
#define AUTH "Authorization: Bearer " TOKEN
#define TILE "/iiif/3/grid.tif/0,0,256,256/256,/0/default.jpg"

static struct tu_memcached mem;
static struct tu_server servers[3];
static int nservers;

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
    snprintf(root, cap, "%s/%s", WORK, name);
    assert_int_equal(tu_mkdirs(root), 0);
    assert_int_equal(tu_make_http_root(root), 0);
}

/* Starts a server on root with extra flags; its stderr goes to log when log is set. */
static struct tu_server *start(const char *root, const char *const *extra, const char *log)
{
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

static long post(const struct tu_server *s, const char *path, const char *auth,
                 struct tu_response *r)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    const char *headers[] = {auth, NULL};
    assert_int_equal(tu_request("POST", url, auth ? headers : NULL, r), 0);
    return r->status;
}

/* The purge's report of id, parsed; fails the test unless the purge answered 200. */
static json_t *purge(const struct tu_server *s, const char *id)
{
    char path[512];
    snprintf(path, sizeof path, "/admin/purge?id=%s", id);
    struct tu_response r;
    if (post(s, path, AUTH, &r) != 200)
        fail_msg("purge %s: %ld %s", id, r.status, r.body.data ? (char *)r.body.data : "");
    char type[128];
    assert_true(tu_header(&r, "Content-Type", 0, type, sizeof type));
    assert_string_equal(type, "application/json");
    json_error_t jerr;
    json_t *o = json_loadb((const char *)r.body.data, r.body.len, 0, &jerr);
    tu_response_free(&r);
    assert_non_null(o);
    return o;
}

static long long count(const json_t *report, const char *cache)
{
    const json_t *v = json_object_get(report, cache);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static bool log_has(const char *log, const char *needle)
{
    struct ts_buf text = {0};
    if (tu_read_file(log, &text) != 0)
        return false;
    const char *t = ts_buf_str(&text);
    bool found = t && strstr(t, needle);
    ts_buf_free(&text);
    return found;
}

static void test_without_a_token_there_is_no_admin_endpoint(void **state)
{
    (void)state;
    char root[1024];
    make_root("off", root, sizeof root);
    struct tu_server *s = start(root, NULL, NULL);
    struct tu_response r;
    assert_int_equal(post(s, "/admin/purge?id=grid.tif", "Authorization: Bearer ", &r), 404);
    assert_false(tu_header(&r, "WWW-Authenticate", 0, (char[8]){0}, 8));
    tu_response_free(&r);
}

static void test_purge_refuses_a_missing_or_wrong_token_and_logs_who_tried(void **state)
{
    (void)state;
    char root[1024], token_file[1200], log[1200];
    make_root("auth", root, sizeof root);
    snprintf(token_file, sizeof token_file, "%s/../admin.token", root);
    snprintf(log, sizeof log, "%s/../auth.log", root);
    FILE *f = fopen(token_file, "w");
    assert_non_null(f);
    fputs(TOKEN "\n", f);
    fclose(f);
    const char *extra[] = {"--admin-token-file", token_file, NULL};
    struct tu_server *s = start(root, extra, log);

    struct tu_response r;
    char value[256];
    assert_int_equal(post(s, "/admin/purge?id=grid.tif", NULL, &r), 401);
    assert_true(tu_header(&r, "WWW-Authenticate", 0, value, sizeof value));
    assert_true(!strncmp(value, "Bearer realm=", 13));
    tu_response_free(&r);
    assert_int_equal(
        post(s, "/admin/purge?id=grid.tif", "Authorization: Bearer guess-guess-guess-1", &r), 401);
    assert_true(tu_header(&r, "WWW-Authenticate", 0, value, sizeof value));
    assert_non_null(strstr(value, "invalid_token"));
    tu_response_free(&r);
    /* The token, but GET: the route exists and wants POST. */
    char url[512];
    snprintf(url, sizeof url, "%s/admin/purge?id=grid.tif", s->base);
    const char *headers[] = {AUTH, NULL};
    assert_int_equal(tu_request("GET", url, headers, &r), 0);
    assert_int_equal(r.status, 405);
    assert_true(tu_header(&r, "Allow", 0, value, sizeof value));
    assert_string_equal(value, "POST");
    tu_response_free(&r);
    json_t *report = purge(s, "grid.tif");
    json_decref(report);

    /* Bounded wait: the log line is written as the answer goes out. */
    for (int i = 0; i < 100 && !log_has(log, "401 POST /admin/purge from 127.0.0.1"); i++)
        tu_sleep_ms(20);
    assert_true(log_has(log, "401 POST /admin/purge from 127.0.0.1: admin: no bearer token"));
    assert_true(log_has(log, "401 POST /admin/purge from 127.0.0.1: admin: wrong"));
    assert_false(log_has(log, "guess-guess"));
    assert_false(log_has(log, TOKEN));
    assert_true(log_has(log, "admin: purged grid.tif"));
}

static void test_purge_empties_every_local_cache_of_the_image_only(void **state)
{
    (void)state;
    char root[1024], jp2[1200];
    make_root("local", root, sizeof root);
    snprintf(jp2, sizeof jp2, "%s/retina.jp2", root);
    assert_int_equal(tu_copy_file(TESSERA_TEST_DATA "/retina-tiled512-rpcl.jp2", jp2), 0);
    const char *extra[] = {"--admin-token", TOKEN, NULL};
    struct tu_server *s = start(root, extra, NULL);

    struct tu_response first, again, other, block;
    get_ok(s, TILE, &first);
    get_ok(s, "/iiif/3/grid.png/0,0,256,256/256,/0/default.png", &other);
    get_ok(s, "/iiif/3/retina.jp2/0,0,512,512/256,/0/default.jpg", &block);

    json_t *r = purge(s, "grid.tif");
    assert_string_equal(json_string_value(json_object_get(r, "identifier")), "grid.tif");
    assert_int_equal(count(r, "responses"), 1); /* the one tile */
    assert_int_equal(count(r, "info"), 1);
    assert_int_equal(count(r, "resolved"), 1);
    assert_int_equal(count(r, "readers"), 1);
    assert_int_equal(count(r, "jp2_blocks"), 0);
    assert_string_equal(json_string_value(json_object_get(r, "memcached")), "off");
    json_decref(r);
    /* Gone: a second purge finds nothing. */
    r = purge(s, "grid.tif");
    assert_int_equal(count(r, "responses") + count(r, "info") + count(r, "resolved") +
                         count(r, "readers") + count(r, "jp2_blocks"),
                     0);
    json_decref(r);

    /* The next request was a miss: it made the same bytes again and stored them again. */
    get_ok(s, TILE, &again);
    assert_int_equal(again.body.len, first.body.len);
    assert_memory_equal(again.body.data, first.body.data, first.body.len);
    r = purge(s, "grid.tif");
    assert_int_equal(count(r, "responses"), 1);
    assert_int_equal(count(r, "readers"), 1);
    json_decref(r);

    /* The other images kept theirs; the JPEG 2000 one had decoded blocks too. */
    r = purge(s, "grid.png");
    assert_int_equal(count(r, "responses"), 1);
    assert_int_equal(count(r, "info"), 1);
    json_decref(r);
    r = purge(s, "retina.jp2");
    assert_int_equal(count(r, "responses"), 1);
    assert_true(count(r, "jp2_blocks") >= 1);
    json_decref(r);

    /* Unknown images are a 404, like any request for them. */
    struct tu_response missing;
    assert_int_equal(post(s, "/admin/purge?id=no-such.tif", AUTH, &missing), 404);
    tu_response_free(&missing);
    tu_response_free(&first);
    tu_response_free(&again);
    tu_response_free(&other);
    tu_response_free(&block);
}

static uint16_t red(uint32_t x, uint32_t y, uint32_t c)
{
    (void)x;
    (void)y;
    return c == 0 ? 220 : 20;
}

static uint16_t blue(uint32_t x, uint32_t y, uint32_t c)
{
    (void)x;
    (void)y;
    return c == 2 ? 220 : 20;
}

/* Rewrites path's bytes with those of fresh, in place: the same inode, size and mtime, so
 * nothing memcached keys on (place, mtime, size) changes. */
static void rewrite_in_place(const char *path, const char *fresh)
{
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);
    struct ts_buf bytes = {0};
    assert_int_equal(tu_read_file(fresh, &bytes), 0);
    assert_int_equal((off_t)bytes.len, before.st_size);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, bytes.data, bytes.len, 0), (ssize_t)bytes.len);
    struct timespec times[2] = {before.st_atim, before.st_mtim};
    assert_int_equal(futimens(fd, times), 0);
    close(fd);
    ts_buf_free(&bytes);
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(after.st_ino, before.st_ino);
    assert_int_equal(after.st_size, before.st_size);
    assert_int_equal(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
    assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
}

/* The colour at the middle of a decoded answer. */
static void middle_color(const struct tu_response *r, uint8_t rgb[3])
{
    struct ts_image img;
    assert_int_equal(tu_decode_body(r, &img), 0);
    assert_int_equal(img.width, 64);
    const uint8_t *p = img.data + (size_t)32 * img.stride + 32 * img.channels;
    memcpy(rgb, p, 3);
    ts_image_free(&img);
}

static void expect_color(const struct tu_server *s, const char *path, const char *name,
                         const uint8_t want[3])
{
    struct tu_response r;
    get_ok(s, path, &r);
    uint8_t got[3];
    middle_color(&r, got);
    tu_response_free(&r);
    for (int c = 0; c < 3; c++)
        if (abs(got[c] - want[c]) > 8)
            fail_msg("%s: expected %s (%u,%u,%u), got (%u,%u,%u)", path, name, want[0], want[1],
                     want[2], got[0], got[1], got[2]);
}

static void test_purge_reaches_every_server_through_memcached(void **state)
{
    (void)state;
    if (!tu_memcached_binary()) {
        fprintf(stderr, "skipped: no memcached binary (install the memcached package, "
                        "scripts/deps.sh --test)\n");
        skip();
    }
    char root[1024], path[1200], fresh[1200];
    snprintf(root, sizeof root, "%s/fleet", WORK);
    assert_int_equal(tu_mkdirs(root), 0);
    snprintf(path, sizeof path, "%s/swatch.tif", root);
    snprintf(fresh, sizeof fresh, "%s/../swatch-blue.tif", root);
    /* Uncompressed: the red and the blue file have the same size to the byte. */
    assert_int_equal(grid_write_tiff_fn(path, 512, 512, 3, 8, red), 0);
    assert_int_equal(grid_write_tiff_fn(fresh, 512, 512, 3, 8, blue), 0);
    assert_int_equal(tu_memcached_start(&mem), 0);
    const char *extra[] = {"--admin-token",
                           TOKEN,
                           "--memcached",
                           mem.servers,
                           "--base-url",
                           "http://images.example.org",
                           NULL};
    struct tu_server *a = start(root, extra, NULL);
    struct tu_server *b = start(root, extra, NULL);
    struct tu_server *c = start(root, extra, NULL);
    const char *thumb = "/iiif/3/swatch.tif/full/64,/0/default.png";
    const uint8_t want_red[3] = {220, 20, 20}, want_blue[3] = {20, 20, 220};

    expect_color(a, thumb, "red", want_red); /* rendered by A, stored in memcached */
    rewrite_in_place(path, fresh);
    /* The hazard a purge exists for: nothing memcached keys on changed, so B, which never
     * rendered it, is served A's red from memcached (and keeps it in its own cache). */
    expect_color(b, thumb, "red (stale, from memcached)", want_red);

    /* The purge, sent to A and B as the documentation says (every server's own cache). */
    json_t *r = purge(a, "swatch.tif");
    assert_string_equal(json_string_value(json_object_get(r, "memcached")), "purged");
    json_decref(r);
    r = purge(b, "swatch.tif");
    assert_int_equal(count(r, "responses"), 1); /* B's copy of the red */
    json_decref(r);
    expect_color(b, thumb, "blue", want_blue);
    expect_color(a, thumb, "blue", want_blue);
    /* C was sent no purge and holds nothing of its own: memcached no longer answers red. */
    expect_color(c, thumb, "blue", want_blue);
}

static void test_purge_with_memcached_unreachable_says_so(void **state)
{
    (void)state;
    char root[1024], servers_arg[64];
    make_root("mcdown", root, sizeof root);
    int port = tu_free_port();
    assert_true(port > 0);
    snprintf(servers_arg, sizeof servers_arg, "127.0.0.1:%d", port);
    const char *extra[] = {"--admin-token", TOKEN, "--memcached", servers_arg, NULL};
    struct tu_server *s = start(root, extra, NULL);
    struct tu_response tile, r;
    get_ok(s, TILE, &tile);
    assert_int_equal(post(s, "/admin/purge?id=grid.tif", AUTH, &r), 503);
    assert_non_null(strstr((const char *)r.body.data, "memcached"));
    tu_response_free(&r);
    tu_response_free(&tile);
    assert_true(tu_server_alive(s));
}

int main(void)
{
    tu_http_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_without_a_token_there_is_no_admin_endpoint, stop_all),
        cmocka_unit_test_teardown(test_purge_refuses_a_missing_or_wrong_token_and_logs_who_tried,
                                  stop_all),
        cmocka_unit_test_teardown(test_purge_empties_every_local_cache_of_the_image_only, stop_all),
        cmocka_unit_test_teardown(test_purge_reaches_every_server_through_memcached, stop_all),
        cmocka_unit_test_teardown(test_purge_with_memcached_unreachable_says_so, stop_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
