/* HTTP test harness: starts and stops tessera, performs libcurl requests, writes the test root. */
#include "harness.h"

#include "grid.h"
#include "testutil.h"
#include "util/status.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <tiffio.h>
#include <time.h>
#include <unistd.h>

#define TU_START_TIMEOUT_MS 10000
#define TU_STOP_TIMEOUT_MS 10000
#define TU_MAX_ARGS 64

/* Parses "tessera: listening on http://127.0.0.1:PORT/" and returns PORT, or -1. */
static int tu_parse_listen_line(const char *line)
{
    const char *p = strstr(line, "http://");
    if (!p)
        return -1;
    p += strlen("http://");
    const char *colon = strchr(p, ':');
    if (!colon)
        return -1;
    long port = 0;
    const char *d = colon + 1;
    if (*d < '0' || *d > '9')
        return -1;
    while (*d >= '0' && *d <= '9') {
        port = port * 10 + (*d - '0');
        if (port > 65535)
            return -1;
        d++;
    }
    return port > 0 ? (int)port : -1;
}

/* Reads the first stdout line of the server within the deadline. */
static int tu_read_line(int fd, char *line, size_t cap, double deadline)
{
    size_t len = 0;
    while (len + 1 < cap) {
        double left = deadline - tu_now_ms();
        if (left <= 0)
            return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return -1;
        ssize_t n = read(fd, line + len, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        if (line[len] == '\n') {
            line[len] = '\0';
            return 0;
        }
        len++;
    }
    return -1;
}

static void tu_report_exit(const struct tu_server *s, int st)
{
    if (WIFSIGNALED(st))
        fprintf(stderr, "harness: tessera (pid %d) died of signal %d\n", (int)s->pid, WTERMSIG(st));
    else if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
        fprintf(stderr, "harness: tessera (pid %d) exited with status %d\n", (int)s->pid,
                WEXITSTATUS(st));
}

/* Forks and execs argv with its stdout on a pipe, and returns its first line within the start
 * timeout in line. */
static int tu_spawn(struct tu_server *s, const char *const *argv, char *line, size_t cap)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        if (dup2(fds[1], STDOUT_FILENO) < 0)
            _exit(127);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    s->pid = pid;
    s->out_fd = fds[0];
    return tu_read_line(s->out_fd, line, cap, tu_now_ms() + TU_START_TIMEOUT_MS);
}

/* argv = bin, then fixed (NULL-terminated), then extra (NULL-terminated, may be NULL). */
static int tu_build_argv(const char **argv, const char *bin, const char *const *fixed,
                         const char *const *extra)
{
    size_t argc = 0;
    argv[argc++] = bin;
    for (size_t i = 0; fixed[i]; i++)
        argv[argc++] = fixed[i];
    for (size_t i = 0; extra && extra[i]; i++) {
        if (argc + 1 >= TU_MAX_ARGS)
            return -1;
        argv[argc++] = extra[i];
    }
    argv[argc] = NULL;
    return 0;
}

int tu_server_start(struct tu_server *s, const char *bin, const char *root,
                    const char *const *extra)
{
    memset(s, 0, sizeof(*s));
    s->pid = -1;
    s->out_fd = -1;

    const char *argv[TU_MAX_ARGS];
    const char *const fixed[] = {"--root", root, "--listen", "127.0.0.1:0", NULL};
    if (tu_build_argv(argv, bin, fixed, extra) != 0)
        return -1;
    char line[512];
    if (tu_spawn(s, argv, line, sizeof(line)) != 0 || (s->port = tu_parse_listen_line(line)) <= 0) {
        fprintf(stderr, "harness: %s did not report a listening port within %d ms\n", bin,
                TU_START_TIMEOUT_MS);
        if (s->pid > 0)
            tu_server_stop(s);
        return -1;
    }
    snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%d", s->port);
    return 0;
}

int tu_fcgi_server_start(struct tu_server *s, const char *bin, const char *root, const char *addr,
                         const char *const *extra)
{
    memset(s, 0, sizeof(*s));
    s->pid = -1;
    s->out_fd = -1;

    const char *argv[TU_MAX_ARGS];
    const char *const fixed[] = {"--root", root, "--fcgi", addr, NULL};
    if (tu_build_argv(argv, bin, fixed, extra) != 0)
        return -1;
    char line[512];
    if (tu_spawn(s, argv, line, sizeof(line)) != 0 || !strstr(line, "FastCGI on ")) {
        fprintf(stderr, "harness: %s did not report FastCGI on %s within %d ms\n", bin, addr,
                TU_START_TIMEOUT_MS);
        if (s->pid > 0)
            tu_server_stop(s);
        return -1;
    }
    const char *colon = strrchr(addr, ':');
    s->port = colon && !strchr(addr, '/') ? atoi(colon + 1) : 0;
    return 0;
}

