import Synchronization

/// What the pool's registry sees of an imap: close and terminate reach every iterator that may still
/// pull input.
@usableFromInline
class IteratorRegistration: @unchecked Sendable {
    /// The pool is closing: pull and run the rest of the input regardless of the window, starting
    /// runners on `pool` (still accepting work at this point) as needed.
    @usableFromInline
    func drain(via pool: ThreadPool) {}
    /// The pool terminated: nothing more will run.
    @usableFromInline
    func poolTerminated() {}

    @usableFromInline
    init() {}
}

/// The consumer's side of an imap, independent of the input's element type.
@usableFromInline
class ResultSource<T: Sendable>: IteratorRegistration, @unchecked Sendable {
    /// `next(deadline:)` of the concrete iterator, as code specialized in the client (see
    /// ``IteratorCore``); it captures nothing and takes the source itself.
    @usableFromInline let nextEntry: (ResultSource<T>, Deadline?) throws -> T?

    @usableFromInline
    init(nextEntry: @escaping (ResultSource<T>, Deadline?) throws -> T?) {
        self.nextEntry = nextEntry
    }

    @usableFromInline
    func nextAsync() async throws -> T? { nil }
    @usableFromInline
    func cancel() {}
}

/// The shared state of one imap: the input, the window, and the results not yet read.
///
/// Runner jobs pull chunks of input under the lock and run them outside it; at most one runner per
/// worker is active, and a runner stops when the window is full (`bufferSize` items pulled ahead of
/// the consumer). Reading a result re-opens the window and restarts runners; so does `close()`,
/// which lifts the window altogether.
@usableFromInline
final class IteratorCore<Element: Sendable, T: Sendable>: ResultSource<T>, @unchecked Sendable {
    @usableFromInline
    struct State {
        /// The input; nil once it has ended (or the iteration was cancelled).
        @usableFromInline var input: (() throws -> Element?)?
        @usableFromInline var pulled = 0                          // items pulled so far: the next input index
        @usableFromInline var inputEnded = false
        @usableFromInline var inputError: (any Error)?            // the input threw: reported after every pulled item
        @usableFromInline var running = 0                         // items pulled whose results are not stored yet
        @usableFromInline var activeRunners = 0
        @usableFromInline var delivered = 0                       // results handed out (imap: the next index to hand out)
        @usableFromInline var results = ResultQueue<T>()          // results not yet read, in reading order
        @usableFromInline var draining = false                    // the pool is closing: ignore the window
        @usableFromInline var cancelled = false                   // cancel(): pull nothing more
        @usableFromInline var terminated = false                  // the pool terminated (or refused runners)
        @usableFromInline var reportedCancellation = false
        @usableFromInline var generation = 0                      // bumped on every change a consumer may wait for
        @usableFromInline var asyncWaiters: [UnsafeContinuation<Void, Never>] = []

        @usableFromInline
        init(input: (() throws -> Element?)?) {
            self.input = input
        }
    }

    @usableFromInline let state: Locked<State>
    /// Results a consumer took from `state` and has not handed out yet. Lock order: `taken`, then
    /// `state`; runners never take `taken`.
    @usableFromInline let taken = Locked(TakenResults<T>())
    @usableFromInline let transform: @Sendable (Element) throws -> T
    @usableFromInline let isOrdered: Bool
    @usableFromInline let chunkSize: Int
    @usableFromInline let bufferSize: Int
    @usableFromInline let maxRunners: Int
    /// Weak: an iterator may outlive its pool.
    @usableFromInline weak let pool: ThreadPool?
    /// `runLoop()` as code specialized in the client: made in the inlinable initializer, it captures
    /// nothing and takes the core itself. The library's own code for generic `Element` and `T` looks
    /// up the runtime metadata of `Result<T, _>`, `Optional<Element>` and the like on every call,
    /// which cost about 12 lookups per item; the entry points (`runLoop`, `next`) reached this way
    /// are specialized instead.
    @usableFromInline let runLoopEntry: (IteratorCore<Element, T>) -> Void

