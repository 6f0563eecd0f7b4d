/* The web front: manifest and collection JSON, folder listings, confinement, routes. */
/* cmocka needs these before it, in this order. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
// clang-format on

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "core/serve.h"
#include "testutil.h"
#include "util/url.h"
#include "web/describe.h"
#include "web/web.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define WORK TESSERA_TEST_WORK
#define ROOT WORK "/root"
#define WEBDIR WORK "/webdir"

static void touch(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A root with folders, images, a non-image, hidden entries and a symlink out of the root; a web
 * dir with a page, an npm asset, a secret beside them and a symlink to the secret. */
static int make_tree(void **state)
{
    (void)state;
    if (system("rm -rf '" WORK "'") != 0)
        return -1;
    const char *dirs[] = {ROOT "/alpha/inner", ROOT "/zeta",    ROOT "/.dir",
                          WORK "/outside",     WEBDIR "/pages", WEBDIR "/vendor/openseadragon"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        if (tu_mkdirs(dirs[i]) != 0)
            return -1;
    touch(ROOT "/b.tif", "x");
    touch(ROOT "/a <&>.PNG", "x");
    touch(ROOT "/notes.txt", "x");
    touch(ROOT "/.hidden.tif", "x");
    touch(ROOT "/alpha/c.jpg", "x");
    touch(WORK "/outside/escape.tif", "x");
    touch(WEBDIR "/pages/style.css", "body{}");
    touch(WEBDIR "/vendor/openseadragon/osd.js", "var a;");
    touch(WEBDIR "/vendor/README.md", "not an asset");
    touch(WEBDIR "/secret.txt", "secret");
    if (symlink(WORK "/outside", ROOT "/link-out") != 0 ||
        symlink(WORK "/outside/escape.tif", ROOT "/escape.tif") != 0 ||
        symlink(WEBDIR "/secret.txt", WEBDIR "/pages/secret.txt") != 0)
        return -1;
    return 0;
}

static const struct ts_image_info *sample_info(void)
{
    static struct ts_image_info info;
    memset(&info, 0, sizeof info);
    info.width = 3000;
    info.height = 2000;
    info.channels = 3;
    info.bits_per_sample = 8;
    info.nlevels = 3;
    for (uint32_t i = 0; i < 3; i++)
        info.levels[i] = (struct ts_level){3000 >> i, 2000 >> i, 256, 256};
    info.format = "tiff";
    return &info;
}

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    if (!doc)
        fail_msg("not JSON (%s): %s", jerr.text, text);
    return doc;
}

static const char *str_at(json_t *doc, const char *path)
{
    /* path: keys and indices separated by '.', e.g. "items.0.id" */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = doc;
    for (char *save = NULL, *tok = strtok_r(buf, ".", &save); tok && cur;
         tok = strtok_r(NULL, ".", &save))
        cur =
            json_is_array(cur) ? json_array_get(cur, (size_t)atoi(tok)) : json_object_get(cur, tok);
    if (!json_is_string(cur))
        fail_msg("no string at %s", path);
    return json_string_value(cur);
}

static json_int_t int_at(json_t *doc, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = doc;
    for (char *save = NULL, *tok = strtok_r(buf, ".", &save); tok && cur;
         tok = strtok_r(NULL, ".", &save))
        cur =
            json_is_array(cur) ? json_array_get(cur, (size_t)atoi(tok)) : json_object_get(cur, tok);
    if (!json_is_integer(cur))
        fail_msg("no integer at %s", path);
    return json_integer_value(cur);
}

/* The value of the metadata entry with this English label, or NULL. */
static const char *metadata_value(json_t *doc, const char *label)
{
    json_t *md = json_object_get(doc, "metadata");
    for (size_t i = 0; i < json_array_size(md); i++) {
        json_t *e = json_array_get(md, i);
        if (!strcmp(str_at(e, "label.en.0"), label))
            return str_at(e, "value.none.0");
    }
    return NULL;
}

