/* Header deadline and fair eviction for libmicrohttpd connections (see connguard.h).
 *
 * We never close a connection ourselves: shutdown(2) makes its socket readable at end of file,
 * and libmicrohttpd's own thread then closes it as if the client had left. shutdown() is only
 * called under g->lock, and libmicrohttpd 0.9.75 sends MHD_CONNECTION_NOTIFY_CLOSED (which
 * takes g->lock and forgets the fd) before it closes the socket (MHD_cleanup_connections, and
 * the failure path of new_connection_process_), so the fd we shut down is still that
 * connection's and cannot have been reused by another. */
#include "server/connguard.h"
#include "core/app.h"
#include "util/hash.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#define CG_BUCKETS 1024u
#define CG_TICK_MS 100
#define CG_SUMMARY_MS 5000
/* libmicrohttpd's own lines (one per dropped or refused connection) let through per summary. */
#define CG_MHD_LINES 5
/* Descriptors kept for everything but client sockets: images, cache files, logs, epoll. */
#define CG_FD_RESERVE 256u

enum cg_state { CG_WAITING, CG_BUSY, CG_DOOMED };

struct cg_addr;

struct cg_conn {
    struct cg_conn *prev, *next;   /* g->waiting, oldest first */
    struct cg_conn *aprev, *anext; /* the same, for its address only */
    struct cg_addr *addr;
    int fd;
    enum cg_state state;
    uint64_t since; /* ms: opened, or the previous response completed */
};

struct cg_addr {
    struct cg_addr *hnext;         /* hash chain */
    struct cg_addr *lprev, *lnext; /* g->addrs */
    unsigned char key[17];         /* family, then the address */
    unsigned open;                 /* connections not yet shut down */
    unsigned refs;                 /* records pointing here, shut down or not */
    struct cg_conn *whead, *wtail;
};

