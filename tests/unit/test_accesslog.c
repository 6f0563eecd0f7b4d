/* Access log lines (Combined Log Format and JSON) and the client address they name. */
/* cmocka needs these before it, in this order. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "server/accesslog.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* 2026-10-10 13:55:36 UTC */
#define WHEN ((time_t)1791640536)

static char *line_of(const struct accesslog_entry *e, bool json)
{
    static char text[4096];
    struct ts_buf b = {0};
    assert_int_equal(accesslog_format(e, json, &b), TS_OK);
    assert_true(b.len < sizeof text);
    memcpy(text, b.data, b.len);
    text[b.len] = '\0';
    ts_buf_free(&b);
    return text;
}

static void test_combined_line_has_every_field_in_place(void **state)
{
    (void)state;
    struct accesslog_entry e = {"203.0.113.9",
                                "GET",
                                "/iiif/3/a%2Fb.tif/full/max/0/default.jpg",
                                "x=1",
                                "HTTP/1.1",
                                200,
                                2326,
                                "https://viewer.example/",
                                "Mozilla/5.0",
                                WHEN,
                                1.5};
    assert_string_equal(line_of(&e, false),
                        "203.0.113.9 - - [10/Oct/2026:13:55:36 +0000] \"GET "
                        "/iiif/3/a%2Fb.tif/full/max/0/default.jpg?x=1 HTTP/1.1\" 200 2326 "
                        "\"https://viewer.example/\" \"Mozilla/5.0\"\n");
}

static void test_combined_line_dashes_what_is_missing(void **state)
{
    (void)state;
    struct accesslog_entry e = {"::1", "HEAD", "/health", NULL, "HTTP/1.0", 304,
                                0,     NULL,   NULL,      WHEN, 0};
    assert_string_equal(line_of(&e, false),
                        "::1 - - [10/Oct/2026:13:55:36 +0000] \"HEAD /health HTTP/1.0\" 304 - "
                        "\"-\" \"-\"\n");
}

static void test_combined_line_escapes_quotes_backslashes_and_bytes(void **state)
{
    (void)state;
    struct accesslog_entry e = {"10.0.0.1", "GET",      "/a\"b\\c",        NULL, "HTTP/1.1", 404,
                                10,         "r\"\n\"x", "gr\xc3\xbcn\tUA", WHEN, 0};
    const char *line = line_of(&e, false);
    assert_string_equal(line, "10.0.0.1 - - [10/Oct/2026:13:55:36 +0000] \"GET /a\\\"b\\\\c "
                              "HTTP/1.1\" 404 10 \"r\\\"\\x0a\\\"x\" \"gr\\xc3\\xbcn\\x09UA\"\n");
    /* One line: no raw newline but the last. */
    assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1);
}

static void test_json_line_parses_back_to_the_same_fields(void **state)
{
    (void)state;
    struct accesslog_entry e = {
        "198.51.100.4", "GET", "/iiif/3/gr%C3%BCn.png/info.json", "a=\"b\"", NULL, 200,
        1119,           NULL,  "gr\xc3\xbcn \"agent\"",           WHEN,      12.25};
    const char *line = line_of(&e, true);
    assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1);
    json_error_t jerr;
    json_t *o = json_loads(line, 0, &jerr);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "time")), "2026-10-10T13:55:36Z");
    assert_string_equal(json_string_value(json_object_get(o, "remote")), "198.51.100.4");
    assert_string_equal(json_string_value(json_object_get(o, "method")), "GET");
    assert_string_equal(json_string_value(json_object_get(o, "uri")),
                        "/iiif/3/gr%C3%BCn.png/info.json?a=\"b\"");
    assert_string_equal(json_string_value(json_object_get(o, "protocol")), "HTTP/1.1");
    assert_int_equal(json_integer_value(json_object_get(o, "status")), 200);
    assert_int_equal(json_integer_value(json_object_get(o, "bytes")), 1119);
    assert_true(json_is_null(json_object_get(o, "referer")));
    assert_string_equal(json_string_value(json_object_get(o, "user_agent")),
                        "gr\xc3\xbcn \"agent\"");
    assert_true(json_real_value(json_object_get(o, "duration_ms")) == 12.25);
    json_decref(o);
}

static void test_json_line_stays_valid_with_bytes_that_are_not_utf8(void **state)
{
    (void)state;
    struct accesslog_entry e = {"10.0.0.1", "GET", "/x\xff\xfe", NULL, NULL, 400,
                                5,          NULL,  "\xc3",       WHEN, 0};
    json_error_t jerr;
    json_t *o = json_loads(line_of(&e, true), 0, &jerr);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "uri")), "/x\\xff\\xfe");
    assert_string_equal(json_string_value(json_object_get(o, "user_agent")), "\\xc3");
    json_decref(o);
}

