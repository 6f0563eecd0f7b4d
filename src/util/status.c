/* Status names, HTTP mapping and overflow-checked arithmetic shared by all modules. */
#include "util/status.h"

#include <stdarg.h>
#include <stdio.h>

int ts_status_http(int status)
{
    switch (status) {
    case TS_OK: return 200;
    case TS_EINVAL: return 400;
    case TS_EFORBIDDEN: return 403;
    case TS_ENOTFOUND: return 404;
    case TS_EMETHOD: return 405;
    case TS_ETOOLARGE: return 413;
    case TS_EUNSUPPORTED: return 501;
    case TS_EBUSY: return 503;
    default: return 500;
    }
}

const char *ts_status_name(int status)
{
    switch (status) {
    case TS_OK: return "ok";
    case TS_DECLINED: return "declined";
    case TS_EINVAL: return "invalid request";
    case TS_EFORBIDDEN: return "forbidden";
    case TS_ENOTFOUND: return "not found";
    case TS_EMETHOD: return "method not allowed";
    case TS_ETOOLARGE: return "too large";
    case TS_EUNSUPPORTED: return "not implemented";
    case TS_ECODEC: return "codec error";
    case TS_ENOMEM: return "out of memory";
    case TS_EIO: return "i/o error";
    case TS_EBUSY: return "busy";
    default: return "internal error";
    }
}

int ts_fail(struct ts_err *err, int status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return status;
}

bool ts_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return false;
    *out = a * b;
    return true;
}

bool ts_mul3_size(size_t a, size_t b, size_t c, size_t *out)
{
    size_t ab;
    return ts_mul_size(a, b, &ab) && ts_mul_size(ab, c, out);
}

bool ts_add_size(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a)
        return false;
    *out = a + b;
    return true;
}
