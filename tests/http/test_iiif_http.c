/* IIIF image and info.json requests against the real server, checked pixel by pixel on the grid. */
#include "grid.h"
#include "harness.h"
#include "testutil.h"

#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

static struct tu_server server;

enum quality { Q_COLOR, Q_GRAY };

/* The source rectangle a response shows, and how it was scaled, mirrored and rotated. */
struct xform {
    uint32_t src_w, src_h, cells; /* the source grid */
    double rx, ry, rw, rh;        /* region in source pixels */
    uint32_t w, h;                /* size before rotation */
    int rot;                      /* 0, 90, 180, 270 clockwise */
    int mirror;
    enum quality quality;
};

struct source {
    const char *id; /* as sent in the URL */
    uint32_t w, h, cells;
    int lossy; /* JPEG-compressed source: allow a little more error */
};

static const struct source grid_sources[] = {
    {"grid.tif", 1000, 1000, 10, 1},
    {"grid-subifd.tif", 1000, 1000, 10, 0},
    {"grid.png", 1000, 1000, 10, 0},
    {"grid.jpg", 1000, 1000, 10, 1},
    {"sub%2Fdir%2Fgrid2.tif", 1000, 1000, 10, 0},
    {"grid.jp2", 1000, 1000, 10, 0},
    {"grid-htj2k.j2c", 1000, 1000, 10, 0},
};
#define N_SOURCES (sizeof(grid_sources) / sizeof(grid_sources[0]))

static const struct source wide_source = {"wide.png", 800, 400, 8, 0};

