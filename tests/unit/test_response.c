/* Responses: headers, types, one-line error bodies from the status table, shared bodies. */
/* cmocka needs these before it, in this order. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "cache/lru.h"
#include "core/response.h"
#include "util/status.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Every row of the status table, with the HTTP status written beside it there. */
static const struct {
    int status;
    int http;
    const char *name;
} statuses[] = {
#define ROW(name, value, http, text) {TS_##name, http, #name},
    TS_STATUS_MAP(ROW)
#undef ROW
};

/* RFC 9110's reason phrases, written out here rather than taken from the code under test. */
static const char *phrase(int http)
{
    switch (http) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: fail_msg("no phrase written down for HTTP %d", http);
    }
    return "?"; /* not reached: fail_msg ends the test */
}

static const char *header_of(const struct ts_response *res, const char *name)
{
    for (int i = 0; i < res->nheaders; i++)
        if (!strcasecmp(res->headers[i].name, name))
            return res->headers[i].value;
    return NULL;
}

/* The body as a C string (copied; bodies carry no NUL). */
static const char *body_text(const struct ts_response *res, char *buf, size_t size)
{
    size_t len;
    const uint8_t *body = ts_response_body(res, &len);
    if (len >= size)
        fail_msg("body of %zu bytes does not fit in %zu", len, size);
    if (len)
        memcpy(buf, body, len);
    buf[len] = '\0';
    return buf;
}

static void test_headers_are_added_formatted_and_capped(void **state)
{
    (void)state;
    struct ts_response res;
    ts_response_init(&res);
    assert_int_equal(res.status, 200);
    assert_int_equal(ts_response_add_header(&res, "X-Count", "%d items of %s", 3, "text"), TS_OK);
    assert_int_equal(res.nheaders, 1);
    assert_string_equal(res.headers[0].name, "X-Count");
    assert_string_equal(res.headers[0].value, "3 items of text");
    /* Values are copies: the caller's buffer may change afterwards. */
    char value[16] = "first";
    ts_response_add_header(&res, "X-Copy", "%s", value);
    snprintf(value, sizeof value, "second");
    assert_string_equal(header_of(&res, "X-Copy"), "first");
    while (res.nheaders < TS_MAX_HEADERS)
        assert_int_equal(ts_response_add_header(&res, "X-Fill", "%d", res.nheaders), TS_OK);
    assert_int_equal(ts_response_add_header(&res, "X-One-Too-Many", "x"), TS_ENOMEM);
    assert_int_equal(res.nheaders, TS_MAX_HEADERS);
    ts_response_free(&res);
    assert_int_equal(res.nheaders, 0);
}

static void test_set_type_replaces_the_content_type(void **state)
{
    (void)state;
    struct ts_response res;
    ts_response_init(&res);
    assert_string_equal(res.content_type, "");
    ts_response_set_type(&res, "image/jpeg");
    assert_string_equal(res.content_type, "image/jpeg");
    ts_response_set_type(&res, "application/ld+json;profile=\"x\"");
    assert_string_equal(res.content_type, "application/ld+json;profile=\"x\"");
    ts_response_free(&res);
}

static void test_error_for_every_status_gives_its_http_code_and_one_line(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        int http = statuses[i].http;
        assert_int_equal(ts_status_http(statuses[i].status), http);
        struct ts_response res;
        ts_response_init(&res);
        ts_response_error(&res, statuses[i].status, "the reason");
        if (res.status != http)
            fail_msg("TS_%s answered %d, expected %d", statuses[i].name, res.status, http);
        char expected[128], buf[512];
        snprintf(expected, sizeof expected, "%d %s: the reason\n", http, phrase(http));
        assert_string_equal(body_text(&res, buf, sizeof buf), expected);
        assert_string_equal(res.content_type, "text/plain; charset=utf-8");
        assert_string_equal(res.reason, "the reason");
        if (http == 503)
            assert_string_equal(header_of(&res, "Retry-After"), "2");
        else
            assert_null(header_of(&res, "Retry-After"));
        ts_response_free(&res);
    }
    /* Anything outside the table is the server's fault. */
    assert_int_equal(ts_status_http(-999), 500);
}

static void test_error_reason_is_kept_to_one_line(void **state)
{
    (void)state;
    struct ts_response res;
    ts_response_init(&res);
    ts_response_error(&res, TS_EINVAL, "bad\r\nX-Injected: 1\nsecond line\r");
    char buf[512];
    assert_string_equal(body_text(&res, buf, sizeof buf),
                        "400 Bad Request: bad  X-Injected: 1 second line \n");
    assert_string_equal(res.reason, "bad  X-Injected: 1 second line ");
    assert_null(header_of(&res, "X-Injected"));
    ts_response_free(&res);
}

