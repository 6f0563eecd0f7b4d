/* The web front's routes: folder pages, the viewer, manifests, collections and static assets. */
#include "web/web.h"
#include "core/engine.h"
#include "util/url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TESSERA_WEB_DIR
#define TESSERA_WEB_DIR "web"
#endif

#define WEB_PATH_MAX 4096
#define WEB_BASE_MAX 1100
#define WEB_THUMB "/full/!200,200/0/default.jpg"

/* Same-origin scripts only; Mirador's styling library writes <style> elements, hence
 * 'unsafe-inline' for styles (never for scripts). */
#define WEB_CSP                                                                                    \
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "                    \
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "   \
    "base-uri 'none'; frame-ancestors 'self'"

static const char *web_dir(const struct ts_app *app)
{
    return app->cfg.web_dir[0] ? app->cfg.web_dir : TESSERA_WEB_DIR;
}


static void append_html(struct ts_buf *b, const char *text)
{
    for (const char *p = text; *p; p++) {
        switch (*p) {
        case '&': ts_buf_appendf(b, "&amp;"); break;
        case '<': ts_buf_appendf(b, "&lt;"); break;
        case '>': ts_buf_appendf(b, "&gt;"); break;
        case '"': ts_buf_appendf(b, "&quot;"); break;
        case '\'': ts_buf_appendf(b, "&#39;"); break;
        default: ts_buf_append(b, p, 1);
        }
    }
}

static void html_headers(struct ts_response *res)
{
    ts_response_set_type(res, "text/html; charset=utf-8");
    ts_response_add_header(res, "Content-Security-Policy", WEB_CSP);
    ts_response_add_header(res, "X-Content-Type-Options", "nosniff");
    ts_response_add_header(res, "Referrer-Policy", "same-origin");
}

/* Decodes the rest of a path after its prefix, trimming trailing '/' (folders end in one). */
static int decode_rest(const char *rest, char *out, size_t size, struct ts_response *res)
{
    struct ts_err err = {{0}};
    int rc = url_decode(rest, strlen(rest), out, size, 0, &err);
    if (rc) {
        engine_fail(res, rc, &err);
        return rc;
    }
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '/')
        out[--n] = '\0';
    return TS_OK;
}

static void breadcrumbs(struct ts_buf *b, const char *folder)
{
    ts_buf_appendf(b, "<nav class=\"crumbs\"><a href=\"/\">Images</a>");
    char href[WEB_PATH_MAX * 3 + 16];
    for (const char *seg = folder; *seg;) {
        size_t len = strcspn(seg, "/");
        char upto[WEB_PATH_MAX], name[256], enc[WEB_PATH_MAX * 3 + 1];
        snprintf(upto, sizeof upto, "%.*s", (int)(seg - folder + (ptrdiff_t)len), folder);
        snprintf(name, sizeof name, "%.*s", (int)len, seg);
        url_encode(upto, true, enc, sizeof enc);
        snprintf(href, sizeof href, "/browse/%s", enc);
        ts_buf_appendf(b, " / <a href=\"");
        append_html(b, href);
        ts_buf_appendf(b, "\">");
        append_html(b, name);
        ts_buf_appendf(b, "</a>");
        seg += len;
        if (*seg == '/')
            seg++;
    }
    ts_buf_appendf(b, "</nav>");
}

static void listing_item(struct ts_buf *b, const char *href, const char *thumb, const char *name,
                         bool folder)
{
    ts_buf_appendf(b, "<li class=\"%s\"><a href=\"", folder ? "folder" : "image");
    append_html(b, href);
    ts_buf_appendf(b, "\">");
    if (thumb) {
        ts_buf_appendf(b, "<img src=\"");
        append_html(b, thumb);
        ts_buf_appendf(b, "\" alt=\"\" loading=\"lazy\">");
    } else {
        ts_buf_appendf(b, "<span class=\"folder-icon\" aria-hidden=\"true\"></span>");
    }
    ts_buf_appendf(b, "<span class=\"name\">");
    append_html(b, name);
    ts_buf_appendf(b, "</span></a></li>\n");
}

