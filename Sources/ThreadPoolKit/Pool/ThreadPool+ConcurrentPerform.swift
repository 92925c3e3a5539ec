import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The shared context of one `concurrentPerform` call: the body, the chunk counter, the first error
/// and the completion, in one object (the call's only allocation).
///
/// The call is queued as one entry per worker at most, all of them this one object (see
/// ``SharedJob``); the synchronous caller runs chunks too. Every runner claims chunks from
/// `nextChunk` until none is left, several consecutive ones per claim while they are short (see
/// ``runChunks(_:)``), and counts the chunks of each claim, run or skipped, in `chunksFinished`.
///
/// Completion is counted in chunks, not in entries: the call is done when every chunk has finished
/// or been skipped, whether or not every queued entry has reached a worker. An entry still queued
/// then finds nothing left to claim when it runs and returns at once; so a call never waits for a
/// worker that is busy with something else, which is what lets a worker call it (nested) without
/// waiting for itself or for workers waiting like it.
@usableFromInline
final class PerformJob: SharedJob, @unchecked Sendable {
    let body: @Sendable (Int) throws -> Void
    @usableFromInline let iterations: Int
    @usableFromInline let chunkSize: Int
    @usableFromInline let chunkCount: Int
    /// Threads that may be claiming at once: the entries queued, and the caller if it takes part.
    @usableFromInline let runners: Int
    /// For `terminating` and the failure count. Unowned: the pool's shared state outlives every
    /// queued entry, and the caller holds the pool for the call.
    @usableFromInline unowned(unsafe) let shared: PoolShared

    // The two counters every claim writes, on a cache line of their own: off the line of the fields
    // above, read by every chunk, and of those below, read by every chunk and written on failure.
    private let padding1 = CacheLinePadding()
    /// The first chunk not yet claimed. It runs past `chunkCount` by each runner's last claim (at
    /// most a fair share of what was left) and by 1 for each entry that finds nothing left: by less
    /// than `chunkCount` plus the entries, so even past `Int.max` its bit pattern read as a `UInt`
    /// compares above `chunkCount`.
    @usableFromInline let nextChunk = Atomic<Int>(0)
    /// Chunks that ran or were skipped. The claim that brings it to `chunkCount` completes the call.
    let chunksFinished = Atomic<Int>(0)
    private let padding2 = CacheLinePadding()

    /// Set by the first failure (an iteration's error, or chunks dropped by terminate()); from then
    /// on chunks not started are skipped.
    @usableFromInline let stopped = Atomic<Bool>(false)
    /// Written once, by the runner that set `stopped`, before it counts its chunks as finished
    /// (releasing); read by the caller once `done` is set (acquiring).
    nonisolated(unsafe) var firstError: (any Error)?
    /// `done` once every chunk has finished or been skipped; `waiting` once a caller sleeps on this
    /// job's stripe of the parking lot (or left a continuation) and must be woken.
    let state = Atomic<UInt8>(0)
    static var done: UInt8 { 1 }
    static var waiting: UInt8 { 2 }
    /// The async caller's continuation. Guarded by this job's parking-lot stripe mutex.
    nonisolated(unsafe) var continuation: UnsafeContinuation<Void, Never>?

    /// How long a waiting caller polls before it sleeps: the chunks still running when the caller
    /// runs out of chunks are about one claim long.
    static var spinNanoseconds: UInt64 { 20_000 }

    init(
        iterations: Int, chunkSize: Int, runners: Int, entries: Int, shared: PoolShared,
        body: @escaping @Sendable (Int) throws -> Void
    ) {
        self.body = body
        self.iterations = iterations
        self.chunkSize = chunkSize
        chunkCount = Self.chunkCount(iterations: iterations, chunkSize: chunkSize)
        self.runners = max(runners, 1)
        self.shared = shared
        super.init(entries: entries)
    }

    /// `ceil(iterations / chunkSize)`, without overflowing near `Int.max`.
    static func chunkCount(iterations: Int, chunkSize: Int) -> Int {
        iterations / chunkSize + (iterations % chunkSize == 0 ? 0 : 1)
    }

    // MARK: Running chunks

    override func runEntry() {
        let body = self.body
        runChunks { start, end in
            var index = start
            // Four calls per loop test: the calls cannot be inlined here, the loop's own work can.
            while end &- index >= 4 {
                try body(index)
                try body(index &+ 1)
                try body(index &+ 2)
                try body(index &+ 3)
                index &+= 4
            }
            while index < end {
                try body(index)
                index &+= 1
            }
        }
    }

