/* Decoder processes for the JPEG 2000 reader: see jp2pool.h for why they exist. */
#define _GNU_SOURCE /* memfd_create, close_range */
#include "image/jp2pool.h"
#include "util/cpus.h"

#include <errno.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define POOL_MAX 4
#define POOL_POLL_MS 50 /* how late a canceled decode is ended, at most */
/* A mapping larger than this is given back after the decode that needed it. */
#define POOL_KEEP_BYTES ((size_t)64 << 20)

/* What the server sends a decoder. fn is a plain function pointer: every decoder is a fork of
 * the zygote, a fork of the server, and none execs, so code addresses mean the same on all sides.
 */
struct pool_msg {
    ts_jp2pool_fn fn;
    struct ts_jp2pool_job job;
    uint32_t w, h, channels, pad;
    uint64_t map_size; /* the shared memory's size now; the decoder maps it anew when it changed */
};

struct pool_reply {
    int rc;
    struct ts_err err;
};

struct pool_dec {
    pid_t pid; /* 0 while not running */
    int sock;  /* the server's end */
    int mem;   /* memfd both sides map */
    uint8_t *map;
    size_t map_size;
    bool busy;
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_idle = PTHREAD_COND_INITIALIZER;
static struct pool_dec pool_decs[POOL_MAX];
static int pool_size; /* 0 until first use */
static int pool_busy;

/* ---- the decoder side ---- */

/* Closes every descriptor but 0-2, keep1 and keep2: a decoder must not hold the server's
 * sockets (a client's connection would stay open) nor other decoders' server ends (they would
 * not see the server go). */
static void pool_close_others(int keep1, int keep2)
{
    unsigned lo = (unsigned)(keep1 < keep2 ? keep1 : keep2);
    unsigned hi = (unsigned)(keep1 < keep2 ? keep2 : keep1);
    unsigned from[3] = {3, lo + 1, hi + 1}, to[3] = {lo - 1, hi - 1, ~0u};
    bool ok = lo >= 3; /* else the ranges below would take in what is kept */
    for (int i = 0; ok && i < 3; i++)
        if (from[i] <= to[i] && close_range(from[i], to[i], 0) != 0)
            ok = false;
    if (ok)
        return;
    long max = sysconf(_SC_OPEN_MAX);
    for (int fd = 3; fd < (max < 0 || max > 65536 ? 65536 : max); fd++)
        if (fd != keep1 && fd != keep2)
            close(fd);
}

/* Signals that end the decoder: it must die of them plainly, whatever handlers the server (or
 * a sanitizer, or libFuzzer, which would call an OpenJPEG assert a crash of its whole run)
 * installed, and whatever mask the forking thread had. */
static void pool_plain_signals(void)
{
    static const int sigs[] = {SIGABRT, SIGALRM, SIGSEGV, SIGBUS, SIGFPE,
                               SIGILL,  SIGTERM, SIGINT,  SIGHUP, SIGQUIT};
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        signal(sigs[i], SIG_DFL);
        sigaddset(&set, sigs[i]);
    }
    signal(SIGPIPE, SIG_IGN);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

/* Takes up to n descriptors passed with a message (closing any more); the rest are -1. */
static void pool_recv_fds(struct msghdr *mh, int *fds, int n)
{
    int got = 0;
    for (int i = 0; i < n; i++)
        fds[i] = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (int i = 0; i < k; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof fd, sizeof fd);
                if (got < n)
                    fds[got++] = fd;
                else
                    close(fd);
            }
        }
}

/* Receives one message of up to len bytes with up to nfds (at most 2) descriptors, the ones
 * missing set to -1; returns what recvmsg did, retried when a signal cut it short. */
