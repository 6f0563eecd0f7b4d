/* Render pipeline over an in-memory pyramid: level choice, region, scale, mirror, rotate, quality.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "render/render.h"

/* A 1411 x 1000 image of 10 x 10 flat cells, stored at 1411, 706 and 353 pixels across: the
 * odd width makes every level ratio differ from an exact power of two. */
#define FULL_W 1411
#define FULL_H 1000
#define CELLS 10

static const uint32_t level_w[3] = {1411, 706, 353};
static const uint32_t level_h[3] = {1000, 500, 250};

static void cell_color(uint32_t col, uint32_t row, uint8_t rgb[3])
{
    rgb[0] = (uint8_t)(13 + 24 * col);
    rgb[1] = (uint8_t)(13 + 24 * row);
    rgb[2] = (uint8_t)(255 - 12 * (col + row));
}

static uint8_t luma601(const uint8_t rgb[3])
{
    return (uint8_t)(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] + 0.5);
}

struct fake {
    struct ts_image levels[3];
    bool halve;              /* deliver half size when min_w/min_h allow, like JPEG DCT scaling */
    int fail_with;           /* non-zero: every read fails with this status */
    struct ts_read_req last; /* the last request seen */
    int reads;
};

/* Each level pixel takes the colour of the full-resolution cell under its centre. */
static void fake_make_level(struct ts_image *img, uint32_t w, uint32_t h, uint32_t ch)
{
    assert_int_equal(ts_image_alloc(img, w, h, ch), TS_OK);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            double fx = (x + 0.5) * FULL_W / w, fy = (y + 0.5) * FULL_H / h;
            uint32_t col = (uint32_t)(fx * CELLS / FULL_W), row = (uint32_t)(fy * CELLS / FULL_H);
            uint8_t rgb[3], *p = ts_image_row(img, y) + (size_t)x * ch;
            cell_color(col, row, rgb);
            if (ch >= 3) {
                memcpy(p, rgb, 3);
            } else {
                p[0] = luma601(rgb);
            }
            if (ch == 2 || ch == 4)
                p[ch - 1] = (col == 0 && row == 0) ? 128 : 255;
        }
}

static int fake_read(struct ts_reader *r, const struct ts_read_req *req, struct ts_image *out,
                     struct ts_err *err)
{
    struct fake *f = r->priv;
    const struct ts_image *lv = &f->levels[req->level];
    uint32_t ch = lv->channels;
    int rc;

    f->last = *req;
    f->reads++;
    if (f->fail_with)
        return ts_fail(err, f->fail_with, "fake read failure");
    if (f->halve && req->min_w <= (req->w + 1) / 2 && req->min_h <= (req->h + 1) / 2) {
        uint32_t w = (req->w + 1) / 2, h = (req->h + 1) / 2;
        rc = ts_image_alloc(out, w, h, ch);
        if (rc)
            return rc;
        for (uint32_t y = 0; y < h; y++)
            for (uint32_t x = 0; x < w; x++)
                for (uint32_t c = 0; c < ch; c++) {
                    unsigned sum = 0, n = 0;
                    for (uint32_t dy = 0; dy < 2; dy++)
                        for (uint32_t dx = 0; dx < 2; dx++) {
                            uint32_t sx = req->x + 2 * x + dx, sy = req->y + 2 * y + dy;
                            if (sx < req->x + req->w && sy < req->y + req->h) {
                                sum += ts_image_row(lv, sy)[(size_t)sx * ch + c];
                                n++;
                            }
                        }
                    ts_image_row(out, y)[(size_t)x * ch + c] = (uint8_t)((sum + n / 2) / n);
                }
        return TS_OK;
    }
    rc = ts_image_alloc(out, req->w, req->h, ch);
    if (rc)
        return rc;
    for (uint32_t y = 0; y < req->h; y++)
        memcpy(ts_image_row(out, y), ts_image_row(lv, req->y + y) + (size_t)req->x * ch,
               (size_t)req->w * ch);
    return TS_OK;
}

static void fake_close(struct ts_reader *r)
{
    (void)r;
}

static const struct ts_reader_ops fake_ops = {"fake", fake_read, fake_close, NULL,
                                              NULL,   NULL,      NULL,       NULL};

struct fixture {
    struct ts_reader reader;
    struct fake fake;
};

