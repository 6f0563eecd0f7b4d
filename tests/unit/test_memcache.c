/* The memcached second level: keys, the entry format (and what it refuses), and the client
 * against a real memcached and against none. */
#include "cache/memcache.h"
#include "harness.h"
#include "memcached.h"
#include "testutil.h"

#include <libmemcached/memcached.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

static const char body_bytes[] = "\xff\xd8\x00jpeg\r\n\0bytes\xff\xd9";

static struct ts_mc_entry sample(void)
{
    struct ts_mc_entry e = {.status = 200, .type = "image/jpeg", .nheaders = 2};
    e.headers[0].name = "Link";
    e.headers[0].value = "<https://example.org/iiif/3/a.tif>;rel=\"canonical\"";
    e.headers[1].name = "Content-Security-Policy";
    e.headers[1].value = "default-src 'none'";
    e.body = (const uint8_t *)body_bytes;
    e.body_len = sizeof body_bytes - 1;
    return e;
}

static void expect_valid_key(const char *key)
{
    assert_int_equal(strlen(key), TS_MC_KEY_SIZE - 1);
    assert_true(strlen(key) <= 250); /* memcached's own limit */
    assert_int_equal(strncmp(key, "tessera:1:", 10), 0);
    for (const char *p = key; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == ':'))
            fail_msg("key '%s' has '%c'", key, *p);
}

static void test_keys_are_short_safe_and_follow_the_text(void **state)
{
    (void)state;
    char a[TS_MC_KEY_SIZE], a2[TS_MC_KEY_SIZE], b[TS_MC_KEY_SIZE], c[TS_MC_KEY_SIZE];
    const char *text = "grid.tif\n1700000000.123456789:4096:0:00ff\niiif3 http://h/iiif/3/a b";
    ts_mc_key(text, strlen(text), a);
    ts_mc_key(text, strlen(text), a2);
    assert_string_equal(a, a2);
    expect_valid_key(a);
    /* One byte apart (the mtime's last digit): another key. */
    const char *other = "grid.tif\n1700000000.123456788:4096:0:00ff\niiif3 http://h/iiif/3/a b";
    ts_mc_key(other, strlen(other), b);
    assert_string_not_equal(a, b);
    /* A text far over 250 bytes, with spaces, controls and NULs, still makes a valid key. */
    size_t n = 100000;
    char *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i * 7);
    ts_mc_key(big, n, c);
    expect_valid_key(c);
    assert_string_not_equal(a, c);
    free(big);
}

static void test_entry_round_trips(void **state)
{
    (void)state;
    struct ts_mc_entry e = sample(), d;
    struct ts_buf bytes = {0};
    const char *key = "the key";
    assert_int_equal(ts_mc_entry_encode(&e, key, strlen(key), &bytes), TS_OK);
    assert_int_equal(ts_mc_entry_decode(bytes.data, bytes.len, key, strlen(key), &d), TS_OK);
    assert_int_equal(d.status, 200);
    assert_string_equal(d.type, "image/jpeg");
    assert_int_equal(d.nheaders, 2);
    for (unsigned i = 0; i < 2; i++) {
        assert_string_equal(d.headers[i].name, e.headers[i].name);
        assert_string_equal(d.headers[i].value, e.headers[i].value);
    }
    assert_int_equal(d.body_len, e.body_len);
    assert_memory_equal(d.body, e.body, e.body_len);
    ts_buf_free(&bytes);
}

static void test_entry_for_another_key_is_declined(void **state)
{
    (void)state;
    struct ts_mc_entry e = sample(), d;
    struct ts_buf bytes = {0};
    assert_int_equal(ts_mc_entry_encode(&e, "key one", 7, &bytes), TS_OK);
    /* What a hash collision would look like: well formed, but not ours. */
    assert_int_equal(ts_mc_entry_decode(bytes.data, bytes.len, "key two", 7, &d), TS_DECLINED);
    assert_int_equal(ts_mc_entry_decode(bytes.data, bytes.len, "key one!", 8, &d), TS_DECLINED);
    ts_buf_free(&bytes);
}

