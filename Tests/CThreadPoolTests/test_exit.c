/*
 * Joining at process exit (ctp_set_join_at_exit): each case runs in a child process, which the test
 * reads through a pipe and waits for with a bound.
 */
#define _GNU_SOURCE
#include "test_support.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int output_fd; /* the child's end of the pipe */

/* Writes one line after a short pause, so that tasks are still queued when main returns. */
static void line_task(void *arg, int status) {
    (void)status;
    struct timespec pause = { 0, 20 * 1000 * 1000 };
    nanosleep(&pause, NULL);
    char line[32];
    int length = snprintf(line, sizeof line, "task %d\n", (int)(intptr_t)arg);
    CHECK(write(output_fd, line, (size_t)length) == length);
}

static void blocks_forever(void *arg, int status) {
    (void)arg;
    (void)status;
    for (;;) pause();
}

static void exits_from_worker(void *arg, int status) {
    (void)arg;
    (void)status;
    exit(0);
}

/* Runs `child` in a child process; returns what it wrote and fails unless it exits with status 0
   within WAIT_SECONDS. */
static void run_child(void (*child)(void), char *out, size_t capacity) {
    int fds[2];
    CHECK_EQ(pipe(fds), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        output_fd = fds[1];
        child();
        exit(0);
    }
    close(fds[1]);
    size_t used = 0;
    ssize_t n;
    while (used + 1 < capacity && (n = read(fds[0], out + used, capacity - 1 - used)) > 0) used += (size_t)n;
    out[used] = '\0';
    close(fds[0]);
    int status = 0;
    double deadline = now_seconds() + WAIT_SECONDS;
    pid_t done;
    while ((done = waitpid(pid, &status, WNOHANG)) == 0 && now_seconds() < deadline) poll_pause();
    if (done == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fprintf(stderr, "child did not exit within %.0f s\n", WAIT_SECONDS);
        exit(1);
    }
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static int count_lines(const char *text) {
    int lines = 0;
    for (; *text != '\0'; text++) lines += *text == '\n';
    return lines;
}

static ctp_pool *two_workers(int skip_join_at_exit) {
    ctp_options options;
    ctp_options_init(&options);
    options.threads = 2;
    options.skip_join_at_exit = skip_join_at_exit;
    ctp_pool *pool;
    CHECK_EQ(ctp_pool_create(&options, &pool), 0);
    return pool;
}

/* A pool nobody closes, joins or destroys, as in a global variable. */
static void child_queues_and_returns(void) {
    ctp_pool *pool = two_workers(0);
    for (int i = 0; i < 8; i++) CHECK_EQ(ctp_pool_submit(pool, line_task, (void *)(intptr_t)i), 0);
}

static void child_with_two_pools(void) {
    ctp_pool *first = two_workers(0);
    ctp_pool *second = two_workers(0);
    for (int i = 0; i < 4; i++) CHECK_EQ(ctp_pool_submit(first, line_task, (void *)(intptr_t)i), 0);
    for (int i = 4; i < 8; i++) CHECK_EQ(ctp_pool_submit(second, line_task, (void *)(intptr_t)i), 0);
    ctp_pool_destroy(first); /* a destroyed pool leaves the list */
}

static void child_turns_it_off(void) {
    ctp_pool *pool = two_workers(0);
    CHECK_EQ(ctp_pool_submit(pool, blocks_forever, NULL), 0);
    ctp_set_join_at_exit(0);
}

static void child_skips_one_pool(void) {
    ctp_pool *blocked = two_workers(1);
    CHECK_EQ(ctp_pool_submit(blocked, blocks_forever, NULL), 0);
    ctp_pool *joined = two_workers(0);
    for (int i = 0; i < 4; i++) CHECK_EQ(ctp_pool_submit(joined, line_task, (void *)(intptr_t)i), 0);
}

static void child_exits_from_a_worker(void) {
    ctp_pool *pool = two_workers(0);
    CHECK_EQ(ctp_pool_submit(pool, exits_from_worker, NULL), 0);
    for (;;) pause();
}

int main(void) {
    char out[4096];
    run_child(child_queues_and_returns, out, sizeof out);
    CHECK_EQ(count_lines(out), 8);
    for (int i = 0; i < 8; i++) {
        char line[32];
        snprintf(line, sizeof line, "task %d\n", i);
        CHECK(strstr(out, line) != NULL);
    }
    run_child(child_with_two_pools, out, sizeof out);
    CHECK_EQ(count_lines(out), 8);
    run_child(child_turns_it_off, out, sizeof out);
    run_child(child_skips_one_pool, out, sizeof out);
    CHECK_EQ(count_lines(out), 4);
    run_child(child_exits_from_a_worker, out, sizeof out);
    printf("test_exit: all passed (queued tasks of unjoined pools run at exit; opt-outs and exit from a worker "
           "do not hang)\n");
    return 0;
}
