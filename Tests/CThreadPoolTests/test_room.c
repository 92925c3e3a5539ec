/*
 * Room in a bounded queue without blocking a thread: ctp_pool_reserve and its waiters, the reserved
 * submits, giving slots back, cancelling a waiter, and close/terminate calling every waiter once.
 * Every count exact: a waiter's `ready` runs exactly once, the queue never holds more than its
 * capacity, and every task runs once.
 */
#define _GNU_SOURCE
#include "fault_injection.h"
#include "test_support.h"

#include <string.h>

static void pass(const char *name) { printf("ok   %s\n", name); }

static ctp_stats stats_of(ctp_pool *pool) {
    ctp_stats stats;
    CHECK_EQ(ctp_pool_stats(pool, &stats), 0);
    return stats;
}

static ctp_pool *bounded_pool(unsigned threads, size_t capacity) {
    ctp_options options;
    ctp_options_init(&options);
    options.threads = threads;
    options.queue_capacity = capacity;
    ctp_pool *pool;
    CHECK_EQ(ctp_pool_create(&options, &pool), 0);
    return pool;
}

/* A waiter that records how its `ready` was called. */
typedef struct recorded_waiter {
    ctp_room_waiter waiter;
    atomic_int calls;
    atomic_int status;
} recorded_waiter;

static void record_ready(ctp_room_waiter *waiter, int status) {
    recorded_waiter *r = (recorded_waiter *)waiter;
    atomic_store(&r->status, status);
    atomic_fetch_add(&r->calls, 1);
}

static void recorded_init(recorded_waiter *r) {
    memset(r, 0, sizeof *r);
    r->waiter.ready = record_ready;
    atomic_init(&r->calls, 0);
    atomic_init(&r->status, 1);
}

static atomic_int ran;
static void count_task(void *arg, int status) {
    (void)arg;
    if (status == 0) atomic_fetch_add(&ran, 1);
}

static void test_reserve_waits_and_is_served_in_order(void) {
    ctp_pool *pool = bounded_pool(1, 2);
    gate g;
    gate_init(&g);
    atomic_store(&ran, 0);
    CHECK_EQ(ctp_pool_submit(pool, gate_task, &g), 0);
    CHECK_EVENTUALLY(atomic_load(&g.entered) == 1);
    /* Two slots: one reserved now, one queued task; the queue is then full. */
    CHECK_EQ(ctp_pool_reserve(pool, 1, NULL), 0);
    CHECK_EQ(ctp_pool_submit(pool, count_task, NULL), 0);
    CHECK_EQ(ctp_pool_reserve(pool, 1, NULL), CTP_EAGAIN);
    CHECK_EQ(ctp_pool_try_submit(pool, count_task, NULL), CTP_EAGAIN);
    CHECK_EQ(ctp_pool_reserve(pool, 3, NULL), CTP_EINVAL);
    CHECK_EQ(ctp_pool_reserve(pool, 0, NULL), CTP_EINVAL);
    CHECK_EQ(stats_of(pool).queued, 1); /* a reserved slot is not a queued task */
    recorded_waiter first, second, third;
    recorded_init(&first);
    recorded_init(&second);
    recorded_init(&third);
    CHECK_EQ(ctp_pool_reserve(pool, 2, &first.waiter), 1);
    CHECK_EQ(ctp_pool_reserve(pool, 1, &second.waiter), 1);
    CHECK_EQ(ctp_pool_reserve(pool, 1, &third.waiter), 1);
    /* Giving the reserved slot back leaves 1 free: too few for `first`, and `second` waits behind it. */
    CHECK_EQ(ctp_pool_release_reserved(pool, 1), 0);
    CHECK_EQ(ctp_pool_release_reserved(pool, 1), CTP_EINVAL);
    CHECK_EQ(atomic_load(&first.calls) + atomic_load(&second.calls), 0);
    /* Cancelling `third` takes it back; it is never called. */
    CHECK_EQ(ctp_pool_cancel_wait(pool, &third.waiter), 1);
    CHECK_EQ(ctp_pool_cancel_wait(pool, &third.waiter), 0);
    /* The worker takes the queued task: 2 free, for `first`. */
    gate_open(&g);
    CHECK_EVENTUALLY(atomic_load(&first.calls) == 1);
    CHECK_EQ(atomic_load(&first.status), 0);
    CHECK_EQ(ctp_pool_cancel_wait(pool, &first.waiter), 0); /* called already */
    CHECK_EQ(ctp_pool_submit_reserved(pool, count_task, NULL, 0), 0);
    CHECK_EQ(ctp_pool_submit_many_reserved(pool, count_task, NULL, 1), 0);
    CHECK_EVENTUALLY(atomic_load(&second.calls) == 1);
    CHECK_EQ(atomic_load(&second.status), 0);
    CHECK_EQ(ctp_pool_submit_reserved(pool, count_task, NULL, CTP_PRIORITY_HIGH), 0);
    /* No slot left reserved: a reserved submit is refused. */
    CHECK_EQ(ctp_pool_submit_reserved(pool, count_task, NULL, 0), CTP_EINVAL);
    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_join(pool), 0);
    CHECK_EQ(atomic_load(&ran), 4);
    CHECK_EQ(atomic_load(&third.calls), 0);
    ctp_pool_destroy(pool);
    gate_destroy(&g);
    pass("reserve: waiters served first in, first out as tasks leave; cancel takes one back; reserved submits never wait");
}

