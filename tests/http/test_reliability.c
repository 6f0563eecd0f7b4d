/* Reliability under a real server: renders nobody waits for, a storm of big renders beside a
 * viewer's tiles, files renamed or rewritten while they are served, SIGTERM and the request
 * deadline during a render that would run far longer than either allows. */
#include "grid.h"
#include "harness.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <png.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#define WORK TESSERA_TEST_WORK

/* The big source: a JPEG whose 3000x3000 regions at full size are big renders (over the 32 MB
 * that makes a render large) taking 0.2 to 0.8 s each in the sanitizer build. Every request
 * below asks for a different region, so no cache answers. */
#define BIG_SIDE 6000
#define BIG_ID "big.jpg"

/* The slow source: a solid-colour PNG of SLOW_SIDE x SLOW_SIDE (5 MB on disk). Asking for a
 * small version of it renders in bands of about 32 MB, and the PNG reader decodes from the first
 * row again for every band. In the Release build on 2 busy cores SLOW_URL took 39 s at 16000 x
 * 16000; at 20000 x 20000 it was still rendering after 5 minutes (150 s of CPU), and the
 * sanitizer build is slower still: far beyond the drain time and the deadlines below. Should
 * the reader ever keep its place between bands, this source must become slow some other way. */
#define SLOW_SIDE 20000
#define SLOW_ID "huge.png"
#define SLOW_URL "/iiif/3/" SLOW_ID "/full/500,/0/default.png"

/* The server of the running test; the teardown kills it if a failed assertion left it up. */
static struct tu_server server = {.pid = -1, .out_fd = -1};

static int kill_leftover_server(void **state)
{
    (void)state;
    if (server.pid > 0) {
        if (!server.reaped) {
            kill(server.pid, SIGKILL);
            int st;
            waitpid(server.pid, &st, 0);
        }
        if (server.out_fd >= 0)
            close(server.out_fd);
        server.pid = -1;
        server.out_fd = -1;
    }
    return 0;
}

static void join_path(char *out, size_t cap, const char *a, const char *b)
{
    int n = snprintf(out, cap, "%s/%s", a, b);
    assert_true(n > 0 && (size_t)n < cap);
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

/* ---- sources ---- */

static void solid_image(uint32_t w, uint32_t h, const uint8_t rgb[3], struct ts_image *img)
{
    assert_int_equal(ts_image_alloc(img, w, h, 3), 0);
    for (uint32_t y = 0; y < h; y++) {
        uint8_t *row = ts_image_row(img, y);
        for (uint32_t x = 0; x < w; x++)
            memcpy(row + 3 * x, rgb, 3);
    }
}

/* The grid root of the other HTTP tests (grid.tif and friends) plus big.jpg; made once. */
static char big_root[4096];

static void need_big_root(void)
{
    if (big_root[0])
        return;
    char path[4096];
    join_path(big_root, sizeof big_root, WORK, "big");
    assert_int_equal(tu_mkdirs(big_root), 0);
    assert_int_equal(tu_make_http_root(big_root), 0);
    join_path(path, sizeof path, big_root, BIG_ID);
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size > 0)
        return;
    struct ts_image img;
    assert_int_equal(grid_make(BIG_SIDE, BIG_SIDE, 24, 3, &img), 0);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_equal(grid_write_jpeg(tmp, &img, 90), 0);
    ts_image_free(&img);
    assert_int_equal(rename(tmp, path), 0);
}

/* Writes a solid grey RGB PNG of side x side row by row (so it never needs the whole image in
 * memory). Filter Up turns every row after the first into zeros, which deflate to nearly
 * nothing, so the file is small and quick to write while its pixels are many. */
