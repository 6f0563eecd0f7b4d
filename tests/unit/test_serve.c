/* The core pipeline: hand-made and router-made jobs served on a temporary image root. */
/* cmocka needs these before it, in this order. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "core/serve.h"
#include "server/router.h"
#include "testutil.h"
#include "util/httpdate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define DATA TESSERA_TEST_DATA
#define WORK TESSERA_TEST_WORK
#define ROOT WORK "/root"
#define IMAGE ROOT "/img.tif" /* a copy of retina-pyr-jpeg-256.tif: 1411 x 1411 */

static int make_root(void **state)
{
    (void)state;
    if (system("rm -rf '" WORK "'") != 0 || tu_mkdirs(ROOT) != 0)
        return -1;
    return tu_copy_file(DATA "/retina-pyr-jpeg-256.tif", IMAGE);
}

/* A fresh app for every test: nothing cached by one test shows in another. */
static int make_app(void **state)
{
    *state = tu_app_new(ROOT);
    return *state ? 0 : -1;
}

static int free_app(void **state)
{
    tu_app_free(*state);
    return 0;
}

/* ---- requests and responses ---- */

static const char *if_none_match(void *ctx, const char *name)
{
    return !strcasecmp(name, "If-None-Match") ? ctx : NULL;
}

/* A GET with, optionally, an If-None-Match header. */
static struct ts_request get(const char *path, const char *query, const char *etag)
{
    return (struct ts_request){"GET", path, query, if_none_match, (void *)etag, "HTTP/1.1",
                               NULL,  NULL, 0};
}

static const char *header_of(const struct ts_response *res, const char *name)
{
    for (int i = 0; i < res->nheaders; i++)
        if (!strcasecmp(res->headers[i].name, name))
            return res->headers[i].value;
    return NULL;
}

/* The body, whichever buffer holds it, as a NUL-terminated copy (free it). */
static char *body_copy(const struct ts_response *res, size_t *len)
{
    const uint8_t *body = ts_response_body(res, len);
    char *copy = malloc(*len + 1);
    assert_non_null(copy);
    if (*len)
        memcpy(copy, body, *len);
    copy[*len] = '\0';
    return copy;
}

static void expect_body(const struct ts_response *res, const char *expected)
{
    size_t len;
    char *body = body_copy(res, &len);
    assert_int_equal(len, strlen(expected));
    assert_string_equal(body, expected);
    free(body);
}

/* One line of text: no CR or LF but the final LF. */
static void expect_one_line(const struct ts_response *res, const char *starts)
{
    size_t len;
    char *body = body_copy(res, &len);
    if (strncmp(body, starts, strlen(starts)) != 0)
        fail_msg("body '%s' does not start with '%s'", body, starts);
    assert_true(len > 0);
    assert_int_equal(body[len - 1], '\n');
    assert_ptr_equal(strchr(body, '\n'), body + len - 1);
    assert_null(strchr(body, '\r'));
    free(body);
}

/* ---- hand-made jobs ---- */

static int produce_calls;

static int produce_text(const struct ts_app *app, const struct ts_job *job,
                        const struct ts_image_info *info, struct ts_product *out,
                        struct ts_err *err)
{
    (void)app, (void)job, (void)info;
    produce_calls++;
    out->is_text = true;
    ts_product_set_type(out, "text/x-test");
    int rc = ts_buf_append_str(&out->text, "hello from produce\n");
    return rc ? ts_fail(err, rc, "text too long") : TS_OK;
}

static int produce_invalid(const struct ts_app *app, const struct ts_job *job,
                           const struct ts_image_info *info, struct ts_product *out,
                           struct ts_err *err)
{
    (void)app, (void)job, (void)info, (void)out;
    produce_calls++;
    return ts_fail(err, TS_EINVAL, "size 0,0 is empty");
}

