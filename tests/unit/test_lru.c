/* The response/info cache: hits, replacement, byte bound, eviction order, held references,
 * threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "cache/lru.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    assert_false(get_str(lru, "key1", v, sizeof v)); /* cold and old: evicted */
    struct ts_buf b = {0};
    assert_true(ts_lru_get(lru, "key0", &b)); /* hot: kept */
    assert_int_equal(b.len, sizeof value);
    ts_buf_free(&b);
    assert_true(ts_lru_get(lru, "key499", &b)); /* newest: kept */
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

static void test_acquire_points_at_the_stored_bytes_without_copying(void **state)
{
    (void)state;
    struct ts_lru *lru;
    assert_int_equal(ts_lru_create(1 << 20, 4, &lru), 0);
    uint8_t *owned = malloc(6);
    assert_non_null(owned);
    memcpy(owned, "pixels", 6);
    ts_lru_put_owned(lru, "tile", owned, 6);
    const uint8_t *value = NULL;
    size_t len = 0;
    struct ts_lru_ref *ref = ts_lru_acquire(lru, "tile", &value, &len);
    assert_non_null(ref);
    assert_ptr_equal(value, owned);
    assert_int_equal(len, 6);
    assert_memory_equal(value, "pixels", 6);
    /* Two holders of one entry see the same bytes. */
    const uint8_t *again;
    size_t again_len;
    struct ts_lru_ref *ref2 = ts_lru_acquire(lru, "tile", &again, &again_len);
    assert_ptr_equal(ref2, ref);
    assert_ptr_equal(again, owned);
    ts_lru_release(ref);
    ts_lru_release(ref2);
    ts_lru_destroy(lru);
}

static void test_acquire_misses_on_unknown_key_and_when_cache_is_off(void **state)
{
    (void)state;
    struct ts_lru *lru;
    const uint8_t *value = NULL;
    size_t len = 99;
    assert_int_equal(ts_lru_create(1 << 20, 4, &lru), 0);
    assert_null(ts_lru_acquire(lru, "nothing", &value, &len));
    assert_null(value);
    assert_int_equal(len, 99); /* untouched on a miss */
    ts_lru_destroy(lru);

    assert_int_equal(ts_lru_create(0, 4, &lru), 0);
    ts_lru_put(lru, "a", "alpha", 5);
    assert_null(ts_lru_acquire(lru, "a", &value, &len));
    ts_lru_destroy(lru);
}

static void test_release_of_null_is_ignored(void **state)
{
    (void)state;
    ts_lru_release(NULL);
}

static void fill_pattern(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 131 + i * 7);
}

static void test_ref_survives_eviction_with_bytes_intact(void **state)
{
    (void)state;
    struct ts_lru *lru;
    assert_int_equal(ts_lru_create(16 * 1024, 1, &lru), 0);
    uint8_t value[1000], expect[1000];
    fill_pattern(expect, sizeof expect, 1);
    ts_lru_put(lru, "held", expect, sizeof expect);
    const uint8_t *got;
    size_t len;
    struct ts_lru_ref *ref = ts_lru_acquire(lru, "held", &got, &len);
    assert_non_null(ref);
    char key[32];
    for (unsigned i = 0; i < 100; i++) { /* many times the budget: "held" must go */
        snprintf(key, sizeof key, "other%u", i);
        fill_pattern(value, sizeof value, i + 2);
        ts_lru_put(lru, key, value, sizeof value);
    }
    const uint8_t *none;
    size_t none_len;
    assert_null(ts_lru_acquire(lru, "held", &none, &none_len));
    struct ts_lru_stats st;
    ts_lru_stats(lru, &st);
    assert_int_equal(st.inserts, 101);
    assert_int_equal(st.evictions, st.inserts - st.entries); /* "held" among them */
    assert_true(st.bytes <= 16 * 1024);
    assert_int_equal(len, sizeof expect);
    assert_memory_equal(got, expect, sizeof expect);
    ts_lru_release(ref);
    ts_lru_destroy(lru);
}

