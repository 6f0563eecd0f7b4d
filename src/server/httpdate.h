/* RFC 7231 HTTP-dates, ETags and the conditional-request check. */
#ifndef TESSERA_HTTPDATE_H
#define TESSERA_HTTPDATE_H

#include "server/response.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

void ts_http_date(time_t t, char *out, size_t size);
/* Returns -1 when text is not an IMF-fixdate. */
time_t ts_http_date_parse(const char *text);

/* 64-bit FNV-1a, chained by passing the previous hash as seed. */
uint64_t ts_hash(uint64_t seed, const void *data, size_t len);
#define TS_HASH_SEED 0xcbf29ce484222325ull

/* True when the request's If-None-Match (or, without it, If-Modified-Since) shows the client
 * already holds this representation. */
bool ts_not_modified(const struct ts_request *req, const char *etag, time_t mtime);

#endif
