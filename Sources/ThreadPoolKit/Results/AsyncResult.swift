import Synchronization

/// The result of a task submitted with ``ThreadPool/applyAsync(_:callback:errorCallback:)``.
///
/// Thread safety: every member may be called from any thread, concurrently. The result becomes ready
/// once: with the task's value, the task's error, or ``ThreadPoolError/cancelled``.
///
/// Callbacks: `callback` (on success) or `errorCallback` (on an error, including
/// ``ThreadPoolError/cancelled``) is called exactly once, never both, and has returned before the
/// result becomes ready, as in Python. The callbacks of one pool run one at a time, in the order the
/// results completed, on the pool's callback thread (named `"<name>-callbacks-1"`, or
/// `"pool-callbacks-1"` for an unnamed pool; started on first use), never on one of the pool's
/// workers: a callback that blocks delays only the callbacks (and results) after it, never the tasks,
/// nor results without callbacks. A callback must not wait for another result that has a callback:
/// that callback needs the callback thread, which is busy running this one.
///
/// Waiting on one of a pool's workers runs that pool's queued tasks meanwhile (so that waiting never
/// deadlocks); a timeout is then checked between those tasks, so it may be overshot by the length of
/// one task.
public final class AsyncResult<T: Sendable>: _ThreadPoolJob {
    // The fields are ordered to keep the object small (112 bytes: the allocator serves blocks up to
    // 128 bytes, with its own header, from its fast per-thread caches and lock-free bins), and so that
    // what the submitting thread writes for a reused result (`body`, `shared`, next to the reference
    // count) comes first: in a stream of tiny tasks a result's cache lines move from a worker to the
    // submitter and back for every task, and the lines only the workers touch then stay with them.

    // Owned by the claimer (see `word`). Exclusivity is not checked at run time: ownership is what the
    // atomic word hands over, and the dynamic checks cost about 5% of a tiny task.
    @usableFromInline @exclusivity(unchecked) nonisolated(unsafe) var body: (@Sendable () throws -> T)?
    /// The pool's shared state, for counters and the callback thread. Unowned: it outlives every task
    /// still queued (the pool frees it after the last one ran or was dropped), and it is only used by
    /// whoever claims the task, which happens before that.
    /// Set again when a kept result is reused (``make(_:callback:errorCallback:shared:)``).
    @usableFromInline @exclusivity(unchecked) unowned(unsafe) var shared: PoolShared?
    // The lifecycle word. `claimed`: a worker started the task, or cancel()/terminate() took it; the
    // thread that set it owns `body`, `callbacks` and `outcome` until it sets `ready`. After `ready`
    // (release), anyone may read `outcome` (acquire). `waiting`: a thread or task is parked on this
    // result's stripe of the parking lot and must be woken. `cancelling`: cancel() claimed the task
    // and is still using the pool's shared state; whoever takes the queued task waits for it to clear.
    @usableFromInline static var claimed: UInt8 { 1 }
    @usableFromInline static var ready: UInt8 { 2 }
    @usableFromInline static var waiting: UInt8 { 4 }
    @usableFromInline static var cancelling: UInt8 { 8 }
    // Set with `claimed` by a worker that runs the task while waiting for it (runInlineIfOnOwnPool),
    // and after the run if it threw: the worker that later takes the queue's entry tells the pool's
    // observer how the task ended rather than reporting it cancelled.
    @usableFromInline static var ranInline: UInt8 { 16 }
    @usableFromInline static var ranInlineFailed: UInt8 { 32 }
    @usableFromInline let word = Atomic<UInt8>(0)
    /// The callbacks, as one closure (nil without callbacks: the common case costs 16 bytes, not 32).
    @usableFromInline @exclusivity(unchecked) nonisolated(unsafe) var callbacks:
        (@Sendable (Result<T, any Error>) -> Void)?
    // The outcome (see ``outcome``): a `Result<T, any Error>?` in these bytes when it fits, else in a
    // box they point to. Untyped, so that freeing a result needs no runtime metadata: the destroyer
    // the compiler makes for a generic field looks up the field's type on every free (two lookups for
    // `Result<T, _>?`, a third of the instructions of reading and freeing a result), while
    // ``specialized`` destroys it with code made for `T`.
    @usableFromInline @exclusivity(unchecked) nonisolated(unsafe) var outcomeStorage: OutcomeStorage
    // Guarded by this result's parking-lot stripe mutex.
    @usableFromInline @exclusivity(unchecked) nonisolated(unsafe) var continuations: [UnsafeContinuation<Void, Never>]
    /// Runs the task once claimed, or resets a finished result for reuse. Made in the (inlinable)
    /// initializer, so that in a client built with optimization it is code specialized for `T`: the
    /// library's own code for a generic `T` looks up the runtime metadata of `Result<T, _>`,
    /// `Optional<T>` and the like on every use, which cost several lookups per task. The closure
    /// captures nothing, so storing it allocates nothing.
    @usableFromInline let specialized: (AsyncResult<T>, SpecializedStep) -> Void