static void listing_page(struct ts_app *app, const char *folder, const struct web_listing *l,
                         struct ts_response *res)
{
    struct ts_buf *b = &res->body;
    bool demo = !folder[0] && app->cfg.demo_image[0];
    char enc[WEB_PATH_MAX * 3 + 1], href[WEB_PATH_MAX * 3 + 32], thumb[WEB_PATH_MAX * 3 + 64];
    ts_buf_appendf(b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                      "<link rel=\"icon\" href=\"data:,\"><title>Tessera: ");
    append_html(b, folder[0] ? folder : "images");
    ts_buf_appendf(b, "</title><link rel=\"stylesheet\" href=\"/static/style.css\"></head>\n"
                      "<body class=\"browse\"><header><h1>Tessera</h1>");
    breadcrumbs(b, folder);
    url_encode(folder, true, enc, sizeof enc);
    snprintf(href, sizeof href, "/collection%s%s", folder[0] ? "/" : "", enc);
    ts_buf_appendf(b, "<a class=\"iiif-link\" href=\"");
    append_html(b, href);
    ts_buf_appendf(b, "\" title=\"IIIF Presentation 3.0 collection of this folder\">"
                      "IIIF collection</a></header>\n<main><ul class=\"grid\">\n");
    if (demo)
        listing_item(b, "/viewer/demo", "/iiif/3/demo" WEB_THUMB, "demo", false);
    for (size_t i = 0; i < l->count; i++) {
        const struct web_entry *e = &l->entries[i];
        if (e->is_folder) {
            url_encode(e->path, true, enc, sizeof enc);
            snprintf(href, sizeof href, "/browse/%s", enc);
            listing_item(b, href, NULL, e->name, true);
        } else {
            url_encode(e->path, false, enc, sizeof enc);
            snprintf(href, sizeof href, "/viewer/%s", enc);
            snprintf(thumb, sizeof thumb, "/iiif/3/%s" WEB_THUMB, enc);
            listing_item(b, href, thumb, e->name, false);
        }
    }
    ts_buf_appendf(b, "</ul>\n");
    if (!demo && l->count == 0)
        ts_buf_appendf(b, "<p class=\"empty\">No images or folders here.</p>\n");
    ts_buf_appendf(b, "</main></body></html>\n");
}

static void handle_browse(struct ts_app *app, const char *rest, struct ts_response *res)
{
    char folder[WEB_PATH_MAX];
    if (decode_rest(rest, folder, sizeof folder, res))
        return;
    struct ts_err err = {{0}};
    struct web_listing l;
    int rc = web_list_folder(app->cfg.root, folder, &l, &err);
    if (rc) {
        engine_fail(res, rc, &err);
        return;
    }
    html_headers(res);
    ts_response_add_header(res, "Cache-Control", "no-cache");
    listing_page(app, folder, &l, res);
    web_listing_free(&l);
}

static void handle_collection(struct ts_app *app, const struct ts_request *req, const char *rest,
                              struct ts_response *res)
{
    char folder[WEB_PATH_MAX], base[WEB_BASE_MAX];
    if (decode_rest(rest, folder, sizeof folder, res))
        return;
    struct ts_err err = {{0}};
    struct web_listing l;
    int rc = web_list_folder(app->cfg.root, folder, &l, &err);
    if (rc) {
        engine_fail(res, rc, &err);
        return;
    }
    engine_public_base(app, req, base, sizeof base);
    char *json = NULL;
    rc = web_collection_json(base, folder, &l, app->cfg.demo_image[0] != '\0', &json, &err);
    web_listing_free(&l);
    if (rc) {
        engine_fail(res, rc, &err);
        return;
    }
    ts_response_set_type(
        res, "application/ld+json;profile=\"http://iiif.io/api/presentation/3/context.json\"");
    ts_response_add_header(res, "Cache-Control", "no-cache");
    if (ts_buf_append(&res->body, json, strlen(json)) != TS_OK)
        ts_response_error(res, TS_ENOMEM, "out of memory");
    free(json);
}

