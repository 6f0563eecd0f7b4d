/* iipsrv 1.3's data answers over HTTP: SPECTRA (a point of every view of an image sequence, as
 * XML) and PFL (a line of samples, as JSON), checked against the samples of images written
 * here; their errors; ICC accepted and ignored; TIL and ATL refused. */
#include "grid.h"
#include "harness.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

static struct tu_server server;
static char root[1024];

/* name below the root, written by grid_write_tiff_fn. */
static int write_tiff(const char *name, uint32_t w, uint32_t h, uint16_t spp, uint16_t bps,
                      grid_sample_fn f)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", root, name);
    return grid_write_tiff_fn(path, w, h, spp, bps, f);
}

/* grad.tif: 300 x 200 gray, so full resolution has a whole tile and a 44-pixel edge tile. */
static uint16_t grad(uint32_t x, uint32_t y, uint32_t c)
{
    (void)c;
    return (uint16_t)((x * 3 + y * 7) % 251);
}

/* g16.tif: grad's values on the 16-bit scale (v * 257). */
static uint16_t grad16(uint32_t x, uint32_t y, uint32_t c)
{
    return (uint16_t)(grad(x, y, c) * 257);
}

/* rgb.tif: 64 x 32, each channel its own ramp. */
static uint16_t rgb(uint32_t x, uint32_t y, uint32_t c)
{
    return (uint8_t)(x * 2 + y + c * 60);
}

/* The sequence "spec" (FILENAME_PATTERN's default "_pyr_"): views 0, 20 and 40 at vertical
 * angle 90, 64 x 64 gray, view i being its level plus x. */
static const struct {
    const char *name;
    int view;
    uint8_t level;
} views[] = {{"spec_pyr_000_090.tif", 0, 10},
             {"spec_pyr_020_090.tif", 20, 100},
             {"spec_pyr_040_090.tif", 40, 180}};
static uint8_t view_level;
static uint16_t view_ramp(uint32_t x, uint32_t y, uint32_t c)
{
    (void)y, (void)c;
    return (uint8_t)(view_level + x);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "%s/root", TESSERA_TEST_WORK);
    if (tu_mkdirs(root) != 0 || write_tiff("grad.tif", 300, 200, 1, 8, grad) != 0 ||
        write_tiff("rgb.tif", 64, 32, 3, 8, rgb) != 0 ||
        write_tiff("g16.tif", 64, 32, 1, 16, grad16) != 0)
        return -1;
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) {
        view_level = views[i].level;
        if (write_tiff(views[i].name, 64, 64, 1, 8, view_ramp) != 0)
            return -1;
    }
    return tu_server_start(&server, TESSERA_BIN, root, NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    return tu_server_stop(&server) == 0 ? 0 : -1;
}

/* Asks query; fails unless the status is status and (when given) the type starts with type
 * and the body is want, or contains part. */
static void check(const char *query, long status, const char *type, const char *want,
                  const char *part)
{
    char url[4096];
    struct tu_response r;
    snprintf(url, sizeof url, "%s/fcgi-bin/iipsrv.fcgi?%s", server.base, query);
    if (tu_request("GET", url, NULL, &r) != 0)
        fail_msg("GET %s: no response", query);
    const char *body = r.body.data ? (const char *)r.body.data : "";
    if (r.status != status || (want && strcmp(body, want)) || (part && !strstr(body, part)))
        fail_msg("%s: status %ld, body '%s'; want %ld '%s'", query, r.status, body, status,
                 want   ? want
                 : part ? part
                        : "");
    if (type && !tu_header_contains(&r, "Content-Type", type))
        fail_msg("%s: Content-Type is not %s", query, type);
    tu_response_free(&r);
}

static const char *const xml_head = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<spectra>\n";

/* One <point> as iipsrv prints it: the value over 255, printf's %f of a float. */
static void add_point(char *out, size_t size, int view, int value)
{
    size_t n = strlen(out);
    snprintf(out + n, size - n,
             "\t<point>\n\t\t<wavelength>%d</wavelength>\n\t\t<reflectance>%f</reflectance>\n"
             "\t</point>\n",
             view, (double)(float)(value / 255.0));
}

