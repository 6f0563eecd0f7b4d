/* Admission control: a per-request memory budget, and a bounded number of heavy renders with a
 * short queue, so big renders cannot starve the tiles a viewer is waiting for. */
#ifndef TESSERA_ADMISSION_H
#define TESSERA_ADMISSION_H

#include "util/status.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct admission {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    size_t request_budget; /* bytes one request may use; over it: 413 */
    size_t total_budget;   /* bytes all heavy renders together may use */
    size_t heavy_bytes;    /* a request estimated above this is heavy */
    unsigned heavy_max;    /* heavy renders running at once */
    unsigned queue_max;    /* heavy renders waiting at once; beyond: 503 at once */
    unsigned wait_ms;      /* how long a heavy render waits for room; then 503 */
    size_t in_use;
    unsigned running, waiting;
    uint64_t refused_busy, refused_large;
    /* Estimated decode memory of every render under way, light ones too; kept apart from the
     * lock, which light renders never take. */
    _Atomic size_t rendering_bytes;
};

/* The state at one moment, for /metrics. */
struct admission_snapshot {
    size_t heavy_bytes_in_use, rendering_bytes;
    unsigned running, waiting;
    uint64_t refused_busy, refused_large;
};

void admission_init(struct admission *a, size_t request_budget, size_t total_budget,
                    size_t heavy_bytes, unsigned heavy_max, unsigned queue_max, unsigned wait_ms);
void admission_destroy(struct admission *a);

/* Admits a request estimated to need `bytes`. TS_ETOOLARGE over the per-request budget,
 * TS_EBUSY when the queue is full or the wait ran out. *heavy tells admission_leave what
 * was taken. Light requests are admitted at once, always. */
int admission_enter(struct admission *a, size_t bytes, bool *heavy, struct ts_err *err);
void admission_leave(struct admission *a, size_t bytes, bool heavy);

/* Reads the counters under the lock (which is why a is not const inside). */
void admission_snapshot(const struct admission *a, struct admission_snapshot *out);

/* Whether a request of `bytes` counts as heavy (takes a slot, may wait) and may be admitted at
 * all: one over the per-request budget is refused at once, wherever it is. */
bool admission_is_heavy(const struct admission *a, size_t bytes);

#endif
