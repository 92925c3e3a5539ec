/* Memory and processor helpers for every unit of the pool: the cache line, zeroed aligned memory, a
   hint for spin loops and the monotonic clock. Includes nothing of the library.

   Its includers define _GNU_SOURCE before any include: clock_gettime is POSIX, not C11. */
#ifndef CTP_MEMORY_H
#define CTP_MEMORY_H

#include <stddef.h>
#include <time.h>

/* The size of a cache line (on the targets that matter; a larger one only costs some padding). */
#define CTP_CACHE_LINE 64

/* `size` zeroed bytes aligned to `alignment` (a power of two), to be released with free(); NULL when
   out of memory. */
void *ctp_aligned_zalloc(size_t alignment, size_t size);

/* A hint to the CPU that the caller is spinning. */
static inline void ctp_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Now, in nanoseconds of CLOCK_MONOTONIC. */
static inline unsigned long long ctp_monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (unsigned long long)now.tv_sec * 1000000000ull + (unsigned long long)now.tv_nsec;
}

#endif /* CTP_MEMORY_H */