static void test_ref_survives_replacement_with_bytes_intact(void **state)
{
    (void)state;
    struct ts_lru *lru;
    assert_int_equal(ts_lru_create(1 << 20, 1, &lru), 0);
    ts_lru_put(lru, "k", "one", 3);
    const uint8_t *v1, *v2;
    size_t n1, n2;
    struct ts_lru_ref *r1 = ts_lru_acquire(lru, "k", &v1, &n1);
    ts_lru_put(lru, "k", "three", 5);
    struct ts_lru_ref *r2 = ts_lru_acquire(lru, "k", &v2, &n2);
    assert_non_null(r1);
    assert_non_null(r2);
    assert_ptr_not_equal(r1, r2);
    assert_int_equal(n1, 3);
    assert_memory_equal(v1, "one", 3);
    assert_int_equal(n2, 5);
    assert_memory_equal(v2, "three", 5);
    struct ts_lru_stats st;
    ts_lru_stats(lru, &st);
    assert_int_equal(st.entries, 1);
    /* Released newest first: the order does not matter. */
    ts_lru_release(r2);
    assert_memory_equal(v1, "one", 3);
    ts_lru_release(r1);
    ts_lru_destroy(lru);
}

static void test_ref_survives_remove(void **state)
{
    (void)state;
    struct ts_lru *lru;
    assert_int_equal(ts_lru_create(1 << 20, 2, &lru), 0);
    ts_lru_put(lru, "gone", "still here", 10);
    const uint8_t *v;
    size_t n;
    struct ts_lru_ref *ref = ts_lru_acquire(lru, "gone", &v, &n);
    ts_lru_remove(lru, "gone");
    const uint8_t *none;
    size_t none_len;
    assert_null(ts_lru_acquire(lru, "gone", &none, &none_len));
    assert_int_equal(n, 10);
    assert_memory_equal(v, "still here", 10);
    ts_lru_release(ref);
    ts_lru_destroy(lru);
}

static void test_release_after_destroy_is_safe(void **state)
{
    (void)state;
    /* Destroy drops only the cache's hold: held entries live on until their last release. */
    struct ts_lru *lru;
    assert_int_equal(ts_lru_create(1 << 20, 4, &lru), 0);
    ts_lru_put(lru, "a", "alpha", 5);
    ts_lru_put(lru, "b", "beta", 4);
    const uint8_t *va, *va2;
    size_t na, na2;
    struct ts_lru_ref *ra = ts_lru_acquire(lru, "a", &va, &na);
    struct ts_lru_ref *ra2 = ts_lru_acquire(lru, "a", &va2, &na2);
    assert_non_null(ra);
    assert_non_null(ra2);
    ts_lru_destroy(lru); /* "b" is freed here, "a" is not */
    assert_memory_equal(va, "alpha", 5);
    ts_lru_release(ra);
    assert_memory_equal(va2, "alpha", 5);
    ts_lru_release(ra2); /* the last holder frees it (ASan reports any leak or reuse) */
}

static size_t stats_bytes(struct ts_lru *lru)
{
    struct ts_lru_stats st;
    ts_lru_stats(lru, &st);
    return st.bytes;
}

static void test_bytes_drop_at_eviction_while_ref_held(void **state)
{
    (void)state;
    uint8_t value[1000];
    fill_pattern(value, sizeof value, 9);
    /* Measure what one entry (one-letter key, 1000-byte value) is charged. */
    struct ts_lru *probe;
    assert_int_equal(ts_lru_create(1 << 20, 1, &probe), 0);
    ts_lru_put(probe, "x", value, sizeof value);
    size_t charge = stats_bytes(probe);
    ts_lru_destroy(probe);
    assert_true(charge > sizeof value);

    /* Room for two entries, not three. */
    struct ts_lru *lru;
    assert_int_equal(ts_lru_create(2 * charge + charge / 2, 1, &lru), 0);
    ts_lru_put(lru, "b", value, sizeof value);
    const uint8_t *v;
    size_t n;
    struct ts_lru_ref *ref = ts_lru_acquire(lru, "b", &v, &n);
    ts_lru_put(lru, "c", value, sizeof value); /* now "b" is the least recent */
    assert_int_equal(stats_bytes(lru), 2 * charge);
    ts_lru_put(lru, "d", value, sizeof value); /* evicts "b", though it is held */
    struct ts_lru_stats st;
    ts_lru_stats(lru, &st);
    assert_int_equal(st.evictions, 1);
    assert_int_equal(st.entries, 2);
    assert_int_equal(st.bytes, 2 * charge); /* "c" and "d" only */
    assert_memory_equal(v, value, sizeof value);

    /* Remove with a reference held frees the budget at once too. */
    const uint8_t *vd;
    size_t nd;
    struct ts_lru_ref *rd = ts_lru_acquire(lru, "d", &vd, &nd);
    ts_lru_remove(lru, "d");
    assert_int_equal(stats_bytes(lru), charge);
    ts_lru_release(rd);
    assert_int_equal(stats_bytes(lru), charge);
    ts_lru_release(ref);
    ts_lru_destroy(lru);
}

