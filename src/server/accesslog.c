/* Access log lines; the server writes them under the app's log lock. */
#include "server/accesslog.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One X-Forwarded-For entry without spaces, brackets or port, into out; false if it is not an
 * address. */
static bool xff_address(const char *item, size_t len, char *out, size_t size)
{
    while (len && (*item == ' ' || *item == '\t')) {
        item++;
        len--;
    }
    while (len && (item[len - 1] == ' ' || item[len - 1] == '\t'))
        len--;
    if (len && *item == '[') {
        const char *close = memchr(item, ']', len);
        if (!close)
            return false;
        item++;
        len = (size_t)(close - item);
    } else {
        const char *colon = memchr(item, ':', len);
        if (colon && !memchr(colon + 1, ':', len - (size_t)(colon + 1 - item)))
            len = (size_t)(colon - item); /* IPv4 with a port */
    }
    if (!len || len >= size)
        return false;
    memcpy(out, item, len);
    out[len] = '\0';
    uint8_t a[16];
    return ts_ip_parse(out, a);
}

void accesslog_client(const char *peer, const char *xff, bool trust_proxy,
                      const struct ts_ipset *proxies, char *out, size_t size)
{
    snprintf(out, size, "%s", peer && *peer ? peer : "-");
    if (!trust_proxy || !xff || !*xff)
        return;
    if (proxies && proxies->n && !ts_ipset_contains(proxies, peer))
        return;
    size_t end = strlen(xff);
    while (end > 0) {
        size_t start = end;
        while (start > 0 && xff[start - 1] != ',')
            start--;
        char addr[64];
        if (!xff_address(xff + start, end - start, addr, sizeof addr))
            return; /* out keeps the last good address */
        snprintf(out, size, "%s", addr);
        if (!proxies || !ts_ipset_contains(proxies, addr))
            return;
        end = start ? start - 1 : 0;
    }
}

/* Apache's escaping of request text in the log: a line can neither be split nor forged. */
static int escaped(struct ts_buf *out, const char *s)
{
    int rc = TS_OK;
    for (const unsigned char *p = (const unsigned char *)s; *p && !rc; p++) {
        if (*p == '"' || *p == '\\')
            rc = ts_buf_appendf(out, "\\%c", *p);
        else if (*p < 0x20 || *p > 0x7e)
            rc = ts_buf_appendf(out, "\\x%02x", *p);
        else
            rc = ts_buf_append(out, p, 1);
    }
    return rc;
}

static int combined(const struct accesslog_entry *e, struct ts_buf *out)
{
    char stamp[40];
    struct tm tm;
    gmtime_r(&e->when, &tm);
    strftime(stamp, sizeof stamp, "%d/%b/%Y:%H:%M:%S +0000", &tm);
    int rc = escaped(out, e->client ? e->client : "-");
    rc = rc ? rc : ts_buf_appendf(out, " - - [%s] \"", stamp);
    rc = rc ? rc : escaped(out, e->method ? e->method : "-");
    rc = rc ? rc : ts_buf_append(out, " ", 1);
    rc = rc ? rc : escaped(out, e->path ? e->path : "-");
    if (e->query) {
        rc = rc ? rc : ts_buf_append(out, "?", 1);
        rc = rc ? rc : escaped(out, e->query);
    }
    rc = rc ? rc : ts_buf_append(out, " ", 1);
    rc = rc ? rc : escaped(out, e->version ? e->version : "HTTP/1.1");
    if (e->bytes)
        rc = rc ? rc : ts_buf_appendf(out, "\" %d %zu \"", e->status, e->bytes);
    else
        rc = rc ? rc : ts_buf_appendf(out, "\" %d - \"", e->status);
    rc = rc ? rc : escaped(out, e->referer ? e->referer : "-");
    rc = rc ? rc : ts_buf_append(out, "\" \"", 3);
    rc = rc ? rc : escaped(out, e->user_agent ? e->user_agent : "-");
    return rc ? rc : ts_buf_append(out, "\"\n", 2);
}

/* A JSON string of text as sent: jansson takes valid UTF-8 as it is; anything else is
 * escaped as the combined format does, so the line stays valid JSON. */
static json_t *text(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    if (j)
        return j;
    struct ts_buf b = {0};
    j = escaped(&b, s) == TS_OK && ts_buf_str(&b) ? json_string((const char *)b.data) : NULL;
    ts_buf_free(&b);
    return j ? j : json_null();
}

static int json_line(const struct accesslog_entry *e, struct ts_buf *out)
{
    char stamp[40];
    struct tm tm;
    gmtime_r(&e->when, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    struct ts_buf uri = {0};
    int rc = ts_buf_append_str(&uri, e->path ? e->path : "");
    if (e->query) {
        rc = rc ? rc : ts_buf_append(&uri, "?", 1);
        rc = rc ? rc : ts_buf_append_str(&uri, e->query);
    }
    rc = rc ? rc : (ts_buf_str(&uri) ? TS_OK : TS_ENOMEM);
    json_t *o = rc ? NULL : json_object();
    if (o) {
        json_object_set_new(o, "time", json_string(stamp));
        json_object_set_new(o, "remote", text(e->client ? e->client : "-"));
        json_object_set_new(o, "method", text(e->method));
        json_object_set_new(o, "uri", text((const char *)uri.data));
        json_object_set_new(o, "protocol", text(e->version ? e->version : "HTTP/1.1"));
        json_object_set_new(o, "status", json_integer(e->status));
        json_object_set_new(o, "bytes", json_integer((json_int_t)e->bytes));
        json_object_set_new(o, "referer", text(e->referer));
        json_object_set_new(o, "user_agent", text(e->user_agent));
        json_object_set_new(o, "duration_ms",
                            json_real((double)(long long)(e->millis * 100) / 100));
    }
    ts_buf_free(&uri);
    char *line =
        o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12)) : NULL;
    json_decref(o);
    if (!line)
        return rc ? rc : TS_ENOMEM;
    rc = ts_buf_append_str(out, line);
    free(line);
    return rc ? rc : ts_buf_append(out, "\n", 1);
}

int accesslog_format(const struct accesslog_entry *e, bool json, struct ts_buf *out)
{
    return json ? json_line(e, out) : combined(e, out);
}
