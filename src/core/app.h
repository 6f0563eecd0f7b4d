/* The state every request shares: configuration and the caches derived from it. */
#ifndef TESSERA_APP_H
#define TESSERA_APP_H

#include "config.h"
#include "core/admission.h"
#include "core/response.h"
#include "encode/encode.h"
#include "image/reader.h"
#include "image/source.h"
#include "render/passthrough.h"
#include "render/plan.h"
#include "render/watermark.h"
#include "util/buf.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

struct ts_lru;
struct ts_memcache;
struct ts_pool;
struct ts_access;
struct json_t;

struct ts_app {
    struct ts_config cfg;
    struct ts_limits limits;         /* output limits and formats every protocol plans within */
    struct encode_options enc;       /* the server's encoder settings */
    struct source_root root;         /* the image root, open */
    struct ts_lru *responses;        /* encoded responses by source identity + job key */
    struct ts_lru *infos;            /* struct ts_image_info by source identity */
    struct ts_lru *resolved;         /* identifier -> file proven to be below the root */
    struct ts_pool *readers;         /* open readers by source identity, lent out as leases */
    struct ts_lru *jp2_blocks;       /* decoded JPEG 2000 blocks, NULL when off */
    struct ts_memcache *memcache;    /* the shared second level of responses, NULL when off */
    struct ts_block_store jp2_store; /* the readers' way into jp2_blocks */
    struct admission admission;
    struct passthrough_rule passthrough; /* parsed --passthrough */
    struct json_t *info_extra;           /* parsed IIIF_EXTRA_INFO object, or NULL */
    struct ts_watermark watermark; /* --watermark (WATERMARK), loaded once; mark.data NULL = off */
    struct ts_access *access;      /* restricted images (core/access.h); NULL = all open */
    FILE *access_log;
    pthread_mutex_t log_lock;
    /* Renders under way, against the CPUs the server may use: a render that finds CPUs idle
     * splits its work over them (struct ts_plan's threads). */
    atomic_uint rendering;
    unsigned ncpu;
};

int ts_app_init(struct ts_app *app, const struct ts_config *cfg, struct ts_err *err);
void ts_app_free(struct ts_app *app);

/* Reopens the access log (after logrotate moved it): SIGHUP. */
void ts_app_reopen_log(struct ts_app *app);

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
