/* Regressions the one request path must fix: broken images, long queries, dates, ports, cache. */
#include "harness.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#define WORK TESSERA_TEST_WORK
#define GOOD_SOURCE TESSERA_TEST_DATA "/retina-pyr-jpeg-256.tif"
#define JPEG_SOURCE TESSERA_TEST_DATA "/retina-1411x1411.jpg"

static void join_path(char *out, size_t cap, const char *a, const char *b)
{
    int n = snprintf(out, cap, "%s/%s", a, b);
    assert_true(n > 0 && (size_t)n < cap);
}

static void write_whole(const char *dir, const char *name, const void *data, size_t len)
{
    char path[4096];
    join_path(path, sizeof path, dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len)
        assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Points every TileOffsets entry of a little-endian classic TIFF far past the end of the file:
 * the directories stay readable (the image opens) but no tile can be read. */
static void move_tiles_past_end(struct ts_buf *tif)
{
    const uint8_t *d = tif->data;
    assert_true(tif->len > 8 && d[0] == 'I' && d[1] == 'I' && d[2] == 42);
    uint32_t ifd = le32(d + 4);
    unsigned moved = 0;
    for (int dirs = 0; ifd != 0 && dirs < 64; dirs++) {
        assert_true((size_t)ifd + 2 <= tif->len);
        unsigned n = (unsigned)d[ifd] | (unsigned)d[ifd + 1] << 8;
        assert_true((size_t)ifd + 2 + 12u * n + 4 <= tif->len);
        for (unsigned i = 0; i < n; i++) {
            uint8_t *e = tif->data + ifd + 2 + 12 * i;
            unsigned tag = (unsigned)e[0] | (unsigned)e[1] << 8;
            unsigned type = (unsigned)e[2] | (unsigned)e[3] << 8;
            uint32_t count = le32(e + 4);
            if (tag != 324 || type != 4) /* TileOffsets as LONG */
                continue;
            uint8_t *v = count == 1 ? e + 8 : tif->data + le32(e + 8);
            assert_true(count == 1 || (size_t)le32(e + 8) + 4ull * count <= tif->len);
            for (uint32_t k = 0; k < count; k++)
                put_le32(v + 4 * k, le32(v + 4 * k) + 0x40000000u);
            moved += count;
        }
        ifd = le32(d + ifd + 2 + 12 * n);
    }
    assert_true(moved > 0);
}

/* A fresh root under WORK/name holding good.tif and four broken files:
 * corrupt.tif     the first 600 bytes of good.tif (header and directory cut short),
 * garbage.tif     a valid little-endian TIFF header pointing at noise,
 * badtiles.tif    good.tif with every tile offset past the end of the file (opens, never renders),
 * truncated.jpg   a baseline JPEG cut inside its entropy-coded data. */
static void make_root(const char *name, char *root, size_t cap)
{
    join_path(root, cap, WORK, name);
    char cmd[8192];
    int n = snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    assert_true(n > 0 && (size_t)n < sizeof cmd);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(tu_mkdirs(root), 0);

    struct ts_buf tif = {0};
    assert_int_equal(tu_read_file(GOOD_SOURCE, &tif), 0);
    assert_true(tif.len > 600);
    write_whole(root, "good.tif", tif.data, tif.len);
    write_whole(root, "corrupt.tif", tif.data, 600);
    ts_buf_free(&tif);

    uint8_t garbage[4096] = {'I', 'I', 42, 0, 8, 0, 0, 0};
    uint32_t x = 2463534242u;
    for (size_t i = 8; i < sizeof garbage; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        garbage[i] = (uint8_t)x;
    }
    write_whole(root, "garbage.tif", garbage, sizeof garbage);

    struct ts_buf bad = {0};
    assert_int_equal(tu_read_file(GOOD_SOURCE, &bad), 0);
    move_tiles_past_end(&bad);
    write_whole(root, "badtiles.tif", bad.data, bad.len);
    ts_buf_free(&bad);

    struct ts_buf jpg = {0};
    assert_int_equal(tu_read_file(JPEG_SOURCE, &jpg), 0);
    write_whole(root, "truncated.jpg", jpg.data, jpg.len / 3);
    ts_buf_free(&jpg);
}

/* Servers live here, not on a test's stack, so the teardown can stop whatever a failed
 * assertion left running. */
static struct tu_server servers[2];
static pid_t second_pid = -1;
/* Long paths and URLs, freed by the teardown too. */
static struct ts_buf scratch;

static struct tu_server *start_on(int slot, const char *root, const char *const *extra)
{
    struct tu_server *s = &servers[slot];
    assert_int_equal(tu_server_start(s, TESSERA_BIN, root, extra), 0);
    return s;
}

static int stop_pid(pid_t pid);

static int stop_leftovers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof servers / sizeof servers[0]; i++)
        if (servers[i].pid > 0)
            tu_server_stop(&servers[i]);
    if (second_pid > 0)
        stop_pid(second_pid);
    second_pid = -1;
    ts_buf_free(&scratch);
    return 0;
}

