/* Regression tests for batching, submit_many, broadcast and help (CThreadPool.h only).
 *
 * A worker takes up to 32 queued tasks per lock acquisition once it has learned that tasks are fast
 * (its batch limit starts at 1 and adapts to how long the previous batch took per task), so most
 * tests here first warm the workers up with a few thousand tiny tasks. Covered:
 *   - terminate cancels the tasks of workers' batches that have not started (exactly once, before
 *     it returns), and none of them runs afterwards;
 *   - a task waiting for a task submitted after it does not deadlock because both sit in one batch;
 *   - a task destroying its own pool while another thread's terminate is still making its
 *     CTP_ECANCELED calls: the pool is freed only after terminate is done with it;
 *   - ctp_pool_submit_many, ctp_pool_broadcast, ctp_pool_help.
 *
 * Build (with every .c file of Sources/CThreadPool):
 *   gcc -std=c11 -Wall -Wextra -Werror -pthread -ISources/CThreadPool/include \
 *     Tests/CThreadPoolTests/test_batches.c $(find Sources/CThreadPool -name '*.c') -o /tmp/test_batches
 *
 * Prints one line per test; exits 1 on the first failed check. Waits are bounded and fail when the
 * deadline passes; nothing sleeps in place of synchronisation.
 */
#define _GNU_SOURCE
#include "CThreadPool.h"
#include "fault_injection.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "test_support.h"

/* How long a task waiting for another task (that must run meanwhile) waits before giving up. */
#define DEPENDENT_WAIT_SECONDS 3.0

/* A failed expectation inside a task or callback: reported, counted, and checked by the test. */
static atomic_int g_callback_errors;

#define EXPECT(cond)                                                                              \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "%s:%d: expectation failed in a callback: %s\n", __FILE__, __LINE__, #cond); \
            atomic_fetch_add(&g_callback_errors, 1);                                              \
        }                                                                                         \
    } while (0)

#define CHECK_NO_CALLBACK_ERRORS() CHECK_EQ(atomic_load(&g_callback_errors), 0)

/* When the running test started: each test's line ends with its run time. */
static double g_test_start;

static double test_seconds(void) { return now_seconds() - g_test_start; }

static ctp_stats stats_of(ctp_pool *pool) {
    ctp_stats stats;
    CHECK_EQ(ctp_pool_stats(pool, &stats), 0);
    return stats;
}

/* ---- process helpers -------------------------------------------------------------------- */

static int g_baseline;

/* The thread count with no pool running, once it has stayed the same for 50 ms. */
static void set_baseline(void) {
    double until = now_seconds() + 0.05, give_up = now_seconds() + WAIT_SECONDS;
    int count = process_threads();
    while (now_seconds() < until) {
        CHECK(now_seconds() < give_up);
        poll_pause();
        int again = process_threads();
        if (again != count) {
            count = again;
            until = now_seconds() + 0.05;
        }
    }
    g_baseline = count;
}

static int test_baseline(void) {
    CHECK_THREADS_BACK_TO(g_baseline);
    return g_baseline;
}

/* The scheduler state letter of one of this process's threads ('S' sleeping, 'R' running), or
   '?' once the thread has exited. */
static char thread_state(pid_t tid) {
    char path[64], buffer[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    FILE *file = fopen(path, "r");
    if (file == NULL) return '?';
    size_t n = fread(buffer, 1, sizeof buffer - 1, file);
    fclose(file);
    buffer[n] = '\0';
    char *paren = strrchr(buffer, ')');
    return paren != NULL && paren[1] == ' ' ? paren[2] : '?';
}

/* ---- a gate: tasks block on it until the test opens it ---------------------------------- */


/* Occupies `count` idle workers with gate tasks, one at a time: each gate task is the only task
   queued when a worker takes it, so it is not taken as part of a batch (a gate task run as a batch
   would teach its worker that tasks are slow, resetting its batch limit to 1). */
static void occupy_one_by_one(ctp_pool *pool, gate *g, int count) {
    int before = atomic_load(&g->entered);
    for (int i = 1; i <= count; i++) {
        CHECK_EQ(ctp_pool_submit(pool, gate_task, g), 0);
        CHECK_EVENTUALLY(atomic_load(&g->entered) == before + i);
    }
}

/* ---- counted tasks ---------------------------------------------------------------------- */

/* Calls of one kind of task: every call is counted, so a lost or repeated call shows. */
typedef struct counts {
    atomic_llong runs;
    atomic_llong cancels;
    atomic_llong bad_status;
    atomic_llong cancelled_off_thread; /* CTP_ECANCELED calls not on `canceller` */
    pthread_t canceller;
} counts;

static void counts_init(counts *c) {
    atomic_init(&c->runs, 0);
    atomic_init(&c->cancels, 0);
    atomic_init(&c->bad_status, 0);
    atomic_init(&c->cancelled_off_thread, 0);
    c->canceller = pthread_self();
}

static void count_call(counts *c, int status) {
    if (status == 0) {
        atomic_fetch_add(&c->runs, 1);
    } else if (status == CTP_ECANCELED) {
        atomic_fetch_add(&c->cancels, 1);
        if (!pthread_equal(pthread_self(), c->canceller)) atomic_fetch_add(&c->cancelled_off_thread, 1);
    } else {
        atomic_fetch_add(&c->bad_status, 1);
    }
}

static void counted_task(void *arg, int status) { count_call(arg, status); }

/* One slot per task: each must be called exactly once. */
typedef struct slot {
    counts *owner;
    atomic_uchar ran;
    atomic_uchar cancelled;
} slot;

static slot *slots_new(counts *c, size_t n) {
    slot *slots = calloc(n, sizeof *slots);
    CHECK(slots != NULL);
    for (size_t i = 0; i < n; i++) {
        slots[i].owner = c;
        atomic_init(&slots[i].ran, 0);
        atomic_init(&slots[i].cancelled, 0);
    }
    return slots;
}

static void slot_task(void *arg, int status) {
    slot *s = arg;
    if (status == 0) atomic_fetch_add(&s->ran, 1);
    else if (status == CTP_ECANCELED) atomic_fetch_add(&s->cancelled, 1);
    count_call(s->owner, status);
}

/* Every slot in [0, n) was called exactly once in all. */
static void check_slots_once(const slot *slots, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int ran = atomic_load(&slots[i].ran), cancelled = atomic_load(&slots[i].cancelled);
        if (ran + cancelled != 1) {
            fprintf(stderr, "%s:%d: slot %zu: ran %d, cancelled %d (want one call)\n", __FILE__, __LINE__,
                    i, ran, cancelled);
            exit(1);
        }
    }
}

static void tiny_task(void *arg, int status) { (void)arg; (void)status; }

static ctp_pool *make_pool(unsigned threads, size_t queue_capacity) {
    ctp_options options;
    ctp_options_init(&options);
    options.threads = threads;
    options.queue_capacity = queue_capacity;
    ctp_pool *pool = NULL;
    CHECK_EQ(ctp_pool_create(&options, &pool), 0);
    CHECK(pool != NULL);
    return pool;
}

/* ---- warming up the batch limit --------------------------------------------------------- */

#define WARM_UP_TASKS 2000
#define WARM_UP_MAX_THREADS 8

