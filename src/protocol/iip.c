/* IIP (iipsrv's native protocol): parse the command list, answer OBJ text, JTL tiles and CVT. */
#include "protocol/iip.h"
#include "encode/encode.h"
#include "util/url.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int iip_pyramid_build(const struct ts_image_info *info, uint32_t default_tile,
                      struct iip_pyramid *out, struct ts_err *err)
{
    memset(out, 0, sizeof *out);
    uint32_t tw = info->levels[0].tile_w ? info->levels[0].tile_w : default_tile;
    uint32_t th = info->levels[0].tile_h ? info->levels[0].tile_h : tw;
    if (!info->width || !info->height || !tw || !th)
        return ts_fail(err, TS_EINVAL, "image %ux%u or tile %ux%u is empty", info->width,
                       info->height, tw, th);
    uint32_t w[IIP_MAX_RES], h[IIP_MAX_RES], n = 1;
    w[0] = info->width;
    h[0] = info->height;
    while (n < IIP_MAX_RES) {
        bool stored = n < info->nlevels;
        /* Every stored level counts (iipsrv's Resolution-number does); beyond them, halve
         * until one tile holds the image. */
        if (!stored && w[n - 1] <= tw && h[n - 1] <= th)
            break;
        uint32_t nw = stored ? info->levels[n].width : w[n - 1] / 2;
        uint32_t nh = stored ? info->levels[n].height : h[n - 1] / 2;
        nw = nw ? nw : 1;
        nh = nh ? nh : 1;
        if (nw == w[n - 1] && nh == h[n - 1])
            break;
        w[n] = nw;
        h[n] = nh;
        n++;
    }
    out->width = info->width;
    out->height = info->height;
    out->tile_w = tw;
    out->tile_h = th;
    out->nres = n;
    for (uint32_t i = 0; i < n; i++) {
        out->res_w[i] = w[n - 1 - i];
        out->res_h[i] = h[n - 1 - i];
    }
    return TS_OK;
}

/* Maps a coordinate of a resolution lw wide onto the full image, rounding to nearest. */
static uint32_t to_full(uint32_t v, uint32_t lw, uint32_t full)
{
    if (v >= lw)
        return full;
    return (uint32_t)(((uint64_t)v * full + lw / 2) / lw);
}

void iip_plan_level_rect(const struct iip_pyramid *p, uint32_t lw, uint32_t lh, uint32_t x,
                         uint32_t y, uint32_t w, uint32_t h, struct ts_plan *out)
{
    memset(out, 0, sizeof *out);
    out->img_w = p->width;
    out->img_h = p->height;
    uint32_t x0 = to_full(x, lw, p->width), x1 = to_full(x + w, lw, p->width);
    uint32_t y0 = to_full(y, lh, p->height), y1 = to_full(y + h, lh, p->height);
    if (x0 >= p->width)
        x0 = p->width - 1;
    if (y0 >= p->height)
        y0 = p->height - 1;
    out->rx = x0;
    out->ry = y0;
    out->rw = x1 > x0 ? x1 - x0 : 1;
    out->rh = y1 > y0 ? y1 - y0 : 1;
    out->out_w = w ? w : 1;
    out->out_h = h ? h : 1;
    out->quality = TS_QUALITY_DEFAULT;
    out->format = TS_FORMAT_JPG;
}

int iip_tile_plan(const struct iip_pyramid *p, uint32_t res, uint32_t tile, int rot,
                  struct ts_plan *out, struct ts_err *err)
{
    if (res >= p->nres)
        return ts_fail(err, TS_ENOTFOUND, "asked for non-existent resolution: %u", res);
    uint32_t lw = p->res_w[res], lh = p->res_h[res];
    uint32_t ntx = (lw + p->tile_w - 1) / p->tile_w, nty = (lh + p->tile_h - 1) / p->tile_h;
    if ((uint64_t)tile >= (uint64_t)ntx * nty)
        return ts_fail(err, TS_ENOTFOUND, "asked for non-existent tile: %u", tile);
    if (rot == 180)
        tile = ntx * nty - 1 - tile;
    uint32_t x = (tile % ntx) * p->tile_w, y = (tile / ntx) * p->tile_h;
    uint32_t w = lw - x < p->tile_w ? lw - x : p->tile_w;
    uint32_t h = lh - y < p->tile_h ? lh - y : p->tile_h;
    iip_plan_level_rect(p, lw, lh, x, y, w, h, out);
    return TS_OK;
}

static void lower_copy(const char *src, size_t len, char *out, size_t size)
{
    size_t n = len < size - 1 ? len : size - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)src[i]);
    out[n] = '\0';
}

/* atoi-like: a leading run of digits, 0 when there is none (iipsrv's atoi does the same). */
static uint32_t lenient_uint(const char *s)
{
    uint64_t v = 0;
    while (*s == ' ')
        s++;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > UINT32_MAX)
            return UINT32_MAX;
    }
    return (uint32_t)v;
}

static float clamp01(float v)
{
    if (!(v >= 0.0f)) /* NaN too */
        return 0.0f;
    return v > 1.0f ? 1.0f : v;
}

