/* JPEG 2000 reader: codestream pyramid; levels and regions checked against opj_decompress. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "image/jp2.h"
#include "image/reader.h"
#include "testutil.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DATA TESSERA_TEST_DATA
#define WORK TESSERA_TEST_WORK

/* ---- helpers: shell tools, PNG loading, pixel comparison ---- */

static bool have_tool(const char *name)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", name);
    return system(cmd) == 0;
}

static int run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof cmd)
        return -1;
    return system(cmd);
}

static void work_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", WORK, name);
}

/* Every reader here keeps its blocks where the server's would: in a store of the default size. */
static struct tu_block_cache blocks;

static int setup(void **state)
{
    (void)state;
    if (run("mkdir -p '%s'", WORK) != 0)
        return -1;
    return tu_block_cache_init(&blocks, TS_JP2_CACHE_DEFAULT_BYTES);
}

static int teardown(void **state)
{
    (void)state;
    tu_block_cache_free(&blocks);
    return 0;
}

/* ts_jp2_open_fd on a fresh descriptor of path, with the block store. */
static int jp2_open(const char *path, struct ts_reader **r, struct ts_err *err)
{
    int fd = tu_open_ro(path);
    *r = NULL;
    if (fd < 0)
        return ts_fail(err, errno == ENOENT ? TS_ENOTFOUND : TS_EIO, "%s: %s", path,
                       strerror(errno));
    return ts_jp2_open_fd(fd, &blocks.store, r, err);
}

/* Loads an 8- or 16-bit PNG with libpng (16-bit rounded to 8 as image.h prescribes). */
static int load_png(const char *path, struct ts_image *out)
{
    png_structp png = NULL;
    png_infop info = NULL;
    uint8_t *volatile row = NULL;
    volatile int rc = -1;
    FILE *f = fopen(path, "rb");
    out->data = NULL;
    if (!f)
        return -1;
    png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        free(row);
        ts_image_free(out);
        goto done;
    }
    png_init_io(png, f);
    png_read_info(png, info);
    png_set_expand(png);
    png_read_update_info(png, info);
    {
        uint32_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
        uint32_t ch = png_get_channels(png, info), depth = png_get_bit_depth(png, info);
        size_t rb = png_get_rowbytes(png, info);
        if (ts_image_alloc(out, w, h, ch) != TS_OK)
            goto done;
        row = malloc(rb);
        if (!row)
            goto done;
        for (uint32_t y = 0; y < h; y++) {
            uint8_t *dst = ts_image_row(out, y);
            png_read_row(png, row, NULL);
            for (size_t i = 0; i < (size_t)w * ch; i++) {
                if (depth == 16) {
                    uint32_t v = ((uint32_t)row[2 * i] << 8) | row[2 * i + 1];
                    dst[i] = (uint8_t)((v * 255u + 32767u) / 65535u);
                } else {
                    dst[i] = row[i];
                }
            }
        }
        rc = 0;
    }
done:
    free(row);
    if (png)
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
    fclose(f);
    return rc;
}

/* Mean and max absolute difference of got against ref's window at (rx, ry). */
static void diff_window(const struct ts_image *got, const struct ts_image *ref, uint32_t rx,
                        uint32_t ry, double *mean, int *max)
{
    uint64_t sum = 0;
    int mx = 0;
    assert_int_equal(got->channels, ref->channels);
    assert_true(rx + got->width <= ref->width);
    assert_true(ry + got->height <= ref->height);
    for (uint32_t y = 0; y < got->height; y++) {
        const uint8_t *a = ts_image_row(got, y);
        const uint8_t *b = ts_image_row(ref, ry + y) + (size_t)rx * ref->channels;
        for (size_t i = 0; i < (size_t)got->width * got->channels; i++) {
            int d = abs((int)a[i] - (int)b[i]);
            sum += (uint64_t)d;
            if (d > mx)
                mx = d;
        }
    }
    *mean = (double)sum / ((double)got->width * got->height * got->channels);
    *max = mx;
}

/* Decodes a whole resolution level with opj_decompress (another program, same library).
 * PNM output for gray and RGB: opj_decompress writes PNG very slowly. */