    @inlinable
    init(pool: ThreadPool, ordered: Bool, chunkSize: Int, bufferSize: Int,
         input: @escaping () throws -> Element?, transform: @escaping @Sendable (Element) throws -> T) {
        self.pool = pool
        isOrdered = ordered
        self.chunkSize = chunkSize
        self.bufferSize = bufferSize
        self.transform = transform
        maxRunners = pool.threadCount
        state = Locked(State(input: input))
        runLoopEntry = { $0.runLoop() }
        super.init(nextEntry: { source, deadline in
            try unsafeDowncast(source, to: IteratorCore<Element, T>.self).next(deadline: deadline)
        })
    }

    // MARK: Runners

    /// How many runners to start now, counted as active already. Called with the lock held; the
    /// caller submits them with ``startRunners(_:on:)`` after unlocking.
    @inlinable func runnersToStart(_ s: inout State) -> Int {
        guard s.input != nil, !s.cancelled, !s.terminated else { return 0 }
        let room = s.draining ? Int.max : bufferSize - (s.pulled - s.delivered)
        guard room > 0 else { return 0 }
        let chunksOfRoom = room / chunkSize + (room % chunkSize == 0 ? 0 : 1)
        let wanted = min(maxRunners - s.activeRunners, chunksOfRoom)
        guard wanted > 0 else { return 0 }
        s.activeRunners += wanted
        return wanted
    }

    /// Submits `count` runners. If the pool refuses them (it no longer runs), they are taken back and,
    /// when no runner is left, the iteration ends as cut short.
    @inlinable
    func startRunners(_ count: Int, on pool: ThreadPool? = nil) {
        guard count > 0 else { return }
        var refused = 0
        if let pool = pool ?? self.pool {
            for _ in 0..<count {
                do { try pool.submit(RunnerJob(core: self)) } catch { refused += 1 }
            }
        } else {
            refused = count
        }
        if refused > 0 {
            changed { s in
                s.activeRunners -= refused
                if s.activeRunners == 0 { s.terminated = true }
            }
        }
    }

    /// How many items a runner pulls at once: whole chunks, as many as run in about
    /// `pullTargetNanoseconds` (learned from the last pull, in `pullHint`), at most `maxPull` unless a
    /// chunk is larger, and at most a worker's share of the window's room. Pulling and storing several
    /// tiny items per lock acquisition is what keeps them cheap; slow items are pulled one chunk at a
    /// time, so that each result is handed out as soon as it is ready and the other workers get the
    /// next items.
    @inlinable func pullLimit(_ s: State) -> Int {
        let room = s.draining ? Int.max : bufferSize - (s.pulled - s.delivered)
        let share = room / maxRunners
        let items = min(share, pullHint.load(ordering: .relaxed))
        return max(chunkSize, items / chunkSize * chunkSize)
    }

    @usableFromInline static var maxPull: Int { 64 }
    @usableFromInline static var pullTargetNanoseconds: Int64 { 4_000 }

    /// Items per pull, learned by the runners from how long their last pull took per item.
    @usableFromInline let pullHint = Atomic<Int>(1)

    /// Learns `pullHint` from a pull of `count` items that took `elapsed`.
    @inlinable func learnPull(count: Int, elapsed: Duration) {
        let (seconds, attoseconds) = elapsed.components
        let nanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        let perItem = max(nanoseconds / Int64(count), 1)
        let hint = min(max(Int(Self.pullTargetNanoseconds / perItem), 1), max(Self.maxPull, chunkSize))
        pullHint.store(hint, ordering: .relaxed)
    }

    /// Set with `cancelled` or `terminated`: runners check it before each item they pulled, so that
    /// pulled items not yet started never run.
    @usableFromInline let stopping = Atomic<Bool>(false)

