/* Splitting one computation over a few threads, for a request that finds cores idle. */
#ifndef TESSERA_UTIL_PARALLEL_H
#define TESSERA_UTIL_PARALLEL_H

/* Runs fn(ctx, k, parts) for every k in [0, parts): part 0 on the calling thread, the others on
 * threads of their own, and returns when all have. A part whose thread cannot be started runs
 * on the calling thread instead, so every part always runs exactly once. Parts must not depend
 * on each other's order. */
void ts_parallel(unsigned parts, void (*fn)(void *ctx, unsigned k, unsigned parts), void *ctx);

/* The most parts ts_parallel starts at once. */
#define TS_PARALLEL_MAX 8

#endif
