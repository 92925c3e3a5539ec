#define _GNU_SOURCE
#include "CBenchRoundTrip.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

int64_t cbench_process_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the C API: submit, then wait on a semaphore the task posts ------------------------------- */

static void post_task(void *arg, int status) {
    (void)status;
    sem_post(arg);
}

int cbench_roundtrip_ctp(ctp_pool *pool, long n) {
    sem_t done;
    if (sem_init(&done, 0, 0) != 0) return -errno;
    for (long i = 0; i < n; i++) {
        int rc = ctp_pool_submit(pool, post_task, &done);
        if (rc != 0) {
            sem_destroy(&done);
            return rc;
        }
        while (sem_wait(&done) != 0 && errno == EINTR) {}
    }
    sem_destroy(&done);
    return 0;
}

/* ---- the floor: two threads spinning on one word ----------------------------------------------- */

/* The word holds a round number: the caller writes an odd one (a request), the spinner answers with
   the next even one; 0 with `stop` set ends the spinner. Its own cache line: both threads write it. */
struct cbench_spinner {
    _Alignas(64) _Atomic long word;
    _Atomic int stop;
    pthread_t thread;
};

static void *spinner_main(void *arg) {
    cbench_spinner *s = arg;
    for (;;) {
        long value = atomic_load_explicit(&s->word, memory_order_acquire);
        if (value & 1) {
            atomic_store_explicit(&s->word, value + 1, memory_order_release);
        } else if (atomic_load_explicit(&s->stop, memory_order_relaxed)) {
            return NULL;
        }
    }
}

cbench_spinner *cbench_spinner_start(void) {
    cbench_spinner *s = aligned_alloc(64, sizeof *s);
    if (s == NULL) return NULL;
    atomic_init(&s->word, 0);
    atomic_init(&s->stop, 0);
    if (pthread_create(&s->thread, NULL, spinner_main, s) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

int cbench_roundtrip_spin(cbench_spinner *s, long n) {
    long value = atomic_load_explicit(&s->word, memory_order_relaxed);
    for (long i = 0; i < n; i++) {
        atomic_store_explicit(&s->word, value + 1, memory_order_release);
        value += 2;
        while (atomic_load_explicit(&s->word, memory_order_acquire) != value) {}
    }
    return 0;
}

void cbench_spinner_stop(cbench_spinner *s) {
    if (s == NULL) return;
    atomic_store_explicit(&s->stop, 1, memory_order_relaxed);
    pthread_join(s->thread, NULL);
    free(s);
}

/* ---- a busy third thread -------------------------------------------------------------------- */

struct cbench_hog {
    _Alignas(64) _Atomic int stop;
    pthread_t thread;
    clockid_t clock;
};

static void *hog_main(void *arg) {
    cbench_hog *h = arg;
    while (!atomic_load_explicit(&h->stop, memory_order_relaxed)) {}
    return NULL;
}

cbench_hog *cbench_hog_start(void) {
    cbench_hog *h = aligned_alloc(64, sizeof *h);
    if (h == NULL) return NULL;
    atomic_init(&h->stop, 0);
    if (pthread_create(&h->thread, NULL, hog_main, h) != 0) {
        free(h);
        return NULL;
    }
    if (pthread_getcpuclockid(h->thread, &h->clock) != 0) {
        cbench_hog_stop(h);
        return NULL;
    }
    return h;
}

int64_t cbench_hog_cpu_ns(const cbench_hog *h) {
    struct timespec ts;
    if (clock_gettime(h->clock, &ts) != 0) return 0;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void cbench_hog_stop(cbench_hog *h) {
    if (h == NULL) return;
    atomic_store_explicit(&h->stop, 1, memory_order_relaxed);
    pthread_join(h->thread, NULL);
    free(h);
}