static const char *client(const char *peer, const char *xff, bool trust, const char *proxies)
{
    static char out[64];
    struct ts_ipset set;
    struct ts_err err = {0};
    assert_int_equal(ts_ipset_parse(proxies, &set, &err), TS_OK);
    accesslog_client(peer, xff, trust, &set, out, sizeof out);
    return out;
}

static void test_client_is_the_peer_unless_a_proxy_is_trusted(void **state)
{
    (void)state;
    assert_string_equal(client("127.0.0.1", "203.0.113.7", false, ""), "127.0.0.1");
    assert_string_equal(client("127.0.0.1", NULL, true, ""), "127.0.0.1");
    assert_string_equal(client("127.0.0.1", "", true, ""), "127.0.0.1");
    /* The peer is the proxy: the address it saw is the rightmost. */
    assert_string_equal(client("127.0.0.1", "203.0.113.7", true, ""), "203.0.113.7");
    /* What the client wrote itself (left) is not believed. */
    assert_string_equal(client("127.0.0.1", "1.1.1.1, 203.0.113.7", true, ""), "203.0.113.7");
}

static void test_client_skips_trusted_proxies_from_the_right(void **state)
{
    (void)state;
    const char *proxies = "127.0.0.1, 10.0.0.0/8,2001:db8::/32";
    assert_string_equal(client("127.0.0.1", "1.1.1.1, 203.0.113.7, 10.2.3.4", true, proxies),
                        "203.0.113.7");
    assert_string_equal(client("127.0.0.1", "198.51.100.1,2001:db8::5", true, proxies),
                        "198.51.100.1");
    /* All trusted: the leftmost is as far as anyone can tell. */
    assert_string_equal(client("127.0.0.1", "10.9.9.9, 10.1.1.1", true, proxies), "10.9.9.9");
    /* A peer outside the list is no proxy of ours: its header is ignored. */
    assert_string_equal(client("192.0.2.50", "203.0.113.7", true, proxies), "192.0.2.50");
}

static void test_client_forms_of_addresses_and_garbage(void **state)
{
    (void)state;
    assert_string_equal(client("127.0.0.1", "203.0.113.7:4711", true, ""), "203.0.113.7");
    assert_string_equal(client("127.0.0.1", "[2001:db8::1]:443", true, ""), "2001:db8::1");
    assert_string_equal(client("127.0.0.1", " 2001:db8::2 ", true, ""), "2001:db8::2");
    /* Not an address: the last one known good stands. */
    assert_string_equal(client("127.0.0.1", "unknown", true, ""), "127.0.0.1");
    assert_string_equal(client("127.0.0.1", "203.0.113.7, <script>", true, ""), "127.0.0.1");
    assert_string_equal(client("127.0.0.1", "evil, 10.1.1.1", true, "127.0.0.1,10.0.0.0/8"),
                        "10.1.1.1");
}

static void test_ipset_parses_networks_and_refuses_garbage(void **state)
{
    (void)state;
    struct ts_ipset set;
    struct ts_err err = {0};
    assert_int_equal(ts_ipset_parse("192.168.0.0/16 ::1", &set, &err), TS_OK);
    assert_true(ts_ipset_contains(&set, "192.168.200.1"));
    assert_false(ts_ipset_contains(&set, "192.169.0.1"));
    assert_true(ts_ipset_contains(&set, "::1"));
    assert_false(ts_ipset_contains(&set, "::2"));
    assert_false(ts_ipset_contains(&set, "not an address"));
    assert_int_equal(ts_ipset_parse("10.0.0.0/33", &set, &err), TS_EINVAL);
    assert_non_null(strstr(err.msg, "10.0.0.0/33"));
    assert_int_equal(ts_ipset_parse("example.org", &set, &err), TS_EINVAL);
    assert_int_equal(ts_ipset_parse("10.0.0.0/", &set, &err), TS_EINVAL);
    assert_int_equal(ts_ipset_parse("", &set, &err), TS_OK);
    assert_int_equal(set.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_combined_line_has_every_field_in_place),
        cmocka_unit_test(test_combined_line_dashes_what_is_missing),
        cmocka_unit_test(test_combined_line_escapes_quotes_backslashes_and_bytes),
        cmocka_unit_test(test_json_line_parses_back_to_the_same_fields),
        cmocka_unit_test(test_json_line_stays_valid_with_bytes_that_are_not_utf8),
        cmocka_unit_test(test_client_is_the_peer_unless_a_proxy_is_trusted),
        cmocka_unit_test(test_client_skips_trusted_proxies_from_the_right),
        cmocka_unit_test(test_client_forms_of_addresses_and_garbage),
        cmocka_unit_test(test_ipset_parses_networks_and_refuses_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
