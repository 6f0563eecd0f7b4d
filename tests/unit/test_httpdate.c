/* HTTP-dates: the three forms recipients must accept, the RFC 850 century, conditional GETs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "util/httpdate.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define SUN_06_NOV_1994 784111777 /* Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example */
#define JUNE_2025 1748736000      /* 2025-06-01 00:00:00 GMT */
#define JUNE_2090 3799958400      /* 2090-06-01 00:00:00 GMT */

static void test_imf_fixdate_parses(void **state)
{
    (void)state;
    assert_int_equal(ts_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT"), SUN_06_NOV_1994);
}

static void test_rfc850_date_parses_to_the_same_time(void **state)
{
    (void)state;
    /* On the real clock: 94 means 1994 until 2044, when 2094 is no longer 50 years away. */
    assert_int_equal(ts_http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT"), SUN_06_NOV_1994);
}

static void test_asctime_date_parses_to_the_same_time(void **state)
{
    (void)state;
    assert_int_equal(ts_http_date_parse("Sun Nov  6 08:49:37 1994"), SUN_06_NOV_1994);
    /* a two-digit day needs no padding */
    assert_int_equal(ts_http_date_parse("Wed Nov 16 08:49:37 1994"), SUN_06_NOV_1994 + 10 * 86400);
}

static void test_surrounding_whitespace_is_ignored(void **state)
{
    (void)state;
    assert_int_equal(ts_http_date_parse("  Sun, 06 Nov 1994 08:49:37 GMT \t"), SUN_06_NOV_1994);
    assert_int_equal(ts_http_date_parse("\tSun Nov  6 08:49:37 1994 "), SUN_06_NOV_1994);
}

static void test_rfc850_year_within_50_years_ahead_is_this_century(void **state)
{
    (void)state;
    /* From mid-2025: 75 is 2075 (50 years ahead), 25 is 2025, and 94 would be 2094, more than
     * 50 years ahead, so it is 1994. */
    assert_int_equal(ts_http_date_parse_at("Wednesday, 06-Nov-75 00:00:00 GMT", JUNE_2025),
                     3340224000);
    assert_int_equal(ts_http_date_parse_at("Thursday, 06-Nov-25 00:00:00 GMT", JUNE_2025),
                     1762387200);
    assert_int_equal(ts_http_date_parse_at("Sunday, 06-Nov-94 08:49:37 GMT", JUNE_2025),
                     SUN_06_NOV_1994);
}

static void test_rfc850_year_more_than_50_years_ahead_is_last_century(void **state)
{
    (void)state;
    assert_int_equal(ts_http_date_parse_at("Saturday, 06-Nov-76 00:00:00 GMT", JUNE_2025),
                     216086400); /* 1976, not 2076 */
    /* The weekday is checked against the year the window picked: 06-Nov-2075 is a Wednesday. */
    assert_int_equal(ts_http_date_parse_at("Saturday, 06-Nov-75 00:00:00 GMT", JUNE_2025), -1);
}

static void test_rfc850_window_moves_with_the_clock(void **state)
{
    (void)state;
    /* From mid-2090: 05 is 2105 and 40 is 2140 (not more than 50 years ahead); 41 is 2041. */
    assert_int_equal(ts_http_date_parse_at("Friday, 06-Nov-05 00:00:00 GMT", JUNE_2090),
                     4286908800);
    assert_int_equal(ts_http_date_parse_at("Sunday, 06-Nov-40 00:00:00 GMT", JUNE_2090),
                     5391446400);
    assert_int_equal(ts_http_date_parse_at("Wednesday, 06-Nov-41 00:00:00 GMT", JUNE_2090),
                     2267308800);
}

static void test_http_date_formats_imf_fixdate(void **state)
{
    (void)state;
    char out[64];
    ts_http_date(SUN_06_NOV_1994, out, sizeof out);
    assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    ts_http_date(0, out, sizeof out);
    assert_string_equal(out, "Thu, 01 Jan 1970 00:00:00 GMT");
    ts_http_date(951782400, out, sizeof out); /* a leap day of a century year */
    assert_string_equal(out, "Tue, 29 Feb 2000 00:00:00 GMT");
    ts_http_date(253402300799, out, sizeof out);
    assert_string_equal(out, "Fri, 31 Dec 9999 23:59:59 GMT");
}

static void test_http_date_round_trips_and_agrees_with_gmtime(void **state)
{
    (void)state;
    char out[64], expect[64];
    /* A prime step walks every weekday, month and time of day between 1970 and ~2106. */
    for (time_t t = 0; t < 4300000000; t += 999983) {
        ts_http_date(t, out, sizeof out);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(expect, sizeof expect, "%a, %d %b %Y %H:%M:%S GMT", &tm); /* "C" locale */
        assert_string_equal(out, expect);
        assert_int_equal(ts_http_date_parse(out), t);
    }
}

static void test_invalid_dates_are_rejected(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "garbage",
        "Sun, 06 Nov 1994 08:49:37",       /* no zone */
        "Sun, 06 Nov 1994 08:49:37 UTC",   /* only GMT */
        "Sun, 06 Nov 1994 08:49:37 GMT x", /* trailing text */
        "Sun, 06 Nov 1994 08:49:37GMT",
        "Sun,06 Nov 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT", /* IMF day is two digits */
        "Sun, 06 Nov 94 08:49:37 GMT",  /* IMF year is four digits */
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "sun, 06 nov 1994 08:49:37 GMT",    /* names are case-sensitive */
        "Sux, 06 Nov 1994 08:49:37 GMT",    /* no such day */
        "Sun, 06 Nox 1994 08:49:37 GMT",    /* no such month */
        "Mon, 06 Nov 1994 08:49:37 GMT",    /* 6 Nov 1994 was a Sunday */
        "Sunday, 06 Nov 1994 08:49:37 GMT", /* long day name in an IMF-fixdate */
        "Sun, 06-Nov-94 08:49:37 GMT",      /* short day name in an RFC 850 date */
        "Sunday, 06-Nov-1994 08:49:37 GMT", /* RFC 850 year is two digits */
        "Sun Nov 6 08:49:37 1994",          /* asctime pads the day with a space */
        "Sun Nov  6 08:49:37 94",
        "Sun Nov  6 08:49:37 1994 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT", /* out of range fields */
        "Wed, 31 Nov 1994 08:49:37 GMT",
        "Tue, 29 Feb 1994 08:49:37 GMT", /* 1994 was not a leap year */
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:37 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Wed, 31 Dec 1969 23:59:59 GMT", /* before the epoch */
        "Sun, 06 Nov 1994 08:49:37 GMT\n",
        "Sun, 06 Nov 1994 08:49:37 GM",
        "Sun, 06 Nov 19",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        time_t got = ts_http_date_parse(bad[i]);
        if (got != -1)
            fail_msg("\"%s\" parsed to %lld, expected -1", bad[i], (long long)got);
    }
    assert_int_equal(ts_http_date_parse(NULL), -1);
}

static void test_leap_second_and_leap_day_are_accepted(void **state)
{
    (void)state;
    assert_int_equal(ts_http_date_parse("Sun, 06 Nov 1994 08:49:60 GMT"), SUN_06_NOV_1994 + 23);
    assert_int_equal(ts_http_date_parse("Thu, 29 Feb 2024 00:00:00 GMT"), 1709164800);
}

static void test_not_modified_since_each_date_form(void **state)
{
    (void)state;
    static const char *const forms[] = {"Sun, 06 Nov 1994 08:49:37 GMT",
                                        "Sunday, 06-Nov-94 08:49:37 GMT",
                                        "Sun Nov  6 08:49:37 1994"};
    for (size_t i = 0; i < 3; i++) {
        assert_true(ts_not_modified(NULL, forms[i], "\"e\"", SUN_06_NOV_1994));
        assert_true(ts_not_modified(NULL, forms[i], "\"e\"", SUN_06_NOV_1994 - 1));
        assert_false(ts_not_modified(NULL, forms[i], "\"e\"", SUN_06_NOV_1994 + 1));
    }
}

static void test_invalid_if_modified_since_is_ignored(void **state)
{
    (void)state;
    assert_false(ts_not_modified(NULL, "yesterday", "\"e\"", 0));
    assert_false(ts_not_modified(NULL, "Mon, 06 Nov 1994 08:49:37 GMT", "\"e\"", 0));
    assert_false(ts_not_modified(NULL, NULL, "\"e\"", 0));
}

static void test_if_none_match_weak_tag_matches(void **state)
{
    (void)state;
    assert_true(ts_not_modified("W/\"x\"", NULL, "\"x\"", 0));
    assert_true(ts_not_modified("\"x\"", NULL, "W/\"x\"", 0));
    assert_false(ts_not_modified("W/\"y\"", NULL, "\"x\"", 0));
}

static void test_if_none_match_list_matches_any_member(void **state)
{
    (void)state;
    assert_true(ts_not_modified("\"a\", \"b\"", NULL, "\"a\"", 0));
    assert_true(ts_not_modified("\"a\", \"b\"", NULL, "\"b\"", 0));
    assert_true(ts_not_modified("\"a\",\t W/\"b\"", NULL, "\"b\"", 0));
    assert_false(ts_not_modified("\"a\", \"b\"", NULL, "\"c\"", 0));
    assert_false(ts_not_modified("\"ab\"", NULL, "\"a\"", 0)); /* no prefix matches */
    assert_false(ts_not_modified("\"a\"", NULL, "\"ab\"", 0));
    assert_true(ts_not_modified("\"x,y\", \"z\"", NULL, "\"x,y\"", 0)); /* commas in a tag */
    assert_false(ts_not_modified("\"x,y\"", NULL, "\"y\"", 0));
    assert_false(ts_not_modified("\"a", NULL, "\"a\"", 0)); /* unterminated */
    assert_false(ts_not_modified("", NULL, "\"a\"", 0));
}

static void test_if_none_match_star_matches_anything(void **state)
{
    (void)state;
    assert_true(ts_not_modified("*", NULL, "\"anything\"", 0));
}

static void test_if_none_match_wins_over_if_modified_since(void **state)
{
    (void)state;
    /* The tag differs, so the date (which alone would say "not modified") is not consulted. */
    assert_false(
        ts_not_modified("\"old\"", "Sun, 06 Nov 1994 08:49:37 GMT", "\"new\"", SUN_06_NOV_1994));
    assert_true(
        ts_not_modified("\"new\"", "Thu, 01 Jan 1970 00:00:00 GMT", "\"new\"", SUN_06_NOV_1994));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_imf_fixdate_parses),
        cmocka_unit_test(test_rfc850_date_parses_to_the_same_time),
        cmocka_unit_test(test_asctime_date_parses_to_the_same_time),
        cmocka_unit_test(test_surrounding_whitespace_is_ignored),
        cmocka_unit_test(test_rfc850_year_within_50_years_ahead_is_this_century),
        cmocka_unit_test(test_rfc850_year_more_than_50_years_ahead_is_last_century),
        cmocka_unit_test(test_rfc850_window_moves_with_the_clock),
        cmocka_unit_test(test_http_date_formats_imf_fixdate),
        cmocka_unit_test(test_http_date_round_trips_and_agrees_with_gmtime),
        cmocka_unit_test(test_invalid_dates_are_rejected),
        cmocka_unit_test(test_leap_second_and_leap_day_are_accepted),
        cmocka_unit_test(test_not_modified_since_each_date_form),
        cmocka_unit_test(test_invalid_if_modified_since_is_ignored),
        cmocka_unit_test(test_if_none_match_weak_tag_matches),
        cmocka_unit_test(test_if_none_match_list_matches_any_member),
        cmocka_unit_test(test_if_none_match_star_matches_anything),
        cmocka_unit_test(test_if_none_match_wins_over_if_modified_since),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
