/* info.json for IIIF Image API 1.1, 2.1 and 3.0, built as a jansson tree and then serialised. */
#include "protocol/iiif_info.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FACTORS 32

static uint32_t ceil_div(uint32_t a, uint32_t b)
{
    return (uint32_t)(((uint64_t)a + b - 1) / b);
}

/* The power of two nearest to full / level (by ratio, so 1000/333 counts as 4, not 2). */
static uint32_t level_factor(uint32_t full, uint32_t level)
{
    if (level == 0)
        return 0;
    double ratio = (double)full / (double)level;
    uint32_t f = 1;
    while (f < (1u << 30) && (double)f * 1.41421356 < ratio)
        f *= 2;
    return f;
}

/* Every power of two from 1 up to the largest factor that a real level has or that shrinks the
 * image into a single tile. The gaps are filled because viewers (OpenSeadragon among them)
 * assume consecutive halvings between the listed factors; the renderer serves any factor from
 * the nearest larger level. */
int iiif_scale_factors(const struct ts_image_info *info, uint32_t tile_w, uint32_t tile_h,
                       uint32_t *factors, int max)
{
    if (!info || info->width == 0 || info->height == 0 || max <= 0)
        return 0;
    if (tile_w == 0)
        tile_w = 1;
    if (tile_h == 0)
        tile_h = tile_w;
    uint32_t top = 1;
    for (uint32_t i = 1; i < info->nlevels && i < TS_MAX_LEVELS; i++) {
        uint32_t f = level_factor(info->width, info->levels[i].width);
        if (f > top)
            top = f;
    }
    while (top < (1u << 30) &&
           (ceil_div(info->width, top) > tile_w || ceil_div(info->height, top) > tile_h))
        top *= 2;
    int n = 0;
    for (uint32_t f = 1; f <= top && n < max; f *= 2) {
        factors[n++] = f;
        if (f == (1u << 30))
            break;
    }
    return n;
}

struct tile_size {
    uint32_t w, h;
};

static bool fits_limits(uint64_t w, uint64_t h, const struct ts_limits *opt)
{
    uint64_t lh = opt->max_height ? opt->max_height : opt->max_width;
    return (!opt->max_width || w <= opt->max_width) && (!lh || h <= lh) &&
           (!opt->max_area || w * h <= opt->max_area);
}

/* The source's own tile when it has one (requests on its grid are the cheap ones), else the
 * configured default; shrunk if need be, since advertised tiles must be within the limits. */
static struct tile_size advertised_tile(const struct iiif_info_params *p)
{
    const struct ts_level *l0 = &p->info->levels[0];
    struct tile_size t;
    if (p->info->nlevels > 0 && l0->tile_w > 0) {
        t.w = l0->tile_w;
        t.h = l0->tile_h ? l0->tile_h : l0->tile_w;
    } else {
        t.w = t.h = p->default_tile ? p->default_tile : 512;
    }
    while ((t.w > 1 || t.h > 1) && !fits_limits(t.w, t.h, p->opt)) {
        t.w = t.w > 1 ? t.w / 2 : 1;
        t.h = t.h > 1 ? t.h / 2 : 1;
    }
    return t;
}

/* Small helper so that every json_*_set_new / append failure lands in one place. */
struct builder {
    bool failed;
};

static void put(struct builder *b, json_t *obj, const char *key, json_t *value)
{
    if (!value || json_object_set_new(obj, key, value) != 0)
        b->failed = true;
}

static void push(struct builder *b, json_t *arr, json_t *value)
{
    if (!value || json_array_append_new(arr, value) != 0)
        b->failed = true;
}

