/* Descriptive fields of manifests and collections: sidecars, image tags, COPYRIGHT. */
#include "web/describe.h"
#include "core/app.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* An XMP value longer than this is not a label or a statement anyone reads in a viewer. */
#define DESCRIBE_TEXT_MAX (64 * 1024)

void web_description_init(struct web_description *d)
{
    memset(d, 0, sizeof *d);
    d->metadata = json_array();
}

void web_description_free(struct web_description *d)
{
    json_decref(d->label);
    json_decref(d->summary);
    json_decref(d->metadata);
    json_decref(d->required);
    json_decref(d->rights);
    json_decref(d->nav_date);
    memset(d, 0, sizeof *d);
}

/* ---- checks of what the spec allows ---- */

/* Language keys as the Presentation 3.0 schema admits them ("en", "en-GB", "none"). */
static bool valid_language(const char *key)
{
    if (!*key)
        return false;
    for (const char *p = key; *p; p++)
        if (!isalpha((unsigned char)*p) && *p != '-')
            return false;
    return true;
}

static bool digits(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

static int two(const char *s)
{
    return (s[0] - '0') * 10 + (s[1] - '0');
}

bool web_is_xsd_datetime(const char *s)
{
    if (*s == '-')
        s++;
    if (!digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' || !digits(s + 8, 2) ||
        s[10] != 'T' || !digits(s + 11, 2) || s[13] != ':' || !digits(s + 14, 2) || s[16] != ':' ||
        !digits(s + 17, 2))
        return false;
    int month = two(s + 5), day = two(s + 8), hour = two(s + 11), min = two(s + 14),
        sec = two(s + 17);
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 24 || min > 59 || sec > 60)
        return false;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    /* The spec asks for a time zone: "Z" or an offset "+hh:mm". */
    if (*p == 'Z')
        return p[1] == '\0';
    return (*p == '+' || *p == '-') && digits(p + 1, 2) && p[3] == ':' && digits(p + 4, 2) &&
           p[6] == '\0' && two(p + 1) <= 14 && two(p + 4) <= 59;
}

/* A Creative Commons or RightsStatements.org URI, in the http form that the spec (and its
 * schema) asks for: written with https by a curator, it is the same statement. */
static json_t *rights_uri(const char *s)
{
    static const char *const bases[] = {"creativecommons.org/licenses/",
                                        "creativecommons.org/publicdomain/",
                                        "rightsstatements.org/vocab/"};
    const char *rest = !strncmp(s, "http://", 7)    ? s + 7
                       : !strncmp(s, "https://", 8) ? s + 8
                                                    : NULL;
    if (!rest)
        return NULL;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '"' || *p == '<' || *p == '>')
            return NULL;
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        size_t n = strlen(bases[i]);
        if (!strncmp(rest, bases[i], n) && rest[n]) {
            char uri[1024];
            int len = snprintf(uri, sizeof uri, "http://%s", rest);
            return len > 0 && (size_t)len < sizeof uri ? json_string(uri) : NULL;
        }
    }
    return NULL;
}

/* ---- building blocks ---- */

static json_t *text_map(const char *lang, const char *text)
{
    json_t *s = json_string(text); /* NULL for text that is not UTF-8 */
    return s ? json_pack("{s:[o]}", lang, s) : NULL;
}

static json_t *entry(json_t *label, json_t *value)
{
    if (!label || !value) {
        json_decref(label);
        json_decref(value);
        return NULL;
    }
    return json_pack("{s:o,s:o}", "label", label, "value", value);
}

/* The first string of a language map, for comparing labels. */
static const char *first_text(json_t *map)
{
    const char *key;
    json_t *list;
    json_object_foreach(map, key, list)
    {
        (void)key;
        if (json_array_size(list))
            return json_string_value(json_array_get(list, 0));
    }
    return NULL;
}

