/* Zoomify: ImageProperties.xml and TileGroup tiles mapped onto iipsrv's resolution ladder. */
#include "protocol/zoomify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool read_uint(const char **s, uint32_t *out)
{
    const char *p = *s;
    uint64_t v = 0;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > UINT32_MAX)
            return false;
    }
    *out = (uint32_t)v;
    *s = p;
    return true;
}

static int copy_identifier(struct zoomify_request *out, const char *arg, size_t len,
                           struct ts_err *err)
{
    if (len == 0)
        return ts_fail(err, TS_EINVAL, "Zoomify request without an image");
    if (len >= sizeof out->identifier)
        return ts_fail(err, TS_EINVAL, "identifier too long");
    memcpy(out->identifier, arg, len);
    out->identifier[len] = '\0';
    return TS_OK;
}

int zoomify_parse(const char *arg, struct zoomify_request *out, struct ts_err *err)
{
    memset(out, 0, sizeof *out);
    static const char props[] = "/ImageProperties.xml";
    size_t len = strlen(arg), plen = sizeof props - 1;
    if (len > plen && !strcmp(arg + len - plen, props)) {
        out->properties = true;
        return copy_identifier(out, arg, len - plen, err);
    }
    const char *group = NULL;
    for (const char *p = strstr(arg, "/TileGroup"); p; p = strstr(p + 1, "/TileGroup"))
        group = p;
    if (!group)
        return ts_fail(
            err, TS_EINVAL,
            "Zoomify wants {id}/ImageProperties.xml or {id}/TileGroup{n}/{z}-{x}-{y}.jpg");
    int rc = copy_identifier(out, arg, (size_t)(group - arg), err);
    if (rc)
        return rc;
    const char *p = group + 10;
    if (!read_uint(&p, &out->group) || *p++ != '/' || !read_uint(&p, &out->z) || *p++ != '-' ||
        !read_uint(&p, &out->x) || *p++ != '-' || !read_uint(&p, &out->y) ||
        (strcmp(p, ".jpg") != 0 && strcmp(p, ".jpeg") != 0))
        return ts_fail(err, TS_EINVAL, "bad Zoomify tile '%s'", group + 1);
    return TS_OK;
}

uint32_t zoomify_discard(const struct iip_pyramid *p)
{
    /* iipsrv's rule: resolution n is "small" when the image halved n times fits in a tile. */
    uint32_t small = 0;
    for (uint32_t n = 0; n < p->nres && n < 32; n++)
        if ((p->width >> n) <= p->tile_w && (p->height >> n) <= p->tile_w)
            small++;
    return small ? small - 1 : 0;
}

uint32_t zoomify_levels(const struct iip_pyramid *p)
{
    return p->nres - zoomify_discard(p);
}

static void level_grid(const struct iip_pyramid *p, uint32_t z, uint32_t *ntx, uint32_t *nty)
{
    uint32_t r = z + zoomify_discard(p), ts = p->tile_w;
    *ntx = (p->res_w[r] + ts - 1) / ts;
    *nty = (p->res_h[r] + ts - 1) / ts;
}

uint32_t zoomify_tile_group(const struct iip_pyramid *p, uint32_t z, uint32_t x, uint32_t y)
{
    uint64_t index = 0;
    uint32_t ntx, nty;
    for (uint32_t l = 0; l < z; l++) {
        level_grid(p, l, &ntx, &nty);
        index += (uint64_t)ntx * nty;
    }
    level_grid(p, z, &ntx, &nty);
    index += (uint64_t)y * ntx + x;
    return (uint32_t)(index / 256);
}

int zoomify_properties_xml(const struct iip_pyramid *p, struct ts_buf *out)
{
    /* NUMTILES counts the full resolution's tiles only, as iipsrv 1.1 does; viewers derive
     * tile groups from the size and tile size, not from this number. */
    uint64_t ts = p->tile_w;
    uint64_t ntiles = ((p->width + ts - 1) / ts) * ((p->height + ts - 1) / ts);
    return ts_buf_appendf(out,
                          "<IMAGE_PROPERTIES WIDTH=\"%u\" HEIGHT=\"%u\" NUMTILES=\"%llu\" "
                          "NUMIMAGES=\"1\" VERSION=\"1.8\" TILESIZE=\"%u\" />",
                          p->width, p->height, (unsigned long long)ntiles, p->tile_w);
}

int zoomify_tile_plan(const struct iip_pyramid *p, const struct zoomify_request *r,
                      struct ts_plan *out, struct ts_err *err)
{
    if (r->z >= zoomify_levels(p))
        return ts_fail(err, TS_ENOTFOUND, "no Zoomify level %u", r->z);
    uint32_t res = r->z + zoomify_discard(p), ts = p->tile_w;
    uint32_t lw = p->res_w[res], lh = p->res_h[res];
    if ((uint64_t)r->x * ts >= lw || (uint64_t)r->y * ts >= lh)
        return ts_fail(err, TS_ENOTFOUND, "no tile %u-%u at Zoomify level %u", r->x, r->y, r->z);
    uint32_t x = r->x * ts, y = r->y * ts;
    uint32_t w = lw - x < ts ? lw - x : ts, h = lh - y < ts ? lh - y : ts;
    iip_plan_level_rect(p, lw, lh, x, y, w, h, out);
    return TS_OK;
}

static int zoomify_build(const struct iip_pyramid *p, const void *ctx, struct ts_buf *text,
                         bool *is_text, struct ts_plan *plan, struct ts_err *err)
{
    const struct zoomify_request *r = ctx;
    if (r->properties) {
        *is_text = true;
        return zoomify_properties_xml(p, text) ? ts_fail(err, TS_ENOMEM, "out of memory") : TS_OK;
    }
    /* The TileGroup number is not checked: iipsrv ignores it too, and so tolerates viewers
     * that count groups differently. */
    return zoomify_tile_plan(p, r, plan, err);
}

static int parse_any(const char *decoded, void *request, struct ts_err *err)
{
    return zoomify_parse(decoded, request, err);
}

static const char *identifier_of(const void *request)
{
    return ((const struct zoomify_request *)request)->identifier;
}

int zoomify_job(const struct ts_app *app, const char *arg, size_t arg_len, struct ts_job *job,
                struct ts_err *err)
{
    return iip_tile_job(app, "zoomify", arg, arg_len, sizeof(struct zoomify_request), parse_any,
                        identifier_of, zoomify_build, job, err);
}
