/* The memcached second level: entry format, keys, and a client that never fails a request. */
#include "cache/memcache.h"
#include "util/hash.h"

#include <libmemcached/memcached.h>
#include <libmemcachedutil-1.0/pool.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define ENTRY_MAGIC "TSMC"
#define ENTRY_VERSION 1
/* magic, version, header count, status, key length, body length */
#define ENTRY_FIXED (4 + 1 + 1 + 2 + 4 + 4)
#define KEY_PREFIX "tessera:1:"
/* A generation's key: same length as an entry's, another namespace. */
#define GEN_PREFIX "tessera:g:"
/* After a failure memcached is left alone this long: a dead server costs each request nothing,
 * not a connect attempt per request. */
#define BACKOFF_MS 1000
#define WARN_EVERY_MS 60000
/* How long a probe's answer stands. */
#define PROBE_EVERY_MS 1000
/* memcached takes expiry times beyond 30 days as absolute Unix times. */
#define RELATIVE_TTL_MAX (30u * 24 * 3600)

/* ---- keys ---- */

void ts_mc_key(const char *text, size_t len, char out[TS_MC_KEY_SIZE])
{
    /* Two chained passes make 128 bits: collisions only cost a miss (the entry carries the
     * whole key), but they would make two busy answers evict each other. */
    uint64_t a = ts_hash(TS_HASH_SEED, text, len);
    uint64_t b = ts_hash(a ^ 0x9e3779b97f4a7c15ull, text, len);
    snprintf(out, TS_MC_KEY_SIZE, KEY_PREFIX "%016llx%016llx", (unsigned long long)a,
             (unsigned long long)b);
}

static void gen_key(const char *name, size_t len, char out[TS_MC_KEY_SIZE])
{
    ts_mc_key(name, len, out);
    memcpy(out, GEN_PREFIX, sizeof GEN_PREFIX - 1);
}

/* ---- entries ---- */

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Text that becomes a response header must stay one printable line: an entry is data from
 * the network, and a CR or LF in it would split the answer. */
static bool header_text_ok(const char *s, bool name)
{
    if (name && !*s)
        return false;
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e || (name && (*s == ':' || *s == ' ')))
            return false;
    return true;
}

int ts_mc_entry_encode(const struct ts_mc_entry *e, const char *key, size_t key_len,
                       struct ts_buf *out)
{
    if (e->status < 100 || e->status > 999 || e->nheaders > TS_MC_HEADERS || !e->type ||
        key_len > UINT32_MAX || e->body_len > UINT32_MAX)
        return TS_EINVAL;
    if (!header_text_ok(e->type, false))
        return TS_EINVAL;
    size_t total = ENTRY_FIXED + key_len + strlen(e->type) + 1;
    for (unsigned i = 0; i < e->nheaders; i++) {
        if (!header_text_ok(e->headers[i].name, true) ||
            !header_text_ok(e->headers[i].value, false))
            return TS_EINVAL;
        total += strlen(e->headers[i].name) + strlen(e->headers[i].value) + 2;
    }
    if (total > TS_MC_ENTRY_MAX || e->body_len > TS_MC_ENTRY_MAX - total)
        return TS_ETOOLARGE;
    uint8_t fixed[ENTRY_FIXED];
    memcpy(fixed, ENTRY_MAGIC, 4);
    fixed[4] = ENTRY_VERSION;
    fixed[5] = (uint8_t)e->nheaders;
    put_le(fixed + 6, (uint64_t)e->status, 2);
    put_le(fixed + 8, key_len, 4);
    put_le(fixed + 12, e->body_len, 4);
    int rc = ts_buf_reserve(out, total + e->body_len);
    rc = rc ? rc : ts_buf_append(out, fixed, sizeof fixed);
    rc = rc ? rc : ts_buf_append(out, key, key_len);
    rc = rc ? rc : ts_buf_append(out, e->type, strlen(e->type) + 1);
    for (unsigned i = 0; i < e->nheaders && !rc; i++) {
        rc = ts_buf_append(out, e->headers[i].name, strlen(e->headers[i].name) + 1);
        rc = rc ? rc : ts_buf_append(out, e->headers[i].value, strlen(e->headers[i].value) + 1);
    }
    return rc ? rc : ts_buf_append(out, e->body, e->body_len);
}

