/* Big reads are rendered in bands: same pixels as one whole read, a fraction of the memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "render/render.h"

#include <stdlib.h>
#include <string.h>

#define W 4000
#define H 3000

/* A one-level source held in memory that remembers the largest read it served. */
struct fake {
    struct ts_reader reader;
    struct ts_image pixels;
    size_t largest_read;
    unsigned reads;
};

static int fake_read(struct ts_reader *r, const struct ts_read_req *q, struct ts_image *out,
                     struct ts_err *err)
{
    struct fake *f = (struct fake *)r;
    (void)err;
    int rc = ts_image_alloc(out, q->w, q->h, 3);
    if (rc)
        return rc;
    for (uint32_t y = 0; y < q->h; y++)
        memcpy(ts_image_row(out, y), ts_image_row(&f->pixels, q->y + y) + (size_t)q->x * 3,
               (size_t)q->w * 3);
    size_t bytes = (size_t)q->w * q->h * 3;
    if (bytes > f->largest_read)
        f->largest_read = bytes;
    f->reads++;
    return TS_OK;
}

static void fake_close(struct ts_reader *r)
{
    (void)r;
}

static const struct ts_reader_ops fake_ops = {"fake", fake_read, fake_close, NULL,
                                              NULL,   NULL,      NULL,       NULL};

static void make_fake(struct fake *f)
{
    memset(f, 0, sizeof *f);
    f->reader.ops = &fake_ops;
    f->reader.info.width = W;
    f->reader.info.height = H;
    f->reader.info.channels = 3;
    f->reader.info.bits_per_sample = 8;
    f->reader.info.nlevels = 1;
    f->reader.info.levels[0] = (struct ts_level){W, H, 0, 0};
    f->reader.info.format = "fake";
    assert_int_equal(ts_image_alloc(&f->pixels, W, H, 3), TS_OK);
    /* Gradients plus a fine checker, so a misplaced band shows as a large difference. */
    for (uint32_t y = 0; y < H; y++) {
        uint8_t *row = ts_image_row(&f->pixels, y);
        for (uint32_t x = 0; x < W; x++) {
            row[3 * x] = (uint8_t)(x * 255 / W);
            row[3 * x + 1] = (uint8_t)(y * 255 / H);
            row[3 * x + 2] = ((x / 37 + y / 41) & 1) ? 220 : 30;
        }
    }
}

static struct ts_plan plan_of(uint32_t rx, uint32_t ry, uint32_t rw, uint32_t rh, uint32_t ow,
                              uint32_t oh)
{
    struct ts_plan p = {0};
    p.img_w = W;
    p.img_h = H;
    p.rx = rx, p.ry = ry, p.rw = rw, p.rh = rh;
    p.out_w = ow, p.out_h = oh;
    p.quality = TS_QUALITY_DEFAULT;
    p.format = TS_FORMAT_PNG;
    return p;
}

static void check_banded_matches_whole(const struct ts_plan *p)
{
    struct fake f;
    make_fake(&f);
    struct ts_image banded = {0}, whole = {0};
    struct ts_err err = {0};
    assert_int_equal(render_execute(&f.reader, p, NULL, &banded, &err), TS_OK);
    assert_int_equal(banded.width, p->out_w);
    assert_int_equal(banded.height, p->out_h);
    assert_true(f.reads > 1);                       /* it did work in bands */
    assert_true(f.largest_read < (size_t)24 << 20); /* each well under the whole region */
    /* Admission's figure covers the largest band actually read. */
    assert_true(render_peak_bytes(&f.reader, p) >= f.largest_read);
    assert_int_equal(
        render_resample_rect(&f.pixels, p->rx, p->ry, p->rw, p->rh, p->out_w, p->out_h, &whole),
        TS_OK);
    int worst = 0;
    for (uint32_t y = 0; y < whole.height; y++) {
        const uint8_t *a = ts_image_row(&banded, y), *b = ts_image_row(&whole, y);
        for (uint32_t i = 0; i < whole.width * 3; i++) {
            int d = abs((int)a[i] - (int)b[i]);
            if (d > worst)
                worst = d;
        }
    }
    print_message("bands: %u reads, largest %zu bytes, worst difference %d\n", f.reads,
                  f.largest_read, worst);
    assert_true(worst <= 2);
    ts_image_free(&banded);
    ts_image_free(&whole);
    ts_image_free(&f.pixels);
}

static void test_thumbnail_of_big_region_is_read_in_bands(void **state)
{
    (void)state;
    struct ts_plan p = plan_of(0, 0, W, H, 400, 300);
    check_banded_matches_whole(&p);
}

static void test_odd_region_and_size_in_bands_match_whole_read(void **state)
{
    (void)state;
    struct ts_plan p = plan_of(37, 101, 3901, 2833, 1237, 899);
    check_banded_matches_whole(&p);
}

