/* What to render: the region, output size, rotation, quality and format every protocol plans. */
#ifndef TESSERA_PLAN_H
#define TESSERA_PLAN_H

#include "encode/format.h"

#include <stdbool.h>
#include <stdint.h>

enum ts_quality {
    TS_QUALITY_DEFAULT, /* 1.1 "native" parses to this too */
    TS_QUALITY_COLOR,
    TS_QUALITY_GRAY, /* 1.1 "grey" parses to this too */
    TS_QUALITY_BITONAL,
};

struct ts_plan {
    uint32_t img_w, img_h;
    uint32_t rx, ry, rw, rh; /* region in full-resolution pixels, clipped to the image */
    uint32_t out_w, out_h;   /* scaled size, before rotation */
    double rotation;         /* degrees clockwise, applied after mirroring */
    bool mirror;
    enum ts_quality quality;
    enum ts_format format;
    bool size_max;     /* asked as max (3.0 canonical "max", even when limits shrank it) */
    bool size_upscale; /* asked as ^max (3.0 canonical "^max") */
};

/* What this server supports and allows; advertised by protocols and enforced by their plans. */
struct ts_limits {
    uint32_t max_width;  /* 0 = no limit */
    uint32_t max_height; /* 0 = no limit */
    uint64_t max_area;   /* 0 = no limit */
    bool rotation_arbitrary;
    unsigned formats; /* bit (1u << enum ts_format) for each output format we can encode */
};

#endif
