/* Hostile and malformed URLs: each gets its status, nothing leaks, and the server stays up. */
#include "harness.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

static struct tu_server server;

static int group_setup(void **state)
{
    (void)state;
    return tu_start_on_grid_root(&server, TESSERA_BIN, TESSERA_TEST_WORK, NULL, NULL, 0);
}

static int group_teardown(void **state)
{
    (void)state;
    return tu_server_stop(&server) == 0 ? 0 : -1;
}

/* Expected statuses: the first is what the contract names; the others are also correct
 * readings of the spec (e.g. a route that does not parse may be 400 or 404). */
struct hostile {
    const char *path;
    long status[3];
};

#define IMG "/iiif/3/grid.tif/"
#define TAIL "/max/0/default.jpg"

static const struct hostile table[] = {
    /* Traversal, encoded and raw. */
    {"/iiif/3/..%2F..%2Fetc%2Fpasswd/info.json", {403}},
    {"/iiif/3/..%2F..%2F..%2F..%2Fetc%2Fpasswd/full/max/0/default.jpg", {403}},
    {"/iiif/3/%2e%2e%2f%2e%2e%2fetc%2fpasswd/info.json", {403}},
    {"/iiif/3/%2E%2E%2Fgrid.tif/info.json", {403}},
    {"/iiif/3/%2e%2e/info.json", {403}},
    {"/iiif/3/..%2Fgrid.tif/info.json", {403}},
    {"/iiif/3/sub%2Fdir%2F..%2F..%2Fgrid.tif/info.json", {403}},
    {"/iiif/3/sub%2F..%2F..%2F..%2Fetc%2Fpasswd/info.json", {403}},
    {"/iiif/3/grid.tif%2F..%2F..%2Fetc%2Fpasswd/info.json", {403}},
    {"/iiif/3/../../../etc/passwd", {403, 404, 400}},
    {"/iiif/3/../info.json", {403, 404, 400}},
    {"/iiif/../../etc/passwd/info.json", {403, 404, 400}},
    {"/../../etc/passwd", {404, 403, 400}},
    {"/iiif/3/..%5c..%5cetc%5cpasswd/info.json", {403, 404, 400}},
    {"/iiif/3/%252e%252e%252fetc%252fpasswd/info.json", {404, 400}},
    {"/iiif/3/%c0%ae%c0%ae%2fetc%2fpasswd/info.json", {404, 400, 403}},
    /* Absolute paths. */
    {"/iiif/3/%2Fetc%2Fpasswd/info.json", {403}},
    {"/iiif/3/%2Fetc%2Fhostname/full/max/0/default.jpg", {403}},
    {"/iiif/3/%2F%2Fetc%2Fpasswd/info.json", {403}},
    {"/iiif/3/%2fproc%2fself%2fenviron/info.json", {403}},
    /* NUL and control characters: "grid%00.tif" cut at the NUL would be "grid", a real image. */
    {"/iiif/3/grid%00.tif/info.json", {400, 404}},
    {"/iiif/3/grid.tif%00/info.json", {400, 404}},
    {"/iiif/3/grid%00/full/max/0/default.jpg", {400, 404}},
    {"/iiif/3/grid%0d%0aX-Injected:%201/info.json", {400, 404}},
    /* Bad percent escapes. */
    {"/iiif/3/gr%zzid.tif/info.json", {400}},
    {"/iiif/3/grid.tif%/info.json", {400}},
    {"/iiif/3/grid.tif%2/info.json", {400}},
    {"/iiif/3/%%32%65%%32%65/info.json", {400}},
    /* Huge numbers: must be rejected, never wrapped to a small value. */
    {IMG "99999999999,0,10,10" TAIL, {400}},
    {IMG "4294967296,0,10,10" TAIL, {400}},
    {IMG "4294967396,4294967396,10,10" TAIL, {400}},
    {IMG "99999999999999999999,0,10,10" TAIL, {400}},
    {IMG "full/99999999999,/0/default.jpg", {400}},
    {IMG "full/^99999999999,/0/default.jpg", {400, 413}},
    {IMG "full/^4294967396,/0/default.jpg", {400, 413}},
    {IMG "full/^,4294967396/0/default.jpg", {400, 413}},
    {IMG "full/^pct:99999999/0/default.jpg", {400, 413}},
    {IMG "full/^65536,65536/0/default.jpg", {400, 413}},
    /* Negative numbers. */
    {IMG "-10,0,100,100" TAIL, {400}},
    {IMG "0,-10,100,100" TAIL, {400}},
    {IMG "0,0,-100,100" TAIL, {400}},
    {IMG "full/-100,/0/default.jpg", {400}},
    {IMG "full/,-100/0/default.jpg", {400}},
    {IMG "full/pct:-5/0/default.jpg", {400}},
    {IMG "full/max/-90/default.jpg", {400}},
    /* Junk around numbers. */
    {IMG "10x,0,100,100" TAIL, {400}},
    {IMG "0x10,0,100,100" TAIL, {400}},
    {IMG "1e2,0,100,100" TAIL, {400}},
    {IMG "+10,0,100,100" TAIL, {400}},
    {IMG "%2010,0,100,100" TAIL, {400}},
    {IMG "0,0,100" TAIL, {400}},
    {IMG "0,0,100,100,100" TAIL, {400}},
    {IMG "0,,100,100" TAIL, {400}},
    {IMG "full/100x,/0/default.jpg", {400}},
    {IMG "full/100,100,/0/default.jpg", {400}},
    {IMG "full/pct:abc/0/default.jpg", {400}},
    {IMG "full/pct:1e2/0/default.jpg", {400}},
    {IMG "full/pct:nan/0/default.jpg", {400}},
    {IMG "full/pct:inf/0/default.jpg", {400}},
    {IMG "full/max/90x/default.jpg", {400}},
    {IMG "full/max/nan/default.jpg", {400}},
    {IMG "full/max/!!0/default.jpg", {400}},
    {IMG "full/max/0!/default.jpg", {400}},
    /* Impossible regions and sizes. */
    {IMG "0,0,0,0" TAIL, {400}},
    {IMG "0,0,0,100" TAIL, {400}},
    {IMG "1000,0,10,10" TAIL, {400}},
    {IMG "0,1000,10,10" TAIL, {400}},
    {IMG "pct:101,0,10,10" TAIL, {400}},
    {IMG "pct:0,0,0,10" TAIL, {400}},
    {IMG "pct:0,0,10" TAIL, {400}},
    {IMG "squares" TAIL, {400}},
    {IMG "full/0,/0/default.jpg", {400}},
    {IMG "full/,0/0/default.jpg", {400}},
    {IMG "full/0,0/0/default.jpg", {400}},
    {IMG "full/pct:0/0/default.jpg", {400}},
    {IMG "full/pct:101/0/default.jpg", {400}},
    {IMG "full/1001,/0/default.jpg", {400}},
    {IMG "full/,1001/0/default.jpg", {400}},
    {IMG "full/full/0/default.jpg", {400}},
    {IMG "full/!100/0/default.jpg", {400}},
    {IMG "full/^/0/default.jpg", {400}},
    {IMG "full/^^max/0/default.jpg", {400}},
    {IMG "full/max^/0/default.jpg", {400}},
    {IMG "full/,/0/default.jpg", {400}},
    {IMG "full/max/361/default.jpg", {400}},
    {IMG "full/max/360.5/default.jpg", {400}},
    {"/iiif/2/grid.tif/full/^max/0/default.jpg", {400}},
    {"/iiif/2/grid.tif/full/max/0/fancy.jpg", {400}},
    {"/iiif/2/grid.tif/full/pct:101x/0/default.jpg", {400}},
    /* Quality and format. */
    {IMG "full/max/0/fancy.jpg", {400}},
    {IMG "full/max/0/DEFAULT.jpg", {400}},
    {IMG "full/max/0/default.xyz", {400}},
    {IMG "full/max/0/default.JPG", {400}},
    {IMG "full/max/0/default", {400, 404}},
    {IMG "full/max/0/.jpg", {400}},
    {IMG "full/max/0/default.jpg.jpg", {400}},
    {IMG "full/max/0/default.", {400}},
    {IMG "full/100,/0/default.gif", {200}},
    {IMG "full/100,/0/default.tif", {200}},
    {IMG "full/100,/0/default.jp2", {200}},
    {IMG "full/max/0/default.pdf", {400}}, /* 3.0 section 4.5: unsupported format is 400 */
    {IMG "full/100,/45/default.jpg", {200}},
    /* Empty and missing segments, unknown routes. */
    {"/iiif/3/grid.tif//max/0/default.jpg", {400, 404}},
    {"/iiif/3/grid.tif/full//0/default.jpg", {400, 404}},
    {"/iiif/3/grid.tif/full/max//default.jpg", {400, 404}},
    {"/iiif/3/grid.tif/full/max/0/", {400, 404}},
    {"/iiif/3/grid.tif/full/max/0", {400, 404}},
    {"/iiif/3/grid.tif/full/max", {400, 404}},
    {"/iiif/3/grid.tif/full", {400, 404}},
    {"/iiif/3/grid.tif/info.json/extra", {400, 404}},
    {"/iiif/3/grid.tif/full/max/0/default.jpg/extra", {400, 404}},
    {"/iiif/3//info.json", {400, 404}},
    {"/iiif/3//", {400, 404}},
    {"/iiif//grid.tif/info.json", {400, 404}},
    {"//iiif/3/grid.tif/info.json", {400, 404}},
    {"/iiif/3/grid.tif/full%2Fmax/0/default.jpg", {400, 404}},
    {"/iiif/3", {400, 404}},
    {"/iiif/", {400, 404}},
    {"/iiif", {400, 404}},
    {"/", {404, 200}},
    {"/iiif/9/grid.tif/info.json", {400, 404}},
    {"/iiif/3/nothing.tif/info.json", {404}},
    {"/iiif/3/nothing.tif/full/max/0/default.jpg", {404}},
    {"/iiif/3/sub/info.json", {400, 404}},
    {"/iiif/3/sub%2Fdir/info.json", {404, 400, 403}},
    {"/iiif/3/grid.tif%2F/info.json", {404, 400, 403}},
    /* Broken sources: a codec failure is a 500, never a crash. */
    {"/iiif/3/fake.tif/info.json", {500}},
    {"/iiif/3/fake.tif/full/max/0/default.jpg", {500}},
    {"/iiif/3/corrupt.jpg/info.json", {500}},
    {"/iiif/3/corrupt.jpg/full/max/0/default.jpg", {500}},
    {"/iiif/3/truncated.jpg/full/max/0/default.jpg", {500, 200}},
    {"/iiif/3/truncated.jpg/0,900,100,100/max/0/default.png", {500, 200}},
    /* A query string does not change the request. */
    {IMG "full/64,/0/default.jpg?x=1&y=../../etc/passwd", {200}},
};

