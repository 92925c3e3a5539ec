/*
 * What every C test program shares: checks that print and exit, bounded waits, the thread count
 * from /proc and its baseline. Nothing here sleeps in place of synchronisation: CHECK_EVENTUALLY
 * polls for something that must happen and fails when WAIT_SECONDS pass first.
 */
#ifndef TEST_SUPPORT_H
#define TEST_SUPPORT_H

#include "CThreadPool.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHECK(expr)                                                                   \
    do {                                                                              \
        if (!(expr)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr); \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

/* CHECK with both values printed (as long long). */
#define CHECK_EQ(actual, expected)                                                              \
    do {                                                                                        \
        long long check_a_ = (long long)(actual);                                               \
        long long check_e_ = (long long)(expected);                                             \
        if (check_a_ != check_e_) {                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, \
                    #actual, #expected, check_a_, check_e_);                                    \
            exit(1);                                                                            \
        }                                                                                       \
    } while (0)

/* How long a bounded wait for something that must happen may take before the test fails. */
#define WAIT_SECONDS 10.0

static inline double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One poll interval of a bounded wait (never used in place of synchronisation). */
static inline void poll_pause(void) {
    struct timespec ts = { 0, 200 * 1000 };
    nanosleep(&ts, NULL);
}

/* Polls `cond` until it holds; fails the test if WAIT_SECONDS pass first. */
#define CHECK_EVENTUALLY(cond)                                                                    \
    do {                                                                                          \
        double check_deadline_ = now_seconds() + WAIT_SECONDS;                                    \
        while (!(cond) && now_seconds() < check_deadline_) poll_pause();                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "%s:%d: CHECK_EVENTUALLY failed after %.0f s: %s\n", __FILE__, __LINE__, \
                    WAIT_SECONDS, #cond);                                                         \
            exit(1);                                                                              \
        }                                                                                         \
    } while (0)

/* An absolute CLOCK_REALTIME deadline `seconds` from now, for pthread_cond_timedwait. */
static inline struct timespec deadline_in(double seconds) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long ns = ts.tv_nsec + (long long)(seconds * 1e9);
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    return ts;
}

/* The number of threads in this process: the entries of /proc/self/task. */
static inline int process_threads(void) {
    DIR *dir = opendir("/proc/self/task");
    CHECK(dir != NULL);
    int n = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] != '.') n++;
    }
    closedir(dir);
    return n;
}

/* The kernel removes a joined thread's /proc/self/task entry a moment after pthread_join returns
   (the tid futex is cleared before the task is reaped), so the check allows a bounded wait. */
#define CHECK_THREADS_BACK_TO(baseline) CHECK_EVENTUALLY(process_threads() == (baseline))

/* ---- gates: tasks that hold a worker until the test opens them ---- */

typedef struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool open;                 /* lock */
    atomic_int entered;        /* gate tasks that started waiting */
    atomic_int left;           /* gate tasks that finished with status 0 (done with the gate) */
    atomic_int cancelled;      /* gate tasks called with CTP_ECANCELED */
    atomic_int bad_status;     /* gate tasks called with any other status */
} gate;

static inline void gate_init(gate *g) {
    CHECK(pthread_mutex_init(&g->lock, NULL) == 0);
    CHECK(pthread_cond_init(&g->cond, NULL) == 0);
    g->open = false;
    atomic_init(&g->entered, 0);
    atomic_init(&g->left, 0);
    atomic_init(&g->cancelled, 0);
    atomic_init(&g->bad_status, 0);
}

static inline void gate_open(gate *g) {
    pthread_mutex_lock(&g->lock);
    g->open = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

static inline void gate_destroy(gate *g) {
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->lock);
}

/* Blocks until the gate opens (bounded: the test fails if it never does). */
static inline void gate_pass(gate *g) {
    struct timespec deadline = deadline_in(3 * WAIT_SECONDS);
    pthread_mutex_lock(&g->lock);
    while (!g->open) {
        if (pthread_cond_timedwait(&g->cond, &g->lock, &deadline) == ETIMEDOUT && !g->open) {
            fprintf(stderr, "%s:%d: a gate was never opened\n", __FILE__, __LINE__);
            exit(1);
        }
    }
    pthread_mutex_unlock(&g->lock);
}

/* A task that occupies a worker until the gate opens. */
static inline void gate_task(void *arg, int status) {
    gate *g = arg;
    if (status == CTP_ECANCELED) {
        atomic_fetch_add(&g->cancelled, 1);
        return;
    }
    if (status != 0) {
        atomic_fetch_add(&g->bad_status, 1);
        return;
    }
    atomic_fetch_add(&g->entered, 1);
    gate_pass(g);
    atomic_fetch_add(&g->left, 1);
}

#endif /* TEST_SUPPORT_H */
