/* The pool's task queue (queue.h): the ring, the inbox, what keeps the two one queue, and the priority
   lanes around them. */
#define _GNU_SOURCE
#include "queue.h"
#include "fault_injection.h"

#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- the ring ------------------------------------------------------------------------------ */

enum { CTP_RING_MIN_CAPACITY = 64 };

static size_t round_up_to_power_of_two(size_t n) {
    size_t capacity = CTP_RING_MIN_CAPACITY;
    while (capacity < n) {
        if (capacity > SIZE_MAX / 2) return 0;
        capacity *= 2;
    }
    return capacity;
}

/* How many of the `n` slots from position `start` come before the end of the array; the others wrap
   around to its start. */
static size_t before_wrap(const ctp_ring *ring, size_t start, size_t n) {
    size_t to_end = ring->capacity - start;
    return n < to_end ? n : to_end;
}

/* Copies the `n` oldest tasks, in order, to `out`, task by task: a pop copies one task, or a
   worker's batch of a few, where a call to memcpy would cost more than the copy. */
static inline void copy_oldest(const ctp_ring *ring, ctp_task *out, size_t n) {
    /* In locals: `out` could alias the ring's fields, which would then be reloaded per task. */
    const ctp_task *slots = ring->slots;
    size_t head = ring->head, mask = ring->mask;
    for (size_t i = 0; i < n; i++) out[i] = slots[(head + i) & mask];
}

/* Copies all the tasks, in order, to `out`, in the two runs before and after the end of the array:
   a growth copies a full ring, where memcpy is fastest. */
static void copy_all(const ctp_ring *ring, ctp_task *out) {
    size_t first = before_wrap(ring, ring->head, ring->count);
    if (first > 0) memcpy(out, ring->slots + ring->head, first * sizeof(ctp_task));
    if (ring->count > first) memcpy(out + first, ring->slots, (ring->count - first) * sizeof(ctp_task));
}

int ctp_ring_init(ctp_ring *ring, size_t min_capacity) {
    size_t capacity = round_up_to_power_of_two(min_capacity);
    ctp_task *slots = capacity == 0 || capacity > SIZE_MAX / sizeof(ctp_task)
        ? NULL : CTP_MALLOC(capacity * sizeof(ctp_task));
    if (slots == NULL) return CTP_ENOMEM;
    *ring = (ctp_ring){ .slots = slots, .capacity = capacity, .mask = capacity - 1 };
    return 0;
}

void ctp_ring_free(ctp_ring *ring) {
    free(ring->slots);
    *ring = (ctp_ring){ 0 };
}

/* Moves the live tasks to a new array of at least `min_capacity` slots (a power of two, at least
   twice the old one), unwrapped so that head becomes 0. */
int ctp_ring_grow(ctp_ring *ring, size_t min_capacity) {
    size_t old_capacity = ring->capacity;
    size_t new_capacity = round_up_to_power_of_two(min_capacity > old_capacity * 2 ? min_capacity : old_capacity * 2);
    if (new_capacity == 0 || new_capacity > SIZE_MAX / sizeof(ctp_task)) return CTP_ENOMEM;
    ctp_task *slots = CTP_MALLOC(new_capacity * sizeof(ctp_task));
    if (slots == NULL) return CTP_ENOMEM;
    copy_all(ring, slots);
    free(ring->slots);
    ring->slots = slots;
    ring->capacity = new_capacity;
    ring->mask = new_capacity - 1;
    ring->head = 0;
    return 0;
}

int ctp_ring_push_copies(ctp_ring *ring, ctp_task task, size_t copies) {
    if (copies > SIZE_MAX / sizeof(ctp_task) - ring->count) return CTP_ENOMEM;
    if (ring->capacity - ring->count < copies) {
        int rc = ctp_ring_grow(ring, ring->count + copies);
        if (rc != 0) return rc;
    }
    size_t tail = (ring->head + ring->count) & ring->mask;
    size_t first = before_wrap(ring, tail, copies);
    for (size_t i = 0; i < first; i++) ring->slots[tail + i] = task;
    for (size_t i = 0; i < copies - first; i++) ring->slots[i] = task;
    ring->count += copies;
    return 0;
}

size_t ctp_ring_pop(ctp_ring *ring, ctp_task *out, size_t max) {
    size_t n = ring->count < max ? ring->count : max;
    copy_oldest(ring, out, n);
    ring->head = (ring->head + n) & ring->mask;
    ring->count -= n;
    return n;
}

/* ---- the inbox ----------------------------------------------------------------------------- */