static void handle_manifest(struct ts_app *app, const struct ts_request *req, const char *rest,
                            struct ts_response *res)
{
    char id[WEB_PATH_MAX], base[WEB_BASE_MAX];
    if (decode_rest(rest, id, sizeof id, res))
        return;
    struct ts_err err = {{0}};
    struct source_file src = {0};
    int rc = engine_resolve(app, id, &src, &err);
    if (rc) {
        engine_fail(res, rc, &err);
        return;
    }
    engine_public_base(app, req, base, sizeof base);
    char etag[40], what[WEB_BASE_MAX + 16];
    snprintf(what, sizeof what, "manifest %s", base);
    engine_etag(app, &src, what, etag, sizeof etag);
    if (engine_not_modified(app, req, res, etag, src.st.st_mtim.tv_sec))
        return;
    struct ts_reader *reader = NULL;
    rc = engine_open(app, &src, &reader, &err);
    if (rc) {
        engine_fail(res, rc, &err);
        return;
    }
    const char *slash = strrchr(id, '/');
    struct web_manifest_params p = {base, id, slash ? slash + 1 : id, &reader->info};
    char *json = NULL;
    rc = web_manifest_json(&p, &json, &err);
    ts_reader_close(reader);
    if (rc) {
        engine_fail(res, rc, &err);
        return;
    }
    ts_response_set_type(
        res, "application/ld+json;profile=\"http://iiif.io/api/presentation/3/context.json\"");
    if (ts_buf_append(&res->body, json, strlen(json)) != TS_OK) {
        ts_response_error(res, TS_ENOMEM, "out of memory");
    } else {
        engine_cache_headers(app, res, etag, src.st.st_mtim.tv_sec);
    }
    free(json);
}

/* Serves a page from pages/ as HTML, with the page's security headers. */
static void send_page(struct ts_app *app, const struct ts_request *req, const char *page,
                      struct ts_response *res)
{
    struct ts_err err = {{0}};
    char path[WEB_PATH_MAX];
    int rc = web_static_path(web_dir(app), page, path, sizeof path, &err);
    if (rc) {
        engine_fail(res, rc, &err);
        return;
    }
    if (web_send_file(app, req, res, path, "text/html; charset=utf-8") == TS_OK)
        html_headers(res);
}

static void handle_viewer(struct ts_app *app, const struct ts_request *req, const char *rest,
                          struct ts_response *res)
{
    char id[WEB_PATH_MAX];
    if (decode_rest(rest, id, sizeof id, res))
        return;
    /* A viewer for an image that is not there would only show a broken canvas: say so now. */
    struct ts_err err = {{0}};
    struct source_file src = {0};
    int rc = engine_resolve(app, id, &src, &err);
    if (rc) {
        engine_fail(res, rc, &err);
        return;
    }
    send_page(app, req, "viewer.html", res);
}

static void handle_static(struct ts_app *app, const struct ts_request *req, const char *rest,
                          struct ts_response *res)
{
    char rel[WEB_PATH_MAX], path[WEB_PATH_MAX];
    struct ts_err err = {{0}};
    int rc = url_decode(rest, strlen(rest), rel, sizeof rel, 0, &err);
    if (!rc)
        rc = web_static_path(web_dir(app), rel, path, sizeof path, &err);
    if (rc) {
        engine_fail(res, rc, &err);
        return;
    }
    if (web_send_file(app, req, res, path, NULL) == TS_OK)
        ts_response_add_header(res, "X-Content-Type-Options", "nosniff");
}

static const char *after_prefix(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(path, prefix, n) ? NULL : path + n;
}

bool web_handle(struct ts_app *app, const struct ts_request *req, struct ts_response *res)
{
    const char *path = req->path, *rest;
    if (!strcmp(path, "/"))
        handle_browse(app, "", res);
    else if ((rest = after_prefix(path, "/browse/")) != NULL)
        handle_browse(app, rest, res);
    else if (!strcmp(path, "/collection") || !strcmp(path, "/collection/"))
        handle_collection(app, req, "", res);
    else if ((rest = after_prefix(path, "/collection/")) != NULL)
        handle_collection(app, req, rest, res);
    else if ((rest = after_prefix(path, "/manifest/")) != NULL)
        handle_manifest(app, req, rest, res);
    else if ((rest = after_prefix(path, "/viewer/")) != NULL)
        handle_viewer(app, req, rest, res);
    else if (!strcmp(path, "/mirador") || !strcmp(path, "/mirador/"))
        send_page(app, req, "mirador.html", res);
    else if ((rest = after_prefix(path, "/static/")) != NULL)
        handle_static(app, req, rest, res);
    else
        return false;
    return true;
}
