/* Fault injection and test hooks, built only with -DCTP_FAULT_INJECTION (the C tests).

   With it, every allocation and thread creation of the library goes through the ctp_fault_* functions
   (fault_injection.c), and a test can make the n-th next one fail; without it the CTP_* macros below
   are the plain libc calls. The test hooks show the tests what the API does not. */
#ifndef CTP_FAULT_INJECTION_H
#define CTP_FAULT_INJECTION_H

#include "CThreadPool.h"
#include "ctp_memory.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#ifdef CTP_FAULT_INJECTION
/* The n-th next call fails (1: the very next one); 0: none fails. Atomic: a pool that grows creates
   threads while a test arms them. */
extern atomic_uint ctp_fault_malloc_countdown;
extern atomic_uint ctp_fault_thread_countdown;
void *ctp_fault_malloc(size_t size);
void *ctp_fault_calloc(size_t count, size_t size);
void *ctp_fault_aligned_zalloc(size_t alignment, size_t size);
int ctp_fault_pthread_create(pthread_t *thread, const pthread_attr_t *attributes,
                             void *(*start)(void *), void *argument);
#define CTP_MALLOC(size) ctp_fault_malloc(size)
#define CTP_CALLOC(count, size) ctp_fault_calloc(count, size)
#define CTP_ALIGNED_ZALLOC(alignment, size) ctp_fault_aligned_zalloc(alignment, size)
#define CTP_PTHREAD_CREATE(thread, attributes, start, argument) \
    ctp_fault_pthread_create(thread, attributes, start, argument)

/* Test hooks. Tasks terminate cancelled out of workers' batches. */
extern atomic_ullong ctp_test_batched_cancels;
/* Tasks taken into workers' batches that have not started (the API counts them as queued). */
size_t ctp_test_batched(ctp_pool *pool);
/* Parked and spinning workers, read without the lock (a test waits for a state with them). */
void ctp_test_wake_state(ctp_pool *pool, unsigned *idle, unsigned *spinning_workers);
#else
#define CTP_MALLOC(size) malloc(size)
#define CTP_CALLOC(count, size) calloc(count, size)
#define CTP_ALIGNED_ZALLOC(alignment, size) ctp_aligned_zalloc(alignment, size)
#define CTP_PTHREAD_CREATE(thread, attributes, start, argument) pthread_create(thread, attributes, start, argument)
#endif

#endif /* CTP_FAULT_INJECTION_H */
