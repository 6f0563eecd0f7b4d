/* IIP: resolution ladder, command parsing, OBJ text and CVT sizes as iipsrv 1.1 gives them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "protocol/iip.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A vips-style pyramid: 1000x700 and 1411x1411 stored as halvings, 256-pixel tiles. */
static struct ts_image_info pyramid_info(uint32_t w, uint32_t h, uint32_t levels)
{
    struct ts_image_info info;
    memset(&info, 0, sizeof info);
    info.width = w;
    info.height = h;
    info.channels = 3;
    info.bits_per_sample = 8;
    info.nlevels = levels;
    for (uint32_t i = 0; i < levels; i++) {
        info.levels[i].width = w >> i;
        info.levels[i].height = h >> i;
        info.levels[i].tile_w = 256;
        info.levels[i].tile_h = 256;
    }
    return info;
}

static void test_pyramid_uses_stored_levels_smallest_first(void **state)
{
    (void)state;
    struct ts_image_info info = pyramid_info(1000, 700, 3);
    struct iip_pyramid p;
    assert_int_equal(iip_pyramid_build(&info, 512, &p, NULL), TS_OK);
    assert_int_equal(p.nres, 3);
    assert_int_equal(p.res_w[0], 250);
    assert_int_equal(p.res_h[0], 175);
    assert_int_equal(p.res_w[2], 1000);
    assert_int_equal(p.tile_w, 256);
}

static void test_pyramid_halves_an_untiled_image_until_one_tile_holds_it(void **state)
{
    (void)state;
    struct ts_image_info info = pyramid_info(3000, 1000, 1);
    info.levels[0].tile_w = info.levels[0].tile_h = 0;
    struct iip_pyramid p;
    assert_int_equal(iip_pyramid_build(&info, 512, &p, NULL), TS_OK);
    /* 3000 -> 1500 -> 750 -> 375: four resolutions, default tile 512. */
    assert_int_equal(p.nres, 4);
    assert_int_equal(p.res_w[0], 375);
    assert_int_equal(p.res_h[0], 125);
    assert_int_equal(p.tile_w, 512);
}

static void test_jtl_edge_tile_is_cut_to_the_image(void **state)
{
    (void)state;
    struct ts_image_info info = pyramid_info(1000, 700, 3);
    struct iip_pyramid p;
    iip_pyramid_build(&info, 512, &p, NULL);
    struct ts_plan plan;
    /* Resolution 1 is 500x350: 2x2 tiles, tile 3 is the bottom-right 244x94. */
    assert_int_equal(iip_tile_plan(&p, 1, 3, 0, &plan, NULL), TS_OK);
    assert_int_equal(plan.out_w, 244);
    assert_int_equal(plan.out_h, 94);
    assert_int_equal(plan.rx, 512);
    assert_int_equal(plan.ry, 512);
    assert_int_equal(plan.rw, 488);
    assert_int_equal(plan.rh, 188);
    assert_int_equal(iip_tile_plan(&p, 1, 4, 0, &plan, NULL), TS_ENOTFOUND);
    assert_int_equal(iip_tile_plan(&p, 3, 0, 0, &plan, NULL), TS_ENOTFOUND);
}

static void test_parse_collects_commands_case_insensitively(void **state)
{
    (void)state;
    struct iip_request r;
    assert_int_equal(iip_parse("fif=a%2Fb.tif&OBJ=IIP,1.0&Obj=Max-size&WID=300&Rgn=0.5,0.5,1,1"
                               "&QLT=120&ROT=!90&CVT=PNG",
                               &r, NULL),
                     TS_OK);
    assert_string_equal(r.fif, "a/b.tif");
    assert_int_equal(r.nobj, 2);
    assert_string_equal(r.objs[1], "max-size");
    assert_int_equal(r.wid, 300);
    assert_true(r.has_rgn);
    assert_true(r.rgn[2] > 0.49f && r.rgn[2] < 0.51f); /* cut at the image edge */
    assert_int_equal(r.qlt, 100);
    assert_int_equal(r.rot, 90);
    assert_true(r.flip);
    assert_int_equal(r.action, IIP_ACTION_CVT);
    assert_int_equal(r.cvt_format, TS_FORMAT_PNG);
}

static void test_parse_names_an_unknown_command(void **state)
{
    (void)state;
    struct iip_request r;
    assert_int_equal(iip_parse("FIF=a.tif&FOO=1", &r, NULL), TS_EINVAL);
    assert_string_equal(r.bad_command, "FOO");
    assert_int_equal(iip_parse("FIF=a.tif&JTL=2", &r, NULL), TS_EINVAL);
    assert_int_equal(iip_parse("FIF=a.tif&JTL=2,7", &r, NULL), TS_OK);
    assert_int_equal(r.jtl_res, 2);
    assert_int_equal(r.jtl_tile, 7);
}

