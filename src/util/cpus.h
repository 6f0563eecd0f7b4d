/* How many CPUs this process may run on. */
#ifndef TESSERA_UTIL_CPUS_H
#define TESSERA_UTIL_CPUS_H

/* The CPUs in the process's affinity mask (taskset, a cgroup cpuset, systemd's CPUAffinity=)
 * where the system says, else the CPUs online; at least 1. Threads and decoder processes are
 * sized from it: sized from the machine instead, a server confined to one CPU of sixteen would
 * run sixteen-way work on one. */
unsigned ts_cpu_count(void);

#endif
