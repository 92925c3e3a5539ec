/* Fault injection for the C tests (built with -DCTP_FAULT_INJECTION; see fault_injection.h). */
#define _GNU_SOURCE
#include "fault_injection.h"

#ifdef CTP_FAULT_INJECTION
#include <errno.h>
#include <stdlib.h>

atomic_uint ctp_fault_malloc_countdown;
atomic_uint ctp_fault_thread_countdown;
atomic_ullong ctp_test_batched_cancels;

/* True when the armed countdown reaches this call. Atomic: a pool's workers create threads (and
   allocate) while it grows, concurrently with the test that arms the countdown. */
static int fires(atomic_uint *countdown) {
    unsigned left = atomic_load(countdown);
    while (left != 0) {
        if (atomic_compare_exchange_weak(countdown, &left, left - 1)) return left == 1;
    }
    return 0;
}

void *ctp_fault_malloc(size_t size) {
    return fires(&ctp_fault_malloc_countdown) ? NULL : malloc(size);
}

void *ctp_fault_calloc(size_t count, size_t size) {
    return fires(&ctp_fault_malloc_countdown) ? NULL : calloc(count, size);
}

void *ctp_fault_aligned_zalloc(size_t alignment, size_t size) {
    return fires(&ctp_fault_malloc_countdown) ? NULL : ctp_aligned_zalloc(alignment, size);
}

int ctp_fault_pthread_create(pthread_t *thread, const pthread_attr_t *attributes,
                             void *(*start)(void *), void *argument) {
    return fires(&ctp_fault_thread_countdown) ? EAGAIN : pthread_create(thread, attributes, start, argument);
}
#else
typedef int ctp_no_fault_injection; /* ISO C wants at least one declaration per file */
#endif