/* GET base+path; fails the test when no HTTP answer arrived within the harness's 10 s. */
static void get_ok(const struct tu_server *s, const char *path, struct tu_response *r)
{
    int rc = tu_get(s, path, r);
    if (rc != 0)
        fail_msg("GET %.200s: no HTTP answer (curl code %d)", path, r->curl_code);
}

static bool is_jpeg(const struct tu_response *r)
{
    return r->body.len > 3 && r->body.data[0] == 0xFF && r->body.data[1] == 0xD8;
}

static bool is_png(const struct tu_response *r)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    return r->body.len > sizeof sig && memcmp(r->body.data, sig, sizeof sig) == 0;
}

static uint32_t decoded_width(const struct tu_response *r)
{
    struct ts_image img;
    if (tu_decode_body(r, &img) != 0)
        return 0;
    uint32_t w = img.width;
    ts_image_free(&img);
    return w;
}

/* ---- a. broken images must not drain the reader pool or close a reader twice ---- */

#define READER_POOL 4

/* The six requests, in this order, for each broken file. */
static const char *const broken_paths[] = {
    "/manifest/%s",         "/browse/",
    "/iiif/3/%s/info.json", "/iiif/3/%s/full/64,/0/default.jpg",
    "/?FIF=%s&JTL=0,0",     "/?FIF=%s&OBJ=Max-size",
};
#define N_BROKEN_PATHS (sizeof broken_paths / sizeof broken_paths[0])

/* A viewer asks for tiles between everything else: a tile that renders leaves its reader in
 * the pool, so the next request leases that reader rather than opening a fresh one. */
#define WARM_TILE "/iiif/3/%s/0,0,256,256/256,/0/default.jpg"

/* What each request must answer (ANY: 200 or 500). Files that open but cannot be decoded
 * describe themselves (manifest, info.json, OBJ) and fail only where pixels are needed. */
#define ANY 0
static const struct {
    const char *id;
    long tile;
    long status[N_BROKEN_PATHS];
} broken_files[] = {
    {"corrupt.tif", 500, {500, 200, 500, 500, 500, 500}},
    {"garbage.tif", 500, {500, 200, 500, 500, 500, 500}},
    {"badtiles.tif", 500, {200, 200, 200, 500, 500, 200}},
    /* Its first third is there: the top-left tile decodes, so its reader goes to the pool. */
    {"truncated.jpg", ANY, {200, 200, 200, 500, 500, 200}},
};

/* An error answer is plain text on one line: "500 Internal Server Error: why". */
static void expect_one_line_reason(const char *what, const struct tu_response *r)
{
    char type[256] = "";
    tu_header(r, "Content-Type", 0, type, sizeof type);
    if (strncmp(type, "text/plain", 10) != 0)
        fail_msg("%s: %ld as '%s', not text/plain", what, r->status, type);
    const char *body = (const char *)r->body.data;
    size_t len = r->body.len;
    if (len < 2)
        fail_msg("%s: %ld with an empty reason", what, r->status);
    const char *nl = memchr(body, '\n', len);
    if (nl && (size_t)(nl - body) != len - 1)
        fail_msg("%s: reason spans several lines: %s", what, body);
}

static void request_expecting(struct tu_server *s, const char *path, long want)
{
    struct tu_response r;
    double t0 = tu_now_ms();
    int rc = tu_get(s, path, &r);
    double dt = tu_now_ms() - t0;
    long status = r.status;
    if (rc != 0) {
        int curl_code = r.curl_code;
        tu_response_free(&r);
        fail_msg("GET %s: no HTTP answer after %.0f ms (curl code %d, server alive: %d)", path, dt,
                 curl_code, (int)tu_server_alive(s));
    }
    bool ok = want == ANY ? status == 200 || status == 500 : status == want;
    if (!ok) {
        char body[300];
        snprintf(body, sizeof body, "%s", r.body.data ? (const char *)r.body.data : "");
        tu_response_free(&r);
        fail_msg("GET %s: %ld (%.0f ms), expected %ld: %s", path, status, dt, want, body);
    }
    if (status >= 400)
        expect_one_line_reason(path, &r);
    tu_response_free(&r);
}