static bool allowed(const struct hostile *h, long status)
{
    for (size_t i = 0; i < 3 && h->status[i]; i++) {
        if (h->status[i] == status)
            return true;
    }
    return false;
}

static bool contains_bytes(const uint8_t *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; n <= len && i <= len - n; i++) {
        if (memcmp(hay + i, needle, n) == 0)
            return true;
    }
    return false;
}

static void check_alive_after(const char *what)
{
    if (!tu_server_alive(&server))
        fail_msg("server died after %s", what);
}

/* Sends one hostile path and checks status, leaks and liveness; returns false on mismatch. */
static bool probe(const char *path, const struct hostile *h, char *report, size_t cap)
{
    struct tu_response r;
    char url[8192];
    int n = snprintf(url, sizeof(url), "%s%s", server.base, path);
    assert_true(n > 0 && (size_t)n < sizeof(url));
    int rc = tu_request("GET", url, NULL, &r);
    check_alive_after(path);
    bool ok = true;
    if (rc != 0) {
        snprintf(report, cap, "%.300s: no response (curl %d)", path, r.curl_code);
        ok = false;
    } else if (!allowed(h, r.status)) {
        snprintf(report, cap, "%.300s: expected %ld, got %ld (%.120s)", path, h->status[0],
                 r.status, r.body.data ? (const char *)r.body.data : "");
        ok = false;
    }
    if (r.body.data && contains_bytes(r.body.data, r.body.len, "root:x:0:0")) {
        snprintf(report, cap, "%.300s: body looks like /etc/passwd", path);
        ok = false;
    }
    if (tu_header_contains(&r, "X-Injected", "1")) {
        snprintf(report, cap, "%.300s: header injection reached the response", path);
        ok = false;
    }
    tu_response_free(&r);
    return ok;
}

