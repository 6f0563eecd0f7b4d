/* Hardening under a real server: broken files, slow and oversized requests, admission, signals. */
#include "harness.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
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
#include <time.h>
#include <unistd.h>
#include <webp/encode.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#define WORK TESSERA_TEST_WORK
#define GRID_TILE "/iiif/3/grid.tif/0,0,256,256/256,/0/default.jpg"

static void join_path(char *out, size_t cap, const char *a, const char *b)
{
    int n = snprintf(out, cap, "%s/%s", a, b);
    assert_true(n > 0 && (size_t)n < cap);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len)
        assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* The grid root (made once, shared by the tests that need grid.tif). */
static char grid_root[4096];

static void need_grid_root(void)
{
    if (grid_root[0])
        return;
    join_path(grid_root, sizeof grid_root, WORK, "grid");
    assert_int_equal(tu_mkdirs(grid_root), 0);
    assert_int_equal(tu_make_http_root(grid_root), 0);
}

static void start_grid(struct tu_server *s, const char *const *extra)
{
    need_grid_root();
    assert_int_equal(tu_server_start(s, TESSERA_BIN, grid_root, extra), 0);
}

/* ---- broken and truncated files ---- */

static const size_t cut_lengths[] = {0, 1, 16, 100};

/* Writes name's first 0, 1, 16, 100 bytes and half of it as cut<N>-name into dir. */
static unsigned write_cuts(const char *dir, const char *name, const struct ts_buf *data)
{
    char path[4096], base[1024];
    unsigned n = 0;
    for (size_t i = 0; i <= sizeof cut_lengths / sizeof cut_lengths[0]; i++) {
        bool half = i == sizeof cut_lengths / sizeof cut_lengths[0];
        size_t len = half ? data->len / 2 : cut_lengths[i];
        if (len > data->len)
            continue;
        if (half)
            snprintf(base, sizeof base, "cuthalf-%s", name);
        else
            snprintf(base, sizeof base, "cut%zu-%s", len, name);
        join_path(path, sizeof path, dir, base);
        write_file(path, data->data, len);
        n++;
    }
    return n;
}

static unsigned cut_file(const char *dir, const char *src, const char *name)
{
    struct ts_buf data = {0};
    assert_int_equal(tu_read_file(src, &data), 0);
    unsigned n = write_cuts(dir, name, &data);
    ts_buf_free(&data);
    return n;
}