/* The NUL-terminated string at *pos, before end; NULL when it runs past end. */
static const char *take_string(const uint8_t *data, size_t *pos, size_t end)
{
    const uint8_t *nul = memchr(data + *pos, '\0', end - *pos);
    if (!nul)
        return NULL;
    const char *s = (const char *)data + *pos;
    *pos = (size_t)(nul - data) + 1;
    return s;
}

int ts_mc_entry_decode(const uint8_t *data, size_t len, const char *key, size_t key_len,
                       struct ts_mc_entry *e)
{
    memset(e, 0, sizeof *e);
    if (len < ENTRY_FIXED || memcmp(data, ENTRY_MAGIC, 4) || data[4] != ENTRY_VERSION)
        return TS_EINVAL;
    unsigned nheaders = data[5];
    uint64_t status = get_le(data + 6, 2);
    uint64_t stored_key_len = get_le(data + 8, 4);
    uint64_t body_len = get_le(data + 12, 4);
    size_t room = len - ENTRY_FIXED;
    if (nheaders > TS_MC_HEADERS || status < 100 || status > 999 || stored_key_len > room ||
        body_len > room - stored_key_len)
        return TS_EINVAL;
    size_t pos = ENTRY_FIXED + (size_t)stored_key_len;
    size_t strings_end = len - (size_t)body_len;
    e->type = take_string(data, &pos, strings_end);
    if (!e->type || !header_text_ok(e->type, false))
        return TS_EINVAL;
    for (unsigned i = 0; i < nheaders; i++) {
        const char *name = take_string(data, &pos, strings_end);
        const char *value = name ? take_string(data, &pos, strings_end) : NULL;
        if (!value || !header_text_ok(name, true) || !header_text_ok(value, false))
            return TS_EINVAL;
        e->headers[i].name = name;
        e->headers[i].value = value;
    }
    if (pos != strings_end)
        return TS_EINVAL;
    e->nheaders = nheaders;
    e->status = (int)status;
    e->body = data + strings_end;
    e->body_len = (size_t)body_len;
    if (stored_key_len != key_len || memcmp(data + ENTRY_FIXED, key, key_len))
        return TS_DECLINED;
    return TS_OK;
}

/* ---- the client ---- */

