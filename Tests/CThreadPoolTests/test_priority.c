/* Tests for task priorities: ctp_pool_submit_priority and the queue's lanes (queue.h, queue.c).
 *
 * Most tests hold the pool's one worker with a task waiting on a semaphore, queue tasks of mixed
 * priorities behind it, let it go, and check the order in which the tasks started: by lane (high,
 * default, utility, background), first-in, first-out within a lane, except where the aging rule
 * (CTP_PRIORITY_PASS_LIMIT passes in a row, then the passed lane's turn) says otherwise. Covered:
 *   - the scale: which lane each priority goes to;
 *   - the queue alone: take order, aging, the starvation bounds CThreadPool.h states (under random
 *     streams), take_all order, counts and fullness across lanes;
 *   - through a pool: start order, aging with the lanes full and under a stream of resubmitted high
 *     tasks, ctp_pool_help, terminate (every lane dropped, exact counts), a bounded queue whose
 *     capacity counts every lane, close (every lane still runs), errors, and exact accounting with
 *     several submitters and workers.
 *
 * Prints one line per test; exits 1 on the first failed check. Waits are bounded.
 */
#define _GNU_SOURCE
#include "queue.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "test_support.h"
#include "numbered_tasks.h"

#define PASS(name) printf("ok   %s\n", name)

enum { PASSES = CTP_PRIORITY_PASS_LIMIT };

/* Submitted with ctp_pool_submit instead of a priority. */
#define PLAIN INT_MIN

static ctp_stats stats_of(ctp_pool *pool) {
    ctp_stats stats;
    CHECK_EQ(ctp_pool_stats(pool, &stats), 0);
    return stats;
}

static ctp_pool *make_pool(unsigned threads, size_t queue_capacity) {
    ctp_options options;
    ctp_options_init(&options);
    options.threads = threads;
    options.queue_capacity = queue_capacity;
    ctp_pool *pool = NULL;
    CHECK_EQ(ctp_pool_create(&options, &pool), 0);
    return pool;
}

static int submit_with(ctp_pool *pool, ctp_task_fn fn, void *arg, int priority) {
    return priority == PLAIN ? ctp_pool_submit(pool, fn, arg) : ctp_pool_submit_priority(pool, fn, arg, priority);
}

/* ---- the start log: which task started (or was cancelled) when ----------------------------- */

enum { LOG_MAX = 4096 };

typedef struct task_log {
    atomic_size_t count;
    int ids[LOG_MAX];
} task_log;

static task_log g_started, g_cancelled;

static void log_reset(task_log *log) {
    atomic_store(&log->count, 0);
    memset(log->ids, 0xff, sizeof log->ids);
}

static void log_add(task_log *log, int id) {
    size_t i = atomic_fetch_add(&log->count, 1);
    CHECK(i < LOG_MAX);
    log->ids[i] = id;
}

/* Task ids: a lane letter and a number, "H3" = HIGH + 3. */
enum { HIGH = 4000, DEFAULT = 3000, UTILITY = 2000, BACKGROUND = 1000 };

static void print_ids(const char *label, const int *ids, size_t n) {
    fflush(stdout);
    fprintf(stderr, "%s:", label);
    for (size_t i = 0; i < n; i++) {
        int id = ids[i];
        char lane = id >= HIGH ? 'H' : id >= DEFAULT ? 'D' : id >= UTILITY ? 'U' : id >= BACKGROUND ? 'B' : '?';
        fprintf(stderr, " %c%d", lane, id % 1000);
    }
    fprintf(stderr, "\n");
}

/* Checks that the log holds exactly `expected`, in that order. */
static void check_log(const task_log *log, const int *expected, size_t n) {
    size_t count = atomic_load(&log->count);
    bool same = count == n;
    for (size_t i = 0; same && i < n; i++) same = log->ids[i] == expected[i];
    if (!same) {
        print_ids("expected", expected, n);
        print_ids("actual  ", log->ids, count < LOG_MAX ? count : LOG_MAX);
    }
    CHECK(same);
}

/* Logs its id (the argument) in g_started when it runs, in g_cancelled when terminate drops it. */
static void logged_task(void *arg, int status) {
    int id = (int)(intptr_t)arg;
    if (status == 0) log_add(&g_started, id);
    else if (status == CTP_ECANCELED) log_add(&g_cancelled, id);
    else CHECK(!"unexpected status");
}

static void *id_arg(int id) { return (void *)(intptr_t)id; }

/* ---- holding the one worker -------------------------------------------------------------- */

static sem_t g_release;
static atomic_int g_holding;

/* Occupies its worker until release_worker(). */
static void hold_task(void *arg, int status) {
    (void)arg;
    if (status != 0) return;
    atomic_store(&g_holding, 1);
    struct timespec deadline = deadline_in(3 * WAIT_SECONDS);
    int rc;
    while ((rc = sem_timedwait(&g_release, &deadline)) != 0 && errno == EINTR) {}
    CHECK(rc == 0);
    atomic_store(&g_holding, 0);
}

