/* The pool's public API and lifecycle: create, submit, broadcast, help, close, terminate, join,
 * destroy, the pools joined at process exit, stats and the calling worker's queries. The queue is
 * queue.c's, the worker threads are worker.c's; what they share is in pool_internal.h.
 */
#define _GNU_SOURCE
#include "fault_injection.h"
#include "pool_internal.h"
#include "CThreadPoolSwift.h"
#include "worker_names.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---- waking workers ---------------------------------------------------------------------- */

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
    for (unsigned i = 0; i < pool->slots; i++) {
        pthread_cond_destroy(&pool->workers[i].wake);
        free(pool->workers[i].name);
        ctp_ring_free(&pool->workers[i].own);
    }
    free(pool->name_prefix);
    free(pool->pinned_cpus);
    if (pool->context_release != NULL) pool->context_release(pool->context);
    ctp_queue_free(&pool->queue);
    free(pool->idle_stack);
    pthread_cond_destroy(&pool->changed);
    pthread_cond_destroy(&pool->space);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

void ctp_pool_dispose(ctp_pool *pool) {
    registry_remove(pool);
    pool_free(pool);
}

/* ---- create ----------------------------------------------------------------------------- */

void ctp_options_init(ctp_options *options) {
    if (options != NULL) memset(options, 0, sizeof *options);
}

/* The number of workers `options` asks for: 0 means ctp_default_thread_count(). */
static unsigned requested_threads(const ctp_options *options) {
    return options->threads != 0 ? options->threads : ctp_default_thread_count();
}

/* Initializes the pool's lock and condition variables, the workers' included, so that pool_free
   may destroy all of them. */
static void init_sync(ctp_pool *pool) {
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
    /* On the monotonic clock: a worker beyond the pool's size parks with a timeout (its keep-alive). */
    pthread_condattr_t wake_attributes;
    pthread_condattr_init(&wake_attributes);
    pthread_condattr_setclock(&wake_attributes, CLOCK_MONOTONIC);
    for (unsigned i = 0; i < pool->slots; i++) pthread_cond_init(&pool->workers[i].wake, &wake_attributes);
    pthread_condattr_destroy(&wake_attributes);
}

/* Gives each worker its pool, index and name ("<prefix>-<i>", or "Thread-<n>" from `first_number`).
   CTP_ENOMEM or 0. */
static int init_workers(ctp_pool *pool, const char *prefix, unsigned long long first_number) {
    for (unsigned i = 0; i < pool->slots; i++) {
        ctp_worker *worker = &pool->workers[i];
        worker->pool = pool;
        worker->index = i;
        worker->batch_limit = 1;
        if (i >= pool->threads) continue; /* named when started: see ctp_worker_grow */
        worker->name = ctp_name_make(prefix, first_number + i);
        if (worker->name == NULL) return CTP_ENOMEM;
        worker->slot = CTP_SLOT_LIVE;
    }
    pool->high_water = pool->threads;
    return 0;
}

/* Step 1 of create: a pool of `threads` workers not yet started, with its locks, queue, idle stack
   and worker names. CTP_ENOMEM: nothing is left allocated. */