    /// Claims chunks and runs the iterations `start..<end` of each claim with `runChunk(start, end)`
    /// until none is left, an iteration has thrown or the pool is terminating.
    ///
    /// A claim takes as many consecutive chunks as ``AdaptiveClaim`` says.
    ///
    /// Inlined into the synchronous `concurrentPerform`, in the client's code, where `runChunk` calls
    /// the caller's `body` directly: the calling thread's iterations then cost no call each (a
    /// worker's do: it calls the closure it was given, from the library's copy of this loop).
    @inlinable @inline(__always)
    func runChunks(_ runChunk: (Int, Int) throws -> Void) {
        let chunkSize = self.chunkSize
        let chunkCount = self.chunkCount
        let iterations = self.iterations
        let shared = self.shared
        var claim = AdaptiveClaim()
        while true {
            if stopped.load(ordering: .relaxed) {
                skipUnclaimed(cancelled: false)
                return
            }
            if shared.terminating.load(ordering: .relaxed) {
                skipUnclaimed(cancelled: true) // chunks not claimed are dropped, as queued tasks are
                return
            }
            let first = nextChunk.wrappingAdd(claim.size, ordering: .relaxed).oldValue
            guard UInt(bitPattern: first) < UInt(bitPattern: chunkCount) else { return }
            let end = claim.size < chunkCount - first ? first + claim.size : chunkCount
            // The claim's iterations in one run, in index order, up to the first error (the rest
            // of the claim is skipped). Other runners' errors and terminate() are seen between
            // claims: several chunks are claimed at once only while they are short, so a runner
            // starts at most a few microseconds of chunks after the call has stopped elsewhere.
            do {
                try runChunk(first * chunkSize, end == chunkCount ? iterations : end * chunkSize)
            } catch {
                recordThrown(error)
            }
            finish(chunks: end - first)
            claim.update(end: end, chunkCount: chunkCount, runners: runners)
        }
    }

    /// An iteration threw `error`: counted in the pool's stats, and recorded if it is the first failure.
    @usableFromInline
    func recordThrown(_ error: any Error) {
        shared.recordFailure()
        recordError(error)
    }

    /// Records `error` if nothing was recorded before; chunks not started are skipped from now on.
    @usableFromInline
    func recordError(_ error: any Error) {
        if stopped.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
            firstError = error
        }
    }

    /// Claims every chunk left and counts them as finished, unrun; with `cancelled` (terminate()
    /// dropped them), the call fails with ``ThreadPoolError/cancelled`` unless it failed already.
    @usableFromInline
    func skipUnclaimed(cancelled: Bool) {
        let first = nextChunk.exchange(chunkCount, ordering: .relaxed)
        guard UInt(bitPattern: first) < UInt(bitPattern: chunkCount) else { return }
        if cancelled { recordError(ThreadPoolError.cancelled) }
        finish(chunks: chunkCount - first)
    }

    /// Counts `chunks` as finished; the count that reaches `chunkCount` completes the call.
    /// Acquiring and releasing: the count orders every runner's writes (its iterations' effects, the
    /// first error) before the completion, which the caller acquires.
    @usableFromInline
    func finish(chunks: Int) {
        guard chunks > 0 else { return }
        if chunksFinished.wrappingAdd(chunks, ordering: .acquiringAndReleasing).newValue == chunkCount {
            publishDone()
        }
    }

    /// terminate() dropped an entry before it started: the chunks nobody has claimed are dropped
    /// too (the other runners stop claiming as they see the pool terminating). An entry dropped after
    /// every chunk was claimed changes nothing.
    override func dropEntry() {
        skipUnclaimed(cancelled: true)
    }

    // MARK: Completion

    /// Whether every chunk has finished or been skipped (acquiring: their effects are visible).
    var isDone: Bool {
        state.load(ordering: .acquiring) & Self.done != 0
    }

    /// Marks the call done and wakes its caller. Called once, by a runner (which holds a reference to
    /// this job: the caller's, or the queue's, released only after its entry returns).
    private func publishDone() {
        let old = state.bitwiseOr(Self.done, ordering: .acquiringAndReleasing).oldValue
        guard old & Self.waiting != 0 else { return }
        let lot = ParkingLot.shared
        let stripe = lot.stripe(for: self)
        let continuation = lot.withLock(stripe) { () -> UnsafeContinuation<Void, Never>? in
            lot.broadcast(stripe)
            defer { self.continuation = nil }
            return self.continuation
        }
        continuation?.resume()
    }

    /// Blocks until the call is done: on one of a pool's workers, runs that pool's queued tasks
    /// meanwhile (as every wait inside a pool does); then polls for a while, since the chunks still
    /// running are short when claims are; then sleeps.
    @usableFromInline
    func waitBlocking() {
        if isDone { return }
        while !isDone && WorkerHelp.helpOnce() {}
        var polls = 0
        var spinStart: UInt64 = 0
        while !isDone {
            polls += 1
            if polls < 64 { continue }
            // Give the CPU away between polls: a runner still in its chunk may be waiting for it.
            if polls == 64 {
                spinStart = monotonicNanoseconds()
            } else if polls & 15 == 0 && monotonicNanoseconds() &- spinStart > Self.spinNanoseconds {
                break
            }
            sched_yield()
        }
        let lot = ParkingLot.shared
        let stripe = lot.stripe(for: self)
        lot.withLock(stripe) {
            if state.bitwiseOr(Self.waiting, ordering: .acquiringAndReleasing).oldValue & Self.done != 0 { return }
            while !isDone { _ = lot.wait(stripe, until: nil) }
        }
    }

    /// Suspends until the call is done.
    func completion() async {
        if isDone { return }
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let lot = ParkingLot.shared
            let stripe = lot.stripe(for: self)
            let doneAlready = lot.withLock(stripe) { () -> Bool in
                if state.bitwiseOr(Self.waiting, ordering: .acquiringAndReleasing).oldValue & Self.done != 0 {
                    return true
                }
                self.continuation = continuation
                return false
            }
            if doneAlready { continuation.resume() }
        }
    }

    /// The call's outcome, once done: the first error, if any.
    @usableFromInline
    func checkOutcome() throws {
        if let firstError { throw firstError }
    }
}

