/* The worker: the thread's main, the loop that takes and runs tasks (in batches, taking over other
   workers' unstarted batch tasks), spinning for more work and parking when there is none, and the
   last worker out freeing a pool destroyed from its own worker. The state it shares with pool.c is
   in pool_internal.h. */
#define _GNU_SOURCE
#include "fault_injection.h"
#include "pool_internal.h"
#include "worker_names.h"

#include <errno.h>
#include <sys/resource.h>
#include <unistd.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

/* Batches run for about this long: see batch_size(). */
enum { CTP_BATCH_TARGET_NS = 4000 };
/* How many tasks ahead of the one it runs a worker prefetches: see prefetch_argument(). */
enum { CTP_PREFETCH_DISTANCE = 4 };
/* How long a worker that ran out of work polls for more before it parks: see spin_for_work(). */
enum { CTP_SPIN_NS = 10000 };

_Thread_local ctp_worker *ctp_self;
_Thread_local bool ctp_declined_flag;
_Thread_local bool ctp_failed_flag;
_Thread_local int ctp_declined_outcome = -1;

/* ---- running tasks ------------------------------------------------------------------------- */

/* Counts the calling worker as running one more task. Done before the task is claimed (under the
   lock, or before the claim that releases it: see run_held), so that the stats, taken under the lock,
   never see a task that is neither queued nor running: a caller waiting for the pool to be idle would
   take that gap for the end of the work. */
static void mark_running(ctp_worker *self) {
    unsigned busy = atomic_load_explicit(&self->busy, memory_order_relaxed);
    atomic_store_explicit(&self->busy, busy + 1, memory_order_relaxed);
}

/* Releasing: stats() acquires `busy` before it reads `done`, so it sees a finished task's count. */
static void unmark_running(ctp_worker *self) {
    unsigned busy = atomic_load_explicit(&self->busy, memory_order_relaxed);
    atomic_store_explicit(&self->busy, busy - 1, memory_order_release);
}

/* Adds one to a counter that only the calling thread writes. */
static void count_own(atomic_ullong *counter) {
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1, memory_order_relaxed);
}

/* Runs one task that the caller has marked running, without the lock; then counts it done (or
   declined), before it stops counting as running (for a moment it is both: never neither). */
static void run_marked(ctp_worker *self, ctp_task task) {
    task.fn(task.arg, 0);
    count_own(ctp_take_declined() ? &self->declined : &self->done);
    unmark_running(self);
}

void ctp_worker_run_task(ctp_pool *pool, ctp_worker *self, ctp_task task) {
    mark_running(self);
    pthread_mutex_unlock(&pool->lock);
    run_marked(self, task);
    pthread_mutex_lock(&pool->lock);
}

/* Runs this worker's broadcast tasks. Called and returns with the lock held. */
static void run_own(ctp_pool *pool, ctp_worker *self) {
    ctp_task task;
    while (ctp_ring_pop(&self->own, &task, 1) == 1) ctp_worker_run_task(pool, self, task);
    atomic_store_explicit(&self->has_own, false, memory_order_relaxed);
}

/* ---- batches ------------------------------------------------------------------------------- */

/* How many queued tasks a worker takes per lock acquisition. Taking several saves a lock round trip
   per task (and the contention that comes with it) when tasks are tiny, but a batch is run by one
   worker, so it must neither hold back work another worker could start nor change the order in
   which tasks start:
   - a batch is taken only while no worker is idle, and a worker looking for work takes over half of
     the unstarted tasks of another worker's batch before it takes anything newer from the shared
     queue (take_over), so tasks start in submission order and none waits behind a blocked one while
     a worker could run it;
   - it is sized to run for about CTP_BATCH_TARGET_NS (learned from the previous batch) and never
     more than a fair share of the queue, so tasks longer than that are taken one at a time;
   - a worker runs its broadcast tasks between the tasks of its batch;
   - a worker waiting inside a task runs the rest of its own batch (ctp_pool_help), and terminate
     cancels the tasks of every batch that have not started. */
static size_t batch_size(ctp_pool *pool, const ctp_worker *self) {
    /* A bounded queue is backpressure: its capacity counts every task not started, so no batches. */
    size_t queued = ctp_queue_count(&pool->queue);
    if (pool->queue.limit != 0 || queued <= 1 || idle_count(pool) > 0) return 1;
    size_t fair_share = (queued + pool->threads - 1) / pool->threads;
    return fair_share < self->batch_limit ? fair_share : self->batch_limit;
}