static void test_stats_count_acquires_as_hits_and_misses(void **state)
{
    (void)state;
    struct ts_lru *lru;
    assert_int_equal(ts_lru_create(1 << 20, 4, &lru), 0);
    ts_lru_put(lru, "a", "alpha", 5);
    const uint8_t *v;
    size_t n;
    struct ts_lru_ref *r1 = ts_lru_acquire(lru, "a", &v, &n);
    struct ts_lru_ref *r2 = ts_lru_acquire(lru, "a", &v, &n);
    assert_null(ts_lru_acquire(lru, "zzz", &v, &n));
    struct ts_buf b = {0};
    assert_true(ts_lru_get(lru, "a", &b)); /* get counts on the same entries */
    ts_buf_free(&b);
    assert_false(ts_lru_get(lru, "zzz", &b));
    struct ts_lru_stats st;
    ts_lru_stats(lru, &st);
    assert_int_equal(st.hits, 3);
    assert_int_equal(st.misses, 2);
    ts_lru_release(r1);
    ts_lru_release(r2);
    ts_lru_destroy(lru);
}

static void test_get_into_a_full_capped_buffer_returns_false(void **state)
{
    (void)state;
    struct ts_lru *lru;
    assert_int_equal(ts_lru_create(1 << 20, 1, &lru), 0);
    ts_lru_put(lru, "k", "0123456789", 10);
    struct ts_buf b;
    ts_buf_init_capped(&b, 8);
    assert_false(ts_lru_get(lru, "k", &b));
    assert_int_equal(b.len, 0);
    ts_buf_free(&b);
    ts_lru_destroy(lru);
}

/* Threads: each value is a pure function of (key, version), so a holder can check at release
 * time that the bytes it was handed never changed, whatever was evicted or replaced. */
#define REF_KEYS 500
#define REF_HELD 8

static size_t ref_value(unsigned k, unsigned version, uint8_t *out)
{
    int n = snprintf((char *)out, 32, "k%u v%u ", k, version);
    size_t len = 32 + (k * 13 + version) % 200;
    for (size_t i = (size_t)n; i < len; i++)
        out[i] = (uint8_t)(k * 31 + version * 7 + i);
    return len;
}

static bool ref_value_ok(unsigned k, const uint8_t *v, size_t len)
{
    char head[32];
    size_t hl = len < sizeof head - 1 ? len : sizeof head - 1;
    memcpy(head, v, hl);
    head[hl] = '\0';
    unsigned got_k, version;
    if (sscanf(head, "k%u v%u ", &got_k, &version) != 2 || got_k != k)
        return false;
    uint8_t expect[256];
    size_t want = ref_value(k, version, expect);
    return want == len && memcmp(v, expect, len) == 0;
}

struct held {
    struct ts_lru_ref *ref;
    const uint8_t *value;
    size_t len;
    unsigned key;
};

/* A slot the threads swap references through, so some are released by another thread. */
static pthread_mutex_t swap_lock = PTHREAD_MUTEX_INITIALIZER;
static struct held swap_slot;