static void info_init(struct ts_image_info *info, uint32_t channels)
{
    memset(info, 0, sizeof *info);
    info->width = FULL_W;
    info->height = FULL_H;
    info->channels = channels;
    info->bits_per_sample = 8;
    info->nlevels = 3;
    for (int i = 0; i < 3; i++) {
        info->levels[i].width = level_w[i];
        info->levels[i].height = level_h[i];
        info->levels[i].tile_w = info->levels[i].tile_h = 256;
    }
    info->format = "fake";
}

static struct fixture *fixture_new(uint32_t channels)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    for (int i = 0; i < 3; i++)
        fake_make_level(&fx->fake.levels[i], level_w[i], level_h[i], channels);
    fx->reader.ops = &fake_ops;
    fx->reader.priv = &fx->fake;
    info_init(&fx->reader.info, channels);
    return fx;
}

static void fixture_free(struct fixture *fx)
{
    for (int i = 0; i < 3; i++)
        ts_image_free(&fx->fake.levels[i]);
    free(fx);
}

static int setup_rgb(void **state)
{
    *state = fixture_new(3);
    return 0;
}

static int setup_rgba(void **state)
{
    *state = fixture_new(4);
    return 0;
}

static int teardown(void **state)
{
    fixture_free(*state);
    return 0;
}

static struct ts_plan plan_of(uint32_t rx, uint32_t ry, uint32_t rw, uint32_t rh, uint32_t ow,
                              uint32_t oh)
{
    struct ts_plan p;
    memset(&p, 0, sizeof p);
    p.img_w = FULL_W;
    p.img_h = FULL_H;
    p.rx = rx;
    p.ry = ry;
    p.rw = rw;
    p.rh = rh;
    p.out_w = ow;
    p.out_h = oh;
    p.quality = TS_QUALITY_DEFAULT;
    p.format = TS_FORMAT_PNG;
    return p;
}

static uint32_t choose(const struct ts_plan *p, struct ts_read_req *req)
{
    struct ts_image_info info;
    info_init(&info, 3);
    assert_int_equal(render_choose_level(&info, p, req), TS_OK);
    return req->level;
}

static void test_choose_level_full_size_reads_level_zero(void **state)
{
    (void)state;
    struct ts_plan p = plan_of(0, 0, FULL_W, FULL_H, FULL_W, FULL_H);
    struct ts_read_req req;
    assert_int_equal(choose(&p, &req), 0);
    assert_int_equal(req.x, 0);
    assert_int_equal(req.y, 0);
    assert_int_equal(req.w, FULL_W);
    assert_int_equal(req.h, FULL_H);
    /* Upscaling also reads full resolution. */
    p = plan_of(0, 0, 100, 100, 400, 400);
    assert_int_equal(choose(&p, &req), 0);
    assert_int_equal(req.w, 100);
    assert_int_equal(req.min_w, 100);
}

static void test_choose_level_uses_real_level_ratios(void **state)
{
    (void)state;
    struct ts_read_req req;
    /* 706 is 1411/2 rounded up: a power-of-two assumption (705.5) would refuse level 1. */
    struct ts_plan p = plan_of(0, 0, FULL_W, FULL_H, 706, 500);
    assert_int_equal(choose(&p, &req), 1);
    assert_int_equal(req.w, 706);
    assert_int_equal(req.h, 500);
    assert_int_equal(req.min_w, 706);
    assert_int_equal(req.min_h, 500);
    p = plan_of(0, 0, FULL_W, FULL_H, 707, 501);
    assert_int_equal(choose(&p, &req), 0);
    p = plan_of(0, 0, FULL_W, FULL_H, 353, 250);
    assert_int_equal(choose(&p, &req), 2);
    p = plan_of(0, 0, FULL_W, FULL_H, 354, 250);
    assert_int_equal(choose(&p, &req), 1);
    p = plan_of(0, 0, FULL_W, FULL_H, 120, 85);
    assert_int_equal(choose(&p, &req), 2);
    assert_int_equal(req.min_w, 120);
    assert_int_equal(req.min_h, 85);
    /* One axis short is enough to stay at the larger level. */
    p = plan_of(0, 0, FULL_W, FULL_H, 300, 251);
    assert_int_equal(choose(&p, &req), 1);
}