static void test_obj_text_matches_iipsrv_byte_for_byte(void **state)
{
    (void)state;
    struct ts_image_info info = pyramid_info(1000, 700, 3);
    struct iip_pyramid p;
    iip_pyramid_build(&info, 512, &p, NULL);
    struct iip_request r;
    iip_parse("FIF=x&obj=IIP,1.0&obj=Max-size&obj=Tile-size&obj=Resolution-number"
              "&obj=Vertical-views&obj=Horizontal-views&obj=bits-per-channel"
              "&obj=min-max-sample-values&obj=colorspace&obj=resolutions",
              &r, NULL);
    struct ts_buf out = {0};
    assert_int_equal(iip_obj_text(&r, &p, &info, &out, NULL), TS_OK);
    ts_buf_append(&out, "", 1);
    assert_string_equal((const char *)out.data,
                        "IIP:1.0\r\nMax-size:1000 700\r\nTile-size:256 256\r\n"
                        "Resolution-number:3\r\nVertical-views:90\r\nHorizontal-views:0\r\n"
                        "Bits-per-channel:8\r\n"
                        "Min-Max-sample-values: 0  255  0  255  0  255\r\n"
                        "Colorspace,0-2,0:0 0 3 3 0 1 2\r\n"
                        "Resolutions:250 175,500 350,1000 700\r\n");
    ts_buf_free(&out);
}

static void test_obj_without_protocol_starts_with_an_empty_line(void **state)
{
    (void)state;
    struct ts_image_info info = pyramid_info(64, 64, 1);
    info.channels = 1;
    struct iip_pyramid p;
    iip_pyramid_build(&info, 256, &p, NULL);
    struct iip_request r;
    iip_parse("FIF=x&obj=colorspace&obj=iip-server", &r, NULL);
    struct ts_buf out = {0};
    assert_int_equal(iip_obj_text(&r, &p, &info, &out, NULL), TS_OK);
    ts_buf_append(&out, "", 1);
    assert_string_equal((const char *)out.data,
                        "\r\nColorspace,0-0,0:0 0 1 1 0\r\nIIP-server:3.65\r\n");
    iip_parse("FIF=x&obj=nonsense", &r, NULL);
    assert_int_equal(iip_obj_text(&r, &p, &info, &out, NULL), TS_EINVAL);
    ts_buf_free(&out);
}

/* Expected sizes were measured on Debian's iipsrv 1.1 with the same pyramids. */
static void check_cvt(uint32_t w, uint32_t h, uint32_t levels, const char *query, uint32_t ew,
                      uint32_t eh)
{
    struct ts_image_info info = pyramid_info(w, h, levels);
    struct iip_pyramid p;
    iip_pyramid_build(&info, 512, &p, NULL);
    struct iip_request r;
    assert_int_equal(iip_parse(query, &r, NULL), TS_OK);
    struct ts_plan plan;
    assert_int_equal(iip_cvt_plan(&p, &r, 5000, &plan, NULL), TS_OK);
    if (plan.out_w != ew || plan.out_h != eh)
        fail_msg("%s: got %ux%u, iipsrv gives %ux%u", query, plan.out_w, plan.out_h, ew, eh);
}

static void test_cvt_sizes_match_iipsrv(void **state)
{
    (void)state;
    check_cvt(1000, 700, 3, "FIF=x&CVT=jpeg", 1000, 700);
    check_cvt(1000, 700, 3, "FIF=x&HEI=200&CVT=jpeg", 286, 200);
    check_cvt(1000, 700, 3, "FIF=x&WID=300&HEI=300&CVT=jpeg", 300, 210);
    check_cvt(1000, 700, 3, "FIF=x&RGN=0.1,0.2,0.3,0.4&CVT=jpeg", 750, 700);
    check_cvt(1000, 700, 3, "FIF=x&RGN=0.2,0.1,0.6,0.05&WID=400&CVT=jpeg", 394, 23);
    check_cvt(1000, 700, 3, "FIF=x&RGN=0,0,1,0.3&WID=200&CVT=jpeg", 198, 42);
    check_cvt(1000, 700, 3, "FIF=x&WID=7000&CVT=jpeg", 5000, 3500);
    check_cvt(1411, 1411, 4, "FIF=x&RGN=0,0,0.5,1&HEI=200&CVT=jpeg", 100, 199);
    check_cvt(1411, 1411, 4, "FIF=x&RGN=0,0,1,0.3&WID=200&CVT=jpeg", 199, 60);
    check_cvt(1411, 1411, 4, "FIF=x&RGN=0.3,0.3,0.333,0.271&HEI=77&CVT=jpeg", 95, 77);
}

static void test_cvt_region_and_rotation_reach_the_plan(void **state)
{
    (void)state;
    struct ts_image_info info = pyramid_info(1000, 700, 3);
    struct iip_pyramid p;
    iip_pyramid_build(&info, 512, &p, NULL);
    struct iip_request r;
    iip_parse("FIF=x&RGN=0.25,0.5,0.5,0.5&WID=200&ROT=270&CVT=jpeg", &r, NULL);
    struct ts_plan plan;
    assert_int_equal(iip_cvt_plan(&p, &r, 0, &plan, NULL), TS_OK);
    assert_int_equal(plan.rx, 250);
    assert_int_equal(plan.ry, 350);
    assert_int_equal(plan.rw, 500);
    assert_int_equal(plan.rh, 350);
    assert_int_equal(plan.out_w, 200);
    assert_int_equal(plan.out_h, 140);
    assert_true(plan.rotation == 270.0);
}

