/* Access rules: parsed from the configuration, matched against the resolved image, and decided
 * once per request here, so that every protocol and every cache obeys the same answer. */
#include "core/access.h"
#include "core/app.h"
#include "util/url.h"

#include <errno.h>
#include <fnmatch.h>
#include <ini.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define RULES_MAX 256
#define SECRET_MIN 32

struct parse_ctx {
    struct ts_access *a;
    struct ts_err *err;
    int status;
};

static int bad(struct parse_ctx *c, const char *section, const char *name, const char *why)
{
    c->status = ts_fail(c->err, TS_EINVAL, "[%s] %s: %s", section, name, why);
    return 0;
}

static bool copy(char *dst, size_t cap, const char *v)
{
    if (strlen(v) >= cap)
        return false;
    memcpy(dst, v, strlen(v) + 1);
    return true;
}

static bool parse_uint(const char *v, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long n = v[0] >= '0' && v[0] <= '9' ? strtoul(v, &end, 10) : 0;
    if (v[0] < '0' || v[0] > '9' || errno || *end || n < min || n > max)
        return false;
    *out = n;
    return true;
}

static bool parse_bool(const char *v, bool *out)
{
    if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "1") || !*v)
        *out = true;
    else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "0"))
        *out = false;
    else
        return false;
    return true;
}

static int read_secret_file(struct ts_access *a, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return TS_EIO;
    char line[sizeof a->secret + 2] = "";
    bool got = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    if (!got || strlen(line) >= sizeof a->secret)
        return TS_EINVAL;
    a->secret_len = strlen(line);
    memcpy(a->secret, line, a->secret_len);
    return TS_OK;
}

static int on_auth(struct parse_ctx *c, const char *s, const char *n, const char *v)
{
    struct ts_access *a = c->a;
    unsigned long u;
    if (!strcmp(n, "secret")) {
        if (strlen(v) >= sizeof a->secret)
            return bad(c, s, n, "too long");
        a->secret_len = strlen(v);
        memcpy(a->secret, v, a->secret_len);
    } else if (!strcmp(n, "secret-file")) {
        if (read_secret_file(a, v) != TS_OK)
            return bad(c, s, n, "cannot read a secret from that file");
    } else if (!strcmp(n, "users")) {
        if (!copy(a->users, sizeof a->users, v))
            return bad(c, s, n, "path too long");
    } else if (!strcmp(n, "session-ttl") || !strcmp(n, "token-ttl")) {
        if (!parse_uint(v, 1, 31u * 24 * 3600, &u))
            return bad(c, s, n, "wants seconds from 1 to 2678400");
        *(n[0] == 's' ? &a->session_ttl : &a->token_ttl) = (unsigned)u;
    } else if (!strcmp(n, "origins")) {
        if (!copy(a->origins, sizeof a->origins, v))
            return bad(c, s, n, "too long");
    } else if (!strcmp(n, "hook")) {
        if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
            return bad(c, s, n, "wants an http:// or https:// URL");
        if (!copy(a->hook_url, sizeof a->hook_url, v))
            return bad(c, s, n, "too long");
    } else if (!strcmp(n, "hook-timeout")) {
        if (!parse_uint(v, 1, 10000, &u))
            return bad(c, s, n, "wants milliseconds from 1 to 10000");
        a->hook_timeout_ms = (unsigned)u;
    } else if (!strcmp(n, "hook-cache-ttl")) {
        if (!parse_uint(v, 0, 3600, &u))
            return bad(c, s, n, "wants seconds from 0 to 3600");
        a->hook_ttl = (unsigned)u;
    } else if (!strcmp(n, "hook-cache-entries")) {
        if (!parse_uint(v, 0, 1000000, &u))
            return bad(c, s, n, "wants a count from 0 to 1000000");
        a->hook_entries = (unsigned)u;
    } else if (!strcmp(n, "maintenance")) {
        if (!parse_bool(v, &a->maintenance))
            return bad(c, s, n, "wants true or false");
    } else {
        return bad(c, s, n, "unknown setting");
    }
    return 1;
}

static struct ts_access_rule *rule_for(struct parse_ctx *c, const char *name)
{
    struct ts_access *a = c->a;
    for (size_t i = 0; i < a->nrules; i++)
        if (!strcmp(a->rules[i].name, name))
            return &a->rules[i];
    if (a->nrules == RULES_MAX)
        return NULL;
    struct ts_access_rule *more = realloc(a->rules, (a->nrules + 1) * sizeof *more);
    if (!more)
        return NULL;
    a->rules = more;
    struct ts_access_rule *r = &a->rules[a->nrules++];
    memset(r, 0, sizeof *r);
    r->profile = -1;
    snprintf(r->name, sizeof r->name, "%s", name);
    return r;
}

