/*
 * ctp_pool_submit_to_worker: tasks for one worker only, first in first out, run between that
 * worker's other tasks, waking it if it is parked; accepted after close until that worker exits,
 * CTP_ECLOSED once it has (or after terminate, which drops them with exact CTP_ECANCELED calls).
 */
#define _GNU_SOURCE
#include "fault_injection.h"
#include "test_support.h"

#include <semaphore.h>

/* ---- a log of task runs: which task ran, on which worker, in which order ---- */

enum { LOG_MAX = 4096 };

typedef struct run_log {
    atomic_int next;            /* the next free entry */
    int task[LOG_MAX];          /* written once per entry, read after a join or a semaphore */
    int worker[LOG_MAX];
    atomic_int cancelled;       /* CTP_ECANCELED calls */
    atomic_int bad_status;      /* calls with any other non-zero status */
    sem_t ran;                  /* posted by every run */
} run_log;

typedef struct logged_task {
    run_log *log;
    int id;
} logged_task;

static void log_init(run_log *log) {
    atomic_init(&log->next, 0);
    atomic_init(&log->cancelled, 0);
    atomic_init(&log->bad_status, 0);
    CHECK_EQ(sem_init(&log->ran, 0, 0), 0);
}

static void log_destroy(run_log *log) {
    sem_destroy(&log->ran);
}

static void logged(void *arg, int status) {
    logged_task *task = arg;
    if (status == CTP_ECANCELED) {
        atomic_fetch_add(&task->log->cancelled, 1);
        return;
    }
    if (status != 0) {
        atomic_fetch_add(&task->log->bad_status, 1);
        return;
    }
    int entry = atomic_fetch_add(&task->log->next, 1);
    CHECK(entry < LOG_MAX);
    task->log->task[entry] = task->id;
    task->log->worker[entry] = ctp_current_worker_index();
    sem_post(&task->log->ran);
}

/* Waits (bounded) for `count` more runs. */
static void wait_runs(run_log *log, int count) {
    for (int i = 0; i < count; i++) {
        struct timespec deadline = deadline_in(WAIT_SECONDS);
        int rc;
        while ((rc = sem_timedwait(&log->ran, &deadline)) != 0 && errno == EINTR) {}
        CHECK_EQ(rc, 0);
    }
}

static ctp_pool *make_pool(unsigned threads) {
    ctp_options options;
    ctp_options_init(&options);
    options.threads = threads;
    ctp_pool *pool;
    CHECK_EQ(ctp_pool_create(&options, &pool), 0);
    return pool;
}

/* ---- the tests ---- */

static void test_invalid_arguments(void) {
    ctp_pool *pool = make_pool(2);
    run_log log;
    log_init(&log);
    logged_task task = { &log, 0 };
    CHECK_EQ(ctp_pool_submit_to_worker(NULL, 0, logged, &task), CTP_EINVAL);
    CHECK_EQ(ctp_pool_submit_to_worker(pool, 0, NULL, &task), CTP_EINVAL);
    CHECK_EQ(ctp_pool_submit_to_worker(pool, 2, logged, &task), CTP_EINVAL);
    CHECK_EQ(ctp_pool_submit_to_worker(pool, 1u << 31, logged, &task), CTP_EINVAL);
    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_join(pool), 0);
    CHECK_EQ(atomic_load(&log.next), 0);
    ctp_pool_destroy(pool);
    log_destroy(&log);
}

/* Tasks queued on a busy worker run on that worker, in submission order, once it is free. */
static void test_order_on_one_worker(void) {
    enum { N = 1000 };
    ctp_pool *pool = make_pool(3);
    gate g;
    gate_init(&g);
    run_log log;
    log_init(&log);
    static logged_task tasks[N];
    CHECK_EQ(ctp_pool_submit_to_worker(pool, 1, gate_task, &g), 0);
    CHECK_EVENTUALLY(atomic_load(&g.entered) == 1);
    for (int i = 0; i < N; i++) {
        tasks[i] = (logged_task){ &log, i };
        CHECK_EQ(ctp_pool_submit_to_worker(pool, 1, logged, &tasks[i]), 0);
    }
    /* Worker 1 is held by the gate: nothing of its queue ran, whatever the other workers do. */
    CHECK_EQ(atomic_load(&log.next), 0);
    gate_open(&g);
    wait_runs(&log, N);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(log.task[i], i);
        CHECK_EQ(log.worker[i], 1);
    }
    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_join(pool), 0);
    ctp_stats stats;
    CHECK_EQ(ctp_pool_stats(pool, &stats), 0);
    CHECK_EQ(stats.completed, N + 1);
    CHECK_EQ(stats.queued, 0);
    ctp_pool_destroy(pool);
    gate_destroy(&g);
    log_destroy(&log);
}

