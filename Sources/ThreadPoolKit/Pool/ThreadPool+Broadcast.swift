/// The work of one `broadcast`: one entry on every worker, each writing its own slot.
final class BroadcastJob<T: Sendable>: SharedJob, @unchecked Sendable {
    private let body: @Sendable (WorkerInfo) throws -> T
    /// One slot per worker index, written only by that worker; read by the last entry.
    private let slots: UnsafeMutablePointer<T?>
    private let count: Int
    let result = AsyncResult<[T]>(resolvedLater: nil, errorCallback: nil, shared: nil)

    init(threads: Int, body: @escaping @Sendable (WorkerInfo) throws -> T) {
        self.body = body
        count = threads
        slots = .allocate(capacity: threads)
        slots.initialize(repeating: nil, count: threads)
        super.init(entries: threads)
    }

    override func runEntry() {
        guard let worker = ThreadPool.currentWorker else { return }
        do {
            slots[worker.index] = try body(worker)
        } catch {
            PoolShared.current?.recordFailure()
            recordFailure(error)
        }
    }

    override func complete(failure: (any Error)?) {
        let values = UnsafeMutableBufferPointer(start: slots, count: count).compactMap { $0 }
        slots.deinitialize(count: count)
        slots.deallocate()
        if let failure {
            result.resolve(.failure(failure))
        } else {
            result.resolve(.success(values))
        }
    }
}

extension ThreadPool {
    /// Runs `body` once on every worker, to warm, reset or read worker-local state, and returns the
    /// results by worker index. Each worker runs it after its current task, ahead of queued work.
    /// Called from one of the pool's own workers, that worker runs its own share while it waits.
    /// - Throws: the first error a worker's `body` threw (after every worker has run it);
    ///   ``ThreadPoolError/notRunning``; ``ThreadPoolError/cancelled`` if ``terminate()`` dropped it.
    // Disfavoured, not `noasync`: async functions and top-level code pick the async overload
    // (ThreadPool+AsyncWaits.swift), and the compiler asks them for `await`; top-level code inside
    // a loop body still resolves to this one, which `noasync` would then reject.
    @_disfavoredOverload
    public func broadcast<T: Sendable>(_ body: @escaping @Sendable (WorkerInfo) throws -> T) throws -> [T] {
        let job = BroadcastJob(threads: threadCount, body: body)
        try submitShared(job, entries: threadCount, broadcast: true)
        return try job.result.getBlocking(timeout: nil)
    }
}
