/* A job: what a protocol asks the core to produce, and the core's state while producing it. */
#ifndef TESSERA_JOB_H
#define TESSERA_JOB_H

#include "core/response.h"
#include "encode/encode.h"
#include "image/reader.h"
#include "image/source.h"
#include "render/plan.h"
#include "util/buf.h"
#include "util/cancel.h"
#include "util/status.h"

#include <stdbool.h>

/* Request text that names a response (cache key, validator input): beyond this, 414. */
#define TS_JOB_KEY_MAX (64 * 1024)
#define TS_JOB_TEXT_MAX (64 * 1024 * 1024)
#define TS_JOB_HEADERS 6

struct ts_app;
struct ts_job;
struct ts_live;
struct ts_access_rule;

enum ts_job_kind {
    TS_JOB_REPLY, /* the protocol answered already (out is filled): health, preflight */
    TS_JOB_IMAGE, /* about one image: the core resolves it, then produce() says what to send */
    TS_JOB_PAGE,  /* no image: produce() builds the page (folder listings) */
    TS_JOB_FILE,  /* a file of the web front (file: a path already confined by the protocol) */
    TS_JOB_PURGE, /* the admin's: forget the identifier's image in every cache */
};

/* How long clients may keep a successful answer. */
enum ts_freshness {
    TS_FRESH_PUBLIC,     /* images and info.json: max-age from the configuration */
    TS_FRESH_REVALIDATE, /* pages and their assets: no-cache (revalidate, a cheap 304) */
};

/* What produce() says to send: a text, or an image plan rendered and encoded by the core. */
struct ts_product {
    int http_status;  /* 200, or 303 (with a Location header) */
    char reason[200]; /* for the server's log when http_status is an error ("" = none given) */
    bool is_text;
    struct ts_buf text;
    char type[160];
    struct ts_plan plan;
    bool own_encoder; /* enc below instead of the server's (and no stored-tile passthrough) */
    struct encode_options enc;
    struct ts_header headers[TS_JOB_HEADERS];
    int nheaders;
};

/* info is NULL for pages and for jobs that do not need it. Pure: no I/O but folder listings
 * and their sidecar files (an image's own sidecars come read, as companions). */
typedef int (*ts_produce_fn)(const struct ts_app *app, const struct ts_job *job,
                             const struct ts_image_info *info, struct ts_product *out,
                             struct ts_err *err);

/* One image the core read for a job that quotes samples (below): view `view` (a horizontal
 * angle of the image sequence, 0 for a single image), the index-th of count. img is NULL on
 * the last call, which closes the text. */
struct ts_sample {
    uint32_t index, count;
    int32_t view;
    const struct ts_image *img;
};

/* Appends what one image's samples say to out->text. TS_DECLINED: list no more images (the
 * closing call still comes). */
typedef int (*ts_sample_fn)(const struct ts_app *app, const struct ts_job *job,
                            const struct ts_image_info *info, const struct ts_sample *s,
                            struct ts_product *out, struct ts_err *err);

/* A protocol whose errors have their own shape (IIP's "Error/7:..."). format() is called for
 * errors that carry err->code; it appends the body. page(), when set, builds the body of every
 * error from its HTTP status and public reason (the web front's HTML pages). */
struct ts_error_style {
    const char *type;
    bool no_cache;
    int (*format)(const struct ts_err *err, struct ts_buf *body);
    int (*page)(int http_status, const char *reason, struct ts_buf *body);
};

/* A small file beside the image that shapes a text answer (a manifest's sidecar): named by the
 * protocol, read by the core once the image is resolved. Its bytes join the job's key, so the
 * validators and cached answers change whenever the file does. */
#define TS_JOB_COMPANIONS 2
#define TS_COMPANION_MAX (256 * 1024)
struct ts_companion {
    const char *name; /* a static string; NULL = unused */
    bool beside;      /* name follows the image's own file name ("a.tif" + ".json"); else it
                         is a file of the image's folder ("_folder.json") */
    /* Filled by the core. */
    bool found;
    struct ts_buf text; /* its bytes (when found) */
    char problem[256];  /* why a file that is there was not read: too large, unreadable */
    char rel[PATH_MAX]; /* its path below the image root, for messages */
};

/* Pages a job lists at most (TS_JOB_IMAGE with wants_pages): a manifest of a thousand canvases
 * is already over a megabyte. */
#define TS_JOB_PAGES_MAX 1000

/* The access rules' answer for one request (core/access.h), decided once by the core. */
enum ts_access_tier {
    TS_TIER_FULL,     /* no rule, an open one, or credentials that satisfy it */
    TS_TIER_DEGRADED, /* served smaller and/or watermarked */
    TS_TIER_DENIED,   /* nothing of the image: 401 or 403 */
};