/* The OBJ answer to query for info (a 1000x700 three-level pyramid unless changed), with
 * its MIME type. */
static const char *obj_answer(const struct ts_image_info *info, const char *query,
                              const char **type)
{
    static char text[4096];
    struct iip_pyramid p;
    assert_int_equal(iip_pyramid_build(info, 512, &p, NULL), TS_OK);
    struct iip_request r;
    assert_int_equal(iip_parse(query, &r, NULL), TS_OK);
    struct ts_buf out = {0};
    struct ts_err err = {0};
    int rc = iip_obj_answer(&r, &p, info, NULL, &out, type, &err);
    if (rc != TS_OK)
        fail_msg("%s: %d (%s)", query, rc, err.msg);
    snprintf(text, sizeof text, "%.*s", (int)out.len, out.data ? (const char *)out.data : "");
    ts_buf_free(&out);
    return text;
}

/* The same, for objects answered in IIP's own type. */
static const char *obj_iip(const struct ts_image_info *info, const char *query)
{
    const char *type = NULL;
    const char *text = obj_answer(info, query, &type);
    assert_string_equal(type, "application/vnd.netfpx");
    return text;
}

static const char meta_tags[] = "creator\0Ada\0date\0"
                                "2024:01:02 03:04:05\0"
                                "description\0A \"quoted\" map\0make\0Phase One\0"
                                "rights\0CC-BY\0scale\0"
                                "0.5\0software\0vips\0title\0Map\0"
                                "xmp\0<x:xmpmeta/>\0";

static struct ts_image_info tagged_info(void)
{
    struct ts_image_info info = pyramid_info(1000, 700, 3);
    info.meta = meta_tags;
    info.meta_len = sizeof meta_tags - 1;
    return info;
}

/* iipmooviewer's metadata request, objects in any letter case. */
static void test_obj_answers_iipmooviewers_request_with_dpi(void **state)
{
    (void)state;
    struct ts_image_info info = pyramid_info(1000, 700, 3);
    info.dpi_x = 300.0f;
    info.dpi_y = 150.0f;
    info.dpi_unit = 1;
    assert_string_equal(obj_iip(&info, "FIF=x&obj=IIP,1.0&obj=Max-size&obj=Tile-size"
                                       "&obj=Resolution-number&obj=Resolutions&obj=dpi"),
                        "IIP:1.0\r\nMax-size:1000 700\r\nTile-size:256 256\r\n"
                        "Resolution-number:3\r\nResolutions:250 175,500 350,1000 700\r\n"
                        "DPI:11811.023438 5905.511719\r\n");
    assert_string_equal(obj_iip(&info, "FIF=x&OBJ=iip,1.0&obj=MAX-SIZE&obj=dPi"),
                        "IIP:1.0\r\nMax-size:1000 700\r\nDPI:11811.023438 5905.511719\r\n");
}

/* iipsrv reports pixels per metre whatever the file's unit; no line without a resolution. */
static void test_obj_dpi_is_pixels_per_metre_or_nothing(void **state)
{
    (void)state;
    struct ts_image_info info = pyramid_info(1000, 700, 3);
    assert_string_equal(obj_iip(&info, "FIF=x&obj=dpi"), "\r\n");
    info.dpi_x = info.dpi_y = 40.0f;
    info.dpi_unit = 2;
    assert_string_equal(obj_iip(&info, "FIF=x&obj=dpi"), "\r\nDPI:4000.000000 4000.000000\r\n");
    info.dpi_unit = 0;
    assert_string_equal(obj_iip(&info, "FIF=x&obj=dpi"), "\r\nDPI:40.000000 40.000000\r\n");
}

static void test_obj_server_objects_and_basic_info(void **state)
{
    (void)state;
    struct ts_image_info info = pyramid_info(1000, 700, 3);
    assert_string_equal(obj_iip(&info, "FIF=x&obj=iip-server"), "\r\nIIP-server:3.65\r\n");
    assert_string_equal(
        obj_iip(&info, "FIF=x&obj=iip-opt-comm"),
        "\r\nIIP-opt-comm:CVT CNT QLT JTL JTLS WID HEI RGN MINMAX SHD CMP INV CTW\r\n");
    assert_string_equal(obj_iip(&info, "FIF=x&obj=iip-opt-obj"),
                        "\r\nIIP-opt-obj:Horizontal-views Vertical-views Tile-size "
                        "Bits-per-channel Min-Max-sample-values Resolutions\r\n");
    assert_string_equal(obj_iip(&info, "FIF=x&obj=basic-info"),
                        "\r\nIIP-server:3.65\r\nMax-size:1000 700\r\nResolution-number:3\r\n"
                        "Colorspace,0-2,0:0 0 3 3 0 1 2\r\n");
    /* Any "iip,<version>" asks for the protocol line. */
    assert_string_equal(obj_iip(&info, "FIF=x&obj=iip,1.3"), "IIP:1.0\r\n");
}

