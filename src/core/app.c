/* The application: configuration, caches and logs every request shares. */
#include "core/app.h"
#include "cache/lru.h"
#include "core/access.h"
#include "core/serve.h"
#include "image/jp2pool.h"
#include "util/cpus.h"

#include <ctype.h>
#include <errno.h>
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

/* The access log named path ("-" = stdout, "" = none) opened for appending: *out. */
static int log_open(const char *path, FILE **out, struct ts_err *err)
{
    *out = NULL;
    if (!strcmp(path, "-"))
        *out = stdout;
    else if (path[0] && !(*out = fopen(path, "a")))
        return ts_fail(err, TS_EIO, "cannot open access log %s: %s", path, strerror(errno));
    return TS_OK;
}

static void log_close(FILE *f)
{
    if (f && f != stdout)
        fclose(f);
}

/* The reloadable settings of cfg, as one snapshot (see struct ts_live). */
static int live_build(const struct ts_config *cfg, struct ts_live **out, struct ts_err *err)
{
    struct ts_live *l = calloc(1, sizeof *l);
    if (!l)
        return ts_fail(err, TS_ENOMEM, "out of memory");
    l->limits.max_width = cfg->max_width;
    /* The spec's inference, made explicit: a maxWidth alone bounds the height too. */
    l->limits.max_height = cfg->max_height ? cfg->max_height : cfg->max_width;
    l->limits.max_area = cfg->max_area;
    l->limits.rotation_arbitrary = true;
    l->limits.no_upscaling = !cfg->allow_upscaling;
    l->limits.iiif_extensions = cfg->iiif_extensions;
    l->limits.formats = (1u << TS_FORMAT_JPG) | (1u << TS_FORMAT_PNG) | (1u << TS_FORMAT_WEBP) |
                        (1u << TS_FORMAT_GIF) | (1u << TS_FORMAT_TIF) | (1u << TS_FORMAT_JP2);
    l->enc.jpeg_quality = cfg->jpeg_quality;
    l->enc.webp_quality = cfg->webp_quality;
    l->enc.png_level = cfg->png_level;
    l->enc.tiff_compression = cfg->tiff_compression == 0   ? ENCODE_TIFF_NONE
                              : cfg->tiff_compression == 1 ? ENCODE_TIFF_LZW
                                                           : ENCODE_TIFF_DEFLATE;
    l->enc.tiff_level = cfg->tiff_level;
    l->cache_max_age = cfg->cache_max_age;
    snprintf(l->cache_control, sizeof l->cache_control, "%s", cfg->cache_control);
    l->request_deadline = cfg->request_deadline;
    l->access_log_on = cfg->access_log[0] != '\0';
    l->access_log_json = !strcmp(cfg->access_log_format, "json");
    /* A bad rule is a configuration error at start, not a 400 on every image later. */
    int rc = passthrough_rule_parse(cfg->passthrough, &l->passthrough, err);
    l->passthrough.out_quality = cfg->jpeg_quality;
    rc = rc ? rc : ts_config_admin_token(cfg, l->admin_token, sizeof l->admin_token, err);
    rc = rc ? rc : ts_ipset_parse(cfg->trusted_proxies, &l->proxies, err);
    if (rc) {
        free(l);
        return rc;
    }
    *out = l;
    return TS_OK;
}

const struct ts_live *ts_app_live(const struct ts_app *app)
{
    return atomic_load_explicit(&((struct ts_app *)app)->live, memory_order_acquire);
}

const char *ts_app_place(const struct ts_app *app, const struct source_file *src, char *buf,
                         size_t size)
{
    if (src->demo)
        return src->path;
    size_t n = strlen(app->root.path);
    if (!strncmp(src->path, app->root.path, n) && src->path[n] == '/')
        return src->path + (n == 1 ? 0 : n);
    for (unsigned i = 0; app->local_roots && i < app->cfg.nsource_rules; i++) {
        const struct source_root *r = &app->local_roots[i];
        size_t m = strlen(r->path);
        if (r->fd >= 0 && !strncmp(src->path, r->path, m) && src->path[m] == '/') {
            int k = snprintf(buf, size, "/%s%s", app->cfg.source_rules[i].prefix,
                             src->path + (m == 1 ? 0 : m));
            if (k > 0 && (size_t)k < size)
                return buf;
        }
    }
    return src->path;
}

const struct ts_live *ts_job_live(const struct ts_app *app, const struct ts_job *job)
{
    return job && job->live ? job->live : ts_app_live(app);
}

int ts_app_init(struct ts_app *app, const struct ts_config *cfg, struct ts_err *err)
{
    memset(app, 0, sizeof *app);
    app->root.fd = -1;
    app->cfg = *cfg;
    pthread_mutex_init(&app->log_lock, NULL);
    atomic_init(&app->rendering, 0);
    atomic_init(&app->live, NULL);
    app->ncpu = cores();
    struct ts_live *live;
    int rc = live_build(cfg, &live, err);
    if (rc)
        return rc;
    atomic_store_explicit(&app->live, live, memory_order_release);
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
    /* Before any worker thread exists and before the caches fill: the zygote forked here forks
     * every JPEG 2000 decoder, which takes its priority and none of the server's later memory. */
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
    /* Before core_init: the remote sources it sets up count their requests in the metrics. */
    if (rc == TS_OK && ts_metrics_create(&app->metrics) != TS_OK)
        rc = ts_fail(err, TS_ENOMEM, "out of memory");
    rc = rc ? rc : core_init(app, err);
    if (rc)
        return rc;
    snprintf(app->access_log_path, sizeof app->access_log_path, "%s", cfg->access_log);
    return log_open(cfg->access_log, &app->access_log, err);
}

