/* Percent-encoding of URL parts, shared by every protocol and the web front. */
#ifndef TESSERA_URL_H
#define TESSERA_URL_H

#include "util/buf.h"
#include "util/status.h"

#include <stdbool.h>
#include <stddef.h>

/* url_decode refuses control characters, raw or escaped (not only NUL). */
#define URL_NO_CONTROLS 1u

/* Decodes %XX escapes of in[0..len) into out (NUL-terminated). TS_EINVAL for a malformed
 * escape, an encoded NUL (it would cut a path short behind our back), a control character
 * when flags has URL_NO_CONTROLS, or an out buffer that is too small. '+' stays '+'. */
int url_decode(const char *in, size_t len, char *out, size_t size, unsigned flags,
               struct ts_err *err);

/* Escapes everything but RFC 3986 unreserved characters (and '/' when keep_slash), so an
 * identifier with '/' becomes one segment as the IIIF spec asks. Truncates to fit out. */
void url_encode(const char *src, bool keep_slash, char *out, size_t size);

/* The same into a length-carrying buffer: fails (TS_ETOOLONG past its cap) instead of
 * cutting the text short. */
int url_encode_append(struct ts_buf *out, const char *src, bool keep_slash);

#endif
