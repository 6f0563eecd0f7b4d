/* HTTP semantics of the server: status codes, CORS, HEAD, conditional requests, Link, limits. */
#include "harness.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

static void urlf(char *out, size_t cap, const struct tu_server *s, const char *path)
{
    int n = snprintf(out, cap, "%s%s", s->base, path);
    assert_true(n > 0 && (size_t)n < cap);
}

/* Performs a request and asserts its status; resp must be freed by the caller. */
static void expect(const struct tu_server *s, const char *method, const char *path,
                   const char *const *hdrs, long status, struct tu_response *r)
{
    char url[2048];
    urlf(url, sizeof(url), s, path);
    if (tu_request(method, url, hdrs, r) != 0)
        fail_msg("%s %s: no response (curl code %d)", method, path, r->curl_code);
    if (r->status != status)
        fail_msg("%s %s: expected %ld, got %ld: %.200s", method, path, status, r->status,
                 r->body.data ? (const char *)r->body.data : "");
}

static void expect_header(const struct tu_response *r, const char *what, const char *name,
                          const char *want)
{
    char v[2048];
    if (!tu_header(r, name, 0, v, sizeof(v)))
        fail_msg("%s: no %s header", what, name);
    if (want && strcmp(v, want) != 0)
        fail_msg("%s: %s is \"%s\", expected \"%s\"", what, name, v, want);
}

static void expect_cors(const struct tu_response *r, const char *what)
{
    expect_header(r, what, "Access-Control-Allow-Origin", "*");
}

/* Error bodies are a single line of plain text saying why. */
static void expect_error_body(const struct tu_response *r, const char *what)
{
    char ct[256];
    if (!tu_header(r, "Content-Type", 0, ct, sizeof(ct)) || strncmp(ct, "text/plain", 10) != 0)
        fail_msg("%s: error Content-Type should be text/plain", what);
    if (r->body.len == 0)
        fail_msg("%s: error body is empty", what);
    size_t lines = 0;
    for (size_t i = 0; i < r->body.len; i++) {
        if (r->body.data[i] == '\n' && i + 1 < r->body.len)
            lines++;
    }
    if (lines > 0)
        fail_msg("%s: error body has more than one line: %.*s", what, (int)r->body.len,
                 (const char *)r->body.data);
}

static void test_cors_on_every_status(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        long status;
    } cases[] = {
        {"/iiif/3/grid.tif/info.json", 200},
        {"/iiif/3/grid.tif/full/100,/0/default.jpg", 200},
        {"/iiif/3/grid.tif", 303},
        {"/iiif/3/grid.tif/full/max/0/fancy.jpg", 400},
        {"/iiif/3/..%2Fgrid.tif/info.json", 403},
        {"/iiif/3/nothing-here.tif/info.json", 404},
        {"/no/such/route", 404},
        {"/iiif/3/grid.tif/full/100,/0/default.pdf", 400},
        {"/iiif/3/corrupt.jpg/info.json", 500},
        {"/health", 200},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tu_response r;
        expect(&server, "GET", cases[i].path, NULL, cases[i].status, &r);
        expect_cors(&r, cases[i].path);
        if (cases[i].status >= 400)
            expect_error_body(&r, cases[i].path);
        tu_response_free(&r);
    }
}

static void test_cors_on_304(void **state)
{
    (void)state;
    struct tu_response r;
    char etag[512];
    char hdr[600];
    expect(&server, "GET", "/iiif/3/grid.tif/full/64,/0/default.jpg", NULL, 200, &r);
    expect_header(&r, "image", "ETag", NULL);
    assert_true(tu_header(&r, "ETag", 0, etag, sizeof(etag)));
    tu_response_free(&r);
    snprintf(hdr, sizeof(hdr), "If-None-Match: %s", etag);
    const char *h[] = {hdr, NULL};
    expect(&server, "GET", "/iiif/3/grid.tif/full/64,/0/default.jpg", h, 304, &r);
    expect_cors(&r, "304");
    tu_response_free(&r);
}

