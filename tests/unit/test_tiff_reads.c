/* How many reads a TIFF costs: opening a pyramid reads each directory once, and moving between
 * levels afterwards reads tile data only. The test counts the reader's pread calls by defining
 * pread itself (the program's definition wins over the C library's), so unistd.h, which may
 * rename pread, is not included here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "grid.h"
#include "image/bytes.h"
#include "image/reader.h"
#include "testutil.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <tiffio.h>

long syscall(long number, ...);

static bool g_counting;
static unsigned g_reads;

ssize_t pread(int fd, void *buf, size_t n, off_t off);
ssize_t pread64(int fd, void *buf, size_t n, off_t off);

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    if (g_counting)
        g_reads++;
    return (ssize_t)syscall(SYS_pread64, fd, buf, n, off);
}

ssize_t pread64(int fd, void *buf, size_t n, off_t off)
{
    return pread(fd, buf, n, off);
}

static const struct grid_tiff_opts jpeg_pyramid = {.compression = COMPRESSION_JPEG,
                                                   .tiled = true,
                                                   .tile = 256,
                                                   .bits = 8,
                                                   .layout = GRID_PYRAMID_IFDS,
                                                   .jpeg_quality = 90,
                                                   .ycbcr = true};

static void write_pyramid(char *path, size_t n, const char *name, const struct grid_tiff_opts *o)
{
    struct ts_image img;
    assert_int_equal(tu_mkdirs(TESSERA_TEST_WORK), 0);
    snprintf(path, n, "%s/%s", TESSERA_TEST_WORK, name);
    assert_int_equal(grid_make(GRID_SIZE, GRID_SIZE, GRID_CELLS, 3, &img), TS_OK);
    assert_int_equal(grid_write_tiff(path, &img, o), 0);
    ts_image_free(&img);
}

/* The number of tiles (of edge `tile`) a w x h region at (x, y) touches. */
static unsigned tiles_touched(uint32_t x, uint32_t y, uint32_t w, uint32_t h, uint32_t tile)
{
    return ((x + w - 1) / tile - x / tile + 1) * ((y + h - 1) / tile - y / tile + 1);
}

static void read_level(struct ts_reader *r, uint32_t level, uint32_t x, uint32_t y, uint32_t w,
                       uint32_t h)
{
    struct ts_read_req q = {.level = level, .x = x, .y = y, .w = w, .h = h};
    struct ts_image img = {0};
    struct ts_err err = {0};
    int rc = ts_reader_read(r, &q, &img, &err);
    if (rc != TS_OK)
        fail_msg("read level %u: %d %s", level, rc, err.msg);
    ts_image_free(&img);
}

static void check_reads(const struct grid_tiff_opts *o, const char *name)
{
    char path[512];
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    write_pyramid(path, sizeof path, name, o);
    /* grid_write_tiff stores three levels, each in a directory of its own. */
    const unsigned dirs = 3;

    g_reads = 0;
    g_counting = true;
    int rc = ts_reader_open(path, &r, &err);
    g_counting = false;
    if (rc != TS_OK)
        fail_msg("open %s: %d %s", name, rc, err.msg);
    assert_int_equal(r->info.nlevels, 3);
    /* The format sniff, the header, and one read for each directory with its values. */
    if (g_reads > 2 + dirs)
        fail_msg("%s: opening read %u times, want at most %u", name, g_reads, 2 + dirs);

    /* Visit every level once, then again: the second round reads tile data and nothing else. */
    for (uint32_t l = 0; l < 3; l++)
        read_level(r, l, 0, 0, 200, 200);
    g_reads = 0;
    g_counting = true;
    for (uint32_t l = 0; l < 3; l++)
        read_level(r, l, 0, 0, 200, 200);
    read_level(r, 0, 300, 300, 100, 100);
    g_counting = false;
    /* The grid's tiles are 256 px: a 200 px corner is one tile, (300, 300) one more. A reader
     * may keep a decoded tile, so fewer reads are fine; directory reads are not. */
    unsigned most =
        3 * tiles_touched(0, 0, 200, 200, o->tile) + tiles_touched(300, 300, 100, 100, o->tile);
    if (g_reads > most)
        fail_msg("%s: revisiting the levels read %u times, want at most %u (tile data only)", name,
                 g_reads, most);
    ts_reader_close(r);
}