static void test_choose_level_rounds_region_outward(void **state)
{
    (void)state;
    struct ts_read_req req;
    struct ts_plan p = plan_of(100, 50, 500, 400, 250, 200);
    assert_int_equal(choose(&p, &req), 1);
    /* x: 100*706/1411 = 50.03 -> 50; 600*706/1411 = 300.2 -> 301. y halves exactly. */
    assert_int_equal(req.x, 50);
    assert_int_equal(req.w, 251);
    assert_int_equal(req.y, 25);
    assert_int_equal(req.h, 200);
    p = plan_of(100, 50, 500, 400, 251, 200);
    assert_int_equal(choose(&p, &req), 0);
    assert_int_equal(req.x, 100);
    assert_int_equal(req.w, 500);
}

static void test_choose_level_tiny_region_at_small_level_is_at_least_one_pixel(void **state)
{
    (void)state;
    struct ts_read_req req;
    /* 4 px at the right edge: at 353/1411 that is 0.9999 px, still enough for 1 px out. */
    struct ts_plan p = plan_of(FULL_W - 4, FULL_H - 4, 4, 4, 1, 1);
    assert_int_equal(choose(&p, &req), 2);
    assert_true(req.w >= 1 && req.h >= 1);
    assert_true(req.x + req.w <= 353);
    assert_true(req.y + req.h <= 250);
    assert_int_equal(req.x + req.w, 353);
    assert_int_equal(req.y, 249);
    assert_int_equal(req.h, 1);
    p = plan_of(0, 0, 5, 5, 1, 1);
    assert_int_equal(choose(&p, &req), 2);
    assert_int_equal(req.x, 0);
    assert_int_equal(req.w, 2); /* 5*353/1411 = 1.25 -> 2 */
    assert_int_equal(req.h, 2);
}

static void test_choose_level_rejects_region_outside_image(void **state)
{
    (void)state;
    struct ts_image_info info;
    struct ts_read_req req;
    info_init(&info, 3);
    struct ts_plan p = plan_of(1400, 0, 20, 10, 20, 10);
    assert_int_equal(render_choose_level(&info, &p, &req), TS_EINVAL);
    p = plan_of(0, 0, 10, 10, 0, 10);
    assert_int_equal(render_choose_level(&info, &p, &req), TS_EINVAL);
}

/* Where the unrotated, unmirrored output pixel (ux, uy) of a w x h render ends up. */
static void place(uint32_t ux, uint32_t uy, uint32_t w, uint32_t h, bool mirror, int rot,
                  uint32_t *ox, uint32_t *oy)
{
    uint32_t mx = mirror ? w - 1 - ux : ux;
    switch (rot) {
    case 90:
        *ox = h - 1 - uy;
        *oy = mx;
        break;
    case 180:
        *ox = w - 1 - mx;
        *oy = h - 1 - uy;
        break;
    case 270:
        *ox = uy;
        *oy = w - 1 - mx;
        break;
    default:
        *ox = mx;
        *oy = uy;
        break;
    }
}

/* Checks every cell whose centre lies well inside the rendered region against its colour. */
static void check_cells(const struct ts_image *out, const struct ts_plan *p, int rot,
                        uint32_t want_ch, int tol)
{
    double sx = (double)p->out_w / p->rw, sy = (double)p->out_h / p->rh;
    int checked = 0;
    assert_int_equal(out->channels, want_ch);
    for (uint32_t row = 0; row < CELLS; row++)
        for (uint32_t col = 0; col < CELLS; col++) {
            double cx = (col + 0.5) * FULL_W / CELLS, cy = (row + 0.5) * FULL_H / CELLS;
            /* Half a cell minus a margin for the filter must lie inside the region. */
            if (cx < p->rx + 20 || cx > p->rx + p->rw - 20 || cy < p->ry + 20 ||
                cy > p->ry + p->rh - 20)
                continue;
            uint32_t ux = (uint32_t)((cx - p->rx) * sx), uy = (uint32_t)((cy - p->ry) * sy), ox, oy;
            place(ux, uy, p->out_w, p->out_h, p->mirror, rot, &ox, &oy);
            uint8_t rgb[3];
            cell_color(col, row, rgb);
            const uint8_t *px = ts_image_row(out, oy) + (size_t)ox * out->channels;
            if (p->quality == TS_QUALITY_GRAY) {
                assert_true(abs((int)px[0] - (int)luma601(rgb)) <= tol);
            } else if (p->quality == TS_QUALITY_BITONAL) {
                uint8_t l = luma601(rgb);
                if (l > 125 && l < 131)
                    continue; /* too close to the threshold to say */
                assert_int_equal(px[0], l >= 128 ? 255 : 0);
            } else {
                for (int c = 0; c < 3; c++)
                    assert_true(abs((int)px[c] - (int)rgb[c]) <= tol);
            }
            checked++;
        }
    assert_true(checked > 0);
}

