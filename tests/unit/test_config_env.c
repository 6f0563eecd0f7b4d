/* iipsrv environment variables onto the configuration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "config_env.h"

#include <string.h>

static const char *const *current_env;

static const char *fake_env(const char *name)
{
    for (const char *const *p = current_env; p && p[0]; p += 2)
        if (!strcmp(p[0], name))
            return p[1];
    return NULL;
}

static int apply(struct ts_config *cfg, const char *const *env, struct ts_err *err)
{
    ts_config_defaults(cfg);
    current_env = env;
    return ts_config_from_env_with(cfg, fake_env, err);
}

static void test_iipsrv_settings_map_onto_the_config(void **state)
{
    (void)state;
    static const char *const env[] = {"FILESYSTEM_PREFIX",
                                      "/srv/images/",
                                      "FILESYSTEM_SUFFIX",
                                      ".tif",
                                      "JPEG_QUALITY",
                                      "70",
                                      "MAX_CVT",
                                      "3000",
                                      "MAX_IMAGE_CACHE_SIZE",
                                      "64.5",
                                      "CORS",
                                      "https://viewer.example.org",
                                      "URI_MAP",
                                      "iiif=>IIIF",
                                      "BASE_URL",
                                      "https://img.example.org/",
                                      "LOGFILE",
                                      "/tmp/iip.log",
                                      "VERBOSITY",
                                      "2",
                                      NULL};
    struct ts_config cfg;
    struct ts_err err = {0};
    assert_int_equal(apply(&cfg, env, &err), TS_OK);
    assert_string_equal(cfg.root, "/srv/images");
    assert_string_equal(cfg.fs_suffix, ".tif");
    assert_int_equal(cfg.jpeg_quality, 70);
    assert_int_equal(cfg.max_cvt, 3000);
    assert_int_equal(cfg.max_width, 3000);
    assert_int_equal(cfg.response_cache_mb, 64);
    assert_string_equal(cfg.cors, "https://viewer.example.org");
    assert_string_equal(cfg.uri_map, "iiif=>IIIF");
    assert_string_equal(cfg.base_url, "https://img.example.org/");
    assert_string_equal(cfg.access_log, "/tmp/iip.log");
}

static void test_absent_variables_leave_defaults(void **state)
{
    (void)state;
    static const char *const env[] = {NULL};
    struct ts_config cfg, defaults;
    ts_config_defaults(&defaults);
    assert_int_equal(apply(&cfg, env, NULL), TS_OK);
    assert_memory_equal(&cfg, &defaults, sizeof cfg);
}

static void test_bad_values_are_refused_with_the_variable_named(void **state)
{
    (void)state;
    struct ts_config cfg;
    struct ts_err err = {0};
    static const char *const q[] = {"JPEG_QUALITY", "high", NULL};
    assert_int_equal(apply(&cfg, q, &err), TS_EINVAL);
    assert_non_null(strstr(err.msg, "JPEG_QUALITY"));
    static const char *const m[] = {"URI_MAP", "iiif", NULL};
    assert_int_equal(apply(&cfg, m, &err), TS_EINVAL);
    assert_non_null(strstr(err.msg, "URI_MAP"));
    static const char *const u[] = {"URI_MAP", "iiif=>IIIIF", NULL};
    assert_int_equal(apply(&cfg, u, &err), TS_EINVAL);
    assert_non_null(strstr(err.msg, "URI_MAP"));
    static const char *const ok[] = {"URI_MAP", "tiles=>deepzoom", NULL};
    assert_int_equal(apply(&cfg, ok, &err), TS_OK);
}

static void test_max_cvt_minus_one_lifts_the_limit_and_verbosity_zero_mutes(void **state)
{
    (void)state;
    static const char *const env[] = {"MAX_CVT",   "-1", "LOGFILE", "/tmp/x.log",
                                      "VERBOSITY", "0",  NULL};
    struct ts_config cfg;
    assert_int_equal(apply(&cfg, env, NULL), TS_OK);
    assert_int_equal(cfg.max_cvt, UINT32_MAX);
    assert_int_equal(cfg.max_width, 0);
    assert_string_equal(cfg.access_log, "");
}

static void test_iiif_delimiter_is_kept_and_filename_pattern_refused(void **state)
{
    (void)state;
    struct ts_config cfg;
    struct ts_err err = {0};
    static const char *const d[] = {"IIIF_DELIMITER", ";", NULL};
    assert_int_equal(apply(&cfg, d, &err), TS_OK);
    assert_string_equal(cfg.iiif_delimiter, ";");
    /* Image sequences are not served: starting as if they were would hide it. */
    static const char *const f[] = {"FILENAME_PATTERN", "_pyr_", NULL};
    assert_int_equal(apply(&cfg, f, &err), TS_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "FILENAME_PATTERN"));
    assert_null(strchr(err.msg, '\n'));
    static const char *const empty[] = {"FILENAME_PATTERN", "", NULL};
    assert_int_equal(apply(&cfg, empty, &err), TS_OK);
}

static void test_codec_passthrough_maps_on_to_always_and_off_to_never(void **state)
{
    (void)state;
    struct ts_config cfg;
    struct ts_err err = {0};
    static const char *const on[] = {"CODEC_PASSTHROUGH", "1", NULL};
    assert_int_equal(apply(&cfg, on, NULL), TS_OK);
    assert_string_equal(cfg.passthrough, "always");
    static const char *const off[] = {"CODEC_PASSTHROUGH", "0", NULL};
    assert_int_equal(apply(&cfg, off, NULL), TS_OK);
    assert_string_equal(cfg.passthrough, "never");
    static const char *const bad[] = {"CODEC_PASSTHROUGH", "yes", NULL};
    assert_int_equal(apply(&cfg, bad, &err), TS_EINVAL);
    assert_non_null(strstr(err.msg, "CODEC_PASSTHROUGH"));
    /* Unset keeps Tessera's own default rule. */
    static const char *const none[] = {NULL};
    assert_int_equal(apply(&cfg, none, NULL), TS_OK);
    assert_string_equal(cfg.passthrough, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iipsrv_settings_map_onto_the_config),
        cmocka_unit_test(test_absent_variables_leave_defaults),
        cmocka_unit_test(test_bad_values_are_refused_with_the_variable_named),
        cmocka_unit_test(test_max_cvt_minus_one_lifts_the_limit_and_verbosity_zero_mutes),
        cmocka_unit_test(test_iiif_delimiter_is_kept_and_filename_pattern_refused),
        cmocka_unit_test(test_codec_passthrough_maps_on_to_always_and_off_to_never),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