static int oracle_level(const char *src, const char *tag, uint32_t level, uint32_t channels,
                        struct ts_image *out)
{
    char file[512];
    char name[128];
    const char *ext = channels == 1 ? "pgm" : channels == 3 ? "ppm" : "png";
    snprintf(name, sizeof name, "oracle-%s-r%u.%s", tag, level, ext);
    work_path(file, sizeof file, name);
    if (run("opj_decompress -i '%s' -o '%s' -r %u >/dev/null 2>&1", src, file, level) != 0)
        return -1;
    return channels == 1 || channels == 3 ? tu_load_pnm(file, out) : load_png(file, out);
}

static struct ts_reader *open_ok(const char *path)
{
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    int rc = jp2_open(path, &r, &err);
    if (rc != TS_OK)
        fail_msg("ts_jp2_open_fd(%s) = %d: %s", path, rc, err.msg);
    return r;
}

static int read_region(struct ts_reader *r, uint32_t level, uint32_t x, uint32_t y, uint32_t w,
                       uint32_t h, struct ts_image *out)
{
    struct ts_read_req req = {
        .level = level, .x = x, .y = y, .w = w, .h = h, .min_w = w, .min_h = h};
    struct ts_err err = {0};
    int rc = r->ops->read(r, &req, out, &err);
    if (rc == TS_OK) {
        assert_int_equal(out->width, w);
        assert_int_equal(out->height, h);
    }
    return rc;
}

/* ---- the bundled retina files ---- */

struct retina_case {
    const char *file;
    const char *tag;
    uint32_t nlevels; /* from the encoder settings recorded in SOURCES.md */
    uint32_t tile;    /* codestream tile edge, 0 for one tile */
};

static const struct retina_case tiled = {"retina-tiled512-rpcl.jp2", "tiled", 5, 512};
static const struct retina_case untiled = {"retina-untiled.jp2", "untiled", 6, 0};
static const struct retina_case htj2k = {"retina-htj2k.j2c", "htj2k", 6, 0};

static void check_info(const struct retina_case *c)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", DATA, c->file);
    struct ts_reader *r = open_ok(path);
    const struct ts_image_info *in = &r->info;
    assert_int_equal(in->width, 1411);
    assert_int_equal(in->height, 1411);
    assert_int_equal(in->channels, 3);
    assert_int_equal(in->bits_per_sample, 8);
    assert_int_equal(in->nlevels, c->nlevels);
    uint32_t expect = 1411;
    for (uint32_t i = 0; i < in->nlevels; i++) {
        assert_int_equal(in->levels[i].width, expect);
        assert_int_equal(in->levels[i].height, expect);
        assert_int_equal(in->levels[i].tile_w, c->tile >> i);
        assert_int_equal(in->levels[i].tile_h, c->tile >> i);
        expect = (expect + 1) / 2;
    }
    r->ops->close(r);
}

static void test_tiled_jp2_levels_follow_codestream(void **state)
{
    (void)state;
    check_info(&tiled);
}

static void test_untiled_jp2_has_six_untiled_levels(void **state)
{
    (void)state;
    check_info(&untiled);
}

static void test_htj2k_codestream_info(void **state)
{
    (void)state;
    check_info(&htj2k);
}

/* Full levels 0..2 and regions that straddle codestream tile (and precinct) borders. */
static void check_pixels(const struct retina_case *c)
{
    static const uint32_t regions[][5] = {
        /* level, x, y, w, h */
        {0, 400, 450, 300, 200},   /* crosses x = 512 */
        {0, 1000, 1000, 411, 411}, /* crosses 1024 both ways, ends at the image edge */
        {0, 511, 0, 2, 1411},      /* a thin column across all tile rows */
        {1, 200, 240, 120, 40},    /* crosses 256 at level 1 */
        {1, 705, 705, 1, 1},       /* the last pixel */
        {2, 97, 120, 60, 50},      /* crosses 128 at level 2 */
    };
    char path[512];
    struct ts_image ref[3] = {{0}};
    if (!have_tool("opj_decompress"))
        skip();
    snprintf(path, sizeof path, "%s/%s", DATA, c->file);
    struct ts_reader *r = open_ok(path);
    for (uint32_t lv = 0; lv < 3; lv++) {
        struct ts_image got;
        double mean;
        int max;
        assert_int_equal(oracle_level(path, c->tag, lv, 3, &ref[lv]), 0);
        assert_int_equal(ref[lv].width, r->info.levels[lv].width);
        assert_int_equal(ref[lv].height, r->info.levels[lv].height);
        assert_int_equal(read_region(r, lv, 0, 0, ref[lv].width, ref[lv].height, &got), TS_OK);
        diff_window(&got, &ref[lv], 0, 0, &mean, &max);
        if (mean >= 1.0 || max > 2)
            fail_msg("%s level %u: mean %.3f max %d", c->file, lv, mean, max);
        ts_image_free(&got);
    }
    for (size_t i = 0; i < sizeof regions / sizeof regions[0]; i++) {
        const uint32_t *g = regions[i];
        struct ts_image got;
        double mean;
        int max;
        assert_int_equal(read_region(r, g[0], g[1], g[2], g[3], g[4], &got), TS_OK);
        diff_window(&got, &ref[g[0]], g[1], g[2], &mean, &max);
        if (mean >= 1.0 || max > 2)
            fail_msg("%s region %zu: mean %.3f max %d", c->file, i, mean, max);
        ts_image_free(&got);
    }
    for (uint32_t lv = 0; lv < 3; lv++)
        ts_image_free(&ref[lv]);
    r->ops->close(r);
}

