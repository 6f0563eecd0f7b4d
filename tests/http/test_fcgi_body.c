/* Request bodies through the FastCGI front end: a login form posted on STDIN signs the user in,
 * a body over 4 KB is answered 413, and either way the kept connection serves the next request
 * (the body was read to its end, not left for the next request to trip on). */
#include "harness.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#define BEGIN 1
#define END 3
#define PARAMS 4
#define STDIN 5
#define STDOUT 6

static struct tu_server srv = {.pid = -1};
static char work[1024];

static int group_setup(void **state)
{
    (void)state;
    char root[1100], users[1200], ini[1200], text[4096], line[512], dir[1200], from[1200], to[1300];
    snprintf(work, sizeof work, "%s", TESSERA_TEST_WORK);
    snprintf(root, sizeof root, "%s/root", work);
    snprintf(dir, sizeof dir, "%s/secret", root);
    if (tu_mkdirs(dir) != 0 || tu_make_http_root(root) != 0)
        return -1;
    snprintf(from, sizeof from, "%s/grid.png", root);
    snprintf(to, sizeof to, "%s/grid.png", dir);
    if (tu_copy_file(from, to) != 0)
        return -1;
    char *salt = crypt_gensalt_ra("$y$", 0, NULL, 0);
    const char *hash = salt ? crypt("open sesame", salt) : NULL;
    snprintf(line, sizeof line, "alice:%s\n", hash ? hash : "");
    free(salt);
    snprintf(users, sizeof users, "%s/users", work);
    snprintf(ini, sizeof ini, "%s/fcgi.ini", work);
    snprintf(text, sizeof text,
             "[auth]\nsecret = 0123456789abcdef0123456789abcdef-fcgi\nusers = %s\n"
             "[access secret]\nmatch = secret/\nprofile = login\n",
             users);
    if (!hash || tu_write_text(users, line) != 0 || tu_write_text(ini, text) != 0)
        return -1;
    int port = tu_free_port();
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    const char *const args[] = {"--config", ini, NULL};
    return port > 0 ? tu_fcgi_server_start(&srv, TESSERA_BIN, root, addr, args) : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return tu_server_stop(&srv);
}

static void record(struct ts_buf *out, int type, const void *data, size_t len)
{
    uint8_t h[8] = {1, (uint8_t)type, 0, 1, (uint8_t)(len >> 8), (uint8_t)len, 0, 0};
    assert_true(len < 65536);
    assert_int_equal(ts_buf_append(out, h, 8), 0);
    if (len)
        assert_int_equal(ts_buf_append(out, data, len), 0);
}

static void param(struct ts_buf *p, const char *name, const char *value)
{
    uint8_t n[2] = {(uint8_t)strlen(name), (uint8_t)strlen(value)};
    assert_true(strlen(name) < 128 && strlen(value) < 128);
    assert_int_equal(ts_buf_append(p, n, 2), 0);
    assert_int_equal(ts_buf_append_str(p, name), 0);
    assert_int_equal(ts_buf_append_str(p, value), 0);
}

static int read_full(int fd, uint8_t *buf, size_t n)
{
    double deadline = tu_now_ms() + 10000;
    for (size_t got = 0; got < n;) {
        struct pollfd p = {fd, POLLIN, 0};
        int left = (int)(deadline - tu_now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0)
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

/* One request on the kept connection fd; the answer's STDOUT (headers and body) into out. */
static int exchange(int fd, const char *method, const char *uri, const char *type, const char *body,
                    size_t len, struct ts_buf *out)
{
    struct ts_buf req = {0}, p = {0};
    const uint8_t begin[8] = {0, 1, 1 /* keep the connection */, 0, 0, 0, 0, 0};
    record(&req, BEGIN, begin, 8);
    char clen[32];
    snprintf(clen, sizeof clen, "%zu", len);
    param(&p, "REQUEST_METHOD", method);
    param(&p, "REQUEST_URI", uri);
    param(&p, "QUERY_STRING", "");
    param(&p, "SERVER_PROTOCOL", "HTTP/1.1");
    param(&p, "HTTP_HOST", "127.0.0.1");
    param(&p, "REMOTE_ADDR", "127.0.0.1");
    param(&p, "CONTENT_LENGTH", clen);
    if (type)
        param(&p, "CONTENT_TYPE", type);
    record(&req, PARAMS, p.data, p.len);
    record(&req, PARAMS, NULL, 0);
    if (len)
        record(&req, STDIN, body, len);
    record(&req, STDIN, NULL, 0);
    ssize_t sent = send(fd, req.data, req.len, MSG_NOSIGNAL);
    int rc = sent == (ssize_t)req.len ? 0 : -1;
    ts_buf_free(&req);
    ts_buf_free(&p);
    out->len = 0;
    while (rc == 0) {
        uint8_t h[8], content[65536 + 256];
        if (read_full(fd, h, 8) != 0)
            return -1;
        size_t n = ((size_t)h[4] << 8 | h[5]) + h[6];
        if (read_full(fd, content, n) != 0)
            return -1;
        if (h[1] == STDOUT)
            assert_int_equal(ts_buf_append(out, content, n - h[6]), 0);
        if (h[1] == END)
            break;
    }
    assert_int_equal(ts_buf_append(out, "", 1), 0);
    return rc;
}

static int status_of(const struct ts_buf *out)
{
    const char *s = strstr((const char *)out->data, "Status: ");
    return s ? atoi(s + 8) : 200;
}

static void test_login_form_and_oversized_body_over_fastcgi(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)srv.port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct ts_buf out = {0};
    const char *form = "application/x-www-form-urlencoded";
    const char *wrong = "user=alice&password=nope";
    assert_int_equal(exchange(fd, "POST", "/auth/access/secret", form, wrong, strlen(wrong), &out),
                     0);
    assert_int_equal(status_of(&out), 403);
    assert_null(strstr((const char *)out.data, "Set-Cookie"));
    const char *right = "user=alice&password=open+sesame";
    assert_int_equal(exchange(fd, "POST", "/auth/access/secret", form, right, strlen(right), &out),
                     0);
    assert_int_equal(status_of(&out), 200);
    assert_non_null(strstr((const char *)out.data, "Set-Cookie: tessera_access="));
    size_t big = 6000;
    char *body = malloc(big);
    assert_non_null(body);
    memset(body, 'x', big);
    memcpy(body, "user=alice&password=open+sesame&pad=", 36);
    assert_int_equal(exchange(fd, "POST", "/auth/access/secret", form, body, big, &out), 0);
    free(body);
    assert_int_equal(status_of(&out), 413);
    assert_null(strstr((const char *)out.data, "Set-Cookie"));
    /* The connection is still in step: the next request is answered. */
    assert_int_equal(exchange(fd, "GET", "/iiif/3/grid.png/info.json", NULL, NULL, 0, &out), 0);
    assert_int_equal(status_of(&out), 200);
    const char *blank = strstr((const char *)out.data, "\r\n\r\n");
    json_t *info = blank ? json_loads(blank + 4, 0, NULL) : NULL;
    assert_int_equal(json_integer_value(json_object_get(info, "width")), 1000);
    json_decref(info);
    ts_buf_free(&out);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_form_and_oversized_body_over_fastcgi),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
