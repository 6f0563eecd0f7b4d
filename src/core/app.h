/* The state every request handler shares: configuration and what is derived from it. */
#ifndef TESSERA_APP_H
#define TESSERA_APP_H

#include "config.h"
#include "encode/encode.h"
#include "image/reader.h"
#include "protocol/iiif_plan.h"
#include "render/passthrough.h"
#include "core/admission.h"
#include "core/response.h"

#include <pthread.h>
#include <stdio.h>

struct ts_lru;
struct engine_pool;

struct ts_app {
    struct ts_config cfg;
    struct iiif_options iiif;
    struct encode_options enc;
    struct ts_lru *responses;   /* encoded responses by request + source identity */
    struct ts_lru *infos;       /* struct ts_image_info by source identity */
    struct ts_lru *resolved;    /* identifier -> file proven to be below the root */
    struct engine_pool *readers;/* open readers by source identity */
    struct ts_lru *jp2_blocks;  /* decoded JPEG 2000 blocks; NULL when off */
    struct ts_block_store jp2_store; /* readers' way into jp2_blocks */
    struct admission admission;
    struct passthrough_rule passthrough; /* parsed --passthrough */
    FILE *access_log;
    pthread_mutex_t log_lock;
};

int ts_app_init(struct ts_app *app, const struct ts_config *cfg, struct ts_err *err);
void ts_app_free(struct ts_app *app);

/* Reopens the access log (after logrotate moved it): SIGHUP. */
void ts_app_reopen_log(struct ts_app *app);

/* Routes one request; always fills res (status, headers, body). */
void router_handle(struct ts_app *app, const struct ts_request *req, struct ts_response *res);

/* One access-log line per request (no-op when the log is off). */
void router_log(struct ts_app *app, const char *remote, const struct ts_request *req,
                const struct ts_response *res, double millis);

/* Logs a server-side message to stderr with a timestamp. */
void ts_log(const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

#endif
