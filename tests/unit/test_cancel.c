/* Reads and renders stop when their request's token trips, and banded renders of sources that
 * decode from the top decode each row about once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "grid.h"
#include "image/reader.h"
#include "render/render.h"
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
#include <webp/encode.h>

#define DATA TESSERA_TEST_DATA
#define WORK TESSERA_TEST_WORK

static void work_path(char *out, size_t cap, const char *name)
{
    assert_int_equal(tu_mkdirs(WORK), 0);
    int n = snprintf(out, cap, "%s/%s", WORK, name);
    assert_true(n > 0 && (size_t)n < cap);
}

static void write_webp(const char *path)
{
    struct ts_image g;
    uint8_t *enc = NULL;
    assert_int_equal(grid_make(600, 400, 6, 3, &g), TS_OK);
    size_t n = WebPEncodeRGB(g.data, 600, 400, (int)g.stride, 80, &enc);
    assert_true(n > 0);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(enc, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    WebPFree(enc);
    ts_image_free(&g);
}

/* One file per reader (and both TIFF layouts). */
static const char *source(int i, char *buf, size_t cap)
{
    switch (i) {
    case 0: snprintf(buf, cap, "%s/retina-1411x1411.jpg", DATA); break;
    case 1: snprintf(buf, cap, "%s/camera-512-gray.png", DATA); break;
    case 2: snprintf(buf, cap, "%s/retina-striped-jpeg.tif", DATA); break;
    case 3: snprintf(buf, cap, "%s/retina-pyr-jpeg-256.tif", DATA); break;
    case 4: snprintf(buf, cap, "%s/retina-untiled.jp2", DATA); break;
    case 5: work_path(buf, cap, "grid.webp"), write_webp(buf); break;
    default: return NULL;
    }
    return buf;
}

/* The reader's own read, past ts_reader_read's look at the token, so the reader's loops are
 * what must notice it. */
static int read_whole(struct ts_reader *r, struct ts_cancel *c, struct ts_err *err)
{
    struct ts_image img = {0};
    struct ts_read_req q = {.w = r->info.width,
                            .h = r->info.height,
                            .min_w = r->info.width,
                            .min_h = r->info.height,
                            .cancel = c};
    int rc = r->ops->read(r, &q, &img, err);
    ts_image_free(&img);
    return rc;
}

static void test_tripped_token_stops_every_reader(void **state)
{
    (void)state;
    char path[4096];
    for (int i = 0; source(i, path, sizeof path); i++) {
        struct ts_reader *r;
        struct ts_err err = {0};
        struct ts_cancel c;
        assert_int_equal(ts_reader_open(path, &r, &err), TS_OK);
        ts_cancel_init(&c, 0);
        assert_int_equal(read_whole(r, &c, &err), TS_OK); /* an untripped token changes nothing */
        ts_cancel_stop(&c, TS_ECANCELED);
        if (read_whole(r, &c, &err) != TS_ECANCELED)
            fail_msg("%s: a canceled read went on", path);
        assert_non_null(strstr(err.msg, "canceled"));
        ts_reader_close(r);
    }
}

static void test_expired_deadline_times_out_every_reader(void **state)
{
    (void)state;
    char path[4096];
    for (int i = 0; source(i, path, sizeof path); i++) {
        struct ts_reader *r;
        struct ts_err err = {0};
        struct ts_cancel c;
        assert_int_equal(ts_reader_open(path, &r, &err), TS_OK);
        ts_cancel_init(&c, 1);
        c.deadline_ns = ts_monotonic_ns() - 1;
        if (read_whole(r, &c, &err) != TS_ETIMEOUT)
            fail_msg("%s: a read past its deadline went on", path);
        assert_non_null(strstr(err.msg, "deadline"));
        ts_reader_close(r);
    }
}

struct tripper {
    struct ts_cancel *c;
    long after_ms;
};

static void *trip_later(void *arg)
{
    struct tripper *t = arg;
    tu_sleep_ms(t->after_ms);
    ts_cancel_stop(t->c, TS_ECANCELED);
    return NULL;
}

/* The JPEG 2000 decode runs in a child; the parent must end it, not wait it out. */
static void test_jp2_child_is_killed_when_canceled(void **state)
{
    (void)state;
    struct ts_reader *r;
    struct ts_err err = {0};
    struct ts_cancel c;
    pthread_t th;
    assert_int_equal(ts_reader_open(DATA "/retina-untiled.jp2", &r, &err), TS_OK);
    int64_t t0 = ts_monotonic_ns();
    assert_int_equal(read_whole(r, NULL, &err), TS_OK);
    int64_t whole = ts_monotonic_ns() - t0;
    ts_cancel_init(&c, 0);
    struct tripper t = {&c, 5};
    assert_int_equal(pthread_create(&th, NULL, trip_later, &t), 0);
    t0 = ts_monotonic_ns();
    int rc = read_whole(r, &c, &err);
    int64_t took = ts_monotonic_ns() - t0;
    pthread_join(th, NULL);
    print_message("jp2: whole decode %.0f ms, canceled after %.0f ms\n", whole / 1e6, took / 1e6);
    /* A decode shorter than the trip and one poll cannot be told from a finished one. */
    if (whole > 100 * 1000000LL) {
        assert_int_equal(rc, TS_ECANCELED);
        assert_true(took < whole);
    }
    ts_reader_close(r);
}