static int produce_coded(const struct ts_app *app, const struct ts_job *job,
                         const struct ts_image_info *info, struct ts_product *out,
                         struct ts_err *err)
{
    (void)app, (void)job, (void)info, (void)out;
    produce_calls++;
    snprintf(err->code, sizeof err->code, "9 9");
    return ts_fail(err, TS_EINVAL, "coded failure");
}

static int format_calls;

static int format_error(const struct ts_err *err, struct ts_buf *body)
{
    format_calls++;
    return ts_buf_appendf(body, "E:%s:%s\r\n", err->code, err->msg);
}

static const struct ts_error_style test_style = {"application/x-test-error", true, format_error,
                                                 NULL};

/* An image job that needs no image information: produce() alone says what to send. */
static void text_job(struct ts_job *job, const char *identifier, ts_produce_fn produce)
{
    ts_job_init(job, TS_JOB_IMAGE);
    assert_int_equal(ts_buf_append_str(&job->identifier, identifier), TS_OK);
    assert_int_equal(ts_buf_append_str(&job->key, "test text"), TS_OK);
    job->produce = produce;
}

/* Serves a fresh text job for identifier through core_serve. */
static void serve_text(struct ts_app *app, const char *identifier, ts_produce_fn produce,
                       const char *etag, struct ts_response *res)
{
    struct ts_job job;
    text_job(&job, identifier, produce);
    struct ts_request req = get("/test", NULL, etag);
    ts_response_init(res);
    core_serve(app, &req, &job, TS_OK, NULL, res);
    ts_job_free(&job);
}

/* Routes a GET and serves it with core_serve. */
static void serve_path(struct ts_app *app, const char *path, const char *query, const char *etag,
                       struct ts_response *res)
{
    struct ts_request req = get(path, query, etag);
    struct ts_job job;
    struct ts_err err = {0};
    int rc = router_route(app, &req, &job, &err);
    ts_response_init(res);
    core_serve(app, &req, &job, rc, &err, res);
    ts_job_free(&job);
}

static void test_reply_job_gives_its_answer_and_cors(void **state)
{
    struct ts_app *app = *state;
    struct ts_job job;
    ts_job_init(&job, TS_JOB_REPLY);
    assert_int_equal(ts_job_reply(&job, 200, "text/plain; charset=utf-8", "pong\n"), TS_OK);
    assert_int_equal(ts_job_add_header(&job, "X-Test", "%s", "yes"), TS_OK);
    struct ts_request req = get("/ping", NULL, NULL);
    struct ts_response res;
    ts_response_init(&res);
    core_serve(app, &req, &job, TS_OK, NULL, &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.content_type, "text/plain; charset=utf-8");
    expect_body(&res, "pong\n");
    assert_string_equal(header_of(&res, "Access-Control-Allow-Origin"), "*");
    assert_string_equal(header_of(&res, "X-Test"), "yes");
    assert_null(header_of(&res, "ETag")); /* a reply is not about a file */
    ts_response_free(&res);
    ts_job_free(&job);

    /* The configured origin, when there is one. */
    snprintf(app->cfg.cors, sizeof app->cfg.cors, "https://viewer.example");
    ts_job_init(&job, TS_JOB_REPLY);
    ts_job_reply(&job, 204, "", "");
    ts_response_init(&res);
    core_serve(app, &req, &job, TS_OK, NULL, &res);
    assert_int_equal(res.status, 204);
    assert_string_equal(header_of(&res, "Access-Control-Allow-Origin"), "https://viewer.example");
    ts_response_free(&res);
    ts_job_free(&job);
}

