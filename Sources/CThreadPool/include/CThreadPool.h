/*
 * CThreadPool: a pthread worker pool with per-worker initializers and finalizers.
 *
 * Usable from C on its own. Every function that can fail returns 0 or a negative
 * CTP_E* code and never aborts on caller error. All functions are thread-safe:
 * any thread may submit, close, terminate or join a pool concurrently.
 */
#ifndef CTHREADPOOL_H
#define CTHREADPOOL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes. All are negative; 0 means success. */
#define CTP_EINVAL     (-1)  /* an argument is invalid (NULL pool, thread count above CTP_MAX_THREADS, ...) */
#define CTP_ENOMEM     (-2)  /* out of memory; the call had no effect */
#define CTP_ECLOSED    (-3)  /* the pool no longer accepts work: close or terminate came first */
#define CTP_ERUNNING   (-4)  /* join before close or terminate */
#define CTP_EINIT      (-5)  /* a worker's initializer failed; the pool was not created */
#define CTP_EAGAIN     (-6)  /* thread creation failed, or the bounded queue is full (ctp_pool_try_submit) */
#define CTP_ECANCELED  (-7)  /* passed as status to a task dropped by terminate */
#define CTP_EDEADLK    (-9)  /* join called from one of the pool's own workers: it would wait for itself */

/* The largest number of workers one pool may have (threads and max_threads). */
#define CTP_MAX_THREADS 1024u
/* How many workers beyond max_threads a pool may start while workers are blocked (ctp_pool_block_begin). */
#define CTP_COMPENSATION_MAX 64u

typedef struct ctp_pool ctp_pool; /* opaque */

/* The number of workers of a pool created with threads 0: the number of CPUs this process may use.
   That is the smaller of the CPUs in its affinity mask (sched_getaffinity: taskset, cpusets,
   docker --cpuset-cpus; elsewhere than Linux the CPUs online) and its cgroup's CPU quota rounded up
   (cgroup v2 cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us, of the process's cgroup and its
   ancestors: docker --cpus, a Kubernetes CPU limit), so that a container limited to 2 CPUs on a
   64-CPU host gets 2. A quota that cannot be read counts as none. The environment variable
   THREADPOOLKIT_THREADS, a decimal number from 1 up, overrides both (anything else in it is
   ignored). At least 1, at most CTP_MAX_THREADS. Read again on every call (a quota may change). */
unsigned ctp_default_thread_count(void);

/* Called exactly once for every accepted task: status 0 to run it, CTP_ECANCELED when
   terminate dropped it (so the owner can free arg). */
typedef void (*ctp_task_fn)(void *arg, int status);
/* Runs once on each worker, on that worker, before its first task. Non-zero: failed. */
typedef int (*ctp_init_fn)(void *context, unsigned worker_index);
/* Runs once on each worker whose initializer succeeded, on that worker, as it exits. */
typedef void (*ctp_fini_fn)(void *context, unsigned worker_index);

/* What an observer's task_finished is told about how a task ended. */
#define CTP_TASK_COMPLETED 0  /* it ran */
#define CTP_TASK_FAILED    1  /* it ran and called ctp_task_failed */
#define CTP_TASK_CANCELLED 2  /* terminate dropped it before it started (declined or not) */
#define CTP_TASK_DECLINED  3  /* a worker took it and it called ctp_task_declined: its owner had cancelled it */

/* What an observer's failure callback is told went wrong. Each is a failure the pool otherwise
   handles silently: it keeps running with the workers it has. */
#define CTP_FAILURE_GROW_THREAD 1  /* a thread could not be created while the pool grew; code: pthread_create's error */
#define CTP_FAILURE_GROW_INIT   2  /* the initializer of a worker the pool grew by failed; code: what it returned */

