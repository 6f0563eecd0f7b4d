/* IIIF Image API URL grammar (1.1, 2.1, 3.0): splits, percent-decodes and validates requests. */
#include "protocol/iiif_parse.h"
#include "util/url.h"

#include <string.h>

/* Longest decoded parameter segment we accept; real ones are a few dozen characters. */
#define PARAM_MAX 256
/* Longest number we read: no legitimate pixel value or percentage needs more digits. */
#define NUMBER_MAX 64
#define PIXEL_MAX 2147483647u

/* Pixel values: digits only (no sign, blank or exponent), at most 2^31-1. */
static bool parse_pixels(const char *s, size_t len, uint32_t *out)
{
    if (len == 0 || len > NUMBER_MAX)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
        if (v > PIXEL_MAX)
            return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* Percentages and rotation: "decimal digits and '.'" (3.0 section 4.7), so no sign, exponent,
 * nan or inf. ".5" and "5." are tolerated (the leading zero is only a SHOULD). The value is
 * built from the digits directly so the result does not depend on the C locale; digits beyond
 * the 19th no longer change a double anyway and are ignored. */
bool iiif_parse_decimal(const char *s, size_t len, double *out)
{
    if (len == 0 || len > NUMBER_MAX)
        return false;
    uint64_t mant = 0;
    int sig = 0, frac = 0, digits = 0, scale = 0;
    bool dot = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (dot)
                return false;
            dot = true;
            continue;
        }
        if (c < '0' || c > '9')
            return false;
        digits++;
        if (sig < 19) {
            mant = mant * 10 + (uint64_t)(c - '0');
            if (mant != 0)
                sig++;
            if (dot)
                frac++;
        } else if (!dot) {
            scale++; /* an ignored integer digit still multiplies by ten */
        }
    }
    if (digits == 0)
        return false;
    double v = (double)mant;
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    while (frac > 22) {
        v /= 10.0;
        frac--;
    }
    v /= pow10[frac];
    while (scale-- > 0)
        v *= 10.0;
    *out = v;
    return true;
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int parse_region(int version, const char *s, struct iiif_request *req, struct ts_err *err)
{
    if (strcmp(s, "full") == 0) {
        req->region = IIIF_REGION_FULL;
        return TS_OK;
    }
    if (strcmp(s, "square") == 0) {
        if (version < 2)
            return ts_fail(err, TS_EINVAL, "region 'square' does not exist in IIIF 1.1");
        req->region = IIIF_REGION_SQUARE;
        return TS_OK;
    }
    bool pct = has_prefix(s, "pct:");
    const char *p = pct ? s + 4 : s;
    for (int i = 0; i < 4; i++) {
        const char *end = i < 3 ? strchr(p, ',') : p + strlen(p);
        if (!end)
            return ts_fail(err, TS_EINVAL, "region '%s' needs four comma-separated values", s);
        size_t len = (size_t)(end - p);
        if (pct) {
            if (!iiif_parse_decimal(p, len, &req->region_v[i]))
                return ts_fail(err, TS_EINVAL, "bad percentage in region '%s'", s);
        } else {
            uint32_t v;
            if (!parse_pixels(p, len, &v))
                return ts_fail(err, TS_EINVAL, "bad pixel value in region '%s'", s);
            req->region_v[i] = v;
        }
        p = end + (i < 3 ? 1 : 0);
    }
    req->region = pct ? IIIF_REGION_PERCENT : IIIF_REGION_PIXELS;
    return TS_OK;
}

/* "w,", ",h", "w,h" (and the part after "!"); zero is refused here since no image has it. */
static int parse_wh(const char *s, bool need_both, struct iiif_request *req, struct ts_err *err)
{
    const char *comma = strchr(s, ',');
    if (!comma)
        return ts_fail(err, TS_EINVAL, "size '%s' needs a comma", s);
    size_t wl = (size_t)(comma - s), hl = strlen(comma + 1);
    bool has_w = wl > 0, has_h = hl > 0;
    if (!has_w && !has_h)
        return ts_fail(err, TS_EINVAL, "size ',' has neither width nor height");
    if (need_both && !(has_w && has_h))
        return ts_fail(err, TS_EINVAL, "size '!w,h' needs both width and height");
    req->size_w = req->size_h = 0;
    if (has_w && !parse_pixels(s, wl, &req->size_w))
        return ts_fail(err, TS_EINVAL, "bad width in size '%s'", s);
    if (has_h && !parse_pixels(comma + 1, hl, &req->size_h))
        return ts_fail(err, TS_EINVAL, "bad height in size '%s'", s);
    if ((has_w && req->size_w == 0) || (has_h && req->size_h == 0))
        return ts_fail(err, TS_EINVAL, "size '%s' asks for zero pixels", s);
    req->size = has_w && has_h ? IIIF_SIZE_WH : has_w ? IIIF_SIZE_W : IIIF_SIZE_H;
    return TS_OK;
}

