/* iipsrv environment variables -> struct ts_config, so an iipsrv deployment keeps its settings. */
#include "config_env.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int env_int(const char *name, const char *v, long long min, long long max, long long *out,
                   struct ts_err *err)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    while (*end == ' ')
        end++;
    if (errno || end == v || *end || n < min || n > max)
        return ts_fail(err, TS_EINVAL, "%s wants a number from %lld to %lld, got '%s'", name, min,
                       max, v);
    *out = n;
    return TS_OK;
}

static int env_str(const char *name, const char *v, char *dst, size_t size, struct ts_err *err)
{
    if (strlen(v) >= size)
        return ts_fail(err, TS_EINVAL, "%s is too long", name);
    memcpy(dst, v, strlen(v) + 1);
    return TS_OK;
}

/* FILESYSTEM_PREFIX is a string glued before every path. A directory (with or without its
 * trailing slash) becomes the image root; a prefix that ends inside a file name cannot be a
 * root and is refused with a reason rather than half-honoured. */
static int apply_prefix(struct ts_config *cfg, const char *v, struct ts_err *err)
{
    char dir[TS_CONFIG_PATH_MAX];
    int rc = env_str("FILESYSTEM_PREFIX", v, dir, sizeof dir, err);
    if (rc)
        return rc;
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        dir[--n] = '\0';
    if (!n)
        return TS_OK;
    if (v[strlen(v) - 1] != '/') {
        FILE *probe = fopen(dir, "r");
        bool exists = probe != NULL;
        if (probe)
            fclose(probe);
        if (!exists)
            return ts_fail(err, TS_EINVAL,
                           "FILESYSTEM_PREFIX '%s' must name a directory (file-name prefixes "
                           "are not supported)",
                           v);
    }
    memcpy(cfg->root, dir, n + 1);
    return TS_OK;
}

/* iipsrv logs an unknown protocol and serves without the map; a map that silently does nothing
 * is worse than not starting. */
static bool uri_map_protocol_known(const char *name)
{
    static const char *const known[] = {"iip", "iiif", "deepzoom", "zoomify"};
    while (*name == ' ')
        name++;
    size_t n = strlen(name);
    while (n && name[n - 1] == ' ')
        n--;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strlen(known[i]) == n && !strncasecmp(known[i], name, n))
            return true;
    return false;
}

static int apply(struct ts_config *cfg, ts_env_lookup get, struct ts_err *err)
{
    const char *v;
    long long n = 0;
    int rc = TS_OK;
    if ((v = get("FILESYSTEM_PREFIX")) && *v && (rc = apply_prefix(cfg, v, err)))
        return rc;
    if ((v = get("FILESYSTEM_SUFFIX")) &&
        (rc = env_str("FILESYSTEM_SUFFIX", v, cfg->fs_suffix, sizeof cfg->fs_suffix, err)))
        return rc;
    if ((v = get("JPEG_QUALITY")) && *v) {
        if ((rc = env_int("JPEG_QUALITY", v, 1, 100, &n, err)))
            return rc;
        cfg->jpeg_quality = (int)n;
    }
    /* iipsrv's switch is on or off: on sends every stored tile as is, which is "always" here
     * (an explicit on keeps iipsrv's bytes); unset leaves Tessera's default rule. */
    if ((v = get("CODEC_PASSTHROUGH")) && *v) {
        if ((rc = env_int("CODEC_PASSTHROUGH", v, INT_MIN, INT_MAX, &n, err)))
            return rc;
        snprintf(cfg->passthrough, sizeof cfg->passthrough, "%s", n ? "always" : "never");
    }
    if ((v = get("MAX_CVT")) && *v) {
        if ((rc = env_int("MAX_CVT", v, -1, UINT32_MAX - 1, &n, err)))
            return rc;
        /* -1 (and 0) lift the limit in iipsrv. */
        cfg->max_cvt = n <= 0 ? UINT32_MAX : (uint32_t)n;
        if (n > 0 && !cfg->max_width) {
            cfg->max_width = (uint32_t)n;
            cfg->max_height = (uint32_t)n;
        }
    }
    if ((v = get("MAX_IMAGE_CACHE_SIZE")) && *v) {
        /* Megabytes, possibly fractional in iipsrv; whole megabytes here. */
        double mb = strtod(v, NULL);
        if (!(mb >= 0.0) || mb > (double)(1 << 20))
            return ts_fail(err, TS_EINVAL, "MAX_IMAGE_CACHE_SIZE wants megabytes, got '%s'", v);
        cfg->response_cache_mb = (uint64_t)mb;
    }
    if ((v = get("CORS")) && (rc = env_str("CORS", v, cfg->cors, sizeof cfg->cors, err)))
        return rc;
    if ((v = get("URI_MAP")) && *v) {
        if (!strstr(v, "=>"))
            return ts_fail(err, TS_EINVAL, "URI_MAP wants prefix=>protocol, got '%s'", v);
        if (!uri_map_protocol_known(strstr(v, "=>") + 2))
            return ts_fail(err, TS_EINVAL,
                           "URI_MAP names an unknown protocol in '%s' (IIP, IIIF, DeepZoom or "
                           "Zoomify)",
                           v);
        if ((rc = env_str("URI_MAP", v, cfg->uri_map, sizeof cfg->uri_map, err)))
            return rc;
    }
    if ((v = get("IIIF_DELIMITER")) &&
        (rc = env_str("IIIF_DELIMITER", v, cfg->iiif_delimiter, sizeof cfg->iiif_delimiter, err)))
        return rc;
    /* iipsrv finds sequences ("{name}{pattern}{h}_{v}.tif") by globbing; Tessera has no
     * sequences, and a set pattern means a deployment that relies on them. */
    if ((v = get("FILENAME_PATTERN")) && *v)
        return ts_fail(err, TS_EUNSUPPORTED,
                       "FILENAME_PATTERN is not supported: Tessera serves no image sequences "
                       "(unset it to start)");
    if ((v = get("BASE_URL")) && *v &&
        (rc = env_str("BASE_URL", v, cfg->base_url, sizeof cfg->base_url, err)))
        return rc;
    if ((v = get("IIIF_VERSION")) && *v) {
        if ((rc = env_int("IIIF_VERSION", v, 1, 3, &n, err)))
            return rc;
        cfg->default_version = (int)n;
    }
    /* iipsrv writes its log only at VERBOSITY >= 1; Tessera's access log is the nearest. */
    long long verbosity = 1;
    if ((v = get("VERBOSITY")) && *v && (rc = env_int("VERBOSITY", v, 0, 10, &verbosity, err)))
        return rc;
    if ((v = get("LOGFILE")) && *v && verbosity > 0 &&
        (rc = env_str("LOGFILE", v, cfg->access_log, sizeof cfg->access_log, err)))
        return rc;
    if (verbosity == 0)
        cfg->access_log[0] = '\0';
    if ((v = get("MEMCACHED_SERVERS")) && *v)
        fprintf(stderr, "tessera: MEMCACHED_SERVERS is not supported; the in-memory response "
                        "cache is used instead\n");
    return TS_OK;
}

static const char *lookup_getenv(const char *name)
{
    return getenv(name);
}

int ts_config_from_env_with(struct ts_config *cfg, ts_env_lookup lookup, struct ts_err *err)
{
    return apply(cfg, lookup ? lookup : lookup_getenv, err);
}

int ts_config_from_env(struct ts_config *cfg, struct ts_err *err)
{
    return ts_config_from_env_with(cfg, lookup_getenv, err);
}
