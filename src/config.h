/* Server configuration: defaults, command-line flags and an optional INI file. */
#ifndef TESSERA_CONFIG_H
#define TESSERA_CONFIG_H

#include "util/status.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define TS_CONFIG_PATH_MAX 4096

/* --source PREFIX=TARGET: identifiers PREFIX/rest are read from TARGET (s3://bucket/prefix/,
 * http(s)://host/path/) + rest instead of from below the root. */
#define TS_SOURCE_RULES_MAX 32
struct ts_source_rule {
    char prefix[256];  /* no leading or trailing '/' */
    char target[1024]; /* as written */
};

struct ts_config {
    char root[TS_CONFIG_PATH_MAX]; /* image root directory */
    bool root_given;               /* root came from --root or FILESYSTEM_PREFIX, not the default */
    bool open_anywhere;    /* full-path identifiers may name any readable image (set by main) */
    char listen_host[256]; /* address to bind */
    uint16_t listen_port;  /* 0 = any free port (printed at start) */
    char base_url[1024];   /* public base URL, e.g. https://images.example.org */
    /* iipsrv's BASE_URL: what IIIF ids start with, the identifier following (e.g.
     * https://images.example.org/iiif/); from the environment only. Empty = from base_url. */
    char iiif_id_base[1024];
    char demo_image[TS_CONFIG_PATH_MAX]; /* served as identifier "demo" when set */
    char access_log[TS_CONFIG_PATH_MAX]; /* "-" = stdout, "" = off */
    int default_version;                 /* IIIF version for /iiif/{id} */
    int jpeg_quality;
    int webp_quality;
    int png_level;
    char passthrough[24]; /* stored JPEG tiles sent as is: quality|always|ycbcr|never|KB ("" =
                             quality) */
    uint32_t max_width, max_height; /* 0 = unlimited */
    uint64_t max_area;
    uint32_t default_tile;       /* tile size advertised for untiled sources */
    unsigned threads;            /* network threads; 0 = one per core */
    unsigned workers;            /* render threads; 0 = two per core, at least 4 */
    unsigned cache_max_age;      /* Cache-Control max-age, seconds */
    char cache_control[512];     /* whole Cache-Control value; "" = public, max-age */
    bool allow_upscaling;        /* sizes above the region (IIIF ^, 2.x above full) */
    bool iiif_extensions;        /* iipsrv's extra IIIF qualities (IIIF_EXTENSIONS) */
    int tiff_compression;        /* TIFF output: 0 none, 1 LZW, 2 deflate */
    int tiff_level;              /* deflate level 1..9; 0 = libtiff's default */
    unsigned connection_timeout; /* seconds an idle connection may stay open */
    unsigned header_timeout;     /* seconds a request may take to arrive whole */
    unsigned request_deadline;   /* seconds a request may take to be answered; then 503 */
    unsigned max_connections;    /* open HTTP connections in all */
    unsigned per_ip_connections; /* open HTTP connections from one address */
    char socket_mode[8];         /* FastCGI unix socket mode, octal (default 0660) */
    bool trust_proxy;            /* honour X-Forwarded-Proto/Host/For */
    char trusted_proxies[1024];  /* more proxies (addresses, networks) behind the peer */
    char access_log_format[16];  /* "combined" (also "") or "json" */
    char admin_token[256];       /* bearer token of /admin/; "" (and no file) = off */
    char admin_token_file[TS_CONFIG_PATH_MAX]; /* or the token, on this file's first line */
    bool reuse_port;                           /* SO_REUSEPORT: several instances on one port */
    uint64_t response_cache_mb;                /* encoded responses kept in memory; 0 = off */
    uint64_t info_cache_mb;                    /* image info (dimensions, pyramid); 0 = off */
    unsigned reader_cache;                     /* open image handles kept for reuse; 0 = off */
    uint64_t jp2_cache_mb;                     /* decoded JPEG 2000 blocks; 0 = off */
    char memcached_servers[1024];              /* shared second-level response cache; "" = off */
    unsigned memcached_ttl;                    /* seconds an entry lives there; 0 = until evicted */
    uint64_t request_memory_mb;                /* decode memory one request may use (413 beyond) */
    uint64_t render_memory_mb;        /* decode memory all large renders may use together */
    unsigned heavy_renders;           /* large renders at once; 0 = one per core */
    unsigned heavy_queue;             /* large renders that may wait; beyond: 503 */
    unsigned queue_wait_ms;           /* how long a large render waits before 503 */
    char web_dir[TS_CONFIG_PATH_MAX]; /* viewer assets (pages, OpenSeadragon); "" = built-in default
                                       */
    char metrics[8];                  /* /metrics: "on" or "off" */
    char fcgi_listen[TS_CONFIG_PATH_MAX]; /* HOST:PORT or unix socket path for FastCGI; "" = off */
    unsigned fcgi_backlog;                /* listen backlog of that socket; 0 = 1024 */
    /* iipsrv compatibility, set from its environment variables (config_env.h) */
    char fs_suffix[256];        /* FILESYSTEM_SUFFIX: appended to IIP/DeepZoom/Zoomify paths */
    char uri_map[256];          /* URI_MAP "prefix=>protocol"; "" = off */
    char iiif_delimiter[16];    /* IIIF_DELIMITER: "{id}{delim}{n}" is page n (0-based); "" = off */
    char filename_pattern[64];  /* FILENAME_PATTERN: IIP image sequences "{id}{pattern}{h}_{v}" */
    char cors[256];             /* CORS: Access-Control-Allow-Origin value; "" = "*" */
    uint32_t max_cvt;           /* MAX_CVT: largest IIP CVT side; 0 = 5000, UINT32_MAX = none */
    char copyright[1024];       /* COPYRIGHT: info.json rights (3.0) or license (2.1, 1.1) */
    char iiif_extra_info[8192]; /* IIIF_EXTRA_INFO: a JSON object merged into info.json */
    char watermark[TS_CONFIG_PATH_MAX]; /* WATERMARK: image added to every render; "" = off */
    double watermark_opacity;           /* WATERMARK_OPACITY, 0..1 (default 1) */
    double watermark_probability;       /* WATERMARK_PROBABILITY, 0..1 (default 1) */
    /* Remote sources (image/remote.h) */
    struct ts_source_rule source_rules[TS_SOURCE_RULES_MAX];
    unsigned nsource_rules;
    char s3_endpoint[1024];             /* path-style endpoint; "" = AWS's for the region */
    char s3_region[64];                 /* "" = AWS_REGION, else us-east-1 */
    char s3_access_key[256];            /* "" = AWS_ACCESS_KEY_ID */
    char s3_secret_key[256];            /* "" = AWS_SECRET_ACCESS_KEY */
    unsigned remote_connect_timeout_ms; /* to open a connection to a source */
    unsigned remote_timeout_ms;         /* one whole request to a source */
    unsigned remote_recheck;            /* seconds a version seen stays good; 0 = ask each time */
    uint64_t remote_cache_mb;           /* blocks of remote objects kept in memory; 0 = off */
    unsigned remote_block_kb;           /* their size, a power of two */
    /* The INI file's [auth] and [access NAME] sections as INI text, parsed by core/access.c. */
    char access_rules[32768];
};

