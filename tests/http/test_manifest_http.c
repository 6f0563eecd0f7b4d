/* Manifests and collections over HTTP, as a viewer and a curator meet them: the type follows
 * Accept (Presentation 3.0 section 6.3) with Vary; gzip when asked, decoding to the same JSON
 * under its own ETag; a painting body whose URL serves the size it declares under the server's
 * limits; one canvas per page of a multi-page TIFF, each of that page's size; the TIFF's own
 * tags, a sidecar per image and per folder, and COPYRIGHT in the manifest; an edited sidecar
 * changes the answer at once; a broken one is ignored, not a 500. */
#include "harness.h"
#include "testutil.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
#include <unistd.h>
#include <zlib.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

static struct tu_server server;
static char root[1024];

#define LD_TYPE "application/ld+json;profile=\"http://iiif.io/api/presentation/3/context.json\""

/* Page sizes of book.tif; a reduced copy of page 1 sits between pages 1 and 2. */
static const uint32_t page_w[3] = {300, 120, 64};
static const uint32_t page_h[3] = {200, 160, 48};

static void put_dir(TIFF *t, uint32_t w, uint32_t h, uint8_t value, bool reduced)
{
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, w);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, h);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, h);
    if (reduced)
        TIFFSetField(t, TIFFTAG_SUBFILETYPE, FILETYPE_REDUCEDIMAGE);
    uint8_t *row = malloc(w);
    assert_non_null(row);
    memset(row, value, w);
    for (uint32_t y = 0; y < h; y++)
        assert_true(TIFFWriteScanline(t, row, y, 0) == 1);
    free(row);
    assert_true(TIFFWriteDirectory(t));
}

/* book.tif: three pages of different sizes, with a reduced-resolution copy of page 1 between
 * pages 1 and 2 (it is a level of page 1, not a page), and text tags on page 1. */
static int write_book(const char *path)
{
    TIFF *t = TIFFOpen(path, "w");
    if (!t)
        return -1;
    TIFFSetField(t, TIFFTAG_DOCUMENTNAME, "Ship's log");
    TIFFSetField(t, TIFFTAG_IMAGEDESCRIPTION, "Log of the Endeavour, first volume.");
    TIFFSetField(t, TIFFTAG_ARTIST, "James Cook");
    TIFFSetField(t, TIFFTAG_COPYRIGHT, "http://rightsstatements.org/vocab/NoC-US/1.0/");
    TIFFSetField(t, TIFFTAG_DATETIME, "1768:08:26 12:00:00");
    put_dir(t, page_w[0], page_h[0], 40, false);
    put_dir(t, page_w[0] / 2, page_h[0] / 2, 40, true);
    put_dir(t, page_w[1], page_h[1], 120, false);
    put_dir(t, page_w[2], page_h[2], 200, false);
    TIFFClose(t);
    return 0;
}

/* levels.tif: a pyramid whose smaller copies some writers leave unflagged: one image. */
static int write_unflagged_pyramid(const char *path)
{
    TIFF *t = TIFFOpen(path, "w");
    if (!t)
        return -1;
    put_dir(t, 400, 300, 90, false);
    put_dir(t, 200, 150, 90, false);
    put_dir(t, 100, 75, 90, false);
    TIFFClose(t);
    return 0;
}

/* long.tif: 1001 tiny pages, one more than a manifest lists. */
static int write_long(const char *path)
{
    TIFF *t = TIFFOpen(path, "w");
    if (!t)
        return -1;
    for (int i = 0; i < 1001; i++)
        put_dir(t, 4, 3, (uint8_t)i, false);
    TIFFClose(t);
    return 0;
}

/* big.tif: 2000 x 1500, over the server's maxArea of 750000 (so `max` is 1000 x 750). */
static int write_big(const char *path)
{
    TIFF *t = TIFFOpen(path, "w");
    if (!t)
        return -1;
    put_dir(t, 2000, 1500, 90, false);
    TIFFClose(t);
    return 0;
}