/// 56 bytes of nothing, to keep the fields on either side of it off one cache line: a field at an
/// 8-byte boundary shares its 64-byte line with at most the 56 bytes before it.
struct CacheLinePadding {
    private let words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0)
}

extension ThreadPool {
    /// How many chunks per thread ``concurrentPerform(iterations:chunkSize:_:)`` makes by default.
    static var performChunksPerThread: Int { 16 }

    /// The default chunk size of ``concurrentPerform(iterations:chunkSize:_:)``:
    /// `ceil(iterations / (16 × (threads + 1)))`, the caller counting as a thread.
    func defaultPerformChunkSize(iterations: Int) -> Int {
        let chunks = Self.performChunksPerThread * (threadCount + 1)
        return max(1, PerformJob.chunkCount(iterations: iterations, chunkSize: chunks))
    }

    /// Checks the arguments and the pool; returns the chunk size and count, or nil when there is
    /// nothing to run.
    @usableFromInline
    func performChunks(iterations: Int, chunkSize: Int?) throws(ThreadPoolError) -> (size: Int, count: Int)? {
        if let chunkSize, chunkSize < 1 { throw .invalidChunkSize(chunkSize) }
        guard isRunning else { throw .notRunning } // as map, even with nothing to run
        guard iterations > 0 else { return nil }
        let size = chunkSize ?? defaultPerformChunkSize(iterations: iterations)
        return (size, PerformJob.chunkCount(iterations: iterations, chunkSize: size))
    }

    /// Makes the shared context of a call whose caller takes part, and queues it for the workers:
    /// one entry fewer than there are chunks (the caller takes one), at most one per worker.
    @usableFromInline
    func startPerform(
        iterations: Int, chunks: (size: Int, count: Int),
        body: @escaping @Sendable (Int) throws -> Void
    ) throws(ThreadPoolError) -> PerformJob {
        let entries = min(chunks.count - 1, sharedEntryLimit)
        let job = PerformJob(
            iterations: iterations, chunkSize: chunks.size, runners: entries + 1, entries: entries,
            shared: shared, body: body)
        try submitShared(job, entries: entries)
        return job
    }