static void test_hostile_url_table(void **state)
{
    (void)state;
    size_t n = sizeof(table) / sizeof(table[0]);
    assert_true(n >= 50);
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        char report[512];
        if (!probe(table[i].path, &table[i], report, sizeof(report))) {
            print_error("  %s\n", report);
            failures++;
        }
    }
    if (failures)
        fail_msg("%d of %zu hostile URLs got the wrong answer (listed above)", failures, n);
}

static void test_overlong_identifier(void **state)
{
    (void)state;
    static char path[6000];
    size_t k = 0;
    const char *pre = "/iiif/3/";
    memcpy(path, pre, strlen(pre));
    k = strlen(pre);
    for (size_t i = 0; i < 5000; i++)
        path[k++] = 'a' + (char)(i % 26);
    memcpy(path + k, "/info.json", sizeof("/info.json"));
    struct hostile h = {path, {400, 414}};
    char report[512];
    if (!probe(path, &h, report, sizeof(report)))
        fail_msg("%s", report);

    /* 200 path segments of "..": still one answer, still alive. */
    k = strlen(pre);
    memcpy(path, pre, k);
    for (size_t i = 0; i < 200; i++) {
        memcpy(path + k, "..%2F", 5);
        k += 5;
    }
    memcpy(path + k, "etc%2Fpasswd/info.json", sizeof("etc%2Fpasswd/info.json"));
    struct hostile deep = {path, {403, 400, 414}};
    if (!probe(path, &deep, report, sizeof(report)))
        fail_msg("%s", report);
}

