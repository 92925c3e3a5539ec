import Foundation
import Synchronization
import Testing

@testable import ThreadPoolKit

@Suite("map, mapAsync and broadcast")
struct MapTests {
    @Test(
        "map returns results in input order, each item transformed exactly once",
        arguments: [nil, 1, 7, 1000, 100_000] as [Int?])
    func mapOrder(chunkSize: Int?) throws {
        let count = 20_000
        let calls = Counter()
        let pool = try ThreadPool(threads: 3)
        let results = try pool.map(0..<count, chunkSize: chunkSize) { (x: Int) -> Int in
            calls.increment()
            return x * x + 1
        }
        #expect(results == (0..<count).map { $0 * $0 + 1 })
        #expect(calls.value == count)
        pool.close()
        try pool.join()
    }

    @Test("the default chunk size is Python's ceil(count / (4 × threads)), and a chunk runs on one worker in order")
    func chunking() throws {
        let pool = try ThreadPool(threads: 2)
        #expect(pool.defaultChunkSize(for: 100) == 13)
        #expect(pool.defaultChunkSize(for: 8) == 1)
        #expect(pool.defaultChunkSize(for: 9) == 2)
        let seen = Recorder<(Int, Int)>()
        _ = try pool.map(0..<100, chunkSize: 10) { (x: Int) -> Int in
            seen.append((x, ThreadPool.currentWorker!.index))
            return x
        }
        let byChunk = Dictionary(grouping: seen.elements, by: { $0.0 / 10 })
        for (_, members) in byChunk {
            #expect(Set(members.map(\.1)).count == 1) // one worker per chunk
        }
        pool.close()
        try pool.join()
    }

    @Test("empty input returns [] at once; chunkSize < 1 throws before any work is queued")
    func edgeCases() throws {
        let pool = try ThreadPool(threads: 2)
        #expect(try pool.map([Int](), { $0 }) == [])
        #expect(try pool.mapAsync([Int](), { $0 }).get(timeout: .zero) == [])
        for bad in [0, -3] {
            let calls = Counter()
            expectPoolError({ if case .invalidChunkSize(bad) = $0 { true } else { false } }) {
                _ = try pool.map(0..<10, chunkSize: bad) {
                    calls.increment(); return $0
                }
            }
            expectPoolError({ if case .invalidChunkSize(bad) = $0 { true } else { false } }) {
                _ = try pool.mapAsync(0..<10, chunkSize: bad) {
                    calls.increment(); return $0
                }
            }
            #expect(calls.value == 0)
        }
        pool.close()
        try pool.join()
    }

    final class Tracked: Sendable {
        static let alive = Counter()
        static let made = Counter()
        let value: Int
        init(_ value: Int) { self.value = value; Tracked.made.increment() }
        deinit { Tracked.alive.increment() } // counts deaths
    }