/* Teaches every worker of `pool` (all idle) that tasks are fast, so that each takes batches of up
   to 32: all workers are blocked, then let go one at a time onto WARM_UP_TASKS tiny tasks of its own
   (with the others still blocked, it takes them in batches alone; if all were let go at once, one
   worker could run every task before another was even scheduled, leaving that one at a limit of 1),
   and blocked again. Returns once every worker is idle again. */
static void warm_up(ctp_pool *pool, int threads) {
    CHECK(threads <= WARM_UP_MAX_THREADS);
    gate first[WARM_UP_MAX_THREADS], again;
    gate_init(&again);
    unsigned long long before = stats_of(pool).completed;
    for (int i = 0; i < threads; i++) {
        gate_init(&first[i]);
        occupy_one_by_one(pool, &first[i], 1);
    }
    for (int i = 0; i < threads; i++) {
        for (int k = 0; k < WARM_UP_TASKS; k++) CHECK_EQ(ctp_pool_submit(pool, tiny_task, NULL), 0);
        gate_open(&first[i]); /* the one worker blocked on first[i] runs them all */
        unsigned long long want = before + (unsigned long long)(i + 1) * (WARM_UP_TASKS + 1);
        CHECK_EVENTUALLY(atomic_load(&first[i].left) == 1 && stats_of(pool).completed == want);
        occupy_one_by_one(pool, &again, 1); /* that worker, the only one not blocked */
    }
    gate_open(&again);
    ctp_stats stats;
    CHECK_EVENTUALLY(atomic_load(&again.left) == threads &&
                     (stats = stats_of(pool)).completed == before + (unsigned long long)threads * (WARM_UP_TASKS + 2) &&
                     stats.idle == (unsigned)threads);
    CHECK_EQ(stats.queued, 0);
    CHECK_EQ(stats.running, 0);
    for (int i = 0; i < threads; i++) gate_destroy(&first[i]);
    gate_destroy(&again);
}

/* ================================ 1. terminate and batches =============================== */

/* The workers hold batches whose first task blocks; terminate must cancel the rest of every batch
   (exactly once, on the calling thread, before it returns) along with the shared queue, and nothing
   it cancelled may run afterwards. */
static void test_terminate_cancels_batched_tasks(void) {
    const int iterations = 300;
    int baseline = test_baseline();
    long long total_cancelled = 0, total_held_cancelled = 0;
    int single_worker_full_batches = 0, single_worker_iterations = 0;
    for (int iteration = 0; iteration < iterations; iteration++) {
        const int threads = 1 + iteration % 3;
        /* Tracked tasks behind the blocking ones: with 40 per worker, a single worker's batch (32
           at most) cannot hold them all, so terminate cancels from the shared queue as well. */
        const size_t n = (iteration / 3) % 2 == 0 ? 10 * (size_t)threads : 40 * (size_t)threads;
        ctp_pool *pool = make_pool((unsigned)threads, 0);
        warm_up(pool, threads);
        unsigned long long completed_before = stats_of(pool).completed;

        gate first, second;
        gate_init(&first);
        gate_init(&second);
        counts c;
        counts_init(&c);
        slot *slots = slots_new(&c, n);
        occupy_one_by_one(pool, &first, threads);
        /* Queued behind them: one blocking task per worker, then the tracked ones. Released, each
           worker takes a batch (up to a fair share of the queue) headed by, or containing, blocking
           tasks; an idle worker steals a blocking task from another's batch, so in the end every
           worker blocks in `second` and the tasks behind those in the batches have not started. */
        for (int i = 0; i < threads; i++) CHECK_EQ(ctp_pool_submit(pool, gate_task, &second), 0);
        for (size_t i = 0; i < n; i++) CHECK_EQ(ctp_pool_submit(pool, slot_task, &slots[i]), 0);
        gate_open(&first);
        CHECK_EVENTUALLY(atomic_load(&second.entered) == threads);
        CHECK_EVENTUALLY(atomic_load(&first.left) == threads);

        /* Nothing can start now: every worker is blocked. */
        ctp_stats before = stats_of(pool);
        long long ran_before = atomic_load(&c.runs);
        unsigned long long batched_before = atomic_load(&ctp_test_batched_cancels);

        CHECK_EQ(ctp_pool_terminate(pool), 0);
        /* Unstarted tasks in batches count as queued; the library's test counter says how many of
           those terminate took out of batches rather than the shared queue. */
        long long held_cancelled = (long long)(atomic_load(&ctp_test_batched_cancels) - batched_before);
        if (threads == 1) {
            single_worker_iterations++;
            /* One worker: it took [second, n tracked] as one batch, up to 32, if its limit allowed. */
            if (held_cancelled == (long long)(n + 1 > 32 ? 31 : n)) single_worker_full_batches++;
        }
        /* Every tracked task that had not started was cancelled, once, here, before the return. */
        long long cancelled = atomic_load(&c.cancels);
        long long ran_at_return = atomic_load(&c.runs);
        CHECK_EQ(ran_at_return, ran_before);
        CHECK_EQ(cancelled, (long long)n - ran_before);
        CHECK_EQ(atomic_load(&c.cancelled_off_thread), 0);
        CHECK_EQ(atomic_load(&c.bad_status), 0);
        CHECK_EQ(atomic_load(&second.cancelled), 0);
        check_slots_once(slots, n);
        CHECK_EQ(cancelled, (long long)before.queued); /* batched tasks not started are queued too */
        total_cancelled += cancelled;
        total_held_cancelled += held_cancelled; /* taken into a batch, not started */
        ctp_stats after = stats_of(pool);
        CHECK_EQ(after.queued, 0);
        CHECK_EQ(after.cancelled, cancelled);

        gate_open(&second);
        CHECK_EQ(ctp_pool_join(pool), 0);
        /* No task ran with status 0 after terminate returned; nothing was called twice. */
        CHECK_EQ(atomic_load(&c.runs), ran_at_return);
        CHECK_EQ(atomic_load(&c.cancels), cancelled);
        check_slots_once(slots, n);
        CHECK_EQ(atomic_load(&second.left), threads);
        after = stats_of(pool);
        CHECK_EQ(after.cancelled, cancelled);
        CHECK_EQ(after.completed, completed_before + 2 * (unsigned long long)threads + (unsigned long long)ran_at_return);
        CHECK_EQ(after.running, 0);
        CHECK_EQ(after.queued, 0);
        ctp_pool_destroy(pool);
        free(slots);
        gate_destroy(&first);
        gate_destroy(&second);
    }
    CHECK_THREADS_BACK_TO(baseline);
    CHECK_NO_CALLBACK_ERRORS();
    /* The batches must really have held tasks, or this tested only the shared queue. */
    CHECK(total_held_cancelled > 0);
    printf("ok   batches: terminate cancels every unstarted task once, those taken into workers' batches "
           "included (%lld of %lld cancelled were batched; 1 worker took a full batch in %d/%d), "
           "none runs after; stats.cancelled exact (%d pools, %.2f s)\n",
           total_held_cancelled, total_cancelled, single_worker_full_batches, single_worker_iterations, iterations,
           test_seconds());
}

/* ================================ 2. dependent tasks in one batch ========================= */

