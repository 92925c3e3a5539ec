/* The pool: create / submit / close / terminate / join / destroy, and the worker loop.
 *
 * One mutex guards everything that changes, except the queue's inbox: a submit leaves its task there
 * without the lock (queue.h). Each worker parks on
 * its own condition variable, listed on an idle stack, so a submit wakes exactly one idle worker, and
 * only when one is idle and no worker is polling for work (a worker that ran out of work may poll for
 * up to 10 us before it parks: see spin_for_work and worker_loop); state changes (close, terminate)
 * wake them all. User code (tasks, initializers, finalizers, cancellations) always runs with the lock
 * released.
 */
#define _GNU_SOURCE
#include "fault_injection.h"
#include "memory.h"
#include "queue.h"
#include "worker_names.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum ctp_state { CTP_RUNNING, CTP_CLOSED, CTP_TERMINATED };

/* How many queued tasks a worker takes per lock acquisition, at most: see batch_size(). */
enum { CTP_BATCH_MAX = 32, CTP_BATCH_TARGET_NS = 4000 };
/* How many tasks ahead of the one it runs a worker prefetches: see prefetch_argument(). */
enum { CTP_PREFETCH_DISTANCE = 4 };
/* How long a worker that ran out of work polls for more before it parks: see spin_for_work(). */
enum { CTP_SPIN_NS = 10000 };
enum ctp_join_state { CTP_JOIN_NONE, CTP_JOIN_IN_PROGRESS, CTP_JOIN_DONE };

typedef struct ctp_worker {
    /* Aligned to a cache line: each worker writes its own counters on every task. */
    _Alignas(CTP_CACHE_LINE) ctp_pool *pool; /* immutable */
    pthread_t thread;         /* written by create before the worker can be joined */
    unsigned index;           /* immutable, 0-based */
    char *name;               /* immutable, malloc'd */
    pthread_cond_t wake;      /* signalled when `parked` is cleared */
    bool parked;              /* pool->lock: on the idle stack, waiting for work or a state change */
    ctp_ring own;             /* pool->lock: broadcast tasks for this worker only, run before the shared queue */
    atomic_bool has_own;      /* written under pool->lock: own is not empty (read between batch tasks) */
    size_t batch_limit;       /* this worker's thread only: see batch_size() */
    /* The batch this worker is running: tasks it took off the queue, or took over from another
       worker's batch. Filled under pool->lock while no task of it is unclaimed; each task is claimed
       once through held_next (the owner without the lock, anyone else with it), so that another
       worker or terminate can take tasks that have not started. */
    ctp_task held[CTP_BATCH_MAX];
    size_t held_count;        /* written by the owner under pool->lock */
    atomic_size_t held_next;
    /* Written by this worker's thread only (so no read-modify-write is needed), read by stats. */
    atomic_uint busy;         /* tasks this thread is running (more than one while it helps) */
    atomic_ullong done;       /* tasks this thread has run to the end, except declined ones */
    atomic_ullong declined;   /* tasks this thread ran that called ctp_task_declined */
} ctp_worker;

struct ctp_pool {
    /* What every submit and every batch touches comes first, together, so that a submit after a
       worker's batch misses as few cache lines as possible. */
    _Alignas(CTP_CACHE_LINE) pthread_mutex_t lock;
    enum ctp_state state;     /* lock */
    unsigned space_waiters;   /* lock: submitters blocked on `space` */
    unsigned *idle_stack;     /* lock: indices of parked workers, most recently parked last */
    ctp_queue queue;          /* lock, but for pushes to its inbox (queue.h); its inbox's tail is on a
                                 line of its own */
    /* Written under lock, read by every submit through the inbox, which wakes a worker only if one is
       parked and none spins: on a line of their own, which changes only when workers park or spin. */
    _Alignas(CTP_CACHE_LINE) atomic_uint idle_count; /* parked workers: the idle stack's size */
    atomic_uint spinning;     /* workers in spin_for_work (at most one) */
    /* Written under lock: bumped by every push under the lock and every state change. On a line of
       its own, since a spinning worker reads it over and over. */
    _Alignas(CTP_CACHE_LINE) atomic_uint events;

    pthread_cond_t space;     /* submitters waiting for room in a bounded queue */
    pthread_cond_t changed;   /* the start barrier, join and terminate's cancellations progressing */
    unsigned started;         /* lock: workers whose initializer has returned */
    unsigned init_failures;   /* lock */
    unsigned live;            /* lock: workers that have not finished exiting */
    /* Tasks terminate took off the queues whose CTP_ECANCELED call has not returned (stats count them
       as queued), and those whose call has, by how it ended. Decremented after the count it moves to
       is incremented (release; stats acquires it first), so stats never miss a task. */
    atomic_size_t dropping;
    atomic_ullong cancelled;
    atomic_ullong declined;
    unsigned cancelling;      /* lock: terminate calls still making CTP_ECANCELED calls */
    enum ctp_join_state join_state; /* lock */
    bool detached;            /* lock: destroyed from a worker; the last worker out frees the pool */
    unsigned exit_holds;      /* lock: joins at process exit in progress (see join_pools_at_exit) */
    /* registry_lock: the process-wide list of pools that join_pools_at_exit walks. */
    ctp_pool *registry_prev, *registry_next;
    bool exit_visited;        /* registry_lock */
    bool skip_join_at_exit;   /* immutable */