static void test_obj_geometry_objects(void **state)
{
    (void)state;
    struct ts_image_info info = pyramid_info(1000, 700, 3);
    assert_string_equal(obj_iip(&info, "FIF=x&obj=max-size&ROT=90"), "\r\nMax-size:700 1000\r\n");
    assert_string_equal(obj_iip(&info, "FIF=x&obj=tile-size"), "\r\nTile-size:256 256\r\n");
    assert_string_equal(obj_iip(&info, "FIF=x&obj=resolution-number"),
                        "\r\nResolution-number:3\r\n");
    assert_string_equal(obj_iip(&info, "FIF=x&obj=resolutions"),
                        "\r\nResolutions:250 175,500 350,1000 700\r\n");
    assert_string_equal(obj_iip(&info, "FIF=x&obj=horizontal-views&obj=vertical-views"),
                        "\r\nHorizontal-views:0\r\nVertical-views:90\r\n");
    /* A single image is no stack: nothing, as iipsrv answers. */
    assert_string_equal(obj_iip(&info, "FIF=x&obj=stack"), "\r\n");
}

static void test_obj_samples_and_colorspace(void **state)
{
    (void)state;
    struct ts_image_info info = pyramid_info(64, 64, 1);
    info.channels = 1;
    info.bits_per_sample = 16;
    assert_string_equal(obj_iip(&info, "FIF=x&obj=bits-per-channel"),
                        "\r\nBits-per-channel:16\r\n");
    assert_string_equal(obj_iip(&info, "FIF=x&obj=min-max-sample-values"),
                        "\r\nMin-Max-sample-values: 0  65535\r\n");
    /* Values from the file's SMin/SMaxSampleValue, a zero maximum meaning the full range. */
    info.channels = 2;
    info.has_sample_range = true;
    info.sample_min[0] = 12.5;
    info.sample_max[0] = 4000;
    info.sample_min[1] = 1;
    assert_string_equal(obj_iip(&info, "FIF=x&obj=min-max-sample-values"),
                        "\r\nMin-Max-sample-values: 12.5  4000  1  65535\r\n");
    assert_string_equal(obj_iip(&info, "FIF=x&obj=colorspace,1-2,0:0"),
                        "\r\nColorspace,0-0,0:0 0 1 1 0\r\n");
    info.channels = 4;
    assert_string_equal(obj_iip(&info, "FIF=x&obj=Colorspace,*,*"),
                        "\r\nColorspace,0-0,0:0 0 3 3 0 1 2\r\n");
}