/* A waits (bounded) for B, submitted right after it. */
typedef struct dependency {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool b_done;               /* lock */
    atomic_int a_started;
    atomic_int a_result;       /* 0 pending, 1 B ran while A waited, 2 A gave up */
    atomic_int a_worker, b_worker;
    atomic_int b_runs;
    atomic_int b_finished;     /* B is done with the mutex */
    bool help;                 /* A calls ctp_pool_help while it waits */
    atomic_int a_helped;       /* ctp_pool_help calls by A that ran a task */
    ctp_stats a_saw;           /* the stats as A started (help variant) */
    size_t a_batched;          /* unstarted tasks in batches as A started (help variant) */
} dependency;

static void dependency_init(dependency *d, bool help) {
    CHECK(pthread_mutex_init(&d->lock, NULL) == 0);
    CHECK(pthread_cond_init(&d->cond, NULL) == 0);
    d->b_done = false;
    atomic_init(&d->a_started, 0);
    atomic_init(&d->a_result, 0);
    atomic_init(&d->a_worker, -1);
    atomic_init(&d->b_worker, -1);
    atomic_init(&d->b_runs, 0);
    atomic_init(&d->b_finished, 0);
    d->help = help;
    atomic_init(&d->a_helped, 0);
}

static void dependency_destroy(dependency *d) {
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->lock);
}

static void task_a(void *arg, int status) {
    dependency *d = arg;
    EXPECT(status == 0);
    if (status != 0) return;
    atomic_store(&d->a_worker, ctp_current_worker_index());
    if (d->help) {
        CHECK_EQ(ctp_pool_stats(ctp_current_pool(), &d->a_saw), 0);
        d->a_batched = ctp_test_batched(ctp_current_pool());
    }
    atomic_store(&d->a_started, 1);
    double give_up = now_seconds() + DEPENDENT_WAIT_SECONDS;
    bool done = false;
    if (d->help) {
        /* Wait by helping: run queued tasks (B among them) on this thread. */
        for (;;) {
            pthread_mutex_lock(&d->lock);
            done = d->b_done;
            pthread_mutex_unlock(&d->lock);
            if (done || now_seconds() >= give_up) break;
            int rc = ctp_pool_help(ctp_current_pool());
            EXPECT(rc == 0 || rc == 1);
            if (rc == 1) atomic_fetch_add(&d->a_helped, 1);
            else sched_yield();
        }
    } else {
        struct timespec deadline = deadline_in(DEPENDENT_WAIT_SECONDS);
        pthread_mutex_lock(&d->lock);
        while (!d->b_done && pthread_cond_timedwait(&d->cond, &d->lock, &deadline) != ETIMEDOUT) {}
        done = d->b_done;
        pthread_mutex_unlock(&d->lock);
    }
    atomic_store(&d->a_result, done ? 1 : 2);
}

static void task_b(void *arg, int status) {
    dependency *d = arg;
    EXPECT(status == 0);
    atomic_store(&d->b_worker, ctp_current_worker_index());
    atomic_fetch_add(&d->b_runs, 1);
    pthread_mutex_lock(&d->lock);
    d->b_done = true;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    atomic_store(&d->b_finished, 1);
}

/* 2 workers, both warmed up and held on gates x and y; A, B and two tiny tasks are queued. x opens:
   its worker may take [A, B] as one batch (a fair share of 4 queued) and A blocks waiting for B.
   y opens: the other worker runs the tiny tasks and, before it would go idle, must take B from
   A's batch. */
static void test_dependent_tasks_in_one_batch(void) {
    /* How often the worker's learned limit lets it take [A, B] varies (a slow moment at the end of a
       warm-up teaches it a limit of 1, more often under the sanitizers), so trials go on until B was
       in A's batch in `wanted` of them, within a bound on trials and time. */
    const int wanted = 150, max_trials = 1500;
    const double max_seconds = 8.0;
    ctp_pool *pool = make_pool(2, 0);
    int b_in_a_batch = 0, trials = 0;
    unsigned long long expected_completed = 0;
    for (int trial = 0; b_in_a_batch < wanted && trial < max_trials && test_seconds() < max_seconds; trial++) {
        trials++;
        warm_up(pool, 2);
        expected_completed += 2 * (WARM_UP_TASKS + 2);
        dependency d;
        dependency_init(&d, false);
        gate x, y;
        gate_init(&x);
        gate_init(&y);
        occupy_one_by_one(pool, &x, 1);
        occupy_one_by_one(pool, &y, 1);
        CHECK_EQ(ctp_pool_submit(pool, task_a, &d), 0);
        CHECK_EQ(ctp_pool_submit(pool, task_b, &d), 0);
        CHECK_EQ(ctp_pool_submit(pool, tiny_task, NULL), 0);
        CHECK_EQ(ctp_pool_submit(pool, tiny_task, NULL), 0);
        gate_open(&x);
        CHECK_EVENTUALLY(atomic_load(&d.a_started) == 1);
        /* Stable while A waits and y is closed: B, unstarted, is either in A's batch or still in the
           shared queue; either way the API counts 3 queued (B and the tiny tasks) and 2 running. */
        ctp_stats stats = stats_of(pool);
        CHECK_EQ(stats.queued, 3);
        CHECK_EQ(stats.running, 2);
        size_t batched = ctp_test_batched(pool);
        if (batched == 1) b_in_a_batch++;
        else CHECK_EQ(batched, 0);
        CHECK_EQ(atomic_load(&d.b_runs), 0);
        gate_open(&y);
        CHECK_EVENTUALLY(atomic_load(&d.a_result) != 0 && atomic_load(&d.b_finished) == 1);
        if (atomic_load(&d.a_result) != 1) {
            fprintf(stderr, "%s:%d: trial %d: A waited %.0f s for B while a worker was free (B %s in A's batch)\n",
                    __FILE__, __LINE__, trial, DEPENDENT_WAIT_SECONDS, batched == 1 ? "was" : "was not");
            exit(1);
        }
        CHECK_EQ(atomic_load(&d.b_runs), 1);
        CHECK(atomic_load(&d.a_worker) != atomic_load(&d.b_worker));
        CHECK_EQ(atomic_load(&x.left), 1);
        expected_completed += 2 + 2 + 2; /* x, y, A, B, 2 tiny */
        CHECK_EVENTUALLY(atomic_load(&y.left) == 1 && stats_of(pool).completed == expected_completed);
        dependency_destroy(&d);
        gate_destroy(&x);
        gate_destroy(&y);
    }
    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_join(pool), 0);
    CHECK_EQ(stats_of(pool).completed, expected_completed);
    ctp_pool_destroy(pool);
    CHECK_NO_CALLBACK_ERRORS();
    CHECK(b_in_a_batch > 0); /* else batching was never exercised */
    printf("ok   batches: a task waiting for the task submitted after it never deadlocks; the idle worker "
           "takes it from the waiting one's batch (%d trials, B was in A's batch in %d; %.2f s)\n", trials,
           b_in_a_batch, test_seconds());
}

/* ================================ 3. destroy from a task during terminate ================ */

#define DD_MAX_THREADS 3

typedef struct detached_destroy {
    unsigned threads;
    gate release_a;                 /* task A destroys the pool once this opens */
    gate others;                    /* the other workers' tasks */
    atomic_int a_running;
    atomic_int tids[DD_MAX_THREADS];
    atomic_int fini[DD_MAX_THREADS];
    atomic_int released;            /* context_release calls */
    bool wait_for_free_point;       /* B's cancellation waits until the last worker would free */
    atomic_int b_calls;
    atomic_int b_saw_release;       /* the pool was released while terminate was still running */
    counts heap;                    /* the heap tasks queued behind B */
} detached_destroy;

