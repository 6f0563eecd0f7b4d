/* gzip content coding for text answers: what the client accepts, and the compression itself. */
#ifndef TESSERA_GZIP_H
#define TESSERA_GZIP_H

#include "util/buf.h"

#include <stdbool.h>
#include <stddef.h>

/* True when an Accept-Encoding value admits gzip (RFC 9110 12.5.3): "gzip" or "x-gzip" with a
 * q-value above 0, or "*" with one when gzip itself is not named. NULL (no header) is false:
 * without the header a server may choose any coding, but a client that sends none is more
 * often a tool that would not decode it. */
bool ts_accepts_gzip(const char *accept_encoding);

/* Appends the gzip stream of in[0..len) to out. TS_ENOMEM or TS_ETOOLONG (out's cap) on
 * failure, leaving out as it was. */
int ts_gzip(const void *in, size_t len, struct ts_buf *out);

#endif