/* Learns the batch limit from how long the last batch took per task. A single task may raise it but
   not lower it: one long task (a task waiting for an event, say) among short ones says little about
   the next ones, and a batch of long tasks costs little, since idle workers take over its tasks. */
static void adapt_batch(ctp_worker *self, size_t count, unsigned long long elapsed_ns) {
    unsigned long long per_task = elapsed_ns / count + 1;
    unsigned long long limit = CTP_BATCH_TARGET_NS / per_task;
    size_t learned = limit < 1 ? 1 : limit > CTP_BATCH_MAX ? CTP_BATCH_MAX : (size_t)limit;
    if (count > 1 || learned > self->batch_limit) self->batch_limit = learned;
}

/* Acquiring: a claim the owner made without the lock is seen together with its mark_running (see
   run_held). */
size_t ctp_worker_unstarted(const ctp_worker *worker) {
    size_t next = atomic_load_explicit(&worker->held_next, memory_order_acquire);
    return next < worker->held_count ? worker->held_count - next : 0;
}

/* The owner claims its own tasks one at a time with the same counter, without the lock. */
size_t ctp_worker_claim_unstarted(ctp_worker *worker, ctp_task *out, size_t count) {
    if (ctp_worker_unstarted(worker) == 0) return 0;
    size_t first = atomic_fetch_add_explicit(&worker->held_next, count, memory_order_relaxed);
    if (first >= worker->held_count) return 0;
    size_t end = worker->held_count - first < count ? worker->held_count : first + count;
    for (size_t i = first; i < end; i++) out[i - first] = worker->held[i];
    return end - first;
}

/* Takes over half (at least one) of the unstarted tasks of another worker's batch, as this worker's
   batch. Called with the lock held, while this worker holds no batch. */
static bool take_over(ctp_pool *pool, ctp_worker *self) {
    for (unsigned w = 0; w < pool->threads; w++) {
        ctp_worker *other = &pool->workers[w];
        size_t left = other == self ? 0 : ctp_worker_unstarted(other);
        if (left == 0) continue;
        size_t count = ctp_worker_claim_unstarted(other, self->held, left > 1 ? left / 2 : 1);
        if (count == 0) continue;
        self->held_count = count;
        atomic_store_explicit(&self->held_next, 0, memory_order_relaxed);
        return true;
    }
    return false;
}

/* Takes up to `count` tasks off the shared queue as this worker's batch. Called with the lock held. */
static bool take_batch(ctp_pool *pool, ctp_worker *self, size_t count) {
    size_t taken = ctp_queue_take(&pool->queue, self->held, count);
    if (taken == 0) return false;
    if (pool->space_waiters > 0) {
        if (taken == 1) pthread_cond_signal(&pool->space); else pthread_cond_broadcast(&pool->space);
    }
    self->held_count = taken;
    atomic_store_explicit(&self->held_next, 0, memory_order_relaxed);
    /* Submits skip waking anyone while a worker spins; if that left tasks queued and nobody on the
       way, wake a parked worker for them, or, in an elastic pool with none parked, start one (the
       tasks were queued while workers were free, and this one is about to be busy). */
    if (ctp_queue_count(&pool->queue) > 0 && spinning(pool) == 0) {
        if (idle_count(pool) > 0) {
            wake_one_idle(pool);
        } else if (pool->elastic) {
            ctp_worker_grow(pool, CTP_GROW_FOR_QUEUED_WORK);
        }
    }
    return true;
}

/* Starts moving what a queued task's argument points to into this core's cache, for writing, a few
   tasks before it runs. A task's argument is typically an object that its submitter has just written
   (a Swift job: its closure, its result's state) and that the task reads and writes first thing:
   without this, a tiny task starts with a wait for those cache lines to come over from the
   submitting core, and a stream of tiny tasks spends much of its time waiting. A prefetch never
   faults, whatever the argument is. */
static inline void prefetch_argument(ctp_task task) {
#if defined(__GNUC__)
    __builtin_prefetch(task.arg, 1, 3);
    __builtin_prefetch((const char *)task.arg + CTP_CACHE_LINE, 1, 3);
#else
    (void)task;
#endif
}

