/* Maps identifiers to files strictly below the image root. */
#include "image/source.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Tried in order when the identifier names no file as given. */
static const char *const extensions[] = {".tif", ".tiff", ".ptif", ".jpg", ".jpeg", ".png",
                                         ".jp2", ".j2k", ".j2c", ".jph", ".jpx", ".webp", ".tf8", ".btf"};

bool source_has_image_extension(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return false;
    for (size_t i = 0; i < sizeof extensions / sizeof extensions[0]; i++)
        if (!strcasecmp(dot, extensions[i]))
            return true;
    return false;
}

static int check_identifier(const char *id, struct ts_err *err)
{
    if (!*id)
        return ts_fail(err, TS_EINVAL, "empty identifier");
    if (id[0] == '/')
        return ts_fail(err, TS_EFORBIDDEN, "absolute identifiers are not allowed");
    for (const char *p = id; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\')
            return ts_fail(err, TS_EFORBIDDEN, "identifier contains a forbidden character");
    /* Walk the segments: '.' and '..' never name anything under the root. */
    const char *seg = id;
    while (*seg) {
        size_t len = strcspn(seg, "/");
        if (len == 0)
            return ts_fail(err, TS_EFORBIDDEN, "identifier has an empty path segment");
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return ts_fail(err, TS_EFORBIDDEN, "identifier may not contain '.' or '..' segments");
        seg += len;
        if (*seg == '/')
            seg++;
    }
    return TS_OK;
}

static bool below_root(const char *real_root, const char *real_path)
{
    size_t n = strlen(real_root);
    if (strncmp(real_root, real_path, n) != 0)
        return false;
    return real_path[n] == '/' || (n == 1 && real_root[0] == '/');
}

/* 0 = found a regular file, TS_ENOTFOUND = nothing there, other = refused. */
static int try_candidate(const char *real_root, const char *candidate, struct source_file *out,
                         struct ts_err *err)
{
    char real[PATH_MAX];
    if (!realpath(candidate, real))
        return TS_ENOTFOUND;
    if (!below_root(real_root, real))
        return ts_fail(err, TS_EFORBIDDEN, "identifier resolves outside the image root");
    if (stat(real, &out->st) != 0 || !S_ISREG(out->st.st_mode))
        return TS_ENOTFOUND;
    if (strlen(real) >= sizeof out->path)
        return TS_ENOTFOUND;
    memcpy(out->path, real, strlen(real) + 1);
    return TS_OK;
}

static int resolve_file(const char *root, const char *demo_image, const char *identifier,
                        struct source_file *out, struct ts_err *err);

/* "name;N" -> page N-1 of "name", when the whole identifier named nothing. */
static int resolve_page(const char *root, const char *demo_image, const char *identifier,
                        struct source_file *out, struct ts_err *err)
{
    const char *semi = strrchr(identifier, ';');
    if (!semi || semi == identifier || !semi[1] || strlen(semi + 1) > 6 ||
        strspn(semi + 1, "0123456789") != strlen(semi + 1) || semi[1] == '0')
        return TS_ENOTFOUND;
    char base[4096];
    size_t len = (size_t)(semi - identifier);
    if (len >= sizeof base)
        return TS_ENOTFOUND;
    memcpy(base, identifier, len);
    base[len] = '\0';
    int rc = resolve_file(root, demo_image, base, out, err);
    if (rc == TS_OK)
        out->page = (uint32_t)strtoul(semi + 1, NULL, 10) - 1;
    return rc;
}

int source_resolve(const char *root, const char *demo_image, const char *identifier,
                   struct source_file *out, struct ts_err *err)
{
    out->page = 0;
    int rc = resolve_file(root, demo_image, identifier, out, err);
    if (rc != TS_ENOTFOUND)
        return rc;
    struct ts_err page_err;
    if (resolve_page(root, demo_image, identifier, out, &page_err) == TS_OK)
        return TS_OK;
    return rc;
}

static int resolve_file(const char *root, const char *demo_image, const char *identifier,
                        struct source_file *out, struct ts_err *err)
{
    if (demo_image && *demo_image && (!strcmp(identifier, "demo") || !strcmp(identifier, "demo.tif"))) {
        if (stat(demo_image, &out->st) != 0 || !S_ISREG(out->st.st_mode))
            return ts_fail(err, TS_ENOTFOUND, "demo image %s is missing", demo_image);
        snprintf(out->path, sizeof out->path, "%s", demo_image);
        return TS_OK;
    }
    int rc = check_identifier(identifier, err);
    if (rc)
        return rc;
    char real_root[PATH_MAX];
    if (!realpath(root, real_root))
        return ts_fail(err, TS_EIO, "image root %s is not accessible: %s", root, strerror(errno));

    char candidate[PATH_MAX];
    int n = snprintf(candidate, sizeof candidate, "%s/%s", real_root, identifier);
    if (n < 0 || (size_t)n >= sizeof candidate)
        return ts_fail(err, TS_EINVAL, "identifier too long");
    rc = try_candidate(real_root, candidate, out, err);
    if (rc != TS_ENOTFOUND)
        return rc;
    for (size_t i = 0; i < sizeof extensions / sizeof extensions[0]; i++) {
        n = snprintf(candidate, sizeof candidate, "%s/%s%s", real_root, identifier, extensions[i]);
        if (n < 0 || (size_t)n >= sizeof candidate)
            break;
        rc = try_candidate(real_root, candidate, out, err);
        if (rc != TS_ENOTFOUND)
            return rc;
    }
    return ts_fail(err, TS_ENOTFOUND, "no image '%s'", identifier);
}
