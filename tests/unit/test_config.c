/* Configuration: defaults, flags, the INI file, flags overriding the file, and clear refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "config.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>

static int parse(struct ts_config *cfg, struct ts_err *err, int argc, const char **argv)
{
    ts_config_defaults(cfg);
    memset(err, 0, sizeof *err);
    return ts_config_parse_args(cfg, argc, (char **)argv, err);
}

static const char *write_file(const char *name, const char *text)
{
    static char path[512];
    assert_int_equal(tu_mkdirs(TESSERA_TEST_WORK), 0);
    snprintf(path, sizeof path, "%s/%s", TESSERA_TEST_WORK, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_defaults_serve_loopback_8080_with_limits(void **state)
{
    (void)state;
    struct ts_config cfg;
    struct ts_err err;
    const char *argv[] = {"tessera"};
    assert_int_equal(parse(&cfg, &err, 1, argv), TS_OK);
    assert_string_equal(cfg.listen_host, "127.0.0.1");
    assert_int_equal(cfg.listen_port, 8080);
    assert_int_equal(cfg.default_version, 3);
    assert_int_equal(cfg.jpeg_quality, 85);
    assert_true(cfg.max_area > 0);
    assert_true(cfg.response_cache_mb > 0);
}

static void test_flags_set_every_kind_of_value(void **state)
{
    (void)state;
    struct ts_config cfg;
    struct ts_err err;
    const char *argv[] = {"tessera",
                          "--root",
                          "/srv/img",
                          "--listen",
                          "0.0.0.0:9090",
                          "--jpeg-quality=70",
                          "--max-width",
                          "4000",
                          "--max-area",
                          "123456789012",
                          "--trust-proxy",
                          "--base-url",
                          "https://img.example.org/",
                          "--response-cache",
                          "0"};
    assert_int_equal(parse(&cfg, &err, sizeof argv / sizeof argv[0], argv), TS_OK);
    assert_string_equal(cfg.root, "/srv/img");
    assert_string_equal(cfg.listen_host, "0.0.0.0");
    assert_int_equal(cfg.listen_port, 9090);
    assert_int_equal(cfg.jpeg_quality, 70);
    assert_int_equal(cfg.max_width, 4000);
    assert_true(cfg.max_area == 123456789012ull);
    assert_true(cfg.trust_proxy);
    assert_string_equal(cfg.base_url, "https://img.example.org/");
    assert_int_equal(cfg.response_cache_mb, 0);
}

static void test_ipv6_listen_address_in_brackets(void **state)
{
    (void)state;
    struct ts_config cfg;
    struct ts_err err;
    const char *argv[] = {"tessera", "--listen", "[::1]:0"};
    assert_int_equal(parse(&cfg, &err, 3, argv), TS_OK);
    assert_string_equal(cfg.listen_host, "::1");
    assert_int_equal(cfg.listen_port, 0);
}

static void test_ini_file_is_read_and_flags_win(void **state)
{
    (void)state;
    const char *path = write_file("tessera.ini", "; comment\n[server]\nroot = /data/images\n"
                                                 "jpeg-quality = 60\nlisten = 127.0.0.1:7000\n"
                                                 "[limits]\nmax-width = 3000\ntrust-proxy = yes\n");
    struct ts_config cfg;
    struct ts_err err;
    const char *argv[] = {"tessera", "--jpeg-quality", "95", "--config", path};
    assert_int_equal(parse(&cfg, &err, 5, argv), TS_OK);
    assert_string_equal(cfg.root, "/data/images");
    assert_int_equal(cfg.listen_port, 7000);
    assert_int_equal(cfg.max_width, 3000);
    assert_true(cfg.trust_proxy);
    assert_int_equal(cfg.jpeg_quality, 95); /* the flag, though it came before --config */
}

