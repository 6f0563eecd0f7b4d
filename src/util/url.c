/* Percent-decoding and -encoding, strict about what may hide in an escape. */
#include "util/url.h"

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int url_decode(const char *in, size_t len, char *out, size_t size, unsigned flags,
               struct ts_err *err)
{
    size_t o = 0;
    if (size == 0)
        return ts_fail(err, TS_EINVAL, "URL part too long");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            int hi = i + 1 < len ? hex_value(in[i + 1]) : -1;
            int lo = i + 2 < len ? hex_value(in[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return ts_fail(err, TS_EINVAL, "malformed percent escape in URL");
            c = (unsigned char)(hi * 16 + lo);
            if (c == 0)
                return ts_fail(err, TS_EINVAL, "encoded NUL in URL");
            i += 2;
        }
        /* Other controls have no business in a file name and would end up in logs. */
        if ((flags & URL_NO_CONTROLS) && (c < 0x20 || c == 0x7f))
            return ts_fail(err, TS_EINVAL, "control character in URL");
        if (o + 1 >= size)
            return ts_fail(err, TS_EINVAL, "URL part too long");
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return TS_OK;
}

void url_encode(const char *src, bool keep_slash, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    if (size == 0)
        return;
    for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
        unsigned char c = *p;
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/');
        /* Stop before a character (never half an escape) that would leave no room for the NUL. */
        if ((plain ? 1 : 3) >= size - o)
            break;
        if (plain) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
}

int url_encode_append(struct ts_buf *out, const char *src, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
        unsigned char c = *p;
        char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/');
        int rc = plain ? ts_buf_append(out, p, 1) : ts_buf_append(out, esc, 3);
        if (rc)
            return rc;
    }
    return TS_OK;
}