static void test_error_replaces_a_body_already_written(void **state)
{
    (void)state;
    struct ts_response res;
    ts_response_init(&res);
    ts_buf_append_str(&res.body, "half an image");
    ts_response_set_type(&res, "image/png");
    ts_response_error(&res, TS_ENOTFOUND, "no image 'x'");
    char buf[512];
    assert_string_equal(body_text(&res, buf, sizeof buf), "404 Not Found: no image 'x'\n");
    assert_string_equal(res.content_type, "text/plain; charset=utf-8");
    ts_response_free(&res);
}

static void test_body_is_the_own_buffer_until_one_is_shared(void **state)
{
    (void)state;
    struct ts_lru *lru;
    assert_int_equal(ts_lru_create(1 << 20, 1, &lru), TS_OK);
    ts_lru_put(lru, "k", "cached bytes", 12);
    const uint8_t *data;
    size_t len;
    struct ts_lru_ref *ref = ts_lru_acquire(lru, "k", &data, &len);
    assert_non_null(ref);

    struct ts_response res;
    ts_response_init(&res);
    ts_buf_append_str(&res.body, "own");
    char buf[64];
    assert_string_equal(body_text(&res, buf, sizeof buf), "own");
    ts_response_share(&res, ref, data, len);
    assert_ptr_equal(res.shared, ref);
    size_t got;
    assert_ptr_equal(ts_response_body(&res, &got), data); /* the cache's bytes, not a copy */
    assert_int_equal(got, 12);
    assert_string_equal(body_text(&res, buf, sizeof buf), "cached bytes");
    assert_int_equal(res.body.len, 0); /* the own body was dropped */

    ts_response_free(&res);
    assert_null(res.shared);
    assert_int_equal(res.shared_len, 0);
    ts_lru_destroy(lru);
}

static void test_free_releases_a_shared_body_that_outlived_its_cache(void **state)
{
    (void)state;
    struct ts_lru *lru;
    assert_int_equal(ts_lru_create(1 << 20, 1, &lru), TS_OK);
    ts_lru_put(lru, "k", "survivor", 8);
    const uint8_t *data;
    size_t len;
    struct ts_lru_ref *ref = ts_lru_acquire(lru, "k", &data, &len);
    assert_non_null(ref);
    struct ts_response res;
    ts_response_init(&res);
    ts_response_share(&res, ref, data, len);
    /* The cache goes first: the response's reference keeps the bytes alive (ASan would see a
     * use after free), and freeing the response lets them go (LeakSanitizer would see a leak
     * if it did not). */
    ts_lru_destroy(lru);
    char buf[64];
    assert_string_equal(body_text(&res, buf, sizeof buf), "survivor");
    ts_response_free(&res);
    assert_null(res.shared);
}

static void test_error_drops_a_shared_body(void **state)
{
    (void)state;
    struct ts_lru *lru;
    assert_int_equal(ts_lru_create(1 << 20, 1, &lru), TS_OK);
    ts_lru_put(lru, "k", "image", 5);
    const uint8_t *data;
    size_t len;
    struct ts_lru_ref *ref = ts_lru_acquire(lru, "k", &data, &len);
    assert_non_null(ref);
    struct ts_response res;
    ts_response_init(&res);
    ts_response_share(&res, ref, data, len);
    ts_response_error(&res, TS_EBUSY, "over budget");
    assert_null(res.shared);
    char buf[128];
    assert_string_equal(body_text(&res, buf, sizeof buf), "503 Service Unavailable: over budget\n");
    ts_lru_destroy(lru); /* the reference is gone already: this frees the entry */
    ts_response_free(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers_are_added_formatted_and_capped),
        cmocka_unit_test(test_set_type_replaces_the_content_type),
        cmocka_unit_test(test_error_for_every_status_gives_its_http_code_and_one_line),
        cmocka_unit_test(test_error_reason_is_kept_to_one_line),
        cmocka_unit_test(test_error_replaces_a_body_already_written),
        cmocka_unit_test(test_body_is_the_own_buffer_until_one_is_shared),
        cmocka_unit_test(test_free_releases_a_shared_body_that_outlived_its_cache),
        cmocka_unit_test(test_error_drops_a_shared_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
