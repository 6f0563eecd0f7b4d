/* The IIIF points a validator or a careful client checks one by one: one Link field with both
 * links (and 1.1's profile), 1.1's 415 and format by Accept, 2.1 "full" under size limits, the
 * bodiless 303, and a grey image's qualities. The server runs with maxWidth 400. */
#include "harness.h"
#include "image/image.h"
#include "testutil.h"

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
    static const char *const extra[] = {"--max-width", "400", NULL};
    char root[1024];
    if (tu_start_on_grid_root(&server, TESSERA_BIN, TESSERA_TEST_WORK, extra, root, sizeof root))
        return -1;
    char grey[1200];
    snprintf(grey, sizeof grey, "%s/grey.png", root);
    return tu_copy_file(TESSERA_TEST_DATA "/camera-512-gray.png", grey);
}

static int group_teardown(void **state)
{
    (void)state;
    return tu_server_stop(&server) == 0 ? 0 : -1;
}

static void get(const char *path, const char *accept, long status, struct tu_response *r)
{
    char url[2048], hdr[256];
    snprintf(url, sizeof url, "%s%s", server.base, path);
    const char *hdrs[2] = {NULL, NULL};
    if (accept) {
        snprintf(hdr, sizeof hdr, "Accept: %s", accept);
        hdrs[0] = hdr;
    }
    if (tu_request("GET", url, hdrs, r) != 0)
        fail_msg("GET %s: no response (curl code %d)", path, r->curl_code);
    if (r->status != status)
        fail_msg("GET %s (Accept %s): expected %ld, got %ld: %.200s", path, accept ? accept : "-",
                 status, r->status, r->body.data ? (const char *)r->body.data : "");
}

static void expect_size(const struct tu_response *r, uint32_t w, uint32_t h)
{
    struct ts_image img = {0};
    assert_int_equal(tu_decode_body(r, &img), 0);
    assert_int_equal(img.width, w);
    assert_int_equal(img.height, h);
    ts_image_free(&img);
}

static void test_image_answers_carry_one_link_field_with_both_links(void **state)
{
    (void)state;
    struct tu_response r = {0};
    get("/iiif/3/grid.tif/0,0,200,200/100,/0/default.jpg", NULL, 200, &r);
    char link[2048], second[16];
    assert_true(tu_header(&r, "Link", 0, link, sizeof link));
    assert_false(tu_header(&r, "Link", 1, second, sizeof second));
    const char *canonical =
        strstr(link, "/iiif/3/grid.tif/0,0,200,200/100,100/0/default.jpg>;rel=\"canonical\"");
    const char *profile = strstr(link, "<http://iiif.io/api/image/3/level2.json>;rel=\"profile\"");
    if (!canonical || !profile || profile < canonical)
        fail_msg("Link is \"%s\"", link);
    tu_response_free(&r);

    get("/iiif/2/grid.tif/0,0,200,200/100,/0/default.jpg", NULL, 200, &r);
    assert_true(tu_header(&r, "Link", 0, link, sizeof link));
    assert_false(tu_header(&r, "Link", 1, second, sizeof second));
    assert_non_null(strstr(link, "<http://iiif.io/api/image/2/level2.json>;rel=\"profile\""));
    assert_non_null(strstr(link, "rel=\"canonical\""));
    tu_response_free(&r);
}

static void test_v1_answers_name_their_compliance_profile(void **state)
{
    (void)state;
    static const char *const want =
        "<http://library.stanford.edu/iiif/image-api/1.1/compliance.html#level2>;rel=\"profile\"";
    struct tu_response r = {0};
    get("/iiif/1/grid.tif/0,0,200,200/100,/0/native.jpg", NULL, 200, &r);
    assert_true(tu_header_contains(&r, "Link", want));
    tu_response_free(&r);
    get("/iiif/1/grid.tif/info.json", NULL, 200, &r);
    assert_true(tu_header_contains(&r, "Link", want));
    tu_response_free(&r);
}

