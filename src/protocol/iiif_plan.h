/* Request + image size -> render plan (region, output size, canonical URI); pure, no I/O. */
#ifndef TESSERA_IIIF_PLAN_H
#define TESSERA_IIIF_PLAN_H

#include "protocol/iiif_parse.h"
#include "util/status.h"

#include <stdbool.h>
#include <stdint.h>

/* Errors: TS_EINVAL (400) for impossible requests (zero area, size above region without ^ in
 * 3.0, over limits), TS_EUNSUPPORTED (501) for features or formats not in opt. */
int iiif_plan(const struct iiif_request *req, uint32_t img_w, uint32_t img_h,
              const struct ts_limits *opt, struct ts_plan *out, struct ts_err *err);

/* Canonical "{region}/{size}/{rotation}/{quality}.{format}" for the request's version. */
int iiif_canonical(int version, const struct ts_plan *plan, char *out, size_t out_size);

#endif
