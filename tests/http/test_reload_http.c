/* SIGHUP reloads the configuration file while serving, and the access log as a log parser
 * reads it: the Combined Log Format, JSON lines, and the client behind a trusted proxy. */
#include "harness.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#define WORK TESSERA_TEST_WORK
#define WIDE "/iiif/3/grid.tif/full/800,/0/default.jpg"

static struct tu_server server;
static bool running;

static int stop(void **state)
{
    (void)state;
    int rc = running ? tu_server_stop(&server) : 0;
    running = false;
    return rc;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void paths(const char *name, char *root, char *file, size_t cap, const char *file_name)
{
    snprintf(root, cap, "%s/%s/root", WORK, name);
    assert_int_equal(tu_mkdirs(root), 0);
    assert_int_equal(tu_make_http_root(root), 0);
    snprintf(file, cap, "%s/%s/%s", WORK, name, file_name);
}

/* Starts the server on root with extra flags, its stderr going to log. */
static void start(const char *root, const char *const *extra, const char *log)
{
    assert_int_equal(tu_server_start_logged(&server, TESSERA_BIN, root, extra, log), 0);
    running = true;
}

static size_t occurrences(const char *path, const char *needle)
{
    struct ts_buf text = {0};
    if (tu_read_file(path, &text) != 0)
        return 0;
    size_t n = 0;
    const char *p = ts_buf_str(&text);
    while (p && (p = strstr(p, needle)) != NULL) {
        n++;
        p += strlen(needle);
    }
    ts_buf_free(&text);
    return n;
}

/* Sends SIGHUP and waits (bounded) until the log says the reload was done, either way. */
static void hangup(const char *log)
{
    size_t before =
        occurrences(log, "reload: configuration applied") + occurrences(log, "reload failed");
    assert_int_equal(kill(server.pid, SIGHUP), 0);
    for (int i = 0; i < 250; i++) {
        if (occurrences(log, "reload: configuration applied") + occurrences(log, "reload failed") >
            before)
            return;
        tu_sleep_ms(20);
    }
    fail_msg("no reload in the log 5 s after SIGHUP");
}

static long status_of(struct tu_client *c, const char *path)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", server.base, path);
    struct tu_response r;
    assert_int_equal(tu_client_request(c, "GET", url, NULL, &r), 0);
    long status = r.status;
    tu_response_free(&r);
    return status;
}

