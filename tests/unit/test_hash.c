/* FNV-1a: published vectors, the seed, and chaining. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "util/hash.h"

#include <string.h>

static uint64_t hash_str(const char *s)
{
    return ts_hash(TS_HASH_SEED, s, strlen(s));
}

static void test_empty_input_gives_the_seed(void **state)
{
    (void)state;
    assert_int_equal(hash_str(""), 0xcbf29ce484222325ull);
    assert_int_equal(ts_hash(TS_HASH_SEED, NULL, 0), TS_HASH_SEED);
    assert_int_equal(ts_hash(42, "", 0), 42);
}

static void test_known_fnv1a_64_vectors(void **state)
{
    (void)state;
    assert_int_equal(hash_str("a"), 0xaf63dc4c8601ec8cull);
    assert_int_equal(hash_str("b"), 0xaf63df4c8601f1a5ull);
    assert_int_equal(hash_str("foobar"), 0x85944171f73967e8ull);
}

static void test_chaining_equals_hashing_the_concatenation(void **state)
{
    (void)state;
    const char *whole = "iiif/3/image.tif/full/max/0/default.jpg";
    uint64_t once = hash_str(whole);
    for (size_t cut = 0; cut <= strlen(whole); cut++) {
        uint64_t h = ts_hash(TS_HASH_SEED, whole, cut);
        h = ts_hash(h, whole + cut, strlen(whole) - cut);
        assert_int_equal(h, once);
    }
}

static void test_every_byte_value_counts(void **state)
{
    (void)state;
    /* High bytes must not be sign-extended, and NUL bytes inside the data still count. */
    const uint8_t hi[] = {0xff}, lo[] = {0x7f}, nul2[] = {0, 0};
    assert_int_not_equal(ts_hash(TS_HASH_SEED, hi, 1), ts_hash(TS_HASH_SEED, lo, 1));
    assert_int_equal(ts_hash(TS_HASH_SEED, hi, 1),
                     (0xcbf29ce484222325ull ^ 0xff) * 0x100000001b3ull);
    assert_int_not_equal(ts_hash(TS_HASH_SEED, nul2, 1), ts_hash(TS_HASH_SEED, nul2, 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_input_gives_the_seed),
        cmocka_unit_test(test_known_fnv1a_64_vectors),
        cmocka_unit_test(test_chaining_equals_hashing_the_concatenation),
        cmocka_unit_test(test_every_byte_value_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
