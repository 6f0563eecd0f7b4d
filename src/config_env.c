/* iipsrv environment variables -> struct ts_config, so an iipsrv deployment keeps its settings. */
#include "config_env.h"

#include <errno.h>
#include <jansson.h>
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
    cfg->root_given = true;
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

/* A fraction from 0 to 1, as iipsrv's watermark settings take. iipsrv clamps a value outside
 * that range; a typo that silently became 0 or 1 would be worse than not starting. */
static int env_fraction(const char *name, const char *v, double *out, struct ts_err *err)
{
    char *end;
    errno = 0;
    double f = strtod(v, &end);
    while (*end == ' ')
        end++;
    if (errno || end == v || *end || !(f >= 0.0 && f <= 1.0))
        return ts_fail(err, TS_EINVAL, "%s wants a number from 0 to 1, got '%s'", name, v);
    *out = f;
    return TS_OK;
}

/* Output encoders: iipsrv's quality knobs onto Tessera's, and TIFF compressions it can write. */
static int apply_encoders(struct ts_config *cfg, ts_env_lookup get, struct ts_err *err)
{
    const char *v;
    long long n = 0;
    int rc;
    if ((v = get("WEBP_QUALITY")) && *v) {
        if ((rc = env_int("WEBP_QUALITY", v, -1, 100, &n, err)))
            return rc;
        /* iipsrv's -1 asks for lossless WebP, which the encoder here does not write. */
        if (n < 1)
            return ts_fail(err, TS_EUNSUPPORTED,
                           "WEBP_QUALITY=%lld is not supported: Tessera writes lossy WebP only "
                           "(use 1 to 100)",
                           n);
        cfg->webp_quality = (int)n;
    }
    if ((v = get("PNG_QUALITY")) && *v) {
        if ((rc = env_int("PNG_QUALITY", v, 0, 9, &n, err)))
            return rc;
        cfg->png_level = (int)n;
    }
    long long comp = 2; /* iipsrv's default: deflate */
    if ((v = get("TIFF_COMPRESSION")) && *v) {
        if ((rc = env_int("TIFF_COMPRESSION", v, 0, 5, &comp, err)))
            return rc;
        if (comp > 2)
            return ts_fail(err, TS_EUNSUPPORTED,
                           "TIFF_COMPRESSION=%lld (%s) is not supported: Tessera writes TIFF "
                           "uncompressed (0), LZW (1) or deflate (2)",
                           comp,
                           comp == 3   ? "JPEG"
                           : comp == 4 ? "WebP"
                                       : "Zstandard");
        cfg->tiff_compression = (int)comp;
    }
    if ((v = get("TIFF_QUALITY")) && *v) {
        if ((rc = env_int("TIFF_QUALITY", v, 0, 100, &n, err)))
            return rc;
        /* iipsrv hands it to the codec: deflate takes it as the zlib level, the others have
         * no level, so it changes nothing for them there either. */
        if (comp == 2) {
            if (n < 1 || n > 9)
                return ts_fail(err, TS_EUNSUPPORTED,
                               "TIFF_QUALITY=%lld is not supported with deflate: use a level "
                               "from 1 to 9",
                               n);
            cfg->tiff_level = (int)n;
        }
    }
    if ((v = get("AVIF_QUALITY")) && *v)
        return ts_fail(err, TS_EUNSUPPORTED,
                       "AVIF_QUALITY is not supported: Tessera does not write AVIF (unset it)");
    if ((v = get("AVIF_CODEC")) && *v)
        return ts_fail(err, TS_EUNSUPPORTED,
                       "AVIF_CODEC is not supported: Tessera does not write AVIF (unset it)");
    return TS_OK;
}

/* Decoding and rendering choices iipsrv offers; each is accepted only for the value whose
 * behaviour Tessera already has. */
