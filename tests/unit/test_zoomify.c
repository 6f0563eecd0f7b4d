/* Zoomify: request parsing, level numbering from the largest one-tile level, XML, groups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "protocol/zoomify.h"

#include <string.h>

static struct iip_pyramid pyramid(uint32_t w, uint32_t h, uint32_t levels)
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
        info.levels[i].tile_w = info.levels[i].tile_h = 256;
    }
    struct iip_pyramid p;
    assert_int_equal(iip_pyramid_build(&info, 512, &p, NULL), TS_OK);
    return p;
}

static void test_parse_properties_and_tiles(void **state)
{
    (void)state;
    struct zoomify_request r;
    assert_int_equal(zoomify_parse("a/b.tif/ImageProperties.xml", &r, NULL), TS_OK);
    assert_true(r.properties);
    assert_string_equal(r.identifier, "a/b.tif");
    assert_int_equal(zoomify_parse("a/b.tif/TileGroup3/2-1-0.jpg", &r, NULL), TS_OK);
    assert_false(r.properties);
    assert_string_equal(r.identifier, "a/b.tif");
    assert_int_equal(r.group, 3);
    assert_int_equal(r.z, 2);
    assert_int_equal(r.x, 1);
    assert_int_equal(r.y, 0);
    assert_int_equal(zoomify_parse("a/b.tif/TileGroup0/2-1.jpg", &r, NULL), TS_EINVAL);
    assert_int_equal(zoomify_parse("/ImageProperties.xml", &r, NULL), TS_EINVAL);
}

static void test_properties_text_matches_iipsrv(void **state)
{
    (void)state;
    struct iip_pyramid p = pyramid(1000, 700, 3);
    struct ts_buf out = {0};
    assert_int_equal(zoomify_properties_xml(&p, &out), TS_OK);
    ts_buf_append(&out, "", 1);
    assert_string_equal((const char *)out.data,
                        "<IMAGE_PROPERTIES WIDTH=\"1000\" HEIGHT=\"700\" NUMTILES=\"12\" "
                        "NUMIMAGES=\"1\" VERSION=\"1.8\" TILESIZE=\"256\" />");
    ts_buf_free(&out);
}

static void test_levels_start_at_the_largest_single_tile_level(void **state)
{
    (void)state;
    /* A pyramid stored down to 62x43: 250x175 is the largest level that fits one tile. */
    struct iip_pyramid p = pyramid(1000, 700, 5);
    assert_int_equal(p.nres, 5);
    assert_int_equal(zoomify_discard(&p), 2);
    assert_int_equal(zoomify_levels(&p), 3);
    struct zoomify_request r;
    struct ts_plan plan;
    zoomify_parse("a/TileGroup0/0-0-0.jpg", &r, NULL);
    assert_int_equal(zoomify_tile_plan(&p, &r, &plan, NULL), TS_OK);
    assert_int_equal(plan.out_w, 250);
    assert_int_equal(plan.out_h, 175);
    zoomify_parse("a/TileGroup0/2-3-2.jpg", &r, NULL);
    assert_int_equal(zoomify_tile_plan(&p, &r, &plan, NULL), TS_OK);
    assert_int_equal(plan.out_w, 232);
    assert_int_equal(plan.out_h, 188);
    zoomify_parse("a/TileGroup0/3-0-0.jpg", &r, NULL);
    assert_int_equal(zoomify_tile_plan(&p, &r, &plan, NULL), TS_ENOTFOUND);
    zoomify_parse("a/TileGroup0/1-2-0.jpg", &r, NULL);
    assert_int_equal(zoomify_tile_plan(&p, &r, &plan, NULL), TS_ENOTFOUND);
}

static void test_tile_groups_count_tiles_from_the_smallest_level(void **state)
{
    (void)state;
    /* 8192x8192, 256 tiles: levels 1,4,16,64,256,1024 tiles -> level 5 starts at index 341. */
    struct iip_pyramid p = pyramid(8192, 8192, 6);
    assert_int_equal(zoomify_levels(&p), 6);
    assert_int_equal(zoomify_tile_group(&p, 0, 0, 0), 0);
    assert_int_equal(zoomify_tile_group(&p, 4, 15, 15), 1); /* index 85 + 255 = 340 */
    assert_int_equal(zoomify_tile_group(&p, 5, 0, 0), 1);   /* 341 */
    assert_int_equal(zoomify_tile_group(&p, 5, 0, 6), 2);   /* 341 + 192 = 533 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_properties_and_tiles),
        cmocka_unit_test(test_properties_text_matches_iipsrv),
        cmocka_unit_test(test_levels_start_at_the_largest_single_tile_level),
        cmocka_unit_test(test_tile_groups_count_tiles_from_the_smallest_level),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
