/* The application: configuration, caches and logs every request shares. */
#include "core/app.h"
#include "core/access.h"
#include "core/serve.h"
#include "image/jp2pool.h"
#include "util/cpus.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void ts_log(const char *fmt, ...)
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s tessera: %s\n", stamp, line);
}

static unsigned cores(void)
{
    return ts_cpu_count();
}

int ts_app_init(struct ts_app *app, const struct ts_config *cfg, struct ts_err *err)
{
    memset(app, 0, sizeof *app);
    app->root.fd = -1;
    app->cfg = *cfg;
    pthread_mutex_init(&app->log_lock, NULL);
    atomic_init(&app->rendering, 0);
    app->ncpu = cores();
    if (app->cfg.max_width && !app->cfg.max_height)
        app->cfg.max_height = app->cfg.max_width; /* the spec's inference, made explicit */
    app->limits.max_width = app->cfg.max_width;
    app->limits.max_height = app->cfg.max_height;
    app->limits.max_area = app->cfg.max_area;
    app->limits.rotation_arbitrary = true;
    app->limits.no_upscaling = !app->cfg.allow_upscaling;
    app->limits.iiif_extensions = app->cfg.iiif_extensions;
    app->limits.formats = (1u << TS_FORMAT_JPG) | (1u << TS_FORMAT_PNG) | (1u << TS_FORMAT_WEBP) |
                          (1u << TS_FORMAT_GIF) | (1u << TS_FORMAT_TIF) | (1u << TS_FORMAT_JP2);
    app->enc.jpeg_quality = cfg->jpeg_quality;
    app->enc.webp_quality = cfg->webp_quality;
    app->enc.png_level = cfg->png_level;
    app->enc.tiff_compression = cfg->tiff_compression == 0   ? ENCODE_TIFF_NONE
                                : cfg->tiff_compression == 1 ? ENCODE_TIFF_LZW
                                                             : ENCODE_TIFF_DEFLATE;
    app->enc.tiff_level = cfg->tiff_level;
    /* Parsed once: every info.json merges the same members. */
    if (cfg->iiif_extra_info[0]) {
        json_error_t jerr;
        app->info_extra = json_loads(cfg->iiif_extra_info, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(app->info_extra)) {
            bool parsed = app->info_extra != NULL;
            json_decref(app->info_extra);
            app->info_extra = NULL;
            return ts_fail(err, TS_EINVAL, "IIIF_EXTRA_INFO must be a JSON object%s%s",
                           parsed ? "" : ": ", parsed ? "" : jerr.text);
        }
    }
    /* A bad rule is a configuration error at start, not a 400 on every image later. */
    int rc = passthrough_rule_parse(cfg->passthrough, &app->passthrough, err);
    if (rc)
        return rc;
    app->passthrough.out_quality = cfg->jpeg_quality;
    /* Read once here, so a missing or broken file stops the start rather than every render. */
    if (cfg->watermark[0]) {
        rc = render_watermark_load(cfg->watermark, cfg->watermark_opacity,
                                   cfg->watermark_probability, cfg->default_tile, &app->watermark,
                                   err);
        if (rc) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            return ts_fail(err, rc, "WATERMARK (--watermark): %s", why);
        }
    }
    /* Checked at start: a rule without a secret, or a mark it names without one, stops it. */
    rc = ts_access_parse(cfg->access_rules, &app->access, err);
    if (rc == TS_OK && app->access && app->access->mark_degraded_only && !cfg->watermark[0])
        rc = ts_fail(err, TS_EINVAL, "degraded-watermark needs --watermark (the mark to add)");
    if (rc)
        return rc;
    size_t mb = 1024 * 1024;
    /* One per core: the slow lane's threads run at a lower priority than the fast lane's, so
     * tiles keep their CPU however many big renders run (before the lanes, one big render per
     * core stalled tiles for 1.9 s in the soak test, and the default was half the cores). */
    unsigned heavy = cfg->heavy_renders ? cfg->heavy_renders : cores();
    /* 32 MB is about a 2000x2000 render: tiles and thumbnails stay well below it. */
    admission_init(&app->admission, (size_t)cfg->request_memory_mb * mb,
                   (size_t)cfg->render_memory_mb * mb, 32 * mb, heavy, cfg->heavy_queue,
                   cfg->queue_wait_ms);
    if (access(cfg->root, R_OK | X_OK) != 0)
        return ts_fail(err, TS_EINVAL, "image root %s is not a readable directory", cfg->root);
    /* Before any worker thread exists: decoders take the priority of the thread forking them. */
    rc = ts_jp2pool_start(err);
    rc = rc ? rc : source_root_open(cfg->root, app->cfg.demo_image, &app->root, err);
    if (!rc && cfg->open_anywhere) {
        rc = source_root_allow_anywhere(&app->root, err);
        if (!rc)
            ts_log("no image root given (--root or FILESYSTEM_PREFIX): relative identifiers are "
                   "read below %s, full paths anywhere this process may read, as iipsrv does; "
                   "set FILESYSTEM_PREFIX to confine them",
                   app->root.path);
    }
    rc = rc ? rc : core_init(app, err);
    if (rc)
        return rc;
    if (!strcmp(cfg->access_log, "-")) {
        app->access_log = stdout;
    } else if (cfg->access_log[0]) {
        app->access_log = fopen(cfg->access_log, "a");
        if (!app->access_log)
            return ts_fail(err, TS_EIO, "cannot open access log %s", cfg->access_log);
    }
    return TS_OK;
}