static int group_setup(void **state)
{
    (void)state;
    if (tu_start_on_grid_root(&server, TESSERA_BIN, TESSERA_TEST_WORK, NULL, NULL, 0) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return tu_server_stop(&server) == 0 ? 0 : -1;
}

static int format_tolerance(const char *url, const struct source *src)
{
    int tol = 3;
    if (strstr(url, ".jpg"))
        tol = 10;
    else if (strstr(url, ".webp"))
        tol = 12;
    return tol + (src->lossy ? 4 : 0);
}

/* Maps the centre of output pixel (u,v) back to a source position. */
static void xform_source_point(const struct xform *x, double u, double v, double *sx, double *sy)
{
    double px;
    double py;
    double W = x->w;
    double H = x->h;
    switch (x->rot) {
    case 90:
        px = v;
        py = H - u;
        break;
    case 180:
        px = W - u;
        py = H - v;
        break;
    case 270:
        px = W - v;
        py = u;
        break;
    default:
        px = u;
        py = v;
        break;
    }
    if (x->mirror)
        px = W - px;
    *sx = x->rx + px * x->rw / W;
    *sy = x->ry + py * x->rh / H;
}

static double boundary_distance(double p, double cell)
{
    double f = fmod(p, cell);
    return f < cell - f ? f : cell - f;
}

/* Compares an 11x11 lattice of output samples with the grid; samples near a cell boundary are
 * skipped. Returns the number of mismatches and reports the first in msg. */
static int compare_samples(const struct ts_image *img, const struct xform *x, int tol, int *checked,
                           char *msg, size_t msglen)
{
    double cw = (double)x->src_w / x->cells;
    double ch = (double)x->src_h / x->cells;
    double scale = fmax(1.0, fmax(x->rw / x->w, x->rh / x->h));
    double margin = 3.0 * scale + 3.0;
    int bad = 0;
    *checked = 0;
    for (int j = 0; j < 11; j++) {
        for (int i = 0; i < 11; i++) {
            uint32_t u = (uint32_t)((i + 0.5) * img->width / 11);
            uint32_t v = (uint32_t)((j + 0.5) * img->height / 11);
            double sx;
            double sy;
            xform_source_point(x, u + 0.5, v + 0.5, &sx, &sy);
            if (sx < 0 || sy < 0 || sx >= x->src_w || sy >= x->src_h)
                continue;
            if (boundary_distance(sx, cw) < margin || boundary_distance(sy, ch) < margin)
                continue;
            uint8_t rgb[3];
            grid_pixel_color(x->src_w, x->src_h, x->cells, (uint32_t)sx, (uint32_t)sy, rgb);
            if (x->quality == Q_GRAY) {
                uint8_t l = grid_luma(rgb);
                rgb[0] = rgb[1] = rgb[2] = l;
            }
            (*checked)++;
            int d = tu_pixel_diff(img, u, v, rgb);
            if (d > tol) {
                if (bad == 0)
                    snprintf(msg, msglen,
                             "output (%u,%u) <- source (%.0f,%.0f): expected %u,%u,%u, off by %d "
                             "(tolerance %d)",
                             u, v, sx, sy, rgb[0], rgb[1], rgb[2], d, tol);
                bad++;
            }
        }
    }
    return bad;
}

static void out_dims(const struct xform *x, uint32_t *w, uint32_t *h)
{
    int swap = x->rot == 90 || x->rot == 270;
    *w = swap ? x->h : x->w;
    *h = swap ? x->w : x->h;
}

/* GETs path, asserts 200 and the decoded dimensions; returns the decoded image. */
static void fetch_image(const char *path, uint32_t ew, uint32_t eh, struct ts_image *img)
{
    struct tu_response r;
    if (tu_get(&server, path, &r) != 0)
        fail_msg("GET %s: no response", path);
    if (r.status != 200)
        fail_msg("GET %s: expected 200, got %ld: %.200s", path, r.status,
                 r.body.data ? (const char *)r.body.data : "");
    if (tu_decode_body(&r, img) != 0)
        fail_msg("GET %s: body (%zu bytes) does not decode", path, r.body.len);
    tu_response_free(&r);
    if (img->width != ew || img->height != eh)
        fail_msg("GET %s: expected %ux%u, got %ux%u", path, ew, eh, img->width, img->height);
}

static void check_render(const char *path, const struct xform *x, int tol)
{
    struct ts_image img;
    uint32_t ew;
    uint32_t eh;
    out_dims(x, &ew, &eh);
    fetch_image(path, ew, eh, &img);
    if (x->quality == Q_GRAY && img.channels >= 3) {
        /* A gray answer in an RGB container must still be neutral. */
        for (uint32_t y = 0; y < img.height; y += 37) {
            const uint8_t *p = ts_image_row(&img, y);
            for (uint32_t i = 0; i < img.width; i += 37) {
                const uint8_t *q = p + (size_t)i * img.channels;
                if (abs(q[0] - q[1]) > 4 || abs(q[1] - q[2]) > 4)
                    fail_msg("GET %s: gray pixel (%u,%u) is %u,%u,%u", path, i, y, q[0], q[1],
                             q[2]);
            }
        }
    }
    char msg[256] = "";
    int checked;
    int bad = compare_samples(&img, x, tol, &checked, msg, sizeof(msg));
    ts_image_free(&img);
    if (bad)
        fail_msg("GET %s: %d of %d samples wrong; first: %s", path, bad, checked, msg);
    if (checked < 6)
        fail_msg("GET %s: only %d samples away from cell edges (test bug)", path, checked);
}

static void pathf(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void pathf(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < cap);
}

/* One request form: the path after the identifier and what it must show. */
struct form {
    const char *suffix;
    double rx, ry, rw, rh; /* rw == 0: the full image */
    uint32_t w, h;         /* size before rotation */
    int rot;
    int mirror;
    enum quality quality;
};

static struct xform form_xform(const struct form *f, const struct source *s)
{
    struct xform x = {s->w,  s->h, s->cells, f->rx,  f->ry,     f->rw,
                      f->rh, f->w, f->h,     f->rot, f->mirror, f->quality};
    if (f->rw == 0) {
        x.rx = 0;
        x.ry = 0;
        x.rw = s->w;
        x.rh = s->h;
    }
    return x;
}

static void run_forms(int version, const struct form *forms, size_t n, const struct source *srcs,
                      size_t nsrc)
{
    for (size_t s = 0; s < nsrc; s++) {
        for (size_t i = 0; i < n; i++) {
            char path[512];
            pathf(path, sizeof(path), "/iiif/%d/%s/%s", version, srcs[s].id, forms[i].suffix);
            struct xform x = form_xform(&forms[i], &srcs[s]);
            check_render(path, &x, format_tolerance(path, &srcs[s]));
        }
    }
}

/* Regions and sizes in 3.0 syntax, on every source layout. */
static const struct form v3_region_size_forms[] = {
    {"full/max/0/default.jpg", 0, 0, 0, 0, 1000, 1000, 0, 0, Q_COLOR},
    {"full/500,/0/default.jpg", 0, 0, 0, 0, 500, 500, 0, 0, Q_COLOR},
    {"full/,250/0/default.jpg", 0, 0, 0, 0, 250, 250, 0, 0, Q_COLOR},
    {"full/pct:25/0/default.jpg", 0, 0, 0, 0, 250, 250, 0, 0, Q_COLOR},
    {"full/200,100/0/default.jpg", 0, 0, 0, 0, 200, 100, 0, 0, Q_COLOR},
    {"full/!200,100/0/default.jpg", 0, 0, 0, 0, 100, 100, 0, 0, Q_COLOR},
    {"100,200,300,400/max/0/default.jpg", 100, 200, 300, 400, 300, 400, 0, 0, Q_COLOR},
    {"pct:10,20,30,40/max/0/default.jpg", 100, 200, 300, 400, 300, 400, 0, 0, Q_COLOR},
    {"100,200,300,400/150,/0/default.jpg", 100, 200, 300, 400, 150, 200, 0, 0, Q_COLOR},
    {"100,200,300,400/,100/0/default.jpg", 100, 200, 300, 400, 75, 100, 0, 0, Q_COLOR},
    {"100,200,300,400/pct:50/0/default.jpg", 100, 200, 300, 400, 150, 200, 0, 0, Q_COLOR},
    {"square/200,/0/default.jpg", 0, 0, 0, 0, 200, 200, 0, 0, Q_COLOR},
    {"850,850,300,300/max/0/default.jpg", 850, 850, 150, 150, 150, 150, 0, 0, Q_COLOR},
    {"full/400,/0/color.png", 0, 0, 0, 0, 400, 400, 0, 0, Q_COLOR},
    {"100,200,300,400/max/0/default.webp", 100, 200, 300, 400, 300, 400, 0, 0, Q_COLOR},
};

static void test_v3_regions_and_sizes_on_every_source(void **state)
{
    (void)state;
    run_forms(3, v3_region_size_forms,
              sizeof(v3_region_size_forms) / sizeof(v3_region_size_forms[0]), grid_sources,
              N_SOURCES);
}

/* Upscaling and transforms, checked on one tiled and one plain source. */
static const struct form v3_transform_forms[] = {
    {"100,200,300,400/^600,/0/default.jpg", 100, 200, 300, 400, 600, 800, 0, 0, Q_COLOR},
    {"100,200,300,400/^!600,600/0/default.png", 100, 200, 300, 400, 450, 600, 0, 0, Q_COLOR},
    {"100,200,300,400/^pct:150/0/default.jpg", 100, 200, 300, 400, 450, 600, 0, 0, Q_COLOR},
    {"100,200,300,400/^,800/0/default.jpg", 100, 200, 300, 400, 600, 800, 0, 0, Q_COLOR},
    {"100,200,300,400/^600,400/0/default.jpg", 100, 200, 300, 400, 600, 400, 0, 0, Q_COLOR},
    {"100,200,300,400/max/90/default.jpg", 100, 200, 300, 400, 300, 400, 90, 0, Q_COLOR},
    {"100,200,300,400/max/180/default.jpg", 100, 200, 300, 400, 300, 400, 180, 0, Q_COLOR},
    {"100,200,300,400/max/270/default.png", 100, 200, 300, 400, 300, 400, 270, 0, Q_COLOR},
    {"100,200,300,400/max/!0/default.jpg", 100, 200, 300, 400, 300, 400, 0, 1, Q_COLOR},
    {"100,200,300,400/max/!90/default.png", 100, 200, 300, 400, 300, 400, 90, 1, Q_COLOR},
    {"100,200,300,400/max/!180/default.jpg", 100, 200, 300, 400, 300, 400, 180, 1, Q_COLOR},
    {"100,200,300,400/150,/!270/default.jpg", 100, 200, 300, 400, 150, 200, 270, 1, Q_COLOR},
    {"full/300,/90/default.jpg", 0, 0, 0, 0, 300, 300, 90, 0, Q_COLOR},
    {"full/500,/0/gray.png", 0, 0, 0, 0, 500, 500, 0, 0, Q_GRAY},
    {"100,200,300,400/max/0/gray.jpg", 100, 200, 300, 400, 300, 400, 0, 0, Q_GRAY},
    {"100,200,300,400/max/90/gray.png", 100, 200, 300, 400, 300, 400, 90, 0, Q_GRAY},
    {"full/400,/0/color.webp", 0, 0, 0, 0, 400, 400, 0, 0, Q_COLOR},
    {"full/250,/!0/default.webp", 0, 0, 0, 0, 250, 250, 0, 1, Q_COLOR},
};

static void test_v3_upscale_rotation_mirror_gray(void **state)
{
    (void)state;
    const struct source srcs[] = {grid_sources[0], grid_sources[2]};
    run_forms(3, v3_transform_forms, sizeof(v3_transform_forms) / sizeof(v3_transform_forms[0]),
              srcs, 2);
}

/* 2.1 syntax: full size, upscaling without ^. */
static const struct form v2_forms[] = {
    {"full/full/0/default.jpg", 0, 0, 0, 0, 1000, 1000, 0, 0, Q_COLOR},
    {"full/max/0/default.jpg", 0, 0, 0, 0, 1000, 1000, 0, 0, Q_COLOR},
    {"full/500,/0/default.jpg", 0, 0, 0, 0, 500, 500, 0, 0, Q_COLOR},
    {"full/,250/0/default.jpg", 0, 0, 0, 0, 250, 250, 0, 0, Q_COLOR},
    {"full/pct:25/0/default.jpg", 0, 0, 0, 0, 250, 250, 0, 0, Q_COLOR},
    {"full/200,100/0/default.jpg", 0, 0, 0, 0, 200, 100, 0, 0, Q_COLOR},
    {"full/!200,100/0/default.jpg", 0, 0, 0, 0, 100, 100, 0, 0, Q_COLOR},
    {"100,200,100,100/250,/0/default.jpg", 100, 200, 100, 100, 250, 250, 0, 0, Q_COLOR},
    {"100,200,300,400/full/0/default.jpg", 100, 200, 300, 400, 300, 400, 0, 0, Q_COLOR},
    {"pct:10,20,30,40/full/0/default.jpg", 100, 200, 300, 400, 300, 400, 0, 0, Q_COLOR},
    {"100,200,300,400/150,/0/default.jpg", 100, 200, 300, 400, 150, 200, 0, 0, Q_COLOR},
    {"square/250,/0/default.jpg", 0, 0, 0, 0, 250, 250, 0, 0, Q_COLOR},
    {"100,200,300,400/full/90/default.jpg", 100, 200, 300, 400, 300, 400, 90, 0, Q_COLOR},
    {"100,200,300,400/full/!0/default.png", 100, 200, 300, 400, 300, 400, 0, 1, Q_COLOR},
    {"100,200,300,400/full/!90/default.jpg", 100, 200, 300, 400, 300, 400, 90, 1, Q_COLOR},
    {"100,200,300,400/full/270/gray.png", 100, 200, 300, 400, 300, 400, 270, 0, Q_GRAY},
    {"full/500,/0/color.webp", 0, 0, 0, 0, 500, 500, 0, 0, Q_COLOR},
};

static void test_v2_regions_sizes_and_transforms(void **state)
{
    (void)state;
    const struct source srcs[] = {grid_sources[1], grid_sources[3]};
    run_forms(2, v2_forms, sizeof(v2_forms) / sizeof(v2_forms[0]), srcs, 2);
}

/* A non-square source: w, and ,h keep its 2:1 aspect, !w,h confines it. */
static const struct form wide_forms[] = {
    {"full/400,/0/default.png", 0, 0, 0, 0, 400, 200, 0, 0, Q_COLOR},
    {"full/,100/0/default.png", 0, 0, 0, 0, 200, 100, 0, 0, Q_COLOR},
    {"full/!200,200/0/default.png", 0, 0, 0, 0, 200, 100, 0, 0, Q_COLOR},
    {"full/pct:50/90/default.png", 0, 0, 0, 0, 400, 200, 90, 0, Q_COLOR},
    {"full/max/!0/default.png", 0, 0, 0, 0, 800, 400, 0, 1, Q_COLOR},
};

static void test_v3_wide_source_keeps_aspect(void **state)
{
    (void)state;
    run_forms(3, wide_forms, sizeof(wide_forms) / sizeof(wide_forms[0]), &wide_source, 1);
}

/* square on 800x400 must be 400x400; the spec lets it sit anywhere along x, so accept the
 * centred crop (what servers do) or the left one. */
static void test_v3_square_region_on_wide_source(void **state)
{
    (void)state;
    struct ts_image img;
    fetch_image("/iiif/3/wide.png/square/max/0/default.png", 400, 400, &img);
    struct xform centred = {800, 400, 8, 200, 0, 400, 400, 400, 400, 0, 0, Q_COLOR};
    struct xform left = centred;
    left.rx = 0;
    char msg[256];
    int checked;
    int bad_c = compare_samples(&img, &centred, 3, &checked, msg, sizeof(msg));
    int bad_l = compare_samples(&img, &left, 3, &checked, msg, sizeof(msg));
    ts_image_free(&img);
    if (bad_c && bad_l)
        fail_msg("square region of wide.png is neither the centred nor the left 400x400 crop "
                 "(%d and %d samples off): %s",
                 bad_c, bad_l, msg);
}

/* Mean of channel 0 over a 20x20 block centred on the given cell of a full/max response. */
static double cell_mean(const struct ts_image *img, uint32_t col, uint32_t row)
{
    double sum = 0;
    for (uint32_t y = row * 100 + 40; y < row * 100 + 60; y++)
        for (uint32_t x = col * 100 + 40; x < col * 100 + 60; x++)
            sum += ts_image_row(img, y)[(size_t)x * img->channels];
    return sum / 400.0;
}

static void check_bitonal(const char *path)
{
    struct ts_image img;
    fetch_image(path, 1000, 1000, &img);
    for (uint32_t y = 0; y < img.height; y++) {
        const uint8_t *p = ts_image_row(&img, y);
        for (uint32_t i = 0; i < img.width * img.channels; i++) {
            if (img.channels == 2 && i % 2 == 1)
                continue; /* alpha */
            if (p[i] != 0 && p[i] != 255) {
                uint32_t x = i / img.channels;
                ts_image_free(&img);
                fail_msg("GET %s: pixel (%u,%u) has value %u; bitonal allows 0 and 255", path, x, y,
                         p[i]);
            }
        }
    }
    /* Cell (0,0) has luma ~41 and cell (9,9) ~202: dark and light whatever the threshold. */
    double dark = cell_mean(&img, 0, 0);
    double light = cell_mean(&img, 9, 9);
    ts_image_free(&img);
    if (!(dark < 128 && light > 128))
        fail_msg("GET %s: cell (0,0) mean %.1f should be dark and cell (9,9) mean %.1f light", path,
                 dark, light);
}

static void test_bitonal_has_only_black_and_white(void **state)
{
    (void)state;
    check_bitonal("/iiif/3/grid.tif/full/max/0/bitonal.png");
    check_bitonal("/iiif/3/grid.png/full/max/0/bitonal.png");
    check_bitonal("/iiif/2/grid-subifd.tif/full/full/0/bitonal.png");
}

static void test_identifier_without_extension_and_default_version(void **state)
{
    (void)state;
    struct xform region = {1000, 1000, 10, 100, 200, 300, 400, 300, 400, 0, 0, Q_COLOR};
    check_render("/iiif/3/grid/100,200,300,400/max/0/default.jpg", &region, 14);
    struct xform up = {1000, 1000, 10, 0, 0, 1000, 1000, 2000, 2000, 0, 0, Q_COLOR};
    check_render("/iiif/3/grid.tif/full/^2000,/0/default.jpg", &up, 14);
    check_render("/iiif/grid.tif/100,200,300,400/max/0/default.jpg", &region, 14);
    check_render("/iiif/2/grid/100,200,300,400/full/0/default.jpg", &region, 14);
    check_render("/iiif/3/sub%2Fdir%2Fgrid2/100,200,300,400/max/0/default.png", &region, 3);
    /* IIIF 1.1: native quality. */
    check_render("/iiif/1/grid.tif/100,200,300,400/full/0/native.jpg", &region, 14);
}

/* OpenSeadragon's URL for one tile (its IIIFTileSource logic, version 2 or 3). */
static void osd_tile_path(char *out, size_t cap, int version, const char *id, uint32_t W,
                          uint32_t H, uint32_t tw, uint32_t th, uint32_t sf, uint32_t tx,
                          uint32_t ty, double rect[4], uint32_t size[2])
{
    uint32_t level_w = (W + sf - 1) / sf;
    uint32_t level_h = (H + sf - 1) / sf;
    char region[64];
    char sz[64];
    if (level_w < tw && level_h < th) {
        pathf(region, sizeof(region), "full");
        rect[0] = 0;
        rect[1] = 0;
        rect[2] = W;
        rect[3] = H;
        size[0] = level_w;
        size[1] = level_h;
    } else {
        uint32_t x = tx * tw * sf;
        uint32_t y = ty * th * sf;
        uint32_t rw = tw * sf < W - x ? tw * sf : W - x;
        uint32_t rh = th * sf < H - y ? th * sf : H - y;
        if (x == 0 && y == 0 && rw == W && rh == H)
            pathf(region, sizeof(region), "full");
        else
            pathf(region, sizeof(region), "%u,%u,%u,%u", x, y, rw, rh);
        rect[0] = x;
        rect[1] = y;
        rect[2] = rw;
        rect[3] = rh;
        size[0] = (rw + sf - 1) / sf;
        size[1] = (rh + sf - 1) / sf;
    }
    if (version == 3 && size[0] == W && size[1] == H)
        pathf(sz, sizeof(sz), "max");
    else if (version == 2 && size[0] == W)
        pathf(sz, sizeof(sz), "full");
    else if (version == 3)
        pathf(sz, sizeof(sz), "%u,%u", size[0], size[1]);
    else
        pathf(sz, sizeof(sz), "%u,", size[0]);
    pathf(out, cap, "/iiif/%d/%s/%s/%s/0/default.jpg", version, id, region, sz);
}

static json_t *fetch_json(const char *path, const char *const *headers)
{
    struct tu_response r;
    char url[1024];
    pathf(url, sizeof(url), "%s%s", server.base, path);
    if (tu_request("GET", url, headers, &r) != 0)
        fail_msg("GET %s: no response", path);
    if (r.status != 200)
        fail_msg("GET %s: expected 200, got %ld", path, r.status);
    json_error_t jerr;
    json_t *j = json_loadb((const char *)r.body.data, r.body.len, 0, &jerr);
    if (!j)
        fail_msg("GET %s: body is not JSON: %s", path, jerr.text);
    tu_response_free(&r);
    return j;
}

static json_int_t json_int_field(json_t *o, const char *key, const char *path)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("%s: \"%s\" is not an integer", path, key);
    return json_integer_value(v);
}

