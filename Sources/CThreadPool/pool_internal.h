/* The pool's and its workers' state, shared by pool.c (the public API and the lifecycle) and worker.c
   (the worker threads) only.

   One mutex, the pool's `lock`, guards everything that changes, except where a field's note says
   otherwise: the queue's inbox takes pushes without it (queue.h), and each worker writes its own
   counters alone. User code (tasks, initializers, finalizers, cancellations) always runs with the
   lock released.

   Waking: each worker parks on its own condition variable, listed on an idle stack, so that a submit
   wakes exactly one idle worker, and only when one is idle and no worker is polling for work (a
   worker that ran out of work may poll for a few microseconds before it parks: see worker.c); state
   changes (close, terminate) wake them all. */
#ifndef CTP_POOL_INTERNAL_H
#define CTP_POOL_INTERNAL_H

#include "CThreadPool.h"
#include "ctp_memory.h"
#include "queue.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

enum ctp_state { CTP_RUNNING, CTP_CLOSED, CTP_TERMINATED };

/* In idle_count: the pool is elastic. A submit then reads one word to know whether it has anything
   to do (wake a parked worker, or perhaps start one): zero for a fixed pool with none parked. */
#define CTP_IDLE_ELASTIC (1u << 31)
enum ctp_join_state { CTP_JOIN_NONE, CTP_JOIN_IN_PROGRESS, CTP_JOIN_DONE };

/* How many queued tasks a worker takes per lock acquisition, at most: see worker.c's batch_size. */
enum { CTP_BATCH_MAX = 32 };

/* A worker slot's life (pool->lock). FREE: no thread (never started, or reaped). LIVE: a thread is
   starting or running in it. EXITED: its thread has left the pool and waits to be joined (reaped)
   before the slot is used again. */
enum ctp_slot_state { CTP_SLOT_FREE, CTP_SLOT_LIVE, CTP_SLOT_EXITED };

/* The CPU indices a pool may pin its workers to: 0..<CTP_MAX_CPU_INDEX (glibc's CPU_SETSIZE). */
enum { CTP_MAX_CPU_INDEX = 1024 };