/* Tags answer alone, as text (XMP as XML), as iipsrv 1.3 does; missing ones answer nothing. */
static void test_obj_metadata_fields_are_plain_text(void **state)
{
    (void)state;
    struct ts_image_info info = tagged_info();
    const char *type = NULL;
    static const struct {
        const char *obj, *text;
    } cases[] = {
        {"rights", "CC-BY\r\n"},  {"title", "Map\r\n"},
        {"creator", "Ada\r\n"},   {"date", "2024:01:02 03:04:05\r\n"},
        {"software", "vips\r\n"}, {"make", "Phase One\r\n"},
        {"scale", "0.5\r\n"},     {"description", "A \"quoted\" map\r\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char query[64];
        snprintf(query, sizeof query, "FIF=x&obj=%s", cases[i].obj);
        assert_string_equal(obj_answer(&info, query, &type), cases[i].text);
        assert_string_equal(type, "text/plain");
    }
    assert_string_equal(obj_answer(&info, "FIF=x&obj=xmp", &type), "<x:xmpmeta/>\r\n");
    assert_string_equal(type, "application/xml");
    assert_string_equal(obj_answer(&info, "FIF=x&obj=summary-info", &type),
                        "CC-BY\r\nA \"quoted\" map\r\nAda\r\n2024:01:02 03:04:05\r\nvips\r\n");
    assert_string_equal(type, "text/plain");
    /* Fields no TIFF tag fills, and a model this image lacks. */
    assert_string_equal(obj_iip(&info, "FIF=x&obj=model&obj=keywords&obj=comment&obj=last-author"
                                       "&obj=rev-number&obj=edit-time&obj=last-printed"
                                       "&obj=last-save-dtm"),
                        "\r\n");
}

static void test_obj_metadata_is_one_json_object_without_xmp(void **state)
{
    (void)state;
    struct ts_image_info info = tagged_info();
    const char *type = NULL;
    assert_string_equal(obj_answer(&info, "FIF=x&obj=metadata", &type),
                        "{\n \"creator\": \"Ada\",\n \"date\": \"2024:01:02 03:04:05\",\n"
                        " \"description\": \"A \\\"quoted\\\" map\",\n \"make\": \"Phase One\",\n"
                        " \"rights\": \"CC-BY\",\n \"scale\": \"0.5\",\n \"software\": \"vips\",\n"
                        " \"title\": \"Map\"\n}\r\n");
    assert_string_equal(type, "application/json");
    struct ts_image_info bare = pyramid_info(10, 10, 1);
    assert_string_equal(obj_answer(&bare, "FIF=x&obj=metadata", &type), "{}\r\n");
}

static void test_obj_unknown_object_is_named(void **state)
{
    (void)state;
    struct ts_image_info info = pyramid_info(10, 10, 1);
    struct iip_pyramid p;
    iip_pyramid_build(&info, 512, &p, NULL);
    struct iip_request r;
    iip_parse("FIF=x&obj=IIP,1.0&obj=Max-size&obj=Shoe-size", &r, NULL);
    struct ts_buf out = {0};
    struct ts_err err = {0};
    assert_int_equal(iip_obj_answer(&r, &p, &info, NULL, &out, NULL, &err), TS_EINVAL);
    assert_string_equal(err.msg, "shoe-size");
    ts_buf_free(&out);
}

/* iipsrv opens prefix + name + FILESYSTEM_SUFFIX; the root is the prefix. */
static void test_identifier_joins_the_suffix_and_reads_the_page_delimiter(void **state)
{
    (void)state;
    static const struct {
        const char *name, *suffix, *delimiter, *want;
    } cases[] = {
        {"retina", ".tif", "", "retina.tif"},
        {"/retina", "_pyr.tif", "", "/retina_pyr.tif"},
        {"dir/a.tif", "", "", "dir/a.tif"},
        /* iipsrv counts pages from 0; Tessera's own ";n" from 1. */
        {"scan.tif;0", "", ";", "scan.tif;1"},
        {"scan;3", ".tif", ";", "scan.tif;4"},
        {"a:b.tif::12", "", "::", "a:b.tif;13"},
        {"a_1_2", "", "_", "a_1;3"},
        /* Not a page number: the delimiter is part of the name. */
        {"a;b.tif", "", ";", "a;b.tif"},
        {"scan.tif;", "", ";", "scan.tif;"},
        {"scan.tif;1234567", "", ";", "scan.tif;1234567"},
        {"scan.tif;2", "", "", "scan.tif;2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ts_buf out = {0};
        assert_int_equal(
            iip_identifier(cases[i].name, cases[i].suffix, cases[i].delimiter, &out, NULL), TS_OK);
        assert_int_equal(ts_buf_append(&out, "", 1), TS_OK);
        if (strcmp((const char *)out.data, cases[i].want) != 0)
            fail_msg("%s + %s (delimiter '%s') gave '%s', expected '%s'", cases[i].name,
                     cases[i].suffix, cases[i].delimiter, (const char *)out.data, cases[i].want);
        ts_buf_free(&out);
    }
}

/* CNT=eq and CNT=st as iipsrv reads them: a stretch is a contrast setting a later number
 * replaces; equalisation stays beside either. Other words are refused, negatives too. */
static void test_parse_contrast_equalize_and_stretch(void **state)
{
    (void)state;
    struct iip_request r;
    assert_int_equal(iip_parse("FIF=a.tif&CNT=eq&JTL=1,0", &r, NULL), TS_OK);
    assert_true(r.adjust.on && r.adjust.equalize && !r.adjust.stretch);
    assert_false(r.adjust.have_hist); /* the core supplies it */
    assert_int_equal(iip_parse("FIF=a.tif&CNT=Equalization&CNT=ST", &r, NULL), TS_OK);
    assert_true(r.adjust.equalize && r.adjust.stretch);
    assert_int_equal(iip_parse("FIF=a.tif&CNT=stretch&CNT=1.5", &r, NULL), TS_OK);
    assert_false(r.adjust.stretch);
    assert_true(r.adjust.contrast == 1.5f);
    assert_int_equal(iip_parse("FIF=a.tif&CNT=flat", &r, NULL), TS_EINVAL);
    assert_string_equal(r.bad_command, "CNT");
    assert_int_equal(iip_parse("FIF=a.tif&CNT=-1", &r, NULL), TS_EINVAL);
}

/* SHD=h,v with atoi's reading of each angle; with one value iipsrv shades nothing. */
static void test_parse_shade(void **state)
{
    (void)state;
    struct iip_request r;
    assert_int_equal(iip_parse("FIF=a.tif&SHD=30,60", &r, NULL), TS_OK);
    assert_true(r.adjust.on && r.adjust.shade);
    assert_int_equal(r.adjust.shade_h, 30);
    assert_int_equal(r.adjust.shade_v, 60);
    assert_int_equal(iip_parse("FIF=a.tif&SHD=-45x,x", &r, NULL), TS_OK);
    assert_true(r.adjust.shade);
    assert_int_equal(r.adjust.shade_h, -45);
    assert_int_equal(r.adjust.shade_v, 0);
    assert_int_equal(iip_parse("FIF=a.tif&SHD=30", &r, NULL), TS_OK);
    assert_false(r.adjust.shade);
    assert_false(r.adjust.on);
    assert_int_equal(iip_parse("FIF=a.tif&SHD=", &r, NULL), TS_OK);
    assert_false(r.adjust.shade);
}

/* LYR: atoi's count; none, zero or negative decode every layer (0). SDS is still accepted. */
static void test_parse_layers_and_sds(void **state)
{
    (void)state;
    struct iip_request r;
    assert_int_equal(iip_parse("FIF=a.jp2&LYR=3&JTL=0,0", &r, NULL), TS_OK);
    assert_int_equal(r.layers, 3);
    assert_false(r.adjust.on); /* layers change the decode, not the pixels after it */
    static const char *const all[] = {"FIF=a.jp2&LYR=", "FIF=a.jp2&LYR=0", "FIF=a.jp2&LYR=-2",
                                      "FIF=a.jp2&LYR=many"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        assert_int_equal(iip_parse(all[i], &r, NULL), TS_OK);
        assert_int_equal(r.layers, 0);
    }
    assert_int_equal(iip_parse("FIF=a.jp2&LYR=999999999999", &r, NULL), TS_OK);
    assert_true(r.layers > 256);
    assert_int_equal(iip_parse("FIF=a.tif&SDS=0,90&JTL=0,0", &r, NULL), TS_OK);
}

/* MINMAX=c:min,max in source units becomes a range in fractions of the full sample range, for
 * that channel alone ("-" for every one); others keep the full range (or the image's tags);
 * a channel the image lacks is ignored. */
static void test_minmax_ranges_in_the_plan(void **state)
{
    (void)state;
    struct iip_request r;
    struct ts_image_info info = pyramid_info(100, 100, 1);
    info.bits_per_sample = 16;
    assert_int_equal(iip_parse("FIF=a.tif&MINMAX=1:1000,9000&MINMAX=7:0,5", &r, NULL), TS_OK);
    assert_int_equal(r.nminmax, 2);
    struct ts_adjust a;
    memset(&a, 0, sizeof a);
    iip_minmax_adjust(&r, &info, &a);
    assert_true(a.on && a.range);
    assert_true(a.gamma == 1.0f && a.contrast == 1.0f);
    assert_true(fabsf(a.range_lo[1] - 1000.0f / 65535.0f) < 1e-6f);
    assert_true(fabsf(a.range_hi[1] - 9000.0f / 65535.0f) < 1e-6f);
    assert_true(a.range_lo[0] == 0.0f && a.range_hi[0] == 1.0f);
    assert_true(a.range_lo[2] == 0.0f && a.range_hi[2] == 1.0f);

    info.bits_per_sample = 8;
    info.has_sample_range = true;
    for (int c = 0; c < 3; c++) {
        info.sample_min[c] = 10.0;
        info.sample_max[c] = 200.0;
    }
    assert_int_equal(iip_parse("FIF=a.tif&MINMAX=0:51,102", &r, NULL), TS_OK);
    memset(&a, 0, sizeof a);
    iip_minmax_adjust(&r, &info, &a);
    assert_true(fabsf(a.range_lo[0] - 0.2f) < 1e-6f && fabsf(a.range_hi[0] - 0.4f) < 1e-6f);
    assert_true(fabsf(a.range_lo[2] - 10.0f / 255.0f) < 1e-6f);
    assert_true(fabsf(a.range_hi[2] - 200.0f / 255.0f) < 1e-6f);

    assert_int_equal(iip_parse("FIF=a.tif&MINMAX=-:0,127.5", &r, NULL), TS_OK);
    assert_int_equal(r.minmax[0].channel, -1);
    memset(&a, 0, sizeof a);
    iip_minmax_adjust(&r, &info, &a);
    for (int c = 0; c < 3; c++)
        assert_true(fabsf(a.range_hi[c] - 0.5f) < 1e-6f && a.range_lo[c] == 0.0f);

    /* Only channels the image lacks (a negative number is one): nothing changes. */
    assert_int_equal(iip_parse("FIF=a.tif&MINMAX=-1:0,1", &r, NULL), TS_OK);
    memset(&a, 0, sizeof a);
    iip_minmax_adjust(&r, &info, &a);
    assert_false(a.on);
    assert_int_equal(iip_parse("FIF=a.tif&MINMAX=3:0,1", &r, NULL), TS_OK);
    memset(&a, 0, sizeof a);
    iip_minmax_adjust(&r, &info, &a);
    assert_false(a.on);
    assert_false(a.range);
}

/* SDS: iipsrv's view 0, 90 unless given; "h" alone sets the vertical angle to 0. OBJ lists a
 * sequence's views, and a single image's as 0 and 90. */
static void test_sds_and_the_views_objects(void **state)
{
    (void)state;
    struct iip_request r;
    assert_int_equal(iip_parse("FIF=seq&JTL=0,0", &r, NULL), TS_OK);
    assert_int_equal(r.sds_h, 0);
    assert_int_equal(r.sds_v, 90);
    assert_int_equal(iip_parse("FIF=seq&SDS=40,10&JTL=0,0", &r, NULL), TS_OK);
    assert_int_equal(r.sds_h, 40);
    assert_int_equal(r.sds_v, 10);
    assert_int_equal(iip_parse("FIF=seq&SDS=40", &r, NULL), TS_OK);
    assert_int_equal(r.sds_h, 40);
    assert_int_equal(r.sds_v, 0);

    struct ts_image_info info = pyramid_info(100, 100, 1);
    struct iip_pyramid p;
    assert_int_equal(iip_pyramid_build(&info, 256, &p, NULL), TS_OK);
    assert_int_equal(iip_parse("FIF=seq&OBJ=Horizontal-views&OBJ=Vertical-views", &r, NULL), TS_OK);
    struct source_views *v = calloc(1, sizeof *v);
    assert_non_null(v);
    v->nh = 3;
    v->h[0] = 0;
    v->h[1] = 15;
    v->h[2] = 30;
    struct ts_buf out = {0};
    assert_int_equal(iip_obj_answer(&r, &p, &info, v, &out, NULL, NULL), TS_OK);
    assert_int_equal(ts_buf_append(&out, "", 1), TS_OK);
    /* No vertical view: iipsrv cuts the colon, the last character it wrote. */
    assert_string_equal((const char *)out.data,
                        "\r\nHorizontal-views:0 15 30\r\nVertical-views\r\n");
    ts_buf_free(&out);
    assert_int_equal(iip_obj_answer(&r, &p, &info, NULL, &out, NULL, NULL), TS_OK);
    assert_int_equal(ts_buf_append(&out, "", 1), TS_OK);
    assert_string_equal((const char *)out.data, "\r\nHorizontal-views:0\r\nVertical-views:90\r\n");
    ts_buf_free(&out);
    free(v);
}

/* SPECTRA and PFL read their numbers as iipsrv's atoi does; ICC is accepted and does nothing;
 * TIL and ATL are refused as unsupported. */
static void test_parse_spectra_pfl_and_the_refused_commands(void **state)
{
    (void)state;
    struct iip_request r;
    assert_int_equal(iip_parse("FIF=a.tif&SPECTRA=2,5,10,-3", &r, NULL), TS_OK);
    assert_int_equal(r.action, IIP_ACTION_SPECTRA);
    int32_t want_s[4] = {2, 5, 10, -3};
    assert_memory_equal(r.spectra, want_s, sizeof want_s);

    assert_int_equal(iip_parse("FIF=a.tif&PFL=3:10,20-40,20", &r, NULL), TS_OK);
    assert_int_equal(r.action, IIP_ACTION_PFL);
    int32_t want_line[5] = {3, 10, 20, 40, 20};
    assert_memory_equal(r.pfl, want_line, sizeof want_line);
    /* No "-": one point. */
    assert_int_equal(iip_parse("FIF=a.tif&pfl=1:7,8", &r, NULL), TS_OK);
    int32_t want_point[5] = {1, 7, 8, 7, 8};
    assert_memory_equal(r.pfl, want_point, sizeof want_point);
    /* No delimiter at all: each field reads the same text again, as iipsrv's parser does. */
    assert_int_equal(iip_parse("FIF=a.tif&PFL=4", &r, NULL), TS_OK);
    int32_t want_same[5] = {4, 4, 4, 4, 4};
    assert_memory_equal(r.pfl, want_same, sizeof want_same);
    /* A negative y1 starts with the "-" PFL splits on: atoi of nothing, 0, as in iipsrv. */
    assert_int_equal(iip_parse("FIF=a.tif&PFL=1:5,-2,9", &r, NULL), TS_OK);
    int32_t want_neg[5] = {1, 5, 0, 2, 9};
    assert_memory_equal(r.pfl, want_neg, sizeof want_neg);

    struct iip_request plain;
    assert_int_equal(iip_parse("FIF=a.tif&ICC=3,abc&JTL=1,2", &r, NULL), TS_OK);
    assert_int_equal(iip_parse("FIF=a.tif&JTL=1,2", &plain, NULL), TS_OK);
    assert_memory_equal(&r, &plain, sizeof r);

    struct ts_err err = {0};
    assert_int_equal(iip_parse("FIF=a.tif&TIL=1,0-3", &r, &err), TS_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "TIL"));
    assert_int_equal(iip_parse("FIF=a.tif&ATL=1,0", &r, &err), TS_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "AVIF"));
}

