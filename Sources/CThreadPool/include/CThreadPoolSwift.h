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

#ifdef __cplusplus
}
#endif

#endif /* CTHREADPOOL_SWIFT_H */
