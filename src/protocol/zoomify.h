/* Zoomify as iipsrv serves it: {id}/ImageProperties.xml and {id}/TileGroup{n}/{z}-{x}-{y}.jpg. */
#ifndef TESSERA_ZOOMIFY_H
#define TESSERA_ZOOMIFY_H

#include "core/app.h"
#include "core/job.h"
#include "protocol/iip.h"
#include "render/plan.h"
#include "util/buf.h"

#include <stdbool.h>
#include <stdint.h>

struct zoomify_request {
    char identifier[IIP_MAX_PATH]; /* percent-decoded */
    bool properties;               /* ImageProperties.xml rather than a tile */
    uint32_t group, z, x, y;
};

/* Parses a decoded argument: "a/b.tif/ImageProperties.xml" or "a/b.tif/TileGroup0/2-1-0.jpg". */
int zoomify_parse(const char *arg, struct zoomify_request *out, struct ts_err *err);

/* How many of the smallest resolutions Zoomify does not see: all but the largest of those
 * that fit in one tile (Zoomify's level 0 is the largest single-tile level). */
uint32_t zoomify_discard(const struct iip_pyramid *p);

/* Zoomify's level count and the tile group of tile (z, x, y): tiles are numbered from the
 * smallest level up, row by row, 256 to a group. */
uint32_t zoomify_levels(const struct iip_pyramid *p);
uint32_t zoomify_tile_group(const struct iip_pyramid *p, uint32_t z, uint32_t x, uint32_t y);

/* ImageProperties.xml as iipsrv sends it, byte for byte. */
int zoomify_properties_xml(const struct iip_pyramid *p, struct ts_buf *out);

/* The plan for one tile; TS_ENOTFOUND outside the image. */
int zoomify_tile_plan(const struct iip_pyramid *p, const struct zoomify_request *r,
                      struct ts_plan *out, struct ts_err *err);

/* Answers a Zoomify request; arg is the raw (still percent-encoded) argument. */
int zoomify_job(const struct ts_app *app, const char *arg, size_t arg_len, struct ts_job *job,
                struct ts_err *err);

#endif
