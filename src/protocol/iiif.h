/* The IIIF Image API endpoint: a request path in, a job out. */
#ifndef TESSERA_IIIF_H
#define TESSERA_IIIF_H

#include "core/app.h"
#include "core/job.h"

/* prefix: the URL path of the service, e.g. "/iiif/3"; rest: what follows "prefix/". Fills
 * job or returns a status with a reason. Pure: no files, caches or headers. */
int iiif_job(const struct ts_app *app, int version, const char *prefix, const char *rest,
             const struct ts_request *req, struct ts_job *job, struct ts_err *err);

#endif
