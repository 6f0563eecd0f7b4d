/* iipsrv's entry points: ?IIIF=, ?FIF=, ?DeepZoom=, ?Zoomify= queries and URI_MAP prefixes. */
#include "protocol/compat.h"
#include "protocol/deepzoom.h"
#include "protocol/iiif.h"
#include "protocol/iip.h"
#include "protocol/zoomify.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

enum compat_protocol { COMPAT_NONE, COMPAT_IIP, COMPAT_IIIF, COMPAT_DEEPZOOM, COMPAT_ZOOMIFY };

static enum compat_protocol protocol_named(const char *name, size_t len)
{
    static const struct {
        const char *name;
        enum compat_protocol p;
    } names[] = {
        {"fif", COMPAT_IIP},           {"iip", COMPAT_IIP},         {"iiif", COMPAT_IIIF},
        {"deepzoom", COMPAT_DEEPZOOM}, {"zoomify", COMPAT_ZOOMIFY},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == len && !strncasecmp(names[i].name, name, len))
            return names[i].p;
    return COMPAT_NONE;
}

/* "prefix=>protocol" (iipsrv's URI_MAP); false when malformed or unknown. */
static bool uri_map_parse(const char *map, char *prefix, size_t prefix_size,
                          enum compat_protocol *proto)
{
    const char *arrow = strstr(map, "=>");
    if (!arrow)
        return false;
    const char *pb = map, *pe = arrow;
    while (pb < pe && (*pb == ' ' || *pb == '/'))
        pb++;
    while (pe > pb && (pe[-1] == ' ' || pe[-1] == '/'))
        pe--;
    const char *name = arrow + 2;
    while (*name == ' ')
        name++;
    size_t nlen = strlen(name);
    while (nlen && name[nlen - 1] == ' ')
        nlen--;
    *proto = protocol_named(name, nlen);
    if (*proto == COMPAT_NONE || (size_t)(pe - pb) >= prefix_size)
        return false;
    memcpy(prefix, pb, (size_t)(pe - pb));
    prefix[pe - pb] = '\0';
    return true;
}

/* iipsrv opens every IIIF image as prefix + identifier + FILESYSTEM_SUFFIX, and reads a page
 * index after IIIF_DELIMITER; Tessera's own /iiif/ routes keep identifiers as they are. */
