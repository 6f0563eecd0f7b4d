/* The shared image path under every protocol: open, render, encode, validate. */
#include "core/engine.h"
#include "cache/lru.h"
#include "encode/encode.h"
#include "render/passthrough.h"
#include "render/render.h"
#include "util/hash.h"
#include "util/httpdate.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

/* What a full resolution proved: this identifier named this file, below the root. */
struct resolved {
    dev_t dev;
    ino_t ino;
    uint32_t page;
    char path[]; /* NUL-terminated: only its own length is stored and copied */
};

int engine_resolve(struct ts_app *app, const char *identifier, struct source_file *src,
                   struct ts_err *err)
{
    /* Resolving walks every path component (realpath); a viewer's burst of tiles asks for
     * one identifier again and again. One stat of the remembered path is enough when it is
     * still the same file (device and inode): that file was proven to be below the root, and
     * the stat gives the fresh mtime and size that keep every cache honest. */
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
            ts_buf_free(&b);
            return TS_OK;
        }
    }
    ts_buf_free(&b);
    int rc = source_resolve(app->cfg.root, app->cfg.demo_image, identifier, src, err);
    if (rc == TS_OK) {
        size_t n = strlen(src->path) + 1;
        struct resolved *r = calloc(1, sizeof *r + n);
        if (r) {
            r->dev = src->st.st_dev;
            r->ino = src->st.st_ino;
            r->page = src->page;
            memcpy(r->path, src->path, n);
            ts_lru_put(app->resolved, identifier, r, sizeof *r + n);
            free(r);
        }
    }
    return rc;
}

int engine_render(struct ts_app *app, struct ts_reader *reader, const struct ts_plan *plan,
                  const struct encode_options *enc, struct ts_response *res, struct ts_err *err)
{
    int rc;
    /* A request for exactly one stored JPEG tile is answered with its bytes: no decode, no
     * encode, and no admission either, since it needs no more memory than the tile. Not when
     * the client chose the encoder's settings: the stored bytes do not follow them. */
    if (!enc) {
        rc = passthrough_try(reader, plan, &app->passthrough, &res->body, err);
        if (rc == TS_OK) {
            ts_response_set_type(res, ts_format_mime(plan->format));
            return TS_OK;
        }
        if (rc != TS_DECLINED)
            return rc;
        enc = &app->enc;
    }
    size_t bytes = render_peak_bytes(&reader->info, plan);
    bool heavy;
    rc = admission_enter(&app->admission, bytes, &heavy, err);
    if (rc)
        return rc;
    struct ts_image img = {0};
    rc = render_execute(reader, plan, &img, err);
    admission_leave(&app->admission, bytes, heavy);
    if (rc)
        return rc;
    rc = encode_image(&img, plan->format, enc, &res->body, err);
    ts_image_free(&img);
    if (rc)
        return rc;
    ts_response_set_type(res, ts_format_mime(plan->format));
    return TS_OK;
}

void engine_etag(const struct ts_app *app, const struct source_file *src, const char *what,
                 char *out, size_t size)
{
    uint64_t h = TS_HASH_SEED;
    int64_t stamp[4] = {(int64_t)src->st.st_mtim.tv_sec, (int64_t)src->st.st_mtim.tv_nsec,
                        (int64_t)src->st.st_size, (int64_t)src->st.st_ino};
    int64_t knobs[8] = {app->cfg.jpeg_quality, app->cfg.webp_quality, app->cfg.png_level,
                        app->cfg.max_width,    app->cfg.max_height,   (int64_t)app->cfg.max_area,
                        app->cfg.default_tile, app->iiif.formats};
    h = ts_hash(h, stamp, sizeof stamp);
    h = ts_hash(h, knobs, sizeof knobs);
    h = ts_hash(h, app->cfg.passthrough, strlen(app->cfg.passthrough));
    h = ts_hash(h, src->path, strlen(src->path));
    h = ts_hash(h, &src->page, sizeof src->page);
    h = ts_hash(h, what, strlen(what));
    snprintf(out, size, "\"%016" PRIx64 "\"", h);
}

void engine_cache_headers(const struct ts_app *app, struct ts_response *res, const char *etag,
                          time_t mtime)
{
    char date[64];
    ts_http_date(mtime, date, sizeof date);
    ts_response_add_header(res, "ETag", "%s", etag);
    ts_response_add_header(res, "Last-Modified", "%s", date);
    ts_response_add_header(res, "Cache-Control", "public, max-age=%u", app->cfg.cache_max_age);
}