static int allocate_pool(const ctp_options *options, unsigned threads, ctp_pool **out) {
    unsigned max_threads = options->max_threads > threads ? options->max_threads : threads;
    unsigned slots = max_threads + CTP_COMPENSATION_MAX;
    ctp_pool *pool = CTP_ALIGNED_ZALLOC(CTP_CACHE_LINE, sizeof *pool + slots * sizeof(ctp_worker));
    if (pool == NULL) return CTP_ENOMEM;
    pool->threads = threads;
    pool->max_threads = max_threads;
    pool->elastic = max_threads > threads;
    atomic_init(&pool->idle_count, pool->elastic ? CTP_IDLE_ELASTIC : 0u);
    pool->slots = slots;
    pool->keep_alive_ns = options->keep_alive_ns != 0 ? options->keep_alive_ns : 10ull * 1000000000ull;
    pool->stack_size = options->stack_size;
    pool->initializer = options->initializer;
    pool->finalizer = options->finalizer;
    pool->context = options->context;
    pool->context_release = options->context_release;
    pool->live = threads;
    pool->skip_join_at_exit = options->skip_join_at_exit != 0;
    if (options->observer != NULL) {
        pool->observer = *options->observer;
        pool->observed = pool->observer.task_queued != NULL || pool->observer.task_started != NULL
                         || pool->observer.task_finished != NULL;
    }

    /* Everything below is undone by pool_free, which tolerates zeroed fields. */
    init_sync(pool);
    pool->idle_stack = CTP_MALLOC(slots * sizeof(unsigned));
    int rc = pool->idle_stack == NULL ? CTP_ENOMEM : ctp_queue_init(&pool->queue, options->queue_capacity);
    pool->set_niceness = options->set_niceness != 0;
    pool->niceness = options->niceness;
    if (rc == 0 && options->pinned_cpu_count > 0) {
        pool->pinned_cpus = CTP_MALLOC(options->pinned_cpu_count * sizeof(int));
        if (pool->pinned_cpus == NULL) {
            rc = CTP_ENOMEM;
        } else {
            memcpy(pool->pinned_cpus, options->pinned_cpus, options->pinned_cpu_count * sizeof(int));
            pool->pinned_cpu_count = options->pinned_cpu_count;
        }
    }
    if (rc == 0 && options->name_prefix != NULL) {
        size_t length = strlen(options->name_prefix);
        pool->name_prefix = CTP_MALLOC(length + 1);
        if (pool->name_prefix == NULL) rc = CTP_ENOMEM; else memcpy(pool->name_prefix, options->name_prefix, length + 1);
    }
    /* The "Thread-N" numbers are taken whether or not the pool starts, as Python's are. */
    unsigned long long first_number = options->name_prefix == NULL ? ctp_names_reserve(threads) : 1;
    if (rc == 0) rc = init_workers(pool, options->name_prefix, first_number);
    if (rc != 0) {
        pool->context_release = NULL; /* on failure the caller keeps its context */
        pool_free(pool);
        return rc;
    }
    *out = pool;
    return 0;
}

/* Step 2 of create: starts the workers' threads, with `stack_size` (0: the system default). Sets
   *created to how many started: fewer than the pool's workers when a thread could not be created.
   CTP_EINVAL when the stack size is refused (then none started), else 0. */
static int start_workers(ctp_pool *pool, size_t stack_size, unsigned *created) {
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    if (stack_size != 0 && pthread_attr_setstacksize(&attributes, stack_size) != 0) {
        pthread_attr_destroy(&attributes);
        return CTP_EINVAL;
    }
    unsigned n = 0;
    for (; n < pool->threads; n++) {
        /* Set before the thread starts (which orders it before the worker's reads), taken back if
           the thread could not be made. */
        pool->workers[n].has_thread = true;
        if (CTP_PTHREAD_CREATE(&pool->workers[n].thread, &attributes, ctp_worker_main, &pool->workers[n]) != 0) {
            pool->workers[n].has_thread = false;
            break;
        }
    }
    pthread_attr_destroy(&attributes);
    *created = n;
    return 0;
}

/* Step 3 of create, the start barrier: waits until each of the `created` workers has run its
   initializer. CTP_EAGAIN when a thread could not be created, CTP_EINIT when an initializer failed,
   else 0. */
