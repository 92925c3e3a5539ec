import Synchronization

/// A pool of worker threads that run closures, with the semantics of Python's
/// `multiprocessing.pool.ThreadPool`.
///
/// Each worker runs the pool's `initializer` once, on itself, before its first task, and its
/// `finalizer` once, on itself, as it exits; thread-local state set up in the initializer (see
/// ``ThreadLocal``) is therefore seen by every task that worker runs.
///
/// Thread safety: every method may be called from any thread, concurrently. Tasks start in the order
/// they were submitted; with more than one worker they may finish in any order.
///
/// Lifecycle: ``close()`` stops new submissions and lets queued tasks run; ``terminate()`` stops new
/// submissions and drops queued tasks (their results become ``ThreadPoolError/cancelled``); ``join()-4pmv3``
/// then waits for every worker to finish its finalizer and exit.
///
/// Dropping the last reference: `deinit` closes the pool and joins it, so every queued task still runs
/// and no thread outlives the pool; if the last reference is dropped on one of the pool's own workers
/// (a task that captured the pool outlived every other reference), the pool is closed and its workers
/// exit on their own once the queue is drained, the last one freeing the pool.
public final class ThreadPool: Sendable {
    /// The largest `threads` a pool accepts.
    public static let maximumThreadCount = CPool.maximumThreadCount

    /// The number of workers a pool created without a count starts: the number of CPUs this process
    /// may use.
    ///
    /// That is the smaller of two counts, and at least 1:
    /// - the CPUs in the process's affinity mask (`sched_getaffinity`, which `taskset`, cpusets and
    ///   `docker run --cpuset-cpus` set; elsewhere than Linux, the CPUs online);
    /// - the CPU quota of its cgroup, rounded up: cgroup v2 `cpu.max`, or v1 `cpu.cfs_quota_us`
    ///   divided by `cpu.cfs_period_us`, the tightest of the process's cgroup and its ancestors. This
    ///   is what `docker run --cpus` and a Kubernetes CPU limit set: a container limited to 2 CPUs on
    ///   a 64-CPU host gets 2, as with SwiftNIO's `System.coreCount` and Go's `GOMAXPROCS`. A quota
    ///   that cannot be read counts as none.
    ///
    /// The environment variable `THREADPOOLKIT_THREADS`, a whole number from 1 up, overrides both
    /// (above ``maximumThreadCount`` it means ``maximumThreadCount``; anything else in it is ignored).
    /// The result is at most ``maximumThreadCount``. It is worked out again on each read, since a
    /// container's quota may change while it runs; a pool keeps the count it started with.
    public static var defaultThreadCount: Int { CPool.defaultThreadCount }

    /// The C pool. It is thread-safe on its own (a mutex and a lock-free inbox for submits inside)
    /// and lives until `deinit`.
    let cPool: CPool
    /// What the workers share with the pool (initializer, finalizer, counters).
    @usableFromInline let shared: PoolShared
    /// The imap iterators that may still pull input, so that close() and terminate() reach them, and
    /// the worker executors alive.
    private let registry = Locked(Registry())
    /// Priorities given to tasks' jobs by `run(priority:_:)`, for `enqueue`.
    /// Process-wide (entries are keyed by task): a pool costs no allocation for it.
    var jobPriorities: JobPriorities { JobPriorities.shared }
    /// `Lifecycle` raw values; only ever moves forward.
    private let lifecycle = Atomic<UInt8>(Lifecycle.running.rawValue)

    /// The number of worker threads the pool always keeps (an elastic pool may run more for a while:
    /// see ``Configuration/maxThreads`` and ``stats``).
    public let threadCount: Int
    /// Whether a submit to a full bounded queue waits (``FullQueuePolicy/wait``), and whether one that
    /// may not wait runs the task itself (``FullQueuePolicy/runOnCaller``) or throws.
    @usableFromInline let submitMayBlock: Bool
    @usableFromInline let runsOnCallerWhenFull: Bool
    /// ``Configuration/queueCapacity``: nil for an unbounded queue.
    @usableFromInline let queueCapacity: Int?

    private enum Lifecycle: UInt8 {
        case running, closed, terminated
    }

    private struct Registry {
        var iterators: [ObjectIdentifier: IteratorRegistration] = [:]
        var accepting = true // false from the start of close() or terminate()
        /// By worker index, so that serialExecutor(worker:) hands out one executor per worker while it
        /// lives. Weak: an executor holds its pool.
        var workerExecutors: [Int: WeakWorkerExecutor] = [:]
    }

    private struct WeakWorkerExecutor {
        weak var executor: WorkerExecutor?
    }

