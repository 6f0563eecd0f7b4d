/* The operations endpoints: /health and /metrics, answered by the router on the thread that
 * received the request (a server whose workers are all busy still answers them). */
#ifndef TESSERA_OPS_H
#define TESSERA_OPS_H

#include "core/app.h"
#include "core/job.h"

/* /health: 200 with {"status":"ok",...} when every backend answers; 503 naming the ones that
 * do not (the image root, memcached when configured). JSON either way. */
int ops_health_job(const struct ts_app *app, struct ts_job *job, struct ts_err *err);

/* /metrics: every counter in the Prometheus text format (TS_ENOTFOUND when --metrics off). */
int ops_metrics_job(const struct ts_app *app, struct ts_job *job, struct ts_err *err);

/* Appends the Prometheus text of every counter and gauge to out. */
int ops_metrics_text(const struct ts_app *app, struct ts_buf *out);

#endif