    @inlinable
    init(
        _ body: @escaping @Sendable () throws -> T,
        callback: (@Sendable (T) -> Void)?,
        errorCallback: (@Sendable (any Error) -> Void)?,
        shared: PoolShared
    ) {
        self.body = body
        self.callbacks = Self.combine(callback, errorCallback)
        self.continuations = [] // here, not as a default value: that is a call into the library
        self.outcomeStorage = OutcomeStorage()
        self.shared = shared
        self.specialized = Self.specializedSteps
        super.init()
        initializeOutcome()
    }

    /// The steps of ``specialized``, made in the client's code for `T` (see there). One closure for
    /// every result: one made with ``init(resolvedLater:errorCallback:shared:)`` is claimed from the
    /// start and never run, so only its `reset` and `destroy` are used.
    @inlinable
    static var specializedSteps: (AsyncResult<T>, SpecializedStep) -> Void {
        { result, step in
            switch step {
            case .run: result.runBody()
            case .runUnobserved: result.runBodyUnobserved()
            case .reset: result.outcome = nil
            case .destroy: result.destroyOutcome()
            }
        }
    }

    deinit {
        specialized(self, .destroy)
    }

    // MARK: The outcome's storage

    /// Whether the outcome fits in ``outcomeStorage`` (a `T` of up to 16 bytes does), or is boxed.
    @inlinable
    static var outcomeIsInline: Bool {
        MemoryLayout<Result<T, any Error>?>.size <= MemoryLayout<OutcomeStorage>.size
            && MemoryLayout<Result<T, any Error>?>.alignment <= MemoryLayout<OutcomeStorage>.alignment
    }

    /// Written once by the claimer before `ready`; read-only afterwards (until the result is reset for
    /// reuse). Nil until then.
    @inlinable
    var outcome: Result<T, any Error>? {
        get { withOutcome { $0.pointee } }
        set { withOutcome { $0.pointee = newValue } }
    }

    /// Runs `body` with the outcome's address.
    @inlinable
    func withOutcome<R>(_ body: (UnsafeMutablePointer<Result<T, any Error>?>) -> R) -> R {
        withUnsafeMutablePointer(to: &outcomeStorage) { storage in
            let raw = UnsafeMutableRawPointer(storage)
            if Self.outcomeIsInline { return body(raw.assumingMemoryBound(to: Result<T, any Error>?.self)) }
            return body(raw.load(as: UnsafeMutablePointer<Result<T, any Error>?>.self))
        }
    }

    /// Makes the outcome nil, in ``outcomeStorage`` or in a new box. Called once, by the initializers.
    @inlinable
    func initializeOutcome() {
        withUnsafeMutablePointer(to: &outcomeStorage) { storage in
            let raw = UnsafeMutableRawPointer(storage)
            if Self.outcomeIsInline {
                raw.initializeMemory(as: Result<T, any Error>?.self, to: nil)
            } else {
                let box = UnsafeMutablePointer<Result<T, any Error>?>.allocate(capacity: 1)
                box.initialize(to: nil)
                raw.storeBytes(of: box, as: UnsafeMutablePointer<Result<T, any Error>?>.self)
            }
        }
    }

