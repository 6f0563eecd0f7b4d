/* The web front's routes: folder pages, the viewer, manifests, collections and static assets. */
#include "web/web.h"
#include "core/access.h"
#include "image/source.h"
#include "util/accept.h"
#include "util/url.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef TESSERA_WEB_DIR
#define TESSERA_WEB_DIR "web"
#endif

#define WEB_PATH_MAX 4096
#define WEB_BASE_MAX 1100
#define WEB_THUMB "/full/!200,200/0/default.jpg"
/* Entries on one folder page: enough to scroll through, few enough for a phone to lay out. */
#define WEB_PAGE_SIZE 500

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

/* A file name with line-break opportunities after its separators, where a reader expects them. */
static void append_name(struct ts_buf *b, const char *name)
{
    char one[2] = {0};
    for (const char *p = name; *p; p++) {
        one[0] = *p;
        append_html(b, one);
        if (p[1] && strchr("_-./", *p))
            ts_buf_appendf(b, "<wbr>");
    }
}

static int html_security_headers(struct ts_job *job)
{
    int rc = ts_job_add_header(job, "Content-Security-Policy", WEB_CSP);
    rc = rc ? rc : ts_job_add_header(job, "X-Content-Type-Options", "nosniff");
    return rc ? rc : ts_job_add_header(job, "Referrer-Policy", "same-origin");
}

static int html_headers(struct ts_job *job)
{
    ts_product_set_type(&job->out, "text/html; charset=utf-8");
    return html_security_headers(job);
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
        ts_buf_appendf(b, "\" alt=\"");
        append_html(b, name);
        ts_buf_appendf(b, "\" loading=\"lazy\">");
    } else {
        ts_buf_appendf(b, "<span class=\"folder-icon\" aria-hidden=\"true\"></span>");
    }
    ts_buf_appendf(b, "<span class=\"name\">");
    append_name(b, name);
    ts_buf_appendf(b, "</span></a></li>\n");
}

/* The head every page of ours shares, up to and including <body>. */
static void page_head(struct ts_buf *b, const char *title, const char *body_class)
{
    ts_buf_appendf(b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                      "<link rel=\"icon\" href=\"data:,\"><title>Tessera: ");
    append_html(b, title);
    ts_buf_appendf(b, "</title><link rel=\"stylesheet\" href=\"/static/style.css\">");
    /* Loaded before the thumbnails so that it sees every one that fails (CSP: no inline code). */
    if (!strcmp(body_class, "browse"))
        ts_buf_appendf(b, "<script src=\"/static/browse.js\"></script>");
    ts_buf_appendf(b, "</head>\n<body class=\"%s\">", body_class);
}

/* "Previous", "N-M of T" and "Next" for a folder split into pages of WEB_PAGE_SIZE. */
static void pager(struct ts_buf *b, const char *folder, size_t page, size_t pages, size_t total)
{
    if (pages <= 1)
        return;
    char enc[WEB_PATH_MAX * 3 + 1], href[WEB_PATH_MAX * 3 + 48];
    url_encode(folder, true, enc, sizeof enc);
    size_t first = (page - 1) * WEB_PAGE_SIZE + 1;
    size_t last = page * WEB_PAGE_SIZE < total ? page * WEB_PAGE_SIZE : total;
    ts_buf_appendf(b, "<nav class=\"pager\" aria-label=\"Pages\">");
    if (page > 1) {
        snprintf(href, sizeof href, "%s%s?page=%zu", folder[0] ? "/browse/" : "/", enc, page - 1);
        ts_buf_appendf(b, "<a rel=\"prev\" href=\"");
        append_html(b, href);
        ts_buf_appendf(b, "\">&larr; Previous</a>");
    }
    ts_buf_appendf(b, "<span class=\"count\">%zu&ndash;%zu of %zu &middot; page %zu of %zu</span>",
                   first, last, total, page, pages);
    if (page < pages) {
        snprintf(href, sizeof href, "%s%s?page=%zu", folder[0] ? "/browse/" : "/", enc, page + 1);
        ts_buf_appendf(b, "<a rel=\"next\" href=\"");
        append_html(b, href);
        ts_buf_appendf(b, "\">Next &rarr;</a>");
    }
    ts_buf_appendf(b, "</nav>\n");
}

static size_t page_count(size_t entries)
{
    return entries ? (entries + WEB_PAGE_SIZE - 1) / WEB_PAGE_SIZE : 1;
}