/* An optional observer (ctp_options.observer): callbacks the pool makes as things happen, each with
   the observer's `context`. Any callback may be NULL. With no observer (the default) the pool pays
   one predictable test of a flag per submit and takes no timestamps.

   Callbacks run on the thread where the event happens, without the pool's lock, concurrently with
   each other: they must be thread-safe, quick, and must not call back into the pool except for the
   queries (ctp_pool_stats, ctp_current_worker_index, ...).

   Tasks: with an observer, each submitted task is wrapped in a small record holding its submission
   time (one allocation per task; a submit returns CTP_ENOMEM when it fails). Every accepted task
   then gets exactly one task_queued (count 1; ctp_pool_submit_many and ctp_pool_broadcast report
   their tasks in one call with their count) and exactly one task_finished; task_started comes before
   task_finished for a task that runs (CTP_TASK_COMPLETED, CTP_TASK_FAILED, CTP_TASK_DECLINED), not
   for one terminate dropped (CTP_TASK_CANCELLED). task_queued is made after the task was queued, on
   the submitting thread, so a worker may report the task started (or finished) before it returns.
   wait_ns is the time from the submit to the start (or to the drop), run_ns the time the task
   function took.

   Workers: worker_started on the worker, once its initializer has succeeded (or when it has none),
   before its first task; worker_exited on the worker as it leaves, after its finalizer, for every
   worker that was reported started. `retired` is 1 for a worker beyond the pool's size (started for
   queued work, or standing in for a blocked worker), which ctp_stats counts in threads_retired. A
   start that fails (ctp_pool_create returns an error) reports workers too.

   failure: a CTP_FAILURE_* kind, the worker index concerned, and an error code. */
typedef struct ctp_observer {
    void (*task_queued)(void *context, size_t count);
    void (*task_started)(void *context, unsigned long long wait_ns);
    void (*task_finished)(void *context, int outcome, unsigned long long wait_ns, unsigned long long run_ns);
    void (*worker_started)(void *context, unsigned worker_index, const char *worker_name);
    void (*worker_exited)(void *context, unsigned worker_index, const char *worker_name, int retired);
    void (*failure)(void *context, int kind, unsigned worker_index, int code);
    void *context;
} ctp_observer;

typedef struct ctp_options {
    unsigned threads;           /* 0: ctp_default_thread_count() */
    const char *name_prefix;    /* NULL: "Thread-N" with a process-wide N; else "<prefix>-<i>", i from 1 */
    ctp_init_fn initializer;    /* NULL: none */
    ctp_fini_fn finalizer;      /* NULL: none */
    void *context;              /* passed to initializer and finalizer */
    size_t stack_size;          /* 0: the system default */
    size_t queue_capacity;      /* 0: the queue grows as needed; else submit blocks while it is full */
    void (*context_release)(void *context); /* NULL: none. Called once, when a pool created with this
                                               context is freed (after every finalizer has run). */
    int skip_join_at_exit;      /* non-zero: this pool is left alone at process exit (see ctp_set_join_at_exit) */
    unsigned max_threads;       /* 0 or `threads`: a fixed size. Larger: when a task is queued, no worker is
                                   idle and fewer than this many run, a worker starts (its initializer
                                   first); one beyond `threads` idle for keep_alive_ns retires (finalizer). */
    unsigned long long keep_alive_ns; /* 0: 10 seconds */
    const int *pinned_cpus;     /* Linux, with pinned_cpu_count > 0: worker i runs on CPU pinned_cpus[i % count]
                                   (copied; each in 0..<CPU_SETSIZE, else CTP_EINVAL). Best effort: a CPU
                                   the process may not use leaves that worker unpinned. */
    size_t pinned_cpu_count;
    int set_niceness;           /* non-zero: each worker sets its own nice value to `niceness` */
    int niceness;               /* -20...19, else CTP_EINVAL. Best effort: lowering it needs privileges */
    const ctp_observer *observer; /* NULL: none. Copied by ctp_pool_create (its context is not). */
    /* More fields may be added: always start from ctp_options_init. */
} ctp_options;

/* Fills options with the defaults (every field 0 or NULL). */
void ctp_options_init(ctp_options *options);

/* Starts every worker and returns only after every initializer has returned.
   If an initializer fails (CTP_EINIT) or a thread cannot be created (CTP_EAGAIN), the
   workers already started are stopped and joined (their finalizers run), nothing leaks,
   and *out is left NULL. */
int ctp_pool_create(const ctp_options *options, ctp_pool **out);

/* Queues fn(arg, 0) to run on a worker. With a queue_capacity, blocks while the queue is
   full (until there is room, or the pool is closed: CTP_ECLOSED); called from one of the pool's own
   workers, it runs queued tasks itself until there is room, instead of waiting for itself. CTP_ENOMEM if the queue
   could not grow; the task was not accepted. Without a queue_capacity it usually takes no lock: it
   claims a slot of a fixed-size inbox with one compare-and-swap (the lock is taken when the inbox is
   full, and to wake a parked worker). */
int ctp_pool_submit(ctp_pool *pool, ctp_task_fn fn, void *arg);
/* As ctp_pool_submit, but returns CTP_EAGAIN instead of blocking on a full queue. */
int ctp_pool_try_submit(ctp_pool *pool, ctp_task_fn fn, void *arg);