    /* Immutable after create. */
    unsigned threads;
    ctp_init_fn initializer;
    ctp_fini_fn finalizer;
    void *context;
    void (*context_release)(void *context);
    ctp_worker workers[];
};

/* The worker running on this thread, or NULL off every pool. */
static _Thread_local ctp_worker *ctp_self;

/* ---- small helpers ---------------------------------------------------------------------- */

static unsigned available_cpus(void) {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return (unsigned)n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1u;
}

/* Parked workers. Called with the lock held. */
static unsigned idle_count(const ctp_pool *pool) {
    return atomic_load_explicit(&pool->idle_count, memory_order_relaxed);
}

/* Sets the number of parked workers. Sequentially consistent: see worker_loop. With the lock held. */
static void set_idle_count(ctp_pool *pool, unsigned count) {
    atomic_store_explicit(&pool->idle_count, count, memory_order_seq_cst);
}

/* Workers spinning for work. Read without the lock by submits; written under it. Sequentially
   consistent: a submit through the inbox claims its slot (seq_cst) and then reads this, while a
   spinner stores its end (the last store of spin_for_work, seq_cst) and then reads the inbox's tail
   (ctp_queue_count, seq_cst) before it parks or lets tasks wait; in the single total order one of the two sees the
   other, so a task is never left queued with a worker parked and nobody on the way. (A relaxed pair
   lets the store sit in the spinner's store buffer, on x86 too: the submit then reads "a worker
   spins", wakes nobody, and the spinner misses the task.) */
static unsigned spinning(const ctp_pool *pool) {
    return atomic_load_explicit(&pool->spinning, memory_order_seq_cst);
}

/* Unparks the most recently parked worker, if any, and returns it: the caller signals its `wake`
   after unlocking, so that the worker does not wake only to block on the lock. Called with the lock
   held. */
static ctp_worker *unpark_one(ctp_pool *pool) {
    unsigned idle = idle_count(pool);
    if (idle == 0) return NULL;
    set_idle_count(pool, idle - 1);
    ctp_worker *worker = &pool->workers[pool->idle_stack[idle - 1]];
    worker->parked = false;
    return worker;
}

/* Wakes one parked worker, if any, signalling with the lock held (for the rare paths). */
static void wake_one_idle(ctp_pool *pool) {
    ctp_worker *worker = unpark_one(pool);
    if (worker != NULL) pthread_cond_signal(&worker->wake);
}

/* Wakes one particular worker if it is parked. Called with the lock held. */
static void wake_worker(ctp_pool *pool, ctp_worker *worker) {
    if (!worker->parked) return;
    unsigned idle = idle_count(pool);
    for (unsigned i = 0; i < idle; i++) {
        if (pool->idle_stack[i] == worker->index) {
            pool->idle_stack[i] = pool->idle_stack[idle - 1];
            set_idle_count(pool, idle - 1);
            break;
        }
    }
    worker->parked = false;
    pthread_cond_signal(&worker->wake);
}

/* Tells a spinning worker that something changed (a push, a state change). Called with the lock held. */
static void note_event(ctp_pool *pool) {
    unsigned events = atomic_load_explicit(&pool->events, memory_order_relaxed);
    atomic_store_explicit(&pool->events, events + 1, memory_order_relaxed);
}

/* The worker to wake for a task just queued: none while a worker spins (it will take the task
   without a futex round trip), else the most recently parked one. Called with the lock held. */
static ctp_worker *worker_for_new_task(ctp_pool *pool) {
    note_event(pool);
    return spinning(pool) > 0 ? NULL : unpark_one(pool);
}

/* Wakes every parked worker and blocked submitter: the state changed. Called with the lock held. */
static void wake_all(ctp_pool *pool) {
    note_event(pool);
    while (idle_count(pool) > 0) wake_one_idle(pool);
    if (pool->space_waiters > 0) pthread_cond_broadcast(&pool->space);
}

/* ---- the registry: pools to join at process exit -------------------------------------------- */

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static ctp_pool *registry_head, *registry_tail; /* registry_lock; oldest first */
static atomic_bool join_at_exit = true;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

static void join_pools_at_exit(void);

static void install_exit_handler(void) {
    (void)atexit(join_pools_at_exit); /* on failure pools are simply not joined at exit */
}

static void registry_add(ctp_pool *pool) {
    (void)pthread_once(&registry_once, install_exit_handler);
    pthread_mutex_lock(&registry_lock);
    pool->registry_prev = registry_tail;
    pool->registry_next = NULL;
    if (registry_tail != NULL) registry_tail->registry_next = pool; else registry_head = pool;
    registry_tail = pool;
    pthread_mutex_unlock(&registry_lock);
}

/* Once a pool is off the list, join_pools_at_exit can no longer take a hold on it. */
static void registry_remove(ctp_pool *pool) {
    pthread_mutex_lock(&registry_lock);
    if (pool->registry_prev != NULL) pool->registry_prev->registry_next = pool->registry_next;
    else if (registry_head == pool) registry_head = pool->registry_next;
    if (pool->registry_next != NULL) pool->registry_next->registry_prev = pool->registry_prev;
    else if (registry_tail == pool) registry_tail = pool->registry_prev;
    pool->registry_prev = pool->registry_next = NULL;
    pthread_mutex_unlock(&registry_lock);
}

