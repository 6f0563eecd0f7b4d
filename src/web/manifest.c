/* IIIF Presentation API 3.0 manifests and collections, built with jansson. */
#include "protocol/iiif_parse.h"
#include "protocol/iiif_plan.h"
#include "util/url.h"
#include "web/describe.h"
#include "web/web.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRESENTATION_CONTEXT "http://iiif.io/api/presentation/3/context.json"
#define WEB_THUMB_SIZE "!200,200"
/* Ids are built from the request's Host and the identifier: longer is refused, not cut. */
#define WEB_URL_MAX (64 * 1024)

/* base + prefix + the identifier escaped whole ('/' too, as the Image API asks) + suffix. */
static char *image_url(const char *base, const char *prefix, const char *identifier,
                       const char *suffix)
{
    struct ts_buf b;
    ts_buf_init_capped(&b, WEB_URL_MAX);
    int rc = ts_buf_appendf(&b, "%s%s", base, prefix);
    rc = rc ? rc : url_encode_append(&b, identifier, false);
    rc = rc ? rc : ts_buf_append_str(&b, suffix);
    const char *s = rc ? NULL : ts_buf_str(&b);
    char *out = s ? strdup(s) : NULL;
    ts_buf_free(&b);
    return out;
}

/* printf into a fresh string (ids below the manifest's own). */
static char *format(const char *fmt, const char *a, unsigned n)
{
    int len = snprintf(NULL, 0, fmt, a, n);
    char *out = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (out)
        snprintf(out, (size_t)len + 1, fmt, a, n);
    return out;
}

static json_t *language_map(const char *lang, const char *text)
{
    return json_pack("{s:[s]}", lang, text);
}

static json_t *image_service(const char *base, const char *identifier)
{
    char *id = image_url(base, "/iiif/3/", identifier, "");
    json_t *s =
        id ? json_pack("[{s:s,s:s,s:s}]", "id", id, "type", "ImageService3", "profile", "level2")
           : NULL;
    free(id);
    return s;
}

static json_t *thumbnail(const char *base, const char *identifier)
{
    char *id = image_url(base, "/iiif/3/", identifier, "/full/" WEB_THUMB_SIZE "/0/default.jpg");
    json_t *t = id ? json_pack("[{s:s,s:s,s:s,s:o}]", "id", id, "type", "Image", "format",
                               "image/jpeg", "service", image_service(base, identifier))
                   : NULL;
    free(id);
    return t;
}

/* The facts about the file itself, after whatever people wrote about it. */
static void technical_metadata(struct web_description *d, const struct web_manifest_params *p)
{
    const struct ts_image_info *info = p->info;
    char dims[64], levels[32], tiles[64], pages[96];
    snprintf(dims, sizeof dims, "%u x %u px", info->width, info->height);
    snprintf(levels, sizeof levels, "%u", info->nlevels);
    if (info->levels[0].tile_w)
        snprintf(tiles, sizeof tiles, "%u x %u px", info->levels[0].tile_w, info->levels[0].tile_h);
    else
        snprintf(tiles, sizeof tiles, "untiled");
    web_description_add(d, "Identifier", p->identifier);
    web_description_add(d, "Dimensions", dims);
    if (p->pages && p->pages_total > p->npages)
        snprintf(pages, sizeof pages, "%u (the first %u are shown)", p->pages_total, p->npages);
    else if (p->pages)
        snprintf(pages, sizeof pages, "%u", p->npages);
    if (p->pages)
        web_description_add(d, "Pages", pages);
    web_description_add(d, "Format", info->format ? info->format : "unknown");
    web_description_add(d, "Levels", levels);
    web_description_add(d, "Stored tiles", tiles);
}

/* What the painting annotation's body is: the image at the largest size the server serves
 * under its limits (what `full/max` gives), named by a URI that asks for exactly that size. The
 * spec lets the body be any representation the service offers, with its own width and height
 * in pixels; the Canvas keeps the full size, the coordinate space of the service (and of any
 * annotation on it), and a client paints the body over the whole Canvas. So a 9877 x 9877
 * image under maxArea 25e6 gets a 9877 x 9877 Canvas painted by `full/5000,5000/0/default.jpg`
 * declared, and served, as 5000 x 5000. */
static json_t *painting_body(const char *base, const char *identifier, uint32_t w, uint32_t h,
                             const struct ts_limits *limits, struct ts_err *err)
{
    struct iiif_request req;
    struct ts_plan plan;
    struct ts_limits none = {.formats = ~0u}; /* no limits: every size and format */
    int rc = iiif_parse_image(3, "full", "max", "0", "default.jpg", &req, err);
    rc = rc ? rc : iiif_plan(&req, w, h, limits ? limits : &none, &plan, err);
    if (rc)
        return NULL;
    char suffix[96];
    if (plan.out_w == w && plan.out_h == h)
        snprintf(suffix, sizeof suffix, "/full/max/0/default.jpg");
    else
        snprintf(suffix, sizeof suffix, "/full/%u,%u/0/default.jpg", plan.out_w, plan.out_h);
    char *id = image_url(base, "/iiif/3/", identifier, suffix);
    json_t *body =
        id ? json_pack("{s:s,s:s,s:s,s:I,s:I,s:o}", "id", id, "type", "Image", "format",
                       "image/jpeg", "width", (json_int_t)plan.out_w, "height",
                       (json_int_t)plan.out_h, "service", image_service(base, identifier))
           : NULL;
    free(id);
    return body;
}