static int parse_rgn(const char *arg, struct iip_request *r, struct ts_err *err)
{
    float v[4];
    const char *p = arg;
    for (int i = 0; i < 4; i++) {
        char *end;
        v[i] = strtof(p, &end);
        if (end == p || (i < 3 && *end != ',') || (i == 3 && *end))
            return ts_fail(err, TS_EINVAL, "RGN wants x,y,w,h fractions, got '%s'", arg);
        p = end + 1;
    }
    for (int i = 0; i < 4; i++)
        r->rgn[i] = clamp01(v[i]);
    /* A region running off the image is cut at its edge. */
    if (r->rgn[0] + r->rgn[2] > 1.0f)
        r->rgn[2] = 1.0f - r->rgn[0];
    if (r->rgn[1] + r->rgn[3] > 1.0f)
        r->rgn[3] = 1.0f - r->rgn[1];
    if (r->rgn[2] <= 0.0f || r->rgn[3] <= 0.0f)
        return ts_fail(err, TS_EINVAL, "RGN '%s' is empty", arg);
    r->has_rgn = true;
    return TS_OK;
}

static int parse_jtl(const char *arg, struct iip_request *r, struct ts_err *err)
{
    char *end;
    unsigned long res = strtoul(arg, &end, 10);
    if (end == arg || *end != ',' || res > 1000)
        return ts_fail(err, TS_EINVAL, "JTL wants resolution,tile, got '%s'", arg);
    const char *t = end + 1;
    unsigned long tile = strtoul(t, &end, 10);
    if (end == t || (*end && *end != ',') || tile > UINT32_MAX)
        return ts_fail(err, TS_EINVAL, "JTL wants resolution,tile, got '%s'", arg);
    r->action = IIP_ACTION_JTL;
    r->jtl_res = (uint32_t)res;
    r->jtl_tile = (uint32_t)tile;
    return TS_OK;
}

static void parse_rot(const char *arg, struct iip_request *r)
{
    if (*arg == '!') {
        r->flip = true;
        arg++;
    }
    double deg = strtod(arg, NULL);
    /* Only quarter turns are applied, as iipsrv does; anything else leaves the image upright.
     * Compare as doubles: a huge or NaN angle must never be converted to int. */
    r->rot = deg == 90.0 ? 90 : deg == 180.0 ? 180 : deg == 270.0 ? 270 : 0;
}

/* Commands iipsrv parses but never acts on: accepted and ignored so viewers that send them
 * still get images (docs/iipsrv-migration.md lists them). */
static bool ignored_command(const char *cmd)
{
    /* ICC too: iipsrv 1.3 builds its ICC handler with the colour code compiled out. */
    static const char *const names[] = {"cmap", "pos", "icc"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(cmd, names[i]))
            return true;
    return false;
}

static void adjust_on(struct iip_request *r)
{
    if (!r->adjust.on) {
        r->adjust.on = true;
        r->adjust.gamma = 1.0f;
        r->adjust.contrast = 1.0f;
    }
}

/* A finite number and nothing after it but spaces, or false. */
static bool parse_float(const char *s, float *out)
{
    char *end;
    double v = strtod(s, &end);
    while (end != s && *end == ' ')
        end++;
    if (end == s || *end || !isfinite(v) || v > 1e6 || v < -1e6)
        return false;
    *out = (float)v;
    return true;
}

