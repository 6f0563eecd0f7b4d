/* The built-in web front: image browser, viewer pages, manifests and their static assets. */
#ifndef TESSERA_WEB_H
#define TESSERA_WEB_H

#include "server/app.h"
#include "server/response.h"

#include <stdbool.h>

/* Answers the request and returns true if the path belongs to the web front ("/", "/viewer/",
 * "/manifest/", "/collection/", "/static/", ...); returns false to let the router go on. */
bool web_handle(struct ts_app *app, const struct ts_request *req, struct ts_response *res);

#endif