/* Returns once the pool's worker runs hold_task: what is submitted next is queued behind it. */
static void hold_worker(ctp_pool *pool) {
    CHECK(sem_init(&g_release, 0, 0) == 0);
    atomic_store(&g_holding, 0);
    CHECK_EQ(ctp_pool_submit(pool, hold_task, NULL), 0);
    CHECK_EVENTUALLY(atomic_load(&g_holding) == 1);
    CHECK_EQ(stats_of(pool).queued, 0);
}

static void release_worker(void) {
    CHECK(sem_post(&g_release) == 0);
}

/* Keeps a task running long enough (about 20 us) that the worker's learned batch stays at one task:
   each task is then taken on its own, after the one before it has run (see worker.c's batch_size). */
static void busy_wait_20us(void) {
    double until = now_seconds() + 20e-6;
    while (now_seconds() < until) {}
}

/* ---- the scale ----------------------------------------------------------------------------- */

static void test_scale(void) {
    static const struct { int priority; enum ctp_lane lane; } cases[] = {
        { CTP_PRIORITY_UNSPECIFIED, CTP_LANE_DEFAULT }, { 1, CTP_LANE_BACKGROUND },
        { CTP_PRIORITY_BACKGROUND, CTP_LANE_BACKGROUND }, { 16, CTP_LANE_BACKGROUND },
        { CTP_PRIORITY_UTILITY, CTP_LANE_UTILITY }, { 20, CTP_LANE_UTILITY },
        { CTP_PRIORITY_DEFAULT, CTP_LANE_DEFAULT }, { 24, CTP_LANE_DEFAULT },
        { CTP_PRIORITY_HIGH, CTP_LANE_HIGH }, { 33, CTP_LANE_HIGH }, { 255, CTP_LANE_HIGH }, { INT_MAX, CTP_LANE_HIGH },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) CHECK_EQ(ctp_lane_of(cases[i].priority), cases[i].lane);
    /* Swift's TaskPriority raw values. */
    CHECK_EQ(CTP_PRIORITY_BACKGROUND, 9);
    CHECK_EQ(CTP_PRIORITY_UTILITY, 17);
    CHECK_EQ(CTP_PRIORITY_DEFAULT, 21);
    CHECK_EQ(CTP_PRIORITY_HIGH, 25);
    PASS("scale: 0 and 21-24 default, 1-16 background, 17-20 utility, 25 and above high");
}

/* ---- the queue alone ----------------------------------------------------------------------- */

/* Takes everything, `batch` at a time, and checks the tasks against `expected` task numbers. */
static void take_and_check(ctp_queue *queue, const size_t *expected, size_t n, size_t batch) {
    ctp_task out[64];
    size_t done = 0;
    while (done < n) {
        size_t taken = ctp_queue_take(queue, out, batch);
        CHECK(taken > 0 && taken <= batch);
        for (size_t i = 0; i < taken; i++) check_task_n(out[i], expected[done + i]);
        done += taken;
    }
    CHECK_EQ(ctp_queue_count(queue), 0);
    CHECK_EQ(ctp_queue_take(queue, out, batch), 0);
}