static void test_uncompressed_pyramid_reads_each_directory_once(void **s)
{
    (void)s;
    struct grid_tiff_opts o = {.compression = COMPRESSION_NONE,
                               .tiled = true,
                               .tile = 256,
                               .bits = 8,
                               .layout = GRID_PYRAMID_IFDS};
    check_reads(&o, "reads-none.tif");
}

static void test_jpeg_pyramid_reads_each_directory_once(void **s)
{
    (void)s;
    /* YCbCr JPEG makes libtiff look at each level's first tile when it loads the directory. */
    check_reads(&jpeg_pyramid, "reads-jpeg.tif");
}

static void test_subifd_pyramid_reads_each_directory_once(void **s)
{
    (void)s;
    struct grid_tiff_opts o = {.compression = COMPRESSION_ADOBE_DEFLATE,
                               .tiled = true,
                               .tile = 256,
                               .bits = 8,
                               .layout = GRID_PYRAMID_SUBIFDS};
    check_reads(&o, "reads-subifd.tif");
}

/* Opens path with a reopen state (NULL: a first open), counting its reads. */
static struct ts_reader *open_again(const char *path, const struct ts_reopen *again,
                                    unsigned *reads)
{
    struct ts_reader *r = NULL;
    struct ts_bytes *b = NULL;
    struct ts_err err = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(ts_bytes_from_fd(fd, &b), TS_OK);
    g_reads = 0;
    g_counting = true;
    int rc = ts_reader_open_bytes(b, 0, NULL, again, &r, &err);
    g_counting = false;
    if (rc != TS_OK)
        fail_msg("open %s: %d %s", path, rc, err.msg);
    *reads = g_reads;
    return r;
}

static void assert_same_pixels(struct ts_reader *a, struct ts_reader *b, uint32_t level)
{
    const struct ts_level *lv = &a->info.levels[level];
    struct ts_read_req q = {.level = level, .x = 0, .y = 0, .w = lv->width, .h = lv->height};
    struct ts_image ia = {0}, ib = {0};
    struct ts_err err = {0};
    char why[128];
    assert_int_equal(ts_reader_read(a, &q, &ia, &err), TS_OK);
    assert_int_equal(ts_reader_read(b, &q, &ib, &err), TS_OK);
    if (!tu_same_image(&ia, &ib, why, sizeof why))
        fail_msg("level %u: %s", level, why);
    ts_image_free(&ia);
    ts_image_free(&ib);
}

/* A file opened again with what its first open learnt reads the header and nothing more, then
 * only the directory of the level a read asks for, and delivers what a first open delivers. */
static void check_reopen(const struct grid_tiff_opts *o, const char *name)
{
    char path[512];
    unsigned first, again_reads;
    struct ts_buf state = {0};
    write_pyramid(path, sizeof path, name, o);
    struct ts_reader *fresh = open_again(path, NULL, &first);
    assert_int_equal(ts_reader_reopen_state(fresh, &state), TS_OK);
    struct ts_reopen again = {state.data, state.len};
    struct ts_reader *r = open_again(path, &again, &again_reads);
    /* The format sniff and the header: no directory. */
    if (again_reads > 2)
        fail_msg("%s: reopening read %u times (a first open: %u), want at most 2", name,
                 again_reads, first);
    assert_int_equal(r->info.nlevels, fresh->info.nlevels);
    assert_int_equal(r->info.width, fresh->info.width);
    assert_int_equal(r->info.height, fresh->info.height);
    assert_int_equal(r->info.channels, fresh->info.channels);
    assert_int_equal(r->info.npages, fresh->info.npages);
    assert_string_equal(r->info.format, "tiff");
    assert_int_equal(r->info.meta_len, fresh->info.meta_len);
    for (uint32_t l = 0; l < r->info.nlevels; l++) {
        assert_int_equal(r->info.levels[l].width, fresh->info.levels[l].width);
        assert_int_equal(r->info.levels[l].tile_w, fresh->info.levels[l].tile_w);
    }
    /* The smallest level: its directory (and, for YCbCr JPEG, libtiff's look at its first
     * tile) and its one tile. */
    uint32_t last = r->info.nlevels - 1;
    g_reads = 0;
    g_counting = true;
    read_level(r, last, 0, 0, r->info.levels[last].width, r->info.levels[last].height);
    g_counting = false;
    if (g_reads > 3)
        fail_msg("%s: the smallest level read %u times after a reopen, want at most 3", name,
                 g_reads);
    for (uint32_t l = 0; l < r->info.nlevels; l++)
        assert_same_pixels(fresh, r, l);
    ts_reader_close(r);
    ts_reader_close(fresh);
    ts_buf_free(&state);
}

