/* Admission control: 413 over the per-request budget, a bounded heavy queue, 503 on overload. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "core/admission.h"

#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MB ((size_t)1 << 20)

static void test_light_requests_pass_even_when_heavy_slots_are_full(void **state)
{
    (void)state;
    struct admission a;
    struct ts_err err;
    bool heavy;
    admission_init(&a, 100 * MB, 100 * MB, 10 * MB, 1, 0, 50);
    assert_int_equal(admission_enter(&a, 50 * MB, &heavy, &err), TS_OK);
    assert_true(heavy);
    bool light_heavy;
    for (int i = 0; i < 100; i++) {
        assert_int_equal(admission_enter(&a, 1 * MB, &light_heavy, &err), TS_OK);
        assert_false(light_heavy);
        admission_leave(&a, 1 * MB, light_heavy);
    }
    admission_leave(&a, 50 * MB, heavy);
    admission_destroy(&a);
}

static void test_over_request_budget_is_413(void **state)
{
    (void)state;
    struct admission a;
    struct ts_err err;
    bool heavy;
    admission_init(&a, 100 * MB, 400 * MB, 10 * MB, 2, 2, 50);
    assert_int_equal(admission_enter(&a, 101 * MB, &heavy, &err), TS_ETOOLARGE);
    assert_int_equal(ts_status_http(TS_ETOOLARGE), 413);
    assert_non_null(strstr(err.msg, "100 MB"));
    admission_destroy(&a);
}

static void test_full_queue_is_503_at_once(void **state)
{
    (void)state;
    struct admission a;
    struct ts_err err;
    bool heavy;
    admission_init(&a, 100 * MB, 100 * MB, 10 * MB, 1, 0, 5000);
    assert_int_equal(admission_enter(&a, 20 * MB, &heavy, &err), TS_OK);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool h2;
    assert_int_equal(admission_enter(&a, 20 * MB, &h2, &err), TS_EBUSY);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* No queue room: refused without waiting out the 5 s. */
    assert_true(t1.tv_sec - t0.tv_sec < 2);
    assert_int_equal(ts_status_http(TS_EBUSY), 503);
    admission_leave(&a, 20 * MB, heavy);
    admission_destroy(&a);
}

static void test_queued_render_gives_up_after_the_wait(void **state)
{
    (void)state;
    struct admission a;
    struct ts_err err;
    bool heavy, h2;
    admission_init(&a, 100 * MB, 100 * MB, 10 * MB, 1, 4, 100);
    assert_int_equal(admission_enter(&a, 20 * MB, &heavy, &err), TS_OK);
    assert_int_equal(admission_enter(&a, 20 * MB, &h2, &err), TS_EBUSY);
    assert_int_equal(a.refused_busy, 1);
    admission_leave(&a, 20 * MB, heavy);
    admission_destroy(&a);
}

struct later {
    struct admission *a;
    size_t bytes;
};

static void *leave_later(void *arg)
{
    struct later *l = arg;
    usleep(100 * 1000);
    admission_leave(l->a, l->bytes, true);
    return NULL;
}

static void test_queued_render_runs_when_a_slot_frees(void **state)
{
    (void)state;
    struct admission a;
    struct ts_err err;
    bool heavy, h2;
    admission_init(&a, 100 * MB, 100 * MB, 10 * MB, 1, 4, 5000);
    assert_int_equal(admission_enter(&a, 20 * MB, &heavy, &err), TS_OK);
    struct later l = {&a, 20 * MB};
    pthread_t t;
    pthread_create(&t, NULL, leave_later, &l);
    assert_int_equal(admission_enter(&a, 20 * MB, &h2, &err), TS_OK);
    assert_true(h2);
    pthread_join(t, NULL);
    admission_leave(&a, 20 * MB, h2);
    assert_int_equal(a.running, 0);
    assert_int_equal(a.in_use, 0);
    admission_destroy(&a);
}

static void test_total_memory_bounds_concurrent_heavy_renders(void **state)
{
    (void)state;
    struct admission a;
    struct ts_err err;
    bool h1, h2, h3;
    admission_init(&a, 60 * MB, 100 * MB, 10 * MB, 8, 0, 10);
    assert_int_equal(admission_enter(&a, 50 * MB, &h1, &err), TS_OK);
    assert_int_equal(admission_enter(&a, 40 * MB, &h2, &err), TS_OK);
    assert_int_equal(admission_enter(&a, 20 * MB, &h3, &err), TS_EBUSY); /* 110 > 100 MB */
    admission_leave(&a, 40 * MB, h2);
    assert_int_equal(admission_enter(&a, 20 * MB, &h3, &err), TS_OK);
    admission_leave(&a, 20 * MB, h3);
    admission_leave(&a, 50 * MB, h1);
    admission_destroy(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_light_requests_pass_even_when_heavy_slots_are_full),
        cmocka_unit_test(test_over_request_budget_is_413),
        cmocka_unit_test(test_full_queue_is_503_at_once),
        cmocka_unit_test(test_queued_render_gives_up_after_the_wait),
        cmocka_unit_test(test_queued_render_runs_when_a_slot_frees),
        cmocka_unit_test(test_total_memory_bounds_concurrent_heavy_renders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
