/* Tests for the inbox (queue.c): submitters' lock-free way into a pool's queue, and its order
 * through a pool: tasks start in submission order whichever way they went in.
 *
 * Prints one line per test; exits 1 on the first failed check.
 */
#define _GNU_SOURCE
#include "queue.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"
#include "numbered_tasks.h"

#define PASS(name) printf("ok   %s\n", name)

/* Drains everything into `ring` and checks that the tasks are `first`, `first + 1`, ... in order. */
static size_t drain_and_check(ctp_inbox *inbox, ctp_ring *ring, size_t first, size_t expected_count) {
    CHECK_EQ(ctp_inbox_drain(inbox, ring), 0);
    CHECK_EQ(ring->count, expected_count);
    ctp_task task;
    for (size_t i = 0; i < expected_count; i++) {
        CHECK(ctp_ring_pop(ring, &task, 1) == 1);
        check_task_n(task, first + i);
    }
    CHECK_EQ(ctp_inbox_count(inbox), 0);
    return first + expected_count;
}

static void test_every_wrap_around(void) {
    /* Runs of every length from 1 to the capacity, one after another: the head passes through every
       slot, and runs start at every offset and wrap around the end of the array. */
    ctp_inbox inbox;
    ctp_ring ring;
    CHECK(ctp_inbox_init(&inbox) == 0);
    CHECK(ctp_ring_init(&ring, 0) == 0);
    size_t next = 0, drained = 0;
    for (size_t run = 1; run <= CTP_INBOX_CAPACITY; run++) {
        for (size_t i = 0; i < run; i++) CHECK(ctp_inbox_push(&inbox, task_n(next++)));
        CHECK_EQ(ctp_inbox_count(&inbox), run);
        drained = drain_and_check(&inbox, &ring, drained, run);
    }
    CHECK_EQ(drained, (size_t)CTP_INBOX_CAPACITY * (CTP_INBOX_CAPACITY + 1) / 2);
    ctp_ring_free(&ring);
    ctp_inbox_free(&inbox);
    PASS("inbox: runs of every length from every offset come out whole and in order");
}

static void test_full_and_off(void) {
    ctp_inbox inbox;
    ctp_ring ring;
    CHECK(ctp_inbox_init(&inbox) == 0);
    CHECK(ctp_ring_init(&ring, 0) == 0);
    /* Full at its capacity, at any offset; room again after a drain. */
    for (size_t offset = 0; offset < 3; offset++) {
        size_t first = offset * 1000;
        for (size_t i = 0; i < CTP_INBOX_CAPACITY; i++) CHECK(ctp_inbox_push(&inbox, task_n(first + i)));
        CHECK(!ctp_inbox_push(&inbox, task_n(999999)));
        CHECK_EQ(ctp_inbox_count(&inbox), CTP_INBOX_CAPACITY);
        drain_and_check(&inbox, &ring, first, CTP_INBOX_CAPACITY);
        CHECK(ctp_inbox_push(&inbox, task_n(first + 500)));
        drain_and_check(&inbox, &ring, first + 500, 1);
    }
    /* Turned off: pushes fail, what was in it still drains. */
    CHECK(ctp_inbox_push(&inbox, task_n(7)));
    ctp_inbox_turn_off(&inbox);
    CHECK(!ctp_inbox_push(&inbox, task_n(8)));
    CHECK_EQ(ctp_inbox_count(&inbox), 1);
    drain_and_check(&inbox, &ring, 7, 1);
    ctp_ring_free(&ring);
    ctp_inbox_free(&inbox);
    PASS("inbox: full at its capacity from any offset, room after a drain; off refuses pushes, keeps its tasks");
}

/* A producer that claimed a slot and writes its task a little later (a preempted submitter). */
typedef struct {
    ctp_inbox_slot *slot;
    size_t position;
    ctp_task task;
    atomic_int started;
} late_producer;

static void *late_producer_main(void *argument) {
    late_producer *late = argument;
    atomic_store(&late->started, 1);
    struct timespec pause = { 0, 20 * 1000 * 1000 }; /* long enough for the drain to be waiting */
    nanosleep(&pause, NULL);
    late->slot->task = late->task;
    atomic_store_explicit(&late->slot->sequence, late->position + 1, memory_order_release);
    return NULL;
}

