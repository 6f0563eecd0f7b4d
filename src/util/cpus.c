/* sched_getaffinity and CPU_COUNT are GNU extensions on Linux; other systems count what is
 * online. */
#if defined(__linux__)
#define _GNU_SOURCE
#include <sched.h>
#endif
#include "util/cpus.h"

#include <unistd.h>

unsigned ts_cpu_count(void)
{
#if defined(__linux__) && defined(CPU_COUNT)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return (unsigned)n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}
