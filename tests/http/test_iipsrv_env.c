/* iipsrv 1.3's environment variables, seen from a client: the real server started with them, and
 * refusing to start with the ones it cannot honour. */
#include "harness.h"
#include "testutil.h"

#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <tiffio.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

static struct tu_server server;
static char root[1024];

#define CACHE_VALUE "max-age=600, must-revalidate"

/* The grid root served as an iipsrv deployment that sets the variables would have it. */
static int group_setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "%s/root", TESSERA_TEST_WORK);
    if (tu_mkdirs(root) != 0 || tu_make_http_root(root) != 0)
        return -1;
    setenv("CACHE_CONTROL", CACHE_VALUE, 1);
    setenv("ALLOW_UPSCALING", "0", 1);
    setenv("COPYRIGHT", "Test \"rights\" \xc2\xa9", 1);
    setenv("IIIF_EXTRA_INFO", "{\"service\": [{\"id\": \"https://auth.example.org/login\"}]}", 1);
    setenv("TIFF_COMPRESSION", "1", 1);
    setenv("MAX_LAYERS", "0", 1);
    setenv("INTERPOLATION", "1", 1);
    setenv("BASE_URL", "https://img.example.org/iiif/", 1);
    setenv("IIIF_EXTENSIONS", "1", 1);
    int rc = tu_server_start(&server, TESSERA_BIN, root, NULL);
    static const char *const set[] = {"CACHE_CONTROL",   "ALLOW_UPSCALING",  "COPYRIGHT",
                                      "IIIF_EXTRA_INFO", "TIFF_COMPRESSION", "MAX_LAYERS",
                                      "INTERPOLATION",   "BASE_URL"};
    for (size_t i = 0; i < sizeof set / sizeof set[0]; i++)
        unsetenv(set[i]);
    return rc;
}

static int group_teardown(void **state)
{
    (void)state;
    return tu_server_stop(&server) == 0 ? 0 : -1;
}

static void get(const char *path, struct tu_response *r)
{
    char url[4096];
    snprintf(url, sizeof url, "%s%s", server.base, path);
    if (tu_request("GET", url, NULL, r) != 0)
        fail_msg("GET %s: no response (curl code %d)", path, r->curl_code);
}

static void expect_status(const char *path, long status)
{
    struct tu_response r;
    get(path, &r);
    if (r.status != status)
        fail_msg("%s: status %ld, expected %ld: %s", path, r.status, status,
                 r.body.data ? (const char *)r.body.data : "");
    tu_response_free(&r);
}

/* CACHE_CONTROL is the whole header of every image answer, in every protocol, as in iipsrv. */
static void test_cache_control_is_sent_on_images_and_info(void **state)
{
    (void)state;
    static const char *const paths[] = {
        "/iiif/3/grid.tif/info.json", "/iiif/3/grid.tif/0,0,256,256/256,/0/default.jpg",
        "/iiif/2/grid.tif/full/100,/0/default.png", "/fcgi-bin/iipsrv.fcgi?FIF=grid.tif&JTL=0,0",
        "/fcgi-bin/iipsrv.fcgi?FIF=grid.tif&obj=Max-size"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct tu_response r;
        get(paths[i], &r);
        char value[256];
        if (r.status != 200 || !tu_header(&r, "Cache-Control", 0, value, sizeof value) ||
            strcmp(value, CACHE_VALUE) != 0)
            fail_msg("%s: status %ld, Cache-Control '%s'", paths[i], r.status,
                     tu_header(&r, "Cache-Control", 0, value, sizeof value) ? value : "(none)");
        tu_response_free(&r);
    }
    /* Errors stay uncached. */
    struct tu_response r;
    get("/iiif/3/grid.tif/full/max/0/default.xyz", &r);
    assert_int_equal(r.status, 400);
    assert_false(tu_header_contains(&r, "Cache-Control", "must-revalidate"));
    tu_response_free(&r);
}

/* ALLOW_UPSCALING=0: growth above the region is not served (501), best fits stop at the region,
 * and info.json promises no upscaling. */