    /// Destroys the outcome (and frees its box). Called once, by `deinit` through ``specialized``.
    @inlinable
    func destroyOutcome() {
        withUnsafeMutablePointer(to: &outcomeStorage) { storage in
            let raw = UnsafeMutableRawPointer(storage)
            if Self.outcomeIsInline {
                raw.assumingMemoryBound(to: Result<T, any Error>?.self).deinitialize(count: 1)
            } else {
                let box = raw.load(as: UnsafeMutablePointer<Result<T, any Error>?>.self)
                box.deinitialize(count: 1)
                box.deallocate()
            }
        }
    }

    /// A result for `body`: a finished one kept by ``JobRecycler`` if there is one, else a new one;
    /// with the queue's reference taken too, for ``ThreadPool/submit(queueReference:)``.
    @inlinable
    static func make(
        _ body: consuming @escaping @Sendable () throws -> T,
        callback: (@Sendable (T) -> Void)?,
        errorCallback: (@Sendable (any Error) -> Void)?,
        shared: PoolShared
    ) -> AsyncResult<T> {
        guard let kept = JobRecycler.take(ObjectIdentifier(AsyncResult<T>.self)) else {
            let result = AsyncResult(body, callback: callback, errorCallback: errorCallback, shared: shared)
            _ = Unmanaged.passUnretained(result).retain() // the queue's
            return result
        }
        // The recycler keeps jobs by their exact class. One of its two references becomes the caller's.
        let result = unsafeDowncast(kept.takeRetainedValue(), to: AsyncResult<T>.self)
        result.body = body
        result.shared = shared
        // A kept result has no callbacks (they were taken when it finished): storing nil again would
        // only pull in another cache line.
        assert(result.callbacks == nil, "a kept result still has callbacks")
        if callback != nil || errorCallback != nil { result.callbacks = combine(callback, errorCallback) }
        return result
    }

    /// Resets a finished result that nobody references any more (see ``JobRecycler``): its outcome is
    /// destroyed here, on the thread that held the last reference.
    override func resetForReuse() -> ObjectIdentifier? {
        // A result whose callbacks were handed to the callback thread is referenced from there, so it
        // never gets here with them pending; `body` and `callbacks` were taken when it finished. One
        // that ran unobserved has no outcome and a clear word: nothing to reset.
        if word.load(ordering: .relaxed) != 0 {
            specialized(self, .reset)
            word.store(0, ordering: .relaxed)
        }
        return ObjectIdentifier(type(of: self))
    }

    /// The queue's and the caller's: ``applyAsync(_:callback:errorCallback:)`` returns the result.
    override var keptReferences: Int { 2 }

    /// One closure calling `callback` or `errorCallback`, or nil when both are nil.
    @inlinable
    static func combine(
        _ callback: (@Sendable (T) -> Void)?,
        _ errorCallback: (@Sendable (any Error) -> Void)?
    ) -> (@Sendable (Result<T, any Error>) -> Void)? {
        if callback == nil && errorCallback == nil { return nil }
        return { outcome in
            switch outcome {
            case .success(let value): callback?(value)
            case .failure(let error): errorCallback?(error)
            }
        }
    }

    /// A result completed by someone else (a map, a broadcast) through ``resolve(_:)``. It is claimed
    /// from the start, so `cancel()` returns false and it is never run as a job.
    @usableFromInline
    init(
        resolvedLater callback: (@Sendable (T) -> Void)?, errorCallback: (@Sendable (any Error) -> Void)?,
        shared: PoolShared?
    ) {
        self.callbacks = Self.combine(callback, errorCallback)
        self.continuations = []
        self.outcomeStorage = OutcomeStorage()
        self.shared = shared
        self.specialized = Self.specializedSteps
        super.init()
        initializeOutcome()
        word.store(Self.claimed, ordering: .relaxed)
    }

    /// Completes a result made with ``init(resolvedLater:errorCallback:)``. Called once.
    @usableFromInline
    func resolve(_ result: Result<T, any Error>) {
        finish(result)
    }

    // MARK: Completing (as a job)

    override func run() {
        guard claim() else {
            declineCancelled() // cancel() came first
            return
        }
        specialized(self, .run)
    }

