/* IIP's OBJ command: the answer text for each object, as iipsrv 1.3 gives it. */
#include "protocol/iip.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IIP_TYPE "application/vnd.netfpx"

/* An answer under construction: the lines, and the MIME type the last object chose. */
struct obj_answer {
    struct ts_buf *out;
    const char *type;
    const struct source_views *views; /* an image sequence's, or NULL for a single image */
};

static int add_line(struct obj_answer *a, const char *line)
{
    return ts_buf_appendf(a->out, "%s\r\n", line);
}

/* "Horizontal-views:0 10 20": iipsrv writes each angle and a space, then cuts the last
 * character, which for an empty list is the colon. */
static int views_line(struct obj_answer *a, const char *label, const int32_t *angles, uint32_t n)
{
    size_t len = strlen(label);
    int rc = ts_buf_append(a->out, label, n ? len : len - 1);
    for (uint32_t i = 0; !rc && i < n; i++)
        rc = ts_buf_appendf(a->out, i ? " %d" : "%d", (int)angles[i]);
    return rc ? rc : ts_buf_append(a->out, "\r\n", 2);
}

/* Text tags answered by name (iipsrv's metadata objects); summary-info is a few of them. */
static const char *const metadata_names[] = {
    "rights",      "title",      "description", "creator",      "keywords", "comment",
    "last-author", "rev-number", "edit-time",   "last-printed", "date",     "last-save-dtm",
    "software",    "make",       "model",       "xmp",          "scale"};

static bool is_metadata_name(const char *obj)
{
    for (size_t i = 0; i < sizeof metadata_names / sizeof metadata_names[0]; i++)
        if (!strcmp(obj, metadata_names[i]))
            return true;
    return false;
}

/* A tag's value alone on its line, in plain text (XMP as XML); nothing when the image has no
 * such tag, which is how iipsrv answers for an image without it. */
static int metadata_line(struct obj_answer *a, const struct ts_image_info *info, const char *name)
{
    const char *v = ts_image_meta(info, name);
    if (!v || !*v)
        return TS_OK;
    a->type = !strcmp(name, "xmp") ? "application/xml" : "text/plain";
    return add_line(a, v);
}

/* Every text tag but XMP as one JSON object, keys sorted as iipsrv's map sorts them. */
static int metadata_json(struct obj_answer *a, const struct ts_image_info *info)
{
    json_t *o = json_object();
    int rc = o ? TS_OK : TS_ENOMEM;
    const char *p = info->meta, *end = info->meta ? info->meta + info->meta_len : NULL;
    while (!rc && p && p < end) {
        const char *value = memchr(p, '\0', (size_t)(end - p));
        const char *next =
            value && ++value < end ? memchr(value, '\0', (size_t)(end - value)) : NULL;
        if (!next)
            break;
        /* Tags that are not UTF-8 cannot be JSON strings: left out rather than mangled. */
        if (strcmp(p, "xmp") != 0 && *value)
            json_object_set_new(o, p, json_string(value));
        p = next + 1;
    }
    char *text = rc ? NULL : json_dumps(o, JSON_SORT_KEYS | JSON_INDENT(1));
    json_decref(o);
    if (!text)
        return TS_ENOMEM;
    a->type = "application/json";
    rc = add_line(a, text);
    free(text);
    return rc;
}

/* Pixels per metre, as iipsrv reports resolution whatever the file's unit. */
static float per_metre(float v, uint32_t unit)
{
    return unit == 2 ? (float)(v * 100.0) : unit == 1 ? (float)(v / 0.0254) : v;
}

static double full_range(uint32_t bits)
{
    return bits <= 8 ? 255.0 : bits == 12 ? 4095.0 : bits == 16 ? 65535.0 : 4294967295.0;
}

/* " min  max " for every channel, the last space dropped: iipsrv's exact spacing. Values pass
 * through float, as iipsrv keeps them. */
static int min_max_line(struct obj_answer *a, const struct ts_image_info *info)
{
    int rc = ts_buf_append_str(a->out, "Min-Max-sample-values:");
    for (uint32_t c = 0; !rc && c < info->channels && c < 4; c++) {
        double lo = info->has_sample_range ? info->sample_min[c] : 0.0;
        double hi = info->has_sample_range ? info->sample_max[c] : 0.0;
        if (hi == 0.0)
            hi = full_range(info->bits_per_sample);
        rc = ts_buf_appendf(a->out, " %.9g  %.9g%s", (double)(float)lo, (double)(float)hi,
                            c + 1 < info->channels && c + 1 < 4 ? " " : "");
    }
    return rc ? rc : ts_buf_append_str(a->out, "\r\n");
}

static int resolutions_line(struct obj_answer *a, const struct iip_pyramid *p)
{
    int rc = ts_buf_append_str(a->out, "Resolutions:");
    for (uint32_t r = 0; !rc && r < p->nres; r++)
        rc = ts_buf_appendf(a->out, "%s%u %u", r ? "," : "", p->res_w[r], p->res_h[r]);
    return rc ? rc : ts_buf_append_str(a->out, "\r\n");
}

static int obj_image(const char *obj, const struct iip_pyramid *p, const struct ts_image_info *info,
                     int rot, struct obj_answer *a, struct ts_err *err);

/* Objects that need no image. TS_DECLINED for the others. */
static int obj_server(const char *obj, struct obj_answer *a)
{
    if (!strcmp(obj, "iip-server"))
        return add_line(a, "IIP-server:3.65");
    if (!strcmp(obj, "iip-opt-comm"))
        return add_line(a, "IIP-opt-comm:CVT CNT QLT JTL JTLS WID HEI RGN MINMAX SHD CMP INV CTW");
    if (!strcmp(obj, "iip-opt-obj"))
        return add_line(a, "IIP-opt-obj:Horizontal-views Vertical-views Tile-size "
                           "Bits-per-channel Min-Max-sample-values Resolutions");
    return TS_DECLINED;
}