/* Runs this worker's batch, and its broadcast tasks as they come. Called and returns with the lock
   held; the lock is released while tasks run. */
static void run_held(ctp_pool *pool, ctp_worker *self) {
    size_t count = self->held_count;
    /* The first task is claimed before unlocking: a task taken off a bounded queue is never counted
       as queued after it made room there. */
    mark_running(self);
    size_t i = atomic_fetch_add_explicit(&self->held_next, 1, memory_order_relaxed);
    if (i >= count) unmark_running(self);
    pthread_mutex_unlock(&pool->lock);
    size_t ran = 0;
    unsigned long long start = ctp_monotonic_ns();
    for (size_t ahead = i; ahead < count && ahead < i + CTP_PREFETCH_DISTANCE; ahead++) prefetch_argument(self->held[ahead]);
    while (i < count) {
        if (i + CTP_PREFETCH_DISTANCE < count) prefetch_argument(self->held[i + CTP_PREFETCH_DISTANCE]);
        run_marked(self, self->held[i]);
        ran++;
        if (atomic_load_explicit(&self->has_own, memory_order_relaxed)) {
            pthread_mutex_lock(&pool->lock);
            run_own(pool, self);
            pthread_mutex_unlock(&pool->lock);
        }
        /* The next task: marked running first, then claimed with a release that stats() acquires.
           Nothing to claim (the batch is done, or another worker took the rest): no mark at all, or
           one taken back at once. */
        if (atomic_load_explicit(&self->held_next, memory_order_relaxed) >= count) break;
        mark_running(self);
        i = atomic_fetch_add_explicit(&self->held_next, 1, memory_order_release);
        if (i >= count) unmark_running(self);
    }
    if (ran > 0) adapt_batch(self, ran, ctp_monotonic_ns() - start);
    pthread_mutex_lock(&pool->lock);
    self->held_count = 0; /* every task claimed: nobody can take any */
}

/* ---- helping ------------------------------------------------------------------------------- */

/* Oldest first: the rest of this worker's batch (the caller may be waiting for one of those), its
   broadcast tasks, other workers' unstarted batch tasks, then the shared queue. Only one task: this
   worker's batch array is in use further up the stack. */
bool ctp_worker_help(ctp_pool *pool, ctp_worker *self) {
    ctp_task task;
    bool found = ctp_worker_claim_unstarted(self, &task, 1) == 1 || ctp_ring_pop(&self->own, &task, 1) == 1;
    for (unsigned w = 0; !found && w < pool->threads; w++) {
        if (w != self->index) found = ctp_worker_claim_unstarted(&pool->workers[w], &task, 1) == 1;
    }
    if (!found && ctp_queue_take(&pool->queue, &task, 1) == 1) {
        found = true;
        if (pool->space_waiters > 0) pthread_cond_signal(&pool->space);
    }
    if (found) ctp_worker_run_task(pool, self, task);
    return found;
}

/* ---- waiting for work: spinning, then parking ---------------------------------------------- */

/* Polls, without the lock, for up to CTP_SPIN_NS for a push (to the inbox or under the lock) or a
   state change. A worker that just ran out of work does this once before it parks: tasks submitted
   in quick succession are then taken without the submitter paying for a futex wake and the worker
   for a sleep and a context switch, which cost several microseconds each. One worker at a time
   spins, so an idle pool burns at most one core for that long, and it yields the CPU every 64
   polls, so a spin never delays a thread that has work. Called and returns with the lock held; the
   caller looks for work again. */