    /// The task was cancelled before it started: waits until cancel() is done with the pool's shared
    /// state, then tells the pool the task did no work. Called by whoever took the task off the queue
    /// (a worker, or terminate()): the pool, and so its shared state, cannot be freed before this
    /// returns, which keeps what cancel() uses alive for as long as it runs.
    func declineCancelled() {
        // Acquiring: pairs with cancel()'s releasing clear of `cancelling`, after its last use of `shared`.
        SpinThenYield.wait(until: { word.load(ordering: .acquiring) & Self.cancelling == 0 })
        let state = word.load(ordering: .acquiring)
        if state & Self.ranInline != 0 {
            CPool.declineRanInlineTask(failed: state & Self.ranInlineFailed != 0)
        } else {
            PoolShared.declineCurrentTask()
        }
    }

    /// A result that nothing but the queue references any more (its caller dropped it before it ran):
    /// nobody can cancel it, wait for it, read it or make a new reference to it. Its body runs without
    /// the claim and the publication (two atomic read-modify-writes of the result's state) and its
    /// outcome is dropped, as nobody can read it; a thrown error is still counted. With callbacks,
    /// which must still be called, it runs as usual.
    override func runUnobserved() -> Bool {
        if callbacks != nil {
            run()
            return false // the callback thread may hold it now
        }
        // Acquiring: a cancel() made before the caller let go of the result is seen.
        if word.load(ordering: .acquiring) & Self.claimed != 0 {
            declineCancelled() // cancel() came first
        } else {
            specialized(self, .runUnobserved)
        }
        return true
    }

    /// Runs the body of a result nobody can observe (see ``runUnobserved()``): no outcome is kept.
    @inlinable
    func runBodyUnobserved() {
        guard let body = body.take() else { return }
        do {
            _ = try body()
        } catch {
            shared?.recordFailure()
            shared?.reportUnobserved(error)
        }
    }

    /// Runs the body and completes the result. Called once, by the claimer.
    @inlinable
    func runBody() {
        guard let body = body.take() else { return }
        let result = Result { try body() }
        if case .failure = result { shared?.recordFailure() }
        finish(result)
    }

    override func drop() {
        guard claim() else {
            declineCancelled() // cancel() came first
            return
        }
        finish(.failure(ThreadPoolError.cancelled))
    }

    /// Runs the task on the calling thread if it is a worker of the result's pool and nobody has
    /// started the task; true if the result is ready afterwards. Its queue entry stays queued until a
    /// worker takes it and finds it claimed (see ``declineCancelled()``).
    @usableFromInline
    func runInlineIfOnOwnPool() -> Bool {
        guard word.load(ordering: .relaxed) & Self.claimed == 0, let shared,
            shared === PoolShared.current, claimToRunInline()
        else { return false }
        // The failure flag for the pool's observer belongs to the task this worker is running: the
        // inline task's own goes into the word instead.
        let outerFailed = CPool.takeTaskFailed()
        specialized(self, .run)
        if CPool.takeTaskFailed() { word.bitwiseOr(Self.ranInlineFailed, ordering: .relaxed) }
        if outerFailed { CPool.markTaskFailed() }
        shared.recordInlineRun()
        return isReady
    }