/* Canvas n (1-based) of the manifest, w x h, painted by the image `identifier`. */
static json_t *canvas(const struct web_manifest_params *p, const char *manifest_id, unsigned n,
                      const char *identifier, json_t *label, uint32_t w, uint32_t h,
                      struct ts_err *err)
{
    char *canvas_id = format("%s/canvas/p%u", manifest_id, n);
    char *page_id = format("%s/page/p%u", manifest_id, n);
    char *anno_id = format("%s/annotation/p%u-image", manifest_id, n);
    json_t *body = painting_body(p->base, identifier, w, h, p->limits, err);
    json_t *c = NULL;
    if (canvas_id && page_id && anno_id && body) {
        json_t *anno = json_pack("{s:s,s:s,s:s,s:o,s:s}", "id", anno_id, "type", "Annotation",
                                 "motivation", "painting", "body", body, "target", canvas_id);
        body = NULL;
        json_t *page =
            json_pack("{s:s,s:s,s:[o]}", "id", page_id, "type", "AnnotationPage", "items", anno);
        c = json_pack("{s:s,s:s,s:O,s:I,s:I,s:[o]}", "id", canvas_id, "type", "Canvas", "label",
                      label, "width", (json_int_t)w, "height", (json_int_t)h, "items", page);
    }
    json_decref(body);
    free(canvas_id);
    free(page_id);
    free(anno_id);
    return c;
}

/* One canvas per page for page 0 of a file of several: page n (1-based, as the reader numbers
 * pages) is "{identifier};n", as source_resolve names it, and page 1 the identifier itself;
 * otherwise one canvas for the image (or page) the identifier names. */
static json_t *canvases(const struct web_manifest_params *p, const char *manifest_id, json_t *label,
                        struct ts_err *err)
{
    json_t *items = json_array();
    uint32_t n = p->pages && p->npages > 1 ? p->npages : 1;
    for (uint32_t i = 0; items && i < n; i++) {
        uint32_t number = n > 1 ? p->pages[i].number : 0;
        char *page_identifier = number ? format("%s;%u", p->identifier, number + 1) : NULL;
        char page_label[32];
        snprintf(page_label, sizeof page_label, "p. %u", i + 1);
        json_t *own = n > 1 ? language_map("none", page_label) : json_incref(label);
        uint32_t w = n > 1 ? p->pages[i].width : p->info->width;
        uint32_t h = n > 1 ? p->pages[i].height : p->info->height;
        json_t *c = (!number || page_identifier) && own
                        ? canvas(p, manifest_id, i + 1, number ? page_identifier : p->identifier,
                                 own, w, h, err)
                        : NULL;
        json_decref(own);
        free(page_identifier);
        if (json_array_append_new(items, c) != 0) {
            json_decref(items);
            return NULL;
        }
    }
    return items;
}

static int dump(json_t *doc, char **json, const char *what, struct ts_err *err)
{
    if (!doc)
        return err->msg[0] ? ts_fail(err, TS_EINVAL, "cannot build the %s: %s", what, err->msg)
                           : ts_fail(err, TS_ENOMEM, "cannot build the %s", what);
    *json = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (!*json)
        return ts_fail(err, TS_ENOMEM, "cannot serialise the %s", what);
    return TS_OK;
}

static void describe_image(struct web_description *d, const struct web_manifest_params *p)
{
    if (p->own.text)
        web_description_sidecar(d, p->own.text, p->own.len, p->own.where, WEB_SIDECAR_ALL);
    if (p->folder.text)
        web_description_sidecar(d, p->folder.text, p->folder.len, p->folder.where,
                                WEB_SIDECAR_SHARED);
    web_description_tags(d, p->info);
    if (p->copyright)
        web_description_copyright(d, p->copyright);
    technical_metadata(d, p);
    if (!d->label)
        d->label = language_map("none", p->label);
}