static void test_corrupt_image_does_not_drain_the_reader_pool_or_double_close(void **state)
{
    (void)state;
    char root[4096];
    make_root("pool", root, sizeof root);
    static const char *const extra[] = {"--reader-cache", "4", NULL};
    struct tu_server *s = start_on(0, root, extra);

    char path[512], tile[512];
    for (size_t f = 0; f < sizeof broken_files / sizeof broken_files[0]; f++) {
        const char *id = broken_files[f].id;
        snprintf(tile, sizeof tile, WARM_TILE, id);
        for (int round = 0; round < 3 * READER_POOL; round++) {
            for (size_t i = 0; i < N_BROKEN_PATHS; i++) {
                request_expecting(s, tile, broken_files[f].tile);
                snprintf(path, sizeof path, broken_paths[i], id);
                request_expecting(s, path, broken_files[f].status[i]);
            }
        }
        print_message("%s: %d requests answered as expected\n", id,
                      3 * READER_POOL * 2 * (int)N_BROKEN_PATHS);
        if (!tu_server_alive(s))
            fail_msg("the server died after the requests for %s", id);
    }

    /* Describing a good image must give its reader back too. */
    for (int round = 0; round < 3 * READER_POOL; round++) {
        request_expecting(s, "/iiif/3/good.tif/0,0,256,256/256,/0/default.jpg", 200);
        request_expecting(s, "/manifest/good.tif", 200);
    }

    /* Every lease the failures took must have come back: a good image still gets a reader. */
    struct tu_response r;
    get_ok(s, "/iiif/3/good.tif/full/128,/0/default.jpg", &r);
    assert_int_equal(r.status, 200);
    assert_true(is_jpeg(&r));
    assert_int_equal(decoded_width(&r), 128);
    tu_response_free(&r);
    get_ok(s, "/?FIF=good.tif&JTL=0,0", &r);
    assert_int_equal(r.status, 200);
    assert_true(is_jpeg(&r));
    assert_true(decoded_width(&r) > 0);
    tu_response_free(&r);

    /* A reader closed twice or used after it was freed shows up at shutdown under ASan. */
    assert_int_equal(tu_server_stop(s), 0);
}

/* ---- b. long IIP queries that differ only at the end ---- */

/* What a client sees of one answer, kept after the response itself is freed. */
struct answer {
    int curl_code;
    long status;
    char type[128];
    char etag[128];
    bool jpeg, png;
    uint32_t width; /* decoded, 0 when the body is no image */
};

static void fetch_answer(const struct tu_server *s, const char *path, struct answer *a)
{
    memset(a, 0, sizeof *a);
    struct tu_response r;
    tu_get(s, path, &r);
    a->curl_code = r.curl_code;
    a->status = r.status;
    tu_header(&r, "Content-Type", 0, a->type, sizeof a->type);
    tu_header(&r, "ETag", 0, a->etag, sizeof a->etag);
    a->jpeg = is_jpeg(&r);
    a->png = is_png(&r);
    a->width = a->jpeg || a->png ? decoded_width(&r) : 0;
    tu_response_free(&r);
}

/* "/?" + head + harmless SDS commands until the query passes min_len bytes + tail. */
static void long_iip_path(struct ts_buf *out, const char *head, size_t min_len, const char *tail)
{
    out->len = 0;
    assert_int_equal(ts_buf_appendf(out, "/?%s", head), 0);
    while (out->len - 2 + strlen(tail) <= min_len)
        assert_int_equal(ts_buf_appendf(out, "SDS=0,90&"), 0);
    assert_int_equal(ts_buf_appendf(out, "%s", tail), 0);
}

static void expect_image(const char *what, const struct answer *a, const char *type, bool ok_magic)
{
    print_message("%s: status %ld (curl code %d), %s, ETag %s, %u px wide\n", what, a->status,
                  a->curl_code, a->type, a->etag, a->width);
    assert_int_equal(a->curl_code, 0);
    assert_int_equal(a->status, 200);
    assert_string_equal(a->type, type);
    assert_true(ok_magic);
    assert_int_equal(a->width, 200);
    assert_true(a->etag[0] != '\0');
}