/* CNV: a kernel by name, or "[a,b,c,...]" with 1, 9 or 25 entries (iipsrv's largest is 5x5). */
static int parse_cnv(const char *arg, struct iip_request *r, struct ts_err *err)
{
    static const struct {
        const char *name;
        float k[9];
    } named[] = {
        {"sobel", {-1, 0, 1, -2, 0, 2, -1, 0, 1}},
        {"prewitt", {1, 0, -1, 1, 0, -1, 1, 0, -1}},
        {"scharr", {-3, 0, 3, -10, 0, 10, -3, 0, 3}},
        {"laplace", {-1, -1, -1, -1, 8, -1, -1, -1, -1}},
        {"gaussian", {1, 2, 1, 2, 4, 2, 1, 2, 1}},
        {"sharpen", {0, -1, 0, -1, 5, -1, 0, -1, 0}},
        {"emboss", {-2, -1, 0, -1, 1, 1, 0, 1, 2}},
    };
    char body[IIP_MAX_PATH];
    const char *open = strchr(arg, '['), *close = strrchr(arg, ']');
    const char *b = open ? open + 1 : arg;
    size_t len = open && close && close > open ? (size_t)(close - b) : strlen(b);
    lower_copy(b, len, body, sizeof body);
    adjust_on(r);
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        if (!strcmp(body, named[i].name)) {
            r->adjust.ksize = 3;
            memcpy(r->adjust.kernel, named[i].k, sizeof named[i].k);
            return TS_OK;
        }
    uint32_t n = 0;
    for (char *save = NULL, *tok = strtok_r(body, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (n >= TS_KERNEL_MAX * TS_KERNEL_MAX || !parse_float(tok, &r->adjust.kernel[n]))
            return ts_fail(err, TS_EINVAL, "CNV wants a kernel name or up to 5x5 numbers");
        n++;
    }
    if (n != 1 && n != 9 && n != 25)
        return ts_fail(err, TS_EINVAL, "CNV kernel of %u values is not 1x1, 3x3 or 5x5", n);
    r->adjust.ksize = n == 1 ? 1 : n == 9 ? 3 : 5;
    return TS_OK;
}

/* CTW: "[a,b,c;d,e,f;g,h,i]", a row per output channel (1 or 3 of them, so the result stays an
 * image the encoders take), a column per input channel (at most 4; missing ones count 0). */
static int parse_ctw(const char *arg, struct iip_request *r, struct ts_err *err)
{
    char body[IIP_MAX_PATH];
    const char *open = strchr(arg, '['), *close = strrchr(arg, ']');
    const char *b = open ? open + 1 : arg;
    size_t len = open && close && close > open ? (size_t)(close - b) : strlen(b);
    snprintf(body, sizeof body, "%.*s", (int)len, b);
    uint32_t rows = 0;
    adjust_on(r);
    memset(r->adjust.twist, 0, sizeof r->adjust.twist);
    for (char *rs = NULL, *row = strtok_r(body, ";", &rs); row; row = strtok_r(NULL, ";", &rs)) {
        uint32_t cols = 0;
        if (rows >= 3)
            return ts_fail(err, TS_EINVAL, "CTW wants 1 or 3 rows");
        for (char *cs = NULL, *v = strtok_r(row, ",", &cs); v; v = strtok_r(NULL, ",", &cs)) {
            while (*v == ' ')
                v++;
            if (cols >= 4 || !parse_float(v, &r->adjust.twist[rows][cols]))
                return ts_fail(err, TS_EINVAL, "CTW wants rows of up to 4 numbers");
            cols++;
        }
        if (cols == 0)
            return ts_fail(err, TS_EINVAL, "CTW has an empty row");
        rows++;
    }
    if (rows != 1 && rows != 3)
        return ts_fail(err, TS_EINVAL, "CTW wants 1 or 3 rows, got %u", rows);
    r->adjust.twist_rows = rows;
    return TS_OK;
}

/* atoi: leading spaces, a sign, a run of digits; 0 when there are none (clamped, not wrapped). */
static int32_t lenient_int(const char *s)
{
    while (*s == ' ')
        s++;
    bool neg = *s == '-';
    if (*s == '-' || *s == '+')
        s++;
    int64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++)
        if ((v = v * 10 + (*s - '0')) > INT32_MAX)
            v = INT32_MAX;
    return (int32_t)(neg ? -v : v);
}

/* atof: the number at the start, 0 when there is none; kept finite and in float range. */
static float lenient_float(const char *s)
{
    double v = strtod(s, NULL);
    if (!isfinite(v))
        return 0.0f;
    return v > 1e30 ? 1e30f : v < -1e30 ? -1e30f : (float)v;
}

/* SHD=h,v: two angles, read as iipsrv's atoi reads them; with fewer, iipsrv shades nothing. */
static void parse_shd(const char *arg, struct iip_request *r)
{
    const char *comma = strchr(arg, ',');
    if (!comma)
        return;
    adjust_on(r);
    r->adjust.shade = true;
    r->adjust.shade_h = lenient_int(arg);
    r->adjust.shade_v = lenient_int(comma + 1);
}

/* MINMAX=c:min,max (c a channel from 0, or "-" for all): kept until the image is known, since
 * iipsrv ignores a channel the image does not have. */
static int parse_minmax(const char *arg, struct iip_request *r, struct ts_err *err)
{
    if (r->nminmax >= IIP_MAX_MINMAX)
        return ts_fail(err, TS_EINVAL, "more than %d MINMAX commands", IIP_MAX_MINMAX);
    const char *colon = strchr(arg, ':');
    const char *range = colon ? colon + 1 : arg;
    const char *comma = strchr(range, ',');
    struct iip_minmax *m = &r->minmax[r->nminmax++];
    bool all = colon && colon == arg + 1 && arg[0] == '-';
    m->channel = all ? -1 : lenient_int(arg);
    if (!all && m->channel < 0)
        m->channel = INT32_MAX; /* out of bounds: ignored, as iipsrv does */
    m->min = lenient_float(range);
    m->max = lenient_float(comma ? comma + 1 : range);
    return TS_OK;
}

/* CTW, GAM, INV, CMP, CNV, CNT, COL, SHD and MINMAX: pixel adjustments, in the plan for the
 * renderer. */