static int dd_initializer(void *context, unsigned index) {
    detached_destroy *dd = context;
    EXPECT(index < dd->threads);
    atomic_store(&dd->tids[index], (int)gettid());
    return 0;
}

static void dd_finalizer(void *context, unsigned index) {
    detached_destroy *dd = context;
    EXPECT(index < dd->threads);
    atomic_fetch_add(&dd->fini[index], 1);
}

static void dd_release(void *context) {
    detached_destroy *dd = context;
    atomic_fetch_add(&dd->released, 1);
}

static void dd_destroy_self(void *arg, int status) { /* task A, on a worker */
    detached_destroy *dd = arg;
    EXPECT(status == 0);
    if (status != 0) return;
    atomic_store(&dd->a_running, 1);
    gate_pass(&dd->release_a);
    ctp_pool_destroy(ctp_current_pool()); /* closes and detaches: the last worker out frees */
    atomic_fetch_add(&dd->release_a.left, 1);
}

static int dd_finalizers(detached_destroy *dd) {
    int n = 0;
    for (unsigned i = 0; i < dd->threads; i++) n += atomic_load(&dd->fini[i]);
    return n;
}

/* All workers have exited but (at most) one, and that one is asleep: it can only be waiting for
   terminate to finish before it frees the pool. */
static bool dd_at_free_point(detached_destroy *dd) {
    if (dd_finalizers(dd) != (int)dd->threads) return false;
    int alive = 0;
    bool asleep = true;
    for (unsigned i = 0; i < dd->threads; i++) {
        char state = thread_state((pid_t)atomic_load(&dd->tids[i]));
        if (state != '?') {
            alive++;
            if (state != 'S') asleep = false;
        }
    }
    return alive == 0 || (alive == 1 && asleep);
}

static void dd_queued(void *arg, int status) { /* task B: cancelled by terminate on the main thread */
    detached_destroy *dd = arg;
    EXPECT(status == CTP_ECANCELED);
    atomic_fetch_add(&dd->b_calls, 1);
    gate_open(&dd->release_a); /* let A destroy the pool ... */
    gate_open(&dd->others);
    if (dd->wait_for_free_point) {
        /* ... and wait until every worker has finished; the last must not free the pool yet. */
        double deadline = now_seconds() + WAIT_SECONDS;
        while (!dd_at_free_point(dd) && atomic_load(&dd->released) == 0) {
            if (now_seconds() > deadline) {
                fprintf(stderr, "%s:%d: the workers did not finish\n", __FILE__, __LINE__);
                exit(1);
            }
            poll_pause();
        }
        /* A moment longer, so a worker that would free the pool has the time to. */
        double until = now_seconds() + 0.002;
        while (now_seconds() < until && atomic_load(&dd->released) == 0) poll_pause();
    }
    atomic_store(&dd->b_saw_release, atomic_load(&dd->released));
}

static void dd_heap_task(void *arg, int status) { /* owns its malloc'd arg: ASan shows a lost or repeated call */
    counts **item = arg;
    count_call(*item, status);
    free(item);
}

static void test_destroy_from_task_during_terminate(void) {
    const int iterations = 150;
    int baseline = test_baseline();
    for (int iteration = 0; iteration < iterations; iteration++) {
        detached_destroy dd;
        memset(&dd, 0, sizeof dd);
        dd.threads = 1 + (unsigned)iteration % DD_MAX_THREADS;
        dd.wait_for_free_point = iteration % 2 == 0; /* else: race B's return with the worker's exit */
        gate_init(&dd.release_a);
        gate_init(&dd.others);
        for (unsigned i = 0; i < DD_MAX_THREADS; i++) {
            atomic_init(&dd.tids[i], 0);
            atomic_init(&dd.fini[i], 0);
        }
        atomic_init(&dd.a_running, 0);
        atomic_init(&dd.released, 0);
        atomic_init(&dd.b_calls, 0);
        atomic_init(&dd.b_saw_release, 0);
        counts_init(&dd.heap);

        ctp_options options;
        ctp_options_init(&options);
        options.threads = dd.threads;
        options.initializer = dd_initializer;
        options.finalizer = dd_finalizer;
        options.context = &dd;
        options.context_release = dd_release;
        ctp_pool *pool = NULL;
        CHECK_EQ(ctp_pool_create(&options, &pool), 0);
        CHECK_EQ(ctp_pool_submit(pool, dd_destroy_self, &dd), 0);
        CHECK_EVENTUALLY(atomic_load(&dd.a_running) == 1);
        occupy_one_by_one(pool, &dd.others, (int)dd.threads - 1);
        /* Every worker is busy: B and the heap tasks stay queued until terminate takes them. */
        const int heap_tasks = 50;
        CHECK_EQ(ctp_pool_submit(pool, dd_queued, &dd), 0);
        for (int i = 0; i < heap_tasks; i++) {
            counts **item = malloc(sizeof *item);
            CHECK(item != NULL);
            *item = &dd.heap;
            CHECK_EQ(ctp_pool_submit(pool, dd_heap_task, item), 0);
        }
        CHECK_EQ(ctp_pool_terminate(pool), 0);
        pool = NULL; /* A destroyed it: the last worker out frees it, once terminate is done with it */
        CHECK_EQ(atomic_load(&dd.b_calls), 1);
        CHECK_EQ(atomic_load(&dd.b_saw_release), 0);
        CHECK_EQ(atomic_load(&dd.heap.cancels), heap_tasks);
        CHECK_EQ(atomic_load(&dd.heap.runs), 0);
        CHECK_EQ(atomic_load(&dd.heap.bad_status), 0);
        CHECK_EQ(atomic_load(&dd.heap.cancelled_off_thread), 0);
        CHECK_EVENTUALLY(atomic_load(&dd.released) >= 1);
        CHECK_THREADS_BACK_TO(baseline); /* every worker gone: no further release can come */
        CHECK_EQ(atomic_load(&dd.released), 1);
        for (unsigned i = 0; i < dd.threads; i++) CHECK_EQ(atomic_load(&dd.fini[i]), 1);
        CHECK_EVENTUALLY(atomic_load(&dd.release_a.left) == 1); /* A is done with its gate */
        CHECK_EQ(atomic_load(&dd.others.left), (int)dd.threads - 1);
        gate_destroy(&dd.release_a);
        gate_destroy(&dd.others);
    }
    CHECK_NO_CALLBACK_ERRORS();
    printf("ok   destroy: from a task while another thread's terminate makes its CTP_ECANCELED calls: the "
           "pool is freed after terminate, context_release once (%d pools, %.2f s)\n", iterations, test_seconds());
}

/* ================================ 4. submit_many ======================================== */

/* A rendezvous of `need` tasks: each blocks until all have arrived (bounded). */
typedef struct rendezvous {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned arrived, need;    /* lock */
    atomic_int left;
    atomic_uint worker_mask;   /* the workers the tasks ran on */
} rendezvous;

static void rendezvous_init(rendezvous *r, unsigned need) {
    CHECK(pthread_mutex_init(&r->lock, NULL) == 0);
    CHECK(pthread_cond_init(&r->cond, NULL) == 0);
    r->arrived = 0;
    r->need = need;
    atomic_init(&r->left, 0);
    atomic_init(&r->worker_mask, 0);
}

