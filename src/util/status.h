/* One error vocabulary for every module, mapped onto HTTP statuses at the edge. */
#ifndef TESSERA_STATUS_H
#define TESSERA_STATUS_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

enum ts_status {
    TS_OK = 0,
    TS_DECLINED = 1,      /* not an error: this shortcut does not apply, take the general path */
    TS_EINVAL = -1,       /* malformed or impossible request: 400 */
    TS_EFORBIDDEN = -2,   /* identifier escapes the root: 403 */
    TS_ENOTFOUND = -3,    /* no such image: 404 */
    TS_ETOOLARGE = -4,    /* over a configured size or memory budget: 413 */
    TS_EUNSUPPORTED = -5, /* valid but not implemented: 501 */
    TS_ECODEC = -6,       /* a codec failed on the source or output: 500 */
    TS_ENOMEM = -7,       /* allocation failed: 500 */
    TS_EIO = -8,          /* read or stat failed: 500 */
    TS_EBUSY = -9,        /* server over budget: 503 */
    TS_EMETHOD = -10,     /* method not allowed: 405 */
};

/* A one-line human reason that travels with a status up to the response body and log. */
struct ts_err {
    char msg[256];
};

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

#endif