static int apply_adjust(struct iip_request *r, const char *cmd, const char *value, bool *done,
                        struct ts_err *err)
{
    char word[16];
    lower_copy(value, strlen(value), word, sizeof word);
    *done = true;
    if (!strcmp(cmd, "gam")) {
        adjust_on(r);
        if (!strcmp(word, "log") || !strcmp(word, "logarithm")) {
            r->adjust.log = true;
            return TS_OK;
        }
        if (!parse_float(value, &r->adjust.gamma) || r->adjust.gamma < 0.0f)
            return ts_fail(err, TS_EINVAL, "GAM wants a number >= 0 or log, got '%s'", value);
        return TS_OK;
    }
    if (!strcmp(cmd, "cnt")) {
        /* Equalisation and stretch read the whole image's histogram, which the core supplies.
         * As in iipsrv, a stretch is a contrast setting (a later number replaces it), while
         * equalisation stays on beside either. */
        adjust_on(r);
        if (!strcmp(word, "eq") || !strcmp(word, "equalization")) {
            r->adjust.equalize = true;
            return TS_OK;
        }
        if (!strcmp(word, "st") || !strcmp(word, "stretch")) {
            r->adjust.stretch = true;
            r->adjust.contrast = 1.0f;
            return TS_OK;
        }
        r->adjust.stretch = false;
        if (!parse_float(value, &r->adjust.contrast) || r->adjust.contrast < 0.0f)
            return ts_fail(err, TS_EINVAL, "CNT wants a number >= 0, eq or st, got '%s'", value);
        return TS_OK;
    }
    if (!strcmp(cmd, "shd")) {
        parse_shd(value, r);
        return TS_OK;
    }
    if (!strcmp(cmd, "minmax"))
        return parse_minmax(value, r, err);
    if (!strcmp(cmd, "inv")) {
        adjust_on(r);
        r->adjust.invert = true;
        return TS_OK;
    }
    if (!strcmp(cmd, "cmp")) {
        static const char *const maps[] = {"hot", "cold", "jet", "red", "green", "blue"};
        static const enum ts_cmap ids[] = {TS_CMAP_HOT, TS_CMAP_COLD,  TS_CMAP_JET,
                                           TS_CMAP_RED, TS_CMAP_GREEN, TS_CMAP_BLUE};
        for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++)
            if (!strcmp(word, maps[i])) {
                adjust_on(r);
                r->adjust.cmap = ids[i];
                return TS_OK;
            }
        /* iipsrv turns the map off for any other name; so does Tessera. */
        r->adjust.cmap = TS_CMAP_NONE;
        return TS_OK;
    }
    if (!strcmp(cmd, "cnv"))
        return parse_cnv(value, r, err);
    if (!strcmp(cmd, "ctw"))
        return parse_ctw(value, r, err);
    if (!strcmp(cmd, "col")) {
        if (!strcmp(word, "grey") || !strcmp(word, "gray"))
            r->col = TS_QUALITY_GRAY;
        else if (!strcmp(word, "binary"))
            r->col = TS_QUALITY_BITONAL;
        else
            return ts_fail(err, TS_EINVAL, "COL wants grey or binary, got '%s'", value);
        return TS_OK;
    }
    *done = false;
    return TS_OK;
}