static void test_queue_lanes(void) {
    for (size_t batch = 1; batch <= 32; batch += 31) {
        /* Mixed pushes, tasks numbered by lane: high 100+, default 200+ (inbox and ring), utility
           300+, background 400+. */
        ctp_queue queue;
        CHECK_EQ(ctp_queue_init(&queue, 0), 0);
        CHECK_EQ(ctp_queue_push_prioritized(&queue, task_n(400), CTP_LANE_BACKGROUND), 0);
        CHECK(ctp_queue_try_push(&queue, task_n(200)));
        CHECK_EQ(ctp_queue_push_prioritized(&queue, task_n(300), CTP_LANE_UTILITY), 0);
        CHECK_EQ(ctp_queue_push_prioritized(&queue, task_n(100), CTP_LANE_HIGH), 0);
        CHECK_EQ(ctp_queue_push(&queue, task_n(201)), 0); /* drains 200 into the ring first */
        CHECK(ctp_queue_try_push(&queue, task_n(202)));
        CHECK_EQ(ctp_queue_push_lane(&queue, task_n(101), CTP_LANE_HIGH), 0);
        CHECK_EQ(ctp_queue_push_prioritized(&queue, task_n(401), CTP_LANE_BACKGROUND), 0);
        CHECK_EQ(ctp_queue_push_lane(&queue, task_n(203), CTP_LANE_DEFAULT), 0);
        CHECK_EQ(ctp_queue_count(&queue), 9);
        CHECK_EQ(queue.prioritized, 5);
        static const size_t order[] = { 100, 101, 200, 201, 202, 203, 300, 400, 401 };
        take_and_check(&queue, order, 9, batch);
        ctp_queue_free(&queue);

        /* Aging: 2 x PASSES + 8 high, 2 default, 1 background. After PASSES high tasks both lower
           lanes are due; the higher of them goes first, then the other, then PASSES more high. */
        CHECK_EQ(ctp_queue_init(&queue, 0), 0);
        size_t expected[64], n = 0;
        for (size_t i = 0; i < 2 * PASSES + 8; i++) CHECK_EQ(ctp_queue_push_prioritized(&queue, task_n(100 + i), CTP_LANE_HIGH), 0);
        CHECK(ctp_queue_try_push(&queue, task_n(200)));
        CHECK(ctp_queue_try_push(&queue, task_n(201)));
        CHECK_EQ(ctp_queue_push_prioritized(&queue, task_n(400), CTP_LANE_BACKGROUND), 0);
        for (size_t i = 0; i < PASSES; i++) expected[n++] = 100 + i;
        expected[n++] = 200;
        expected[n++] = 400;
        for (size_t i = PASSES; i < 2 * PASSES; i++) expected[n++] = 100 + i;
        expected[n++] = 201;
        for (size_t i = 2 * PASSES; i < 2 * PASSES + 8; i++) expected[n++] = 100 + i;
        take_and_check(&queue, expected, n, batch);

        /* The count of passes starts again once a lane's task is taken, and for an empty lane: a
           default task queued after PASSES - 1 high tasks went by waits PASSES more. */
        for (size_t i = 0; i < 2 * PASSES; i++) CHECK_EQ(ctp_queue_push_prioritized(&queue, task_n(100 + i), CTP_LANE_HIGH), 0);
        ctp_task out[64];
        CHECK_EQ(ctp_queue_take(&queue, out, PASSES - 1), PASSES - 1);
        CHECK(ctp_queue_try_push(&queue, task_n(200)));
        n = 0;
        for (size_t i = PASSES - 1; i < 2 * PASSES - 1; i++) expected[n++] = 100 + i;
        expected[n++] = 200;
        expected[n++] = 100 + 2 * PASSES - 1;
        take_and_check(&queue, expected, n, batch);
        ctp_queue_free(&queue);
    }

    /* take_all: lane by lane from the highest, FIFO within each; the default lane's ring, then its
       inbox. Into an empty list (which takes over the first lane's storage) and into a list that
       already holds tasks. */
    for (int nonempty = 0; nonempty < 2; nonempty++) {
        ctp_queue queue;
        CHECK_EQ(ctp_queue_init(&queue, 0), 0);
        ctp_ring list;
        CHECK_EQ(ctp_ring_init(&list, 0), 0);
        if (nonempty) CHECK_EQ(ctp_ring_push(&list, task_n(0)), 0);
        CHECK_EQ(ctp_queue_push_prioritized(&queue, task_n(400), CTP_LANE_BACKGROUND), 0);
        CHECK(ctp_queue_try_push(&queue, task_n(200)));
        CHECK_EQ(ctp_queue_push_prioritized(&queue, task_n(100), CTP_LANE_HIGH), 0);
        CHECK_EQ(ctp_queue_push(&queue, task_n(201)), 0);
        CHECK(ctp_queue_try_push(&queue, task_n(202)));
        CHECK_EQ(ctp_queue_push_prioritized(&queue, task_n(300), CTP_LANE_UTILITY), 0);
        CHECK_EQ(ctp_queue_push_prioritized(&queue, task_n(101), CTP_LANE_HIGH), 0);
        ctp_queue_close(&queue);
        CHECK_EQ(ctp_queue_take_all(&queue, &list), 0);
        CHECK_EQ(ctp_queue_count(&queue), 0);
        CHECK_EQ(queue.prioritized, 0);
        static const size_t order[] = { 100, 101, 200, 201, 202, 300, 400 };
        CHECK_EQ(list.count, 7 + (size_t)nonempty);
        ctp_task task;
        if (nonempty) {
            CHECK_EQ(ctp_ring_pop(&list, &task, 1), 1);
            check_task_n(task, 0);
        }
        for (size_t i = 0; i < 7; i++) {
            CHECK_EQ(ctp_ring_pop(&list, &task, 1), 1);
            check_task_n(task, order[i]);
        }
        ctp_ring_free(&list);
        ctp_queue_free(&queue);
    }

    /* A bounded queue's limit counts every lane; pushes after close fail in every lane. */
    ctp_queue queue;
    CHECK_EQ(ctp_queue_init(&queue, 3), 0);
    CHECK(!ctp_queue_try_push(&queue, task_n(200))); /* its inbox is off */
    CHECK_EQ(ctp_queue_push_prioritized(&queue, task_n(100), CTP_LANE_HIGH), 0);
    CHECK_EQ(ctp_queue_push(&queue, task_n(200)), 0);
    CHECK(!ctp_queue_full(&queue));
    CHECK_EQ(ctp_queue_push_many(&queue, task_n(201), 2), CTP_EAGAIN);
    CHECK_EQ(ctp_queue_push_prioritized(&queue, task_n(400), CTP_LANE_BACKGROUND), 0);
    CHECK(ctp_queue_full(&queue));
    CHECK_EQ(ctp_queue_count(&queue), 3);
    ctp_task task;
    CHECK_EQ(ctp_queue_take(&queue, &task, 1), 1);
    check_task_n(task, 100);
    CHECK(!ctp_queue_full(&queue));
    CHECK_EQ(ctp_queue_push_many(&queue, task_n(201), 1), 0);
    CHECK(ctp_queue_full(&queue));
    ctp_queue_close(&queue);
    CHECK_EQ(ctp_queue_push_prioritized(&queue, task_n(101), CTP_LANE_HIGH), CTP_ECLOSED);
    CHECK_EQ(ctp_queue_push_lane(&queue, task_n(202), CTP_LANE_DEFAULT), CTP_ECLOSED);
    static const size_t rest[] = { 200, 201, 400 };
    take_and_check(&queue, rest, 3, 32);
    ctp_queue_free(&queue);
    PASS("queue: lanes taken highest first, FIFO within; aging after PASS_LIMIT passes; take_all by "
         "lane; a bounded queue counts every lane");
}