static int parse_size(int version, const char *s, struct iiif_request *req, struct ts_err *err)
{
    req->upscale = false;
    if (s[0] == '^') {
        if (version < 3)
            return ts_fail(err, TS_EINVAL, "'^' sizes exist only in IIIF 3.0");
        req->upscale = true;
        s++;
    }
    if (strcmp(s, "full") == 0) {
        if (version >= 3)
            return ts_fail(err, TS_EINVAL, "size 'full' was replaced by 'max' in IIIF 3.0");
        req->size = IIIF_SIZE_FULL;
        return TS_OK;
    }
    if (strcmp(s, "max") == 0) {
        if (version < 2)
            return ts_fail(err, TS_EINVAL, "size 'max' does not exist in IIIF 1.1");
        req->size = IIIF_SIZE_MAX;
        return TS_OK;
    }
    if (has_prefix(s, "pct:")) {
        if (!iiif_parse_decimal(s + 4, strlen(s + 4), &req->size_pct))
            return ts_fail(err, TS_EINVAL, "bad percentage in size 'pct:%s'", s + 4);
        if (req->size_pct <= 0.0)
            return ts_fail(err, TS_EINVAL, "size 'pct:%s' asks for zero pixels", s + 4);
        req->size = IIIF_SIZE_PCT;
        return TS_OK;
    }
    if (s[0] == '!') {
        int rc = parse_wh(s + 1, true, req, err);
        if (rc == TS_OK)
            req->size = IIIF_SIZE_BEST_FIT;
        return rc;
    }
    return parse_wh(s, false, req, err);
}

static int parse_rotation(int version, const char *s, struct iiif_request *req, struct ts_err *err)
{
    req->mirror = false;
    if (s[0] == '!') {
        if (version < 2)
            return ts_fail(err, TS_EINVAL, "mirroring '!' does not exist in IIIF 1.1");
        req->mirror = true;
        s++;
    }
    if (!iiif_parse_decimal(s, strlen(s), &req->rotation))
        return ts_fail(err, TS_EINVAL, "bad rotation '%s'", s);
    if (req->rotation > 360.0)
        return ts_fail(err, TS_EINVAL, "rotation '%s' is above 360", s);
    return TS_OK;
}

static int parse_quality(int version, const char *s, size_t len, struct iiif_request *req,
                         struct ts_err *err)
{
    static const struct {
        const char *name;
        int min_version, max_version;
        enum ts_quality q;
    } names[] = {
        {"default", 2, 3, TS_QUALITY_DEFAULT}, {"native", 1, 1, TS_QUALITY_DEFAULT},
        {"color", 1, 3, TS_QUALITY_COLOR},     {"gray", 2, 3, TS_QUALITY_GRAY},
        {"grey", 1, 1, TS_QUALITY_GRAY},       {"bitonal", 1, 3, TS_QUALITY_BITONAL},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strlen(names[i].name) == len && memcmp(names[i].name, s, len) == 0 &&
            version >= names[i].min_version && version <= names[i].max_version) {
            req->quality = names[i].q;
            return TS_OK;
        }
    }
    /* Recognised in every version, as iipsrv does; the plan refuses them unless enabled. */
    for (int e = IIIF_EXT_NEGATIVE; e <= IIIF_EXT_LOG; e++) {
        const char *name = iiif_ext_quality_name((enum iiif_ext_quality)e);
        if (strlen(name) == len && memcmp(name, s, len) == 0) {
            req->quality = TS_QUALITY_DEFAULT;
            req->ext_quality = (enum iiif_ext_quality)e;
            return TS_OK;
        }
    }
    return ts_fail(err, TS_EINVAL, "unknown quality '%.*s'", (int)len, s);
}

const char *iiif_ext_quality_name(enum iiif_ext_quality q)
{
    switch (q) {
    case IIIF_EXT_NEGATIVE: return "negative";
    case IIIF_EXT_STRETCH: return "stretch";
    case IIIF_EXT_EQUALIZATION: return "equalization";
    case IIIF_EXT_LOG: return "log";
    default: return "";
    }
}

static int parse_format(const char *s, struct iiif_request *req, struct ts_err *err)
{
    for (int f = 0; f < TS_FORMAT_COUNT; f++) {
        if (strcmp(s, ts_format_ext((enum ts_format)f)) == 0) {
            req->format = (enum ts_format)f;
            return TS_OK;
        }
    }
    /* 1.1 section 6.2: a format not available is 415, 2.1 and 3.0 say 400. */
    return ts_fail(err, req->version == 1 ? TS_EMEDIA : TS_EINVAL, "unknown format '%s'", s);
}

