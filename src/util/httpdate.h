/* HTTP-dates (RFC 9110) and the conditional-request check. */
#ifndef TESSERA_HTTPDATE_H
#define TESSERA_HTTPDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

void ts_http_date(time_t t, char *out, size_t size);
/* Returns -1 when text is not an IMF-fixdate. */
time_t ts_http_date_parse(const char *text);

/* True when the request's If-None-Match (or, without it, If-Modified-Since) shows the client
 * already holds this representation; either header may be NULL. */
bool ts_not_modified(const char *if_none_match, const char *if_modified_since, const char *etag,
                     time_t mtime);

#endif