static void test_image_job_text_answer_carries_validators(void **state)
{
    struct ts_app *app = *state;
    produce_calls = 0;
    struct ts_response res;
    serve_text(app, "img.tif", produce_text, NULL, &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.content_type, "text/x-test");
    expect_body(&res, "hello from produce\n");
    assert_int_equal(produce_calls, 1);
    const char *etag = header_of(&res, "ETag");
    assert_non_null(etag);
    assert_int_equal(strlen(etag), 18); /* a quoted 64-bit hash */
    assert_int_equal(etag[0], '"');
    assert_int_equal(etag[17], '"');
    struct stat st;
    assert_int_equal(stat(IMAGE, &st), 0);
    char date[64];
    ts_http_date(st.st_mtim.tv_sec, date, sizeof date);
    assert_string_equal(header_of(&res, "Last-Modified"), date);
    char cache_control[64];
    snprintf(cache_control, sizeof cache_control, "public, max-age=%u", app->cfg.cache_max_age);
    assert_string_equal(header_of(&res, "Cache-Control"), cache_control);
    assert_string_equal(header_of(&res, "Access-Control-Allow-Origin"), "*");
    ts_response_free(&res);
}

static void test_matching_if_none_match_gives_304_without_body(void **state)
{
    struct ts_app *app = *state;
    produce_calls = 0;
    struct ts_response first, res;
    serve_text(app, "img.tif", produce_text, NULL, &first);
    char etag[64];
    snprintf(etag, sizeof etag, "%s", header_of(&first, "ETag"));
    ts_response_free(&first);

    serve_text(app, "img.tif", produce_text, etag, &res);
    assert_int_equal(res.status, 304);
    size_t len;
    ts_response_body(&res, &len);
    assert_int_equal(len, 0);
    assert_null(res.shared);
    assert_string_equal(header_of(&res, "ETag"), etag);
    assert_int_equal(produce_calls, 1);
    ts_response_free(&res);

    /* Another validator is no match: the full answer. */
    serve_text(app, "img.tif", produce_text, "\"0000000000000000\"", &res);
    assert_int_equal(res.status, 200);
    expect_body(&res, "hello from produce\n");
    ts_response_free(&res);
}

static void test_identical_request_is_a_cache_hit_without_produce(void **state)
{
    struct ts_app *app = *state;
    produce_calls = 0;
    struct ts_response first, second;
    serve_text(app, "img.tif", produce_text, NULL, &first);
    assert_null(first.shared);
    serve_text(app, "img.tif", produce_text, NULL, &second);
    assert_int_equal(produce_calls, 1);
    assert_int_equal(second.status, 200);
    assert_non_null(second.shared);
    size_t len1, len2;
    char *b1 = body_copy(&first, &len1), *b2 = body_copy(&second, &len2);
    assert_int_equal(len2, len1);
    assert_memory_equal(b2, b1, len1);
    free(b1);
    free(b2);
    assert_string_equal(second.content_type, first.content_type);
    assert_string_equal(header_of(&second, "ETag"), header_of(&first, "ETag"));
    assert_string_equal(header_of(&second, "Cache-Control"), header_of(&first, "Cache-Control"));
    assert_int_equal(second.nheaders, first.nheaders);
    ts_response_free(&first);
    ts_response_free(&second);
}

static void test_missing_identifier_is_404_with_one_line(void **state)
{
    struct ts_app *app = *state;
    produce_calls = 0;
    struct ts_response res;
    serve_text(app, "missing.tif", produce_text, NULL, &res);
    assert_int_equal(res.status, 404);
    assert_int_equal(produce_calls, 0);
    assert_string_equal(res.content_type, "text/plain; charset=utf-8");
    expect_one_line(&res, "404 Not Found: ");
    assert_true(res.reason[0] != '\0');
    assert_null(header_of(&res, "ETag"));
    assert_string_equal(header_of(&res, "Access-Control-Allow-Origin"), "*");
    ts_response_free(&res);
}

static void test_produce_failure_gives_400_with_its_reason(void **state)
{
    struct ts_app *app = *state;
    produce_calls = 0;
    struct ts_response res;
    serve_text(app, "img.tif", produce_invalid, NULL, &res);
    assert_int_equal(res.status, 400);
    expect_body(&res, "400 Bad Request: size 0,0 is empty\n");
    assert_string_equal(res.reason, "size 0,0 is empty");
    assert_null(header_of(&res, "ETag"));
    ts_response_free(&res);
    /* A failure is never cached: the next request asks produce() again. */
    serve_text(app, "img.tif", produce_invalid, NULL, &res);
    assert_int_equal(res.status, 400);
    assert_null(res.shared);
    assert_int_equal(produce_calls, 2);
    ts_response_free(&res);
}