static void test_options_preflight(void **state)
{
    (void)state;
    const char *h[] = {"Origin: http://viewer.example.org", "Access-Control-Request-Method: GET",
                       "Access-Control-Request-Headers: Accept", NULL};
    const char *paths[] = {"/iiif/3/grid.tif/info.json",
                           "/iiif/2/grid.tif/full/full/0/default.jpg"};
    for (size_t i = 0; i < 2; i++) {
        struct tu_response r;
        expect(&server, "OPTIONS", paths[i], h, 204, &r);
        expect_cors(&r, "OPTIONS");
        if (!tu_header_contains(&r, "Access-Control-Allow-Methods", "GET"))
            fail_msg("OPTIONS %s: Access-Control-Allow-Methods lacks GET", paths[i]);
        assert_int_equal(r.body.len, 0);
        tu_response_free(&r);
    }
}

static void check_head_matches_get(const char *path)
{
    struct tu_response g;
    struct tu_response h;
    char gv[512];
    char hv[512];
    expect(&server, "GET", path, NULL, 200, &g);
    expect(&server, "HEAD", path, NULL, 200, &h);
    if (h.body.len != 0)
        fail_msg("HEAD %s: %zu body bytes", path, h.body.len);
    static const char *const same[] = {"Content-Type", "ETag", "Last-Modified", "Cache-Control",
                                       "Access-Control-Allow-Origin"};
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        if (!tu_header(&g, same[i], 0, gv, sizeof(gv)))
            fail_msg("GET %s: no %s", path, same[i]);
        if (!tu_header(&h, same[i], 0, hv, sizeof(hv)) || strcmp(gv, hv) != 0)
            fail_msg("HEAD %s: %s differs from GET (\"%s\")", path, same[i], gv);
    }
    if (!tu_header(&h, "Content-Length", 0, hv, sizeof(hv)))
        fail_msg("HEAD %s: no Content-Length", path);
    if (strtoull(hv, NULL, 10) != g.body.len)
        fail_msg("HEAD %s: Content-Length %s but GET sent %zu bytes", path, hv, g.body.len);
    tu_response_free(&g);
    tu_response_free(&h);
}

static void test_head_has_get_headers_and_no_body(void **state)
{
    (void)state;
    check_head_matches_get("/iiif/3/grid.tif/info.json");
    check_head_matches_get("/iiif/3/grid.tif/0,0,256,256/256,/0/default.jpg");
    check_head_matches_get("/iiif/2/grid.png/full/200,/0/default.png");
}

/* On one kept-alive connection a HEAD must leave no body bytes behind: the GET after it
 * would otherwise read them as its own response. */
static void test_head_then_get_on_one_connection(void **state)
{
    (void)state;
    struct tu_client c;
    char url[512];
    assert_int_equal(tu_client_init(&c), 0);
    const char *paths[] = {"/iiif/3/grid.tif/full/120,/0/default.jpg", "/iiif/3/grid.tif/info.json",
                           "/iiif/3/nothing.tif/info.json"};
    const long want[] = {200, 200, 404};
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < 3; i++) {
            struct tu_response r;
            urlf(url, sizeof(url), &server, paths[i]);
            assert_int_equal(tu_client_request(&c, "HEAD", url, NULL, &r), 0);
            assert_int_equal(r.status, want[i]);
            assert_int_equal(r.body.len, 0);
            tu_response_free(&r);
            assert_int_equal(tu_client_request(&c, "GET", url, NULL, &r), 0);
            if (r.status != want[i])
                fail_msg("GET %s after HEAD on the same connection: %ld", paths[i], r.status);
            char cl[64];
            if (tu_header(&r, "Content-Length", 0, cl, sizeof(cl)) &&
                strtoull(cl, NULL, 10) != r.body.len)
                fail_msg("GET %s: Content-Length %s, body %zu", paths[i], cl, r.body.len);
            if (i == 0) {
                struct ts_image img;
                assert_int_equal(tu_decode_body(&r, &img), 0);
                assert_int_equal(img.width, 120);
                ts_image_free(&img);
            }
            tu_response_free(&r);
        }
    }
    long conns = tu_client_connections(&c);
    tu_client_free(&c);
    if (conns != 1)
        fail_msg("12 requests used %ld connections; keep-alive should need 1", conns);
}

