/* Path prefix -> protocol, the same for every front end: a request in, a job out. */
#ifndef TESSERA_ROUTER_H
#define TESSERA_ROUTER_H

#include "core/app.h"
#include "core/job.h"
#include "core/response.h"

/* Fills job for the request (methods, health, CORS preflight, iipsrv's query forms, IIIF,
 * the web front) and returns the parse status with a reason in err; the core serves either. */
int router_route(const struct ts_app *app, const struct ts_request *req, struct ts_job *job,
                 struct ts_err *err);

/* Counts an answer in the metrics: the job's route (job may be NULL: "other"), the status, the
 * time since the request arrived. */
void router_count(struct ts_app *app, const struct ts_job *job, const struct ts_response *res,
                  double millis);

/* Logs an error answer and writes the access-log line (when the log is on). peer: the
 * connection's address (the client's, unless --trust-proxy finds another in X-Forwarded-For). */
void router_log(struct ts_app *app, const char *peer, const struct ts_request *req,
                const struct ts_response *res, double millis);

#endif