static void listing_page(const struct ts_app *app, const char *folder, const struct web_listing *l,
                         size_t page, struct ts_buf *b)
{
    bool demo = !folder[0] && app->cfg.demo_image[0] && page == 1;
    char enc[WEB_PATH_MAX * 3 + 1], href[WEB_PATH_MAX * 3 + 32], thumb[WEB_PATH_MAX * 3 + 64];
    page_head(b, folder[0] ? folder : "images", "browse");
    ts_buf_appendf(b, "<header><h1>Tessera</h1>");
    breadcrumbs(b, folder);
    url_encode(folder, true, enc, sizeof enc);
    snprintf(href, sizeof href, "/collection%s%s", folder[0] ? "/" : "", enc);
    ts_buf_appendf(b, "<a class=\"iiif-link\" href=\"");
    append_html(b, href);
    ts_buf_appendf(b, "\" title=\"IIIF Presentation 3.0 collection of this folder\">"
                      "IIIF collection</a></header>\n<main>");
    size_t pages = page_count(l->count);
    pager(b, folder, page, pages, l->count);
    ts_buf_appendf(b, "<ul class=\"grid\">\n");
    if (demo)
        listing_item(b, "/viewer/demo", "/iiif/3/demo" WEB_THUMB, "demo", false);
    size_t end = page * WEB_PAGE_SIZE < l->count ? page * WEB_PAGE_SIZE : l->count;
    for (size_t i = (page - 1) * WEB_PAGE_SIZE; i < end; i++) {
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
    pager(b, folder, page, pages, l->count);
    if (!demo && l->count == 0)
        ts_buf_appendf(b, "<p class=\"empty\">No images or folders here.</p>\n");
    if (l->truncated)
        ts_buf_appendf(b,
                       "<p class=\"empty\">This folder holds more than %d entries; only the "
                       "first %d read are listed.</p>\n",
                       WEB_LISTING_MAX, WEB_LISTING_MAX);
    ts_buf_appendf(b, "</main></body></html>\n");
}

/* What a page request carries to its producer. */
struct web_ctx {
    char path[WEB_PATH_MAX]; /* decoded folder or identifier */
    struct ts_buf base;      /* public base URL */
    size_t page;             /* folder pages: 1-based */
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
    size_t pages = page_count(l.count);
    if (c->page > pages) {
        web_listing_free(&l);
        return ts_fail(err, TS_ENOTFOUND, "no page %zu: folder '%s' has %zu", c->page, c->path,
                       pages);
    }
    out->is_text = true;
    listing_page(app, c->path, &l, c->page, &out->text);
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
    /* The folder's own sidecar: the listing proved the folder is below the root, and the read
     * is confined there as image identifiers are. */
    char rel[WEB_PATH_MAX + sizeof WEB_FOLDER_SIDECAR + 1];
    snprintf(rel, sizeof rel, "%s%s" WEB_FOLDER_SIDECAR, c->path, c->path[0] ? "/" : "");
    struct ts_buf text;
    struct ts_err why = {0};
    ts_buf_init_capped(&text, TS_COMPANION_MAX);
    int found = source_read_small(&app->root, rel, TS_COMPANION_MAX, &text, &why);
    if (found != TS_OK && found != TS_ENOTFOUND)
        ts_log("warning: sidecar %s: %s; ignored", rel, why.msg);
    struct web_sidecar sidecar = {found == TS_OK ? (const char *)text.data : NULL, text.len, rel};
    if (sidecar.text && !sidecar.len)
        sidecar.text = "";
    char *json = NULL;
    rc = web_collection_json((const char *)c->base.data, c->path, &l,
                             app->cfg.demo_image[0] != '\0', found == TS_OK ? &sidecar : NULL,
                             app->cfg.copyright[0] ? app->cfg.copyright : NULL, &json, err);
    ts_buf_free(&text);
    web_listing_free(&l);
    if (rc)
        return rc;
    rc = ts_product_text(out, json, err);
    free(json);
    return rc;
}

/* A companion the core read for the job, as a sidecar (all NULL when there is none); a file
 * that is there but could not be read is reported once, here. */
static struct web_sidecar job_sidecar(const struct ts_job *job, int i)
{
    const struct ts_companion *c = &job->companions[i];
    if (c->problem[0])
        ts_log("warning: sidecar %s: %s; ignored", c->rel, c->problem);
    if (!c->found)
        return (struct web_sidecar){0};
    return (struct web_sidecar){c->text.len ? (const char *)c->text.data : "", c->text.len, c->rel};
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
    const struct web_ctx *c = job->ctx;
    const char *slash = strrchr(c->path, '/');
    struct web_manifest_params p = {
        .base = (const char *)c->base.data,
        .identifier = c->path,
        .label = slash ? slash + 1 : c->path,
        .info = info,
        .limits = &ts_job_live(app, job)->limits,
        .pages = job->pages,
        .npages = job->npages,
        .pages_total = job->pages_total,
        .own = job_sidecar(job, 0),
        .folder = job_sidecar(job, 1),
        .copyright = app->cfg.copyright[0] ? app->cfg.copyright : NULL,
    };
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

#define PRESENTATION_PROFILE "http://iiif.io/api/presentation/3/context.json"
#define PRESENTATION_TYPE "application/ld+json;profile=\"" PRESENTATION_PROFILE "\""

/* Presentation 3.0 section 6.3: JSON-LD with the context as its profile unless the client
 * prefers plain JSON; with no Accept at all, JSON-LD. A client that accepts neither still
 * gets JSON-LD, the one representation there is, rather than a 406 a viewer cannot use. */
static const char *presentation_type(const struct ts_request *req)
{
    const char *accept = ts_request_header(req, "Accept");
    if (!accept || !*accept)
        return PRESENTATION_TYPE;
    double ld = ts_accept_q(accept, "application/ld+json");
    double json = ts_accept_q(accept, "application/json");
    return json > 0 && json > ld ? "application/json" : PRESENTATION_TYPE;
}

/* What manifests and collections share: the negotiated type, the Vary it needs, and gzip
 * when the client takes it (section 6.3: descriptions should go compressed). */
static void presentation_job(const struct ts_request *req, struct ts_job *job)
{
    ts_product_set_type(&job->out, presentation_type(req));
    job->vary_accept = true;
    job->compress = true;
}

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

/* The folder page asked for by "page=N" in the query; 1 without one. */
static int page_number(const char *query, size_t *page, struct ts_err *err)
{
    *page = 1;
    for (const char *p = query; p && *p;) {
        size_t len = strcspn(p, "&");
        if (len > 5 && !strncmp(p, "page=", 5)) {
            size_t n = 0, i = 5;
            for (; i < len && p[i] >= '0' && p[i] <= '9' && n <= WEB_LISTING_MAX; i++)
                n = n * 10 + (size_t)(p[i] - '0');
            if (i < len || n == 0 || n > WEB_LISTING_MAX)
                return ts_fail(err, TS_EINVAL, "page must be a number from 1, not '%.*s'",
                               (int)(len - 5 < 40 ? len - 5 : 40), p + 5);
            *page = n;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return TS_OK;
}

/* An error as a page of ours, for people: the status, the reason and the way back. */
static int error_page(int http_status, const char *reason, struct ts_buf *body)
{
    char title[64];
    snprintf(title, sizeof title, "%d %s", http_status, ts_http_reason(http_status));
    page_head(body, title, "error-page");
    ts_buf_appendf(body, "<main class=\"error-box\"><p class=\"code\">%d</p><h1>", http_status);
    append_html(body, ts_http_reason(http_status));
    ts_buf_appendf(body, "</h1><p class=\"reason\">");
    append_html(body, reason);
    ts_buf_appendf(body, "</p><p><a class=\"home\" href=\"/\">&larr; Back to the images</a>"
                         "</p></main></body></html>\n");
    return TS_OK;
}

static const struct ts_error_style web_html_errors = {
    .type = "text/html; charset=utf-8",
    .page = error_page,
};

void web_error_style(const struct ts_request *req, struct ts_job *job)
{
    /* Browsers navigating ask for text/html; scripts, curl and IIIF clients keep the
     * one-line text. Either way a shared cache must tell the two apart. */
    job->vary_accept = true;
    const char *accept = ts_request_header(req, "Accept");
    if (!accept || !strstr(accept, "text/html"))
        return;
    job->errors = &web_html_errors;
    for (int i = 0; i < job->nheaders; i++)
        if (!strcmp(job->headers[i].name, "Content-Security-Policy"))
            return;
    html_security_headers(job);
}

static const char *after_prefix(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(path, prefix, n) ? NULL : path + n;
}

static int route(const struct ts_app *app, const struct ts_request *req, struct ts_job *job,
                 struct ts_err *err)
{
    const char *path = req->path, *rest;
    int rc;
    if (!strcmp(path, "/") || (rest = after_prefix(path, "/browse/")) != NULL) {
        rc = page_job(app, req, strcmp(path, "/") ? rest : "", TS_JOB_PAGE, produce_browse, job,
                      err);
        rc = rc ? rc : page_number(req->query, &((struct web_ctx *)job->ctx)->page, err);
        return rc ? rc : html_headers(job);
    }
    if (!strcmp(path, "/collection") || !strcmp(path, "/collection/") ||
        (rest = after_prefix(path, "/collection/")) != NULL) {
        bool root = !strcmp(path, "/collection") || !strcmp(path, "/collection/");
        rc = page_job(app, req, root ? "" : rest, TS_JOB_PAGE, produce_collection, job, err);
        presentation_job(req, job);
        return rc;
    }
    if ((rest = after_prefix(path, "/manifest/")) != NULL) {
        rc = page_job(app, req, rest, TS_JOB_IMAGE, produce_manifest, job, err);
        if (rc)
            return rc;
        const struct web_ctx *c = job->ctx;
        job->needs_info = true;
        job->wants_pages = true;
        /* Read by the core beside the image once it is resolved; their bytes join the key. */
        job->companions[0] = (struct ts_companion){.name = WEB_SIDECAR_SUFFIX, .beside = true};
        job->companions[1] = (struct ts_companion){.name = WEB_FOLDER_SIDECAR, .beside = false};
        presentation_job(req, job);
        job->access.describes = true; /* it names the image's probe service, even refused */
        rc = ts_buf_append_str(&job->identifier, c->path);
        /* The negotiated type is part of the answer, so of its cache key and ETag. */
        rc = rc ? rc
                : ts_buf_appendf(&job->key, "manifest %s %s", (const char *)c->base.data,
                                 job->out.type);
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

int web_job(const struct ts_app *app, const struct ts_request *req, struct ts_job *job,
            struct ts_err *err)
{
    int rc = route(app, req, job, err);
    if (rc != TS_DECLINED)
        web_error_style(req, job);
    return rc;
}
