/* The inbox: submitters' lock-free way into a pool's queue (see ctp_internal.h). */
#define _GNU_SOURCE
#include "ctp_internal.h"

#include <sched.h>
#include <stdlib.h>

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