struct ts_connguard {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t reaper;
    bool stopping;
    uint64_t header_ms;
    unsigned max_open, mhd_limit;
    unsigned open;
    struct cg_conn *whead, *wtail;
    struct cg_addr *buckets[CG_BUCKETS];
    struct cg_addr *addrs;
    /* Since the last summary line: one line per connection would flood the log under attack. */
    unsigned long reaped, evicted, mhd_lines, mhd_dropped;
    uint64_t last_summary;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void address_key(const struct sockaddr *sa, unsigned char key[17])
{
    memset(key, 0, 17);
    if (!sa)
        return;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        key[0] = 4;
        memcpy(key + 1, &in->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        key[0] = 6;
        memcpy(key + 1, &in6->sin6_addr, 16);
    }
}

static struct cg_addr *address_ref(struct ts_connguard *g, const struct sockaddr *sa)
{
    unsigned char key[17];
    address_key(sa, key);
    struct cg_addr **slot = &g->buckets[ts_hash(TS_HASH_SEED, key, sizeof key) % CG_BUCKETS];
    for (struct cg_addr *a = *slot; a; a = a->hnext)
        if (!memcmp(a->key, key, sizeof key)) {
            a->refs++;
            return a;
        }
    struct cg_addr *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    memcpy(a->key, key, sizeof key);
    a->refs = 1;
    a->hnext = *slot;
    *slot = a;
    a->lnext = g->addrs;
    if (g->addrs)
        g->addrs->lprev = a;
    g->addrs = a;
    return a;
}

static void address_unref(struct ts_connguard *g, struct cg_addr *a)
{
    if (--a->refs)
        return;
    struct cg_addr **slot = &g->buckets[ts_hash(TS_HASH_SEED, a->key, sizeof a->key) % CG_BUCKETS];
    while (*slot != a)
        slot = &(*slot)->hnext;
    *slot = a->hnext;
    if (a->lprev)
        a->lprev->lnext = a->lnext;
    else
        g->addrs = a->lnext;
    if (a->lnext)
        a->lnext->lprev = a->lprev;
    free(a);
}

static void wait_begin(struct ts_connguard *g, struct cg_conn *c, uint64_t now)
{
    struct cg_addr *a = c->addr;
    c->state = CG_WAITING;
    c->since = now;
    c->next = NULL;
    c->prev = g->wtail;
    if (g->wtail)
        g->wtail->next = c;
    else
        g->whead = c;
    g->wtail = c;
    c->anext = NULL;
    c->aprev = a->wtail;
    if (a->wtail)
        a->wtail->anext = c;
    else
        a->whead = c;
    a->wtail = c;
}

static void wait_end(struct ts_connguard *g, struct cg_conn *c)
{
    struct cg_addr *a = c->addr;
    if (c->prev)
        c->prev->next = c->next;
    else
        g->whead = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        g->wtail = c->prev;
    if (c->aprev)
        c->aprev->anext = c->anext;
    else
        a->whead = c->anext;
    if (c->anext)
        c->anext->aprev = c->aprev;
    else
        a->wtail = c->aprev;
    c->prev = c->next = c->aprev = c->anext = NULL;
}

/* Only ever a waiting connection: one being answered keeps its place. */
static void doom(struct ts_connguard *g, struct cg_conn *c)
{
    wait_end(g, c);
    c->state = CG_DOOMED;
    g->open--;
    c->addr->open--;
    shutdown(c->fd, SHUT_RDWR);
}

/* The oldest waiting connection of the address that holds the most. A scan of the addresses is
 * enough: there are at most max_open of them, and it runs only when the server is full. */
static struct cg_conn *eviction_victim(struct ts_connguard *g)
{
    struct cg_addr *best = NULL;
    for (struct cg_addr *a = g->addrs; a; a = a->lnext)
        if (a->whead && (!best || a->open > best->open))
            best = a;
    return best ? best->whead : NULL;
}

static void opened(struct ts_connguard *g, int fd, const struct sockaddr *sa, void **slot)
{
    struct cg_conn *c = calloc(1, sizeof *c);
    if (!c)
        return; /* untracked: only the idle timeout applies to it */
    c->fd = fd;
    pthread_mutex_lock(&g->lock);
    c->addr = address_ref(g, sa);
    if (!c->addr) {
        pthread_mutex_unlock(&g->lock);
        free(c);
        return;
    }
    wait_begin(g, c, mono_ms());
    g->open++;
    c->addr->open++;
    /* The newcomer is waiting too, so there is always a victim; it is itself only when its own
     * address holds the most connections and has no older idler. */
    if (g->open > g->max_open) {
        struct cg_conn *victim = eviction_victim(g);
        if (victim) {
            doom(g, victim);
            g->evicted++;
        }
    }
    *slot = c;
    pthread_mutex_unlock(&g->lock);
}

static void closed(struct ts_connguard *g, void **slot)
{
    struct cg_conn *c = *slot;
    if (!c)
        return;
    pthread_mutex_lock(&g->lock);
    if (c->state == CG_WAITING)
        wait_end(g, c);
    if (c->state != CG_DOOMED) {
        g->open--;
        c->addr->open--;
    }
    address_unref(g, c->addr);
    pthread_mutex_unlock(&g->lock);
    free(c);
    *slot = NULL;
}

void ts_connguard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                         enum MHD_ConnectionNotificationCode code)
{
    struct ts_connguard *g = cls;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        closed(g, socket_context);
        return;
    }
    const union MHD_ConnectionInfo *fd =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    const union MHD_ConnectionInfo *ad =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (fd)
        opened(g, fd->connect_fd, ad ? ad->client_addr : NULL, socket_context);
}

static struct cg_conn *record_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void ts_connguard_request(struct ts_connguard *g, struct MHD_Connection *conn)
{
    struct cg_conn *c = record_of(conn);
    if (!c)
        return;
    pthread_mutex_lock(&g->lock);
    if (c->state == CG_WAITING) {
        wait_end(g, c);
        c->state = CG_BUSY;
    }
    pthread_mutex_unlock(&g->lock);
}

void ts_connguard_done(struct ts_connguard *g, struct MHD_Connection *conn)
{
    struct cg_conn *c = record_of(conn);
    if (!c)
        return;
    pthread_mutex_lock(&g->lock);
    if (c->state == CG_BUSY)
        wait_begin(g, c, mono_ms());
    pthread_mutex_unlock(&g->lock);
}

/* Called with g->lock held; releases it while writing. */
static void summarize(struct ts_connguard *g, uint64_t now)
{
    unsigned long reaped = g->reaped, evicted = g->evicted, dropped = g->mhd_dropped;
    unsigned open = g->open;
    g->reaped = g->evicted = g->mhd_lines = g->mhd_dropped = 0;
    g->last_summary = now;
    if (!reaped && !evicted && !dropped)
        return;
    pthread_mutex_unlock(&g->lock);
    if (reaped || evicted)
        ts_log("closed %lu connections whose request did not arrive within %llu s and %lu "
               "waiting ones to make room at the limit of %u; %u open",
               reaped, (unsigned long long)(g->header_ms / 1000), evicted, g->max_open, open);
    if (dropped)
        ts_log("%lu more libmicrohttpd messages not shown", dropped);
    pthread_mutex_lock(&g->lock);
}

