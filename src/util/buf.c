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

int ts_buf_append(struct ts_buf *b, const void *data, size_t len)
{
    int rc = ts_buf_reserve(b, len);
    if (rc)
        return rc;
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
