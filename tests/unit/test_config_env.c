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
    assert_string_equal(cfg.iiif_id_base, "https://img.example.org/");
    assert_string_equal(cfg.base_url, ""); /* iipsrv's meaning, not --base-url's */
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

static void test_iiif_delimiter_and_filename_pattern_are_kept(void **state)
{
    (void)state;
    struct ts_config cfg;
    struct ts_err err = {0};
    static const char *const d[] = {"IIIF_DELIMITER", ";", NULL};
    assert_int_equal(apply(&cfg, d, &err), TS_OK);
    assert_string_equal(cfg.iiif_delimiter, ";");
    assert_string_equal(cfg.filename_pattern, "_pyr_"); /* iipsrv's default */
    static const char *const f[] = {"FILENAME_PATTERN", "_seq_", NULL};
    assert_int_equal(apply(&cfg, f, &err), TS_OK);
    assert_string_equal(cfg.filename_pattern, "_seq_");
    static const char *const empty[] = {"FILENAME_PATTERN", "", NULL};
    assert_int_equal(apply(&cfg, empty, &err), TS_OK);
    assert_string_equal(cfg.filename_pattern, "");
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

static void test_encoder_settings_map_onto_the_encoders(void **state)
{
    (void)state;
    static const char *const env[] = {
        "WEBP_QUALITY", "60", "PNG_QUALITY", "9", "TIFF_COMPRESSION", "1",
        "TIFF_QUALITY", "90", NULL};
    struct ts_config cfg;
    struct ts_err err = {0};
    assert_int_equal(apply(&cfg, env, &err), TS_OK);
    assert_int_equal(cfg.webp_quality, 60);
    assert_int_equal(cfg.png_level, 9);
    assert_int_equal(cfg.tiff_compression, 1);
    assert_int_equal(cfg.tiff_level, 0); /* LZW has no level, in iipsrv either */
    /* iipsrv's defaults: deflate at level 1. */
    static const char *const deflate[] = {"TIFF_COMPRESSION", "2", "TIFF_QUALITY", "1", NULL};
    assert_int_equal(apply(&cfg, deflate, &err), TS_OK);
    assert_int_equal(cfg.tiff_compression, 2);
    assert_int_equal(cfg.tiff_level, 1);
}

static void expect_refused(const char *name, const char *value, int code)
{
    const char *env[] = {name, value, NULL};
    struct ts_config cfg;
    struct ts_err err = {0};
    int rc = apply(&cfg, env, &err);
    if (rc != code)
        fail_msg("%s=%s: status %d, expected %d (%s)", name, value, rc, code, err.msg);
    if (!strstr(err.msg, name) || strchr(err.msg, '\n'))
        fail_msg("%s=%s: the reason should name it on one line: '%s'", name, value, err.msg);
}

static void expect_accepted(const char *name, const char *value)
{
    const char *env[] = {name, value, NULL};
    struct ts_config cfg;
    struct ts_err err = {0};
    if (apply(&cfg, env, &err) != TS_OK)
        fail_msg("%s=%s refused: %s", name, value, err.msg);
}

/* The watermark's three settings reach the configuration (the image is read at start, not
 * here); unset ones keep iipsrv's defaults of 1. */
static void test_watermark_settings_map_onto_the_config(void **state)
{
    (void)state;
    struct ts_config cfg;
    struct ts_err err = {0};
    static const char *const env[] = {"WATERMARK", "/srv/mark.tif",         "WATERMARK_OPACITY",
                                      "0.25",      "WATERMARK_PROBABILITY", "0.5",
                                      NULL};
    assert_int_equal(apply(&cfg, env, &err), TS_OK);
    assert_string_equal(cfg.watermark, "/srv/mark.tif");
    assert_true(cfg.watermark_opacity == 0.25);
    assert_true(cfg.watermark_probability == 0.5);
    static const char *const only_path[] = {"WATERMARK", "mark.png", NULL};
    assert_int_equal(apply(&cfg, only_path, &err), TS_OK);
    assert_true(cfg.watermark_opacity == 1.0);
    assert_true(cfg.watermark_probability == 1.0);
    static const char *const none[] = {NULL};
    assert_int_equal(apply(&cfg, none, &err), TS_OK);
    assert_string_equal(cfg.watermark, "");
}

static void test_values_tessera_cannot_honour_are_refused_with_a_reason(void **state)
{
    (void)state;
    expect_refused("WEBP_QUALITY", "-1", TS_EUNSUPPORTED); /* lossless */
    expect_refused("WEBP_QUALITY", "101", TS_EINVAL);
    expect_refused("PNG_QUALITY", "10", TS_EINVAL);
    expect_refused("TIFF_COMPRESSION", "3", TS_EUNSUPPORTED);
    expect_refused("TIFF_COMPRESSION", "4", TS_EUNSUPPORTED);
    expect_refused("TIFF_COMPRESSION", "5", TS_EUNSUPPORTED);
    expect_refused("TIFF_QUALITY", "50", TS_EUNSUPPORTED); /* deflate levels stop at 9 */
    expect_refused("AVIF_QUALITY", "50", TS_EUNSUPPORTED);
    expect_refused("AVIF_CODEC", "1", TS_EUNSUPPORTED);
    expect_refused("INTERPOLATION", "0", TS_EUNSUPPORTED);
    expect_refused("MAX_ICC", "65536", TS_EUNSUPPORTED);
    expect_refused("MAX_ICC", "-1", TS_EUNSUPPORTED);
    expect_refused("MAX_LAYERS", "3", TS_EUNSUPPORTED);
    expect_refused("KAKADU_READMODE", "2", TS_EUNSUPPORTED);
    expect_refused("WATERMARK_OPACITY", "1.5", TS_EINVAL);
    expect_refused("WATERMARK_PROBABILITY", "often", TS_EINVAL);
    expect_refused("WATERMARK_PROBABILITY", "-0.1", TS_EINVAL);
    expect_refused("MEMCACHED_TIMEOUT", "soon", TS_EINVAL);
    expect_refused("MAX_METADATA_CACHE_SIZE", "many", TS_EINVAL);
    expect_refused("ALLOW_UPSCALING", "yes", TS_EINVAL);
}

/* IIIF_EXTENSIONS is read with atoi in iipsrv: any number but 0 turns the qualities on. */
static void test_iiif_extensions_turn_the_extra_qualities_on(void **state)
{
    (void)state;
    struct ts_config cfg;
    struct ts_err err = {0};
    static const char *const on[] = {"IIIF_EXTENSIONS", "1", NULL};
    assert_int_equal(apply(&cfg, on, &err), TS_OK);
    assert_true(cfg.iiif_extensions);
    static const char *const off[] = {"IIIF_EXTENSIONS", "0", NULL};
    assert_int_equal(apply(&cfg, off, &err), TS_OK);
    assert_false(cfg.iiif_extensions);
    static const char *const bad[] = {"IIIF_EXTENSIONS", "yes", NULL};
    assert_int_equal(apply(&cfg, bad, &err), TS_EINVAL);
    assert_non_null(strstr(err.msg, "IIIF_EXTENSIONS"));
}

static void test_values_tessera_already_behaves_like_are_accepted(void **state)
{
    (void)state;
    expect_accepted("INTERPOLATION", "1"); /* a better filter than bilinear, never a worse one */
    expect_accepted("MAX_ICC", "0");
    expect_accepted("MAX_LAYERS", "0");
    expect_accepted("MAX_LAYERS", "-1");
    expect_accepted("KAKADU_READMODE", "0");
    expect_accepted("IIIF_EXTENSIONS", "0");
    expect_accepted("WATERMARK", "");
    expect_accepted("WATERMARK", "/srv/mark.tif"); /* read, and refused if unreadable, at start */
    expect_accepted("WATERMARK_OPACITY", "0.5");
    expect_accepted("WATERMARK_PROBABILITY", "1.0");
    /* Debian's stock iipsrv.conf sets these. */
    static const char *const debian[] = {"VERBOSITY",
                                         "1",
                                         "LOGFILE",
                                         "/tmp/iipsrv-test.log",
                                         "MAX_IMAGE_CACHE_SIZE",
                                         "10",
                                         "JPEG_QUALITY",
                                         "90",
                                         "MAX_CVT",
                                         "5000",
                                         "MEMCACHED_SERVERS",
                                         "localhost",
                                         "MEMCACHED_TIMEOUT",
                                         "86400",
                                         NULL};
    struct ts_config cfg;
    struct ts_err err = {0};
    assert_int_equal(apply(&cfg, debian, &err), TS_OK);
}

static void test_memcached_variables_set_the_shared_cache(void **state)
{
    (void)state;
    struct ts_config cfg;
    static const char *const none[] = {NULL};
    assert_int_equal(apply(&cfg, none, NULL), TS_OK);
    assert_string_equal(cfg.memcached_servers, ""); /* off unless asked for */
    assert_int_equal(cfg.memcached_ttl, 86400);
    static const char *const set[] = {"MEMCACHED_SERVERS", "10.0.0.5:11211,10.0.0.6",
                                      "MEMCACHED_TIMEOUT", "3600", NULL};
    assert_int_equal(apply(&cfg, set, NULL), TS_OK);
    assert_string_equal(cfg.memcached_servers, "10.0.0.5:11211,10.0.0.6");
    assert_int_equal(cfg.memcached_ttl, 3600);
}

static void test_metadata_cache_counts_images_in_kilobytes(void **state)
{
    (void)state;
    struct ts_config cfg;
    static const char *const thousand[] = {"MAX_METADATA_CACHE_SIZE", "1000", NULL};
    assert_int_equal(apply(&cfg, thousand, NULL), TS_OK);
    assert_int_equal(cfg.info_cache_mb, 4); /* 1000 x 4 KB, rounded up */
    static const char *const off[] = {"MAX_METADATA_CACHE_SIZE", "0", NULL};
    assert_int_equal(apply(&cfg, off, NULL), TS_OK);
    assert_int_equal(cfg.info_cache_mb, 0);
    static const char *const unbounded[] = {"MAX_METADATA_CACHE_SIZE", "-1", NULL};
    assert_int_equal(apply(&cfg, unbounded, NULL), TS_OK);
    assert_int_equal(cfg.info_cache_mb, 1 << 20);
}

static void test_upscaling_cache_control_and_info_extras_are_kept(void **state)
{
    (void)state;
    static const char *const env[] = {"ALLOW_UPSCALING",
                                      "0",
                                      "CACHE_CONTROL",
                                      "max-age=600, must-revalidate",
                                      "COPYRIGHT",
                                      "Public domain \xc2\xa9",
                                      "IIIF_EXTRA_INFO",
                                      "{\"service\": [{\"id\": \"https://x/auth\"}]}",
                                      NULL};
    struct ts_config cfg;
    struct ts_err err = {0};
    assert_int_equal(apply(&cfg, env, &err), TS_OK);
    assert_false(cfg.allow_upscaling);
    assert_string_equal(cfg.cache_control, "max-age=600, must-revalidate");
    assert_string_equal(cfg.copyright, "Public domain \xc2\xa9");
    assert_non_null(strstr(cfg.iiif_extra_info, "auth"));
    static const char *const on[] = {"ALLOW_UPSCALING", "2", NULL};
    assert_int_equal(apply(&cfg, on, &err), TS_OK);
    assert_true(cfg.allow_upscaling); /* iipsrv: every value but 0 */
}

static void test_malformed_header_and_json_values_are_refused(void **state)
{
    (void)state;
    expect_refused("CACHE_CONTROL", "max-age=1\r\nSet-Cookie: a=b", TS_EINVAL);
    expect_refused("IIIF_EXTRA_INFO", "[1, 2]", TS_EINVAL);
    expect_refused("IIIF_EXTRA_INFO", "{\"a\": }", TS_EINVAL);
    expect_refused("COPYRIGHT", "\xa9 1999", TS_EINVAL); /* Latin-1, not UTF-8 */
}

/* iipsrv pastes IIIF_EXTRA_INFO into its JSON, so its users write bare members: taken as the
 * object they form. */
static void test_extra_info_as_iipsrv_writes_it(void **state)
{
    (void)state;
    struct ts_config cfg;
    struct ts_err err = {0};
    static const char *const bare[] = {"IIIF_EXTRA_INFO", "\"rights\": \"x\", \"n\": 2", NULL};
    assert_int_equal(apply(&cfg, bare, &err), TS_OK);
    assert_string_equal(cfg.iiif_extra_info, "{\"rights\": \"x\", \"n\": 2}");
    static const char *const obj[] = {"IIIF_EXTRA_INFO", "{\"a\": true}", NULL};
    assert_int_equal(apply(&cfg, obj, &err), TS_OK);
    assert_string_equal(cfg.iiif_extra_info, "{\"a\": true}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iipsrv_settings_map_onto_the_config),
        cmocka_unit_test(test_absent_variables_leave_defaults),
        cmocka_unit_test(test_bad_values_are_refused_with_the_variable_named),
        cmocka_unit_test(test_max_cvt_minus_one_lifts_the_limit_and_verbosity_zero_mutes),
        cmocka_unit_test(test_iiif_delimiter_and_filename_pattern_are_kept),
        cmocka_unit_test(test_codec_passthrough_maps_on_to_always_and_off_to_never),
        cmocka_unit_test(test_encoder_settings_map_onto_the_encoders),
        cmocka_unit_test(test_values_tessera_cannot_honour_are_refused_with_a_reason),
        cmocka_unit_test(test_watermark_settings_map_onto_the_config),
        cmocka_unit_test(test_values_tessera_already_behaves_like_are_accepted),
        cmocka_unit_test(test_iiif_extensions_turn_the_extra_qualities_on),
        cmocka_unit_test(test_metadata_cache_counts_images_in_kilobytes),
        cmocka_unit_test(test_memcached_variables_set_the_shared_cache),
        cmocka_unit_test(test_upscaling_cache_control_and_info_extras_are_kept),
        cmocka_unit_test(test_malformed_header_and_json_values_are_refused),
        cmocka_unit_test(test_extra_info_as_iipsrv_writes_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