static void test_manifest_paints_one_canvas_with_the_image_service(void **state)
{
    (void)state;
    const struct ts_image_info *info = sample_info();
    struct web_manifest_params p = {
        .base = "http://h:8080", .identifier = "maps/a b.tif", .label = "a b.tif", .info = info};
    char *text = NULL;
    struct ts_err err = {0};
    assert_int_equal(web_manifest_json(&p, &text, &err), TS_OK);
    json_t *m = parse(text);
    free(text);
    assert_string_equal(str_at(m, "@context"), "http://iiif.io/api/presentation/3/context.json");
    assert_string_equal(str_at(m, "type"), "Manifest");
    assert_string_equal(str_at(m, "id"), "http://h:8080/manifest/maps%2Fa%20b.tif");
    assert_string_equal(str_at(m, "label.none.0"), "a b.tif");
    assert_string_equal(str_at(m, "items.0.type"), "Canvas");
    assert_int_equal(int_at(m, "items.0.width"), info->width);
    assert_int_equal(int_at(m, "items.0.height"), info->height);
    assert_string_equal(str_at(m, "items.0.items.0.type"), "AnnotationPage");
    assert_string_equal(str_at(m, "items.0.items.0.items.0.motivation"), "painting");
    assert_string_equal(str_at(m, "items.0.items.0.items.0.target"), str_at(m, "items.0.id"));
    assert_string_equal(str_at(m, "items.0.items.0.items.0.body.type"), "Image");
    assert_int_equal(int_at(m, "items.0.items.0.items.0.body.width"), info->width);
    assert_string_equal(str_at(m, "items.0.items.0.items.0.body.service.0.id"),
                        "http://h:8080/iiif/3/maps%2Fa%20b.tif");
    assert_string_equal(str_at(m, "items.0.items.0.items.0.body.service.0.type"), "ImageService3");
    assert_string_equal(str_at(m, "items.0.items.0.items.0.body.service.0.profile"), "level2");
    assert_string_equal(str_at(m, "homepage.0.id"), "http://h:8080/viewer/maps%2Fa%20b.tif");
    /* The canvas and every annotation id live under the manifest's own id. */
    assert_memory_equal(str_at(m, "items.0.id"), str_at(m, "id"), strlen(str_at(m, "id")));
    assert_string_equal(metadata_value(m, "Dimensions"), "3000 x 2000 px");
    assert_string_equal(metadata_value(m, "Levels"), "3");
    assert_string_equal(metadata_value(m, "Format"), "tiff");
    json_decref(m);
}

static void test_manifest_keeps_json_specials_in_labels(void **state)
{
    (void)state;
    const char *label = "quote\" back\\slash\nnewline <tag> é";
    struct web_manifest_params p = {
        .base = "http://h", .identifier = "x.tif", .label = label, .info = sample_info()};
    char *text = NULL;
    struct ts_err err = {0};
    assert_int_equal(web_manifest_json(&p, &text, &err), TS_OK);
    json_t *m = parse(text);
    free(text);
    assert_string_equal(str_at(m, "label.none.0"), label);
    assert_string_equal(str_at(m, "items.0.label.none.0"), label);
    json_decref(m);
}

static void test_manifest_refuses_an_image_without_dimensions(void **state)
{
    (void)state;
    struct ts_image_info empty = {0};
    struct web_manifest_params p = {
        .base = "http://h", .identifier = "x.tif", .label = "x", .info = &empty};
    char *text = NULL;
    struct ts_err err = {0};
    assert_int_equal(web_manifest_json(&p, &text, &err), TS_EINVAL);
    assert_null(text);
    assert_true(err.msg[0] != '\0');
}

/* The manifest of one image under server limits: the canvas keeps the full size, the body
 * names the size the limits allow and declares exactly that. */
static void test_manifest_body_declares_the_size_its_url_serves(void **state)
{
    (void)state;
    struct ts_image_info info = *sample_info();
    info.width = info.height = 9877;
    struct ts_limits limits = {.max_area = 25000000, .formats = ~0u};
    struct web_manifest_params p = {.base = "http://h",
                                    .identifier = "big.tif",
                                    .label = "big.tif",
                                    .info = &info,
                                    .limits = &limits};
    char *text = NULL;
    struct ts_err err = {0};
    assert_int_equal(web_manifest_json(&p, &text, &err), TS_OK);
    json_t *m = parse(text);
    free(text);
    assert_int_equal(int_at(m, "items.0.width"), 9877);
    assert_int_equal(int_at(m, "items.0.height"), 9877);
    assert_int_equal(int_at(m, "items.0.items.0.items.0.body.width"), 5000);
    assert_int_equal(int_at(m, "items.0.items.0.items.0.body.height"), 5000);
    assert_string_equal(str_at(m, "items.0.items.0.items.0.body.id"),
                        "http://h/iiif/3/big.tif/full/5000,5000/0/default.jpg");
    json_decref(m);

    /* Within the limits, full/max is the image itself. */
    info.width = info.height = 4000;
    assert_int_equal(web_manifest_json(&p, &text, &err), TS_OK);
    m = parse(text);
    free(text);
    assert_int_equal(int_at(m, "items.0.items.0.items.0.body.width"), 4000);
    assert_string_equal(str_at(m, "items.0.items.0.items.0.body.id"),
                        "http://h/iiif/3/big.tif/full/max/0/default.jpg");
    json_decref(m);
}

