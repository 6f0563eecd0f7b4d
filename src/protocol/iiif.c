/* IIIF Image API requests: parse the URL and say what to produce; the core does the rest. */
#include "protocol/iiif.h"
#include "core/access.h"
#include "protocol/iiif_info.h"
#include "protocol/iiif_parse.h"
#include "protocol/iiif_plan.h"
#include "util/accept.h"
#include "util/url.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct iiif_ctx {
    struct iiif_url url;
    int version;
    struct ts_buf id_url; /* public URI of the image: base + prefix + "/" + encoded identifier */
};

static void ctx_free(void *p)
{
    struct iiif_ctx *c = p;
    if (c)
        ts_buf_free(&c->id_url);
    free(c);
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
static void json_content_type(int version, const struct ts_request *req, struct ts_product *out)
{
    const char *accept = ts_request_header(req, "Accept");
    bool wants_ld = accept && strstr(accept, "application/ld+json");
    bool wants_json = accept && strstr(accept, "application/json");
    bool ld = version == 3 ? (wants_ld || !wants_json) : (wants_ld && version == 2);
    if (ld)
        snprintf(out->type, sizeof out->type, "application/ld+json;profile=\"%s\"",
                 context_uri(version));
    else
        ts_product_set_type(out, "application/json");
}

/* A restricted image's info.json declares its probe service (Auth 2.0 section 2.1). */
static int with_auth_services(const struct ts_job *job, int version, char **json,
                              struct ts_err *err)
{
    json_t *root = json_loads(*json, 0, NULL);
    int rc = root ? ts_access_describe(job, version, root) : TS_ENOMEM;
    char *text = rc ? NULL : json_dumps(root, JSON_PRESERVE_ORDER | JSON_INDENT(2));
    json_decref(root);
    if (!text)
        return ts_fail(err, TS_ENOMEM, "out of memory building info.json");
    free(*json);
    *json = text;
    return TS_OK;
}

static int produce_info(const struct ts_app *app, const struct ts_job *job,
                        const struct ts_image_info *info, struct ts_product *out,
                        struct ts_err *err)
{
    const struct iiif_ctx *c = job->ctx;
    /* The image's own rights statement first, then the server's, as iipsrv chooses. */
    const char *rights = ts_image_meta(info, "rights");
    if (!rights || !*rights)
        rights = app->cfg.copyright;
    struct iiif_info_params p = {c->version,
                                 (const char *)c->id_url.data,
                                 info,
                                 &ts_job_live(app, job)->limits,
                                 app->cfg.default_tile,
                                 rights,
                                 app->info_extra};
    char *json = NULL;
    int rc = iiif_info_json(&p, &json, err);
    if (rc)
        return rc;
    if (ts_access_private(job))
        rc = with_auth_services(job, c->version, &json, err);
    rc = rc ? rc : ts_product_text(out, json, err);
    free(json);
    if (rc == TS_OK)
        rc = ts_product_add_header(out, "Link", "<%s>;rel=\"profile\"", profile_uri(c->version));
    return rc;
}

static int produce_image(const struct ts_app *app, const struct ts_job *job,
                         const struct ts_image_info *info, struct ts_product *out,
                         struct ts_err *err)
{
    const struct iiif_ctx *c = job->ctx;
    int rc = iiif_plan(&c->url.req, info->width, info->height, &ts_job_live(app, job)->limits,
                       &out->plan, err);
    if (rc)
        return rc;
    /* One Link field with both links: clients (the official validator among them) that read
     * a single header value would never see a second field's profile. */
    char canonical[512];
    if (iiif_canonical(c->version, &out->plan, canonical, sizeof canonical) == TS_OK)
        ts_product_add_header(out, "Link", "<%s/%s>;rel=\"canonical\", <%s>;rel=\"profile\"",
                              (const char *)c->id_url.data, canonical, profile_uri(c->version));
    else
        ts_product_add_header(out, "Link", "<%s>;rel=\"profile\"", profile_uri(c->version));
    return TS_OK;
}

/* 1.1 section 4.5: without an extension the format follows Accept. The offered format with
 * the highest q above 0 wins (on a tie, the first of ours, jpg first); nothing offered leaves
 * the server's choice. */
static enum ts_format negotiate_format(const char *accept, unsigned formats, enum ts_format dflt)
{
    enum ts_format best = dflt;
    double best_q = 0.0;
    for (int f = 0; f < TS_FORMAT_COUNT; f++) {
        double q =
            (formats & (1u << f)) ? ts_accept_q(accept, ts_format_mime((enum ts_format)f)) : -1;
        if (q > best_q) {
            best = (enum ts_format)f;
            best_q = q;
        }
    }
    return best;
}

/* Whether a client's X-IIIF-ID can stand as an id: one line of printable ASCII. */
static bool id_header_ok(const char *v)
{
    if (!v || !*v || strlen(v) >= TS_JOB_KEY_MAX / 2)
        return false;
    for (; *v; v++)
        if ((unsigned char)*v <= 0x20 || (unsigned char)*v >= 0x7f || *v == '"' || *v == '<' ||
            *v == '>' || *v == '\\')
            return false;
    return true;
}

/* The image's id, as iipsrv makes it: an X-IIIF-ID header (which a proxy in front sets to the
 * URL it publishes) as it is; else iipsrv's BASE_URL followed by the identifier; else the
 * public base, the route's prefix and the identifier. */
static int id_url_for(const struct ts_app *app, const char *prefix, const char *identifier,
                      const struct ts_request *req, struct ts_job *job, struct ts_buf *out)
{
    const char *given = ts_request_header(req, "X-IIIF-ID");
    if (id_header_ok(given))
        return ts_buf_append_str(out, given);
    if (app->cfg.iiif_id_base[0]) {
        int rc = ts_buf_append_str(out, app->cfg.iiif_id_base);
        return rc ? rc : url_encode_append(out, identifier, false);
    }
    int rc = ts_app_public_base(app, req, out);
    job->vary_host = true; /* ids, Location and Link name the public base */
    rc = rc ? rc : ts_buf_appendf(out, "%s/", prefix);
    return rc ? rc : url_encode_append(out, identifier, false);
}

int iiif_job(const struct ts_app *app, int version, const char *prefix, const char *rest,
             const struct ts_request *req, struct ts_job *job, struct ts_err *err)
{
    struct iiif_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return ts_fail(err, TS_ENOMEM, "out of memory");
    ts_job_init(job, TS_JOB_IMAGE);
    job->ctx = c;
    job->ctx_free = ctx_free;
    c->version = version;
    ts_buf_init_capped(&c->id_url, TS_JOB_KEY_MAX);
    int rc = iiif_parse_url(version, rest, &c->url, err);
    if (rc)
        return rc;
    rc = ts_buf_append_str(&job->identifier, c->url.identifier);
    rc = rc ? rc : id_url_for(app, prefix, c->url.identifier, req, job, &c->id_url);
    const char *id_url = rc ? NULL : ts_buf_str(&c->id_url);
    if (!id_url)
        return ts_fail(err, rc ? rc : TS_ENOMEM, "request too long");

    if (c->url.target == IIIF_TARGET_BASE) {
        /* The identifier must exist (the core resolves it first), then: see its info.json. */
        /* 3.0 section 7.2: the redirect carries no body, only where to go. */
        rc = ts_job_add_header(job, "Location", "%s/info.json", id_url);
        rc = rc ? rc : ts_job_reply(job, 303, "", "");
        return rc ? ts_fail(err, rc, "request too long") : TS_OK;
    }
    /* Everything that changes the answer names it: the public base is in ids and Link
     * headers, and info.json's type follows Accept. */
    job->needs_info = true;
    if (c->url.target == IIIF_TARGET_INFO) {
        json_content_type(version, req, &job->out);
        job->vary_accept = true;
        job->produce = produce_info;
        job->access.describes = true; /* clients find the probe service here, even refused */
    } else {
        job->produce = produce_image;
        if (c->url.req.format_implied) {
            c->url.req.format =
                negotiate_format(ts_request_header(req, "Accept"),
                                 ts_job_live(app, job)->limits.formats, c->url.req.format);
            job->vary_accept = true;
            rc = ts_buf_appendf(&job->key, "as %s ", ts_format_ext(c->url.req.format));
            if (rc)
                return ts_fail(err, rc, "request too long");
        }
    }
    rc = ts_buf_appendf(&job->key, "iiif%d %s %s %s", version, id_url, rest, job->out.type);
    return rc ? ts_fail(err, rc, "request too long") : TS_OK;
}