struct ts_access_verdict {
    const struct ts_access_rule *rule; /* the rule that matched the image, NULL = none */
    enum ts_access_tier tier;
    int deny; /* TS_EUNAUTH (no credentials) or TS_EFORBIDDEN (wrong ones) when denied */
    /* Set by the protocol: answer for the bearer token (a probe), not for the cookie; the
     * answer describes the image (info.json) and is served, with the services, when denied. */
    bool probe;
    bool describes;
    bool may_call;      /* set by the core on a worker: the authorization hook may be asked */
    struct ts_buf base; /* the public base the auth services are named under */
};

struct ts_job {
    enum ts_job_kind kind;
    /* Set by the protocol. */
    struct ts_buf identifier; /* decoded; IMAGE, or FILE pages that show one image */
    struct ts_buf key;        /* names the response (capped at TS_JOB_KEY_MAX) */
    struct ts_buf file;       /* FILE: the confined path */
    bool needs_info;          /* produce() wants the image information */
    /* An IIP image sequence: when the identifier names no file, the core serves view
     * (seq_h, seq_v) of "{identifier}{FILENAME_PATTERN}{h}_{v}" instead, as iipsrv does. */
    bool sequence;
    int32_t seq_h, seq_v;
    bool wants_views; /* produce() lists the sequence's views (views below) */
    bool cacheable;   /* keep the answer in the response cache */
    bool vary_accept; /* the answer depends on Accept */
    bool vary_host;   /* the answer names the public base taken from the request */
    bool compress;    /* a text answer that may go gzip-compressed (by Accept-Encoding) */
    bool wants_pages; /* produce() lists the pages of a multi-page file (pages below) */
    struct ts_companion companions[TS_JOB_COMPANIONS];
    enum ts_freshness freshness;
    ts_produce_fn produce;
    /* A job whose answer quotes sample values (IIP SPECTRA, PFL): produce() returns a text
     * product and, in out.plan, the pixels to read; the core reads them raw (no watermark)
     * from the image, or from every horizontal view of the sequence it is a view of (at
     * seq_v, with wants_views set), and hands each to sample(). */
    ts_sample_fn sample;
    void *ctx; /* the protocol's parsed request, freed with ctx_free */
    void (*ctx_free)(void *ctx);
    const struct ts_error_style *errors;
    unsigned route; /* an enum ts_route (core/metrics.h), set by the router for the counts */
    struct ts_header headers[TS_JOB_HEADERS]; /* added to every successful answer */
    int nheaders;
    struct ts_product out;           /* REPLY: filled by the protocol; otherwise by produce() */
    struct ts_access_verdict access; /* filled by the core before produce() */

    /* The core's state between the network thread and a worker. */
    const struct ts_live *live; /* the settings this request runs under, taken once */
    struct source_file src;
    uint64_t shared_gen; /* the image's generation in memcached, when shared_gen_known */
    bool shared_gen_known;
    struct ts_buf cache_key;   /* file identity + key, built once for lookup and store */
    bool in_sequence;          /* the identifier was served as a sequence's view */
    struct source_views views; /* when in_sequence and wants_views */
    /* With wants_pages, for page 0 of a file of several: its pages, npages of them (at most
     * TS_JOB_PAGES_MAX; pages_total counts them all). NULL for any other file or page. */
    struct ts_page *pages;
    uint32_t npages, pages_total;
    bool gzip; /* compress set and the client accepts gzip: the body goes compressed */
    char etag[24];
    bool produced;      /* produce() ran in the fast lane; the slow lane renders its product */
    bool resolve_later; /* a remote identifier: resolved by the worker, not the network thread */
    bool access_later;  /* the authorization hook decides: asked by the worker */
    bool defer_heavy;   /* set by a front end with a slow lane: heavy renders return TS_DEFERRED */
    /* Stops the work when the client leaves, the deadline passes or the server stops; any
     * thread may trip it (ts_cancel_stop), the render checks it. */
    struct ts_cancel cancel;
};

void ts_job_init(struct ts_job *job, enum ts_job_kind kind);
void ts_job_free(struct ts_job *job);

/* Headers a protocol wants on its answer (Link, Content-Security-Policy ...). */
int ts_job_add_header(struct ts_job *job, const char *name, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
int ts_product_add_header(struct ts_product *out, const char *name, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void ts_product_set_type(struct ts_product *out, const char *type);
/* The product is this text (appended to out->text). */
int ts_product_text(struct ts_product *out, const char *text, struct ts_err *err);

/* A REPLY job with a text body. */
int ts_job_reply(struct ts_job *job, int http_status, const char *type, const char *text);

#endif
