/* The application: configuration, caches and logs every request shares. */
#include "core/app.h"
#include "core/engine.h"

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

int ts_app_init(struct ts_app *app, const struct ts_config *cfg, struct ts_err *err)
{
    memset(app, 0, sizeof *app);
    app->cfg = *cfg;
    if (app->cfg.max_width && !app->cfg.max_height)
        app->cfg.max_height = app->cfg.max_width; /* the spec's inference, made explicit */
    app->iiif.max_width = app->cfg.max_width;
    app->iiif.max_height = app->cfg.max_height;
    app->iiif.max_area = app->cfg.max_area;
    app->iiif.rotation_arbitrary = true;
    app->iiif.formats = (1u << TS_FORMAT_JPG) | (1u << TS_FORMAT_PNG) | (1u << TS_FORMAT_WEBP) |
                        (1u << TS_FORMAT_GIF) | (1u << TS_FORMAT_TIF) | (1u << TS_FORMAT_JP2);
    app->enc.jpeg_quality = cfg->jpeg_quality;
    app->enc.webp_quality = cfg->webp_quality;
    app->enc.png_level = cfg->png_level;
    pthread_mutex_init(&app->log_lock, NULL);
    int rc = engine_init(app, err);
    if (rc)
        return rc;
    if (!strcmp(cfg->access_log, "-")) {
        app->access_log = stdout;
    } else if (cfg->access_log[0]) {
        app->access_log = fopen(cfg->access_log, "a");
        if (!app->access_log)
            return ts_fail(err, TS_EIO, "cannot open access log %s", cfg->access_log);
    }
    if (access(app->cfg.root, R_OK | X_OK) != 0)
        return ts_fail(err, TS_EINVAL, "image root %s is not a readable directory", cfg->root);
    return TS_OK;
}

void ts_app_free(struct ts_app *app)
{
    engine_free(app);
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