void ts_app_free(struct ts_app *app)
{
    core_free(app);
    ts_metrics_destroy(app->metrics);
    app->metrics = NULL;
    render_watermark_free(&app->watermark);
    ts_access_free(app->access);
    app->access = NULL;
    json_decref(app->info_extra);
    app->info_extra = NULL;
    admission_destroy(&app->admission);
    source_root_close(&app->root);
    for (unsigned i = 0; app->local_roots && i < app->cfg.nsource_rules; i++)
        source_root_close(&app->local_roots[i]);
    free(app->local_roots);
    app->local_roots = NULL;
    log_close(app->access_log);
    app->access_log = NULL;
    pthread_mutex_destroy(&app->log_lock);
    struct ts_live *l = atomic_load(&app->live);
    while (l) {
        struct ts_live *older = l->older;
        free(l);
        l = older;
    }
    atomic_store(&app->live, NULL);
}

void ts_app_reopen_log(struct ts_app *app)
{
    pthread_mutex_lock(&app->log_lock);
    FILE *fresh = NULL, *old = NULL;
    bool reopen = app->access_log && app->access_log != stdout;
    if (reopen) {
        fresh = fopen(app->access_log_path, "a");
        if (fresh) {
            old = app->access_log;
            app->access_log = fresh;
        } else {
            ts_log("cannot reopen access log %s; keeping the old one", app->access_log_path);
        }
    }
    pthread_mutex_unlock(&app->log_lock);
    log_close(old);
}

/* ---- reload ---- */

struct reload_notes {
    struct ts_app *app;
    const struct ts_config *fresh;
    struct ts_buf applied;
};

/* Settings a reload applies (everything else is read once, at start). */
static bool reloadable(const struct ts_app *app, const struct ts_config *fresh, const char *name)
{
    static const char *const names[] = {"max-width",        "max-height",       "max-area",
                                        "allow-upscaling",  "iiif-extensions",  "jpeg-quality",
                                        "webp-quality",     "png-level",        "tiff-compression",
                                        "tiff-level",       "passthrough",      "cache-max-age",
                                        "cache-control",    "request-deadline", "admin-token",
                                        "admin-token-file", "access-log",       "access-log-format",
                                        "trusted-proxies",  "response-cache",   "info-cache"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i]))
            return true;
    /* The block cache resizes, but one that is off was never made: turning it on needs a
     * restart. */
    return !strcmp(name, "jp2-cache") && (app->jp2_blocks || !fresh->jp2_cache_mb);
}

static void note_applied(void *ctx, const char *name)
{
    struct reload_notes *n = ctx;
    if (reloadable(n->app, n->fresh, name))
        ts_buf_appendf(&n->applied, "%s%s", n->applied.len ? ", " : "", name);
}

static void note_restart(void *ctx, const char *name)
{
    struct reload_notes *n = ctx;
    if (!reloadable(n->app, n->fresh, name))
        ts_log("reload: setting %s needs a restart (keeping the value in force)", name);
}

int ts_app_reload(struct ts_app *app, const struct ts_config *started,
                  const struct ts_config *before, const struct ts_config *fresh, struct ts_err *err)
{
    struct ts_live *live = NULL;
    FILE *log = NULL;
    int rc = live_build(fresh, &live, err);
    rc = rc ? rc : log_open(fresh->access_log, &log, err);
    if (rc) {
        free(live);
        return rc;
    }
    struct reload_notes notes = {app, fresh, {0}};
    ts_buf_init_capped(&notes.applied, 4096);
    /* What changed since the last reading; what still differs from the start and was not
     * applied, again on every reload until a restart. */
    ts_config_changes(before, fresh, note_applied, &notes);
    ts_config_changes(started, fresh, note_restart, &notes);

    /* The log: a new file, or the same one reopened (as logrotate wants). */
    pthread_mutex_lock(&app->log_lock);
    FILE *old = app->access_log;
    app->access_log = log;
    snprintf(app->access_log_path, sizeof app->access_log_path, "%s", fresh->access_log);
    pthread_mutex_unlock(&app->log_lock);
    if (old != log)
        log_close(old);

    size_t mb = 1024 * 1024;
    ts_lru_resize(app->responses, (size_t)fresh->response_cache_mb * mb);
    ts_lru_resize(app->infos, (size_t)fresh->info_cache_mb * mb);
    ts_lru_resize(app->resolved, fresh->info_cache_mb ? 4 * mb : 0);
    if (app->jp2_blocks)
        ts_lru_resize(app->jp2_blocks, (size_t)fresh->jp2_cache_mb * mb);

    struct ts_live *current = atomic_load_explicit(&app->live, memory_order_acquire);
    live->older = current;
    atomic_store_explicit(&app->live, live, memory_order_release);
    const char *applied = ts_buf_str(&notes.applied);
    ts_log("reload: configuration applied%s%s", applied && *applied ? "; changed: " : "",
           applied && *applied ? applied : "");
    ts_buf_free(&notes.applied);
    return TS_OK;
}

void ts_app_hangup(struct ts_app *app)
{
    if (app->hangup) {
        app->hangup(app, app->hangup_ctx);
        return;
    }
    ts_app_reopen_log(app);
    ts_log("SIGHUP: access log reopened");
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
