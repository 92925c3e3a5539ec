/*
 * The observer (ctp_options.observer): exact counts of task events by outcome for every way of
 * submitting, worker started/exited events matching the stats, growth failures reported once each,
 * durations that cover what they measure, and a pool without an observer calling nothing.
 */
#define _GNU_SOURCE
#include "fault_injection.h"
#include "test_support.h"

#include <string.h>

static void pass(const char *name) { printf("ok   %s\n", name); }

static int baseline;

typedef struct counts {
    atomic_ullong queued, started, finished;
    atomic_ullong outcomes[4];
    atomic_ullong workers_started, workers_exited, workers_retired;
    atomic_ullong failures[3];
    atomic_ullong min_wait_ns, min_run_ns; /* of tasks that ran: the smallest seen */
    atomic_ullong max_run_ns;
    atomic_int bad_name;
} counts;

static void counts_init(counts *c) {
    memset(c, 0, sizeof *c);
    atomic_store(&c->min_wait_ns, ~0ull);
    atomic_store(&c->min_run_ns, ~0ull);
}

static void store_min(atomic_ullong *target, unsigned long long value) {
    unsigned long long seen = atomic_load(target);
    while (value < seen && !atomic_compare_exchange_weak(target, &seen, value)) {}
}

static void store_max(atomic_ullong *target, unsigned long long value) {
    unsigned long long seen = atomic_load(target);
    while (value > seen && !atomic_compare_exchange_weak(target, &seen, value)) {}
}

static void on_queued(void *context, size_t count) {
    atomic_fetch_add(&((counts *)context)->queued, count);
}

static void on_started(void *context, unsigned long long wait_ns) {
    (void)wait_ns;
    atomic_fetch_add(&((counts *)context)->started, 1);
}

static void on_finished(void *context, int outcome, unsigned long long wait_ns, unsigned long long run_ns) {
    counts *c = context;
    CHECK(outcome >= 0 && outcome <= 3);
    atomic_fetch_add(&c->outcomes[outcome], 1);
    if (outcome != CTP_TASK_CANCELLED) {
        store_min(&c->min_wait_ns, wait_ns);
        store_min(&c->min_run_ns, run_ns);
        store_max(&c->max_run_ns, run_ns);
    }
    atomic_fetch_add(&c->finished, 1);
}

static void on_worker_started(void *context, unsigned index, const char *name) {
    counts *c = context;
    /* Workers are named "obs-<index+1>". */
    char expected[32];
    snprintf(expected, sizeof expected, "obs-%u", index + 1);
    if (name == NULL || strcmp(name, expected) != 0) atomic_fetch_add(&c->bad_name, 1);
    if (ctp_current_worker_index() != (int)index) atomic_fetch_add(&c->bad_name, 1);
    atomic_fetch_add(&c->workers_started, 1);
}

static void on_worker_exited(void *context, unsigned index, const char *name, int retired) {
    counts *c = context;
    (void)index;
    if (name == NULL) atomic_fetch_add(&c->bad_name, 1);
    if (retired) atomic_fetch_add(&c->workers_retired, 1);
    atomic_fetch_add(&c->workers_exited, 1);
}

static void on_failure(void *context, int kind, unsigned index, int code) {
    counts *c = context;
    (void)index;
    (void)code;
    CHECK(kind == CTP_FAILURE_GROW_THREAD || kind == CTP_FAILURE_GROW_INIT);
    atomic_fetch_add(&c->failures[kind], 1);
}

static ctp_observer observer_for(counts *c) {
    return (ctp_observer){ .task_queued = on_queued, .task_started = on_started, .task_finished = on_finished,
                           .worker_started = on_worker_started, .worker_exited = on_worker_exited,
                           .failure = on_failure, .context = c };
}