    /// One runner: pull items, run them, store their results; until the window is full, the input
    /// has ended, or the iteration was cancelled.
    @inlinable
    func runLoop() {
        var chunk: [(index: Int, item: Element)] = []
        chunk.reserveCapacity(chunkSize)
        while true {
            chunk.removeAll(keepingCapacity: true)
            state.withLock { s in
                guard !s.cancelled, !s.terminated, s.draining || s.pulled - s.delivered < bufferSize else {
                    return
                }
                let limit = pullLimit(s)
                while chunk.count < limit, let input = s.input {
                    do {
                        guard let item = try input() else {
                            s.input = nil
                            s.inputEnded = true
                            break
                        }
                        chunk.append((s.pulled, item))
                        s.pulled += 1
                        if isOrdered { s.results.reserve() }
                    } catch {
                        // Recorded now, so that no consumer sees the input end without it; it is
                        // handed out after the results of every item pulled before it.
                        s.input = nil
                        s.inputEnded = true
                        s.inputError = error
                    }
                }
                s.running += chunk.count
            }
            if chunk.isEmpty {
                stopRunner()
                return
            }
            // Each chunk's results are handed out as soon as the chunk is done (as Python's imap
            // does), so a slow item never holds back the results of the chunks before it; pulling
            // several chunks at once only saves lock acquisitions on the input.
            var results: [(index: Int, result: Result<T, any Error>)] = []
            results.reserveCapacity(chunkSize)
            let clock = ContinuousClock()
            let started = clock.now
            var position = 0
            var ran = 0
            while position < chunk.count {
                let chunkEnd = min(position + chunkSize, chunk.count)
                results.removeAll(keepingCapacity: true)
                while position < chunkEnd && !stopping.load(ordering: .relaxed) {
                    let (index, item) = chunk[position]
                    let result = Result { try transform(item) }
                    if case .failure = result { PoolShared.current?.recordFailure() }
                    results.append((index, result))
                    position += 1
                }
                ran += results.count
                // Items skipped after cancel() or terminate() will never run: they leave `running` too.
                let settled = stopping.load(ordering: .relaxed) ? chunk.count - (position - results.count) : results.count
                if stopping.load(ordering: .relaxed) { position = chunk.count }
                publish { s in
                    s.running -= settled
                    for (index, result) in results {
                        if isOrdered { s.results.fill(index, with: result) } else { s.results.append(result) }
                    }
                }
            }
            learnPull(count: max(ran, 1), elapsed: clock.now - started)
        }
    }

    @inlinable func stopRunner() {
        var finished = false
        changed { s in
            s.activeRunners -= 1
            finished = s.activeRunners == 0 && (s.input == nil || s.terminated)
        }
        if finished { pool?.unregister(self) }
    }

    /// A runner was dropped by terminate() before it started.
    @usableFromInline
    func runnerDropped() {
        changed { s in
            s.activeRunners -= 1
            s.terminated = true
        }
        stopping.store(true, ordering: .relaxed)
    }

    // MARK: Pool events

    /// Starts the first runners: the work begins without the consumer iterating.
    @inlinable
    func start(on pool: ThreadPool) {
        var count = 0
        changed { s in count = runnersToStart(&s) }
        startRunners(count, on: pool)
    }

    @usableFromInline
    override func drain(via pool: ThreadPool) {
        var count = 0
        changed { s in
            s.draining = true
            count = runnersToStart(&s)
        }
        startRunners(count, on: pool)
    }

    @usableFromInline
    override func poolTerminated() {
        stopping.store(true, ordering: .relaxed)
        changed { $0.terminated = true }
    }

    @usableFromInline
    override func cancel() {
        stopping.store(true, ordering: .relaxed)
        var finished = false
        changed { s in
            s.cancelled = true
            s.input = nil
            finished = s.activeRunners == 0
        }
        if finished { pool?.unregister(self) }
    }

    // MARK: Consuming

    @usableFromInline enum Step {
        case value(Result<T, any Error>)
        case end
        case notYet
    }

    /// How many ready results a consumer takes from `state` at once: a quarter of the window, so
    /// that the runners keep most of it while the consumer works through what it took.
    @inlinable var takeLimit: Int { max(1, bufferSize / 4) }

    /// What the consumer gets now, with both locks held and `c` empty: reports the results `c`
    /// handed out (which re-opens the window), steps, and takes the ready results behind a value.
    @inlinable func take(_ c: inout TakenResults<T>, _ s: inout State) -> Step {
        s.delivered += c.handedOut
        c.handedOut = 0
        let outcome = step(&s)
        if case .value = outcome { c.take(from: &s.results, limit: takeLimit) }
        return outcome
    }