static int write_solid_png(const char *path, uint32_t side)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    uint8_t *row = malloc((size_t)side * 3);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int rc = -1;
    if (!row || !png || !info)
        goto out;
    if (setjmp(png_jmpbuf(png)))
        goto out;
    memset(row, 0x80, (size_t)side * 3);
    png_init_io(png, f);
    png_set_compression_level(png, 1);
    png_set_filter(png, 0, PNG_FILTER_UP);
    png_set_IHDR(png, info, side, side, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (uint32_t y = 0; y < side; y++)
        png_write_row(png, row);
    png_write_end(png, NULL);
    rc = 0;
out:
    if (png)
        png_destroy_write_struct(&png, info ? &info : NULL);
    free(row);
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

static char slow_root[4096];

/* True when path is a PNG whose header says SLOW_SIDE x SLOW_SIDE (left by an earlier run). */
static bool slow_png_ready(const char *path)
{
    uint8_t h[24];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = read(fd, h, sizeof h) == (ssize_t)sizeof h;
    close(fd);
    uint32_t w = (uint32_t)h[16] << 24 | (uint32_t)h[17] << 16 | (uint32_t)h[18] << 8 | h[19];
    uint32_t ht = (uint32_t)h[20] << 24 | (uint32_t)h[21] << 16 | (uint32_t)h[22] << 8 | h[23];
    return ok && memcmp(h + 1, "PNG", 3) == 0 && w == SLOW_SIDE && ht == SLOW_SIDE;
}

static void need_slow_root(void)
{
    if (slow_root[0])
        return;
    char path[4096], tmp[4200];
    join_path(slow_root, sizeof slow_root, WORK, "slow");
    assert_int_equal(tu_mkdirs(slow_root), 0);
    join_path(path, sizeof path, slow_root, SLOW_ID);
    if (slow_png_ready(path))
        return; /* written whole by an earlier run: it is renamed into place only when done */
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    double t0 = tu_now_ms();
    assert_int_equal(write_solid_png(tmp, SLOW_SIDE), 0);
    assert_int_equal(rename(tmp, path), 0);
    print_message("wrote %s (%u x %u) in %.0f ms\n", SLOW_ID, SLOW_SIDE, SLOW_SIDE,
                  tu_now_ms() - t0);
}

/* ---- measuring the server ---- */

/* utime + stime of a process, in seconds (from /proc/PID/stat). */
static double cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields start after the last ')'. */
    const char *p = strrchr(buf, ')');
    assert_non_null(p);
    unsigned long ut = 0, st = 0;
    int got = sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
    assert_int_equal(got, 2);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double timed_get(const struct tu_server *s, const char *path, long *status)
{
    struct tu_response r;
    double t0 = tu_now_ms();
    int rc = tu_get(s, path, &r);
    double dt = tu_now_ms() - t0;
    *status = rc == 0 ? r.status : -1;
    tu_response_free(&r);
    return dt;
}

/* ---- a client with its own timeout (the harness allows 10 s, a queued render may wait more)
 * ---- */

struct answer {
    long status; /* 0: no answer (curl_code says why) */
    int curl_code;
    bool retry_after;
    struct ts_buf body;
};

static size_t on_header(char *data, size_t size, size_t n, void *user)
{
    struct answer *a = user;
    size_t len = size * n;
    if (len >= 12 && strncasecmp(data, "Retry-After:", 12) == 0)
        a->retry_after = true;
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
    struct answer *a = user;
    size_t len = size * n;
    return ts_buf_append(&a->body, data, len) == 0 ? len : 0;
}

static void fetch(CURL *c, const char *url, long timeout_s, struct answer *a)
{
    memset(a, 0, sizeof *a);
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
    a->curl_code = (int)curl_easy_perform(c);
    if (a->curl_code == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
}

/* ---- abandoned renders ---- */

static int connect_loopback(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Closes with a reset (RST) instead of a FIN: the client is gone, not half-closed. */
static void reset_close(int fd)
{
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

#define ABANDONED 100

static void test_abandoned_renders_stop_and_cost_no_cpu(void **state)
{
    (void)state;
    need_big_root();
    /* Room for every one of them to wait, for as long as it likes: none is refused at once, so
     * the queued ones must be dropped and the running one stopped, not turned away. */
    static const char *const extra[] = {"--heavy-queue", "100", "--queue-wait-ms", "60000", NULL};
    assert_int_equal(tu_server_start(&server, TESSERA_BIN, big_root, extra), 0);
    long status;
    timed_get(&server, "/iiif/3/" BIG_ID "/info.json", &status);
    assert_int_equal(status, 200);

    /* What one such render costs when somebody waits for it: the bound below means nothing
     * unless a hundred of them would cost far more than it. */
    double c0 = cpu_seconds(server.pid);
    double dt = timed_get(&server, "/iiif/3/" BIG_ID "/0,0,3000,3000/max/90/gray.png", &status);
    double one = cpu_seconds(server.pid) - c0;
    print_message("one big render: %ld in %.0f ms, %.2f s of server CPU\n", status, dt, one);
    assert_int_equal(status, 200);
    assert_true(one >= 0.1);

    /* Every request is sent first and its client waits a moment, so that the server has read
     * them all and queued or started their renders: a reset that beats the request to the
     * server costs it nothing, and would prove nothing. */
    int fds[ABANDONED];
    char req[512];
    double c_send = cpu_seconds(server.pid);
    for (int i = 0; i < ABANDONED; i++) {
        fds[i] = connect_loopback(server.port);
        assert_true(fds[i] >= 0);
        static const char *const quality[] = {"default", "color", "gray"};
        int n = snprintf(req, sizeof req,
                         "GET /iiif/3/" BIG_ID "/%d,%d,3000,3000/max/%d/%s.png HTTP/1.1\r\n"
                         "Host: 127.0.0.1\r\n\r\n",
                         10 + 7 * i, 3 * i, 90 * (i % 4), quality[i % 3]);
        assert_int_equal(send(fds[i], req, (size_t)n, MSG_NOSIGNAL), n);
    }
    tu_sleep_ms(500);
    double cpu0 = cpu_seconds(server.pid);
    print_message("%d big renders asked; server CPU in the 500 ms before their clients left: "
                  "%.2f s\n",
                  ABANDONED, cpu0 - c_send);
    for (int i = 0; i < ABANDONED; i++)
        reset_close(fds[i]);
    double sent = tu_now_ms();
    dt = timed_get(&server, "/health", &status);
    print_message("%d renders asked and abandoned; /health: %ld in %.0f ms\n", ABANDONED, status,
                  dt);
    assert_int_equal(status, 200);
    assert_true(dt < 1000);

    double left = 3000 - (tu_now_ms() - sent);
    if (left > 0)
        tu_sleep_ms((long)left);
    double burnt = cpu_seconds(server.pid) - cpu0;
    print_message("server CPU from the resets to 3 s after: %.2f s (%d renders would cost about "
                  "%.0f s)\n",
                  burnt, ABANDONED, one * ABANDONED);
    assert_true(burnt < 1.0);

    /* Nothing was left broken: a render somebody waits for is still served. */
    timed_get(&server, "/iiif/3/" BIG_ID "/1,1,3000,3000/max/0/default.png", &status);
    assert_int_equal(status, 200);
    assert_int_equal(tu_server_stop(&server), 0);
}

/* ---- a storm of big renders beside a viewer's tiles ---- */

#define STORM_CLIENTS 32
#define STORM_MS 10000

struct storm_shared {
    const struct tu_server *s;
    atomic_int next; /* makes every render's parameters different */
    double end;
};

struct storm_client {
    struct storm_shared *sh;
    pthread_t thread;
    unsigned ok, busy, busy_without_retry, other;
    long other_status;
    int other_curl;
};

static void *storm_main(void *arg)
{
    struct storm_client *c = arg;
    CURL *curl = curl_easy_init();
    if (!curl) {
        c->other++;
        return NULL;
    }
    static const char *const quality[] = {"default", "color", "gray"};
    char url[256];
    struct answer a;
    while (tu_now_ms() < c->sh->end) {
        int k = atomic_fetch_add(&c->sh->next, 1);
        snprintf(url, sizeof url, "%s/iiif/3/" BIG_ID "/%d,%d,3000,3000/max/%d/%s.png",
                 c->sh->s->base, k % 3000, k / 3000 % 3000, 90 * (k % 4), quality[k / 4 % 3]);
        fetch(curl, url, 60, &a);
        if (a.status == 200) {
            c->ok++;
        } else if (a.status == 503) {
            c->busy++;
            if (!a.retry_after)
                c->busy_without_retry++;
            tu_sleep_ms(50); /* a refused client asks again soon, not in a spin */
        } else {
            c->other++;
            c->other_status = a.status;
            c->other_curl = a.curl_code;
        }
        ts_buf_free(&a.body);
    }
    curl_easy_cleanup(curl);
    return NULL;
}

/* The grid's stored tiles at full size and the next level down: decoded from the pyramid or
 * sent as stored, never a big render. */
static void tile_path(unsigned i, char *out, size_t cap)
{
    unsigned n = i % 20;
    if (n < 16) {
        unsigned x = n % 4 * 256, y = n / 4 * 256;
        unsigned w = x + 256 > GRID_SIZE ? GRID_SIZE - x : 256;
        unsigned h = y + 256 > GRID_SIZE ? GRID_SIZE - y : 256;
        snprintf(out, cap, "/iiif/3/grid.tif/%u,%u,%u,%u/%u,/0/default.jpg", x, y, w, h, w);
    } else {
        n -= 16;
        unsigned x = n % 2 * 512, y = n / 2 * 512;
        unsigned w = x + 512 > GRID_SIZE ? GRID_SIZE - x : 512;
        unsigned h = y + 512 > GRID_SIZE ? GRID_SIZE - y : 512;
        snprintf(out, cap, "/iiif/3/grid.tif/%u,%u,%u,%u/%u,/0/default.jpg", x, y, w, h, w / 2);
    }
}

static void test_tiles_flow_beside_a_storm_of_big_renders(void **state)
{
    (void)state;
    need_big_root();
    /* No response cache: every tile is read and sent by a worker, as a first visit is. */
    static const char *const extra[] = {"--response-cache", "0", NULL};
    assert_int_equal(tu_server_start(&server, TESSERA_BIN, big_root, extra), 0);
    long status;
    timed_get(&server, "/iiif/3/grid.tif/0,0,256,256/256,/0/default.jpg", &status);
    assert_int_equal(status, 200);
    timed_get(&server, "/iiif/3/" BIG_ID "/info.json", &status);
    assert_int_equal(status, 200);

    struct storm_shared sh = {.s = &server, .end = tu_now_ms() + STORM_MS};
    atomic_init(&sh.next, 0);
    struct storm_client clients[STORM_CLIENTS];
    for (int i = 0; i < STORM_CLIENTS; i++) {
        clients[i] = (struct storm_client){.sh = &sh};
        assert_int_equal(pthread_create(&clients[i].thread, NULL, storm_main, &clients[i]), 0);
    }

    /* The viewer: one tile after another while the storm lasts. */
    unsigned tiles = 0, tile_bad = 0, tile_slow = 0;
    long bad_status = 0;
    double worst = 0;
    char path[256];
    tu_sleep_ms(500); /* let the storm fill every queue first */
    while (tu_now_ms() < sh.end) {
        tile_path(tiles, path, sizeof path);
        struct tu_response r;
        double t0 = tu_now_ms();
        int rc = tu_get(&server, path, &r);
        double dt = tu_now_ms() - t0;
        struct ts_image img = {0};
        if (rc != 0 || r.status != 200 || tu_decode_body(&r, &img) != 0 || img.width == 0) {
            tile_bad++;
            bad_status = rc == 0 ? r.status : -1;
        }
        ts_image_free(&img);
        tu_response_free(&r);
        if (dt >= 1000)
            tile_slow++;
        worst = dt > worst ? dt : worst;
        tiles++;
    }

    unsigned ok = 0, busy = 0, no_retry = 0, other = 0;
    long other_status = 0;
    int other_curl = 0;
    for (int i = 0; i < STORM_CLIENTS; i++) {
        pthread_join(clients[i].thread, NULL);
        ok += clients[i].ok;
        busy += clients[i].busy;
        no_retry += clients[i].busy_without_retry;
        other += clients[i].other;
        if (clients[i].other) {
            other_status = clients[i].other_status;
            other_curl = clients[i].other_curl;
        }
    }
    print_message("storm: %u big renders 200, %u 503 (%u without Retry-After), %u other (last: "
                  "status %ld, curl %d)\n",
                  ok, busy, no_retry, other, other_status, other_curl);
    print_message("tiles: %u asked, %u not a good 200 (last status %ld), %u slower than 1 s, "
                  "worst %.0f ms\n",
                  tiles, tile_bad, bad_status, tile_slow, worst);
    assert_true(tu_server_alive(&server));
    assert_true(tiles >= 10);
    assert_int_equal(tile_bad, 0);
    assert_int_equal(tile_slow, 0);
    assert_int_equal(other, 0);
    assert_int_equal(no_retry, 0);
    assert_true(ok >= 1);
    assert_int_equal(tu_server_stop(&server), 0);
}

/* ---- the request deadline and SIGTERM during a render that runs for minutes ---- */

struct slow_fetch {
    const struct tu_server *s;
    long timeout_s;
    pthread_t thread;
    atomic_bool done;
    double millis;
    struct answer a;
};

static void *slow_fetch_main(void *arg)
{
    struct slow_fetch *f = arg;
    char url[256];
    snprintf(url, sizeof url, "%s%s", f->s->base, SLOW_URL);
    CURL *c = curl_easy_init();
    double t0 = tu_now_ms();
    if (c) {
        fetch(c, url, f->timeout_s, &f->a);
        curl_easy_cleanup(c);
    }
    f->millis = tu_now_ms() - t0;
    atomic_store(&f->done, true);
    return NULL;
}

static void test_request_deadline_answers_503_in_time(void **state)
{
    (void)state;
    need_slow_root();
    static const char *const extra[] = {"--request-deadline", "2", NULL};
    assert_int_equal(tu_server_start(&server, TESSERA_BIN, slow_root, extra), 0);
    long status;
    timed_get(&server, "/iiif/3/" SLOW_ID "/info.json", &status);
    assert_int_equal(status, 200);

    struct slow_fetch f = {.s = &server, .timeout_s = 10};
    slow_fetch_main(&f);
    const char *body = f.a.body.len ? (const char *)f.a.body.data : "";
    const char *nl = f.a.body.len ? memchr(body, '\n', f.a.body.len) : NULL;
    print_message("deadline 2 s: %ld (curl %d) after %.0f ms: %.*s\n", f.a.status, f.a.curl_code,
                  f.millis, (int)(f.a.body.len > 200 ? 200 : f.a.body.len), body);
    bool one_line = f.a.body.len > 0 && (!nl || nl == body + f.a.body.len - 1);
    ts_buf_free(&f.a.body);
    assert_int_equal(f.a.status, 503);
    assert_true(f.millis < 3000);
    assert_true(one_line);

    /* The render stopped soon after its answer (at its next check, a band or a few rows of the
     * decode away): the server is idle again, not still decoding. */
    tu_sleep_ms(2000);
    double c0 = cpu_seconds(server.pid);
    tu_sleep_ms(1000);
    double idle = cpu_seconds(server.pid) - c0;
    print_message("server CPU in the second after: %.2f s\n", idle);
    assert_true(idle < 0.3);
    timed_get(&server, "/health", &status);
    assert_int_equal(status, 200);
    assert_int_equal(tu_server_stop(&server), 0);
}

#define DRAIN_MS 10000
#define EXIT_SLACK_MS 2000

static void test_sigterm_stops_a_long_render_within_the_drain_time(void **state)
{
    (void)state;
    need_slow_root();
    static const char *const extra[] = {"--request-deadline", "120", NULL};
    assert_int_equal(tu_server_start(&server, TESSERA_BIN, slow_root, extra), 0);
    long status;
    timed_get(&server, "/iiif/3/" SLOW_ID "/info.json", &status);
    assert_int_equal(status, 200);

    struct slow_fetch f = {.s = &server, .timeout_s = 60};
    atomic_init(&f.done, false);
    double c0 = cpu_seconds(server.pid);
    assert_int_equal(pthread_create(&f.thread, NULL, slow_fetch_main, &f), 0);
    tu_sleep_ms(1000);
    double busy = cpu_seconds(server.pid) - c0;
    bool in_flight = !atomic_load(&f.done);

    double term_at = tu_now_ms();
    assert_int_equal(kill(server.pid, SIGTERM), 0);
    int st = 0;
    bool exited = false;
    while (tu_now_ms() - term_at < DRAIN_MS + EXIT_SLACK_MS) {
        pid_t r = waitpid(server.pid, &st, WNOHANG);
        if (r == server.pid) {
            exited = true;
            break;
        }
        tu_sleep_ms(20);
    }
    double took = tu_now_ms() - term_at;
    if (!exited) {
        kill(server.pid, SIGKILL);
        waitpid(server.pid, &st, 0);
    }
    server.reaped = true;
    server.wstatus = st;
    pthread_join(f.thread, NULL);
    print_message("render in flight at SIGTERM: %s (server CPU in its first second %.2f s); "
                  "server %s %.0f ms after SIGTERM, status %d; the client got %ld (curl %d)\n",
                  in_flight ? "yes" : "no", busy, exited ? "exited" : "was killed", took,
                  WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st), f.a.status, f.a.curl_code);
    ts_buf_free(&f.a.body);
    assert_true(in_flight);
    assert_true(busy >= 0.2);
    assert_true(exited);
    /* 0 only for a clean exit, and LeakSanitizer found nothing. */
    assert_int_equal(tu_server_stop(&server), 0);
}

/* ---- files replaced while they are served ---- */

static const uint8_t RED[3] = {255, 0, 0};
static const uint8_t BLUE[3] = {0, 0, 255};
#define SWAP_SIDE 512
#define COLOUR_TOLERANCE 40

enum colour { COLOUR_NONE, COLOUR_RED, COLOUR_BLUE };

/* The colour every pixel of img has (within a JPEG's tolerance), or COLOUR_NONE for a mix. */
static enum colour uniform_colour(const struct ts_image *img)
{
    enum colour found = COLOUR_NONE;
    for (uint32_t y = 0; y < img->height; y++) {
        for (uint32_t x = 0; x < img->width; x++) {
            enum colour c = COLOUR_NONE;
            if (tu_pixel_diff(img, x, y, RED) <= COLOUR_TOLERANCE)
                c = COLOUR_RED;
            else if (tu_pixel_diff(img, x, y, BLUE) <= COLOUR_TOLERANCE)
                c = COLOUR_BLUE;
            if (c == COLOUR_NONE || (found != COLOUR_NONE && c != found))
                return COLOUR_NONE;
            found = c;
        }
    }
    return found;
}

/* A solid red and a solid blue 512x512 JPEG, as bytes. */
static void make_swap_pair(const char *dir, struct ts_buf *a, struct ts_buf *b)
{
    char path[4096];
    struct ts_image img;
    join_path(path, sizeof path, dir, "a.src");
    solid_image(SWAP_SIDE, SWAP_SIDE, RED, &img);
    assert_int_equal(grid_write_jpeg(path, &img, 95), 0);
    ts_image_free(&img);
    assert_int_equal(tu_read_file(path, a), 0);
    unlink(path);
    join_path(path, sizeof path, dir, "b.src");
    solid_image(SWAP_SIDE, SWAP_SIDE, BLUE, &img);
    assert_int_equal(grid_write_jpeg(path, &img, 95), 0);
    ts_image_free(&img);
    assert_int_equal(tu_read_file(path, b), 0);
    unlink(path);
}

static const char *const swap_paths[] = {
    "/iiif/3/img.jpg/0,0,256,256/256,/0/default.jpg",
    "/iiif/3/img.jpg/256,0,256,256/256,/0/default.jpg",
    "/iiif/3/img.jpg/0,256,256,256/256,/0/default.jpg",
    "/iiif/3/img.jpg/256,256,256,256/256,/0/default.jpg",
    "/iiif/3/img.jpg/full/64,/0/default.png",
};
#define SWAP_PATHS (sizeof swap_paths / sizeof swap_paths[0])

/* One request's verdict: the colour it showed, or why it showed none. */
static enum colour swap_check(struct tu_client *c, const struct tu_server *s, unsigned i,
                              long *status)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", s->base, swap_paths[i % SWAP_PATHS]);
    struct tu_response r;
    int rc = tu_client_request(c, "GET", url, NULL, &r);
    *status = rc == 0 ? r.status : -1;
    enum colour col = COLOUR_NONE;
    struct ts_image img = {0};
    uint32_t want = i % SWAP_PATHS == SWAP_PATHS - 1 ? 64 : 256;
    if (*status == 200 && tu_decode_body(&r, &img) == 0 && img.width == want && img.height == want)
        col = uniform_colour(&img);
    ts_image_free(&img);
    tu_response_free(&r);
    return col;
}

struct swap_shared {
    const struct tu_server *s;
    const char *dir;
    const struct ts_buf *a, *b;
    atomic_bool stop;
    unsigned renames;
};

struct swap_reader {
    struct swap_shared *sh;
    pthread_t thread;
    unsigned requests, red, blue, mixed, server_errors, other;
    long last_bad_status;
    unsigned last_bad_path;
};

static void *swap_writer_main(void *arg)
{
    struct swap_shared *sh = arg;
    char tmp[4096], dst[4096];
    snprintf(tmp, sizeof tmp, "%s/.img.jpg.tmp", sh->dir);
    snprintf(dst, sizeof dst, "%s/img.jpg", sh->dir);
    unsigned seed = 12345;
    while (!atomic_load(&sh->stop)) {
        const struct ts_buf *src = rand_r(&seed) % 2 ? sh->a : sh->b;
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, src->data, src->len) != (ssize_t)src->len || close(fd) != 0 ||
            rename(tmp, dst) != 0) {
            fprintf(stderr, "swap writer: %s\n", strerror(errno));
            break;
        }
        sh->renames++;
        tu_sleep_ms(2);
    }
    return NULL;
}

