/* Remote sources: which rule an identifier falls under, the URL it becomes, and --source as
 * the command line and the INI file give it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "config.h"
#include "image/remote.h"
#include "image/source.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>

static struct ts_source_rule rules[] = {
    {"maps", "s3://archive/maps/"},
    {"maps/old", "https://old.example.org/scans"},
    {"web", "http://127.0.0.1:8000/"},
};
#define NRULES (sizeof rules / sizeof rules[0])

static const char *match(const char *id, const char **rest)
{
    const struct ts_source_rule *r = source_rule_match(rules, NRULES, id, rest);
    return r ? r->target : NULL;
}

static void test_rule_takes_a_whole_leading_folder(void **state)
{
    (void)state;
    const char *rest = NULL;
    assert_string_equal(match("maps/a.tif", &rest), "s3://archive/maps/");
    assert_string_equal(rest, "a.tif");
    assert_string_equal(match("web/x/y z.jp2", &rest), "http://127.0.0.1:8000/");
    assert_string_equal(rest, "x/y z.jp2");
    /* A prefix is a folder, not the start of a name. */
    assert_null(match("mapsfoo/a.tif", &rest));
    assert_null(match("webcam.tif", &rest));
    /* The folder alone names no object: the root keeps it. */
    assert_null(match("maps", &rest));
    assert_null(match("maps/", &rest));
    assert_null(match("other/a.tif", &rest));
}

static void test_longest_prefix_wins_in_any_order(void **state)
{
    (void)state;
    const char *rest = NULL;
    assert_string_equal(match("maps/old/1850.tif", &rest), "https://old.example.org/scans");
    assert_string_equal(rest, "1850.tif");
    assert_string_equal(match("maps/older/1850.tif", &rest), "s3://archive/maps/");
    assert_string_equal(rest, "older/1850.tif");
    struct ts_source_rule reversed[] = {rules[1], rules[0]};
    const struct ts_source_rule *r = source_rule_match(reversed, 2, "maps/old/a.tif", &rest);
    assert_non_null(r);
    assert_string_equal(r->prefix, "maps/old");
}

static void test_leading_and_doubled_slashes_are_read_as_iipsrv_reads_them(void **state)
{
    (void)state;
    const char *rest = NULL;
    assert_string_equal(match("/maps/a.tif", &rest), "s3://archive/maps/");
    assert_string_equal(rest, "a.tif");
    assert_string_equal(match("maps//a.tif", &rest), "s3://archive/maps/");
    assert_string_equal(rest, "a.tif");
    assert_null(source_rule_match(rules, 0, "maps/a.tif", &rest));
}

static void url(const char *base, const char *rest, const char *endpoint, const char *region,
                const char *want)
{
    char out[512];
    struct ts_err err = {0};
    assert_int_equal(ts_remote_url(base, rest, endpoint, region, out, sizeof out, &err), TS_OK);
    assert_string_equal(out, want);
}

static void test_urls_of_http_sources(void **state)
{
    (void)state;
    url("http://127.0.0.1:8000/", "a.tif", "", "", "http://127.0.0.1:8000/a.tif");
    url("https://h.example/scans", "x/a b.tif", "", "", "https://h.example/scans/x/a%20b.tif");
    url("https://h.example/p/", "é#?%.tif", "", "", "https://h.example/p/%C3%A9%23%3F%25.tif");
}

static void test_urls_of_s3_sources_are_path_style(void **state)
{
    (void)state;
    url("s3://archive/maps/", "a.tif", "http://127.0.0.1:9000", "",
        "http://127.0.0.1:9000/archive/maps/a.tif");
    url("s3://archive", "a+b.tif", "http://minio:9000", "", "http://minio:9000/archive/a%2Bb.tif");
    url("s3://archive/maps", "a.tif", "", "eu-west-3",
        "https://s3.eu-west-3.amazonaws.com/archive/maps/a.tif");
    url("s3://archive/maps", "a.tif", "", "",
        "https://s3.us-east-1.amazonaws.com/archive/maps/a.tif");
}

static void test_bad_bases_and_long_urls_are_refused(void **state)
{
    (void)state;
    char out[40];
    struct ts_err err = {0};
    assert_false(ts_remote_base_ok("ftp://h/"));
    assert_false(ts_remote_base_ok("s3://"));
    assert_false(ts_remote_base_ok("http:///path"));
    assert_true(ts_remote_base_ok("s3://b"));
    assert_int_equal(ts_remote_url("file:///etc/", "passwd", "", "", out, sizeof out, &err),
                     TS_EINVAL);
    assert_int_equal(ts_remote_url("http://h/", "a-name-longer-than-the-buffer-that-holds-it.tif",
                                   "", "", out, sizeof out, &err),
                     TS_ETOOLONG);
}

static int parse(struct ts_config *cfg, struct ts_err *err, int argc, const char **argv)
{
    ts_config_defaults(cfg);
    memset(err, 0, sizeof *err);
    return ts_config_parse_args(cfg, argc, (char **)argv, err);
}

