/* The built-in web front: image browser, viewer pages, manifests and their static assets. */
#ifndef TESSERA_WEB_H
#define TESSERA_WEB_H

#include "core/app.h"
#include "core/job.h"
#include "image/reader.h"
#include "util/status.h"

#include <stdbool.h>
#include <stddef.h>

/* Fills job when the path belongs to the web front ("/", "/browse/", "/viewer/", "/mirador",
 * "/manifest/", "/collection", "/static/") and returns its parse status; TS_DECLINED lets the
 * router go on. */
int web_job(const struct ts_app *app, const struct ts_request *req, struct ts_job *job,
            struct ts_err *err);

/* Errors on job become a styled HTML page with a link back when the client asks for HTML (a
 * browser's navigation); other clients keep the one-line text. web_job does this for its own
 * routes; the router calls it for paths nobody serves. */
void web_error_style(const struct ts_request *req, struct ts_job *job);

/* One entry of a folder below the image root. Both strings live in one allocation (name is the
 * tail of path), owned by the listing: a folder of many files costs its names, not a fixed
 * record each. */
struct web_entry {
    const char *name; /* the file or folder name as stored */
    char *path;       /* relative to the root, '/'-separated: an identifier for images */
    bool is_folder;
};

/* Entries beyond this are not read; a listing that reached it says so (truncated). */
#define WEB_LISTING_MAX 1000000

struct web_listing {
    struct web_entry *entries; /* folders first, then images, each sorted by name */
    size_t count;
    bool truncated; /* the folder holds more than WEB_LISTING_MAX entries */
};

/* Lists the sub-folders and image files of folder ("" = the root itself). Hidden names and
 * entries whose real path leaves the root are skipped. TS_EFORBIDDEN for '.'/'..' segments,
 * absolute paths or an escape from the root; TS_ENOTFOUND when folder is not a directory. */
int web_list_folder(const char *root, const char *folder, struct web_listing *out,
                    struct ts_err *err);
void web_listing_free(struct web_listing *listing);

/* A sidecar file's bytes and where it lies (for warnings), or all NULL. */
struct web_sidecar {
    const char *text;
    size_t len;
    const char *where;
};

/* What a manifest says about one image; base is the public origin without a trailing '/'. */
struct web_manifest_params {
    const char *base;
    const char *identifier; /* decoded, e.g. "maps/portolan.tif" */
    const char *label;      /* the default label, e.g. "portolan.tif" */
    const struct ts_image_info *info;
    /* What the server allows (what `full/max` serves); NULL = no limits. */
    const struct ts_limits *limits;
    /* A file of several pages: each page's size (pages[0] is info's), npages of the file's
     * pages_total. NULL = one canvas, for the image or page the identifier names. */
    const struct ts_page *pages;
    uint32_t npages, pages_total;
    struct web_sidecar own;    /* "{image file}.json" */
    struct web_sidecar folder; /* the folder's "_folder.json" */
    const char *copyright;     /* the server's rights statement (COPYRIGHT), or NULL */
};

/* Sidecar file names: one per image (its file name + this) and one per folder. */
#define WEB_SIDECAR_SUFFIX ".json"
#define WEB_FOLDER_SIDECAR "_folder.json"

/* A IIIF Presentation API 3.0 Manifest: one Canvas per page (one for a single image), each
 * painted by the image at a size the server really serves and carrying its Image API 3.0
 * service; label, summary, metadata, requiredStatement, rights and navDate from the sidecars,
 * the image's own tags and the server's COPYRIGHT. Returns malloc'd JSON in *json. */
int web_manifest_json(const struct web_manifest_params *p, char **json, struct ts_err *err);

/* A IIIF Presentation API 3.0 Collection for folder ("" = root): sub-folders as Collections,
 * images as Manifests; with_demo adds the "demo" image (root only). The folder's sidecar
 * (may be all NULL) describes it, COPYRIGHT (may be NULL) stands for its rights. Malloc'd JSON
 * in *json. */
int web_collection_json(const char *base, const char *folder, const struct web_listing *listing,
                        bool with_demo, const struct web_sidecar *sidecar, const char *copyright,
                        char **json, struct ts_err *err);

/* Maps a decoded /static/ path (without the prefix) to a regular file below web_dir: page
 * assets from pages/, OpenSeadragon and Mirador from the npm packages. Realpath-checked;
 * TS_EFORBIDDEN for traversal or hidden segments, TS_ENOTFOUND otherwise. */
int web_static_path(const char *web_dir, const char *rel, char *out, size_t size,
                    struct ts_err *err);

/* The Content-Type for a static file name, by extension. */
const char *web_content_type(const char *name);

#endif
