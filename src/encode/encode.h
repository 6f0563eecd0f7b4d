/* Pixels -> bytes in the requested output format. */
#ifndef TESSERA_ENCODE_H
#define TESSERA_ENCODE_H

#include "encode/format.h"
#include "image/image.h"
#include "util/buf.h"
#include "util/status.h"

/* TIFF output compression; zero is the default, so zeroed options keep deflate. */
enum encode_tiff_compression {
    ENCODE_TIFF_DEFLATE = 0,
    ENCODE_TIFF_LZW,
    ENCODE_TIFF_NONE,
};

struct encode_options {
    int jpeg_quality; /* 1..100 */
    int webp_quality; /* 1..100 */
    int png_level;    /* zlib level 0..9 */
    enum encode_tiff_compression tiff_compression;
    int tiff_level; /* deflate level 1..9; 0 = libtiff's default */
};

/* The defaults the command line uses too: JPEG 85, WebP 80, PNG level 3. */
struct encode_options encode_options_default(void);

/* Appends the encoded image to out. JPEG drops alpha (composited on white). TS_EUNSUPPORTED for
 * formats this build cannot write. A NULL opt means encode_options_default(). */
int encode_image(const struct ts_image *img, enum ts_format fmt, const struct encode_options *opt,
                 struct ts_buf *out, struct ts_err *err);

int encode_jpeg(const struct ts_image *img, int quality, struct ts_buf *out, struct ts_err *err);
/* The planes as they are, 4:2:0, with no colour conversion or chroma resampling. */
int encode_jpeg_ycc(const struct ts_ycc *ycc, int quality, struct ts_buf *out, struct ts_err *err);
int encode_png(const struct ts_image *img, int level, struct ts_buf *out, struct ts_err *err);
int encode_webp(const struct ts_image *img, int quality, struct ts_buf *out, struct ts_err *err);

/* Palette GIF (giflib): exact palette when the image has <= 256 colours (gray and bitonal always
 * do), median cut otherwise; alpha < 128 becomes the transparent index. */
int encode_gif(const struct ts_image *img, struct ts_buf *out, struct ts_err *err);
/* Striped, deflate-compressed 8-bit TIFF; alpha is written as unassociated ExtraSamples. */
int encode_tiff(const struct ts_image *img, struct ts_buf *out, struct ts_err *err);
/* The same with the compression (and, for deflate, the level) chosen. */
int encode_tiff_with(const struct ts_image *img, enum encode_tiff_compression compression,
                     int level, struct ts_buf *out, struct ts_err *err);
/* JP2 (OpenJPEG): quality >= 100 (or <= 0) is lossless (5/3 wavelet); otherwise lossy 9/7 at a
 * target PSNR that rises with quality. */
int encode_jp2(const struct ts_image *img, int quality, struct ts_buf *out, struct ts_err *err);

#endif