static int apply_command(struct iip_request *r, const char *cmd, const char *raw_cmd,
                         size_t raw_len, const char *arg, size_t arg_len, struct ts_err *err)
{
    char value[IIP_MAX_PATH];
    int rc = url_decode(arg, arg_len, value, sizeof value, 0, err);
    if (rc)
        return rc;
    if (!strcmp(cmd, "fif"))
        return url_decode(arg, arg_len, r->fif, sizeof r->fif, 0, err);
    if (!strcmp(cmd, "obj")) {
        if (r->nobj >= IIP_MAX_OBJ)
            return ts_fail(err, TS_EINVAL, "too many OBJ commands");
        lower_copy(value, strlen(value), r->objs[r->nobj++], sizeof r->objs[0]);
        return TS_OK;
    }
    /* JTL's siblings are the same tile in another format: PNG, WebP, TIFF. */
    if (!strcmp(cmd, "jtl") || !strcmp(cmd, "jtls") || !strcmp(cmd, "ptl") || !strcmp(cmd, "wtl") ||
        !strcmp(cmd, "ttl")) {
        r->tile_format = cmd[0] == 'p'   ? TS_FORMAT_PNG
                         : cmd[0] == 'w' ? TS_FORMAT_WEBP
                         : cmd[0] == 't' ? TS_FORMAT_TIF
                                         : TS_FORMAT_JPG;
        return parse_jtl(value, r, err);
    }
    if (!strcmp(cmd, "cvt")) {
        char fmt[16];
        lower_copy(value, strlen(value), fmt, sizeof fmt);
        if (!strcmp(fmt, "avif"))
            return ts_fail(err, TS_EUNSUPPORTED, "CVT=avif: this server has no AVIF encoder");
        r->action = IIP_ACTION_CVT;
        r->cvt_format = !strcmp(fmt, "png")                           ? TS_FORMAT_PNG
                        : !strcmp(fmt, "webp")                        ? TS_FORMAT_WEBP
                        : !strcmp(fmt, "tif") || !strcmp(fmt, "tiff") ? TS_FORMAT_TIF
                                                                      : TS_FORMAT_JPG;
        return TS_OK;
    }
    if (!strcmp(cmd, "spectra")) {
        iip_parse_spectra(value, r);
        return TS_OK;
    }
    if (!strcmp(cmd, "pfl")) {
        iip_parse_pfl(value, r);
        return TS_OK;
    }
    if (!strcmp(cmd, "wid")) {
        r->wid = lenient_uint(value);
        return TS_OK;
    }
    if (!strcmp(cmd, "hei")) {
        r->hei = lenient_uint(value);
        return TS_OK;
    }
    if (!strcmp(cmd, "rgn"))
        return parse_rgn(value, r, err);
    if (!strcmp(cmd, "qlt")) {
        uint32_t q = lenient_uint(value);
        r->qlt = q < 1 ? 1 : q > 100 ? 100 : (int)q;
        return TS_OK;
    }
    if (!strcmp(cmd, "rot")) {
        parse_rot(value, r);
        return TS_OK;
    }
    if (!strcmp(cmd, "sds")) {
        /* iipsrv: "h,v", or "h" alone, which sets the vertical angle to 0 (not to 90). */
        const char *comma = strchr(value, ',');
        r->sds_h = lenient_int(value);
        r->sds_v = comma ? lenient_int(comma + 1) : 0;
        return TS_OK;
    }
    if (!strcmp(cmd, "lyr")) {
        /* iipsrv reads atoi's number and decodes that many layers; none, zero or a negative
         * count, and more layers than the image has, all decode every layer. */
        int32_t n = lenient_int(value);
        r->layers = n > 0 ? (uint32_t)n : 0;
        return TS_OK;
    }
    bool done;
    rc = apply_adjust(r, cmd, value, &done, err);
    if (rc == TS_EINVAL)
        snprintf(r->bad_command, sizeof r->bad_command, "%.*s", (int)raw_len, raw_cmd);
    if (rc || done)
        return rc;
    if (ignored_command(cmd))
        return TS_OK;
    if (!strcmp(cmd, "til")) {
        snprintf(r->bad_command, sizeof r->bad_command, "%.*s", (int)raw_len, raw_cmd);
        return ts_fail(err, TS_EUNSUPPORTED,
                       "IIP command %s is not supported: FlashPix-era tile bundles "
                       "(application/vnd.netfpx) that no current viewer asks for",
                       r->bad_command);
    }
    if (!strcmp(cmd, "atl")) {
        snprintf(r->bad_command, sizeof r->bad_command, "%.*s", (int)raw_len, raw_cmd);
        return ts_fail(err, TS_EUNSUPPORTED,
                       "IIP command %s is not supported: this server has no AVIF encoder",
                       r->bad_command);
    }
    snprintf(r->bad_command, sizeof r->bad_command, "%.*s", (int)raw_len, raw_cmd);
    return ts_fail(err, TS_EINVAL, "unknown IIP command '%s'", r->bad_command);
}

int iip_parse(const char *query, struct iip_request *out, struct ts_err *err)
{
    memset(out, 0, sizeof *out);
    out->qlt = -1;
    out->cvt_format = TS_FORMAT_JPG;
    out->sds_v = 90;
    const char *p = query ? query : "";
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len) {
            const char *eq = memchr(p, '=', len);
            size_t klen = eq ? (size_t)(eq - p) : len;
            const char *arg = eq ? eq + 1 : p + len;
            size_t alen = eq ? len - klen - 1 : 0;
            char cmd[16];
            if (klen >= sizeof cmd) {
                snprintf(out->bad_command, sizeof out->bad_command, "%.*s",
                         (int)(klen < 39 ? klen : 39), p);
                return ts_fail(err, TS_EINVAL, "unknown IIP command '%s'", out->bad_command);
            }
            lower_copy(p, klen, cmd, sizeof cmd);
            int rc = apply_command(out, cmd, p, klen, arg, alen, err);
            if (rc)
                return rc;
        }
        p += len + (amp ? 1 : 0);
    }
    return TS_OK;
}

/* Float results of iipsrv's arithmetic, clamped into uint32_t: huge WID/HEI values or NaN
 * from degenerate regions must not become undefined conversions. */
static uint32_t to_u32(double v)
{
    if (!(v >= 0.0))
        return 0;
    if (v >= 4294967295.0)
        return UINT32_MAX;
    return (uint32_t)v;
}

/* iipsrv's View and CVT arithmetic (as in Debian's iipsrv 1.1), reproduced with the same
 * float steps so output sizes agree to the pixel, rounding quirks included. */
