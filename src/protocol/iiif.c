/* IIIF Image API requests end to end: one thin layer over parse, source, plan, render, encode. */
#include "protocol/iiif.h"
#include "encode/encode.h"
#include "image/reader.h"
#include "image/source.h"
#include "protocol/iiif_info.h"
#include "protocol/iiif_parse.h"
#include "protocol/iiif_plan.h"
#include "render/render.h"
#include "server/httpdate.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define URL_MAX 8192

/* Host headers end up in ids and Location headers, so accept only host[:port] characters. */
static bool host_is_sane(const char *host)
{
    if (!host || !*host || strlen(host) > 255)
        return false;
    for (const char *p = host; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_'))
            return false;
    }
    return true;
}

static void public_base(const struct ts_app *app, const struct ts_request *req, char *out,
                        size_t size)
{
    const struct ts_config *cfg = &app->cfg;
    if (cfg->base_url[0]) {
        size_t n = strlen(cfg->base_url);
        while (n > 0 && cfg->base_url[n - 1] == '/')
            n--;
        snprintf(out, size, "%.*s", (int)n, cfg->base_url);
        return;
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
    if (host_is_sane(host)) {
        snprintf(out, size, "%s://%s", scheme, host);
    } else {
        snprintf(out, size, "%s://%s:%u", scheme, cfg->listen_host, (unsigned)cfg->listen_port);
    }
}

/* Everything but RFC 3986 unreserved characters is escaped, '/' included (the spec asks it). */
static void encode_identifier(const char *id, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)id; *p && o + 4 < size; p++) {
        unsigned char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
}

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

static void add_cache_headers(const struct ts_app *app, struct ts_response *res,
                              const char *etag, time_t mtime)
{
    char date[64];
    ts_http_date(mtime, date, sizeof date);
    ts_response_add_header(res, "ETag", "%s", etag);
    ts_response_add_header(res, "Last-Modified", "%s", date);
    ts_response_add_header(res, "Cache-Control", "public, max-age=%u", app->cfg.cache_max_age);
}

/* The validator covers everything that changes the bytes: the source file, the request and the
 * settings that shape the output. */
static void make_etag(const struct ts_app *app, const struct source_file *src, int version,
                      const char *what, const char *base, char *out, size_t size)
{
    uint64_t h = TS_HASH_SEED;
    int64_t stamp[4] = {(int64_t)src->st.st_mtim.tv_sec, (int64_t)src->st.st_mtim.tv_nsec,
                        (int64_t)src->st.st_size, (int64_t)src->st.st_ino};
    int32_t knobs[7] = {version,
                        app->cfg.jpeg_quality,
                        app->cfg.webp_quality,
                        app->cfg.png_level,
                        (int32_t)app->cfg.max_width,
                        (int32_t)app->cfg.max_height,
                        (int32_t)app->cfg.default_tile};
    h = ts_hash(h, stamp, sizeof stamp);
    h = ts_hash(h, knobs, sizeof knobs);
    h = ts_hash(h, &app->cfg.max_area, sizeof app->cfg.max_area);
    h = ts_hash(h, src->path, strlen(src->path));
    h = ts_hash(h, what, strlen(what));
    if (base)
        h = ts_hash(h, base, strlen(base));
    snprintf(out, size, "\"%016" PRIx64 "\"", h);
}

static void fail(struct ts_response *res, int status, const struct ts_err *err)
{
    ts_response_error(res, status, err->msg[0] ? err->msg : ts_status_name(status));
}

static int open_reader(const struct source_file *src, struct ts_reader **reader,
                       struct ts_err *err)
{
    int rc = ts_reader_open(src->path, reader, err);
    if (rc == TS_EUNSUPPORTED || rc == TS_ECODEC) {
        /* The client asked for a file that exists but is not an image we can read. */
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        return ts_fail(err, rc == TS_EUNSUPPORTED ? TS_EUNSUPPORTED : TS_ECODEC,
                       "cannot read image: %s", why[0] ? why : "unknown format");
    }
    return rc;
}

