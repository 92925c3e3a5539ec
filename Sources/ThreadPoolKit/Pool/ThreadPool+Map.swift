import Synchronization

/// The work of one `map`: the items, the transform and the output, shared by every entry.
///
/// A map is queued as at most one entry per worker (one lock acquisition, no allocation per item).
/// Each entry claims chunks from a shared counter, in input order, until none is left, and writes
/// their results straight into their final positions in `output`; the last entry to finish
/// completes `result`. An entry claims several consecutive chunks at once while chunks are short
/// (see ``AdaptiveClaim``).
@usableFromInline
final class MapJob<Element: Sendable, T: Sendable>: SharedJob, @unchecked Sendable {
    @usableFromInline let items: [Element]
    @usableFromInline let transform: @Sendable (Element) throws -> T
    @usableFromInline let chunkSize: Int
    @usableFromInline let chunkCount: Int
    /// The entries queued: at most one per worker.
    @usableFromInline let entries: Int
    /// Where results go: the caller's array storage (`map`) or a buffer this job owns (`mapAsync`).
    @usableFromInline let output: UnsafeMutablePointer<T>
    @usableFromInline let ownsOutput: Bool
    /// 1 where a chunk initialized its whole range of `output`. Each byte is written by the one entry
    /// that claimed the chunk, and read by the last entry (ordered by `entriesLeft`).
    @usableFromInline let chunkInitialized: UnsafeMutablePointer<Bool>
    /// The first chunk not yet claimed (may run past `chunkCount`).
    @usableFromInline let nextChunk = Atomic<Int>(0)
    @usableFromInline let result: AsyncResult<[T]>
    /// For `terminating`. Unowned: the pool's shared state outlives every queued entry.
    @usableFromInline unowned(unsafe) let shared: PoolShared
    /// Runs one entry, as code specialized in the client (see `AsyncResult.runClaimed`).
    @usableFromInline let runChunks: (MapJob<Element, T>) -> Void

    @inlinable
    init(
        items: [Element], chunkSize: Int, output: UnsafeMutablePointer<T>?, shared: PoolShared, workers: Int,
        transform: @escaping @Sendable (Element) throws -> T,
        callback: (@Sendable ([T]) -> Void)?, errorCallback: (@Sendable (any Error) -> Void)?
    ) {
        self.items = items
        self.transform = transform
        self.chunkSize = chunkSize
        chunkCount = (items.count + chunkSize - 1) / chunkSize
        entries = min(chunkCount, max(workers, 1))
        ownsOutput = output == nil
        self.output = output ?? .allocate(capacity: items.count)
        chunkInitialized = .allocate(capacity: chunkCount)
        chunkInitialized.initialize(repeating: false, count: chunkCount)
        result = AsyncResult(resolvedLater: callback, errorCallback: errorCallback, shared: shared)
        self.shared = shared
        runChunks = { $0.runChunksInline() }
        super.init(entries: entries)
    }

    override func runEntry() {
        runChunks(self)
    }

    /// Claims and runs chunks until none is left, the map has failed or the pool is terminating.
    @inlinable
    func runChunksInline() {
        var claim = AdaptiveClaim()
        while !hasFailed {
            if shared.terminating.load(ordering: .relaxed) {
                // Chunks not claimed yet are dropped, as queued tasks are.
                if nextChunk.load(ordering: .relaxed) < chunkCount { recordFailure(ThreadPoolError.cancelled) }
                return
            }
            let first = nextChunk.wrappingAdd(claim.size, ordering: .relaxed).oldValue
            guard first < chunkCount else { return }
            let end = min(first + claim.size, chunkCount)
            for chunk in first..<end {
                guard runChunk(chunk) else { return }
            }
            claim.update(end: end, chunkCount: chunkCount, runners: entries)
        }
    }

    /// Runs one chunk into `output`; false if an item threw (recorded, the chunk left uninitialized).
    @inlinable
    func runChunk(_ chunk: Int) -> Bool {
        let start = chunk * chunkSize
        let end = min(start + chunkSize, items.count)
        var index = start
        do {
            while index < end {
                (output + index).initialize(to: try transform(items[index]))
                index += 1
            }
            chunkInitialized[chunk] = true
            return true
        } catch {
            (output + start).deinitialize(count: index - start)
            PoolShared.current?.recordFailure()
            recordFailure(error)
            return false
        }
    }

    /// An entry dropped by terminate() cancels the map only if chunks were left for it to run.
    override func dropEntry() {
        if nextChunk.load(ordering: .relaxed) < chunkCount { super.dropEntry() }
    }

