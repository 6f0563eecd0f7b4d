/* Path prefix -> protocol; methods, CORS and the access log, the same for every front end. */
#include "protocol/compat.h"
#include "protocol/iiif.h"
#include "core/app.h"
#include "core/engine.h"
#include "web/web.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void route(struct ts_app *app, const struct ts_request *req, struct ts_response *res)
{
    const char *path = req->path;
    if (!strcmp(path, "/health")) {
        ts_response_set_type(res, "text/plain; charset=utf-8");
        ts_buf_appendf(&res->body, "ok\n");
        return;
    }
    if (req->fast_only && req->query) {
        res->status = 0; /* iipsrv-style queries are served by the workers */
        return;
    }
    if (compat_handle(app, req, res))
        return;
    static const struct { const char *prefix; int version; } versions[] = {
        {"/iiif/3/", 3}, {"/iiif/2/", 2}, {"/iiif/1/", 1}};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        size_t n = strlen(versions[i].prefix);
        if (!strncmp(path, versions[i].prefix, n)) {
            char prefix[16];
            snprintf(prefix, sizeof prefix, "%.*s", (int)(n - 1), versions[i].prefix);
            iiif_handle(app, versions[i].version, prefix, path + n, req, res);
            return;
        }
    }
    if (!strncmp(path, "/iiif/", 6)) {
        iiif_handle(app, app->cfg.default_version, "/iiif", path + 6, req, res);
        return;
    }
    if (web_handle(app, req, res))
        return;
    ts_response_error(res, 404, "no such route");
}

void router_handle(struct ts_app *app, const struct ts_request *req, struct ts_response *res)
{
    const char *m = req->method;
    if (req->fast_only && (strncmp(req->path, "/iiif/", 6) != 0 ||
                           (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0))) {
        res->status = 0; /* only IIIF knows how to answer cheaply: leave it to a worker */
        return;
    }
    if (!strcmp(m, "OPTIONS")) {
        /* CORS preflight: any origin may GET our images and info. */
        res->status = 204;
        ts_response_add_header(res, "Access-Control-Allow-Methods", "GET, HEAD, OPTIONS");
        const char *asked = ts_request_header(req, "Access-Control-Request-Headers");
        ts_response_add_header(res, "Access-Control-Allow-Headers", "%s",
                               asked && strlen(asked) < 512 ? asked : "Accept, If-None-Match");
        ts_response_add_header(res, "Access-Control-Max-Age", "86400");
        ts_response_add_header(res, "Allow", "GET, HEAD, OPTIONS");
    } else if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
        ts_response_error(res, 405, "only GET, HEAD and OPTIONS are supported");
        ts_response_add_header(res, "Allow", "GET, HEAD, OPTIONS");
    } else {
        route(app, req, res);
        if (res->status == 0)
            return; /* deferred to a worker: it will add the headers */
    }
    /* iipsrv's CORS variable may name one origin; by default any origin may use us. */
    ts_response_add_header(res, "Access-Control-Allow-Origin", "%s",
                           app->cfg.cors[0] ? app->cfg.cors : "*");
    ts_response_add_header(res, "Access-Control-Expose-Headers", "Link, ETag, Last-Modified");
}

void router_log(struct ts_app *app, const char *remote, const struct ts_request *req,
                const struct ts_response *res, double millis)
{
    if (res->status >= 400)
        ts_log("%d %s %s: %s", res->status, req->method, req->path, res->reason);
    if (!app->access_log)
        return;
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%d/%b/%Y:%H:%M:%S +0000", &tm);
    pthread_mutex_lock(&app->log_lock);
    fprintf(app->access_log, "%s - - [%s] \"%s %s%s%s\" %d %zu %.2fms\n", remote ? remote : "-",
            stamp, req->method, req->path, req->query ? "?" : "", req->query ? req->query : "",
            res->status, res->body.len, millis);
    fflush(app->access_log);
    pthread_mutex_unlock(&app->log_lock);
}
