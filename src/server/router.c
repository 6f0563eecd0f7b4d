/* Routing: which protocol a request is for. Nothing here opens files or writes headers. */
#include "server/router.h"
#include "protocol/admin.h"
#include "protocol/auth.h"
#include "protocol/compat.h"
#include "protocol/iiif.h"
#include "server/accesslog.h"
#include "server/ops.h"
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

/* route: where the request is counted (set here because each protocol starts its job afresh). */
static int route_path(const struct ts_app *app, const struct ts_request *req, struct ts_job *job,
                      enum ts_route *route, struct ts_err *err)
{
    const char *path = req->path;
    if (!strcmp(path, "/health")) {
        *route = TS_ROUTE_HEALTH;
        return ops_health_job(app, job, err);
    }
    if (!strcmp(path, "/metrics")) {
        *route = TS_ROUTE_METRICS;
        return ops_metrics_job(app, job, err);
    }
    int rc = compat_job(app, req, job, err);
    if (rc != TS_DECLINED) {
        *route = (enum ts_route)job->route;
        return rc;
    }
    *route = TS_ROUTE_IIIF;
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
    *route = TS_ROUTE_WEB;
    rc = web_job(app, req, job, err);
    if (rc != TS_DECLINED)
        return rc;
    *route = TS_ROUTE_OTHER;
    web_error_style(req, job);
    return ts_fail(err, TS_ENOTFOUND, "no such route");
}

int router_route(const struct ts_app *app, const struct ts_request *req, struct ts_job *job,
                 struct ts_err *err)
{
    ts_job_init(job, TS_JOB_REPLY);
    const char *m = req->method;
    if (!strcmp(m, "OPTIONS"))
        return preflight(req, job);
    /* The only route that takes another method; it says which itself. */
    if (!strncmp(req->path, "/admin/", 7))
        return admin_job(app, req, job, err);
    /* A login page's form posts its user and password to its access service. */
    bool form = !strcmp(m, "POST") && !strncmp(req->path, "/auth/access/", 13);
    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0 && !form) {
        ts_job_add_header(job, "Allow", "GET, HEAD, OPTIONS");
        return ts_fail(err, TS_EMETHOD, "only GET, HEAD and OPTIONS are supported");
    }
    enum ts_route route = TS_ROUTE_OTHER;
    int rc = route_path(app, req, job, &route, err);
    if (rc > 0) /* a protocol's TS_DECLINED that escaped: nobody took the request */
        rc = ts_fail(err, TS_ENOTFOUND, "no such route");
    job->route = route;
    return rc;
}

void router_count(struct ts_app *app, const struct ts_job *job, const struct ts_response *res,
                  double millis)
{
    if (app->metrics)
        ts_metrics_request(app->metrics, job ? (enum ts_route)job->route : TS_ROUTE_OTHER,
                           res->status, millis / 1000.0);
}

void router_log(struct ts_app *app, const char *peer, const struct ts_request *req,
                const struct ts_response *res, double millis)
{
    const struct ts_live *live = ts_app_live(app);
    char client[64];
    accesslog_client(peer, ts_request_header(req, "X-Forwarded-For"), app->cfg.trust_proxy,
                     &live->proxies, client, sizeof client);
    if (res->status == 401) /* someone is trying the admin endpoint: say who */
        ts_log("%d %s %s from %s: %s", res->status, req->method, req->path, client, res->reason);
    else if (res->status >= 400)
        ts_log("%d %s %s: %s", res->status, req->method, req->path, res->reason);
    if (!live->access_log_on)
        return;
    size_t len;
    ts_response_body(res, &len);
    struct accesslog_entry e = {
        .client = client,
        .method = req->method,
        .path = req->path,
        .query = req->query,
        .version = req->version,
        .status = res->status,
        /* HEAD is answered with the headers only. */
        .bytes = strcmp(req->method, "HEAD") != 0 ? len : 0,
        .referer = ts_request_header(req, "Referer"),
        .user_agent = ts_request_header(req, "User-Agent"),
        .when = time(NULL),
        .millis = millis,
    };
    struct ts_buf line;
    ts_buf_init_capped(&line, 256 * 1024);
    if (accesslog_format(&e, live->access_log_json, &line) == TS_OK) {
        pthread_mutex_lock(&app->log_lock);
        if (app->access_log) {
            fwrite(line.data, 1, line.len, app->access_log);
            fflush(app->access_log);
        }
        pthread_mutex_unlock(&app->log_lock);
    }
    ts_buf_free(&line);
}
