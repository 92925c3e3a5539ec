/// The pool as a Swift concurrency task executor (SE-0417): `withTaskExecutorPreference(pool) { ... }`
/// and `Task(executorPreference: pool) { ... }` run async code on the pool's workers, where
/// ``ThreadPool/currentWorker`` and thread-local state set up by the initializer are visible.
///
/// Jobs are queued like tasks, one queue entry each, with no allocation, in the lane of the job's
/// priority (see ``ThreadPool/applyAsync(priority:_:callback:errorCallback:)``). A job the pool cannot take
/// (after ``ThreadPool/close()``) or drops (``ThreadPool/terminate()``) runs on the global concurrent
/// executor instead: Swift tasks are never lost.
///
/// Lifetime: the runtime holds task executors unowned, and the object `asUnownedTaskExecutor()` names
/// must be the pool itself: `Task(executorPreference:)` retains the executor it is given and, when
/// the task ends, releases the identity of the unowned executor (a different object there leaks the
/// pool and over-releases the other; make sanitize's leak check catches it). So the pool object is
/// what keeps enqueues valid: a preference scope's argument keeps it alive for the scope, a task
/// created with a preference retains it, and every job on the pool's queue belongs to one of those,
/// so no job can be enqueued on, or run for, a pool object that is gone.
extension ThreadPool: TaskExecutor {
    /// Queues a Swift concurrency job to run on one of the workers (called by the runtime).
    ///
    /// The job goes to the queue's lane for its `ExecutorJob/priority` (its task's priority, or the
    /// one ``run(priority:_:)`` gives the calling task's job), as
    /// ``applyAsync(priority:_:callback:errorCallback:)`` queues a task: among queued work, a higher
    /// priority starts first, equal priorities in the order they were enqueued, and no lane starves.
    /// A job of medium or unspecified priority takes the same lock-free path as
    /// ``applyAsync(_:callback:errorCallback:)``.
    ///
    /// With a ``Configuration/queueCapacity``, a job never waits for room (the runtime's thread that
    /// enqueues it must not block): the job of a task that ``run(priority:_:)`` moves onto the pool
    /// goes into the slot `run` waited for, and the jobs of tasks already running on the pool (resuming
    /// after an `await`), or started with the pool as their executor preference, are queued beyond the
    /// capacity if need be.
    public func enqueue(_ job: consuming ExecutorJob) {
        let own = job.priority.rawValue
        let job = UnownedJob(job)
        let (priority, reserved) = jobPriorities.take(for: job, own: own)
        if !cPool.submit(job, priority: priority, reserved: reserved) {
            globalConcurrentExecutor.enqueue(job)
        }
    }

    /// The pool as an unowned task executor (called by the runtime).
    public func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }
}