static void check_redirect(const char *path, const char *target_suffix)
{
    struct tu_response r;
    char loc[1024];
    char want[1024];
    expect(&server, "GET", path, NULL, 303, &r);
    expect_cors(&r, path);
    if (!tu_header(&r, "Location", 0, loc, sizeof(loc)))
        fail_msg("GET %s: 303 without Location", path);
    snprintf(want, sizeof(want), "%s%s", server.base, target_suffix);
    if (strcasecmp(loc, want) != 0)
        fail_msg("GET %s: Location \"%s\", expected \"%s\"", path, loc, want);
    tu_response_free(&r);
}

static void test_base_uri_redirects_to_info(void **state)
{
    (void)state;
    check_redirect("/iiif/3/grid.tif", "/iiif/3/grid.tif/info.json");
    check_redirect("/iiif/2/grid.tif", "/iiif/2/grid.tif/info.json");
    check_redirect("/iiif/3/sub%2Fdir%2Fgrid2.tif", "/iiif/3/sub%2Fdir%2Fgrid2.tif/info.json");
}

static void check_conditional(const char *path)
{
    struct tu_response r;
    char etag[512];
    char lm[512];
    char h1[600];
    char h2[600];
    expect(&server, "GET", path, NULL, 200, &r);
    if (!tu_header(&r, "ETag", 0, etag, sizeof(etag)) || etag[0] == '\0')
        fail_msg("GET %s: no ETag", path);
    if (!tu_header(&r, "Last-Modified", 0, lm, sizeof(lm)) || strstr(lm, "GMT") == NULL)
        fail_msg("GET %s: no HTTP-date Last-Modified", path);
    tu_response_free(&r);

    snprintf(h1, sizeof(h1), "If-None-Match: %s", etag);
    const char *inm[] = {h1, NULL};
    expect(&server, "GET", path, inm, 304, &r);
    if (r.body.len != 0)
        fail_msg("GET %s: 304 with %zu body bytes", path, r.body.len);
    char again[512];
    if (!tu_header(&r, "ETag", 0, again, sizeof(again)) || strcmp(again, etag) != 0)
        fail_msg("GET %s: 304 should repeat the ETag %s", path, etag);
    tu_response_free(&r);

    char h3[700];
    snprintf(h3, sizeof(h3), "If-None-Match: \"other\", %s", etag);
    const char *list[] = {h3, NULL};
    expect(&server, "GET", path, list, 304, &r);
    tu_response_free(&r);
    const char *star[] = {"If-None-Match: *", NULL};
    expect(&server, "GET", path, star, 304, &r);
    tu_response_free(&r);

    const char *other[] = {"If-None-Match: \"not-the-etag\"", NULL};
    expect(&server, "GET", path, other, 200, &r);
    tu_response_free(&r);

    snprintf(h2, sizeof(h2), "If-Modified-Since: %s", lm);
    const char *ims[] = {h2, NULL};
    expect(&server, "GET", path, ims, 304, &r);
    assert_int_equal(r.body.len, 0);
    tu_response_free(&r);

    const char *old[] = {"If-Modified-Since: Thu, 01 Jan 1998 00:00:00 GMT", NULL};
    expect(&server, "GET", path, old, 200, &r);
    assert_true(r.body.len > 0);
    tu_response_free(&r);
}