void ctp_set_join_at_exit(int enabled) {
    atomic_store(&join_at_exit, enabled != 0);
}

int ctp_joins_at_exit(void) {
    return atomic_load(&join_at_exit) ? 1 : 0;
}

static void pool_free(ctp_pool *pool) {
    for (unsigned i = 0; i < pool->threads; i++) {
        pthread_cond_destroy(&pool->workers[i].wake);
        free(pool->workers[i].name);
        ctp_ring_free(&pool->workers[i].own);
    }
    if (pool->context_release != NULL) pool->context_release(pool->context);
    ctp_queue_free(&pool->queue);
    free(pool->idle_stack);
    pthread_cond_destroy(&pool->changed);
    pthread_cond_destroy(&pool->space);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

/* ---- the worker ------------------------------------------------------------------------- */

/* Counts the calling worker as running one more task. Done before the task is claimed (under the
   lock, or before the claim that releases it: see run_held), so that the stats, taken under the lock,
   never see a task that is neither queued nor running (a test waiting for an idle pool saw one). */
static void mark_running(ctp_worker *self) {
    unsigned busy = atomic_load_explicit(&self->busy, memory_order_relaxed);
    atomic_store_explicit(&self->busy, busy + 1, memory_order_relaxed);
}

/* Releasing: stats() acquires `busy` before it reads `done`, so it sees a finished task's count. */
static void unmark_running(ctp_worker *self) {
    unsigned busy = atomic_load_explicit(&self->busy, memory_order_relaxed);
    atomic_store_explicit(&self->busy, busy - 1, memory_order_release);
}

/* Set by ctp_task_declined inside a task function; read and cleared by whoever made the call. */
static _Thread_local bool ctp_declined_flag;

void ctp_task_declined(void) {
    ctp_declined_flag = true;
}

/* Whether the task function that just returned on this thread declined; clears the flag. */
static bool take_declined(void) {
    bool declined = ctp_declined_flag;
    ctp_declined_flag = false;
    return declined;
}

/* Adds one to a counter that only the calling thread writes. */
static void count_own(atomic_ullong *counter) {
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1, memory_order_relaxed);
}

/* Runs one task that the caller has marked running, without the lock; then counts it done (or
   declined), before it stops counting as running (for a moment it is both: never neither). */
static void run_marked(ctp_worker *self, ctp_task task) {
    task.fn(task.arg, 0);
    count_own(take_declined() ? &self->declined : &self->done);
    unmark_running(self);
}

/* Runs one task, taken off a queue under the lock, with the lock released. Called and returns with
   the lock held. */
static void run_task(ctp_pool *pool, ctp_worker *self, ctp_task task) {
    mark_running(self);
    pthread_mutex_unlock(&pool->lock);
    run_marked(self, task);
    pthread_mutex_lock(&pool->lock);
}

/* Runs this worker's broadcast tasks. Called and returns with the lock held. */
static void run_own(ctp_pool *pool, ctp_worker *self) {
    ctp_task task;
    while (ctp_ring_pop(&self->own, &task, 1) == 1) run_task(pool, self, task);
    atomic_store_explicit(&self->has_own, false, memory_order_relaxed);
}

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

/* Tasks of a worker's batch that have not been claimed. Called with the lock held. Acquiring: a claim
   the owner made without the lock is seen together with its mark_running (see run_held). */
static size_t unstarted(const ctp_worker *worker) {
    size_t next = atomic_load_explicit(&worker->held_next, memory_order_acquire);
    return next < worker->held_count ? worker->held_count - next : 0;
}

/* Claims up to `count` unstarted tasks of a worker's batch, copying them to `out`; returns how many.
   Called with the lock held, by any thread; the owner claims its own tasks one at a time with the
   same counter without the lock. */
static size_t claim_held(ctp_worker *worker, ctp_task *out, size_t count) {
    if (unstarted(worker) == 0) return 0;
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
        size_t left = other == self ? 0 : unstarted(other);
        if (left == 0) continue;
        size_t count = claim_held(other, self->held, left > 1 ? left / 2 : 1);
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
       way, wake a parked worker for them. */
    if (ctp_queue_count(&pool->queue) > 0 && spinning(pool) == 0) wake_one_idle(pool);
    return true;
}

/* Starts moving what a queued task's argument points to into this core's cache, for writing, a few
   tasks before it runs. A task's argument is typically an object that its submitter has just written
   (a Swift job: its closure, its result's state) and that the task reads and writes first thing:
   without this, every tiny task began with a wait for those cache lines to come over from the
   submitting core (a fifth of a worker's time in a stream of tiny Swift tasks). A prefetch never
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

/* Polls, without the lock, for up to CTP_SPIN_NS for a push (to the inbox or under the lock) or a
   state change. A worker that just ran out of work does this once before it parks: tasks submitted
   in quick succession are then taken without the submitter paying for a futex wake and the worker
   for a sleep and a context switch, which cost several microseconds each. One worker at a time
   spins, so an idle pool burns at most one core for that long, and it yields the CPU every 64
   polls, so a spin never delays a thread that has work (with 2 workers and a submitter on 2 CPUs,
   tiny tasks went from 168 to 129 ns each). Called and returns with the lock held; the caller looks
   for work again. */
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

