/* libmicrohttpd front end: network threads never render; they hand requests to a worker pool
 * (suspending the connection) and send the answer when a worker resumes it. */
#include "server/http.h"
#include "cache/lru.h"
#include "core/serve.h"
#include "server/connguard.h"
#include "server/router.h"
#include "util/cancel.h"
#include "util/cpus.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* What a request may carry: a URL (path and query) up to 64 KB, headers up to 32 KB all
 * together. Beyond them: 414 and 431. libmicrohttpd keeps the request line, headers and one
 * record per query parameter in a per-connection pool that it clears on every request, so its
 * size is paid on every hit. Server CPU per cached tile, measured: 24.4 us with 64 KB, 24.8 us
 * with 128 KB, 27.5 us with 256 KB. 128 KB holds the documented limits and up to about 1,700
 * query parameters (1,667 answered, 1,999 not); past that libmicrohttpd 0.9.75 cannot answer
 * at all and the client waits for the connection timeout. */
#define HTTP_URL_MAX (64 * 1024)
#define HTTP_HEADERS_MAX (32 * 1024)
#define HTTP_POOL_BYTES (128 * 1024)

enum job_phase { JOB_NEW, JOB_QUEUED, JOB_DONE };

struct job {
    struct job *next;                  /* in its lane's queue */
    struct job *prev_live, *next_live; /* in the server's list of jobs a worker owes an answer */
    struct ts_http_server *srv;
    struct MHD_Connection *conn;
    int fd; /* the connection's socket, watched for the client leaving */
    enum job_phase phase;
    struct ts_request req;
    char remote[64]; /* the client's address, for access rules by network */
    struct ts_buf query;
    struct ts_buf body; /* up to TS_REQUEST_BODY_MAX bytes; the rest is counted, not kept */
    bool body_over;
    struct ts_job job; /* routed once, on the network thread; a worker carries it on */
    struct ts_response res;
    double start;
};

/* Two lanes. The fast one takes every request that needs a worker: information, tiles,
 * thumbnails, pages; a render it finds heavy moves to the slow lane, whose few workers (as
 * many as heavy renders may run at once) are the only ones big renders can occupy. A job
 * waiting in either queue holds no worker; the slow queue is short and a full one answers
 * 503 at once. */
struct lane {
    const char *name;
    struct job *head, *tail;
    unsigned queued, running;
    _Atomic unsigned waiting;  /* queued, readable without the lock (see idle_spin) */
    _Atomic unsigned spinning; /* workers in idle_spin, which need no signal */
    unsigned max_queued;       /* the slow lane: waiting beyond its running workers */
    pthread_cond_t ready;
    /* Where /metrics reads queued and running (the app's counters), or NULL. */
    _Atomic unsigned *queued_gauge, *running_gauge;
    unsigned nworkers;
    pthread_t *workers;
    bool spin; /* idle workers spin before sleeping (see idle_spin) */
};

struct ts_http_server {
    struct MHD_Daemon *daemon;
    struct ts_app *app;
    uint16_t port;
    pthread_mutex_t lock; /* the lanes and the live list */
    struct lane fast, slow;
    struct job *live; /* queued or running: the watcher trips their tokens */
    unsigned nlive;
    bool stopping;
    pthread_t watcher;
    bool watching;
    struct ts_connguard *guard;
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

/* libmicrohttpd splits the query into arguments; put the raw text back together (our unescape
 * callback leaves the values encoded) so protocols see what the client sent. */
static enum MHD_Result append_argument(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    struct ts_buf *q = cls;
    (void)kind;
    if (q->len)
        ts_buf_append(q, "&", 1);
    ts_buf_appendf(q, "%s%s%s", key, value ? "=" : "", value ? value : "");
    return MHD_YES;
}

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    size_t *total = cls;
    (void)kind;
    *total += strlen(key) + (value ? strlen(value) : 0) + 4; /* ": " and CRLF */
    return MHD_YES;
}

