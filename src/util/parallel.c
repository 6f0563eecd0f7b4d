/* Splitting one computation over a few threads (see parallel.h). Threads are started per call:
 * the work split this way takes milliseconds, and a start costs tens of microseconds. */
#include "util/parallel.h"

#include <pthread.h>
#include <stdbool.h>

struct part {
    void (*fn)(void *ctx, unsigned k, unsigned parts);
    void *ctx;
    unsigned k, parts;
    pthread_t thread;
    bool started;
};

static void *part_main(void *arg)
{
    struct part *p = arg;
    p->fn(p->ctx, p->k, p->parts);
    return NULL;
}

void ts_parallel(unsigned parts, void (*fn)(void *ctx, unsigned k, unsigned parts), void *ctx)
{
    struct part p[TS_PARALLEL_MAX];
    if (parts > TS_PARALLEL_MAX)
        parts = TS_PARALLEL_MAX;
    if (parts <= 1) {
        fn(ctx, 0, 1);
        return;
    }
    for (unsigned k = 1; k < parts; k++) {
        p[k].fn = fn;
        p[k].ctx = ctx;
        p[k].k = k;
        p[k].parts = parts;
        p[k].started = pthread_create(&p[k].thread, NULL, part_main, &p[k]) == 0;
    }
    fn(ctx, 0, parts);
    for (unsigned k = 1; k < parts; k++) {
        if (p[k].started)
            pthread_join(p[k].thread, NULL);
        else
            fn(ctx, k, parts);
    }
}