static int on_profile(struct parse_ctx *c, struct ts_access_rule *r, const char *s, const char *v)
{
    static const struct {
        const char *name;
        enum ts_access_profile p;
    } profiles[] = {{"open", TS_PROFILE_OPEN},
                    {"login", TS_PROFILE_LOGIN},
                    {"clickthrough", TS_PROFILE_CLICKTHROUGH},
                    {"kiosk", TS_PROFILE_KIOSK},
                    {"external", TS_PROFILE_EXTERNAL},
                    {"hook", TS_PROFILE_HOOK}};
    for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++)
        if (!strcmp(v, profiles[i].name)) {
            r->profile = profiles[i].p;
            return 1;
        }
    return bad(c, s, "profile", "wants open, login, clickthrough, kiosk, external or hook");
}

static int on_networks(struct parse_ctx *c, struct ts_access_rule *r, const char *s, const char *v)
{
    char one[64];
    while (*v) {
        size_t n = strcspn(v, " ,");
        if (n) {
            if (n >= sizeof one || r->nnets == TS_ACCESS_NETS)
                return bad(c, s, "networks", "too many or too long");
            memcpy(one, v, n);
            one[n] = '\0';
            if (ts_access_parse_net(one, &r->nets[r->nnets++]) != TS_OK)
                return bad(c, s, "networks", "wants addresses or CIDR ranges");
        }
        v += n + (v[n] != '\0');
    }
    return 1;
}

static int on_header(struct parse_ctx *c, struct ts_access_rule *r, const char *s, const char *v)
{
    size_t n = strcspn(v, ":");
    if (n == 0 || n >= sizeof r->header)
        return bad(c, s, "header", "wants Name or Name: value");
    memcpy(r->header, v, n);
    r->header[n] = '\0';
    const char *val = v[n] ? v + n + 1 : "";
    while (*val == ' ')
        val++;
    return copy(r->header_value, sizeof r->header_value, val) ? 1 : bad(c, s, "header", "too long");
}

static int on_rule(struct parse_ctx *c, const char *s, const char *n, const char *v)
{
    const char *name = s + strlen("access");
    while (*name == ' ')
        name++;
    if (!*name)
        return bad(c, s, n, "an access section needs a name: [access NAME]");
    struct ts_access_rule *r = rule_for(c, name);
    if (!r)
        return bad(c, s, n, "too many rules");
    unsigned long u;
    if (!strcmp(n, "match")) {
        if (r->nmatch == TS_ACCESS_PATTERNS || !*v)
            return bad(c, s, n, "empty, or too many patterns");
        const char *p = v[0] == '/' ? v + 1 : v; /* identifiers are read below the root */
        if (!copy(r->match[r->nmatch++], sizeof r->match[0], p))
            return bad(c, s, n, "too long");
    } else if (!strcmp(n, "profile")) {
        return on_profile(c, r, s, v);
    } else if (!strcmp(n, "degraded-size")) {
        if (!parse_uint(v, 1, 1u << 20, &u))
            return bad(c, s, n, "wants pixels from 1");
        r->degraded_size = (uint32_t)u;
    } else if (!strcmp(n, "degraded-watermark")) {
        if (!parse_bool(v, &r->degraded_watermark))
            return bad(c, s, n, "wants true or false");
    } else if (!strcmp(n, "header")) {
        return on_header(c, r, s, v);
    } else if (!strcmp(n, "networks")) {
        return on_networks(c, r, s, v);
    } else if (!strcmp(n, "label") || !strcmp(n, "heading") || !strcmp(n, "note") ||
               !strcmp(n, "confirm-label")) {
        char *dst = n[0] == 'l'   ? r->label
                    : n[0] == 'h' ? r->heading
                    : n[0] == 'n' ? r->note
                                  : r->confirm;
        size_t cap = n[0] == 'l'   ? sizeof r->label
                     : n[0] == 'h' ? sizeof r->heading
                     : n[0] == 'n' ? sizeof r->note
                                   : sizeof r->confirm;
        if (!copy(dst, cap, v))
            return bad(c, s, n, "too long");
    } else {
        return bad(c, s, n, "unknown setting");
    }
    return 1;
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
    struct parse_ctx *c = user;
    if (!strcmp(section, "auth"))
        return on_auth(c, section, name, value);
    if (!strncmp(section, "access", 6) && (section[6] == ' ' || section[6] == '\0'))
        return on_rule(c, section, name, value);
    return bad(c, section, name, "not an access section");
}

