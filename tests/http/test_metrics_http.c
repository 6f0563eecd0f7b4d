/* /metrics and /health seen from clients: promtool accepts the text, the counters move exactly
 * as the requests sent predict, and /health names the backend that stopped answering. */
#include "harness.h"
#include "memcached.h"
#include "testutil.h"

#include <jansson.h>
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

#define TILE_FMT "/iiif/3/grid.tif/%d,%d,256,256/256,/0/default.jpg"

static struct tu_server servers[2];
static int nservers;
static struct tu_memcached mem;

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

static struct tu_server *start(const char *name, const char *const *extra, char *root, size_t cap)
{
    char work[1024];
    snprintf(work, sizeof work, "%s/%s", TESSERA_TEST_WORK, name);
    struct tu_server *s = &servers[nservers];
    assert_int_equal(tu_start_on_grid_root(s, TESSERA_BIN, work, extra, root, cap), 0);
    nservers++;
    return s;
}

static void get_status(const struct tu_server *s, const char *path, long want,
                       struct tu_response *r)
{
    assert_int_equal(tu_get(s, path, r), 0);
    if (r->status != want)
        fail_msg("%s: status %ld, expected %ld: %s", path, r->status, want,
                 r->body.data ? (char *)r->body.data : "");
}

/* One tile of the grid, checked to be a 256x256 image. */
static void get_tile(const struct tu_server *s, int x, int y)
{
    char path[128];
    snprintf(path, sizeof path, TILE_FMT, x, y);
    struct tu_response r;
    get_status(s, path, 200, &r);
    struct ts_image img;
    assert_int_equal(tu_decode_body(&r, &img), 0);
    assert_int_equal(img.width, 256);
    assert_int_equal(img.height, 256);
    ts_image_free(&img);
    tu_response_free(&r);
}

/* The value of the sample named exactly `series` (name and labels as written), 0 when the
 * text has no such line (a counter that never moved is not written). */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, series, n) && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return 0;
}

static char *scrape(const struct tu_server *s)
{
    struct tu_response r;
    get_status(s, "/metrics", 200, &r);
    char type[128];
    assert_true(tu_header(&r, "Content-Type", 0, type, sizeof type));
    assert_non_null(strstr(type, "text/plain; version=0.0.4"));
    char *text = strdup((const char *)r.body.data);
    assert_non_null(text);
    tu_response_free(&r);
    return text;
}

/* promtool's verdict on the text: skipped (77) when promtool is not installed. */
static void promtool_accepts(const char *text)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        fprintf(stderr, "skipped: no promtool (install the prometheus package, "
                        "scripts/deps.sh --test)\n");
        skip();
    }
    char path[1024], cmd[2200], out[4096];
    snprintf(path, sizeof path, "%s/metrics.txt", TESSERA_TEST_WORK);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "promtool check metrics < '%s' 2>&1", path);
    int rc = tu_run_capture(cmd, out, sizeof out);
    if (rc != 0)
        fail_msg("promtool check metrics exited %d:\n%s", rc, out);
}

#define DELTA(series) (sample(after, series) - sample(before, series))