    /// What the consumer gets now. Called with the lock held.
    @inlinable func step(_ s: inout State) -> Step {
        if let result = s.results.popReady() {
            s.delivered += 1
            return .value(result)
        }
        // Nothing stored at the consumer's position: wait for the items still running.
        if s.running > 0 { return .notYet }
        // Every pulled item has been handed out.
        if let error = s.inputError {
            s.inputError = nil
            return .value(.failure(error))
        }
        if s.inputEnded || s.cancelled { return .end }
        if s.terminated {
            if s.reportedCancellation { return .end }
            s.reportedCancellation = true
            return .value(.failure(ThreadPoolError.cancelled))
        }
        return .notYet
    }

    @inlinable
    func next(deadline: Deadline?) throws -> T? {
        while true {
            var outcome = Step.notYet
            var restart = 0
            var generation = 0
            taken.withLock { c in
                if let result = c.pop() {
                    outcome = .value(result)
                    return
                }
                state.withLock { s in
                    outcome = take(&c, &s)
                    restart = runnersToStart(&s)
                    generation = s.generation
                }
            }
            startRunners(restart)
            switch outcome {
            case .value(let result): return try result.get()
            case .end: return nil
            case .notYet: break
            }
            // On one of the pool's workers, run queued work (this iterator's runners among it) first.
            if WorkerHelp.helpOnce() { continue }
            let woken = state.wait(until: deadline, for: { $0.generation != generation }, then: { _ in true })
            if woken == nil { throw ThreadPoolError.timeout }
        }
    }

    @usableFromInline
    override func nextAsync() async throws -> T? {
        while true {
            try Task.checkCancellation()
            var outcome = Step.notYet
            var restart = 0
            await withTaskCancellationHandler {
                await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                    let waiting = taken.withLock { c -> Bool in
                        if let result = c.pop() {
                            outcome = .value(result)
                            return false
                        }
                        return state.withLock { s -> Bool in
                            outcome = take(&c, &s)
                            restart = runnersToStart(&s)
                            guard case .notYet = outcome else { return false }
                            s.asyncWaiters.append(continuation)
                            return true
                        }
                    }
                    if waiting {
                        // Start them before suspending: they may be what will wake this consumer.
                        startRunners(restart)
                        restart = 0
                    } else {
                        continuation.resume()
                    }
                }
            } onCancel: {
                self.changed { _ in } // wake the waiter so that it sees the cancellation
            }
            startRunners(restart)
            switch outcome {
            case .value(let result): return try result.get()
            case .end: return nil
            case .notYet: continue
            }
        }
    }

    /// Applies `store` (storing results) under the lock, then wakes the waiting consumers if one of
    /// them can go on: the result it waits for is ready, or no pulled item is still running. Storing
    /// an imap result behind one still missing wakes nobody, so that a waiting consumer is woken
    /// once when its result comes rather than once per result.
    @inlinable func publish(_ store: (inout State) -> Void) {
        let waiters = state.withLock { s -> [UnsafeContinuation<Void, Never>] in
            store(&s)
            guard s.running == 0 || s.results.hasReady else { return [] }
            s.generation &+= 1
            state.broadcast()
            if s.asyncWaiters.isEmpty { return [] }
            defer { s.asyncWaiters = [] }
            return s.asyncWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Applies `change` under the lock, then wakes every waiting consumer.
    @inlinable func changed(_ change: (inout State) -> Void) {
        let waiters = state.withLock { s -> [UnsafeContinuation<Void, Never>] in
            change(&s)
            s.generation &+= 1
            state.broadcast()
            defer { s.asyncWaiters = [] }
            return s.asyncWaiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// One active runner of an imap: a queue entry that runs chunks until its iterator's window is full.
@usableFromInline
final class RunnerJob<Element: Sendable, T: Sendable>: _ThreadPoolJob, @unchecked Sendable {
    @usableFromInline let core: IteratorCore<Element, T>

    @usableFromInline
    init(core: IteratorCore<Element, T>) {
        self.core = core
    }

    override func run() {
        core.runLoopEntry(core)
    }

    override func drop() {
        core.runnerDropped()
    }
}
