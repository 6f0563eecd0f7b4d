/* Tessera in iipsrv's place: the requests its viewers and web-server recipes send, answered
 * over HTTP by the real server with iipsrv's environment. */
#include "grid.h"
#include "harness.h"
#include "testutil.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
#include <unistd.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

static struct tu_server server;
static char root[1024];

/* A small tiled gray TIFF with the tags iipsrv's OBJ answers from. */
static int write_tagged_tiff(const char *path)
{
    TIFF *t = TIFFOpen(path, "w");
    if (!t)
        return -1;
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, 64);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, 48);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 48);
    TIFFSetField(t, TIFFTAG_DOCUMENTNAME, "Card");
    TIFFSetField(t, TIFFTAG_COPYRIGHT, "CC-BY 4.0");
    TIFFSetField(t, TIFFTAG_XRESOLUTION, 254.0f);
    TIFFSetField(t, TIFFTAG_YRESOLUTION, 254.0f);
    TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT, RESUNIT_INCH);
    uint8_t row[64];
    memset(row, 128, sizeof row);
    for (uint32_t y = 0; y < 48; y++)
        if (TIFFWriteScanline(t, row, y, 0) != 1) {
            TIFFClose(t);
            return -1;
        }
    TIFFClose(t);
    return 0;
}

static int copy_file(const char *from, const char *to)
{
    char cmd[3000];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    return system(cmd) == 0 ? 0 : -1;
}

/* The grid root plus tagged.tif and a two-page TIFF, served with IIIF_DELIMITER=";" and
 * URI_MAP="iiif=>IIIF", as an iipsrv deployment would set them. */