static void test_close_and_terminate_call_every_waiter(void) {
    for (int terminate = 0; terminate <= 1; terminate++) {
        ctp_pool *pool = bounded_pool(1, 1);
        gate g;
        gate_init(&g);
        CHECK_EQ(ctp_pool_submit(pool, gate_task, &g), 0);
        CHECK_EVENTUALLY(atomic_load(&g.entered) == 1);
        CHECK_EQ(ctp_pool_submit(pool, count_task, NULL), 0);
        enum { WAITERS = 8 };
        recorded_waiter waiters[WAITERS];
        for (int i = 0; i < WAITERS; i++) {
            recorded_init(&waiters[i]);
            CHECK_EQ(ctp_pool_reserve(pool, 1, &waiters[i].waiter), 1);
        }
        if (terminate) ctp_pool_terminate(pool); else ctp_pool_close(pool);
        /* Called on the closing thread, before close/terminate returned. */
        for (int i = 0; i < WAITERS; i++) {
            CHECK_EQ(atomic_load(&waiters[i].calls), 1);
            CHECK_EQ(atomic_load(&waiters[i].status), CTP_ECLOSED);
            CHECK_EQ(ctp_pool_cancel_wait(pool, &waiters[i].waiter), 0);
        }
        CHECK_EQ(ctp_pool_reserve(pool, 1, NULL), CTP_ECLOSED);
        gate_open(&g);
        CHECK_EQ(ctp_pool_join(pool), 0);
        ctp_pool_destroy(pool);
        gate_destroy(&g);
    }
    pass("reserve: close and terminate call every waiter once with CTP_ECLOSED");
}

/* Producers that never block: each reserves (or queues a waiter whose ready submits), and a sampler
   checks the queue never holds more than its capacity. */
typedef struct producer_waiter {
    ctp_room_waiter waiter;
    ctp_pool *pool;
} producer_waiter;

static atomic_int ready_calls, refused;
static void submit_when_ready(ctp_room_waiter *waiter, int status) {
    producer_waiter *p = (producer_waiter *)waiter;
    atomic_fetch_add(&ready_calls, 1);
    if (status == 0) {
        CHECK_EQ(ctp_pool_submit_reserved(p->pool, count_task, NULL, 0), 0);
    } else {
        atomic_fetch_add(&refused, 1);
    }
    free(p);
}

static void slow_task(void *arg, int status) {
    (void)arg;
    if (status == 0) {
        struct timespec ts = { 0, 20 * 1000 };
        nanosleep(&ts, NULL);
        atomic_fetch_add(&ran, 1);
    }
}

static void test_producers_never_overfill(void) {
    enum { CAPACITY = 4, TASKS = 20000 };
    ctp_pool *pool = bounded_pool(2, CAPACITY);
    atomic_store(&ran, 0);
    atomic_store(&ready_calls, 0);
    atomic_store(&refused, 0);
    int waited = 0;
    size_t peak = 0;
    for (int i = 0; i < TASKS; i++) {
        producer_waiter *p = malloc(sizeof *p);
        CHECK(p != NULL);
        memset(p, 0, sizeof *p);
        p->waiter.ready = submit_when_ready;
        p->pool = pool;
        int rc = ctp_pool_reserve(pool, 1, &p->waiter);
        if (rc == 0) {
            CHECK_EQ(ctp_pool_submit_reserved(pool, slow_task, NULL, 0), 0);
            free(p);
        } else {
            CHECK_EQ(rc, 1);
            waited++;
            /* Don't let the waiters pile up without bound: the point is the queue's bound. */
            if (waited % 64 == 0) CHECK_EVENTUALLY(atomic_load(&ready_calls) == waited);
        }
        size_t queued = stats_of(pool).queued;
        if (queued > peak) peak = queued;
    }
    CHECK_EVENTUALLY(atomic_load(&ready_calls) == waited);
    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_join(pool), 0);
    CHECK(peak <= CAPACITY);
    CHECK(waited > 0);
    CHECK_EQ(atomic_load(&refused), 0);
    CHECK_EQ(atomic_load(&ran), TASKS);
    ctp_pool_destroy(pool);
    printf("ok   reserve: %d tasks through a queue of %d, %d of them after a wait, peak queued %zu, each ran once\n",
           TASKS, CAPACITY, waited, peak);
}

static void test_unbounded_reserve_is_a_no_op(void) {
    ctp_options options;
    ctp_options_init(&options);
    options.threads = 1;
    ctp_pool *pool;
    CHECK_EQ(ctp_pool_create(&options, &pool), 0);
    atomic_store(&ran, 0);
    CHECK_EQ(ctp_pool_reserve(pool, 5, NULL), 0);
    CHECK_EQ(ctp_pool_submit_reserved(pool, count_task, NULL, 0), 0);
    CHECK_EQ(ctp_pool_submit_many_reserved(pool, count_task, NULL, 3), 0);
    CHECK_EQ(ctp_pool_release_reserved(pool, 1), 0);
    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_join(pool), 0);
    CHECK_EQ(atomic_load(&ran), 4);
    ctp_pool_destroy(pool);
    pass("reserve: without a capacity, reserving succeeds and reserved submits queue as usual");
}

int main(void) {
    test_reserve_waits_and_is_served_in_order();
    test_close_and_terminate_call_every_waiter();
    test_producers_never_overfill();
    test_unbounded_reserve_is_a_no_op();
    return 0;
}
