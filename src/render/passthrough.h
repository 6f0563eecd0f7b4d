/* Native tile passthrough: answer a request that equals a stored JPEG tile with its bytes. */
#ifndef TESSERA_PASSTHROUGH_H
#define TESSERA_PASSTHROUGH_H

#include "image/reader.h"
#include "render/plan.h"
#include "util/buf.h"
#include "util/status.h"

#include <stddef.h>
#include <stdint.h>

enum passthrough_mode {
    PASSTHROUGH_ALWAYS,    /* every stored JPEG tile */
    PASSTHROUGH_YCBCR,     /* YCbCr and gray tiles; RGB tiles (often large) are re-encoded */
    PASSTHROUGH_NEVER,     /* always decode and encode */
    PASSTHROUGH_MAX_BYTES, /* any tile whose answer is at most max_bytes */
    PASSTHROUGH_QUALITY,   /* YCbCr and gray tiles stored at most MARGIN above out_quality */
};

/* How far above the output quality a stored tile may be and still go out as is: a YCbCr 4:2:0
 * tile at Q90 measured 1.27 times the bytes of one at Q85, Q95 1.85 times, while re-encoding
 * cut the server's tile rate about four times and adds a second generation of loss. The
 * figures are in the --passthrough section of README.md. */
#define PASSTHROUGH_QUALITY_MARGIN 5

struct passthrough_rule {
    enum passthrough_mode mode;
    size_t max_bytes;
    int out_quality; /* the encoder's JPEG quality, for PASSTHROUGH_QUALITY (0 = 85) */
};

/* "quality" (also ""), "always", "ycbcr", "never", or a size in KB; out_quality is left at 0
 * for the caller to fill. TS_EINVAL with a reason otherwise. */
int passthrough_rule_parse(const char *text, struct passthrough_rule *rule, struct ts_err *err);

/* The IJG quality (1-100) whose scaled standard luminance table is nearest the stream's, or 0
 * when the stream has no usable 8-bit-sample DQT before its first scan. */
int passthrough_jpeg_quality(const uint8_t *jpeg, size_t len);

/* Appends the answer to out and returns TS_OK when the plan is exactly one stored tile (on the
 * tile grid of a stored level, size = region / scale, default or color quality, jpg, no
 * rotation or mirror), the rule allows it and the plan's watermark (if any) marks none of it;
 * edge tiles are cropped losslessly. Returns
 * TS_DECLINED, out untouched, when the general render path must answer; a negative status
 * for a broken tile. A NULL rule means PASSTHROUGH_ALWAYS. */
int passthrough_try(struct ts_reader *reader, const struct ts_plan *plan,
                    const struct passthrough_rule *rule, struct ts_buf *out, struct ts_err *err);

#endif