static bool name_ok(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '-'))
            return false;
    return true;
}

static int check_rules(struct ts_access *a, struct ts_err *err)
{
    bool needs_secret = false;
    for (size_t i = 0; i < a->nrules; i++) {
        struct ts_access_rule *r = &a->rules[i];
        if (!name_ok(r->name))
            return ts_fail(err, TS_EINVAL, "[access %s]: names are letters, digits, '.', '_', '-'",
                           r->name);
        if (!r->nmatch)
            return ts_fail(err, TS_EINVAL, "[access %s]: no match = pattern", r->name);
        if ((int)r->profile < 0)
            return ts_fail(err, TS_EINVAL,
                           "[access %s]: no profile (open, login, clickthrough, kiosk, external, "
                           "hook)",
                           r->name);
        if (r->profile == TS_PROFILE_EXTERNAL && !r->header[0] && !r->nnets)
            return ts_fail(err, TS_EINVAL, "[access %s]: external wants a header or networks",
                           r->name);
        if (r->profile == TS_PROFILE_HOOK && !a->hook_url[0])
            return ts_fail(err, TS_EINVAL, "[access %s]: hook wants [auth] hook = URL", r->name);
        if (r->profile == TS_PROFILE_LOGIN && !a->users[0])
            return ts_fail(err, TS_EINVAL, "[access %s]: login wants [auth] users = FILE", r->name);
        if (!r->label[0])
            snprintf(r->label, sizeof r->label, "%s",
                     r->profile == TS_PROFILE_CLICKTHROUGH ? "Accept the terms of use"
                     : r->profile == TS_PROFILE_EXTERNAL   ? "Access from the reading room"
                                                           : "Log in");
        if (!r->confirm[0])
            snprintf(r->confirm, sizeof r->confirm, "%s",
                     r->profile == TS_PROFILE_CLICKTHROUGH ? "Accept" : "Log in");
        needs_secret |= r->profile != TS_PROFILE_OPEN;
        a->mark_degraded_only |= r->degraded_watermark;
    }
    if (needs_secret && a->secret_len < SECRET_MIN)
        return ts_fail(err, TS_EINVAL,
                       "access rules need [auth] secret (or secret-file) of at least %d bytes to "
                       "sign cookies and tokens",
                       SECRET_MIN);
    for (const char *o = a->origins; *o;) {
        size_t n = strcspn(o, " ,");
        char one[256];
        if (n >= sizeof one)
            return ts_fail(err, TS_EINVAL, "[auth] origins: too long");
        memcpy(one, o, n);
        one[n] = '\0';
        if (n && !ts_access_origin_ok(one))
            return ts_fail(err, TS_EINVAL, "[auth] origins: '%s' is not scheme://host[:port]", one);
        o += n + (o[n] != '\0');
    }
    return TS_OK;
}

int ts_access_parse(const char *text, struct ts_access **out, struct ts_err *err)
{
    *out = NULL;
    if (!text || !*text)
        return TS_OK;
    struct ts_access *a = calloc(1, sizeof *a);
    if (!a)
        return ts_fail(err, TS_ENOMEM, "out of memory");
    a->session_ttl = 3600;
    a->token_ttl = 300;
    a->hook_timeout_ms = 500;
    a->hook_ttl = 30;
    a->hook_entries = 1024;
    struct parse_ctx c = {a, err, TS_OK};
    int line = ini_parse_string(text, on_entry, &c);
    int rc = c.status ? c.status : line ? ts_fail(err, TS_EINVAL, "access rules: syntax") : TS_OK;
    rc = rc ? rc : check_rules(a, err);
    rc = rc || !a->hook_url[0] ? rc : ts_access_hook_create(a, err);
    if (rc || !a->nrules) {
        ts_access_free(a);
        return rc;
    }
    *out = a;
    return TS_OK;
}

void ts_access_free(struct ts_access *a)
{
    if (!a)
        return;
    ts_access_hook_free(a);
    free(a->rules);
    free(a);
}

static bool matches(const char *pattern, const char *rel)
{
    size_t n = strlen(pattern);
    if (n && pattern[n - 1] == '/') /* a folder: everything below it */
        return !strncmp(rel, pattern, n);
    return fnmatch(pattern, rel, 0) == 0;
}

