/* Building responses: headers, types and the one-line error bodies. */
#include "core/response.h"
#include "cache/lru.h"
#include "util/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ts_request_header(const struct ts_request *req, const char *name)
{
    return req->header ? req->header(req->ctx, name) : NULL;
}

void ts_response_init(struct ts_response *res)
{
    memset(res, 0, sizeof *res);
    res->status = 200;
}

void ts_response_free(struct ts_response *res)
{
    for (int i = 0; i < res->nheaders; i++)
        ts_header_free(&res->headers[i]);
    res->nheaders = 0;
    ts_buf_free(&res->body);
    ts_lru_release(res->shared);
    res->shared = NULL;
    res->shared_data = NULL;
    res->shared_len = 0;
}

const uint8_t *ts_response_body(const struct ts_response *res, size_t *len)
{
    if (res->shared) {
        *len = res->shared_len;
        return res->shared_data;
    }
    *len = res->body.len;
    return res->body.data;
}

void ts_response_share(struct ts_response *res, struct ts_lru_ref *ref, const uint8_t *data,
                       size_t len)
{
    ts_buf_free(&res->body);
    ts_lru_release(res->shared);
    res->shared = ref;
    res->shared_data = data;
    res->shared_len = len;
}

int ts_header_vset(struct ts_header *h, const char *name, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        return TS_EINVAL;
    char *value = malloc((size_t)n + 1);
    char *dup = strdup(name);
    if (!value || !dup) {
        free(value);
        free(dup);
        return TS_ENOMEM;
    }
    vsnprintf(value, (size_t)n + 1, fmt, ap);
    h->name = dup;
    h->value = value;
    return TS_OK;
}

void ts_header_free(struct ts_header *h)
{
    free(h->name);
    free(h->value);
    h->name = h->value = NULL;
}

int ts_response_add_header(struct ts_response *res, const char *name, const char *fmt, ...)
{
    if (res->nheaders >= TS_MAX_HEADERS)
        return TS_ENOMEM;
    va_list ap;
    va_start(ap, fmt);
    int rc = ts_header_vset(&res->headers[res->nheaders], name, fmt, ap);
    va_end(ap);
    if (rc == TS_OK)
        res->nheaders++;
    return rc;
}

void ts_response_set_type(struct ts_response *res, const char *content_type)
{
    snprintf(res->content_type, sizeof res->content_type, "%s", content_type);
}

const char *ts_http_reason(int code)
{
    switch (code) {
    case 200: return "OK";
    case 204: return "No Content";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

void ts_response_error(struct ts_response *res, int status, const char *reason)
{
    int code = ts_status_http(status);
    res->status = code;
    res->body.len = 0;
    ts_response_share(res, NULL, NULL, 0);
    ts_response_set_type(res, "text/plain; charset=utf-8");
    /* Keep the body to one line whatever the reason contains. */
    char line[256];
    snprintf(line, sizeof line, "%s", reason ? reason : ts_http_reason(code));
    for (char *p = line; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    snprintf(res->reason, sizeof res->reason, "%s", line);
    ts_buf_appendf(&res->body, "%d %s: %s\n", code, ts_http_reason(code), line);
    if (code == 503)
        ts_response_add_header(res, "Retry-After", "2");
}
