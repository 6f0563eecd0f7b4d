/* HTTP-dates (RFC 9110) and the conditional-request check. */
#ifndef TESSERA_HTTPDATE_H
#define TESSERA_HTTPDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Writes t as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", 29 characters + NUL). */
void ts_http_date(time_t t, char *out, size_t size);

/* Parses any of the three forms RFC 9110 section 5.6.7 makes recipients accept: IMF-fixdate,
 * the obsolete RFC 850 form ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime ("Sun Nov  6
 * 08:49:37 1994"). Names are case-sensitive, fields must be in range (a leap second :60 is
 * allowed), the day must exist in its month and the weekday must match the date; surrounding
 * spaces or tabs are ignored. Returns -1 for anything else, and for years before 1970 or
 * after 9999. A two-digit RFC 850 year is taken relative to the current year. */
time_t ts_http_date_parse(const char *text);
/* The same, with "now" fixing the RFC 850 century: a two-digit year that would put the date
 * more than 50 years after now's year belongs to the century before. */
time_t ts_http_date_parse_at(const char *text, time_t now);

/* True when the request's If-None-Match (or, without it, If-Modified-Since) shows the client
 * already holds this representation; either header may be NULL. If-None-Match uses the weak
 * comparison (W/ ignored on both sides) and "*" matches any representation. An
 * If-Modified-Since that is not a valid HTTP-date is ignored. */
bool ts_not_modified(const char *if_none_match, const char *if_modified_since, const char *etag,
                     time_t mtime);

#endif
