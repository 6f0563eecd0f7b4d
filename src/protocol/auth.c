/* Auth 2.0 services: the probe is an image job (the core decides it like any request for the
 * image, from the bearer token); access, token and logout are pages answered here. */
#include "protocol/auth.h"
#include "core/access.h"
#include "util/url.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PARAM_MAX 1024
#define HTML "text/html; charset=utf-8"

/* The decoded value of parameter name in form text (a query or an urlencoded body, len bytes);
 * false when absent or undecodable. */
static bool form_value(const char *text, size_t len, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    const char *end = text ? text + len : NULL;
    for (const char *p = text; p && p < end;) {
        size_t k = 0;
        while (p + k < end && p[k] != '&')
            k++;
        if (k > n && !strncmp(p, name, n) && p[n] == '=') {
            /* A form's '+' is a space and its "%2B" a plus: the spaces go in before decoding. */
            char *raw = malloc(k - n);
            if (!raw)
                return false;
            for (size_t i = 0; i < k - n - 1; i++)
                raw[i] = p[n + 1 + i] == '+' ? ' ' : p[n + 1 + i];
            struct ts_err e;
            bool ok = url_decode(raw, k - n - 1, out, cap, URL_NO_CONTROLS, &e) == TS_OK;
            free(raw);
            return ok;
        }
        p += k + (p + k < end);
    }
    return false;
}

/* The decoded value of query parameter name; false when absent or undecodable. */
static bool param(const struct ts_request *req, const char *name, char *out, size_t cap)
{
    return form_value(req->query, req->query ? strlen(req->query) : 0, name, out, cap);
}

static int html_escape(struct ts_buf *b, const char *s)
{
    int rc = TS_OK;
    for (; *s && rc == TS_OK; s++) {
        switch (*s) {
        case '<': rc = ts_buf_append_str(b, "&lt;"); break;
        case '>': rc = ts_buf_append_str(b, "&gt;"); break;
        case '&': rc = ts_buf_append_str(b, "&amp;"); break;
        case '"': rc = ts_buf_append_str(b, "&quot;"); break;
        case '\'': rc = ts_buf_append_str(b, "&#39;"); break;
        default: rc = ts_buf_append(b, s, 1); break;
        }
    }
    return rc;
}

/* Pages that carry credentials or decisions: never stored, never sniffed. */
static int page(struct ts_job *job, int status, struct ts_buf *html)
{
    const char *text = ts_buf_str(html);
    int rc = text ? ts_job_reply(job, status, HTML, text) : TS_ENOMEM;
    rc = rc ? rc : ts_job_add_header(job, "Cache-Control", "no-store");
    rc = rc ? rc : ts_job_add_header(job, "X-Content-Type-Options", "nosniff");
    ts_buf_free(html);
    return rc;
}

