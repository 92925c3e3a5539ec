// The tutorial's second program: the same pool, reporting which thread initializes and runs tasks.
import ThreadPoolKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The name of the calling worker thread, as Python's `current_thread().name`.
func currentThreadName() -> String {
    ThreadPool.currentWorker?.name ?? "MainThread"
}

/// Task executed in a worker thread: report the thread's name and block for a moment.
func task() {
    print("Worker executing task, thread=\(currentThreadName())")
    sleep(1)
}

/// Initialize a worker in the thread pool, reporting the thread's name.
func initializeWorker() {
    print("Initializing worker, thread=\(currentThreadName())")
}

try withThreadPool(threads: 2, initializer: initializeWorker) { pool in
    for _ in 0..<4 {
        _ = try pool.applyAsync(task)
    }
    pool.close()
    try pool.join()
}
