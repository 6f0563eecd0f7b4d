/* The router: one request in, one job (or a refusal with its reason) out, for every protocol. */
/* cmocka needs these before it, in this order. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "core/metrics.h"
#include "server/router.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WORK TESSERA_TEST_WORK
#define ROOT WORK "/root"

static int make_app(void **state)
{
    if (system("rm -rf '" WORK "'") != 0)
        return -1;
    *state = tu_app_new(ROOT);
    return *state ? 0 : -1;
}

static int free_app(void **state)
{
    tu_app_free(*state);
    return 0;
}

/* A routed request: the job, the status and the reason. */
struct routed {
    struct ts_job job;
    int rc;
    struct ts_err err;
};

static void route(const struct ts_app *app, const char *method, const char *path, const char *query,
                  struct routed *out)
{
    struct ts_request req = {method, path, query, NULL, NULL, "HTTP/1.1", NULL, NULL, 0};
    memset(out, 0, sizeof *out);
    out->rc = router_route(app, &req, &out->job, &out->err);
}

static const char *job_header(const struct ts_job *job, const char *name)
{
    for (int i = 0; i < job->nheaders; i++)
        if (!strcasecmp(job->headers[i].name, name))
            return job->headers[i].value;
    return NULL;
}

static const char *text_of(struct ts_buf *b)
{
    const char *s = ts_buf_str(b);
    assert_non_null(s);
    return s;
}

static void expect_image_job(struct routed *r, const char *identifier)
{
    if (r->rc != TS_OK)
        fail_msg("routing gave %d (%s), expected TS_OK", r->rc, r->err.msg);
    assert_int_equal(r->job.kind, TS_JOB_IMAGE);
    assert_string_equal(text_of(&r->job.identifier), identifier);
    assert_non_null(r->job.produce);
    assert_true(r->job.key.len > 0);
}

static void test_health_is_answered_at_once(void **state)
{
    struct routed r;
    route(*state, "GET", "/health", NULL, &r);
    assert_int_equal(r.rc, TS_OK);
    assert_int_equal(r.job.kind, TS_JOB_REPLY);
    assert_int_equal(r.job.out.http_status, 200);
    assert_true(r.job.out.is_text);
    /* No memcached configured: the image root is the one backend asked about. */
    assert_string_equal(text_of(&r.job.out.text),
                        "{\"status\":\"ok\",\"backends\":{\"images\":{\"ok\":true}}}\n");
    assert_int_equal(r.job.route, TS_ROUTE_HEALTH);
    assert_int_equal(r.job.identifier.len, 0);
    ts_job_free(&r.job);
}

static void test_each_route_is_labelled_for_the_counts(void **state)
{
    static const struct {
        const char *path, *query;
        enum ts_route route;
    } cases[] = {
        {"/iiif/3/x/info.json", NULL, TS_ROUTE_IIIF},
        {"/iiif/x/full/max/0/default.jpg", NULL, TS_ROUTE_IIIF},
        {"/fcgi-bin/iipsrv.fcgi", "IIIF=x/info.json", TS_ROUTE_IIIF},
        {"/fcgi-bin/iipsrv.fcgi", "FIF=a.tif&JTL=1,0", TS_ROUTE_IIP},
        {"/", "DeepZoom=a.tif.dzi", TS_ROUTE_DEEPZOOM},
        {"/", "Zoomify=a.tif/ImageProperties.xml", TS_ROUTE_ZOOMIFY},
        {"/health", NULL, TS_ROUTE_HEALTH},
        {"/metrics", NULL, TS_ROUTE_METRICS},
        {"/no/such/thing", NULL, TS_ROUTE_OTHER},
        /* A protocol's refusal is still counted under that protocol. */
        {"/iiif/3/x/full/max/0/default.bogus", NULL, TS_ROUTE_IIIF},
        {"/", "FIF=a.tif&BOGUS=1", TS_ROUTE_IIP},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct routed r;
        route(*state, "GET", cases[i].path, cases[i].query, &r);
        if (r.job.route != (unsigned)cases[i].route)
            fail_msg("%s?%s: route %s, expected %s", cases[i].path,
                     cases[i].query ? cases[i].query : "", ts_route_name(r.job.route),
                     ts_route_name(cases[i].route));
        ts_job_free(&r.job);
    }
}

