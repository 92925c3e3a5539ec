#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// The async counterparts of the calls that block their thread. Each suspends the calling task
// instead, so that async code never holds a cooperative thread while it waits for the pool (the
// blocking spellings are marked `noasync`, and the compiler points async callers here).

extension ThreadPool {
    /// Waits, without blocking a thread of the caller's, until every worker has run its finalizer and
    /// exited; then every callback has run. A second call returns at once.
    ///
    /// The waiting happens on a thread of its own, started for the purpose, which joins the workers
    /// and resumes the caller.
    /// - Throws: ``ThreadPoolError/stillRunning`` before ``close()`` or ``terminate()``;
    ///   ``ThreadPoolError/wouldDeadlock`` from one of the pool's own workers.
    public func join() async throws(ThreadPoolError) {
        let outcome: Result<Void, ThreadPoolError> = await withUnsafeContinuation { continuation in
            BlockingThread.start {
                do throws(ThreadPoolError) {
                    try self.joinBlocking()
                    continuation.resume(returning: .success(()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        try outcome.get()
    }

    /// ``map(_:chunkSize:_:)`` for async code: suspends until every item is done. Cancelling the
    /// awaiting task does not cancel the map (terminate the pool for that).
    ///
    /// With a ``Configuration/queueCapacity`` and ``FullQueuePolicy/wait``, a full queue suspends the
    /// caller (not its thread) until there is room for the map's entries (one per worker at most);
    /// cancelling the task during that wait throws `CancellationError`, and nothing runs.
    public func map<S: Sequence, T: Sendable>(
        _ items: S, chunkSize: Int? = nil, isolation: isolated (any Actor)? = #isolation,
        _ transform: @escaping @Sendable (S.Element) throws -> T
    ) async throws -> [T] where S.Element: Sendable {
        guard queueCapacity != nil else { return try await mapAsync(items, chunkSize: chunkSize, transform).value }
        if let chunkSize, chunkSize < 1 { throw ThreadPoolError.invalidChunkSize(chunkSize) }
        let items = Array(items)
        if items.isEmpty {
            guard isRunning else { throw ThreadPoolError.notRunning } // as Python, even for no items
            return []
        }
        let job = MapJob(
            items: items, chunkSize: chunkSize ?? defaultChunkSize(for: items.count),
            output: nil, shared: shared, workers: sharedEntryLimit, transform: transform,
            callback: nil, errorCallback: nil)
        try await submitSharedSuspending(job, entries: job.entries)
        return try await job.result.value
    }

    /// ``broadcast(_:)`` for async code: suspends until every worker has run `body`.
    public func broadcast<T: Sendable>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: @escaping @Sendable (WorkerInfo) throws -> T
    ) async throws -> [T] {
        let job = BroadcastJob(threads: threadCount, body: body)
        try submitShared(job, entries: threadCount, broadcast: true)
        return try await job.result.value
    }
}

/// Runs `body` with a new pool and shuts the pool down when `body` ends, for async code.
///
/// The same rules as the synchronous ``withThreadPool(threads:name:initializer:finalizer:_:)``: a
/// normal exit closes the pool and joins it, so every submitted task finishes before this returns; a
/// thrown error terminates and joins it, then is rethrown. The joins suspend rather than block.
public func withThreadPool<R>(
    threads: Int? = nil, name: String? = nil,
    initializer: (@Sendable () throws -> Void)? = nil,
    finalizer: (@Sendable () -> Void)? = nil,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (ThreadPool) async throws -> R
) async throws -> R {
    let pool = try ThreadPool(threads: threads, name: name, initializer: initializer, finalizer: finalizer)
    let result: R
    do {
        result = try await body(pool)
    } catch {
        pool.terminate()
        try? await pool.join()
        throw error
    }
    pool.close()
    try await pool.join()
    return result
}

/// A thread started for one blocking call, so that async callers never block their own.
enum BlockingThread {
    /// Runs `body` on a new detached thread; if no thread can be created, on the calling thread.
    static func start(_ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(BodyBox(body))
        var thread = pthread_t()
        var attributes = pthread_attr_t()
        guard pthread_attr_init(&attributes) == 0 else {
            box.takeRetainedValue().body()
            return
        }
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        let status = pthread_create(
            &thread, &attributes,
            { argument in
                Unmanaged<BodyBox>.fromOpaque(argument!).takeRetainedValue().body()
                return nil
            }, box.toOpaque())
        if status != 0 { box.takeRetainedValue().body() }
    }

    private final class BodyBox: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
}
