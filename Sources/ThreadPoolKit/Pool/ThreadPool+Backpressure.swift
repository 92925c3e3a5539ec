// A bounded queue's backpressure (``ThreadPool/Configuration/queueCapacity``) for the submits that
// queue several entries at once (map, concurrentPerform) and for the async ones (`run`, async `map`
// and `concurrentPerform`), which suspend instead of blocking a thread while the queue is full. Single
// synchronous submits (`applyAsync`, `execute`) wait inside the C pool's submit.

/// How a submit to a bounded queue goes on once ``ThreadPool/admit(_:)`` returns.
@usableFromInline
enum Admission {
    /// The slots are reserved for the submit, which must use them or give them back.
    case reserved
    /// The submitter runs the work itself (``ThreadPool/FullQueuePolicy/runOnCaller``, or a worker of
    /// the pool, which never waits for itself).
    case runHere
}

extension ThreadPool {
    /// The most entries a map or concurrentPerform queues: one per worker, and no more than a bounded
    /// queue holds, so that their room can always be reserved at once.
    @usableFromInline
    var sharedEntryLimit: Int {
        min(threadCount, queueCapacity ?? .max)
    }

    /// Reserves `count` slots (1...capacity) of the bounded queue without waiting: nil when it is full.
    private func reserveNow(_ count: Int) throws(ThreadPoolError) -> Admission? {
        switch cPool.reserve(count) {
        case .reserved: return .reserved
        case .closed: throw .notRunning
        case .full: break
        }
        if runsOnCallerWhenFull || (submitMayBlock && isCurrentWorker) { return .runHere }
        if !submitMayBlock { throw .queueFull }
        return nil
    }

    /// Room for `count` entries in the bounded queue, as the full-queue policy says, blocking the
    /// calling thread while it waits (``FullQueuePolicy/wait`` off the pool's workers).
    /// - Throws: ``ThreadPoolError/queueFull`` (``FullQueuePolicy/fail``), ``ThreadPoolError/notRunning``.
    @usableFromInline
    func admitBlocking(_ count: Int) throws(ThreadPoolError) -> Admission {
        if let admission = try reserveNow(count) { return admission }
        try cPool.waitForRoomBlocking(count, shared: shared)
        return .reserved
    }

    /// Room for `count` entries in the bounded queue, as the full-queue policy says, suspending the
    /// calling task (not blocking its thread) while it waits.
    /// - Throws: `CancellationError` when the task is cancelled while it waits (nothing is reserved),
    ///   ``ThreadPoolError/queueFull`` (``FullQueuePolicy/fail``), ``ThreadPoolError/notRunning``.
    @usableFromInline
    func admit(_ count: Int) async throws -> Admission {
        if let admission = try reserveNow(count) { return admission }
        try await cPool.waitForRoom(count, shared: shared)
        return .reserved
    }

    /// Queues `entries` entries of `job` (at most ``sharedEntryLimit``) as ``submitShared(_:entries:broadcast:)``
    /// does, suspending rather than blocking while a bounded queue is full.
    @usableFromInline
    func submitSharedSuspending(_ job: SharedJob, entries: Int) async throws {
        guard queueCapacity != nil, entries > 0 else { return try submitShared(job, entries: entries) }
        switch try await admit(entries) {
        case .reserved:
            try cPool.submitShared(job, entries: entries, broadcast: false, reserved: true)
        case .runHere:
            for _ in 0..<entries { job.runEntryHere() }
        }
    }
}