/* Regular files of src_dir whose name starts with prefix (NULL: all but SOURCES.md). */
static unsigned cut_dir(const char *dir, const char *src_dir, bool copy_whole, const char *prefix)
{
    DIR *d = opendir(src_dir);
    assert_non_null(d);
    unsigned n = 0;
    struct dirent *e;
    char src[4096], dst[4096];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "SOURCES.md"))
            continue;
        if (prefix && strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        join_path(src, sizeof src, src_dir, e->d_name);
        struct stat st;
        if (stat(src, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (copy_whole) {
            struct ts_buf data = {0};
            assert_int_equal(tu_read_file(src, &data), 0);
            join_path(dst, sizeof dst, dir, e->d_name);
            write_file(dst, data.data, data.len);
            ts_buf_free(&data);
            n++;
        } else {
            n += cut_file(dir, src, e->d_name);
        }
    }
    closedir(d);
    return n;
}

/* libwebp directly: tests/data holds no WebP, and the reader must meet truncated ones too. */
static unsigned cut_webp(const char *dir)
{
    enum { W = 300, H = 200 };
    static uint8_t rgb[W * H * 3];
    for (size_t i = 0; i < sizeof rgb; i++)
        rgb[i] = (uint8_t)(i * 7 + i / (W * 3));
    uint8_t *out = NULL;
    size_t len = WebPEncodeRGB(rgb, W, H, W * 3, 80, &out);
    assert_true(len > 100);
    struct ts_buf data = {.data = out, .len = len, .cap = len};
    unsigned n = write_cuts(dir, "made.webp", &data);
    WebPFree(out);
    return n;
}

struct broken_stats {
    unsigned files, requests, ok, client_err, server_err;
};

static void check_broken_answer(const char *what, const struct tu_response *r, int kind,
                                struct broken_stats *st)
{
    st->requests++;
    if (r->status == 200) {
        /* A 200 must be a real answer: the file was readable after all. */
        st->ok++;
        if (kind == 0) {
            json_error_t jerr;
            json_t *info = json_loadb((const char *)r->body.data, r->body.len, 0, &jerr);
            if (!info || json_integer_value(json_object_get(info, "width")) <= 0)
                fail_msg("%s: 200 without a usable info.json", what);
            json_decref(info);
        } else {
            struct ts_image img;
            if (tu_decode_body(r, &img) != 0)
                fail_msg("%s: 200 with a body that does not decode", what);
            if (kind == 1 && img.width != 200)
                fail_msg("%s: full/200, answered %u wide", what, img.width);
            if (kind == 2 && (img.width == 0 || img.width > 256))
                fail_msg("%s: tile answered %u wide", what, img.width);
            ts_image_free(&img);
        }
    } else if (r->status >= 400 && r->status < 500) {
        st->client_err++;
    } else if (r->status >= 500 && r->status < 600) {
        st->server_err++;
        if (r->status != 500 && r->status != 501 && r->status != 503)
            fail_msg("%s: unexpected %ld", what, r->status);
    } else {
        fail_msg("%s: status %ld", what, r->status);
    }
    /* Errors explain themselves in one line. */
    if (r->status >= 400 && r->body.len == 0)
        fail_msg("%s: %ld with an empty body", what, r->status);
}

static void test_broken_and_truncated_files_get_clean_answers(void **state)
{
    (void)state;
    char dir[4096], src[4096];
    join_path(dir, sizeof dir, WORK, "broken");
    /* Start empty: the file count below is checked. */
    assert_int_equal(system("rm -rf '" WORK "/broken'"), 0);
    assert_int_equal(tu_mkdirs(dir), 0);
    need_grid_root();

    unsigned files = cut_dir(dir, TESSERA_TEST_DATA "/checkit-tiff", true, "fail_");
    files += cut_dir(dir, TESSERA_TEST_DATA, false, NULL);
    /* Every input that ever crashed a fuzz target, whole: the server must answer them too. */
    files += cut_dir(dir, TESSERA_TEST_DATA "/../fuzz/corpus/reader", true, "regression-");
    static const char *const grid_files[] = {"grid.tif", "grid-subifd.tif", "grid.png",
                                             "grid.jpg", "grid.jp2",        "grid-htj2k.j2c"};
    for (size_t i = 0; i < sizeof grid_files / sizeof grid_files[0]; i++) {
        join_path(src, sizeof src, grid_root, grid_files[i]);
        files += cut_file(dir, src, grid_files[i]);
    }
    files += cut_webp(dir);
    assert_true(files > 100);

    struct tu_server s;
    assert_int_equal(tu_server_start(&s, TESSERA_BIN, dir, NULL), 0);
    struct tu_client c;
    assert_int_equal(tu_client_init(&c), 0);
    static const char *const tails[] = {"info.json", "full/200,/0/default.jpg",
                                        "full/48,/0/default.jpg", "0,0,256,256/256,/0/default.jpg"};
    struct broken_stats st = {0};
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    char url[8192];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        st.files++;
        for (int k = 0; k < 3; k++) {
            snprintf(url, sizeof url, "%s/iiif/3/%s/%s", s.base, e->d_name, tails[k]);
            struct tu_response r;
            int rc = tu_client_request(&c, "GET", url, NULL, &r);
            if (rc != 0) {
                tu_response_free(&r);
                tu_client_free(&c);
                closedir(d);
                fail_msg("%s: no answer (server alive: %d)", url, (int)tu_server_alive(&s));
            }
            check_broken_answer(url, &r, k, &st);
            tu_response_free(&r);
        }
        if (!tu_server_alive(&s))
            fail_msg("server died after %s", e->d_name);
    }
    closedir(d);
    tu_client_free(&c);
    print_message("broken files: %u files, %u requests: %u ok, %u 4xx, %u 5xx\n", st.files,
                  st.requests, st.ok, st.client_err, st.server_err);
    assert_int_equal(st.files, files);
    /* Nothing here is a whole, valid image except by accident: most must be refused. */
    assert_true(st.client_err + st.server_err > st.requests / 2);
    /* A clean exit also means LeakSanitizer found nothing in the server. */
    assert_int_equal(tu_server_stop(&s), 0);
}

/* ---- slow and oversized requests ---- */

