/* /health and /metrics: what the server and its backends are doing, for load balancers and
 * Prometheus. Built from counters read with atomics or short locks: no image work, no waits
 * but one bounded memcached probe a second. */
#include "server/ops.h"
#include "cache/lru.h"
#include "cache/memcache.h"
#include "core/pool.h"
#include "util/metric.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- /health ---- */

/* The root is held open by descriptor, so a removed or unmounted folder does not show in a
 * failed open: its link count drops to 0, and a directory that cannot be opened for reading
 * any more (permissions, a stale network mount) fails the open. */
static bool images_ok(const struct ts_app *app, char *why, size_t size)
{
    struct stat st;
    if (fstat(app->root.fd, &st) != 0) {
        snprintf(why, size, "image root cannot be examined: %s", strerror(errno));
        return false;
    }
    if (st.st_nlink == 0) {
        snprintf(why, size, "image root was removed");
        return false;
    }
    int fd = openat(app->root.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, size, "image root cannot be read: %s", strerror(errno));
        return false;
    }
    close(fd);
    return true;
}

static json_t *backend(bool ok, const char *why)
{
    return ok ? json_pack("{s:b}", "ok", 1) : json_pack("{s:b,s:s}", "ok", 0, "error", why);
}

int ops_health_job(const struct ts_app *app, struct ts_job *job, struct ts_err *err)
{
    char why[256] = "";
    bool images = images_ok(app, why, sizeof why);
    json_t *backends = json_object();
    bool all = images;
    if (backends)
        json_object_set_new(backends, "images", backend(images, why));
    if (app->memcache) {
        struct ts_memcache_health h;
        ts_memcache_probe(app->memcache, &h);
        all = all && h.up;
        if (backends)
            json_object_set_new(backends, "memcached", backend(h.up, h.reason));
    }
    json_t *doc = backends ? json_pack("{s:s,s:o}", "status", all ? "ok" : "unavailable",
                                       "backends", backends)
                           : NULL;
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text)
        return ts_fail(err, TS_ENOMEM, "out of memory");
    int rc = ts_job_reply(job, all ? 200 : 503, "application/json", text);
    if (!all) /* the log says which backend, as the body does */
        snprintf(job->out.reason, sizeof job->out.reason, "%s", text);
    rc = rc ? rc : ts_buf_append_str(&job->out.text, "\n");
    free(text);
    rc = rc ? rc : ts_job_add_header(job, "Cache-Control", "no-store");
    return rc ? ts_fail(err, TS_ENOMEM, "out of memory") : TS_OK;
}

/* ---- /metrics ---- */

/* Appending stops at the first failure (out's cap, or memory): the caller sees one status. */
struct writer {
    struct ts_buf *out;
    int rc;
};

static void family(struct writer *w, const char *name, const char *type, const char *help)
{
    if (!w->rc)
        w->rc = ts_metric_family(w->out, name, type, help);
}

static void sample(struct writer *w, const char *name, const char *labels, uint64_t value)
{
    if (!w->rc)
        w->rc = ts_metric_sample(w->out, name, labels, value);
}

static void requests(struct writer *w, struct ts_metrics *m)
{
    family(w, "tessera_requests_total", "counter", "Requests answered, by route and HTTP status.");
    for (unsigned r = 0; r < TS_ROUTES; r++)
        for (unsigned code = 0; code < TS_METRICS_STATUS_END; code++) {
            uint64_t n = atomic_load_explicit(&m->requests[r][code], memory_order_relaxed);
            if (!n)
                continue;
            char labels[64];
            snprintf(labels, sizeof labels, "route=\"%s\",code=\"%u\"", ts_route_name(r), code);
            sample(w, "tessera_requests_total", labels, n);
        }
    family(w, "tessera_request_duration_seconds", "histogram",
           "Time from a request's arrival to its answer, by route.");
    for (unsigned r = 0; r < TS_ROUTES && !w->rc; r++) {
        char labels[64];
        snprintf(labels, sizeof labels, "route=\"%s\"", ts_route_name(r));
        w->rc =
            ts_histogram_write(w->out, "tessera_request_duration_seconds", labels, &m->latency[r]);
    }
}

struct cache_row {
    const char *name;
    uint64_t hits, misses, bytes, entries;
};

