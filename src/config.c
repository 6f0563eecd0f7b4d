/* One option table drives the command line, the INI file and --help, so they never disagree. */
#include "config.h"
#include "util/ipset.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum opt_type {
    OPT_STR,
    OPT_U32,
    OPT_U64,
    OPT_INT,
    OPT_UINT,
    OPT_BOOL,
    OPT_LISTEN,
    OPT_PATH,
    OPT_FRACTION, /* a double from 0 to 1 */
    OPT_RULE,     /* PREFIX=TARGET, one more each time */
};

struct opt {
    const char *name; /* --name on the command line, name = value in the INI file */
    enum opt_type type;
    size_t offset;
    size_t size; /* for strings */
    long long min, max;
    const char *arg;
    const char *help;
};

#define STR_FIELD(f) offsetof(struct ts_config, f), sizeof(((struct ts_config *)0)->f)
#define NUM_FIELD(f) offsetof(struct ts_config, f), 0

static const struct opt options[] = {
    {"root", OPT_PATH, STR_FIELD(root), 0, 0, "DIR", "image root: identifiers are paths below it"},
    {"listen", OPT_LISTEN, 0, 0, 0, 0, "HOST:PORT",
     "address and port to serve HTTP on (default 127.0.0.1:8080; port 0 picks a free one)"},
    {"base-url", OPT_STR, STR_FIELD(base_url), 0, 0, "URL",
     "public base URL used in info.json ids and Link headers (default: from the Host header)"},
    {"demo", OPT_PATH, STR_FIELD(demo_image), 0, 0, "FILE", "also serve FILE as identifier 'demo'"},
    {"access-log", OPT_STR, STR_FIELD(access_log), 0, 0, "FILE",
     "append one line per request to FILE ('-' = stdout, default off; reopened on SIGHUP)"},
    {"default-version", OPT_INT, NUM_FIELD(default_version), 2, 3, "2|3",
     "IIIF Image API version served at /iiif/{id} (default 3)"},
    {"jpeg-quality", OPT_INT, NUM_FIELD(jpeg_quality), 1, 100, "N",
     "JPEG output quality (default 85)"},
    {"webp-quality", OPT_INT, NUM_FIELD(webp_quality), 1, 100, "N",
     "WebP output quality (default 80)"},
    {"png-level", OPT_INT, NUM_FIELD(png_level), 0, 9, "N", "PNG zlib level (default 3)"},
    {"passthrough", OPT_STR, STR_FIELD(passthrough), 0, 0, "quality|always|ycbcr|never|KB",
     "send stored JPEG tiles without re-encoding: YCbCr or grey ones stored at most 5 above "
     "--jpeg-quality, always, YCbCr ones only, never, or up to KB (default quality)"},
    {"max-width", OPT_U32, NUM_FIELD(max_width), 0, UINT32_MAX, "N",
     "largest output width served and advertised as maxWidth (0 = no limit)"},
    {"max-height", OPT_U32, NUM_FIELD(max_height), 0, UINT32_MAX, "N",
     "largest output height (0 = same as max-width)"},
    {"max-area", OPT_U64, NUM_FIELD(max_area), 0, LLONG_MAX, "N",
     "largest output area in pixels (default 25000000, i.e. 5000x5000)"},
    {"tile-size", OPT_U32, NUM_FIELD(default_tile), 16, 8192, "N",
     "tile size advertised for untiled sources (default 512)"},
    {"threads", OPT_UINT, NUM_FIELD(threads), 0, 1024, "N",
     "HTTP: network threads; FastCGI: requests rendered at once (default: one per core)"},
    {"workers", OPT_UINT, NUM_FIELD(workers), 0, 1024, "N",
     "threads that read, render and encode (default: two per core, at least 4)"},
    {"cache-max-age", OPT_UINT, NUM_FIELD(cache_max_age), 0, UINT_MAX, "SECONDS",
     "Cache-Control max-age of images and info.json (default 86400)"},
    {"cache-control", OPT_STR, STR_FIELD(cache_control), 0, 0, "VALUE",
     "the whole Cache-Control value of images and info.json, as iipsrv's CACHE_CONTROL "
     "(default: public, max-age=cache-max-age)"},
    {"allow-upscaling", OPT_BOOL, NUM_FIELD(allow_upscaling), 0, 1, NULL,
     "serve sizes above the region (IIIF '^', 2.x sizes above full); false refuses them "
     "(default true)"},
    {"iiif-extensions", OPT_BOOL, NUM_FIELD(iiif_extensions), 0, 1, NULL,
     "also serve iipsrv's IIIF qualities negative, stretch, equalization and log, and list them "
     "in info.json, as iipsrv's IIIF_EXTENSIONS (default false)"},
    {"tiff-compression", OPT_INT, NUM_FIELD(tiff_compression), 0, 2, "0|1|2",
     "TIFF output compression: 0 none, 1 LZW, 2 deflate (default 2)"},
    {"tiff-level", OPT_INT, NUM_FIELD(tiff_level), 0, 9, "N",
     "deflate level of TIFF output, 1-9; 0 = libtiff's default (default 0)"},
    {"connection-timeout", OPT_UINT, NUM_FIELD(connection_timeout), 1, 3600, "SECONDS",
     "close idle or slow connections after this long (default 30)"},
    {"header-timeout", OPT_UINT, NUM_FIELD(header_timeout), 1, 3600, "SECONDS",
     "time a request may take to arrive whole, however it trickles (default 10)"},
    {"request-deadline", OPT_UINT, NUM_FIELD(request_deadline), 1, 3600, "SECONDS",
     "time a request may take to be answered; past it the render stops: 503 (default 30)"},
    {"max-connections", OPT_UINT, NUM_FIELD(max_connections), 16, 1000000, "N",
     "open connections in all, HTTP or FastCGI (default 4096)"},
    {"per-ip-connections", OPT_UINT, NUM_FIELD(per_ip_connections), 1, 1000000, "N",
     "open HTTP connections from one address (default 512)"},
    {"socket-mode", OPT_STR, STR_FIELD(socket_mode), 0, 0, "OCTAL",
     "permissions of a FastCGI unix socket (default 0660)"},
    {"reuse-port", OPT_BOOL, NUM_FIELD(reuse_port), 0, 1, NULL,
     "share the port with other instances (SO_REUSEPORT); otherwise a busy port is an error"},
    {"trust-proxy", OPT_BOOL, NUM_FIELD(trust_proxy), 0, 1, NULL,
     "behind a proxy you run: build ids from X-Forwarded-Proto/Host, and log the client "
     "address from X-Forwarded-For (its rightmost address that is not a trusted proxy)"},
    {"trusted-proxies", OPT_STR, STR_FIELD(trusted_proxies), 0, 0, "ADDR[/BITS],...",
     "with --trust-proxy: further proxies (addresses or networks) that X-Forwarded-For passes "
     "through, skipped when looking for the client (default: only the connecting peer)"},
    {"access-log-format", OPT_STR, STR_FIELD(access_log_format), 0, 0, "combined|json",
     "access log lines in the Combined Log Format, or one JSON object a line (default combined)"},
    {"admin-token", OPT_STR, STR_FIELD(admin_token), 0, 0, "TOKEN",
     "bearer token (16 or more printable characters) that opens POST /admin/purge?id=ID; "
     "without a token the admin endpoint does not exist (prefer --admin-token-file: flags "
     "show in ps)"},
    {"admin-token-file", OPT_PATH, STR_FIELD(admin_token_file), 0, 0, "FILE",
     "read the admin token from the first line of FILE (again on SIGHUP)"},
    {"response-cache", OPT_U64, NUM_FIELD(response_cache_mb), 0, 1 << 20, "MB",
     "memory for encoded responses (tiles, info.json); 0 = off (default 256)"},
    {"info-cache", OPT_U64, NUM_FIELD(info_cache_mb), 0, 1 << 20, "MB",
     "memory for image information by path, mtime and size; 0 = off (default 8)"},
    {"reader-cache", OPT_UINT, NUM_FIELD(reader_cache), 0, 4096, "N",
     "open image handles kept for reuse; 0 = off (default 64)"},
    {"jp2-cache", OPT_U64, NUM_FIELD(jp2_cache_mb), 0, 1 << 20, "MB",
     "memory for decoded JPEG 2000 blocks that neighbouring tiles share; 0 = off (default 256)"},
    {"memcached", OPT_STR, STR_FIELD(memcached_servers), 0, 0, "HOST[:PORT],...",
     "share rendered responses with other servers through memcached, as iipsrv's "
     "MEMCACHED_SERVERS; a memcached that is down only costs a warning (default off)"},
    {"memcached-ttl", OPT_UINT, NUM_FIELD(memcached_ttl), 0, UINT_MAX, "SECONDS",
     "how long an entry lives in memcached, as iipsrv's MEMCACHED_TIMEOUT; 0 = until evicted "
     "(default 86400)"},
    {"request-memory", OPT_U64, NUM_FIELD(request_memory_mb), 1, 1 << 20, "MB",
     "decode memory one request may use; larger requests get 413 (default 2048)"},
    {"render-memory", OPT_U64, NUM_FIELD(render_memory_mb), 1, 1 << 20, "MB",
     "decode memory all large renders may use together (default 4096)"},
    {"heavy-renders", OPT_UINT, NUM_FIELD(heavy_renders), 0, 1024, "N",
     "large renders running at once, at low priority; tiles never wait for them (default: one "
     "per core)"},
    {"heavy-queue", OPT_UINT, NUM_FIELD(heavy_queue), 0, 4096, "N",
     "large renders that may wait for a slow-lane worker; beyond that 503 at once (default 32)"},
    {"queue-wait-ms", OPT_UINT, NUM_FIELD(queue_wait_ms), 0, 600000, "MS",
     "how long a large render waits for room before 503 Retry-After (default 3000)"},
    {"cors", OPT_STR, STR_FIELD(cors), 0, 0, "ORIGIN",
     "Access-Control-Allow-Origin value (default *)"},
    {"web-dir", OPT_PATH, STR_FIELD(web_dir), 0, 0, "DIR",
     "viewer pages and scripts (default: share/tessera/web beside the installed binary's bin/, "
     "or the build tree's web/ for a binary run from its build tree)"},
    {"metrics", OPT_STR, STR_FIELD(metrics), 0, 0, "on|off",
     "answer /metrics (Prometheus text) on this server's own address; keep it off the public "
     "side of a proxy (default on)"},
    {"fcgi", OPT_STR, STR_FIELD(fcgi_listen), 0, 0, "HOST:PORT|PATH",
     "serve FastCGI on a TCP address or unix socket instead of HTTP"},
    /* iipsrv's own spelling, as Debian's iipsrv.service passes it. */
    {"bind", OPT_STR, STR_FIELD(fcgi_listen), 0, 0, "HOST:PORT|PATH", "the same as --fcgi"},
    {"watermark", OPT_PATH, STR_FIELD(watermark), 0, 0, "FILE",
     "add this image (any format Tessera reads; its alpha is honoured) to every rendered "
     "image and tile, as iipsrv's WATERMARK (default none)"},
    {"watermark-opacity", OPT_FRACTION, NUM_FIELD(watermark_opacity), 0, 1, "0..1",
     "strength of the watermark, as WATERMARK_OPACITY (default 1)"},
    {"watermark-probability", OPT_FRACTION, NUM_FIELD(watermark_probability), 0, 1, "0..1",
     "chance that a tile (or each block of twice a tile in larger renders) gets the watermark, "
     "as WATERMARK_PROBABILITY; the draw is fixed per request (default 1)"},
    {"source", OPT_RULE, 0, 0, 0, 0, "PREFIX=TARGET",
     "read identifiers PREFIX/... from TARGET instead of the root: s3://BUCKET/PATH/, "
     "http(s)://HOST/PATH/ or another folder /PATH/ (repeat for more; the longest matching "
     "PREFIX wins)"},
    {"s3-endpoint", OPT_STR, STR_FIELD(s3_endpoint), 0, 0, "URL",
     "S3-compatible endpoint (MinIO, Ceph, ...), addressed path-style (default: AWS's for the "
     "region)"},
    {"s3-region", OPT_STR, STR_FIELD(s3_region), 0, 0, "REGION",
     "region S3 requests are signed for (default: AWS_REGION, else us-east-1)"},
    {"s3-access-key", OPT_STR, STR_FIELD(s3_access_key), 0, 0, "KEY",
     "S3 access key id (default: AWS_ACCESS_KEY_ID)"},
    {"s3-secret-key", OPT_STR, STR_FIELD(s3_secret_key), 0, 0, "SECRET",
     "S3 secret key, never logged; prefer the INI file or AWS_SECRET_ACCESS_KEY to the command "
     "line"},
    {"remote-connect-timeout-ms", OPT_UINT, NUM_FIELD(remote_connect_timeout_ms), 1, 600000, "MS",
     "time to connect to a remote source before 504 (default 2000)"},
    {"remote-timeout-ms", OPT_UINT, NUM_FIELD(remote_timeout_ms), 1, 600000, "MS",
     "time one request to a remote source may take, stalls included, before 504 (default "
     "10000)"},
    {"remote-recheck", OPT_UINT, NUM_FIELD(remote_recheck), 0, 86400, "SECONDS",
     "how long a remote object's version (ETag, size) is trusted before the source is asked "
     "again; 0 = ask on every request (default 5)"},
    {"remote-cache", OPT_U64, NUM_FIELD(remote_cache_mb), 0, 1 << 20, "MB",
     "memory for blocks of remote images, shared by requests for one version of an object; "
     "0 = off (default 256)"},
    {"remote-block", OPT_UINT, NUM_FIELD(remote_block_kb), 4, 16384, "KB",
     "size of those blocks, a power of two: what a tile's read of a remote TIFF or JPEG 2000 "
     "fetches at least (default 64)"},
    {"backlog", OPT_UINT, NUM_FIELD(fcgi_backlog), 1, 65535, "N",
     "listen backlog of the FastCGI socket, opened or inherited (default 1024)"},
};