static void request_size(const struct iip_pyramid *p, const struct iip_request *r, float vw,
                         float vh, uint32_t max_size, uint32_t *w_out, uint32_t *h_out)
{
    uint32_t w = r->wid, h = r->hei;
    float ratio = (vw * (float)p->width) / (vh * (float)p->height);
    if (!r->wid && r->hei) {
        w = to_u32(round((float)r->hei * ratio));
    } else if (!r->hei && r->wid) {
        h = to_u32(round((float)r->wid / ratio));
    } else if (!r->wid && !r->hei) {
        w = p->width;
        h = p->height;
    } else {
        float xscale = (float)r->wid / (vw * (float)p->width);
        float yscale = (float)r->hei / (vh * (float)p->height);
        if (xscale > yscale)
            w = to_u32(round((float)r->hei * ratio));
        else
            h = to_u32(round((float)r->wid / ratio));
    }
    if (max_size && (w > max_size || h > max_size)) {
        if (w > h) {
            w = max_size;
            h = to_u32(round((float)w / ratio));
        } else if (h > w) {
            h = max_size;
            w = to_u32(round((float)h * ratio));
        } else {
            w = h = max_size;
        }
    }
    *w_out = w;
    *h_out = h;
}

/* The smallest resolution that, halved once more, would fall below the requested size. */
static int resolution_for(uint32_t nres, uint32_t dimension, uint32_t requested, int current)
{
    int j = (int)nres - 1;
    uint32_t d = dimension, rs = requested < 1 ? 1 : requested;
    for (;;) {
        d /= 2;
        if (d < rs)
            break;
        j--;
    }
    if (j < 0)
        j = 0;
    return j > current ? j : current;
}

/* One axis of the viewport at a resolution shift halvings below full, cut to its size. */
static void view_axis(uint32_t full, uint32_t shift, uint32_t res_size, float pos, float len,
                      uint32_t *o_out, uint32_t *l_out)
{
    double d = ldexp(1.0, (int)shift);
    uint32_t o = to_u32(round((float)((float)full * pos) / d));
    uint32_t l = to_u32(round(round((float)(len * (float)full)) / d));
    if (o > res_size)
        o = res_size;
    if (l + o > res_size)
        l = res_size - o;
    *o_out = o;
    *l_out = l < 1 ? 1 : l;
}

int iip_cvt_plan(const struct iip_pyramid *p, const struct iip_request *r, uint32_t max_size,
                 struct ts_plan *out, struct ts_err *err)
{
    float vl = r->has_rgn ? r->rgn[0] : 0.0f, vt = r->has_rgn ? r->rgn[1] : 0.0f;
    float vw = r->has_rgn ? r->rgn[2] : 1.0f, vh = r->has_rgn ? r->rgn[3] : 1.0f;
    uint32_t out_w, out_h;
    request_size(p, r, vw, vh, max_size, &out_w, &out_h);
    if (!out_w || !out_h)
        return ts_fail(err, TS_EINVAL, "CVT output would be empty");
    int res = 0;
    res = resolution_for(p->nres, p->width, to_u32(floor((float)out_w / vw)), res);
    res = resolution_for(p->nres, p->height, to_u32(floor((float)out_h / vh)), res);
    uint32_t shift = p->nres - 1 - (uint32_t)res;
    uint32_t view_w = p->res_w[res], view_h = p->res_h[res], left, top;
    bool viewport = vw < 1.0f || vh < 1.0f || vl > 0.0f || vt > 0.0f;
    if (viewport) {
        view_axis(p->width, shift, p->res_w[res], vl, vw, &left, &view_w);
        view_axis(p->height, shift, p->res_h[res], vt, vh, &top, &view_h);
    }
    /* Fit within the requested box unless the two differ by less than 0.1%. */
    float ratio = ((float)out_w / (float)view_w) / ((float)out_h / (float)view_h);
    if (ratio < 1.001f)
        out_h = to_u32(round(((float)out_w / (float)view_w) * (float)view_h));
    else if (ratio > 1.001f)
        out_w = to_u32(round(((float)out_h / (float)view_h) * (float)view_w));
    out_w = out_w ? out_w : 1;
    out_h = out_h ? out_h : 1;

    memset(out, 0, sizeof *out);
    out->img_w = p->width;
    out->img_h = p->height;
    out->rw = p->width;
    out->rh = p->height;
    if (viewport) {
        uint32_t x = to_u32(round((double)vl * p->width));
        uint32_t y = to_u32(round((double)vt * p->height));
        x = x < p->width ? x : p->width - 1;
        y = y < p->height ? y : p->height - 1;
        uint32_t w = to_u32(round((double)vw * p->width));
        uint32_t h = to_u32(round((double)vh * p->height));
        out->rx = x;
        out->ry = y;
        out->rw = w < 1 ? 1 : w > p->width - x ? p->width - x : w;
        out->rh = h < 1 ? 1 : h > p->height - y ? p->height - y : h;
    }
    out->out_w = out_w;
    out->out_h = out_h;
    out->rotation = r->rot;
    out->mirror = r->flip;
    out->quality = TS_QUALITY_DEFAULT;
    out->format = r->cvt_format;
    return TS_OK;
}

uint32_t iip_max_cvt(const struct ts_config *cfg)
{
    if (cfg->max_cvt == UINT32_MAX)
        return 0;
    return cfg->max_cvt ? cfg->max_cvt : IIP_DEFAULT_MAX_CVT;
}

/* iipsrv's error answer: "Error/<n>:<class> <code> <argument>" in the IIP MIME type, n being
 * the length of what follows the colon. */
