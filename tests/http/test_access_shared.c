/* Restricted images and the caches and marks beyond one server: a fleet sharing memcached never
 * hands one server's authorised answer to another server's unauthorised client, and a rule's
 * degraded watermark marks only what everyone else sees. */
#include "grid.h"
#include "harness.h"
#include "memcached.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#define RULES                                                                                      \
    "[auth]\nsecret = 0123456789abcdef0123456789abcdef-shared\n"                                   \
    "[access terms]\nmatch = terms/\nprofile = clickthrough\ndegraded-size = 250\n"                \
    "[access marked]\nmatch = marked/\nprofile = clickthrough\ndegraded-watermark = true\n"

static char root[1024], ini[1100], mark[1100];
static struct tu_memcached mem; /* stopped by the teardown, whatever failed */
static struct tu_server fleet[2];
static int nfleet;

static int group_setup(void **state)
{
    (void)state;
    tu_http_init();
    char path[1200], grid[1200];
    snprintf(root, sizeof root, "%s/root", TESSERA_TEST_WORK);
    if (tu_mkdirs(root) != 0 || tu_make_http_root(root) != 0)
        return -1;
    snprintf(grid, sizeof grid, "%s/grid.png", root);
    static const char *const dirs[] = {"terms", "marked"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", root, dirs[i]);
        if (tu_mkdirs(path) != 0)
            return -1;
        snprintf(path, sizeof path, "%s/%s/grid.png", root, dirs[i]);
        if (tu_copy_file(grid, path) != 0)
            return -1;
    }
    snprintf(ini, sizeof ini, "%s/rules.ini", TESSERA_TEST_WORK);
    /* An opaque orange mark, smaller than a tile: wherever it lands it changes pixels. */
    struct ts_image m;
    if (ts_image_alloc(&m, 64, 48, 3) != 0)
        return -1;
    for (uint32_t y = 0; y < 48; y++)
        for (uint32_t x = 0; x < 64; x++)
            memcpy(ts_image_row(&m, y) + x * 3, (const uint8_t[3]){250, 120, 0}, 3);
    snprintf(mark, sizeof mark, "%s/mark.png", TESSERA_TEST_WORK);
    int rc = grid_write_png(mark, &m, 8);
    ts_image_free(&m);
    return rc || tu_write_text(ini, RULES);
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = 0;
    for (int i = 0; i < nfleet; i++)
        rc |= tu_server_stop(&fleet[i]);
    nfleet = 0;
    tu_memcached_stop(&mem);
    return rc;
}

static long get(const struct tu_server *s, const char *path, const char *header,
                struct tu_response *r)
{
    char url[2048];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    const char *const hs[] = {header, NULL};
    assert_int_equal(tu_request("GET", url, header ? hs : NULL, r), 0);
    return r->status;
}

static void accept_terms(const struct tu_server *s, const char *rule, char *cookie, size_t cap)
{
    char path[256], set[1024];
    snprintf(path, sizeof path, "/auth/access/%s?accept=1", rule);
    struct tu_response r;
    assert_int_equal(get(s, path, NULL, &r), 200);
    assert_true(tu_header(&r, "Set-Cookie", 0, set, sizeof set));
    set[strcspn(set, ";")] = '\0';
    snprintf(cookie, cap, "Cookie: %s", set);
    tu_response_free(&r);
}

static void decode(const struct tu_response *r, struct ts_image *img)
{
    assert_int_equal(r->status, 200);
    assert_int_equal(tu_decode_body(r, img), 0);
}

/* Server a stores the authorised answers in memcached; server b, which has no response cache
 * of its own and the same settings, reads memcached first: were the keys the same, it would
 * hand them on. */