void ts_config_defaults(struct ts_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->root, sizeof cfg->root, ".");
    snprintf(cfg->listen_host, sizeof cfg->listen_host, "127.0.0.1");
    cfg->listen_port = 8080;
    cfg->default_version = 3;
    cfg->jpeg_quality = 85;
    cfg->webp_quality = 80;
    cfg->png_level = 3;
    cfg->max_area = 25000000ull;
    cfg->default_tile = 512;
    cfg->cache_max_age = 86400;
    cfg->allow_upscaling = true;
    cfg->tiff_compression = 2;
    cfg->connection_timeout = 30;
    cfg->header_timeout = 10;
    cfg->request_deadline = 30;
    cfg->max_connections = 4096;
    cfg->per_ip_connections = 512;
    snprintf(cfg->socket_mode, sizeof cfg->socket_mode, "0660");
    cfg->response_cache_mb = 256;
    cfg->info_cache_mb = 8;
    cfg->reader_cache = 64;
    /* On: a viewer asks for a block's neighbouring tiles, and decoding the block once costs
     * less CPU than decoding each tile (measured: 3.1 vs 3.6 ms a tile on a 512-tiled JP2, 8.6
     * vs 12.8 ms on a single-tile one, cold files, 2 cores); a lone tile alone costs more. */
    cfg->jp2_cache_mb = 256;
    cfg->memcached_ttl = 86400; /* iipsrv's MEMCACHED_TIMEOUT default */
    cfg->request_memory_mb = 2048;
    cfg->render_memory_mb = 4096;
    /* A waiting render holds only its plan and an open file, and the request deadline bounds
     * its wait: room for 16 clients asking big renders at once without a 503. */
    cfg->heavy_queue = 32;
    cfg->queue_wait_ms = 3000;
    cfg->watermark_opacity = 1.0;
    cfg->watermark_probability = 1.0;
    snprintf(cfg->metrics, sizeof cfg->metrics, "on");
    snprintf(cfg->filename_pattern, sizeof cfg->filename_pattern, "_pyr_"); /* iipsrv's */
    /* A source on the same network connects in milliseconds: a short wait keeps a worker from
     * hanging on one that is gone. */
    cfg->remote_connect_timeout_ms = 2000;
    cfg->remote_timeout_ms = 10000;
    cfg->remote_recheck = 5;
    cfg->remote_cache_mb = 256;
    cfg->remote_block_kb = 64;
}