static void test_counters_move_as_the_requests_predict(void **state)
{
    (void)state;
    char root[1024];
    struct tu_server *s = start("counts", NULL, root, sizeof root);
    char *before = scrape(s);
    /* Six distinct tiles, then the first again: six renders and one response-cache hit. */
    static const int tiles[6][2] = {{0, 0}, {256, 0}, {512, 0}, {0, 256}, {256, 256}, {512, 256}};
    for (int i = 0; i < 6; i++)
        get_tile(s, tiles[i][0], tiles[i][1]);
    get_tile(s, 0, 0);
    struct tu_response r;
    get_status(s, "/iiif/3/not-there.tif/info.json", 404, &r);
    tu_response_free(&r);
    get_status(s, "/no/such/route", 404, &r);
    tu_response_free(&r);
    /* One request in each of iipsrv's forms, each counted under its own protocol. */
    get_status(s, "/fcgi-bin/iipsrv.fcgi?FIF=grid.tif&JTL=0,0", 200, &r);
    tu_response_free(&r);
    get_status(s, "/fcgi-bin/iipsrv.fcgi?DeepZoom=grid.tif.dzi", 200, &r);
    tu_response_free(&r);
    get_status(s, "/fcgi-bin/iipsrv.fcgi?Zoomify=grid.tif/ImageProperties.xml", 200, &r);
    tu_response_free(&r);
    get_status(s, "/health", 200, &r);
    tu_response_free(&r);
    char *after = scrape(s);

    assert_int_equal(DELTA("tessera_requests_total{route=\"iiif\",code=\"200\"}"), 7);
    assert_int_equal(DELTA("tessera_requests_total{route=\"iiif\",code=\"404\"}"), 1);
    assert_int_equal(DELTA("tessera_requests_total{route=\"other\",code=\"404\"}"), 1);
    assert_int_equal(DELTA("tessera_requests_total{route=\"iip\",code=\"200\"}"), 1);
    assert_int_equal(DELTA("tessera_requests_total{route=\"deepzoom\",code=\"200\"}"), 1);
    assert_int_equal(DELTA("tessera_requests_total{route=\"zoomify\",code=\"200\"}"), 1);
    assert_int_equal(DELTA("tessera_requests_total{route=\"health\",code=\"200\"}"), 1);
    /* A scrape is counted once it is answered: the first one shows in the second. */
    assert_int_equal(DELTA("tessera_requests_total{route=\"metrics\",code=\"200\"}"), 1);
    assert_int_equal(DELTA("tessera_request_duration_seconds_count{route=\"iiif\"}"), 8);
    assert_int_equal(DELTA("tessera_request_duration_seconds_bucket{route=\"iiif\",le=\"+Inf\"}"),
                     8);
    assert_true(DELTA("tessera_request_duration_seconds_sum{route=\"iiif\"}") > 0);
    /* The repeated tile is the only hit; each new tile missed once (the IIP tile has its own
     * key and missed too). */
    assert_int_equal(DELTA("tessera_cache_hits_total{cache=\"responses\"}"), 1);
    assert_int_equal(DELTA("tessera_cache_misses_total{cache=\"responses\"}"), 9);
    assert_true(sample(after, "tessera_cache_entries{cache=\"responses\"}") >= 7);
    assert_true(sample(after, "tessera_cache_bytes{cache=\"responses\"}") > 0);
    assert_true(sample(after, "tessera_readers_open") >= 1);
    /* Nothing is under way while the scrape is answered: the counts are back to rest. */
    assert_int_equal(sample(after, "tessera_render_memory_bytes"), 0);
    assert_int_equal(sample(after, "tessera_queue_length{lane=\"fast\"}"), 0);
    assert_int_equal(sample(after, "tessera_requests_in_flight{lane=\"slow\"}"), 0);
    promtool_accepts(after);
    free(before);
    free(after);
}

static void test_a_request_over_the_memory_budget_counts_as_too_large(void **state)
{
    (void)state;
    const char *extra[] = {"--request-memory", "1", "--render-memory", "1", NULL};
    char root[1024];
    struct tu_server *s = start("budget", extra, root, sizeof root);
    char *before = scrape(s);
    struct tu_response r;
    get_status(s, "/iiif/3/grid.tif/full/1000,/0/default.png", 413, &r);
    tu_response_free(&r);
    char *after = scrape(s);
    assert_int_equal(DELTA("tessera_rejected_total{reason=\"too_large\"}"), 1);
    assert_int_equal(DELTA("tessera_requests_total{route=\"iiif\",code=\"413\"}"), 1);
    free(before);
    free(after);
}

static void test_metrics_off_is_not_found_and_a_bad_value_stops_the_start(void **state)
{
    (void)state;
    const char *extra[] = {"--metrics", "off", NULL};
    char root[1024];
    struct tu_server *s = start("off", extra, root, sizeof root);
    struct tu_response r;
    get_status(s, "/metrics", 404, &r);
    assert_non_null(strstr((const char *)r.body.data, "--metrics"));
    tu_response_free(&r);
    get_status(s, "/health", 200, &r);
    tu_response_free(&r);

    char cmd[2048], out[2048];
    snprintf(cmd, sizeof cmd, "'%s' --root '%s' --listen 127.0.0.1:0 --metrics maybe 2>&1",
             TESSERA_BIN, root);
    assert_int_not_equal(tu_run_capture(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "--metrics wants on or off"));
}