static int iip_error_body(const struct ts_err *err, struct ts_buf *body)
{
    return ts_buf_appendf(body, "Error/%zu:%s %s\r\n", strlen(err->code) + 1 + strlen(err->msg),
                          err->code, err->msg);
}

static const struct ts_error_style iip_errors = {"application/vnd.netfpx", true, iip_error_body,
                                                 NULL};

static int iip_fail(struct ts_err *err, const char *code, const char *arg)
{
    /* arg may be err->msg itself */
    char text[sizeof err->msg];
    snprintf(text, sizeof text, "%s", arg);
    ts_fail(err, TS_EINVAL, "%s", text);
    snprintf(err->code, sizeof err->code, "%s", code);
    return TS_EINVAL;
}

static void free_ctx(void *p)
{
    free(p);
}

void iip_minmax_adjust(const struct iip_request *r, const struct ts_image_info *info,
                       struct ts_adjust *a)
{
    if (!r->nminmax)
        return;
    double full = info->bits_per_sample > 8 ? 65535.0 : 255.0;
    float lo[4], hi[4];
    for (int c = 0; c < 4; c++) {
        bool tagged = info->has_sample_range && info->sample_max[c] > info->sample_min[c];
        lo[c] = tagged ? (float)(info->sample_min[c] / full) : 0.0f;
        hi[c] = tagged ? (float)(info->sample_max[c] / full) : 1.0f;
    }
    bool any = false;
    for (unsigned i = 0; i < r->nminmax; i++) {
        const struct iip_minmax *m = &r->minmax[i];
        if (m->channel >= (int)info->channels)
            continue;
        for (int c = m->channel < 0 ? 0 : m->channel;
             c < (m->channel < 0 ? (int)info->channels : m->channel + 1) && c < 4; c++) {
            lo[c] = (float)(m->min / full);
            hi[c] = (float)(m->max / full);
        }
        any = true;
    }
    if (!any)
        return;
    if (!a->on) {
        a->on = true;
        a->gamma = 1.0f;
        a->contrast = 1.0f;
    }
    a->range = true;
    memcpy(a->range_lo, lo, sizeof lo);
    memcpy(a->range_hi, hi, sizeof hi);
}

static int produce_iip(const struct ts_app *app, const struct ts_job *job,
                       const struct ts_image_info *info, struct ts_product *out, struct ts_err *err)
{
    const struct iip_request *r = job->ctx;
    struct iip_pyramid pyr;
    int rc = iip_pyramid_build(info, app->cfg.default_tile, &pyr, err);
    if (rc)
        return rc;
    if (r->action == IIP_ACTION_NONE) {
        const char *type = "application/vnd.netfpx";
        out->is_text = true;
        rc = iip_obj_answer(r, &pyr, info, job->in_sequence ? &job->views : NULL, &out->text, &type,
                            err);
        ts_product_set_type(out, type);
        return rc == TS_EINVAL ? iip_fail(err, "3 2", err->msg) : rc;
    }
    if (r->action == IIP_ACTION_SPECTRA || r->action == IIP_ACTION_PFL) {
        out->is_text = true;
        ts_product_set_type(out,
                            r->action == IIP_ACTION_PFL ? "application/json" : "application/xml");
        return iip_samples_plan(&pyr, r, info, &out->plan, err);
    }
    if (r->action == IIP_ACTION_JTL) {
        rc = iip_tile_plan(&pyr, r->jtl_res, r->jtl_tile, r->rot, &out->plan, err);
        out->plan.format = r->tile_format;
        /* A tile turns on itself, as iipsrv's do; for a half turn iipsrv also counts tiles
         * from the other end, so the grid as a whole turns with them. */
        out->plan.rotation = r->rot;
        out->plan.mirror = r->flip;
    } else {
        rc = iip_cvt_plan(&pyr, r, iip_max_cvt(&app->cfg), &out->plan, err);
    }
    out->plan.adjust = r->adjust;
    out->plan.layers = r->layers;
    iip_minmax_adjust(r, info, &out->plan.adjust);
    if (r->col != TS_QUALITY_DEFAULT)
        out->plan.quality = r->col;
    const struct ts_live *live = ts_job_live(app, job);
    uint64_t max_area = live->limits.max_area;
    if (!rc && max_area && (uint64_t)out->plan.out_w * out->plan.out_h > max_area)
        rc = ts_fail(err, TS_ETOOLARGE, "output %ux%u is over the area limit", out->plan.out_w,
                     out->plan.out_h);
    /* QLT changes only the encoder's quality, and so rules out stored-tile passthrough. */
    if (!rc && r->qlt >= 0 && out->plan.format == TS_FORMAT_JPG) {
        out->own_encoder = true;
        out->enc = live->enc;
        out->enc.jpeg_quality = r->qlt;
    }
    return rc;
}

