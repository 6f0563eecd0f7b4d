/* The watermark: iipsrv's additive blend, its placement in blocks, the per-request draw, and
 * loading the mark with Tessera's readers. Expected pixels are worked out by hand from the
 * definition: v + round(c * a / 255 * opacity), clipped at 255. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "grid.h"
#include "render/watermark.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>

static void fill(struct ts_image *img, uint32_t w, uint32_t h, uint32_t channels, const uint8_t *px)
{
    assert_int_equal(ts_image_alloc(img, w, h, channels), TS_OK);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            memcpy(ts_image_row(img, y) + (size_t)x * channels, px, channels);
}

static uint8_t *at(const struct ts_image *img, uint32_t x, uint32_t y)
{
    return ts_image_row(img, y) + (size_t)x * img->channels;
}

static void expect_px(const struct ts_image *img, uint32_t x, uint32_t y, const uint8_t *want)
{
    const uint8_t *p = at(img, x, y);
    for (uint32_t k = 0; k < img->channels; k++)
        if (p[k] != want[k])
            fail_msg("pixel (%u,%u) channel %u is %u, expected %u", x, y, k, p[k], want[k]);
}

/* A two-pixel mark: (200, 100, 40) opaque, then the same colour at alpha 102 (0.4). */
static void two_pixel_mark(struct ts_image *mark)
{
    static const uint8_t px[4] = {200, 100, 40, 255};
    fill(mark, 2, 1, 4, px);
    at(mark, 1, 0)[3] = 102;
}

static void test_blend_adds_colour_times_alpha_times_opacity_and_clips(void **state)
{
    (void)state;
    struct ts_image img, mark;
    static const uint8_t base[3] = {10, 20, 250};
    fill(&img, 4, 1, 3, base);
    two_pixel_mark(&mark);
    assert_int_equal(render_watermark_blend(&img, &mark, 0.5, 1, 0), TS_OK);
    expect_px(&img, 0, 0, base);
    /* Opaque at half opacity: +100, +50, +20 (250 + 20 clips to 255). */
    expect_px(&img, 1, 0, (const uint8_t[]){110, 70, 255});
    /* Alpha 0.4 at half opacity, weight 0.2: +40, +20, +8. */
    expect_px(&img, 2, 0, (const uint8_t[]){50, 40, 255});
    expect_px(&img, 3, 0, base);
    ts_image_free(&img);

    /* Opacity 0.3 on the opaque pixel: 60, 30, 12; rounding 0.3 * 0.4 * (200, 100, 40) =
     * 24, 12, 4.8 -> 5. */
    static const uint8_t dark[3] = {0, 0, 0};
    fill(&img, 2, 1, 3, dark);
    assert_int_equal(render_watermark_blend(&img, &mark, 0.3, 0, 0), TS_OK);
    expect_px(&img, 0, 0, (const uint8_t[]){60, 30, 12});
    expect_px(&img, 1, 0, (const uint8_t[]){24, 12, 5});
    ts_image_free(&img);
    ts_image_free(&mark);
}

static void test_blend_of_nothing_changes_nothing(void **state)
{
    (void)state;
    struct ts_image img, mark;
    static const uint8_t base[3] = {1, 2, 3};
    static const uint8_t clear[4] = {255, 255, 255, 0};
    fill(&img, 3, 3, 3, base);
    two_pixel_mark(&mark);
    assert_int_equal(render_watermark_blend(&img, &mark, 0.0, 0, 0), TS_OK);
    ts_image_free(&mark);
    fill(&mark, 3, 3, 4, clear); /* fully transparent */
    assert_int_equal(render_watermark_blend(&img, &mark, 1.0, 0, 0), TS_OK);
    for (uint32_t y = 0; y < 3; y++)
        for (uint32_t x = 0; x < 3; x++)
            expect_px(&img, x, y, base);
    assert_int_equal(render_watermark_blend(&img, &mark, 1.5, 0, 0), TS_EINVAL);
    ts_image_free(&img);
    ts_image_free(&mark);
}

