/* Maps identifiers to files strictly below the image root, opened once. */
#define _GNU_SOURCE /* O_PATH, openat2 */
#include "image/source.h"
#include "image/bytes.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef SYS_openat2
#include <linux/openat2.h>
#endif
#ifndef O_PATH
#define O_PATH O_RDONLY
#endif

/* Tried in order when the identifier names no file as given. */
static const char *const extensions[] = {".tif", ".tiff", ".ptif", ".jpg", ".jpeg", ".png", ".jp2",
                                         ".j2k", ".j2c",  ".jph",  ".jpx", ".webp", ".tf8", ".btf"};

bool source_has_image_extension(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return false;
    for (size_t i = 0; i < sizeof extensions / sizeof extensions[0]; i++)
        if (!strcasecmp(dot, extensions[i]))
            return true;
    return false;
}

int source_check_identifier(const char *id, struct ts_err *err)
{
    if (!*id)
        return ts_fail(err, TS_EINVAL, "empty identifier");
    if (id[0] == '/')
        return ts_fail(err, TS_EFORBIDDEN, "absolute identifiers are not allowed");
    for (const char *p = id; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\')
            return ts_fail(err, TS_EFORBIDDEN, "identifier contains a forbidden character");
    /* Walk the segments: '.' and '..' never name anything under the root. */
    const char *seg = id;
    while (*seg) {
        size_t len = strcspn(seg, "/");
        if (len == 0)
            return ts_fail(err, TS_EFORBIDDEN, "identifier has an empty path segment");
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return ts_fail(err, TS_EFORBIDDEN, "identifier may not contain '.' or '..' segments");
        seg += len;
        if (*seg == '/')
            seg++;
    }
    /* "dir/" would otherwise become "dir/.tif" when extensions are tried: a hidden file. */
    if (id[strlen(id) - 1] == '/')
        return ts_fail(err, TS_EFORBIDDEN, "identifier has an empty path segment");
    return TS_OK;
}

int source_root_open(const char *root, const char *demo, struct source_root *out,
                     struct ts_err *err)
{
    out->fd = -1;
    out->top_fd = -1;
    out->extra = NULL;
    out->nextra = 0;
    out->demo = demo ? demo : "";
    if (!realpath(root, out->path))
        return ts_fail(err, TS_EIO, "image root %s is not accessible: %s", root, strerror(errno));
    out->fd = open(out->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (out->fd < 0)
        return ts_fail(err, TS_EIO, "image root %s is not a directory: %s", root, strerror(errno));
    /* Clients of an iipsrv without FILESYSTEM_PREFIX send full paths spelled with the root as
     * the admin wrote it, which may run through a symbolic link: both spellings are known. */
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/')
        n--;
    if (root[0] == '/' && n < sizeof out->given) {
        memcpy(out->given, root, n);
        out->given[n] = '\0';
    } else {
        memcpy(out->given, out->path, strlen(out->path) + 1);
    }
    return TS_OK;
}

/* The rest of id after prefix and a '/', or NULL; prefix "/" is the whole file system. */
static const char *after_prefix(const char *prefix, const char *id)
{
    size_t n = strlen(prefix);
    if (n == 1 && prefix[0] == '/')
        return id + strspn(id, "/");
    if (!n || strncmp(prefix, id, n) != 0 || id[n] != '/')
        return NULL;
    return id + n + strspn(id + n, "/");
}

const char *source_under_root(const struct source_root *root, const char *identifier)
{
    if (identifier[0] != '/')
        return NULL;
    const char *rest = after_prefix(root->path, identifier);
    return rest ? rest : after_prefix(root->given, identifier);
}

int source_root_allow_anywhere(struct source_root *root, struct ts_err *err)
{
    if (root->top_fd >= 0)
        return TS_OK;
    root->top_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root->top_fd < 0)
        return ts_fail(err, TS_EIO, "cannot open /: %s", strerror(errno));
    return TS_OK;
}

void source_root_close(struct source_root *root)
{
    if (root->fd >= 0)
        close(root->fd);
    if (root->top_fd >= 0)
        close(root->top_fd);
    root->fd = -1;
    root->top_fd = -1;
}

/* The whole file system as a root, for an absolute identifier with allow_anywhere. */
static void top_root(const struct source_root *root, struct source_root *top)
{
    top->fd = root->top_fd;
    top->top_fd = -1;
    top->extra = NULL;
    top->nextra = 0;
    top->demo = "";
    snprintf(top->path, sizeof top->path, "/");
    snprintf(top->given, sizeof top->given, "/");
}

void source_close(struct source_file *src)
{
    if (src->fd >= 0)
        close(src->fd);
    src->fd = -1;
    ts_bytes_unref(src->bytes);
    src->bytes = NULL;
}

const struct ts_source_rule *source_rule_match(const struct ts_source_rule *rules, unsigned n,
                                               const char *identifier, const char **rest)
{
    const struct ts_source_rule *best = NULL;
    size_t best_len = 0;
    identifier += strspn(identifier, "/");
    for (unsigned i = 0; i < n; i++) {
        size_t len = strlen(rules[i].prefix);
        /* A whole leading folder: "maps" never takes "mapsfoo/a.tif". */
        if (len && len > best_len && !strncmp(identifier, rules[i].prefix, len) &&
            identifier[len] == '/' && identifier[len + 1 + strspn(identifier + len + 1, "/")]) {
            best = &rules[i];
            best_len = len;
        }
    }
    if (best)
        *rest = identifier + best_len + 1 + strspn(identifier + best_len + 1, "/");
    return best;
}

/* Without openat2 (kernels before 5.6, or a seccomp filter that refuses it): walk the path one
 * component at a time and follow no symbolic link at all, which is stricter but never escapes. */
static int open_walk(int dirfd, const char *rel)
{
    char buf[PATH_MAX];
    size_t n = strlen(rel);
    if (n >= sizeof buf)
        return -ENAMETOOLONG;
    memcpy(buf, rel, n + 1);
    int cur = dirfd;
    char *seg = buf;
    for (;;) {
        char *slash = strchr(seg, '/');
        if (slash)
            *slash = '\0';
        int flags = slash ? O_PATH | O_DIRECTORY : O_RDONLY | O_NOCTTY;
        int fd = openat(cur, seg, flags | O_NOFOLLOW | O_CLOEXEC);
        int saved = errno;
        if (cur != dirfd)
            close(cur);
        if (fd < 0)
            return -saved;
        if (!slash)
            return fd;
        cur = fd;
        seg = slash + 1;
    }
}

/* An open descriptor, or a negative errno. */
static int open_beneath(int dirfd, const char *rel)
{
#ifdef SYS_openat2
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
    if (fd >= 0)
        return (int)fd;
    if (errno != ENOSYS && errno != EPERM)
        return -errno;
#endif
    return open_walk(dirfd, rel);
}

static bool below(const char *root, const char *path)
{
    size_t n = strlen(root);
    return !strncmp(root, path, n) && (path[n] == '/' || (n == 1 && root[0] == '/'));
}

/* The part of path below root (no leading '/'), or NULL when path is not below it. */
static const char *path_below(const char *root, const char *path)
{
    if (!below(root, path))
        return NULL;
    size_t n = strlen(root);
    return path + (n == 1 ? 1 : n + 1);
}

/* RESOLVE_BENEATH refuses absolute symbolic links even when they point back inside the root
 * (an admin's "ln -s /srv/images/a.tif b.tif"). Those are checked by their real path, and the
 * file actually opened is checked again, so a link swapped in between cannot lead out. */
static int open_absolute_link(const struct source_root *root, const char *rel)
{
    char joined[PATH_MAX], real[PATH_MAX], opened[PATH_MAX], link[64];
    int n = snprintf(joined, sizeof joined, "%s/%s", root->path, rel);
    if (n < 0 || (size_t)n >= sizeof joined)
        return -ENAMETOOLONG;
    if (!realpath(joined, real))
        return -errno;
    if (!below(root->path, real))
        return -EXDEV;
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, opened, sizeof opened - 1);
    if (len <= 0 || (size_t)len >= sizeof opened - 1) {
        close(fd);
        return -EXDEV;
    }
    opened[len] = '\0';
    if (!below(root->path, opened)) {
        close(fd);
        return -EXDEV;
    }
    return fd;
}

