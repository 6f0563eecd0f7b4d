/* Remote objects over HTTP(S) and S3 (libcurl, SigV4 by libcurl itself), as byte sources. */
#include "image/remote.h"
#include "image/source.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Idle easy handles kept for their open connections (keep-alive to the source). */
#define REMOTE_IDLE_HANDLES 32

struct ts_remote {
    struct ts_remote_options opt; /* the strings below are its own copies */
    char *s3_endpoint, *s3_region, *s3_access_key, *s3_secret_key, *sigv4;
    struct ts_block_store blocks;
    bool have_blocks;
    pthread_mutex_t lock;
    CURL *idle[REMOTE_IDLE_HANDLES];
    unsigned nidle;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_start(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

int ts_remote_create(const struct ts_remote_options *opt, struct ts_remote **out,
                     struct ts_err *err)
{
    *out = NULL;
    pthread_once(&curl_once, curl_start);
    struct ts_remote *rm = calloc(1, sizeof *rm);
    if (!rm)
        return ts_fail(err, TS_ENOMEM, "out of memory");
    pthread_mutex_init(&rm->lock, NULL);
    rm->opt = *opt;
    rm->s3_endpoint = dup_or_empty(opt->s3_endpoint);
    rm->s3_region =
        dup_or_empty(opt->s3_region && opt->s3_region[0] ? opt->s3_region : "us-east-1");
    rm->s3_access_key = dup_or_empty(opt->s3_access_key);
    rm->s3_secret_key = dup_or_empty(opt->s3_secret_key);
    size_t n = strlen(rm->s3_region ? rm->s3_region : "") + 16;
    rm->sigv4 = malloc(n);
    if (rm->sigv4 && rm->s3_region)
        snprintf(rm->sigv4, n, "aws:amz:%s:s3", rm->s3_region);
    if (!rm->s3_endpoint || !rm->s3_region || !rm->s3_access_key || !rm->s3_secret_key ||
        !rm->sigv4) {
        ts_remote_destroy(rm);
        return ts_fail(err, TS_ENOMEM, "out of memory");
    }
    /* The endpoint's trailing slashes would double the one before the bucket. */
    for (size_t e = strlen(rm->s3_endpoint); e > 0 && rm->s3_endpoint[e - 1] == '/'; e--)
        rm->s3_endpoint[e - 1] = '\0';
    rm->opt.s3_endpoint = rm->s3_endpoint;
    rm->opt.s3_region = rm->s3_region;
    rm->opt.s3_access_key = rm->s3_access_key;
    rm->opt.s3_secret_key = rm->s3_secret_key;
    if (opt->blocks) {
        rm->blocks = *opt->blocks;
        rm->have_blocks = true;
    }
    *out = rm;
    return TS_OK;
}

void ts_remote_destroy(struct ts_remote *rm)
{
    if (!rm)
        return;
    for (unsigned i = 0; i < rm->nidle; i++)
        curl_easy_cleanup(rm->idle[i]);
    pthread_mutex_destroy(&rm->lock);
    /* Not left behind in freed memory for a core dump to show. */
    if (rm->s3_secret_key)
        explicit_bzero(rm->s3_secret_key, strlen(rm->s3_secret_key));
    free(rm->s3_endpoint);
    free(rm->s3_region);
    free(rm->s3_access_key);
    free(rm->s3_secret_key);
    free(rm->sigv4);
    free(rm);
}

/* ---- addresses ---- */

bool ts_remote_base_ok(const char *base)
{
    if (!strncmp(base, "s3://", 5))
        return base[5] && base[5] != '/';
    const char *host = !strncmp(base, "http://", 7)    ? base + 7
                       : !strncmp(base, "https://", 8) ? base + 8
                                                       : NULL;
    return host && *host && *host != '/';
}

static int put(char *out, size_t size, size_t *at, const char *s, size_t n)
{
    if (n >= size - *at)
        return TS_ETOOLONG;
    memcpy(out + *at, s, n);
    *at += n;
    out[*at] = '\0';
    return TS_OK;
}

/* Appends s percent-encoded (its '/' kept as separators). */
static int put_encoded(char *out, size_t size, size_t *at, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~' || c == '/';
        char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
        if (put(out, size, at, plain ? (const char *)s : esc, plain ? 1 : 3))
            return TS_ETOOLONG;
    }
    return TS_OK;
}

int ts_remote_url(const char *base, const char *rest, const char *s3_endpoint,
                  const char *s3_region, char *out, size_t size, struct ts_err *err)
{
    size_t at = 0;
    int rc = TS_OK;
    if (!size || !ts_remote_base_ok(base))
        return ts_fail(err, TS_EINVAL, "'%s' is not an http://, https:// or s3:// source", base);
    out[0] = '\0';
    const char *path = base;
    if (!strncmp(base, "s3://", 5)) {
        const char *bucket = base + 5;
        /* Path-style (endpoint/bucket/key): works with MinIO, Ceph and s3rver as with AWS. */
        if (s3_endpoint && s3_endpoint[0]) {
            rc = put(out, size, &at, s3_endpoint, strlen(s3_endpoint));
        } else {
            char aws[300];
            int n = snprintf(aws, sizeof aws, "https://s3.%s.amazonaws.com",
                             s3_region && s3_region[0] ? s3_region : "us-east-1");
            rc =
                n > 0 && (size_t)n < sizeof aws ? put(out, size, &at, aws, (size_t)n) : TS_ETOOLONG;
        }
        rc = rc ? rc : put(out, size, &at, "/", 1);
        rc = rc ? rc : put_encoded(out, size, &at, bucket);
    } else {
        /* The host and path of an http(s) base are the admin's, taken as written. */
        rc = put(out, size, &at, path, strlen(path));
    }
    if (rc == TS_OK && at > 0 && out[at - 1] != '/')
        rc = put(out, size, &at, "/", 1);
    rc = rc ? rc : put_encoded(out, size, &at, rest + strspn(rest, "/"));
    if (rc)
        return ts_fail(err, TS_ETOOLONG, "the source address of '%s' is too long", rest);
    return TS_OK;
}

/* ---- requests ---- */

static CURL *handle_take(struct ts_remote *rm)
{
    CURL *h = NULL;
    pthread_mutex_lock(&rm->lock);
    if (rm->nidle)
        h = rm->idle[--rm->nidle];
    pthread_mutex_unlock(&rm->lock);
    if (h)
        curl_easy_reset(h); /* options go, the open connections stay */
    else
        h = curl_easy_init();
    return h;
}

static void handle_give(struct ts_remote *rm, CURL *h, bool healthy)
{
    pthread_mutex_lock(&rm->lock);
    if (healthy && rm->nidle < REMOTE_IDLE_HANDLES) {
        rm->idle[rm->nidle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&rm->lock);
    if (h)
        curl_easy_cleanup(h);
}

struct call {
    CURL *h;
    /* GET: the bytes wanted land in buf[0, len) */
    uint8_t *buf;
    size_t len, got;
    uint64_t skip; /* a 200 to a ranged request: body bytes before the range */
    bool ranged, enough;
    /* HEAD and GET: what the headers said */
    char etag[256];
    struct curl_slist *headers; /* sent, freed by call_end */
};

static size_t on_header(char *line, size_t size, size_t n, void *user)
{
    struct call *c = user;
    size_t len = size * n;
    if (len > 5 && !strncasecmp(line, "ETag:", 5)) {
        const char *v = line + 5;
        size_t vl = len - 5;
        while (vl && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        if (vl < sizeof c->etag) {
            memcpy(c->etag, v, vl);
            c->etag[vl] = '\0';
        }
    }
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
    struct call *c = user;
    size_t len = size * n, used = len;
    long status = 0;
    if (!c->buf)
        return len;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200 && status != 206)
        return len; /* an error page: not our bytes */
    if (status == 200 && c->ranged && c->skip) {
        /* The server sent the whole object: pass over what lies before the range. */
        size_t pass = c->skip < len ? (size_t)c->skip : len;
        c->skip -= pass;
        data += pass;
        len -= pass;
    }
    size_t take = len < c->len - c->got ? len : c->len - c->got;
    memcpy(c->buf + c->got, data, take);
    c->got += take;
    if (c->got == c->len && take < len) {
        c->enough = true; /* the rest of a whole-object answer is not wanted */
        return 0;
    }
    (void)used;
    return size * n;
}

static void append_header(struct call *c, const char *line)
{
    struct curl_slist *more = curl_slist_append(c->headers, line);
    if (more)
        c->headers = more;
}

/* Sets up h for url: timeouts, protocols, and the S3 signature when the source is S3; if_match
 * (or NULL) names the only version the answer may come from. */
static void call_setup(struct ts_remote *rm, struct call *c, const char *url, bool s3,
                       const char *if_match)
{
    CURL *h = c->h;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)rm->opt.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)rm->opt.timeout_ms);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "tessera/" TESSERA_VERSION);
    char match[300];
    if (if_match && if_match[0] &&
        snprintf(match, sizeof match, "If-Match: %s", if_match) < (int)sizeof match)
        append_header(c, match);
    if (s3 && rm->s3_access_key[0]) {
        /* S3 wants the payload's hash in a header; libcurl signs with the value given there.
         * Requests here have no body: the hash of nothing. */
        append_header(c, "x-amz-content-sha256: "
                         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        curl_easy_setopt(h, CURLOPT_AWS_SIGV4, rm->sigv4);
        curl_easy_setopt(h, CURLOPT_USERNAME, rm->s3_access_key);
        curl_easy_setopt(h, CURLOPT_PASSWORD, rm->s3_secret_key);
    }
    if (c->headers)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
}