    @Test("a failing map: the first error is reported once, after every chunk finished; nothing leaks")
    func failingMap() throws {
        let pool = try ThreadPool(threads: 2)
        let errors = Counter()
        let successes = Counter()
        let result = try pool.mapAsync(
            0..<1000, chunkSize: 10, callback: { _ in successes.increment() },
            errorCallback: { _ in errors.increment() }
        ) { (x: Int) throws -> Tracked in
            if x == 555 { throw TestError(code: x) }
            return Tracked(x)
        }
        #expect(throws: TestError(code: 555)) { try result.get() }
        #expect(errors.value == 1 && successes.value == 0)
        #expect(throws: TestError(code: 5)) {
            _ = try pool.map(0..<100, chunkSize: 3) { (x: Int) throws -> Tracked in
                if x == 5 { throw TestError(code: 5) }
                return Tracked(x)
            }
        }
        pool.close()
        try pool.join()
        #expect(Tracked.made.value == Tracked.alive.value) // every value made was freed
    }

    @Test("mapAsync resolves with the values in order, callback first")
    func mapAsync() throws {
        let pool = try ThreadPool(threads: 2)
        let called = Recorder<Int>()
        let result = try pool.mapAsync(0..<10_000, callback: { called.append($0.count) }) { $0 * 2 }
        #expect(try result.get() == (0..<10_000).map { $0 * 2 })
        #expect(called.elements == [10_000])
        pool.close()
        try pool.join()
    }

    @Test("starmap is a map over tuples")
    func starmap() throws {
        let pool = try ThreadPool(threads: 2)
        let pairs = [(1, 2), (3, 4), (5, 6)]
        #expect(try pool.map(pairs) { (a, b) in a * b } == [2, 12, 30])
        pool.close()
        try pool.join()
    }

    @Test("terminate() cuts a mapAsync short: it resolves .cancelled")
    func mapTerminated() throws {
        let pool = try ThreadPool(threads: 1)
        let gate = Gate()
        let blocker = try pool.applyAsync { gate.pass() }
        #expect(eventually { gate.arrived == 1 })
        let result = try pool.mapAsync(0..<100, chunkSize: 1) { $0 }
        pool.terminate()
        expectPoolError({ if case .cancelled = $0 { true } else { false } }) { _ = try result.get() }
        gate.open()
        try pool.join()
        try blocker.get()
    }

    @Test("map with chunk size 1 over many runs: every item transformed exactly once, results in order")
    func mapManyRuns() throws {
        let pool = try ThreadPool(threads: 3)
        for run in 0..<300 {
            let count = 1 + (run * 7919) % 3000
            let calls = UnsafeMutableBufferPointer<Atomic<Int>>.allocate(capacity: count)
            for i in 0..<count { (calls.baseAddress! + i).initialize(to: Atomic(0)) }
            let counts = SendableCounts(calls)
            let results = try pool.map(0..<count, chunkSize: 1 + run % 3) { (x: Int) -> Int in
                counts.hit(x)
                return x &* 3
            }
            #expect(results == (0..<count).map { $0 &* 3 })
            #expect((0..<count).allSatisfy { calls[$0].load(ordering: .relaxed) == 1 })
            calls.deallocate()
        }
        pool.close()
        try pool.join()
    }

    @Test("terminate() during a map: chunks not yet claimed never run, the result is .cancelled")
    func mapTerminatedWhileRunning() throws {
        let pool = try ThreadPool(threads: 2)
        let blocker = Gate()
        let inMap = Gate()
        _ = try pool.applyAsync { blocker.pass() } // holds one worker: the map's second entry stays queued
        #expect(eventually { blocker.arrived == 1 })
        let calls = Counter()
        let result = try pool.mapAsync(0..<1000, chunkSize: 1) { (x: Int) -> Int in
            calls.increment()
            if x == 10 { inMap.pass() }
            return x
        }
        #expect(eventually { inMap.arrived == 1 })
        pool.terminate()
        inMap.open()
        blocker.open()
        expectPoolError({ if case .cancelled = $0 { true } else { false } }) { _ = try result.get() }
        try pool.join()
        #expect(calls.value > 10 && calls.value < 1000)
    }

    @Test("terminate() after every chunk was claimed drops only idle entries: the map succeeds")
    func mapTerminatedAfterLastClaim() throws {
        let pool = try ThreadPool(threads: 2)
        let blocker = Gate()
        let lastItem = Gate()
        _ = try pool.applyAsync { blocker.pass() }
        #expect(eventually { blocker.arrived == 1 })
        let result = try pool.mapAsync(0..<100, chunkSize: 1) { (x: Int) -> Int in
            if x == 99 { lastItem.pass() }
            return x + 1
        }
        #expect(eventually { lastItem.arrived == 1 }) // every chunk is claimed; the second entry is queued
        pool.terminate()
        lastItem.open()
        blocker.open()
        #expect(try result.get(timeout: .seconds(20)) == Array(1...100))
        try pool.join()
    }

    @Test("broadcast runs once on every worker, results by index, even while other work is queued")
    func broadcast() throws {
        let pool = try ThreadPool(threads: 4, name: "bc")
        let gate = Gate()
        let queued = try (0..<100).map { _ in try pool.applyAsync { gate.pass() } }
        // Every worker is blocked in a task and 96 more are queued: the broadcast still reaches them
        // all as soon as they finish their current task, ahead of the queue.
        #expect(eventually { gate.arrived == 4 })
        let names = try pool.mapAsync([0], chunkSize: 1) { _ in 0 } // queued behind the gate too
        let broadcastResult = Recorder<[String]>()
        let thread = Thread {
            broadcastResult.append((try? pool.broadcast { worker in worker.name }) ?? [])
        }
        thread.start()
        gate.open()
        #expect(eventually { broadcastResult.elements.count == 1 })
        #expect(broadcastResult.elements.first == ["bc-1", "bc-2", "bc-3", "bc-4"])
        for result in queued { try result.get() }
        _ = try names.get()
        pool.close()
        try pool.join()
    }

    @Test("broadcast reports the first error after every worker ran it")
    func broadcastError() throws {
        let pool = try ThreadPool(threads: 3)
        let ran = Counter()
        #expect(throws: TestError(code: 1)) {
            _ = try pool.broadcast { worker -> Int in
                ran.increment()
                if worker.index == 1 { throw TestError(code: 1) }
                return worker.index
            }
        }
        #expect(ran.value == 3)
        pool.close()
        try pool.join()
    }
}

