/* IIIF Image API URL grammar (1.1, 2.1, 3.0): text in, validated request out; pure, no I/O. */
#ifndef TESSERA_IIIF_PARSE_H
#define TESSERA_IIIF_PARSE_H

#include "render/plan.h"
#include "util/status.h"

#include <stdbool.h>
#include <stdint.h>

enum iiif_region_kind {
    IIIF_REGION_FULL,
    IIIF_REGION_SQUARE,
    IIIF_REGION_PIXELS,  /* x,y,w,h */
    IIIF_REGION_PERCENT, /* pct:x,y,w,h */
};

enum iiif_size_kind {
    IIIF_SIZE_MAX,      /* 3.0 max / ^max, 2.1 max */
    IIIF_SIZE_FULL,     /* 2.1 and 1.1 "full" */
    IIIF_SIZE_W,        /* w, */
    IIIF_SIZE_H,        /* ,h */
    IIIF_SIZE_PCT,      /* pct:n */
    IIIF_SIZE_WH,       /* w,h */
    IIIF_SIZE_BEST_FIT, /* !w,h */
};

/* iipsrv's own qualities beside IIIF's, served when the server enables them (iipsrv's
 * IIIF_EXTENSIONS): the colour image inverted, its range stretched, its histogram equalised,
 * or its values on a log scale. */
enum iiif_ext_quality {
    IIIF_EXT_NONE,
    IIIF_EXT_NEGATIVE,
    IIIF_EXT_STRETCH,
    IIIF_EXT_EQUALIZATION,
    IIIF_EXT_LOG,
};

/* The extension quality's name in URLs ("" for none). */
const char *iiif_ext_quality_name(enum iiif_ext_quality q);

struct iiif_request {
    int version; /* 1, 2 or 3 */
    enum iiif_region_kind region;
    double region_v[4]; /* x,y,w,h in pixels or percent */
    enum iiif_size_kind size;
    bool upscale; /* ^ prefix (3.0 only) */
    uint32_t size_w, size_h;
    double size_pct;
    double rotation; /* degrees, 0 <= r <= 360 */
    bool mirror;
    enum ts_quality quality;
    enum iiif_ext_quality ext_quality; /* iipsrv's extension qualities (IIIF_EXTENSIONS) */
    enum ts_format format;
    bool format_implied; /* 1.1 without an extension: the format is the server's to choose */
};

enum iiif_target {
    IIIF_TARGET_BASE,  /* {prefix}/{id}: redirect to info.json */
    IIIF_TARGET_INFO,  /* {prefix}/{id}/info.json */
    IIIF_TARGET_IMAGE, /* {prefix}/{id}/{region}/{size}/{rotation}/{quality}.{format} */
};

#define IIIF_MAX_IDENTIFIER 1024

struct iiif_url {
    enum iiif_target target;
    char identifier[IIIF_MAX_IDENTIFIER]; /* percent-decoded */
    struct iiif_request req;              /* filled for IIIF_TARGET_IMAGE */
};

/* Parses the part of the path after the version prefix, still percent-encoded, without query
 * string, e.g. "a%2Fb.tif/full/max/0/default.jpg". The identifier is either one encoded segment
 * or, leniently, several raw segments (everything before the last four parameters). */
int iiif_parse_url(int version, const char *path, struct iiif_url *out, struct ts_err *err);

/* The four parameter segments (already percent-decoded). */
int iiif_parse_image(int version, const char *region, const char *size, const char *rotation,
                     const char *quality_format, struct iiif_request *out, struct ts_err *err);

/* A "decimal digits and '.'" number (percentages, rotation); false on anything else. */
bool iiif_parse_decimal(const char *s, size_t len, double *out);

#endif
