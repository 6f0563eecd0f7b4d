/* A request's deadline and its cancellation, checked by every long loop below the core (band
 * rendering, decoders' row and tile loops, the JPEG 2000 decode child's wait) so that work
 * nobody will receive stops: a client that left, a request past its deadline, a server that
 * is stopping. */
#ifndef TESSERA_CANCEL_H
#define TESSERA_CANCEL_H

#include "util/status.h"

#include <stdatomic.h>
#include <stdint.h>

struct ts_cancel {
    atomic_int reason;   /* TS_OK while the work may go on; TS_ECANCELED or TS_ETIMEOUT after */
    int64_t deadline_ns; /* CLOCK_MONOTONIC; 0 = none */
};

int64_t ts_monotonic_ns(void);

/* Starts the clock: the work must end within seconds from now (0 = no deadline). */
void ts_cancel_init(struct ts_cancel *c, unsigned seconds);

/* Asks the work to stop (from any thread); the first reason given stays. */
void ts_cancel_stop(struct ts_cancel *c, int reason);

/* TS_OK to go on, else TS_ECANCELED or TS_ETIMEOUT (and the reason in err). A NULL token never
 * stops. Cheap: one atomic load and, with a deadline, one clock read (vDSO). */
int ts_cancel_check(struct ts_cancel *c, struct ts_err *err);

#endif
