/* The IIP protocol as iipsrv speaks it: FIF, OBJ, JTL/JTLS, CVT with WID/HEI/RGN/QLT/ROT. */
#ifndef TESSERA_IIP_H
#define TESSERA_IIP_H

#include "core/app.h"
#include "core/job.h"
#include "image/reader.h"
#include "render/plan.h"
#include "util/buf.h"
#include "util/status.h"

#include <stdbool.h>
#include <stdint.h>

#define IIP_MAX_RES 40
#define IIP_MAX_OBJ 32
#define IIP_MAX_PATH 1024
#define IIP_MAX_MINMAX 8

/* One MINMAX command: channel (-1 = every channel) and the range of its source samples. */
struct iip_minmax {
    int channel;
    float min, max;
};

/* iipsrv's resolution ladder for one image. Index 0 is the smallest resolution and nres-1 the
 * full one (IIP numbering). Stored pyramid levels are used as they are; below them the ladder
 * goes on by halving (floor, like iipsrv and vips) until the image fits in one tile, so IIP,
 * DeepZoom and Zoomify number tiles the same way whatever the source's own pyramid. */
struct iip_pyramid {
    uint32_t width, height; /* full resolution */
    uint32_t tile_w, tile_h;
    uint32_t nres;
    uint32_t res_w[IIP_MAX_RES], res_h[IIP_MAX_RES];
};

int iip_pyramid_build(const struct ts_image_info *info, uint32_t default_tile,
                      struct iip_pyramid *out, struct ts_err *err);

/* A plan for the rectangle (x, y, w, h) of a resolution of size lw x lh: the region in
 * full-resolution pixels and an output of exactly w x h, JPEG. Pure. */
void iip_plan_level_rect(const struct iip_pyramid *p, uint32_t lw, uint32_t lh, uint32_t x,
                         uint32_t y, uint32_t w, uint32_t h, struct ts_plan *out);

/* Tile number tile (row-major, edge tiles cut to the image) of resolution res: TS_ENOTFOUND
 * for a resolution or tile that does not exist, as iipsrv answers. With rot 180 the tiles are
 * counted from the other end, as iipsrv's JTL does under ROT=180. */
int iip_tile_plan(const struct iip_pyramid *p, uint32_t res, uint32_t tile, int rot,
                  struct ts_plan *out, struct ts_err *err);

enum iip_action {
    IIP_ACTION_NONE,
    IIP_ACTION_JTL,
    IIP_ACTION_CVT,
    IIP_ACTION_SPECTRA,
    IIP_ACTION_PFL
};

struct iip_request {
    char fif[IIP_MAX_PATH]; /* percent-decoded image path; "" when absent */
    char objs[IIP_MAX_OBJ][40];
    unsigned nobj;
    enum iip_action action;
    uint32_t jtl_res, jtl_tile;
    int32_t spectra[4]; /* SPECTRA: resolution, tile, x, y, as iipsrv's atoi reads them */
    int32_t pfl[5];     /* PFL: resolution, x1, y1, x2, y2 (a single point: x2 = x1, y2 = y1) */
    enum ts_format cvt_format;
    enum ts_format tile_format; /* JTL: jpg; PTL: png; WTL: webp; TTL: tif */
    uint32_t wid, hei;          /* 0 = not given */
    bool has_rgn;
    float rgn[4];                             /* x, y, w, h as fractions, clamped like iipsrv */
    int qlt;                                  /* -1 = server default */
    int rot;                                  /* 0, 90, 180 or 270 */
    bool flip;                                /* ROT=!n: mirror first */
    struct ts_adjust adjust;                  /* GAM, INV, CMP, CNV, CNT, CTW, SHD */
    struct iip_minmax minmax[IIP_MAX_MINMAX]; /* in the order given; applied once the image's
                                                 channels and sample range are known */
    unsigned nminmax;
    uint32_t layers;      /* LYR: JPEG 2000 quality layers; 0 = all */
    int32_t sds_h, sds_v; /* SDS: the view of an image sequence; iipsrv's 0, 90 unless set */
    enum ts_quality col;  /* COL: grey or binary; default otherwise */
    char bad_command[40]; /* set when parsing failed on an unknown command */
};

/* Parses the raw query string ("FIF=a.tif&WID=300&CVT=jpeg"); commands are case-insensitive.
 * TS_EINVAL for an unknown command (named in bad_command) or malformed arguments. */
int iip_parse(const char *query, struct iip_request *out, struct ts_err *err);

/* The OBJ answer text iipsrv sends for the requested objects, byte for byte ("IIP:1.0\r\n..."),
 * appended to out. TS_EINVAL for an unknown object (its name in err). */
