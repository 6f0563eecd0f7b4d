/* Renders kept in JPEG's planes (render_execute_ycc) against the same renders through RGB
 * (render_execute), on a real 4:2:0 JPEG-in-TIFF pyramid of sharp colour cells: the same size,
 * the same colours, and chroma where the luma is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "encode/encode.h"
#include "grid.h"
#include "image/reader.h"
#include "render/render.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <tiffio.h>

#define W 1411
#define H 1000
#define CELLS 58

static char g_path[512];
static struct ts_image g_cells; /* the picture the TIFF was made from */

static int setup(void **state)
{
    (void)state;
    struct ts_image img;
    /* Cells about 24 px across, their edges at odd and even columns alike. */
    assert_int_equal(grid_make(W, H, CELLS, 3, &img), TS_OK);
    struct grid_tiff_opts o = {.compression = COMPRESSION_JPEG,
                               .tiled = true,
                               .tile = 256,
                               .bits = 8,
                               .layout = GRID_PYRAMID_IFDS,
                               .jpeg_quality = 95,
                               .ycbcr = true};
    assert_int_equal(tu_mkdirs(TESSERA_TEST_WORK), 0);
    snprintf(g_path, sizeof g_path, "%s/cells-ycbcr.tif", TESSERA_TEST_WORK);
    assert_int_equal(grid_write_tiff(g_path, &img, &o), 0);
    g_cells = img;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ts_image_free(&g_cells);
    return 0;
}

static struct ts_reader *open_cells(void)
{
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    int rc = ts_reader_open(g_path, &r, &err);
    if (rc != TS_OK)
        fail_msg("open %s: %s", g_path, err.msg);
    return r;
}

static struct ts_plan plan_of(uint32_t rx, uint32_t ry, uint32_t rw, uint32_t rh, uint32_t ow,
                              uint32_t oh)
{
    struct ts_plan p;
    memset(&p, 0, sizeof p);
    p.img_w = W, p.img_h = H;
    p.rx = rx, p.ry = ry, p.rw = rw, p.rh = rh;
    p.out_w = ow, p.out_h = oh;
    p.quality = TS_QUALITY_DEFAULT;
    p.format = TS_FORMAT_JPG;
    p.threads = 1;
    return p;
}

static double psnr(const struct ts_image *a, const struct ts_image *b)
{
    assert_true(a->width == b->width && a->height == b->height && a->channels == 3 &&
                b->channels == 3);
    double se = 0.0;
    for (uint32_t y = 0; y < a->height; y++)
        for (uint32_t i = 0; i < a->width * 3; i++) {
            double d = (double)ts_image_row(a, y)[i] - ts_image_row(b, y)[i];
            se += d * d;
        }
    double mse = se / ((double)a->width * a->height * 3);
    return mse > 0 ? 10.0 * log10(255.0 * 255.0 / mse) : 99.0;
}

static struct ts_image decoded(const struct ts_buf *b)
{
    struct ts_image img;
    assert_int_equal(tu_decode(b->data, b->len, &img), 0);
    return img;
}

/* What a client gets either way, against the plan rendered from the picture itself (before the
 * TIFF's JPEG compression and pyramid): the planes' JPEG must be as close to it as the RGB
 * render's own JPEG, which drops chroma detail too, in its encoder. */
static void compare(struct ts_reader *r, const struct ts_plan *p)
{
    struct ts_ycc got;
    struct ts_image ref;
    struct ts_buf a = {0}, b = {0};
    struct ts_err err = {0};
    int rc = render_execute_ycc(r, p, NULL, &got, &err);
    if (rc != TS_OK)
        fail_msg("planes of %u,%u,%u,%u -> %ux%u: %d %s", p->rx, p->ry, p->rw, p->rh, p->out_w,
                 p->out_h, rc, err.msg);
    assert_int_equal(render_execute(r, p, NULL, &ref, &err), TS_OK);
    assert_int_equal(got.y.width, p->out_w);
    assert_int_equal(got.y.height, p->out_h);
    assert_int_equal(got.cb.width, (p->out_w + 1) / 2);
    assert_int_equal(got.cr.height, (p->out_h + 1) / 2);
    assert_int_equal(encode_jpeg_ycc(&got, 90, &a, &err), TS_OK);
    assert_int_equal(encode_jpeg(&ref, 90, &b, &err), TS_OK);
    ts_image_free(&ref);
    assert_int_equal(
        render_resample_rect(&g_cells, p->rx, p->ry, p->rw, p->rh, p->out_w, p->out_h, &ref),
        TS_OK);
    struct ts_image via_planes = decoded(&a), via_rgb = decoded(&b);
    double pp = psnr(&via_planes, &ref), pr = psnr(&via_rgb, &ref);
    print_message("%u,%u,%u,%u -> %ux%u: planes %.2f dB, RGB %.2f dB\n", p->rx, p->ry, p->rw, p->rh,
                  p->out_w, p->out_h, pp, pr);
    if (pp < pr - 0.3)
        fail_msg("%u,%u,%u,%u -> %ux%u: %.2f dB through the planes, %.2f through RGB", p->rx, p->ry,
                 p->rw, p->rh, p->out_w, p->out_h, pp, pr);
    ts_ycc_free(&got);
    ts_image_free(&ref), ts_image_free(&via_planes), ts_image_free(&via_rgb);
    ts_buf_free(&a), ts_buf_free(&b);
}

static void test_planes_match_rgb_renders(void **state)
{
    (void)state;
    struct ts_reader *r = open_cells();
    struct ts_plan plans[] = {
        plan_of(0, 0, W, H, 200, 142),          /* thumbnail from a small level */
        plan_of(123, 457, 1001, 503, 800, 402), /* odd region, downscaled */
        plan_of(1, 1, 777, 555, 311, 223),      /* odd corner, odd sizes */
        plan_of(300, 200, 400, 300, 400, 300),  /* scale 1 at level 0 */
        plan_of(1000, 700, 411, 300, 823, 601), /* enlarged, to the image's corner */
        plan_of(500, 300, 411, 300, 823, 601),  plan_of(500, 300, 412, 300, 824, 600),
        plan_of(500, 300, 400, 300, 600, 450),  plan_of(0, 0, W, H, 1, 1),
    };
    for (size_t i = 0; i < sizeof plans / sizeof plans[0]; i++)
        compare(r, &plans[i]);
    ts_reader_close(r);
}

/* A plan the planes cannot carry is left to render_execute. */
static void test_planes_decline_what_rgb_must_do(void **state)
{
    (void)state;
    struct ts_reader *r = open_cells();
    struct ts_ycc got;
    struct ts_err err = {0};
    struct ts_plan p = plan_of(123, 457, 1001, 503, 800, 402);
    p.quality = TS_QUALITY_GRAY;
    assert_int_equal(render_execute_ycc(r, &p, NULL, &got, &err), TS_DECLINED);
    p = plan_of(123, 457, 1001, 503, 800, 402);
    p.format = TS_FORMAT_PNG;
    assert_int_equal(render_execute_ycc(r, &p, NULL, &got, &err), TS_DECLINED);
    p = plan_of(123, 457, 1001, 503, 800, 402);
    p.mirror = true;
    assert_int_equal(render_execute_ycc(r, &p, NULL, &got, &err), TS_DECLINED);
    p = plan_of(123, 457, 1001, 503, 800, 402);
    p.rotation = 90.0;
    assert_int_equal(render_execute_ycc(r, &p, NULL, &got, &err), TS_DECLINED);
    assert_null(got.y.data);
    ts_reader_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_planes_match_rgb_renders),
        cmocka_unit_test(test_planes_decline_what_rgb_must_do),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