static void test_upscaling_off_refuses_growth_and_is_not_advertised(void **state)
{
    (void)state;
    expect_status("/iiif/3/grid.tif/full/^pct:200/0/default.jpg", 501);
    expect_status("/iiif/3/grid.tif/0,0,100,100/^200,/0/default.jpg", 501);
    expect_status("/iiif/2/grid.tif/full/pct:150/0/default.jpg", 501);
    expect_status("/iiif/2/grid.tif/0,0,100,100/200,200/0/default.jpg", 501);
    expect_status("/iiif/3/grid.tif/full/^max/0/default.jpg", 200);
    expect_status("/iiif/3/grid.tif/full/pct:50/0/default.jpg", 200);

    struct tu_response r;
    get("/iiif/2/grid.tif/0,0,100,50/!400,400/0/default.png", &r);
    assert_int_equal(r.status, 200);
    struct ts_image img;
    assert_int_equal(tu_decode_body(&r, &img), 0);
    assert_int_equal(img.width, 100);
    assert_int_equal(img.height, 50);
    ts_image_free(&img);
    tu_response_free(&r);

    get("/iiif/3/grid.tif/info.json", &r);
    assert_int_equal(r.status, 200);
    assert_null(strstr((const char *)r.body.data, "sizeUpscaling"));
    tu_response_free(&r);
    get("/iiif/2/grid.tif/info.json", &r);
    assert_int_equal(r.status, 200);
    assert_null(strstr((const char *)r.body.data, "sizeAboveFull"));
    tu_response_free(&r);
}

static json_t *info_json(const char *path)
{
    struct tu_response r;
    get(path, &r);
    assert_int_equal(r.status, 200);
    json_error_t jerr;
    json_t *doc = json_loads((const char *)r.body.data, 0, &jerr);
    if (!doc)
        fail_msg("%s is not JSON: %s", path, jerr.text);
    tu_response_free(&r);
    return doc;
}

/* COPYRIGHT and IIIF_EXTRA_INFO reach info.json, escaped, where iipsrv puts them. */
static void test_copyright_and_extra_info_reach_info_json(void **state)
{
    (void)state;
    json_t *doc = info_json("/iiif/3/grid.tif/info.json");
    assert_string_equal(json_string_value(json_object_get(doc, "rights")),
                        "Test \"rights\" \xc2\xa9");
    json_t *service = json_array_get(json_object_get(doc, "service"), 0);
    assert_string_equal(json_string_value(json_object_get(service, "id")),
                        "https://auth.example.org/login");
    json_decref(doc);
    doc = info_json("/iiif/2/grid.tif/info.json");
    assert_string_equal(json_string_value(json_object_get(doc, "license")),
                        "Test \"rights\" \xc2\xa9");
    assert_non_null(json_object_get(doc, "service"));
    json_decref(doc);
}

/* TIFF_COMPRESSION=1: TIFF output is LZW. */
/* iipsrv's BASE_URL is what ids start with, the identifier following; a proxy's X-IIIF-ID
 * header replaces the whole id, as iipsrv reads it. */
static void test_base_url_and_x_iiif_id_make_the_id(void **state)
{
    (void)state;
    static const char *const paths[] = {"/iiif/3/grid.tif/info.json",
                                        "/fcgi-bin/iipsrv.fcgi?IIIF=grid.tif/info.json"};
    for (size_t i = 0; i < 2; i++) {
        json_t *doc = info_json(paths[i]);
        assert_string_equal(json_string_value(json_object_get(doc, "id")),
                            "https://img.example.org/iiif/grid.tif");
        json_decref(doc);
    }
    char url[4096];
    struct tu_response r;
    static const char *const hdr[] = {"X-IIIF-ID: https://cdn.example.org/images/grid", NULL};
    snprintf(url, sizeof url, "%s/iiif/3/grid.tif/info.json", server.base);
    assert_int_equal(tu_request("GET", url, hdr, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *doc = json_loads((const char *)r.body.data, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "id")),
                        "https://cdn.example.org/images/grid");
    json_decref(doc);
    tu_response_free(&r);
    /* Not one the client would see from the same URL without the header. */
    doc = info_json("/iiif/3/grid.tif/info.json");
    assert_string_equal(json_string_value(json_object_get(doc, "id")),
                        "https://img.example.org/iiif/grid.tif");
    json_decref(doc);
}

static struct ts_image image_at(const char *path)
{
    struct tu_response r;
    struct ts_image img = {0};
    get(path, &r);
    if (r.status != 200)
        fail_msg("%s: status %ld", path, r.status);
    assert_int_equal(tu_decode_body(&r, &img), 0);
    tu_response_free(&r);
    return img;
}

/* IIIF_EXTENSIONS=1: iipsrv's qualities, listed in info.json and rendered by their definitions
 * (negative: 255 - v; log: 255 log(1 + v) / log(256)). */