static int apply_rendering(struct ts_config *cfg, ts_env_lookup get, struct ts_err *err)
{
    const char *v;
    long long n = 0;
    int rc;
    if ((v = get("ALLOW_UPSCALING")) && *v) {
        if ((rc = env_int("ALLOW_UPSCALING", v, LLONG_MIN + 1, LLONG_MAX, &n, err)))
            return rc;
        cfg->allow_upscaling = n != 0; /* iipsrv: every value but 0 is true */
    }
    /* iipsrv resizes CVT output with nearest neighbour (0) or bilinear (anything else);
     * Tessera always uses its Lanczos3 filter, which is at least as sharp as bilinear, but
     * asking for nearest neighbour means wanting blocky pixels, which it cannot give. */
    if ((v = get("INTERPOLATION")) && *v) {
        if ((rc = env_int("INTERPOLATION", v, 0, LLONG_MAX, &n, err)))
            return rc;
        if (n == 0)
            return ts_fail(err, TS_EUNSUPPORTED,
                           "INTERPOLATION=0 (nearest neighbour) is not supported: Tessera "
                           "always resamples with Lanczos3 (unset it or set 1)");
        fprintf(stderr, "tessera: INTERPOLATION=%lld: resampling with Lanczos3, not bilinear\n", n);
    }
    /* Tessera converts embedded ICC profiles to sRGB and embeds none in what it sends; that
     * is iipsrv's MAX_ICC=0, and any other value asks for profiles to be passed on. */
    if ((v = get("MAX_ICC")) && *v) {
        if ((rc = env_int("MAX_ICC", v, LLONG_MIN + 1, LLONG_MAX, &n, err)))
            return rc;
        if (n != 0)
            return ts_fail(err, TS_EUNSUPPORTED,
                           "MAX_ICC=%lld is not supported: Tessera converts ICC profiles to sRGB "
                           "and embeds none (set 0 or unset it)",
                           n);
    }
    /* JPEG 2000 quality layers: Tessera's OpenJPEG decode reads them all (iipsrv's -1; 0 is
     * iipsrv's default, left to the codec). A cap on layers is not offered. */
    if ((v = get("MAX_LAYERS")) && *v) {
        if ((rc = env_int("MAX_LAYERS", v, LLONG_MIN + 1, LLONG_MAX, &n, err)))
            return rc;
        if (n > 0)
            return ts_fail(err, TS_EUNSUPPORTED,
                           "MAX_LAYERS=%lld is not supported: Tessera decodes every JPEG 2000 "
                           "quality layer (set 0 or -1, or unset it)",
                           n);
    }
    if ((v = get("KAKADU_READMODE")) && *v) {
        if ((rc = env_int("KAKADU_READMODE", v, 0, LLONG_MAX, &n, err)))
            return rc;
        if (n != 0)
            return ts_fail(err, TS_EUNSUPPORTED,
                           "KAKADU_READMODE=%lld is not supported: Tessera decodes JPEG 2000 with "
                           "OpenJPEG, which has only the fast mode (set 0 or unset it)",
                           n);
    }
    /* The image is read when the server starts (ts_app_init), which refuses an unreadable one. */
    if ((v = get("WATERMARK")) && *v &&
        (rc = env_str("WATERMARK", v, cfg->watermark, sizeof cfg->watermark, err)))
        return rc;
    /* Without WATERMARK they do nothing, as in iipsrv; a bad value is still an error. */
    if ((v = get("WATERMARK_PROBABILITY")) && *v &&
        (rc = env_fraction("WATERMARK_PROBABILITY", v, &cfg->watermark_probability, err)))
        return rc;
    if ((v = get("WATERMARK_OPACITY")) && *v &&
        (rc = env_fraction("WATERMARK_OPACITY", v, &cfg->watermark_opacity, err)))
        return rc;
    return TS_OK;
}