static unsigned next_random(unsigned *state) {
    *state = *state * 1103515245u + 12345u;
    return (*state >> 16) & 0x7fff;
}

static size_t lane_size(ctp_queue *queue, int lane) {
    return lane == CTP_LANE_DEFAULT ? queue->ring.count + ctp_inbox_count(&queue->inbox) : queue->lanes[lane].count;
}

static void test_queue_aging_bounds(void) {
    /* The bounds CThreadPool.h states, under random arrivals at random rates that change as it goes
       (a lane's stream may stop, start, or flood): while a lane has tasks waiting, at most 16 tasks
       of higher lanes start before its oldest (default), 17 (utility) or 18 (background), and at most
       19 tasks of any other lane. Worst cases found: exactly those. */
    static const size_t max_higher[CTP_LANES] = { PASSES + 2, PASSES + 1, PASSES, 0 };
    size_t worst_higher[CTP_LANES] = { 0 }, worst_other[CTP_LANES] = { 0 };
    unsigned seed = 7;
    for (int round = 0; round < 300; round++) {
        ctp_queue queue;
        CHECK_EQ(ctp_queue_init(&queue, 0), 0);
        size_t higher[CTP_LANES] = { 0 }, other[CTP_LANES] = { 0 };
        unsigned rate[CTP_LANES];
        for (int lane = 0; lane < CTP_LANES; lane++) rate[lane] = next_random(&seed) % 101;
        for (int step = 0; step < 2000; step++) {
            for (int lane = 0; lane < CTP_LANES; lane++) {
                if (next_random(&seed) % 100 >= rate[lane]) continue;
                ctp_task task = { dummy_fn_a, (void *)(uintptr_t)lane };
                if (lane != CTP_LANE_DEFAULT) CHECK_EQ(ctp_queue_push_prioritized(&queue, task, (enum ctp_lane)lane), 0);
                else if (!(next_random(&seed) & 1) || !ctp_queue_try_push(&queue, task)) CHECK_EQ(ctp_queue_push(&queue, task), 0);
            }
            if (next_random(&seed) % 100 < 30) rate[next_random(&seed) % CTP_LANES] = next_random(&seed) % 101;
            ctp_task task;
            if (ctp_queue_take(&queue, &task, 1) != 1) continue;
            int started = (int)(uintptr_t)task.arg;
            for (int lane = 0; lane < CTP_LANES; lane++) {
                if (lane == started || lane_size(&queue, lane) == 0) {
                    higher[lane] = other[lane] = 0; /* its oldest started, or none waits */
                    continue;
                }
                other[lane]++;
                if (started > lane) higher[lane]++;
                if (higher[lane] > worst_higher[lane]) worst_higher[lane] = higher[lane];
                if (other[lane] > worst_other[lane]) worst_other[lane] = other[lane];
            }
        }
        ctp_queue_free(&queue);
    }
    for (int lane = 0; lane < CTP_LANES; lane++) {
        CHECK(worst_higher[lane] <= max_higher[lane]);
        CHECK(worst_other[lane] <= PASSES + 3);
    }
    CHECK_EQ(worst_higher[CTP_LANE_BACKGROUND], PASSES + 2); /* the search reaches the worst case */
    PASS("queue aging bounds: under random streams a waiting lane's oldest task starts after at most "
         "16/17/18 higher tasks (default/utility/background) and 19 others");
}

/* ---- through a pool ------------------------------------------------------------------------ */

/* One lane's tasks are numbered in submission order; this gives the lane's id base of a priority. */
static int lane_base(int priority) {
    if (priority == PLAIN || priority == 0) return DEFAULT;
    if (priority >= 25) return HIGH;
    if (priority >= 21) return DEFAULT;
    if (priority >= 17) return UTILITY;
    return BACKGROUND;
}