static void rendezvous_destroy(rendezvous *r) {
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
}

static void rendezvous_task(void *arg, int status) {
    rendezvous *r = arg;
    EXPECT(status == 0);
    int index = ctp_current_worker_index();
    EXPECT(index >= 0 && index < 32);
    atomic_fetch_or(&r->worker_mask, 1u << (index & 31));
    struct timespec deadline = deadline_in(WAIT_SECONDS);
    pthread_mutex_lock(&r->lock);
    r->arrived++;
    pthread_cond_broadcast(&r->cond);
    while (r->arrived < r->need) {
        if (pthread_cond_timedwait(&r->cond, &r->lock, &deadline) == ETIMEDOUT && r->arrived < r->need) {
            fprintf(stderr, "%s:%d: rendezvous timed out: %u of %u tasks arrived (idle workers not woken?)\n",
                    __FILE__, __LINE__, r->arrived, r->need);
            exit(1);
        }
    }
    pthread_mutex_unlock(&r->lock);
    atomic_fetch_add(&r->left, 1);
}

static void test_submit_many(void) {
    /* 1. Bounded queue: all or nothing. */
    for (int iteration = 0; iteration < 50; iteration++) {
        const size_t capacity = 8;
        gate g;
        gate_init(&g);
        counts c;
        counts_init(&c);
        ctp_pool *pool = make_pool(2, capacity);
        occupy_one_by_one(pool, &g, 2);
        const size_t first = (size_t)iteration % (capacity + 1); /* 0 .. capacity */
        CHECK_EQ(ctp_pool_submit_many(pool, counted_task, &c, first), 0);
        CHECK_EQ(stats_of(pool).queued, first);
        size_t room = capacity - first;
        /* More than the room: CTP_EAGAIN and nothing queued, however far beyond. */
        const size_t too_many[] = { room + 1, room + 2, capacity + 1, 1000, SIZE_MAX / 2 };
        for (size_t k = 0; k < sizeof too_many / sizeof too_many[0]; k++) {
            CHECK_EQ(ctp_pool_submit_many(pool, counted_task, &c, too_many[k]), CTP_EAGAIN);
            CHECK_EQ(stats_of(pool).queued, first);
        }
        CHECK_EQ(ctp_pool_submit_many(pool, counted_task, &c, 0), 0); /* a no-op, even when full */
        CHECK_EQ(stats_of(pool).queued, first);
        CHECK_EQ(ctp_pool_submit_many(pool, counted_task, &c, room), 0); /* exactly the room */
        CHECK_EQ(stats_of(pool).queued, capacity);
        CHECK_EQ(ctp_pool_submit_many(pool, counted_task, &c, 1), CTP_EAGAIN);
        CHECK_EQ(ctp_pool_try_submit(pool, counted_task, &c), CTP_EAGAIN);
        CHECK_EQ(ctp_pool_submit_many(pool, counted_task, &c, 0), 0);
        CHECK_EQ(stats_of(pool).queued, capacity);
        CHECK_EQ(atomic_load(&c.runs), 0);
        gate_open(&g);
        CHECK_EVENTUALLY(stats_of(pool).completed == 2 + capacity);
        /* Room again: */
        CHECK_EQ(ctp_pool_submit_many(pool, counted_task, &c, capacity), 0);
        CHECK_EQ(ctp_pool_close(pool), 0);
        CHECK_EQ(ctp_pool_submit_many(pool, counted_task, &c, 1), CTP_ECLOSED);
        CHECK_EQ(ctp_pool_submit_many(pool, counted_task, &c, 1000), CTP_ECLOSED);
        CHECK_EQ(ctp_pool_join(pool), 0);
        CHECK_EQ(atomic_load(&c.runs), 2 * capacity);
        CHECK_EQ(atomic_load(&c.cancels), 0);
        CHECK_EQ(atomic_load(&c.bad_status), 0);
        ctp_stats stats = stats_of(pool);
        CHECK_EQ(stats.completed, 2 + 2 * capacity);
        CHECK_EQ(stats.queued, 0);
        ctp_pool_destroy(pool);
        gate_destroy(&g);
    }

    /* 2. Unbounded: each of the `count` calls exactly once, run or cancelled; errors. */
    for (int iteration = 0; iteration < 40; iteration++) {
        const unsigned threads = 1 + (unsigned)iteration % 4;
        const bool terminate = iteration % 2 == 1;
        gate g;
        gate_init(&g);
        counts c;
        counts_init(&c);
        ctp_pool *pool = make_pool(threads, 0);
        CHECK_EQ(ctp_pool_submit_many(NULL, counted_task, &c, 1), CTP_EINVAL);
        CHECK_EQ(ctp_pool_submit_many(pool, NULL, &c, 1), CTP_EINVAL);
        if (iteration % 4 < 2) warm_up(pool, (int)threads);
        unsigned long long completed_before = stats_of(pool).completed;
        occupy_one_by_one(pool, &g, (int)threads);
        const size_t counts_list[] = { 1, 2, 31, 32, 33, 64, 65, 1000, 20000 };
        size_t total = 0;
        for (size_t k = 0; k < sizeof counts_list / sizeof counts_list[0]; k++) {
            CHECK_EQ(ctp_pool_submit_many(pool, counted_task, &c, counts_list[k]), 0);
            total += counts_list[k];
            CHECK_EQ(ctp_pool_submit_many(pool, counted_task, &c, 0), 0);
            CHECK_EQ(stats_of(pool).queued, total);
        }
        CHECK_EQ(atomic_load(&c.runs), 0);
        if (terminate) {
            /* Workers still blocked: every call is cancelled, here, before terminate returns. */
            CHECK_EQ(ctp_pool_terminate(pool), 0);
            CHECK_EQ(atomic_load(&c.cancels), total);
            CHECK_EQ(atomic_load(&c.cancelled_off_thread), 0);
            CHECK_EQ(ctp_pool_submit_many(pool, counted_task, &c, 1), CTP_ECLOSED);
        } else {
            gate_open(&g);
            CHECK_EVENTUALLY(atomic_load(&c.runs) == (long long)total);
            CHECK_EQ(ctp_pool_close(pool), 0);
            CHECK_EQ(ctp_pool_submit_many(pool, counted_task, &c, 1), CTP_ECLOSED);
        }
        gate_open(&g);
        CHECK_EQ(ctp_pool_join(pool), 0);
        CHECK_EQ(atomic_load(&c.runs), terminate ? 0 : (long long)total);
        CHECK_EQ(atomic_load(&c.cancels), terminate ? (long long)total : 0);
        CHECK_EQ(atomic_load(&c.bad_status), 0);
        ctp_stats stats = stats_of(pool);
        CHECK_EQ(stats.completed, completed_before + threads + (terminate ? 0 : total));
        CHECK_EQ(stats.cancelled, terminate ? total : 0);
        ctp_pool_destroy(pool);
        gate_destroy(&g);
    }

    /* 3. It wakes as many idle workers as it queued tasks: 4 tasks that each wait for all 4 on a
          4-worker pool (or 3 such tasks with one worker busy) complete. */
    const int rounds = 300;
    ctp_pool *pool = make_pool(4, 0);
    warm_up(pool, 4);
    gate busy;
    gate_init(&busy);
    for (int round = 0; round < rounds; round++) {
        if (round % 100 == 50) warm_up(pool, 4);
        const bool one_busy = round % 3 == 2;
        CHECK_EVENTUALLY(stats_of(pool).idle == 4);
        if (one_busy) occupy_one_by_one(pool, &busy, 1);
        const unsigned need = one_busy ? 3 : 4;
        rendezvous r;
        rendezvous_init(&r, need);
        CHECK_EQ(ctp_pool_submit_many(pool, rendezvous_task, &r, need), 0);
        CHECK_EVENTUALLY(atomic_load(&r.left) == (int)need);
        unsigned mask = atomic_load(&r.worker_mask);
        CHECK_EQ(__builtin_popcount(mask), need); /* one task per worker */
        rendezvous_destroy(&r);
        if (one_busy) {
            gate_open(&busy);
            CHECK_EVENTUALLY(atomic_load(&busy.left) == 1);
            gate_destroy(&busy);
            gate_init(&busy);
        }
    }
    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_join(pool), 0);
    ctp_pool_destroy(pool);
    gate_destroy(&busy);
    CHECK_NO_CALLBACK_ERRORS();
    printf("ok   submit_many: all or nothing on a bounded queue (CTP_EAGAIN, nothing queued); each call once, "
           "run or cancelled; count 0 a no-op; CTP_ECLOSED after close/terminate; wakes enough idle workers "
           "(%d rendezvous rounds; %.2f s)\n", rounds, test_seconds());
}

