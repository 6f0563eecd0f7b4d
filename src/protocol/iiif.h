/* The IIIF Image API endpoint: parse, resolve, plan, render, encode, and the HTTP semantics. */
#ifndef TESSERA_IIIF_H
#define TESSERA_IIIF_H

#include "core/app.h"
#include "core/response.h"

/* prefix: the URL path of the service, e.g. "/iiif/3"; rest: what follows "prefix/". */
void iiif_handle(struct ts_app *app, int version, const char *prefix, const char *rest,
                 const struct ts_request *req, struct ts_response *res);

#endif