static void spin_for_work(ctp_pool *pool) {
    unsigned seen = atomic_load_explicit(&pool->events, memory_order_relaxed);
    /* A push the mark missed would wait out the whole spin while submits decline to wake anyone:
       see ctp_queue_push_mark. */
    size_t mark = ctp_queue_push_mark(&pool->queue);
    atomic_store_explicit(&pool->spinning, spinning(pool) + 1, memory_order_relaxed);
    pthread_mutex_unlock(&pool->lock);
    unsigned long long deadline = ctp_monotonic_ns() + CTP_SPIN_NS;
    for (unsigned i = 1; atomic_load_explicit(&pool->events, memory_order_relaxed) == seen
                         && !ctp_queue_pushed_since(&pool->queue, mark); i++) {
        ctp_cpu_relax();
        if (i % 64 == 0) {
            if (ctp_monotonic_ns() >= deadline) break;
            /* Let a runnable thread of this CPU (the submitter, when workers and submitters outnumber
               the CPUs) have it: the spin is only worth it while the CPU would otherwise idle. */
            sched_yield();
        }
    }
    pthread_mutex_lock(&pool->lock);
    /* Sequentially consistent: pairs with the submit's load of `spinning` (see spinning()); the
       caller then reads the inbox's tail with a seq_cst load before parking or leaving tasks queued. */
    atomic_store_explicit(&pool->spinning, spinning(pool) - 1, memory_order_seq_cst);
}

/* Takes a parked worker whose wait timed out off the idle stack. Called with the lock held. */
static void unpark_self(ctp_pool *pool, ctp_worker *self) {
    unsigned idle = idle_count(pool);
    for (unsigned i = 0; i < idle; i++) {
        if (pool->idle_stack[i] == self->index) {
            pool->idle_stack[i] = pool->idle_stack[idle - 1];
            set_idle_count(pool, idle - 1);
            break;
        }
    }
    self->parked = false;
}

/* Out of line under its own name (gcc would otherwise clone it under a suffixed one). */
#if defined(__clang__)
#define CTP_NAMED_FRAME __attribute__((noinline))
#elif defined(__GNUC__)
#define CTP_NAMED_FRAME __attribute__((noinline, noclone))
#else
#define CTP_NAMED_FRAME
#endif

/* Parks this worker on the idle stack until a submit or a state change takes it off (unpark_one,
   then a signal on its `wake`), unless a task came through the inbox meanwhile. The one place where
   a worker sleeps for want of work, kept out of line so that profilers can tell (and filter) a worker
   waiting from a worker working. Called and returns with the lock held.

   A worker counts itself idle (set_idle_count) and then looks at the inbox's tail; a submit through
   the inbox claims a slot and then looks at the idle count. Both sequentially consistent, so at least
   one sees the other: the worker the new task, or the submit the parked worker to wake. */
static CTP_NAMED_FRAME bool ctp_worker_park_waiting_for_work(ctp_pool *pool, ctp_worker *self,
                                                              const struct timespec *deadline) {
    unsigned idle = idle_count(pool);
    pool->idle_stack[idle] = self->index;
    self->parked = true;
    set_idle_count(pool, idle + 1);
    if (ctp_queue_count(&pool->queue) > 0) {
        /* This worker is still on top of the stack (the lock is held): it takes itself off, and then
           the task. */
        set_idle_count(pool, idle);
        self->parked = false;
        return false;
    }
    while (self->parked) {
        if (deadline == NULL) {
            pthread_cond_wait(&self->wake, &pool->lock);
        } else if (pthread_cond_timedwait(&self->wake, &pool->lock, deadline) == ETIMEDOUT && self->parked) {
            unpark_self(pool, self);
            return true;
        }
    }
    return false;
}

/* A worker's idle spells: whether it spins before it parks depends on how long the last one lasted. */
typedef struct idle_spells {
    bool spun;                      /* since this worker last found work */
    unsigned long long since;       /* when this worker ran out of work; 0 while it has some */
    unsigned long long last;        /* how long its last idle spell lasted */
} idle_spells;

/* This worker found work: its idle spell, if any, ends. */
static void end_idle_spell(idle_spells *idle) {
    if (idle->since != 0) {
        idle->last = ctp_monotonic_ns() - idle->since;
        idle->since = 0;
    }
}

/* With nothing to do: spins (spin_for_work) if this worker has not spun since it last found work, no
   other worker spins, and its last idle spell was short enough for a spin to have caught the next
   task; else parks. When tasks come far apart, spinning only burns the core, and a worker that parks
   at once wakes faster than one that spun first. The first spell of a burst is long, so the first
   wake of a burst parks again; the next short spell turns spinning back on. Called and returns with
   the lock held; the caller looks for work again. */
static void wait_for_work(ctp_pool *pool, ctp_worker *self, idle_spells *idle) {
    if (idle->since == 0) idle->since = ctp_monotonic_ns();
    if (!idle->spun && spinning(pool) == 0 && idle->last <= CTP_SPIN_NS) {
        spin_for_work(pool);
        idle->spun = true;
    } else {
        ctp_worker_park_waiting_for_work(pool, self, NULL);
        idle->spun = false;
    }
}

