/* Pixels -> bytes in the requested output format. */
#ifndef TESSERA_ENCODE_H
#define TESSERA_ENCODE_H

#include "image/image.h"
#include "protocol/iiif_parse.h"
#include "util/buf.h"
#include "util/status.h"

struct encode_options {
    int jpeg_quality; /* 1..100 */
    int webp_quality; /* 1..100 */
    int png_level;    /* zlib level 0..9 */
};

/* The defaults the command line uses too: JPEG 85, WebP 80, PNG level 3. */
struct encode_options encode_options_default(void);

/* Appends the encoded image to out. JPEG drops alpha (composited on white). TS_EUNSUPPORTED for
 * formats this build cannot write. opt may be
 * NULL for encode_options_default(). */
int encode_image(const struct ts_image *img, enum ts_format fmt, const struct encode_options *opt,
                 struct ts_buf *out, struct ts_err *err);

int encode_jpeg(const struct ts_image *img, int quality, struct ts_buf *out, struct ts_err *err);
int encode_png(const struct ts_image *img, int level, struct ts_buf *out, struct ts_err *err);
int encode_webp(const struct ts_image *img, int quality, struct ts_buf *out, struct ts_err *err);

#endif
