/* The pipeline, written once: resolve, validators, 304, cache, admission, lease, render,
 * encode, store, headers, and the one place a status becomes an error response. */
#include "core/serve.h"
#include "cache/lru.h"
#include "cache/memcache.h"
#include "core/access.h"
#include "core/pool.h"
#include "image/bytes.h"
#include "image/remote.h"
#include "render/passthrough.h"
#include "render/render.h"
#include "render/watermark.h"
#include "util/cpus.h"
#include "util/gzip.h"
#include "util/hash.h"
#include "util/httpdate.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STATIC_FILE_MAX (64u << 20)

/* ---- resolution ---- */

/* What a full resolution proved: this identifier named this file, below the root. */
struct resolved {
    dev_t dev;
    ino_t ino;
    uint32_t page;
    bool demo;
    char path[]; /* NUL-terminated: only its own length is stored and copied */
};

/* A version a source gave, and when (CLOCK_MONOTONIC seconds). */
struct remote_seen {
    int64_t at;
    struct ts_remote_object obj;
};

static int64_t monotonic_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec;
}

static int remote_key(const struct ts_source_rule *rule, const char *rest, struct ts_buf *key)
{
    ts_buf_init_capped(key, TS_JOB_KEY_MAX + 512);
    int rc = ts_buf_appendf(key, "remote\n%s\n%s", rule->target, rest);
    return rc ? rc : (ts_buf_str(key) ? TS_OK : TS_ENOMEM);
}

/* The object's version: the one seen less than --remote-recheck seconds ago (a viewer's burst of
 * tiles asks the source once), else a HEAD. */
static int remote_version(struct ts_app *app, const struct ts_source_rule *rule, const char *rest,
                          struct ts_remote_object *obj, struct ts_bytes **out, struct ts_err *err)
{
    struct ts_buf key, held = {0};
    unsigned ttl = app->cfg.remote_recheck;
    bool keyed = remote_key(rule, rest, &key) == TS_OK;
    int64_t now = monotonic_seconds();
    int rc = TS_DECLINED;
    if (ttl && keyed && ts_lru_get(app->resolved, (const char *)key.data, &held) &&
        held.len == sizeof(struct remote_seen)) {
        const struct remote_seen *seen = (const struct remote_seen *)held.data;
        if (now - seen->at < (int64_t)ttl) {
            *obj = seen->obj;
            rc = ts_remote_attach(app->remote, obj, out, err);
        }
    }
    if (rc == TS_DECLINED) {
        rc = ts_remote_open(app->remote, rule->target, rest, obj, out, err);
        struct remote_seen seen = {now, *obj};
        if (rc == TS_OK && ttl && keyed)
            ts_lru_put(app->resolved, (const char *)key.data, &seen, sizeof seen);
    }
    ts_buf_free(&held);
    ts_buf_free(&key);
    return rc;
}

static const struct ts_source_rule *remote_rule(const struct ts_app *app, const char *identifier,
                                                const char **rest);

/* Reading a version failed (changed under us, gone, cut short): the next request asks again. */
static void remote_forget(struct ts_app *app, struct ts_job *job)
{
    const char *rest, *id = ts_buf_str(&job->identifier);
    const struct ts_source_rule *rule = id ? remote_rule(app, id, &rest) : NULL;
    struct ts_buf key = {0};
    if (rule && remote_key(rule, rest, &key) == TS_OK)
        ts_lru_remove(app->resolved, (const char *)key.data);
    ts_buf_free(&key);
}

/* An identifier under a --source rule: the object's version, and a stat made up from it that
 * every cache keys by. */
static int resolve_remote(struct ts_app *app, const struct ts_source_rule *rule, const char *rest,
                          struct source_file *src, struct ts_err *err)
{
    src->fd = -1;
    src->bytes = NULL;
    src->page = 0;
    src->demo = false;
    memset(&src->st, 0, sizeof src->st);
    int rc = source_check_identifier(rest, err);
    if (rc)
        return rc;
    if (!app->remote)
        return ts_fail(err, TS_EUPSTREAM, "remote sources are not set up");
    struct ts_remote_object obj;
    rc = remote_version(app, rule, rest, &obj, &src->bytes, err);
    /* The address stands for the path: a reason naming it is shown with the identifier. */
    snprintf(src->path, sizeof src->path, "%s", obj.url);
    if (rc)
        return rc;
    uint64_t place = ts_hash(TS_HASH_SEED, obj.url, strlen(obj.url));
    uint64_t version = ts_hash(TS_HASH_SEED, obj.etag, strlen(obj.etag));
    src->st.st_dev = SOURCE_REMOTE_DEV;
    src->st.st_ino = (ino_t)ts_hash(place, obj.etag, strlen(obj.etag));
    src->st.st_size = (off_t)obj.size;
    src->st.st_mode = S_IFREG | 0444;
    src->st.st_mtim.tv_sec = obj.last_modified;
    /* Last-Modified has whole seconds: the ETag's hash in the nanoseconds keeps two versions of
     * one second apart wherever only mtime and size name a version (memcached's keys). */
    src->st.st_mtim.tv_nsec = (long)(version % 1000000000u);
    src->st.st_ctim.tv_sec = (time_t)(version >> 2);
    src->st.st_ctim.tv_nsec = (long)(version % 1000000000u);
    return TS_OK;
}

/* The --source rule for identifier when it names a remote place (NULL for the root and for
 * rules naming a local folder: see local_root). */
static const struct ts_source_rule *remote_rule(const struct ts_app *app, const char *identifier,
                                                const char **rest)
{
    const struct ts_source_rule *r =
        source_rule_match(app->cfg.source_rules, app->cfg.nsource_rules, identifier, rest);
    return r && r->target[0] != '/' ? r : NULL;
}

/* The folder an identifier is read below, and in *name what names the file there: a
 * --source rule's local folder and the rest of the identifier, else the image root and the
 * whole identifier. */
static const struct source_root *local_root(const struct ts_app *app, const char *identifier,
                                            const char **name)
{
    const char *rest;
    const struct ts_source_rule *r =
        source_rule_match(app->cfg.source_rules, app->cfg.nsource_rules, identifier, &rest);
    if (r && r->target[0] == '/') {
        *name = rest;
        return &app->local_roots[r - app->cfg.source_rules];
    }
    *name = identifier;
    return &app->root;
}

/* Resolving opens every path component beneath the root; a viewer's burst of tiles asks for
 * one identifier again and again. One stat of the remembered path is enough when it is still
 * the same file (device and inode): that file was proven to be below the root, and the stat
 * gives the fresh size and mtime that keep every cache honest. The file is then opened only
 * if a reader is needed and none is idle in the pool. */
static int resolve(struct ts_app *app, const char *identifier, struct source_file *src,
                   struct ts_err *err)
{
    const char *rest;
    const struct ts_source_rule *rule = remote_rule(app, identifier, &rest);
    if (rule)
        return resolve_remote(app, rule, rest, src, err);
    struct ts_buf b = {0};
    if (ts_lru_get(app->resolved, identifier, &b) && b.len > sizeof(struct resolved) &&
        b.len - sizeof(struct resolved) <= sizeof src->path && b.data[b.len - 1] == '\0') {
        const struct resolved *r = (const struct resolved *)b.data;
        struct stat st;
        if (stat(r->path, &st) == 0 && S_ISREG(st.st_mode) && st.st_dev == r->dev &&
            st.st_ino == r->ino) {
            memcpy(src->path, r->path, b.len - sizeof(struct resolved));
            src->st = st;
            src->page = r->page;
            src->demo = r->demo;
            src->fd = -1;
            src->bytes = NULL;
            ts_buf_free(&b);
            return TS_OK;
        }
    }
    ts_buf_free(&b);
    const char *name;
    const struct source_root *base = local_root(app, identifier, &name);
    int rc = source_resolve(base, name, src, err);
    if (rc == TS_OK) {
        size_t n = strlen(src->path) + 1;
        struct resolved *r = calloc(1, sizeof *r + n);
        if (r) {
            *r = (struct resolved){src->st.st_dev, src->st.st_ino, src->page, src->demo};
            memcpy(r->path, src->path, n);
            ts_lru_put(app->resolved, identifier, r, sizeof *r + n);
            free(r);
        }
    }
    return rc;
}

