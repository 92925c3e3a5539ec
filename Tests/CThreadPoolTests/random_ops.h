/*
 * Random operation sequences against the C API, shared by test_random_ops.c (a seeded PRNG, run by
 * make test) and fuzz/fuzz_ops.c (libFuzzer, make fuzz). Three threads each run their part of the
 * sequence on one pool at once: submit, try_submit, submit_many, broadcast, submit_to_worker, close,
 * terminate, join, stats, help, and tasks that submit more tasks (to the shared queue, or to their own
 * worker, as a Swift worker executor's drain does). At the end the pool is shut down and joined, and
 * every accepted task must have been called exactly once (run or cancelled); anything else aborts.
 */
#ifndef RANDOM_OPS_H
#define RANDOM_OPS_H

#include "CThreadPool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { OPS_MAX_TASKS = 1 << 14, OPS_THREADS = 3 };

typedef struct ops_run {
    ctp_pool *pool;
    atomic_int next_task;                 /* task slots handed out */
    atomic_uchar calls[OPS_MAX_TASKS];    /* how many times each accepted task was called */
    atomic_uchar accepted[OPS_MAX_TASKS]; /* 1 once its submit returned 0 */
    atomic_long broadcasts_accepted;
    atomic_long broadcast_calls;
} ops_run;

typedef struct ops_task {
    ops_run *run;
    int slot;
    int spawn; /* submit one more task from inside this one: 1 to the shared queue, 2 to this worker */
} ops_task;

static void ops_die(const char *message) {
    fprintf(stderr, "random ops: %s\n", message);
    abort();
}

static int ops_take_slot(ops_run *run) {
    int slot = atomic_fetch_add(&run->next_task, 1);
    return slot < OPS_MAX_TASKS ? slot : -1;
}

static void ops_task_fn(void *arg, int status);

enum ops_submit_mode { OPS_SUBMIT, OPS_TRY_SUBMIT, OPS_TO_WORKER };

/* Submits one task in `slot` (already taken), with ctp_pool_submit, ctp_pool_try_submit, or
   ctp_pool_submit_to_worker to `worker`; returns the submit's code. */
static int ops_submit_slot(ops_run *run, int slot, int spawn, enum ops_submit_mode mode, unsigned worker) {
    ops_task *task = malloc(sizeof *task);
    if (task == NULL) return CTP_ENOMEM;
    *task = (ops_task){ run, slot, spawn };
    int rc = mode == OPS_TRY_SUBMIT ? ctp_pool_try_submit(run->pool, ops_task_fn, task)
           : mode == OPS_TO_WORKER  ? ctp_pool_submit_to_worker(run->pool, worker, ops_task_fn, task)
                                    : ctp_pool_submit(run->pool, ops_task_fn, task);
    if (rc == 0) {
        atomic_store(&run->accepted[slot], 1);
    } else {
        free(task);
    }
    return rc;
}

static void ops_task_fn(void *arg, int status) {
    ops_task *task = arg;
    if (atomic_fetch_add(&task->run->calls[task->slot], 1) != 0) ops_die("a task was called twice");
    if (status == 0 && task->spawn) {
        int slot = ops_take_slot(task->run);
        if (slot >= 0) {
            int rc = task->spawn == 2
                ? ops_submit_slot(task->run, slot, 0, OPS_TO_WORKER, (unsigned)ctp_current_worker_index())
                : ops_submit_slot(task->run, slot, 0, OPS_SUBMIT, 0);
            if (rc != 0 && rc != CTP_ECLOSED && rc != CTP_ENOMEM) ops_die("unexpected submit error in a task");
        }
    }
    free(task);
}

static void ops_broadcast_fn(void *arg, int status) {
    (void)status;
    atomic_fetch_add(&((ops_run *)arg)->broadcast_calls, 1);
}

typedef struct ops_script {
    ops_run *run;
    const uint8_t *data;
    size_t size;
} ops_script;

