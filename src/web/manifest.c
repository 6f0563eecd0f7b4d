/* IIIF Presentation API 3.0 manifests and collections, built with jansson. */
#include "util/url.h"
#include "web/web.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRESENTATION_CONTEXT "http://iiif.io/api/presentation/3/context.json"
#define WEB_URL_MAX 16384
#define WEB_THUMB_SIZE "!200,200"

/* Image identifiers are escaped whole ('/' too), as the Image API asks. */
static void image_url(const char *base, const char *identifier, const char *suffix, char *out,
                      size_t size)
{
    char enc[4096 * 3 + 1];
    url_encode(identifier, false, enc, sizeof enc);
    snprintf(out, size, "%s%s%s", base, suffix, enc);
}

static json_t *language_map(const char *lang, const char *text)
{
    return json_pack("{s:[s]}", lang, text);
}

static json_t *metadata_entry(const char *label, const char *value)
{
    return json_pack("{s:o,s:o}", "label", language_map("en", label), "value",
                     language_map("none", value));
}

static json_t *image_service(const char *base, const char *identifier)
{
    char id[WEB_URL_MAX];
    image_url(base, identifier, "/iiif/3/", id, sizeof id);
    return json_pack("[{s:s,s:s,s:s}]", "id", id, "type", "ImageService3", "profile", "level2");
}

static json_t *thumbnail(const char *base, const char *identifier)
{
    char service[WEB_URL_MAX], id[WEB_URL_MAX + 64];
    image_url(base, identifier, "/iiif/3/", service, sizeof service);
    snprintf(id, sizeof id, "%s/full/" WEB_THUMB_SIZE "/0/default.jpg", service);
    return json_pack("[{s:s,s:s,s:s,s:o}]", "id", id, "type", "Image", "format", "image/jpeg",
                     "service", image_service(base, identifier));
}

static json_t *metadata(const struct web_manifest_params *p)
{
    const struct ts_image_info *info = p->info;
    char dims[64], levels[32], tiles[64];
    snprintf(dims, sizeof dims, "%u x %u px", info->width, info->height);
    snprintf(levels, sizeof levels, "%u", info->nlevels);
    if (info->levels[0].tile_w)
        snprintf(tiles, sizeof tiles, "%u x %u px", info->levels[0].tile_w, info->levels[0].tile_h);
    else
        snprintf(tiles, sizeof tiles, "untiled");
    return json_pack("[o,o,o,o,o]", metadata_entry("Identifier", p->identifier),
                     metadata_entry("Dimensions", dims),
                     metadata_entry("Format", info->format ? info->format : "unknown"),
                     metadata_entry("Levels", levels), metadata_entry("Stored tiles", tiles));
}

static json_t *canvas(const struct web_manifest_params *p, const char *manifest_id)
{
    char canvas_id[WEB_URL_MAX + 32], page_id[WEB_URL_MAX + 32], anno_id[WEB_URL_MAX + 32];
    char service[WEB_URL_MAX], full[WEB_URL_MAX + 64];
    snprintf(canvas_id, sizeof canvas_id, "%s/canvas/p1", manifest_id);
    snprintf(page_id, sizeof page_id, "%s/page/p1", manifest_id);
    snprintf(anno_id, sizeof anno_id, "%s/annotation/p1-image", manifest_id);
    image_url(p->base, p->identifier, "/iiif/3/", service, sizeof service);
    snprintf(full, sizeof full, "%s/full/max/0/default.jpg", service);
    json_t *body =
        json_pack("{s:s,s:s,s:s,s:I,s:I,s:o}", "id", full, "type", "Image", "format", "image/jpeg",
                  "width", (json_int_t)p->info->width, "height", (json_int_t)p->info->height,
                  "service", image_service(p->base, p->identifier));
    json_t *anno = json_pack("{s:s,s:s,s:s,s:o,s:s}", "id", anno_id, "type", "Annotation",
                             "motivation", "painting", "body", body, "target", canvas_id);
    json_t *page =
        json_pack("{s:s,s:s,s:[o]}", "id", page_id, "type", "AnnotationPage", "items", anno);
    return json_pack("{s:s,s:s,s:o,s:I,s:I,s:[o]}", "id", canvas_id, "type", "Canvas", "label",
                     language_map("none", p->label), "width", (json_int_t)p->info->width, "height",
                     (json_int_t)p->info->height, "items", page);
}

