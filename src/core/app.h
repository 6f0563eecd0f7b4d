/* The state every request shares: configuration and the caches derived from it. */
#ifndef TESSERA_APP_H
#define TESSERA_APP_H

#include "config.h"
#include "core/admission.h"
#include "core/job.h"
#include "core/metrics.h"
#include "core/response.h"
#include "encode/encode.h"
#include "image/reader.h"
#include "image/source.h"
#include "render/passthrough.h"
#include "render/plan.h"
#include "render/watermark.h"
#include "util/buf.h"
#include "util/ipset.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

struct ts_lru;
struct ts_memcache;
struct ts_pool;
struct ts_remote;
struct ts_access;
struct json_t;

/* The settings a SIGHUP may change while requests run. A request takes one snapshot
 * (ts_job_live) and reads it to its end, so its plan, validators, cache keys and encoder agree;
 * a reload builds a new snapshot and publishes it with one atomic store (release; readers load
 * with acquire). Replaced snapshots stay valid until the app is freed: reloads are rare and a
 * snapshot is small, so no request ever has to be waited for. */
struct ts_live {
    struct ts_limits limits;             /* output limits and formats every protocol plans within */
    struct encode_options enc;           /* the server's encoder settings */
    struct passthrough_rule passthrough; /* parsed --passthrough */
    unsigned cache_max_age;
    char cache_control[512];
    unsigned request_deadline;
    char admin_token[256];   /* "" = the admin endpoint is off */
    bool access_log_on;      /* an access log is configured */
    bool access_log_json;    /* its lines are JSON objects, not the Combined Log Format */
    struct ts_ipset proxies; /* --trusted-proxies */
    struct ts_live *older;   /* the snapshot this one replaced, freed with the app */
};

struct ts_app {
    struct ts_config cfg;               /* as started: what a reload changes is in live */
    _Atomic(struct ts_live *) live;     /* the settings in force (ts_app_live) */
    struct source_root root;            /* the image root, open */
    struct ts_lru *responses;           /* encoded responses by source identity + job key */
    struct ts_lru *infos;               /* struct ts_image_info by source identity */
    struct ts_lru *resolved;            /* identifier -> file proven to be below the root */
    struct ts_pool *readers;            /* open readers by source identity, lent out as leases */
    struct ts_lru *jp2_blocks;          /* decoded JPEG 2000 blocks, NULL when off */
    struct ts_memcache *memcache;       /* the shared second level of responses, NULL when off */
    struct ts_block_store jp2_store;    /* the readers' way into jp2_blocks */
    struct ts_lru *remote_blocks;       /* blocks of remote objects, NULL when off */
    struct ts_block_store remote_store; /* the byte sources' way into remote_blocks */
    struct ts_remote *remote;           /* HTTP(S) and S3 sources; NULL without --source rules */
    /* One per --source rule, open for the rules naming a local folder (fd -1 for the others);
     * root.extra points here, so files from them are reopened confined as the root's are. */
    struct source_root *local_roots;
    struct admission admission;
    struct json_t *info_extra;     /* parsed IIIF_EXTRA_INFO object, or NULL */
    struct ts_watermark watermark; /* --watermark (WATERMARK), loaded once; mark.data NULL = off */
    struct ts_metrics *metrics;    /* what /metrics shows; every thread counts into it */
    /* The access log: reopened and replaced under log_lock, which every line is written under. */
    struct ts_access *access; /* restricted images (core/access.h); NULL = all open */
    FILE *access_log;
    char access_log_path[TS_CONFIG_PATH_MAX];
    pthread_mutex_t log_lock;
    /* Renders under way, against the CPUs the server may use: a render that finds CPUs idle
     * splits its work over them (struct ts_plan's threads). */
    atomic_uint rendering;
    unsigned ncpu;
    void (*hangup)(struct ts_app *app, void *ctx);
    void *hangup_ctx;
};

int ts_app_init(struct ts_app *app, const struct ts_config *cfg, struct ts_err *err);
void ts_app_free(struct ts_app *app);

/* Where a file sits among identifiers, for names every server agrees on and for access rules:
 * "/" and its path below the root, or "/PREFIX/" and its path below a --source folder; its
 * path as it is otherwise (the demo, full paths opened anywhere). Points into src or buf. */
const char *ts_app_place(const struct ts_app *app, const struct source_file *src, char *buf,
                         size_t size);

/* Reopens the access log (after logrotate moved it): SIGHUP. */
void ts_app_reopen_log(struct ts_app *app);

/* The settings in force now; a request should take them once (ts_job_live). */
const struct ts_live *ts_app_live(const struct ts_app *app);
/* The job's snapshot, taken when the core began it, or the settings in force. */
const struct ts_live *ts_job_live(const struct ts_app *app, const struct ts_job *job);

/* Applies a configuration read again (SIGHUP) without stopping: the limits, encoder settings,
 * passthrough rule, Cache-Control, request deadline, admin token, cache sizes and the access
 * log (file, format, proxies). started and before are the configuration as given at start
 * and as read at the last reload: logs the settings that changed since before, and for each
 * one not applied that differs from started, that it needs a restart. Nothing changes when the new
 * settings do not make a whole (a bad passthrough rule, an unreadable token file): TS_EINVAL with
 * the reason. */
int ts_app_reload(struct ts_app *app, const struct ts_config *started,
                  const struct ts_config *before, const struct ts_config *fresh,
                  struct ts_err *err);

/* SIGHUP: whatever the front end's signal loop should do on it (main sets hangup to reload
 * the configuration; without it, the access log is reopened). */
void ts_app_hangup(struct ts_app *app);

/* Scheme://host[:port] that clients reach us at (no trailing slash): --base-url, else the
 * Host header (or, with --trust-proxy, X-Forwarded-Proto/Host), else the listen address. */
int ts_app_public_base(const struct ts_app *app, const struct ts_request *req, struct ts_buf *out);

/* Logs a server-side message to stderr with a timestamp. */
void ts_log(const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

#endif