static void test_manifest_has_one_canvas_per_page(void **state)
{
    (void)state;
    struct ts_page pages[3] = {{0, 3000, 2000}, {1, 800, 600}, {3, 100, 50}};
    struct web_manifest_params p = {.base = "http://h",
                                    .identifier = "book.tif",
                                    .label = "book.tif",
                                    .info = sample_info(),
                                    .pages = pages,
                                    .npages = 3,
                                    .pages_total = 3};
    char *text = NULL;
    struct ts_err err = {0};
    assert_int_equal(web_manifest_json(&p, &text, &err), TS_OK);
    json_t *m = parse(text);
    free(text);
    assert_int_equal(json_array_size(json_object_get(m, "items")), 3);
    assert_int_equal(int_at(m, "items.1.width"), 800);
    assert_int_equal(int_at(m, "items.1.height"), 600);
    assert_int_equal(int_at(m, "items.2.width"), 100);
    assert_string_equal(str_at(m, "items.0.items.0.items.0.body.service.0.id"),
                        "http://h/iiif/3/book.tif");
    /* Page n is the identifier with ";n", escaped whole. */
    assert_string_equal(str_at(m, "items.1.items.0.items.0.body.service.0.id"),
                        "http://h/iiif/3/book.tif%3B2");
    /* The reader's page numbers name the pages (page 3 here was a level of page 1). */
    assert_string_equal(str_at(m, "items.2.items.0.items.0.body.service.0.id"),
                        "http://h/iiif/3/book.tif%3B4");
    assert_string_equal(str_at(m, "items.2.id"), "http://h/manifest/book.tif/canvas/p3");
    assert_string_equal(str_at(m, "items.2.label.none.0"), "p. 3");
    assert_string_equal(metadata_value(m, "Pages"), "3");
    json_decref(m);
}

/* XMP as Adobe and exiftool write it, and TIFF tags behind it. */
static const char xmp_packet[] =
    "<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF><rdf:Description rdf:about=''"
    " xmp:CreateDate='1856-01-01T00:00:00Z'>"
    "<dc:title><rdf:Alt><rdf:li xml:lang='fr'>Carte</rdf:li>"
    "<rdf:li xml:lang='x-default'>Map of &amp; &#233;le</rdf:li></rdf:Alt></dc:title>"
    "<dc:creator><rdf:Seq><rdf:li>Anne Author</rdf:li><rdf:li>Bob</rdf:li></rdf:Seq></dc:creator>"
    "<dc:rights><rdf:Alt><rdf:li xml:lang='x-default'>Example Library</rdf:li></rdf:Alt>"
    "</dc:rights><xmpRights:WebStatement>https://creativecommons.org/licenses/by/4.0/"
    "</xmpRights:WebStatement></rdf:Description></rdf:RDF></x:xmpmeta>";

static void test_xmp_values_are_read_as_curators_wrote_them(void **state)
{
    (void)state;
    struct ts_buf b = {0};
    assert_true(web_xmp_value(xmp_packet, "dc:title", &b));
    assert_string_equal(ts_buf_str(&b), "Map of & \xc3\xa9le");
    ts_buf_free(&b);
    assert_true(web_xmp_value(xmp_packet, "dc:creator", &b));
    assert_string_equal(ts_buf_str(&b), "Anne Author; Bob");
    ts_buf_free(&b);
    assert_true(web_xmp_value(xmp_packet, "xmp:CreateDate", &b));
    assert_string_equal(ts_buf_str(&b), "1856-01-01T00:00:00Z");
    ts_buf_free(&b);
    assert_false(web_xmp_value(xmp_packet, "dc:description", &b));
    assert_false(web_xmp_value(xmp_packet, "dc:tit", &b));
    ts_buf_free(&b);
}

