/* Connection admission for the HTTP front: a request must arrive whole within a deadline, and
 * when the server is full the connections that wait longest for their request, from the busiest
 * address, make room for new clients. libmicrohttpd has neither: its timeout is an idle one,
 * reset by every byte, and at its limit it refuses newcomers instead of old idlers. */
#ifndef TESSERA_CONNGUARD_H
#define TESSERA_CONNGUARD_H

#include "config.h"
#include "util/status.h"

#include <microhttpd.h>
#include <stdarg.h>

struct ts_connguard;

/* Fits cfg's limits to the open-file limit (raising the soft limit to the hard one when it is
 * short) and starts the thread that closes late connections. */
int ts_connguard_create(const struct ts_config *cfg, struct ts_connguard **out, struct ts_err *err);
/* What to give libmicrohttpd as MHD_OPTION_CONNECTION_LIMIT: above our own limit, because
 * connections we close are counted by libmicrohttpd until its thread has noticed. */
unsigned ts_connguard_mhd_limit(const struct ts_connguard *g);
/* Stops the thread; call after MHD_stop_daemon, which reports every connection closed. */
void ts_connguard_destroy(struct ts_connguard *g);

/* MHD_OPTION_NOTIFY_CONNECTION callback, with the guard as its closure. */
void ts_connguard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                         enum MHD_ConnectionNotificationCode code);
/* MHD_OPTION_EXTERNAL_LOGGER, with the guard as its closure: libmicrohttpd writes a line for
 * every connection it drops or refuses, which under attack would bury everything else; a few
 * are shown, the rest counted in the periodic summary. */
void ts_connguard_mhd_log(void *cls, const char *fmt, va_list ap);
/* A request's headers are complete (the first call of the access handler): no deadline
 * applies while it is being answered. */
void ts_connguard_request(struct ts_connguard *g, struct MHD_Connection *conn);
/* The request has ended (request-completed callback): the next one has its deadline. */
void ts_connguard_done(struct ts_connguard *g, struct MHD_Connection *conn);

#endif
