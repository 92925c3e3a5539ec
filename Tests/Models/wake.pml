/* wake.pml: the park / spin / submit wake handshake of Sources/CThreadPool/worker.c and pool.c: worker_loop,
 * spin_for_work, take_batch (its wake_one_idle), submit, wake_for_inbox and unpark_one, over the inbox
 * of queue.h / queue.c (ctp_inbox_push's claim and publish, ctp_inbox_pop, ctp_inbox_count).
 *
 * Two workers and one submitter. The submitter submits T1 and then T2 through the inbox; T1 cannot
 * finish until T2 has run (it waits on a semaphore that T2 posts), so the pool deadlocks if T2 stays
 * queued while the worker running T1 waits and the other worker sleeps with nobody to wake it.
 *
 * A worker, holding the lock, takes a task from the inbox (the ring is always empty here: nothing goes
 * through the lock) and, if tasks remain queued and nobody spins, wakes a parked worker; it runs the
 * task without the lock. Finding nothing: a claimed, unwritten slot makes it yield and look again;
 * otherwise it either spins (at most one worker: spinning = 1 under the lock, unlock, poll `tail`
 * against the head at which it found the inbox empty, until it changes or the deadline; relock,
 * spinning = 0, look again) or parks (idle_count + 1, seq_cst; re-check the inbox count with a seq_cst
 * load of `tail`: nonempty, it takes itself off the idle stack; else it waits on its condition variable
 * until unparked). Whether a worker spins (its last idle spell was short) is a free choice. A submit
 * claims a position (CAS on `tail`, seq_cst), writes and publishes its task (release), loads
 * idle_count and spinning (both seq_cst); if some worker is parked and none spins it takes the lock, checks
 * spinning again and unparks the most recently parked worker.
 *
 * Memory: every step is one atomic action. By default the model is sequentially consistent. With
 * -DTSO each thread has an x86-TSO store buffer: relaxed and release stores (spinning + 1, the
 * publication of a task, and what the mutations make relaxed) go into the thread's FIFO buffer, which
 * drains to memory at any time, oldest first; a load reads the thread's own newest buffered store of
 * that variable, else memory; a seq_cst store, a CAS and the lock's acquire and release (locked
 * instructions) drain the buffer first. A seq_cst load is a plain load (x86 puts the fence on the
 * store side).
 *
 * Left out: the ring, submit_locked, submit_many, broadcast, own tasks, take_over and batches (with 2
 * workers and at most 2 queued tasks, batch_size is 1 and no batch has a second task to take over),
 * the `events` counter (changed only by pushes under the lock and state changes), close / terminate,
 * the inbox's capacity (2 tasks never fill it) and its sequence numbers beyond "written", the
 * timing of the spin's deadline (any poll may be the last) and of last_idle (free choice), spurious
 * condition-variable wake-ups (the wait re-checks `parked`, so they only add steps).
 *
 * Properties:
 *   - no lost wake-up: when no thread can move any more (a timeout), both tasks have run; a deadlock
 *     (T2 queued, T1's worker waiting for it, the other worker parked) fails this assertion;
 *   - bounded spin: a spinning worker that polls and sees no change has indeed seen every task claimed
 *     since it found the inbox empty, so it never spins out its whole deadline past a queued task;
 *   - no invalid end state (a parked worker at the end is a valid end state).
 *
 * Mutations (-D), each of which makes the check fail:
 *   MUT_SPIN_SNAPSHOT_TAIL  the spinner compares `tail` against a snapshot of `tail` taken after the
 *                           emptiness check (the old code): the bounded-spin assertion fails
 *   MUT_NO_PARK_RECHECK     a parking worker does not re-check the inbox after counting itself idle
 *   MUT_NO_BATCH_WAKE       take_batch does not wake a parked worker for the tasks left queued
 *   with -DTSO:
 *   MUT_IDLE_RELAXED        the parking worker's idle_count + 1 is relaxed (goes to its store buffer)
 *   MUT_SPINNING_RELAXED    the spinner's closing spinning = spinning - 1 is relaxed (the old code;
 *                           in the sequentially consistent model it cannot fail)
 */

#define NW 2                    /* workers: threads 0 .. NW - 1 */
#define S NW                    /* the submitter's thread */
#define NT (NW + 1)
#define NTASKS 2                /* T1 = position 0, T2 = position 1 */

/* The variables that a thread may write through its store buffer, in mem[]. */
#define SPINNING 0
#define IDLE 1
#define FILLED 2                /* FILLED + p: position p's task is written (its sequence published) */
#define NVARS (FILLED + NTASKS)