static void test_drain_waits_for_claimed_slot(void) {
    /* A slot claimed and not yet written is counted (the pool must not think the inbox empty), and a
       drain waits for it: the tasks behind it are newer, so none may go ahead of it. */
    ctp_inbox inbox;
    ctp_ring ring;
    CHECK(ctp_inbox_init(&inbox) == 0);
    CHECK(ctp_ring_init(&ring, 0) == 0);
    CHECK(ctp_inbox_push(&inbox, task_n(0)));
    size_t claimed = atomic_fetch_add(&inbox.tail, 1); /* what a producer's compare-and-swap does */
    CHECK(ctp_inbox_push(&inbox, task_n(2)));
    CHECK_EQ(ctp_inbox_count(&inbox), 3);
    late_producer late = { &inbox.slots[claimed & (CTP_INBOX_CAPACITY - 1)], claimed, task_n(1), 0 };
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, late_producer_main, &late) == 0);
    CHECK_EVENTUALLY(atomic_load(&late.started) == 1);
    CHECK_EQ(ctp_inbox_drain(&inbox, &ring), 0);
    CHECK(pthread_join(thread, NULL) == 0);
    ctp_task task;
    for (size_t i = 0; i < 3; i++) {
        CHECK(ctp_ring_pop(&ring, &task, 1) == 1);
        check_task_n(task, i);
    }
    CHECK_EQ(ctp_inbox_count(&inbox), 0);
    ctp_ring_free(&ring);
    ctp_inbox_free(&inbox);
    PASS("inbox: a claimed, unwritten slot is counted, and a drain waits for it; the order holds");
}

static void test_pop(void) {
    /* What a worker does when the ring is empty: takes up to a batch straight from the inbox, in
       order, stopping at a slot claimed but not yet written. */
    ctp_inbox inbox;
    CHECK(ctp_inbox_init(&inbox) == 0);
    ctp_task out[CTP_INBOX_CAPACITY];
    size_t next = 0, popped = 0;
    for (size_t round = 0; round < 5; round++) { /* 5 x 300 tasks: the head wraps around twice */
        for (size_t i = 0; i < 300; i++) CHECK(ctp_inbox_push(&inbox, task_n(next++)));
        CHECK_EQ(ctp_inbox_pop(&inbox, out, 7), 7);
        for (size_t i = 0; i < 7; i++) check_task_n(out[i], popped++);
        CHECK_EQ(ctp_inbox_pop(&inbox, out, CTP_INBOX_CAPACITY), 293);
        for (size_t i = 0; i < 293; i++) check_task_n(out[i], popped++);
        CHECK_EQ(ctp_inbox_pop(&inbox, out, 1), 0);
    }
    CHECK(ctp_inbox_push(&inbox, task_n(next)));
    size_t claimed = atomic_fetch_add(&inbox.tail, 1);
    CHECK(ctp_inbox_push(&inbox, task_n(next + 2)));
    CHECK_EQ(ctp_inbox_pop(&inbox, out, 3), 1);
    check_task_n(out[0], next);
    ctp_inbox_slot *slot = &inbox.slots[claimed & (CTP_INBOX_CAPACITY - 1)];
    slot->task = task_n(next + 1);
    atomic_store(&slot->sequence, claimed + 1);
    CHECK_EQ(ctp_inbox_pop(&inbox, out, 3), 2);
    check_task_n(out[0], next + 1);
    check_task_n(out[1], next + 2);
    CHECK_EQ(ctp_inbox_count(&inbox), 0);
    ctp_inbox_free(&inbox);
    PASS("inbox: pop takes up to a batch in order, around the end, and stops at a claimed, unwritten slot");
}

/* ---- concurrent producers into the inbox ---- */

enum { PRODUCERS = 4, PER_PRODUCER = 200000 };

typedef struct {
    ctp_inbox *inbox;
    size_t producer;
} producer_args;

static void *producer_main(void *argument) {
    producer_args *args = argument;
    for (size_t i = 0; i < PER_PRODUCER; i++) {
        /* arg: producer in the high bits, sequence number in the low ones */
        ctp_task task = { dummy_fn_a, (void *)(uintptr_t)((args->producer << 32) | (i + 1)) };
        while (!ctp_inbox_push(args->inbox, task)) sched_yield(); /* full: the consumer drains it */
    }
    return NULL;
}