int tu_server_start_logged(struct tu_server *s, const char *bin, const char *root,
                           const char *const *extra, const char *log)
{
    if (!log)
        return tu_server_start(s, bin, root, extra);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    /* The child inherits fd 2 at fork: point it at the file for that moment only. */
    int saved = dup(2);
    dup2(fd, 2);
    close(fd);
    int rc = tu_server_start(s, bin, root, extra);
    dup2(saved, 2);
    close(saved);
    return rc;
}

int tu_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

bool tu_server_alive(struct tu_server *s)
{
    if (s->pid <= 0 || s->reaped)
        return false;
    int st;
    pid_t r = waitpid(s->pid, &st, WNOHANG);
    if (r == s->pid) {
        s->reaped = true;
        s->wstatus = st;
        tu_report_exit(s, st);
        return false;
    }
    return r == 0;
}

int tu_server_stop(struct tu_server *s)
{
    if (s->pid <= 0)
        return -1;
    int rc = 0;
    if (!s->reaped) {
        kill(s->pid, SIGTERM);
        double deadline = tu_now_ms() + TU_STOP_TIMEOUT_MS;
        for (;;) {
            int st;
            pid_t r = waitpid(s->pid, &st, WNOHANG);
            if (r == s->pid) {
                s->reaped = true;
                s->wstatus = st;
                break;
            }
            if (r < 0 && errno != EINTR) {
                rc = -1;
                break;
            }
            if (tu_now_ms() > deadline) {
                fprintf(stderr, "harness: tessera (pid %d) ignored SIGTERM for %d ms\n",
                        (int)s->pid, TU_STOP_TIMEOUT_MS);
                kill(s->pid, SIGKILL);
                waitpid(s->pid, &st, 0);
                s->reaped = true;
                s->wstatus = st;
                rc = -1;
                break;
            }
            tu_sleep_ms(10);
        }
    }
    if (s->reaped) {
        tu_report_exit(s, s->wstatus);
        if (!WIFEXITED(s->wstatus) || WEXITSTATUS(s->wstatus) != 0)
            rc = -1;
    }
    if (s->out_fd >= 0)
        close(s->out_fd);
    s->out_fd = -1;
    s->pid = -1;
    return rc;
}

static size_t tu_on_body(char *data, size_t size, size_t n, void *user)
{
    struct tu_response *r = user;
    size_t len;
    if (!ts_mul_size(size, n, &len) || ts_buf_append(&r->body, data, len) != 0)
        return 0;
    return len;
}

static size_t tu_on_header(char *data, size_t size, size_t n, void *user)
{
    struct tu_response *r = user;
    size_t len;
    if (!ts_mul_size(size, n, &len))
        return 0;
    /* A new status line starts a new header block (e.g. after 100 Continue). */
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0)
        r->headers.len = 0;
    if (ts_buf_append(&r->headers, data, len) != 0 || ts_buf_reserve(&r->headers, 1) != 0)
        return 0;
    r->headers.data[r->headers.len] = '\0';
    return len;
}

void tu_http_init(void)
{
    static bool done;
    if (!done) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        done = true;
    }
}

int tu_client_init(struct tu_client *c)
{
    tu_http_init();
    c->connections = 0;
    c->curl = curl_easy_init();
    return c->curl ? 0 : -1;
}

void tu_client_free(struct tu_client *c)
{
    if (c->curl)
        curl_easy_cleanup(c->curl);
    c->curl = NULL;
}

long tu_client_connections(struct tu_client *c)
{
    return c->connections;
}

static int client_perform(struct tu_client *cl, const char *method, const char *url,
                          const char *const *headers, const char *body, size_t body_len,
                          struct tu_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    CURL *c = cl->curl;
    struct curl_slist *list = NULL;
    for (size_t i = 0; headers && headers[i]; i++) {
        struct curl_slist *nl = curl_slist_append(list, headers[i]);
        if (!nl) {
            curl_slist_free_all(list);
            return -1;
        }
        list = nl;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tu_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, tu_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    /* Reset what an earlier request on this handle may have set. */
    curl_easy_setopt(c, CURLOPT_NOBODY, 0L);
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, NULL);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode cc = curl_easy_perform(c);
    resp->curl_code = (int)cc;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    long fresh = 0;
    if (curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &fresh) == CURLE_OK)
        cl->connections += fresh;
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(list);
    if (!resp->headers.data && ts_buf_reserve(&resp->headers, 1) == 0)
        resp->headers.data[0] = '\0';
    /* Bodies end in a NUL (not counted in len) so error texts print safely. */
    if (ts_buf_reserve(&resp->body, 1) == 0)
        resp->body.data[resp->body.len] = '\0';
    if (cc != CURLE_OK) {
        fprintf(stderr, "harness: %s %.200s: %s\n", method, url, curl_easy_strerror(cc));
        return -1;
    }
    return 0;
}

