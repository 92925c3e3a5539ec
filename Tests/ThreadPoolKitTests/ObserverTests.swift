import Foundation
import Synchronization
import Testing

@testable import ThreadPoolKit

/// Counts every event an observer is told, by kind and outcome.
final class RecordingObserver: ThreadPoolObserver {
    let queued = Atomic<Int>(0)
    let started = Atomic<Int>(0)
    let completed = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    let cancelled = Atomic<Int>(0)
    let workersStarted = Atomic<Int>(0)
    let workersExited = Atomic<Int>(0)
    let workersRetired = Atomic<Int>(0)
    let longestRun = Atomic<Int64>(0)
    let neverStarted = Atomic<Int>(0)
    let longestWait = Atomic<Int64>(0)
    let pools = Recorder<String>()
    let workers = Recorder<WorkerInfo>()
    let failures = Recorder<ThreadPoolFailure>()
    let dropped = Recorder<Int>()

    var finished: Int {
        completed.load(ordering: .relaxed) + failed.load(ordering: .relaxed) + cancelled.load(ordering: .relaxed)
    }

    func taskQueued(pool: String, count: Int) {
        queued.wrappingAdd(count, ordering: .relaxed)
    }

    func taskStarted(pool: String, wait: Duration) {
        started.wrappingAdd(1, ordering: .relaxed)
        longestWait.max(wait.nanoseconds)
    }

    func taskFinished(pool: String, outcome: ThreadPoolTaskOutcome, wait: Duration, run: Duration?) {
        switch outcome {
        case .completed: completed.wrappingAdd(1, ordering: .relaxed)
        case .failed: failed.wrappingAdd(1, ordering: .relaxed)
        case .cancelled: cancelled.wrappingAdd(1, ordering: .relaxed)
        }
        if let run { longestRun.max(run.nanoseconds) } else { neverStarted.wrappingAdd(1, ordering: .relaxed) }
    }

    func workerStarted(pool: String, worker: WorkerInfo) {
        pools.append(pool)
        workers.append(worker)
        workersStarted.wrappingAdd(1, ordering: .relaxed)
    }

    func workerExited(pool: String, worker: WorkerInfo, retired: Bool) {
        workersExited.wrappingAdd(1, ordering: .relaxed)
        if retired { workersRetired.wrappingAdd(1, ordering: .relaxed) }
    }

    func failure(pool: String, _ failure: ThreadPoolFailure) {
        failures.append(failure)
    }

    func poolDropped(pool: String, queuedTasks: Int) {
        dropped.append(queuedTasks)
    }
}

/// Opens a gate when the pool is dropped: the blocked task then lets the queued ones run.
final class DropObserver: ThreadPoolObserver {
    let gate: Gate
    let dropped = Recorder<Int>()
    init(gate: Gate) { self.gate = gate }
    func poolDropped(pool: String, queuedTasks: Int) {
        dropped.append(queuedTasks)
        gate.open()
    }
}

extension Atomic where Value == Int64 {
    func max(_ value: Int64) {
        var seen = load(ordering: .relaxed)
        while value > seen {
            let (exchanged, original) = compareExchange(expected: seen, desired: value, ordering: .relaxed)
            if exchanged { return }
            seen = original
        }
    }
}

extension Duration {
    var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}

private func observedPool(
    _ observer: RecordingObserver, threads: Int = 4, maxThreads: Int? = nil,
    name: String = uniqueName("obs"),
    initializer: (@Sendable () throws -> Void)? = nil
) throws -> ThreadPool {
    var configuration = ThreadPool.Configuration()
    configuration.threads = threads
    configuration.maxThreads = maxThreads
    configuration.keepAlive = .milliseconds(50)
    configuration.name = name
    configuration.observer = observer
    return try ThreadPool(configuration, initializer: initializer)
}