static void test_xsd_datetimes_need_a_time_zone(void **state)
{
    (void)state;
    assert_true(web_is_xsd_datetime("2010-01-01T00:00:00Z"));
    assert_true(web_is_xsd_datetime("1856-12-31T23:59:59.5+01:00"));
    assert_false(web_is_xsd_datetime("2010-01-01T00:00:00"));
    assert_false(web_is_xsd_datetime("2010-01-01"));
    assert_false(web_is_xsd_datetime("2010-13-01T00:00:00Z"));
    assert_false(web_is_xsd_datetime("2010:01:01 00:00:00"));
}

static const char *meta_pairs(const char *const *kv, size_t n, char *out, size_t size, size_t *len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(kv[i]) + 1;
        assert_true(o + l <= size);
        memcpy(out + o, kv[i], l);
        o += l;
    }
    *len = o;
    return out;
}

static void test_manifest_takes_label_and_rights_from_the_image_tags(void **state)
{
    (void)state;
    struct ts_image_info info = *sample_info();
    const char *kv[] = {
        "title",       "TIFF title",   "creator", "TIFF artist", "date", "2021:03:04 05:06:07",
        "description", "  A chart.  ", "xmp",     xmp_packet};
    char meta[4096];
    info.meta = meta_pairs(kv, 10, meta, sizeof meta, &info.meta_len);
    struct web_manifest_params p = {.base = "http://h",
                                    .identifier = "x.tif",
                                    .label = "x.tif",
                                    .info = &info,
                                    .copyright = "Server statement"};
    char *text = NULL;
    struct ts_err err = {0};
    assert_int_equal(web_manifest_json(&p, &text, &err), TS_OK);
    json_t *m = parse(text);
    free(text);
    /* XMP first, then the TIFF tags. */
    assert_string_equal(str_at(m, "label.none.0"), "Map of & \xc3\xa9le");
    assert_string_equal(str_at(m, "summary.none.0"), "A chart.");
    assert_string_equal(metadata_value(m, "Creator"), "Anne Author; Bob");
    assert_string_equal(metadata_value(m, "Date"), "1856-01-01T00:00:00Z");
    assert_string_equal(str_at(m, "navDate"), "1856-01-01T00:00:00Z");
    /* The web statement is a licence URI (in the spec's http form); dc:rights is text. */
    assert_string_equal(str_at(m, "rights"), "http://creativecommons.org/licenses/by/4.0/");
    assert_string_equal(str_at(m, "requiredStatement.value.none.0"), "Example Library");
    json_decref(m);

    /* Without XMP: the TIFF tags, the date as people write it, COPYRIGHT as the statement. */
    info.meta = meta_pairs(kv, 8, meta, sizeof meta, &info.meta_len);
    assert_int_equal(web_manifest_json(&p, &text, &err), TS_OK);
    m = parse(text);
    free(text);
    assert_string_equal(str_at(m, "label.none.0"), "TIFF title");
    assert_string_equal(metadata_value(m, "Creator"), "TIFF artist");
    assert_string_equal(metadata_value(m, "Date"), "2021-03-04 05:06:07");
    assert_null(json_object_get(m, "navDate")); /* TIFF's DateTime has no time zone */
    assert_null(json_object_get(m, "rights"));
    assert_string_equal(str_at(m, "requiredStatement.value.none.0"), "Server statement");
    json_decref(m);

    /* Text that is not UTF-8 is left out rather than breaking the manifest. */
    const char *latin1[] = {"title", "Caf\xe9", "creator", "Ok"};
    info.meta = meta_pairs(latin1, 4, meta, sizeof meta, &info.meta_len);
    assert_int_equal(web_manifest_json(&p, &text, &err), TS_OK);
    m = parse(text);
    free(text);
    assert_string_equal(str_at(m, "label.none.0"), "x.tif");
    assert_string_equal(metadata_value(m, "Creator"), "Ok");
    json_decref(m);
}