static bool has_label(json_t *metadata, const char *label)
{
    size_t i;
    json_t *e;
    json_array_foreach(metadata, i, e)
    {
        const char *t = first_text(json_object_get(e, "label"));
        if (t && !strcasecmp(t, label))
            return true;
    }
    return false;
}

/* Takes e (a {label, value} entry) unless its label is there already. */
static void add_entry(struct web_description *d, json_t *e)
{
    const char *label = e ? first_text(json_object_get(e, "label")) : NULL;
    if (!label || has_label(d->metadata, label) || json_array_append_new(d->metadata, e) != 0)
        json_decref(e);
}

void web_description_add(struct web_description *d, const char *label, const char *value)
{
    if (value && *value)
        add_entry(d, entry(text_map("en", label), text_map("none", value)));
}

static void set_required(struct web_description *d, const char *label, const char *value)
{
    if (!d->required && value && *value)
        d->required = entry(text_map("en", label), text_map("none", value));
}

/* A rights statement from anywhere: a URI the spec admits is rights, anything else is text
 * that people must see, so it is the requiredStatement. */
static void rights_or_statement(struct web_description *d, const char *value)
{
    if (!value || !*value)
        return;
    json_t *uri = rights_uri(value);
    if (uri && !d->rights)
        d->rights = uri;
    else if (uri)
        json_decref(uri);
    else
        set_required(d, "Rights", value);
}

/* ---- sidecars ---- */

static void warn(const char *where, const char *what)
{
    ts_log("warning: sidecar %s: %s; ignored", where, what);
}

/* A language map from a sidecar's value: a string (in no particular language) or an object of
 * language -> string or list of strings. NULL when it is neither. */