/* The identifier named no file: view (seq_h, seq_v) of the image sequence it names, if there
 * is one, with its list of views when produce() wants them. Keeps the first error otherwise. */
static int resolve_sequence(struct ts_app *app, struct ts_job *job, const char *id,
                            struct ts_err *err)
{
    char frame[PATH_MAX];
    struct ts_err own = {0};
    int rc = source_sequence_frame(id, app->cfg.filename_pattern, job->seq_h, job->seq_v, frame,
                                   sizeof frame, &own);
    rc = rc ? rc : resolve(app, frame, &job->src, &own);
    if (rc == TS_OK && job->wants_views)
        rc = source_sequence_views(&app->root, id, app->cfg.filename_pattern, &job->views, &own);
    if (rc == TS_ENOTFOUND)
        return TS_ENOTFOUND; /* neither a file nor a view: the first reason stands */
    if (rc)
        *err = own;
    job->in_sequence = rc == TS_OK;
    return rc;
}

/* A file's identity as text: a rewrite changes mtime, size or inode, and so every key. An
 * in-place rewrite that restores size and mtime (rsync --inplace, touch -r) still changes
 * ctime, which nobody can set back. */
static int identity(const struct source_file *src, struct ts_buf *out)
{
    return ts_buf_appendf(out, "%lld.%09ld:%lld.%09ld:%lld:%llu:%llu:%u",
                          (long long)src->st.st_mtim.tv_sec, (long)src->st.st_mtim.tv_nsec,
                          (long long)src->st.st_ctim.tv_sec, (long)src->st.st_ctim.tv_nsec,
                          (long long)src->st.st_size, (unsigned long long)src->st.st_dev,
                          (unsigned long long)src->st.st_ino, src->page);
}

/* ---- files that go with the image ---- */

/* Reads the job's companion files and writes what each holds into the job's key, before the
 * validators and cache keys are made from it: an edited sidecar changes the ETag and misses
 * the caches. A missing file is a fact like any other; one that is there but cannot be read
 * is left out, with the reason kept for produce() to report. */
static int read_companions(const struct ts_app *app, struct ts_job *job)
{
    for (int i = 0; i < TS_JOB_COMPANIONS; i++) {
        struct ts_companion *c = &job->companions[i];
        if (!c->name)
            continue;
        struct ts_err err = {0};
        ts_buf_free(&c->text);
        c->found = false;
        c->problem[0] = '\0';
        int rc = source_companion_path(&app->root, &job->src, c->name, c->beside, c->rel,
                                       sizeof c->rel, &err);
        if (rc == TS_DECLINED)
            continue;
        if (rc == TS_OK)
            rc = source_read_small(&app->root, c->rel, TS_COMPANION_MAX, &c->text, &err);
        c->found = rc == TS_OK;
        if (rc != TS_OK && rc != TS_ENOTFOUND)
            snprintf(c->problem, sizeof c->problem, "%s",
                     err.msg[0] ? err.msg : ts_status_name(rc));
        uint64_t h = c->found ? ts_hash(TS_HASH_SEED, c->text.data, c->text.len) : 0;
        rc = ts_buf_appendf(&job->key, "\n%s %c%016" PRIx64, c->name,
                            c->found        ? '='
                            : c->problem[0] ? '!'
                                            : '-',
                            h);
        if (rc)
            return rc;
    }
    return TS_OK;
}

/* ---- validators ---- */

/* Every setting that shapes the bytes of an answer, chained onto h: servers sharing a cache
 * (or a client's validator across a restart) must not mix answers made under others. */
static uint64_t settings_hash(const struct ts_app *app, const struct ts_live *live, uint64_t h)
{
    const struct ts_limits *lim = &live->limits;
    const struct encode_options *enc = &live->enc;
    int64_t knobs[12] = {enc->jpeg_quality,     enc->webp_quality, enc->png_level,
                         lim->max_width,        lim->max_height,   (int64_t)lim->max_area,
                         app->cfg.default_tile, lim->formats,      enc->tiff_compression,
                         enc->tiff_level,       lim->no_upscaling, lim->iiif_extensions};
    h = ts_hash(h, knobs, sizeof knobs);
    /* The parsed rule, not its text: "" means a different rule from one release to the next
     * (always, then quality), and a client's old validator must not match the new bytes. */
    int64_t rule[3] = {(int64_t)live->passthrough.mode, (int64_t)live->passthrough.max_bytes,
                       (int64_t)live->passthrough.out_quality};
    h = ts_hash(h, "passthrough", 11);
    h = ts_hash(h, rule, sizeof rule);
    /* info.json carries these, so a changed statement must change its validator. */
    h = ts_hash(h, app->cfg.copyright, strlen(app->cfg.copyright));
    h = ts_hash(h, app->cfg.iiif_extra_info, strlen(app->cfg.iiif_extra_info));
    /* Another mark, opacity or probability makes other pixels (and memcached keys use this). */
    if (render_watermark_active(&app->watermark))
        h = ts_hash(h, &app->watermark.fingerprint, sizeof app->watermark.fingerprint);
    return h;
}

/* A strong validator from the file, the output settings and the job's key (all of it). */
static void make_etag(const struct ts_app *app, const struct ts_live *live,
                      const struct source_file *src, const char *key, size_t key_len, char out[24])
{
    uint64_t h = TS_HASH_SEED;
    int64_t stamp[7] = {(int64_t)src->st.st_mtim.tv_sec, (int64_t)src->st.st_mtim.tv_nsec,
                        (int64_t)src->st.st_ctim.tv_sec, (int64_t)src->st.st_ctim.tv_nsec,
                        (int64_t)src->st.st_size,        (int64_t)src->st.st_ino,
                        (int64_t)src->st.st_dev};
    h = ts_hash(h, stamp, sizeof stamp);
    h = settings_hash(app, live, h);
    h = ts_hash(h, &src->page, sizeof src->page);
    h = ts_hash(h, key, key_len);
    snprintf(out, 24, "\"%016" PRIx64 "\"", h);
}

/* The job's validator: the gzip-coded answer is another representation, with its own
 * (strong) ETag, so a cache never answers one client's revalidation with the other's bytes. */
static void job_etag(const struct ts_app *app, struct ts_job *job)
{
    make_etag(app, ts_job_live(app, job), &job->src, (const char *)job->key.data, job->key.len,
              job->etag);
    size_t n = strlen(job->etag);
    if (job->gzip && n >= 2 && n + 3 < sizeof job->etag)
        memcpy(job->etag + n - 1, "-gz\"", 5);
}

static void add_validators(const struct ts_app *app, const struct ts_job *job,
                           struct ts_response *res, const char *etag, time_t mtime)
{
    char date[64];
    ts_http_date(mtime, date, sizeof date);
    ts_response_add_header(res, "ETag", "%s", etag);
    ts_response_add_header(res, "Last-Modified", "%s", date);
    /* What one user's credentials earned is for that user's browser only: no shared cache
     * keeps it, whatever the configured Cache-Control says. */
    if (ts_access_private(job) && job->freshness == TS_FRESH_PUBLIC) {
        ts_response_add_header(res, "Cache-Control", "private, max-age=%u", app->cfg.cache_max_age);
        return;
    }
    /* iipsrv sends CACHE_CONTROL on every answer that is not an error; --cache-control (or
     * that variable) replaces the whole value. */
    const struct ts_live *live = ts_job_live(app, job);
    if (job->freshness == TS_FRESH_PUBLIC && live->cache_control[0])
        ts_response_add_header(res, "Cache-Control", "%s", live->cache_control);
    else if (job->freshness == TS_FRESH_PUBLIC)
        ts_response_add_header(res, "Cache-Control", "public, max-age=%u", live->cache_max_age);
    else
        ts_response_add_header(res, "Cache-Control", "no-cache");
}

static bool not_modified(const struct ts_request *req, const char *etag, time_t mtime)
{
    return ts_not_modified(ts_request_header(req, "If-None-Match"),
                           ts_request_header(req, "If-Modified-Since"), etag, mtime);
}

/* ---- the response cache ---- */

/* Stored as: body, content type NUL, header count byte, (name NUL value NUL)*, then the
 * body's length (size_t). The body comes first so that a hit lends it as it is. */
