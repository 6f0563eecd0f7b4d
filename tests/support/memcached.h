/* A throwaway memcached for the tests: started on a free loopback port, stopped at the end. */
#ifndef TESSERA_TEST_MEMCACHED_H
#define TESSERA_TEST_MEMCACHED_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct tu_memcached {
    pid_t pid;
    int port;
    char servers[32]; /* "127.0.0.1:PORT", as --memcached takes it */
};

/* The memcached binary's path, or NULL when it is not installed (then skip, saying so). */
const char *tu_memcached_binary(void);

/* Starts `memcached -l 127.0.0.1 -p PORT -U 0` on a free port and waits up to 5 s until it
 * accepts connections. Returns 0 on success. */
int tu_memcached_start(struct tu_memcached *m);

/* Kills it (SIGKILL, as a crash would) and waits until it is gone and its port refuses
 * connections. Safe to call twice. */
void tu_memcached_stop(struct tu_memcached *m);

/* Reads one counter of memcached's "stats" (get_hits, cmd_set ...); -1 on failure. */
long long tu_memcached_stat(const struct tu_memcached *m, const char *name);

#endif
