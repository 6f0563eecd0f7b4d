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
#include "image/reader.h"
#include "testutil.h"

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
    struct grid_tiff_opts o = {.compression = COMPRESSION_JPEG,
                               .tiled = true,
                               .tile = 256,
                               .bits = 8,
                               .layout = GRID_PYRAMID_IFDS,
                               .jpeg_quality = 90,
                               .ycbcr = true};
    check_reads(&o, "reads-jpeg.tif");
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uncompressed_pyramid_reads_each_directory_once),
        cmocka_unit_test(test_jpeg_pyramid_reads_each_directory_once),
        cmocka_unit_test(test_subifd_pyramid_reads_each_directory_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
