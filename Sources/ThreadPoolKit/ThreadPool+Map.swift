import Synchronization

/// The work of one `map`: the items, the transform and the output, shared by every chunk entry.
///
/// Chunk entries are identical queue entries; each claims the next chunk with one atomic increment
/// and writes its results straight into their final positions in `output`. The last entry to finish
/// completes `result`.
@usableFromInline
final class MapJob<Element: Sendable, T: Sendable>: SharedJob, @unchecked Sendable {
    @usableFromInline let items: [Element]
    @usableFromInline let transform: @Sendable (Element) throws -> T
    @usableFromInline let chunkSize: Int
    @usableFromInline let chunkCount: Int
    /// Where results go: the caller's array storage (`map`) or a buffer this job owns (`mapAsync`).
    @usableFromInline let output: UnsafeMutablePointer<T>
    @usableFromInline let ownsOutput: Bool
    /// 1 where a chunk initialized its whole range of `output`. Each byte is written by the one entry
    /// that claimed the chunk, and read by the last entry (ordered by `entriesLeft`).
    @usableFromInline let chunkInitialized: UnsafeMutablePointer<Bool>
    @usableFromInline let nextChunk = Atomic<Int>(0)
    @usableFromInline let result: AsyncResult<[T]>
    /// Runs one chunk entry, as code specialized in the client (see `AsyncResult.runClaimed`).
    @usableFromInline let runChunk: (MapJob<Element, T>) -> Void

    @inlinable
    init(items: [Element], chunkSize: Int, output: UnsafeMutablePointer<T>?, shared: PoolShared,
         transform: @escaping @Sendable (Element) throws -> T,
         callback: (@Sendable ([T]) -> Void)?, errorCallback: (@Sendable (any Error) -> Void)?) {
        self.items = items
        self.transform = transform
        self.chunkSize = chunkSize
        chunkCount = (items.count + chunkSize - 1) / chunkSize
        ownsOutput = output == nil
        self.output = output ?? .allocate(capacity: items.count)
        chunkInitialized = .allocate(capacity: chunkCount)
        chunkInitialized.initialize(repeating: false, count: chunkCount)
        result = AsyncResult(resolvedLater: callback, errorCallback: errorCallback, shared: shared)
        runChunk = { $0.runChunkInline() }
        super.init(entries: chunkCount)
    }

    @usableFromInline var entries: Int { chunkCount }

    override func runEntry() {
        runChunk(self)
    }

    @inlinable
    func runChunkInline() {
        let chunk = nextChunk.wrappingAdd(1, ordering: .relaxed).oldValue
        guard !hasFailed else { return } // the map has failed: its remaining chunks need not run
        let start = chunk * chunkSize
        let end = min(start + chunkSize, items.count)
        var index = start
        do {
            while index < end {
                (output + index).initialize(to: try transform(items[index]))
                index += 1
            }
            chunkInitialized[chunk] = true
        } catch {
            (output + start).deinitialize(count: index - start)
            PoolShared.current?.recordFailure()
            recordFailure(error)
        }
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
    /// a chunk is one queue entry run on one worker, in input order. Results are written straight
    /// into the returned array. If items fail, the first error recorded is thrown once every chunk
    /// has finished (chunks not started by then are skipped). Called from one of the pool's own
    /// workers, the caller runs queued chunks while it waits.
    /// - Throws: the first item's error; ``ThreadPoolError/invalidChunkSize(_:)`` for `chunkSize < 1`
    ///   (before any work is queued); ``ThreadPoolError/notRunning``; ``ThreadPoolError/cancelled``
    ///   if ``terminate()`` dropped chunks.
    @inlinable
    public func map<S: Sequence, T: Sendable>(_ items: S, chunkSize: Int? = nil,
                                              _ transform: @escaping @Sendable (S.Element) throws -> T) throws -> [T]
        where S.Element: Sendable {
        if let chunkSize, chunkSize < 1 { throw ThreadPoolError.invalidChunkSize(chunkSize) }
        let items = Array(items)
        if items.isEmpty {
            guard isRunning else { throw ThreadPoolError.notRunning } // as Python, even for no items
            return []
        }
        return try [T](unsafeUninitializedCapacity: items.count) { buffer, initialized in
            let job = MapJob(items: items, chunkSize: chunkSize ?? defaultChunkSize(for: items.count),
                             output: buffer.baseAddress!, shared: shared, transform: transform, callback: nil, errorCallback: nil)
            try submitShared(job, entries: job.entries)
            _ = try job.result.get() // throws with every initialized element already deinitialized
            initialized = items.count
        }
    }

    /// Like ``map(_:chunkSize:_:)`` but returns at once; the result holds the values in input order.
    /// `callback` or `errorCallback` runs exactly once, on the pool's callback thread, before the result
    /// becomes ready.
    @inlinable
    public func mapAsync<S: Sequence, T: Sendable>(_ items: S, chunkSize: Int? = nil,
                                                   callback: (@Sendable ([T]) -> Void)? = nil,
                                                   errorCallback: (@Sendable (any Error) -> Void)? = nil,
                                                   _ transform: @escaping @Sendable (S.Element) throws -> T)
        throws(ThreadPoolError) -> AsyncResult<[T]> where S.Element: Sendable {
        if let chunkSize, chunkSize < 1 { throw .invalidChunkSize(chunkSize) }
        let items = Array(items)
        if items.isEmpty {
            guard isRunning else { throw .notRunning } // as Python, even for no items
            let result = AsyncResult<[T]>(resolvedLater: callback, errorCallback: errorCallback, shared: shared)
            result.resolve(.success([]))
            return result
        }
        let job = MapJob(items: items, chunkSize: chunkSize ?? defaultChunkSize(for: items.count),
                         output: nil, shared: shared, transform: transform, callback: callback, errorCallback: errorCallback)
        try submitShared(job, entries: job.entries)
        return job.result
    }
}
