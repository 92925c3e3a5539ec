extension ThreadPool {
    /// Runs `body` on a worker and waits for it: returns its value or rethrows its error.
    /// - Throws: the task's error; ``ThreadPoolError/notRunning`` after ``close()`` or ``terminate()``;
    ///   ``ThreadPoolError/cancelled`` if ``terminate()`` dropped it.
    @inlinable
    @available(*, noasync, message: "blocks the thread; in async code use 'try await pool.run { ... }'")
    public func apply<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        try applyAsync(body).getBlocking(timeout: nil)
    }

    /// Queues `body` to run on a worker and returns its result at once.
    ///
    /// `callback` (on success) or `errorCallback` (on a thrown error, or ``ThreadPoolError/cancelled``)
    /// is called exactly once, never both, before the result becomes ready, on the pool's callback
    /// thread: callbacks run one at a time, in completion order (see ``AsyncResult``).
    /// - Throws: ``ThreadPoolError/notRunning`` after ``close()`` or ``terminate()``.
    @inlinable
    public func applyAsync<T: Sendable>(
        _ body: consuming @escaping @Sendable () throws -> T,
        callback: (@Sendable (T) -> Void)? = nil,
        errorCallback: (@Sendable (any Error) -> Void)? = nil
    )
        throws(ThreadPoolError) -> AsyncResult<T>
    {
        // `body` is taken consuming: the caller's reference to the closure moves into the result, where
        // a borrowed one would be retained here and released by the caller, two atomic operations on
        // the reference count of whatever the closure captured, which the worker releases too.
        let result = AsyncResult.make(body, callback: callback, errorCallback: errorCallback, shared: shared)
        try submit(queueReference: Unmanaged.passUnretained(result)) // make took the queue's reference
        return result
    }

    /// Queues `body` to run on a worker with a priority, and returns its result at once.
    ///
    /// As ``applyAsync(_:callback:errorCallback:)``, but `body` waits in the queue by `priority` as
    /// well as by submission order (the priority comes before the closure, as in
    /// `Task(priority:operation:)`):
    ///
    /// - Among queued tasks, a higher priority starts first, and equal priorities start in the order
    ///   they were submitted. A running task is never preempted.
    /// - The queue has four lanes, and priorities in one lane are equal: `.high` and `.userInitiated`
    ///   (and any higher raw value); `.medium`, the lane of every task submitted without a priority;
    ///   `.utility` and `.low`; `.background`.
    /// - A lower priority waits, but does not starve: once 16 tasks of higher lanes have started
    ///   ahead of a lane's waiting tasks, its turn has come and its oldest task starts next (after
    ///   those of higher lanes whose turn has come too). Under any stream of higher-priority work, a
    ///   lane with tasks waiting starts one at least once in every 20 (the exact rule: see
    ///   <doc:ThreadingGuarantees#Order>).
    /// - A worker takes very short tasks a few at a time (about 4 µs of work per batch); a task
    ///   submitted after a batch was taken starts after it, whatever its priority.
    ///
    /// A `.medium` task costs what ``applyAsync(_:callback:errorCallback:)`` costs, and takes no lock;
    /// the other lanes are queued under the pool's lock.
    /// - Throws: ``ThreadPoolError/notRunning`` after ``close()`` or ``terminate()``.
    @inlinable
    public func applyAsync<T: Sendable>(
        priority: TaskPriority,
        _ body: consuming @escaping @Sendable () throws -> T,
        callback: (@Sendable (T) -> Void)? = nil,
        errorCallback: (@Sendable (any Error) -> Void)? = nil
    )
        throws(ThreadPoolError) -> AsyncResult<T>
    {
        let result = AsyncResult.make(body, callback: callback, errorCallback: errorCallback, shared: shared)
        try submit(queueReference: Unmanaged.passUnretained(result), priority: priority)
        return result
    }

    /// Runs `body` on a worker and awaits its value without blocking a thread of the caller's.
    ///
    /// The calling task itself moves onto a worker for `body` (the pool is its task executor for the
    /// call), so `body` sees the caller's task-local values (and so a tracing `ServiceContext` or a
    /// logger's metadata), `Task.isCancelled` there is the caller's, and no result object is made: a
    /// loop of `run` calls from a task already on a worker runs each body at once. If the task is
    /// cancelled before `body` starts (before the call, or while it waits in the queue), `body` never
    /// runs and this throws `CancellationError` once the task reaches a worker. When `run` returns,
    /// the caller is back where it was: the Swift runtime switches the task back to the global
    /// concurrent executor (or the caller's actor) as the pool stops being its executor preference.
    /// That second switch is part of what a call costs from off the pool; inside
    /// `withTaskExecutorPreference(pool) { ... }` neither switch happens.
    ///
    /// `priority` is the priority `body` waits in the queue with (see
    /// ``applyAsync(priority:_:callback:errorCallback:)`` for the order it gives). Nil, the default,
    /// means the calling task's own (`Task.currentPriority`): the job the pool queues is the task's,
    /// with the task's priority. Another priority goes to that same job: the pool queues the calling
    /// task in that priority's lane, and the task's own priority does not change. Either way `body`
    /// runs in the calling task, with its task-local values and its cancellation, and no other task
    /// is made. (Not a child task created with that priority: in Swift 6.3 a child task's job is
    /// enqueued with its parent's priority, whatever priority the child was created with.)
    /// With a ``Configuration/queueCapacity`` and a full queue, ``FullQueuePolicy/wait`` suspends the
    /// calling task, without blocking its thread, until there is room (callers are served first come,
    /// first served, as tasks leave the queue); cancelling the task ends that wait with
    /// `CancellationError`, and `body` never runs. ``FullQueuePolicy/fail`` throws
    /// ``ThreadPoolError/queueFull``; ``FullQueuePolicy/runOnCaller`` runs `body` at once in the calling
    /// task, on its own thread. A call from a task already on one of the pool's workers never waits
    /// for room: its body runs there at once.
    /// - Throws: the task's error, `CancellationError`, ``ThreadPoolError/notRunning`` after
    ///   ``close()``, ``ThreadPoolError/cancelled`` if ``terminate()`` dropped the task's turn,
    ///   ``ThreadPoolError/queueFull`` (``FullQueuePolicy/fail``).
    @inlinable @inline(__always)
    public func run<T: Sendable>(
        priority: TaskPriority? = nil,
        _ body: @escaping @Sendable () throws -> T
    ) async throws -> T {
        // The common call (the task's own priority, an unbounded queue): inlined in the caller, so
        // that its frame is the caller's, with no table entry to set up.
        guard priority == nil, queueCapacity == nil else { return try await runWithSetup(priority: priority, body) }
        try Task.checkCancellation()
        guard isRunning else { throw ThreadPoolError.notRunning }
        return try await runMovingOntoWorker(body)
    }

    /// `run` with a priority of its own or a bounded queue: the task's job takes them from a table.
    @usableFromInline
    func runWithSetup<T: Sendable>(
        priority: TaskPriority?,
        _ body: @escaping @Sendable () throws -> T
    ) async throws -> T {
        try Task.checkCancellation()
        guard isRunning else { throw ThreadPoolError.notRunning }
        var reserved = false
        if queueCapacity != nil, !isCurrentWorker {
            switch try await admit(1) {
            case .reserved:
                reserved = true
            case .runHere:
                try Task.checkCancellation()
                return try body()
            }
        }
        let priority = priority.flatMap { $0 != Task.currentPriority ? $0 : nil }
        guard priority != nil || reserved, let task = JobPriorities.currentTask else {
            return try await runMovingOntoWorker(body)
        }
        // The task's job, enqueued as the task moves onto the pool, takes `priority` and the reserved
        // slot from here. If the task was on a worker already, no enqueue took them: the slot is given back.
        jobPriorities.set(priority, reserved: reserved, forJobOf: task)
        defer {
            if jobPriorities.remove(forJobOf: task)?.reserved == true { cPool.releaseReserved(1) }
        }
        return try await runMovingOntoWorker(body)
    }

    /// Runs `body` in the calling task, moved onto a worker for it: the pool is the task's executor
    /// preference for the call.
    @inlinable @inline(__always)
    func runMovingOntoWorker<T>(_ body: () throws -> T) async throws -> T {
        try await withTaskExecutorPreference(self) { () throws -> T in
            try checkOnWorker()
            return try body()
        }
    }

    /// Before `run`'s body, on the worker its job was queued for: a job the pool did not take (closed
    /// meanwhile) or dropped (terminated) runs elsewhere, and a task cancelled meanwhile stops here.
    @usableFromInline
    func checkOnWorker() throws {
        guard isCurrentWorker else {
            throw isTerminated ? ThreadPoolError.cancelled : ThreadPoolError.notRunning
        }
        try Task.checkCancellation()
    }
}