static void test_conditional_requests_get_304(void **state)
{
    (void)state;
    check_conditional("/iiif/3/grid.tif/full/128,/0/default.jpg");
    check_conditional("/iiif/3/grid.tif/info.json");
    check_conditional("/iiif/2/grid.png/0,0,256,256/256,/0/default.png");
}

static void test_etag_differs_between_renditions(void **state)
{
    (void)state;
    struct tu_response a;
    struct tu_response b;
    char ea[512];
    char eb[512];
    expect(&server, "GET", "/iiif/3/grid.tif/full/100,/0/default.jpg", NULL, 200, &a);
    expect(&server, "GET", "/iiif/3/grid.tif/full/101,/0/default.jpg", NULL, 200, &b);
    assert_true(tu_header(&a, "ETag", 0, ea, sizeof(ea)));
    assert_true(tu_header(&b, "ETag", 0, eb, sizeof(eb)));
    if (strcmp(ea, eb) == 0)
        fail_msg("two different sizes share the ETag %s", ea);
    tu_response_free(&a);
    tu_response_free(&b);
}

static void check_links(const char *path, const char *canonical_suffix, const char *profile)
{
    struct tu_response r;
    char want[1024];
    expect(&server, "GET", path, NULL, 200, &r);
    snprintf(want, sizeof(want), "%s>;rel=\"canonical\"", canonical_suffix);
    /* Accept the canonical link as its own header or as one of comma-joined values. */
    char v[2048];
    int found = 0;
    for (int i = 0; tu_header(&r, "Link", i, v, sizeof(v)) && !found; i++) {
        char compact[2048];
        size_t k = 0;
        for (size_t j = 0; v[j] && k + 1 < sizeof(compact); j++)
            if (v[j] != ' ')
                compact[k++] = v[j];
        compact[k] = '\0';
        found = strstr(compact, want) != NULL && strstr(compact, "<http") != NULL;
    }
    if (!found)
        fail_msg("GET %s: no Link ending \"%s\"", path, want);
    snprintf(want, sizeof(want), "<%s>", profile);
    if (!tu_header_contains(&r, "Link", want) || !tu_header_contains(&r, "Link", "rel=\"profile\""))
        fail_msg("GET %s: no Link %s;rel=\"profile\"", path, want);
    tu_response_free(&r);
}

static void test_image_links_canonical_and_profile(void **state)
{
    (void)state;
    const char *l3 = "http://iiif.io/api/image/3/level2.json";
    const char *l2 = "http://iiif.io/api/image/2/level2.json";
    check_links("/iiif/3/grid.tif/full/max/0/default.jpg", "/full/max/0/default.jpg", l3);
    check_links("/iiif/3/grid.tif/100,200,300,400/150,/0/default.jpg",
                "/100,200,300,400/150,200/0/default.jpg", l3);
    check_links("/iiif/3/grid.tif/pct:10,20,30,40/max/0/default.png",
                "/100,200,300,400/max/0/default.png", l3);
    check_links("/iiif/3/grid.tif/100,200,300,400/^600,/0/default.jpg",
                "/100,200,300,400/^600,800/0/default.jpg", l3);
    check_links("/iiif/2/grid.tif/full/full/0/default.jpg", "/full/full/0/default.jpg", l2);
    check_links("/iiif/2/grid.tif/100,200,300,400/150,200/0/default.jpg",
                "/100,200,300,400/150,/0/default.jpg", l2);
}

static void test_image_content_types(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        const char *type;
    } cases[] = {
        {"/iiif/3/grid.tif/full/50,/0/default.jpg", "image/jpeg"},
        {"/iiif/3/grid.tif/full/50,/0/default.png", "image/png"},
        {"/iiif/3/grid.tif/full/50,/0/default.webp", "image/webp"},
        {"/iiif/2/grid.tif/full/50,/0/default.png", "image/png"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tu_response r;
        expect(&server, "GET", cases[i].path, NULL, 200, &r);
        expect_header(&r, cases[i].path, "Content-Type", cases[i].type);
        char cc[256];
        if (!tu_header(&r, "Cache-Control", 0, cc, sizeof(cc)) || !strstr(cc, "max-age="))
            fail_msg("GET %s: Cache-Control with max-age missing", cases[i].path);
        tu_response_free(&r);
    }
}

