/* libfcgi front end: FastCGI params -> ts_request, router, ts_response -> CGI response. */
#include "server/fcgi.h"
#include "core/serve.h"
#include "server/router.h"
#include "util/cancel.h"
#include "util/cpus.h"

#include <fcgiapp.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FCGI_MAX_THREADS 256
/* The HTTP front end's figure (main.c: ts_http_stop(srv, 10)), so both stop alike. */
#define FCGI_DRAIN_SECONDS 10
/* Longest sleep of the watchdog: every deadline is at least a second away when it is set, so
 * none is overshot by more than scheduling delay. */
#define FCGI_WATCH_MAX_NS 1000000000LL

/* One client connection (usually the web server), served by its own thread from accept to
 * close. A thread per connection, not per worker: a connection that sends its request slowly or
 * never only costs its own thread, never a worker that another request needs. */
struct fcgi_conn {
    struct fcgi_server *srv;
    /* Ours, closed only by us after the connection left the list; libfcgi reads and closes a dup
     * of it. So the watchdog's shutdown() always hits this connection, never a later one that
     * was given the number libfcgi's close freed. */
    int fd;
    int64_t deadline_ns; /* while waiting on the client (request, answer, close); else 0 */
    bool reading;        /* the deadline is for the request itself */
    struct ts_job *job;  /* while serving; its token is tripped when the drain is over */
    FCGX_Request rq;     /* libfcgi keeps pointers to it: never moved */
    struct ts_buf body;  /* this request's, up to TS_REQUEST_BODY_MAX bytes */
    bool body_over;      /* it had more: counted to its end, not kept */
    struct fcgi_conn *prev, *next;
};

struct fcgi_server {
    struct ts_app *app;
    int sock;
    const char *web_servers; /* FCGI_WEB_SERVER_ADDRS, as libfcgi's own accept honours it */
    pthread_mutex_t lock;    /* guards everything below */
    pthread_cond_t place;    /* a serving place came free, or the drain is over */
    pthread_cond_t gone;     /* a connection ended */
    pthread_cond_t watch;    /* wakes the watchdog to stop */
    struct fcgi_conn *conns;
    unsigned nconns, max_conns;
    unsigned nserving, max_serving;
    bool stopping;   /* no new requests, none waited for on kept connections */
    bool cancelling; /* the drain is over: running jobs are cancelled, waiting ones dropped */
    bool watch_stop;
};

bool ts_fcgi_inherited_socket(void)
{
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0)
        return false;
    return listening != 0;
}