/* Walks every tile of every advertised scale factor the way OpenSeadragon would. */
static void walk_tiles(int version, const struct source *src)
{
    char path[512];
    pathf(path, sizeof(path), "/iiif/%d/%s/info.json", version, src->id);
    json_t *info = fetch_json(path, NULL);
    json_t *tiles = json_array_get(json_object_get(info, "tiles"), 0);
    if (!json_is_object(tiles))
        fail_msg("%s: no tiles", path);
    uint32_t tw = (uint32_t)json_int_field(tiles, "width", path);
    uint32_t th =
        json_object_get(tiles, "height") ? (uint32_t)json_int_field(tiles, "height", path) : tw;
    json_t *sfs = json_object_get(tiles, "scaleFactors");
    assert_true(json_array_size(sfs) >= 1);
    size_t k;
    json_t *sfj;
    int tiles_seen = 0;
    json_array_foreach(sfs, k, sfj)
    {
        uint32_t sf = (uint32_t)json_integer_value(sfj);
        assert_true(sf >= 1 && sf <= 64);
        uint32_t nx = (src->w + tw * sf - 1) / (tw * sf);
        uint32_t ny = (src->h + th * sf - 1) / (th * sf);
        for (uint32_t ty = 0; ty < ny; ty++) {
            for (uint32_t tx = 0; tx < nx; tx++) {
                double rect[4];
                uint32_t size[2];
                osd_tile_path(path, sizeof(path), version, src->id, src->w, src->h, tw, th, sf, tx,
                              ty, rect, size);
                struct xform x = {src->w,  src->h,  src->cells, rect[0], rect[1], rect[2],
                                  rect[3], size[0], size[1],    0,       0,       Q_COLOR};
                if ((double)src->w / src->cells / sf >= 8.0) {
                    check_render(path, &x, format_tolerance(path, src));
                } else {
                    /* Cells under 8 px leave no pixel clear of a cell edge: dimensions only. */
                    struct ts_image img;
                    fetch_image(path, size[0], size[1], &img);
                    ts_image_free(&img);
                }
                tiles_seen++;
            }
        }
    }
    json_decref(info);
    assert_true(tiles_seen >= 1);
}

