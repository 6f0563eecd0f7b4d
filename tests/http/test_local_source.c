/* A --source rule naming another folder: identifiers PREFIX/... are files below that folder,
 * confined there as the root's are, served with the same pixels, and named by access rules as
 * PREFIX/... like any identifier. */
#include "harness.h"
#include "image/image.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#define WORK TESSERA_TEST_WORK
#define ARCHIVE WORK "/archive"

static struct tu_server server;

static int group_setup(void **state)
{
    (void)state;
    /* The archive holds the same generated images as the root, and a folder a rule closes. */
    if (system("rm -rf '" ARCHIVE "'") != 0 || tu_mkdirs(ARCHIVE "/locked") != 0 ||
        tu_make_http_root(ARCHIVE) != 0 || tu_make_http_root(ARCHIVE "/locked") != 0)
        return -1;
    FILE *f = fopen(WORK "/access.ini", "w");
    if (!f)
        return -1;
    fputs("[auth]\nsecret = 0123456789abcdef0123456789abcdef\n"
          "[access closed]\nmatch = arch/locked/\nprofile = clickthrough\n",
          f);
    fclose(f);
    static const char *const extra[] = {"--source", "arch=" ARCHIVE "/", "--config",
                                        WORK "/access.ini", NULL};
    char root[1024];
    if (tu_start_on_grid_root(&server, TESSERA_BIN, WORK, extra, root, sizeof root))
        return -1;
    /* A link in the archive to a file of the root leads out of the archive. */
    char target[1200];
    snprintf(target, sizeof target, "%s/grid.tif", root);
    unlink(ARCHIVE "/out.tif");
    return symlink(target, ARCHIVE "/out.tif");
}

static int group_teardown(void **state)
{
    (void)state;
    return tu_server_stop(&server) == 0 ? 0 : -1;
}

static void get(const char *path, long status, struct tu_response *r)
{
    if (tu_get(&server, path, r) != 0)
        fail_msg("GET %s: no response (curl code %d)", path, r->curl_code);
    if (r->status != status)
        fail_msg("GET %s: expected %ld, got %ld: %.200s", path, status, r->status,
                 r->body.data ? (const char *)r->body.data : "");
}

static void decode(const struct tu_response *r, struct ts_image *img)
{
    assert_int_equal(tu_decode_body(r, img), 0);
}

static void test_folder_source_serves_the_same_pixels_as_the_root(void **state)
{
    (void)state;
    static const char *const reqs[] = {"/0,0,512,512/256,/0/default.png",
                                       "/full/200,/0/default.png",
                                       "/100,300,300,200/max/0/gray.png"};
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        char a[256], b[256];
        snprintf(a, sizeof a, "/iiif/3/arch%%2Fgrid.tif%s", reqs[i]);
        snprintf(b, sizeof b, "/iiif/3/grid.tif%s", reqs[i]);
        struct tu_response ra = {0}, rb = {0};
        get(a, 200, &ra);
        get(b, 200, &rb);
        struct ts_image ia = {0}, ib = {0};
        char why[128];
        decode(&ra, &ia);
        decode(&rb, &ib);
        if (!tu_same_image(&ia, &ib, why, sizeof why))
            fail_msg("%s: %s", reqs[i], why);
        ts_image_free(&ia);
        ts_image_free(&ib);
        tu_response_free(&ra);
        tu_response_free(&rb);
    }
    /* A sub-folder of the source, a file without its extension, and IIP through the rule. */
    struct tu_response r = {0};
    get("/iiif/3/arch%2Fsub%2Fdir%2Fgrid2/info.json", 200, &r);
    tu_response_free(&r);
    get("/fcgi-bin/iipsrv.fcgi?FIF=arch/grid.tif&obj=Max-size", 200, &r);
    assert_non_null(strstr((const char *)r.body.data, "Max-size:"));
    tu_response_free(&r);
}

static void test_folder_source_is_confined(void **state)
{
    (void)state;
    struct tu_response r = {0};
    get("/iiif/3/arch%2Fnothing.tif/info.json", 404, &r);
    tu_response_free(&r);
    get("/iiif/3/arch%2F..%2Fstatic%2Fgrid.tif/info.json", 403, &r);
    tu_response_free(&r);
    get("/iiif/3/arch%2Fout.tif/info.json", 403, &r);
    tu_response_free(&r);
}

static void test_access_rules_name_folder_files_by_their_prefix(void **state)
{
    (void)state;
    struct tu_response r = {0};
    get("/iiif/3/arch%2Flocked%2Fgrid.tif/0,0,256,256/256,/0/default.jpg", 401, &r);
    tu_response_free(&r);
    get("/iiif/3/arch%2Fgrid.tif/0,0,256,256/256,/0/default.jpg", 200, &r);
    tu_response_free(&r);
}

int main(void)
{
    tu_http_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_folder_source_serves_the_same_pixels_as_the_root),
        cmocka_unit_test(test_folder_source_is_confined),
        cmocka_unit_test(test_access_rules_name_folder_files_by_their_prefix),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
