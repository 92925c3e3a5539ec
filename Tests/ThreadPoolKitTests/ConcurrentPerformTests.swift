import Foundation
import Synchronization
import Testing

@testable import ThreadPoolKit

/// One atomic count per index, for checking that every iteration ran exactly once.
private final class IndexCounts: @unchecked Sendable {
    private let counts: UnsafeMutablePointer<Atomic<Int>>
    let count: Int

    init(_ count: Int) {
        self.count = count
        counts = .allocate(capacity: max(count, 1))
        for i in 0..<count { (counts + i).initialize(to: Atomic(0)) }
    }

    deinit {
        counts.deinitialize(count: count)
        counts.deallocate()
    }

    func hit(_ index: Int) {
        counts[index].wrappingAdd(1, ordering: .relaxed)
    }

    /// Whether every index was hit exactly once.
    var eachOnce: Bool {
        (0..<count).allSatisfy { counts[$0].load(ordering: .relaxed) == 1 }
    }

    var total: Int {
        (0..<count).reduce(0) { $0 + counts[$1].load(ordering: .relaxed) }
    }
}

/// The calling thread, as a number.
private func currentThreadID() -> UInt {
    UInt(pthread_self())
}

/// Waits, bounded, until `condition` holds, polling without sleeping long (the threads involved are
/// inside a parallel loop, a few microseconds apart).
private func spinUntil(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while !condition() {
        if Date() >= deadline { return false }
        usleep(50)
    }
    return true
}

@Suite("concurrentPerform")
struct ConcurrentPerformTests {
    @Test("every index runs exactly once", arguments: [0, 1, 7, 1000, 100_000], [nil, 1, 3, 1000] as [Int?])
    func exactlyOnce(iterations: Int, chunkSize: Int?) throws {
        let pool = try ThreadPool(threads: 2)
        let counts = IndexCounts(iterations)
        try pool.concurrentPerform(iterations: iterations, chunkSize: chunkSize) { counts.hit($0) }
        #expect(counts.eachOnce)
        #expect(counts.total == iterations)
        pool.close()
        try pool.join()
    }

    @Test(
        "the async overload runs every index exactly once", arguments: [0, 1, 7, 1000, 100_000],
        [nil, 1, 3, 1000] as [Int?])
    func exactlyOnceAsync(iterations: Int, chunkSize: Int?) async throws {
        let pool = try ThreadPool(threads: 2)
        let counts = IndexCounts(iterations)
        try await pool.concurrentPerform(iterations: iterations, chunkSize: chunkSize) { counts.hit($0) }
        #expect(counts.eachOnce)
        #expect(counts.total == iterations)
        pool.close()
        try await pool.join()
    }

    @Test("many calls of varied sizes on one pool: each index once every time")
    func manyCalls() throws {
        let pool = try ThreadPool(threads: 3)
        for run in 0..<300 {
            let iterations = 1 + (run * 7919) % 3000
            let counts = IndexCounts(iterations)
            try pool.concurrentPerform(iterations: iterations, chunkSize: run % 4 == 0 ? nil : run % 4) {
                counts.hit($0)
            }
            #expect(counts.eachOnce)
        }
        pool.close()
        try pool.join()
    }

    @Test("the default chunk size is ceil(iterations / (16 × (threads + 1)))")
    func defaultChunkSize() throws {
        let pool = try ThreadPool(threads: 2)
        #expect(pool.defaultPerformChunkSize(iterations: 1) == 1)
        #expect(pool.defaultPerformChunkSize(iterations: 48) == 1)
        #expect(pool.defaultPerformChunkSize(iterations: 49) == 2)
        #expect(pool.defaultPerformChunkSize(iterations: 10_000_000) == 208_334)
        #expect(pool.defaultPerformChunkSize(iterations: .max) == Int.max / 48 + 1)
        pool.close()
        try pool.join()
    }

    @Test("the calling thread runs iterations too, beside the worker of a 1-worker pool")
    func callerParticipates() throws {
        let pool = try ThreadPool(threads: 1)
        let caller = currentThreadID()
        let threads = Recorder<UInt>()
        let callerStarted = Counter()
        let workerStarted = Counter()
        // Each side waits (bounded) until the other side has started an iteration: the loop only
        // finishes quickly if the caller and the worker both run iterations at the same time.
        try pool.concurrentPerform(iterations: 1000, chunkSize: 1) { _ in
            let onCaller = currentThreadID() == caller
            threads.append(currentThreadID())
            (onCaller ? callerStarted : workerStarted).increment()
            _ = spinUntil { (onCaller ? workerStarted : callerStarted).value > 0 }
            usleep(10)
        }
        #expect(callerStarted.value > 0)
        #expect(workerStarted.value > 0)
        #expect(Set(threads.elements).contains(caller))
        #expect(Set(threads.elements).count == 2)
        pool.close()
        try pool.join()
    }

