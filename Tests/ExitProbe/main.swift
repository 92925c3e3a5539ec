// A program as a new user writes it: a pool in a top-level `let`, tasks queued, and the end of the
// program right after. The library joins the pool at exit, so every task's line is printed.
// `--no-join-at-exit`: a task that never returns, and ThreadPool.joinsAtExit turned off, so the
// program must still exit. `--default-thread-count`: see below.
import Foundation
import ThreadPoolKit

/// Prints one task's line after a pause, so that tasks are still queued when the program ends.
func report(_ task: Int) {
    usleep(30_000)
    print("task \(task) done")
    fflush(nil)
}

func blockForever() {
    while true { pause() }
}

func submitTasks(to pool: ThreadPool, blocking: Bool) throws {
    if blocking {
        try pool.execute { blockForever() }
        return
    }
    for task in 0..<4 {
        try pool.execute { report(task) }
    }
}

// `--default-thread-count`: prints ThreadPool.defaultThreadCount and the thread count of a pool made
// without one, then exits. The tests run it with THREADPOOLKIT_THREADS set, which they cannot set in
// their own process without changing the pools of the tests running beside them.
if CommandLine.arguments.contains("--default-thread-count") {
    let defaultPool = try ThreadPool()
    print(ThreadPool.defaultThreadCount, defaultPool.threadCount)
    defaultPool.close()
    try defaultPool.join()
    exit(0)
}

let blocking = CommandLine.arguments.contains("--no-join-at-exit")
if blocking { ThreadPool.joinsAtExit = false }
let pool = try ThreadPool(threads: 2)
try submitTasks(to: pool, blocking: blocking)
print("main done")
fflush(nil)
