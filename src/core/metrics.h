/* The server's own counters: requests by route and status, their latency, refusals, the front
 * end's queues, and the sources of images. Updated with atomics only, never under a lock. */
#ifndef TESSERA_METRICS_H
#define TESSERA_METRICS_H

#include "util/metric.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* Which part of the server answered: the label of a request's counts. */
enum ts_route {
    TS_ROUTE_OTHER, /* nothing took it (404), a refusal before routing, a CORS preflight */
    TS_ROUTE_IIIF,
    TS_ROUTE_IIP,
    TS_ROUTE_DEEPZOOM,
    TS_ROUTE_ZOOMIFY,
    TS_ROUTE_WEB, /* the viewer, its files, listings and manifests */
    TS_ROUTE_HEALTH,
    TS_ROUTE_METRICS,
    TS_ROUTES
};

const char *ts_route_name(enum ts_route route);

/* HTTP statuses are counted one by one from 100 to 599; anything else counts as 0. */
#define TS_METRICS_STATUS_END 600
/* Sources of images a server may read from at once (local root, HTTP, S3 ...). */
#define TS_METRICS_SOURCES 8

/* The HTTP front end's two lanes (server/http.c): requests waiting for a worker and requests a
 * worker is serving. FastCGI has no lanes and leaves them at 0. */
enum ts_lane { TS_LANE_FAST, TS_LANE_SLOW, TS_LANES };

struct ts_metrics {
    _Atomic uint64_t requests[TS_ROUTES][TS_METRICS_STATUS_END];
    struct ts_histogram latency[TS_ROUTES];
    /* 503s a front end gave without asking admission (its slow lane's queue was full). */
    _Atomic uint64_t refused_busy;
    _Atomic unsigned queued[TS_LANES], running[TS_LANES];
    /* Sources register once at start (under the lock); their slots are then updated with
     * atomics. nsources is published after the slot it counts is filled. */
    pthread_mutex_t sources_lock;
    _Atomic unsigned nsources;
    struct {
        char name[32];
        struct ts_source_stats stats;
    } sources[TS_METRICS_SOURCES];
    int64_t started; /* Unix time the server started */
};

int ts_metrics_create(struct ts_metrics **out);
void ts_metrics_destroy(struct ts_metrics *m);

/* One answered request: its route, HTTP status and time from arrival to answer. */
void ts_metrics_request(struct ts_metrics *m, enum ts_route route, int status, double seconds);

/* The counters of the source called name ([a-z0-9_], as it appears in the source="" label),
 * made on first use. Call while setting up, not per request: the pointer stays valid until
 * ts_metrics_destroy. NULL when name is not a valid label value or every slot is taken. */
struct ts_source_stats *ts_metrics_source(struct ts_metrics *m, const char *name);

#endif
