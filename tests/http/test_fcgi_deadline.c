/* The FastCGI front end under connections that send nothing, or send slowly: the others are
 * served, each connection gets its whole request in within --header-timeout, SIGTERM ends the
 * server; and the unix socket's mode. A small FastCGI client of its own talks to the real
 * binary, over loopback only. */
#include "harness.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#define WORK TESSERA_TEST_WORK
#define INFO "/iiif/3/grid.tif/info.json"

/* FastCGI 1.0 record types and the one flag the tests use. */
#define FCGI_BEGIN_REQUEST 1
#define FCGI_END_REQUEST 3
#define FCGI_PARAMS 4
#define FCGI_STDIN 5
#define FCGI_STDOUT 6
#define FCGI_KEEP_CONN 1

static char grid_root[4096];

/* The server of the running test; a failed assertion leaves it to the teardown. */
static struct tu_server server = {.pid = -1};

static int stop_leftover(void **state)
{
    (void)state;
    if (server.pid > 0)
        tu_server_stop(&server);
    return 0;
}

static void need_grid_root(void)
{
    if (grid_root[0])
        return;
    int n = snprintf(grid_root, sizeof grid_root, "%s/grid", WORK);
    assert_true(n > 0 && (size_t)n < sizeof grid_root);
    assert_int_equal(tu_mkdirs(grid_root), 0);
    assert_int_equal(tu_make_http_root(grid_root), 0);
}

/* Starts tessera --fcgi 127.0.0.1:PORT with extra arguments; returns the port. */
static int start_tcp(struct tu_server *s, const char *const *extra)
{
    need_grid_root();
    int port = tu_free_port();
    assert_true(port > 0);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    assert_int_equal(tu_fcgi_server_start(s, TESSERA_BIN, grid_root, addr, extra), 0);
    return port;
}

