/* IIIF Image API requests end to end: one thin layer over parse, source, plan, render, encode. */
#include "protocol/iiif.h"
#include "image/reader.h"
#include "image/source.h"
#include "protocol/iiif_info.h"
#include "protocol/iiif_parse.h"
#include "protocol/iiif_plan.h"
#include "core/engine.h"
#include "util/url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define URL_MAX 8192


static const char *profile_uri(int version)
{
    switch (version) {
    case 1: return "http://library.stanford.edu/iiif/image-api/1.1/compliance.html#level2";
    case 2: return "http://iiif.io/api/image/2/level2.json";
    default: return "http://iiif.io/api/image/3/level2.json";
    }
}

static const char *context_uri(int version)
{
    return version == 2 ? "http://iiif.io/api/image/2/context.json"
                        : "http://iiif.io/api/image/3/context.json";
}

/* 3.0 answers JSON-LD unless the client asks for plain JSON only; 2.1 and 1.1 answer plain
 * JSON unless the client asks for JSON-LD (each version's spec states its default). */
static void json_content_type(int version, const struct ts_request *req, char *out, size_t size)
{
    const char *accept = ts_request_header(req, "Accept");
    bool wants_ld = accept && strstr(accept, "application/ld+json");
    bool wants_json = accept && strstr(accept, "application/json");
    bool ld = version == 3 ? (wants_ld || !wants_json) : (wants_ld && version == 2);
    if (ld)
        snprintf(out, size, "application/ld+json;profile=\"%s\"", context_uri(version));
    else
        snprintf(out, size, "application/json");
}

/* type: the Content-Type already negotiated (it is part of the cache key too). */
static void handle_info(struct ts_app *app, int version, const char *id_url,
                        const struct source_file *src, const char *type, struct ts_response *res)
{
    struct ts_err err = {{0}};
    struct ts_image_info info;
    int rc = engine_info(app, src, &info, &err);
    if (rc) {
        engine_fail(res, rc, &err);
        return;
    }
    struct iiif_info_params p = {version, id_url, &info, &app->iiif, app->cfg.default_tile};
    char *json = NULL;
    rc = iiif_info_json(&p, &json, &err);
    if (rc) {
        engine_fail(res, rc, &err);
        return;
    }
    ts_response_set_type(res, type);
    /* The document becomes the body as it is: both are malloc'd bytes, freed with free(). */
    ts_buf_free(&res->body);
    res->body.data = (uint8_t *)json;
    res->body.len = strlen(json);
    res->body.cap = res->body.len + 1;
    if (version > 1)
        ts_response_add_header(res, "Link", "<%s>;rel=\"profile\"", profile_uri(version));
}

static void handle_image(struct ts_app *app, const struct iiif_url *url, const char *id_url,
                         const struct source_file *src, struct ts_response *res)
{
    struct ts_err err = {{0}};
    struct ts_reader *reader = NULL;
    int rc = engine_open(app, src, &reader, &err);
    if (rc) {
        engine_fail(res, rc, &err);
        return;
    }
    struct ts_plan plan;
    rc = iiif_plan(&url->req, reader->info.width, reader->info.height, &app->iiif, &plan, &err);
    if (rc) {
        engine_release(app, src, reader);
        engine_fail(res, rc, &err);
        return;
    }
    rc = engine_render(app, reader, &plan, NULL, res, &err);
    if (rc == TS_ECODEC)
        engine_discard(app, reader); /* a codec that failed half-way is not trusted again */
    else
        engine_release(app, src, reader);
    if (rc) {
        engine_fail(res, rc, &err);
        return;
    }
    char canonical[512];
    if (iiif_canonical(url->req.version, &plan, canonical, sizeof canonical) == TS_OK)
        ts_response_add_header(res, "Link", "<%s/%s>;rel=\"canonical\"", id_url, canonical);
    if (url->req.version > 1)
        ts_response_add_header(res, "Link", "<%s>;rel=\"profile\"",
                               profile_uri(url->req.version));
}

void iiif_handle(struct ts_app *app, int version, const char *prefix, const char *rest,
                 const struct ts_request *req, struct ts_response *res)
{
    struct ts_err err = {{0}};
    struct iiif_url *url = calloc(1, sizeof *url);
    if (!url) {
        ts_response_error(res, TS_ENOMEM, "out of memory");
        return;
    }
    int rc = iiif_parse_url(version, rest, url, &err);
    if (rc) {
        engine_fail(res, rc, &err);
        goto out;
    }
    struct source_file src = {0};
    rc = engine_resolve(app, url->identifier, &src, &err);
    if (rc) {
        engine_fail(res, rc, &err);
        goto out;
    }

    char base[1100], encoded[IIIF_MAX_IDENTIFIER * 3 + 1], id_url[URL_MAX];
    engine_public_base(app, req, base, sizeof base);
    url_encode(url->identifier, false, encoded, sizeof encoded);
    snprintf(id_url, sizeof id_url, "%s%s/%s", base, prefix, encoded);

    if (url->target == IIIF_TARGET_BASE) {
        res->status = 303;
        ts_response_add_header(res, "Location", "%s/info.json", id_url);
        ts_response_set_type(res, "text/plain; charset=utf-8");
        ts_buf_appendf(&res->body, "See %s/info.json\n", id_url);
        goto out;
    }

    /* Validators and cache keys come from the file and the request alone, so a revalidation
     * or a cache hit costs no image work. The public base is in ids and Link headers, and
     * info.json's type follows Accept, so both are part of them. */
    char etag[40], what[URL_MAX + 200], type[160] = "";
    bool info = url->target == IIIF_TARGET_INFO;
    if (info)
        json_content_type(version, req, type, sizeof type);
    snprintf(what, sizeof what, "iiif%d %s%s %s %s", version, base, prefix, rest, type);
    engine_etag(app, &src, what, etag, sizeof etag);
    if (engine_not_modified(app, req, res, etag, src.st.st_mtim.tv_sec))
        goto out_vary;
    if (!engine_cache_lookup(app, &src, what, res)) {
        if (req->fast_only) {
            res->status = 0; /* image work ahead: a worker's job */
            goto out;
        }
        if (info)
            handle_info(app, version, id_url, &src, type, res);
        else
            handle_image(app, url, id_url, &src, res);
        engine_cache_store(app, &src, what, res);
    }
    if (res->status == 200)
        engine_cache_headers(app, res, etag, src.st.st_mtim.tv_sec);
out_vary:
    if (info) /* content negotiation changes the Content-Type, so tell caches */
        ts_response_add_header(res, "Vary", "Accept");
out:
    free(url);
}