static void test_jpeg_pyramid_reopens_reading_one_directory(void **s)
{
    (void)s;
    check_reopen(&jpeg_pyramid, "reopen-jpeg.tif");
}

static void test_subifd_pyramid_reopens_reading_one_directory(void **s)
{
    (void)s;
    struct grid_tiff_opts o = {.compression = COMPRESSION_ADOBE_DEFLATE,
                               .tiled = true,
                               .tile = 256,
                               .bits = 16,
                               .layout = GRID_PYRAMID_SUBIFDS};
    check_reopen(&o, "reopen-subifd.tif");
}

/* A state that does not fit the file (another file's, cut short, damaged) is ignored: the
 * open discovers the levels as a first open does, and reads the right pixels. */
static void test_reopen_state_that_does_not_fit_is_ignored(void **s)
{
    (void)s;
    char path[512], other[512];
    unsigned reads, first;
    struct ts_buf state = {0};
    struct grid_tiff_opts o = {.compression = COMPRESSION_NONE,
                               .tiled = true,
                               .tile = 256,
                               .bits = 8,
                               .layout = GRID_PYRAMID_IFDS};
    struct grid_tiff_opts flat = o;
    flat.layout = GRID_FLAT;
    write_pyramid(path, sizeof path, "reopen-fit.tif", &o);
    write_pyramid(other, sizeof other, "reopen-other.tif", &flat);
    struct ts_reader *fresh = open_again(path, NULL, &first);
    struct ts_reader *single = open_again(other, NULL, &reads);
    assert_int_equal(single->info.nlevels, 1);

    /* The single-level file's state offered for the pyramid (another size). */
    assert_int_equal(ts_reader_reopen_state(single, &state), TS_OK);
    struct ts_reopen foreign = {state.data, state.len};
    struct ts_reader *r = open_again(path, &foreign, &reads);
    assert_int_equal(r->info.nlevels, 3);
    assert_int_equal(reads, first);
    assert_same_pixels(fresh, r, 2);
    ts_reader_close(r);

    ts_buf_free(&state);
    assert_int_equal(ts_reader_reopen_state(fresh, &state), TS_OK);
    /* Cut short by one byte, then with its first byte changed: both are noticed, and the
     * file is read as on a first open. */
    struct ts_reopen cut = {state.data, state.len - 1};
    r = open_again(path, &cut, &reads);
    assert_int_equal(reads, first);
    assert_same_pixels(fresh, r, 1);
    ts_reader_close(r);
    uint8_t *bad = malloc(state.len);
    assert_non_null(bad);
    memcpy(bad, state.data, state.len);
    bad[0] ^= 0x20;
    struct ts_reopen damaged = {bad, state.len};
    r = open_again(path, &damaged, &reads);
    assert_int_equal(reads, first);
    assert_same_pixels(fresh, r, 0);
    ts_reader_close(r);
    free(bad);

    /* Formats that keep no state say so. */
    char jpg[512];
    struct ts_image img;
    snprintf(jpg, sizeof jpg, "%s/reopen.jpg", TESSERA_TEST_WORK);
    assert_int_equal(grid_make(64, 64, 4, 3, &img), TS_OK);
    assert_int_equal(grid_write_jpeg(jpg, &img, 90), 0);
    ts_image_free(&img);
    struct ts_reader *j = open_again(jpg, NULL, &reads);
    ts_buf_free(&state);
    assert_int_equal(ts_reader_reopen_state(j, &state), TS_DECLINED);
    ts_reader_close(j);

    ts_reader_close(single);
    ts_reader_close(fresh);
    ts_buf_free(&state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uncompressed_pyramid_reads_each_directory_once),
        cmocka_unit_test(test_jpeg_pyramid_reads_each_directory_once),
        cmocka_unit_test(test_subifd_pyramid_reads_each_directory_once),
        cmocka_unit_test(test_jpeg_pyramid_reopens_reading_one_directory),
        cmocka_unit_test(test_subifd_pyramid_reopens_reading_one_directory),
        cmocka_unit_test(test_reopen_state_that_does_not_fit_is_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