/* ---- growing and retiring -----------------------------------------------------------------

   A pool keeps `threads` workers (indices 0..<threads) for its whole life. It starts more, in the
   lowest free slots, for two reasons:
   - queued work (an elastic pool, max_threads > threads): a task was queued, no worker is idle and
     fewer than max_threads workers are free to run tasks;
   - a blocked worker (ctp_pool_block_begin: a worker waits inside a task for something other tasks
     may have to do): fewer than `threads` workers are free to run tasks and none is idle. Up to
     CTP_COMPENSATION_MAX workers beyond max_threads, so that waits never deadlock however many
     workers wait.
   "Free to run tasks" is `live - blocked`. A worker started this way runs the initializer first and
   the finalizer as it leaves. It retires (leaves the pool while it runs) when it finds no work and
   is not needed: at once if the pool has more free workers than max_threads (it stood in for a
   worker that is no longer blocked), or after keep_alive_ns parked without work if it has more than
   `threads`. A retired worker's thread is joined when its slot is used again, or by ctp_pool_join. */

/* Whether `self`, a worker beyond the pool's size, should leave now rather than wait for work.
   Called with the lock held. */
static bool is_surplus(const ctp_pool *pool, const ctp_worker *self, bool idled_out) {
    if (self->index < pool->threads) return false;
    unsigned free_workers = pool->live - pool->leaving - pool->blocked;
    return free_workers > pool->max_threads || (idled_out && free_workers > pool->threads);
}

/* wait_for_work for a worker beyond the pool's size: no spinning, a park bounded by the keep-alive.
   Returns true when the worker should retire. Called and returns with the lock held. */
static bool wait_for_work_or_retire(ctp_pool *pool, ctp_worker *self) {
    if (is_surplus(pool, self, false)) return true;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    unsigned long long ns = (unsigned long long)deadline.tv_nsec + pool->keep_alive_ns;
    deadline.tv_sec += (time_t)(ns / 1000000000ull);
    deadline.tv_nsec = (long)(ns % 1000000000ull);
    bool idled_out = ctp_worker_park_waiting_for_work(pool, self, &deadline);
    return is_surplus(pool, self, idled_out) && ctp_queue_count(&pool->queue) == 0 && self->own.count == 0;
}

/* The slot a new worker goes in: the lowest one without a running thread, or `slots` when all are
   taken. Called with the lock held. */
static unsigned free_slot(const ctp_pool *pool) {
    for (unsigned i = pool->threads; i < pool->slots; i++) {
        if (pool->workers[i].slot != CTP_SLOT_LIVE && !pool->workers[i].creating) return i;
    }
    return pool->slots;
}

