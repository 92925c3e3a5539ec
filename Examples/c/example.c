/*
 * The C API on its own: a pool whose workers each set up their own state in the initializer
 * (here a per-worker scratch buffer and a task counter), use it in every task, and release it in
 * the finalizer.
 *
 * Built and run by `make c-example` (see the Makefile for the command).
 */
#include "CThreadPool.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

enum { WORKERS = 4, TASKS = 1000 };

/* Per-worker state, made by the initializer on that worker and used only there. */
typedef struct worker_state {
    unsigned long tasks_run;
    char *scratch;
} worker_state;

static _Thread_local worker_state *current_state;

typedef struct shared {
    atomic_ulong total;
    unsigned long tasks_per_worker[WORKERS];
} shared;

static int initialize_worker(void *context, unsigned worker_index) {
    (void)context;
    current_state = calloc(1, sizeof *current_state);
    if (current_state == NULL) return -1;
    current_state->scratch = malloc(4096);
    if (current_state->scratch == NULL) {
        free(current_state);
        return -1;
    }
    printf("initialized %s (worker %u)\n", ctp_current_worker_name(), worker_index);
    return 0;
}

static void finalize_worker(void *context, unsigned worker_index) {
    shared *totals = context;
    totals->tasks_per_worker[worker_index] = current_state->tasks_run;
    free(current_state->scratch);
    free(current_state);
    current_state = NULL;
}

/* One task's argument, owned by the task. */
typedef struct sum_job {
    unsigned long n;
    shared *totals;
} sum_job;

/* Sums 1..n into the shared total, using the worker's own state. */
static void sum_task(void *arg, int status) {
    sum_job *job = arg;
    if (status == 0) {
        unsigned long sum = 0;
        for (unsigned long i = 1; i <= job->n; i++) sum += i;
        current_state->tasks_run++;
        atomic_fetch_add(&job->totals->total, sum);
    }
    free(job); /* status CTP_ECANCELED: dropped by terminate; the argument is still ours to free */
}

int main(void) {
    static shared totals;
    ctp_options options;
    ctp_options_init(&options);
    options.threads = WORKERS;
    options.name_prefix = "sum";
    options.initializer = initialize_worker;
    options.finalizer = finalize_worker;
    options.context = &totals;

    ctp_pool *pool;
    int rc = ctp_pool_create(&options, &pool);
    if (rc != 0) {
        fprintf(stderr, "ctp_pool_create: %s\n", ctp_strerror(rc));
        return 1;
    }

    unsigned long expected = 0;
    for (unsigned long t = 0; t < TASKS; t++) {
        sum_job *job = malloc(sizeof *job);
        if (job == NULL) break;
        *job = (sum_job){ .n = t, .totals = &totals };
        rc = ctp_pool_submit(pool, sum_task, job);
        if (rc != 0) {
            fprintf(stderr, "ctp_pool_submit: %s\n", ctp_strerror(rc));
            free(job);
            break;
        }
        expected += t * (t + 1) / 2;
    }

    ctp_pool_close(pool);
    rc = ctp_pool_join(pool);
    ctp_pool_destroy(pool);
    if (rc != 0) {
        fprintf(stderr, "ctp_pool_join: %s\n", ctp_strerror(rc));
        return 1;
    }

    unsigned long tasks = 0;
    for (int w = 0; w < WORKERS; w++) tasks += totals.tasks_per_worker[w];
    printf("%lu tasks on %d workers, total %lu (expected %lu)\n", tasks, WORKERS,
           (unsigned long)atomic_load(&totals.total), expected);
    return tasks == TASKS && atomic_load(&totals.total) == expected ? 0 : 1;
}
