/* A few long-lived decoder processes for the JPEG 2000 reader (jp2.c is its only user).
 *
 * OpenJPEG 2.5.0, as Debian builds it, keeps assert()s in its decoders that fire on corrupt
 * files, and an assert would abort the whole server. Decodes therefore run in decoder processes
 * (one per CPU the server may run on, at least 2, at most 4, forked on first use by a zygote
 * process), each tied to the server by a socket and writing its pixels into shared memory: a
 * corrupt file costs a decoder, which is replaced, and the request gets a 500. */
#ifndef TESSERA_JP2POOL_H
#define TESSERA_JP2POOL_H

#include "image/image.h"
#include "util/cancel.h"
#include "util/status.h"

#include <stdint.h>
#include <sys/types.h>

/* The longest one decode may take before its decoder is ended by the clock. */
#define TS_JP2POOL_DECODE_SECONDS 60

/* The most tile-parts one decode is handed (see parts below); more read the whole file. */
#define TS_JP2POOL_MAX_PARTS 64

struct ts_jp2pool_part {
    uint64_t off, len; /* bytes of the file */
};

/* One decode, as plain data (it crosses a socket). The pool reads only threads. */
struct ts_jp2pool_job {
    int fmt;         /* OPJ_CODEC_FORMAT */
    uint32_t ncomps; /* components in the codestream */
    uint32_t reduce; /* resolution level */
    uint64_t a[4];   /* reference-grid area x0, y0, x1, y1 */
    uint32_t ax, ay; /* level-grid position of the output's first pixel */
    int threads;     /* most OpenJPEG threads worth using; the pool may lower it */
    uint32_t keep;   /* the decoder may keep the codec for the next decode of this file */
    uint32_t layers; /* quality layers to decode; 0 = all */
    /* With nparts > 0 the decoder reads, instead of the whole file, the file's first head bytes
     * (boxes and main header), these tile-parts in this order, and an end-of-codestream marker:
     * the codestream of just the tiles under the area. */
    uint32_t nparts;
    uint64_t head;
    struct ts_jp2pool_part parts[TS_JP2POOL_MAX_PARTS];
};

/* Runs in a decoder process: decodes job from fd into out (8-bit interleaved). */
typedef int (*ts_jp2pool_fn)(int fd, const struct ts_jp2pool_job *job, struct ts_image *out,
                             struct ts_err *err);

/* Runs fn(fd, job, out) in a decoder and copies its pixels into out, which the caller has
 * allocated. Waiting for a free decoder and for the decode both end when cancel trips (the
 * decoder is then killed and replaced). TS_ECODEC when the decoder died on the file. */
int ts_jp2pool_run(ts_jp2pool_fn fn, int fd, const struct ts_jp2pool_job *job,
                   struct ts_cancel *cancel, struct ts_image *out, struct ts_err *err);

/* Starts the zygote that forks every decoder (see jp2pool.c), from the calling thread: the
 * server calls it at start, before any other thread exists and before its caches fill, and
 * decoders take that thread's priority. Without it the zygote is forked on first use. */
int ts_jp2pool_start(struct ts_err *err);

/* The zygote's pid (0 before it is started), for tests. */
pid_t ts_jp2pool_zygote(void);

/* The decoders running now, for tests: fills up to max pids, returns how many there are. */
int ts_jp2pool_pids(pid_t *pids, int max);

#endif
