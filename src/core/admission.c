/* Heavy renders take a slot and memory from a fixed budget; light ones pass straight through. */
#include "core/admission.h"

#include <errno.h>
#include <time.h>

void admission_init(struct admission *a, size_t request_budget, size_t total_budget,
                    size_t heavy_bytes, unsigned heavy_max, unsigned queue_max, unsigned wait_ms)
{
    pthread_mutex_init(&a->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&a->freed, &attr);
    pthread_condattr_destroy(&attr);
    /* One request can never use more than all heavy renders together: without this clamp a
     * --render-memory below --request-memory would be silently raised and mean nothing. */
    a->request_budget = request_budget < total_budget ? request_budget : total_budget;
    a->total_budget = total_budget;
    a->heavy_bytes = heavy_bytes;
    a->heavy_max = heavy_max ? heavy_max : 1;
    a->queue_max = queue_max;
    a->wait_ms = wait_ms;
    a->in_use = 0;
    a->running = a->waiting = 0;
    a->refused_busy = a->refused_large = 0;
    atomic_init(&a->rendering_bytes, 0);
}

void admission_destroy(struct admission *a)
{
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->freed);
}

static bool has_room(const struct admission *a, size_t bytes)
{
    return a->running < a->heavy_max && a->in_use + bytes <= a->total_budget;
}

int admission_enter(struct admission *a, size_t bytes, bool *heavy, struct ts_err *err)
{
    *heavy = false;
    if (bytes > a->request_budget) {
        pthread_mutex_lock(&a->lock);
        a->refused_large++;
        pthread_mutex_unlock(&a->lock);
        /* SIZE_MAX: beyond counting, or a read the reader refuses for its size. */
        if (bytes == SIZE_MAX)
            return ts_fail(err, TS_ETOOLARGE,
                           "this request needs more memory to render than can be counted, over "
                           "the %zu MB allowed per request; ask for a smaller size or region",
                           a->request_budget >> 20);
        return ts_fail(err, TS_ETOOLARGE,
                       "this request needs about %zu MB to render, over the %zu MB allowed per "
                       "request; ask for a smaller size or region",
                       bytes >> 20, a->request_budget >> 20);
    }
    if (bytes <= a->heavy_bytes) {
        atomic_fetch_add_explicit(&a->rendering_bytes, bytes, memory_order_relaxed);
        return TS_OK;
    }

    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += a->wait_ms / 1000;
    deadline.tv_nsec += (long)(a->wait_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&a->lock);
    if (!has_room(a, bytes)) {
        if (a->waiting >= a->queue_max) {
            a->refused_busy++;
            pthread_mutex_unlock(&a->lock);
            return ts_fail(err, TS_EBUSY, "too many large renders in progress; try again shortly");
        }
        a->waiting++;
        int rc = 0;
        while (!has_room(a, bytes) && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&a->freed, &a->lock, &deadline);
        a->waiting--;
        if (!has_room(a, bytes)) {
            a->refused_busy++;
            pthread_mutex_unlock(&a->lock);
            return ts_fail(err, TS_EBUSY, "large renders are queued; try again shortly");
        }
    }
    a->running++;
    a->in_use += bytes;
    *heavy = true;
    pthread_mutex_unlock(&a->lock);
    atomic_fetch_add_explicit(&a->rendering_bytes, bytes, memory_order_relaxed);
    return TS_OK;
}

void admission_leave(struct admission *a, size_t bytes, bool heavy)
{
    atomic_fetch_sub_explicit(&a->rendering_bytes, bytes, memory_order_relaxed);
    if (!heavy)
        return;
    pthread_mutex_lock(&a->lock);
    a->running--;
    a->in_use -= bytes;
    pthread_cond_broadcast(&a->freed);
    pthread_mutex_unlock(&a->lock);
}

bool admission_is_heavy(const struct admission *a, size_t bytes)
{
    return bytes > a->heavy_bytes && bytes <= a->request_budget;
}

void admission_snapshot(const struct admission *a, struct admission_snapshot *out)
{
    /* Taking the lock changes nothing the caller can see: the mutex is the one mutable part. */
    pthread_mutex_t *lock = (pthread_mutex_t *)&a->lock;
    pthread_mutex_lock(lock);
    *out = (struct admission_snapshot){.heavy_bytes_in_use = a->in_use,
                                       .running = a->running,
                                       .waiting = a->waiting,
                                       .refused_busy = a->refused_busy,
                                       .refused_large = a->refused_large};
    pthread_mutex_unlock(lock);
    out->rendering_bytes = atomic_load_explicit(&a->rendering_bytes, memory_order_relaxed);
}
