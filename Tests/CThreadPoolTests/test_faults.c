/*
 * Fault injection: thread creation and allocation failing inside the library (built with
 * -DCTP_FAULT_INJECTION, which routes them through ctp_fault_*; see fault_injection.h). Each failure
 * must be a clean error: the typed code, nothing leaked (run under ASan), no thread left behind,
 * and no accepted task lost.
 */
#define _GNU_SOURCE
#include "CThreadPool.h"
#include "fault_injection.h"
#include "queue.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "test_support.h"

#define PASS(name) printf("ok   %s\n", name)

/* The kernel drops a joined thread from /proc a moment after pthread_join: wait for it, bounded. */
static int thread_count_settles_at(int expected) {
    double deadline = now_seconds() + WAIT_SECONDS;
    while (now_seconds() < deadline) {
        if (process_threads() == expected) return 1;
        poll_pause();
    }
    return process_threads() == expected;
}

/* ---- counters shared with the callbacks ---- */

static atomic_int initialized, finalized, released;

static int count_init(void *context, unsigned index) {
    (void)context, (void)index;
    atomic_fetch_add(&initialized, 1);
    return 0;
}

static void count_fini(void *context, unsigned index) {
    (void)context, (void)index;
    atomic_fetch_add(&finalized, 1);
}

static void count_release(void *context) {
    (void)context;
    atomic_fetch_add(&released, 1);
}

/* The TSan runtime starts a thread of its own with the first thread we create: warm up first,
   then take the baseline. */
static int warm_baseline(void) {
    ctp_pool *pool;
    ctp_options options;
    ctp_options_init(&options);
    options.threads = 1;
    CHECK(ctp_pool_create(&options, &pool) == 0);
    ctp_pool_close(pool);
    CHECK(ctp_pool_join(pool) == 0);
    ctp_pool_destroy(pool);
    return process_threads();
}

static void reset_counters(void) {
    atomic_store(&initialized, 0);
    atomic_store(&finalized, 0);
    atomic_store(&released, 0);
}

/* ---- pthread_create failing at start ---- */

static void test_thread_creation_fails(void) {
    const unsigned threads = 4;
    int baseline = warm_baseline();
    for (unsigned failing = 1; failing <= threads; failing++) {
        for (int iteration = 0; iteration < 50; iteration++) {
            reset_counters();
            ctp_options options;
            ctp_options_init(&options);
            options.threads = threads;
            options.initializer = count_init;
            options.finalizer = count_fini;
            options.context_release = count_release;
            ctp_pool *pool = (ctp_pool *)(uintptr_t)1;
            ctp_fault_thread_countdown = failing;
            CHECK(ctp_pool_create(&options, &pool) == CTP_EAGAIN);
            ctp_fault_thread_countdown = 0;
            CHECK(pool == NULL);
            /* The workers created before the failure started, were stopped and finalized. */
            CHECK(atomic_load(&initialized) == (int)failing - 1);
            CHECK(atomic_load(&finalized) == (int)failing - 1);
            CHECK(atomic_load(&released) == 0); /* on failure the caller keeps its context */
            CHECK(thread_count_settles_at(baseline));
        }
    }
    PASS("faults: pthread_create failing for each worker of 4 (50 times each) -> CTP_EAGAIN, "
         "started workers finalized, no release, no thread left");
}

/* ---- allocation failing at create ---- */

static void test_allocation_fails_at_create(void) {
    int baseline = warm_baseline();
    /* Every allocation create makes, failed in turn, until one create succeeds. */
    unsigned failing = 1;
    for (;; failing++) {
        reset_counters();
        ctp_options options;
        ctp_options_init(&options);
        options.threads = 3;
        options.name_prefix = "alloc";
        options.initializer = count_init;
        options.finalizer = count_fini;
        options.context_release = count_release;
        ctp_pool *pool = NULL;
        ctp_fault_malloc_countdown = failing;
        int rc = ctp_pool_create(&options, &pool);
        int fired = ctp_fault_malloc_countdown == 0;
        ctp_fault_malloc_countdown = 0;
        if (!fired) {
            CHECK(rc == 0); /* create makes fewer allocations than `failing`: it succeeded */
            ctp_pool_close(pool);
            CHECK(ctp_pool_join(pool) == 0);
            ctp_pool_destroy(pool);
            CHECK(atomic_load(&released) == 1);
            break;
        }
        CHECK(rc == CTP_ENOMEM);
        CHECK(pool == NULL);
        CHECK(atomic_load(&initialized) == atomic_load(&finalized));
        CHECK(atomic_load(&released) == 0);
        CHECK(thread_count_settles_at(baseline));
    }
    CHECK(failing > 3); /* at least the pool, the idle stack, the ring and the names */
    PASS("faults: each allocation of ctp_pool_create failing in turn -> CTP_ENOMEM, nothing leaked, no thread left");
}

/* ---- allocation failing while the queue grows ---- */

static atomic_int runs;
static unsigned char ran[4096];

static void marking_task(void *arg, int status) {
    if (status != 0) return;
    ran[(uintptr_t)arg]++;
    atomic_fetch_add(&runs, 1);
}

