/* Counters and latency histograms that any thread updates without a lock, and their text in the
 * Prometheus exposition format. */
#ifndef TESSERA_METRIC_H
#define TESSERA_METRIC_H

#include "util/buf.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Upper bounds, in seconds, of a latency histogram's buckets (an +Inf bucket follows): from a
 * cached tile (well under a millisecond) to a big render near the request deadline. */
#define TS_HISTOGRAM_BOUNDS 14
extern const double ts_histogram_bounds[TS_HISTOGRAM_BOUNDS];

/* Counts per bucket (not cumulative: each observation touches one bucket) and the sum in
 * nanoseconds. The total count is the sum of the buckets, so the two can never disagree. */
struct ts_histogram {
    _Atomic uint64_t counts[TS_HISTOGRAM_BOUNDS + 1];
    _Atomic uint64_t sum_ns;
};

void ts_histogram_observe(struct ts_histogram *h, double seconds);

/* What one source of images (the filesystem, an HTTP server, an S3 bucket) costs: requests
 * made to it, those that failed, bytes read and the time each took. The module that talks to
 * the source records; the app owns it (ts_metrics_source in core/metrics.h) and /metrics
 * shows it. */
struct ts_source_stats {
    _Atomic uint64_t requests, errors, bytes;
    struct ts_histogram latency;
};

void ts_source_stats_record(struct ts_source_stats *s, uint64_t bytes, double seconds, bool ok);

/* Writes "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
int ts_metric_family(struct ts_buf *out, const char *name, const char *type, const char *help);
/* Writes one sample "name{labels} value"; labels is "" or text such as route="iiif". */
int ts_metric_sample(struct ts_buf *out, const char *name, const char *labels, uint64_t value);
/* Writes a histogram's samples: name_bucket (cumulative, le="..."), name_sum (seconds) and
 * name_count, each with labels. */
int ts_histogram_write(struct ts_buf *out, const char *name, const char *labels,
                       struct ts_histogram *h);

#endif
