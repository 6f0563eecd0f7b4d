/* The server's counters: made once, updated with relaxed atomics by any thread. */
#include "core/metrics.h"
#include "util/status.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const route_names[TS_ROUTES] = {
    [TS_ROUTE_OTHER] = "other",       [TS_ROUTE_IIIF] = "iiif",       [TS_ROUTE_IIP] = "iip",
    [TS_ROUTE_DEEPZOOM] = "deepzoom", [TS_ROUTE_ZOOMIFY] = "zoomify", [TS_ROUTE_WEB] = "web",
    [TS_ROUTE_HEALTH] = "health",     [TS_ROUTE_METRICS] = "metrics",
};

const char *ts_route_name(enum ts_route route)
{
    return (unsigned)route < TS_ROUTES ? route_names[route] : route_names[TS_ROUTE_OTHER];
}

int ts_metrics_create(struct ts_metrics **out)
{
    /* calloc's zeroes are valid initial values for every atomic here. */
    struct ts_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return TS_ENOMEM;
    pthread_mutex_init(&m->sources_lock, NULL);
    m->started = (int64_t)time(NULL);
    *out = m;
    return TS_OK;
}

void ts_metrics_destroy(struct ts_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->sources_lock);
    free(m);
}

void ts_metrics_request(struct ts_metrics *m, enum ts_route route, int status, double seconds)
{
    if ((unsigned)route >= TS_ROUTES)
        route = TS_ROUTE_OTHER;
    unsigned code = status >= 100 && status < TS_METRICS_STATUS_END ? (unsigned)status : 0;
    atomic_fetch_add_explicit(&m->requests[route][code], 1, memory_order_relaxed);
    ts_histogram_observe(&m->latency[route], seconds);
}

static bool label_value_ok(const char *name)
{
    size_t n = strlen(name);
    if (!n || n >= sizeof(((struct ts_metrics *)0)->sources[0].name))
        return false;
    for (; *name; name++)
        if (!((*name >= 'a' && *name <= 'z') || (*name >= '0' && *name <= '9') || *name == '_'))
            return false;
    return true;
}

struct ts_source_stats *ts_metrics_source(struct ts_metrics *m, const char *name)
{
    if (!label_value_ok(name))
        return NULL;
    struct ts_source_stats *found = NULL;
    pthread_mutex_lock(&m->sources_lock);
    unsigned n = atomic_load(&m->nsources);
    for (unsigned i = 0; i < n && !found; i++)
        if (!strcmp(m->sources[i].name, name))
            found = &m->sources[i].stats;
    if (!found && n < TS_METRICS_SOURCES) {
        memcpy(m->sources[n].name, name, strlen(name) + 1);
        found = &m->sources[n].stats;
        atomic_store(&m->nsources, n + 1); /* after the name: readers see it whole */
    }
    pthread_mutex_unlock(&m->sources_lock);
    return found;
}
