/* The IIIF Authorization Flow 2.0 services: probe, access (login, click-through, kiosk),
 * token (the postMessage page) and logout, under /auth/. */
#ifndef TESSERA_AUTH_H
#define TESSERA_AUTH_H

#include "core/app.h"
#include "core/job.h"
#include "core/response.h"

/* Fills job for /auth/probe/{identifier}, /auth/access/{rule}, /auth/token/{rule} and
 * /auth/logout/{rule}; TS_DECLINED for other paths, or when no access rule is configured. */
int auth_job(const struct ts_app *app, const struct ts_request *req, struct ts_job *job,
             struct ts_err *err);

#endif