    @Test("with 2 workers, 3 threads run iterations at once: the workers and the caller")
    func threeThreadsOnTwoWorkers() throws {
        let pool = try ThreadPool(threads: 2)
        let caller = currentThreadID()
        let arrived = Recorder<UInt>()
        let arrivals = Counter()
        // Each of the 3 chunks waits (bounded) until 3 threads have arrived: only 3 threads at once finish.
        try pool.concurrentPerform(iterations: 3, chunkSize: 1) { _ in
            arrived.append(currentThreadID())
            arrivals.increment()
            _ = spinUntil { arrivals.value >= 3 }
        }
        let threads = Set(arrived.elements)
        #expect(threads.count == 3)
        #expect(threads.contains(caller))
        pool.close()
        try pool.join()
    }

    @Test("the first error is rethrown after every started chunk finished; chunks not started are skipped")
    func firstError() throws {
        let pool = try ThreadPool(threads: 2)
        let started = Counter()
        let finished = Counter()
        #expect(throws: TestError(code: 0)) {
            try pool.concurrentPerform(iterations: 1000, chunkSize: 1) { index in
                if index == 0 {
                    // Fail while another chunk is running.
                    _ = spinUntil { started.value >= 1 }
                    throw TestError(code: 0)
                }
                started.increment()
                usleep(20_000)
                if index == 1 { usleep(30_000) }
                finished.increment()
            }
        }
        #expect(started.value >= 1)
        #expect(started.value == finished.value) // nothing still running when the error came out
        #expect(started.value < 20) // at most a chunk or two per thread after the error
        // Counted as a failure in the pool's stats, like a map chunk that threw.
        #expect(pool.stats.failed == 1)
        pool.close()
        try pool.join()
    }

    @Test("a chunk stops at its first error, and only the first error is rethrown")
    func errorInChunk() throws {
        let pool = try ThreadPool(threads: 2)
        let ran = Recorder<Int>()
        // One chunk (run inline by the caller) and many chunks.
        for chunkSize in [100, 10] {
            #expect(throws: TestError(code: 5)) {
                try pool.concurrentPerform(iterations: 100, chunkSize: chunkSize) { index in
                    if index == 5 { throw TestError(code: 5) }
                    if index > 5 && index < 10 { ran.append(index) }
                }
            }
        }
        #expect(ran.elements.isEmpty) // 6..<10 are in 5's chunk both times
        pool.close()
        try pool.join()
    }

    @Test(
        "nested in its own iterations on 1 and 2 workers, including from every worker at once",
        arguments: [1, 2])
    func nested(threads: Int) throws {
        let pool = try ThreadPool(threads: threads)
        let counts = IndexCounts(8 * 500)
        try pool.concurrentPerform(iterations: 8, chunkSize: 1) { outer in
            try pool.concurrentPerform(iterations: 500, chunkSize: outer % 2 == 0 ? 1 : nil) { inner in
                counts.hit(outer * 500 + inner)
            }
        }
        #expect(counts.eachOnce)

        // From a task on the workers only: every worker runs a call of its own at the same time.
        let fromWorkers = IndexCounts(threads * 10_000)
        _ = try pool.broadcast { worker in
            try pool.concurrentPerform(iterations: 10_000, chunkSize: 1) { fromWorkers.hit(worker.index * 10_000 + $0) }
        }
        #expect(fromWorkers.eachOnce)

        // Three levels deep, from a task.
        let deep = IndexCounts(4 * 4 * 4)
        try pool.apply {
            try pool.concurrentPerform(iterations: 4) { a in
                try pool.concurrentPerform(iterations: 4, chunkSize: 1) { b in
                    try pool.concurrentPerform(iterations: 4, chunkSize: 1) { c in deep.hit(a * 16 + b * 4 + c) }
                }
            }
        }
        #expect(deep.eachOnce)
        pool.close()
        try pool.join()
    }

    @Test("the caller does not wait for busy workers: it runs every chunk itself and returns")
    func busyWorkers() throws {
        let pool = try ThreadPool(threads: 2)
        let gate = Gate()
        let blockers = try (0..<2).map { _ in try pool.applyAsync { gate.pass() } }
        #expect(eventually { gate.arrived == 2 })
        let caller = currentThreadID()
        let onOtherThreads = Counter()
        let counts = IndexCounts(1000)
        try pool.concurrentPerform(iterations: 1000, chunkSize: 1) { index in
            if currentThreadID() != caller { onOtherThreads.increment() }
            counts.hit(index)
        }
        #expect(counts.eachOnce)
        #expect(onOtherThreads.value == 0)
        gate.open()
        for blocker in blockers { try blocker.get() }
        pool.close()
        try pool.join()
    }

    @Test("after close() or terminate(), it throws notRunning without running anything")
    func notRunning() async throws {
        for terminate in [false, true] {
            let pool = try ThreadPool(threads: 2)
            if terminate { pool.terminate() } else { pool.close() }
            let calls = Counter()
            for iterations in [0, 1, 10, -1] {
                expectPoolError({ if case .notRunning = $0 { true } else { false } }) {
                    try pool.concurrentPerform(iterations: iterations) { _ in calls.increment() }
                }
                do {
                    try await pool.concurrentPerform(iterations: iterations) { _ in calls.increment() }
                    Issue.record("the async overload did not throw")
                } catch let error as ThreadPoolError {
                    guard case .notRunning = error else { Issue.record("unexpected \(error)"); continue }
                }
            }
            #expect(calls.value == 0)
            try await pool.join()
        }
    }

    @Test("chunkSize < 1 throws invalidChunkSize; iterations <= 0 run nothing")
    func invalidArguments() async throws {
        let pool = try ThreadPool(threads: 2)
        let calls = Counter()
        for bad in [0, -3] {
            expectPoolError({ if case .invalidChunkSize(bad) = $0 { true } else { false } }) {
                try pool.concurrentPerform(iterations: 10, chunkSize: bad) { _ in calls.increment() }
            }
            do {
                try await pool.concurrentPerform(iterations: 10, chunkSize: bad) { _ in calls.increment() }
                Issue.record("the async overload did not throw")
            } catch let error as ThreadPoolError {
                guard case .invalidChunkSize(bad) = error else { Issue.record("unexpected \(error)"); continue }
            }
        }
        /// The blocking overload (async code picks the async one).
        func blocking(_ iterations: Int) throws {
            try pool.concurrentPerform(iterations: iterations) { _ in calls.increment() }
        }
        for iterations in [0, -1, Int.min] {
            try blocking(iterations)
            try await pool.concurrentPerform(iterations: iterations, chunkSize: 1) { _ in calls.increment() }
        }
        #expect(calls.value == 0)
        pool.close()
        try await pool.join()
    }

    @Test("terminate() during the loop: chunks not started are skipped and it throws cancelled")
    func terminatedDuringLoop() throws {
        let pool = try ThreadPool(threads: 2)
        let calls = Counter()
        expectPoolError({ if case .cancelled = $0 { true } else { false } }) {
            try pool.concurrentPerform(iterations: 1000, chunkSize: 1) { index in
                calls.increment()
                if index == 10 { pool.terminate() } else { usleep(200) }
            }
        }
        #expect(calls.value > 10 && calls.value < 1000)
        try pool.join()
    }

    @Test("terminate() before any worker started the async loop: nothing runs, it throws cancelled")
    func terminatedWhileQueued() async throws {
        let pool = try ThreadPool(threads: 1)
        let gate = Gate()
        let blocker = try pool.applyAsync { gate.pass() }
        defer { gate.open() } // whatever happens, let the worker go, or the pool's deinit waits forever
        #expect(await eventuallyAsync { gate.arrived == 1 })
        let calls = Counter()
        async let loop: Void = pool.concurrentPerform(iterations: 100, chunkSize: 1) { _ in calls.increment() }
        #expect(await eventuallyAsync { pool.stats.queued == 1 })
        pool.terminate()
        do {
            try await loop
            Issue.record("the loop did not throw")
        } catch let error as ThreadPoolError {
            guard case .cancelled = error else { Issue.record("unexpected \(error)"); return }
        }
        #expect(calls.value == 0)
        gate.open()
        try await blocker.value
        try await pool.join()
    }

    @Test("terminate() after every chunk was claimed: the loop succeeds")
    func terminatedAfterLastClaim() async throws {
        let pool = try ThreadPool(threads: 2)
        let blocker = Gate()
        let lastIteration = Gate()
        _ = try pool.applyAsync { blocker.pass() }
        defer { blocker.open(); lastIteration.open() }
        #expect(await eventuallyAsync { blocker.arrived == 1 })
        let counts = IndexCounts(100)
        async let loop: Void = pool.concurrentPerform(iterations: 100, chunkSize: 1) { index in
            counts.hit(index)
            if index == 99 { lastIteration.pass() }
        }
        // Every chunk is claimed; the second entry is queued.
        #expect(await eventuallyAsync { lastIteration.arrived == 1 })
        pool.terminate()
        lastIteration.open()
        blocker.open()
        try await loop
        #expect(counts.eachOnce)
        try await pool.join()
    }

    @Test("the async overload from 50 concurrent tasks")
    func fiftyTasks() async throws {
        let pool = try ThreadPool(threads: 2)
        let counts = IndexCounts(50 * 2_000)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<50 {
                group.addTask {
                    try await pool.concurrentPerform(iterations: 2_000, chunkSize: [nil, 1, 3, 1000][task % 4]) {
                        index in
                        counts.hit(task * 2_000 + index)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(counts.eachOnce)
        pool.close()
        try await pool.join()
    }

    @Test("the blocking overload from 8 threads at once on one pool")
    func concurrentCallers() throws {
        let pool = try ThreadPool(threads: 2)
        let counts = IndexCounts(8 * 20_000)
        let failures = Counter()
        let threads = (0..<8).map { caller in
            Thread {
                do {
                    try pool.concurrentPerform(iterations: 20_000, chunkSize: caller % 2 == 0 ? 1 : nil) { index in
                        counts.hit(caller * 20_000 + index)
                    }
                } catch {
                    failures.increment()
                }
            }
        }
        for thread in threads { thread.start() }
        #expect(eventually(within: 60) { counts.total == 8 * 20_000 })
        #expect(failures.value == 0)
        #expect(counts.eachOnce)
        pool.close()
        try pool.join()
    }
}
