/*
 * Workers beyond the pool's size: growing for queued work (max_threads), standing in for blocked
 * workers (ctp_pool_block_begin/end), retiring, and failing to grow. Every count exact, every thread
 * gone after join.
 */
#define _GNU_SOURCE
#include "fault_injection.h"
#include "test_support.h"

#include <semaphore.h>
#include <string.h>

static void pass(const char *name) { printf("ok   %s\n", name); }

static int baseline;

static ctp_stats stats_of(ctp_pool *pool) {
    ctp_stats stats;
    CHECK_EQ(ctp_pool_stats(pool, &stats), 0);
    return stats;
}

static ctp_pool *elastic_pool(unsigned threads, unsigned max_threads, unsigned long long keep_alive_ns) {
    ctp_options options;
    ctp_options_init(&options);
    options.threads = threads;
    options.max_threads = max_threads;
    options.keep_alive_ns = keep_alive_ns;
    ctp_pool *pool;
    CHECK_EQ(ctp_pool_create(&options, &pool), 0);
    return pool;
}

static void test_grows_for_queued_work_and_retires(void) {
    ctp_pool *pool = elastic_pool(2, 16, 50 * 1000 * 1000);
    gate g;
    gate_init(&g);
    for (int i = 0; i < 16; i++) CHECK_EQ(ctp_pool_submit(pool, gate_task, &g), 0);
    /* Each task blocks, so each one queued with no worker idle starts a worker, up to 16. */
    CHECK_EVENTUALLY(atomic_load(&g.entered) == 16);
    ctp_stats stats = stats_of(pool);
    CHECK_EQ(stats.threads, 16);
    CHECK_EQ(stats.peak_threads, 16);
    CHECK_EQ(stats.threads_started, 16);
    CHECK_EQ(process_threads(), baseline + 16);
    /* More work than max_threads: queued, no growth past it. */
    for (int i = 0; i < 4; i++) CHECK_EQ(ctp_pool_submit(pool, gate_task, &g), 0);
    CHECK_EQ(stats_of(pool).threads, 16);
    gate_open(&g);
    CHECK_EVENTUALLY(atomic_load(&g.left) == 20);
    /* Idle for the keep-alive, the 14 beyond the pool's size retire. */
    CHECK_EVENTUALLY(stats_of(pool).threads == 2);
    CHECK_THREADS_BACK_TO(baseline + 2);
    stats = stats_of(pool);
    CHECK_EQ(stats.threads_retired, 14);
    CHECK_EQ(stats.completed, 20);
    /* And it grows again, reusing the lowest slots. */
    gate g2;
    gate_init(&g2);
    for (int i = 0; i < 5; i++) CHECK_EQ(ctp_pool_submit(pool, gate_task, &g2), 0);
    CHECK_EVENTUALLY(atomic_load(&g2.entered) == 5);
    /* At least the 5 the tasks hold; a worker may start just as another becomes free, never past 16. */
    unsigned regrown = stats_of(pool).threads;
    CHECK(regrown >= 5 && regrown <= 16);
    gate_open(&g2);
    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_join(pool), 0);
    CHECK_THREADS_BACK_TO(baseline);
    stats = stats_of(pool);
    CHECK_EQ(stats.threads, 0);
    CHECK_EQ(stats.completed, 25);
    CHECK_EQ(stats.threads_started, 16 + regrown - 2);
    ctp_pool_destroy(pool);
    gate_destroy(&g);
    gate_destroy(&g2);
    pass("elastic: 2...16 grows to 16 for 16 blocked tasks, not past it, retires to 2 after the keep-alive, "
         "grows again; nothing left after join");
}

/* ---- standing in for blocked workers ---- */

typedef struct pair {
    ctp_pool *pool;
    sem_t t2_ran;
    atomic_int done;
    atomic_int timeouts;
} pair;

static void t2_posts(void *arg, int status) {
    pair *p = arg;
    CHECK_EQ(status, 0);
    sem_post(&p->t2_ran);
    atomic_fetch_add(&p->done, 1);
}

/* Blocks until T2 ran: declared to the pool, which starts a worker to run T2. */
static void t1_blocks_for_t2(void *arg, int status) {
    pair *p = arg;
    CHECK_EQ(status, 0);
    CHECK_EQ(ctp_pool_submit(p->pool, t2_posts, p), 0);
    CHECK_EQ(ctp_pool_block_begin(p->pool), 0);
    struct timespec deadline = deadline_in(WAIT_SECONDS);
    int rc;
    while ((rc = sem_timedwait(&p->t2_ran, &deadline)) != 0 && errno == EINTR) {}
    if (rc != 0) atomic_fetch_add(&p->timeouts, 1);
    CHECK_EQ(ctp_pool_block_end(p->pool), 0);
    atomic_fetch_add(&p->done, 1);
}