static void test_sidecars_override_tags_and_bad_fields_are_ignored(void **state)
{
    (void)state;
    struct ts_image_info info = *sample_info();
    const char *kv[] = {"title", "TIFF title", "rights",
                        "http://rightsstatements.org/vocab/InC/1.0/"};
    char meta[512];
    info.meta = meta_pairs(kv, 4, meta, sizeof meta, &info.meta_len);
    const char own[] = "{\"label\": {\"en\": [\"Portolan chart\"], \"fr\": \"Portulan\"},"
                       " \"summary\": \"Vellum, 1560.\","
                       " \"metadata\": [{\"label\": \"Maker\", \"value\": \"Diogo Homem\"},"
                       "               {\"label\": 5}],"
                       " \"navDate\": \"1560-01-01\","
                       " \"rights\": \"All rights reserved by the library\"}";
    const char folder[] = "{\"label\": \"The folder\", \"requiredStatement\": {\"label\":"
                          " {\"en\": [\"Attribution\"]}, \"value\": \"Example Library\"},"
                          " \"metadata\": [{\"label\": {\"en\": [\"Collection\"]},"
                          " \"value\": {\"en\": [\"Maps\"]}}]}";
    struct web_manifest_params p = {.base = "http://h",
                                    .identifier = "x.tif",
                                    .label = "x.tif",
                                    .info = &info,
                                    .own = {own, sizeof own - 1, "x.tif.json"},
                                    .folder = {folder, sizeof folder - 1, "_folder.json"}};
    char *text = NULL;
    struct ts_err err = {0};
    assert_int_equal(web_manifest_json(&p, &text, &err), TS_OK);
    json_t *m = parse(text);
    free(text);
    assert_string_equal(str_at(m, "label.en.0"), "Portolan chart");
    assert_string_equal(str_at(m, "label.fr.0"), "Portulan");
    assert_string_equal(str_at(m, "summary.none.0"), "Vellum, 1560.");
    /* Plain strings are in no particular language. */
    assert_string_equal(str_at(m, "metadata.0.label.none.0"), "Maker");
    assert_string_equal(str_at(m, "metadata.0.value.none.0"), "Diogo Homem");
    assert_string_equal(str_at(m, "metadata.1.label.en.0"), "Collection"); /* the folder's */
    /* A navDate without a time zone is not one; a free-text rights is a statement, which the
     * image's sidecar gives before the folder's. The tag's URI is still the rights. */
    assert_null(json_object_get(m, "navDate"));
    assert_string_equal(str_at(m, "requiredStatement.value.none.0"),
                        "All rights reserved by the library");
    assert_string_equal(str_at(m, "rights"), "http://rightsstatements.org/vocab/InC/1.0/");
    json_decref(m);

    /* A sidecar that is not JSON is ignored whole: the manifest stands without it. */
    p.own = (struct web_sidecar){"{\"label\": ", 10, "x.tif.json"};
    p.folder = (struct web_sidecar){"[1, 2]", 6, "_folder.json"};
    assert_int_equal(web_manifest_json(&p, &text, &err), TS_OK);
    m = parse(text);
    free(text);
    assert_string_equal(str_at(m, "label.none.0"), "TIFF title");
    json_decref(m);
}

static void test_collection_takes_its_folder_sidecar(void **state)
{
    (void)state;
    struct web_listing l;
    struct ts_err err = {0};
    assert_int_equal(web_list_folder(ROOT, "alpha", &l, &err), TS_OK);
    const char side[] = "{\"label\": \"Alpha maps\", \"summary\": {\"en\": \"Sea charts\"},"
                        " \"rights\": \"http://creativecommons.org/publicdomain/mark/1.0/\"}";
    struct web_sidecar sc = {side, sizeof side - 1, "alpha/_folder.json"};
    char *text = NULL;
    assert_int_equal(
        web_collection_json("http://h", "alpha", &l, false, &sc, "Server", &text, &err), TS_OK);
    web_listing_free(&l);
    json_t *c = parse(text);
    free(text);
    assert_string_equal(str_at(c, "label.none.0"), "Alpha maps");
    assert_string_equal(str_at(c, "summary.en.0"), "Sea charts");
    assert_string_equal(str_at(c, "rights"), "http://creativecommons.org/publicdomain/mark/1.0/");
    assert_string_equal(str_at(c, "requiredStatement.value.none.0"), "Server");
    json_decref(c);
}

