/* Growable byte buffer with overflow-checked growth and an optional hard cap. */
#include "util/buf.h"
#include "util/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ts_buf_init_capped(struct ts_buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

/* Ensures at least `need` allocated bytes. The cap is checked by callers: this also serves
 * the NUL that may sit one past max. With a cap, growth stops at max + 1 rather than doubling
 * far beyond anything the buffer may hold. */
static int grow_to(struct ts_buf *b, size_t need)
{
    if (need <= b->cap)
        return TS_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    if (b->max && b->max < SIZE_MAX && cap > b->max + 1)
        cap = need > b->max + 1 ? need : b->max + 1;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return TS_ENOMEM;
    b->data = p;
    b->cap = cap;
    return TS_OK;
}

/* TS_OK when len may grow by extra bytes under the cap. */
static int check_room(const struct ts_buf *b, size_t extra, size_t *need)
{
    if (!ts_add_size(b->len, extra, need))
        return b->max ? TS_ETOOLONG : TS_ENOMEM;
    if (b->max && *need > b->max)
        return TS_ETOOLONG;
    return TS_OK;
}

int ts_buf_reserve(struct ts_buf *b, size_t extra)
{
    size_t need;
    int rc = check_room(b, extra, &need);
    return rc ? rc : grow_to(b, need);
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

int ts_buf_append_str(struct ts_buf *b, const char *s)
{
    return ts_buf_append(b, s, strlen(s));
}

int ts_buf_appendf(struct ts_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return TS_EINVAL;
    /* The cap counts the text only; vsnprintf's NUL lands one past it, which grow_to allows. */
    size_t need, with_nul;
    int rc = check_room(b, (size_t)n, &need);
    if (rc)
        return rc;
    if (!ts_add_size(need, 1, &with_nul))
        return TS_ENOMEM;
    rc = grow_to(b, with_nul);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return TS_OK;
}

const char *ts_buf_str(struct ts_buf *b)
{
    size_t need;
    if (!ts_add_size(b->len, 1, &need) || grow_to(b, need) != TS_OK)
        return NULL;
    b->data[b->len] = '\0';
    return (const char *)b->data;
}

void ts_buf_free(struct ts_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