static void test_long_iip_queries_differing_only_in_cvt_get_different_answers(void **state)
{
    (void)state;
    char root[4096];
    make_root("cvt", root, sizeof root);
    struct tu_server *s = start_on(0, root, NULL);

    struct answer jpg, png, again;
    long_iip_path(&scratch, "FIF=good.tif&WID=200&", 8500, "CVT=jpeg");
    assert_true(scratch.len - 2 > 8500); /* the query alone, after "/?" */
    fetch_answer(s, (const char *)scratch.data, &jpg);
    expect_image("long query, CVT=jpeg", &jpg, "image/jpeg", jpg.jpeg);

    long_iip_path(&scratch, "FIF=good.tif&WID=200&", 8500, "CVT=png");
    fetch_answer(s, (const char *)scratch.data, &png);
    expect_image("long query, CVT=png", &png, "image/png", png.png);
    assert_string_not_equal(jpg.etag, png.etag);

    /* The same long query twice is the same representation. */
    long_iip_path(&scratch, "FIF=good.tif&WID=200&", 8500, "CVT=jpeg");
    fetch_answer(s, (const char *)scratch.data, &again);
    expect_image("long query, CVT=jpeg again", &again, "image/jpeg", again.jpeg);
    assert_string_equal(jpg.etag, again.etag);
    assert_int_equal(tu_server_stop(s), 0);
}

/* ---- c. If-Modified-Since in the three date forms RFC 9110 accepts ---- */

/* "Sun, 06 Nov 1994 08:49:37 GMT" -> seconds since the epoch. */
static time_t parse_imf_fixdate(const char *text)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    char wday[4], mon[4];
    int day, year, hh, mm, ss, used = 0;
    if (sscanf(text, "%3s, %d %3s %d %d:%d:%d GMT%n", wday, &day, mon, &year, &hh, &mm, &ss,
               &used) != 7 ||
        used == 0 || text[used] != '\0')
        fail_msg("Last-Modified '%s' is not an IMF-fixdate", text);
    const char *m = strstr(months, mon);
    if (!m || (m - months) % 3 != 0)
        fail_msg("Last-Modified '%s': bad month", text);
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = (int)(m - months) / 3,
                    .tm_mday = day,
                    .tm_hour = hh,
                    .tm_min = mm,
                    .tm_sec = ss};
    return timegm(&tm);
}

static void format_date(time_t t, const char *fmt, char *out, size_t cap)
{
    struct tm tm;
    assert_non_null(gmtime_r(&t, &tm));
    assert_true(strftime(out, cap, fmt, &tm) > 0);
}

/* Sends If-Modified-Since: date; returns whether the status was want (and a 304 was empty). */
static bool conditional_gives(const struct tu_server *s, const char *path, const char *date,
                              long want)
{
    char header[256], url[512];
    snprintf(header, sizeof header, "If-Modified-Since: %s", date);
    snprintf(url, sizeof url, "%s%s", s->base, path);
    const char *headers[] = {header, NULL};
    struct tu_response r;
    bool ok = tu_request("GET", url, headers, &r) == 0 && r.status == want &&
              (want != 304 || r.body.len == 0);
    print_message("%s, %s -> %ld (curl code %d, %zu-byte body)%s\n", path, header, r.status,
                  r.curl_code, r.body.len, ok ? "" : ": WRONG");
    tu_response_free(&r);
    return ok;
}

/* Every form is tried before the test fails, so one run tells which forms are understood. */
static unsigned wrong_date_answers(const struct tu_server *s, const char *path)
{
    struct tu_response r;
    get_ok(s, path, &r);
    assert_int_equal(r.status, 200);
    char lm[256];
    assert_true(tu_header(&r, "Last-Modified", 0, lm, sizeof lm));
    tu_response_free(&r);
    time_t t = parse_imf_fixdate(lm);

    /* Sun, 06 Nov 1994 08:49:37 GMT / Sunday, 06-Nov-94 08:49:37 GMT / Sun Nov  6 08:49:37 1994 */
    static const char *const forms[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                                        "%a %b %e %H:%M:%S %Y"};
    char date[128];
    unsigned wrong = 0;
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        format_date(t, forms[i], date, sizeof date);
        wrong += !conditional_gives(s, path, date, 304);
    }
    /* Changed since a day before its Last-Modified: the full answer. */
    format_date(t - 86400, forms[0], date, sizeof date);
    wrong += !conditional_gives(s, path, date, 200);
    return wrong;
}

