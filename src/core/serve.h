/* The one request pipeline: every protocol's job is served here, and only here. */
#ifndef TESSERA_SERVE_H
#define TESSERA_SERVE_H

#include "core/app.h"
#include "core/job.h"
#include "core/response.h"

#include <stdbool.h>

/* Creates and frees the caches the pipeline uses (responses, infos, resolutions, readers). */
int core_init(struct ts_app *app, struct ts_err *err);
void core_free(struct ts_app *app);

/* The part of a job that costs no image work: the protocol's verdict (rc, err), replies,
 * resolution, validators and 304, response-cache hits. Returns true when res holds the whole
 * answer; false when the job must go on in core_finish (on a worker thread: the job carries
 * what was done, so nothing is parsed, resolved or looked up twice). */
bool core_begin(struct ts_app *app, const struct ts_request *req, struct ts_job *job, int rc,
                const struct ts_err *err, struct ts_response *res);

/* The rest: image information, admission, reader lease, render, encode, cache store. Returns
 * true when res holds the answer. With job->defer_heavy set, a render over the heavy
 * threshold is not started: false, and the job (its product and open file kept) is to be
 * finished by another core_finish call in the slow lane, with defer_heavy cleared. Nothing is
 * done when the job's cancel token has tripped (a 503 answer). */
bool core_finish(struct ts_app *app, const struct ts_request *req, struct ts_job *job,
                 struct ts_response *res);

/* Answers a job that cannot be run (a full queue, a server stopping) with the error for rc,
 * in the job's error style, with every header an answer carries. */
void core_refuse(struct ts_app *app, struct ts_job *job, int rc, const char *reason,
                 struct ts_response *res);

/* Both halves on the calling thread (FastCGI). */
void core_serve(struct ts_app *app, const struct ts_request *req, struct ts_job *job, int rc,
                const struct ts_err *err, struct ts_response *res);

#endif
