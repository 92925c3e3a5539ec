import Foundation
import Synchronization
import Testing

@testable import ThreadPoolKit

@Suite("apply, applyAsync and AsyncResult")
struct ApplyTests {
    @Test("100,000 tasks through applyAsync each run exactly once")
    func everyTaskOnce() throws {
        let count = 100_000
        let runs = UnsafeMutableBufferPointer<Atomic<UInt8>>.allocate(capacity: count)
        for i in 0..<count { (runs.baseAddress! + i).initialize(to: Atomic(0)) }
        defer { runs.deallocate() }
        nonisolated(unsafe) let slots = runs
        let pool = try ThreadPool(threads: 4)
        var results: [AsyncResult<Int>] = []
        results.reserveCapacity(count)
        for i in 0..<count {
            results.append(
                try pool.applyAsync {
                    slots[i].wrappingAdd(1, ordering: .relaxed)
                    return i
                })
        }
        pool.close()
        try pool.join()
        var ranOnce = 0
        for i in 0..<count where runs[i].load(ordering: .relaxed) == 1 { ranOnce += 1 }
        #expect(ranOnce == count)
        #expect(try results.enumerated().allSatisfy { try $0.element.get() == $0.offset })
        let stats = pool.stats
        #expect(stats.completed == count && stats.failed == 0 && stats.cancelled == 0 && stats.queued == 0)
    }

    @Test("apply returns the value and rethrows the task's error unchanged")
    func apply() throws {
        let pool = try ThreadPool(threads: 2)
        #expect(try pool.apply { 6 * 7 } == 42)
        #expect(throws: TestError(code: 3)) { try pool.apply { () throws -> Int in throw TestError(code: 3) } }
        pool.close()
        try pool.join()
        #expect(pool.stats.failed == 1)
    }

    @Test("a task that throws does not kill its worker")
    func throwingTasks() throws {
        let pool = try ThreadPool(threads: 1)
        let results = try (0..<100).map { i in
            try pool.applyAsync { () throws -> Int in
                if i % 2 == 0 { throw TestError(code: i) }
                return i
            }
        }
        pool.close()
        try pool.join()
        for (i, result) in results.enumerated() {
            if i % 2 == 0 {
                #expect(throws: TestError(code: i)) { try result.get() }
                #expect(try result.successful() == false)
            } else {
                #expect(try result.get() == i)
                #expect(try result.successful() == true)
            }
        }
        #expect(pool.stats.failed == 50 && pool.stats.completed == 100)
    }

    @Test("get(timeout:) throws .timeout and loses nothing; successful() throws .notReady until ready")
    func timeout() throws {
        let pool = try ThreadPool(threads: 1)
        let gate = Gate()
        let result = try pool.applyAsync { () -> String in
            gate.pass()
            return "done"
        }
        expectPoolError({ if case .timeout = $0 { true } else { false } }) {
            _ = try result.get(timeout: .milliseconds(20))
        }
        #expect(result.wait(timeout: .zero) == false)
        #expect(result.isReady == false)
        expectPoolError({ if case .notReady = $0 { true } else { false } }) { _ = try result.successful() }
        gate.open()
        #expect(try result.get() == "done")
        #expect(result.isReady)
        #expect(try result.successful())
        pool.close()
        try pool.join()
    }

