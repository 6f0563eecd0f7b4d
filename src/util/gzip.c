/* gzip content coding with zlib (already a dependency of libpng and libtiff). */
#include "util/gzip.h"
#include "util/status.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

/* The q-value of one list element's parameters ("; q=0.5"); 1 when absent, 0 when malformed. */
static double element_q(const char *params, size_t len)
{
    const char *p = params, *end = params + len;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi ? semi : end;
        while (p < stop && (*p == ' ' || *p == '\t'))
            p++;
        if (stop - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            char num[8] = {0};
            size_t n = (size_t)(stop - p - 2);
            while (n > 0 && (p[2 + n - 1] == ' ' || p[2 + n - 1] == '\t'))
                n--;
            if (n == 0 || n >= sizeof num)
                return 0;
            memcpy(num, p + 2, n);
            char *tail;
            double q = strtod(num, &tail);
            return *tail == '\0' && q >= 0 && q <= 1 ? q : 0;
        }
        p = semi ? semi + 1 : end;
    }
    return 1;
}

bool ts_accepts_gzip(const char *accept_encoding)
{
    if (!accept_encoding)
        return false;
    double gzip = -1, star = -1;
    for (const char *p = accept_encoding; *p;) {
        size_t len = strcspn(p, ",");
        const char *e = p, *end = p + len;
        while (e < end && (*e == ' ' || *e == '\t'))
            e++;
        size_t name = 0;
        while (e + name < end && e[name] != ';' && e[name] != ' ' && e[name] != '\t')
            name++;
        const char *params = memchr(e, ';', (size_t)(end - e));
        double q = params ? element_q(params + 1, (size_t)(end - params - 1)) : 1;
        if ((name == 4 && !strncasecmp(e, "gzip", 4)) ||
            (name == 6 && !strncasecmp(e, "x-gzip", 6)))
            gzip = q > gzip ? q : gzip;
        else if (name == 1 && e[0] == '*')
            star = q;
        p = *end ? end + 1 : end;
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
