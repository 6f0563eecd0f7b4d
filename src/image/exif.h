/* EXIF: reading orientation and text tags from a JPEG APP1 segment, and presenting the upright
 * image. */
#ifndef TESSERA_EXIF_H
#define TESSERA_EXIF_H

#include "image/image.h"
#include "image/reader.h"
#include "util/status.h"

#include <stddef.h>
#include <stdint.h>

/* The Orientation (0x0112) of IFD0 in an APP1 payload starting "Exif\0\0": 1..8, and 1 for
 * anything missing, malformed or out of range (a bad tag must never hide the image). */
uint32_t ts_exif_orientation(const uint8_t *app1, size_t len);

/* Calls add(ctx, name, value, len) for each text tag of IFD0 in an APP1 payload starting
 * "Exif\0\0" (Artist as "creator", Copyright as "rights", DateTime as "date",
 * ImageDescription as "description", DocumentName as "title", Software, Make, Model); value
 * is not NUL-terminated (len counts the stored bytes, a NUL included). Anything malformed ends
 * the walk quietly. Returns add's first nonzero answer, else 0. */
typedef int (*ts_exif_text_fn)(void *ctx, const char *name, const char *value, size_t len);
int ts_exif_texts(const uint8_t *app1, size_t len, ts_exif_text_fn add, void *ctx);

/* The same for the IPTC-IIM records of an APP13 payload starting "Photoshop 3.0\0"
 * (ObjectName as "title", By-line as "creator", CopyrightNotice as "rights", Caption/Abstract
 * as "description"). */
int ts_iptc_texts(const uint8_t *app13, size_t len, ts_exif_text_fn add, void *ctx);

/* True for 5..8, where the stored image is transposed: width and height swap. */
bool ts_exif_swaps_axes(uint32_t orientation);

/* Maps a request in upright coordinates of a stored sw x sh image to the stored pixels to
 * decode (including min_w/min_h). */
void ts_exif_stored_req(uint32_t orientation, uint32_t sw, uint32_t sh,
                        const struct ts_read_req *upright, struct ts_read_req *stored);

/* Turns a decoded stored region upright into out (allocated here). */
int ts_exif_apply(uint32_t orientation, const struct ts_image *stored, struct ts_image *out,
                  struct ts_err *err);

#endif