    /// Starts `threads` workers (nil: ``defaultThreadCount``, the number of CPUs this process may use,
    /// container CPU quotas included, or `THREADPOOLKIT_THREADS` when it is set). Each worker runs
    /// `initializer` once, on itself, before its first task; `finalizer` once, on itself, as it exits.
    /// Returns only after every initializer has finished; if one throws, the workers already started are
    /// stopped and joined and this throws ``ThreadPoolError/initializerFailed(worker:underlying:)``.
    ///
    /// Workers are named "Thread-N" from a process-wide counter (as Python names threads), or
    /// "<name>-<i>" (i from 1) when `name` is given. The OS thread name is set too, cut to 15 bytes on a
    /// UTF-8 boundary.
    /// - Throws: ``ThreadPoolError/invalidThreadCount(_:)`` for `threads` outside
    ///   `1...maximumThreadCount`; ``ThreadPoolError/systemError(function:code:)`` if a thread could
    ///   not be created.
    public convenience init(
        threads: Int? = nil, name: String? = nil,
        initializer: (@Sendable () throws -> Void)? = nil,
        finalizer: (@Sendable () -> Void)? = nil
    ) throws(ThreadPoolError) {
        if let threads, !(1...Self.maximumThreadCount).contains(threads) {
            throw .invalidThreadCount(threads)
        }
        var configuration = Configuration()
        configuration.threads = threads
        configuration.name = name
        try self.init(validated: configuration, initializer: initializer, finalizer: finalizer)
    }

    /// Starts the C pool for a configuration already validated.
    init(
        validated configuration: Configuration, initializer: (@Sendable () throws -> Void)?,
        finalizer: (@Sendable () -> Void)?
    ) throws(ThreadPoolError) {
        let shared = PoolShared(
            name: configuration.name, initializer: initializer, finalizer: finalizer,
            observer: configuration.observer)
        let cPool = try CPool.start(
            configuration, runsInitializer: initializer != nil,
            runsFinalizer: finalizer != nil, shared: shared)
        self.cPool = cPool
        self.shared = shared
        self.threadCount = cPool.threadCount
        self.submitMayBlock = configuration.whenFull == .wait
        self.runsOnCallerWhenFull = configuration.whenFull == .runOnCaller
        self.queueCapacity = configuration.queueCapacity
        shared.taskExecutor = UnownedTaskExecutor(ordinary: self)
    }

    deinit {
        if let observer = shared.observer, isRunning {
            let queued = cPool.counters().queued
            if queued > 0 { observer.poolDropped(pool: shared.observedName, queuedTasks: queued) }
        }
        close() // lets imap iterators finish their input, as an explicit close() would
        cPool.destroy()
    }

    // MARK: Lifecycle

    /// Stops accepting new work; queued tasks still run. Calling it again, or after ``terminate()``,
    /// does nothing.
    public func close() {
        // Iterators first, while the pool still accepts their runners: their remaining input counts
        // as queued work.
        for iterator in registry.withLock({ r in
            r.accepting = false; return Array(r.iterators.values)
        }) {
            iterator.drain(via: self)
        }
        if cPool.close() {
            _ = lifecycle.compareExchange(
                expected: Lifecycle.running.rawValue, desired: Lifecycle.closed.rawValue,
                ordering: .relaxed)
        }
    }

    /// Stops accepting new work and drops every queued task: each result becomes
    /// ``ThreadPoolError/cancelled``. Results without callbacks are ready when this returns; results
    /// with callbacks become ready once their `errorCallback` has run on the callback thread. Running
    /// tasks finish. Calling it again does nothing.
    public func terminate() {
        lifecycle.store(Lifecycle.terminated.rawValue, ordering: .relaxed)
        shared.terminating.store(true, ordering: .relaxed)
        let iterators = registry.withLock { r in
            r.accepting = false
            defer { r.iterators = [:] }
            return Array(r.iterators.values)
        }
        for iterator in iterators { iterator.poolTerminated() }
        cPool.terminate()
    }

    /// Whether the pool still accepts work (neither `close()` nor `terminate()` has been called).
    @usableFromInline
    var isRunning: Bool {
        lifecycle.load(ordering: .relaxed) == Lifecycle.running.rawValue
    }

    /// Whether ``terminate()`` has been called.
    var isTerminated: Bool {
        lifecycle.load(ordering: .relaxed) == Lifecycle.terminated.rawValue
    }

    /// Whether the calling thread is one of this pool's workers.
    @usableFromInline
    var isCurrentWorker: Bool {
        cPool.isCurrentWorker
    }

    /// Adds an imap iterator to the registry. Throws ``ThreadPoolError/notRunning`` once close() or
    /// terminate() has begun.
    @usableFromInline
    func register(_ iterator: IteratorRegistration) throws(ThreadPoolError) {
        let accepted = registry.withLock { r in
            if r.accepting { r.iterators[ObjectIdentifier(iterator)] = iterator }
            return r.accepting
        }
        if !accepted { throw .notRunning }
    }

