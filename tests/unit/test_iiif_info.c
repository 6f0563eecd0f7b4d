/* Unit tests for info.json (1.1, 2.1, 3.0): parsed back with jansson, every field checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "protocol/iiif_info.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* 1000x1000, 256-pixel tiles, levels of 500 and 250. */
static struct ts_image_info pyramid(void)
{
    struct ts_image_info info;
    memset(&info, 0, sizeof info);
    info.width = info.height = 1000;
    info.channels = 3;
    info.bits_per_sample = 8;
    info.nlevels = 3;
    for (int i = 0; i < 3; i++) {
        info.levels[i].width = info.levels[i].height = 1000u >> i;
        info.levels[i].tile_w = info.levels[i].tile_h = 256;
    }
    info.format = "tiff";
    return info;
}

static struct ts_image_info untiled(uint32_t w, uint32_t h)
{
    struct ts_image_info info;
    memset(&info, 0, sizeof info);
    info.width = info.levels[0].width = w;
    info.height = info.levels[0].height = h;
    info.channels = 3;
    info.bits_per_sample = 8;
    info.nlevels = 1;
    info.format = "jpeg";
    return info;
}

static struct ts_limits options(void)
{
    struct ts_limits o;
    memset(&o, 0, sizeof o);
    o.formats = (1u << TS_FORMAT_JPG) | (1u << TS_FORMAT_PNG) | (1u << TS_FORMAT_WEBP);
    return o;
}

/* Builds info.json and parses it back; *text keeps the raw document for ordering checks. */
static json_t *info_doc(int version, const char *id, const struct ts_image_info *info,
                        const struct ts_limits *opt, uint32_t default_tile, char **text)
{
    struct iiif_info_params p = {version, id, info, opt, default_tile, NULL, NULL};
    struct ts_err err = {0};
    char *json = NULL;
    int rc = iiif_info_json(&p, &json, &err);
    if (rc != TS_OK)
        fail_msg("iiif_info_json failed: %s", err.msg);
    json_error_t jerr;
    json_t *doc = json_loads(json, 0, &jerr);
    if (!doc)
        fail_msg("info.json does not parse: %s", jerr.text);
    if (text)
        *text = json;
    else
        free(json);
    return doc;
}

static const char *str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        fail_msg("'%s' is not a string", key);
    return json_string_value(v);
}

static json_int_t integer(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        fail_msg("'%s' is not an integer", key);
    return json_integer_value(v);
}

static void expect_ints(json_t *arr, const json_int_t *want, size_t n)
{
    assert_true(json_is_array(arr));
    assert_int_equal(json_array_size(arr), n);
    for (size_t i = 0; i < n; i++) {
        assert_true(json_is_integer(json_array_get(arr, i)));
        assert_int_equal(json_integer_value(json_array_get(arr, i)), want[i]);
    }
}