/* The request's size against the documented limits, before anything is parsed. */
static int request_size_check(struct MHD_Connection *conn, const char *url, size_t query_len,
                              struct ts_err *err)
{
    size_t headers = 0;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_header, &headers);
    if (strlen(url) + query_len > HTTP_URL_MAX)
        return ts_fail(err, TS_ETOOLONG, "the URL is over %u bytes", HTTP_URL_MAX);
    if (headers > HTTP_HEADERS_MAX)
        return ts_fail(err, TS_EHEADERS, "the request headers are over %u bytes", HTTP_HEADERS_MAX);
    return TS_OK;
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
    socklen_t len =
        sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    getnameinfo(sa, len, out, (socklen_t)size, NULL, 0, NI_NUMERICHOST);
}

/* Both with srv->lock held. */
static void lane_publish(struct lane *l)
{
    if (l->queued_gauge) {
        atomic_store_explicit(l->queued_gauge, l->queued, memory_order_relaxed);
        atomic_store_explicit(l->running_gauge, l->running, memory_order_relaxed);
    }
}

static void lane_push(struct lane *l, struct job *job)
{
    job->next = NULL;
    if (l->tail)
        l->tail->next = job;
    else
        l->head = job;
    l->tail = job;
    l->queued++;
    atomic_store_explicit(&l->waiting, l->queued, memory_order_release);
    lane_publish(l);
    /* A spinning worker takes a job without being woken; waking a sleeping one as well would
     * cost a wake-up on another core for nothing. A spinner that stops looks at the queue
     * under the lock before it sleeps, so no job is left waiting unsignalled. */
    if (l->queued > atomic_load_explicit(&l->spinning, memory_order_acquire))
        pthread_cond_signal(&l->ready);
}

static struct job *lane_pop(struct lane *l)
{
    struct job *job = l->head;
    if (job) {
        l->head = job->next;
        if (!l->head)
            l->tail = NULL;
        l->queued--;
        atomic_store_explicit(&l->waiting, l->queued, memory_order_release);
    }
    return job;
}

static void live_remove(struct ts_http_server *srv, struct job *job)
{
    if (job->prev_live)
        job->prev_live->next_live = job->next_live;
    else
        srv->live = job->next_live;
    if (job->next_live)
        job->next_live->prev_live = job->prev_live;
    job->prev_live = job->next_live = NULL;
    srv->nlive--;
}

/* The answer is in job->res: hand the connection back to libmicrohttpd to send it. */
static void answer(struct ts_http_server *srv, struct job *job)
{
    pthread_mutex_lock(&srv->lock);
    live_remove(srv, job);
    pthread_mutex_unlock(&srv->lock);
    job->phase = JOB_DONE;
    MHD_resume_connection(job->conn);
}

/* A heavy render found by the fast lane waits for the slow lane, or is refused at once when
 * the slow queue is full: a client told 503 now can come back; one left waiting holds a
 * connection and learns nothing. */
static void to_slow_lane(struct ts_http_server *srv, struct job *job)
{
    pthread_mutex_lock(&srv->lock);
    struct lane *slow = &srv->slow;
    bool full = slow->queued + slow->running >= slow->nworkers + slow->max_queued;
    if (!full && !srv->stopping) {
        job->job.defer_heavy = false;
        lane_push(&srv->slow, job);
        pthread_mutex_unlock(&srv->lock);
        return;
    }
    pthread_mutex_unlock(&srv->lock);
    core_refuse(srv->app, &job->job, TS_EBUSY,
                full ? "too many large renders are waiting; try again shortly"
                     : "the server is stopping",
                &job->res);
    answer(srv, job);
}

struct worker_arg {
    struct ts_http_server *srv;
    struct lane *lane;
};

/* The slow lane's threads yield the CPU to the fast lane's: on a busy machine a big render
 * takes longer, and the tiles a viewer waits on do not. Linux renices one thread by its id;
 * elsewhere setpriority would renice the whole process, so the lanes share the CPU evenly. */
static void lower_priority(void)
{
#if defined(__linux__) && defined(SYS_gettid)
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10) != 0)
        ts_log("cannot lower the slow lane's priority: %s", strerror(errno));
#endif
}