static void test_blocked_worker_is_stood_in_for(void) {
    ctp_options options;
    ctp_options_init(&options);
    options.threads = 1;
    pair p = { 0 };
    CHECK_EQ(ctp_pool_create(&options, &p.pool), 0);
    CHECK_EQ(sem_init(&p.t2_ran, 0, 0), 0);
    for (int round = 0; round < 200; round++) {
        CHECK_EQ(ctp_pool_submit(p.pool, t1_blocks_for_t2, &p), 0);
        CHECK_EVENTUALLY(atomic_load(&p.done) == 2 * (round + 1));
    }
    CHECK_EQ(atomic_load(&p.timeouts), 0);
    /* The stand-ins retire once nobody is blocked. */
    CHECK_EVENTUALLY(stats_of(p.pool).threads == 1);
    ctp_stats stats = stats_of(p.pool);
    CHECK(stats.threads_started >= 2);
    CHECK_EQ(stats.threads_started - 1, stats.threads_retired);
    CHECK(stats.peak_threads >= 2);
    CHECK_EQ(ctp_pool_close(p.pool), 0);
    CHECK_EQ(ctp_pool_join(p.pool), 0);
    CHECK_THREADS_BACK_TO(baseline);
    ctp_pool_destroy(p.pool);
    sem_destroy(&p.t2_ran);
    pass("block_begin: a 1-worker pool whose task waits for a task it queued, 200 rounds, never deadlocks; "
         "stand-ins retire");
}

typedef struct barrier_round {
    ctp_pool *pool;
    pthread_barrier_t barrier;
    atomic_int done;
} barrier_round;

/* Every task waits for all the others: only works if all run at once. */
static void waits_for_everyone(void *arg, int status) {
    barrier_round *b = arg;
    CHECK_EQ(status, 0);
    CHECK_EQ(ctp_pool_block_begin(b->pool), 0);
    pthread_barrier_wait(&b->barrier);
    CHECK_EQ(ctp_pool_block_end(b->pool), 0);
    atomic_fetch_add(&b->done, 1);
}

static void test_every_worker_blocked(void) {
    enum { TASKS = 24 };
    barrier_round b = { 0 };
    ctp_options options;
    ctp_options_init(&options);
    options.threads = 2;
    CHECK_EQ(ctp_pool_create(&options, &b.pool), 0);
    CHECK_EQ(pthread_barrier_init(&b.barrier, NULL, TASKS), 0);
    for (int i = 0; i < TASKS; i++) CHECK_EQ(ctp_pool_submit(b.pool, waits_for_everyone, &b), 0);
    CHECK_EVENTUALLY(atomic_load(&b.done) == TASKS);
    CHECK(stats_of(b.pool).peak_threads >= TASKS);
    CHECK_EVENTUALLY(stats_of(b.pool).threads == 2);
    CHECK_EQ(ctp_pool_close(b.pool), 0);
    CHECK_EQ(ctp_pool_join(b.pool), 0);
    CHECK_THREADS_BACK_TO(baseline);
    ctp_pool_destroy(b.pool);
    pthread_barrier_destroy(&b.barrier);
    pass("block_begin: 24 tasks that all wait for each other on a 2-worker pool complete");
}

/* ---- failing to grow ---- */

static atomic_int initializer_calls;
static int fail_third_grown(void *context, unsigned index) {
    (void)context;
    int call = atomic_fetch_add(&initializer_calls, 1) + 1;
    return index >= 2 && call == 5 ? 1 : 0; /* the 3rd worker grown (calls 1-2 are the pool's own) */
}

