/* Accept-style lists as RFC 9110 reads them: elements, q-values, and which media range of an
 * Accept value speaks for a type. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
// clang-format on

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "util/accept.h"

#include <string.h>

static void test_list_elements_names_and_q(void **state)
{
    (void)state;
    const char *v = " gzip;q=0.5 ,br,\tdeflate ; level=1 ; Q=0 , x;q=2";
    struct ts_list_elem e;
    const char *p = ts_list_next(v, &e);
    assert_non_null(p);
    assert_int_equal(e.name_len, 4);
    assert_memory_equal(e.name, "gzip", 4);
    assert_true(e.q == 0.5);
    p = ts_list_next(p, &e);
    assert_int_equal(e.name_len, 2);
    assert_memory_equal(e.name, "br", 2);
    assert_true(e.q == 1.0);
    p = ts_list_next(p, &e);
    assert_memory_equal(e.name, "deflate", 7);
    assert_true(e.q == 0.0); /* Q=0 after another parameter */
    p = ts_list_next(p, &e);
    assert_memory_equal(e.name, "x", 1);
    assert_true(e.q == 0.0); /* above 1 is malformed */
    assert_null(ts_list_next(p, &e));
    assert_null(ts_list_next(NULL, &e));
    assert_null(ts_list_next("", &e));
}

static void test_accept_q_takes_the_most_specific_range(void **state)
{
    (void)state;
    const char *v = "image/*;q=0.3, image/png;q=0.9, */*;q=0.1";
    assert_true(ts_accept_q(v, "image/png") == 0.9);
    assert_true(ts_accept_q(v, "image/webp") == 0.3);
    assert_true(ts_accept_q(v, "application/json") == 0.1);
    /* A more specific range decides even when it says less. */
    assert_true(ts_accept_q("*/*, image/png;q=0", "image/png") == 0.0);
    assert_true(ts_accept_q("IMAGE/PNG", "image/png") == 1.0);
    assert_true(ts_accept_q("text/html", "image/png") == -1.0);
    assert_true(ts_accept_q(NULL, "image/png") == -1.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_elements_names_and_q),
        cmocka_unit_test(test_accept_q_takes_the_most_specific_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
