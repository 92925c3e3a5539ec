#define _GNU_SOURCE
#include "CBenchSupport.h"

#include <errno.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int64_t cbench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void cbench_sleep_ns(int64_t ns) {
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

void cbench_store_i64(int64_t *slot, int64_t value) {
    __atomic_store_n(slot, value, __ATOMIC_RELEASE);
}

int64_t cbench_load_i64(const int64_t *slot) {
    return __atomic_load_n(slot, __ATOMIC_ACQUIRE);
}

void cbench_trim_heap(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

ctp_pool *cbench_pool_create(unsigned threads) {
    ctp_options options;
    ctp_options_init(&options);
    options.threads = threads;
    ctp_pool *pool = NULL;
    if (ctp_pool_create(&options, &pool) != 0) return NULL;
    return pool;
}

void cbench_pool_destroy(ctp_pool *pool) {
    if (pool == NULL) return;
    ctp_pool_close(pool);
    ctp_pool_join(pool);
    ctp_pool_destroy(pool);
}

/* sem_wait, again after a signal interrupts it. */
static void wait_semaphore(sem_t *semaphore) {
    while (sem_wait(semaphore) != 0 && errno == EINTR) {}
}

/* ---- a countdown: the task that brings the count to its target posts the semaphore --------- */

/* The count has a cache line of its own: the workers write it on every task, and a countdown on the
   submitting thread's stack would otherwise share a line with that thread's locals in some
   processes and not others (where ASLR puts the stack), which made runs bimodal (~45 vs ~155 ns). */
typedef struct countdown {
    _Alignas(64) _Atomic long count;
    _Alignas(64) long target;
    sem_t done;
} countdown;

static void countdown_init(countdown *c, long target) {
    atomic_init(&c->count, 0);
    c->target = target;
    sem_init(&c->done, 0, 0);
}

static inline void countdown_hit(countdown *c) {
    /* Read the target first: once the count reaches it the waiter may return and c may be gone. */
    long target = c->target;
    if (atomic_fetch_add_explicit(&c->count, 1, memory_order_acq_rel) + 1 == target) sem_post(&c->done);
}

static void countdown_wait_destroy(countdown *c) {
    wait_semaphore(&c->done);
    sem_destroy(&c->done);
}

/* ---- workload 1 ----------------------------------------------------------------------------- */

static void tiny_task(void *arg, int status) {
    (void)status;
    countdown_hit(arg);
}

int cbench_tiny_ctp(ctp_pool *pool, long n) {
    countdown c;
    countdown_init(&c, n);
    for (long i = 0; i < n; i++) {
        int rc = ctp_pool_submit(pool, tiny_task, &c);
        if (rc != 0) return rc; /* leaves c half-used: only on a broken pool */
    }
    countdown_wait_destroy(&c);
    return 0;
}

static void *tiny_thread(void *arg) {
    countdown_hit(arg);
    return NULL;
}

int cbench_tiny_pthread(long n) {
    countdown c;
    countdown_init(&c, n);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (long i = 0; i < n; i++) {
        pthread_t thread;
        int rc;
        while ((rc = pthread_create(&thread, &attr, tiny_thread, &c)) == EAGAIN) sched_yield();
        if (rc != 0) {
            pthread_attr_destroy(&attr);
            return -rc;
        }
    }
    pthread_attr_destroy(&attr);
    countdown_wait_destroy(&c);
    return 0;
}

/* ---- workload 2 ----------------------------------------------------------------------------- */

typedef struct map_job {
    const int64_t *in;
    int64_t *out;
    countdown *done;
} map_job;

/* One task per item with no allocation per item: each task's argument is the address of its
   input element, and the job (one map at a time) is published through this pointer. */
static map_job *_Atomic current_map_job;

static void map_item_task(void *arg, int status) {
    (void)status;
    map_job *job = atomic_load_explicit(&current_map_job, memory_order_acquire);
    const int64_t *x = arg;
    long i = x - job->in;
    job->out[i] = *x * *x + 1;
    countdown_hit(job->done);
}

int cbench_map1_ctp(ctp_pool *pool, const int64_t *in, int64_t *out, long n) {
    countdown c;
    countdown_init(&c, n);
    map_job job = {.in = in, .out = out, .done = &c};
    atomic_store_explicit(&current_map_job, &job, memory_order_release);
    for (long i = 0; i < n; i++) {
        int rc = ctp_pool_submit(pool, map_item_task, (void *)(in + i));
        if (rc != 0) return rc;
    }
    countdown_wait_destroy(&c);
    atomic_store_explicit(&current_map_job, NULL, memory_order_release);
    return 0;
}

/* ---- workload 4 ----------------------------------------------------------------------------- */

/* A semaphore for the Swift latency probes: the same sem_t the C probes use, so that every row's
   submitting thread blocks the same way (DispatchSemaphore's longer path to the futex showed up in
   the samples whenever the woken worker waited for the submitter to leave its CPU). */
struct cbench_ack {
    sem_t semaphore;
};

cbench_ack *cbench_ack_create(void) {
    cbench_ack *ack = malloc(sizeof *ack);
    if (ack != NULL) sem_init(&ack->semaphore, 0, 0);
    return ack;
}

void cbench_ack_post(cbench_ack *ack) {
    sem_post(&ack->semaphore);
}

void cbench_ack_wait(cbench_ack *ack) {
    wait_semaphore(&ack->semaphore);
}

void cbench_ack_destroy(cbench_ack *ack) {
    if (ack == NULL) return;
    sem_destroy(&ack->semaphore);
    free(ack);
}

typedef struct latency_probe {
    int64_t started;  /* written by the worker */
    countdown *done;
    sem_t *ack;       /* posted once `started` is written; NULL when the submitter does not wait */
} latency_probe;

static void latency_task(void *arg, int status) {
    (void)status;
    latency_probe *probe = arg;
    cbench_store_i64(&probe->started, cbench_now_ns());
    if (probe->ack != NULL) sem_post(probe->ack);
    countdown_hit(probe->done);
}

int cbench_latency_ctp(ctp_pool *pool, int samples, int64_t gap_ns, bool wait_for_start, int64_t *out_ns) {
    latency_probe *probes = calloc((size_t)samples, sizeof *probes);
    int64_t *submitted = calloc((size_t)samples, sizeof *submitted);
    if (probes == NULL || submitted == NULL) {
        free(probes);
        free(submitted);
        return CTP_ENOMEM;
    }
    sem_t ack;
    sem_init(&ack, 0, 0);
    countdown c;
    countdown_init(&c, samples);
    for (int i = 0; i < samples; i++) {
        probes[i].done = &c;
        probes[i].ack = wait_for_start ? &ack : NULL;
        submitted[i] = cbench_now_ns();
        int rc = ctp_pool_submit(pool, latency_task, &probes[i]);
        if (rc != 0) return rc;
        if (wait_for_start) wait_semaphore(&ack);
        cbench_sleep_ns(gap_ns);
    }
    countdown_wait_destroy(&c);
    sem_destroy(&ack);
    for (int i = 0; i < samples; i++) out_ns[i] = cbench_load_i64(&probes[i].started) - submitted[i];
    free(probes);
    free(submitted);
    return 0;
}

static void *latency_thread(void *arg) {
    latency_probe *probe = arg;
    cbench_store_i64(&probe->started, cbench_now_ns());
    return NULL;
}

int cbench_latency_pthread(int samples, int64_t gap_ns, int64_t *out_ns) {
    for (int i = 0; i < samples; i++) {
        latency_probe probe = {0};
        pthread_t thread;
        int64_t submitted = cbench_now_ns();
        int rc = pthread_create(&thread, NULL, latency_thread, &probe);
        if (rc != 0) return -rc;
        pthread_join(thread, NULL);
        out_ns[i] = probe.started - submitted;
        cbench_sleep_ns(gap_ns);
    }
    return 0;
}

/* The floor of any pool's idle wake: one thread waiting on a condition variable for a sequence
   number, woken by pthread_cond_signal; nothing else. What a pool adds (queueing the task, choosing
   a worker, taking it off the queue) comes on top of this. */
typedef struct wake_floor {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    long sequence;        /* lock: the last sample submitted; -1 to stop */
    int64_t *started;     /* started[i]: written by the waiting thread for sample i */
    sem_t ack;            /* posted after each started[i] when the submitter waits for it */
    bool post_ack;
} wake_floor;

static void *wake_floor_thread(void *arg) {
    wake_floor *state = arg;
    long seen = 0;
    pthread_mutex_lock(&state->lock);
    for (;;) {
        while (state->sequence == seen) pthread_cond_wait(&state->wake, &state->lock);
        if (state->sequence < 0) break;
        seen = state->sequence;
        pthread_mutex_unlock(&state->lock);
        cbench_store_i64(&state->started[seen - 1], cbench_now_ns());
        if (state->post_ack) sem_post(&state->ack);
        pthread_mutex_lock(&state->lock);
    }
    pthread_mutex_unlock(&state->lock);
    return NULL;
}

int cbench_latency_condvar(int samples, int64_t gap_ns, bool wait_for_start, int64_t *out_ns) {
    wake_floor state = {.sequence = 0, .started = calloc((size_t)samples, sizeof(int64_t)),
                        .post_ack = wait_for_start};
    if (state.started == NULL) return CTP_ENOMEM;
    sem_init(&state.ack, 0, 0);
    pthread_mutex_init(&state.lock, NULL);
    pthread_cond_init(&state.wake, NULL);
    pthread_t thread;
    int rc = pthread_create(&thread, NULL, wake_floor_thread, &state);
    if (rc != 0) {
        pthread_cond_destroy(&state.wake);
        pthread_mutex_destroy(&state.lock);
        sem_destroy(&state.ack);
        free(state.started);
        return -rc;
    }
    for (int i = 0; i < samples; i++) {
        int64_t submitted = cbench_now_ns();
        pthread_mutex_lock(&state.lock);
        state.sequence = i + 1;
        pthread_mutex_unlock(&state.lock);
        pthread_cond_signal(&state.wake);
        if (wait_for_start) wait_semaphore(&state.ack);
        cbench_sleep_ns(gap_ns);
        /* The thread must have taken this sample before the next one (it has had 100 us). */
        while (cbench_load_i64(&state.started[i]) == 0) sched_yield();
        out_ns[i] = state.started[i] - submitted;
    }
    pthread_mutex_lock(&state.lock);
    state.sequence = -1;
    pthread_mutex_unlock(&state.lock);
    pthread_cond_signal(&state.wake);
    pthread_join(thread, NULL);
    pthread_cond_destroy(&state.wake);
    pthread_mutex_destroy(&state.lock);
    sem_destroy(&state.ack);
    free(state.started);
    return 0;
}

/* ---- workload 5 ----------------------------------------------------------------------------- */

typedef struct blocking_job {
    unsigned usec;
    countdown *done;
} blocking_job;

static void blocking_task(void *arg, int status) {
    (void)status;
    blocking_job *job = arg;
    usleep(job->usec);
    countdown_hit(job->done);
}

int cbench_blocking_ctp(ctp_pool *pool, int tasks, unsigned usec) {
    countdown c;
    countdown_init(&c, tasks);
    blocking_job job = {.usec = usec, .done = &c};
    for (int i = 0; i < tasks; i++) {
        int rc = ctp_pool_submit(pool, blocking_task, &job);
        if (rc != 0) return rc;
    }
    countdown_wait_destroy(&c);
    return 0;
}

/* ---- workload 6 ----------------------------------------------------------------------------- */

static _Atomic long initialized_workers;

static int trivial_initializer(void *context, unsigned worker_index) {
    (void)context;
    (void)worker_index;
    atomic_fetch_add_explicit(&initialized_workers, 1, memory_order_relaxed);
    return 0;
}

int cbench_lifecycle_ctp(int pools, unsigned threads) {
    for (int i = 0; i < pools; i++) {
        ctp_options options;
        ctp_options_init(&options);
        options.threads = threads;
        options.initializer = trivial_initializer;
        ctp_pool *pool = NULL;
        int rc = ctp_pool_create(&options, &pool);
        if (rc != 0) return rc;
        ctp_pool_close(pool);
        ctp_pool_join(pool);
        ctp_pool_destroy(pool);
    }
    return 0;
}

static void *initializer_thread(void *arg) {
    (void)arg;
    trivial_initializer(NULL, 0);
    return NULL;
}

int cbench_lifecycle_pthread(int pools, unsigned threads) {
    pthread_t ids[64];
    if (threads > 64) return CTP_EINVAL;
    for (int i = 0; i < pools; i++) {
        for (unsigned t = 0; t < threads; t++) {
            int rc = pthread_create(&ids[t], NULL, initializer_thread, NULL);
            if (rc != 0) return -rc;
        }
        for (unsigned t = 0; t < threads; t++) pthread_join(ids[t], NULL);
    }
    return 0;
}
