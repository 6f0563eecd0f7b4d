/* Percent-decoding and -encoding of URL parts: what decodes, what is refused, what fits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "util/url.h"

#include <string.h>

static int decode(const char *in, char *out, size_t size, unsigned flags)
{
    struct ts_err err = {0};
    return url_decode(in, strlen(in), out, size, flags, &err);
}

static void test_decode_plain_text_is_unchanged(void **state)
{
    (void)state;
    char out[32];
    assert_int_equal(decode("abc-._~123", out, sizeof out, 0), TS_OK);
    assert_string_equal(out, "abc-._~123");
    assert_int_equal(decode("", out, sizeof out, 0), TS_OK);
    assert_string_equal(out, "");
}

static void test_decode_escapes_in_either_case(void **state)
{
    (void)state;
    char out[32];
    assert_int_equal(decode("a%20b%2c%2C%7e", out, sizeof out, 0), TS_OK);
    assert_string_equal(out, "a b,,~");
    assert_int_equal(decode("%C3%A9", out, sizeof out, 0), TS_OK); /* bytes, not characters */
    assert_string_equal(out, "\xc3\xa9");
}

static void test_decode_turns_escaped_slash_into_a_slash_byte(void **state)
{
    (void)state;
    /* url_decode has no flag to keep %2F: it is a '/' byte in the output, and the caller
     * (which split the path on raw '/' first) decides what that byte means. */
    char out[32];
    assert_int_equal(decode("a%2Fb%2fc", out, sizeof out, URL_NO_CONTROLS), TS_OK);
    assert_string_equal(out, "a/b/c");
    assert_int_equal(decode("%252F", out, sizeof out, 0), TS_OK); /* decoded once only */
    assert_string_equal(out, "%2F");
}

static void test_decode_keeps_plus(void **state)
{
    (void)state;
    char out[32];
    assert_int_equal(decode("a+b", out, sizeof out, 0), TS_OK);
    assert_string_equal(out, "a+b");
}

static void test_decode_rejects_malformed_escapes(void **state)
{
    (void)state;
    static const char *const bad[] = {"%",   "%2",   "a%2",  "%zz", "%2g",
                                      "%g2", "%%41", "% 41", "abc%"};
    char out[32];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct ts_err err = {0};
        int rc = url_decode(bad[i], strlen(bad[i]), out, sizeof out, 0, &err);
        if (rc != TS_EINVAL)
            fail_msg("\"%s\" decoded with %d, expected TS_EINVAL (%d)", bad[i], rc, TS_EINVAL);
        assert_string_equal(err.msg, "malformed percent escape in URL");
    }
}

static void test_decode_reads_only_len_bytes(void **state)
{
    (void)state;
    char out[32];
    struct ts_err err = {0};
    assert_int_equal(url_decode("abcdef", 3, out, sizeof out, 0, &err), TS_OK);
    assert_string_equal(out, "abc");
    /* An escape cut by len is malformed even though the text goes on. */
    assert_int_equal(url_decode("a%2Fb", 3, out, sizeof out, 0, &err), TS_EINVAL);
}

static void test_decode_rejects_encoded_nul(void **state)
{
    (void)state;
    char out[32];
    struct ts_err err = {0};
    assert_int_equal(url_decode("a%00b", 5, out, sizeof out, 0, &err), TS_EINVAL);
    assert_string_equal(err.msg, "encoded NUL in URL");
}

static void test_decode_refuses_controls_only_when_asked(void **state)
{
    (void)state;
    static const char *const controls[] = {"%0A", "%0d", "%1F", "%7F", "a\tb", "\x01"};
    char out[32];
    for (size_t i = 0; i < sizeof controls / sizeof *controls; i++) {
        int rc = decode(controls[i], out, sizeof out, URL_NO_CONTROLS);
        if (rc != TS_EINVAL)
            fail_msg("\"%s\" with URL_NO_CONTROLS gave %d, expected %d", controls[i], rc,
                     TS_EINVAL);
        assert_int_equal(decode(controls[i], out, sizeof out, 0), TS_OK);
    }
    assert_int_equal(decode("%0A", out, sizeof out, 0), TS_OK);
    assert_string_equal(out, "\n");
    assert_int_equal(decode("%20%7E%80", out, sizeof out, URL_NO_CONTROLS), TS_OK);
    assert_string_equal(out, " ~\x80");
}