/* ================================ 5. broadcast ========================================== */

#define BC_MAX_THREADS 8

typedef struct broadcast_probe {
    unsigned threads;
    atomic_int calls[BC_MAX_THREADS];      /* status 0 calls per worker index */
    atomic_int cancels;                     /* CTP_ECANCELED calls */
    atomic_int cancelled_off_thread;
    pthread_t canceller;
    /* For "ahead of queued work": queued tasks each worker had run when its broadcast call ran. */
    atomic_long queued_ran[BC_MAX_THREADS];
    atomic_long queued_ran_before_broadcast[BC_MAX_THREADS];
    atomic_long queued_total;
} broadcast_probe;

static void broadcast_probe_init(broadcast_probe *p, unsigned threads) {
    CHECK(threads <= BC_MAX_THREADS);
    p->threads = threads;
    for (unsigned i = 0; i < BC_MAX_THREADS; i++) {
        atomic_init(&p->calls[i], 0);
        atomic_init(&p->queued_ran[i], 0);
        atomic_init(&p->queued_ran_before_broadcast[i], -1);
    }
    atomic_init(&p->cancels, 0);
    atomic_init(&p->cancelled_off_thread, 0);
    atomic_init(&p->queued_total, 0);
    p->canceller = pthread_self();
}

static void broadcast_task(void *arg, int status) {
    broadcast_probe *p = arg;
    if (status == CTP_ECANCELED) {
        atomic_fetch_add(&p->cancels, 1);
        if (!pthread_equal(pthread_self(), p->canceller)) atomic_fetch_add(&p->cancelled_off_thread, 1);
        return;
    }
    EXPECT(status == 0);
    int index = ctp_current_worker_index();
    EXPECT(index >= 0 && (unsigned)index < p->threads);
    if (index < 0 || (unsigned)index >= p->threads) return;
    atomic_fetch_add(&p->calls[index], 1);
    atomic_store(&p->queued_ran_before_broadcast[index], atomic_load(&p->queued_ran[index]));
}

static void probe_queued_task(void *arg, int status) {
    broadcast_probe *p = arg;
    EXPECT(status == 0);
    int index = ctp_current_worker_index();
    EXPECT(index >= 0 && (unsigned)index < p->threads);
    if (index < 0 || (unsigned)index >= p->threads) return;
    atomic_fetch_add(&p->queued_ran[index], 1);
    atomic_fetch_add(&p->queued_total, 1);
}

static int broadcast_calls(broadcast_probe *p) {
    int n = 0;
    for (unsigned i = 0; i < p->threads; i++) n += atomic_load(&p->calls[i]);
    return n;
}

/* Each worker index 0..threads-1 was called exactly once. */
static void check_once_per_worker(broadcast_probe *p) {
    for (unsigned i = 0; i < p->threads; i++) {
        if (atomic_load(&p->calls[i]) != 1) {
            fprintf(stderr, "%s:%d: broadcast ran %d times on worker %u of %u\n", __FILE__, __LINE__,
                    atomic_load(&p->calls[i]), i, p->threads);
            exit(1);
        }
    }
}