/* What iipsrv adds to info.json and to its response headers. */
static int apply_iiif_extras(struct ts_config *cfg, ts_env_lookup get, struct ts_err *err)
{
    const char *v;
    long long n = 0;
    int rc;
    if ((v = get("CACHE_CONTROL"))) {
        if (!ts_config_header_value_ok(v))
            return ts_fail(err, TS_EINVAL, "CACHE_CONTROL must be printable ASCII on one line");
        if ((rc = env_str("CACHE_CONTROL", v, cfg->cache_control, sizeof cfg->cache_control, err)))
            return rc;
    }
    if ((v = get("COPYRIGHT"))) {
        /* It goes into JSON, which holds UTF-8 only. */
        json_t *probe = json_string(v);
        json_decref(probe);
        if (!probe)
            return ts_fail(err, TS_EINVAL, "COPYRIGHT must be UTF-8 text");
        if ((rc = env_str("COPYRIGHT", v, cfg->copyright, sizeof cfg->copyright, err)))
            return rc;
    }
    if ((v = get("IIIF_EXTRA_INFO")) && *v) {
        /* iipsrv pastes the text into its JSON, so its users write bare members
         * ("\"a\": 1, \"b\": 2"); an object is taken as well. Either must parse here, so a
         * typo stops the start instead of breaking every info.json. */
        char wrapped[sizeof cfg->iiif_extra_info];
        json_error_t jerr;
        json_t *extra = json_loads(v, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(extra)) {
            json_decref(extra);
            extra = NULL;
            if ((size_t)snprintf(wrapped, sizeof wrapped, "{%s}", v) < sizeof wrapped)
                extra = json_loads(wrapped, JSON_REJECT_DUPLICATES, &jerr);
            if (!json_is_object(extra)) {
                json_decref(extra);
                return ts_fail(err, TS_EINVAL,
                               "IIIF_EXTRA_INFO is neither JSON members nor an object: %s",
                               jerr.text);
            }
            v = wrapped;
        }
        json_decref(extra);
        if ((rc = env_str("IIIF_EXTRA_INFO", v, cfg->iiif_extra_info, sizeof cfg->iiif_extra_info,
                          err)))
            return rc;
    }
    if ((v = get("IIIF_EXTENSIONS")) && *v) {
        if ((rc = env_int("IIIF_EXTENSIONS", v, LLONG_MIN + 1, LLONG_MAX, &n, err)))
            return rc;
        /* iipsrv reads it with atoi: any number but 0 turns the qualities on. */
        cfg->iiif_extensions = n != 0;
    }
    return TS_OK;
}

/* iipsrv's shared memcached cache, the same here: a server list and the entries' lifetime.
 * Debian's stock configuration sets MEMCACHED_SERVERS to localhost; with no memcached there,
 * requests are still answered (one warning, then the local cache only). */
static int apply_memcached(struct ts_config *cfg, ts_env_lookup get, struct ts_err *err)
{
    const char *v;
    long long n = 0;
    int rc;
    if ((v = get("MEMCACHED_SERVERS")) &&
        (rc = env_str("MEMCACHED_SERVERS", v, cfg->memcached_servers, sizeof cfg->memcached_servers,
                      err)))
        return rc;
    if ((v = get("MEMCACHED_TIMEOUT")) && *v) {
        if ((rc = env_int("MEMCACHED_TIMEOUT", v, 0, UINT32_MAX, &n, err)))
            return rc;
        cfg->memcached_ttl = (unsigned)n;
    }
    return TS_OK;
}

/* iipsrv counts cached image descriptions; Tessera's info cache is bounded in bytes. One
 * description (dimensions, pyramid, text tags) takes a few kilobytes, so n images become
 * n * 4 KB, whole megabytes, at least 1; -1 (unbounded in iipsrv) becomes the largest size
 * --info-cache accepts, and 0 turns the cache off as it does there. */
static uint64_t info_cache_mb_for(long long images)
{
    if (images < 0)
        return 1u << 20;
    if (images == 0)
        return 0;
    return ((uint64_t)images * 4096 + (1u << 20) - 1) >> 20;
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
    /* Image sequences: "{name}{pattern}{h}_{v}.tif", served when the name itself is no file. */
    if ((v = get("FILENAME_PATTERN")) && (rc = env_str("FILENAME_PATTERN", v, cfg->filename_pattern,
                                                       sizeof cfg->filename_pattern, err)))
        return rc;
    /* iipsrv's BASE_URL is everything before the identifier, not a scheme and host: behind
     * IIPImage's /iiif/ rewrite it is set to "https://host/iiif/", and --base-url would make
     * that ".../iiif/iiif/id". */
    if ((v = get("BASE_URL")) && *v &&
        (rc = env_str("BASE_URL", v, cfg->iiif_id_base, sizeof cfg->iiif_id_base, err)))
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
    if ((v = get("MAX_METADATA_CACHE_SIZE")) && *v) {
        if ((rc = env_int("MAX_METADATA_CACHE_SIZE", v, -1, 100000000, &n, err)))
            return rc;
        cfg->info_cache_mb = info_cache_mb_for(n);
    }
    if ((rc = apply_encoders(cfg, get, err)) || (rc = apply_rendering(cfg, get, err)) ||
        (rc = apply_iiif_extras(cfg, get, err)))
        return rc;
    return apply_memcached(cfg, get, err);
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
