/* Static assets of the web front: pages and the viewer bundles, confined to the web directory. */
#include "web/web.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bigger files are not assets of ours (the largest, Mirador's source map, is about 10 MB). */

/* URL prefix -> folder below web_dir: only these parts of the build tree are ever served. */
static const struct {
    const char *prefix;
    const char *dir;
} mounts[] = {
    {"openseadragon/", "vendor/openseadragon"},
    {"mirador/", "vendor/mirador"},
    {"", "pages"},
};

static int check_rel(const char *rel, struct ts_err *err)
{
    if (!*rel)
        return ts_fail(err, TS_ENOTFOUND, "no file named");
    if (rel[0] == '/')
        return ts_fail(err, TS_EFORBIDDEN, "absolute static paths are not allowed");
    for (const char *p = rel; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\')
            return ts_fail(err, TS_EFORBIDDEN, "static path contains a forbidden character");
    for (const char *seg = rel; *seg;) {
        size_t len = strcspn(seg, "/");
        if (len == 0)
            return ts_fail(err, TS_EFORBIDDEN, "static path has an empty segment");
        if (seg[0] == '.')
            return ts_fail(err, TS_EFORBIDDEN,
                           "static path may not contain '.', '..' or hidden "
                           "segments");
        seg += len;
        if (*seg == '/')
            seg++;
    }
    return TS_OK;
}

int web_static_path(const char *web_dir, const char *rel, char *out, size_t size,
                    struct ts_err *err)
{
    int rc = check_rel(rel, err);
    if (rc)
        return rc;
    size_t m = 0;
    while (strncmp(rel, mounts[m].prefix, strlen(mounts[m].prefix)) != 0)
        m++; /* the last mount's empty prefix always matches */
    const char *rest = rel + strlen(mounts[m].prefix);
    if (!*rest)
        return ts_fail(err, TS_ENOTFOUND, "no file named");
    char base[PATH_MAX], real_base[PATH_MAX], candidate[PATH_MAX], real[PATH_MAX];
    int n = snprintf(base, sizeof base, "%s/%s", web_dir, mounts[m].dir);
    if (n < 0 || (size_t)n >= sizeof base || !realpath(base, real_base))
        return ts_fail(err, TS_ENOTFOUND, "web assets are not installed in %s", web_dir);
    n = snprintf(candidate, sizeof candidate, "%s/%s", real_base, rest);
    if (n < 0 || (size_t)n >= sizeof candidate)
        return ts_fail(err, TS_EINVAL, "static path too long");
    if (!realpath(candidate, real))
        return ts_fail(err, TS_ENOTFOUND, "no static file '%s'", rel);
    size_t bl = strlen(real_base);
    if (strncmp(real, real_base, bl) != 0 || real[bl] != '/')
        return ts_fail(err, TS_EFORBIDDEN, "static path resolves outside the web directory");
    struct stat st;
    if (stat(real, &st) != 0 || !S_ISREG(st.st_mode))
        return ts_fail(err, TS_ENOTFOUND, "no static file '%s'", rel);
    if (strlen(real) >= size)
        return ts_fail(err, TS_EINVAL, "static path too long");
    memcpy(out, real, strlen(real) + 1);
    return TS_OK;
}

const char *web_content_type(const char *name)
{
    static const struct {
        const char *ext;
        const char *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".png", "image/png"},
        {".svg", "image/svg+xml"},
        {".ico", "image/x-icon"},
        {".jpg", "image/jpeg"},
        {".gif", "image/gif"},
        {".woff2", "font/woff2"},
        {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (!strcasecmp(dot, types[i].ext))
                return types[i].type;
    return "application/octet-stream";
}
