extension ThreadPool {
    /// How a pool is made: its size (fixed, or elastic between `threads` and `maxThreads`), its
    /// queue's capacity and what a submit does when it is full, and where its workers run.
    ///
    /// ```swift
    /// var configuration = ThreadPool.Configuration()
    /// configuration.threads = 2          // always kept
    /// configuration.maxThreads = 64      // started for queued work while none is idle
    /// configuration.keepAlive = .seconds(10)
    /// configuration.queueCapacity = 1_000
    /// configuration.whenFull = .wait     // or .fail, .runOnCaller
    /// let pool = try ThreadPool(configuration)
    /// ```
    public struct Configuration: Sendable {
        /// The workers the pool always keeps; nil: ``ThreadPool/defaultThreadCount``.
        public var threads: Int? = nil
        /// The most workers started for queued work: when a task is queued, no worker is idle and
        /// fewer than this many run, a worker starts (its initializer first). Nil: `threads` (a fixed
        /// size). Workers waiting inside the pool are stood in for beyond this, up to 64 more.
        public var maxThreads: Int? = nil
        /// How long a worker beyond `threads` may wait for work before it retires (its finalizer runs).
        public var keepAlive: Duration = .seconds(10)
        /// Workers are named `"<name>-<index+1>"`; nil: `"Thread-N"` from a process-wide counter.
        public var name: String? = nil
        /// Each worker's stack size in bytes; nil: the system's default.
        public var stackSize: Int? = nil
        /// The most tasks queued and not started; nil: unbounded.
        public var queueCapacity: Int? = nil
        /// What a submit does when the queue is full (with a `queueCapacity`).
        public var whenFull: FullQueuePolicy = .wait
        /// Linux: worker `i` runs on CPU `pinnedCPUs[i % count]` (best effort: a CPU the process may
        /// not use leaves the worker unpinned). Nil: no pinning.
        public var pinnedCPUs: [Int]? = nil
        /// Linux: each worker thread's nice value, -20...19 (best effort: lowering it needs
        /// privileges). Nil: inherited.
        public var niceness: Int? = nil
        /// Told about the pool's tasks, workers and silent failures (see ``ThreadPoolObserver``). Nil:
        /// none, and no cost but one test per submit.
        public var observer: (any ThreadPoolObserver)? = nil

        /// The defaults: ``ThreadPool/defaultThreadCount`` workers, fixed, unbounded.
        public init() {}
    }

    /// What a submit does when the pool's queue is full (``Configuration/queueCapacity``).
    public enum FullQueuePolicy: Sendable {
        /// The submitter waits until there is room: a synchronous submit blocks its thread; `run`,
        /// the async `map` and the async `concurrentPerform` suspend the calling task without blocking
        /// a thread (first come, first served; a cancelled task stops waiting with
        /// `CancellationError`). A submit from one of the pool's own workers never waits for itself: it
        /// runs queued tasks, or its own work, instead.
        case wait
        /// The submit throws ``ThreadPoolError/queueFull``.
        case fail
        /// The task runs at once on the submitting thread (Java's `CallerRunsPolicy`).
        case runOnCaller
    }

    /// Starts a pool as `configuration` says. Each worker runs `initializer` once, on itself, before
    /// its first task, and `finalizer` once as it exits (workers started later, in an elastic pool,
    /// too). Returns only after the first `threads` initializers have finished.
    /// - Throws: ``ThreadPoolError/invalidConfiguration(_:)`` for a count, capacity, stack size, CPU
    ///   or nice value out of range (saying which); ``ThreadPoolError/initializerFailed(worker:underlying:)``;
    ///   ``ThreadPoolError/systemError(function:code:)`` if a thread could not be created.
    public convenience init(
        _ configuration: Configuration,
        initializer: (@Sendable () throws -> Void)? = nil,
        finalizer: (@Sendable () -> Void)? = nil
    ) throws(ThreadPoolError) {
        try configuration.validate()
        try self.init(validated: configuration, initializer: initializer, finalizer: finalizer)
    }

    /// The most workers this pool starts for queued work (``Configuration/maxThreads``; equal to
    /// ``threadCount`` for a fixed size).
    public var maxThreadCount: Int { cPool.maxThreadCount }

    /// Runs `body`, which is about to block (on I/O, a lock, a semaphore another task signals), telling
    /// the pool first when called on one of its workers: while it blocks, the pool starts a worker to
    /// stand in for it if none is idle, so that waiting never starves the pool of workers, and retires
    /// it afterwards (Java's `ManagedBlocker`, Tokio's `block_in_place`). Off the pool it just runs
    /// `body`. Waits inside the pool (`get`, `apply`, `map`, ...) do this by themselves.
    public static func blocking<R>(_ body: () throws -> R) rethrows -> R {
        CPool.blockBegin()
        defer { CPool.blockEnd() }
        return try body()
    }
}

extension ThreadPool.Configuration {
    /// Throws ``ThreadPoolError/invalidConfiguration(_:)`` for the first value out of range.
    func validate() throws(ThreadPoolError) {
        let maximum = ThreadPool.maximumThreadCount
        if let threads, !(1...maximum).contains(threads) {
            throw .invalidConfiguration("threads \(threads): use 1...\(maximum), or nil for the default")
        }
        if let maxThreads, !(1...maximum).contains(maxThreads) || maxThreads < (threads ?? 1) {
            throw .invalidConfiguration("maxThreads \(maxThreads): use threads...\(maximum), or nil for a fixed size")
        }
        if keepAlive <= .zero { throw .invalidConfiguration("keepAlive \(keepAlive): it must be positive") }
        if let queueCapacity, queueCapacity < 1 {
            throw .invalidConfiguration("queueCapacity \(queueCapacity): use at least 1, or nil for unbounded")
        }
        if let stackSize, stackSize < 16 * 1024 {
            throw .invalidConfiguration("stackSize \(stackSize): use at least 16384 bytes, or nil for the default")
        }
        if let pinnedCPUs, pinnedCPUs.isEmpty || pinnedCPUs.contains(where: { !(0..<1024).contains($0) }) {
            throw .invalidConfiguration("pinnedCPUs \(pinnedCPUs): CPU indices in 0..<1024, or nil")
        }
        if let niceness, !(-20...19).contains(niceness) {
            throw .invalidConfiguration("niceness \(niceness): use -20...19, or nil")
        }
    }
}