static void test_malformed_entries_are_rejected(void **state)
{
    (void)state;
    struct ts_mc_entry e = sample(), d;
    struct ts_buf bytes = {0};
    assert_int_equal(ts_mc_entry_encode(&e, "k", 1, &bytes), TS_OK);
    uint8_t *copy = malloc(bytes.len + 1);
    assert_non_null(copy);
    /* Every truncation, and one byte too many. */
    for (size_t n = 0; n < bytes.len; n++)
        if (ts_mc_entry_decode(bytes.data, n, "k", 1, &d) != TS_EINVAL)
            fail_msg("a %zu-byte prefix of a %zu-byte entry was accepted", n, bytes.len);
    memcpy(copy, bytes.data, bytes.len);
    copy[bytes.len] = 'x';
    assert_int_equal(ts_mc_entry_decode(copy, bytes.len + 1, "k", 1, &d), TS_EINVAL);
    /* Another magic, another format version. */
    memcpy(copy, bytes.data, bytes.len);
    copy[0] = 'X';
    assert_int_equal(ts_mc_entry_decode(copy, bytes.len, "k", 1, &d), TS_EINVAL);
    memcpy(copy, bytes.data, bytes.len);
    copy[4] = 2;
    assert_int_equal(ts_mc_entry_decode(copy, bytes.len, "k", 1, &d), TS_EINVAL);
    /* A body length past the end (little-endian at offset 12). */
    memcpy(copy, bytes.data, bytes.len);
    copy[15] = 0x7f;
    assert_int_equal(ts_mc_entry_decode(copy, bytes.len, "k", 1, &d), TS_EINVAL);
    /* A header count beyond what the strings hold. */
    memcpy(copy, bytes.data, bytes.len);
    copy[5] = 3;
    assert_int_equal(ts_mc_entry_decode(copy, bytes.len, "k", 1, &d), TS_EINVAL);
    /* A CR LF smuggled into a header value would split the HTTP answer. */
    memcpy(copy, bytes.data, bytes.len);
    uint8_t *at = NULL;
    for (size_t i = 0; !at && i + 11 <= bytes.len; i++)
        if (!memcmp(copy + i, "default-src", 11))
            at = copy + i;
    assert_non_null(at);
    at[0] = '\r';
    at[1] = '\n';
    assert_int_equal(ts_mc_entry_decode(copy, bytes.len, "k", 1, &d), TS_EINVAL);
    free(copy);
    ts_buf_free(&bytes);
    /* The encoder refuses what the decoder would: nothing unreadable is ever stored. */
    e.headers[1].value = "a\r\nSet-Cookie: x";
    struct ts_buf again = {0};
    assert_int_equal(ts_mc_entry_encode(&e, "k", 1, &again), TS_EINVAL);
    assert_int_equal(again.len, 0);
    ts_buf_free(&again);
}

static void test_entries_over_the_item_limit_are_not_encoded(void **state)
{
    (void)state;
    struct ts_mc_entry e = sample();
    uint8_t *big = calloc(1, TS_MC_ENTRY_MAX);
    assert_non_null(big);
    e.body = big;
    e.body_len = TS_MC_ENTRY_MAX;
    struct ts_buf bytes = {0};
    assert_int_equal(ts_mc_entry_encode(&e, "k", 1, &bytes), TS_ETOOLARGE);
    assert_int_equal(bytes.len, 0);
    /* Just under: the whole entry fits the limit exactly. */
    e.body_len = 1000;
    assert_int_equal(ts_mc_entry_encode(&e, "k", 1, &bytes), TS_OK);
    size_t overhead = bytes.len - 1000;
    bytes.len = 0;
    e.body_len = TS_MC_ENTRY_MAX - overhead;
    assert_int_equal(ts_mc_entry_encode(&e, "k", 1, &bytes), TS_OK);
    assert_int_equal(bytes.len, TS_MC_ENTRY_MAX);
    bytes.len = 0;
    e.body_len++;
    assert_int_equal(ts_mc_entry_encode(&e, "k", 1, &bytes), TS_ETOOLARGE);
    ts_buf_free(&bytes);
    free(big);
}

static int warnings;

static void count_warning(const char *fmt, ...)
{
    (void)fmt;
    warnings++;
}