/* A fast-lane worker that finds its queue empty watches it a short while before it sleeps:
 * at low concurrency the next request comes a round trip later, and waking a sleeping thread
 * on another core (a halted virtual CPU, often) cost a 2-core server a quarter of each
 * thumbnail's time. Yields between looks. On one CPU there is no other core to wake, and the
 * spin only took turns from the network thread (odd regions at 1 core, c=1, about 5%): the
 * workers of a one-CPU server sleep at once. */
#define IDLE_SPIN_NS 200000

static void idle_spin(struct lane *lane)
{
    int64_t until = ts_monotonic_ns() + IDLE_SPIN_NS;
    atomic_fetch_add_explicit(&lane->spinning, 1, memory_order_acq_rel);
    while (!atomic_load_explicit(&lane->waiting, memory_order_acquire) && ts_monotonic_ns() < until)
        sched_yield();
    atomic_fetch_sub_explicit(&lane->spinning, 1, memory_order_acq_rel);
}

static void *worker_main(void *arg)
{
    struct ts_http_server *srv = ((struct worker_arg *)arg)->srv;
    struct lane *lane = ((struct worker_arg *)arg)->lane;
    free(arg);
    if (lane == &srv->slow)
        lower_priority();
    for (;;) {
        if (lane->spin)
            idle_spin(lane);
        pthread_mutex_lock(&srv->lock);
        while (!lane->head && !srv->stopping)
            pthread_cond_wait(&lane->ready, &srv->lock);
        struct job *job = lane_pop(lane);
        lane->running += job != NULL;
        lane_publish(lane);
        pthread_mutex_unlock(&srv->lock);
        if (!job) /* stopping, and the queue is drained */
            return NULL;
        bool done = core_finish(srv->app, &job->req, &job->job, &job->res);
        pthread_mutex_lock(&srv->lock);
        lane->running--;
        lane_publish(lane);
        pthread_mutex_unlock(&srv->lock);
        if (done)
            answer(srv, job);
        else
            to_slow_lane(srv, job);
    }
}

static void enqueue(struct ts_http_server *srv, struct job *job)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(job->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    job->fd = ci ? ci->connect_fd : -1;
    job->job.defer_heavy = true;
    pthread_mutex_lock(&srv->lock);
    job->prev_live = NULL;
    job->next_live = srv->live;
    if (srv->live)
        srv->live->prev_live = job;
    srv->live = job;
    srv->nlive++;
    lane_push(&srv->fast, job);
    pthread_mutex_unlock(&srv->lock);
}

/* libmicrohttpd does not watch a suspended connection, so nobody would notice its client
 * leave: this thread polls the sockets of every job a worker owes an answer, and trips the
 * token of those whose client hung up or reset. A queued job is then dropped unstarted and a
 * running render stops at its next check. */
#define WATCH_INTERVAL_MS 100

/* Readable with nothing to read is the end of the stream; bytes waiting are a pipelined
 * request, and that client is still there. */