bool ts_config_header_value_ok(const char *v)
{
    for (; *v; v++)
        if (*v < 0x20 || *v > 0x7e)
            return false;
    return true;
}

int ts_config_check(const struct ts_config *cfg, struct ts_err *err)
{
    /* A CR or LF would split the header into two (response splitting); anything outside
     * printable ASCII is not a valid field value on every front end. */
    if (!ts_config_header_value_ok(cfg->cache_control))
        return ts_fail(err, TS_EINVAL,
                       "cache-control (CACHE_CONTROL) must be printable ASCII on one line");
    unsigned kb = cfg->remote_block_kb;
    if (kb & (kb - 1))
        return ts_fail(err, TS_EINVAL, "--remote-block must be a power of two, got %u", kb);
    if (strcmp(cfg->metrics, "on") != 0 && strcmp(cfg->metrics, "off") != 0)
        return ts_fail(err, TS_EINVAL, "--metrics wants on or off, got '%s'", cfg->metrics);
    if (cfg->access_log_format[0] && strcmp(cfg->access_log_format, "combined") != 0 &&
        strcmp(cfg->access_log_format, "json") != 0)
        return ts_fail(err, TS_EINVAL, "--access-log-format wants combined or json, got '%s'",
                       cfg->access_log_format);
    if (cfg->admin_token[0] && cfg->admin_token_file[0])
        return ts_fail(err, TS_EINVAL, "give --admin-token or --admin-token-file, not both");
    struct ts_ipset proxies;
    return ts_ipset_parse(cfg->trusted_proxies, &proxies, err);
}

