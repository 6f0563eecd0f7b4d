/* Routing: which protocol a request is for. Nothing here opens files or writes headers. */
#include "server/router.h"
#include "protocol/auth.h"
#include "protocol/compat.h"
#include "protocol/iiif.h"
#include "web/web.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int preflight(const struct ts_request *req, struct ts_job *job)
{
    /* CORS preflight: any origin may GET our images and info. */
    const char *asked = ts_request_header(req, "Access-Control-Request-Headers");
    int rc = ts_job_reply(job, 204, "", "");
    rc = rc ? rc : ts_job_add_header(job, "Access-Control-Allow-Methods", "GET, HEAD, OPTIONS");
    rc = rc ? rc
            : ts_job_add_header(job, "Access-Control-Allow-Headers", "%s",
                                asked && strlen(asked) < 512 ? asked : "Accept, If-None-Match");
    rc = rc ? rc : ts_job_add_header(job, "Access-Control-Max-Age", "86400");
    return rc ? rc : ts_job_add_header(job, "Allow", "GET, HEAD, OPTIONS");
}

static int route_path(const struct ts_app *app, const struct ts_request *req, struct ts_job *job,
                      struct ts_err *err)
{
    const char *path = req->path;
    if (!strcmp(path, "/health"))
        return ts_job_reply(job, 200, "text/plain; charset=utf-8", "ok\n");
    int rc = compat_job(app, req, job, err);
    if (rc != TS_DECLINED)
        return rc;
    static const struct {
        const char *prefix;
        int version;
    } versions[] = {{"/iiif/3/", 3}, {"/iiif/2/", 2}, {"/iiif/1/", 1}};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        size_t n = strlen(versions[i].prefix);
        if (!strncmp(path, versions[i].prefix, n)) {
            char prefix[16];
            snprintf(prefix, sizeof prefix, "%.*s", (int)(n - 1), versions[i].prefix);
            return iiif_job(app, versions[i].version, prefix, path + n, req, job, err);
        }
    }
    if (!strncmp(path, "/iiif/", 6))
        return iiif_job(app, app->cfg.default_version, "/iiif", path + 6, req, job, err);
    rc = auth_job(app, req, job, err);
    if (rc != TS_DECLINED)
        return rc;
    rc = web_job(app, req, job, err);
    if (rc != TS_DECLINED)
        return rc;
    return ts_fail(err, TS_ENOTFOUND, "no such route");
}

int router_route(const struct ts_app *app, const struct ts_request *req, struct ts_job *job,
                 struct ts_err *err)
{
    ts_job_init(job, TS_JOB_REPLY);
    const char *m = req->method;
    if (!strcmp(m, "OPTIONS"))
        return preflight(req, job);
    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
        ts_job_add_header(job, "Allow", "GET, HEAD, OPTIONS");
        return ts_fail(err, TS_EMETHOD, "only GET, HEAD and OPTIONS are supported");
    }
    int rc = route_path(app, req, job, err);
    if (rc > 0) /* a protocol's TS_DECLINED that escaped: nobody took the request */
        rc = ts_fail(err, TS_ENOTFOUND, "no such route");
    return rc;
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
    size_t len;
    ts_response_body(res, &len);
    pthread_mutex_lock(&app->log_lock);
    fprintf(app->access_log, "%s - - [%s] \"%s %s%s%s\" %d %zu %.2fms\n", remote ? remote : "-",
            stamp, req->method, req->path, req->query ? "?" : "", req->query ? req->query : "",
            res->status, len, millis);
    fflush(app->access_log);
    pthread_mutex_unlock(&app->log_lock);
}