/// A fire-and-forget task: just the closure, no result to complete. Nothing else ever references it,
/// so once run (or dropped) it is kept for the next `execute` (see ``JobRecycler``).
final class ExecuteJob: _ThreadPoolJob, @unchecked Sendable {
    // Written by the submitter before the job is queued, taken by the worker that runs or drops it
    // (the queue's mutex orders the two).
    @exclusivity(unchecked) private var body: (@Sendable () -> Void)?

    private init(_ body: @escaping @Sendable () -> Void) {
        self.body = body
    }

    /// A job for `body` (a kept one if there is one, else a new one), with the queue's reference: the
    /// only one, so that the worker that runs it can keep it again.
    static func make(_ body: consuming @escaping @Sendable () -> Void) -> Unmanaged<_ThreadPoolJob> {
        guard let kept = JobRecycler.take(ObjectIdentifier(ExecuteJob.self)) else {
            return Unmanaged.passRetained(ExecuteJob(body))
        }
        unowned(unsafe) let job = unsafeDowncast(kept.takeUnretainedValue(), to: ExecuteJob.self)
        job.body = body
        return kept
    }

    override func run() {
        body.take()?()
    }

    /// Nothing but the queue ever references an `execute` job.
    override func runUnobserved() -> Bool {
        run()
        return true
    }

    override func drop() {
        body = nil
    }

    override func resetForReuse() -> ObjectIdentifier? {
        ObjectIdentifier(ExecuteJob.self)
    }
}

extension ThreadPool {
    /// Queues `body` to run on a worker, with no result: the cheapest way to hand the pool work, for
    /// code that reports completion its own way. A dropped task (``terminate()``) simply never runs.
    /// - Throws: ``ThreadPoolError/notRunning`` after ``close()`` or ``terminate()``.
    public func execute(_ body: consuming @escaping @Sendable () -> Void) throws(ThreadPoolError) {
        // Consuming, as applyAsync's: the caller's reference to the closure moves into the job.
        try submit(queueReference: ExecuteJob.make(body))
    }

    /// Queues `body` to run on a worker with a priority, with no result: ``execute(_:)`` in the
    /// queue's lane for `priority` (see ``applyAsync(priority:_:callback:errorCallback:)`` for the
    /// order it gives). A `.medium` task costs what ``execute(_:)`` costs.
    /// - Throws: ``ThreadPoolError/notRunning`` after ``close()`` or ``terminate()``.
    public func execute(priority: TaskPriority, _ body: consuming @escaping @Sendable () -> Void)
        throws(ThreadPoolError)
    {
        try submit(queueReference: ExecuteJob.make(body), priority: priority)
    }
}