/* Gray images get the mark's BT.601 luma; an image's own alpha is kept. */
static void test_blend_on_gray_and_alpha_images(void **state)
{
    (void)state;
    struct ts_image img, mark;
    two_pixel_mark(&mark);
    /* luma(200, 100, 40) = 59.8 + 58.7 + 4.56 = 123.06; x 0.5 = 61.53 -> 62; x 0.2 = 24.6 -> 25 */
    static const uint8_t gray[1] = {100};
    fill(&img, 2, 1, 1, gray);
    assert_int_equal(render_watermark_blend(&img, &mark, 0.5, 0, 0), TS_OK);
    expect_px(&img, 0, 0, (const uint8_t[]){162});
    expect_px(&img, 1, 0, (const uint8_t[]){125});
    ts_image_free(&img);

    static const uint8_t ga[2] = {100, 7};
    fill(&img, 2, 1, 2, ga);
    assert_int_equal(render_watermark_blend(&img, &mark, 0.5, 0, 0), TS_OK);
    expect_px(&img, 0, 0, (const uint8_t[]){162, 7});
    expect_px(&img, 1, 0, (const uint8_t[]){125, 7});
    ts_image_free(&img);

    static const uint8_t rgba[4] = {0, 0, 0, 0};
    fill(&img, 2, 1, 4, rgba);
    assert_int_equal(render_watermark_blend(&img, &mark, 1.0, 0, 0), TS_OK);
    expect_px(&img, 0, 0, (const uint8_t[]){200, 100, 40, 0});
    expect_px(&img, 1, 0, (const uint8_t[]){80, 40, 16, 0}); /* 0.4 x (200, 100, 40) */
    ts_image_free(&img);
    ts_image_free(&mark);
}

/* A mark partly off the image lands only where it overlaps. */
static void test_blend_clips_to_the_image(void **state)
{
    (void)state;
    struct ts_image img, mark;
    static const uint8_t base[3] = {0, 0, 0};
    static const uint8_t white[4] = {255, 255, 255, 255};
    fill(&img, 3, 3, 3, base);
    fill(&mark, 2, 2, 4, white);
    at(&mark, 1, 1)[0] = 9; /* its bottom-right pixel, the only one inside at (-1, -1) */
    assert_int_equal(render_watermark_blend(&img, &mark, 1.0, -1, -1), TS_OK);
    expect_px(&img, 0, 0, (const uint8_t[]){9, 255, 255});
    for (uint32_t y = 0; y < 3; y++)
        for (uint32_t x = 0; x < 3; x++)
            if (x || y)
                expect_px(&img, x, y, base);
    assert_int_equal(render_watermark_blend(&img, &mark, 1.0, 2, 2), TS_OK);
    expect_px(&img, 2, 2, (const uint8_t[]){255, 255, 255});
    expect_px(&img, 1, 2, base);
    assert_int_equal(render_watermark_blend(&img, &mark, 1.0, 3, 0), TS_OK); /* wholly outside */
    assert_int_equal(render_watermark_blend(&img, &mark, 1.0, -2, 0), TS_OK);
    expect_px(&img, 0, 1, base);
    ts_image_free(&img);
    ts_image_free(&mark);
}

/* A white opaque mark of w x h at full strength, probability p. */
static void solid_mark(struct ts_watermark *wm, uint32_t w, uint32_t h, double p)
{
    static const uint8_t white[4] = {255, 255, 255, 255};
    memset(wm, 0, sizeof *wm);
    fill(&wm->mark, w, h, 4, white);
    wm->opacity = 1.0;
    wm->probability = p;
    wm->default_block = 1024;
}

/* The changed pixels of an image that was black: their count and bounding box within the
 * rectangle (x0, y0, w, h). */
struct changed {
    uint32_t count, minx, miny, maxx, maxy;
};

