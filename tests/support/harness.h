/* HTTP test harness: runs the real tessera binary on a loopback port and talks to it with libcurl.
 */
#ifndef TESSERA_TEST_HARNESS_H
#define TESSERA_TEST_HARNESS_H

#include "image/image.h"
#include "util/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct tu_server {
    pid_t pid;
    int out_fd; /* the server's stdout, kept open so it never gets SIGPIPE */
    int port;
    char base[64]; /* http://127.0.0.1:PORT (no trailing slash) */
    bool reaped;   /* waitpid already collected the exit status below */
    int wstatus;
};

/* Forks and execs `bin --root root --listen 127.0.0.1:0 extra...` (extra is NULL-terminated,
 * may be NULL) and waits up to 10 s for its "listening on" line. Returns 0 on success. */
int tu_server_start(struct tu_server *s, const char *bin, const char *root,
                    const char *const *extra);

/* tu_server_start with the server's stderr going to the file log (truncated first; NULL = the
 * test's own stderr), for tests that read what the server logged. */
int tu_server_start_logged(struct tu_server *s, const char *bin, const char *root,
                           const char *const *extra, const char *log);

/* Forks and execs `bin --root root --fcgi addr extra...` (addr HOST:PORT or a unix socket path)
 * and waits up to 10 s for its "FastCGI on" line. port is set for HOST:PORT. Returns 0 on
 * success. */
int tu_fcgi_server_start(struct tu_server *s, const char *bin, const char *root, const char *addr,
                         const char *const *extra);

/* A loopback TCP port that was free a moment ago, or -1. */
int tu_free_port(void);

/* True while the server process has not exited. */
bool tu_server_alive(struct tu_server *s);

/* Sends SIGTERM and waits up to 10 s (then SIGKILL). Returns 0 only when the server exited
 * with status 0; a crash, a signal death or a sanitizer exit code is reported on stderr and
 * returns -1. */
int tu_server_stop(struct tu_server *s);

struct tu_response {
    long status;
    struct ts_buf headers; /* raw header block, NUL-terminated */
    struct ts_buf body;    /* followed by a NUL not counted in len */
    int curl_code;         /* CURLE_OK when a response arrived */
};

/* Performs one request (method "GET", "HEAD", "POST", ...) to url, with optional
 * NULL-terminated "Name: value" headers. No proxy, no redirects, path sent as is, 10 s timeout.
 * Returns 0 when a response (any status) was received. */
int tu_request(const char *method, const char *url, const char *const *headers,
               struct tu_response *resp);

/* POSTs len bytes of body to url (headers as tu_request; curl adds a form Content-Type unless
 * one is given). Returns 0 when a response arrived. */
int tu_post(const char *url, const char *const *headers, const char *body, size_t len,
            struct tu_response *resp);

/* A client that keeps one connection open across requests (keep-alive), e.g. to show that a
 * HEAD answer carried no stray body bytes. Not shared between threads. */
struct tu_client {
    void *curl;
    long connections; /* new connections opened so far */
};

int tu_client_init(struct tu_client *c);
int tu_client_request(struct tu_client *c, const char *method, const char *url,
                      const char *const *headers, struct tu_response *resp);
/* Connections libcurl opened for this client so far (1 when all requests shared one). */
long tu_client_connections(struct tu_client *c);
void tu_client_free(struct tu_client *c);

/* Initialises libcurl globally; call before starting threads that make requests. */
void tu_http_init(void);

/* GET of base + path. */
int tu_get(const struct tu_server *s, const char *path, struct tu_response *resp);

void tu_response_free(struct tu_response *resp);

/* Copies the value of the nth (0-based) header called name (case-insensitive) into out,
 * trimmed. Returns false when there is no such header. */
bool tu_header(const struct tu_response *resp, const char *name, int nth, char *out, size_t outlen);

/* True if any header called name contains needle (case-sensitive substring). */
bool tu_header_contains(const struct tu_response *resp, const char *name, const char *needle);

/* Writes the standard HTTP test root: grid.tif (pyramid IFDs, JPEG q95 tiles 256),
 * grid-subifd.tif (SubIFDs, deflate), grid.png, grid.jpg, sub/dir/grid2.tif (flat striped
 * deflate), wide.png (800x400, 8x8 cells of 100x50), "a b+c.png" and "gr\xc3\xbcn.png" (grid
 * copies with awkward names), corrupt.jpg (a JPEG cut inside its header) and fake.tif (text).
 * Returns 0. */
int tu_make_http_root(const char *root);

/* Writes the test root under work/root (see tu_make_http_root), then starts the server on it.
 * root_out (may be NULL) receives the root path. Returns 0 on success. */
int tu_start_on_grid_root(struct tu_server *s, const char *bin, const char *work,
                          const char *const *extra, char *root_out, size_t root_cap);

/* Decodes resp's body; returns 0 on success. */
int tu_decode_body(const struct tu_response *resp, struct ts_image *out);

/* Runs the shell command cmd (its stderr folded into stdout by the caller's 2>&1) to its end
 * and keeps the start of what it printed, NUL-terminated, in out. Returns its exit status, or
 * -1 when it did not exit normally. For servers that must refuse to start. */
int tu_run_capture(const char *cmd, char *out, size_t cap);

#endif
