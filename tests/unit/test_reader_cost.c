/* Readers state what a read will cost before decoding anything: tiny files declaring huge images
 * (tests/data/bombs) open cheaply and cost more than any request may spend, and on real files
 * the figure covers what a read really takes without being wildly above it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "image/reader.h"
#include "render/render.h"
#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <webp/encode.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define GB ((size_t)1 << 30)
#define MB ((size_t)1 << 20)

static size_t status_bytes(const char *field)
{
    char line[256];
    size_t n = strlen(field), kb = 0;
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kb = strtoul(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb << 10;
}

/* Lets VmHWM start again from the current resident size (Linux 4.0 and later). */
static void reset_peak(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "5", 1), 1);
    close(fd);
}

static size_t children_peak(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (size_t)ru.ru_maxrss << 10;
}

static void data_path(char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", TESSERA_TEST_DATA, name);
    assert_true(n > 0 && (size_t)n < cap);
}

/* A viewer's tile: 256 px at the top left of the smallest level still 256 px across. */
static void tile_req(const struct ts_reader *r, struct ts_read_req *q)
{
    memset(q, 0, sizeof *q);
    for (uint32_t l = 1; l < r->info.nlevels; l++)
        if (r->info.levels[l].width >= 256 && r->info.levels[l].height >= 256)
            q->level = l;
    const struct ts_level *lv = &r->info.levels[q->level];
    q->w = q->min_w = lv->width < 256 ? lv->width : 256;
    q->h = q->min_h = lv->height < 256 ? lv->height : 256;
}

static struct ts_plan thumbnail_plan(const struct ts_image_info *info, uint32_t rx, uint32_t ry,
                                     uint32_t rw, uint32_t rh, uint32_t ow)
{
    struct ts_plan p = {0};
    p.img_w = info->width;
    p.img_h = info->height;
    p.rx = rx, p.ry = ry, p.rw = rw, p.rh = rh;
    p.out_w = ow;
    p.out_h = (uint32_t)((uint64_t)ow * rh / rw);
    p.out_h = p.out_h ? p.out_h : 1;
    p.quality = TS_QUALITY_DEFAULT;
    p.format = TS_FORMAT_JPG;
    return p;
}

struct bomb {
    const char *name;
    int open_rc; /* TS_OK, or refused at open */
    bool costly; /* false only for the control, whose reads are cheap */
};

static const struct bomb bombs[] = {
    {"bombs/j2k-2g-32lvl.j2k", TS_OK, true},
    {"bombs/j2k-65k-tiles.j2k", TS_ETOOLARGE, true},
    {"bombs/progressive-30000.jpg", TS_OK, true},
    {"bombs/tiff-16384-tile.tif", TS_OK, true},
    {"bombs/png-60000-interlaced.png", TS_OK, true},
    {"bombs/png-60000-rows.png", TS_OK, false},
};

static void test_bombs_open_cheaply_and_cost_too_much(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bombs / sizeof bombs[0]; i++) {
        const struct bomb *b = &bombs[i];
        char path[4096];
        struct ts_reader *r = NULL;
        struct ts_err err = {0};
        data_path(path, sizeof path, b->name);
        reset_peak();
        size_t base = status_bytes("VmRSS");
        int rc = ts_reader_open(path, &r, &err);
        size_t grew = status_bytes("VmHWM") - base;
        print_message("%s: open %s, %zu KB\n", b->name, ts_status_name(rc), grew >> 10);
        assert_int_equal(rc, b->open_rc);
        assert_true(grew < (size_t)32 * MB);
        if (rc != TS_OK)
            continue;

        struct ts_read_req q;
        size_t cost = 0;
        tile_req(r, &q);
        rc = ts_reader_cost(r, &q, &cost, &err);
        print_message("  tile at level %u: %s, %zu MB\n", q.level, ts_status_name(rc), cost / MB);
        /* Refused either way: over any budget, or a read the reader itself would refuse. */
        struct ts_plan tile = thumbnail_plan(&r->info, 0, 0, 256, 256, 256);
        struct ts_plan whole = thumbnail_plan(&r->info, 0, 0, r->info.width, r->info.height, 256);
        size_t tile_peak = render_peak_bytes(r, &tile), whole_peak = render_peak_bytes(r, &whole);
        print_message("  render of a tile %zu MB, of a thumbnail %zu MB\n", tile_peak / MB,
                      whole_peak / MB);
        if (b->costly) {
            assert_true(rc == TS_ETOOLARGE || (rc == TS_OK && cost > 2 * GB));
            assert_true(tile_peak > 2 * GB);
            assert_true(whole_peak > 2 * GB);
        } else {
            assert_int_equal(rc, TS_OK);
            assert_true(cost < 16 * MB);
            assert_true(tile_peak < 64 * MB);
        }
        ts_reader_close(r);
    }
}

/* What one read of a whole level-0 image took, next to the reader's figure. */
struct measured {
    int rc;
    uint32_t w, h;
    size_t cost, self, child, used;
};

/* Runs in a child of its own, so that the peak of the decoder it forks (JPEG 2000) is its
 * alone: RUSAGE_CHILDREN keeps the largest child peak a process has ever waited for. */