/* Content-Type compared without the optional blanks around ';'. accept NULL sends no Accept
 * header at all (curl would otherwise send its default, any type). */
static void expect_info_type(const char *path, const char *accept, const char *want)
{
    struct tu_response r;
    char hdr[256];
    char v[512];
    char compact[512];
    if (accept)
        snprintf(hdr, sizeof(hdr), "Accept: %s", accept);
    else
        snprintf(hdr, sizeof(hdr), "Accept:");
    const char *h[] = {hdr, NULL};
    expect(&server, "GET", path, h, 200, &r);
    if (!tu_header(&r, "Content-Type", 0, v, sizeof(v)))
        fail_msg("GET %s: no Content-Type", path);
    size_t k = 0;
    for (size_t j = 0; v[j] && k + 1 < sizeof(compact); j++)
        if (v[j] != ' ')
            compact[k++] = v[j];
    compact[k] = '\0';
    if (strcmp(compact, want) != 0)
        fail_msg("GET %s (Accept: %s): Content-Type \"%s\", expected \"%s\"", path,
                 accept ? accept : "absent", v, want);
    char cc[256];
    if (!tu_header(&r, "Cache-Control", 0, cc, sizeof(cc)) || !strstr(cc, "max-age="))
        fail_msg("GET %s: Cache-Control with max-age missing", path);
    expect_header(&r, path, "ETag", NULL);
    expect_header(&r, path, "Last-Modified", NULL);
    tu_response_free(&r);
}

/* 3.0 (section 5.1): no Accept header -> JSON-LD with the profile; an explicit
 * application/json gets regular JSON. 2.1 (section 5): regular JSON unless JSON-LD is asked. */
static void test_info_content_type_by_accept_and_version(void **state)
{
    (void)state;
    const char *ld3 = "application/ld+json;profile=\"http://iiif.io/api/image/3/context.json\"";
    const char *ld2 = "application/ld+json;profile=\"http://iiif.io/api/image/2/context.json\"";
    expect_info_type("/iiif/3/grid.tif/info.json", NULL, ld3);
    expect_info_type("/iiif/3/grid.tif/info.json", "application/json", "application/json");
    expect_info_type("/iiif/3/grid.tif/info.json", "application/ld+json", ld3);
    expect_info_type("/iiif/3/grid.tif/info.json",
                     "application/ld+json;profile=\"http://iiif.io/api/image/3/context.json\"",
                     ld3);
    expect_info_type("/iiif/2/grid.tif/info.json", NULL, "application/json");
    expect_info_type("/iiif/2/grid.tif/info.json", "application/json", "application/json");
    expect_info_type("/iiif/2/grid.tif/info.json", "application/ld+json", ld2);
}

static void test_info_has_profile_link(void **state)
{
    (void)state;
    struct tu_response r;
    expect(&server, "GET", "/iiif/3/grid.tif/info.json", NULL, 200, &r);
    if (!tu_header_contains(&r, "Link", "http://iiif.io/api/image/3/level2.json"))
        fail_msg("info.json 3.0: no Link to level2.json");
    tu_response_free(&r);
}

static void test_write_methods_are_405(void **state)
{
    (void)state;
    const char *methods[] = {"POST", "PUT", "DELETE"};
    const char *paths[] = {"/iiif/3/grid.tif/info.json", "/iiif/3/grid.tif/full/max/0/default.jpg"};
    for (size_t m = 0; m < 3; m++) {
        for (size_t p = 0; p < 2; p++) {
            struct tu_response r;
            expect(&server, methods[m], paths[p], NULL, 405, &r);
            expect_cors(&r, methods[m]);
            char allow[256];
            if (tu_header(&r, "Allow", 0, allow, sizeof(allow)) && !strstr(allow, "GET"))
                fail_msg("%s %s: Allow \"%s\" lacks GET", methods[m], paths[p], allow);
            tu_response_free(&r);
        }
    }
}

