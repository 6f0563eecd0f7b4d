/* The shared image path under every protocol: open, render, encode, validate. */
#include "server/engine.h"
#include "encode/encode.h"
#include "render/render.h"
#include "server/httpdate.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int engine_resolve(struct ts_app *app, const char *identifier, struct source_file *src,
                   struct ts_err *err)
{
    return source_resolve(app->cfg.root, app->cfg.demo_image, identifier, src, err);
}

int engine_open(struct ts_app *app, const struct source_file *src, struct ts_reader **reader,
                struct ts_err *err)
{
    (void)app;
    int rc = ts_reader_open(src->path, reader, err);
    if (rc == TS_EUNSUPPORTED || rc == TS_ECODEC) {
        /* The file exists but is not an image we can read: say so with the codec's reason. */
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg[0] ? err->msg : "unknown format");
        return ts_fail(err, rc, "cannot read image: %s", why);
    }
    return rc;
}

int engine_render(struct ts_app *app, struct ts_reader *reader, const struct ts_plan *plan,
                  struct ts_response *res, struct ts_err *err)
{
    struct ts_image img = {0};
    int rc = render_execute(reader, plan, &img, err);
    if (rc)
        return rc;
    rc = encode_image(&img, plan->format, &app->enc, &res->body, err);
    ts_image_free(&img);
    if (rc)
        return rc;
    ts_response_set_type(res, ts_format_mime(plan->format));
    return TS_OK;
}

void engine_etag(const struct ts_app *app, const struct source_file *src, const char *what,
                 char *out, size_t size)
{
    uint64_t h = TS_HASH_SEED;
    int64_t stamp[4] = {(int64_t)src->st.st_mtim.tv_sec, (int64_t)src->st.st_mtim.tv_nsec,
                        (int64_t)src->st.st_size, (int64_t)src->st.st_ino};
    int64_t knobs[8] = {app->cfg.jpeg_quality, app->cfg.webp_quality, app->cfg.png_level,
                        app->cfg.max_width,    app->cfg.max_height,   (int64_t)app->cfg.max_area,
                        app->cfg.default_tile, app->iiif.formats};
    h = ts_hash(h, stamp, sizeof stamp);
    h = ts_hash(h, knobs, sizeof knobs);
    h = ts_hash(h, src->path, strlen(src->path));
    h = ts_hash(h, what, strlen(what));
    snprintf(out, size, "\"%016" PRIx64 "\"", h);
}

void engine_cache_headers(const struct ts_app *app, struct ts_response *res, const char *etag,
                          time_t mtime)
{
    char date[64];
    ts_http_date(mtime, date, sizeof date);
    ts_response_add_header(res, "ETag", "%s", etag);
    ts_response_add_header(res, "Last-Modified", "%s", date);
    ts_response_add_header(res, "Cache-Control", "public, max-age=%u", app->cfg.cache_max_age);
}

bool engine_not_modified(const struct ts_app *app, const struct ts_request *req,
                         struct ts_response *res, const char *etag, time_t mtime)
{
    if (!ts_not_modified(req, etag, mtime))
        return false;
    res->status = 304;
    res->body.len = 0;
    engine_cache_headers(app, res, etag, mtime);
    return true;
}

void engine_fail(struct ts_response *res, int status, const struct ts_err *err)
{
    ts_response_error(res, status, err && err->msg[0] ? err->msg : ts_status_name(status));
}