bool engine_not_modified(const struct ts_app *app, const struct ts_request *req,
                         struct ts_response *res, const char *etag, time_t mtime)
{
    if (!ts_not_modified(ts_request_header(req, "If-None-Match"), ts_request_header(req, "If-Modified-Since"), etag, mtime))
        return false;
    res->status = 304;
    res->body.len = 0;
    engine_cache_headers(app, res, etag, mtime);
    return true;
}

void engine_fail(struct ts_response *res, int status, const struct ts_err *err)
{
    ts_response_error(res, status, err && err->msg[0] ? err->msg : ts_status_name(status));
}

/* Host headers end up in ids and Location headers, so accept only host[:port] characters. */
static bool host_is_sane(const char *host)
{
    if (!host || !*host || strlen(host) > 255)
        return false;
    for (const char *p = host; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_'))
            return false;
    }
    return true;
}

void engine_public_base(const struct ts_app *app, const struct ts_request *req, char *out,
                        size_t size)
{
    const struct ts_config *cfg = &app->cfg;
    if (cfg->base_url[0]) {
        size_t n = strlen(cfg->base_url);
        while (n > 0 && cfg->base_url[n - 1] == '/')
            n--;
        snprintf(out, size, "%.*s", (int)n, cfg->base_url);
        return;
    }
    const char *scheme = "http";
    const char *host = NULL;
    if (cfg->trust_proxy) {
        const char *proto = ts_request_header(req, "X-Forwarded-Proto");
        if (proto && (!strcmp(proto, "https") || !strcmp(proto, "http")))
            scheme = proto;
        host = ts_request_header(req, "X-Forwarded-Host");
        if (host && !host_is_sane(host))
            host = NULL;
    }
    if (!host)
        host = ts_request_header(req, "Host");
    if (host_is_sane(host)) {
        snprintf(out, size, "%s://%s", scheme, host);
    } else {
        snprintf(out, size, "%s://%s:%u", scheme, cfg->listen_host, (unsigned)cfg->listen_port);
    }
}

/* ---- caches ---- */

struct pool_slot {
    char key[4200];
    struct ts_reader *reader;
    bool busy;
    uint64_t used; /* tick of last release, for LRU eviction */
};

struct engine_pool {
    pthread_mutex_t lock;
    unsigned n;
    uint64_t tick;
    struct pool_slot slots[];
};

/* A file's identity: a rewrite changes mtime, size or inode, and so the key. */
static void source_key(const struct source_file *src, char *out, size_t size)
{
    snprintf(out, size, "%lld.%09ld:%lld:%llu:%u:%s", (long long)src->st.st_mtim.tv_sec,
             (long)src->st.st_mtim.tv_nsec, (long long)src->st.st_size,
             (unsigned long long)src->st.st_ino, src->page, src->path);
}

static bool engine_jp2_get(void *ctx, const char *key, struct ts_buf *out)
{
    return ts_lru_get(ctx, key, out);
}

static void engine_jp2_put(void *ctx, const char *key, const void *value, size_t len)
{
    ts_lru_put(ctx, key, value, len);
}

int engine_init(struct ts_app *app, struct ts_err *err)
{
    const struct ts_config *cfg = &app->cfg;
    /* A bad rule is a configuration error at start, not a 400 on every image later. */
    int prc = passthrough_rule_parse(cfg->passthrough, &app->passthrough, err);
    if (prc)
        return prc;
    size_t mb = 1024 * 1024;
    unsigned heavy = cfg->heavy_renders;
    if (!heavy) {
        /* Half the cores, so that big renders always leave CPU for the tiles viewers wait on
         * (the soak test saw 1.9 s tile stalls with one big render per core on 2 cores). */
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        heavy = n > 1 ? (unsigned)n / 2 : 1;
    }
    size_t jp2_bytes = (size_t)cfg->jp2_cache_mb * mb;
    if (jp2_bytes && ts_lru_create(jp2_bytes, 4, &app->jp2_blocks))
        return ts_fail(err, TS_ENOMEM, "cannot create the JPEG 2000 block cache");
    /* The LRU skips values over half a shard: offer nothing bigger. */
    app->jp2_store =
        (struct ts_block_store){app->jp2_blocks, engine_jp2_get, engine_jp2_put, jp2_bytes / 4 / 2};
    /* 32 MB is about a 2000x2000 render: tiles and thumbnails stay well below it. */
    admission_init(&app->admission, (size_t)cfg->request_memory_mb * mb,
                   (size_t)cfg->render_memory_mb * mb, 32 * mb, heavy, cfg->heavy_queue,
                   cfg->queue_wait_ms);
    /* Resolutions follow the info cache's switch: both remember facts about files. */
    size_t resolved_bytes = cfg->info_cache_mb ? 4 * mb : 0;
    if (ts_lru_create((size_t)cfg->response_cache_mb * mb, 16, &app->responses) ||
        ts_lru_create((size_t)cfg->info_cache_mb * mb, 4, &app->infos) ||
        ts_lru_create(resolved_bytes, 4, &app->resolved))
        return ts_fail(err, TS_ENOMEM, "cannot create caches");
    if (cfg->reader_cache) {
        size_t size;
        if (!ts_mul_size(cfg->reader_cache, sizeof(struct pool_slot), &size))
            return ts_fail(err, TS_ENOMEM, "reader cache too large");
        app->readers = calloc(1, sizeof *app->readers + size);
        if (!app->readers)
            return ts_fail(err, TS_ENOMEM, "cannot create reader cache");
        pthread_mutex_init(&app->readers->lock, NULL);
        app->readers->n = cfg->reader_cache;
    }
    return TS_OK;
}

