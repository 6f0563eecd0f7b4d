/* What a public server lets out: error bodies name the identifier and the problem, never where
 * the files are; a Host header reaches ids only when it is a host; shared caches are told when
 * an answer depends on Host. */
#include "harness.h"

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
static char root[1024];

static int group_setup(void **state)
{
    (void)state;
    return tu_start_on_grid_root(&server, TESSERA_BIN, TESSERA_TEST_WORK, NULL, root, sizeof root);
}

static int group_teardown(void **state)
{
    (void)state;
    return tu_server_stop(&server) == 0 ? 0 : -1;
}

static void get(const struct tu_server *s, const char *path, const char *const *hdrs,
                struct tu_response *r)
{
    char url[2048];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    if (tu_request("GET", url, hdrs, r) != 0)
        fail_msg("GET %s: no response (curl code %d)", path, r->curl_code);
}

static const char *body(const struct tu_response *r)
{
    return r->body.data ? (const char *)r->body.data : "";
}

/* The root's path, and its last component, must appear in no error body. */
static void expect_no_server_path(const struct tu_response *r, const char *what)
{
    if (strstr(body(r), root))
        fail_msg("%s: body reveals the image root: %s", what, body(r));
    if (strstr(body(r), TESSERA_TEST_WORK))
        fail_msg("%s: body reveals the work directory: %s", what, body(r));
    const char *nl = strchr(body(r), '\n');
    if (!nl || nl[1] != '\0')
        fail_msg("%s: body is not one line: %s", what, body(r));
}

static void test_error_bodies_name_the_identifier_not_the_path(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        long status;
        const char *names; /* what the body must mention */
    } cases[] = {
        {"/iiif/3/corrupt.jpg/full/64,/0/default.jpg", 500, "corrupt.jpg"},
        {"/iiif/3/fake.tif/info.json", 500, "fake.tif"},
        {"/iiif/3/nothing-here.tif/info.json", 404, "nothing-here.tif"},
        {"/iiif/3/grid.tif/full/64,/0/default.xyz", 400, NULL},
        /* iipsrv's extension qualities are unknown qualities unless turned on. */
        {"/iiif/3/grid.tif/full/64,/0/negative.jpg", 400, "negative"},
        {"/fcgi-bin/iipsrv.fcgi?FIF=corrupt.jpg&JTL=0,0", 500, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tu_response r;
        get(&server, cases[i].path, NULL, &r);
        if (r.status != cases[i].status)
            fail_msg("%s: status %ld, expected %ld: %s", cases[i].path, r.status, cases[i].status,
                     body(&r));
        expect_no_server_path(&r, cases[i].path);
        if (cases[i].names && !strstr(body(&r), cases[i].names))
            fail_msg("%s: body does not name %s: %s", cases[i].path, cases[i].names, body(&r));
        tu_response_free(&r);
    }
}

static void id_of_info(const char *host, char *id, size_t cap)
{
    char h[512];
    snprintf(h, sizeof h, "Host: %s", host);
    const char *hdrs[] = {h, NULL};
    struct tu_response r;
    get(&server, "/iiif/3/grid.tif/info.json", hdrs, &r);
    assert_int_equal(r.status, 200);
    const char *p = strstr(body(&r), "\"id\": \"");
    assert_non_null(p);
    p += 7;
    size_t n = strcspn(p, "\"");
    assert_true(n < cap);
    memcpy(id, p, n);
    id[n] = '\0';
    char vary[256];
    assert_true(tu_header(&r, "Vary", 0, vary, sizeof vary));
    assert_non_null(strstr(vary, "Host"));
    tu_response_free(&r);
}

static void test_only_a_host_reaches_the_ids(void **state)
{
    (void)state;
    char id[1024], fallback[256];
    id_of_info("images.example.org:8443", id, sizeof id);
    assert_string_equal(id, "http://images.example.org:8443/iiif/3/grid.tif");
    id_of_info("[::1]:8080", id, sizeof id);
    assert_string_equal(id, "http://[::1]:8080/iiif/3/grid.tif");
    /* Not hosts: the server's own address stands in. */
    snprintf(fallback, sizeof fallback, "http://127.0.0.1:%d/iiif/3/grid.tif", server.port);
    static const char *const bad[] = {"[::1]]]:::", "a:b:c", "x:99999", "[zz]", "host:", "::"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        id_of_info(bad[i], id, sizeof id);
        if (strcmp(id, fallback) != 0)
            fail_msg("Host %s gave id %s", bad[i], id);
    }
}

static void test_base_url_ends_vary_host(void **state)
{
    (void)state;
    static const char *const args[] = {"--base-url", "https://iiif.example.org", NULL};
    struct tu_server s;
    assert_int_equal(tu_server_start(&s, TESSERA_BIN, root, args), 0);
    const char *hdrs[] = {"Host: elsewhere.example", NULL};
    struct tu_response r;
    get(&s, "/iiif/3/grid.tif/info.json", hdrs, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(body(&r), "\"id\": \"https://iiif.example.org/iiif/3/grid.tif\""));
    char vary[256];
    assert_true(tu_header(&r, "Vary", 0, vary, sizeof vary));
    assert_string_equal(vary, "Accept");
    tu_response_free(&r);
    assert_int_equal(tu_server_stop(&s), 0);
}

int main(void)
{
    tu_http_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_bodies_name_the_identifier_not_the_path),
        cmocka_unit_test(test_only_a_host_reaches_the_ids),
        cmocka_unit_test(test_base_url_ends_vary_host),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