static void caches(struct writer *w, const struct ts_app *app)
{
    struct cache_row rows[5];
    unsigned n = 0;
    struct {
        const char *name;
        struct ts_lru *lru;
    } lrus[] = {{"responses", app->responses},
                {"infos", app->infos},
                {"resolved", app->resolved},
                {"jp2_blocks", app->jp2_blocks}};
    for (unsigned i = 0; i < sizeof lrus / sizeof lrus[0]; i++) {
        if (!lrus[i].lru)
            continue;
        struct ts_lru_stats s;
        ts_lru_stats(lrus[i].lru, &s);
        rows[n++] = (struct cache_row){lrus[i].name, s.hits, s.misses, s.bytes, s.entries};
    }
    struct ts_memcache_health h = {0};
    if (app->memcache) {
        struct ts_memcache_stats s;
        ts_memcache_stats(app->memcache, &s);
        ts_memcache_probe(app->memcache, &h);
        /* Bytes and entries are memcached's own, shared by every server that uses it. */
        rows[n++] = (struct cache_row){"memcached", s.hits, s.misses, h.bytes, h.items};
    }
    static const struct {
        const char *name, *type, *help;
    } fams[] = {
        {"tessera_cache_hits_total", "counter", "Lookups that found their entry, by cache."},
        {"tessera_cache_misses_total", "counter", "Lookups that did not, by cache."},
        {"tessera_cache_bytes", "gauge",
         "Bytes an in-process cache holds; for memcached, what its servers hold in all."},
        {"tessera_cache_entries", "gauge",
         "Entries a cache holds; for memcached, the items its servers hold in all."},
    };
    for (unsigned f = 0; f < 4; f++) {
        family(w, fams[f].name, fams[f].type, fams[f].help);
        for (unsigned i = 0; i < n; i++) {
            uint64_t v = f == 0   ? rows[i].hits
                         : f == 1 ? rows[i].misses
                         : f == 2 ? rows[i].bytes
                                  : rows[i].entries;
            char labels[48];
            snprintf(labels, sizeof labels, "cache=\"%s\"", rows[i].name);
            sample(w, fams[f].name, labels, v);
        }
    }
    if (app->memcache) {
        struct ts_memcache_stats s;
        ts_memcache_stats(app->memcache, &s);
        family(w, "tessera_memcached_up", "gauge",
               "1 when memcached answered the last probe (at most a second ago), else 0.");
        sample(w, "tessera_memcached_up", "", h.up);
        family(w, "tessera_memcached_stores_total", "counter", "Answers stored in memcached.");
        sample(w, "tessera_memcached_stores_total", "", s.stores);
        family(w, "tessera_memcached_errors_total", "counter",
               "memcached calls that failed (each answered from the local cache instead).");
        sample(w, "tessera_memcached_errors_total", "", s.errors);
    }
}

static void admission(struct writer *w, const struct ts_app *app)
{
    struct ts_metrics *m = app->metrics;
    struct admission_snapshot a;
    admission_snapshot(&app->admission, &a);
    static const char *const lanes[TS_LANES] = {"fast", "slow"};
    family(w, "tessera_queue_length", "gauge",
           "Requests waiting for a worker, by lane (HTTP front end; the slow lane takes large "
           "renders).");
    for (unsigned l = 0; l < TS_LANES; l++) {
        char labels[32];
        snprintf(labels, sizeof labels, "lane=\"%s\"", lanes[l]);
        sample(w, "tessera_queue_length", labels,
               atomic_load_explicit(&m->queued[l], memory_order_relaxed));
    }
    family(w, "tessera_requests_in_flight", "gauge",
           "Requests a worker is serving now, by lane (HTTP front end).");
    for (unsigned l = 0; l < TS_LANES; l++) {
        char labels[32];
        snprintf(labels, sizeof labels, "lane=\"%s\"", lanes[l]);
        sample(w, "tessera_requests_in_flight", labels,
               atomic_load_explicit(&m->running[l], memory_order_relaxed));
    }
    family(w, "tessera_heavy_renders_running", "gauge", "Large renders holding an admission slot.");
    sample(w, "tessera_heavy_renders_running", "", a.running);
    family(w, "tessera_heavy_renders_waiting", "gauge", "Large renders waiting for memory.");
    sample(w, "tessera_heavy_renders_waiting", "", a.waiting);
    family(w, "tessera_rejected_total", "counter",
           "Requests refused by admission: busy (503 Retry-After, queue full or wait over) and "
           "too_large (413, over --request-memory).");
    uint64_t busy = a.refused_busy + atomic_load_explicit(&m->refused_busy, memory_order_relaxed);
    sample(w, "tessera_rejected_total", "reason=\"busy\"", busy);
    sample(w, "tessera_rejected_total", "reason=\"too_large\"", a.refused_large);
    family(w, "tessera_render_memory_bytes", "gauge",
           "Estimated decode memory of the renders under way.");
    sample(w, "tessera_render_memory_bytes", "", a.rendering_bytes);
    family(w, "tessera_render_memory_limit_bytes", "gauge",
           "Decode memory all large renders may use together (--render-memory).");
    sample(w, "tessera_render_memory_limit_bytes", "", app->admission.total_budget);
}