void ts_config_defaults(struct ts_config *cfg);

/* Parses argv (and the INI file named by --config, read first so flags override it).
 * Returns TS_OK, TS_EINVAL with a reason, or 1 when --help/--version was printed. */
int ts_config_parse_args(struct ts_config *cfg, int argc, char **argv, struct ts_err *err);

/* Whether text may be sent as an HTTP header value as it is: printable ASCII, no CR or LF. */
bool ts_config_header_value_ok(const char *v);

/* Checks what no single option can: run after every source (environment, INI, flags). */
int ts_config_check(const struct ts_config *cfg, struct ts_err *err);

int ts_config_load_ini(struct ts_config *cfg, const char *path, struct ts_err *err);

void ts_config_usage(FILE *out, const char *prog);

/* The viewer assets' folder when --web-dir is not given: the build tree's for a binary run from
 * it, else PREFIX/share/tessera/web for the binary PREFIX/bin/tessera. */
void ts_config_default_web_dir(char *out, size_t size);

/* Calls changed(ctx, name) for every option (as named on the command line) whose value
 * differs between a and b: what a reload must apply, or say needs a restart. */
void ts_config_changes(const struct ts_config *a, const struct ts_config *b,
                       void (*changed)(void *ctx, const char *name), void *ctx);

/* The admin token: --admin-token, else the first line of --admin-token-file (read now), into
 * out ("" when neither is set). TS_EINVAL when the file cannot be read or the token is shorter
 * than 16 characters or not printable ASCII without spaces. */
int ts_config_admin_token(const struct ts_config *cfg, char *out, size_t size, struct ts_err *err);

#endif