static void test_start_order(void) {
    /* Submitted interleaved: every lane, at both ends of its range, plain submits and priority 0.
       Fewer than CTP_PRIORITY_PASS_LIMIT tasks go ahead of any lane, so that aging plays no part. */
    static const int priorities[] = { 9, PLAIN, 25, 17, 0, 1, 33, 21, 20, 16, 24, 255, PLAIN, 18, 22 };
    enum { TASKS = sizeof priorities / sizeof priorities[0] };
    ctp_pool *pool = make_pool(1, 0);
    log_reset(&g_started);
    hold_worker(pool);
    int submitted[TASKS];
    int next_in_lane[5] = { 0 };
    for (int i = 0; i < TASKS; i++) {
        int priority = priorities[i];
        int base = lane_base(priority);
        int id = base + next_in_lane[base / 1000]++;
        submitted[i] = id;
        CHECK_EQ(submit_with(pool, logged_task, id_arg(id), priority), 0);
    }
    CHECK_EQ(stats_of(pool).queued, TASKS); /* every lane counts */
    CHECK_EQ(ctp_pool_close(pool), 0);        /* queued tasks of every lane still run */
    release_worker();
    CHECK_EQ(ctp_pool_join(pool), 0);
    /* Expected: by lane, highest first, in submission order within each (a stable sort). */
    int expected[TASKS], n = 0;
    for (int base = HIGH; base >= BACKGROUND; base -= 1000) {
        for (int i = 0; i < TASKS; i++) if (submitted[i] / 1000 * 1000 == base) expected[n++] = submitted[i];
    }
    CHECK_EQ(n, TASKS);
    check_log(&g_started, expected, TASKS);
    ctp_stats stats = stats_of(pool);
    CHECK_EQ(stats.completed, TASKS + 1);
    CHECK_EQ(stats.queued, 0);
    ctp_pool_destroy(pool);
    sem_destroy(&g_release);
    PASS("pool: 15 tasks of mixed priorities behind a held worker start by lane, FIFO within a lane, "
         "after close too");
}

static void test_aging_with_lanes_full(void) {
    /* As the queue test, through a pool: the worker takes them in batches, in the aging order. */
    enum { HIGHS = 2 * PASSES + 8 };
    ctp_pool *pool = make_pool(1, 0);
    log_reset(&g_started);
    hold_worker(pool);
    CHECK_EQ(ctp_pool_submit_priority(pool, logged_task, id_arg(BACKGROUND), CTP_PRIORITY_BACKGROUND), 0);
    for (int i = 0; i < HIGHS; i++) CHECK_EQ(ctp_pool_submit_priority(pool, logged_task, id_arg(HIGH + i), CTP_PRIORITY_HIGH), 0);
    CHECK_EQ(ctp_pool_submit(pool, logged_task, id_arg(DEFAULT)), 0);
    CHECK_EQ(ctp_pool_submit(pool, logged_task, id_arg(DEFAULT + 1)), 0);
    int expected[HIGHS + 3], n = 0;
    for (int i = 0; i < PASSES; i++) expected[n++] = HIGH + i;
    expected[n++] = DEFAULT;
    expected[n++] = BACKGROUND;
    for (int i = PASSES; i < 2 * PASSES; i++) expected[n++] = HIGH + i;
    expected[n++] = DEFAULT + 1;
    for (int i = 2 * PASSES; i < HIGHS; i++) expected[n++] = HIGH + i;
    release_worker();
    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_join(pool), 0);
    check_log(&g_started, expected, n);
    ctp_pool_destroy(pool);
    sem_destroy(&g_release);
    PASS("pool aging: after PASS_LIMIT high tasks a waiting default, then background task starts");
}

/* A high task that submits another one (while fewer than g_stream_total were submitted), so that
   the high lane never runs dry: a stream of higher work. */
static ctp_pool *g_stream_pool;
static atomic_int g_stream_submitted;
enum { STREAM_TOTAL = 200, STREAM_LOWS = 5 };

static void stream_task(void *arg, int status) {
    CHECK_EQ(status, 0);
    log_add(&g_started, (int)(intptr_t)arg);
    int next = atomic_fetch_add(&g_stream_submitted, 1);
    if (next < STREAM_TOTAL) CHECK_EQ(ctp_pool_submit_priority(g_stream_pool, stream_task, id_arg(HIGH + next), CTP_PRIORITY_HIGH), 0);
    busy_wait_20us();
}

static void slow_logged_task(void *arg, int status) {
    logged_task(arg, status);
    busy_wait_20us();
}

static void test_aging_under_stream(void) {
    /* Background tasks queued behind a held worker, then two high tasks that each submit the next
       as they start: whenever the worker takes a task, two high tasks are queued. Without aging the
       background tasks would wait for the whole stream; with it, each starts after exactly
       PASS_LIMIT high tasks. Every task runs about 20 us, so the worker takes one at a time. */
    ctp_pool *pool = make_pool(1, 0);
    g_stream_pool = pool;
    log_reset(&g_started);
    hold_worker(pool);
    for (int i = 0; i < STREAM_LOWS; i++) {
        CHECK_EQ(ctp_pool_submit_priority(pool, slow_logged_task, id_arg(BACKGROUND + i), CTP_PRIORITY_BACKGROUND), 0);
    }
    atomic_store(&g_stream_submitted, 2);
    CHECK_EQ(ctp_pool_submit_priority(pool, stream_task, id_arg(HIGH + 0), CTP_PRIORITY_HIGH), 0);
    CHECK_EQ(ctp_pool_submit_priority(pool, stream_task, id_arg(HIGH + 1), CTP_PRIORITY_HIGH), 0);
    release_worker();
    CHECK_EVENTUALLY(atomic_load(&g_started.count) == STREAM_TOTAL + STREAM_LOWS);
    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_join(pool), 0);
    int expected[STREAM_TOTAL + STREAM_LOWS], n = 0, high = 0;
    for (int low = 0; low < STREAM_LOWS; low++) {
        for (int i = 0; i < PASSES; i++) expected[n++] = HIGH + high++;
        expected[n++] = BACKGROUND + low;
    }
    while (high < STREAM_TOTAL) expected[n++] = HIGH + high++;
    check_log(&g_started, expected, n);
    ctp_pool_destroy(pool);
    sem_destroy(&g_release);
    PASS("pool aging: under a stream of high tasks, a background task starts after every PASS_LIMIT");
}

