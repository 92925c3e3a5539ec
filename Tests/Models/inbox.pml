/* inbox.pml: the inbox, Sources/CThreadPool/queue.c (ctp_inbox_pop, ctp_inbox_drain, head_is_filled,
 * release_head, ctp_inbox_turn_off) and ctp_inbox_push / ctp_inbox_count in
 * Sources/CThreadPool/queue.h, with the parts of Sources/CThreadPool/pool.c and worker.c around them:
 * submit_locked (the way in when a push fails), take_batch (the ring first, then the inbox),
 * ctp_pool_close (turn_off) and worker_loop's exit (closed, and nothing queued or claimed).
 *
 * Vyukov's bounded queue of CAP slots. A producer reads `tail`, checks the slot's sequence, claims the
 * position with a weak CAS on `tail`, writes its task and publishes `sequence = pos + 1`. The single
 * consumer (whoever holds the pool's lock) takes the head slot once its sequence is head + 1 (a pop
 * stops at a claimed, unwritten slot; a drain waits for it), copies the task out and frees the slot
 * with `sequence = head + CAP`. Closing sets the OFF bit in `tail`: later pushes fail. A failed push
 * takes the lock and drains the inbox into the ring; then, the pool running (the inbox was full), its
 * task goes to the ring, or, the pool closed, it is rejected. The worker takes 1 or 2 tasks at a time,
 * from the ring first, and exits once the pool is closed and nothing is queued or claimed.
 *
 * NPROD producers push PUSHES tasks each through CAP slots, so positions wrap NPROD*PUSHES/CAP laps.
 * Every load, store and CAS of the C code is one sequentially consistent step; the CAS may fail
 * spuriously. Left out: weaker memory orders (wake.pml models a store buffer), the ring's growth and
 * ENOMEM, bounded queues (their inbox is off from the start: the ring path here), several workers (the
 * lock makes them one consumer), size_t wrap-around.
 *
 * Properties (assertions; spin also reports any invalid end state):
 *   - the consumer copies a slot only after its task was written, and it is the task that claimed
 *     that position, so the inbox hands out tasks in claim order;
 *   - each task is taken at most once, each producer's tasks in the order it submitted them;
 *   - a submit through the lock goes after every inbox task whose push returned before it began;
 *   - once the OFF bit is set, no push succeeds;
 *   - at the end, every task is either accepted (its push returned true, or it went to the ring) and
 *     was taken exactly once, or was rejected: none accepted before or after closing is lost.
 *
 * Mutations (-D), each of which makes the check fail:
 *   MUT_PUBLISH_BEFORE_WRITE  the producer publishes the sequence before it writes the task
 *   MUT_RELEASE_BEFORE_COPY   the consumer frees the slot before it copies the task out
 *   MUT_POP_TRUSTS_TAIL       the consumer takes every position below `tail`, ignoring the sequence
 *   MUT_OFF_FLAG              "off" is a flag of its own that a push checks before its CAS, not a bit
 *                             of `tail` that the CAS compares
 */

#ifndef CAP
#define CAP 2
#endif
#ifndef NPROD
#define NPROD 2
#endif
#ifndef PUSHES
#define PUSHES 3
#endif
#define NTASKS (NPROD * PUSHES)
#define OFF 128                 /* the high bit of the byte that models `tail` */
#define POS(x) ((x) & (OFF - 1))

byte tail;                      /* the next position to claim, | OFF */
byte seq[CAP];                  /* each slot's sequence */
byte task[CAP];                 /* each slot's task (1..NTASKS) */
byte head;                      /* the consumer's next position: the pool's lock */
bit lock;                       /* the pool's lock */
byte ring[NTASKS];              /* the pool's ring: ring_r .. ring_w - 1 */
byte ring_r;
byte ring_w;
bool closed;                    /* the pool's state != RUNNING: the pool's lock */
#ifdef MUT_OFF_FLAG
bool off_flag;                  /* the mutation's separate "off" */
#endif

/* Ghost state for the properties. */
byte claimed_by[NTASKS];        /* the task whose push claimed position p */
bool written[NTASKS];           /* position p's task has been written */
bool accepted[NTASKS + 1];      /* task t's submit succeeded (its claim, or its ring push) */
bool rejected[NTASKS + 1];      /* task t's submit failed: the pool was closed */
bool taken[NTASKS + 1];         /* task t has been taken by the worker */
byte next_k[NPROD];             /* the index of producer p's next task to be taken */
byte returned_end;              /* 1 + the highest position whose push has returned true */

/* head_is_filled: the head slot holds its task. */
#ifdef MUT_POP_TRUSTS_TAIL
#define HEAD_FILLED true
#else
#define HEAD_FILLED (seq[head % CAP] == head + 1)
#endif

inline lock_acquire() { atomic { lock == 0 -> lock = 1 } }
inline lock_release() { lock = 0 }

/* The worker takes task t: at most once, and in its producer's order. */
inline take(t) {
    d_step {
        assert(t >= 1 && t <= NTASKS);
        assert(accepted[t] && !taken[t]);
        taken[t] = 1;
        assert(next_k[(t - 1) / PUSHES] == (t - 1) % PUSHES);
        next_k[(t - 1) / PUSHES]++
    }
}

/* Copies the head slot's task into `out` and frees the slot (release_head); checks that the task was
   written and is the one that claimed the position. */