static void handle_info(struct ts_app *app, int version, const char *id_url,
                        const struct source_file *src, const struct ts_request *req,
                        struct ts_response *res)
{
    struct ts_err err = {{0}};
    struct ts_reader *reader = NULL;
    int rc = open_reader(src, &reader, &err);
    if (rc) {
        fail(res, rc, &err);
        return;
    }
    struct iiif_info_params p = {version, id_url, &reader->info, &app->iiif, app->cfg.default_tile};
    char *json = NULL;
    rc = iiif_info_json(&p, &json, &err);
    ts_reader_close(reader);
    if (rc) {
        fail(res, rc, &err);
        return;
    }
    char type[160];
    json_content_type(version, req, type, sizeof type);
    ts_response_set_type(res, type);
    if (ts_buf_append(&res->body, json, strlen(json)) != TS_OK) {
        free(json);
        ts_response_error(res, TS_ENOMEM, "out of memory");
        return;
    }
    free(json);
    if (version > 1)
        ts_response_add_header(res, "Link", "<%s>;rel=\"profile\"", profile_uri(version));
}

static void handle_image(struct ts_app *app, const struct iiif_url *url, const char *id_url,
                         const struct source_file *src, struct ts_response *res)
{
    struct ts_err err = {{0}};
    struct ts_reader *reader = NULL;
    int rc = open_reader(src, &reader, &err);
    if (rc) {
        fail(res, rc, &err);
        return;
    }
    struct ts_plan plan;
    rc = iiif_plan(&url->req, reader->info.width, reader->info.height, &app->iiif, &plan, &err);
    if (rc) {
        ts_reader_close(reader);
        fail(res, rc, &err);
        return;
    }
    struct ts_image img = {0};
    rc = render_execute(reader, &plan, &img, &err);
    ts_reader_close(reader);
    if (rc) {
        fail(res, rc, &err);
        return;
    }
    rc = encode_image(&img, plan.format, &app->enc, &res->body, &err);
    ts_image_free(&img);
    if (rc) {
        fail(res, rc, &err);
        return;
    }
    ts_response_set_type(res, ts_format_mime(plan.format));
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
        fail(res, rc, &err);
        goto out;
    }
    struct source_file src;
    rc = source_resolve(app->cfg.root, app->cfg.demo_image, url->identifier, &src, &err);
    if (rc) {
        fail(res, rc, &err);
        goto out;
    }

    char base[1100], encoded[IIIF_MAX_IDENTIFIER * 3 + 1], id_url[URL_MAX];
    public_base(app, req, base, sizeof base);
    encode_identifier(url->identifier, encoded, sizeof encoded);
    snprintf(id_url, sizeof id_url, "%s%s/%s", base, prefix, encoded);

    if (url->target == IIIF_TARGET_BASE) {
        res->status = 303;
        ts_response_add_header(res, "Location", "%s/info.json", id_url);
        ts_response_set_type(res, "text/plain; charset=utf-8");
        ts_buf_appendf(&res->body, "See %s/info.json\n", id_url);
        goto out;
    }

    /* Validators come from the file and the request alone, so a revalidation costs no image
     * work. info.json embeds the public base, so it takes part too. */
    char etag[40];
    bool info = url->target == IIIF_TARGET_INFO;
    make_etag(app, &src, version, rest, info ? base : NULL, etag, sizeof etag);
    if (info) {
        /* Content negotiation changes the Content-Type, so tell caches. */
        ts_response_add_header(res, "Vary", "Accept");
    }
    if (ts_not_modified(req, etag, src.st.st_mtim.tv_sec)) {
        res->status = 304;
        add_cache_headers(app, res, etag, src.st.st_mtim.tv_sec);
        goto out;
    }
    if (info)
        handle_info(app, version, id_url, &src, req, res);
    else
        handle_image(app, url, id_url, &src, res);
    if (res->status == 200)
        add_cache_headers(app, res, etag, src.st.st_mtim.tv_sec);
out:
    free(url);
}