/* Runs tasks until the queues are empty and the pool no longer runs. Called and returns with the
   lock held.

   A worker that runs out of work spins (spin_for_work) only if its last idle spell was short
   enough for a spin to have caught the next task: when tasks come far apart, spinning only burns
   the core, and parking at once wakes faster (on this project's 2-vCPU VM an idle wake took ~3 us
   without the spin and ~9.5 us with it). The first spell of a burst is long, so the first wake of a
   burst parks again; the next short spell turns spinning back on.

   Parking: a worker counts itself idle (set_idle_count) and then looks at the inbox's tail; a submit
   through the inbox claims a slot and then looks at the idle count. Both sequentially consistent, so
   at least one sees the other: the worker the new task, or the submit the parked worker to wake. */
static void worker_loop(ctp_pool *pool, ctp_worker *self) {
    bool spun = false;                  /* since this worker last found work */
    unsigned long long idle_since = 0;  /* when this worker ran out of work; 0 while it has some */
    unsigned long long last_idle = 0;   /* how long its last idle spell lasted */
    for (;;) {
        bool found = true;
        if (self->own.count > 0) {
            run_own(pool, self);
        } else if (take_over(pool, self) || take_batch(pool, self, batch_size(pool, self))) {
            if (idle_since != 0) {
                last_idle = ctp_monotonic_ns() - idle_since;
                idle_since = 0;
            }
            run_held(pool, self);
        } else if (ctp_queue_count(&pool->queue) > 0) {
            /* A submitter has claimed a slot and not yet written its task: let it finish. (Once the
               pool stops, no slot can be claimed any more, so this ends.) */
            pthread_mutex_unlock(&pool->lock);
            sched_yield();
            pthread_mutex_lock(&pool->lock);
        } else if (pool->state != CTP_RUNNING) {
            return; /* closed or terminated, and drained */
        } else {
            found = false;
            if (idle_since == 0) idle_since = ctp_monotonic_ns();
            if (!spun && spinning(pool) == 0 && last_idle <= CTP_SPIN_NS) {
                spin_for_work(pool);
                spun = true;
            } else {
                unsigned idle = idle_count(pool);
                pool->idle_stack[idle] = self->index;
                self->parked = true;
                set_idle_count(pool, idle + 1);
                if (ctp_queue_count(&pool->queue) > 0) {
                    /* A task came through the inbox meanwhile: this worker is still on top of the
                       stack (the lock is held), so it takes itself off and takes the task. */
                    set_idle_count(pool, idle);
                    self->parked = false;
                    continue;
                }
                while (self->parked) pthread_cond_wait(&self->wake, &pool->lock);
                spun = false;
            }
        }
        if (found) spun = false;
    }
}