int iip_obj_text(const struct iip_request *r, const struct iip_pyramid *p,
                 const struct ts_image_info *info, struct ts_buf *out, struct ts_err *err);

/* The same, and the answer's MIME type: IIP's own, or (as iipsrv 1.3 sets it) text/plain for
 * a metadata tag, application/xml for XMP, application/json for "metadata". The object names
 * iipsrv 1.3 knows are all answered; p may be NULL (no image) for the server's own objects. */
int iip_obj_answer(const struct iip_request *r, const struct iip_pyramid *p,
                   const struct ts_image_info *info, const struct source_views *views,
                   struct ts_buf *out, const char **type, struct ts_err *err);

/* CVT: the output size and region iipsrv's View/CVT logic gives for WID/HEI/RGN (max_size is
 * MAX_CVT, 0 = none). */
int iip_cvt_plan(const struct iip_pyramid *p, const struct iip_request *r, uint32_t max_size,
                 struct ts_plan *out, struct ts_err *err);

/* MINMAX into the adjustments, once the image is known: each range as fractions of the source's
 * full sample range (the renderer sees samples scaled to 8 bits from that range). Channels not
 * named keep the image's own range, its sample-range tags or the full range, as iipsrv
 * normalises them; a channel the image does not have is ignored, as iipsrv ignores it. */
void iip_minmax_adjust(const struct iip_request *r, const struct ts_image_info *info,
                       struct ts_adjust *a);

/* SPECTRA=r,t,x,y and PFL=r:x1,y1-x2,y2 into r, read field by field as iipsrv reads them
 * (atoi; a missing delimiter reads the same text again). Pure; they never fail. */
void iip_parse_spectra(const char *arg, struct iip_request *r);
void iip_parse_pfl(const char *arg, struct iip_request *r);

/* The pixels SPECTRA or PFL reads, as a plan of exactly those pixels at their resolution, with
 * iipsrv's checks: TS_ENOTFOUND for a SPECTRA resolution or tile that does not exist (as JTL),
 * TS_EINVAL with iipsrv's message for a point outside the tile or the image, or a PFL
 * resolution out of range. TS_EUNSUPPORTED for samples deeper than the 8 bits Tessera reads. */
int iip_samples_plan(const struct iip_pyramid *p, const struct iip_request *r,
                     const struct ts_image_info *info, struct ts_plan *out, struct ts_err *err);

/* The core's sample() for SPECTRA (iipsrv's XML, a point per view) and PFL (its JSON profile,
 * an array per view). */
int iip_samples_quote(const struct ts_app *app, const struct ts_job *job,
                      const struct ts_image_info *info, const struct ts_sample *s,
                      struct ts_product *out, struct ts_err *err);

/* iipsrv's MAX_CVT default, and the limit in force (0 = none) for a configuration. */
#define IIP_DEFAULT_MAX_CVT 5000
uint32_t iip_max_cvt(const struct ts_config *cfg);

/* What a DeepZoom or Zoomify request asks of an image: fills either text (an XML descriptor,
 * *is_text set) or a tile plan. */
typedef int (*iip_build_fn)(const struct iip_pyramid *p, const void *ctx, struct ts_buf *text,
                            bool *is_text, struct ts_plan *plan, struct ts_err *err);
typedef int (*iip_parse_fn)(const char *decoded, void *request, struct ts_err *err);
typedef const char *(*iip_identifier_fn)(const void *request);

/* The identifier the core resolves for an image named in iipsrv's way: name, then
 * FILESYSTEM_SUFFIX (iipsrv opens prefix + name + suffix, and the root is the prefix). With a
 * delimiter (IIIF_DELIMITER), "{name}{delimiter}{n}" asks for page n counted from 0 as iipsrv
 * counts a multi-page TIFF's directories; it becomes Tessera's own "{name}{suffix};{n+1}".
 * A delimiter followed by anything but digits is part of the name. Appended to out. */
int iip_identifier(const char *name, const char *suffix, const char *delimiter, struct ts_buf *out,
                   struct ts_err *err);

/* An IIP request (the whole raw query string) as a job. */
int iip_job(const struct ts_app *app, const char *query, struct ts_job *job, struct ts_err *err);

/* DeepZoom and Zoomify: percent-decode arg, parse it into a request of req_size bytes with
 * parse(), and make a job for its identifier (+ FILESYSTEM_SUFFIX) whose answer build() says.
 * kind names the protocol in cache keys. */
int iip_tile_job(const struct ts_app *app, const char *kind, const char *arg, size_t arg_len,
                 size_t req_size, iip_parse_fn parse, iip_identifier_fn identifier,
                 iip_build_fn build, struct ts_job *job, struct ts_err *err);

#endif
