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
/// Runner jobs pull chunks of input under the lock (a ``PulledBatch`` of them) and run them outside
/// it, publishing each chunk's results in the batch; a consumer takes them from there or, once the
/// batch is settled, from the shared ``ResultQueue`` (and many at once, into ``TakenResults``).
/// At most one runner per worker is active, and a runner stops when the window is full (`bufferSize`
/// items pulled ahead of the consumer). Reading results re-opens the window and restarts runners; so
/// does `close()`, which lifts the window altogether.
@usableFromInline
final class IteratorCore<Element: Sendable, T: Sendable>: ResultSource<T>, @unchecked Sendable {
    @usableFromInline
    struct State {
        /// The input; nil once it has ended (or the iteration was cancelled).
        @usableFromInline var input: (() throws -> Element?)?
        @usableFromInline var pulled = 0 // items pulled so far: the next input index
        @usableFromInline var inputEnded = false
        @usableFromInline var inputError: (any Error)? // the input threw: reported after every pulled item
        @usableFromInline var running = 0 // items pulled whose batches are not settled yet
        @usableFromInline var inFlight: [PulledBatch<T>] = [] // batches being run, not settled yet
        @usableFromInline var waiting = 0 // consumers blocked in next(deadline:)
        @usableFromInline var activeRunners = 0
        @usableFromInline var delivered = 0 // results handed out (imap: the next index to hand out)
        @usableFromInline var results = ResultQueue<T>() // results not yet read, in reading order
        @usableFromInline var draining = false // the pool is closing: ignore the window
        @usableFromInline var cancelled = false // cancel(): pull nothing more
        @usableFromInline var terminated = false // the pool terminated (or refused runners)
        @usableFromInline var reportedCancellation = false
        @usableFromInline var generation = 0 // bumped on every change a consumer may wait for
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
    init(
        pool: ThreadPool, ordered: Bool, chunkSize: Int, bufferSize: Int,
        input: @escaping () throws -> Element?, transform: @escaping @Sendable (Element) throws -> T
    ) {
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
        var items: [Element] = []
        items.reserveCapacity(chunkSize)
        let clock = ContinuousClock()
        // The last batch, settled, if nobody else holds it: reused for the next pull, so that pulls
        // cost no allocation.
        var spare: PulledBatch<T>?
        while true {
            items.removeAll(keepingCapacity: true)
            let pulledBatch = state.withLock { s -> PulledBatch<T>? in
                guard !s.cancelled, !s.terminated, s.draining || s.pulled - s.delivered < bufferSize else {
                    return nil
                }
                let first = s.pulled
                let limit = pullLimit(s)
                while items.count < limit, let input = s.input {
                    do {
                        guard let item = try input() else {
                            s.input = nil
                            s.inputEnded = true
                            break
                        }
                        items.append(item)
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
                guard !items.isEmpty else { return nil }
                s.running += items.count
                let batch: PulledBatch<T>
                if let spare, spare.capacity >= items.count {
                    spare.reuse(firstIndex: first, count: items.count)
                    batch = spare
                } else {
                    batch = PulledBatch<T>(firstIndex: first, count: items.count, capacity: max(limit, items.count))
                }
                s.inFlight.append(batch)
                // A consumer waiting for one of these items must be woken when it is made.
                if isWaitedFor(batch, s) { batch.watched.store(true, ordering: .sequentiallyConsistent) }
                return batch
            }
            spare = nil
            guard var batch = pulledBatch else {
                stopRunner()
                return
            }
            // Each chunk's results are available to the consumer as soon as the chunk is done (as in
            // Python's imap), so a slow item never holds back the results of the chunks before it;
            // the lock is only taken again to settle the whole batch.
            let started = clock.now
            var position = 0
            while position < items.count && !stopping.load(ordering: .relaxed) {
                let chunkEnd = min(position + chunkSize, items.count)
                while position < chunkEnd && !stopping.load(ordering: .relaxed) {
                    let result = Result { try transform(items[position]) }
                    if case .failure = result { PoolShared.current?.recordFailure() }
                    (batch.slots + position).initialize(to: result)
                    position += 1
                }
                batch.made.store(position, ordering: .sequentiallyConsistent)
                if batch.watched.load(ordering: .sequentiallyConsistent) { changed { _ in } }
            }
            settle(batch)
            learnPull(count: max(position, 1), elapsed: clock.now - started)
            if isKnownUniquelyReferenced(&batch) {
                // Acquire, pairing with the consumer's release of its last reference (the uniqueness
                // check alone is a relaxed load on ARM64): its reads of the batch's slots happen
                // before this thread writes them again.
                atomicMemoryFence(ordering: .acquiring)
                spare = batch
            }
        }
    }

    /// Moves the results of a finished batch that no consumer took to the shared queue, and wakes
    /// a waiting consumer. Items skipped after cancel() or terminate() never run: they leave
    /// `running` too.
    @inlinable func settle(_ batch: PulledBatch<T>) {
        let waiters = state.withLock { s -> [UnsafeContinuation<Void, Never>] in
            let made = batch.made.load(ordering: .relaxed)
            while batch.taken < made {
                let result = (batch.slots + batch.taken).move()
                if isOrdered {
                    s.results.fill(batch.firstIndex + batch.taken, with: result)
                } else {
                    s.results.append(result)
                }
                batch.taken += 1
            }
            s.running -= batch.count
            if let index = s.inFlight.firstIndex(where: { $0 === batch }) { s.inFlight.remove(at: index) }
            guard s.waiting > 0 || !s.asyncWaiters.isEmpty else { return [] }
            return wakeAll(&s)
        }
        for waiter in waiters { waiter.resume() }
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
        if case .value = outcome {
            while c.count < takeLimit, let result = popResult(&s) { c.append(result) }
        }
        return outcome
    }

    /// The next result in reading order if it is ready: from the shared queue, or straight from the
    /// batch of the runner that made it. Called with the lock held.
    @inlinable func popResult(_ s: inout State) -> Result<T, any Error>? {
        if let result = s.results.popReady() { return result }
        if isOrdered {
            // The slot reserved for it in the queue stays empty: the batch's runner skips the
            // results taken when it settles.
            guard let batch = headBatch(s), batch.firstIndex + batch.taken == s.results.headIndex,
                let result = batch.takeNext()
            else { return nil }
            s.results.skipReserved()
            return result
        }
        for batch in s.inFlight {
            if let result = batch.takeNext() { return result }
        }
        return nil
    }

    /// imap: the batch in flight that holds the consumer's position, if any. Called with the lock held.
    @inlinable func headBatch(_ s: State) -> PulledBatch<T>? {
        let index = s.results.headIndex
        return s.inFlight.first { index >= $0.firstIndex && index < $0.firstIndex + $0.count }
    }

    /// Whether a waiting consumer needs to be woken when `batch` makes a result: with imap, only if
    /// the batch holds its position. Called with the lock held.
    @inlinable func isWaitedFor(_ batch: PulledBatch<T>, _ s: State) -> Bool {
        guard s.waiting > 0 || !s.asyncWaiters.isEmpty else { return false }
        let index = s.results.headIndex
        return !isOrdered || (index >= batch.firstIndex && index < batch.firstIndex + batch.count)
    }

    /// Marks the batches whose results a consumer about to wait needs (see ``PulledBatch/watched``);
    /// the caller then checks ``hasResult(_:)`` again. Called with the lock held.
    @inlinable func watch(_ s: State) {
        for batch in s.inFlight where isWaitedFor(batch, s) {
            batch.watched.store(true, ordering: .sequentiallyConsistent)
        }
    }

    /// Whether `popResult` would return a result now. Called with the lock held.
    @inlinable func hasResult(_ s: State) -> Bool {
        if s.results.hasReady { return true }
        if isOrdered { return headBatch(s)?.hasResult ?? false }
        return s.inFlight.contains { $0.hasResult }
    }

    /// What the consumer gets now. Called with the lock held.
    @inlinable func step(_ s: inout State) -> Step {
        if let result = popResult(&s) {
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
        // The batches to poll while waiting. Replaced under the lock only: the last reference to a
        // settled batch is then dropped where its runner's writes are visible.
        var running: [PulledBatch<T>] = []
        while true {
            var outcome = Step.notYet
            var restart = 0
            var generation = 0
            var position = 0
            taken.withLock { c in
                if let result = c.pop() {
                    outcome = .value(result)
                    return
                }
                state.withLock { s in
                    outcome = take(&c, &s)
                    restart = runnersToStart(&s)
                    generation = s.generation
                    if case .notYet = outcome {
                        running = s.inFlight
                        position = s.results.headIndex
                    } else {
                        running = []
                    }
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
            // While results are flowing the next one is usually a fraction of a microsecond away:
            // poll for it briefly rather than pay for sleeping and being woken.
            if spinForResult(in: running, position: position) { continue }
            let woken = state.wait(
                until: deadline,
                begin: { s in
                    s.waiting += 1
                    watch(s)
                },
                for: { s in
                    s.generation != generation || hasResult(s)
                },
                end: { s in
                    s.waiting -= 1
                })
            if !woken { throw ThreadPoolError.timeout }
        }
    }

    /// How long a consumer polls the batches being run for a result before it blocks.
    @usableFromInline static var spinNanoseconds: Int64 { 20_000 }

    /// Polls without the lock, for at most `spinNanoseconds`, until one of `batches` makes a result
    /// the consumer can take (with imap, the one at input index `position`). Returns whether one did;
    /// false at once if no batch being run holds what the consumer waits for (it would poll a
    /// runner that is still starting, on a core that runner may need).
    @inlinable func spinForResult(in batches: [PulledBatch<T>], position: Int) -> Bool {
        func madeSoFar() -> Int {
            batches.reduce(0) { $0 + $1.made.load(ordering: .acquiring) }
        }
        let progressed: () -> Bool
        if isOrdered {
            guard let head = batches.first(where: { position >= $0.firstIndex && position < $0.firstIndex + $0.count })
            else { return false }
            progressed = { head.made.load(ordering: .acquiring) > position - head.firstIndex }
        } else {
            guard !batches.isEmpty else { return false }
            let seen = madeSoFar()
            progressed = { madeSoFar() != seen }
        }
        let clock = ContinuousClock()
        let deadline = clock.now + .nanoseconds(Self.spinNanoseconds)
        var polls = 0
        while !progressed() {
            polls += 1
            if polls % 64 == 0 && clock.now >= deadline { return false }
        }
        return true
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
                            watch(s)
                            // Made since `take` looked, before the batch was watched: look again.
                            if hasResult(s) {
                                s.asyncWaiters.removeLast()
                                return false
                            }
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

    /// Applies `change` under the lock, then wakes every waiting consumer.
    @inlinable func changed(_ change: (inout State) -> Void) {
        let waiters = state.withLock { s -> [UnsafeContinuation<Void, Never>] in
            change(&s)
            return wakeAll(&s)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Wakes every blocked consumer and returns the async ones, for the caller to resume after
    /// unlocking. Every consumer then looks again (and watches again what it still waits for), so
    /// no batch is watched any more. Called with the lock held.
    @inlinable func wakeAll(_ s: inout State) -> [UnsafeContinuation<Void, Never>] {
        s.generation &+= 1
        state.broadcast()
        for batch in s.inFlight { batch.watched.store(false, ordering: .relaxed) }
        if s.asyncWaiters.isEmpty { return [] }
        defer { s.asyncWaiters = [] }
        return s.asyncWaiters
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
