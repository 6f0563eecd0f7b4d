/* Splitting one computation over a few threads (see parallel.h). Threads are started per call:
 * the work split this way takes milliseconds, and a start costs tens of microseconds. */
#define _GNU_SOURCE /* sched_getcpu, CPU_SET, pthread_attr_setaffinity_np */
#include "util/parallel.h"

#include <pthread.h>
#include <sched.h>
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

/* Where each part's thread runs. Left to itself, Linux often put a new thread on the CPU of
 * the thread that made it, though the others were idle (that is why a render was split), and
 * the part then waited for the calling thread's own part to end: half of the 2-core splits of
 * one measured region started over a millisecond late. So each part is pinned to one of the
 * CPUs the process may use other than the caller's, in turn. Elsewhere the system places
 * them. */
struct placing {
#if defined(__linux__) && defined(CPU_SET)
    cpu_set_t allowed;
    int here, next, ok;
#else
    int unused;
#endif
};

static void placing_begin(struct placing *w)
{
#if defined(__linux__) && defined(CPU_SET)
    w->ok = sched_getaffinity(0, sizeof w->allowed, &w->allowed) == 0;
    w->here = sched_getcpu();
    w->next = 0;
    w->ok = w->ok && w->here >= 0 && CPU_COUNT(&w->allowed) > 1;
#else
    (void)w;
#endif
}

/* Sets *attr to the next CPU for a part (true), or false to let the system choose. */
static bool placing_next(struct placing *w, pthread_attr_t *attr)
{
#if defined(__linux__) && defined(CPU_SET)
    if (!w->ok)
        return false;
    for (int n = 0; n < CPU_SETSIZE; n++) {
        int cpu = (w->next + n) % CPU_SETSIZE;
        if (cpu == w->here || !CPU_ISSET(cpu, &w->allowed))
            continue;
        w->next = cpu + 1;
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        if (pthread_attr_init(attr) != 0)
            return false;
        if (pthread_attr_setaffinity_np(attr, sizeof one, &one) != 0) {
            pthread_attr_destroy(attr);
            return false;
        }
        return true;
    }
    return false;
#else
    (void)w, (void)attr;
    return false;
#endif
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
    struct placing where;
    placing_begin(&where);
    for (unsigned k = 1; k < parts; k++) {
        p[k].fn = fn;
        p[k].ctx = ctx;
        p[k].k = k;
        p[k].parts = parts;
        pthread_attr_t attr, *use = placing_next(&where, &attr) ? &attr : NULL;
        p[k].started = pthread_create(&p[k].thread, use, part_main, &p[k]) == 0;
        if (use)
            pthread_attr_destroy(use);
    }
    fn(ctx, 0, parts);
    for (unsigned k = 1; k < parts; k++) {
        if (p[k].started)
            pthread_join(p[k].thread, NULL);
        else
            fn(ctx, k, parts);
    }
}