static void test_metrics_is_prometheus_text_answered_at_once(void **state)
{
    struct routed r;
    route(*state, "GET", "/metrics", NULL, &r);
    assert_int_equal(r.rc, TS_OK);
    assert_int_equal(r.job.kind, TS_JOB_REPLY);
    assert_int_equal(r.job.out.http_status, 200);
    assert_string_equal(r.job.out.type, "text/plain; version=0.0.4; charset=utf-8");
    const char *text = text_of(&r.job.out.text);
    assert_non_null(strstr(text, "# TYPE tessera_requests_total counter\n"));
    assert_non_null(strstr(text, "tessera_cache_hits_total{cache=\"responses\"} 0\n"));
    /* No memcached configured: no memcached series at all, rather than zeros that look real. */
    assert_null(strstr(text, "cache=\"memcached\""));
    assert_null(strstr(text, "tessera_memcached_up"));
    ts_job_free(&r.job);
}

static void test_options_is_a_cors_preflight(void **state)
{
    struct routed r;
    route(*state, "OPTIONS", "/iiif/3/x/info.json", NULL, &r);
    assert_int_equal(r.rc, TS_OK);
    assert_int_equal(r.job.kind, TS_JOB_REPLY);
    assert_int_equal(r.job.out.http_status, 204);
    assert_string_equal(job_header(&r.job, "Access-Control-Allow-Methods"), "GET, HEAD, OPTIONS");
    assert_non_null(job_header(&r.job, "Access-Control-Max-Age"));
    assert_int_equal(r.job.out.text.len, 0);
    ts_job_free(&r.job);
}

static void test_other_methods_are_refused_with_allow(void **state)
{
    const char *methods[] = {"POST", "PUT", "DELETE", "get"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        struct routed r;
        route(*state, methods[i], "/iiif/3/x/info.json", NULL, &r);
        if (r.rc != TS_EMETHOD)
            fail_msg("%s gave %d, expected TS_EMETHOD", methods[i], r.rc);
        assert_string_equal(job_header(&r.job, "Allow"), "GET, HEAD, OPTIONS");
        assert_true(r.err.msg[0] != '\0');
        ts_job_free(&r.job);
    }
    struct routed r;
    route(*state, "HEAD", "/health", NULL, &r);
    assert_int_equal(r.rc, TS_OK);
    ts_job_free(&r.job);
}

static void test_iiif_info_decodes_the_identifier_and_varies_on_accept(void **state)
{
    struct routed r;
    route(*state, "GET", "/iiif/3/a%2Fb.tif/info.json", NULL, &r);
    expect_image_job(&r, "a/b.tif");
    assert_true(r.job.vary_accept);
    assert_true(r.job.needs_info);
    assert_true(r.job.cacheable);
    assert_null(r.job.errors);
    ts_job_free(&r.job);
}

static void test_iiif_image_request_names_its_identifier(void **state)
{
    struct routed r;
    route(*state, "GET", "/iiif/3/x/full/max/0/default.jpg", NULL, &r);
    expect_image_job(&r, "x");
    assert_false(r.job.vary_accept);
    assert_true(r.job.needs_info);
    ts_job_free(&r.job);

    /* A bad parameter is a 400, never an identifier with slashes. */
    route(*state, "GET", "/iiif/3/x/full/max/0/default.bogus", NULL, &r);
    assert_int_equal(r.rc, TS_EINVAL);
    ts_job_free(&r.job);
}

static void test_iiif_without_a_version_uses_the_default_one(void **state)
{
    struct ts_app *app = *state;
    struct routed r;
    /* The base URI: the core resolves the identifier, then the reply redirects. */
    route(app, "GET", "/iiif/x", NULL, &r);
    assert_int_equal(r.rc, TS_OK);
    assert_string_equal(text_of(&r.job.identifier), "x");
    assert_int_equal(r.job.kind, TS_JOB_REPLY);
    assert_int_equal(r.job.out.http_status, 303);
    const char *location = job_header(&r.job, "Location");
    assert_non_null(location);
    assert_non_null(strstr(location, "/iiif/x/info.json"));
    ts_job_free(&r.job);

    route(app, "GET", "/iiif/x/info.json", NULL, &r);
    expect_image_job(&r, "x");
    assert_memory_equal(r.job.key.data, "iiif3 ", 6);
    ts_job_free(&r.job);
    app->cfg.default_version = 2;
    route(app, "GET", "/iiif/x/info.json", NULL, &r);
    app->cfg.default_version = 3;
    expect_image_job(&r, "x");
    assert_memory_equal(r.job.key.data, "iiif2 ", 6);
    ts_job_free(&r.job);
}

