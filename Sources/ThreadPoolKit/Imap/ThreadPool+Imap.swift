extension ThreadPool {
    /// Applies `transform` to every item lazily and returns an iterator over the results in input order
    /// (Python's `imap`). See ``ResultIterator`` for the window, `close()`, errors and cancellation.
    /// - Parameters:
    ///   - items: the input, read lazily on the pool's workers, one item at a time. It is handed over
    ///     (`sending`): the caller must not use it afterwards.
    ///   - chunkSize: items run together, in order, on one worker (Python's `chunksize`), at least 1.
    ///   - bufferSize: how many items may be pulled from `items` ahead of the consumer, at least 1
    ///     (nil: ``defaultBufferSize(chunkSize:)``). Raised to `chunkSize` if smaller.
    ///   - transform: runs on the pool's workers, once for each item.
    /// - Throws: ``ThreadPoolError/invalidChunkSize(_:)`` for a chunk size below 1,
    ///   ``ThreadPoolError/invalidBufferSize(_:)`` for a buffer size below 1;
    ///   ``ThreadPoolError/notRunning`` after ``close()`` or ``terminate()``.
    @inlinable
    public func imap<S: Sequence, T: Sendable>(
        _ items: sending S, chunkSize: Int = 1, bufferSize: Int? = nil,
        _ transform: @escaping @Sendable (S.Element) throws -> T
    )
        throws(ThreadPoolError) -> ResultIterator<T> where S.Element: Sendable
    {
        try makeIterator(
            ordered: true, input: sequenceInput(items), chunkSize: chunkSize,
            bufferSize: bufferSize, transform: transform)
    }

    /// As ``imap(_:chunkSize:bufferSize:_:)``, with results in the order they complete (input order
    /// with one worker): Python's `imap_unordered`.
    @inlinable
    public func imapUnordered<S: Sequence, T: Sendable>(
        _ items: sending S, chunkSize: Int = 1, bufferSize: Int? = nil,
        _ transform: @escaping @Sendable (S.Element) throws -> T
    )
        throws(ThreadPoolError) -> ResultIterator<T> where S.Element: Sendable
    {
        try makeIterator(
            ordered: false, input: sequenceInput(items), chunkSize: chunkSize,
            bufferSize: bufferSize, transform: transform)
    }

    /// As ``imap(_:chunkSize:bufferSize:_:)``, pulling items from `producer` until it returns nil. If
    /// `producer` throws, the iteration ends with that error at its position, after the results of the
    /// items before it; the pool stays usable. `producer` is called on the pool's workers, one call at a
    /// time, so it is handed over (`sending`): the caller must not share its state with other threads.
    @inlinable
    public func imap<Element: Sendable, T: Sendable>(
        from producer: sending @escaping () throws -> Element?,
        chunkSize: Int = 1, bufferSize: Int? = nil,
        _ transform: @escaping @Sendable (Element) throws -> T
    )
        throws(ThreadPoolError) -> ResultIterator<T>
    {
        try makeIterator(
            ordered: true, input: producer, chunkSize: chunkSize, bufferSize: bufferSize,
            transform: transform)
    }

    /// As ``imap(from:chunkSize:bufferSize:_:)``, with results in completion order.
    @inlinable
    public func imapUnordered<Element: Sendable, T: Sendable>(
        from producer: sending @escaping () throws -> Element?,
        chunkSize: Int = 1, bufferSize: Int? = nil,
        _ transform: @escaping @Sendable (Element) throws -> T
    )
        throws(ThreadPoolError) -> ResultIterator<T>
    {
        try makeIterator(
            ordered: false, input: producer, chunkSize: chunkSize, bufferSize: bufferSize,
            transform: transform)
    }

    /// The window of an imap when no `bufferSize` is given: 2 × threads × chunkSize items, and at
    /// least 256. The floor is there for throughput: with a window of a few items the consumer and the
    /// runners wait on each other for nearly every item; 256 results stay small in memory.
    public func defaultBufferSize(chunkSize: Int = 1) -> Int {
        max(2 * threadCount * chunkSize, 256)
    }

    /// The input of a sequence: its iterator, called under the iterator core's lock only.
    @inlinable
    func sequenceInput<S: Sequence>(_ items: sending S) -> () throws -> S.Element? {
        nonisolated(unsafe) var iterator = items.makeIterator()
        return { iterator.next() }
    }

    @inlinable
    func makeIterator<Element: Sendable, T: Sendable>(
        ordered: Bool, input: @escaping () throws -> Element?, chunkSize: Int, bufferSize: Int?,
        transform: @escaping @Sendable (Element) throws -> T
    ) throws(ThreadPoolError) -> ResultIterator<T> {
        if chunkSize < 1 { throw .invalidChunkSize(chunkSize) }
        if let bufferSize, bufferSize < 1 { throw .invalidBufferSize(bufferSize) }
        let window = max(bufferSize ?? defaultBufferSize(chunkSize: chunkSize), chunkSize)
        let core = IteratorCore(
            pool: self, ordered: ordered, chunkSize: chunkSize, bufferSize: window,
            input: input, transform: transform)
        try register(core)
        core.start(on: self)
        return ResultIterator(core: core)
    }
}
