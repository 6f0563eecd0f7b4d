/* Output formats: the encoder's vocabulary, named by every protocol. */
#ifndef TESSERA_FORMAT_H
#define TESSERA_FORMAT_H

enum ts_format {
    TS_FORMAT_JPG,
    TS_FORMAT_PNG,
    TS_FORMAT_WEBP,
    TS_FORMAT_GIF,
    TS_FORMAT_TIF,
    TS_FORMAT_JP2,
    TS_FORMAT_PDF,
    TS_FORMAT_COUNT,
};

const char *ts_format_ext(enum ts_format f);  /* "jpg" */
const char *ts_format_mime(enum ts_format f); /* "image/jpeg" */

#endif