/// Few rounds each (the C tests, test_observer, run the many), and async waits: a test that blocks
/// while it waits holds a thread of the global executor, which async tests running beside it need.
@Suite("Observer")
struct ObserverTests {
    @Test("every task queued, started and finished once, by outcome; workers started and exited as stats count")
    func exactCounts() async throws {
        for _ in 0..<4 {
            let observer = RecordingObserver()
            let name = uniqueName("obs")
            let pool = try observedPool(observer, name: name)
            #expect(observer.workersStarted.load(ordering: .relaxed) == 4) // before init returns
            var results: [AsyncResult<Int>] = []
            for i in 0..<1_000 {
                results.append(
                    try pool.applyAsync { () throws -> Int in
                        if i % 10 == 0 { throw TestError(code: i) }
                        return i
                    })
            }
            let executed = Counter()
            for _ in 0..<500 { try pool.execute { executed.increment() } }
            let mapped = try await pool.map(Array(0..<200), chunkSize: 10) { $0 * 2 }
            #expect(mapped.count == 200)
            for result in results { _ = try? await result.value }
            pool.close()
            try await pool.join()
            let stats = pool.stats
            let tasks = stats.completed + stats.cancelled
            #expect(tasks > 1_000 + 500) // and the map's entries
            #expect(observer.queued.load(ordering: .relaxed) == tasks)
            #expect(observer.started.load(ordering: .relaxed) == tasks)
            #expect(observer.finished == tasks)
            #expect(observer.failed.load(ordering: .relaxed) == 100)
            #expect(stats.failed == 100)
            #expect(observer.cancelled.load(ordering: .relaxed) == 0)
            #expect(observer.workersStarted.load(ordering: .relaxed) == stats.threadsStarted)
            #expect(observer.workersExited.load(ordering: .relaxed) == 4)
            #expect(observer.workersRetired.load(ordering: .relaxed) == stats.threadsRetired)
            #expect(Set(observer.pools.elements) == [name])
            #expect(Set(observer.workers.elements.map(\.name)) == Set((1...4).map { "\(name)-\($0)" }))
            #expect(observer.failures.elements.isEmpty)
        }
    }

    @Test("each job of a task run on the pool (run, the pool as a task executor) is a task")
    func swiftConcurrencyJobs() async throws {
        let observer = RecordingObserver()
        let pool = try observedPool(observer, threads: 2)
        var sum = 0
        for i in 0..<50 { sum += try await pool.run { i } }
        #expect(sum == 1_225)
        pool.close()
        try await pool.join()
        let stats = pool.stats
        #expect(stats.completed >= 50)
        #expect(observer.queued.load(ordering: .relaxed) == stats.completed + stats.cancelled)
        #expect(observer.finished == stats.completed + stats.cancelled)
        #expect(observer.started.load(ordering: .relaxed) == stats.completed)
    }

