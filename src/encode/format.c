/* Output format names and media types. */
#include "encode/format.h"

const char *ts_format_ext(enum ts_format f)
{
    switch (f) {
    case TS_FORMAT_JPG: return "jpg";
    case TS_FORMAT_PNG: return "png";
    case TS_FORMAT_WEBP: return "webp";
    case TS_FORMAT_GIF: return "gif";
    case TS_FORMAT_TIF: return "tif";
    case TS_FORMAT_JP2: return "jp2";
    case TS_FORMAT_PDF: return "pdf";
    default: return "";
    }
}

const char *ts_format_mime(enum ts_format f)
{
    switch (f) {
    case TS_FORMAT_JPG: return "image/jpeg";
    case TS_FORMAT_PNG: return "image/png";
    case TS_FORMAT_WEBP: return "image/webp";
    case TS_FORMAT_GIF: return "image/gif";
    case TS_FORMAT_TIF: return "image/tiff";
    case TS_FORMAT_JP2: return "image/jp2";
    case TS_FORMAT_PDF: return "application/pdf";
    default: return "application/octet-stream";
    }
}
