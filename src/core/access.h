/* Restricted images: access rules by folder or pattern, what a request may see under them, and
 * the signed cookies and tokens of the IIIF Authorization Flow API 2.0 that satisfy them. */
#ifndef TESSERA_ACCESS_H
#define TESSERA_ACCESS_H

#include "core/job.h"
#include "core/response.h"
#include "image/reader.h"
#include "render/plan.h"
#include "util/buf.h"
#include "util/status.h"

#include <stdbool.h>
#include <stdint.h>

struct ts_app;
struct json_t;

#define TS_ACCESS_NAME_MAX 64
#define TS_ACCESS_PATTERNS 8
#define TS_ACCESS_NETS 16
#define TS_ACCESS_COOKIE "tessera_access"
#define TS_ACCESS_CONTEXT "http://iiif.io/api/auth/2/context.json"

enum ts_access_profile {
    TS_PROFILE_OPEN,         /* everyone sees everything (an exception inside a restricted tree) */
    TS_PROFILE_LOGIN,        /* active: a login page checks the user file */
    TS_PROFILE_CLICKTHROUGH, /* active: a page whose terms the user accepts */
    TS_PROFILE_KIOSK,        /* kiosk: the access page grants at once (from the networks, if any) */
    TS_PROFILE_EXTERNAL,     /* external: a header a trusted front end sets, or a network */
    TS_PROFILE_HOOK,         /* the institution's own service decides ([auth] hook) */
};

struct ts_access_net {
    uint8_t addr[16]; /* IPv4 as ::ffff:a.b.c.d */
    unsigned bits;    /* prefix length over the 128 bits */
};

struct ts_access_rule {
    char name[TS_ACCESS_NAME_MAX];
    char match[TS_ACCESS_PATTERNS][512]; /* "folder/" (a prefix) or a glob of paths */
    int nmatch;
    enum ts_access_profile profile;
    uint32_t degraded_size;  /* everyone else gets the image up to this many pixels; 0 = not */
    bool degraded_watermark; /* everyone else gets the server's watermark */
    char header[64];         /* external: this request header ... */
    char header_value[256];  /* ... with this value ("" = any non-empty value) */
    struct ts_access_net nets[TS_ACCESS_NETS];
    int nnets;
    char label[256], heading[256], note[1024], confirm[64];
};

struct ts_access {
    struct ts_access_rule *rules; /* first match wins */
    size_t nrules;
    unsigned char secret[256]; /* the HMAC key of cookies and tokens */
    size_t secret_len;
    unsigned session_ttl;    /* seconds a cookie lasts */
    unsigned token_ttl;      /* seconds a token lasts (never beyond its cookie) */
    char users[4096];        /* user:crypt-hash lines; "" = no logins */
    char origins[1024];      /* origins tokens may go to, space-separated; "" = any */
    bool maintenance;        /* the token service answers "unavailable" */
    bool mark_degraded_only; /* some rule marks its degraded tier: marks go there only */
    char hook_url[1024];     /* the authorization hook; "" = none */
    unsigned hook_timeout_ms;
    unsigned hook_ttl;     /* seconds a decision is remembered; 0 = asked every time */
    unsigned hook_entries; /* decisions remembered at most */
    struct ts_access_hook *hook;
};

/* ---- the authorization hook (access_hook.c) ---- */

/* What the hook is asked: the image (identifier and path below the root), the client's address
 * and the user a genuine cookie names (either may be NULL). */
struct ts_access_hook_question {
    const char *id, *rel, *client, *user;
};

int ts_access_hook_create(struct ts_access *a, struct ts_err *err);
void ts_access_hook_free(struct ts_access *a);
/* The hook's decision (remembered, or asked for when may_call): TS_DEFERRED when it must be
 * asked and may_call is false; TS_EBUSY (503, logged) when it gave no decision in time. */
int ts_access_hook_decide(const struct ts_access *a, const struct ts_access_hook_question *q,
                          bool may_call, enum ts_access_tier *tier, int *deny, struct ts_err *err);

/* Parses the [auth] and [access NAME] sections (INI text, as config.c collects them). *out is
 * NULL when no rule is configured. TS_EINVAL with a reason for anything wrong, including rules
 * that need credentials without a secret of at least 32 bytes. */
int ts_access_parse(const char *text, struct ts_access **out, struct ts_err *err);
void ts_access_free(struct ts_access *a);

/* The rule for a path relative to the image root (first match), or NULL. */
const struct ts_access_rule *ts_access_match(const struct ts_access *a, const char *rel);
const struct ts_access_rule *ts_access_rule_named(const struct ts_access *a, const char *name);