static void test_openseadragon_tile_walk_v3(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_SOURCES; i++)
        walk_tiles(3, &grid_sources[i]);
}

static void test_openseadragon_tile_walk_v2(void **state)
{
    (void)state;
    walk_tiles(2, &grid_sources[0]);
    walk_tiles(2, &grid_sources[1]);
}

/* The tile requests named in the brief, literally, on both TIFF layouts, PNG and JPEG. */
static const struct form literal_tile_forms[] = {
    {"0,0,256,256/256,/0/default.jpg", 0, 0, 256, 256, 256, 256, 0, 0, Q_COLOR},
    {"0,0,256,256/256,256/0/default.jpg", 0, 0, 256, 256, 256, 256, 0, 0, Q_COLOR},
    {"256,512,256,256/256,/0/default.jpg", 256, 512, 256, 256, 256, 256, 0, 0, Q_COLOR},
    {"768,768,232,232/232,/0/default.jpg", 768, 768, 232, 232, 232, 232, 0, 0, Q_COLOR},
    {"768,0,232,256/232,256/0/default.jpg", 768, 0, 232, 256, 232, 256, 0, 0, Q_COLOR},
    {"0,0,512,512/256,/0/default.jpg", 0, 0, 512, 512, 256, 256, 0, 0, Q_COLOR},
    {"512,512,488,488/244,/0/default.jpg", 512, 512, 488, 488, 244, 244, 0, 0, Q_COLOR},
    {"full/250,/0/default.jpg", 0, 0, 0, 0, 250, 250, 0, 0, Q_COLOR},
};

