/* FastCGI front end (libfcgi): the same router as HTTP, behind nginx, Apache or lighttpd. */
#ifndef TESSERA_FCGI_H
#define TESSERA_FCGI_H

#include "core/app.h"
#include "util/status.h"

#include <stdbool.h>

/* True when fd 0 is a listening socket: the web server (mod_fcgid, spawn-fcgi) started us
 * and passes requests on it. */
bool ts_fcgi_inherited_socket(void);

/* Serves FastCGI until SIGTERM or SIGINT: on app->cfg.fcgi_listen (HOST:PORT or a unix socket
 * path, created with app->cfg.socket_mode) when set, otherwise on the inherited socket on fd 0.
 * A thread per connection (up to app->cfg.max_connections), which must deliver each request
 * whole within app->cfg.header_timeout seconds; app->cfg.threads requests are served at once
 * (0 = one per core). The caller must have blocked SIGTERM and SIGINT in all threads (main
 * does); this function collects them with sigwait (SIGHUP, when blocked too, reopens the access
 * log), stops accepting, drops connections still sending their request, lets the requests in
 * flight finish for up to 10 s, then cancels them, and returns TS_OK once every connection has
 * ended. */
int ts_fcgi_run(struct ts_app *app, struct ts_err *err);

#endif
