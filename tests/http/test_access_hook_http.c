/* The authorization hook against the real server: a tiny HTTP service on a loopback port (a
 * thread here) decides by the image's path and counts the questions it is asked. It grants,
 * refuses, names a degraded tier, answers late, or is not there at all; decisions are
 * remembered for their TTL, so a second request asks nothing. */
#include "grid.h"
#include "harness.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#define SECRET "secret = 0123456789abcdef0123456789abcdef-hook\n"

struct hook {
    int fd;
    int port;
    pthread_t thread;
    atomic_bool stop;
    atomic_int calls;
    pthread_mutex_t lock;
    char last[2048]; /* the last request line's target */
};

static struct hook hook;
static struct tu_server srv;   /* hook with a 300 ms timeout and a 30 s cache */
static struct tu_server fresh; /* the same hook, no cache */
static struct tu_server gone;  /* a hook on a port nobody listens on */
static char work[1024];

static void *answer(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char req[4096] = "";
    size_t n = 0;
    struct pollfd p = {fd, POLLIN, 0};
    /* Reads the head (the request has no body), two seconds at most. */
    while (n < sizeof req - 1 && !strstr(req, "\r\n\r\n") && poll(&p, 1, 2000) > 0) {
        ssize_t k = read(fd, req + n, sizeof req - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
        req[n] = '\0';
    }
    char target[2048] = "";
    sscanf(req, "GET %2047s", target);
    pthread_mutex_lock(&hook.lock);
    snprintf(hook.last, sizeof hook.last, "%s", target);
    pthread_mutex_unlock(&hook.lock);
    atomic_fetch_add(&hook.calls, 1);
    const char *status = "200 OK", *body = "";
    if (strstr(target, "path=hook%2Fdeny"))
        status = "403 Forbidden";
    else if (strstr(target, "path=hook%2Fdegraded"))
        body = "{\"tier\": \"degraded\"}";
    else if (strstr(target, "path=hook%2Fbroken"))
        status = "500 Internal Server Error";
    else if (strstr(target, "path=hook%2Fslow"))
        usleep(1500 * 1000); /* far past the server's 300 ms */
    char out[512];
    int len = snprintf(out, sizeof out,
                       "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: "
                       "%zu\r\nConnection: close\r\n\r\n%s",
                       status, strlen(body), body);
    /* The server may have given up on a late answer: no SIGPIPE for that. */
    ssize_t w = send(fd, out, (size_t)len, MSG_NOSIGNAL);
    (void)w;
    close(fd);
    return NULL;
}

static void *hook_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&hook.stop)) {
        struct pollfd p = {hook.fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int c = accept(hook.fd, NULL, NULL);
        if (c < 0)
            continue;
        pthread_t t; /* one thread per question: a slow answer holds up no other */
        if (pthread_create(&t, NULL, answer, (void *)(intptr_t)c) != 0)
            close(c);
        else
            pthread_detach(t);
    }
    return NULL;
}