static int cache_key(const struct ts_app *app, struct ts_job *job)
{
    struct ts_buf *out = &job->cache_key;
    ts_buf_free(out); /* made again when a rename gave the request another file */
    ts_buf_init_capped(out, TS_JOB_KEY_MAX + 128);
    int rc = identity(&job->src, out);
    /* The settings too: after a reload that changes them, answers made under the old ones
     * are no longer found (and age out). */
    rc = rc ? rc
            : ts_buf_appendf(out, "\n%016" PRIx64 "\n",
                             settings_hash(app, ts_job_live(app, job), TS_HASH_SEED));
    rc = rc ? rc : ts_buf_append(out, job->key.data, job->key.len);
    return rc ? rc : (ts_buf_str(out) ? TS_OK : TS_ENOMEM);
}

/* Parses a stored answer into res (type and headers); returns the body's length, or false. */
static bool cache_parse(const uint8_t *data, size_t len, struct ts_response *res, size_t *body_len)
{
    if (len < sizeof *body_len + 2)
        return false;
    memcpy(body_len, data + len - sizeof *body_len, sizeof *body_len);
    if (*body_len > len - sizeof *body_len - 2)
        return false;
    const char *p = (const char *)data + *body_len,
               *end = (const char *)data + len - sizeof *body_len;
    const char *type = p;
    p += strnlen(p, (size_t)(end - p)) + 1;
    unsigned nh = p < end ? (unsigned char)*p++ : 0;
    for (unsigned i = 0; i < nh && p < end; i++) {
        const char *name = p;
        p += strnlen(p, (size_t)(end - p)) + 1;
        const char *value = p;
        p += strnlen(p, (size_t)(end - p)) + 1;
        if (p > end)
            return false;
        ts_response_add_header(res, name, "%s", value);
    }
    ts_response_set_type(res, type);
    res->status = 200;
    return true;
}

static bool cache_lookup(struct ts_app *app, struct ts_job *job, struct ts_response *res)
{
    if (cache_key(app, job) != TS_OK)
        return false;
    const uint8_t *data;
    size_t len, body_len;
    struct ts_lru_ref *ref =
        ts_lru_acquire(app->responses, (const char *)job->cache_key.data, &data, &len);
    bool hit = false;
    if (ref) {
        hit = cache_parse(data, len, res, &body_len);
        if (hit)
            ts_response_share(res, ref, data, body_len); /* a reference, not a copy */
        else
            ts_lru_release(ref);
    }
    return hit;
}

static void cache_store(struct ts_app *app, const struct ts_job *job, const struct ts_response *res)
{
    if (res->status != 200 || res->nheaders > 255 || !job->cache_key.len)
        return;
    struct ts_buf b = {0};
    int rc = TS_OK;
    size_t body_len;
    const uint8_t *body = ts_response_body(res, &body_len);
    rc = rc ? rc : ts_buf_append(&b, body, body_len);
    rc = rc ? rc : ts_buf_append(&b, res->content_type, strlen(res->content_type) + 1);
    unsigned char nh = (unsigned char)res->nheaders;
    rc = rc ? rc : ts_buf_append(&b, &nh, 1);
    for (int i = 0; i < res->nheaders && !rc; i++) {
        rc = ts_buf_append(&b, res->headers[i].name, strlen(res->headers[i].name) + 1);
        rc = rc ? rc : ts_buf_append(&b, res->headers[i].value, strlen(res->headers[i].value) + 1);
    }
    rc = rc ? rc : ts_buf_append(&b, &body_len, sizeof body_len);
    if (rc == TS_OK)
        ts_lru_put_owned(app->responses, (const char *)job->cache_key.data, b.data, b.len);
    else
        ts_buf_free(&b);
}

/* ---- the shared cache (memcached) ---- */

/* What every server of a fleet calls the file: its place below the root (the demo's: "demo:"
 * and its path). Device and inode numbers differ between machines mounting one share. */
static int shared_name(const struct ts_app *app, const struct source_file *src, struct ts_buf *out)
{
    char buf[PATH_MAX + 512];
    const char *place = ts_app_place(app, src, buf, sizeof buf);
    return ts_buf_appendf(out, "%s%s", src->demo ? "demo:" : "", place);
}

/* What names an answer across servers. Not the local key: ctime differs between replicas
 * copied with rsync or cp -p. What they agree on is the file's place, its mtime (to the
 * nanosecond) and its size; a replaced file changes at least one of them, and a purge the
 * image's generation (ts_memcache_bump) for whatever changes none. The settings hash keeps
 * servers configured differently (quality, limits, passthrough rule) from trading answers. */
static int shared_key(const struct ts_app *app, const struct ts_job *job, struct ts_buf *out)
{
    const struct source_file *src = &job->src;
    ts_buf_init_capped(out, TS_JOB_KEY_MAX + PATH_MAX + 160);
    int rc = shared_name(app, src, out);
    rc = rc ? rc
            : ts_buf_appendf(out, "\n%lld.%09ld:%lld:%u:%016" PRIx64 ":%016" PRIx64 "\n",
                             (long long)src->st.st_mtim.tv_sec, (long)src->st.st_mtim.tv_nsec,
                             (long long)src->st.st_size, src->page,
                             settings_hash(app, ts_job_live(app, job), TS_HASH_SEED),
                             job->shared_gen);
    return rc ? rc : ts_buf_append(out, job->key.data, job->key.len);
}

/* The file's generation in memcached, read once per job: the store after a render uses the
 * one its lookup saw, so a purge in between leaves what the render made unreachable. */
static bool shared_generation(struct ts_app *app, struct ts_job *job)
{
    if (job->shared_gen_known)
        return true;
    struct ts_buf name;
    ts_buf_init_capped(&name, PATH_MAX + 16);
    job->shared_gen_known =
        shared_name(app, &job->src, &name) == TS_OK &&
        ts_memcache_generation(app->memcache, (const char *)name.data, name.len, &job->shared_gen);
    ts_buf_free(&name);
    return job->shared_gen_known;
}

/* On a hit the answer is also kept in the local cache, so the next one costs no network. */
static bool shared_lookup(struct ts_app *app, struct ts_job *job, struct ts_response *res)
{
    struct ts_buf key = {0}, held = {0};
    struct ts_mc_entry e;
    bool hit = shared_generation(app, job) && shared_key(app, job, &key) == TS_OK &&
               ts_memcache_get(app->memcache, (const char *)key.data, key.len, &held, &e) &&
               e.status == 200;
    if (hit) {
        res->status = e.status;
        ts_response_set_type(res, e.type);
        for (unsigned i = 0; i < e.nheaders; i++)
            ts_response_add_header(res, e.headers[i].name, "%s", e.headers[i].value);
        ts_buf_free(&res->body);
        hit = ts_buf_append(&res->body, e.body, e.body_len) == TS_OK;
    }
    ts_buf_free(&held);
    ts_buf_free(&key);
    return hit;
}

static void shared_store(struct ts_app *app, const struct ts_job *job,
                         const struct ts_response *res)
{
    if (res->status != 200 || res->nheaders > TS_MC_HEADERS || !job->shared_gen_known)
        return;
    struct ts_mc_entry e = {
        .status = res->status, .type = res->content_type, .nheaders = (unsigned)res->nheaders};
    for (int i = 0; i < res->nheaders; i++) {
        e.headers[i].name = res->headers[i].name;
        e.headers[i].value = res->headers[i].value;
    }
    e.body = ts_response_body(res, &e.body_len);
    struct ts_buf key; /* answers over memcached's item limit are skipped (and counted) there */
    if (shared_key(app, job, &key) == TS_OK)
        ts_memcache_set(app->memcache, (const char *)key.data, key.len, &e);
    ts_buf_free(&key);
}

/* ---- image information and readers ---- */

static int info_key(const struct source_file *src, struct ts_buf *key)
{
    ts_buf_init_capped(key, 256);
    int rc = identity(src, key);
    return rc ? rc : (ts_buf_str(key) ? TS_OK : TS_ENOMEM);
}

/* Stored as the struct, then its text tags, then the reader's reopen state (see struct
 * ts_reopen): the struct's own meta pointer is not kept (it points into whoever filled it) and
 * is set again to the copy that held holds, as *again is pointed at the state there. */
