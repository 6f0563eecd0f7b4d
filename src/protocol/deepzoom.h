/* DeepZoom as iipsrv serves it: {id}.dzi and {id}_files/{level}/{col}_{row}.jpg. */
#ifndef TESSERA_DEEPZOOM_H
#define TESSERA_DEEPZOOM_H

#include "core/app.h"
#include "core/job.h"
#include "protocol/iip.h"
#include "render/plan.h"
#include "util/buf.h"

#include <stdbool.h>
#include <stdint.h>

struct dz_request {
    char identifier[IIP_MAX_PATH]; /* percent-decoded, without ".dzi" or "_files/..." */
    bool dzi;                      /* the XML descriptor, not a tile */
    uint32_t level, col, row;
    enum ts_format format;
};

/* Parses a decoded argument: "a/b.tif.dzi" or "a/b.tif_files/12/3_4.jpg". TS_EINVAL if it is
 * neither. */
int dz_parse(const char *arg, struct dz_request *out, struct ts_err *err);

/* DeepZoom's top level: ceil(log2(max(w, h))), so level 0 is 1x1. */
uint32_t dz_max_level(uint32_t width, uint32_t height);

/* The .dzi text iipsrv sends, byte for byte (overlap 0, tile size as stored). */
int dz_dzi_xml(const struct iip_pyramid *p, struct ts_buf *out);

/* Size of a DeepZoom level: the stored (or halved) resolution when the pyramid has it, and
 * ceil(size / 2^n) below it. */
void dz_level_size(const struct iip_pyramid *p, uint32_t level, uint32_t *w, uint32_t *h);

/* The plan for one tile; TS_ENOTFOUND for a level or tile outside the image. */
int dz_tile_plan(const struct iip_pyramid *p, const struct dz_request *r, struct ts_plan *out,
                 struct ts_err *err);

/* Answers a DeepZoom request; arg is the raw (still percent-encoded) argument. */
int deepzoom_job(const struct ts_app *app, const char *arg, size_t arg_len, struct ts_job *job,
                 struct ts_err *err);

#endif
