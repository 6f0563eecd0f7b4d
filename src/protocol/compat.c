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
    static const struct { const char *name; enum compat_protocol p; } names[] = {
        {"fif", COMPAT_IIP},           {"iip", COMPAT_IIP},          {"iiif", COMPAT_IIIF},
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

/* ?IIIF=id/... : the IIIF handler with ids built back into the same query form. */
static void dispatch_iiif(struct ts_app *app, const char *path, const char *arg, size_t len,
                          const struct ts_request *req, struct ts_response *res)
{
    char rest[8192], prefix[4096];
    while (len && *arg == '/') {
        arg++;
        len--;
    }
    if (len >= sizeof rest) {
        ts_response_error(res, 414, "IIIF request too long");
        return;
    }
    memcpy(rest, arg, len);
    rest[len] = '\0';
    snprintf(prefix, sizeof prefix, "%s?IIIF=", path);
    iiif_handle(app, app->cfg.default_version, prefix, rest, req, res);
}

static void dispatch(struct ts_app *app, enum compat_protocol proto, const char *path,
                     const char *query, const char *arg, size_t len, const struct ts_request *req,
                     struct ts_response *res)
{
    switch (proto) {
    case COMPAT_IIP: iip_handle(app, query, req, res); break;
    case COMPAT_IIIF: dispatch_iiif(app, path, arg, len, req, res); break;
    case COMPAT_DEEPZOOM: deepzoom_handle(app, arg, len, req, res); break;
    case COMPAT_ZOOMIFY: zoomify_handle(app, arg, len, req, res); break;
    default: break;
    }
}

/* URI_MAP: "/{prefix}/{rest}" is served as "{protocol}={rest}". */
static bool handle_mapped(struct ts_app *app, const struct ts_request *req,
                          struct ts_response *res)
{
    char prefix[256];
    enum compat_protocol proto;
    if (!app->cfg.uri_map[0] ||
        !uri_map_parse(app->cfg.uri_map, prefix, sizeof prefix, &proto))
        return false;
    const char *path = req->path;
    size_t plen = strlen(prefix);
    if (*path != '/')
        return false;
    path++;
    if (plen) {
        if (strncmp(path, prefix, plen) != 0 || path[plen] != '/')
            return false;
        path += plen + 1;
    }
    /* Tessera's own versioned IIIF routes stay reachable under a mapped "iiif" prefix. */
    if (proto == COMPAT_IIIF && !strcmp(prefix, "iiif") && path[0] >= '1' && path[0] <= '3' &&
        path[1] == '/')
        return false;
    if (proto == COMPAT_IIP) {
        char query[8192];
        snprintf(query, sizeof query, "FIF=%s%s%s", path, req->query ? "&" : "",
                 req->query ? req->query : "");
        iip_handle(app, query, req, res);
        return true;
    }
    if (proto == COMPAT_IIIF) {
        char base[300];
        snprintf(base, sizeof base, "/%s", prefix);
        iiif_handle(app, app->cfg.default_version, plen ? base : "", path, req, res);
        return true;
    }
    dispatch(app, proto, req->path, req->query, path, strlen(path), req, res);
    return true;
}

bool compat_handle(struct ts_app *app, const struct ts_request *req, struct ts_response *res)
{
    if (handle_mapped(app, req, res))
        return true;
    const char *q = req->query;
    if (!q || !*q)
        return false;
    /* The first command names the protocol, as in iipsrv's request strings. */
    const char *eq = strchr(q, '=');
    const char *amp = strchr(q, '&');
    if (!eq || (amp && amp < eq))
        return false;
    enum compat_protocol proto = protocol_named(q, (size_t)(eq - q));
    if (proto == COMPAT_NONE)
        return false;
    const char *arg = eq + 1;
    size_t len = amp ? (size_t)(amp - arg) : strlen(arg);
    dispatch(app, proto, req->path, q, arg, len, req, res);
    return true;
}