/* A task for a worker goes ahead of the shared queue: it runs after the worker's current task and
   before the tasks that were queued before it. */
static void test_runs_between_tasks(void) {
    ctp_pool *pool = make_pool(1);
    gate g;
    gate_init(&g);
    run_log log;
    log_init(&log);
    logged_task shared[3] = { { &log, 1 }, { &log, 2 }, { &log, 3 } };
    logged_task own = { &log, 100 };
    CHECK_EQ(ctp_pool_submit(pool, gate_task, &g), 0);
    CHECK_EVENTUALLY(atomic_load(&g.entered) == 1);
    for (int i = 0; i < 3; i++) CHECK_EQ(ctp_pool_submit(pool, logged, &shared[i]), 0);
    CHECK_EQ(ctp_pool_submit_to_worker(pool, 0, logged, &own), 0);
    gate_open(&g);
    wait_runs(&log, 4);
    CHECK_EQ(log.task[0], 100);
    CHECK_EQ(log.task[1], 1);
    CHECK_EQ(log.task[2], 2);
    CHECK_EQ(log.task[3], 3);
    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_join(pool), 0);
    ctp_pool_destroy(pool);
    gate_destroy(&g);
    log_destroy(&log);
}

/* A parked worker wakes up for its own task, while the other workers stay parked or busy. */
static void test_wakes_a_parked_worker(void) {
    enum { ROUNDS = 200 };
    ctp_pool *pool = make_pool(3);
    run_log log;
    log_init(&log);
    static logged_task tasks[ROUNDS];
    gate g;
    gate_init(&g);
    /* Worker 0 is busy throughout: a wake must reach the worker asked for, not any idle one. */
    CHECK_EQ(ctp_pool_submit_to_worker(pool, 0, gate_task, &g), 0);
    CHECK_EVENTUALLY(atomic_load(&g.entered) == 1);
    for (int round = 0; round < ROUNDS; round++) {
        unsigned target = 1 + (unsigned)round % 2;
        /* Both free workers parked (a worker spins for at most 10 us before it parks). */
        ctp_stats stats;
        CHECK_EVENTUALLY(ctp_pool_stats(pool, &stats) == 0 && stats.idle == 2);
        tasks[round] = (logged_task){ &log, round };
        CHECK_EQ(ctp_pool_submit_to_worker(pool, target, logged, &tasks[round]), 0);
        wait_runs(&log, 1);
        CHECK_EQ(log.task[round], round);
        CHECK_EQ(log.worker[round], (int)target);
    }
    gate_open(&g);
    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_join(pool), 0);
    ctp_pool_destroy(pool);
    gate_destroy(&g);
    log_destroy(&log);
}

/* After close, a worker that has not exited still takes and runs its tasks; once it has exited (here:
   joined) the answer is CTP_ECLOSED and nothing runs. */
static void test_after_close_until_the_worker_exits(void) {
    ctp_pool *pool = make_pool(2);
    gate g;
    gate_init(&g);
    run_log log;
    log_init(&log);
    logged_task tasks[3] = { { &log, 0 }, { &log, 1 }, { &log, 2 } };
    CHECK_EQ(ctp_pool_submit_to_worker(pool, 1, gate_task, &g), 0);
    CHECK_EVENTUALLY(atomic_load(&g.entered) == 1);
    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_submit(pool, logged, &tasks[2]), CTP_ECLOSED); /* the shared queue is closed */
    CHECK_EQ(ctp_pool_submit_to_worker(pool, 1, logged, &tasks[0]), 0); /* worker 1 is held: alive */
    CHECK_EQ(ctp_pool_submit_to_worker(pool, 1, logged, &tasks[1]), 0);
    gate_open(&g);
    CHECK_EQ(ctp_pool_join(pool), 0);
    CHECK_EQ(atomic_load(&log.next), 2);
    CHECK_EQ(log.task[0], 0);
    CHECK_EQ(log.task[1], 1);
    CHECK_EQ(log.worker[0], 1);
    CHECK_EQ(ctp_pool_submit_to_worker(pool, 0, logged, &tasks[2]), CTP_ECLOSED);
    CHECK_EQ(ctp_pool_submit_to_worker(pool, 1, logged, &tasks[2]), CTP_ECLOSED);
    CHECK_EQ(atomic_load(&log.next), 2);
    CHECK_EQ(atomic_load(&log.cancelled), 0);
    ctp_pool_destroy(pool);
    gate_destroy(&g);
    log_destroy(&log);
}