/* One object's lines, or TS_EINVAL for an object iipsrv does not know either. */
static int obj_image(const char *obj, const struct iip_pyramid *p, const struct ts_image_info *info,
                     int rot, struct obj_answer *a, struct ts_err *err)
{
    int rc = obj_server(obj, a);
    if (rc != TS_DECLINED)
        return rc;
    if (!p)
        return ts_fail(err, TS_EINVAL, "%s", obj);
    if (!strcmp(obj, "basic-info")) {
        rc = obj_image("iip-server", p, info, rot, a, err);
        rc = rc ? rc : obj_image("max-size", p, info, rot, a, err);
        rc = rc ? rc : obj_image("resolution-number", p, info, rot, a, err);
        return rc ? rc : obj_image("colorspace", p, info, rot, a, err);
    }
    if (!strcmp(obj, "max-size")) {
        bool swap = rot == 90 || rot == 270;
        return ts_buf_appendf(a->out, "Max-size:%u %u\r\n", swap ? p->height : p->width,
                              swap ? p->width : p->height);
    }
    if (!strcmp(obj, "resolution-number"))
        return ts_buf_appendf(a->out, "Resolution-number:%u\r\n", p->nres);
    if (!strcmp(obj, "tile-size"))
        return ts_buf_appendf(a->out, "Tile-size:%u %u\r\n", p->tile_w, p->tile_h);
    if (!strcmp(obj, "bits-per-channel"))
        return ts_buf_appendf(a->out, "Bits-per-channel:%u\r\n", info->bits_per_sample);
    /* A single image is one view: iipsrv's defaults for an image that is not a sequence. */
    if (!strcmp(obj, "vertical-views"))
        return a->views ? views_line(a, "Vertical-views:", a->views->v, a->views->nv)
                        : add_line(a, "Vertical-views:90");
    if (!strcmp(obj, "horizontal-views"))
        return a->views ? views_line(a, "Horizontal-views:", a->views->h, a->views->nh)
                        : add_line(a, "Horizontal-views:0");
    if (!strcmp(obj, "min-max-sample-values"))
        return min_max_line(a, info);
    if (!strcmp(obj, "resolutions"))
        return resolutions_line(a, p);
    if (!strcmp(obj, "dpi")) {
        if (!(info->dpi_x > 0.0f) || !(info->dpi_y > 0.0f))
            return TS_OK;
        return ts_buf_appendf(a->out, "DPI:%f %f\r\n",
                              (double)per_metre(info->dpi_x, info->dpi_unit),
                              (double)per_metre(info->dpi_y, info->dpi_unit));
    }
    /* Only layered stacks answer; a single image (or a page of a multi-page file) has none. */
    if (!strcmp(obj, "stack"))
        return TS_OK;
    if (strstr(obj, "colorspace"))
        return ts_buf_appendf(a->out, "Colorspace,0-%u,0:0 0 %s\r\n", p->nres - 1,
                              info->channels <= 2 ? "1 1 0" : "3 3 0 1 2");
    if (!strcmp(obj, "summary-info")) {
        static const char *const summary[] = {"rights", "description", "creator", "date",
                                              "software"};
        rc = TS_OK;
        for (size_t i = 0; !rc && i < sizeof summary / sizeof summary[0]; i++)
            rc = metadata_line(a, info, summary[i]);
        return rc;
    }
    if (is_metadata_name(obj))
        return metadata_line(a, info, obj);
    if (!strcmp(obj, "metadata"))
        return metadata_json(a, info);
    return ts_fail(err, TS_EINVAL, "%s", obj);
}

int iip_obj_answer(const struct iip_request *r, const struct iip_pyramid *p,
                   const struct ts_image_info *info, const struct source_views *views,
                   struct ts_buf *out, const char **type, struct ts_err *err)
{
    /* Any object starting "iip," asks for the protocol line, as iipsrv compares only that. */
    bool protocol = false;
    for (unsigned i = 0; i < r->nobj; i++)
        if (!strncmp(r->objs[i], "iip,", 4))
            protocol = true;
    struct ts_buf body;
    ts_buf_init_capped(&body, out->max);
    struct obj_answer a = {&body, IIP_TYPE, views};
    int rc = TS_OK;
    for (unsigned i = 0; !rc && i < r->nobj; i++)
        if (strncmp(r->objs[i], "iip,", 4) != 0)
            rc = obj_image(r->objs[i], p, info, r->rot, &a, err);
    /* The protocol line leads an answer in IIP's own type (empty when not asked, as iipsrv
     * 1.1 writes it); an answer that became text, XML or JSON is that document alone, as in
     * iipsrv 1.3, which moved the protocol line out of the body. */
    if (!rc && !strcmp(a.type, IIP_TYPE))
        rc = ts_buf_appendf(out, "%s\r\n", protocol ? "IIP:1.0" : "");
    rc = rc ? rc : ts_buf_append(out, body.data ? body.data : (const uint8_t *)"", body.len);
    ts_buf_free(&body);
    if (type)
        *type = a.type;
    if (rc == TS_ENOMEM || rc == TS_ETOOLONG)
        return ts_fail(err, rc, "OBJ answer too large");
    return rc;
}

int iip_obj_text(const struct iip_request *r, const struct iip_pyramid *p,
                 const struct ts_image_info *info, struct ts_buf *out, struct ts_err *err)
{
    return iip_obj_answer(r, p, info, NULL, out, NULL, err);
}
