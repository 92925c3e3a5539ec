/* The pool's task queue (queue.c): a first-in, first-out queue per priority lane. The default lane,
   where every task without a priority goes, is in two parts:

       submitters --lock-free--> inbox (fixed, newer tasks) --drained under the lock--> ring (older tasks)
       takers, under the lock: the ring first, then the inbox

   The inbox lets a submit queue a task with one compare-and-swap; the ring holds any number of tasks.
   What keeps the two one FIFO queue: the ring only ever holds tasks older than the inbox's. So a push
   that takes the lock (ctp_queue_push, ctp_queue_push_many) first drains the inbox into the ring, and
   takers (ctp_queue_take, ctp_queue_take_all) empty the ring before they look at the inbox.

   The other lanes (ctp_pool_submit_priority) are plain rings, pushed to and taken from under the lock,
   so that only tasks with a priority pay for them. Takers look at the higher lanes first, except that
   a lane passed over CTP_PRIORITY_PASS_LIMIT times in a row goes first once (ctp_queue_take_lanes).
   While the other lanes are empty, one load of `prioritized` says so and a take is the default lane's
   alone; a lock-free submit never looks at them. So the inbox, the ring and the wake protocol work as
   they would in a queue without lanes.

   The pool's lock guards the ring and the inbox's consuming side: every function here but
   ctp_queue_try_push is called with it held. The pool and its workers use the ctp_queue_* functions;
   the ring and the inbox are declared here for the queue's inline paths and their own tests, and a
   ring also serves as a plain list of tasks (a worker's broadcast tasks, terminate's dropped ones). */
#ifndef CTP_QUEUE_H
#define CTP_QUEUE_H

#include "CThreadPool.h"
#include "ctp_memory.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct ctp_task {
    ctp_task_fn fn;
    void *arg;
} ctp_task;

/* ---- The ring ------------------------------------------------------------------------------ */

/* A FIFO of tasks in a power-of-two array. The live tasks are the `count` slots starting at
   `head`, wrapping at `capacity`; `mask == capacity - 1`. Not synchronized. An empty ring may have
   no storage (capacity 0). */
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
/* Appends one task, doubling the storage when full. CTP_ENOMEM: the ring is unchanged. Inline, with
   only the rare growth out of line: a drain runs it for every task it moves, and a locked push once. */
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

/* ---- The inbox ----------------------------------------------------------------------------- */

/* Where submitters leave tasks without taking the pool's lock: a fixed array of slots that producers
   claim by advancing `tail` with a compare-and-swap (Vyukov's bounded queue), and that whoever holds
   the pool's lock empties, oldest first (the only consumer). Each slot's `sequence` says whose turn it
   is: equal to a position, the slot is free for the producer that claims that position; position + 1,
   it holds that producer's task; position + CTP_INBOX_CAPACITY once taken, it is free again for the
   next lap. A full or turned-off inbox sends submitters to the lock. */
enum { CTP_INBOX_CAPACITY = 512 }; /* a power of two */

/* In `tail`: the inbox takes no tasks (the queue is closed, or bounded). */
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

/* ---- The lanes ----------------------------------------------------------------------------- */

/* The priority lanes, lowest first; a lane's number is its rank. */
enum ctp_lane { CTP_LANE_BACKGROUND, CTP_LANE_UTILITY, CTP_LANE_DEFAULT, CTP_LANE_HIGH, CTP_LANES };

/* The lane of a priority on CThreadPool.h's scale (0 or more). */
static inline enum ctp_lane ctp_lane_of(int priority) {
    if (priority == CTP_PRIORITY_UNSPECIFIED) return CTP_LANE_DEFAULT;
    if (priority < CTP_PRIORITY_UTILITY) return CTP_LANE_BACKGROUND;
    if (priority < CTP_PRIORITY_DEFAULT) return CTP_LANE_UTILITY;
    if (priority < CTP_PRIORITY_HIGH) return CTP_LANE_DEFAULT;
    return CTP_LANE_HIGH;
}

/* ---- The queue ----------------------------------------------------------------------------- */

typedef struct ctp_queue {
    ctp_ring ring;            /* the pool's lock: the default lane's older tasks */
    size_t prioritized;       /* the pool's lock: tasks in the other lanes (0: takers need not look) */
    size_t limit;             /* immutable: 0 (unbounded), or the most tasks the queue holds */
    size_t reserved;          /* the pool's lock: a bounded queue's slots held by ctp_pool_reserve's
                                 callers for tasks they have not queued yet (they count against `limit`) */
    bool closed;              /* the pool's lock: pushes fail with CTP_ECLOSED */
    /* The pool's lock. Per lane: tasks taken from higher lanes since this lane's last take, while it
       had tasks. Next to the inbox's head, which a take of the default lane writes too. */
    unsigned passed[CTP_LANES];
    ctp_inbox inbox;          /* the default lane's newer tasks; its tail is on a line of its own */
    /* The pool's lock: the other lanes ([CTP_LANE_DEFAULT] unused). After the inbox's tail, which every
       submit writes, on lines of their own. */
    _Alignas(CTP_CACHE_LINE) ctp_ring lanes[CTP_LANES];
} ctp_queue;

/* An empty queue, unbounded (`limit` 0) or holding at most `limit` tasks (of every lane). A bounded
   queue's inbox is off: the limit counts every queued task, which only the lock can do, so its pushes
   take the lock.
   CTP_ENOMEM or 0; ctp_queue_free undoes a partial init. */
int ctp_queue_init(ctp_queue *queue, size_t limit);
void ctp_queue_free(ctp_queue *queue);

