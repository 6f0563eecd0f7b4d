/* One error vocabulary for every module, mapped onto HTTP statuses at the edge. */
#ifndef TESSERA_STATUS_H
#define TESSERA_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One table makes the enum, the names and the HTTP statuses (libuv's UV_ERRNO_MAP shape):
 * X(name, value, http, text). Positive values are not errors. */
#define TS_STATUS_MAP(X)                                                                           \
    X(OK, 0, 200, "ok")                                                                            \
    X(DECLINED, 1, 200, "declined") /* this shortcut does not apply: take the general path */      \
    X(DEFERRED, 2, 200, "deferred") /* a heavy render: continue it in the slow lane */             \
    X(EINVAL, -1, 400, "invalid request")       /* malformed or impossible request */              \
    X(EFORBIDDEN, -2, 403, "forbidden")         /* identifier escapes the root */                  \
    X(ENOTFOUND, -3, 404, "not found")          /* no such image or route */                       \
    X(ETOOLARGE, -4, 413, "too large")          /* over a configured size or memory budget */      \
    X(EUNSUPPORTED, -5, 501, "not implemented") /* valid but not implemented */                    \
    X(ECODEC, -6, 500, "codec error")           /* a codec failed on the source or output */       \
    X(ENOMEM, -7, 500, "out of memory")                                                            \
    X(EIO, -8, 500, "i/o error")                                                                   \
    X(EBUSY, -9, 503, "busy") /* server over budget: try again */                                  \
    X(EMETHOD, -10, 405, "method not allowed")                                                     \
    X(ETOOLONG, -11, 414, "request too long") /* URL or text built from it over its cap */         \
    X(EHEADERS, -12, 431, "request headers too large")                                             \
    X(ETIMEOUT, -13, 503, "deadline passed")      /* the request ran past its deadline */          \
    X(ECANCELED, -14, 503, "canceled")            /* the client left or the server is stopping */  \
    X(EMEDIA, -15, 415, "unsupported media type") /* IIIF 1.1: an output format not offered */     \
    X(EUPSTREAM, -16, 502, "source failed") /* a remote source refused, broke off or is down */    \
    X(EUPTIMEOUT, -17, 504, "source timed out") /* a remote source did not answer in time */       \
    X(EUNAUTH, -18, 401, "unauthorized")        /* no credentials: a restricted image, admin */

enum ts_status {
#define TS_STATUS_ENUM(name, value, http, text) TS_##name = value,
    TS_STATUS_MAP(TS_STATUS_ENUM)
#undef TS_STATUS_ENUM
};

/* A one-line human reason that travels with a status up to the response body and log. */
struct ts_err {
    char msg[256];
    char code[16]; /* a protocol's own error code (IIP's "2 2"), "" for none */
};

/* The HTTP status for a status (500 for anything unknown) and its one-word-ish name. */
int ts_status_http(int status);
const char *ts_status_name(int status);

/* Sets err->msg (if err is non-NULL) and returns status, so callers can `return ts_fail(...)`. */
int ts_fail(struct ts_err *err, int status, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Overflow-checked size maths: false when the result does not fit. */
bool ts_mul_size(size_t a, size_t b, size_t *out);
bool ts_mul3_size(size_t a, size_t b, size_t c, size_t *out);
bool ts_add_size(size_t a, size_t b, size_t *out);
/* Saturating forms, for estimates where "more than can be counted" is the right answer. */
size_t ts_sat_add(size_t a, size_t b);
size_t ts_sat_mul(size_t a, size_t b);

#endif
