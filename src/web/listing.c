/* Folder listings below the image root, under the same confinement as image identifiers. */
#include "image/source.h"
#include "web/web.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* The identifier rules of source.c, plus hidden segments, which a listing never shows. */
static int check_folder(const char *folder, struct ts_err *err)
{
    if (folder[0] == '/')
        return ts_fail(err, TS_EFORBIDDEN, "absolute folders are not allowed");
    for (const char *p = folder; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\')
            return ts_fail(err, TS_EFORBIDDEN, "folder contains a forbidden character");
    const char *seg = folder;
    while (*seg) {
        size_t len = strcspn(seg, "/");
        if (len == 0)
            return ts_fail(err, TS_EFORBIDDEN, "folder has an empty path segment");
        if (seg[0] == '.')
            return ts_fail(err, TS_EFORBIDDEN,
                           "folder may not contain '.', '..' or hidden segments");
        seg += len;
        if (*seg == '/')
            seg++;
    }
    return TS_OK;
}

static bool below_or_at(const char *real_root, const char *real_path)
{
    size_t n = strlen(real_root);
    if (strncmp(real_root, real_path, n) != 0)
        return false;
    return real_path[n] == '\0' || real_path[n] == '/' || (n == 1 && real_root[0] == '/');
}

static int compare_entries(const void *a, const void *b)
{
    const struct web_entry *x = a, *y = b;
    if (x->is_folder != y->is_folder)
        return x->is_folder ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int push_entry(struct web_listing *out, size_t *cap, const struct web_entry *e)
{
    if (out->count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 32, bytes;
        if (!ts_mul_size(ncap, sizeof *out->entries, &bytes))
            return TS_ENOMEM;
        struct web_entry *grown = realloc(out->entries, bytes);
        if (!grown)
            return TS_ENOMEM;
        out->entries = grown;
        *cap = ncap;
    }
    out->entries[out->count++] = *e;
    return TS_OK;
}

/* Fills e for one directory entry (e->path malloc'd): TS_OK, TS_DECLINED when it is not
 * something to list, TS_ENOMEM. */
static int describe_entry(const char *real_root, const char *dir, const char *folder,
                          const char *name, struct web_entry *e)
{
    if (name[0] == '.' || strlen(name) > NAME_MAX)
        return TS_DECLINED;
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\')
            return TS_DECLINED;
    char full[PATH_MAX], real[PATH_MAX];
    int n = snprintf(full, sizeof full, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof full || !realpath(full, real))
        return TS_DECLINED;
    /* A symlink that leads out of the root would be refused when opened: do not offer it. */
    if (!below_or_at(real_root, real) || !strcmp(real, real_root))
        return TS_DECLINED;
    struct stat st;
    if (stat(real, &st) != 0)
        return TS_DECLINED;
    if (S_ISDIR(st.st_mode))
        e->is_folder = true;
    else if (S_ISREG(st.st_mode) && source_has_image_extension(name))
        e->is_folder = false;
    else
        return TS_DECLINED;
    size_t lead = strlen(folder) + (folder[0] ? 1 : 0), len = lead + strlen(name);
    if (len >= PATH_MAX)
        return TS_DECLINED;
    if (!(e->path = malloc(len + 1)))
        return TS_ENOMEM;
    memcpy(e->path, folder, strlen(folder));
    if (lead)
        e->path[lead - 1] = '/';
    memcpy(e->path + lead, name, strlen(name) + 1);
    e->name = e->path + lead;
    return TS_OK;
}

int web_list_folder(const char *root, const char *folder, struct web_listing *out,
                    struct ts_err *err)
{
    out->entries = NULL;
    out->count = 0;
    out->truncated = false;
    int rc = check_folder(folder, err);
    if (rc)
        return rc;
    char real_root[PATH_MAX], dir[PATH_MAX], real_dir[PATH_MAX];
    if (!realpath(root, real_root))
        return ts_fail(err, TS_EIO, "image root %s is not accessible: %s", root, strerror(errno));
    int n = snprintf(dir, sizeof dir, "%s%s%s", real_root, folder[0] ? "/" : "", folder);
    if (n < 0 || (size_t)n >= sizeof dir)
        return ts_fail(err, TS_EINVAL, "folder name too long");
    if (!realpath(dir, real_dir))
        return ts_fail(err, TS_ENOTFOUND, "no folder '%s'", folder);
    if (!below_or_at(real_root, real_dir))
        return ts_fail(err, TS_EFORBIDDEN, "folder resolves outside the image root");
    DIR *d = opendir(real_dir);
    if (!d)
        return ts_fail(err, errno == ENOTDIR ? TS_ENOTFOUND : TS_EIO, "cannot list folder '%s'",
                       folder);
    size_t cap = 0;
    struct dirent *de;
    struct web_entry *e = malloc(sizeof *e);
    if (!e) {
        closedir(d);
        return ts_fail(err, TS_ENOMEM, "out of memory");
    }
    while ((de = readdir(d)) != NULL) {
        rc = describe_entry(real_root, real_dir, folder, de->d_name, e);
        if (rc == TS_DECLINED)
            continue;
        if (rc == TS_OK && out->count == WEB_LISTING_MAX) {
            free(e->path);
            out->truncated = true;
            break;
        }
        if (rc != TS_OK || push_entry(out, &cap, e) != TS_OK) {
            if (rc == TS_OK)
                free(e->path);
            free(e);
            closedir(d);
            web_listing_free(out);
            return ts_fail(err, TS_ENOMEM, "out of memory listing '%s'", folder);
        }
    }
    free(e);
    closedir(d);
    if (out->count > 1)
        qsort(out->entries, out->count, sizeof *out->entries, compare_entries);
    return TS_OK;
}

void web_listing_free(struct web_listing *listing)
{
    for (size_t i = 0; i < listing->count; i++)
        free(listing->entries[i].path);
    free(listing->entries);
    listing->entries = NULL;
    listing->count = 0;
}