static void test_v1_format_not_available_is_415(void **state)
{
    (void)state;
    struct tu_response r = {0};
    get("/iiif/1/grid.tif/0,0,200,200/100,/0/native.bmp", NULL, 415, &r);
    assert_non_null(strstr((const char *)r.body.data, "bmp"));
    tu_response_free(&r);
    /* 2.1 and 3.0 say 400 for the same. */
    get("/iiif/2/grid.tif/0,0,200,200/100,/0/default.bmp", NULL, 400, &r);
    tu_response_free(&r);
}

static void test_v1_without_extension_follows_accept(void **state)
{
    (void)state;
    static const struct {
        const char *accept, *type;
    } cases[] = {
        {"image/png", "image/png"},
        {"image/webp;q=0.5, image/png;q=0.9", "image/png"},
        {"image/bmp, image/webp", "image/webp"},
        {"text/html, image/*;q=0.8", "image/jpeg"},
        {NULL, "image/jpeg"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tu_response r = {0};
        get("/iiif/1/grid.tif/0,0,200,200/100,/0/native", cases[i].accept, 200, &r);
        char type[128];
        assert_true(tu_header(&r, "Content-Type", 0, type, sizeof type));
        if (strcmp(type, cases[i].type) != 0)
            fail_msg("Accept %s: Content-Type %s, want %s", cases[i].accept ? cases[i].accept : "-",
                     type, cases[i].type);
        assert_true(tu_header_contains(&r, "Vary", "Accept"));
        expect_size(&r, 100, 100);
        tu_response_free(&r);
    }
}

static void test_v2_full_beyond_max_width_is_refused_and_max_fits(void **state)
{
    (void)state;
    struct tu_response r = {0};
    get("/iiif/2/grid.tif/full/full/0/default.jpg", NULL, 400, &r);
    assert_non_null(strstr((const char *)r.body.data, "max"));
    tu_response_free(&r);
    get("/iiif/2/grid.tif/full/max/0/default.jpg", NULL, 200, &r);
    expect_size(&r, 400, 400);
    tu_response_free(&r);
    /* A region within the limits is served whole at "full". */
    get("/iiif/2/grid.tif/100,100,300,200/full/0/default.png", NULL, 200, &r);
    expect_size(&r, 300, 200);
    tu_response_free(&r);
}

static void test_base_uri_redirect_has_no_body(void **state)
{
    (void)state;
    struct tu_response r = {0};
    get("/iiif/3/grid.tif", NULL, 303, &r);
    char loc[1024], len[32];
    assert_true(tu_header(&r, "Location", 0, loc, sizeof loc));
    assert_non_null(strstr(loc, "/iiif/3/grid.tif/info.json"));
    assert_int_equal(r.body.len, 0);
    assert_true(tu_header(&r, "Content-Length", 0, len, sizeof len));
    assert_string_equal(len, "0");
    tu_response_free(&r);
}

static bool array_has(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (json_is_string(v) && !strcmp(json_string_value(v), s))
            return true;
    }
    return false;
}

static json_t *extra_qualities(const char *path)
{
    struct tu_response r = {0};
    get(path, NULL, 200, &r);
    json_t *info = json_loads((const char *)r.body.data, 0, NULL);
    tu_response_free(&r);
    assert_non_null(info);
    json_t *q = json_incref(json_object_get(info, "extraQualities"));
    json_decref(info);
    assert_non_null(q);
    return q;
}

static void test_grey_image_does_not_offer_color(void **state)
{
    (void)state;
    json_t *grey = extra_qualities("/iiif/3/grey.png/info.json");
    assert_false(array_has(grey, "color"));
    assert_true(array_has(grey, "gray"));
    assert_true(array_has(grey, "bitonal"));
    json_decref(grey);
    json_t *colour = extra_qualities("/iiif/3/grid.tif/info.json");
    assert_true(array_has(colour, "color"));
    json_decref(colour);
}

int main(void)
{
    tu_http_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_image_answers_carry_one_link_field_with_both_links),
        cmocka_unit_test(test_v1_answers_name_their_compliance_profile),
        cmocka_unit_test(test_v1_format_not_available_is_415),
        cmocka_unit_test(test_v1_without_extension_follows_accept),
        cmocka_unit_test(test_v2_full_beyond_max_width_is_refused_and_max_fits),
        cmocka_unit_test(test_base_uri_redirect_has_no_body),
        cmocka_unit_test(test_grey_image_does_not_offer_color),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