/* A 1-worker pool whose worker is held by a task waiting at `g` (initialized here). */
static ctp_pool *occupied_pool(gate *g) {
    ctp_options options;
    ctp_options_init(&options);
    options.threads = 1;
    ctp_pool *pool;
    CHECK(ctp_pool_create(&options, &pool) == 0);
    gate_init(g);
    CHECK(ctp_pool_submit(pool, gate_task, g) == 0);
    CHECK_EVENTUALLY(atomic_load(&g->entered) == 1);
    return pool;
}

static void test_allocation_fails_while_growing(void) {
    gate the_gate;
    ctp_pool *pool = occupied_pool(&the_gate);

    /* The inbox takes CTP_INBOX_CAPACITY tasks without allocating. The next submit finds it full and
       drains it into the ring, which starts with 64 slots: growing it fails. */
    uintptr_t accepted = 0;
    for (; accepted < CTP_INBOX_CAPACITY; accepted++) CHECK(ctp_pool_submit(pool, marking_task, (void *)accepted) == 0);
    ctp_fault_malloc_countdown = 1;
    CHECK(ctp_pool_submit(pool, marking_task, (void *)accepted) == CTP_ENOMEM);
    CHECK(ctp_fault_malloc_countdown == 0);
    ctp_stats stats;
    CHECK(ctp_pool_stats(pool, &stats) == 0);
    /* The refused task was not queued; the others are intact, 64 in the ring and the rest still in the inbox. */
    CHECK(stats.queued == CTP_INBOX_CAPACITY);
    /* A batch of copies that needs growing fails whole. */
    ctp_fault_malloc_countdown = 1;
    CHECK(ctp_pool_submit_many(pool, marking_task, (void *)4000, 10) == CTP_ENOMEM);
    CHECK(ctp_pool_stats(pool, &stats) == 0 && stats.queued == CTP_INBOX_CAPACITY);
    /* Without the fault the queue grows as usual. */
    for (; accepted < 1000; accepted++) CHECK(ctp_pool_submit(pool, marking_task, (void *)accepted) == 0);

    gate_open(&the_gate);
    ctp_pool_close(pool);
    CHECK(ctp_pool_join(pool) == 0);
    ctp_pool_destroy(pool);
    gate_destroy(&the_gate);
    CHECK(atomic_load(&runs) == 1000);
    for (uintptr_t i = 0; i < 1000; i++) CHECK(ran[i] == 1);
    CHECK(ran[4000] == 0);
    PASS("faults: allocation failing while the queue grows -> CTP_ENOMEM, task not accepted, the 1000 "
         "accepted ones each run once");
}

/* ---- allocation failing in terminate ---- */

static atomic_int cancelled_calls, ran_calls;

static void counting_task(void *arg, int status) {
    (void)arg;
    atomic_fetch_add(status == 0 ? &ran_calls : &cancelled_calls, 1);
}

static void test_allocation_fails_in_terminate(void) {
    /* terminate allocates at most its list of dropped tasks, when workers hold broadcast tasks (which
       go first), and grows the list for the tasks still in the inbox when it had to take the shared
       ring as its list (100 tasks: the ring starts with 64 slots). Each allocation fails in turn, with
       and without a broadcast task; the tasks must still each get exactly one call. */
    for (int broadcast = 0; broadcast <= 1; broadcast++) {
        unsigned failing = 1;
        for (;; failing++) {
            atomic_store(&cancelled_calls, 0);
            atomic_store(&ran_calls, 0);
            gate the_gate;
            ctp_pool *pool = occupied_pool(&the_gate);
            for (int i = 0; i < 100; i++) CHECK(ctp_pool_submit(pool, counting_task, NULL) == 0);
            if (broadcast) CHECK(ctp_pool_broadcast(pool, counting_task, NULL) == 0);
            ctp_fault_malloc_countdown = failing;
            CHECK(ctp_pool_terminate(pool) == 0);
            int fired = ctp_fault_malloc_countdown == 0;
            ctp_fault_malloc_countdown = 0;
            gate_open(&the_gate);
            CHECK(ctp_pool_join(pool) == 0);
            ctp_pool_destroy(pool);
            gate_destroy(&the_gate);
            CHECK(atomic_load(&cancelled_calls) + atomic_load(&ran_calls) == 100 + broadcast);
            /* The shared queue is dropped: all of it, or (the ring could not grow) the 64 tasks the ring
               held; the worker runs the rest. */
            CHECK(atomic_load(&cancelled_calls) >= 64);
            if (!fired) {
                CHECK(atomic_load(&cancelled_calls) == 100 + broadcast); /* nothing failed: all dropped */
                break;
            }
        }
        CHECK(failing > 1); /* at least one allocation failed */
    }
    PASS("faults: allocation failing inside terminate -> every task still gets exactly one call");
}

int main(void) {
    test_thread_creation_fails();
    test_allocation_fails_at_create();
    test_allocation_fails_while_growing();
    test_allocation_fails_in_terminate();
    printf("test_faults: all tests passed\n");
    return 0;
}