void ts_app_free(struct ts_app *app)
{
    core_free(app);
    render_watermark_free(&app->watermark);
    ts_access_free(app->access);
    app->access = NULL;
    json_decref(app->info_extra);
    app->info_extra = NULL;
    admission_destroy(&app->admission);
    source_root_close(&app->root);
    if (app->access_log && app->access_log != stdout)
        fclose(app->access_log);
    app->access_log = NULL;
    pthread_mutex_destroy(&app->log_lock);
}

void ts_app_reopen_log(struct ts_app *app)
{
    if (!app->access_log || app->access_log == stdout)
        return;
    pthread_mutex_lock(&app->log_lock);
    FILE *fresh = fopen(app->cfg.access_log, "a");
    if (fresh) {
        fclose(app->access_log);
        app->access_log = fresh;
    }
    pthread_mutex_unlock(&app->log_lock);
    if (!fresh)
        ts_log("cannot reopen access log %s; keeping the old one", app->cfg.access_log);
}

/* ":port" at the end of a Host (1 to 5 digits, at most 65535), or nothing. */
static bool port_is_sane(const char *p)
{
    if (!*p)
        return true;
    if (*p++ != ':' || !*p || strlen(p) > 5)
        return false;
    for (const char *d = p; *d; d++)
        if (*d < '0' || *d > '9')
            return false;
    return atol(p) <= 65535;
}

/* Host headers end up in ids and Location headers, so accept only what RFC 3986 allows a
 * host to be: a name or IPv4 address, or an IPv6 literal in brackets, then an optional port. */
static bool host_is_sane(const char *host)
{
    if (!host || !*host || strlen(host) > 255)
        return false;
    const char *p = host;
    if (*p == '[') {
        for (p++; *p && *p != ']'; p++)
            if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
                return false;
        if (*p != ']' || p == host + 1)
            return false;
        return port_is_sane(p + 1);
    }
    for (; *p && *p != ':'; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
            return false;
    return p > host && port_is_sane(p);
}

int ts_app_public_base(const struct ts_app *app, const struct ts_request *req, struct ts_buf *out)
{
    const struct ts_config *cfg = &app->cfg;
    if (cfg->base_url[0]) {
        size_t n = strlen(cfg->base_url);
        while (n > 0 && cfg->base_url[n - 1] == '/')
            n--;
        return ts_buf_append(out, cfg->base_url, n);
    }
    const char *scheme = "http";
    const char *host = NULL;
    if (cfg->trust_proxy) {
        const char *proto = ts_request_header(req, "X-Forwarded-Proto");
        if (proto && (!strcmp(proto, "https") || !strcmp(proto, "http")))
            scheme = proto;
        host = ts_request_header(req, "X-Forwarded-Host");
        if (host && !host_is_sane(host))
            host = NULL;
    }
    if (!host)
        host = ts_request_header(req, "Host");
    if (host_is_sane(host))
        return ts_buf_appendf(out, "%s://%s", scheme, host);
    return ts_buf_appendf(out, "%s://%s:%u", scheme, cfg->listen_host, (unsigned)cfg->listen_port);
}