/* Task priorities, on the scale of Swift's TaskPriority raw values (Darwin's QoS classes): larger is
   more urgent. The queue has four lanes, and a priority picks one:

     lane         priorities          Swift
     high         25 and above        .high, .userInitiated (25), .userInteractive (33 on Darwin)
     default      21 to 24, and 0     .medium (21); 0 is "unspecified"; ctp_pool_submit's lane
     utility      17 to 20            .utility, .low (17)
     background   1 to 16             .background (9)

   Among queued tasks, those of a higher lane start first, and within a lane in submission order; a
   running task is never preempted. Starvation is bounded (aging by passes): a lane with tasks
   waiting counts the tasks of higher lanes that start ahead of it; at CTP_PRIORITY_PASS_LIMIT its
   turn has come, and its oldest task starts before those of every lane whose turn has not (when the
   turns of several lanes have come, the higher goes first); its count then starts again. So the
   oldest waiting task of a lane starts after at most 16 tasks of higher lanes (default), 17
   (utility) or 18 (background), and a lane with tasks waiting starts one at least once in every 20
   starts, whatever keeps coming. Tasks a worker has already taken (a worker takes tiny tasks a few
   at a time, about 4 us of work) are not reordered. */
#define CTP_PRIORITY_UNSPECIFIED 0
#define CTP_PRIORITY_BACKGROUND  9
#define CTP_PRIORITY_UTILITY     17
#define CTP_PRIORITY_DEFAULT     21
#define CTP_PRIORITY_HIGH        25
#define CTP_PRIORITY_PASS_LIMIT  16

/* As ctp_pool_submit, with a priority on the scale above (CTP_EINVAL below 0). The default lane's
   tasks take ctp_pool_submit's lock-free path; the other lanes' are queued under the pool's lock. With
   a queue_capacity, the capacity counts the tasks of every lane. */
int ctp_pool_submit_priority(ctp_pool *pool, ctp_task_fn fn, void *arg, int priority);

/* Queues `count` calls fn(arg, 0) (in the default lane) under one lock acquisition: all of them or, on
   error, none.
   With a queue_capacity, CTP_EAGAIN when they do not all fit (nothing is queued). */
int ctp_pool_submit_many(ctp_pool *pool, ctp_task_fn fn, void *arg, size_t count);
/* Queues fn(arg, 0) once on every worker, ahead of the shared queue: each worker runs it after its
   current task. Each call is made exactly once, with CTP_ECANCELED if terminate dropped it. */
int ctp_pool_broadcast(ctp_pool *pool, ctp_task_fn fn, void *arg);
/* Queues fn(arg, 0) to run on worker `worker` (0 .. threads-1) only, in its own first-in, first-out
   queue (the one ctp_pool_broadcast uses): the worker runs it after its current task and before it
   takes more from the shared queue, waking up for it if it is parked. Tasks given to one worker run
   in the order they were submitted. (Like a broadcast task, it may also run inside a task of that
   worker that waits in ctp_pool_help.) After ctp_pool_close it still accepts tasks until that worker
   exits (a closed worker runs its own queue to the end before it exits); once the worker has exited,
   or after ctp_pool_terminate (which drops the worker's queued tasks with CTP_ECANCELED calls, as it
   drops the others), it returns CTP_ECLOSED and the task was not accepted. CTP_EINVAL for a worker
   index out of range, CTP_ENOMEM if the worker's queue could not grow. Takes the pool's lock. */
int ctp_pool_submit_to_worker(ctp_pool *pool, unsigned worker, ctp_task_fn fn, void *arg);
/* From one of the pool's own workers: runs one queued task on the calling thread (so that a worker
   waiting for a result can help instead of blocking). Returns 1 if a task ran, 0 if none was queued,
   CTP_EINVAL off the pool's workers. */
int ctp_pool_help(ctp_pool *pool);
/* (It runs nothing and returns 0 once less than a quarter of the calling worker's stack, or 64 KiB if
   that is more, is left: the task it would run, and the waits inside that, could overflow it. The
   worker then blocks instead: see ctp_pool_block_begin.) */

/* From one of the pool's own workers, around a wait for something that other tasks of the pool may
   have to do (a result, a semaphore a task posts): while the worker is blocked, the pool keeps as many
   workers free to run tasks as it has threads, starting workers beyond its maximum when none is idle
   (up to CTP_COMPENSATION_MAX of them; each runs the initializer first), so that waiting never
   deadlocks even when every worker waits. Those workers retire once they find no work and are not
   needed. Called off the pool's workers, or on a terminated pool: nothing happens. Always pair a
   begin with an end. 0, or CTP_EINVAL for a NULL pool. */