static int hook_start(void)
{
    pthread_mutex_init(&hook.lock, NULL);
    hook.fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (hook.fd < 0 || bind(hook.fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(hook.fd, 16) != 0 || getsockname(hook.fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    hook.port = ntohs(a.sin_port);
    return pthread_create(&hook.thread, NULL, hook_main, NULL) == 0 ? 0 : -1;
}

static int start(struct tu_server *s, const char *root, const char *name, int port,
                 const char *extra)
{
    char ini[1200], text[2048];
    snprintf(ini, sizeof ini, "%s/%s.ini", work, name);
    snprintf(text, sizeof text,
             "[auth]\n" SECRET "hook = http://127.0.0.1:%d/decide\nhook-timeout = 300\n"
             "users = %s/users\n%s"
             "[access hook]\nmatch = hook/\nprofile = hook\ndegraded-size = 200\n"
             "[access staff]\nmatch = staff/\nprofile = login\n",
             port, work, extra);
    if (tu_write_text(ini, text) != 0)
        return -1;
    const char *const args[] = {"--config", ini, NULL};
    return tu_server_start(s, TESSERA_BIN, root, args);
}

static int group_setup(void **state)
{
    (void)state;
    tu_http_init();
    char root[1100], dir[1200], grid[1200], path[1300];
    snprintf(work, sizeof work, "%s", TESSERA_TEST_WORK);
    snprintf(root, sizeof root, "%s/root", work);
    if (tu_mkdirs(root) != 0 || tu_make_http_root(root) != 0)
        return -1;
    snprintf(grid, sizeof grid, "%s/grid.png", root);
    snprintf(dir, sizeof dir, "%s/hook", root);
    if (tu_mkdirs(dir) != 0)
        return -1;
    static const char *const names[] = {"allow",  "again", "deny",   "degraded",
                                        "broken", "slow",  "nocache"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s.png", dir, names[i]);
        if (tu_copy_file(grid, path) != 0)
            return -1;
    }
    char *salt = crypt_gensalt_ra("$y$", 0, NULL, 0);
    const char *hash = salt ? crypt("open sesame", salt) : NULL;
    char users[1200], line[512];
    snprintf(line, sizeof line, "alice:%s\n", hash ? hash : "");
    free(salt);
    snprintf(users, sizeof users, "%s/users", work);
    if (!hash || tu_write_text(users, line) != 0)
        return -1;
    if (hook_start() != 0)
        return -1;
    int rc = start(&srv, root, "cached", hook.port, "");
    rc = rc ? rc : start(&fresh, root, "fresh", hook.port, "hook-cache-ttl = 0\n");
    /* Free a moment ago, and nobody listens there: picked after the listeners above, since a
     * port picked before them was once handed to the hook itself (which then said yes). */
    int closed;
    do
        closed = tu_free_port();
    while (closed == hook.port || closed == srv.port || closed == fresh.port);
    rc = rc ? rc : closed < 0 ? -1 : start(&gone, root, "gone", closed, "");
    return rc;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = tu_server_stop(&srv);
    rc |= tu_server_stop(&fresh);
    rc |= tu_server_stop(&gone);
    atomic_store(&hook.stop, true);
    pthread_join(hook.thread, NULL);
    close(hook.fd);
    return rc;
}

static long get(const struct tu_server *s, const char *path, const char *header,
                struct tu_response *r)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    const char *const hs[] = {header, NULL};
    assert_int_equal(tu_request("GET", url, header ? hs : NULL, r), 0);
    return r->status;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void expect_grid(const struct tu_response *r, uint32_t size)
{
    struct ts_image img;
    assert_int_equal(tu_decode_body(r, &img), 0);
    assert_int_equal(img.width, size);
    assert_int_equal(img.height, size);
    uint8_t rgb[3];
    grid_cell_color(3, 2, rgb);
    assert_true(tu_pixel_diff(&img, size * 35 / 100, size * 25 / 100, rgb) <= 2);
    ts_image_free(&img);
}

static void test_hook_grants_and_is_told_who_asks(void **state)
{
    (void)state;
    int before = atomic_load(&hook.calls);
    struct tu_response r;
    assert_int_equal(get(&srv, "/iiif/3/hook%2Fallow.png/full/max/0/default.png", NULL, &r), 200);
    expect_grid(&r, 1000);
    assert_true(tu_header_contains(&r, "Cache-Control", "private"));
    tu_response_free(&r);
    assert_int_equal(atomic_load(&hook.calls), before + 1);
    pthread_mutex_lock(&hook.lock);
    char last[2048];
    snprintf(last, sizeof last, "%s", hook.last);
    pthread_mutex_unlock(&hook.lock);
    assert_int_equal(strncmp(last, "/decide?", 8), 0);
    assert_non_null(strstr(last, "id=hook%2Fallow.png"));
    assert_non_null(strstr(last, "path=hook%2Fallow.png"));
    assert_non_null(strstr(last, "client=127.0.0.1"));
    assert_non_null(strstr(last, "user="));
    /* Images outside the hook's rule never ask it. */
    assert_int_equal(get(&srv, "/iiif/3/grid.png/full/100,/0/default.jpg", NULL, &r), 200);
    tu_response_free(&r);
    assert_int_equal(atomic_load(&hook.calls), before + 1);
}

/* Whoever logged in at another rule's access service is named to the hook. */
static void test_hook_is_told_the_logged_in_user(void **state)
{
    (void)state;
    struct tu_response r;
    /* base64("alice:open sesame") */
    assert_int_equal(
        get(&srv, "/auth/access/staff", "Authorization: Basic YWxpY2U6b3BlbiBzZXNhbWU=", &r), 200);
    char set[1024] = "", cookie[1100];
    assert_true(tu_header(&r, "Set-Cookie", 0, set, sizeof set));
    tu_response_free(&r);
    set[strcspn(set, ";")] = '\0';
    snprintf(cookie, sizeof cookie, "Cookie: %s", set);
    assert_int_equal(get(&srv, "/iiif/3/hook%2Fallow.png/full/50,/0/default.png", cookie, &r), 200);
    tu_response_free(&r);
    pthread_mutex_lock(&hook.lock);
    bool named = strstr(hook.last, "user=alice") != NULL;
    pthread_mutex_unlock(&hook.lock);
    assert_true(named);
    /* A forged cookie names nobody. */
    assert_int_equal(get(&fresh, "/iiif/3/hook%2Fallow.png/full/50,/0/default.png",
                         "Cookie: tessera_access=forged.cookie", &r),
                     200);
    tu_response_free(&r);
    pthread_mutex_lock(&hook.lock);
    bool nobody = strstr(hook.last, "user=") && !strstr(hook.last, "user=alice");
    pthread_mutex_unlock(&hook.lock);
    assert_true(nobody);
}

static void test_hook_decision_is_remembered(void **state)
{
    (void)state;
    const char *a = "/iiif/3/hook%2Fagain.png/full/100,/0/default.png";
    const char *b = "/iiif/3/hook%2Fagain.png/info.json";
    int before = atomic_load(&hook.calls);
    struct tu_response r;
    assert_int_equal(get(&srv, a, NULL, &r), 200);
    expect_grid(&r, 100);
    tu_response_free(&r);
    /* Another request for the same image from the same client: no second question. */
    assert_int_equal(get(&srv, b, NULL, &r), 200);
    tu_response_free(&r);
    assert_int_equal(atomic_load(&hook.calls), before + 1);
    /* Without the cache, every request asks. */
    const char *c = "/iiif/3/hook%2Fnocache.png/full/100,/0/default.png";
    for (int i = 0; i < 2; i++) {
        assert_int_equal(get(&fresh, c, NULL, &r), 200);
        tu_response_free(&r);
    }
    assert_int_equal(atomic_load(&hook.calls), before + 3);
}

static void test_hook_refusal_and_degraded_tier(void **state)
{
    (void)state;
    struct tu_response r;
    assert_int_equal(get(&srv, "/iiif/3/hook%2Fdeny.png/full/max/0/default.png", NULL, &r), 403);
    char type[128] = "";
    tu_header(&r, "Content-Type", 0, type, sizeof type);
    assert_int_not_equal(strncmp(type, "image/", 6), 0);
    tu_response_free(&r);
    /* {"tier": "degraded"}: the rule's 200 px image, with its own info.json. */
    assert_int_equal(get(&srv, "/iiif/3/hook%2Fdegraded.png/full/max/0/default.png", NULL, &r),
                     200);
    expect_grid(&r, 200);
    tu_response_free(&r);
}

static void test_hook_without_a_decision_refuses_with_503(void **state)
{
    (void)state;
    struct tu_response r;
    /* An answer that decides nothing; not remembered either: the next request asks again. */
    int before = atomic_load(&hook.calls);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(get(&srv, "/iiif/3/hook%2Fbroken.png/full/100,/0/default.png", NULL, &r),
                         503);
        tu_response_free(&r);
    }
    assert_int_equal(atomic_load(&hook.calls), before + 2);
    /* Late: refused at the timeout, not when the hook gets round to it. */
    double t0 = now_ms();
    assert_int_equal(get(&srv, "/iiif/3/hook%2Fslow.png/full/100,/0/default.png", NULL, &r), 503);
    double took = now_ms() - t0;
    tu_response_free(&r);
    if (took > 1200)
        fail_msg("the late hook held the request %.0f ms (timeout 300 ms)", took);
    /* Not there at all. */
    assert_int_equal(get(&gone, "/iiif/3/hook%2Fallow.png/full/100,/0/default.png", NULL, &r), 503);
    assert_null(strstr((const char *)r.body.data, "PNG"));
    tu_response_free(&r);
}

static void test_hook_without_url_stops_the_start(void **state)
{
    (void)state;
    char ini[1200], cmd[4096], out[4096];
    snprintf(ini, sizeof ini, "%s/nourl.ini", work);
    assert_int_equal(
        tu_write_text(ini, "[auth]\n" SECRET "[access h]\nmatch = hook/\nprofile = hook\n"), 0);
    snprintf(cmd, sizeof cmd, "%s --root %s/root --config %s --listen 127.0.0.1:0 2>&1",
             TESSERA_BIN, work, ini);
    assert_int_not_equal(tu_run_capture(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "hook wants [auth] hook = URL"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hook_grants_and_is_told_who_asks),
        cmocka_unit_test(test_hook_is_told_the_logged_in_user),
        cmocka_unit_test(test_hook_decision_is_remembered),
        cmocka_unit_test(test_hook_refusal_and_degraded_tier),
        cmocka_unit_test(test_hook_without_a_decision_refuses_with_503),
        cmocka_unit_test(test_hook_without_url_stops_the_start),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