static int write_text(const char *rel, const char *text)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    return tu_write_text(path, text);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "%s/root", TESSERA_TEST_WORK);
    char cmd[1200], path[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/maps", root);
    if (tu_mkdirs(path) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/book.tif", root);
    if (write_book(path) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/levels.tif", root);
    if (write_unflagged_pyramid(path) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/long.tif", root);
    if (write_long(path) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/maps/big.tif", root);
    if (write_big(path) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/maps/plain.tif", root);
    if (write_big(path) != 0)
        return -1;
    int rc = write_text("maps/big.tif.json",
                        "{\"label\": {\"en\": [\"Chart of the Pacific\"]},"
                        " \"summary\": \"Drawn on vellum.\","
                        " \"metadata\": [{\"label\": {\"en\": [\"Maker\"]},"
                        "                 \"value\": {\"none\": [\"Diogo Homem\"]}}],"
                        " \"navDate\": \"1560-01-01T00:00:00Z\","
                        " \"rights\": \"https://creativecommons.org/publicdomain/mark/1.0/\"}");
    rc = rc ? rc
            : write_text("maps/_folder.json",
                         "{\"label\": \"Sea charts\", \"summary\": \"Charts of three oceans.\","
                         " \"requiredStatement\": {\"label\": {\"en\": [\"Attribution\"]},"
                         " \"value\": {\"en\": [\"Example Library\"]}}}");
    if (rc)
        return -1;
    /* A sidecar that is a link to a file outside the root must not be read. */
    char outside[1200], link[1200];
    snprintf(outside, sizeof outside, "%s/outside.json", TESSERA_TEST_WORK);
    FILE *f = fopen(outside, "w");
    if (!f || fputs("{\"label\": \"Secret from outside\"}", f) < 0 || fclose(f) != 0)
        return -1;
    snprintf(link, sizeof link, "%s/levels.tif.json", root);
    if (symlink(outside, link) != 0)
        return -1;
    const char *const extra[] = {"--max-area", "750000", NULL};
    setenv("COPYRIGHT", "Served by the test library", 1);
    rc = tu_server_start(&server, TESSERA_BIN, root, extra);
    unsetenv("COPYRIGHT");
    return rc;
}

static int group_teardown(void **state)
{
    (void)state;
    return tu_server_stop(&server) == 0 ? 0 : -1;
}

static void request(const char *method, const char *path, const char *const *headers,
                    struct tu_response *r)
{
    char url[2048];
    snprintf(url, sizeof url, "%s%s", server.base, path);
    if (tu_request(method, url, headers, r) != 0)
        fail_msg("%s %s: no response (curl code %d)", method, path, r->curl_code);
}

static json_t *parse_body(const struct tu_response *r)
{
    json_error_t e;
    json_t *doc = json_loadb((const char *)r->body.data, r->body.len, 0, &e);
    if (!doc)
        fail_msg("not JSON (%s): %.200s", e.text, r->body.data ? (const char *)r->body.data : "");
    return doc;
}

/* A value in a document by a path of keys and indices ("items.0.width"). */
static json_t *at(json_t *doc, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = doc;
    for (char *save = NULL, *tok = strtok_r(buf, ".", &save); tok && cur;
         tok = strtok_r(NULL, ".", &save))
        cur =
            json_is_array(cur) ? json_array_get(cur, (size_t)atoi(tok)) : json_object_get(cur, tok);
    return cur;
}

static const char *str(json_t *doc, const char *path)
{
    json_t *v = at(doc, path);
    if (!json_is_string(v))
        fail_msg("no string at %s", path);
    return json_string_value(v);
}

static json_int_t num(json_t *doc, const char *path)
{
    json_t *v = at(doc, path);
    if (!json_is_integer(v))
        fail_msg("no integer at %s", path);
    return json_integer_value(v);
}

/* The value of the metadata entry whose first label text is label, or NULL. */
static const char *metadata_value(json_t *doc, const char *label)
{
    json_t *md = json_object_get(doc, "metadata");
    for (size_t i = 0; i < json_array_size(md); i++) {
        json_t *e = json_array_get(md, i);
        const char *k;
        json_t *list;
        json_object_foreach(json_object_get(e, "label"), k, list)
        {
            (void)k;
            if (!strcmp(json_string_value(json_array_get(list, 0)), label)) {
                json_t *vals = json_object_get(e, "value");
                const char *vk;
                json_t *vl;
                json_object_foreach(vals, vk, vl)
                {
                    (void)vk;
                    return json_string_value(json_array_get(vl, 0));
                }
            }
        }
    }
    return NULL;
}

static json_t *get_json(const char *path, struct tu_response *r)
{
    request("GET", path, NULL, r);
    if (r->status != 200)
        fail_msg("GET %s: %ld %s", path, r->status, r->body.data ? (char *)r->body.data : "");
    return parse_body(r);
}

static void assert_vary(const struct tu_response *r, const char *field)
{
    char vary[256];
    assert_true(tu_header(r, "Vary", 0, vary, sizeof vary));
    if (!strstr(vary, field))
        fail_msg("Vary '%s' does not name %s", vary, field);
}

static void test_manifest_and_collection_types_follow_accept(void **state)
{
    (void)state;
    static const struct {
        const char *accept; /* NULL = no Accept header */
        const char *type;
    } cases[] = {
        {NULL, LD_TYPE},
        {"application/json", "application/json"},
        {"application/ld+json", LD_TYPE},
        {"application/ld+json;profile=\"http://iiif.io/api/presentation/3/context.json\"", LD_TYPE},
        {"application/ld+json;q=0.5, application/json", "application/json"},
        {"application/json;q=0.4, application/ld+json;q=0.9", LD_TYPE},
        {"text/html,application/xhtml+xml,*/*;q=0.8", LD_TYPE},
    };
    const char *paths[] = {"/manifest/book.tif", "/collection/maps", "/collection"};
    for (size_t p = 0; p < 3; p++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char header[256];
            snprintf(header, sizeof header, "Accept: %s", cases[i].accept);
            const char *const headers[] = {header, NULL};
            struct tu_response r;
            request("GET", paths[p], cases[i].accept ? headers : NULL, &r);
            assert_int_equal(r.status, 200);
            char type[256];
            assert_true(tu_header(&r, "Content-Type", 0, type, sizeof type));
            if (strcmp(type, cases[i].type))
                fail_msg("%s with Accept %s: %s, wanted %s", paths[p],
                         cases[i].accept ? cases[i].accept : "(none)", type, cases[i].type);
            assert_vary(&r, "Accept");
            json_decref(parse_body(&r));
            tu_response_free(&r);
        }
    /* The two types are two answers: a cache must not hand one for the other. */
    struct tu_response a, b;
    const char *const json_only[] = {"Accept: application/json", NULL};
    request("GET", "/manifest/book.tif", json_only, &a);
    request("GET", "/manifest/book.tif", NULL, &b);
    char ea[64], eb[64];
    assert_true(tu_header(&a, "ETag", 0, ea, sizeof ea));
    assert_true(tu_header(&b, "ETag", 0, eb, sizeof eb));
    assert_string_not_equal(ea, eb);
    tu_response_free(&a);
    tu_response_free(&b);
}

/* Inflates a gzip body (zlib's gzip wrapper: windowBits 15 + 16). */
static void gunzip(const struct tu_response *r, struct ts_buf *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = r->body.data;
    z.avail_in = (uInt)r->body.len;
    int zrc;
    do {
        assert_int_equal(ts_buf_reserve(out, 65536), 0);
        z.next_out = out->data + out->len;
        z.avail_out = 65536;
        zrc = inflate(&z, Z_NO_FLUSH);
        out->len += 65536 - z.avail_out;
    } while (zrc == Z_OK);
    inflateEnd(&z);
    assert_int_equal(zrc, Z_STREAM_END);
}

static void test_json_goes_gzipped_when_asked_and_decodes_to_the_same(void **state)
{
    (void)state;
    const char *paths[] = {"/manifest/book.tif", "/manifest/maps%2Fbig.tif", "/collection/maps"};
    for (size_t i = 0; i < 3; i++) {
        struct tu_response plain, coded, refused;
        const char *const gz[] = {"Accept-Encoding: gzip, deflate", NULL};
        const char *const no[] = {"Accept-Encoding: gzip;q=0, identity", NULL};
        request("GET", paths[i], NULL, &plain);
        request("GET", paths[i], gz, &coded);
        request("GET", paths[i], no, &refused);
        assert_int_equal(plain.status, 200);
        assert_int_equal(coded.status, 200);
        char enc[64];
        assert_false(tu_header(&plain, "Content-Encoding", 0, enc, sizeof enc));
        assert_false(tu_header(&refused, "Content-Encoding", 0, enc, sizeof enc));
        assert_true(tu_header(&coded, "Content-Encoding", 0, enc, sizeof enc));
        assert_string_equal(enc, "gzip");
        assert_vary(&plain, "Accept-Encoding");
        assert_vary(&coded, "Accept-Encoding");
        struct ts_buf unzipped = {0};
        gunzip(&coded, &unzipped);
        assert_int_equal(unzipped.len, plain.body.len);
        assert_memory_equal(unzipped.data, plain.body.data, plain.body.len);
        /* It is worth it: a manifest shrinks several times over. */
        assert_true(coded.body.len * 2 < plain.body.len);
        ts_buf_free(&unzipped);
        tu_response_free(&plain);
        tu_response_free(&coded);
        tu_response_free(&refused);
    }

    /* The coded answer has its own validator, and revalidates against it; HEAD says the same
     * length as GET. */
    struct tu_response plain, coded, again, head;
    const char *const gz[] = {"Accept-Encoding: gzip", NULL};
    request("GET", "/manifest/book.tif", NULL, &plain);
    request("GET", "/manifest/book.tif", gz, &coded);
    char ep[64], ec[64], cond[128], len_get[32], len_head[32];
    assert_true(tu_header(&plain, "ETag", 0, ep, sizeof ep));
    assert_true(tu_header(&coded, "ETag", 0, ec, sizeof ec));
    assert_string_not_equal(ep, ec);
    snprintf(cond, sizeof cond, "If-None-Match: %s", ec);
    const char *const revalidate[] = {"Accept-Encoding: gzip", cond, NULL};
    request("GET", "/manifest/book.tif", revalidate, &again);
    assert_int_equal(again.status, 304);
    request("HEAD", "/manifest/book.tif", gz, &head);
    assert_int_equal(head.status, 200);
    assert_true(tu_header(&coded, "Content-Length", 0, len_get, sizeof len_get));
    assert_true(tu_header(&head, "Content-Length", 0, len_head, sizeof len_head));
    assert_string_equal(len_get, len_head);
    tu_response_free(&plain);
    tu_response_free(&coded);
    tu_response_free(&again);
    tu_response_free(&head);
}

/* GETs an image by its absolute URL (an id from the manifest) and decodes it. */
static void fetch_image(const char *url, struct ts_image *img)
{
    struct tu_response r;
    if (tu_request("GET", url, NULL, &r) != 0 || r.status != 200)
        fail_msg("GET %s: %ld", url, r.status);
    assert_int_equal(tu_decode_body(&r, img), 0);
    tu_response_free(&r);
}

static void test_painting_body_declares_what_its_url_serves(void **state)
{
    (void)state;
    struct tu_response r;
    json_t *m = get_json("/manifest/maps%2Fplain.tif", &r);
    /* The canvas is the image's full coordinate space... */
    assert_int_equal(num(m, "items.0.width"), 2000);
    assert_int_equal(num(m, "items.0.height"), 1500);
    /* ...the body is what maxArea 750000 lets the server send, and is sent so. */
    json_int_t bw = num(m, "items.0.items.0.items.0.body.width");
    json_int_t bh = num(m, "items.0.items.0.items.0.body.height");
    assert_true(bw * bh <= 750000);
    struct ts_image img = {0};
    fetch_image(str(m, "items.0.items.0.items.0.body.id"), &img);
    assert_int_equal(img.width, bw);
    assert_int_equal(img.height, bh);
    ts_image_free(&img);
    /* The service the body names serves the full size through info.json. */
    char info_url[2048];
    snprintf(info_url, sizeof info_url, "%s/info.json",
             str(m, "items.0.items.0.items.0.body.service.0.id"));
    struct tu_response ir;
    assert_int_equal(tu_request("GET", info_url, NULL, &ir), 0);
    json_t *info = parse_body(&ir);
    assert_int_equal(num(info, "width"), 2000);
    json_decref(info);
    tu_response_free(&ir);
    json_decref(m);
    tu_response_free(&r);
}

static void test_a_multi_page_tiff_gets_one_canvas_per_page(void **state)
{
    (void)state;
    struct tu_response r;
    json_t *m = get_json("/manifest/book.tif", &r);
    json_t *items = json_object_get(m, "items");
    assert_int_equal(json_array_size(items), 3); /* the reduced copy is not a page */
    for (size_t i = 0; i < 3; i++) {
        char path[64];
        snprintf(path, sizeof path, "items.%zu.width", i);
        assert_int_equal(num(m, path), page_w[i]);
        snprintf(path, sizeof path, "items.%zu.height", i);
        assert_int_equal(num(m, path), page_h[i]);
        /* Each page's body serves that page: its size, and the page's own grey. */
        snprintf(path, sizeof path, "items.%zu.items.0.items.0.body.id", i);
        struct ts_image img = {0};
        fetch_image(str(m, path), &img);
        assert_int_equal(img.width, page_w[i]);
        assert_int_equal(img.height, page_h[i]);
        const uint8_t grey[3] = {(uint8_t)(i == 0   ? 40
                                           : i == 1 ? 120
                                                    : 200),
                                 (uint8_t)(i == 0   ? 40
                                           : i == 1 ? 120
                                                    : 200),
                                 (uint8_t)(i == 0   ? 40
                                           : i == 1 ? 120
                                                    : 200)};
        assert_true(tu_pixel_diff(&img, img.width / 2, img.height / 2, grey) <= 2);
        ts_image_free(&img);
    }
    assert_string_equal(metadata_value(m, "Pages"), "3");
    json_decref(m);
    tu_response_free(&r);

    /* The unflagged smaller copies of a pyramid are its levels, not pages. Its sidecar is a
     * link out of the root: not read. */
    m = get_json("/manifest/levels.tif", &r);
    assert_string_equal(str(m, "label.none.0"), "levels.tif");
    assert_int_equal(json_array_size(json_object_get(m, "items")), 1);
    assert_int_equal(num(m, "items.0.width"), 400);
    assert_null(metadata_value(m, "Pages"));
    json_decref(m);
    tu_response_free(&r);

    /* A page's own identifier is a single canvas of that page. */
    m = get_json("/manifest/book.tif%3B2", &r);
    assert_int_equal(json_array_size(json_object_get(m, "items")), 1);
    assert_int_equal(num(m, "items.0.width"), page_w[1]);
    json_decref(m);
    tu_response_free(&r);
}

/* A file with more pages than a manifest lists says so rather than stopping silently. */
static void test_a_longer_file_says_how_many_pages_it_has(void **state)
{
    (void)state;
    struct tu_response r;
    json_t *m = get_json("/manifest/long.tif", &r);
    assert_int_equal(json_array_size(json_object_get(m, "items")), 1000);
    assert_string_equal(metadata_value(m, "Pages"), "1001 (the first 1000 are shown)");
    assert_string_equal(str(m, "items.999.items.0.items.0.body.service.0.id") + strlen(server.base),
                        "/iiif/3/long.tif%3B1000");
    json_decref(m);
    tu_response_free(&r);
}

static void test_tiff_tags_describe_the_manifest(void **state)
{
    (void)state;
    struct tu_response r;
    json_t *m = get_json("/manifest/book.tif", &r);
    assert_string_equal(str(m, "label.none.0"), "Ship's log");
    assert_string_equal(str(m, "summary.none.0"), "Log of the Endeavour, first volume.");
    assert_string_equal(metadata_value(m, "Creator"), "James Cook");
    assert_string_equal(metadata_value(m, "Date"), "1768-08-26 12:00:00");
    /* The Copyright tag holds a rights URI; COPYRIGHT, the server's text, is the statement. */
    assert_string_equal(str(m, "rights"), "http://rightsstatements.org/vocab/NoC-US/1.0/");
    assert_string_equal(str(m, "requiredStatement.value.none.0"), "Served by the test library");
    json_decref(m);
    tu_response_free(&r);
}

static void test_sidecars_describe_manifests_and_collections(void **state)
{
    (void)state;
    struct tu_response r;
    json_t *m = get_json("/manifest/maps%2Fbig.tif", &r);
    assert_string_equal(str(m, "label.en.0"), "Chart of the Pacific");
    assert_string_equal(str(m, "summary.none.0"), "Drawn on vellum.");
    assert_string_equal(metadata_value(m, "Maker"), "Diogo Homem");
    assert_string_equal(str(m, "navDate"), "1560-01-01T00:00:00Z");
    assert_string_equal(str(m, "rights"), "http://creativecommons.org/publicdomain/mark/1.0/");
    /* The folder's statement comes before the server's; its label is the folder's own. */
    assert_string_equal(str(m, "requiredStatement.value.en.0"), "Example Library");
    json_decref(m);
    tu_response_free(&r);

    m = get_json("/manifest/maps%2Fplain.tif", &r);
    assert_string_equal(str(m, "label.none.0"), "plain.tif");
    assert_string_equal(str(m, "requiredStatement.value.en.0"), "Example Library");
    json_decref(m);
    tu_response_free(&r);

    m = get_json("/collection/maps", &r);
    assert_string_equal(str(m, "label.none.0"), "Sea charts");
    assert_string_equal(str(m, "summary.none.0"), "Charts of three oceans.");
    json_decref(m);
    tu_response_free(&r);

    m = get_json("/collection", &r);
    assert_string_equal(str(m, "label.none.0"), "Images");
    assert_string_equal(str(m, "requiredStatement.value.none.0"), "Served by the test library");
    json_decref(m);
    tu_response_free(&r);
}

static void test_an_edited_sidecar_shows_at_once_and_a_broken_one_is_ignored(void **state)
{
    (void)state;
    struct tu_response first, second, broken;
    json_t *m = get_json("/manifest/maps%2Fplain.tif", &first);
    char etag1[64], etag2[64];
    assert_true(tu_header(&first, "ETag", 0, etag1, sizeof etag1));
    json_decref(m);

    assert_int_equal(write_text("maps/plain.tif.json", "{\"label\": \"Renamed\"}"), 0);
    m = get_json("/manifest/maps%2Fplain.tif", &second);
    assert_string_equal(str(m, "label.none.0"), "Renamed");
    assert_true(tu_header(&second, "ETag", 0, etag2, sizeof etag2));
    assert_string_not_equal(etag1, etag2);
    json_decref(m);
    /* The old validator no longer matches. */
    char cond[128];
    snprintf(cond, sizeof cond, "If-None-Match: %s", etag1);
    const char *const h[] = {cond, NULL};
    struct tu_response re;
    request("GET", "/manifest/maps%2Fplain.tif", h, &re);
    assert_int_equal(re.status, 200);
    tu_response_free(&re);

    assert_int_equal(write_text("maps/plain.tif.json", "{\"label\": [oops"), 0);
    m = get_json("/manifest/maps%2Fplain.tif", &broken);
    assert_string_equal(str(m, "label.none.0"), "plain.tif");
    json_decref(m);
    tu_response_free(&broken);
    assert_int_equal(write_text("maps/_folder.json", "not json at all"), 0);
    m = get_json("/collection/maps", &broken);
    assert_string_equal(str(m, "label.none.0"), "maps");
    json_decref(m);
    tu_response_free(&first);
    tu_response_free(&second);
    tu_response_free(&broken);
    /* Put the folder's sidecar back for any test after this one. */
    assert_int_equal(write_text("maps/_folder.json", "{\"label\": \"Sea charts\"}"), 0);
    assert_int_equal(write_text("maps/plain.tif.json", "{}"), 0);
}

int main(void)
{
    tu_http_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifest_and_collection_types_follow_accept),
        cmocka_unit_test(test_json_goes_gzipped_when_asked_and_decodes_to_the_same),
        cmocka_unit_test(test_painting_body_declares_what_its_url_serves),
        cmocka_unit_test(test_a_multi_page_tiff_gets_one_canvas_per_page),
        cmocka_unit_test(test_a_longer_file_says_how_many_pages_it_has),
        cmocka_unit_test(test_tiff_tags_describe_the_manifest),
        cmocka_unit_test(test_sidecars_describe_manifests_and_collections),
        cmocka_unit_test(test_an_edited_sidecar_shows_at_once_and_a_broken_one_is_ignored),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