static ssize_t pool_recv(int sock, void *buf, size_t len, int *fds, int nfds)
{
    union {
        char buf[CMSG_SPACE(2 * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {buf, len};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    ssize_t n;
    while ((n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    if (n <= 0)
        mh.msg_controllen = 0; /* nothing came: every slot -1 */
    pool_recv_fds(&mh, fds, nfds);
    return n;
}

/* Sends len bytes with nfds descriptors (at most 2). */
static bool pool_send_fds(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
    union {
        char buf[CMSG_SPACE(2 * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {(void *)buf, len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    memset(&ctl, 0, sizeof ctl);
    if (nfds > 0) {
        mh.msg_control = ctl.buf;
        mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
    }
    ssize_t n;
    while ((n = sendmsg(sock, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    return n == (ssize_t)len;
}

/* glibc's malloc, left to itself, gave the decoder's heap back to the kernel after nearly every
 * decode (OpenJPEG's buffers of a tile are freed at its end) and faulted it in, zeroed, for
 * the next: 16% of a decoder's time went to page faults, zeroing and unmapping (perf, JPEG 2000
 * viewer tiles at 1 core). Kept up to 16 MB free, blocks under 8 MB from the heap: JPEG 2000
 * tiles at 1 core, c=1, 140 -> 153-158 req/s, a decoder's resident memory 9.6 -> 12.5 MB. */
static void pool_keep_heap(void)
{
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
#endif
}

/* The decoder's life: one request at a time until the server's end closes. */
static void pool_decoder_main(int sock, int mem)
{
    uint8_t *map = NULL;
    size_t map_size = 0;
    pool_plain_signals();
    pool_close_others(sock, mem);
    pool_keep_heap();
    for (;;) {
        struct pool_msg m;
        struct pool_reply reply;
        int fd;
        ssize_t n = pool_recv(sock, &m, sizeof m, &fd, 1);
        if (n <= 0)
            _exit(0); /* the server is gone */
        if (fd < 0 || (size_t)n != sizeof m)
            _exit(2);
        if (m.map_size != map_size) {
            if (map)
                munmap(map, map_size);
            map = mmap(NULL, m.map_size, PROT_READ | PROT_WRITE, MAP_SHARED, mem, 0);
            if (map == MAP_FAILED)
                _exit(3);
            map_size = m.map_size;
        }
        struct ts_image view = {m.w, m.h, m.channels, (size_t)m.w * m.channels, map};
        memset(&reply, 0, sizeof reply);
        /* A decoder that loops on a hostile file is ended by the clock, not left holding a
         * request: SIGALRM's default action kills it, and the server answers 500. */
        alarm(TS_JP2POOL_DECODE_SECONDS);
        reply.rc = m.fn(fd, &m.job, &view, &reply.err);
        alarm(0);
        close(fd);
        if (send(sock, &reply, sizeof reply, MSG_NOSIGNAL) != (ssize_t)sizeof reply)
            _exit(0);
    }
}

/* ---- the zygote: the one process that forks decoders ---- */

/* Decoders are not forked by the server but by a zygote, a small single-threaded process the
 * server forks once, at start, before its worker threads and caches exist:
 * - a fork copies the forking process's locks as they are at that instant. A decoder forked by
 *   the server while another thread held an allocator lock waited for it forever: seen under
 *   AddressSanitizer (whose allocator GCC 12 does not make fork-safe, unlike glibc's malloc) as
 *   a decode that "timed out" after 60 s in test_jp2_cache. The zygote holds no lock when it
 *   forks.
 * - a decoder forked by the server shares, copy-on-write, all the server's memory at that
 *   moment (its caches too) for as long as it lives: each page the server then writes is
 *   copied, and the decoder keeps the old one. The zygote's memory is the server's at start.
 * - decoders take the zygote's priority, the server's at start, not that of a slow-lane worker
 *   (+10) that happened to need one.
 * The zygote also reaps its decoders when the server asks (ZY_REAP), so a decoder's pid
 * stays its own, and can be killed, until the server knows how it ended. A zygote forked
 * amid running threads (a replacement, or a test that never called ts_jp2pool_start) may
 * carry a lock copied held: it never allocates, so it cannot wait on one; glibc frees its
 * malloc locks in the child of a fork, so its decoders do not either, though under GCC 12's
 * AddressSanitizer they could, which is why the server starts it before its threads. */

enum { ZY_SPAWN = 1, ZY_REAP = 2 };

struct zy_msg {
    int op;
    pid_t pid; /* ZY_REAP: the decoder to reap */
};

struct zy_reply {
    pid_t pid;  /* ZY_SPAWN: the decoder, or -errno */
    int status; /* ZY_REAP: as waitpid gives it, or -1 when the decoder was not the zygote's */
};

static pthread_mutex_t zy_lock = PTHREAD_MUTEX_INITIALIZER;
static int zy_sock = -1; /* the server's end; -1 while there is no zygote */
static pid_t zy_pid;

static void zygote_main(int sock)
{
    pool_plain_signals();
    /* Ignored, it would reap decoders itself, and ZY_REAP could not say how one ended. */
    signal(SIGCHLD, SIG_DFL);
    pool_close_others(sock, sock);
    for (;;) {
        struct zy_msg m;
        struct zy_reply r = {0, 0};
        int fds[2];
        ssize_t n = pool_recv(sock, &m, sizeof m, fds, 2);
        if (n <= 0)
            _exit(0); /* the server is gone; its decoders see their own sockets close */
        if ((size_t)n != sizeof m || (m.op == ZY_SPAWN) != (fds[1] >= 0))
            _exit(2);
        if (m.op == ZY_SPAWN) {
            pid_t pid = fork();
            if (pid == 0)
                pool_decoder_main(fds[0], fds[1]);
            r.pid = pid < 0 ? -errno : pid;
            close(fds[0]);
            close(fds[1]);
        } else {
            int st = 0;
            pid_t w;
            while ((w = waitpid(m.pid, &st, 0)) < 0 && errno == EINTR)
                ;
            r.pid = m.pid;
            r.status = w == m.pid ? st : -1;
        }
        if (send(sock, &r, sizeof r, MSG_NOSIGNAL) != (ssize_t)sizeof r)
            _exit(0);
    }
}

/* Under zy_lock. */
static int zygote_start(struct ts_err *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return ts_fail(err, TS_EBUSY, "jp2: cannot make the zygote's socket: %s", strerror(errno));
    pid_t pid = fork();
    if (pid == 0) {
        zygote_main(sv[1]);
        _exit(0);
    }
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        return ts_fail(err, TS_EBUSY, "jp2: cannot start the decoders' zygote: %s",
                       strerror(errno));
    }
    zy_sock = sv[0];
    zy_pid = pid;
    return TS_OK;
}

/* Under zy_lock: ends a zygote that stopped answering (its decoders live on, orphans). */
static void zygote_stop(void)
{
    if (zy_sock < 0)
        return;
    close(zy_sock);
    kill(zy_pid, SIGKILL);
    while (waitpid(zy_pid, NULL, 0) < 0 && errno == EINTR)
        ;
    zy_sock = -1;
    zy_pid = 0;
}

/* One request and its answer. A spawn sent to a zygote that died is sent once more to a new
 * one; a reap is not (the decoder was the old zygote's). */
static bool zygote_call(const struct zy_msg *m, const int *fds, int nfds, struct zy_reply *r,
                        struct ts_err *err)
{
    bool ok = false, started = true;
    pthread_mutex_lock(&zy_lock);
    for (int attempt = 0; !ok && attempt < 2; attempt++) {
        if (zy_sock < 0 && (m->op != ZY_SPAWN || !(started = zygote_start(err) == TS_OK)))
            break;
        ssize_t n = -1;
        if (pool_send_fds(zy_sock, m, sizeof *m, fds, nfds))
            while ((n = recv(zy_sock, r, sizeof *r, 0)) < 0 && errno == EINTR)
                ;
        ok = n == (ssize_t)sizeof *r;
        if (!ok) {
            zygote_stop();
            if (m->op != ZY_SPAWN)
                break;
        }
    }
    pthread_mutex_unlock(&zy_lock);
    if (!ok && m->op == ZY_SPAWN && started)
        ts_fail(err, TS_EBUSY, "jp2: the decoders' zygote does not answer");
    return ok;
}

/* ---- the server side ---- */

/* Starts the decoder of a slot the calling thread holds. */
static int pool_fork(struct pool_dec *d, struct ts_err *err)
{
    int sv[2];
    struct zy_msg m = {ZY_SPAWN, 0};
    struct zy_reply r;
    d->mem = memfd_create("tessera-jp2", MFD_CLOEXEC);
    if (d->mem < 0)
        return ts_fail(err, TS_EBUSY, "jp2: cannot make decoder memory: %s", strerror(errno));
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        close(d->mem);
        return ts_fail(err, TS_EBUSY, "jp2: cannot make a decoder socket: %s", strerror(errno));
    }
    int fds[2] = {sv[1], d->mem};
    bool ok = zygote_call(&m, fds, 2, &r, err);
    close(sv[1]);
    if (!ok || r.pid <= 0) {
        close(sv[0]);
        close(d->mem);
        return ok ? ts_fail(err, TS_EBUSY, "jp2: cannot start a decoder process: %s",
                            strerror(-r.pid))
                  : TS_EBUSY;
    }
    d->pid = r.pid;
    d->sock = sv[0];
    d->map = NULL;
    d->map_size = 0;
    return TS_OK;
}

int ts_jp2pool_start(struct ts_err *err)
{
    pthread_mutex_lock(&zy_lock);
    int rc = zy_sock < 0 ? zygote_start(err) : TS_OK;
    pthread_mutex_unlock(&zy_lock);
    return rc;
}

pid_t ts_jp2pool_zygote(void)
{
    pthread_mutex_lock(&zy_lock);
    pid_t pid = zy_pid;
    pthread_mutex_unlock(&zy_lock);
    return pid;
}

/* Kills a slot's decoder (if it still runs) and has the zygote reap it; *status gets how it
 * ended (0 when that is not known: its zygote was replaced). */
static void pool_end(struct pool_dec *d, int *status)
{
    struct zy_msg m = {ZY_REAP, d->pid};
    struct zy_reply r = {0, 0};
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGKILL);
    close(d->sock);
    if (!zygote_call(&m, NULL, 0, &r, NULL) || r.status < 0)
        r.status = 0;
    if (d->map)
        munmap(d->map, d->map_size);
    close(d->mem);
    d->pid = 0;
    d->map = NULL;
    d->map_size = 0;
    if (status)
        *status = r.status;
}

/* Takes an idle slot, waiting (while cancel allows) when all are busy. */
static int pool_acquire(struct ts_cancel *cancel, struct pool_dec **out, int *busy,
                        struct ts_err *err)
{
    int rc = TS_OK;
    pthread_mutex_lock(&pool_lock);
    if (pool_size == 0) {
        /* Two at least: while one hands its pixels over, the other keeps a lone CPU busy. */
        unsigned cpus = ts_cpu_count();
        pool_size = cpus < 2 ? 2 : cpus > POOL_MAX ? POOL_MAX : (int)cpus;
    }
    for (;;) {
        for (int i = 0; i < pool_size; i++)
            if (!pool_decs[i].busy) {
                pool_decs[i].busy = true;
                *busy = ++pool_busy;
                *out = &pool_decs[i];
                pthread_mutex_unlock(&pool_lock);
                return TS_OK;
            }
        if ((rc = ts_cancel_check(cancel, err)) != TS_OK)
            break;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += POOL_POLL_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&pool_idle, &pool_lock, &until);
    }
    pthread_mutex_unlock(&pool_lock);
    return rc;
}

static void pool_release(struct pool_dec *d)
{
    pthread_mutex_lock(&pool_lock);
    d->busy = false;
    pool_busy--;
    pthread_cond_signal(&pool_idle);
    pthread_mutex_unlock(&pool_lock);
}

/* Sizes the shared memory for need bytes, giving back a large mapping the last decode left. */
static int pool_fit_map(struct pool_dec *d, size_t need, struct ts_err *err)
{
    size_t want = need < 4096 ? 4096 : need;
    if (d->map && want <= d->map_size && (d->map_size <= POOL_KEEP_BYTES || want == d->map_size))
        return TS_OK;
    if (d->map)
        munmap(d->map, d->map_size);
    d->map = NULL;
    d->map_size = 0;
    if (ftruncate(d->mem, (off_t)want) != 0)
        return ts_fail(err, TS_ENOMEM, "jp2: cannot size decoder memory: %s", strerror(errno));
    void *m = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_SHARED, d->mem, 0);
    if (m == MAP_FAILED)
        return ts_fail(err, TS_ENOMEM, "jp2: cannot map decoder memory");
    d->map = m;
    d->map_size = want;
    return TS_OK;
}

static bool pool_send(struct pool_dec *d, const struct pool_msg *m, int fd)
{
    return pool_send_fds(d->sock, m, sizeof *m, &fd, 1);
}

/* Waits for the decoder's answer, watching cancel. TS_OK with *reply filled, the reason when
 * canceled (the decoder is then killed), or TS_ECODEC when the decoder died. */
static int pool_wait(struct pool_dec *d, struct ts_cancel *cancel, struct pool_reply *reply,
                     struct ts_err *err)
{
    struct pollfd pfd = {.fd = d->sock, .events = POLLIN};
    int rc, status = 0;
    for (;;) {
        int n = poll(&pfd, 1, POOL_POLL_MS);
        if (n > 0) {
            ssize_t got;
            while ((got = recv(d->sock, reply, sizeof *reply, 0)) < 0 && errno == EINTR)
                ;
            if (got == (ssize_t)sizeof *reply)
                return TS_OK;
            break; /* EOF: the decoder died (an OpenJPEG assert, the clock) */
        }
        if (n < 0 && errno != EINTR)
            break;
        if ((rc = ts_cancel_check(cancel, err)) != TS_OK) {
            pool_end(d, NULL);
            return rc;
        }
    }
    pool_end(d, &status);
    return ts_fail(err, TS_ECODEC, "jp2: the decoder %s on this file",
                   WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ? "timed out" : "crashed");
}

int ts_jp2pool_run(ts_jp2pool_fn fn, int fd, const struct ts_jp2pool_job *job,
                   struct ts_cancel *cancel, struct ts_image *out, struct ts_err *err)
{
    struct pool_dec *d;
    struct pool_msg m;
    struct pool_reply reply;
    size_t row = (size_t)out->width * out->channels, need;
    int busy, rc;
    if (!ts_mul_size(row, out->height, &need))
        return ts_fail(err, TS_ETOOLARGE, "jp2: decode buffer too large");
    rc = pool_acquire(cancel, &d, &busy, err);
    if (rc != TS_OK)
        return rc;
    memset(&m, 0, sizeof m);
    m.fn = fn;
    m.job = *job;
    /* Threads help a lone decode; when others run too the cores are taken already. */
    if (busy > 1)
        m.job.threads = 1;
    m.w = out->width;
    m.h = out->height;
    m.channels = out->channels;
    /* A decoder that died idle (killed from outside) is found when the send fails: that is not
     * this file's doing, so it is replaced and the send tried once more. */
    for (int attempt = 0; attempt < 2; attempt++) {
        if (d->pid <= 0 && (rc = pool_fork(d, err)) != TS_OK)
            break;
        if ((rc = pool_fit_map(d, need, err)) != TS_OK)
            break;
        m.map_size = d->map_size;
        if (pool_send(d, &m, fd)) {
            rc = TS_OK;
            break;
        }
        pool_end(d, NULL);
        rc = ts_fail(err, TS_EBUSY, "jp2: cannot reach a decoder");
    }
    if (rc == TS_OK)
        rc = pool_wait(d, cancel, &reply, err);
    if (rc == TS_OK) {
        rc = reply.rc;
        if (rc == TS_OK)
            for (uint32_t y = 0; y < out->height; y++)
                memcpy(ts_image_row(out, y), d->map + (size_t)y * row, row);
        else if (err)
            *err = reply.err;
    }
    /* A dead or killed decoder is replaced now, so the next request does not pay the fork. */
    if (d->pid <= 0)
        pool_fork(d, NULL);
    else if (d->map_size > POOL_KEEP_BYTES)
        pool_fit_map(d, 0, NULL);
    pool_release(d);
    return rc;
}

int ts_jp2pool_pids(pid_t *pids, int max)
{
    int n = 0;
    pthread_mutex_lock(&pool_lock);
    for (int i = 0; i < pool_size; i++)
        if (pool_decs[i].pid > 0) {
            if (n < max)
                pids[n] = pool_decs[i].pid;
            n++;
        }
    pthread_mutex_unlock(&pool_lock);
    return n;
}