typedef struct ctp_worker {
    /* Aligned to a cache line: each worker writes its own counters on every task. */
    _Alignas(CTP_CACHE_LINE) ctp_pool *pool; /* immutable */
    pthread_t thread;         /* written by whoever starts the thread, before it can be joined */
    unsigned index;           /* immutable, 0-based */
    char *name;               /* malloc'd; written before the slot's thread starts */
    enum ctp_slot_state slot; /* pool->lock */
    bool has_thread;          /* pool->lock: `thread` holds this slot's thread (it may be detached or joined) */
    bool creating;            /* pool->lock: ctp_worker_grow is creating this slot's thread (the lock released) */
    /* The lowest address of this worker's stack and how much its helping must leave (this thread
       only; written as the worker starts): see ctp_pool_help. */
    const char *stack_low;
    size_t stack_reserve;
    bool stack_noted;         /* this thread only: stack_low and stack_reserve have been read */
    pthread_cond_t wake;      /* signalled when `parked` is cleared */
    bool parked;              /* pool->lock: on the idle stack, waiting for work or a state change */
    ctp_ring own;             /* pool->lock: tasks for this worker only (broadcast, submit_to_worker), run before the shared queue */
    atomic_bool has_own;      /* written under pool->lock: own is not empty (read between batch tasks) */
    bool exited;              /* pool->lock: set as the worker leaves its loop; nothing is pushed to `own` after */
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
    /* What every locked push and every batch touches comes first, together, so that a submit after a
       worker's batch misses as few cache lines as possible. */
    _Alignas(CTP_CACHE_LINE) pthread_mutex_t lock;
    enum ctp_state state;     /* lock */
    unsigned space_waiters;   /* lock: submitters blocked on `space` */
    unsigned *idle_stack;     /* lock: indices of parked workers, most recently parked last */
    ctp_queue queue;          /* lock, but for pushes to its inbox (queue.h); its inbox's tail is on a
                                 line of its own */
    /* Written under lock, read by every submit through the inbox, which wakes a worker only if one is
       parked and none spins: on a line of their own, which changes only when workers park or spin. */
    _Alignas(CTP_CACHE_LINE) atomic_uint idle_count; /* parked workers: the idle stack's size, and
                                                         CTP_IDLE_ELASTIC for an elastic pool */
    atomic_uint spinning;     /* workers in spin_for_work (at most one) */
    bool elastic;             /* immutable: max_threads > threads (submits may start workers) */
    bool observed;            /* immutable: an observer with task callbacks is set (submits wrap tasks) */
    /* Written under lock: bumped by every push under the lock and every state change. On a line of
       its own, since a spinning worker reads it over and over. */
    _Alignas(CTP_CACHE_LINE) atomic_uint events;

    pthread_cond_t space;     /* submitters waiting for room in a bounded queue */
    pthread_cond_t changed;   /* the start barrier, join and terminate's cancellations progressing */
    unsigned started;         /* lock: workers whose initializer has returned */
    unsigned init_failures;   /* lock */
    unsigned live;            /* lock: workers that have not finished exiting (started ones included) */
    /* Growing and retiring (worker.c). */
    atomic_uint live_hint;    /* written under lock: `live`, for the submit path's look without it */
    unsigned blocked;         /* lock: workers inside ctp_pool_block_begin/end */
    unsigned starting;        /* lock: workers started that have not yet looked for work */
    unsigned leaving;         /* lock: workers out of their loop, still counted in `live` until they exit */
    unsigned creating;        /* lock: slots whose thread ctp_worker_grow is creating: join waits for them */
    unsigned high_water;      /* lock: slots ever used: every loop over workers stops here */
    unsigned peak;            /* lock: the most workers live at once */
    unsigned long long threads_started; /* lock: every thread the pool started */
    unsigned long long threads_retired; /* lock: workers beyond `threads` that exited while running */
    unsigned long long grow_failures;   /* lock: extra workers that could not start or whose initializer failed */
    bool running_up;          /* lock: the start barrier has passed (workers started later are extra) */
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
    unsigned threads;         /* the workers always kept */
    unsigned max_threads;     /* the most workers started for queued work (>= threads) */
    unsigned slots;           /* workers[] entries: max_threads + CTP_COMPENSATION_MAX */
    unsigned long long keep_alive_ns; /* how long a worker beyond `threads` may idle before it retires */
    size_t stack_size;        /* 0: the system default */
    char *name_prefix;        /* malloc'd copy, or NULL for "Thread-N" names */
    int *pinned_cpus;         /* malloc'd copy, or NULL */
    size_t pinned_cpu_count;
    bool set_niceness;
    int niceness;
    ctp_init_fn initializer;
    ctp_fini_fn finalizer;
    void *context;
    void (*context_release)(void *context);
    ctp_observer observer;    /* all NULL without one */
    ctp_worker workers[];
};

/* Keeps a function out of line; each use says why. */
#if defined(__GNUC__)
#define CTP_NOINLINE __attribute__((noinline))
#define CTP_ALWAYS_INLINE inline __attribute__((always_inline))
#define CTP_HIDDEN __attribute__((visibility("hidden")))
#else
#define CTP_NOINLINE
#define CTP_ALWAYS_INLINE inline
#define CTP_HIDDEN
#endif

/* ---- The calling thread (defined in worker.c) ------------------------------------------------ */

/* The worker running on this thread, or NULL off every pool. (Hidden, so that reaching it costs no
   more than reaching a static thread-local.) */
extern _Thread_local ctp_worker *ctp_self CTP_HIDDEN;
/* Set by ctp_task_declined inside a task function; read and cleared by whoever made the call. */
extern _Thread_local bool ctp_declined_flag CTP_HIDDEN;

/* Set by ctp_task_failed inside a task function; read by an observed task's wrapper (pool.c). */
extern _Thread_local bool ctp_failed_flag CTP_HIDDEN;
/* Set by ctp_task_declined_with_outcome: the outcome an observer is told for a declined task (-1: none). */
extern _Thread_local int ctp_declined_outcome CTP_HIDDEN;

/* Whether the task function that just returned on this thread declined; clears the flag. */
static inline bool ctp_take_declined(void) {
    bool declined = ctp_declined_flag;
    ctp_declined_flag = false;
    return declined;
}

/* ---- Parked workers (pool.c wakes them, worker.c parks them) ------------------------------- */