static void render_ok(struct fixture *fx, const struct ts_plan *p, struct ts_image *out)
{
    struct ts_err err = {0};
    int rc = render_execute(&fx->reader, p, NULL, out, &err);
    if (rc)
        fail_msg("render_execute: %d %s", rc, err.msg);
}

static void test_render_full_max_is_level_zero_unchanged(void **state)
{
    struct fixture *fx = *state;
    struct ts_plan p = plan_of(0, 0, FULL_W, FULL_H, FULL_W, FULL_H);
    struct ts_image out;
    render_ok(fx, &p, &out);
    assert_int_equal(out.width, FULL_W);
    assert_int_equal(out.height, FULL_H);
    assert_int_equal(fx->fake.last.level, 0);
    for (uint32_t y = 0; y < FULL_H; y += 37)
        assert_memory_equal(ts_image_row(&out, y), ts_image_row(&fx->fake.levels[0], y),
                            (size_t)FULL_W * 3);
    check_cells(&out, &p, 0, 3, 0);
    ts_image_free(&out);
}

static void test_render_region_at_full_resolution(void **state)
{
    struct fixture *fx = *state;
    struct ts_plan p = plan_of(300, 250, 500, 400, 500, 400);
    struct ts_image out;
    render_ok(fx, &p, &out);
    assert_int_equal(out.width, 500);
    assert_int_equal(out.height, 400);
    assert_int_equal(fx->fake.last.x, 300);
    assert_int_equal(fx->fake.last.y, 250);
    check_cells(&out, &p, 0, 3, 0);
    ts_image_free(&out);
}

static void test_render_downscale_reads_small_level(void **state)
{
    struct fixture *fx = *state;
    struct ts_plan p = plan_of(0, 0, FULL_W, FULL_H, 200, 142);
    struct ts_image out;
    render_ok(fx, &p, &out);
    assert_int_equal(out.width, 200);
    assert_int_equal(out.height, 142);
    assert_int_equal(fx->fake.last.level, 2);
    check_cells(&out, &p, 0, 3, 1);
    ts_image_free(&out);
    /* A region that needs level 1, at a non-integral offset in it. */
    p = plan_of(141, 100, 847, 600, 400, 283);
    render_ok(fx, &p, &out);
    assert_int_equal(fx->fake.last.level, 1);
    assert_int_equal(out.width, 400);
    assert_int_equal(out.height, 283);
    check_cells(&out, &p, 0, 3, 1);
    ts_image_free(&out);
}

static void test_render_maps_region_with_subpixel_offset(void **state)
{
    struct fixture *fx = *state;
    /* The read is rounded outward to whole level pixels; the output must still show exactly
     * the requested region, i.e. match resampling the level at the exact fractional rectangle
     * (away from the read's edges, where only the edge clamp differs). */
    struct ts_plan p = plan_of(141, 100, 847, 600, 400, 283);
    struct ts_image out, ref;
    render_ok(fx, &p, &out);
    assert_int_equal(fx->fake.last.level, 1);
    /* 70 rounded outward, less the filter margin: 3 output pixels of 425/400 level pixels. */
    assert_int_equal(fx->fake.last.x, 70 - 4);
    double x = 141.0 * 706 / 1411, w = 847.0 * 706 / 1411;
    assert_int_equal(render_resample_rect(&fx->fake.levels[1], x, 50, w, 300, 400, 283, &ref),
                     TS_OK);
    for (uint32_t y = 4; y < 283 - 4; y++)
        assert_memory_equal(ts_image_row(&out, y) + 4 * 3, ts_image_row(&ref, y) + 4 * 3,
                            (400 - 8) * 3);
    ts_image_free(&ref);
    ts_image_free(&out);
}