/* A task that submits itself to its own worker after close keeps that worker alive until it stops:
   the worker runs its queue to the end before it exits. */
typedef struct chain {
    ctp_pool *pool;
    atomic_int runs;
    int length;
} chain;

static void chain_link(void *arg, int status) {
    chain *c = arg;
    CHECK_EQ(status, 0);
    CHECK_EQ(ctp_current_worker_index(), 1);
    if (atomic_fetch_add(&c->runs, 1) + 1 < c->length) {
        CHECK_EQ(ctp_pool_submit_to_worker(c->pool, 1, chain_link, c), 0);
    }
}

static void test_closed_worker_runs_its_queue_to_the_end(void) {
    ctp_pool *pool = make_pool(2);
    chain c = { .pool = pool, .length = 500 };
    atomic_init(&c.runs, 0);
    CHECK_EQ(ctp_pool_close(pool), 0);
    /* Worker 1 may already have exited (close woke it, it found nothing to do): then nothing runs. */
    int rc = ctp_pool_submit_to_worker(pool, 1, chain_link, &c);
    CHECK(rc == 0 || rc == CTP_ECLOSED);
    CHECK_EQ(ctp_pool_join(pool), 0);
    CHECK_EQ(atomic_load(&c.runs), rc == 0 ? c.length : 0);
    ctp_pool_destroy(pool);

    /* The same with the worker held, so that the chain certainly starts after close. */
    pool = make_pool(2);
    gate g;
    gate_init(&g);
    chain held = { .pool = pool, .length = 500 };
    atomic_init(&held.runs, 0);
    CHECK_EQ(ctp_pool_submit_to_worker(pool, 1, gate_task, &g), 0);
    CHECK_EVENTUALLY(atomic_load(&g.entered) == 1);
    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_submit_to_worker(pool, 1, chain_link, &held), 0);
    gate_open(&g);
    CHECK_EQ(ctp_pool_join(pool), 0);
    CHECK_EQ(atomic_load(&held.runs), held.length);
    ctp_pool_destroy(pool);
    gate_destroy(&g);
}

/* terminate drops a worker's queued tasks: each gets exactly one CTP_ECANCELED call before terminate
   returns, none runs, and later submissions get CTP_ECLOSED even while the worker still runs. */
static void test_terminate_drops_with_exact_calls(void) {
    enum { N = 777 };
    ctp_pool *pool = make_pool(2);
    gate g;
    gate_init(&g);
    run_log log;
    log_init(&log);
    static logged_task tasks[N];
    CHECK_EQ(ctp_pool_submit_to_worker(pool, 0, gate_task, &g), 0);
    CHECK_EVENTUALLY(atomic_load(&g.entered) == 1);
    for (int i = 0; i < N; i++) {
        tasks[i] = (logged_task){ &log, i };
        CHECK_EQ(ctp_pool_submit_to_worker(pool, 0, logged, &tasks[i]), 0);
    }
    ctp_stats stats;
    CHECK_EQ(ctp_pool_stats(pool, &stats), 0);
    CHECK_EQ(stats.queued, N);
    CHECK_EQ(ctp_pool_terminate(pool), 0);
    CHECK_EQ(atomic_load(&log.cancelled), N); /* every call made, before terminate returned */
    CHECK_EQ(ctp_pool_submit_to_worker(pool, 0, logged, &tasks[0]), CTP_ECLOSED); /* worker 0 still in the gate */
    CHECK_EQ(ctp_pool_submit_to_worker(pool, 1, logged, &tasks[0]), CTP_ECLOSED);
    gate_open(&g);
    CHECK_EQ(ctp_pool_join(pool), 0);
    CHECK_EQ(atomic_load(&log.next), 0);
    CHECK_EQ(atomic_load(&log.cancelled), N);
    CHECK_EQ(atomic_load(&log.bad_status), 0);
    CHECK_EQ(atomic_load(&g.cancelled), 0);
    CHECK_EQ(ctp_pool_stats(pool, &stats), 0);
    CHECK_EQ(stats.cancelled, N);
    CHECK_EQ(stats.completed, 1);
    CHECK_EQ(stats.queued, 0);
    ctp_pool_destroy(pool);
    gate_destroy(&g);
    log_destroy(&log);
}