struct ref_worker {
    struct ts_lru *lru;
    unsigned id;
    double seconds;
    unsigned long ops, bad;
};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void drop_held(struct ref_worker *w, struct held *h)
{
    if (!h->ref)
        return;
    if (!ref_value_ok(h->key, h->value, h->len))
        w->bad++;
    ts_lru_release(h->ref);
    h->ref = NULL;
}

static void *ref_hammer(void *arg)
{
    struct ref_worker *w = arg;
    struct held held[REF_HELD] = {{0}};
    uint8_t value[256];
    char key[32];
    unsigned rng = 2463534242u + w->id * 7919u;
    double end = now_seconds() + w->seconds;
    /* At least 1,000 operations however long they take: on a loaded machine a thread may get
     * little of its half second, and a few operations would prove nothing. */
    while (now_seconds() < end || w->ops < 1000) {
        for (int burst = 0; burst < 64; burst++, w->ops++) {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            unsigned k = rng % REF_KEYS, op = (rng >> 16) % 8;
            snprintf(key, sizeof key, "key%u", k);
            if (op < 3) {
                size_t len = ref_value(k, (unsigned)w->ops + w->id, value);
                ts_lru_put(w->lru, key, value, len);
            } else if (op == 3) {
                ts_lru_remove(w->lru, key);
            } else {
                struct held h = {.key = k};
                h.ref = ts_lru_acquire(w->lru, key, &h.value, &h.len);
                if (!h.ref)
                    continue;
                if (!ref_value_ok(k, h.value, h.len))
                    w->bad++;
                if (op == 4) {
                    ts_lru_release(h.ref); /* at once */
                } else if (op == 5) {
                    pthread_mutex_lock(&swap_lock); /* hand it over, release another's */
                    struct held other = swap_slot;
                    swap_slot = h;
                    pthread_mutex_unlock(&swap_lock);
                    drop_held(w, &other);
                } else {
                    struct held *slot = &held[(rng >> 8) % REF_HELD]; /* keep it a while */
                    drop_held(w, slot);
                    *slot = h;
                }
            }
        }
    }
    for (int i = 0; i < REF_HELD; i++)
        drop_held(w, &held[i]);
    return NULL;
}

static void test_threads_acquire_release_and_put_concurrently(void **state)
{
    (void)state;
    struct ts_lru *lru;
    assert_int_equal(ts_lru_create(64 * 1024, 4, &lru), 0);
    pthread_t t[4];
    struct ref_worker w[4];
    for (unsigned i = 0; i < 4; i++) {
        w[i] = (struct ref_worker){.lru = lru, .id = i, .seconds = 0.5};
        assert_int_equal(pthread_create(&t[i], NULL, ref_hammer, &w[i]), 0);
    }
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].bad, 0);
    }
    struct ts_lru_stats st;
    ts_lru_stats(lru, &st);
    assert_true(st.bytes <= 64 * 1024);
    assert_true(st.hits > 0);
    assert_true(st.evictions > 0);
    /* The last reference in the swap slot outlives the cache. */
    ts_lru_destroy(lru);
    struct ref_worker last = {0};
    drop_held(&last, &swap_slot);
    assert_int_equal(last.bad, 0);
}

static bool key_starts_with_x(void *ctx, const char *key, const uint8_t *value, size_t len)
{
    int *calls = ctx;
    (*calls)++;
    (void)value;
    (void)len;
    return key[0] == 'x';
}