static void test_growth_failures(void) {
    /* Thread creation failing while growing: the pool runs at the size it has. */
    ctp_pool *pool = elastic_pool(2, 8, 1000 * 1000 * 1000);
    gate g;
    gate_init(&g);
    ctp_fault_thread_countdown = 1;
    for (int i = 0; i < 6; i++) CHECK_EQ(ctp_pool_submit(pool, gate_task, &g), 0);
    CHECK_EVENTUALLY(atomic_load(&g.entered) >= 2);
    ctp_fault_thread_countdown = 0;
    gate_open(&g);
    CHECK_EVENTUALLY(atomic_load(&g.left) == 6);
    CHECK(stats_of(pool).grow_failures >= 1);
    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_join(pool), 0);
    CHECK_THREADS_BACK_TO(baseline);
    CHECK_EQ(stats_of(pool).completed, 6);
    ctp_pool_destroy(pool);
    gate_destroy(&g);

    /* The initializer failing on the third grown worker: that one exits, the rest go on. */
    ctp_options options;
    ctp_options_init(&options);
    options.threads = 2;
    options.max_threads = 8;
    options.initializer = fail_third_grown;
    CHECK_EQ(ctp_pool_create(&options, &pool), 0);
    gate g2;
    gate_init(&g2);
    for (int i = 0; i < 8; i++) CHECK_EQ(ctp_pool_submit(pool, gate_task, &g2), 0);
    /* The pool's 2, then grown workers until the third fails; the rest wait in the queue. */
    CHECK_EVENTUALLY(atomic_load(&g2.entered) >= 4 && stats_of(pool).grow_failures == 1);
    gate_open(&g2);
    CHECK_EVENTUALLY(atomic_load(&g2.left) == 8);
    CHECK_EQ(stats_of(pool).grow_failures, 1);
    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_join(pool), 0);
    CHECK_THREADS_BACK_TO(baseline);
    CHECK_EQ(stats_of(pool).completed, 8);
    ctp_pool_destroy(pool);
    gate_destroy(&g2);
    pass("growth failures: pthread_create failing and the 3rd grown worker's initializer failing are counted; "
         "every task still runs once");
}

/* ---- races ---- */

static atomic_llong ran, cancelled_calls;
static void counted(void *arg, int status) {
    (void)arg;
    if (status == 0) {
        if (atomic_load(&ran) % 7 == 0) sched_yield();
        atomic_fetch_add(&ran, 1);
    } else {
        atomic_fetch_add(&cancelled_calls, 1);
    }
}

/* Rounds of the race tests: 10,000, or CTP_RACE_ROUNDS (make sanitize-c runs fewer: the sanitizers
   slow each round tens of times). */
static int race_rounds(void) {
    const char *text = getenv("CTP_RACE_ROUNDS");
    int rounds = text != NULL ? atoi(text) : 0;
    return rounds > 0 ? rounds : 10000;
}

static void test_shutdown_races_while_growing(void) {
    const int ROUNDS = race_rounds();
    long long accepted = 0;
    for (int round = 0; round < ROUNDS; round++) {
        ctp_pool *pool = elastic_pool(1, 6, 200 * 1000);
        int submits = 20 + round % 50;
        for (int i = 0; i < submits; i++) {
            if (ctp_pool_submit(pool, counted, NULL) == 0) accepted++;
            if (i == submits / 2) {
                if (round % 3 == 0) (void)ctp_pool_terminate(pool); else if (round % 3 == 1) (void)ctp_pool_close(pool);
            }
        }
        if (round % 3 == 2) (void)ctp_pool_close(pool);
        CHECK_EQ(ctp_pool_join(pool), 0);
        ctp_stats stats = stats_of(pool);
        CHECK_EQ(stats.threads, 0);
        CHECK_EQ(stats.queued + stats.running, 0);
        ctp_pool_destroy(pool);
    }
    CHECK_EQ(atomic_load(&ran) + atomic_load(&cancelled_calls), accepted);
    CHECK_THREADS_BACK_TO(baseline);
    printf("ok   races: %d rounds of submit / close / terminate / join on 1...6 pools: %lld accepted, %lld ran, "
           "%lld cancelled, none lost or twice, no thread left\n",
           ROUNDS, accepted, (long long)atomic_load(&ran), (long long)atomic_load(&cancelled_calls));
}

/* The same from several threads at once: two submitters, a thread that closes or terminates, and the
   joiner, while workers grow (queued work), retire (a 20 us keep-alive, so they come and go within a
   round), and fail to grow: in some rounds a thread creation fails, in others the initializer of a
   grown worker fails. Per round, exact accounting (stats agree with the calls made) and no thread of
   the pool left after the join. */
typedef struct race_round {
    ctp_pool *pool;
    int submits;
    atomic_llong accepted;
    int stop_kind;     /* 0: terminate, 1: close */
    int stop_after;    /* submits the stopper waits for */
} race_round;

static atomic_int init_calls_this_round;
static int fail_some_grown(void *context, unsigned index) {
    (void)context;
    int call = atomic_fetch_add(&init_calls_this_round, 1);
    return index >= 1 && call % 3 == 2 ? 1 : 0; /* every third grown worker's initializer fails */
}

/* The highest worker index a task of the concurrent races ran on. */
static atomic_int highest_index;
static void counted_with_index(void *arg, int status) {
    int index = ctp_current_worker_index();
    int seen = atomic_load(&highest_index);
    while (index > seen && !atomic_compare_exchange_weak(&highest_index, &seen, index)) {}
    counted(arg, status);
}

