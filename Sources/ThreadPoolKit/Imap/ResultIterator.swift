/// The results of ``ThreadPool/imap(_:chunkSize:bufferSize:_:)`` and
/// ``ThreadPool/imapUnordered(_:chunkSize:bufferSize:_:)``: `next(timeout:)` for blocking code, and
/// `AsyncSequence` for `for try await`.
///
/// The input is pulled lazily, on the pool's workers, at most `bufferSize` items ahead of the consumer,
/// so an endless input works in bounded memory. The work runs without the consumer iterating: results
/// wait in the iterator until they are read. ``ThreadPool/close()`` lifts the window: the remaining
/// input is then pulled and run and its results kept, so `imap`, `close()`, `join()`, then reading
/// the iterator gives every result, as in Python (an endless input then never lets `join()` return).
///
/// A task that throws: its error is thrown by `next` at its position (input order for `imap`,
/// completion order for `imapUnordered`); the following `next` goes on with the next result, as
/// Python's iterator does. An input that throws ends the iteration with that error at its position.
/// ``ThreadPool/terminate()`` ends it with ``ThreadPoolError/cancelled`` after the results already
/// made.
///
/// Dropping the iterator cancels it: items not yet started never run. Thread safety: any thread may
/// call any member; results are handed out once each, to whichever caller gets them first.
public final class ResultIterator<T: Sendable>: AsyncSequence, Sendable {
    /// The type of each result.
    public typealias Element = T
    /// What iterating may throw: an item's own error, or a ``ThreadPoolError``.
    public typealias Failure = any Error

    @usableFromInline let core: ResultSource<T>

    @usableFromInline
    init(core: ResultSource<T>) {
        self.core = core
    }

    deinit {
        core.cancel()
    }

    /// Blocks until the next result is ready and returns it, or nil at the end. On one of the pool's
    /// workers it runs queued tasks meanwhile, so a timeout may be overshot by the length of one task.
    /// - Throws: the item's own error at its position; ``ThreadPoolError/timeout`` if `timeout` passed
    ///   first (nothing is lost: the next call returns that same result); ``ThreadPoolError/cancelled``
    ///   once if ``ThreadPool/terminate()`` cut the work short.
    @inlinable
    @available(*, noasync, message: "blocks the thread; in async code iterate with 'for try await'")
    public func next(timeout: Duration? = nil) throws -> T? {
        try core.nextEntry(core, timeout.map(Deadline.init(after:)))
    }

    /// Cancels the iteration: items not yet started never run; `next` then returns the results already
    /// made and nil after them.
    public func cancel() {
        core.cancel()
    }

    /// Iterates the results with `for try await`. Reading from several iterators of one
    /// `ResultIterator` at once hands each result to one of them.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let iterator: ResultIterator<T>

        /// The next result, awaited without blocking a thread; nil at the end.
        /// - Throws: as ``ResultIterator/next(timeout:)``, and `CancellationError` when the awaiting
        ///   task is cancelled (the iterator itself is not cancelled).
        public mutating func next() async throws -> T? {
            try await iterator.core.nextAsync()
        }
    }

    /// An iterator over the results for `for try await`.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(iterator: self)
    }
}