static int wait_at_start_barrier(ctp_pool *pool, unsigned created) {
    pthread_mutex_lock(&pool->lock);
    pool->live = created;
    atomic_store_explicit(&pool->live_hint, created, memory_order_relaxed);
    pool->peak = created;
    pool->threads_started = created;
    while (pool->started < created) pthread_cond_wait(&pool->changed, &pool->lock);
    int rc = created < pool->threads ? CTP_EAGAIN : pool->init_failures > 0 ? CTP_EINIT : 0;
    pool->running_up = rc == 0;
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

/* On a failed start: stops and joins the first `created` workers (their finalizers run), then frees
   the pool, leaving the caller its context. */
static void abandon_start(ctp_pool *pool, unsigned created) {
    pthread_mutex_lock(&pool->lock);
    pool->state = CTP_TERMINATED;
    ctp_queue_close(&pool->queue);
    wake_all(pool);
    pthread_mutex_unlock(&pool->lock);
    for (unsigned i = 0; i < created; i++) pthread_join(pool->workers[i].thread, NULL);
    pool->context_release = NULL;
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
    unsigned threads = requested_threads(options);
    if (threads > CTP_MAX_THREADS || options->max_threads > CTP_MAX_THREADS) return CTP_EINVAL;
    if (options->set_niceness && (options->niceness < -20 || options->niceness > 19)) return CTP_EINVAL;
    if (options->pinned_cpu_count > 0 && options->pinned_cpus == NULL) return CTP_EINVAL;
    for (size_t i = 0; i < options->pinned_cpu_count; i++) {
        if (options->pinned_cpus[i] < 0 || options->pinned_cpus[i] >= CTP_MAX_CPU_INDEX) return CTP_EINVAL;
    }
    if (options->stack_size != 0 && options->stack_size < (size_t)PTHREAD_STACK_MIN) return CTP_EINVAL;

    ctp_pool *pool = NULL;
    int rc = allocate_pool(options, threads, &pool);
    if (rc != 0) return rc;
    unsigned created = 0;
    rc = start_workers(pool, options->stack_size, &created);
    if (rc == 0) rc = wait_at_start_barrier(pool, created);
    if (rc != 0) {
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
   and their submits should not carry its loop. */
CTP_NOINLINE
static int wait_for_room(ctp_pool *pool, bool may_block) {
    while (pool->state == CTP_RUNNING && ctp_queue_full(&pool->queue)) {
        if (!may_block) return CTP_EAGAIN;
        ctp_task task;
        if (ctp_self != NULL && ctp_self->pool == pool && ctp_queue_take(&pool->queue, &task, 1) == 1) {
            /* A worker of this pool waiting for room could wait for itself (every worker may be
               here): it runs the oldest queued task instead, which makes the room. */
            ctp_worker_run_task(pool, ctp_self, task);
            continue;
        }
        pool->space_waiters++;
        pthread_cond_wait(&pool->space, &pool->lock);
        pool->space_waiters--;
    }
    return 0;
}

/* A submit that takes the lock: the inbox is full or off (the pool stopped, or its queue is bounded),
   or the task goes to a lane other than the default one. Out of line, as wake_for_inbox is, so that
   the lock-free path inlined into ctp_pool_submit stays short. */
CTP_NOINLINE
static int submit_locked(ctp_pool *pool, ctp_task task, bool may_block, enum ctp_lane lane) {
    pthread_mutex_lock(&pool->lock);
    int rc = pool->queue.limit != 0 ? wait_for_room(pool, may_block) : 0;
    if (rc == 0) rc = ctp_queue_push_lane(&pool->queue, task, lane);
    ctp_worker *to_wake = rc == 0 ? worker_for_new_task(pool) : NULL;
    if (rc == 0 && to_wake == NULL && pool->elastic) ctp_worker_grow(pool, CTP_GROW_FOR_QUEUED_WORK);
    pthread_mutex_unlock(&pool->lock);
    /* Safe after unlocking: a worker and its condition variable live until the pool is freed,
       which cannot happen while a call on the pool is still in progress. */
    if (to_wake != NULL) pthread_cond_signal(&to_wake->wake);
    return rc;
}

/* Wakes a parked worker for a task left in the inbox, unless a worker spins (it will see the task);
   in an elastic pool with nobody to wake, starts a worker if it may grow. */
CTP_NOINLINE
static void wake_for_inbox(ctp_pool *pool) {
    pthread_mutex_lock(&pool->lock);
    ctp_worker *to_wake = spinning(pool) > 0 ? NULL : unpark_one(pool);
    if (to_wake == NULL && pool->elastic && spinning(pool) == 0) ctp_worker_grow(pool, CTP_GROW_FOR_QUEUED_WORK);
    pthread_mutex_unlock(&pool->lock);
    if (to_wake != NULL) pthread_cond_signal(&to_wake->wake);
}

/* After a push through the inbox that found `idle` (idle_count's word) non-zero: wakes a parked worker
   unless one spins, or in an elastic pool with none parked starts one if it may grow (see
   ctp_worker_grow). Out of line: a fixed pool whose workers are busy never comes here. */
CTP_NOINLINE
static void wake_or_grow_for_inbox(ctp_pool *pool, unsigned idle) {
    if (spinning(pool) != 0) return;
    if ((idle & ~CTP_IDLE_ELASTIC) == 0
        && atomic_load_explicit(&pool->live_hint, memory_order_relaxed) >= pool->max_threads) return;
    wake_for_inbox(pool);
}

/* ---- observed tasks ----------------------------------------------------------------------

   With an observer that watches tasks (pool->observed), each submit wraps its task in a record that
   holds the submission time, and queues run_observed with the record instead: run_observed reports
   the task started and finished around the task's own call, or finished when terminate dropped it.
   Tasks queued as several entries (submit_many, broadcast) share one record, freed by its last entry.
   Without an observer none of this runs: a submit tests `observed`, on the line of `idle_count`,
   which it reads anyway. */

typedef struct observed_task {
    ctp_task_fn fn;
    void *arg;
    ctp_pool *pool;
    unsigned long long queued_ns;
    atomic_size_t entries;    /* entries not yet run or dropped */
} observed_task;

static observed_task *observed_task_make(ctp_pool *pool, ctp_task_fn fn, void *arg, size_t entries) {
    observed_task *record = CTP_MALLOC(sizeof *record);
    if (record == NULL) return NULL;
    record->fn = fn;
    record->arg = arg;
    record->pool = pool;
    record->queued_ns = ctp_monotonic_ns();
    atomic_init(&record->entries, entries);
    return record;
}

static void observe_queued(ctp_pool *pool, size_t count) {
    if (pool->observer.task_queued != NULL) pool->observer.task_queued(pool->observer.context, count);
}

/* The task function of an observed task. Its own task's failure (ctp_task_failed) and declined
   outcome are kept apart from those of the task that runs it, if any (a worker helping while it
   waits runs tasks inside another). */
static void run_observed(void *arg, int status) {
    observed_task *record = arg;
    const ctp_observer *observer = &record->pool->observer;
    void *context = observer->context;
    unsigned long long start = ctp_monotonic_ns();
    unsigned long long wait = start - record->queued_ns;
    unsigned long long run = 0;
    int outcome;
    bool outer_failed = ctp_failed_flag;
    int outer_declined_outcome = ctp_declined_outcome;
    ctp_failed_flag = false;
    ctp_declined_outcome = -1;
    if (status == 0) {
        if (observer->task_started != NULL) observer->task_started(context, wait);
        record->fn(record->arg, 0);
        run = ctp_monotonic_ns() - start;
        /* The declined flag is left for the caller, which counts the task (see run_marked). */
        outcome = !ctp_declined_flag ? (ctp_failed_flag ? CTP_TASK_FAILED : CTP_TASK_COMPLETED)
                  : ctp_declined_outcome >= 0 ? ctp_declined_outcome : CTP_TASK_DECLINED;
    } else {
        /* Never started, whether or not its owner had cancelled it already (declined). */
        record->fn(record->arg, status);
        outcome = CTP_TASK_CANCELLED;
    }
    ctp_failed_flag = outer_failed;
    ctp_declined_outcome = outer_declined_outcome;
    if (observer->task_finished != NULL) observer->task_finished(context, outcome, wait, run);
    if (atomic_fetch_sub_explicit(&record->entries, 1, memory_order_acq_rel) == 1) free(record);
}

/* The lock-free path of a submit, and submit_locked when the inbox is full or off. */
static CTP_ALWAYS_INLINE int submit_task(ctp_pool *pool, ctp_task task, bool may_block) {
    if (!ctp_queue_try_push(&pool->queue, task)) return submit_locked(pool, task, may_block, CTP_LANE_DEFAULT);
    /* Sequentially consistent, after the push: see ctp_worker_park_waiting_for_work (worker.c). */
    unsigned idle = atomic_load_explicit(&pool->idle_count, memory_order_seq_cst);
    if (idle != 0) wake_or_grow_for_inbox(pool, idle);
    return 0;
}

/* submit and submit_priority for an observed pool. Out of line: no other pool comes here. */
CTP_NOINLINE
static int submit_observed(ctp_pool *pool, ctp_task_fn fn, void *arg, bool may_block, enum ctp_lane lane) {
    observed_task *record = observed_task_make(pool, fn, arg, 1);
    if (record == NULL) return CTP_ENOMEM;
    ctp_task task = { run_observed, record };
    int rc = lane == CTP_LANE_DEFAULT ? submit_task(pool, task, may_block) : submit_locked(pool, task, true, lane);
    if (rc != 0) {
        free(record);
        return rc;
    }
    observe_queued(pool, 1);
    return 0;
}

/* Inlined into ctp_pool_submit and ctp_pool_try_submit: left to itself, the compiler makes it a
   function of its own once the observed branch is in it, which cost every submit 7 instructions
   (callgrind, 1 worker, 200,000 submits: 80.7 -> 87.8 per task). */
static CTP_ALWAYS_INLINE int submit(ctp_pool *pool, ctp_task_fn fn, void *arg, bool may_block) {
    if (pool == NULL || fn == NULL) return CTP_EINVAL;
    if (pool->observed) return submit_observed(pool, fn, arg, may_block, CTP_LANE_DEFAULT);
    return submit_task(pool, (ctp_task){ fn, arg }, may_block);
}

int ctp_pool_submit(ctp_pool *pool, ctp_task_fn fn, void *arg) {
    return submit(pool, fn, arg, true);
}

int ctp_pool_try_submit(ctp_pool *pool, ctp_task_fn fn, void *arg) {
    return submit(pool, fn, arg, false);
}

/* The default lane is ctp_pool_submit's, lock-free path included: only the other lanes take the lock. */
int ctp_pool_submit_priority(ctp_pool *pool, ctp_task_fn fn, void *arg, int priority) {
    if (priority < 0) return CTP_EINVAL;
    enum ctp_lane lane = ctp_lane_of(priority);
    if (lane == CTP_LANE_DEFAULT) return ctp_pool_submit(pool, fn, arg);
    if (pool == NULL || fn == NULL) return CTP_EINVAL;
    if (pool->observed) return submit_observed(pool, fn, arg, true, lane);
    return submit_locked(pool, (ctp_task){ fn, arg }, true, lane);
}

int ctp_pool_submit_many(ctp_pool *pool, ctp_task_fn fn, void *arg, size_t count) {
    if (pool == NULL || fn == NULL) return CTP_EINVAL;
    if (count == 0) return 0;
    observed_task *record = NULL;
    if (pool->observed) {
        record = observed_task_make(pool, fn, arg, count);
        if (record == NULL) return CTP_ENOMEM;
        fn = run_observed;
        arg = record;
    }
    pthread_mutex_lock(&pool->lock);
    int rc = ctp_queue_push_many(&pool->queue, (ctp_task){ fn, arg }, count);
    if (rc == 0) {
        note_event(pool);
        size_t woken = 0;
        for (; woken < count && idle_count(pool) > 0; woken++) wake_one_idle(pool);
        for (; pool->elastic && woken < count && pool->live < pool->max_threads; woken++) {
            ctp_worker_grow(pool, CTP_GROW_FOR_QUEUED_WORK);
        }
    }
    pthread_mutex_unlock(&pool->lock);
    if (record != NULL) {
        if (rc != 0) free(record); else observe_queued(pool, count);
    }
    return rc;
}

int ctp_pool_broadcast(ctp_pool *pool, ctp_task_fn fn, void *arg) {
    if (pool == NULL || fn == NULL) return CTP_EINVAL;
    observed_task *record = NULL;
    if (pool->observed) {
        record = observed_task_make(pool, fn, arg, pool->threads);
        if (record == NULL) return CTP_ENOMEM;
        fn = run_observed;
        arg = record;
    }
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
    if (record != NULL) {
        if (rc != 0) free(record); else observe_queued(pool, pool->threads);
    }
    return rc;
}

int ctp_pool_submit_to_worker(ctp_pool *pool, unsigned worker, ctp_task_fn fn, void *arg) {
    if (pool == NULL || fn == NULL || worker >= pool->threads) return CTP_EINVAL;
    ctp_worker *target = &pool->workers[worker];
    observed_task *record = NULL;
    if (pool->observed) {
        record = observed_task_make(pool, fn, arg, 1);
        if (record == NULL) return CTP_ENOMEM;
        fn = run_observed;
        arg = record;
    }
    pthread_mutex_lock(&pool->lock);
    /* Decided under the lock that the worker holds as it leaves its loop (setting `exited`): a task
       pushed here is one the worker still sees, in its own ring, before it can exit. After terminate
       nothing is taken: terminate has dropped the ring, and a worker that finishes its task exits. */
    int rc = pool->state == CTP_TERMINATED || target->exited ? CTP_ECLOSED
                                                             : ctp_ring_push(&target->own, (ctp_task){ fn, arg });
    if (rc == 0) {
        atomic_store_explicit(&target->has_own, true, memory_order_relaxed);
        wake_worker(pool, target);
        note_event(pool); /* a spinning worker (this one, or another) looks again */
    }
    pthread_mutex_unlock(&pool->lock);
    if (record != NULL) {
        if (rc != 0) free(record); else observe_queued(pool, 1);
    }
    return rc;
}

int ctp_pool_help(ctp_pool *pool) {
    if (pool == NULL || ctp_self == NULL || ctp_self->pool != pool) return CTP_EINVAL;
    if (!ctp_worker_stack_allows_help(ctp_self)) return 0;
    pthread_mutex_lock(&pool->lock);
    bool ran = ctp_worker_help(pool, ctp_self);
    pthread_mutex_unlock(&pool->lock);
    return ran ? 1 : 0;
}

int ctp_pool_block_begin(ctp_pool *pool) {
    if (pool == NULL) return CTP_EINVAL;
    if (ctp_self == NULL || ctp_self->pool != pool) return 0;
    pthread_mutex_lock(&pool->lock);
    pool->blocked++;
    ctp_worker_grow(pool, CTP_GROW_FOR_BLOCKED_WORKER);
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

int ctp_pool_block_end(ctp_pool *pool) {
    if (pool == NULL) return CTP_EINVAL;
    if (ctp_self == NULL || ctp_self->pool != pool) return 0;
    pthread_mutex_lock(&pool->lock);
    pool->blocked--;
    /* A worker that stood in for this one may now be one too many: parked ones look again (and
       retire if they are not needed; see worker.c). */
    for (unsigned i = pool->threads; i < pool->high_water; i++) wake_worker(pool, &pool->workers[i]);
    pthread_mutex_unlock(&pool->lock);
    return 0;
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

/* Takes every task that has not started off the pool, into one list, in the order they would have
   started: each worker's broadcast tasks, the unstarted rest of each worker's batch, then the shared
   queue. Called with the lock held, once the queue is closed.

   The list is made with room for them all at once. Without memory for it, the list is the shared
   queue's own ring (which needs none), and the broadcast and batch tasks stay with their workers, who
   run them before they exit: either way every task gets exactly one call. */
static ctp_ring collect_dropped(ctp_pool *pool) {
    size_t ahead = 0; /* tasks that go ahead of the shared queue's */
    for (unsigned i = 0; i < pool->high_water; i++) {
        ahead += pool->workers[i].own.count + ctp_worker_unstarted(&pool->workers[i]);
    }
    ctp_ring dropped = { 0 };
    if (ahead > 0 && ctp_ring_init(&dropped, ahead + ctp_queue_count(&pool->queue)) == 0) {
        /* Pushes cannot fail: the list has room for every task. */
        ctp_task task;
        for (unsigned i = 0; i < pool->high_water; i++) {
            while (ctp_ring_pop(&pool->workers[i].own, &task, 1) == 1) (void)ctp_ring_push(&dropped, task);
        }
        size_t batched = 0;
        for (unsigned i = 0; i < pool->high_water; i++) {
            ctp_task held[CTP_BATCH_MAX];
            size_t claimed = ctp_worker_claim_unstarted(&pool->workers[i], held, CTP_BATCH_MAX);
            for (size_t k = 0; k < claimed; k++) (void)ctp_ring_push(&dropped, held[k]);
            batched += claimed;
        }
#ifdef CTP_FAULT_INJECTION
        atomic_fetch_add(&ctp_test_batched_cancels, batched);
#else
        (void)batched;
#endif
    }
    /* Without memory to move the inbox's tasks to the list, the workers run them. */
    (void)ctp_queue_take_all(&pool->queue, &dropped);
    return dropped;
}

/* Makes each dropped task's CTP_ECANCELED call, then counts it cancelled (or declined) before it
   stops counting as queued; frees the list. Without the lock. */
static void cancel_dropped(ctp_pool *pool, ctp_ring *dropped) {
    ctp_task task;
    while (ctp_ring_pop(dropped, &task, 1) == 1) {
        task.fn(task.arg, CTP_ECANCELED);
        atomic_fetch_add_explicit(ctp_take_declined() ? &pool->declined : &pool->cancelled, 1, memory_order_relaxed);
        /* Releasing: pairs with the acquiring load in ctp_pool_stats, which then sees the count above. */
        atomic_fetch_sub_explicit(&pool->dropping, 1, memory_order_release);
    }
    ctp_ring_free(dropped);
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
    ctp_ring dropped = collect_dropped(pool);
    /* Still counted as queued until each call returns: see cancel_dropped. */
    atomic_fetch_add_explicit(&pool->dropping, dropped.count, memory_order_relaxed);
    pool->cancelling++;
    wake_all(pool);
    pthread_mutex_unlock(&pool->lock);

    cancel_dropped(pool, &dropped);

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
    /* Every slot with a thread, until none is left: a worker may still start while the pool drains
       (standing in for a blocked one), and extra workers may have retired without being reaped. */
    for (;;) {
        unsigned next = pool->high_water;
        for (unsigned i = 0; i < pool->high_water && next == pool->high_water; i++) {
            if (pool->workers[i].slot != CTP_SLOT_FREE && pool->workers[i].has_thread) next = i;
        }
        if (next == pool->high_water) {
            if (pool->live == 0 && pool->creating == 0) break;
            pthread_cond_wait(&pool->changed, &pool->lock); /* a worker is still starting */
            continue;
        }
        pthread_t thread = pool->workers[next].thread;
        pthread_mutex_unlock(&pool->lock);
        pthread_join(thread, NULL);
        pthread_mutex_lock(&pool->lock);
        pool->workers[next].has_thread = false;
        pool->workers[next].slot = CTP_SLOT_FREE;
    }
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
            for (unsigned i = 0; i < pool->high_water; i++) {
                ctp_worker *worker = &pool->workers[i];
                if (worker->slot != CTP_SLOT_FREE && worker->has_thread) pthread_detach(worker->thread);
                /* Nobody joins them; workers started from now on are detached (see ctp_worker_grow). */
                worker->has_thread = false;
                if (worker->slot == CTP_SLOT_EXITED) worker->slot = CTP_SLOT_FREE;
            }
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
        if (free_now) ctp_pool_dispose(pool);
    }
}

/* ---- queries ---------------------------------------------------------------------------- */

int ctp_pool_thread_count(const ctp_pool *pool) {
    return pool == NULL ? CTP_EINVAL : (int)pool->threads;
}

int ctp_pool_max_thread_count(const ctp_pool *pool) {
    return pool == NULL ? CTP_EINVAL : (int)pool->max_threads;
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
    for (unsigned i = 0; i < pool->high_water; i++) {
        const ctp_worker *worker = &pool->workers[i];
        queued_elsewhere += worker->own.count + ctp_worker_unstarted(worker);
        running += atomic_load_explicit(&worker->busy, memory_order_acquire); /* before `done` */
        completed += atomic_load_explicit(&worker->done, memory_order_relaxed);
        declined += atomic_load_explicit(&worker->declined, memory_order_relaxed);
    }
    *out = (ctp_stats){
        .threads = pool->live,
        .idle = idle_count(pool),
        .queued = ctp_queue_count(&pool->queue) + queued_elsewhere,
        .running = running,
        .completed = completed,
        .cancelled = cancelled,
        .declined = declined,
        .peak_threads = pool->peak,
        .threads_started = pool->threads_started,
        .threads_retired = pool->threads_retired,
        .grow_failures = pool->grow_failures,
    };
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

#ifdef CTP_FAULT_INJECTION
void ctp_test_wake_state(ctp_pool *pool, unsigned *idle, unsigned *spinning_workers) {
    *idle = atomic_load_explicit(&pool->idle_count, memory_order_relaxed) & ~CTP_IDLE_ELASTIC;
    *spinning_workers = atomic_load_explicit(&pool->spinning, memory_order_relaxed);
}

size_t ctp_test_batched(ctp_pool *pool) {
    pthread_mutex_lock(&pool->lock);
    size_t count = 0;
    for (unsigned i = 0; i < pool->high_water; i++) count += ctp_worker_unstarted(&pool->workers[i]);
    pthread_mutex_unlock(&pool->lock);
    return count;
}
#endif

/* ---- the calling worker ------------------------------------------------------------------ */

void ctp_task_declined(void) {
    ctp_declined_flag = true;
}

void ctp_task_failed(void) {
    ctp_failed_flag = true;
}

int ctp_task_take_failed(void) {
    bool failed = ctp_failed_flag;
    ctp_failed_flag = false;
    return failed ? 1 : 0;
}

void ctp_task_declined_with_outcome(int outcome) {
    ctp_declined_flag = true;
    ctp_declined_outcome = outcome;
}

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
    case CTP_EDEADLK: return "would deadlock: called from one of the pool's own workers";
    default: return "unknown error";
    }
}