static bool client_left(const struct pollfd *p)
{
    if (p->revents & (POLLHUP | POLLERR | POLLNVAL))
        return true;
    if (!(p->revents & POLLIN))
        return false;
    char c;
    ssize_t n = recv(p->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static void *watcher_main(void *arg)
{
    struct ts_http_server *srv = arg;
    struct pollfd *fds = NULL;
    struct job **jobs = NULL;
    size_t cap = 0;
    for (;;) {
        struct timespec pause = {0, WATCH_INTERVAL_MS * 1000000L};
        nanosleep(&pause, NULL);
        pthread_mutex_lock(&srv->lock);
        if (srv->stopping && !srv->nlive) {
            pthread_mutex_unlock(&srv->lock);
            break;
        }
        if (srv->nlive > cap) {
            size_t want = srv->nlive * 2;
            struct pollfd *f = realloc(fds, want * sizeof *f);
            if (f)
                fds = f;
            struct job **j = realloc(jobs, want * sizeof *j);
            if (j)
                jobs = j;
            if (f && j)
                cap = want;
        }
        size_t n = 0;
        for (struct job *j = srv->live; j && n < cap; j = j->next_live) {
            if (j->fd < 0)
                continue;
            fds[n] = (struct pollfd){.fd = j->fd, .events = POLLIN};
            jobs[n++] = j;
        }
        /* Polled under the lock, with no wait: a job stays live (and its socket open) until
         * a worker takes it off the list, which needs this lock. */
        if (n && poll(fds, n, 0) > 0)
            for (size_t i = 0; i < n; i++)
                if (client_left(&fds[i]))
                    ts_cancel_stop(&jobs[i]->job.cancel, TS_ECANCELED);
        pthread_mutex_unlock(&srv->lock);
    }
    free(fds);
    free(jobs);
    return NULL;
}

/* SIGTERM's last step: every render still running or queued stops now. */
static void cancel_all(struct ts_http_server *srv)
{
    pthread_mutex_lock(&srv->lock);
    for (struct job *j = srv->live; j; j = j->next_live)
        ts_cancel_stop(&j->job.cancel, TS_ECANCELED);
    pthread_mutex_unlock(&srv->lock);
}

static void release_shared(void *ref)
{
    ts_lru_release(ref);
}

static struct MHD_Response *make_response(struct ts_response *res)
{
    struct MHD_Response *mr;
    if (res->shared) {
        /* The cache's bytes go out as they are; the reference ends when they are sent. */
        mr = MHD_create_response_from_buffer_with_free_callback_cls(
            res->shared_len, (void *)res->shared_data, release_shared, res->shared);
        if (mr)
            res->shared = NULL;
    } else if (res->body.len) {
        mr =
            MHD_create_response_from_buffer_with_free_callback(res->body.len, res->body.data, free);
        if (mr) {
            res->body.data = NULL; /* now owned by libmicrohttpd */
            res->body.cap = 0;
        }
    } else {
        mr = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    }
    return mr;
}

static enum MHD_Result send_answer(struct job *job)
{
    struct ts_response *res = &job->res;
    char remote[64];
    remote_address(job->conn, remote, sizeof remote);
    double millis = now_ms() - job->start;
    router_count(job->srv->app, &job->job, res, millis);
    router_log(job->srv->app, remote, &job->req, res, millis);
    struct MHD_Response *mr = make_response(res);
    if (!mr)
        return MHD_NO;
    if (res->content_type[0])
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, res->content_type);
    for (int i = 0; i < res->nheaders; i++)
        MHD_add_response_header(mr, res->headers[i].name, res->headers[i].value);
    enum MHD_Result ok = MHD_queue_response(job->conn, (unsigned)res->status, mr);
    MHD_destroy_response(mr);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **state)
{
    struct ts_http_server *srv = cls;
    struct job *job = *state;
    if (!job) {
        /* The first call only announces the headers. */
        ts_connguard_request(srv->guard, conn);
        job = calloc(1, sizeof *job);
        if (!job)
            return MHD_NO;
        job->srv = srv;
        job->conn = conn;
        job->start = now_ms();
        ts_response_init(&job->res);
        ts_job_init(&job->job, TS_JOB_REPLY);
        ts_buf_init_capped(&job->body, TS_REQUEST_BODY_MAX);
        *state = job;
        return MHD_YES;
    }
    if (*upload_size) {
        /* libmicrohttpd hands the body over in pieces before the last call. */
        if (!job->body_over && ts_buf_append(&job->body, upload_data, *upload_size) != TS_OK)
            job->body_over = true;
        *upload_size = 0;
        return MHD_YES;
    }
    if (job->phase == JOB_DONE)
        return send_answer(job);
    if (job->phase == JOB_QUEUED)
        return MHD_YES; /* spurious call while a worker has it */

    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, append_argument, &job->query);
    if (ts_buf_append(&job->query, "", 1) != TS_OK) /* NUL-terminate */
        return MHD_NO;
    job->req = (struct ts_request){method,
                                   url,
                                   job->query.len > 1 ? (const char *)job->query.data : NULL,
                                   header_lookup,
                                   conn,
                                   version,
                                   job->remote,
                                   job->body.len ? (const char *)job->body.data : NULL,
                                   job->body.len};
    remote_address(conn, job->remote, sizeof job->remote);
    /* Routed once. Cache hits, revalidations and refusals are answered here, on the network
     * thread: a round trip through the worker pool would cost more than the answer itself. */
    struct ts_err err = {0};
    int rc = request_size_check(conn, url, job->query.len, &err);
    if (rc == TS_OK && job->body_over)
        rc = ts_fail(&err, TS_ETOOLARGE, "the request body is over %u bytes", TS_REQUEST_BODY_MAX);
    if (rc == TS_OK)
        rc = router_route(srv->app, &job->req, &job->job, &err);
    if (core_begin(srv->app, &job->req, &job->job, rc, &err, &job->res))
        return send_answer(job);
    job->phase = JOB_QUEUED;
    MHD_suspend_connection(conn);
    enqueue(srv, job);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **state,
                         enum MHD_RequestTerminationCode code)
{
    struct ts_http_server *srv = cls;
    (void)code;
    ts_connguard_done(srv->guard, conn);
    struct job *job = *state;
    if (!job)
        return;
    ts_response_free(&job->res);
    ts_job_free(&job->job);
    ts_buf_free(&job->query);
    ts_buf_free(&job->body);
    free(job);
    *state = NULL;
}

