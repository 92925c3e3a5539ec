/* The task ring: a growable FIFO of (fn, arg) slots in a power-of-two array. */
#define _GNU_SOURCE
#include "ctp_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { CTP_RING_MIN_CAPACITY = 64 };

static size_t round_up_to_power_of_two(size_t n) {
    size_t capacity = CTP_RING_MIN_CAPACITY;
    while (capacity < n) {
        if (capacity > SIZE_MAX / 2) return 0;
        capacity *= 2;
    }
    return capacity;
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
   twice the old one), unwrapped so that head becomes 0. (ctp_ring_push, its caller on every submit,
   is inline in ctp_internal.h.) */
int ctp_ring_grow(ctp_ring *ring, size_t min_capacity) {
    size_t old_capacity = ring->capacity;
    size_t new_capacity = round_up_to_power_of_two(min_capacity > old_capacity * 2 ? min_capacity : old_capacity * 2);
    if (new_capacity == 0 || new_capacity > SIZE_MAX / sizeof(ctp_task)) return CTP_ENOMEM;
    ctp_task *slots = CTP_MALLOC(new_capacity * sizeof(ctp_task));
    if (slots == NULL) return CTP_ENOMEM;

    /* The live tasks are [head, old_capacity) followed by [0, rest). */
    size_t first = ring->count;
    if (first > old_capacity - ring->head) first = old_capacity - ring->head;
    if (first > 0) memcpy(slots, ring->slots + ring->head, first * sizeof(ctp_task));
    if (ring->count > first) memcpy(slots + first, ring->slots, (ring->count - first) * sizeof(ctp_task));

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
    /* The free slots are [tail, capacity) followed by [0, head): fill them in at most two runs. */
    size_t tail = (ring->head + ring->count) & ring->mask;
    size_t first = ring->capacity - tail < copies ? ring->capacity - tail : copies;
    for (size_t i = 0; i < first; i++) ring->slots[tail + i] = task;
    for (size_t i = 0; i < copies - first; i++) ring->slots[i] = task;
    ring->count += copies;
    return 0;
}

size_t ctp_ring_pop(ctp_ring *ring, ctp_task *out, size_t max) {
    size_t n = ring->count < max ? ring->count : max;
    for (size_t i = 0; i < n; i++) {
        out[i] = ring->slots[ring->head];
        ring->head = (ring->head + 1) & ring->mask;
    }
    ring->count -= n;
    return n;
}