static void readers(struct writer *w, const struct ts_app *app)
{
    struct ts_pool_stats p;
    ts_pool_stats(app->readers, &p);
    family(w, "tessera_readers_open", "gauge",
           "Image readers open now (kept in the pool or in use by a request).");
    sample(w, "tessera_readers_open", "", p.open);
    family(w, "tessera_readers_kept", "gauge", "Readers the pool holds, idle or lent out.");
    sample(w, "tessera_readers_kept", "", p.kept);
    family(w, "tessera_readers_lent", "gauge", "Readers of the pool lent to a request now.");
    sample(w, "tessera_readers_lent", "", p.lent);
}

static void sources(struct writer *w, struct ts_metrics *m)
{
    unsigned n = atomic_load(&m->nsources);
    if (!n)
        return;
    family(w, "tessera_source_requests_total", "counter",
           "Requests made to a source of images (HEADs and range reads), by kind of source and "
           "outcome (error: unreachable, refused, timed out, missing or cut short).");
    for (unsigned i = 0; i < n; i++) {
        struct ts_source_stats *s = &m->sources[i].stats;
        /* Errors first: a request is counted before its failure, so ok never goes below 0. */
        uint64_t errors = atomic_load_explicit(&s->errors, memory_order_relaxed);
        uint64_t all = atomic_load_explicit(&s->requests, memory_order_relaxed);
        char labels[96];
        snprintf(labels, sizeof labels, "source=\"%s\",outcome=\"ok\"", m->sources[i].name);
        sample(w, "tessera_source_requests_total", labels, all > errors ? all - errors : 0);
        snprintf(labels, sizeof labels, "source=\"%s\",outcome=\"error\"", m->sources[i].name);
        sample(w, "tessera_source_requests_total", labels, errors);
    }
    family(w, "tessera_source_bytes_total", "counter",
           "Body bytes received from a source of images.");
    for (unsigned i = 0; i < n; i++) {
        char labels[64];
        snprintf(labels, sizeof labels, "source=\"%s\"", m->sources[i].name);
        sample(w, "tessera_source_bytes_total", labels,
               atomic_load_explicit(&m->sources[i].stats.bytes, memory_order_relaxed));
    }
    family(w, "tessera_source_duration_seconds", "histogram",
           "Time one request to a source of images took.");
    for (unsigned i = 0; i < n && !w->rc; i++) {
        char labels[64];
        snprintf(labels, sizeof labels, "source=\"%s\"", m->sources[i].name);
        w->rc = ts_histogram_write(w->out, "tessera_source_duration_seconds", labels,
                                   &m->sources[i].stats.latency);
    }
}

int ops_metrics_text(const struct ts_app *app, struct ts_buf *out)
{
    struct writer w = {out, TS_OK};
    family(&w, "tessera_start_time_seconds", "gauge", "Unix time the server started.");
    sample(&w, "tessera_start_time_seconds", "", (uint64_t)app->metrics->started);
    requests(&w, app->metrics);
    caches(&w, app);
    admission(&w, app);
    readers(&w, app);
    sources(&w, app->metrics);
    return w.rc;
}

int ops_metrics_job(const struct ts_app *app, struct ts_job *job, struct ts_err *err)
{
    if (strcmp(app->cfg.metrics, "on") != 0)
        return ts_fail(err, TS_ENOTFOUND, "/metrics is turned off (--metrics off)");
    int rc = ts_job_reply(job, 200, "text/plain; version=0.0.4; charset=utf-8", "");
    rc = rc ? rc : ops_metrics_text(app, &job->out.text);
    rc = rc ? rc : ts_job_add_header(job, "Cache-Control", "no-store");
    return rc ? ts_fail(err, rc, "cannot write the metrics") : TS_OK;
}
