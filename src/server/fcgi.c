/* libfcgi front end: FastCGI params -> ts_request, router, ts_response -> CGI response. */
#include "server/fcgi.h"
#include "core/serve.h"
#include "server/router.h"

#include <fcgiapp.h>

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FCGI_BACKLOG 1024
#define FCGI_MAX_THREADS 256

struct fcgi_server {
    struct ts_app *app;
    int sock;
    pthread_mutex_t accept_lock;
    atomic_int stopping;
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

static void serve(struct fcgi_server *srv, FCGX_Request *rq)
{
    double start = now_ms();
    struct ts_buf path = {0};
    if (request_path(rq, &path) != TS_OK) {
        ts_buf_free(&path);
        return;
    }
    const char *method = FCGX_GetParam("REQUEST_METHOD", rq->envp);
    const char *query = FCGX_GetParam("QUERY_STRING", rq->envp);
    struct ts_request req = {method && *method ? method : "GET", (const char *)path.data,
                             query && *query ? query : NULL, param_header, rq};
    struct ts_response res;
    ts_response_init(&res);
    struct ts_job job;
    struct ts_err err = {0};
    int rc = router_route(srv->app, &req, &job, &err);
    core_serve(srv->app, &req, &job, rc, &err, &res);
    write_response(rq, !strcmp(req.method, "HEAD"), &res);
    router_log(srv->app, FCGX_GetParam("REMOTE_ADDR", rq->envp), &req, &res, now_ms() - start);
    ts_response_free(&res);
    ts_job_free(&job);
    ts_buf_free(&path);
}

static void *worker(void *arg)
{
    struct fcgi_server *srv = arg;
    FCGX_Request rq;
    if (FCGX_InitRequest(&rq, srv->sock, FCGI_FAIL_ACCEPT_ON_INTR) != 0)
        return NULL;
    for (;;) {
        /* One thread at a time waits in accept(), as libfcgi's threaded example does. */
        pthread_mutex_lock(&srv->accept_lock);
        int rc = srv->stopping ? -1 : FCGX_Accept_r(&rq);
        pthread_mutex_unlock(&srv->accept_lock);
        if (rc < 0)
            break;
        serve(srv, &rq);
        FCGX_Finish_r(&rq);
    }
    FCGX_Free(&rq, 0);
    return NULL;
}

static int open_socket(const struct ts_config *cfg, struct ts_err *err)
{
    if (!cfg->fcgi_listen[0]) {
        if (!ts_fcgi_inherited_socket())
            return ts_fail(err, TS_EINVAL,
                           "no --fcgi address given and fd 0 is not a listening socket");
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
    int fd = FCGX_OpenSocket(addr, FCGI_BACKLOG);
    if (fd < 0)
        return ts_fail(err, TS_EIO, "cannot listen for FastCGI on %s", addr);
    /* The web server usually runs as another user: access to a unix socket is governed by the
     * directory it is created in (see docs/), not by the socket's own mode. */
    if (unix_path && chmod(addr, 0666) != 0)
        ts_log("cannot chmod FastCGI socket %s: %s", addr, strerror(errno));
    return fd;
}

int ts_fcgi_run(struct ts_app *app, struct ts_err *err)
{
    if (FCGX_Init() != 0)
        return ts_fail(err, TS_EIO, "FastCGI library initialisation failed");
    int sock = open_socket(&app->cfg, err);
    if (sock < 0)
        return TS_EIO;
    struct fcgi_server srv = {.app = app, .sock = sock, .accept_lock = PTHREAD_MUTEX_INITIALIZER};
    atomic_init(&srv.stopping, 0);
    unsigned n = app->cfg.threads;
    if (n == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (unsigned)cores : 1;
    }
    n = n > FCGI_MAX_THREADS ? FCGI_MAX_THREADS : n;
    pthread_t threads[FCGI_MAX_THREADS];
    unsigned started = 0;
    for (; started < n; started++)
        if (pthread_create(&threads[started], NULL, worker, &srv) != 0)
            break;
    if (started == 0) {
        if (sock != 0)
            close(sock);
        return ts_fail(err, TS_EIO, "cannot start FastCGI worker threads");
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
        ts_app_reopen_log(app); /* logrotate's signal: reopen, keep serving */
    ts_log("signal %d: shutting down FastCGI", sig);
    /* shutdown() wakes the thread blocked in accept(); the others see the flag. */
    srv.stopping = 1;
    shutdown(sock, SHUT_RDWR);
    for (unsigned i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    close(sock);
    if (app->cfg.fcgi_listen[0] && strchr(app->cfg.fcgi_listen, '/'))
        unlink(app->cfg.fcgi_listen);
    pthread_mutex_destroy(&srv.accept_lock);
    return TS_OK;
}
