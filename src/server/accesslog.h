/* Access log lines: the Combined Log Format or JSON lines, and the client address to log. */
#ifndef TESSERA_ACCESSLOG_H
#define TESSERA_ACCESSLOG_H

#include "util/buf.h"
#include "util/ipset.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct accesslog_entry {
    const char *client;  /* address to log ("-" when unknown) */
    const char *method;  /* as sent */
    const char *path;    /* as sent, still percent-encoded */
    const char *query;   /* NULL when there was none */
    const char *version; /* "HTTP/1.1"; NULL = HTTP/1.1 */
    int status;
    size_t bytes;                     /* of the body sent */
    const char *referer, *user_agent; /* NULL when absent */
    time_t when;
    double millis;
};

/* The client: the peer itself, unless trust_proxy. Then X-Forwarded-For is read from its right
 * end: each address that is a trusted proxy (in proxies) is skipped, and the first that is not
 * is the client (when all are, the leftmost). With a proxies list, a peer that is not in it is
 * no proxy of ours, and its X-Forwarded-For is ignored. An entry that is not an address ends
 * the walk at the last address known to be good. */
void accesslog_client(const char *peer, const char *xff, bool trust_proxy,
                      const struct ts_ipset *proxies, char *out, size_t size);

/* Appends one line (with its newline). Combined:
 *   client - - [10/Oct/2026:13:55:36 +0000] "GET /path?q HTTP/1.1" 200 2326 "referer" "agent"
 * with '"', '\' and bytes outside printable ASCII escaped (\", \\, \xHH) as Apache does, and
 * "-" for a missing referer or agent and for no body bytes. JSON: one object with the same
 * fields (time, remote, method, uri, protocol, status, bytes, referer, user_agent) and
 * duration_ms, escaped by jansson. */
int accesslog_format(const struct accesslog_entry *e, bool json, struct ts_buf *out);

#endif
