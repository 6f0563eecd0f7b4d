/* Native tile passthrough: answer a request that equals a stored JPEG tile with its bytes. */
#ifndef TESSERA_PASSTHROUGH_H
#define TESSERA_PASSTHROUGH_H

#include "image/reader.h"
#include "render/plan.h"
#include "util/buf.h"
#include "util/status.h"

#include <stddef.h>

enum passthrough_mode {
    PASSTHROUGH_ALWAYS,    /* every stored JPEG tile */
    PASSTHROUGH_YCBCR,     /* YCbCr and gray tiles; RGB tiles (often large) are re-encoded */
    PASSTHROUGH_NEVER,     /* always decode and encode */
    PASSTHROUGH_MAX_BYTES, /* any tile whose answer is at most max_bytes */
};

struct passthrough_rule {
    enum passthrough_mode mode;
    size_t max_bytes;
};

/* "always" (also ""), "ycbcr", "never", or a size in KB. TS_EINVAL with a reason otherwise. */
int passthrough_rule_parse(const char *text, struct passthrough_rule *rule, struct ts_err *err);

/* Appends the answer to out and returns TS_OK when the plan is exactly one stored tile (on the
 * tile grid of a stored level, size = region / scale, default or color quality, jpg, no
 * rotation or mirror) and the rule allows it; edge tiles are cropped losslessly. Returns
 * TS_DECLINED, out untouched, when the general render path must answer; a negative status
 * for a broken tile. A NULL rule means PASSTHROUGH_ALWAYS. */
int passthrough_try(struct ts_reader *reader, const struct ts_plan *plan,
                    const struct passthrough_rule *rule, struct ts_buf *out, struct ts_err *err);

#endif