/* ---- ctp_pool_help ------------------------------------------------------------------------- */

static atomic_int g_helper_may_go, g_helper_helped;

/* Waits until the test has queued its tasks, then runs them all with ctp_pool_help. */
static void helping_task(void *arg, int status) {
    ctp_pool *pool = arg;
    CHECK_EQ(status, 0);
    atomic_store(&g_holding, 1);
    CHECK_EVENTUALLY(atomic_load(&g_helper_may_go) == 1);
    int helped = 0;
    while (ctp_pool_help(pool) == 1) helped++;
    atomic_store(&g_helper_helped, helped);
}

static void test_help(void) {
    ctp_pool *pool = make_pool(1, 0);
    log_reset(&g_started);
    atomic_store(&g_helper_may_go, 0);
    atomic_store(&g_holding, 0);
    CHECK_EQ(ctp_pool_submit(pool, helping_task, pool), 0);
    CHECK_EVENTUALLY(atomic_load(&g_holding) == 1);
    CHECK_EQ(ctp_pool_submit_priority(pool, logged_task, id_arg(BACKGROUND), CTP_PRIORITY_BACKGROUND), 0);
    CHECK_EQ(ctp_pool_submit(pool, logged_task, id_arg(DEFAULT)), 0);
    CHECK_EQ(ctp_pool_submit_priority(pool, logged_task, id_arg(UTILITY), CTP_PRIORITY_UTILITY), 0);
    CHECK_EQ(ctp_pool_submit_priority(pool, logged_task, id_arg(HIGH), CTP_PRIORITY_HIGH), 0);
    CHECK_EQ(ctp_pool_submit_priority(pool, logged_task, id_arg(DEFAULT + 1), CTP_PRIORITY_DEFAULT), 0);
    atomic_store(&g_helper_may_go, 1);
    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_join(pool), 0);
    CHECK_EQ(atomic_load(&g_helper_helped), 5);
    static const int expected[] = { HIGH, DEFAULT, DEFAULT + 1, UTILITY, BACKGROUND };
    check_log(&g_started, expected, 5);
    ctp_pool_destroy(pool);
    PASS("help: a waiting worker runs the queued tasks highest lane first");
}

/* ---- terminate ------------------------------------------------------------------------------ */

static void test_terminate(void) {
    /* 3 high, 4 default (plain submits through the inbox and priority 21 under the lock), 5 utility,
       6 background: terminate calls each once with CTP_ECANCELED, in lane order, before it returns. */
    static const struct { int priority, base, count; } lanes[] = {
        { CTP_PRIORITY_BACKGROUND, BACKGROUND, 6 }, { CTP_PRIORITY_HIGH, HIGH, 3 },
        { PLAIN, DEFAULT, 2 }, { CTP_PRIORITY_UTILITY, UTILITY, 5 }, { CTP_PRIORITY_DEFAULT, DEFAULT + 2, 2 },
    };
    ctp_pool *pool = make_pool(1, 0);
    log_reset(&g_started);
    log_reset(&g_cancelled);
    hold_worker(pool);
    int total = 0;
    for (size_t l = 0; l < sizeof lanes / sizeof lanes[0]; l++) {
        for (int i = 0; i < lanes[l].count; i++, total++) {
            CHECK_EQ(submit_with(pool, logged_task, id_arg(lanes[l].base + i), lanes[l].priority), 0);
        }
    }
    CHECK_EQ(total, 18);
    CHECK_EQ(stats_of(pool).queued, 18);
    CHECK_EQ(ctp_pool_terminate(pool), 0);
    static const int expected[] = { HIGH, HIGH + 1, HIGH + 2, DEFAULT, DEFAULT + 1, DEFAULT + 2, DEFAULT + 3,
                                    UTILITY, UTILITY + 1, UTILITY + 2, UTILITY + 3, UTILITY + 4,
                                    BACKGROUND, BACKGROUND + 1, BACKGROUND + 2, BACKGROUND + 3, BACKGROUND + 4,
                                    BACKGROUND + 5 };
    check_log(&g_cancelled, expected, 18);
    ctp_stats stats = stats_of(pool);
    CHECK_EQ(stats.queued, 0);
    CHECK_EQ(stats.cancelled, 18);
    CHECK_EQ(stats.running, 1);
    CHECK_EQ(ctp_pool_submit_priority(pool, logged_task, id_arg(HIGH + 9), CTP_PRIORITY_HIGH), CTP_ECLOSED);
    CHECK_EQ(ctp_pool_submit_priority(pool, logged_task, id_arg(DEFAULT + 9), CTP_PRIORITY_DEFAULT), CTP_ECLOSED);
    release_worker();
    CHECK_EQ(ctp_pool_join(pool), 0);
    stats = stats_of(pool);
    CHECK_EQ(stats.completed, 1); /* the held task */
    CHECK_EQ(stats.cancelled, 18);
    CHECK_EQ(atomic_load(&g_started.count), 0);
    CHECK_EQ(atomic_load(&g_cancelled.count), 18);
    ctp_pool_destroy(pool);
    sem_destroy(&g_release);
    PASS("terminate: every lane's tasks cancelled once, in lane order, with exact counts");
}

