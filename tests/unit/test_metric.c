/* Lock-free counters and histograms, the counters' registry of sources, and their text. */
/* cmocka needs these before it, in this order. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "core/metrics.h"
#include "util/metric.h"
#include "util/status.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *text_of(struct ts_buf *b)
{
    const char *s = ts_buf_str(b);
    assert_non_null(s);
    return s;
}

static void test_histogram_buckets_include_their_upper_bound(void **state)
{
    (void)state;
    struct ts_histogram h = {0};
    ts_histogram_observe(&h, 0.001);  /* exactly on a bound: that bucket (le is <=) */
    ts_histogram_observe(&h, 0.0011); /* just above: the next */
    ts_histogram_observe(&h, 60);     /* beyond the last bound: only +Inf */
    ts_histogram_observe(&h, -1);     /* a clock that stepped back counts as 0 */
    struct ts_buf out = {0};
    assert_int_equal(ts_histogram_write(&out, "t_seconds", "route=\"x\"", &h), TS_OK);
    const char *t = text_of(&out);
    assert_non_null(strstr(t, "t_seconds_bucket{route=\"x\",le=\"0.0005\"} 1\n"));
    assert_non_null(strstr(t, "t_seconds_bucket{route=\"x\",le=\"0.001\"} 2\n"));
    assert_non_null(strstr(t, "t_seconds_bucket{route=\"x\",le=\"0.0025\"} 3\n"));
    assert_non_null(strstr(t, "t_seconds_bucket{route=\"x\",le=\"10\"} 3\n"));
    assert_non_null(strstr(t, "t_seconds_bucket{route=\"x\",le=\"+Inf\"} 4\n"));
    assert_non_null(strstr(t, "t_seconds_sum{route=\"x\"} 60.002100000\n"));
    assert_non_null(strstr(t, "t_seconds_count{route=\"x\"} 4\n"));
    ts_buf_free(&out);
}

static void test_histogram_without_labels_has_no_empty_braces(void **state)
{
    (void)state;
    struct ts_histogram h = {0};
    ts_histogram_observe(&h, 0.2);
    struct ts_buf out = {0};
    assert_int_equal(ts_histogram_write(&out, "t_seconds", "", &h), TS_OK);
    const char *t = text_of(&out);
    assert_non_null(strstr(t, "t_seconds_bucket{le=\"0.25\"} 1\n"));
    assert_non_null(strstr(t, "\nt_seconds_sum 0.200000000\n"));
    assert_non_null(strstr(t, "\nt_seconds_count 1\n"));
    assert_null(strstr(t, "{}"));
    ts_buf_free(&out);
}

struct hammer {
    struct ts_metrics *m;
    struct ts_source_stats *src;
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    for (int i = 0; i < 10000; i++) {
        ts_metrics_request(h->m, TS_ROUTE_IIIF, 200, 0.002);
        ts_source_stats_record(h->src, 3, 0.01, i % 2 == 0);
    }
    return NULL;
}

static void test_counts_from_many_threads_add_up_exactly(void **state)
{
    (void)state;
    struct ts_metrics *m;
    assert_int_equal(ts_metrics_create(&m), TS_OK);
    struct hammer h = {m, ts_metrics_source(m, "s3")};
    assert_non_null(h.src);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer_main, &h), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&m->requests[TS_ROUTE_IIIF][200]), 40000);
    uint64_t in_buckets = 0;
    for (unsigned b = 0; b <= TS_HISTOGRAM_BOUNDS; b++)
        in_buckets += atomic_load(&m->latency[TS_ROUTE_IIIF].counts[b]);
    assert_int_equal(in_buckets, 40000);
    assert_int_equal(atomic_load(&h.src->requests), 40000);
    assert_int_equal(atomic_load(&h.src->errors), 20000);
    assert_int_equal(atomic_load(&h.src->bytes), 120000);
    ts_metrics_destroy(m);
}

static void test_sources_register_once_by_a_valid_name(void **state)
{
    (void)state;
    struct ts_metrics *m;
    assert_int_equal(ts_metrics_create(&m), TS_OK);
    struct ts_source_stats *s3 = ts_metrics_source(m, "s3");
    assert_non_null(s3);
    assert_ptr_equal(ts_metrics_source(m, "s3"), s3); /* the same counters, not a second set */
    /* Names go into a label as they are: nothing that would need escaping. */
    assert_null(ts_metrics_source(m, ""));
    assert_null(ts_metrics_source(m, "a\"b"));
    assert_null(ts_metrics_source(m, "S3"));
    assert_null(ts_metrics_source(m, "a-very-long-name-that-does-not-fit-32"));
    for (int i = 1; i < TS_METRICS_SOURCES; i++) {
        char name[16];
        snprintf(name, sizeof name, "http%d", i);
        assert_non_null(ts_metrics_source(m, name));
    }
    assert_null(ts_metrics_source(m, "one_too_many"));
    assert_int_equal(atomic_load(&m->nsources), TS_METRICS_SOURCES);
    ts_metrics_destroy(m);
}

static void test_statuses_outside_http_count_as_zero(void **state)
{
    (void)state;
    struct ts_metrics *m;
    assert_int_equal(ts_metrics_create(&m), TS_OK);
    ts_metrics_request(m, TS_ROUTE_WEB, 99, 0);
    ts_metrics_request(m, TS_ROUTE_WEB, 600, 0);
    ts_metrics_request(m, TS_ROUTE_WEB, 599, 0);
    ts_metrics_request(m, (enum ts_route)77, 200, 0); /* an unknown route: "other" */
    assert_int_equal(atomic_load(&m->requests[TS_ROUTE_WEB][0]), 2);
    assert_int_equal(atomic_load(&m->requests[TS_ROUTE_WEB][599]), 1);
    assert_int_equal(atomic_load(&m->requests[TS_ROUTE_OTHER][200]), 1);
    assert_string_equal(ts_route_name((enum ts_route)77), "other");
    ts_metrics_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_histogram_buckets_include_their_upper_bound),
        cmocka_unit_test(test_histogram_without_labels_has_no_empty_braces),
        cmocka_unit_test(test_counts_from_many_threads_add_up_exactly),
        cmocka_unit_test(test_sources_register_once_by_a_valid_name),
        cmocka_unit_test(test_statuses_outside_http_count_as_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
