/* The growable buffer: hard caps that refuse whole, growth that keeps data, C-string view. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "util/buf.h"
#include "util/status.h"

#include <string.h>

/* Asserts the buffer holds exactly `text` (no NUL counted). */
static void assert_contents(const struct ts_buf *b, const char *text)
{
    assert_int_equal(b->len, strlen(text));
    assert_memory_equal(b->data, text, b->len);
}

static void test_cap_exactly_reached_succeeds(void **state)
{
    (void)state;
    struct ts_buf b;
    ts_buf_init_capped(&b, 8);
    assert_int_equal(ts_buf_append(&b, "abcd", 4), TS_OK);
    assert_int_equal(ts_buf_append(&b, "efgh", 4), TS_OK);
    assert_contents(&b, "abcdefgh");
    assert_int_equal(ts_buf_append(&b, "", 0), TS_OK); /* nothing more is still allowed */
    assert_string_equal(ts_buf_str(&b), "abcdefgh");   /* the NUL does not count */
    assert_int_equal(b.len, 8);
    ts_buf_free(&b);
}

static void test_one_byte_over_cap_fails_and_leaves_contents_intact(void **state)
{
    (void)state;
    struct ts_buf b;
    ts_buf_init_capped(&b, 8);
    assert_int_equal(ts_buf_append(&b, "abcdef", 6), TS_OK);
    assert_non_null(ts_buf_str(&b));
    const uint8_t *data = b.data;
    size_t cap = b.cap;
    assert_int_equal(ts_buf_append(&b, "xyz", 3), TS_ETOOLONG);
    assert_contents(&b, "abcdef");
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.data[b.len], '\0'); /* a NUL put there before is still there */
    assert_int_equal(ts_buf_append_str(&b, "xyz"), TS_ETOOLONG);
    assert_int_equal(ts_buf_reserve(&b, 3), TS_ETOOLONG);
    assert_int_equal(ts_buf_reserve(&b, 2), TS_OK);
    assert_int_equal(ts_buf_append_str(&b, "gh"), TS_OK);
    assert_contents(&b, "abcdefgh");
    assert_int_equal(ts_buf_append(&b, "i", 1), TS_ETOOLONG);
    assert_contents(&b, "abcdefgh");
    ts_buf_free(&b);
}

static void test_reserve_that_overflows_size_fails_without_change(void **state)
{
    (void)state;
    struct ts_buf b;
    ts_buf_init_capped(&b, 16);
    assert_int_equal(ts_buf_append_str(&b, "abc"), TS_OK);
    assert_int_equal(ts_buf_reserve(&b, SIZE_MAX), TS_ETOOLONG);
    assert_contents(&b, "abc");
    ts_buf_free(&b);

    struct ts_buf u = {0};
    assert_int_equal(ts_buf_append_str(&u, "abc"), TS_OK);
    assert_int_equal(ts_buf_reserve(&u, SIZE_MAX), TS_ENOMEM); /* no cap: it is memory */
    assert_contents(&u, "abc");
    ts_buf_free(&u);
}

static void test_appendf_over_cap_fails_whole(void **state)
{
    (void)state;
    struct ts_buf b;
    ts_buf_init_capped(&b, 10);
    assert_int_equal(ts_buf_appendf(&b, "%s-%d", "key", 42), TS_OK);
    assert_contents(&b, "key-42");
    assert_int_equal(ts_buf_appendf(&b, "/%05d", 7), TS_ETOOLONG); /* 6 bytes, 4 left */
    assert_contents(&b, "key-42");
    assert_int_equal(ts_buf_appendf(&b, "/%d", 123), TS_OK); /* exactly 4: reaches the cap */
    assert_contents(&b, "key-42/123");
    assert_string_equal(ts_buf_str(&b), "key-42/123");
    assert_int_equal(ts_buf_appendf(&b, "%s", ""), TS_OK);
    assert_int_equal(ts_buf_appendf(&b, "%c", 'x'), TS_ETOOLONG);
    assert_contents(&b, "key-42/123");
    ts_buf_free(&b);
}