static void measure_real_file(const char *path, struct measured *m)
{
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    struct ts_image img = {0};
    memset(m, 0, sizeof *m);
    if ((m->rc = ts_reader_open(path, &r, &err)) != TS_OK)
        return;
    struct ts_read_req q = {0};
    q.w = q.min_w = m->w = r->info.width;
    q.h = q.min_h = m->h = r->info.height;
    if ((m->rc = ts_reader_cost(r, &q, &m->cost, &err)) != TS_OK)
        return;
    /* A child that does nothing: fork leaves some pages to fault in again, so the decoding
     * child's growth is measured from this one's peak. */
    pid_t idle = fork();
    if (idle == 0)
        _exit(0);
    if (idle > 0)
        waitpid(idle, NULL, 0);
    size_t child_base = children_peak();
    reset_peak();
    size_t base = status_bytes("VmRSS");
    if ((m->rc = ts_reader_read(r, &q, &img, &err)) != TS_OK)
        return;
    m->self = status_bytes("VmHWM") - base;
    m->child = children_peak() > child_base ? children_peak() - child_base : 0;
    /* The child decodes into a mapping this process shares: those pages count once. */
    size_t shared = img.stride * img.height;
    m->used = m->self + (m->child > shared ? m->child - shared : 0);
    ts_image_free(&img);
    ts_reader_close(r);
}

static void check_real_path(const char *path, const char *name)
{
    struct measured m;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        measure_real_file(path, &m);
        _exit(write(fds[1], &m, sizeof m) == (ssize_t)sizeof m ? 0 : 1);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], &m, sizeof m), (ssize_t)sizeof m);
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(m.rc, TS_OK);
    print_message("%-36s %5ux%-5u cost %6zu KB, used %6zu KB (self %zu, child %zu)\n", name, m.w,
                  m.h, m.cost >> 10, m.used >> 10, m.self >> 10, m.child >> 10);
    /* Sanitizers keep freed memory in quarantine and add shadow pages, so only a plain build
     * can hold the figure to the measured peak; the upper bound holds either way. */
    if (!UNDER_ASAN)
        assert_true(m.cost >= m.used);
    assert_true(m.cost <= 20 * m.used + 8 * MB);
}

static void check_real_file(const char *name)
{
    char path[4096];
    data_path(path, sizeof path, name);
    check_real_path(path, name);
}

static void test_cost_covers_real_reads(void **state)
{
    (void)state;
    static const char *const files[] = {
        "retina-tiled512-rpcl.jp2",
        "retina-untiled.jp2",
        "retina-htj2k.j2c",
        "retina-pyr-jpeg-256.tif",
        "retina-striped-jpeg.tif",
        "chessboard-200-gray16-le.tif",
        "multipage-2p-gray.tif",
        "retina-1411x1411.jpg",
        "rocket-300-cmyk-noprofile.jpg",
        "rocket-640x427-adobergb.jpg",
        "exif-orientation/coffee-orient-6.jpg",
        "camera-512-gray.png",
        "chessboard-200-rgb16.png",
        "green-palette-320x240.png",
        "horse-400x328-gray-alpha.png",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        check_real_file(files[i]);
}

/* No WebP among the fixtures: lossy, lossy with alpha and lossless ones are made here. */
static void test_cost_covers_webp_reads(void **state)
{
    (void)state;
    enum { WW = 1600, WH = 1200 };
    uint8_t *rgba = malloc((size_t)WW * WH * 4), *rgb = malloc((size_t)WW * WH * 3);
    assert_non_null(rgba);
    assert_non_null(rgb);
    for (size_t y = 0; y < WH; y++)
        for (size_t x = 0; x < WW; x++) {
            uint8_t *p = rgba + (y * WW + x) * 4, *q = rgb + (y * WW + x) * 3;
            q[0] = p[0] = (uint8_t)(x * 255 / WW);
            q[1] = p[1] = (uint8_t)(y * 255 / WH);
            q[2] = p[2] = ((x / 37 + y / 41) & 1) ? 220 : 30;
            p[3] = (uint8_t)(255 - x * 128 / WW);
        }
    assert_int_equal(tu_mkdirs(TESSERA_TEST_WORK), 0);
    static const char *const names[3] = {"lossy.webp", "lossy-alpha.webp", "lossless.webp"};
    for (int kind = 0; kind < 3; kind++) {
        uint8_t *enc = NULL;
        size_t n = kind == 0   ? WebPEncodeRGB(rgb, WW, WH, WW * 3, 80, &enc)
                   : kind == 1 ? WebPEncodeRGBA(rgba, WW, WH, WW * 4, 80, &enc)
                               : WebPEncodeLosslessRGBA(rgba, WW, WH, WW * 4, &enc);
        assert_true(n > 0);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", TESSERA_TEST_WORK, names[kind]);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(enc, 1, n, f), n);
        assert_int_equal(fclose(f), 0);
        WebPFree(enc);
        check_real_path(path, names[kind]);
    }
    free(rgba);
    free(rgb);
}

static void test_cost_checks_the_region(void **state)
{
    (void)state;
    char path[4096];
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    size_t cost = 0;
    data_path(path, sizeof path, "camera-512-gray.png");
    assert_int_equal(ts_reader_open(path, &r, &err), TS_OK);
    struct ts_read_req q = {.level = 0, .x = 500, .y = 0, .w = 100, .h = 10};
    assert_int_equal(ts_reader_cost(r, &q, &cost, &err), TS_EINVAL);
    assert_true(cost == SIZE_MAX);
    q.level = 1;
    q.x = 0;
    assert_int_equal(ts_reader_cost(r, &q, &cost, &err), TS_EINVAL);
    assert_int_equal(ts_reader_cost(r, NULL, &cost, &err), TS_EINVAL);
    ts_reader_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bombs_open_cheaply_and_cost_too_much),
        cmocka_unit_test(test_cost_covers_real_reads),
        cmocka_unit_test(test_cost_covers_webp_reads),
        cmocka_unit_test(test_cost_checks_the_region),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