static bool info_lookup(struct ts_app *app, const struct source_file *src,
                        struct ts_image_info *info, struct ts_reopen *again, struct ts_buf *held)
{
    struct ts_buf key;
    bool hit = info_key(src, &key) == TS_OK &&
               ts_lru_get(app->infos, (const char *)key.data, held) && held->len >= sizeof *info;
    if (hit) {
        memcpy(info, held->data, sizeof *info);
        hit = info->meta_len <= held->len - sizeof *info;
        info->meta = info->meta_len ? (const char *)held->data + sizeof *info : NULL;
        again->data = held->data + sizeof *info + info->meta_len;
        again->len = hit ? held->len - sizeof *info - info->meta_len : 0;
    }
    ts_buf_free(&key);
    return hit;
}

static void info_store(struct ts_app *app, const struct source_file *src, struct ts_reader *reader)
{
    const struct ts_image_info *info = &reader->info;
    struct ts_buf key, value = {0};
    if (info_key(src, &key) == TS_OK && ts_buf_append(&value, info, sizeof *info) == TS_OK &&
        ts_buf_append(&value, info->meta ? info->meta : "", info->meta_len) == TS_OK) {
        size_t plain = value.len;
        if (ts_reader_reopen_state(reader, &value) != TS_OK)
            value.len = plain; /* without it, a reopen walks the file as a first open does */
        ts_lru_put(app->infos, (const char *)key.data, value.data, value.len);
    }
    ts_buf_free(&value);
    ts_buf_free(&key);
}

/* A reader can only say that reading failed; when it read a remote object that failed, the
 * object's own verdict (404, 502, 504 and why) is the answer. */
static void remote_verdict(const struct ts_lease *l, const struct source_file *src, int *rc,
                           struct ts_err *err)
{
    int status;
    struct ts_err why;
    if (ts_bytes_take_error(ts_reader_bytes(l->reader), &status, &why) ||
        ts_bytes_take_error(src->bytes, &status, &why)) {
        *rc = status;
        *err = why;
    }
}

/* Borrows the pool's idle reader for this file, or opens one from a copy of the request's
 * descriptor: the request keeps its own, so whatever lane finishes it reads the same file. */
static int lease(struct ts_app *app, const struct source_file *src, const struct ts_reopen *again,
                 struct ts_lease *l, struct ts_err *err)
{
    const struct ts_block_store *blocks = app->jp2_blocks ? &app->jp2_store : NULL;
    struct source_file probe = *src;
    probe.fd = -1;
    probe.bytes = NULL;
    int rc = ts_lease_begin(app->readers, &probe, blocks, NULL, l, err);
    if (rc != TS_DECLINED)
        return rc;
    if (src->bytes) {
        probe.bytes = ts_bytes_ref(src->bytes);
        rc = ts_lease_begin(app->readers, &probe, blocks, again, l, err);
        source_close(&probe);
        if (rc)
            remote_verdict(l, src, &rc, err);
        return rc;
    }
    probe.fd = fcntl(src->fd, F_DUPFD_CLOEXEC, 0);
    if (probe.fd < 0)
        return ts_fail(err, TS_EBUSY, "out of file descriptors");
    return ts_lease_begin(app->readers, &probe, blocks, again, l, err);
}

/* ---- render and encode ---- */

/* The whole image's histogram, which IIP's CNT=eq and CNT=st map every tile through: from a
 * small render of the image (as iipsrv takes it from its smallest resolution), kept with the
 * image information so the tiles of one image share one mapping and the render is done once.
 * TS_DEFERRED, having done nothing, when that render is heavy and the job must wait. */
static int fill_histogram(struct ts_app *app, struct ts_reader *reader, struct ts_job *job,
                          struct ts_adjust *a, struct ts_err *err)
{
    if (!(a->stretch || a->equalize) || a->have_hist)
        return TS_OK;
    struct ts_buf key, held = {0};
    int rc = info_key(&job->src, &key);
    rc = rc ? rc : ts_buf_append_str(&key, "\nhistogram");
    bool keyed = rc == TS_OK && ts_buf_str(&key);
    if (keyed && ts_lru_get(app->infos, (const char *)key.data, &held) &&
        held.len == sizeof a->hist) {
        memcpy(a->hist, held.data, sizeof a->hist);
        a->have_hist = true;
    } else {
        struct ts_plan plan;
        render_histogram_plan(reader->info.width, reader->info.height, &plan);
        size_t bytes = render_peak_bytes(reader, &plan);
        bool heavy = false;
        rc = job->defer_heavy && admission_is_heavy(&app->admission, bytes)
                 ? TS_DEFERRED
                 : admission_enter(&app->admission, bytes, &heavy, err);
        struct ts_image img = {0};
        if (rc == TS_OK) {
            rc = render_execute(reader, &plan, &job->cancel, &img, err);
            admission_leave(&app->admission, bytes, heavy);
        }
        if (rc == TS_OK) {
            render_histogram(&img, a->hist);
            a->have_hist = true;
            if (keyed)
                ts_lru_put(app->infos, (const char *)key.data, a->hist, sizeof a->hist);
        }
        ts_image_free(&img);
    }
    ts_buf_free(&held);
    ts_buf_free(&key);
    return rc;
}

/* TS_DEFERRED, having done nothing, when the render is heavy and the job must wait for the
 * slow lane: the fast lane's workers never hold a big render. */
static int render(struct ts_app *app, struct ts_reader *reader, struct ts_job *job,
                  struct ts_response *res, struct ts_err *err)
{
    const struct ts_product *out = &job->out;
    struct ts_plan marked = out->plan;
    const struct ts_plan *plan = &marked;
    /* The watermark belongs to the server, not to a protocol's plan; its draws follow the
     * request's geometry, so the answer is the same every time (and its ETag stays true). */
    marked.watermark = render_watermark_active(&app->watermark) && ts_access_marks(app->access, job)
                           ? &app->watermark
                           : NULL;
    marked.watermark_seed = marked.watermark
                                ? render_watermark_seed(job->identifier.data, job->identifier.len,
                                                        job->src.page, &marked)
                                : 0;
    /* A request for exactly one stored JPEG tile is answered with its bytes: no decode, no
     * encode, and no admission either, since it needs no more memory than the tile. Not when
     * the client chose the encoder's settings: the stored bytes do not follow them. */
    if (!out->own_encoder) {
        int rc = passthrough_try(reader, plan, &job->live->passthrough, &res->body, err);
        if (rc != TS_DECLINED)
            return rc;
    }
    size_t bytes = render_peak_bytes(reader, plan);
    if (job->defer_heavy && admission_is_heavy(&app->admission, bytes))
        return TS_DEFERRED;
    int rc = fill_histogram(app, reader, job, &marked.adjust, err);
    if (rc)
        return rc;
    bool heavy;
    rc = admission_enter(&app->admission, bytes, &heavy, err);
    if (rc)
        return rc;
    struct ts_image img = {0};
    struct ts_ycc ycc;
    /* CPUs no other render is using may share this one (the bytes are the same either way):
     * at low concurrency a big render then takes a fraction of the time. */
    unsigned busy = atomic_fetch_add(&app->rendering, 1) + 1;
    marked.threads = busy < app->ncpu ? app->ncpu - busy + 1 : 1;
    /* A JPEG of a JPEG-stored source stays in its planes when it can (render_execute_ycc). */
    rc = render_execute_ycc(reader, plan, &job->cancel, &ycc, err);
    bool planar = rc != TS_DECLINED;
    if (!planar)
        rc = render_execute(reader, plan, &job->cancel, &img, err);
    atomic_fetch_sub(&app->rendering, 1);
    admission_leave(&app->admission, bytes, heavy);
    if (rc)
        return rc;
    const struct encode_options *enc = out->own_encoder ? &out->enc : &job->live->enc;
    if (planar) {
        rc = encode_jpeg_ycc(&ycc, enc->jpeg_quality, &res->body, err);
        ts_ycc_free(&ycc);
        return rc;
    }
    rc = encode_image(&img, plan->format, enc, &res->body, err);
    ts_image_free(&img);
    return rc;
}

/* ---- samples a protocol quotes ---- */