int iip_identifier(const char *name, const char *suffix, const char *delimiter, struct ts_buf *out,
                   struct ts_err *err)
{
    size_t len = strlen(name), dlen = delimiter ? strlen(delimiter) : 0;
    const char *page = NULL;
    if (dlen) {
        /* The last one, as iipsrv looks for it. */
        for (const char *p = name; (p = strstr(p, delimiter)) != NULL; p++)
            page = p;
        const char *digits = page ? page + dlen : NULL;
        /* Six digits at most: Tessera's ";n" form stops there. */
        if (!digits || !*digits || strspn(digits, "0123456789") != strlen(digits) ||
            strlen(digits) > 6 || strtoul(digits, NULL, 10) >= 999999)
            page = NULL;
    }
    int rc = ts_buf_append(out, name, page ? (size_t)(page - name) : len);
    rc = rc ? rc : ts_buf_append_str(out, suffix);
    if (!rc && page)
        rc = ts_buf_appendf(out, ";%lu", strtoul(page + dlen, NULL, 10) + 1);
    return rc ? ts_fail(err, rc, "image path too long") : TS_OK;
}

/* The path of the image an IIP-family request names: iipsrv appends FILESYSTEM_SUFFIX. */
static int set_identifier(const struct ts_app *app, const char *name, struct ts_job *job,
                          struct ts_err *err)
{
    return iip_identifier(name, app->cfg.fs_suffix, "", &job->identifier, err);
}

int iip_job(const struct ts_app *app, const char *query, struct ts_job *job, struct ts_err *err)
{
    struct iip_request *r = calloc(1, sizeof *r);
    ts_job_init(job, TS_JOB_IMAGE);
    job->errors = &iip_errors;
    if (!r)
        return ts_fail(err, TS_ENOMEM, "out of memory");
    job->ctx = r;
    job->ctx_free = free_ctx;
    int rc = iip_parse(query, r, err);
    if (rc == TS_EINVAL && r->bad_command[0])
        return iip_fail(err, "2 2", r->bad_command);
    if (rc)
        return rc;
    if (!r->fif[0]) {
        if (r->action != IIP_ACTION_NONE)
            return iip_fail(err, "1 3", "no image given (FIF)");
        /* Objects that need no image (the protocol version) are answered at once. */
        rc = ts_job_reply(job, 200, "application/vnd.netfpx", "");
        rc = rc ? rc : iip_obj_text(r, NULL, NULL, &job->out.text, err);
        return rc ? iip_fail(err, "1 3", err->msg) : TS_OK;
    }
    job->needs_info = true;
    job->produce = produce_iip;
    job->sequence = true;
    job->seq_h = r->sds_h;
    job->seq_v = r->sds_v;
    for (unsigned i = 0; i < r->nobj; i++)
        if (!strcmp(r->objs[i], "horizontal-views") || !strcmp(r->objs[i], "vertical-views"))
            job->wants_views = true;
    /* SPECTRA and PFL quote a sample of every horizontal view, read by the core. */
    if (r->action == IIP_ACTION_SPECTRA || r->action == IIP_ACTION_PFL) {
        job->wants_views = true;
        job->sample = iip_samples_quote;
    }
    /* The views are the folder's files, which change without the image file changing. */
    if (job->wants_views)
        job->cacheable = false;
    rc = set_identifier(app, r->fif, job, err);
    if (rc)
        return rc;
    rc = ts_buf_appendf(&job->key, "iip %s", query);
    return rc ? ts_fail(err, rc, "IIP request too long") : TS_OK;
}

struct tile_ctx {
    iip_build_fn build;
    uint8_t request[]; /* the protocol's parsed request */
};

static int produce_tile(const struct ts_app *app, const struct ts_job *job,
                        const struct ts_image_info *info, struct ts_product *out,
                        struct ts_err *err)
{
    const struct tile_ctx *c = job->ctx;
    struct iip_pyramid pyr;
    int rc = iip_pyramid_build(info, app->cfg.default_tile, &pyr, err);
    rc = rc ? rc : c->build(&pyr, c->request, &out->text, &out->is_text, &out->plan, err);
    if (rc == TS_OK && out->is_text)
        ts_product_set_type(out, "application/xml");
    return rc;
}

int iip_tile_job(const struct ts_app *app, const char *kind, const char *arg, size_t arg_len,
                 size_t req_size, iip_parse_fn parse, iip_identifier_fn identifier,
                 iip_build_fn build, struct ts_job *job, struct ts_err *err)
{
    ts_job_init(job, TS_JOB_IMAGE);
    struct tile_ctx *c = calloc(1, sizeof *c + req_size);
    if (!c)
        return ts_fail(err, TS_ENOMEM, "out of memory");
    job->ctx = c;
    job->ctx_free = free_ctx;
    c->build = build;
    char decoded[IIP_MAX_PATH + 64];
    int rc = url_decode(arg, arg_len, decoded, sizeof decoded, 0, err);
    rc = rc ? rc : parse(decoded, c->request, err);
    rc = rc ? rc : set_identifier(app, identifier(c->request), job, err);
    if (rc)
        return rc;
    job->needs_info = true;
    job->produce = produce_tile;
    rc = ts_buf_appendf(&job->key, "%s %s", kind, decoded);
    return rc ? ts_fail(err, rc, "request too long") : TS_OK;
}
