/* The response/info cache: hits, replacement, byte bound, eviction order, threads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cache/lru.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static bool get_str(struct ts_lru *lru, const char *key, char *out, size_t size)
{
    struct ts_buf b = {0};
    bool hit = ts_lru_get(lru, key, &b);
    if (hit)
        snprintf(out, size, "%.*s", (int)b.len, (const char *)b.data);
    ts_buf_free(&b);
    return hit;
}

static void test_get_returns_what_was_put(void **state)
{
    (void)state;
    struct ts_lru *lru;
    assert_int_equal(ts_lru_create(1 << 20, 4, &lru), 0);
    char v[64];
    assert_false(get_str(lru, "a", v, sizeof v));
    ts_lru_put(lru, "a", "alpha", 5);
    ts_lru_put(lru, "b", "beta", 4);
    assert_true(get_str(lru, "a", v, sizeof v));
    assert_string_equal(v, "alpha");
    assert_true(get_str(lru, "b", v, sizeof v));
    assert_string_equal(v, "beta");
    struct ts_lru_stats st;
    ts_lru_stats(lru, &st);
    assert_int_equal(st.hits, 2);
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.entries, 2);
    ts_lru_destroy(lru);
}

static void test_put_replaces_older_value(void **state)
{
    (void)state;
    struct ts_lru *lru;
    assert_int_equal(ts_lru_create(1 << 20, 1, &lru), 0);
    ts_lru_put(lru, "k", "one", 3);
    ts_lru_put(lru, "k", "three", 5);
    char v[64];
    assert_true(get_str(lru, "k", v, sizeof v));
    assert_string_equal(v, "three");
    struct ts_lru_stats st;
    ts_lru_stats(lru, &st);
    assert_int_equal(st.entries, 1);
    ts_lru_remove(lru, "k");
    assert_false(get_str(lru, "k", v, sizeof v));
    ts_lru_destroy(lru);
}

static void test_bytes_stay_within_budget_and_oldest_goes_first(void **state)
{
    (void)state;
    struct ts_lru *lru;
    const size_t budget = 64 * 1024;
    assert_int_equal(ts_lru_create(budget, 1, &lru), 0);
    char value[1000];
    memset(value, 'x', sizeof value);
    char key[32];
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof key, "key%d", i);
        ts_lru_put(lru, key, value, sizeof value);
        /* Keep key0 hot: it must survive while its neighbours are evicted. */
        struct ts_buf b = {0};
        ts_lru_get(lru, "key0", &b);
        ts_buf_free(&b);
    }
    struct ts_lru_stats st;
    ts_lru_stats(lru, &st);
    assert_true(st.bytes <= budget);
    assert_true(st.entries > 10);
    assert_true(st.evictions > 0);
    char v[8];
    assert_false(get_str(lru, "key1", v, sizeof v));  /* cold and old: evicted */
    struct ts_buf b = {0};
    assert_true(ts_lru_get(lru, "key0", &b));          /* hot: kept */
    assert_int_equal(b.len, sizeof value);
    ts_buf_free(&b);
    assert_true(ts_lru_get(lru, "key499", &b));        /* newest: kept */
    ts_buf_free(&b);
    ts_lru_destroy(lru);
}

static void test_zero_budget_disables_cache(void **state)
{
    (void)state;
    struct ts_lru *lru;
    assert_int_equal(ts_lru_create(0, 4, &lru), 0);
    ts_lru_put(lru, "a", "alpha", 5);
    char v[16];
    assert_false(get_str(lru, "a", v, sizeof v));
    ts_lru_destroy(lru);
}

static void test_oversized_value_is_not_stored(void **state)
{
    (void)state;
    struct ts_lru *lru;
    assert_int_equal(ts_lru_create(4096, 1, &lru), 0);
    static char big[8192];
    ts_lru_put(lru, "small", "s", 1);
    ts_lru_put(lru, "big", big, sizeof big);
    char v[16];
    assert_false(get_str(lru, "big", v, sizeof v));
    assert_true(get_str(lru, "small", v, sizeof v));
    ts_lru_destroy(lru);
}

struct worker {
    struct ts_lru *lru;
    int id;
    int mismatches;
};

static void *hammer(void *arg)
{
    struct worker *w = arg;
    char key[32], val[64];
    for (int i = 0; i < 20000; i++) {
        int k = (i * 7 + w->id) % 300;
        snprintf(key, sizeof key, "k%d", k);
        snprintf(val, sizeof val, "value-of-%d", k);
        if (i % 3 == 0) {
            ts_lru_put(w->lru, key, val, strlen(val));
        } else {
            struct ts_buf b = {0};
            if (ts_lru_get(w->lru, key, &b) &&
                (b.len != strlen(val) || memcmp(b.data, val, b.len) != 0))
                w->mismatches++;
            ts_buf_free(&b);
        }
    }
    return NULL;
}

static void test_concurrent_use_never_returns_wrong_value(void **state)
{
    (void)state;
    struct ts_lru *lru;
    assert_int_equal(ts_lru_create(16 * 1024, 4, &lru), 0);
    pthread_t t[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){lru, i, 0};
        pthread_create(&t[i], NULL, hammer, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].mismatches, 0);
    }
    struct ts_lru_stats st;
    ts_lru_stats(lru, &st);
    assert_true(st.bytes <= 16 * 1024);
    assert_true(st.hits > 0);
    ts_lru_destroy(lru);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_returns_what_was_put),
        cmocka_unit_test(test_put_replaces_older_value),
        cmocka_unit_test(test_bytes_stay_within_budget_and_oldest_goes_first),
        cmocka_unit_test(test_zero_budget_disables_cache),
        cmocka_unit_test(test_oversized_value_is_not_stored),
        cmocka_unit_test(test_concurrent_use_never_returns_wrong_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