static void *race_submitter(void *arg) {
    race_round *r = arg;
    for (int i = 0; i < r->submits; i++) {
        if (ctp_pool_submit(r->pool, counted_with_index, NULL) == 0) atomic_fetch_add(&r->accepted, 1);
        if (i % 8 == 0) sched_yield(); /* let workers park and retire between bursts */
    }
    return NULL;
}

static void *race_stopper(void *arg) {
    race_round *r = arg;
    while (atomic_load(&r->accepted) < r->stop_after) sched_yield();
    if (r->stop_kind == 0) (void)ctp_pool_terminate(r->pool); else (void)ctp_pool_close(r->pool);
    return NULL;
}

static void test_concurrent_shutdown_races(void) {
    const int ROUNDS = race_rounds();
    atomic_store(&ran, 0);
    atomic_store(&cancelled_calls, 0);
    long long accepted = 0, grow_failures = 0, retired = 0;
    for (int round = 0; round < ROUNDS; round++) {
        ctp_options options;
        ctp_options_init(&options);
        options.threads = 1;
        options.max_threads = 6;
        options.keep_alive_ns = 20 * 1000;
        if (round % 4 == 1) options.initializer = fail_some_grown;
        atomic_store(&init_calls_this_round, 0);
        race_round r = { .submits = 10 + round % 40, .stop_kind = round % 2, .stop_after = round % 30 };
        atomic_init(&r.accepted, 0);
        CHECK_EQ(ctp_pool_create(&options, &r.pool), 0);
        if (round % 4 == 2) ctp_fault_thread_countdown = 1 + (unsigned)(round / 4) % 3; /* a growth fails */
        pthread_t submitters[2], stopper;
        CHECK_EQ(pthread_create(&submitters[0], NULL, race_submitter, &r), 0);
        CHECK_EQ(pthread_create(&submitters[1], NULL, race_submitter, &r), 0);
        CHECK_EQ(pthread_create(&stopper, NULL, race_stopper, &r), 0);
        /* Join as soon as the pool stops running, while submitters may still be submitting. */
        int rc;
        while ((rc = ctp_pool_join(r.pool)) == CTP_ERUNNING) sched_yield();
        CHECK_EQ(rc, 0);
        CHECK_EQ(pthread_join(submitters[0], NULL), 0);
        CHECK_EQ(pthread_join(submitters[1], NULL), 0);
        CHECK_EQ(pthread_join(stopper, NULL), 0);
        ctp_fault_thread_countdown = 0;
        ctp_stats stats = stats_of(r.pool);
        CHECK_EQ(stats.threads, 0);
        CHECK_EQ(stats.queued + stats.running, 0);
        CHECK_EQ(stats.completed + stats.cancelled, atomic_load(&r.accepted));
        CHECK(stats.threads_started >= 1);
        CHECK(stats.peak_threads <= 6); /* a retiring worker counts until it has left: none starts in its place */
        /* Every thread the pool started has been joined (a joined thread may linger in /proc for a
           moment after its exit: hence a bounded wait, not an exact read). */
        CHECK_THREADS_BACK_TO(baseline);
        accepted += atomic_load(&r.accepted);
        grow_failures += (long long)stats.grow_failures;
        retired += (long long)stats.threads_retired;
        ctp_pool_destroy(r.pool);
    }
    CHECK_EQ(atomic_load(&ran) + atomic_load(&cancelled_calls), accepted);
    CHECK(grow_failures > 0 && retired > 0);
    CHECK(atomic_load(&highest_index) <= 5); /* worker indices stay in 0..<max_threads */
    printf("ok   concurrent races: %d rounds of 2 submitters + close/terminate + join on 1...6 pools, workers "
           "retiring after 20 us and failing to grow: %lld accepted, %lld ran, %lld cancelled, %lld growth failures, "
           "%lld retired; none lost or twice, no thread left after any join\n",
           ROUNDS, accepted, (long long)atomic_load(&ran), (long long)atomic_load(&cancelled_calls), grow_failures,
           retired);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Warm up: a sanitizer runtime starts a thread of its own with the first pthread_create. */
    ctp_pool_destroy(elastic_pool(1, 1, 0));
    baseline = process_threads();
    test_grows_for_queued_work_and_retires();
    test_blocked_worker_is_stood_in_for();
    test_every_worker_blocked();
    test_growth_failures();
    test_shutdown_races_while_growing();
    test_concurrent_shutdown_races();
    printf("test_elastic: all passed\n");
    return 0;
}