const struct ts_access_rule *ts_access_match(const struct ts_access *a, const char *rel)
{
    for (size_t i = 0; a && i < a->nrules; i++)
        for (int k = 0; k < a->rules[i].nmatch; k++)
            if (matches(a->rules[i].match[k], rel))
                return &a->rules[i];
    return NULL;
}

const struct ts_access_rule *ts_access_rule_named(const struct ts_access *a, const char *name)
{
    for (size_t i = 0; a && i < a->nrules; i++)
        if (!strcmp(a->rules[i].name, name))
            return &a->rules[i];
    return NULL;
}

/* ---- per request ---- */

/* The file's place below the root: what rules name, whatever spelling the request used. */
static const char *relative_path(const struct ts_app *app, const struct ts_job *job, char *buf,
                                 size_t size)
{
    const struct source_file *src = &job->src;
    if (src->demo)
        return "demo";
    /* A remote object's path is its URL: its place in the rules' namespace is the identifier
     * (PREFIX/rest of its --source rule), which names nothing else. */
    const char *p;
    if (src->st.st_dev == SOURCE_REMOTE_DEV) /* NUL-terminated by the core's ts_buf_str */
        p = job->identifier.len ? (const char *)job->identifier.data : "";
    else
        p = ts_app_place(app, src, buf, size);
    while (*p == '/')
        p++;
    return p;
}

/* 1 when the request's credential grants rule r, 0 when it presents none, -1 when it presents
 * one that does not (forged, expired, a token as a cookie, another rule's). */
static int credential(const struct ts_access *a, const struct ts_access_rule *r,
                      const struct ts_request *req, bool probe)
{
    struct ts_grant g;
    const char *text;
    size_t len = 0;
    if (probe) {
        const char *auth = ts_request_header(req, "Authorization");
        if (!auth)
            return 0;
        if (strncasecmp(auth, "Bearer ", 7) != 0)
            return -1;
        text = auth + 7;
        len = strlen(text);
    } else if (r->profile == TS_PROFILE_EXTERNAL) {
        return ts_access_external(r, req);
    } else {
        text = ts_access_cookie(ts_request_header(req, "Cookie"), &len);
    }
    enum ts_cred v = ts_access_verify(a, probe ? TS_CRED_TOKEN : TS_CRED_COOKIE, text, len,
                                      (int64_t)time(NULL), &g);
    if (v == TS_CRED_MISSING)
        return 0;
    return v == TS_CRED_OK && ts_grant_has(&g, r->name) ? 1 : -1;
}

/* A hook rule's tier: the hook is told who asks (the user of a genuine cookie, whatever rule
 * granted it) and from where. */
static int hook_verdict(const struct ts_access *a, const struct ts_request *req, struct ts_job *job,
                        const char *rel, struct ts_err *err)
{
    struct ts_grant g;
    size_t len = 0;
    const char *text = ts_access_cookie(ts_request_header(req, "Cookie"), &len);
    bool known =
        ts_access_verify(a, TS_CRED_COOKIE, text, len, (int64_t)time(NULL), &g) == TS_CRED_OK;
    struct ts_access_hook_question q = {
        .id = job->identifier.len ? (const char *)job->identifier.data : NULL,
        .rel = rel,
        .client = req->remote,
        .user = known && g.user[0] ? g.user : NULL,
    };
    job->access.deny = TS_EFORBIDDEN;
    return ts_access_hook_decide(a, &q, job->access.may_call, &job->access.tier, &job->access.deny,
                                 err);
}

