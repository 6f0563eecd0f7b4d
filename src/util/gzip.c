/* gzip content coding with zlib (already a dependency of libpng and libtiff). */
#include "util/gzip.h"
#include "util/accept.h"
#include "util/status.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

bool ts_accepts_gzip(const char *accept_encoding)
{
    if (!accept_encoding)
        return false;
    double gzip = -1, star = -1;
    struct ts_list_elem e;
    for (const char *p = accept_encoding; (p = ts_list_next(p, &e)) != NULL;) {
        if ((e.name_len == 4 && !strncasecmp(e.name, "gzip", 4)) ||
            (e.name_len == 6 && !strncasecmp(e.name, "x-gzip", 6)))
            gzip = e.q > gzip ? e.q : gzip;
        else if (e.name_len == 1 && e.name[0] == '*')
            star = e.q;
    }
    return gzip >= 0 ? gzip > 0 : star > 0;
}

int ts_gzip(const void *in, size_t len, struct ts_buf *out)
{
    if (len > UINT_MAX / 2)
        return TS_ETOOLONG;
    z_stream z;
    memset(&z, 0, sizeof z);
    /* windowBits 15 + 16: a gzip wrapper rather than zlib's own. Level 6 is zlib's default
     * balance; JSON this repetitive shrinks several times over at it. */
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return TS_ENOMEM;
    uLong bound = deflateBound(&z, (uLong)len);
    int rc = ts_buf_reserve(out, bound);
    if (rc) {
        deflateEnd(&z);
        return rc;
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = out->data + out->len;
    z.avail_out = (uInt)bound;
    int zrc = deflate(&z, Z_FINISH);
    size_t produced = bound - z.avail_out;
    deflateEnd(&z);
    if (zrc != Z_STREAM_END)
        return TS_ENOMEM;
    out->len += produced;
    return TS_OK;
}
