// The tutorial's first program: initialize each worker of a 2-thread pool, then run four tasks.
import ThreadPoolKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Task executed in a worker thread: report a message and block for a moment.
func task() {
    print("Worker executing task...")
    sleep(1)
}

/// Initialize a worker in the thread pool.
func initializeWorker() {
    print("Initializing worker...")
}

try withThreadPool(threads: 2, initializer: initializeWorker) { pool in
    for _ in 0..<4 {
        _ = try pool.applyAsync(task)
    }
    pool.close()
    try pool.join()
}