static void test_health(void **state)
{
    (void)state;
    struct tu_response r;
    expect(&server, "GET", "/health", NULL, 200, &r);
    tu_response_free(&r);
}

static json_t *json_of(const struct tu_response *r)
{
    json_error_t e;
    json_t *j = json_loadb((const char *)r->body.data, r->body.len, 0, &e);
    if (!j)
        fail_msg("info.json is not JSON: %s", e.text);
    return j;
}

static void test_max_width_is_advertised_and_enforced(void **state)
{
    (void)state;
    struct tu_server lim;
    char root[4096];
    snprintf(root, sizeof(root), "%s/root", TESSERA_TEST_WORK);
    const char *args[] = {"--max-width", "400", "--default-version", "2", NULL};
    assert_int_equal(tu_server_start(&lim, TESSERA_BIN, root, args), 0);

    struct tu_response r;
    expect(&lim, "GET", "/iiif/3/grid.tif/full/500,/0/default.jpg", NULL, 400, &r);
    expect_cors(&r, "over maxWidth");
    tu_response_free(&r);
    expect(&lim, "GET", "/iiif/3/grid.tif/full/^500,/0/default.jpg", NULL, 400, &r);
    tu_response_free(&r);
    expect(&lim, "GET", "/iiif/3/grid.tif/full/400,/0/default.jpg", NULL, 200, &r);
    tu_response_free(&r);

    expect(&lim, "GET", "/iiif/3/grid.tif/info.json", NULL, 200, &r);
    json_t *j = json_of(&r);
    tu_response_free(&r);
    json_t *mw = json_object_get(j, "maxWidth");
    if (!json_is_integer(mw) || json_integer_value(mw) != 400)
        fail_msg("info.json: maxWidth should be 400");
    json_decref(j);

    /* max is the largest size allowed: 400 wide, aspect kept. */
    expect(&lim, "GET", "/iiif/3/grid.tif/full/max/0/default.png", NULL, 200, &r);
    struct ts_image img;
    assert_int_equal(tu_decode_body(&r, &img), 0);
    tu_response_free(&r);
    if (img.width != 400 || img.height != 400)
        fail_msg("full/max under --max-width 400: %ux%u, expected 400x400", img.width, img.height);
    ts_image_free(&img);

    /* ^max upscales to the limit (maxHeight defaults to maxWidth); max never upscales. */
    expect(&lim, "GET", "/iiif/3/grid.tif/100,200,100,100/^max/0/default.png", NULL, 200, &r);
    assert_int_equal(tu_decode_body(&r, &img), 0);
    tu_response_free(&r);
    if (img.width != 400 || img.height != 400)
        fail_msg("100,200,100,100/^max under --max-width 400: %ux%u, expected 400x400", img.width,
                 img.height);
    ts_image_free(&img);
    expect(&lim, "GET", "/iiif/3/grid.tif/100,200,100,100/max/0/default.png", NULL, 200, &r);
    assert_int_equal(tu_decode_body(&r, &img), 0);
    tu_response_free(&r);
    if (img.width != 100 || img.height != 100)
        fail_msg("100,200,100,100/max: %ux%u, expected 100x100", img.width, img.height);
    ts_image_free(&img);

    /* With --default-version 2 the unversioned route speaks 2.1. */
    expect(&lim, "GET", "/iiif/grid.tif/info.json", NULL, 200, &r);
    j = json_of(&r);
    tu_response_free(&r);
    const char *ctx = json_string_value(json_object_get(j, "@context"));
    if (!ctx || strcmp(ctx, "http://iiif.io/api/image/2/context.json") != 0)
        fail_msg("--default-version 2: /iiif/{id}/info.json has @context %s", ctx ? ctx : "none");
    json_decref(j);

    assert_int_equal(tu_server_stop(&lim), 0);
}