struct ts_memcache {
    memcached_st *master; /* configured once; the pool hands out clones of it */
    memcached_pool_st *pool;
    unsigned ttl;
    unsigned timeout_ms;
    void (*log)(const char *fmt, ...);
    char *servers;                  /* as configured, for the warnings */
    _Atomic int64_t quiet_until_ms; /* no traffic before this (after a failure) */
    _Atomic int64_t last_warning_ms;
    _Atomic uint64_t hits, misses, stores, too_large, malformed, errors;
    pthread_mutex_t probe_lock; /* the last probe, and who is making the next */
    int64_t probed_ms;          /* 0: never */
    struct ts_memcache_health probed;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void log_stderr(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tessera: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* A failure: counted, one warning a minute at most, and a pause before memcached is tried
 * again, so a dead or slow memcached costs each request at most one bounded wait. */
static void failed(struct ts_memcache *mc, const char *what, const memcached_st *memc,
                   memcached_return_t rc)
{
    atomic_fetch_add(&mc->errors, 1);
    int64_t now = now_ms();
    atomic_store(&mc->quiet_until_ms, now + BACKOFF_MS);
    int64_t last = atomic_load(&mc->last_warning_ms);
    if (last && now - last < WARN_EVERY_MS)
        return;
    if (!atomic_compare_exchange_strong(&mc->last_warning_ms, &last, now ? now : 1))
        return; /* another thread is warning about it */
    mc->log("memcached %s failed on %s (%s); answering from the local cache, retrying in %d ms "
            "(this warning is repeated at most once a minute)",
            what, mc->servers, memcached_strerror(memc, rc), BACKOFF_MS);
}

/* A handle for this thread's call, or NULL while memcached is being left alone. */
static memcached_st *take(struct ts_memcache *mc)
{
    if (now_ms() < atomic_load(&mc->quiet_until_ms))
        return NULL;
    struct timespec wait = {0, (long)mc->timeout_ms * 1000000L};
    memcached_return_t rc;
    /* Every handle busy: a miss now beats a queue of requests behind the cache. */
    return memcached_pool_fetch(mc->pool, &wait, &rc);
}

int ts_memcache_create(const struct ts_memcache_options *opt, struct ts_memcache **out,
                       struct ts_err *err)
{
    *out = NULL;
    if (!opt->servers || !*opt->servers)
        return ts_fail(err, TS_EINVAL, "memcached: no servers given");
    struct ts_memcache *mc = calloc(1, sizeof *mc);
    if (!mc)
        return ts_fail(err, TS_ENOMEM, "out of memory");
    mc->ttl = opt->ttl;
    mc->timeout_ms = opt->timeout_ms ? opt->timeout_ms : 250;
    mc->log = opt->log ? opt->log : log_stderr;
    mc->servers = strdup(opt->servers);
    pthread_mutex_init(&mc->probe_lock, NULL);
    mc->master = mc->servers ? memcached_create(NULL) : NULL;
    memcached_server_list_st list = memcached_servers_parse(opt->servers);
    int rc = TS_OK;
    if (!mc->master || !list || memcached_server_push(mc->master, list) != MEMCACHED_SUCCESS ||
        memcached_server_count(mc->master) == 0)
        rc = ts_fail(err, TS_EINVAL, "memcached: cannot use the server list '%s'", opt->servers);
    memcached_server_list_free(list);
    if (rc) {
        memcached_free(mc->master);
        pthread_mutex_destroy(&mc->probe_lock);
        free(mc->servers);
        free(mc);
        return rc;
    }
    memcached_st *m = mc->master;
    /* Bounded everywhere: a connect, a poll, a send and a receive each give up after the
     * timeout, and a server that failed is not tried again for a second. */
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_NO_BLOCK, 1);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, mc->timeout_ms);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, mc->timeout_ms);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_SND_TIMEOUT, (uint64_t)mc->timeout_ms * 1000);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_RCV_TIMEOUT, (uint64_t)mc->timeout_ms * 1000);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, 1);
    /* Every server of a fleet must send a key to the same memcached: consistent hashing
     * (ketama) also keeps most keys in place when the list changes. */
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_DISTRIBUTION, MEMCACHED_DISTRIBUTION_CONSISTENT);
    unsigned handles = opt->handles ? opt->handles : 32;
    mc->pool = memcached_pool_create(m, 1, handles);
    if (!mc->pool) {
        memcached_free(m);
        pthread_mutex_destroy(&mc->probe_lock);
        free(mc->servers);
        free(mc);
        return ts_fail(err, TS_ENOMEM, "memcached: cannot create the connection pool");
    }
    *out = mc;
    return TS_OK;
}

void ts_memcache_destroy(struct ts_memcache *mc)
{
    if (!mc)
        return;
    memcached_pool_destroy(mc->pool);
    memcached_free(mc->master);
    pthread_mutex_destroy(&mc->probe_lock);
    free(mc->servers);
    free(mc);
}

bool ts_memcache_get(struct ts_memcache *mc, const char *key, size_t key_len, struct ts_buf *held,
                     struct ts_mc_entry *e)
{
    memcached_st *memc = take(mc);
    if (!memc) {
        atomic_fetch_add(&mc->misses, 1);
        return false;
    }
    char mkey[TS_MC_KEY_SIZE];
    ts_mc_key(key, key_len, mkey);
    size_t len = 0;
    uint32_t flags = 0;
    memcached_return_t rc;
    char *value = memcached_get(memc, mkey, strlen(mkey), &len, &flags, &rc);
    if (!value && rc != MEMCACHED_NOTFOUND && rc != MEMCACHED_SUCCESS)
        failed(mc, "get", memc, rc);
    memcached_pool_release(mc->pool, memc);
    bool hit = false;
    if (value) {
        held->len = 0;
        int drc = ts_buf_append(held, value, len);
        drc = drc ? drc : ts_mc_entry_decode(held->data, held->len, key, key_len, e);
        hit = drc == TS_OK;
        if (drc == TS_EINVAL)
            atomic_fetch_add(&mc->malformed, 1);
        free(value);
    }
    atomic_fetch_add(hit ? &mc->hits : &mc->misses, 1);
    return hit;
}