int iiif_parse_image(int version, const char *region, const char *size, const char *rotation,
                     const char *quality_format, struct iiif_request *out, struct ts_err *err)
{
    if (version < 1 || version > 3)
        return ts_fail(err, TS_EINVAL, "unknown IIIF version %d", version);
    struct iiif_request req;
    memset(&req, 0, sizeof req);
    req.version = version;
    int rc = parse_region(version, region, &req, err);
    if (rc == TS_OK)
        rc = parse_size(version, size, &req, err);
    if (rc == TS_OK)
        rc = parse_rotation(version, rotation, &req, err);
    if (rc != TS_OK)
        return rc;
    const char *dot = strchr(quality_format, '.');
    if (!dot) {
        /* 1.1 makes the extension optional (content negotiation, else the server's choice,
         * jpg here: the protocol picks from Accept). 2.1 and 3.0 require it. */
        if (version > 1)
            return ts_fail(err, TS_EINVAL, "missing format extension in '%s'", quality_format);
        rc = parse_quality(version, quality_format, strlen(quality_format), &req, err);
        req.format = TS_FORMAT_JPG;
        req.format_implied = true;
    } else {
        rc = parse_quality(version, quality_format, (size_t)(dot - quality_format), &req, err);
        if (rc == TS_OK)
            rc = parse_format(dot + 1, &req, err);
    }
    if (rc != TS_OK)
        return rc;
    *out = req;
    return TS_OK;
}

/* Decodes segments [first, last) of the raw path and joins them with '/'. */
static int join_identifier(const char *const *seg, const size_t *seg_len, size_t first, size_t last,
                           char *out, struct ts_err *err)
{
    size_t used = 0;
    for (size_t i = first; i < last; i++) {
        if (i > first) {
            if (used + 1 >= IIIF_MAX_IDENTIFIER)
                return ts_fail(err, TS_EINVAL, "identifier too long");
            out[used++] = '/';
        }
        int rc = url_decode(seg[i], seg_len[i], out + used, IIIF_MAX_IDENTIFIER - used,
                            URL_NO_CONTROLS, err);
        if (rc != TS_OK)
            return rc;
        used += strlen(out + used);
    }
    if (used == 0)
        return ts_fail(err, TS_EINVAL, "empty identifier");
    return TS_OK;
}

/* How a path splits (segments are separated by raw '/', the identifier's own slashes should
 * arrive as %2F):
 *   1 segment                          -> BASE  (the identifier)
 *   last segment is "info.json"        -> INFO  (everything before it is the identifier)
 *   5 or more segments                 -> IMAGE (the last four are the parameters); a bad
 *                                         parameter is a 400, never a fallback to BASE
 *   2 to 4 segments otherwise          -> BASE  (an identifier with raw slashes)
 * Empty segments ("a//b", a trailing '/') are refused: they are never part of a valid URL. */
int iiif_parse_url(int version, const char *path, struct iiif_url *out, struct ts_err *err)
{
    enum { MAX_SEGMENTS = 64 };
    const char *seg[MAX_SEGMENTS];
    size_t seg_len[MAX_SEGMENTS];
    size_t n = 0;

    memset(out, 0, sizeof *out);
    if (!path || path[0] == '\0')
        return ts_fail(err, TS_EINVAL, "empty identifier");
    for (const char *p = path;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0)
            return ts_fail(err, TS_EINVAL, "empty path segment");
        if (n == MAX_SEGMENTS)
            return ts_fail(err, TS_EINVAL, "too many path segments");
        seg[n] = p;
        seg_len[n++] = len;
        if (!slash)
            break;
        p = slash + 1;
    }

    if (n == 1) {
        out->target = IIIF_TARGET_BASE;
        return join_identifier(seg, seg_len, 0, 1, out->identifier, err);
    }
    if (seg_len[n - 1] == 9 && memcmp(seg[n - 1], "info.json", 9) == 0) {
        out->target = IIIF_TARGET_INFO;
        return join_identifier(seg, seg_len, 0, n - 1, out->identifier, err);
    }
    if (n < 5) {
        out->target = IIIF_TARGET_BASE;
        return join_identifier(seg, seg_len, 0, n, out->identifier, err);
    }

    out->target = IIIF_TARGET_IMAGE;
    int rc = join_identifier(seg, seg_len, 0, n - 4, out->identifier, err);
    if (rc != TS_OK)
        return rc;
    char param[4][PARAM_MAX];
    for (size_t i = 0; i < 4; i++) {
        rc = url_decode(seg[n - 4 + i], seg_len[n - 4 + i], param[i], PARAM_MAX, URL_NO_CONTROLS,
                        err);
        if (rc != TS_OK)
            return rc;
    }
    return iiif_parse_image(version, param[0], param[1], param[2], param[3], &out->req, err);
}
