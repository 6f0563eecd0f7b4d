/* The front-end-neutral request and response: HTTP and FastCGI both translate to these. */
#ifndef TESSERA_RESPONSE_H
#define TESSERA_RESPONSE_H

#include "util/buf.h"

#include <stdbool.h>
#include <stdint.h>

#define TS_MAX_HEADERS 24

struct ts_request {
    const char *method;
    const char *path;  /* raw, still percent-encoded, no query string */
    const char *query; /* raw, may be NULL */
    /* Returns the value of a request header (case-insensitive name) or NULL. */
    const char *(*header)(void *ctx, const char *name);
    void *ctx;
    /* Answer only what costs no image work (cache hits, 304s, redirects, errors); otherwise
     * leave res->status at 0 so the front end hands the request to a render worker. */
    bool fast_only;
};

struct ts_header {
    char *name;
    char *value;
};

struct ts_response {
    int status;
    char content_type[128];
    struct ts_header headers[TS_MAX_HEADERS];
    int nheaders;
    struct ts_buf body;
    char reason[256]; /* for the access log on errors */
};

const char *ts_request_header(const struct ts_request *req, const char *name);

void ts_response_init(struct ts_response *res);
void ts_response_free(struct ts_response *res);
int ts_response_add_header(struct ts_response *res, const char *name, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void ts_response_set_type(struct ts_response *res, const char *content_type);
/* An error: status from a ts_status, one-line text/plain body "<code> <name>: <reason>". */
void ts_response_error(struct ts_response *res, int status, const char *reason);

const char *ts_http_reason(int code);

#endif