static void *worker_main(void *argument) {
    ctp_worker *self = argument;
    ctp_pool *pool = self->pool;
    ctp_self = self;
    ctp_name_set_os(self->name);

    int init_rc = pool->initializer != NULL ? pool->initializer(pool->context, self->index) : 0;

    pthread_mutex_lock(&pool->lock);
    pool->started++;
    if (init_rc != 0) pool->init_failures++;
    pthread_cond_broadcast(&pool->changed); /* the start barrier in ctp_pool_create */
    if (init_rc == 0) worker_loop(pool, self);
    pthread_mutex_unlock(&pool->lock);

    if (init_rc == 0 && pool->finalizer != NULL) pool->finalizer(pool->context, self->index);
    ctp_self = NULL;

    pthread_mutex_lock(&pool->lock);
    /* With a join at exit holding the pool, that join frees it once it lets go. */
    bool last_out = --pool->live == 0 && pool->detached && pool->exit_holds == 0;
    /* Freeing: a terminate still making its cancellation calls must finish with the pool first. */
    while (last_out && pool->cancelling > 0) pthread_cond_wait(&pool->changed, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    if (last_out) {
        registry_remove(pool);
        pool_free(pool);
    }
    return NULL;
}

/* ---- create ----------------------------------------------------------------------------- */

void ctp_options_init(ctp_options *options) {
    if (options != NULL) memset(options, 0, sizeof *options);
}

/* Stops and joins the first `count` workers of a pool that failed to start, then frees it. */
static void abandon_start(ctp_pool *pool, unsigned count) {
    pthread_mutex_lock(&pool->lock);
    pool->state = CTP_TERMINATED;
    ctp_queue_close(&pool->queue);
    wake_all(pool);
    pthread_mutex_unlock(&pool->lock);
    for (unsigned i = 0; i < count; i++) pthread_join(pool->workers[i].thread, NULL);
    pool->context_release = NULL; /* on failure the caller keeps its context */
    pool_free(pool);
}

int ctp_pool_create(const ctp_options *options, ctp_pool **out) {
    if (out == NULL) return CTP_EINVAL;
    *out = NULL;
    ctp_options defaults;
    if (options == NULL) {
        ctp_options_init(&defaults);
        options = &defaults;
    }
    unsigned cpus = available_cpus();
    unsigned threads = options->threads != 0 ? options->threads : cpus < CTP_MAX_THREADS ? cpus : CTP_MAX_THREADS;
    if (threads > CTP_MAX_THREADS) return CTP_EINVAL;
    if (options->stack_size != 0 && options->stack_size < (size_t)PTHREAD_STACK_MIN) return CTP_EINVAL;

    ctp_pool *pool = CTP_ALIGNED_ZALLOC(CTP_CACHE_LINE, sizeof *pool + threads * sizeof(ctp_worker));
    if (pool == NULL) return CTP_ENOMEM;
    pool->threads = threads;
    pool->initializer = options->initializer;
    pool->finalizer = options->finalizer;
    pool->context = options->context;
    pool->context_release = options->context_release;
    pool->live = threads;
    pool->skip_join_at_exit = options->skip_join_at_exit != 0;

    /* Everything below is undone by pool_free, which tolerates zeroed fields; the workers'
       condition variables are initialized first so that it may destroy all of them. */
    pthread_mutexattr_t lock_attributes;
    pthread_mutexattr_init(&lock_attributes);
#if defined(PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP)
    /* Critical sections are a few dozen instructions: spinning briefly on a contended lock is much
       cheaper than the futex round trip of sleeping on it. */
    pthread_mutexattr_settype(&lock_attributes, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
    pthread_mutex_init(&pool->lock, &lock_attributes);
    pthread_mutexattr_destroy(&lock_attributes);
    pthread_cond_init(&pool->space, NULL);
    pthread_cond_init(&pool->changed, NULL);
    for (unsigned i = 0; i < threads; i++) pthread_cond_init(&pool->workers[i].wake, NULL);

    pool->idle_stack = CTP_MALLOC(threads * sizeof(unsigned));
    int rc = pool->idle_stack == NULL ? CTP_ENOMEM : ctp_queue_init(&pool->queue, options->queue_capacity);
    unsigned long long first_number = options->name_prefix == NULL ? ctp_names_reserve(threads) : 1;
    for (unsigned i = 0; rc == 0 && i < threads; i++) {
        ctp_worker *worker = &pool->workers[i];
        worker->pool = pool;
        worker->index = i;
        worker->batch_limit = 1;
        worker->name = ctp_name_make(options->name_prefix, first_number + i);
        if (worker->name == NULL) rc = CTP_ENOMEM;
    }
    if (rc != 0) {
        pool->context_release = NULL;
        pool_free(pool);
        return rc;
    }

    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    if (options->stack_size != 0 && pthread_attr_setstacksize(&attributes, options->stack_size) != 0) {
        pthread_attr_destroy(&attributes);
        pool->context_release = NULL;
        pool_free(pool);
        return CTP_EINVAL;
    }
    unsigned created = 0;
    for (; created < threads; created++) {
        if (CTP_PTHREAD_CREATE(&pool->workers[created].thread, &attributes, worker_main,
                           &pool->workers[created]) != 0) break;
    }
    pthread_attr_destroy(&attributes);

    /* The start barrier: every created worker has run its initializer. */
    pthread_mutex_lock(&pool->lock);
    pool->live = created;
    while (pool->started < created) pthread_cond_wait(&pool->changed, &pool->lock);
    bool failed = created < threads || pool->init_failures > 0;
    pthread_mutex_unlock(&pool->lock);

    if (failed) {
        rc = created < threads ? CTP_EAGAIN : CTP_EINIT;
        abandon_start(pool, created);
        return rc;
    }
    registry_add(pool);
    *out = pool;
    return 0;
}

/* ---- submit ----------------------------------------------------------------------------- */

/* Waits until a bounded queue has room or the pool stops running: 0, or CTP_EAGAIN at once when the
   caller may not block. Called and returns with the lock held. Out of line: most pools are unbounded,
   and inlined, its loop cost every submit 15 instructions (callgrind: ctp_pool_submit 162 -> 147). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int wait_for_room(ctp_pool *pool, bool may_block) {
    while (pool->state == CTP_RUNNING && ctp_queue_full(&pool->queue)) {
        if (!may_block) return CTP_EAGAIN;
        ctp_task task;
        if (ctp_self != NULL && ctp_self->pool == pool && ctp_queue_take(&pool->queue, &task, 1) == 1) {
            /* A worker of this pool waiting for room could wait for itself (every worker may be
               here): it runs the oldest queued task instead, which makes the room. */
            run_task(pool, ctp_self, task);
            continue;
        }
        pool->space_waiters++;
        pthread_cond_wait(&pool->space, &pool->lock);
        pool->space_waiters--;
    }
    return 0;
}

/* A submit that takes the lock: the inbox is full or off (the pool stopped, or its queue is bounded). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int submit_locked(ctp_pool *pool, ctp_task task, bool may_block) {
    pthread_mutex_lock(&pool->lock);
    int rc = pool->queue.limit != 0 ? wait_for_room(pool, may_block) : 0;
    if (rc == 0) rc = ctp_queue_push(&pool->queue, task);
    ctp_worker *to_wake = rc == 0 ? worker_for_new_task(pool) : NULL;
    pthread_mutex_unlock(&pool->lock);
    /* Safe after unlocking: a worker and its condition variable live until the pool is freed,
       which cannot happen while a call on the pool is still in progress. */
    if (to_wake != NULL) pthread_cond_signal(&to_wake->wake);
    return rc;
}