static void test_concurrent_producers(void) {
    /* Four threads push 200,000 tasks each while one consumer drains: every task comes out exactly
       once, and each producer's tasks in the order it pushed them. */
    ctp_inbox inbox;
    ctp_ring ring;
    CHECK(ctp_inbox_init(&inbox) == 0);
    CHECK(ctp_ring_init(&ring, 0) == 0);
    pthread_t threads[PRODUCERS];
    producer_args args[PRODUCERS];
    for (size_t p = 0; p < PRODUCERS; p++) {
        args[p] = (producer_args){ &inbox, p };
        CHECK(pthread_create(&threads[p], NULL, producer_main, &args[p]) == 0);
    }
    size_t next[PRODUCERS] = { 0 };
    size_t total = 0;
    double deadline = now_seconds() + WAIT_SECONDS * 6;
    while (total < (size_t)PRODUCERS * PER_PRODUCER) {
        CHECK(ctp_inbox_drain(&inbox, &ring) == 0);
        ctp_task task;
        while (ctp_ring_pop(&ring, &task, 1) == 1) {
            uintptr_t value = (uintptr_t)task.arg;
            size_t producer = value >> 32, sequence = value & 0xffffffffu;
            CHECK(producer < PRODUCERS);
            CHECK_EQ(sequence, next[producer] + 1); /* none lost, none twice, in its producer's order */
            next[producer]++;
            total++;
        }
        CHECK(now_seconds() < deadline);
    }
    for (size_t p = 0; p < PRODUCERS; p++) {
        CHECK(pthread_join(threads[p], NULL) == 0);
        CHECK_EQ(next[p], PER_PRODUCER);
    }
    CHECK_EQ(ctp_inbox_count(&inbox), 0);
    ctp_ring_free(&ring);
    ctp_inbox_free(&inbox);
    PASS("inbox: 4 producers x 200,000 tasks against one draining consumer: each task once, in producer order");
}

/* ---- order through a pool: inbox, full inbox, submit_many ---- */

static atomic_size_t started;
static size_t order[4 * CTP_INBOX_CAPACITY];

static void recording_task(void *arg, int status) {
    CHECK(status == 0);
    order[atomic_fetch_add(&started, 1)] = (size_t)(uintptr_t)arg;
}

typedef struct {
    atomic_int entered;
    atomic_int open;
} hold;

static void holding_task(void *arg, int status) {
    (void)status;
    hold *h = arg;
    atomic_store(&h->entered, 1);
    while (!atomic_load(&h->open)) sched_yield();
}

static void test_pool_order(void) {
    /* One worker, held while everything is queued: more tasks than the inbox holds (the rest go
       through the lock after draining it), then a submit_many, then single submits again. They must
       start in exactly that order. */
    ctp_options options;
    ctp_options_init(&options);
    options.threads = 1;
    ctp_pool *pool;
    CHECK(ctp_pool_create(&options, &pool) == 0);
    hold h = { 0, 0 };
    CHECK(ctp_pool_submit(pool, holding_task, &h) == 0);
    CHECK_EVENTUALLY(atomic_load(&h.entered) == 1);
    size_t n = 0;
    for (; n < CTP_INBOX_CAPACITY + 100; n++) CHECK(ctp_pool_submit(pool, recording_task, (void *)(uintptr_t)n) == 0);
    CHECK(ctp_pool_submit_many(pool, recording_task, (void *)(uintptr_t)n, 50) == 0);
    size_t many_start = n;
    n += 50;
    for (; n < 2 * CTP_INBOX_CAPACITY + 300; n++) CHECK(ctp_pool_submit(pool, recording_task, (void *)(uintptr_t)n) == 0);
    ctp_stats stats;
    CHECK(ctp_pool_stats(pool, &stats) == 0);
    CHECK_EQ(stats.queued, n);
    atomic_store(&h.open, 1);
    CHECK(ctp_pool_close(pool) == 0);
    CHECK(ctp_pool_join(pool) == 0);
    ctp_pool_destroy(pool);
    CHECK_EQ(atomic_load(&started), n);
    for (size_t i = 0; i < n; i++) {
        size_t expected = i >= many_start && i < many_start + 50 ? many_start : i;
        CHECK_EQ(order[i], expected);
    }
    PASS("inbox: through a pool, tasks start in submission order across the inbox, a full inbox and submit_many");
}

int main(void) {
    test_every_wrap_around();
    test_full_and_off();
    test_drain_waits_for_claimed_slot();
    test_pop();
    test_concurrent_producers();
    test_pool_order();
    printf("test_inbox: all tests passed\n");
    return 0;
}