static int connect_tcp(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static int connect_unix(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(path) < sizeof sa.sun_path);
    strcpy(sa.sun_path, path);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void put_header(uint8_t *h, int type, size_t len)
{
    h[0] = 1;
    h[1] = (uint8_t)type;
    h[2] = 0;
    h[3] = 1; /* request id 1 */
    h[4] = (uint8_t)(len >> 8);
    h[5] = (uint8_t)len;
    h[6] = 0;
    h[7] = 0;
}

static size_t put_param(uint8_t *p, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    assert_true(nl < 128 && vl < 128);
    p[0] = (uint8_t)nl;
    p[1] = (uint8_t)vl;
    memcpy(p + 2, name, nl);
    memcpy(p + 2 + nl, value, vl);
    return 2 + nl + vl;
}

/* A whole GET request as nginx sends it: BEGIN_REQUEST, PARAMS, empty PARAMS, empty STDIN. */
static size_t build_request(uint8_t *out, const char *uri, bool keep)
{
    size_t o = 0;
    put_header(out, FCGI_BEGIN_REQUEST, 8);
    o += 8;
    const uint8_t begin[8] = {0, 1 /* responder */, keep ? FCGI_KEEP_CONN : 0, 0, 0, 0, 0, 0};
    memcpy(out + o, begin, sizeof begin);
    o += 8;
    uint8_t params[1024];
    size_t pl = 0;
    pl += put_param(params + pl, "REQUEST_METHOD", "GET");
    pl += put_param(params + pl, "REQUEST_URI", uri);
    pl += put_param(params + pl, "QUERY_STRING", "");
    pl += put_param(params + pl, "SERVER_PROTOCOL", "HTTP/1.1");
    pl += put_param(params + pl, "HTTP_HOST", "127.0.0.1");
    pl += put_param(params + pl, "REMOTE_ADDR", "127.0.0.1");
    put_header(out + o, FCGI_PARAMS, pl);
    o += 8;
    memcpy(out + o, params, pl);
    o += pl;
    put_header(out + o, FCGI_PARAMS, 0);
    o += 8;
    put_header(out + o, FCGI_STDIN, 0);
    o += 8;
    return o;
}

/* Reads exactly n bytes before the deadline; 0 on success. */
static int read_full(int fd, uint8_t *buf, size_t n, double deadline)
{
    size_t got = 0;
    while (got < n) {
        double left = deadline - tu_now_ms();
        if (left <= 0)
            return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)left + 1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return -1;
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

struct answer {
    int status;           /* from the Status: line, 0 when none */
    struct ts_buf stdout; /* header block and body, NUL-terminated */
    const char *body;     /* inside stdout, after the blank line */
};

static void answer_free(struct answer *a)
{
    ts_buf_free(&a->stdout);
    memset(a, 0, sizeof *a);
}

/* Sends one request on fd and reads STDOUT records until END_REQUEST, within timeout_ms. */
static int exchange(int fd, const char *uri, bool keep, double timeout_ms, struct answer *a)
{
    memset(a, 0, sizeof *a);
    uint8_t req[2048];
    size_t n = build_request(req, uri, keep);
    if (send(fd, req, n, MSG_NOSIGNAL) != (ssize_t)n)
        return -1;
    double deadline = tu_now_ms() + timeout_ms;
    for (;;) {
        uint8_t h[8];
        if (read_full(fd, h, 8, deadline) != 0)
            return -1;
        size_t len = ((size_t)h[4] << 8) | h[5];
        size_t total = len + h[6];
        uint8_t content[65536 + 256];
        if (read_full(fd, content, total, deadline) != 0)
            return -1;
        if (h[1] == FCGI_STDOUT && len && ts_buf_append(&a->stdout, content, len) != TS_OK)
            return -1;
        if (h[1] == FCGI_END_REQUEST)
            break;
    }
    if (ts_buf_append(&a->stdout, "", 1) != TS_OK)
        return -1;
    const char *text = (const char *)a->stdout.data;
    const char *status = strstr(text, "Status: ");
    if (status)
        a->status = atoi(status + 8);
    const char *blank = strstr(text, "\r\n\r\n");
    a->body = blank ? blank + 4 : "";
    return 0;
}

/* One request on a connection of its own, answered within timeout_ms: info.json, 200. */
static void expect_info(int fd, double timeout_ms)
{
    double t0 = tu_now_ms();
    struct answer a;
    assert_int_equal(exchange(fd, INFO, false, timeout_ms, &a), 0);
    double took = tu_now_ms() - t0;
    if (took > timeout_ms)
        fail_msg("info.json took %.0f ms", took);
    assert_int_equal(a.status, 200);
    assert_non_null(strstr(a.body, "\"width\""));
    answer_free(&a);
}

static void expect_info_tcp(int port, double timeout_ms)
{
    int fd = connect_tcp(port);
    expect_info(fd, timeout_ms);
    close(fd);
}

/* Milliseconds until the server closes fd (EOF or reset), or -1 past timeout_ms. */
static double wait_closed(int fd, double timeout_ms)
{
    double t0 = tu_now_ms();
    for (;;) {
        double left = t0 + timeout_ms - tu_now_ms();
        if (left <= 0)
            return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)left + 1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return -1;
        uint8_t buf[256];
        ssize_t r = read(fd, buf, sizeof buf);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return tu_now_ms() - t0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

static void test_idle_connections_do_not_hold_up_others(void **state)
{
    (void)state;
    struct tu_server *s = &server;
    /* Fewer threads than idle connections: a design that gives each connection a worker while
     * it reads would stall here for the 10 s default header timeout. */
    const char *const extra[] = {"--threads", "2", NULL};
    int port = start_tcp(s, extra);

    int idle[6];
    for (int i = 0; i < 3; i++)
        idle[i] = connect_tcp(port);
    /* Three more that sent part of a BEGIN_REQUEST: readable, but never complete. */
    uint8_t req[2048];
    build_request(req, INFO, false);
    for (int i = 3; i < 6; i++) {
        idle[i] = connect_tcp(port);
        assert_int_equal(send(idle[i], req, 5, MSG_NOSIGNAL), 5);
    }
    tu_sleep_ms(200); /* the server has accepted them all by now */

    for (int i = 0; i < 10; i++)
        expect_info_tcp(port, 1000);

    /* Still open: they are within the 10 s default. */
    for (int i = 0; i < 6; i++) {
        struct pollfd pfd = {.fd = idle[i], .events = POLLIN};
        assert_int_equal(poll(&pfd, 1, 0), 0);
        close(idle[i]);
    }
    assert_int_equal(tu_server_stop(s), 0);
}

static void test_trickling_request_is_closed_at_the_header_timeout(void **state)
{
    (void)state;
    struct tu_server *s = &server;
    const char *const extra[] = {"--threads", "2", "--header-timeout", "2", NULL};
    int port = start_tcp(s, extra);

    uint8_t req[2048];
    build_request(req, INFO, false);
    int slow = connect_tcp(port);
    double t0 = tu_now_ms();
    double closed_at = -1;
    int served = 0;
    /* One byte every 500 ms: the 16-byte BEGIN_REQUEST alone would take 8 s. */
    for (size_t i = 0; i < 16 && closed_at < 0; i++) {
        if (send(slow, req + i, 1, MSG_NOSIGNAL) != 1) {
            closed_at = tu_now_ms() - t0;
            break;
        }
        double tick = t0 + (double)(i + 1) * 500;
        expect_info_tcp(port, 1000);
        served++;
        double left = tick - tu_now_ms();
        if (left > 0) {
            double w = wait_closed(slow, left);
            if (w >= 0)
                closed_at = tu_now_ms() - t0;
        }
    }
    if (closed_at < 0)
        fail_msg("the trickling connection was still open after %.0f ms", tu_now_ms() - t0);
    print_message("trickling connection closed after %.0f ms (header timeout 2 s), %d requests "
                  "served meanwhile\n",
                  closed_at, served);
    /* The deadline holds from the connection on, however often a byte arrives. */
    assert_true(closed_at >= 1500);
    assert_true(closed_at <= 3000);
    assert_true(served >= 3);
    close(slow);
    expect_info_tcp(port, 1000);
    assert_int_equal(tu_server_stop(s), 0);
}

static void test_kept_connection_serves_again_then_gets_a_deadline(void **state)
{
    (void)state;
    struct tu_server *s = &server;
    const char *const extra[] = {"--threads", "2", "--header-timeout", "2", NULL};
    int port = start_tcp(s, extra);

    int fd = connect_tcp(port);
    for (int i = 0; i < 3; i++) {
        struct answer a;
        assert_int_equal(exchange(fd, INFO, true, 1000, &a), 0);
        assert_int_equal(a.status, 200);
        assert_non_null(strstr(a.body, "\"width\""));
        answer_free(&a);
    }
    /* The next request on the kept connection never comes: closed at the deadline. */
    double w = wait_closed(fd, 4000);
    print_message("idle kept connection closed after %.0f ms (header timeout 2 s)\n", w);
    assert_true(w >= 1500 && w <= 3000);
    close(fd);
    assert_int_equal(tu_server_stop(s), 0);
}

/* Runs tessera with args and expects it to refuse to start: exit status 1 within 10 s, with
 * needle in its stderr. */
static void expect_refusal(const char *const *args, const char *needle)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    const char *argv[32];
    size_t argc = 0;
    argv[argc++] = TESSERA_BIN;
    for (size_t i = 0; args[i]; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDOUT_FILENO);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    char err[4096] = "";
    size_t got = 0;
    double deadline = tu_now_ms() + 10000;
    int st = 0;
    for (;;) {
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        if (poll(&pfd, 1, 100) > 0) {
            ssize_t r = read(fds[0], err + got, sizeof err - 1 - got);
            if (r > 0)
                got += (size_t)r;
        }
        if (waitpid(pid, &st, WNOHANG) == pid)
            break;
        if (tu_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fail_msg("tessera did not refuse to start within 10 s");
        }
    }
    ssize_t r;
    while (got < sizeof err - 1 && (r = read(fds[0], err + got, sizeof err - 1 - got)) > 0)
        got += (size_t)r;
    err[got] = '\0';
    close(fds[0]);
    print_message("refused: %s", err);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);
    assert_non_null(strstr(err, needle));
}

static void test_unix_socket_mode(void **state)
{
    (void)state;
    need_grid_root();
    char dir[4096], sock[4096];
    snprintf(dir, sizeof dir, "%s/sock", WORK);
    assert_int_equal(tu_mkdirs(dir), 0);
    int n = snprintf(sock, sizeof sock, "%s/sock/s.sock", WORK);
    assert_true(n > 0 && (size_t)n < sizeof(((struct sockaddr_un *)0)->sun_path));

    struct tu_server *s = &server;
    struct stat st;
    assert_int_equal(tu_fcgi_server_start(s, TESSERA_BIN, grid_root, sock, NULL), 0);
    assert_int_equal(stat(sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0660);
    int fd = connect_unix(sock);
    expect_info(fd, 2000);
    close(fd);
    assert_int_equal(tu_server_stop(s), 0);
    assert_int_not_equal(stat(sock, &st), 0); /* removed on the way out */

    const char *const mode0600[] = {"--socket-mode", "0600", NULL};
    assert_int_equal(tu_fcgi_server_start(s, TESSERA_BIN, grid_root, sock, mode0600), 0);
    assert_int_equal(stat(sock, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(tu_server_stop(s), 0);

    const char *const bad[][7] = {
        {"--root", grid_root, "--fcgi", sock, "--socket-mode", "9x", NULL},
        {"--root", grid_root, "--fcgi", sock, "--socket-mode", "1777", NULL},
        {"--root", grid_root, "--fcgi", sock, "--socket-mode", "", NULL},
        {"--root", grid_root, "--fcgi", sock, "--socket-mode", "0o660", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_refusal(bad[i], "--socket-mode");
    assert_int_not_equal(stat(sock, &st), 0); /* refused before creating it */
}

static void test_sigterm_with_an_idle_connection_exits_promptly(void **state)
{
    (void)state;
    struct tu_server *s = &server;
    int port = start_tcp(s, NULL);
    int idle = connect_tcp(port);
    int partial = connect_tcp(port);
    assert_int_equal(send(partial, "\1\1\0", 3, MSG_NOSIGNAL), 3);
    expect_info_tcp(port, 1000);
    tu_sleep_ms(100);
    double t0 = tu_now_ms();
    assert_int_equal(tu_server_stop(s), 0); /* exit status 0 */
    double took = tu_now_ms() - t0;
    print_message("stopped in %.0f ms with an idle connection open\n", took);
    assert_true(took < 5000);
    assert_true(wait_closed(idle, 1000) >= 0);
    close(idle);
    close(partial);
}

static void test_web_server_addrs_are_still_honoured(void **state)
{
    (void)state;
    struct tu_server *s = &server;
    /* libfcgi's own accept checked this list; the server's accept must too. */
    setenv("FCGI_WEB_SERVER_ADDRS", "192.0.2.1,192.0.2.2", 1);
    int port = start_tcp(s, NULL);
    unsetenv("FCGI_WEB_SERVER_ADDRS");
    int fd = connect_tcp(port);
    struct answer a;
    assert_int_not_equal(exchange(fd, INFO, false, 2000, &a), 0);
    answer_free(&a);
    close(fd);
    assert_int_equal(tu_server_stop(s), 0);

    setenv("FCGI_WEB_SERVER_ADDRS", "192.0.2.1,127.0.0.1", 1);
    port = start_tcp(s, NULL);
    unsetenv("FCGI_WEB_SERVER_ADDRS");
    expect_info_tcp(port, 1000);
    assert_int_equal(tu_server_stop(s), 0);
}

struct render {
    int port;
    struct answer a;
    int rc;
    double done_at;
};

static void *render_main(void *arg)
{
    struct render *r = arg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)r->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    r->rc = -1;
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
        r->rc = exchange(fd, "/iiif/3/grid.tif/full/^1800,/0/default.png", false, 60000, &r->a);
    r->done_at = tu_now_ms();
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void test_sigterm_lets_an_inflight_render_finish(void **state)
{
    (void)state;
    struct tu_server *s = &server;
    struct render r = {.port = start_tcp(s, NULL)};
    /* The signal must land while the render runs, however fast this machine renders: time a
     * render of nearly the same size first (another URL, so no cache answers it), then signal
     * a third of that time into the real one. */
    int fd = connect_tcp(r.port);
    struct answer probe;
    double probe_at = tu_now_ms();
    assert_int_equal(
        exchange(fd, "/iiif/3/grid.tif/full/^1799,/0/default.png", false, 60000, &probe), 0);
    double probe_ms = tu_now_ms() - probe_at;
    answer_free(&probe);
    close(fd);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, render_main, &r), 0);
    tu_sleep_ms((long)(probe_ms / 3) + 1);
    double term_at = tu_now_ms();
    assert_int_equal(kill(s->pid, SIGTERM), 0);
    pthread_join(t, NULL);
    print_message("render answered %.0f ms after SIGTERM\n", r.done_at - term_at);
    assert_int_equal(r.rc, 0);
    assert_true(r.done_at > term_at);
    assert_int_equal(r.a.status, 200);
    size_t head = (size_t)(r.a.body - (const char *)r.a.stdout.data);
    struct ts_image img;
    assert_int_equal(tu_decode(r.a.stdout.data + head, r.a.stdout.len - 1 - head, &img), 0);
    assert_int_equal(img.width, 1800);
    assert_int_equal(img.height, 1800);
    ts_image_free(&img);
    answer_free(&r.a);
    assert_int_equal(tu_server_stop(s), 0);
}

/* The listen backlog the kernel reports for a loopback TCP port (ss shows it as Send-Q), or
 * -1 when ss is not there to ask. */
static int listen_backlog(int port)
{
    char cmd[128], line[256];
    snprintf(cmd, sizeof cmd, "ss -Hltn 'sport = :%d' 2>/dev/null", port);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    int backlog = -1;
    char state[32];
    long recvq, sendq;
    if (fgets(line, sizeof line, p) && sscanf(line, "%31s %ld %ld", state, &recvq, &sendq) == 3)
        backlog = (int)sendq;
    pclose(p);
    return backlog;
}

/* Debian's iipsrv.service starts "iipsrv.fcgi --bind 0.0.0.0:9000 --backlog 1024": --bind is
 * the socket served (it wins over the harness's own --fcgi, given first), --backlog its queue. */
static void test_iipsrv_bind_and_backlog_open_the_socket(void **state)
{
    (void)state;
    struct tu_server *s = &server;
    need_grid_root();
    int port = tu_free_port();
    assert_true(port > 0);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    const char *const extra[] = {"--bind", addr, "--backlog", "7", NULL};
    assert_int_equal(
        tu_fcgi_server_start(s, TESSERA_BIN, grid_root, "/nonexistent/unused.sock", extra), 0);
    expect_info_tcp(port, 2000);
    int backlog = listen_backlog(port);
    if (backlog >= 0)
        assert_int_equal(backlog, 7);
    assert_int_equal(tu_server_stop(s), 0);
}

int main(void)
{
    /* The server inherits this: a leak at exit turns into a non-zero status the harness sees. */
    const char *old = getenv("ASAN_OPTIONS");
    char opts[1024];
    snprintf(opts, sizeof opts, "%s%sdetect_leaks=1", old ? old : "", old && *old ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_idle_connections_do_not_hold_up_others, stop_leftover),
        cmocka_unit_test_teardown(test_trickling_request_is_closed_at_the_header_timeout,
                                  stop_leftover),
        cmocka_unit_test_teardown(test_kept_connection_serves_again_then_gets_a_deadline,
                                  stop_leftover),
        cmocka_unit_test_teardown(test_unix_socket_mode, stop_leftover),
        cmocka_unit_test_teardown(test_iipsrv_bind_and_backlog_open_the_socket, stop_leftover),
        cmocka_unit_test_teardown(test_web_server_addrs_are_still_honoured, stop_leftover),
        cmocka_unit_test_teardown(test_sigterm_lets_an_inflight_render_finish, stop_leftover),
        cmocka_unit_test_teardown(test_sigterm_with_an_idle_connection_exits_promptly,
                                  stop_leftover),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