static void test_bad_methods_and_headers_keep_server_up(void **state)
{
    (void)state;
    char url[256];
    snprintf(url, sizeof(url), "%s/iiif/3/grid.tif/info.json", server.base);
    static const char *const odd_headers[][3] = {
        {"Host: ", NULL},
        {"Host: [::1", NULL},
        {"Host: a.example:99999999999", NULL},
        {"Accept: application/ld+json;profile=", "If-None-Match: ", NULL},
        {"If-Modified-Since: not a date", NULL},
        {"If-None-Match: \"\"\"\"\"", NULL},
        {"Range: bytes=99999999999999999999-", NULL},
    };
    for (size_t i = 0; i < sizeof(odd_headers) / sizeof(odd_headers[0]); i++) {
        struct tu_response r;
        tu_request("GET", url, odd_headers[i], &r);
        tu_response_free(&r);
        check_alive_after(odd_headers[i][0]);
    }
    static const char *const methods[] = {"TRACE", "PATCH", "CONNECTX", "BREW"};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        struct tu_response r;
        tu_request(methods[i], url, NULL, &r);
        if (r.status >= 200 && r.status < 300)
            fail_msg("%s %s answered %ld", methods[i], url, r.status);
        tu_response_free(&r);
        check_alive_after(methods[i]);
    }
}

/* A Host header is echoed into info.json's id: whatever it holds, the JSON must stay valid. */
static void test_hostile_host_header_keeps_json_valid(void **state)
{
    (void)state;
    char url[256];
    snprintf(url, sizeof(url), "%s/iiif/3/grid.tif/info.json", server.base);
    static const char *const hosts[] = {
        "Host: evil\"},\"width\":1,\"x\":{\"a\":\"b",
        "Host: a\\\\b",
        "Host: <script>alert(1)</script>",
        "Host: \x7f\x01",
    };
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        const char *h[] = {hosts[i], NULL};
        struct tu_response r;
        tu_request("GET", url, h, &r);
        check_alive_after(hosts[i]);
        if (r.status == 200) {
            json_error_t e;
            json_t *j = json_loadb((const char *)r.body.data, r.body.len, 0, &e);
            if (!j)
                fail_msg("%s: info.json no longer parses: %s", hosts[i], e.text);
            json_t *w = json_object_get(j, "width");
            if (!json_is_integer(w) || json_integer_value(w) != 1000)
                fail_msg("%s: the Host header rewrote the width", hosts[i]);
            json_decref(j);
        } else if (r.status != 400) {
            fail_msg("%s: expected 200 or 400, got %ld", hosts[i], r.status);
        }
        tu_response_free(&r);
    }
}

static void test_normal_request_still_works(void **state)
{
    (void)state;
    struct tu_response r;
    assert_int_equal(tu_get(&server, "/iiif/3/grid.tif/full/100,/0/default.jpg", &r), 0);
    assert_int_equal(r.status, 200);
    struct ts_image img;
    assert_int_equal(tu_decode_body(&r, &img), 0);
    assert_int_equal(img.width, 100);
    assert_int_equal(img.height, 100);
    ts_image_free(&img);
    tu_response_free(&r);
    assert_int_equal(tu_get(&server, "/iiif/3/grid.tif/info.json", &r), 0);
    assert_int_equal(r.status, 200);
    tu_response_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_url_table),
        cmocka_unit_test(test_overlong_identifier),
        cmocka_unit_test(test_bad_methods_and_headers_keep_server_up),
        cmocka_unit_test(test_hostile_host_header_keeps_json_valid),
        cmocka_unit_test(test_normal_request_still_works),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
