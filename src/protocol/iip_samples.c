/* IIP SPECTRA and PFL: sample values of an image (or of each view of an image sequence) quoted
 * as text in iipsrv 1.3's layout. The core reads the pixels; this file says which, and writes
 * what iipsrv writes about them. */
#include "protocol/iip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* atoi of the text before the next delim, then on past it. Without one, iipsrv's
 * std::string::find gives npos, npos + 1 is 0, and the next field reads the same text again. */
static int32_t next_field(const char **p, char delim)
{
    const char *d = strchr(*p, delim);
    size_t len = d ? (size_t)(d - *p) : strlen(*p);
    char field[24];
    snprintf(field, sizeof field, "%.*s", (int)(len < sizeof field - 1 ? len : sizeof field - 1),
             *p);
    if (d)
        *p = d + 1;
    long v = strtol(field, NULL, 10); /* atoi's number, held in range */
    return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

void iip_parse_spectra(const char *arg, struct iip_request *r)
{
    const char *p = arg;
    r->action = IIP_ACTION_SPECTRA;
    r->spectra[0] = next_field(&p, ',');
    r->spectra[1] = next_field(&p, ',');
    r->spectra[2] = next_field(&p, ',');
    r->spectra[3] = next_field(&p, '\0');
}

void iip_parse_pfl(const char *arg, struct iip_request *r)
{
    const char *p = arg;
    r->action = IIP_ACTION_PFL;
    r->pfl[0] = next_field(&p, ':');
    r->pfl[1] = next_field(&p, ',');
    bool line = strchr(p, '-') != NULL;
    r->pfl[2] = next_field(&p, '-');
    r->pfl[3] = line ? next_field(&p, ',') : r->pfl[1];
    r->pfl[4] = line ? next_field(&p, '\0') : r->pfl[2];
}

static int spectra_plan(const struct iip_pyramid *p, const struct iip_request *r,
                        struct ts_plan *out, struct ts_err *err)
{
    int32_t res = r->spectra[0], tile = r->spectra[1], x = r->spectra[2], y = r->spectra[3];
    if (res < 0 || (uint32_t)res >= p->nres)
        return ts_fail(err, TS_ENOTFOUND, "asked for non-existent resolution: %d", res);
    /* Against the nominal tile size, as iipsrv checks before it reads the tile. */
    if (x < 0 || (uint32_t)x >= p->tile_w || y < 0 || (uint32_t)y >= p->tile_h)
        return ts_fail(err, TS_EINVAL,
                       "SPECTRA :: Error: x,y coordinates outside of tile boundaries");
    if (tile < 0)
        return ts_fail(err, TS_ENOTFOUND, "asked for non-existent tile: %d", tile);
    return iip_tile_plan(p, (uint32_t)res, (uint32_t)tile, 0, out, err);
}

static int pfl_plan(const struct iip_pyramid *p, const struct iip_request *r, struct ts_plan *out,
                    struct ts_err *err)
{
    int32_t res = r->pfl[0], x1 = r->pfl[1], y1 = r->pfl[2], x2 = r->pfl[3], y2 = r->pfl[4];
    if (res < 0 || (uint32_t)res >= p->nres)
        return ts_fail(err, TS_EINVAL, "PFL :: Invalid resolution number: %d", res);
    int64_t w = p->res_w[res], h = p->res_h[res];
    /* iipsrv's test lets a point on the far edge through (and then reads past the image);
     * the line read must also lie inside, or it is refused the same way. */
    int64_t lw = x2 > x1 ? (int64_t)x2 - x1 : 1;
    int64_t lh = x2 > x1 ? 1 : y2 > y1 ? (int64_t)y2 - y1 : 1;
    if (x1 < 0 || x2 < 0 || y1 < 0 || y2 < 0 || x1 > w || x2 > w || y1 > h || y2 > h ||
        x1 + lw > w || y1 + lh > h)
        return ts_fail(err, TS_EINVAL, "PFL :: Invalid coordinates: %d,%d-%d,%d", x1, y1, x2, y2);
    iip_plan_level_rect(p, (uint32_t)w, (uint32_t)h, (uint32_t)x1, (uint32_t)y1, (uint32_t)lw,
                        (uint32_t)lh, out);
    return TS_OK;
}

int iip_samples_plan(const struct iip_pyramid *p, const struct iip_request *r,
                     const struct ts_image_info *info, struct ts_plan *out, struct ts_err *err)
{
    int rc =
        r->action == IIP_ACTION_SPECTRA ? spectra_plan(p, r, out, err) : pfl_plan(p, r, out, err);
    if (rc == TS_OK && info->bits_per_sample > 8)
        rc = ts_fail(err, TS_EUNSUPPORTED,
                     "%s of %u-bit samples: this server reads samples at 8 bits",
                     r->action == IIP_ACTION_SPECTRA ? "SPECTRA" : "PFL", info->bits_per_sample);
    out->layers = r->layers;
    return rc;
}

/* iipsrv's point: the sample y * (nominal tile width) + x of the tile's interleaved samples,
 * which is pixel (x, y) of a one-channel image's whole tile; for more channels, or a narrower
 * edge tile, it is another sample, as in iipsrv. A point the tile does not hold ends the list,
 * as iipsrv's loop ends there (it reads past its tile where the index runs beyond). */
static int spectra_point(const struct iip_pyramid *p, const struct iip_request *r,
                         const struct ts_sample *s, struct ts_buf *text)
{
    const struct ts_image *img = s->img;
    uint32_t x = (uint32_t)r->spectra[2], y = (uint32_t)r->spectra[3];
    uint64_t row = (uint64_t)img->width * img->channels;
    uint64_t at = (uint64_t)y * p->tile_w + x;
    if (x >= img->width || y >= img->height || at >= row * img->height)
        return TS_DECLINED;
    uint8_t v = ts_image_row(img, (uint32_t)(at / row))[at % row];
    float reflectance = (float)((double)v / 255.0);
    return ts_buf_appendf(text,
                          "\t<point>\n\t\t<wavelength>%d</wavelength>\n\t\t<reflectance>%f"
                          "</reflectance>\n\t</point>\n",
                          s->view, (double)reflectance);
}

/* iipsrv's profile: every sample of the line, channels interleaved, as C++ streams print a
 * float (six significant digits). The layout is iipsrv's to the tab, and the only names are
 * view numbers, so it is written out here rather than through a JSON library. */
static int pfl_line(const struct ts_sample *s, struct ts_buf *text)
{
    const struct ts_image *img = s->img;
    int rc = TS_OK;
    if (s->count > 1)
        rc = ts_buf_appendf(text, "\t\t\"%d\": ", s->view);
    rc = rc ? rc : ts_buf_append_str(text, "[");
    size_t n = (size_t)img->width * img->channels;
    for (uint32_t y = 0; !rc && y < img->height; y++)
        for (size_t i = 0; !rc && i < n; i++)
            rc = ts_buf_appendf(text, "%s%g", y || i ? "," : "", (double)ts_image_row(img, y)[i]);
    return rc ? rc : ts_buf_append_str(text, s->index + 1 < s->count ? "],\n" : "]\n");
}

int iip_samples_quote(const struct ts_app *app, const struct ts_job *job,
                      const struct ts_image_info *info, const struct ts_sample *s,
                      struct ts_product *out, struct ts_err *err)
{
    const struct iip_request *r = job->ctx;
    bool spectra = r->action == IIP_ACTION_SPECTRA;
    int rc = TS_OK;
    if (!out->text.len)
        rc = spectra
                 ? ts_buf_append_str(&out->text,
                                     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<spectra>\n")
                 : ts_buf_appendf(&out->text, "{\n\t\"profile\": %s", s->count > 1 ? "{\n" : "");
    if (!rc && !s->img) {
        if (spectra)
            rc = ts_buf_append_str(&out->text, "</spectra>");
        else
            rc = ts_buf_append_str(&out->text, s->count > 1 ? "\t}\n}" : "}");
    } else if (!rc && spectra) {
        struct iip_pyramid pyr;
        rc = iip_pyramid_build(info, app->cfg.default_tile, &pyr, err);
        if (rc)
            return rc;
        rc = spectra_point(&pyr, r, s, &out->text);
        if (rc == TS_DECLINED)
            return rc;
    } else if (!rc) {
        rc = pfl_line(s, &out->text);
    }
    return rc ? ts_fail(err, rc, "%s answer too long", spectra ? "SPECTRA" : "PFL") : TS_OK;
}
