/* Slowloris against the real server: requests that trickle in are closed at the header
 * deadline however steadily they trickle, and clients from other addresses keep being served
 * while they fill the connection limits. Every client is on loopback: all of 127/8 is local on
 * Linux, so binding to 127.0.0.N before connecting gives each attacker its own address. */
#include "harness.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#define WORK TESSERA_TEST_WORK
#define GRID_TILE "/iiif/3/grid.tif/0,0,256,256/256,/0/default.jpg"
#define TRICKLE_HEAD "GET /iiif/3/grid.tif/info.json HTTP/1.1\r\nHost: x\r\nX-a: "

static char root[4096];

static void start(struct tu_server *s, const char *const *extra)
{
    if (!root[0]) {
        int n = snprintf(root, sizeof root, "%s/root", WORK);
        assert_true(n > 0 && (size_t)n < sizeof root);
        assert_int_equal(tu_mkdirs(root), 0);
        assert_int_equal(tu_make_http_root(root), 0);
    }
    assert_int_equal(tu_server_start(s, TESSERA_BIN, root, extra), 0);
}

static int connect_from(const char *source, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in from = {.sin_family = AF_INET};
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, source, &from.sin_addr);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&from, sizeof from) != 0 ||
        connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_all(int fd, const char *text)
{
    size_t len = strlen(text);
    assert_int_equal(send(fd, text, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* True once the server closed (end of file or reset); never blocks. */
static bool peer_closed(int fd)
{
    char buf[512];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0)
            return true;
        if (n < 0)
            return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
    }
}

/* Reads one response with a Content-Length body; returns its status, or -1 on close, error or
 * timeout. */
static int read_response(int fd, int timeout_ms)
{
    char buf[16384];
    size_t len = 0;
    double deadline = tu_now_ms() + timeout_ms;
    long need = -1;
    for (;;) {
        buf[len] = '\0';
        char *end = need < 0 ? strstr(buf, "\r\n\r\n") : NULL;
        if (end) {
            long body = -1;
            for (char *p = buf; p < end; p++)
                if (!strncasecmp(p, "\r\nContent-Length:", 17))
                    body = strtol(p + 17, NULL, 10);
            if (body < 0)
                return -1;
            need = (end + 4 - buf) + body;
        }
        if (need >= 0 && (long)len >= need)
            return atoi(buf + 9);
        int left = (int)(deadline - tu_now_ms());
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, left) <= 0 || len >= sizeof buf - 1)
            return -1;
        ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (n <= 0)
            return -1;
        len += (size_t)n;
    }
}

static double timed_tile(const struct tu_server *s, long *status)
{
    struct tu_response r;
    double t0 = tu_now_ms();
    int rc = tu_get(s, GRID_TILE, &r);
    double dt = tu_now_ms() - t0;
    *status = rc == 0 ? r.status : -1;
    tu_response_free(&r);
    return dt;
}

#define ATTACKERS 6
#define PER_ATTACKER 16
#define TRICKLES (ATTACKERS * PER_ATTACKER)

struct trickle {
    int fd;
    double opened, closed;
};

/* 96 trickling connections from six addresses against a limit of 64: the newest arrivals evict
 * the oldest waiters, the deadline closes the rest, and tiles from a seventh address are
 * answered all along. */
static void test_trickles_over_the_limit_do_not_starve_another_address(void **state)
{
    (void)state;
    static const char *const extra[] = {
        "--max-connections", "64", "--per-ip-connections", "16", "--header-timeout", "3", NULL};
    struct tu_server s;
    start(&s, extra);
    long status;
    timed_tile(&s, &status); /* warm the reader so timings measure waiting only */
    assert_int_equal(status, 200);

    struct trickle t[TRICKLES];
    for (int i = 0; i < TRICKLES; i++) {
        char source[32];
        snprintf(source, sizeof source, "127.0.0.%d", 2 + i / PER_ATTACKER);
        t[i].fd = connect_from(source, s.port);
        assert_true(t[i].fd >= 0);
        t[i].opened = tu_now_ms();
        t[i].closed = 0;
        send_all(t[i].fd, TRICKLE_HEAD);
    }

    int open = TRICKLES, tiles = 0;
    double worst = 0, begin = tu_now_ms();
    /* One byte every 500 ms to every trickle still open, tiles in between, until the server
     * has closed them all or well past the deadline. */
    while (open > 0 && tu_now_ms() - begin < 6000) {
        double tick = tu_now_ms();
        for (int i = 0; i < TRICKLES; i++) {
            if (t[i].closed)
                continue;
            if (peer_closed(t[i].fd)) {
                t[i].closed = tu_now_ms();
                open--;
                continue;
            }
            send(t[i].fd, "a", 1, MSG_NOSIGNAL);
        }
        while (tu_now_ms() - tick < 500) {
            double dt = timed_tile(&s, &status);
            tiles++;
            if (status != 200 || dt > 1000)
                fail_msg("tile %d while trickling: status %ld after %.0f ms", tiles, status, dt);
            worst = dt > worst ? dt : worst;
            for (int i = 0; i < TRICKLES; i++)
                if (!t[i].closed && peer_closed(t[i].fd)) {
                    t[i].closed = tu_now_ms();
                    open--;
                }
            tu_sleep_ms(50);
        }
    }
    int early = 0;
    double latest = 0;
    for (int i = 0; i < TRICKLES; i++) {
        close(t[i].fd);
        if (!t[i].closed)
            continue;
        double life = t[i].closed - t[i].opened;
        early += life < 2000;
        latest = life > latest ? life : latest;
    }
    print_message("trickles: %d of %d still open; %d closed within 2 s (evicted), the longest "
                  "lived %.0f ms; %d tiles, slowest %.0f ms\n",
                  open, TRICKLES, early, latest, tiles, worst);
    assert_int_equal(open, 0);
    /* 32 over the limit, and one more for each tile connection that arrived while full. */
    assert_true(early >= TRICKLES - 64);
    assert_true(latest <= 3000 + 1000);
    assert_true(tiles >= 10);
    assert_true(tu_server_alive(&s));
    assert_int_equal(tu_server_stop(&s), 0);
}

