/* Identifier -> file under the image root, confined to it. */
#ifndef TESSERA_SOURCE_H
#define TESSERA_SOURCE_H

#include "util/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct source_file {
    char path[4096];
    struct stat st;
    uint32_t page; /* 0-based page of a multi-page TIFF ("{id};{n}" asks for page n, 1-based) */
};

/* Resolves a decoded identifier to a regular file below root (realpath-checked, so symlinks
 * cannot lead outside). The identifier may omit the file extension. demo_image, if non-empty,
 * answers the identifier "demo". An identifier that names no file but ends in ";N" (N >= 1)
 * names page N of the file before it (the suffix Cantaloupe uses). TS_EFORBIDDEN for "..", absolute paths, control characters or
 * an escape from the root; TS_ENOTFOUND when no file matches. */
int source_resolve(const char *root, const char *demo_image, const char *identifier,
                   struct source_file *out, struct ts_err *err);

/* True when name ends in one of the extensions source_resolve tries (case-insensitive). */
bool source_has_image_extension(const char *name);

#endif