/* "Accept-Encoding" -> FastCGI's "HTTP_ACCEPT_ENCODING". */
static const char *param_header(void *ctx, const char *name)
{
    FCGX_Request *rq = ctx;
    char key[128] = "HTTP_";
    size_t o = 5;
    if (!strcasecmp(name, "Content-Type") || !strcasecmp(name, "Content-Length"))
        o = 0;
    for (const char *p = name; *p && o + 1 < sizeof key; p++)
        key[o++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    key[o] = '\0';
    return FCGX_GetParam(key, rq->envp);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The raw path: REQUEST_URI keeps %2F as the client sent it, which SCRIPT_NAME and PATH_INFO
 * (already decoded by the web server) cannot. */
static int request_path(FCGX_Request *rq, struct ts_buf *out)
{
    const char *uri = FCGX_GetParam("REQUEST_URI", rq->envp);
    if (uri && *uri) {
        size_t n = strcspn(uri, "?#");
        if (ts_buf_append(out, uri, n) != TS_OK)
            return TS_ENOMEM;
    } else {
        const char *script = FCGX_GetParam("SCRIPT_NAME", rq->envp);
        const char *info = FCGX_GetParam("PATH_INFO", rq->envp);
        if (ts_buf_appendf(out, "%s%s", script ? script : "", info ? info : "") != TS_OK)
            return TS_ENOMEM;
    }
    if (out->len == 0 && ts_buf_append(out, "/", 1) != TS_OK)
        return TS_ENOMEM;
    return ts_buf_append(out, "", 1);
}

static void write_response(FCGX_Request *rq, bool head, const struct ts_response *res)
{
    struct ts_buf h = {0};
    ts_buf_appendf(&h, "Status: %d %s\r\n", res->status, ts_http_reason(res->status));
    if (res->content_type[0])
        ts_buf_appendf(&h, "Content-Type: %s\r\n", res->content_type);
    for (int i = 0; i < res->nheaders; i++)
        ts_buf_appendf(&h, "%s: %s\r\n", res->headers[i].name, res->headers[i].value);
    if (res->status != 304 && res->status != 204) {
        size_t len;
        ts_response_body(res, &len);
        ts_buf_appendf(&h, "Content-Length: %zu\r\n", len);
    }
    ts_buf_appendf(&h, "\r\n");
    if (h.data)
        FCGX_PutStr((const char *)h.data, (int)h.len, rq->out);
    ts_buf_free(&h);
    /* Bodies beyond INT_MAX cannot happen (max-area bounds them), but write in chunks anyway. */
    size_t len;
    const uint8_t *p = ts_response_body(res, &len);
    size_t left = head || res->status == 304 ? 0 : len;
    while (left) {
        int n = left > (1u << 30) ? (1 << 30) : (int)left;
        if (FCGX_PutStr((const char *)p, n, rq->out) < 0)
            break;
        p += n;
        left -= (size_t)n;
    }
}

/* From now until disarm(), the watchdog shuts the connection down at the deadline, which ends
 * whatever read libfcgi is blocked in. The deadline is set once, not per byte, so a client that
 * trickles gets no longer than one that sends nothing. */
static void arm(struct fcgi_conn *c, bool reading_request, unsigned seconds)
{
    struct fcgi_server *srv = c->srv;
    pthread_mutex_lock(&srv->lock);
    c->deadline_ns = ts_monotonic_ns() + (int64_t)seconds * 1000000000;
    c->reading = reading_request;
    /* The stop has already shut the readers down; one arriving late must not wait. */
    if (reading_request && srv->stopping)
        shutdown(c->fd, SHUT_RDWR);
    pthread_mutex_unlock(&srv->lock);
}

static void disarm(struct fcgi_conn *c)
{
    pthread_mutex_lock(&c->srv->lock);
    c->deadline_ns = 0;
    c->reading = false;
    pthread_mutex_unlock(&c->srv->lock);
}

/* The request is whole only with its empty STDIN record. Reading it here keeps it under the
 * deadline; left unread, libfcgi would take it on a kept connection for the start of the next
 * request, find no FCGI_BEGIN_REQUEST and drop the connection. The body is kept up to its cap;
 * the rest is read and dropped, and the request answered 413. */
static int read_stdin(struct fcgi_conn *c)
{
    char buf[4096];
    int n;
    c->body.len = 0;
    c->body_over = false;
    while ((n = FCGX_GetStr(buf, sizeof buf, c->rq.in)) > 0)
        if (!c->body_over && ts_buf_append(&c->body, buf, (size_t)n) != TS_OK)
            c->body_over = true;
    return FCGX_GetError(c->rq.in) ? -1 : 0;
}

/* Waits for one of the max_serving places (--threads): the connections are many, the requests
 * rendered at once are not. False when the drain is over. */
static bool take_place(struct fcgi_conn *c)
{
    struct fcgi_server *srv = c->srv;
    pthread_mutex_lock(&srv->lock);
    while (!srv->cancelling && srv->nserving >= srv->max_serving)
        pthread_cond_wait(&srv->place, &srv->lock);
    bool ok = !srv->cancelling;
    if (ok)
        srv->nserving++;
    pthread_mutex_unlock(&srv->lock);
    return ok;
}

static void leave_place(struct fcgi_conn *c)
{
    struct fcgi_server *srv = c->srv;
    pthread_mutex_lock(&srv->lock);
    srv->nserving--;
    pthread_cond_signal(&srv->place);
    pthread_mutex_unlock(&srv->lock);
}

/* Publishes the job so that the stop can cancel it. */
static void track_job(struct fcgi_conn *c, struct ts_job *job)
{
    struct fcgi_server *srv = c->srv;
    pthread_mutex_lock(&srv->lock);
    c->job = job;
    /* Started after the drain gave up: nobody will wait for it. */
    if (job && srv->cancelling)
        ts_cancel_stop(&job->cancel, TS_ECANCELED);
    pthread_mutex_unlock(&srv->lock);
}

/* Returns with the serving place given back and the deadline for writing the answer armed. */
static void serve(struct fcgi_conn *c)
{
    struct fcgi_server *srv = c->srv;
    FCGX_Request *rq = &c->rq;
    double start = now_ms();
    struct ts_buf path = {0};
    if (request_path(rq, &path) != TS_OK) {
        ts_buf_free(&path);
        leave_place(c);
        arm(c, false, srv->app->cfg.connection_timeout);
        return;
    }
    const char *method = FCGX_GetParam("REQUEST_METHOD", rq->envp);
    const char *query = FCGX_GetParam("QUERY_STRING", rq->envp);
    const char *version = FCGX_GetParam("SERVER_PROTOCOL", rq->envp);
    struct ts_request req = {method && *method ? method : "GET",
                             (const char *)path.data,
                             query && *query ? query : NULL,
                             param_header,
                             rq,
                             version && *version ? version : NULL,
                             FCGX_GetParam("REMOTE_ADDR", rq->envp),
                             c->body.len ? (const char *)c->body.data : NULL,
                             c->body.len};
    struct ts_response res;
    ts_response_init(&res);
    struct ts_job job;
    ts_job_init(&job, TS_JOB_REPLY);
    struct ts_err err = {0};
    int rc = c->body_over ? ts_fail(&err, TS_ETOOLARGE, "the request body is over %u bytes",
                                    TS_REQUEST_BODY_MAX)
                          : router_route(srv->app, &req, &job, &err);
    track_job(c, &job);
    core_serve(srv->app, &req, &job, rc, &err, &res);
    track_job(c, NULL);
    /* The answer is in memory: the place can go to the next request while a slow client reads
     * it, and the writing gets a deadline of its own. */
    leave_place(c);
    arm(c, false, srv->app->cfg.connection_timeout);
    write_response(rq, !strcmp(req.method, "HEAD"), &res);
    double millis = now_ms() - start;
    router_count(srv->app, &job, &res, millis);
    router_log(srv->app, FCGX_GetParam("REMOTE_ADDR", rq->envp), &req, &res, millis);
    ts_response_free(&res);
    ts_job_free(&job);
    ts_buf_free(&path);
}

static void unlink_conn(struct fcgi_server *srv, struct fcgi_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    pthread_cond_broadcast(&srv->gone);
}

static bool is_stopping(struct fcgi_server *srv)
{
    pthread_mutex_lock(&srv->lock);
    bool stopping = srv->stopping;
    pthread_mutex_unlock(&srv->lock);
    return stopping;
}

static void *conn_main(void *arg)
{
    struct fcgi_conn *c = arg;
    struct fcgi_server *srv = c->srv;
    /* FCGX_Accept_r reads from ipcFd when it is set and accepts only when it is not, which
     * happens after it closed a connection that failed: listen_sock -1 turns that accept into
     * an error return. keepConnection stops the FCGX_Finish_r it begins with from closing the
     * fd before the first request; after that the web server's FCGI_KEEP_CONN decides. */
    FCGX_InitRequest(&c->rq, -1, FCGI_FAIL_ACCEPT_ON_INTR);
    c->rq.ipcFd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
    c->rq.keepConnection = 1;
    while (c->rq.ipcFd >= 0) {
        arm(c, true, srv->app->cfg.header_timeout);
        int rc = FCGX_Accept_r(&c->rq);
        if (rc == 0)
            rc = read_stdin(c);
        disarm(c);
        if (rc != 0 || !take_place(c))
            break;
        serve(c);
        /* Flushes the answer and, unless the connection is kept, closes it, reading until the
         * client closes too (libfcgi's lingering close): under the deadline serve() set. */
        FCGX_Finish_r(&c->rq);
        disarm(c);
        if (is_stopping(srv))
            break;
    }
    arm(c, false, srv->app->cfg.header_timeout);
    FCGX_Free(&c->rq, 1);
    disarm(c);
    ts_buf_free(&c->body);
    pthread_mutex_lock(&srv->lock);
    unlink_conn(srv, c);
    pthread_mutex_unlock(&srv->lock);
    close(c->fd);
    free(c);
    return NULL;
}

static void *watchdog(void *arg)
{
    struct fcgi_server *srv = arg;
    pthread_mutex_lock(&srv->lock);
    while (!srv->watch_stop) {
        int64_t now = ts_monotonic_ns();
        int64_t next = now + FCGI_WATCH_MAX_NS;
        for (struct fcgi_conn *c = srv->conns; c; c = c->next) {
            if (!c->deadline_ns)
                continue;
            if (c->deadline_ns <= now) {
                shutdown(c->fd, SHUT_RDWR);
                c->deadline_ns = 0;
            } else if (c->deadline_ns < next) {
                next = c->deadline_ns;
            }
        }
        struct timespec until = {(time_t)(next / 1000000000), (long)(next % 1000000000)};
        pthread_cond_timedwait(&srv->watch, &srv->lock, &until);
    }
    pthread_mutex_unlock(&srv->lock);
    return NULL;
}

/* libfcgi's own accept refuses IPv4 peers missing from FCGI_WEB_SERVER_ADDRS (a comma-separated
 * list; unset or empty = anyone); ours keeps that. */
static bool web_server_allowed(const struct fcgi_server *srv, const struct sockaddr_storage *sa)
{
    if (sa->ss_family != AF_INET || !srv->web_servers || !*srv->web_servers)
        return true;
    const struct sockaddr_in *peer = (const struct sockaddr_in *)sa;
    for (const char *p = srv->web_servers; *p;) {
        size_t n = strcspn(p, ",");
        char addr[64];
        struct in_addr a;
        if (n < sizeof addr) {
            memcpy(addr, p, n);
            addr[n] = '\0';
            if (inet_aton(addr, &a) && a.s_addr == peer->sin_addr.s_addr)
                return true;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return false;
}

/* Accepts without reading anything: every connection gets its own thread at once, so no
 * connection waits behind another's request. */
static void *acceptor(void *arg)
{
    struct fcgi_server *srv = arg;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* Thousands of connections may each have a thread; decoders and the renderer keep their
     * buffers on the heap, so 1 MB of stack is plenty and bounds the address space. */
    pthread_attr_setstacksize(&attr, (size_t)1 << 20);
    bool failing = false;
    for (;;) {
        pthread_mutex_lock(&srv->lock);
        /* At the limit the kernel's backlog holds the next ones. */
        while (!srv->stopping && srv->nconns >= srv->max_conns)
            pthread_cond_wait(&srv->gone, &srv->lock);
        bool stopping = srv->stopping;
        pthread_mutex_unlock(&srv->lock);
        if (stopping)
            break;
        struct sockaddr_storage sa = {0};
        socklen_t len = sizeof sa;
        int fd = accept(srv->sock, (struct sockaddr *)&sa, &len);
        if (fd < 0) {
            int e = errno;
            if (is_stopping(srv))
                break;
            if (e == EINTR || e == ECONNABORTED || e == EPROTO)
                continue;
            if (e == EBADF || e == EINVAL || e == ENOTSOCK || e == EOPNOTSUPP) {
                ts_log("FastCGI accept failed for good: %s", strerror(e));
                break;
            }
            /* Out of descriptors or memory: wait for some to come back rather than spin. */
            if (!failing)
                ts_log("FastCGI accept failed: %s (retrying)", strerror(e));
            failing = true;
            struct timespec pause = {0, 100 * 1000 * 1000};
            nanosleep(&pause, NULL);
            continue;
        }
        failing = false;
        /* The JPEG 2000 decoder runs in a child process: it must not inherit connections. */
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        if (sa.ss_family == AF_INET) {
            if (!web_server_allowed(srv, &sa)) {
                close(fd);
                continue;
            }
            /* As libfcgi does: the answer goes out in a few writes, no reply to wait for. */
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        struct fcgi_conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->srv = srv;
        c->fd = fd;
        ts_buf_init_capped(&c->body, TS_REQUEST_BODY_MAX);
        pthread_mutex_lock(&srv->lock);
        c->next = srv->conns;
        if (srv->conns)
            srv->conns->prev = c;
        srv->conns = c;
        srv->nconns++;
        pthread_mutex_unlock(&srv->lock);
        pthread_t t;
        if (pthread_create(&t, &attr, conn_main, c) != 0) {
            ts_log("FastCGI: no thread for a new connection; closed it");
            pthread_mutex_lock(&srv->lock);
            unlink_conn(srv, c);
            pthread_mutex_unlock(&srv->lock);
            close(fd);
            free(c);
        }
    }
    pthread_attr_destroy(&attr);
    return NULL;
}

/* Strict: octal digits only, at most 0777; "660" and "0660" alike. */
static int parse_socket_mode(const char *text, mode_t *out, struct ts_err *err)
{
    unsigned v = 0;
    const char *p = text;
    for (; *p; p++) {
        if (*p < '0' || *p > '7')
            break;
        v = v * 8 + (unsigned)(*p - '0');
        if (v > 0777)
            break;
    }
    if (!*text || *p)
        return ts_fail(err, TS_EINVAL,
                       "--socket-mode %s: expected octal permissions from 0000 to 0777, e.g. 0660",
                       text);
    *out = (mode_t)v;
    return TS_OK;
}

/* What Tessera always used; iipsrv's 2048 is only a default of its own --bind. */
#define FCGI_DEFAULT_BACKLOG 1024

static int open_socket(const struct ts_config *cfg, struct ts_err *err)
{
    mode_t mode = 0660;
    if (parse_socket_mode(cfg->socket_mode, &mode, err) != TS_OK)
        return -1;
    int backlog = cfg->fcgi_backlog ? (int)cfg->fcgi_backlog : FCGI_DEFAULT_BACKLOG;
    if (!cfg->fcgi_listen[0]) {
        if (!ts_fcgi_inherited_socket())
            return ts_fail(err, TS_EINVAL,
                           "no --fcgi address given and fd 0 is not a listening socket");
        /* listen() again on a listening socket only resizes its queue: --backlog is honoured
         * for a socket the web server made too. */
        if (cfg->fcgi_backlog && listen(0, backlog) != 0)
            return ts_fail(err, TS_EIO, "cannot set the backlog of fd 0 to %d: %s", backlog,
                           strerror(errno));
        return 0;
    }
    const char *addr = cfg->fcgi_listen;
    bool unix_path = strchr(addr, '/') != NULL || strchr(addr, ':') == NULL;
    if (unix_path) {
        /* A socket left behind by an earlier run would make bind fail. */
        struct stat st;
        if (lstat(addr, &st) == 0 && S_ISSOCK(st.st_mode))
            unlink(addr);
    }
    /* Until the chmod below, the socket has the mode bind gave it: keep that owner-only. */
    mode_t old_umask = umask(0177);
    int fd = FCGX_OpenSocket(addr, backlog);
    umask(old_umask);
    if (fd < 0)
        return ts_fail(err, TS_EIO, "cannot listen for FastCGI on %s", addr);
    /* The web server usually runs as another user: with the default 0660 it must share the
     * socket's group (the group tessera runs as, see packaging/tessera.service.in). */
    if (unix_path && chmod(addr, mode) != 0) {
        int e = errno;
        close(fd);
        unlink(addr);
        return ts_fail(err, TS_EIO, "cannot chmod FastCGI socket %s to %s: %s", addr,
                       cfg->socket_mode, strerror(e));
    }
    return fd;
}

static void remove_socket(const struct ts_config *cfg, int sock)
{
    if (sock != 0)
        close(sock);
    const char *addr = cfg->fcgi_listen;
    if (addr[0] && (strchr(addr, '/') != NULL || strchr(addr, ':') == NULL))
        unlink(addr);
}

/* Ends the requests in flight: the readers at once, the running ones after the drain. */
static void stop_connections(struct fcgi_server *srv)
{
    pthread_mutex_lock(&srv->lock);
    srv->stopping = true;
    /* The web server answers 502 for these, as it would for a server that is not running. */
    for (struct fcgi_conn *c = srv->conns; c; c = c->next)
        if (c->reading)
            shutdown(c->fd, SHUT_RDWR);
    pthread_cond_broadcast(&srv->gone); /* the acceptor may be waiting for room */
    pthread_mutex_unlock(&srv->lock);
    /* Wakes the acceptor from accept(). */
    shutdown(srv->sock, SHUT_RDWR);
}

static void drain_connections(struct fcgi_server *srv)
{
    int64_t end = ts_monotonic_ns() + (int64_t)FCGI_DRAIN_SECONDS * 1000000000;
    struct timespec until = {(time_t)(end / 1000000000), (long)(end % 1000000000)};
    pthread_mutex_lock(&srv->lock);
    while (srv->nconns > 0 && pthread_cond_timedwait(&srv->gone, &srv->lock, &until) == 0)
        ;
    if (srv->nconns > 0) {
        ts_log("FastCGI: %u connections still busy after %d s; cancelling their requests",
               srv->nconns, FCGI_DRAIN_SECONDS);
        srv->cancelling = true;
        /* The shutdown also frees a thread blocked writing to a client that stopped reading;
         * the cancelled answers have nobody left to go to. */
        for (struct fcgi_conn *c = srv->conns; c; c = c->next) {
            if (c->job)
                ts_cancel_stop(&c->job->cancel, TS_ECANCELED);
            shutdown(c->fd, SHUT_RDWR);
        }
        pthread_cond_broadcast(&srv->place);
    }
    /* The connections use the app: they must all be gone before the caller frees it. */
    while (srv->nconns > 0)
        pthread_cond_wait(&srv->gone, &srv->lock);
    pthread_mutex_unlock(&srv->lock);
}

static int init_server(struct fcgi_server *srv, struct ts_app *app, int sock)
{
    memset(srv, 0, sizeof *srv);
    srv->app = app;
    srv->sock = sock;
    srv->web_servers = getenv("FCGI_WEB_SERVER_ADDRS");
    unsigned n = app->cfg.threads;
    if (n == 0)
        n = ts_cpu_count();
    srv->max_serving = n > FCGI_MAX_THREADS ? FCGI_MAX_THREADS : n;
    srv->max_conns = app->cfg.max_connections ? app->cfg.max_connections : 1;
    pthread_condattr_t monotonic;
    if (pthread_condattr_init(&monotonic) != 0)
        return -1;
    pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
    pthread_mutex_init(&srv->lock, NULL);
    pthread_cond_init(&srv->place, NULL);
    pthread_cond_init(&srv->gone, &monotonic);
    pthread_cond_init(&srv->watch, &monotonic);
    pthread_condattr_destroy(&monotonic);
    return 0;
}

static void free_server(struct fcgi_server *srv)
{
    pthread_cond_destroy(&srv->watch);
    pthread_cond_destroy(&srv->gone);
    pthread_cond_destroy(&srv->place);
    pthread_mutex_destroy(&srv->lock);
}

int ts_fcgi_run(struct ts_app *app, struct ts_err *err)
{
    if (FCGX_Init() != 0)
        return ts_fail(err, TS_EIO, "FastCGI library initialisation failed");
    int sock = open_socket(&app->cfg, err);
    if (sock < 0)
        return TS_EINVAL;
    struct fcgi_server srv;
    if (init_server(&srv, app, sock) != 0) {
        remove_socket(&app->cfg, sock);
        return ts_fail(err, TS_ENOMEM, "cannot set up the FastCGI server");
    }
    pthread_t watch_thread, accept_thread;
    if (pthread_create(&watch_thread, NULL, watchdog, &srv) != 0) {
        remove_socket(&app->cfg, sock);
        free_server(&srv);
        return ts_fail(err, TS_EIO, "cannot start the FastCGI watchdog thread");
    }
    if (pthread_create(&accept_thread, NULL, acceptor, &srv) != 0) {
        pthread_mutex_lock(&srv.lock);
        srv.watch_stop = true;
        pthread_cond_signal(&srv.watch);
        pthread_mutex_unlock(&srv.lock);
        pthread_join(watch_thread, NULL);
        remove_socket(&app->cfg, sock);
        free_server(&srv);
        return ts_fail(err, TS_EIO, "cannot start the FastCGI accept thread");
    }
    printf("tessera: FastCGI on %s\n", app->cfg.fcgi_listen[0] ? app->cfg.fcgi_listen : "fd 0");
    fflush(stdout);

    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    int sig = 0;
    while (sigwait(&stop, &sig) == 0 && sig == SIGHUP)
        ts_app_hangup(app); /* reload (or logrotate's reopen), and keep serving */
    ts_log("signal %d: shutting down FastCGI", sig);
    stop_connections(&srv);
    pthread_join(accept_thread, NULL);
    drain_connections(&srv);
    pthread_mutex_lock(&srv.lock);
    srv.watch_stop = true;
    pthread_cond_signal(&srv.watch);
    pthread_mutex_unlock(&srv.lock);
    pthread_join(watch_thread, NULL);
    remove_socket(&app->cfg, sock);
    free_server(&srv);
    return TS_OK;
}
