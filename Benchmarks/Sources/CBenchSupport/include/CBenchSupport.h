/*
 * CBenchSupport: the C side of the ThreadPoolKit benchmarks.
 *
 * Everything that should be measured as plain C lives here, so that the C API numbers carry no
 * Swift overhead: the submit loops for CThreadPool (`ctp_pool_submit` with a C function that
 * increments a C11 atomic), the pthread_create-per-task floor, and the latency probes. The clock is
 * clock_gettime(CLOCK_MONOTONIC) everywhere, Swift included (cbench_now_ns).
 *
 * Every function returns 0 or a negative CTP_E* / -errno code.
 */
#ifndef CBENCHSUPPORT_H
#define CBENCHSUPPORT_H

#include <CThreadPool.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* clock_gettime(CLOCK_MONOTONIC) in nanoseconds. */
int64_t cbench_now_ns(void);
/* nanosleep for `ns` nanoseconds (the kernel's timer slack, 50 µs by default, comes on top). */
void cbench_sleep_ns(int64_t ns);

/* A CThreadPool with `threads` workers and the defaults otherwise (NULL on failure). */
ctp_pool *cbench_pool_create(unsigned threads);
/* Closes, joins and destroys it. */
void cbench_pool_destroy(ctp_pool *pool);

/* Workload 1 through the C API: n ctp_pool_submit of a task that increments one C11 atomic;
   returns once every task has run (the task that brings the count to n posts a semaphore). */
int cbench_tiny_ctp(ctp_pool *pool, long n);
/* Workload 1 floor: one detached pthread_create per task (same task, same completion wait). */
int cbench_tiny_pthread(long n);

/* Workload 2 through the C API: out[i] = in[i] * in[i] + 1, one ctp_pool_submit per item. */
int cbench_map1_ctp(ctp_pool *pool, const int64_t *in, int64_t *out, long n);

/* Workload 4: `samples` submits about `gap_ns` apart on an idle pool; out_ns[i] = (time the task
   started on the worker) - (time just before ctp_pool_submit). With `wait_for_start` the submitting
   thread blocks on a semaphore, which the task posts once it has read the clock, before it sleeps
   for the gap (see Latency.swift); without, it goes to sleep at once. */
int cbench_latency_ctp(ctp_pool *pool, int samples, int64_t gap_ns, bool wait_for_start, int64_t *out_ns);
/* The same with a bare condition variable: one thread waiting, woken by pthread_cond_signal for
   each sample; the floor of any pool's idle wake. */
int cbench_latency_condvar(int samples, int64_t gap_ns, bool wait_for_start, int64_t *out_ns);
/* The same with one pthread_create per sample: thread start latency. */
int cbench_latency_pthread(int samples, int64_t gap_ns, int64_t *out_ns);

/* A semaphore (sem_t) for the Swift latency probes, so that they block as the C ones do. */
typedef struct cbench_ack cbench_ack;
cbench_ack *cbench_ack_create(void);      /* NULL if out of memory */
void cbench_ack_post(cbench_ack *ack);
void cbench_ack_wait(cbench_ack *ack);
void cbench_ack_destroy(cbench_ack *ack);

/* Workload 5 through the C API: `tasks` tasks that each usleep(usec); returns when all ran. */
int cbench_blocking_ctp(ctp_pool *pool, int tasks, unsigned usec);

/* Workload 6: `pools` times create a pool of `threads` workers with an initializer, close, join,
   destroy. */
int cbench_lifecycle_ctp(int pools, unsigned threads);
/* Floor for workload 6: `pools` times pthread_create `threads` threads that each run the same
   trivial initializer, then pthread_join them. */
int cbench_lifecycle_pthread(int pools, unsigned threads);

/* Gives the allocator's free chunks back and consolidates its free lists (glibc's malloc_trim(0);
   nothing elsewhere): so that a benchmark does not inherit the free lists another left behind. */
void cbench_trim_heap(void);

/* Slots written by one thread and read by another (latency probes from Swift). */
void cbench_store_i64(int64_t *slot, int64_t value);   /* release */
int64_t cbench_load_i64(const int64_t *slot);          /* acquire */

#ifdef __cplusplus
}
#endif

/* Workload 6 round trips, the busy third thread and the process CPU clock. */
#include "CBenchRoundTrip.h"

#endif /* CBENCHSUPPORT_H */
