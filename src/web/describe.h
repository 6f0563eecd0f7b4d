/* What a manifest or collection tells people about its object: the image's own tags, sidecar
 * files written by curators, and the server's COPYRIGHT, merged into Presentation 3.0 fields. */
#ifndef TESSERA_WEB_DESCRIBE_H
#define TESSERA_WEB_DESCRIBE_H

#include "image/reader.h"
#include "util/buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Each field is NULL until a source gives it; the first source to give a field keeps it, so
 * sources are applied from the most specific (the image's sidecar) to the most general (the
 * server's COPYRIGHT). metadata entries accumulate in that order, a label given once. */
struct web_description {
    json_t *label;    /* language map */
    json_t *summary;  /* language map */
    json_t *metadata; /* array of {label, value} language maps */
    json_t *required; /* requiredStatement: {label, value} */
    json_t *rights;   /* a Creative Commons or RightsStatements.org URI */
    json_t *nav_date; /* an XSD dateTime with a time zone */
};

void web_description_init(struct web_description *d);
void web_description_free(struct web_description *d);

/* Which of a sidecar's fields apply: a folder's sidecar describes the folder itself (its
 * Collection) with all of them, and gives the images in it only what can be shared (metadata,
 * requiredStatement, rights, navDate): its label and summary are the folder's. */
enum web_sidecar_scope { WEB_SIDECAR_ALL, WEB_SIDECAR_SHARED };

/* Applies a sidecar file's JSON (label, summary, metadata, requiredStatement, rights, navDate;
 * anything else is ignored). A file that is not a JSON object, or a field that is not what the
 * spec allows, is logged as a warning naming `where` and left out: a curator's typo never
 * breaks the manifest. A free-text rights goes to requiredStatement, as the spec recommends. */
void web_description_sidecar(struct web_description *d, const char *text, size_t len,
                             const char *where, enum web_sidecar_scope scope);

/* Fills what is still missing from the image's own tags: XMP dc:title, dc:description,
 * dc:creator, dc:rights, xmpRights:WebStatement and the creation date, then the TIFF tags
 * DocumentName, ImageDescription, Artist, Copyright and DateTime. Text that is not UTF-8 is
 * left out. */
void web_description_tags(struct web_description *d, const struct ts_image_info *info);

/* The server's rights statement (iipsrv's COPYRIGHT): a URI becomes rights, text the
 * requiredStatement, each only when nothing more specific gave one. */
void web_description_copyright(struct web_description *d, const char *copyright);

/* Adds an entry with an English label and a value in no particular language, unless an entry
 * of that label is there already. Text that is not UTF-8 is left out. */
void web_description_add(struct web_description *d, const char *label, const char *value);

/* Sets the fields d has on obj (a Manifest or Collection), in the spec's order of mention.
 * TS_ENOMEM when jansson cannot. */
int web_description_put(const struct web_description *d, json_t *obj);

/* Exposed for tests: appends the text of an XMP property (the x-default or first item of a
 * language alternative, the items of a list joined with "; ", or a simple value or attribute)
 * to out, entities decoded and white space trimmed. False when the packet has no such
 * property or it is empty (or out's cap is reached). */
bool web_xmp_value(const char *xmp, const char *name, struct ts_buf *out);

/* Exposed for tests: true for an XSD dateTime with a time zone ("2010-01-01T00:00:00Z"). */
bool web_is_xsd_datetime(const char *s);

#endif