static struct changed changed_in(const struct ts_image *img, uint32_t x0, uint32_t y0, uint32_t w,
                                 uint32_t h)
{
    struct changed c = {0, UINT32_MAX, UINT32_MAX, 0, 0};
    for (uint32_t y = y0; y < y0 + h; y++)
        for (uint32_t x = x0; x < x0 + w; x++) {
            const uint8_t *p = at(img, x, y);
            if (!p[0] && !p[1] && !p[2])
                continue;
            c.count++;
            c.minx = x < c.minx ? x : c.minx;
            c.miny = y < c.miny ? y : c.miny;
            c.maxx = x > c.maxx ? x : c.maxx;
            c.maxy = y > c.maxy ? y : c.maxy;
        }
    return c;
}

static void black(struct ts_image *img, uint32_t w, uint32_t h)
{
    static const uint8_t zero[3] = {0, 0, 0};
    fill(img, w, h, 3, zero);
}

/* A render no larger than a block (any tile) gets one whole mark, somewhere inside it, always
 * in the same place for the same seed; other seeds move it. */
static void test_one_block_gets_one_whole_mark_placed_by_the_seed(void **state)
{
    (void)state;
    struct ts_watermark wm;
    solid_mark(&wm, 20, 10, 1.0);
    uint32_t xs[16], ys[16];
    bool moved = false;
    for (uint64_t seed = 0; seed < 16; seed++) {
        struct ts_image img, again;
        black(&img, 100, 80);
        black(&again, 100, 80);
        assert_int_equal(render_watermark_apply(&img, &wm, seed, 512), TS_OK);
        assert_int_equal(render_watermark_apply(&again, &wm, seed, 512), TS_OK);
        assert_memory_equal(img.data, again.data, img.stride * img.height);
        struct changed c = changed_in(&img, 0, 0, 100, 80);
        assert_int_equal(c.count, 20 * 10);
        assert_int_equal(c.maxx - c.minx + 1, 20);
        assert_int_equal(c.maxy - c.miny + 1, 10);
        assert_true(render_watermark_marks(&wm, seed, 100, 80, 512));
        xs[seed] = c.minx;
        ys[seed] = c.miny;
        moved = moved || xs[seed] != xs[0] || ys[seed] != ys[0];
        ts_image_free(&img);
        ts_image_free(&again);
    }
    assert_true(moved);
    ts_image_free(&wm.mark);
}

/* A larger render is cut into blocks from its top-left corner; each gets its own mark inside
 * it (iipsrv's CVT, blocks of twice the tile size). */
static void test_each_block_of_a_large_render_gets_its_own_mark(void **state)
{
    (void)state;
    struct ts_watermark wm;
    solid_mark(&wm, 20, 10, 1.0);
    struct ts_image img;
    black(&img, 300, 200);
    assert_int_equal(render_watermark_apply(&img, &wm, 42, 128), TS_OK);
    static const uint32_t bx[] = {0, 128, 256}, bw[] = {128, 128, 44};
    static const uint32_t by[] = {0, 128}, bh[] = {128, 72};
    uint32_t total = 0;
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < 3; i++) {
            struct changed c = changed_in(&img, bx[i], by[j], bw[i], bh[j]);
            if (c.count != 200 || c.maxx - c.minx != 19 || c.maxy - c.miny != 9)
                fail_msg("block (%d,%d): %u pixels in %ux%u", i, j, c.count, c.maxx - c.minx + 1,
                         c.maxy - c.miny + 1);
            total += c.count;
        }
    assert_int_equal(total, 6 * 200);
    ts_image_free(&img);
    ts_image_free(&wm.mark);
}

/* A mark larger than its block sits at the block's corner, cut at the block's edge. */
static void test_a_mark_larger_than_the_block_is_cut_to_it(void **state)
{
    (void)state;
    struct ts_watermark wm;
    solid_mark(&wm, 50, 50, 1.0);
    struct ts_image img;
    black(&img, 70, 40);
    assert_int_equal(render_watermark_apply(&img, &wm, 7, 32), TS_OK);
    /* Blocks: 32 + 32 + 6 across, 32 + 8 down; each is covered whole, and nothing spills. */
    struct changed c = changed_in(&img, 0, 0, 70, 40);
    assert_int_equal(c.count, 70 * 40);
    ts_image_free(&img);
    ts_image_free(&wm.mark);
}