static void test_broadcast(void) {
    CHECK_EQ(ctp_pool_broadcast(NULL, broadcast_task, NULL), CTP_EINVAL);

    /* 1. Exactly once on every worker: idle workers, and workers busy with a stream of tasks. */
    for (int iteration = 0; iteration < 120; iteration++) {
        const unsigned threads = 1 + (unsigned)iteration % 4;
        ctp_pool *pool = make_pool(threads, 0);
        CHECK_EQ(ctp_pool_broadcast(pool, NULL, NULL), CTP_EINVAL);
        if (iteration % 3 == 0) warm_up(pool, (int)threads);
        unsigned long long completed_before = stats_of(pool).completed;
        broadcast_probe idle, busy;
        broadcast_probe_init(&idle, threads);
        broadcast_probe_init(&busy, threads);
        CHECK_EVENTUALLY(stats_of(pool).idle == threads);
        CHECK_EQ(ctp_pool_broadcast(pool, broadcast_task, &idle), 0);
        CHECK_EVENTUALLY(broadcast_calls(&idle) >= (int)threads);
        CHECK_EVENTUALLY(stats_of(pool).idle == threads);
        check_once_per_worker(&idle);
        const int tiny = 2000;
        for (int i = 0; i < tiny; i++) {
            CHECK_EQ(ctp_pool_submit(pool, tiny_task, NULL), 0);
            if (i == tiny / 2) CHECK_EQ(ctp_pool_broadcast(pool, broadcast_task, &busy), 0);
        }
        if (iteration % 2 == 0) CHECK_EQ(ctp_pool_close(pool), 0); /* queued broadcast calls still run */
        else CHECK_EVENTUALLY(broadcast_calls(&busy) >= (int)threads);
        if (iteration % 2 == 1) CHECK_EQ(ctp_pool_close(pool), 0);
        CHECK_EQ(ctp_pool_broadcast(pool, broadcast_task, &busy), CTP_ECLOSED);
        CHECK_EQ(ctp_pool_join(pool), 0);
        check_once_per_worker(&idle);
        check_once_per_worker(&busy);
        CHECK_EQ(atomic_load(&idle.cancels) + atomic_load(&busy.cancels), 0);
        ctp_stats stats = stats_of(pool);
        CHECK_EQ(stats.completed, completed_before + 2 * threads + tiny);
        CHECK_EQ(stats.cancelled, 0);
        ctp_pool_destroy(pool);
    }

    /* 2. Ahead of queued work: every worker blocked, 1000 tasks queued, then the broadcast; once
          the workers are let go, each runs the broadcast call before any queued task. */
    for (int iteration = 0; iteration < 60; iteration++) {
        const unsigned threads = 1 + (unsigned)iteration % 4;
        ctp_pool *pool = make_pool(threads, 0);
        if (iteration % 2 == 0) warm_up(pool, (int)threads);
        gate g;
        gate_init(&g);
        broadcast_probe p;
        broadcast_probe_init(&p, threads);
        occupy_one_by_one(pool, &g, (int)threads);
        const int queued = 1000;
        for (int i = 0; i < queued; i++) CHECK_EQ(ctp_pool_submit(pool, probe_queued_task, &p), 0);
        CHECK_EQ(ctp_pool_broadcast(pool, broadcast_task, &p), 0);
        CHECK_EQ(stats_of(pool).queued, queued + threads); /* the broadcast calls count as queued */
        gate_open(&g);
        CHECK_EQ(ctp_pool_close(pool), 0);
        CHECK_EQ(ctp_pool_join(pool), 0);
        check_once_per_worker(&p);
        for (unsigned i = 0; i < threads; i++) {
            if (atomic_load(&p.queued_ran_before_broadcast[i]) != 0) {
                fprintf(stderr, "%s:%d: worker %u ran %ld queued tasks before the broadcast call\n", __FILE__,
                        __LINE__, i, atomic_load(&p.queued_ran_before_broadcast[i]));
                exit(1);
            }
        }
        CHECK_EQ(atomic_load(&p.queued_total), queued);
        ctp_pool_destroy(pool);
        gate_destroy(&g);
    }

    /* 3. Terminated before they ran: CTP_ECANCELED once per worker, on the caller, before terminate
          returns, along with the queued tasks; none runs after. */
    for (int iteration = 0; iteration < 60; iteration++) {
        const unsigned threads = 1 + (unsigned)iteration % 4;
        ctp_pool *pool = make_pool(threads, 0);
        gate g;
        gate_init(&g);
        broadcast_probe p;
        broadcast_probe_init(&p, threads);
        counts c;
        counts_init(&c);
        occupy_one_by_one(pool, &g, (int)threads);
        const int queued = iteration % 3 == 0 ? 0 : 100;
        if (iteration % 2 == 0) CHECK_EQ(ctp_pool_broadcast(pool, broadcast_task, &p), 0);
        for (int i = 0; i < queued; i++) CHECK_EQ(ctp_pool_submit(pool, counted_task, &c), 0);
        if (iteration % 2 == 1) CHECK_EQ(ctp_pool_broadcast(pool, broadcast_task, &p), 0);
        CHECK_EQ(stats_of(pool).queued, (size_t)queued + threads);
        CHECK_EQ(ctp_pool_terminate(pool), 0);
        CHECK_EQ(atomic_load(&p.cancels), threads);
        CHECK_EQ(atomic_load(&p.cancelled_off_thread), 0);
        CHECK_EQ(atomic_load(&c.cancels), queued);
        CHECK_EQ(atomic_load(&c.cancelled_off_thread), 0);
        CHECK_EQ(stats_of(pool).cancelled, (unsigned long long)queued + threads);
        CHECK_EQ(stats_of(pool).queued, 0);
        CHECK_EQ(ctp_pool_broadcast(pool, broadcast_task, &p), CTP_ECLOSED);
        gate_open(&g);
        CHECK_EQ(ctp_pool_join(pool), 0);
        CHECK_EQ(broadcast_calls(&p), 0);
        CHECK_EQ(atomic_load(&p.cancels), threads);
        CHECK_EQ(atomic_load(&c.runs), 0);
        ctp_stats stats = stats_of(pool);
        CHECK_EQ(stats.completed, threads);
        CHECK_EQ(stats.cancelled, (unsigned long long)queued + threads);
        ctp_pool_destroy(pool);
        gate_destroy(&g);
    }
    CHECK_NO_CALLBACK_ERRORS();
    printf("ok   broadcast: exactly once on every worker index; ahead of 1000 queued tasks on every worker; "
           "CTP_ECANCELED once per worker on terminate; CTP_ECLOSED after close/terminate, CTP_EINVAL for NULL "
           "(%.2f s)\n", test_seconds());
}

/* ================================ 6. help =============================================== */

typedef struct help_probe {
    ctp_pool *other;           /* a pool the calling worker does not belong to */
    atomic_int rc_null, rc_other, rc_empty, rc_one, rc_after;
    atomic_int x_runs;
    atomic_int x_same_thread;  /* X ran on the thread that called help */
    pthread_t helper;
    atomic_int done;
} help_probe;

static void help_x(void *arg, int status) {
    help_probe *h = arg;
    EXPECT(status == 0);
    atomic_fetch_add(&h->x_runs, 1);
    atomic_store(&h->x_same_thread, pthread_equal(pthread_self(), h->helper) ? 1 : 0);
}

static void help_caller(void *arg, int status) {
    help_probe *h = arg;
    EXPECT(status == 0);
    ctp_pool *pool = ctp_current_pool();
    h->helper = pthread_self();
    atomic_store(&h->rc_null, ctp_pool_help(NULL));
    atomic_store(&h->rc_other, ctp_pool_help(h->other));
    atomic_store(&h->rc_empty, ctp_pool_help(pool));      /* nothing queued */
    EXPECT(ctp_pool_submit(pool, help_x, h) == 0);
    atomic_store(&h->rc_one, ctp_pool_help(pool));        /* runs X here */
    atomic_store(&h->rc_after, ctp_pool_help(pool));      /* nothing queued again */
    atomic_store(&h->done, 1);
}

/* Nested: level d submits level d + 1 and waits for it by helping. */
#define NEST_DEPTH 10

typedef struct nest {
    atomic_int ran[NEST_DEPTH + 1];
    atomic_int finished[NEST_DEPTH + 1];
    atomic_int helped;         /* help calls that ran a task */
    atomic_int gave_up;
    pthread_t thread;          /* the only worker */
} nest;

typedef struct nest_level {
    nest *n;
    int depth;
} nest_level;

static void nest_task(void *arg, int status) {
    nest_level *level = arg;
    nest *n = level->n;
    EXPECT(status == 0);
    EXPECT(pthread_equal(pthread_self(), n->thread));
    atomic_fetch_add(&n->ran[level->depth], 1);
    if (level->depth < NEST_DEPTH) {
        nest_level *child = malloc(sizeof *child);
        CHECK(child != NULL);
        *child = (nest_level){ n, level->depth + 1 };
        EXPECT(ctp_pool_submit(ctp_current_pool(), nest_task, child) == 0);
        double give_up = now_seconds() + DEPENDENT_WAIT_SECONDS;
        while (atomic_load(&n->finished[level->depth + 1]) == 0) {
            if (now_seconds() > give_up) {
                atomic_fetch_add(&n->gave_up, 1);
                break;
            }
            int rc = ctp_pool_help(ctp_current_pool());
            EXPECT(rc == 0 || rc == 1);
            if (rc == 1) atomic_fetch_add(&n->helped, 1);
        }
    }
    atomic_fetch_add(&n->finished[level->depth], 1);
    free(level);
}

static void record_thread(void *arg, int status) {
    EXPECT(status == 0);
    *(pthread_t *)arg = pthread_self();
}

