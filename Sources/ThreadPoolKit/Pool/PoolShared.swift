import Synchronization

/// What a pool's workers share with it: the initializer and finalizer, the first initializer error,
/// and the counters the C pool does not keep. The C pool holds one reference to it as its context
/// and releases it when the pool is freed, after every finalizer has run.
@usableFromInline
final class PoolShared: Sendable {
    let initializer: (@Sendable () throws -> Void)?
    let finalizer: (@Sendable () -> Void)?
    /// The first initializer failure: (worker index, error).
    let initializerFailure = Locked<(worker: Int, error: any Error)?>(nil)
    /// Tasks that threw.
    let failed = Atomic<Int>(0)
    /// Set when terminate() begins: work that hands itself out in pieces (a map's chunks) stops
    /// handing out the pieces not yet started.
    @usableFromInline let terminating = Atomic<Bool>(false)
    /// Tasks cancelled with `AsyncResult.cancel()` while queued. Each stays in the C queue until a
    /// worker or terminate() takes it, and the C pool then counts it as declined.
    let cancelledWhileQueued = Atomic<Int>(0)
    /// Tasks a worker waiting for their result ran itself before any worker took them (see
    /// `AsyncResult.runInlineIfOnOwnPool()`). Each stays in the C queue until a worker takes it, and
    /// the C pool then counts it as declined.
    let ranInline = Atomic<Int>(0)
    /// Submitters waiting for room in the bounded queue (tasks suspended, threads blocked): see
    /// ``RoomWaiter``. For tests.
    let roomWaits = Atomic<Int>(0)
    /// Test hook: called by `AsyncResult.cancel()` between its claim and its use of this object.
    nonisolated(unsafe) var afterCancelClaimed: (@Sendable () -> Void)?

    /// The pool as a task executor, for running Swift concurrency jobs on the workers. Written once by
    /// ThreadPool.init, before any job can be queued (the queue's mutex orders it before every read).
    nonisolated(unsafe) var taskExecutor: UnownedTaskExecutor?

    /// The pool's name, for its callback thread's name.
    let name: String?
    /// The pool's observer (``ThreadPool/Configuration/observer``), called through the C pool's
    /// observer hook (CBridge/CPool.swift).
    let observer: (any ThreadPoolObserver)?
    /// The name an observer is given: the pool's, or "pool".
    var observedName: String { name ?? "pool" }
    /// Errors thrown by the initializers of workers started after the pool's start, by worker index,
    /// until the C pool reports the failure to the observer (on the same worker, just after). Only
    /// with an observer: a lock costs a pool two allocations.
    let grownInitializerErrors: Locked<[Int: any Error]>?
    /// The serial pool that runs callbacks, started on first use.
    private let callbacks = Locked<CallbackPoolState>(.notStarted)

    private enum CallbackPoolState {
        case notStarted
        case running(CPool)
        case closed(CPool?) // joinCallbacks() began; freed in deinit
    }

    init(
        name: String?, initializer: (@Sendable () throws -> Void)?, finalizer: (@Sendable () -> Void)?,
        observer: (any ThreadPoolObserver)? = nil
    ) {
        self.name = name
        self.observer = observer
        self.grownInitializerErrors = observer != nil ? Locked([:]) : nil
        self.initializer = initializer
        self.finalizer = finalizer
    }

    deinit {
        joinCallbacks()
        if case .closed(let pool?) = callbacks.withLock({ $0 }) {
            // From the callback thread itself (the pool was dropped in a callback) this lets the
            // thread free the C pool once it has run its last callback.
            pool.destroy()
        }
    }

    /// The shared state of the pool whose worker is calling, or nil off every pool's threads.
    @usableFromInline
    static var current: PoolShared? {
        CPool.currentShared
    }

    /// Counts a task that threw, and tells the C pool, for its observer, that the task it is running
    /// failed (see `ctp_task_failed`). Called on the thread running the task.
    @usableFromInline
    func recordFailure() {
        failed.wrappingAdd(1, ordering: .relaxed)
        CPool.markTaskFailed()
    }

    /// A task whose result had been dropped threw `error`: nobody else can see it.
    @usableFromInline
    func reportUnobserved(_ error: any Error) {
        observer?.failure(pool: observedName, .unobservedTaskError(error))
    }

    func recordInlineRun() {
        ranInline.wrappingAdd(1, ordering: .relaxed)
    }

    func recordCancellation() {
        cancelledWhileQueued.wrappingAdd(1, ordering: .relaxed)
    }

    /// Tells the C pool that the task it is calling did no work: it was cancelled while queued (and
    /// counted then), so the pool counts it as declined, not as completed or cancelled.
    static func declineCurrentTask() {
        CPool.declineCurrentTask()
    }

    // MARK: The callback thread

    /// Hands `job` to the callback thread, starting it if needed. False if it cannot take it (it has
    /// been closed, or could not start): the caller then delivers the callbacks itself.
    @usableFromInline
    func runCallbacks(of job: _ThreadPoolJob) -> Bool {
        let pool = callbacks.withLock { state -> CPool? in
            switch state {
            case .running(let pool): return pool
            case .closed: return nil
            case .notStarted:
                guard let pool = CPool.startSerial(name: "\(name ?? "pool")-callbacks") else { return nil }
                state = .running(pool)
                return pool
            }
        }
        return pool?.submitCallbacks(of: job) ?? false
    }

    /// Runs the callbacks still queued and stops the callback thread; later callbacks run on the
    /// thread that completes their result. Called after the pool's workers have been joined; several
    /// threads may call it at once, and each returns once the callbacks have run.
    func joinCallbacks() {
        let pool = callbacks.withLock { state -> CPool? in
            switch state {
            case .notStarted:
                state = .closed(nil)
                return nil
            case .running(let pool):
                state = .closed(pool)
                return pool
            case .closed(let pool):
                return pool
            }
        }
        guard let pool else { return }
        pool.close()
        // .wouldDeadlock from the callback thread itself (a callback joined the pool): it cannot wait
        // for itself, and the callbacks queued behind it run when it returns.
        try? pool.join()
    }

    /// Runs the initializer on worker `index`; a throw is recorded (the first one wins) and fails the start.
    func initialize(worker index: Int) -> Int32 {
        do {
            try initializer?()
            return 0
        } catch {
            initializerFailure.withLock { failure in
                if failure == nil { failure = (index, error) }
            }
            grownInitializerErrors?.withLock { $0[index] = error }
            return 1
        }
    }
}