int ts_access_apply(const struct ts_app *app, const struct ts_request *req, struct ts_job *job,
                    struct ts_err *err)
{
    const struct ts_access *a = app->access;
    if (!a || job->kind != TS_JOB_IMAGE)
        return TS_OK;
    char place[PATH_MAX + 512];
    const char *rel = relative_path(app, job, place, sizeof place);
    const struct ts_access_rule *r = ts_access_match(a, rel);
    job->access.rule = r;
    job->access.tier = TS_TIER_FULL;
    if (!r || r->profile == TS_PROFILE_OPEN)
        return TS_OK;
    bool degraded = r->degraded_size || r->degraded_watermark;
    if (r->profile == TS_PROFILE_HOOK) {
        int rc = hook_verdict(a, req, job, rel, err);
        if (rc) /* TS_DEFERRED before anything below was touched: it runs again on a worker */
            return rc;
        /* A degraded tier the rule does not define shows nothing. */
        if (job->access.tier == TS_TIER_DEGRADED && !degraded)
            job->access.tier = TS_TIER_DENIED;
    }
    ts_buf_init_capped(&job->access.base, 2048);
    if (ts_app_public_base(app, req, &job->access.base) != TS_OK || !ts_buf_str(&job->access.base))
        return ts_fail(err, TS_ETOOLONG, "Host too long");
    if (r->profile != TS_PROFILE_HOOK) {
        int have = credential(a, r, req, job->access.probe);
        job->access.tier = have > 0 ? TS_TIER_FULL : degraded ? TS_TIER_DEGRADED : TS_TIER_DENIED;
        job->access.deny = have < 0 ? TS_EFORBIDDEN : TS_EUNAUTH;
    }
    int rc = ts_buf_appendf(&job->key, "\naccess %s %s %u %d %d", r->name,
                            job->access.tier == TS_TIER_FULL       ? "full"
                            : job->access.tier == TS_TIER_DEGRADED ? "degraded"
                                                                   : "denied",
                            r->degraded_size, r->degraded_watermark, job->access.deny);
    if (rc)
        return ts_fail(err, TS_ETOOLONG, "request too long");
    if (job->access.tier == TS_TIER_DENIED && !job->access.probe && !job->access.describes)
        return ts_fail(err, job->access.deny, "restricted image: %s",
                       job->access.deny == TS_EUNAUTH
                           ? "credentials required (see the probe service in info.json)"
                           : "these credentials do not grant it");
    if (job->access.tier == TS_TIER_DEGRADED && job->sample)
        return ts_fail(err, TS_EFORBIDDEN, "restricted image: samples need full access");
    return TS_OK;
}

bool ts_access_private(const struct ts_job *job)
{
    return job->access.rule && job->access.rule->profile != TS_PROFILE_OPEN;
}

bool ts_access_marks(const struct ts_access *a, const struct ts_job *job)
{
    if (!a || !a->mark_degraded_only)
        return true; /* the server's watermark goes on everything, as iipsrv's WATERMARK */
    return job->access.tier == TS_TIER_DEGRADED && job->access.rule &&
           job->access.rule->degraded_watermark;
}

void ts_access_virtual_info(uint32_t max, const struct ts_image_info *full,
                            struct ts_image_info *out)
{
    *out = *full;
    uint32_t longer = full->width > full->height ? full->width : full->height;
    if (!max || longer <= max)
        return;
    double s = (double)max / longer;
    uint32_t vw = (uint32_t)lround(full->width * s), vh = (uint32_t)lround(full->height * s);
    out->width = vw ? vw : 1;
    out->height = vh ? vh : 1;
    out->levels[0] = full->levels[0];
    out->levels[0].width = out->width;
    out->levels[0].height = out->height;
    out->nlevels = 1;
    for (uint32_t i = 1; i < full->nlevels && i < TS_MAX_LEVELS; i++)
        if (full->levels[i].width < out->width && full->levels[i].height < out->height)
            out->levels[out->nlevels++] = full->levels[i];
}

int ts_access_map_plan(const struct ts_image_info *virt, const struct ts_image_info *full,
                       struct ts_plan *plan, struct ts_err *err)
{
    if (virt->width == full->width && virt->height == full->height)
        return TS_OK;
    if (plan->out_w > plan->rw || plan->out_h > plan->rh)
        return ts_fail(err, TS_EFORBIDDEN,
                       "restricted image: the degraded view is served no larger than %" PRIu32
                       "x%" PRIu32,
                       virt->width, virt->height);
    double sx = (double)full->width / virt->width, sy = (double)full->height / virt->height;
    double x0 = floor(plan->rx * sx), y0 = floor(plan->ry * sy);
    double x1 = fmin(ceil((plan->rx + (double)plan->rw) * sx), full->width);
    double y1 = fmin(ceil((plan->ry + (double)plan->rh) * sy), full->height);
    plan->rx = (uint32_t)x0;
    plan->ry = (uint32_t)y0;
    plan->rw = x1 > x0 ? (uint32_t)(x1 - x0) : 1;
    plan->rh = y1 > y0 ? (uint32_t)(y1 - y0) : 1;
    plan->img_w = full->width;
    plan->img_h = full->height;
    return TS_OK;
}

/* {"en": [text]} */
static json_t *lang(const char *text)
{
    return json_pack("{s:[s]}", "en", text);
}