static void test_remove_if_forgets_exactly_the_entries_picked(void **state)
{
    (void)state;
    struct ts_lru *lru;
    assert_int_equal(ts_lru_create(1 << 20, 4, &lru), 0);
    const char *keys[] = {"x1", "a1", "x2", "b2", "x3"};
    for (size_t i = 0; i < 5; i++)
        ts_lru_put(lru, keys[i], keys[i], 2);
    const uint8_t *held;
    size_t held_len;
    struct ts_lru_ref *ref = ts_lru_acquire(lru, "x2", &held, &held_len);
    assert_non_null(ref);
    int calls = 0;
    assert_int_equal(ts_lru_remove_if(lru, key_starts_with_x, &calls), 3);
    assert_int_equal(calls, 5); /* every entry was looked at, in every shard */
    char v[16];
    assert_false(get_str(lru, "x1", v, sizeof v));
    assert_false(get_str(lru, "x2", v, sizeof v));
    assert_false(get_str(lru, "x3", v, sizeof v));
    assert_true(get_str(lru, "a1", v, sizeof v));
    assert_true(get_str(lru, "b2", v, sizeof v));
    /* A reference taken before the purge still reads its bytes. */
    assert_memory_equal(held, "x2", 2);
    ts_lru_release(ref);
    struct ts_lru_stats st;
    ts_lru_stats(lru, &st);
    assert_int_equal(st.entries, 2);
    calls = 0;
    assert_int_equal(ts_lru_remove_if(lru, key_starts_with_x, &calls), 0);
    assert_int_equal(calls, 2);
    ts_lru_destroy(lru);
}

static void test_resize_evicts_down_to_the_new_bound_and_zero_turns_off(void **state)
{
    (void)state;
    struct ts_lru *lru;
    assert_int_equal(ts_lru_create(64 * 1024, 1, &lru), 0);
    assert_int_equal(ts_lru_budget(lru), 64 * 1024);
    static uint8_t value[1000];
    char key[16];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "k%d", i);
        ts_lru_put(lru, key, value, sizeof value);
    }
    struct ts_lru_stats st;
    ts_lru_stats(lru, &st);
    assert_int_equal(st.entries, 40);
    ts_lru_resize(lru, 8 * 1024);
    assert_int_equal(ts_lru_budget(lru), 8 * 1024);
    ts_lru_stats(lru, &st);
    assert_true(st.bytes <= 8 * 1024);
    assert_true(st.entries >= 5 && st.entries < 8);
    /* The most recent stayed, the oldest went. */
    char v[8];
    struct ts_buf b = {0};
    assert_true(ts_lru_get(lru, "k39", &b));
    ts_buf_free(&b);
    assert_false(get_str(lru, "k0", v, sizeof v));
    /* Growing again takes new entries up to the new bound. */
    ts_lru_resize(lru, 64 * 1024);
    for (int i = 40; i < 80; i++) {
        snprintf(key, sizeof key, "k%d", i);
        ts_lru_put(lru, key, value, sizeof value);
    }
    ts_lru_stats(lru, &st);
    assert_true(st.entries > 40);
    ts_lru_resize(lru, 0);
    ts_lru_stats(lru, &st);
    assert_int_equal(st.entries, 0);
    ts_lru_put(lru, "late", "v", 1);
    assert_false(get_str(lru, "late", v, sizeof v));
    ts_lru_destroy(lru);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_returns_what_was_put),
        cmocka_unit_test(test_remove_if_forgets_exactly_the_entries_picked),
        cmocka_unit_test(test_resize_evicts_down_to_the_new_bound_and_zero_turns_off),
        cmocka_unit_test(test_put_replaces_older_value),
        cmocka_unit_test(test_bytes_stay_within_budget_and_oldest_goes_first),
        cmocka_unit_test(test_zero_budget_disables_cache),
        cmocka_unit_test(test_oversized_value_is_not_stored),
        cmocka_unit_test(test_concurrent_use_never_returns_wrong_value),
        cmocka_unit_test(test_acquire_points_at_the_stored_bytes_without_copying),
        cmocka_unit_test(test_acquire_misses_on_unknown_key_and_when_cache_is_off),
        cmocka_unit_test(test_release_of_null_is_ignored),
        cmocka_unit_test(test_ref_survives_eviction_with_bytes_intact),
        cmocka_unit_test(test_ref_survives_replacement_with_bytes_intact),
        cmocka_unit_test(test_ref_survives_remove),
        cmocka_unit_test(test_release_after_destroy_is_safe),
        cmocka_unit_test(test_bytes_drop_at_eviction_while_ref_held),
        cmocka_unit_test(test_stats_count_acquires_as_hits_and_misses),
        cmocka_unit_test(test_get_into_a_full_capped_buffer_returns_false),
        cmocka_unit_test(test_threads_acquire_release_and_put_concurrently),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