static ctp_pool *observed_pool(const ctp_observer *observer, unsigned threads, unsigned max_threads,
                               ctp_init_fn initializer) {
    ctp_options options;
    ctp_options_init(&options);
    options.threads = threads;
    options.max_threads = max_threads;
    options.keep_alive_ns = 20 * 1000 * 1000;
    options.name_prefix = "obs";
    options.initializer = initializer;
    options.observer = observer;
    ctp_pool *pool;
    CHECK_EQ(ctp_pool_create(&options, &pool), 0);
    return pool;
}

static ctp_stats stats_of(ctp_pool *pool) {
    ctp_stats stats;
    CHECK_EQ(ctp_pool_stats(pool, &stats), 0);
    return stats;
}

/* Every third call reports a failure, every fifth one declines; the rest complete. */
static atomic_ullong task_calls;
static void mixed_task(void *arg, int status) {
    (void)arg;
    CHECK_EQ(status, 0);
    unsigned long long call = atomic_fetch_add(&task_calls, 1) + 1;
    if (call % 5 == 0) ctp_task_declined();
    else if (call % 3 == 0) ctp_task_failed();
}

static void test_every_submit_reports_each_task_once(void) {
    for (int round = 0; round < 50; round++) {
        counts c;
        counts_init(&c);
        ctp_observer observer = observer_for(&c);
        ctp_pool *pool = observed_pool(&observer, 4, 0, NULL);
        CHECK_EQ(atomic_load(&c.workers_started), 4); /* before ctp_pool_create returns */
        atomic_store(&task_calls, 0);
        int target = round % 4;
        for (int i = 0; i < 1000; i++) CHECK_EQ(ctp_pool_submit(pool, mixed_task, NULL), 0);
        for (int i = 0; i < 200; i++) CHECK_EQ(ctp_pool_submit_priority(pool, mixed_task, NULL, CTP_PRIORITY_HIGH), 0);
        for (int i = 0; i < 200; i++) CHECK_EQ(ctp_pool_try_submit(pool, mixed_task, NULL), 0);
        CHECK_EQ(ctp_pool_submit_many(pool, mixed_task, NULL, 300), 0);
        CHECK_EQ(ctp_pool_broadcast(pool, mixed_task, NULL), 0);
        for (int i = 0; i < 96; i++) CHECK_EQ(ctp_pool_submit_to_worker(pool, (unsigned)target, mixed_task, NULL), 0);
        CHECK_EQ(ctp_pool_close(pool), 0);
        CHECK_EQ(ctp_pool_submit(pool, mixed_task, NULL), CTP_ECLOSED); /* not accepted: not reported */
        CHECK_EQ(ctp_pool_join(pool), 0);
        const unsigned long long total = 1000 + 200 + 200 + 300 + 4 + 96;
        CHECK_EQ(atomic_load(&c.queued), total);
        CHECK_EQ(atomic_load(&c.started), total);
        CHECK_EQ(atomic_load(&c.finished), total);
        /* Calls 1...total: multiples of 5 declined, other multiples of 3 failed. */
        unsigned long long declined = total / 5, failed = total / 3 - total / 15;
        CHECK_EQ(atomic_load(&c.outcomes[CTP_TASK_DECLINED]), declined);
        CHECK_EQ(atomic_load(&c.outcomes[CTP_TASK_FAILED]), failed);
        CHECK_EQ(atomic_load(&c.outcomes[CTP_TASK_COMPLETED]), total - declined - failed);
        CHECK_EQ(atomic_load(&c.outcomes[CTP_TASK_CANCELLED]), 0);
        ctp_stats stats = stats_of(pool);
        CHECK_EQ(stats.completed + stats.declined, total);
        CHECK_EQ(stats.declined, declined);
        CHECK_EQ(atomic_load(&c.workers_started), stats.threads_started);
        CHECK_EQ(atomic_load(&c.workers_exited), 4);
        CHECK_EQ(atomic_load(&c.workers_retired), stats.threads_retired);
        CHECK_EQ(atomic_load(&c.bad_name), 0);
        ctp_pool_destroy(pool);
    }
    CHECK_THREADS_BACK_TO(baseline);
    pass("observer: 50 rounds of 1,800 tasks by every submit: each queued, started and finished once, outcomes "
         "exact, 4 workers started and exited");
}