static int service_url(const struct ts_job *job, const char *what, const char *tail, bool encode,
                       json_t **out)
{
    struct ts_buf u = {0};
    ts_buf_init_capped(&u, TS_JOB_KEY_MAX * 3 + 4096);
    int rc = ts_buf_appendf(&u, "%s/auth/%s/", (const char *)job->access.base.data, what);
    rc = rc ? rc : encode ? url_encode_append(&u, tail, false) : ts_buf_append_str(&u, tail);
    const char *s = rc ? NULL : ts_buf_str(&u);
    *out = s ? json_string(s) : NULL;
    ts_buf_free(&u);
    return *out ? TS_OK : TS_ENOMEM;
}

static json_t *access_service(const struct ts_job *job, const struct ts_access_rule *r)
{
    json_t *token = NULL, *logout = NULL, *id = NULL;
    if (service_url(job, "token", r->name, false, &token) ||
        service_url(job, "logout", r->name, false, &logout) ||
        (r->profile != TS_PROFILE_EXTERNAL && service_url(job, "access", r->name, false, &id))) {
        json_decref(token);
        json_decref(logout);
        return NULL;
    }
    const char *profile = r->profile == TS_PROFILE_KIOSK      ? "kiosk"
                          : r->profile == TS_PROFILE_EXTERNAL ? "external"
                                                              : "active";
    json_t *s = json_object();
    if (id)
        json_object_set_new(s, "id", id);
    json_object_set_new(s, "type", json_string("AuthAccessService2"));
    json_object_set_new(s, "profile", json_string(profile));
    json_object_set_new(s, "label", lang(r->label));
    if (r->profile == TS_PROFILE_LOGIN || r->profile == TS_PROFILE_CLICKTHROUGH) {
        if (r->heading[0])
            json_object_set_new(s, "heading", lang(r->heading));
        if (r->note[0])
            json_object_set_new(s, "note", lang(r->note));
        json_object_set_new(s, "confirmLabel", lang(r->confirm));
    }
    json_object_set_new(s, "service",
                        json_pack("[{s:o,s:s},{s:o,s:s,s:o}]", "id", token, "type",
                                  "AuthAccessTokenService2", "id", logout, "type",
                                  "AuthLogoutService2", "label", lang("Log out")));
    return s;
}

json_t *ts_access_probe_service(const struct ts_job *job, bool with_context)
{
    const struct ts_access_rule *r = job->access.rule;
    /* A hook's decisions have no access service a viewer could open. */
    if (!r || r->profile == TS_PROFILE_OPEN || r->profile == TS_PROFILE_HOOK)
        return NULL;
    const char *id = (const char *)job->identifier.data; /* NUL-ended since the core resolved it */
    json_t *probe_id = NULL;
    if (!id || service_url(job, "probe", id, true, &probe_id))
        return NULL;
    json_t *access = access_service(job, r);
    if (!access) {
        json_decref(probe_id);
        return NULL;
    }
    json_t *probe = json_object();
    if (with_context)
        json_object_set_new(probe, "@context", json_string(TS_ACCESS_CONTEXT));
    json_object_set_new(probe, "id", probe_id);
    json_object_set_new(probe, "type", json_string("AuthProbeService2"));
    json_object_set_new(probe, "service", json_pack("[o]", access));
    return probe;
}

int ts_access_context_first(json_t *doc)
{
    json_t *ctx = json_object_get(doc, "@context");
    if (json_is_string(ctx))
        return json_object_set_new(doc, "@context", json_pack("[s,O]", TS_ACCESS_CONTEXT, ctx))
                   ? TS_ENOMEM
                   : TS_OK;
    return TS_OK;
}

int ts_access_describe(const struct ts_job *job, int version, json_t *root)
{
    const struct ts_access_rule *r = job->access.rule;
    if (!r || r->profile == TS_PROFILE_OPEN || r->profile == TS_PROFILE_HOOK ||
        !json_is_object(root))
        return TS_OK;
    /* Embedded in a 3.0 document, the auth context goes in the document's list instead. */
    json_t *probe = ts_access_probe_service(job, version < 3);
    if (!probe)
        return TS_ENOMEM;
    json_t *services = json_object_get(root, "service");
    if (json_is_object(services)) /* 2.1 allows one service as an object */
        json_object_set_new(root, "service", services = json_pack("[O]", services));
    if (!json_is_array(services))
        json_object_set_new(root, "service", services = json_array());
    json_array_append_new(services, probe);
    /* Auth 2.0 section 2.1: its context comes first in the image service's list. */
    return version >= 3 ? ts_access_context_first(root) : TS_OK;
}
