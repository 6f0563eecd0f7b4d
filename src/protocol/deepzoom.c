/* DeepZoom: .dzi descriptors and level/col_row tiles mapped onto iipsrv's resolution ladder. */
#include "protocol/deepzoom.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads a run of digits; false when there is none or it overflows. */
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

static bool tile_format(const char *ext, enum ts_format *f)
{
    if (!strcmp(ext, "jpg") || !strcmp(ext, "jpeg"))
        *f = TS_FORMAT_JPG;
    else if (!strcmp(ext, "png"))
        *f = TS_FORMAT_PNG;
    else
        return false;
    return true;
}

int dz_parse(const char *arg, struct dz_request *out, struct ts_err *err)
{
    memset(out, 0, sizeof *out);
    size_t len = strlen(arg);
    if (len > 4 && !strcmp(arg + len - 4, ".dzi")) {
        if (len - 4 >= sizeof out->identifier)
            return ts_fail(err, TS_EINVAL, "identifier too long");
        memcpy(out->identifier, arg, len - 4);
        out->identifier[len - 4] = '\0';
        out->dzi = true;
        return TS_OK;
    }
    /* The last "_files/" splits the identifier from the tile, as in iipsrv. */
    const char *files = NULL;
    for (const char *p = strstr(arg, "_files/"); p; p = strstr(p + 1, "_files/"))
        files = p;
    if (!files || files == arg)
        return ts_fail(err, TS_EINVAL, "DeepZoom wants {id}.dzi or {id}_files/{level}/{x}_{y}.jpg");
    size_t idlen = (size_t)(files - arg);
    if (idlen >= sizeof out->identifier)
        return ts_fail(err, TS_EINVAL, "identifier too long");
    memcpy(out->identifier, arg, idlen);
    out->identifier[idlen] = '\0';
    const char *p = files + 7;
    if (!read_uint(&p, &out->level) || *p++ != '/' || !read_uint(&p, &out->col) || *p++ != '_' ||
        !read_uint(&p, &out->row) || *p++ != '.' || !tile_format(p, &out->format))
        return ts_fail(err, TS_EINVAL, "bad DeepZoom tile '%s'", files + 7);
    return TS_OK;
}

uint32_t dz_max_level(uint32_t width, uint32_t height)
{
    uint64_t max = width > height ? width : height;
    uint32_t level = 0;
    while (((uint64_t)1 << level) < max)
        level++;
    return level;
}

int dz_dzi_xml(const struct iip_pyramid *p, struct ts_buf *out)
{
    return ts_buf_appendf(out,
                          "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"
                          "<Image xmlns=\"http://schemas.microsoft.com/deepzoom/2008\"\r\n"
                          "TileSize=\"%u\" Overlap=\"0\" Format=\"jpg\">"
                          "<Size Width=\"%u\" Height=\"%u\"/></Image>",
                          p->tile_w, p->width, p->height);
}

void dz_level_size(const struct iip_pyramid *p, uint32_t level, uint32_t *w, uint32_t *h)
{
    uint32_t top = dz_max_level(p->width, p->height);
    uint32_t n = level < top ? top - level : 0;
    if (n < p->nres) {
        *w = p->res_w[p->nres - 1 - n];
        *h = p->res_h[p->nres - 1 - n];
        return;
    }
    /* Below the ladder, DeepZoom's own rule: ceil(size / 2^n), never 0. */
    uint64_t d = (uint64_t)1 << n;
    *w = (uint32_t)((p->width + d - 1) / d);
    *h = (uint32_t)((p->height + d - 1) / d);
}

int dz_tile_plan(const struct iip_pyramid *p, const struct dz_request *r, struct ts_plan *out,
                 struct ts_err *err)
{
    if (r->level > dz_max_level(p->width, p->height))
        return ts_fail(err, TS_ENOTFOUND, "no DeepZoom level %u", r->level);
    uint32_t lw, lh, ts = p->tile_w;
    dz_level_size(p, r->level, &lw, &lh);
    if ((uint64_t)r->col * ts >= lw || (uint64_t)r->row * ts >= lh)
        return ts_fail(err, TS_ENOTFOUND, "no tile %u_%u at DeepZoom level %u", r->col, r->row,
                       r->level);
    uint32_t x = r->col * ts, y = r->row * ts;
    uint32_t w = lw - x < ts ? lw - x : ts, h = lh - y < ts ? lh - y : ts;
    iip_plan_level_rect(p, lw, lh, x, y, w, h, out);
    out->format = r->format;
    return TS_OK;
}

static int dz_build(const struct iip_pyramid *p, const void *ctx, struct ts_buf *text,
                    bool *is_text, struct ts_plan *plan, struct ts_err *err)
{
    const struct dz_request *r = ctx;
    if (r->dzi) {
        *is_text = true;
        return dz_dzi_xml(p, text) ? ts_fail(err, TS_ENOMEM, "out of memory") : TS_OK;
    }
    return dz_tile_plan(p, r, plan, err);
}

static int parse_any(const char *decoded, void *request, struct ts_err *err)
{
    return dz_parse(decoded, request, err);
}

static const char *identifier_of(const void *request)
{
    return ((const struct dz_request *)request)->identifier;
}

int deepzoom_job(const struct ts_app *app, const char *arg, size_t arg_len, struct ts_job *job,
                 struct ts_err *err)
{
    return iip_tile_job(app, "deepzoom", arg, arg_len, sizeof(struct dz_request), parse_any,
                        identifier_of, dz_build, job, err);
}