static void test_terminate_reports_cancelled(void) {
    for (int round = 0; round < 50; round++) {
        counts c;
        counts_init(&c);
        ctp_observer observer = observer_for(&c);
        ctp_pool *pool = observed_pool(&observer, 2, 0, NULL);
        gate g;
        gate_init(&g);
        for (int i = 0; i < 2; i++) CHECK_EQ(ctp_pool_submit(pool, gate_task, &g), 0);
        CHECK_EVENTUALLY(atomic_load(&g.entered) == 2);
        for (int i = 0; i < 100; i++) CHECK_EQ(ctp_pool_submit(pool, gate_task, &g), 0);
        CHECK_EQ(ctp_pool_submit_many(pool, gate_task, &g, 50), 0);
        CHECK_EQ(ctp_pool_terminate(pool), 0);
        gate_open(&g);
        CHECK_EQ(ctp_pool_join(pool), 0);
        CHECK_EQ(atomic_load(&c.queued), 152);
        CHECK_EQ(atomic_load(&c.finished), 152);
        CHECK_EQ(atomic_load(&c.started), 2);
        CHECK_EQ(atomic_load(&c.outcomes[CTP_TASK_CANCELLED]), 150);
        CHECK_EQ(atomic_load(&g.cancelled), 150);
        CHECK_EQ(atomic_load(&c.outcomes[CTP_TASK_COMPLETED]), 2);
        CHECK_EQ(stats_of(pool).cancelled, 150);
        ctp_pool_destroy(pool);
        gate_destroy(&g);
    }
    pass("observer: terminate reports each dropped task finished, cancelled, never started (50 rounds)");
}

/* Runs for at least 2 ms of its own time. */
static void busy_task(void *arg, int status) {
    (void)arg;
    (void)status;
    unsigned long long start = ctp_monotonic_ns();
    while (ctp_monotonic_ns() - start < 2000000ull) {}
}

static void test_durations(void) {
    counts c;
    counts_init(&c);
    ctp_observer observer = observer_for(&c);
    ctp_pool *pool = observed_pool(&observer, 1, 0, NULL);
    CHECK_EQ(ctp_pool_submit(pool, busy_task, NULL), 0);
    CHECK_EQ(ctp_pool_submit(pool, busy_task, NULL), 0);
    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_join(pool), 0);
    CHECK(atomic_load(&c.min_run_ns) >= 2000000ull);
    CHECK_EQ(atomic_load(&c.finished), 2);
    ctp_pool_destroy(pool);
    pass("observer: a task's run duration covers its run");
}

/* Waits for its gate, then runs for at least 2 ms. */
static void gated_busy_task(void *arg, int status) {
    gate_pass(arg);
    busy_task(NULL, status);
}

/* The second task waits for the first: its wait covers the first one's run. The first one starts
 * its 2 ms only after the second is queued (queued while the first already ran, it would wait
 * less). */
static atomic_ullong second_wait_ns;
static atomic_int started_calls;
static void on_started_second(void *context, unsigned long long wait_ns) {
    (void)context;
    if (atomic_fetch_add(&started_calls, 1) == 1) atomic_store(&second_wait_ns, wait_ns);
}

static void test_wait_duration(void) {
    ctp_observer observer = { .task_started = on_started_second };
    ctp_options options;
    ctp_options_init(&options);
    options.threads = 1;
    options.observer = &observer;
    ctp_pool *pool;
    CHECK_EQ(ctp_pool_create(&options, &pool), 0);
    gate g;
    gate_init(&g);
    CHECK_EQ(ctp_pool_submit(pool, gated_busy_task, &g), 0);
    CHECK_EQ(ctp_pool_submit(pool, busy_task, NULL), 0);
    gate_open(&g);
    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_join(pool), 0);
    gate_destroy(&g);
    CHECK_EQ(atomic_load(&started_calls), 2);
    CHECK(atomic_load(&second_wait_ns) >= 2000000ull);
    ctp_pool_destroy(pool);
    pass("observer: a queued task's wait covers the run of the task ahead of it");
}