void ctp_worker_grow(ctp_pool *pool, enum ctp_grow_reason reason) {
    if (!pool->running_up || pool->state == CTP_TERMINATED || idle_count(pool) > 0) return;
    /* A worker on its way out (retiring, or done with a closed pool) no longer takes tasks. */
    unsigned free_workers = pool->live - pool->leaving - pool->blocked;
    if (reason == CTP_GROW_FOR_QUEUED_WORK) {
        /* Workers already starting will take queued tasks too. */
        if (pool->state != CTP_RUNNING || free_workers >= pool->max_threads
            || ctp_queue_count(&pool->queue) <= pool->starting) return;
    } else if (free_workers >= pool->threads || pool->starting > 0) {
        return;
    }
    unsigned index = free_slot(pool);
    if (index == pool->slots) return;
    ctp_worker *worker = &pool->workers[index];
    bool reap = worker->slot == CTP_SLOT_EXITED && worker->has_thread;
    pthread_t retired = worker->thread;
    worker->slot = CTP_SLOT_LIVE;
    worker->has_thread = false;
    worker->creating = true;
    pool->creating++;
    pool->live++;
    pool->starting++;
    atomic_store_explicit(&pool->live_hint, pool->live, memory_order_relaxed);
    if (pool->live > pool->peak) pool->peak = pool->live;
    if (index >= pool->high_water) pool->high_water = index + 1;
    pool->threads_started++;
    bool detached = pool->detached;
    pthread_mutex_unlock(&pool->lock);

    /* The slot's previous thread has left the pool: joining it takes no longer than its exit. */
    if (reap) pthread_join(retired, NULL);
    free(worker->name);
    worker->name = ctp_name_make(pool->name_prefix,
                                 pool->name_prefix != NULL ? (unsigned long long)index + 1 : ctp_names_reserve(1));
    worker->batch_limit = 1;
    worker->stack_noted = false; /* a new thread, a new stack */
    worker->exited = false;
    worker->stack_low = NULL;
    pthread_attr_t attributes;
    int rc = worker->name == NULL ? -1 : pthread_attr_init(&attributes);
    if (rc == 0) {
        if (pool->stack_size != 0) (void)pthread_attr_setstacksize(&attributes, pool->stack_size);
        if (detached) (void)pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        rc = CTP_PTHREAD_CREATE(&worker->thread, &attributes, ctp_worker_main, worker);
        pthread_attr_destroy(&attributes);
    }

    pthread_mutex_lock(&pool->lock);
    worker->creating = false;
    pool->creating--;
    pthread_cond_broadcast(&pool->changed); /* a join waits for threads being created */
    if (rc != 0) {
        /* The pool keeps running with the workers it has. */
        worker->slot = CTP_SLOT_FREE;
        pool->live--;
        pool->starting--;
        atomic_store_explicit(&pool->live_hint, pool->live, memory_order_relaxed);
        pool->threads_started--;
        pool->grow_failures++;
        if (pool->observer.failure != NULL) {
            pthread_mutex_unlock(&pool->lock);
            ctp_observe_failure(pool, CTP_FAILURE_GROW_THREAD, index, rc);
            pthread_mutex_lock(&pool->lock);
        }
        return;
    }
    /* Destroyed from a worker meanwhile: nobody will join this thread. Else it is joined like every
       worker's, even if it has already left the pool (leave_pool left the slot EXITED for it). */
    if (pool->detached) {
        if (!detached) pthread_detach(worker->thread);
        if (worker->slot == CTP_SLOT_EXITED) worker->slot = CTP_SLOT_FREE;
    } else {
        worker->has_thread = true;
    }
}

/* ---- placement: the CPU a worker runs on, and its nice value ---------------------------------- */

/* Pins the calling worker to its CPU and sets its nice value, as the options ask. Best effort: a CPU
   outside the process's set, or a nice value it may not take, leaves the thread as it was. */