static void test_decode_output_that_does_not_fit_is_refused(void **state)
{
    (void)state;
    char out[8];
    struct ts_err err = {0};
    assert_int_equal(decode("abc", out, 4, 0), TS_OK); /* three bytes and the NUL: fits */
    assert_string_equal(out, "abc");
    assert_int_equal(url_decode("abcd", 4, out, 4, 0, &err), TS_EINVAL);
    assert_string_equal(err.msg, "URL part too long");
    assert_int_equal(decode("%41%42%43", out, 4, 0), TS_OK); /* counts output, not input */
    assert_string_equal(out, "ABC");
    assert_int_equal(decode("%41%42%43%44", out, 4, 0), TS_EINVAL);
    assert_int_equal(decode("", out, 1, 0), TS_OK);
    assert_string_equal(out, "");
    assert_int_equal(decode("", out, 0, 0), TS_EINVAL);
}

static void test_decode_accepts_null_err(void **state)
{
    (void)state;
    char out[8];
    assert_int_equal(url_decode("%zz", 3, out, sizeof out, 0, NULL), TS_EINVAL);
}

static void test_encode_escapes_all_but_unreserved(void **state)
{
    (void)state;
    char out[64];
    url_encode("aZ09-._~ !/?#%+\xc3\xa9", false, out, sizeof out);
    assert_string_equal(out, "aZ09-._~%20%21%2F%3F%23%25%2B%C3%A9");
}

static void test_encode_keeps_slash_only_when_asked(void **state)
{
    (void)state;
    char out[64];
    url_encode("a/b c", false, out, sizeof out);
    assert_string_equal(out, "a%2Fb%20c");
    url_encode("a/b c", true, out, sizeof out);
    assert_string_equal(out, "a/b%20c");
}

static void test_encode_then_decode_round_trips(void **state)
{
    (void)state;
    char all[256], enc[3 * 256 + 1], dec[256];
    for (int i = 1; i < 256; i++) /* every byte but NUL */
        all[i - 1] = (char)i;
    all[255] = '\0';
    for (int keep = 0; keep < 2; keep++) {
        url_encode(all, keep, enc, sizeof enc);
        assert_int_equal(decode(enc, dec, sizeof dec, 0), TS_OK);
        assert_string_equal(dec, all);
    }
    static const char *const ids[] = {"", "plain", "with space/and slash", "100%", "a+b=c&d"};
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        url_encode(ids[i], false, enc, sizeof enc);
        assert_null(strchr(enc, '/'));
        assert_int_equal(decode(enc, dec, sizeof dec, URL_NO_CONTROLS), TS_OK);
        assert_string_equal(dec, ids[i]);
    }
}

static void test_encode_fills_an_exactly_sized_buffer(void **state)
{
    (void)state;
    char out[16];
    url_encode("abc", false, out, 4);
    assert_string_equal(out, "abc");
    url_encode("a b", false, out, 6); /* "a%20b" and the NUL */
    assert_string_equal(out, "a%20b");
}

static void test_encode_truncates_whole_characters_only(void **state)
{
    (void)state;
    char out[16];
    memset(out, 'X', sizeof out);
    url_encode("abcdef", false, out, 4);
    assert_string_equal(out, "abc");
    url_encode("a b", false, out, 4); /* "%20" does not fit after "a": no half escape */
    assert_string_equal(out, "a");
    url_encode(" ", false, out, 3);
    assert_string_equal(out, "");
    memset(out, 'X', sizeof out);
    url_encode("abc", false, out, 1);
    assert_string_equal(out, "");
    url_encode("abc", false, out, 0); /* nothing may be written at all */
    assert_int_equal(out[0], '\0');
    assert_int_equal(out[1], 'X');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_plain_text_is_unchanged),
        cmocka_unit_test(test_decode_escapes_in_either_case),
        cmocka_unit_test(test_decode_turns_escaped_slash_into_a_slash_byte),
        cmocka_unit_test(test_decode_keeps_plus),
        cmocka_unit_test(test_decode_rejects_malformed_escapes),
        cmocka_unit_test(test_decode_reads_only_len_bytes),
        cmocka_unit_test(test_decode_rejects_encoded_nul),
        cmocka_unit_test(test_decode_refuses_controls_only_when_asked),
        cmocka_unit_test(test_decode_output_that_does_not_fit_is_refused),
        cmocka_unit_test(test_decode_accepts_null_err),
        cmocka_unit_test(test_encode_escapes_all_but_unreserved),
        cmocka_unit_test(test_encode_keeps_slash_only_when_asked),
        cmocka_unit_test(test_encode_then_decode_round_trips),
        cmocka_unit_test(test_encode_fills_an_exactly_sized_buffer),
        cmocka_unit_test(test_encode_truncates_whole_characters_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
