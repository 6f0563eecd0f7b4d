/* What to render: the region, output size, rotation, quality and format every protocol plans. */
#ifndef TESSERA_PLAN_H
#define TESSERA_PLAN_H

#include "encode/format.h"

#include <stdbool.h>
#include <stdint.h>

struct ts_watermark;

enum ts_quality {
    TS_QUALITY_DEFAULT, /* 1.1 "native" parses to this too */
    TS_QUALITY_COLOR,
    TS_QUALITY_GRAY, /* 1.1 "grey" parses to this too */
    TS_QUALITY_BITONAL,
};

/* iipsrv's colour maps (CMP): a one-value scale mapped onto RGB. */
enum ts_cmap {
    TS_CMAP_NONE,
    TS_CMAP_HOT,
    TS_CMAP_COLD,
    TS_CMAP_JET,
    TS_CMAP_RED,
    TS_CMAP_GREEN,
    TS_CMAP_BLUE
};

#define TS_KERNEL_MAX 5

#define TS_HIST_BINS 256

/* Pixel adjustments IIP clients ask for (iipsrv's MINMAX, SHD, CTW, GAM, INV, CMP, CNV and CNT),
 * applied after resampling in this order on values scaled to [0, 1]: range normalisation (MINMAX,
 * or CNT=st's stretch), hill shading, colour twist, gamma or log, inversion, colour map,
 * convolution, contrast back to 8 bits, then histogram equalisation. Zeroed = none. */
struct ts_adjust {
    bool on;
    /* v -> (v - lo) / (hi - lo) per input channel, lo and hi as fractions of the source's full
     * sample range (MINMAX); replaced by the histogram's occupied range under stretch. */
    bool range;
    float range_lo[4], range_hi[4];
    bool shade;          /* SHD: the colours are a normal map, lit from shade_h, shade_v */
    int32_t shade_h;     /* degrees clockwise from 12 o'clock, in the image plane */
    int32_t shade_v;     /* degrees down from the horizontal */
    uint32_t twist_rows; /* 0 = no twist; else 1 or 3 output channels */
    float twist[3][4];   /* output channel k = sum_j twist[k][j] * input channel j */
    bool log;            /* v -> log(1 + 255 v) / log(256), instead of gamma */
    float gamma;         /* v -> v^gamma; 1 = unchanged */
    bool invert;         /* v -> 1 - v */
    enum ts_cmap cmap;
    uint32_t ksize;                              /* 0 = no convolution, else 1, 3 or 5 */
    float kernel[TS_KERNEL_MAX * TS_KERNEL_MAX]; /* ksize x ksize, row by row */
    float contrast;                              /* v -> v * contrast; 1 = unchanged */
    bool stretch;                                /* CNT=st: the image's range to [0, 1] */
    bool equalize;                               /* CNT=eq: 8-bit values through the CDF */
    /* Stretch and equalisation read the whole image's histogram (its colour channels'
     * average, of a small render with the range above applied): the core fills this from its
     * per-image cache before rendering, so every tile of an image gets the same mapping. */
    bool have_hist;
    uint32_t hist[TS_HIST_BINS];
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
    struct ts_adjust adjust;
    uint32_t layers; /* JPEG 2000 quality layers to decode (IIP LYR); 0 = all */
    /* Not planned by protocols: the core sets these from the server's configuration. The mark
     * added last (NULL = none) and the seed of where it goes (render/watermark.h). */
    const struct ts_watermark *watermark;
    uint64_t watermark_seed;
    /* Threads the render may use (0 or 1: the calling one): more when the server has cores
     * idle. The bytes are the same however many. */
    unsigned threads;
};

/* What this server supports and allows; advertised by protocols and enforced by their plans. */
struct ts_limits {
    uint32_t max_width;  /* 0 = no limit */
    uint32_t max_height; /* 0 = no limit */
    uint64_t max_area;   /* 0 = no limit */
    bool rotation_arbitrary;
    unsigned formats;     /* bit (1u << enum ts_format) for each output format we can encode */
    bool no_upscaling;    /* sizes above the region are refused (iipsrv's ALLOW_UPSCALING=0) */
    bool iiif_extensions; /* iipsrv's IIIF qualities negative, stretch, equalization, log */
};

#endif