@Suite("Waiting from inside the pool")
struct HelpingTests {
    @Test("a 1-worker pool whose task calls pool.apply { 42 } gets 42")
    func nestedApply() throws {
        let pool = try ThreadPool(threads: 1)
        #expect(try pool.apply { try pool.apply { 42 } } == 42)
        #expect(try pool.apply { try pool.map(0..<100) { $0 + 1 } } == Array(1...100))
        #expect(try pool.apply { try pool.broadcast { $0.index } } == [0])
        pool.close()
        try pool.join()
    }

    static func fanOut(_ pool: ThreadPool, depth: Int, leaves: Counter) throws -> Int {
        if depth == 0 {
            leaves.increment()
            return 1
        }
        let children = try (0..<2).map { _ in
            try pool.applyAsync { try fanOut(pool, depth: depth - 1, leaves: leaves) }
        }
        return try children.reduce(0) { try $0 + $1.get() }
    }

    @Test("recursive fan-out of depth 10 on 2 workers completes")
    func recursiveFanOut() throws {
        let pool = try ThreadPool(threads: 2)
        let leaves = Counter()
        #expect(try pool.apply { try Self.fanOut(pool, depth: 10, leaves: leaves) } == 1024)
        #expect(leaves.value == 1024)
        pool.close()
        try pool.join()
    }
}

@Suite("Batches and shutdown edges")
struct BatchTests {
    @Test("a task waiting on the task queued right after it never deadlocks, though workers take batches")
    func dependentTasks() throws {
        let pool = try ThreadPool(threads: 2)
        _ = try pool.map(0..<20_000, chunkSize: 1) { $0 } // tiny tasks: the workers learn to take batches
        for _ in 0..<100 {
            // Both workers busy, then [first, second, 100 tiny tasks] queued: a worker that takes
            // first and second in one batch blocks in first; the other must take second from it.
            let gate = Gate()
            let blockers = try (0..<2).map { _ in try pool.applyAsync { gate.pass() } }
            #expect(eventually { gate.arrived == 2 })
            let second = Gate()
            let first = try pool.applyAsync { () -> Bool in
                let deadline = Date().addingTimeInterval(10)
                while second.arrived == 0 && Date() < deadline { sched_yield() } // not a pool wait
                return second.arrived == 1
            }
            _ = try pool.applyAsync { second.pass() }
            second.open()
            let tiny = try (0..<100).map { i in try pool.applyAsync { i } }
            gate.open()
            #expect(try first.get(timeout: .seconds(20)) == true)
            for blocker in blockers { try blocker.get() }
            for result in tiny { _ = try result.get() }
        }
        pool.close()
        try pool.join()
    }

    @Test("map of no items after close throws .notRunning, as Python")
    func emptyAfterClose() throws {
        let pool = try ThreadPool(threads: 1)
        pool.close()
        expectPoolError({ if case .notRunning = $0 { true } else { false } }) { _ = try pool.map([Int]()) { $0 } }
        expectPoolError({ if case .notRunning = $0 { true } else { false } }) { _ = try pool.mapAsync([Int]()) { $0 } }
        try pool.join()
    }

    @Test("two threads joining at once both return after every callback has run")
    func concurrentJoins() throws {
        for _ in 0..<20 {
            let pool = try ThreadPool(threads: 2)
            let callbacks = Counter()
            for i in 0..<200 { _ = try pool.applyAsync({ i }, callback: { _ in callbacks.increment() }) }
            pool.close()
            let seenByJoiners = Recorder<Int>()
            let threads = (0..<2).map { _ in
                Thread {
                    try? pool.join()
                    seenByJoiners.append(callbacks.value)
                }
            }
            for thread in threads { thread.start() }
            try pool.join()
            #expect(callbacks.value == 200)
            #expect(eventually { seenByJoiners.elements.count == 2 })
            #expect(seenByJoiners.elements == [200, 200])
        }
    }
}

/// Per-item call counts shared with a map's transform.
private struct SendableCounts: @unchecked Sendable {
    let counts: UnsafeMutableBufferPointer<Atomic<Int>>
    init(_ counts: UnsafeMutableBufferPointer<Atomic<Int>>) { self.counts = counts }
    func hit(_ index: Int) { counts[index].wrappingAdd(1, ordering: .relaxed) }
}
