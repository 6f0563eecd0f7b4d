/* The admin endpoint: authentication and the purge request; the core does the purging. */
#include "protocol/admin.h"
#include "util/url.h"

#include <string.h>
#include <strings.h>

/* Compares every byte of the token whatever the guess holds: a guess as long as the token is
 * read whole, a shorter or longer one is read up to the token's length. */
static bool same_secret(const char *guess, size_t guess_len, const char *token)
{
    size_t n = strlen(token);
    volatile unsigned char diff = guess_len != n;
    for (size_t i = 0; i < n; i++) {
        unsigned char g = i < guess_len ? (unsigned char)guess[i] : 0;
        diff |= g ^ (unsigned char)token[i];
    }
    return diff == 0;
}

bool admin_authorized(const char *authorization, const char *token)
{
    if (!authorization || !token || !*token)
        return false;
    /* RFC 6750: "Bearer" (any case), one or more spaces, the token. */
    if (strncasecmp(authorization, "Bearer ", 7) != 0)
        return false;
    const char *p = authorization + 7;
    while (*p == ' ')
        p++;
    size_t len = strlen(p);
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    return same_secret(p, len, token);
}

/* The decoded value of parameter name in query, appended to out (NUL-terminated). */
static int query_param(const char *query, const char *name, struct ts_buf *out, struct ts_err *err)
{
    size_t nlen = strlen(name);
    for (const char *p = query; p && *p;) {
        size_t len = strcspn(p, "&");
        if (len > nlen && !strncmp(p, name, nlen) && p[nlen] == '=') {
            size_t vlen = len - nlen - 1;
            if (ts_buf_reserve(out, vlen + 1) != TS_OK)
                return ts_fail(err, TS_ETOOLONG, "the identifier is too long");
            int rc =
                url_decode(p + nlen + 1, vlen, (char *)out->data, vlen + 1, URL_NO_CONTROLS, err);
            if (rc)
                return rc;
            out->len = strlen((const char *)out->data);
            return out->len ? TS_OK : TS_DECLINED;
        }
        p += len + (p[len] == '&');
    }
    return TS_DECLINED;
}

int admin_job(const struct ts_app *app, const struct ts_request *req, struct ts_job *job,
              struct ts_err *err)
{
    const char *token = ts_app_live(app)->admin_token;
    if (!token[0])
        return ts_fail(err, TS_ENOTFOUND, "no such route");
    if (strcmp(req->path, "/admin/purge") != 0)
        return ts_fail(err, TS_ENOTFOUND, "no such admin route (there is POST /admin/purge)");
    const char *auth = ts_request_header(req, "Authorization");
    if (!admin_authorized(auth, token)) {
        ts_job_add_header(job, "WWW-Authenticate", "Bearer realm=\"tessera admin\"%s",
                          auth ? ", error=\"invalid_token\"" : "");
        return ts_fail(err, TS_EUNAUTH, "admin: %s bearer token",
                       auth ? "wrong (or malformed)" : "no");
    }
    if (strcmp(req->method, "POST") != 0) {
        ts_job_add_header(job, "Allow", "POST");
        return ts_fail(err, TS_EMETHOD, "purge wants POST");
    }
    ts_job_init(job, TS_JOB_PURGE);
    int rc = query_param(req->query, "id", &job->identifier, err);
    if (rc == TS_DECLINED)
        return ts_fail(err, TS_EINVAL, "purge wants ?id=IDENTIFIER (percent-encoded)");
    return rc;
}