/* One address at its cap is refused more connections; another address, at the same time,
 * holds as many and gets answers on all of them. */
static void test_one_address_cannot_take_another_addresses_share(void **state)
{
    (void)state;
    static const char *const extra[] = {
        "--max-connections", "64", "--per-ip-connections", "8", "--header-timeout", "3", NULL};
    struct tu_server s;
    start(&s, extra);

    enum { OVER = 12, CAP = 8 };
    int hog[OVER];
    for (int i = 0; i < OVER; i++) {
        hog[i] = connect_from("127.0.0.2", s.port);
        assert_true(hog[i] >= 0);
        send(hog[i], TRICKLE_HEAD, strlen(TRICKLE_HEAD), MSG_NOSIGNAL);
    }
    int other[CAP];
    for (int i = 0; i < CAP; i++) {
        other[i] = connect_from("127.0.0.3", s.port);
        assert_true(other[i] >= 0);
    }
    tu_sleep_ms(500);
    int refused = 0;
    for (int i = 0; i < OVER; i++)
        refused += peer_closed(hog[i]);
    for (int i = 0; i < CAP; i++) {
        send_all(other[i], "GET /iiif/3/grid.tif/info.json HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_int_equal(read_response(other[i], 2000), 200);
    }
    long status;
    double dt = timed_tile(&s, &status);
    print_message("per address: %d of %d refused to the hog, %d of %d answered to the other; "
                  "a tile in %.0f ms\n",
                  refused, OVER, CAP, CAP, dt);
    assert_int_equal(refused, OVER - CAP);
    assert_int_equal(status, 200);
    for (int i = 0; i < OVER; i++)
        close(hog[i]);
    for (int i = 0; i < CAP; i++)
        close(other[i]);
    assert_int_equal(tu_server_stop(&s), 0);
}

/* The deadline runs per request: a keep-alive connection that asks again in time outlives it,
 * and one that falls silent after an answer is closed header_timeout later. */
static void test_the_deadline_restarts_after_each_response(void **state)
{
    (void)state;
    static const char *const extra[] = {"--header-timeout", "2", NULL};
    struct tu_server s;
    start(&s, extra);
    static const char req[] = "GET /iiif/3/grid.tif/info.json HTTP/1.1\r\nHost: x\r\n\r\n";

    int fd = connect_from("127.0.0.2", s.port);
    assert_true(fd >= 0);
    double opened = tu_now_ms();
    for (int i = 0; i < 4; i++) { /* 3.6 s in all, beyond the 2 s deadline */
        send_all(fd, req);
        assert_int_equal(read_response(fd, 2000), 200);
        tu_sleep_ms(1200);
    }
    double alive = tu_now_ms() - opened;
    send_all(fd, req);
    assert_int_equal(read_response(fd, 2000), 200);
    double answered = tu_now_ms();
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 4000), 1);
    double silent = tu_now_ms() - answered;
    assert_true(peer_closed(fd));
    close(fd);
    print_message("keep-alive: asked for %.0f ms, closed %.0f ms after falling silent\n", alive,
                  silent);
    assert_true(silent >= 1800 && silent <= 3000);
    assert_int_equal(tu_server_stop(&s), 0);
}

int main(void)
{
    tu_http_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trickles_over_the_limit_do_not_starve_another_address),
        cmocka_unit_test(test_one_address_cannot_take_another_addresses_share),
        cmocka_unit_test(test_the_deadline_restarts_after_each_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
