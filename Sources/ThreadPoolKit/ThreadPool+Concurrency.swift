internal import CThreadPool

/// The pool as a Swift concurrency task executor (SE-0417): `withTaskExecutorPreference(pool) { ... }`
/// and `Task(executorPreference: pool) { ... }` run async code on the pool's workers, where
/// ``ThreadPool/currentWorker`` and thread-local state set up by the initializer are visible.
///
/// Jobs are queued like tasks, one queue entry each, with no allocation. A job the pool cannot take
/// (after ``ThreadPool/close()``) or drops (``ThreadPool/terminate()``) runs on the global concurrent
/// executor instead: Swift tasks are never lost.
///
/// Lifetime: the runtime holds task executors unowned, so the executor it is given is not the
/// `ThreadPool` object but a small one that the pool's workers share (see ``PoolExecutor``), which
/// lives until the last worker has exited. A preference scope keeps the pool alive (its argument), and
/// `Task(executorPreference:)` retains it; a job still queued when the last `ThreadPool` reference is
/// dropped on one of the pool's own workers runs, and the task it belongs to can hop back, because
/// what it reaches lives as long as the workers.
extension ThreadPool: TaskExecutor {
    /// Queues a Swift concurrency job to run on one of the workers (called by the runtime).
    public func enqueue(_ job: consuming ExecutorJob) {
        executor.enqueue(job)
    }

    /// The pool's task executor, unowned (called by the runtime): the workers' shared executor object.
    public func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        executor.asUnownedTaskExecutor()
    }
}

/// What the Swift runtime knows as a pool's task executor. Referenced by the pool's shared state,
/// which the C pool releases only after its last worker has exited, so it outlives every job the pool
/// ran and every worker that may still enqueue one.
final class PoolExecutor: TaskExecutor {
    /// The C pool: valid while this object is, since both go when the C pool is freed.
    private nonisolated(unsafe) let handle: OpaquePointer

    init(handle: OpaquePointer) {
        self.handle = handle
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let status = ctp_pool_submit(handle, runExecutorJob, unsafeBitCast(job, to: UnsafeMutableRawPointer.self))
        if status != 0 { globalConcurrentExecutor.enqueue(job) }
    }

    func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }
}

/// The C entry point of a Swift concurrency job: runs it on this worker with the pool as its executor.
let runExecutorJob: ctp_task_fn = { argument, status in
    guard let argument else { return }
    let job = unsafeBitCast(argument, to: UnownedJob.self) // UnownedJob is one pointer (checked in tests)
    if status == 0, let executor = PoolShared.current?.executor {
        job.runSynchronously(on: executor.asUnownedTaskExecutor())
    } else {
        globalConcurrentExecutor.enqueue(job)
    }
}