static void *ops_thread(void *argument) {
    ops_script *script = argument;
    ops_run *run = script->run;
    ctp_stats stats;
    for (size_t i = 0; i < script->size; i++) {
        uint8_t op = script->data[i];
        int slot, rc;
        switch (op % 16) {
        case 0: case 1: case 2: case 3: case 4:
            if ((slot = ops_take_slot(run)) < 0) break;
            rc = ops_submit_slot(run, slot, op >= 128 ? 1 + op % 2 : 0, OPS_SUBMIT, 0);
            if (rc != 0 && rc != CTP_ECLOSED) ops_die("submit failed");
            break;
        case 5:
            if ((slot = ops_take_slot(run)) < 0) break;
            rc = ops_submit_slot(run, slot, 0, OPS_TRY_SUBMIT, 0);
            if (rc != 0 && rc != CTP_ECLOSED && rc != CTP_EAGAIN) ops_die("try_submit failed");
            break;
        case 6: {
            /* submit_many with the same argument: the task counts itself in one shared slot, so use
               a counting broadcast-style function instead. */
            rc = ctp_pool_submit_many(run->pool, ops_broadcast_fn, run, (size_t)(op >> 4));
            if (rc == 0) atomic_fetch_add(&run->broadcasts_accepted, (long)(op >> 4));
            else if (rc != CTP_ECLOSED && rc != CTP_EAGAIN) ops_die("submit_many failed");
            break;
        }
        case 7:
            rc = ctp_pool_broadcast(run->pool, ops_broadcast_fn, run);
            if (rc == 0) atomic_fetch_add(&run->broadcasts_accepted, ctp_pool_thread_count(run->pool));
            else if (rc != CTP_ECLOSED) ops_die("broadcast failed");
            break;
        case 8:
            if (op >= 200) { /* rare: close */
                rc = ctp_pool_close(run->pool);
                if (rc != 0 && rc != CTP_ECLOSED) ops_die("close failed");
            }
            break;
        case 9:
            if (op >= 200) { /* rare: terminate */
                rc = ctp_pool_terminate(run->pool);
                if (rc != 0 && rc != CTP_ECLOSED) ops_die("terminate failed");
            }
            break;
        case 10:
            rc = ctp_pool_join(run->pool);
            if (rc != 0 && rc != CTP_ERUNNING) ops_die("join failed");
            break;
        case 11:
            if (ctp_pool_stats(run->pool, &stats) != 0) ops_die("stats failed");
            if (stats.threads != (unsigned)ctp_pool_thread_count(run->pool)) ops_die("stats: wrong thread count");
            break;
        case 12:
            if (ctp_pool_help(run->pool) != CTP_EINVAL) ops_die("help off the pool must be CTP_EINVAL");
            break;
        case 13:
            if ((slot = ops_take_slot(run)) < 0) break;
            rc = ops_submit_slot(run, slot, op >= 128 ? 2 : 0, OPS_TO_WORKER,
                                 (unsigned)(op >> 4) % (unsigned)ctp_pool_thread_count(run->pool));
            if (rc != 0 && rc != CTP_ECLOSED) ops_die("submit_to_worker failed");
            break;
        default:
            if (ctp_current_worker_index() != -1 || ctp_current_worker_name() != NULL) ops_die("worker queries off the pool");
            break;
        }
    }
    return NULL;
}

/* Runs one sequence: data[0] picks the pool's shape, the rest is split among the threads. */
static void ops_run_sequence(const uint8_t *data, size_t size) {
    if (size < 2) return;
    ops_run *run = calloc(1, sizeof *run);
    if (run == NULL) return;
    ctp_options options;
    ctp_options_init(&options);
    options.threads = 1 + data[0] % 4;
    options.queue_capacity = (data[0] & 0x10) ? 8 : 0;
    options.name_prefix = "ops";
    if (ctp_pool_create(&options, &run->pool) != 0) ops_die("create failed");

    pthread_t threads[OPS_THREADS];
    ops_script scripts[OPS_THREADS];
    size_t part = (size - 1) / OPS_THREADS;
    for (int t = 0; t < OPS_THREADS; t++) {
        size_t begin = 1 + (size_t)t * part;
        size_t end = t == OPS_THREADS - 1 ? size : begin + part;
        scripts[t] = (ops_script){ run, data + begin, end - begin };
        if (pthread_create(&threads[t], NULL, ops_thread, &scripts[t]) != 0) ops_die("pthread_create failed");
    }
    for (int t = 0; t < OPS_THREADS; t++) pthread_join(threads[t], NULL);

    if (data[size - 1] & 1) ctp_pool_terminate(run->pool); else ctp_pool_close(run->pool);
    if (ctp_pool_join(run->pool) != 0) ops_die("final join failed");
    if (ctp_pool_join(run->pool) != 0) ops_die("second join failed");

    int slots = atomic_load(&run->next_task);
    if (slots > OPS_MAX_TASKS) slots = OPS_MAX_TASKS;
    for (int i = 0; i < slots; i++) {
        int calls = atomic_load(&run->calls[i]);
        if (atomic_load(&run->accepted[i]) ? calls != 1 : calls != 0) ops_die("a task was lost or called for nothing");
    }
    if (atomic_load(&run->broadcast_calls) != atomic_load(&run->broadcasts_accepted)) ops_die("broadcast calls lost");
    ctp_stats stats;
    ctp_pool_stats(run->pool, &stats);
    if (stats.queued != 0 || stats.running != 0) ops_die("stats after join");
    ctp_pool_destroy(run->pool);
    free(run);
}

#endif /* RANDOM_OPS_H */