static void test_iip_tile_request_is_an_image_job_with_iip_errors(void **state)
{
    struct routed r;
    route(*state, "GET", "/", "FIF=a.tif&JTL=1,0", &r);
    expect_image_job(&r, "a.tif");
    assert_non_null(r.job.errors);
    assert_true(r.job.errors->no_cache);
    assert_non_null(r.job.errors->format);
    ts_job_free(&r.job);
}

static void test_iip_unknown_command_is_error_2_2(void **state)
{
    struct routed r;
    route(*state, "GET", "/", "FIF=a.tif&BOGUS=1", &r);
    assert_int_equal(r.rc, TS_EINVAL);
    assert_string_equal(r.err.code, "2 2");
    assert_non_null(r.job.errors); /* so the core answers in IIP's own shape */
    ts_job_free(&r.job);
}

static void test_iip_output_format_is_part_of_the_key(void **state)
{
    struct routed jpeg, png;
    route(*state, "GET", "/", "FIF=a.tif&CVT=jpeg", &jpeg);
    route(*state, "GET", "/", "FIF=a.tif&CVT=png", &png);
    expect_image_job(&jpeg, "a.tif");
    expect_image_job(&png, "a.tif");
    assert_string_not_equal(text_of(&jpeg.job.key), text_of(&png.job.key));
    ts_job_free(&jpeg.job);
    ts_job_free(&png.job);
}

static void test_deepzoom_and_zoomify_queries_are_image_jobs(void **state)
{
    struct routed r;
    route(*state, "GET", "/", "DeepZoom=a.tif.dzi", &r);
    expect_image_job(&r, "a.tif");
    ts_job_free(&r.job);
    route(*state, "GET", "/", "Zoomify=a.tif/ImageProperties.xml", &r);
    expect_image_job(&r, "a.tif");
    ts_job_free(&r.job);
    /* The two descriptors of one image are different answers. */
    struct routed dz, zm;
    route(*state, "GET", "/", "DeepZoom=a.tif.dzi", &dz);
    route(*state, "GET", "/", "Zoomify=a.tif/ImageProperties.xml", &zm);
    assert_string_not_equal(text_of(&dz.job.key), text_of(&zm.job.key));
    ts_job_free(&dz.job);
    ts_job_free(&zm.job);
}

static void test_unknown_path_is_not_found(void **state)
{
    struct routed r;
    route(*state, "GET", "/nowhere", NULL, &r);
    assert_int_equal(r.rc, TS_ENOTFOUND);
    assert_true(r.err.msg[0] != '\0');
    ts_job_free(&r.job);
    /* A query no protocol claims does not make it an image request. */
    route(*state, "GET", "/nowhere", "x=1", &r);
    assert_int_equal(r.rc, TS_ENOTFOUND);
    ts_job_free(&r.job);
}

static void test_root_is_the_browse_page(void **state)
{
    struct routed r;
    route(*state, "GET", "/", NULL, &r);
    assert_int_equal(r.rc, TS_OK);
    assert_int_equal(r.job.kind, TS_JOB_PAGE);
    assert_non_null(r.job.produce);
    assert_int_equal(r.job.identifier.len, 0);
    ts_job_free(&r.job);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_is_answered_at_once),
        cmocka_unit_test(test_each_route_is_labelled_for_the_counts),
        cmocka_unit_test(test_metrics_is_prometheus_text_answered_at_once),
        cmocka_unit_test(test_options_is_a_cors_preflight),
        cmocka_unit_test(test_other_methods_are_refused_with_allow),
        cmocka_unit_test(test_iiif_info_decodes_the_identifier_and_varies_on_accept),
        cmocka_unit_test(test_iiif_image_request_names_its_identifier),
        cmocka_unit_test(test_iiif_without_a_version_uses_the_default_one),
        cmocka_unit_test(test_iip_tile_request_is_an_image_job_with_iip_errors),
        cmocka_unit_test(test_iip_unknown_command_is_error_2_2),
        cmocka_unit_test(test_iip_output_format_is_part_of_the_key),
        cmocka_unit_test(test_deepzoom_and_zoomify_queries_are_image_jobs),
        cmocka_unit_test(test_unknown_path_is_not_found),
        cmocka_unit_test(test_root_is_the_browse_page),
    };
    return cmocka_run_group_tests(tests, make_app, free_app);
}