/* One view's pixels, as the image stores them: the plan without the server's watermark. */
static int sample_render(struct ts_app *app, struct ts_reader *reader, struct ts_job *job,
                         struct ts_image *img, struct ts_err *err)
{
    struct ts_plan plan = job->out.plan;
    plan.watermark = NULL;
    size_t bytes = render_peak_bytes(reader, &plan);
    bool heavy;
    int rc = admission_enter(&app->admission, bytes, &heavy, err);
    if (rc)
        return rc;
    rc = render_execute(reader, &plan, &job->cancel, img, err);
    admission_leave(&app->admission, bytes, heavy);
    return rc;
}

/* The file of horizontal view h (at the job's vertical angle) of the job's sequence, open. */
static int sequence_view(struct ts_app *app, struct ts_job *job, int32_t h, struct source_file *src,
                         struct ts_err *err)
{
    char frame[PATH_MAX];
    const char *id = ts_buf_str(&job->identifier);
    int rc = id ? source_sequence_frame(id, app->cfg.filename_pattern, h, job->seq_v, frame,
                                        sizeof frame, err)
                : ts_fail(err, TS_ENOMEM, "out of memory");
    rc = rc ? rc : resolve(app, frame, src, err);
    if (rc == TS_OK && src->fd < 0)
        rc = source_reopen(&app->root, src, err);
    return rc;
}

/* Reads the plan from the image (l: its lease, begun here if need be) or from each of its
 * sequence's horizontal views, in the order listed, and lets the protocol quote them. */
static int read_samples(struct ts_app *app, struct ts_job *job, const struct ts_image_info *info,
                        struct ts_lease *l, struct ts_err *err)
{
    uint32_t count = job->in_sequence ? job->views.nh : 1;
    int rc = TS_OK;
    for (uint32_t i = 0; i < count && rc == TS_OK; i++) {
        int32_t view = job->in_sequence ? job->views.h[i] : 0;
        struct source_file src = {.fd = -1};
        struct ts_lease own = {0}, *use = job->in_sequence ? &own : l;
        if (job->in_sequence) {
            rc = sequence_view(app, job, view, &src, err);
            rc = rc ? rc : lease(app, &src, NULL, &own, err);
        } else if (!l->reader) {
            rc = lease(app, &job->src, NULL, l, err);
        }
        struct ts_image img = {0};
        if (rc == TS_OK)
            rc = sample_render(app, use->reader, job, &img, err);
        if (job->in_sequence) {
            ts_lease_end(&own, rc);
            source_close(&src);
        }
        struct ts_sample s = {i, count, view, &img};
        rc = rc ? rc : job->sample(app, job, info, &s, &job->out, err);
        ts_image_free(&img);
    }
    if (rc == TS_DECLINED)
        rc = TS_OK;
    struct ts_sample end = {count, count, 0, NULL};
    return rc ? rc : job->sample(app, job, info, &end, &job->out, err);
}

/* Moves the product into the response: status, type, headers and text (no copy). */
static void answer_product(struct ts_job *job, struct ts_response *res)
{
    struct ts_product *out = &job->out;
    res->status = out->http_status;
    if (out->reason[0])
        snprintf(res->reason, sizeof res->reason, "%s", out->reason);
    if (out->type[0])
        ts_response_set_type(res, out->type);
    for (int i = 0; i < out->nheaders; i++)
        ts_response_add_header(res, out->headers[i].name, "%s", out->headers[i].value);
    if (out->is_text) {
        ts_buf_free(&res->body);
        res->body = out->text;
        res->body.max = 0;
        out->text = (struct ts_buf){0};
    }
}

/* The file this request reads from start to end. Resolution from the cache proved the path
 * with a stat, and the path may name another file by now (a rename over it): then the answer
 * comes from that new file, and its validators and cache key with it. */
static int pin_file(struct ts_app *app, struct ts_job *job, struct ts_err *err)
{
    if (job->src.fd >= 0 || job->src.bytes)
        return TS_OK;
    struct stat before = job->src.st;
    int rc = source_reopen(&app->root, &job->src, err);
    if (rc)
        return rc;
    const struct stat *now = &job->src.st;
    if (now->st_ino == before.st_ino && now->st_dev == before.st_dev &&
        now->st_size == before.st_size && now->st_mtim.tv_sec == before.st_mtim.tv_sec &&
        now->st_mtim.tv_nsec == before.st_mtim.tv_nsec &&
        now->st_ctim.tv_sec == before.st_ctim.tv_sec &&
        now->st_ctim.tv_nsec == before.st_ctim.tv_nsec)
        return TS_OK;
    job_etag(app, job);
    return job->cacheable ? cache_key(app, job) : TS_OK;
}

/* The pages of a multi-page file, for a job that lists them: one pass of the reader over the
 * file (opening each page on its own would walk n directories for page n). */
static int collect_pages(struct ts_job *job, struct ts_reader *reader,
                         const struct ts_image_info *info, struct ts_err *err)
{
    uint32_t n = info->npages < TS_JOB_PAGES_MAX ? info->npages : TS_JOB_PAGES_MAX;
    free(job->pages);
    job->npages = 0;
    job->pages = calloc(n, sizeof *job->pages);
    if (!job->pages)
        return ts_fail(err, TS_ENOMEM, "out of memory");
    job->pages_total = info->npages;
    return ts_reader_pages(reader, job->pages, n, &job->npages, err);
}

/* The image branch: information (cached, or from the one lease), produce(), render. The lease
 * ends here and only here, returned or discarded by what the render said. */
static int serve_image(struct ts_app *app, struct ts_job *job, struct ts_response *res,
                       struct ts_err *err)
{
    struct ts_image_info info;
    struct ts_lease l = {0};
    /* The cached info: its text tags, lent to produce(), and the reopen state, to the lease. */
    struct ts_buf held = {0};
    struct ts_reopen again = {0};
    int rc = pin_file(app, job, err);
    if (rc)
        return rc;
    if (!job->produced) {
        if (job->needs_info && !info_lookup(app, &job->src, &info, &again, &held)) {
            ts_buf_free(&held);
            again = (struct ts_reopen){0};
            rc = lease(app, &job->src, NULL, &l, err);
            if (rc)
                return rc;
            info = l.reader->info;
            info_store(app, &job->src, l.reader);
        }
        if (job->wants_pages && job->needs_info && job->src.page == 0 && info.npages > 1) {
            rc = l.reader ? TS_OK : lease(app, &job->src, &again, &l, err);
            rc = rc ? rc : collect_pages(job, l.reader, &info, err);
        }
        /* The degraded tier is a smaller image to every protocol: it plans against that, and
         * the plan is then mapped onto the file's own pixels. */
        struct ts_image_info shown;
        const struct ts_image_info *use = &info;
        if (job->needs_info && job->access.tier == TS_TIER_DEGRADED &&
            job->access.rule->degraded_size) {
            ts_access_virtual_info(job->access.rule->degraded_size, &info, &shown);
            use = &shown;
        }
        rc = rc ? rc : job->produce(app, job, job->needs_info ? use : NULL, &job->out, err);
        if (rc == TS_OK && use != &info && !job->out.is_text)
            rc = ts_access_map_plan(use, &info, &job->out.plan, err);
        /* Refused, yet described (info.json with its services): the status says refused. */
        if (rc == TS_OK && job->access.tier == TS_TIER_DENIED && !job->access.probe) {
            if (job->out.is_text)
                job->out.http_status = ts_status_http(job->access.deny);
            else
                rc = ts_fail(err, job->access.deny, "restricted image");
        }
        if (rc == TS_OK && job->sample && job->needs_info)
            rc = read_samples(app, job, &info, &l, err);
        job->produced = rc == TS_OK;
    }
    if (rc == TS_OK && !job->out.is_text && job->out.http_status == 200) {
        if (!l.reader)
            rc = lease(app, &job->src, &again, &l, err);
        if (rc == TS_OK)
            rc = render(app, l.reader, job, res, err);
        if (rc == TS_OK)
            ts_product_set_type(&job->out, ts_format_mime(job->out.plan.format));
    }
    if (rc != TS_OK && rc != TS_DEFERRED)
        remote_verdict(&l, &job->src, &rc, err);
    /* A deferred job keeps its descriptor (the slow lane reads the same file) but not the
     * reader: the pool lends it to the fast lane meanwhile. */
    ts_lease_end(&l, rc == TS_DEFERRED ? TS_OK : rc);
    ts_buf_free(&held);
    if (rc == TS_OK)
        answer_product(job, res);
    return rc;
}