static void test_tiled_jp2_matches_opj_decompress(void **state)
{
    (void)state;
    check_pixels(&tiled);
}

static void test_untiled_jp2_matches_opj_decompress(void **state)
{
    (void)state;
    check_pixels(&untiled);
}

static void test_htj2k_matches_opj_decompress(void **state)
{
    (void)state;
    check_pixels(&htj2k);
}

/* The smallest level decodes too, and agrees with the oracle at that reduction. */
static void test_smallest_level_matches_opj_decompress(void **state)
{
    (void)state;
    char path[512];
    struct ts_image ref, got;
    double mean;
    int max;
    if (!have_tool("opj_decompress"))
        skip();
    snprintf(path, sizeof path, "%s/%s", DATA, tiled.file);
    struct ts_reader *r = open_ok(path);
    uint32_t lv = r->info.nlevels - 1;
    assert_int_equal(oracle_level(path, "tiled", lv, 3, &ref), 0);
    assert_int_equal(ref.width, r->info.levels[lv].width);
    assert_int_equal(read_region(r, lv, 0, 0, ref.width, ref.height, &got), TS_OK);
    diff_window(&got, &ref, 0, 0, &mean, &max);
    assert_true(mean < 1.0);
    assert_true(max <= 2);
    ts_image_free(&got);
    ts_image_free(&ref);
    r->ops->close(r);
}

/* ---- damaged and foreign input ---- */

/* A decode handed only the tile-parts under its area (the default for multi-tile files) gives
 * the same bytes as one that reads the whole codestream (TESSERA_JP2_WHOLE). No block store,
 * so every read decodes. */
static void test_cut_codestream_decodes_like_the_whole(void **state)
{
    (void)state;
    static const uint32_t regions[][5] = {
        /* level, x, y, w, h */
        {0, 0, 0, 100, 100},       /* one tile */
        {0, 400, 450, 300, 200},   /* two tiles */
        {0, 500, 500, 600, 600},   /* four tiles */
        {0, 1000, 1000, 411, 411}, /* the last tiles, at the image edge */
        {1, 200, 240, 120, 40},    /* level 1 */
        {2, 0, 0, 353, 353},       /* a whole level */
    };
    char path[512];
    snprintf(path, sizeof path, "%s/%s", DATA, tiled.file);
    struct ts_reader *cutr = NULL, *wholer = NULL;
    struct ts_err err = {0};
    /* Read when a reader opens: one reader each way. */
    unsetenv("TESSERA_JP2_WHOLE");
    int fd = tu_open_ro(path);
    assert_true(fd >= 0);
    assert_int_equal(ts_jp2_open_fd(fd, NULL, &cutr, &err), TS_OK);
    setenv("TESSERA_JP2_WHOLE", "1", 1);
    fd = tu_open_ro(path);
    assert_true(fd >= 0);
    assert_int_equal(ts_jp2_open_fd(fd, NULL, &wholer, &err), TS_OK);
    unsetenv("TESSERA_JP2_WHOLE");
    for (size_t i = 0; i < sizeof regions / sizeof regions[0]; i++) {
        const uint32_t *g = regions[i];
        struct ts_image cut = {0}, whole = {0};
        assert_int_equal(read_region(cutr, g[0], g[1], g[2], g[3], g[4], &cut), TS_OK);
        assert_int_equal(read_region(wholer, g[0], g[1], g[2], g[3], g[4], &whole), TS_OK);
        size_t n = (size_t)cut.width * cut.height * cut.channels;
        if (memcmp(cut.data, whole.data, n) != 0)
            fail_msg("region %zu: the cut codestream decodes differently", i);
        ts_image_free(&cut);
        ts_image_free(&whole);
    }
    cutr->ops->close(cutr);
    wholer->ops->close(wholer);
}

