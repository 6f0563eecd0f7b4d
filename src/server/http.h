/* The standalone HTTP front end on libmicrohttpd. */
#ifndef TESSERA_HTTP_H
#define TESSERA_HTTP_H

#include "core/app.h"

#include <stdint.h>

struct ts_http_server;

/* Starts serving (a thread pool, one thread per core unless cfg.threads says otherwise). */
int ts_http_start(struct ts_app *app, struct ts_http_server **out, struct ts_err *err);
/* The port actually bound (useful with port 0). */
uint16_t ts_http_port(const struct ts_http_server *srv);
/* Stops accepting, waits up to drain_seconds for open connections to finish, then stops. */
void ts_http_stop(struct ts_http_server *srv, unsigned drain_seconds);

#endif