static void test_render_uses_smaller_delivery_from_reader(void **state)
{
    struct fixture *fx = *state;
    struct ts_plan p = plan_of(0, 0, FULL_W, FULL_H, 150, 100);
    struct ts_image out;
    fx->fake.halve = true;
    render_ok(fx, &p, &out);
    assert_int_equal(fx->fake.last.level, 2);
    assert_int_equal(fx->fake.last.min_w, 150);
    assert_int_equal(out.width, 150);
    assert_int_equal(out.height, 100);
    check_cells(&out, &p, 0, 3, 1);
    ts_image_free(&out);
}

static void test_render_mirror_flips_columns(void **state)
{
    struct fixture *fx = *state;
    struct ts_plan p = plan_of(0, 0, FULL_W, FULL_H, 353, 250);
    struct ts_image out;
    p.mirror = true;
    render_ok(fx, &p, &out);
    assert_int_equal(out.width, 353);
    assert_int_equal(out.height, 250);
    for (uint32_t y = 0; y < 250; y += 7)
        for (uint32_t x = 0; x < 353; x += 5)
            assert_memory_equal(ts_image_row(&out, y) + (size_t)x * 3,
                                ts_image_row(&fx->fake.levels[2], y) + (size_t)(352 - x) * 3, 3);
    check_cells(&out, &p, 0, 3, 0);
    ts_image_free(&out);
}

static void rotate_case(struct fixture *fx, int rot, bool mirror)
{
    struct ts_plan p = plan_of(0, 0, FULL_W, FULL_H, 353, 250);
    struct ts_image out;
    p.rotation = rot;
    p.mirror = mirror;
    render_ok(fx, &p, &out);
    if (rot == 90 || rot == 270) {
        assert_int_equal(out.width, 250);
        assert_int_equal(out.height, 353);
    } else {
        assert_int_equal(out.width, 353);
        assert_int_equal(out.height, 250);
    }
    check_cells(&out, &p, rot, 3, 0);
    ts_image_free(&out);
}

static void test_render_rotates_quarter_turns(void **state)
{
    rotate_case(*state, 90, false);
    rotate_case(*state, 180, false);
    rotate_case(*state, 270, false);
}

static void test_render_mirrors_then_rotates(void **state)
{
    rotate_case(*state, 90, true);
    rotate_case(*state, 180, true);
    rotate_case(*state, 270, true);
}

static void test_render_rotation_of_360_is_none(void **state)
{
    rotate_case(*state, 360, false);
}

static void test_render_gray_is_luma(void **state)
{
    struct fixture *fx = *state;
    struct ts_plan p = plan_of(0, 0, FULL_W, FULL_H, 353, 250);
    struct ts_image out;
    p.quality = TS_QUALITY_GRAY;
    p.rotation = 90;
    render_ok(fx, &p, &out);
    assert_int_equal(out.channels, 1);
    check_cells(&out, &p, 90, 1, 1);
    ts_image_free(&out);
}

static void test_render_bitonal_is_only_black_and_white(void **state)
{
    struct fixture *fx = *state;
    struct ts_plan p = plan_of(0, 0, FULL_W, FULL_H, 300, 212);
    struct ts_image out;
    p.quality = TS_QUALITY_BITONAL;
    render_ok(fx, &p, &out);
    assert_int_equal(out.channels, 1);
    int black = 0, white = 0;
    for (uint32_t y = 0; y < out.height; y++)
        for (uint32_t x = 0; x < out.width; x++) {
            uint8_t v = ts_image_row(&out, y)[x];
            assert_true(v == 0 || v == 255);
            black += v == 0;
            white += v == 255;
        }
    assert_true(black > 0 && white > 0);
    check_cells(&out, &p, 0, 1, 0);
    ts_image_free(&out);
}

