#include "util/cancel.h"

#include <time.h>

int64_t ts_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void ts_cancel_init(struct ts_cancel *c, unsigned seconds)
{
    atomic_init(&c->reason, TS_OK);
    c->deadline_ns = seconds ? ts_monotonic_ns() + (int64_t)seconds * 1000000000 : 0;
}

void ts_cancel_stop(struct ts_cancel *c, int reason)
{
    int expected = TS_OK;
    atomic_compare_exchange_strong(&c->reason, &expected, reason);
}

int ts_cancel_check(struct ts_cancel *c, struct ts_err *err)
{
    if (!c)
        return TS_OK;
    int reason = atomic_load_explicit(&c->reason, memory_order_relaxed);
    if (reason == TS_OK && c->deadline_ns && ts_monotonic_ns() > c->deadline_ns) {
        ts_cancel_stop(c, TS_ETIMEOUT);
        reason = atomic_load(&c->reason);
    }
    if (reason == TS_ETIMEOUT)
        return ts_fail(err, TS_ETIMEOUT,
                       "the request ran past its deadline; try a smaller size "
                       "or region, or again later");
    if (reason != TS_OK)
        return ts_fail(err, reason, "the request was canceled");
    return TS_OK;
}