static void test_spectra_of_a_single_image(void **state)
{
    (void)state;
    char want[1024];
    /* Full resolution is number 1 (300 x 200, then 150 x 100 fits one tile). */
    snprintf(want, sizeof want, "%s", xml_head);
    add_point(want, sizeof want, 0, grad(10, 20, 0));
    strcat(want, "</spectra>");
    check("FIF=grad.tif&SPECTRA=1,0,10,20", 200, "application/xml", want, NULL);
    /* The edge tile (44 wide): iipsrv counts the point's sample as y * 256 + x through the
     * tile's 44-pixel rows. */
    uint32_t at = 7 * 256 + 5;
    snprintf(want, sizeof want, "%s", xml_head);
    add_point(want, sizeof want, 0, grad(256 + at % 44, at / 44, 0));
    strcat(want, "</spectra>");
    check("FIF=grad.tif&SPECTRA=1,1,5,7", 200, "application/xml", want, NULL);
    /* Inside the nominal tile, beyond the edge tile: no point, as iipsrv's loop stops. */
    snprintf(want, sizeof want, "%s</spectra>", xml_head);
    check("FIF=grad.tif&SPECTRA=1,1,50,7", 200, "application/xml", want, NULL);

    const char *outside = "SPECTRA :: Error: x,y coordinates outside of tile boundaries";
    check("FIF=grad.tif&SPECTRA=1,0,256,0", 400, NULL, NULL, outside);
    check("FIF=grad.tif&SPECTRA=1,0,3,-1", 400, NULL, NULL, outside);
    check("FIF=grad.tif&SPECTRA=1,9,0,0", 404, NULL, NULL, NULL);
    check("FIF=grad.tif&SPECTRA=2,0,0,0", 404, NULL, NULL, NULL);
}

static void test_spectra_lists_every_view_of_a_sequence(void **state)
{
    (void)state;
    char want[2048];
    snprintf(want, sizeof want, "%s", xml_head);
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++)
        add_point(want, sizeof want, views[i].view, views[i].level + 3);
    strcat(want, "</spectra>");
    check("FIF=spec&SPECTRA=0,0,3,4", 200, "application/xml", want, NULL);
    /* Whichever view SDS names, the list is the same. */
    check("FIF=spec&SDS=20,90&SPECTRA=0,0,3,4", 200, "application/xml", want, NULL);
}

/* "[a,b,...]" of the values. */
static void add_values(char *out, size_t size, const int *v, size_t n)
{
    size_t len = strlen(out);
    len += (size_t)snprintf(out + len, size - len, "[");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, size - len, "%s%d", i ? "," : "", v[i]);
    snprintf(out + len, size - len, "]");
}

static void test_pfl_profiles_lines_and_points(void **state)
{
    (void)state;
    char want[1024];
    int v[8];
    /* Horizontal: x from 10 up to (not including) 15. */
    for (int i = 0; i < 5; i++)
        v[i] = grad(10 + (uint32_t)i, 20, 0);
    snprintf(want, sizeof want, "{\n\t\"profile\": ");
    add_values(want, sizeof want, v, 5);
    strcat(want, "\n}");
    check("FIF=grad.tif&PFL=1:10,20-15,20", 200, "application/json", want, NULL);
    /* Vertical, when x does not grow. */
    for (int i = 0; i < 3; i++)
        v[i] = grad(7, 3 + (uint32_t)i, 0);
    snprintf(want, sizeof want, "{\n\t\"profile\": ");
    add_values(want, sizeof want, v, 3);
    strcat(want, "\n}");
    check("FIF=grad.tif&PFL=1:7,3-7,6", 200, "application/json", want, NULL);
    /* A point. */
    v[0] = grad(299, 199, 0);
    snprintf(want, sizeof want, "{\n\t\"profile\": ");
    add_values(want, sizeof want, v, 1);
    strcat(want, "\n}");
    check("FIF=grad.tif&PFL=1:299,199", 200, "application/json", want, NULL);
    /* Every channel of each pixel, in turn. */
    for (int i = 0; i < 6; i++)
        v[i] = rgb(1 + (uint32_t)i / 3, 2, (uint32_t)i % 3);
    snprintf(want, sizeof want, "{\n\t\"profile\": ");
    add_values(want, sizeof want, v, 6);
    strcat(want, "\n}");
    check("FIF=rgb.tif&PFL=0:1,2-3,2", 200, "application/json", want, NULL);

    check("FIF=grad.tif&PFL=2:0,0-1,0", 400, NULL, NULL, "PFL :: Invalid resolution number: 2");
    check("FIF=grad.tif&PFL=1:0,0-301,0", 400, NULL, NULL, "PFL :: Invalid coordinates: 0,0-301,0");
    check("FIF=grad.tif&PFL=1:300,5", 400, NULL, NULL, "PFL :: Invalid coordinates");
    /* 16-bit samples: Tessera reads 8 bits, and says so rather than quote rounded numbers. */
    check("FIF=g16.tif&PFL=0:0,0-2,0", 501, NULL, NULL, "8 bits");
}