static int group_setup(void **state)
{
    (void)state;
    char path[2048];
    snprintf(root, sizeof root, "%s/root", TESSERA_TEST_WORK);
    if (tu_mkdirs(root) != 0 || tu_make_http_root(root) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/tagged.tif", root);
    if (write_tagged_tiff(path) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/pages.tif", root);
    if (copy_file(TESSERA_TEST_DATA "/multipage-2p-gray.tif", path) != 0)
        return -1;
    setenv("IIIF_DELIMITER", ";", 1);
    setenv("URI_MAP", "iiif=>IIIF", 1);
    int rc = tu_server_start(&server, TESSERA_BIN, root, NULL);
    unsetenv("IIIF_DELIMITER");
    unsetenv("URI_MAP");
    return rc;
}

static int group_teardown(void **state)
{
    (void)state;
    return tu_server_stop(&server) == 0 ? 0 : -1;
}

static void get(const struct tu_server *s, const char *path, struct tu_response *r)
{
    char url[4096];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    if (tu_request("GET", url, NULL, r) != 0)
        fail_msg("GET %s: no response (curl code %d)", path, r->curl_code);
}

static const char *body(const struct tu_response *r)
{
    return r->body.data ? (const char *)r->body.data : "";
}

static void expect(const char *path, long status, const char *needle)
{
    struct tu_response r;
    get(&server, path, &r);
    if (r.status != status)
        fail_msg("%s: status %ld, expected %ld: %s", path, r.status, status, body(&r));
    if (needle && !strstr(body(&r), needle))
        fail_msg("%s: body lacks '%s': %s", path, needle, body(&r));
    tu_response_free(&r);
}

/* iipmooviewer's first request, byte for byte: every object answered, DPI included. */
static void test_iipmooviewer_metadata_request_answers_every_object(void **state)
{
    (void)state;
    static const char *const images[] = {"grid.tif", "tagged.tif"};
    for (int i = 0; i < 2; i++) {
        char path[256];
        snprintf(path, sizeof path,
                 "/fcgi-bin/iipsrv.fcgi?FIF=%s&obj=IIP,1.0&obj=Max-size&obj=Tile-size"
                 "&obj=Resolution-number&obj=Resolutions&obj=dpi",
                 images[i]);
        struct tu_response r;
        get(&server, path, &r);
        assert_int_equal(r.status, 200);
        assert_true(tu_header_contains(&r, "Content-Type", "application/vnd.netfpx"));
        const char *b = body(&r);
        assert_true(!strncmp(b, "IIP:1.0\r\n", 9));
        assert_non_null(strstr(b, "\r\nMax-size:"));
        assert_non_null(strstr(b, "\r\nTile-size:"));
        assert_non_null(strstr(b, "\r\nResolution-number:"));
        assert_non_null(strstr(b, "\r\nResolutions:"));
        if (i == 1) {
            assert_non_null(strstr(b, "Max-size:64 48\r\n"));
            /* 254 per inch is 10000 per metre, as iipsrv reports it. */
            assert_non_null(strstr(b, "\r\nDPI:10000.000000 10000.000000\r\n"));
        }
        tu_response_free(&r);
    }
}

/* Tags come from the image layer, the first time and from the info cache after. */
static void test_metadata_objects_answer_the_image_tags(void **state)
{
    (void)state;
    for (int round = 0; round < 2; round++) {
        struct tu_response r;
        get(&server, "/fcgi-bin/iipsrv.fcgi?FIF=tagged.tif&obj=title", &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(body(&r), "Card\r\n");
        assert_true(tu_header_contains(&r, "Content-Type", "text/plain"));
        tu_response_free(&r);
        get(&server, "/fcgi-bin/iipsrv.fcgi?FIF=tagged.tif&obj=metadata", &r);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(body(&r), "\"rights\": \"CC-BY 4.0\""));
        assert_true(tu_header_contains(&r, "Content-Type", "application/json"));
        tu_response_free(&r);
    }
    expect("/fcgi-bin/iipsrv.fcgi?FIF=tagged.tif&obj=summary-info", 200, "CC-BY 4.0\r\n");
}

static void test_unknown_object_answers_iipsrvs_error(void **state)
{
    (void)state;
    struct tu_response r;
    get(&server, "/fcgi-bin/iipsrv.fcgi?FIF=grid.tif&obj=IIP,1.0&obj=Shoe-size", &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(body(&r), "Error/13:3 2 shoe-size\r\n");
    tu_response_free(&r);
}

/* IIPImage's nginx rule sends IIIF=%2F{id}; with merge_slashes off the slash may come bare. */
static void test_iiif_identifier_with_leading_slash_is_below_the_root(void **state)
{
    (void)state;
    expect("/fcgi-bin/iipsrv.fcgi?IIIF=%2Fgrid.tif/info.json", 200, "\"width\"");
    expect("/fcgi-bin/iipsrv.fcgi?IIIF=/grid.tif/info.json", 200, "\"height\"");
    expect("/fcgi-bin/iipsrv.fcgi?IIIF=%2F%2Fgrid.tif/full/64,/0/default.jpg", 200, NULL);
    /* URI_MAP="iiif=>IIIF" maps the /iiif/ prefix the same way. */
    expect("/iiif/%2Fgrid.tif/info.json", 200, "\"width\"");
}

/* Behind IIPImage's rewrite rules the web server hands over the client's path (REQUEST_URI)
 * beside the rewritten query: the id is the URL the client used, as iipsrv builds it. A plain
 * query request keeps its query form. Here the HTTP request carries both, as the rewrite does. */
static void test_iiif_id_behind_a_rewrite_is_the_clients_url(void **state)
{
    (void)state;
    char want[512];
    snprintf(want, sizeof want, "\"id\": \"%s/images/grid.tif\"", server.base);
    expect("/images/grid.tif/info.json?IIIF=%2Fgrid.tif/info.json", 200, want);
    expect("/images/grid.tif/info.json?IIIF=/grid.tif/info.json", 200, want);
    expect("/images/grid.tif/info.json?IIIF=grid.tif/info.json", 200, want);
    /* lighttpd and Apache pass the capture as the client sent it: %2F stays escaped. */
    snprintf(want, sizeof want, "\"id\": \"%s/images/sub%%2Fdir%%2Fgrid2.tif\"", server.base);
    expect("/images/sub%2Fdir%2Fgrid2.tif/info.json?IIIF=sub%2Fdir%2Fgrid2.tif/info.json", 200,
           want);
    expect("/images/sub%2Fdir%2Fgrid2.tif/info.json?IIIF=%2Fsub/dir/grid2.tif/info.json", 200,
           want);
    snprintf(want, sizeof want, "\"id\": \"%s/fcgi-bin/iipsrv.fcgi?IIIF=/grid.tif\"", server.base);
    expect("/fcgi-bin/iipsrv.fcgi?IIIF=%2Fgrid.tif/info.json", 200, want);
    expect("/fcgi-bin/iipsrv.fcgi?IIIF=grid.tif/info.json", 200, want);
}

static void test_absolute_paths_are_served_under_the_root_only(void **state)
{
    (void)state;
    char path[2048];
    snprintf(path, sizeof path, "/fcgi-bin/iipsrv.fcgi?FIF=%s/grid.tif&obj=Max-size", root);
    expect(path, 200, "Max-size:");
    snprintf(path, sizeof path, "/fcgi-bin/iipsrv.fcgi?IIIF=%s/sub/dir/grid2.tif/info.json", root);
    expect(path, 200, "\"width\"");
    expect("/fcgi-bin/iipsrv.fcgi?FIF=/etc/passwd&obj=Max-size", 403, "absolute paths");
    expect("/fcgi-bin/iipsrv.fcgi?IIIF=%2Fetc%2Fpasswd/info.json", 403, NULL);
    expect("/fcgi-bin/iipsrv.fcgi?FIF=/../root/grid.tif&obj=Max-size", 403, NULL);
    snprintf(path, sizeof path, "/fcgi-bin/iipsrv.fcgi?FIF=%s/../root/grid.tif&obj=Max-size", root);
    expect(path, 403, NULL);
}

/* IIIF_DELIMITER=";": "{id};{n}" is page n counted from 0, as iipsrv counts. */
static void test_iiif_delimiter_selects_a_page_from_zero(void **state)
{
    (void)state;
    expect("/fcgi-bin/iipsrv.fcgi?IIIF=pages.tif;0/info.json", 200, "\"width\"");
    expect("/fcgi-bin/iipsrv.fcgi?IIIF=pages.tif;1/info.json", 200, "\"width\"");
    expect("/fcgi-bin/iipsrv.fcgi?IIIF=pages.tif;2/info.json", 404, NULL);
    expect("/iiif/pages.tif;1/full/max/0/default.png", 200, NULL);
}

/* FILESYSTEM_SUFFIX is glued after every iipsrv-style identifier, IIIF's included. */
static void test_filesystem_suffix_is_appended(void **state)
{
    (void)state;
    struct tu_server s;
    setenv("FILESYSTEM_SUFFIX", "-subifd.tif", 1);
    int rc = tu_server_start(&s, TESSERA_BIN, root, NULL);
    unsetenv("FILESYSTEM_SUFFIX");
    assert_int_equal(rc, 0);
    struct tu_response r;
    get(&s, "/fcgi-bin/iipsrv.fcgi?IIIF=%2Fgrid/info.json", &r);
    assert_int_equal(r.status, 200);
    tu_response_free(&r);
    get(&s, "/fcgi-bin/iipsrv.fcgi?FIF=grid&obj=Max-size", &r);
    assert_int_equal(r.status, 200);
    tu_response_free(&r);
    /* Tessera's own routes take identifiers as they are. */
    get(&s, "/iiif/3/grid.tif/info.json", &r);
    assert_int_equal(r.status, 200);
    tu_response_free(&r);
    assert_int_equal(tu_server_stop(&s), 0);
}

/* A rendered answer, decoded; fails the test unless it is 200 of the given type. */
static void get_image(const char *path, const char *type, struct ts_image *img)
{
    struct tu_response r;
    get(&server, path, &r);
    if (r.status != 200)
        fail_msg("%s: status %ld: %s", path, r.status, body(&r));
    assert_true(tu_header_contains(&r, "Content-Type", type));
    assert_int_equal(tu_decode(r.body.data, r.body.len, img), 0);
    tu_response_free(&r);
}

static int adjusted(double v, double gamma, bool invert, double contrast)
{
    v = pow(v / 255.0, gamma);
    if (invert)
        v = 1.0 - v;
    v *= contrast * 255.0;
    return v <= 0.0 ? 0 : v >= 255.0 ? 255 : (int)(v + 0.5);
}

/* Each cell's centre of a whole-image PNG (lossless: the grid's colours exactly), against the
 * definition of GAM, INV and CNT applied to the grid colour. */
static void check_cells(const char *query, double gamma, bool invert, double contrast)
{
    struct ts_image img;
    get_image(query, "image/png", &img);
    assert_int_equal(img.width, GRID_SIZE);
    assert_int_equal(img.channels, 3);
    for (uint32_t row = 0; row < GRID_CELLS; row += 3)
        for (uint32_t col = 0; col < GRID_CELLS; col += 3) {
            uint8_t rgb[3];
            grid_cell_color(col, row, rgb);
            const uint8_t *p = ts_image_row(&img, row * 100 + 50) + (size_t)(col * 100 + 50) * 3;
            for (int c = 0; c < 3; c++) {
                int want = adjusted(rgb[c], gamma, invert, contrast);
                if (abs(want - p[c]) > 1)
                    fail_msg("%s: cell %u,%u channel %d: want %d, got %u", query, col, row, c, want,
                             p[c]);
            }
        }
    ts_image_free(&img);
}

static void test_gamma_inversion_and_contrast_change_the_pixels(void **state)
{
    (void)state;
    check_cells("/fcgi-bin/iipsrv.fcgi?FIF=grid-subifd.tif&WID=1000&CVT=png", 1.0, false, 1.0);
    check_cells("/fcgi-bin/iipsrv.fcgi?FIF=grid-subifd.tif&WID=1000&INV&CVT=png", 1.0, true, 1.0);
    check_cells("/fcgi-bin/iipsrv.fcgi?FIF=grid-subifd.tif&WID=1000&GAM=2&CNT=1.5&CVT=png", 2.0,
                false, 1.5);
    check_cells("/fcgi-bin/iipsrv.fcgi?FIF=grid-subifd.tif&GAM=0.5&INV=true&CNT=0.8&WID=1000&"
                "CVT=png",
                0.5, true, 0.8);
}

/* A colour map reads the first sample: red maps the red channel alone; COL=grey is one
 * channel. */
static void test_colour_map_and_grey(void **state)
{
    (void)state;
    struct ts_image img;
    uint8_t rgb[3];
    grid_cell_color(2, 5, rgb);
    get_image("/fcgi-bin/iipsrv.fcgi?FIF=grid-subifd.tif&WID=1000&CMP=RED&CVT=png", "image/png",
              &img);
    const uint8_t *p = ts_image_row(&img, 550) + 250 * 3;
    assert_int_equal(p[0], rgb[0]);
    assert_int_equal(p[1], 0);
    assert_int_equal(p[2], 0);
    ts_image_free(&img);
    get_image("/fcgi-bin/iipsrv.fcgi?FIF=grid-subifd.tif&WID=1000&COL=grey&CVT=png", "image/png",
              &img);
    assert_int_equal(img.channels, 1);
    assert_true(abs((int)ts_image_row(&img, 550)[250] - (int)grid_luma(rgb)) <= 2);
    ts_image_free(&img);
}

/* iipmooviewer's tile requests when its contrast and gamma sliders move: JPEG tiles of the
 * right size, brighter than the plain tile where contrast > 1. */
static void test_iipmooviewer_tiles_with_contrast_and_gamma(void **state)
{
    (void)state;
    struct ts_image plain, bright;
    get_image("/fcgi-bin/iipsrv.fcgi?FIF=grid.tif&JTL=2,0", "image/jpeg", &plain);
    get_image("/fcgi-bin/iipsrv.fcgi?FIF=grid.tif&CNT=1.6&GAM=1&JTL=2,0", "image/jpeg", &bright);
    assert_int_equal(plain.width, bright.width);
    assert_int_equal(plain.height, bright.height);
    const uint8_t *a = ts_image_row(&plain, 10) + 10 * 3, *b = ts_image_row(&bright, 10) + 10 * 3;
    for (int c = 0; c < 3; c++)
        if (abs(adjusted(a[c], 1.0, false, 1.6) - b[c]) > 6)
            fail_msg("channel %d: plain %u, CNT=1.6 %u", c, a[c], b[c]);
    ts_image_free(&plain);
    ts_image_free(&bright);
    expect("/fcgi-bin/iipsrv.fcgi?FIF=grid.tif&SHD=30,60&SDS=0,90&CNT=1.1&JTL=1,0", 200, NULL);
}

/* ROT=180 on a tile: iipsrv counts tiles from the other end and turns each, so tile 0 is the
 * image's bottom-right corner, upside down. */
static void test_tile_half_turn(void **state)
{
    (void)state;
    struct ts_image t;
    uint8_t rgb[3];
    /* Resolution 2 of grid.tif is the full 1000 px: 4 x 4 tiles, the last 232 px square. */
    get_image("/fcgi-bin/iipsrv.fcgi?FIF=grid-subifd.tif&ROT=180&JTL=2,0", "image/jpeg", &t);
    assert_int_equal(t.width, 1000 - 3 * 256);
    assert_int_equal(t.height, 1000 - 3 * 256);
    grid_cell_color(9, 9, rgb);
    assert_true(tu_pixel_diff(&t, 5, 5, rgb) <= 12);
    ts_image_free(&t);
}

static void test_bad_adjustment_arguments(void **state)
{
    (void)state;
    expect("/fcgi-bin/iipsrv.fcgi?FIF=grid.tif&GAM=bright&JTL=1,0", 400, "Error/");
    expect("/fcgi-bin/iipsrv.fcgi?FIF=grid.tif&CNV=[1,2]&JTL=1,0", 400, "Error/");
    expect("/fcgi-bin/iipsrv.fcgi?FIF=grid.tif&CNT=-2&JTL=1,0", 400, "Error/");
    expect("/fcgi-bin/iipsrv.fcgi?FIF=grid.tif&COL=purple&JTL=1,0", 400, "Error/");
    expect("/fcgi-bin/iipsrv.fcgi?FIF=grid.tif&CNV=sobel&JTL=1,0", 200, NULL);
    expect("/fcgi-bin/iipsrv.fcgi?FIF=grid.tif&CNV=[0,-1,0,-1,5,-1,0,-1,0]&JTL=1,0", 200, NULL);
}

/* PTL, WTL and TTL are JTL's tile in PNG, WebP and TIFF; CVT=tif a TIFF; ATL (AVIF) is 501. */
static void test_tile_commands_in_other_formats(void **state)
{
    (void)state;
    static const struct {
        const char *cmd, *type;
    } kinds[] = {{"JTL", "image/jpeg"}, {"PTL", "image/png"}, {"WTL", "image/webp"}};
    uint8_t rgb[3];
    grid_cell_color(0, 0, rgb);
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char path[256];
        struct ts_image t;
        snprintf(path, sizeof path, "/fcgi-bin/iipsrv.fcgi?FIF=grid-subifd.tif&%s=2,0",
                 kinds[i].cmd);
        get_image(path, kinds[i].type, &t);
        assert_int_equal(t.width, 256);
        assert_int_equal(t.height, 256);
        assert_true(tu_pixel_diff(&t, 50, 50, rgb) <= 8);
        ts_image_free(&t);
    }
    static const char *const tiffs[] = {
        "/fcgi-bin/iipsrv.fcgi?FIF=grid-subifd.tif&TTL=2,0",
        "/fcgi-bin/iipsrv.fcgi?FIF=grid-subifd.tif&WID=100&CVT=tif"};
    for (size_t i = 0; i < 2; i++) {
        struct tu_response r;
        get(&server, tiffs[i], &r);
        assert_int_equal(r.status, 200);
        assert_true(tu_header_contains(&r, "Content-Type", "image/tiff"));
        assert_true(r.body.len > 8 &&
                    (!memcmp(r.body.data, "II*", 3) || !memcmp(r.body.data, "MM", 2)));
        tu_response_free(&r);
    }
    expect("/fcgi-bin/iipsrv.fcgi?FIF=grid.tif&ATL=1,0", 501, NULL);
}

/* CTW on a lossless grid: a row per output channel, so this one swaps red and blue. */
static void test_colour_twist_swaps_channels(void **state)
{
    (void)state;
    struct ts_image img;
    uint8_t rgb[3];
    grid_cell_color(3, 6, rgb);
    get_image("/fcgi-bin/iipsrv.fcgi?FIF=grid-subifd.tif&WID=1000&CTW=[0,0,1;0,1,0;1,0,0]&"
              "CVT=png",
              "image/png", &img);
    const uint8_t *p = ts_image_row(&img, 650) + 350 * 3;
    assert_int_equal(p[0], rgb[2]);
    assert_int_equal(p[1], rgb[1]);
    assert_int_equal(p[2], rgb[0]);
    ts_image_free(&img);
    expect("/fcgi-bin/iipsrv.fcgi?FIF=grid.tif&CTW=[1,0;0,1]&JTL=1,0", 400, "Error/");
    expect("/fcgi-bin/iipsrv.fcgi?FIF=grid.tif&CTW=[0.3,0.6,0.1]&JTL=1,0", 200, NULL);
}

int main(void)
{
    tu_http_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iipmooviewer_metadata_request_answers_every_object),
        cmocka_unit_test(test_metadata_objects_answer_the_image_tags),
        cmocka_unit_test(test_unknown_object_answers_iipsrvs_error),
        cmocka_unit_test(test_iiif_identifier_with_leading_slash_is_below_the_root),
        cmocka_unit_test(test_iiif_id_behind_a_rewrite_is_the_clients_url),
        cmocka_unit_test(test_absolute_paths_are_served_under_the_root_only),
        cmocka_unit_test(test_iiif_delimiter_selects_a_page_from_zero),
        cmocka_unit_test(test_filesystem_suffix_is_appended),
        cmocka_unit_test(test_gamma_inversion_and_contrast_change_the_pixels),
        cmocka_unit_test(test_colour_map_and_grey),
        cmocka_unit_test(test_iipmooviewer_tiles_with_contrast_and_gamma),
        cmocka_unit_test(test_tile_half_turn),
        cmocka_unit_test(test_bad_adjustment_arguments),
        cmocka_unit_test(test_tile_commands_in_other_formats),
        cmocka_unit_test(test_colour_twist_swaps_channels),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
