/* The admin endpoint: POST /admin/purge?id=IDENTIFIER, behind a bearer token. */
#ifndef TESSERA_ADMIN_H
#define TESSERA_ADMIN_H

#include "core/app.h"
#include "core/job.h"

#include <stdbool.h>
#include <stddef.h>

/* Fills a purge job for an authorised request under /admin/; otherwise the refusal: 404 when
 * no token is configured (the endpoint does not exist), 401 without the right token, 405 for
 * another method, 400 without an identifier. */
int admin_job(const struct ts_app *app, const struct ts_request *req, struct ts_job *job,
              struct ts_err *err);

/* Whether the Authorization header value carries token as a bearer token. The time it takes
 * depends on the token's length only, never on where a guess first differs. */
bool admin_authorized(const char *authorization, const char *token);

#endif