static int connect_loopback(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
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

/* True once the peer closed (EOF or reset); never blocks. */
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

#define SLOW_CONNS 50

static void test_slow_partial_requests_are_closed_while_others_are_served(void **state)
{
    (void)state;
    static const char *const extra[] = {"--connection-timeout", "2", NULL};
    struct tu_server s;
    start_grid(&s, extra);
    long status;
    timed_get(&s, GRID_TILE, &status); /* warm the reader so timings measure waiting only */
    assert_int_equal(status, 200);

    int fds[SLOW_CONNS];
    for (int i = 0; i < SLOW_CONNS; i++) {
        fds[i] = connect_loopback(s.port);
        assert_true(fds[i] >= 0);
    }
    /* A request line that never ends, sent a few bytes at a time. */
    static const char line[] = "GET /iiif/3/grid.tif/info.json HT";
    double worst = 0;
    double last_send = 0;
    for (size_t off = 0; off < sizeof line - 1; off += 8) {
        size_t n = sizeof line - 1 - off < 8 ? sizeof line - 1 - off : 8;
        for (int i = 0; i < SLOW_CONNS; i++)
            assert_int_equal(send(fds[i], line + off, n, MSG_NOSIGNAL), (ssize_t)n);
        last_send = tu_now_ms();
        double dt = timed_get(&s, GRID_TILE, &status);
        assert_int_equal(status, 200);
        worst = dt > worst ? dt : worst;
        tu_sleep_ms(200);
    }
    print_message("slow clients: normal request took at most %.0f ms\n", worst);
    assert_true(worst < 1000);

    bool closed[SLOW_CONNS] = {false};
    int open = SLOW_CONNS;
    double closed_at = 0;
    while (open > 0 && tu_now_ms() - last_send < 4000) {
        for (int i = 0; i < SLOW_CONNS; i++)
            if (!closed[i] && peer_closed(fds[i])) {
                closed[i] = true;
                open--;
                closed_at = tu_now_ms();
            }
        tu_sleep_ms(20);
    }
    for (int i = 0; i < SLOW_CONNS; i++)
        close(fds[i]);
    print_message("slow clients: %d of %d still open; last closed %.0f ms after its last byte\n",
                  open, SLOW_CONNS, closed_at - last_send);
    assert_int_equal(open, 0);
    assert_true(closed_at - last_send < 3500);
    double dt = timed_get(&s, GRID_TILE, &status);
    assert_int_equal(status, 200);
    assert_true(dt < 1000);
    assert_int_equal(tu_server_stop(&s), 0);
}

static bool status_in(long status, const long *allowed, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (status == allowed[i])
            return true;
    return false;
}

static void test_oversized_url_and_header_are_refused(void **state)
{
    (void)state;
    struct tu_server s;
    start_grid(&s, NULL);
    enum { BIG = 100 * 1024 };
    struct ts_buf big = {0};
    assert_int_equal(ts_buf_appendf(&big, "%s/iiif/3/", s.base), 0);
    for (size_t i = 0; i < BIG; i++)
        assert_int_equal(ts_buf_append(&big, "a", 1), 0);
    assert_int_equal(ts_buf_appendf(&big, "/info.json"), 0);
    assert_int_equal(ts_buf_append(&big, "", 1), 0);
    struct tu_response r;
    tu_request("GET", (const char *)big.data, NULL, &r);
    static const long url_ok[] = {414, 431, 400, 413};
    print_message("100 KB URL: %ld\n", r.status);
    assert_true(status_in(r.status, url_ok, 4));
    tu_response_free(&r);

    big.len = 0;
    assert_int_equal(ts_buf_appendf(&big, "X-Filler: "), 0);
    for (size_t i = 0; i < BIG; i++)
        assert_int_equal(ts_buf_append(&big, "b", 1), 0);
    assert_int_equal(ts_buf_append(&big, "", 1), 0);
    const char *headers[] = {(const char *)big.data, NULL};
    char url[256];
    snprintf(url, sizeof url, "%s/iiif/3/grid.tif/info.json", s.base);
    tu_request("GET", url, headers, &r);
    static const long header_ok[] = {431, 413, 400, 414};
    print_message("100 KB header: %ld\n", r.status);
    assert_true(status_in(r.status, header_ok, 4));
    tu_response_free(&r);
    ts_buf_free(&big);

    assert_true(tu_server_alive(&s));
    long status;
    timed_get(&s, GRID_TILE, &status);
    assert_int_equal(status, 200);
    assert_int_equal(tu_server_stop(&s), 0);
}

/* ---- admission ---- */

static void expect_413_with_reason(const struct tu_server *s, const char *path)
{
    struct tu_response r;
    assert_int_equal(tu_get(s, path, &r), 0);
    print_message("%s -> %ld %s", path, r.status, (const char *)r.body.data);
    assert_int_equal(r.status, 413);
    /* The reason names the budget, so a client knows what to change. */
    assert_non_null(strstr((const char *)r.body.data, "MB"));
    tu_response_free(&r);
}

static void test_request_over_memory_budget_is_413_with_reason(void **state)
{
    (void)state;
    static const char *const extra[] = {"--request-memory", "64", NULL};
    struct tu_server s;
    start_grid(&s, extra);
    expect_413_with_reason(&s, "/iiif/3/grid.tif/full/^5000,/0/default.png");
    long status;
    timed_get(&s, "/iiif/3/grid.tif/full/^1000,/0/default.png", &status);
    assert_int_equal(status, 200);
    assert_int_equal(tu_server_stop(&s), 0);
}

static void test_request_over_total_render_memory_is_413(void **state)
{
    (void)state;
    /* A render larger than everything heavy renders may share can never be admitted. */
    static const char *const extra[] = {"--render-memory", "200", NULL};
    struct tu_server s;
    start_grid(&s, extra);
    expect_413_with_reason(&s, "/iiif/3/grid.tif/full/^5000,/0/default.png");
    assert_int_equal(tu_server_stop(&s), 0);
}

struct fetch {
    const struct tu_server *s;
    const char *path;
    struct tu_response r;
    double started, millis;
    pthread_t thread;
};

static void *fetch_main(void *arg)
{
    struct fetch *f = arg;
    f->started = tu_now_ms();
    tu_get(f->s, f->path, &f->r);
    f->millis = tu_now_ms() - f->started;
    return NULL;
}

#define BIG_RENDER "/iiif/3/grid.tif/full/^2500,/0/default.png"

static void test_heavy_renders_are_bounded_while_tiles_flow(void **state)
{
    (void)state;
    static const char *const extra[] = {"--heavy-renders",
                                        "1",
                                        "--heavy-queue",
                                        "0",
                                        "--render-memory",
                                        "200",
                                        "--workers",
                                        "8",
                                        NULL};
    struct tu_server s;
    start_grid(&s, extra);
    long status;
    timed_get(&s, GRID_TILE, &status);
    assert_int_equal(status, 200);

    enum { BIGS = 4, TILES = 6 };
    static const char *const tiles[TILES] = {"/iiif/3/grid.tif/256,0,256,256/256,/0/default.jpg",
                                             "/iiif/3/grid.tif/512,0,256,256/256,/0/default.jpg",
                                             "/iiif/3/grid.tif/0,256,256,256/256,/0/default.jpg",
                                             "/iiif/3/grid.tif/256,256,256,256/256,/0/default.jpg",
                                             "/iiif/3/grid.tif/0,0,512,512/256,/0/default.jpg",
                                             "/iiif/3/grid.tif/full/128,/0/default.jpg"};
    struct fetch bigs[BIGS], tile[TILES];
    for (int i = 0; i < BIGS; i++) {
        bigs[i] = (struct fetch){.s = &s, .path = BIG_RENDER};
        assert_int_equal(pthread_create(&bigs[i].thread, NULL, fetch_main, &bigs[i]), 0);
    }
    tu_sleep_ms(50);
    for (int i = 0; i < TILES; i++) {
        tile[i] = (struct fetch){.s = &s, .path = tiles[i]};
        assert_int_equal(pthread_create(&tile[i].thread, NULL, fetch_main, &tile[i]), 0);
    }
    for (int i = 0; i < TILES; i++)
        pthread_join(tile[i].thread, NULL);
    double tiles_done = tu_now_ms();
    for (int i = 0; i < BIGS; i++)
        pthread_join(bigs[i].thread, NULL);

    int ok = 0, busy = 0;
    double big_end = 0;
    for (int i = 0; i < BIGS; i++) {
        if (bigs[i].r.status == 200) {
            ok++;
            big_end = bigs[i].started + bigs[i].millis;
        } else if (bigs[i].r.status == 503) {
            busy++;
            char retry[32];
            assert_true(tu_header(&bigs[i].r, "Retry-After", 0, retry, sizeof retry));
            assert_true(atoi(retry) > 0);
        }
        tu_response_free(&bigs[i].r);
    }
    double worst = 0;
    for (int i = 0; i < TILES; i++) {
        assert_int_equal(tile[i].r.status, 200);
        worst = tile[i].millis > worst ? tile[i].millis : worst;
        tu_response_free(&tile[i].r);
    }
    print_message("4 big renders: %d x 200, %d x 503; tiles at most %.0f ms, done %.0f ms "
                  "before the big render\n",
                  ok, busy, worst, big_end - tiles_done);
    assert_int_equal(ok + busy, BIGS);
    assert_true(ok >= 1);
    assert_true(busy >= 1);
    assert_true(worst < 1000);
    assert_int_equal(tu_server_stop(&s), 0);
}

/* ---- signals ---- */

static void test_sigterm_lets_an_inflight_render_finish_then_exits_zero(void **state)
{
    (void)state;
    struct tu_server s;
    start_grid(&s, NULL);
    /* The signal must land while the render runs, however fast this machine renders: time a
     * render of nearly the same size first (another URL, so no cache answers it), then signal
     * a third of that time into the real one. */
    struct fetch probe = {.s = &s, .path = "/iiif/3/grid.tif/full/^2499,/0/default.png"};
    fetch_main(&probe);
    assert_int_equal(probe.r.status, 200);
    tu_response_free(&probe.r);
    struct fetch big = {.s = &s, .path = "/iiif/3/grid.tif/full/^2500,/0/default.png"};
    assert_int_equal(pthread_create(&big.thread, NULL, fetch_main, &big), 0);
    tu_sleep_ms((long)(probe.millis / 3) + 1);
    double term_at = tu_now_ms();
    assert_int_equal(kill(s.pid, SIGTERM), 0);
    pthread_join(big.thread, NULL);
    print_message("render answered %.0f ms after SIGTERM\n", big.started + big.millis - term_at);
    assert_int_equal(big.r.status, 200);
    /* It was in flight when the signal came, and its answer is complete. */
    assert_true(big.started + big.millis > term_at);
    struct ts_image img;
    assert_int_equal(tu_decode_body(&big.r, &img), 0);
    assert_int_equal(img.width, 2500);
    assert_int_equal(img.height, 2500);
    ts_image_free(&img);
    tu_response_free(&big.r);
    assert_int_equal(tu_server_stop(&s), 0);
}

static size_t count_lines(const char *path)
{
    struct ts_buf data = {0};
    if (tu_read_file(path, &data) != 0)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < data.len; i++)
        n += data.data[i] == '\n';
    ts_buf_free(&data);
    return n;
}