/* Wakes a parked worker for a task left in the inbox, unless a worker spins (it will see the task). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void wake_for_inbox(ctp_pool *pool) {
    pthread_mutex_lock(&pool->lock);
    ctp_worker *to_wake = spinning(pool) > 0 ? NULL : unpark_one(pool);
    pthread_mutex_unlock(&pool->lock);
    if (to_wake != NULL) pthread_cond_signal(&to_wake->wake);
}

static int submit(ctp_pool *pool, ctp_task_fn fn, void *arg, bool may_block) {
    if (pool == NULL || fn == NULL) return CTP_EINVAL;
    ctp_task task = { fn, arg };
    if (!ctp_queue_try_push(&pool->queue, task)) return submit_locked(pool, task, may_block);
    /* Sequentially consistent, after the push: see worker_loop's parking. */
    if (atomic_load_explicit(&pool->idle_count, memory_order_seq_cst) > 0 && spinning(pool) == 0) {
        wake_for_inbox(pool);
    }
    return 0;
}

int ctp_pool_submit(ctp_pool *pool, ctp_task_fn fn, void *arg) {
    return submit(pool, fn, arg, true);
}

int ctp_pool_try_submit(ctp_pool *pool, ctp_task_fn fn, void *arg) {
    return submit(pool, fn, arg, false);
}