static void test_source_flags_add_rules(void **state)
{
    (void)state;
    struct ts_config cfg;
    struct ts_err err;
    const char *argv[] = {"tessera",
                          "--source",
                          "/maps/=s3://archive/maps/",
                          "--source=web=http://h/",
                          "--s3-endpoint",
                          "http://127.0.0.1:9000",
                          "--remote-timeout-ms",
                          "1500"};
    assert_int_equal(parse(&cfg, &err, 8, argv), TS_OK);
    assert_int_equal(cfg.nsource_rules, 2);
    assert_string_equal(cfg.source_rules[0].prefix, "maps");
    assert_string_equal(cfg.source_rules[0].target, "s3://archive/maps/");
    assert_string_equal(cfg.source_rules[1].prefix, "web");
    assert_string_equal(cfg.source_rules[1].target, "http://h/");
    assert_string_equal(cfg.s3_endpoint, "http://127.0.0.1:9000");
    assert_int_equal(cfg.remote_timeout_ms, 1500);
    /* Defaults: short waits, a bounded cache of 64 KB blocks. */
    assert_int_equal(cfg.remote_connect_timeout_ms, 2000);
    assert_int_equal(cfg.remote_block_kb, 64);
    assert_int_equal(cfg.remote_cache_mb, 256);
    assert_int_equal(cfg.remote_recheck, 5);
}

static void test_source_rules_from_the_ini_file(void **state)
{
    (void)state;
    assert_int_equal(tu_mkdirs(TESSERA_TEST_WORK), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/remote.ini", TESSERA_TEST_WORK);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("[sources]\nsource = maps=s3://archive/maps/\nsource = web=https://h/\n"
          "s3-region = eu-west-3\ns3-secret-key = abc/def\n",
          f);
    fclose(f);
    struct ts_config cfg;
    struct ts_err err;
    const char *argv[] = {"tessera", "--config", path};
    assert_int_equal(parse(&cfg, &err, 3, argv), TS_OK);
    assert_int_equal(cfg.nsource_rules, 2);
    assert_string_equal(cfg.source_rules[1].target, "https://h/");
    assert_string_equal(cfg.s3_region, "eu-west-3");
    assert_string_equal(cfg.s3_secret_key, "abc/def");
}

static void refused(const char *flag, const char *value, const char *why)
{
    struct ts_config cfg;
    struct ts_err err;
    const char *argv[] = {"tessera", flag, value};
    assert_int_equal(parse(&cfg, &err, 3, argv), TS_EINVAL);
    if (!strstr(err.msg, why))
        fail_msg("'%s %s': reason '%s' does not say '%s'", flag, value, err.msg, why);
}

static void test_bad_source_rules_are_refused_with_a_reason(void **state)
{
    (void)state;
    refused("--source", "s3://archive/", "PREFIX=TARGET");
    refused("--source", "=s3://archive/", "no PREFIX");
    refused("--source", "/=s3://archive/", "no PREFIX");
    refused("--source", "maps=ftp://h/", "s3://, http:// or https://");
    /* A folder must be given whole: a relative one would depend on the working directory. */
    refused("--source", "maps=srv/images", "a folder (/path/)");
    refused("--source", "maps=http://h/a b", "spaces");
    refused("--remote-block", "48", "power of two");
    refused("--remote-timeout-ms", "0", "from 1");
}

static void test_at_most_so_many_rules(void **state)
{
    (void)state;
    const char *argv[2 * TS_SOURCE_RULES_MAX + 3];
    static char values[TS_SOURCE_RULES_MAX + 1][32];
    int argc = 0;
    argv[argc++] = "tessera";
    for (int i = 0; i <= TS_SOURCE_RULES_MAX; i++) {
        snprintf(values[i], sizeof values[i], "p%d=http://h/", i);
        argv[argc++] = "--source";
        argv[argc++] = values[i];
    }
    struct ts_config cfg;
    struct ts_err err;
    assert_int_equal(parse(&cfg, &err, argc, argv), TS_EINVAL);
    assert_non_null(strstr(err.msg, "at most"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_takes_a_whole_leading_folder),
        cmocka_unit_test(test_longest_prefix_wins_in_any_order),
        cmocka_unit_test(test_leading_and_doubled_slashes_are_read_as_iipsrv_reads_them),
        cmocka_unit_test(test_urls_of_http_sources),
        cmocka_unit_test(test_urls_of_s3_sources_are_path_style),
        cmocka_unit_test(test_bad_bases_and_long_urls_are_refused),
        cmocka_unit_test(test_source_flags_add_rules),
        cmocka_unit_test(test_source_rules_from_the_ini_file),
        cmocka_unit_test(test_bad_source_rules_are_refused_with_a_reason),
        cmocka_unit_test(test_at_most_so_many_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