int tu_client_request(struct tu_client *cl, const char *method, const char *url,
                      const char *const *headers, struct tu_response *resp)
{
    return client_perform(cl, method, url, headers, NULL, 0, resp);
}

int tu_post(const char *url, const char *const *headers, const char *body, size_t len,
            struct tu_response *resp)
{
    struct tu_client c;
    if (tu_client_init(&c) != 0) {
        memset(resp, 0, sizeof(*resp));
        return -1;
    }
    int rc = client_perform(&c, "POST", url, headers, body, len, resp);
    tu_client_free(&c);
    return rc;
}

int tu_request(const char *method, const char *url, const char *const *headers,
               struct tu_response *resp)
{
    struct tu_client c;
    if (tu_client_init(&c) != 0) {
        memset(resp, 0, sizeof(*resp));
        return -1;
    }
    int rc = tu_client_request(&c, method, url, headers, resp);
    tu_client_free(&c);
    return rc;
}

int tu_get(const struct tu_server *s, const char *path, struct tu_response *resp)
{
    struct ts_buf url = {0};
    if (ts_buf_appendf(&url, "%s%s", s->base, path) != 0) {
        ts_buf_free(&url);
        memset(resp, 0, sizeof(*resp));
        return -1;
    }
    int rc = tu_request("GET", (const char *)url.data, NULL, resp);
    ts_buf_free(&url);
    return rc;
}

void tu_response_free(struct tu_response *resp)
{
    ts_buf_free(&resp->headers);
    ts_buf_free(&resp->body);
}

bool tu_header(const struct tu_response *resp, const char *name, int nth, char *out, size_t outlen)
{
    if (!resp->headers.data || outlen == 0)
        return false;
    size_t nlen = strlen(name);
    const char *p = (const char *)resp->headers.data;
    const char *end = p + resp->headers.len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            if (nth-- == 0) {
                const char *v = p + nlen + 1;
                const char *ve = eol;
                while (v < ve && (*v == ' ' || *v == '\t'))
                    v++;
                while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                    ve--;
                size_t vl = (size_t)(ve - v);
                if (vl >= outlen)
                    vl = outlen - 1;
                memcpy(out, v, vl);
                out[vl] = '\0';
                return true;
            }
        }
        p = eol + 1;
    }
    return false;
}

bool tu_header_contains(const struct tu_response *resp, const char *name, const char *needle)
{
    char v[2048];
    for (int i = 0; tu_header(resp, name, i, v, sizeof(v)); i++) {
        if (strstr(v, needle))
            return true;
    }
    return false;
}

int tu_decode_body(const struct tu_response *resp, struct ts_image *out)
{
    memset(out, 0, sizeof(*out));
    if (!resp->body.data || resp->body.len == 0)
        return -1;
    return tu_decode(resp->body.data, resp->body.len, out);
}

static int tu_join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

static int tu_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = len ? fwrite(data, 1, len, f) : 0;
    int rc = fclose(f);
    return (w == len && rc == 0) ? 0 : -1;
}

/* corrupt.jpg keeps only SOI and APP0, so every decoder fails on the missing tables;
 * truncated.jpg keeps half of the entropy-coded data. */
static int tu_write_broken_jpegs(const char *root, const char *jpeg_path)
{
    struct ts_buf jpg = {0};
    char path[4096];
    int rc = tu_read_file(jpeg_path, &jpg);
    size_t cut = 0;
    for (size_t i = 2; rc == 0 && i + 1 < jpg.len; i++) {
        if (jpg.data[i] == 0xFF && jpg.data[i + 1] == 0xDB) {
            cut = i;
            break;
        }
    }
    if (rc == 0 && cut == 0)
        rc = -1;
    if (rc == 0)
        rc = tu_join(path, sizeof(path), root, "corrupt.jpg");
    if (rc == 0)
        rc = tu_write_file(path, jpg.data, cut);
    if (rc == 0)
        rc = tu_join(path, sizeof(path), root, "truncated.jpg");
    if (rc == 0)
        rc = tu_write_file(path, jpg.data, jpg.len / 2);
    ts_buf_free(&jpg);
    return rc;
}

static int tu_write_wide_png(const char *root)
{
    char path[4096];
    struct ts_image img = {0};
    int rc = tu_join(path, sizeof(path), root, "wide.png");
    if (rc == 0)
        rc = grid_make(800, 400, 8, 3, &img);
    if (rc == 0)
        rc = grid_write_png(path, &img, 8);
    ts_image_free(&img);
    return rc;
}

/* The grid as JPEG 2000 (tiled 256, 5 resolutions, lossless) and as HTJ2K (reversible raw
 * codestream), made by the reference encoders from a PPM of the same pixels. */