static atomic_int initializer_calls;
static int fail_third_grown(void *context, unsigned index) {
    (void)context;
    int call = atomic_fetch_add(&initializer_calls, 1) + 1;
    return index >= 2 && call == 5 ? 7 : 0; /* the 3rd worker grown (calls 1-2 are the pool's own) */
}

static atomic_int failure_index = -1, failure_code;
static void on_failure_noted(void *context, int kind, unsigned index, int code) {
    on_failure(context, kind, index, code);
    atomic_store(&failure_index, (int)index);
    atomic_store(&failure_code, code);
}

static void test_growth_failures_reported(void) {
    /* A grown worker's initializer fails: reported once, with its index and code. */
    for (int round = 0; round < 20; round++) {
        counts c;
        counts_init(&c);
        ctp_observer observer = observer_for(&c);
        observer.failure = on_failure_noted;
        atomic_store(&initializer_calls, 0);
        ctp_pool *pool = observed_pool(&observer, 2, 8, fail_third_grown);
        gate g;
        gate_init(&g);
        for (int i = 0; i < 8; i++) CHECK_EQ(ctp_pool_submit(pool, gate_task, &g), 0);
        /* The pool's 2, then grown workers until the third fails; the rest wait in the queue. */
        CHECK_EVENTUALLY(atomic_load(&g.entered) >= 4 && atomic_load(&c.failures[CTP_FAILURE_GROW_INIT]) == 1);
        gate_open(&g);
        CHECK_EVENTUALLY(atomic_load(&g.left) == 8);
        CHECK_EQ(ctp_pool_close(pool), 0);
        CHECK_EQ(ctp_pool_join(pool), 0);
        ctp_stats stats = stats_of(pool);
        CHECK_EQ(atomic_load(&c.failures[CTP_FAILURE_GROW_INIT]), 1);
        CHECK_EQ(atomic_load(&c.failures[CTP_FAILURE_GROW_THREAD]), 0);
        CHECK(atomic_load(&failure_index) >= 2);
        CHECK_EQ(atomic_load(&failure_code), 7);
        CHECK_EQ(stats.grow_failures, 1);
        /* Every thread started is reported started, but for the one whose initializer failed. */
        CHECK_EQ(atomic_load(&c.workers_started), stats.threads_started - 1);
        CHECK_EQ(atomic_load(&c.workers_exited), atomic_load(&c.workers_started));
        /* Extra workers that exited: threads_retired counts the failed one too. */
        CHECK_EQ(atomic_load(&c.workers_retired), stats.threads_retired - 1);
        CHECK_EQ(atomic_load(&c.finished), 8);
        ctp_pool_destroy(pool);
        gate_destroy(&g);
    }
    /* Thread creation fails while growing: each failure reported, as many as grow_failures. */
    counts c;
    counts_init(&c);
    ctp_observer observer = observer_for(&c);
    ctp_pool *pool = observed_pool(&observer, 2, 8, NULL);
    gate g;
    gate_init(&g);
    ctp_fault_thread_countdown = 1;
    for (int i = 0; i < 6; i++) CHECK_EQ(ctp_pool_submit(pool, gate_task, &g), 0);
    CHECK_EVENTUALLY(atomic_load(&g.entered) >= 2);
    ctp_fault_thread_countdown = 0;
    gate_open(&g);
    CHECK_EVENTUALLY(atomic_load(&g.left) == 6);
    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_join(pool), 0);
    ctp_stats stats = stats_of(pool);
    CHECK(stats.grow_failures >= 1);
    CHECK_EQ(atomic_load(&c.failures[CTP_FAILURE_GROW_THREAD]), stats.grow_failures);
    CHECK_EQ(atomic_load(&c.workers_started), stats.threads_started);
    CHECK_EQ(atomic_load(&c.workers_retired), stats.threads_retired);
    ctp_pool_destroy(pool);
    gate_destroy(&g);
    CHECK_THREADS_BACK_TO(baseline);
    pass("observer: a grown worker's failed initializer reported once (20 rounds); failed thread creations "
         "reported as many times as grow_failures; worker events match the stats");
}