/* ---- credentials (access_cred.c) ---- */

enum ts_cred {
    TS_CRED_OK,
    TS_CRED_MISSING, /* nothing presented */
    TS_CRED_INVALID, /* malformed, forged, tampered with, or of the other kind */
    TS_CRED_EXPIRED, /* genuine, but past its time */
};

/* What a cookie or a token grants. */
struct ts_grant {
    char rules[1024]; /* rule names, comma-separated */
    char origin[256]; /* the viewer's origin the access service was opened from ("" = none) */
    char user[64];    /* the login, or "" */
    int64_t expires;  /* Unix seconds */
};

#define TS_CRED_COOKIE 'c'
#define TS_CRED_TOKEN 't'

/* Appends the signed text of g as a cookie or a token (kind): base64url payload '.' HMAC-SHA256.
 * Tokens carry a random nonce, so a token is never a cookie's text. */
int ts_access_sign(const struct ts_access *a, char kind, const struct ts_grant *g,
                   struct ts_buf *out);
/* Checks text (len bytes) as a credential of that kind at time now; fills g when TS_CRED_OK. */
enum ts_cred ts_access_verify(const struct ts_access *a, char kind, const char *text, size_t len,
                              int64_t now, struct ts_grant *g);
bool ts_grant_has(const struct ts_grant *g, const char *rule);
/* Adds rule to g's list (no duplicates); false when it does not fit. */
bool ts_grant_add(struct ts_grant *g, const char *rule);
/* Our cookie's value in a Cookie header (NULL when absent); *len is its length. */
const char *ts_access_cookie(const char *cookie_header, size_t *len);
/* Whether text can be a rule name, a user or an origin inside a credential. */
bool ts_access_origin_ok(const char *origin);
/* TS_OK when user's password matches the user file's crypt(3) hash; TS_EFORBIDDEN when not (or
 * no such user); TS_EIO when the file cannot be read. */
int ts_access_check_user(const struct ts_access *a, const char *user, const char *password,
                         struct ts_err *err);
/* Whether the numeric address falls in one of the rule's networks. */
bool ts_access_in_networks(const struct ts_access_rule *r, const char *addr);
/* Parses "10.0.0.0/8" or "2001:db8::/32" (a bare address is one host). */
int ts_access_parse_net(const char *text, struct ts_access_net *out);

/* The external aspect of a request for rule r: 1 present and right, 0 absent, -1 presented but
 * wrong (the header with another value). */
int ts_access_external(const struct ts_access_rule *r, const struct ts_request *req);

/* ---- the core's part ---- */

/* Decides what the request may see of the job's resolved image and records it in job->access;
 * extends the job's key by the tier, so full, degraded and refused answers never share a cache
 * entry or a validator. Returns TS_EUNAUTH / TS_EFORBIDDEN when the job may not be served, and
 * TS_DEFERRED (key and base untouched) when the authorization hook must be asked, which a network
 * thread must not wait for: a worker calls it again with job->access.may_call set. */
int ts_access_apply(const struct ts_app *app, const struct ts_request *req, struct ts_job *job,
                    struct ts_err *err);
/* The degraded image: full scaled so that its longer side is at most max, with the full
 * image's smaller levels below it. */
void ts_access_virtual_info(uint32_t max, const struct ts_image_info *full,
                            struct ts_image_info *out);
/* Maps a plan made against the virtual image onto the full one; TS_EFORBIDDEN for an output
 * larger than the degraded image's own pixels (it would show detail the tier does not grant). */
int ts_access_map_plan(const struct ts_image_info *virt, const struct ts_image_info *full,
                       struct ts_plan *plan, struct ts_err *err);
/* Whether this job's render gets the server's watermark. */
bool ts_access_marks(const struct ts_access *a, const struct ts_job *job);
/* Adds the probe service (with its access, token and logout services) for the job's rule to an
 * info.json document of that IIIF version; nothing when the image has no restricting rule. */
int ts_access_describe(const struct ts_job *job, int version, struct json_t *root);
/* The probe service (access, token and logout inside) for the job's restricted image, or NULL;
 * with_context for documents whose own @context does not list the auth context. */
struct json_t *ts_access_probe_service(const struct ts_job *job, bool with_context);
/* Makes a 3.0 document's @context a list that starts with the auth context. */
int ts_access_context_first(struct json_t *doc);
/* Whether answers about this job depend on the request's credentials (Vary, private). */
bool ts_access_private(const struct ts_job *job);

#endif