static int page_start(struct ts_buf *b, const char *title)
{
    int rc = ts_buf_append_str(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
    rc = rc ? rc : html_escape(b, title);
    rc = rc ? rc : ts_buf_append_str(b, "</title></head><body>\n<h1>");
    rc = rc ? rc : html_escape(b, title);
    return rc ? rc : ts_buf_append_str(b, "</h1>\n");
}

/* A page that tells the viewer's opener it is done: the tab closes itself (Auth 2.0 3.0). */
static int closing_page(struct ts_job *job, int status, const char *message)
{
    struct ts_buf b = {0};
    int rc = page_start(&b, message);
    rc = rc ? rc
            : ts_buf_append_str(&b, "<p>You may close this window.</p>\n"
                                    "<script>window.close();</script>\n</body></html>\n");
    return rc ? rc : page(job, status, &b);
}

static bool https(const struct ts_app *app, const struct ts_request *req)
{
    struct ts_buf base = {0};
    ts_buf_init_capped(&base, 4096);
    bool secure = ts_app_public_base(app, req, &base) == TS_OK && base.len >= 8 &&
                  !strncmp((const char *)base.data, "https://", 8);
    ts_buf_free(&base);
    return secure;
}

/* HttpOnly always; behind HTTPS also Secure and SameSite=None, so the token service in a
 * viewer's iframe (another site) is sent it; over plain HTTP browsers refuse None without
 * Secure, and Lax is the most they keep. */
static int set_cookie(const struct ts_app *app, const struct ts_request *req, struct ts_job *job,
                      const char *value, unsigned max_age)
{
    bool secure = https(app, req);
    return ts_job_add_header(job, "Set-Cookie", "%s=%s; Path=/; Max-Age=%u; HttpOnly%s",
                             TS_ACCESS_COOKIE, value, max_age,
                             secure ? "; Secure; SameSite=None" : "; SameSite=Lax");
}

/* Grants rule r on top of what the request's cookie already grants (if genuine). */
static int grant_cookie(const struct ts_app *app, const struct ts_request *req,
                        const struct ts_access_rule *r, const char *user, struct ts_job *job,
                        struct ts_err *err)
{
    const struct ts_access *a = app->access;
    int64_t now = (int64_t)time(NULL);
    struct ts_grant g = {0};
    size_t len;
    const char *old = ts_access_cookie(ts_request_header(req, "Cookie"), &len);
    if (ts_access_verify(a, TS_CRED_COOKIE, old, len, now, &g) != TS_CRED_OK)
        memset(&g, 0, sizeof g);
    char origin[PARAM_MAX];
    /* ts_access_origin_ok and the user file bound both below their fields' sizes. */
    if (param(req, "origin", origin, sizeof origin) && ts_access_origin_ok(origin))
        memcpy(g.origin, origin, strlen(origin) + 1);
    if (user && strlen(user) < sizeof g.user)
        memcpy(g.user, user, strlen(user) + 1);
    g.expires = now + a->session_ttl;
    struct ts_buf value = {0};
    ts_buf_init_capped(&value, 8192);
    int rc = ts_grant_add(&g, r->name) ? ts_access_sign(a, TS_CRED_COOKIE, &g, &value) : TS_EINVAL;
    const char *v = rc ? NULL : ts_buf_str(&value);
    rc = v ? set_cookie(app, req, job, v, a->session_ttl) : TS_EINVAL;
    ts_buf_free(&value);
    return rc ? ts_fail(err, TS_EINVAL, "cannot grant access") : TS_OK;
}

/* ---- access service ---- */

static int b64_digit(char c)
{
    static const char d[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c ? strchr(d, c) : NULL;
    return p ? (int)(p - d) : -1;
}

/* "Basic base64(user:password)" -> user, password; false when it is not that. */
static bool basic_credentials(const char *h, char *user, char *pass, size_t cap)
{
    if (!h || strncasecmp(h, "Basic ", 6) != 0)
        return false;
    char plain[512];
    size_t o = 0, bits = 0;
    uint32_t acc = 0;
    for (const char *p = h + 6; *p && *p != '='; p++) {
        int d = b64_digit(*p);
        if (d < 0 || o + 1 >= sizeof plain)
            return false;
        acc = acc << 6 | (uint32_t)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            plain[o++] = (char)(acc >> bits);
        }
    }
    plain[o] = '\0';
    char *colon = strlen(plain) == o ? strchr(plain, ':') : NULL;
    if (!colon || (size_t)(colon - plain) >= cap || strlen(colon + 1) >= cap)
        return false;
    *colon = '\0';
    snprintf(user, cap, "%s", plain);
    snprintf(pass, cap, "%s", colon + 1);
    return true;
}

/* A POSTed login form: 1 with user and password filled, 0 for any other method, or an error
 * (415 for a body that is not a form, 400 for a form without both fields). */
static int form_credentials(const struct ts_request *req, char *user, char *pass, size_t cap,
                            struct ts_err *err)
{
    if (strcmp(req->method, "POST") != 0)
        return 0;
    const char *type = ts_request_header(req, "Content-Type");
    static const char form[] = "application/x-www-form-urlencoded";
    size_t n = sizeof form - 1;
    if (!type || strncasecmp(type, form, n) != 0 || (type[n] && type[n] != ';' && type[n] != ' '))
        return ts_fail(err, TS_EMEDIA, "the login wants an application/x-www-form-urlencoded form");
    if (!form_value(req->body, req->body_len, "user", user, cap) || !user[0] ||
        !form_value(req->body, req->body_len, "password", pass, cap))
        return ts_fail(err, TS_EINVAL, "the login form wants user and password");
    return 1;
}

/* The login form posts the user and password (no password in a URL or a log). With scripts on,
 * the page sends them instead as HTTP Basic credentials to this same address, stays to say
 * whether they were right, and closes the tab when they were. */
static const char login_script[] =
    "<script>\n"
    "document.getElementById('f').addEventListener('submit', function (e) {\n"
    "  e.preventDefault();\n"
    "  var f = e.target, msg = document.getElementById('msg');\n"
    "  var pair = unescape(encodeURIComponent(f.user.value + ':' + f.password.value));\n"
    "  fetch(location.href, {headers: {Authorization: 'Basic ' + btoa(pair)},\n"
    "                        credentials: 'same-origin', cache: 'no-store'})\n"
    "    .then(function (r) {\n"
    "      msg.textContent = r.ok ? 'Signed in.' : 'Unknown user or wrong password.';\n"
    "      if (r.ok) window.close();\n"
    "    });\n"
    "});\n"
    "</script>\n";

static int intro(struct ts_buf *b, const struct ts_access_rule *r)
{
    int rc = page_start(b, r->heading[0] ? r->heading : r->label);
    if (r->note[0]) {
        rc = rc ? rc : ts_buf_append_str(b, "<p>");
        rc = rc ? rc : html_escape(b, r->note);
        rc = rc ? rc : ts_buf_append_str(b, "</p>\n");
    }
    return rc;
}

static int login(const struct ts_app *app, const struct ts_request *req,
                 const struct ts_access_rule *r, struct ts_job *job, struct ts_err *err)
{
    char user[256], pass[256];
    int have = form_credentials(req, user, pass, sizeof user, err);
    if (have < 0)
        return have;
    if (have ||
        basic_credentials(ts_request_header(req, "Authorization"), user, pass, sizeof user)) {
        int rc = ts_access_check_user(app->access, user, pass, err);
        explicit_bzero(pass, sizeof pass);
        if (rc)
            return rc; /* 403, or 500 for an unreadable user file */
        rc = grant_cookie(app, req, r, user, job, err);
        return rc ? rc : closing_page(job, 200, "Signed in");
    }
    struct ts_buf b = {0};
    int rc = intro(&b, r);
    rc = rc ? rc
            : ts_buf_append_str(
                  &b, "<form id=\"f\" method=\"post\"><p><label>User <input name=\"user\" "
                      "autocomplete=\"username\" required></label></p>\n<p><label>Password "
                      "<input name=\"password\" type=\"password\" "
                      "autocomplete=\"current-password\" required></label></p>\n<p><button "
                      "type=\"submit\">");
    rc = rc ? rc : html_escape(&b, r->confirm);
    rc = rc ? rc
            : ts_buf_append_str(&b, "</button></p></form>\n<p id=\"msg\" role=\"status\"></p>\n");
    rc = rc ? rc : ts_buf_append_str(&b, login_script);
    rc = rc ? rc : ts_buf_append_str(&b, "</body></html>\n");
    return rc ? ts_fail(err, rc, "page too long") : page(job, 200, &b);
}

/* The terms, and a button whose press (a user gesture at our origin) grants the cookie. */
static int clickthrough(const struct ts_app *app, const struct ts_request *req,
                        const struct ts_access_rule *r, struct ts_job *job, struct ts_err *err)
{
    char accept[8], origin[PARAM_MAX] = "";
    if (param(req, "accept", accept, sizeof accept) && !strcmp(accept, "1")) {
        int rc = grant_cookie(app, req, r, NULL, job, err);
        return rc ? rc : closing_page(job, 200, "Thank you");
    }
    param(req, "origin", origin, sizeof origin);
    struct ts_buf b = {0};
    int rc = intro(&b, r);
    rc = rc ? rc
            : ts_buf_append_str(
                  &b, "<form method=\"get\"><input type=\"hidden\" name=\"origin\" value=\"");
    rc = rc ? rc : html_escape(&b, origin);
    rc = rc ? rc
            : ts_buf_append_str(
                  &b,
                  "\"><input type=\"hidden\" name=\"accept\" value=\"1\"><button type=\"submit\">");
    rc = rc ? rc : html_escape(&b, r->confirm);
    rc = rc ? rc : ts_buf_append_str(&b, "</button></form>\n</body></html>\n");
    return rc ? ts_fail(err, rc, "page too long") : page(job, 200, &b);
}

static int access_service(const struct ts_app *app, const struct ts_request *req,
                          const struct ts_access_rule *r, struct ts_job *job, struct ts_err *err)
{
    char origin[PARAM_MAX];
    if (param(req, "origin", origin, sizeof origin) && !ts_access_origin_ok(origin))
        return ts_fail(err, TS_EINVAL, "origin must be scheme://host[:port]");
    if (!strcmp(req->method, "POST") && r->profile != TS_PROFILE_LOGIN) {
        ts_job_add_header(job, "Allow", "GET, HEAD, OPTIONS");
        return ts_fail(err, TS_EMETHOD, "only a login form is posted");
    }
    switch (r->profile) {
    case TS_PROFILE_LOGIN: return login(app, req, r, job, err);
    case TS_PROFILE_CLICKTHROUGH: return clickthrough(app, req, r, job, err);
    case TS_PROFILE_KIOSK:
        if (r->nnets && !ts_access_in_networks(r, req->remote))
            return ts_fail(err, TS_EFORBIDDEN, "this kiosk access is for its own networks only");
        {
            int rc = grant_cookie(app, req, r, NULL, job, err);
            return rc ? rc : closing_page(job, 200, "Access granted");
        }
    default: return ts_fail(err, TS_ENOTFOUND, "rule %s has no access service", r->name);
    }
}

/* ---- token service ---- */

/* The postMessage page (Auth 2.0 4.3): always 200; the message says token or error. JSON with
 * '/' escaped cannot close the script element, whatever messageId the client sent. */
static int post_message(struct ts_job *job, json_t *msg, const char *target)
{
    json_t *t = json_string(target);
    char *body =
        msg ? json_dumps(msg, JSON_COMPACT | JSON_ESCAPE_SLASH | JSON_PRESERVE_ORDER) : NULL;
    char *to = t ? json_dumps(t, JSON_ENCODE_ANY | JSON_ESCAPE_SLASH) : NULL;
    json_decref(msg);
    json_decref(t);
    struct ts_buf b = {0};
    int rc = body && to ? TS_OK : TS_ENOMEM;
    rc = rc ? rc
            : ts_buf_appendf(&b,
                             "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n"
                             "<script>\nwindow.parent.postMessage(%s, %s);\n</script>\n"
                             "</body></html>\n",
                             body, to);
    free(body);
    free(to);
    return rc ? rc : page(job, 200, &b);
}

static int token_error(struct ts_job *job, const char *profile, const char *message_id,
                       const char *target, const char *note)
{
    json_t *m = json_pack("{s:s,s:s,s:s,s:s,s:{s:[s]},s:{s:[s]}}", "@context", TS_ACCESS_CONTEXT,
                          "type", "AuthAccessTokenError2", "profile", profile, "messageId",
                          message_id, "heading", "en", "Access not granted", "note", "en", note);
    return post_message(job, m, target);
}

static bool origin_allowed(const struct ts_access *a, const char *origin)
{
    if (!a->origins[0])
        return true;
    size_t n = strlen(origin);
    for (const char *p = a->origins; *p;) {
        size_t k = strcspn(p, " ,");
        if (k == n && !strncmp(p, origin, n))
            return true;
        p += k + (p[k] != '\0');
    }
    return false;
}

static int token_service(const struct ts_app *app, const struct ts_request *req,
                         const struct ts_access_rule *r, struct ts_job *job)
{
    const struct ts_access *a = app->access;
    char id[PARAM_MAX], origin[PARAM_MAX];
    bool have_id = param(req, "messageId", id, sizeof id);
    bool have_origin = param(req, "origin", origin, sizeof origin);
    bool origin_ok = have_origin && ts_access_origin_ok(origin);
    /* A token goes to the named origin only; an error (no secret in it) may go anywhere. */
    const char *target = origin_ok ? origin : "*";
    if (!have_id)
        snprintf(id, sizeof id, "%s", "");
    if (!have_id || !have_origin || !r || r->profile == TS_PROFILE_OPEN ||
        r->profile == TS_PROFILE_HOOK)
        return token_error(job, "invalidRequest", id, target,
                           !r ? "No such access service." : "messageId and origin are required.");
    if (a->maintenance)
        return token_error(job, "unavailable", id, target, "Access is unavailable for now.");
    if (!origin_ok || !origin_allowed(a, origin))
        return token_error(job, "invalidOrigin", id, target,
                           "This viewer may not show these images.");
    int64_t now = (int64_t)time(NULL);
    struct ts_grant g = {0};
    if (r->profile == TS_PROFILE_EXTERNAL) {
        int have = ts_access_external(r, req);
        if (have <= 0)
            return token_error(job, have ? "invalidAspect" : "missingAspect", id, target,
                               "Access is granted only from the reading room.");
        g.expires = now + a->token_ttl;
    } else {
        size_t len;
        const char *c = ts_access_cookie(ts_request_header(req, "Cookie"), &len);
        enum ts_cred v = ts_access_verify(a, TS_CRED_COOKIE, c, len, now, &g);
        if (v == TS_CRED_MISSING)
            return token_error(job, "missingAspect", id, target, "Please log in first.");
        if (v == TS_CRED_EXPIRED)
            return token_error(job, "expiredAspect", id, target, "Your session has expired.");
        if (v != TS_CRED_OK || !ts_grant_has(&g, r->name))
            return token_error(job, "invalidAspect", id, target,
                               "Your session does not grant this.");
        if (g.origin[0] && strcmp(g.origin, origin) != 0)
            return token_error(job, "invalidOrigin", id, target,
                               "The session was opened from another viewer.");
        if (g.expires > now + a->token_ttl)
            g.expires = now + a->token_ttl;
    }
    struct ts_grant t = {.expires = g.expires};
    snprintf(t.rules, sizeof t.rules, "%s", r->name);
    struct ts_buf token = {0};
    ts_buf_init_capped(&token, 8192);
    int rc = ts_access_sign(a, TS_CRED_TOKEN, &t, &token);
    const char *tok = rc ? NULL : ts_buf_str(&token);
    json_t *m = tok ? json_pack("{s:s,s:s,s:s,s:I,s:s}", "@context", TS_ACCESS_CONTEXT, "type",
                                "AuthAccessToken2", "accessToken", tok, "expiresIn",
                                (json_int_t)(t.expires - now), "messageId", id)
                    : NULL;
    ts_buf_free(&token);
    return m ? post_message(job, m, target) : TS_ENOMEM;
}

/* ---- logout, probe ---- */

static int logout(const struct ts_app *app, const struct ts_request *req, struct ts_job *job)
{
    bool secure = https(app, req);
    int rc =
        ts_job_add_header(job, "Set-Cookie", "%s=; Path=/; Max-Age=0; HttpOnly%s", TS_ACCESS_COOKIE,
                          secure ? "; Secure; SameSite=None" : "; SameSite=Lax");
    /* Shown in a tab of its own with an address bar (Auth 2.0 6.2): it stays open. */
    struct ts_buf b = {0};
    rc = rc ? rc : page_start(&b, "Signed out");
    rc = rc ? rc
            : ts_buf_append_str(&b, "<p>You are signed out of these images.</p>\n</body></html>\n");
    return rc ? rc : page(job, 200, &b);
}

static int produce_probe(const struct ts_app *app, const struct ts_job *job,
                         const struct ts_image_info *info, struct ts_product *out,
                         struct ts_err *err)
{
    (void)app;
    (void)info;
    const struct ts_access_verdict *v = &job->access;
    int status = v->tier == TS_TIER_FULL       ? 200
                 : v->tier == TS_TIER_DEGRADED ? 401
                                               : ts_status_http(v->deny);
    json_t *m = json_pack("{s:s,s:s,s:i}", "@context", TS_ACCESS_CONTEXT, "type",
                          "AuthProbeResult2", "status", status);
    if (m && v->tier == TS_TIER_DEGRADED) {
        /* The substitute is this image's own service: unauthorised, it serves the degraded
         * tier (smaller and/or marked) to the user who asked. */
        struct ts_buf u = {0};
        ts_buf_init_capped(&u, TS_JOB_KEY_MAX * 3 + 4096);
        int rc = ts_buf_appendf(&u, "%s/iiif/3/", (const char *)v->base.data);
        rc = rc ? rc : url_encode_append(&u, (const char *)job->identifier.data, false);
        char label[128];
        if (v->rule->degraded_size)
            snprintf(label, sizeof label, "Reduced to %u pixels%s", v->rule->degraded_size,
                     v->rule->degraded_watermark ? ", watermarked" : "");
        else
            snprintf(label, sizeof label, "Watermarked");
        const char *id = rc ? NULL : ts_buf_str(&u);
        json_object_set_new(m, "substitute",
                            id ? json_pack("[{s:s,s:s,s:{s:[s]}}]", "id", id, "type",
                                           "ImageService3", "label", "en", label)
                               : NULL);
        ts_buf_free(&u);
    }
    if (m && status != 200)
        json_object_set_new(m, "heading", json_pack("{s:[s]}", "en", "Restricted image"));
    char *text = m ? json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(m);
    int rc = text ? ts_product_text(out, text, err) : ts_fail(err, TS_ENOMEM, "out of memory");
    free(text);
    return rc;
}

static int probe_job(const char *rest, struct ts_job *job, struct ts_err *err)
{
    ts_job_init(job, TS_JOB_IMAGE);
    char id[4096];
    int rc = url_decode(rest, strlen(rest), id, sizeof id, URL_NO_CONTROLS, err);
    if (rc)
        return rc;
    if (!id[0])
        return ts_fail(err, TS_EINVAL, "empty identifier");
    job->access.probe = true;
    job->cacheable = false;               /* the answer is per token */
    job->freshness = TS_FRESH_REVALIDATE; /* and so is never reused without asking */
    job->produce = produce_probe;
    ts_product_set_type(&job->out, "application/json");
    rc = ts_buf_append_str(&job->identifier, id);
    rc = rc ? rc : ts_buf_append_str(&job->key, "auth probe");
    return rc ? ts_fail(err, rc, "identifier too long") : TS_OK;
}

int auth_job(const struct ts_app *app, const struct ts_request *req, struct ts_job *job,
             struct ts_err *err)
{
    const char *path = req->path;
    if (!app->access || strncmp(path, "/auth/", 6) != 0)
        return TS_DECLINED;
    path += 6;
    if (!strncmp(path, "probe/", 6))
        return probe_job(path + 6, job, err);
    static const char *const services[] = {"access/", "token/", "logout/"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(services[i]);
        if (strncmp(path, services[i], n) != 0)
            continue;
        const struct ts_access_rule *r = ts_access_rule_named(app->access, path + n);
        ts_job_init(job, TS_JOB_REPLY);
        if (i == 1)
            return token_service(app, req, r, job); /* errors go by postMessage too */
        if (!r || r->profile == TS_PROFILE_OPEN || r->profile == TS_PROFILE_HOOK)
            return ts_fail(err, TS_ENOTFOUND, "no such access rule");
        return i == 0 ? access_service(app, req, r, job, err) : logout(app, req, job);
    }
    return ts_fail(err, TS_ENOTFOUND, "no such auth service");
}
