import Foundation
import Synchronization
import Testing

@testable import ThreadPoolKit

/// A bounded queue's backpressure for async callers: `run`, async `map` and `concurrentPerform`
/// suspend (never block a thread) while the queue is full, and a cancelled or closed wait ends once.
@Suite("Async backpressure")
struct BackpressureTests {
    /// A pool of `threads` workers with a queue of `capacity`, and a gate holding worker 0.
    private func heldPool(threads: Int = 1, capacity: Int, whenFull: ThreadPool.FullQueuePolicy = .wait)
        async throws -> (ThreadPool, Gate)
    {
        var configuration = ThreadPool.Configuration()
        configuration.threads = threads
        configuration.queueCapacity = capacity
        configuration.whenFull = whenFull
        let pool = try ThreadPool(configuration)
        let gate = Gate()
        for _ in 0..<threads { try pool.execute { gate.pass() } }
        #expect(await eventuallyAsync { gate.arrived == threads })
        return (pool, gate)
    }

    @Test(
        "100 async producers suspend while the queue is full and the cooperative pool keeps running other work meanwhile"
    )
    func producersSuspend() async throws {
        let (pool, gate) = try await heldPool(capacity: 4)
        let ran = Counter()
        let entered = Counter()
        let stop = Flag()
        let overfull = Counter()
        let sampled = Counter()
        let sampler = Thread {
            while !stop.value {
                if pool.stats.queued > 4 { overfull.increment() }
                sampled.increment()
            }
        }
        sampler.start()
        let ranOnce = Recorder<Int>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for producer in 0..<100 {
                group.addTask {
                    entered.increment()
                    try await pool.run {
                        ran.increment()
                        ranOnce.append(producer)
                    }
                }
            }
            // 4 producers hold the queue's room, 96 wait for it, suspended: no thread is theirs.
            #expect(
                await eventuallyAsync { entered.value == 100 && pool.shared.roomWaits.load(ordering: .relaxed) == 96 })
            #expect(pool.stats.queued == 4)
            // Meanwhile the cooperative pool runs other work: a plain task of 1,000 steps, each a
            // suspension point, finishes while every producer still waits (the gate is closed).
            let steps = Counter()
            let other = Task.detached {
                for _ in 0..<1_000 {
                    steps.increment()
                    await Task.yield()
                }
            }
            await other.value
            #expect(steps.value == 1_000)
            #expect(ran.value == 0)
            #expect(pool.shared.roomWaits.load(ordering: .relaxed) == 96)
            gate.open()
            try await group.waitForAll()
        }
        stop.value = true
        #expect(await eventuallyAsync { sampled.value > 0 })
        #expect(ran.value == 100)
        #expect(Set(ranOnce.elements) == Set(0..<100) && ranOnce.elements.count == 100) // each exactly once
        #expect(overfull.value == 0)
        #expect(pool.shared.roomWaits.load(ordering: .relaxed) == 0)
        pool.close()
        try await pool.join()
        #expect(pool.stats.completed == 101)
    }

    @Test(
        "a suspended producer that is cancelled throws CancellationError; its body never runs; the others go on (200 rounds)"
    )
    func cancelSuspended() async throws {
        for round in 0..<200 {
            let (pool, gate) = try await heldPool(capacity: 1)
            let ran = Counter()
            try pool.execute { ran.increment() } // the queue is full
            let cancelled = Task { try await pool.run { ran.increment() } }
            let waiting = Task { try await pool.run { ran.increment() } }
            if round % 2 == 0 {
                // Both queued as waiters: cancel the first, then the second gets its turn.
                #expect(await eventuallyAsync { pool.shared.roomWaits.load(ordering: .relaxed) == 2 })
            }
            cancelled.cancel() // odd rounds: before, during or after it began to wait
            await #expect(throws: CancellationError.self) { try await cancelled.value }
            #expect(await eventuallyAsync { pool.shared.roomWaits.load(ordering: .relaxed) <= 1 })
            gate.open()
            try await waiting.value
            pool.close()
            try await pool.join()
            #expect(ran.value == 2) // the queued task and `waiting`, not the cancelled one
            #expect(pool.shared.roomWaits.load(ordering: .relaxed) == 0)
        }
    }

    @Test("close and terminate end every wait with notRunning")
    func closeEndsWaits() async throws {
        for terminate in [false, true] {
            let (pool, gate) = try await heldPool(capacity: 2)
            let ran = Counter()
            try pool.execute { ran.increment() }
            try pool.execute { ran.increment() }
            let producers = (0..<10).map { _ in Task { try await pool.run { ran.increment() } } }
            #expect(await eventuallyAsync { pool.shared.roomWaits.load(ordering: .relaxed) == 10 })
            if terminate { pool.terminate() } else { pool.close() }
            for producer in producers {
                let error = await thrownPoolError { _ = try await producer.value }
                #expect(error.map { if case .notRunning = $0 { true } else { false } } == true)
            }
            gate.open()
            try await pool.join()
            #expect(ran.value == (terminate ? 0 : 2))
            #expect(pool.shared.roomWaits.load(ordering: .relaxed) == 0)
        }
    }

    @Test(
        "run: .fail throws queueFull, .runOnCaller runs the body in the calling task; a worker never waits for itself")
    func runPolicies() async throws {
        let (failing, gate) = try await heldPool(capacity: 1, whenFull: .fail)
        try failing.execute {}
        let error = await thrownPoolError { _ = try await failing.run { 1 } }
        #expect(error.map { if case .queueFull = $0 { true } else { false } } == true)
        gate.open()
        failing.close()
        try await failing.join()

        let (callerRuns, gate2) = try await heldPool(capacity: 1, whenFull: .runOnCaller)
        try callerRuns.execute {}
        let onCaller = try await callerRuns.run { ThreadPool.currentWorker == nil }
        #expect(onCaller)
        gate2.open()
        callerRuns.close()
        try await callerRuns.join()

        // A task on the only worker fills the queue, which nobody else can drain: its own run calls
        // do not wait for room (they would wait for themselves).
        var configuration = ThreadPool.Configuration()
        configuration.threads = 1
        configuration.queueCapacity = 1
        let pool = try ThreadPool(configuration)
        let ran = Counter()
        let nested = try await withTaskExecutorPreference(pool) { () async throws -> Int in
            try pool.execute { ran.increment() }
            #expect(pool.stats.queued == 1)
            var total = 0
            for i in 1...10 { total += try await pool.run { i } }
            return total
        }
        #expect(nested == 55)
        #expect(await eventuallyAsync { ran.value == 1 })
        pool.close()
        try await pool.join()
    }

    @Test(
        "races: async producers waiting for room while the pool grows, retires, closes or terminates and joins (10,000 rounds)"
    )
    func racesWhileWaiting() async throws {
        // THREADPOOLKIT_RACE_ROUNDS overrides the count (sanitized runs are tens of times slower).
        let rounds = ProcessInfo.processInfo.environment["THREADPOOLKIT_RACE_ROUNDS"].flatMap(Int.init) ?? 10_000
        var ranTotal = 0
        var refusedTotal = 0
        var grown = 0
        for round in 0..<rounds {
            var configuration = ThreadPool.Configuration()
            configuration.threads = 1
            configuration.maxThreads = 4
            configuration.keepAlive = .microseconds(50)
            configuration.queueCapacity = 2
            let pool = try ThreadPool(configuration)
            let ran = Counter()
            let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for producer in 0..<8 {
                    group.addTask {
                        do {
                            try await pool.run {
                                if producer % 3 == 0 { sched_yield() }
                                ran.increment()
                            }
                            return true
                        } catch let error as ThreadPoolError {
                            guard case .notRunning = error else {
                                if case .cancelled = error { return false }
                                throw error
                            }
                            return false
                        }
                    }
                }
                // Stop while producers are queued, waiting or on their way.
                for _ in 0..<(round % 4) { await Task.yield() }
                if round % 2 == 0 { pool.terminate() } else { pool.close() }
                var outcomes: [Bool] = []
                for try await outcome in group { outcomes.append(outcome) }
                return outcomes
            }
            try await pool.join()
            let succeeded = outcomes.filter { $0 }.count
            // A run that returned ran its body once; one that threw ran nothing.
            #expect(ran.value == succeeded)
            #expect(pool.shared.roomWaits.load(ordering: .relaxed) == 0)
            let stats = pool.stats
            #expect(stats.threads == 0 && stats.queued == 0 && stats.running == 0)
            grown += stats.threadsStarted - 1
            ranTotal += succeeded
            refusedTotal += outcomes.count - succeeded
            if ran.value != succeeded { break }
        }
        #expect(ranTotal > 0 && refusedTotal > 0 && grown > 0)
    }

    @Test("async map and concurrentPerform wait for room for their entries; sync map waits instead of failing")
    func sharedJobsWait() async throws {
        let (pool, gate) = try await heldPool(threads: 2, capacity: 1)
        try pool.execute {} // full
        let mapped = Task { try await pool.map(0..<100) { $0 * 2 } }
        let performed = Counter()
        let perform = Task { try await pool.concurrentPerform(iterations: 50) { _ in performed.increment() } }
        #expect(await eventuallyAsync { pool.shared.roomWaits.load(ordering: .relaxed) == 2 })
        let blockedMap = Thread { _ = try? pool.map(0..<10) { $0 } }
        blockedMap.start()
        #expect(await eventuallyAsync { pool.shared.roomWaits.load(ordering: .relaxed) == 3 })
        gate.open()
        #expect(try await mapped.value == (0..<100).map { $0 * 2 })
        try await perform.value
        #expect(performed.value == 50)
        #expect(await eventuallyAsync { pool.shared.roomWaits.load(ordering: .relaxed) == 0 })
        pool.close()
        try await pool.join()
    }
}

/// The ThreadPoolError `body` threw, or nil.
private func thrownPoolError(_ body: () async throws -> Void) async -> ThreadPoolError? {
    do {
        try await body()
        return nil
    } catch let error as ThreadPoolError {
        return error
    } catch {
        return nil
    }
}

/// A flag for a test's helper thread.
private final class Flag: Sendable {
    private let storage = Atomic<Bool>(false)
    var value: Bool {
        get { storage.load(ordering: .relaxed) }
        set { storage.store(newValue, ordering: .relaxed) }
    }
}