/* The lock-free push: true, or false when the inbox is full or off, and the caller takes the lock and
   calls ctp_queue_push. Any thread, without the lock. Inline: it is the whole of a submit. */
static inline bool ctp_queue_try_push(ctp_queue *queue, ctp_task task) {
    return ctp_inbox_push(&queue->inbox, task);
}

/* The locked push: drains the inbox into the ring, so that the task goes after every task pushed
   before it, then appends it. CTP_ENOMEM (the ring could not grow; the task is not queued),
   CTP_ECLOSED, or 0. Inline: on a bounded queue it is every submit's. */
static inline int ctp_queue_push(ctp_queue *queue, ctp_task task) {
    int rc = ctp_inbox_drain(&queue->inbox, &queue->ring);
    if (rc == 0 && queue->closed) rc = CTP_ECLOSED;
    if (rc == 0) rc = ctp_ring_push(&queue->ring, task);
    return rc;
}

/* The locked push to a lane other than the default one: appends the task to that lane's ring.
   CTP_ENOMEM (the task is not queued), CTP_ECLOSED, or 0. Out of line: only tasks with a priority
   come here. */
int ctp_queue_push_prioritized(ctp_queue *queue, ctp_task task, enum ctp_lane lane);

/* The locked push to any lane. */
static inline int ctp_queue_push_lane(ctp_queue *queue, ctp_task task, enum ctp_lane lane) {
    return lane == CTP_LANE_DEFAULT ? ctp_queue_push(queue, task) : ctp_queue_push_prioritized(queue, task, lane);
}

/* `count` copies of one task, all or none, behind every task pushed before, in the default lane:
   CTP_ENOMEM, CTP_ECLOSED, CTP_EAGAIN (more than a bounded queue has room for), or 0. */
int ctp_queue_push_many(ctp_queue *queue, ctp_task task, size_t count);

/* ctp_queue_take while other lanes than the default one hold tasks: one task at a time, each from the
   lane whose turn it is (see queue.c). */
size_t ctp_queue_take_lanes(ctp_queue *queue, ctp_task *out, size_t max);

/* Takes up to `max` tasks into `out`, in the order they start: the highest lane first (but see
   ctp_queue_take_lanes), oldest first within a lane; returns how many. In the default lane, the ring,
   then (the ring empty) the inbox. Stops at an inbox slot claimed but not yet filled (ctp_queue_count
   still counts it). */
static inline size_t ctp_queue_take(ctp_queue *queue, ctp_task *out, size_t max) {
    if (queue->prioritized != 0) return ctp_queue_take_lanes(queue, out, max);
    queue->passed[CTP_LANE_DEFAULT] = 0; /* no lane above it holds tasks: nothing passes it */
    size_t taken = ctp_ring_pop(&queue->ring, out, max);
    if (taken < max) taken += ctp_inbox_pop(&queue->inbox, out + taken, max - taken);
    return taken;
}

/* Moves every queued task to the end of `list`, lane by lane from the highest, oldest first within a
   lane, waiting for inbox slots claimed but not yet filled (after ctp_queue_close no more can be
   claimed). An empty `list` takes over the storage of the first lane's ring, which needs no memory.
   CTP_ENOMEM when `list` could not grow: the tasks that did not fit stay queued. */
int ctp_queue_take_all(ctp_queue *queue, ctp_ring *list);

/* No more pushes: ctp_queue_try_push fails from now on and ctp_queue_push returns CTP_ECLOSED. The
   queued tasks stay, to be taken. */
void ctp_queue_close(ctp_queue *queue);

/* Tasks queued in every lane, counting inbox slots claimed but not yet filled. Its load of the
   inbox's tail is sequentially consistent, as a parking worker needs (see worker.c). */
static inline size_t ctp_queue_count(ctp_queue *queue) {
    return queue->ring.count + queue->prioritized + ctp_inbox_count(&queue->inbox);
}

/* How many more tasks a bounded queue has room for: its limit less the tasks of every lane (its inbox
   is off) and the reserved slots. Queued tasks may exceed the limit (Swift jobs are queued whatever
   the room: see ctp_pool_submit_job), and then there is none. */
static inline size_t ctp_queue_room(const ctp_queue *queue) {
    size_t used = queue->ring.count + queue->prioritized + queue->reserved;
    return used >= queue->limit ? 0 : queue->limit - used;
}

/* A bounded queue with no room left (see ctp_queue_room). */
static inline bool ctp_queue_full(const ctp_queue *queue) {
    return queue->limit != 0 && ctp_queue_room(queue) == 0;
}

/* For a worker that found the queue empty and then polls it without the lock: the mark that
   ctp_queue_pushed_since compares with. It is the inbox's head, which moves only under the lock
   (held by the caller), and not a snapshot of the tail: a push made between the worker's look at the
   queue and this call moves the tail past the head, where a snapshot would hide it. */
static inline size_t ctp_queue_push_mark(const ctp_queue *queue) {
    return queue->inbox.head;
}

/* Whether a lock-free push came since `mark`. Without the lock. The "off" bit is masked: a bounded
   queue's inbox is off from the start, and counting the bit as a push would end every spin at once;
   closing, like every push under the lock, reaches a spinning worker through pool.c's events. */
static inline bool ctp_queue_pushed_since(ctp_queue *queue, size_t mark) {
    return (atomic_load_explicit(&queue->inbox.tail, memory_order_relaxed) & ~CTP_INBOX_OFF) != mark;
}

#endif /* CTP_QUEUE_H */