/* The status for a finished transfer: curl's failure, or the HTTP status that is not `ok`. */
static int call_verdict(CURLcode cc, long status, const char *url, struct ts_err *err)
{
    switch (cc) {
    case CURLE_OK: break;
    case CURLE_OPERATION_TIMEDOUT:
        return ts_fail(err, TS_EUPTIMEOUT, "source did not answer in time (%s)", url);
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return ts_fail(err, TS_EUPSTREAM, "source unreachable: %s (%s)", curl_easy_strerror(cc),
                       url);
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
        return ts_fail(err, TS_EUPSTREAM, "source broke off its answer (truncated object): %s (%s)",
                       curl_easy_strerror(cc), url);
    default:
        return ts_fail(err, TS_EUPSTREAM, "source failed: %s (%s)", curl_easy_strerror(cc), url);
    }
    if (status == 404 || status == 410)
        return ts_fail(err, TS_ENOTFOUND, "no such object at the source");
    if (status == 401 || status == 403)
        return ts_fail(err, TS_EUPSTREAM, "source refused credentials (HTTP %ld from %s)", status,
                       url);
    if (status == 412)
        return ts_fail(err, TS_EUPSTREAM, "object changed at the source while being read (%s)",
                       url);
    if (status == 504 || status == 408)
        return ts_fail(err, TS_EUPTIMEOUT, "source timed out (HTTP %ld from %s)", status, url);
    return ts_fail(err, TS_EUPSTREAM, "source answered HTTP %ld (%s)", status, url);
}

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* One request done: counted against its kind of source. */
static void count(struct ts_remote *rm, bool s3, uint64_t bytes, uint64_t t0, bool ok)
{
    struct ts_source_stats *s = s3 ? rm->opt.s3_stats : rm->opt.http_stats;
    if (s)
        ts_source_stats_record(s, bytes, (double)(now_ns() - t0) / 1e9, ok);
}