static long long info_max_width(struct tu_client *c)
{
    char url[512];
    snprintf(url, sizeof url, "%s/iiif/3/grid.tif/info.json", server.base);
    struct tu_response r;
    assert_int_equal(tu_client_request(c, "GET", url, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    json_error_t jerr;
    json_t *o = json_loadb((const char *)r.body.data, r.body.len, 0, &jerr);
    assert_non_null(o);
    long long w = json_integer_value(json_object_get(o, "maxWidth"));
    json_decref(o);
    tu_response_free(&r);
    return w;
}

static int connect_loopback(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Reads the whole answer of a Connection: close request (bounded by the socket's timeout). */
static void read_answer(int fd, struct ts_buf *out)
{
    char buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        assert_int_equal(ts_buf_append(out, buf, (size_t)n), 0);
    }
    assert_int_equal(ts_buf_append(out, "", 1), 0);
}

static void test_sighup_applies_a_new_limit_without_dropping_connections(void **state)
{
    (void)state;
    char root[1024], cfg[1024], log[1024];
    paths("limit", root, cfg, sizeof cfg, "tessera.ini");
    snprintf(log, sizeof log, "%s/limit/stderr.log", WORK);
    write_text(cfg, "[limits]\nmax-width = 1000\n");
    const char *extra[] = {"--config", cfg, NULL};
    start(root, extra, log);

    struct tu_client client;
    assert_int_equal(tu_client_init(&client), 0);
    assert_int_equal(status_of(&client, WIDE), 200);
    assert_int_equal(info_max_width(&client), 1000);

    /* A request begun before the reload: its request line is in, its headers are not. */
    int fd = connect_loopback(server.port);
    const char *head = "GET /iiif/3/grid.tif/full/400,/0/default.jpg HTTP/1.1\r\n";
    assert_int_equal(send(fd, head, strlen(head), 0), (ssize_t)strlen(head));

    write_text(cfg, "[limits]\nmax-width = 500\n");
    hangup(log);
    assert_int_equal(occurrences(log, "changed: max-width"), 1);

    /* The next request obeys the new limit, on the connection opened before the reload. */
    assert_int_equal(status_of(&client, WIDE), 400);
    assert_int_equal(status_of(&client, "/iiif/3/grid.tif/full/500,/0/default.jpg"), 200);
    assert_int_equal(info_max_width(&client), 500);
    assert_int_equal(tu_client_connections(&client), 1);

    /* The request in flight completes. */
    const char *rest = "Host: 127.0.0.1\r\nConnection: close\r\n\r\n";
    assert_int_equal(send(fd, rest, strlen(rest), 0), (ssize_t)strlen(rest));
    struct ts_buf answer = {0};
    read_answer(fd, &answer);
    close(fd);
    const char *text = (const char *)answer.data;
    assert_true(!strncmp(text, "HTTP/1.1 200", 12));
    const char *body = strstr(text, "\r\n\r\n");
    assert_non_null(body);
    struct tu_response as_client = {.status = 200};
    size_t body_len = answer.len - 1 - (size_t)(body + 4 - text);
    assert_int_equal(ts_buf_append(&as_client.body, body + 4, body_len), 0);
    struct ts_image img;
    assert_int_equal(tu_decode_body(&as_client, &img), 0);
    assert_int_equal(img.width, 400);
    ts_image_free(&img);
    tu_response_free(&as_client);
    ts_buf_free(&answer);
    tu_client_free(&client);
    assert_true(tu_server_alive(&server));
}

static void test_sighup_names_what_needs_a_restart_and_keeps_a_broken_file_out(void **state)
{
    (void)state;
    char root[1024], cfg[1024], log[1024];
    paths("restart", root, cfg, sizeof cfg, "tessera.ini");
    snprintf(log, sizeof log, "%s/restart/stderr.log", WORK);
    write_text(cfg, "max-width = 500\nreader-cache = 8\n");
    const char *extra[] = {"--config", cfg, NULL};
    start(root, extra, log);
    struct tu_client client;
    assert_int_equal(tu_client_init(&client), 0);
    assert_int_equal(status_of(&client, WIDE), 400);

    write_text(cfg, "max-width = 1000\nreader-cache = 16\nthreads = 3\n");
    hangup(log);
    assert_int_equal(occurrences(log, "setting reader-cache needs a restart"), 1);
    assert_int_equal(occurrences(log, "setting threads needs a restart"), 1);
    assert_int_equal(status_of(&client, WIDE), 200);

    /* A file that does not read leaves the configuration in force. */
    write_text(cfg, "max-width = 300\npassthrough = sometimes\n");
    hangup(log);
    assert_int_equal(occurrences(log, "reload failed"), 1);
    assert_int_equal(occurrences(log, "sometimes"), 1);
    assert_int_equal(status_of(&client, WIDE), 200);
    assert_int_equal(info_max_width(&client), 1000);

    /* Until a restart, each reload says again what it could not apply. */
    write_text(cfg, "max-width = 1000\nreader-cache = 16\n");
    hangup(log);
    assert_int_equal(occurrences(log, "setting reader-cache needs a restart"), 2);
    assert_int_equal(occurrences(log, "setting threads needs a restart"), 1);
    tu_client_free(&client);
}

/* One Combined Log Format line, split into its fields. */
struct combined {
    char client[64], stamp[64], request[1024], referer[512], agent[512];
    int status;
    char bytes[32];
};

/* A quoted field as a log parser reads it: up to the first '"' not escaped by a '\\',
 * unescaped. Returns the text after the closing quote, or NULL. */
static const char *quoted(const char *p, char *out, size_t cap)
{
    if (*p++ != '"')
        return NULL;
    size_t n = 0;
    for (; *p && *p != '"'; p++) {
        if (*p == '\\' && p[1])
            p++;
        if (n + 1 < cap)
            out[n++] = *p;
    }
    out[n] = '\0';
    return *p == '"' ? p + 1 : NULL;
}

static void parse_combined(const char *line, struct combined *c)
{
    memset(c, 0, sizeof *c);
    int used = 0;
    int n = sscanf(line, "%63s - - [%63[^]]] %n", c->client, c->stamp, &used);
    const char *p = n == 2 ? quoted(line + used, c->request, sizeof c->request) : NULL;
    used = 0;
    n = p ? sscanf(p, " %d %31s %n", &c->status, c->bytes, &used) : 0;
    p = n == 2 ? quoted(p + used, c->referer, sizeof c->referer) : NULL;
    p = p && *p == ' ' ? quoted(p + 1, c->agent, sizeof c->agent) : NULL;
    if (!p || *p)
        fail_msg("not a combined log line: %s", line);
}

/* Line n (0-based) of the file, without its newline. */
static void nth_line(const char *path, int n, char *out, size_t cap)
{
    struct ts_buf text = {0};
    for (int i = 0; i < 100; i++) { /* the line is written as the answer goes out */
        ts_buf_free(&text);
        text = (struct ts_buf){0};
        assert_int_equal(tu_read_file(path, &text), 0);
        size_t lines = 0;
        for (size_t k = 0; k < text.len; k++)
            lines += text.data[k] == '\n';
        if ((int)lines > n)
            break;
        tu_sleep_ms(20);
    }
    assert_int_equal(ts_buf_append(&text, "", 1), 0);
    const char *p = (const char *)text.data;
    for (int i = 0; i < n && p; i++) {
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    assert_non_null(p);
    size_t len = strcspn(p, "\n");
    assert_true(len < cap);
    memcpy(out, p, len);
    out[len] = '\0';
    ts_buf_free(&text);
}

static void get_with(const char *path, const char *const *headers, struct tu_response *r)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", server.base, path);
    assert_int_equal(tu_request("GET", url, headers, r), 0);
}

static void test_access_log_is_combined_then_json_after_a_reload(void **state)
{
    (void)state;
    char root[1024], cfg[1024], log[1024], access[1024];
    paths("access", root, cfg, sizeof cfg, "tessera.ini");
    snprintf(log, sizeof log, "%s/access/stderr.log", WORK);
    snprintf(access, sizeof access, "%s/access/access.log", WORK);
    unlink(access);
    write_text(cfg, "trusted-proxies = 127.0.0.1, 10.0.0.0/8\n");
    const char *extra[] = {"--config", cfg, "--access-log", access, "--trust-proxy", NULL};
    start(root, extra, log);

    const char *headers[] = {"X-Forwarded-For: 198.51.100.1, 203.0.113.7, 10.1.2.3",
                             "Referer: https://viewer.example/page?x=\"1\"",
                             "User-Agent: Viewer/2.0 (test)", NULL};
    struct tu_response r;
    get_with("/iiif/3/grid.tif/0,0,256,256/256,/0/default.jpg?t=1", headers, &r);
    assert_int_equal(r.status, 200);
    char line[4096];
    nth_line(access, 0, line, sizeof line);
    struct combined c;
    parse_combined(line, &c);
    /* The proxy at 10.1.2.3 is trusted; 203.0.113.7 is the client it saw. */
    assert_string_equal(c.client, "203.0.113.7");
    assert_string_equal(c.request,
                        "GET /iiif/3/grid.tif/0,0,256,256/256,/0/default.jpg?t=1 HTTP/1.1");
    assert_int_equal(c.status, 200);
    assert_int_equal(strtoull(c.bytes, NULL, 10), r.body.len);
    assert_string_equal(c.agent, "Viewer/2.0 (test)");
    /* The quotes in the referer were escaped, and it reads back whole. */
    assert_string_equal(c.referer, "https://viewer.example/page?x=\"1\"");
    /* [10/Oct/2026:13:55:36 +0000] */
    int day, year, hh, mm, ss;
    char month[8], zone[8];
    assert_int_equal(
        sscanf(c.stamp, "%d/%3s/%d:%d:%d:%d %7s", &day, month, &year, &hh, &mm, &ss, zone), 7);
    assert_string_equal(zone, "+0000");
    tu_response_free(&r);

    /* A 404 without the headers: the peer itself, dashes for what is missing. */
    const char *none[] = {"User-Agent:", NULL};
    get_with("/iiif/3/missing.tif/info.json", none, &r);
    assert_int_equal(r.status, 404);
    nth_line(access, 1, line, sizeof line);
    parse_combined(line, &c);
    assert_string_equal(c.client, "127.0.0.1");
    assert_int_equal(c.status, 404);
    assert_string_equal(c.referer, "-");
    assert_string_equal(c.agent, "-");
    tu_response_free(&r);

    /* JSON from the next line on, and a new list of proxies without 10/8. */
    write_text(cfg, "trusted-proxies = 127.0.0.1\naccess-log-format = json\n");
    hangup(log);
    get_with("/iiif/3/grid.tif/info.json", headers, &r);
    assert_int_equal(r.status, 200);
    nth_line(access, 2, line, sizeof line);
    json_error_t jerr;
    json_t *o = json_loads(line, 0, &jerr);
    if (!o)
        fail_msg("not JSON: %s (%s)", line, jerr.text);
    assert_string_equal(json_string_value(json_object_get(o, "remote")), "10.1.2.3");
    assert_string_equal(json_string_value(json_object_get(o, "method")), "GET");
    assert_string_equal(json_string_value(json_object_get(o, "uri")), "/iiif/3/grid.tif/info.json");
    assert_string_equal(json_string_value(json_object_get(o, "protocol")), "HTTP/1.1");
    assert_int_equal(json_integer_value(json_object_get(o, "status")), 200);
    assert_int_equal(json_integer_value(json_object_get(o, "bytes")), (json_int_t)r.body.len);
    assert_string_equal(json_string_value(json_object_get(o, "referer")),
                        "https://viewer.example/page?x=\"1\"");
    assert_string_equal(json_string_value(json_object_get(o, "user_agent")), "Viewer/2.0 (test)");
    assert_true(json_is_number(json_object_get(o, "duration_ms")));
    json_decref(o);
    tu_response_free(&r);
}

static void test_forwarded_for_is_ignored_without_trust_proxy(void **state)
{
    (void)state;
    char root[1024], access[1024], log[1024];
    paths("untrusted", root, access, sizeof access, "access.log");
    snprintf(log, sizeof log, "%s/untrusted/stderr.log", WORK);
    unlink(access);
    const char *extra[] = {"--access-log", access, NULL};
    start(root, extra, log);
    const char *headers[] = {"X-Forwarded-For: 203.0.113.7", NULL};
    struct tu_response r;
    get_with("/iiif/3/grid.tif/info.json", headers, &r);
    assert_int_equal(r.status, 200);
    tu_response_free(&r);
    char line[4096];
    nth_line(access, 0, line, sizeof line);
    struct combined c;
    parse_combined(line, &c);
    assert_string_equal(c.client, "127.0.0.1");
}

int main(void)
{
    tu_http_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_sighup_applies_a_new_limit_without_dropping_connections,
                                  stop),
        cmocka_unit_test_teardown(
            test_sighup_names_what_needs_a_restart_and_keeps_a_broken_file_out, stop),
        cmocka_unit_test_teardown(test_access_log_is_combined_then_json_after_a_reload, stop),
        cmocka_unit_test_teardown(test_forwarded_for_is_ignored_without_trust_proxy, stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