/* ---- files of the web front ---- */

static int read_all(int fd, size_t want, struct ts_buf *body, struct ts_err *err)
{
    if (ts_buf_reserve(body, want) != TS_OK)
        return ts_fail(err, TS_ENOMEM, "out of memory");
    size_t got = 0;
    while (got < want) {
        ssize_t n = read(fd, body->data + body->len + got, want - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return ts_fail(err, TS_EIO, "short read on static file");
        got += (size_t)n;
    }
    body->len += got;
    return TS_OK;
}

static int serve_file(struct ts_app *app, const struct ts_request *req, struct ts_job *job,
                      struct ts_response *res, struct ts_err *err)
{
    const char *path = ts_buf_str(&job->file);
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY) : -1;
    struct source_file f = {.fd = fd};
    if (fd < 0 || fstat(fd, &f.st) != 0 || !S_ISREG(f.st.st_mode)) {
        source_close(&f);
        return ts_fail(err, TS_ENOTFOUND, "static file is missing");
    }
    char etag[24];
    make_etag(app, ts_job_live(app, job), &f, "web static", 10, etag);
    int rc = TS_OK;
    if (not_modified(req, etag, f.st.st_mtim.tv_sec)) {
        res->status = 304;
    } else if ((uint64_t)f.st.st_size > STATIC_FILE_MAX) {
        rc = ts_fail(err, TS_ETOOLARGE, "static file too large");
    } else {
        rc = read_all(fd, (size_t)f.st.st_size, &res->body, err);
        res->status = 200;
        ts_response_set_type(res, job->out.type);
    }
    if (rc == TS_OK)
        add_validators(app, job, res, etag, f.st.st_mtim.tv_sec);
    source_close(&f);
    return rc;
}

/* ---- purge ---- */

/* A purge forgets a file (device and inode) in every local cache, whatever its mtime, size or
 * page, plus the identifier's resolution; and through memcached, in every server's share. */
struct purge_target {
    dev_t dev;
    ino_t ino;
};

/* Whether text holds, after `skip` colon-separated fields, "DEV:INO:" of the target: the
 * layout of identity() (mtime:ctime:size:dev:ino:page), which the response and information
 * keys start with, and of the JPEG 2000 block keys ("jp2:L<level>:<cell>:dev:ino:..."). */
static bool names_file(const char *text, unsigned skip, const struct purge_target *t)
{
    for (unsigned i = 0; i < skip; i++) {
        text = strchr(text, ':');
        if (!text)
            return false;
        text++;
    }
    char *end;
    unsigned long long dev = strtoull(text, &end, 10);
    if (end == text || *end != ':')
        return false;
    text = end + 1;
    unsigned long long ino = strtoull(text, &end, 10);
    return end != text && *end == ':' && dev == (unsigned long long)t->dev &&
           ino == (unsigned long long)t->ino;
}

static bool purge_by_identity(void *ctx, const char *key, const uint8_t *value, size_t len)
{
    (void)value;
    (void)len;
    return names_file(key, 3, ctx);
}

static bool purge_jp2_block(void *ctx, const char *key, const uint8_t *value, size_t len)
{
    (void)value;
    (void)len;
    return !strncmp(key, "jp2:", 4) && names_file(key, 3, ctx);
}

static bool purge_resolution(void *ctx, const char *key, const uint8_t *value, size_t len)
{
    const struct purge_target *t = ctx;
    (void)key;
    struct resolved r;
    if (len < sizeof r)
        return false;
    memcpy(&r, value, sizeof r);
    return r.dev == t->dev && r.ino == t->ino;
}

static int purge(struct ts_app *app, struct ts_job *job, struct ts_response *res,
                 struct ts_err *err)
{
    struct purge_target t = {job->src.st.st_dev, job->src.st.st_ino}, *tp = &t;
    const char *id = ts_buf_str(&job->identifier);
    /* The identifier's resolution (whatever file it remembers), then every other name of
     * this file (a page, a second spelling, a sequence's view). */
    size_t resolved = id && ts_lru_remove(app->resolved, id);
    resolved += ts_lru_remove_if(app->resolved, purge_resolution, tp);
    size_t responses = ts_lru_remove_if(app->responses, purge_by_identity, tp);
    size_t infos = ts_lru_remove_if(app->infos, purge_by_identity, tp);
    size_t blocks = app->jp2_blocks ? ts_lru_remove_if(app->jp2_blocks, purge_jp2_block, tp) : 0;
    unsigned readers = ts_pool_purge(app->readers, t.dev, t.ino);
    const char *shared = "off";
    if (app->memcache) {
        struct ts_buf name;
        ts_buf_init_capped(&name, PATH_MAX + 16);
        bool bumped = shared_name(app, &job->src, &name) == TS_OK &&
                      ts_memcache_bump(app->memcache, (const char *)name.data, name.len);
        ts_buf_free(&name);
        shared = bumped ? "purged" : "unreachable";
    }
    ts_log("admin: purged %s: %zu responses, %zu information entries, %zu resolutions, %u "
           "readers, %zu JPEG 2000 blocks; memcached %s",
           id ? id : "?", responses, infos, resolved, readers, blocks, shared);
    if (!strcmp(shared, "unreachable"))
        return ts_fail(err, TS_EBUSY,
                       "this server's caches were purged, but memcached did not take the new "
                       "generation; try again");
    json_t *o = json_pack("{s:s?, s:I, s:I, s:I, s:I, s:I, s:s}", "identifier", id, "responses",
                          (json_int_t)responses, "info", (json_int_t)infos, "resolved",
                          (json_int_t)resolved, "readers", (json_int_t)readers, "jp2_blocks",
                          (json_int_t)blocks, "memcached", shared);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        return ts_fail(err, TS_ENOMEM, "out of memory");
    int rc = ts_buf_append_str(&res->body, text);
    rc = rc ? rc : ts_buf_append(&res->body, "\n", 1);
    free(text);
    if (rc)
        return ts_fail(err, TS_ENOMEM, "out of memory");
    res->status = 200;
    ts_response_set_type(res, "application/json");
    ts_response_add_header(res, "Cache-Control", "no-store");
    return TS_OK;
}

/* ---- answers ---- */

/* Copies text to out with every occurrence of `needle` replaced by `with`. */
static void replace_all(const char *text, const char *needle, const char *with, char *out,
                        size_t size)
{
    size_t n = strlen(needle), o = 0;
    while (*text && o + 1 < size) {
        if (n && !strncmp(text, needle, n)) {
            o += (size_t)snprintf(out + o, size - o, "%s", with);
            o = o < size ? o : size - 1;
            text += n;
        } else {
            out[o++] = *text++;
        }
    }
    out[o] = '\0';
}

/* A client learns the identifier and the problem, never where the server keeps its files:
 * the image's path becomes its identifier, the root and the demo file's path go. */
static void public_reason(const struct ts_app *app, struct ts_job *job, const char *reason,
                          char out[256])
{
    char a[256], b[256];
    const char *id = job ? ts_buf_str(&job->identifier) : NULL;
    replace_all(reason, job && job->src.path[0] ? job->src.path : "", id ? id : "", a, sizeof a);
    replace_all(a, app->cfg.demo_image, "demo", b, sizeof b);
    replace_all(b, strlen(app->root.path) > 1 ? app->root.path : "", "", out, 256);
}

/* The one place a status becomes an error response: one line of text (or the protocol's own
 * error shape); the log keeps the whole reason. */