static bool is_s3(const char *base)
{
    return !strncmp(base, "s3://", 5);
}

/* HEAD url: the object's size and version. */
static int remote_head(struct ts_remote *rm, const char *url, bool s3, struct ts_remote_object *obj,
                       struct ts_err *err)
{
    struct call c = {0};
    if (!(c.h = handle_take(rm)))
        return ts_fail(err, TS_ENOMEM, "out of memory");
    uint64_t t0 = now_ns();
    call_setup(rm, &c, url, s3, NULL);
    curl_easy_setopt(c.h, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c.h, CURLOPT_FILETIME, 1L);
    CURLcode cc = curl_easy_perform(c.h);
    long status = 0;
    curl_off_t length = -1, mtime = -1;
    curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c.h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
    curl_easy_getinfo(c.h, CURLINFO_FILETIME_T, &mtime);
    curl_slist_free_all(c.headers);
    int rc = cc == CURLE_OK && status == 200 ? TS_OK : call_verdict(cc, status, url, err);
    if (rc == TS_OK && length < 0)
        rc = ts_fail(err, TS_EUPSTREAM, "source gave no Content-Length for %s", url);
    count(rm, s3, 0, t0, rc == TS_OK);
    handle_give(rm, c.h, cc == CURLE_OK);
    if (rc)
        return rc;
    obj->size = (uint64_t)length;
    obj->last_modified = mtime > 0 ? (time_t)mtime : 0;
    memcpy(obj->etag, c.etag, sizeof obj->etag);
    return TS_OK;
}

/* One object as a byte source reads it. */
struct remote_obj {
    struct ts_remote *rm;
    bool s3;
    char *url;
    char *etag; /* sent as If-Match: another version answers 412, never mixed bytes */
};

static void obj_release(void *user)
{
    struct remote_obj *o = user;
    free(o->url);
    free(o->etag);
    free(o);
}