static void test_sighup_reopens_a_renamed_access_log(void **state)
{
    (void)state;
    char log[4096], moved[4096];
    join_path(log, sizeof log, WORK, "access.log");
    join_path(moved, sizeof moved, WORK, "access.log.1");
    unlink(log);
    unlink(moved);
    const char *extra[] = {"--access-log", log, NULL};
    struct tu_server s;
    start_grid(&s, extra);
    long status;
    timed_get(&s, "/iiif/3/grid.tif/info.json", &status);
    assert_int_equal(status, 200);
    timed_get(&s, GRID_TILE, &status);
    assert_int_equal(status, 200);
    assert_int_equal(count_lines(log), 2);

    assert_int_equal(rename(log, moved), 0);
    assert_int_equal(kill(s.pid, SIGHUP), 0);
    struct stat st;
    for (int i = 0; i < 100 && stat(log, &st) != 0; i++)
        tu_sleep_ms(20);
    assert_int_equal(stat(log, &st), 0);
    timed_get(&s, "/iiif/3/grid.tif/full/100,/0/default.jpg", &status);
    assert_int_equal(status, 200);
    assert_true(tu_server_alive(&s));
    assert_int_equal(count_lines(moved), 2);
    assert_int_equal(count_lines(log), 1);
    struct ts_buf data = {0};
    assert_int_equal(tu_read_file(log, &data), 0);
    assert_int_equal(ts_buf_append(&data, "", 1), 0);
    assert_non_null(strstr((const char *)data.data, "/full/100,/0/default.jpg"));
    ts_buf_free(&data);
    assert_int_equal(tu_server_stop(&s), 0);
}

int main(void)
{
    /* The server inherits this: a leak at exit turns into a non-zero status the harness sees. */
    const char *old = getenv("ASAN_OPTIONS");
    char opts[1024];
    snprintf(opts, sizeof opts, "%s%sdetect_leaks=1", old ? old : "", old && *old ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    tu_http_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broken_and_truncated_files_get_clean_answers),
        cmocka_unit_test(test_slow_partial_requests_are_closed_while_others_are_served),
        cmocka_unit_test(test_oversized_url_and_header_are_refused),
        cmocka_unit_test(test_request_over_memory_budget_is_413_with_reason),
        cmocka_unit_test(test_request_over_total_render_memory_is_413),
        cmocka_unit_test(test_heavy_renders_are_bounded_while_tiles_flow),
        cmocka_unit_test(test_sigterm_lets_an_inflight_render_finish_then_exits_zero),
        cmocka_unit_test(test_sighup_reopens_a_renamed_access_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
