/* Private declarations shared by the CThreadPool sources. Not part of the public API. */
#ifndef CTP_INTERNAL_H
#define CTP_INTERNAL_H

#include "CThreadPool.h"
#include "fault_injection.h"
#include "memory.h"
#include "worker_names.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* ---- The task ring (ring.c) ------------------------------------------------------------- */

typedef struct ctp_task {
    ctp_task_fn fn;
    void *arg;
} ctp_task;

/* A FIFO of tasks in a power-of-two array. The live tasks are the `count` slots starting at
   `head`, wrapping at `capacity`; `mask == capacity - 1`. Not synchronized: the pool's lock
   guards it. An empty ring may have no storage (capacity 0). */
typedef struct ctp_ring {
    ctp_task *slots;
    size_t capacity;
    size_t mask;
    size_t head;
    size_t count;
} ctp_ring;

/* Leaves the ring empty with room for at least `min_capacity` tasks (rounded up to a power of
   two). Returns CTP_ENOMEM or 0. */
int ctp_ring_init(ctp_ring *ring, size_t min_capacity);
void ctp_ring_free(ctp_ring *ring);
/* Moves the tasks to storage for at least `min_capacity` (and at least twice the old capacity).
   CTP_ENOMEM: the ring is unchanged. */
int ctp_ring_grow(ctp_ring *ring, size_t min_capacity);
/* Appends one task, doubling the storage when full. CTP_ENOMEM: the ring is unchanged. Inline: it is
   on every submit's path, and out of line (the rare growth compiled into it) it cost 26 more
   instructions per ctp_pool_submit (callgrind: 188 -> 162). */
static inline int ctp_ring_push(ctp_ring *ring, ctp_task task) {
    if (ring->count == ring->capacity) {
        int rc = ctp_ring_grow(ring, ring->count + 1);
        if (rc != 0) return rc;
    }
    ring->slots[(ring->head + ring->count) & ring->mask] = task;
    ring->count++;
    return 0;
}
/* Appends `copies` copies of one task, growing once as needed: all of them, or none (CTP_ENOMEM). */
int ctp_ring_push_copies(ctp_ring *ring, ctp_task task, size_t copies);
/* Removes up to `max` tasks from the front into `out`, in FIFO order; returns how many. */
size_t ctp_ring_pop(ctp_ring *ring, ctp_task *out, size_t max);

/* ---- The inbox (inbox.c) ---------------------------------------------------------------- */

/* Where submitters leave tasks without taking the pool's lock: a fixed array of slots that producers
   claim by advancing `tail` with a compare-and-swap (Vyukov's bounded queue), and that whoever holds
   the pool's lock empties, oldest first (the only consumer). Each slot's `sequence` says whose turn it
   is: equal to a position, the slot is free for the producer that claims that position; position + 1,
   it holds that producer's task; position + CTP_INBOX_CAPACITY once taken, it is free again for the
   next lap. A full or turned-off inbox sends submitters to the lock.

   Order: the ring holds tasks older than the inbox's. Workers take from the ring first, and from the
   inbox once the ring is empty; a submit that takes the lock drains the inbox into the ring before it
   queues its own task. */
enum { CTP_INBOX_CAPACITY = 512 }; /* a power of two */

/* In `tail`: the inbox takes no tasks (the pool stopped running, or its queue is bounded). */
#define CTP_INBOX_OFF ((size_t)1 << (sizeof(size_t) * 8 - 1))

typedef struct ctp_inbox_slot {
    atomic_size_t sequence;
    ctp_task task;            /* written by the slot's producer, read by the drain: see `sequence` */
} ctp_inbox_slot;

typedef struct ctp_inbox {
    ctp_inbox_slot *slots;    /* immutable after init */
    size_t head;              /* the pool's lock: the next position to drain */
    /* On a line of its own: every submit writes it. */
    _Alignas(CTP_CACHE_LINE) atomic_size_t tail; /* the next position to claim, | CTP_INBOX_OFF */
} ctp_inbox;

/* CTP_ENOMEM or 0. */
int ctp_inbox_init(ctp_inbox *inbox);
void ctp_inbox_free(ctp_inbox *inbox);

/* Leaves `task` in the inbox: true, or false when the inbox is full or off (the caller takes the
   pool's lock instead). Any thread, without the lock. Inline: it is the whole of a submit. */
static inline bool ctp_inbox_push(ctp_inbox *inbox, ctp_task task) {
    size_t tail = atomic_load_explicit(&inbox->tail, memory_order_relaxed);
    for (;;) {
        if (tail & CTP_INBOX_OFF) return false;
        ctp_inbox_slot *slot = &inbox->slots[tail & (CTP_INBOX_CAPACITY - 1)];
        size_t sequence = atomic_load_explicit(&slot->sequence, memory_order_acquire);
        if (sequence == tail) {
            /* Sequentially consistent: a worker going to sleep counts itself idle and then looks at
               `tail`; a submitter claims a slot and then looks at the idle count (see pool.c), so one
               of the two sees the other. A failed exchange reloads `tail`. */
            if (atomic_compare_exchange_weak_explicit(&inbox->tail, &tail, tail + 1, memory_order_seq_cst,
                                                      memory_order_relaxed)) {
                slot->task = task;
                atomic_store_explicit(&slot->sequence, tail + 1, memory_order_release);
                return true;
            }
        } else if ((ptrdiff_t)(sequence - tail) < 0) {
            return false; /* full: the slot still holds a task of the previous lap */
        } else {
            tail = atomic_load_explicit(&inbox->tail, memory_order_relaxed); /* claimed by another */
        }
    }
}

/* Tasks claimed and not yet drained, including any a producer is still writing. With the pool's lock. */
static inline size_t ctp_inbox_count(ctp_inbox *inbox) {
    return (atomic_load_explicit(&inbox->tail, memory_order_seq_cst) & ~CTP_INBOX_OFF) - inbox->head;
}

/* Later pushes fail; tasks already claimed are still drained. With the pool's lock. */
void ctp_inbox_turn_off(ctp_inbox *inbox);

/* Takes up to `max` tasks, oldest first, into `out`; returns how many. Stops at a slot claimed but not
   yet filled. With the pool's lock (the only consumer). */
size_t ctp_inbox_pop(ctp_inbox *inbox, ctp_task *out, size_t max);

/* Moves the inbox's tasks, oldest first, to the end of `ring`, waiting for any slot claimed but not
   yet filled (its producer is a few instructions from filling it, unless that thread was preempted).
   With the pool's lock (the only consumer). CTP_ENOMEM when the ring could not grow (the rest stay in
   the inbox), else 0. */
int ctp_inbox_drain(ctp_inbox *inbox, ctp_ring *ring);

#endif /* CTP_INTERNAL_H */