static json_t *lang_map(json_t *v)
{
    if (json_is_string(v))
        return json_pack("{s:[O]}", "none", v);
    if (!json_is_object(v) || json_object_size(v) == 0)
        return NULL;
    json_t *out = json_object();
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val)
    {
        json_t *list = json_array();
        bool ok = out && list && valid_language(key);
        if (ok && json_is_string(val)) {
            ok = json_array_append(list, val) == 0;
        } else if (ok && json_is_array(val) && json_array_size(val) > 0) {
            size_t i;
            json_t *item;
            json_array_foreach(val, i, item) ok =
                ok && json_is_string(item) && json_array_append(list, item) == 0;
        } else {
            ok = false;
        }
        if (!ok || json_object_set_new(out, key, list) != 0) {
            if (ok)
                list = NULL; /* json_object_set_new took it even on failure */
            json_decref(list);
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* {label, value} from a sidecar: both language maps (or strings). */
static json_t *pair(json_t *v)
{
    if (!json_is_object(v))
        return NULL;
    json_t *label = lang_map(json_object_get(v, "label"));
    json_t *value = lang_map(json_object_get(v, "value"));
    return entry(label, value);
}

static void sidecar_text_field(json_t *doc, const char *name, json_t **slot, const char *where)
{
    json_t *v = json_object_get(doc, name);
    if (!v)
        return;
    json_t *map = lang_map(v);
    if (!map) {
        char what[96];
        snprintf(what, sizeof what, "'%s' is not a string or a language map", name);
        warn(where, what);
    } else if (*slot) {
        json_decref(map);
    } else {
        *slot = map;
    }
}

static void sidecar_metadata(struct web_description *d, json_t *doc, const char *where)
{
    json_t *list = json_object_get(doc, "metadata");
    if (!list)
        return;
    if (!json_is_array(list)) {
        warn(where, "'metadata' is not a list");
        return;
    }
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item)
    {
        json_t *e = pair(item);
        if (!e) {
            char what[96];
            snprintf(what, sizeof what, "metadata entry %zu has no label and value", i + 1);
            warn(where, what);
        }
        add_entry(d, e);
    }
}

static void sidecar_required(struct web_description *d, json_t *doc, const char *where)
{
    json_t *v = json_object_get(doc, "requiredStatement");
    if (!v)
        return;
    if (json_is_string(v)) {
        set_required(d, "Attribution", json_string_value(v));
        return;
    }
    json_t *e = pair(v);
    if (!e)
        warn(where, "'requiredStatement' is not a string or a {label, value} pair");
    else if (!d->required)
        d->required = e;
    else
        json_decref(e);
}

static void sidecar_rights(struct web_description *d, json_t *doc, const char *where)
{
    json_t *v = json_object_get(doc, "rights");
    if (!v)
        return;
    if (!json_is_string(v)) {
        warn(where, "'rights' is not a string");
        return;
    }
    const char *s = json_string_value(v);
    json_t *uri = rights_uri(s);
    if (!uri) {
        /* Not a URI the spec admits for rights: still a statement people must see. */
        warn(where, "'rights' is not a Creative Commons or RightsStatements.org URI, so it "
                    "goes to requiredStatement");
        set_required(d, "Rights", s);
    } else if (!d->rights) {
        d->rights = uri;
    } else {
        json_decref(uri);
    }
}

static void sidecar_nav_date(struct web_description *d, json_t *doc, const char *where)
{
    json_t *v = json_object_get(doc, "navDate");
    if (!v)
        return;
    if (!json_is_string(v) || !web_is_xsd_datetime(json_string_value(v)))
        warn(where, "'navDate' is not a date and time with a time zone (2010-01-01T00:00:00Z)");
    else if (!d->nav_date)
        d->nav_date = json_incref(v);
}

void web_description_sidecar(struct web_description *d, const char *text, size_t len,
                             const char *where, enum web_sidecar_scope scope)
{
    json_error_t error;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
    if (!json_is_object(doc)) {
        char what[256];
        if (doc)
            snprintf(what, sizeof what, "not a JSON object");
        else
            snprintf(what, sizeof what, "not JSON (line %d: %s)", error.line, error.text);
        warn(where, what);
        json_decref(doc);
        return;
    }
    if (scope == WEB_SIDECAR_ALL) {
        sidecar_text_field(doc, "label", &d->label, where);
        sidecar_text_field(doc, "summary", &d->summary, where);
    }
    sidecar_metadata(d, doc, where);
    sidecar_required(d, doc, where);
    sidecar_rights(d, doc, where);
    sidecar_nav_date(d, doc, where);
    json_decref(doc);
}

/* ---- XMP ---- */

/* A character reference after "&#" ("233;" or "xE9;"): its code point, with *used set to the
 * characters it took (the ';' included); 0 when it is not one. */
static unsigned long char_ref(const char *s, size_t len, size_t *used)
{
    bool hex = len > 0 && (s[0] == 'x' || s[0] == 'X');
    size_t i = hex ? 1 : 0;
    unsigned long cp = 0;
    for (; i < len && i < 9 && (hex ? isxdigit((unsigned char)s[i]) : isdigit((unsigned char)s[i]));
         i++) {
        int d = isdigit((unsigned char)s[i]) ? s[i] - '0' : tolower((unsigned char)s[i]) - 'a' + 10;
        cp = cp * (hex ? 16 : 10) + (unsigned long)d;
    }
    if (i == (hex ? 1u : 0u) || i >= len || s[i] != ';' || cp == 0 || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    *used = i + 1;
    return cp;
}

/* Writes code point cp as UTF-8 into u; returns its length. */
static size_t utf8(unsigned long cp, char u[4])
{
    if (cp < 0x80) {
        u[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    u[0] = (char)(0xF0 | (cp >> 18));
    u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Appends text[0..len) to out with XML's entities decoded. */
static int append_xml_text(struct ts_buf *out, const char *text, size_t len)
{
    static const struct {
        const char *name;
        char c;
    } named[] = {{"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}};
    int rc = 0;
    for (size_t i = 0; i < len && !rc; i++) {
        if (text[i] != '&') {
            rc = ts_buf_append(out, &text[i], 1);
            continue;
        }
        const char *e = text + i + 1, *end = text + len;
        bool done = false;
        for (size_t k = 0; k < sizeof named / sizeof named[0] && !done; k++) {
            size_t n = strlen(named[k].name);
            if ((size_t)(end - e) >= n && !strncmp(e, named[k].name, n)) {
                rc = ts_buf_append(out, &named[k].c, 1);
                i += n;
                done = true;
            }
        }
        if (!done && e < end && *e == '#') {
            size_t used;
            unsigned long cp = char_ref(e + 1, (size_t)(end - e - 1), &used);
            if (cp) {
                char u[4];
                rc = ts_buf_append(out, u, utf8(cp, u));
                i += 1 + used;
                done = true;
            }
        }
        if (!done)
            rc = ts_buf_append(out, "&", 1);
    }
    return rc;
}

/* Appends text trimmed of white space at both ends, decoded. */
static int append_trimmed(struct ts_buf *out, const char *text, size_t len)
{
    while (len && isspace((unsigned char)*text))
        text++, len--;
    while (len && isspace((unsigned char)text[len - 1]))
        len--;
    return append_xml_text(out, text, len);
}

/* Where element `name` starts ("<dc:title" followed by '>', '/' or white space), or NULL. */
static const char *find_open(const char *from, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(from, "<"); p; p = strstr(p + 1, "<")) {
        if (!strncmp(p + 1, name, n) &&
            (p[1 + n] == '>' || p[1 + n] == '/' || isspace((unsigned char)p[1 + n])))
            return p;
    }
    return NULL;
}

/* The items of an rdf container: the x-default one of an Alt, or all joined with "; ". */
static bool append_items(const char *content, const char *end, struct ts_buf *out)
{
    bool alt = false;
    const char *a = strstr(content, "<rdf:Alt");
    if (a && a < end)
        alt = true;
    size_t start = out->len;
    bool any = false;
    for (const char *li = find_open(content, "rdf:li"); li && li < end;
         li = find_open(li + 1, "rdf:li")) {
        const char *gt = strchr(li, '>');
        if (!gt || gt >= end || gt[-1] == '/')
            continue;
        const char *close = strstr(gt, "</rdf:li>");
        if (!close || close > end)
            break;
        bool is_default = strstr(li, "x-default") && strstr(li, "x-default") < gt;
        if (alt && any && !is_default)
            continue;
        if (alt)
            out->len = start; /* a later x-default item replaces the first one */
        else if (any && ts_buf_append(out, "; ", 2))
            return false;
        if (append_trimmed(out, gt + 1, (size_t)(close - gt - 1)))
            return false;
        any = true;
        if (alt && is_default)
            break;
    }
    return any;
}

bool web_xmp_value(const char *xmp, const char *name, struct ts_buf *out)
{
    size_t before = out->len;
    const char *open = find_open(xmp, name);
    if (open) {
        const char *gt = strchr(open, '>');
        char close[96];
        snprintf(close, sizeof close, "</%s>", name);
        const char *end = gt && gt[-1] != '/' ? strstr(gt, close) : NULL;
        if (end) {
            /* A container (rdf:Alt, rdf:Seq, rdf:Bag) holds items; anything else is text. */
            const char *inner = strstr(gt + 1, "<rdf:");
            if (inner && inner < end)
                append_items(gt + 1, end, out);
            else
                append_trimmed(out, gt + 1, (size_t)(end - gt - 1));
        }
    } else {
        /* The short form: a property as an attribute of rdf:Description. */
        char attr[96];
        snprintf(attr, sizeof attr, "%s=", name);
        for (const char *p = strstr(xmp, attr); p; p = strstr(p + 1, attr)) {
            char q = p[strlen(attr)];
            if (p == xmp || !isspace((unsigned char)p[-1]) || (q != '"' && q != '\''))
                continue;
            const char *v = p + strlen(attr) + 1, *e = strchr(v, q);
            if (e)
                append_trimmed(out, v, (size_t)(e - v));
            break;
        }
    }
    return out->len > before && ts_buf_str(out);
}

/* ---- the image's own tags ---- */

/* A tag's value trimmed of white space, or NULL when that leaves nothing. */
static const char *tag(const struct ts_image_info *info, const char *name, struct ts_buf *keep)
{
    const char *v = ts_image_meta(info, name);
    if (!v)
        return NULL;
    while (isspace((unsigned char)*v))
        v++;
    size_t n = strlen(v);
    while (n && isspace((unsigned char)v[n - 1]))
        n--;
    ts_buf_free(keep);
    return n && ts_buf_append(keep, v, n) == 0 ? ts_buf_str(keep) : NULL;
}

static const char *xmp(const char *packet, const char *name, struct ts_buf *keep)
{
    ts_buf_free(keep);
    return packet && web_xmp_value(packet, name, keep) ? ts_buf_str(keep) : NULL;
}

/* TIFF's DateTime "YYYY:MM:DD HH:MM:SS" as people write it: "YYYY-MM-DD HH:MM:SS". */
static void tiff_date(const char *v, char *out, size_t size)
{
    snprintf(out, size, "%s", v);
    if (strlen(out) >= 10 && out[4] == ':' && out[7] == ':')
        out[4] = out[7] = '-';
}

void web_description_tags(struct web_description *d, const struct ts_image_info *info)
{
    if (!info || !info->meta)
        return;
    struct ts_buf x, t;
    ts_buf_init_capped(&x, DESCRIBE_TEXT_MAX);
    ts_buf_init_capped(&t, DESCRIBE_TEXT_MAX);
    const char *packet = ts_image_meta(info, "xmp");
    const char *v;
    if (!d->label && ((v = xmp(packet, "dc:title", &x)) || (v = tag(info, "title", &t))))
        d->label = text_map("none", v);
    /* Software writes its own notes into ImageDescription (OME-XML, ImageJ's settings): only
     * text that does not look like markup is taken for a summary. */
    if (!d->summary && ((v = xmp(packet, "dc:description", &x)) ||
                        ((v = tag(info, "description", &t)) && v[0] != '<')))
        d->summary = text_map("none", v);
    if ((v = xmp(packet, "dc:creator", &x)) || (v = tag(info, "creator", &t)))
        web_description_add(d, "Creator", v);
    char date[64];
    if ((v = xmp(packet, "photoshop:DateCreated", &x)) || (v = xmp(packet, "xmp:CreateDate", &x))) {
        web_description_add(d, "Date", v);
        if (!d->nav_date && web_is_xsd_datetime(v))
            d->nav_date = json_string(v);
    } else if ((v = tag(info, "date", &t))) {
        tiff_date(v, date, sizeof date);
        web_description_add(d, "Date", date);
    }
    if ((v = xmp(packet, "xmpRights:WebStatement", &x)) && !d->rights)
        d->rights = rights_uri(v);
    if ((v = xmp(packet, "dc:rights", &x)) || (v = tag(info, "rights", &t)))
        rights_or_statement(d, v);
    ts_buf_free(&x);
    ts_buf_free(&t);
}

void web_description_copyright(struct web_description *d, const char *copyright)
{
    rights_or_statement(d, copyright);
}

int web_description_put(const struct web_description *d, json_t *obj)
{
    int rc = 0;
    if (d->label)
        rc |= json_object_set(obj, "label", d->label);
    if (d->summary)
        rc |= json_object_set(obj, "summary", d->summary);
    if (d->metadata && json_array_size(d->metadata))
        rc |= json_object_set(obj, "metadata", d->metadata);
    if (d->required)
        rc |= json_object_set(obj, "requiredStatement", d->required);
    if (d->rights)
        rc |= json_object_set(obj, "rights", d->rights);
    if (d->nav_date)
        rc |= json_object_set(obj, "navDate", d->nav_date);
    return rc ? TS_ENOMEM : TS_OK;
}