static int write_jpeg2000_twins(const char *root, const struct ts_image *img)
{
    char ppm[4096], jp2[4096], htj2k[4096], cmd[20000];
    if (tu_join(ppm, sizeof(ppm), root, "grid-src.ppm") != 0 ||
        tu_join(jp2, sizeof(jp2), root, "grid.jp2") != 0 ||
        tu_join(htj2k, sizeof(htj2k), root, "grid-htj2k.j2c") != 0 || tu_write_ppm(ppm, img) != 0)
        return -1;
    snprintf(cmd, sizeof(cmd),
             "opj_compress -i '%s' -o '%s' -t 256,256 -n 5 >/dev/null 2>&1 && "
             "ojph_compress -i '%s' -o '%s' -num_decomps 4 -reversible true >/dev/null 2>&1",
             ppm, jp2, ppm, htj2k);
    int rc = system(cmd);
    unlink(ppm);
    if (rc != 0) {
        fprintf(stderr, "harness: opj_compress/ojph_compress failed (packages libopenjp2-tools "
                        "and openjph-tools)\n");
        return -1;
    }
    return 0;
}

int tu_make_http_root(const char *root)
{
    char path[4096];
    char dir[4096];
    struct ts_image img = {0};
    if (tu_join(dir, sizeof(dir), root, "sub/dir") != 0 || tu_mkdirs(dir) != 0)
        return -1;
    if (grid_make(GRID_SIZE, GRID_SIZE, GRID_CELLS, 3, &img) != 0)
        return -1;

    struct grid_tiff_opts pyr = {.compression = COMPRESSION_JPEG,
                                 .tiled = true,
                                 .tile = 256,
                                 .bits = 8,
                                 .layout = GRID_PYRAMID_IFDS,
                                 .jpeg_quality = 95,
                                 .ycbcr = true};
    struct grid_tiff_opts sub = {.compression = COMPRESSION_ADOBE_DEFLATE,
                                 .tiled = true,
                                 .tile = 256,
                                 .bits = 8,
                                 .layout = GRID_PYRAMID_SUBIFDS};
    struct grid_tiff_opts flat = {
        .compression = COMPRESSION_ADOBE_DEFLATE, .tiled = false, .bits = 8, .layout = GRID_FLAT};
    static const char fake[] = "this is a text file, not a TIFF\n";

    int rc = tu_join(path, sizeof(path), root, "grid.tif");
    if (rc == 0)
        rc = grid_write_tiff(path, &img, &pyr);
    if (rc == 0)
        rc = tu_join(path, sizeof(path), root, "grid-subifd.tif");
    if (rc == 0)
        rc = grid_write_tiff(path, &img, &sub);
    if (rc == 0)
        rc = tu_join(path, sizeof(path), root, "sub/dir/grid2.tif");
    if (rc == 0)
        rc = grid_write_tiff(path, &img, &flat);
    if (rc == 0)
        rc = tu_join(path, sizeof(path), root, "grid.png");
    if (rc == 0)
        rc = grid_write_png(path, &img, 8);
    if (rc == 0)
        rc = tu_write_wide_png(root);
    if (rc == 0)
        rc = tu_join(path, sizeof(path), root, "a b+c.png");
    if (rc == 0)
        rc = grid_write_png(path, &img, 8);
    if (rc == 0)
        rc = tu_join(path, sizeof(path), root, "gr\xc3\xbcn.png");
    if (rc == 0)
        rc = grid_write_png(path, &img, 8);
    if (rc == 0)
        rc = tu_join(path, sizeof(path), root, "grid.jpg");
    if (rc == 0)
        rc = grid_write_jpeg(path, &img, 95);
    if (rc == 0)
        rc = tu_write_broken_jpegs(root, path);
    if (rc == 0)
        rc = tu_join(path, sizeof(path), root, "fake.tif");
    if (rc == 0)
        rc = tu_write_file(path, fake, sizeof(fake) - 1);
    if (rc == 0)
        rc = write_jpeg2000_twins(root, &img);
    ts_image_free(&img);
    return rc;
}

int tu_start_on_grid_root(struct tu_server *s, const char *bin, const char *work,
                          const char *const *extra, char *root_out, size_t root_cap)
{
    char root[4096];
    memset(s, 0, sizeof(*s));
    s->pid = -1;
    s->out_fd = -1;
    if (tu_join(root, sizeof(root), work, "root") != 0 || tu_mkdirs(root) != 0) {
        fprintf(stderr, "harness: cannot create %s/root\n", work);
        return -1;
    }
    if (tu_make_http_root(root) != 0) {
        fprintf(stderr, "harness: cannot write the test images into %s\n", root);
        return -1;
    }
    if (root_out && (size_t)snprintf(root_out, root_cap, "%s", root) >= root_cap)
        return -1;
    return tu_server_start(s, bin, root, extra);
}

int tu_run_capture(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    if (!p || cap == 0)
        return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