static void test_listing_shows_folders_first_and_only_visible_images(void **state)
{
    (void)state;
    struct web_listing l;
    struct ts_err err = {0};
    assert_int_equal(web_list_folder(ROOT, "", &l, &err), TS_OK);
    /* not: notes.txt (no image), .hidden.tif, .dir (hidden), link-out and escape.tif (outside) */
    assert_int_equal(l.count, 4);
    assert_string_equal(l.entries[0].name, "alpha");
    assert_true(l.entries[0].is_folder);
    assert_string_equal(l.entries[1].name, "zeta");
    assert_true(l.entries[1].is_folder);
    assert_string_equal(l.entries[2].name, "a <&>.PNG");
    assert_false(l.entries[2].is_folder);
    assert_string_equal(l.entries[3].path, "b.tif");
    web_listing_free(&l);
}

static void test_listing_of_a_subfolder_gives_identifiers_from_the_root(void **state)
{
    (void)state;
    struct web_listing l;
    struct ts_err err = {0};
    assert_int_equal(web_list_folder(ROOT, "alpha", &l, &err), TS_OK);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.entries[0].path, "alpha/inner");
    assert_true(l.entries[0].is_folder);
    assert_string_equal(l.entries[1].path, "alpha/c.jpg");
    web_listing_free(&l);
}

static void test_listing_refuses_to_leave_the_root(void **state)
{
    (void)state;
    const char *forbidden[] = {"..",   "alpha/..",     "alpha/../..",  "/etc",    "./alpha",
                               ".dir", "alpha//inner", "alpha\\inner", "link-out"};
    for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++) {
        struct web_listing l = {NULL, 7, true};
        struct ts_err err = {0};
        int rc = web_list_folder(ROOT, forbidden[i], &l, &err);
        if (rc != TS_EFORBIDDEN)
            fail_msg("folder '%s' gave %d, not TS_EFORBIDDEN", forbidden[i], rc);
        assert_int_equal(l.count, 0);
    }
    struct web_listing l;
    struct ts_err err = {0};
    assert_int_equal(web_list_folder(ROOT, "missing", &l, &err), TS_ENOTFOUND);
    assert_int_equal(web_list_folder(ROOT, "b.tif", &l, &err), TS_ENOTFOUND);
}

static void test_collection_links_subfolders_and_manifests(void **state)
{
    (void)state;
    struct web_listing l;
    struct ts_err err = {0};
    assert_int_equal(web_list_folder(ROOT, "", &l, &err), TS_OK);
    char *text = NULL;
    assert_int_equal(web_collection_json("http://h", "", &l, true, NULL, NULL, &text, &err), TS_OK);
    web_listing_free(&l);
    json_t *c = parse(text);
    free(text);
    assert_string_equal(str_at(c, "type"), "Collection");
    assert_string_equal(str_at(c, "id"), "http://h/collection");
    assert_null(json_object_get(c, "partOf"));
    json_t *items = json_object_get(c, "items");
    assert_int_equal(json_array_size(items), 5); /* demo + 2 folders + 2 images */
    assert_string_equal(str_at(c, "items.0.id"), "http://h/manifest/demo");
    assert_string_equal(str_at(c, "items.1.type"), "Collection");
    assert_string_equal(str_at(c, "items.1.id"), "http://h/collection/alpha");
    assert_string_equal(str_at(c, "items.3.type"), "Manifest");
    assert_string_equal(str_at(c, "items.3.id"), "http://h/manifest/a%20%3C%26%3E.PNG");
    assert_string_equal(str_at(c, "items.3.label.none.0"), "a <&>.PNG");
    assert_string_equal(str_at(c, "items.3.thumbnail.0.service.0.type"), "ImageService3");
    json_decref(c);

    assert_int_equal(web_list_folder(ROOT, "alpha/inner", &l, &err), TS_OK);
    assert_int_equal(
        web_collection_json("http://h", "alpha/inner", &l, true, NULL, NULL, &text, &err), TS_OK);
    web_listing_free(&l);
    c = parse(text);
    free(text);
    assert_string_equal(str_at(c, "id"), "http://h/collection/alpha/inner");
    assert_string_equal(str_at(c, "label.none.0"), "inner");
    assert_string_equal(str_at(c, "partOf.0.id"), "http://h/collection/alpha");
    assert_int_equal(json_array_size(json_object_get(c, "items")), 0); /* no demo below root */
    json_decref(c);
}

