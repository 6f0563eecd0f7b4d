/* Status names, HTTP mapping and overflow-checked arithmetic shared by all modules. */
#include "util/status.h"

#include <stdarg.h>
#include <stdio.h>

int ts_status_http(int status)
{
    switch (status) {
#define TS_STATUS_HTTP(name, value, http, text)                                                    \
    case TS_##name: return http;
        TS_STATUS_MAP(TS_STATUS_HTTP)
#undef TS_STATUS_HTTP
    default: return 500;
    }
}

const char *ts_status_name(int status)
{
    switch (status) {
#define TS_STATUS_TEXT(name, value, http, text)                                                    \
    case TS_##name: return text;
        TS_STATUS_MAP(TS_STATUS_TEXT)
#undef TS_STATUS_TEXT
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

size_t ts_sat_add(size_t a, size_t b)
{
    size_t n;
    return ts_add_size(a, b, &n) ? n : SIZE_MAX;
}

size_t ts_sat_mul(size_t a, size_t b)
{
    size_t n;
    return ts_mul_size(a, b, &n) ? n : SIZE_MAX;
}