/* The pixels each reads: SPECTRA the tile (its point checked against the nominal tile size
 * first), PFL the line from its first point, x2 and y2 not included, horizontal when x grows. */
static void test_spectra_and_pfl_plans(void **state)
{
    (void)state;
    struct ts_image_info info = pyramid_info(1000, 700, 3);
    struct iip_pyramid p;
    assert_int_equal(iip_pyramid_build(&info, 256, &p, NULL), TS_OK);
    struct iip_request r;
    struct ts_plan plan;
    struct ts_err err = {0};
    uint32_t full = p.nres - 1;
    char q[128];

    snprintf(q, sizeof q, "FIF=a&SPECTRA=%u,5,10,20", full);
    assert_int_equal(iip_parse(q, &r, NULL), TS_OK);
    assert_int_equal(iip_samples_plan(&p, &r, &info, &plan, &err), TS_OK);
    /* Tile 5 of a 4-column grid: column 1, row 1. */
    assert_int_equal(plan.rx, 256);
    assert_int_equal(plan.ry, 256);
    assert_int_equal(plan.out_w, 256);
    assert_int_equal(plan.out_h, 256);
    snprintf(q, sizeof q, "FIF=a&SPECTRA=%u,5,256,0", full);
    iip_parse(q, &r, NULL);
    assert_int_equal(iip_samples_plan(&p, &r, &info, &plan, &err), TS_EINVAL);
    assert_string_equal(err.msg, "SPECTRA :: Error: x,y coordinates outside of tile boundaries");
    snprintf(q, sizeof q, "FIF=a&SPECTRA=%u,99,0,0", full);
    iip_parse(q, &r, NULL);
    assert_int_equal(iip_samples_plan(&p, &r, &info, &plan, &err), TS_ENOTFOUND);
    snprintf(q, sizeof q, "FIF=a&SPECTRA=%u,0,0,0", p.nres);
    iip_parse(q, &r, NULL);
    assert_int_equal(iip_samples_plan(&p, &r, &info, &plan, &err), TS_ENOTFOUND);

    snprintf(q, sizeof q, "FIF=a&PFL=%u:10,20-40,30", full);
    iip_parse(q, &r, NULL);
    assert_int_equal(iip_samples_plan(&p, &r, &info, &plan, &err), TS_OK);
    assert_int_equal(plan.rx, 10);
    assert_int_equal(plan.ry, 20);
    assert_int_equal(plan.out_w, 30);
    assert_int_equal(plan.out_h, 1);
    snprintf(q, sizeof q, "FIF=a&PFL=%u:10,20-5,60", full);
    iip_parse(q, &r, NULL);
    assert_int_equal(iip_samples_plan(&p, &r, &info, &plan, &err), TS_OK);
    assert_int_equal(plan.out_w, 1);
    assert_int_equal(plan.out_h, 40);
    snprintf(q, sizeof q, "FIF=a&PFL=%u:0,0-1001,0", full);
    iip_parse(q, &r, NULL);
    assert_int_equal(iip_samples_plan(&p, &r, &info, &plan, &err), TS_EINVAL);
    assert_string_equal(err.msg, "PFL :: Invalid coordinates: 0,0-1001,0");
    snprintf(q, sizeof q, "FIF=a&PFL=%u:0,0-1,0", p.nres);
    iip_parse(q, &r, NULL);
    assert_int_equal(iip_samples_plan(&p, &r, &info, &plan, &err), TS_EINVAL);
    snprintf(q, sizeof q, "PFL :: Invalid resolution number: %u", p.nres);
    assert_string_equal(err.msg, q);

    info.bits_per_sample = 16;
    snprintf(q, sizeof q, "FIF=a&PFL=%u:0,0-1,0", full);
    iip_parse(q, &r, NULL);
    assert_int_equal(iip_samples_plan(&p, &r, &info, &plan, &err), TS_EUNSUPPORTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pyramid_uses_stored_levels_smallest_first),
        cmocka_unit_test(test_pyramid_halves_an_untiled_image_until_one_tile_holds_it),
        cmocka_unit_test(test_jtl_edge_tile_is_cut_to_the_image),
        cmocka_unit_test(test_parse_collects_commands_case_insensitively),
        cmocka_unit_test(test_parse_names_an_unknown_command),
        cmocka_unit_test(test_obj_text_matches_iipsrv_byte_for_byte),
        cmocka_unit_test(test_obj_without_protocol_starts_with_an_empty_line),
        cmocka_unit_test(test_cvt_sizes_match_iipsrv),
        cmocka_unit_test(test_obj_answers_iipmooviewers_request_with_dpi),
        cmocka_unit_test(test_obj_dpi_is_pixels_per_metre_or_nothing),
        cmocka_unit_test(test_obj_server_objects_and_basic_info),
        cmocka_unit_test(test_obj_geometry_objects),
        cmocka_unit_test(test_obj_samples_and_colorspace),
        cmocka_unit_test(test_obj_metadata_fields_are_plain_text),
        cmocka_unit_test(test_obj_metadata_is_one_json_object_without_xmp),
        cmocka_unit_test(test_obj_unknown_object_is_named),
        cmocka_unit_test(test_identifier_joins_the_suffix_and_reads_the_page_delimiter),
        cmocka_unit_test(test_cvt_region_and_rotation_reach_the_plan),
        cmocka_unit_test(test_parse_contrast_equalize_and_stretch),
        cmocka_unit_test(test_parse_shade),
        cmocka_unit_test(test_parse_layers_and_sds),
        cmocka_unit_test(test_minmax_ranges_in_the_plan),
        cmocka_unit_test(test_sds_and_the_views_objects),
        cmocka_unit_test(test_parse_spectra_pfl_and_the_refused_commands),
        cmocka_unit_test(test_spectra_and_pfl_plans),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