static int iipsrv_identifier(const struct ts_app *app, int rc, bool absolute, struct ts_job *job,
                             struct ts_err *err)
{
    bool plain = !app->cfg.fs_suffix[0] && !app->cfg.iiif_delimiter[0] && !absolute;
    if (rc || plain || !job->identifier.len)
        return rc;
    struct ts_buf mapped;
    ts_buf_init_capped(&mapped, TS_JOB_KEY_MAX);
    const char *name = ts_buf_str(&job->identifier);
    rc = absolute ? ts_buf_append_str(&mapped, "/") : TS_OK;
    rc = rc || !name
             ? ts_fail(err, rc ? rc : TS_ENOMEM, "out of memory")
             : iip_identifier(name, app->cfg.fs_suffix, app->cfg.iiif_delimiter, &mapped, err);
    if (rc) {
        ts_buf_free(&mapped);
        return rc;
    }
    ts_buf_free(&job->identifier);
    job->identifier = mapped;
    return TS_OK;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* The character that ends s[0..*n), decoded, and *n moved before it. */
static int last_decoded(const char *s, size_t *n)
{
    if (*n >= 3 && s[*n - 3] == '%' && hex_digit(s[*n - 2]) >= 0 && hex_digit(s[*n - 1]) >= 0) {
        *n -= 3;
        return hex_digit(s[*n + 1]) * 16 + hex_digit(s[*n + 2]);
    }
    *n -= 1;
    return (unsigned char)s[*n];
}

/* A web server's rewrite (IIPImage's "/iiif/(.*)" => "?IIIF=$1" rules) hands over the client's
 * own path in REQUEST_URI and the rewritten query beside it. When that path ends in
 * "/{arg}", compared decoded because the front ends decode the capture differently, the
 * client's URL was "{prefix}/{arg}": the length of that prefix in the raw path, or -1 when
 * the path is not such a URL (a plain "/fcgi-bin/iipsrv.fcgi?IIIF=" request). */
static long rewritten_prefix(const char *path, const char *arg, size_t len)
{
    size_t p = strlen(path), a = len;
    if (!a)
        return -1;
    while (a) {
        if (!p || last_decoded(arg, &a) != last_decoded(path, &p))
            return -1;
    }
    if (!p || last_decoded(path, &p) != '/')
        return -1;
    return (long)p;
}

/* "%2F" or "/" */
static size_t leading_slash(const char *arg, size_t len)
{
    if (len && *arg == '/')
        return 1;
    return len >= 3 && arg[0] == '%' && arg[1] == '2' && (arg[2] == 'F' || arg[2] == 'f') ? 3 : 0;
}

/* ?IIIF=id/... : the IIIF endpoint. Ids name the URL the client used: the rewritten one when
 * a web server's rewrite led here (as iipsrv builds them from REQUEST_URI), else the same
 * query form. */
static int dispatch_iiif(const struct ts_app *app, const char *path, const char *arg, size_t len,
                         const struct ts_request *req, struct ts_job *job, struct ts_err *err)
{
    /* "IIIF=/abs/path.tif/info.json" (or IIPImage's nginx rule's "IIIF=%2F{id}"): the path's
     * own slashes cannot be told from the URL's, so the leading ones are set aside for parsing
     * and given back to the identifier, which the source layer reads the way iipsrv does. */
    bool absolute = false;
    for (size_t n; (n = leading_slash(arg, len)) > 0; arg += n, len -= n)
        absolute = true;
    long cut = rewritten_prefix(path, arg, len);
    struct ts_buf rest, prefix;
    ts_buf_init_capped(&rest, TS_JOB_KEY_MAX);
    ts_buf_init_capped(&prefix, TS_JOB_KEY_MAX);
    int rc = ts_buf_append(&rest, arg, len);
    if (!rc)
        rc = cut >= 0 ? ts_buf_append(&prefix, path, (size_t)cut)
                      : ts_buf_appendf(&prefix, "%s?IIIF=", path);
    const char *r = rc ? NULL : ts_buf_str(&rest), *p = rc ? NULL : ts_buf_str(&prefix);
    if (r && p)
        rc = iipsrv_identifier(app, iiif_job(app, app->cfg.default_version, p, r, req, job, err),
                               absolute, job, err);
    else
        rc = ts_fail(err, rc ? rc : TS_ENOMEM, "IIIF request too long");
    ts_buf_free(&rest);
    ts_buf_free(&prefix);
    return rc;
}

static int dispatch(const struct ts_app *app, enum compat_protocol proto, const char *path,
                    const char *query, const char *arg, size_t len, const struct ts_request *req,
                    struct ts_job *job, struct ts_err *err)
{
    switch (proto) {
    case COMPAT_IIP: return iip_job(app, query, job, err);
    case COMPAT_IIIF: return dispatch_iiif(app, path, arg, len, req, job, err);
    case COMPAT_DEEPZOOM: return deepzoom_job(app, arg, len, job, err);
    case COMPAT_ZOOMIFY: return zoomify_job(app, arg, len, job, err);
    default: return TS_DECLINED;
    }
}

/* URI_MAP: "/{prefix}/{rest}" is served as "{protocol}={rest}". */
static int handle_mapped(const struct ts_app *app, const struct ts_request *req, struct ts_job *job,
                         enum compat_protocol *used, struct ts_err *err)
{
    char prefix[256];
    enum compat_protocol proto;
    if (!app->cfg.uri_map[0] || !uri_map_parse(app->cfg.uri_map, prefix, sizeof prefix, &proto))
        return TS_DECLINED;
    *used = proto;
    const char *path = req->path;
    size_t plen = strlen(prefix);
    if (*path != '/')
        return TS_DECLINED;
    path++;
    if (plen) {
        if (strncmp(path, prefix, plen) != 0 || path[plen] != '/')
            return TS_DECLINED;
        path += plen + 1;
    }
    /* Tessera's own versioned IIIF routes stay reachable under a mapped "iiif" prefix. */
    if (proto == COMPAT_IIIF && !strcmp(prefix, "iiif") && path[0] >= '1' && path[0] <= '3' &&
        path[1] == '/')
        return TS_DECLINED;
    if (proto == COMPAT_IIP) {
        struct ts_buf query;
        ts_buf_init_capped(&query, TS_JOB_KEY_MAX);
        int rc = ts_buf_appendf(&query, "FIF=%s%s%s", path, req->query ? "&" : "",
                                req->query ? req->query : "");
        const char *q = rc ? NULL : ts_buf_str(&query);
        rc = q ? iip_job(app, q, job, err)
               : ts_fail(err, rc ? rc : TS_ENOMEM, "IIP request too long");
        ts_buf_free(&query);
        return rc;
    }
    if (proto == COMPAT_IIIF) {
        char base[300];
        snprintf(base, sizeof base, "/%s", prefix);
        bool absolute = *path == '/'; /* "/iiif//abs/path.tif/info.json", as in dispatch_iiif */
        path += strspn(path, "/");
        int rc = iiif_job(app, app->cfg.default_version, plen ? base : "", path, req, job, err);
        return iipsrv_identifier(app, rc, absolute, job, err);
    }
    return dispatch(app, proto, req->path, req->query, path, strlen(path), req, job, err);
}

/* The route a request in one of iipsrv's forms is counted under. */
static enum ts_route route_of(enum compat_protocol proto)
{
    switch (proto) {
    case COMPAT_IIP: return TS_ROUTE_IIP;
    case COMPAT_IIIF: return TS_ROUTE_IIIF;
    case COMPAT_DEEPZOOM: return TS_ROUTE_DEEPZOOM;
    case COMPAT_ZOOMIFY: return TS_ROUTE_ZOOMIFY;
    default: return TS_ROUTE_OTHER;
    }
}

static int dispatch_query(const struct ts_app *app, const struct ts_request *req,
                          struct ts_job *job, enum compat_protocol *used, struct ts_err *err)
{
    const char *q = req->query;
    if (!q || !*q)
        return TS_DECLINED;
    /* The first command names the protocol, as in iipsrv's request strings. */
    const char *eq = strchr(q, '=');
    const char *amp = strchr(q, '&');
    if (!eq || (amp && amp < eq))
        return TS_DECLINED;
    enum compat_protocol proto = protocol_named(q, (size_t)(eq - q));
    if (proto == COMPAT_NONE)
        return TS_DECLINED;
    *used = proto;
    const char *arg = eq + 1;
    size_t len = amp ? (size_t)(amp - arg) : strlen(arg);
    return dispatch(app, proto, req->path, q, arg, len, req, job, err);
}

int compat_job(const struct ts_app *app, const struct ts_request *req, struct ts_job *job,
               struct ts_err *err)
{
    enum compat_protocol used = COMPAT_NONE;
    int rc = handle_mapped(app, req, job, &used, err);
    if (rc == TS_DECLINED)
        rc = dispatch_query(app, req, job, &used, err);
    /* After the protocol's own set-up of the job, which starts it afresh. */
    if (rc != TS_DECLINED)
        job->route = route_of(used);
    return rc;
}