/* Parked workers. Called with the lock held. */
static inline unsigned idle_count(const ctp_pool *pool) {
    return atomic_load_explicit(&pool->idle_count, memory_order_relaxed) & ~CTP_IDLE_ELASTIC;
}

/* Sets the number of parked workers. Sequentially consistent: see worker.c's parking. With the lock
   held. */
static inline void set_idle_count(ctp_pool *pool, unsigned count) {
    atomic_store_explicit(&pool->idle_count, count | (pool->elastic ? CTP_IDLE_ELASTIC : 0u), memory_order_seq_cst);
}

/* Workers spinning for work. Read without the lock by submits; written under it. Sequentially
   consistent: a submit through the inbox claims its slot (seq_cst) and then reads this, while a
   spinner stores its end (the last store of spin_for_work, seq_cst) and then reads the inbox's tail
   (ctp_queue_count, seq_cst) before it parks or lets tasks wait; in the single total order one of the
   two sees the other, so a task is never left queued with a worker parked and nobody on the way. (A
   relaxed pair lets the store sit in the spinner's store buffer, on x86 too: the submit then reads
   "a worker spins", wakes nobody, and the spinner misses the task.) */
static inline unsigned spinning(const ctp_pool *pool) {
    return atomic_load_explicit(&pool->spinning, memory_order_seq_cst);
}

/* Unparks the most recently parked worker, if any, and returns it: the caller signals its `wake`
   after unlocking, so that the worker does not wake only to block on the lock. Called with the lock
   held. */
static inline ctp_worker *unpark_one(ctp_pool *pool) {
    unsigned idle = idle_count(pool);
    if (idle == 0) return NULL;
    set_idle_count(pool, idle - 1);
    ctp_worker *worker = &pool->workers[pool->idle_stack[idle - 1]];
    worker->parked = false;
    return worker;
}

/* Wakes one parked worker, if any, signalling with the lock held (for the rare paths). */
static inline void wake_one_idle(ctp_pool *pool) {
    ctp_worker *worker = unpark_one(pool);
    if (worker != NULL) pthread_cond_signal(&worker->wake);
}

/* ---- worker.c ------------------------------------------------------------------------------ */

/* Starts one worker beyond those running if `reason` holds and the pool may grow; see worker.c.
   Called with the lock held; may release and retake it. */
enum ctp_grow_reason { CTP_GROW_FOR_QUEUED_WORK, CTP_GROW_FOR_BLOCKED_WORKER };
void ctp_worker_grow(ctp_pool *pool, enum ctp_grow_reason reason);
/* Records the calling thread's stack bounds in `self` (as a worker starts). */
void ctp_worker_note_stack(ctp_worker *self);
/* Whether the calling worker may run another task nested in its stack (helping while it waits). */
bool ctp_worker_stack_allows_help(ctp_worker *self);

/* The thread's start routine; `worker` is its ctp_worker. */
void *ctp_worker_main(void *worker);
/* Runs one task, taken off a queue under the lock, with the lock released. Called and returns with
   the lock held. */
void ctp_worker_run_task(ctp_pool *pool, ctp_worker *self, ctp_task task);
/* Runs one queued task on `self`, a worker waiting inside a task (ctp_pool_help); false if it found
   none. Called and returns with the lock held. */
bool ctp_worker_help(ctp_pool *pool, ctp_worker *self);
/* Tasks of a worker's batch that have not been claimed. Called with the lock held. */
size_t ctp_worker_unstarted(const ctp_worker *worker);
/* Claims up to `count` unstarted tasks of a worker's batch, copying them to `out`; returns how many.
   Called with the lock held, by any thread. */
size_t ctp_worker_claim_unstarted(ctp_worker *worker, ctp_task *out, size_t count);

/* ---- pool.c -------------------------------------------------------------------------------- */

/* Tells the pool's observer about a failure (without the lock). */
static inline void ctp_observe_failure(ctp_pool *pool, int kind, unsigned index, int code) {
    if (pool->observer.failure != NULL) pool->observer.failure(pool->observer.context, kind, index, code);
}

/* Takes the pool off the list of pools joined at exit and frees it: the last worker out of a pool
   destroyed from its own worker calls it. */
void ctp_pool_dispose(ctp_pool *pool);

#endif /* CTP_POOL_INTERNAL_H */