static void test_static_paths_stay_in_their_mounts(void **state)
{
    (void)state;
    char path[4096];
    struct ts_err err = {0};
    assert_int_equal(web_static_path(WEBDIR, "style.css", path, sizeof path, &err), TS_OK);
    assert_non_null(strstr(path, "/webdir/pages/style.css"));
    assert_int_equal(web_static_path(WEBDIR, "openseadragon/osd.js", path, sizeof path, &err),
                     TS_OK);
    assert_non_null(strstr(path, "/vendor/openseadragon/osd.js"));
    const char *forbidden[] = {"../secret.txt", "openseadragon/../../../../secret.txt",
                               ".hidden",       "/etc/passwd",
                               "a//b",          "secret.txt"};
    for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++) {
        int rc = web_static_path(WEBDIR, forbidden[i], path, sizeof path, &err);
        if (rc != TS_EFORBIDDEN)
            fail_msg("static '%s' gave %d, not TS_EFORBIDDEN", forbidden[i], rc);
    }
    /* Only the mounted folders of vendor/ are reachable, not the folder itself. */
    assert_int_equal(
        web_static_path(WEBDIR, "vendor/openseadragon/osd.js", path, sizeof path, &err),
        TS_ENOTFOUND);
    assert_int_equal(web_static_path(WEBDIR, "vendor/README.md", path, sizeof path, &err),
                     TS_ENOTFOUND);
    assert_int_equal(web_static_path(WEBDIR, "nope.css", path, sizeof path, &err), TS_ENOTFOUND);
    assert_string_equal(web_content_type("a/b/viewer.js"), "text/javascript; charset=utf-8");
    assert_string_equal(web_content_type("style.CSS"), "text/css; charset=utf-8");
    assert_string_equal(web_content_type("x.v1/noext"), "application/octet-stream");
}

static void test_url_decode_rejects_bad_escapes_and_nul(void **state)
{
    (void)state;
    char out[64];
    struct ts_err err = {0};
    assert_int_equal(url_decode("a%2Fb%20c", strlen("a%2Fb%20c"), out, sizeof out, 0, &err), TS_OK);
    assert_string_equal(out, "a/b c");
    assert_int_equal(url_decode("%zz", strlen("%zz"), out, sizeof out, 0, &err), TS_EINVAL);
    assert_int_equal(url_decode("a%2", strlen("a%2"), out, sizeof out, 0, &err), TS_EINVAL);
    assert_int_equal(url_decode("a%00b", strlen("a%00b"), out, sizeof out, 0, &err), TS_EINVAL);
    assert_int_equal(url_decode("abcdef", strlen("abcdef"), out, 4, 0, &err), TS_EINVAL);
    char enc[64];
    url_encode("a/b c~", false, enc, sizeof enc);
    assert_string_equal(enc, "a%2Fb%20c~");
    url_encode("a/b c~", true, enc, sizeof enc);
    assert_string_equal(enc, "a/b%20c~");
}

/* Requests through web_handle, as the router makes them. */
static const char *fake_header(void *ctx, const char *name)
{
    if (!strcasecmp(name, "If-None-Match"))
        return ctx;
    return !strcasecmp(name, "Host") ? "example.org:8080" : NULL;
}

/* A request through web_job and the core's pipeline, as the router sends it. */
static int serve(struct ts_app *app, const char *path, const char *etag, struct ts_response *res,
                 bool *taken)
{
    struct ts_request req = {"GET", path, NULL, fake_header, (void *)etag, "HTTP/1.1",
                             NULL,  NULL, 0};
    struct ts_job job;
    struct ts_err err = {0};
    ts_response_init(res);
    ts_job_init(&job, TS_JOB_REPLY);
    int rc = web_job(app, &req, &job, &err);
    *taken = rc != TS_DECLINED;
    if (*taken)
        core_serve(app, &req, &job, rc, &err, res);
    ts_job_free(&job);
    return res->status;
}

static int request_if(struct ts_app *app, const char *path, const char *etag,
                      struct ts_response *res, bool *taken)
{
    return serve(app, path, etag, res, taken);
}

static int request(struct ts_app *app, const char *path, struct ts_response *res, bool *taken)
{
    return serve(app, path, NULL, res, taken);
}