static void test_if_modified_since_in_all_three_date_forms_gives_304(void **state)
{
    (void)state;
    char root[4096];
    make_root("dates", root, sizeof root);
    struct tu_server *s = start_on(0, root, NULL);
    unsigned wrong = wrong_date_answers(s, "/iiif/3/good.tif/full/64,/0/default.jpg");
    wrong += wrong_date_answers(s, "/iiif/3/good.tif/info.json");
    assert_int_equal(wrong, 0);
    assert_int_equal(tu_server_stop(s), 0);
}

/* ---- d. long requests get answers ---- */

/* The README promises requests up to 64 KB are handled: a 9 KB iipsrv query is one. */
static void test_long_query_is_answered_not_dropped(void **state)
{
    (void)state;
    char root[4096];
    make_root("long", root, sizeof root);
    struct tu_server *s = start_on(0, root, NULL);

    struct ts_buf path = {0};
    assert_int_equal(ts_buf_appendf(&path, "/?FIF=good.tif&OBJ=Max-size&"), 0);
    while (path.len < 9 * 1024)
        assert_int_equal(ts_buf_appendf(&path, "SDS=0,90&"), 0);
    struct tu_response r;
    double t0 = tu_now_ms();
    int rc = tu_get(s, (const char *)path.data, &r);
    double dt = tu_now_ms() - t0;
    ts_buf_free(&path);
    print_message("9 KB query: rc %d, curl code %d, status %ld, %.0f ms\n", rc, r.curl_code,
                  r.status, dt);
    int curl_code = r.curl_code;
    long status = r.status;
    bool says_size = r.body.data && strstr((const char *)r.body.data, "Max-size");
    tu_response_free(&r);
    assert_int_equal(curl_code, 0);
    assert_true(dt < 5000);
    assert_true(status == 200 || (status >= 400 && status < 500));
    if (status == 200)
        assert_true(says_size);
    assert_int_equal(tu_server_stop(s), 0);
}

static void test_70kb_request_line_gets_414(void **state)
{
    (void)state;
    char root[4096];
    make_root("line", root, sizeof root);
    struct tu_server *s = start_on(0, root, NULL);

    struct ts_buf url = {0};
    assert_int_equal(ts_buf_appendf(&url, "%s/iiif/3/", s->base), 0);
    while (url.len < 70 * 1024)
        assert_int_equal(ts_buf_appendf(&url, "aaaaaaaaaaaaaaaa"), 0);
    assert_int_equal(ts_buf_appendf(&url, "/info.json"), 0);
    struct tu_response r;
    tu_request("GET", (const char *)url.data, NULL, &r);
    ts_buf_free(&url);
    print_message("70 KB request line: curl code %d, status %ld\n", r.curl_code, r.status);
    int curl_code = r.curl_code;
    long status = r.status;
    tu_response_free(&r);
    /* A real response, not a closed socket. */
    assert_int_equal(curl_code, 0);
    assert_true(status == 414 || status == 431);

    get_ok(s, "/iiif/3/good.tif/info.json", &r);
    assert_int_equal(r.status, 200);
    tu_response_free(&r);
    assert_int_equal(tu_server_stop(s), 0);
}

static void test_60kb_of_headers_gets_431(void **state)
{
    (void)state;
    char root[4096];
    make_root("headers", root, sizeof root);
    struct tu_server *s = start_on(0, root, NULL);

    /* 15 headers of 4 KB each. */
    enum { NHEADERS = 15, HEADER_LEN = 4096 };
    static char values[NHEADERS][HEADER_LEN + 32];
    const char *headers[NHEADERS + 1];
    for (int i = 0; i < NHEADERS; i++) {
        int n = snprintf(values[i], sizeof values[i], "X-Filler-%02d: ", i);
        memset(values[i] + n, 'b', HEADER_LEN);
        values[i][n + HEADER_LEN] = '\0';
        headers[i] = values[i];
    }
    headers[NHEADERS] = NULL;
    char url[256];
    snprintf(url, sizeof url, "%s/iiif/3/good.tif/info.json", s->base);
    struct tu_response r;
    tu_request("GET", url, headers, &r);
    print_message("60 KB of headers: curl code %d, status %ld\n", r.curl_code, r.status);
    int curl_code = r.curl_code;
    long status = r.status;
    tu_response_free(&r);
    assert_int_equal(curl_code, 0);
    assert_int_equal(status, 431);

    get_ok(s, "/iiif/3/good.tif/info.json", &r);
    assert_int_equal(r.status, 200);
    tu_response_free(&r);
    assert_int_equal(tu_server_stop(s), 0);
}