static void test_no_memcached_is_a_bounded_miss_and_one_warning(void **state)
{
    (void)state;
    struct ts_memcache *mc;
    struct ts_err err = {0};
    int port = tu_free_port();
    char servers[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", port);
    warnings = 0;
    struct ts_memcache_options opt = {.servers = servers, .ttl = 60, .log = count_warning};
    assert_int_equal(ts_memcache_create(&opt, &mc, &err), TS_OK);
    struct ts_mc_entry e = sample(), d;
    struct ts_buf held = {0};
    double start = tu_now_ms();
    for (int i = 0; i < 50; i++) {
        assert_false(ts_memcache_get(mc, "k", 1, &held, &d));
        ts_memcache_set(mc, "k", 1, &e);
    }
    double took = tu_now_ms() - start;
    if (took > 2000)
        fail_msg("50 gets and sets against no memcached took %.0f ms", took);
    assert_int_equal(warnings, 1);
    struct ts_memcache_stats st;
    ts_memcache_stats(mc, &st);
    assert_int_equal(st.hits, 0);
    assert_int_equal(st.misses, 50);
    assert_int_equal(st.stores, 0);
    assert_true(st.errors >= 1);
    ts_buf_free(&held);
    ts_memcache_destroy(mc);
}

static void test_bad_server_lists_are_refused(void **state)
{
    (void)state;
    struct ts_memcache *mc = NULL;
    struct ts_err err = {0};
    struct ts_memcache_options opt = {.servers = ""};
    assert_int_equal(ts_memcache_create(&opt, &mc, &err), TS_EINVAL);
    assert_null(mc);
}

/* ---- against a real memcached ---- */

static void test_set_get_delete_and_a_malformed_entry(void **state)
{
    (void)state;
    if (!tu_memcached_binary())
        skip(); /* the memcached package is not installed (scripts/deps.sh --test) */
    struct tu_memcached m;
    assert_int_equal(tu_memcached_start(&m), 0);
    struct ts_memcache *mc;
    struct ts_err err = {0};
    warnings = 0;
    struct ts_memcache_options opt = {.servers = m.servers, .ttl = 60, .log = count_warning};
    assert_int_equal(ts_memcache_create(&opt, &mc, &err), TS_OK);

    const char *key = "grid.tif\n1.000000000:10:0:0\niiif3 x";
    struct ts_mc_entry e = sample(), d;
    struct ts_buf held = {0};
    assert_false(ts_memcache_get(mc, key, strlen(key), &held, &d));
    ts_memcache_set(mc, key, strlen(key), &e);
    assert_true(ts_memcache_get(mc, key, strlen(key), &held, &d));
    assert_string_equal(d.type, "image/jpeg");
    assert_int_equal(d.body_len, e.body_len);
    assert_memory_equal(d.body, e.body, e.body_len);
    assert_int_equal(tu_memcached_stat(&m, "get_hits"), 1);

    assert_true(ts_memcache_delete(mc, key, strlen(key)));
    assert_false(ts_memcache_get(mc, key, strlen(key), &held, &d));

    /* Garbage stored under our key by someone else: a miss, counted, never an answer. */
    char mkey[TS_MC_KEY_SIZE];
    ts_mc_key(key, strlen(key), mkey);
    memcached_st *raw = memcached_create(NULL);
    memcached_server_add(raw, "127.0.0.1", (in_port_t)m.port);
    assert_int_equal(memcached_set(raw, mkey, strlen(mkey), "TSMC\x01junk", 9, 0, 0),
                     MEMCACHED_SUCCESS);
    memcached_free(raw);
    assert_false(ts_memcache_get(mc, key, strlen(key), &held, &d));
    struct ts_memcache_stats st;
    ts_memcache_stats(mc, &st);
    assert_int_equal(st.malformed, 1);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.stores, 1);
    assert_int_equal(warnings, 0);

    /* Too big for memcached: skipped, counted, no warning, nothing stored. */
    uint8_t *big = calloc(1, TS_MC_ENTRY_MAX);
    assert_non_null(big);
    e.body = big;
    e.body_len = TS_MC_ENTRY_MAX;
    long long sets = tu_memcached_stat(&m, "cmd_set");
    ts_memcache_set(mc, "big", 3, &e);
    ts_memcache_stats(mc, &st);
    assert_int_equal(st.too_large, 1);
    assert_int_equal(tu_memcached_stat(&m, "cmd_set"), sets);
    assert_int_equal(warnings, 0);
    free(big);

    ts_buf_free(&held);
    ts_memcache_destroy(mc);
    tu_memcached_stop(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_are_short_safe_and_follow_the_text),
        cmocka_unit_test(test_entry_round_trips),
        cmocka_unit_test(test_entry_for_another_key_is_declined),
        cmocka_unit_test(test_malformed_entries_are_rejected),
        cmocka_unit_test(test_entries_over_the_item_limit_are_not_encoded),
        cmocka_unit_test(test_no_memcached_is_a_bounded_miss_and_one_warning),
        cmocka_unit_test(test_bad_server_lists_are_refused),
        cmocka_unit_test(test_set_get_delete_and_a_malformed_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