static void expect_dims(const struct tu_server *s, const char *path, uint32_t w, uint32_t h)
{
    struct tu_response r;
    struct ts_image img;
    expect(s, "GET", path, NULL, 200, &r);
    assert_int_equal(tu_decode_body(&r, &img), 0);
    tu_response_free(&r);
    if (img.width != w || img.height != h)
        fail_msg("GET %s: %ux%u, expected %ux%u", path, img.width, img.height, w, h);
    ts_image_free(&img);
}

static void test_max_area_and_height_limits(void **state)
{
    (void)state;
    struct tu_server lim;
    struct tu_response r;
    char root[4096];
    snprintf(root, sizeof(root), "%s/root", TESSERA_TEST_WORK);
    const char *args[] = {"--max-width", "700", "--max-height", "200", "--max-area", "90000", NULL};
    assert_int_equal(tu_server_start(&lim, TESSERA_BIN, root, args), 0);

    expect(&lim, "GET", "/iiif/3/wide.png/info.json", NULL, 200, &r);
    json_t *j = json_of(&r);
    tu_response_free(&r);
    json_t *mw = json_object_get(j, "maxWidth");
    json_t *mh = json_object_get(j, "maxHeight");
    json_t *ma = json_object_get(j, "maxArea");
    if (!json_is_integer(mw) || json_integer_value(mw) != 700 || !json_is_integer(mh) ||
        json_integer_value(mh) != 200 || !json_is_integer(ma) || json_integer_value(ma) != 90000)
        fail_msg("info.json should advertise maxWidth 700, maxHeight 200, maxArea 90000");
    json_decref(j);

    /* 800x400 under height 200 -> 400x200 (area 80000 fits). */
    expect_dims(&lim, "/iiif/3/wide.png/full/max/0/default.png", 400, 200);
    expect_dims(&lim, "/iiif/3/wide.png/full/,200/0/default.png", 400, 200);
    expect(&lim, "GET", "/iiif/3/wide.png/full/,201/0/default.png", NULL, 400, &r);
    tu_response_free(&r);
    /* Square 1000x1000: height 200 binds first (200x200, area 40000). */
    expect_dims(&lim, "/iiif/3/grid.tif/full/max/0/default.png", 200, 200);
    /* A wide, short region: area binds (600x150 = 90000), width 700 and height 200 do not. */
    expect_dims(&lim, "/iiif/3/grid.tif/0,0,1000,250/max/0/default.png", 600, 150);
    expect(&lim, "GET", "/iiif/3/grid.tif/0,0,1000,250/640,160/0/default.png", NULL, 400, &r);
    tu_response_free(&r);
    assert_int_equal(tu_server_stop(&lim), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health),
        cmocka_unit_test(test_cors_on_every_status),
        cmocka_unit_test(test_cors_on_304),
        cmocka_unit_test(test_options_preflight),
        cmocka_unit_test(test_head_has_get_headers_and_no_body),
        cmocka_unit_test(test_head_then_get_on_one_connection),
        cmocka_unit_test(test_base_uri_redirects_to_info),
        cmocka_unit_test(test_conditional_requests_get_304),
        cmocka_unit_test(test_etag_differs_between_renditions),
        cmocka_unit_test(test_image_links_canonical_and_profile),
        cmocka_unit_test(test_image_content_types),
        cmocka_unit_test(test_info_content_type_by_accept_and_version),
        cmocka_unit_test(test_info_has_profile_link),
        cmocka_unit_test(test_write_methods_are_405),
        cmocka_unit_test(test_max_width_is_advertised_and_enforced),
        cmocka_unit_test(test_max_area_and_height_limits),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