    @Test("terminate and AsyncResult.cancel report tasks cancelled, never started")
    func cancellations() async throws {
        for _ in 0..<5 {
            let observer = RecordingObserver()
            let pool = try observedPool(observer, threads: 2)
            let gate = Gate()
            for _ in 0..<2 { try pool.execute { gate.pass() } }
            #expect(await eventuallyAsync { gate.arrived == 2 })
            let queued = try (0..<100).map { _ in try pool.applyAsync { 1 } }
            for result in queued.prefix(30) { #expect(result.cancel()) }
            pool.terminate()
            gate.open()
            try await pool.join()
            #expect(observer.queued.load(ordering: .relaxed) == 102)
            #expect(observer.started.load(ordering: .relaxed) == 2)
            #expect(observer.completed.load(ordering: .relaxed) == 2)
            #expect(observer.cancelled.load(ordering: .relaxed) == 100)
            #expect(observer.neverStarted.load(ordering: .relaxed) == 100)
            #expect(pool.stats.cancelled == 100)
        }
    }

    @Test("a task cancelled through its result and then taken by a worker is started and finishes cancelled")
    func cancelledThenTaken() async throws {
        for _ in 0..<5 {
            let observer = RecordingObserver()
            let pool = try observedPool(observer, threads: 1)
            let gate = Gate()
            try pool.execute { gate.pass() }
            #expect(await eventuallyAsync { gate.arrived == 1 })
            let queued = try (0..<50).map { _ in try pool.applyAsync { 1 } }
            for result in queued.prefix(20) { #expect(result.cancel()) }
            gate.open()
            pool.close()
            try await pool.join()
            #expect(observer.queued.load(ordering: .relaxed) == 51)
            #expect(observer.started.load(ordering: .relaxed) == 51)
            #expect(observer.cancelled.load(ordering: .relaxed) == 20)
            #expect(observer.completed.load(ordering: .relaxed) == 31)
            #expect(observer.neverStarted.load(ordering: .relaxed) == 0)
            #expect(pool.stats.cancelled == 20)
        }
    }

    @Test("a task a waiting worker runs itself is reported completed or failed, once")
    func inlineRuns() async throws {
        let observer = RecordingObserver()
        let pool = try observedPool(observer, threads: 1)
        // On the only worker: the subtasks are queued behind the task that waits for them, so the
        // waiter runs each one itself.
        let outer = try pool.applyAsync { () throws -> Int in
            let inner = try (0..<10).map { i in
                try pool.applyAsync { () throws -> Int in
                    if i % 2 == 0 { throw TestError(code: i) }
                    return i
                }
            }
            return inner.reduce(0) { sum, result in sum + ((try? result.get()) ?? 0) }
        }
        #expect(try await outer.value == 1 + 3 + 5 + 7 + 9)
        pool.close()
        try await pool.join()
        #expect(observer.queued.load(ordering: .relaxed) == 11)
        #expect(observer.finished == 11)
        #expect(observer.failed.load(ordering: .relaxed) == 5)
        #expect(observer.completed.load(ordering: .relaxed) == 6)
        #expect(observer.cancelled.load(ordering: .relaxed) == 0)
        #expect(pool.stats.failed == 5)
    }

    @Test("wait and run durations cover the time a task waited and ran")
    func durations() async throws {
        let observer = RecordingObserver()
        let pool = try observedPool(observer, threads: 1)
        let spin: @Sendable () -> Void = {
            let start = ContinuousClock.now
            while ContinuousClock.now - start < .milliseconds(5) {}
        }
        // The first task starts its 5 ms only after the second is queued, so the second waits at
        // least that long (queued while the first already ran, it would wait less).
        let gate = Gate()
        try pool.execute {
            gate.pass()
            spin()
        }
        try pool.execute(spin) // waits behind the first one on the only worker
        gate.open()
        pool.close()
        try await pool.join()
        #expect(observer.longestRun.load(ordering: .relaxed) >= 5_000_000)
        #expect(observer.longestWait.load(ordering: .relaxed) >= 5_000_000)
    }

    @Test("a grown worker's initializer that throws is reported once, with its error")
    func grownInitializerFailure() async throws {
        for _ in 0..<3 {
            let observer = RecordingObserver()
            let calls = Atomic<Int>(0)
            // The pool's 2 workers' initializers succeed; the third call (a grown worker's) throws.
            let pool = try observedPool(
                observer, threads: 2, maxThreads: 6,
                initializer: {
                    if calls.wrappingAdd(1, ordering: .relaxed).newValue == 3 { throw TestError(code: 3) }
                })
            let gate = Gate()
            for _ in 0..<6 { try pool.execute { gate.pass() } }
            #expect(await eventuallyAsync { observer.failures.elements.count == 1 })
            gate.open()
            pool.close()
            try await pool.join()
            let failures = observer.failures.elements
            #expect(failures.count == 1)
            if case .initializerFailed(let worker, let error)? = failures.first {
                #expect(worker >= 2)
                #expect(error as? TestError == TestError(code: 3))
            } else {
                Issue.record("expected initializerFailed, got \(failures)")
            }
            let stats = pool.stats
            #expect(stats.growFailures == 1)
            #expect(observer.workersStarted.load(ordering: .relaxed) == stats.threadsStarted - 1)
            #expect(observer.workersExited.load(ordering: .relaxed) == stats.threadsStarted - 1)
            #expect(observer.workersRetired.load(ordering: .relaxed) == stats.threadsRetired - 1)
            #expect(observer.finished == 6)
        }
    }

    @Test("the error of a task whose result was dropped is reported")
    func unobservedError() async throws {
        let observer = RecordingObserver()
        let pool = try observedPool(observer, threads: 1)
        let gate = Gate()
        try pool.execute { gate.pass() }
        #expect(await eventuallyAsync { gate.arrived == 1 })
        _ = try pool.applyAsync { () throws -> Int in throw TestError(code: 42) } // dropped before it runs
        gate.open()
        pool.close()
        try await pool.join()
        let failures = observer.failures.elements
        #expect(failures.count == 1)
        if case .unobservedTaskError(let error)? = failures.first {
            #expect(error as? TestError == TestError(code: 42))
        } else {
            Issue.record("expected unobservedTaskError, got \(failures)")
        }
        #expect(observer.failed.load(ordering: .relaxed) == 1)
    }

    @Test("a pool dropped with work queued is reported, and its work still runs")
    func droppedWithWorkQueued() async throws {
        let gate = Gate()
        let observer = DropObserver(gate: gate)
        let ran = Counter()
        do {
            var configuration = ThreadPool.Configuration()
            configuration.threads = 1
            configuration.observer = observer
            let pool = try ThreadPool(configuration)
            try pool.execute { gate.pass() }
            #expect(await eventuallyAsync { gate.arrived == 1 })
            for _ in 0..<5 { try pool.execute { ran.increment() } }
            // Dropped here: deinit reports the 5 queued tasks (the observer opens the gate), then
            // waits for them.
        }
        #expect(observer.dropped.elements == [5])
        #expect(ran.value == 5)
    }

    @Test("a bounded pool: async producers waiting for room, each task reported queued, started and finished once")
    func boundedAsyncProducers() async throws {
        for _ in 0..<4 {
            let observer = RecordingObserver()
            var configuration = ThreadPool.Configuration()
            configuration.threads = 2
            configuration.queueCapacity = 2
            configuration.observer = observer
            let pool = try ThreadPool(configuration)
            let ran = Counter()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<100 {
                    group.addTask { try await pool.run { ran.increment() } }
                }
                try await group.waitForAll()
            }
            var mapped: [Int] = []
            for _ in 0..<10 { mapped = try await pool.map(Array(0..<50), chunkSize: 5) { $0 + 1 } }
            #expect(mapped == Array(1...50))
            pool.close()
            try await pool.join()
            #expect(ran.value == 100)
            let stats = pool.stats
            #expect(observer.queued.load(ordering: .relaxed) == stats.completed + stats.failed + stats.cancelled)
            #expect(observer.started.load(ordering: .relaxed) == observer.queued.load(ordering: .relaxed))
            #expect(observer.finished == observer.queued.load(ordering: .relaxed))
            #expect(observer.completed.load(ordering: .relaxed) == stats.completed)
        }
    }

    @Test("a pool without an observer reports nothing and keeps its counts")
    func noObserver() async throws {
        var configuration = ThreadPool.Configuration()
        configuration.threads = 2
        #expect(configuration.observer == nil)
        let pool = try ThreadPool(configuration)
        let results = try (0..<100).map { i in try pool.applyAsync { i } }
        var sum = 0
        for result in results { sum += try await result.value }
        #expect(sum == 4_950)
        pool.close()
        try await pool.join()
        #expect(pool.stats.completed == 100)
    }
}