static int token_check(const char *token, const char *from, struct ts_err *err)
{
    size_t n = strlen(token);
    if (n < 16)
        return ts_fail(err, TS_EINVAL, "%s: the admin token must have 16 characters or more", from);
    for (size_t i = 0; i < n; i++)
        if (token[i] <= 0x20 || token[i] > 0x7e)
            return ts_fail(err, TS_EINVAL,
                           "%s: the admin token must be printable ASCII without spaces", from);
    return TS_OK;
}

int ts_config_admin_token(const struct ts_config *cfg, char *out, size_t size, struct ts_err *err)
{
    out[0] = '\0';
    if (cfg->admin_token[0]) {
        if (strlen(cfg->admin_token) >= size)
            return ts_fail(err, TS_EINVAL, "--admin-token: too long");
        snprintf(out, size, "%s", cfg->admin_token);
        return token_check(out, "--admin-token", err);
    }
    if (!cfg->admin_token_file[0])
        return TS_OK;
    FILE *f = fopen(cfg->admin_token_file, "r");
    if (!f)
        return ts_fail(err, TS_EINVAL, "cannot read the admin token file %s: %s",
                       cfg->admin_token_file, strerror(errno));
    bool got = fgets(out, (int)size, f) != NULL;
    fclose(f);
    size_t n = got ? strlen(out) : 0;
    if (n && out[n - 1] != '\n' && n == size - 1) {
        out[0] = '\0';
        return ts_fail(err, TS_EINVAL, "%s: the admin token is too long", cfg->admin_token_file);
    }
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = '\0';
    int rc = token_check(out, cfg->admin_token_file, err);
    if (rc)
        out[0] = '\0';
    return rc;
}

