/*
 * Numbered tasks for the tests of the private queues (test_ring.c, test_inbox.c): task n's argument
 * carries n and its function alternates, so that a check sees both fields and the order.
 * Include after queue.h and test_support.h.
 */
#ifndef NUMBERED_TASKS_H
#define NUMBERED_TASKS_H

#include <stdint.h>

static void dummy_fn_a(void *arg, int status) { (void)arg; (void)status; }
static void dummy_fn_b(void *arg, int status) { (void)arg; (void)status; }

/* Task number `n`. */
static inline ctp_task task_n(size_t n) {
    return (ctp_task){ (n & 1) ? dummy_fn_b : dummy_fn_a, (void *)(uintptr_t)(n + 1) };
}

/* Checks that `task` is task number `n`. */
static inline void check_task_n(ctp_task task, size_t n) {
    CHECK_EQ((uintptr_t)task.arg, n + 1);
    CHECK(task.fn == ((n & 1) ? dummy_fn_b : dummy_fn_a));
}

#endif /* NUMBERED_TASKS_H */
