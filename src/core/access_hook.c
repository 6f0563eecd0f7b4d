/* The authorization hook: rules with profile = hook ask the institution's own HTTP service, under
 * a short timeout, and remember its answers for a while in a small table the app owns. */
#include "core/access.h"
#include "core/app.h"
#include "util/cancel.h"
#include "util/hash.h"
#include "util/url.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A decision is a word or a small JSON object: anything longer is not an answer. */
#define HOOK_ANSWER_MAX 4096

struct hook_entry {
    char *key; /* NULL = empty slot */
    enum ts_access_tier tier;
    int deny;
    int64_t expires_ns; /* monotonic */
};

/* Direct-mapped: a key has one slot, a newer key evicts an older one. Bounded by construction,
 * and a lookup never walks anything. */
struct ts_access_hook {
    pthread_mutex_t lock;
    struct hook_entry *slots;
    size_t nslots;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_start(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

int ts_access_hook_create(struct ts_access *a, struct ts_err *err)
{
    pthread_once(&curl_once, curl_start);
    struct ts_access_hook *h = calloc(1, sizeof *h);
    struct hook_entry *slots = a->hook_entries ? calloc(a->hook_entries, sizeof *slots) : NULL;
    if (!h || (a->hook_entries && !slots)) {
        free(h);
        free(slots);
        return ts_fail(err, TS_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&h->lock, NULL);
    h->slots = slots;
    h->nslots = a->hook_entries;
    a->hook = h;
    return TS_OK;
}

void ts_access_hook_free(struct ts_access *a)
{
    struct ts_access_hook *h = a->hook;
    if (!h)
        return;
    for (size_t i = 0; i < h->nslots; i++)
        free(h->slots[i].key);
    free(h->slots);
    pthread_mutex_destroy(&h->lock);
    free(h);
    a->hook = NULL;
}

/* Everything the hook is told is what its answer may depend on: that is the cache's key. */
static int hook_key(const char *rel, const char *client, const char *user, struct ts_buf *out)
{
    return ts_buf_appendf(out, "%s\n%s\n%s", rel, client ? client : "", user ? user : "");
}

static struct hook_entry *slot(struct ts_access_hook *h, const char *key)
{
    return &h->slots[ts_hash(0, key, strlen(key)) % h->nslots];
}

static bool cache_get(const struct ts_access *a, const char *key, enum ts_access_tier *tier,
                      int *deny)
{
    struct ts_access_hook *h = a->hook;
    if (!h || !h->nslots || !a->hook_ttl)
        return false;
    pthread_mutex_lock(&h->lock);
    struct hook_entry *e = slot(h, key);
    bool hit = e->key && !strcmp(e->key, key) && e->expires_ns > ts_monotonic_ns();
    if (hit) {
        *tier = e->tier;
        *deny = e->deny;
    }
    pthread_mutex_unlock(&h->lock);
    return hit;
}

static void cache_put(const struct ts_access *a, const char *key, enum ts_access_tier tier,
                      int deny)
{
    struct ts_access_hook *h = a->hook;
    if (!h || !h->nslots || !a->hook_ttl)
        return;
    char *copy = strdup(key);
    if (!copy)
        return; /* unremembered: the next request asks again */
    pthread_mutex_lock(&h->lock);
    struct hook_entry *e = slot(h, key);
    free(e->key);
    *e = (struct hook_entry){copy, tier, deny,
                             ts_monotonic_ns() + (int64_t)a->hook_ttl * 1000000000};
    pthread_mutex_unlock(&h->lock);
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    struct ts_buf *b = ctx;
    return ts_buf_append(b, data, size * n) == TS_OK ? size * n : 0; /* past the cap: stop */
}

static int add_param(struct ts_buf *u, const char *name, const char *value)
{
    int rc = ts_buf_appendf(u, "&%s=", name);
    return rc ? rc : url_encode_append(u, value ? value : "", false);
}

/* The hook's URL with the question in its query: id, path, client, user. */
static int hook_url(const struct ts_access *a, const char *id, const char *rel, const char *client,
                    const char *user, struct ts_buf *u)
{
    int rc = ts_buf_appendf(u, "%s%cid=", a->hook_url, strchr(a->hook_url, '?') ? '&' : '?');
    rc = rc ? rc : url_encode_append(u, id ? id : rel, false);
    rc = rc ? rc : add_param(u, "path", rel);
    rc = rc ? rc : add_param(u, "client", client);
    rc = rc ? rc : add_param(u, "user", user);
    return rc ? rc : ts_buf_str(u) ? TS_OK : TS_ENOMEM;
}

/* The answer's meaning: 200 grants (or names its tier in JSON), 401 and 403 refuse; anything
 * else is no decision. */
static int read_answer(long status, const struct ts_buf *body, enum ts_access_tier *tier, int *deny)
{
    *deny = TS_EFORBIDDEN;
    if (status == 401 || status == 403) {
        *tier = TS_TIER_DENIED;
        *deny = status == 401 ? TS_EUNAUTH : TS_EFORBIDDEN;
        return TS_OK;
    }
    if (status != 200)
        return TS_EUPSTREAM;
    *tier = TS_TIER_FULL;
    size_t i = 0;
    while (i < body->len && (body->data[i] == ' ' || body->data[i] == '\n' ||
                             body->data[i] == '\r' || body->data[i] == '\t'))
        i++;
    if (i == body->len || body->data[i] != '{')
        return TS_OK; /* a plain 200 */
    json_t *doc = json_loadb((const char *)body->data, body->len, 0, NULL);
    const char *t = json_string_value(json_object_get(doc, "tier"));
    int rc = TS_OK;
    if (t && !strcmp(t, "full"))
        *tier = TS_TIER_FULL;
    else if (t && !strcmp(t, "degraded"))
        *tier = TS_TIER_DEGRADED;
    else if (t && !strcmp(t, "denied"))
        *tier = TS_TIER_DENIED;
    else
        rc = TS_EUPSTREAM; /* JSON that does not say: no decision, not a grant */
    json_decref(doc);
    return rc;
}

/* One call to the hook; TS_EUPSTREAM (with the reason) when it gave no decision in time. */
static int ask(const struct ts_access *a, const char *url, enum ts_access_tier *tier, int *deny,
               char *why, size_t why_cap)
{
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(why, why_cap, "cannot start a request");
        return TS_EUPSTREAM;
    }
    struct ts_buf body;
    ts_buf_init_capped(&body, HOOK_ANSWER_MAX);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)a->hook_timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)a->hook_timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    /* A hook on this host is never reached through a proxy from the environment. */
    curl_easy_setopt(c, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    int rc = cc == CURLE_OK ? read_answer(status, &body, tier, deny) : TS_EUPSTREAM;
    if (cc != CURLE_OK)
        snprintf(why, why_cap, "%s", curl_easy_strerror(cc));
    else if (rc)
        snprintf(why, why_cap, "status %ld without a decision", status);
    ts_buf_free(&body);
    return rc;
}

int ts_access_hook_decide(const struct ts_access *a, const struct ts_access_hook_question *q,
                          bool may_call, enum ts_access_tier *tier, int *deny, struct ts_err *err)
{
    struct ts_buf key;
    ts_buf_init_capped(&key, TS_JOB_KEY_MAX + 1024);
    int rc = hook_key(q->rel, q->client, q->user, &key);
    const char *k = rc ? NULL : ts_buf_str(&key);
    if (!k) {
        ts_buf_free(&key);
        return ts_fail(err, TS_ETOOLONG, "request too long");
    }
    if (cache_get(a, k, tier, deny)) {
        ts_buf_free(&key);
        return TS_OK;
    }
    if (!may_call) {
        ts_buf_free(&key);
        return TS_DEFERRED;
    }
    struct ts_buf url;
    ts_buf_init_capped(&url, sizeof a->hook_url + 3 * (TS_JOB_KEY_MAX + 1024));
    rc = hook_url(a, q->id, q->rel, q->client, q->user, &url);
    char why[160] = "";
    rc = rc ? ts_fail(err, TS_ETOOLONG, "request too long")
            : ask(a, (const char *)url.data, tier, deny, why, sizeof why);
    if (rc == TS_EUPSTREAM) {
        /* Never a grant by default: the image waits for the hook to come back. */
        ts_log("authorization hook %s: %s: refusing %s", a->hook_url, why, q->rel);
        rc = ts_fail(err, TS_EBUSY, "restricted image: the authorization service did not answer");
    } else if (rc == TS_OK) {
        cache_put(a, k, *tier, *deny);
    }
    ts_buf_free(&url);
    ts_buf_free(&key);
    return rc;
}