static bool option_differs(const struct opt *o, const struct ts_config *a,
                           const struct ts_config *b)
{
    const char *x = (const char *)a + o->offset, *y = (const char *)b + o->offset;
    switch (o->type) {
    case OPT_STR:
    case OPT_PATH: return strcmp(x, y) != 0;
    case OPT_LISTEN:
        return strcmp(a->listen_host, b->listen_host) != 0 || a->listen_port != b->listen_port;
    case OPT_U32: return *(const uint32_t *)x != *(const uint32_t *)y;
    case OPT_U64: return *(const uint64_t *)x != *(const uint64_t *)y;
    case OPT_INT: return *(const int *)x != *(const int *)y;
    case OPT_UINT: return *(const unsigned *)x != *(const unsigned *)y;
    case OPT_BOOL: return *(const bool *)x != *(const bool *)y;
    case OPT_FRACTION: return *(const double *)x != *(const double *)y;
    case OPT_RULE:
        return a->nsource_rules != b->nsource_rules ||
               memcmp(a->source_rules, b->source_rules,
                      a->nsource_rules * sizeof a->source_rules[0]) != 0;
    }
    return false;
}

void ts_config_changes(const struct ts_config *a, const struct ts_config *b,
                       void (*changed)(void *ctx, const char *name), void *ctx)
{
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
        if (option_differs(&options[i], a, b))
            changed(ctx, options[i].name);
}