/* Serves a text job with the test error style. */
static void serve_styled(struct ts_app *app, ts_produce_fn produce, int verdict,
                         const struct ts_err *verdict_err, struct ts_response *res)
{
    struct ts_job job;
    text_job(&job, "img.tif", produce);
    job.errors = &test_style;
    struct ts_request req = get("/test", NULL, NULL);
    ts_response_init(res);
    core_serve(app, &req, &job, verdict, verdict_err, res);
    ts_job_free(&job);
}

static void test_error_style_shapes_only_errors_with_a_code(void **state)
{
    struct ts_app *app = *state;
    format_calls = 0;
    struct ts_response res;
    serve_styled(app, produce_coded, TS_OK, NULL, &res);
    assert_int_equal(res.status, 400);
    assert_string_equal(res.content_type, "application/x-test-error");
    expect_body(&res, "E:9 9:coded failure\r\n");
    assert_int_equal(format_calls, 1);
    assert_string_equal(header_of(&res, "Cache-Control"), "no-cache");
    assert_non_null(strstr(res.reason, "9 9"));
    assert_non_null(strstr(res.reason, "coded failure"));
    ts_response_free(&res);

    /* No code: the core's own one-line error, whatever the style. */
    serve_styled(app, produce_invalid, TS_OK, NULL, &res);
    assert_int_equal(res.status, 400);
    assert_string_equal(res.content_type, "text/plain; charset=utf-8");
    expect_body(&res, "400 Bad Request: size 0,0 is empty\n");
    assert_int_equal(format_calls, 1);
    ts_response_free(&res);

    /* The protocol's own verdict with a code, before any file is looked at. */
    struct ts_err verdict = {0};
    ts_fail(&verdict, TS_EINVAL, "unknown command");
    snprintf(verdict.code, sizeof verdict.code, "2 2");
    serve_styled(app, produce_text, TS_EINVAL, &verdict, &res);
    assert_int_equal(res.status, 400);
    expect_body(&res, "E:2 2:unknown command\r\n");
    assert_int_equal(format_calls, 2);
    ts_response_free(&res);

    /* A success is untouched by the style. */
    serve_styled(app, produce_text, TS_OK, NULL, &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.content_type, "text/x-test");
    assert_int_equal(format_calls, 2);
    ts_response_free(&res);
}

/* ---- router-made jobs ---- */

static void expect_jpeg(const struct ts_response *res, uint32_t width, uint32_t height)
{
    assert_int_equal(res->status, 200);
    assert_string_equal(res->content_type, "image/jpeg");
    size_t len;
    const uint8_t *body = ts_response_body(res, &len);
    struct ts_image img = {0};
    assert_int_equal(tu_decode(body, len, &img), 0);
    assert_int_equal(img.width, width);
    assert_int_equal(img.height, height);
    ts_image_free(&img);
}

static void test_router_made_render_job_gives_a_jpeg_of_that_width(void **state)
{
    struct ts_app *app = *state;
    struct ts_response res;
    serve_path(app, "/iiif/3/img.tif/full/64,/0/default.jpg", NULL, NULL, &res);
    expect_jpeg(&res, 64, 64);
    assert_non_null(header_of(&res, "ETag"));
    assert_non_null(header_of(&res, "Link"));
    ts_response_free(&res);

    serve_path(app, "/iiif/3/img.tif/info.json", NULL, NULL, &res);
    assert_int_equal(res.status, 200);
    /* No --base-url: the ids name the Host asked, and shared caches must know it. */
    assert_string_equal(header_of(&res, "Vary"), "Accept, Host");
    size_t len;
    char *json = body_copy(&res, &len);
    assert_non_null(strstr(json, "\"width\": 1411"));
    free(json);
    ts_response_free(&res);
}