static void expect_strings(json_t *arr, const char *const *want, size_t n)
{
    assert_true(json_is_array(arr));
    if (json_array_size(arr) != n)
        fail_msg("array of %zu strings, expected %zu", json_array_size(arr), n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(json_string_value(json_array_get(arr, i)), want[i]);
}

static bool has_string(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

static void expect_sizes(json_t *sizes, const json_int_t (*wh)[2], size_t n)
{
    assert_true(json_is_array(sizes));
    assert_int_equal(json_array_size(sizes), n);
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(sizes, i);
        assert_int_equal(integer(s, "width"), wh[i][0]);
        assert_int_equal(integer(s, "height"), wh[i][1]);
    }
}

static void test_v3_every_field(void **state)
{
    (void)state;
    struct ts_image_info info = pyramid();
    struct ts_limits opt = options();
    char *text;
    json_t *d = info_doc(3, "http://h:8080/iiif/3/a.tif", &info, &opt, 512, &text);
    /* @context SHOULD be the very first key. */
    assert_non_null(strstr(text, "\"@context\""));
    assert_true(strstr(text, "\"@context\"") < strstr(text, "\"id\""));
    assert_int_equal(strspn(text, "{ \n"), strstr(text, "\"@context\"") - text);
    free(text);

    assert_string_equal(str(d, "@context"), "http://iiif.io/api/image/3/context.json");
    assert_string_equal(str(d, "id"), "http://h:8080/iiif/3/a.tif");
    assert_string_equal(str(d, "type"), "ImageService3");
    assert_string_equal(str(d, "protocol"), "http://iiif.io/api/image");
    assert_string_equal(str(d, "profile"), "level2");
    assert_int_equal(integer(d, "width"), 1000);
    assert_int_equal(integer(d, "height"), 1000);
    assert_null(json_object_get(d, "maxWidth"));
    assert_null(json_object_get(d, "maxHeight"));
    assert_null(json_object_get(d, "maxArea"));
    assert_null(json_object_get(d, "@id"));

    const json_int_t sizes[][2] = {{250, 250}, {500, 500}, {1000, 1000}};
    expect_sizes(json_object_get(d, "sizes"), sizes, 3);

    json_t *tiles = json_object_get(d, "tiles");
    assert_true(json_is_array(tiles));
    assert_int_equal(json_array_size(tiles), 1);
    json_t *t = json_array_get(tiles, 0);
    assert_int_equal(integer(t, "width"), 256);
    assert_int_equal(integer(t, "height"), 256);
    const json_int_t sf[] = {1, 2, 4};
    expect_ints(json_object_get(t, "scaleFactors"), sf, 3);

    const char *formats[] = {"webp"};
    expect_strings(json_object_get(d, "extraFormats"), formats, 1);
    const char *preferred[] = {"jpg"};
    expect_strings(json_object_get(d, "preferredFormats"), preferred, 1);
    const char *qualities[] = {"color", "gray", "bitonal"};
    expect_strings(json_object_get(d, "extraQualities"), qualities, 3);

    json_t *features = json_object_get(d, "extraFeatures");
    const char *want[] = {
        "mirroring",         "regionSquare",    "rotationBy90s",    "canonicalLinkHeader",
        "profileLinkHeader", "jsonldMediaType", "baseUriRedirect",  "cors",
        "regionByPct",       "regionByPx",      "sizeByConfinedWh", "sizeByH",
        "sizeByPct",         "sizeByW",         "sizeByWh"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (!has_string(features, want[i]))
            fail_msg("extraFeatures lacks %s", want[i]);
    }
    assert_false(has_string(features, "rotationArbitrary"));
    assert_false(has_string(features, "sizeAboveFull")); /* a 2.1 name */
    /* sizeUpscaling may only be advertised together with maxWidth or maxArea. */
    assert_false(has_string(features, "sizeUpscaling"));
    json_decref(d);
}

static void test_v3_rotation_arbitrary_and_formats_follow_options(void **state)
{
    (void)state;
    struct ts_image_info info = pyramid();
    struct ts_limits opt = options();
    opt.rotation_arbitrary = true;
    opt.formats |= (1u << TS_FORMAT_GIF) | (1u << TS_FORMAT_TIF);
    json_t *d = info_doc(3, "x", &info, &opt, 512, NULL);
    assert_true(has_string(json_object_get(d, "extraFeatures"), "rotationArbitrary"));
    const char *formats[] = {"webp", "gif", "tif"};
    expect_strings(json_object_get(d, "extraFormats"), formats, 3);
    json_decref(d);

    opt = options();
    opt.formats = (1u << TS_FORMAT_JPG) | (1u << TS_FORMAT_PNG);
    d = info_doc(3, "x", &info, &opt, 512, NULL);
    assert_null(json_object_get(d, "extraFormats"));
    json_decref(d);
}

static void test_v3_limits_present_when_configured(void **state)
{
    (void)state;
    struct ts_image_info info = pyramid();
    struct ts_limits opt = options();
    opt.max_width = 600;
    opt.max_height = 500;
    opt.max_area = 300000;
    json_t *d = info_doc(3, "x", &info, &opt, 512, NULL);
    assert_int_equal(integer(d, "maxWidth"), 600);
    assert_int_equal(integer(d, "maxHeight"), 500);
    assert_int_equal(integer(d, "maxArea"), 300000);
    assert_true(has_string(json_object_get(d, "extraFeatures"), "sizeUpscaling"));
    /* Advertised sizes must be servable: 1000x1000 is over the limits. */
    const json_int_t sizes[][2] = {{250, 250}, {500, 500}};
    expect_sizes(json_object_get(d, "sizes"), sizes, 2);
    json_decref(d);

    opt = options();
    opt.max_width = 800;
    d = info_doc(3, "x", &info, &opt, 512, NULL);
    assert_int_equal(integer(d, "maxWidth"), 800);
    assert_null(json_object_get(d, "maxHeight")); /* clients infer maxHeight = maxWidth */
    assert_null(json_object_get(d, "maxArea"));
    json_decref(d);
}

static void test_v3_untiled_source_uses_default_tile(void **state)
{
    (void)state;
    struct ts_image_info info = untiled(1000, 1000);
    struct ts_limits opt = options();
    json_t *d = info_doc(3, "x", &info, &opt, 512, NULL);
    json_t *t = json_array_get(json_object_get(d, "tiles"), 0);
    assert_int_equal(integer(t, "width"), 512);
    assert_int_equal(integer(t, "height"), 512);
    const json_int_t sf[] = {1, 2};
    expect_ints(json_object_get(t, "scaleFactors"), sf, 2);
    const json_int_t sizes[][2] = {{500, 500}, {1000, 1000}};
    expect_sizes(json_object_get(d, "sizes"), sizes, 2);
    json_decref(d);
}

static void test_tile_shrinks_to_fit_limits(void **state)
{
    (void)state;
    struct ts_image_info info = pyramid();
    struct ts_limits opt = options();
    opt.max_width = 200;
    json_t *d = info_doc(3, "x", &info, &opt, 512, NULL);
    json_t *t = json_array_get(json_object_get(d, "tiles"), 0);
    assert_int_equal(integer(t, "width"), 128);
    assert_int_equal(integer(t, "height"), 128);
    /* 1000 / 8 = 125 fits one 128 tile. */
    const json_int_t sf[] = {1, 2, 4, 8};
    expect_ints(json_object_get(t, "scaleFactors"), sf, 4);
    const json_int_t sizes[][2] = {{125, 125}};
    expect_sizes(json_object_get(d, "sizes"), sizes, 1);
    json_decref(d);
}

static void test_v2_every_field(void **state)
{
    (void)state;
    struct ts_image_info info = pyramid();
    struct ts_limits opt = options();
    opt.max_width = 4000;
    opt.max_area = 9000000;
    json_t *d = info_doc(2, "http://h/iiif/2/a.tif", &info, &opt, 512, NULL);
    assert_string_equal(str(d, "@context"), "http://iiif.io/api/image/2/context.json");
    assert_string_equal(str(d, "@id"), "http://h/iiif/2/a.tif");
    assert_null(json_object_get(d, "id"));
    assert_string_equal(str(d, "protocol"), "http://iiif.io/api/image");
    assert_int_equal(integer(d, "width"), 1000);
    assert_int_equal(integer(d, "height"), 1000);
    assert_null(json_object_get(d, "maxWidth")); /* 2.1 puts limits in the profile */

    const json_int_t sizes[][2] = {{250, 250}, {500, 500}, {1000, 1000}};
    expect_sizes(json_object_get(d, "sizes"), sizes, 3);
    json_t *t = json_array_get(json_object_get(d, "tiles"), 0);
    assert_int_equal(integer(t, "width"), 256);
    const json_int_t sf[] = {1, 2, 4};
    expect_ints(json_object_get(t, "scaleFactors"), sf, 3);

    json_t *profile = json_object_get(d, "profile");
    assert_true(json_is_array(profile));
    assert_int_equal(json_array_size(profile), 2);
    assert_string_equal(json_string_value(json_array_get(profile, 0)),
                        "http://iiif.io/api/image/2/level2.json");
    json_t *desc = json_array_get(profile, 1);
    assert_true(json_is_object(desc));
    const char *formats[] = {"webp"};
    expect_strings(json_object_get(desc, "formats"), formats, 1);
    const char *qualities[] = {"default", "color", "gray", "bitonal"};
    expect_strings(json_object_get(desc, "qualities"), qualities, 4);
    json_t *supports = json_object_get(desc, "supports");
    const char *want[] = {
        "mirroring",           "regionSquare",      "sizeAboveFull", "sizeByDistortedWh",
        "canonicalLinkHeader", "profileLinkHeader", "cors",          "baseUriRedirect"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (!has_string(supports, want[i]))
            fail_msg("supports lacks %s", want[i]);
    }
    assert_false(has_string(supports, "rotationArbitrary"));
    assert_false(has_string(supports, "sizeUpscaling")); /* a 3.0 name */
    assert_int_equal(integer(desc, "maxWidth"), 4000);
    assert_null(json_object_get(desc, "maxHeight"));
    assert_int_equal(integer(desc, "maxArea"), 9000000);
    json_decref(d);
}

static void test_v1_every_field(void **state)
{
    (void)state;
    struct ts_image_info info = pyramid();
    struct ts_limits opt = options();
    json_t *d = info_doc(1, "http://h/iiif/1/a.tif", &info, &opt, 512, NULL);
    assert_string_equal(str(d, "@context"),
                        "http://library.stanford.edu/iiif/image-api/1.1/context.json");
    assert_string_equal(str(d, "@id"), "http://h/iiif/1/a.tif");
    assert_int_equal(integer(d, "width"), 1000);
    assert_int_equal(integer(d, "height"), 1000);
    const json_int_t sf[] = {1, 2, 4};
    expect_ints(json_object_get(d, "scale_factors"), sf, 3);
    assert_int_equal(integer(d, "tile_width"), 256);
    assert_int_equal(integer(d, "tile_height"), 256);
    const char *formats[] = {"jpg", "png", "webp"};
    expect_strings(json_object_get(d, "formats"), formats, 3);
    const char *qualities[] = {"native", "color", "grey", "bitonal"};
    expect_strings(json_object_get(d, "qualities"), qualities, 4);
    assert_string_equal(str(d, "profile"),
                        "http://library.stanford.edu/iiif/image-api/1.1/compliance.html#level2");
    assert_null(json_object_get(d, "tiles"));
    json_decref(d);
}

static void test_ids_are_escaped(void **state)
{
    (void)state;
    struct ts_image_info info = pyramid();
    struct ts_limits opt = options();
    const char *id = "http://h/iiif/3/a\"b\\c\n</script>\xc3\xa9\xe6\x97\xa5.tif";
    for (int v = 1; v <= 3; v++) {
        char *text;
        json_t *d = info_doc(v, id, &info, &opt, 512, &text);
        assert_string_equal(str(d, v == 3 ? "id" : "@id"), id);
        assert_null(strstr(text, "a\"b")); /* the quote went out escaped */
        free(text);
        json_decref(d);
    }
}

static void test_bad_input_is_refused(void **state)
{
    (void)state;
    struct ts_image_info info = pyramid();
    struct ts_limits opt = options();
    struct ts_err err;
    char *json = (char *)1;
    struct iiif_info_params p = {3, "http://h/\xff\xfe", &info, &opt, 512, NULL, NULL};
    assert_int_equal(iiif_info_json(&p, &json, &err), TS_EINVAL);
    assert_null(json);
    p.id = "x";
    p.version = 4;
    assert_int_equal(iiif_info_json(&p, &json, &err), TS_EINVAL);
    p.version = 3;
    p.id = NULL;
    assert_int_equal(iiif_info_json(&p, &json, &err), TS_EINVAL);
}

static void test_scale_factors_from_levels_and_tiles(void **state)
{
    (void)state;
    uint32_t f[32];
    struct ts_image_info info = pyramid();
    int n = iiif_scale_factors(&info, 256, 256, f, 32);
    assert_int_equal(n, 3);
    assert_int_equal(f[0], 1);
    assert_int_equal(f[1], 2);
    assert_int_equal(f[2], 4);

    /* Untiled: extended until the image fits one tile (1411 / 8 = 177 <= 256). */
    struct ts_image_info big = untiled(1411, 1411);
    n = iiif_scale_factors(&big, 256, 256, f, 32);
    assert_int_equal(n, 4);
    assert_int_equal(f[3], 8);
    /* Non-square tiles: the height decides here (3000 / 16 = 188 > 128, / 32 = 94). */
    struct ts_image_info tall = untiled(1000, 3000);
    n = iiif_scale_factors(&tall, 256, 128, f, 32);
    assert_int_equal(n, 6);
    assert_int_equal(f[5], 32);
    /* A deeper real level counts even if the image already fits in a tile. */
    struct ts_image_info deep = pyramid();
    deep.nlevels = 4;
    deep.levels[3].width = deep.levels[3].height = 62; /* 1000 / 62 = 16.1 -> 16 */
    n = iiif_scale_factors(&deep, 1024, 1024, f, 32);
    assert_int_equal(n, 5);
    assert_int_equal(f[4], 16);
    /* Odd levels round to the nearest power of two, gaps are filled: 1000/333 -> 4. */
    struct ts_image_info odd = untiled(1000, 1000);
    odd.nlevels = 2;
    odd.levels[1].width = 333;
    odd.levels[1].height = 333;
    n = iiif_scale_factors(&odd, 4096, 4096, f, 32);
    assert_int_equal(n, 3);
    assert_int_equal(f[1], 2);
    assert_int_equal(f[2], 4);
    /* max is respected */
    n = iiif_scale_factors(&big, 256, 256, f, 2);
    assert_int_equal(n, 2);
    /* 1x1 image */
    struct ts_image_info dot = untiled(1, 1);
    n = iiif_scale_factors(&dot, 256, 256, f, 32);
    assert_int_equal(n, 1);
    assert_int_equal(f[0], 1);
}

static void test_non_square_native_tiles(void **state)
{
    (void)state;
    struct ts_image_info info = untiled(2000, 1000);
    info.levels[0].tile_w = 512;
    info.levels[0].tile_h = 256;
    struct ts_limits opt = options();
    json_t *d = info_doc(3, "x", &info, &opt, 1024, NULL);
    json_t *t = json_array_get(json_object_get(d, "tiles"), 0);
    assert_int_equal(integer(t, "width"), 512);
    assert_int_equal(integer(t, "height"), 256);
    const json_int_t sf[] = {1, 2, 4};
    expect_ints(json_object_get(t, "scaleFactors"), sf, 3);
    json_decref(d);
}

/* ALLOW_UPSCALING=0: neither 3.0's sizeUpscaling nor 2.1's sizeAboveFull is promised. */
static void test_no_upscaling_is_not_advertised(void **state)
{
    (void)state;
    struct ts_image_info info = pyramid();
    struct ts_limits opt = options();
    opt.max_width = 5000;
    json_t *doc = info_doc(3, "http://h/a", &info, &opt, 512, NULL);
    assert_true(has_string(json_object_get(doc, "extraFeatures"), "sizeUpscaling"));
    json_decref(doc);
    opt.no_upscaling = true;
    doc = info_doc(3, "http://h/a", &info, &opt, 512, NULL);
    assert_false(has_string(json_object_get(doc, "extraFeatures"), "sizeUpscaling"));
    assert_true(has_string(json_object_get(doc, "extraFeatures"), "sizeByWh"));
    json_decref(doc);
    doc = info_doc(2, "http://h/a", &info, &opt, 512, NULL);
    json_t *supports =
        json_object_get(json_array_get(json_object_get(doc, "profile"), 1), "supports");
    assert_false(has_string(supports, "sizeAboveFull"));
    assert_true(has_string(supports, "sizeByWh"));
    json_decref(doc);
}

static json_t *info_with(int version, const char *rights, json_t *extra)
{
    struct ts_image_info info = pyramid();
    struct ts_limits opt = options();
    struct iiif_info_params p = {version, "http://h/a", &info, &opt, 512, rights, extra};
    struct ts_err err = {0};
    char *json = NULL;
    if (iiif_info_json(&p, &json, &err) != TS_OK)
        fail_msg("iiif_info_json failed: %s", err.msg);
    json_t *doc = json_loads(json, 0, NULL);
    free(json);
    assert_non_null(doc);
    return doc;
}

/* COPYRIGHT as iipsrv writes it: 3.0 "rights", 2.1 and 1.1 "license"; escaped by jansson. */
static void test_rights_statement_goes_where_iipsrv_puts_it(void **state)
{
    (void)state;
    const char *stmt = "\"Quoted\" \\ rights \xc2\xa9";
    json_t *doc = info_with(3, stmt, NULL);
    assert_string_equal(str(doc, "rights"), stmt);
    assert_null(json_object_get(doc, "license"));
    json_decref(doc);
    doc = info_with(2, stmt, NULL);
    assert_string_equal(str(doc, "license"), stmt);
    json_decref(doc);
    doc = info_with(3, "", NULL);
    assert_null(json_object_get(doc, "rights"));
    json_decref(doc);
    /* A Latin-1 tag from a TIFF is left out, not a broken document. */
    doc = info_with(3, "\xa9 1999", NULL);
    assert_null(json_object_get(doc, "rights"));
    json_decref(doc);
}

/* IIIF_EXTRA_INFO: its members are added, and may replace optional ones, but the required
 * members stay the server's. */
static void test_extra_info_merges_without_touching_required_members(void **state)
{
    (void)state;
    json_t *extra =
        json_loads("{\"service\": [{\"id\": \"https://x/auth\"}], \"id\": \"evil\", "
                   "\"@id\": \"evil\", \"width\": 1, \"height\": 1, \"type\": \"x\", "
                   "\"protocol\": \"x\", \"profile\": \"x\", \"@context\": \"x\", "
                   "\"rights\": \"https://creativecommons.org/publicdomain/mark/1.0/\"}",
                   0, NULL);
    assert_non_null(extra);
    for (int version = 2; version <= 3; version++) {
        json_t *doc = info_with(version, "local statement", extra);
        assert_non_null(json_object_get(doc, "service"));
        assert_string_equal(str(doc, version == 3 ? "id" : "@id"), "http://h/a");
        assert_int_equal(json_integer_value(json_object_get(doc, "width")), 1000);
        assert_int_equal(json_integer_value(json_object_get(doc, "height")), 1000);
        assert_string_equal(str(doc, "protocol"), "http://iiif.io/api/image");
        assert_string_not_equal(str(doc, "@context"), "x");
        if (version == 3) {
            assert_string_equal(str(doc, "type"), "ImageService3");
            assert_string_equal(str(doc, "profile"), "level2");
            assert_string_equal(str(doc, "rights"),
                                "https://creativecommons.org/publicdomain/mark/1.0/");
        } else {
            assert_null(json_object_get(doc, "type"));
            assert_true(json_is_array(json_object_get(doc, "profile")));
        }
        json_decref(doc);
    }
    json_decref(extra);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v3_every_field),
        cmocka_unit_test(test_no_upscaling_is_not_advertised),
        cmocka_unit_test(test_rights_statement_goes_where_iipsrv_puts_it),
        cmocka_unit_test(test_extra_info_merges_without_touching_required_members),
        cmocka_unit_test(test_v3_rotation_arbitrary_and_formats_follow_options),
        cmocka_unit_test(test_v3_limits_present_when_configured),
        cmocka_unit_test(test_v3_untiled_source_uses_default_tile),
        cmocka_unit_test(test_tile_shrinks_to_fit_limits),
        cmocka_unit_test(test_v2_every_field),
        cmocka_unit_test(test_v1_every_field),
        cmocka_unit_test(test_ids_are_escaped),
        cmocka_unit_test(test_bad_input_is_refused),
        cmocka_unit_test(test_scale_factors_from_levels_and_tiles),
        cmocka_unit_test(test_non_square_native_tiles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