    /// ``claim()``, marking the task as run by a waiting worker in the same step.
    func claimToRunInline() -> Bool {
        var old = word.load(ordering: .relaxed)
        while old & Self.claimed == 0 {
            let (exchanged, original) = word.compareExchange(
                expected: old, desired: old | Self.claimed | Self.ranInline, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            old = original
        }
        return false
    }

    /// Takes ownership of the task; false when someone else already did.
    @usableFromInline
    func claim() -> Bool {
        word.bitwiseOr(Self.claimed, ordering: .acquiringAndReleasing).oldValue & Self.claimed == 0
    }

    /// Records the outcome; then, directly or on the callback thread, runs the callback, publishes the
    /// outcome and wakes waiters. Called by the claimer only.
    @inlinable
    func finish(_ result: Result<T, any Error>) {
        body = nil
        outcome = result
        if callbacks == nil {
            publish()
        } else if let shared, shared.runCallbacks(of: self) {
            return // deliverCallbacks() runs on the callback thread
        } else {
            deliverCallbacks()
        }
    }

    /// Runs the callback for the outcome, then publishes it. Called once, by the claimer or on the
    /// callback thread (handed over with the queue's synchronization).
    @usableFromInline
    override func deliverCallbacks() {
        if let callbacks = callbacks.take(), let outcome { callbacks(outcome) }
        publish()
    }

    @usableFromInline
    func publish() {
        let old = word.bitwiseOr(Self.ready, ordering: .acquiringAndReleasing).oldValue
        if old & Self.waiting != 0 { wakeWaiters() }
    }

    private func wakeWaiters() {
        let lot = ParkingLot.shared
        let stripe = lot.stripe(for: self)
        let resumed = lot.withLock(stripe) { () -> [UnsafeContinuation<Void, Never>] in
            lot.broadcast(stripe)
            defer { continuations = [] }
            return continuations
        }
        for continuation in resumed { continuation.resume() }
    }

    // MARK: Public API

    /// Whether the result is ready: the task finished (or failed, or was cancelled) and its callback
    /// has returned.
    public var isReady: Bool {
        word.load(ordering: .acquiring) & Self.ready != 0
    }

    /// Blocks until the result is ready or `timeout` has passed (nil: no limit).
    /// - Returns: true if the result is ready.
    @available(*, noasync, message: "blocks the thread; in async code use 'try await result.value'")
    public func wait(timeout: Duration? = nil) -> Bool {
        waitBlocking(timeout: timeout)
    }

    /// The blocking wait behind ``wait(timeout:)`` and ``get(timeout:)``.
    @usableFromInline
    func waitBlocking(timeout: Duration?) -> Bool {
        if isReady { return true }
        // On a worker of this result's pool, a task nobody has started runs here and now, on this
        // stack, ahead of older queued tasks: fork-join code (a task waiting for the subtask it just
        // submitted) then nests only as deep as its own recursion, not as deep as the queue is long.
        if runInlineIfOnOwnPool() { return true }
        let deadline = timeout.map(Deadline.init(after:))
        // On a pool's worker, run that pool's queued tasks while waiting: the task this result waits
        // for may be running on another worker and waiting for one of them, and every worker might be
        // waiting like this one.
        while !isReady && WorkerHelp.helpOnce() {
            if let deadline, deadline.hasPassed { return isReady }
        }
        // A result that comes within microseconds (a short task on a worker that is awake) is seen
        // without the worker having to wake this thread; see SpinThenYield.
        // (Not for a timeout shorter than the polling window, which the polling would overshoot.)
        if timeout.map({ $0 >= SpinThenYield.pollWindow }) ?? true,
            SpinThenYield.pollBeforeParking(until: { isReady })
        {
            return true
        }
        let parkedAt = monotonicNanoseconds()
        defer { SpinThenYield.noteParkedWait(startedAt: parkedAt) }
        // A worker about to block: the pool stands another worker in for it if none is idle, so the
        // work this waits for can run even when every worker waits (or cannot help: its stack is low).
        CPool.blockBegin()
        defer { CPool.blockEnd() }
        let lot = ParkingLot.shared
        let stripe = lot.stripe(for: self)
        return lot.withLock(stripe) {
            if word.bitwiseOr(Self.waiting, ordering: .acquiringAndReleasing).oldValue & Self.ready != 0 {
                return true
            }
            while !isReady {
                if !lot.wait(stripe, until: deadline) { return isReady }
            }
            return true
        }
    }

    /// Blocks until the result is ready and returns the task's value, or throws the task's own error
    /// unchanged, ``ThreadPoolError/cancelled`` if it was dropped before it started, or
    /// ``ThreadPoolError/timeout`` if `timeout` passed first (the result is not lost: call again).
    @inlinable // specialized in the caller: the library's generic copy of the outcome looks up metadata
    @available(*, noasync, message: "blocks the thread; in async code use 'try await result.value'")
    public func get(timeout: Duration? = nil) throws -> T {
        try getBlocking(timeout: timeout)
    }

    /// The blocking get behind ``get(timeout:)``; in ``value`` the result is ready, so it never blocks.
    @inlinable
    func getBlocking(timeout: Duration?) throws -> T {
        guard waitBlocking(timeout: timeout), let outcome else { throw ThreadPoolError.timeout }
        return try outcome.get()
    }

    /// Whether the task returned without throwing (Python's `successful()`).
    /// - Throws: ``ThreadPoolError/notReady`` before the result is ready.
    @inlinable
    public func successful() throws(ThreadPoolError) -> Bool {
        guard isReady, let outcome else { throw .notReady }
        if case .success = outcome { return true }
        return false
    }

    /// Cancels the task if it has not started: it will never run, the result becomes ready with
    /// ``ThreadPoolError/cancelled`` and `errorCallback` (if any) runs on the callback thread.
    /// The result of a `mapAsync` cannot be cancelled this way (this returns false); terminate the pool.
    /// - Returns: true if the task had not started; false if it was running, finished or cancelled.
    @discardableResult
    public func cancel() -> Bool {
        // Claimed and marked `cancelling` in one step. The task is still queued, so the pool (and
        // `shared`) is alive now; it stays alive until `cancelling` is cleared, because whoever takes
        // the task off the queue waits for that (declineCancelled) and the pool is freed only after.
        var old = word.load(ordering: .relaxed)
        while true {
            if old & Self.claimed != 0 { return false }
            let (exchanged, original) = word.compareExchange(
                expected: old, desired: old | Self.claimed | Self.cancelling, ordering: .acquiringAndReleasing)
            if exchanged { break }
            old = original
        }
        let shared = self.shared
        shared?.afterCancelClaimed?()
        shared?.recordCancellation()
        body = nil
        outcome = .failure(ThreadPoolError.cancelled)
        let hasCallbacks = callbacks != nil
        let onCallbackThread = hasCallbacks && shared?.runCallbacks(of: self) == true
        // Releasing: the last use of `shared` happens before a worker or terminate() sees the bit
        // clear (declineCancelled's acquiring load) and lets the pool go.
        word.bitwiseAnd(~Self.cancelling, ordering: .releasing)
        // What is left touches only this result, which the caller references: callbacks delivered
        // here (the callback thread could not take them) may even terminate the pool.
        if !hasCallbacks {
            publish()
        } else if !onCallbackThread {
            deliverCallbacks()
        }
        return true
    }

    /// The task's value, awaited without blocking a thread. Cancelling the awaiting Swift task cancels
    /// the pool task if it has not started (it never runs) and throws `CancellationError`; a task
    /// already running finishes and its value is returned.
    public var value: T {
        get async throws {
            if !isReady {
                await withTaskCancellationHandler {
                    await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                        let lot = ParkingLot.shared
                        let stripe = lot.stripe(for: self)
                        let readyAlready = lot.withLock(stripe) { () -> Bool in
                            let old = word.bitwiseOr(Self.waiting, ordering: .acquiringAndReleasing).oldValue
                            if old & Self.ready != 0 { return true }
                            continuations.append(continuation)
                            return false
                        }
                        if readyAlready { continuation.resume() }
                    }
                } onCancel: {
                    self.cancel()
                }
            }
            do {
                return try getBlocking(timeout: nil)
            } catch ThreadPoolError.cancelled where Task.isCancelled {
                throw CancellationError()
            }
        }
    }
}

/// What ``AsyncResult/specialized`` does.
@usableFromInline
enum SpecializedStep {
    /// Run the task (the caller has claimed it).
    case run
    /// Run the task of a result nobody can observe, keeping no outcome.
    case runUnobserved
    /// Destroy the outcome of a finished result before it is reused.
    case reset
    /// Destroy the outcome as the result is freed.
    case destroy
}

/// Room for an ``AsyncResult``'s outcome when it is small: 24 bytes, 8-byte aligned. Its bytes are
/// only ever used through ``AsyncResult/withOutcome(_:)``, as a `Result<T, any Error>?` or as the
/// address of a box holding one.
@usableFromInline
struct OutcomeStorage {
    @usableFromInline var words: (UInt64, UInt64, UInt64)

    @inlinable
    init() {
        words = (0, 0, 0)
    }
}

// Every mutable field is owned by the thread that claimed the task until the atomic `ready` bit is
// published, and read-only afterwards; `continuations` is guarded by the parking-lot stripe mutex.
extension AsyncResult: @unchecked Sendable {}