void ts_connguard_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct ts_connguard *g = cls;
    pthread_mutex_lock(&g->lock);
    bool show = g->mhd_lines < CG_MHD_LINES;
    if (show)
        g->mhd_lines++;
    else
        g->mhd_dropped++;
    pthread_mutex_unlock(&g->lock);
    if (!show)
        return;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    ts_log("%s", line);
}

static void *reaper_main(void *arg)
{
    struct ts_connguard *g = arg;
    pthread_mutex_lock(&g->lock);
    while (!g->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += CG_TICK_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->wake, &g->lock, &until);
        uint64_t now = mono_ms();
        /* Everyone waits the same time, so the oldest waiter is always the first one due. */
        while (g->whead && now - g->whead->since >= g->header_ms) {
            doom(g, g->whead);
            g->reaped++;
        }
        if (now - g->last_summary >= CG_SUMMARY_MS)
            summarize(g, now);
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

/* Every connection needs a descriptor, and libmicrohttpd does not evict when accept() fails
 * with EMFILE: it stops accepting until one closes, which under slowloris means until the
 * header deadline. So the limits must fit under RLIMIT_NOFILE. */
static void fit_fd_limit(struct ts_connguard *g)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t need = (rlim_t)g->mhd_limit + CG_FD_RESERVE;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? need : rl.rlim_max;
        if (rl.rlim_cur > old && setrlimit(RLIMIT_NOFILE, &rl) == 0)
            ts_log("raised the open file limit from %llu to %llu for %u connections",
                   (unsigned long long)old, (unsigned long long)rl.rlim_cur, g->max_open);
        else
            rl.rlim_cur = old;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
        return;
    unsigned room = rl.rlim_cur > CG_FD_RESERVE + 32 ? (unsigned)(rl.rlim_cur - CG_FD_RESERVE) : 32;
    unsigned max = room * 4 / 5; /* leaves the slack of ts_connguard_mhd_limit */
    if (max < 16)
        max = 16;
    ts_log("the open file limit (%llu) allows %u connections, not %u: lowered to fit (raise "
           "the hard limit, e.g. LimitNOFILE=, to keep %u)",
           (unsigned long long)rl.rlim_cur, max, g->max_open, g->max_open);
    g->max_open = max;
    g->mhd_limit = max + max / 4;
}

int ts_connguard_create(const struct ts_config *cfg, struct ts_connguard **out, struct ts_err *err)
{
    struct ts_connguard *g = calloc(1, sizeof *g);
    if (!g)
        return ts_fail(err, TS_ENOMEM, "out of memory");
    g->header_ms = (uint64_t)cfg->header_timeout * 1000u;
    g->max_open = cfg->max_connections;
    /* Evicted connections still count for libmicrohttpd until its thread reads their end of
     * file, a loop iteration later; a burst of newcomers must not find its limit full. */
    g->mhd_limit = g->max_open + g->max_open / 4;
    fit_fd_limit(g);
    g->last_summary = mono_ms() - CG_SUMMARY_MS; /* the first summary need not wait */
    pthread_mutex_init(&g->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&g->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&g->reaper, NULL, reaper_main, g) != 0) {
        pthread_cond_destroy(&g->wake);
        pthread_mutex_destroy(&g->lock);
        free(g);
        return ts_fail(err, TS_ENOMEM, "cannot start the connection reaper thread");
    }
    *out = g;
    return TS_OK;
}

unsigned ts_connguard_mhd_limit(const struct ts_connguard *g)
{
    return g->mhd_limit;
}

void ts_connguard_destroy(struct ts_connguard *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->lock);
    g->stopping = true;
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->reaper, NULL);
    pthread_mutex_lock(&g->lock);
    summarize(g, mono_ms());
    pthread_mutex_unlock(&g->lock);
    /* Normally empty: libmicrohttpd reported every connection closed when it stopped. */
    while (g->addrs) {
        struct cg_addr *a = g->addrs;
        g->addrs = a->lnext;
        free(a);
    }
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->lock);
    free(g);
}