    /// Runs `body(0)`, `body(1)`, … `body(iterations - 1)` on the pool's workers and the calling
    /// thread, and returns once every iteration has run: a parallel `for` loop, as Dispatch's
    /// `DispatchQueue.concurrentPerform(iterations:execute:)`, on this pool.
    ///
    /// The iterations are split into chunks of `chunkSize` consecutive indices (nil: the default,
    /// `ceil(iterations / (16 × (threads + 1)))`). The calling thread joins the workers: it claims and
    /// runs chunks too, so a pool of 2 workers runs the loop on 3 threads. Chunks are claimed in
    /// index order from one shared counter, several consecutive ones at a time while they take
    /// under a few microseconds each (so that chunk size 1 costs no atomic operation per iteration);
    /// each chunk runs on one thread, in index order. The call allocates one object, shared by every
    /// thread, however many chunks there are (none when it runs in one chunk, on the calling
    /// thread alone).
    ///
    /// Errors: the first error `body` throws is rethrown once every chunk already started has
    /// finished. The thread that caught it runs no more of its chunk, and chunks not started by then
    /// are skipped (another thread notices between claims: it may start a few microseconds' worth of
    /// short chunks after the error).
    ///
    /// Called from one of the pool's own workers (a nested parallel loop), the calling worker claims
    /// chunks too, and the call waits only for chunks that other threads are running, never for a
    /// worker that is busy or waiting itself: nested calls never deadlock, even when every worker
    /// makes one. While it waits, the calling worker runs the pool's queued tasks.
    ///
    /// `iterations` of 0 or less run nothing and return at once (once the pool is known to be running).
    /// - Parameters:
    ///   - iterations: how many times to call `body`; its argument runs from 0 to `iterations - 1`.
    ///   - chunkSize: how many consecutive iterations one thread runs at a time (at least 1), or nil
    ///     for the default.
    ///   - body: called once for each iteration, concurrently on several threads.
    /// - Throws: the first error `body` threw; ``ThreadPoolError/invalidChunkSize(_:)`` for
    ///   `chunkSize < 1` and ``ThreadPoolError/notRunning`` after ``close()`` or ``terminate()`` (both
    ///   before any iteration runs); ``ThreadPoolError/cancelled`` if ``terminate()`` was called during
    ///   the loop and chunks were left unrun (chunks not started by then are skipped).
    @inlinable // the calling thread's iterations are compiled in the caller, with `body` inlined
    // Disfavoured, not `noasync`: async functions and top-level code pick the async overload, and the
    // compiler asks them for `await`; top-level code inside a loop body still resolves to this one.
    @_disfavoredOverload
    public func concurrentPerform(
        iterations: Int, chunkSize: Int? = nil,
        _ body: @escaping @Sendable (Int) throws -> Void
    ) throws {
        guard let chunks = try performChunks(iterations: iterations, chunkSize: chunkSize) else { return }
        if chunks.count == 1 {
            // One chunk: the caller runs it; there is nothing to share and nothing to queue.
            do {
                for index in 0..<iterations { try body(index) }
            } catch {
                shared.recordFailure()
                throw error
            }
            return
        }
        let job = try startPerform(iterations: iterations, chunks: chunks, body: body)
        job.runChunks { start, end in
            for index in start..<end { try body(index) }
        }
        job.waitBlocking()
        try job.checkOutcome()
    }

    /// ``concurrentPerform(iterations:chunkSize:_:)-1xay`` for async code: suspends, without blocking a
    /// thread, until every iteration has run on the pool's workers.
    ///
    /// The same chunks, default chunk size, errors and nesting as the blocking call, except that the
    /// calling task runs no iteration: it waits (suspended) while the workers run them all.
    /// Cancelling the awaiting task does not stop the loop (terminate the pool for that).
    /// - Parameters:
    ///   - iterations: how many times to call `body`; its argument runs from 0 to `iterations - 1`.
    ///   - chunkSize: how many consecutive iterations one worker runs at a time (at least 1), or nil
    ///     for the default.
    ///   - body: called once for each iteration, concurrently on the pool's workers.
    /// - Throws: the first error `body` threw; ``ThreadPoolError/invalidChunkSize(_:)`` for
    ///   `chunkSize < 1` and ``ThreadPoolError/notRunning`` after ``close()`` or ``terminate()`` (both
    ///   before any iteration runs); ``ThreadPoolError/cancelled`` if ``terminate()`` was called during
    ///   the loop and chunks were left unrun.
    public func concurrentPerform(
        iterations: Int, chunkSize: Int? = nil,
        _ body: @escaping @Sendable (Int) throws -> Void
    ) async throws {
        guard let chunks = try performChunks(iterations: iterations, chunkSize: chunkSize) else { return }
        let entries = min(chunks.count, sharedEntryLimit)
        let job = PerformJob(
            iterations: iterations, chunkSize: chunks.size, runners: entries, entries: entries,
            shared: shared, body: body)
        try await submitSharedSuspending(job, entries: entries)
        await job.completion()
        try job.checkOutcome()
    }
}
