/* iipsrv-compatible entry points: ?FIF=/?IIIF=/?DeepZoom=/?Zoomify= queries and their prefixes. */
#ifndef TESSERA_COMPAT_H
#define TESSERA_COMPAT_H

#include "core/app.h"
#include "core/response.h"

#include <stdbool.h>

/* Answers and returns true when the request is in one of iipsrv's forms (IIP, DeepZoom,
 * Zoomify, or IIIF given as ?IIIF=...); returns false to let the router go on. */
bool compat_handle(struct ts_app *app, const struct ts_request *req, struct ts_response *res);

#endif