    override func complete(failure: (any Error)?) {
        if let failure {
            for chunk in 0..<chunkCount where chunkInitialized[chunk] {
                let start = chunk * chunkSize
                (output + start).deinitialize(count: min(chunkSize, items.count - start))
            }
            result.resolve(.failure(failure))
        } else if ownsOutput {
            let values = [T](unsafeUninitializedCapacity: items.count) { buffer, initialized in
                buffer.baseAddress!.moveInitialize(from: output, count: items.count)
                initialized = items.count
            }
            result.resolve(.success(values))
        } else {
            result.resolve(.success([])) // the values are in the caller's array already
        }
    }

    // Frees the buffers however the job ended: completed (the values were moved out or
    // deinitialized), or never queued (submit threw: nothing was initialized).
    deinit {
        chunkInitialized.deallocate()
        if ownsOutput { output.deallocate() }
    }
}

extension ThreadPool {
    /// Python's default chunk size for `map`: `ceil(count / (4 × threads))`.
    @usableFromInline
    func defaultChunkSize(for count: Int) -> Int {
        max(1, (count + 4 * threadCount - 1) / (4 * threadCount))
    }

    /// Applies `transform` to every item on the pool's workers and returns the results in input order.
    ///
    /// Items are split into chunks of `chunkSize` (nil: Python's default, `ceil(count / (4 × threads))`);
    /// each chunk runs on one worker, and chunks start in input order. The map is queued as at most
    /// one entry per worker, each running chunks until none is left (a worker takes several
    /// consecutive chunks at once while they take under a few microseconds each). Results are written straight
    /// into the returned array. If items fail, the first error recorded is thrown once every chunk
    /// has finished (chunks not started by then are skipped). Called from one of the pool's own
    /// workers, the caller runs queued chunks while it waits.
    /// - Throws: the first item's error; ``ThreadPoolError/invalidChunkSize(_:)`` for `chunkSize < 1`
    ///   (before any work is queued); ``ThreadPoolError/notRunning``; ``ThreadPoolError/cancelled``
    ///   if ``terminate()`` dropped chunks.
    @inlinable
    // Disfavoured, not `noasync`: async functions and top-level code pick the async overload
    // (ThreadPool+AsyncWaits.swift), and the compiler asks them for `await`; top-level code inside
    // a loop body still resolves to this one, which `noasync` would then reject.
    @_disfavoredOverload
    public func map<S: Sequence, T: Sendable>(
        _ items: S, chunkSize: Int? = nil,
        _ transform: @escaping @Sendable (S.Element) throws -> T
    ) throws -> [T]
    where S.Element: Sendable {
        if let chunkSize, chunkSize < 1 { throw ThreadPoolError.invalidChunkSize(chunkSize) }
        let items = Array(items)
        if items.isEmpty {
            guard isRunning else { throw ThreadPoolError.notRunning } // as Python, even for no items
            return []
        }
        return try [T](unsafeUninitializedCapacity: items.count) { buffer, initialized in
            let job = MapJob(
                items: items, chunkSize: chunkSize ?? defaultChunkSize(for: items.count),
                output: buffer.baseAddress!, shared: shared, workers: sharedEntryLimit, transform: transform,
                callback: nil, errorCallback: nil)
            // On one of this pool's workers the caller is one of the entries, run here rather than
            // queued: its own map then never waits behind other queued work (which the caller would
            // run meanwhile, nesting unrelated work on its stack), and with one worker nothing is queued.
            let inline = isCurrentWorker
            try submitShared(job, entries: job.entries - (inline ? 1 : 0))
            if inline { job.runEntryHere() }
            _ = try job.result.getBlocking(timeout: nil) // throws with every initialized element already deinitialized
            initialized = items.count
        }
    }

    /// Like ``map(_:chunkSize:_:)`` but returns at once; the result holds the values in input order.
    /// `callback` or `errorCallback` runs exactly once, on the pool's callback thread, before the result
    /// becomes ready.
    @inlinable
    public func mapAsync<S: Sequence, T: Sendable>(
        _ items: S, chunkSize: Int? = nil,
        callback: (@Sendable ([T]) -> Void)? = nil,
        errorCallback: (@Sendable (any Error) -> Void)? = nil,
        _ transform: @escaping @Sendable (S.Element) throws -> T
    )
        throws(ThreadPoolError) -> AsyncResult<[T]> where S.Element: Sendable
    {
        if let chunkSize, chunkSize < 1 { throw .invalidChunkSize(chunkSize) }
        let items = Array(items)
        if items.isEmpty {
            guard isRunning else { throw .notRunning } // as Python, even for no items
            let result = AsyncResult<[T]>(resolvedLater: callback, errorCallback: errorCallback, shared: shared)
            result.resolve(.success([]))
            return result
        }
        let job = MapJob(
            items: items, chunkSize: chunkSize ?? defaultChunkSize(for: items.count),
            output: nil, shared: shared, workers: sharedEntryLimit, transform: transform, callback: callback,
            errorCallback: errorCallback)
        try submitShared(job, entries: job.entries)
        return job.result
    }
}
