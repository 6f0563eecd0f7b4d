/* info.json for IIIF Image API 1.1, 2.1 and 3.0, built with jansson. */
#ifndef TESSERA_IIIF_INFO_H
#define TESSERA_IIIF_INFO_H

#include "image/reader.h"
#include "protocol/iiif_plan.h"
#include "util/status.h"

struct json_t;

struct iiif_info_params {
    int version;                      /* 1, 2 or 3 */
    const char *id;                   /* public URI of the image, e.g. http://h:8080/iiif/3/a.tif */
    const struct ts_image_info *info; /* dimensions and pyramid */
    const struct ts_limits *opt;
    uint32_t default_tile; /* tile size advertised for untiled sources, e.g. 512 */
    const char *rights;    /* 3.0 "rights", 2.1 and 1.1 "license" (as iipsrv); NULL/"" = none */
    struct json_t *extra;  /* members merged into the document, except the required ones */
};

/* Returns a malloc'd, NUL-terminated JSON document in *json. */
int iiif_info_json(const struct iiif_info_params *p, char **json, struct ts_err *err);

/* Scale factors advertised for a source: from its real pyramid levels, extended by powers of
 * two until the whole image fits one tile. Returns the count written (<= max). */
int iiif_scale_factors(const struct ts_image_info *info, uint32_t tile_w, uint32_t tile_h,
                       uint32_t *factors, int max);

#endif
