/// Watches a pool: its tasks as they are queued, start and finish, its workers as they start and
/// exit, and the failures it otherwise handles silently. Set one in ``ThreadPool/Configuration/observer``.
///
/// ```swift
/// final class Counting: ThreadPoolObserver {
///     let finished = Atomic<Int>(0)
///     func taskFinished(pool: String, outcome: ThreadPoolTaskOutcome, wait: Duration, run: Duration?) {
///         finished.wrappingAdd(1, ordering: .relaxed)
///     }
/// }
/// var configuration = ThreadPool.Configuration()
/// configuration.name = "db"
/// configuration.observer = Counting()
/// let pool = try ThreadPool(configuration)
/// ```
///
/// Every method has an empty default: implement those you need. `pool` is the pool's name
/// (``ThreadPool/Configuration/name``), or `"pool"` for an unnamed one, so one observer can watch
/// several pools. The `Metrics` and `Logging` package traits bring two observers
/// (`MetricsThreadPoolObserver`, `LoggingThreadPoolObserver`).
///
/// A task is anything the pool queues and a worker runs: a closure (`applyAsync`, `execute`), a
/// `map` chunk, a `broadcast` entry, a Swift concurrency job it runs as an executor (`run`, actors on
/// a worker): what ``ThreadPoolStats`` counts. Each accepted task is reported queued once and finished
/// once, and started once in between unless ``ThreadPool/terminate()`` dropped it. A submit that
/// throws reports nothing.
///
/// The methods are called on the thread where the event happens (the submitting thread, a worker,
/// the thread calling ``ThreadPool/terminate()``), concurrently and without any lock of the pool held:
/// keep them short and thread-safe, and do not wait for the pool in them. A task may be reported
/// started, even finished, on a worker before its `taskQueued` call on the submitting thread returns:
/// an observer that keeps gauges counts with atomics, or under a lock, and lets them settle.
///
/// A class (`AnyObject`): an observer is shared by the pool's threads and usually keeps counters of
/// its own, and the pool keeps one reference to it. Without an observer (the default) a pool costs
/// one test per submit more and takes no timestamps; with one, each task costs a small allocation,
/// two clock reads and the observer's calls.
public protocol ThreadPoolObserver: AnyObject, Sendable {
    /// `count` tasks were queued (`map` and `broadcast` queue several at once), on the submitting thread.
    func taskQueued(pool: String, count: Int)
    /// A task started on the calling worker, after waiting `wait` in the queue.
    func taskStarted(pool: String, wait: Duration)
    /// A task finished, `wait` after it was queued: it ran for `run`, or it was cancelled. `run` is nil
    /// for a task that never started (``ThreadPool/terminate()`` dropped it: no `taskStarted` came
    /// before); a task cancelled through its ``AsyncResult`` while queued is started by the worker
    /// that takes it and finishes at once, `.cancelled`.
    func taskFinished(pool: String, outcome: ThreadPoolTaskOutcome, wait: Duration, run: Duration?)
    /// `worker` is ready for tasks (its initializer has returned), on that worker. A pool's first
    /// workers are reported before its initializer returns.
    func workerStarted(pool: String, worker: WorkerInfo)
    /// `worker` exited, after its finalizer, on that worker. `retired`: it was a worker beyond the
    /// pool's size (``ThreadPool/Configuration/maxThreads``, or one standing in for a blocked worker),
    /// counted in ``ThreadPoolStats/threadsRetired``.
    func workerExited(pool: String, worker: WorkerInfo, retired: Bool)
    /// Something went wrong that the pool handles on its own and reports nowhere else.
    func failure(pool: String, _ failure: ThreadPoolFailure)
    /// The pool was dropped (its last reference went away) with `queuedTasks` tasks still queued:
    /// its `deinit` closes it and waits for them.
    func poolDropped(pool: String, queuedTasks: Int)
}

extension ThreadPoolObserver {
    public func taskQueued(pool: String, count: Int) {}
    public func taskStarted(pool: String, wait: Duration) {}
    public func taskFinished(pool: String, outcome: ThreadPoolTaskOutcome, wait: Duration, run: Duration?) {}
    public func workerStarted(pool: String, worker: WorkerInfo) {}
    public func workerExited(pool: String, worker: WorkerInfo, retired: Bool) {}
    public func failure(pool: String, _ failure: ThreadPoolFailure) {}
    public func poolDropped(pool: String, queuedTasks: Int) {}
}

/// How a task ended, for ``ThreadPoolObserver/taskFinished(pool:outcome:wait:run:)``.
public enum ThreadPoolTaskOutcome: Sendable, Hashable {
    /// It ran and returned (a task without a result, a Swift job, or a closure that did not throw).
    case completed
    /// It ran and threw (counted in ``ThreadPoolStats/failed``).
    case failed
    /// It never ran: ``ThreadPool/terminate()`` dropped it, or its ``AsyncResult`` was cancelled
    /// before it started (reported when a worker or `terminate()` takes it off the queue). A task a
    /// worker waiting for its result ran itself is reported `.completed` or `.failed` then.
    case cancelled
}

/// A failure the pool handles on its own (it keeps running), for ``ThreadPoolObserver/failure(pool:_:)``.
public enum ThreadPoolFailure: Sendable {
    /// The initializer of a worker the pool started beyond its first workers (growing for queued
    /// work, or standing in for a blocked worker) threw: that worker exited and the pool runs with
    /// the workers it has. (At the pool's start the error is thrown by its initializer instead.)
    case initializerFailed(worker: Int, error: any Error)
    /// A thread could not be created while the pool grew (`code`: `pthread_create`'s error, or -1
    /// when its name could not be allocated); the pool runs with the workers it has.
    case threadCreationFailed(worker: Int, code: Int)
    /// A task threw after its caller had dropped its ``AsyncResult``: nobody could read the error.
    case unobservedTaskError(any Error)
}