static void test_peak_bytes_reflect_banding(void **state)
{
    (void)state;
    struct fake f;
    memset(&f, 0, sizeof f);
    f.reader.info.width = 40000;
    f.reader.info.height = 30000;
    f.reader.info.channels = 3;
    f.reader.info.nlevels = 1;
    f.reader.info.levels[0] = (struct ts_level){40000, 30000, 0, 0};
    f.reader.ops = &fake_ops;
    struct ts_plan p = plan_of(0, 0, 40000, 30000, 200, 150);
    p.img_w = 40000;
    p.img_h = 30000;
    size_t peak = render_peak_bytes(&f.reader, &p);
    /* A 4.8 GB region, rendered a band at a time: one output row is 200 source rows, and the
     * filter reaches three output rows either side, so a band is some 1400 rows of 40000. */
    assert_true(peak < (size_t)256 << 20);
    struct ts_plan tile = plan_of(0, 0, 256, 256, 256, 256);
    tile.img_w = 40000;
    tile.img_h = 30000;
    assert_true(render_peak_bytes(&f.reader, &tile) < (size_t)2 << 20);
}

/* A two-level source whose second level was floored (1411 -> 705), as vips writes pyramids. */
struct two_level {
    struct ts_reader reader;
    struct ts_image level1;
    unsigned level0_reads;
};

static int two_level_read(struct ts_reader *r, const struct ts_read_req *q, struct ts_image *out,
                          struct ts_err *err)
{
    struct two_level *t = (struct two_level *)r;
    (void)err;
    if (q->level == 0) {
        t->level0_reads++;
        return TS_EINVAL; /* the test only expects reads of level 1 */
    }
    int rc = ts_image_alloc(out, q->w, q->h, 3);
    if (rc)
        return rc;
    for (uint32_t y = 0; y < q->h; y++)
        memcpy(ts_image_row(out, y), ts_image_row(&t->level1, q->y + y) + (size_t)q->x * 3,
               (size_t)q->w * 3);
    return TS_OK;
}

static const struct ts_reader_ops two_level_ops = {"two-level", two_level_read, fake_close, NULL,
                                                   NULL,        NULL,           NULL,       NULL};

/* IIIF asks for ceil(387/2) = 194 columns of the last tile at scale 2; the floored level has 193:
 * the tile is those pixels as stored, the missing column repeating the last one. */
static void test_tile_of_floored_level_is_copied_not_filtered(void **state)
{
    (void)state;
    struct two_level t;
    memset(&t, 0, sizeof t);
    t.reader.ops = &two_level_ops;
    t.reader.info.width = t.reader.info.height = 1411;
    t.reader.info.channels = 3;
    t.reader.info.nlevels = 2;
    t.reader.info.levels[0] = (struct ts_level){1411, 1411, 256, 256};
    t.reader.info.levels[1] = (struct ts_level){705, 705, 256, 256};
    assert_int_equal(ts_image_alloc(&t.level1, 705, 705, 3), TS_OK);
    for (uint32_t y = 0; y < 705; y++)
        for (uint32_t x = 0; x < 705; x++) {
            uint8_t *px = ts_image_row(&t.level1, y) + 3 * x;
            px[0] = (uint8_t)(x * 7), px[1] = (uint8_t)(y * 13), px[2] = (uint8_t)(x ^ y);
        }
    struct ts_plan p = {0};
    p.img_w = p.img_h = 1411;
    p.rx = 1024, p.ry = 512, p.rw = 387, p.rh = 512;
    p.out_w = 194, p.out_h = 256;
    p.format = TS_FORMAT_JPG;
    struct ts_image out = {0};
    struct ts_err err = {0};
    assert_int_equal(render_execute(&t.reader, &p, NULL, &out, &err), TS_OK);
    assert_int_equal(out.width, 194);
    assert_int_equal(out.height, 256);
    assert_int_equal(t.level0_reads, 0);
    for (uint32_t y = 0; y < 256; y++)
        for (uint32_t x = 0; x < 194; x++) {
            uint32_t sx = x < 193 ? 512 + x : 704; /* the last column repeats */
            const uint8_t *want = ts_image_row(&t.level1, 256 + y) + 3 * sx;
            const uint8_t *got = ts_image_row(&out, y) + 3 * x;
            assert_memory_equal(got, want, 3);
        }
    ts_image_free(&out);
    ts_image_free(&t.level1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thumbnail_of_big_region_is_read_in_bands),
        cmocka_unit_test(test_odd_region_and_size_in_bands_match_whole_read),
        cmocka_unit_test(test_peak_bytes_reflect_banding),
        cmocka_unit_test(test_tile_of_floored_level_is_copied_not_filtered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