static void test_bad_values_are_refused_with_a_reason(void **state)
{
    (void)state;
    static const char *bad[][3] = {
        {"tessera", "--jpeg-quality", "0"},   {"tessera", "--jpeg-quality", "101"},
        {"tessera", "--jpeg-quality", "9x"},  {"tessera", "--max-width", "-5"},
        {"tessera", "--listen", "localhost"}, {"tessera", "--listen", "h:99999"},
        {"tessera", "--no-such-flag", "1"},   {"tessera", "--trust-proxy=maybe", ""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct ts_config cfg;
        struct ts_err err;
        int argc = bad[i][2][0] ? 3 : 2;
        assert_int_equal(parse(&cfg, &err, argc, bad[i]), TS_EINVAL);
        assert_true(strlen(err.msg) > 0);
    }
}

static void test_ini_errors_name_the_line(void **state)
{
    (void)state;
    const char *path = write_file("bad.ini", "root = /x\nunknown-key = 1\n");
    struct ts_config cfg;
    struct ts_err err;
    const char *argv[] = {"tessera", "--config", path};
    assert_int_equal(parse(&cfg, &err, 3, argv), TS_EINVAL);
    assert_non_null(strstr(err.msg, ":2:"));
    assert_non_null(strstr(err.msg, "unknown-key"));
    const char *missing[] = {"tessera", "--config", "/nonexistent/tessera.ini"};
    assert_int_equal(parse(&cfg, &err, 3, missing), TS_EINVAL);
}

static void test_missing_value_is_refused(void **state)
{
    (void)state;
    struct ts_config cfg;
    struct ts_err err;
    const char *argv[] = {"tessera", "--root"};
    assert_int_equal(parse(&cfg, &err, 2, argv), TS_EINVAL);
    assert_non_null(strstr(err.msg, "root"));
}

/* Debian's iipsrv.service runs "iipsrv.fcgi --bind 0.0.0.0:9000 --backlog 1024". */
static void test_iipsrv_bind_and_backlog_set_the_fastcgi_socket(void **state)
{
    (void)state;
    struct ts_config cfg;
    struct ts_err err;
    const char *argv[] = {"iipsrv.fcgi", "--bind", "0.0.0.0:9000", "--backlog", "1024"};
    assert_int_equal(parse(&cfg, &err, 5, argv), TS_OK);
    assert_string_equal(cfg.fcgi_listen, "0.0.0.0:9000");
    assert_int_equal(cfg.fcgi_backlog, 1024);
    const char *unix_sock[] = {"tessera", "--bind=/run/iipsrv/iipsrv.sock"};
    assert_int_equal(parse(&cfg, &err, 2, unix_sock), TS_OK);
    assert_string_equal(cfg.fcgi_listen, "/run/iipsrv/iipsrv.sock");
    assert_int_equal(cfg.fcgi_backlog, 0); /* not given: the server's default */
    const char *bad[] = {"tessera", "--bind", "127.0.0.1:9000", "--backlog", "0"};
    assert_int_equal(parse(&cfg, &err, 5, bad), TS_EINVAL);
    assert_non_null(strstr(err.msg, "backlog"));
}

/* iipsrv's CACHE_CONTROL as a flag and an INI setting, checked after every source. */
static void test_cache_control_and_upscaling_flags(void **state)
{
    (void)state;
    struct ts_config cfg;
    struct ts_err err;
    const char *argv[] = {
        "tessera", "--cache-control", "no-store", "--allow-upscaling=false", "--tiff-compression",
        "1"};
    assert_int_equal(parse(&cfg, &err, 6, argv), TS_OK);
    assert_string_equal(cfg.cache_control, "no-store");
    assert_false(cfg.allow_upscaling);
    assert_int_equal(cfg.tiff_compression, 1);
    const char *ini = write_file("cc.ini", "cache-control = private, max-age=60\n");
    const char *argv2[] = {"tessera", "--config", ini};
    assert_int_equal(parse(&cfg, &err, 3, argv2), TS_OK);
    assert_string_equal(cfg.cache_control, "private, max-age=60");
    assert_true(cfg.allow_upscaling);
    const char *bad[] = {"tessera", "--cache-control", "max-age=1\nSet-Cookie: x=y"};
    assert_int_equal(parse(&cfg, &err, 3, bad), TS_EINVAL);
    assert_non_null(strstr(err.msg, "cache-control"));
}

/* The watermark as flags and INI settings; its fractions are checked as iipsrv's variables are. */
static void test_watermark_flags_and_ini_settings(void **state)
{
    (void)state;
    struct ts_config cfg;
    struct ts_err err;
    const char *argv[] = {"tessera",
                          "--watermark",
                          "/srv/mark.png",
                          "--watermark-opacity=0.3",
                          "--watermark-probability",
                          "0.75"};
    assert_int_equal(parse(&cfg, &err, 6, argv), TS_OK);
    assert_string_equal(cfg.watermark, "/srv/mark.png");
    assert_true(cfg.watermark_opacity == 0.3);
    assert_true(cfg.watermark_probability == 0.75);
    const char *ini = write_file("wm.ini", "watermark = mark.tif\nwatermark-opacity = 1\n"
                                           "watermark-probability = 0\n");
    const char *argv2[] = {"tessera", "--config", ini, "--watermark-opacity", "0.5"};
    assert_int_equal(parse(&cfg, &err, 5, argv2), TS_OK);
    assert_string_equal(cfg.watermark, "mark.tif");
    assert_true(cfg.watermark_opacity == 0.5); /* the flag wins */
    assert_true(cfg.watermark_probability == 0.0);
    static const char *const bad[] = {"1.5", "-0.5", "", "half", "0.5x", "nan", " 0.5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *argv3[] = {"tessera", "--watermark-opacity", bad[i]};
        if (parse(&cfg, &err, 3, argv3) != TS_EINVAL || !strstr(err.msg, "watermark-opacity"))
            fail_msg("--watermark-opacity '%s' was not refused by name: %s", bad[i], err.msg);
    }
}

/* A test binary lives in the build tree, so the default is the build tree's copy of the viewer
 * (the installed case is tests/install/install_tree.sh: a binary outside the tree). */
static void test_default_web_dir_in_the_build_tree_has_the_viewer(void **state)
{
    (void)state;
    char dir[TS_CONFIG_PATH_MAX], page[TS_CONFIG_PATH_MAX + 32], expected[TS_CONFIG_PATH_MAX];
    ts_config_default_web_dir(dir, sizeof dir);
    const char *bin = TESSERA_BIN; /* BUILD_DIR/tessera */
    snprintf(expected, sizeof expected, "%.*s/web", (int)(strrchr(bin, '/') - bin), bin);
    assert_string_equal(dir, expected);
    snprintf(page, sizeof page, "%s/pages/viewer.html", dir);
    FILE *f = fopen(page, "r");
    if (!f)
        fail_msg("no viewer page at %s", page);
    fclose(f);
}

struct names {
    char text[512];
};

static void collect(void *ctx, const char *name)
{
    struct names *n = ctx;
    size_t len = strlen(n->text);
    snprintf(n->text + len, sizeof n->text - len, "%s%s", len ? "," : "", name);
}

static void test_changes_name_each_option_that_differs(void **state)
{
    (void)state;
    struct ts_config a, b;
    struct ts_err err;
    const char *argv_a[] = {"tessera", "--max-width", "1000", "--listen", "127.0.0.1:0"};
    const char *argv_b[] = {"tessera",  "--max-width",    "500",
                            "--listen", "127.0.0.1:8081", "--access-log-format",
                            "json",     "--reader-cache", "3"};
    assert_int_equal(parse(&a, &err, 5, argv_a), TS_OK);
    assert_int_equal(parse(&b, &err, 9, argv_b), TS_OK);
    struct names n = {""};
    ts_config_changes(&a, &b, collect, &n);
    /* In the order --help lists them. */
    assert_string_equal(n.text, "listen,max-width,access-log-format,reader-cache");
    n.text[0] = '\0';
    ts_config_changes(&a, &a, collect, &n);
    assert_string_equal(n.text, "");
}

static void test_log_format_and_trusted_proxies_are_checked(void **state)
{
    (void)state;
    struct ts_config cfg;
    struct ts_err err;
    const char *ok[] = {"tessera", "--access-log-format", "json", "--trusted-proxies",
                        "10.0.0.0/8,::1"};
    assert_int_equal(parse(&cfg, &err, 5, ok), TS_OK);
    assert_string_equal(cfg.access_log_format, "json");
    const char *bad_format[] = {"tessera", "--access-log-format", "common"};
    assert_int_equal(parse(&cfg, &err, 3, bad_format), TS_EINVAL);
    assert_non_null(strstr(err.msg, "combined or json"));
    const char *bad_proxy[] = {"tessera", "--trusted-proxies", "10.0.0.0/8,proxy.example"};
    assert_int_equal(parse(&cfg, &err, 3, bad_proxy), TS_EINVAL);
    assert_non_null(strstr(err.msg, "proxy.example"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_serve_loopback_8080_with_limits),
        cmocka_unit_test(test_changes_name_each_option_that_differs),
        cmocka_unit_test(test_log_format_and_trusted_proxies_are_checked),
        cmocka_unit_test(test_cache_control_and_upscaling_flags),
        cmocka_unit_test(test_watermark_flags_and_ini_settings),
        cmocka_unit_test(test_flags_set_every_kind_of_value),
        cmocka_unit_test(test_ipv6_listen_address_in_brackets),
        cmocka_unit_test(test_ini_file_is_read_and_flags_win),
        cmocka_unit_test(test_bad_values_are_refused_with_a_reason),
        cmocka_unit_test(test_ini_errors_name_the_line),
        cmocka_unit_test(test_missing_value_is_refused),
        cmocka_unit_test(test_iipsrv_bind_and_backlog_set_the_fastcgi_socket),
        cmocka_unit_test(test_default_web_dir_in_the_build_tree_has_the_viewer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