void engine_free(struct ts_app *app)
{
    admission_destroy(&app->admission);
    ts_lru_destroy(app->responses);
    ts_lru_destroy(app->infos);
    ts_lru_destroy(app->resolved);
    ts_lru_destroy(app->jp2_blocks);
    app->responses = app->infos = app->resolved = app->jp2_blocks = NULL;
    if (app->readers) {
        for (unsigned i = 0; i < app->readers->n; i++)
            if (app->readers->slots[i].reader)
                ts_reader_close(app->readers->slots[i].reader);
        pthread_mutex_destroy(&app->readers->lock);
        free(app->readers);
        app->readers = NULL;
    }
}

int engine_open(struct ts_app *app, const struct source_file *src, struct ts_reader **reader,
                struct ts_err *err)
{
    struct engine_pool *pool = app->readers;
    if (pool) {
        char key[sizeof pool->slots[0].key];
        source_key(src, key, sizeof key);
        pthread_mutex_lock(&pool->lock);
        for (unsigned i = 0; i < pool->n; i++) {
            struct pool_slot *s = &pool->slots[i];
            if (s->reader && !s->busy && !strcmp(s->key, key)) {
                s->busy = true;
                *reader = s->reader;
                pthread_mutex_unlock(&pool->lock);
                return TS_OK;
            }
        }
        pthread_mutex_unlock(&pool->lock);
    }
    int fd = open(src->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ts_fail(err, errno == ENOENT || errno == ENOTDIR ? TS_ENOTFOUND : TS_EIO,
                       "cannot open image: %s", strerror(errno));
    int rc =
        ts_reader_open_fd(fd, src->page, app->jp2_blocks ? &app->jp2_store : NULL, reader, err);
    if (rc == TS_EUNSUPPORTED || rc == TS_ECODEC) {
        /* The client asked for nothing unusual: the file behind the identifier is what we
         * cannot read, which is the server's failure (500), whatever the codec's reason. */
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg[0] ? err->msg : "unknown format");
        return ts_fail(err, TS_ECODEC, "cannot read image: %s", why);
    }
    return rc;
}

void engine_release(struct ts_app *app, const struct source_file *src, struct ts_reader *reader)
{
    struct engine_pool *pool = app->readers;
    if (!reader)
        return;
    if (!pool) {
        ts_reader_close(reader);
        return;
    }
    struct ts_reader *evicted = NULL;
    pthread_mutex_lock(&pool->lock);
    pool->tick++;
    struct pool_slot *slot = NULL;
    for (unsigned i = 0; i < pool->n && !slot; i++)
        if (pool->slots[i].reader == reader)
            slot = &pool->slots[i];
    if (!slot) {
        /* A new handle takes an empty slot, or the least recently used idle one. */
        struct pool_slot *victim = NULL;
        for (unsigned i = 0; i < pool->n; i++) {
            struct pool_slot *s = &pool->slots[i];
            if (!s->reader) {
                victim = s;
                break;
            }
            if (!s->busy && (!victim || s->used < victim->used))
                victim = s;
        }
        if (victim) {
            evicted = victim->reader;
            victim->reader = reader;
            source_key(src, victim->key, sizeof victim->key);
            slot = victim;
        } else {
            evicted = reader; /* every slot is busy: nowhere to keep it */
        }
    }
    if (slot) {
        slot->busy = false;
        slot->used = pool->tick;
    }
    pthread_mutex_unlock(&pool->lock);
    if (evicted)
        ts_reader_close(evicted);
}