/* 0 = found and opened a regular file, TS_ENOTFOUND = nothing there, other = refused. */
static int try_candidate(const struct source_root *root, const char *rel, struct source_file *out,
                         struct ts_err *err)
{
    int fd = open_beneath(root->fd, rel);
    if (fd == -EXDEV)
        fd = open_absolute_link(root, rel);
    if (fd == -ENOENT || fd == -ENOTDIR || fd == -ENAMETOOLONG)
        return TS_ENOTFOUND;
    if (fd == -EXDEV || fd == -ELOOP)
        return ts_fail(err, TS_EFORBIDDEN, "identifier resolves outside the image root");
    if (fd == -EACCES || fd == -EPERM)
        return ts_fail(err, TS_EFORBIDDEN, "image is not readable");
    if (fd < 0)
        return ts_fail(err, TS_EIO, "cannot open image: %s", strerror(-fd));
    if (fstat(fd, &out->st) != 0 || !S_ISREG(out->st.st_mode)) {
        close(fd);
        return TS_ENOTFOUND;
    }
    bool top = !strcmp(root->path, "/");
    int n = snprintf(out->path, sizeof out->path, "%s/%s", top ? "" : root->path, rel);
    if (n < 0 || (size_t)n >= sizeof out->path) {
        close(fd);
        return ts_fail(err, TS_ETOOLONG, "identifier too long");
    }
    out->fd = fd;
    out->demo = false;
    return TS_OK;
}