/* The fast lane's view: a small render is done at once; a large one comes back undone (no
 * answer, the job kept) and a second call, as the slow lane makes it, renders it. */
static void test_heavy_render_is_deferred_to_the_slow_lane_then_done(void **state)
{
    struct ts_app *app = *state;
    static const struct {
        const char *path;
        bool heavy;
        uint32_t w, h;
    } cases[] = {{"/iiif/3/img.tif/full/100,/0/default.jpg", false, 100, 100},
                 {"/iiif/3/img.tif/full/^4000,/0/default.jpg", true, 4000, 4000}};
    for (size_t i = 0; i < 2; i++) {
        struct ts_request req = get(cases[i].path, NULL, NULL);
        struct ts_job job;
        struct ts_err err = {0};
        struct ts_response res;
        ts_response_init(&res);
        int rc = router_route(app, &req, &job, &err);
        assert_int_equal(rc, TS_OK);
        assert_false(core_begin(app, &req, &job, rc, &err, &res));
        job.defer_heavy = true;
        bool done = core_finish(app, &req, &job, &res);
        assert_int_equal(done, !cases[i].heavy);
        if (!done) {
            assert_int_equal(res.body.len, 0); /* nothing answered yet */
            assert_true(job.produced);
            job.defer_heavy = false;
            assert_true(core_finish(app, &req, &job, &res));
        }
        ts_job_free(&job);
        expect_jpeg(&res, cases[i].w, cases[i].h);
        ts_response_free(&res);
    }
}

/* A request whose token tripped while it waited (client gone, deadline passed) costs nothing
 * more: 503 with Retry-After, no render. */
static void test_canceled_job_is_answered_503_unrendered(void **state)
{
    struct ts_app *app = *state;
    struct ts_request req = get("/iiif/3/img.tif/full/300,/0/default.jpg", NULL, NULL);
    struct ts_job job;
    struct ts_err err = {0};
    struct ts_response res;
    ts_response_init(&res);
    int rc = router_route(app, &req, &job, &err);
    assert_false(core_begin(app, &req, &job, rc, &err, &res));
    ts_cancel_stop(&job.cancel, TS_ETIMEOUT);
    assert_true(core_finish(app, &req, &job, &res));
    ts_job_free(&job);
    assert_int_equal(res.status, 503);
    assert_non_null(header_of(&res, "Retry-After"));
    expect_one_line(&res, "503 ");
    ts_response_free(&res);
}

static void test_begin_defers_image_work_and_alone_answers_hits_and_304s(void **state)
{
    struct ts_app *app = *state;
    const char *path = "/iiif/3/img.tif/full/80,/0/default.jpg";
    struct ts_request req = get(path, NULL, NULL);
    struct ts_job job;
    struct ts_err err = {0};
    struct ts_response first;
    ts_response_init(&first);
    int rc = router_route(app, &req, &job, &err);
    assert_int_equal(rc, TS_OK);
    assert_false(core_begin(app, &req, &job, rc, &err, &first));
    /* What the worker gets: the ETag and the cache key are already made. */
    assert_true(job.etag[0] == '"');
    assert_true(job.cache_key.len > job.key.len);
    assert_int_equal(first.body.len, 0); /* no image work yet */
    core_finish(app, &req, &job, &first);
    ts_job_free(&job);
    expect_jpeg(&first, 80, 80);
    char etag[64];
    snprintf(etag, sizeof etag, "%s", header_of(&first, "ETag"));

    /* The same request again: the cache answers in core_begin. */
    struct ts_response hit;
    ts_response_init(&hit);
    rc = router_route(app, &req, &job, &err);
    assert_true(core_begin(app, &req, &job, rc, &err, &hit));
    ts_job_free(&job);
    assert_non_null(hit.shared);
    size_t len1, len2;
    const uint8_t *b1 = ts_response_body(&first, &len1), *b2 = ts_response_body(&hit, &len2);
    assert_int_equal(len2, len1);
    assert_memory_equal(b2, b1, len1);
    assert_string_equal(header_of(&hit, "ETag"), etag);
    assert_int_equal(hit.nheaders, first.nheaders); /* the same headers, none twice */
    expect_jpeg(&hit, 80, 80);
    ts_response_free(&hit);
    ts_response_free(&first);

    /* And a revalidation. */
    struct ts_request revalidate = get(path, NULL, etag);
    struct ts_response not_modified;
    ts_response_init(&not_modified);
    rc = router_route(app, &revalidate, &job, &err);
    assert_true(core_begin(app, &revalidate, &job, rc, &err, &not_modified));
    ts_job_free(&job);
    assert_int_equal(not_modified.status, 304);
    size_t len;
    ts_response_body(&not_modified, &len);
    assert_int_equal(len, 0);
    ts_response_free(&not_modified);
}