    /// Worker `worker`'s executor if one is alive, else a new one made by `make`.
    func workerExecutor(_ worker: Int, orMake make: () -> WorkerExecutor) -> WorkerExecutor {
        registry.withLock { r in
            if let alive = r.workerExecutors[worker]?.executor { return alive }
            let made = make()
            r.workerExecutors[worker] = WeakWorkerExecutor(executor: made)
            return made
        }
    }

    /// Removes an iterator that will pull no more input.
    @usableFromInline
    func unregister(_ iterator: IteratorRegistration) {
        _ = registry.withLock { $0.iterators.removeValue(forKey: ObjectIdentifier(iterator)) }
    }

    /// Waits until every worker has run its finalizer and exited. A second call returns at once.
    ///
    /// A running task cannot be interrupted (a thread cannot be stopped safely from outside), so a
    /// task that never returns makes `join()` never return, after ``terminate()`` too: make blocking
    /// tasks wait with a timeout or on something `close()`/`terminate()` callers can signal. A
    /// finalizer that traps ends the process, as any trap does.
    /// - Throws: ``ThreadPoolError/stillRunning`` before ``close()`` or ``terminate()``;
    ///   ``ThreadPoolError/wouldDeadlock`` from one of the pool's own workers.
    // Disfavoured, not `noasync`: async functions and top-level code pick the async overload
    // (ThreadPool+AsyncWaits.swift), and the compiler asks them for `await`; top-level code inside
    // a loop body still resolves to this one, which `noasync` would then reject.
    @_disfavoredOverload
    public func join() throws(ThreadPoolError) {
        try joinBlocking()
    }

    /// The blocking join, for ``join()-4pmv3`` and the thread that ``join()-4pmv3`` (async) starts.
    func joinBlocking() throws(ThreadPoolError) {
        try cPool.join()
        shared.joinCallbacks() // every task has finished or been dropped: no callback can come after
    }

    // MARK: Introspection

    /// The worker running the calling code, or nil off every pool's threads. In a callback it is the
    /// pool's callback thread (index 0, named `"<name>-callbacks-1"`, or `"pool-callbacks-1"` for an
    /// unnamed pool).
    public static var currentWorker: WorkerInfo? {
        guard let worker = CPool.currentWorker else { return nil }
        return WorkerInfo(index: worker.index, name: worker.name)
    }

    /// Whether pools are closed and joined at normal process exit (true by default), so that a pool
    /// in a global or a top-level `let` of `main.swift`, which is never deinitialized, loses no queued
    /// work when the program ends: each pool not yet joined is closed (its queued tasks still run) and
    /// joined, oldest first, as Python joins its executors' workers at interpreter exit. A pool is
    /// skipped when the exit happens on one of its own workers (it would wait for itself), and when it
    /// was dropped on one of its own workers (its workers finish on their own). Set it to false when a
    /// task may never return (a server loop): the process then exits without waiting, as it did
    /// before, and queued work is lost. The setting is process-wide and read at exit.
    public static var joinsAtExit: Bool {
        get { CPool.joinsAtExit }
        set { CPool.joinsAtExit = newValue }
    }

    /// A snapshot of the pool's counters (see ``ThreadPoolStats`` for what each one counts).
    public var stats: ThreadPoolStats {
        // A task cancelled with AsyncResult.cancel() counts as cancelled from that moment, and one a
        // waiting worker ran itself as completed once it finished; either stays in the C queue until
        // a worker or terminate() takes it, and the C pool then counts it as declined. Both counts
        // are read before the C snapshot, so that a task cancelled or run in between is queued or
        // declined there: counted at least once (see ThreadPoolStats), and no count decreases.
        let cancelledByCaller = shared.cancelledWhileQueued.load(ordering: .relaxed)
        let ranInline = shared.ranInline.load(ordering: .relaxed)
        let counters = cPool.counters()
        // Finished or cancelled but not yet taken off the C queue (negative when some were taken
        // after the reads above): not queued any more.
        let settledStillQueued = cancelledByCaller + ranInline - counters.declined
        return ThreadPoolStats(
            threads: counters.threads,
            idle: counters.idle,
            queued: max(0, counters.queued - settledStillQueued),
            running: counters.running,
            completed: counters.completed + ranInline,
            failed: shared.failed.load(ordering: .relaxed),
            cancelled: counters.cancelled + cancelledByCaller,
            peakThreads: counters.peakThreads,
            threadsStarted: counters.threadsStarted,
            threadsRetired: counters.threadsRetired,
            growFailures: counters.growFailures)
    }
}

extension ThreadPool: CustomStringConvertible {
    /// `<ThreadPool state=running threads=4>`, as Python's repr shows a pool's state and size.
    public var description: String {
        let state = Lifecycle(rawValue: lifecycle.load(ordering: .relaxed)) ?? .running
        return "<ThreadPool state=\(state) threads=\(threadCount)>"
    }
}