int ctp_inbox_init(ctp_inbox *inbox) {
    inbox->slots = CTP_MALLOC(CTP_INBOX_CAPACITY * sizeof(ctp_inbox_slot));
    if (inbox->slots == NULL) return CTP_ENOMEM;
    for (size_t i = 0; i < CTP_INBOX_CAPACITY; i++) atomic_init(&inbox->slots[i].sequence, i);
    inbox->head = 0;
    atomic_init(&inbox->tail, 0);
    return 0;
}

void ctp_inbox_free(ctp_inbox *inbox) {
    free(inbox->slots);
    inbox->slots = NULL;
}

void ctp_inbox_turn_off(ctp_inbox *inbox) {
    atomic_fetch_or_explicit(&inbox->tail, CTP_INBOX_OFF, memory_order_seq_cst);
}

/* Whether the slot at the head holds its task; if `wait`, waits until it does (false only when the
   inbox is empty). */
static bool head_is_filled(ctp_inbox *inbox, size_t end, bool wait) {
    if (inbox->head == end) return false;
    ctp_inbox_slot *slot = &inbox->slots[inbox->head & (CTP_INBOX_CAPACITY - 1)];
    for (unsigned polls = 1; atomic_load_explicit(&slot->sequence, memory_order_acquire) != inbox->head + 1; polls++) {
        if (!wait) return false;
        /* Its producer has claimed the slot and not yet written it: let it run if it shares our CPU. */
        if (polls % 64 == 0) sched_yield(); else ctp_cpu_relax();
    }
    return true;
}

/* Frees the head slot for the next lap, once its task has been copied out. */
static void release_head(ctp_inbox *inbox) {
    ctp_inbox_slot *slot = &inbox->slots[inbox->head & (CTP_INBOX_CAPACITY - 1)];
    atomic_store_explicit(&slot->sequence, inbox->head + CTP_INBOX_CAPACITY, memory_order_release);
    inbox->head++;
}

size_t ctp_inbox_pop(ctp_inbox *inbox, ctp_task *out, size_t max) {
    size_t end = atomic_load_explicit(&inbox->tail, memory_order_acquire) & ~CTP_INBOX_OFF;
    size_t taken = 0;
    for (; taken < max && head_is_filled(inbox, end, false); taken++) {
        out[taken] = inbox->slots[inbox->head & (CTP_INBOX_CAPACITY - 1)].task;
        release_head(inbox);
    }
    return taken;
}

int ctp_inbox_drain(ctp_inbox *inbox, ctp_ring *ring) {
    size_t end = atomic_load_explicit(&inbox->tail, memory_order_acquire) & ~CTP_INBOX_OFF;
    while (head_is_filled(inbox, end, true)) {
        int rc = ctp_ring_push(ring, inbox->slots[inbox->head & (CTP_INBOX_CAPACITY - 1)].task);
        if (rc != 0) return rc;
        release_head(inbox);
    }
    return 0;
}

/* ---- the queue ----------------------------------------------------------------------------- */

int ctp_queue_init(ctp_queue *queue, size_t limit) {
    queue->limit = limit;
    queue->reserved = 0;
    queue->closed = false;
    queue->prioritized = 0;
    for (int lane = 0; lane < CTP_LANES; lane++) {
        queue->lanes[lane] = (ctp_ring){ 0 }; /* storage on the first push: most pools never need it */
        queue->passed[lane] = 0;
    }
    int rc = ctp_ring_init(&queue->ring, limit);
    if (rc == 0) rc = ctp_inbox_init(&queue->inbox);
    if (rc == 0 && limit != 0) ctp_inbox_turn_off(&queue->inbox);
    return rc;
}

void ctp_queue_free(ctp_queue *queue) {
    ctp_ring_free(&queue->ring);
    ctp_inbox_free(&queue->inbox);
    for (int lane = 0; lane < CTP_LANES; lane++) ctp_ring_free(&queue->lanes[lane]);
}

int ctp_queue_push_many(ctp_queue *queue, ctp_task task, size_t count) {
    int rc = ctp_inbox_drain(&queue->inbox, &queue->ring);
    if (rc == 0 && queue->closed) rc = CTP_ECLOSED;
    if (rc == 0 && queue->limit != 0 && count > ctp_queue_room(queue)) rc = CTP_EAGAIN;
    if (rc == 0) rc = ctp_ring_push_copies(&queue->ring, task, count);
    return rc;
}

int ctp_queue_push_prioritized(ctp_queue *queue, ctp_task task, enum ctp_lane lane) {
    if (queue->closed) return CTP_ECLOSED;
    int rc = ctp_ring_push(&queue->lanes[lane], task);
    if (rc == 0) queue->prioritized++;
    return rc;
}

