/*
 * CBenchSupport, workload 6 round trips: one task at a time, the submitting thread waiting for each
 * before it submits the next, through the C API and a floor with no pool; and a thread that keeps
 * a CPU busy, for the rows measured on a loaded machine.
 */
#ifndef CBENCHROUNDTRIP_H
#define CBENCHROUNDTRIP_H

#include <CThreadPool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* n round trips through the C API: ctp_pool_submit of a task that posts a sem_t, then sem_wait. */
int cbench_roundtrip_ctp(ctp_pool *pool, long n);

/* The floor: n round trips between the calling thread and one other thread, both spinning on one
   atomic word (no yield, no park): what handing a value to a running thread and back costs. The
   other thread is started before and joined after the measured loop (cbench_spinner_*). */
typedef struct cbench_spinner cbench_spinner;
cbench_spinner *cbench_spinner_start(void);          /* NULL if no thread could be started */
int cbench_roundtrip_spin(cbench_spinner *spinner, long n);
void cbench_spinner_stop(cbench_spinner *spinner);

/* A thread that spins (no yield) until stopped: a third runnable thread on a 2-CPU machine. Its CPU
   time (CLOCK of the thread, ns) is readable while it runs, so that a benchmark can leave it out of
   the process's CPU time. */
typedef struct cbench_hog cbench_hog;
cbench_hog *cbench_hog_start(void);                  /* NULL if no thread could be started */
int64_t cbench_hog_cpu_ns(const cbench_hog *hog);
void cbench_hog_stop(cbench_hog *hog);

/* CPU time of the whole process (CLOCK_PROCESS_CPUTIME_ID), in nanoseconds. */
int64_t cbench_process_cpu_ns(void);

#ifdef __cplusplus
}
#endif

#endif /* CBENCHROUNDTRIP_H */