static int open_demo(const struct source_root *root, struct source_file *out, struct ts_err *err)
{
    int fd = open(root->demo, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return ts_fail(err, TS_ENOTFOUND, "demo image %s is missing", root->demo);
    if (fstat(fd, &out->st) != 0 || !S_ISREG(out->st.st_mode)) {
        close(fd);
        return ts_fail(err, TS_ENOTFOUND, "demo image %s is not a file", root->demo);
    }
    if (snprintf(out->path, sizeof out->path, "%s", root->demo) >= (int)sizeof out->path) {
        close(fd);
        return ts_fail(err, TS_ETOOLONG, "demo image path too long");
    }
    out->fd = fd;
    out->demo = true;
    return TS_OK;
}

static int resolve_file(const struct source_root *root, const char *identifier,
                        struct source_file *out, struct ts_err *err)
{
    if (root->demo[0] && (!strcmp(identifier, "demo") || !strcmp(identifier, "demo.tif")))
        return open_demo(root, out, err);
    int rc = source_check_identifier(identifier, err);
    if (rc)
        return rc;
    char rel[PATH_MAX];
    int n = snprintf(rel, sizeof rel, "%s", identifier);
    if (n < 0 || (size_t)n >= sizeof rel)
        return ts_fail(err, TS_ETOOLONG, "identifier too long");
    rc = try_candidate(root, rel, out, err);
    if (rc != TS_ENOTFOUND)
        return rc;
    for (size_t i = 0; i < sizeof extensions / sizeof extensions[0]; i++) {
        n = snprintf(rel, sizeof rel, "%s%s", identifier, extensions[i]);
        if (n < 0 || (size_t)n >= sizeof rel)
            break;
        rc = try_candidate(root, rel, out, err);
        if (rc != TS_ENOTFOUND)
            return rc;
    }
    return ts_fail(err, TS_ENOTFOUND, "no image '%s'", identifier);
}

/* "name;N" -> page N-1 of "name", when the whole identifier named nothing. */
static int resolve_page(const struct source_root *root, const char *identifier,
                        struct source_file *out, struct ts_err *err)
{
    const char *semi = strrchr(identifier, ';');
    if (!semi || semi == identifier || !semi[1] || strlen(semi + 1) > 6 ||
        strspn(semi + 1, "0123456789") != strlen(semi + 1) || semi[1] == '0')
        return TS_ENOTFOUND;
    char base[PATH_MAX];
    size_t len = (size_t)(semi - identifier);
    if (len >= sizeof base)
        return TS_ENOTFOUND;
    memcpy(base, identifier, len);
    base[len] = '\0';
    int rc = resolve_file(root, base, out, err);
    if (rc == TS_OK)
        out->page = (uint32_t)strtoul(semi + 1, NULL, 10) - 1;
    return rc;
}

static int resolve_relative(const struct source_root *root, const char *identifier,
                            struct source_file *out, struct ts_err *err)
{
    out->fd = -1;
    out->page = 0;
    int rc = resolve_file(root, identifier, out, err);
    if (rc != TS_ENOTFOUND)
        return rc;
    struct ts_err page_err;
    if (resolve_page(root, identifier, out, &page_err) == TS_OK)
        return TS_OK;
    return rc;
}

/* iipsrv opens FILESYSTEM_PREFIX + identifier: with a prefix, "/a.tif" is a file below it;
 * without one (Debian's default), "/srv/img/a.tif" is that very file. Both readings are
 * served, each confined to the root; the first that names a file wins. */
int source_resolve(const struct source_root *root, const char *identifier, struct source_file *out,
                   struct ts_err *err)
{
    out->bytes = NULL;
    if (identifier[0] != '/')
        return resolve_relative(root, identifier, out, err);
    const char *inside = source_under_root(root, identifier);
    if (inside && *inside) {
        int rc = resolve_relative(root, inside, out, err);
        if (rc != TS_ENOTFOUND)
            return rc;
    }
    struct ts_err glued = {0};
    int rc = resolve_relative(root, identifier + strspn(identifier, "/"), out, &glued);
    if (rc != TS_ENOTFOUND) {
        if (rc != TS_OK)
            *err = glued;
        return rc;
    }
    if (root->top_fd >= 0) {
        struct source_root top;
        top_root(root, &top);
        return resolve_relative(&top, identifier + strspn(identifier, "/"), out, err);
    }
    /* Read as a full path it lies outside the root (or names nothing in it), and glued to the
     * root it names nothing. One answer for both, so the status never tells a prober where the
     * root is, and nothing outside it is looked at. */
    return ts_fail(err, TS_EFORBIDDEN,
                   "'%s' names no image below the image root (absolute paths outside it are "
                   "refused)",
                   identifier);
}

int source_reopen(const struct source_root *root, struct source_file *src, struct ts_err *err)
{
    if (src->fd >= 0)
        return TS_OK;
    int fd;
    if (src->demo) {
        fd = open(src->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    } else {
        struct source_root top;
        const struct source_root *base = root;
        const char *rel = path_below(root->path, src->path);
        for (unsigned i = 0; !rel && i < root->nextra; i++) {
            if (root->extra[i].fd >= 0 && (rel = path_below(root->extra[i].path, src->path)))
                base = &root->extra[i];
        }
        if (!rel) {
            /* found through allow_anywhere: opened from / again, as it was then */
            if (root->top_fd < 0 || src->path[0] != '/')
                return ts_fail(err, TS_EFORBIDDEN, "image is not below the root");
            top_root(root, &top);
            base = &top;
            rel = src->path + 1;
        }
        fd = open_beneath(base->fd, rel);
        if (fd == -EXDEV)
            fd = open_absolute_link(base, rel);
    }
    /* A rename over the path since it was resolved gives the new file: the request is served
     * from it, whole, and src->st tells the caller which file that is. */
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        return ts_fail(err, TS_ENOTFOUND, "image vanished while being served");
    }
    src->fd = fd;
    src->st = st;
    return TS_OK;
}

/* ---- image sequences ---- */

int source_sequence_frame(const char *base, const char *pattern, int32_t h, int32_t v, char *out,
                          size_t size, struct ts_err *err)
{
    int n = snprintf(out, size, "%s%s%03d_%03d", base, pattern, (int)h, (int)v);
    if (n < 0 || (size_t)n >= size)
        return ts_fail(err, TS_ETOOLONG, "sequence file name too long");
    return TS_OK;
}

/* Adds a to the sorted, distinct list; false when it is full. */
static bool views_add(int32_t *list, uint32_t *n, int32_t a)
{
    uint32_t i = 0;
    while (i < *n && list[i] < a)
        i++;
    if (i < *n && list[i] == a)
        return true;
    if (*n >= SOURCE_MAX_VIEWS)
        return false;
    memmove(list + i + 1, list + i, sizeof *list * (*n - i));
    list[i] = a;
    (*n)++;
    return true;
}

/* "{h}_{v}.{image extension}" (digits each, as iipsrv's %03d writes them, a sign allowed). */
static bool parse_view(const char *s, int32_t *h, int32_t *v)
{
    char *end;
    if (!(*s == '-' || (*s >= '0' && *s <= '9')))
        return false;
    long a = strtol(s, &end, 10);
    if (*end != '_' || !(end[1] == '-' || (end[1] >= '0' && end[1] <= '9')))
        return false;
    long b = strtol(end + 1, &end, 10);
    if (*end != '.' || strchr(end + 1, '.') || !source_has_image_extension(end) || a < -99999 ||
        a > 99999 || b < -99999 || b > 99999)
        return false;
    *h = (int32_t)a;
    *v = (int32_t)b;
    return true;
}

int source_sequence_views(const struct source_root *root, const char *base, const char *pattern,
                          struct source_views *out, struct ts_err *err)
{
    memset(out, 0, sizeof *out);
    base += strspn(base, "/"); /* read below the root, as iipsrv glues the name to it */
    int rc = source_check_identifier(base, err);
    if (rc)
        return rc;
    const char *slash = strrchr(base, '/');
    char dir[PATH_MAX], prefix[PATH_MAX];
    int n = slash ? snprintf(dir, sizeof dir, "%.*s", (int)(slash - base), base)
                  : snprintf(dir, sizeof dir, ".");
    int m = snprintf(prefix, sizeof prefix, "%s%s", slash ? slash + 1 : base, pattern);
    if (n < 0 || (size_t)n >= sizeof dir || m < 0 || (size_t)m >= sizeof prefix)
        return ts_fail(err, TS_ETOOLONG, "sequence name too long");
    int fd = slash ? open_beneath(root->fd, dir) : openat(root->fd, ".", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ts_fail(err, TS_ENOTFOUND, "no folder for sequence '%s'", base);
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return ts_fail(err, TS_ENOTFOUND, "no folder for sequence '%s'", base);
    }
    bool full = false;
    for (struct dirent *e; !full && (e = readdir(d)) != NULL;) {
        int32_t h, v;
        if (strncmp(e->d_name, prefix, (size_t)m) || !parse_view(e->d_name + m, &h, &v))
            continue;
        if (v == 90)
            full = !views_add(out->h, &out->nh, h);
        if (h == 0 && !full)
            full = !views_add(out->v, &out->nv, v);
    }
    closedir(d);
    if (full)
        return ts_fail(err, TS_ETOOLARGE, "sequence '%s' has over %d views", base,
                       SOURCE_MAX_VIEWS);
    return TS_OK;
}

/* ---- files that go with an image ---- */

int source_companion_path(const struct source_root *root, const struct source_file *src,
                          const char *name, bool beside, char *out, size_t size, struct ts_err *err)
{
    const char *rel = src->demo ? NULL : path_below(root->path, src->path);
    if (!rel)
        return TS_DECLINED;
    const char *slash = strrchr(rel, '/');
    int n = beside ? snprintf(out, size, "%s%s", rel, name)
                   : snprintf(out, size, "%.*s%s%s", slash ? (int)(slash - rel) : 0, rel,
                              slash ? "/" : "", name);
    if (n < 0 || (size_t)n >= size)
        return ts_fail(err, TS_ETOOLONG, "path too long");
    return TS_OK;
}

int source_read_small(const struct source_root *root, const char *rel, size_t max,
                      struct ts_buf *out, struct ts_err *err)
{
    int fd = open_beneath(root->fd, rel);
    if (fd == -EXDEV)
        fd = open_absolute_link(root, rel);
    if (fd == -ENOENT || fd == -ENOTDIR || fd == -ENAMETOOLONG)
        return TS_ENOTFOUND;
    if (fd == -EXDEV || fd == -ELOOP)
        return ts_fail(err, TS_EFORBIDDEN, "'%s' leads outside the image root", rel);
    if (fd < 0)
        return ts_fail(err, TS_EIO, "cannot open '%s': %s", rel, strerror(-fd));
    struct stat st;
    int rc = TS_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        rc = TS_ENOTFOUND;
    else if ((uint64_t)st.st_size > max)
        rc = ts_fail(err, TS_ETOOLARGE, "'%s' is over %zu bytes", rel, max);
    size_t want = rc ? 0 : (size_t)st.st_size, got = 0;
    if (rc == TS_OK && ts_buf_reserve(out, want) != TS_OK)
        rc = ts_fail(err, TS_ENOMEM, "out of memory reading '%s'", rel);
    while (rc == TS_OK && got < want) {
        ssize_t n = pread(fd, out->data + out->len + got, want - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = ts_fail(err, TS_EIO, "cannot read '%s'", rel);
        else
            got += (size_t)n;
    }
    if (rc == TS_OK)
        out->len += got;
    close(fd);
    return rc;
}
