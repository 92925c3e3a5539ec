import Foundation
import Synchronization
import Testing

@testable import ThreadPoolKit

@Suite("Callbacks, references and stats")
struct CallbackTests {
    @Test("callbacks run one at a time, on the pool's callback thread, exactly once each")
    func serialized() throws {
        let pool = try ThreadPool(threads: 4, name: "cbs")
        let inside = Atomic<Int>(0)
        let overlaps = Counter()
        let threadNames = Recorder<String>()
        let calls = Counter()
        let results = try (0..<2000).map { i in
            try pool.applyAsync(
                { () throws -> Int in
                    if i % 5 == 0 { throw TestError(code: i) }
                    return i
                },
                callback: { _ in
                    if inside.wrappingAdd(1, ordering: .relaxed).newValue > 1 { overlaps.increment() }
                    calls.increment()
                    if calls.value % 100 == 0 { threadNames.append(ThreadPool.currentWorker?.name ?? "?") }
                    inside.wrappingSubtract(1, ordering: .relaxed)
                },
                errorCallback: { _ in
                    if inside.wrappingAdd(1, ordering: .relaxed).newValue > 1 { overlaps.increment() }
                    calls.increment()
                    inside.wrappingSubtract(1, ordering: .relaxed)
                })
        }
        for result in results { _ = result.wait() }
        #expect(calls.value == 2000) // every callback ran before its result became ready
        #expect(overlaps.value == 0)
        #expect(Set(threadNames.elements) == ["cbs-callbacks-1"])
        let name = "cbs-callbacks"
        pool.close()
        try pool.join()
        #expect(eventually { threadsNamed(name) == 0 }) // the callback thread is joined too
    }

    @Test("a callback that blocks stalls neither the tasks nor results without callbacks")
    func blockingCallback() throws {
        let pool = try ThreadPool(threads: 1)
        let gate = Gate()
        let slow = try pool.applyAsync({ 1 }, callback: { _ in gate.pass() })
        #expect(eventually { gate.arrived == 1 })
        // The only worker keeps running tasks while the callback thread is blocked.
        let others = try (0..<1000).map { i in try pool.applyAsync { i } }
        #expect(try others.enumerated().allSatisfy { try $0.element.get(timeout: .seconds(10)) == $0.offset })
        #expect(slow.isReady == false)
        gate.open()
        #expect(try slow.get() == 1)
        pool.close()
        try pool.join()
    }

    @Test("cancel() and terminate() call errorCallback exactly once, never callback")
    func cancelCallbacks() throws {
        let pool = try ThreadPool(threads: 1)
        let gate = Gate()
        let successes = Counter()
        let failures = Counter()
        _ = try pool.applyAsync { gate.pass() }
        #expect(eventually { gate.arrived == 1 })
        let results = try (0..<100).map { _ in
            try pool.applyAsync(
                { 0 }, callback: { _ in successes.increment() },
                errorCallback: { _ in failures.increment() })
        }
        for result in results[..<50] { result.cancel() }
        pool.terminate()
        gate.open()
        try pool.join()
        #expect(successes.value == 0 && failures.value == 100)
        #expect(results.allSatisfy { $0.isReady })
    }

    final class Payload: Sendable {
        static let alive = Atomic<Int>(0)
        init() { Payload.alive.wrappingAdd(1, ordering: .relaxed) }
        deinit { Payload.alive.wrappingSubtract(1, ordering: .relaxed) }
    }

    @Test("the pool keeps no references: a done task's closure, captures and value are freed with its result")
    func noRetainedReferences() throws {
        let pool = try ThreadPool(threads: 2)
        weak var weakCapture: Payload?
        weak var weakValue: Payload?
        do {
            let capture = Payload()
            weakCapture = capture
            let result = try pool.applyAsync(
                { () -> Payload in
                    _ = capture
                    return Payload()
                }, callback: { _ in })
            weakValue = try result.get()
        }
        #expect(eventually { weakCapture == nil && weakValue == nil })
        let results = try (0..<1000).map { _ in try pool.applyAsync { Payload() } }
        for result in results { _ = try result.get() }
        _ = try pool.map(0..<1000) { _ in Payload() }
        _ = try pool.imap(0..<1000) { _ in Payload() }.collect()
        _ = consume results
        #expect(eventually { Payload.alive.load(ordering: .relaxed) == 0 })
        pool.close()
        try pool.join()
    }

    @Test("stats: running == threads while every worker is busy; queued, completed, failed, cancelled exact")
    func stats() throws {
        let pool = try ThreadPool(threads: 3)
        let gate = Gate()
        let blockers = try (0..<3).map { _ in try pool.applyAsync { gate.pass() } }
        #expect(eventually { gate.arrived == 3 })
        let queued = try (0..<10).map { i in
            try pool.applyAsync { () throws -> Int in
                if i < 4 { throw TestError(code: i) }
                return i
            }
        }
        var stats = pool.stats
        #expect(stats.threads == 3 && stats.running == 3 && stats.idle == 0 && stats.queued == 10)
        queued[9].cancel()
        queued[8].cancel()
        stats = pool.stats
        #expect(stats.queued == 8 && stats.cancelled == 2)
        gate.open()
        for result in blockers { try result.get() }
        for result in queued { _ = result.wait() }
        pool.close()
        try pool.join()
        stats = pool.stats
        #expect(stats.completed == 3 + 8 && stats.failed == 4 && stats.cancelled == 2 && stats.queued == 0)
        #expect(stats.running == 0)
    }
}
