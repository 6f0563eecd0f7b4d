/* iipsrv-compatible entry points: ?FIF=/?IIIF=/?DeepZoom=/?Zoomify= queries and their prefixes. */
#ifndef TESSERA_COMPAT_H
#define TESSERA_COMPAT_H

#include "core/app.h"
#include "core/job.h"

/* Fills job when the request is in one of iipsrv's forms (IIP, DeepZoom, Zoomify, or IIIF
 * given as ?IIIF=...) and returns its parse status; TS_DECLINED lets the router go on. */
int compat_job(const struct ts_app *app, const struct ts_request *req, struct ts_job *job,
               struct ts_err *err);

#endif