/* ---- e. a second server on a busy port ---- */

struct second_run {
    bool exited;    /* the process ended by itself within the bound */
    int wstatus;    /* its wait status when it did */
    bool listening; /* it printed its "listening on" line instead (second_pid still runs) */
    char out[512];  /* what it wrote on stdout */
    char err[4096]; /* what it wrote on stderr */
};

/* Reads what a non-blocking pipe holds; clears *open at end of file. */
static void drain(int fd, char *buf, size_t cap, size_t *len, bool *open)
{
    while (*open && *len + 1 < cap) {
        ssize_t n = read(fd, buf + *len, cap - 1 - *len);
        if (n > 0) {
            *len += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            if (n == 0 || errno != EAGAIN)
                *open = false;
            break;
        }
    }
    buf[*len] = '\0';
}

/* Runs `tessera --root root --listen 127.0.0.1:port [extra]` and waits at most 10 s for it to
 * either exit or announce that it listens (then it keeps running as second_pid). */
static void run_second(const char *root, int port, const char *extra, struct second_run *out)
{
    memset(out, 0, sizeof *out);
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    const char *argv[] = {TESSERA_BIN, "--root", root, "--listen", listen, extra, NULL};
    int so[2], se[2];
    assert_int_equal(pipe(so), 0);
    assert_int_equal(pipe(se), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (dup2(so[1], STDOUT_FILENO) < 0 || dup2(se[1], STDERR_FILENO) < 0)
            _exit(127);
        close(so[0]);
        close(se[0]);
        close(so[1]);
        close(se[1]);
        execv(TESSERA_BIN, (char *const *)argv);
        _exit(127);
    }
    second_pid = pid;
    close(so[1]);
    close(se[1]);
    fcntl(so[0], F_SETFL, O_NONBLOCK);
    fcntl(se[0], F_SETFL, O_NONBLOCK);

    size_t olen = 0, elen = 0;
    bool oopen = true, eopen = true;
    double deadline = tu_now_ms() + 10000;
    while (tu_now_ms() < deadline) {
        struct pollfd pfd[2] = {{.fd = oopen ? so[0] : -1, .events = POLLIN},
                                {.fd = eopen ? se[0] : -1, .events = POLLIN}};
        poll(pfd, 2, 50);
        drain(so[0], out->out, sizeof out->out, &olen, &oopen);
        drain(se[0], out->err, sizeof out->err, &elen, &eopen);
        if (strstr(out->out, "listening on")) {
            out->listening = true;
            break;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            drain(se[0], out->err, sizeof out->err, &elen, &eopen);
            out->exited = true;
            out->wstatus = st;
            second_pid = -1;
            break;
        }
    }
    close(so[0]);
    close(se[0]);
}

