/* The front-end-neutral request and response: HTTP and FastCGI both translate to these. */
#ifndef TESSERA_RESPONSE_H
#define TESSERA_RESPONSE_H

#include "util/buf.h"

#include <stdarg.h>
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
    const char *version; /* "HTTP/1.1" as the request line said; NULL = unknown */
    /* The client's address as the front end saw it (numeric), or NULL when unknown: access
     * rules by network range read it. */
    const char *remote;
    /* The request's body (NULL and 0 when it had none): the front ends keep at most
     * TS_REQUEST_BODY_MAX bytes and answer 413 beyond, so a body never costs more than that. */
    const char *body;
    size_t body_len;
};

/* Forms are all a body carries here (a login's user and password). */
#define TS_REQUEST_BODY_MAX 4096

struct ts_header {
    char *name;
    char *value;
};

struct ts_lru_ref;

struct ts_response {
    int status; /* HTTP */
    char content_type[160];
    struct ts_header headers[TS_MAX_HEADERS];
    int nheaders;
    struct ts_buf body;
    /* A body lent by the response cache instead of body: no copy; released with the response
     * (or by the front end that hands it on). */
    struct ts_lru_ref *shared;
    const uint8_t *shared_data;
    size_t shared_len;
    char reason[256]; /* for the log on errors */
};

/* Sets a header from a name and a printf format (both copied); ts_header_free frees it. */
int ts_header_vset(struct ts_header *h, const char *name, const char *fmt, va_list ap);
void ts_header_free(struct ts_header *h);

const char *ts_request_header(const struct ts_request *req, const char *name);

void ts_response_init(struct ts_response *res);
void ts_response_free(struct ts_response *res);
int ts_response_add_header(struct ts_response *res, const char *name, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void ts_response_set_type(struct ts_response *res, const char *content_type);
/* An error from a ts_status (never an HTTP code): one-line text/plain body
 * "<code> <name>: <reason>". */
void ts_response_error(struct ts_response *res, int status, const char *reason);

/* The body to send, whichever buffer holds it. */
const uint8_t *ts_response_body(const struct ts_response *res, size_t *len);
/* Makes ref's bytes the body (any own body is dropped); the response now holds ref. */
void ts_response_share(struct ts_response *res, struct ts_lru_ref *ref, const uint8_t *data,
                       size_t len);

const char *ts_http_reason(int code);

#endif