void ts_memcache_set(struct ts_memcache *mc, const char *key, size_t key_len,
                     const struct ts_mc_entry *e)
{
    struct ts_buf bytes = {0};
    int rc = ts_mc_entry_encode(e, key, key_len, &bytes);
    if (rc == TS_ETOOLARGE)
        atomic_fetch_add(&mc->too_large, 1);
    memcached_st *memc = rc ? NULL : take(mc);
    if (memc) {
        char mkey[TS_MC_KEY_SIZE];
        ts_mc_key(key, key_len, mkey);
        time_t expiry = mc->ttl > RELATIVE_TTL_MAX ? time(NULL) + (time_t)mc->ttl : (time_t)mc->ttl;
        memcached_return_t mrc =
            memcached_set(memc, mkey, strlen(mkey), (const char *)bytes.data, bytes.len, expiry, 0);
        if (memcached_success(mrc))
            atomic_fetch_add(&mc->stores, 1);
        else
            failed(mc, "set", memc, mrc);
        memcached_pool_release(mc->pool, memc);
    }
    ts_buf_free(&bytes);
}

bool ts_memcache_delete(struct ts_memcache *mc, const char *key, size_t key_len)
{
    memcached_st *memc = take(mc);
    if (!memc)
        return false;
    char mkey[TS_MC_KEY_SIZE];
    ts_mc_key(key, key_len, mkey);
    memcached_return_t rc = memcached_delete(memc, mkey, strlen(mkey), 0);
    bool gone = memcached_success(rc) || rc == MEMCACHED_NOTFOUND;
    if (!gone)
        failed(mc, "delete", memc, rc);
    memcached_pool_release(mc->pool, memc);
    return gone;
}

void ts_memcache_stats(struct ts_memcache *mc, struct ts_memcache_stats *out)
{
    *out = (struct ts_memcache_stats){atomic_load(&mc->hits),      atomic_load(&mc->misses),
                                      atomic_load(&mc->stores),    atomic_load(&mc->too_large),
                                      atomic_load(&mc->malformed), atomic_load(&mc->errors)};
}

/* One round of "stats" to every server. */
static void probe_now(struct ts_memcache *mc, struct ts_memcache_health *out)
{
    *out = (struct ts_memcache_health){0};
    /* The pool's wait, not the backoff: a memcached that failed a moment ago is asked again
     * here, once a second at most, so /health sees it come back. */
    struct timespec wait = {0, (long)mc->timeout_ms * 1000000L};
    memcached_return_t rc;
    memcached_st *memc = memcached_pool_fetch(mc->pool, &wait, &rc);
    if (!memc) {
        snprintf(out->reason, sizeof out->reason, "memcached %s: no free connection (%s)",
                 mc->servers, memcached_strerror(NULL, rc));
        return;
    }
    memcached_stat_st *stats = memcached_stat(memc, NULL, &rc);
    if (stats && rc == MEMCACHED_SUCCESS) {
        out->up = true;
        uint32_t n = memcached_server_count(memc);
        for (uint32_t i = 0; i < n; i++) {
            out->bytes += stats[i].bytes;
            out->items += stats[i].curr_items;
        }
    } else {
        snprintf(out->reason, sizeof out->reason, "memcached %s is unreachable: %s", mc->servers,
                 memcached_strerror(memc, rc));
    }
    if (stats)
        memcached_stat_free(NULL, stats);
    memcached_pool_release(mc->pool, memc);
}