void engine_discard(struct ts_app *app, struct ts_reader *reader)
{
    struct engine_pool *pool = app->readers;
    if (!reader)
        return;
    /* A slot still naming the closed handle would stay busy for ever and be closed again at exit. */
    if (pool) {
        pthread_mutex_lock(&pool->lock);
        for (unsigned i = 0; i < pool->n; i++)
            if (pool->slots[i].reader == reader) {
                pool->slots[i].reader = NULL;
                pool->slots[i].busy = false;
                pool->slots[i].key[0] = '\0';
            }
        pthread_mutex_unlock(&pool->lock);
    }
    ts_reader_close(reader);
}

int engine_info(struct ts_app *app, const struct source_file *src, struct ts_image_info *info,
                struct ts_err *err)
{
    char key[4200];
    source_key(src, key, sizeof key);
    struct ts_buf b = {0};
    if (ts_lru_get(app->infos, key, &b) && b.len == sizeof *info) {
        memcpy(info, b.data, sizeof *info);
        ts_buf_free(&b);
        return TS_OK;
    }
    ts_buf_free(&b);
    struct ts_reader *reader;
    int rc = engine_open(app, src, &reader, err);
    if (rc)
        return rc;
    *info = reader->info;
    engine_release(app, src, reader);
    ts_lru_put(app->infos, key, info, sizeof *info);
    return TS_OK;
}

/* Stored as: body, content type NUL, header count byte, (name NUL value NUL)*, then the
 * body's length (size_t). The body comes first so that a hit hands the copy it got from the
 * cache to the response as it is. */
static void response_key(const struct source_file *src, const char *what, char *out, size_t size)
{
    char id[4200];
    source_key(src, id, sizeof id);
    snprintf(out, size, "%s\n%s", id, what);
}

bool engine_cache_lookup(struct ts_app *app, const struct source_file *src, const char *what,
                         struct ts_response *res)
{
    char key[12800];
    response_key(src, what, key, sizeof key);
    struct ts_buf b = {0};
    if (!ts_lru_get(app->responses, key, &b))
        return false;
    size_t body_len;
    if (b.len < sizeof body_len + 2) {
        ts_buf_free(&b);
        return false;
    }
    memcpy(&body_len, b.data + b.len - sizeof body_len, sizeof body_len);
    const char *p = (const char *)b.data + body_len, *end = (const char *)b.data + b.len -
                                                             sizeof body_len;
    if (body_len > b.len - sizeof body_len - 2) {
        ts_buf_free(&b);
        return false;
    }
    const char *type = p;
    p += strnlen(p, (size_t)(end - p)) + 1;
    unsigned nh = p < end ? (unsigned char)*p++ : 0;
    for (unsigned i = 0; i < nh && p < end; i++) {
        const char *name = p;
        p += strnlen(p, (size_t)(end - p)) + 1;
        const char *value = p;
        p += strnlen(p, (size_t)(end - p)) + 1;
        if (p > end)
            break;
        ts_response_add_header(res, name, "%s", value);
    }
    ts_response_set_type(res, type);
    ts_buf_free(&res->body);
    res->body = b;
    res->body.len = body_len;
    res->status = 200;
    return true;
}

void engine_cache_store(struct ts_app *app, const struct source_file *src, const char *what,
                        const struct ts_response *res)
{
    if (res->status != 200 || res->nheaders > 255)
        return;
    char key[12800];
    response_key(src, what, key, sizeof key);
    struct ts_buf b = {0};
    int rc = ts_buf_append(&b, res->body.data, res->body.len);
    rc = rc ? rc : ts_buf_append(&b, res->content_type, strlen(res->content_type) + 1);
    unsigned char nh = (unsigned char)res->nheaders;
    rc = rc ? rc : ts_buf_append(&b, &nh, 1);
    for (int i = 0; i < res->nheaders && !rc; i++) {
        rc = ts_buf_append(&b, res->headers[i].name, strlen(res->headers[i].name) + 1);
        rc = rc ? rc : ts_buf_append(&b, res->headers[i].value, strlen(res->headers[i].value) + 1);
    }
    size_t body_len = res->body.len;
    rc = rc ? rc : ts_buf_append(&b, &body_len, sizeof body_len);
    if (rc) {
        ts_buf_free(&b);
        return;
    }
    ts_lru_put_owned(app->responses, key, b.data, b.len); /* the cache keeps this buffer */
}