/* ---- taking across the lanes ---------------------------------------------------------------- */

/* Tasks queued in one lane (the default lane's counting inbox slots claimed but not yet filled). */
static size_t lane_count(ctp_queue *queue, enum ctp_lane lane) {
    return lane == CTP_LANE_DEFAULT ? queue->ring.count + ctp_inbox_count(&queue->inbox) : queue->lanes[lane].count;
}

/* The lane whose oldest task starts next. Higher lanes go first, so that among queued tasks a higher
   priority starts first; but a lane that higher lanes have passed over CTP_PRIORITY_PASS_LIMIT times
   in a row has its turn first (the highest such lane, when there are several), so that a stream of
   higher tasks delays a lower one by a bounded number of tasks and never starves it. CTP_LANES when
   every lane is empty. */
static enum ctp_lane next_lane(ctp_queue *queue) {
    enum ctp_lane highest = CTP_LANES;
    for (int lane = CTP_LANES - 1; lane >= 0; lane--) {
        if (lane_count(queue, (enum ctp_lane)lane) == 0) continue;
        if (queue->passed[lane] >= CTP_PRIORITY_PASS_LIMIT) return (enum ctp_lane)lane;
        if (highest == CTP_LANES) highest = (enum ctp_lane)lane;
    }
    return highest;
}

/* Takes the oldest task of a lane that has tasks; false only at the default lane's inbox slot that is
   claimed but not yet filled (the caller stops there, as ctp_queue_take does). */
static bool take_from(ctp_queue *queue, enum ctp_lane lane, ctp_task *out) {
    if (lane != CTP_LANE_DEFAULT) {
        (void)ctp_ring_pop(&queue->lanes[lane], out, 1);
        queue->prioritized--;
        return true;
    }
    return ctp_ring_pop(&queue->ring, out, 1) == 1 || ctp_inbox_pop(&queue->inbox, out, 1) == 1;
}

/* A task of `lane` was taken: that lane's count of passes starts again, and each lower lane that has
   tasks has been passed once more (an empty one has nothing waiting: its count starts again too). */
static void count_passes(ctp_queue *queue, enum ctp_lane lane) {
    queue->passed[lane] = 0;
    for (int lower = 0; lower < (int)lane; lower++) {
        queue->passed[lower] = lane_count(queue, (enum ctp_lane)lower) > 0 ? queue->passed[lower] + 1 : 0;
    }
}

size_t ctp_queue_take_lanes(ctp_queue *queue, ctp_task *out, size_t max) {
    size_t taken = 0;
    while (taken < max && queue->prioritized != 0) {
        enum ctp_lane lane = next_lane(queue);
        if (lane == CTP_LANES || !take_from(queue, lane, &out[taken])) return taken;
        count_passes(queue, lane);
        taken++;
    }
    /* The other lanes are empty: the rest comes from the default lane, as without lanes. */
    return taken < max ? taken + ctp_queue_take(queue, out + taken, max - taken) : taken;
}

/* Moves a ring's tasks to the end of `list`, oldest first. An empty `list` keeps whichever of the two
   storages is larger, so that taking over a ring needs no memory. CTP_ENOMEM when `list` could not
   grow: the tasks that did not fit stay in `from`. */
static int move_tasks(ctp_ring *from, ctp_ring *list) {
    if (list->count == 0 && from->capacity >= list->capacity) {
        ctp_ring_free(list);
        *list = *from;
        *from = (ctp_ring){ 0 };
        return 0;
    }
    ctp_task task;
    while (from->count > 0) {
        int rc = ctp_ring_push(list, from->slots[from->head]);
        if (rc != 0) return rc;
        (void)ctp_ring_pop(from, &task, 1);
    }
    return 0;
}

int ctp_queue_take_all(ctp_queue *queue, ctp_ring *list) {
    int rc = 0;
    for (int lane = CTP_LANES - 1; rc == 0 && lane >= 0; lane--) {
        if (lane == CTP_LANE_DEFAULT) {
            rc = move_tasks(&queue->ring, list);
            if (rc == 0) rc = ctp_inbox_drain(&queue->inbox, list);
        } else {
            size_t before = queue->lanes[lane].count;
            rc = move_tasks(&queue->lanes[lane], list);
            queue->prioritized -= before - queue->lanes[lane].count;
        }
    }
    return rc;
}

void ctp_queue_close(ctp_queue *queue) {
    queue->closed = true;
    ctp_inbox_turn_off(&queue->inbox);
}