/* Any angle: the bounding box per render_rotate_extent, transparent corners, the centre kept. */
static void test_render_arbitrary_rotation_grows_canvas(void **state)
{
    struct fixture *fx = *state;
    struct ts_plan p = plan_of(0, 0, FULL_W, FULL_H, 353, 250);
    struct ts_image out = {0}, straight = {0};
    struct ts_err err = {0};
    assert_int_equal(render_execute(&fx->reader, &p, NULL, &straight, &err), TS_OK);
    p.rotation = 22.5;
    assert_int_equal(render_execute(&fx->reader, &p, NULL, &out, &err), TS_OK);
    uint32_t ew, eh;
    assert_int_equal(render_rotate_extent(353, 250, 22.5, &ew, &eh), TS_OK);
    assert_int_equal(out.width, ew);
    assert_int_equal(out.height, eh);
    assert_int_equal(out.channels, straight.channels + 1);        /* alpha added */
    assert_int_equal(ts_image_row(&out, 0)[out.channels - 1], 0); /* corner: transparent */
    const uint8_t *c = ts_image_row(&out, out.height / 2) + (size_t)(out.width / 2) * out.channels;
    const uint8_t *s = ts_image_row(&straight, straight.height / 2) +
                       (size_t)(straight.width / 2) * straight.channels;
    for (uint32_t k = 0; k < straight.channels; k++)
        assert_true(abs((int)c[k] - (int)s[k]) <= 6);
    ts_image_free(&out);
    ts_image_free(&straight);
}

static void test_render_reports_reader_failure(void **state)
{
    struct fixture *fx = *state;
    struct ts_plan p = plan_of(0, 0, FULL_W, FULL_H, 100, 70);
    struct ts_image out = {0};
    struct ts_err err = {0};
    fx->fake.fail_with = TS_EIO;
    assert_int_equal(render_execute(&fx->reader, &p, NULL, &out, &err), TS_EIO);
    assert_null(out.data);
    fx->fake.fail_with = 0;
}

static void test_render_gray_keeps_alpha(void **state)
{
    struct fixture *fx = *state;
    struct ts_plan p = plan_of(0, 0, FULL_W, FULL_H, 353, 250);
    struct ts_image out;
    p.quality = TS_QUALITY_GRAY;
    render_ok(fx, &p, &out);
    assert_int_equal(out.channels, 2);
    /* Cell (0,0) is half transparent, the rest opaque. */
    assert_int_equal(ts_image_row(&out, 12)[2 * 17 + 1], 128);
    assert_int_equal(ts_image_row(&out, 200)[2 * 300 + 1], 255);
    check_cells(&out, &p, 0, 2, 1);
    ts_image_free(&out);
    /* Color keeps all four channels; bitonal has none for alpha. */
    p.quality = TS_QUALITY_COLOR;
    render_ok(fx, &p, &out);
    assert_int_equal(out.channels, 4);
    ts_image_free(&out);
    p.quality = TS_QUALITY_BITONAL;
    render_ok(fx, &p, &out);
    assert_int_equal(out.channels, 1);
    ts_image_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_choose_level_full_size_reads_level_zero),
        cmocka_unit_test(test_choose_level_uses_real_level_ratios),
        cmocka_unit_test(test_choose_level_rounds_region_outward),
        cmocka_unit_test(test_choose_level_tiny_region_at_small_level_is_at_least_one_pixel),
        cmocka_unit_test(test_choose_level_rejects_region_outside_image),
        cmocka_unit_test_setup_teardown(test_render_full_max_is_level_zero_unchanged, setup_rgb,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_render_region_at_full_resolution, setup_rgb, teardown),
        cmocka_unit_test_setup_teardown(test_render_downscale_reads_small_level, setup_rgb,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_render_maps_region_with_subpixel_offset, setup_rgb,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_render_uses_smaller_delivery_from_reader, setup_rgb,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_render_mirror_flips_columns, setup_rgb, teardown),
        cmocka_unit_test_setup_teardown(test_render_rotates_quarter_turns, setup_rgb, teardown),
        cmocka_unit_test_setup_teardown(test_render_mirrors_then_rotates, setup_rgb, teardown),
        cmocka_unit_test_setup_teardown(test_render_rotation_of_360_is_none, setup_rgb, teardown),
        cmocka_unit_test_setup_teardown(test_render_gray_is_luma, setup_rgb, teardown),
        cmocka_unit_test_setup_teardown(test_render_bitonal_is_only_black_and_white, setup_rgb,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_render_arbitrary_rotation_grows_canvas, setup_rgb,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_render_reports_reader_failure, setup_rgb, teardown),
        cmocka_unit_test_setup_teardown(test_render_gray_keeps_alpha, setup_rgba, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