static void free_server(struct ts_http_server *srv)
{
    pthread_mutex_destroy(&srv->lock);
    if (srv->fast.name)
        pthread_cond_destroy(&srv->fast.ready);
    if (srv->slow.name)
        pthread_cond_destroy(&srv->slow.ready);
    free(srv->fast.workers);
    free(srv->slow.workers);
    ts_connguard_destroy(srv->guard);
    free(srv);
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

static unsigned cores(void)
{
    return ts_cpu_count();
}

/* The fast lane's workers finish what they hold first (they may still move a job to the
 * slow lane, which refuses it once stopping), then the slow lane's. */
static void stop_workers(struct ts_http_server *srv)
{
    pthread_mutex_lock(&srv->lock);
    srv->stopping = true;
    pthread_cond_broadcast(&srv->fast.ready);
    pthread_cond_broadcast(&srv->slow.ready);
    pthread_mutex_unlock(&srv->lock);
    struct lane *lanes[2] = {&srv->fast, &srv->slow};
    for (int l = 0; l < 2; l++) {
        for (unsigned i = 0; i < lanes[l]->nworkers; i++)
            pthread_join(lanes[l]->workers[i], NULL);
        lanes[l]->nworkers = 0;
        free(lanes[l]->workers);
        lanes[l]->workers = NULL;
    }
    if (srv->watching)
        pthread_join(srv->watcher, NULL);
    srv->watching = false;
}

static int start_lane(struct ts_http_server *srv, struct lane *lane, const char *name,
                      enum ts_lane id, unsigned workers, unsigned max_queued, struct ts_err *err)
{
    lane->name = name;
    if (srv->app->metrics) {
        lane->queued_gauge = &srv->app->metrics->queued[id];
        lane->running_gauge = &srv->app->metrics->running[id];
    }
    lane->max_queued = max_queued;
    lane->spin = id == TS_LANE_FAST && ts_cpu_count() > 1;
    pthread_cond_init(&lane->ready, NULL);
    lane->workers = calloc(workers, sizeof *lane->workers);
    if (!lane->workers)
        return ts_fail(err, TS_ENOMEM, "out of memory");
    for (unsigned i = 0; i < workers; i++) {
        struct worker_arg *a = malloc(sizeof *a);
        if (a)
            *a = (struct worker_arg){srv, lane};
        if (!a || pthread_create(&lane->workers[i], NULL, worker_main, a) != 0) {
            free(a);
            return ts_fail(err, TS_ENOMEM, "cannot start %s worker threads", name);
        }
        lane->nworkers++;
    }
    return TS_OK;
}

static int start_workers(struct ts_http_server *srv, unsigned fast, unsigned slow,
                         unsigned slow_queue, struct ts_err *err)
{
    int rc = start_lane(srv, &srv->fast, "fast", TS_LANE_FAST, fast, UINT_MAX, err);
    rc = rc ? rc : start_lane(srv, &srv->slow, "slow", TS_LANE_SLOW, slow, slow_queue, err);
    if (rc == TS_OK && pthread_create(&srv->watcher, NULL, watcher_main, srv) != 0)
        rc = ts_fail(err, TS_ENOMEM, "cannot start the connection watcher");
    srv->watching = rc == TS_OK;
    if (rc)
        stop_workers(srv);
    return rc;
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
    pthread_mutex_init(&srv->lock, NULL);
    unsigned threads = app->cfg.threads ? app->cfg.threads : cores();
    unsigned workers = app->cfg.workers ? app->cfg.workers : 2 * cores();
    if (!app->cfg.workers && workers < 4)
        workers = 4;
    /* As many slow workers as heavy renders may run: one more would only wait in admission. */
    rc = ts_connguard_create(&app->cfg, &srv->guard, err);
    if (rc == TS_OK)
        rc = start_workers(srv, workers, app->admission.heavy_max, app->admission.queue_max, err);
    if (rc) {
        free_server(srv);
        return rc;
    }
    /* ITC lets a quiesced daemon stop accepting while its threads finish what they hold;
     * suspend/resume lets a connection wait for a worker without holding a network thread. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* Port sharing only when asked: otherwise a second instance would start silently and
     * requests would flap between the two. */
    struct MHD_OptionItem reuse[] = {
        {app->cfg.reuse_port ? MHD_OPTION_LISTENING_ADDRESS_REUSE : MHD_OPTION_END, 1, NULL},
        {MHD_OPTION_END, 0, NULL}};
    srv->daemon = MHD_start_daemon(
        flags, app->cfg.listen_port, NULL, NULL, on_request, srv,
        /* First: libmicrohttpd uses its own logger for whatever it parses before this. */
        MHD_OPTION_EXTERNAL_LOGGER, ts_connguard_mhd_log, srv->guard, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_TIMEOUT, app->cfg.connection_timeout, MHD_OPTION_CONNECTION_LIMIT,
        ts_connguard_mhd_limit(srv->guard), MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        app->cfg.per_ip_connections, MHD_OPTION_NOTIFY_CONNECTION, ts_connguard_notify, srv->guard,
        /* The request line and headers live in this pool, next to libmicrohttpd's own
         * bookkeeping: room for the documented 64 KB of request, and for the 414/431 answer
         * when a client sends more. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_POOL_BYTES, MHD_OPTION_UNESCAPE_CALLBACK,
        keep_escaped, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_ARRAY, reuse,
        MHD_OPTION_END);
    if (!srv->daemon) {
        stop_workers(srv);
        free_server(srv);
        return ts_fail(err, TS_EIO, "cannot listen on %s:%u (address in use or not permitted)",
                       app->cfg.listen_host, (unsigned)app->cfg.listen_port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : app->cfg.listen_port;
    /* Port 0 asked for any free port: ids that fall back to our own address need the real one
     * (no client can know it, and so ask, before it is printed). */
    app->cfg.listen_port = srv->port;
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
    /* Refuse new connections at once, give the open ones time to get their answers: until
     * no worker owes one, then a moment for the last to be sent (idle keep-alive connections
     * would otherwise hold the drain to its end). */
    MHD_socket listen_fd = MHD_quiesce_daemon(srv->daemon);
    if (listen_fd != MHD_INVALID_SOCKET)
        close(listen_fd);
    unsigned settle = 0;
    for (unsigned i = 0; i < drain_seconds * 20 && settle < 10; i++) {
        const union MHD_DaemonInfo *di =
            MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        if (!di || di->num_connections == 0)
            break;
        pthread_mutex_lock(&srv->lock);
        settle = srv->nlive ? 0 : settle + 1;
        pthread_mutex_unlock(&srv->lock);
        struct timespec pause = {0, 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    /* Past the drain, renders stop at their next check; the workers answer every job they
     * hold (503) and resume its connection before the daemon goes. */
    cancel_all(srv);
    stop_workers(srv);
    MHD_stop_daemon(srv->daemon);
    free_server(srv);
}