static void test_help(void) {
    /* 1. Off the pool's workers: CTP_EINVAL. */
    ctp_pool *pool = make_pool(1, 0);
    ctp_pool *other = make_pool(1, 0);
    CHECK_EQ(ctp_pool_help(NULL), CTP_EINVAL);
    CHECK_EQ(ctp_pool_help(pool), CTP_EINVAL);         /* the main thread */
    CHECK_EQ(ctp_pool_submit(pool, tiny_task, NULL), 0);
    CHECK_EQ(ctp_pool_help(pool), CTP_EINVAL);         /* even with a task queued */

    /* 2. From a task: 0 when nothing is queued, 1 after running one queued task on this thread;
          CTP_EINVAL for a pool the worker does not belong to. */
    for (int iteration = 0; iteration < 100; iteration++) {
        help_probe h;
        memset(&h, 0, sizeof h);
        h.other = other;
        atomic_init(&h.rc_null, 99);
        atomic_init(&h.rc_other, 99);
        atomic_init(&h.rc_empty, 99);
        atomic_init(&h.rc_one, 99);
        atomic_init(&h.rc_after, 99);
        atomic_init(&h.x_runs, 0);
        atomic_init(&h.x_same_thread, 0);
        atomic_init(&h.done, 0);
        CHECK_EVENTUALLY(stats_of(pool).idle == 1);
        unsigned long long completed_before = stats_of(pool).completed;
        CHECK_EQ(ctp_pool_submit(pool, help_caller, &h), 0);
        CHECK_EVENTUALLY(atomic_load(&h.done) == 1);
        CHECK_EQ(atomic_load(&h.rc_null), CTP_EINVAL);
        CHECK_EQ(atomic_load(&h.rc_other), CTP_EINVAL);
        CHECK_EQ(atomic_load(&h.rc_empty), 0);
        CHECK_EQ(atomic_load(&h.rc_one), 1);
        CHECK_EQ(atomic_load(&h.rc_after), 0);
        CHECK_EQ(atomic_load(&h.x_runs), 1);
        CHECK_EQ(atomic_load(&h.x_same_thread), 1);
        CHECK_EVENTUALLY(stats_of(pool).completed == completed_before + 2);
        CHECK_EQ(atomic_load(&h.x_runs), 1);
    }
    /* From a worker of `other`: CTP_EINVAL for `pool`. */
    help_probe h;
    memset(&h, 0, sizeof h);
    h.other = pool;
    atomic_init(&h.done, 0);
    CHECK_EQ(ctp_pool_submit(other, help_caller, &h), 0);
    CHECK_EVENTUALLY(atomic_load(&h.done) == 1);
    CHECK_EQ(atomic_load(&h.rc_other), CTP_EINVAL);
    CHECK_EQ(atomic_load(&h.rc_one), 1);
    CHECK_EQ(ctp_pool_close(other), 0);
    CHECK_EQ(ctp_pool_join(other), 0);
    ctp_pool_destroy(other);

    /* 3. A 1-worker pool whose task submits another and waits for it by helping, nested 10 deep. */
    pthread_t worker_thread;
    CHECK_EQ(ctp_pool_submit(pool, record_thread, &worker_thread), 0);
    CHECK_EVENTUALLY(stats_of(pool).idle == 1 && stats_of(pool).queued == 0);
    const int nests = 200;
    for (int iteration = 0; iteration < nests; iteration++) {
        if (iteration % 10 == 0) warm_up(pool, 1);
        nest n;
        memset(&n, 0, sizeof n);
        for (int d = 0; d <= NEST_DEPTH; d++) {
            atomic_init(&n.ran[d], 0);
            atomic_init(&n.finished[d], 0);
        }
        atomic_init(&n.helped, 0);
        atomic_init(&n.gave_up, 0);
        n.thread = worker_thread;
        nest_level *top = malloc(sizeof *top);
        CHECK(top != NULL);
        *top = (nest_level){ &n, 0 };
        CHECK_EQ(ctp_pool_submit(pool, nest_task, top), 0);
        CHECK_EVENTUALLY(atomic_load(&n.finished[0]) == 1);
        CHECK_EQ(atomic_load(&n.gave_up), 0);
        for (int d = 0; d <= NEST_DEPTH; d++) {
            CHECK_EQ(atomic_load(&n.ran[d]), 1);
            CHECK_EQ(atomic_load(&n.finished[d]), 1);
        }
        CHECK_EQ(atomic_load(&n.helped), NEST_DEPTH); /* each level ran its child, and nothing else */
    }

    /* 4. A task waiting by helping runs the task its own worker took in the same batch: a 1-worker
          pool, warmed up, takes [A, B, tiny...] as one batch; A waits for B. */
    int b_in_a_batch = 0;
    const int batch_trials = 100;
    for (int trial = 0; trial < batch_trials; trial++) {
        warm_up(pool, 1);
        unsigned long long completed_before = stats_of(pool).completed;
        gate g;
        gate_init(&g);
        dependency d;
        dependency_init(&d, true);
        occupy_one_by_one(pool, &g, 1);
        CHECK_EQ(ctp_pool_submit(pool, task_a, &d), 0);
        CHECK_EQ(ctp_pool_submit(pool, task_b, &d), 0);
        for (int i = 0; i < 5; i++) CHECK_EQ(ctp_pool_submit(pool, tiny_task, NULL), 0);
        gate_open(&g);
        CHECK_EVENTUALLY(atomic_load(&d.a_result) != 0 && atomic_load(&d.b_finished) == 1);
        CHECK_EQ(atomic_load(&d.a_result), 1);
        CHECK_EQ(atomic_load(&d.b_runs), 1);
        CHECK_EQ(atomic_load(&d.b_worker), 0);
        CHECK(atomic_load(&d.a_helped) >= 1);
        CHECK_EQ(d.a_saw.queued, 6); /* B and the tiny tasks, batched or not */
        if (d.a_batched > 0) b_in_a_batch++; /* A's batch had more than A */
        CHECK_EVENTUALLY(stats_of(pool).completed == completed_before + 1 + 2 + 5 && atomic_load(&g.left) == 1);
        dependency_destroy(&d);
        gate_destroy(&g);
    }
    CHECK(b_in_a_batch > 0);

    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_join(pool), 0);
    ctp_pool_destroy(pool);
    CHECK_NO_CALLBACK_ERRORS();
    printf("ok   help: CTP_EINVAL off the pool's workers and from another pool's worker; from a task it "
           "runs one queued task on the calling thread (1), or returns 0; nested %d deep on 1 worker (%d "
           "times); runs the rest of its own batch (B in A's batch in %d/%d; %.2f s)\n",
           NEST_DEPTH, nests, b_in_a_batch, batch_trials, test_seconds());
}

/* ---- main ------------------------------------------------------------------------------- */

static void watchdog_fired(int signal_number) {
    (void)signal_number;
    static const char message[] = "test_batches: watchdog: still running after 120 s (deadlock?)\n";
    ssize_t ignored = write(2, message, sizeof message - 1);
    (void)ignored;
    _exit(2);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGALRM, watchdog_fired);
    alarm(120);
    atomic_init(&g_callback_errors, 0);
    double start = now_seconds();
    /* Warm up: start (and stop) one pool so that threads a sanitizer runtime starts with the first
       pthread_create are already there when tests take their thread-count baselines. */
    ctp_pool_destroy(make_pool(1, 0));
    set_baseline();

    void (*const tests[])(void) = {
        test_terminate_cancels_batched_tasks,
        test_dependent_tasks_in_one_batch,
        test_destroy_from_task_during_terminate,
        test_submit_many,
        test_broadcast,
        test_help,
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        g_test_start = now_seconds();
        tests[i]();
    }
    printf("test_batches: all tests passed (%.2f s)\n", now_seconds() - start);
    return 0;
}