byte mem[NVARS];
byte tail;                      /* the inbox's tail: only ever CAS'd, so never buffered */
byte head;                      /* the inbox's head: the lock */
bit lock;                       /* the pool's lock */
byte idle_stack[NW];            /* the lock */
bool parked[NW];                /* the lock */
byte sem;                       /* T2 posts it, T1 waits on it */
byte ran;                       /* tasks that have run to the end */

#ifdef TSO
#define SB 3                    /* store buffer entries per thread */
byte bvar[NT * SB];
byte bval[NT * SB];
byte blen[NT];

/* The oldest store of thread th_'s buffer goes to memory. */
inline sb_drain_one(th_) {
    if
    :: bvar[th_ * SB] == SPINNING -> printf("thread %d's buffered store reaches memory: spinning = %d\n", th_, bval[th_ * SB])
    :: bvar[th_ * SB] == IDLE -> printf("thread %d's buffered store reaches memory: idle_count = %d\n", th_, bval[th_ * SB])
    :: else -> printf("thread %d's buffered store reaches memory: T%d published\n", th_, bvar[th_ * SB] - FILLED + 1)
    fi;
    mem[bvar[th_ * SB]] = bval[th_ * SB];
    i_ = 0;
    do
    :: i_ + 1 < blen[th_] -> bvar[th_ * SB + i_] = bvar[th_ * SB + i_ + 1]; bval[th_ * SB + i_] = bval[th_ * SB + i_ + 1]; i_++
    :: else -> break
    od;
    blen[th_]--;
    bvar[th_ * SB + blen[th_]] = 0;
    bval[th_ * SB + blen[th_]] = 0;
    i_ = 0
}
inline flush(th_) {
    do
    :: blen[th_] > 0 -> sb_drain_one(th_)
    :: else -> break
    od
}
/* dst_ = var_ as thread th_ sees it: its newest buffered store of var_, else memory. */
inline load(th_, var_, dst_) {
    dst_ = mem[var_];
    i_ = 0;
    do
    :: i_ < blen[th_] -> if :: bvar[th_ * SB + i_] == var_ -> dst_ = bval[th_ * SB + i_] :: else fi; i_++
    :: else -> break
    od;
    i_ = 0
}
inline store_rlx(th_, var_, x_) {
    assert(blen[th_] < SB);
    bvar[th_ * SB + blen[th_]] = var_;
    bval[th_ * SB + blen[th_]] = x_;
    blen[th_]++
}
#else
inline flush(th_) { skip }
inline load(th_, var_, dst_) { dst_ = mem[var_] }
inline store_rlx(th_, var_, x_) { mem[var_] = x_ }
#endif
/* A seq_cst store: the store and a full fence. */
inline store_sc(th_, var_, x_) { flush(th_); mem[var_] = x_ }

inline lock_acquire(th_) { atomic { lock == 0 -> flush(th_); lock = 1 } }
inline lock_release(th_) { d_step { flush(th_); lock = 0 } }

/* unpark_one, with the lock: the most recently parked worker leaves the idle stack; the caller's
   signal is implicit (a parked worker waits for `parked` to clear). */
inline unpark_one(th_, idle_) {
    d_step {
        load(th_, IDLE, idle_);
        if
        :: idle_ > 0 ->
            printf("thread %d unparks W%d\n", th_, idle_stack[idle_ - 1]);
            store_sc(th_, IDLE, idle_ - 1); parked[idle_stack[idle_ - 1]] = 0
        :: else
        fi;
        idle_ = 0
    }
}