static void apply_placement(const ctp_pool *pool, const ctp_worker *self) {
#if defined(__linux__)
    if (pool->pinned_cpu_count > 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(pool->pinned_cpus[self->index % pool->pinned_cpu_count], &set);
        (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }
    if (pool->set_niceness) (void)setpriority(PRIO_PROCESS, (id_t)gettid(), pool->niceness);
#else
    (void)pool;
    (void)self;
#endif
}

/* ---- the stack ------------------------------------------------------------------------------ */

void ctp_worker_note_stack(ctp_worker *self) {
#if defined(__linux__)
    pthread_attr_t attributes;
    if (pthread_getattr_np(pthread_self(), &attributes) != 0) return;
    void *low;
    size_t size;
    if (pthread_attr_getstack(&attributes, &low, &size) == 0) {
        self->stack_low = low;
        self->stack_reserve = size / 4 > 64 * 1024 ? size / 4 : 64 * 1024;
    }
    pthread_attr_destroy(&attributes);
#else
    (void)self;
#endif
}

bool ctp_worker_stack_allows_help(ctp_worker *self) {
    /* Read on the first help, not at start: pthread_getattr_np allocates, and most workers never help. */
    if (!self->stack_noted) {
        ctp_worker_note_stack(self);
        self->stack_noted = true;
    }
    if (self->stack_low == NULL) return true; /* bounds unknown */
    /* The frame's address, not a local's: under AddressSanitizer locals may live on a heap "fake
       stack". Stacks grow down on every target this runs on. */
#if defined(__GNUC__)
    const char *top = (const char *)__builtin_frame_address(0);
#else
    char here;
    const char *top = &here;
#endif
    return top > self->stack_low && (size_t)(top - self->stack_low) > self->stack_reserve;
}

/* ---- the thread ---------------------------------------------------------------------------- */

/* Runs tasks until the queues are empty and the pool no longer runs. Called and returns with the
   lock held. */
static void worker_loop(ctp_pool *pool, ctp_worker *self) {
    idle_spells idle = { 0 };
    for (;;) {
        if (self->own.count > 0) {
            run_own(pool, self);
        } else if (take_over(pool, self) || take_batch(pool, self, batch_size(pool, self))) {
            end_idle_spell(&idle);
            run_held(pool, self);
        } else if (ctp_queue_count(&pool->queue) > 0) {
            /* A submitter has claimed a slot and not yet written its task: let it finish. (Once the
               pool stops, no slot can be claimed any more, so this ends.) */
            pthread_mutex_unlock(&pool->lock);
            sched_yield();
            pthread_mutex_lock(&pool->lock);
        } else if (pool->state != CTP_RUNNING) {
            return; /* closed or terminated, and drained */
        } else if (self->index >= pool->threads) {
            if (wait_for_work_or_retire(pool, self)) return;
            continue;
        } else {
            wait_for_work(pool, self, &idle);
            continue;
        }
        idle.spun = false;
    }
}

/* Counts this worker out of its pool; true when it is the last one out of a pool destroyed from its
   own worker, which it must then free. Waits for a terminate still making its cancellation calls to
   be done with the pool first. With a join at exit holding the pool, that join frees it once it lets
   go. */
static bool leave_pool(ctp_pool *pool, ctp_worker *self) {
    pthread_mutex_lock(&pool->lock);
    if (self->index >= pool->threads) pool->threads_retired++;
    /* Joined later (by ctp_pool_join, or when the slot is used again), unless detached. A thread
       whose creator has not yet recorded it (creating) is recorded then. */
    self->slot = self->has_thread || self->creating ? CTP_SLOT_EXITED : CTP_SLOT_FREE;
    atomic_store_explicit(&pool->live_hint, pool->live - 1, memory_order_relaxed);
    pthread_cond_broadcast(&pool->changed); /* a join waiting for workers still starting */
    pool->leaving--;
    bool last_out = --pool->live == 0 && pool->detached && pool->exit_holds == 0;
    while (last_out && pool->cancelling > 0) pthread_cond_wait(&pool->changed, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    return last_out;
}

void *ctp_worker_main(void *argument) {
    ctp_worker *self = argument;
    ctp_pool *pool = self->pool;
    ctp_self = self;
    ctp_name_set_os(self->name);
    apply_placement(pool, self);

    int init_rc = pool->initializer != NULL ? pool->initializer(pool->context, self->index) : 0;

    /* Reported before the start barrier can pass: a pool's first workers are reported started before
       ctp_pool_create returns. */
    if (init_rc == 0 && pool->observer.worker_started != NULL) {
        pool->observer.worker_started(pool->observer.context, self->index, self->name);
    }

    pthread_mutex_lock(&pool->lock);
    bool grown = pool->running_up;
    if (!grown) {
        pool->started++;
        if (init_rc != 0) pool->init_failures++;
        pthread_cond_broadcast(&pool->changed); /* the start barrier in ctp_pool_create */
    } else {
        pool->starting--;
        if (init_rc != 0) pool->grow_failures++; /* a worker the pool grew by: it leaves, the pool keeps its size */
    }
    if (init_rc != 0 && grown && pool->observer.failure != NULL) {
        pthread_mutex_unlock(&pool->lock);
        ctp_observe_failure(pool, CTP_FAILURE_GROW_INIT, self->index, init_rc);
        pthread_mutex_lock(&pool->lock);
    }
    if (init_rc == 0) worker_loop(pool, self);
    pool->leaving++; /* until leave_pool takes it out of `live` */
    self->exited = true; /* under the lock that saw its own ring empty: see ctp_pool_submit_to_worker */
    pthread_mutex_unlock(&pool->lock);

    if (init_rc == 0 && pool->finalizer != NULL) pool->finalizer(pool->context, self->index);
    if (init_rc == 0 && pool->observer.worker_exited != NULL) {
        pool->observer.worker_exited(pool->observer.context, self->index, self->name, self->index >= pool->threads);
    }
    ctp_self = NULL;

    if (leave_pool(pool, self)) ctp_pool_dispose(pool);
    return NULL;
}
