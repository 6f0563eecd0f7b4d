/* libmicrohttpd front end: raw paths in, router, responses out. */
#include "server/http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct ts_http_server {
    struct MHD_Daemon *daemon;
    struct ts_app *app;
    uint16_t port;
};

/* Leave the URL exactly as sent: identifiers carry %2F, which must not become '/' before the
 * IIIF parser has split the path into segments. */
static size_t keep_escaped(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

static const char *header_lookup(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
}

struct query_builder {
    struct ts_buf buf;
};

/* libmicrohttpd splits the query into arguments; put the raw text back together (our unescape
 * callback leaves the values encoded) so protocols see what the client sent. */
static enum MHD_Result append_argument(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    struct query_builder *q = cls;
    (void)kind;
    if (q->buf.len)
        ts_buf_append(&q->buf, "&", 1);
    ts_buf_appendf(&q->buf, "%s%s%s", key, value ? "=" : "", value ? value : "");
    return MHD_YES;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void remote_address(struct MHD_Connection *c, char *out, size_t size)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, size, "-");
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
    getnameinfo(sa, len, out, (socklen_t)size, NULL, 0, NI_NUMERICHOST);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **state)
{
    struct ts_http_server *srv = cls;
    (void)version;
    (void)upload_data;
    /* The first call only announces the headers; answer on the second, once any body is read. */
    if (*state == NULL) {
        *state = srv;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0; /* bodies are never used: drop them */
        return MHD_YES;
    }
    double start = now_ms();
    struct query_builder query = {{0}};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, append_argument, &query);
    if (ts_buf_append(&query.buf, "", 1) != TS_OK) /* NUL-terminate */
        return MHD_NO;
    struct ts_request req = {method, url, query.buf.len > 1 ? (const char *)query.buf.data : NULL,
                             header_lookup, conn};
    struct ts_response res;
    ts_response_init(&res);
    router_handle(srv->app, &req, &res);

    struct MHD_Response *mr;
    if (res.body.len) {
        mr = MHD_create_response_from_buffer_with_free_callback(res.body.len, res.body.data, free);
        if (mr) {
            res.body.data = NULL; /* now owned by libmicrohttpd */
            res.body.cap = 0;
        }
    } else {
        mr = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    }
    if (!mr) {
        ts_response_free(&res);
        ts_buf_free(&query.buf);
        return MHD_NO;
    }
    if (res.content_type[0])
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, res.content_type);
    for (int i = 0; i < res.nheaders; i++)
        MHD_add_response_header(mr, res.headers[i].name, res.headers[i].value);
    char remote[64];
    remote_address(conn, remote, sizeof remote);
    router_log(srv->app, remote, &req, &res, now_ms() - start);
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)res.status, mr);
    MHD_destroy_response(mr);
    ts_response_free(&res);
    ts_buf_free(&query.buf);
    return ok;
}

static int resolve_listen(const struct ts_config *cfg, struct sockaddr_storage *ss,
                          struct ts_err *err)
{
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)cfg->listen_port);
    int rc = getaddrinfo(cfg->listen_host, port, &hints, &ai);
    if (rc != 0 || !ai)
        return ts_fail(err, TS_EINVAL, "cannot resolve listen address %s: %s", cfg->listen_host,
                       gai_strerror(rc));
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    return TS_OK;
}

int ts_http_start(struct ts_app *app, struct ts_http_server **out, struct ts_err *err)
{
    struct sockaddr_storage addr;
    int rc = resolve_listen(&app->cfg, &addr, err);
    if (rc)
        return rc;
    struct ts_http_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return ts_fail(err, TS_ENOMEM, "out of memory");
    srv->app = app;
    unsigned threads = app->cfg.threads;
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 1;
    }
    /* ITC lets a quiesced daemon stop accepting while its threads finish what they hold. */
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    srv->daemon = MHD_start_daemon(
        flags, app->cfg.listen_port, NULL, NULL, on_request, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_TIMEOUT, app->cfg.connection_timeout,
        MHD_OPTION_CONNECTION_LIMIT, 1024u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
        MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        MHD_OPTION_END);
    if (!srv->daemon) {
        free(srv);
        return ts_fail(err, TS_EIO, "cannot listen on %s:%u (address in use or not permitted)",
                       app->cfg.listen_host, (unsigned)app->cfg.listen_port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : app->cfg.listen_port;
    *out = srv;
    return TS_OK;
}

uint16_t ts_http_port(const struct ts_http_server *srv)
{
    return srv->port;
}

void ts_http_stop(struct ts_http_server *srv, unsigned drain_seconds)
{
    if (!srv)
        return;
    /* Refuse new connections at once, give the open ones time to get their answers. */
    MHD_socket listen_fd = MHD_quiesce_daemon(srv->daemon);
    if (listen_fd != MHD_INVALID_SOCKET)
        close(listen_fd);
    for (unsigned i = 0; i < drain_seconds * 20; i++) {
        const union MHD_DaemonInfo *di =
            MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        if (!di || di->num_connections == 0)
            break;
        struct timespec pause = {0, 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    MHD_stop_daemon(srv->daemon);
    free(srv);
}