static void test_growth_keeps_data(void **state)
{
    (void)state;
    struct ts_buf b = {0};
    char expect[5000];
    for (size_t i = 0; i < sizeof expect; i++) {
        char c = (char)('a' + i % 26);
        expect[i] = c;
        assert_int_equal(ts_buf_append(&b, &c, 1), TS_OK);
    }
    assert_int_equal(b.len, sizeof expect);
    assert_true(b.cap >= b.len);
    assert_memory_equal(b.data, expect, sizeof expect);
    ts_buf_free(&b);
}

static void test_capped_growth_keeps_data_and_stops_at_cap(void **state)
{
    (void)state;
    struct ts_buf b;
    ts_buf_init_capped(&b, 1000);
    char expect[1000];
    for (size_t i = 0; i < sizeof expect; i++) {
        char c = (char)('A' + i % 26);
        expect[i] = c;
        assert_int_equal(ts_buf_append(&b, &c, 1), TS_OK);
    }
    assert_memory_equal(b.data, expect, sizeof expect);
    assert_true(b.cap <= 1001); /* no doubling far past what the buffer may ever hold */
    assert_int_equal(ts_buf_append(&b, "x", 1), TS_ETOOLONG);
    assert_int_equal(b.len, 1000);
    ts_buf_free(&b);
}

static void test_str_of_empty_buffer_is_empty_string(void **state)
{
    (void)state;
    struct ts_buf b = {0};
    const char *s = ts_buf_str(&b);
    assert_non_null(s);
    assert_string_equal(s, "");
    assert_int_equal(b.len, 0);
    ts_buf_free(&b);

    struct ts_buf c;
    ts_buf_init_capped(&c, 4);
    assert_string_equal(ts_buf_str(&c), "");
    assert_int_equal(c.len, 0);
    ts_buf_free(&c);
}

static void test_str_terminates_without_counting_the_nul(void **state)
{
    (void)state;
    struct ts_buf b = {0};
    assert_int_equal(ts_buf_append(&b, "hello", 5), TS_OK); /* append writes no NUL */
    assert_string_equal(ts_buf_str(&b), "hello");
    assert_int_equal(b.len, 5);
    assert_int_equal(ts_buf_append_str(&b, ", world"), TS_OK);
    assert_string_equal(ts_buf_str(&b), "hello, world");
    assert_int_equal(b.len, 12);
    ts_buf_free(&b);
}

static void test_no_cap_behaves_as_before(void **state)
{
    (void)state;
    struct ts_buf b = {0};
    assert_int_equal(b.max, 0);
    assert_int_equal(ts_buf_reserve(&b, 1 << 20), TS_OK);
    assert_true(b.cap >= 1 << 20);
    assert_int_equal(b.len, 0);
    assert_int_equal(ts_buf_appendf(&b, "%d %s", 7, "x"), TS_OK);
    assert_contents(&b, "7 x");
    assert_int_equal(b.data[b.len], '\0'); /* appendf leaves a NUL, as it always did */
    ts_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
}

static void test_free_keeps_the_cap_for_reuse(void **state)
{
    (void)state;
    struct ts_buf b;
    ts_buf_init_capped(&b, 3);
    assert_int_equal(ts_buf_append_str(&b, "abc"), TS_OK);
    ts_buf_free(&b);
    assert_int_equal(b.max, 3);
    assert_int_equal(ts_buf_append_str(&b, "abcd"), TS_ETOOLONG);
    assert_int_equal(b.len, 0);
    ts_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap_exactly_reached_succeeds),
        cmocka_unit_test(test_one_byte_over_cap_fails_and_leaves_contents_intact),
        cmocka_unit_test(test_reserve_that_overflows_size_fails_without_change),
        cmocka_unit_test(test_appendf_over_cap_fails_whole),
        cmocka_unit_test(test_growth_keeps_data),
        cmocka_unit_test(test_capped_growth_keeps_data_and_stops_at_cap),
        cmocka_unit_test(test_str_of_empty_buffer_is_empty_string),
        cmocka_unit_test(test_str_terminates_without_counting_the_nul),
        cmocka_unit_test(test_no_cap_behaves_as_before),
        cmocka_unit_test(test_free_keeps_the_cap_for_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