/* Probability: 0 never marks, 1 always does, and in between a share of blocks near it, the
 * passthrough's question (render_watermark_marks) agreeing with what apply does. */
static void test_probability_decides_per_block_and_marks_agrees(void **state)
{
    (void)state;
    struct ts_watermark wm;
    solid_mark(&wm, 4, 4, 0.0);
    struct ts_image img;
    black(&img, 16, 16);
    assert_int_equal(render_watermark_apply(&img, &wm, 1, 64), TS_OK);
    assert_int_equal(changed_in(&img, 0, 0, 16, 16).count, 0);
    assert_false(render_watermark_marks(&wm, 1, 16, 16, 64));
    ts_image_free(&img);

    wm.probability = 0.5;
    unsigned marked = 0;
    for (uint64_t seed = 0; seed < 400; seed++) {
        black(&img, 16, 16);
        assert_int_equal(render_watermark_apply(&img, &wm, seed * 7919, 64), TS_OK);
        bool got = changed_in(&img, 0, 0, 16, 16).count == 16;
        assert_int_equal(got, render_watermark_marks(&wm, seed * 7919, 16, 16, 64));
        marked += got;
        ts_image_free(&img);
    }
    if (marked < 140 || marked > 260)
        fail_msg("probability 0.5 marked %u of 400 renders", marked);
    ts_image_free(&wm.mark);
}

static struct ts_plan plan_of(uint32_t rx, uint32_t ry, uint32_t rw, uint32_t rh, uint32_t ow,
                              uint32_t oh)
{
    struct ts_plan p;
    memset(&p, 0, sizeof p);
    p.img_w = p.img_h = 1000;
    p.rx = rx;
    p.ry = ry;
    p.rw = rw;
    p.rh = rh;
    p.out_w = ow;
    p.out_h = oh;
    return p;
}

/* The draw follows the request's image and geometry, not its format or quality. */
static void test_seed_follows_image_and_geometry_only(void **state)
{
    (void)state;
    struct ts_plan a = plan_of(0, 0, 256, 256, 256, 256), b = a;
    b.format = TS_FORMAT_PNG;
    b.quality = TS_QUALITY_GRAY;
    assert_true(render_watermark_seed("x.tif", 5, 0, &a) ==
                render_watermark_seed("x.tif", 5, 0, &b));
    assert_true(render_watermark_seed("x.tif", 5, 0, &a) !=
                render_watermark_seed("y.tif", 5, 0, &a));
    assert_true(render_watermark_seed("x.tif", 5, 0, &a) !=
                render_watermark_seed("x.tif", 5, 1, &a));
    struct ts_plan c = plan_of(256, 0, 256, 256, 256, 256);
    assert_true(render_watermark_seed("x.tif", 5, 0, &a) !=
                render_watermark_seed("x.tif", 5, 0, &c));
    c = a;
    c.rotation = 90.0;
    assert_true(render_watermark_seed("x.tif", 5, 0, &a) !=
                render_watermark_seed("x.tif", 5, 0, &c));
}

/* Blocks are twice the source's tile; untiled sources use twice the advertised tile. */
static void test_block_is_twice_the_tile(void **state)
{
    (void)state;
    struct ts_watermark wm = {.default_block = 1024};
    struct ts_image_info info = {.nlevels = 1};
    info.levels[0] = (struct ts_level){1000, 800, 256, 128};
    assert_int_equal(render_watermark_block(&wm, &info), 512);
    info.levels[0].tile_w = info.levels[0].tile_h = 0;
    assert_int_equal(render_watermark_block(&wm, &info), 1024);
}

static const char *work_path(const char *name)
{
    static char path[4096];
    assert_int_equal(tu_mkdirs(TESSERA_TEST_WORK), 0);
    snprintf(path, sizeof path, "%s/%s", TESSERA_TEST_WORK, name);
    return path;
}