static const struct opt *find_option(const char *name)
{
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
        if (strcmp(options[i].name, name) == 0)
            return &options[i];
    return NULL;
}

static int parse_number(const char *text, long long min, long long max, long long *out)
{
    char *end;
    if (!text || !*text || *text == '-' || *text == '+' || *text == ' ')
        return TS_EINVAL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end || v > (unsigned long long)max || (long long)v < min)
        return TS_EINVAL;
    *out = (long long)v;
    return TS_OK;
}

static int parse_fraction(const char *name, const char *text, double *out, struct ts_err *err)
{
    char *end = NULL;
    errno = 0;
    double v = text && *text && *text != ' ' ? strtod(text, &end) : NAN;
    if (isnan(v) || errno || end == text || *end || !(v >= 0.0 && v <= 1.0))
        return ts_fail(err, TS_EINVAL, "--%s wants a number from 0 to 1, got '%s'", name,
                       text ? text : "");
    *out = v;
    return TS_OK;
}

static int parse_listen(struct ts_config *cfg, const char *value, struct ts_err *err)
{
    const char *colon = strrchr(value, ':');
    long long port;
    if (!colon || parse_number(colon + 1, 0, 65535, &port))
        return ts_fail(err, TS_EINVAL, "--listen wants HOST:PORT, got '%s'", value);
    size_t hostlen = (size_t)(colon - value);
    if (hostlen == 0 || hostlen >= sizeof cfg->listen_host)
        return ts_fail(err, TS_EINVAL, "--listen: bad host in '%s'", value);
    /* [::1]:8080 */
    if (value[0] == '[' && value[hostlen - 1] == ']') {
        value++;
        hostlen -= 2;
    }
    memcpy(cfg->listen_host, value, hostlen);
    cfg->listen_host[hostlen] = '\0';
    cfg->listen_port = (uint16_t)port;
    return TS_OK;
}

/* "PREFIX=TARGET": a folder of identifiers and the remote place they are read from. */
static int add_rule(struct ts_config *cfg, const char *value, struct ts_err *err)
{
    const char *eq = strchr(value, '=');
    if (!eq)
        return ts_fail(err, TS_EINVAL, "--source wants PREFIX=TARGET, got '%s'", value);
    const char *prefix = value + strspn(value, "/"), *target = eq + 1;
    size_t plen = (size_t)(eq - prefix);
    while (plen && prefix[plen - 1] == '/')
        plen--;
    if (eq < prefix || !plen)
        return ts_fail(err, TS_EINVAL, "--source: '%s' has no PREFIX before '='", value);
    if (strncmp(target, "s3://", 5) && strncmp(target, "http://", 7) &&
        strncmp(target, "https://", 8) && target[0] != '/')
        return ts_fail(err, TS_EINVAL,
                       "--source: TARGET must be a folder (/path/) or start with s3://, http:// "
                       "or https://, got '%s'",
                       target);
    if (!ts_config_header_value_ok(target) || strchr(target, ' '))
        return ts_fail(err, TS_EINVAL, "--source: TARGET '%s' has spaces or control characters",
                       target);
    if (cfg->nsource_rules == TS_SOURCE_RULES_MAX)
        return ts_fail(err, TS_EINVAL, "--source: at most %d rules", TS_SOURCE_RULES_MAX);
    struct ts_source_rule *r = &cfg->source_rules[cfg->nsource_rules];
    if (plen >= sizeof r->prefix || strlen(target) >= sizeof r->target)
        return ts_fail(err, TS_EINVAL, "--source: '%s' is too long", value);
    memcpy(r->prefix, prefix, plen);
    r->prefix[plen] = '\0';
    memcpy(r->target, target, strlen(target) + 1);
    cfg->nsource_rules++;
    return TS_OK;
}