/* A path of n characters: "/" and then 'a's. */
static char *long_path(size_t n)
{
    char *p = malloc(n + 1);
    assert_non_null(p);
    p[0] = '/';
    memset(p + 1, 'a', n - 1);
    p[n] = '\0';
    return p;
}

static void test_request_whose_key_is_over_the_cap_is_refused_whole(void **state)
{
    struct ts_app *app = *state;
    /* ?IIIF= builds its ids from the path: the key is "iiif3 " + the image's URI (base
     * "http://127.0.0.1:8080" + path + "?IIIF=/img.tif", 35 bytes beyond the path) +
     * " img.tif/info.json " + the JSON-LD type, some 130 bytes beyond the path in all. This
     * path leaves the image's URI inside the cap, and the key beyond it. */
    size_t n = TS_JOB_KEY_MAX - 64;
    char *path = long_path(n);
    struct ts_request req = get(path, "IIIF=img.tif/info.json", NULL);
    struct ts_job job;
    struct ts_err err = {0};
    int rc = router_route(app, &req, &job, &err);
    assert_int_equal(rc, TS_ETOOLONG);
    assert_int_equal(job.key.len, 0); /* nothing half-built is left to serve */
    struct ts_response res;
    ts_response_init(&res);
    core_serve(app, &req, &job, rc, &err, &res);
    ts_job_free(&job);
    assert_int_equal(res.status, 414);
    expect_one_line(&res, "414 URI Too Long: ");
    ts_response_free(&res);
    free(path);

    /* A path well inside the cap is served whole: its info.json names all of it. */
    n = TS_JOB_KEY_MAX - 4096;
    path = long_path(n);
    serve_path(app, path, "IIIF=img.tif/info.json", NULL, &res);
    assert_int_equal(res.status, 200);
    size_t len;
    char *json = body_copy(&res, &len);
    assert_non_null(strstr(json, path));
    free(json);
    ts_response_free(&res);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, make_app, free_app)
        T(test_reply_job_gives_its_answer_and_cors),
        T(test_image_job_text_answer_carries_validators),
        T(test_matching_if_none_match_gives_304_without_body),
        T(test_identical_request_is_a_cache_hit_without_produce),
        T(test_missing_identifier_is_404_with_one_line),
        T(test_produce_failure_gives_400_with_its_reason),
        T(test_error_style_shapes_only_errors_with_a_code),
        T(test_router_made_render_job_gives_a_jpeg_of_that_width),
        T(test_begin_defers_image_work_and_alone_answers_hits_and_304s),
        T(test_heavy_render_is_deferred_to_the_slow_lane_then_done),
        T(test_canceled_job_is_answered_503_unrendered),
        T(test_request_whose_key_is_over_the_cap_is_refused_whole),
#undef T
    };
    return cmocka_run_group_tests(tests, make_root, NULL);
}