static json_t *string_array(struct builder *b, const char *const *items, size_t n)
{
    json_t *arr = json_array();
    if (!arr) {
        b->failed = true;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        push(b, arr, json_string(items[i]));
    return arr;
}

/* Formats we encode, in enum order; skip_level2 leaves out jpg and png, which every level 2
 * profile already promises. */
static json_t *format_array(struct builder *b, unsigned formats, bool skip_level2)
{
    json_t *arr = json_array();
    if (!arr) {
        b->failed = true;
        return NULL;
    }
    for (int f = 0; f < TS_FORMAT_COUNT; f++) {
        if (!(formats & (1u << f)))
            continue;
        if (skip_level2 && (f == TS_FORMAT_JPG || f == TS_FORMAT_PNG))
            continue;
        push(b, arr, json_string(ts_format_ext((enum ts_format)f)));
    }
    return arr;
}

/* Full-image sizes a client can ask for cheaply: one per scale factor (the real level's own
 * dimensions where one exists), smallest first, only those within the limits. */
static json_t *sizes_array(struct builder *b, const struct iiif_info_params *p,
                           const uint32_t *factors, int nf)
{
    json_t *arr = json_array();
    if (!arr) {
        b->failed = true;
        return NULL;
    }
    const struct ts_image_info *info = p->info;
    uint32_t last_w = 0;
    for (int i = nf - 1; i >= 0; i--) {
        uint32_t w = ceil_div(info->width, factors[i]);
        uint32_t h = ceil_div(info->height, factors[i]);
        for (uint32_t l = 0; l < info->nlevels && l < TS_MAX_LEVELS; l++) {
            if (level_factor(info->width, info->levels[l].width) == factors[i]) {
                w = info->levels[l].width;
                h = info->levels[l].height;
                break;
            }
        }
        if (w == 0 || h == 0 || w <= last_w || !fits_limits(w, h, p->opt))
            continue;
        json_t *o = json_object();
        if (!o) {
            b->failed = true;
            break;
        }
        put(b, o, "width", json_integer(w));
        put(b, o, "height", json_integer(h));
        push(b, arr, o);
        last_w = w;
    }
    return arr;
}

/* One tile description: both width and height are written (height is optional in the spec
 * when equal, but some clients read it unconditionally). */
static json_t *tiles_array(struct builder *b, struct tile_size t, const uint32_t *factors, int nf,
                           const char *factors_key)
{
    json_t *arr = json_array(), *tile = json_object(), *sf = json_array();
    if (!arr || !tile || !sf) {
        json_decref(arr);
        json_decref(tile);
        json_decref(sf);
        b->failed = true;
        return NULL;
    }
    put(b, tile, "width", json_integer(t.w));
    put(b, tile, "height", json_integer(t.h));
    for (int i = 0; i < nf; i++)
        push(b, sf, json_integer(factors[i]));
    put(b, tile, factors_key, sf);
    push(b, arr, tile);
    return arr;
}

static void put_limits(struct builder *b, json_t *obj, const struct ts_limits *opt)
{
    /* maxHeight may only appear with maxWidth; a height-only limit is expressed with the
     * largest width a request can name. */
    if (opt->max_width || opt->max_height)
        put(b, obj, "maxWidth", json_integer(opt->max_width ? opt->max_width : 2147483647));
    if (opt->max_height)
        put(b, obj, "maxHeight", json_integer(opt->max_height));
    if (opt->max_area)
        put(b, obj, "maxArea", json_integer((json_int_t)opt->max_area));
}

/* Features beyond the bare level: the spec's names for everything Tessera's HTTP layer and
 * plan implement (level 2 ones included, so a client reading only this list sees them too). */
static const char *const features3[] = {
    "baseUriRedirect",
    "canonicalLinkHeader",
    "cors",
    "jsonldMediaType",
    "mirroring",
    "profileLinkHeader",
    "regionByPct",
    "regionByPx",
    "regionSquare",
    "rotationBy90s",
    "sizeByConfinedWh",
    "sizeByH",
    "sizeByPct",
    "sizeByW",
    "sizeByWh",
};
static const char *const features2[] = {
    "baseUriRedirect",
    "canonicalLinkHeader",
    "cors",
    "jsonldMediaType",
    "mirroring",
    "profileLinkHeader",
    "regionByPct",
    "regionByPx",
    "regionSquare",
    "rotationBy90s",
    "sizeAboveFull",
    "sizeByConfinedWh",
    "sizeByDistortedWh",
    "sizeByH",
    "sizeByPct",
    "sizeByW",
    "sizeByWh",
};

static json_t *feature_array(struct builder *b, const char *const *names, size_t n, bool arbitrary,
                             bool no_upscaling)
{
    json_t *arr = json_array();
    if (!arr) {
        b->failed = true;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (!no_upscaling || strcmp(names[i], "sizeAboveFull"))
            push(b, arr, json_string(names[i]));
    if (arr && arbitrary)
        push(b, arr, json_string("rotationArbitrary"));
    return arr;
}

static json_t *info_v3(struct builder *b, const struct iiif_info_params *p, struct tile_size t,
                       const uint32_t *factors, int nf)
{
    static const char *const qualities[] = {"color",   "gray",         "bitonal", "negative",
                                            "stretch", "equalization", "log"};
    static const char *const preferred[] = {"jpg"};
    json_t *o = json_object();
    if (!o)
        return NULL;
    put(b, o, "@context", json_string("http://iiif.io/api/image/3/context.json"));
    put(b, o, "id", json_string(p->id));
    put(b, o, "type", json_string("ImageService3"));
    put(b, o, "protocol", json_string("http://iiif.io/api/image"));
    put(b, o, "profile", json_string("level2"));
    put(b, o, "width", json_integer(p->info->width));
    put(b, o, "height", json_integer(p->info->height));
    put_limits(b, o, p->opt);
    json_t *sizes = sizes_array(b, p, factors, nf);
    if (sizes && json_array_size(sizes) == 0)
        json_decref(sizes);
    else
        put(b, o, "sizes", sizes);
    put(b, o, "tiles", tiles_array(b, t, factors, nf, "scaleFactors"));
    json_t *extra = format_array(b, p->opt->formats, true);
    if (extra && json_array_size(extra) == 0)
        json_decref(extra);
    else
        put(b, o, "extraFormats", extra);
    if (p->opt->formats & (1u << TS_FORMAT_JPG))
        put(b, o, "preferredFormats", string_array(b, preferred, 1));
    /* 3.0 section 4.4: a grey source does not list color (it has none to give). */
    bool grey = p->info->channels <= 2;
    put(b, o, "extraQualities",
        string_array(b, qualities + grey, (p->opt->iiif_extensions ? 7 : 3) - grey));
    json_t *features = feature_array(b, features3, sizeof features3 / sizeof features3[0],
                                     p->opt->rotation_arbitrary, p->opt->no_upscaling);
    /* 3.0 section 5.7: advertising sizeUpscaling requires maxWidth or maxArea. */
    if (features && !p->opt->no_upscaling &&
        (p->opt->max_width || p->opt->max_height || p->opt->max_area))
        push(b, features, json_string("sizeUpscaling"));
    put(b, o, "extraFeatures", features);
    return o;
}

static json_t *info_v2(struct builder *b, const struct iiif_info_params *p, struct tile_size t,
                       const uint32_t *factors, int nf)
{
    static const char *const qualities[] = {"default",  "color",   "gray",         "bitonal",
                                            "negative", "stretch", "equalization", "log"};
    json_t *o = json_object();
    if (!o)
        return NULL;
    put(b, o, "@context", json_string("http://iiif.io/api/image/2/context.json"));
    put(b, o, "@id", json_string(p->id));
    put(b, o, "protocol", json_string("http://iiif.io/api/image"));
    put(b, o, "width", json_integer(p->info->width));
    put(b, o, "height", json_integer(p->info->height));
    json_t *sizes = sizes_array(b, p, factors, nf);
    if (sizes && json_array_size(sizes) == 0)
        json_decref(sizes);
    else
        put(b, o, "sizes", sizes);
    put(b, o, "tiles", tiles_array(b, t, factors, nf, "scaleFactors"));

    json_t *profile = json_array(), *desc = json_object();
    if (!profile || !desc) {
        json_decref(profile);
        json_decref(desc);
        json_decref(o);
        return NULL;
    }
    push(b, profile, json_string("http://iiif.io/api/image/2/level2.json"));
    json_t *formats = format_array(b, p->opt->formats, true);
    if (formats && json_array_size(formats) == 0) /* spec: omit rather than list nothing */
        json_decref(formats);
    else
        put(b, desc, "formats", formats);
    put(b, desc, "qualities", string_array(b, qualities, p->opt->iiif_extensions ? 8 : 4));
    put(b, desc, "supports",
        feature_array(b, features2, sizeof features2 / sizeof features2[0],
                      p->opt->rotation_arbitrary, p->opt->no_upscaling));
    put_limits(b, desc, p->opt);
    push(b, profile, desc);
    put(b, o, "profile", profile);
    return o;
}

static json_t *info_v1(struct builder *b, const struct iiif_info_params *p, struct tile_size t,
                       const uint32_t *factors, int nf)
{
    static const char *const qualities[] = {"native",   "color",   "grey",         "bitonal",
                                            "negative", "stretch", "equalization", "log"};
    json_t *o = json_object();
    if (!o)
        return NULL;
    put(b, o, "@context",
        json_string("http://library.stanford.edu/iiif/image-api/1.1/context.json"));
    put(b, o, "@id", json_string(p->id));
    put(b, o, "width", json_integer(p->info->width));
    put(b, o, "height", json_integer(p->info->height));
    json_t *sf = json_array();
    if (!sf)
        b->failed = true;
    for (int i = 0; sf && i < nf; i++)
        push(b, sf, json_integer(factors[i]));
    put(b, o, "scale_factors", sf);
    put(b, o, "tile_width", json_integer(t.w));
    put(b, o, "tile_height", json_integer(t.h));
    put(b, o, "formats", format_array(b, p->opt->formats, false));
    put(b, o, "qualities", string_array(b, qualities, p->opt->iiif_extensions ? 8 : 4));
    put(b, o, "profile",
        json_string("http://library.stanford.edu/iiif/image-api/1.1/compliance.html#level2"));
    return o;
}

/* The statement iipsrv writes: "rights" in 3.0, "license" before. Text that is not UTF-8
 * (a TIFF tag in Latin-1) is left out rather than failing the whole document. */
static void put_rights(struct builder *b, json_t *root, int version, const char *rights)
{
    if (!rights || !*rights)
        return;
    json_t *s = json_string(rights);
    if (s)
        put(b, root, version >= 3 ? "rights" : "license", s);
}

/* IIIF_EXTRA_INFO's members go in as copies (the parsed object is shared by every thread),
 * after everything else; they may replace optional members but never those that say what the
 * document is and which image it describes. */
static void merge_extra(struct builder *b, json_t *root, json_t *extra)
{
    static const char *const required[] = {"@context", "@id",   "id",     "type",
                                           "protocol", "width", "height", "profile"};
    const char *key;
    json_t *value;
    json_object_foreach(extra, key, value)
    {
        bool keep = true;
        for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
            if (!strcmp(key, required[i]))
                keep = false;
        if (keep)
            put(b, root, key, json_deep_copy(value));
    }
}

int iiif_info_json(const struct iiif_info_params *p, char **json, struct ts_err *err)
{
    *json = NULL;
    if (!p || !p->id || !p->info || !p->opt)
        return ts_fail(err, TS_EINVAL, "info.json needs an id, image info and options");
    if (p->info->width == 0 || p->info->height == 0)
        return ts_fail(err, TS_EINVAL, "image has no pixels");
    /* jansson refuses strings that are not UTF-8; say so rather than report out of memory. */
    json_t *probe = json_string(p->id);
    if (!probe)
        return ts_fail(err, TS_EINVAL, "image id is not valid UTF-8");
    json_decref(probe);

    struct tile_size t = advertised_tile(p);
    uint32_t factors[MAX_FACTORS];
    int nf = iiif_scale_factors(p->info, t.w, t.h, factors, MAX_FACTORS);

    struct builder b = {false};
    json_t *root;
    switch (p->version) {
    case 1: root = info_v1(&b, p, t, factors, nf); break;
    case 2: root = info_v2(&b, p, t, factors, nf); break;
    case 3: root = info_v3(&b, p, t, factors, nf); break;
    default: return ts_fail(err, TS_EINVAL, "unknown IIIF version %d", p->version);
    }
    if (root) {
        put_rights(&b, root, p->version, p->rights);
        if (p->extra)
            merge_extra(&b, root, p->extra);
    }
    if (!root || b.failed) {
        json_decref(root);
        return ts_fail(err, TS_ENOMEM, "out of memory building info.json");
    }
    char *text = json_dumps(root, JSON_PRESERVE_ORDER | JSON_INDENT(2));
    json_decref(root);
    if (!text)
        return ts_fail(err, TS_ENOMEM, "out of memory serialising info.json");
    *json = text;
    return TS_OK;
}
