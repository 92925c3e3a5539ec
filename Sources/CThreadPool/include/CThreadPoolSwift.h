/*
 * CThreadPoolSwift: for ThreadPoolKit's Swift module only.
 *
 * Not part of the C API: no C header or program includes it. include/module.modulemap lists it next
 * to CThreadPool.h, so that the Swift module sees it.
 */
#ifndef CTHREADPOOL_SWIFT_H
#define CTHREADPOOL_SWIFT_H

#ifdef __cplusplus
extern "C" {
#endif

/* The address of a pointer-sized variable of the calling thread's own, NULL until stored, reached for
   less than pthread_getspecific costs: the Swift module keeps each thread's recycled jobs there (one
   slot cannot serve two users). It has no destructor: the Swift module frees what it stores through a
   pthread key when the thread exits. */
void **ctp_thread_slot(void);

/* Whether ctp_task_failed was called on this thread since the last call (clears it): a task run inline
   inside another one (a waiter running the task it waits for) takes its own failure with it. */
int ctp_task_take_failed(void);
/* As ctp_task_declined, for a task whose owner ran it elsewhere meanwhile: the observer is told
   `outcome` (CTP_TASK_COMPLETED or CTP_TASK_FAILED) instead of CTP_TASK_DECLINED. */
void ctp_task_declined_with_outcome(int outcome);

#ifdef __cplusplus
}
#endif

#endif /* CTHREADPOOL_SWIFT_H */