static void *swap_reader_main(void *arg)
{
    struct swap_reader *rd = arg;
    struct tu_client c;
    if (tu_client_init(&c) != 0) {
        rd->other++;
        return NULL;
    }
    for (unsigned i = 0; !atomic_load(&rd->sh->stop); i++) {
        long status;
        enum colour col = swap_check(&c, rd->sh->s, i, &status);
        rd->requests++;
        if (status >= 500) {
            rd->server_errors++;
        } else if (status != 200) {
            rd->other++;
        } else if (col == COLOUR_RED) {
            rd->red++;
            continue;
        } else if (col == COLOUR_BLUE) {
            rd->blue++;
            continue;
        } else {
            rd->mixed++;
        }
        rd->last_bad_status = status;
        rd->last_bad_path = i % SWAP_PATHS;
    }
    tu_client_free(&c);
    return NULL;
}

#define SWAP_READERS 4

static unsigned rename_seconds(void)
{
    const char *v = getenv("TESSERA_RENAME_SECONDS");
    long n = v && *v ? strtol(v, NULL, 10) : 60;
    return n >= 1 && n <= 3600 ? (unsigned)n : 60;
}

static void test_rename_over_a_file_under_load_serves_one_file_or_the_other(void **state)
{
    (void)state;
    char dir[4096], img[4096];
    join_path(dir, sizeof dir, WORK, "rename");
    assert_int_equal(tu_mkdirs(dir), 0);
    struct ts_buf a = {0}, b = {0};
    make_swap_pair(dir, &a, &b);
    /* Different lengths, so that a recycled inode with the other picture never shows the
     * same size (the timestamps alone may repeat within one clock tick). */
    if (a.len == b.len)
        assert_int_equal(ts_buf_append(&b, "", 1), 0);
    join_path(img, sizeof img, dir, "img.jpg");
    write_bytes(img, a.data, a.len);
    assert_int_equal(tu_server_start(&server, TESSERA_BIN, dir, NULL), 0);

    /* Each picture alone first: the server shows what it is given. */
    struct tu_client c;
    assert_int_equal(tu_client_init(&c), 0);
    for (unsigned i = 0; i < SWAP_PATHS; i++) {
        long status;
        assert_int_equal(swap_check(&c, &server, i, &status), COLOUR_RED);
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", img);
    write_bytes(tmp, b.data, b.len);
    assert_int_equal(rename(tmp, img), 0);
    for (unsigned i = 0; i < SWAP_PATHS; i++) {
        long status;
        assert_int_equal(swap_check(&c, &server, i, &status), COLOUR_BLUE);
    }
    tu_client_free(&c);

    unsigned seconds = rename_seconds();
    struct swap_shared sh = {.s = &server, .dir = dir, .a = &a, .b = &b};
    atomic_init(&sh.stop, false);
    struct swap_reader readers[SWAP_READERS];
    pthread_t writer;
    assert_int_equal(pthread_create(&writer, NULL, swap_writer_main, &sh), 0);
    for (int i = 0; i < SWAP_READERS; i++) {
        readers[i] = (struct swap_reader){.sh = &sh};
        assert_int_equal(pthread_create(&readers[i].thread, NULL, swap_reader_main, &readers[i]),
                         0);
    }
    double end = tu_now_ms() + seconds * 1000.0;
    bool alive = true;
    while (alive && tu_now_ms() < end) {
        tu_sleep_ms(100);
        alive = tu_server_alive(&server);
    }
    atomic_store(&sh.stop, true);
    pthread_join(writer, NULL);
    struct swap_reader sum = {0};
    for (int i = 0; i < SWAP_READERS; i++) {
        pthread_join(readers[i].thread, NULL);
        sum.requests += readers[i].requests;
        sum.red += readers[i].red;
        sum.blue += readers[i].blue;
        sum.mixed += readers[i].mixed;
        sum.server_errors += readers[i].server_errors;
        sum.other += readers[i].other;
        if (readers[i].last_bad_status) {
            sum.last_bad_status = readers[i].last_bad_status;
            sum.last_bad_path = readers[i].last_bad_path;
        }
    }
    print_message("%u s, %u renames: %u requests, %u red, %u blue, %u neither or mixed, %u 5xx, "
                  "%u other (last bad: %ld on %s)\n",
                  seconds, sh.renames, sum.requests, sum.red, sum.blue, sum.mixed,
                  sum.server_errors, sum.other, sum.last_bad_status,
                  sum.last_bad_status ? swap_paths[sum.last_bad_path] : "-");
    ts_buf_free(&a);
    ts_buf_free(&b);
    assert_true(alive);
    assert_true(sh.renames >= 10);
    assert_true(sum.requests >= 10);
    assert_int_equal(sum.server_errors, 0);
    assert_int_equal(sum.other, 0);
    assert_int_equal(sum.mixed, 0);
    /* Both pictures were served: the renames reached the readers. */
    assert_true(sum.red > 0 && sum.blue > 0);
    assert_int_equal(tu_server_stop(&server), 0);
}

/* Rewriting a file in place keeps its inode; setting mtime back and keeping the length leaves
 * only ctime to tell the new pixels from the old. */
static void test_rewrite_in_place_with_same_size_and_mtime_serves_new_pixels(void **state)
{
    (void)state;
    char dir[4096], img[4096];
    join_path(dir, sizeof dir, WORK, "inplace");
    assert_int_equal(tu_mkdirs(dir), 0);
    struct ts_buf a = {0}, b = {0};
    make_swap_pair(dir, &a, &b);
    /* Same length: pad the shorter after its end-of-image marker, where decoders stop. */
    while (a.len < b.len)
        assert_int_equal(ts_buf_append(&a, "", 1), 0);
    while (b.len < a.len)
        assert_int_equal(ts_buf_append(&b, "", 1), 0);
    join_path(img, sizeof img, dir, "img.jpg");
    write_bytes(img, a.data, a.len);
    assert_int_equal(tu_server_start(&server, TESSERA_BIN, dir, NULL), 0);

    /* Asked twice, so every cache holds the red picture. */
    struct tu_client c;
    assert_int_equal(tu_client_init(&c), 0);
    long status;
    for (int round = 0; round < 2; round++)
        for (unsigned i = 0; i < SWAP_PATHS; i++)
            assert_int_equal(swap_check(&c, &server, i, &status), COLOUR_RED);
    struct stat before, after;
    assert_int_equal(stat(img, &before), 0);
    tu_sleep_ms(50); /* past a coarse clock tick, so the change time moves */

    int fd = open(img, O_WRONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, b.data, b.len, 0), (ssize_t)b.len);
    assert_int_equal(close(fd), 0);
    const struct timespec times[2] = {before.st_atim, before.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, img, times, 0), 0);
    assert_int_equal(stat(img, &after), 0);
    assert_true(after.st_ino == before.st_ino && after.st_dev == before.st_dev);
    assert_int_equal(after.st_size, before.st_size);
    assert_true(after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
                after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
    assert_true(after.st_ctim.tv_sec != before.st_ctim.tv_sec ||
                after.st_ctim.tv_nsec != before.st_ctim.tv_nsec);

    unsigned blue = 0;
    for (unsigned i = 0; i < SWAP_PATHS; i++) {
        enum colour col = swap_check(&c, &server, i, &status);
        print_message("after the rewrite %s: %ld %s\n", swap_paths[i], status,
                      col == COLOUR_BLUE  ? "blue (new)"
                      : col == COLOUR_RED ? "red (old)"
                                          : "neither");
        blue += col == COLOUR_BLUE;
    }
    tu_client_free(&c);
    ts_buf_free(&a);
    ts_buf_free(&b);
    assert_int_equal(blue, SWAP_PATHS);
    assert_int_equal(tu_server_stop(&server), 0);
}

int main(int argc, char **argv)
{
    /* The server inherits this: a leak at exit turns into a non-zero status the harness sees. */
    const char *old = getenv("ASAN_OPTIONS");
    char opts[1024];
    snprintf(opts, sizeof opts, "%s%sdetect_leaks=1", old ? old : "", old && *old ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    tu_http_init();
    if (argc > 1) /* a test name pattern, e.g. '*storm*' */
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_abandoned_renders_stop_and_cost_no_cpu,
                                  kill_leftover_server),
        cmocka_unit_test_teardown(test_tiles_flow_beside_a_storm_of_big_renders,
                                  kill_leftover_server),
        cmocka_unit_test_teardown(test_request_deadline_answers_503_in_time, kill_leftover_server),
        cmocka_unit_test_teardown(test_sigterm_stops_a_long_render_within_the_drain_time,
                                  kill_leftover_server),
        cmocka_unit_test_teardown(test_rewrite_in_place_with_same_size_and_mtime_serves_new_pixels,
                                  kill_leftover_server),
        cmocka_unit_test_teardown(test_rename_over_a_file_under_load_serves_one_file_or_the_other,
                                  kill_leftover_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