static void test_pfl_names_each_view_of_a_sequence(void **state)
{
    (void)state;
    char want[1024];
    snprintf(want, sizeof want, "{\n\t\"profile\": {\n");
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) {
        int v[2] = {views[i].level + 2, views[i].level + 3};
        size_t n = strlen(want);
        snprintf(want + n, sizeof want - n, "\t\t\"%d\": ", views[i].view);
        add_values(want, sizeof want, v, 2);
        strcat(want, i + 1 < sizeof views / sizeof views[0] ? ",\n" : "\n");
    }
    strcat(want, "\t}\n}");
    check("FIF=spec&PFL=0:2,1-4,1", 200, "application/json", want, NULL);
}

static bool same_body(const char *a, const char *b)
{
    char url[4096];
    struct tu_response ra, rb;
    snprintf(url, sizeof url, "%s/fcgi-bin/iipsrv.fcgi?%s", server.base, a);
    assert_int_equal(tu_request("GET", url, NULL, &ra), 0);
    snprintf(url, sizeof url, "%s/fcgi-bin/iipsrv.fcgi?%s", server.base, b);
    assert_int_equal(tu_request("GET", url, NULL, &rb), 0);
    assert_int_equal(ra.status, 200);
    bool same = ra.status == rb.status && ra.body.len == rb.body.len &&
                !memcmp(ra.body.data, rb.body.data, ra.body.len);
    tu_response_free(&ra);
    tu_response_free(&rb);
    return same;
}

static void test_icc_is_ignored_and_til_atl_are_refused(void **state)
{
    (void)state;
    assert_true(
        same_body("FIF=grad.tif&WID=100&CVT=png", "FIF=grad.tif&ICC=12,abc&WID=100&CVT=png"));
    assert_true(same_body("FIF=grad.tif&OBJ=IIP,1.0&OBJ=Max-size",
                          "FIF=grad.tif&ICC=1&OBJ=IIP,1.0&OBJ=Max-size"));
    /* Answers are keyed by the whole command: asked after a SPECTRA, a PFL is still a PFL. */
    assert_false(same_body("FIF=grad.tif&SPECTRA=1,0,1,1", "FIF=grad.tif&PFL=1:1,1"));
    assert_false(same_body("FIF=grad.tif&PFL=1:1,1", "FIF=grad.tif&PFL=1:2,1"));
    check("FIF=grad.tif&TIL=1,0-1", 501, NULL, NULL, "TIL");
    check("FIF=grad.tif&ATL=1,0", 501, NULL, NULL, "AVIF");
}

int main(void)
{
    tu_http_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spectra_of_a_single_image),
        cmocka_unit_test(test_spectra_lists_every_view_of_a_sequence),
        cmocka_unit_test(test_pfl_profiles_lines_and_points),
        cmocka_unit_test(test_pfl_names_each_view_of_a_sequence),
        cmocka_unit_test(test_icc_is_ignored_and_til_atl_are_refused),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