int web_manifest_json(const struct web_manifest_params *p, char **json, struct ts_err *err)
{
    *json = NULL;
    if (!p->info || !p->info->width || !p->info->height)
        return ts_fail(err, TS_EINVAL, "manifest for '%s' needs the image's dimensions",
                       p->identifier);
    char *id = image_url(p->base, "/manifest/", p->identifier, "");
    char *viewer = image_url(p->base, "/viewer/", p->identifier, "");
    if (!id || !viewer) {
        free(id);
        free(viewer);
        return ts_fail(err, TS_ETOOLONG, "identifier too long for a manifest");
    }
    struct web_description d;
    web_description_init(&d);
    describe_image(&d, p);
    json_t *doc =
        json_pack("{s:s,s:s,s:s}", "@context", PRESENTATION_CONTEXT, "id", id, "type", "Manifest");
    json_t *homepage = json_pack("[{s:s,s:s,s:o,s:s}]", "id", viewer, "type", "Text", "label",
                                 language_map("en", "Tessera viewer"), "format", "text/html");
    json_t *items = d.label ? canvases(p, id, d.label, err) : NULL;
    int rc = doc && homepage && items ? web_description_put(&d, doc) : TS_ENOMEM;
    if (rc == TS_OK && json_object_set_new(doc, "thumbnail", thumbnail(p->base, p->identifier)))
        rc = TS_ENOMEM;
    /* json_object_set_new takes its value even when it fails. */
    if (rc == TS_OK) {
        rc = json_object_set_new(doc, "homepage", homepage) ? TS_ENOMEM : TS_OK;
        homepage = NULL;
    }
    if (rc == TS_OK) {
        rc = json_object_set_new(doc, "items", items) ? TS_ENOMEM : TS_OK;
        items = NULL;
    }
    if (rc) {
        json_decref(homepage);
        json_decref(items);
        json_decref(doc);
        doc = NULL;
    }
    web_description_free(&d);
    free(id);
    free(viewer);
    return dump(doc, json, "manifest", err);
}

static char *collection_url(const char *base, const char *folder)
{
    struct ts_buf b;
    ts_buf_init_capped(&b, WEB_URL_MAX);
    int rc = ts_buf_appendf(&b, "%s/collection%s", base, folder[0] ? "/" : "");
    rc = rc ? rc : url_encode_append(&b, folder, true);
    const char *s = rc ? NULL : ts_buf_str(&b);
    char *out = s ? strdup(s) : NULL;
    ts_buf_free(&b);
    return out;
}

static json_t *manifest_ref(const char *base, const char *identifier, const char *label)
{
    char *id = image_url(base, "/manifest/", identifier, "");
    json_t *ref =
        id ? json_pack("{s:s,s:s,s:o,s:o}", "id", id, "type", "Manifest", "label",
                       language_map("none", label), "thumbnail", thumbnail(base, identifier))
           : NULL;
    free(id);
    return ref;
}

static json_t *collection_items(const char *base, const struct web_listing *listing, bool with_demo)
{
    json_t *items = json_array();
    if (!items)
        return NULL;
    if (with_demo && json_array_append_new(items, manifest_ref(base, "demo", "demo")) != 0)
        goto fail;
    for (size_t i = 0; i < listing->count; i++) {
        const struct web_entry *e = &listing->entries[i];
        json_t *item = NULL;
        if (e->is_folder) {
            char *id = collection_url(base, e->path);
            item = id ? json_pack("{s:s,s:s,s:o}", "id", id, "type", "Collection", "label",
                                  language_map("none", e->name))
                      : NULL;
            free(id);
        } else {
            item = manifest_ref(base, e->path, e->name);
        }
        if (json_array_append_new(items, item) != 0)
            goto fail;
    }
    return items;
fail:
    json_decref(items);
    return NULL;
}

int web_collection_json(const char *base, const char *folder, const struct web_listing *listing,
                        bool with_demo, const struct web_sidecar *sidecar, const char *copyright,
                        char **json, struct ts_err *err)
{
    *json = NULL;
    char *id = collection_url(base, folder);
    if (!id)
        return ts_fail(err, TS_ETOOLONG, "folder name too long for a collection");
    const char *slash = strrchr(folder, '/');
    struct web_description d;
    web_description_init(&d);
    if (sidecar && sidecar->text)
        web_description_sidecar(&d, sidecar->text, sidecar->len, sidecar->where, WEB_SIDECAR_ALL);
    if (copyright)
        web_description_copyright(&d, copyright);
    if (!d.label)
        d.label = language_map("none", folder[0] ? (slash ? slash + 1 : folder) : "Images");
    json_t *doc = json_pack("{s:s,s:s,s:s}", "@context", PRESENTATION_CONTEXT, "id", id, "type",
                            "Collection");
    json_t *items = collection_items(base, listing, with_demo && !folder[0]);
    int rc = doc && items ? web_description_put(&d, doc) : TS_ENOMEM;
    if (rc == TS_OK && folder[0]) {
        /* Lets a client walk back up to the folder above. */
        size_t up = slash ? (size_t)(slash - folder) : 0;
        char *parent_folder = malloc(up + 1);
        if (parent_folder) {
            memcpy(parent_folder, folder, up);
            parent_folder[up] = '\0';
        }
        char *parent = parent_folder ? collection_url(base, parent_folder) : NULL;
        rc = parent && !json_object_set_new(
                           doc, "partOf",
                           json_pack("[{s:s,s:s}]", "id", parent, "type", "Collection"))
                 ? TS_OK
                 : TS_ENOMEM;
        free(parent_folder);
        free(parent);
    }
    if (rc == TS_OK)
        rc = json_object_set_new(doc, "items", items) ? TS_ENOMEM : TS_OK;
    else
        json_decref(items);
    if (rc) {
        json_decref(doc);
        doc = NULL;
    }
    web_description_free(&d);
    free(id);
    return dump(doc, json, "collection", err);
}