static void test_literal_viewer_tiles(void **state)
{
    (void)state;
    size_t n = sizeof(literal_tile_forms) / sizeof(literal_tile_forms[0]);
    run_forms(3, literal_tile_forms, n, grid_sources, 4);
    run_forms(2, literal_tile_forms, n, grid_sources, 2);
}

static void check_string_field(json_t *o, const char *key, const char *want, const char *path)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        fail_msg("%s: \"%s\" missing or not a string", path, key);
    if (strcmp(json_string_value(v), want) != 0)
        fail_msg("%s: \"%s\" is \"%s\", expected \"%s\"", path, key, json_string_value(v), want);
}

static void check_common_info(json_t *j, const char *path, const struct source *src)
{
    check_string_field(j, "protocol", "http://iiif.io/api/image", path);
    assert_int_equal(json_int_field(j, "width", path), src->w);
    assert_int_equal(json_int_field(j, "height", path), src->h);
    json_t *sizes = json_object_get(j, "sizes");
    if (!json_is_array(sizes) || json_array_size(sizes) == 0)
        fail_msg("%s: sizes missing or empty", path);
    size_t i;
    json_t *s;
    json_array_foreach(sizes, i, s)
    {
        json_int_t w = json_int_field(s, "width", path);
        json_int_t h = json_int_field(s, "height", path);
        if (w < 1 || h < 1 || w > src->w || h > src->h)
            fail_msg("%s: sizes[%zu] = %lldx%lld is outside the image", path, i, (long long)w,
                     (long long)h);
        /* Aspect kept to within a pixel of rounding. */
        if (llabs(w * (json_int_t)src->h - h * (json_int_t)src->w) > (json_int_t)src->w)
            fail_msg("%s: sizes[%zu] = %lldx%lld distorts the aspect", path, i, (long long)w,
                     (long long)h);
    }
}