static int copy_prefix(const char *src, const char *dst, long keep)
{
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    int rc = -1;
    if (in && out) {
        char buf[4096];
        long left = keep;
        while (left > 0) {
            size_t want = left < (long)sizeof buf ? (size_t)left : sizeof buf;
            size_t n = fread(buf, 1, want, in);
            if (n == 0 || fwrite(buf, 1, n, out) != n)
                break;
            left -= (long)n;
        }
        rc = left == 0 ? 0 : -1;
    }
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        rc = -1;
    return rc;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void test_truncated_files_fail_without_crashing(void **state)
{
    (void)state;
    const struct retina_case *cases[] = {&tiled, &untiled, &htj2k};
    for (size_t i = 0; i < 3; i++) {
        char src[512], dst[512], name[128];
        struct ts_reader *r = NULL;
        struct ts_err err = {0};
        snprintf(src, sizeof src, "%s/%s", DATA, cases[i]->file);
        snprintf(name, sizeof name, "half-%s", cases[i]->file);
        work_path(dst, sizeof dst, name);
        assert_int_equal(copy_prefix(src, dst, file_size(src) / 2), 0);
        int rc = jp2_open(dst, &r, &err);
        if (rc == TS_OK) {
            struct ts_image img = {0};
            rc = read_region(r, 0, 0, 0, r->info.width, r->info.height, &img);
            assert_null(img.data);
            r->ops->close(r);
        } else {
            assert_null(r);
        }
        if (rc != TS_ECODEC)
            fail_msg("%s truncated: status %d, expected codec error", cases[i]->file, rc);
    }
}

static void test_foreign_and_missing_files_are_refused(void **state)
{
    (void)state;
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    char path[512];
    snprintf(path, sizeof path, "%s/retina-pyr-jpeg-256.tif", DATA);
    assert_int_equal(jp2_open(path, &r, &err), TS_EUNSUPPORTED);
    assert_null(r);
    work_path(path, sizeof path, "no-such-file.jp2");
    assert_int_equal(ts_reader_open(path, &r, &err), TS_ENOTFOUND);
    assert_null(r);
}

/* A codestream whose SIZ claims 40000 x 40000 pixels: a full read is refused before any
 * allocation, and a small read fails as a codec error since the tile data does not fit. */
static void test_huge_decode_area_is_refused(void **state)
{
    (void)state;
    char src[512], dst[512];
    uint8_t *buf;
    long n;
    FILE *f;
    snprintf(src, sizeof src, "%s/%s", DATA, htj2k.file);
    work_path(dst, sizeof dst, "huge.j2c");
    n = file_size(src);
    assert_true(n > 64);
    buf = malloc((size_t)n);
    assert_non_null(buf);
    f = fopen(src, "rb");
    assert_non_null(f);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    /* SOC, then SIZ: marker(2) Lsiz(2) Rsiz(2) Xsiz(4) Ysiz(4) XOsiz(4) YOsiz(4) XTsiz(4) YTsiz(4)
     */
    assert_int_equal(buf[2], 0xff);
    assert_int_equal(buf[3], 0x51);
    static const uint8_t big[4] = {0x00, 0x00, 0x9c, 0x40}; /* 40000 */
    memcpy(buf + 8, big, 4);
    memcpy(buf + 12, big, 4);
    memcpy(buf + 24, big, 4);
    memcpy(buf + 28, big, 4);
    f = fopen(dst, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    free(buf);

    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    int rc = jp2_open(dst, &r, &err);
    if (rc != TS_OK)
        fail_msg("open of the patched header: %d %s", rc, err.msg);
    assert_int_equal(r->info.width, 40000);
    struct ts_image img = {0};
    assert_int_equal(read_region(r, 0, 0, 0, 40000, 40000, &img), TS_ETOOLARGE);
    assert_null(img.data);
    rc = read_region(r, r->info.nlevels - 1, 0, 0, 8, 8, &img);
    if (rc == TS_OK)
        ts_image_free(&img);
    else
        assert_int_equal(rc, TS_ECODEC);
    r->ops->close(r);
}

/* ---- generated lossless images: every pixel known ---- */

static uint32_t pattern(uint32_t x, uint32_t y, uint32_t c, bool wide)
{
    if (wide)
        return (x * 997u + y * 131u + c * 4099u) & 0xffffu;
    return (x * 7u + y * 3u + c * 50u) & 0xffu;
}

/* Writes a PAM (P7) that opj_compress reads: gray, gray+alpha, RGB or RGBA, 8 or 16 bit. */
static int write_pam(const char *path, uint32_t w, uint32_t h, uint32_t ch, bool wide)
{
    static const char *types[] = {"GRAYSCALE", "GRAYSCALE_ALPHA", "RGB", "RGB_ALPHA"};
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    fprintf(f, "P7\nWIDTH %u\nHEIGHT %u\nDEPTH %u\nMAXVAL %u\nTUPLTYPE %s\nENDHDR\n", w, h, ch,
            wide ? 65535u : 255u, types[ch - 1]);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            for (uint32_t c = 0; c < ch; c++) {
                uint32_t v = pattern(x, y, c, wide);
                if (wide)
                    fputc((int)(v >> 8), f);
                fputc((int)(v & 0xff), f);
            }
    return fclose(f) == 0 ? 0 : -1;
}

static void check_generated(uint32_t ch, bool wide, const char *tag)
{
    const uint32_t w = 300, h = 200;
    char pam[512], jp2[512], name[64];
    struct ts_image img;
    if (!have_tool("opj_compress"))
        skip();
    snprintf(name, sizeof name, "gen-%s.pam", tag);
    work_path(pam, sizeof pam, name);
    snprintf(name, sizeof name, "gen-%s.jp2", tag);
    work_path(jp2, sizeof jp2, name);
    assert_int_equal(write_pam(pam, w, h, ch, wide), 0);
    /* Lossless (reversible 5/3) with 128 px tiles and 4 resolutions. */
    assert_int_equal(run("opj_compress -i '%s' -o '%s' -t 128,128 -n 4 >/dev/null 2>&1", pam, jp2),
                     0);
    struct ts_reader *r = open_ok(jp2);
    assert_int_equal(r->info.width, w);
    assert_int_equal(r->info.height, h);
    assert_int_equal(r->info.channels, ch);
    assert_int_equal(r->info.bits_per_sample, wide ? 16 : 8);
    assert_int_equal(r->info.nlevels, 4);
    assert_int_equal(r->info.levels[1].tile_w, 64);
    /* A region across the 128 px tile borders, read at full resolution: lossless, so exact. */
    assert_int_equal(read_region(r, 0, 100, 90, 170, 80, &img), TS_OK);
    assert_int_equal(img.channels, ch);
    for (uint32_t y = 0; y < img.height; y++)
        for (uint32_t x = 0; x < img.width; x++)
            for (uint32_t c = 0; c < ch; c++) {
                uint32_t v = pattern(100 + x, 90 + y, c, wide);
                uint8_t want = wide ? (uint8_t)((v * 255u + 32767u) / 65535u) : (uint8_t)v;
                uint8_t got = ts_image_row(&img, y)[(size_t)x * ch + c];
                if (got != want)
                    fail_msg("%s (%u,%u) c%u: got %u want %u", tag, x, y, c, got, want);
            }
    ts_image_free(&img);
    /* A reduced level agrees with the oracle's decode of the same level. */
    if (have_tool("opj_decompress")) {
        struct ts_image ref;
        double mean;
        int max;
        assert_int_equal(oracle_level(jp2, tag, 1, ch, &ref), 0);
        assert_int_equal(read_region(r, 1, 30, 20, 100, 70, &img), TS_OK);
        diff_window(&img, &ref, 30, 20, &mean, &max);
        assert_true(mean < 1.0);
        assert_true(max <= 2);
        ts_image_free(&img);
        ts_image_free(&ref);
    }
    r->ops->close(r);
}

static void test_generated_gray8_is_exact(void **state)
{
    (void)state;
    check_generated(1, false, "gray8");
}

static void test_generated_rgba_keeps_alpha(void **state)
{
    (void)state;
    check_generated(4, false, "rgba8");
}

static void test_generated_16bit_rgb_is_rounded_to_8(void **state)
{
    (void)state;
    check_generated(3, true, "rgb16");
}

static void test_generated_gray_alpha_16bit(void **state)
{
    (void)state;
    check_generated(2, true, "graya16");
}

/* YCbCr 4:2:0 (sYCC colour box, chroma components at half resolution): chroma is replicated
 * over each 2x2 block and converted to RGB, as opj_decompress does. */
static void test_sycc_420_is_upsampled_and_converted(void **state)
{
    (void)state;
    const uint32_t w = 64, h = 48;
    char raw[512], jp2[512];
    if (!have_tool("opj_compress") || !have_tool("opj_decompress"))
        skip();
    work_path(raw, sizeof raw, "ycc420.raw");
    work_path(jp2, sizeof jp2, "ycc420.jp2");
    FILE *f = fopen(raw, "wb");
    assert_non_null(f);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            fputc((int)(40 + x * 2 + y), f);
    for (uint32_t c = 0; c < 2; c++)
        for (uint32_t y = 0; y < h / 2; y++)
            for (uint32_t x = 0; x < w / 2; x++)
                fputc((int)(c == 0 ? 90 + x * 3 : 170 - y * 3), f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(run("opj_compress -i '%s' -o '%s' -F %u,%u,3,8,u@1x1:2x2:2x2 -n 3 "
                         ">/dev/null 2>&1",
                         raw, jp2, w, h),
                     0);
    struct ts_reader *r = open_ok(jp2);
    assert_int_equal(r->info.channels, 3);
    assert_int_equal(r->info.width, w);
    for (uint32_t lv = 0; lv < 2; lv++) {
        struct ts_image ref, got;
        double mean;
        int max;
        char tag[32];
        snprintf(tag, sizeof tag, "ycc420-%u", lv);
        assert_int_equal(oracle_level(jp2, tag, lv, 3, &ref), 0);
        assert_int_equal(ref.width, r->info.levels[lv].width);
        /* an odd origin, so chroma blocks are cut in half */
        assert_int_equal(read_region(r, lv, 3, 5, ref.width - 3, ref.height - 5, &got), TS_OK);
        diff_window(&got, &ref, 3, 5, &mean, &max);
        if (mean >= 1.0 || max > 2)
            fail_msg("level %u: mean %.3f max %d", lv, mean, max);
        /* and it is colour, not the raw Y, Cb, Cr planes */
        const uint8_t *px = ts_image_row(&got, 10);
        assert_true(abs((int)px[0] - (int)px[2]) > 20);
        ts_image_free(&got);
        ts_image_free(&ref);
    }
    r->ops->close(r);
}

/* Chroma at a quarter of the resolution each way is not something we render: refused at open. */
static void test_exotic_subsampling_is_refused(void **state)
{
    (void)state;
    char raw[512], jp2[512];
    if (!have_tool("opj_compress"))
        skip();
    work_path(raw, sizeof raw, "sub44.raw");
    work_path(jp2, sizeof jp2, "sub44.jp2");
    FILE *f = fopen(raw, "wb");
    assert_non_null(f);
    for (uint32_t i = 0; i < 32 * 32 + 2 * 8 * 8; i++)
        fputc((int)(i & 0xff), f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(run("opj_compress -i '%s' -o '%s' -F 32,32,3,8,u@1x1:4x4:4x4 -n 2 "
                         ">/dev/null 2>&1",
                         raw, jp2),
                     0);
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    assert_int_equal(jp2_open(jp2, &r, &err), TS_EUNSUPPORTED);
    assert_null(r);
    assert_non_null(strstr(err.msg, "subsampled 4x4"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiled_jp2_levels_follow_codestream),
        cmocka_unit_test(test_untiled_jp2_has_six_untiled_levels),
        cmocka_unit_test(test_htj2k_codestream_info),
        cmocka_unit_test(test_tiled_jp2_matches_opj_decompress),
        cmocka_unit_test(test_untiled_jp2_matches_opj_decompress),
        cmocka_unit_test(test_htj2k_matches_opj_decompress),
        cmocka_unit_test(test_smallest_level_matches_opj_decompress),
        cmocka_unit_test(test_cut_codestream_decodes_like_the_whole),
        cmocka_unit_test(test_truncated_files_fail_without_crashing),
        cmocka_unit_test(test_foreign_and_missing_files_are_refused),
        cmocka_unit_test(test_huge_decode_area_is_refused),
        cmocka_unit_test(test_generated_gray8_is_exact),
        cmocka_unit_test(test_generated_rgba_keeps_alpha),
        cmocka_unit_test(test_generated_16bit_rgb_is_rounded_to_8),
        cmocka_unit_test(test_generated_gray_alpha_16bit),
        cmocka_unit_test(test_sycc_420_is_upsampled_and_converted),
        cmocka_unit_test(test_exotic_subsampling_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
