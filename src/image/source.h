/* Identifier -> an open file strictly below the image root (openat2 RESOLVE_BENEATH). */
#ifndef TESSERA_SOURCE_H
#define TESSERA_SOURCE_H

#include "config.h"
#include "util/buf.h"
#include "util/status.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* The image root, opened once at start: every identifier is opened relative to this
 * descriptor, so renaming or re-linking the root's own path later changes nothing. */
struct source_root {
    int fd;               /* O_PATH | O_DIRECTORY */
    char path[PATH_MAX];  /* its real path, for the resolution cache's stat checks */
    char given[PATH_MAX]; /* as configured, absolute, no trailing '/' (may be a symbolic link) */
    const char *demo;     /* file served as identifier "demo" ("" = none); not below the root */
    /* "/", open, when an absolute identifier may name any image the process can read (iipsrv
     * without FILESYSTEM_PREFIX: see source_root_allow_anywhere); -1 = confined to the root. */
    int top_fd;
    /* Other folders files may come from (--source PREFIX=/folder/ rules), each confined as the
     * root is: source_reopen finds a file's folder again by its path. Entries with fd -1 are
     * unused. Borrowed. */
    const struct source_root *extra;
    unsigned nextra;
};

struct ts_bytes;

struct source_file {
    int fd; /* open for reading, or -1 (not opened yet, or handed to a reader) */
    /* A remote object (a reference), or NULL for a file. Its st is made up, but stable: ino a
     * hash of address and version, size the object's, mtime its Last-Modified, ctime a hash
     * of its ETag, dev SOURCE_REMOTE_DEV; so every cache keys and validates it as a file. */
    struct ts_bytes *bytes;
    struct stat st; /* of the open file: identity (dev, ino), size and mtime for every cache */
    uint32_t page;  /* 0-based page of a multi-page TIFF ("{id};{n}" asks for page n, 1-based) */
    bool demo;      /* the configured demo image, opened by its own path */
    char path[PATH_MAX]; /* root path + "/" + relative path (or the demo path) */
};

int source_root_open(const char *root, const char *demo, struct source_root *out,
                     struct ts_err *err);
void source_root_close(struct source_root *root);

/* iipsrv without FILESYSTEM_PREFIX opens an identifier as the path it is, so the clients of
 * such an installation send full paths of images anywhere on the machine. This lets an absolute
 * identifier that names nothing below the root name that file instead (still a regular file,
 * opened read-only; relative identifiers stay below the root). Only for that set-up: the
 * caller decides, and says so in its log. */
int source_root_allow_anywhere(struct source_root *root, struct ts_err *err);

/* Resolves a decoded identifier to a regular file below the root and opens it (out->fd).
 * The identifier may omit the file extension; "demo" names the demo image; an identifier that
 * names no file but ends in ";N" (N >= 1) names page N of the file before it. Symbolic links
 * are followed only while they stay below the root (relative ones by openat2's
 * RESOLVE_BENEATH; absolute ones by their real path, checked again once open).
 * A leading '/' (or several) is read as iipsrv reads it, glued after the root: "/a.tif" is
 * "a.tif" below the root; an absolute path that starts with the root's own path ("/srv/img/a.tif"
 * under root /srv/img) is tried as that file first. TS_EFORBIDDEN for "..", control characters,
 * an escape from the root, or an absolute identifier that names no file either way;
 * TS_ENOTFOUND when no file matches a relative one; TS_ETOOLONG when the path would not fit.
 * With source_root_allow_anywhere, an absolute identifier found nowhere below the root is
 * opened as that full path (TS_ENOTFOUND when nothing is there). */
int source_resolve(const struct source_root *root, const char *identifier, struct source_file *out,
                   struct ts_err *err);

/* Opens src again (src->fd was closed or handed on) beneath the root, as at resolution. The
 * path may name another file by now (renamed over): src->st is refreshed from the open file,
 * which is the one the request then reads from start to end. TS_ENOTFOUND if it is gone. */
int source_reopen(const struct source_root *root, struct source_file *src, struct ts_err *err);

/* The identifier's own shape, before any file is looked at: TS_EFORBIDDEN for '.' or '..'
 * segments, empty segments, absolute paths and control characters. Pure. */
int source_check_identifier(const char *identifier, struct ts_err *err);

/* For an absolute identifier that starts with the root's path (real or as configured) and a
 * '/': the rest, below the root (a pointer into identifier). NULL otherwise. Pure. */
const char *source_under_root(const struct source_root *root, const char *identifier);

/* The views of an image sequence (iipsrv's "{name}{pattern}{hhh}_{vvv}.{ext}" files): the
 * horizontal angles that have a file at vertical angle 90, and the vertical angles that have one
 * at horizontal angle 0, each sorted and distinct. */
#define SOURCE_MAX_VIEWS 512
struct source_views {
    uint32_t nh, nv;
    int32_t h[SOURCE_MAX_VIEWS], v[SOURCE_MAX_VIEWS];
};

/* The file name of view (h, v) of the sequence `base` (an identifier, extension omitted, as
 * source_resolve takes it): "{base}{pattern}{h:03}_{v:03}". Appended to out (size bytes).
 * TS_ETOOLONG when it does not fit. Pure. */
int source_sequence_frame(const char *base, const char *pattern, int32_t h, int32_t v, char *out,
                          size_t size, struct ts_err *err);

/* Lists the views of the sequence `base` from its folder below the root. TS_ENOTFOUND when
 * there is no such folder; TS_ETOOLARGE beyond SOURCE_MAX_VIEWS angles either way. */
int source_sequence_views(const struct source_root *root, const char *base, const char *pattern,
                          struct source_views *out, struct ts_err *err);

/* The path below the root of a file that goes with the image src: its own file name followed
 * by name when beside ("maps/a.tif" + ".json"), else name in the image's folder
 * ("maps/_folder.json"). TS_DECLINED for the demo image and files found outside the root (they
 * have no place below it); TS_ETOOLONG when it does not fit size. Pure. */
int source_companion_path(const struct source_root *root, const struct source_file *src,
                          const char *name, bool beside, char *out, size_t size,
                          struct ts_err *err);

/* Reads the regular file rel (a path below the root, confined as identifiers are) into out,
 * at most max bytes. TS_ENOTFOUND when nothing (or no regular file) is there, TS_ETOOLARGE
 * past max, TS_EFORBIDDEN for a path that leads out of the root, TS_EIO when reading fails. */
int source_read_small(const struct source_root *root, const char *rel, size_t max,
                      struct ts_buf *out, struct ts_err *err);

/* The device number of a remote object's made-up stat (no mounted file system has it). */
#define SOURCE_REMOTE_DEV ((dev_t)-2)

/* The rule whose prefix is the longest leading folder of identifier (leading '/' ignored), and
 * in *rest what follows it; NULL when none applies (the image root serves it). Pure. */
const struct ts_source_rule *source_rule_match(const struct ts_source_rule *rules, unsigned n,
                                               const char *identifier, const char **rest);

/* Closes src->fd if it is open, and drops src->bytes. */
void source_close(struct source_file *src);

/* True when name ends in one of the extensions source_resolve tries (case-insensitive). */
bool source_has_image_extension(const char *name);

#endif