static void test_routes_answer_pages_json_and_refusals(void **state)
{
    (void)state;
    struct ts_config cfg;
    ts_config_defaults(&cfg);
    snprintf(cfg.root, sizeof cfg.root, "%s", ROOT);
    snprintf(cfg.web_dir, sizeof cfg.web_dir, "%s", WEBDIR);
    struct ts_app app;
    struct ts_err err = {0};
    assert_int_equal(ts_app_init(&app, &cfg, &err), TS_OK);
    struct ts_response res;
    bool taken;

    assert_int_equal(request(&app, "/", &res, &taken), 200);
    assert_true(taken);
    assert_non_null(strstr(res.content_type, "text/html"));
    ts_buf_append(&res.body, "", 1);
    const char *html = (const char *)res.body.data;
    assert_non_null(strstr(html, "href=\"/browse/alpha\""));
    assert_non_null(strstr(html, "href=\"/viewer/b.tif\""));
    assert_non_null(strstr(html, "a &lt;&amp;&gt;.PNG")); /* names are escaped, never raw */
    assert_null(strstr(html, "a <&>"));
    assert_null(strstr(html, "notes.txt"));
    ts_response_free(&res);

    assert_int_equal(request(&app, "/collection/alpha/", &res, &taken), 200);
    ts_buf_append(&res.body, "", 1);
    json_t *c = parse((const char *)res.body.data);
    assert_string_equal(str_at(c, "id"), "http://example.org:8080/collection/alpha");
    json_decref(c);
    ts_response_free(&res);

    assert_int_equal(request(&app, "/static/style.css", &res, &taken), 200);
    assert_string_equal(res.content_type, "text/css; charset=utf-8");
    assert_int_equal(res.body.len, strlen("body{}"));
    char etag[64] = "";
    for (int i = 0; i < res.nheaders; i++)
        if (!strcmp(res.headers[i].name, "ETag"))
            snprintf(etag, sizeof etag, "%s", res.headers[i].value);
    ts_response_free(&res);
    assert_true(etag[0] == '"');
    assert_int_equal(request_if(&app, "/static/style.css", etag, &res, &taken), 304);
    assert_int_equal(res.body.len, 0);
    ts_response_free(&res);
    assert_int_equal(request_if(&app, "/static/style.css", "\"other\"", &res, &taken), 200);
    ts_response_free(&res);

    const char *refused[] = {"/browse/..",
                             "/browse/%2E%2E%2F",
                             "/collection/alpha%2F..%2F..",
                             "/static/..%2Fsecret.txt",
                             "/static/%2E%2E/secret.txt",
                             "/viewer/..%2F..%2Fetc%2Fpasswd",
                             "/manifest/%2Fetc%2Fpasswd"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        int status = request(&app, refused[i], &res, &taken);
        if (status != 403)
            fail_msg("%s answered %d, not 403", refused[i], status);
        assert_true(taken);
        ts_response_free(&res);
    }
    assert_int_equal(request(&app, "/browse/missing", &res, &taken), 404);
    ts_response_free(&res);
    assert_int_equal(request(&app, "/browse/bad%zz", &res, &taken), 400);
    ts_response_free(&res);
    request(&app, "/elsewhere", &res, &taken);
    assert_false(taken);
    ts_response_free(&res);
    ts_app_free(&app);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifest_paints_one_canvas_with_the_image_service),
        cmocka_unit_test(test_manifest_keeps_json_specials_in_labels),
        cmocka_unit_test(test_manifest_refuses_an_image_without_dimensions),
        cmocka_unit_test(test_manifest_body_declares_the_size_its_url_serves),
        cmocka_unit_test(test_manifest_has_one_canvas_per_page),
        cmocka_unit_test(test_xmp_values_are_read_as_curators_wrote_them),
        cmocka_unit_test(test_xsd_datetimes_need_a_time_zone),
        cmocka_unit_test(test_manifest_takes_label_and_rights_from_the_image_tags),
        cmocka_unit_test(test_sidecars_override_tags_and_bad_fields_are_ignored),
        cmocka_unit_test(test_collection_takes_its_folder_sidecar),
        cmocka_unit_test(test_listing_shows_folders_first_and_only_visible_images),
        cmocka_unit_test(test_listing_of_a_subfolder_gives_identifiers_from_the_root),
        cmocka_unit_test(test_listing_refuses_to_leave_the_root),
        cmocka_unit_test(test_collection_links_subfolders_and_manifests),
        cmocka_unit_test(test_static_paths_stay_in_their_mounts),
        cmocka_unit_test(test_url_decode_rejects_bad_escapes_and_nul),
        cmocka_unit_test(test_routes_answer_pages_json_and_refusals),
    };
    return cmocka_run_group_tests(tests, make_tree, NULL);
}