int ctp_pool_submit_many(ctp_pool *pool, ctp_task_fn fn, void *arg, size_t count) {
    if (pool == NULL || fn == NULL) return CTP_EINVAL;
    if (count == 0) return 0;
    pthread_mutex_lock(&pool->lock);
    int rc = ctp_queue_push_many(&pool->queue, (ctp_task){ fn, arg }, count);
    if (rc == 0) {
        note_event(pool);
        for (size_t i = 0; i < count && idle_count(pool) > 0; i++) wake_one_idle(pool);
    }
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

int ctp_pool_broadcast(ctp_pool *pool, ctp_task_fn fn, void *arg) {
    if (pool == NULL || fn == NULL) return CTP_EINVAL;
    pthread_mutex_lock(&pool->lock);
    int rc = pool->state != CTP_RUNNING ? CTP_ECLOSED : 0;
    unsigned pushed = 0;
    for (; rc == 0 && pushed < pool->threads; pushed++) {
        rc = ctp_ring_push(&pool->workers[pushed].own, (ctp_task){ fn, arg });
    }
    if (rc != 0) {
        while (pushed > 0) pool->workers[--pushed].own.count--; /* all or nothing */
    } else {
        for (unsigned i = 0; i < pool->threads; i++) {
            atomic_store_explicit(&pool->workers[i].has_own, true, memory_order_relaxed);
            wake_worker(pool, &pool->workers[i]);
        }
        note_event(pool);
    }
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

int ctp_pool_help(ctp_pool *pool) {
    if (pool == NULL || ctp_self == NULL || ctp_self->pool != pool) return CTP_EINVAL;
    ctp_worker *self = ctp_self;
    ctp_task task;
    pthread_mutex_lock(&pool->lock);
    /* Oldest first: the rest of this worker's batch (the caller may be waiting for one of those),
       its broadcast tasks, other workers' unstarted batch tasks, then the shared queue. Only one
       task: this worker's batch array is in use further up the stack. */
    bool found = claim_held(self, &task, 1) == 1 || ctp_ring_pop(&self->own, &task, 1) == 1;
    for (unsigned w = 0; !found && w < pool->threads; w++) {
        if (w != self->index) found = claim_held(&pool->workers[w], &task, 1) == 1;
    }
    if (!found && ctp_queue_take(&pool->queue, &task, 1) == 1) {
        found = true;
        if (pool->space_waiters > 0) pthread_cond_signal(&pool->space);
    }
    if (found) run_task(pool, self, task);
    pthread_mutex_unlock(&pool->lock);
    return found ? 1 : 0;
}

/* ---- close, terminate, join, destroy ---------------------------------------------------- */

int ctp_pool_close(ctp_pool *pool) {
    if (pool == NULL) return CTP_EINVAL;
    pthread_mutex_lock(&pool->lock);
    int rc = pool->state == CTP_RUNNING ? 0 : CTP_ECLOSED;
    if (rc == 0) {
        pool->state = CTP_CLOSED;
        ctp_queue_close(&pool->queue);
        wake_all(pool);
    }
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

/* Makes a dropped task's CTP_ECANCELED call, then counts it cancelled (or declined) before it stops
   counting as queued. Without the lock. */
static void cancel_dropped(ctp_pool *pool, ctp_task task) {
    task.fn(task.arg, CTP_ECANCELED);
    atomic_fetch_add_explicit(take_declined() ? &pool->declined : &pool->cancelled, 1, memory_order_relaxed);
    /* Releasing: pairs with the acquiring load in ctp_pool_stats, which then sees the count above. */
    atomic_fetch_sub_explicit(&pool->dropping, 1, memory_order_release);
}

int ctp_pool_terminate(ctp_pool *pool) {
    if (pool == NULL) return CTP_EINVAL;
    pthread_mutex_lock(&pool->lock);
    if (pool->state == CTP_TERMINATED) {
        pthread_mutex_unlock(&pool->lock);
        return CTP_ECLOSED;
    }
    pool->state = CTP_TERMINATED;
    ctp_queue_close(&pool->queue);
    /* Take the queued tasks, shared and per-worker; the pool keeps empty rings. (Without memory to
       move the inbox's tasks to the list, the workers run them: nothing is lost either way.) */
    ctp_ring dropped = { 0 };
    (void)ctp_queue_take_all(&pool->queue, &dropped);
    ctp_ring *dropped_own = CTP_CALLOC(pool->threads, sizeof(ctp_ring));
    for (unsigned i = 0; dropped_own != NULL && i < pool->threads; i++) {
        dropped_own[i] = pool->workers[i].own;
        pool->workers[i].own = (ctp_ring){ 0 };
    }
    /* And the tasks of the workers' batches that have not started. (Without memory for the list,
       their workers run them: nothing is lost either way.) */
    ctp_task *dropped_held = CTP_MALLOC((size_t)pool->threads * CTP_BATCH_MAX * sizeof(ctp_task));
    size_t dropped_held_count = 0;
    for (unsigned i = 0; dropped_held != NULL && i < pool->threads; i++) {
        dropped_held_count += claim_held(&pool->workers[i], dropped_held + dropped_held_count, CTP_BATCH_MAX);
    }
#ifdef CTP_FAULT_INJECTION
    atomic_fetch_add(&ctp_test_batched_cancels, dropped_held_count);
#endif
    /* Still counted as queued until each call returns: see cancel_dropped. */
    size_t dropping = dropped.count + dropped_held_count;
    for (unsigned i = 0; dropped_own != NULL && i < pool->threads; i++) dropping += dropped_own[i].count;
    atomic_fetch_add_explicit(&pool->dropping, dropping, memory_order_relaxed);
    pool->cancelling++;
    wake_all(pool);
    pthread_mutex_unlock(&pool->lock);

    /* Without memory for the per-worker list, the workers run their broadcast tasks themselves
       (they drain their own ring before exiting): nothing is lost either way. */
    ctp_task task;
    for (unsigned i = 0; dropped_own != NULL && i < pool->threads; i++) {
        while (ctp_ring_pop(&dropped_own[i], &task, 1) == 1) cancel_dropped(pool, task);
        ctp_ring_free(&dropped_own[i]);
    }
    free(dropped_own);
    for (size_t i = 0; i < dropped_held_count; i++) cancel_dropped(pool, dropped_held[i]);
    free(dropped_held);
    while (ctp_ring_pop(&dropped, &task, 1) == 1) cancel_dropped(pool, task);
    ctp_ring_free(&dropped);

    pthread_mutex_lock(&pool->lock);
    pool->cancelling--;
    pthread_cond_broadcast(&pool->changed);
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

int ctp_pool_join(ctp_pool *pool) {
    if (pool == NULL) return CTP_EINVAL;
    if (ctp_self != NULL && ctp_self->pool == pool) return CTP_EDEADLK;
    pthread_mutex_lock(&pool->lock);
    if (pool->state == CTP_RUNNING) {
        pthread_mutex_unlock(&pool->lock);
        return CTP_ERUNNING;
    }
    while (pool->join_state == CTP_JOIN_IN_PROGRESS) pthread_cond_wait(&pool->changed, &pool->lock);
    if (pool->join_state == CTP_JOIN_DONE) {
        pthread_mutex_unlock(&pool->lock);
        return 0;
    }
    pool->join_state = CTP_JOIN_IN_PROGRESS;
    pthread_mutex_unlock(&pool->lock);

    for (unsigned i = 0; i < pool->threads; i++) pthread_join(pool->workers[i].thread, NULL);

    pthread_mutex_lock(&pool->lock);
    while (pool->cancelling > 0) pthread_cond_wait(&pool->changed, &pool->lock);
    pool->join_state = CTP_JOIN_DONE;
    pthread_cond_broadcast(&pool->changed);
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

void ctp_pool_destroy(ctp_pool *pool) {
    if (pool == NULL) return;
    (void)ctp_pool_close(pool);
    if (ctp_self != NULL && ctp_self->pool == pool) {
        /* A worker cannot wait for itself: let the workers go, and the last one out frees. */
        pthread_mutex_lock(&pool->lock);
        pool->detached = true;
        /* A join at exit in progress reaps the threads itself (and then frees the pool). */
        if (pool->exit_holds == 0) {
            for (unsigned i = 0; i < pool->threads; i++) pthread_detach(pool->workers[i].thread);
        }
        pthread_mutex_unlock(&pool->lock);
        return;
    }
    (void)ctp_pool_join(pool);
    registry_remove(pool);
    /* A join at exit that holds the pool may still be returning from its ctp_pool_join. */
    pthread_mutex_lock(&pool->lock);
    while (pool->exit_holds > 0) pthread_cond_wait(&pool->changed, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    pool_free(pool);
}

/* The atexit handler (see ctp_set_join_at_exit): closes and joins every listed pool, oldest first,
   one at a time, taking a hold on each under registry_lock so that a concurrent destroy waits for it
   instead of freeing the pool under it. The list is walked again from its head after each join: a
   pool created or freed meanwhile (a task may do either) is seen or skipped correctly. */
static void join_pools_at_exit(void) {
    if (!atomic_load(&join_at_exit)) return;
    ctp_pool *own_pool = ctp_self != NULL ? ctp_self->pool : NULL;
    for (;;) {
        ctp_pool *pool = NULL;
        pthread_mutex_lock(&registry_lock);
        for (ctp_pool *p = registry_head; p != NULL && pool == NULL; p = p->registry_next) {
            if (p->exit_visited) continue;
            p->exit_visited = true;
            if (p == own_pool || p->skip_join_at_exit) continue;
            pthread_mutex_lock(&p->lock);
            if (!p->detached) {
                p->exit_holds++;
                pool = p;
            }
            pthread_mutex_unlock(&p->lock);
        }
        pthread_mutex_unlock(&registry_lock);
        if (pool == NULL) return;

        (void)ctp_pool_close(pool);
        (void)ctp_pool_join(pool);

        pthread_mutex_lock(&pool->lock);
        pool->exit_holds--;
        /* Destroyed from one of its workers while held: its last worker left the freeing to us. */
        bool free_now = pool->exit_holds == 0 && pool->detached && pool->live == 0;
        pthread_cond_broadcast(&pool->changed);
        pthread_mutex_unlock(&pool->lock);
        if (free_now) {
            registry_remove(pool);
            pool_free(pool);
        }
    }
}

/* ---- queries ---------------------------------------------------------------------------- */

int ctp_pool_thread_count(const ctp_pool *pool) {
    return pool == NULL ? CTP_EINVAL : (int)pool->threads;
}


int ctp_pool_stats(ctp_pool *pool, ctp_stats *out) {
    if (pool == NULL || out == NULL) return CTP_EINVAL;
    pthread_mutex_lock(&pool->lock);
    /* Broadcast tasks and unstarted batch tasks are queued too; what runs is counted per worker. */
    /* Acquiring, before the counts a dropped task moves to: see cancel_dropped. */
    size_t queued_elsewhere = atomic_load_explicit(&pool->dropping, memory_order_acquire);
    unsigned long long cancelled = atomic_load_explicit(&pool->cancelled, memory_order_relaxed);
    unsigned long long declined = atomic_load_explicit(&pool->declined, memory_order_relaxed);
    size_t running = 0;
    unsigned long long completed = 0;
    for (unsigned i = 0; i < pool->threads; i++) {
        const ctp_worker *worker = &pool->workers[i];
        queued_elsewhere += worker->own.count + unstarted(worker);
        running += atomic_load_explicit(&worker->busy, memory_order_acquire); /* before `done` */
        completed += atomic_load_explicit(&worker->done, memory_order_relaxed);
        declined += atomic_load_explicit(&worker->declined, memory_order_relaxed);
    }
    *out = (ctp_stats){
        .threads = pool->threads,
        .idle = idle_count(pool),
        .queued = ctp_queue_count(&pool->queue) + queued_elsewhere,
        .running = running,
        .completed = completed,
        .cancelled = cancelled,
        .declined = declined,
    };
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

#ifdef CTP_FAULT_INJECTION
void ctp_test_wake_state(ctp_pool *pool, unsigned *idle, unsigned *spinning_workers) {
    *idle = atomic_load_explicit(&pool->idle_count, memory_order_relaxed);
    *spinning_workers = atomic_load_explicit(&pool->spinning, memory_order_relaxed);
}

size_t ctp_test_batched(ctp_pool *pool) {
    pthread_mutex_lock(&pool->lock);
    size_t count = 0;
    for (unsigned i = 0; i < pool->threads; i++) count += unstarted(&pool->workers[i]);
    pthread_mutex_unlock(&pool->lock);
    return count;
}
#endif

int ctp_current_worker_index(void) {
    return ctp_self != NULL ? (int)ctp_self->index : -1;
}

const char *ctp_current_worker_name(void) {
    return ctp_self != NULL ? ctp_self->name : NULL;
}

ctp_pool *ctp_current_pool(void) {
    return ctp_self != NULL ? ctp_self->pool : NULL;
}

void *ctp_current_context(void) {
    return ctp_self != NULL ? ctp_self->pool->context : NULL;
}

static _Thread_local void *ctp_thread_slot_value;

void **ctp_thread_slot(void) {
    return &ctp_thread_slot_value;
}

const char *ctp_strerror(int code) {
    switch (code) {
    case 0: return "success";
    case CTP_EINVAL: return "invalid argument";
    case CTP_ENOMEM: return "out of memory";
    case CTP_ECLOSED: return "the pool is closed or terminated";
    case CTP_ERUNNING: return "the pool is still running: close or terminate it before join";
    case CTP_EINIT: return "a worker's initializer failed";
    case CTP_EAGAIN: return "resource temporarily unavailable (thread creation failed or the queue is full)";
    case CTP_ECANCELED: return "the task was cancelled by terminate";
    case CTP_ETIMEDOUT: return "timed out";
    case CTP_EDEADLK: return "would deadlock: called from one of the pool's own workers";
    default: return "unknown error";
    }
}
