/* What every protocol shares below its parser: resolve, open, render+encode, validators. */
#ifndef TESSERA_ENGINE_H
#define TESSERA_ENGINE_H

#include "image/reader.h"
#include "image/source.h"
#include "protocol/iiif_plan.h"
#include "core/app.h"
#include "core/response.h"

#include <stdbool.h>
#include <time.h>

/* Creates and frees the caches configured in app->cfg (response LRU, info LRU, reader pool). */
int engine_init(struct ts_app *app, struct ts_err *err);
void engine_free(struct ts_app *app);

/* Identifier -> confined file -> open reader (TS_EFORBIDDEN/TS_ENOTFOUND/TS_EUNSUPPORTED/
 * TS_ECODEC with a reason). */
int engine_resolve(struct ts_app *app, const char *identifier, struct source_file *src,
                   struct ts_err *err);
int engine_open(struct ts_app *app, const struct source_file *src, struct ts_reader **reader,
                struct ts_err *err);
/* Gives a reader back after use: kept open for the next request on the same file, or closed. */
void engine_release(struct ts_app *app, const struct source_file *src, struct ts_reader *reader);
/* Closes a reader that failed half-way, and frees the reader-cache slot that lent it, if any. */
void engine_discard(struct ts_app *app, struct ts_reader *reader);

/* Image information, from the info cache or by opening the file once. */
int engine_info(struct ts_app *app, const struct source_file *src, struct ts_image_info *info,
                struct ts_err *err);

/* Response cache: key is built from the source's identity and the request text (what), so a
 * changed file can never be served stale. A hit fills res (type, headers, body). */
bool engine_cache_lookup(struct ts_app *app, const struct source_file *src, const char *what,
                         struct ts_response *res);
void engine_cache_store(struct ts_app *app, const struct source_file *src, const char *what,
                        const struct ts_response *res);

/* Renders the plan and appends the encoded image to res->body, setting Content-Type. enc NULL
 * means the server's encoder settings (and allows stored-tile passthrough); a protocol that
 * lets the client choose them (IIP's QLT) passes its own. */
int engine_render(struct ts_app *app, struct ts_reader *reader, const struct ts_plan *plan,
                  const struct encode_options *enc, struct ts_response *res, struct ts_err *err);

/* A strong validator from the source file, the request text (what) and the output settings. */
void engine_etag(const struct ts_app *app, const struct source_file *src, const char *what,
                 char *out, size_t size);
/* ETag, Last-Modified and Cache-Control. */
void engine_cache_headers(const struct ts_app *app, struct ts_response *res, const char *etag,
                          time_t mtime);
/* If the client's copy is current, turns res into a 304 and returns true. */
bool engine_not_modified(const struct ts_app *app, const struct ts_request *req,
                         struct ts_response *res, const char *etag, time_t mtime);
/* Scheme://host[:port] that clients reach us at (no trailing slash): --base-url, else the
 * Host header (or, with --trust-proxy, X-Forwarded-Proto/Host), else the listen address. */
void engine_public_base(const struct ts_app *app, const struct ts_request *req, char *out,
                        size_t size);

/* An error response from a status and reason. */
void engine_fail(struct ts_response *res, int status, const struct ts_err *err);

#endif