static void check_tiles_256(json_t *j, const char *path)
{
    json_t *t = json_array_get(json_object_get(j, "tiles"), 0);
    if (!json_is_object(t))
        fail_msg("%s: tiles missing", path);
    assert_int_equal(json_int_field(t, "width", path), 256);
    if (json_object_get(t, "height"))
        assert_int_equal(json_int_field(t, "height", path), 256);
    int have[5] = {0};
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(t, "scaleFactors"), i, f)
    {
        json_int_t v = json_integer_value(f);
        if (v == 1 || v == 2 || v == 4)
            have[v] = 1;
    }
    if (!have[1] || !have[2] || !have[4])
        fail_msg("%s: scaleFactors must contain 1, 2 and 4", path);
}

static void test_info_v3_fields(void **state)
{
    (void)state;
    const char *ids[] = {"grid.tif", "grid-subifd.tif", "sub%2Fdir%2Fgrid2.tif"};
    for (size_t i = 0; i < 3; i++) {
        char path[256];
        char want[512];
        pathf(path, sizeof(path), "/iiif/3/%s/info.json", ids[i]);
        json_t *j = fetch_json(path, NULL);
        check_string_field(j, "@context", "http://iiif.io/api/image/3/context.json", path);
        check_string_field(j, "type", "ImageService3", path);
        check_string_field(j, "profile", "level2", path);
        pathf(want, sizeof(want), "%s/iiif/3/%s", server.base, ids[i]);
        const char *id = json_string_value(json_object_get(j, "id"));
        if (!id || strcasecmp(id, want) != 0)
            fail_msg("%s: id is \"%s\", expected \"%s\"", path, id ? id : "(none)", want);
        check_common_info(j, path, &grid_sources[0]);
        if (i < 2)
            check_tiles_256(j, path);
        if (json_object_get(j, "maxWidth"))
            fail_msg("%s: maxWidth advertised though none is configured", path);
        json_decref(j);
    }
    json_t *w = fetch_json("/iiif/3/wide.png/info.json", NULL);
    check_common_info(w, "/iiif/3/wide.png/info.json", &wide_source);
    json_decref(w);
}

static void test_info_v2_fields(void **state)
{
    (void)state;
    const char *path = "/iiif/2/grid.tif/info.json";
    json_t *j = fetch_json(path, NULL);
    check_string_field(j, "@context", "http://iiif.io/api/image/2/context.json", path);
    char want[256];
    pathf(want, sizeof(want), "%s/iiif/2/grid.tif", server.base);
    check_string_field(j, "@id", want, path);
    json_t *profile = json_object_get(j, "profile");
    const char *level = json_string_value(json_array_get(profile, 0));
    if (!level || strcmp(level, "http://iiif.io/api/image/2/level2.json") != 0)
        fail_msg("%s: profile[0] is \"%s\"", path, level ? level : "(none)");
    check_common_info(j, path, &grid_sources[0]);
    check_tiles_256(j, path);
    json_decref(j);

    json_t *one = fetch_json("/iiif/1/grid.tif/info.json", NULL);
    assert_int_equal(json_int_field(one, "width", "1.1 info"), 1000);
    assert_int_equal(json_int_field(one, "height", "1.1 info"), 1000);
    json_decref(one);
}

/* Every advertised size is servable with w,h exactly. */
static void test_info_sizes_are_servable(void **state)
{
    (void)state;
    const char *path = "/iiif/3/grid.tif/info.json";
    json_t *j = fetch_json(path, NULL);
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(j, "sizes"), i, s)
    {
        uint32_t w = (uint32_t)json_int_field(s, "width", path);
        uint32_t h = (uint32_t)json_int_field(s, "height", path);
        if (w < 20)
            continue; /* too small for cell-centre sampling */
        char img[256];
        pathf(img, sizeof(img), "/iiif/3/grid.tif/full/%u,%u/0/default.jpg", w, h);
        struct xform x = {1000, 1000, 10, 0, 0, 1000, 1000, w, h, 0, 0, Q_COLOR};
        check_render(img, &x, 14);
    }
    json_decref(j);
}