static void fail(const struct ts_app *app, struct ts_job *job, int rc, const struct ts_err *err,
                 struct ts_response *res)
{
    const char *reason = err && err->msg[0] ? err->msg : ts_status_name(rc);
    struct ts_err shown = {0};
    public_reason(app, job, reason, shown.msg);
    /* The file's own failures say which file, so whoever reads the body can report it. */
    const char *id = job && job->identifier.len ? ts_buf_str(&job->identifier) : NULL;
    if ((rc == TS_ECODEC || rc == TS_EIO) && id && !strstr(shown.msg, id)) {
        char named[sizeof shown.msg];
        snprintf(named, sizeof named, "%.100s: %.150s", id, shown.msg);
        memcpy(shown.msg, named, sizeof shown.msg);
    }
    ts_response_error(res, rc, shown.msg);
    snprintf(res->reason, sizeof res->reason, "%s", reason);
    for (char *p = res->reason; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    const struct ts_error_style *style = job ? job->errors : NULL;
    if (!style)
        return;
    if (err && err->code[0] && style->format) {
        memcpy(shown.code, err->code, sizeof shown.code);
        res->body.len = 0;
        style->format(&shown, &res->body);
        ts_response_set_type(res, style->type);
        snprintf(res->reason, sizeof res->reason, "error %s: %.200s", err->code, reason);
    }
    if (style->page) {
        res->body.len = 0;
        style->page(res->status, shown.msg, &res->body);
        ts_response_set_type(res, style->type);
    }
    if (style->no_cache)
        ts_response_add_header(res, "Cache-Control", "no-cache");
}

/* Codes a successful text answer with gzip for a client that accepts it (Presentation 3.0
 * section 6.3: descriptions this repetitive should go compressed). The caches keep the plain
 * bytes; each answer is coded on its way out. When coding fails the plain bytes go, under the
 * ETag already chosen: only memory can run out here. */
static void code_answer(const struct ts_job *job, struct ts_response *res)
{
    if (!job || !job->gzip || res->status != 200)
        return;
    size_t len;
    const uint8_t *body = ts_response_body(res, &len);
    struct ts_buf coded = {0};
    if (ts_gzip(body, len, &coded) != TS_OK) {
        ts_buf_free(&coded);
        return;
    }
    ts_response_share(res, NULL, NULL, 0); /* drops the plain body, lent or owned */
    res->body = coded;
    ts_response_add_header(res, "Content-Encoding", "gzip");
}

static bool has_header(const struct ts_response *res, const char *name)
{
    for (int i = 0; i < res->nheaders; i++)
        if (!strcasecmp(res->headers[i].name, name))
            return true;
    return false;
}

/* What every answer carries, whatever path it took. */
static void finalize(const struct ts_app *app, const struct ts_job *job, struct ts_response *res)
{
    for (int i = 0; job && i < job->nheaders; i++)
        ts_response_add_header(res, job->headers[i].name, "%s", job->headers[i].value);
    /* RFC 9110 15.5.2: a 401 carries a challenge. A protocol that knows its scheme set one (the
     * admin endpoint's); a restricted image's is the probe's bearer token, in the rule's realm
     * (rule names are plain [A-Za-z0-9._-], safe inside the quotes). */
    if (res->status == 401 && !has_header(res, "WWW-Authenticate"))
        ts_response_add_header(res, "WWW-Authenticate", "Bearer realm=\"%s\"",
                               job && job->access.rule ? job->access.rule->name : "tessera");
    code_answer(job, res);
    /* Tell shared caches what else the answer was made from: negotiation changes the type,
     * the coding follows Accept-Encoding, and without --base-url the ids and links name the
     * Host the client asked. */
    bool host = job && job->vary_host && !app->cfg.base_url[0];
    const char *fields[3];
    int n = 0;
    if (job && job->vary_accept)
        fields[n++] = "Accept";
    if (job && job->compress)
        fields[n++] = "Accept-Encoding";
    if (host)
        fields[n++] = app->cfg.trust_proxy ? "Host, X-Forwarded-Host, X-Forwarded-Proto" : "Host";
    if (n)
        ts_response_add_header(res, "Vary", "%s%s%s%s%s", fields[0], n > 1 ? ", " : "",
                               n > 1 ? fields[1] : "", n > 2 ? ", " : "", n > 2 ? fields[2] : "");
    /* Restricted images answer by the request's cookie, bearer token or trusted header. */
    if (job && ts_access_private(job))
        ts_response_add_header(res, "Vary", "Cookie, Authorization%s%s",
                               job->access.rule->header[0] ? ", " : "", job->access.rule->header);
    /* iipsrv's CORS variable may name one origin; by default any origin may use us. */
    ts_response_add_header(res, "Access-Control-Allow-Origin", "%s",
                           app->cfg.cors[0] ? app->cfg.cors : "*");
    ts_response_add_header(res, "Access-Control-Expose-Headers", "Link, ETag, Last-Modified");
}

/* Validators and cache keys come from the file and the job alone, so a revalidation or a cache
 * hit costs no image work: true when one of them answered. */
static bool answer_known(struct ts_app *app, const struct ts_request *req, struct ts_job *job,
                         struct ts_response *res)
{
    job_etag(app, job);
    time_t mtime = job->src.st.st_mtim.tv_sec;
    if (not_modified(req, job->etag, mtime)) {
        res->status = 304;
        add_validators(app, job, res, job->etag, mtime);
        return true;
    }
    if (job->cacheable && cache_lookup(app, job, res)) {
        add_validators(app, job, res, job->etag, mtime);
        return true;
    }
    return false;
}

bool core_begin(struct ts_app *app, const struct ts_request *req, struct ts_job *job, int rc,
                const struct ts_err *verdict, struct ts_response *res)
{
    struct ts_err err = {0};
    if (verdict)
        err = *verdict;
    /* The deadline counts from the request's arrival, queues included. */
    job->live = ts_app_live(app);
    ts_cancel_init(&job->cancel, job->live->request_deadline);
    job->gzip = job->compress && ts_accepts_gzip(ts_request_header(req, "Accept-Encoding"));
    const char *rest;
    const char *id = ts_buf_str(&job->identifier);
    /* A remote source may take seconds to answer: a worker asks it, never a network thread. */
    job->resolve_later = rc == TS_OK && job->kind != TS_JOB_REPLY && job->identifier.len && id &&
                         remote_rule(app, id, &rest);
    if (job->resolve_later)
        return false;
    if (rc == TS_OK && job->identifier.len) {
        /* A purge resolves afresh and remembers nothing: resolutions are one of its caches. */
        if (id && job->kind == TS_JOB_PURGE) {
            const char *name;
            const struct source_root *base = local_root(app, id, &name);
            rc = source_resolve(base, name, &job->src, &err);
        } else {
            rc = id ? resolve(app, id, &job->src, &err) : ts_fail(&err, TS_ENOMEM, "out of memory");
        }
        if (rc == TS_ENOTFOUND && job->sequence)
            rc = resolve_sequence(app, job, id, &err);
        if (rc == TS_OK && job->kind == TS_JOB_IMAGE && (rc = read_companions(app, job)) != TS_OK)
            ts_fail(&err, rc, "request too long");
        /* Decided once, before any validator or cache sees the job: the tier is in its key. */
        if (rc == TS_OK)
            rc = ts_access_apply(app, req, job, &err);
        /* The authorization hook is asked on a worker: the file stays open for it. */
        if (rc == TS_DEFERRED) {
            job->access_later = true;
            return false;
        }
    }
    if (rc || job->kind == TS_JOB_REPLY) {
        if (rc)
            fail(app, job, rc, &err, res);
        else
            answer_product(job, res);
        finalize(app, job, res);
        source_close(&job->src);
        return true;
    }
    if (job->kind != TS_JOB_IMAGE)
        return false;
    if (!answer_known(app, req, job, res))
        return false; /* the job carries the resolved file, ETag and cache key on */
    source_close(&job->src);
    finalize(app, job, res);
    return true;
}

bool core_finish(struct ts_app *app, const struct ts_request *req, struct ts_job *job,
                 struct ts_response *res)
{
    struct ts_err err = {0};
    /* Waiting in a queue used up the deadline, or the client left meanwhile: no work at all. */
    int rc = ts_cancel_check(&job->cancel, &err);
    job->access.may_call = true; /* a worker may wait for the authorization hook */
    /* What core_begin left to a worker: resolving a remote identifier, or asking the hook.
     * Either way the access rules decide before any validator or cache, as there. */
    if (rc == TS_OK && (job->resolve_later || job->access_later)) {
        if (job->resolve_later) {
            const char *id = ts_buf_str(&job->identifier);
            rc = id ? resolve(app, id, &job->src, &err) : ts_fail(&err, TS_ENOMEM, "out of memory");
        }
        job->resolve_later = job->access_later = false; /* once: the job comes back resolved */
        if (rc == TS_OK)
            rc = ts_access_apply(app, req, job, &err);
        if (rc == TS_OK && job->kind == TS_JOB_IMAGE && answer_known(app, req, job, res)) {
            source_close(&job->src);
            finalize(app, job, res);
            return true;
        }
    }
    switch (rc ? TS_JOB_REPLY : job->kind) {
    case TS_JOB_PAGE:
        rc = job->produce(app, job, NULL, &job->out, &err);
        if (rc == TS_OK) {
            answer_product(job, res);
            ts_response_add_header(res, "Cache-Control", "no-cache");
        }
        break;
    case TS_JOB_FILE: rc = serve_file(app, req, job, res, &err); break;
    case TS_JOB_PURGE: rc = purge(app, job, res, &err); break;
    case TS_JOB_IMAGE:
        /* Here on a worker, not in core_begin on a network thread: a slow memcached holds
         * up this request only. Once per job: a deferred one looked before it was deferred. */
        if (app->memcache && job->cacheable && !job->produced && shared_lookup(app, job, res)) {
            cache_store(app, job, res);
            add_validators(app, job, res, job->etag, job->src.st.st_mtim.tv_sec);
            break;
        }
        rc = serve_image(app, job, res, &err);
        if (rc == TS_DEFERRED)
            return false;
        if (rc == TS_OK && res->status == 200) {
            if (job->cacheable)
                cache_store(app, job, res);
            if (job->cacheable && app->memcache)
                shared_store(app, job, res);
            add_validators(app, job, res, job->etag, job->src.st.st_mtim.tv_sec);
        }
        break;
    default: rc = rc ? rc : ts_fail(&err, TS_EINVAL, "nothing to do"); break;
    }
    if (rc && rc != TS_DEFERRED && job->src.bytes)
        remote_forget(app, job);
    source_close(&job->src);
    if (rc) {
        ts_response_free(res);
        ts_response_init(res);
        fail(app, job, rc, &err, res);
    }
    finalize(app, job, res);
    return true;
}

void core_refuse(struct ts_app *app, struct ts_job *job, int rc, const char *reason,
                 struct ts_response *res)
{
    struct ts_err err = {0};
    if (rc == TS_EBUSY && app->metrics)
        atomic_fetch_add_explicit(&app->metrics->refused_busy, 1, memory_order_relaxed);
    ts_fail(&err, rc, "%s", reason);
    source_close(&job->src);
    ts_response_free(res);
    ts_response_init(res);
    fail(app, job, rc, &err, res);
    finalize(app, job, res);
}

void core_serve(struct ts_app *app, const struct ts_request *req, struct ts_job *job, int rc,
                const struct ts_err *err, struct ts_response *res)
{
    if (!core_begin(app, req, job, rc, err, res))
        core_finish(app, req, job, res);
}

/* ---- set-up ---- */

/* The JPEG 2000 reader's block cache is an LRU the app owns, seen through a block store. */
static bool blocks_get(void *ctx, const char *key, struct ts_buf *out)
{
    return ts_lru_get(ctx, key, out);
}

static void blocks_put(void *ctx, const char *key, const void *value, size_t len)
{
    ts_lru_put(ctx, key, value, len);
}

/* The remote sources, their block cache, and credentials from the configuration or else the
 * environment AWS's tools read. */
static int remote_init(struct ts_app *app, struct ts_err *err)
{
    const struct ts_config *cfg = &app->cfg;
    size_t bytes = (size_t)cfg->remote_cache_mb << 20, block = (size_t)cfg->remote_block_kb << 10;
    if (bytes && ts_lru_create(bytes, 8, &app->remote_blocks))
        return ts_fail(err, TS_ENOMEM, "cannot create the remote block cache");
    app->remote_store =
        (struct ts_block_store){app->remote_blocks, blocks_get, blocks_put, bytes / 8 / 2};
    const char *env_region = getenv("AWS_REGION"), *env_key = getenv("AWS_ACCESS_KEY_ID"),
               *env_secret = getenv("AWS_SECRET_ACCESS_KEY");
    struct ts_remote_options o = {
        .connect_timeout_ms = cfg->remote_connect_timeout_ms,
        .timeout_ms = cfg->remote_timeout_ms,
        .s3_endpoint = cfg->s3_endpoint,
        .s3_region = cfg->s3_region[0] ? cfg->s3_region : env_region,
        .s3_access_key = cfg->s3_access_key[0] ? cfg->s3_access_key : env_key,
        .s3_secret_key = cfg->s3_secret_key[0] ? cfg->s3_secret_key : env_secret,
        .blocks = app->remote_blocks ? &app->remote_store : NULL,
        .block = block,
    };
    for (unsigned i = 0; i < cfg->nsource_rules; i++) {
        const char *target = cfg->source_rules[i].target;
        if (target[0] == '/')
            continue; /* a local folder (local_roots) */
        if (!ts_remote_base_ok(target))
            return ts_fail(err, TS_EINVAL, "--source %s=%s: not a source Tessera can read",
                           cfg->source_rules[i].prefix, target);
        /* /metrics shows the kinds of source configured, each once whatever its rules. */
        bool s3 = !strncmp(target, "s3://", 5);
        if (s3 && !o.s3_stats)
            o.s3_stats = ts_metrics_source(app->metrics, "s3");
        if (!s3 && !o.http_stats)
            o.http_stats = ts_metrics_source(app->metrics, "http");
    }
    return ts_remote_create(&o, &app->remote, err);
}

int core_init(struct ts_app *app, struct ts_err *err)
{
    const struct ts_config *cfg = &app->cfg;
    size_t mb = 1024 * 1024;
    /* Resolutions follow the info cache's switch: both remember facts about files. */
    size_t resolved_bytes = cfg->info_cache_mb ? 4 * mb : 0;
    if (ts_lru_create((size_t)cfg->response_cache_mb * mb, 16, &app->responses) ||
        ts_lru_create((size_t)cfg->info_cache_mb * mb, 4, &app->infos) ||
        ts_lru_create(resolved_bytes, 4, &app->resolved) ||
        ts_pool_create(cfg->reader_cache, &app->readers))
        return ts_fail(err, TS_ENOMEM, "cannot create caches");
    if (cfg->memcached_servers[0]) {
        struct ts_memcache_options mo = {
            .servers = cfg->memcached_servers, .ttl = cfg->memcached_ttl, .log = ts_log};
        int rc = ts_memcache_create(&mo, &app->memcache, err);
        if (rc)
            return rc;
    }
    size_t jp2_bytes = (size_t)cfg->jp2_cache_mb * mb;
    if (jp2_bytes && ts_lru_create(jp2_bytes, 4, &app->jp2_blocks))
        return ts_fail(err, TS_ENOMEM, "cannot create the JPEG 2000 block cache");
    /* The LRU skips values over half a shard: offer nothing larger. */
    app->jp2_store =
        (struct ts_block_store){app->jp2_blocks, blocks_get, blocks_put, jp2_bytes / 4 / 2};
    bool remote = false;
    if (cfg->nsource_rules &&
        !(app->local_roots = calloc(cfg->nsource_rules, sizeof *app->local_roots)))
        return ts_fail(err, TS_ENOMEM, "out of memory");
    for (unsigned i = 0; i < cfg->nsource_rules; i++) {
        const struct ts_source_rule *r = &cfg->source_rules[i];
        app->local_roots[i].fd = app->local_roots[i].top_fd = -1;
        if (r->target[0] != '/') {
            remote = true;
            continue;
        }
        int rc = source_root_open(r->target, NULL, &app->local_roots[i], err);
        if (rc) {
            char why[sizeof err->msg];
            memcpy(why, err->msg, sizeof why);
            return ts_fail(err, rc, "--source %s=%s: %s", r->prefix, r->target, why);
        }
    }
    app->root.extra = app->local_roots;
    app->root.nextra = cfg->nsource_rules;
    return remote ? remote_init(app, err) : TS_OK;
}

void core_free(struct ts_app *app)
{
    ts_lru_destroy(app->responses);
    ts_lru_destroy(app->infos);
    ts_lru_destroy(app->resolved);
    ts_pool_destroy(app->readers);
    ts_lru_destroy(app->jp2_blocks);
    ts_remote_destroy(app->remote);
    ts_lru_destroy(app->remote_blocks);
    app->remote = NULL;
    app->remote_blocks = NULL;
    ts_memcache_destroy(app->memcache);
    app->memcache = NULL;
    app->responses = app->infos = app->resolved = app->jp2_blocks = NULL;
    app->readers = NULL;
}