void ts_memcache_probe(struct ts_memcache *mc, struct ts_memcache_health *out)
{
    pthread_mutex_lock(&mc->probe_lock);
    int64_t now = now_ms();
    bool fresh = mc->probed_ms && now - mc->probed_ms < PROBE_EVERY_MS;
    *out = mc->probed;
    /* The first probe is waited for by everyone; later ones only by the thread making them. */
    if (fresh || (mc->probed_ms < 0)) {
        pthread_mutex_unlock(&mc->probe_lock);
        return;
    }
    int64_t last = mc->probed_ms;
    bool first = last == 0;
    mc->probed_ms = -1; /* probing: others take the last answer */
    if (!first)
        pthread_mutex_unlock(&mc->probe_lock);
    struct ts_memcache_health h;
    probe_now(mc, &h);
    if (!first)
        pthread_mutex_lock(&mc->probe_lock);
    mc->probed = h;
    mc->probed_ms = now_ms();
    pthread_mutex_unlock(&mc->probe_lock);
    *out = h;
}

/* ---- generations ---- */

/* A generation is 16 hex digits of fresh randomness: a new one can never equal one an older
 * entry was stored under, whatever was evicted or restarted meanwhile. */
static uint64_t fresh_generation(void)
{
    uint64_t g = 0;
    if (getrandom(&g, sizeof g, GRND_NONBLOCK) != (ssize_t)sizeof g) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        g = ts_hash((uint64_t)ts.tv_nsec, &ts, sizeof ts);
    }
    return g ? g : 1;
}

static bool parse_generation(const char *v, size_t len, uint64_t *out)
{
    if (len != 16)
        return false;
    uint64_t g = 0;
    for (size_t i = 0; i < len; i++) {
        char c = v[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return false;
        g = g << 4 | (uint64_t)d;
    }
    *out = g;
    return true;
}

/* GET of a generation: 1 found, 0 absent, -1 failed (warned). */
static int read_generation(struct ts_memcache *mc, memcached_st *memc, const char *mkey,
                           uint64_t *gen)
{
    size_t len = 0;
    uint32_t flags = 0;
    memcached_return_t rc;
    char *value = memcached_get(memc, mkey, strlen(mkey), &len, &flags, &rc);
    if (!value && rc != MEMCACHED_NOTFOUND && rc != MEMCACHED_SUCCESS) {
        failed(mc, "get", memc, rc);
        return -1;
    }
    bool ok = value && parse_generation(value, len, gen);
    free(value);
    return ok ? 1 : 0;
}

bool ts_memcache_generation(struct ts_memcache *mc, const char *name, size_t len, uint64_t *gen)
{
    memcached_st *memc = take(mc);
    if (!memc)
        return false;
    char mkey[TS_MC_KEY_SIZE];
    gen_key(name, len, mkey);
    int found = read_generation(mc, memc, mkey, gen);
    if (found == 0) {
        /* Absent (never purged, or evicted): start one. "add" stores only when the key is
         * still absent, so when two servers race, both end up with the one that won. An
         * evicted generation thus costs misses, never the return of entries it had hidden. */
        char text[17];
        snprintf(text, sizeof text, "%016llx", (unsigned long long)fresh_generation());
        memcached_return_t rc = memcached_add(memc, mkey, strlen(mkey), text, 16, 0, 0);
        if (memcached_success(rc))
            found = parse_generation(text, 16, gen) ? 1 : -1;
        else if (rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_DATA_EXISTS)
            found = read_generation(mc, memc, mkey, gen) == 1 ? 1 : -1;
        if (found == 0) {
            failed(mc, "add", memc, rc);
            found = -1;
        }
    }
    memcached_pool_release(mc->pool, memc);
    return found == 1;
}

bool ts_memcache_bump(struct ts_memcache *mc, const char *name, size_t len)
{
    memcached_st *memc = take(mc);
    if (!memc)
        return false;
    char mkey[TS_MC_KEY_SIZE], text[17];
    gen_key(name, len, mkey);
    snprintf(text, sizeof text, "%016llx", (unsigned long long)fresh_generation());
    /* No expiry: a generation that lived shorter than its entries would bring them back. */
    memcached_return_t rc = memcached_set(memc, mkey, strlen(mkey), text, 16, 0, 0);
    bool ok = memcached_success(rc);
    if (!ok)
        failed(mc, "set", memc, rc);
    memcached_pool_release(mc->pool, memc);
    return ok;
}