static void test_info_id_follows_host_header(void **state)
{
    (void)state;
    const char *hdrs[] = {"Host: example.org:8123", NULL};
    json_t *j = fetch_json("/iiif/3/grid.tif/info.json", hdrs);
    check_string_field(j, "id", "http://example.org:8123/iiif/3/grid.tif", "Host info.json");
    json_decref(j);
    j = fetch_json("/iiif/2/grid.tif/info.json", hdrs);
    check_string_field(j, "@id", "http://example.org:8123/iiif/2/grid.tif", "Host info.json");
    json_decref(j);
}

static void test_info_id_follows_base_url(void **state)
{
    (void)state;
    struct tu_server other;
    char root[4096];
    pathf(root, sizeof(root), "%s/root", TESSERA_TEST_WORK);
    const char *args[] = {"--base-url", "https://images.example.org/base", NULL};
    assert_int_equal(tu_server_start(&other, TESSERA_BIN, root, args), 0);
    struct tu_server saved = server;
    server = other;
    json_t *j3 = fetch_json("/iiif/3/grid.tif/info.json", NULL);
    json_t *j2 = fetch_json("/iiif/2/grid.tif/info.json", NULL);
    server = saved;
    int stopped = tu_server_stop(&other);
    check_string_field(j3, "id", "https://images.example.org/base/iiif/3/grid.tif", "base-url");
    check_string_field(j2, "@id", "https://images.example.org/base/iiif/2/grid.tif", "base-url");
    json_decref(j3);
    json_decref(j2);
    assert_int_equal(stopped, 0);
}