    @Test("callback or errorCallback runs exactly once, before the result is ready")
    func callbacks() throws {
        let pool = try ThreadPool(threads: 2)
        let values = Recorder<Int>()
        let errors = Recorder<Int>()
        let results = try (0..<1000).map { i in
            try pool.applyAsync(
                { () throws -> Int in
                    if i % 3 == 0 { throw TestError(code: i) }
                    return i
                }, callback: { values.append($0) }, errorCallback: { errors.append(($0 as! TestError).code) })
        }
        for (i, result) in results.enumerated() {
            _ = result.wait()
            // The callback has returned once the result is ready.
            if i % 3 == 0 { #expect(errors.elements.contains(i)) } else { #expect(values.elements.contains(i)) }
        }
        pool.close()
        try pool.join()
        #expect(values.elements.sorted() == (0..<1000).filter { $0 % 3 != 0 })
        #expect(errors.elements.sorted() == (0..<1000).filter { $0 % 3 == 0 })
    }

    @Test("terminate() drops queued work, resolves it .cancelled, and join() returns promptly")
    func terminateDropsQueued() throws {
        let pool = try ThreadPool(threads: 2)
        let gate = Gate()
        let ran = Counter()
        let cancelledCallbacks = Counter()
        let blockers = try (0..<2).map { _ in
            try pool.applyAsync {
                gate.pass(); ran.increment()
            }
        }
        #expect(eventually { gate.arrived == 2 })
        let queued = try (0..<1000).map { _ in
            try pool.applyAsync(
                { ran.increment() },
                errorCallback: { error in
                    if case ThreadPoolError.cancelled = error { cancelledCallbacks.increment() }
                })
        }
        let withoutCallbacks = try (0..<1000).map { _ in try pool.applyAsync { ran.increment() } }
        pool.terminate()
        // Dropped before terminate() returned; those with an errorCallback are ready once it ran.
        #expect(withoutCallbacks.allSatisfy { $0.isReady })
        for result in queued + withoutCallbacks {
            expectPoolError({ if case .cancelled = $0 { true } else { false } }) { try result.get() }
        }
        #expect(cancelledCallbacks.value == 1000)
        gate.open()
        try pool.join()
        #expect(ran.value == 2)
        for blocker in blockers { try blocker.get() }
        #expect(pool.stats.cancelled == 2000 && pool.stats.completed == 2)
    }

    @Test("cancel() before start: never runs, .cancelled; after start: false")
    func cancel() throws {
        let pool = try ThreadPool(threads: 1)
        let gate = Gate()
        let ran = Counter()
        let running = try pool.applyAsync { gate.pass() }
        #expect(eventually { gate.arrived == 1 })
        let queued = try (0..<100).map { _ in try pool.applyAsync { ran.increment() } }
        #expect(running.cancel() == false)
        #expect(queued.allSatisfy { $0.cancel() })
        #expect(queued.allSatisfy { !$0.cancel() })
        gate.open()
        pool.close()
        try pool.join()
        #expect(ran.value == 0)
        #expect(pool.stats.cancelled == 100 && pool.stats.completed == 1)
    }

    @Test("run {} awaits the value; a cancelled Swift task never starts its queued item")
    func asyncRun() async throws {
        let pool = try ThreadPool(threads: 1)
        #expect(try await pool.run { 21 * 2 } == 42)
        let gate = Gate()
        let ran = Counter()
        let blocker = try pool.applyAsync { gate.pass() }
        let waiter = Task { try await pool.run { ran.increment() } }
        #expect(await eventuallyAsync { pool.stats.queued == 1 })
        waiter.cancel()
        gate.open() // the cancelled task reaches a worker, and throws there without running the body
        await #expect(throws: CancellationError.self) { try await waiter.value }
        try await blocker.value
        pool.close()
        try await pool.join()
        #expect(ran.value == 0)
        await #expect(throws: ThreadPoolError.self) { try await pool.run { 1 } }
    }
}

func eventuallyAsync(within seconds: Double = 10, _ condition: () -> Bool) async -> Bool {
    await waitUntil(polls: Int(seconds * 1_000)) { condition() }
}

@Suite("execute")
struct ExecuteTests {
    @Test("execute runs each closure exactly once; dropped ones never run; after close it throws")
    func execute() throws {
        let pool = try ThreadPool(threads: 3)
        let ran = Counter()
        for _ in 0..<50_000 { try pool.execute { ran.increment() } }
        let gate = Gate()
        for _ in 0..<3 { try pool.execute { gate.pass() } }
        #expect(eventually { gate.arrived == 3 })
        for _ in 0..<100 { try pool.execute { ran.increment() } }
        pool.terminate()
        gate.open()
        try pool.join()
        #expect(ran.value == 50_000)
        #expect(pool.stats.cancelled == 100)
        expectPoolError({ if case .notRunning = $0 { true } else { false } }) { try pool.execute {} }
    }
}

/// Counts its instances' deinitializations.
private final class Tracked: Sendable {
    let deinits: Counter
    init(_ deinits: Counter) { self.deinits = deinits }
    deinit { deinits.increment() }
}

/// An outcome that fits in a result's inline storage.
private struct SmallValue: Sendable {
    let tracked: Tracked
    let number: Int
}

/// An outcome too large for it (40 bytes): kept in a box.
private struct LargeValue: Sendable {
    let tracked: Tracked
    let numbers: (Int, Int, Int, Int)
}

@Suite("AsyncResult's outcome storage")
struct OutcomeStorageTests {
    @Test("the sizes these tests rely on: one outcome inline, one boxed")
    func layouts() {
        #expect(AsyncResult<SmallValue>.outcomeIsInline)
        #expect(AsyncResult<String>.outcomeIsInline)
        #expect(AsyncResult<Void>.outcomeIsInline)
        #expect(!AsyncResult<LargeValue>.outcomeIsInline)
    }

    /// Runs 2,000 tasks making values with `make` (every third throws instead), half of them read and
    /// half dropped (and so reused), and checks every value made was destroyed exactly once.
    private func valuesDestroyedOnce<V: Sendable>(
        _ make: @escaping @Sendable (Tracked, Int) -> V,
        number: @escaping @Sendable (V) -> Int
    ) throws {
        let made = Counter()
        let deinits = Counter()
        do {
            let pool = try ThreadPool(threads: 2)
            var kept: [(Int, AsyncResult<V>)] = []
            for i in 0..<2_000 {
                let result = try pool.applyAsync { () throws -> V in
                    if i % 3 == 0 { throw TestError(code: i) }
                    made.increment()
                    return make(Tracked(deinits), i)
                }
                if i % 2 == 0 { kept.append((i, result)) }
            }
            for (i, result) in kept {
                if i % 3 == 0 {
                    #expect(throws: TestError(code: i)) { try result.get() }
                } else {
                    #expect(try number(result.get()) == i)
                }
            }
            pool.close()
            try pool.join()
        }
        // Dropped results were reset when their worker kept them; the kept ones were freed above.
        #expect(made.value == 2_000 - 667)
        #expect(deinits.value == made.value)
    }

    @Test("an inline outcome is destroyed exactly once, whether the result is read, dropped or reused")
    func inlineOutcome() throws {
        try valuesDestroyedOnce({ SmallValue(tracked: $0, number: $1) }, number: { $0.number })
    }

    @Test("a boxed outcome is destroyed exactly once, whether the result is read, dropped or reused")
    func boxedOutcome() throws {
        try valuesDestroyedOnce(
            { LargeValue(tracked: $0, numbers: ($1, $1, $1, $1)) },
            number: { $0.numbers.0 + $0.numbers.3 - $0.numbers.1 })
    }
}