/* The mark is read with Tessera's readers: RGBA as it is, gray spread to RGB and opaque. */
static void test_load_reads_rgba_and_gray_files(void **state)
{
    (void)state;
    struct ts_image src;
    struct ts_watermark wm;
    struct ts_err err = {0};
    static const uint8_t px[4] = {10, 20, 30, 40};
    fill(&src, 5, 3, 4, px);
    at(&src, 4, 2)[3] = 255;
    const char *path = work_path("mark-rgba.png");
    assert_int_equal(grid_write_png(path, &src, 8), 0);
    ts_image_free(&src);
    if (render_watermark_load(path, 0.5, 0.25, 256, &wm, &err) != TS_OK)
        fail_msg("load: %s", err.msg);
    assert_int_equal(wm.mark.width, 5);
    assert_int_equal(wm.mark.height, 3);
    assert_int_equal(wm.mark.channels, 4);
    expect_px(&wm.mark, 0, 0, px);
    expect_px(&wm.mark, 4, 2, (const uint8_t[]){10, 20, 30, 255});
    assert_true(wm.opacity == 0.5 && wm.probability == 0.25);
    assert_int_equal(wm.default_block, 512);
    assert_true(render_watermark_active(&wm));
    uint64_t first = wm.fingerprint;
    render_watermark_free(&wm);
    assert_int_equal(render_watermark_load(path, 0.75, 0.25, 256, &wm, &err), TS_OK);
    assert_true(wm.fingerprint != first); /* another opacity, other pixels out */
    render_watermark_free(&wm);

    static const uint8_t g[1] = {77};
    fill(&src, 2, 2, 1, g);
    path = work_path("mark-gray.png");
    assert_int_equal(grid_write_png(path, &src, 8), 0);
    ts_image_free(&src);
    assert_int_equal(render_watermark_load(path, 1.0, 1.0, 256, &wm, &err), TS_OK);
    expect_px(&wm.mark, 1, 1, (const uint8_t[]){77, 77, 77, 255});
    render_watermark_free(&wm);

    assert_int_equal(render_watermark_load(path, 0.0, 1.0, 256, &wm, &err), TS_OK);
    assert_false(render_watermark_active(&wm)); /* opacity 0 changes no pixel */
    render_watermark_free(&wm);
}

static void test_load_refuses_what_it_cannot_read_naming_the_path(void **state)
{
    (void)state;
    struct ts_watermark wm;
    struct ts_err err = {0};
    const char *missing = work_path("no-such-mark.png");
    assert_int_not_equal(render_watermark_load(missing, 1.0, 1.0, 256, &wm, &err), TS_OK);
    assert_non_null(strstr(err.msg, "no-such-mark.png"));
    assert_null(wm.mark.data);
    const char *text = work_path("mark.txt");
    FILE *f = fopen(text, "w");
    assert_non_null(f);
    fputs("not an image\n", f);
    fclose(f);
    assert_int_not_equal(render_watermark_load(text, 1.0, 1.0, 256, &wm, &err), TS_OK);
    assert_non_null(strstr(err.msg, "mark.txt"));
    assert_null(strchr(err.msg, '\n'));
    assert_int_equal(render_watermark_load(text, 1.5, 1.0, 256, &wm, &err), TS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blend_adds_colour_times_alpha_times_opacity_and_clips),
        cmocka_unit_test(test_blend_of_nothing_changes_nothing),
        cmocka_unit_test(test_blend_on_gray_and_alpha_images),
        cmocka_unit_test(test_blend_clips_to_the_image),
        cmocka_unit_test(test_one_block_gets_one_whole_mark_placed_by_the_seed),
        cmocka_unit_test(test_each_block_of_a_large_render_gets_its_own_mark),
        cmocka_unit_test(test_a_mark_larger_than_the_block_is_cut_to_it),
        cmocka_unit_test(test_probability_decides_per_block_and_marks_agrees),
        cmocka_unit_test(test_seed_follows_image_and_geometry_only),
        cmocka_unit_test(test_block_is_twice_the_tile),
        cmocka_unit_test(test_load_reads_rgba_and_gray_files),
        cmocka_unit_test(test_load_refuses_what_it_cannot_read_naming_the_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