/* SIGTERM, then SIGKILL after 10 s; returns the exit status, or -1 for a signal or a kill. */
static int stop_pid(pid_t pid)
{
    kill(pid, SIGTERM);
    double deadline = tu_now_ms() + 10000;
    int st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            return -1;
        if (tu_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        tu_sleep_ms(10);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int stop_second(void)
{
    int rc = second_pid > 0 ? stop_pid(second_pid) : -1;
    second_pid = -1;
    return rc;
}

static void expect_health(const struct tu_server *s)
{
    struct tu_response r;
    get_ok(s, "/health", &r);
    assert_int_equal(r.status, 200);
    tu_response_free(&r);
}

static void test_second_server_on_a_busy_port_refuses_to_start(void **state)
{
    (void)state;
    char root[4096];
    make_root("port", root, sizeof root);
    struct tu_server *first = start_on(0, root, NULL);

    struct second_run second;
    double t0 = tu_now_ms();
    run_second(root, first->port, NULL, &second);
    print_message("second server on port %d: exited %d (status %d), listening %d after %.0f ms; "
                  "stderr: %s\n",
                  first->port, (int)second.exited,
                  second.exited && WIFEXITED(second.wstatus) ? WEXITSTATUS(second.wstatus) : -1,
                  (int)second.listening, tu_now_ms() - t0, second.err);
    if (second.listening)
        fail_msg("a second server started on busy port %d", first->port);
    if (!second.exited)
        fail_msg("a second server on busy port %d neither exited nor listened in 10 s",
                 first->port);
    assert_true(WIFEXITED(second.wstatus));
    assert_int_not_equal(WEXITSTATUS(second.wstatus), 0);
    /* The message names the address and says why. */
    char port[16];
    snprintf(port, sizeof port, ":%d", first->port);
    assert_non_null(strstr(second.err, port));
    assert_non_null(strstr(second.err, "in use"));

    expect_health(first);
    assert_int_equal(tu_server_stop(first), 0);
}

/* Linux shares a port only between sockets that all set SO_REUSEPORT, so both ask for it. */
static void test_reuse_port_lets_a_second_server_share_the_port(void **state)
{
    (void)state;
    char root[4096];
    make_root("reuse", root, sizeof root);
    static const char *const extra[] = {"--reuse-port", NULL};
    struct tu_server *first = start_on(0, root, extra);

    struct second_run second;
    run_second(root, first->port, "--reuse-port", &second);
    print_message("second server with --reuse-port: listening %d, exited %d; stderr: %s\n",
                  (int)second.listening, (int)second.exited, second.err);
    if (!second.listening)
        fail_msg("--reuse-port: the second server did not start on port %d", first->port);
    char want[64];
    snprintf(want, sizeof want, ":%d/", first->port);
    assert_non_null(strstr(second.out, want));
    assert_int_equal(stop_second(), 0);

    expect_health(first);
    assert_int_equal(tu_server_stop(first), 0);
}

/* ---- f. cache hits ---- */

#define THUMB "/iiif/3/good.tif/full/150,/0/default.jpg"

static void expect_same_header(const struct tu_response *a, const struct tu_response *b,
                               const char *name)
{
    char va[512] = "", vb[512] = "";
    bool ha = tu_header(a, name, 0, va, sizeof va);
    bool hb = tu_header(b, name, 0, vb, sizeof vb);
    if (ha != hb || strcmp(va, vb) != 0)
        fail_msg("%s differs: '%s' vs '%s'", name, ha ? va : "(none)", hb ? vb : "(none)");
}

static void test_cache_hits_are_byte_identical(void **state)
{
    (void)state;
    char root[4096];
    make_root("cache", root, sizeof root);
    struct tu_server *s = start_on(0, root, NULL);

    struct tu_response r[3];
    for (int i = 0; i < 3; i++) {
        get_ok(s, THUMB, &r[i]);
        assert_int_equal(r[i].status, 200);
    }
    assert_true(is_jpeg(&r[0]));
    assert_int_equal(decoded_width(&r[0]), 150);
    char etag[256];
    assert_true(tu_header(&r[0], "ETag", 0, etag, sizeof etag));
    for (int i = 1; i < 3; i++) {
        assert_int_equal(r[i].body.len, r[0].body.len);
        assert_memory_equal(r[i].body.data, r[0].body.data, r[0].body.len);
        expect_same_header(&r[0], &r[i], "ETag");
        expect_same_header(&r[0], &r[i], "Content-Type");
        expect_same_header(&r[0], &r[i], "Last-Modified");
    }

    /* HEAD on a kept-alive connection, then GET on it: stray body bytes would garble the GET. */
    struct tu_client c;
    assert_int_equal(tu_client_init(&c), 0);
    char url[256];
    snprintf(url, sizeof url, "%s%s", s->base, THUMB);
    struct tu_response head, after;
    assert_int_equal(tu_client_request(&c, "HEAD", url, NULL, &head), 0);
    assert_int_equal(head.status, 200);
    assert_int_equal(head.body.len, 0);
    static const char *const same[] = {"ETag", "Content-Type", "Last-Modified", "Cache-Control",
                                       "Content-Length"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
        expect_same_header(&r[0], &head, same[i]);
    char length[32];
    assert_true(tu_header(&head, "Content-Length", 0, length, sizeof length));
    assert_int_equal(strtoull(length, NULL, 10), r[0].body.len);
    assert_int_equal(tu_client_request(&c, "GET", url, NULL, &after), 0);
    assert_int_equal(after.status, 200);
    assert_int_equal(after.body.len, r[0].body.len);
    assert_memory_equal(after.body.data, r[0].body.data, r[0].body.len);
    assert_int_equal(tu_client_connections(&c), 1);
    tu_response_free(&head);
    tu_response_free(&after);
    tu_client_free(&c);

    for (int i = 0; i < 3; i++)
        tu_response_free(&r[i]);
    assert_int_equal(tu_server_stop(s), 0);
}

/* ---- g. reopening known images ---- */

/* Drops every occurrence of text from r's body. */
static void without(struct tu_response *r, const char *text)
{
    size_t n = strlen(text), out = 0;
    for (size_t i = 0; i < r->body.len;) {
        if (r->body.len - i >= n && memcmp(r->body.data + i, text, n) == 0) {
            i += n;
            continue;
        }
        r->body.data[out++] = r->body.data[i++];
    }
    r->body.len = out;
}

/* With no reader kept between requests, every request opens its file again, with what the
 * first open learnt (the reopen state, kept with the image information) or, with the info
 * cache off, discovering the file each time: both servers answer every level, page and
 * format with the same bytes. */
static void test_reopened_images_answer_as_first_opens(void **state)
{
    (void)state;
    char root[4096];
    make_root("reopen", root, sizeof root);
    struct ts_buf pages = {0};
    assert_int_equal(tu_read_file(TESSERA_TEST_DATA "/multipage-2p-gray.tif", &pages), 0);
    write_whole(root, "pages.tif", pages.data, pages.len);
    ts_buf_free(&pages);
    static const char *const again[] = {"--reader-cache", "0", "--response-cache", "0", NULL};
    static const char *const never[] = {
        "--reader-cache", "0", "--response-cache", "0", "--info-cache", "0", NULL};
    struct tu_server *a = start_on(0, root, again);
    struct tu_server *b = start_on(1, root, never);
    static const char *const paths[] = {
        "/iiif/3/good.tif/info.json",
        "/iiif/3/good.tif/full/40,/0/default.jpg",
        "/iiif/3/good.tif/full/max/0/default.png",
        "/iiif/3/good.tif/0,0,256,256/256,/0/default.jpg",
        "/iiif/3/good.tif/700,700,512,512/128,/0/gray.png",
        "/iiif/3/good.tif/full/90,/0/default.jpg",
        "/iiif/3/pages.tif;1/info.json",
        "/iiif/3/pages.tif;1/full/max/0/default.png",
        "/iiif/3/pages.tif/full/max/0/default.png",
        "/fcgi-bin/iipsrv.fcgi?FIF=good.tif&OBJ=Max-size&OBJ=Resolution-number",
        "/fcgi-bin/iipsrv.fcgi?FIF=good.tif&JTL=2,1",
    };
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
            struct tu_response ra, rb;
            get_ok(a, paths[i], &ra);
            get_ok(b, paths[i], &rb);
            if (ra.status != 200 || rb.status != 200)
                fail_msg("%s: %d and %d", paths[i], ra.status, rb.status);
            /* info.json names each server by its own port */
            without(&ra, a->base);
            without(&rb, b->base);
            if (ra.body.len != rb.body.len || memcmp(ra.body.data, rb.body.data, ra.body.len))
                fail_msg("%s (round %d): %zu bytes reopened, %zu discovered", paths[i], round,
                         ra.body.len, rb.body.len);
            tu_response_free(&ra);
            tu_response_free(&rb);
        }
    }
    assert_int_equal(tu_server_stop(a), 0);
    assert_int_equal(tu_server_stop(b), 0);
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
        cmocka_unit_test_teardown(test_corrupt_image_does_not_drain_the_reader_pool_or_double_close,
                                  stop_leftovers),
        cmocka_unit_test_teardown(test_long_iip_queries_differing_only_in_cvt_get_different_answers,
                                  stop_leftovers),
        cmocka_unit_test_teardown(test_if_modified_since_in_all_three_date_forms_gives_304,
                                  stop_leftovers),
        cmocka_unit_test_teardown(test_long_query_is_answered_not_dropped, stop_leftovers),
        cmocka_unit_test_teardown(test_reopened_images_answer_as_first_opens, stop_leftovers),
        cmocka_unit_test_teardown(test_70kb_request_line_gets_414, stop_leftovers),
        cmocka_unit_test_teardown(test_60kb_of_headers_gets_431, stop_leftovers),
        cmocka_unit_test_teardown(test_second_server_on_a_busy_port_refuses_to_start,
                                  stop_leftovers),
        cmocka_unit_test_teardown(test_reuse_port_lets_a_second_server_share_the_port,
                                  stop_leftovers),
        cmocka_unit_test_teardown(test_cache_hits_are_byte_identical, stop_leftovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