static void test_iiif_extensions_serve_the_extra_qualities(void **state)
{
    (void)state;
    json_t *doc = info_json("/iiif/3/grid.tif/info.json");
    json_t *extra = json_object_get(doc, "extraQualities");
    static const char *const want[] = {"negative", "stretch", "equalization", "log"};
    for (size_t k = 0; k < 4; k++) {
        bool found = false;
        for (size_t i = 0; i < json_array_size(extra); i++)
            found = found || !strcmp(json_string_value(json_array_get(extra, i)), want[k]);
        if (!found)
            fail_msg("extraQualities lacks %s", want[k]);
    }
    json_decref(doc);
    struct ts_image plain = image_at("/iiif/3/grid.tif/full/200,/0/default.png");
    struct ts_image neg = image_at("/iiif/3/grid.tif/full/200,/0/negative.png");
    struct ts_image lg = image_at("/iiif/2/grid.tif/full/200,/0/log.png");
    assert_int_equal(neg.width, plain.width);
    assert_int_equal(lg.height, plain.height);
    size_t n = (size_t)plain.width * plain.height * plain.channels;
    for (size_t i = 0; i < n; i++) {
        int v = plain.data[i];
        int want_log = (int)lround(255.0 * log1p((double)v) / log(256.0));
        if (abs((int)neg.data[i] - (255 - v)) > 1 || abs((int)lg.data[i] - want_log) > 1)
            fail_msg("sample %zu: plain %d, negative %d, log %d (want %d)", i, v, neg.data[i],
                     lg.data[i], want_log);
    }
    ts_image_free(&plain), ts_image_free(&neg), ts_image_free(&lg);
    expect_status("/iiif/3/grid.tif/full/200,/0/stretch.jpg", 200);
    expect_status("/iiif/3/grid.tif/full/200,/0/equalization.jpg", 200);
    expect_status("/iiif/3/grid.tif/full/200,/0/sepia.jpg", 400);
}

static void test_tiff_output_uses_the_configured_compression(void **state)
{
    (void)state;
    struct tu_response r;
    get("/iiif/3/grid.tif/full/100,/0/default.tif", &r);
    assert_int_equal(r.status, 200);
    char path[1200];
    snprintf(path, sizeof path, "%s/out.tif", TESSERA_TEST_WORK);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(r.body.data, 1, r.body.len, f), r.body.len);
    fclose(f);
    tu_response_free(&r);
    TIFF *tif = TIFFOpen(path, "r");
    assert_non_null(tif);
    uint16_t comp = 0;
    TIFFGetField(tif, TIFFTAG_COMPRESSION, &comp);
    TIFFClose(tif);
    assert_int_equal(comp, COMPRESSION_LZW);
}

/* Runs the server with one more variable set; it must exit at once with status 2 and a single
 * line naming the variable. */
static void expect_refusal(const char *name, const char *value)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s='%s' '%s' --root '%s' --listen 127.0.0.1:0 2>&1", name, value,
             TESSERA_BIN, root);
    char out[2048];
    int st = tu_run_capture(cmd, out, sizeof out);
    size_t n = strlen(out);
    if (st != 2)
        fail_msg("%s=%s: exit status %d, expected 2: %s", name, value, st, out);
    if (!strstr(out, name) || strchr(out, '\n') != out + n - 1)
        fail_msg("%s=%s: expected one line naming it, got: %s", name, value, out);
}

static void test_settings_that_cannot_be_honoured_stop_the_start(void **state)
{
    (void)state;
    expect_refusal("WATERMARK", "/srv/watermark.tif"); /* no such file to read at start */
    expect_refusal("TIFF_COMPRESSION", "3");
    expect_refusal("IIIF_EXTRA_INFO", "\"rights\": ");
    expect_refusal("CACHE_CONTROL", "max-age=1\nSet-Cookie: a=b");
    expect_refusal("INTERPOLATION", "0");
}

int main(void)
{
    tu_http_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_control_is_sent_on_images_and_info),
        cmocka_unit_test(test_upscaling_off_refuses_growth_and_is_not_advertised),
        cmocka_unit_test(test_copyright_and_extra_info_reach_info_json),
        cmocka_unit_test(test_base_url_and_x_iiif_id_make_the_id),
        cmocka_unit_test(test_iiif_extensions_serve_the_extra_qualities),
        cmocka_unit_test(test_tiff_output_uses_the_configured_compression),
        cmocka_unit_test(test_settings_that_cannot_be_honoured_stop_the_start),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