int ctp_pool_block_begin(ctp_pool *pool);
int ctp_pool_block_end(ctp_pool *pool);

/* No new tasks (CTP_ECLOSED); queued tasks (of every lane) still run. Returns CTP_ECLOSED if already
   closed. */
int ctp_pool_close(ctp_pool *pool);
/* No new tasks; every queued task's fn is called once with CTP_ECANCELED (on the calling
   thread, before this returns); running tasks finish. CTP_ECLOSED if already terminated. */
int ctp_pool_terminate(ctp_pool *pool);
/* Waits until every worker has run its finalizer and exited. CTP_ERUNNING before close or
   terminate; CTP_EDEADLK from one of the pool's own workers. A second join returns at once. */
int ctp_pool_join(ctp_pool *pool);
/* Frees the pool. NULL is fine. On a pool not yet joined it closes and joins it first (queued
   tasks still run); called from one of the pool's own workers it closes the pool and the
   last worker to exit frees it. */
void ctp_pool_destroy(ctp_pool *pool);

/* The pool's number of workers (those it always keeps), or CTP_EINVAL for NULL. */
int ctp_pool_thread_count(const ctp_pool *pool);
/* The most workers it starts for queued work (max_threads; == the thread count for a fixed size). */
int ctp_pool_max_thread_count(const ctp_pool *pool);

/* A snapshot of a pool's counters, taken under its lock. */
typedef struct ctp_stats {
    unsigned threads;        /* workers running now (beyond `threads` of the options while it grew) */
    unsigned idle;           /* workers waiting for a task */
    size_t queued;           /* tasks accepted and not yet started */
    size_t running;          /* tasks running now */
    unsigned long long completed; /* tasks that have run (status 0), except declined ones */
    unsigned long long cancelled; /* tasks dropped by terminate (status CTP_ECANCELED), except declined ones */
    unsigned long long declined;  /* tasks that called ctp_task_declined: run or dropped */
    unsigned peak_threads;        /* the most workers running at once */
    unsigned long long threads_started; /* every thread the pool started, the first ones included */
    unsigned long long threads_retired; /* workers beyond the pool's size that exited while it ran */
    unsigned long long grow_failures;   /* workers it tried to add that could not start, or whose
                                           initializer failed (the pool kept running at its size) */
} ctp_stats;
/* Every accepted task is counted in queued, running, completed, cancelled or declined: for an instant
   in two as it moves on, never in none; after join the counts are exact. (A task terminate has taken
   off the queue counts as queued until its CTP_ECANCELED call returns.) */
int ctp_pool_stats(ctp_pool *pool, ctp_stats *out);

/* Called by a task function (with status 0 or CTP_ECANCELED) that did no work because its owner had
   cancelled it before it started: the pool counts it as declined, not as completed or cancelled, so
   that an owner who counts its own cancellations does not see the task counted twice. */
void ctp_task_declined(void);

/* Called by a task function that ran and failed (by its own measure): the pool's observer is told
   CTP_TASK_FAILED instead of CTP_TASK_COMPLETED. The pool's counters do not change (a failed task is
   completed in ctp_stats). Without an observer it does nothing. */
void ctp_task_failed(void);

/* The calling worker's 0-based index, or -1 off every pool's threads. */
int ctp_current_worker_index(void);
/* The calling worker's full name ("Thread-3", "<prefix>-2"), or NULL off every pool's threads.
   Valid until that worker exits. */
const char *ctp_current_worker_name(void);
/* The pool the calling worker belongs to, or NULL off every pool's threads. */
ctp_pool *ctp_current_pool(void);
/* The context the calling worker's pool was created with, or NULL off every pool's threads. */
void *ctp_current_context(void);

/* At normal process exit (a return from main, or exit()), every pool not yet joined is closed and
   joined, oldest first, so that queued tasks run and no worker is cut off in the middle of a task: a
   pool in a global variable, which nothing destroys, loses no work (as Python joins its executors'
   workers at interpreter exit). Skipped: a pool whose worker called exit() (it would wait for itself),
   one destroyed from its own worker (its workers finish on their own, unwaited), and one created with
   skip_join_at_exit. ctp_set_join_at_exit(0) turns this off for every pool (a task that never
   returns would otherwise keep the process from exiting); 1 turns it back on (the default). */
void ctp_set_join_at_exit(int enabled);
/* 1 while pools are joined at exit (the default), else 0. */
int ctp_joins_at_exit(void);

/* A static, human-readable description of a return code. */
const char *ctp_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif /* CTHREADPOOL_H */