static void test_retirement_reported(void) {
    counts c;
    counts_init(&c);
    ctp_observer observer = observer_for(&c);
    ctp_pool *pool = observed_pool(&observer, 2, 6, NULL);
    gate g;
    gate_init(&g);
    for (int i = 0; i < 6; i++) CHECK_EQ(ctp_pool_submit(pool, gate_task, &g), 0);
    CHECK_EVENTUALLY(atomic_load(&g.entered) == 6);
    gate_open(&g);
    /* After the 20 ms keep-alive the 4 extra workers retire while the pool runs. */
    CHECK_EVENTUALLY(atomic_load(&c.workers_retired) == 4);
    ctp_stats stats = stats_of(pool);
    CHECK_EQ(stats.threads_retired, 4);
    CHECK_EQ(atomic_load(&c.workers_started), 6);
    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_join(pool), 0);
    CHECK_EQ(atomic_load(&c.workers_exited), 6);
    CHECK_EQ(atomic_load(&c.workers_retired), 4);
    ctp_pool_destroy(pool);
    gate_destroy(&g);
    pass("observer: 4 workers grown for queued work reported started, then retired after the keep-alive");
}

static void test_worker_only_observer(void) {
    /* Only worker callbacks: tasks are not wrapped (submit_many's arg reaches the task unchanged). */
    counts c;
    counts_init(&c);
    ctp_observer observer = { .worker_started = on_worker_started, .worker_exited = on_worker_exited,
                              .context = &c };
    ctp_pool *pool = observed_pool(&observer, 3, 0, NULL);
    gate g;
    gate_init(&g);
    gate_open(&g);
    CHECK_EQ(ctp_pool_submit_many(pool, gate_task, &g, 10), 0);
    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_join(pool), 0);
    CHECK_EQ(atomic_load(&g.left), 10);
    CHECK_EQ(atomic_load(&c.workers_started), 3);
    CHECK_EQ(atomic_load(&c.workers_exited), 3);
    CHECK_EQ(atomic_load(&c.finished), 0);
    ctp_pool_destroy(pool);
    gate_destroy(&g);
    pass("observer: worker callbacks alone");
}

static void test_wrapper_allocation_failure(void) {
    counts c;
    counts_init(&c);
    ctp_observer observer = observer_for(&c);
    ctp_pool *pool = observed_pool(&observer, 1, 0, NULL);
    ctp_fault_malloc_countdown = 1;
    CHECK_EQ(ctp_pool_submit(pool, mixed_task, NULL), CTP_ENOMEM);
    ctp_fault_malloc_countdown = 0;
    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_join(pool), 0);
    CHECK_EQ(atomic_load(&c.queued), 0);
    CHECK_EQ(atomic_load(&c.finished), 0);
    ctp_pool_destroy(pool);
    pass("observer: a submit whose record cannot be allocated fails with CTP_ENOMEM and reports nothing");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Warm up: a sanitizer runtime starts a thread of its own with the first pthread_create. */
    ctp_pool *warm_up;
    CHECK_EQ(ctp_pool_create(NULL, &warm_up), 0);
    ctp_pool_destroy(warm_up);
    CHECK_EVENTUALLY(process_threads() <= 2);
    baseline = process_threads();
    test_every_submit_reports_each_task_once();
    test_terminate_reports_cancelled();
    test_durations();
    test_wait_duration();
    test_growth_failures_reported();
    test_retirement_reported();
    test_worker_only_observer();
    test_wrapper_allocation_failure();
    return 0;
}