proctype worker(byte self) {
    byte i_;                    /* the store buffer's scratch index */
    byte v;
    byte idle;
    byte chk;                   /* `tail` as the emptiness check saw it */
    byte seen;                  /* what the spin compares `tail` against */
    byte t;                     /* the task taken: its position */
    bool took;
    bool spun = 0;

    lock_acquire(self);
    do
    :: true ->
        /* take_batch: ctp_inbox_pop(1) reads `tail` (acquire) and the head slot's sequence (acquire);
           one step, since both only grow. */
        d_step {
            if
            :: tail != head -> load(self, FILLED + head, v); took = (v != 0)
            :: else -> took = 0
            fi;
            v = 0
        };
        if
        :: took ->
            d_step { t = head; head++; took = 0; printf("W%d takes T%d\n", self, t + 1) };
#ifndef MUT_NO_BATCH_WAKE
            /* queued_count() > 0 (a seq_cst load of `tail`) && spinning() == 0 -> wake_one_idle */
            if
            :: tail != head ->
                d_step { load(self, SPINNING, v) };
                if
                :: v == 0 -> printf("W%d: tasks queued, nobody spins: wake_one_idle\n", self); unpark_one(self, idle)
                :: else
                fi;
                v = 0
            :: else
            fi;
#endif
            /* run_held: the task runs without the lock */
            lock_release(self);
            if
            :: t == 0 -> printf("W%d runs T1: waits for T2\n", self); atomic { sem > 0 -> sem-- }
            :: else -> printf("W%d runs T2\n", self); sem++
            fi;
            d_step { ran++; t = 0 };
            lock_acquire(self);
            spun = 0
        :: else ->
            chk = tail;                                 /* ctp_inbox_count: seq_cst */
            if
            :: chk != head ->
                /* claimed, not yet written: yield and look again */
                lock_release(self);
                lock_acquire(self)
            :: else ->
                d_step { load(self, SPINNING, v) };
                if
                :: !spun && v == 0 ->
                    /* spin_for_work */
#ifdef MUT_SPIN_SNAPSHOT_TAIL
                    seen = tail;                        /* relaxed, after the emptiness check */
#else
                    seen = head;                        /* where the inbox was found empty */
#endif
                    d_step {
                        load(self, SPINNING, v); store_rlx(self, SPINNING, v + 1); v = 0;
                        printf("W%d spins until tail != %d\n", self, seen)
                    };
                    lock_release(self);
                    do
                    :: tail != seen -> break            /* a push: look for it */
                    :: atomic { tail == seen -> assert(tail == chk) }  /* bounded spin */
                    :: break                            /* the deadline */
                    od;
                    lock_acquire(self);
                    d_step {
                        load(self, SPINNING, v);
#ifdef MUT_SPINNING_RELAXED
                        store_rlx(self, SPINNING, v - 1);
#else
                        store_sc(self, SPINNING, v - 1);
#endif
                        v = 0; seen = 0;
                        printf("W%d stops spinning\n", self)
                    };
                    spun = 1
                :: else ->
                    /* park */
                    d_step {
                        v = 0;
                        load(self, IDLE, idle);
                        idle_stack[idle] = self;
                        parked[self] = 1;
                        printf("W%d parks: idle_count = %d\n", self, idle + 1);
#ifdef MUT_IDLE_RELAXED
                        store_rlx(self, IDLE, idle + 1)
#else
                        store_sc(self, IDLE, idle + 1)
#endif
                    };
#ifndef MUT_NO_PARK_RECHECK
                    if
                    :: tail != head ->                  /* ctp_inbox_count > 0: seq_cst */
                        d_step { store_sc(self, IDLE, idle); parked[self] = 0; idle = 0; printf("W%d sees a task: unparks itself\n", self) }
                    :: else ->
#endif
                        d_step { idle = 0; chk = 0 };
                        /* pthread_cond_wait until unparked: it releases the lock and takes it back */
                        lock_release(self);
end_park:               atomic { !parked[self] && lock == 0 -> flush(self); lock = 1; printf("W%d wakes up\n", self) };
                        spun = 0
#ifndef MUT_NO_PARK_RECHECK
                    fi
#endif
                fi
            fi;
            chk = 0
        fi
    od
}

proctype submitter() {
    byte i_;
    byte pos;
    byte idle;
    byte v;
    do
    :: pos < NTASKS ->
        /* ctp_inbox_push: claims the position (CAS, seq_cst), writes the task, publishes (release) */
        d_step { flush(S); assert(tail == pos); tail++; printf("submit T%d: claims position %d\n", pos + 1, pos) };
        d_step { store_rlx(S, FILLED + pos, 1) };
        /* submit: idle_count (seq_cst) > 0 && spinning() == 0 -> wake_for_inbox */
        d_step { load(S, IDLE, idle) };
        if
        :: idle > 0 ->
            d_step { load(S, SPINNING, v); printf("submit T%d: idle_count %d, spinning %d\n", pos + 1, idle, v) };
            if
            :: v == 0 ->
                lock_acquire(S);
                d_step { load(S, SPINNING, v) };
                if
                :: v == 0 -> unpark_one(S, idle)
                :: else -> printf("wake_for_inbox: a worker spins: nobody unparked\n")
                fi;
                lock_release(S)
            :: else
            fi
        :: else -> printf("submit T%d: idle_count 0\n", pos + 1)
        fi;
        d_step { pos++; idle = 0; v = 0 }
    :: else -> break
    od
}

#ifdef TSO
/* The store buffers drain to memory on their own, one store at a time, oldest first. */
proctype memory() {
    byte i_;
end_memory:
    do
    :: d_step { blen[0] > 0 -> sb_drain_one(0) }
    :: d_step { blen[1] > 0 -> sb_drain_one(1) }
    :: d_step { blen[2] > 0 -> sb_drain_one(2) }
    od
}
#endif

init {
    atomic {
        run worker(0);
        run worker(1);
        run submitter();
#ifdef TSO
        run memory();
#endif
    };
    /* Nothing else can move: every task must have run. */
    timeout -> assert(ran == NTASKS)
}