/* The race the worker's `exited` flag settles: a thread submitting to a worker while the closed pool's
   worker exits. Every submission is either accepted, and then runs exactly once, or CTP_ECLOSED; after
   the first CTP_ECLOSED every later one is too. */
enum { RACE_MAX_SUBMITS = 20000 };

typedef struct racer {
    ctp_pool *pool;
    unsigned worker;
    atomic_int accepted;
    atomic_int ran;
    atomic_bool go;
    atomic_bool saw_closed;
} racer;

static void count_run(void *arg, int status) {
    racer *r = arg;
    if (status == CTP_ECANCELED) return; /* dropped by terminate: counted by the pool's stats */
    CHECK_EQ(status, 0);
    CHECK_EQ(ctp_current_worker_index(), (int)r->worker);
    atomic_fetch_add(&r->ran, 1);
}

static void *submit_until_closed(void *arg) {
    racer *r = arg;
    while (!atomic_load(&r->go)) {}
    /* Bounded, so that a submitter that outruns the worker for long does not grow its queue without
       end; the pool is closed from the other thread long before the bound, in nearly every round. */
    for (int i = 0; i < RACE_MAX_SUBMITS; i++) {
        int rc = ctp_pool_submit_to_worker(r->pool, r->worker, count_run, r);
        if (rc == CTP_ECLOSED) {
            for (int k = 0; k < 10; k++) CHECK_EQ(ctp_pool_submit_to_worker(r->pool, r->worker, count_run, r), CTP_ECLOSED);
            atomic_store(&r->saw_closed, true);
            break;
        }
        CHECK_EQ(rc, 0);
        atomic_fetch_add(&r->accepted, 1);
        /* Gaps of varying length, so that the worker empties its queue (and may exit) between pushes. */
        for (volatile int k = 0; k < i % 128; k++) {}
    }
    return NULL;
}

static void test_submit_races_the_exit(void) {
    enum { ROUNDS = 1000 };
    long long total = 0;
    int raced = 0;
    for (int round = 0; round < ROUNDS; round++) {
        ctp_pool *pool = make_pool(2);
        racer r = { .pool = pool, .worker = (unsigned)round % 2 };
        atomic_init(&r.accepted, 0);
        atomic_init(&r.ran, 0);
        atomic_init(&r.go, false);
        atomic_init(&r.saw_closed, false);
        pthread_t thread;
        CHECK_EQ(pthread_create(&thread, NULL, submit_until_closed, &r), 0);
        atomic_store(&r.go, true);
        for (volatile int i = 0; i < round % 512; i++) {}
        if (round % 3 == 2) {
            CHECK_EQ(ctp_pool_terminate(pool), 0); /* drops the queued ones: their calls are not runs */
        } else {
            CHECK_EQ(ctp_pool_close(pool), 0);
        }
        CHECK_EQ(pthread_join(thread, NULL), 0);
        CHECK_EQ(ctp_pool_join(pool), 0);
        ctp_stats stats;
        CHECK_EQ(ctp_pool_stats(pool, &stats), 0);
        CHECK_EQ(stats.completed + stats.cancelled, (unsigned long long)atomic_load(&r.accepted));
        CHECK_EQ(stats.completed, (unsigned long long)atomic_load(&r.ran));
        if (round % 3 != 2) CHECK_EQ(atomic_load(&r.ran), atomic_load(&r.accepted));
        total += atomic_load(&r.accepted);
        if (atomic_load(&r.saw_closed)) raced++;
        ctp_pool_destroy(pool);
    }
    printf("submit vs exit: %d rounds (%d ended by CTP_ECLOSED), %lld tasks accepted, each run or cancelled once\n",
           ROUNDS, raced, total);
    CHECK(raced >= ROUNDS / 10);
}

static double started;

#define RUN(test) (test(), printf("%-48s %6.2f s\n", #test, now_seconds() - started), started = now_seconds())

int main(void) {
    started = now_seconds();
    RUN(test_invalid_arguments);
    RUN(test_order_on_one_worker);
    RUN(test_runs_between_tasks);
    RUN(test_wakes_a_parked_worker);
    RUN(test_after_close_until_the_worker_exits);
    RUN(test_closed_worker_runs_its_queue_to_the_end);
    RUN(test_terminate_drops_with_exact_calls);
    RUN(test_submit_races_the_exit);
    printf("test_worker_submit: all passed\n");
    return 0;
}