static void test_shared_cache_keeps_tiers_apart(void **state)
{
    (void)state;
    if (!tu_memcached_binary()) {
        fprintf(stderr, "skipped: no memcached binary (install the memcached package, "
                        "scripts/deps.sh --test)\n");
        skip();
    }
    assert_int_equal(tu_memcached_start(&mem), 0);
    struct tu_server *a = &fleet[0], *b = &fleet[1];
    const char *const args[] = {"--config", ini, "--watermark", mark, "--memcached", mem.servers,
                                "--response-cache", "0",
                                /* one public base: the servers' keys name it */
                                "--base-url", "http://images.example", NULL};
    assert_int_equal(tu_server_start(a, TESSERA_BIN, root, args), 0);
    nfleet = 1;
    assert_int_equal(tu_server_start(b, TESSERA_BIN, root, args), 0);
    nfleet = 2;
    char cookie[1100];
    accept_terms(a, "terms", cookie, sizeof cookie);
    const char *img = "/iiif/3/terms%2Fgrid.png/full/max/0/default.png";
    struct tu_response r;
    struct ts_image full, seen;
    get(a, img, cookie, &r);
    decode(&r, &full);
    tu_response_free(&r);
    assert_int_equal(full.width, 1000);
    long sets = tu_memcached_stat(&mem, "cmd_set");
    assert_true(sets >= 1);
    /* b, unauthorised: the degraded image, never the stored full one. */
    get(b, img, NULL, &r);
    decode(&r, &seen);
    tu_response_free(&r);
    assert_int_equal(seen.width, 250);
    ts_image_free(&seen);
    /* b, with the cookie: the full answer a stored (a memcached hit, the same pixels). */
    long hits = tu_memcached_stat(&mem, "get_hits");
    get(b, img, cookie, &r);
    decode(&r, &seen);
    tu_response_free(&r);
    assert_int_equal(seen.width, 1000);
    assert_true(tu_memcached_stat(&mem, "get_hits") > hits);
    assert_memory_equal(seen.data, full.data, (size_t)full.stride * full.height);
    ts_image_free(&seen);
    ts_image_free(&full);
    nfleet = 0;
    assert_int_equal(tu_server_stop(a), 0);
    assert_int_equal(tu_server_stop(b), 0);
    tu_memcached_stop(&mem);
}

static size_t differing_pixels(const struct ts_image *x, const struct ts_image *y)
{
    assert_int_equal(x->width, y->width);
    assert_int_equal(x->height, y->height);
    assert_int_equal(x->channels, y->channels);
    size_t n = 0;
    for (uint32_t r = 0; r < x->height; r++)
        for (uint32_t c = 0; c < x->width * x->channels; c++)
            n += ts_image_row(x, r)[c] != ts_image_row(y, r)[c];
    return n;
}

static void test_degraded_watermark_marks_only_the_degraded_tier(void **state)
{
    (void)state;
    struct tu_server s;
    const char *const args[] = {"--config", ini, "--watermark", mark, NULL};
    assert_int_equal(tu_server_start(&s, TESSERA_BIN, root, args), 0);
    const char *tile = "/0,0,256,256/256,/0/default.png";
    char path[256], cookie[1100];
    struct tu_response r;
    struct ts_image open_img, marked, granted;
    snprintf(path, sizeof path, "/iiif/3/grid.png%s", tile);
    get(&s, path, NULL, &r);
    decode(&r, &open_img);
    tu_response_free(&r);
    snprintf(path, sizeof path, "/iiif/3/marked%%2Fgrid.png%s", tile);
    get(&s, path, NULL, &r);
    decode(&r, &marked);
    tu_response_free(&r);
    accept_terms(&s, "marked", cookie, sizeof cookie);
    get(&s, path, cookie, &r);
    decode(&r, &granted);
    tu_response_free(&r);
    /* The mark (64 x 48, opaque) covers part of the degraded tile; the granted tile and the
     * open image (outside every rule) are the file's own pixels. */
    size_t changed = differing_pixels(&marked, &open_img);
    assert_true(changed >= 64 * 48 / 2);
    assert_true(changed < 256 * 256 * 3);
    assert_int_equal(differing_pixels(&granted, &open_img), 0);
    /* The open image really is unmarked: it equals the file's grid. */
    uint8_t rgb[3];
    grid_cell_color(1, 1, rgb);
    assert_true(tu_pixel_diff(&open_img, 150, 150, rgb) <= 1);
    ts_image_free(&open_img);
    ts_image_free(&marked);
    ts_image_free(&granted);
    assert_int_equal(tu_server_stop(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_cache_keeps_tiers_apart),
        cmocka_unit_test(test_degraded_watermark_marks_only_the_degraded_tier),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