/* ---- a bounded queue ----------------------------------------------------------------------- */

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

typedef struct blocked_submit {
    ctp_pool *pool;
    atomic_int tid, returned, rc;
    pthread_t thread;
} blocked_submit;

static blocked_submit g_blocked;

static void *blocked_submit_thread(void *arg) {
    blocked_submit *b = arg;
    atomic_store(&b->tid, (int)gettid());
    int rc = ctp_pool_submit_priority(b->pool, logged_task, id_arg(HIGH + 1), CTP_PRIORITY_HIGH);
    atomic_store(&b->rc, rc);
    atomic_store(&b->returned, 1);
    return NULL;
}

/* The first task to start once the worker is released: waits until the blocked submit got its room
   (which this task's start made), so that the order of the rest does not depend on timing. */
static void waits_for_blocked_submit(void *arg, int status) {
    logged_task(arg, status);
    CHECK_EVENTUALLY(atomic_load(&g_blocked.returned) == 1);
}

static void test_bounded(void) {
    ctp_pool *pool = make_pool(1, 4);
    log_reset(&g_started);
    hold_worker(pool);
    CHECK_EQ(ctp_pool_try_submit(pool, logged_task, id_arg(DEFAULT)), 0);
    CHECK_EQ(ctp_pool_submit_priority(pool, logged_task, id_arg(BACKGROUND), CTP_PRIORITY_BACKGROUND), 0);
    CHECK_EQ(ctp_pool_submit_priority(pool, waits_for_blocked_submit, id_arg(HIGH), CTP_PRIORITY_HIGH), 0);
    CHECK_EQ(ctp_pool_submit_priority(pool, logged_task, id_arg(UTILITY), CTP_PRIORITY_UTILITY), 0);
    /* Full: 4 tasks in 4 lanes. */
    CHECK_EQ(stats_of(pool).queued, 4);
    CHECK_EQ(ctp_pool_try_submit(pool, logged_task, id_arg(DEFAULT + 9)), CTP_EAGAIN);
    CHECK_EQ(ctp_pool_submit_many(pool, logged_task, id_arg(DEFAULT + 9), 1), CTP_EAGAIN);
    /* A priority submit waits for room like any other. */
    g_blocked.pool = pool;
    atomic_store(&g_blocked.tid, 0);
    atomic_store(&g_blocked.returned, 0);
    atomic_store(&g_blocked.rc, 1);
    CHECK(pthread_create(&g_blocked.thread, NULL, blocked_submit_thread, &g_blocked) == 0);
    CHECK_EVENTUALLY(atomic_load(&g_blocked.tid) != 0);
    CHECK_EVENTUALLY(atomic_load(&g_blocked.returned) == 1 || thread_state((pid_t)atomic_load(&g_blocked.tid)) == 'S');
    double until = now_seconds() + 0.05;
    while (now_seconds() < until) {
        CHECK_EQ(atomic_load(&g_blocked.returned), 0);
        poll_pause();
    }
    CHECK_EQ(stats_of(pool).queued, 4);
    release_worker();
    CHECK_EVENTUALLY(atomic_load(&g_blocked.returned) == 1);
    CHECK_EQ(atomic_load(&g_blocked.rc), 0);
    CHECK(pthread_join(g_blocked.thread, NULL) == 0);
    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_join(pool), 0);
    static const int expected[] = { HIGH, HIGH + 1, DEFAULT, UTILITY, BACKGROUND };
    check_log(&g_started, expected, 5);
    CHECK_EQ(stats_of(pool).completed, 6);
    ctp_pool_destroy(pool);
    sem_destroy(&g_release);
    PASS("bounded queue: the capacity counts every lane; a priority submit waits for room");
}

/* ---- errors --------------------------------------------------------------------------------- */