static int set_option(struct ts_config *cfg, const struct opt *o, const char *value,
                      struct ts_err *err)
{
    char *base = (char *)cfg + o->offset;
    long long n;
    switch (o->type) {
    case OPT_LISTEN: return parse_listen(cfg, value, err);
    case OPT_RULE: return add_rule(cfg, value, err);
    case OPT_STR:
    case OPT_PATH:
        if (strlen(value) >= o->size)
            return ts_fail(err, TS_EINVAL, "--%s: value too long", o->name);
        memcpy(base, value, strlen(value) + 1);
        if (o->offset == offsetof(struct ts_config, root))
            cfg->root_given = true;
        return TS_OK;
    case OPT_BOOL:
        if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes") ||
            !strcmp(value, "on"))
            *(bool *)base = true;
        else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no") ||
                 !strcmp(value, "off"))
            *(bool *)base = false;
        else
            return ts_fail(err, TS_EINVAL, "--%s wants true or false, got '%s'", o->name, value);
        return TS_OK;
    case OPT_FRACTION: return parse_fraction(o->name, value, (double *)base, err);
    default: break;
    }
    if (parse_number(value, o->min, o->max, &n))
        return ts_fail(err, TS_EINVAL, "--%s wants a number from %lld to %lld, got '%s'", o->name,
                       o->min, o->max, value);
    switch (o->type) {
    case OPT_U32: *(uint32_t *)base = (uint32_t)n; break;
    case OPT_U64: *(uint64_t *)base = (uint64_t)n; break;
    case OPT_INT: *(int *)base = (int)n; break;
    case OPT_UINT: *(unsigned *)base = (unsigned)n; break;
    default: break;
    }
    return TS_OK;
}

struct ini_ctx {
    struct ts_config *cfg;
    struct ts_err *err;
    int status;
};

static int on_ini_entry(void *user, const char *section, const char *name, const char *value)
{
    struct ini_ctx *ctx = user;
    /* Access rules repeat their keys in one section per rule: kept whole for core/access.c. */
    if (!strcmp(section, "auth") || !strncmp(section, "access ", 7)) {
        char *rules = ctx->cfg->access_rules;
        size_t have = strlen(rules), cap = sizeof ctx->cfg->access_rules;
        int n = snprintf(rules + have, cap - have, "[%s]\n%s = %s\n", section, name, value);
        if (n < 0 || (size_t)n >= cap - have) {
            rules[have] = '\0';
            ctx->status = ts_fail(ctx->err, TS_EINVAL, "access rules too long");
            return 0;
        }
        return 1;
    }
    /* Other keys are unique across sections, so [server] and friends are cosmetic. */
    const struct opt *o = find_option(name);
    if (!o) {
        ctx->status = ts_fail(ctx->err, TS_EINVAL, "unknown setting '%s'", name);
        return 0;
    }
    if (o->type == OPT_BOOL && !*value)
        value = "true";
    ctx->status = set_option(ctx->cfg, o, value, ctx->err);
    return ctx->status == TS_OK;
}

int ts_config_load_ini(struct ts_config *cfg, const char *path, struct ts_err *err)
{
    struct ini_ctx ctx = {cfg, err, TS_OK};
    int line = ini_parse(path, on_ini_entry, &ctx);
    if (line < 0)
        return ts_fail(err, TS_EINVAL, "cannot read config file %s", path);
    if (line > 0) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", ctx.status ? err->msg : "syntax error");
        return ts_fail(err, TS_EINVAL, "%s:%d: %s", path, line, why);
    }
    return TS_OK;
}

/* Set by the build (web/CMakeLists.txt); these fallbacks only keep the file compilable alone. */
#ifndef TESSERA_WEB_DIR
#define TESSERA_WEB_DIR "web"
#endif
#ifndef TESSERA_BUILD_DIR
#define TESSERA_BUILD_DIR ""
#endif
#ifndef TESSERA_WEB_FROM_BINDIR
#define TESSERA_WEB_FROM_BINDIR "../share/tessera/web"
#endif
#ifndef TESSERA_WEB_INSTALL_DIR
#define TESSERA_WEB_INSTALL_DIR "/usr/local/share/tessera/web"
#endif

