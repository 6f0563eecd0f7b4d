/* Remote sources: objects on HTTP(S) servers and in S3-compatible stores, read with libcurl as
 * byte sources (HEAD for the version, ranges for the bytes). */
#ifndef TESSERA_REMOTE_H
#define TESSERA_REMOTE_H

#include "image/bytes.h"
#include "image/reader.h"
#include "util/metric.h"
#include "util/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct ts_remote_options {
    unsigned connect_timeout_ms; /* to open a connection */
    unsigned timeout_ms;         /* one whole request, connection included */
    /* S3: path-style requests to this endpoint ("http://127.0.0.1:9000"); "" = AWS's own for
     * the region. Credentials are never logged nor put in an error. */
    const char *s3_endpoint;
    const char *s3_region;
    const char *s3_access_key;
    const char *s3_secret_key;
    const struct ts_block_store *blocks; /* the app's block cache (copied), or NULL */
    size_t block;                        /* its block size (see ts_bytes_remote) */
    /* Where each request (HEAD or ranged GET, 404s included) to an http(s):// or s3:// source
     * is counted: its outcome, body bytes and time. Owned by the caller, who shows them
     * (/metrics); NULL counts nothing. */
    struct ts_source_stats *http_stats, *s3_stats;
};

struct ts_remote;

/* The version of an object a request reads: every cache key and validator comes from it. */
struct ts_remote_object {
    uint64_t size;
    time_t last_modified; /* 0 when the source gave none */
    char etag[256];       /* as the source sent it (quotes included); "" when none */
    char url[2048];       /* where it was found (no credentials in it) */
    bool s3;              /* requests to it are signed */
};

int ts_remote_create(const struct ts_remote_options *opt, struct ts_remote **out,
                     struct ts_err *err);
void ts_remote_destroy(struct ts_remote *rm);

/* Whether base ("s3://bucket/prefix/", "http://host/path/", "https://...") is a source this
 * module reads. Pure. */
bool ts_remote_base_ok(const char *base);

/* The URL of `rest` (an identifier's remainder, decoded) below base: path-style for s3:// with
 * the endpoint (or AWS's for region), every byte outside [A-Za-z0-9-._~/] percent-encoded.
 * Pure. TS_EINVAL for a base that is no source; TS_ETOOLONG past out's size. */
int ts_remote_url(const char *base, const char *rest, const char *s3_endpoint,
                  const char *s3_region, char *out, size_t size, struct ts_err *err);

/* Finds `rest` below base (as given, then with each image extension when it has none and the
 * name is missing) with HEAD, and returns its version and a byte source over it. TS_ENOTFOUND
 * when the source has no such object, TS_EUPSTREAM when it is unreachable, refuses the
 * credentials or answers otherwise than expected, TS_EUPTIMEOUT when it does not answer in
 * time; err says which. */
int ts_remote_open(struct ts_remote *rm, const char *base, const char *rest,
                   struct ts_remote_object *obj, struct ts_bytes **out, struct ts_err *err);

/* A byte source over an object ts_remote_open found before, without asking the source again
 * (the caller decides how long a version it saw stays good). */
int ts_remote_attach(struct ts_remote *rm, const struct ts_remote_object *obj,
                     struct ts_bytes **out, struct ts_err *err);

#endif