/* Percent-decodes s in place; returns false on a bad escape. */
static bool percent_decode(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r == '%') {
            unsigned v = 0;
            for (int k = 1; k <= 2; k++) {
                char c = r[k];
                v <<= 4;
                if (c >= '0' && c <= '9')
                    v |= (unsigned)(c - '0');
                else if (c >= 'a' && c <= 'f')
                    v |= (unsigned)(c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                    v |= (unsigned)(c - 'A' + 10);
                else
                    return false;
            }
            *w++ = (char)v;
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return true;
}

/* Names with a space, a plus and UTF-8 work, and info.json's id encodes them so that decoding
 * gives the name back. */
static void test_awkward_identifiers_round_trip(void **state)
{
    (void)state;
    static const struct {
        const char *sent;
        const char *name;
    } ids[] = {{"a%20b%2Bc.png", "a b+c.png"}, {"gr%C3%BCn.png", "gr\xc3\xbcn.png"}};
    for (size_t i = 0; i < 2; i++) {
        char path[256];
        pathf(path, sizeof(path), "/iiif/3/%s/info.json", ids[i].sent);
        json_t *j = fetch_json(path, NULL);
        const char *id = json_string_value(json_object_get(j, "id"));
        char prefix[128];
        pathf(prefix, sizeof(prefix), "%s/iiif/3/", server.base);
        if (!id || strncmp(id, prefix, strlen(prefix)) != 0)
            fail_msg("%s: id \"%s\" does not start with %s", path, id ? id : "", prefix);
        char tail[256];
        pathf(tail, sizeof(tail), "%s", id + strlen(prefix));
        if (strchr(tail, ' ') || strchr(tail, '/'))
            fail_msg("%s: id \"%s\" leaves a space or slash unencoded", path, id);
        if (!percent_decode(tail) || strcmp(tail, ids[i].name) != 0)
            fail_msg("%s: id \"%s\" does not decode to the file name", path, id);
        json_decref(j);
        pathf(path, sizeof(path), "/iiif/3/%s/100,200,300,400/max/0/default.png", ids[i].sent);
        struct xform x = {1000, 1000, 10, 100, 200, 300, 400, 300, 400, 0, 0, Q_COLOR};
        check_render(path, &x, 3);
    }
}

/* Forwarded headers are only honoured when the server is told to trust a proxy. */
static void test_info_ignores_forwarded_headers_by_default(void **state)
{
    (void)state;
    const char *hdrs[] = {"X-Forwarded-Host: evil.example", "X-Forwarded-Proto: https",
                          "Forwarded: host=evil.example;proto=https", NULL};
    json_t *j = fetch_json("/iiif/3/grid.tif/info.json", hdrs);
    char want[256];
    pathf(want, sizeof(want), "%s/iiif/3/grid.tif", server.base);
    check_string_field(j, "id", want, "forwarded headers");
    json_decref(j);
}

static void write_grid_png(const char *path, uint32_t w, uint32_t h, uint32_t cells, time_t mtime)
{
    char tmp[4200];
    struct ts_image img;
    pathf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_int_equal(grid_make(w, h, cells, 3, &img), 0);
    assert_int_equal(grid_write_png(tmp, &img, 8), 0);
    ts_image_free(&img);
    struct timespec times[2] = {{mtime, 0}, {mtime, 0}};
    assert_int_equal(utimensat(AT_FDCWD, tmp, times, 0), 0);
    assert_int_equal(rename(tmp, path), 0);
}

/* Replacing a file (new size, new mtime) must not be answered from a stale cache, and a
 * deleted file is gone. */
static void test_changed_source_is_not_served_stale(void **state)
{
    (void)state;
    char path[4096];
    pathf(path, sizeof(path), "%s/root/mutable.png", TESSERA_TEST_WORK);
    time_t now = time(NULL);
    write_grid_png(path, 1000, 1000, 10, now - 100);
    json_t *j = fetch_json("/iiif/3/mutable.png/info.json", NULL);
    assert_int_equal(json_int_field(j, "width", "mutable"), 1000);
    json_decref(j);
    struct xform sq = {1000, 1000, 10, 0, 0, 1000, 1000, 200, 200, 0, 0, Q_COLOR};
    check_render("/iiif/3/mutable.png/full/200,/0/default.png", &sq, 3);

    write_grid_png(path, 800, 400, 8, now - 50);
    j = fetch_json("/iiif/3/mutable.png/info.json", NULL);
    if (json_int_field(j, "width", "mutable") != 800)
        fail_msg("info.json still reports the replaced file's width");
    json_decref(j);
    struct xform wide = {800, 400, 8, 0, 0, 800, 400, 200, 100, 0, 0, Q_COLOR};
    check_render("/iiif/3/mutable.png/full/200,/0/default.png", &wide, 3);

    assert_int_equal(unlink(path), 0);
    struct tu_response r;
    assert_int_equal(tu_get(&server, "/iiif/3/mutable.png/info.json", &r), 0);
    long st = r.status;
    tu_response_free(&r);
    assert_int_equal(tu_get(&server, "/iiif/3/mutable.png/full/200,/0/default.png", &r), 0);
    long st2 = r.status;
    tu_response_free(&r);
    if (st != 404 || st2 != 404)
        fail_msg("deleted file: info.json %ld and image %ld, expected 404", st, st2);
}

/* Threads hammer tiles of both TIFF layouts at once; every tile must still be right. */
struct worker {
    int index;
    int failures;
    int requests;
    char first[300];
};

static void *tile_worker(void *arg)
{
    struct worker *w = arg;
    static const char *const ids[] = {"grid.tif", "grid-subifd.tif", "grid.jpg", "grid.png"};
    struct tu_client c;
    if (tu_client_init(&c) != 0) {
        w->failures++;
        return NULL;
    }
    for (int k = 0; k < 16; k++) {
        uint32_t tx = (uint32_t)(k + w->index) % 4;
        uint32_t ty = (uint32_t)(k / 4 + w->index) % 4;
        uint32_t sf = (k % 3 == 2) ? 2 : 1;
        if (sf == 2) {
            tx %= 2;
            ty %= 2;
        }
        uint32_t x = tx * 256 * sf;
        uint32_t y = ty * 256 * sf;
        uint32_t rw = 256 * sf < 1000 - x ? 256 * sf : 1000 - x;
        uint32_t rh = 256 * sf < 1000 - y ? 256 * sf : 1000 - y;
        uint32_t ow = (rw + sf - 1) / sf;
        uint32_t oh = (rh + sf - 1) / sf;
        const char *id = ids[(k + w->index) % 4];
        char url[512];
        snprintf(url, sizeof(url), "%s/iiif/3/%s/%u,%u,%u,%u/%u,%u/0/default.jpg", server.base, id,
                 x, y, rw, rh, ow, oh);
        struct tu_response r;
        struct ts_image img = {0};
        w->requests++;
        int rc = tu_client_request(&c, "GET", url, NULL, &r);
        if (rc != 0 || r.status != 200 || tu_decode_body(&r, &img) != 0 || img.width != ow ||
            img.height != oh) {
            if (!w->failures)
                snprintf(w->first, sizeof(w->first), "%.200s: status %ld, %ux%u", url, r.status,
                         img.width, img.height);
            w->failures++;
        } else {
            struct xform xf = {1000, 1000, 10, x, y, rw, rh, ow, oh, 0, 0, Q_COLOR};
            char msg[256];
            int checked;
            if (compare_samples(&img, &xf, 14, &checked, msg, sizeof(msg)) != 0) {
                if (!w->failures)
                    snprintf(w->first, sizeof(w->first), "%.200s: %.90s", url, msg);
                w->failures++;
            }
        }
        ts_image_free(&img);
        tu_response_free(&r);
    }
    tu_client_free(&c);
    return NULL;
}

static void test_concurrent_tile_requests_are_correct(void **state)
{
    (void)state;
    enum { N = 6 };
    pthread_t th[N];
    struct worker w[N];
    tu_http_init();
    for (int i = 0; i < N; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].index = i;
        assert_int_equal(pthread_create(&th[i], NULL, tile_worker, &w[i]), 0);
    }
    int failures = 0;
    int requests = 0;
    const char *first = NULL;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        failures += w[i].failures;
        requests += w[i].requests;
        if (w[i].failures && !first)
            first = w[i].first;
    }
    if (!tu_server_alive(&server))
        fail_msg("server died under concurrent tile requests");
    if (failures)
        fail_msg("%d of %d concurrent tile requests wrong; first: %s", failures, requests, first);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v3_regions_and_sizes_on_every_source),
        cmocka_unit_test(test_v3_upscale_rotation_mirror_gray),
        cmocka_unit_test(test_v2_regions_sizes_and_transforms),
        cmocka_unit_test(test_v3_wide_source_keeps_aspect),
        cmocka_unit_test(test_v3_square_region_on_wide_source),
        cmocka_unit_test(test_bitonal_has_only_black_and_white),
        cmocka_unit_test(test_identifier_without_extension_and_default_version),
        cmocka_unit_test(test_literal_viewer_tiles),
        cmocka_unit_test(test_openseadragon_tile_walk_v3),
        cmocka_unit_test(test_openseadragon_tile_walk_v2),
        cmocka_unit_test(test_info_v3_fields),
        cmocka_unit_test(test_info_v2_fields),
        cmocka_unit_test(test_info_sizes_are_servable),
        cmocka_unit_test(test_info_id_follows_host_header),
        cmocka_unit_test(test_info_id_follows_base_url),
        cmocka_unit_test(test_awkward_identifiers_round_trip),
        cmocka_unit_test(test_info_ignores_forwarded_headers_by_default),
        cmocka_unit_test(test_changed_source_is_not_served_stale),
        cmocka_unit_test(test_concurrent_tile_requests_are_correct),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