static struct ts_plan plan_of(uint32_t w, uint32_t h, uint32_t out_w, uint32_t out_h)
{
    struct ts_plan p;
    memset(&p, 0, sizeof p);
    p.rw = w;
    p.rh = h;
    p.out_w = out_w;
    p.out_h = out_h;
    p.img_w = w;
    p.img_h = h;
    p.format = TS_FORMAT_JPG;
    p.quality = TS_QUALITY_DEFAULT;
    return p;
}

static void test_render_stops_on_token(void **state)
{
    (void)state;
    struct ts_reader *r;
    struct ts_err err = {0};
    struct ts_cancel c;
    struct ts_image out = {0};
    assert_int_equal(ts_reader_open(DATA "/retina-1411x1411.jpg", &r, &err), TS_OK);
    struct ts_plan p = plan_of(1411, 1411, 300, 300);
    ts_cancel_init(&c, 0);
    ts_cancel_stop(&c, TS_ECANCELED);
    assert_int_equal(render_execute(r, &p, &c, &out, &err), TS_ECANCELED);
    assert_null(out.data);
    ts_cancel_init(&c, 1);
    c.deadline_ns = ts_monotonic_ns() - 1;
    assert_int_equal(render_execute(r, &p, &c, &out, &err), TS_ETIMEOUT);
    assert_null(out.data);
    ts_reader_close(r);
}

/* A reader passing reads on to another without the banding hint, so nothing is kept between
 * bands and every band decodes afresh: what kept rows must reproduce. */
struct forgetful {
    struct ts_reader base;
    struct ts_reader *inner;
};

static int forgetful_read(struct ts_reader *r, const struct ts_read_req *q, struct ts_image *out,
                          struct ts_err *err)
{
    struct ts_read_req plain = *q;
    plain.more = false;
    return ts_reader_read(((struct forgetful *)r)->inner, &plain, out, err);
}

static void forgetful_close(struct ts_reader *r)
{
    (void)r;
}

static const struct ts_reader_ops forgetful_ops = {
    "forgetful", forgetful_read, forgetful_close, NULL, NULL, NULL, NULL, NULL};

/* A tall source rendered small goes in many overlapping bands; the rows the readers decode
 * stay near the source's height instead of growing with the number of bands. */
static void check_decodes_once(const char *path, uint32_t w, uint32_t h)
{
    struct ts_reader *r;
    struct ts_err err = {0};
    struct ts_image out = {0}, fresh = {0};
    assert_int_equal(ts_reader_open(path, &r, &err), TS_OK);
    struct ts_plan p = plan_of(w, h, w / 10, h / 10);
    uint64_t before = ts_reader_rows_decoded();
    assert_int_equal(render_execute(r, &p, NULL, &out, &err), TS_OK);
    uint64_t rows = ts_reader_rows_decoded() - before;
    print_message("%s: %llu rows decoded for %u\n", path, (unsigned long long)rows, h);
    assert_true(rows >= h);
    assert_true(rows * 10 <= (uint64_t)h * 11);

    struct forgetful f = {.base = {.ops = &forgetful_ops, .info = r->info}, .inner = r};
    before = ts_reader_rows_decoded();
    assert_int_equal(render_execute(&f.base, &p, NULL, &fresh, &err), TS_OK);
    print_message("without keeping: %llu rows\n",
                  (unsigned long long)(ts_reader_rows_decoded() - before));
    assert_int_equal(out.height, fresh.height);
    for (uint32_t y = 0; y < out.height; y++)
        assert_memory_equal(ts_image_row(&out, y), ts_image_row(&fresh, y),
                            (size_t)out.width * out.channels);
    ts_image_free(&fresh);
    ts_image_free(&out);
    ts_reader_close(r);
}

static void test_banded_jpeg_and_png_decode_each_row_once(void **state)
{
    (void)state;
    char path[4096];
    struct ts_image g;
    /* 3000 x 16000: 192 MB at 4 bytes a pixel, several 32 MB bands. */
    assert_int_equal(grid_make(3000, 16000, 8, 3, &g), TS_OK);
    work_path(path, sizeof path, "tall.png");
    assert_int_equal(grid_write_png(path, &g, 8), 0);
    check_decodes_once(path, 3000, 16000);
    work_path(path, sizeof path, "tall.jpg");
    assert_int_equal(grid_write_jpeg(path, &g, 85), 0);
    check_decodes_once(path, 3000, 16000);
    ts_image_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tripped_token_stops_every_reader),
        cmocka_unit_test(test_expired_deadline_times_out_every_reader),
        cmocka_unit_test(test_jp2_child_is_killed_when_canceled),
        cmocka_unit_test(test_render_stops_on_token),
        cmocka_unit_test(test_banded_jpeg_and_png_decode_each_row_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
