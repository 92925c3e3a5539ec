internal import CThreadPool
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
    public static let maximumThreadCount = Int(CTP_MAX_THREADS)

    /// The C pool. It is thread-safe on its own (a mutex and a lock-free inbox for submits inside)
    /// and lives until `deinit`.
    nonisolated(unsafe) let handle: OpaquePointer
    /// What the workers share with the pool (initializer, finalizer, counters).
    @usableFromInline let shared: PoolShared
    /// The imap iterators that may still pull input, so that close() and terminate() reach them.
    private let registry = Locked(Registry())
    /// `Lifecycle` raw values; only ever moves forward.
    private let lifecycle = Atomic<UInt8>(Lifecycle.running.rawValue)

    /// The number of worker threads.
    public let threadCount: Int

    private enum Lifecycle: UInt8 {
        case running, closed, terminated
    }

    private struct Registry {
        var iterators: [ObjectIdentifier: IteratorRegistration] = [:]
        var accepting = true // false from the start of close() or terminate()
    }

    /// Starts `threads` workers (nil: the number of CPUs this process may run on). Each worker runs
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
    public init(threads: Int? = nil, name: String? = nil,
                initializer: (@Sendable () throws -> Void)? = nil,
                finalizer: (@Sendable () -> Void)? = nil) throws(ThreadPoolError) {
        if let threads, !(1...Self.maximumThreadCount).contains(threads) {
            throw .invalidThreadCount(threads)
        }
        let shared = PoolShared(name: name, initializer: initializer, finalizer: finalizer)
        var options = ctp_options()
        ctp_options_init(&options)
        options.threads = UInt32(threads ?? 0)
        options.initializer = initializer == nil ? nil : PoolShared.initializeWorker
        options.finalizer = finalizer == nil ? nil : PoolShared.finalizeWorker
        options.context = Unmanaged.passRetained(shared).toOpaque()
        options.context_release = PoolShared.release

        var pool: OpaquePointer?
        let status: Int32
        if let name {
            status = name.withCString { prefix in
                options.name_prefix = prefix // copied by ctp_pool_create
                return ctp_pool_create(&options, &pool)
            }
        } else {
            status = ctp_pool_create(&options, &pool)
        }
        guard status == 0, let pool else {
            Unmanaged.passUnretained(shared).release() // on failure the context is still ours
            if status == CTP_EINIT, let failure = shared.initializerFailure.withLock({ $0 }) {
                throw .initializerFailed(worker: failure.worker, underlying: failure.error)
            }
            throw ThreadPoolError(status: status, function: status == CTP_EAGAIN ? "pthread_create" : "ctp_pool_create")
        }
        self.handle = pool
        self.shared = shared
        self.threadCount = Int(ctp_pool_thread_count(pool))
        shared.taskExecutor = UnownedTaskExecutor(ordinary: self)
    }

    deinit {
        close() // lets imap iterators finish their input, as an explicit close() would
        ctp_pool_destroy(handle)
    }

    // MARK: Lifecycle

    /// Stops accepting new work; queued tasks still run. Calling it again, or after ``terminate()``,
    /// does nothing.
    public func close() {
        // Iterators first, while the pool still accepts their runners: their remaining input counts
        // as queued work.
        for iterator in registry.withLock({ r in r.accepting = false; return Array(r.iterators.values) }) {
            iterator.drain(via: self)
        }
        if ctp_pool_close(handle) == 0 {
            _ = lifecycle.compareExchange(expected: Lifecycle.running.rawValue, desired: Lifecycle.closed.rawValue,
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
        ctp_pool_terminate(handle)
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
    var isCurrentWorker: Bool {
        ctp_current_pool() == handle
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
    @available(*, noasync, message: "blocks the thread until the workers exit; in async code use 'try await pool.join()'")
    public func join() throws(ThreadPoolError) {
        try joinBlocking()
    }

    /// The blocking join, for ``join()-4pmv3`` and the thread that ``join()-4pmv3`` (async) starts.
    func joinBlocking() throws(ThreadPoolError) {
        let status = ctp_pool_join(handle)
        if status != 0 { throw ThreadPoolError(status: status, function: "ctp_pool_join") }
        shared.joinCallbacks() // every task has finished or been dropped: no callback can come after
    }

    // MARK: Introspection

    /// The worker running the calling code, or nil off every pool's threads. In a callback it is the
    /// pool's callback thread (index 0, named `"<name>-callbacks-1"`, or `"pool-callbacks-1"` for an
    /// unnamed pool).
    public static var currentWorker: WorkerInfo? {
        let index = ctp_current_worker_index()
        guard index >= 0, let name = ctp_current_worker_name() else { return nil }
        return WorkerInfo(index: Int(index), name: String(cString: name))
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
        get { ctp_joins_at_exit() != 0 }
        set { ctp_set_join_at_exit(newValue ? 1 : 0) }
    }

    /// A snapshot of the pool's counters (see ``ThreadPoolStats`` for what each one counts).
    public var stats: ThreadPoolStats {
        // A task cancelled with AsyncResult.cancel() counts as cancelled from that moment; it stays in
        // the C queue until a worker or terminate() takes it, and the C pool then counts it as
        // declined. Read before the C snapshot, so that a task cancelled in between is queued or
        // declined there: counted at least once (see ThreadPoolStats), and the counts never decrease.
        let cancelledByCaller = shared.cancelledWhileQueued.load(ordering: .relaxed)
        var counters = ctp_stats()
        ctp_pool_stats(handle, &counters)
        // Cancelled by their callers and not yet taken off the C queue (negative when some were
        // cancelled and taken after the read above): not queued any more.
        let cancelledStillQueued = cancelledByCaller - Int(counters.declined)
        return ThreadPoolStats(
            threads: Int(counters.threads),
            idle: Int(counters.idle),
            queued: max(0, Int(counters.queued) - cancelledStillQueued),
            running: Int(counters.running),
            completed: Int(counters.completed),
            failed: shared.failed.load(ordering: .relaxed),
            cancelled: Int(counters.cancelled) + cancelledByCaller)
    }
}

extension ThreadPool: CustomStringConvertible {
    /// `<ThreadPool state=running threads=4>`, as Python's repr shows a pool's state and size.
    public var description: String {
        let state = Lifecycle(rawValue: lifecycle.load(ordering: .relaxed)) ?? .running
        return "<ThreadPool state=\(state) threads=\(threadCount)>"
    }
}
