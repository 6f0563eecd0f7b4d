/* The web front's routes: folder pages, the viewer, manifests, collections and static assets. */
#include "web/web.h"
#include "core/access.h"
#include "image/source.h"
#include "util/url.h"

#include <jansson.h>
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

static int html_headers(struct ts_job *job)
{
    ts_product_set_type(&job->out, "text/html; charset=utf-8");
    int rc = ts_job_add_header(job, "Content-Security-Policy", WEB_CSP);
    rc = rc ? rc : ts_job_add_header(job, "X-Content-Type-Options", "nosniff");
    return rc ? rc : ts_job_add_header(job, "Referrer-Policy", "same-origin");
}

/* Decodes the rest of a path after its prefix, trimming trailing '/' (folders end in one). */
static int decode_rest(const char *rest, char *out, size_t size, struct ts_err *err)
{
    int rc = url_decode(rest, strlen(rest), out, size, 0, err);
    if (rc)
        return rc;
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

static void listing_page(const struct ts_app *app, const char *folder, const struct web_listing *l,
                         struct ts_buf *b)
{
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

/* What a page request carries to its producer. */
struct web_ctx {
    char path[WEB_PATH_MAX]; /* decoded folder or identifier */
    struct ts_buf base;      /* public base URL */
};

static void ctx_free(void *p)
{
    struct web_ctx *c = p;
    if (c)
        ts_buf_free(&c->base);
    free(c);
}

static int produce_browse(const struct ts_app *app, const struct ts_job *job,
                          const struct ts_image_info *info, struct ts_product *out,
                          struct ts_err *err)
{
    (void)info;
    const struct web_ctx *c = job->ctx;
    struct web_listing l;
    int rc = web_list_folder(app->cfg.root, c->path, &l, err);
    if (rc)
        return rc;
    out->is_text = true;
    listing_page(app, c->path, &l, &out->text);
    web_listing_free(&l);
    return TS_OK;
}

static int produce_collection(const struct ts_app *app, const struct ts_job *job,
                              const struct ts_image_info *info, struct ts_product *out,
                              struct ts_err *err)
{
    (void)info;
    const struct web_ctx *c = job->ctx;
    struct web_listing l;
    int rc = web_list_folder(app->cfg.root, c->path, &l, err);
    if (rc)
        return rc;
    char *json = NULL;
    rc = web_collection_json((const char *)c->base.data, c->path, &l,
                             app->cfg.demo_image[0] != '\0', &json, err);
    web_listing_free(&l);
    if (rc)
        return rc;
    rc = ts_product_text(out, json, err);
    free(json);
    return rc;
}

/* A restricted image's service in the manifest also names its probe (Auth 2.0 section 2.1),
 * and the manifest's @context then lists the auth context first. */
static int with_probe(const struct ts_job *job, char **json, struct ts_err *err)
{
    json_t *doc = json_loads(*json, 0, NULL);
    json_t *canvas = json_array_get(json_object_get(doc, "items"), 0);
    json_t *page = json_array_get(json_object_get(canvas, "items"), 0);
    json_t *anno = json_array_get(json_object_get(page, "items"), 0);
    json_t *body = json_object_get(anno, "body");
    json_t *service = json_array_get(json_object_get(body, "service"), 0);
    json_t *probe = service ? ts_access_probe_service(job, false) : NULL;
    int rc = probe && !json_object_set_new(service, "service", json_pack("[o]", probe))
                 ? ts_access_context_first(doc)
                 : TS_ENOMEM;
    char *text = rc ? NULL : json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (!text)
        return ts_fail(err, TS_ENOMEM, "out of memory building the manifest");
    free(*json);
    *json = text;
    return TS_OK;
}

static int produce_manifest(const struct ts_app *app, const struct ts_job *job,
                            const struct ts_image_info *info, struct ts_product *out,
                            struct ts_err *err)
{
    (void)app;
    const struct web_ctx *c = job->ctx;
    const char *slash = strrchr(c->path, '/');
    struct web_manifest_params p = {(const char *)c->base.data, c->path,
                                    slash ? slash + 1 : c->path, info};
    char *json = NULL;
    int rc = web_manifest_json(&p, &json, err);
    if (rc)
        return rc;
    if (ts_access_private(job))
        rc = with_probe(job, &json, err);
    rc = rc ? rc : ts_product_text(out, json, err);
    free(json);
    return rc;
}

#define PRESENTATION_TYPE                                                                          \
    "application/ld+json;profile=\"http://iiif.io/api/presentation/3/context.json\""

/* A page with a producer: its context holds the decoded rest of the path and the base. */
static int page_job(const struct ts_app *app, const struct ts_request *req, const char *rest,
                    enum ts_job_kind kind, ts_produce_fn produce, struct ts_job *job,
                    struct ts_err *err)
{
    ts_job_init(job, kind);
    struct web_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return ts_fail(err, TS_ENOMEM, "out of memory");
    job->ctx = c;
    job->ctx_free = ctx_free;
    job->produce = produce;
    ts_buf_init_capped(&c->base, WEB_BASE_MAX);
    int rc = decode_rest(rest, c->path, sizeof c->path, err);
    if (rc)
        return rc;
    rc = ts_app_public_base(app, req, &c->base);
    job->vary_host = true;
    return rc || !ts_buf_str(&c->base) ? ts_fail(err, rc ? rc : TS_ENOMEM, "Host too long") : TS_OK;
}

/* A file from pages/ or the npm packages (confined below the web directory). */
static int file_job(const struct ts_app *app, const char *rel, const char *type, struct ts_job *job,
                    struct ts_err *err)
{
    ts_job_init(job, TS_JOB_FILE);
    char path[WEB_PATH_MAX];
    int rc = web_static_path(web_dir(app), rel, path, sizeof path, err);
    if (rc)
        return rc;
    ts_product_set_type(&job->out, type ? type : web_content_type(path));
    rc = ts_buf_append_str(&job->file, path);
    rc = rc ? rc
            : (type ? html_headers(job)
                    : ts_job_add_header(job, "X-Content-Type-Options", "nosniff"));
    return rc ? ts_fail(err, rc, "path too long") : TS_OK;
}

static int viewer_job(const struct ts_app *app, const char *rest, struct ts_job *job,
                      struct ts_err *err)
{
    char id[WEB_PATH_MAX];
    int rc = decode_rest(rest, id, sizeof id, err);
    rc = rc ? rc : source_check_identifier(id, err);
    rc = rc ? rc : file_job(app, "viewer.html", "text/html; charset=utf-8", job, err);
    /* A viewer for an image that is not there would only show a broken canvas: the core
     * resolves the identifier first and says so. */
    rc = rc ? rc : ts_buf_append_str(&job->identifier, id);
    return rc < 0 && !err->msg[0] ? ts_fail(err, rc, "identifier too long") : rc;
}

static const char *after_prefix(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(path, prefix, n) ? NULL : path + n;
}

int web_job(const struct ts_app *app, const struct ts_request *req, struct ts_job *job,
            struct ts_err *err)
{
    const char *path = req->path, *rest;
    int rc;
    if (!strcmp(path, "/") || (rest = after_prefix(path, "/browse/")) != NULL) {
        rc = page_job(app, req, strcmp(path, "/") ? rest : "", TS_JOB_PAGE, produce_browse, job,
                      err);
        return rc ? rc : html_headers(job);
    }
    if (!strcmp(path, "/collection") || !strcmp(path, "/collection/") ||
        (rest = after_prefix(path, "/collection/")) != NULL) {
        bool root = !strcmp(path, "/collection") || !strcmp(path, "/collection/");
        rc = page_job(app, req, root ? "" : rest, TS_JOB_PAGE, produce_collection, job, err);
        ts_product_set_type(&job->out, PRESENTATION_TYPE);
        return rc;
    }
    if ((rest = after_prefix(path, "/manifest/")) != NULL) {
        rc = page_job(app, req, rest, TS_JOB_IMAGE, produce_manifest, job, err);
        if (rc)
            return rc;
        const struct web_ctx *c = job->ctx;
        job->needs_info = true;
        job->access.describes = true; /* it names the image's probe service, even refused */
        ts_product_set_type(&job->out, PRESENTATION_TYPE);
        rc = ts_buf_append_str(&job->identifier, c->path);
        rc = rc ? rc : ts_buf_appendf(&job->key, "manifest %s", (const char *)c->base.data);
        return rc ? ts_fail(err, rc, "request too long") : TS_OK;
    }
    if ((rest = after_prefix(path, "/viewer/")) != NULL)
        return viewer_job(app, rest, job, err);
    if (!strcmp(path, "/mirador") || !strcmp(path, "/mirador/"))
        return file_job(app, "mirador.html", "text/html; charset=utf-8", job, err);
    if ((rest = after_prefix(path, "/static/")) != NULL) {
        char rel[WEB_PATH_MAX];
        rc = url_decode(rest, strlen(rest), rel, sizeof rel, 0, err);
        return rc ? rc : file_job(app, rel, NULL, job, err);
    }
    return TS_DECLINED;
}
