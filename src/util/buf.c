/* Growable byte buffer with overflow-checked growth. */
#include "util/buf.h"
#include "util/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ts_buf_reserve(struct ts_buf *b, size_t extra)
{
    size_t need;
    if (!ts_add_size(b->len, extra, &need))
        return TS_ENOMEM;
    if (b->max && need > b->max + 1) /* room for a terminating NUL is always allowed */
        return TS_ETOOLONG;
    if (need <= b->cap)
        return TS_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2)
            return TS_ENOMEM;
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return TS_ENOMEM;
    b->data = p;
    b->cap = cap;
    return TS_OK;
}

void ts_buf_init_capped(struct ts_buf *b, size_t max)
{
    *b = (struct ts_buf){0};
    b->max = max;
}

const char *ts_buf_str(struct ts_buf *b)
{
    if (ts_buf_reserve(b, 1) != TS_OK)
        return NULL;
    b->data[b->len] = '\0';
    return (const char *)b->data;
}

int ts_buf_append_str(struct ts_buf *b, const char *s)
{
    return ts_buf_append(b, s, strlen(s));
}

int ts_buf_append(struct ts_buf *b, const void *data, size_t len)
{
    int rc = ts_buf_reserve(b, len);
    if (rc)
        return rc;
    if (b->max && b->len + len > b->max)
        return TS_ETOOLONG;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    return TS_OK;
}

int ts_buf_appendf(struct ts_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return TS_EINVAL;
    int rc = ts_buf_reserve(b, (size_t)n + 1);
    if (rc)
        return rc;
    if (b->max && b->len + (size_t)n > b->max)
        return TS_ETOOLONG;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return TS_OK;
}

void ts_buf_free(struct ts_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