static int dump(json_t *doc, char **json, const char *what, struct ts_err *err)
{
    if (!doc)
        return ts_fail(err, TS_ENOMEM, "cannot build the %s", what);
    *json = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (!*json)
        return ts_fail(err, TS_ENOMEM, "cannot serialise the %s", what);
    return TS_OK;
}

int web_manifest_json(const struct web_manifest_params *p, char **json, struct ts_err *err)
{
    *json = NULL;
    if (!p->info || !p->info->width || !p->info->height)
        return ts_fail(err, TS_EINVAL, "manifest for '%s' needs the image's dimensions",
                       p->identifier);
    char id[WEB_URL_MAX], viewer[WEB_URL_MAX];
    image_url(p->base, p->identifier, "/manifest/", id, sizeof id);
    image_url(p->base, p->identifier, "/viewer/", viewer, sizeof viewer);
    json_t *homepage = json_pack("[{s:s,s:s,s:o,s:s}]", "id", viewer, "type", "Text", "label",
                                 language_map("en", "Tessera viewer"), "format", "text/html");
    json_t *doc = json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:[o]}", "@context", PRESENTATION_CONTEXT,
                            "id", id, "type", "Manifest", "label", language_map("none", p->label),
                            "metadata", metadata(p), "thumbnail", thumbnail(p->base, p->identifier),
                            "homepage", homepage, "items", canvas(p, id));
    return dump(doc, json, "manifest", err);
}

static void collection_url(const char *base, const char *folder, char *out, size_t size)
{
    char enc[4096 * 3 + 1];
    url_encode(folder, true, enc, sizeof enc);
    snprintf(out, size, "%s/collection%s%s", base, folder[0] ? "/" : "", enc);
}

static json_t *manifest_ref(const char *base, const char *identifier, const char *label)
{
    char id[WEB_URL_MAX];
    image_url(base, identifier, "/manifest/", id, sizeof id);
    return json_pack("{s:s,s:s,s:o,s:o}", "id", id, "type", "Manifest", "label",
                     language_map("none", label), "thumbnail", thumbnail(base, identifier));
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
        json_t *item;
        if (e->is_folder) {
            char id[WEB_URL_MAX];
            collection_url(base, e->path, id, sizeof id);
            item = json_pack("{s:s,s:s,s:o}", "id", id, "type", "Collection", "label",
                             language_map("none", e->name));
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
                        bool with_demo, char **json, struct ts_err *err)
{
    *json = NULL;
    char id[WEB_URL_MAX];
    collection_url(base, folder, id, sizeof id);
    const char *slash = strrchr(folder, '/');
    const char *label = folder[0] ? (slash ? slash + 1 : folder) : "Images";
    json_t *doc = json_pack("{s:s,s:s,s:s,s:o,s:o}", "@context", PRESENTATION_CONTEXT, "id", id,
                            "type", "Collection", "label", language_map("none", label), "items",
                            collection_items(base, listing, with_demo && !folder[0]));
    if (doc && folder[0]) {
        /* Lets a client walk back up to the folder above. */
        char parent_folder[4096], parent[WEB_URL_MAX];
        snprintf(parent_folder, sizeof parent_folder, "%.*s", slash ? (int)(slash - folder) : 0,
                 folder);
        collection_url(base, parent_folder, parent, sizeof parent);
        if (json_object_set_new(doc, "partOf",
                                json_pack("[{s:s,s:s}]", "id", parent, "type", "Collection"))) {
            json_decref(doc);
            return ts_fail(err, TS_ENOMEM, "cannot build the collection");
        }
    }
    return dump(doc, json, "collection", err);
}
