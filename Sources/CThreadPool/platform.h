/* What the pool asks of the system: how many CPUs this process may use (platform.c).

   The default thread count (ctp_default_thread_count, public) is the smaller of the CPUs in the
   affinity mask and the cgroup's CPU bandwidth limit; the two parts are declared here so that the C
   tests can check each on its own. Includes nothing of the library. */
#ifndef CTP_PLATFORM_H
#define CTP_PLATFORM_H

/* The CPUs in this process's affinity mask (sched_getaffinity; elsewhere the CPUs online), at least 1. */
unsigned ctp_affinity_cpus(void);

/* The tightest CPU bandwidth limit of this process's cgroup and of its ancestors, in CPUs rounded up
   (a quota of 1.5 CPUs is 2), or 0 when there is none or none can be read. Linux only (elsewhere 0):
   cgroup v2 cpu.max, cgroup v1 cpu.cfs_quota_us and cpu.cfs_period_us. */
unsigned ctp_cgroup_cpu_limit(void);

#ifdef CTP_FAULT_INJECTION
/* Test hooks (C tests only). Not thread-safe: set them while nothing reads them. */

/* Reads /proc/self/cgroup and /sys/fs/cgroup/... under the directory `root` instead of under "/"
   (NULL or "": the real ones). The string is copied; a root too long to copy reads nothing. */
void ctp_test_set_cgroup_root(const char *root);
/* ctp_affinity_cpus returns `cpus` instead of the real count (0: the real count again). */
void ctp_test_set_affinity_cpus(unsigned cpus);
#endif

#endif /* CTP_PLATFORM_H */