inline take_head(out) {
#ifdef MUT_RELEASE_BEFORE_COPY
    seq[head % CAP] = head + CAP;
    d_step { out = task[head % CAP]; assert(written[head]); assert(out == claimed_by[head]); head++ }
#else
    d_step { out = task[head % CAP]; assert(written[head]); assert(out == claimed_by[head]) };
    d_step { seq[head % CAP] = head + CAP; head++ }
#endif
}

/* ctp_inbox_drain into the ring: waits at a claimed, unwritten slot. With the lock. */
inline drain(end, t) {
    end = POS(tail);                            /* acquire */
    do
    :: head == end -> break
    :: else ->
        (HEAD_FILLED);                          /* head_is_filled(..., wait = true) */
        take_head(t);
        d_step { ring[ring_w] = t; ring_w++; t = 0 }
    od;
    end = 0
}

/* ctp_inbox_pop of up to `max` tasks, each taken by the worker: stops at a claimed, unwritten slot.
   With the lock. */
inline pop(max, end, t, n) {
    end = POS(tail);                            /* acquire */
    n = 0;
    do
    :: n < max && head != end && HEAD_FILLED ->
        take_head(t);
        take(t);
        d_step { t = 0; n++ }
    :: else -> break
    od;
    atomic { end = 0; n = 0 }
}

proctype producer(byte p) {
    byte k = 0;
    byte t;                     /* the push's view of `tail` */
    byte s;                     /* the slot's sequence */
    byte mine;                  /* the task being submitted */
    byte began;                 /* returned_end when this submit began */
    byte end;
    byte x;
    bool ok;
    do
    :: k < PUSHES ->
        d_step { mine = p * PUSHES + k + 1; began = returned_end };
        /* ctp_inbox_push */
        t = tail;                                       /* relaxed */
        do
#ifdef MUT_OFF_FLAG
        :: off_flag -> ok = 0; break
        :: else ->
#else
        :: t & OFF -> ok = 0; break                     /* off */
        :: else ->
#endif
            s = seq[t % CAP];                           /* acquire */
            if
            :: s == t ->
                atomic {                                /* compare-exchange (weak), seq_cst */
                    if
                    :: tail == t ->
                        tail = t + 1; claimed_by[t] = mine; accepted[mine] = 1; ok = 1;
                        assert(!(t & OFF) && !closed)   /* no push succeeds once off */
                    :: tail == t -> ok = 0              /* spurious failure */
                    :: else -> t = tail; ok = 0         /* the failure loads `tail` */
                    fi
                };
                if
                :: ok ->
#ifdef MUT_PUBLISH_BEFORE_WRITE
                    seq[t % CAP] = t + 1;
                    d_step { task[t % CAP] = mine; written[t] = 1 };
#else
                    d_step { task[t % CAP] = mine; written[t] = 1 };
                    seq[t % CAP] = t + 1;               /* release */
#endif
                    break
                :: else -> skip
                fi
            :: s < t -> ok = 0; break                   /* full: the previous lap's task is there */
            :: s > t -> t = tail                        /* claimed by another: reload */
            fi
        od;
        if
        :: ok ->
            d_step { if :: t + 1 > returned_end -> returned_end = t + 1 :: else fi }
        :: else ->
            /* submit_locked: drains the inbox first, so the task goes after every earlier one */
            lock_acquire();
            drain(end, x);
            assert(head >= began);
            d_step {
                if
                :: closed -> rejected[mine] = 1
                :: else -> ring[ring_w] = mine; ring_w++; accepted[mine] = 1
                fi
            };
            lock_release()
        fi;
        atomic { k++; t = 0; s = 0; ok = 0; began = 0 }
    :: else -> break
    od
}

/* The pool's one worker (several would be one consumer under the lock) and ctp_pool_close. */
proctype worker() {
    byte end;
    byte t;
    byte n;
    byte max;
    do
    :: !closed ->
        /* ctp_pool_close */
        lock_acquire();
        d_step {
            closed = 1;
#ifdef MUT_OFF_FLAG
            off_flag = 1
#else
            tail = tail | OFF                           /* ctp_inbox_turn_off: fetch_or, seq_cst */
#endif
        };
        lock_release()
    :: lock_acquire();
        /* take_batch of 1 or 2 tasks: the ring, then the inbox */
        if
        :: max = 1
        :: max = 2
        fi;
        if
        :: ring_r < ring_w ->
            take(ring[ring_r]);
            ring_r++;
            if
            :: max == 2 && ring_r < ring_w -> take(ring[ring_r]); ring_r++
            :: max == 2 && ring_r == ring_w -> pop(1, end, t, n)
            :: else
            fi;
            max = 0;
            lock_release()
        :: else ->
            d_step { n = head; max = 0 };
            pop(max, end, t, n);
            if
            :: head != n -> lock_release()              /* took some */
            :: POS(tail) != head -> lock_release()      /* claimed, not yet written: yield */
            :: POS(tail) == head && closed -> break     /* closed and drained: the worker exits */
            :: POS(tail) == head && !closed -> lock_release() /* nothing: it would park */
            fi
        fi
    od;
    lock_release()
}

init {
    byte i;
    atomic {
        do
        :: i < CAP -> seq[i] = i; i++
        :: else -> break
        od;
        i = 0;
        do
        :: i < NPROD -> run producer(i); i++
        :: else -> break
        od;
        run worker()
    };
    /* Everyone has finished: every task was accepted and taken, or rejected. */
    _nr_pr == 1;
    i = 1;
    do
    :: i <= NTASKS -> assert(accepted[i] != rejected[i] && taken[i] == accepted[i]); i++
    :: else -> break
    od
}