static int obj_fetch(void *user, void *buf, size_t len, uint64_t off, struct ts_err *err)
{
    struct remote_obj *o = user;
    struct ts_remote *rm = o->rm;
    struct call c = {.buf = buf, .len = len, .skip = off, .ranged = true};
    if (!(c.h = handle_take(rm)))
        return ts_fail(err, TS_ENOMEM, "out of memory");
    uint64_t t0 = now_ns();
    char range[64];
    snprintf(range, sizeof range, "%llu-%llu", (unsigned long long)off,
             (unsigned long long)(off + len - 1));
    call_setup(rm, &c, o->url, o->s3, o->etag);
    curl_easy_setopt(c.h, CURLOPT_RANGE, range);
    CURLcode cc = curl_easy_perform(c.h);
    long status = 0;
    curl_off_t received = 0; /* the body as it came, an error page's or a whole object's too */
    curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c.h, CURLINFO_SIZE_DOWNLOAD_T, &received);
    curl_slist_free_all(c.headers);
    bool whole = cc == CURLE_WRITE_ERROR && c.enough;
    int rc;
    if ((cc == CURLE_OK || whole) && (status == 206 || status == 200))
        rc = c.got == len ? TS_OK
                          : ts_fail(err, TS_EUPSTREAM,
                                    "source sent %zu of %zu bytes at %llu (truncated object: %s)",
                                    c.got, len, (unsigned long long)off, o->url);
    else
        rc = call_verdict(cc, status, o->url, err);
    count(rm, o->s3, received > 0 ? (uint64_t)received : 0, t0, rc == TS_OK);
    handle_give(rm, c.h, cc == CURLE_OK);
    return rc;
}

static const char *const try_extensions[] = {".tif",  ".tiff", ".ptif", ".jp2", ".jpg",
                                             ".jpeg", ".png",  ".webp", ".j2k", ".jph"};

/* A byte source over the version obj names (no request made). */
static int attach(struct ts_remote *rm, bool s3, const struct ts_remote_object *obj,
                  struct ts_bytes **out, struct ts_err *err)
{
    int rc;
    struct remote_obj *o = calloc(1, sizeof *o);
    char *identity = NULL;
    size_t n = strlen(obj->url) + strlen(obj->etag) + 64;
    if (o && (o->url = strdup(obj->url)) && (o->etag = strdup(obj->etag)) &&
        (identity = malloc(n))) {
        o->rm = rm;
        o->s3 = s3;
        snprintf(identity, n, "%s\n%s\n%llu:%lld", obj->url, obj->etag,
                 (unsigned long long)obj->size, (long long)obj->last_modified);
        struct ts_bytes_remote r = {obj_fetch,    obj_release, o,
                                    obj->size,    identity,    rm->have_blocks ? &rm->blocks : NULL,
                                    rm->opt.block};
        rc = ts_bytes_from_remote(&r, out);
        free(identity);
        return rc ? ts_fail(err, rc, "cannot read %s", obj->url) : TS_OK;
    }
    if (o)
        obj_release(o);
    return ts_fail(err, TS_ENOMEM, "out of memory");
}

static int open_url(struct ts_remote *rm, bool s3, struct ts_remote_object *obj,
                    struct ts_bytes **out, struct ts_err *err)
{
    int rc = remote_head(rm, obj->url, s3, obj, err);
    return rc ? rc : attach(rm, s3, obj, out, err);
}

int ts_remote_attach(struct ts_remote *rm, const struct ts_remote_object *obj,
                     struct ts_bytes **out, struct ts_err *err)
{
    *out = NULL;
    return attach(rm, obj->s3, obj, out, err);
}

int ts_remote_open(struct ts_remote *rm, const char *base, const char *rest,
                   struct ts_remote_object *obj, struct ts_bytes **out, struct ts_err *err)
{
    *out = NULL;
    memset(obj, 0, sizeof *obj);
    bool s3 = is_s3(base);
    obj->s3 = s3;
    int rc =
        ts_remote_url(base, rest, rm->s3_endpoint, rm->s3_region, obj->url, sizeof obj->url, err);
    rc = rc ? rc : open_url(rm, s3, obj, out, err);
    if (rc != TS_ENOTFOUND || source_has_image_extension(rest))
        return rc;
    /* As on disk, the identifier may leave out the extension. */
    for (size_t i = 0; i < sizeof try_extensions / sizeof try_extensions[0]; i++) {
        char name[1024];
        struct ts_err e = {0};
        if (snprintf(name, sizeof name, "%s%s", rest, try_extensions[i]) >= (int)sizeof name)
            break;
        int r = ts_remote_url(base, name, rm->s3_endpoint, rm->s3_region, obj->url, sizeof obj->url,
                              &e);
        r = r ? r : open_url(rm, s3, obj, out, &e);
        if (r != TS_ENOTFOUND) {
            if (r)
                *err = e;
            return r;
        }
    }
    return ts_fail(err, TS_ENOTFOUND, "no image '%s' at the source", rest);
}