/* /health's JSON: its status and whether backend `name` is ok (error text into why). */
static long health(const struct tu_server *s, const char *name, bool *ok, char *why, size_t cap)
{
    struct tu_response r;
    assert_int_equal(tu_get(s, "/health", &r), 0);
    json_error_t jerr;
    json_t *doc = json_loads((const char *)r.body.data, 0, &jerr);
    if (!doc)
        fail_msg("/health is not JSON (%s): %s", jerr.text, (const char *)r.body.data);
    json_t *b = json_object_get(json_object_get(doc, "backends"), name);
    assert_non_null(b);
    *ok = json_is_true(json_object_get(b, "ok"));
    const char *e = json_string_value(json_object_get(b, "error"));
    snprintf(why, cap, "%s", e ? e : "");
    const char *status = json_string_value(json_object_get(doc, "status"));
    assert_non_null(status);
    assert_string_equal(status, r.status == 200 ? "ok" : "unavailable");
    json_decref(doc);
    long code = r.status;
    tu_response_free(&r);
    return code;
}

static void test_health_names_memcached_when_it_is_down_and_tiles_still_come(void **state)
{
    (void)state;
    if (!tu_memcached_binary()) {
        fprintf(stderr, "skipped: no memcached binary (install the memcached package)\n");
        skip();
    }
    assert_int_equal(tu_memcached_start(&mem), 0);
    /* One public name, as behind a load balancer: the answers' ids and Link headers agree. */
    const char *extra[] = {"--memcached", mem.servers, "--base-url", "http://images.example.org",
                           NULL};
    char root[1024];
    struct tu_server *a = start("mc-a", extra, root, sizeof root);
    /* The same folder: a fleet shares its images, and with them the files' mtimes that name
     * the shared answers. */
    struct tu_server *b = &servers[nservers];
    assert_int_equal(tu_server_start(b, TESSERA_BIN, root, extra), 0);
    nservers++;
    bool ok;
    char why[512];
    assert_int_equal(health(a, "memcached", &ok, why, sizeof why), 200);
    assert_true(ok);

    /* A renders and shares a tile; B finds it in memcached: one memcached hit on B. */
    char *before = scrape(b);
    get_tile(a, 0, 0);
    get_tile(b, 0, 0);
    char *after = scrape(b);
    assert_int_equal(DELTA("tessera_cache_hits_total{cache=\"memcached\"}"), 1);
    assert_int_equal(DELTA("tessera_cache_misses_total{cache=\"memcached\"}"), 0);
    assert_int_equal(sample(after, "tessera_memcached_up"), 1);
    promtool_accepts(after);
    free(before);
    free(after);
    /* memcached's own figures come from a probe that stands for a second. */
    tu_sleep_ms(1100);
    char *later = scrape(b);
    /* memcached's items: the shared tile and the image's purge generation (see memcache.h). */
    assert_int_equal(sample(later, "tessera_cache_entries{cache=\"memcached\"}"), 2);
    assert_true(sample(later, "tessera_cache_bytes{cache=\"memcached\"}") > 0);
    free(later);

    tu_memcached_stop(&mem);
    tu_sleep_ms(1100); /* past the second the last probe's answer stands */
    assert_int_equal(health(a, "memcached", &ok, why, sizeof why), 503);
    assert_false(ok);
    assert_non_null(strstr(why, "memcached"));
    assert_non_null(strstr(why, "unreachable"));
    assert_int_equal(health(a, "images", &ok, why, sizeof why), 503);
    assert_true(ok); /* the images are fine: only memcached is named */
    /* Image requests do not depend on memcached: a new tile and a cached one both come. */
    get_tile(a, 512, 512);
    get_tile(a, 0, 0);
    char *down = scrape(a);
    assert_int_equal(sample(down, "tessera_memcached_up"), 0);
    free(down);
}

static void test_health_names_the_image_root_when_it_is_gone(void **state)
{
    (void)state;
    char root[1024];
    struct tu_server *s = start("gone", NULL, root, sizeof root);
    bool ok;
    char why[512];
    assert_int_equal(health(s, "images", &ok, why, sizeof why), 200);
    assert_true(ok);
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(health(s, "images", &ok, why, sizeof why), 503);
    assert_false(ok);
    assert_non_null(strstr(why, "image root"));
}

int main(void)
{
    tu_http_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_counters_move_as_the_requests_predict, stop_all),
        cmocka_unit_test_teardown(test_a_request_over_the_memory_budget_counts_as_too_large,
                                  stop_all),
        cmocka_unit_test_teardown(test_metrics_off_is_not_found_and_a_bad_value_stops_the_start,
                                  stop_all),
        cmocka_unit_test_teardown(test_health_names_memcached_when_it_is_down_and_tiles_still_come,
                                  stop_all),
        cmocka_unit_test_teardown(test_health_names_the_image_root_when_it_is_gone, stop_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
