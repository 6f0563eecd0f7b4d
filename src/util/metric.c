/* Lock-free counters and histograms, and the Prometheus text they are shown in. */
#include "util/metric.h"

#include "util/status.h"

const double ts_histogram_bounds[TS_HISTOGRAM_BOUNDS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

void ts_histogram_observe(struct ts_histogram *h, double seconds)
{
    if (!(seconds >= 0)) /* NaN or a clock that went backwards */
        seconds = 0;
    unsigned i = 0;
    while (i < TS_HISTOGRAM_BOUNDS && seconds > ts_histogram_bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    /* 2^64 ns is 584 years: one observation cannot overflow the sum, only centuries of them. */
    double ns = seconds * 1e9;
    uint64_t add = ns >= 1.8e19 ? UINT64_MAX / 2 : (uint64_t)(ns + 0.5);
    atomic_fetch_add_explicit(&h->sum_ns, add, memory_order_relaxed);
}

void ts_source_stats_record(struct ts_source_stats *s, uint64_t bytes, double seconds, bool ok)
{
    atomic_fetch_add_explicit(&s->requests, 1, memory_order_relaxed);
    if (!ok)
        atomic_fetch_add_explicit(&s->errors, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->bytes, bytes, memory_order_relaxed);
    ts_histogram_observe(&s->latency, seconds);
}

int ts_metric_family(struct ts_buf *out, const char *name, const char *type, const char *help)
{
    return ts_buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int ts_metric_sample(struct ts_buf *out, const char *name, const char *labels, uint64_t value)
{
    if (!labels[0])
        return ts_buf_appendf(out, "%s %llu\n", name, (unsigned long long)value);
    return ts_buf_appendf(out, "%s{%s} %llu\n", name, labels, (unsigned long long)value);
}

int ts_histogram_write(struct ts_buf *out, const char *name, const char *labels,
                       struct ts_histogram *h)
{
    /* One snapshot of every bucket first: the cumulative counts, the +Inf bucket and _count
     * then agree even while other threads observe. */
    uint64_t counts[TS_HISTOGRAM_BOUNDS + 1];
    for (unsigned i = 0; i <= TS_HISTOGRAM_BOUNDS; i++)
        counts[i] = atomic_load_explicit(&h->counts[i], memory_order_relaxed);
    uint64_t sum_ns = atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
    const char *sep = labels[0] ? "," : "";
    uint64_t cumulative = 0;
    int rc = TS_OK;
    for (unsigned i = 0; i <= TS_HISTOGRAM_BOUNDS && !rc; i++) {
        cumulative += counts[i];
        if (i < TS_HISTOGRAM_BOUNDS)
            rc = ts_buf_appendf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
                                ts_histogram_bounds[i], (unsigned long long)cumulative);
        else
            rc = ts_buf_appendf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                                (unsigned long long)cumulative);
    }
    const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
    rc = rc ? rc
            : ts_buf_appendf(out, "%s_sum%s%s%s %llu.%09llu\n", name, open, labels, close,
                             (unsigned long long)(sum_ns / 1000000000u),
                             (unsigned long long)(sum_ns % 1000000000u));
    return rc ? rc
              : ts_buf_appendf(out, "%s_count%s%s%s %llu\n", name, open, labels, close,
                               (unsigned long long)cumulative);
}
