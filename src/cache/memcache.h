/* A shared second-level response cache in memcached, for a fleet of servers. */
#ifndef TESSERA_MEMCACHE_H
#define TESSERA_MEMCACHE_H

#include "util/buf.h"
#include "util/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* memcached's default item limit is 1 MB for key, value and its own bookkeeping together;
 * keeping a kilobyte back means an entry we send always fits, so larger answers are simply
 * not shared. */
#define TS_MC_ENTRY_MAX ((size_t)1024 * 1024 - 1024)
#define TS_MC_HEADERS 24
/* "tessera:" + format version + ":" + 32 hex digits + NUL */
#define TS_MC_KEY_SIZE 43

/* One cached answer as it travels: pointers into the entry's bytes once decoded. Validators
 * are not part of it: every server makes its own ETag and Last-Modified from its own view of
 * the file (a shared one says the same mtime on each). */
struct ts_mc_entry {
    int status;
    const char *type;
    unsigned nheaders;
    struct {
        const char *name, *value;
    } headers[TS_MC_HEADERS];
    const uint8_t *body;
    size_t body_len;
};

/* The memcached key for the text that names a response: a version prefix and a 128-bit hash,
 * always TS_MC_KEY_SIZE - 1 characters of [a-z0-9:], whatever the text holds. */
void ts_mc_key(const char *text, size_t len, char out[TS_MC_KEY_SIZE]);

/* Serialises e with the full key text (so a hash collision is caught when read back) onto out.
 * TS_ETOOLARGE when the whole would pass TS_MC_ENTRY_MAX, TS_EINVAL on a field too long for
 * its length, TS_ENOMEM. */
int ts_mc_entry_encode(const struct ts_mc_entry *e, const char *key, size_t key_len,
                       struct ts_buf *out);
/* Checks every length and terminator in data and fills e with pointers into data. TS_EINVAL
 * on anything malformed, TS_DECLINED when the entry is well formed but for another key. */
int ts_mc_entry_decode(const uint8_t *data, size_t len, const char *key, size_t key_len,
                       struct ts_mc_entry *e);

struct ts_memcache;

struct ts_memcache_options {
    const char *servers; /* "host[:port][,host[:port]...]", as iipsrv's MEMCACHED_SERVERS */
    unsigned ttl;        /* seconds an entry lives; 0 = until memcached evicts it */
    unsigned timeout_ms; /* bound of every connect, send and receive; 0 = 250 */
    unsigned handles;    /* connections kept for worker threads; 0 = 32 */
    /* Where the warnings go (rate limited); NULL = stderr. */
    void (*log)(const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
        __attribute__((format(printf, 1, 2)))
#endif
        ;
};

struct ts_memcache_stats {
    uint64_t hits, misses, stores, too_large, malformed, errors;
};

/* No connection is made here: a memcached that is down at start is only a warning later.
 * TS_EINVAL for a server list that does not parse. */
int ts_memcache_create(const struct ts_memcache_options *opt, struct ts_memcache **out,
                       struct ts_err *err);
void ts_memcache_destroy(struct ts_memcache *mc);

/* Looks key up (the full text; hashed here). On a hit, the entry's bytes go to held and e
 * points into them: true. A miss, a malformed entry, a slow or absent memcached: false. */
bool ts_memcache_get(struct ts_memcache *mc, const char *key, size_t key_len, struct ts_buf *held,
                     struct ts_mc_entry *e);
/* Stores e under key for the configured ttl. Entries over TS_MC_ENTRY_MAX are skipped
 * (counted, no warning); failures are counted and warned about, never returned. */
void ts_memcache_set(struct ts_memcache *mc, const char *key, size_t key_len,
                     const struct ts_mc_entry *e);
/* Forgets key; true when memcached said it is gone (or never was there). */
bool ts_memcache_delete(struct ts_memcache *mc, const char *key, size_t key_len);

void ts_memcache_stats(struct ts_memcache *mc, struct ts_memcache_stats *out);

/* What memcached says about itself: reachable or not (and why), and, summed over its servers,
 * the bytes and items it holds (shared by every server of a fleet). */
struct ts_memcache_health {
    bool up;
    uint64_t bytes, items;
    char reason[200];
};

/* Asks every server for its statistics, each call bounded by the timeout. The answer is kept
 * for a second: /health and /metrics, however often asked, cost memcached one round a second.
 * A caller that finds another thread probing gets the last answer at once instead of waiting. */
void ts_memcache_probe(struct ts_memcache *mc, struct ts_memcache_health *out);

/* Purging through memcached. Entries are keyed by a hash of what names the answer, so the
 * entries of one image cannot be listed, let alone deleted. Instead every image (name: what
 * all servers agree names its file) has a generation in memcached, which every server mixes
 * into the keys it reads and writes; a purge replaces it with a new random one, and every
 * server's old entries for that image become unreachable at once (memcached evicts them in
 * time). Reads the image's generation, starting one if it has none: false when memcached is
 * unreachable (then the caller must neither read nor write entries of this image). */
bool ts_memcache_generation(struct ts_memcache *mc, const char *name, size_t len, uint64_t *gen);
/* Gives the image a new generation: false when memcached did not take it. */
bool ts_memcache_bump(struct ts_memcache *mc, const char *name, size_t len);

#endif
