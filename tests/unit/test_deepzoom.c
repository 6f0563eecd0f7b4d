/* DeepZoom: request parsing, level numbering (level 0 = 1x1), .dzi text and tile plans. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "protocol/deepzoom.h"

#include <string.h>

static struct iip_pyramid wide_pyramid(void)
{
    struct ts_image_info info;
    memset(&info, 0, sizeof info);
    info.width = 1000;
    info.height = 700;
    info.channels = 3;
    info.bits_per_sample = 8;
    info.nlevels = 3;
    for (int i = 0; i < 3; i++) {
        info.levels[i].width = 1000u >> i;
        info.levels[i].height = 700u >> i;
        info.levels[i].tile_w = info.levels[i].tile_h = 256;
    }
    struct iip_pyramid p;
    assert_int_equal(iip_pyramid_build(&info, 512, &p, NULL), TS_OK);
    return p;
}

static void test_parse_splits_identifier_at_the_last_files_folder(void **state)
{
    (void)state;
    struct dz_request r;
    assert_int_equal(dz_parse("dir_files/a.tif_files/10/3_2.jpg", &r, NULL), TS_OK);
    assert_string_equal(r.identifier, "dir_files/a.tif");
    assert_false(r.dzi);
    assert_int_equal(r.level, 10);
    assert_int_equal(r.col, 3);
    assert_int_equal(r.row, 2);
    assert_int_equal(dz_parse("a/b.tif.dzi", &r, NULL), TS_OK);
    assert_true(r.dzi);
    assert_string_equal(r.identifier, "a/b.tif");
    assert_int_equal(dz_parse("a.tif_files/1/x_2.jpg", &r, NULL), TS_EINVAL);
    assert_int_equal(dz_parse("a.tif", &r, NULL), TS_EINVAL);
}

static void test_max_level_is_ceil_log2_of_the_long_side(void **state)
{
    (void)state;
    assert_int_equal(dz_max_level(1000, 700), 10);
    assert_int_equal(dz_max_level(1024, 10), 10);
    assert_int_equal(dz_max_level(1025, 10), 11);
    assert_int_equal(dz_max_level(1, 1), 0);
}

static void test_dzi_text_matches_iipsrv(void **state)
{
    (void)state;
    struct iip_pyramid p = wide_pyramid();
    struct ts_buf out = {0};
    assert_int_equal(dz_dzi_xml(&p, &out), TS_OK);
    ts_buf_append(&out, "", 1);
    assert_string_equal((const char *)out.data,
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"
                        "<Image xmlns=\"http://schemas.microsoft.com/deepzoom/2008\"\r\n"
                        "TileSize=\"256\" Overlap=\"0\" Format=\"jpg\">"
                        "<Size Width=\"1000\" Height=\"700\"/></Image>");
    ts_buf_free(&out);
}

static void test_levels_follow_the_pyramid_then_halve_to_one_pixel(void **state)
{
    (void)state;
    struct iip_pyramid p = wide_pyramid();
    uint32_t w, h;
    dz_level_size(&p, 10, &w, &h);
    assert_int_equal(w, 1000);
    assert_int_equal(h, 700);
    dz_level_size(&p, 8, &w, &h);
    assert_int_equal(w, 250);
    assert_int_equal(h, 175);
    dz_level_size(&p, 7, &w, &h); /* below the stored pyramid: ceil(1000/8) x ceil(700/8) */
    assert_int_equal(w, 125);
    assert_int_equal(h, 88);
    dz_level_size(&p, 0, &w, &h);
    assert_int_equal(w, 1);
    assert_int_equal(h, 1);
}

static void test_tile_plan_cuts_edge_tiles_and_rejects_outside(void **state)
{
    (void)state;
    struct iip_pyramid p = wide_pyramid();
    struct dz_request r;
    struct ts_plan plan;
    dz_parse("a_files/10/3_2.jpg", &r, NULL);
    assert_int_equal(dz_tile_plan(&p, &r, &plan, NULL), TS_OK);
    assert_int_equal(plan.out_w, 232);
    assert_int_equal(plan.out_h, 188);
    assert_int_equal(plan.rx, 768);
    assert_int_equal(plan.ry, 512);
    dz_parse("a_files/9/1_1.jpg", &r, NULL);
    assert_int_equal(dz_tile_plan(&p, &r, &plan, NULL), TS_OK);
    assert_int_equal(plan.out_w, 244);
    assert_int_equal(plan.out_h, 94);
    assert_int_equal(plan.rw, 488);
    dz_parse("a_files/10/4_0.jpg", &r, NULL);
    assert_int_equal(dz_tile_plan(&p, &r, &plan, NULL), TS_ENOTFOUND);
    dz_parse("a_files/11/0_0.jpg", &r, NULL);
    assert_int_equal(dz_tile_plan(&p, &r, &plan, NULL), TS_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_splits_identifier_at_the_last_files_folder),
        cmocka_unit_test(test_max_level_is_ceil_log2_of_the_long_side),
        cmocka_unit_test(test_dzi_text_matches_iipsrv),
        cmocka_unit_test(test_levels_follow_the_pyramid_then_halve_to_one_pixel),
        cmocka_unit_test(test_tile_plan_cuts_edge_tiles_and_rejects_outside),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