static void test_errors(void) {
    ctp_pool *pool = make_pool(1, 0);
    CHECK_EQ(ctp_pool_submit_priority(NULL, logged_task, NULL, CTP_PRIORITY_HIGH), CTP_EINVAL);
    CHECK_EQ(ctp_pool_submit_priority(NULL, logged_task, NULL, CTP_PRIORITY_DEFAULT), CTP_EINVAL);
    CHECK_EQ(ctp_pool_submit_priority(pool, NULL, NULL, CTP_PRIORITY_BACKGROUND), CTP_EINVAL);
    CHECK_EQ(ctp_pool_submit_priority(pool, NULL, NULL, CTP_PRIORITY_DEFAULT), CTP_EINVAL);
    CHECK_EQ(ctp_pool_submit_priority(pool, logged_task, NULL, -1), CTP_EINVAL);
    CHECK_EQ(ctp_pool_submit_priority(pool, logged_task, NULL, INT_MIN), CTP_EINVAL);
    CHECK_EQ(ctp_pool_close(pool), 0);
    for (int priority = 0; priority <= 40; priority++) {
        CHECK_EQ(ctp_pool_submit_priority(pool, logged_task, NULL, priority), CTP_ECLOSED);
    }
    CHECK_EQ(ctp_pool_join(pool), 0);
    ctp_stats stats = stats_of(pool);
    CHECK_EQ(stats.completed + stats.cancelled + stats.queued, 0);
    ctp_pool_destroy(pool);
    PASS("errors: NULL pool or function, a negative priority -> CTP_EINVAL; closed -> CTP_ECLOSED in every lane");
}

/* ---- exact accounting with several submitters and workers ---------------------------------- */

enum { SUBMITTERS = 4, PER_SUBMITTER = 5000 };

static atomic_uchar g_calls[SUBMITTERS * PER_SUBMITTER];
static atomic_int g_runs, g_cancels;

static void counted_task(void *arg, int status) {
    atomic_fetch_add(&g_calls[(intptr_t)arg], 1);
    atomic_fetch_add(status == 0 ? &g_runs : &g_cancels, 1);
}

typedef struct submitter {
    ctp_pool *pool;
    int index;
    int accepted;
    pthread_t thread;
} submitter;

static void *submit_mixed(void *arg) {
    submitter *s = arg;
    static const int priorities[] = { PLAIN, 9, 17, 21, 25, 0, 33, 12 };
    unsigned seed = (unsigned)s->index * 2654435761u + 1;
    for (int i = 0; i < PER_SUBMITTER; i++) {
        seed = seed * 1103515245u + 12345u;
        int rc = submit_with(s->pool, counted_task, id_arg(s->index * PER_SUBMITTER + i), priorities[(seed >> 16) % 8]);
        CHECK(rc == 0 || rc == CTP_ECLOSED);
        if (rc == 0) s->accepted++;
    }
    return NULL;
}

static void test_accounting(void) {
    for (int variant = 0; variant < 3; variant++) { /* runs to the end, close midway, terminate midway */
        for (int i = 0; i < SUBMITTERS * PER_SUBMITTER; i++) atomic_store(&g_calls[i], 0);
        atomic_store(&g_runs, 0);
        atomic_store(&g_cancels, 0);
        ctp_pool *pool = make_pool(2, 0);
        submitter submitters[SUBMITTERS];
        for (int s = 0; s < SUBMITTERS; s++) {
            submitters[s] = (submitter){ .pool = pool, .index = s };
            CHECK(pthread_create(&submitters[s].thread, NULL, submit_mixed, &submitters[s]) == 0);
        }
        if (variant == 1) CHECK_EQ(ctp_pool_close(pool), 0);
        if (variant == 2) CHECK_EQ(ctp_pool_terminate(pool), 0);
        int accepted = 0;
        for (int s = 0; s < SUBMITTERS; s++) {
            CHECK(pthread_join(submitters[s].thread, NULL) == 0);
            accepted += submitters[s].accepted;
        }
        if (variant == 0) CHECK_EQ(ctp_pool_close(pool), 0);
        CHECK_EQ(ctp_pool_join(pool), 0);
        CHECK_EQ(atomic_load(&g_runs) + atomic_load(&g_cancels), accepted);
        int called = 0;
        for (int i = 0; i < SUBMITTERS * PER_SUBMITTER; i++) {
            CHECK(atomic_load(&g_calls[i]) <= 1);
            called += atomic_load(&g_calls[i]);
        }
        CHECK_EQ(called, accepted);
        ctp_stats stats = stats_of(pool);
        CHECK_EQ(stats.completed, (unsigned long long)atomic_load(&g_runs));
        CHECK_EQ(stats.cancelled, (unsigned long long)atomic_load(&g_cancels));
        CHECK_EQ(stats.queued, 0);
        if (variant == 0) CHECK_EQ(accepted, SUBMITTERS * PER_SUBMITTER);
        ctp_pool_destroy(pool);
    }
    PASS("accounting: 4 submitters x 5,000 tasks of mixed priorities, 2 workers, run to the end, closed "
         "or terminated midway: every accepted task called exactly once");
}

int main(void) {
    test_scale();
    test_queue_lanes();
    test_queue_aging_bounds();
    test_start_order();
    test_aging_with_lanes_full();
    test_aging_under_stream();
    test_help();
    test_terminate();
    test_bounded();
    test_errors();
    test_accounting();
    printf("test_priority: all tests passed\n");
    return 0;
}