void ts_config_default_web_dir(char *out, size_t size)
{
    /* Found from the binary's own place rather than a path fixed at configure time, so that an
     * installation works under whatever prefix it was put (cmake --install --prefix, or the
     * Debian package's /usr), and a binary in the build tree keeps using the build tree's. */
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        snprintf(out, size, "%s", TESSERA_WEB_INSTALL_DIR);
        return;
    }
    exe[n] = '\0';
    char build_dir[PATH_MAX];
    size_t build = TESSERA_BUILD_DIR[0] && realpath(TESSERA_BUILD_DIR, build_dir)
                       ? strlen(build_dir)
                       : 0; /* the kernel names the binary by its real path */
    if (build && !strncmp(exe, build_dir, build) && exe[build] == '/') {
        snprintf(out, size, "%s", TESSERA_WEB_DIR);
        return;
    }
    char *slash = strrchr(exe, '/');
    size_t dir = slash ? (size_t)(slash - exe) : 0;
    int len = snprintf(out, size, "%.*s/%s", (int)dir, exe, TESSERA_WEB_FROM_BINDIR);
    if (len < 0 || (size_t)len >= size)
        snprintf(out, size, "%s", TESSERA_WEB_INSTALL_DIR);
}

void ts_config_usage(FILE *out, const char *prog)
{
    fprintf(out,
            "Usage: %s [--config FILE] [options]\n"
            "Tessera serves IIIF Image API 3.0, 2.1 and 1.1 from the images under --root.\n\n"
            "Options (each may also be set as 'name = value' in the INI file):\n",
            prog);
    fprintf(out, "  --%-28s %s\n", "config FILE",
            "read settings from an INI file first; SIGHUP reads it (and the flags) again and "
            "applies limits, encoder settings, cache sizes and the log without a restart");
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "%s%s%s", options[i].name, options[i].arg ? " " : "",
                 options[i].arg ? options[i].arg : "");
        fprintf(out, "  --%-28s %s\n", flag, options[i].help);
    }
    fprintf(out, "  --%-28s %s\n", "help", "show this help");
    fprintf(out, "  --%-28s %s\n", "version", "show the version");
}

/* Splits "--name=value" or "--name value"; returns the option or NULL. */
static const struct opt *match_flag(const char *arg, char *name, size_t name_size,
                                    const char **inline_value)
{
    if (strncmp(arg, "--", 2) != 0)
        return NULL;
    arg += 2;
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    if (len >= name_size)
        return NULL;
    memcpy(name, arg, len);
    name[len] = '\0';
    *inline_value = eq ? eq + 1 : NULL;
    return find_option(name);
}

int ts_config_parse_args(struct ts_config *cfg, int argc, char **argv, struct ts_err *err)
{
    /* The INI file comes first so that flags given beside it win. */
    for (int i = 1; i < argc; i++) {
        const char *path = NULL;
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            path = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9))
            path = argv[i] + 9;
        if (path) {
            int rc = ts_config_load_ini(cfg, path, err);
            if (rc)
                return rc;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            ts_config_usage(stdout, argv[0]);
            return 1;
        }
        if (!strcmp(arg, "--version")) {
            printf("tessera %s\n", TESSERA_VERSION);
            return 1;
        }
        if (!strcmp(arg, "--config")) {
            i++;
            continue;
        }
        if (!strncmp(arg, "--config=", 9))
            continue;
        char name[64];
        const char *value;
        const struct opt *o = match_flag(arg, name, sizeof name, &value);
        if (!o)
            return ts_fail(err, TS_EINVAL, "unknown option '%s' (see --help)", arg);
        if (!value) {
            if (o->type == OPT_BOOL)
                value = "true";
            else if (i + 1 < argc)
                value = argv[++i];
            else
                return ts_fail(err, TS_EINVAL, "--%s needs a value", o->name);
        }
        int rc = set_option(cfg, o, value, err);
        if (rc)
            return rc;
    }
    return ts_config_check(cfg, err);
}
