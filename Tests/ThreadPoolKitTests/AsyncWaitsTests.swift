import Foundation
import Synchronization
import Testing

@testable import ThreadPoolKit

/// The async counterparts of the blocking calls: they suspend, and never hold a cooperative thread.
@Suite("Async waits: join, withThreadPool, map and broadcast from async code")
struct AsyncWaitsTests {
    @Test("await join() waits for every worker to exit, without blocking a cooperative thread")
    func asyncJoin() async throws {
        let name = uniqueName("ajn")
        let pool = try ThreadPool(threads: 2, name: name)
        let ran = Counter()
        for _ in 0..<100 {
            try pool.execute {
                usleep(1_000); ran.increment()
            }
        }
        await #expect(throws: ThreadPoolError.self) { try await pool.join() } // still running
        pool.close()
        try await pool.join()
        #expect(ran.value == 100)
        #expect(threadsNamed(name) == 0)
        try await pool.join() // a second join returns at once
    }

    @Test("async withThreadPool: a normal exit closes and joins; a thrown error terminates and joins")
    func asyncWithThreadPool() async throws {
        let ran = Counter()
        let name = uniqueName("awt")
        let total = try await withThreadPool(threads: 2, name: name) { pool in
            for _ in 0..<50 {
                try pool.execute {
                    usleep(500); ran.increment()
                }
            }
            var sum = 0
            for try await value in try pool.imap(1...100, { $0 * 2 }) { sum += value }
            return sum
        }
        #expect(total == 10_100 && ran.value == 50 && threadsNamed(name) == 0)

        let gate = Gate()
        let results = Recorder<AsyncResult<Int>>()
        await #expect(throws: TestError.self) {
            try await withThreadPool(threads: 1) { pool in
                _ = try pool.applyAsync { gate.pass() }
                for i in 0..<10 { results.append(try pool.applyAsync { i }) }
                #expect(await eventuallyAsync { gate.arrived == 1 })
                gate.open() // the running task finishes; the queued ones are dropped
                throw TestError(code: 1)
            }
        }
        for result in results.elements {
            do {
                _ = try await result.value
            } catch let error as ThreadPoolError {
                guard case .cancelled = error else { Issue.record("unexpected \(error)"); continue }
            }
        }
    }

    @Test("await map and await broadcast suspend and give the same results as the blocking ones")
    func asyncMapAndBroadcast() async throws {
        let pool = try ThreadPool(threads: 3)
        let squares = try await pool.map(0..<10_000, chunkSize: 7) { $0 * $0 }
        #expect(squares == (0..<10_000).map { $0 * $0 })
        let indices = try await pool.broadcast { $0.index }
        #expect(indices == [0, 1, 2])
        await #expect(throws: TestError.self) {
            _ = try await pool.map(0..<100) { i -> Int in
                if i == 42 { throw TestError(code: i) }; return i
            }
        }
        pool.close()
        try await pool.join()
    }

    @Test("100 tasks awaiting the pool from a task group never starve the cooperative pool")
    func manyAwaitersDoNotHoldCooperativeThreads() async throws {
        // The hang the issue saw: task-group tasks blocked in get() held the cooperative threads.
        let pool = try ThreadPool(threads: 2)
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<100 {
                group.addTask { try await pool.map([i, i]) { $0 + 1 }.reduce(0, +) }
            }
            return try await group.reduce(0, +)
        }
        #expect(total == (0..<100).map { 2 * ($0 + 1) }.reduce(0, +))
        pool.close()
        try await pool.join()
    }
}

enum RequestID {
    @TaskLocal static var value: Int = 0
}

/// `run` moves the calling task onto a worker: its task-locals and its cancellation come along.
@Suite("run: the caller's task context on the worker")
struct RunContextTests {
    @Test("task-local values are visible inside run's body, on a worker, for 1,000 concurrent callers")
    func taskLocalsInsideRun() async throws {
        let pool = try ThreadPool(threads: 2)
        let seen = try await withThrowingTaskGroup(of: (Int, Int, Bool).self) { group in
            for id in 1...1_000 {
                group.addTask {
                    try await RequestID.$value.withValue(id) {
                        try await pool.run { (id, RequestID.value, ThreadPool.currentWorker != nil) }
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(seen.count == 1_000)
        #expect(seen.allSatisfy { $0.0 == $0.1 && $0.2 })
        pool.close()
        try await pool.join()
    }

    @Test("Task.isCancelled inside run's body is the caller's; a caller cancelled before the call never runs it")
    func cancellationInsideRun() async throws {
        let pool = try ThreadPool(threads: 1)
        let started = Gate()
        let release = Gate()
        let task = Task {
            try await pool.run { () -> Bool in
                started.open()
                release.pass()
                return Task.isCancelled
            }
        }
        started.pass()
        task.cancel()
        release.open()
        #expect(try await task.value == true)

        let ran = Counter()
        let cancelledFirst = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await pool.run { ran.increment() }
        }
        await #expect(throws: CancellationError.self) { try await cancelledFirst.value }
        #expect(ran.value == 0)
        pool.close()
        try await pool.join()
        await #expect(throws: ThreadPoolError.self) { try await pool.run { ran.increment() } }
        #expect(ran.value == 0)
    }

    @Test(
        "after run returns the caller is off the pool (nonisolated or on its actor); inside a preference scope each body runs where the task is"
    )
    func callerAfterRun() async throws {
        let pool = try ThreadPool(threads: 2)
        let onWorkerAfter = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask { try await runsThenCountsOnWorker(pool, calls: 100) }
            }
            return try await group.reduce(0, +)
        }
        #expect(onWorkerAfter == 0)
        let inScope = try await withTaskExecutorPreference(pool) {
            try await runsThenCountsOnWorker(pool, calls: 100)
        }
        #expect(inScope == 100)
        // Actor-isolated callers: each body on a worker, each return back on the actor (off the pool).
        let actors = (0..<4).map { _ in OffloadingActor() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for actor in actors { group.addTask { try await actor.offload(pool, calls: 100) } }
            try await group.waitForAll()
        }
        for actor in actors {
            #expect(await actor.offloaded == 100)
            #expect(await actor.onWorkerAfterReturn == 0)
        }
        pool.close()
        try await pool.join()
    }
}

/// A default actor that offloads through `run` and counts, in its own state, what it saw.
actor OffloadingActor {
    private(set) var offloaded = 0
    private(set) var onWorkerAfterReturn = 0

    func offload(_ pool: ThreadPool, calls: Int) async throws {
        for _ in 0..<calls {
            offloaded += try await pool.run { ThreadPool.currentWorker != nil ? 1 : 0 }
            if ThreadPool.currentWorker != nil { onWorkerAfterReturn += 1 }
        }
    }
}

/// Calls `run` `calls` times from a nonisolated async function; counts the returns that found the
/// caller on one of the pool's workers.
nonisolated private func runsThenCountsOnWorker(_ pool: ThreadPool, calls: Int) async throws -> Int {
    var onWorker = 0
    for _ in 0..<calls {
        let ranOnWorker = try await pool.run { ThreadPool.currentWorker != nil }
        #expect(ranOnWorker)
        if ThreadPool.currentWorker != nil { onWorker += 1 }
    }
    return onWorker
}
